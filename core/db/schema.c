/*
 * schema.c - discovery of the collection's tables through the mapping.
 *
 * Discovery asks the catalog, not the data, wherever it can: the vector's
 * dimension from vector(N)'s type modifier or a real[] CHECK constraint, the
 * scan path from pg_index, isolation from pg_constraint.  Only a real[]
 * column without a CHECK is sampled, and only a bounded number of rows, so
 * that `schema check` stays instant on a large table.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "core/db/schema_int.h"
#include "embfill/schema.h"

bool ef_schema_usable(const struct ef_schema *sc)
{
	return sc->chunks_ok && sc->embeddings_ok;
}

void ef_relinfo_free(struct ef_relinfo *r)
{
	for (int i = 0; i < r->ncols; i++) {
		free(r->cols[i].name);
		free(r->cols[i].type);
	}
	free(r->cols);
	free(r->quoted);
	memset(r, 0, sizeof(*r));
}

const struct ef_colinfo *ef_relinfo_col(const struct ef_relinfo *r, const char *name)
{
	for (int i = 0; name && i < r->ncols; i++)
		if (strcmp(r->cols[i].name, name) == 0)
			return &r->cols[i];
	return NULL;
}

static ef_status load_columns(ef_db *db, struct ef_relinfo *r, struct ef_error *err)
{
	static const char sql[] =
		"SELECT attname, format_type(atttypid, NULL), atttypmod, attnum, atttypid"
		"  FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0"
		"   AND NOT attisdropped ORDER BY attnum";
	const char *p[1] = { r->oid };
	PGresult *res = ef_db_query(db, sql, 1, p, PGRES_TUPLES_OK, err);

	if (!res)
		return err->status;
	r->ncols = PQntuples(res);
	r->cols = calloc((size_t)r->ncols + 1, sizeof(*r->cols));
	for (int i = 0; r->cols && i < r->ncols; i++) {
		r->cols[i].name = strdup(PQgetvalue(res, i, 0));
		r->cols[i].type = strdup(PQgetvalue(res, i, 1));
		r->cols[i].typmod = (int)ef_db_ll(res, i, 2);
		r->cols[i].attnum = (int)ef_db_ll(res, i, 3);
		r->cols[i].typoid = (unsigned)ef_db_ll(res, i, 4);
		if (!r->cols[i].name || !r->cols[i].type)
			r->cols = NULL;
	}
	PQclear(res);
	if (!r->cols)
		return ef_error_oom(err, NULL);
	return EF_OK;
}

/* Resolves a (possibly qualified) table name the way the server would,
 * through search_path; r->exists is false when there is no such table. */
ef_status ef_relinfo_load(ef_db *db, const char *name, struct ef_relinfo *r,
			  struct ef_error *err)
{
	static const char sql[] = "SELECT to_regclass($1)::oid";
	const char *p[1];
	PGresult *res;

