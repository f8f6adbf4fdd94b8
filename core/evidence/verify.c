/*
 * verify.c - one collection's vectors against its chunks, every
 * discrepancy counted and explained.
 *
 * Two statements in one read-only REPEATABLE READ snapshot, so that the
 * counts, the examples and the model list describe one moment even while
 * a backfill runs next door.  The first makes one pass over the
 * collection's chunks: each chunk's states (f: no row, NULL vector, stale
 * by model, content, dimension, recipe, quarantined...) are grouped, so
 * that each is computed once per chunk (the content's hash among them)
 * and only their few combinations are added up; it returns typed rows:
 *   ('chunks'|'embedded'|'fresh'|'vectors'|'recipe_unknown', NULL, n)
 *   ('kind', kind, count)             one per discrepancy kind found
 *   ('model', model, count, dim)      (model, dim) pairs of the vectors
 *   ('top', model, 0, dim)            the most common pair
 * The second runs only when something was found: the lowest five keys
 * of each kind found, the kinds with few chunks ranked together in one
 * pass, each with many by ORDER BY key LIMIT 5 (which sorts nothing, and
 * stops early when its hits are dense); the quarantine reasons; and the
 * embedding rows' own kinds ranked among their hits.  A clean collection costs one pass, whatever its size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "embfill/ident.h"
#include "embfill/registry.h"
#include "embfill/scan.h"
#include "embfill/session.h"
#include "embfill/strbuf.h"
#include "embfill/verify.h"

enum kind_id {
	K_MISSING_ROW, K_NULL_VECTOR, K_STALE_CONTENT, K_STALE_MODEL, K_UNRECORDED, K_STALE_DIM,
	K_Q_OUTDATED, K_QUARANTINED, K_MIXED, K_ORPHANS, K_CROSS, K_INBOUND, K_RECORD_ORPHANS,
	K_STALE_RECIPE, K_ZERO, NKINDS
};

/* Hints name the collection as {c}, a shell word the operator can paste. */
static const struct kind {
	const char *kind, *title, *note_key, *hint;
} kinds[NKINDS] = {
	[K_MISSING_ROW] = { "missing_row", "chunks without an embedding row", NULL,
			    "`embfill run -C {c} --confirm {c}` embeds them" },
	[K_NULL_VECTOR] = { "null_vector", "chunks whose vector is NULL", NULL,
			    "`embfill run -C {c} --confirm {c}` embeds them" },
	[K_STALE_CONTENT] = { "stale_content", "chunks changed after they were embedded",
			      "embedded_at", "`embfill run -C {c} --confirm {c}` re-embeds them" },
	[K_STALE_MODEL] = { "stale_model", "vectors of another model", "model",
			    "`embfill plan -C {c}` shows how to re-embed them with the current "
			    "model" },
	[K_UNRECORDED] = { "unrecorded", "vectors whose model is not on record", NULL,
			   "`embfill adopt -C {c} --confirm {c}` records them as EMBED_MODEL's when "
			   "they are; otherwise `embfill run -C {c} --confirm {c}` re-embeds them" },
	[K_STALE_DIM] = { "stale_dim", "vectors of another dimension", "dim",
			  "`embfill plan -C {c}` shows how to re-embed them at EMBED_DIM" },
	[K_Q_OUTDATED] = { "quarantine_outdated", "quarantined chunks that changed since",
			   "reason", "`embfill run -C {c} --confirm {c} --retry-quarantined` "
			   "tries them again" },
	[K_QUARANTINED] = { "quarantined", "quarantined chunks, explained", "reason",
			    "fix or split these chunks, then `embfill run -C {c} --confirm {c} "
			    "--retry-quarantined`" },
	[K_MIXED] = { "mixed_models", "vectors outside the main (model, dimension)", "pair",
		      "re-embed the collection with one model: `embfill plan -C {c}`" },
	[K_ORPHANS] = { "orphans", "embedding rows without a chunk", NULL,
			"delete them or restore their chunks; a foreign key (chunk, collection) "
			"-> chunks makes the database refuse them" },
	[K_CROSS] = { "cross_tenant", "rows pointing at another collection's chunk",
		      "collection", "delete these rows; FOREIGN KEY (chunk, collection) "
		      "REFERENCES chunks (id, collection) makes the database refuse them" },
	[K_INBOUND] = { "cross_tenant_inbound", "other collections' rows pointing here",
			"filed_under", "delete these rows; FOREIGN KEY (chunk, collection) "
			"REFERENCES chunks (id, collection) makes the database refuse them" },
	[K_RECORD_ORPHANS] = { "orphan_records", "bookkeeping rows whose chunk is gone", NULL,
			       "nothing to do: the next `embfill run -C {c} --confirm {c}` "
			       "removes them" },
	[K_STALE_RECIPE] = { "stale_recipe", "vectors made by another recipe (prefix, "
			     "dimensions, truncation)", "recipe", "`embfill plan -C {c}` shows how "
			     "to re-embed them with the settings' recipe (a new collection, then a "
			     "swap)" },
	[K_ZERO] = { "zero_vector", "vectors whose every component is zero", NULL,
		     "clear them (the vector column set to NULL for these chunks), then `embfill "
		     "run -C {c} --confirm {c}` embeds them again; embfill refuses such vectors "
		     "from a service" },
};

