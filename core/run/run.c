/*
 * run.c - the backfill loop.
 *
 * One loop on one thread: claim a lease (a key range of the run, lease.c),
 * fetch a keyset batch from it, submit it to the embedding pool, and
 * whenever the pool hands back a finished batch, write its vectors and the
 * lease's checkpoint in one transaction.  Up to EMBED_CONCURRENCY batches
 * per endpoint are in flight, so memory is bounded by batch size x
 * concurrency x endpoints whatever the collection's size.
 *
 * Batches can finish out of order.  A lease's checkpoint is the last key of
 * the longest prefix of its written batches, committed in the same
 * transaction as the batch that completes the prefix: after a crash at any
 * point every committed batch is either behind the checkpoint or already
 * fresh (and so not selected again), and nothing behind the checkpoint is
 * unwritten.  Another worker that takes the lease over starts there.
 */
#include <arpa/inet.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/run/run_int.h"
#include "embfill/recipe.h"
#include "embfill/redact.h"
#include "embfill/sanitize.h"
#include "embfill/registry.h"
#include "embfill/session.h"
#include "embfill/run.h"
#include "embfill/schema.h"
#include "embfill/strbuf.h"

#define FLOAT4ARRAYOID 1021
#define RATE_WINDOW 64
#define LOCK_ALONE 1              /* exclusive: starting a run, nobody else in it */
#define LOCK_SHARED 2             /* one of the run's workers */
#define BEAT_MAX_S 1.0            /* heartbeat at least this often */
#define JOIN_WAIT_S 30            /* a joining worker waits this long for the run's set-up */

/* A batch's keys are kept as the text of each key column (the second is
 * NULL for a one-column key): what the statements cast back to the key's
 * types, and what embfill's own tables hold. */
struct batch {
	char *last_key;           /* the last key as a text[] literal: the keyset position */
	char *first_d, *last_d;   /* the first and last key, for the log */
	size_t n;
	char **k1, **k2;
	char **texts;
	char **hashes;
	char **bad;               /* why a text cannot be sent (not UTF-8), or NULL */
	size_t nbad;
	char **good;              /* the texts sent, when some are bad */
	size_t *good_at;          /* ... and where each one's vector goes */
	struct ef_lease *lease;   /* the key range it was fetched from */
	bool written;             /* written, or dropped with a lost lease */
	size_t n_rejected;        /* known once embedded */
	unsigned retries, splits;
	struct batch *next;
};

struct engine {
	ef_session *s;
	const struct ef_config *cfg;
	const struct ef_embed_config *ecfg;
	const struct ef_run_opts *o;
	struct ef_run_result *res;
	ef_db *db;
	PGconn *pg;
	struct ef_schema sc;
	int locked;               /* the collection's run lock this process holds:
				     0 none, LOCK_ALONE or LOCK_SHARED */
	struct ef_run_sql sql;
	char *coll_value;         /* the collection as its rows carry it */
	unsigned vec_elem_oid;    /* the type the vectors travel as (vector for halfvec) */
	long hold_commit;         /* EMBFILL_TEST_HOLD (hold_init) */
	long batches_sent;
	bool hold_final;
	char stmt[48];            /* the prepared upsert's name */
	char book_stmt[48];       /* the prepared bookkeeping's; "" when not needed */
	ef_embed_pool *pool;
	long long run_id;
	struct ef_lease_ctx lc;     /* the run's leases and this worker */
	struct ef_lease *leases;    /* claimed by this worker, newest first */
	struct ef_lease *fetching;  /* the lease batches are fetched from now */
	double next_claim;          /* no lease was free: when to look again */
	double next_beat;           /* when the heartbeat is due */
	bool lease_lost;            /* a write was refused: its lease is another's now */
	bool all_done;              /* no lease of the run is open */
	bool stop_asked;            /* `embfill stop` asked every worker to stop */
	bool ref_stored;            /* the run holds the reference vectors */
	int batch_size;             /* the run's: a joining worker takes its creator's */
	long long synced_retries, synced_requests;
	long long others_done;      /* done by the run's other workers and earlier ones */
	long long mine_written, mine_quarantined;
	char *run_provider, *run_url; /* the run's service, when another process made it */
	struct batch *head, *tail;  /* every batch not yet behind its lease's checkpoint,
				       in the order fetched */
	struct batch *next_submit;  /* first fetched batch not yet given to the pool */
	unsigned nready;            /* fetched, not yet submitted */
	unsigned inflight;          /* given to the pool, not answered yet */
	struct ef_embed_result **held; /* answered, waiting for the database: oldest first */
	unsigned held_max;          /* its room: every endpoint's concurrency */
	bool unquarantine;          /* the collection had quarantined chunks when the run
				       started: a written batch takes its chunks out */
	unsigned nheld;
	struct batch *pending;      /* written, its results not yet read */
	int pending_sent;
	bool pending_synced;        /* ... read up to the pipeline's sync */
	int pending_nulls;          /* NULL results in a row (two: nothing more to read) */
	ef_status pending_st;       /* its first failure */
	struct ef_error pending_err;
	const struct batch *pending_ckpt; /* the batch whose last key the pending write
					     makes the checkpoint; NULL: unchanged */
	struct ef_run_progress prog;
	struct ef_run_worker seen[EF_RUN_MAX_WORKERS]; /* the run's workers at the last beat */
	int nseen;
	struct timespec t0;
	double last_cb;
	double win_t[RATE_WINDOW];
	long long win_done[RATE_WINDOW];
	int win_n;
	long long base_done;      /* done before this process (resumed runs) */
	struct ef_late_counts *late; /* a resumed run's counts, taken beside it */
	bool late_snap;           /* ... from a snapshot that exists already */
};

static ef_status late_counts(struct engine *e, bool wait, struct ef_error *err);
static ef_status late_instead(struct engine *e, struct ef_error *err);

/* How long the first write waits for the snapshot of the counts beside a
 * resumed run before it counts on its own connection instead. */
#define LATE_SNAPSHOT_MS 3000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool flag(const atomic_int *f)
{
	return f && atomic_load(f) != 0;
}

/* --- progress ----------------------------------------------------------- */

static void logf_(struct engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(struct engine *e, const char *fmt, ...)
{
	struct ef_run_progress *p = &e->prog;
	char line[EF_RUN_LOG_WIDTH];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (p->nlog == EF_RUN_LOG_LINES) {
		memmove(p->log[0], p->log[1], sizeof(p->log[0]) * (EF_RUN_LOG_LINES - 1));
		p->nlog--;
	}
	ef_redact_buf(line, p->log[p->nlog++], EF_RUN_LOG_WIDTH);
	p->nlogged++;
}

/* Rate over the last ten seconds or so: a window of samples, so that a
 * pause or a slow spell shows in the rate and the ETA within seconds. */
static void update_rate(struct engine *e, double t)
{
	int i;

	if (e->win_n == RATE_WINDOW) {
		memmove(e->win_t, e->win_t + 1, sizeof(e->win_t[0]) * (RATE_WINDOW - 1));
		memmove(e->win_done, e->win_done + 1, sizeof(e->win_done[0]) * (RATE_WINDOW - 1));
		e->win_n--;
	}
	e->win_t[e->win_n] = t;
	e->win_done[e->win_n++] = e->prog.done;
	for (i = 0; i < e->win_n - 1 && t - e->win_t[i] > 10.0; i++)
		;
	if (t - e->win_t[i] > 0.2)
		e->prog.rate = (double)(e->prog.done - e->win_done[i]) / (t - e->win_t[i]);
	e->prog.eta_s = e->prog.rate > 0 ? (double)(e->prog.total - e->prog.done) / e->prog.rate
					 : -1;
}

/* Each endpoint as the pool sees it, whether the run waits for the
 * service, and what the pool noted for the log. */
static void report_service(struct engine *e)
{
	struct ef_embed_endpoint_stat es[EF_RUN_MAX_ENDPOINTS];
	struct ef_run_progress *p = &e->prog;
	size_t n = ef_embed_pool_endpoints(e->pool, es, EF_RUN_MAX_ENDPOINTS);
	char note[EF_RUN_LOG_WIDTH];

	p->nendpoints = (int)n;
	for (size_t i = 0; i < n; i++) {
		struct ef_run_endpoint *x = &p->endpoints[i];

		snprintf(x->url, sizeof(x->url), "%.95s", es[i].url);
		snprintf(x->state, sizeof(x->state), "%s", ef_embed_ep_state_name(es[i].state));
		x->in_flight = es[i].in_flight;
		x->capacity = es[i].capacity;
		x->rate = es[i].rate;
		x->requests = es[i].requests;
		x->errors = es[i].errors;
		x->retry_in_s = es[i].retry_in_s;
	}
	p->concurrency = ef_embed_pool_capacity(e->pool);
	p->waiting = ef_embed_pool_waiting(e->pool, &p->waiting_since, &p->retry_in_s);
	while (ef_embed_pool_note(e->pool, note, sizeof(note)))
		logf_(e, "%s", note);
}

static void report(struct engine *e, bool force)
{
	double t = now_s();
	struct ef_embed_counters c;
	int every = e->o->progress_ms > 0 ? e->o->progress_ms : 250;

	if (!force && (t - e->last_cb) * 1000 < every)
		return;
	e->last_cb = t;
	if (e->pool) {
		ef_embed_pool_counters(e->pool, &c);
		e->prog.in_flight = c.in_flight;
		e->prog.retries = (long long)c.retries;
		e->prog.requests = (long long)c.requests;
		e->res->parse_s = c.parse_ms / 1e3;
		report_service(e);
	}
	e->prog.parse_s = e->res->parse_s;
	e->prog.service_s = e->res->service_s;
	e->prog.db_s = e->res->write_s + e->res->fetch_s;
	e->prog.run_done = e->others_done + e->prog.done;
	e->prog.elapsed_s = t - ((double)e->t0.tv_sec + (double)e->t0.tv_nsec / 1e9);
	update_rate(e, t);
	if (e->o->on_progress)
		e->o->on_progress(&e->prog, e->o->ctx);
}

/* --- batches -------------------------------------------------------------- */

static void batch_free_data(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->texts[i]);
		free(b->bad ? b->bad[i] : NULL);
		free(b->hashes[i]);
		free(b->k1[i]);
		if (b->k2)
			free(b->k2[i]);
	}
	free(b->texts);
	free(b->hashes);
	free(b->k1);
	free(b->k2);
	free(b->bad);
	free(b->good);
	free(b->good_at);
	b->texts = b->hashes = b->k1 = b->k2 = b->bad = b->good = NULL;
	b->good_at = NULL;
	b->n = b->nbad = 0;
}

static void batch_free(struct batch *b)
{
	batch_free_data(b);
	free(b->last_key);
	free(b->first_d);
	free(b->last_d);
	free(b);
}

/* The key of row i as the text[] literal embfill's tables hold. */
static char *key_literal(const struct batch *b, size_t i)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;

	ef_strbuf_add(&sb, "{");
	ef_collsql_array_elem(&sb, b->k1[i]);
	if (b->k2)
		ef_collsql_array_elem(&sb, b->k2[i]);
	ef_strbuf_add(&sb, "}");
	return ef_strbuf_take(&sb);
}

/* The key of row i for a person: "7", or "7/2". */
static char *key_display(const struct batch *b, size_t i)
{
	char *out = NULL;

	if (asprintf(&out, "%s%s%s", b->k1[i], b->k2 ? "/" : "", b->k2 ? b->k2[i] : "") < 0)
		return NULL;
	return out;
}

static struct batch *batch_new(int n, bool two)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->k1 = calloc((size_t)n, sizeof(*b->k1));
	b->k2 = two ? calloc((size_t)n, sizeof(*b->k2)) : NULL;
	b->texts = calloc((size_t)n, sizeof(*b->texts));
	b->hashes = calloc((size_t)n, sizeof(*b->hashes));
	if (!b->k1 || (two && !b->k2) || !b->texts || !b->hashes) {
		batch_free(b);
		return NULL;
	}
	return b;
}

/* A text that is not UTF-8 (a database whose encoding is SQL_ASCII stores
 * any bytes) cannot be sent: no service takes it, and JSON cannot carry
 * it.  It is quarantined with the offset of its first bad byte. */
static char *not_utf8(const char *s, size_t len)
{
	char *why = NULL;
	size_t off = 0;
	uint32_t cp;

	while (off < len) {
		size_t n = ef_utf8_char((const unsigned char *)s + off, len - off, &cp);

		if (!n) {
			if (asprintf(&why, "the chunk's text is not valid UTF-8 (byte 0x%02x at offset "
				     "%zu); fix its encoding, then run with --retry-quarantined",
				     (unsigned char)s[off], off) < 0)
				why = NULL;
			return why ? why : strdup("the chunk's text is not valid UTF-8");
		}
		off += n;
	}
	return NULL;
}

/* The texts that can be sent, when some cannot: a compact array for the
 * service, and where each answer goes back. */
static bool split_bad(struct batch *b)
{
	size_t k = 0;

	b->good = calloc(b->n - b->nbad + 1, sizeof(*b->good));
	b->good_at = calloc(b->n - b->nbad + 1, sizeof(*b->good_at));
	if (!b->good || !b->good_at)
		return false;
	for (size_t i = 0; i < b->n; i++)
		if (!b->bad[i]) {
			b->good[k] = b->texts[i];
			b->good_at[k++] = i;
		}
	return true;
}

/* The batch's keys, hashes and texts (rows from..from+n-1 of r), each text
 * as the recipe gives it to the model (its document prefix before it). */