	memset(r, 0, sizeof(*r));
	r->quoted = ef_db_quote_ident(db, name, err);
	if (!r->quoted)
		return err->status;
	p[0] = r->quoted;
	res = ef_db_query(db, sql, 1, p, PGRES_TUPLES_OK, err);
	if (!res)
		return err->status;
	r->exists = !PQgetisnull(res, 0, 0);
	snprintf(r->oid, sizeof(r->oid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return r->exists ? load_columns(db, r, err) : EF_OK;
}

/* --- CHECK constraint parsing ----------------------------------------- */

static const char *after_ws(const char *p)
{
	while (*p == ' ' || *p == '(')
		p++;
	return p;
}

static int number_after_eq(const char *p)
{
	long n;

	while (*p == ' ' || *p == ')')
		p++;
	if (*p != '=')
		return 0;
	p = after_ws(p + 1);
	if (!isdigit((unsigned char)*p))
		return 0;
	n = strtol(p, NULL, 10);
	return n > 0 && n <= 100000 ? (int)n : 0;
}

/* True when the text just before p (skipping blanks and parentheses) ends
 * with NOT: a negated length fixes nothing. */
static bool negated(const char *def, const char *p)
{
	while (p > def && (p[-1] == ' ' || p[-1] == '('))
		p--;
	return p - def >= 3 && strncasecmp(p - 3, "NOT", 3) == 0 &&
	       (p - def == 3 || !isalnum((unsigned char)p[-4]));
}

/* The length one match at p imposes, or 0. */
static int match_at(const char *def, const char *p, const char *col, size_t ql)
{
	static const char *const fns[] = { "array_length(", "cardinality(" };

	if (p > def && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
		return 0;
	for (size_t f = 0; f < 2; f++) {
		size_t fl = strlen(fns[f]);
		const char *q = p + fl;

		if (strncmp(p, fns[f], fl) != 0 || strncmp(q, col, ql) != 0)
			continue;
		q += ql;
		if (f == 0 && strncmp(q, ", 1)", 4) == 0)
			return number_after_eq(q + 4);
		if (f == 1 && *q == ')')
			return number_after_eq(q + 1);
	}
	return 0;
}

int ef_schema_parse_dim_check(const char *def, const char *quoted_column)
{
	size_t ql;
	int found = 0;

	if (!def || !quoted_column || !*quoted_column)
		return 0;
	ql = strlen(quoted_column);
	for (const char *p = def; *p; p++) {
		int n = match_at(def, p, quoted_column, ql);

		if (!n)
			continue;
		if (negated(def, p) || (found && found != n))
			return 0;
		found = n;
	}
	return found;
}

/* --- discovery ----------------------------------------------------------- */

const char *ef_vec_type_name(enum ef_vec_type t)
{
	switch (t) {
	case EF_VEC_PGVECTOR:
		return "vector";
	case EF_VEC_HALFVEC:
		return "halfvec";
	case EF_VEC_REAL_ARRAY:
		return "real[]";
	case EF_VEC_DOUBLE_ARRAY:
		return "double precision[]";
	default:
		return "?";
	}
}

/* Types whose order a keyset can walk and whose text form names one value. */
static bool key_type_ok(const char *t)
{
	static const char *const ok[] = { "bigint", "integer", "smallint", "text", "uuid",
					  "character varying", "character", "name" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(t, ok[i]) == 0)
			return true;
	return false;
}

static bool is_json(const struct ef_colinfo *c)
{
	return strcmp(c->type, "json") == 0 || strcmp(c->type, "jsonb") == 0;
}

/* A mapped column must exist; what is wrong is a failure naming the key
 * that fixes it, and discovery goes on so that every problem is listed. */
static bool need_col(struct ef_checklist *l, const struct ef_relinfo *r, const char *table,
		     const char *col, const char *key)
{
	char hint[512];

	if (!col) {
		snprintf(hint, sizeof(hint), "set %s to the column's name", key);
		ef_check_add(l, EF_CHECK_FAIL, "mapping", hint, "%s is empty, but this layout "
			     "needs it (a column of %s)", key, table);
		return false;
	}
	if (ef_relinfo_col(r, col))
		return true;
	snprintf(hint, sizeof(hint), "set %s to the name of a column %s has; `embfill schema "
		 "detect` proposes a whole mapping", key, table);
	ef_check_add(l, EF_CHECK_FAIL, "column", hint, "%s has no column \"%s\" (%s)", table, col,
		     key);
	return false;
}

/* An optional column: fine when not mapped, checked when it is. */
static bool opt_col(struct ef_checklist *l, const struct ef_relinfo *r, const char *table,
		    const char *col, const char *key)
{
	return !col || need_col(l, r, table, col, key);
}

static bool table_found(struct ef_checklist *l, const struct ef_relinfo *r, const char *what,
			const char *name, const char *key)
{
	char hint[512];

	if (r->exists) {
		ef_check_add(l, EF_CHECK_PASS, what, "", "%s found", r->quoted);
		return true;
	}
	snprintf(hint, sizeof(hint), "set %s to your table's name (schema.table); `embfill "
		 "schema detect` finds the tables a framework made; `embfill schema init` "
		 "creates the default layout", key);
	ef_check_add(l, EF_CHECK_FAIL, what, hint, "table %s not found", name);
	return false;
}

static bool has_index(ef_db *db, const struct ef_relinfo *r, int first, int second,
		      bool unique, struct ef_error *err, bool *out)
{
	static const char sql[] =
		"SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1::oid"
		" AND indkey[0] = $2::int2 AND ($3::int2 = 0 OR indkey[1] = $3::int2)"
		" AND ($4::bool = false OR (indisunique AND indnkeyatts <= 2))"
		" AND indpred IS NULL AND indisvalid)";
	char a[16], b[16];
	const char *p[4] = { r->oid, a, b, unique ? "true" : "false" };
	PGresult *res;

	snprintf(a, sizeof(a), "%d", first);
	snprintf(b, sizeof(b), "%d", second);
	res = ef_db_query(db, sql, 4, p, PGRES_TUPLES_OK, err);
	if (!res)
		return false;
	*out = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return true;
}

/* The unique indexes (primary key first) of a table whose columns all lie
 * within allowed (attnums, 0-terminated): each guarantees that allowed is
 * unique.  The other unique indexes go to *others, names comma-separated,
 * as candidates for the operator. */
static ef_status unique_within(ef_db *db, const struct ef_relinfo *r, const int *allowed,
			       bool *found, char *others, size_t n, struct ef_error *err)
{
	static const char sql[] =
		"SELECT i.indkey::int2[] <@ $2::int2[],"
		" (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(i.indkey)"
		"  WITH ORDINALITY k(att, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid"
		"  AND a.attnum = k.att)"
		" FROM pg_index i WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid"
		" AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts <= 2"
		" ORDER BY i.indisprimary DESC, i.indexrelid";
	char arr[64];
	size_t len = 1, used = 0;
	const char *p[2] = { r->oid, arr };
	PGresult *res;

	arr[0] = '{';
	for (int i = 0; allowed[i]; i++)
		len += (size_t)snprintf(arr + len, sizeof(arr) - len, "%s%d", i ? "," : "",
					allowed[i]);
	snprintf(arr + len, sizeof(arr) - len, "}");
	*found = false;
	others[0] = '\0';
	if (!(res = ef_db_query(db, sql, 2, p, PGRES_TUPLES_OK, err)))
		return err->status;
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 0), "t") == 0)
			*found = true;
		else if (used + 4 < n)
			used += (size_t)snprintf(others + used, n - used, "%s\"%s\"", used ? " or " : "",
						 PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return EF_OK;
}

static ef_status nullable_key(ef_db *db, const struct ef_relinfo *r, const char *col,
			      bool *nullable, struct ef_error *err)
{
	static const char sql[] = "SELECT NOT attnotnull FROM pg_attribute WHERE attrelid = $1::oid"
				  " AND attname = $2";
	const char *p[2] = { r->oid, col };
	PGresult *res = ef_db_query(db, sql, 2, p, PGRES_TUPLES_OK, err);

	if (!res)
		return err->status;
	*nullable = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return EF_OK;
}

static ef_status key_default(ef_db *db, const struct ef_relinfo *r, const char *col, bool *out,
			     struct ef_error *err)
{
	static const char sql[] =
		"SELECT a.atthasdef OR a.attidentity <> '' FROM pg_attribute a"
		" WHERE a.attrelid = $1::oid AND a.attname = $2";
	const char *p[2] = { r->oid, col };
	PGresult *res = ef_db_query(db, sql, 2, p, PGRES_TUPLES_OK, err);

