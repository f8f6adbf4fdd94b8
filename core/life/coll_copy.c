/*
 * coll_copy.c - a new collection from an old one's documents: its chunks
 * copied as they are, or the documents cut anew by core's chunker; one
 * transaction, the chunking recorded with the collection.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/life/life_int.h"
#include "core/db/sqltpl.h"
#include "embfill/chunker.h"
#include "embfill/ident.h"
#include "embfill/lifecycle.h"
#include "embfill/scan.h"
#include "embfill/session.h"
#include "embfill/redact.h"
#include "embfill/schema.h"
#include "embfill/spotcheck.h"
#include "embfill/strbuf.h"
#include "embfill/verify.h"

/* --- copy and re-chunk ---------------------------------------------------- */

/* What a column of a table is, for a copy: its type, whether it has a
 * default (serial, identity or any expression), its sequence, and whether
 * it is generated (never written). */
struct colinfo {
	char type[64];
	char seq[512];
	bool has_default, generated, not_null;
};

static ef_status column_info(struct ef_life *l, const char *table_var, const char *column,
			     struct colinfo *ci, struct ef_error *err)
{
	const char *p[2] = { ef_sqlvars_get(&l->v, table_var), column };
	PGresult *r = ef_db_query(l->db, "SELECT format_type(a.atttypid, a.atttypmod),"
					 " a.atthasdef OR a.attidentity <> '',"
					 " coalesce(pg_get_serial_sequence($1, $2), ''),"
					 " a.attgenerated <> '', a.attnotnull"
					 " FROM pg_attribute a WHERE a.attrelid = $1::regclass"
					 " AND a.attname = $2", 2, p, PGRES_TUPLES_OK, err);

	memset(ci, 0, sizeof(*ci));
	if (!r)
		return err->status;
	if (PQntuples(r) == 1) {
		snprintf(ci->type, sizeof(ci->type), "%s", PQgetvalue(r, 0, 0));
		ci->has_default = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
		snprintf(ci->seq, sizeof(ci->seq), "%s", PQgetvalue(r, 0, 2));
		ci->generated = strcmp(PQgetvalue(r, 0, 3), "t") == 0;
		ci->not_null = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
	}
	PQclear(r);
	return EF_OK;
}

static bool is_uuid(const char *t)
{
	return strcmp(t, "uuid") == 0;
}

static bool is_texty(const char *t)
{
	return strcmp(t, "text") == 0 || strncmp(t, "character", 9) == 0;
}

/* Rows inserted with ids of their own leave a serial's sequence behind the
 * largest id, and its next value would collide: move it past them (only
 * ever forwards; sequences are not transactional, so this stays even if
 * the copy is rolled back, which costs nothing but a gap). */
static ef_status catch_up(struct ef_life *l, const char *table_var, const char *column,
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
		return err->status ? err->status : ef_life_oom(err);
	PQclear(r);
	return EF_OK;
}

/*
 * A new value for a key column of a copied row: its sequence, a fresh
 * uuid (as text for a text key), or one above the largest integer with the
 * table locked against inserts.  NULL in *expr means "leave it to the
 * column's default".  quoted is the column, table_var its table.
 */
static ef_status new_key_expr(struct ef_life *l, const char *table_var, const char *column,
			      const char *quoted, char *expr, size_t n, bool *omit,
			      struct ef_error *err)
{
	struct colinfo ci;

	*omit = false;
	if (column_info(l, table_var, column, &ci, err) != EF_OK ||
	    catch_up(l, table_var, column, ci.seq, err) != EF_OK)
		return err->status;
	if (*ci.seq) {
		*omit = true;
		return EF_OK;
	}
	if (is_uuid(ci.type)) {
		snprintf(expr, n, "gen_random_uuid()");
		return EF_OK;
	}
	if (is_texty(ci.type)) {
		snprintf(expr, n, "gen_random_uuid()::text");
		return EF_OK;
	}
	if (ci.has_default) {
		*omit = true;
		return EF_OK;
	}
	if (ef_life_x(l, "LOCK TABLE {chunks} IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
		      err) != EF_OK)
		return err->status;
	if (strcmp(table_var, "documents") == 0 &&
	    ef_life_x(l, "LOCK TABLE {documents} IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
		      err) != EF_OK)
		return err->status;
	snprintf(expr, n, "(SELECT coalesce(max(z.%s), 0) FROM {%s} z) + row_number() OVER ()",
		 quoted, table_var);
	return EF_OK;
}

