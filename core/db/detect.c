/*
 * detect.c - the tables that hold vectors, and the mapping of each
 * (detect.h).  Everything comes from the catalog: column names and types,
 * primary and unique keys, foreign keys; no row is read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "embfill/detect.h"
#include "embfill/schema.h"

/* Tables with a pgvector column, or a float array whose name says it holds
 * embeddings; embfill's own schemas (runs, quarantine and meta side by
 * side) are left out: their backups hold saved vectors. */
static const char candidates_sql[] =
	"SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
	"  t.typname, a.atttypmod, n.nspname = current_schema(), c.oid"
	" FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
	" JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid"
	" WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
	"  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"
	"  AND (t.typname IN ('vector', 'halfvec') OR (format_type(a.atttypid, NULL) IN"
	"   ('real[]', 'double precision[]') AND a.attname ~* '(embed|vector)'))"
	"  AND NOT (to_regclass(quote_ident(n.nspname) || '.runs') IS NOT NULL"
	"   AND to_regclass(quote_ident(n.nspname) || '.quarantine') IS NOT NULL"
	"   AND to_regclass(quote_ident(n.nspname) || '.meta') IS NOT NULL)"
	"  AND ($1::text IS NULL OR c.oid = to_regclass($1::text))"
	" ORDER BY n.nspname, c.relname, a.attnum";

static const char columns_sql[] =
	"SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = $1::oid"
	" AND attnum > 0 AND NOT attisdropped ORDER BY attnum";

/* The table's primary key, else its first unique index of at most two
 * columns: names comma-separated, in key order. */
static const char key_sql[] =
	"SELECT (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(i.indkey)"
	"  WITH ORDINALITY k(att, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid"
	"  AND a.attnum = k.att) FROM pg_index i WHERE i.indrelid = $1::oid AND i.indisunique"
	" AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts <= 2"
	" ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid LIMIT 1";

/* A unique key with chunk_seq in it (pgai's (source key, chunk_seq)). */
static const char seq_key_sql[] =
	"SELECT (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(i.indkey)"
	"  WITH ORDINALITY k(att, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid"
	"  AND a.attnum = k.att) FROM pg_index i WHERE i.indrelid = $1::oid AND i.indisunique"
	" AND i.indnkeyatts = 2 AND EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a"
	"  ON a.attrelid = i.indrelid AND a.attnum = k WHERE a.attname = 'chunk_seq') LIMIT 1";

/* The table a one-column foreign key of col points at, and its column. */
static const char fk_sql[] =
	"SELECT CASE WHEN n.nspname = current_schema() THEN quote_ident(r.relname)"
	"  ELSE quote_ident(n.nspname) || '.' || quote_ident(r.relname) END, ra.attname, r.oid"
	" FROM pg_constraint f JOIN pg_class r ON r.oid = f.confrelid"
	" JOIN pg_namespace n ON n.oid = r.relnamespace"
	" JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]"
	" JOIN pg_attribute ra ON ra.attrelid = f.confrelid AND ra.attnum = f.confkey[1]"
	" WHERE f.conrelid = $1::oid AND f.contype = 'f' AND cardinality(f.conkey) = 1"
	" AND a.attname = $2 LIMIT 1";

/* The table a foreign key leading with col points at, whatever its width:
 * the default layout ties its tables by (key, collection) pairs. */
static const char fk_first_sql[] =
	"SELECT CASE WHEN n.nspname = current_schema() THEN r.relname"
	"  ELSE n.nspname || '.' || r.relname END, r.oid"
	" FROM pg_constraint f JOIN pg_class r ON r.oid = f.confrelid"
	" JOIN pg_namespace n ON n.oid = r.relnamespace"
	" JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]"
	" WHERE f.conrelid = $1::oid AND f.contype = 'f' AND a.attname = $2"
	" ORDER BY f.oid LIMIT 1";

struct cols {
	char **name, **type;
	int n;
};

static void cols_free(struct cols *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->name[i]);
		free(c->type[i]);
	}
	free(c->name);
	free(c->type);
	memset(c, 0, sizeof(*c));
}

