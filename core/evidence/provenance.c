/*
 * provenance.c - stored vectors against their chunks embedded again
 * (provenance.h).
 *
 * The sample is read in one statement: each chunk's key, text and stored
 * vector as real[] (whatever the column's type), ordered by a hash of the
 * key so that the same collection gives the same sample.  Every candidate
 * recipe embeds the same texts, so the cosines compare like with like.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "embfill/provenance.h"
#include "embfill/registry.h"
#include "embfill/scan.h"

/* $1 model, $2 dim, $3 collection, $4 sample size. */
static const char sample_tpl[] =
	"SELECT {ckeyd}, c.{content}, {vreal}::text FROM {chunks} c {cjoin} {ejoin} {bjoin}"
	" {cwhere} AND {e}.{vec} IS NOT NULL AND {vdims} = $2::int AND ({pick})"
	" ORDER BY md5({ckeyd}) LIMIT $4::int";

struct sample {
	size_t n;
	int dim;
	char **keys, **texts;
	float *stored;          /* n * dim */
};

static void sample_free(struct sample *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->keys ? s->keys[i] : NULL);
		free(s->texts ? s->texts[i] : NULL);
	}
	free(s->keys);
	free(s->texts);
	free(s->stored);
	memset(s, 0, sizeof(*s));
}

/* A real[] in PostgreSQL's text form, "{0.1,-2e-05,...}", into out[dim]. */
static bool parse_array(const char *t, float *out, int dim)
{
	char *end;

	if (*t++ != '{')
		return false;
	for (int i = 0; i < dim; i++) {
		out[i] = strtof(t, &end);
		if (end == t)
			return false;
		t = end;
		if (*t != (i + 1 < dim ? ',' : '}'))
			return false;
		t++;
	}
	return *t == '\0';
}

static ef_status read_sample(ef_session *s, const struct ef_view *v, const struct ef_prov_opts *o,
			     const char *model, int dim, size_t want, struct sample *out,
			     struct ef_error *err)
{
	const struct ef_collsql_params pp = { 1, 2, 3, v->cfg->recipe_id };
	char d[16], lim[24], *sql = NULL;
	const char *p[4] = { model, d, o->collection, lim };
	struct ef_sqlvars vars = { .n = 0 };
	PGresult *r = NULL;
	bool ok;

	memset(out, 0, sizeof(*out));
	snprintf(d, sizeof(d), "%d", dim);
	snprintf(lim, sizeof(lim), "%zu", want);
	ok = ef_collsql_vars(&vars, ef_session_db(s), &v->cfg->map, v->sc, &pp, true, err) &&
	     ef_sqlvars_frag(&vars, "vreal", v->sc->vec_type == EF_VEC_HALFVEC
			     ? "{e}.{vec}::vector::real[]" : "{e}.{vec}::real[]") &&
	     ef_sqlvars_frag(&vars, "pick", o->select == EF_PROV_FRESH ? "NOT ({stale_any})"
			     : "(({unrecorded}) OR ({fmodel} = $1::text AND ({recipe_unknown})))"
			       " AND ({fhash} IS NULL OR {fhash} = {chash})");
	if (ok)
		sql = ef_sqlvars_expand(&vars, sample_tpl);
	ef_sqlvars_free(&vars);
	if (!sql)
		return err->status ? err->status : ef_error_oom(err, NULL);
	r = ef_db_query(ef_session_db(s), sql, 4, p, PGRES_TUPLES_OK, err);
	free(sql);
	if (!r)
		return err->status;
	out->dim = dim;
	out->keys = calloc((size_t)PQntuples(r) + 1, sizeof(char *));
	out->texts = calloc((size_t)PQntuples(r) + 1, sizeof(char *));
	out->stored = calloc((size_t)PQntuples(r) * (size_t)dim + 1, sizeof(float));
	if (!out->keys || !out->texts || !out->stored) {
		PQclear(r);
		sample_free(out);
		return ef_error_oom(err, NULL);
	}
	for (int i = 0; i < PQntuples(r); i++) {
		size_t k = out->n;

		out->keys[k] = strdup(PQgetvalue(r, i, 0));
		out->texts[k] = strdup(PQgetvalue(r, i, 1));
		out->n++;
		if (!out->keys[k] || !out->texts[k]) {
			PQclear(r);
			sample_free(out);
			return ef_error_oom(err, NULL);
		}
		if (!parse_array(PQgetvalue(r, i, 2), out->stored + k * (size_t)dim, dim)) {
			ef_error_set(err, EF_ERR_DB, "the stored vector of chunk %s could not be read "
				     "as %d floats", out->keys[k], dim);
			PQclear(r);
			sample_free(out);
			return err->status;
		}
	}
	PQclear(r);
	return EF_OK;
}

