/*
 * cmd_status.c - `embfill status [-C COLL] [--json]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/db.h"
#include "embfill/run.h"
#include "embfill/scan.h"
#include "embfill/schema.h"
#include "tui/cli/cli.h"
#include "tui/flow/app.h"

#define NAME_W 15

static void print_header(void)
{
	out_printf(stdout, "%*s%s\n", NAME_W + 27, "", "---- stale by ----");
	out_printf(stdout, "%-*s %7s %8s %7s %6s %5s %7s %7s %5s %4s\n", NAME_W, "collection",
		   "chunks", "embedded", "missing", "model", "dim", "content", "orphans", "cross",
		   "quar");
}

static void print_row(const struct ef_counts *c)
{
	const char *name = c->collection;

	if (strlen(name) > NAME_W) {
		out_printf(stdout, "%s\n", name);
		name = "";
	}
	out_printf(stdout, "%-*s %7lld %8lld %7lld %6lld %5lld %7lld %7lld %5lld %4lld\n", NAME_W,
		   name, c->chunks, c->embedded, c->missing, c->stale_model, c->stale_dim,
		   c->stale_content, c->orphans, c->cross_tenant, c->quarantined);
}

static void print_plain(const struct app *app, const struct ef_status_report *r)
{
	print_header();
	for (size_t i = 0; i < r->n; i++)
		print_row(&r->rows[i]);
	if (r->n == 0)
		out_printf(stdout, "(no collections: the chunk table is empty)\n");
	out_printf(stdout, "\nstale: model is not \"%s\", dimension is not %d, the chunk "
			   "changed since it was embedded, or another recipe made it\n",
		   app->cfg->embed_model, app->cfg->embed_dim);
	for (size_t i = 0; i < r->n; i++) {
		const struct ef_counts *c = &r->rows[i];

		if (c->stale_recipe)
			out_printf(stdout, "%s: %lld vectors were made by another recipe than the "
					   "settings' (%s): `embfill verify -C %s` names it\n",
				   c->collection, c->stale_recipe, app->cfg->recipe_id,
				   c->collection);
		if (c->recipe_unknown)
			out_printf(stdout, "%s: %lld vectors have no recipe on record (not counted "
					   "as stale): `embfill verify -C %s --provenance` tells which "
					   "recipe made them\n", c->collection, c->recipe_unknown,
				   c->collection);
	}
	for (size_t i = 0; i < r->n; i++)
		if (r->rows[i].unrecorded)
			out_printf(stdout, "%s: %lld vectors have no model on record (counted as stale "
					   "by model); if they are \"%s\"'s: embfill adopt -C %s "
					   "--confirm %s\n", r->rows[i].collection,
				   r->rows[i].unrecorded, app->cfg->embed_model,
				   r->rows[i].collection, r->rows[i].collection);
}

/* The collection's active run: its workers and their leases. */
static void print_live(const struct ef_run_live *l)
{
	if (!l->run_id)
		return;
	out_printf(stdout, "\nrun %lld: running since %s UTC (started on %s), %lld of %lld "
			   "chunks; leases: %lld done, %lld taken, %lld in all%s\n", l->run_id,
		   l->started_at, l->host, l->done, l->total, l->leases_done, l->leases_taken,
		   l->leases, l->stop_requested ? "; asked to stop" : "");
	if (!l->nworkers) {
		out_printf(stdout, "no live worker: the run resumes with `--resume`\n");
		return;
	}
	out_printf(stdout, "%-20s %7s  %-24s %8s %7s %9s\n", "worker host", "pid", "lease",
		   "done", "rate/s", "heartbeat");
	for (int i = 0; i < l->nworkers; i++) {
		const struct ef_run_worker *w = &l->workers[i];

		out_printf(stdout, "%-20.20s %7d  %-24.24s %8lld %7.0f %7.1fs\n", w->host, w->pid,
			   w->lease, w->done, w->rate, w->heartbeat_age_s);
	}
}

