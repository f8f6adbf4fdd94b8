/*
 * run_sql.c - the statements of a run, built once per run from the mapping.
 *
 * Batches are chosen by keyset (id > last ORDER BY id LIMIT n) over the
 * (collection, id) index rather than OFFSET, so that batch 1000 costs what
 * batch 1 costs and a resumed run starts where the checkpoint says without
 * rereading what came before.  The predicate is "missing or stale", the
 * same as status counts, so a chunk written by a batch that committed after
 * the last checkpoint is simply not selected again: resuming can never
 * duplicate work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "core/db/collsql.h"
#include "core/run/run_int.h"

/* $1 collection name, $2 after id, $3 model, $4 dim, $5 limit.
 * The embedding row is looked up per chunk (LATERAL ... LIMIT 1), which
 * keeps the plan a walk of the chunk index from the keyset position with
 * one index probe per chunk; a merge or hash join would read the whole
 * embedding table for every batch, and a run would grow quadratic. */
static const char select_tpl[] =
	"SELECT c.{cid}::bigint, c.{content},"
	"  encode(sha256(convert_to(c.{content}, 'UTF8')), 'hex')"
	" FROM {chunks} c {cjoin} {ejoin_lateral}"
	" WHERE {cfilter} AND c.{cid} > $2::bigint"
	"  AND ({e}.{vec} IS NULL OR ({stale_model}) OR ({stale_dim}) OR ({stale_content}))"
	"  {qfilter}"
	" ORDER BY c.{cid} LIMIT $5::int";

static const char count_tpl[] =
	"SELECT count(*) FROM {chunks} c {cjoin} {ejoin}"
	" WHERE {cfilter} AND c.{cid} > $2::bigint"
	"  AND ({e}.{vec} IS NULL OR ({stale_model}) OR ({stale_dim}) OR ({stale_content}))"
	"  {qfilter}";

/* What a run with --backup saves before it writes anything: the embedding
 * row of every chunk it will embed, whole (so that a rollback puts back
 * every column exactly, whatever the mapping), or the fact that there was
 * none.  The columns go as a jsonb object built from the catalog's list
 * ({rowobj}, filled in by the run), except the vector: as real[] it is
 * copied as it is, where jsonb would print and parse every float.
 * $1 collection name, $2 after id, $3 model, $4 dim, $5 run id.  A resumed
 * run saves again what is still to do; rows saved the first time are kept
 * (ON CONFLICT DO NOTHING). */
static const char backup_tpl[] =
	"INSERT INTO {tool}.backups (run_id, collection, chunk_id, model, existed, row_data,"
	" embedding)"
	" SELECT $5::bigint, $1::text, c.{cid}, {e}.{model}, {present}, {rowdata},"
	"  {e}.{vec}::real[]"
	" FROM {chunks} c {cjoin} {ejoin}"
	" WHERE {cfilter} AND c.{cid} > $2::bigint"
	"  AND ({e}.{vec} IS NULL OR ({stale_model}) OR ({stale_dim}) OR ({stale_content}))"
	"  {qfilter}"
	" ON CONFLICT DO NOTHING";

static const char quarantine_filter[] =
	"AND NOT EXISTS (SELECT 1 FROM {tool}.quarantine q WHERE q.collection = $1::text"
	" AND q.chunk_id = c.{cid} AND q.content_sha256 = sha256(convert_to(c.{content}, 'UTF8')))";

/*
 * A whole batch in one statement: $1 chunk ids (bigint[]), $2 collection
 * (name or lookup key, typed by its column), $3 model, $4 dim, $5 content
 * hashes (hex text[]), $6 the vectors as one binary parameter (vector[] for
 * pgvector; for real[], all floats in one float4[] sliced per row), $7 run
 * id.  One statement per batch instead of one per row spares the server
 * the per-statement overhead, which dominates for rows this small.
 * Prepared with explicit types, so optional columns may leave some
 * parameters unreferenced.
 */
static const char upsert_separate_tpl[] =
	"INSERT INTO {embeddings} AS t ({echunk}, {ecoll}, {model}{dim_col}, {hash}, {vec}"
	"{at_col}{run_col})"
	" SELECT u.id, $2, $3::text{dim_val}, {hash_in}, {vec_in}{at_val}{run_val}"
	" FROM {unnest}"
	" ON CONFLICT ({conflict}) DO UPDATE SET {model} = EXCLUDED.{model}{dim_set},"
	"  {hash} = EXCLUDED.{hash}, {vec} = EXCLUDED.{vec}{at_set}{run_set}"
	"  {conflict_where}";

