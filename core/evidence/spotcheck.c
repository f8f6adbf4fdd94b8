/*
 * spotcheck.c - retrieval with citations, restricted to one collection.
 *
 * Three statements: counts (is the collection there, are its vectors
 * comparable with the query's), the sample (when there are no queries),
 * and the search, which ranks every query at once: the query vectors
 * travel as one text[] parameter and a LATERAL subquery takes each one's
 * top k, so 16 queries cost one round trip.  The cosine over real[] is
 * computed in plain SQL (unnest of both arrays side by side), because the
 * tool creates no functions in anyone's database; pgvector's <=> is used
 * where it exists, so its index can serve the ORDER BY.
 *
 * Every text that reaches the report (titles, sources, snippets) is made
 * one line in the database (EF_SQL_ONELINE), where left() cuts characters,
 * not bytes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "embfill/recipe.h"
#include "embfill/registry.h"
#include "embfill/scan.h"
#include "embfill/session.h"
#include "embfill/ident.h"
#include "embfill/spotcheck.h"
#include "embfill/strbuf.h"

static const char count_sql[] =
	"SELECT count(*), count(*) FILTER (WHERE {e}.{vec} IS NOT NULL"
	"  AND {fmodel} = $1::text AND {vdims} = $2::int)"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin} {cwhere}";

/* ntile() slices the fresh chunks by key into $4 parts; the lowest key of
 * each is the sample: spread over the collection, and the same every time.
 * A blank chunk would make an empty query, which services reject. */
static const char sample_sql[] =
	"SELECT s.id, left(" EF_SQL_ONELINE("left(c.{content}::text, 4000)") ", 2000)"
	" FROM (SELECT DISTINCT ON (tile) id, k1, k2, coll FROM ("
	"  SELECT {ckeyd} AS id, {ckey1} AS k1, {ckey2} AS k2, {ccollv} AS coll,"
	"   ntile($4::int) OVER (ORDER BY {ckey}) AS tile"
	"  FROM {chunks} c {cjoin} {ejoin} {bjoin} {cwhere} AND {e}.{vec} IS NOT NULL"
	"   AND NOT ({stale_any})"
	"   AND c.{content} ~ '[^[:space:]]') t"
	"  ORDER BY tile, k1, k2) s"
	" JOIN {chunks} c ON {skeyeq} ORDER BY s.k1, s.k2";

/* The ranking picks keys and scores only; texts are fetched for the k
 * winners, not for every candidate. */
static const char search_sql[] =
	"SELECT q.n, r.id, {dtitle}, {dsource}, {cidxv}, r.score,"
	"  left(" EF_SQL_ONELINE("left(c.{content}::text, 1000)") ", 200)"
	" FROM unnest($4::text[]) WITH ORDINALITY AS q(v, n) CROSS JOIN LATERAL ("
	"  SELECT {ckeyd} AS id, {ckey1} AS k1, {ckey2} AS k2, {ccollv} AS coll,"
	"   {score} AS score"
	"  FROM {chunks} c {cjoin} {ejoin} {bjoin} {cwhere} AND {e}.{vec} IS NOT NULL"
	"   AND {fmodel} = $1::text AND {vdims} = $2::int"
	"  ORDER BY {order}, {ckey} LIMIT $5::int) r"
	" JOIN {chunks} c ON {rkeyeq} {djoin}"
	" ORDER BY q.n, r.score DESC NULLS LAST, r.k1, r.k2";

/* Cosine similarity of two float arrays of the same length; NULL for a
 * zero vector, where the cosine is undefined. */
static const char cosine_array[] =
	"(SELECT sum(u.a::float8 * u.b) / nullif(sqrt(sum(u.a::float8 * u.a))"
	"  * sqrt(sum(u.b::float8 * u.b)), 0)"
	" FROM unnest({e}.{vec}, q.v::float8[]) AS u(a, b))";

/* A citation's title or source: the mapped column of the chunk, a key of
 * its json column, or the document's column. */