	if (!res)
		return err->status;
	*out = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return EF_OK;
}

/*
 * The chunk key: one or two columns of a type a keyset can walk, which a
 * primary key or unique index guarantees.  A key that is not unique would
 * make one vector land in several rows, so it is a failure with the fix:
 * the unique keys the table has, or the index to create.
 */
static ef_status check_key(ef_db *db, const struct ef_mapping *m, const struct ef_relinfo *ch,
			   struct ef_schema *sc, struct ef_checklist *l, struct ef_error *err)
{
	int allowed[EF_KEY_MAX + 2] = { 0 }, n = 0;
	const struct ef_colinfo *coll = m->chunk_collection ? ef_relinfo_col(ch, m->chunk_collection)
							     : NULL;
	char others[512], keyname[160];
	bool ok = true, unique = false;

	snprintf(keyname, sizeof(keyname), "%s%s%s", m->chunk_key[0], m->nkey > 1 ? "," : "",
		 m->nkey > 1 ? m->chunk_key[1] : "");
	for (int i = 0; i < m->nkey; i++) {
		const struct ef_colinfo *c = ef_relinfo_col(ch, m->chunk_key[i]);
		bool nullable = false;

		if (!c)
			return EF_OK;
		snprintf(sc->key_type[i], sizeof(sc->key_type[i]), "%s", c->type);
		allowed[n++] = c->attnum;
		if (!key_type_ok(c->type)) {
			ef_check_add(l, EF_CHECK_FAIL, "chunk key", "map CHUNKS_ID_COLUMN to a column "
				     "of type integer, bigint, text, varchar or uuid",
				     "%s.%s is %s, which a batch cannot walk in order", ch->quoted,
				     c->name, c->type);
			ok = false;
		}
		if (key_default(db, ch, c->name, &sc->key_default[i], err) != EF_OK ||
		    nullable_key(db, ch, c->name, &nullable, err) != EF_OK)
			return err->status;
		if (nullable)
			ef_check_add(l, EF_CHECK_WARN, "chunk key", "chunks whose key is NULL are "
				     "never embedded; make the column NOT NULL, or map a key that is",
				     "%s.%s may be NULL", ch->quoted, c->name);
	}
	if (coll)
		allowed[n++] = coll->attnum;
	if (unique_within(db, ch, allowed, &unique, others, sizeof(others), err) != EF_OK)
		return err->status;
	sc->key_unique = unique;
	if (unique) {
		ef_check_add(l, EF_CHECK_PASS, "chunk key", "", "(%s) is unique in %s (%s%s%s)",
			     keyname, ch->quoted, sc->key_type[0], m->nkey > 1 ? ", " : "",
			     m->nkey > 1 ? sc->key_type[1] : "");
	} else {
		char hint[1024];

		snprintf(hint, sizeof(hint), "%s%s%sor create the index: CREATE UNIQUE INDEX ON %s "
			 "(%s)", others[0] ? "map CHUNKS_ID_COLUMN to " : "", others,
			 others[0] ? " (unique already), " : "", ch->quoted, keyname);
		ef_check_add(l, EF_CHECK_FAIL, "chunk key", hint, "no primary key or unique index "
			     "guarantees CHUNKS_ID_COLUMN=%s in %s: one vector would be written into "
			     "every row that shares a key, so nothing is written", keyname,
			     ch->quoted);
		ok = false;
	}
	return ok ? EF_OK : EF_ERR_CHECK;
}

static ef_status check_scan_index(ef_db *db, const struct ef_mapping *m,
				  const struct ef_relinfo *ch, struct ef_schema *sc,
				  struct ef_checklist *l, struct ef_error *err)
{
	const struct ef_colinfo *id = ef_relinfo_col(ch, m->chunk_key[0]);
	const struct ef_colinfo *coll = m->chunk_collection ? ef_relinfo_col(ch, m->chunk_collection)
							     : NULL;

