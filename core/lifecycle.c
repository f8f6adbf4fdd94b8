/*
 * lifecycle.c - new collections, swaps, rollbacks, backups and the record
 * of who made a collection's embeddings (see lifecycle.h).
 *
 * A collection is a name on rows: on documents, chunks and embedding rows
 * (or, in lookup mode, one row of the lookup table).  A swap is therefore a
 * pair of renames in one transaction: MVCC lets every reader see the names
 * as they were before the commit or after it, never in between.  Renames
 * go table by table (documents, chunks, embedding rows), each statement
 * touching only rows that still carry the old name, so they are right both
 * when foreign keys cascade a rename downwards (the default layout) and
 * when a mapped layout has no such keys.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/collsql.h"
#include "core/db_pg.h"
#include "core/sqltpl.h"
#include "embfill/chunker.h"
#include "embfill/ident.h"
#include "embfill/lifecycle.h"
#include "embfill/redact.h"
#include "embfill/schema.h"
#include "embfill/spotcheck.h"
#include "embfill/strbuf.h"
#include "embfill/verify.h"

struct life {
	const struct ef_config *cfg;
	struct ef_config own;      /* cfg with a collection's own embedding table */
	char *own_table;
	ef_db *db;
	struct ef_schema sc;
	struct ef_sqlvars v;
	bool in_txn;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ef_status oom(struct ef_error *err)
{
	return ef_error_set(err, EF_ERR_DB, "out of memory");
}

/* Runs tpl (expanded with the quoted names) and returns its result when its
 * status is expect. */
static PGresult *q(struct life *l, const char *tpl, int n, const char *const *p,
		   ExecStatusType expect, struct ef_error *err)
{
	char *sql = ef_sqlvars_expand(&l->v, tpl);
	PGresult *r;

	if (!sql) {
		oom(err);
		return NULL;
	}
	r = ef_db_query(l->db, sql, n, p, expect, err);
	free(sql);
	return r;
}

/* A statement without rows; *affected (may be NULL) gets its row count. */
static ef_status x(struct life *l, const char *tpl, int n, const char *const *p,
		   long long *affected, struct ef_error *err)
{
	PGresult *r = q(l, tpl, n, p, PGRES_COMMAND_OK, err);

	if (!r)
		return err->status;
	if (affected)
		*affected = atoll(PQcmdTuples(r));
	PQclear(r);
	return EF_OK;
}

static ef_status tool_version(struct life *l, struct ef_error *err)
{
	PGresult *r = q(l, "SELECT value FROM {tool}.meta WHERE key = 'schema_version'", 0, NULL,
			PGRES_TUPLES_OK, err);
	int v;

	if (!r)
		return err->status;
	v = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	if (v >= EF_TOOL_SCHEMA_VERSION)
		return EF_OK;
	ef_error_set(err, EF_ERR_DB, "embfill's tables in schema \"%s\" are version %d; this "
		     "embfill needs version %d", l->cfg->map.tool_schema, v,
		     EF_TOOL_SCHEMA_VERSION);
	return ef_error_hint(err, "run `embfill schema init`: it upgrades embfill's tables and "
				  "leaves yours as they are");
}

/* Connects; with coll, the mapping is that collection's (its own
 * embedding table when it has one). */
static ef_status life_open(struct life *l, const struct ef_config *cfg, const char *coll,
			   struct ef_error *err)
{
	bool moved = false;

	memset(l, 0, sizeof(*l));
	l->cfg = cfg;
	if (ef_db_connect(cfg->dsn, &l->db, err) != EF_OK ||
	    ef_db_exec(l->db, "SET client_encoding = 'UTF8'", err) != EF_OK)
		return err->status;
	if (coll && ef_coll_config(l->db, cfg, coll, &l->own, &l->own_table, &moved, err) != EF_OK)
		return err->status;
	if (moved)
		l->cfg = cfg = &l->own;
	if (ef_schema_discover(l->db, &cfg->map, &l->sc, NULL, err) != EF_OK)
		return err->status;
	if (!ef_schema_usable(&l->sc)) {
		ef_error_set(err, EF_ERR_DB, "the collection's tables are not usable");
		return ef_error_hint(err, "run `embfill schema check` to see what is missing");
	}
	if (!l->sc.tool_schema) {
		ef_error_set(err, EF_ERR_DB, "embfill's own tables (schema \"%s\") do not exist",
			     cfg->map.tool_schema);
		return ef_error_hint(err, "run `embfill schema init`: it adds them and leaves "
					  "your tables as they are");
	}
	if (!ef_collsql_quote(&l->v, l->db, &cfg->map, err))
		return err->status;
	return tool_version(l, err);
}

static void life_close(struct life *l)
{
	struct ef_error ignored;

	if (l->in_txn && l->db)
		ef_db_exec(l->db, "ROLLBACK", &ignored);
	ef_sqlvars_free(&l->v);
	ef_db_close(l->db);
	free(l->own_table);
	l->db = NULL;
}

/* After rows moved between collection names the planner's statistics of
 * the collection columns are wrong: a name it thinks empty holds 100,000
 * chunks, and a status or verify of it would pick a nested loop over the
 * whole embedding table.  Refreshed at once (a sample, and never blocking
 * readers or writers); a table we do not own is skipped by the server. */
static void analyze(struct life *l)
{
	struct ef_error ignored;

	x(l, "ANALYZE {chunks}", 0, NULL, NULL, &ignored);
	if (l->cfg->map.layout == EF_LAYOUT_SEPARATE)
		x(l, "ANALYZE {embeddings}", 0, NULL, NULL, &ignored);
	if (l->sc.documents_ok)
		x(l, "ANALYZE {documents}", 0, NULL, NULL, &ignored);
}

static ef_status begin(struct life *l, struct ef_error *err)
{
	if (ef_db_exec(l->db, "BEGIN", err) != EF_OK)
		return err->status;
	l->in_txn = true;
	return EF_OK;
}

static ef_status commit(struct life *l, struct ef_error *err)
{
	l->in_txn = false;
	return ef_db_exec(l->db, "COMMIT", err);
}

/* The run lock of a collection (the key run.c takes), for this
 * transaction: no run can start on it, and none is running. */
static ef_status lock_coll(struct life *l, const char *name, struct ef_error *err)
{
	char *key = NULL;
	const char *p[1];
	PGresult *r;
	bool got;

	if (asprintf(&key, "embfill:%s:%s", l->cfg->map.tool_schema, name) < 0)
		return oom(err);
	p[0] = key;
	r = ef_db_query(l->db, "SELECT pg_try_advisory_xact_lock(hashtextextended($1::text, 0))",
			1, p, PGRES_TUPLES_OK, err);
	free(key);
	if (!r)
		return err->status;
	got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (got)
		return EF_OK;
	ef_error_set(err, EF_ERR_BUSY, "collection \"%s\" is busy: an embfill run holds it", name);
	return ef_error_hint(err, "wait for the run to finish (`embfill status -C %s`), then "
				  "try again", name);
}

