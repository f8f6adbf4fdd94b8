/*
 * plan.c - counts, a timed probe of the service, and the risks of a run.
 *
 * The estimate comes from embedding the first chunks the run would embed
 * (nothing is written), in batches of the run's size with the run's
 * concurrency: the same texts, sizes, service and parallelism as the run,
 * so it accounts for the model's speed on this corpus and for how far the
 * service really computes requests at once, rather than a guess.  Risks follow the procedure: a change of model, dimension or
 * chunking belongs in a new collection, and a change of provider needs
 * explicit approval.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/run/run_int.h"
#include "embfill/registry.h"
#include "embfill/scan.h"
#include "embfill/session.h"
#include "embfill/plan.h"
#include "embfill/recipe.h"
#include "embfill/redact.h"
#include "embfill/schema.h"
#include "embfill/strbuf.h"
#include "embfill/urllist.h"
#include "embfill/verify.h"

const char *ef_risk_level_name(enum ef_risk_level l)
{
	return l == EF_RISK_HIGH ? "high" : l == EF_RISK_MEDIUM ? "medium" : "info";
}

static void copy_models(struct ef_plan *p, const struct ef_status_report *rep)
{
	p->models = calloc(rep->nmodels + 1, sizeof(*p->models));
	for (size_t i = 0; p->models && i < rep->nmodels; i++) {
		p->models[i].model = strdup(rep->models[i].model ? rep->models[i].model : "(none)");
		p->models[i].dim = rep->models[i].dim;
		p->models[i].count = rep->models[i].count;
		p->nmodels++;
	}
}

static void model_risks(struct ef_plan *p, const struct ef_config *cfg)
{
	long long other = 0, all = 0;
	const char *top = NULL;

	for (size_t i = 0; i < p->nmodels; i++) {
		/* vectors of no recorded model are not a model change: see
		 * unrecorded_risk */
		if (strcmp(p->models[i].model, "(none)") == 0)
			continue;
		all += p->models[i].count;
		if (strcmp(p->models[i].model, cfg->embed_model) != 0 ||
		    p->models[i].dim != cfg->embed_dim) {
			other += p->models[i].count;
			if (!top)
				top = p->models[i].model;
		}
	}
	if (!other)
		return;
	if (other * 2 >= all)
		ef_plan_add_risk(p, EF_RISK_HIGH, "backfill into a new collection first, verify it, then "
			 "swap (`embfill run --into NEW`); in place, readers would see two models "
			 "at once", "model change: %lld of %lld vectors were made by \"%s\", not "
			 "\"%s\"", other, all, top, cfg->embed_model);
	else
		ef_plan_add_risk(p, EF_RISK_MEDIUM, "they are replaced in place, batch by batch",
			 "%lld of %lld vectors are of another model or dimension", other, all);
}

static void dim_risk(struct ef_plan *p, const struct ef_config *cfg)
{
	if (p->schema_dim && p->schema_dim != cfg->embed_dim)
		ef_plan_add_risk(p, EF_RISK_HIGH, "a new dimension needs a new collection (`embfill run "
			 "--into NEW`): this column cannot hold it",
			 "dimension: the vector column holds %d, EMBED_DIM is %d", p->schema_dim,
			 cfg->embed_dim);
}

static ef_status chunking_risk(ef_session *s, const struct ef_config *cfg, struct ef_plan *p,
			       struct ef_error *err)
{
	ef_db *db = ef_session_db(s);
	const char *params[1] = { p->collection };
	PGresult *r;