static bool fill_batch(struct batch *b, const PGresult *r, int from, int n, const char *prefix)
{
	for (int i = 0; i < n; i++) {
		const char *text = PQgetvalue(r, from + i, 2);
		char *why = not_utf8(text, (size_t)PQgetlength(r, from + i, 2));

		if (why) {
			if (!b->bad && !(b->bad = calloc((size_t)n, sizeof(*b->bad)))) {
				free(why);
				return false;
			}
			b->bad[i] = why;
			b->nbad++;
		}
		b->k1[i] = strdup(PQgetvalue(r, from + i, 0));
		if (b->k2)
			b->k2[i] = strdup(PQgetvalue(r, from + i, 1));
		b->texts[i] = ef_recipe_apply(prefix, text);
		b->hashes[i] = strdup(PQgetvalue(r, from + i, 3));
		b->n++;
		if (!b->k1[i] || (b->k2 && !b->k2[i]) || !b->texts[i] || !b->hashes[i])
			return false;
	}
	if (b->nbad && b->nbad < b->n && !split_bad(b))
		return false;
	b->last_key = key_literal(b, b->n - 1);
	b->first_d = key_display(b, 0);
	b->last_d = key_display(b, b->n - 1);
	return b->last_key && b->first_d && b->last_d;
}

static void enqueue(struct engine *e, struct batch *b)
{
	if (e->tail)
		e->tail->next = b;
	else
		e->head = b;
	e->tail = b;
	if (!e->next_submit)
		e->next_submit = b;
	e->nready++;
}

/* Cuts the rows of one keyset query of lease l into batches of the run's
 * size, each the lease's. */
static ef_status split_rows(struct engine *e, struct ef_lease *l, const PGresult *r,
			    struct ef_error *err)
{
	int n = PQntuples(r), size = e->batch_size;

	for (int from = 0; from < n; from += size) {
		int k = n - from < size ? n - from : size;
		struct batch *b = batch_new(k, e->cfg->map.nkey > 1);

		if (!b || !fill_batch(b, r, from, k, e->cfg->doc_prefix)) {
			if (b)
				batch_free(b);
			return ef_error_oom(err, "reading a batch of chunks");
		}
		free(l->scan_pos);
		if (!(l->scan_pos = strdup(b->last_key))) {
			batch_free(b);
			return ef_error_oom(err, NULL);
		}
		b->lease = l;
		l->outstanding++;
		enqueue(e, b);
	}
	return EF_OK;
}

/* Up to `batches` batches of lease l from one keyset query: one round trip
 * and one plan for all of them; fewer rows than asked for are the lease's
 * last.  *got: how many rows came. */
static ef_status fetch(struct engine *e, struct ef_lease *l, unsigned batches, int *got,
		       struct ef_error *err)
{
	char model_dim[16], limit[24];
	const char *p[6] = { e->o->collection, l->scan_pos, e->cfg->embed_model, model_dim,
			     limit, l->hi };
	long long want = (long long)e->batch_size * batches;
	PGresult *r;
	ef_status st;

	*got = 0;
	snprintf(model_dim, sizeof(model_dim), "%d", e->cfg->embed_dim);
	snprintf(limit, sizeof(limit), "%lld", want);
	r = ef_db_query(e->db, e->sql.select, 6, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*got = PQntuples(r);
	l->exhausted = *got < want;
	st = split_rows(e, l, r, err);
	PQclear(r);
	return st;
}

static ef_status close_lease(struct engine *e, struct ef_lease *l, struct ef_error *err);

/*
 * No lease is free: the run is done when none is open; one that others
 * hold is waited for (and taken over if its worker goes silent), so that
 * the run ends with a worker alive to end it.
 */
static ef_status no_lease(struct engine *e, struct ef_error *err)
{
	long long open = 0, claimable = 0;

	e->fetching = NULL;
	if (ef_lease_left(&e->lc, &open, &claimable, err) != EF_OK)
		return err->status;
	e->all_done = open == 0;
	e->next_claim = claimable ? 0 : now_s() + 1.0;
	if (open && !claimable)
		snprintf(e->prog.lease, sizeof(e->prog.lease), "none free: the other workers "
			 "hold the rest");
	return EF_OK;
}

/* The next lease of the run: a free one, or one whose worker stopped
 * renewing it, from its checkpoint.  None free: look again later. */
static ef_status claim(struct engine *e, struct ef_error *err)
{
	struct ef_lease *l;

	if (ef_lease_claim(&e->lc, &l, err) != EF_OK)
		return err->status;
	if (!l)
		return no_lease(e, err);
	e->all_done = false;
	l->next = e->leases;
	e->leases = l;
	e->fetching = l;
	snprintf(e->prog.lease, sizeof(e->prog.lease), "%s", l->range_d);
	if (l->taken_over)
		logf_(e, "lease %s taken over from %s at its checkpoint (%lld chunks done)",
		      l->range_d, l->was ? l->was : "a worker gone", l->done);
	return EF_OK;
}

/* Fetches batches ahead, up to the pool's capacity + 2 of them, so that
 * most turns of the loop need no query and a batch's write can run on the
 * server while the next response is parsed here; a lease that runs out
 * gives way to the next one. */
static ef_status refill(struct engine *e, struct ef_error *err)
{
	unsigned want = ef_embed_pool_capacity(e->pool) + 2;

	while (e->nready < want) {
		double t0;
		ef_status st;
		int got;

		if (!e->fetching || e->fetching->exhausted || e->fetching->lost) {
			time_t since;
			double retry;

			/* no new lease while this worker's service is away: the
			 * others embed them meanwhile */
			if (now_s() < e->next_claim ||
			    ef_embed_pool_waiting(e->pool, &since, &retry))
				return EF_OK;
			if (claim(e, err) != EF_OK)
				return err->status;
			if (!e->fetching)
				return EF_OK;
		}
		t0 = now_s();
		st = fetch(e, e->fetching, want - e->nready, &got, err);
		e->res->fetch_s += now_s() - t0;
		if (st != EF_OK)
			return err->status;
		if (got == 0 && close_lease(e, e->fetching, err) != EF_OK)
			return err->status;
	}
	return EF_OK;
}

static ef_status finish_batch(struct engine *e, struct ef_embed_result *res,
			      struct ef_error *err);

/*
 * The batch's result as the writer takes it, when some of its texts were
 * not sent: the service's answers (sent, NULL when none was sent) put back
 * in place, and the texts that were not sent rejected with their reason.
 */
static struct ef_embed_result *with_bad(struct batch *b, const struct ef_embed_result *sent,
					int dim)
{
	struct ef_embed_result *r = calloc(1, sizeof(*r));
	size_t k = 0;

	if (!r)
		return NULL;
	r->tag = b;
	r->n = b->n;
	r->dim = sent ? sent->dim : dim;
	r->vectors = calloc(b->n * (size_t)r->dim + 1, sizeof(float));
	r->rejected = calloc(b->n + 1, 1);
	r->reasons = calloc(b->n + 1, sizeof(char *));
	if (!r->vectors || !r->rejected || !r->reasons) {
		ef_embed_result_free(r);
		return NULL;
	}
	if (sent) {
		r->retries = sent->retries;
		r->splits = sent->splits;
		r->elapsed_ms = sent->elapsed_ms;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (b->bad[i]) {
			r->rejected[i] = 1;
			r->reasons[i] = strdup(b->bad[i]);
			r->n_rejected++;
			continue;
		}
		memcpy(r->vectors + i * (size_t)r->dim, sent->vectors + k * (size_t)r->dim,
		       (size_t)r->dim * sizeof(float));
		if (sent->rejected[k]) {
			r->rejected[i] = 1;
			r->reasons[i] = sent->reasons[k] ? strdup(sent->reasons[k]) : NULL;
			r->n_rejected++;
		}
		k++;
	}
	return r;
}

/*
 * Batches go to the pool while fewer than EMBED_CONCURRENCY are on the
 * wire or answered and waiting for the database (`held`): what a crash
 * can lose, and what memory holds, stays one window of batch size x
 * concurrency (the crash test counts it).
 */
static ef_status submit_ready(struct engine *e, struct ef_error *err)
{
	unsigned k = ef_embed_pool_capacity(e->pool);

	while (e->inflight + e->nheld < k && e->next_submit) {
		struct batch *b = e->next_submit;
		ef_status st = EF_OK;

		e->next_submit = b->next;
		e->nready--;
		if (b->lease->lost) {
			b->written = true;
			b->lease->outstanding--;
			continue;
		}
		if (b->nbad == b->n) {
			/* nothing to send: quarantined as it is, never in flight */
			struct ef_embed_result *r = with_bad(b, NULL, e->cfg->embed_dim);

			if (!r)
				return ef_error_oom(err, "quarantining chunks");
			st = finish_batch(e, r, err);
			ef_embed_result_free(r);
		} else {
			st = b->nbad ? ef_embed_pool_submit(e->pool, b, (const char *const *)b->good,
							    b->n - b->nbad, err)
				     : ef_embed_pool_submit(e->pool, b, (const char *const *)b->texts,
							    b->n, err);
			if (st == EF_OK)
				e->inflight++;
		}
		if (st != EF_OK)
			return err->status;
	}
	return EF_OK;
}

/* --- writing ------------------------------------------------------------ */

/* Reads one pipelined command's result and the NULL that ends it. */
static ef_status pipe_result(struct engine *e, struct ef_error *err)
{
	PGresult *r = PQgetResult(e->pg), *x;
	ef_status st = EF_OK;

	if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK))
		st = ef_db_fail(e->db, r, err);
	if (r && strcmp(ef_db_sqlstate(r), "EF001") == 0)
		e->lease_lost = true;
	PQclear(r);
	if (r)
		while ((x = PQgetResult(e->pg)) != NULL)
			PQclear(x);
	return st;
}

/* One column of the rows to write (a key part, or the hashes), as a text
 * array literal; rejected rows are left out. */
static char *text_array(const struct batch *b, const struct ef_embed_result *res,
			char *const *col)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;

	ef_strbuf_add(&sb, "{");
	for (size_t i = 0; i < b->n; i++)
		if (!res->rejected[i])
			ef_collsql_array_elem(&sb, col[i]);
	ef_strbuf_add(&sb, "}");
	return ef_strbuf_take(&sb);
}

/* The batch's vectors, and their bookkeeping where the table has no
 * column for it: both prepared statements take the same parameters. */
static int send_vectors(struct engine *e, const struct batch *b, const struct ef_embed_result *res,
			const char *run)
{
	bool pgv = e->sc.vec_type == EF_VEC_PGVECTOR || e->sc.vec_type == EF_VEC_HALFVEC;
	size_t veclen = 0;
	unsigned char *vecs = ef_vec_batch_binary(res->vectors, b->n, res->dim, res->rejected, pgv,
						  e->vec_elem_oid, &veclen);
	char *k1 = text_array(b, res, b->k1), *k2 = b->k2 ? text_array(b, res, b->k2) : NULL;
	char *hashes = text_array(b, res, b->hashes), dim[16];
	const char *values[9] = { k1, e->coll_value, e->cfg->embed_model, dim, hashes,
				  (const char *)vecs, run, k2, e->cfg->recipe_id };
	int lengths[9] = { 0, 0, 0, 0, 0, (int)veclen, 0, 0, 0 };
	int formats[9] = { 0, 0, 0, 0, 0, 1, 0, 0, 0 };
	int sent = 0;

	snprintf(dim, sizeof(dim), "%d", res->dim);
	if (vecs && k1 && hashes && (k2 || !b->k2)) {
		sent = PQsendQueryPrepared(e->pg, e->stmt, 9, values, lengths, formats, 0) == 1;
		if (e->book_stmt[0])
			sent += PQsendQueryPrepared(e->pg, e->book_stmt, 9, values, lengths, formats,
						    0) == 1;
	}
	free(vecs);
	free(k1);
	free(k2);
	free(hashes);
	return sent;
}

static bool send_quarantine(struct engine *e, const struct batch *b, size_t i,
			    const struct ef_embed_result *res, const char *run)
{
	char reason[512], *key = key_literal(b, i);
	const char *p[5] = { e->o->collection, key, reason, b->hashes[i], run };
	bool sent;

	ef_redact_buf(res->reasons[i] ? res->reasons[i] : "rejected by the service", reason,
		      sizeof(reason));
	sent = key && PQsendQueryParams(e->pg, e->sql.quarantine, 5, NULL, p, NULL, NULL, 0) == 1;
	free(key);
	return sent;
}

/* The batch whose last key is the lease's checkpoint once b is written:
 * the end of the written prefix of b's lease; NULL when b does not extend
 * it. */
static const struct batch *prefix_end(const struct engine *e, const struct batch *b)
{
	const struct batch *end = NULL;

	for (const struct batch *x = e->head; x; x = x->next) {
		if (x->lease != b->lease)
			continue;
		if (!x->written && x != b)
			break;
		end = x;
	}
	return end;
}

/*
 * The crash test (tests/crash/run.sh) kills a run where nothing else can
 * stop it: between a batch's writes and their commit, and during the final
 * counts.  EMBFILL_TEST_HOLD=commit:K holds the K-th batch this process
 * writes in its open transaction; EMBFILL_TEST_HOLD=final holds before the
 * after-counts.  The hold is a long sleep on the server, which notices the
 * killed client within 0.1 s and rolls the transaction back.  Unset, it
 * costs one getenv per run.
 */
