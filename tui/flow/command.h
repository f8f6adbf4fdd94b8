/*
 * command.h (flow) - command lines that rerun what was done, as written:
 * every reproducing command in the historylog, plan.json and on screen is
 * built here, from the same global options the process was given.
 */
#ifndef EMBFILL_TUI_FLOW_COMMAND_H
#define EMBFILL_TUI_FLOW_COMMAND_H

#include "embfill/strbuf.h"
#include "tui/app.h"

/*
 * Starts a command line: "embfill", then the options that chose the
 * settings (--config FILE, and every --dsn and --set the process got, except
 * BATCH_SIZE and EMBED_CONCURRENCY, which `run` writes as its own flags),
 * then cmd.  Every word is shell-quoted, so the line can be pasted.
 */
void command_start(struct ef_strbuf *b, const struct app *app, const char *cmd);

/* Appends one word, shell-quoted (NULL appends nothing). */
void command_word(struct ef_strbuf *b, const char *w);

/* Appends a flag and its value as two words (nothing when value is NULL). */
void command_flag(struct ef_strbuf *b, const char *flag, const char *value);

/* "embfill [globals] cmd -C COLL" for the commands a summary suggests;
 * caller frees. */
char *command_for(const struct app *app, const char *cmd, const char *collection);

#endif