	if (!has_index(db, ch, coll ? coll->attnum : id->attnum, coll ? id->attnum : 0, false, err,
		       &sc->chunk_scan_index))
		return err->status;
	if (sc->chunk_scan_index)
		ef_check_add(l, EF_CHECK_PASS, "scan index", "", "%s has an index on (%s%s%s)",
			     ch->quoted, coll ? coll->name : "", coll ? ", " : "", id->name);
	else {
		char hint[1024];
		char *qc = coll ? ef_db_quote_part(db, coll->name, err) : NULL;
		char *qi = ef_db_quote_part(db, id->name, err);

		if ((coll && !qc) || !qi) {
			free(qc);
			free(qi);
			return err->status;
		}
		snprintf(hint, sizeof(hint), "create one (it does not block writes): CREATE INDEX "
			 "CONCURRENTLY ON %s (%s%s%s)", ch->quoted, qc ? qc : "", qc ? ", " : "", qi);
		free(qc);
		free(qi);
		ef_check_add(l, EF_CHECK_WARN, "scan index", hint, "%s has no index leading with "
			     "(%s%s%s): counts and batches of one collection read the whole table",
			     ch->quoted, coll ? coll->name : "", coll ? ", " : "", id->name);
	}
	return EF_OK;
}

/* A citation field: a column of the chunk table, or a key of a json/jsonb
 * column of it. */
static bool cite_col(struct ef_checklist *l, const struct ef_relinfo *ch,
		     const struct ef_cite_field *f, const char *key, bool *json)
{
	const struct ef_colinfo *c;

	*json = false;
	if (!f->column)
		return true;
	if (!need_col(l, ch, ch->quoted, f->column, key))
		return false;
	c = ef_relinfo_col(ch, f->column);
	*json = f->json_key != NULL;
	if (!f->json_key || is_json(c))
		return true;
	ef_check_add(l, EF_CHECK_FAIL, "citation", "write the column alone, or name a json or jsonb "
		     "column before ->", "%s names key \"%s\" of %s.%s, which is %s, not json",
		     key, f->json_key, ch->quoted, c->name, c->type);
	return false;
}

static bool mode_columns(struct ef_checklist *l, const struct ef_mapping *m,
			 const struct ef_relinfo *ch)
{
	if (m->coll_mode == EF_COLL_TABLE)
		return true;
	return need_col(l, ch, ch->quoted, m->chunk_collection, "CHUNKS_COLLECTION_COLUMN");
}

static ef_status check_chunks(ef_db *db, const struct ef_mapping *m, struct ef_relinfo *ch,
			      struct ef_schema *sc, struct ef_checklist *l, struct ef_error *err)
{
	bool ok = true, cols = true;
	ef_status st;

	if (!table_found(l, ch, "chunk table", m->chunks, "CHUNKS_TABLE"))
		return EF_OK;
	for (int i = 0; i < m->nkey; i++)
		cols &= need_col(l, ch, ch->quoted, m->chunk_key[i], "CHUNKS_ID_COLUMN");
	ok &= need_col(l, ch, ch->quoted, m->chunk_content, "CHUNKS_CONTENT_COLUMN");
	ok &= mode_columns(l, m, ch);
	if (m->documents)
		ok &= need_col(l, ch, ch->quoted, m->chunk_document, "CHUNKS_DOCUMENT_COLUMN");
	ok &= opt_col(l, ch, ch->quoted, m->chunk_index, "CHUNKS_INDEX_COLUMN");
	ok &= cite_col(l, ch, &m->cite_title, "CITATION_TITLE", &sc->cite_title_json);
	ok &= cite_col(l, ch, &m->cite_source, "CITATION_SOURCE", &sc->cite_source_json);
	if (!cols)
		return EF_OK;
	st = check_key(db, m, ch, sc, l, err);
	if (st == EF_ERR_CHECK)
		ok = false;
	else if (st != EF_OK)
		return st;
	if (ok && check_scan_index(db, m, ch, sc, l, err) != EF_OK)
		return err->status;
	sc->chunks_ok = ok;
	return EF_OK;
}

static void describe_vector(struct ef_schema *sc, struct ef_checklist *l, const char *where)
{
	const char *t = ef_vec_type_name(sc->vec_type);

	if (sc->dim > 0)
		ef_check_add(l, sc->mixed_dims ? EF_CHECK_WARN : EF_CHECK_PASS, "vector column",
			     sc->mixed_dims ? "vectors of several dimensions are stored; "
					      "`embfill status` counts them as stale by dimension" : "",
			     "%s is %s, dimension %d (from the %s)", where, t, sc->dim,
			     sc->dim_source);
	else
		ef_check_add(l, EF_CHECK_PASS, "vector column", "", "%s is %s without a fixed "
			     "dimension and holds no vectors yet: EMBED_DIM decides", where, t);
}

/* Reads the dimension off a sample of stored vectors: bounded, so that a
 * column without a declared dimension costs milliseconds, not a table scan. */
static ef_status sample_dims(ef_db *db, const struct ef_relinfo *r, const char *col,
			     const char *fn, struct ef_schema *sc, struct ef_error *err)
{
	char *sql = NULL, *qc = ef_db_quote_part(db, col, err);
	PGresult *res;

	if (!qc)
		return err->status;
	if (asprintf(&sql, "SELECT min(n), max(n) FROM (SELECT %s(%s) AS n FROM %s"
			   " WHERE %s IS NOT NULL LIMIT 1000) s", fn, qc, r->quoted, qc) < 0)
		sql = NULL;
	free(qc);
	if (!sql)
		return ef_error_oom(err, NULL);
	res = ef_db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, err);
	free(sql);
	if (!res)
		return err->status;
	sc->dim = (int)ef_db_ll(res, 0, 1);
	sc->mixed_dims = ef_db_ll(res, 0, 0) != ef_db_ll(res, 0, 1);
	snprintf(sc->dim_source, sizeof(sc->dim_source), "sample of the data");
	PQclear(res);
	return EF_OK;
}

