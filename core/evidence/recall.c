/*
 * recall.c - how much of the exact top k a vector index returns.
 *
 * The spot-check's query vectors are ranked twice over the collection's
 * rows, as an application asks (its collection, ORDER BY the index's own
 * distance operator, LIMIT k): once through the index, with every other
 * path disabled for the transaction and EXPLAIN confirming the index is
 * the one used, and once exactly, in one scan that computes every query's
 * distance to every row.  A row the index returned counts when it is in
 * the exact top k, or ties its last distance.  HNSW and IVFFlat trade
 * recall for speed (hnsw.ef_search, ivfflat.probes, the build's m,
 * ef_construction and lists), and a filter on the collection drops
 * candidates after the index chose them: recall says what the searches of
 * this collection really get.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "core/evidence/recall.h"
#include "embfill/strbuf.h"
#include "embfill/vindex.h"

struct hit {
	long long n;
	char *key;
	double d;
};

struct ranking {
	struct hit *h;
	size_t n;
};

static void ranking_free(struct ranking *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->h[i].key);
	free(r->h);
	memset(r, 0, sizeof(*r));
}

static bool take(const PGresult *res, struct ranking *r)
{
	r->h = calloc((size_t)PQntuples(res) + 1, sizeof(*r->h));
	for (int i = 0; r->h && i < PQntuples(res); i++) {
		struct hit *h = &r->h[r->n];

		h->n = ef_db_ll(res, i, 0);
		h->d = strtod(PQgetvalue(res, i, 2), NULL);
		if (!(h->key = strdup(PQgetvalue(res, i, 1))))
			return false;
		r->n++;
	}
	return r->h != NULL;
}

/* The statements' shared parts: the table's key as text, the collection
 * filter, the vector and its type. */
static bool frags(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m, const char *op,
		  const char *type, struct ef_error *err)
{
	bool sep = m->layout == EF_LAYOUT_SEPARATE;
	bool two = m->nkey > 1;
	const char *coll = sep ? m->emb_collection : m->chunk_collection;
	const char *filter = !coll ? "$2::text IS NULL AND"
			     : m->coll_mode == EF_COLL_LOOKUP
			     ? "x.{xcoll} = (SELECT l.{lkey} FROM {lookup} l WHERE l.{lname} = $2) AND"
			     : "x.{xcoll} = $2 AND";

	return ef_collsql_quote(v, db, m, err) &&
	       ef_sqlvars_raw(v, "op", op) && ef_sqlvars_raw(v, "type", type) &&
	       ef_sqlvars_frag(v, "xtable", sep ? "{embeddings}" : "{chunks}") &&
	       ef_sqlvars_frag(v, "xkey", sep ? (two ? "x.{ek1}::text || '/' || x.{ek2}::text"
						    : "x.{ek1}::text")
					      : (two ? "x.{ck1}::text || '/' || x.{ck2}::text"
						     : "x.{ck1}::text")) &&
	       (!coll || ef_sqlvars_frag(v, "xcoll", sep ? "{ecoll}" : "{ccoll}")) &&
	       ef_sqlvars_frag(v, "xfilter", filter);
}

static const char index_sql[] =
	"SELECT q.n, r.k, r.d FROM unnest($1::{type}[]) WITH ORDINALITY AS q(v, n)"
	" CROSS JOIN LATERAL (SELECT {xkey} AS k, x.{vec} {op} q.v AS d FROM {xtable} x"
	"  WHERE {xfilter} x.{vec} IS NOT NULL ORDER BY x.{vec} {op} q.v LIMIT $3::int) r"
	" ORDER BY q.n, r.d";

/* One scan: every row's distance to every query, the k best per query. */
static const char exact_sql[] =
	"SELECT n, k, d FROM (SELECT dq.n, {xkey} AS k, dq.d,"
	"  row_number() OVER (PARTITION BY dq.n ORDER BY dq.d, {xkey}) AS rn"
	"  FROM {xtable} x CROSS JOIN LATERAL (SELECT q.n, x.{vec} {op} q.v AS d"
	"   FROM unnest($1::{type}[]) WITH ORDINALITY AS q(v, n)) dq"
	"  WHERE {xfilter} x.{vec} IS NOT NULL) s WHERE rn <= $3::int ORDER BY n, rn";

