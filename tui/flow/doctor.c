/*
 * doctor.c - the checks shared by `embfill doctor` and the console's locate
 * step; see doctor.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/check.h"
#include "embfill/db.h"
#include "embfill/embed.h"
#include "embfill/schema.h"
#include "embfill/recipe.h"
#include "tui/flow/app.h"
#include "tui/flow/doctor.h"

static void check_database(struct app *app, struct doctor *d)
{
	const struct ef_checklist *found;
	struct ef_error err;
	struct ef_db_info info;
	ef_session *s;

	ef_error_clear(&err);
	/* a new session: the checks see the database as it is now, after
	 * whatever the operator fixed since the last look */
	app_session_close(app);
	if (app_session(app, 0, &s, &err) != EF_OK) {
		d->db_down = err.status == EF_ERR_DB;
		ef_check_add(&d->list, EF_CHECK_FAIL, "database", err.hint, "%s", err.msg);
		return;
	}
	if (ef_db_info(ef_session_db(s), &info, &err) == EF_OK)
		ef_check_add(&d->list, EF_CHECK_PASS, "database", "",
			     "PostgreSQL %s at %s port %s, database \"%s\", user \"%s\"",
			     info.server_version, info.host, info.port, info.database, info.user);
	found = ef_session_findings(s);
	for (size_t i = 0; i < found->n; i++)
		ef_check_add(&d->list, found->items[i].level, found->items[i].what,
			     found->items[i].hint, "%s", found->items[i].detail);
	d->sc = *ef_session_schema(s);
	d->schema_known = d->sc.embeddings_ok;
}

static void check_dims(struct app *app, struct doctor *d, const struct ef_embed_probe *p)
{
	int want = app->cfg->embed_dim;

	if (p->dim == want)
		ef_check_add(&d->list, EF_CHECK_PASS, "dimension", "",
			     "model \"%s\" returns dimension %d = EMBED_DIM", app->cfg->embed_model,
			     p->dim);
	else
		ef_check_add(&d->list, EF_CHECK_FAIL, "dimension",
			     "set EMBED_DIM to what the model returns, or set EMBED_MODEL to the "
			     "model the collection was embedded with",
			     "model \"%s\" returns dimension %d, EMBED_DIM is %d",
			     app->cfg->embed_model, p->dim, want);
	if (!d->schema_known || !d->sc.dim)
		return;
	if (d->sc.dim == p->dim)
		ef_check_add(&d->list, EF_CHECK_PASS, "schema dimension", "",
			     "the vector column holds dimension %d, as the service returns",
			     d->sc.dim);
	else
		ef_check_add(&d->list, EF_CHECK_FAIL, "schema dimension",
			     "vectors of another dimension go into a new collection "
			     "(`embfill run --into NEW`); never into this column",
			     "the vector column holds dimension %d, the service returns %d",
			     d->sc.dim, p->dim);
}

/*
 * Only the openai API has a choice of encoding; base64 costs the client no
 * parsing, so a service that speaks only numbers is worth knowing about.
 */
static void check_encoding(struct app *app, struct doctor *d, const struct ef_embed_probe *p)
{
	const char *setting = app->cfg->encoding;

	if (strcmp(app->cfg->provider, "openai") != 0)
		return;
	if (p->encoding == EF_EMBED_ENC_BASE64)
		ef_check_add(&d->list, EF_CHECK_PASS, "vector encoding", "",
			     "the service sends vectors as base64 float32 (EMBED_ENCODING=%s)", setting);
	else if (p->base64_refused || p->base64_ignored)
		ef_check_add(&d->list, EF_CHECK_PASS, "vector encoding",
			     "nothing to do; EMBED_ENCODING=float skips asking for base64 first",
			     "the service %s base64 and sends decimal numbers, which cost more CPU "
			     "to read (EMBED_ENCODING=%s)",
			     p->base64_refused ? "refuses" : "ignores", setting);
	else
		ef_check_add(&d->list, EF_CHECK_PASS, "vector encoding", "",
			     "the service sends vectors as decimal numbers (EMBED_ENCODING=%s)",
			     setting);
}

/*
 * A tei endpoint may be driven through its OpenAI route with base64 when
 * that gives the same vectors as /embed and is not slower; a run decides
 * the same way at its start, with the same probe.
 */
static void check_route(struct doctor *d, const struct ef_embed_config *ec,
			struct ef_embed_probe *p, size_t i, size_t n)
{
	const struct ef_embed_route_info *ri = &p->route;
	struct doctor_route *dr;
	char what[48];

	ef_embed_probe_route(ec, i, p);
	snprintf(what, sizeof(what), n > 1 ? "route of endpoint %zu of %zu" : "route", i + 1, n);
	if (p->route_failed)
		ef_check_add(&d->list, EF_CHECK_FAIL, what,
			     "set EMBED_ENCODING=auto (or float): /embed gives the same vectors, as "
			     "numbers", "tei: EMBED_ENCODING=base64 needs the OpenAI route "
			     "/v1/embeddings, which cannot be used (%s)", ri->why);
	else
		ef_check_add(&d->list, EF_CHECK_PASS, what, "", "tei: %s (%s)",
			     ef_embed_route_name(EF_EMBED_TEI, ri->route), ri->why);
	if (d->nroutes >= EF_EMBED_MAX_ENDPOINTS)
		return;
	dr = &d->routes[d->nroutes++];
	snprintf(dr->endpoint, sizeof(dr->endpoint), "%s", p->endpoint);
	dr->info = *ri;
	dr->failed = p->route_failed;
}

