/*
 * schema.h - creating the default layout and discovering a mapped one.
 */
#ifndef EMBFILL_SCHEMA_H
#define EMBFILL_SCHEMA_H

#include <stdbool.h>

#include "embfill/check.h"
#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/settings.h"

/* The schema_version of embfill's own tables this build needs. */
#define EF_TOOL_SCHEMA_VERSION 6

/* How a vector column stores its vectors: pgvector's vector (with or
 * without a dimension) and halfvec, or a plain float array. */
enum ef_vec_type {
	EF_VEC_UNKNOWN = 0, EF_VEC_PGVECTOR, EF_VEC_REAL_ARRAY, EF_VEC_HALFVEC, EF_VEC_DOUBLE_ARRAY
};

/* What discovery found out about the collection's tables. */
struct ef_schema {
	bool chunks_ok;         /* chunk table and its required columns exist */
	bool embeddings_ok;     /* embedding table/columns exist with a usable type */
	bool documents_ok;      /* a documents table is mapped and usable */
	bool lookup_ok;         /* lookup mode only */
	bool tool_schema;       /* embfill's own tables exist */
	int tool_version;       /* their schema_version; 0 when unknown */
	enum ef_vec_type vec_type;
	int dim;                /* 0: not fixed by the schema and no data to tell */
	char dim_source[48];    /* "type modifier", "CHECK constraint", "sample of the data" */
	bool mixed_dims;        /* the data sample holds several dimensions */
	bool hash_is_text;      /* hex text rather than bytea */
	bool isolation_fk;      /* composite (chunk, collection) foreign key */
	bool isolation_fk_valid; /* ... validated, on a collection column: the database
				    guarantees no orphan and no cross-tenant row, so
				    they need not be looked for */
	bool chunk_scan_index;  /* index leading with (collection, key) on chunks */
	bool emb_unique;        /* unique index on the embedding's chunk key */
	bool emb_unique_alone;  /* ... on the chunk key alone, not (chunk, collection) */
	unsigned vec_typoid;    /* type OID of the vector column, for binary transfer */
	char key_type[2][64];   /* the chunk key's column types, as format_type() says */
	bool key_unique;        /* a primary key or unique index guarantees the chunk key */
	bool key_default[2];    /* the key column has a default (new keys for copies) */
	bool bookkeeping;       /* model, hash or recipe has no column: embfill's vectors
				   table keeps them (and dim, time, run) */
	bool recipe_col;        /* the table has the recipe column (EMBEDDINGS_RECIPE_COLUMN) */
	bool sql_ascii;         /* the database's encoding is SQL_ASCII: texts are bytes */
	bool bookkeeping_required; /* model or hash has no column: nothing is counted
				      without embfill's tables */
	bool cite_title_json;   /* CITATION_TITLE names a key of a json/jsonb column */
	bool cite_source_json;
	int vindexes;           /* pgvector indexes (HNSW, IVFFlat) on the vector column */
	int vindexes_dropped;   /* ... dropped for a run and not rebuilt yet (vindex.h) */
};

/* The SQL type of a vector column of t ("vector", "halfvec", "real[]"). */
const char *ef_vec_type_name(enum ef_vec_type t);

/* True when status can be computed (chunks and embeddings usable). */
bool ef_schema_usable(const struct ef_schema *sc);

/*
 * Looks at the tables named by the mapping and reports each finding to list
 * (may be NULL).  Missing tables are findings, not errors: the return is
 * EF_OK unless the database itself failed.
 */
ef_status ef_schema_discover(ef_db *db, const struct ef_mapping *map, struct ef_schema *sc,
			     struct ef_checklist *list, struct ef_error *err);

struct ef_schema_init_opts {
	int dim;                 /* vector dimension, 1..16000 */
	enum ef_vec_type want;   /* EF_VEC_UNKNOWN: vector when available, else real[];
				    EF_VEC_HALFVEC needs pgvector too */
};

/*
 * Creates what is missing of the default layout (tables named by the
 * mapping, separate layout, collection column) and embfill's own tables, in
 * one transaction; existing tables are left as they are.  Each action or
 * finding goes to report.  Refuses (EF_ERR_USAGE, nothing changed) when an
 * existing embedding column has another dimension than opts->dim.
 */
ef_status ef_schema_init(ef_db *db, const struct ef_mapping *map,
			 const struct ef_schema_init_opts *opts, struct ef_checklist *report,
			 struct ef_error *err);

/*
 * Creates, when it does not exist, an embedding table named table like the
 * mapping's (same columns, the isolation foreign key to the chunk table,
 * vectors stored as they are) for vectors of another dimension: vector(dim)
 * or real[] with a length CHECK, as t says.  In the caller's transaction.
 * *created tells whether it was made now.
 */
ef_status ef_schema_add_dim_table(ef_db *db, const struct ef_mapping *m, enum ef_vec_type t,
				  int dim, const char *table, bool *created, struct ef_error *err);

/*
 * Parses a CHECK constraint definition as pg_get_constraintdef() prints it
 * and returns the array length it imposes on column (quoted as
 * quote_ident() would), or 0 when it imposes none.  Recognises
 * array_length(col, 1) = N and cardinality(col) = N.
 */
int ef_schema_parse_dim_check(const char *def, const char *quoted_column);

#endif
