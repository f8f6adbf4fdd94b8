/*
 * run_int.h - pieces of the run engine shared by its files.
 */
#ifndef EMBFILL_CORE_RUN_INT_H
#define EMBFILL_CORE_RUN_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/db/sqltpl.h"
#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/settings.h"
#include "embfill/vindex.h"

struct ef_run_sql {
	char *select;       /* one keyset batch of missing or stale chunks */
	char *count;        /* how many such chunks after a key */
	char *upsert;       /* a batch of vectors */
	char *book;         /* their bookkeeping ("" when the table records everything) */
	char *prune;        /* bookkeeping rows whose chunk is gone ("" likewise) */
	char *checkpoint;   /* the run's checkpoint and counters */
	char *quarantine;   /* one rejected chunk */
	char *unquarantine; /* chunks of a batch that now succeeded */
	char *backup;       /* the rows the run will overwrite, saved for rollback */
	char *left;         /* after the run: what is still to do, and why */
	char *tool;         /* quoted tool schema */
};

ef_status ef_run_sql_build(ef_db *db, const struct ef_config *cfg, const struct ef_schema *sc,
			   bool skip_quarantined, bool only_missing, struct ef_run_sql *out,
			   struct ef_error *err);
void ef_run_sql_free(struct ef_run_sql *s);

/* Just the quoted tool schema, for callers that need only embfill's tables. */
ef_status ef_run_sql_build_tool(ef_db *db, const struct ef_config *cfg, char **tool,
				struct ef_error *err);

/*
 * Encodes n floats as the binary input of the vector column: pgvector's
 * vector_recv format (int16 dim, int16 unused, float4s) or a one-dimension
 * float4[] (array_recv).  Binary transfer spares both sides formatting and
 * parsing 768 decimal floats per row.  Returns the number of bytes written
 * to out, which must hold ef_vec_binary_size(n, pgvector).
 */
size_t ef_vec_binary_size(int n, bool pgvector);
size_t ef_vec_to_binary(const float *v, int n, bool pgvector, unsigned char *out);

/*
 * Encodes the rows of a batch whose flag in skip is 0 as one binary array
 * parameter: vector[] (elements in vector_recv format) for pgvector, or one
 * flat float4[] of rows x dim for real[].  Returns a malloc'ed buffer and
 * its length in *len, or NULL when out of memory.
 */
unsigned char *ef_vec_batch_binary(const float *vectors, size_t n, int dim,
				   const unsigned char *skip, bool pgvector, unsigned vec_oid,
				   size_t *len);

struct ef_plan;

/* The plan's vector indexes: found, probed, priced, and the risk lines
 * that name them (plan_index.c).  cfg is the collection's view's. */
ef_status ef_plan_index_build(ef_session *s, const struct ef_config *cfg, struct ef_plan *p,
			      struct ef_error *err);

/* The vector indexes around a run's load (run_index.c). */
struct ef_run_index {
	struct ef_vindexes ix;     /* of the table the run writes */
	struct ef_vindexes live;   /* the live table's, when that is another one */
	bool own;                  /* the run writes a table of its own that lacks the live
				      table's indexes: they are built after the load */
	int dropped, built;
};

/* Before the load: notes what will be built after it, and with rebuild
 * drops the table's vector indexes (recorded). */
ef_status ef_run_index_before(ef_session *s, const char *collection, bool rebuild,
			      long long run_id, struct ef_run_index *ri, ef_vindex_note_fn note,
			      void *ctx, struct ef_error *err);

/* After a load that went through: rebuilds what is recorded as dropped
 * for the table and builds a table of its own's indexes. */
ef_status ef_run_index_after(ef_session *s, const char *collection, struct ef_run_index *ri,
			     const atomic_int *cancel, ef_vindex_note_fn note, void *ctx,
			     struct ef_error *err);

#endif