	if (ef_collsql_tool_query(db, cfg, "SELECT max_chunk_size, chunk_overlap FROM {tool}.collections"
				" WHERE name = $1 AND max_chunk_size IS NOT NULL", 1, params, &r,
		       err) != EF_OK)
		return err->status;
	if (PQntuples(r) == 0)
		ef_plan_add_risk(p, EF_RISK_INFO, "if the chunks were cut with other settings than "
			 "MAX_CHUNK_SIZE/CHUNK_OVERLAP, re-chunk into a new collection instead",
			 "the chunking of \"%s\" is not recorded, so a change of MAX_CHUNK_SIZE or "
			 "CHUNK_OVERLAP cannot be detected", p->collection);
	else if ((p->chunking_changed = ef_db_ll(r, 0, 0) != cfg->max_chunk_size ||
					ef_db_ll(r, 0, 1) != cfg->chunk_overlap))
		ef_plan_add_risk(p, EF_RISK_HIGH, "re-chunk into a new collection (`embfill chunk -C COLL "
			 "--into NEW`), backfill and verify it, then swap",
			 "chunking changed: \"%s\" was chunked at %lld/%lld, the settings say %d/%d",
			 p->collection, ef_db_ll(r, 0, 0), ef_db_ll(r, 0, 1), cfg->max_chunk_size,
			 cfg->chunk_overlap);
	PQclear(r);
	return EF_OK;
}

/* Who made the collection's embeddings (embfill's record of it, else the
 * newest run that wrote vectors) against the settings' provider and host:
 * the same test run and swap apply before they refuse. */
static ef_status provider_risk(ef_session *s, const struct ef_config *cfg, struct ef_plan *p,
			       struct ef_error *err)
{
	struct ef_origin o;
	struct ef_error differs;
	char *now = ef_url_hosts(cfg->embed_url);

	if (ef_coll_origin(s, p->collection, &o, err) != EF_OK) {
		free(now);
		return err->status;
	}
	ef_error_clear(&differs);
	if (ef_coll_check_provider(cfg, p->collection, &o, &differs) != EF_OK) {
		ef_plan_add_risk(p, EF_RISK_HIGH, "a change of provider needs explicit approval: confirm "
			 "with the collection's owner, then run with --approve-provider-change",
			 "provider change: the embeddings were made by %s at %s, the settings say "
			 "%s at %s", o.provider, o.host, cfg->provider, now ? now : "?");
		p->provider_change = true;
	}
	free(now);
	return EF_OK;
}

/* A recipe change is a model change: the old vectors and the new ones are
 * two vector spaces, so it goes through a new collection.  Vectors with no
 * recipe on record may be either: the provenance probe tells. */
static void recipe_risks(struct ef_plan *p, const struct ef_config *cfg, unsigned flags)
{
	const struct ef_counts *c = &p->counts;
	struct ef_recipe r = { cfg->doc_prefix, cfg->dimensions, cfg->truncate, cfg->normalize };
	char *desc = ef_recipe_describe(&r);

	if (c->stale_recipe && !(flags & EF_PLAN_ONLY_MISSING))
		ef_plan_add_risk(p, c->stale_recipe * 2 >= c->embedded ? EF_RISK_HIGH : EF_RISK_MEDIUM,
			 c->stale_recipe * 2 >= c->embedded
			 ? "backfill into a new collection first, verify it, then swap (`embfill "
			   "run --into NEW`); in place, readers would see two vector spaces at once"
			 : "they are replaced in place, batch by batch",
			 "recipe change: %lld of %lld vectors were made by another recipe than the "
			 "settings' (%s, %s)", c->stale_recipe, c->embedded, desc ? desc : "?",
			 cfg->recipe_id);
	if (c->recipe_unknown)
		ef_plan_add_risk(p, EF_RISK_MEDIUM, "`embfill verify -C COLL --provenance` re-embeds a sample "
			 "and names the recipe that made them; if it is another one, change the "
			 "settings to it, or re-embed into a new collection",
			 "%lld vectors have no recipe on record (made before recipes were recorded, "
			 "or by another tool); this run writes vectors made by %s", c->recipe_unknown,
			 desc ? desc : "the settings' recipe");
	free(desc);
}

/* Vectors nobody recorded (a framework's table): a run would embed them
 * all again, which may be the point, or hours of needless work. */