/* Each kind over a chunk's states (h: f's columns, plus unfresh and
 * expl), in both statements; t is the most common (model, dim) pair. */
static const struct kind_sql {
	const char *hit, *note;
	bool quarantine;        /* only quarantined chunks can hit */
} kind_sql[NKINDS] = {
	[K_MISSING_ROW] = { "h.no_row AND NOT h.expl", "NULL::text", false },
	[K_NULL_VECTOR] = { "h.vec_null AND NOT h.no_row AND NOT h.expl", "NULL", false },
	[K_STALE_CONTENT] = { "h.s_content AND NOT h.expl", "h.at", false },
	[K_STALE_MODEL] = { "h.s_model AND NOT h.expl", "coalesce(h.model, '(none)')", false },
	[K_UNRECORDED] = { "h.unrec AND NOT h.expl", "NULL", false },
	[K_STALE_DIM] = { "h.s_dim AND NOT h.expl", "h.dim::text", false },
	[K_Q_OUTDATED] = { "h.quar AND NOT h.q_same AND h.unfresh", "h.reason", true },
	[K_QUARANTINED] = { "h.expl", "h.reason", true },
	[K_MIXED] = { "NOT h.vec_null AND NOT h.unrec AND (h.model, h.dim) IS DISTINCT FROM"
		      " (t.model, t.dim)", "coalesce(h.model, '(none)') || '/' || h.dim", false },
	[K_STALE_RECIPE] = { "h.s_recipe AND NOT h.expl", "h.recipe", false },
	[K_ZERO] = { "h.zero", "NULL", false },
	/* the embedding rows' own kinds come from emb_hits_sql and record_hits_sql */
};

/* A chunk's states, the columns every kind reads: one row per chunk. */
static const char states_sql[] =
	"{no_row} AS no_row, {e}.{vec} IS NULL AS vec_null,"
	" {e}.{vec} IS NOT NULL AND ({stale_model}) AND NOT ({unrecorded}) AS s_model,"
	" {e}.{vec} IS NOT NULL AND ({unrecorded}) AS unrec,"
	" {e}.{vec} IS NOT NULL AND ({stale_dim}) AS s_dim,"
	" {e}.{vec} IS NOT NULL AND NOT ({unrecorded}) AND ({stale_content}) AS s_content,"
	" {e}.{vec} IS NOT NULL AND NOT ({unrecorded}) AND ({stale_recipe}) AS s_recipe,"
	" {e}.{vec} IS NOT NULL AND ({recipe_unknown}) AS r_unknown,"
	" {e}.{vec} IS NOT NULL AND ({zero}) AS zero,"
	" {quar} AS quar, {q_same} AS q_same";

/* The same states packed into one integer, the cheapest key to group by
 * (bit i is the i-th column of states_sql), and unpacked by states_of. */
static const char packed_sql[] =
	"({no_row})::int + ({e}.{vec} IS NULL)::int * 2"
	" + ({e}.{vec} IS NOT NULL AND ({stale_model}) AND NOT ({unrecorded}))::int * 4"
	" + ({e}.{vec} IS NOT NULL AND ({unrecorded}))::int * 8"
	" + ({e}.{vec} IS NOT NULL AND ({stale_dim}))::int * 16"
	" + ({e}.{vec} IS NOT NULL AND NOT ({unrecorded}) AND ({stale_content}))::int * 32"
	" + ({e}.{vec} IS NOT NULL AND NOT ({unrecorded}) AND ({stale_recipe}))::int * 64"
	" + ({e}.{vec} IS NOT NULL AND ({recipe_unknown}))::int * 128"
	" + ({e}.{vec} IS NOT NULL AND ({zero}))::int * 256"
	" + ({quar})::int * 512 + ({q_same})::int * 1024";

static const char states_of[] =
	"f & 1 <> 0 AS no_row, f & 2 <> 0 AS vec_null, f & 4 <> 0 AS s_model, f & 8 <> 0 AS unrec,"
	" f & 16 <> 0 AS s_dim, f & 32 <> 0 AS s_content, f & 64 <> 0 AS s_recipe,"
	" f & 128 <> 0 AS r_unknown, f & 256 <> 0 AS zero, f & 512 <> 0 AS quar,"
	" f & 1024 <> 0 AS q_same";

static const char unfresh_sql[] =
	"vec_null OR s_model OR unrec OR s_dim OR s_content OR s_recipe";

