#ifndef EMBFILL_TUI_COMMON_H
#define EMBFILL_TUI_COMMON_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "embfill/check.h"
#include "embfill/db.h"
#include "embfill/embed.h"
#include "embfill/schema.h"
#include "tui/cli.h"

/* Connects and discovers the schema; fails (EF_ERR_DB) unless the chunk
 * and embedding tables are usable.  On success the caller closes *db. */
ef_status app_connect_discover(struct app *app, ef_db **db, struct ef_schema *sc,
			       struct ef_error *err);

/* Points app->cfg at the settings with collection name's own embedding
 * table when it has one (a collection of another dimension); a database
 * that cannot be read leaves the settings as they are, for the command to
 * report.  Returns 0, or an exit code after printing why. */
int app_use_collection(struct app *app, const char *name);

/* "[ok]   what: detail" lines, with "hint:" under warnings and failures. */
void print_checklist(const struct ef_checklist *l, bool ascii);

/* The list as a JSON array of {level, what, detail, hint}; caller frees. */
char *checklist_json(const struct ef_checklist *l);

/* The client's config from the settings; reads EMBED_API_KEY_FILE when the
 * key is not in the environment, into *key (free with app_key_free), and
 * registers it as a secret. */
ef_status app_embed_config(struct app *app, struct ef_embed_config *ec, char **key,
			   struct ef_error *err);
void app_key_free(char *key);

struct ef_run_result;
struct ef_history_entry;

/* A historylog entry describing a run (strings borrowed from the args). */
void app_history_entry(const struct app *app, const struct ef_run_result *r, const char *cmd,
		       const char *outcome, const char *verification,
		       struct ef_history_entry *h);

/* One line saying whether the collection verifies, for the historylog. */
void app_verification_line(const struct app *app, char *buf, size_t n);

struct ef_counts;

/* A collection's counts now (zeros when they cannot be read). */
void app_counts(struct app *app, const char *name, struct ef_counts *c);

/* A historylog entry for an event without a run of its own (a swap, a
 * rollback), written at once: they change what every reader gets.
 * Prints nothing (the console calls it too). */
ef_status app_write_event(struct app *app, const char *collection, const char *event,
			  const char *outcome, const char *cmd, const char *verification,
			  const struct ef_counts *before, const struct ef_counts *after,
			  struct ef_error *err);

/* The headless command line that reproduces a run, shell-quoted. */
char *run_command_line(const struct app *app);

#endif
