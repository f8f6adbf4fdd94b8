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
#include "embfill/redact.h"
#include "tui/cli.h"
#include "tui/common.h"

static cJSON *counts_json(const struct ef_counts *c)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "chunks", (double)c->chunks);
	cJSON_AddNumberToObject(o, "embedded", (double)c->embedded);
	cJSON_AddNumberToObject(o, "missing", (double)c->missing);
	cJSON_AddNumberToObject(o, "stale", (double)c->stale);
	cJSON_AddNumberToObject(o, "stale_model", (double)c->stale_model);
	cJSON_AddNumberToObject(o, "stale_dim", (double)c->stale_dim);
	cJSON_AddNumberToObject(o, "stale_content", (double)c->stale_content);
	cJSON_AddNumberToObject(o, "orphans", (double)c->orphans);
	cJSON_AddNumberToObject(o, "cross_tenant", (double)c->cross_tenant);
	cJSON_AddNumberToObject(o, "quarantined", (double)c->quarantined);
	return o;
}

static cJSON *plan_json(const struct app *app, const struct ef_plan *p, const char *cmd)
{
	cJSON *o = cJSON_CreateObject(), *risks = cJSON_CreateArray(), *models = cJSON_CreateArray();
	cJSON *probe = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "collection", p->collection);
	cJSON_AddItemToObject(o, "counts", counts_json(&p->counts));
	cJSON_AddNumberToObject(o, "todo", (double)p->todo);
	cJSON_AddNumberToObject(o, "batches", (double)p->batches);
	cJSON_AddNumberToObject(o, "batch_size", p->batch_size);
	cJSON_AddNumberToObject(o, "concurrency", p->concurrency);
	cJSON_AddStringToObject(o, "model", app->cfg->embed_model);
	cJSON_AddNumberToObject(o, "dim", app->cfg->embed_dim);
	cJSON_AddNumberToObject(probe, "chunks", p->probe_chunks);
	if (p->probe_ms >= 0)
		cJSON_AddNumberToObject(probe, "ms", p->probe_ms);
	else
		cJSON_AddNullToObject(probe, "ms");
	cJSON_AddItemToObject(o, "probe", probe);
	if (p->est_seconds >= 0)
		cJSON_AddNumberToObject(o, "estimated_seconds", p->est_seconds);
	else
		cJSON_AddNullToObject(o, "estimated_seconds");
	for (size_t i = 0; i < p->nmodels; i++) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "model", p->models[i].model);
		cJSON_AddNumberToObject(m, "dim", p->models[i].dim);
		cJSON_AddNumberToObject(m, "count", (double)p->models[i].count);
		cJSON_AddItemToArray(models, m);
	}
	cJSON_AddItemToObject(o, "models", models);
	for (size_t i = 0; i < p->nrisks; i++) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "level", ef_risk_level_name(p->risks[i].level));
		cJSON_AddStringToObject(r, "what", p->risks[i].what);
		cJSON_AddStringToObject(r, "advice", p->risks[i].advice);
		cJSON_AddItemToArray(risks, r);
	}
	cJSON_AddItemToObject(o, "risks", risks);
	cJSON_AddStringToObject(o, "recommendation", p->new_collection ? "new-collection"
								       : "in-place");
	cJSON_AddStringToObject(o, "command", p->new_collection ? "" : cmd);
	return o;
}

static void fmt_duration(double s, char *buf, size_t n)
{
	if (s < 0)
		snprintf(buf, n, "unknown");
	else if (s < 90)
		snprintf(buf, n, "%.0f s", s);
	else if (s < 5400)
		snprintf(buf, n, "%.0f min", s / 60);
	else
		snprintf(buf, n, "%.1f h", s / 3600);
}

static void print_plain(const struct app *app, const struct ef_plan *p, const char *cmd)
{
	char est[32];

	fmt_duration(p->est_seconds, est, sizeof(est));
	out_printf(stdout, "plan for \"%s\" with %s \"%s\" (dimension %d)\n", p->collection,
		   app->cfg->provider, app->cfg->embed_model, app->cfg->embed_dim);
	out_printf(stdout, "  chunks %lld, embedded %lld, missing %lld, stale %lld (model %lld, "
			   "dim %lld, content %lld), quarantined %lld\n", p->counts.chunks,
		   p->counts.embedded, p->counts.missing, p->counts.stale, p->counts.stale_model,
		   p->counts.stale_dim, p->counts.stale_content, p->counts.quarantined);
	out_printf(stdout, "  to embed: %lld chunks in %lld batches of %d, %d in flight\n", p->todo,
		   p->batches, p->batch_size, p->concurrency);
	if (p->probe_ms >= 0)
		out_printf(stdout, "  estimate: %s (a probe of %d chunks took %.0f ms)\n", est,
			   p->probe_chunks, p->probe_ms);
	else
		out_printf(stdout, "  estimate: %s\n", p->todo ? "unknown (no probe)" : "nothing to do");
	for (size_t i = 0; i < p->nmodels; i++)
		out_printf(stdout, "  vectors now: %lld of \"%s\", dimension %d\n", p->models[i].count,
			   p->models[i].model, p->models[i].dim);
	for (size_t i = 0; i < p->nrisks; i++)
		out_printf(stdout, "  risk (%s): %s\n    -> %s\n", ef_risk_level_name(p->risks[i].level),
			   p->risks[i].what, p->risks[i].advice);
	if (p->new_collection)
		out_printf(stdout, "recommendation: backfill into a NEW collection, verify, then swap\n");
	else
		out_printf(stdout, "recommendation: in place\n  %s\n", cmd);
}

/* plan.json is written whole or not at all: a temp file renamed over. */
static int write_out(const char *path, const char *text)
{
	char *tmp = NULL;
	FILE *f;
	struct ef_error err;

	ef_error_clear(&err);
	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return EF_ERR_USAGE;
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		ef_error_set(&err, EF_ERR_USAGE, "cannot write the plan to \"%s\"", path);
		ef_error_hint(&err, "check that the directory exists and is writable");
		unlink(tmp);
		free(tmp);
		return out_error(&err);
	}
	free(tmp);
	return 0;
}

int cmd_plan(struct app *app)
{
	struct ef_embed_config ec;
	struct ef_plan p;
	struct ef_error err;
	char *key = NULL, *cmd = NULL, *json = NULL, *safe;
	cJSON *o;
	int rc = 0;

	ef_error_clear(&err);
	if (!app->cli->collection) {
		ef_error_set(&err, EF_ERR_USAGE, "`embfill plan` needs the collection: -C COLL");
		return out_error(&err);
	}
	if (ef_collection_name_check(app->cli->collection, &err) != EF_OK ||
	    app_embed_config(app, &ec, &key, &err) != EF_OK)
		return out_error(&err);
	if (ef_plan_build(app->cfg, &ec, app->cli->collection, app->cli->retry_quarantined, &p,
			  &err) != EF_OK) {
		ef_plan_free(&p);
		app_key_free(key);
		return out_error(&err);
	}
	cmd = run_command_line(app);
	o = plan_json(app, &p, cmd);
	json = cJSON_Print(o);
	safe = ef_redact(json);
	if (app->cli->json)
		out_json(safe);
	else
		print_plain(app, &p, cmd);
	if (app->cli->out && (rc = write_out(app->cli->out, safe)) == 0 && !app->cli->json)
		out_printf(stdout, "plan written to %s\n", app->cli->out);
	cJSON_Delete(o);
	free(json);
	free(safe);
	free(cmd);
	ef_plan_free(&p);
	app_key_free(key);
	return rc;
}