static ef_status array_dim(ef_db *db, const struct ef_relinfo *r, const char *col,
			   struct ef_schema *sc, struct ef_error *err)
{
	static const char cons[] =
		"SELECT pg_get_constraintdef(oid), quote_ident($2) FROM pg_constraint"
		" WHERE conrelid = $1::oid AND contype = 'c' AND convalidated";
	const char *p[2] = { r->oid, col };
	PGresult *res = ef_db_query(db, cons, 2, p, PGRES_TUPLES_OK, err);

	if (!res)
		return err->status;
	for (int i = 0; i < PQntuples(res) && !sc->dim; i++)
		sc->dim = ef_schema_parse_dim_check(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	if (!sc->dim)
		return sample_dims(db, r, col, "cardinality", sc, err);
	snprintf(sc->dim_source, sizeof(sc->dim_source), "CHECK constraint");
	return EF_OK;
}

static enum ef_vec_type vec_type_of(const char *type)
{
	const char *dot = strrchr(type, '.'), *t = dot ? dot + 1 : type;

	if (strcmp(t, "vector") == 0)
		return EF_VEC_PGVECTOR;
	if (strcmp(t, "halfvec") == 0)
		return EF_VEC_HALFVEC;
	if (strcmp(type, "real[]") == 0)
		return EF_VEC_REAL_ARRAY;
	if (strcmp(type, "double precision[]") == 0)
		return EF_VEC_DOUBLE_ARRAY;
	return EF_VEC_UNKNOWN;
}

static ef_status vector_column(ef_db *db, const struct ef_relinfo *r, const char *col,
			       struct ef_schema *sc, struct ef_checklist *l, struct ef_error *err)
{
	const struct ef_colinfo *c = ef_relinfo_col(r, col);
	char where[300];

	snprintf(where, sizeof(where), "%s.%s", r->quoted, col);
	sc->vec_typoid = c->typoid;
	sc->vec_type = vec_type_of(c->type);
	switch (sc->vec_type) {
	case EF_VEC_PGVECTOR:
	case EF_VEC_HALFVEC:
		sc->dim = c->typmod > 0 ? c->typmod : 0;
		snprintf(sc->dim_source, sizeof(sc->dim_source), "type modifier");
		if (!sc->dim && sample_dims(db, r, col, "vector_dims", sc, err) != EF_OK)
			return err->status;
		break;
	case EF_VEC_REAL_ARRAY:
	case EF_VEC_DOUBLE_ARRAY:
		if (array_dim(db, r, col, sc, err) != EF_OK)
			return err->status;
		break;
	default:
		ef_check_add(l, EF_CHECK_FAIL, "vector column", "map EMBEDDINGS_VECTOR_COLUMN to a "
			     "column of pgvector's vector or halfvec, or real[] or double precision[]",
			     "%s is %s", where, c->type);
		return EF_OK;
	}
	describe_vector(sc, l, where);
	return EF_OK;
}

static bool hash_column(const struct ef_relinfo *r, const char *col, struct ef_schema *sc,
			struct ef_checklist *l)
{
	const struct ef_colinfo *c = ef_relinfo_col(r, col);

	if (strcmp(c->type, "bytea") == 0)
		return true;
	if (strcmp(c->type, "text") == 0 || strncmp(c->type, "character", 9) == 0) {
		sc->hash_is_text = true;
		return true;
	}
	ef_check_add(l, EF_CHECK_FAIL, "content hash", "map EMBEDDINGS_HASH_COLUMN to a bytea "
		     "(32 bytes) or text (64 hex digits) column, or leave it empty to keep the hash "
		     "in embfill's bookkeeping", "%s.%s is %s", r->quoted, col, c->type);
	return false;
}

static bool emb_columns(const struct ef_mapping *m, const struct ef_relinfo *r,
			struct ef_checklist *l, bool separate)
{
	bool ok = true;