static cJSON *live_json(const struct ef_run_live *l)
{
	cJSON *o = cJSON_CreateObject(), *ws = cJSON_AddArrayToObject(o, "workers");

	cJSON_AddNumberToObject(o, "id", (double)l->run_id);
	cJSON_AddNumberToObject(o, "done", (double)l->done);
	cJSON_AddNumberToObject(o, "total", (double)l->total);
	cJSON_AddNumberToObject(o, "leases", (double)l->leases);
	cJSON_AddNumberToObject(o, "leases_done", (double)l->leases_done);
	cJSON_AddNumberToObject(o, "leases_taken", (double)l->leases_taken);
	cJSON_AddBoolToObject(o, "stop_requested", l->stop_requested);
	for (int i = 0; i < l->nworkers; i++) {
		const struct ef_run_worker *w = &l->workers[i];
		cJSON *x = cJSON_CreateObject();

		cJSON_AddStringToObject(x, "host", w->host);
		cJSON_AddNumberToObject(x, "pid", w->pid);
		cJSON_AddStringToObject(x, "lease", w->lease);
		cJSON_AddNumberToObject(x, "lease_done", (double)w->lease_done);
		cJSON_AddNumberToObject(x, "done", (double)w->done);
		cJSON_AddNumberToObject(x, "rate", w->rate);
		cJSON_AddNumberToObject(x, "heartbeat_age_s", w->heartbeat_age_s);
		cJSON_AddItemToArray(ws, x);
	}
	return o;
}

static void add_num(cJSON *o, const char *k, long long v)
{
	cJSON_AddNumberToObject(o, k, (double)v);
}

static void print_json(const struct ef_status_report *r, const struct ef_run_live *live)
{
	cJSON *arr = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; arr && i < r->n; i++) {
		const struct ef_counts *c = &r->rows[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "collection", c->collection);
		add_num(o, "chunks", c->chunks);
		add_num(o, "embedded", c->embedded);
		add_num(o, "missing", c->missing);
		add_num(o, "stale", c->stale);
		add_num(o, "stale_model", c->stale_model);
		add_num(o, "stale_dim", c->stale_dim);
		add_num(o, "stale_content", c->stale_content);
		add_num(o, "orphans", c->orphans);
		add_num(o, "cross_tenant", c->cross_tenant);
		add_num(o, "quarantined", c->quarantined);
		add_num(o, "unrecorded", c->unrecorded);
		add_num(o, "stale_recipe", c->stale_recipe);
		add_num(o, "recipe_unknown", c->recipe_unknown);
		if (live && live->run_id)
			cJSON_AddItemToObject(o, "run", live_json(live));
		cJSON_AddItemToArray(arr, o);
	}
	text = cJSON_PrintUnformatted(arr);
	out_json(text);
	free(text);
	cJSON_Delete(arr);
}

int cmd_status(struct app *app)
{
	struct ef_error err;
	struct ef_status_report rep = { 0 };
	struct ef_run_live live;
	ef_session *s;
	int rc;

	ef_error_clear(&err);
	if (app_session(app, EF_NEED_TABLES, &s, &err) != EF_OK)
		return out_error(&err);
	if (ef_scan_status(s, app->cli->collection, &rep, &err) != EF_OK) {
		rc = out_error(&err);
	} else if (app->cli->collection && rep.n == 0) {
		ef_scan_unknown(s, app->cli->collection, &err);
		rc = out_error(&err);
	} else {
		memset(&live, 0, sizeof(live));
		if (app->cli->collection && ef_session_schema(s)->tool_schema &&
		    ef_run_live(s, app->cli->collection, &live, &err) != EF_OK)
			memset(&live, 0, sizeof(live));
		if (app->cli->json)
			print_json(&rep, &live);
		else {
			print_plain(app, &rep);
			print_live(&live);
		}
		rc = 0;
	}
	ef_status_report_free(&rep);
	return rc;
}
