/*
 * schema_init.c - `embfill schema init`: the default layout and embfill's
 * own tables, created idempotently in one transaction.
 *
 * Tenant isolation is the database's job, not only the tool's: the
 * embedding table's (chunk, collection) pair is a foreign key into the chunk
 * table's (id, collection), so a vector filed under another tenant's name is
 * refused at INSERT time, whoever writes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "core/db/schema_int.h"
#include "embfill/schema.h"
#include "embfill/strbuf.h"
#include "core/db/collsql.h"
#include "core/db/sqltpl.h"

static ef_status run_tpl(ef_db *db, const char *tpl, const struct ef_sqlvars *v,
			 struct ef_error *err)
{
	char *sql = ef_sqlvars_expand(v, tpl);
	ef_status st;

	if (!sql)
		return ef_error_oom(err, NULL);
	st = ef_db_exec(db, sql, err);
	free(sql);
	return st;
}

static const char tool_ddl[] =
	"CREATE SCHEMA IF NOT EXISTS {tool};"
	"CREATE TABLE IF NOT EXISTS {tool}.meta ("
	"  key text PRIMARY KEY, value text NOT NULL);"
	"INSERT INTO {tool}.meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;"
	"CREATE TABLE IF NOT EXISTS {tool}.runs ("
	"  id bigserial PRIMARY KEY,"
	"  collection text NOT NULL,"
	"  target_collection text NOT NULL,"
	"  state text NOT NULL DEFAULT 'running' CHECK (state IN"
	"    ('running', 'interrupted', 'completed', 'failed', 'cancelled', 'dry-run')),"
	"  operator text NOT NULL DEFAULT current_user,"
	"  host text, pid integer, command text, note text,"
	"  settings jsonb NOT NULL DEFAULT '{}',"
	"  started_at timestamptz NOT NULL DEFAULT now(),"
	"  heartbeat_at timestamptz NOT NULL DEFAULT now(),"
	"  finished_at timestamptz,"
	"  checkpoint_chunk_id bigint,"
	"  total bigint NOT NULL DEFAULT 0, done bigint NOT NULL DEFAULT 0,"
	"  written bigint NOT NULL DEFAULT 0, requests bigint NOT NULL DEFAULT 0,"
	"  retries bigint NOT NULL DEFAULT 0, quarantined bigint NOT NULL DEFAULT 0,"
	"  error text);"
	"CREATE INDEX IF NOT EXISTS runs_collection_idx ON {tool}.runs (collection, id DESC);"
	"CREATE TABLE IF NOT EXISTS {tool}.quarantine ("
	"  collection text NOT NULL, chunk_id bigint NOT NULL,"
	"  reason text NOT NULL, content_sha256 bytea,"
	"  run_id bigint REFERENCES {tool}.runs (id) ON DELETE SET NULL,"
	"  attempts integer NOT NULL DEFAULT 1,"
	"  first_seen timestamptz NOT NULL DEFAULT now(),"
	"  last_seen timestamptz NOT NULL DEFAULT now(),"
	"  PRIMARY KEY (collection, chunk_id));"
	"CREATE TABLE IF NOT EXISTS {tool}.collections ("
	"  name text PRIMARY KEY, model text, dim integer, provider text, service_host text,"
	"  max_chunk_size integer, chunk_overlap integer, chunked_from text,"
	"  updated_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS {tool}.backups ("
	"  run_id bigint NOT NULL, collection text NOT NULL, chunk_id bigint NOT NULL,"
	"  model text, dim integer, content_sha256 bytea, embedding real[],"
	"  embedded_at timestamptz, saved_at timestamptz NOT NULL DEFAULT now(),"
	"  PRIMARY KEY (run_id, chunk_id));"
	"CREATE TABLE IF NOT EXISTS {tool}.swaps ("
	"  id bigserial PRIMARY KEY, collection text NOT NULL, with_collection text NOT NULL,"
	"  previous_name text NOT NULL, operator text NOT NULL DEFAULT current_user,"
	"  swapped_at timestamptz NOT NULL DEFAULT now(), rolled_back_at timestamptz);"
	/* version 2: what a rollback and a provider check need */
	"ALTER TABLE {tool}.collections ADD COLUMN IF NOT EXISTS embeddings_table text;"
	"ALTER TABLE {tool}.backups ADD COLUMN IF NOT EXISTS existed boolean NOT NULL DEFAULT true;"
	"ALTER TABLE {tool}.backups ADD COLUMN IF NOT EXISTS row_data jsonb;"
	"ALTER TABLE {tool}.runs ADD COLUMN IF NOT EXISTS backup boolean NOT NULL DEFAULT false;"
	"ALTER TABLE {tool}.runs ADD COLUMN IF NOT EXISTS restored_at timestamptz;"
	"CREATE INDEX IF NOT EXISTS swaps_collection_idx ON {tool}.swaps (collection, id DESC);"
	/* saved vectors do not compress either */
	"ALTER TABLE {tool}.backups ALTER COLUMN embedding SET STORAGE EXTERNAL;"
	"UPDATE {tool}.meta SET value = '2' WHERE key = 'schema_version' AND value::int < 2;"
	/* version 3: chunk keys of any type, kept as their text forms (text[],
	 * one element per key column), and the bookkeeping of vectors whose
	 * table has no column for their model, hash, dimension, time or run.
	 * The integer columns of version 2 stay, and are still written for a
	 * one-column integer key, so that scripts reading them go on working;
	 * a row that has only them is read as ARRAY[chunk_id::text]. */
	"CREATE TABLE IF NOT EXISTS {tool}.vectors ("
	"  collection text NOT NULL, chunk_key text[] NOT NULL,"
	"  model text, dim integer, content_sha256 bytea, recipe text,"
	"  embedded_at timestamptz NOT NULL DEFAULT now(), run_id bigint,"
	"  PRIMARY KEY (collection, chunk_key));"
	"ALTER TABLE {tool}.runs ADD COLUMN IF NOT EXISTS checkpoint_key text[];"
	"UPDATE {tool}.runs SET checkpoint_key = ARRAY[checkpoint_chunk_id::text]"
	"  WHERE checkpoint_key IS NULL AND checkpoint_chunk_id IS NOT NULL;"
	"ALTER TABLE {tool}.quarantine ADD COLUMN IF NOT EXISTS chunk_key text[];"
	"UPDATE {tool}.quarantine SET chunk_key = ARRAY[chunk_id::text] WHERE chunk_key IS NULL;"
	"ALTER TABLE {tool}.quarantine DROP CONSTRAINT IF EXISTS quarantine_pkey;"
	"ALTER TABLE {tool}.quarantine ALTER COLUMN chunk_id DROP NOT NULL;"
	"CREATE UNIQUE INDEX IF NOT EXISTS quarantine_key_idx"
	"  ON {tool}.quarantine (collection, chunk_key);"
	"ALTER TABLE {tool}.backups ADD COLUMN IF NOT EXISTS chunk_key text[];"
	"UPDATE {tool}.backups SET chunk_key = ARRAY[chunk_id::text] WHERE chunk_key IS NULL;"
	"ALTER TABLE {tool}.backups DROP CONSTRAINT IF EXISTS backups_pkey;"
	"ALTER TABLE {tool}.backups ALTER COLUMN chunk_id DROP NOT NULL;"
	"CREATE UNIQUE INDEX IF NOT EXISTS backups_key_idx ON {tool}.backups (run_id, chunk_key);"
	"ALTER TABLE {tool}.backups ADD COLUMN IF NOT EXISTS bookkeeping jsonb;"
	"UPDATE {tool}.meta SET value = '3' WHERE key = 'schema_version' AND value::int < 3;"
	/* version 4: the recipes vectors were made with (recipe.h), by their
	 * fingerprint, so that a report can say what another recipe was */
	"CREATE TABLE IF NOT EXISTS {tool}.recipes ("
	"  id text PRIMARY KEY, description text NOT NULL, canonical text NOT NULL,"
	"  first_seen timestamptz NOT NULL DEFAULT now());"
	"UPDATE {tool}.meta SET value = '4' WHERE key = 'schema_version' AND value::int < 4;"
	/* version 5: vector indexes dropped for a run (--rebuild-index), each
	 * recorded in the transaction that drops it and deleted once rebuilt
	 * (vindex.h) */
	"CREATE TABLE IF NOT EXISTS {tool}.vector_indexes ("
	"  index_name text PRIMARY KEY, table_name text NOT NULL, definition text NOT NULL,"
	"  tablespace text, comment text, run_id bigint, collection text,"
	"  dropped_at timestamptz NOT NULL DEFAULT now());"
	"UPDATE {tool}.meta SET value = '5' WHERE key = 'schema_version' AND value::int < 5;"
	/* version 6: a run shared by several workers, coordinated by the
	 * database: the workers (host, pid, heartbeat, their numbers), the
	 * run's chunks cut into key ranges (leases: bounds as text[], lower
	 * exclusive, upper inclusive, NULL open), each checkpointed inside;
	 * the reference vectors every endpoint of the run must reproduce, and
	 * the stop every worker reads at its heartbeat.  lease_checkpoint()
	 * runs first in every batch's transaction: the lease row, then the
	 * run's, always in that order, so two workers never deadlock */
	"CREATE TABLE IF NOT EXISTS {tool}.workers ("
	"  id bigserial PRIMARY KEY,"
	"  run_id bigint NOT NULL REFERENCES {tool}.runs (id) ON DELETE CASCADE,"
	"  host text NOT NULL, pid integer NOT NULL,"
	"  state text NOT NULL DEFAULT 'running' CHECK (state IN"
	"    ('running', 'finished', 'stopped', 'failed')),"
	"  started_at timestamptz NOT NULL DEFAULT now(),"
	"  heartbeat_at timestamptz NOT NULL DEFAULT now(),"
	"  finished_at timestamptz,"
	"  done bigint NOT NULL DEFAULT 0, written bigint NOT NULL DEFAULT 0,"
	"  quarantined bigint NOT NULL DEFAULT 0, rate double precision NOT NULL DEFAULT 0,"
	"  endpoints jsonb NOT NULL DEFAULT '[]');"
	"CREATE INDEX IF NOT EXISTS workers_run_idx ON {tool}.workers (run_id, id);"
	"CREATE TABLE IF NOT EXISTS {tool}.leases ("
	"  run_id bigint NOT NULL REFERENCES {tool}.runs (id) ON DELETE CASCADE,"
	"  seq integer NOT NULL,"
	"  lo_key text[], hi_key text[],"
	"  state text NOT NULL DEFAULT 'free' CHECK (state IN ('free', 'taken', 'done')),"
	"  worker_id bigint REFERENCES {tool}.workers (id) ON DELETE SET NULL,"
	"  checkpoint_key text[],"
	"  done bigint NOT NULL DEFAULT 0, written bigint NOT NULL DEFAULT 0,"
	"  quarantined bigint NOT NULL DEFAULT 0,"
	"  takeovers integer NOT NULL DEFAULT 0,"
	"  heartbeat_at timestamptz, finished_at timestamptz,"
	"  PRIMARY KEY (run_id, seq));"
	"ALTER TABLE {tool}.runs ADD COLUMN IF NOT EXISTS stop_requested boolean NOT NULL"
	"  DEFAULT false;"
	"ALTER TABLE {tool}.runs ADD COLUMN IF NOT EXISTS reference real[];"
	"CREATE OR REPLACE FUNCTION {tool}.lease_checkpoint(p_run bigint, p_seq integer,"
	"  p_worker bigint, p_key text[], p_done bigint, p_written bigint, p_quarantined bigint)"
	"  RETURNS void LANGUAGE plpgsql AS $lease$"
	" BEGIN"
	"  UPDATE {tool}.leases SET checkpoint_key = coalesce(p_key, checkpoint_key),"
	"   done = done + p_done, written = written + p_written,"
	"   quarantined = quarantined + p_quarantined, heartbeat_at = now()"
	"   WHERE run_id = p_run AND seq = p_seq AND worker_id = p_worker AND state = 'taken';"
	"  IF NOT FOUND THEN"
	"   RAISE EXCEPTION 'lease % of run % is no longer held by worker %', p_seq, p_run,"
	"    p_worker USING ERRCODE = 'EF001',"
	"    HINT = 'another worker took it over after LEASE_TIMEOUT_S without a heartbeat';"
	"  END IF;"
	"  UPDATE {tool}.runs SET done = done + p_done, written = written + p_written,"
	"   quarantined = quarantined + p_quarantined, heartbeat_at = now() WHERE id = p_run;"
	" END $lease$;"
	"UPDATE {tool}.meta SET value = '6' WHERE key = 'schema_version' AND value::int < 6;";

