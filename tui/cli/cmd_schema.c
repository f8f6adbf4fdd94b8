/*
 * cmd_schema.c - `embfill schema init [--dim N]` and `embfill schema check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/check.h"
#include "embfill/db.h"
#include "embfill/schema.h"
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
	else if (strcmp(vt, "real") == 0 || strcmp(vt, "real[]") == 0)
		o->want = EF_VEC_REAL_ARRAY;
	else {
		ef_error_set(&err, EF_ERR_USAGE, "--vector-type \"%s\" is not known", vt);
		ef_error_hint(&err, "use auto, vector or real");
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

static int schema_check(struct app *app, ef_session *s)
{
	struct ef_checklist l = EF_CHECKLIST_INIT;
	const struct ef_checklist *found = ef_session_findings(s);
	const struct ef_schema sc = *ef_session_schema(s);

	describe_db(ef_session_db(s), &l);
	for (size_t i = 0; i < found->n; i++)
		ef_check_add(&l, found->items[i].level, found->items[i].what, found->items[i].hint,
			     "%s", found->items[i].detail);
	if (sc.embeddings_ok && sc.dim && sc.dim != app->cfg->embed_dim)
		ef_check_add(&l, EF_CHECK_FAIL, "dimension",
			     "set EMBED_DIM to the column's dimension, or embed a model of another "
			     "dimension into a new collection (`embfill run --into NEW`)",
			     "the vector column holds dimension %d, EMBED_DIM is %d", sc.dim,
			     app->cfg->embed_dim);
	return report(app, &l, ef_check_count(&l, EF_CHECK_FAIL) ? EF_ERR_CHECK : 0);
}

int cmd_schema(struct app *app)
{
	struct ef_error err;
	ef_session *s;

	ef_error_clear(&err);
	if (!app->cli->sub || (strcmp(app->cli->sub, "init") != 0 &&
			       strcmp(app->cli->sub, "check") != 0)) {
		ef_error_set(&err, EF_ERR_USAGE, "`embfill schema` needs init or check%s%s%s",
			     app->cli->sub ? ", not \"" : "", app->cli->sub ? app->cli->sub : "",
			     app->cli->sub ? "\"" : "");
		ef_error_hint(&err, "embfill schema init --dim N | embfill schema check");
		return out_error(&err);
	}
	if (strcmp(app->cli->sub, "check") == 0 && (app->cli->dim || app->cli->vector_type)) {
		ef_error_set(&err, EF_ERR_USAGE, "--dim and --vector-type go with `schema init`");
		return out_error(&err);
	}
	if (app_session(app, 0, &s, &err) != EF_OK)
		return out_error(&err);
	return strcmp(app->cli->sub, "init") == 0 ? schema_init(app, s) : schema_check(app, s);
}
