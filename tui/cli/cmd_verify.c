/*
 * cmd_verify.c - `embfill verify -C COLL [--json]`: renders ef_verify().
 *
 * Exit 0 when every discrepancy is explained, 1 when one is not, 2 for an
 * unknown collection, 3 when the database fails.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/db.h"
#include "embfill/provenance.h"
#include "embfill/schema.h"
#include "embfill/strbuf.h"
#include "embfill/verify.h"
#include "tui/cli/cli.h"
#include "tui/cli/report.h"
#include "tui/flow/app.h"

#define WIDTH 79
#define INDENT "       "

/* Code points, which is what a terminal column mostly is. */
static size_t columns(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

/* Prints lead + text, wrapped at blanks to WIDTH columns, continuation
 * lines indented; a word longer than a line stays whole. */
static void wrap(const char *lead, const char *text)
{
	struct ef_strbuf line = EF_STRBUF_INIT;
	size_t col = columns(lead, strlen(lead)), base = col;

	ef_strbuf_add(&line, lead);
	for (const char *p = text + strspn(text, " "); *p; p += strspn(p, " ")) {
		size_t n = strcspn(p, " "), w = columns(p, n);
		bool sep = line.len > 0 && line.buf[line.len - 1] != ' ';

		if (col > base && col + sep + w > WIDTH) {
			out_printf(stdout, "%s\n", ef_strbuf_str(&line));
			ef_strbuf_free(&line);
			ef_strbuf_add(&line, INDENT);
			col = base = strlen(INDENT);
			sep = false;
		}
		if (sep)
			ef_strbuf_add(&line, " ");
		ef_strbuf_addn(&line, p, n);
		col += sep + w;
		p += n;
	}
	out_printf(stdout, "%s\n", ef_strbuf_str(&line));
	ef_strbuf_free(&line);
}

static void print_examples(const struct ef_verify_issue *is)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	const char *more = is->count > (long long)is->nexamples ? ", ..." : "";

	if (is->note_key) {
		for (size_t i = 0; i < is->nexamples; i++) {
			char lead[64];

			snprintf(lead, sizeof(lead), INDENT "#%s %s:", is->examples[i].key ? is->examples[i].key : "?",
				 is->note_key);
			wrap(lead, is->examples[i].note ? is->examples[i].note : "(none)");
		}
		return;
	}
	for (size_t i = 0; i < is->nexamples; i++)
		ef_strbuf_addf(&b, "%s#%s", i ? ", " : "", is->examples[i].key ? is->examples[i].key : "?");
	ef_strbuf_add(&b, more);
	wrap(INDENT "e.g.", ef_strbuf_str(&b));
	ef_strbuf_free(&b);
}

static void print_issue(const struct ef_verify_issue *is)
{
	char lead[160];

	snprintf(lead, sizeof(lead), "%s %s (%s): %lld", is->explained ? "[ok]  " : "[FAIL]",
		 is->title, is->kind, is->count);
	out_printf(stdout, "%s\n", lead);
	wrap(INDENT, is->reason);
	print_examples(is);
	if (!is->explained)
		wrap(INDENT "hint:", is->hint);
}

static void print_models(const struct ef_verify_report *r)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	for (size_t i = 0; i < r->nmodels; i++)
		ef_strbuf_addf(&b, "%s\"%s\" dimension %d: %lld vectors", i ? "; " : "",
			       r->models[i].model ? r->models[i].model : "(none)", r->models[i].dim,
			       r->models[i].count);
	wrap("models:", r->nmodels ? ef_strbuf_str(&b) : "(no vectors)");
	ef_strbuf_free(&b);
}

