/*
 * report.c (cli) - findings on the command line (report.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tui/cli/cli.h"
#include "tui/cli/report.h"

static const char *level_tag(enum ef_check_level l)
{
	switch (l) {
	case EF_CHECK_PASS:
		return "[ok]  ";
	case EF_CHECK_WARN:
		return "[warn]";
	default:
		return "[FAIL]";
	}
}

void print_checklist(const struct ef_checklist *l, bool ascii)
{
	(void)ascii;
	for (size_t i = 0; i < l->n; i++) {
		const struct ef_check *c = &l->items[i];

		out_printf(stdout, "%s %s: %s\n", level_tag(c->level), c->what, c->detail);
		if (c->hint[0] && c->level != EF_CHECK_PASS)
			out_printf(stdout, "       hint: %s\n", c->hint);
	}
}

char *checklist_json(const struct ef_checklist *l)
{
	static const char *const names[] = { "pass", "warn", "fail" };
	cJSON *arr = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; arr && i < l->n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "level", names[l->items[i].level]);
		cJSON_AddStringToObject(o, "what", l->items[i].what);
		cJSON_AddStringToObject(o, "detail", l->items[i].detail);
		cJSON_AddStringToObject(o, "hint", l->items[i].hint);
		cJSON_AddItemToArray(arr, o);
	}
	text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return text;
}

struct cJSON *json_key(const char *key)
{
	const char *p = key && *key == '-' ? key + 1 : key;
	size_t digits = p ? strspn(p, "0123456789") : 0;

	if (p && digits && digits <= 15 && !p[digits])
		return cJSON_CreateNumber(strtod(key, NULL));
	return cJSON_CreateString(key ? key : "");
}