static void hold_init(struct engine *e)
{
	const char *h = getenv("EMBFILL_TEST_HOLD");
	struct ef_error ignored;

	if (!h || !*h)
		return;
	if (strncmp(h, "commit:", 7) == 0)
		e->hold_commit = atol(h + 7);
	else if (strcmp(h, "final") == 0)
		e->hold_final = true;
	ef_db_exec(e->db, "SET client_connection_check_interval = 100", &ignored);
}

static const char hold_sql[] = "SELECT pg_sleep(3600) /* EMBFILL_TEST_HOLD */";

static int send_batch(struct engine *e, struct batch *b, const struct ef_embed_result *res,
		      const struct batch *ckpt)
{
	char run[24], seq[16], worker[24], done[24], wr[24], q[24];
	const char *cp[7] = { run, seq, worker, ckpt ? ckpt->last_key : NULL, done, wr, q };
	char *k1 = text_array(b, res, b->k1), *k2 = b->k2 ? text_array(b, res, b->k2) : NULL;
	const char *up[3] = { e->o->collection, k1, k2 };
	int sent = 0;

	snprintf(run, sizeof(run), "%lld", e->run_id);
	snprintf(seq, sizeof(seq), "%d", b->lease->seq);
	snprintf(worker, sizeof(worker), "%lld", e->lc.worker_id);
	snprintf(done, sizeof(done), "%zu", b->n);
	snprintf(wr, sizeof(wr), "%zu", b->n - res->n_rejected);
	snprintf(q, sizeof(q), "%zu", res->n_rejected);
	sent += PQsendQueryParams(e->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
	/* the lease first: see ckpt_tpl in run_sql.c */
	sent += PQsendQueryParams(e->pg, e->sql.checkpoint, 7, NULL, cp, NULL, NULL, 0);
	if (res->n_rejected < b->n)
		sent += send_vectors(e, b, res, run);
	for (size_t i = 0; i < b->n; i++)
		if (res->rejected[i])
			sent += send_quarantine(e, b, i, res, run);
	if (k1 && (k2 || !b->k2) && e->unquarantine)
		sent += PQsendQueryParams(e->pg, e->sql.unquarantine, 3, NULL, up, NULL, NULL, 0);
	if (e->hold_commit && ++e->batches_sent == e->hold_commit)
		sent += PQsendQueryParams(e->pg, hold_sql, 0, NULL, NULL, NULL, NULL, 0);
	sent += PQsendQueryParams(e->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
	free(k1);
	free(k2);
	PQpipelineSync(e->pg);
	return sent;
}

static ef_status collect_batch(struct engine *e, int nsent, struct ef_error *err)
{
	ef_status st = EF_OK;
	PGresult *r;

	for (int i = 0; i < nsent; i++) {
		struct ef_error later;
		ef_status one = pipe_result(e, st == EF_OK ? err : &later);

		if (st == EF_OK)
			st = one;
	}
	while ((r = PQgetResult(e->pg)) != NULL) {
		ExecStatusType s = PQresultStatus(r);

		PQclear(r);
		if (s == PGRES_PIPELINE_SYNC)
			break;
	}
	return st;
}

/*
 * One transaction per batch, sent in pipeline mode: the batch's vectors in
 * one statement with a binary parameter, the quarantined rows, and the
 * checkpoint, in one round trip.  A batch is all or nothing.  Sending does
 * not wait: the server writes while the loop parses the next response, and
 * collect_pending() reads the outcome before the connection is used again.
 */
static ef_status send_write(struct engine *e, struct batch *b, const struct ef_embed_result *res,
			    struct ef_error *err)
{
	bool vectors = res->n_rejected < b->n;
	int expected = (int)res->n_rejected + (vectors ? 1 + (e->book_stmt[0] != '\0') : 0) + 3 +
		       (e->unquarantine ? 1 : 0) +
		       (e->hold_commit && e->batches_sent + 1 == e->hold_commit);

	double t0 = now_s();

	/* the counts beside a resumed run see nothing it writes */
	if (e->late && !e->late_snap) {
		e->late_snap = true;
		if (!ef_late_counts_snapshot(e->late, LATE_SNAPSHOT_MS) &&
		    late_instead(e, err) != EF_OK)
			return err->status;
	}
	e->pending_ckpt = prefix_end(e, b);
	if (PQenterPipelineMode(e->pg) != 1)
		return ef_db_fail(e->db, NULL, err);
	e->pending = b;
	e->pending_synced = false;
	e->pending_nulls = 0;
	e->pending_st = EF_OK;
	e->lease_lost = false;
	e->pending_sent = send_batch(e, b, res, e->pending_ckpt);
	if (e->pending_sent != expected) {
		ef_status st = ef_db_fail(e->db, NULL, err);
		struct ef_error ignored;

		collect_batch(e, e->pending_sent, &ignored);
		PQexitPipelineMode(e->pg);
		ef_db_exec(e->db, "ROLLBACK", &ignored);
		e->pending = NULL;
		return st;
	}
	b->n_rejected = res->n_rejected;
	b->retries = res->retries;
	b->splits = res->splits;
	e->res->write_s += now_s() - t0;
	return EF_OK;
}

/* Pops the written prefix off the queue. */
static void advance(struct engine *e)
{
	while (e->head && e->head->written) {
		struct batch *b = e->head;
		e->head = b->next;
		if (!e->head)
			e->tail = NULL;
		batch_free(b);
	}
}

/* A lease every chunk of which is written or quarantined is done; one
 * that was taken over is another worker's, and is only let go. */
static ef_status close_lease(struct engine *e, struct ef_lease *l, struct ef_error *err)
{
	if (!l->exhausted || l->outstanding || l->lost || l->closed)
		return EF_OK;
	if (e->fetching == l)
		e->fetching = NULL;
	l->closed = true;
	e->next_claim = 0;
	return ef_lease_finish(&e->lc, l->seq, err);
}

static ef_status account(struct engine *e, struct batch *b, struct ef_error *err)
{
	struct ef_lease *l = b->lease;

	b->written = true;
	l->outstanding--;
	l->done += (long long)b->n;
	e->prog.done += (long long)b->n;
	e->prog.written += (long long)(b->n - b->n_rejected);
	e->prog.quarantined += (long long)b->n_rejected;
	e->res->splits += b->splits;
	if (b->retries || b->splits)
		logf_(e, "chunks %.40s..%.40s: %u retries, %u splits", b->first_d, b->last_d,
		      b->retries, b->splits);
	if (e->pending_ckpt)
		snprintf(e->prog.checkpoint, sizeof(e->prog.checkpoint), "%s",
			 e->pending_ckpt->last_d);
	batch_free_data(b);
	advance(e);
	return close_lease(e, l, err);
}

/*
 * Another worker took the lease over (this one was silent for longer than
 * LEASE_TIMEOUT_S, and its write was refused and rolled back): whatever
 * this worker still has of it is dropped, unwritten; the other worker
 * embeds it from the checkpoint.
 */
static void drop_lease(struct engine *e, struct ef_lease *l)
{
	if (l->lost)
		return;
	l->lost = true;
	if (e->fetching == l)
		e->fetching = NULL;
	logf_(e, "lease %s was taken over by another worker: its unwritten batches are "
	      "left to it", l->range_d);
}

/*
 * Reads the pending write's results as they come, up to the pipeline's
 * sync: without waiting (true once all of it is in, or the connection
 * failed, which the waiting read then reports), or waiting for the rest.
 * The first failure is kept for collect_pending().
 */
static bool read_pending(struct engine *e, bool wait)
{
	while (e->pending && !e->pending_synced) {
		PGresult *r;
		ExecStatusType s;

		if (!wait && !PQconsumeInput(e->pg))
			return true;
		if (!wait && PQisBusy(e->pg))
			return false;
		r = PQgetResult(e->pg);
		if (!r) {
			if (++e->pending_nulls >= 2 || PQstatus(e->pg) == CONNECTION_BAD) {
				if (e->pending_st == EF_OK)
					e->pending_st = ef_db_fail(e->db, NULL, &e->pending_err);
				e->pending_synced = true;
			}
			continue;
		}
		e->pending_nulls = 0;
		s = PQresultStatus(r);
		if (s == PGRES_PIPELINE_SYNC)
			e->pending_synced = true;
		else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && e->pending_st == EF_OK) {
			e->pending_st = ef_db_fail(e->db, r, &e->pending_err);
			/* lease_checkpoint(): the lease is another worker's now */
			if (strcmp(ef_db_sqlstate(r), "EF001") == 0)
				e->lease_lost = true;
		}
		PQclear(r);
	}
	return true;
}

static ef_status collect_pending(struct engine *e, struct ef_error *err)
{
	struct batch *b = e->pending;
	ef_status st;

	double t0 = now_s();

	if (!b)
		return EF_OK;
	read_pending(e, true);
	e->pending = NULL;
	st = e->pending_st;
	if (st != EF_OK)
		*err = e->pending_err;
	PQexitPipelineMode(e->pg);
	e->res->write_s += now_s() - t0;
	if (st != EF_OK) {
		struct ef_error ignored;
		ef_db_exec(e->db, "ROLLBACK", &ignored);
		if (e->lease_lost) {
			drop_lease(e, b->lease);
			b->written = true;
			b->lease->outstanding--;
			batch_free_data(b);
			advance(e);
			ef_error_clear(err);
			return EF_OK;
		}
		ef_error_prefix(err, "writing chunks %.40s..%.40s", b->first_d, b->last_d);
		return st;
	}
	return account(e, b, err);
}

static void note_rejections(struct engine *e, const struct batch *b,
			    const struct ef_embed_result *res)
{
	for (size_t i = 0; i < b->n; i++)
		if (res->rejected[i])
			logf_(e, "chunk %.40s%s%.40s quarantined: %.100s", b->k1[i], b->k2 ? "/" : "",
			      b->k2 ? b->k2[i] : "", res->reasons[i] ? res->reasons[i] : "rejected");
}

static ef_status finish_batch(struct engine *e, struct ef_embed_result *res, struct ef_error *err)
{
	struct batch *b = res->tag;
	struct ef_embed_result *full = NULL;
	ef_status st = EF_OK;

	/* the write before: read back, and its lease perhaps found lost */
	if (collect_pending(e, err) != EF_OK)
		return err->status;
	/* the connection is free between two writes: batches are fetched
	 * ahead now, before the queue runs dry and a fetch has to wait for a
	 * write while the requests that end meanwhile have no batch to take */
	if (e->prog.phase == EF_PHASE_EMBEDDING && e->nready < ef_embed_pool_capacity(e->pool) &&
	    refill(e, err) != EF_OK)
		return err->status;
	if (b->lease->lost) {
		b->written = true;
		b->lease->outstanding--;
		batch_free_data(b);
		advance(e);
		return EF_OK;
	}
	if (b->nbad && res->n != b->n && !(full = with_bad(b, res, e->cfg->embed_dim)))
		return ef_error_oom(err, "quarantining chunks");
	if (full)
		res = full;
	if (send_write(e, b, res, err) != EF_OK)
		st = err->status;
	else
		note_rejections(e, b, res);
	ef_embed_result_free(full);
	return st;
}

/* --- the loop ------------------------------------------------------------- */

static bool should_stop(struct engine *e)
{
	if (flag(e->o->stop))
		return true;
	if (e->stop_asked) {
		if (e->prog.phase != EF_PHASE_STOPPING)
			logf_(e, "`embfill stop` asked every worker to stop: stopping after the "
			      "batches in flight");
		return true;
	}
	if (e->o->deadline && time(NULL) >= e->o->deadline) {
		if (!e->res->stopped_by_deadline)
			logf_(e, "maintenance window ends: stopping after the batches in flight");
		e->res->stopped_by_deadline = true;
		return true;
	}
	return false;
}

/* The next answer, and the time spent waiting for it; the pool's own
 * count of the time it spent reading answers is taken out of it. */
static ef_status pool_next(struct engine *e, int timeout_ms, struct ef_embed_result **res,
			   struct ef_error *err)
{
	struct ef_embed_counters c;
	double t0 = now_s(), parse0;
	ef_status st;

	ef_embed_pool_counters(e->pool, &c);
	parse0 = c.parse_ms;
	st = ef_embed_pool_next(e->pool, timeout_ms, res, err);
	ef_embed_pool_counters(e->pool, &c);
	e->res->service_s += now_s() - t0 - (c.parse_ms - parse0) / 1e3;
	return st;
}

/* Takes the answers the pool has, waiting up to timeout_ms for the first;
 * each one frees its request's place for the next batch. */
static ef_status take_answers(struct engine *e, int timeout_ms, struct ef_error *err)
{
	struct ef_embed_result *res = NULL;

	while (e->nheld < e->held_max) {
		if (pool_next(e, timeout_ms, &res, err) != EF_OK)
			return err->status;
		if (!res)
			break;
		e->held[e->nheld++] = res;
		e->inflight--;
		timeout_ms = 0;
	}
	return EF_OK;
}

/* The oldest answer waiting for the database: written after the write
 * before it is read back. */
static ef_status write_held(struct engine *e, struct ef_error *err)
{
	struct ef_embed_result *res = e->held[0];
	ef_status st;

	memmove(e->held, e->held + 1, --e->nheld * sizeof(*e->held));
	st = finish_batch(e, res, err);
	ef_embed_result_free(res);
	report(e, true);
	return st;
}

/*
 * The database is still writing the last batch and an answer waits for
 * it: the pool takes what the service has sent (its freed places go to
 * the next batches) while the loop watches the connection a moment.
 */
static ef_status wait_for_write(struct engine *e, struct ef_error *err)
{
	struct pollfd pfd = { PQsocket(e->pg), POLLIN, 0 };
	double t0;

	if (take_answers(e, 0, err) != EF_OK)
		return err->status;
	t0 = now_s();
	poll(&pfd, 1, 2);
	e->res->write_s += now_s() - t0;
	return EF_OK;
}

static ef_status store_reference(struct engine *e, struct ef_error *err);
static ef_status beat(struct engine *e, struct ef_error *err);

/* Stopping while the service is away: the batches waiting for it were not
 * embedded, and are left for the run's next worker rather than waited for. */
static void withdraw_waiting(struct engine *e)
{
	void *tags[256];
	time_t since;
	double retry;
	size_t n;

	if (!ef_embed_pool_waiting(e->pool, &since, &retry))
		return;
	n = ef_embed_pool_withdraw(e->pool, tags, sizeof(tags) / sizeof(tags[0]));
	e->inflight -= (unsigned)n;
	logf_(e, "stopping while the service is away: %zu batches not embedded are left "
	      "for later", n);
}

static ef_status turn(struct engine *e, bool stopping, bool paused, bool *done,
		      struct ef_error *err)
{
	if (now_s() >= e->next_beat && beat(e, err) != EF_OK)
		return err->status;
	if (e->late && late_counts(e, false, err) != EF_OK)
		return err->status;
	if (!e->ref_stored && store_reference(e, err) != EF_OK)
		return err->status;
	if (!stopping && !paused) {
		if (e->nready == 0 && (collect_pending(e, err) != EF_OK || refill(e, err) != EF_OK))
			return err->status;
		if (submit_ready(e, err) != EF_OK)
			return err->status;
	}
	if (e->nheld) {
		if (e->pending && !read_pending(e, false))
			return wait_for_write(e, err);
		if (write_held(e, err) != EF_OK)
			return err->status;
		return take_answers(e, 0, err);
	}
	if (stopping && e->inflight)
		withdraw_waiting(e);
	if (e->inflight == 0) {
		if (collect_pending(e, err) != EF_OK)
			return err->status;
		if (stopping && e->stop_asked) {
			e->res->stop_asked = true;
			return ef_error_set(err, EF_ERR_INTERRUPTED, "stopped at a checkpoint: "
					    "`embfill stop` asked every worker of run %lld to stop",
					    e->run_id);
		}
		if (stopping)
			return ef_error_set(err, EF_ERR_INTERRUPTED, "the run was stopped");
		*done = e->all_done && e->nready == 0 && !e->fetching;
		report(e, false);
		if (!*done)
			usleep(50 * 1000);
		return EF_OK;
	}
	if (take_answers(e, 200, err) != EF_OK)
		return err->status;
	report(e, false);
	return EF_OK;
}

static ef_status loop(struct engine *e, struct ef_error *err)
{
	bool done = false;

	while (!done) {
		bool stopping = should_stop(e);
		bool paused = flag(e->o->pause);
		ef_status st;

		if (flag(e->o->cancel)) {
			struct ef_error later;
			collect_pending(e, &later);
			return ef_error_set(err, EF_ERR_INTERRUPTED, "the run was cancelled");
		}
		e->prog.phase = stopping ? EF_PHASE_STOPPING : paused ? EF_PHASE_PAUSED
								    : EF_PHASE_EMBEDDING;
		st = turn(e, stopping, paused, &done, err);
		if (st != EF_OK) {
			struct ef_error later;
			collect_pending(e, &later);
			return st;
		}
	}
	return EF_OK;
}

/* --- set-up and records ------------------------------------------------- */

static ef_status exec1(struct engine *e, const char *sql, int n, const char *const *p,
		       PGresult **out, struct ef_error *err)
{
	PGresult *r = ef_db_query(e->db, sql, n, p, PGRES_TUPLES_OK, err);

	if (!r)
		return err->status;
	if (out)
		*out = r;
	else
		PQclear(r);
	return EF_OK;
}

/* SQL on embfill's own tables: {tool} is the quoted tool schema. */
static char *runs_sql(const struct engine *e, const char *tpl)
{
	struct ef_sqlvars v = { .n = 0 };
	char *s = NULL;

	if (ef_sqlvars_raw(&v, "tool", e->sql.tool))
		s = ef_sqlvars_expand(&v, tpl);
	ef_sqlvars_free(&v);
	return s;
}

/* One of the advisory lock functions on the collection's key; *got is
 * what it returned (true for the void ones). */
static ef_status lock_call(struct engine *e, const char *fn, bool *got, struct ef_error *err)
{
	char key[512], sql[128];
	const char *p[1] = { key };
	PGresult *r = NULL;

	snprintf(key, sizeof(key), "embfill:%s:%s", e->cfg->map.tool_schema, e->o->collection);
	snprintf(sql, sizeof(sql), "SELECT %s(hashtextextended($1::text, 0))::text", fn);
	if (exec1(e, sql, 1, p, &r, err) != EF_OK)
		return err->status;
	*got = strcmp(PQgetvalue(r, 0, 0), "false") != 0;
	PQclear(r);
	return EF_OK;
}

/*
 * The lock is a session lock keyed by schema and collection: it goes away
 * with the connection, so a crashed run never leaves the collection busy.
 * A run starts under the lock alone (exclusive), and once its leases are
 * made, each of its workers holds it shared: a second run (or a swap)
 * still finds the collection busy, another worker may join.
 */
static ef_status lock_collection(struct engine *e, struct ef_error *err)
{
	bool got = false;

	if (lock_call(e, "pg_try_advisory_lock", &got, err) != EF_OK)
		return err->status;
	e->locked = got ? LOCK_ALONE : 0;
	return got ? EF_OK : EF_ERR_BUSY;
}

/* The run is set up: joiners are welcome. */
static ef_status share_lock(struct engine *e, struct ef_error *err)
{
	bool got;

	if (lock_call(e, "pg_advisory_lock_shared", &got, err) != EF_OK ||
	    lock_call(e, "pg_advisory_unlock", &got, err) != EF_OK)
		return err->status;
	e->locked = LOCK_SHARED;
	return EF_OK;
}

/* A joining worker: the lock shared, waiting out a run being set up (its
 * first worker holds the lock alone meanwhile). */
static ef_status join_lock(struct engine *e, struct ef_error *err)
{
	bool got = false;

	for (int i = 0; i < JOIN_WAIT_S * 4 && !flag(e->o->stop) && !flag(e->o->cancel); i++) {
		if (lock_call(e, "pg_try_advisory_lock_shared", &got, err) != EF_OK)
			return err->status;
		if (got) {
			e->locked = LOCK_SHARED;
			return EF_OK;
		}
		usleep(250 * 1000);
	}
	return EF_ERR_BUSY;
}

/* Whether no other process holds the collection's lock: this worker is the
 * run's last. */
static bool alone(struct engine *e)
{
	struct ef_error ignored;
	bool got = false, unused;

	if (e->locked == LOCK_ALONE)
		return true;
	if (lock_call(e, "pg_try_advisory_lock", &got, &ignored) != EF_OK || !got)
		return false;
	lock_call(e, "pg_advisory_unlock", &unused, &ignored);
	return true;
}

/* The lock outlives the run otherwise: the session it was taken on may go
 * on (counts after the run, the next command of the console). */
static void unlock_collection(struct engine *e)
{
	struct ef_error ignored;
	bool unused;

	if (!e->locked)
		return;
	lock_call(e, e->locked == LOCK_SHARED ? "pg_advisory_unlock_shared" : "pg_advisory_unlock",
		  &unused, &ignored);
	e->locked = 0;
}

static ef_status busy(struct engine *e, struct ef_error *err)
{
	char *sql = runs_sql(e, "SELECT id, coalesce(host, '?'), coalesce(pid, 0),"
				" to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
				" FROM {tool}.runs WHERE collection = $1 AND state = 'running'"
				" ORDER BY id DESC LIMIT 1");
	const char *p[1] = { e->o->collection };
	PGresult *r = NULL;

	if (sql && exec1(e, sql, 1, p, &r, err) == EF_OK && PQntuples(r) == 1)
		ef_error_set(err, EF_ERR_BUSY, "collection \"%s\" is busy: run %s on host %s "
			     "(pid %s) since %s UTC", e->o->collection, PQgetvalue(r, 0, 0),
			     PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
	else
		ef_error_set(err, EF_ERR_BUSY, "collection \"%s\" is busy: another embfill run "
			     "holds it", e->o->collection);
	PQclear(r);
	free(sql);
	return ef_error_hint(err, "one run per collection at a time: add workers to it from this "
				  "or another host with `embfill run -C %s --confirm %s --join`, wait "
				  "for it to finish, or stop it (`embfill stop -C %s --confirm %s`)",
			     e->o->collection, e->o->collection, e->o->collection,
			     e->o->collection);
}

static ef_status mark_dead_runs(struct engine *e, struct ef_error *err)
{
	char *sql = runs_sql(e, "UPDATE {tool}.runs SET state = 'interrupted',"
				" finished_at = heartbeat_at WHERE collection = $1 AND state = 'running'"
				" RETURNING id");
	const char *p[1] = { e->o->collection };
	ef_status st;

	if (!sql)
		return ef_error_oom(err, NULL);
	st = exec1(e, sql, 1, p, NULL, err);
	free(sql);
	return st;
}

/* Where the run's vectors go, as one line: a joining worker must name the
 * same tables and columns. */
static char *tables_of(const struct ef_mapping *m)
{
	char *out = NULL;

	if (asprintf(&out, "%s|%s|%s%s%s|%s|%s|%s", m->chunks, m->embeddings ? m->embeddings : "-",
		     m->chunk_key[0], m->nkey > 1 ? "," : "", m->nkey > 1 ? m->chunk_key[1] : "",
		     m->emb_vector, m->chunk_content, m->tool_schema) < 0)
		return NULL;
	return out;
}

static cJSON *settings_json(const struct engine *e)
{
	cJSON *o = cJSON_CreateObject();
	char *url = ef_redact_url(e->cfg->embed_url), *tables = tables_of(&e->cfg->map);

	cJSON_AddStringToObject(o, "provider", e->cfg->provider);
	cJSON_AddStringToObject(o, "url", url ? url : "");
	cJSON_AddStringToObject(o, "model", e->cfg->embed_model);
	cJSON_AddNumberToObject(o, "dim", e->cfg->embed_dim);
	cJSON_AddNumberToObject(o, "batch_size", e->cfg->batch_size);
	cJSON_AddNumberToObject(o, "concurrency", e->cfg->concurrency);
	cJSON_AddNumberToObject(o, "max_chunk_size", e->cfg->max_chunk_size);
	cJSON_AddNumberToObject(o, "chunk_overlap", e->cfg->chunk_overlap);
	cJSON_AddStringToObject(o, "recipe", e->cfg->recipe_id);
	cJSON_AddStringToObject(o, "tables", tables ? tables : "");
	cJSON_AddBoolToObject(o, "only_missing", e->o->only_missing);
	cJSON_AddBoolToObject(o, "retry_quarantined", e->o->retry_quarantined);
	cJSON_AddBoolToObject(o, "historylog", e->o->historylog);
	cJSON_AddNumberToObject(o, "lease_chunks", e->cfg->lease_chunks);
	free(url);
	free(tables);
	return o;
}

static ef_status start_record(struct engine *e, long long total, struct ef_error *err)
{
	char host[256] = "", pid[16], tot[24];
	cJSON *s = settings_json(e);
	char *settings = cJSON_PrintUnformatted(s);
	char *cmd = ef_redact(e->o->command ? e->o->command : "");
	char *note = ef_redact(e->o->note ? e->o->note : "");
	const char *p[7] = { e->o->collection, host, pid, cmd, e->o->note ? note : NULL,
			     settings, tot };
	char *sql = runs_sql(e, "INSERT INTO {tool}.runs (collection, target_collection, host, pid,"
				" command, note, settings, total) VALUES ($1, $1, $2, $3::int, $4, $5,"
				" $6::jsonb, $7::bigint) RETURNING id");
	PGresult *r = NULL;
	ef_status st = EF_ERR_DB;

	gethostname(host, sizeof(host) - 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(tot, sizeof(tot), "%lld", total);
	if (sql && settings && cmd && note)
		st = exec1(e, sql, 7, p, &r, err);
	if (st == EF_OK)
		e->run_id = ef_db_ll(r, 0, 0);
	PQclear(r);
	free(sql);
	free(settings);
	free(cmd);
	free(note);
	cJSON_Delete(s);
	return st == EF_OK || err->status ? st : ef_error_oom(err, NULL);
}

static ef_status resume_record(struct engine *e, const struct ef_run_info *ri, long long left,
			       struct ef_error *err)
{
	char host[256] = "", pid[16], id[24], tot[24];
	const char *p[4] = { id, host, pid, tot };
	char *sql = runs_sql(e, "UPDATE {tool}.runs SET state = 'running', host = $2, pid = $3::int,"
				" heartbeat_at = now(), finished_at = NULL, error = NULL,"
				" stop_requested = false, total = done + $4::bigint WHERE id = $1::bigint"
				" RETURNING id");
	ef_status st;

	gethostname(host, sizeof(host) - 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(id, sizeof(id), "%lld", ri->run_id);
	snprintf(tot, sizeof(tot), "%lld", left);
	if (!sql)
		return ef_error_oom(err, NULL);
	st = exec1(e, sql, 4, p, NULL, err);
	free(sql);
	e->run_id = ri->run_id;
	snprintf(e->prog.checkpoint, sizeof(e->prog.checkpoint), "%s", ri->checkpoint);
	e->base_done = ri->done;
	e->others_done = ri->done;
	return st;
}

static ef_status end_record(struct engine *e, const char *state, const char *error_text)
{
	char id[24];
	char *msg = ef_redact(error_text ? error_text : "");
	const char *p[3] = { id, state, error_text ? msg : NULL };
	char *sql = runs_sql(e, "UPDATE {tool}.runs SET state = $2, finished_at = now(),"
				" heartbeat_at = now(), error = $3 WHERE id = $1::bigint RETURNING id");
	struct ef_error ignored;
	ef_status st = EF_ERR_DB;

	snprintf(id, sizeof(id), "%lld", e->run_id);
	if (sql && msg && e->run_id)
		st = exec1(e, sql, 3, p, NULL, &ignored);
	free(sql);
	free(msg);
	return st;
}

/* How many chunks are still to do after the key after (a text[] literal,
 * NULL for all of them). */
static ef_status count_todo(struct engine *e, const char *after, long long *n,
			    struct ef_error *err)
{
	char d[16];
	const char *p[4] = { e->o->collection, after, e->cfg->embed_model, d };
	PGresult *r = NULL;

	snprintf(d, sizeof(d), "%d", e->cfg->embed_dim);
	if (exec1(e, e->sql.count, 4, p, &r, err) != EF_OK)
		return err->status;
	*n = ef_db_ll(r, 0, 0);
	PQclear(r);
	return EF_OK;
}

static ef_status counts(struct engine *e, struct ef_counts *c, struct ef_error *err)
{
	return ef_scan_counts(e->s, e->o->collection, c, err);
}

static ef_status resolve_collection(struct engine *e, struct ef_error *err)
{
	const struct ef_mapping *m = &e->cfg->map;
	char *sql = NULL, *t = NULL, *k = NULL, *nm = NULL;
	const char *p[1] = { e->o->collection };
	PGresult *r = NULL;
	ef_status st = EF_OK;

	if (m->coll_mode == EF_COLL_TABLE && strcmp(e->o->collection, m->coll_name) != 0) {
		ef_error_set(err, EF_ERR_USAGE, "%s holds one collection, \"%s\", not \"%s\"",
			     m->chunks, m->coll_name, e->o->collection);
		return ef_error_hint(err, "run -C %s (COLLECTION_MODE=table names the table's "
					  "collection after it, or COLLECTION_NAME)", m->coll_name);
	}
	if (m->coll_mode != EF_COLL_LOOKUP) {
		e->coll_value = strdup(e->o->collection);
		return e->coll_value ? EF_OK : ef_error_oom(err, NULL);
	}
	t = ef_db_quote_ident(e->db, m->lookup, err);
	k = t ? ef_db_quote_part(e->db, m->lookup_key, err) : NULL;
	nm = k ? ef_db_quote_part(e->db, m->lookup_name, err) : NULL;
	if (!nm || asprintf(&sql, "SELECT %s::text FROM %s WHERE %s = $1", k, t, nm) < 0)
		st = err->status ? err->status : ef_error_oom(err, NULL);
	else if ((st = exec1(e, sql, 1, p, &r, err)) == EF_OK && PQntuples(r) == 1)
		e->coll_value = strdup(PQgetvalue(r, 0, 0));
	else if (st == EF_OK)
		st = ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" is not in the lookup table",
				  e->o->collection);
	PQclear(r);
	free(sql);
	free(t);
	free(k);
	free(nm);
	return st;
}

/*
 * The types the vectors travel as: pgvector's vector[] (halfvec columns
 * take vectors too, cast by the server, so one binary encoder serves
 * both), or float4[] for the float arrays.
 */
static ef_status vector_types(struct engine *e, Oid *array, struct ef_error *err)
{
	static const char sql[] =
		"SELECT v.oid, v.typarray FROM pg_type t JOIN pg_type v ON v.typname = 'vector'"
		" AND v.typnamespace = t.typnamespace WHERE t.oid = $1::oid";
	char oid[16];
	const char *p[1] = { oid };
	PGresult *r = NULL;

	if (e->sc.vec_type == EF_VEC_REAL_ARRAY || e->sc.vec_type == EF_VEC_DOUBLE_ARRAY) {
		*array = FLOAT4ARRAYOID;
		return EF_OK;
	}
	snprintf(oid, sizeof(oid), "%u", e->sc.vec_typoid);
	if (exec1(e, sql, 1, p, &r, err) != EF_OK)
		return err->status;
	*array = PQntuples(r) == 1 ? (Oid)ef_db_ll(r, 0, 1) : 0;
	e->vec_elem_oid = PQntuples(r) == 1 ? (unsigned)ef_db_ll(r, 0, 0) : 0;
	PQclear(r);
	return *array ? EF_OK : ef_error_set(err, EF_ERR_DB, "pgvector's vector type was not "
					     "found beside the column's type");
}

static ef_status prepare_one(struct engine *e, const char *name, const char *sql,
			     const Oid *types, struct ef_error *err)
{
	PGresult *r = PQprepare(e->pg, name, sql, 9, types);

	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		ef_db_fail(e->db, r, err);
		PQclear(r);
		return err->status;
	}
	PQclear(r);
	return EF_OK;
}

static ef_status prepare(struct engine *e, struct ef_error *err)
{
	Oid types[9] = { 1009, 0, 25, 23, 1009, 0, 20, 1009, 25 };

	if (vector_types(e, &types[5], err) != EF_OK)
		return err->status;
	/* the collection parameter takes the type of the column it is compared
	 * with; in table mode no column names it, and it is text */
	if (e->cfg->map.coll_mode == EF_COLL_TABLE)
		types[1] = 25;
	/* unique per process and run: a server that keeps one session for
	 * every connection (PGlite) still has earlier runs' statements */
	snprintf(e->stmt, sizeof(e->stmt), "embfill_upsert_%d_%lld", (int)getpid(), e->run_id);
	if (prepare_one(e, e->stmt, e->sql.upsert, types, err) != EF_OK)
		return err->status;
	if (!e->sql.book[0])
		return EF_OK;
	snprintf(e->book_stmt, sizeof(e->book_stmt), "embfill_book_%d_%lld", (int)getpid(),
		 e->run_id);
	return prepare_one(e, e->book_stmt, e->sql.book, types, err);
}

static ef_status check_schema(struct engine *e, struct ef_error *err)
{
	struct ef_view v;

	if (ef_session_require(e->s, EF_NEED_TABLES | EF_NEED_TOOL, err) != EF_OK ||
	    ef_coll_view(e->s, e->o->collection, &v, err) != EF_OK)
		return err->status;
	e->cfg = v.cfg;
	e->sc = *v.sc;
	if (!e->sc.key_unique) {
		ef_error_set(err, EF_ERR_DB, "no primary key or unique index guarantees the chunk "
			     "key of %s: one vector would be written into every row that shares a "
			     "key; nothing was written", e->cfg->map.chunks);
		return ef_error_hint(err, "`embfill schema check` names the unique keys the table "
					  "has and the index that would make this one unique");
	}
	if (!e->sc.emb_unique) {
		ef_error_set(err, EF_ERR_DB, "the collection's tables are not ready for a run: no "
			     "unique index on the embedding's chunk key");
		return ef_error_hint(err, "run `embfill schema check` to see what is missing");
	}
	if (e->sc.dim && e->sc.dim != e->cfg->embed_dim && !e->sc.mixed_dims) {
		ef_error_set(err, EF_ERR_USAGE, "the vector column holds dimension %d, EMBED_DIM "
			     "is %d", e->sc.dim, e->cfg->embed_dim);
		return ef_error_hint(err, "vectors of another dimension go into a new collection "
					  "(`embfill run --into NEW`), never into this column");
	}
	return EF_OK;
}

/* --- a run of several workers --------------------------------------------- */

static double beat_every(const struct engine *e)
{
	double t = e->lc.timeout_s / 3.0;

	return t < BEAT_MAX_S ? t : BEAT_MAX_S;
}

/* The leases the database says this worker holds: one it believes it
 * holds and is not among them was taken over. */
static ef_status check_held(struct engine *e, struct ef_error *err)
{
	size_t mine = 1, n = 0;
	int *held;

	for (const struct ef_lease *l = e->leases; l; l = l->next)
		mine += !l->lost && !l->closed;
	if (!(held = calloc(mine, sizeof(*held))))
		return ef_error_oom(err, NULL);
	if (ef_lease_beat(&e->lc, held, mine, &n, err) != EF_OK) {
		free(held);
		return err->status;
	}
	for (struct ef_lease *l = e->leases; l; l = l->next) {
		bool have = l->lost || l->closed;

		for (size_t i = 0; i < n && !have; i++)
			have = held[i] == l->seq;
		if (!have)
			drop_lease(e, l);
	}
	free(held);
	return EF_OK;
}

/* The endpoints as the worker's record keeps them. */
static char *endpoints_json(const struct engine *e)
{
	cJSON *a = cJSON_CreateArray();
	char *out;

	for (int i = 0; a && i < e->prog.nendpoints; i++) {
		const struct ef_run_endpoint *x = &e->prog.endpoints[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "url", x->url);
		cJSON_AddStringToObject(o, "state", x->state);
		cJSON_AddNumberToObject(o, "in_flight", x->in_flight);
		cJSON_AddNumberToObject(o, "rate", x->rate);
		cJSON_AddNumberToObject(o, "requests", (double)x->requests);
		cJSON_AddNumberToObject(o, "errors", (double)x->errors);
		cJSON_AddItemToArray(a, o);
	}
	out = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
	return out;
}

/* This worker's numbers into its record, and the run's counters from its
 * leases; what `embfill stop` asked; the run's other workers. */
static ef_status sync_run(struct engine *e, const char *state, struct ef_error *err)
{
	struct ef_embed_counters c = { 0 };
	struct ef_worker_tally t = { e->prog.done, e->prog.written, e->prog.quarantined,
				     e->prog.rate, NULL };
	struct ef_run_sync rs;
	char *eps = endpoints_json(e);
	size_t nw = 0;
	ef_status st;

	if (e->pool)
		ef_embed_pool_counters(e->pool, &c);
	t.endpoints = eps;
	st = ef_worker_update(&e->lc, state, &t, err);
	free(eps);
	if (st == EF_OK)
		st = ef_lease_sync(&e->lc, (long long)c.retries - e->synced_retries,
				   (long long)c.requests - e->synced_requests, &rs, err);
	if (st != EF_OK)
		return st;
	e->synced_retries = (long long)c.retries;
	e->synced_requests = (long long)c.requests;
	e->stop_asked = e->stop_asked || rs.stop_requested;
	e->others_done = rs.done - e->prog.done;
	e->prog.run_total = rs.total;
	if (ef_lease_workers(&e->lc, e->seen, EF_RUN_MAX_WORKERS, &nw, err) != EF_OK)
		return err->status;
	e->nseen = (int)nw;
	memcpy(e->prog.workers, e->seen, sizeof(e->seen[0]) * nw);
	e->prog.nworkers = (int)nw;
	return EF_OK;
}

/*
 * The heartbeat: this worker's leases renewed (and one that was taken
 * over noticed), its record and the run's brought up to date.  Pipelined
 * writes are collected first: the connection runs one thing at a time.
 */
static ef_status beat(struct engine *e, struct ef_error *err)
{
	e->next_beat = now_s() + beat_every(e);
	if (!e->lc.worker_id)
		return EF_OK;
	if (collect_pending(e, err) != EF_OK || check_held(e, err) != EF_OK)
		return err->status;
	return sync_run(e, NULL, err);
}

/* The reference vectors of the run's endpoints, once the pool has them,
 * kept with the run: every worker that joins is held to them. */
static ef_status store_reference(struct engine *e, struct ef_error *err)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;
	size_t n;
	int dim;
	const float *ref = e->pool ? ef_embed_pool_reference(e->pool, &n, &dim) : NULL;
	char id[24], *lit, *sql;
	const char *p[2] = { id, NULL };
	ef_status st;

	if (!ref || e->o->dry_run || !e->run_id)
		return EF_OK;
	if (collect_pending(e, err) != EF_OK)
		return err->status;
	ef_strbuf_add(&sb, "{");
	for (size_t i = 0; i < n * (size_t)dim; i++)
		ef_strbuf_addf(&sb, "%s%.9g", i ? "," : "", (double)ref[i]);
	ef_strbuf_add(&sb, "}");
	lit = ef_strbuf_take(&sb);
	sql = runs_sql(e, "UPDATE {tool}.runs SET reference = $2::real[] WHERE id = $1::bigint"
			  " RETURNING id");
	snprintf(id, sizeof(id), "%lld", e->run_id);
	p[1] = lit;
	st = lit && sql ? exec1(e, sql, 2, p, NULL, err) : ef_error_oom(err, NULL);
	free(lit);
	free(sql);
	e->ref_stored = st == EF_OK;
	return st;
}

/* The run's reference vectors (probe texts x dim), malloc'ed; NULL when it
 * has none yet. */
static ef_status load_reference(struct engine *e, float **out, struct ef_error *err)
{
	char id[24], d[24], *sql = runs_sql(e, "SELECT unnest(reference) FROM {tool}.runs WHERE"
					       " id = $1::bigint AND cardinality(reference) ="
					       " $2::int");
	const char *p[2] = { id, d };
	PGresult *r = NULL;
	size_t want = (size_t)EF_EMBED_PROBE_TEXTS * (size_t)e->cfg->embed_dim;

	*out = NULL;
	snprintf(id, sizeof(id), "%lld", e->run_id);
	snprintf(d, sizeof(d), "%zu", want);
	if (!sql || exec1(e, sql, 2, p, &r, err) != EF_OK) {
		free(sql);
		return sql ? err->status : ef_error_oom(err, NULL);
	}
	free(sql);
	if ((size_t)PQntuples(r) == want && (*out = malloc(want * sizeof(float))))
		for (size_t i = 0; i < want; i++)
			(*out)[i] = strtof(PQgetvalue(r, (int)i, 0), NULL);
	PQclear(r);
	return EF_OK;
}

/*
 * The pool, and its endpoints verified before any of them gets work: the
 * same texts to each (with the recipe's prefix), vectors compared with the
 * run's reference when it has one (a joining worker, a resumed run), else
 * with the first endpoint's.  Other vectors behind the same model name
 * stop the run here, before anything is written.
 */
static ef_status start_pool(struct engine *e, struct ef_error *err)
{
	const char *texts[EF_EMBED_PROBE_TEXTS];
	char *owned[EF_EMBED_PROBE_TEXTS] = { NULL };
	float *ref = NULL;
	ef_status st = ef_embed_pool_new(e->ecfg, (unsigned)e->cfg->concurrency, &e->pool, err);

	if (st != EF_OK)
		return st;
	ef_embed_pool_set_flags(e->pool, e->o->cancel, e->o->pause);
	if (e->run_id && (st = load_reference(e, &ref, err)) != EF_OK)
		return st;
	for (int i = 0; i < EF_EMBED_PROBE_TEXTS; i++) {
		owned[i] = ef_recipe_apply(e->cfg->doc_prefix, ef_embed_probe_texts[i]);
		texts[i] = owned[i];
		if (!owned[i])
			st = ef_error_oom(err, NULL);
	}
	if (st == EF_OK)
		st = ef_embed_pool_verify(e->pool, texts, EF_EMBED_PROBE_TEXTS, ref, err);
	e->ref_stored = ref != NULL;
	for (int i = 0; i < EF_EMBED_PROBE_TEXTS; i++)
		free(owned[i]);
	free(ref);
	if (st == EF_OK && !e->ref_stored)
		st = store_reference(e, err);
	report(e, true);
	return st;
}

/* A joining worker waits for the reference while the run's first worker
 * has not reached the service yet, as long as the retry budget. */
static ef_status await_reference(struct engine *e, struct ef_error *err)
{
	double until = now_s() + e->cfg->retry_budget_s;
	char id[24], *sql = runs_sql(e, "SELECT reference IS NOT NULL FROM {tool}.runs WHERE"
					" id = $1::bigint");
	const char *p[1] = { id };
	bool have = false;

	snprintf(id, sizeof(id), "%lld", e->run_id);
	while (sql && !have && now_s() < until && !flag(e->o->stop) && !flag(e->o->cancel)) {
		PGresult *r = NULL;

		if (exec1(e, sql, 1, p, &r, err) != EF_OK) {
			free(sql);
			return err->status;
		}
		have = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
		if (!have)
			usleep(500 * 1000);
	}
	free(sql);
	if (have)
		return EF_OK;
	ef_error_set(err, EF_ERR_EMBED, "run %lld of \"%s\" has no reference vectors yet: its "
		     "first worker has not reached the embedding service", e->run_id,
		     e->o->collection);
	return ef_error_hint(err, "join again once the run is embedding (`embfill status -C %s`)",
			     e->o->collection);
}

static ef_status no_active_run(struct engine *e, struct ef_error *err)
{
	ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" has no active run to join",
		     e->o->collection);
	return ef_error_hint(err, "start one without --join (`embfill run -C %s --confirm %s`), "
				  "or continue an interrupted one with --resume", e->o->collection,
			     e->o->collection);
}