/* Embeds the sample with one recipe: cos[i] for each chunk. */
static ef_status embed_with(const struct ef_embed_config *base, const char *model,
			    const struct ef_recipe *rc, const struct sample *smp, double *cos,
			    struct ef_error *err)
{
	struct ef_embed_config ec = *base;
	struct ef_embed_result *res = NULL;
	char **texts = calloc(smp->n + 1, sizeof(*texts));
	ef_status st = EF_OK;

	if (!texts)
		return ef_error_oom(err, NULL);
	ec.model = model;
	ec.dim = smp->dim;
	ec.sw.dimensions = rc->dimensions;
	for (size_t i = 0; st == EF_OK && i < smp->n; i++)
		if (!(texts[i] = ef_recipe_apply(rc->doc_prefix, smp->texts[i])))
			st = ef_error_oom(err, NULL);
	if (st == EF_OK)
		st = ef_embed_batch(&ec, (const char *const *)texts, smp->n, &res, err);
	for (size_t i = 0; st == EF_OK && i < smp->n; i++)
		cos[i] = res->rejected[i] ? 0 : ef_embed_cosine(res->vectors + i * (size_t)smp->dim,
						       smp->stored + i * (size_t)smp->dim, smp->dim);
	ef_embed_result_free(res);
	for (size_t i = 0; i < smp->n; i++)
		free(texts[i]);
	free(texts);
	return st;
}

static void summarise(struct ef_prov_candidate *c, const double *cos, size_t n, double min)
{
	double sum = 0;

	c->matches = 0;
	for (size_t i = 0; i < n; i++) {
		sum += cos[i];
		c->matches += cos[i] >= min;
	}
	c->mean_cosine = n ? sum / (double)n : 0;
}

static void set_candidate(struct ef_prov_candidate *c, const char *prefix, int dimensions,
			  const struct ef_recipe *claimed)
{
	char *desc;

	memset(c, 0, sizeof(*c));
	snprintf(c->prefix, sizeof(c->prefix), "%s", prefix ? prefix : "");
	c->recipe = *claimed;
	c->recipe.doc_prefix = c->prefix;
	c->recipe.dimensions = dimensions;
	desc = ef_recipe_describe(&c->recipe);
	snprintf(c->name, sizeof(c->name), "%s", desc ? desc : "?");
	free(desc);
	if (!ef_recipe_id(&c->recipe, c->id))
		c->id[0] = '\0';
	c->claimed = strcmp(c->prefix, claimed->doc_prefix ? claimed->doc_prefix : "") == 0 &&
		     dimensions == claimed->dimensions;
}

static bool have(const struct ef_prov_report *r, const char *prefix, int dims)
{
	for (size_t i = 0; i < r->ncand; i++)
		if (strcmp(r->cand[i].prefix, prefix) == 0 && r->cand[i].recipe.dimensions == dims)
			return true;
	return false;
}

static void add_candidate(struct ef_prov_report *r, const char *prefix, int dims,
			  const struct ef_recipe *claimed)
{
	if (r->ncand < EF_PROV_MAX_CANDIDATES && !have(r, prefix ? prefix : "", dims))
		set_candidate(&r->cand[r->ncand++], prefix, dims, claimed);
}

/* The other recipes the model could have been given: no prefix, each
 * prefix its documentation names, and the stored dimension asked for. */
static void candidates(struct ef_prov_report *r, const char *model, int dim,
		       const struct ef_config *cfg, const struct ef_recipe *claimed)
{
	const struct ef_known_model *km = ef_recipe_known(model);

	add_candidate(r, claimed->doc_prefix, claimed->dimensions, claimed);
	add_candidate(r, "", claimed->dimensions, claimed);
	if (km) {
		add_candidate(r, km->doc_prefix, claimed->dimensions, claimed);
		for (const char *const *p = km->others; p && *p; p++)
			add_candidate(r, *p, claimed->dimensions, claimed);
	}
	if (*cfg->query_prefix)
		add_candidate(r, cfg->query_prefix, claimed->dimensions, claimed);
	if (!claimed->dimensions && strcmp(cfg->provider, "tei") != 0)
		add_candidate(r, claimed->doc_prefix, dim, claimed);
}

static int by_mean(const void *a, const void *b)
{
	double x = ((const struct ef_prov_candidate *)a)->mean_cosine;
	double y = ((const struct ef_prov_candidate *)b)->mean_cosine;

	return x < y ? 1 : x > y ? -1 : 0;
}

