/*
 * cmd_plan.c - `embfill plan -C COLL [--out FILE] [--json]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "embfill/ident.h"
#include "embfill/plan.h"
#include "embfill/recipe.h"
#include "embfill/redact.h"
#include "tui/cli/cli.h"
#include "tui/flow/app.h"
#include "tui/flow/planfile.h"
#include "tui/flow/request.h"

static void fmt_duration(double s, char *buf, size_t n)
{
	if (s < 0)
		snprintf(buf, n, "unknown");
	else if (s < 10)
		snprintf(buf, n, "%.1f s", s);
	else if (s < 90)
		snprintf(buf, n, "%.0f s", s);
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		snprintf(buf, n, "%.1f h", s / 3600);
}

/* The recipe the run would embed with, each prefix with its origin. */
static void print_recipe(const struct app *app)
{
	const struct ef_config *c = app->cfg;
	struct ef_recipe r = { c->doc_prefix, c->dimensions, c->truncate, c->normalize };
	char *desc = ef_recipe_describe(&r), dorig[512], qorig[512];

	ef_settings_origin(app->settings, EF_K_EMBED_DOCUMENT_PREFIX, dorig, sizeof(dorig));
	ef_settings_origin(app->settings, EF_K_EMBED_QUERY_PREFIX, qorig, sizeof(qorig));
	out_printf(stdout, "  recipe: %s (%s); documents prefixed \"%s\" (%s), queries \"%s\" "
			   "(%s)\n", desc ? desc : "?", c->recipe_id, c->doc_prefix, dorig,
		   c->query_prefix, qorig);
	free(desc);
}

static void print_plain(const struct app *app, const struct ef_plan *p, const char *cmd)
{
	char est[32];

	fmt_duration(p->est_seconds, est, sizeof(est));
	out_printf(stdout, "plan for \"%s\" with %s \"%s\" (dimension %d)\n", p->collection,
		   app->cfg->provider, app->cfg->embed_model, app->cfg->embed_dim);
	print_recipe(app);
	out_printf(stdout, "  chunks %lld, embedded %lld, missing %lld, stale %lld (model %lld, "
			   "dim %lld, content %lld, recipe %lld), quarantined %lld\n",
		   p->counts.chunks, p->counts.embedded, p->counts.missing, p->counts.stale,
		   p->counts.stale_model, p->counts.stale_dim, p->counts.stale_content,
		   p->counts.stale_recipe, p->counts.quarantined);
	if (p->counts.recipe_unknown)
		out_printf(stdout, "  recipe unknown: %lld vectors (not stale)\n",
			   p->counts.recipe_unknown);
	out_printf(stdout, "  to embed: %s%lld chunks in %lld batches of %d, %d in flight%s\n",
		   p->new_collection && p->chunking_changed ? "about " : "", p->todo, p->batches,
		   p->batch_size, p->concurrency, p->new_collection ? " (all of them, into the new "
		   "collection)" : "");
	for (size_t i = 0; i < p->nendpoints; i++)
		out_printf(stdout, "  endpoint %zu of %zu: %s %s\n", i + 1, p->nendpoints,
			   p->endpoints[i].url, p->endpoints[i].ok ? "answers" : p->endpoints[i].error);
	if (p->probe_ms >= 0) {
		char lo[32], hi[32], eps[96] = "";

		fmt_duration(p->est_low, lo, sizeof(lo));
		fmt_duration(p->est_high, hi, sizeof(hi));
		if (p->nendpoints > 1 && p->endpoints_ok == 1)
			snprintf(eps, sizeof(eps), " on 1 endpoint (1 of %zu endpoints answer)",
				 p->nendpoints);
		else if (p->nendpoints > 1)
			snprintf(eps, sizeof(eps), " on each of %zu endpoints (%zu of %zu endpoints "
				 "answer)", p->endpoints_ok ? p->endpoints_ok : p->nendpoints,
				 p->endpoints_ok, p->nendpoints);
		out_printf(stdout, "  estimate: %s, likely %s to %s (embedding only: a probe of %d "
				   "chunks in %d requests, %d in flight%s, took %.1f s: %.0f chunks/s)\n",
			   est, lo, hi, p->probe_chunks, p->probe_requests, p->concurrency, eps,
			   p->probe_ms / 1e3, p->probe_rate);
	} else
		out_printf(stdout, "  estimate: %s\n", p->todo ? "unknown (no probe)" : "nothing to do");
	for (size_t i = 0; i < p->nmodels; i++)
		out_printf(stdout, "  vectors now: %lld of \"%s\", dimension %d\n", p->models[i].count,
			   p->models[i].model, p->models[i].dim);
	if (p->probed)
		out_printf(stdout, "  provenance: %zu of %zu sampled vectors without a recorded model "
				   "or recipe match \"%s\" with %s: %s\n", p->prov.matches,
			   p->prov.sampled, app->cfg->embed_model, p->prov.claimed_desc,
			   p->prov.ok ? "made that way" : "NOT made that way");
	else if (p->prov_error[0])
		out_printf(stdout, "  provenance: not checked: %s\n", p->prov_error);
	for (size_t i = 0; i < p->nrisks; i++)
		out_printf(stdout, "  risk (%s): %s\n    -> %s\n", ef_risk_level_name(p->risks[i].level),
			   p->risks[i].what, p->risks[i].advice);
	if (p->new_collection) {
		char **steps = plan_steps(app, p, NULL);

		out_printf(stdout, "recommendation: backfill into a NEW collection, verify, then "
				   "swap:\n");
		for (size_t i = 0; steps && steps[i]; i++)
			out_printf(stdout, "  %s\n", steps[i]);
		plan_steps_free(steps);
	} else {
		out_printf(stdout, "recommendation: in place\n  %s\n", cmd);
		if (p->vindex.rebuild_offered)
			out_printf(stdout, "  or faster, loading %s without its vector indexes and "
					   "rebuilding them after (searches on it rank every row "
					   "meanwhile):\n  %s --rebuild-index\n", p->vindex.ix.table, cmd);
	}
}