static ef_status cols_load(ef_db *db, const char *oid, struct cols *c, struct ef_error *err)
{
	const char *p[1] = { oid };
	PGresult *r = ef_db_query(db, columns_sql, 1, p, PGRES_TUPLES_OK, err);

	memset(c, 0, sizeof(*c));
	if (!r)
		return err->status;
	c->name = calloc((size_t)PQntuples(r) + 1, sizeof(*c->name));
	c->type = calloc((size_t)PQntuples(r) + 1, sizeof(*c->type));
	for (int i = 0; c->name && c->type && i < PQntuples(r); i++) {
		c->name[i] = strdup(PQgetvalue(r, i, 0));
		c->type[i] = strdup(PQgetvalue(r, i, 1));
		c->n++;
	}
	PQclear(r);
	return c->name && c->type ? EF_OK : ef_error_oom(err, NULL);
}

static const char *col_type(const struct cols *c, const char *name)
{
	for (int i = 0; i < c->n; i++)
		if (c->name[i] && strcmp(c->name[i], name) == 0)
			return c->type[i];
	return NULL;
}

static bool has(const struct cols *c, const char *name)
{
	return col_type(c, name) != NULL;
}

static bool has_all(const struct cols *c, const char *const *names)
{
	for (; *names; names++)
		if (!has(c, *names))
			return false;
	return true;
}

static void set(struct ef_detect_candidate *d, const char *key, const char *value,
		const char *why, ...) __attribute__((format(printf, 4, 5)));

static void set(struct ef_detect_candidate *d, const char *key, const char *value,
		const char *why, ...)
{
	struct ef_detect_setting *s;
	va_list ap;

	if (d->nsettings == EF_DETECT_SETTINGS)
		return;
	s = &d->settings[d->nsettings++];
	s->key = key;
	snprintf(s->value, sizeof(s->value), "%s", value ? value : "");
	va_start(ap, why);
	vsnprintf(s->why, sizeof(s->why), why, ap);
	va_end(ap);
}

/* Query returning one text: the first column of the first row, or "". */
static ef_status one_text(ef_db *db, const char *sql, int n, const char *const *p, char *out,
			  size_t len, struct ef_error *err)
{
	PGresult *r = ef_db_query(db, sql, n, p, PGRES_TUPLES_OK, err);

	out[0] = '\0';
	if (!r)
		return err->status;
	if (PQntuples(r) >= 1 && !PQgetisnull(r, 0, 0))
		snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return EF_OK;
}

/* What every inline table without embfill's bookkeeping columns shares. */
static void no_bookkeeping(struct ef_detect_candidate *d)
{
	set(d, "EMBEDDINGS_MODEL_COLUMN", "", "no model column: embfill's bookkeeping keeps it");
	set(d, "EMBEDDINGS_HASH_COLUMN", "", "no content hash column: kept in the bookkeeping");
	set(d, "EMBEDDINGS_DIM_COLUMN", "", "no dimension column");
	set(d, "EMBEDDINGS_AT_COLUMN", "", "no embedding time column");
	set(d, "EMBEDDINGS_RUN_COLUMN", "", "no run column");
}

static void vector_key(struct ef_detect_candidate *d)
{
	set(d, "EMBEDDINGS_VECTOR_COLUMN", d->vector_column, "the %s column", d->vector_type);
	if (d->dim)
		set(d, "EMBED_DIM", NULL, "%d", d->dim);
}

static void langchain(struct ef_detect_candidate *d, const char *lookup)
{
	d->kind = EF_DETECT_LANGCHAIN;
	set(d, "SCHEMA_LAYOUT", "inline", "the text and the vector share one row");
	set(d, "COLLECTION_MODE", "lookup", "a collection is a name in %s", lookup);
	set(d, "COLLECTIONS_TABLE", lookup, "LangChain's collections");
	set(d, "COLLECTIONS_KEY_COLUMN", "uuid", "what collection_id points at");
	set(d, "COLLECTIONS_NAME_COLUMN", "name", "the collection's name");
	set(d, "CHUNKS_TABLE", d->table, "LangChain's embedding store");
	set(d, "CHUNKS_ID_COLUMN", "id", "its primary key (varchar)");
	set(d, "CHUNKS_COLLECTION_COLUMN", "collection_id", "the collection's uuid");
	set(d, "CHUNKS_CONTENT_COLUMN", "document", "the text that is embedded");
	set(d, "CHUNKS_DOCUMENT_COLUMN", "", "LangChain keeps no documents table");
	set(d, "CHUNKS_INDEX_COLUMN", "", "no position column");
	set(d, "DOCUMENTS_TABLE", "", "none: citations come from cmetadata");
	set(d, "CITATION_SOURCE", "cmetadata->source", "the source LangChain's loaders record");
	set(d, "CITATION_TITLE", "", "LangChain records no title");
	vector_key(d);
	no_bookkeeping(d);
}

