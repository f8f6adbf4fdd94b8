/*
 * worker.h - the backfill on a worker thread, bridged to the console.
 *
 * The worker owns everything the run touches: it opens a database session
 * of its own on its thread, and its curl handles live inside
 * ef_run_execute.  It shares with the main thread
 * only a progress snapshot behind a mutex, the stop/cancel/pause flags
 * (atomics), and one byte written to the wake pipe after each update.  The
 * main thread copies the snapshot under the lock and draws from its copy;
 * it reads the run's result only after worker_join().
 */
#ifndef EMBFILL_TUI_WORKER_H
#define EMBFILL_TUI_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/embed.h"
#include "embfill/error.h"
#include "embfill/run.h"
#include "embfill/settings.h"

#define WORKER_SPARK 64  /* rate samples kept, one a second */

struct worker_snap {
	struct ef_run_progress p;
	double spark[WORKER_SPARK]; /* chunks/s, oldest first */
	int nspark;
	bool have_progress;     /* the engine reported at least once */
	bool finished;          /* ef_run_execute returned */
	unsigned long seq;      /* bumped at every update */
	char prep[200];         /* --into: what the preparation is doing or did */
};

typedef struct worker worker;

/*
 * Starts the run on a new thread, with SIGINT, SIGTERM, SIGHUP and
 * SIGWINCH blocked in it so that they reach the main thread.  A run into a
 * new collection (o->source set) first makes it there, the way `run
 * --into` does (ef_coll_prepare_into; rechunk cuts the documents anew).
 * cfg, ec and the strings of o are borrowed: they must outlive
 * worker_join().  The flags and callback of o are replaced by the worker's
 * own.  Returns NULL with a reason in why when the thread cannot start.
 */
worker *worker_start(const struct ef_config *cfg, const struct ef_embed_config *ec,
		     const struct ef_run_opts *o, bool rechunk, int wake_fd, char *why, size_t n);

/* Copies the newest snapshot (under the lock). */
void worker_snapshot(worker *w, struct worker_snap *out);

void worker_pause(worker *w, bool on);
bool worker_paused(worker *w);
/* Finish the batches in flight, checkpoint, return (resumable). */
void worker_stop(worker *w);
/* Abort the requests on the wire; written batches stay. */
void worker_cancel(worker *w);
bool worker_stopping(worker *w);

/* Waits for the thread; then the result and status may be read. */
void worker_join(worker *w);
ef_status worker_status(const worker *w, struct ef_error *err);
const struct ef_run_result *worker_result(const worker *w);

/* Joins if needed and frees. */
void worker_free(worker *w);

#endif