static bool cite_frag(struct ef_sqlvars *v, ef_db *db, const char *name,
		      const struct ef_cite_field *f, const char *doc_col, bool docs,
		      int width, struct ef_error *err)
{
	char expr[512], *col = NULL, *key = NULL;
	bool ok;

	if (f->column) {
		col = ef_db_quote_part(db, f->column, err);
		key = col && f->json_key ? ef_db_quote_literal(db, f->json_key, err) : NULL;
		if (!col || (f->json_key && !key)) {
			free(col);
			return false;
		}
		if (key)
			snprintf(expr, sizeof(expr), "left(" EF_SQL_ONELINE("(c.%s->>%s)") ", %d)",
				 col, key, width);
		else
			snprintf(expr, sizeof(expr), "left(" EF_SQL_ONELINE("c.%s::text") ", %d)",
				 col, width);
		free(col);
		free(key);
		return ef_sqlvars_raw(v, name, expr);
	}
	if (docs && doc_col) {
		snprintf(expr, sizeof(expr), "left(" EF_SQL_ONELINE("d.%s::text") ", %d)", doc_col,
			 width);
		return ef_sqlvars_frag(v, name, expr);
	}
	ok = ef_sqlvars_raw(v, name, "NULL::text");
	return ok;
}

static bool search_frags(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m,
			 const struct ef_schema *sc, struct ef_error *err)
{
	bool pgvector = sc->vec_type == EF_VEC_PGVECTOR || sc->vec_type == EF_VEC_HALFVEC;
	const char *cast = sc->vec_type == EF_VEC_HALFVEC ? "halfvec" : "vector";
	bool docs = sc->documents_ok && m->chunk_document;
	bool two = m->nkey > 1, coll = m->chunk_collection != NULL;
	char score[128], order[96];

	snprintf(score, sizeof(score), "nullif(1 - ({e}.{vec} <=> q.v::%s), 'NaN')", cast);
	snprintf(order, sizeof(order), "{e}.{vec} <=> q.v::%s", cast);
	return ef_sqlvars_frag(v, "score", pgvector ? score : cosine_array) &&
	       ef_sqlvars_frag(v, "order", pgvector ? order : "score DESC NULLS LAST") &&
	       ef_sqlvars_frag(v, "djoin", !docs ? "" : m->doc_collection && coll
			       ? "LEFT JOIN {documents} d ON d.{doc_id} = c.{cdoc}"
				 " AND d.{doc_coll} = c.{ccoll}"
			       : "LEFT JOIN {documents} d ON d.{doc_id} = c.{cdoc}") &&
	       cite_frag(v, db, "dtitle", &m->cite_title, "{title}", docs && m->doc_title, 120,
			 err) &&
	       cite_frag(v, db, "dsource", &m->cite_source, "{source}", docs && m->doc_source,
			 400, err) &&
	       ef_sqlvars_frag(v, "cidxv", m->chunk_index ? "c.{cidx}::bigint" : "NULL::bigint") &&
	       ef_sqlvars_frag(v, "ckey1", "c.{ck1}") &&
	       ef_sqlvars_frag(v, "ckey2", two ? "c.{ck2}" : "NULL::text") &&
	       ef_sqlvars_frag(v, "ccollv", coll ? "c.{ccoll}" : "NULL::text") &&
	       ef_sqlvars_frag(v, "skeyeq", two ? (coll ? "c.{ck1} = s.k1 AND c.{ck2} = s.k2"
							" AND c.{ccoll} = s.coll"
						     : "c.{ck1} = s.k1 AND c.{ck2} = s.k2")
					       : coll ? "c.{ck1} = s.k1 AND c.{ccoll} = s.coll"
						      : "c.{ck1} = s.k1") &&
	       ef_sqlvars_frag(v, "rkeyeq", two ? (coll ? "c.{ck1} = r.k1 AND c.{ck2} = r.k2"
							" AND c.{ccoll} = r.coll"
						     : "c.{ck1} = r.k1 AND c.{ck2} = r.k2")
					       : coll ? "c.{ck1} = r.k1 AND c.{ccoll} = r.coll"
						      : "c.{ck1} = r.k1");
}

