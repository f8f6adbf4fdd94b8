/*
 * cmd_spotcheck.c - `embfill spot-check -C COLL [-q QUERY]... [-k N]
 * [--json]`: renders ef_spotcheck().
 *
 * Exit 0 when every query returned a citation (and, when sampling, at
 * least EF_SPOT_HIT_PCT_MIN percent of the samples retrieved themselves)
 * and at least SPOTCHECK_MIN_COVERAGE of the chunks have a comparable
 * vector, 1 when not (a partly embedded collection is "partial"), 2 for
 * usage or an unknown collection, 3 database, 4 the embedding service.  Sources are printed redacted before they are cut,
 * so a cut never leaves half a token that redaction would not recognise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/db.h"
#include "embfill/embed.h"
#include "embfill/redact.h"
#include "embfill/schema.h"
#include "embfill/spotcheck.h"
#include "tui/cli/cli.h"
#include "tui/cli/report.h"
#include "tui/flow/app.h"

#define TITLE_CHARS 40
#define LINE_CHARS 74   /* after a 5-column indent */

static void print_cut(const char *fmt_lead, const char *text, size_t max)
{
	char *c = ef_spot_cut(text, max);

	out_printf(stdout, "%s%s\n", fmt_lead, c ? c : "");
	free(c);
}

static void print_citation(size_t rank, const struct ef_spot_citation *c)
{
	char *title = c->title ? ef_spot_cut(c->title, TITLE_CHARS) : NULL;
	char score[16] = "     -";
	char where[128];

	if (!isnan(c->score))
		snprintf(score, sizeof(score), "%6.3f", c->score);
	if (c->chunk_index >= 0)
		snprintf(where, sizeof(where), "chunk %lld (#%.40s)", c->chunk_index, c->key);
	else
		snprintf(where, sizeof(where), "chunk #%.50s", c->key);
	out_printf(stdout, "  %zu. %s  %s%s%s\n", rank, score, title ? title : "",
		   title ? ", " : "", where);
	free(title);
	if (c->source) {
		char *shown = ef_redact_url(c->source);

		print_cut("     ", shown ? shown : "", LINE_CHARS);
		free(shown);
	}
	out_printf(stdout, "     \"%s\"\n", c->snippet);
}

static void print_self(const struct ef_spot_query *q, int k)
{
	for (size_t j = 0; j < q->ncites; j++) {
		if (strcmp(q->cites[j].key, q->sample_key) == 0) {
			out_printf(stdout, "  self-retrieval: hit, chunk #%s at rank %zu\n",
				   q->sample_key, j + 1);
			return;
		}
	}
	out_printf(stdout, "  self-retrieval: MISS, chunk #%s is not in the top %d\n",
		   q->sample_key, k);
}

static void print_query(size_t i, const struct ef_spot_report *r)
{
	const struct ef_spot_query *q = &r->queries[i];
	char lead[128];
	char *text = ef_spot_cut(q->text, 66);

	if (q->sample_key)
		snprintf(lead, sizeof(lead), "sample %zu, from chunk #%.80s", i + 1, q->sample_key);
	else
		snprintf(lead, sizeof(lead), "query %zu", i + 1);
	out_printf(stdout, "\n%s:\n  \"%s\"\n", lead, text ? text : "");
	free(text);
	for (size_t j = 0; j < q->ncites; j++)
		print_citation(j + 1, &q->cites[j]);
	if (q->ncites == 0)
		out_printf(stdout, "  [FAIL] no citation: nothing of \"%s\" was retrieved\n",
			   r->collection);
	if (q->sample_key)
		print_self(q, r->k);
}

static void print_verdict(const struct app *app, const struct ef_spot_report *r)
{
	if (r->sampled && r->nqueries)
		out_printf(stdout, "\nself-retrieval: %zu/%zu (%.0f%%), passes at %d%% or more\n",
			   r->hits, r->nqueries, r->hit_rate * 100.0, EF_SPOT_HIT_PCT_MIN);
	if (r->sampled && r->nqueries == 0)
		out_printf(stdout, "\nno chunk of \"%s\" has a fresh vector:\nnothing to sample\n"
				   "hint: `embfill verify` shows why; `embfill run` embeds them\n",
			   r->collection);
	else if (r->comparable == 0)
		out_printf(stdout, "\nno vector of \"%s\" was made with model \"%s\" at "
				   "dimension %d:\nnothing to compare the queries with\n"
				   "hint: check EMBED_MODEL and EMBED_DIM, or embed the collection "
				   "with `embfill run`\n",
			   r->collection, app->cfg->embed_model, app->cfg->embed_dim);
	if (r->partial && r->retrieval_ok)
		out_printf(stdout, "result: partial (coverage %.0f%%, below SPOTCHECK_MIN_COVERAGE "
				   "%.2f)\n", 100.0 * r->coverage, r->min_coverage);
	else
		out_printf(stdout, "result: %s\n", r->ok ? "ok" : "NOT OK");
}