/* The recipe the vectors will be made by, and where each part came from. */
static void check_recipe(struct app *app, struct doctor *d)
{
	const struct ef_config *c = app->cfg;
	struct ef_recipe r = { c->doc_prefix, c->dimensions, c->truncate, c->normalize };
	char *desc = ef_recipe_describe(&r), dorig[160], qorig[160];

	ef_settings_origin(app->settings, EF_K_EMBED_DOCUMENT_PREFIX, dorig, sizeof(dorig));
	ef_settings_origin(app->settings, EF_K_EMBED_QUERY_PREFIX, qorig, sizeof(qorig));
	ef_check_add(&d->list, EF_CHECK_PASS, "recipe", "", "%s for model \"%s\" (%s): "
		     "documents prefixed \"%s\" (%s), queries \"%s\" (%s)", desc ? desc : "?",
		     c->embed_model, c->recipe_id, c->doc_prefix, dorig, c->query_prefix, qorig);
	free(desc);
}

/* One endpoint of the service: reachable, answering, how fast.  Returns
 * whether it answered well (p filled). */
static bool check_endpoint(struct app *app, struct doctor *d, const struct ef_embed_config *ec,
			   size_t i, size_t n, struct ef_embed_probe *p)
{
	struct ef_error err;
	char what[48];

	ef_error_clear(&err);
	snprintf(what, sizeof(what), n > 1 ? "endpoint %zu of %zu" : "embedding service", i + 1, n);
	if (ef_embed_probe_at(ec, i, p, &err) != EF_OK && !p->reachable) {
		d->service_down = true;
		ef_check_add(&d->list, EF_CHECK_FAIL, what, err.hint, "%s (EMBED_PROVIDER=%s)",
			     err.msg, app->cfg->provider);
	} else if (err.status != EF_OK) {
		ef_check_add(&d->list, EF_CHECK_FAIL, what, err.hint,
			     "%s answered HTTP %ld in %.0f ms: %s", p->endpoint, p->http_status,
			     p->latency_ms, err.msg);
	} else {
		ef_check_add(&d->list, EF_CHECK_PASS, what, "", "%s (%s) answered in %.0f ms",
			     p->endpoint, app->cfg->provider, p->latency_ms);
		return true;
	}
	return false;
}

/* Several endpoints must be one vector space: the same texts to each. */
static void check_agree(struct app *app, struct doctor *d, struct ef_embed_config *ec, int dim)
{
	struct ef_error err;
	size_t n = ef_embed_endpoint_count(ec);

	ef_error_clear(&err);
	ec->dim = dim;
	if (ef_embed_endpoints_agree(ec, app->cfg->doc_prefix, &err) == EF_OK)
		ef_check_add(&d->list, EF_CHECK_PASS, "endpoints agree", "",
			     "the %zu endpoints give the same vectors for the same texts", n);
	else
		ef_check_add(&d->list, EF_CHECK_FAIL, "endpoints agree", err.hint, "%s", err.msg);
}

static void check_service(struct app *app, struct doctor *d)
{
	struct ef_embed_config ec;
	struct ef_embed_probe p, first = { 0 };
	struct ef_error err;
	size_t n, good = 0;

	ef_error_clear(&err);
	if (app_embed_config(app, &ec, &err) != EF_OK) {
		ef_check_add(&d->list, EF_CHECK_FAIL, "embedding service", err.hint, "%s", err.msg);
		d->service_down = err.status == EF_ERR_EMBED;
		return;
	}
	ec.dim = 0; /* probe: learn the dimension, judge it here */
	n = ef_embed_endpoint_count(&ec);
	for (size_t i = 0; i < n; i++) {
		if (!check_endpoint(app, d, &ec, i, n, &p))
			continue;
		if (ec.provider == EF_EMBED_TEI)
			check_route(d, &ec, &p, i, n);
		if (!good++)
			first = p;
	}
	if (!good)
		return;
	check_encoding(app, d, &first);
	check_dims(app, d, &first);
	check_recipe(app, d);
	if (n > 1 && good == n && first.dim > 0)
		check_agree(app, d, &ec, first.dim);
}

void doctor_run(struct app *app, struct doctor *d)
{
	memset(d, 0, sizeof(*d));
	check_database(app, d);
	check_service(app, d);
}

void doctor_free(struct doctor *d)
{
	ef_checklist_free(&d->list);
}

int doctor_exit_code(const struct doctor *d)
{
	return d->db_down ? EF_ERR_DB : d->service_down ? EF_ERR_EMBED
		: ef_check_count(&d->list, EF_CHECK_FAIL) ? EF_ERR_CHECK : 0;
}

bool doctor_show_key(const struct app *app, enum ef_key k)
{
	return k < EF_K_SCHEMA_LAYOUT ||
	       ef_settings_origin_kind(app->settings, k) != EF_FROM_DEFAULT;
}
