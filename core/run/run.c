/*
 * run.c - the backfill loop.
 *
 * One loop on one thread: fetch a keyset batch, submit it to the embedding
 * pool, and whenever the pool hands back a finished batch, write its vectors
 * and the run's checkpoint in one transaction.  Up to EMBED_CONCURRENCY
 * batches are in flight, so memory is bounded by batch size x concurrency
 * whatever the collection's size.
 *
 * Batches can finish out of order.  The checkpoint is the last key of the
 * longest prefix of written batches, committed in the same transaction as
 * the batch that completes the prefix: after a crash at any point every
 * committed batch is either behind the checkpoint or already fresh (and so
 * not selected again), and nothing behind the checkpoint is unwritten.
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
	bool written;
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
	bool locked;              /* this run holds the collection's run lock */
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
	char *scan_pos;           /* last key fetched, a text[] literal; NULL: the start */
	bool exhausted;
	struct batch *head, *tail;  /* every batch not yet behind the checkpoint, in key order */
	struct batch *next_submit;  /* first fetched batch not yet given to the pool */
	unsigned nready;            /* fetched, not yet submitted */
	unsigned inflight;          /* given to the pool, not answered yet */
	struct ef_embed_result **held; /* answered, waiting for the database: oldest first */
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
	struct timespec t0;
	double last_cb;
	double win_t[RATE_WINDOW];
	long long win_done[RATE_WINDOW];
	int win_n;
	long long base_done;      /* done before this process (resumed runs) */
	char *resume_key;         /* a resumed run's checkpoint, while its counts are due */
	bool counts_due;          /* a resumed run counts once its first batch is out */
};

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
	}
	e->prog.parse_s = e->res->parse_s;
	e->prog.service_s = e->res->service_s;
	e->prog.db_s = e->res->write_s + e->res->fetch_s;
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

/* Cuts the rows of one keyset query into batches of BATCH_SIZE. */
static ef_status split_rows(struct engine *e, const PGresult *r, struct ef_error *err)
{
	int n = PQntuples(r), size = e->cfg->batch_size;

	for (int from = 0; from < n; from += size) {
		int k = n - from < size ? n - from : size;
		struct batch *b = batch_new(k, e->cfg->map.nkey > 1);

		if (!b || !fill_batch(b, r, from, k, e->cfg->doc_prefix)) {
			if (b)
				batch_free(b);
			return ef_error_oom(err, "reading a batch of chunks");
		}
		free(e->scan_pos);
		if (!(e->scan_pos = strdup(b->last_key))) {
			batch_free(b);
			return ef_error_oom(err, NULL);
		}
		enqueue(e, b);
	}
	return EF_OK;
}

/* Up to `batches` batches from one keyset query: one round trip and one
 * plan for all of them. */
