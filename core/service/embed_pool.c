/*
 * embed_pool.c - several embedding requests in flight over one curl multi
 * handle.
 *
 * A submitted batch is a job; a job is answered by one or more requests,
 * each covering a slice [off, off+len) of its inputs.  A request that must
 * be retried waits in the queue until its backoff delay is over; a request
 * that is too large is replaced by two requests for its halves; a request
 * of one input that the service refuses marks that input rejected.  A job
 * is handed back once every input has a vector or a reason.  Everything
 * runs in the caller's thread, inside ef_embed_pool_next.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_http.h"

/* How long one wait may last before the cancel flag is looked at again. */
#define POLL_SLICE_MS 50

struct job {
	struct job *next;
	size_t remaining;          /* inputs without a vector or a reason yet */
	char **texts;
	struct ef_embed_result *res;
	double t0;
};

struct req {
	struct req *next;
	struct job *job;
	size_t off, len;
	unsigned attempt;          /* transient failures so far */
	int prev_dim;              /* uniform wrong dim of the last answers */
	unsigned dim_repeats;      /* how many answers in a row had it */
	size_t prev_bad;           /* 1 + the input whose vector the last answer
				      refused as unusable, 0 none */
	double ready_ms;
	struct ef_embed_xfer x;
};

struct ef_embed_pool {
	struct ef_embed_resolved cfg;
	CURLM *multi;
	unsigned concurrency;
	const atomic_int *cancel, *pause;
	struct req *waiting;       /* new, or backing off */
	struct req *active;        /* on the wire */
	struct job *jobs;          /* unfinished */
	struct job *done;          /* finished, in order, not yet handed back */
	size_t pending;
	unsigned reject_streak;
	struct ef_embed_counters c;
	struct ef_error fatal;     /* status != EF_OK: the pool has stopped */
};

/* --- lists ---------------------------------------------------------------- */

static void req_append(struct req **list, struct req *r)
{
	while (*list)
		list = &(*list)->next;
	r->next = NULL;
	*list = r;
}

static void req_unlink(struct req **list, struct req *r)
{
	while (*list && *list != r)
		list = &(*list)->next;
	if (*list)
		*list = r->next;
	r->next = NULL;
}

static void job_append(struct job **list, struct job *j)
{
	while (*list)
		list = &(*list)->next;
	j->next = NULL;
	*list = j;
}

static void job_unlink(struct job **list, struct job *j)
{
	while (*list && *list != j)
		list = &(*list)->next;
	if (*list)
		*list = j->next;
	j->next = NULL;
}

static void job_free(struct job *j)
{
	size_t n = j->res ? j->res->n : 0;

	for (size_t i = 0; j->texts && i < n; i++)
		free(j->texts[i]);
	free(j->texts);
	ef_embed_result_free(j->res);
	free(j);
}

void ef_embed_result_free(struct ef_embed_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; res->reasons && i < res->n; i++)
		free(res->reasons[i]);
	free(res->reasons);
	free(res->rejected);
	free(res->vectors);
	free(res);
}

/* --- stopping ------------------------------------------------------------- */

static void req_free(struct ef_embed_pool *p, struct req *r)
{
	if (r->x.easy)
		curl_multi_remove_handle(p->multi, r->x.easy);
	ef_embed_xfer_cleanup(&r->x);
	free(r);
}

/*
 * Drops every unfinished job and transfer; finished jobs stay, to be
 * handed back before the error, since their vectors are good.
 */
static void abandon_all(struct ef_embed_pool *p)
{
	struct req *r;
	struct job *j;

	while ((r = p->active) != NULL) {
		p->active = r->next;
		req_free(p, r);
	}
	while ((r = p->waiting) != NULL) {
		p->waiting = r->next;
		req_free(p, r);
	}
	while ((j = p->jobs) != NULL) {
		p->jobs = j->next;
		job_free(j);
		p->pending--;
	}
	p->c.in_flight = 0;
}

static void stop(struct ef_embed_pool *p, ef_status st, const char *msg, const char *hint)
{
	if (p->fatal.status != EF_OK)
		return;
	ef_error_set(&p->fatal, st, "%s", msg);
	ef_error_hint(&p->fatal, "%s", hint ? hint : "");
	abandon_all(p);
}