/* The value rows carry for a collection: its name, or in lookup mode its
 * key in the lookup table (NULL in *out when it is not there). */
static ef_status coll_value(struct life *l, const char *name, char **out, struct ef_error *err)
{
	const char *p[1] = { name };
	PGresult *r;

	*out = NULL;
	if (l->cfg->map.coll_mode != EF_COLL_LOOKUP) {
		*out = strdup(name);
		return *out ? EF_OK : oom(err);
	}
	r = q(l, "SELECT {lkey}::text FROM {lookup} WHERE {lname} = $1", 1, p, PGRES_TUPLES_OK,
	      err);
	if (!r)
		return err->status;
	if (PQntuples(r) == 1 && !(*out = strdup(PQgetvalue(r, 0, 0)))) {
		PQclear(r);
		return oom(err);
	}
	PQclear(r);
	return EF_OK;
}

static ef_status lookup_missing(struct life *l, const char *name, struct ef_error *err)
{
	ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" is not in the lookup table %s", name,
		     l->cfg->map.lookup);
	return ef_error_hint(err, "add it to %s first (embfill does not write that table), then "
				  "try again", l->cfg->map.lookup);
}

/* How many documents and chunks carry a collection value. */
static ef_status holds(struct life *l, const char *value, long long *docs, long long *chunks,
		       struct ef_error *err)
{
	const char *p[1] = { value };
	PGresult *r;

	*docs = *chunks = 0;
	if (!value)
		return EF_OK;
	r = q(l, "SELECT count(*) FROM {chunks} WHERE {ccoll} = $1", 1, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*chunks = ef_db_ll(r, 0, 0);
	PQclear(r);
	if (!l->sc.documents_ok)
		return EF_OK;
	r = q(l, "SELECT count(*) FROM {documents} WHERE {doc_coll} = $1", 1, p, PGRES_TUPLES_OK,
	      err);
	if (!r)
		return err->status;
	*docs = ef_db_ll(r, 0, 0);
	PQclear(r);
	return EF_OK;
}

/* --- copy and re-chunk ---------------------------------------------------- */

/* A column with a default (serial, identity, any expression) can be left
 * out of an INSERT; one without needs ids from us. */
static ef_status column_default(struct life *l, const char *table_var, const char *column,
				bool *has, char *seq, size_t seqn, struct ef_error *err)
{
	const char *p[2] = { ef_sqlvars_get(&l->v, table_var), column };
	PGresult *r = ef_db_query(l->db, "SELECT a.atthasdef OR a.attidentity <> '',"
					 " coalesce(pg_get_serial_sequence($1, $2), '')"
					 " FROM pg_attribute a WHERE a.attrelid = $1::regclass"
					 " AND a.attname = $2", 2, p, PGRES_TUPLES_OK, err);

	if (!r)
		return err->status;
	*has = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	snprintf(seq, seqn, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 1) : "");
	PQclear(r);
	return EF_OK;
}

/* Rows inserted with ids of their own leave a serial's sequence behind the
 * largest id, and its next value would collide: move it past them (only
 * ever forwards; sequences are not transactional, so this stays even if
 * the copy is rolled back, which costs nothing but a gap). */
static ef_status catch_up(struct life *l, const char *table_var, const char *column,
			  const char *seq, struct ef_error *err)
{
	struct ef_sqlvars v = { .n = 0 };
	const char *p[1] = { seq };
	char *sql = NULL;
	PGresult *r = NULL;

	if (!*seq)
		return EF_OK;
	if (ef_sqlvars_raw(&v, "t", ef_sqlvars_get(&l->v, table_var)) &&
	    ef_sqlvars_quote(&v, l->db, "c", column, false, err))
		sql = ef_sqlvars_expand(&v, "SELECT setval($1::regclass, x.m) FROM (SELECT max({c})"
					    " AS m FROM {t}) x WHERE x.m >="
					    " coalesce(pg_sequence_last_value($1::regclass), 0)");
	ef_sqlvars_free(&v);
	if (sql)
		r = ef_db_query(l->db, sql, 1, p, PGRES_TUPLES_OK, err);
	free(sql);
	if (!r)
		return err->status ? err->status : oom(err);
	PQclear(r);
	return EF_OK;
}

/* New ids for the documents of `from`, in a temporary map old -> new of
 * the id column's own type.  From the column's sequence when it has one;
 * else above the largest id, with the table locked against inserts. */
static ef_status map_documents(struct life *l, const char *from_val, long long *n,
			       struct ef_error *err)
{
	char seq[512];
	bool has_default;
	const char *p[2] = { from_val, seq };
	PGresult *r;
	ef_status st;

	if (column_default(l, "documents", l->cfg->map.doc_id, &has_default, seq, sizeof(seq),
			   err) != EF_OK ||
	    catch_up(l, "documents", l->cfg->map.doc_id, seq, err) != EF_OK ||
	    x(l, "CREATE TEMP TABLE ef_docmap ON COMMIT DROP AS SELECT d.{doc_id} AS old_id,"
		 " d.{doc_id} AS new_id FROM {documents} d WITH NO DATA", 0, NULL, NULL, err) != EF_OK)
		return err->status;
	if (*seq)
		st = x(l, "INSERT INTO ef_docmap SELECT d.{doc_id}, nextval($2::regclass)"
			  " FROM {documents} d WHERE d.{doc_coll} = $1 ORDER BY d.{doc_id}", 2, p, n,
		       err);
	else if ((st = x(l, "LOCK TABLE {documents} IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
			 err)) == EF_OK)
		st = x(l, "INSERT INTO ef_docmap SELECT d.{doc_id}, (SELECT coalesce(max({doc_id}), 0)"
			  " FROM {documents}) + row_number() OVER (ORDER BY d.{doc_id})"
			  " FROM {documents} d WHERE d.{doc_coll} = $1", 1, p, n, err);
	if (st != EF_OK)
		return st;
	r = q(l, "ANALYZE ef_docmap", 0, NULL, PGRES_COMMAND_OK, err);
	PQclear(r);
	return r ? EF_OK : err->status;
}

static ef_status copy_documents(struct life *l, const char *into_val, long long *n,
				struct ef_error *err)
{
	const char *p[1] = { into_val };

	return x(l, "INSERT INTO {documents} ({doc_id}, {doc_coll}, {title}, {source}, {body})"
		    " OVERRIDING SYSTEM VALUE"
		    " SELECT m.new_id, $1, d.{title}, d.{source}, d.{body}"
		    " FROM ef_docmap m JOIN {documents} d ON d.{doc_id} = m.old_id ORDER BY m.new_id",
		 1, p, n, err);
}

