/*
 * cmd_doctor.c - `embfill doctor`: settings with their origins, the
 * database, the schema, and a probe of the embedding service, each finding
 * a pass/fail line with a hint.
 *
 * The checks themselves live in doctor.c, shared with the console's locate
 * step; this file prints them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/check.h"
#include "embfill/db.h"
#include "embfill/embed.h"
#include "embfill/redact.h"
#include "embfill/schema.h"
#include "tui/cli/cli.h"
#include "tui/cli/report.h"
#include "tui/flow/app.h"
#include "tui/flow/doctor.h"

static void print_settings(const struct app *app)
{
	out_printf(stdout, "settings (value, and where it came from):\n");
	for (int k = 0; k < EF_K__COUNT; k++) {
		char origin[512];
		char *v;

		if (!doctor_show_key(app, (enum ef_key)k))
			continue;
		v = ef_settings_display(app->settings, (enum ef_key)k);
		ef_settings_origin(app->settings, (enum ef_key)k, origin, sizeof(origin));
		out_printf(stdout, "  %-24s %-32s %s\n", ef_settings_key_name((enum ef_key)k),
			   v && *v ? v : "(empty)", origin);
		free(v);
	}
	out_printf(stdout, "\nchecks:\n");
}

static cJSON *settings_json(const struct app *app)
{
	cJSON *arr = cJSON_CreateArray();

	for (int k = 0; arr && k < EF_K__COUNT; k++) {
		cJSON *o = cJSON_CreateObject();
		char origin[512];
		char *v = ef_settings_display(app->settings, (enum ef_key)k);

		ef_settings_origin(app->settings, (enum ef_key)k, origin, sizeof(origin));
		cJSON_AddStringToObject(o, "key", ef_settings_key_name((enum ef_key)k));
		cJSON_AddStringToObject(o, "value", v ? v : "");
		cJSON_AddStringToObject(o, "origin", origin);
		cJSON_AddItemToArray(arr, o);
		free(v);
	}
	return arr;
}

static void add_ms(cJSON *o, const char *key, double ms)
{
	if (ms >= 0)
		cJSON_AddNumberToObject(o, key, ms);
	else
		cJSON_AddNullToObject(o, key);
}

/* One object per tei endpoint that answered: the route a run would take. */
static cJSON *routes_json(const struct doctor *d)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; arr && i < d->nroutes; i++) {
		const struct doctor_route *r = &d->routes[i];
		bool oa = r->info.route == EF_EMBED_ROUTE_OPENAI;
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "endpoint", r->endpoint);
		cJSON_AddStringToObject(o, "provider", "tei");
		cJSON_AddStringToObject(o, "route", oa ? "openai" : "embed");
		cJSON_AddStringToObject(o, "path", oa ? "/v1/embeddings" : "/embed");
		cJSON_AddStringToObject(o, "encoding", oa ? "base64" : "float");
		cJSON_AddStringToObject(o, "reason", r->info.why);
		cJSON_AddBoolToObject(o, "probed", r->info.probed);
		if (r->info.status)
			cJSON_AddNumberToObject(o, "openai_status", (double)r->info.status);
		else
			cJSON_AddNullToObject(o, "openai_status");
		add_ms(o, "embed_ms", r->info.native_ms);
		add_ms(o, "openai_ms", r->info.openai_ms);
		if (r->info.cosine >= -1)
			cJSON_AddNumberToObject(o, "cosine", r->info.cosine);
		else
			cJSON_AddNullToObject(o, "cosine");
		cJSON_AddBoolToObject(o, "failed", r->failed);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static void print_json(const struct app *app, const struct doctor *d, int rc)
{
	cJSON *root = cJSON_CreateObject();
	char *checks = checklist_json(&d->list), *text;

	cJSON_AddItemToObject(root, "settings", settings_json(app));
	cJSON_AddItemToObject(root, "checks", cJSON_Parse(checks ? checks : "[]"));
	cJSON_AddItemToObject(root, "routes", routes_json(d));
	cJSON_AddBoolToObject(root, "ok", rc == 0);
	cJSON_AddNumberToObject(root, "exit_code", rc);
	text = cJSON_PrintUnformatted(root);
	out_json(text);
	free(text);
	free(checks);
	cJSON_Delete(root);
}

int cmd_doctor(struct app *app)
{
	struct doctor d;
	int rc;

	doctor_run(app, &d);
	rc = doctor_exit_code(&d);
	if (app->cli->json) {
		print_json(app, &d, rc);
	} else {
		print_settings(app);
		print_checklist(&d.list, app->cli->ascii);
		out_printf(stdout, "\n%zu ok, %zu warnings, %zu failed\n",
			   ef_check_count(&d.list, EF_CHECK_PASS),
			   ef_check_count(&d.list, EF_CHECK_WARN),
			   ef_check_count(&d.list, EF_CHECK_FAIL));
	}
	doctor_free(&d);
	return rc;
}
