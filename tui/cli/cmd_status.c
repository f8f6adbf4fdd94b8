/*
 * cmd_status.c - `embfill status [-C COLL] [--json]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/db.h"
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

static void add_num(cJSON *o, const char *k, long long v)
{
	cJSON_AddNumberToObject(o, k, (double)v);
}

static void print_json(const struct ef_status_report *r)
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
	struct ef_status_report rep = { NULL, 0 };
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
		if (app->cli->json)
			print_json(&rep);
		else
			print_plain(app, &rep);
		rc = 0;
	}
	ef_status_report_free(&rep);
	return rc;
}