static void unrecorded_risk(struct ef_plan *p, const struct ef_config *cfg, unsigned flags)
{
	const struct ef_counts *c = &p->counts;

	if (!c->unrecorded)
		return;
	if (flags & EF_PLAN_ONLY_MISSING)
		ef_plan_add_risk(p, EF_RISK_INFO, "`embfill adopt` records them as a model's when that is "
			 "known; a run without --only embeds them again",
			 "%lld vectors have no model on record and are left as they are (--only "
			 "missing)", c->unrecorded);
	else {
		char advice[512];

		snprintf(advice, sizeof(advice), "if they are \"%s\"'s at dimension %d, `embfill "
			 "adopt` records them without embedding, and `run --only missing` embeds "
			 "only the chunks without a vector", cfg->embed_model, cfg->embed_dim);
		ef_plan_add_risk(p, EF_RISK_MEDIUM, advice, "%lld vectors have no model on record (made "
			 "before embfill or by another tool): this run embeds them all again",
			 c->unrecorded);
	}
}

static void count_risks(struct ef_plan *p)
{
	const struct ef_counts *c = &p->counts;

	if (c->quarantined)
		ef_plan_add_risk(p, EF_RISK_INFO, "`embfill verify` lists them with the service's reasons; "
			 "--retry-quarantined tries them again",
			 "%lld chunks are in quarantine and will be skipped", c->quarantined);
	if (c->cross_tenant || c->orphans)
		ef_plan_add_risk(p, EF_RISK_MEDIUM, "see `embfill verify`: the run does not touch rows of "
			 "other collections", "%lld cross-tenant and %lld orphan embedding rows are "
			 "filed under \"%s\"", c->cross_tenant, c->orphans, p->collection);
}

/* Chunks the probe embeds: two rounds of EMBED_CONCURRENCY batches on each
 * endpoint that answered (the second round finds the lanes as the run
 * keeps them, full), one round when two would be more than
 * PROBE_CHUNKS_MAX chunks. */
#define PROBE_CHUNKS_MAX 2048

static int probe_size(const struct ef_config *cfg, const struct ef_plan *p)
{
	long round = (long)cfg->batch_size * cfg->concurrency *
		     (long)(p->endpoints_ok > 1 ? p->endpoints_ok : 1);

	return (int)(round * 2 <= PROBE_CHUNKS_MAX ? round * 2 : round);
}

/*
 * The chunks the run would embed: how many, and the probe's first ones.
 * The run embeds the chunks without a vector and, unless --only missing,
 * the stale ones, less those in quarantine: with none quarantined (or
 * --retry-quarantined) that is what the counts already say (counted),
 * and the collection is not read again.  Nothing to embed reads no texts.
 */
static ef_status todo(ef_db *db, const struct ef_config *cfg, const struct ef_schema *sc,
		      struct ef_plan *p, unsigned flags, bool counted, char ***texts, size_t *n,
		      struct ef_error *err)
{
	struct ef_run_sql sql;
	char dim[16], limit[16];
	const char *params[6] = { p->collection, NULL, cfg->embed_model, dim, limit, NULL };
	PGresult *r = NULL;
	ef_status st = EF_OK;

	*texts = NULL;
	*n = 0;
	snprintf(dim, sizeof(dim), "%d", cfg->embed_dim);
	snprintf(limit, sizeof(limit), "%d", probe_size(cfg, p));
	if (ef_run_sql_build(db, cfg, sc, !(flags & EF_PLAN_RETRY_QUARANTINED),
			     (flags & EF_PLAN_ONLY_MISSING) != 0, &sql, err) != EF_OK)
		return err->status;
	if (counted && (!p->counts.quarantined || (flags & EF_PLAN_RETRY_QUARANTINED))) {
		p->todo = p->counts.missing + (flags & EF_PLAN_ONLY_MISSING ? 0 : p->counts.stale);
	} else if ((r = ef_db_query(db, sql.count, 4, params, PGRES_TUPLES_OK, err)) != NULL) {
		p->todo = ef_db_ll(r, 0, 0);
		PQclear(r);
		r = NULL;
	} else {
		st = err->status;
	}
	if (st == EF_OK && p->todo > 0 &&
	    !(r = ef_db_query(db, sql.select, 6, params, PGRES_TUPLES_OK, err)))
		st = err->status;
	ef_run_sql_free(&sql);
	if (!r)
		return st;
	*texts = calloc((size_t)PQntuples(r) + 1, sizeof(**texts));
	for (int i = 0; *texts && i < PQntuples(r); i++)
		(*texts)[(*n)++] = ef_recipe_apply(cfg->doc_prefix, PQgetvalue(r, i, 2));
	PQclear(r);
	return EF_OK;
}

