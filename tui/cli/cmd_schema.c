/*
 * cmd_schema.c - `embfill schema init [--dim N]`, `embfill schema check` and
 * `embfill schema detect [--table NAME]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/check.h"
#include "embfill/detect.h"
#include "embfill/db.h"
#include "embfill/schema.h"
#include "embfill/vindex.h"
#include "tui/cli/cli.h"
#include "tui/cli/report.h"
#include "tui/flow/app.h"

static int report(struct app *app, struct ef_checklist *l, int rc)
{
	if (app->cli->json) {
		char *text = checklist_json(l);
		out_json(text);
		free(text);
	} else {
		print_checklist(l, app->cli->ascii);
	}
	ef_checklist_free(l);
	return rc;
}

static int parse_init_opts(struct app *app, struct ef_schema_init_opts *o)
{
	const char *vt = app->cli->vector_type;
	struct ef_error err;
	char *end;
	long d;

	ef_error_clear(&err);
	o->dim = app->cfg->embed_dim;
	o->want = EF_VEC_UNKNOWN;
	if (app->cli->dim) {
		d = strtol(app->cli->dim, &end, 10);
		if (!*app->cli->dim || *end || d < 1 || d > 16000) {
			ef_error_set(&err, EF_ERR_USAGE, "--dim \"%s\" is not a dimension",
				     app->cli->dim);
			ef_error_hint(&err, "give a whole number from 1 to 16000, the dimension "
					    "of your model's vectors");
			return out_error(&err);
		}
		o->dim = (int)d;
	}
	if (!vt || strcmp(vt, "auto") == 0)
		return 0;
	if (strcmp(vt, "vector") == 0)
		o->want = EF_VEC_PGVECTOR;
	else if (strcmp(vt, "halfvec") == 0)
		o->want = EF_VEC_HALFVEC;
	else if (strcmp(vt, "real") == 0 || strcmp(vt, "real[]") == 0)
		o->want = EF_VEC_REAL_ARRAY;
	else {
		ef_error_set(&err, EF_ERR_USAGE, "--vector-type \"%s\" is not known", vt);
		ef_error_hint(&err, "use auto, vector, halfvec or real[]");
		return out_error(&err);
	}
	return 0;
}

static int schema_init(struct app *app, ef_session *s)
{
	struct ef_checklist l = EF_CHECKLIST_INIT;
	struct ef_schema_init_opts o;
	struct ef_error err;
	int rc;

	ef_error_clear(&err);
	if ((rc = parse_init_opts(app, &o)) != 0)
		return rc;
	if (ef_schema_init(ef_session_db(s), &app->cfg->map, &o, &l, &err) != EF_OK) {
		ef_checklist_free(&l);
		return out_error(&err);
	}
	rc = report(app, &l, 0);
	if (ef_session_rediscover(s, &err) != EF_OK && rc == 0)
		rc = out_error(&err);
	return rc;
}

static void describe_db(ef_db *db, struct ef_checklist *l)
{
	struct ef_db_info info;
	struct ef_error err;

	if (ef_db_info(db, &info, &err) != EF_OK)
		return;
	ef_check_add(l, EF_CHECK_PASS, "database", "", "PostgreSQL %s, database \"%s\", user \"%s\"",
		     info.server_version, info.database, info.user);
	if (info.vector_installed)
		ef_check_add(l, EF_CHECK_PASS, "pgvector", "", "extension vector %s installed",
			     info.vector_version);
}

/* What the vector indexes cost a run, from a probe that is rolled back. */
static void index_cost(ef_session *s, struct ef_checklist *l)
{
	struct ef_vindexes ix;
	struct ef_vindex_probe p;
	struct ef_error err;

	ef_error_clear(&err);
	if (ef_vindex_of(s, NULL, &ix, &err) != EF_OK ||
	    ef_vindex_probe_of(s, &ix, &p, &err) != EF_OK) {
		ef_check_add(l, EF_CHECK_WARN, "index cost", err.hint, "not measured: %s", err.msg);
		return;
	}
	ef_vindex_cost_check(&ix, &p, l);
}

static int schema_check(struct app *app, ef_session *s)
{
	struct ef_checklist l = EF_CHECKLIST_INIT;
	const struct ef_checklist *found = ef_session_findings(s);
	const struct ef_schema sc = *ef_session_schema(s);

	describe_db(ef_session_db(s), &l);
	for (size_t i = 0; i < found->n; i++)
		ef_check_add(&l, found->items[i].level, found->items[i].what, found->items[i].hint,
			     "%s", found->items[i].detail);
	if (sc.vindexes)
		index_cost(s, &l);
	if (sc.embeddings_ok && sc.dim && sc.dim != app->cfg->embed_dim)
		ef_check_add(&l, EF_CHECK_FAIL, "dimension",
			     "set EMBED_DIM to the column's dimension, or embed a model of another "
			     "dimension into a new collection (`embfill run --into NEW`)",
			     "the vector column holds dimension %d, EMBED_DIM is %d", sc.dim,
			     app->cfg->embed_dim);
	return report(app, &l, ef_check_count(&l, EF_CHECK_FAIL) ? EF_ERR_CHECK : 0);
}