/* The plan of the collection rq writes, and the command that runs it. */
static int plan_request(struct app *app, const struct run_request *rq)
{
	struct run_request in_place = *rq;
	struct ef_embed_config ec;
	struct ef_plan p;
	struct ef_error err;
	char *cmd = NULL, *json = NULL, *safe;
	ef_session *s;
	cJSON *o;
	int rc = 0;

	ef_error_clear(&err);
	if (ef_collection_name_check(request_target(rq), &err) != EF_OK ||
	    app_embed_config(app, &ec, &err) != EF_OK ||
	    app_session(app, EF_NEED_TABLES, &s, &err) != EF_OK)
		return out_error(&err);
	if (ef_plan_build(s, &ec, request_target(rq), request_plan_flags(rq), &p, &err) != EF_OK) {
		ef_plan_free(&p);
		return out_error(&err);
	}
	in_place.dry_run = false;
	cmd = request_command(app, &in_place);
	o = plan_json(app, &p, cmd ? cmd : "", NULL);
	json = cJSON_Print(o);
	safe = ef_redact(json);
	if (app->cli->json)
		out_json(safe);
	else
		print_plain(app, &p, cmd ? cmd : "");
	if (app->cli->out && plan_write_file(app->cli->out, safe, &err) != EF_OK)
		rc = out_error(&err);
	else if (app->cli->out && !app->cli->json)
		out_printf(stdout, "plan written to %s\n", app->cli->out);
	cJSON_Delete(o);
	free(json);
	free(safe);
	free(cmd);
	ef_plan_free(&p);
	return rc;
}

int cmd_plan_of(struct app *app, const struct run_request *rq)
{
	return plan_request(app, rq);
}

int cmd_plan(struct app *app)
{
	struct run_request rq;
	struct ef_error err;

	ef_error_clear(&err);
	if (!app->cli->collection) {
		ef_error_set(&err, EF_ERR_USAGE, "`embfill plan` needs the collection: -C COLL");
		ef_error_hint(&err, "embfill plan -C COLL; `embfill status` lists the collections");
		return out_error(&err);
	}
	request_from_cli(&rq, app->cli);
	rq.into = NULL;
	return plan_request(app, &rq);
}
