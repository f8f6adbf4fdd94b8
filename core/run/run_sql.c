/*
 * run_sql.c - the statements of a run, built once per run from the mapping.
 *
 * Batches are chosen by keyset (key > last ORDER BY key LIMIT n) over the
 * chunk key, whatever its type (integer, text, uuid, or two columns),
 * rather than OFFSET, so that batch 1000 costs what batch 1 costs and a
 * resumed run starts where the checkpoint says without rereading what came
 * before.  The last key travels as one text[] parameter and is cast to the
 * key's own types, so the comparison is the key's order, not its text's.
 * The predicate is "missing or stale", the same as status counts, so a
 * chunk written by a batch that committed after the last checkpoint is
 * simply not selected again: resuming can never duplicate work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/run/run_int.h"

/* $1 collection name, $2 last key (text[], NULL before the first batch),
 * $3 model, $4 dim, $5 limit, $6 the lease's last key (text[], NULL: open).  The embedding row is looked up per chunk
 * (LATERAL ... LIMIT 1), which keeps the plan a walk of the chunk index
 * from the keyset position with one index probe per chunk; a merge or hash
 * join would read the whole embedding table for every batch, and a run
 * would grow quadratic. */
static const char select_tpl[] =
	"SELECT c.{ck1}::text, {ck2text}, c.{content}, {chash}"
	" FROM {chunks} c {cjoin} {ejoin1} {bjoin}"
	" {cwhere} AND {kafter} AND ({todo}) {qfilter}"
	" AND {kupto}"
	" ORDER BY {ckey} LIMIT $5::int";

/* Where the leases of a run end: every chunk to embed after $2 with its
 * position in the key's order (the run's keysets walk the same order),
 * of which ef_lease_split() keeps every LEASE_CHUNKS-th.  $1..$4 as the
 * count. */
static const char bounds_tpl[] =
	"SELECT {ckeyt} AS k, row_number() OVER (ORDER BY {ckey}) AS rn"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin}"
	" {cwhere} AND {kafter} AND ({todo}) {qfilter}";

/* What a finished run left: $1 collection, $2 NULL, $3 model, $4 dim. */
static const char left_tpl[] =
	"SELECT {ckeyd}, CASE WHEN {e}.{vec} IS NULL THEN 'no vector'"
	" WHEN {stale_content} THEN 'its text changed after it was embedded'"
	" WHEN {stale_model} THEN 'a vector of another model'"
	" WHEN {stale_dim} THEN 'a vector of another dimension'"
	" ELSE 'a vector of another recipe' END, count(*) OVER ()"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin}"
	" {cwhere} AND {kafter} AND ({todo}) {qleft}"
	" ORDER BY {ckey} LIMIT 5";

static const char count_tpl[] =
	"SELECT count(*) FROM {chunks} c {cjoin} {ejoin} {bjoin}"
	" {cwhere} AND {kafter} AND ({todo}) {qfilter}";

/* What a run with --backup saves before it writes anything: the embedding
 * row of every chunk it will embed, whole (so that a rollback puts back
 * every column exactly, whatever the mapping), its bookkeeping row, or the
 * fact that there was none.  The columns go as a jsonb object built from
 * the catalog's list ({rowobj}, filled in by the run), except the vector:
 * as real[] it is copied as it is, where jsonb would print and parse every
 * float.  $1 collection name, $2 last key, $3 model, $4 dim, $5 run id.  A
 * resumed run saves again what is still to do; rows saved the first time
 * are kept (ON CONFLICT DO NOTHING). */
static const char backup_tpl[] =
	"INSERT INTO {tool}.backups (run_id, collection, chunk_key, model, existed, row_data,"
	" embedding, bookkeeping)"
	" SELECT $5::bigint, $1::text, {ckeyt}, {fmodel}, {present}, {rowdata},"
	"  {e}.{vec}::real[], {bkdata}"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin}"
	" {cwhere} AND {kafter} AND ({todo}) {qfilter}"
	" ON CONFLICT DO NOTHING";

static const char quarantine_filter[] =
	"AND NOT EXISTS (SELECT 1 FROM {tool}.quarantine q WHERE q.collection = $1::text"
	" AND coalesce(q.chunk_key, ARRAY[q.chunk_id::text]) = {ckeyt}"
	" AND q.content_sha256 = {chashb})";

