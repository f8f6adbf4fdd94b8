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
#include "embfill/plan.h"
#include "embfill/run.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/settings.h"
#include "embfill/vindex.h"

struct ef_run_sql {
	char *select;       /* one keyset batch of missing or stale chunks, within a lease */
	char *bounds;       /* every chunk to embed with its position: where leases end */
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
	char *analyze;      /* the statistics of the tables the run writes */
};

ef_status ef_run_sql_build(ef_db *db, const struct ef_config *cfg, const struct ef_schema *sc,
			   bool skip_quarantined, bool only_missing, struct ef_run_sql *out,
			   struct ef_error *err);
void ef_run_sql_free(struct ef_run_sql *s);

/* A one-column integer key, whose checkpoints are also kept as integers. */
bool ef_run_int_key(const struct ef_mapping *m, const struct ef_schema *sc);

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

/* One risk line of the plan (plan.c); on allocation failure it is left out.
 * A high risk whose advice names a new collection recommends one. */
void ef_plan_add_risk(struct ef_plan *p, enum ef_risk_level level, const char *advice,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

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

/* --- lease.c: a run shared by several workers ------------------------------ */

/* What the lease statements need of the run and the worker. */
struct ef_lease_ctx {
	ef_db *db;
	const char *tool;         /* quoted tool schema */
	long long run_id;
	long long worker_id;      /* 0 before ef_worker_add */
	int timeout_s;            /* LEASE_TIMEOUT_S */
	bool int_key;             /* checkpoints are kept as integers too */
};

/* A key range of the run held by this worker.  Keys are text[] literals;
 * lo is exclusive, hi inclusive, NULL open. */
struct ef_lease {
	struct ef_lease *next;
	int seq;
	char *lo, *hi;
	char *scan_pos;           /* the last key fetched: its checkpoint when claimed */
	char *range_d;            /* "(lo, hi]" for a person */
	char *was;                /* taken over: "host pid N" of the worker before */
	long long done;           /* chunks handled in it, by every holder */
	bool taken_over;
	bool exhausted;           /* nothing more to fetch in it */
	bool lost;                /* another worker took it over: write nothing more */
	bool closed;              /* done, and said so */
	unsigned outstanding;     /* batches fetched and not yet written */
};

/* A worker's numbers, renewed with its heartbeat. */
struct ef_worker_tally {
	long long done, written, quarantined;
	double rate;
	const char *endpoints;    /* JSON array, or NULL: unchanged */
};

/* What the run's record says after a sync. */
struct ef_run_sync {
	bool stop_requested;
	long long done, total;
	char state[16];
};

ef_status ef_lease_split(const struct ef_lease_ctx *c, const char *bounds, const char *coll,
			 const char *after, const char *model, int dim, long long per_lease,
			 long long todo, struct ef_error *err);
ef_status ef_lease_count(const struct ef_lease_ctx *c, long long *n, struct ef_error *err);
ef_status ef_lease_reset(const struct ef_lease_ctx *c, struct ef_error *err);
ef_status ef_lease_carry(const struct ef_lease_ctx *c, struct ef_error *err);
ef_status ef_worker_add(struct ef_lease_ctx *c, const char *host, int pid, struct ef_error *err);
/* state NULL: a heartbeat; else the worker's end (finished, stopped, failed). */
ef_status ef_worker_update(const struct ef_lease_ctx *c, const char *state,
			   const struct ef_worker_tally *t, struct ef_error *err);
/* *out NULL when no lease can be claimed now. */
ef_status ef_lease_claim(const struct ef_lease_ctx *c, struct ef_lease **out,
			 struct ef_error *err);
void ef_lease_free(struct ef_lease *l);
ef_status ef_lease_finish(const struct ef_lease_ctx *c, int seq, struct ef_error *err);
ef_status ef_lease_release(const struct ef_lease_ctx *c, struct ef_error *err);
ef_status ef_lease_beat(const struct ef_lease_ctx *c, int *held, size_t max, size_t *n,
			struct ef_error *err);
ef_status ef_lease_left(const struct ef_lease_ctx *c, long long *open, long long *claimable,
			struct ef_error *err);
ef_status ef_lease_sync(const struct ef_lease_ctx *c, long long retries, long long requests,
			struct ef_run_sync *out, struct ef_error *err);
ef_status ef_lease_complete(const struct ef_lease_ctx *c, bool *won, struct ef_error *err);
ef_status ef_lease_workers(const struct ef_lease_ctx *c, struct ef_run_worker *out, size_t max,
			   size_t *n, struct ef_error *err);

/*
 * A resumed run's counts, taken on a session of its own in a thread from
 * one REPEATABLE READ snapshot (run_counts.c), so that the run sends its
 * first batches at once.  The run must write nothing counted before
 * ef_late_counts_snapshot() returns.  cfg is borrowed for the thread's
 * life; after is the checkpoint (a text[] literal, or NULL).
 */
struct ef_late_counts;
ef_status ef_late_counts_start(const struct ef_config *cfg, const char *collection,
			       const char *count_sql, const char *after, const char *model,
			       int dim, struct ef_late_counts **out, struct ef_error *err);
/* Waits up to timeout_ms for the snapshot; false when it does not exist
 * (the counting failed, or no second connection was to be had). */
bool ef_late_counts_snapshot(struct ef_late_counts *lc, int timeout_ms);
/* Counts on s instead, before the run writes anything, and ends lc. */
ef_status ef_late_counts_instead(struct ef_late_counts *lc, ef_session *s,
				 struct ef_counts *before, long long *todo, struct ef_error *err);
/* 1: the counts, handed over once (before->collection is the caller's);
 * 0: not yet (or handed over already); -1: failed, why in err.  wait:
 * until they are known. */
int ef_late_counts_poll(struct ef_late_counts *lc, bool wait, struct ef_counts *before,
			long long *todo, struct ef_error *err);
/* Joins the thread (cancelling its query first when cancel) and frees. */
void ef_late_counts_end(struct ef_late_counts *lc, bool cancel);

#endif
