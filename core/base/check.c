/*
 * check.c - findings with a level and a hint (check.h): what `schema
 * check`, `doctor` and the console's Locate step report.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/check.h"

void ef_check_add(struct ef_checklist *l, enum ef_check_level level, const char *what,
		  const char *hint, const char *fmt, ...)
{
	struct ef_check *c;
	va_list ap;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct ef_check *ni = realloc(l->items, cap * sizeof(*ni));
		if (!ni)
			return;
		l->items = ni;
		l->cap = cap;
	}
	c = &l->items[l->n];
	c->level = level;
	c->what = strdup(what);
	c->hint = strdup(hint ? hint : "");
	va_start(ap, fmt);
	if (vasprintf(&c->detail, fmt, ap) < 0)
		c->detail = NULL;
	va_end(ap);
	if (!c->what || !c->hint || !c->detail) {
		free(c->what);
		free(c->hint);
		free(c->detail);
		return;
	}
	l->n++;
}

size_t ef_check_count(const struct ef_checklist *l, enum ef_check_level level)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += l->items[i].level == level;
	return n;
}

void ef_checklist_free(struct ef_checklist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].what);
		free(l->items[i].detail);
		free(l->items[i].hint);
	}
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}