static const char upsert_inline_tpl[] =
	"UPDATE {chunks} SET {model} = $3::text{dim_set_inline}, {hash} = {hash_in},"
	" {vec} = {vec_in}{at_set_inline}{run_set_inline}"
	" FROM {unnest} WHERE {chunks}.{cid} = u.id AND {chunks}.{ccoll} = $2";

static bool selection_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
			    const struct ef_schema *sc, bool skip_quarantined)
{
	bool separate = m->layout == EF_LAYOUT_SEPARATE;
	bool lookup = m->coll_mode == EF_COLL_LOOKUP;
	char dimexpr[128];

	ef_run_dims_expr(sc, m, dimexpr, sizeof(dimexpr));
	return ef_sqlvars_raw(v, "e", separate ? "e" : "c") &&
	       ef_sqlvars_frag(v, "cjoin", lookup ? "JOIN {lookup} l ON l.{lkey} = c.{ccoll}" : "") &&
	       ef_sqlvars_frag(v, "cfilter", lookup ? "l.{lname} = $1::text" : "c.{ccoll} = $1::text") &&
	       ef_sqlvars_frag(v, "ejoin", separate ? "LEFT JOIN {embeddings} e ON e.{echunk} = "
						    "c.{cid} AND e.{ecoll} = c.{ccoll}" : "") &&
	       ef_sqlvars_frag(v, "ejoin_lateral", separate
			       ? "LEFT JOIN LATERAL (SELECT * FROM {embeddings} x WHERE x.{echunk} ="
				 " c.{cid} AND x.{ecoll} = c.{ccoll} LIMIT 1) e ON true" : "") &&
	       ef_sqlvars_frag(v, "stale_model", "{e}.{model} IS DISTINCT FROM $3::text") &&
	       ef_sqlvars_frag(v, "stale_dim", dimexpr) &&
	       ef_sqlvars_frag(v, "stale_content", sc->hash_is_text
		       ? "lower({e}.{hash}) IS DISTINCT FROM"
			 " encode(sha256(convert_to(c.{content}, 'UTF8')), 'hex')"
		       : "{e}.{hash} IS DISTINCT FROM sha256(convert_to(c.{content}, 'UTF8'))") &&
	       ef_sqlvars_frag(v, "qfilter", skip_quarantined && sc->tool_schema
						     ? quarantine_filter : "") &&
	       ef_sqlvars_frag(v, "present", separate ? "e.{echunk} IS NOT NULL" : "true") &&
	       /* {rowobj}: the row's other columns, named at backup time */
	       ef_sqlvars_frag(v, "rowdata", separate ? "CASE WHEN e.{echunk} IS NULL THEN NULL"
						       " ELSE {rowobj} END" : "{rowobj}");
}

/*
 * The condition "stale by dimension" as cheaply as the schema allows: a
 * dimension fixed by vector(N) or a CHECK is a constant, so no vector has
 * to be read; else the dimension column; only else the vector itself,
 * which means detoasting every one of them.
 */
void ef_run_dims_expr(const struct ef_schema *sc, const struct ef_mapping *m, char *buf,
		      size_t n)
{
	if (ef_collsql_fixed_dim(sc))
		snprintf(buf, n, "({e}.{vec} IS NOT NULL AND %d <> $4::int)", sc->dim);
	else if (m->emb_dim)
		snprintf(buf, n, "{e}.{dim} IS DISTINCT FROM $4::int");
	else
		snprintf(buf, n, "%s({e}.{vec}) IS DISTINCT FROM $4::int",
			 sc->vec_type == EF_VEC_PGVECTOR ? "vector_dims" : "cardinality");
}

static bool optional(struct ef_sqlvars *v, const char *present, const char *name,
		     const char *tpl)
{
	return ef_sqlvars_frag(v, name, present ? tpl : "");
}