static ef_status fetch(struct engine *e, unsigned batches, struct ef_error *err)
{
	char model_dim[16], limit[24];
	const char *p[5] = { e->o->collection, e->scan_pos, e->cfg->embed_model, model_dim,
			     limit };
	PGresult *r;
	ef_status st;

	snprintf(model_dim, sizeof(model_dim), "%d", e->cfg->embed_dim);
	snprintf(limit, sizeof(limit), "%lld", (long long)e->cfg->batch_size * batches);
	r = ef_db_query(e->db, e->sql.select, 5, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	if (PQntuples(r) < e->cfg->batch_size * (int)batches)
		e->exhausted = true;
	st = split_rows(e, r, err);
	PQclear(r);
	return st;
}

/* Fetches batches ahead, up to concurrency + 2 of them, so that most turns
 * of the loop need no query and a batch's write can run on the server
 * while the next response is parsed here. */
static ef_status refill(struct engine *e, struct ef_error *err)
{
	unsigned want = (unsigned)e->cfg->concurrency + 2;
	double t0 = now_s();
	ef_status st;

	if (e->nready >= want || e->exhausted)
		return EF_OK;
	st = fetch(e, want - e->nready, err);
	e->res->fetch_s += now_s() - t0;
	return st;
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
	unsigned k = (unsigned)e->cfg->concurrency;

	while (e->inflight + e->nheld < k && e->next_submit) {
		struct batch *b = e->next_submit;
		ef_status st = EF_OK;

		e->next_submit = b->next;
		e->nready--;
		if (b->nbad != b->n)
			e->inflight++;
		if (b->nbad == b->n) {
			/* nothing to send: quarantined as it is */
			struct ef_embed_result *r = with_bad(b, NULL, e->cfg->embed_dim);

			if (!r)
				return ef_error_oom(err, "quarantining chunks");
			st = finish_batch(e, r, err);
			ef_embed_result_free(r);
		} else if (b->nbad) {
			st = ef_embed_pool_submit(e->pool, b, (const char *const *)b->good,
						  b->n - b->nbad, err);
		} else {
			st = ef_embed_pool_submit(e->pool, b, (const char *const *)b->texts, b->n,
						  err);
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

	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		st = ef_db_fail(e->db, r, err);
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

/* The batch whose last key is the checkpoint once b is written: the end
 * of the written prefix; NULL when b does not extend it. */
static const struct batch *prefix_end(const struct engine *e, const struct batch *b)
{
	const struct batch *end = NULL;

	for (const struct batch *x = e->head; x && (x->written || x == b); x = x->next)
		end = x;
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
	char run[24], done[24], wr[24], q[24], retries[24], requests[24];
	const char *cp[7] = { run, ckpt ? ckpt->last_key : NULL, done, wr, q, retries, requests };
	struct ef_embed_counters cnt;
	char *k1 = text_array(b, res, b->k1), *k2 = b->k2 ? text_array(b, res, b->k2) : NULL;
	const char *up[3] = { e->o->collection, k1, k2 };
	int sent = 0;

	ef_embed_pool_counters(e->pool, &cnt);
	snprintf(run, sizeof(run), "%lld", e->run_id);
	snprintf(done, sizeof(done), "%zu", b->n);
	snprintf(wr, sizeof(wr), "%zu", b->n - res->n_rejected);
	snprintf(q, sizeof(q), "%zu", res->n_rejected);
	snprintf(retries, sizeof(retries), "%lu", cnt.retries);
	snprintf(requests, sizeof(requests), "%lu", cnt.requests);
	sent += PQsendQueryParams(e->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
	if (res->n_rejected < b->n)
		sent += send_vectors(e, b, res, run);
	for (size_t i = 0; i < b->n; i++)
		if (res->rejected[i])
			sent += send_quarantine(e, b, i, res, run);
	if (k1 && (k2 || !b->k2) && e->unquarantine)
		sent += PQsendQueryParams(e->pg, e->sql.unquarantine, 3, NULL, up, NULL, NULL, 0);
	sent += PQsendQueryParams(e->pg, e->sql.checkpoint, 7, NULL, cp, NULL, NULL, 0);
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

	e->pending_ckpt = prefix_end(e, b);
	if (PQenterPipelineMode(e->pg) != 1)
		return ef_db_fail(e->db, NULL, err);
	e->pending = b;
	e->pending_synced = false;
	e->pending_nulls = 0;
	e->pending_st = EF_OK;
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

static void account(struct engine *e, struct batch *b)
{
	b->written = true;
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
		else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && e->pending_st == EF_OK)
			e->pending_st = ef_db_fail(e->db, r, &e->pending_err);
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
		ef_error_prefix(err, "writing chunks %.40s..%.40s", b->first_d, b->last_d);
		return st;
	}
	account(e, b);
	return EF_OK;
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

	if (b->nbad && res->n != b->n && !(full = with_bad(b, res, e->cfg->embed_dim)))
		return ef_error_oom(err, "quarantining chunks");
	if (full)
		res = full;
	if (collect_pending(e, err) != EF_OK || send_write(e, b, res, err) != EF_OK)
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

	while (e->nheld < (unsigned)e->cfg->concurrency) {
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

static ef_status turn(struct engine *e, bool stopping, bool paused, bool *done,
		      struct ef_error *err)
{
	if (!stopping && !paused) {
		if (e->nready == 0 && !e->exhausted &&
		    (collect_pending(e, err) != EF_OK || refill(e, err) != EF_OK))
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
	if (e->inflight == 0) {
		if (collect_pending(e, err) != EF_OK)
			return err->status;
		if (stopping)
			return ef_error_set(err, EF_ERR_INTERRUPTED, "the run was stopped");
		*done = e->exhausted && e->nready == 0;
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

/* The lock is a session lock keyed by schema and collection: it goes away
 * with the connection, so a crashed run never leaves the collection busy. */
static ef_status lock_collection(struct engine *e, struct ef_error *err)
{
	char key[512];
	const char *p[1] = { key };
	PGresult *r = NULL;
	bool got;

	snprintf(key, sizeof(key), "embfill:%s:%s", e->cfg->map.tool_schema, e->o->collection);
	if (exec1(e, "SELECT pg_try_advisory_lock(hashtextextended($1::text, 0))", 1, p, &r,
		  err) != EF_OK)
		return err->status;
	got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	e->locked = got;
	return got ? EF_OK : EF_ERR_BUSY;
}

/* The lock outlives the run otherwise: the session it was taken on may go
 * on (counts after the run, the next command of the console). */
static void unlock_collection(struct engine *e)
{
	char key[512];
	const char *p[1] = { key };
	PGresult *r = NULL;
	struct ef_error ignored;

	if (!e->locked)
		return;
	snprintf(key, sizeof(key), "embfill:%s:%s", e->cfg->map.tool_schema, e->o->collection);
	if (exec1(e, "SELECT pg_advisory_unlock(hashtextextended($1::text, 0))", 1, p, &r,
		  &ignored) == EF_OK)
		PQclear(r);
	e->locked = false;
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
	return ef_error_hint(err, "one run per collection at a time: wait for it to finish, "
				  "or stop it (Ctrl-C there checkpoints and exits)");
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

static cJSON *settings_json(const struct engine *e)
{
	cJSON *o = cJSON_CreateObject();
	char *url = ef_redact_url(e->cfg->embed_url);

	cJSON_AddStringToObject(o, "provider", e->cfg->provider);
	cJSON_AddStringToObject(o, "url", url ? url : "");
	cJSON_AddStringToObject(o, "model", e->cfg->embed_model);
	cJSON_AddNumberToObject(o, "dim", e->cfg->embed_dim);
	cJSON_AddNumberToObject(o, "batch_size", e->cfg->batch_size);
	cJSON_AddNumberToObject(o, "concurrency", e->cfg->concurrency);
	cJSON_AddNumberToObject(o, "max_chunk_size", e->cfg->max_chunk_size);
	cJSON_AddNumberToObject(o, "chunk_overlap", e->cfg->chunk_overlap);
	free(url);
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
				" total = done + $4::bigint WHERE id = $1::bigint RETURNING id");
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
	e->scan_pos = ri->checkpoint_key[0] ? strdup(ri->checkpoint_key) : NULL;
	if (ri->checkpoint_key[0] && !e->scan_pos)
		st = ef_error_oom(err, NULL);
	snprintf(e->prog.checkpoint, sizeof(e->prog.checkpoint), "%s", ri->checkpoint);
	e->base_done = ri->done;
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
	unlock_collection(e);
	ef_embed_pool_free(e->pool);
	ef_run_sql_free(&e->sql);
	free(e->coll_value);
	free(e->scan_pos);
	free(e->resume_key);
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

static ef_status begin(struct engine *e, long long *todo, struct ef_error *err)
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
		/* what is left is counted once the first batch is on its way
		 * (deferred_counts); the record's own count stands in until then */
		e->res->resumed = true;
		e->counts_due = !e->o->dry_run;
		*todo = ri.total > ri.done ? ri.total - ri.done : 0;
		if (e->o->dry_run && count_todo(e, ri.checkpoint_key[0] ? ri.checkpoint_key : NULL,
						todo, err) != EF_OK)
			return err->status;
		if (ri.checkpoint_key[0] && !(e->resume_key = strdup(ri.checkpoint_key)))
			return ef_error_oom(err, NULL);
		return resume_record(e, &ri, *todo, err);
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
 * the run's own selection from the start (quarantined chunks aside). */
static ef_status converged(struct engine *e, struct ef_error *err)
{
	char d[16];
	const char *p[4] = { e->o->collection, NULL, e->cfg->embed_model, d };
	PGresult *r = NULL;

	snprintf(d, sizeof(d), "%d", e->cfg->embed_dim);
	if (exec1(e, e->sql.left, 4, p, &r, err) != EF_OK)
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

/*
 * A resumed run is counted after its first batches are on the wire: on a
 * large collection the counts take seconds, and an operator resuming at
 * the end of a window should see the run move at once.  No batch is
 * written before them, so the counts are still the ones before the run.
 */
static ef_status deferred_counts(struct engine *e, struct ef_error *err)
{
	char id[24], left[24];
	const char *p[2] = { id, left };
	char *sql;
	long long n;
	ef_status st;

	if (!e->counts_due)
		return EF_OK;
	e->counts_due = false;
	if (refill(e, err) != EF_OK || submit_ready(e, err) != EF_OK ||
	    take_answers(e, 20, err) != EF_OK)
		return err->status;
	if (counts(e, &e->res->before, err) != EF_OK ||
	    count_todo(e, e->resume_key, &n, err) != EF_OK)
		return err->status;
	e->prog.total = n;
	snprintf(id, sizeof(id), "%lld", e->run_id);
	snprintf(left, sizeof(left), "%lld", n);
	if (!(sql = runs_sql(e, "UPDATE {tool}.runs SET total = done + $2::bigint WHERE id ="
				" $1::bigint RETURNING id")))
		return ef_error_oom(err, NULL);
	st = exec1(e, sql, 2, p, NULL, err);
	free(sql);
	return st;
}

static ef_status embed_all(struct engine *e, struct ef_error *err)
{
	ef_status st;

	if (ef_embed_pool_new(e->ecfg, (unsigned)e->cfg->concurrency, &e->pool, err) != EF_OK ||
	    prepare(e, err) != EF_OK || quarantine_known(e, err) != EF_OK)
		return err->status;
	if (!(e->held = calloc((size_t)e->cfg->concurrency + 1, sizeof(*e->held))))
		return ef_error_oom(err, "starting the run");
	ef_embed_pool_set_flags(e->pool, e->o->cancel, e->o->pause);
	logf_(e, "run %lld: %lld chunks to embed in batches of %d, %d in flight", e->run_id,
	      e->prog.total, e->cfg->batch_size, e->cfg->concurrency);
	report(e, true);
	st = deferred_counts(e, err);
	if (st == EF_OK)
		st = loop(e, err);
	report(e, true);
	if (st == EF_OK)
		st = converged(e, err);
	return st;
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
	ef_status st = ef_run_index_before(e->s, e->o->collection, e->o->rebuild_index, e->run_id,
					   ri, index_note, e, err);

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

ef_status ef_run_execute(ef_session *s, const struct ef_embed_config *ecfg,
			 const struct ef_run_opts *o, struct ef_run_result *res,
			 struct ef_error *err)
{
	const struct ef_config *cfg = ef_session_config(s);
	struct engine e = { .s = s, .cfg = cfg, .ecfg = ecfg, .o = o, .res = res };
	struct ef_run_index *ri = calloc(1, sizeof(*ri));
	long long todo = 0;
	ef_status st;

	memset(res, 0, sizeof(*res));
	res->dry_run = o->dry_run;
	clock_gettime(CLOCK_MONOTONIC, &e.t0);
	e.prog.concurrency = (unsigned)cfg->concurrency;
	e.prog.eta_s = -1;
	res->before.unknown = true;
	st = ri ? open_engine(&e, err) : ef_error_oom(err, NULL);
	if (st == EF_OK && (st = lock_collection(&e, err)) == EF_ERR_BUSY)
		st = busy(&e, err);
	if (st == EF_OK && (!o->resume || o->dry_run))
		st = counts(&e, &res->before, err);
	if (st == EF_OK)
		st = check_provider(&e, err);
	if (st == EF_OK)
		st = begin(&e, &todo, err);
	e.prog.run_id = e.run_id;
	e.prog.total = todo;
	if (st == EF_OK && !o->dry_run)
		st = backup_rows(&e, err);
	if (st == EF_OK && !o->dry_run)
		st = index_before(&e, ri, err);
	if (st == EF_OK && !o->dry_run)
		st = embed_all(&e, err);
	if (st == EF_OK && !o->dry_run)
		st = index_after(&e, ri, err);
	else if (ri && (ri->dropped || ri->ix.ndropped) && !o->dry_run)
		logf_(&e, "vector indexes of %s stay dropped: `embfill run --resume` rebuilds them",
		      ri->ix.table);
	free(ri);
	fill_result(&e, st);
	if (e.db && !o->dry_run && res->written > 0) {
		struct ef_error ignored;
		ef_coll_record_origin(s, o->collection, &ignored);
	}
	if (e.run_id && !o->dry_run && st != EF_ERR_BUSY)
		end_record(&e, res->state, st == EF_OK ? NULL : err->msg);
	/* after a database error the counts are not worth a second failure:
	 * they are unknown, and said to be */
	res->after.unknown = true;
	if (e.db && st != EF_ERR_BUSY && st != EF_ERR_DB) {
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