/* The chunk id: left to its default, or numbered above the largest one. */
static ef_status chunk_id_frags(struct life *l, struct ef_error *err)
{
	char seq[512];
	bool has_default;

	if (column_default(l, "chunks", l->cfg->map.chunk_id, &has_default, seq, sizeof(seq),
			   err) != EF_OK ||
	    catch_up(l, "chunks", l->cfg->map.chunk_id, seq, err) != EF_OK)
		return err->status;
	if (!has_default && x(l, "LOCK TABLE {chunks} IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
			      err) != EF_OK)
		return err->status;
	if (!ef_sqlvars_frag(&l->v, "newcid_col", has_default ? "" : "{cid}, ") ||
	    !ef_sqlvars_frag(&l->v, "newcid_val", has_default ? "" :
			     "(SELECT coalesce(max(z.{cid}), 0) FROM {chunks} z)"
			     " + row_number() OVER (), "))
		return oom(err);
	return EF_OK;
}

static ef_status copy_chunks(struct life *l, const char *from_val, const char *into_val,
			     long long *n, struct ef_error *err)
{
	const char *p[2] = { from_val, into_val };

	if (chunk_id_frags(l, err) != EF_OK)
		return err->status;
	if (l->sc.documents_ok)
		return x(l, "INSERT INTO {chunks} ({newcid_col}{cdoc}, {ccoll}, {cidx}, {content})"
			    " SELECT {newcid_val}m.new_id, $2, c.{cidx}, c.{content}"
			    " FROM (SELECT * FROM {chunks} WHERE {ccoll} = $1 ORDER BY {cid}) c"
			    " JOIN ef_docmap m ON m.old_id = c.{cdoc}", 2, p, n, err);
	return x(l, "INSERT INTO {chunks} ({newcid_col}{cdoc}, {ccoll}, {cidx}, {content})"
		    " SELECT {newcid_val}c.{cdoc}, $2, c.{cidx}, c.{content}"
		    " FROM (SELECT * FROM {chunks} WHERE {ccoll} = $1 ORDER BY {cid}) c", 2, p, n, err);
}

/* One element of a text[] literal: "..." with \ and " escaped. */
static void array_elem(struct ef_strbuf *b, const char *s, size_t n)
{
	ef_strbuf_add(b, b->len > 1 ? ",\"" : "\"");
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '"')
			ef_strbuf_addn(b, "\\", 1);
		ef_strbuf_addn(b, s + i, 1);
	}
	ef_strbuf_add(b, "\"");
}

struct pending {
	struct ef_strbuf docs, idx, text;
	long long n;
};

static void pending_reset(struct pending *pc)
{
	ef_strbuf_free(&pc->docs);
	ef_strbuf_free(&pc->idx);
	ef_strbuf_free(&pc->text);
	ef_strbuf_add(&pc->docs, "{");
	ef_strbuf_add(&pc->idx, "{");
	ef_strbuf_add(&pc->text, "{");
	pc->n = 0;
}

static ef_status flush_chunks(struct life *l, struct pending *pc, const char *into_val,
			      long long *written, struct ef_error *err)
{
	const char *p[4];
	long long n = 0;

	if (pc->n == 0)
		return EF_OK;
	ef_strbuf_add(&pc->docs, "}");
	ef_strbuf_add(&pc->idx, "}");
	ef_strbuf_add(&pc->text, "}");
	if (pc->docs.oom || pc->idx.oom || pc->text.oom)
		return oom(err);
	p[0] = into_val;
	p[1] = pc->docs.buf;
	p[2] = pc->idx.buf;
	p[3] = pc->text.buf;
	if (x(l, "INSERT INTO {chunks} ({newcid_col}{cdoc}, {ccoll}, {cidx}, {content})"
		 " SELECT {newcid_val}CAST(u.d AS {doc_type}), $1, u.i, u.t"
		 " FROM unnest($2::text[], $3::int[], $4::text[]) AS u(d, i, t)", 4, p, &n,
	      err) != EF_OK)
		return err->status;
	*written += n;
	pending_reset(pc);
	return EF_OK;
}

static ef_status chunk_document(struct pending *pc, const char *doc, const char *body,
				size_t len, const struct ef_config *cfg, struct ef_error *err)
{
	struct ef_chunk *ch = NULL;
	size_t n = 0;
	char num[24];

	if (ef_chunk_split(body, len, (size_t)cfg->max_chunk_size, (size_t)cfg->chunk_overlap, &ch,
			   &n, err) != EF_OK)
		return err->status;
	for (size_t i = 0; i < n; i++) {
		array_elem(&pc->docs, doc, strlen(doc));
		snprintf(num, sizeof(num), "%zu", i);
		array_elem(&pc->idx, num, strlen(num));
		array_elem(&pc->text, body + ch[i].offset, ch[i].length);
		pc->n++;
	}
	free(ch);
	return EF_OK;
}

/* The documents' bodies through a cursor, a few hundred at a time, cut by
 * the chunker and written in batches: memory stays bounded by the batch. */
static ef_status rechunk(struct life *l, const char *into_val, long long *written,
			 struct ef_error *err)
{
	const char *cdoc[2] = { l->cfg->map.chunk_document, ef_sqlvars_get(&l->v, "chunks") };
	struct pending pc = { EF_STRBUF_INIT, EF_STRBUF_INIT, EF_STRBUF_INIT, 0 };
	PGresult *r;
	ef_status st = EF_OK;
	int rows;

	if (chunk_id_frags(l, err) != EF_OK)
		return err->status;
	/* the chunk table's own type for the document key, as the server
	 * spells it, so that the text array casts to exactly that */
	r = q(l, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
		 " $2::regclass AND attname = $1", 2, cdoc, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	if (PQntuples(r) != 1 || !ef_sqlvars_raw(&l->v, "doc_type", PQgetvalue(r, 0, 0))) {
		PQclear(r);
		return ef_error_set(err, EF_ERR_DB, "cannot read the type of %s.%s",
				    l->cfg->map.chunks, l->cfg->map.chunk_document);
	}
	PQclear(r);
	if (x(l, "DECLARE ef_bodies NO SCROLL CURSOR FOR SELECT m.new_id::text, d.{body}"
		 " FROM ef_docmap m JOIN {documents} d ON d.{doc_id} = m.old_id ORDER BY m.new_id",
	      0, NULL, NULL, err) != EF_OK)
		return err->status;
	pending_reset(&pc);
	do {
		r = ef_db_query(l->db, "FETCH 200 FROM ef_bodies", 0, NULL, PGRES_TUPLES_OK, err);
		if (!r) {
			st = err->status;
			break;
		}
		rows = PQntuples(r);
		for (int i = 0; i < rows && st == EF_OK; i++) {
			st = chunk_document(&pc, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
					    (size_t)PQgetlength(r, i, 1), l->cfg, err);
			if (st == EF_OK && (pc.n >= 2000 || pc.text.len >= (8u << 20)))
				st = flush_chunks(l, &pc, into_val, written, err);
		}
		PQclear(r);
	} while (st == EF_OK && rows > 0);
	if (st == EF_OK)
		st = flush_chunks(l, &pc, into_val, written, err);
	ef_strbuf_free(&pc.docs);
	ef_strbuf_free(&pc.idx);
	ef_strbuf_free(&pc.text);
	return st;
}

static ef_status record_copy(struct life *l, const char *from, const char *into,
			     struct ef_copy_result *res, struct ef_error *err)
{
	char size[16], overlap[16];
	const char *p[4] = { into, size, overlap, from };
	PGresult *r;