static const char documents_ddl[] =
	"CREATE TABLE {documents} ("
	"  {doc_id} bigserial PRIMARY KEY,"
	"  {doc_coll} text NOT NULL,"
	"  {title} text NOT NULL DEFAULT '',"
	"  {source} text,"
	"  {body} text NOT NULL,"
	"  created_at timestamptz NOT NULL DEFAULT now(),"
	"  UNIQUE ({doc_id}, {doc_coll}))";

static const char chunks_ddl[] =
	"CREATE TABLE {chunks} ("
	"  {cid} bigserial PRIMARY KEY,"
	"  {cdoc} bigint NOT NULL,"
	"  {ccoll} text NOT NULL,"
	"  {cidx} integer NOT NULL CHECK ({cidx} >= 0),"
	"  {content} text NOT NULL,"
	"  updated_at timestamptz NOT NULL DEFAULT now(),"
	"  UNIQUE ({cid}, {ccoll}),"
	"  UNIQUE ({cdoc}, {cidx}),"
	"  FOREIGN KEY ({cdoc}, {ccoll}) REFERENCES {documents} ({doc_id}, {doc_coll})"
	"    ON DELETE CASCADE ON UPDATE CASCADE);"
	"CREATE INDEX {chunks_idx} ON {chunks} ({ccoll}, {cid})";

