/*
 * check.h - a list of pass/warn/fail findings, each with a hint.
 *
 * `schema check`, `doctor` and the console's locate step all report this
 * way; front ends render the list, core only fills it.
 */
#ifndef EMBFILL_CHECK_H
#define EMBFILL_CHECK_H

#include <stddef.h>

enum ef_check_level { EF_CHECK_PASS, EF_CHECK_WARN, EF_CHECK_FAIL };

struct ef_check {
	enum ef_check_level level;
	char *what;   /* short name of the thing checked: "chunk table" */
	char *detail; /* what was found */
	char *hint;   /* what to do; "" when nothing */
};

struct ef_checklist {
	struct ef_check *items;
	size_t n, cap;
};

#define EF_CHECKLIST_INIT { NULL, 0, 0 }

/* Appends a finding; detail is printf-formatted. */
void ef_check_add(struct ef_checklist *l, enum ef_check_level level, const char *what,
		  const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Number of findings at exactly this level. */
size_t ef_check_count(const struct ef_checklist *l, enum ef_check_level level);

void ef_checklist_free(struct ef_checklist *l);

#endif