static bool write_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
			const struct ef_schema *sc)
{
	bool pair = !sc->emb_unique_alone;

	bool pgv = sc->vec_type == EF_VEC_PGVECTOR;

	return ef_sqlvars_raw(v, "hash_in", sc->hash_is_text ? "u.h" : "decode(u.h, 'hex')") &&
	       ef_sqlvars_raw(v, "unnest", pgv ? "unnest($1, $5, $6) AS u(id, h, v)"
					       : "unnest($1, $5) WITH ORDINALITY AS u(id, h, i)") &&
	       ef_sqlvars_raw(v, "vec_in", pgv ? "u.v" : "$6[(u.i - 1) * $4 + 1 : u.i * $4]") &&
	       optional(v, m->emb_dim, "dim_col", ", {dim}") &&
	       optional(v, m->emb_dim, "dim_val", ", $4::int") &&
	       optional(v, m->emb_dim, "dim_set", ", {dim} = EXCLUDED.{dim}") &&
	       optional(v, m->emb_dim, "dim_set_inline", ", {dim} = $4::int") &&
	       optional(v, m->emb_at, "at_col", ", {at}") &&
	       optional(v, m->emb_at, "at_val", ", now()") &&
	       optional(v, m->emb_at, "at_set", ", {at} = now()") &&
	       optional(v, m->emb_at, "at_set_inline", ", {at} = now()") &&
	       optional(v, m->emb_run, "run_col", ", {run}") &&
	       optional(v, m->emb_run, "run_val", ", $7::bigint") &&
	       optional(v, m->emb_run, "run_set", ", {run} = EXCLUDED.{run}") &&
	       optional(v, m->emb_run, "run_set_inline", ", {run} = $7::bigint") &&
	       ef_sqlvars_frag(v, "conflict", pair ? "{echunk}, {ecoll}" : "{echunk}") &&
	       /* a row another collection holds for this chunk id is left alone */
	       ef_sqlvars_frag(v, "conflict_where", pair ? "" : "WHERE t.{ecoll} = EXCLUDED.{ecoll}");
}

static const char ckpt_tpl[] =
	"UPDATE {tool}.runs SET checkpoint_chunk_id = greatest(coalesce(checkpoint_chunk_id, 0),"
	" $2::bigint), done = done + $3::bigint, written = written + $4::bigint,"
	" quarantined = quarantined + $5::bigint, retries = $6::bigint, requests = $7::bigint,"
	" heartbeat_at = now() WHERE id = $1::bigint";

static const char quar_tpl[] =
	"INSERT INTO {tool}.quarantine (collection, chunk_id, reason, content_sha256, run_id)"
	" VALUES ($1::text, $2::bigint, $3::text, decode($4::text, 'hex'), $5::bigint)"
	" ON CONFLICT (collection, chunk_id) DO UPDATE SET reason = EXCLUDED.reason,"
	" content_sha256 = EXCLUDED.content_sha256, run_id = EXCLUDED.run_id,"
	" attempts = quarantine.attempts + 1, last_seen = now()";

static const char unquar_tpl[] =
	"DELETE FROM {tool}.quarantine WHERE collection = $1::text AND chunk_id = ANY($2::bigint[])";

ef_status ef_run_sql_build(ef_db *db, const struct ef_mapping *m, const struct ef_schema *sc,
			   bool skip_quarantined, struct ef_run_sql *out, struct ef_error *err)
{
	struct ef_sqlvars v = { .n = 0 };
	bool ok;

	memset(out, 0, sizeof(*out));
	ok = ef_collsql_quote(&v, db, m, err) && selection_frags(&v, m, sc, skip_quarantined) &&
	     write_frags(&v, m, sc);
	if (ok) {
		out->select = ef_sqlvars_expand(&v, select_tpl);
		out->count = ef_sqlvars_expand(&v, count_tpl);
		out->upsert = ef_sqlvars_expand(&v, m->layout == EF_LAYOUT_SEPARATE
							? upsert_separate_tpl : upsert_inline_tpl);
		out->checkpoint = ef_sqlvars_expand(&v, ckpt_tpl);
		out->quarantine = ef_sqlvars_expand(&v, quar_tpl);
		out->unquarantine = ef_sqlvars_expand(&v, unquar_tpl);
		out->backup = ef_sqlvars_expand(&v, backup_tpl);
		out->tool = strdup(ef_sqlvars_get(&v, "tool"));
		ok = out->select && out->count && out->upsert && out->checkpoint &&
		     out->quarantine && out->unquarantine && out->backup && out->tool;
	}
	ef_sqlvars_free(&v);
	if (!ok) {
		ef_run_sql_free(out);
		return err->status ? err->status : ef_error_oom(err, NULL);
	}
	return EF_OK;
}

void ef_run_sql_free(struct ef_run_sql *s)
{
	free(s->select);
	free(s->count);
	free(s->upsert);
	free(s->checkpoint);
	free(s->quarantine);
	free(s->unquarantine);
	free(s->backup);
	free(s->tool);
	memset(s, 0, sizeof(*s));
}

ef_status ef_run_sql_build_tool(ef_db *db, const struct ef_config *cfg, char **tool,
				struct ef_error *err)
{
	*tool = ef_db_quote_part(db, cfg->map.tool_schema, err);
	return *tool ? EF_OK : err->status;
}
