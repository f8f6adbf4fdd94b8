/*
 * app.h (flow) - what every front end asks of the settings: the session of
 * the main thread and the embedding client's configuration.
 */
#ifndef EMBFILL_TUI_FLOW_APP_H
#define EMBFILL_TUI_FLOW_APP_H

#include "embfill/embed.h"
#include "embfill/error.h"
#include "embfill/session.h"
#include "tui/app.h"

/*
 * The main thread's session, opened at the first call and kept; need
 * (EF_NEED_*) is checked at every call, so each command says what it
 * needs of the tables and gets the same message when they lack it.
 */
ef_status app_session(struct app *app, unsigned need, ef_session **s, struct ef_error *err);

/* Closes the main thread's session; the next app_session() opens another.
 * The console closes it before a run: the worker opens its own, and a
 * server that takes one connection at a time must have it free. */
void app_session_close(struct app *app);

/* The embedding client's config from the settings; the key file
 * (EMBED_API_KEY_FILE) is read once and registered as a secret. */
ef_status app_embed_config(struct app *app, struct ef_embed_config *ec, struct ef_error *err);

/* Closes the session and wipes the key. */
void app_free(struct app *app);

/* The provenance probe's sample size from --sample (0: the default);
 * EF_ERR_USAGE for a value that is not one. */
ef_status app_sample(const struct app *app, size_t *out, struct ef_error *err);

#endif
