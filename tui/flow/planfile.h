/*
 * planfile.h - the plan as JSON (the `plan --json` document) and writing it
 * to a file atomically (temp file + rename).
 */
#ifndef EMBFILL_TUI_PLANFILE_H
#define EMBFILL_TUI_PLANFILE_H

#include <cjson/cJSON.h>

#include "embfill/error.h"
#include "embfill/plan.h"
#include "tui/app.h"

/* The plan document; cmd is the command line that would run it in place;
 * target the new collection's name (NULL: <collection>_next), used when
 * the plan recommends one.  Caller deletes the tree.  Redact the printed
 * text before it leaves. */
cJSON *plan_json(const struct app *app, const struct ef_plan *p, const char *cmd,
		 const char *target);

/* The commands of the new-collection path, NULL-terminated: [chunk,] run
 * --into, verify, swap.  Caller frees with plan_steps_free(). */
char **plan_steps(const struct app *app, const struct ef_plan *p, const char *target);
void plan_steps_free(char **steps);

/* Writes text and a newline to path through a temp file renamed over it;
 * EF_ERR_USAGE naming the path when it cannot. */
ef_status plan_write_file(const char *path, const char *text, struct ef_error *err);

#endif