	if (!res->rechunked) {
		const char *pf[1] = { from };
		r = q(l, "SELECT max_chunk_size, chunk_overlap FROM {tool}.collections WHERE name = $1"
			 " AND max_chunk_size IS NOT NULL", 1, pf, PGRES_TUPLES_OK, err);
		if (!r)
			return err->status;
		if (PQntuples(r) == 1) {
			res->max_chunk_size = (int)ef_db_ll(r, 0, 0);
			res->chunk_overlap = (int)ef_db_ll(r, 0, 1);
		}
		PQclear(r);
	}
	snprintf(size, sizeof(size), "%d", res->max_chunk_size);
	snprintf(overlap, sizeof(overlap), "%d", res->chunk_overlap);
	if (!res->max_chunk_size)
		p[1] = p[2] = NULL;
	return x(l, "INSERT INTO {tool}.collections (name, max_chunk_size, chunk_overlap,"
		    " chunked_from) VALUES ($1, $2::int, $3::int, $4) ON CONFLICT (name) DO UPDATE"
		    " SET model = NULL, dim = NULL, provider = NULL, service_host = NULL,"
		    " max_chunk_size = EXCLUDED.max_chunk_size, chunk_overlap ="
		    " EXCLUDED.chunk_overlap, chunked_from = EXCLUDED.chunked_from,"
		    " embeddings_table = NULL, updated_at = now()", 4, p, NULL, err);
}

static ef_status copy_checks(struct life *l, const char *from, const char *into,
			     const char *from_val, const char *into_val, bool rechunk_,
			     struct ef_error *err)
{
	long long docs, chunks;

	if (!from_val)
		return lookup_missing(l, from, err);
	if (!into_val)
		return lookup_missing(l, into, err);
	if (holds(l, from_val, &docs, &chunks, err) != EF_OK)
		return err->status;
	if (chunks == 0 && docs == 0)
		return ef_collsql_unknown(l->db, l->cfg, from, err);
	if (rechunk_ && !l->sc.documents_ok) {
		ef_error_set(err, EF_ERR_USAGE, "re-chunking needs the documents' text, and the "
			     "documents table %s is not usable", l->cfg->map.documents);
		return ef_error_hint(err, "`embfill schema check` says what is missing; without "
					  "documents, `embfill run --into` copies the chunks as they are");
	}
	if (rechunk_ && docs == 0) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" has no documents to re-chunk",
			     from);
		return ef_error_hint(err, "its chunks have no documents in %s; `embfill run --into` "
					  "copies the chunks as they are", l->cfg->map.documents);
	}
	if (holds(l, into_val, &docs, &chunks, err) != EF_OK)
		return err->status;
	if (chunks || docs) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" already holds %lld documents and "
			     "%lld chunks; nothing was written", into, docs, chunks);
		return ef_error_hint(err, "choose a name no collection uses (`embfill status` "
					  "lists them)");
	}
	return EF_OK;
}

ef_status ef_coll_copy(const struct ef_config *cfg, const char *from, const char *into,
		       bool rechunk_, struct ef_copy_result *res, struct ef_error *err)
{
	struct life l;
	char *from_val = NULL, *into_val = NULL;
	double t0 = now_s();
	ef_status st;

	memset(res, 0, sizeof(*res));
	if (ef_collection_name_check(into, err) != EF_OK)
		return err->status;
	if (strcmp(from, into) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "--into names the collection itself (\"%s\")", from);
		return ef_error_hint(err, "give the new collection a name of its own, e.g. %s_v2",
				     from);
	}
	res->rechunked = rechunk_;
	if (rechunk_) {
		res->max_chunk_size = cfg->max_chunk_size;
		res->chunk_overlap = cfg->chunk_overlap;
	}
	st = life_open(&l, cfg, NULL, err);
	if (st == EF_OK)
		st = begin(&l, err);
	if (st == EF_OK)
		st = lock_coll(&l, from, err);
	if (st == EF_OK)
		st = lock_coll(&l, into, err);
	if (st == EF_OK)
		st = coll_value(&l, from, &from_val, err);
	if (st == EF_OK)
		st = coll_value(&l, into, &into_val, err);
	if (st == EF_OK)
		st = copy_checks(&l, from, into, from_val, into_val, rechunk_, err);
	if (st == EF_OK && l.sc.documents_ok) {
		long long mapped = 0;
		st = map_documents(&l, from_val, &mapped, err);
		if (st == EF_OK)
			st = copy_documents(&l, into_val, &res->documents, err);
	}
	if (st == EF_OK)
		st = rechunk_ ? rechunk(&l, into_val, &res->chunks, err)
			      : copy_chunks(&l, from_val, into_val, &res->chunks, err);
	if (st == EF_OK && !rechunk_) {
		long long d, c;
		st = holds(&l, from_val, &d, &c, err);
		res->left_out = c - res->chunks;
	}
	if (st == EF_OK)
		st = record_copy(&l, from, into, res, err);
	if (st == EF_OK)
		st = commit(&l, err);
	if (st == EF_OK)
		analyze(&l);
	res->elapsed_s = now_s() - t0;
	free(from_val);
	free(into_val);
	life_close(&l);
	return st;
}

ef_status ef_coll_into_state(const struct ef_config *cfg, const char *from, const char *into,
			     int *has_chunks, struct ef_error *err)
{
	struct life l;
	char *into_val = NULL;
	long long docs = 0, chunks = 0;
	const char *p[1] = { into };
	PGresult *r = NULL;
	ef_status st;

	*has_chunks = 0;
	if (ef_collection_name_check(into, err) != EF_OK)
		return err->status;
	if (strcmp(from, into) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "--into names the collection itself (\"%s\")", from);
		return ef_error_hint(err, "give the new collection a name of its own, e.g. %s_v2",
				     from);
	}
	st = life_open(&l, cfg, NULL, err);
	if (st == EF_OK)
		st = coll_value(&l, into, &into_val, err);
	if (st == EF_OK && into_val)
		st = holds(&l, into_val, &docs, &chunks, err);
	if (st == EF_OK && chunks)
		r = q(&l, "SELECT chunked_from FROM {tool}.collections WHERE name = $1", 1, p,
		      PGRES_TUPLES_OK, err);
	if (st == EF_OK && chunks && !r)
		st = err->status;
	if (st == EF_OK && chunks) {
		const char *made = PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "";
		if (strcmp(made, from) == 0) {
			*has_chunks = 1;
		} else {
			ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" already holds %lld chunks, "
				     "and they were not made from \"%s\"; nothing was written", into,
				     chunks, from);
			st = ef_error_hint(err, "choose a name no collection uses for --into; "
						"`embfill status` lists them");
		}
	} else if (st == EF_OK && docs) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" already holds %lld documents; "
			     "nothing was written", into, docs);
		st = ef_error_hint(err, "choose a name no collection uses for --into");
	}
	PQclear(r);
	free(into_val);
	life_close(&l);
	return st;
}

