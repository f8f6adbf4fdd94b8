/*
 * lease.c - a run shared by several workers: its chunks cut into key
 * ranges (leases) in embfill's schema, and the workers that hold them.
 *
 * PostgreSQL is the only coordinator.  A worker claims the first free
 * lease with FOR UPDATE SKIP LOCKED, so two workers never wait on each
 * other nor take the same one; it checkpoints inside the lease in the same
 * transaction as every batch (lease_checkpoint(), which refuses the write
 * of a worker that no longer holds the lease, so nothing is written
 * twice), and renews the lease's heartbeat.  A lease whose heartbeat is
 * older than LEASE_TIMEOUT_S is claimable again, from its checkpoint: its
 * worker died, or lost the database.  The run is complete when every lease
 * is done; of the workers that find so, exactly one wins the update that
 * says it (the row lock on the run decides), and takes the after-counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "core/run/run_int.h"
#include "embfill/session.h"

static PGresult *lq(const struct ef_lease_ctx *c, const char *tpl, int n, const char *const *p,
		    ExecStatusType expect, struct ef_error *err)
{
	struct ef_sqlvars v = { .n = 0 };
	char *sql = NULL;
	PGresult *r = NULL;

	if (ef_sqlvars_raw(&v, "tool", c->tool) &&
	    ef_sqlvars_raw(&v, "ckint", c->int_key ? "(k.ck)[1]::bigint" : "NULL::bigint"))
		sql = ef_sqlvars_expand(&v, tpl);
	ef_sqlvars_free(&v);
	if (!sql) {
		ef_error_oom(err, NULL);
		return NULL;
	}
	r = ef_db_query(c->db, sql, n, p, expect, err);
	free(sql);
	return r;
}

static ef_status lexec(const struct ef_lease_ctx *c, const char *tpl, int n,
		       const char *const *p, struct ef_error *err)
{
	PGresult *r = lq(c, tpl, n, p, PGRES_TUPLES_OK, err);

	if (!r)
		return err->status;
	PQclear(r);
	return EF_OK;
}

static void ids(const struct ef_lease_ctx *c, char run[24], char worker[24])
{
	snprintf(run, 24, "%lld", c->run_id);
	snprintf(worker, 24, "%lld", c->worker_id);
}

/* --- making the leases ------------------------------------------------------ */

/*
 * The leases of a run in one statement: every LEASE_CHUNKS-th key of the
 * chunks to embed (in the key's own order, the order of the run's keysets)
 * ends a lease, and the last lease is open-ended, so that a chunk added
 * beyond the last key at the start still has one.  A boundary that is the
 * last chunk itself would leave an empty lease behind it: it is left out.
 * $1..$5 as the count statement (collection, after, model, dim) plus the
 * chunks per lease, $6 the run, $7 the chunks to embed.
 */
ef_status ef_lease_split(const struct ef_lease_ctx *c, const char *bounds, const char *coll,
			 const char *after, const char *model, int dim, long long per_lease,
			 long long todo, struct ef_error *err)
{
	static const char tpl[] =
		"WITH b AS (SELECT k, row_number() OVER (ORDER BY rn) AS i FROM (%s) s"
		"  WHERE rn %% $5::bigint = 0 AND rn < $7::bigint)"
		" INSERT INTO {tool}.leases (run_id, seq, lo_key, hi_key)"
		" SELECT $6::bigint, (i - 1)::int, lag(k, 1, $2::text[]) OVER (ORDER BY i), k FROM b"
		" UNION ALL"
		" SELECT $6::bigint, count(*)::int,"
		"  coalesce((SELECT k FROM b ORDER BY i DESC LIMIT 1), $2::text[]), NULL FROM b"
		" RETURNING seq";
	char d[16], per[24], run[24], worker[24], total[24], *sql = NULL;
	const char *p[7] = { coll, after, model, d, per, run, total };
	PGresult *r;

	ids(c, run, worker);
	snprintf(d, sizeof(d), "%d", dim);
	snprintf(per, sizeof(per), "%lld", per_lease > 0 ? per_lease : 1);
	snprintf(total, sizeof(total), "%lld", todo);
	if (asprintf(&sql, tpl, bounds) < 0)
		return ef_error_oom(err, NULL);
	r = lq(c, sql, 7, p, PGRES_TUPLES_OK, err);
	free(sql);
	if (!r)
		return err->status;
	PQclear(r);
	return EF_OK;
}

