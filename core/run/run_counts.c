/*
 * run_counts.c - a resumed run's counts, taken beside the run.
 *
 * On a large collection the counts before a run take seconds; an operator
 * resuming at the end of a window should see the run move at once.  So a
 * resumed run counts on a session of its own, in a thread: the thread
 * opens a REPEATABLE READ transaction and takes its snapshot first, and
 * the run writes nothing the counts see before that snapshot exists
 * (ef_late_counts_snapshot).  Every count then comes from that one
 * snapshot, the state before the run, however far the run has got by the
 * time the counting ends.
 *
 * A server that takes one connection at a time (PGlite, a pooler at its
 * limit) holds the second one until the first closes: the thread gives
 * its connection up after CONNECT_S seconds, and the run then counts on
 * its own connection before its first write, as it did before.  So the
 * thread never outlives the run, nor the settings it borrows.
 *
 * EMBFILL_TEST_HOLD=counts:K (tests only) holds the counting after its
 * snapshot until the advisory lock K can be shared: a test holding the
 * lock watches the run write while its counts wait.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/db/db_pg.h"
#include "core/run/run_int.h"
#include "embfill/scan.h"

enum stage { STARTING, SNAPSHOT, COUNTED, FAILED };

#define CONNECT_S 2

struct ef_late_counts {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum stage stage;         /* under mu */
	bool taken;               /* the result was handed over */
	PGcancel *cancel;         /* under mu: the counting connection's, once open */
	bool cancelled;           /* under mu */
	const struct ef_config *cfg;
	char *collection, *count_sql, *after, *model;
	int dim;
	long long hold;           /* EMBFILL_TEST_HOLD=counts:K, else 0 */
	struct ef_counts before;  /* COUNTED */
	long long todo;
	struct ef_error err;      /* FAILED */
};

static void set_stage(struct ef_late_counts *lc, enum stage st)
{
	pthread_mutex_lock(&lc->mu);
	lc->stage = st;
	pthread_cond_broadcast(&lc->cv);
	pthread_mutex_unlock(&lc->mu);
}

static ef_status count_left(struct ef_late_counts *lc, ef_db *db, struct ef_error *err)
{
	char d[16];
	const char *p[4] = { lc->collection, lc->after, lc->model, d };
	PGresult *r;

	snprintf(d, sizeof(d), "%d", lc->dim);
	r = PQexecParams(ef_db_pg(db), lc->count_sql, 4, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		ef_db_fail(db, r, err);
		PQclear(r);
		return err->status;
	}
	lc->todo = ef_db_ll(r, 0, 0);
	PQclear(r);
	return EF_OK;
}

static ef_status snapshot(ef_db *db, struct ef_error *err)
{
	PGresult *r = PQexec(ef_db_pg(db), "SELECT 1");
	ef_status st = PQresultStatus(r) == PGRES_TUPLES_OK ? EF_OK : ef_db_fail(db, r, err);

	PQclear(r);
	return st;
}

static ef_status test_hold(ef_db *db, long long key, struct ef_error *err)
{
	char sql[96];
	PGresult *r;
	ef_status st;

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock_shared(%lld) /* EMBFILL_TEST_HOLD */",
		 key);
	r = PQexec(ef_db_pg(db), sql);
	st = PQresultStatus(r) == PGRES_TUPLES_OK ? EF_OK : ef_db_fail(db, r, err);
	PQclear(r);
	return st;
}

static void *counter(void *arg)
{
	struct ef_late_counts *lc = arg;
	struct ef_error *err = &lc->err;
	ef_session *s = NULL;
	ef_db *db;
	ef_status st;

	if (ef_session_open_within(lc->cfg, CONNECT_S, &s, err) != EF_OK)
		goto failed;
	db = ef_session_db(s);
	pthread_mutex_lock(&lc->mu);
	lc->cancel = PQgetCancel(ef_db_pg(db));
	st = lc->cancelled ? ef_error_set(err, EF_ERR_INTERRUPTED, "the counts were cancelled")
			   : EF_OK;
	pthread_mutex_unlock(&lc->mu);
	/* the snapshot is the transaction's first query's */
	if (st != EF_OK || ef_db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
				       err) != EF_OK || snapshot(db, err) != EF_OK)
		goto failed;
	set_stage(lc, SNAPSHOT);
	pthread_mutex_lock(&lc->mu);
	st = lc->cancelled ? ef_error_set(err, EF_ERR_INTERRUPTED, "the counts were cancelled")
			   : EF_OK;
	pthread_mutex_unlock(&lc->mu);
	if (st == EF_OK && lc->hold)
		st = test_hold(db, lc->hold, err);
	if (st != EF_OK || ef_scan_counts(s, lc->collection, &lc->before, err) != EF_OK ||
	    count_left(lc, db, err) != EF_OK)
		goto failed;
	ef_db_exec(db, "COMMIT", err);
	set_stage(lc, COUNTED);
	goto out;