static bool build_vars(struct ef_sqlvars *v, ef_db *db, const struct ef_config *cfg,
		       const struct ef_schema *sc, struct ef_error *err)
{
	const struct ef_collsql_params p = { 1, 2, 3, cfg->recipe_id };
	bool ok = ef_collsql_vars(v, db, &cfg->map, sc, &p, true, err) &&
		  search_frags(v, db, &cfg->map, sc, err);

	if (!ok && err->status == EF_OK)
		ef_error_oom(err, NULL);
	return ok;
}

/* Runs template tpl expanded with v; NULL with err set on failure. */
static PGresult *query(ef_db *db, const struct ef_sqlvars *v, const char *tpl, int nparams,
		       const char *const *params, struct ef_error *err)
{
	char *sql = ef_sqlvars_expand(v, tpl);
	PGresult *res;

	if (!sql) {
		ef_error_oom(err, NULL);
		return NULL;
	}
	res = ef_db_query(db, sql, nparams, params, PGRES_TUPLES_OK, err);
	free(sql);
	return res;
}

/* --- text ------------------------------------------------------------------ */

static bool utf8_lead(unsigned char c)
{
	return (c & 0xc0) != 0x80;
}

/*
 * Counts code points up to max - 3, remembering the last blank of the last
 * third; if the text goes on past max, cuts there (or at that blank) and
 * adds "...", so the result never exceeds max.
 */
char *ef_spot_cut(const char *s, size_t max)
{
	size_t cps = 0, i = 0, keep = 0, blank = 0;
	char *out;

	for (; s[i]; i++) {
		if (!utf8_lead((unsigned char)s[i]))
			continue;
		if (cps == max - 3)
			keep = i;
		if (cps == max)
			break;
		if (s[i] == ' ' && cps > max * 2 / 3 && cps < max - 3)
			blank = i;
		cps++;
	}
	if (!s[i])
		return strdup(s);
	if (blank)
		keep = blank;
	if (asprintf(&out, "%.*s...", (int)keep, s) < 0)
		return NULL;
	return out;
}

/*
 * Where a sampled query starts.  A chunk cut from the middle of a
 * document starts where the previous chunk's overlap began, often in the
 * middle of a word ("rint tally only. Print the ..."); a start in lower
 * case is taken for such a cut.  The query then begins at the next
 * sentence when one begins in the first QUERY_SKIP_MAX bytes and leaves
 * some text, else at the next word.
 */
#define QUERY_SKIP_MAX 160

static const char *query_start(const char *text)
{
	const char *word;

	if (!(*text >= 'a' && *text <= 'z'))
		return text;
	for (const char *p = text; *p && p - text < QUERY_SKIP_MAX; p++)
		if (strchr(".!?", *p) && p[1] == ' ' && strlen(p + 2) >= 24)
			return p + 2;
	if (!(word = strchr(text, ' ')))
		return text;
	word += strspn(word, " ,;:)]}");
	return *word ? word : text;
}

/*
 * The first sentence of a chunk, for a sampled query: from a word's start
 * (query_start) up to the first . ! or ? followed by a blank, once at
 * least 24 bytes are in (so that "Fig. 3" or "Hi." does not become the
 * whole query), then cut.
 */
static char *first_sentence(const char *chunk)
{
	const char *text = query_start(chunk);
	size_t n = strlen(text);
	char *one, *out;

	for (size_t i = 24; i < n; i++) {
		if (strchr(".!?", text[i]) && text[i + 1] == ' ') {
			n = i + 1;
			break;
		}
	}
	one = strndup(text, n);
	out = one ? ef_spot_cut(one, EF_SPOT_QUERY_CHARS) : NULL;
	free(one);
	return out;
}

/* --- steps ----------------------------------------------------------------- */

ef_status ef_spot_parse_k(const char *text, int *k, struct ef_error *err)
{
	char *end;
	long v;

	*k = EF_SPOT_K_DEFAULT;
	if (!text)
		return EF_OK;
	v = strtol(text, &end, 10);
	if (end == text || *end || v < 1 || v > EF_SPOT_K_MAX) {
		ef_error_set(err, EF_ERR_USAGE, "-k \"%s\" is not a number of chunks from 1 to %d",
			     text, EF_SPOT_K_MAX);
		return ef_error_hint(err, "write -k 5 for the five best chunks per query");
	}
	*k = (int)v;
	return EF_OK;
}