static void print_isolation(const struct ef_verify_report *r)
{
	char text[512];

	if (r->inline_layout) {
		wrap("isolation:", "vectors live on the chunk rows themselves (inline layout): "
				   "no row can cross a tenant boundary");
		return;
	}
	snprintf(text, sizeof(text), "%lld rows filed under \"%s\" point at another "
		 "collection's chunk; %lld rows of other collections point at a chunk of \"%s\"%s",
		 ef_verify_count(r, "cross_tenant"), r->collection,
		 ef_verify_count(r, "cross_tenant_inbound"), r->collection,
		 r->isolation_fk ? " (a foreign key enforces it)"
				 : " (no foreign key enforces it)");
	wrap("isolation:", text);
}

static void print_plain(const struct app *app, const struct ef_verify_report *r)
{
	size_t bad = ef_verify_unexplained(r);

	out_printf(stdout, "verify \"%s\": %lld chunks, %lld vector rows, %lld fresh\n",
		   r->collection, r->chunks, r->vectors, r->fresh);
	out_printf(stdout, "fresh: model \"%s\", dimension %d, made from the chunk's current "
			   "text\n\n", app->cfg->embed_model, app->cfg->embed_dim);
	for (size_t i = 0; i < r->nissues; i++)
		print_issue(&r->issues[i]);
	if (r->nissues == 0)
		out_printf(stdout, "[ok]   every chunk has a fresh vector\n");
	out_printf(stdout, "\n");
	print_models(r);
	if (r->recipe_unknown)
		wrap("recipes:", "some fresh vectors have no recipe on record (made before recipes "
		     "were recorded): `embfill verify --provenance` tells which recipe made them");
	print_isolation(r);
	if (bad)
		out_printf(stdout, "result: NOT OK, %zu kind%s of discrepancy unexplained\n", bad,
			   bad == 1 ? "" : "s");
	else
		out_printf(stdout, "result: ok, every chunk has a fresh vector%s\n",
			   r->nissues ? " or an explained quarantine" : "");
}

static cJSON *issue_json(const struct ef_verify_issue *is, const struct ef_verify_report *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *ids;

	cJSON_AddStringToObject(o, "kind", is->kind);
	cJSON_AddNumberToObject(o, "count", (double)is->count);
	cJSON_AddBoolToObject(o, "explained", is->explained);
	cJSON_AddStringToObject(o, "reason", is->reason);
	cJSON_AddStringToObject(o, "hint", is->hint);
	ids = cJSON_AddArrayToObject(o, "examples");
	for (size_t i = 0; i < is->nexamples; i++)
		cJSON_AddItemToArray(ids, json_key(is->examples[i].key));
	if (is->note_key) {
		cJSON *det = cJSON_AddArrayToObject(o, "details");

		for (size_t i = 0; i < is->nexamples; i++) {
			cJSON *d = cJSON_CreateObject();

			cJSON_AddItemToObject(d, "chunk_id", json_key(is->examples[i].key));
			if (is->examples[i].note)
				cJSON_AddStringToObject(d, is->note_key, is->examples[i].note);
			else
				cJSON_AddNullToObject(d, is->note_key);
			cJSON_AddItemToArray(det, d);
		}
	}
	if (is->explained) {
		cJSON *rs = cJSON_AddArrayToObject(o, "reasons");

		for (size_t i = 0; i < r->nreasons; i++) {
			cJSON *q = cJSON_CreateObject();

			cJSON_AddStringToObject(q, "reason", r->reasons[i].reason);
			cJSON_AddNumberToObject(q, "count", (double)r->reasons[i].count);
			cJSON_AddItemToArray(rs, q);
		}
	}
	return o;
}

static void add_models(cJSON *root, const struct ef_verify_report *r)
{
	cJSON *arr = cJSON_AddArrayToObject(root, "models");

	for (size_t i = 0; i < r->nmodels; i++) {
		cJSON *m = cJSON_CreateObject();

		if (r->models[i].model)
			cJSON_AddStringToObject(m, "model", r->models[i].model);
		else
			cJSON_AddNullToObject(m, "model");
		cJSON_AddNumberToObject(m, "dim", r->models[i].dim);
		cJSON_AddNumberToObject(m, "count", (double)r->models[i].count);
		cJSON_AddItemToArray(arr, m);
	}
}