	if (separate) {
		for (int i = 0; i < m->nkey; i++)
			ok &= need_col(l, r, r->quoted, m->emb_key[i], "EMBEDDINGS_CHUNK_COLUMN");
		if (m->coll_mode != EF_COLL_TABLE)
			ok &= need_col(l, r, r->quoted, m->emb_collection,
				       "EMBEDDINGS_COLLECTION_COLUMN");
	}
	ok &= need_col(l, r, r->quoted, m->emb_vector, "EMBEDDINGS_VECTOR_COLUMN");
	ok &= opt_col(l, r, r->quoted, m->emb_model, "EMBEDDINGS_MODEL_COLUMN");
	ok &= opt_col(l, r, r->quoted, m->emb_hash, "EMBEDDINGS_HASH_COLUMN");
	ok &= opt_col(l, r, r->quoted, m->emb_dim, "EMBEDDINGS_DIM_COLUMN");
	ok &= opt_col(l, r, r->quoted, m->emb_at, "EMBEDDINGS_AT_COLUMN");
	ok &= opt_col(l, r, r->quoted, m->emb_run, "EMBEDDINGS_RUN_COLUMN");
	/* the recipe column, new in this release, is looked for at its default
	 * name: a table made before keeps the recipe in the bookkeeping */
	if (!(m->emb_recipe_default && m->emb_recipe && !ef_relinfo_col(r, m->emb_recipe)))
		ok &= opt_col(l, r, r->quoted, m->emb_recipe, "EMBEDDINGS_RECIPE_COLUMN");
	return ok;
}

static ef_status isolation(ef_db *db, const struct ef_relinfo *e, const struct ef_relinfo *ch,
			   const struct ef_mapping *m, struct ef_schema *sc,
			   struct ef_checklist *l, struct ef_error *err)
{
	static const char sql[] =
		"SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::oid"
		" AND contype = 'f' AND confrelid = $2::oid AND cardinality(conkey) = $5::int"
		" AND conkey @> ARRAY[$3::int2, $4::int2])";
	char a[16], b[16], n[16];
	const char *p[5] = { e->oid, ch->oid, a, b, n };
	PGresult *res;

	if (!m->emb_collection) {
		sc->isolation_fk = true;
		return EF_OK;
	}
	snprintf(a, sizeof(a), "%d", ef_relinfo_col(e, m->emb_key[0])->attnum);
	snprintf(b, sizeof(b), "%d", ef_relinfo_col(e, m->emb_collection)->attnum);
	snprintf(n, sizeof(n), "%d", m->nkey + 1);
	res = ef_db_query(db, sql, 5, p, PGRES_TUPLES_OK, err);
	if (!res)
		return err->status;
	sc->isolation_fk = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	{
		char keys[160];

		snprintf(keys, sizeof(keys), "%s%s%s", m->emb_key[0], m->nkey > 1 ? ", " : "",
			 m->nkey > 1 ? m->emb_key[1] : "");
		if (sc->isolation_fk)
			ef_check_add(l, EF_CHECK_PASS, "tenant isolation", "",
				     "foreign key (%s, %s) -> %s: cross-tenant rows are impossible",
				     keys, m->emb_collection, ch->quoted);
		else
			ef_check_add(l, EF_CHECK_WARN, "tenant isolation",
				     "add FOREIGN KEY (chunk, collection) REFERENCES chunks (id, "
				     "collection) so the database refuses them; embfill counts them "
				     "meanwhile", "no composite foreign key (%s, %s) -> %s: "
				     "cross-tenant rows are possible", keys, m->emb_collection,
				     ch->quoted);
	}
	return EF_OK;
}

static ef_status check_emb_indexes(ef_db *db, const struct ef_relinfo *e,
				   const struct ef_mapping *m, struct ef_schema *sc,
				   struct ef_checklist *l, struct ef_error *err)
{
	int keys[EF_KEY_MAX + 2] = { 0 }, n = 0;
	char others[512];
	bool alone = false, any = false;

	for (int i = 0; i < m->nkey; i++)
		keys[n++] = ef_relinfo_col(e, m->emb_key[i])->attnum;
	if (unique_within(db, e, keys, &alone, others, sizeof(others), err) != EF_OK)
		return err->status;
	if (m->emb_collection) {
		keys[n++] = ef_relinfo_col(e, m->emb_collection)->attnum;
		if (unique_within(db, e, keys, &any, others, sizeof(others), err) != EF_OK)
			return err->status;
	}
	sc->emb_unique = alone || any;
	sc->emb_unique_alone = alone;
	if (sc->emb_unique)
		ef_check_add(l, EF_CHECK_PASS, "upsert key", "", "%s has a unique index on the "
			     "chunk key", e->quoted);
	else
		ef_check_add(l, EF_CHECK_FAIL, "upsert key",
			     "CREATE UNIQUE INDEX ON <embeddings> (<chunk key>, <collection>): without "
			     "it a chunk could get two vectors and upserts cannot work",
			     "%s has no unique index on its chunk key", e->quoted);
	return EF_OK;
}

static ef_status check_embeddings(ef_db *db, const struct ef_mapping *m,
				  const struct ef_relinfo *ch, struct ef_schema *sc,
				  struct ef_checklist *l, struct ef_error *err)
{
	struct ef_relinfo e;
	const struct ef_relinfo *on = ch;
	ef_status st = EF_OK;
	bool separate = m->layout == EF_LAYOUT_SEPARATE;