static char *embeddings_ddl(const struct ef_mapping *m, enum ef_vec_type t, int dim)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	const char *dims = t == EF_VEC_PGVECTOR || t == EF_VEC_HALFVEC ? "vector_dims"
										: "cardinality";

	ef_strbuf_add(&b, "CREATE TABLE {embeddings} ("
			  "  {echunk} bigint PRIMARY KEY,"
			  "  {ecoll} text NOT NULL,"
			  "  {model} text NOT NULL,");
	if (m->emb_dim)
		ef_strbuf_add(&b, "  {dim} integer NOT NULL CHECK ({dim} > 0),");
	ef_strbuf_add(&b, "  {hash} bytea NOT NULL CHECK (octet_length({hash}) = 32),");
	if (t == EF_VEC_PGVECTOR || t == EF_VEC_HALFVEC)
		ef_strbuf_addf(&b, "  {vec} %s(%d),", t == EF_VEC_HALFVEC ? "halfvec" : "vector",
			       dim);
	else
		ef_strbuf_addf(&b, "  {vec} real[] CHECK (array_ndims({vec}) = 1"
				   " AND array_length({vec}, 1) = %d),", dim);
	if (m->emb_dim)
		ef_strbuf_addf(&b, "  CHECK ({vec} IS NULL OR %s({vec}) = {dim}),", dims);
	if (m->emb_at)
		ef_strbuf_add(&b, "  {at} timestamptz NOT NULL DEFAULT now(),");
	if (m->emb_run)
		ef_strbuf_add(&b, "  {run} bigint,");
	if (m->emb_recipe)
		ef_strbuf_add(&b, "  {recipe} text,");
	ef_strbuf_add(&b, "  CONSTRAINT {fk_name} FOREIGN KEY ({echunk}, {ecoll})"
			  "    REFERENCES {chunks} ({cid}, {ccoll}) ON DELETE CASCADE ON UPDATE CASCADE);"
			  "CREATE INDEX {emb_idx} ON {embeddings} ({ecoll}, {echunk});"
			  /* vectors do not compress: store them out of line as they are,
			   * which spares the write path a futile pglz pass per row */
			  "ALTER TABLE {embeddings} ALTER COLUMN {vec} SET STORAGE EXTERNAL");
	return ef_strbuf_take(&b);
}

