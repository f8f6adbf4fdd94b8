/*
 * cli.h - the command-line front end: options, output, and the commands.
 */
#ifndef EMBFILL_TUI_CLI_H
#define EMBFILL_TUI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "embfill/error.h"
#include "embfill/settings.h"
#include "tui/app.h"

/* Parses argv into cli; on a usage error prints it and returns 2. */
int cli_parse(int argc, char **argv, struct cli *cli);
void cli_usage(FILE *f, enum cli_cmd cmd);
/* The command's option list, one per line ("--dsn DSN"), for tests. */
void cli_list_options(FILE *f, enum cli_cmd cmd);

/* Output: redacted, and sanitised for the terminal: control characters
 * from the values are printed as visible escapes, the format's own
 * newlines, tabs and carriage returns are kept. */
void out_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a text whose newlines and tabs are its own (a historylog entry),
 * redacted and sanitised. */
void out_text(FILE *f, const char *text);
/* Prints "embfill: msg" and "hint: ..." to stderr; returns err->status. */
int out_error(const struct ef_error *err);
/* Prints a cJSON-built document (passed as text) redacted, with newline. */
void out_json(const char *text);

int cmd_status(struct app *app);
int cmd_schema(struct app *app);
int cmd_doctor(struct app *app);
int cmd_plan(struct app *app);
struct run_request;
/* The plan of the collection a run request writes (run --dry-run plans the
 * new one with --into), with the command that runs it. */
int cmd_plan_of(struct app *app, const struct run_request *rq);
int cmd_run(struct app *app);
int cmd_verify(struct app *app);
int cmd_spotcheck(struct app *app);
int cmd_history(struct app *app);
int cmd_chunk(struct app *app);
int cmd_swap(struct app *app);
int cmd_rollback(struct app *app);
int cmd_adopt(struct app *app);
int cmd_stop(struct app *app);

#endif