/* The first statement: grouped states, then the counts over the groups. */
static const char counts_sql[] =
	"WITH r AS ("
	" SELECT {fmodel} AS model, CASE WHEN {e}.{vec} IS NOT NULL THEN {vdims}::int END AS dim,"
	"  {packed} AS f, count(*) AS n"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin} {qjoin} {cwhere} GROUP BY 1, 2, 3),"
	"s AS (SELECT model, dim, n, {states_of} FROM r),"
	"g AS (SELECT s.*, {unfresh} AS unfresh FROM s),"
	"h AS (SELECT g.*, quar AND q_same AND unfresh AS expl FROM g),"
	"m AS (SELECT model, dim, sum(n)::bigint AS n FROM h WHERE NOT vec_null AND NOT unrec"
	" GROUP BY 1, 2),"
	"top AS (SELECT model, dim FROM m ORDER BY n DESC, 1, 2 LIMIT 1)"
	"SELECT what, name, n, dim FROM ("
	" SELECT 'kind' AS what, v.kind AS name, sum(h.n)::bigint AS n, NULL::int AS dim"
	"  FROM h LEFT JOIN top t ON true CROSS JOIN LATERAL (VALUES {hits}) v(kind, hit)"
	"  WHERE v.hit GROUP BY v.kind"
	" {more_counts}"
	" UNION ALL SELECT 'model', model, n, dim FROM m"
	" UNION ALL SELECT 'top', model, 0, dim FROM top"
	" UNION ALL SELECT 'chunks', NULL, coalesce(sum(n), 0)::bigint, NULL FROM h"
	" UNION ALL SELECT 'embedded', NULL, coalesce(sum(n) FILTER (WHERE NOT vec_null), 0)::bigint,"
	"  NULL FROM h"
	" UNION ALL SELECT 'fresh', NULL, coalesce(sum(n) FILTER (WHERE NOT unfresh), 0)::bigint,"
	"  NULL FROM h"
	" UNION ALL SELECT 'recipe_unknown', NULL,"
	"  coalesce(sum(n) FILTER (WHERE NOT unfresh AND r_unknown), 0)::bigint, NULL FROM h"
	" UNION ALL SELECT 'vectors', NULL, ({vectors}), NULL) u"
	" ORDER BY what, CASE WHEN what = 'model' THEN -n ELSE n END, name, dim";

/* One row per chunk with what its examples say of it ($4, $5: the most
 * common pair), for the second statement; {q} joins the quarantine. */
static const char rows_sql[] =
	"SELECT g.*, quar AND q_same AND unfresh AS expl FROM (SELECT f.*, {unfresh} AS unfresh"
	" FROM (SELECT {ckeyd} AS id, {ckey1} AS k1, {ckey2} AS k2, {states},"
	"  {recipe_note} AS recipe, {fmodel} AS model, {vdims}::int AS dim,"
	"  date_trunc('second', {fat})::text AS at,"
	"  {reason} AS reason"
	"  FROM {chunks} c {cjoin} {ejoin} {bjoin} {q} {cwhere}) f) g";

/* The embedding rows seen from their side (separate layout only): an
 * orphan has no chunk of its key at all, a cross-tenant row has one only
 * under another collection, and an inbound one is another collection's row
 * that points at a chunk of this one.  Keys are cast to the chunk's types,
 * so that the examples sort with the chunks'. */
static const char emb_hits_sql[] =
	" UNION ALL SELECT 'orphans', {ekeyd}, {ekey1}, {ekey2}, NULL FROM {embeddings} e {eljoin}"
	"  {ewhere} AND NOT EXISTS (SELECT 1 FROM {chunks} c WHERE {ekeyeq})"
	" {cross_hits}";

static const char cross_hits_sql[] =
	" UNION ALL SELECT 'cross_tenant', {ekeyd}, {ekey1}, {ekey2}, {chname}"
	"  FROM {embeddings} e {eljoin} JOIN {chunks} c ON {ekeyeq} {lcjoin}"
	"  {ewhere} AND NOT EXISTS (SELECT 1 FROM {chunks} c2 WHERE {ekeyeq2})"
	" UNION ALL SELECT 'cross_tenant_inbound', {ckeyd}, {ckey1}, {ckey2}, {ename2}"
	"  FROM {chunks} c {cjoin} JOIN {embeddings} e ON {ekeyeq} {lejoin}"
	"  {cwhere} AND e.{ecoll} IS DISTINCT FROM c.{ccoll}";

/* Bookkeeping rows of the collection whose chunk was deleted. */
static const char record_hits_sql[] =
	" UNION ALL SELECT 'orphan_records', array_to_string(b.chunk_key, '/'), NULL, NULL, NULL"
	"  FROM {tool}.vectors b WHERE b.collection = {bval} AND NOT EXISTS (SELECT 1"
	"  FROM {chunks} c {cjoin} {cwhere} AND {ckeyt} = b.chunk_key)";

static const char q_tool[] =
	"LEFT JOIN {tool}.quarantine q ON q.collection = $3"
	" AND coalesce(q.chunk_key, ARRAY[q.chunk_id::text]) = {ckeyt}";
/* for the kinds only a quarantined chunk can be: the quarantine drives */
static const char q_inner[] =
	"JOIN {tool}.quarantine q ON q.collection = $3"
	" AND coalesce(q.chunk_key, ARRAY[q.chunk_id::text]) = {ckeyt}";

/* The other side's collection name, through second aliases of the lookup
 * table (l is taken by the side being filtered). */