/* An index or constraint name next to its table: base name + suffix, kept
 * within 63 bytes. */
static char *derived_name(const char *table, const char *suffix)
{
	const char *dot = strrchr(table, '.');
	const char *base = dot ? dot + 1 : table;
	char *out = NULL;
	int keep = (int)(63 - strlen(suffix));

	if (asprintf(&out, "%.*s%s", keep, base, suffix) < 0)
		return NULL;
	return out;
}

static bool quote_derived(struct ef_sqlvars *v, ef_db *db, const char *name, const char *table,
			  const char *suffix, struct ef_error *err)
{
	char *n = derived_name(table, suffix);
	bool ok = n && ef_sqlvars_quote(v, db, name, n, false, err);

	free(n);
	return ok;
}

static bool set_vars(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m, struct ef_error *err)
{
	if (!ef_collsql_quote(v, db, m, err) ||
	    !quote_derived(v, db, "chunks_idx", m->chunks, "_collection_id_idx", err))
		return false;
	return !m->embeddings ||
	       (quote_derived(v, db, "emb_idx", m->embeddings, "_collection_chunk_idx", err) &&
		quote_derived(v, db, "fk_name", m->embeddings, "_isolation_fkey", err));
}

static ef_status ensure_schema_of(ef_db *db, const char *table, struct ef_error *err)
{
	const char *dot = strchr(table, '.');
	char *schema, *q, *sql = NULL;
	ef_status st;

	if (!dot)
		return EF_OK;
	schema = strndup(table, (size_t)(dot - table));
	q = schema ? ef_db_quote_part(db, schema, err) : NULL;
	free(schema);
	if (!q || asprintf(&sql, "CREATE SCHEMA IF NOT EXISTS %s", q) < 0) {
		free(q);
		return err->status ? err->status : ef_error_oom(err, NULL);
	}
	free(q);
	st = ef_db_exec(db, sql, err);
	free(sql);
	return st;
}

