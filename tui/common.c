/*
 * common.c - steps several commands share: connect, discover, report a
 * checklist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/embed.h"
#include "embfill/historylog.h"
#include "embfill/run.h"
#include "embfill/verify.h"
#include "embfill/redact.h"

#include "embfill/schema.h"
#include "tui/cli.h"
#include "embfill/lifecycle.h"
#include "embfill/scan.h"
#include "tui/common.h"

ef_status app_connect_discover(struct app *app, ef_db **db, struct ef_schema *sc,
			       struct ef_error *err)
{
	if (ef_db_connect(app->cfg->dsn, db, err) != EF_OK)
		return err->status;
	if (ef_schema_discover(*db, &app->cfg->map, sc, NULL, err) != EF_OK) {
		ef_db_close(*db);
		*db = NULL;
		return err->status;
	}
	if (!ef_schema_usable(sc)) {
		ef_db_close(*db);
		*db = NULL;
		ef_error_set(err, EF_ERR_DB, "the collection's tables are not usable as mapped "
			     "(chunk table %s, embeddings %s)", sc->chunks_ok ? "ok" : "missing or "
			     "incomplete", sc->embeddings_ok ? "ok" : "missing or incomplete");
		return ef_error_hint(err, "run `embfill schema check` to see what is missing, or "
					  "`embfill schema init` to create the default layout");
	}
	return EF_OK;
}

int app_use_collection(struct app *app, const char *name)
{
	const struct ef_config *base = ef_settings_config(app->settings);
	struct ef_error err;
	ef_db *db = NULL;
	char *table = NULL;
	bool moved = false;

	ef_error_clear(&err);
	if (ef_db_connect(base->dsn, &db, &err) != EF_OK)
		return 0;
	if (ef_coll_config(db, base, name, &app->own_cfg, &table, &moved, &err) != EF_OK) {
		ef_db_close(db);
		return out_error(&err);
	}
	ef_db_close(db);
	free(app->own_table);
	app->own_table = table;
	app->cfg = moved ? &app->own_cfg : base;
	return 0;
}

static const char *level_tag(enum ef_check_level l, bool ascii)
{
	(void)ascii;
	switch (l) {
	case EF_CHECK_PASS:
		return "[ok]  ";
	case EF_CHECK_WARN:
		return "[warn]";
	default:
		return "[FAIL]";
	}
}

void print_checklist(const struct ef_checklist *l, bool ascii)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct ef_check *c = &l->items[i];

		out_printf(stdout, "%s %s: %s\n", level_tag(c->level, ascii), c->what, c->detail);
		if (c->hint[0] && c->level != EF_CHECK_PASS)
			out_printf(stdout, "       hint: %s\n", c->hint);
	}
}

char *checklist_json(const struct ef_checklist *l)
{
	static const char *const names[] = { "pass", "warn", "fail" };
	cJSON *arr = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; arr && i < l->n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "level", names[l->items[i].level]);
		cJSON_AddStringToObject(o, "what", l->items[i].what);
		cJSON_AddStringToObject(o, "detail", l->items[i].detail);
		cJSON_AddStringToObject(o, "hint", l->items[i].hint);
		cJSON_AddItemToArray(arr, o);
	}
	text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return text;
}

ef_status app_embed_config(struct app *app, struct ef_embed_config *ec, char **key,
			   struct ef_error *err)
{
	const struct ef_config *c = app->cfg;

	*key = NULL;
	ef_embed_config_defaults(ec);
	if (ef_embed_provider_parse(c->provider, &ec->provider, err) != EF_OK)
		return err->status;
	ec->url = c->embed_url;
	ec->model = c->embed_model;
	ec->dim = c->embed_dim;
	ec->ca_file = c->ca_file;
	ec->connect_timeout_ms = (long)c->connect_timeout_s * 1000;
	ec->timeout_ms = (long)c->timeout_s * 1000;
	ec->max_attempts = (unsigned)c->max_attempts;
	ec->encoding = ef_embed_encoding_from(c->encoding);
	ec->api_key = c->api_key;
	if (!ec->api_key && c->api_key_file) {
		if (ef_embed_read_key_file(c->api_key_file, key, err) != EF_OK)
			return err->status;
		ef_redact_add_secret(*key);
		ec->api_key = *key;
	}
	return ef_embed_config_check(ec, err);
}

void app_key_free(char *key)
{
	if (!key)
		return;
	explicit_bzero(key, strlen(key));
	free(key);
}

void app_history_entry(const struct app *app, const struct ef_run_result *r, const char *cmd,
		       const char *outcome, const char *verification,
		       struct ef_history_entry *h)
{
	const struct ef_config *c = app->cfg;

	memset(h, 0, sizeof(*h));
	h->collection = app->cli->collection;
	h->run_id = r->run_id;
	h->outcome = outcome;
	h->command = cmd;
	h->provider = c->provider;
	h->url = c->embed_url;
	h->model = c->embed_model;
	h->dim = c->embed_dim;
	h->batch_size = c->batch_size;
	h->concurrency = c->concurrency;
	h->max_chunk_size = c->max_chunk_size;
	h->chunk_overlap = c->chunk_overlap;
	h->note = app->cli->note;
	h->before = r->before;
	h->after = r->after;
	h->duration_s = r->elapsed_s;
	h->rate = r->rate;
	h->retries = r->retries;
	h->quarantined = r->after.quarantined;
	h->verification = verification;
}

/* The verdict of `embfill verify` in one line, for the historylog: the
 * entry then says whether the run left the collection consistent. */
