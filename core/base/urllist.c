/*
 * urllist.c - EMBED_URL's list of endpoints (urllist.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "embfill/strbuf.h"
#include "embfill/urllist.h"

/* Whether an item starts at p: blanks, then a scheme of the list. */
static bool item_starts(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0;
}

/* The end of the item that starts at p: the next comma an item follows. */
static const char *item_end(const char *p)
{
	for (; *p; p++)
		if (*p == ',' && item_starts(p + 1))
			return p;
	return p;
}

static char *trimmed(const char *a, const char *b)
{
	while (a < b && (*a == ' ' || *a == '\t'))
		a++;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	return strndup(a, (size_t)(b - a));
}

size_t ef_url_list_count(const char *list)
{
	size_t n = 1;

	for (const char *p = list ? item_end(list) : ""; *p; p = item_end(p + 1))
		n++;
	return n;
}

char **ef_url_list_split(const char *list, size_t *n)
{
	size_t count = ef_url_list_count(list), i = 0;
	char **out = calloc(count + 1, sizeof(*out));
	const char *p = list ? list : "";

	*n = 0;
	if (!out)
		return NULL;
	for (;;) {
		const char *end = item_end(p);

		if (!(out[i++] = trimmed(p, end))) {
			ef_names_free(out);
			return NULL;
		}
		if (!*end)
			break;
		p = end + 1;
	}
	*n = i;
	return out;
}