static void llamaindex(struct ef_detect_candidate *d, const char *rel)
{
	d->kind = EF_DETECT_LLAMAINDEX;
	set(d, "SCHEMA_LAYOUT", "inline", "the text and the vector share one row");
	set(d, "COLLECTION_MODE", "table", "one table per index: the collection is \"%s\"", rel);
	set(d, "CHUNKS_TABLE", d->table, "LlamaIndex's PGVectorStore table");
	set(d, "CHUNKS_ID_COLUMN", "id", "its primary key (bigserial)");
	set(d, "CHUNKS_CONTENT_COLUMN", "text", "the node's text");
	set(d, "CHUNKS_COLLECTION_COLUMN", "", "none: the table is the collection");
	set(d, "CHUNKS_DOCUMENT_COLUMN", "", "LlamaIndex keeps no documents table");
	set(d, "CHUNKS_INDEX_COLUMN", "", "no position column");
	set(d, "DOCUMENTS_TABLE", "", "none: citations come from metadata_");
	set(d, "CITATION_SOURCE", "metadata_->ref_doc_id", "the document the node came from");
	set(d, "CITATION_TITLE", "metadata_->file_name", "the file name readers record");
	vector_key(d);
	no_bookkeeping(d);
}

static ef_status pgai(ef_db *db, struct ef_detect_candidate *d, const char *oid,
		      const struct cols *c, struct ef_error *err)
{
	char key[256], first[128], src[256] = "", srccol[128] = "";
	const char *p[1] = { oid }, *pf[2] = { oid, first };
	PGresult *r;
	struct cols sc = { NULL, NULL, 0 };

	if (one_text(db, seq_key_sql, 1, p, key, sizeof(key), err) != EF_OK)
		return err->status;
	if (!*key)
		snprintf(key, sizeof(key), "embedding_uuid");
	snprintf(first, sizeof(first), "%.*s", (int)strcspn(key, ","), key);
	if (strcmp(key, "embedding_uuid") != 0) {
		r = ef_db_query(db, fk_sql, 2, pf, PGRES_TUPLES_OK, err);
		if (!r)
			return err->status;
		if (PQntuples(r) == 1) {
			snprintf(src, sizeof(src), "%s", PQgetvalue(r, 0, 0));
			snprintf(srccol, sizeof(srccol), "%s", PQgetvalue(r, 0, 1));
			if (cols_load(db, PQgetvalue(r, 0, 2), &sc, err) != EF_OK) {
				PQclear(r);
				return err->status;
			}
		}
		PQclear(r);
	}
	d->kind = EF_DETECT_PGAI;
	set(d, "SCHEMA_LAYOUT", "inline", "pgai's store holds the chunk and its vector");
	set(d, "COLLECTION_MODE", "table", "one store per vectorizer");
	set(d, "CHUNKS_TABLE", d->table, "the vectorizer's embedding store");
	set(d, "CHUNKS_ID_COLUMN", key, "%s", strchr(key, ',') ? "UNIQUE (source key, chunk_seq)"
							   : "its primary key");
	set(d, "CHUNKS_CONTENT_COLUMN", "chunk", "the chunk's text");
	set(d, "CHUNKS_COLLECTION_COLUMN", "", "none: the store is the collection");
	set(d, "CHUNKS_INDEX_COLUMN", has(c, "chunk_seq") ? "chunk_seq" : "", "the chunk's position");
	if (*src) {
		set(d, "DOCUMENTS_TABLE", src, "the vectorizer's source table");
		set(d, "DOCUMENTS_ID_COLUMN", srccol, "the source's key");
		set(d, "CHUNKS_DOCUMENT_COLUMN", first, "the store's foreign key to it");
		set(d, "DOCUMENTS_COLLECTION_COLUMN", "", "the source has no collection column");
		set(d, "DOCUMENTS_TITLE_COLUMN", has(&sc, "title") ? "title" : "",
		    "for citations");
		set(d, "DOCUMENTS_SOURCE_COLUMN", has(&sc, "url") ? "url" : has(&sc, "source")
		    ? "source" : "", "for citations");
		set(d, "DOCUMENTS_BODY_COLUMN", "", "the vectorizer chunks the source itself");
	} else {
		set(d, "DOCUMENTS_TABLE", "", "no source table found");
	}
	cols_free(&sc);
	vector_key(d);
	no_bookkeeping(d);
	return EF_OK;
}

