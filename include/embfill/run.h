/*
 * run.h - the backfill engine: embeds a collection's missing and stale
 * chunks, batch by batch, with a checkpoint committed with every batch.
 *
 * The engine has no terminal I/O.  It reports through a progress callback
 * (called on the engine's own thread, so a console copies the snapshot
 * under its own lock) and obeys flags the caller owns:
 *   stop   finish the batches in flight, write them, checkpoint, return
 *          EF_ERR_INTERRUPTED (signals, the console's quit, --until);
 *   cancel abort the requests on the wire at once; what was written stays,
 *          the batches in flight are redone by the next run;
 *   pause  no new request starts until it is cleared.
 * It runs on the session it is given, whose thread it must be called on,
 * and owns its curl handles, so a worker thread with a session of its own
 * can run it while another thread draws the screen.
 *
 * A run's chunks are cut into key ranges (leases, LEASE_CHUNKS each) in
 * embfill's schema.  The process that starts the run is its first worker;
 * others, on any host, may join it (opts.join) and take leases too.  Each
 * worker stops alone (its flags, a signal), after its batches in flight,
 * and hands its leases back; `embfill stop` asks them all.
 */
#ifndef EMBFILL_RUN_H
#define EMBFILL_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "embfill/embed.h"
#include "embfill/error.h"
#include "embfill/scan.h"
#include "embfill/session.h"
#include "embfill/settings.h"

enum ef_run_phase {
	EF_PHASE_STARTING,
	EF_PHASE_EMBEDDING,
	EF_PHASE_PAUSED,
	EF_PHASE_STOPPING,   /* draining the batches in flight */
	EF_PHASE_INDEXING,   /* building vector indexes after the load */
	EF_PHASE_FINISHED,
};

#define EF_RUN_LOG_LINES 8
#define EF_RUN_LOG_WIDTH 160
#define EF_RUN_MAX_ENDPOINTS 8   /* shown; a run may drive more */
#define EF_RUN_MAX_WORKERS 8     /* shown; a run may have more */

/* One endpoint of the embedding service, as the run sees it now. */
struct ef_run_endpoint {
	char url[96];            /* without userinfo or query */
	char state[12];          /* up, resting, unverified, refused */
	unsigned in_flight, capacity;
	double rate;             /* chunks per second over the last seconds */
	unsigned long requests, errors;
	double retry_in_s;       /* resting: seconds until it is tried again */
};

/* One worker of a run: a process embedding its leases. */
struct ef_run_worker {
	long long id;
	char host[64];
	int pid;
	char state[12];          /* running, finished, stopped, failed */
	char lease[96];          /* the key ranges it holds, "(100, 200]"; "-" none */
	long long lease_done;    /* chunks handled in them */
	long long done;          /* chunks it handled in the run */
	double rate;             /* its chunks per second */
	double heartbeat_age_s;
	bool me;                 /* this process */
};

struct ef_run_progress {
	long long run_id;
	enum ef_run_phase phase;
	long long total;        /* chunks to embed when the run started */
	long long done;         /* chunks handled: written or quarantined */
	long long written;
	long long quarantined;
	long long retries;
	long long requests;
	unsigned in_flight;     /* requests on the wire */
	unsigned concurrency;
	double rate;            /* chunks per second over the last seconds */
	double eta_s;           /* seconds left at that rate; < 0 unknown */
	double elapsed_s;
	/* where the time went so far: waiting on the service, reading its
	 * answers, and on the database (choosing batches, writing them) */
	double service_s, parse_s, db_s;
	char checkpoint[128];   /* every chunk up to this key is handled ("" before the
				   first batch); "7", or "7/2" for a two-column key */
	/* newest last; lines are plain text, already redacted */
	char log[EF_RUN_LOG_LINES][EF_RUN_LOG_WIDTH];
	int nlog;
	unsigned long nlogged;   /* lines logged since the start: log[nlog - 1] is line
				    nlogged - 1 */
	/* the service: every endpoint, and whether the run waits for it */
	struct ef_run_endpoint endpoints[EF_RUN_MAX_ENDPOINTS];
	int nendpoints;
	bool waiting;            /* no endpoint is up: the run waits, up to the budget */
	time_t waiting_since;    /* when the last endpoint went (wall clock) */
	double retry_in_s;       /* until the next endpoint is tried */
	/* the run's live workers as of the last heartbeat, this one among them */
	struct ef_run_worker workers[EF_RUN_MAX_WORKERS];
	int nworkers;
	long long run_done, run_total; /* the whole run's, all workers' */
	bool joined;             /* this process joined another's run */
	char lease[96];          /* the key range this worker embeds now */
};

typedef void (*ef_run_progress_fn)(const struct ef_run_progress *p, void *ctx);

