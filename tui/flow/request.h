/*
 * request.h (flow) - one run, as the operator asked for it.
 *
 * The command line fills a request from its flags, the console from its
 * screens; from the request come both the engine's options and the
 * command line that reproduces the run, so the console can never record a
 * command the command line would not run.
 */
#ifndef EMBFILL_TUI_FLOW_REQUEST_H
#define EMBFILL_TUI_FLOW_REQUEST_H

#include <stdbool.h>
#include <time.h>

#include "embfill/error.h"
#include "embfill/plan.h"
#include "embfill/run.h"
#include "tui/app.h"

struct run_request {
	const char *collection;      /* -C: the live collection */
	const char *into;            /* --into: the new collection; NULL in place */
	bool rechunk;                /* --rechunk: NEW is cut anew from the documents */
	bool backup;                 /* --backup (in place only) */
	bool rebuild_index;          /* --rebuild-index: drop the vector indexes for the load */
	bool approve_provider;       /* --approve-provider-change */
	bool retry_quarantined;
	bool only_missing;           /* --only missing: stale vectors are left */
	bool dry_run;
	bool resume;                 /* continue the interrupted run (not part of the
					reproducing command: rerunning starts anew and
					skips what is done) */
	bool join;                   /* --join: one more worker of the collection's
					active run, with the run's settings */
	const char *until;           /* --until HH:MM or HH:MM:SS; NULL: no window end */
	const char *note;
};

/* The request from the command line's flags (strings borrowed). */
void request_from_cli(struct run_request *r, const struct cli *cli);

/* The collection the run writes: the new one with --into. */
const char *request_target(const struct run_request *r);

/*
 * Checks what can be checked without the database: the collection's name,
 * the confirmation (the name typed again: --confirm, or the console's
 * second field), --rechunk
 * and --backup against --into, --join against what a joining worker takes
 * from the run, and the window's end.  EF_ERR_USAGE with the
 * fix; nothing has been touched.
 */
ef_status request_check(const struct run_request *r, const char *confirm, struct ef_error *err);

/*
 * A window's end, HH:MM or HH:MM:SS in local time: today, or tomorrow when
 * that time has passed (a window that ends at 02:00 is given at 23:00).
 * NULL or "" is no end (*deadline 0).  EF_ERR_USAGE when it is no time of
 * day.
 */
ef_status request_until(const char *text, time_t *deadline, struct ef_error *err);

/* The headless command that reproduces the run; caller frees (NULL when
 * out of memory). */
char *request_command(const struct app *app, const struct run_request *r);

/* The plan flags (EF_PLAN_*) of what the request embeds. */
unsigned request_plan_flags(const struct run_request *r);

/* The engine's options (strings borrowed from r and command); the flags and
 * the progress callback are the caller's. */
ef_status request_run_opts(const struct run_request *r, const char *command,
			   struct ef_run_opts *o, struct ef_error *err);

#endif