static ef_status differs(struct engine *e, const char *what, const char *mine,
			 const char *theirs, struct ef_error *err)
{
	ef_error_set(err, EF_ERR_USAGE, "this worker's %s differs from run %lld's on \"%s\": "
		     "\"%s\" here, \"%s\" in the run; nothing was touched", what, e->run_id,
		     e->o->collection, mine, theirs);
	return ef_error_hint(err, "a joining worker embeds with the run's model, recipe and "
				  "tables: give it the settings the run's first worker has "
				  "(`embfill status -C %s` names it)", e->o->collection);
}

static const char *json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/*
 * A joining worker embeds the run's chunks as the run says: its model,
 * dimension, recipe and tables must be this worker's (the vectors would
 * not be one collection's otherwise); its batch size and selection
 * (--only missing, --retry-quarantined) are taken from it.
 */
static ef_status adopt_settings(struct engine *e, const char *json, struct ef_error *err)
{
	cJSON *o = cJSON_Parse(json);
	char dim[16], theirs[16], *tables = tables_of(&e->cfg->map);
	const cJSON *bs;
	ef_status st = EF_OK;
	bool only, retry;

	if (!o || !tables) {
		cJSON_Delete(o);
		free(tables);
		return ef_error_oom(err, "reading the run's settings");
	}
	snprintf(dim, sizeof(dim), "%d", e->cfg->embed_dim);
	snprintf(theirs, sizeof(theirs), "%d",
		 (int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "dim")));
	if (strcmp(json_str(o, "model"), e->cfg->embed_model) != 0)
		st = differs(e, "EMBED_MODEL", e->cfg->embed_model, json_str(o, "model"), err);
	else if (strcmp(dim, theirs) != 0)
		st = differs(e, "EMBED_DIM", dim, theirs, err);
	else if (strcmp(json_str(o, "recipe"), e->cfg->recipe_id) != 0)
		st = differs(e, "recipe", e->cfg->recipe_id, json_str(o, "recipe"), err);
	else if (strcmp(json_str(o, "tables"), tables) != 0)
		st = differs(e, "collection's tables", tables, json_str(o, "tables"), err);
	if (st == EF_OK) {
		bs = cJSON_GetObjectItem(o, "batch_size");
		e->batch_size = cJSON_IsNumber(bs) && bs->valueint > 0 ? bs->valueint : e->batch_size;
		only = cJSON_IsTrue(cJSON_GetObjectItem(o, "only_missing"));
		retry = cJSON_IsTrue(cJSON_GetObjectItem(o, "retry_quarantined"));
		e->res->historylog_asked = cJSON_IsTrue(cJSON_GetObjectItem(o, "historylog"));
		e->run_provider = strdup(json_str(o, "provider"));
		e->run_url = strdup(json_str(o, "url"));
		ef_run_sql_free(&e->sql);
		st = ef_run_sql_build(e->db, e->cfg, &e->sc, !retry, only, &e->sql, err);
	}
	cJSON_Delete(o);
	free(tables);
	return st;
}