/* The table that col of the table oid refers to, into name (and its oid);
 * without a foreign key, the default name beside the table itself. */
static ef_status referenced(ef_db *db, const char *oid, const char *col, const char *table,
			    const char *dflt, char *name, size_t len, char *ref_oid,
			    struct ef_error *err)
{
	const char *p[2] = { oid, col };
	const char *dot = strrchr(table, '.');
	PGresult *r = ef_db_query(db, fk_first_sql, 2, p, PGRES_TUPLES_OK, err);

	if (!r)
		return err->status;
	if (PQntuples(r) == 1) {
		snprintf(name, len, "%s", PQgetvalue(r, 0, 0));
		snprintf(ref_oid, 16, "%s", PQgetvalue(r, 0, 1));
	} else {
		snprintf(name, len, "%.*s%s", dot ? (int)(dot - table + 1) : 0, table, dflt);
		snprintf(ref_oid, 16, "0");
	}
	PQclear(r);
	return EF_OK;
}

/* The chunk and document tables are found through the foreign keys, so
 * that a layout in a schema off the search path is mapped whole. */
static ef_status default_layout(ef_db *db, struct ef_detect_candidate *d, const char *oid,
				struct ef_error *err)
{
	char chunks[256], docs[256], chunks_oid[16], docs_oid[16];

	if (referenced(db, oid, "chunk_id", d->table, "document_chunks", chunks, sizeof(chunks),
		       chunks_oid, err) != EF_OK ||
	    referenced(db, chunks_oid, "document_id", chunks, "documents", docs, sizeof(docs),
		       docs_oid, err) != EF_OK)
		return err->status;
	d->kind = EF_DETECT_DEFAULT;
	set(d, "EMBEDDINGS_TABLE", d->table, "embfill's default layout: the keys not listed keep "
	    "their defaults");
	set(d, "CHUNKS_TABLE", chunks, "%s", strcmp(chunks_oid, "0") ? "what chunk_id refers to"
		: "beside the embedding table");
	set(d, "DOCUMENTS_TABLE", docs, "%s", strcmp(docs_oid, "0") ? "what the chunks' "
		"document_id refers to" : "beside the chunk table");
	vector_key(d);
	return EF_OK;
}

/* A vector column in a table of no known shape: the table is taken for one
 * collection with its vectors inline, keyed by its primary key. */
static ef_status other(ef_db *db, struct ef_detect_candidate *d, const char *oid,
		       const char *rel, const struct cols *c, struct ef_error *err)
{
	const char *p[1] = { oid };
	char key[256], text[64] = "";

	if (one_text(db, key_sql, 1, p, key, sizeof(key), err) != EF_OK)
		return err->status;
	for (int i = 0; !*text && i < c->n; i++)
		if (strcmp(c->type[i], "text") == 0 || strcmp(c->type[i], "character varying") == 0)
			snprintf(text, sizeof(text), "%s", c->name[i]);
	set(d, "SCHEMA_LAYOUT", "inline", "the vector is a column of this table");
	set(d, "COLLECTION_MODE", "table", "the table is one collection, \"%s\"", rel);
	set(d, "CHUNKS_TABLE", d->table, "the table with the vector column");
	set(d, "CHUNKS_ID_COLUMN", key, "%s", *key ? "its primary or unique key"
					   : "no unique key found: name one, or create one");
	set(d, "CHUNKS_CONTENT_COLUMN", text, "%s", *text ? "its first text column: check it is "
					  "the text that was embedded" : "name the text column");
	set(d, "CHUNKS_COLLECTION_COLUMN", "", "none");
	set(d, "CHUNKS_DOCUMENT_COLUMN", "", "none");
	set(d, "CHUNKS_INDEX_COLUMN", "", "none");
	set(d, "DOCUMENTS_TABLE", "", "none");
	vector_key(d);
	no_bookkeeping(d);
	if (has(c, "model"))
		set(d, "EMBEDDINGS_MODEL_COLUMN", "model", "the table records the model");
	return EF_OK;
}