static bool isolation_frags(struct ef_sqlvars *v, const struct ef_mapping *m)
{
	bool lookup = m->coll_mode == EF_COLL_LOOKUP;

	return ef_sqlvars_frag(v, "lcjoin", lookup ? "LEFT JOIN {lookup} lc ON"
						     " lc.{lkey} = c.{ccoll}" : "") &&
	       ef_sqlvars_frag(v, "chname", lookup ? EF_SQL_ONELINE("coalesce(lc.{lname}::text,"
								    " '?' || c.{ccoll}::text)")
						   : EF_SQL_ONELINE("c.{ccoll}::text")) &&
	       ef_sqlvars_frag(v, "lejoin", lookup ? "LEFT JOIN {lookup} le ON"
						     " le.{lkey} = e.{ecoll}" : "") &&
	       ef_sqlvars_frag(v, "ename2", lookup ? EF_SQL_ONELINE("coalesce(le.{lname}::text,"
								    " '?' || e.{ecoll}::text)")
						   : EF_SQL_ONELINE("e.{ecoll}::text")) &&
	       ef_sqlvars_frag(v, "ekeyeq2", m->nkey > 1
			       ? "c2.{ck1} = e.{ek1} AND c2.{ck2} = e.{ek2} AND c2.{ccoll} = e.{ecoll}"
			       : "c2.{ck1} = e.{ek1} AND c2.{ccoll} = e.{ecoll}");
}

/* The key columns as separate sortable values (the chunk's types). */
static bool sort_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
		       const struct ef_schema *sc)
{
	char k1[128], k2[128];
	bool two = m->nkey > 1;

	snprintf(k1, sizeof(k1), "e.{ek1}::%s", sc->key_type[0]);
	snprintf(k2, sizeof(k2), "e.{ek2}::%s", two ? sc->key_type[1] : "text");
	return ef_sqlvars_frag(v, "ckey1", "c.{ck1}") &&
	       ef_sqlvars_frag(v, "ckey2", two ? "c.{ck2}" : "NULL::text") &&
	       (m->layout != EF_LAYOUT_SEPARATE ||
		(ef_sqlvars_frag(v, "ekey1", k1) && ef_sqlvars_frag(v, "ekey2", two ? k2 : "NULL::text")));
}

/* "('missing_row', h.no_row AND NOT h.expl), ...": every chunk kind. */
static char *hits_list(void)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	for (int k = 0; k < NKINDS; k++)
		if (kind_sql[k].hit)
			ef_strbuf_addf(&b, "%s('%s', %s)", b.len ? ", " : "", kinds[k].kind,
				       kind_sql[k].hit);
	return ef_strbuf_take(&b);
}

/* The fragments both statements share; qany: the collection has
 * quarantined chunks. */
static bool set_vars(struct ef_sqlvars *v, ef_db *db, const struct ef_config *cfg,
		     const struct ef_schema *sc, bool qany, struct ef_error *err)
{
	const struct ef_mapping *m = &cfg->map;
	const struct ef_collsql_params p = { 1, 2, 3, cfg->recipe_id };
	bool separate = m->layout == EF_LAYOUT_SEPARATE;
	bool cross = separate && m->emb_collection;
	bool emb = separate && !sc->isolation_fk_valid, rec = sc->bookkeeping && sc->tool_schema;
	/* under a validated (chunk, collection) foreign key and a unique key,
	 * every row filed under the collection is one of its chunks' */
	bool same = !separate || (sc->isolation_fk_valid && sc->emb_unique);
	char none[400], *hits = hits_list();
	bool ok;

	snprintf(none, sizeof(none), "SELECT NULL::text AS kind, NULL::text AS id, NULL::%s AS k1,"
		 " NULL::%s AS k2, NULL::text AS note WHERE false {emb_hits} {record_hits}",
		 sc->key_type[0], m->nkey > 1 ? sc->key_type[1] : "text");
	ok = hits && ef_collsql_vars(v, db, m, sc, &p, true, err) && isolation_frags(v, m) &&
	     sort_frags(v, m, sc) &&
	     ef_sqlvars_frag(v, "no_row", separate ? "e.{ek1} IS NULL" : "false") &&
	     /* a collection without quarantined chunks spares every chunk the lookup */
	     ef_sqlvars_frag(v, "qjoin", qany ? q_tool : "") &&
	     ef_sqlvars_raw(v, "quar", qany ? "q.collection IS NOT NULL" : "false") &&
	     ef_sqlvars_frag(v, "q_same", qany ? "q.content_sha256 IS NULL"
						 " OR q.content_sha256 = {chashb}" : "true") &&
	     ef_sqlvars_frag(v, "reason", qany ? "left(" EF_SQL_ONELINE("q.reason::text") ", 200)"
					       : "NULL::text") &&
	     /* a vector of zeros has no direction: no cosine is defined for it */
	     ef_sqlvars_frag(v, "zero", sc->vec_type == EF_VEC_PGVECTOR
			     ? "vector_norm({e}.{vec}) = 0"
			     : sc->vec_type == EF_VEC_HALFVEC ? "l2_norm({e}.{vec}) = 0"
			     : "NOT EXISTS (SELECT 1 FROM unnest({e}.{vec}) z WHERE z <> 0)") &&
	     ef_sqlvars_frag(v, "recipe_note", sc->tool_schema && sc->tool_version >= 4
			     ? "coalesce((SELECT rr.description || ' (' || rr.id || ')' FROM"
			       " {tool}.recipes rr WHERE rr.id = {frecipe}), {frecipe})"
			     : "{frecipe}") &&
	     ef_sqlvars_frag(v, "cross_hits", cross ? cross_hits_sql : "") &&
	     /* none can exist under a validated (chunk, collection) foreign key */
	     ef_sqlvars_frag(v, "emb_hits", emb ? emb_hits_sql : "") &&
	     ef_sqlvars_frag(v, "record_hits", rec ? record_hits_sql : "") &&
	     ef_sqlvars_frag(v, "more_rows", none) &&
	     ef_sqlvars_frag(v, "more_counts", emb || rec
			     ? " UNION ALL SELECT 'kind', x.kind, count(*), NULL FROM ({more_rows}) x"
			       " GROUP BY x.kind" : "") &&
	     ef_sqlvars_frag(v, "vectors", same ? "SELECT coalesce(sum(n) FILTER (WHERE NOT"
						  " vec_null), 0)::bigint FROM h"
						: "SELECT count(*) FROM {embeddings} e {eljoin} {ewhere}"
						  " AND e.{vec} IS NOT NULL") &&
	     ef_sqlvars_frag(v, "states", states_sql) && ef_sqlvars_frag(v, "packed", packed_sql) &&
	     ef_sqlvars_raw(v, "states_of", states_of) && ef_sqlvars_raw(v, "unfresh", unfresh_sql) &&
	     ef_sqlvars_raw(v, "hits", hits) &&
	     ef_sqlvars_frag(v, "q", "{qjoin}") && ef_sqlvars_frag(v, "rows", rows_sql) &&
	     ef_sqlvars_frag(v, "q", qany ? q_inner : "") &&
	     ef_sqlvars_frag(v, "rows_q", rows_sql);
	free(hits);
	if (!ok && err->status == EF_OK)
		ef_error_oom(err, NULL);
	return ok;
}

