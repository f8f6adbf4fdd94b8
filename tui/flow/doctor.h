/*
 * doctor.h - the checks `embfill doctor` and the console's locate step
 * share: the database, the schema, the embedding service and its
 * dimension, each a pass/warn/fail finding with a hint.
 */
#ifndef EMBFILL_TUI_DOCTOR_H
#define EMBFILL_TUI_DOCTOR_H

#include <stdbool.h>

#include "embfill/check.h"
#include "embfill/embed.h"
#include "embfill/schema.h"
#include "embfill/settings.h"
#include "tui/app.h"

/* The route a tei endpoint is driven through, as `doctor --json` gives it. */
struct doctor_route {
	char endpoint[512];
	struct ef_embed_route_info info;
	bool failed;               /* EMBED_ENCODING=base64 and no OpenAI route */
};

struct doctor {
	struct ef_checklist list;
	bool db_down;
	bool service_down;
	struct ef_schema sc;
	bool schema_known;
	struct doctor_route routes[EF_EMBED_MAX_ENDPOINTS];   /* tei endpoints that answered */
	size_t nroutes;
};

/* Runs every check, even after one failed, so that one pass shows the
 * operator everything that is wrong.  Free d->list with doctor_free(). */
void doctor_run(struct app *app, struct doctor *d);
void doctor_free(struct doctor *d);

/* The most fundamental failure: database (3) before service (4) before
 * any other failed check (1); 0 when all passed. */
int doctor_exit_code(const struct doctor *d);

/* Whether a setting is worth listing: the schema mapping is long, so it is
 * listed only where it was changed from the default. */
bool doctor_show_key(const struct app *app, enum ef_key k);

#endif