/* The documents of a collection: by their collection column, or, without
 * one, those its chunks point at. */
static const char *doc_selection(const struct ef_mapping *m)
{
	return m->doc_collection ? "d.{doc_coll} = $1"
				 : "d.{doc_id} IN (SELECT c.{cdoc} FROM {chunks} c WHERE c.{ccoll} = $1)";
}

/* New keys for the documents of `from`, in a temporary map old -> new of
 * the key column's own type. */
static ef_status map_documents(struct ef_life *l, const char *from_val, long long *n,
			       struct ef_error *err)
{
	const struct ef_mapping *m = &l->cfg->map;
	char expr[512], sql[1024];
	const char *p[1] = { from_val };
	bool omit;
	PGresult *r;

	if (new_key_expr(l, "documents", m->doc_id, ef_sqlvars_get(&l->v, "doc_id"), expr,
			 sizeof(expr), &omit, err) != EF_OK ||
	    ef_life_x(l, "CREATE TEMP TABLE ef_docmap ON COMMIT DROP AS SELECT d.{doc_id} AS old_id,"
		      " d.{doc_id} AS new_id FROM {documents} d WITH NO DATA", 0, NULL, NULL,
		      err) != EF_OK)
		return err->status;
	if (omit) {
		struct colinfo ci;

		/* a sequence gives the new keys; a default that is no sequence
		 * is evaluated by an insert, so the documents go in with it */
		if (column_info(l, "documents", m->doc_id, &ci, err) != EF_OK)
			return err->status;
		if (!*ci.seq) {
			ef_error_set(err, EF_ERR_USAGE, "the documents' key %s.%s has a default "
				     "embfill cannot call for a copy", m->documents, m->doc_id);
			return ef_error_hint(err, "give the column a sequence (serial, identity) or "
						  "make it uuid or text");
		}
		r = ef_db_query(l->db, "SELECT quote_literal($1)", 1, (const char *[]){ ci.seq },
				PGRES_TUPLES_OK, err);
		if (!r)
			return err->status;
		snprintf(expr, sizeof(expr), "nextval(%s::regclass)", PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	snprintf(sql, sizeof(sql), "INSERT INTO ef_docmap SELECT d.{doc_id}, %s FROM {documents} d"
		 " WHERE %s ORDER BY d.{doc_id}", expr, doc_selection(m));
	if (ef_life_x(l, sql, 1, p, n, err) != EF_OK)
		return err->status;
	r = ef_life_q(l, "ANALYZE ef_docmap", 0, NULL, PGRES_COMMAND_OK, err);
	PQclear(r);
	return r ? EF_OK : err->status;
}

/* A table's writable columns, quoted, in order. */
static PGresult *columns_of(struct ef_life *l, const char *table_var, struct ef_error *err)
{
	const char *p[1] = { ef_sqlvars_get(&l->v, table_var) };

	return ef_db_query(l->db, "SELECT quote_ident(attname), attname FROM pg_attribute"
				  " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
				  " AND attgenerated = '' ORDER BY attnum", 1, p, PGRES_TUPLES_OK,
			   err);
}

/* Every column of the documents, the key from the map and the collection
 * the new one's: the copy keeps what the application stored beside them. */
static ef_status copy_documents(struct ef_life *l, const char *into_val, long long *n,
				struct ef_error *err)
{
	const struct ef_mapping *m = &l->cfg->map;
	struct ef_strbuf cols = EF_STRBUF_INIT, vals = EF_STRBUF_INIT, sql = EF_STRBUF_INIT;
	const char *p[1] = { into_val };
	PGresult *r = columns_of(l, "documents", err);
	ef_status st;

	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 1), *q = PQgetvalue(r, i, 0);

		ef_strbuf_addf(&cols, "%s%s", i ? ", " : "", q);
		if (strcmp(name, m->doc_id) == 0)
			ef_strbuf_addf(&vals, "%sm.new_id", i ? ", " : "");
		else if (m->doc_collection && strcmp(name, m->doc_collection) == 0)
			ef_strbuf_addf(&vals, "%s$1", i ? ", " : "");
		else
			ef_strbuf_addf(&vals, "%sd.%s", i ? ", " : "", q);
	}
	PQclear(r);
	ef_strbuf_addf(&sql, "INSERT INTO {documents} (%s) OVERRIDING SYSTEM VALUE SELECT %s"
		       " FROM ef_docmap m JOIN {documents} d ON d.{doc_id} = m.old_id"
		       " ORDER BY m.old_id", ef_strbuf_str(&cols), ef_strbuf_str(&vals));
	st = cols.oom || vals.oom || sql.oom ? ef_life_oom(err)
					     : ef_life_x(l, ef_strbuf_str(&sql), 1, p, n, err);
	ef_strbuf_free(&cols);
	ef_strbuf_free(&vals);
	ef_strbuf_free(&sql);
	return st;
}

