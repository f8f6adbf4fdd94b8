/*
 * planfile.c - the plan as JSON and plan.json written whole or not at all;
 * shared by `embfill plan --out` and the console's plan step.
 */
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "embfill/ident.h"
#include "embfill/plan.h"
#include "embfill/recipe.h"
#include "embfill/strbuf.h"
#include "tui/flow/command.h"
#include "tui/flow/planfile.h"
#include "tui/flow/request.h"

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
	cJSON_AddNumberToObject(o, "stale_recipe", (double)c->stale_recipe);
	cJSON_AddNumberToObject(o, "recipe_unknown", (double)c->recipe_unknown);
	return o;
}

/* The recipe the run would embed with, each prefix with where it came
 * from ("default for nomic-embed-text", the settings file's line, ...). */
static cJSON *recipe_json(const struct app *app)
{
	const struct ef_config *c = app->cfg;
	struct ef_recipe r = { c->doc_prefix, c->dimensions, c->truncate, c->normalize };
	cJSON *o = cJSON_CreateObject();
	char *desc = ef_recipe_describe(&r), origin[512];

	cJSON_AddStringToObject(o, "id", c->recipe_id);
	cJSON_AddStringToObject(o, "description", desc ? desc : "");
	cJSON_AddStringToObject(o, "document_prefix", c->doc_prefix);
	ef_settings_origin(app->settings, EF_K_EMBED_DOCUMENT_PREFIX, origin, sizeof(origin));
	cJSON_AddStringToObject(o, "document_prefix_origin", origin);
	cJSON_AddStringToObject(o, "query_prefix", c->query_prefix);
	ef_settings_origin(app->settings, EF_K_EMBED_QUERY_PREFIX, origin, sizeof(origin));
	cJSON_AddStringToObject(o, "query_prefix_origin", origin);
	cJSON_AddNumberToObject(o, "dimensions", c->dimensions);
	free(desc);
	return o;
}

/* The new collection's name: given, or <collection>_next. */
static const char *plan_target(const struct ef_plan *p, const char *target)
{
	static char buf[EF_COLLECTION_NAME_MAX + 8];

	if (target && *target)
		return target;
	snprintf(buf, sizeof(buf), "%.*s_next", EF_COLLECTION_NAME_MAX - 8,
		 p->collection ? p->collection : "");
	return buf;
}

cJSON *plan_json(const struct app *app, const struct ef_plan *p, const char *cmd,
		 const char *target)
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
	cJSON_AddItemToObject(o, "recipe", recipe_json(app));
	cJSON_AddNumberToObject(probe, "chunks", p->probe_chunks);
	cJSON_AddNumberToObject(probe, "requests", p->probe_requests);
	cJSON_AddNumberToObject(probe, "concurrency", p->concurrency);
	if (p->probe_ms >= 0) {
		cJSON_AddNumberToObject(probe, "ms", round(p->probe_ms));
		cJSON_AddNumberToObject(probe, "chunks_per_s", round(p->probe_rate * 10) / 10);
	} else {
		cJSON_AddNullToObject(probe, "ms");
	}
	cJSON_AddItemToObject(o, "probe", probe);
	if (p->est_seconds >= 0) {
		cJSON_AddNumberToObject(o, "estimated_seconds", round(p->est_seconds * 10) / 10);
		cJSON_AddNumberToObject(o, "estimated_seconds_low", round(p->est_low * 10) / 10);
		cJSON_AddNumberToObject(o, "estimated_seconds_high", round(p->est_high * 10) / 10);
	} else {
		cJSON_AddNullToObject(o, "estimated_seconds");
	}
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
	if (p->probed) {
		cJSON *pv = cJSON_AddObjectToObject(o, "provenance");

		cJSON_AddNumberToObject(pv, "sampled", (double)p->prov.sampled);
		cJSON_AddNumberToObject(pv, "matches", (double)p->prov.matches);
		cJSON_AddNumberToObject(pv, "mean_cosine", p->prov.mean_cosine);
		cJSON_AddStringToObject(pv, "recipe", p->prov.claimed_id);
		cJSON_AddBoolToObject(pv, "ok", p->prov.ok);
	}
	cJSON_AddStringToObject(o, "recommendation", p->new_collection ? "new-collection"
								       : "in-place");
	if (p->new_collection) {
		char **steps = plan_steps(app, p, target);
		cJSON *arr = cJSON_AddArrayToObject(o, "commands");

		cJSON_AddStringToObject(o, "new_collection", plan_target(p, target));
		for (size_t i = 0; steps && steps[i]; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(steps[i]));
		/* the run --into line */
		for (size_t i = 0; steps && steps[i]; i++)
			if (strstr(steps[i], " run ")) {
				cJSON_AddStringToObject(o, "command", steps[i]);
				break;
			}
		plan_steps_free(steps);
	} else {
		cJSON_AddStringToObject(o, "command", cmd);
	}
	cJSON_AddBoolToObject(o, "provider_change", p->provider_change);
	cJSON_AddBoolToObject(o, "chunking_changed", p->chunking_changed);
	return o;
}

static char *step(const struct app *app, const char *const *words, bool approve)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	command_start(&b, app, words[0]);
	for (size_t i = 1; words[i]; i++)
		command_word(&b, words[i]);
	if (approve)
		command_word(&b, "--approve-provider-change");
	return ef_strbuf_take(&b);
}

/* The run into the new collection is the command `run` itself would
 * record for that request. */
static char *run_step(const struct app *app, const struct ef_plan *p, const char *t)
{
	struct run_request r = { .collection = p->collection, .into = t,
				 .approve_provider = p->provider_change };

	return request_command(app, &r);
}

char **plan_steps(const struct app *app, const struct ef_plan *p, const char *target)
{
	const char *c = p->collection, *t = plan_target(p, target);
	char **out = calloc(5, sizeof(*out));
	size_t n = 0;

	if (!out || !t)
		return out;
	if (p->chunking_changed)
		out[n++] = step(app, (const char *[]){ "chunk", "-C", c, "--into", t, NULL }, false);
	out[n++] = run_step(app, p, t);
	out[n++] = step(app, (const char *[]){ "verify", "-C", t, NULL }, false);
	out[n++] = step(app, (const char *[]){ "swap", "-C", c, "--with", t, "--confirm", c, NULL },
			p->provider_change);
	return out;
}

void plan_steps_free(char **steps)
{
	for (size_t i = 0; steps && steps[i]; i++)
		free(steps[i]);
	free(steps);
}

/* plan.json is written whole or not at all: a temp file renamed over. */
ef_status plan_write_file(const char *path, const char *text, struct ef_error *err)
{
	char *tmp = NULL;
	FILE *f;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return ef_error_oom(err, NULL);
	f = fopen(tmp, "w");
	if (f) {
		bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 &&
			  fsync(fileno(f)) == 0;

		if (fclose(f) != 0 || !ok || rename(tmp, path) != 0)
			f = NULL;
	}
	if (!f) {
		ef_error_set(err, EF_ERR_USAGE, "cannot write the plan to \"%s\"", path);
		ef_error_hint(err, "check that the directory exists and is writable");
		unlink(tmp);
		free(tmp);
		return err->status;
	}
	free(tmp);
	return EF_OK;
}