failed:
	set_stage(lc, FAILED);
out:
	pthread_mutex_lock(&lc->mu);
	if (lc->cancel)
		PQfreeCancel(lc->cancel);
	lc->cancel = NULL;
	pthread_mutex_unlock(&lc->mu);
	ef_session_close(s);
	return NULL;
}

static void late_free(struct ef_late_counts *lc)
{
	pthread_mutex_destroy(&lc->mu);
	pthread_cond_destroy(&lc->cv);
	free(lc->collection);
	free(lc->count_sql);
	free(lc->after);
	free(lc->model);
	if (!lc->taken)
		free(lc->before.collection);
	free(lc);
}

static char *dup_opt(const char *s, bool *oom)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*oom = true;
	return d;
}

ef_status ef_late_counts_start(const struct ef_config *cfg, const char *collection,
			       const char *count_sql, const char *after, const char *model,
			       int dim, struct ef_late_counts **out, struct ef_error *err)
{
	struct ef_late_counts *lc = calloc(1, sizeof(*lc));
	bool oom = !lc;
	const char *hold;

	*out = NULL;
	if (oom)
		return ef_error_oom(err, "counting the collection");
	pthread_mutex_init(&lc->mu, NULL);
	pthread_cond_init(&lc->cv, NULL);
	lc->cfg = cfg;
	lc->dim = dim;
	hold = getenv("EMBFILL_TEST_HOLD");
	if (hold && strncmp(hold, "counts:", 7) == 0)
		lc->hold = atoll(hold + 7);
	lc->collection = dup_opt(collection, &oom);
	lc->count_sql = dup_opt(count_sql, &oom);
	lc->after = dup_opt(after, &oom);
	lc->model = dup_opt(model, &oom);
	if (oom) {
		late_free(lc);
		return ef_error_oom(err, "counting the collection");
	}
	if (pthread_create(&lc->thread, NULL, counter, lc) != 0) {
		late_free(lc);
		return ef_error_set(err, EF_ERR_NOMEM, "cannot start a thread to count "
				    "collection \"%s\"", collection);
	}
	*out = lc;
	return EF_OK;
}

bool ef_late_counts_snapshot(struct ef_late_counts *lc, int timeout_ms)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lc->mu);
	while (lc->stage == STARTING &&
	       pthread_cond_timedwait(&lc->cv, &lc->mu, &until) == 0)
		;
	ok = lc->stage == SNAPSHOT || lc->stage == COUNTED;
	pthread_mutex_unlock(&lc->mu);
	return ok;
}

ef_status ef_late_counts_instead(struct ef_late_counts *lc, ef_session *s,
				 struct ef_counts *before, long long *todo, struct ef_error *err)
{
	ef_status st = ef_scan_counts(s, lc->collection, before, err);

	if (st == EF_OK && (st = count_left(lc, ef_session_db(s), err)) == EF_OK)
		*todo = lc->todo;
	ef_late_counts_end(lc, true);
	return st;
}

int ef_late_counts_poll(struct ef_late_counts *lc, bool wait, struct ef_counts *before,
			long long *todo, struct ef_error *err)
{
	enum stage st;

	pthread_mutex_lock(&lc->mu);
	while (wait && (lc->stage == STARTING || lc->stage == SNAPSHOT))
		pthread_cond_wait(&lc->cv, &lc->mu);
	st = lc->stage;
	pthread_mutex_unlock(&lc->mu);
	if (st == FAILED) {
		*err = lc->err;
		return -1;
	}
	if (st != COUNTED || lc->taken)
		return 0;
	lc->taken = true;
	*before = lc->before;
	*todo = lc->todo;
	return 1;
}

void ef_late_counts_end(struct ef_late_counts *lc, bool cancel)
{
	char buf[256];

	if (!lc)
		return;
	pthread_mutex_lock(&lc->mu);
	if (cancel && lc->stage != COUNTED && lc->stage != FAILED) {
		lc->cancelled = true;
		if (lc->cancel)
			PQcancel(lc->cancel, buf, (int)sizeof(buf));
	}
	pthread_mutex_unlock(&lc->mu);
	/* at most CONNECT_S while it connects, else a cancelled query */
	pthread_join(lc->thread, NULL);
	late_free(lc);
}