/* A kind with at most this many chunks is illustrated by ranking them
 * all, with every other such kind, in one pass; a kind with more takes
 * its lowest keys with ORDER BY key LIMIT 5 (found at once when its hits
 * are dense, a pass of its own otherwise), which sorts nothing. */
#define RANK_ALL_MAX 50000

/* The second statement: the examples of each kind found (and the
 * quarantine reasons), or NULL when there is nothing to illustrate. */
static char *examples_sql(const struct ef_sqlvars *v, const struct ef_verify_report *r,
			  bool *top)
{
	struct ef_strbuf b = EF_STRBUF_INIT, few = EF_STRBUF_INIT, any_hit = EF_STRBUF_INIT;
	const char *tjoin = " CROSS JOIN (SELECT $4::text AS model, $5::int AS dim) t";
	bool any = false, more = false;

	*top = false;
	/* the model and dimension are named even when no branch reads them,
	 * so that their parameters have a type */
	ef_strbuf_add(&b, "SELECT what, name, ex, note, n FROM (SELECT NULL::text AS what,"
			  " NULL::text AS name, NULL::text AS ex, NULL::text AS note, 0::bigint AS n"
			  " WHERE false AND $1::text IS NULL AND $2::int IS NULL");
	for (int k = 0; k < NKINDS; k++) {
		const struct kind_sql *ks = &kind_sql[k];

		if (r->issues[k].count == 0)
			continue;
		any = true;
		*top |= k == K_MIXED;
		if (!ks->hit) {
			more = true;
		} else if (!ks->quarantine && r->issues[k].count <= RANK_ALL_MAX) {
			ef_strbuf_addf(&few, "%s('%s', %s, %s)", few.len ? ", " : "", kinds[k].kind,
				       ks->hit, ks->note);
			ef_strbuf_addf(&any_hit, "%s(%s)", any_hit.len ? " OR " : "", ks->hit);
		} else {
			ef_strbuf_addf(&b, " UNION ALL SELECT 'example', '%s', s.id, s.note,"
				       " row_number() OVER (ORDER BY s.k1, s.k2) FROM (SELECT h.id,"
				       " %s AS note, h.k1, h.k2 FROM (%s) h%s WHERE %s ORDER BY h.k1, h.k2"
				       " LIMIT %d) s", kinds[k].kind, ks->note,
				       ef_sqlvars_get(v, ks->quarantine ? "rows_q" : "rows"),
				       k == K_MIXED ? tjoin : "", ks->hit, EF_VERIFY_EXAMPLES);
		}
	}
	/* the chunks that hit any of them first, so that only those are told
	 * apart by kind and described */
	if (few.len)
		ef_strbuf_addf(&b, " UNION ALL SELECT 'example', y.kind, y.id, y.note, y.rn FROM"
			       " (SELECT v.kind, h.id, v.note, row_number() OVER (PARTITION BY v.kind"
			       " ORDER BY h.k1, h.k2) AS rn FROM (SELECT h.* FROM (%s) h%s WHERE %s"
			       " OFFSET 0) h%s CROSS JOIN LATERAL (VALUES %s) v(kind, hit, note)"
			       " WHERE v.hit) y WHERE y.rn <= %d",
			       ef_sqlvars_get(v, "rows"), *top ? tjoin : "", ef_strbuf_str(&any_hit),
			       *top ? tjoin : "", ef_strbuf_str(&few), EF_VERIFY_EXAMPLES);
	ef_strbuf_free(&few);
	ef_strbuf_free(&any_hit);
	if (more)
		ef_strbuf_addf(&b, " UNION ALL SELECT 'example', y.kind, y.id, y.note, y.rn FROM"
			       " (SELECT x.*, row_number() OVER (PARTITION BY x.kind ORDER BY x.k1, x.k2)"
			       " AS rn FROM (%s) x) y WHERE y.rn <= %d", ef_sqlvars_get(v, "more_rows"),
			       EF_VERIFY_EXAMPLES);
	if (r->issues[K_QUARANTINED].count)
		ef_strbuf_addf(&b, " UNION ALL (SELECT 'reason', h.reason, NULL, NULL, -count(*)"
			       " FROM (%s) h WHERE h.expl GROUP BY h.reason ORDER BY 5, 2 LIMIT %d)",
			       ef_sqlvars_get(v, "rows_q"), EF_VERIFY_REASONS);
	ef_strbuf_add(&b, ") u ORDER BY what, CASE WHEN what = 'example' THEN name END, n, name");
	if (!any) {
		ef_strbuf_free(&b);
		return NULL;
	}
	return ef_strbuf_take(&b);
}