/* vector when the extension is there or can be created, real[] otherwise
 * (unless the operator insisted on vector). */
static ef_status choose_vec_type(ef_db *db, enum ef_vec_type want, enum ef_vec_type *out,
				 struct ef_checklist *rep, struct ef_error *err)
{
	struct ef_db_info info;
	struct ef_error ignored;

	if (want == EF_VEC_REAL_ARRAY) {
		*out = EF_VEC_REAL_ARRAY;
		return EF_OK;
	}
	if (ef_db_info(db, &info, err) != EF_OK)
		return err->status;
	if (!info.vector_installed && info.vector_available &&
	    ef_db_exec(db, "SAVEPOINT ext", err) == EF_OK) {
		if (ef_db_exec(db, "CREATE EXTENSION IF NOT EXISTS vector", &ignored) == EF_OK) {
			if (ef_db_info(db, &info, err) != EF_OK)
				return err->status;
			ef_check_add(rep, EF_CHECK_PASS, "extension", "", "created extension vector");
		} else if (ef_db_exec(db, "ROLLBACK TO SAVEPOINT ext", err) != EF_OK) {
			return err->status;
		}
	}
	if (info.vector_installed && want == EF_VEC_HALFVEC && !info.halfvec) {
		ef_error_set(err, EF_ERR_USAGE, "pgvector %s in database \"%s\" has no halfvec "
			     "type (it came with pgvector 0.7)", info.vector_version, info.database);
		return ef_error_hint(err, "ALTER EXTENSION vector UPDATE as a superuser, or use "
					  "--vector-type vector");
	}
	if (info.vector_installed) {
		*out = want == EF_VEC_HALFVEC ? EF_VEC_HALFVEC : EF_VEC_PGVECTOR;
		return EF_OK;
	}
	if (want == EF_VEC_PGVECTOR || want == EF_VEC_HALFVEC) {
		ef_error_set(err, EF_ERR_USAGE, "the vector extension (pgvector) is not %s in "
			     "database \"%s\"", info.vector_available ? "creatable by this user"
								   : "available", info.database);
		return ef_error_hint(err, "install pgvector and CREATE EXTENSION vector as a "
					  "superuser, or use --vector-type real");
	}
	*out = EF_VEC_REAL_ARRAY;
	ef_check_add(rep, EF_CHECK_WARN, "extension",
		     "install pgvector for indexed similarity search; embfill works with real[]",
		     "pgvector is not %s: vectors are stored as real[]",
		     info.vector_available ? "creatable by this user" : "available");
	return EF_OK;
}

static ef_status create_table(ef_db *db, const char *what, const char *name, const char *tpl,
			      const struct ef_sqlvars *v, struct ef_checklist *rep, struct ef_error *err)
{
	struct ef_relinfo r;
	ef_status st;

	if (ef_relinfo_load(db, name, &r, err) != EF_OK)
		return err->status;
	if (r.exists) {
		ef_check_add(rep, EF_CHECK_PASS, what, "", "%s exists; left as it is", r.quoted);
		ef_relinfo_free(&r);
		return EF_OK;
	}
	st = ensure_schema_of(db, name, err);
	if (st == EF_OK)
		st = run_tpl(db, tpl, v, err);
	if (st == EF_OK)
		ef_check_add(rep, EF_CHECK_PASS, what, "", "created %s", r.quoted);
	ef_relinfo_free(&r);
	return st;
}

static ef_status refuse_other_dim(ef_db *db, const struct ef_mapping *m, int dim,
				  struct ef_error *err)
{
	struct ef_schema sc;