void app_verification_line(const struct app *app, char *buf, size_t n)
{
	struct ef_verify_report v;
	struct ef_schema sc;
	struct ef_error err;
	ef_db *db = NULL;
	size_t used;

	ef_error_clear(&err);
	if (ef_db_connect(app->cfg->dsn, &db, &err) != EF_OK ||
	    ef_schema_discover(db, &app->cfg->map, &sc, NULL, &err) != EF_OK ||
	    ef_verify(db, app->cfg, &sc, app->cli->collection, &v, &err) != EF_OK) {
		snprintf(buf, n, "could not verify (%s); run `embfill verify -C %s`", err.msg,
			 app->cli->collection);
		ef_db_close(db);
		return;
	}
	used = (size_t)snprintf(buf, n, "%s: %lld chunks, %lld fresh vectors",
				v.ok ? "passed" : "FAILED", v.chunks, v.fresh);
	for (size_t i = 0; i < v.nissues && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "; %s %lld%s", v.issues[i].kind,
					 v.issues[i].count, v.issues[i].explained ? " (explained)" : "");
	ef_verify_report_free(&v);
	ef_db_close(db);
}

/* The collection's counts now (zeros when it cannot be read). */
void app_counts(struct app *app, const char *name, struct ef_counts *c)
{
	struct ef_status_report rep;
	struct ef_schema sc;
	struct ef_error err;
	ef_db *db = NULL;

	memset(c, 0, sizeof(*c));
	ef_error_clear(&err);
	if (app_connect_discover(app, &db, &sc, &err) == EF_OK &&
	    ef_scan_status(db, app->cfg, &sc, name, &rep, &err) == EF_OK) {
		if (rep.n == 1) {
			*c = rep.rows[0];
			c->collection = NULL;
			free(rep.rows[0].collection);
			rep.rows[0].collection = NULL;
		}
		ef_status_report_free(&rep);
	}
	ef_db_close(db);
}


ef_status app_write_event(struct app *app, const char *collection, const char *event,
			  const char *outcome, const char *cmd, const char *verification,
			  const struct ef_counts *before, const struct ef_counts *after,
			  struct ef_error *err)
{
	struct ef_history_entry h;
	char *md;
	ef_status st;

	memset(&h, 0, sizeof(h));
	h.collection = collection;
	h.event = event;
	h.outcome = outcome;
	h.command = cmd;
	h.provider = app->cfg->provider;
	h.url = app->cfg->embed_url;
	h.model = app->cfg->embed_model;
	h.dim = app->cfg->embed_dim;
	h.batch_size = app->cfg->batch_size;
	h.concurrency = app->cfg->concurrency;
	h.max_chunk_size = app->cfg->max_chunk_size;
	h.chunk_overlap = app->cfg->chunk_overlap;
	h.before = *before;
	h.after = *after;
	h.verification = verification;
	if (!(md = ef_history_format(&h)))
		return ef_error_set(err, EF_ERR_USAGE, "out of memory");
	st = ef_history_prepend(app->cfg->historylog, md, err);
	free(md);
	return st;
}