static int kind_index(const char *name)
{
	for (int i = 0; i < NKINDS; i++)
		if (strcmp(kinds[i].kind, name) == 0)
			return i;
	return -1;
}

static char *dup_or_null(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : strdup(PQgetvalue(res, r, c));
}

static void add_total(struct ef_verify_report *out, const char *what, long long n)
{
	if (strcmp(what, "chunks") == 0)
		out->chunks = n;
	else if (strcmp(what, "embedded") == 0)
		out->embedded = n;
	else if (strcmp(what, "fresh") == 0)
		out->fresh = n;
	else if (strcmp(what, "vectors") == 0)
		out->vectors = n;
	else if (strcmp(what, "recipe_unknown") == 0)
		out->recipe_unknown = n;
}

/* One typed row of the counts (see the file comment) into the report;
 * issues is indexed by kind_id and compacted later. */
static void add_count(struct ef_verify_report *out, const PGresult *res, int r,
		      char **top_model, char *top_dim, size_t dim_size)
{
	const char *what = PQgetvalue(res, r, 0);
	int k = kind_index(PQgetvalue(res, r, 1));
	long long n = ef_db_ll(res, r, 2);

	if (strcmp(what, "kind") == 0 && k >= 0) {
		out->issues[k].count = n;
	} else if (strcmp(what, "model") == 0) {
		struct ef_verify_model *m = &out->models[out->nmodels++];

		m->model = dup_or_null(res, r, 1);
		m->dim = (int)ef_db_ll(res, r, 3);
		m->count = n;
	} else if (strcmp(what, "top") == 0) {
		*top_model = dup_or_null(res, r, 1);
		snprintf(top_dim, dim_size, "%s", PQgetvalue(res, r, 3));
	} else {
		add_total(out, what, n);
	}
}

/* One row of the examples: an example of a kind, or a quarantine reason. */
static void add_example(struct ef_verify_report *out, const PGresult *res, int r)
{
	int k = kind_index(PQgetvalue(res, r, 1));
	struct ef_verify_issue *is = k >= 0 ? &out->issues[k] : NULL;

	if (strcmp(PQgetvalue(res, r, 0), "reason") == 0) {
		struct ef_verify_reason *q = &out->reasons[out->nreasons++];

		q->reason = strdup(PQgetisnull(res, r, 1) || !*PQgetvalue(res, r, 1)
					   ? "(no reason recorded)" : PQgetvalue(res, r, 1));
		q->count = -ef_db_ll(res, r, 4);
	} else if (is && is->nexamples < EF_VERIFY_EXAMPLES) {
		struct ef_verify_example *ex = &is->examples[is->nexamples++];

		ex->key = dup_or_null(res, r, 2);
		ex->note = dup_or_null(res, r, 3);
	}
}

/* Replaces each {c} in tpl by word. */
static void add_with_name(struct ef_strbuf *b, const char *tpl, const char *word)
{
	const char *p;

	while ((p = strstr(tpl, "{c}")) != NULL) {
		ef_strbuf_addn(b, tpl, (size_t)(p - tpl));
		ef_strbuf_add(b, word);
		tpl = p + 3;
	}
	ef_strbuf_add(b, tpl);
}

static void add_pairs(struct ef_strbuf *b, const struct ef_verify_report *r)
{
	for (size_t i = 0; i < r->nmodels; i++)
		ef_strbuf_addf(b, "%s%s/%d (%lld)", i ? ", " : "",
			       r->models[i].model ? r->models[i].model : "(none)", r->models[i].dim,
			       r->models[i].count);
}

static void add_reasons(struct ef_strbuf *b, const struct ef_verify_report *r)
{
	for (size_t i = 0; i < r->nreasons && i < 3; i++)
		ef_strbuf_addf(b, "%s%s (%lld)", i ? "; " : "", r->reasons[i].reason,
			       r->reasons[i].count);
	if (r->nreasons > 3)
		ef_strbuf_add(b, "; ...");
}