	memset(&e, 0, sizeof(e));
	if (separate) {
		if (ef_relinfo_load(db, m->embeddings, &e, err) != EF_OK)
			return err->status;
		if (!table_found(l, &e, "embedding table", m->embeddings, "EMBEDDINGS_TABLE"))
			goto out;
		on = &e;
	} else if (!ch->exists) {
		return EF_OK;
	}
	if (!emb_columns(m, on, l, separate) || (m->emb_hash && !hash_column(on, m->emb_hash, sc, l)))
		goto out;
	st = vector_column(db, on, m->emb_vector, sc, l, err);
	if (st != EF_OK || sc->vec_type == EF_VEC_UNKNOWN)
		goto out;
	sc->recipe_col = m->emb_recipe && ef_relinfo_col(on, m->emb_recipe);
	sc->bookkeeping = !m->emb_model || !m->emb_hash || !sc->recipe_col;
	if (!m->emb_model || !m->emb_hash)
		ef_check_add(l, EF_CHECK_PASS, "bookkeeping", "", "the model%s of each vector %s kept "
			     "in embfill's bookkeeping table (schema \"%s\"); your table is written "
			     "only in its vector%s", m->emb_hash ? "" : " and content hash",
			     m->emb_hash ? "is" : "are", m->tool_schema,
			     m->emb_model ? " and model columns" : " column");
	else if (!sc->recipe_col)
		ef_check_add(l, EF_CHECK_PASS, "recipe", "to keep it in the row instead: ALTER TABLE "
			     "<embeddings> ADD COLUMN recipe text",
			     "%s has no recipe column: the recipe of each vector is kept in embfill's "
			     "bookkeeping table (schema \"%s\")", on->quoted, m->tool_schema);
	sc->embeddings_ok = true;
	if (separate && ch->exists && sc->chunks_ok) {
		st = isolation(db, &e, ch, m, sc, l, err);
		if (st == EF_OK)
			st = check_emb_indexes(db, &e, m, sc, l, err);
	} else if (!separate) {
		sc->emb_unique = sc->emb_unique_alone = sc->isolation_fk = true;
	}
out:
	ef_relinfo_free(&e);
	return st;
}

static ef_status check_documents(ef_db *db, const struct ef_mapping *m, struct ef_schema *sc,
				 struct ef_checklist *l, struct ef_error *err)
{
	struct ef_relinfo d;
	bool ok = true;

	if (!m->documents) {
		ef_check_add(l, EF_CHECK_PASS, "document table", "", "none mapped: citations come "
			     "from %s", m->cite_title.column || m->cite_source.column
			     ? "CITATION_TITLE and CITATION_SOURCE" : "the chunks alone");
		return EF_OK;
	}
	if (ef_relinfo_load(db, m->documents, &d, err) != EF_OK)
		return err->status;
	if (table_found(l, &d, "document table", m->documents, "DOCUMENTS_TABLE")) {
		ok &= need_col(l, &d, d.quoted, m->doc_id, "DOCUMENTS_ID_COLUMN");
		ok &= opt_col(l, &d, d.quoted, m->doc_title, "DOCUMENTS_TITLE_COLUMN");
		ok &= opt_col(l, &d, d.quoted, m->doc_source, "DOCUMENTS_SOURCE_COLUMN");
		ok &= opt_col(l, &d, d.quoted, m->doc_body, "DOCUMENTS_BODY_COLUMN");
		ok &= opt_col(l, &d, d.quoted, m->doc_collection, "DOCUMENTS_COLLECTION_COLUMN");
		sc->documents_ok = ok;
	}
	ef_relinfo_free(&d);
	return EF_OK;
}

static ef_status check_lookup(ef_db *db, const struct ef_mapping *m, struct ef_schema *sc,
			      struct ef_checklist *l, struct ef_error *err)
{
	struct ef_relinfo r;
	bool ok = true;

	if (m->coll_mode != EF_COLL_LOOKUP) {
		sc->lookup_ok = true;
		return EF_OK;
	}
	if (ef_relinfo_load(db, m->lookup, &r, err) != EF_OK)
		return err->status;
	if (table_found(l, &r, "collection lookup", m->lookup, "COLLECTIONS_TABLE")) {
		ok &= need_col(l, &r, r.quoted, m->lookup_key, "COLLECTIONS_KEY_COLUMN");
		ok &= need_col(l, &r, r.quoted, m->lookup_name, "COLLECTIONS_NAME_COLUMN");
		sc->lookup_ok = ok;
	}
	ef_relinfo_free(&r);
	return EF_OK;
}

static ef_status tool_version(ef_db *db, const struct ef_mapping *m, int *version,
			      struct ef_error *err)
{
	char *q = ef_db_quote_part(db, m->tool_schema, err), *sql = NULL;
	PGresult *res = NULL;