/* Bookkeeping rows whose chunk is gone: removed at the start of a run. */
static const char prune_tpl[] =
	"DELETE FROM {tool}.vectors b WHERE b.collection = {bval} AND NOT EXISTS"
	" (SELECT 1 FROM {chunks} c {cjoin} {cwhere} AND {ckeyt} = b.chunk_key)";

/*
 * A whole batch in one statement: $1 the keys' first column (text[]), $8
 * the second (text[], NULL for a one-column key), $2 the collection (name,
 * lookup key, typed by its column), $3 model, $4 dim, $5 content hashes
 * (hex text[]), $6 the vectors as one binary parameter (vector[] for
 * pgvector's types; for float arrays, all floats in one float4[] sliced
 * per row), $7 run id, $9 the recipe's fingerprint.  One statement per batch instead of one per row
 * spares the server the per-statement overhead, which dominates for rows
 * this small.  Prepared with explicit types, so the optional columns may
 * leave some parameters unreferenced.
 */
static const char upsert_separate_tpl[] =
	"INSERT INTO {embeddings} AS t ({ekcols}{ecoll_col}{model_col}{dim_col}{hash_col}, {vec}"
	"{at_col}{run_col}{recipe_col})"
	" SELECT {ukvals}{ecoll_val}{model_val}{dim_val}{hash_val}, {vec_in}{at_val}{run_val}"
	"{recipe_val}"
	" FROM {unnest}"
	" ON CONFLICT ({conflict}) DO UPDATE SET {vec} = EXCLUDED.{vec}{model_set}{dim_set}"
	"{hash_set}{at_set}{run_set}{recipe_set} {conflict_where}";

static const char upsert_inline_tpl[] =
	"UPDATE {chunks} c SET {vec} = {vec_in}{model_upd}{dim_upd}{hash_upd}{at_upd}{run_upd}"
	"{recipe_upd}"
	" FROM {unnest} WHERE {ukeyeq} {ucoll}";

/* The bookkeeping of the same batch, in the same transaction. */
static const char book_tpl[] =
	"INSERT INTO {tool}.vectors AS t (collection, chunk_key, model, dim, content_sha256,"
	" recipe, embedded_at, run_id)"
	" SELECT $2::text, {ukeyt}, $3::text, $4::int, decode(u.h, 'hex'), $9::text, now(),"
	" $7::bigint"
	" FROM unnest($1::text[], $8::text[], $5::text[]) AS u(k1, k2, h)"
	" ON CONFLICT (collection, chunk_key) DO UPDATE SET model = EXCLUDED.model,"
	" dim = EXCLUDED.dim, content_sha256 = EXCLUDED.content_sha256, recipe = EXCLUDED.recipe,"
	" embedded_at = EXCLUDED.embedded_at, run_id = EXCLUDED.run_id";

static bool pgvector_type(const struct ef_schema *sc)
{
	return sc->vec_type == EF_VEC_PGVECTOR || sc->vec_type == EF_VEC_HALFVEC;
}