static ef_status check_request(const struct ef_spot_request *req, struct ef_error *err)
{
	if (req->k < 1 || req->k > EF_SPOT_K_MAX)
		return ef_error_set(err, EF_ERR_USAGE, "k is %d, not from 1 to %d", req->k,
				    EF_SPOT_K_MAX);
	if (req->nqueries > EF_SPOT_QUERIES_MAX)
		return ef_error_set(err, EF_ERR_USAGE, "%zu queries: at most %d at a time",
				    req->nqueries, EF_SPOT_QUERIES_MAX);
	for (size_t i = 0; i < req->nqueries; i++) {
		if (req->queries[i][strspn(req->queries[i], " \t\r\n")] == '\0') {
			ef_error_set(err, EF_ERR_USAGE, "query %zu is empty", i + 1);
			return ef_error_hint(err, "give -q some words to search for, or leave -q "
						  "out to sample the collection");
		}
	}
	return ef_collection_name_check(req->collection, err);
}

static ef_status count(ef_db *db, const struct ef_sqlvars *v, const char *const *p,
		       struct ef_spot_report *out, struct ef_error *err)
{
	PGresult *res = query(db, v, count_sql, 3, p, err);

	if (!res)
		return err->status;
	out->chunks = ef_db_ll(res, 0, 0);
	out->comparable = ef_db_ll(res, 0, 1);
	PQclear(res);
	return EF_OK;
}

static ef_status take_queries(const struct ef_spot_request *req, struct ef_spot_report *out,
			      struct ef_error *err)
{
	out->queries = calloc(req->nqueries + 1, sizeof(*out->queries));
	if (!out->queries)
		return ef_error_oom(err, NULL);
	for (size_t i = 0; i < req->nqueries; i++) {
		out->queries[i].text = strdup(req->queries[i]);
		if (!out->queries[i].text)
			return ef_error_oom(err, NULL);
		out->nqueries++;
	}
	return EF_OK;
}

static ef_status sample(ef_db *db, const struct ef_sqlvars *v, const char *const *p,
			struct ef_spot_report *out, struct ef_error *err)
{
	char n[16];
	const char *params[4] = { p[0], p[1], p[2], n };
	PGresult *res;

	snprintf(n, sizeof(n), "%d", EF_SPOT_SAMPLES);
	res = query(db, v, sample_sql, 4, params, err);
	if (!res)
		return err->status;
	out->sampled = true;
	out->queries = calloc((size_t)PQntuples(res) + 1, sizeof(*out->queries));
	for (int i = 0; out->queries && i < PQntuples(res); i++) {
		struct ef_spot_query *q = &out->queries[out->nqueries++];

		q->sample_key = strdup(PQgetvalue(res, i, 0));
		q->text = first_sentence(PQgetvalue(res, i, 1));
		if (!q->text || !q->sample_key)
			break;
	}
	PQclear(res);
	if (!out->queries || (out->nqueries && (!out->queries[out->nqueries - 1].text ||
						    !out->queries[out->nqueries - 1].sample_key)))
		return ef_error_oom(err, NULL);
	return EF_OK;
}

/* The query vectors as one text[] literal: '{"[1,2]","[3,4]"}' for
 * pgvector's types, '{"{1,2}","{3,4}"}' for float arrays. */
static char *vectors_param(const struct ef_embed_result *res, bool pgvector)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	ef_strbuf_add(&b, "{");
	for (size_t i = 0; i < res->n; i++) {
		ef_strbuf_add(&b, i ? ",\"" : "\"");
		ef_strbuf_add(&b, pgvector ? "[" : "{");
		for (int d = 0; d < res->dim; d++)
			ef_strbuf_addf(&b, "%s%.9g", d ? "," : "",
				       (double)res->vectors[i * (size_t)res->dim + (size_t)d]);
		ef_strbuf_add(&b, pgvector ? "]\"" : "}\"");
	}
	ef_strbuf_add(&b, "}");
	return ef_strbuf_take(&b);
}

