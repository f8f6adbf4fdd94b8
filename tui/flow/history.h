/*
 * history.h (flow) - the historylog entries both front ends write: a run's,
 * and an event's (a swap, a rollback), with the same verification line.
 */
#ifndef EMBFILL_TUI_FLOW_HISTORY_H
#define EMBFILL_TUI_FLOW_HISTORY_H

#include <stddef.h>

#include "embfill/error.h"
#include "embfill/run.h"
#include "embfill/scan.h"
#include "embfill/spotcheck.h"
#include "embfill/verify.h"
#include "tui/app.h"

/*
 * The verdict of verify (and of the spot-check, when s is not NULL) in one
 * line: "passed: 120 chunks, 120 fresh vectors; ...; isolation: 0 orphans,
 * 0 cross-tenant; spot-check: ...".
 */
void history_verification(const struct ef_verify_report *v, const struct ef_spot_report *s,
			  char *buf, size_t n);

/* Verifies collection now and gives its line; when verify cannot run, the
 * line says so and how to run it. */
void history_verify_now(struct app *app, const char *collection, char *buf, size_t n);

/* What a run's entry holds beyond the run itself. */
struct history_extras {
	const char *verification;
	const char *const *spot_lines;     /* "query -> citations" */
	size_t nspot;
	const char *const *accepted;       /* warnings the operator accepted */
	size_t naccepted;
};

/* The entry of a run of collection (the one it wrote), as it will be
 * written; caller frees (NULL when out of memory). */
char *history_run_entry(const struct app *app, const char *collection, const char *note,
			const struct ef_run_result *r, ef_status st, const char *command,
			const struct history_extras *x);

/* Prepends an entry to the historylog (HISTORYLOG). */
ef_status history_write(const struct app *app, const char *md, struct ef_error *err);

/* The entry of an event without a run of its own (a swap, a rollback),
 * written at once: it changes what every reader of the collection gets. */
ef_status history_event(const struct app *app, const char *collection, const char *event,
			const char *outcome, const char *command, const char *verification,
			const struct ef_counts *before, const struct ef_counts *after,
			struct ef_error *err);

#endif