/* The one-line reason of a kind, with the values that make it concrete. */
static void reason_text(struct ef_strbuf *b, int k, const struct ef_verify_report *r,
			const struct ef_config *cfg)
{
	switch (k) {
	case K_MISSING_ROW:
		ef_strbuf_add(b, "no embedding row: never embedded, or its row was deleted");
		break;
	case K_NULL_VECTOR:
		ef_strbuf_add(b, r->inline_layout ? "the vector column is NULL"
						  : "an embedding row whose vector is NULL");
		break;
	case K_STALE_CONTENT:
		ef_strbuf_add(b, "chunk changed after it was embedded: its text no longer "
				 "matches the stored hash");
		if (cfg->map.emb_at)
			ef_strbuf_add(b, " (each example with its embedded_at)");
		break;
	case K_STALE_MODEL:
		ef_strbuf_addf(b, "embedded with another model than \"%s\" (EMBED_MODEL)",
			       cfg->embed_model);
		break;
	case K_UNRECORDED:
		ef_strbuf_add(b, "a vector is stored, but which model made it is not on record "
				 "(a table embfill did not fill, or a model column left empty)");
		break;
	case K_ZERO:
		ef_strbuf_add(b, "a stored vector of zeros: search cannot rank it (its cosine with "
				 "any query is undefined), so its chunk is never found");
		break;
	case K_STALE_RECIPE:
		ef_strbuf_addf(b, "made by \"%s\" with another recipe than the settings' (%s): "
			       "a prefix, requested dimensions or truncation changes every vector",
			       cfg->embed_model, cfg->recipe_id);
		break;
	case K_RECORD_ORPHANS:
		ef_strbuf_addf(b, "embfill's records of vectors of \"%s\" whose chunk was "
				  "deleted since", r->collection);
		break;
	case K_STALE_DIM:
		ef_strbuf_addf(b, "vector dimension is not %d (EMBED_DIM)", cfg->embed_dim);
		break;
	case K_Q_OUTDATED:
		ef_strbuf_add(b, "quarantined, but the chunk changed after it was quarantined: "
				 "the rejection may no longer apply");
		break;
	case K_QUARANTINED:
		ef_strbuf_add(b, "quarantined (rejected by the embedding service, or a text that "
				 "cannot be sent) and unchanged since: ");
		add_reasons(b, r);
		break;
	case K_MIXED:
		ef_strbuf_addf(b, "the vectors hold %zu (model, dimension) pairs: ", r->nmodels);
		add_pairs(b, r);
		ef_strbuf_add(b, "; examples are outside the most common pair");
		break;
	case K_ORPHANS:
		ef_strbuf_addf(b, "embedding rows filed under \"%s\" whose chunk does not exist",
			       r->collection);
		break;
	case K_CROSS:
		ef_strbuf_addf(b, "embedding rows filed under \"%s\" that point at another "
				  "collection's chunk", r->collection);
		break;
	default:
		ef_strbuf_addf(b, "embedding rows filed under another collection that point at "
				  "a chunk of \"%s\"", r->collection);
		break;
	}
}

/* Keeps the kinds found, in table order, each with its reason and hint. */
static ef_status describe(struct ef_verify_report *r, const struct ef_config *cfg,
			  struct ef_error *err)
{
	char *word = ef_collsql_shell_word(r->collection);
	size_t keep = 0;
	bool oom = !word;

	for (int k = 0; k < NKINDS; k++) {
		struct ef_verify_issue is = r->issues[k];
		struct ef_strbuf reason = EF_STRBUF_INIT, hint = EF_STRBUF_INIT;

		if (is.count == 0)
			continue;
		is.kind = kinds[k].kind;
		is.title = kinds[k].title;
		is.note_key = kinds[k].note_key;
		is.explained = k == K_QUARANTINED || k == K_RECORD_ORPHANS;
		reason_text(&reason, k, r, cfg);
		add_with_name(&hint, kinds[k].hint, word ? word : "");
		is.reason = ef_strbuf_take(&reason);
		is.hint = ef_strbuf_take(&hint);
		oom |= !is.reason || !is.hint;
		r->issues[keep++] = is;
	}
	r->nissues = keep;
	free(word);
	r->ok = ef_verify_unexplained(r) == 0;
	return oom ? ef_error_oom(err, NULL) : EF_OK;
}

static bool nothing_found(const struct ef_verify_report *r)
{
	for (size_t i = 0; i < r->nissues; i++)
		if (r->issues[i].count > 0)
			return false;
	return r->chunks == 0 && r->vectors == 0;
}

static ef_status quarantined_any(ef_db *db, const struct ef_config *cfg, const char *collection,
				 bool *any, struct ef_error *err)
{
	const char *params[1] = { collection };
	PGresult *r;

	if (ef_collsql_tool_query(db, cfg, "SELECT EXISTS (SELECT 1 FROM {tool}.quarantine"
				  " WHERE collection = $1)", 1, params, &r, err) != EF_OK)
		return err->status;
	*any = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return EF_OK;
}