/* The collection's running run, for a worker that joins it. */
static ef_status join_run(struct engine *e, struct ef_error *err)
{
	char *sql = runs_sql(e, "SELECT id, settings::text, total, done FROM {tool}.runs WHERE"
				" collection = $1 AND state = 'running' ORDER BY id DESC LIMIT 1");
	const char *p[1] = { e->o->collection };
	PGresult *r = NULL;
	ef_status st;

	if (!sql)
		return ef_error_oom(err, NULL);
	st = join_lock(e, err);
	if (st == EF_ERR_BUSY)
		st = busy(e, err);
	if (st == EF_OK && alone(e))
		st = no_active_run(e, err);
	if (st == EF_OK && exec1(e, sql, 1, p, &r, err) != EF_OK)
		st = err->status;
	if (st == EF_OK && PQntuples(r) != 1)
		st = no_active_run(e, err);
	if (st == EF_OK) {
		e->run_id = ef_db_ll(r, 0, 0);
		e->prog.run_total = ef_db_ll(r, 0, 2);
		e->others_done = ef_db_ll(r, 0, 3);
		e->prog.total = e->prog.run_total - e->others_done;
		st = adopt_settings(e, PQgetvalue(r, 0, 1), err);
	}
	PQclear(r);
	free(sql);
	e->res->joined = e->prog.joined = st == EF_OK;
	return st == EF_OK ? await_reference(e, err) : st;
}

