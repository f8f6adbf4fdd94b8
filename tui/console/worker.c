/*
 * worker.c - the run on its own thread; see worker.h.
 */
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embfill/lifecycle.h"
#include "embfill/session.h"
#include "tui/console/worker.h"

struct worker {
	pthread_t thread;
	bool joined;
	const struct ef_config *cfg;
	struct ef_embed_config ec;
	struct ef_run_opts o;
	int wake_fd;
	atomic_int stop, cancel, pause;

	pthread_mutex_t lock;     /* guards snap */
	struct worker_snap snap;
	double next_spark;        /* engine thread only */

	bool rechunk;             /* o.source set: NEW is cut anew from its documents */

	ef_status st;             /* written by the thread, read after join */
	struct ef_error err;
	struct ef_run_result res;
};

static void wake(worker *w)
{
	/* non-blocking: a full pipe means the main loop is awake already */
	if (write(w->wake_fd, "w", 1) < 0)
		return;
}

/* Called on the engine's thread: copy in, note a rate sample a second. */
static void on_progress(const struct ef_run_progress *p, void *ctx)
{
	worker *w = ctx;
	bool sample = p->elapsed_s >= w->next_spark;

	if (sample)
		w->next_spark = p->elapsed_s + 1.0;
	pthread_mutex_lock(&w->lock);
	w->snap.p = *p;
	w->snap.have_progress = true;
	if (sample) {
		if (w->snap.nspark == WORKER_SPARK) {
			memmove(w->snap.spark, w->snap.spark + 1,
				sizeof(w->snap.spark[0]) * (WORKER_SPARK - 1));
			w->snap.nspark--;
		}
		w->snap.spark[w->snap.nspark++] = p->rate;
	}
	w->snap.seq++;
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

static void prep_note(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void prep_note(worker *w, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&w->lock);
	va_start(ap, fmt);
	vsnprintf(w->snap.prep, sizeof(w->snap.prep), fmt, ap);
	va_end(ap);
	w->snap.seq++;
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

static void note_prep(void *ctx, const char *text)
{
	prep_note(ctx, "%s", text);
}

/* On the worker's thread: a session of its own, the new collection made
 * first when the run goes into one, then the run. */
static void *run_thread(void *arg)
{
	worker *w = arg;
	struct ef_into_result into;
	ef_session *s = NULL;

	ef_error_clear(&w->err);
	w->st = ef_session_open(w->cfg, &s, &w->err);
	if (w->st == EF_OK && w->o.source)
		w->st = ef_coll_prepare_into(s, w->o.source, w->o.collection, w->rechunk, false,
					     note_prep, w, &into, &w->err);
	if (w->st == EF_OK)
		w->st = ef_run_execute(s, &w->ec, &w->o, &w->res, &w->err);
	ef_session_close(s);
	pthread_mutex_lock(&w->lock);
	w->snap.finished = true;
	w->snap.p.phase = EF_PHASE_FINISHED;
	w->snap.seq++;
	pthread_mutex_unlock(&w->lock);
	wake(w);
	return NULL;
}

worker *worker_start(const struct ef_config *cfg, const struct ef_embed_config *ec,
		     const struct ef_run_opts *o, bool rechunk, int wake_fd, char *why, size_t n)
{
	worker *w = calloc(1, sizeof(*w));
	sigset_t block, old;
	int rc;

	if (!w) {
		snprintf(why, n, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	w->rechunk = rechunk;
	w->ec = *ec;
	w->o = *o;
	w->o.stop = &w->stop;
	w->o.cancel = &w->cancel;
	w->o.pause = &w->pause;
	w->o.on_progress = on_progress;
	w->o.ctx = w;
	w->o.progress_ms = 200;
	w->wake_fd = wake_fd;
	pthread_mutex_init(&w->lock, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = pthread_create(&w->thread, NULL, run_thread, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(why, n, "cannot start the worker thread: %s", strerror(rc));
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void worker_snapshot(worker *w, struct worker_snap *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->snap;
	pthread_mutex_unlock(&w->lock);
}

void worker_pause(worker *w, bool on)
{
	atomic_store(&w->pause, on ? 1 : 0);
}

bool worker_paused(worker *w)
{
	return atomic_load(&w->pause) != 0;
}

void worker_stop(worker *w)
{
	atomic_store(&w->pause, 0);
	atomic_store(&w->stop, 1);
}

void worker_cancel(worker *w)
{
	atomic_store(&w->pause, 0);
	atomic_store(&w->stop, 1);
	atomic_store(&w->cancel, 1);
}

bool worker_stopping(worker *w)
{
	return atomic_load(&w->stop) != 0;
}

void worker_join(worker *w)
{
	if (w->joined)
		return;
	pthread_join(w->thread, NULL);
	w->joined = true;
}

ef_status worker_status(const worker *w, struct ef_error *err)
{
	if (err)
		*err = w->err;
	return w->st;
}

const struct ef_run_result *worker_result(const worker *w)
{
	return &w->res;
}

void worker_free(worker *w)
{
	if (!w)
		return;
	worker_join(w);
	ef_run_result_free(&w->res);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