static bool selection_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
			    const struct ef_schema *sc, bool skip_quarantined, bool only_missing)
{
	bool separate = m->layout == EF_LAYOUT_SEPARATE;
	char *kp = ef_collsql_key_from_param(m, sc, 2, NULL), kafter[512];
	char *kh = ef_collsql_key_from_param(m, sc, 6, NULL), kupto[512];
	bool ok;

	if (!kp || !kh) {
		free(kp);
		free(kh);
		return false;
	}
	snprintf(kafter, sizeof(kafter), "($2::text[] IS NULL OR ({ckey}) > (%s))", kp);
	snprintf(kupto, sizeof(kupto), "($6::text[] IS NULL OR ({ckey}) <= (%s))", kh);
	free(kp);
	free(kh);
	ok = ef_sqlvars_frag(v, "kafter", kafter) && ef_sqlvars_frag(v, "kupto", kupto) &&
	     ef_sqlvars_frag(v, "ck2text", m->nkey > 1 ? "c.{ck2}::text" : "NULL::text") &&
	     /* only missing: the stale conditions stay behind a constant false,
	      * which the planner folds away, so that the statements take the
	      * same parameters either way */
	     ef_sqlvars_frag(v, "todo", only_missing
			     ? "{e}.{vec} IS NULL OR (false AND ({stale_any}))"
			     : "{e}.{vec} IS NULL OR {stale_any}") &&
	     ef_sqlvars_frag(v, "qfilter", skip_quarantined && sc->tool_schema
					   ? quarantine_filter : "") &&
	     /* what a run leaves is counted without its quarantined chunks,
	      * even when it tried them again */
	     ef_sqlvars_frag(v, "qleft", sc->tool_schema ? quarantine_filter : "") &&
	     ef_sqlvars_frag(v, "present", separate ? "e.{ek1} IS NOT NULL" : "true") &&
	     /* {rowobj}: the row's other columns, named at backup time */
	     ef_sqlvars_frag(v, "rowdata", separate ? "CASE WHEN e.{ek1} IS NULL THEN NULL"
						     " ELSE {rowobj} END" : "{rowobj}") &&
	     ef_sqlvars_frag(v, "bkdata", sc->bookkeeping ? "CASE WHEN b.collection IS NULL"
						" THEN NULL ELSE to_jsonb(b) END" : "NULL::jsonb");
	return ok;
}

static bool optional(struct ef_sqlvars *v, const char *present, const char *name,
		     const char *tpl)
{
	return ef_sqlvars_frag(v, name, present ? tpl : "");
}

/* The batch's keys, cast to the key's types: for a column list, for a
 * comparison with the table's columns, and as the text[] embfill keeps. */
static bool key_write_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
			    const struct ef_schema *sc)
{
	bool two = m->nkey > 1;
	char vals[256], eq[160], ceq[400];

	snprintf(vals, sizeof(vals), "u.k1::%s%s%s", sc->key_type[0], two ? ", u.k2::" : "",
		 two ? sc->key_type[1] : "");
	snprintf(eq, sizeof(eq), "c.{ck1} = u.k1::%s", sc->key_type[0]);
	if (two)
		snprintf(ceq, sizeof(ceq), "%s AND c.{ck2} = u.k2::%s", eq, sc->key_type[1]);
	return ef_sqlvars_frag(v, "ekcols", two ? "{ek1}, {ek2}" : "{ek1}") &&
	       ef_sqlvars_frag(v, "ukvals", vals) &&
	       ef_sqlvars_frag(v, "ukeyeq", two ? ceq : eq) &&
	       ef_sqlvars_raw(v, "ukeyt", two ? "ARRAY[u.k1, u.k2]" : "ARRAY[u.k1]");
}