/* Each endpoint of the list, one short request each: the plan shows which
 * answer, and counts only those in the estimate. */
static void probe_endpoints(const struct ef_embed_config *ecfg, struct ef_plan *p)
{
	size_t n = ef_embed_endpoint_count(ecfg);
	struct ef_embed_config c = *ecfg;

	c.dim = 0;
	for (size_t i = 0; i < n && i < EF_EMBED_MAX_ENDPOINTS; i++) {
		struct ef_plan_endpoint *x = &p->endpoints[p->nendpoints++];
		struct ef_embed_probe pr;
		struct ef_error err;

		ef_error_clear(&err);
		if (ef_embed_probe_at(&c, i, &pr, &err) == EF_OK && pr.dim != ecfg->dim)
			ef_error_set(&err, EF_ERR_EMBED, "returns dimension %d, EMBED_DIM is %d", pr.dim,
				     ecfg->dim);
		snprintf(x->url, sizeof(x->url), "%.159s", pr.endpoint);
		x->latency_ms = pr.latency_ms;
		x->dim = pr.dim;
		x->ok = err.status == EF_OK;
		snprintf(x->error, sizeof(x->error), "%.239s", err.msg);
		p->endpoints_ok += x->ok;
	}
}

/*
 * The endpoints the probe sends its batches to: those of EMBED_URL that
 * answered (all of them when none did, so that the probe names the error),
 * as a list of their own.  NULL when every endpoint answered, or there is
 * one: EMBED_URL as it is.
 */
static char *answering(const struct ef_embed_config *ecfg, const struct ef_plan *p)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;
	char **items;
	size_t n;

	if (!p->endpoints_ok || p->endpoints_ok == p->nendpoints ||
	    !(items = ef_url_list_split(ecfg->url, &n)))
		return NULL;
	for (size_t i = 0, k = 0; i < n && i < p->nendpoints; i++)
		if (p->endpoints[i].ok)
			ef_strbuf_addf(&sb, "%s%s", k++ ? "," : "", items[i]);
	ef_names_free(items);
	return ef_strbuf_take(&sb);
}

/* Seconds since a. */
static double since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/*
 * The estimate's range.  The probe's two rounds give two rates (the first
 * half of the batches to finish, and the second); the estimate uses the
 * second, and the range their extremes, widened to at least PROBE_SPREAD
 * each way for what the probe does not time: the database's reads and
 * writes, a service whose speed varies over the run.  The first round pays
 * once for what a run pays once too (connections, a service warming up),
 * which a short probe would otherwise spread over the whole run: at 8 in
 * flight on a fast service that overestimated a run by a quarter.
 */
#define PROBE_SPREAD 0.2

static void estimate(struct ef_plan *p, const double *done_at, const int *chunks, int nb)
{
	double wall = done_at[nb - 1], lo, hi, t_mid, r1, r2;
	int half = nb / 2, n1 = 0, n2 = 0;

	p->probe_rate = wall > 0 ? p->probe_chunks / wall : 0;
	p->est_seconds = p->probe_rate > 0 ? (double)p->todo / p->probe_rate : -1;
	lo = hi = p->est_seconds;
	if (p->est_seconds > 0 && half > 0) {
		t_mid = done_at[half - 1];
		for (int i = 0; i < nb; i++)
			*(i < half ? &n1 : &n2) += chunks[i];
		r1 = t_mid > 0 ? n1 / t_mid : 0;
		r2 = wall > t_mid ? n2 / (wall - t_mid) : 0;
		if (r1 > 0 && r2 > 0) {
			lo = (double)p->todo / (r1 > r2 ? r1 : r2);
			hi = (double)p->todo / (r1 > r2 ? r2 : r1);
			p->est_seconds = (double)p->todo / r2;
		}
	}
	p->est_low = fmin(lo, p->est_seconds * (1 - PROBE_SPREAD));
	p->est_high = fmax(hi, p->est_seconds * (1 + PROBE_SPREAD));
}

/* The service's pace is the run's only where the database keeps up: where
 * vector indexes are kept, the index probe's write says what the writes
 * alone take, and a run takes at least that. */