static void print_json(const struct app *app, const struct ef_verify_report *r,
		       const struct ef_prov_report *prov)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *arr, *iso;
	char *text;

	cJSON_AddStringToObject(root, "collection", r->collection);
	cJSON_AddNumberToObject(root, "chunks", (double)r->chunks);
	cJSON_AddNumberToObject(root, "vectors", (double)r->vectors);
	cJSON_AddNumberToObject(root, "embedded", (double)r->embedded);
	cJSON_AddNumberToObject(root, "fresh", (double)r->fresh);
	cJSON_AddBoolToObject(root, "ok", r->ok);
	arr = cJSON_AddArrayToObject(root, "discrepancies");
	for (size_t i = 0; i < r->nissues; i++)
		cJSON_AddItemToArray(arr, issue_json(&r->issues[i], r));
	add_models(root, r);
	iso = cJSON_AddObjectToObject(root, "isolation");
	cJSON_AddNumberToObject(iso, "cross_tenant", (double)ef_verify_count(r, "cross_tenant"));
	cJSON_AddNumberToObject(iso, "cross_tenant_inbound",
				(double)ef_verify_count(r, "cross_tenant_inbound"));
	cJSON_AddBoolToObject(iso, "foreign_key", r->isolation_fk);
	cJSON_AddNumberToObject(root, "recipe_unknown", (double)r->recipe_unknown);
	cJSON_AddStringToObject(root, "recipe", app->cfg->recipe_id);
	if (prov)
		cJSON_AddItemToObject(root, "provenance", provenance_json(prov, app->cfg->embed_model));
	text = cJSON_PrintUnformatted(root);
	out_json(text);
	free(text);
	cJSON_Delete(root);
}

/* --provenance: the vectors that count as fresh, embedded again. */
static ef_status probe(struct app *app, ef_session *s, struct ef_prov_report *p,
		       struct ef_error *err)
{
	struct ef_prov_opts o = { .collection = app->cli->collection, .select = EF_PROV_FRESH,
				  .candidates = true };
	struct ef_embed_config ec;

	if (app_sample(app, &o.sample, err) != EF_OK || app_embed_config(app, &ec, err) != EF_OK)
		return err->status;
	return ef_provenance(s, &ec, &o, p, err);
}

int cmd_verify(struct app *app)
{
	struct ef_error err;
	struct ef_verify_report rep;
	struct ef_prov_report prov;
	const struct cli *cli = app->cli;
	ef_session *s;
	size_t ignored;
	bool ok;

	ef_error_clear(&err);
	if (!cli->collection) {
		ef_error_set(&err, EF_ERR_USAGE, "verify needs the collection: -C COLL");
		ef_error_hint(&err, "`embfill status` lists the collections");
		return out_error(&err);
	}
	if (cli->sample && !cli->provenance) {
		ef_error_set(&err, EF_ERR_USAGE, "--sample is the size of the provenance probe's "
			     "sample: it needs --provenance");
		ef_error_hint(&err, "embfill verify -C %s --provenance --sample %s", cli->collection,
			      cli->sample);
		return out_error(&err);
	}
	if (app_sample(app, &ignored, &err) != EF_OK ||
	    app_session(app, EF_NEED_TABLES, &s, &err) != EF_OK ||
	    ef_verify(s, cli->collection, &rep, &err) != EF_OK)
		return out_error(&err);
	if (cli->provenance && probe(app, s, &prov, &err) != EF_OK) {
		ef_verify_report_free(&rep);
		return out_error(&err);
	}
	if (cli->json)
		print_json(app, &rep, cli->provenance ? &prov : NULL);
	else {
		print_plain(app, &rep);
		if (cli->provenance)
			print_provenance(&prov, app->cfg->embed_model);
	}
	ok = rep.ok && (!cli->provenance || prov.ok);
	ef_verify_report_free(&rep);
	return ok ? EF_OK : EF_ERR_CHECK;
}