/* Citations speak only for the chunks that have a comparable vector. */
static void print_coverage(const struct app *app, const struct ef_spot_report *r)
{
	if (r->coverage >= 1.0 || r->comparable == 0)
		return;
	out_printf(stdout, "%s: only %lld of the %lld chunks of \"%s\" (%.0f%%) have a vector "
			   "of \"%s\" at dimension %d; the citations below come from those "
			   "alone\n", r->partial ? "coverage warning" : "coverage", r->comparable,
		   r->chunks, r->collection, 100.0 * r->coverage, app->cfg->embed_model,
		   app->cfg->embed_dim);
	if (r->partial)
		out_printf(stdout, "hint: `embfill run -C %s --confirm %s` embeds the rest; the "
				   "result is partial below SPOTCHECK_MIN_COVERAGE (%.2f)\n",
			   r->collection, r->collection, r->min_coverage);
}

static void print_plain(const struct app *app, const struct ef_spot_report *r)
{
	const char *what = r->sampled ? (r->nqueries == 1 ? "sampled chunk" : "sampled chunks")
				      : (r->nqueries == 1 ? "query" : "queries");

	out_printf(stdout, "spot-check \"%s\": %zu %s, top %d, model \"%s\" at dimension %d\n",
		   r->collection, r->nqueries, what, r->k, app->cfg->embed_model,
		   app->cfg->embed_dim);
	out_printf(stdout, "score: cosine similarity, 1 is identical; only \"%s\" is searched\n",
		   r->collection);
	print_coverage(app, r);
	for (size_t i = 0; i < r->nqueries; i++)
		print_query(i, r);
	print_verdict(app, r);
}

static void add_str(cJSON *o, const char *key, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

static cJSON *citation_json(const struct ef_spot_citation *c)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddItemToObject(o, "chunk_id", json_key(c->key));
	add_str(o, "title", c->title);
	add_str(o, "source", c->source);
	if (c->chunk_index >= 0)
		cJSON_AddNumberToObject(o, "chunk_index", (double)c->chunk_index);
	else
		cJSON_AddNullToObject(o, "chunk_index");
	if (isnan(c->score))
		cJSON_AddNullToObject(o, "score");
	else
		cJSON_AddNumberToObject(o, "score", round(c->score * 1e6) / 1e6);
	cJSON_AddStringToObject(o, "snippet", c->snippet);
	return o;
}

static cJSON *query_json(const struct ef_spot_query *q)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *cites;

	cJSON_AddStringToObject(o, "query", q->text);
	if (q->sample_key) {
		cJSON_AddItemToObject(o, "sample_chunk_id", json_key(q->sample_key));
		cJSON_AddBoolToObject(o, "self_hit", q->self_hit);
	}
	cites = cJSON_AddArrayToObject(o, "citations");
	for (size_t j = 0; j < q->ncites; j++)
		cJSON_AddItemToArray(cites, citation_json(&q->cites[j]));
	return o;
}

static void print_json(const struct ef_spot_report *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *arr;
	char *text;

	cJSON_AddStringToObject(root, "collection", r->collection);
	cJSON_AddNumberToObject(root, "k", r->k);
	cJSON_AddBoolToObject(root, "sampled", r->sampled);
	arr = cJSON_AddArrayToObject(root, "queries");
	for (size_t i = 0; i < r->nqueries; i++)
		cJSON_AddItemToArray(arr, query_json(&r->queries[i]));
	if (r->sampled) {
		cJSON_AddNumberToObject(root, "hits", (double)r->hits);
		cJSON_AddNumberToObject(root, "hit_rate", r->hit_rate);
		cJSON_AddNumberToObject(root, "hit_rate_min", EF_SPOT_HIT_PCT_MIN / 100.0);
	}
	cJSON_AddNumberToObject(root, "chunks", (double)r->chunks);
	cJSON_AddNumberToObject(root, "comparable_vectors", (double)r->comparable);
	cJSON_AddNumberToObject(root, "coverage", round(r->coverage * 1e4) / 1e4);
	cJSON_AddNumberToObject(root, "coverage_min", r->min_coverage);
	cJSON_AddBoolToObject(root, "partial", r->partial);
	cJSON_AddBoolToObject(root, "ok", r->ok);
	text = cJSON_PrintUnformatted(root);
	out_json(text);
	free(text);
	cJSON_Delete(root);
}

/* Settings, -k and the embedding client's config: everything that can be
 * refused before a connection is opened. */
static ef_status prepare(struct app *app, struct ef_spot_request *req,
			 struct ef_embed_config *ec, struct ef_error *err)
{
	if (!app->cli->collection) {
		ef_error_set(err, EF_ERR_USAGE, "spot-check needs the collection: -C COLL");
		return ef_error_hint(err, "`embfill status` lists the collections");
	}
	req->collection = app->cli->collection;
	req->queries = app->cli->queries;
	req->nqueries = (size_t)app->cli->nqueries;
	if (ef_spot_parse_k(app->cli->k, &req->k, err) != EF_OK)
		return err->status;
	return app_embed_config(app, ec, err);
}

int cmd_spotcheck(struct app *app)
{
	struct ef_error err;
	struct ef_spot_request req;
	struct ef_spot_report rep;
	struct ef_embed_config ec;
	ef_session *s;
	int rc;

	ef_error_clear(&err);
	if (prepare(app, &req, &ec, &err) != EF_OK ||
	    app_session(app, EF_NEED_TABLES, &s, &err) != EF_OK ||
	    ef_spotcheck(s, &ec, &req, &rep, &err) != EF_OK)
		return out_error(&err);
	if (app->cli->json)
		print_json(&rep);
	else
		print_plain(app, &rep);
	rc = rep.ok ? EF_OK : EF_ERR_CHECK;
	ef_spot_report_free(&rep);
	return rc;
}