/*
 * The run's leases: made from the chunks to embed (after the checkpoint
 * of a run an older embfill interrupted), or, for a run resumed, freed
 * from the workers that died holding them.
 */
static ef_status lease_setup(struct engine *e, const struct ef_run_info *ri, long long todo,
			     struct ef_error *err)
{
	char d[16];
	long long n = 0;

	snprintf(d, sizeof(d), "%d", e->cfg->embed_dim);
	if (ef_lease_count(&e->lc, &n, err) != EF_OK)
		return err->status;
	if (n)
		return ef_lease_reset(&e->lc, err);
	if (ef_lease_split(&e->lc, e->sql.bounds, e->o->collection,
			   ri && ri->checkpoint_key[0] ? ri->checkpoint_key : NULL, e->cfg->embed_model,
			   e->cfg->embed_dim, e->cfg->lease_chunks, todo, err) != EF_OK)
		return err->status;
	return ri ? ef_lease_carry(&e->lc, err) : EF_OK;
}

static ef_status add_worker(struct engine *e, struct ef_error *err)
{
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	if (ef_worker_add(&e->lc, host, (int)getpid(), err) != EF_OK)
		return err->status;
	e->next_beat = 0;
	return EF_OK;
}

/* Every lease is done: of the workers that find so, one ends the run. */
static ef_status complete(struct engine *e, struct ef_error *err)
{
	bool won = false;

	if (sync_run(e, "finished", err) != EF_OK || ef_lease_complete(&e->lc, &won, err) != EF_OK)
		return err->status;
	e->res->ended_run = won;
	if (won)
		logf_(e, "run %lld completed: every lease is done", e->run_id);
	return EF_OK;
}

/* The run's record lists every worker it had. */
static void list_workers(struct engine *e)
{
	char id[24], *sql = runs_sql(e, "SELECT id, host, pid, state, done, rate FROM"
					" {tool}.workers WHERE run_id = $1::bigint ORDER BY id");
	const char *p[1] = { id };
	PGresult *r = NULL;
	struct ef_error ignored;
	struct ef_run_result *res = e->res;

	snprintf(id, sizeof(id), "%lld", e->run_id);
	if (sql && exec1(e, sql, 1, p, &r, &ignored) == EF_OK) {
		for (int i = 0; i < PQntuples(r) && res->nworkers < EF_RUN_MAX_WORKERS; i++) {
			struct ef_run_worker *w = &res->workers[res->nworkers++];

			w->id = ef_db_ll(r, i, 0);
			snprintf(w->host, sizeof(w->host), "%s", PQgetvalue(r, i, 1));
			w->pid = (int)ef_db_ll(r, i, 2);
			snprintf(w->state, sizeof(w->state), "%s", PQgetvalue(r, i, 3));
			w->done = ef_db_ll(r, i, 4);
			w->rate = strtod(PQgetvalue(r, i, 5), NULL);
			w->me = w->id == e->lc.worker_id;
		}
		PQclear(r);
	}
	free(sql);
}

/*
 * This worker leaves the run: its leases go back (with their checkpoints)
 * unless the run is complete, its record says how it ended.  The run
 * itself ends with its last worker: completed by the one that finished the
 * last lease, else interrupted or failed by the last to leave; a worker
 * that leaves others behind leaves the run to them.
 */
static void leave(struct engine *e, ef_status st, const char *why)
{
	struct ef_error ignored;
	struct ef_run_sync rs;

	if (!e->run_id || e->o->dry_run || st == EF_ERR_BUSY)
		return;
	if (e->lc.worker_id && st != EF_OK) {
		collect_pending(e, &ignored);
		ef_lease_release(&e->lc, &ignored);
		sync_run(e, st == EF_ERR_INTERRUPTED ? "stopped" : "failed", &ignored);
	}
	if (st != EF_OK && (e->lc.worker_id || !e->o->join) && alone(e)) {
		if (e->lc.worker_id)
			ef_lease_sync(&e->lc, 0, 0, &rs, &ignored);
		end_record(e, e->res->state, why);
		e->res->ended_run = true;
	}
	snprintf(e->res->run_state, sizeof(e->res->run_state), "%s",
		 e->res->ended_run || st == EF_OK ? e->res->state : "running");
	if (!e->res->ended_run && st == EF_OK)
		snprintf(e->res->run_state, sizeof(e->res->run_state), "completed");
	list_workers(e);
}

/* What the run as a whole wrote, for the summary and the registry. */
static void run_totals(struct engine *e)
{
	char id[24], *sql;
	const char *p[1] = { id };
	PGresult *r = NULL;
	struct ef_error ignored;

	if (!e->run_id)
		return;
	sql = runs_sql(e, "SELECT total, written, quarantined, coalesce(command, ''),"
			  " coalesce(note, '') FROM {tool}.runs WHERE id = $1::bigint");
	snprintf(id, sizeof(id), "%lld", e->run_id);
	if (sql && e->run_id && exec1(e, sql, 1, p, &r, &ignored) == EF_OK && PQntuples(r) == 1) {
		e->res->run_total = ef_db_ll(r, 0, 0);
		e->res->run_written = ef_db_ll(r, 0, 1);
		e->res->run_quarantined = ef_db_ll(r, 0, 2);
		snprintf(e->res->run_command, sizeof(e->res->run_command), "%s", PQgetvalue(r, 0, 3));
		snprintf(e->res->run_note, sizeof(e->res->run_note), "%s", PQgetvalue(r, 0, 4));
	}
	PQclear(r);
	free(sql);
}