static bool write_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
			const struct ef_schema *sc)
{
	bool pair = !sc->emb_unique_alone && m->emb_collection;
	bool pgv = pgvector_type(sc), dbl = sc->vec_type == EF_VEC_DOUBLE_ARRAY;
	bool coll = m->coll_mode != EF_COLL_TABLE;
	const char *hash_in = sc->hash_is_text ? "u.h" : "decode(u.h, 'hex')";
	char buf[256];

	snprintf(buf, sizeof(buf), ", %s", hash_in);
	return key_write_frags(v, m, sc) &&
	       ef_sqlvars_raw(v, "unnest", pgv ? "unnest($1::text[], $8::text[], $5::text[], $6)"
						 " AS u(k1, k2, h, v)"
					       : "unnest($1::text[], $8::text[], $5::text[])"
						 " WITH ORDINALITY AS u(k1, k2, h, i)") &&
	       ef_sqlvars_raw(v, "vec_in", pgv ? (sc->vec_type == EF_VEC_HALFVEC ? "u.v::halfvec"
										 : "u.v")
				       : dbl ? "($6[(u.i - 1) * $4 + 1 : u.i * $4])::float8[]"
					     : "$6[(u.i - 1) * $4 + 1 : u.i * $4]") &&
	       optional(v, m->emb_collection, "ecoll_col", ", {ecoll}") &&
	       optional(v, m->emb_collection, "ecoll_val", ", $2") &&
	       optional(v, m->emb_model, "model_col", ", {model}") &&
	       optional(v, m->emb_model, "model_val", ", $3::text") &&
	       optional(v, m->emb_model, "model_set", ", {model} = EXCLUDED.{model}") &&
	       optional(v, m->emb_model, "model_upd", ", {model} = $3::text") &&
	       optional(v, m->emb_dim, "dim_col", ", {dim}") &&
	       optional(v, m->emb_dim, "dim_val", ", $4::int") &&
	       optional(v, m->emb_dim, "dim_set", ", {dim} = EXCLUDED.{dim}") &&
	       optional(v, m->emb_dim, "dim_upd", ", {dim} = $4::int") &&
	       optional(v, m->emb_hash, "hash_col", ", {hash}") &&
	       optional(v, m->emb_hash, "hash_val", buf) &&
	       optional(v, m->emb_hash, "hash_set", ", {hash} = EXCLUDED.{hash}") &&
	       ef_sqlvars_frag(v, "hash_upd", m->emb_hash ? (sc->hash_is_text ? ", {hash} = u.h"
							       : ", {hash} = decode(u.h, 'hex')")
					     : "") &&
	       optional(v, m->emb_at, "at_col", ", {at}") &&
	       optional(v, m->emb_at, "at_val", ", now()") &&
	       optional(v, m->emb_at, "at_set", ", {at} = now()") &&
	       optional(v, m->emb_at, "at_upd", ", {at} = now()") &&
	       optional(v, m->emb_run, "run_col", ", {run}") &&
	       optional(v, m->emb_run, "run_val", ", $7::bigint") &&
	       optional(v, m->emb_run, "run_set", ", {run} = EXCLUDED.{run}") &&
	       optional(v, m->emb_run, "run_upd", ", {run} = $7::bigint") &&
	       optional(v, sc->recipe_col ? "" : NULL, "recipe_col", ", {recipe}") &&
	       optional(v, sc->recipe_col ? "" : NULL, "recipe_val", ", $9::text") &&
	       optional(v, sc->recipe_col ? "" : NULL, "recipe_set", ", {recipe} = EXCLUDED.{recipe}") &&
	       optional(v, sc->recipe_col ? "" : NULL, "recipe_upd", ", {recipe} = $9::text") &&
	       ef_sqlvars_frag(v, "ucoll", coll ? "AND c.{ccoll} = $2" : "") &&
	       ef_sqlvars_frag(v, "conflict", pair ? "{ekcols}, {ecoll}" : "{ekcols}") &&
	       /* a row another collection holds for this chunk key is left alone */
	       ef_sqlvars_frag(v, "conflict_where", !pair && m->emb_collection
			       ? "WHERE t.{ecoll} = EXCLUDED.{ecoll}" : "");
}

/* The batch's lease: its checkpoint and counters, in the batch's
 * transaction and first in it, so that the lease's row lock orders two
 * workers that might both believe they hold it; the function refuses
 * (and so rolls the batch back) when this worker no longer does.  $1 run,
 * $2 lease, $3 worker, $4 checkpoint (text[], NULL: unchanged), $5 done,
 * $6 written, $7 quarantined. */
static const char ckpt_tpl[] =
	"SELECT {tool}.lease_checkpoint($1::bigint, $2::int, $3::bigint, $4::text[],"
	" $5::bigint, $6::bigint, $7::bigint)";

static const char quar_tpl[] =
	"INSERT INTO {tool}.quarantine (collection, chunk_key, chunk_id, reason, content_sha256,"
	" run_id)"
	" VALUES ($1::text, $2::text[], {qint}, $3::text, decode($4::text, 'hex'), $5::bigint)"
	" ON CONFLICT (collection, chunk_key) DO UPDATE SET reason = EXCLUDED.reason,"
	" content_sha256 = EXCLUDED.content_sha256, run_id = EXCLUDED.run_id,"
	" attempts = quarantine.attempts + 1, last_seen = now()";

static const char unquar_tpl[] =
	"DELETE FROM {tool}.quarantine WHERE collection = $1::text"
	" AND coalesce(chunk_key, ARRAY[chunk_id::text]) IN"
	" (SELECT {ukeyt} FROM unnest($2::text[], $3::text[]) AS u(k1, k2))";