static void worst(struct ef_prov_report *r, const struct sample *smp, const double *cos)
{
	bool *used = calloc(smp->n + 1, sizeof(bool));

	for (size_t w = 0; used && w < EF_PROV_EXAMPLES && w < smp->n; w++) {
		size_t best = smp->n;

		for (size_t i = 0; i < smp->n; i++)
			if (!used[i] && (best == smp->n || cos[i] < cos[best]))
				best = i;
		used[best] = true;
		snprintf(r->worst[w].key, sizeof(r->worst[w].key), "%s", smp->keys[best]);
		r->worst[w].cosine = cos[best];
		r->nworst = w + 1;
	}
	free(used);
}

ef_status ef_provenance(ef_session *s, const struct ef_embed_config *ecfg,
			const struct ef_prov_opts *o, struct ef_prov_report *r,
			struct ef_error *err)
{
	struct ef_view v;
	struct sample smp;
	struct ef_recipe claimed;
	const struct ef_config *cfg;
	const char *model;
	double *cos = NULL;
	char *desc;
	size_t want = o->sample ? o->sample : EF_PROV_DEFAULT_SAMPLE;
	int dim;
	ef_status st;

	memset(r, 0, sizeof(*r));
	if (want > EF_PROV_MAX_SAMPLE) {
		ef_error_set(err, EF_ERR_USAGE, "a sample of %zu chunks is more than %d", want,
			     EF_PROV_MAX_SAMPLE);
		return ef_error_hint(err, "20 to 100 chunks tell a recipe apart: --sample 50");
	}
	if (ef_session_require(s, EF_NEED_TABLES, err) != EF_OK ||
	    ef_coll_view(s, o->collection, &v, err) != EF_OK)
		return err->status;
	cfg = v.cfg;
	model = o->model ? o->model : cfg->embed_model;
	dim = o->dim ? o->dim : cfg->embed_dim;
	r->min_cosine = o->min_cosine > 0 ? o->min_cosine : cfg->provenance_min_cosine;
	claimed = (struct ef_recipe){ cfg->doc_prefix, cfg->dimensions, cfg->truncate,
				      cfg->normalize };
	desc = ef_recipe_describe(&claimed);
	snprintf(r->claimed_desc, sizeof(r->claimed_desc), "%s", desc ? desc : "?");
	free(desc);
	snprintf(r->claimed_id, sizeof(r->claimed_id), "%s", cfg->recipe_id);
	if ((st = read_sample(s, &v, o, model, dim, want, &smp, err)) != EF_OK)
		return st;
	r->ok = true;
	if (smp.n == 0) {
		sample_free(&smp);
		return EF_OK;
	}
	if (!(cos = calloc(smp.n, sizeof(*cos)))) {
		sample_free(&smp);
		return ef_error_oom(err, NULL);
	}
	r->sampled = smp.n;
	set_candidate(&r->cand[0], claimed.doc_prefix, claimed.dimensions, &claimed);
	r->ncand = 1;
	st = embed_with(ecfg, model, &claimed, &smp, cos, err);
	if (st == EF_OK) {
		summarise(&r->cand[0], cos, smp.n, r->min_cosine);
		r->matches = r->cand[0].matches;
		r->share = (double)r->matches / (double)smp.n;
		r->mean_cosine = r->cand[0].mean_cosine;
		r->min_cosine_seen = 1;
		for (size_t i = 0; i < smp.n; i++)
			if (cos[i] < r->min_cosine_seen)
				r->min_cosine_seen = cos[i];
		r->ok = r->share >= EF_PROV_MIN_SHARE;
		worst(r, &smp, cos);
	}
	if (st == EF_OK && !r->ok && o->candidates) {
		candidates(r, model, dim, cfg, &claimed);
		for (size_t c = 1; st == EF_OK && c < r->ncand; c++) {
			/* another dimension asked of the service answers that many floats;
			 * only the stored dimension can be compared */
			st = embed_with(ecfg, model, &r->cand[c].recipe, &smp, cos, err);
			if (st == EF_OK) {
				summarise(&r->cand[c], cos, smp.n, r->min_cosine);
			} else if (r->cand[c].recipe.dimensions && !claimed.dimensions) {
				/* a service that refuses "dimensions" rules that candidate out */
				r->cand[c].mean_cosine = -1;
				ef_error_clear(err);
				st = EF_OK;
			}
		}
		qsort(r->cand, r->ncand, sizeof(r->cand[0]), by_mean);
		r->margin = r->ncand > 1 ? r->cand[0].mean_cosine - r->cand[1].mean_cosine : 0;
	}
	free(cos);
	sample_free(&smp);
	return st;
}