/* Whether column is one embfill writes (the vector and its records, in the
 * inline layout): a copy leaves them to be embedded anew. */
static bool embfill_column(const struct ef_mapping *m, const char *name)
{
	const char *own[] = { m->emb_vector, m->emb_model, m->emb_hash, m->emb_dim, m->emb_at,
			      m->emb_run };

	if (m->layout != EF_LAYOUT_INLINE)
		return false;
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (own[i] && strcmp(own[i], name) == 0)
			return true;
	return false;
}

static int key_index(const struct ef_mapping *m, const char *name)
{
	for (int i = 0; i < m->nkey; i++)
		if (strcmp(m->chunk_key[i], name) == 0)
			return i;
	return -1;
}

/*
 * The value of a key column in a copied or re-chunked row: with the
 * document column in the key, the document's new key already makes the
 * row's key new, so the other column keeps its value (as_is, or the
 * chunk's position when re-chunking); else a new key of the column's type.
 * *omit: the column's default makes it.
 */
static ef_status key_value(struct ef_life *l, int k, const char *as_is, struct ef_strbuf *val,
			   bool *omit, struct ef_error *err)
{
	const struct ef_mapping *m = &l->cfg->map;
	char expr[512], var[16];
	bool doc_in_key = m->chunk_document && key_index(m, m->chunk_document) >= 0;

	*omit = false;
	if (doc_in_key) {
		ef_strbuf_add(val, as_is);
		return EF_OK;
	}
	snprintf(var, sizeof(var), "ck%d", k + 1);
	if (new_key_expr(l, "chunks", m->chunk_key[k], ef_sqlvars_get(&l->v, var), expr,
			 sizeof(expr), omit, err) != EF_OK)
		return err->status;
	if (!*omit)
		ef_strbuf_add(val, expr);
	return EF_OK;
}

/* The column list and values of a chunk row copied from c (alias c, the
 * document map m when documents are copied). */
static ef_status copy_exprs(struct ef_life *l, const char *into_param, struct ef_strbuf *cols,
			    struct ef_strbuf *vals, struct ef_error *err)
{
	const struct ef_mapping *m = &l->cfg->map;
	PGresult *r = columns_of(l, "chunks", err);
	ef_status st = EF_OK;

	if (!r)
		return err->status;
	for (int i = 0; st == EF_OK && i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 1), *q = PQgetvalue(r, i, 0);
		struct ef_strbuf v = EF_STRBUF_INIT;
		char as_is[160];
		int k = key_index(m, name);
		bool omit = false;

		snprintf(as_is, sizeof(as_is), "c.%s", q);
		if (embfill_column(m, name))
			omit = true;
		else if (m->chunk_document && strcmp(name, m->chunk_document) == 0)
			ef_strbuf_add(&v, l->sc.documents_ok ? "m.new_id" : as_is);
		else if (k >= 0)
			st = key_value(l, k, as_is, &v, &omit, err);
		else if (m->chunk_collection && strcmp(name, m->chunk_collection) == 0)
			ef_strbuf_add(&v, into_param);
		else
			ef_strbuf_add(&v, as_is);
		if (st == EF_OK && !omit) {
			ef_strbuf_addf(cols, "%s%s", cols->len ? ", " : "", q);
			ef_strbuf_addf(vals, "%s%s", vals->len ? ", " : "", ef_strbuf_str(&v));
		}
		ef_strbuf_free(&v);
	}
	PQclear(r);
	return st;
}

