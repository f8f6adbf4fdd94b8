/*
 * cmd_history.c - `embfill history [-n N] [--json]`: the newest entries of
 * the historylog, as the Markdown that is in the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "embfill/historylog.h"
#include "tui/cli/cli.h"

#define DEFAULT_N 5
#define MAX_N 1000

static ef_status parse_n(const char *s, size_t *n, struct ef_error *err)
{
	char *end = NULL;
	long v;

	*n = DEFAULT_N;
	if (!s)
		return EF_OK;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > MAX_N) {
		ef_error_set(err, EF_ERR_USAGE, "-n \"%s\" is not a number of entries from 1 to %d",
			     s, MAX_N);
		return ef_error_hint(err, "write e.g. `embfill history -n 10`");
	}
	*n = (size_t)v;
	return EF_OK;
}

static void print_plain(const char *path, const struct ef_history_list *l)
{
	if (l->missing) {
		out_printf(stdout, "no historylog yet at %s\n", path);
		return;
	}
	if (l->n == 0) {
		out_printf(stdout, "no entries yet in %s\n", path);
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			out_printf(stdout, "\n");
		out_text(stdout, l->entries[i]);
	}
}

/* [{"heading": ..., "text": ...}], newest first; [] when there is no
 * file yet, so that scripts need no special case. */
static int print_json(const struct ef_history_list *l)
{
	cJSON *arr = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; arr && i < l->n; i++) {
		cJSON *o = cJSON_CreateObject();
		char *heading = ef_history_heading(l->entries[i]);

		cJSON_AddStringToObject(o, "heading", heading ? heading : "");
		cJSON_AddStringToObject(o, "text", l->entries[i]);
		cJSON_AddItemToArray(arr, o);
		free(heading);
	}
	text = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!text) {
		struct ef_error err;

		ef_error_clear(&err);
		ef_error_oom(&err, "listing the historylog");
		return out_error(&err);
	}
	out_json(text);
	free(text);
	return 0;
}

int cmd_history(struct app *app)
{
	struct ef_history_list l;
	struct ef_error err;
	const char *path = app->cfg->historylog;
	size_t n;
	int rc = 0;

	ef_error_clear(&err);
	if (parse_n(app->cli->n, &n, &err) != EF_OK ||
	    ef_history_read(path, n, &l, &err) != EF_OK)
		return out_error(&err);
	if (app->cli->json)
		rc = print_json(&l);
	else
		print_plain(path, &l);
	ef_history_list_free(&l);
	return rc;
}