static int flag(const atomic_int *f)
{
	return f && atomic_load(f) != 0;
}

static void check_cancel(struct ef_embed_pool *p)
{
	char msg[160];
	size_t unfinished = 0;

	if (!flag(p->cancel) || p->fatal.status != EF_OK)
		return;
	for (const struct job *j = p->jobs; j; j = j->next)
		unfinished++;
	snprintf(msg, sizeof(msg), "embedding cancelled with %zu batch(es) unfinished",
		 unfinished);
	stop(p, EF_ERR_INTERRUPTED, msg, "finished batches are kept; resume with "
	     "`embfill run --resume`");
}

/* --- outcomes ------------------------------------------------------------- */

static void job_finished(struct ef_embed_pool *p, struct job *j)
{
	j->res->elapsed_ms = ef_embed_now_ms() - j->t0;
	job_unlink(&p->jobs, j);
	job_append(&p->done, j);
}

/*
 * A service that answers base64 requests with numbers ignores the
 * parameter: asking for it again only makes every request longer.
 */
static void learn_encoding(struct ef_embed_pool *p, bool asked_base64,
			   const struct ef_embed_vectors *v)
{
	if (v->encoding == EF_EMBED_ENC_BASE64) {
		p->c.answers_base64++;
		return;
	}
	p->c.answers_float++;
	if (asked_base64 && p->cfg.encoding == EF_EMBED_ENC_AUTO)
		p->cfg.base64 = false;
}

static void place(struct ef_embed_pool *p, struct req *r, const struct ef_embed_vectors *v)
{
	struct job *j = r->job;
	size_t row = (size_t)p->cfg.dim;

	memcpy(j->res->vectors + r->off * row, v->data, r->len * row * sizeof(float));
	j->remaining -= r->len;
	p->reject_streak = 0;
	free(r);
	if (j->remaining == 0)
		job_finished(p, j);
}

/*
 * A whole run of rejected inputs is not bad data but a bad setting (a
 * model that refuses everything, a chunk size over its context): stop
 * before the entire collection lands in quarantine.
 */
static void reject(struct ef_embed_pool *p, struct req *r, const char *reason)
{
	struct job *j = r->job;
	char msg[EF_ERR_TEXT_MAX];

	j->res->rejected[r->off] = 1;
	j->res->reasons[r->off] = strdup(reason);
	j->res->n_rejected++;
	j->remaining--;
	p->c.rejected++;
	free(r);
	if (++p->reject_streak >= p->cfg.reject_streak_max) {
		snprintf(msg, sizeof(msg), "embedding service \"%s\" rejected %u inputs in a row; "
			 "the last: %.400s", p->cfg.shown, p->reject_streak, reason);
		stop(p, EF_ERR_EMBED, msg, "that is a setting, not the data: check EMBED_MODEL, "
		     "EMBED_PROVIDER and MAX_CHUNK_SIZE against the service");
	} else if (j->remaining == 0) {
		job_finished(p, j);
	}
}

static struct req *req_new(struct job *j, size_t off, size_t len)
{
	struct req *r = calloc(1, sizeof(*r));

	if (r) {
		r->job = j;
		r->off = off;
		r->len = len;
	}
	return r;
}

/*
 * The vector of input bad - 1 came back unusable twice in a row: it is
 * asked for alone, marked so that one more unusable answer rejects it,
 * and the inputs before and after it are asked for again, since the
 * answers that held them were thrown away.  First in the queue, as below.
 */
static void isolate(struct ef_embed_pool *p, struct req *r, size_t bad)
{
	size_t at = bad - 1, tail = r->len - at - 1;
	struct req *one = req_new(r->job, r->off + at, 1);
	struct req *before = at ? req_new(r->job, r->off, at) : NULL;
	struct req *after = tail ? req_new(r->job, r->off + at + 1, tail) : NULL;

	if (!one || (at && !before) || (tail && !after)) {
		free(one);
		free(before);
		free(after);
		free(r);
		return stop(p, EF_ERR_EMBED, "out of memory isolating an input", NULL);
	}
	one->prev_bad = 1;
	if (after)
		after->next = p->waiting;
	if (before)
		before->next = after ? after : p->waiting;
	one->next = before ? before : after ? after : p->waiting;
	p->waiting = one;
	r->job->res->splits++;
	p->c.splits++;
	free(r);
}