/* The chunks of `from` into `into`, every column but the ones embfill
 * writes, in key order. */
static ef_status copy_chunks(struct ef_life *l, const char *from_val, const char *into_val,
			     long long *n, struct ef_error *err)
{
	struct ef_strbuf cols = EF_STRBUF_INIT, vals = EF_STRBUF_INIT, sql = EF_STRBUF_INIT;
	const char *p[2] = { from_val, into_val };
	ef_status st = copy_exprs(l, "$2", &cols, &vals, err);

	if (st == EF_OK) {
		ef_strbuf_addf(&sql, "INSERT INTO {chunks} (%s) OVERRIDING SYSTEM VALUE SELECT %s"
			       " FROM (SELECT * FROM {chunks} c WHERE c.{ccoll} = $1 ORDER BY {ckey}) c"
			       "%s", ef_strbuf_str(&cols), ef_strbuf_str(&vals),
			       l->sc.documents_ok ? " JOIN ef_docmap m ON m.old_id = c.{cdoc}" : "");
		st = cols.oom || vals.oom || sql.oom ? ef_life_oom(err)
						     : ef_life_x(l, ef_strbuf_str(&sql), 2, p, n, err);
	}
	ef_strbuf_free(&cols);
	ef_strbuf_free(&vals);
	ef_strbuf_free(&sql);
	return st;
}

/* The position column, unless the key holds it already (key_value gives
 * the key's other column the position). */
static bool index_col(const struct ef_mapping *m)
{
	return m->chunk_index && key_index(m, m->chunk_index) < 0;
}

/* The new chunk rows of a re-chunking: key, document, collection, position
 * and text; the table's defaults give the rest. */
