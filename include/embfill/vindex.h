/*
 * vindex.h - the vector indexes of the table a collection's vectors live
 * in (pgvector's HNSW and IVFFlat), what they cost a backfill, and the one
 * change embfill makes to a table it did not create: an index the
 * operator chose to drop for a large run, rebuilt afterwards under the
 * same name and definition.
 *
 * Every new vector of a table with an HNSW index is inserted into the
 * graph one at a time, which costs far more than writing the row: loading
 * first and building the index afterwards is several times faster, and
 * the gap grows with the table.  The cost is measured, not guessed: a
 * probe writes the same rows into the table and into a copy of it without
 * its vector indexes, inside a transaction that is rolled back, and builds
 * the indexes over a sample of the rows.
 *
 * A drop is recorded in embfill's table vector_indexes in the same
 * transaction as the DROP INDEX, so that a crash at any point leaves
 * either the index or its record: the next run of the table (--resume or
 * not) rebuilds what the record names, CONCURRENTLY, and deletes the
 * record once the index is valid again.
 */
#ifndef EMBFILL_VINDEX_H
#define EMBFILL_VINDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "embfill/check.h"
#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/session.h"

#define EF_VINDEX_MAX 6
#define EF_VINDEX_DEF_MAX 1024

/* One index of pgvector's access methods on the vector column. */
struct ef_vindex {
	char name[128];            /* as the catalog has it */
	char qname[300];           /* schema-qualified and quoted, for DDL */
	char method[16];           /* hnsw or ivfflat */
	char opclass[64];          /* vector_cosine_ops, halfvec_l2_ops, ... */
	char op[8];                /* its ordering operator: <=>, <->, <#>, <+>; "" none */
	char options[160];         /* "m=16, ef_construction=64"; "" the defaults */
	char tablespace[128];      /* "" the database's default */
	char def[EF_VINDEX_DEF_MAX]; /* pg_get_indexdef() */
	long long bytes;
	bool valid;                /* a failed CREATE INDEX CONCURRENTLY leaves it invalid */
	bool partial;              /* has a WHERE clause */
	bool expression;           /* on an expression of the column (a cast), not the column */
};

/* An index dropped for a run and not rebuilt yet (embfill's record). */
struct ef_vindex_dropped {
	char qname[300];
	char def[EF_VINDEX_DEF_MAX];
	char tablespace[128];      /* "" the database's default */
	long long run_id;
	char collection[256];
	char dropped_at[32];       /* UTC, "YYYY-MM-DD HH:MM:SS" */
};

struct ef_vindexes {
	char table[300];           /* the table, schema-qualified and quoted ("" none) */
	char column[128];          /* the vector column, as the settings name it */
	bool owner;                /* the session's user may drop and create its indexes */
	long long rows;            /* rows of the table (the planner's estimate) */
	size_t n;
	struct ef_vindex ix[EF_VINDEX_MAX];
	size_t ndropped;           /* read from embfill's tables when they exist */
	struct ef_vindex_dropped dropped[EF_VINDEX_MAX];
};

/*
 * The vector indexes of table (a name as the settings give it) on column,
 * and the ones dropped for a run and not rebuilt (tool: the quoted schema
 * of embfill's tables, NULL when they do not exist or predate version 5).
 * A table that does not exist has none.
 */
ef_status ef_vindex_find(ef_db *db, const char *tool, const char *table, const char *column,
			 struct ef_vindexes *out, struct ef_error *err);

/*
 * The same for a session: the vector column's table as the mapping names
 * it, or as collection's view does (its table of its own) when collection
 * is not NULL; dropped indexes are read when embfill's tables are of
 * version 5 or later.
 */
ef_status ef_vindex_of(ef_session *s, const char *collection, struct ef_vindexes *out,
		       struct ef_error *err);

/* How a build is given memory and workers for its session, and the flag
 * that cancels it (PQcancel: a CONCURRENTLY build then leaves an invalid
 * index, which the next rebuild drops first). */
struct ef_vindex_build {
	int memory_mb;             /* maintenance_work_mem */
	int workers;               /* max_parallel_maintenance_workers */
	const atomic_int *cancel;  /* may be NULL */
};

/* What a probe measured; measured is false (why_not says why) when the
 * table has too few vectors to write or the probe failed. */
struct ef_vindex_probe {
	bool measured;
	char why_not[256];         /* cut to 250 bytes */
	char scratch_note[96];     /* where the copy lived, when that bends the numbers */
	int rows;                  /* rows the probe wrote */
	double with_ms;            /* writing them into the table, its indexes and all */
	double without_ms;         /* the same rows into a copy without the vector indexes */
	int sample;                /* rows the indexes were built over */
	double build_ms[EF_VINDEX_MAX]; /* each index built over the sample */
};