static void bounded_by_writes(struct ef_plan *p)
{
	double w = p->vindex.write_with_s;

	if (w <= 0 || p->est_seconds < 0 || w <= p->est_seconds)
		return;
	p->est_seconds = w;
	p->est_low = fmax(p->est_low, w * (1 - PROBE_SPREAD));
	p->est_high = fmax(p->est_high, w * (1 + PROBE_SPREAD));
}

/*
 * The probe: the first chunks the run would embed, in batches of the run's
 * size, through a pool of the run's concurrency on each endpoint that
 * answered, so that what it measures is what the run gets from this
 * service at this concurrency.  Requests
 * in flight at once speed a run up only as far as the service computes
 * them at once: one batch timed alone and multiplied by the concurrency
 * assumed they always do, and halved the real time on a service with one
 * compute lane.  Nothing is written.
 */
static ef_status probe(const struct ef_embed_config *ecfg, struct ef_plan *p, char **texts,
		       size_t n, struct ef_error *err)
{
	int nb = n ? (int)((n + (size_t)p->batch_size - 1) / (size_t)p->batch_size) : 0;
	double *done_at = calloc((size_t)nb + 1, sizeof(*done_at));
	int *chunks = calloc((size_t)nb + 1, sizeof(*chunks));
	struct ef_embed_result *res = NULL;
	ef_embed_pool *pool = NULL;
	struct ef_embed_config c = *ecfg;
	char *urls = answering(ecfg, p);
	struct timespec t0;
	ef_status st = EF_OK;
	int got = 0;

	p->probe_ms = -1;
	p->est_seconds = p->est_low = p->est_high = p->todo ? -1 : 0;
	if (!done_at || !chunks) {
		st = ef_error_oom(err, NULL);
		goto out;
	}
	if (!n)
		goto out;
	if (urls)
		c.url = urls;
	if ((st = ef_embed_pool_new(&c, (unsigned)p->concurrency, &pool, err)) != EF_OK)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; st == EF_OK && i < nb; i++) {
		size_t off = (size_t)i * (size_t)p->batch_size;
		size_t k = n - off < (size_t)p->batch_size ? n - off : (size_t)p->batch_size;

		st = ef_embed_pool_submit(pool, NULL, (const char *const *)texts + off, k, err);
	}
	while (st == EF_OK && got < nb) {
		if ((st = ef_embed_pool_next(pool, -1, &res, err)) != EF_OK || !res)
			continue;
		done_at[got] = since(&t0);
		chunks[got++] = (int)res->n;
		ef_embed_result_free(res);
		res = NULL;
	}
	if (st != EF_OK)
		goto out;
	p->probe_chunks = (int)n;
	p->probe_requests = nb;
	p->probe_ms = done_at[nb - 1] * 1e3;
	estimate(p, done_at, chunks, nb);
out:
	ef_embed_pool_free(pool);
	free(done_at);
	free(chunks);
	free(urls);
	return st;
}

/* Vectors nobody recorded the model or recipe of: a sample embedded again
 * says whether the settings' model and recipe made them.  The plan stands
 * without it when the service fails here. */
static void provenance(ef_session *s, const struct ef_embed_config *ecfg, struct ef_plan *p)
{
	struct ef_prov_opts o = { .collection = p->collection, .select = EF_PROV_UNRECORDED,
				  .sample = 10, .candidates = true };
	struct ef_error err;

	ef_error_clear(&err);
	if (ef_provenance(s, ecfg, &o, &p->prov, &err) == EF_OK) {
		p->probed = p->prov.sampled > 0;
		if (p->probed && !p->prov.ok)
			ef_plan_add_risk(p, EF_RISK_HIGH, "do not adopt them; `embfill verify --provenance` "
				 "shows the candidates; re-embed into a new collection, or set the "
				 "recipe that made them",
				 "provenance: %zu of %zu sampled vectors without a recorded model or "
				 "recipe were not made by the settings' model and recipe (%s)",
				 p->prov.sampled - p->prov.matches, p->prov.sampled,
				 p->prov.claimed_desc);
	} else {
		snprintf(p->prov_error, sizeof(p->prov_error), "%.290s", err.msg);
	}
}