/* --- entry points ----------------------------------------------------- */

static ef_status open_engine(struct engine *e, struct ef_error *err)
{
	e->db = ef_session_db(e->s);
	e->pg = ef_db_pg(e->db);
	hold_init(e);
	if (check_schema(e, err) != EF_OK)
		return err->status;
	if (ef_run_sql_build(e->db, e->cfg, &e->sc, !e->o->retry_quarantined,
			     e->o->only_missing, &e->sql, err) != EF_OK)
		return err->status;
	return resolve_collection(e, err);
}

static void close_engine(struct engine *e)
{
	if (e->db && e->stmt[0]) {
		char sql[80];
		struct ef_error ignored;

		snprintf(sql, sizeof(sql), "DEALLOCATE %s", e->stmt);
		ef_db_exec(e->db, sql, &ignored);
		if (e->book_stmt[0]) {
			snprintf(sql, sizeof(sql), "DEALLOCATE %s", e->book_stmt);
			ef_db_exec(e->db, sql, &ignored);
		}
	}
	while (e->head) {
		struct batch *b = e->head;
		e->head = b->next;
		batch_free(b);
	}
	while (e->nheld)
		ef_embed_result_free(e->held[--e->nheld]);
	free(e->held);
	while (e->leases) {
		struct ef_lease *l = e->leases;
		e->leases = l->next;
		ef_lease_free(l);
	}
	ef_late_counts_end(e->late, true);
	e->late = NULL;
	unlock_collection(e);
	ef_embed_pool_free(e->pool);
	ef_run_sql_free(&e->sql);
	free(e->coll_value);
	free(e->run_provider);
	free(e->run_url);
}

static ef_status newest_run(ef_db *db, const char *tool, const char *collection,
			   struct ef_run_info *ri, struct ef_error *err)
{
	char *sql = NULL;
	const char *p[1] = { collection };
	PGresult *r;

	memset(ri, 0, sizeof(*ri));
	if (asprintf(&sql, "SELECT id, state, coalesce(host, '?'), to_char(started_at AT TIME ZONE"
			   " 'UTC', 'YYYY-MM-DD HH24:MI:SS'), array_to_string(checkpoint_key, '/'),"
			   " done, total, checkpoint_key::text FROM %s.runs WHERE collection = $1"
			   " ORDER BY id DESC LIMIT 1",
		     tool) < 0)
		return ef_error_oom(err, NULL);
	r = ef_db_query(db, sql, 1, p, PGRES_TUPLES_OK, err);
	free(sql);
	if (!r)
		return err->status;
	if (PQntuples(r) == 1) {
		ri->run_id = ef_db_ll(r, 0, 0);
		snprintf(ri->state, sizeof(ri->state), "%s", PQgetvalue(r, 0, 1));
		snprintf(ri->host, sizeof(ri->host), "%s", PQgetvalue(r, 0, 2));
		snprintf(ri->started_at, sizeof(ri->started_at), "%s", PQgetvalue(r, 0, 3));
		snprintf(ri->checkpoint, sizeof(ri->checkpoint), "%s", PQgetvalue(r, 0, 4));
		ri->done = ef_db_ll(r, 0, 5);
		ri->total = ef_db_ll(r, 0, 6);
		snprintf(ri->checkpoint_key, sizeof(ri->checkpoint_key), "%s", PQgetvalue(r, 0, 7));
	}
	PQclear(r);
	return EF_OK;
}

static bool resumable(const struct ef_run_info *ri)
{
	return ri->run_id && (strcmp(ri->state, "interrupted") == 0 ||
			      strcmp(ri->state, "failed") == 0);
}

/* A run recorded as running whose lock is free died without a word (kill
 * -9, a dropped SSH session): it is interrupted, and resumable. */
ef_status ef_run_find_interrupted(ef_session *s, const char *collection, struct ef_run_info *info,
				  struct ef_error *err)
{
	struct ef_run_opts o = { .collection = collection };
	struct ef_run_result res;
	struct engine e = { .s = s, .cfg = ef_session_config(s), .o = &o, .res = &res,
			    .db = ef_session_db(s) };
	ef_status st;

	memset(info, 0, sizeof(*info));
	st = ef_run_sql_build_tool(e.db, e.cfg, &e.sql.tool, err);
	if (st == EF_OK)
		st = newest_run(e.db, e.sql.tool, collection, info, err);
	if (st == EF_OK && strcmp(info->state, "running") == 0 &&
	    lock_collection(&e, err) == EF_OK)
		snprintf(info->state, sizeof(info->state), "interrupted");
	unlock_collection(&e);
	if (st == EF_OK && !resumable(info) && strcmp(info->state, "running") != 0)
		memset(info, 0, sizeof(*info));
	free(e.sql.tool);
	return st == EF_ERR_BUSY ? EF_OK : st;
}

/* Bookkeeping rows of chunks the application deleted are removed at the
 * start of the collection's next run: no trigger or foreign key on the
 * user's table could have done it. */
static ef_status prune_records(struct engine *e, struct ef_error *err)
{
	const char *p[1] = { e->o->collection };
	PGresult *r;
	long long n;

	if (!e->sql.prune[0] || e->o->dry_run)
		return EF_OK;
	r = ef_db_query(e->db, e->sql.prune, 1, p, PGRES_COMMAND_OK, err);
	if (!r)
		return err->status;
	n = atoll(PQcmdTuples(r));
	PQclear(r);
	if (n)
		logf_(e, "%lld records of deleted chunks removed from embfill's bookkeeping", n);
	return EF_OK;
}

/* The settings' recipe in embfill's registry of recipes, by fingerprint,
 * so that a report can later say what a vector's recipe was. */
static ef_status register_recipe(struct engine *e, struct ef_error *err)
{
	const struct ef_config *c = e->cfg;
	struct ef_recipe r = { c->doc_prefix, c->dimensions, c->truncate, c->normalize };
	char *text = ef_recipe_text(&r), *desc = ef_recipe_describe(&r);
	const char *p[3] = { c->recipe_id, desc, text };
	char *sql = runs_sql(e, "INSERT INTO {tool}.recipes (id, description, canonical)"
				" VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING id");
	ef_status st = EF_OK;

	if (!text || !desc || !sql)
		st = ef_error_oom(err, "recording the recipe");
	else
		st = exec1(e, sql, 3, p, NULL, err);
	free(text);
	free(desc);
	free(sql);
	return st;
}

static ef_status begin(struct engine *e, long long *todo, struct ef_run_info *ri_out,
		       struct ef_error *err)
{
	struct ef_run_info ri;

	if (mark_dead_runs(e, err) != EF_OK || prune_records(e, err) != EF_OK ||
	    (!e->o->dry_run && register_recipe(e, err) != EF_OK) ||
	    newest_run(e->db, e->sql.tool, e->o->collection, &ri, err) != EF_OK)
		return err->status;
	if (!resumable(&ri))
		ri.run_id = 0;
	if (e->o->resume && !ri.run_id) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" has no interrupted run to resume",
			     e->o->collection);
		return ef_error_hint(err, "leave out --resume to start a new run");
	}
	if (e->o->resume) {
		const char *after = ri.checkpoint_key[0] ? ri.checkpoint_key : NULL;

		e->res->resumed = true;
		*ri_out = ri;
		if (e->o->dry_run)
			return count_todo(e, after, todo, err);
		/* counted beside the run (late_counts): until then the record's
		 * own count stands in */
		*todo = ri.total > ri.done ? ri.total - ri.done : 0;
		if (resume_record(e, &ri, *todo, err) != EF_OK)
			return err->status;
		return ef_late_counts_start(e->cfg, e->o->collection, e->sql.count, after,
					    e->cfg->embed_model, e->cfg->embed_dim, &e->late,
					    err);
	}
	if (count_todo(e, NULL, todo, err) != EF_OK)
		return err->status;
	return e->o->dry_run ? EF_OK : start_record(e, *todo, err);
}

/* A change of provider or service host needs the owner's approval: the
 * collection's own record counts, else (run --into) its source's. */
static ef_status check_provider(struct engine *e, struct ef_error *err)
{
	struct ef_origin o;
	const char *name = e->o->collection;

	if (e->o->approve_provider_change || e->o->dry_run)
		return EF_OK;
	if (ef_coll_origin(e->s, name, &o, err) != EF_OK)
		return err->status;
	if (!o.known && e->o->source) {
		name = e->o->source;
		if (ef_coll_origin(e->s, name, &o, err) != EF_OK)
			return err->status;
	}
	return ef_coll_check_provider(e->cfg, name, &o, err);
}

/* The backup statement with {rowobj}: jsonb_build_object() over the
 * columns of the row that holds the vector, the vector left out (it is
 * saved as real[] beside it).  Building the object from named columns
 * spares converting 768 floats to jsonb numbers only to drop them. */
static char *backup_sql(struct engine *e, struct ef_error *err)
{
	const struct ef_mapping *m = &e->cfg->map;
	bool separate = m->layout == EF_LAYOUT_SEPARATE;
	const char *alias = separate ? "e" : "c";
	char *table = ef_db_quote_ident(e->db, separate ? m->embeddings : m->chunks, err);
	const char *p[2] = { table, m->emb_vector };
	struct ef_strbuf obj = EF_STRBUF_INIT;
	struct ef_sqlvars v = { .n = 0 };
	PGresult *r = NULL;
	char *out = NULL;

	if (table)
		r = ef_db_query(e->db, "SELECT quote_literal(attname), quote_ident(attname) FROM"
				       " pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND"
				       " NOT attisdropped AND attname <> $2 ORDER BY attnum", 2, p,
				PGRES_TUPLES_OK, err);
	free(table);
	if (!r)
		return NULL;
	/* jsonb_build_object() takes 100 arguments: past that, the whole row */
	if (PQntuples(r) > 50)
		ef_strbuf_addf(&obj, "(to_jsonb(%s) - %s)", alias, PQgetvalue(r, 0, 0));
	for (int i = 0; PQntuples(r) <= 50 && i < PQntuples(r); i++)
		ef_strbuf_addf(&obj, "%s%s, %s.%s", i ? ", " : "jsonb_build_object(",
			       PQgetvalue(r, i, 0), alias, PQgetvalue(r, i, 1));
	if (PQntuples(r) <= 50)
		ef_strbuf_add(&obj, PQntuples(r) ? ")" : "'{}'::jsonb");
	PQclear(r);
	if (!obj.oom && ef_sqlvars_raw(&v, "rowobj", ef_strbuf_str(&obj)))
		out = ef_sqlvars_expand(&v, e->sql.backup);
	ef_strbuf_free(&obj);
	ef_sqlvars_free(&v);
	if (!out)
		ef_error_oom(err, NULL);
	return out;
}

/* --backup: before the first write, every row the run will overwrite. */
static ef_status backup_rows(struct engine *e, struct ef_error *err)
{
	char id[24], d[16];
	const char *p[5] = { e->o->collection, NULL, e->cfg->embed_model, d, id };
	bool want = e->o->backup;
	PGresult *r = NULL;
	char *sql, *bsql;

	snprintf(id, sizeof(id), "%lld", e->run_id);
	snprintf(d, sizeof(d), "%d", e->cfg->embed_dim);
	if (!want && e->res->resumed) {
		sql = runs_sql(e, "SELECT backup FROM {tool}.runs WHERE id = $1::bigint");
		if (!sql)
			return ef_error_oom(err, NULL);
		if (exec1(e, sql, 1, p + 4, &r, err) != EF_OK) {
			free(sql);
			return err->status;
		}
		free(sql);
		want = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
	}
	if (!want)
		return EF_OK;
	/* the rows and the run's mark commit together: rollback finds every
	 * backup it can use, and only those */
	sql = runs_sql(e, "UPDATE {tool}.runs SET backup = true WHERE id = $1::bigint RETURNING id");
	if (!sql || ef_db_exec(e->db, "BEGIN", err) != EF_OK) {
		free(sql);
		return err->status ? err->status : ef_error_oom(err, NULL);
	}
	r = NULL;
	if ((bsql = backup_sql(e, err)) != NULL)
		r = ef_db_query(e->db, bsql, 5, p, PGRES_COMMAND_OK, err);
	free(bsql);
	if (r) {
		e->res->backed_up = atoll(PQcmdTuples(r));
		PQclear(r);
	}
	if (!r || exec1(e, sql, 1, p + 4, NULL, err) != EF_OK ||
	    ef_db_exec(e->db, "COMMIT", err) != EF_OK) {
		struct ef_error ignored;
		ef_db_exec(e->db, "ROLLBACK", &ignored);
		free(sql);
		e->res->backed_up = 0;
		return err->status;
	}
	free(sql);
	logf_(e, "backup: %lld rows saved for rollback", e->res->backed_up);
	return EF_OK;
}

static void fill_result(struct engine *e, ef_status st)
{
	struct ef_run_result *res = e->res;

	res->run_id = e->run_id;
	res->total = e->prog.total;
	res->written = e->prog.written;
	res->quarantined = e->prog.quarantined;
	res->retries = e->prog.retries;
	res->requests = e->prog.requests;
	res->elapsed_s = e->prog.elapsed_s;
	res->rate = res->elapsed_s - res->index_s > 0
		    ? (double)e->prog.done / (res->elapsed_s - res->index_s) : 0;
	snprintf(res->state, sizeof(res->state), "%s",
		 res->dry_run ? "dry-run" : st == EF_OK ? "completed"
		 : st == EF_ERR_INTERRUPTED ? "interrupted" : "failed");
}