/* The queries as the recipe gives them to the model: its query prefix
 * before each, as the application's own queries have it. */
static ef_status embed(const struct ef_embed_config *ec, const char *prefix,
		       const struct ef_spot_report *out, struct ef_embed_result **res,
		       struct ef_error *err)
{
	char **texts = calloc(out->nqueries + 1, sizeof(*texts));
	ef_status st = EF_OK;

	if (!texts)
		return ef_error_oom(err, NULL);
	for (size_t i = 0; st == EF_OK && i < out->nqueries; i++)
		if (!(texts[i] = ef_recipe_apply(prefix, out->queries[i].text)))
			st = ef_error_oom(err, NULL);
	if (st == EF_OK)
		st = ef_embed_batch(ec, (const char *const *)texts, out->nqueries, res, err);
	for (size_t i = 0; i < out->nqueries; i++)
		free(texts[i]);
	free(texts);
	if (st != EF_OK) {
		/* the client's hints speak of resuming a run; nothing is resumed here */
		ef_error_prefix(err, "embedding the queries");
		if (strstr(err->hint, "embfill run"))
			ef_error_hint(err, "check the service's health and logs; `embfill doctor` "
					   "probes it and shows where EMBED_URL came from");
		return st;
	}
	for (size_t i = 0; i < (*res)->n; i++) {
		const char *why = (*res)->reasons[i] ? (*res)->reasons[i] : "no reason given";

		if ((*res)->rejected[i]) {
			ef_error_set(err, EF_ERR_EMBED, "the embedding service rejected query %zu: "
				     "%s", i + 1, why);
			return ef_error_hint(err, "shorten the query or change its words");
		}
	}
	return EF_OK;
}

static bool add_citation(struct ef_spot_query *q, const PGresult *res, int r)
{
	struct ef_spot_citation *c = &q->cites[q->ncites++];

	c->key = strdup(PQgetvalue(res, r, 1));
	c->title = PQgetisnull(res, r, 2) ? NULL : strdup(PQgetvalue(res, r, 2));
	c->source = PQgetisnull(res, r, 3) ? NULL : strdup(PQgetvalue(res, r, 3));
	c->chunk_index = PQgetisnull(res, r, 4) ? -1 : ef_db_ll(res, r, 4);
	c->score = PQgetisnull(res, r, 5) ? NAN : strtod(PQgetvalue(res, r, 5), NULL);
	c->snippet = ef_spot_cut(PQgetvalue(res, r, 6), EF_SPOT_SNIPPET_CHARS);
	return c->snippet && c->key && (c->title || PQgetisnull(res, r, 2)) &&
	       (c->source || PQgetisnull(res, r, 3));
}

static ef_status search(ef_db *db, const struct ef_sqlvars *v, const char *const *p, int k,
			struct ef_spot_report *out, struct ef_error *err)
{
	PGresult *res = query(db, v, search_sql, 5, p, err);
	bool ok = true;

	if (!res)
		return err->status;
	for (size_t i = 0; ok && i < out->nqueries; i++) {
		out->queries[i].cites = calloc((size_t)k, sizeof(struct ef_spot_citation));
		ok = out->queries[i].cites != NULL;
	}
	for (int r = 0; ok && r < PQntuples(res); r++) {
		long long n = ef_db_ll(res, r, 0);

		if (n >= 1 && (size_t)n <= out->nqueries &&
		    out->queries[n - 1].ncites < (size_t)k)
			ok = add_citation(&out->queries[n - 1], res, r);
	}
	PQclear(res);
	return ok ? EF_OK : ef_error_oom(err, NULL);
}

/* Self-retrieval hits and the verdict. */
static void judge(struct ef_spot_report *out)
{
	out->ok = out->nqueries > 0;
	for (size_t i = 0; i < out->nqueries; i++) {
		struct ef_spot_query *q = &out->queries[i];

		for (size_t j = 0; q->sample_key && j < q->ncites; j++)
			q->self_hit |= strcmp(q->cites[j].key, q->sample_key) == 0;
		out->hits += q->self_hit;
		out->ok &= q->ncites > 0;
	}
	if (out->sampled && out->nqueries) {
		out->hit_rate = (double)out->hits / (double)out->nqueries;
		out->ok &= out->hits * 100 >= (size_t)EF_SPOT_HIT_PCT_MIN * out->nqueries;
	}
	out->coverage = out->chunks ? (double)out->comparable / (double)out->chunks : 0;
	out->partial = out->coverage < out->min_coverage;
	out->retrieval_ok = out->ok;
	out->ok &= !out->partial;
}