/* --- origin ------------------------------------------------------------- */

char *ef_url_host(const char *url)
{
	CURLU *h = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (h && url && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(h, CURLUPART_PORT, &port, 0) == CURLUE_OK && port) {
			if (asprintf(&out, "%s:%s", host, port) < 0)
				out = NULL;
		} else {
			out = strdup(host);
		}
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return out;
}

static void set_origin(struct ef_origin *o, const char *provider, const char *host,
		       const char *model, int dim)
{
	o->known = *provider != '\0';
	snprintf(o->provider, sizeof(o->provider), "%s", provider);
	snprintf(o->host, sizeof(o->host), "%s", host);
	snprintf(o->model, sizeof(o->model), "%s", model);
	o->dim = dim;
}

static ef_status tool_rows(ef_db *db, const struct ef_config *cfg, const char *tpl, int n,
			   const char *const *p, PGresult **out, struct ef_error *err)
{
	struct ef_sqlvars v = { .n = 0 };
	char *sql = NULL;

	if (ef_sqlvars_quote(&v, db, "tool", cfg->map.tool_schema, false, err))
		sql = ef_sqlvars_expand(&v, tpl);
	ef_sqlvars_free(&v);
	if (!sql)
		return err->status ? err->status : oom(err);
	*out = ef_db_query(db, sql, n, p, PGRES_TUPLES_OK, err);
	free(sql);
	return *out ? EF_OK : err->status;
}

ef_status ef_coll_origin(ef_db *db, const struct ef_config *cfg, const char *name,
			 struct ef_origin *o, struct ef_error *err)
{
	const char *p[1] = { name };
	PGresult *r;

	memset(o, 0, sizeof(*o));
	if (tool_rows(db, cfg, "SELECT provider, coalesce(service_host, ''), coalesce(model, ''),"
			       " coalesce(dim, 0) FROM {tool}.collections WHERE name = $1"
			       " AND provider IS NOT NULL", 1, p, &r, err) != EF_OK)
		return err->status;
	if (PQntuples(r) == 1)
		set_origin(o, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
			   atoi(PQgetvalue(r, 0, 3)));
	PQclear(r);
	if (o->known)
		return EF_OK;
	if (tool_rows(db, cfg, "SELECT coalesce(settings->>'provider', ''), coalesce(settings->>"
			       "'url', ''), coalesce(settings->>'model', ''), coalesce((settings->>"
			       "'dim')::int, 0) FROM {tool}.runs WHERE collection = $1 AND written > 0"
			       " ORDER BY id DESC LIMIT 1", 1, p, &r, err) != EF_OK)
		return err->status;
	if (PQntuples(r) == 1) {
		char *host = ef_url_host(PQgetvalue(r, 0, 1));
		set_origin(o, PQgetvalue(r, 0, 0), host ? host : "", PQgetvalue(r, 0, 2),
			   atoi(PQgetvalue(r, 0, 3)));
		free(host);
	}
	PQclear(r);
	return EF_OK;
}

ef_status ef_coll_record_origin(ef_db *db, const struct ef_config *cfg, const char *name,
				struct ef_error *err)
{
	char *host = ef_url_host(cfg->embed_url);
	char dim[16];
	const char *p[5] = { name, cfg->embed_model, dim, cfg->provider, host ? host : "" };
	PGresult *r;
	ef_status st;

	snprintf(dim, sizeof(dim), "%d", cfg->embed_dim);
	st = tool_rows(db, cfg, "INSERT INTO {tool}.collections (name, model, dim, provider,"
				" service_host) VALUES ($1, $2, $3::int, $4, $5) ON CONFLICT (name)"
				" DO UPDATE SET model = EXCLUDED.model, dim = EXCLUDED.dim, provider ="
				" EXCLUDED.provider, service_host = EXCLUDED.service_host,"
				" updated_at = now() RETURNING name", 5, p, &r, err);
	if (st == EF_OK)
		PQclear(r);
	free(host);
	return st;
}

/* The host of "host[:port]" ("[v6]:port" too): a service that moved to
 * another port of the same host is the same provider's. */
static size_t host_len(const char *hp)
{
	const char *colon = strrchr(hp, ':'), *bracket = strrchr(hp, ']');

	if (!colon || (bracket && bracket > colon) || (!bracket && strchr(hp, ':') != colon))
		return strlen(hp);
	for (const char *d = colon + 1; *d; d++)
		if (*d < '0' || *d > '9')
			return strlen(hp);
	return (size_t)(colon - hp);
}

bool ef_same_service_host(const char *a, const char *b)
{
	size_t n = host_len(a);

	return n == host_len(b) && strncmp(a, b, n) == 0;
}

ef_status ef_coll_check_provider(const struct ef_config *cfg, const char *name,
				 const struct ef_origin *o, struct ef_error *err)
{
	char *host = ef_url_host(cfg->embed_url);
	bool same = !o->known || (strcmp(o->provider, cfg->provider) == 0 && host &&
				  ef_same_service_host(o->host, host));

	if (!same) {
		ef_error_set(err, EF_ERR_USAGE, "provider change: the embeddings of \"%s\" were made "
			     "by %s at %s, the settings say %s at %s; nothing was written", name,
			     o->provider, o->host, cfg->provider, host ? host : "?");
		ef_error_hint(err, "a change of provider needs the collection owner's approval; "
				   "once given, repeat the command with --approve-provider-change");
	}
	free(host);
	return same ? EF_OK : EF_ERR_USAGE;
}

/* --- swap ------------------------------------------------------------------ */

/* Renames a collection everywhere it is named: one statement per table,
 * each touching only rows that still carry the old name. */
static ef_status rename_coll(struct life *l, const char *from, const char *to,
			     struct ef_error *err)
{
	const char *p[2] = { from, to };
	const struct ef_mapping *m = &l->cfg->map;
	ef_status st = EF_OK;

	if (m->coll_mode == EF_COLL_LOOKUP) {
		st = x(l, "UPDATE {lookup} SET {lname} = $2 WHERE {lname} = $1", 2, p, NULL, err);
	} else {
		if (l->sc.documents_ok)
			st = x(l, "UPDATE {documents} SET {doc_coll} = $2 WHERE {doc_coll} = $1", 2, p,
			       NULL, err);
		if (st == EF_OK)
			st = x(l, "UPDATE {chunks} SET {ccoll} = $2 WHERE {ccoll} = $1", 2, p, NULL,
			       err);
		if (st == EF_OK && m->layout == EF_LAYOUT_SEPARATE)
			st = x(l, "UPDATE {embeddings} SET {ecoll} = $2 WHERE {ecoll} = $1", 2, p,
			       NULL, err);
	}
	if (st == EF_OK)
		st = x(l, "UPDATE {tool}.quarantine SET collection = $2 WHERE collection = $1", 2, p,
		       NULL, err);
	if (st == EF_OK)
		st = x(l, "UPDATE {tool}.collections SET name = $2 WHERE name = $1", 2, p, NULL, err);
	if (st == EF_ERR_DB)
		ef_error_hint(err, "renaming \"%s\" failed and nothing changed; a foreign key that "
				   "does not cascade updates of the collection column blocks it",
			      from);
	return st;
}