/* Numbers work everywhere: the same request again, at once, asking for them. */
static void fall_back(struct ef_embed_pool *p, struct req *r)
{
	p->cfg.base64 = false;
	p->c.base64_refused++;
	r->ready_ms = 0;
	r->next = p->waiting;
	p->waiting = r;
}

/* Halves go first in the queue: a split job should finish, not linger. */
static void split(struct ef_embed_pool *p, struct req *r)
{
	size_t half = r->len / 2;
	struct req *a = req_new(r->job, r->off, half);
	struct req *b = req_new(r->job, r->off + half, r->len - half);

	if (!a || !b) {
		free(a);
		free(b);
		free(r);
		return stop(p, EF_ERR_NOMEM, "out of memory splitting a batch",
			    "free memory on this host, or lower BATCH_SIZE or EMBED_CONCURRENCY, "
			    "then try again; a run resumes where it stopped");
	}
	a->next = b;
	b->next = p->waiting;
	p->waiting = a;
	r->job->res->splits++;
	p->c.splits++;
	free(r);
}

static void retry_later(struct ef_embed_pool *p, struct req *r,
			const struct ef_embed_outcome *o)
{
	char msg[EF_ERR_TEXT_MAX];
	long delay;

	if (r->attempt + 1 >= p->cfg.max_attempts) {
		snprintf(msg, sizeof(msg), "giving up after %u attempts: %s", r->attempt + 1,
			 o->cause);
		free(r);
		return stop(p, EF_ERR_EMBED, msg, "the service keeps failing: check its health and "
			    "logs, then resume with `embfill run --resume`");
	}
	delay = o->dim_seen ? 0 : ef_embed_backoff(r->attempt, p->cfg.backoff_base_ms,
						   p->cfg.backoff_max_ms, o->retry_after_ms,
						   &p->cfg.rng);
	r->attempt++;
	r->prev_dim = o->dim_seen;
	r->dim_repeats = o->dim_repeats;
	r->prev_bad = o->bad_item;
	r->ready_ms = ef_embed_now_ms() + (double)delay;
	r->job->res->retries++;
	p->c.retries++;
	req_append(&p->waiting, r);
}

static void finish(struct ef_embed_pool *p, struct req *r, CURLcode rc)
{
	struct ef_embed_exchange ex;
	struct ef_embed_outcome o;
	double t0;

	curl_multi_remove_handle(p->multi, r->x.easy);
	req_unlink(&p->active, r);
	p->c.in_flight--;
	if (rc == CURLE_ABORTED_BY_CALLBACK && flag(p->cancel)) {
		ef_embed_xfer_cleanup(&r->x);
		free(r);
		return check_cancel(p);
	}
	ef_embed_xfer_exchange(&r->x, rc, &p->cfg, r->len, &ex);
	ex.prev_dim = r->prev_dim;
	ex.dim_repeats = r->dim_repeats;
	ex.prev_bad = r->prev_bad;
	t0 = ef_embed_now_ms();
	ef_embed_classify(&ex, &o);
	p->c.parse_ms += ef_embed_now_ms() - t0;
	ef_embed_xfer_cleanup(&r->x);
	switch (o.action) {
	case EF_EMBED_ACT_OK:
		learn_encoding(p, ex.base64_asked, &o.vec);
		place(p, r, &o.vec);
		break;
	case EF_EMBED_ACT_RETRY: retry_later(p, r, &o); break;
	case EF_EMBED_ACT_SPLIT: split(p, r); break;
	case EF_EMBED_ACT_REJECT: reject(p, r, o.cause); break;
	case EF_EMBED_ACT_FALLBACK: fall_back(p, r); break;
	case EF_EMBED_ACT_ISOLATE: isolate(p, r, o.bad_item); break;
	default: free(r); stop(p, EF_ERR_EMBED, o.cause, o.hint); break;
	}
	free(o.vec.data);
}

/* --- driving -------------------------------------------------------------- */