/* The counts, then the examples of what they found. */
static ef_status statements(ef_db *db, const struct ef_config *cfg, const struct ef_schema *sc,
			    bool began, struct ef_verify_report *out, struct ef_error *err)
{
	char dim[16], top_dim[16] = "";
	char *top_model = NULL, *sql = NULL;
	const char *params[5] = { cfg->embed_model, dim, out->collection, NULL, top_dim };
	struct ef_sqlvars v = { .n = 0 };
	PGresult *res = NULL;
	bool qany = false, top = false;
	ef_status st = EF_ERR_DB;

	snprintf(dim, sizeof(dim), "%d", cfg->embed_dim);
	if (sc->tool_schema && quarantined_any(db, cfg, out->collection, &qany, err) != EF_OK)
		return err->status;
	if (ef_collsql_merge_pass(&cfg->map, sc, qany) &&
	    ef_db_snapshot_merge_joins(db, began, err) != EF_OK)
		return err->status;
	if (!set_vars(&v, db, cfg, sc, qany, err)) {
		st = err->status;
		goto out;
	}
	if (!(sql = ef_sqlvars_expand(&v, counts_sql))) {
		st = ef_error_oom(err, NULL);
		goto out;
	}
	if (!(res = ef_db_query(db, sql, 3, params, PGRES_TUPLES_OK, err)))
		goto out;
	out->issues = calloc(NKINDS, sizeof(*out->issues));
	out->models = calloc((size_t)PQntuples(res) + 1, sizeof(*out->models));
	out->reasons = calloc(EF_VERIFY_REASONS + 1, sizeof(*out->reasons));
	if (!out->issues || !out->models || !out->reasons) {
		st = ef_error_oom(err, NULL);
		goto out;
	}
	out->nissues = NKINDS;
	for (int i = 0; i < PQntuples(res); i++)
		add_count(out, res, i, &top_model, top_dim, sizeof(top_dim));
	PQclear(res);
	res = NULL;
	free(sql);
	st = EF_OK;
	if (!(sql = examples_sql(&v, out, &top)))
		goto out;
	params[3] = top_model;
	if (!(res = ef_db_query(db, sql, top ? 5 : 3, params, PGRES_TUPLES_OK, err))) {
		st = err->status;
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++)
		add_example(out, res, i);
out:
	PQclear(res);
	free(sql);
	free(top_model);
	ef_sqlvars_free(&v);
	return st;
}

/* In one read-only snapshot, so that both statements see one moment. */
static ef_status run_query(ef_db *db, const struct ef_config *cfg, const struct ef_schema *sc,
			   struct ef_verify_report *out, struct ef_error *err)
{
	bool began;
	ef_status st;

	if (ef_db_snapshot_begin(db, &began, err) != EF_OK)
		return err->status;
	st = statements(db, cfg, sc, began, out, err);
	ef_db_snapshot_end(db, began);
	return st;
}

ef_status ef_verify(ef_session *s, const char *collection, struct ef_verify_report *out,
		    struct ef_error *err)
{
	ef_db *db = ef_session_db(s);
	const struct ef_config *cfg;
	const struct ef_schema *sc;
	struct ef_view view;
	ef_status st;

	memset(out, 0, sizeof(*out));
	if (ef_session_require(s, EF_NEED_TABLES, err) != EF_OK ||
	    ef_collection_name_check(collection, err) != EF_OK ||
	    ef_coll_view(s, collection, &view, err) != EF_OK)
		return err->status;
	cfg = view.cfg;
	sc = view.sc;
	out->collection = strdup(collection);
	out->inline_layout = cfg->map.layout == EF_LAYOUT_INLINE;
	out->isolation_fk = sc->isolation_fk;
	if (!out->collection)
		st = ef_error_oom(err, NULL);
	else
		st = run_query(db, cfg, sc, out, err);
	if (st == EF_OK && nothing_found(out))
		st = ef_scan_unknown(s, collection, err);
	if (st == EF_OK)
		st = describe(out, cfg, err);
	if (st != EF_OK)
		ef_verify_report_free(out);
	return st;
}

void ef_verify_report_free(struct ef_verify_report *r)
{
	for (size_t i = 0; r->issues && i < r->nissues; i++) {
		for (size_t j = 0; j < r->issues[i].nexamples; j++) {
			free(r->issues[i].examples[j].note);
			free(r->issues[i].examples[j].key);
		}
		free(r->issues[i].reason);
		free(r->issues[i].hint);
	}
	for (size_t i = 0; i < r->nmodels; i++)
		free(r->models[i].model);
	for (size_t i = 0; i < r->nreasons; i++)
		free(r->reasons[i].reason);
	free(r->issues);
	free(r->models);
	free(r->reasons);
	free(r->collection);
	memset(r, 0, sizeof(*r));
}

const struct ef_verify_issue *ef_verify_issue(const struct ef_verify_report *r,
					      const char *kind)
{
	for (size_t i = 0; i < r->nissues; i++)
		if (strcmp(r->issues[i].kind, kind) == 0)
			return &r->issues[i];
	return NULL;
}

long long ef_verify_count(const struct ef_verify_report *r, const char *kind)
{
	const struct ef_verify_issue *is = ef_verify_issue(r, kind);

	return is ? is->count : 0;
}

size_t ef_verify_unexplained(const struct ef_verify_report *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nissues; i++)
		n += !r->issues[i].explained;
	return n;
}