/* After a run that rewrote much of the table: the planner's statistics of
 * the vectors' table (and the bookkeeping's) were those from before, for
 * status and verify a table still empty. */
static const char analyze_tpl[] = "ANALYZE {embeddings}";
static const char analyze_inline_tpl[] = "ANALYZE {chunks}";
static const char analyze_book_tpl[] = "; ANALYZE {tool}.vectors";

/* A one-column integer key keeps version 2's integer columns current. */
bool ef_run_int_key(const struct ef_mapping *m, const struct ef_schema *sc)
{
	return m->nkey == 1 && (strcmp(sc->key_type[0], "bigint") == 0 ||
				strcmp(sc->key_type[0], "integer") == 0 ||
				strcmp(sc->key_type[0], "smallint") == 0);
}

ef_status ef_run_sql_build(ef_db *db, const struct ef_config *cfg, const struct ef_schema *sc,
			   bool skip_quarantined, bool only_missing, struct ef_run_sql *out,
			   struct ef_error *err)
{
	const struct ef_mapping *m = &cfg->map;
	const struct ef_collsql_params p = { .model = 3, .dim = 4, .collection = 1,
					     .recipe = cfg->recipe_id };
	struct ef_sqlvars v = { .n = 0 };
	bool ok;

	memset(out, 0, sizeof(*out));
	ok = ef_collsql_vars(&v, db, m, sc, &p, true, err) &&
	     selection_frags(&v, m, sc, skip_quarantined, only_missing) && write_frags(&v, m, sc) &&
	     ef_sqlvars_raw(&v, "qint", ef_run_int_key(m, sc) ? "($2::text[])[1]::bigint"
							      : "NULL::bigint");
	if (ok) {
		out->select = ef_sqlvars_expand(&v, select_tpl);
		out->bounds = ef_sqlvars_expand(&v, bounds_tpl);
		out->count = ef_sqlvars_expand(&v, count_tpl);
		out->upsert = ef_sqlvars_expand(&v, m->layout == EF_LAYOUT_SEPARATE
							? upsert_separate_tpl : upsert_inline_tpl);
		out->book = sc->bookkeeping ? ef_sqlvars_expand(&v, book_tpl) : strdup("");
		out->prune = sc->bookkeeping ? ef_sqlvars_expand(&v, prune_tpl) : strdup("");
		out->checkpoint = ef_sqlvars_expand(&v, ckpt_tpl);
		out->quarantine = ef_sqlvars_expand(&v, quar_tpl);
		out->unquarantine = ef_sqlvars_expand(&v, unquar_tpl);
		out->backup = ef_sqlvars_expand(&v, backup_tpl);
		out->left = ef_sqlvars_expand(&v, left_tpl);
		out->tool = strdup(ef_sqlvars_get(&v, "tool"));
		out->analyze = ef_sqlvars_expand(&v, m->layout == EF_LAYOUT_SEPARATE ? analyze_tpl
									: analyze_inline_tpl);
		if (out->analyze && sc->bookkeeping) {
			char *book = ef_sqlvars_expand(&v, analyze_book_tpl), *both = NULL;

			if (book && asprintf(&both, "%s%s", out->analyze, book) < 0)
				both = NULL;
			free(book);
			free(out->analyze);
			out->analyze = both;
		}
		ok = out->select && out->bounds && out->count && out->upsert && out->book && out->prune &&
		     out->checkpoint && out->quarantine && out->unquarantine && out->backup &&
		     out->left && out->tool && out->analyze;
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
	free(s->analyze);
	free(s->select);
	free(s->bounds);
	free(s->count);
	free(s->upsert);
	free(s->book);
	free(s->prune);
	free(s->checkpoint);
	free(s->quarantine);
	free(s->unquarantine);
	free(s->backup);
	free(s->left);
	free(s->tool);
	memset(s, 0, sizeof(*s));
}

ef_status ef_run_sql_build_tool(ef_db *db, const struct ef_config *cfg, char **tool,
				struct ef_error *err)
{
	*tool = ef_db_quote_part(db, cfg->map.tool_schema, err);
	return *tool ? EF_OK : err->status;
}