	if (!q || asprintf(&sql, "SELECT value FROM %s.meta WHERE key = 'schema_version'", q) < 0) {
		free(q);
		return err->status ? err->status : ef_error_oom(err, NULL);
	}
	res = ef_db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, err);
	free(sql);
	free(q);
	if (!res)
		return err->status;
	*version = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	return EF_OK;
}

static ef_status check_tool_schema(ef_db *db, const struct ef_mapping *m, struct ef_schema *sc,
				   struct ef_checklist *l, struct ef_error *err)
{
	static const char sql[] = "SELECT to_regclass(quote_ident($1) || '.runs') IS NOT NULL"
				  " AND to_regclass(quote_ident($1) || '.quarantine') IS NOT NULL,"
				  " to_regclass(quote_ident($1) || '.meta') IS NOT NULL";
	const char *p[1] = { m->tool_schema };
	PGresult *res = ef_db_query(db, sql, 1, p, PGRES_TUPLES_OK, err);
	bool meta;
	int version = 0;

	if (!res)
		return err->status;
	sc->tool_schema = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	meta = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	if (sc->tool_schema && meta && tool_version(db, m, &version, err) != EF_OK)
		return err->status;
	sc->tool_version = version;
	if (sc->tool_schema && version < EF_TOOL_SCHEMA_VERSION)
		ef_check_add(l, EF_CHECK_WARN, "embfill tables",
			     "run `embfill schema init`: it upgrades embfill's tables and leaves "
			     "yours as they are",
			     "schema \"%s\" holds embfill's tables of version %d; new collections, "
			     "swaps, rollbacks and backups need version %d", m->tool_schema, version,
			     EF_TOOL_SCHEMA_VERSION);
	else if (sc->tool_schema)
		ef_check_add(l, EF_CHECK_PASS, "embfill tables", "", "schema \"%s\" holds embfill's "
			     "runs, quarantine, collections, backups and swaps (version %d)",
			     m->tool_schema, version);
	else
		ef_check_add(l, EF_CHECK_WARN, "embfill tables",
			     "run `embfill schema init` (it adds embfill's own tables and leaves "
			     "yours as they are)",
			     "schema \"%s\" has no embfill tables yet", m->tool_schema);
	return EF_OK;
}

/* A SQL_ASCII database stores whatever bytes it is given: a chunk's text
 * may not be UTF-8, and converting it to UTF-8 would fail the statement. */
static ef_status server_encoding(ef_db *db, struct ef_schema *sc, struct ef_error *err)
{
	PGresult *r = ef_db_query(db, "SELECT current_setting('server_encoding')", 0, NULL,
				  PGRES_TUPLES_OK, err);

	if (!r)
		return err->status;
	sc->sql_ascii = strcmp(PQgetvalue(r, 0, 0), "SQL_ASCII") == 0;
	PQclear(r);
	return EF_OK;
}

ef_status ef_schema_discover(ef_db *db, const struct ef_mapping *m, struct ef_schema *sc,
			     struct ef_checklist *list, struct ef_error *err)
{
	struct ef_checklist scratch = EF_CHECKLIST_INIT;
	struct ef_checklist *l = list ? list : &scratch;
	struct ef_relinfo ch;
	ef_status st;

	memset(sc, 0, sizeof(*sc));
	if (server_encoding(db, sc, err) != EF_OK ||
	    ef_relinfo_load(db, m->chunks, &ch, err) != EF_OK)
		return err->status;
	st = check_chunks(db, m, &ch, sc, l, err);
	if (st == EF_OK)
		st = check_embeddings(db, m, &ch, sc, l, err);
	if (st == EF_OK)
		st = check_documents(db, m, sc, l, err);
	if (st == EF_OK)
		st = check_lookup(db, m, sc, l, err);
	if (st == EF_OK)
		st = check_tool_schema(db, m, sc, l, err);
	if (st == EF_OK && m->layout == EF_LAYOUT_SEPARATE && m->emb_key[m->nkey - 1] == NULL) {
		ef_check_add(l, EF_CHECK_FAIL, "mapping", "give EMBEDDINGS_CHUNK_COLUMN as many "
			     "columns as CHUNKS_ID_COLUMN, in the same order",
			     "CHUNKS_ID_COLUMN has %d columns, EMBEDDINGS_CHUNK_COLUMN fewer", m->nkey);
		sc->embeddings_ok = false;
	}
	/* Only the recipe lacks a column: until embfill's tables exist (a
	 * layout made before recipes were recorded, read by status or verify)
	 * no recipe is on record, and reading needs no bookkeeping. */
	sc->bookkeeping_required = sc->embeddings_ok && (!m->emb_model || !m->emb_hash);
	if (sc->bookkeeping && !sc->bookkeeping_required && (!sc->tool_schema || sc->tool_version < 3))
		sc->bookkeeping = false;
	ef_relinfo_free(&ch);
	ef_checklist_free(&scratch);
	if (st == EF_OK && !sc->lookup_ok)
		sc->chunks_ok = false;
	return st;
}