static PGresult *run(ef_db *db, const struct ef_sqlvars *v, const char *tpl, bool explain,
		     const char *const *p, int np, struct ef_error *err)
{
	char *body = ef_sqlvars_expand(v, tpl), *sql = NULL;
	PGresult *r = NULL;

	if (body && asprintf(&sql, "%s%s", explain ? "EXPLAIN " : "", body) > 0)
		r = ef_db_query(db, sql, np, p, PGRES_TUPLES_OK, err);
	else
		ef_error_oom(err, NULL);
	free(body);
	free(sql);
	return r;
}

/* Which of the vector indexes the index path's plan scans, if any. */
static const struct ef_vindex *used_index(const PGresult *plan, const struct ef_vindexes *ix)
{
	for (int i = 0; i < PQntuples(plan); i++)
		for (size_t j = 0; j < ix->n; j++) {
			char needle[160];

			snprintf(needle, sizeof(needle), " using %s ", ix->ix[j].name);
			if (strstr(PQgetvalue(plan, i, 0), needle))
				return &ix->ix[j];
		}
	return NULL;
}

/* Ranks through the index, in a transaction that leaves the planner no
 * other way, after EXPLAIN names the index. */
static ef_status through_index(ef_db *db, const struct ef_sqlvars *v, const char *const *p,
			       int np, const struct ef_vindexes *ix, const struct ef_vindex **used,
			       struct ranking *out, struct ef_error *err)
{
	PGresult *r = NULL;
	struct ef_error ignored;
	ef_status st = ef_db_exec(db, "BEGIN", err);

	if (st == EF_OK)
		st = ef_db_exec(db, "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;"
				" SET LOCAL enable_sort = off", err);
	if (st == EF_OK && (r = run(db, v, index_sql, true, p, np, err)) == NULL)
		st = err->status;
	if (st == EF_OK) {
		*used = used_index(r, ix);
		PQclear(r);
		r = NULL;
	}
	if (st == EF_OK && *used && (r = run(db, v, index_sql, false, p, np, err)) == NULL)
		st = err->status;
	if (r && !take(r, out))
		st = ef_error_oom(err, NULL);
	PQclear(r);
	ef_db_exec(db, "ROLLBACK", &ignored);
	return st;
}

static ef_status exactly(ef_db *db, const struct ef_sqlvars *v, const char *const *p, int np,
			 struct ranking *out, struct ef_error *err)
{
	PGresult *r = NULL;
	struct ef_error ignored;
	ef_status st = ef_db_exec(db, "BEGIN", err);

	if (st == EF_OK)
		st = ef_db_exec(db, "SET LOCAL enable_indexscan = off", err);
	if (st == EF_OK && (r = run(db, v, exact_sql, false, p, np, err)) == NULL)
		st = err->status;
	if (r && !take(r, out))
		st = ef_error_oom(err, NULL);
	PQclear(r);
	ef_db_exec(db, "ROLLBACK", &ignored);
	return st;
}

/* Per query: the exact top k, and how many of them the index returned. */
static void score(const struct ranking *ex, const struct ranking *ix, size_t nq,
		  struct ef_spot_recall *out)
{
	for (size_t q = 1; q <= nq; q++) {
		size_t want = 0, got = 0;
		double last = -INFINITY;

		for (size_t i = 0; i < ex->n; i++)
			if (ex->h[i].n == (long long)q) {
				want++;
				last = ex->h[i].d;
			}
		for (size_t i = 0; i < ix->n && got < want; i++) {
			bool in = false;

			if (ix->h[i].n != (long long)q)
				continue;
			for (size_t j = 0; j < ex->n && !in; j++)
				in = ex->h[j].n == (long long)q && strcmp(ex->h[j].key, ix->h[i].key) == 0;
			got += in || ix->h[i].d <= last + 1e-9 * (1 + fabs(last));
		}
		out->expected += want;
		out->found += got;
	}
	out->recall = out->expected ? (double)out->found / (double)out->expected : -1;
}