/*
 * Measures the indexes of ix (on its table's column): up to 200 rows of the table
 * get their vector moved by a small constant (a new vector, near its old
 * one, as a re-embedding gives) in the table and in a copy of the table
 * made without its vector indexes (in tool when given, else a temporary
 * table), and each index is built over a sample of up to 1,000 rows, all
 * inside one transaction that is rolled back: nothing is left, and row
 * locks are held for about a second (lock_timeout 2 s, so an application
 * holding them is never waited on for long).  EF_OK with out->measured
 * false when there is nothing to measure; an error only when the database
 * fails outside the probe's own statements.
 */
ef_status ef_vindex_probe(ef_db *db, const char *tool, const char *column,
			  const struct ef_vindexes *ix, const struct ef_vindex_build *b,
			  struct ef_vindex_probe *out, struct ef_error *err);

/* ef_vindex_probe on the session, with the settings' build memory and
 * workers (INDEX_BUILD_MEMORY_MB, INDEX_BUILD_WORKERS). */
ef_status ef_vindex_probe_of(ef_session *s, const struct ef_vindexes *ix,
			     struct ef_vindex_probe *out, struct ef_error *err);

/* The settings' build memory and workers. */
struct ef_vindex_build ef_vindex_build_of(const struct ef_config *cfg);

/* The quoted schema of embfill's tables when they hold vector_indexes
 * (version 5 or later), else NULL; caller frees. */
char *ef_vindex_tool(ef_session *s, struct ef_error *err);

/* The probe's extra milliseconds per row written with the indexes; 0
 * when not measured. */
double ef_vindex_cost_per_row_ms(const struct ef_vindex_probe *p);

/* Seconds to build index i of ix over rows rows, from the sample build
 * (n log n for HNSW, linear for IVFFlat); < 0 when not measured. */
double ef_vindex_build_estimate_s(const struct ef_vindexes *ix, const struct ef_vindex_probe *p,
				  size_t i, long long rows);

/*
 * Drops every valid index of ix for a run: each definition (with its
 * tablespace and comment) goes into embfill's vector_indexes in the same
 * transaction as its DROP INDEX.  lock_timeout 5 s: a DROP waiting for a
 * long query would queue every reader of the table behind it, so it gives
 * up instead (EF_ERR_DB, nothing dropped).
 */
ef_status ef_vindex_drop(ef_db *db, const char *tool, const struct ef_vindexes *ix,
			 long long run_id, const char *collection, struct ef_error *err);

/* Called before and after each index is built, for a progress report. */
typedef void (*ef_vindex_note_fn)(void *ctx, const char *text);

/*
 * Rebuilds every index recorded as dropped for ix's table, CONCURRENTLY
 * (readers and writers go on), with b's memory and workers for the
 * session; an invalid leftover of an interrupted build is dropped first.
 * Each record is deleted once its index is valid.  *built counts the
 * indexes made.
 */
ef_status ef_vindex_rebuild(ef_db *db, const char *tool, const struct ef_vindexes *ix,
			    const struct ef_vindex_build *b, ef_vindex_note_fn note, void *ctx,
			    int *built, struct ef_error *err);

/*
 * Gives table (a new collection's table of its own, which embfill made
 * and nobody searches yet) the vector indexes the live table has on the
 * same column: the same method, operator class and options, built in one
 * go after the load (not CONCURRENTLY: nobody waits on it).  An index of
 * the same method and operator class already there is kept.  *built counts
 * the indexes made.
 */
ef_status ef_vindex_build_like(ef_db *db, const struct ef_vindexes *live, const char *table,
			       const char *column, const struct ef_vindex_build *b,
			       ef_vindex_note_fn note, void *ctx, int *built,
			       struct ef_error *err);

/* The indexes of live that table (found as mine) lacks, by method and
 * operator class: what ef_vindex_build_like would build. */
size_t ef_vindex_missing(const struct ef_vindexes *live, const struct ef_vindexes *mine);

/* A duration as the costs are shown: "4.9 s", "12m05s", "1.5 h"; "unknown"
 * below 0. */
void ef_vindex_duration(double s, char *buf, size_t n);

/* The probe's findings for `schema check`: what the indexes cost per
 * vector written, and what building them over the whole table takes. */
void ef_vindex_cost_check(const struct ef_vindexes *ix, const struct ef_vindex_probe *p,
			  struct ef_checklist *l);

/* "hnsw (vector_cosine_ops, m=16, ef_construction=64)" for one index. */
void ef_vindex_describe(const struct ef_vindex *v, char *buf, size_t n);

#endif