static void free_texts(char **texts)
{
	for (size_t i = 0; texts && texts[i]; i++)
		free(texts[i]);
	free(texts);
}

/* The counts and the (model, dimension) pairs, from one pass. */
static ef_status gather(ef_session *s, struct ef_plan *p, struct ef_error *err)
{
	struct ef_status_report rep;

	if (ef_scan_status(s, p->collection, &rep, err) != EF_OK)
		return err->status;
	if (rep.n == 0) {
		ef_status_report_free(&rep);
		return ef_scan_unknown(s, p->collection, err);
	}
	p->counts = rep.rows[0];
	rep.rows[0].collection = NULL;
	copy_models(p, &rep);
	ef_status_report_free(&rep);
	return p->models ? EF_OK : ef_error_oom(err, NULL);
}

ef_status ef_plan_build(ef_session *s, const struct ef_embed_config *ecfg, const char *collection,
			unsigned flags, struct ef_plan *p, struct ef_error *err)
{
	ef_db *db = ef_session_db(s);
	const struct ef_config *cfg;
	const struct ef_schema *sc;
	struct ef_view view;
	char **texts = NULL;
	size_t n = 0;
	ef_status st;

	memset(p, 0, sizeof(*p));
	p->collection = strdup(collection);
	p->batch_size = ef_session_config(s)->batch_size;
	p->concurrency = ef_session_config(s)->concurrency;
	if (!p->collection)
		return ef_error_oom(err, NULL);
	if (ef_session_require(s, EF_NEED_TABLES, err) != EF_OK ||
	    ef_coll_view(s, collection, &view, err) != EF_OK)
		return err->status;
	cfg = view.cfg;
	sc = view.sc;
	p->schema_dim = sc->dim;
	p->only_missing = (flags & EF_PLAN_ONLY_MISSING) != 0;
	st = gather(s, p, err);
	/* first, so that the probe's chunks fill the lanes of the endpoints
	 * that answer */
	if (st == EF_OK && ef_embed_endpoint_count(ecfg) > 1)
		probe_endpoints(ecfg, p);
	if (st == EF_OK)
		st = todo(db, cfg, sc, p, flags, true, &texts, &n, err);
	if (st == EF_OK && sc->tool_schema)
		st = chunking_risk(s, cfg, p, err);
	if (st == EF_OK && sc->tool_schema)
		st = provider_risk(s, cfg, p, err);
	if (st == EF_OK) {
		dim_risk(p, cfg);
		if (!(flags & EF_PLAN_ONLY_MISSING))
			model_risks(p, cfg);
		unrecorded_risk(p, cfg, flags);
		recipe_risks(p, cfg, flags);
		count_risks(p);
	}
	/* a new collection embeds every chunk: count and probe all of them (a
	 * model name no vector has makes every chunk one to embed) */
	if (st == EF_OK && p->new_collection) {
		struct ef_config every = *cfg;
		every.embed_model = "\x1f(every chunk)";
		free_texts(texts);
		st = todo(db, &every, sc, p, flags & ~(unsigned)EF_PLAN_ONLY_MISSING, false, &texts,
			  &n, err);
	}
	p->batches = (p->todo + cfg->batch_size - 1) / cfg->batch_size;
	if (st == EF_OK)
		st = probe(ecfg, p, texts, n, err);
	if (st == EF_OK && (p->counts.unrecorded || p->counts.recipe_unknown))
		provenance(s, ecfg, p);
	if (st == EF_OK)
		st = ef_plan_index_build(s, cfg, p, err);
	if (st == EF_OK)
		bounded_by_writes(p);
	free_texts(texts);
	return st;
}

void ef_plan_free(struct ef_plan *p)
{
	for (size_t i = 0; i < p->nrisks; i++) {
		free(p->risks[i].what);
		free(p->risks[i].advice);
	}
	for (size_t i = 0; i < p->nmodels; i++)
		free(p->models[i].model);
	free(p->risks);
	free(p->models);
	free(p->collection);
	free(p->counts.collection);
	memset(p, 0, sizeof(*p));
}
