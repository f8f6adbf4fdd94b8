/*
 * cmd_stop.c - `embfill stop -C COLL --confirm COLL`: every worker of the
 * collection's run, on every host, stops at its next checkpoint.
 */
#include <string.h>

#include "embfill/run.h"
#include "tui/cli/cli.h"
#include "tui/flow/app.h"

static int check_names(const struct app *app, struct ef_error *err)
{
	const char *coll = app->cli->collection, *confirm = app->cli->confirm;

	if (!coll) {
		ef_error_set(err, EF_ERR_USAGE, "`embfill stop` needs the collection: -C COLL");
		return ef_error_hint(err, "embfill stop -C COLL --confirm COLL");
	}
	if (!confirm || strcmp(confirm, coll) != 0) {
		ef_error_set(err, EF_ERR_USAGE, "`embfill stop` stops every worker of \"%s\" only "
			     "when its name is typed twice; nothing was touched", coll);
		return ef_error_hint(err, "embfill stop -C %s --confirm %s", coll, coll);
	}
	return EF_OK;
}

int cmd_stop(struct app *app)
{
	const char *coll = app->cli->collection;
	struct ef_error err;
	long long run_id = 0;
	int workers = 0;
	ef_session *s;

	ef_error_clear(&err);
	if (check_names(app, &err) != EF_OK || app_session(app, 0, &s, &err) != EF_OK ||
	    ef_run_request_stop(s, coll, &run_id, &workers, &err) != EF_OK)
		return out_error(&err);
	if (!run_id) {
		out_printf(stdout, "no run of \"%s\" is running: nothing to stop\n", coll);
		return 0;
	}
	out_printf(stdout, "run %lld of \"%s\": asked its %d live worker%s to stop at the next "
			   "checkpoint; each hands its leases back and exits 5, the last marks the "
			   "run interrupted\n", run_id, coll, workers, workers == 1 ? "" : "s");
	out_printf(stdout, "resume it with: embfill run -C %s --confirm %s --resume\n", coll, coll);
	return 0;
}