static void launch(struct ef_embed_pool *p, struct req *r)
{
	struct ef_error err = { EF_OK, "", "" };
	const char *const *texts = (const char *const *)(r->job->texts + r->off);

	req_unlink(&p->waiting, r);
	if (ef_embed_xfer_init(&r->x, &p->cfg, texts, r->len, p->cancel, &err) != EF_OK ||
	    curl_easy_setopt(r->x.easy, CURLOPT_PRIVATE, r) != CURLE_OK ||
	    curl_multi_add_handle(p->multi, r->x.easy) != CURLM_OK) {
		ef_embed_xfer_cleanup(&r->x);
		free(r);
		return stop(p, EF_ERR_EMBED, err.msg[0] ? err.msg : "cannot start a request",
			    err.hint);
	}
	req_append(&p->active, r);
	p->c.requests++;
	if (++p->c.in_flight > p->c.in_flight_max)
		p->c.in_flight_max = p->c.in_flight;
}

static void start_ready(struct ef_embed_pool *p)
{
	double now = ef_embed_now_ms();
	struct req *r = p->waiting, *next;

	if (flag(p->pause))
		return;
	for (; r && p->c.in_flight < p->concurrency && p->fatal.status == EF_OK; r = next) {
		next = r->next;
		if (r->ready_ms <= now)
			launch(p, r);
	}
}

/* The wait until the deadline, the next backoff timer, or the slice end. */
static int wait_ms(const struct ef_embed_pool *p, double deadline)
{
	double now = ef_embed_now_ms();
	double until = deadline;

	for (const struct req *r = p->waiting; r && !flag(p->pause); r = r->next)
		if (p->c.in_flight < p->concurrency && r->ready_ms < until)
			until = r->ready_ms;
	if (until > now + POLL_SLICE_MS)
		until = now + POLL_SLICE_MS;
	return until <= now ? 0 : (int)ceil(until - now);
}

static void collect(struct ef_embed_pool *p)
{
	CURLMsg *m;
	int left;

	while (p->fatal.status == EF_OK && (m = curl_multi_info_read(p->multi, &left))) {
		char *priv = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		if (priv)
			finish(p, (struct req *)priv, m->data.result);
	}
}

static void step(struct ef_embed_pool *p, double deadline)
{
	int running = 0;

	start_ready(p);
	if (p->fatal.status != EF_OK)
		return;
	curl_multi_poll(p->multi, NULL, 0, wait_ms(p, deadline), NULL);
	curl_multi_perform(p->multi, &running);
	collect(p);
}

static struct ef_embed_result *pop_done(struct ef_embed_pool *p)
{
	struct job *j = p->done;
	struct ef_embed_result *res = j->res;

	p->done = j->next;
	j->res = NULL;
	for (size_t i = 0; i < res->n; i++)
		free(j->texts[i]);
	free(j->texts);
	free(j);
	p->pending--;
	p->c.batches++;
	return res;
}

ef_status ef_embed_pool_next(ef_embed_pool *p, int timeout_ms,
			     struct ef_embed_result **done, struct ef_error *err)
{
	double deadline = timeout_ms < 0 ? INFINITY : ef_embed_now_ms() + timeout_ms;
	int stepped = 0;

	*done = NULL;
	ef_error_clear(err);
	for (;;) {
		check_cancel(p);
		if (p->done) {
			*done = pop_done(p);
			return EF_OK;
		}
		if (p->fatal.status != EF_OK) {
			if (err)
				*err = p->fatal;
			return p->fatal.status;
		}
		if (!p->jobs || (stepped && ef_embed_now_ms() >= deadline))
			return EF_OK;
		step(p, deadline);
		stepped = 1;
	}
}

/* --- the pool's life ------------------------------------------------------ */