/* The setting that trades the index's recall for speed, as the session
 * has it (the database's or role's default, as an application gets). */
static void search_setting(ef_db *db, const char *method, char *buf, size_t n)
{
	const char *name = strcmp(method, "hnsw") == 0 ? "hnsw.ef_search" : "ivfflat.probes";
	const char *p[1] = { name };
	struct ef_error ignored;
	PGresult *r = ef_db_query(db, "SELECT current_setting($1, true)", 1, p, PGRES_TUPLES_OK,
				  &ignored);

	buf[0] = '\0';
	if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		snprintf(buf, n, "%s=%s", name, PQgetvalue(r, 0, 0));
	PQclear(r);
}

static void not_measured(struct ef_spot_recall *r, const char *why)
{
	r->recall = -1;
	snprintf(r->why_not, sizeof(r->why_not), "%s", why);
}

static ef_status measure_one(ef_db *db, const struct ef_mapping *m, const struct ef_vindexes *ix,
			     const struct ef_vindex *want, const char *type, const char *vectors,
			     const char *coll_value, size_t nq, int k, struct ef_spot_recall *out,
			     struct ef_error *err)
{
	struct ef_sqlvars v = { .n = 0 };
	struct ranking ex = { NULL, 0 }, in = { NULL, 0 };
	const struct ef_vindex *used = NULL;
	char kbuf[16];
	const char *p[3] = { vectors, coll_value, kbuf };
	ef_status st = EF_OK;

	snprintf(kbuf, sizeof(kbuf), "%d", k);
	out->queries = nq;
	out->k = k;
	snprintf(out->op, sizeof(out->op), "%s", want->op);
	if (!frags(&v, db, m, want->op, type, err))
		st = err->status ? err->status : ef_error_oom(err, NULL);
	if (st == EF_OK)
		st = through_index(db, &v, p, 3, ix, &used, &in, err);
	if (st == EF_OK && !used)
		not_measured(out, "the planner does not use a vector index for this collection's "
			     "queries (a partial index of other rows, or the filter first)");
	if (st == EF_OK && used) {
		snprintf(out->index, sizeof(out->index), "%s", used->qname);
		snprintf(out->method, sizeof(out->method), "%s", used->method);
		search_setting(db, used->method, out->setting, sizeof(out->setting));
		st = exactly(db, &v, p, 3, &ex, err);
	}
	if (st == EF_OK && used)
		score(&ex, &in, nq, out);
	ranking_free(&ex);
	ranking_free(&in);
	ef_sqlvars_free(&v);
	return st;
}

ef_status ef_recall_measure(ef_session *s, const struct ef_view *view, const char *vectors,
			    size_t nq, int k, struct ef_spot_report *out, struct ef_error *err)
{
	const struct ef_config *cfg = view->cfg;
	const char *type = view->sc->vec_type == EF_VEC_HALFVEC ? "halfvec" : "vector";
	const char *coll = cfg->map.coll_mode == EF_COLL_TABLE ? NULL : view->collection;
	struct ef_vindexes ix;

	if (view->sc->vec_type != EF_VEC_PGVECTOR && view->sc->vec_type != EF_VEC_HALFVEC)
		return EF_OK;
	if (ef_vindex_of(s, view->collection, &ix, err) != EF_OK)
		return err->status;
	for (size_t i = 0; i < ix.n && out->nrecall < EF_SPOT_RECALL_MAX; i++) {
		bool seen = false;

		for (size_t j = 0; j < out->nrecall && !seen; j++)
			seen = strcmp(out->recall[j].op, ix.ix[i].op) == 0;
		if (seen || !ix.ix[i].valid || !ix.ix[i].op[0] || ix.ix[i].expression)
			continue;
		if (measure_one(ef_session_db(s), &cfg->map, &ix, &ix.ix[i], type, vectors, coll, nq,
				k, &out->recall[out->nrecall], err) != EF_OK)
			return err->status;
		out->nrecall++;
	}
	return EF_OK;
}