/* A value as embfill.env reads it back: bare when it can be, else in
 * single quotes. */
static void print_value(const char *v)
{
	if (strcspn(v, " \t#'\"\\") == strlen(v)) {
		out_printf(stdout, "%s\n", v);
		return;
	}
	out_printf(stdout, "'%s'\n", v);
}

static void print_block(const struct ef_detect_candidate *d)
{
	out_printf(stdout, "# embfill.env for %s: %s.%s, %s\n", ef_detect_kind_name(d->kind),
		   d->table, d->vector_column, d->vector_type);
	out_printf(stdout, "# written by `embfill schema detect`; add DATABASE_URL and your "
			   "service's EMBED_* settings\n");
	for (size_t i = 0; i < d->nsettings; i++) {
		const struct ef_detect_setting *s = &d->settings[i];

		if (strcmp(s->key, "EMBED_DIM") == 0) {
			out_printf(stdout, "# EMBED_DIM must be the column's dimension: %s\n", s->why);
			continue;
		}
		out_printf(stdout, "\n# %s\n%s=", s->why, s->key);
		print_value(s->value);
	}
}

static cJSON *candidate_json(const struct ef_detect_candidate *d)
{
	cJSON *o = cJSON_CreateObject(), *set = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "table", d->table);
	cJSON_AddStringToObject(o, "kind", ef_detect_kind_name(d->kind));
	cJSON_AddStringToObject(o, "vector_column", d->vector_column);
	cJSON_AddStringToObject(o, "vector_type", d->vector_type);
	if (d->dim)
		cJSON_AddNumberToObject(o, "dim", d->dim);
	else
		cJSON_AddNullToObject(o, "dim");
	for (size_t i = 0; i < d->nsettings; i++)
		if (strcmp(d->settings[i].key, "EMBED_DIM") != 0)
			cJSON_AddStringToObject(set, d->settings[i].key, d->settings[i].value);
	cJSON_AddItemToObject(o, "settings", set);
	return o;
}

/*
 * The settings block of the one table that holds vectors (or of --table);
 * with several and no --table, the candidates go to stderr and it exits 2,
 * so that stdout only ever carries a block that can be saved as is.
 */
static int schema_detect(struct app *app, ef_session *s)
{
	struct ef_detect d;
	struct ef_error err;
	int rc = 0;

	ef_error_clear(&err);
	if (ef_detect_tables(ef_session_db(s), app->cli->table, &d, &err) != EF_OK)
		return out_error(&err);
	if (app->cli->json) {
		cJSON *arr = cJSON_CreateArray();
		char *text;

		for (size_t i = 0; i < d.n; i++)
			cJSON_AddItemToArray(arr, candidate_json(&d.c[i]));
		text = cJSON_PrintUnformatted(arr);
		out_json(text);
		free(text);
		cJSON_Delete(arr);
	} else if (d.n == 1) {
		print_block(&d.c[0]);
	} else if (d.n == 0) {
		ef_error_set(&err, EF_ERR_CHECK, "no table in this database has a vector column");
		ef_error_hint(&err, "check DATABASE_URL; `embfill schema init` creates the default "
				    "layout");
		rc = out_error(&err);
	} else {
		out_printf(stderr, "embfill: %zu tables hold vectors; choose one with --table:\n",
			   d.n);
		for (size_t i = 0; i < d.n; i++)
			out_printf(stderr, "  %s  (%s: %s %s)\n", d.c[i].table,
				   ef_detect_kind_name(d.c[i].kind), d.c[i].vector_column,
				   d.c[i].vector_type);
		out_printf(stderr, "hint: embfill schema detect --table %s\n", d.c[0].table);
		rc = EF_ERR_USAGE;
	}
	ef_detect_free(&d);
	return rc;
}

int cmd_schema(struct app *app)
{
	struct ef_error err;
	ef_session *s;

	ef_error_clear(&err);
	const char *sub = app->cli->sub;

	if (!sub || (strcmp(sub, "init") != 0 && strcmp(sub, "check") != 0 &&
		     strcmp(sub, "detect") != 0)) {
		ef_error_set(&err, EF_ERR_USAGE, "`embfill schema` needs init, check or detect%s%s%s",
			     sub ? ", not \"" : "", sub ? sub : "", sub ? "\"" : "");
		ef_error_hint(&err, "embfill schema init --dim N | embfill schema check | embfill "
				    "schema detect [--table NAME]");
		return out_error(&err);
	}
	if (strcmp(sub, "init") != 0 && (app->cli->dim || app->cli->vector_type)) {
		ef_error_set(&err, EF_ERR_USAGE, "--dim and --vector-type go with `schema init`");
		return out_error(&err);
	}
	if (strcmp(sub, "detect") != 0 && app->cli->table) {
		ef_error_set(&err, EF_ERR_USAGE, "--table goes with `schema detect`");
		return out_error(&err);
	}
	if (app_session(app, 0, &s, &err) != EF_OK)
		return out_error(&err);
	if (strcmp(sub, "detect") == 0)
		return schema_detect(app, s);
	return strcmp(sub, "init") == 0 ? schema_init(app, s) : schema_check(app, s);
}