/* What the finished run set out to do and left: a chunk changed while the
 * run went on, another writer, a vector that did not stick.  Counted with
 * the run's own selection from the start (quarantined chunks aside), over
 * every lease, once all of them are done. */
static ef_status converged(struct engine *e, struct ef_error *err)
{
	char d[16];
	const char *p[4] = { e->o->collection, NULL, e->cfg->embed_model, d };
	PGresult *r = NULL;
	struct ef_error ignored;
	ef_status st;

	snprintf(d, sizeof(d), "%d", e->cfg->embed_dim);
	/* one pass over the collection: statistics older than the run took the
	 * embedding rows it wrote for none, and a nested loop chosen on them
	 * scanned the table once per chunk (17 minutes on a million) */
	if (ef_db_exec(e->db, "SET enable_nestloop = off", err) != EF_OK)
		return err->status;
	st = exec1(e, e->sql.left, 4, p, &r, err);
	ef_db_exec(e->db, "RESET enable_nestloop", &ignored);
	if (st != EF_OK)
		return err->status;
	e->res->unconverged = PQntuples(r) ? ef_db_ll(r, 0, 2) : 0;
	for (int i = 0; i < PQntuples(r) && i < 5; i++) {
		snprintf(e->res->left[i].key, sizeof(e->res->left[i].key), "%s", PQgetvalue(r, i, 0));
		snprintf(e->res->left[i].why, sizeof(e->res->left[i].why), "%s", PQgetvalue(r, i, 1));
		e->res->nleft = (size_t)i + 1;
	}
	PQclear(r);
	if (e->res->unconverged)
		logf_(e, "run %lld did not converge: %lld chunks are still to embed", e->run_id,
		      e->res->unconverged);
	return EF_OK;
}

/*
 * Only a chunk quarantined before the run can leave the quarantine by
 * being written now (one this run quarantines is not selected again): a
 * collection with none spares every batch the statement.
 */
static ef_status quarantine_known(struct engine *e, struct ef_error *err)
{
	const char *p[1] = { e->o->collection };
	char *sql;
	PGresult *r = NULL;
	ef_status st;

	e->unquarantine = false;
	if (!e->sc.tool_schema)
		return EF_OK;
	if (!(sql = runs_sql(e, "SELECT EXISTS (SELECT 1 FROM {tool}.quarantine WHERE"
				" collection = $1)")))
		return ef_error_oom(err, NULL);
	st = exec1(e, sql, 1, p, &r, err);
	free(sql);
	if (st == EF_OK)
		e->unquarantine = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return st;
}

/* The counts before a resumed run, known: they go into its result and
 * what was left becomes its total. */
static ef_status late_apply(struct engine *e, struct ef_counts *before, long long left,
			    struct ef_error *err)
{
	char id[24], tot[24];
	const char *p[2] = { id, tot };
	char *sql;
	ef_status st;

	free(e->res->before.collection);
	e->res->before = *before;
	e->prog.total = left;
	logf_(e, "counted: %lld chunks were left when the run resumed", left);
	/* the connection runs one thing at a time: the write in flight first */
	if (collect_pending(e, err) != EF_OK)
		return err->status;
	snprintf(id, sizeof(id), "%lld", e->run_id);
	snprintf(tot, sizeof(tot), "%lld", e->base_done + left);
	if (!(sql = runs_sql(e, "UPDATE {tool}.runs SET total = $2::bigint WHERE id = $1::bigint"
				" RETURNING id")))
		return ef_error_oom(err, NULL);
	st = exec1(e, sql, 2, p, NULL, err);
	free(sql);
	return st;
}

/* The thread beside the run has no snapshot (no second connection, or it
 * failed before one) and the run has written nothing: counted here. */
static ef_status late_instead(struct engine *e, struct ef_error *err)
{
	struct ef_counts before = { 0 };
	long long left = 0;
	ef_status st;

	logf_(e, "counting before the first write: the counts beside the run had no snapshot"
	      " (the database took no second connection)");
	st = ef_late_counts_instead(e->late, e->s, &before, &left, err);
	e->late = NULL;
	if (st != EF_OK) {
		free(before.collection);
		return st;
	}
	return late_apply(e, &before, left, err);
}

/*
 * A resumed run's counts, once the thread beside it has them (wait: until
 * it has): the counts before the run, and what was left, which becomes the
 * run's total.  Counts that failed once the run had written stay unknown
 * and say so; before that they are taken here.
 */
static ef_status late_counts(struct engine *e, bool wait, struct ef_error *err)
{
	struct ef_counts before;
	struct ef_error why = { 0 };
	long long left = 0;
	int got;

	got = ef_late_counts_poll(e->late, wait, &before, &left, &why);
	if (got == 0)
		return EF_OK;
	if (got < 0 && !e->late_snap)
		return late_instead(e, err);
	ef_late_counts_end(e->late, false);
	e->late = NULL;
	if (got < 0) {
		logf_(e, "the counts before the run are unknown: %.200s", why.msg);
		return EF_OK;
	}
	return late_apply(e, &before, left, err);
}

static ef_status embed_all(struct engine *e, struct ef_error *err)
{
	size_t neps = ef_embed_pool_endpoint_count(e->pool);
	ef_status st;

	if (prepare(e, err) != EF_OK || quarantine_known(e, err) != EF_OK)
		return err->status;
	e->held_max = (unsigned)neps * (unsigned)e->cfg->concurrency;
	if (!(e->held = calloc((size_t)e->held_max + 1, sizeof(*e->held))))
		return ef_error_oom(err, "starting the run");
	if (e->res->joined)
		logf_(e, "joined run %lld: %lld of %lld chunks left, batches of %d, %u in flight",
		      e->run_id, e->prog.total, e->prog.run_total, e->batch_size,
		      ef_embed_pool_capacity(e->pool));
	else
		logf_(e, "run %lld: %lld chunks to embed in batches of %d, %d in flight on each of "
		      "%zu endpoint%s", e->run_id, e->prog.total, e->batch_size, e->cfg->concurrency,
		      neps, neps == 1 ? "" : "s");
	report(e, true);
	st = loop(e, err);
	report(e, true);
	return st;
}

/*
 * A run that wrote a good part of its table leaves the planner's
 * statistics current, as autovacuum would a minute later: status and
 * verify right after a backfill otherwise plan for the empty table it was.
 * A table another role owns is skipped by the server with a warning.
 */
static void fresh_statistics(struct engine *e)
{
	long long rows = e->res->before.unknown ? 0 : e->res->before.chunks;
	long long done = e->prog.done + e->others_done;
	struct ef_error ignored;

	if (done < 1000 || done * 10 < rows)
		return;
	if (ef_db_exec(e->db, e->sql.analyze, &ignored) != EF_OK)
		logf_(e, "the table's statistics were not refreshed: %.200s", ignored.msg);
}

/* --- vector indexes around the load (run_index.c) -------------------------- */

static void index_note(void *ctx, const char *text)
{
	struct engine *e = ctx;

	logf_(e, "%s", text);
	report(e, true);
}

static ef_status index_before(struct engine *e, struct ef_run_index *ri, struct ef_error *err)
{
	/* the run's first worker drops what --rebuild-index drops; a worker
	 * that joins only learns what the load goes without */
	ef_status st = ef_run_index_before(e->s, e->o->collection,
					   e->o->rebuild_index && !e->res->joined, e->run_id, ri,
					   index_note, e, err);

	e->res->indexes_dropped = ri->dropped;
	return st;
}

static ef_status index_after(struct engine *e, struct ef_run_index *ri, struct ef_error *err)
{
	double t0 = now_s();
	ef_status st;

	if (!ri->ix.ndropped && !ri->own && !ri->dropped)
		return EF_OK;
	e->prog.phase = EF_PHASE_INDEXING;
	report(e, true);
	st = ef_run_index_after(e->s, e->o->collection, ri, e->o->cancel, index_note, e, err);
	e->res->indexes_built = ri->built;
	e->res->index_s = now_s() - t0;
	report(e, true);
	if (st != EF_OK)
		logf_(e, "vector indexes not rebuilt: %.100s; the next run rebuilds them", err->msg);
	return st;
}

/* The lead's part before any worker embeds: the leases, the backup, then
 * the lock shared, so that other workers may join. */
static ef_status set_up(struct engine *e, const struct ef_run_info *ri, long long todo,
			struct ef_error *err)
{
	if (lease_setup(e, e->res->resumed ? ri : NULL, todo, err) != EF_OK ||
	    backup_rows(e, err) != EF_OK)
		return err->status;
	return share_lock(e, err);
}

ef_status ef_run_execute(ef_session *s, const struct ef_embed_config *ecfg,
			 const struct ef_run_opts *o, struct ef_run_result *res,
			 struct ef_error *err)
{
	const struct ef_config *cfg = ef_session_config(s);
	struct ef_embed_config ec = *ecfg;
	struct engine e = { .s = s, .cfg = cfg, .ecfg = &ec, .o = o, .res = res };
	struct ef_run_index *rx = calloc(1, sizeof(*rx));
	struct ef_run_info ri;
	long long todo = 0;
	ef_status st;

	memset(res, 0, sizeof(*res));
	memset(&ri, 0, sizeof(ri));
	res->dry_run = o->dry_run;
	res->historylog_asked = o->historylog;
	clock_gettime(CLOCK_MONOTONIC, &e.t0);
	/* a run waits out an unreachable service for the budget, not attempts */
	if (!ec.retry_budget_ms)
		ec.retry_budget_ms = (long)cfg->retry_budget_s * 1000;
	e.prog.concurrency = (unsigned)cfg->concurrency;
	e.prog.eta_s = -1;
	e.batch_size = cfg->batch_size;
	res->before.unknown = true;
	st = rx ? open_engine(&e, err) : ef_error_oom(err, NULL);
	if (st == EF_OK && o->join && !o->dry_run)
		st = join_run(&e, err);
	else if (st == EF_OK && (st = lock_collection(&e, err)) == EF_ERR_BUSY)
		st = busy(&e, err);
	/* a resumed run counts beside its first batches (begin) */
	if (st == EF_OK && (!o->resume || o->dry_run || res->joined))
		st = counts(&e, &res->before, err);
	if (st == EF_OK && !res->joined)
		st = check_provider(&e, err);
	if (st == EF_OK && !res->joined)
		st = begin(&e, &todo, &ri, err);
	if (!res->joined)
		e.prog.total = todo;
	e.prog.run_id = e.run_id;
	e.lc = (struct ef_lease_ctx){ e.db, e.sql.tool, e.run_id, 0, cfg->lease_timeout_s,
				      ef_run_int_key(&e.cfg->map, &e.sc) };
	/* before other workers may join: a drop waits for no writer of theirs */
	if (st == EF_OK && !o->dry_run)
		st = index_before(&e, rx, err);
	if (st == EF_OK && !o->dry_run)
		st = start_pool(&e, err);
	if (st == EF_OK && !o->dry_run && !res->joined)
		st = set_up(&e, &ri, todo, err);
	if (st == EF_OK && !o->dry_run)
		st = add_worker(&e, err);
	if (st == EF_OK && !o->dry_run)
		st = embed_all(&e, err);
	if (st == EF_OK && e.late)
		st = late_counts(&e, true, err);
	if (st == EF_OK && !o->dry_run)
		st = complete(&e, err);
	/* every lease is done: the worker that ended the run counts what the
	 * run set out to do and left (the others leave with the run), and
	 * builds the vector indexes the load went without */
	if (st == EF_OK && !o->dry_run && res->ended_run)
		fresh_statistics(&e);
	if (st == EF_OK && !o->dry_run && res->ended_run)
		st = converged(&e, err);
	if (st == EF_OK && !o->dry_run && res->ended_run)
		st = index_after(&e, rx, err);
	else if (st != EF_OK && rx && (rx->dropped || rx->ix.ndropped) && !o->dry_run)
		logf_(&e, "vector indexes of %s stay dropped: `embfill run --resume` rebuilds them",
		      rx->ix.table);
	free(rx);
	res->db_failed = st == EF_ERR_DB;
	fill_result(&e, st);
	if (e.db)
		leave(&e, st, st == EF_OK ? NULL : err->msg);
	run_totals(&e);
	if (e.db && !o->dry_run && res->ended_run && res->run_written > 0) {
		struct ef_error ignored;
		if (e.run_provider)
			ef_coll_record_origin_with(s, o->collection, e.run_provider, e.run_url,
						   &ignored);
		else
			ef_coll_record_origin(s, o->collection, &ignored);
	}
	/* after a database error the counts are not worth a second failure:
	 * they are unknown, and said to be; the worker that ended the run
	 * takes them (the others leave a run still going) */
	res->after.unknown = true;
	if (e.db && st != EF_ERR_BUSY && st != EF_ERR_DB && (res->ended_run || o->dry_run)) {
		struct ef_error ignored;

		if (e.hold_final)
			ef_db_exec(e.db, hold_sql, &ignored);
		if (counts(&e, &res->after, &ignored) != EF_OK)
			res->after.unknown = true;
	}
	e.prog.phase = EF_PHASE_FINISHED;
	close_engine(&e);
	return st;
}

void ef_run_result_free(struct ef_run_result *res)
{
	free(res->before.collection);
	free(res->after.collection);
	res->before.collection = res->after.collection = NULL;
}

const char *ef_run_phase_name(enum ef_run_phase p)
{
	static const char *const names[] = { "starting", "embedding", "paused", "stopping",
					     "indexing", "finished" };

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}