ef_status ef_embed_pool_new(const struct ef_embed_config *cfg, unsigned concurrency,
			    ef_embed_pool **out, struct ef_error *err)
{
	struct ef_embed_pool *p;

	*out = NULL;
	ef_error_clear(err);
	if (concurrency < 1 || concurrency > 64) {
		ef_error_set(err, EF_ERR_USAGE, "embedding concurrency %u is out of range", concurrency);
		return ef_error_hint(err, "set EMBED_CONCURRENCY between 1 and 64");
	}
	if (cfg->dim <= 0) {
		ef_error_set(err, EF_ERR_USAGE, "the embedding dimension is not set");
		return ef_error_hint(err, "set EMBED_DIM to the model's dimension "
				     "(`embfill doctor` shows what the service returns)");
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return ef_error_oom(err, "creating the embedding pool");
	if (ef_embed_resolve(cfg, &p->cfg, err) != EF_OK) {
		free(p);
		return err ? err->status : EF_ERR_USAGE;
	}
	p->concurrency = concurrency;
	p->multi = curl_multi_init();
	if (!p->multi) {
		ef_embed_pool_free(p);
		return ef_error_set(err, EF_ERR_EMBED, "cannot create a curl multi handle");
	}
	curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)concurrency);
	*out = p;
	return EF_OK;
}

void ef_embed_pool_set_flags(ef_embed_pool *p, const atomic_int *cancel, const atomic_int *pause)
{
	p->cancel = cancel;
	p->pause = pause;
}

static struct job *job_new(const struct ef_embed_pool *p, void *tag, size_t n)
{
	struct job *j = calloc(1, sizeof(*j));
	size_t rows = n ? n : 1;

	if (!j || !(j->res = calloc(1, sizeof(*j->res)))) {
		free(j);
		return NULL;
	}
	j->res->tag = tag;
	j->res->n = n;
	j->res->dim = p->cfg.dim;
	j->res->vectors = calloc(rows * (size_t)(p->cfg.dim ? p->cfg.dim : 1), sizeof(float));
	j->res->rejected = calloc(rows, 1);
	j->res->reasons = calloc(rows, sizeof(char *));
	j->texts = calloc(rows, sizeof(char *));
	j->remaining = n;
	j->t0 = ef_embed_now_ms();
	if (!j->res->vectors || !j->res->rejected || !j->res->reasons || !j->texts) {
		job_free(j);
		return NULL;
	}
	return j;
}

static int copy_texts(struct job *j, const char *const *texts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(j->texts[i] = strdup(texts[i])))
			return -1;
	return 0;
}

ef_status ef_embed_pool_submit(ef_embed_pool *p, void *tag, const char *const *texts,
			       size_t n, struct ef_error *err)
{
	struct job *j;
	struct req *r = NULL;

	ef_error_clear(err);
	if (p->fatal.status != EF_OK) {
		if (err)
			*err = p->fatal;
		return p->fatal.status;
	}
	for (size_t i = 0; i < n; i++)
		if (!texts[i])
			return ef_error_set(err, EF_ERR_USAGE, "input %zu of the batch is NULL", i);
	j = job_new(p, tag, n);
	if (!j || copy_texts(j, texts, n) != 0 || (n > 0 && !(r = req_new(j, 0, n)))) {
		if (j)
			job_free(j);
		return ef_error_oom(err, "queueing a batch for the embedding service");
	}
	p->pending++;
	job_append(n ? &p->jobs : &p->done, j);
	if (r)
		req_append(&p->waiting, r);
	return EF_OK;
}

unsigned ef_embed_pool_in_flight(const ef_embed_pool *p)
{
	return p->c.in_flight;
}

size_t ef_embed_pool_pending(const ef_embed_pool *p)
{
	return p->pending;
}

void ef_embed_pool_counters(const ef_embed_pool *p, struct ef_embed_counters *out)
{
	*out = p->c;
}

enum ef_embed_encoding ef_embed_pool_encoding(const ef_embed_pool *p)
{
	return p->cfg.base64 ? EF_EMBED_ENC_BASE64 : EF_EMBED_ENC_FLOAT;
}

void ef_embed_pool_wakeup(ef_embed_pool *p)
{
	curl_multi_wakeup(p->multi);
}

void ef_embed_pool_free(ef_embed_pool *p)
{
	struct job *j;

	if (!p)
		return;
	if (p->multi)
		abandon_all(p);
	while ((j = p->done) != NULL) {
		p->done = j->next;
		job_free(j);
	}
	if (p->multi)
		curl_multi_cleanup(p->multi);
	ef_embed_resolved_release(&p->cfg);
	free(p);
}