/* Whether any row names the collection (chunks, documents, embedding rows,
 * the lookup table). */
static ef_status name_used(struct life *l, const char *name, bool *used, struct ef_error *err)
{
	char *val = NULL;
	long long docs = 0, chunks = 0;
	const char *p[1] = { name };
	PGresult *r;

	*used = false;
	if (coll_value(l, name, &val, err) != EF_OK)
		return err->status;
	if (l->cfg->map.coll_mode == EF_COLL_LOOKUP) {
		*used = val != NULL;
		free(val);
		return EF_OK;
	}
	if (holds(l, val, &docs, &chunks, err) != EF_OK) {
		free(val);
		return err->status;
	}
	free(val);
	*used = docs || chunks;
	if (*used || l->cfg->map.layout != EF_LAYOUT_SEPARATE)
		return EF_OK;
	r = q(l, "SELECT EXISTS (SELECT 1 FROM {embeddings} WHERE {ecoll} = $1)", 1, p,
	      PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*used = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return EF_OK;
}

static ef_status previous_name(struct life *l, const char *coll, char *out, size_t n,
			       struct ef_error *err)
{
	PGresult *r = ef_db_query(l->db, "SELECT to_char(now() AT TIME ZONE 'UTC',"
					 " 'YYYYMMDD\"T\"HH24MISS\"Z\"')", 0, NULL,
				  PGRES_TUPLES_OK, err);
	char stamp[32];
	bool used = true;

	if (!r)
		return err->status;
	snprintf(stamp, sizeof(stamp), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	for (int i = 1; i < 10 && used; i++) {
		if (i == 1)
			snprintf(out, n, "%s__prev_%s", coll, stamp);
		else
			snprintf(out, n, "%s__prev_%s_%d", coll, stamp, i);
		if (ef_collection_name_check(out, err) != EF_OK)
			return err->status;
		if (name_used(l, out, &used, err) != EF_OK)
			return err->status;
	}
	if (used)
		return ef_error_set(err, EF_ERR_USAGE, "no free name for the previous collection "
				    "of \"%s\"", coll);
	return EF_OK;
}

static void refuse(struct ef_swap_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void refuse(struct ef_swap_result *res, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(res->refusal);

	if (len + 3 >= sizeof(res->refusal))
		return;
	if (len)
		strcat(res->refusal, "; ");
	va_start(ap, fmt);
	vsnprintf(res->refusal + strlen(res->refusal), sizeof(res->refusal) - strlen(res->refusal),
		  fmt, ap);
	va_end(ap);
}

/* Counts, models and unexplained rows of the new collection. */
/* The gates look at the new collection through its own mapping. */
struct view {
	struct ef_config cfg;
	char *table;
	struct ef_schema sc;
};

static ef_status view_of(struct life *l, const char *name, struct view *w, struct ef_error *err)
{
	bool moved;

	memset(w, 0, sizeof(*w));
	if (ef_coll_config(l->db, l->cfg, name, &w->cfg, &w->table, &moved, err) != EF_OK ||
	    ef_schema_discover(l->db, &w->cfg.map, &w->sc, NULL, err) != EF_OK)
		return err->status;
	return EF_OK;
}

static ef_status gate_verify(struct life *l, const struct view *w, const char *with,
			     struct ef_swap_result *res, struct ef_error *err)
{
	struct ef_verify_report v;

	if (ef_verify(l->db, &w->cfg, &w->sc, with, &v, err) != EF_OK)
		return err->status;
	res->chunks = v.chunks;
	res->fresh = v.fresh;
	if (v.chunks == 0)
		refuse(res, "\"%s\" has no chunks", with);
	if (v.fresh != v.chunks)
		refuse(res, "%lld of its %lld chunks have no fresh vector of %s (dim %d)",
		       v.chunks - v.fresh, v.chunks, l->cfg->embed_model, l->cfg->embed_dim);
	if (v.vectors != v.chunks)
		refuse(res, "it holds %lld vector rows for %lld chunks", v.vectors, v.chunks);
	if (v.nmodels > 1)
		refuse(res, "its vectors are of %zu models or dimensions", v.nmodels);
	for (size_t i = 0; i < v.nissues; i++)
		refuse(res, "%s: %lld", v.issues[i].title, v.issues[i].count);
	ef_verify_report_free(&v);
	return EF_OK;
}

static ef_status gate_retrieval(struct life *l, const struct view *w,
				const struct ef_swap_opts *o, struct ef_swap_result *res, double min,
				struct ef_error *err)
{
	struct ef_spot_request req = { .collection = o->with, .k = 5 };
	struct ef_spot_report sp;

	(void)l;
	if (ef_spotcheck(l->db, &w->cfg, &w->sc, o->ecfg, &req, &sp, err) != EF_OK)
		return err->status;
	res->hits = sp.hits;
	res->samples = sp.nqueries;
	res->hit_rate = sp.hit_rate;
	if (sp.nqueries == 0)
		refuse(res, "no chunk could be sampled for self-retrieval");
	else if (sp.hit_rate + 1e-9 < min)
		refuse(res, "self-retrieval found %zu of %zu sampled chunks in their top 5 (%.0f%%), "
		       "below the %.0f%% a swap needs", sp.hits, sp.nqueries, 100 * sp.hit_rate,
		       100 * min);
	ef_spot_report_free(&sp);
	return EF_OK;
}

static ef_status gate_provider(struct life *l, const struct ef_swap_opts *o,
			       struct ef_error *err)
{
	struct ef_origin live, fresh;

	if (o->approve_provider_change)
		return EF_OK;
	if (ef_coll_origin(l->db, l->cfg, o->collection, &live, err) != EF_OK ||
	    ef_coll_origin(l->db, l->cfg, o->with, &fresh, err) != EF_OK)
		return err->status;
	if (!live.known || !fresh.known || (strcmp(live.provider, fresh.provider) == 0 &&
					     ef_same_service_host(live.host, fresh.host)))
		return EF_OK;
	ef_error_set(err, EF_ERR_USAGE, "provider change: \"%s\" was embedded by %s at %s, \"%s\" "
		     "by %s at %s; nothing was swapped", o->collection, live.provider, live.host,
		     o->with, fresh.provider, fresh.host);
	return ef_error_hint(err, "a change of provider needs the collection owner's approval; "
				  "once given, repeat the command with --approve-provider-change");
}

static ef_status swap_checks(struct life *l, const struct ef_swap_opts *o, struct ef_error *err)
{
	bool used;

	if (ef_collection_name_check(o->with, err) != EF_OK)
		return err->status;
	if (strcmp(o->collection, o->with) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "--with names the collection itself (\"%s\")",
			     o->collection);
		return ef_error_hint(err, "--with names the new collection, verified, that takes "
					  "its place");
	}
	if (name_used(l, o->collection, &used, err) != EF_OK)
		return err->status;
	if (!used)
		return ef_collsql_unknown(l->db, l->cfg, o->collection, err);
	if (name_used(l, o->with, &used, err) != EF_OK)
		return err->status;
	if (!used)
		return ef_collsql_unknown(l->db, l->cfg, o->with, err);
	return EF_OK;
}

ef_status ef_coll_swap(const struct ef_config *cfg, const struct ef_swap_opts *o,
		       struct ef_swap_result *res, struct ef_error *err)
{
	double min = o->min_hit_rate > 0 ? o->min_hit_rate : EF_SWAP_MIN_HIT_RATE;
	const char *p[3];
	struct view w = { .table = NULL };
	struct life l;
	PGresult *r;
	ef_status st;

	memset(res, 0, sizeof(*res));
	st = life_open(&l, cfg, NULL, err);
	if (st == EF_OK)
		st = begin(&l, err);
	if (st == EF_OK)
		st = lock_coll(&l, o->collection, err);
	if (st == EF_OK)
		st = lock_coll(&l, o->with, err);
	if (st == EF_OK)
		st = swap_checks(&l, o, err);
	if (st == EF_OK)
		st = gate_provider(&l, o, err);
	if (st == EF_OK)
		st = view_of(&l, o->with, &w, err);
	if (st == EF_OK)
		st = gate_verify(&l, &w, o->with, res, err);
	if (st == EF_OK && !res->refusal[0])
		st = gate_retrieval(&l, &w, o, res, min, err);
	if (st == EF_OK && w.table)
		snprintf(res->vectors_table, sizeof(res->vectors_table), "%s", w.table);
	if (st == EF_OK && res->refusal[0]) {
		ef_error_set(err, EF_ERR_CHECK, "\"%s\" does not verify clean, so it does not replace "
			     "\"%s\"; nothing was swapped", o->with, o->collection);
		ef_error_hint(err, "`embfill verify -C %s` and `embfill spot-check -C %s` show the "
				   "details; finish it with `embfill run -C %s --confirm %s`", o->with,
			      o->with, o->with, o->with);
		st = EF_ERR_CHECK;
	}
	if (st == EF_OK)
		st = previous_name(&l, o->collection, res->previous_name,
				   sizeof(res->previous_name), err);
	if (st == EF_OK)
		st = rename_coll(&l, o->collection, res->previous_name, err);
	if (st == EF_OK)
		st = rename_coll(&l, o->with, o->collection, err);
	p[0] = o->collection;
	p[1] = o->with;
	p[2] = res->previous_name;
	if (st == EF_OK) {
		r = q(&l, "INSERT INTO {tool}.swaps (collection, with_collection, previous_name)"
			  " VALUES ($1, $2, $3) RETURNING id", 3, p, PGRES_TUPLES_OK, err);
		if (r) {
			res->swap_id = ef_db_ll(r, 0, 0);
			PQclear(r);
		}
		st = r ? EF_OK : err->status;
	}
	if (st == EF_OK)
		st = commit(&l, err);
	if (st == EF_OK)
		analyze(&l);
	free(w.table);
	life_close(&l);
	return st;
}

/* --- rollback ------------------------------------------------------------ */

static ef_status undo_swap(struct life *l, const char *coll, PGresult *ev,
			   struct ef_rollback_result *res, struct ef_error *err)
{
	const char *with = PQgetvalue(ev, 0, 3), *prev = PQgetvalue(ev, 0, 4);
	char id[24];
	const char *p[1] = { id };
	bool used;

	snprintf(res->moved_to, sizeof(res->moved_to), "%s", with);
	snprintf(res->restored_from, sizeof(res->restored_from), "%s", prev);
	snprintf(id, sizeof(id), "%lld", res->id);
	if (lock_coll(l, with, err) != EF_OK || lock_coll(l, prev, err) != EF_OK ||
	    name_used(l, with, &used, err) != EF_OK)
		return err->status;
	if (used) {
		ef_error_set(err, EF_ERR_USAGE, "swap %lld cannot be undone: the name \"%s\" it "
			     "would give back is in use again; nothing changed", res->id, with);
		return ef_error_hint(err, "move or remove collection \"%s\" first", with);
	}
	if (name_used(l, prev, &used, err) != EF_OK)
		return err->status;
	if (!used) {
		ef_error_set(err, EF_ERR_USAGE, "swap %lld cannot be undone: the previous collection "
			     "\"%s\" no longer exists; nothing changed", res->id, prev);
		return ef_error_hint(err, "`embfill status` lists the collections");
	}
	if (rename_coll(l, coll, with, err) != EF_OK || rename_coll(l, prev, coll, err) != EF_OK)
		return err->status;
	return x(l, "UPDATE {tool}.swaps SET rolled_back_at = now() WHERE id = $1::bigint", 1, p,
		 NULL, err);
}

static ef_status restore_inline(struct life *l, const char *id, long long *n,
				struct ef_error *err)
{
	const struct ef_mapping *m = &l->cfg->map;
	const char *p[1] = { id };

	if (!ef_sqlvars_frag(&l->v, "set_dim", m->emb_dim ? ", {dim} = r.{dim}" : "") ||
	    !ef_sqlvars_frag(&l->v, "set_at", m->emb_at ? ", {at} = r.{at}" : "") ||
	    !ef_sqlvars_frag(&l->v, "set_run", m->emb_run ? ", {run} = r.{run}" : ""))
		return oom(err);
	return x(l, "UPDATE {chunks} c SET {model} = r.{model}, {hash} = r.{hash}, {vec} = r.{vec}"
		    "{set_dim}{set_at}{set_run} FROM {tool}.backups b CROSS JOIN LATERAL"
		    " jsonb_populate_record(NULL::{chunks}, b.row_data) r"
		    " WHERE b.run_id = $1::bigint AND c.{cid} = b.chunk_id", 1, p, n, err);
}

static ef_status restore_backup(struct life *l, const char *coll,
				struct ef_rollback_result *res, struct ef_error *err)
{
	char id[24], *val = NULL;
	const char *p[2] = { id, NULL };
	long long deleted = 0;
	ef_status st;

	snprintf(id, sizeof(id), "%lld", res->id);
	if (coll_value(l, coll, &val, err) != EF_OK)
		return err->status;
	if (!val)
		return lookup_missing(l, coll, err);
	p[1] = val;
	if (l->cfg->map.layout == EF_LAYOUT_INLINE) {
		st = restore_inline(l, id, &res->rows_restored, err);
	} else {
		st = x(l, "DELETE FROM {embeddings} e USING {tool}.backups b WHERE b.run_id ="
			  " $1::bigint AND e.{echunk} = b.chunk_id AND e.{ecoll} = $2", 2, p, &deleted,
		       err);
		if (st == EF_OK)
			st = x(l, "INSERT INTO {embeddings} OVERRIDING SYSTEM VALUE SELECT"
				  " (jsonb_populate_record(NULL::{embeddings}, b.row_data)).*"
				  " FROM {tool}.backups b WHERE b.run_id = $1::bigint AND b.existed",
			       1, p, &res->rows_restored, err);
		res->rows_removed = deleted - res->rows_restored;
		if (res->rows_removed < 0)
			res->rows_removed = 0;
	}
	free(val);
	if (st == EF_OK)
		st = x(l, "UPDATE {tool}.runs SET restored_at = now() WHERE id = $1::bigint", 1, p,
		       NULL, err);
	return st;
}

ef_status ef_coll_rollback(const struct ef_config *cfg, const char *collection,
			   struct ef_rollback_result *res, struct ef_error *err)
{
	const char *p[1] = { collection };
	struct life l;
	PGresult *ev = NULL;
	ef_status st;

	memset(res, 0, sizeof(*res));
	st = life_open(&l, cfg, collection, err);
	if (st == EF_OK)
		st = begin(&l, err);
	if (st == EF_OK)
		st = lock_coll(&l, collection, err);
	if (st == EF_OK) {
		ev = q(&l, "SELECT kind, id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
			   " a, b FROM (SELECT 'swap' AS kind, id, swapped_at AS at, with_collection"
			   " AS a, previous_name AS b FROM {tool}.swaps WHERE collection = $1 AND"
			   " rolled_back_at IS NULL UNION ALL SELECT 'backup', id, started_at, NULL,"
			   " NULL FROM {tool}.runs WHERE collection = $1 AND backup AND restored_at"
			   " IS NULL) x ORDER BY at DESC, id DESC LIMIT 1", 1, p, PGRES_TUPLES_OK, err);
		st = ev ? EF_OK : err->status;
	}
	if (st == EF_OK && PQntuples(ev) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" has nothing to roll back: no swap "
			     "and no run with --backup that is not already undone", collection);
		st = ef_error_hint(err, "`embfill history` shows what was done to it");
	}
	if (st == EF_OK) {
		snprintf(res->kind, sizeof(res->kind), "%s", PQgetvalue(ev, 0, 0));
		res->id = ef_db_ll(ev, 0, 1);
		snprintf(res->when, sizeof(res->when), "%s", PQgetvalue(ev, 0, 2));
		st = strcmp(res->kind, "swap") == 0 ? undo_swap(&l, collection, ev, res, err)
						    : restore_backup(&l, collection, res, err);
	}
	if (st == EF_OK)
		st = commit(&l, err);
	if (st == EF_OK)
		analyze(&l);
	PQclear(ev);
	life_close(&l);
	return st;
}

/* --- a collection of another dimension ---------------------------------- */

ef_status ef_coll_config(ef_db *db, const struct ef_config *cfg, const char *name,
			 struct ef_config *out, char **owned, bool *moved, struct ef_error *err)
{
	const char *p[1] = { name };
	PGresult *r;

	*out = *cfg;
	*owned = NULL;
	*moved = false;
	/* read through to_jsonb so that embfill's tables of an older version,
	 * or none at all, simply mean "no table of its own" */
	if (tool_rows(db, cfg, "SELECT to_jsonb(c)->>'embeddings_table' FROM {tool}.collections c"
			       " WHERE c.name = $1 AND to_regclass(to_jsonb(c)->>'embeddings_table')"
			       " IS NOT NULL", 1, p, &r, err) != EF_OK) {
		ef_error_clear(err);
		return EF_OK;
	}
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && cfg->map.embeddings &&
	    strcmp(PQgetvalue(r, 0, 0), cfg->map.embeddings) != 0) {
		*owned = strdup(PQgetvalue(r, 0, 0));
		if (!*owned) {
			PQclear(r);
			return oom(err);
		}
		out->map.embeddings = *owned;
		*moved = true;
	}
	PQclear(r);
	return EF_OK;
}