/* Embeds the queries and retrieves their citations. */
static ef_status retrieve(ef_db *db, const struct ef_sqlvars *v, const struct ef_schema *sc,
			  const struct ef_embed_config *ec, const char *qprefix,
			  const char *const *p, struct ef_spot_report *out, struct ef_error *err)
{
	struct ef_embed_result *res = NULL;
	char *vecs, kbuf[16];
	const char *params[5] = { p[0], p[1], p[2], NULL, kbuf };
	ef_status st = embed(ec, qprefix, out, &res, err);

	if (st != EF_OK) {
		ef_embed_result_free(res);
		return st;
	}
	vecs = vectors_param(res, sc->vec_type == EF_VEC_PGVECTOR ||
				  sc->vec_type == EF_VEC_HALFVEC);
	ef_embed_result_free(res);
	if (!vecs)
		return ef_error_oom(err, NULL);
	snprintf(kbuf, sizeof(kbuf), "%d", out->k);
	params[3] = vecs;
	st = search(db, v, params, out->k, out, err);
	free(vecs);
	return st;
}

static ef_status spotcheck(ef_session *s, const struct ef_view *view,
			   const struct ef_embed_config *ec, const struct ef_spot_request *req,
			   struct ef_spot_report *out, struct ef_error *err)
{
	ef_db *db = ef_session_db(s);
	const struct ef_config *cfg = view->cfg;
	const struct ef_schema *sc = view->sc;
	struct ef_sqlvars v = { .n = 0 };
	char dim[16];
	const char *p[3] = { cfg->embed_model, dim, req->collection };
	ef_status st = EF_OK;

	snprintf(dim, sizeof(dim), "%d", cfg->embed_dim);
	if (!build_vars(&v, db, cfg, sc, err))
		st = err->status;
	if (st == EF_OK)
		st = count(db, &v, p, out, err);
	if (st == EF_OK && out->chunks == 0)
		st = ef_scan_unknown(s, req->collection, err);
	if (st == EF_OK)
		st = req->nqueries ? take_queries(req, out, err) : sample(db, &v, p, out, err);
	if (st == EF_OK && out->nqueries > 0)
		st = retrieve(db, &v, sc, ec, cfg->query_prefix, p, out, err);
	ef_sqlvars_free(&v);
	return st;
}

ef_status ef_spotcheck(ef_session *s, const struct ef_embed_config *ec,
		       const struct ef_spot_request *req, struct ef_spot_report *out,
		       struct ef_error *err)
{
	struct ef_view view;
	ef_status st;

	memset(out, 0, sizeof(*out));
	if (ef_session_require(s, EF_NEED_TABLES, err) != EF_OK ||
	    check_request(req, err) != EF_OK ||
	    ef_coll_view(s, req->collection, &view, err) != EF_OK)
		return err->status;
	out->k = req->k;
	out->min_coverage = view.cfg->spotcheck_min_coverage;
	out->collection = strdup(req->collection);
	st = out->collection ? spotcheck(s, &view, ec, req, out, err)
			     : ef_error_oom(err, NULL);
	if (st == EF_OK)
		judge(out);
	else
		ef_spot_report_free(out);
	return st;
}

void ef_spot_report_free(struct ef_spot_report *r)
{
	for (size_t i = 0; i < r->nqueries; i++) {
		struct ef_spot_query *q = &r->queries[i];

		for (size_t j = 0; j < q->ncites; j++) {
			free(q->cites[j].title);
			free(q->cites[j].source);
			free(q->cites[j].snippet);
			free(q->cites[j].key);
		}
		free(q->cites);
		free(q->text);
		free(q->sample_key);
	}
	free(r->queries);
	free(r->collection);
	memset(r, 0, sizeof(*r));
}