ef_status ef_lease_count(const struct ef_lease_ctx *c, long long *n, struct ef_error *err)
{
	char run[24], worker[24];
	const char *p[1] = { run };
	PGresult *r;

	ids(c, run, worker);
	r = lq(c, "SELECT count(*) FROM {tool}.leases WHERE run_id = $1::bigint", 1, p,
	       PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*n = ef_db_ll(r, 0, 0);
	PQclear(r);
	return EF_OK;
}

/* A resumed run had no worker alive (its lock was free): every lease one
 * of them held is free again, from its checkpoint, and a worker still
 * recorded as running was killed where it could not say so. */
ef_status ef_lease_reset(const struct ef_lease_ctx *c, struct ef_error *err)
{
	char run[24], worker[24];
	const char *p[1] = { run };

	ids(c, run, worker);
	return lexec(c, "WITH w AS (UPDATE {tool}.workers SET state = 'failed', finished_at ="
			" heartbeat_at WHERE run_id = $1::bigint AND state = 'running' RETURNING id)"
			" UPDATE {tool}.leases SET state = 'free', worker_id = NULL"
			" WHERE run_id = $1::bigint AND state = 'taken' RETURNING seq", 1, p, err);
}

/* A run of an older embfill resumed: what it did counts in its first lease. */
ef_status ef_lease_carry(const struct ef_lease_ctx *c, struct ef_error *err)
{
	char run[24], worker[24];
	const char *p[1] = { run };

	ids(c, run, worker);
	return lexec(c, "UPDATE {tool}.leases l SET done = r.done, written = r.written,"
			" quarantined = r.quarantined FROM {tool}.runs r WHERE r.id = l.run_id"
			" AND l.run_id = $1::bigint AND l.seq = 0 RETURNING l.seq", 1, p, err);
}

/* --- workers ----------------------------------------------------------------- */

ef_status ef_worker_add(struct ef_lease_ctx *c, const char *host, int pid, struct ef_error *err)
{
	char run[24], worker[24], spid[16];
	const char *p[3] = { run, host, spid };
	PGresult *r;

	ids(c, run, worker);
	snprintf(spid, sizeof(spid), "%d", pid);
	r = lq(c, "INSERT INTO {tool}.workers (run_id, host, pid) VALUES ($1::bigint, $2, $3::int)"
		  " RETURNING id", 3, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	c->worker_id = ef_db_ll(r, 0, 0);
	PQclear(r);
	return EF_OK;
}

ef_status ef_worker_update(const struct ef_lease_ctx *c, const char *state,
			   const struct ef_worker_tally *t, struct ef_error *err)
{
	char run[24], worker[24], done[24], wr[24], q[24], rate[32];
	const char *p[8] = { worker, state, done, wr, q, rate, t->endpoints, NULL };

	ids(c, run, worker);
	snprintf(done, sizeof(done), "%lld", t->done);
	snprintf(wr, sizeof(wr), "%lld", t->written);
	snprintf(q, sizeof(q), "%lld", t->quarantined);
	snprintf(rate, sizeof(rate), "%.3f", t->rate);
	return lexec(c, "UPDATE {tool}.workers SET heartbeat_at = now(), done = $3::bigint,"
			" written = $4::bigint, quarantined = $5::bigint, rate = $6::float8,"
			" endpoints = coalesce($7::jsonb, endpoints), state = coalesce($2, state),"
			" finished_at = CASE WHEN $2 IS NULL THEN NULL ELSE now() END"
			" WHERE id = $1::bigint RETURNING id", 7, p, err);
}

/* --- leases ------------------------------------------------------------------ */

static char *dup_or_null(const PGresult *r, int row, int col, bool *oom)
{
	char *s;

	if (PQgetisnull(r, row, col))
		return NULL;
	if (!(s = strdup(PQgetvalue(r, row, col))))
		*oom = true;
	return s;
}

void ef_lease_free(struct ef_lease *l)
{
	if (!l)
		return;
	free(l->lo);
	free(l->hi);
	free(l->scan_pos);
	free(l->range_d);
	free(l->was);
	free(l);
}

static struct ef_lease *lease_from(const PGresult *r)
{
	struct ef_lease *l = calloc(1, sizeof(*l));
	bool oom = false;

	if (!l)
		return NULL;
	l->seq = (int)ef_db_ll(r, 0, 0);
	l->lo = dup_or_null(r, 0, 1, &oom);
	l->hi = dup_or_null(r, 0, 2, &oom);
	l->scan_pos = dup_or_null(r, 0, 3, &oom);
	l->range_d = dup_or_null(r, 0, 4, &oom);
	l->done = ef_db_ll(r, 0, 5);
	l->taken_over = strcmp(PQgetvalue(r, 0, 6), "t") == 0;
	l->was = dup_or_null(r, 0, 7, &oom);
	if (oom || !l->range_d) {
		ef_lease_free(l);
		return NULL;
	}
	return l;
}

/*
 * The first lease that is free, or whose worker stopped renewing it for
 * LEASE_TIMEOUT_S: SKIP LOCKED passes over a lease another worker is
 * claiming or checkpointing right now, so claims never queue.  A lease is
 * resumed from its checkpoint (scan_pos), whoever made it.
 */
ef_status ef_lease_claim(const struct ef_lease_ctx *c, struct ef_lease **out,
			 struct ef_error *err)
{
	static const char sql[] =
		"WITH c AS (SELECT run_id, seq, state, worker_id FROM {tool}.leases"
		"  WHERE run_id = $1::bigint AND (state = 'free' OR (state = 'taken'"
		"   AND worker_id IS DISTINCT FROM $2::bigint"
		"   AND heartbeat_at < now() - $3::int * interval '1 second'))"
		"  ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
		" UPDATE {tool}.leases l SET state = 'taken', worker_id = $2::bigint,"
		"  heartbeat_at = now(), takeovers = l.takeovers + (c.state = 'taken')::int"
		" FROM c WHERE l.run_id = c.run_id AND l.seq = c.seq"
		" RETURNING l.seq, l.lo_key::text, l.hi_key::text,"
		"  coalesce(l.checkpoint_key, l.lo_key)::text,"
		"  '(' || coalesce(array_to_string(l.lo_key, '/'), 'start') || ', '"
		"  || coalesce(array_to_string(l.hi_key, '/'), 'end') || ']',"
		"  l.done, c.state = 'taken',"
		"  (SELECT w.host || ' pid ' || w.pid FROM {tool}.workers w WHERE w.id = c.worker_id)";
	char run[24], worker[24], timeout[16];
	const char *p[3] = { run, worker, timeout };
	PGresult *r;

	*out = NULL;
	ids(c, run, worker);
	snprintf(timeout, sizeof(timeout), "%d", c->timeout_s);
	r = lq(c, sql, 3, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	if (PQntuples(r) == 1 && !(*out = lease_from(r))) {
		PQclear(r);
		return ef_error_oom(err, "claiming a lease");
	}
	PQclear(r);
	return EF_OK;
}

/* Done: every chunk of it is written or quarantined.  A lease another
 * worker took over meanwhile stays as that worker has it. */
ef_status ef_lease_finish(const struct ef_lease_ctx *c, int seq, struct ef_error *err)
{
	char run[24], worker[24], sseq[16];
	const char *p[3] = { run, sseq, worker };

	ids(c, run, worker);
	snprintf(sseq, sizeof(sseq), "%d", seq);
	return lexec(c, "UPDATE {tool}.leases SET state = 'done', heartbeat_at = now(),"
			" finished_at = now() WHERE run_id = $1::bigint AND seq = $2::int"
			" AND worker_id = $3::bigint AND state = 'taken' RETURNING seq", 3, p, err);
}

/* A worker that stops hands its leases back at once, with their
 * checkpoints: the others need not wait out the timeout. */
ef_status ef_lease_release(const struct ef_lease_ctx *c, struct ef_error *err)
{
	char run[24], worker[24];
	const char *p[2] = { run, worker };

	ids(c, run, worker);
	return lexec(c, "UPDATE {tool}.leases SET state = 'free', worker_id = NULL"
			" WHERE run_id = $1::bigint AND worker_id = $2::bigint AND state = 'taken'"
			" RETURNING seq", 2, p, err);
}

/* Renews the heartbeat of the worker's leases; *held (up to max) are the
 * sequence numbers it still holds: one missing was taken over. */
ef_status ef_lease_beat(const struct ef_lease_ctx *c, int *held, size_t max, size_t *n,
			struct ef_error *err)
{
	char run[24], worker[24];
	const char *p[2] = { run, worker };
	PGresult *r;

	*n = 0;
	ids(c, run, worker);
	r = lq(c, "UPDATE {tool}.leases SET heartbeat_at = now() WHERE run_id = $1::bigint"
		  " AND worker_id = $2::bigint AND state = 'taken' RETURNING seq", 2, p,
	       PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r) && *n < max; i++)
		held[(*n)++] = (int)ef_db_ll(r, i, 0);
	PQclear(r);
	return EF_OK;
}

/* Leases not done yet, and of those the ones this worker could claim now. */
ef_status ef_lease_left(const struct ef_lease_ctx *c, long long *open, long long *claimable,
			struct ef_error *err)
{
	char run[24], worker[24], timeout[16];
	const char *p[3] = { run, worker, timeout };
	PGresult *r;

	ids(c, run, worker);
	snprintf(timeout, sizeof(timeout), "%d", c->timeout_s);
	r = lq(c, "SELECT count(*) FILTER (WHERE state <> 'done'), count(*) FILTER (WHERE"
		  " state = 'free' OR (state = 'taken' AND worker_id IS DISTINCT FROM $2::bigint"
		  " AND heartbeat_at < now() - $3::int * interval '1 second'))"
		  " FROM {tool}.leases WHERE run_id = $1::bigint", 3, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*open = ef_db_ll(r, 0, 0);
	*claimable = ef_db_ll(r, 0, 1);
	PQclear(r);
	return EF_OK;
}

/* --- the run's record -------------------------------------------------------- */

/*
 * The run's counters are the sums of its leases', and its checkpoint is
 * where the first lease not done stands (its checkpoint, or its start):
 * every chunk up to it is handled, whichever worker did it.  Once every
 * lease is done, the last checkpoint of all.  Retries and requests are
 * each worker's, added.  Returns whether a stop was asked for (`embfill
 * stop`), the run's done and total.
 */
ef_status ef_lease_sync(const struct ef_lease_ctx *c, long long retries, long long requests,
			struct ef_run_sync *out, struct ef_error *err)
{
	static const char sql[] =
		"WITH s AS (SELECT coalesce(sum(done), 0) AS done, coalesce(sum(written), 0) AS written,"
		"  coalesce(sum(quarantined), 0) AS quarantined,"
		"  bool_or(state <> 'done') AS open FROM {tool}.leases WHERE run_id = $1::bigint),"
		" k AS (SELECT CASE WHEN s.open THEN (SELECT coalesce(l.checkpoint_key, l.lo_key)"
		"   FROM {tool}.leases l WHERE l.run_id = $1::bigint AND l.state <> 'done'"
		"   ORDER BY l.seq LIMIT 1)"
		"  ELSE (SELECT l.checkpoint_key FROM {tool}.leases l WHERE l.run_id = $1::bigint"
		"   AND l.checkpoint_key IS NOT NULL ORDER BY l.seq DESC LIMIT 1) END AS ck,"
		"  s.open IS NOT NULL AS any FROM s)"
		" UPDATE {tool}.runs r SET done = s.done, written = s.written,"
		"  quarantined = s.quarantined, retries = r.retries + $2::bigint,"
		"  requests = r.requests + $3::bigint, heartbeat_at = now(),"
		"  checkpoint_key = CASE WHEN k.any THEN k.ck ELSE r.checkpoint_key END,"
		"  checkpoint_chunk_id = CASE WHEN k.any THEN {ckint} ELSE r.checkpoint_chunk_id END"
		" FROM s, k WHERE r.id = $1::bigint"
		" RETURNING r.stop_requested, r.done, r.total, r.state";
	char run[24], worker[24], re[24], rq[24];
	const char *p[3] = { run, re, rq };
	PGresult *r;

	memset(out, 0, sizeof(*out));
	ids(c, run, worker);
	snprintf(re, sizeof(re), "%lld", retries);
	snprintf(rq, sizeof(rq), "%lld", requests);
	r = lq(c, sql, 3, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	if (PQntuples(r) == 1) {
		out->stop_requested = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		out->done = ef_db_ll(r, 0, 1);
		out->total = ef_db_ll(r, 0, 2);
		snprintf(out->state, sizeof(out->state), "%s", PQgetvalue(r, 0, 3));
	}
	PQclear(r);
	return EF_OK;
}

/*
 * Of the workers that find every lease done, the first to update the run
 * says it is complete; the others see its state changed when the row lock
 * is theirs, update nothing, and *won stays false.
 */
ef_status ef_lease_complete(const struct ef_lease_ctx *c, bool *won, struct ef_error *err)
{
	char run[24], worker[24];
	const char *p[1] = { run };
	PGresult *r;

	*won = false;
	ids(c, run, worker);
	r = lq(c, "UPDATE {tool}.runs SET state = 'completed', finished_at = now(),"
		  " heartbeat_at = now(), error = NULL WHERE id = $1::bigint AND state = 'running'"
		  " AND NOT EXISTS (SELECT 1 FROM {tool}.leases WHERE run_id = $1::bigint"
		  " AND state <> 'done') RETURNING id", 1, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*won = PQntuples(r) == 1;
	PQclear(r);
	return EF_OK;
}

/* The live workers of the run (heartbeat within the timeout), with the
 * leases they hold. */
ef_status ef_lease_workers(const struct ef_lease_ctx *c, struct ef_run_worker *out, size_t max,
			   size_t *n, struct ef_error *err)
{
	static const char sql[] =
		"SELECT w.id, w.host, w.pid, w.done, w.rate,"
		" extract(epoch FROM now() - w.heartbeat_at)::float8,"
		" coalesce((SELECT string_agg('(' || coalesce(array_to_string(l.lo_key, '/'), 'start')"
		"  || ', ' || coalesce(array_to_string(l.hi_key, '/'), 'end') || ']', ' '"
		"  ORDER BY l.seq) FROM {tool}.leases l WHERE l.run_id = w.run_id"
		"  AND l.worker_id = w.id AND l.state = 'taken'), '-'),"
		" coalesce((SELECT sum(l.done) FROM {tool}.leases l WHERE l.run_id = w.run_id"
		"  AND l.worker_id = w.id AND l.state = 'taken'), 0)"
		" FROM {tool}.workers w WHERE w.run_id = $1::bigint AND w.state = 'running'"
		" AND w.heartbeat_at > now() - $2::int * interval '1 second' ORDER BY w.id";
	char run[24], worker[24], timeout[16];
	const char *p[2] = { run, timeout };
	PGresult *r;

	*n = 0;
	ids(c, run, worker);
	snprintf(timeout, sizeof(timeout), "%d", c->timeout_s);
	r = lq(c, sql, 2, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r) && *n < max; i++) {
		struct ef_run_worker *w = &out[(*n)++];

		memset(w, 0, sizeof(*w));
		w->id = ef_db_ll(r, i, 0);
		snprintf(w->host, sizeof(w->host), "%s", PQgetvalue(r, i, 1));
		w->pid = (int)ef_db_ll(r, i, 2);
		w->done = ef_db_ll(r, i, 3);
		w->rate = strtod(PQgetvalue(r, i, 4), NULL);
		w->heartbeat_age_s = strtod(PQgetvalue(r, i, 5), NULL);
		snprintf(w->lease, sizeof(w->lease), "%s", PQgetvalue(r, i, 6));
		w->lease_done = ef_db_ll(r, i, 7);
		w->me = w->id == c->worker_id;
		snprintf(w->state, sizeof(w->state), "running");
	}
	PQclear(r);
	return EF_OK;
}

/* --- the active run, for status and stop ------------------------------------- */

static ef_status live_ctx(ef_session *s, const char *collection, struct ef_lease_ctx *c,
			  char **tool, PGresult **run, struct ef_error *err)
{
	const struct ef_config *cfg = ef_session_config(s);
	const char *p[1] = { collection };

	*run = NULL;
	memset(c, 0, sizeof(*c));
	if (ef_session_require(s, EF_NEED_TOOL, err) != EF_OK ||
	    ef_run_sql_build_tool(ef_session_db(s), cfg, tool, err) != EF_OK)
		return err->status;
	c->db = ef_session_db(s);
	c->tool = *tool;
	c->timeout_s = cfg->lease_timeout_s;
	*run = lq(c, "SELECT id, coalesce(host, '?'), to_char(started_at AT TIME ZONE 'UTC',"
		     " 'YYYY-MM-DD HH24:MI:SS'), done, total, stop_requested,"
		     " (SELECT count(*) FROM {tool}.leases l WHERE l.run_id = r.id),"
		     " (SELECT count(*) FROM {tool}.leases l WHERE l.run_id = r.id"
		     "  AND l.state = 'done'),"
		     " (SELECT count(*) FROM {tool}.leases l WHERE l.run_id = r.id"
		     "  AND l.state = 'taken')"
		     " FROM {tool}.runs r WHERE collection = $1 AND state = 'running'"
		     " ORDER BY id DESC LIMIT 1", 1, p, PGRES_TUPLES_OK, err);
	if (!*run)
		return err->status;
	if (PQntuples(*run) == 1)
		c->run_id = ef_db_ll(*run, 0, 0);
	return EF_OK;
}

ef_status ef_run_live(ef_session *s, const char *collection, struct ef_run_live *out,
		      struct ef_error *err)
{
	struct ef_lease_ctx c;
	char *tool = NULL;
	PGresult *r = NULL;
	size_t n = 0;
	ef_status st;

	memset(out, 0, sizeof(*out));
	st = live_ctx(s, collection, &c, &tool, &r, err);
	if (st == EF_OK && c.run_id) {
		out->run_id = c.run_id;
		snprintf(out->host, sizeof(out->host), "%s", PQgetvalue(r, 0, 1));
		snprintf(out->started_at, sizeof(out->started_at), "%s", PQgetvalue(r, 0, 2));
		out->done = ef_db_ll(r, 0, 3);
		out->total = ef_db_ll(r, 0, 4);
		out->stop_requested = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
		out->leases = ef_db_ll(r, 0, 6);
		out->leases_done = ef_db_ll(r, 0, 7);
		out->leases_taken = ef_db_ll(r, 0, 8);
		st = ef_lease_workers(&c, out->workers, EF_RUN_MAX_WORKERS, &n, err);
		out->nworkers = (int)n;
	}
	PQclear(r);
	free(tool);
	return st;
}

ef_status ef_run_request_stop(ef_session *s, const char *collection, long long *run_id,
			      int *workers, struct ef_error *err)
{
	struct ef_run_worker w[EF_RUN_MAX_WORKERS];
	struct ef_lease_ctx c;
	char *tool = NULL, id[24];
	const char *p[1] = { id };
	PGresult *r = NULL;
	size_t n = 0;
	ef_status st;

	*run_id = 0;
	*workers = 0;
	st = live_ctx(s, collection, &c, &tool, &r, err);
	PQclear(r);
	if (st == EF_OK && c.run_id) {
		*run_id = c.run_id;
		snprintf(id, sizeof(id), "%lld", c.run_id);
		st = lexec(&c, "UPDATE {tool}.runs SET stop_requested = true WHERE id = $1::bigint"
			       " RETURNING id", 1, p, err);
		if (st == EF_OK)
			st = ef_lease_workers(&c, w, EF_RUN_MAX_WORKERS, &n, err);
		*workers = (int)n;
	}
	free(tool);
	return st;
}