/* <table>_d<dim>, the last part of the name kept within 63 bytes. */
static char *dim_table_name(const char *table, int dim)
{
	const char *dot = strrchr(table, '.');
	char suffix[16], *out = NULL;
	int keep;

	snprintf(suffix, sizeof(suffix), "_d%d", dim);
	keep = (int)(63 - strlen(suffix));
	if (dot && asprintf(&out, "%.*s%.*s%s", (int)(dot - table + 1), table, keep, dot + 1,
			    suffix) < 0)
		return NULL;
	if (!dot && asprintf(&out, "%.*s%s", keep, table, suffix) < 0)
		return NULL;
	return out;
}

ef_status ef_coll_prepare_dim(const struct ef_config *cfg, const char *into, char **table,
			      struct ef_error *err)
{
	struct life l;
	char *name = NULL;
	const char *p[2] = { into, NULL };
	bool created = false;
	ef_status st;

	*table = NULL;
	st = life_open(&l, cfg, NULL, err);
	if (st != EF_OK || !ef_collsql_fixed_dim(&l.sc) || l.sc.dim == cfg->embed_dim) {
		life_close(&l);
		return st;
	}
	if (cfg->map.layout != EF_LAYOUT_SEPARATE) {
		ef_error_set(err, EF_ERR_USAGE, "EMBED_DIM is %d and the embedding column %s holds "
			     "dimension %d; in the inline layout a new dimension needs a column of "
			     "its own", cfg->embed_dim, cfg->map.emb_vector, l.sc.dim);
		ef_error_hint(err, "add a chunk table with a vector(%d) column for the new "
				   "collection, or keep EMBED_DIM at %d", cfg->embed_dim, l.sc.dim);
		life_close(&l);
		return EF_ERR_USAGE;
	}
	name = dim_table_name(cfg->map.embeddings, cfg->embed_dim);
	p[1] = name;
	st = name ? begin(&l, err) : oom(err);
	if (st == EF_OK)
		st = lock_coll(&l, into, err);
	if (st == EF_OK)
		st = ef_schema_add_dim_table(l.db, &cfg->map, l.sc.vec_type, cfg->embed_dim, name,
					     &created, err);
	if (st == EF_OK)
		st = x(&l, "INSERT INTO {tool}.collections (name, embeddings_table) VALUES ($1, $2)"
			   " ON CONFLICT (name) DO UPDATE SET embeddings_table = EXCLUDED"
			   ".embeddings_table, updated_at = now()", 2, p, NULL, err);
	if (st == EF_OK)
		st = commit(&l, err);
	life_close(&l);
	if (st == EF_OK)
		*table = name;
	else
		free(name);
	return st;
}