static ef_status classify(ef_db *db, struct ef_detect_candidate *d, const PGresult *r, int i,
			  struct ef_error *err)
{
	static const char *const lc[] = { "id", "collection_id", "document", NULL };
	static const char *const li[] = { "id", "text", "metadata_", "node_id", NULL };
	static const char *const pa[] = { "embedding_uuid", "chunk_seq", "chunk", NULL };
	static const char *const df[] = { "chunk_id", "collection", "model", "content_sha256", NULL };
	const char *nsp = PQgetvalue(r, i, 0), *rel = PQgetvalue(r, i, 1);
	const char *oid = PQgetvalue(r, i, 7);
	bool current = strcmp(PQgetvalue(r, i, 6), "t") == 0;
	struct cols c;
	ef_status st = EF_OK;

	char lookup[200], found[256] = "";
	const char *pl[1] = { lookup };

	snprintf(lookup, sizeof(lookup), "%s%slangchain_pg_collection", current ? "" : nsp,
		 current ? "" : ".");
	if (cols_load(db, oid, &c, err) != EF_OK)
		return err->status;
	if (strcmp(rel, "langchain_pg_embedding") == 0 && has_all(&c, lc) &&
	    (st = one_text(db, "SELECT to_regclass($1)::text", 1, pl, found, sizeof(found),
			   err)) == EF_OK && *found)
		langchain(d, lookup);
	else if (st != EF_OK)
		;
	else if (strncmp(rel, "data_", 5) == 0 && has_all(&c, li))
		llamaindex(d, rel);
	else if (has_all(&c, pa))
		st = pgai(db, d, oid, &c, err);
	else if (has_all(&c, df))
		st = default_layout(db, d, oid, err);
	else
		st = other(db, d, oid, rel, &c, err);
	cols_free(&c);
	return st;
}

static void describe(struct ef_detect_candidate *d, const PGresult *r, int i)
{
	bool current = strcmp(PQgetvalue(r, i, 6), "t") == 0;
	const char *t = PQgetvalue(r, i, 4);
	int typmod = atoi(PQgetvalue(r, i, 5));

	snprintf(d->table, sizeof(d->table), "%s%s%s", current ? "" : PQgetvalue(r, i, 0),
		 current ? "" : ".", PQgetvalue(r, i, 1));
	snprintf(d->vector_column, sizeof(d->vector_column), "%s", PQgetvalue(r, i, 2));
	snprintf(d->vector_type, sizeof(d->vector_type), "%s", PQgetvalue(r, i, 3));
	d->dim = (strcmp(t, "vector") == 0 || strcmp(t, "halfvec") == 0) && typmod > 0 ? typmod : 0;
}

ef_status ef_detect_tables(ef_db *db, const char *table, struct ef_detect *out,
			   struct ef_error *err)
{
	const char *p[1] = { table };
	PGresult *r;
	ef_status st = EF_OK;

	memset(out, 0, sizeof(*out));
	r = ef_db_query(db, candidates_sql, 1, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	out->c = calloc((size_t)PQntuples(r) + 1, sizeof(*out->c));
	if (!out->c) {
		PQclear(r);
		return ef_error_oom(err, NULL);
	}
	for (int i = 0; st == EF_OK && i < PQntuples(r); i++) {
		struct ef_detect_candidate *d = &out->c[out->n];

		/* one candidate per table: its first vector column */
		if (out->n && strcmp(PQgetvalue(r, i, 0), PQgetvalue(r, i - 1, 0)) == 0 &&
		    strcmp(PQgetvalue(r, i, 1), PQgetvalue(r, i - 1, 1)) == 0)
			continue;
		describe(d, r, i);
		st = classify(db, d, r, i, err);
		out->n++;
	}
	PQclear(r);
	if (st == EF_OK && table && out->n == 0) {
		ef_error_set(err, EF_ERR_USAGE, "table \"%s\" has no vector column (vector, halfvec, or "
			     "a float array named for embeddings)", table);
		st = ef_error_hint(err, "`embfill schema detect` without --table lists the tables "
					"that have one");
	}
	if (st != EF_OK)
		ef_detect_free(out);
	return st;
}

void ef_detect_free(struct ef_detect *d)
{
	free(d->c);
	memset(d, 0, sizeof(*d));
}

const char *ef_detect_kind_name(enum ef_detect_kind k)
{
	switch (k) {
	case EF_DETECT_DEFAULT:
		return "embfill's default layout";
	case EF_DETECT_LANGCHAIN:
		return "LangChain PGVector";
	case EF_DETECT_LLAMAINDEX:
		return "LlamaIndex PGVectorStore";
	case EF_DETECT_PGAI:
		return "pgai vectorizer store";
	default:
		return "a table of its own";
	}
}