static ef_status rechunk_frags(struct ef_life *l, struct ef_error *err)
{
	const struct ef_mapping *m = &l->cfg->map;
	struct ef_strbuf cols = EF_STRBUF_INIT, vals = EF_STRBUF_INIT;
	ef_status st = EF_OK;

	for (int k = 0; st == EF_OK && k < m->nkey; k++) {
		struct ef_strbuf v = EF_STRBUF_INIT;
		char var[16];
		bool omit = false;

		if (m->chunk_document && strcmp(m->chunk_key[k], m->chunk_document) == 0) {
			ef_strbuf_free(&v);
			continue;
		}
		snprintf(var, sizeof(var), "ck%d", k + 1);
		st = key_value(l, k, "u.i", &v, &omit, err);
		if (st == EF_OK && !omit) {
			ef_strbuf_addf(&cols, "%s%s, ", "", ef_sqlvars_get(&l->v, var));
			ef_strbuf_addf(&vals, "%s, ", ef_strbuf_str(&v));
		}
		ef_strbuf_free(&v);
	}
	if (st == EF_OK && (cols.oom || vals.oom || !ef_sqlvars_raw(&l->v, "newcid_col",
								      ef_strbuf_str(&cols)) ||
			    !ef_sqlvars_raw(&l->v, "newcid_val", ef_strbuf_str(&vals)) ||
			    !ef_sqlvars_frag(&l->v, "idx_col", index_col(m) ? ", {cidx}" : "") ||
			    !ef_sqlvars_frag(&l->v, "idx_val", index_col(m) ? ", u.i" : "")))
		st = ef_life_oom(err);
	ef_strbuf_free(&cols);
	ef_strbuf_free(&vals);
	return st;
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

static ef_status flush_chunks(struct ef_life *l, struct pending *pc, const char *into_val,
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
		return ef_life_oom(err);
	p[0] = into_val;
	p[1] = pc->docs.buf;
	p[2] = pc->idx.buf;
	p[3] = pc->text.buf;
	if (ef_life_x(l, "INSERT INTO {chunks} ({newcid_col}{cdoc}, {ccoll}{idx_col}, {content})"
		 " SELECT {newcid_val}CAST(u.d AS {doc_type}), $1{idx_val}, u.t"
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
static ef_status rechunk(struct ef_life *l, const char *into_val, long long *written,
			 struct ef_error *err)
{
	const char *cdoc[2] = { l->cfg->map.chunk_document, ef_sqlvars_get(&l->v, "chunks") };
	struct pending pc = { EF_STRBUF_INIT, EF_STRBUF_INIT, EF_STRBUF_INIT, 0 };
	PGresult *r;
	ef_status st = EF_OK;
	int rows;

	if (rechunk_frags(l, err) != EF_OK)
		return err->status;
	/* the chunk table's own type for the document key, as the server
	 * spells it, so that the text array casts to exactly that */
	r = ef_life_q(l, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
		 " $2::regclass AND attname = $1", 2, cdoc, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	if (PQntuples(r) != 1 || !ef_sqlvars_raw(&l->v, "doc_type", PQgetvalue(r, 0, 0))) {
		PQclear(r);
		return ef_error_set(err, EF_ERR_DB, "cannot read the type of %s.%s",
				    l->cfg->map.chunks, l->cfg->map.chunk_document);
	}
	PQclear(r);
	if (ef_life_x(l, "DECLARE ef_bodies NO SCROLL CURSOR FOR SELECT m.new_id::text, d.{body}"
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

static ef_status record_copy(struct ef_life *l, const char *from, const char *into,
			     struct ef_copy_result *res, struct ef_error *err)
{
	char size[16], overlap[16];
	const char *p[4] = { into, size, overlap, from };
	PGresult *r;

	if (!res->rechunked) {
		const char *pf[1] = { from };
		r = ef_life_q(l, "SELECT max_chunk_size, chunk_overlap FROM {tool}.collections WHERE name = $1"
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
	return ef_life_x(l, "INSERT INTO {tool}.collections (name, max_chunk_size, chunk_overlap,"
		    " chunked_from) VALUES ($1, $2::int, $3::int, $4) ON CONFLICT (name) DO UPDATE"
		    " SET model = NULL, dim = NULL, provider = NULL, service_host = NULL,"
		    " max_chunk_size = EXCLUDED.max_chunk_size, chunk_overlap ="
		    " EXCLUDED.chunk_overlap, chunked_from = EXCLUDED.chunked_from,"
		    " embeddings_table = NULL, updated_at = now()", 4, p, NULL, err);
}

static ef_status copy_checks(struct ef_life *l, const char *from, const char *into,
			     const char *from_val, const char *into_val, bool rechunk_,
			     struct ef_error *err)
{
	long long docs, chunks;

	if (!from_val)
		return ef_life_lookup_missing(l, from, err);
	if (ef_life_holds(l, from_val, &docs, &chunks, err) != EF_OK)
		return err->status;
	if (chunks == 0 && docs == 0)
		return ef_scan_unknown(l->s, from, err);
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
	/* a name the lookup table does not have yet holds nothing */
	docs = chunks = 0;
	if (into_val && ef_life_holds(l, into_val, &docs, &chunks, err) != EF_OK)
		return err->status;
	if (chunks || docs) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" already holds %lld documents and "
			     "%lld chunks; nothing was written", into, docs, chunks);
		return ef_error_hint(err, "choose a name no collection uses (`embfill status` "
					  "lists them)");
	}
	return EF_OK;
}

ef_status ef_coll_copy(ef_session *s, const char *from, const char *into,
		       bool rechunk_, struct ef_copy_result *res, struct ef_error *err)
{
	struct ef_life l;
	char *from_val = NULL, *into_val = NULL;
	double t0 = ef_life_now();
	ef_status st;

	memset(res, 0, sizeof(*res));
	if (ef_collection_name_check(into, err) != EF_OK)
		return err->status;
	if (strcmp(from, into) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "--into names the collection itself (\"%s\")", from);
		return ef_error_hint(err, "give the new collection a name of its own, e.g. %s_v2",
				     from);
	}
	if (ef_life_one_table(ef_session_config(s), "a new collection", err) != EF_OK)
		return err->status;
	res->rechunked = rechunk_;
	if (rechunk_) {
		res->max_chunk_size = ef_session_config(s)->max_chunk_size;
		res->chunk_overlap = ef_session_config(s)->chunk_overlap;
	}
	st = ef_life_open(&l, s, NULL, err);
	if (st == EF_OK)
		st = ef_life_begin(&l, err);
	if (st == EF_OK)
		st = ef_life_lock(&l, from, err);
	if (st == EF_OK)
		st = ef_life_lock(&l, into, err);
	if (st == EF_OK)
		st = ef_life_value(&l, from, &from_val, err);
	if (st == EF_OK)
		st = ef_life_value(&l, into, &into_val, err);
	if (st == EF_OK)
		st = copy_checks(&l, from, into, from_val, into_val, rechunk_, err);
	if (st == EF_OK && !into_val)
		st = ef_life_add_lookup(&l, into, &into_val, err);
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
		st = ef_life_holds(&l, from_val, &d, &c, err);
		res->left_out = c - res->chunks;
	}
	if (st == EF_OK)
		st = record_copy(&l, from, into, res, err);
	if (st == EF_OK)
		st = ef_life_commit(&l, true, err);
	res->elapsed_s = ef_life_now() - t0;
	free(from_val);
	free(into_val);
	ef_life_close(&l);
	return st;
}

ef_status ef_coll_into_state(ef_session *s, const char *from, const char *into,
			     int *has_chunks, struct ef_error *err)
{
	struct ef_life l;
	char *into_val = NULL;
	long long docs = 0, chunks = 0;
	const char *p[1] = { into };
	PGresult *r = NULL;
	ef_status st;

	*has_chunks = 0;
	if (ef_collection_name_check(into, err) != EF_OK ||
	    ef_life_one_table(ef_session_config(s), "a new collection", err) != EF_OK)
		return err->status;
	if (strcmp(from, into) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "--into names the collection itself (\"%s\")", from);
		return ef_error_hint(err, "give the new collection a name of its own, e.g. %s_v2",
				     from);
	}
	st = ef_life_open(&l, s, NULL, err);
	if (st == EF_OK)
		st = ef_life_value(&l, into, &into_val, err);
	if (st == EF_OK && into_val)
		st = ef_life_holds(&l, into_val, &docs, &chunks, err);
	if (st == EF_OK && chunks)
		r = ef_life_q(&l, "SELECT chunked_from FROM {tool}.collections WHERE name = $1", 1, p,
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
	ef_life_close(&l);
	return st;
}


static void note(ef_life_note_fn fn, void *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note(ef_life_note_fn fn, void *ctx, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fn(ctx, text);
}

ef_status ef_coll_prepare_into(ef_session *s, const char *from, const char *into, bool rechunk_,
			       bool dry_run, ef_life_note_fn fn, void *ctx,
			       struct ef_into_result *r, struct ef_error *err)
{
	char *table = NULL;
	int has = 0;

	memset(r, 0, sizeof(*r));
	if (ef_coll_into_state(s, from, into, &has, err) != EF_OK)
		return err->status;
	r->made_before = has != 0;
	if (has) {
		note(fn, ctx, "\"%s\" holds chunks made from \"%s\" already: embedding them", into,
		     from);
	} else if (dry_run) {
		r->would_copy = true;
		return EF_OK;
	} else {
		note(fn, ctx, "%s the documents of \"%s\" into \"%s\"", rechunk_ ? "re-chunking"
		     : "copying", from, into);
		if (ef_coll_copy(s, from, into, rechunk_, &r->copy, err) != EF_OK)
			return err->status;
		r->copied = true;
		note(fn, ctx, "%s %lld documents into %lld chunks of \"%s\" in %.1f s", rechunk_ ?
		     "re-chunked" : "copied", r->copy.documents, r->copy.chunks, into,
		     r->copy.elapsed_s);
	}
	if (dry_run)
		return EF_OK;
	if (ef_coll_prepare_dim(s, into, &table, err) != EF_OK)
		return err->status;
	if (table)
		snprintf(r->own_table, sizeof(r->own_table), "%s", table);
	free(table);
	return EF_OK;
}