struct ef_run_opts {
	const char *collection;
	bool resume;             /* continue the collection's interrupted run */
	bool dry_run;            /* count and plan, write nothing */
	bool retry_quarantined;  /* also embed chunks in quarantine */
	bool only_missing;       /* embed only chunks without a vector; leave stale ones */
	bool backup;             /* save the rows the run overwrites, for rollback */
	bool rebuild_index;      /* drop the target table's vector indexes for the load and
				    rebuild them CONCURRENTLY after it (vindex.h) */
	bool approve_provider_change; /* the collection's owner approved a new
				       provider or service host */
	const char *source;      /* run --into: the collection NEW was made from,
				    whose provider counts when NEW has none yet */
	time_t deadline;         /* stop cleanly at this time; 0: none */
	const char *note;        /* maintenance-window note */
	const char *command;     /* the command line that reproduces the run */
	bool join;               /* join the collection's active run as one more worker */
	bool historylog;         /* a historylog entry is wanted: recorded with the run,
				    so that the worker that ends it writes one */
	const atomic_int *stop;
	const atomic_int *cancel;
	const atomic_int *pause;
	ef_run_progress_fn on_progress;
	void *ctx;
	int progress_ms;         /* at most one callback per this many ms; 0: 250 */
};

struct ef_run_result {
	long long run_id;
	bool resumed;
	bool dry_run;
	bool stopped_by_deadline;
	long long total, written, quarantined, retries, requests, splits;
	long long backed_up;     /* rows saved for rollback (--backup) */
	double elapsed_s;
	double rate;             /* chunks per second over the whole run */
	double write_s;          /* time the loop waited on the database's writes */
	double fetch_s;          /* time spent choosing batches */
	double service_s;        /* time the loop waited on the service (answers read aside) */
	double parse_s;          /* time spent reading and checking the service's answers */
	int indexes_dropped;     /* vector indexes dropped for the load (--rebuild-index) */
	int indexes_built;       /* ... and built after it (rebuilt, or a table of its own's) */
	double index_s;          /* time spent building them (part of elapsed_s) */
	struct ef_counts before; /* status of the collection before and after */
	struct ef_counts after;  /* unknown unless this worker ended the run */
	char state[16];          /* completed, interrupted, failed, dry-run: this
				    worker's part; the run's is run_state */
	char run_state[16];      /* the run's state when this worker left it */
	bool joined;             /* this worker joined another's run */
	bool ended_run;          /* this worker ended the run: it took the after-counts */
	bool db_failed;          /* the database failed it: nothing after could be read */
	bool historylog_asked;   /* the run was started with --historylog */
	long long run_total, run_written, run_quarantined; /* the whole run's */
	struct ef_run_worker workers[EF_RUN_MAX_WORKERS]; /* every worker of the run */
	int nworkers;
	bool stop_asked;         /* `embfill stop` stopped it */
	char run_command[1024];  /* the command that started the run (redacted), and */
	char run_note[256];      /* its note: what a worker that joined records */
	/* the worker that ends a completed run counts again what the run set out
	 * to embed: chunks still missing or stale (quarantined ones aside) mean
	 * it did not converge */
	long long unconverged;
	struct {
		char key[128];
		char why[96];
	} left[5];               /* the first of them, and why each is left */
	size_t nleft;
};

/*
 * Runs the backfill.  EF_OK when the run went through; res->unconverged
 * says whether every chunk that needed it was embedded or quarantined;
 * EF_ERR_INTERRUPTED when stopped (resumable); EF_ERR_BUSY when another
 * run holds the collection (err names it); EF_ERR_EMBED on a
 * fatal service error (the run is recorded as failed, resumable once fixed);
 * EF_ERR_DB, EF_ERR_USAGE otherwise.  res is filled as far as the run got;
 * free its counts with ef_run_result_free().
 */
ef_status ef_run_execute(ef_session *s, const struct ef_embed_config *ecfg,
			 const struct ef_run_opts *opts, struct ef_run_result *res,
			 struct ef_error *err);

void ef_run_result_free(struct ef_run_result *res);

/* The collection's newest interrupted (or failed) run, if any: its id, when
 * it started, where it stopped and on which host.  *run_id is 0 when there
 * is none. */
struct ef_run_info {
	long long run_id;
	char state[16];
	char host[128];
	char started_at[40];
	char checkpoint[128];     /* where it stopped, for a person ("" at the start) */
	char checkpoint_key[512]; /* the same as the text[] literal a resume starts after */
	long long done, total;
};
ef_status ef_run_find_interrupted(ef_session *s, const char *collection, struct ef_run_info *info,
				  struct ef_error *err);

const char *ef_run_phase_name(enum ef_run_phase p);

/* The collection's active run, as `status -C` shows it. */
struct ef_run_live {
	long long run_id;         /* 0: no active run */
	char host[128];           /* where it was started */
	char started_at[40];
	long long done, total;
	long long leases, leases_done, leases_taken;
	bool stop_requested;
	struct ef_run_worker workers[EF_RUN_MAX_WORKERS]; /* live ones */
	int nworkers;
};

/* Fills out with the collection's run in state running, if any (the
 * workers whose heartbeat is within LEASE_TIMEOUT_S). */
ef_status ef_run_live(ef_session *s, const char *collection, struct ef_run_live *out,
		      struct ef_error *err);

/*
 * `embfill stop`: asks every worker of the collection's running run to stop
 * at its next checkpoint (they read it at their heartbeat).  *run_id is 0
 * when no run is running; *workers is how many are alive to hear it.
 */
ef_status ef_run_request_stop(ef_session *s, const char *collection, long long *run_id,
			      int *workers, struct ef_error *err);

#endif