	if (ef_schema_discover(db, m, &sc, NULL, err) != EF_OK)
		return err->status;
	if (!sc.embeddings_ok || !sc.dim || sc.dim == dim)
		return EF_OK;
	ef_error_set(err, EF_ERR_USAGE, "the embedding column \"%s\" already holds dimension %d "
		     "(from the %s), not %d", m->emb_vector, sc.dim, sc.dim_source, dim);
	return ef_error_hint(err, "nothing was changed; a model of another dimension goes into "
				  "a new collection (`embfill run --into NEW`), or pass --dim %d",
			     sc.dim);
}

static ef_status init_data_tables(ef_db *db, const struct ef_mapping *m,
				  const struct ef_schema_init_opts *o, struct ef_sqlvars *v,
				  struct ef_checklist *rep, struct ef_error *err)
{
	enum ef_vec_type t = EF_VEC_REAL_ARRAY;
	char *emb;
	ef_status st;

	if (m->layout != EF_LAYOUT_SEPARATE || m->coll_mode != EF_COLL_COLUMN) {
		ef_check_add(rep, EF_CHECK_WARN, "layout",
			     "`embfill schema check` tells whether your tables have what embfill "
			     "needs",
			     "SCHEMA_LAYOUT=%s, COLLECTION_MODE=%s describe tables of your own: only "
			     "embfill's tables were created",
			     m->layout == EF_LAYOUT_SEPARATE ? "separate" : "inline",
			     m->coll_mode == EF_COLL_COLUMN ? "column" : m->coll_mode ==
			     EF_COLL_LOOKUP ? "lookup" : "table");
		return EF_OK;
	}
	if (choose_vec_type(db, o->want, &t, rep, err) != EF_OK)
		return err->status;
	st = create_table(db, "document table", m->documents, documents_ddl, v, rep, err);
	if (st == EF_OK)
		st = create_table(db, "chunk table", m->chunks, chunks_ddl, v, rep, err);
	emb = st == EF_OK ? embeddings_ddl(m, t, o->dim) : NULL;
	if (st == EF_OK && !emb)
		st = ef_error_oom(err, NULL);
	if (st == EF_OK)
		st = create_table(db, "embedding table", m->embeddings, emb, v, rep, err);
	free(emb);
	return st;
}

ef_status ef_schema_init(ef_db *db, const struct ef_mapping *m,
			 const struct ef_schema_init_opts *o, struct ef_checklist *rep,
			 struct ef_error *err)
{
	struct ef_sqlvars v = { .n = 0 };
	ef_status st;

	if (refuse_other_dim(db, m, o->dim, err) != EF_OK)
		return err->status;
	if (!set_vars(&v, db, m, err)) {
		ef_sqlvars_free(&v);
		return err->status ? err->status : ef_error_oom(err, NULL);
	}
	st = ef_db_exec(db, "BEGIN", err);
	if (st == EF_OK)
		st = init_data_tables(db, m, o, &v, rep, err);
	if (st == EF_OK)
		st = run_tpl(db, tool_ddl, &v, err);
	if (st == EF_OK) {
		ef_check_add(rep, EF_CHECK_PASS, "embfill tables", "",
			     "schema %s holds runs, workers, leases, quarantine, collections, "
			     "backups and swaps",
			     ef_sqlvars_get(&v, "tool"));
		st = ef_db_exec(db, "COMMIT", err);
	} else {
		struct ef_error ignored;
		ef_db_exec(db, "ROLLBACK", &ignored);
	}
	ef_sqlvars_free(&v);
	return st;
}

ef_status ef_schema_add_dim_table(ef_db *db, const struct ef_mapping *m, enum ef_vec_type t,
				  int dim, const char *table, bool *created, struct ef_error *err)
{
	struct ef_mapping m2 = *m;
	struct ef_sqlvars v = { .n = 0 };
	struct ef_checklist rep;
	char *emb = NULL;
	ef_status st = EF_OK;
	size_t before;

	memset(&rep, 0, sizeof(rep));
	m2.embeddings = table;
	if (!set_vars(&v, db, &m2, err) || !(emb = embeddings_ddl(&m2, t, dim)))
		st = err->status ? err->status : ef_error_oom(err, NULL);
	before = rep.n;
	if (st == EF_OK)
		st = create_table(db, "embedding table", table, emb, &v, &rep, err);
	*created = st == EF_OK && rep.n > before && strstr(rep.items[rep.n - 1].detail, "created");
	ef_checklist_free(&rep);
	free(emb);
	ef_sqlvars_free(&v);
	return st;
}
