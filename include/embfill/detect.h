/*
 * detect.h - which tables of a database hold vectors, and the settings
 * that map them: `embfill schema detect`.
 *
 * The tables most teams have were made by a framework: LangChain's
 * PGVector (langchain_pg_embedding, with langchain_pg_collection for the
 * names), LlamaIndex's PGVectorStore (one data_<name> table per
 * collection), pgai's vectorizer (a <source>_store table beside the source
 * table), or embfill's own default layout.  Each table with a vector
 * column is a candidate; the known shapes are recognised by their columns
 * and get a complete mapping, any other gets the mapping its catalog
 * suggests, each key with the reason it was chosen.
 */
#ifndef EMBFILL_DETECT_H
#define EMBFILL_DETECT_H

#include <stddef.h>

#include "embfill/db.h"
#include "embfill/error.h"

enum ef_detect_kind {
	EF_DETECT_OTHER = 0,   /* a vector column in a table of no known shape */
	EF_DETECT_DEFAULT,     /* embfill's default layout */
	EF_DETECT_LANGCHAIN,   /* langchain_postgres PGVector */
	EF_DETECT_LLAMAINDEX,  /* LlamaIndex PGVectorStore */
	EF_DETECT_PGAI,        /* a pgai vectorizer's embedding store */
};

/* One settings key of a proposal, with why it has that value. */
struct ef_detect_setting {
	const char *key;          /* static */
	char value[256];
	char why[256];
};

#define EF_DETECT_SETTINGS 40

struct ef_detect_candidate {
	enum ef_detect_kind kind;
	char table[256];          /* schema.table holding the vector column */
	char vector_column[64];
	char vector_type[64];     /* "vector(768)", "halfvec(3072)", "real[]" */
	int dim;                  /* 0 when the type does not fix it */
	struct ef_detect_setting settings[EF_DETECT_SETTINGS];
	size_t nsettings;
};

struct ef_detect {
	struct ef_detect_candidate *c;
	size_t n;
};

/* Recognises the tables of the database the connection points at.  With
 * table (as `--table` gives it, schema-qualified when needed), only that
 * one: EF_ERR_USAGE when it has no vector column. */
ef_status ef_detect_tables(ef_db *db, const char *table, struct ef_detect *out,
			   struct ef_error *err);
void ef_detect_free(struct ef_detect *d);

/* "LangChain PGVector", "LlamaIndex PGVectorStore", ... */
const char *ef_detect_kind_name(enum ef_detect_kind k);

#endif
