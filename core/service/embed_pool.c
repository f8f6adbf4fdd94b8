/*
 * embed_pool.c - several embedding requests in flight over one curl multi
 * handle, on one endpoint or several of one service.
 *
 * A submitted batch is a job; a job is answered by one or more requests,
 * each covering a slice [off, off+len) of its inputs.  A request waits in
 * one queue until an endpoint can take it: the endpoint with the most free
 * capacity among those that are up (and, once verification is on, proven
 * to give the reference's vectors).  A request that is too large is
 * replaced by two requests for its halves; a request of one input that the
 * service refuses marks that input rejected.  A job is handed back once
 * every input has a vector or a reason.  Everything runs in the caller's
 * thread, inside ef_embed_pool_next.
 *
 * Failures of the service and failures of its answers are told apart.  An
 * endpoint that cannot be reached or does not cope (transport, 408, 429,
 * 5xx) is rested: no request goes to it until its backoff is over, then one
 * request tries it, and it is up again when that one succeeds.  Its
 * requests go back to the queue at once, for another endpoint to take.
 * With a retry budget, the pool gives up only when every endpoint has been
 * failing for longer than the budget, so a routine restart of the service
 * is waited out.  An answer that came but cannot be used (malformed, wrong
 * count) is retried after a backoff, at most max_attempts times.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_http.h"
#include "core/service/embed_route.h"

/* How long one wait may last before the cancel flag is looked at again. */
#define POLL_SLICE_MS 50
#define NOTES 16
#define NOTE_WIDTH 240
#define RATE_SAMPLES 32

const char *const ef_embed_probe_texts[EF_EMBED_PROBE_TEXTS] = {
	"embfill endpoint probe: the same text goes to every endpoint of the service.",
	"Vectors of one model with the same weights agree, whichever server computes them.",
};

struct job {
	struct job *next;
	size_t remaining;          /* inputs without a vector or a reason yet */
	char **texts;
	struct ef_embed_result *res;
	double t0;
	int probe_of;              /* -1: a caller's batch; else the endpoint it verifies,
				      or whose route it probes */
	bool route;                /* a route probe: the probe texts to tei's OpenAI
				      route (and, timed again, to /embed) */
	unsigned round;            /* route probe: requests answered so far */
};

struct endpoint;

struct req {
	struct req *next;
	struct job *job;
	struct endpoint *ep;       /* the endpoint it is on the wire to; NULL waiting */
	size_t off, len;
	unsigned attempt;          /* failures that count against max_attempts */
	int prev_dim;              /* uniform wrong dim of the last answers */
	unsigned dim_repeats;      /* how many answers in a row had it */
	size_t prev_bad;           /* 1 + the input whose vector the last answer
				      refused as unusable, 0 none */
	double ready_ms;
	enum ef_embed_provider via; /* the API it went out on (tei: TEI or OPENAI) */
	struct ef_embed_xfer x;
};

struct endpoint {
	struct ef_embed_resolved cfg;  /* its URL, and the encoding it accepts: the
					  route work goes to */
	struct ef_embed_resolved alt;  /* tei: the other route (/v1/embeddings while
					  cfg is /embed, or the reverse) */
	bool has_alt;
	bool route_pending;        /* tei: no work before the route probe decided */
	float *route_native;       /* /embed's vectors of the probe texts */
	struct ef_embed_route_info route;
	size_t index;
	bool refused;              /* out of rotation for the pool's life */
	bool verified;             /* gave the reference's vectors (or no check asked) */
	bool tried;                /* its probe failed at least once */
	float *answer;             /* its probe's vectors, before the reference is chosen */
	unsigned in_flight;
	unsigned fails;            /* failures in a row: the rest's exponent */
	double down_ms;            /* first failure in a row (monotonic); 0: up */
	time_t down_wall;
	double rest_until_ms;      /* no request before this; 0: not resting */
	unsigned long requests, errors, items;
	double rate_t[RATE_SAMPLES];
	unsigned long rate_items[RATE_SAMPLES];
	int nrate;
	char last_error[200];
};

struct ef_embed_pool {
	struct ef_embed_resolved cfg;  /* what all endpoints share (the first one's) */
	struct endpoint *eps;
	size_t neps;
	CURLM *multi;
	unsigned concurrency;      /* per endpoint */
	const atomic_int *cancel, *pause;
	struct req *waiting;       /* new, retried, or backing off */
	struct req *active;        /* on the wire */
	struct job *jobs;          /* unfinished */
	struct job *done;          /* finished, in order, not yet handed back */
	size_t pending;            /* the caller's batches not yet handed back */
	unsigned reject_streak;
	size_t too_large;          /* the fewest inputs a request was refused for as too
				      large (0: none): later batches go out in parts below */
	size_t fits;               /* the most inputs a request was answered for */
	struct ef_embed_counters c;
	struct ef_error fatal;     /* status != EF_OK: the pool has stopped */
	/* verification: one vector space across endpoints */
	bool verifying;            /* endpoints must match the reference before work */
	bool in_verify;            /* inside ef_embed_pool_verify: a mismatch is fatal */
	char **probe_texts;
	size_t nprobe;
	float *ref;                /* nprobe x dim, NULL until known */
	char ref_from[192];        /* where the reference came from */
	char notes[NOTES][NOTE_WIDTH];
	int note_first, nnotes;
};

static void note(struct ef_embed_pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void start_route(struct ef_embed_pool *p, struct endpoint *ep, const float *native);
enum routed { NOT_ROUTED, ROUTED_AGAIN, ROUTED_DONE };
static enum routed route_answer(struct ef_embed_pool *p, struct endpoint *ep, struct req *r,
				const struct ef_embed_exchange *ex,
				const struct ef_embed_outcome *o, double ms);

static void note(struct ef_embed_pool *p, const char *fmt, ...)
{
	int at;
	va_list ap;

	if (p->nnotes == NOTES) {
		p->note_first = (p->note_first + 1) % NOTES;
		p->nnotes--;
	}
	at = (p->note_first + p->nnotes++) % NOTES;
	va_start(ap, fmt);
	vsnprintf(p->notes[at], NOTE_WIDTH, fmt, ap);
	va_end(ap);
	ef_embed_scrub(p->notes[at], NOTE_WIDTH, p->cfg.api_key);
}

/* --- lists ---------------------------------------------------------------- */

static void req_append(struct req **list, struct req *r)
{
	while (*list)
		list = &(*list)->next;
	r->next = NULL;
	*list = r;
}

static void req_push(struct req **list, struct req *r)
{
	r->next = *list;
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

static bool batch_jobs(const struct ef_embed_pool *p)
{
	for (const struct job *j = p->jobs; j; j = j->next)
		if (j->probe_of < 0)
			return true;
	return false;
}

/* --- stopping ------------------------------------------------------------- */

/* Frees a request; one on the wire is taken off it first. */
static void req_free(struct ef_embed_pool *p, struct req *r)
{
	if (r->x.easy)
		curl_multi_remove_handle(p->multi, r->x.easy);
	if (r->ep) {
		r->ep->in_flight--;
		p->c.in_flight--;
	}
	ef_embed_xfer_cleanup(&r->x);
	free(r);
}

/* Drops every request of job j, wherever it is. */
static void drop_reqs_of(struct ef_embed_pool *p, const struct job *j)
{
	struct req **lists[2] = { &p->active, &p->waiting };

	for (int l = 0; l < 2; l++) {
		struct req **at = lists[l];

		while (*at) {
			struct req *r = *at;

			if (r->job != j) {
				at = &r->next;
				continue;
			}
			*at = r->next;
			req_free(p, r);
		}
	}
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
		if (j->probe_of < 0)
			p->pending--;
		job_free(j);
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
		unfinished += j->probe_of < 0;
	snprintf(msg, sizeof(msg), "embedding cancelled with %zu batch(es) unfinished",
		 unfinished);
	stop(p, EF_ERR_INTERRUPTED, msg, "finished batches are kept; resume with "
	     "`embfill run --resume`");
}

/* --- endpoints -------------------------------------------------------------- */

static size_t usable_endpoints(const struct ef_embed_pool *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->neps; i++)
		n += !p->eps[i].refused;
	return n;
}

static void clock_text(time_t t, char *buf, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, size, "%H:%M:%S", &tm);
}

/* An answer came: the endpoint is up, whatever it was before. */
static void endpoint_ok(struct ef_embed_pool *p, struct endpoint *ep)
{
	if (ep->down_ms)
		note(p, "endpoint \"%s\" answers again after %.0f s", ep->cfg.shown,
		     (ef_embed_now_ms() - ep->down_ms) / 1000.0);
	ep->fails = 0;
	ep->down_ms = 0;
	ep->down_wall = 0;
	ep->rest_until_ms = 0;
}

/*
 * The endpoint cannot be reached or does not cope: it rests for an
 * exponential, jittered delay (at least what it asked for), counted from
 * the first failure of a round; failures of requests that were on the
 * wire during the rest do not lengthen it.
 */
static void endpoint_failed(struct ef_embed_pool *p, struct endpoint *ep, const char *cause,
			    long asked_ms)
{
	double now = ef_embed_now_ms();
	long delay;

	ep->errors++;
	snprintf(ep->last_error, sizeof(ep->last_error), "%.199s", cause);
	if (!ep->down_ms) {
		char at[16];

		ep->down_ms = now;
		ep->down_wall = time(NULL);
		clock_text(ep->down_wall, at, sizeof(at));
		note(p, "endpoint \"%s\" unavailable since %s: %.120s", ep->cfg.shown, at, cause);
	}
	if (ep->rest_until_ms > now) {
		if (asked_ms > 0 && now + (double)asked_ms > ep->rest_until_ms)
			ep->rest_until_ms = now + (double)asked_ms;
		return;
	}
	delay = ef_embed_backoff(ep->fails, p->cfg.backoff_base_ms, p->cfg.backoff_max_ms,
				 asked_ms, &p->cfg.rng);
	ep->fails++;
	ep->rest_until_ms = now + (double)delay;
}

/* Drops the endpoint's verification and route probes. */
static void drop_probe(struct ef_embed_pool *p, struct endpoint *ep)
{
	struct job *j = p->jobs, *next;

	for (; j; j = next) {
		next = j->next;
		if (j->probe_of != (int)ep->index)
			continue;
		drop_reqs_of(p, j);
		job_unlink(&p->jobs, j);
		job_free(j);
	}
	ep->route_pending = false;
}

/*
 * An endpoint that refuses (a bad key, a model it does not have, other
 * vectors than the others) is taken out of rotation; the others carry on.
 * The last one, or any while the endpoints are being verified before a
 * run, stops the pool with the cause: nothing was written from it.
 */
static void refuse_endpoint(struct ef_embed_pool *p, struct endpoint *ep, const char *cause,
			    const char *hint)
{
	if (p->in_verify || usable_endpoints(p) <= 1)
		return stop(p, EF_ERR_EMBED, cause, hint);
	ep->refused = true;
	ep->errors++;
	snprintf(ep->last_error, sizeof(ep->last_error), "%.199s", cause);
	note(p, "endpoint \"%s\" taken out of rotation: %.150s", ep->cfg.shown, cause);
	drop_probe(p, ep);
}

/* The configuration of the API a request goes out on: the endpoint's
 * route, or for a tei endpoint's probes the other one. */
static struct ef_embed_resolved *cfg_via(struct endpoint *ep, enum ef_embed_provider via)
{
	return ep->has_alt && ep->alt.provider == via ? &ep->alt : &ep->cfg;
}

/*
 * Work goes to the endpoint's route.  A tei endpoint's verification goes
 * to /embed, whose vectors the route probe compares with; the route probe
 * goes to /v1/embeddings, and when timed again to /embed then
 * /v1/embeddings.
 */
static enum ef_embed_provider route_of(const struct endpoint *ep, const struct req *r)
{
	const struct job *j = r->job;

	if (!ep->has_alt || j->probe_of < 0)
		return ep->cfg.provider;
	if (j->route && j->round % 2 == 0)
		return EF_EMBED_OPENAI;
	return EF_EMBED_TEI;
}

/* Whether request r may go to endpoint ep now. */
static bool takes(const struct ef_embed_pool *p, const struct endpoint *ep, const struct req *r,
		  double now)
{
	if (ep->refused)
		return false;
	if (r->job->probe_of >= 0 ? (size_t)r->job->probe_of != ep->index
				  : p->verifying && !ep->verified)
		return false;
	if (ep->route_pending && r->job->probe_of < 0)
		return false;
	if (ep->rest_until_ms)
		return now >= ep->rest_until_ms && ep->in_flight == 0;
	return ep->in_flight < p->concurrency;
}

/* The endpoint with the most free capacity that takes r, or NULL. */
static struct endpoint *pick(struct ef_embed_pool *p, const struct req *r, double now)
{
	struct endpoint *best = NULL;

	for (size_t i = 0; i < p->neps; i++) {
		struct endpoint *ep = &p->eps[i];

		if (takes(p, ep, r, now) && (!best || ep->in_flight < best->in_flight))
			best = ep;
	}
	return best;
}

/*
 * With a retry budget, the pool gives up only when every endpoint has
 * been failing for longer than the budget: one that is up, or back within
 * it, carries the run.
 */
static void check_budget(struct ef_embed_pool *p)
{
	char msg[EF_ERR_TEXT_MAX], at[16];
	double now = ef_embed_now_ms();
	size_t len = 0;
	const struct endpoint *last = NULL;

	if (!p->cfg.retry_budget_ms || !batch_jobs(p) || p->fatal.status != EF_OK)
		return;
	for (size_t i = 0; i < p->neps; i++) {
		const struct endpoint *ep = &p->eps[i];

		if (ep->refused)
			continue;
		if (!ep->down_ms || now - ep->down_ms < (double)p->cfg.retry_budget_ms)
			return;
		last = ep;
	}
	if (!last)
		return;
	if (usable_endpoints(p) == 1) {
		clock_text(last->down_wall, at, sizeof(at));
		snprintf(msg, sizeof(msg), "embedding service \"%s\" has been unavailable since %s, "
			 "longer than the retry budget (EMBED_RETRY_BUDGET_S=%ld): %s",
			 last->cfg.shown, at, p->cfg.retry_budget_ms / 1000, last->last_error);
	} else {
		len = (size_t)snprintf(msg, sizeof(msg), "every embedding endpoint has been "
				       "unavailable for longer than the retry budget "
				       "(EMBED_RETRY_BUDGET_S=%ld):", p->cfg.retry_budget_ms / 1000);
		for (size_t i = 0; i < p->neps && len < sizeof(msg); i++) {
			if (p->eps[i].refused)
				continue;
			clock_text(p->eps[i].down_wall, at, sizeof(at));
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s \"%s\" since %s (%.80s)",
						i ? "," : "", p->eps[i].cfg.shown, at,
						p->eps[i].last_error);
		}
	}
	stop(p, EF_ERR_EMBED, msg, "check the service and its logs, then resume with `embfill run "
	     "--resume`; raise EMBED_RETRY_BUDGET_S to wait out longer outages");
}

/* --- verification ----------------------------------------------------------- */

/* The first components of a vector, for a message. */
static void head_of(const float *v, int dim, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "[");

	for (int i = 0; i < 3 && i < dim && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%.4f", i ? ", " : "", (double)v[i]);
	if (len < size)
		snprintf(buf + len, size - len, "%s]", dim > 3 ? ", ..." : "");
}

/* Compares an endpoint's probe vectors with the reference: true when every
 * pair agrees; else the evidence in msg. */
static bool same_space(const struct ef_embed_pool *p, const struct endpoint *ep,
		       const float *v, char *msg, size_t size)
{
	int dim = p->cfg.dim;
	char mine[96], theirs[96];

	for (size_t i = 0; i < p->nprobe; i++) {
		const float *a = v + i * (size_t)dim, *b = p->ref + i * (size_t)dim;
		double cos = ef_embed_cosine(a, b, dim);

		if (cos >= EF_EMBED_SAME_COSINE)
			continue;
		head_of(a, dim, mine, sizeof(mine));
		head_of(b, dim, theirs, sizeof(theirs));
		snprintf(msg, size, "embedding endpoint \"%.150s\" gives other vectors than %.152s for the "
			 "same text (\"%.60s\"): cosine %.4f, at least %.3f expected; %.95s against %.95s: "
			 "another model or other weights behind the name \"%.100s\"", ep->cfg.shown,
			 p->ref_from, p->probe_texts[i], cos, EF_EMBED_SAME_COSINE, mine, theirs,
			 p->cfg.model ? p->cfg.model : "");
		return false;
	}
	return true;
}

static const char mismatch_hint[] =
	"every endpoint of EMBED_URL must serve the same model with the same weights: take it "
	"out of EMBED_URL, or load the right model on it";

static void set_reference(struct ef_embed_pool *p, const struct endpoint *ep, float *v)
{
	free(p->ref);
	p->ref = v;
	snprintf(p->ref_from, sizeof(p->ref_from), "\"%.180s\"", ep->cfg.shown);
}

/* An endpoint's probe was answered: it joins the rotation, or is refused. */
static void judge(struct ef_embed_pool *p, struct endpoint *ep, float *v)
{
	char msg[EF_ERR_TEXT_MAX];

	if (!p->ref && p->in_verify) {
		free(ep->answer);
		ep->answer = v;
		return;
	}
	if (!p->ref) {
		set_reference(p, ep, v);
		ep->verified = true;
		note(p, "endpoint \"%s\" verified: its vectors are the reference", ep->cfg.shown);
		return;
	}
	if (same_space(p, ep, v, msg, sizeof(msg))) {
		ep->verified = true;
		if (!p->in_verify)
			note(p, "endpoint \"%s\" verified: same vectors as %s", ep->cfg.shown,
			     p->ref_from);
	} else {
		refuse_endpoint(p, ep, msg, mismatch_hint);
	}
	free(v);
}

static void probe_finished(struct ef_embed_pool *p, struct job *j)
{
	struct endpoint *ep = &p->eps[j->probe_of];
	struct ef_embed_result *res = j->res;
	char msg[EF_ERR_TEXT_MAX];
	float *native;

	job_unlink(&p->jobs, j);
	if (res->n_rejected) {
		size_t i = 0;

		while (!res->rejected[i])
			i++;
		snprintf(msg, sizeof(msg), "embedding endpoint \"%s\" refuses the probe text "
			 "\"%.60s\": %s", ep->cfg.shown, j->texts[i],
			 res->reasons[i] ? res->reasons[i] : "rejected");
		job_free(j);
		return refuse_endpoint(p, ep, msg, "check the endpoint's model and limits");
	}
	native = ep->route_pending ? malloc(p->nprobe * (size_t)p->cfg.dim * sizeof(float)) : NULL;
	if (native)
		memcpy(native, res->vectors, p->nprobe * (size_t)p->cfg.dim * sizeof(float));
	judge(p, ep, res->vectors);
	res->vectors = NULL;
	job_free(j);
	if (ep->route_pending && !ep->refused && p->fatal.status == EF_OK)
		start_route(p, ep, native);
	free(native);
}

/* --- outcomes ------------------------------------------------------------- */

static void job_finished(struct ef_embed_pool *p, struct job *j)
{
	if (j->probe_of >= 0)
		return probe_finished(p, j);
	j->res->elapsed_ms = ef_embed_now_ms() - j->t0;
	job_unlink(&p->jobs, j);
	job_append(&p->done, j);
}

/*
 * A service that answers base64 requests with numbers ignores the
 * parameter: asking for it again only makes every request longer.
 */
static void learn_encoding(struct ef_embed_pool *p, struct endpoint *ep, bool asked_base64,
			   const struct ef_embed_vectors *v)
{
	if (v->encoding == EF_EMBED_ENC_BASE64) {
		p->c.answers_base64++;
		return;
	}
	p->c.answers_float++;
	if (asked_base64 && ep->cfg.encoding == EF_EMBED_ENC_AUTO)
		ep->cfg.base64 = false;
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
static void reject(struct ef_embed_pool *p, struct req *r, const char *shown, const char *reason)
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
			 "the last: %.400s", shown, p->reject_streak, reason);
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
static void fall_back(struct ef_embed_pool *p, struct endpoint *ep, struct req *r)
{
	ep->cfg.base64 = false;
	p->c.base64_refused++;
	r->ready_ms = 0;
	req_push(&p->waiting, r);
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
	if (!p->too_large || r->len < p->too_large)
		p->too_large = r->len;
	free(r);
}

/*
 * A new batch's requests: one, or, once the service refused a request of
 * too_large inputs as too large, parts of the most it answered below that
 * (at least half of it), so that a service's batch limit costs a few
 * refusals per run instead of several per batch.
 */
static int queue_batch(struct ef_embed_pool *p, struct job *j, size_t n)
{
	size_t part = n;

	/* the most that was answered below the refusal, at least half of it */
	if (p->too_large > 1) {
		part = p->fits < p->too_large ? p->fits : p->too_large - 1;
		if (part < p->too_large / 2)
			part = p->too_large / 2;
	}

	for (size_t off = 0; off < n; off += part) {
		struct req *r = req_new(j, off, n - off < part ? n - off : part);

		if (!r)
			return -1;
		req_append(&p->waiting, r);
	}
	return 0;
}

static void give_up(struct ef_embed_pool *p, struct req *r, const char *cause)
{
	char msg[EF_ERR_TEXT_MAX];

	snprintf(msg, sizeof(msg), "giving up after %u attempts: %s", r->attempt + 1, cause);
	free(r);
	stop(p, EF_ERR_EMBED, msg, "the service keeps failing: check its health and logs, then "
	     "resume with `embfill run --resume`");
}

/* The answer came and cannot be used: the same request again after a
 * backoff, on whichever endpoint takes it. */
static void retry_later(struct ef_embed_pool *p, struct endpoint *ep, struct req *r,
			const struct ef_embed_outcome *o)
{
	long delay;

	ep->errors++;
	snprintf(ep->last_error, sizeof(ep->last_error), "%.199s", o->cause);
	if (r->attempt + 1 >= p->cfg.max_attempts)
		return give_up(p, r, o->cause);
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

/* The service is away or not coping: its endpoint rests, and the request
 * goes back to the front of the queue for any endpoint that can take it. */
static void unavailable(struct ef_embed_pool *p, struct endpoint *ep, struct req *r,
			const struct ef_embed_outcome *o)
{
	endpoint_failed(p, ep, o->cause, o->retry_after_ms);
	if (r->job->probe_of >= 0)
		ep->tried = true;
	if (!p->cfg.retry_budget_ms && r->attempt + 1 >= p->cfg.max_attempts)
		return give_up(p, r, o->cause);
	if (!p->cfg.retry_budget_ms)
		r->attempt++;
	r->ready_ms = 0;
	r->job->res->retries++;
	p->c.retries++;
	req_push(&p->waiting, r);
}

static void refused_by(struct ef_embed_pool *p, struct endpoint *ep, struct req *r,
		       const struct ef_embed_outcome *o)
{
	bool probe = r->job->probe_of >= 0;

	if (probe)
		free(r);
	refuse_endpoint(p, ep, o->cause, o->hint);
	if (probe)
		return;
	if (p->fatal.status != EF_OK) {
		free(r);
		return;
	}
	r->ready_ms = 0;
	req_push(&p->waiting, r);
}

static void finish(struct ef_embed_pool *p, struct req *r, CURLcode rc)
{
	struct endpoint *ep = r->ep;
	struct ef_embed_exchange ex;
	struct ef_embed_outcome o;
	double t0, parse_ms, ms;
	enum routed routed;

	curl_multi_remove_handle(p->multi, r->x.easy);
	req_unlink(&p->active, r);
	r->ep = NULL;
	ep->in_flight--;
	p->c.in_flight--;
	if (rc == CURLE_ABORTED_BY_CALLBACK && flag(p->cancel)) {
		ef_embed_xfer_cleanup(&r->x);
		free(r);
		return check_cancel(p);
	}
	ef_embed_xfer_exchange(&r->x, rc, cfg_via(ep, r->via), r->len, &ex);
	ex.prev_dim = r->prev_dim;
	ex.dim_repeats = r->dim_repeats;
	ex.prev_bad = r->prev_bad;
	t0 = ef_embed_now_ms();
	ef_embed_classify(&ex, &o);
	parse_ms = ef_embed_now_ms() - t0;
	p->c.parse_ms += parse_ms;
	ms = ef_embed_xfer_wire_ms(&r->x) + parse_ms;
	if (o.action != EF_EMBED_ACT_RETRY || !o.unavailable)
		endpoint_ok(p, ep);
	routed = r->job->probe_of >= 0 && ep->has_alt ? route_answer(p, ep, r, &ex, &o, ms)
						       : NOT_ROUTED;
	ef_embed_xfer_cleanup(&r->x);
	if (routed != NOT_ROUTED) {
		if (routed == ROUTED_DONE)
			free(r);
		free(o.vec.data);
		return;
	}
	switch (o.action) {
	case EF_EMBED_ACT_OK:
		learn_encoding(p, ep, ex.base64_asked, &o.vec);
		ep->items += r->len;
		if (r->len > p->fits)
			p->fits = r->len;
		place(p, r, &o.vec);
		break;
	case EF_EMBED_ACT_RETRY:
		if (o.unavailable)
			unavailable(p, ep, r, &o);
		else
			retry_later(p, ep, r, &o);
		break;
	case EF_EMBED_ACT_SPLIT: split(p, r); break;
	case EF_EMBED_ACT_REJECT: reject(p, r, ep->cfg.shown, o.cause); break;
	case EF_EMBED_ACT_FALLBACK: fall_back(p, ep, r); break;
	case EF_EMBED_ACT_ISOLATE: isolate(p, r, o.bad_item); break;
	default: refused_by(p, ep, r, &o); break;
	}
	free(o.vec.data);
}

/* --- driving -------------------------------------------------------------- */

static void launch(struct ef_embed_pool *p, struct req *r, struct endpoint *ep)
{
	struct ef_error err = { EF_OK, "", "" };
	const char *const *texts = (const char *const *)(r->job->texts + r->off);

	req_unlink(&p->waiting, r);
	r->via = route_of(ep, r);
	if (ef_embed_xfer_init(&r->x, cfg_via(ep, r->via), texts, r->len, p->cancel, &err) != EF_OK ||
	    curl_easy_setopt(r->x.easy, CURLOPT_PRIVATE, r) != CURLE_OK ||
	    curl_multi_add_handle(p->multi, r->x.easy) != CURLM_OK) {
		ef_embed_xfer_cleanup(&r->x);
		free(r);
		return stop(p, EF_ERR_EMBED, err.msg[0] ? err.msg : "cannot start a request",
			    err.hint);
	}
	r->ep = ep;
	req_append(&p->active, r);
	ep->in_flight++;
	ep->requests++;
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
	for (; r && p->fatal.status == EF_OK; r = next) {
		struct endpoint *ep;

		next = r->next;
		if (r->ready_ms <= now && (ep = pick(p, r, now)) != NULL)
			launch(p, r, ep);
	}
}

/* The wait until the deadline, the next backoff timer, the end of an
 * endpoint's rest, or the slice end. */
static int wait_ms(const struct ef_embed_pool *p, double deadline)
{
	double now = ef_embed_now_ms();
	double until = deadline;

	for (const struct req *r = p->waiting; r && !flag(p->pause); r = r->next)
		if (r->ready_ms > now && r->ready_ms < until)
			until = r->ready_ms;
	for (size_t i = 0; i < p->neps && p->waiting; i++)
		if (p->eps[i].rest_until_ms > now && p->eps[i].rest_until_ms < until)
			until = p->eps[i].rest_until_ms;
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

	check_budget(p);
	start_ready(p);
	if (p->fatal.status != EF_OK)
		return;
	curl_multi_poll(p->multi, NULL, 0, wait_ms(p, deadline), NULL);
	curl_multi_perform(p->multi, &running);
	collect(p);
}

/* A request that can start goes on the wire now, not at the next wait:
 * the caller may spend a while writing what came back before it waits
 * again, and the endpoint would sit idle meanwhile. */
static void kick(struct ef_embed_pool *p)
{
	int running = 0;

	if (p->fatal.status != EF_OK || !p->waiting)
		return;
	start_ready(p);
	if (p->active)
		curl_multi_perform(p->multi, &running);
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
		if (!batch_jobs(p) || (stepped && ef_embed_now_ms() >= deadline))
			return EF_OK;
		step(p, deadline);
		stepped = 1;
	}
}

/* --- the pool's life ------------------------------------------------------ */

static void swap_routes(struct endpoint *ep)
{
	struct ef_embed_resolved t = ep->cfg;

	ep->cfg = ep->alt;
	ep->alt = t;
}

/*
 * A tei endpoint under EMBED_ENCODING=auto or base64, whose switches the
 * OpenAI route can honour, gets that route's configuration beside its own:
 * auto starts on /embed and the verification's route probe may move it;
 * base64 starts on /v1/embeddings, and the probe must confirm it.
 */
static ef_status add_route(struct endpoint *ep, const struct ef_embed_config *cfg, size_t i,
			   struct ef_error *err)
{
	struct ef_embed_config c = *cfg;
	struct ef_embed_route_info *ri = &ep->route;

	memset(ri, 0, sizeof(*ri));
	ri->native_ms = ri->openai_ms = -1;
	ri->cosine = -2;
	if (cfg->provider != EF_EMBED_TEI)
		return EF_OK;
	if (cfg->encoding == EF_EMBED_ENC_FLOAT) {
		snprintf(ri->why, sizeof(ri->why), "EMBED_ENCODING=float");
		return EF_OK;
	}
	if (!ef_embed_route_eligible(&cfg->sw, ri->why, sizeof(ri->why)))
		return EF_OK;
	if (!cfg->model || !cfg->model[0]) {
		snprintf(ri->why, sizeof(ri->why), "no EMBED_MODEL to name on /v1/embeddings");
		return EF_OK;
	}
	c.provider = EF_EMBED_OPENAI;
	memset(&c.sw, 0, sizeof(c.sw));
	if (ef_embed_resolve_at(&c, i, &ep->alt, err) != EF_OK)
		return err ? err->status : EF_ERR_USAGE;
	ep->has_alt = true;
	snprintf(ri->why, sizeof(ri->why), "not probed: only a run and doctor probe the route");
	if (cfg->encoding != EF_EMBED_ENC_BASE64)
		return EF_OK;
	swap_routes(ep);
	ri->route = EF_EMBED_ROUTE_OPENAI;
	snprintf(ri->why, sizeof(ri->why), "EMBED_ENCODING=base64, not compared with /embed");
	return EF_OK;
}

static ef_status add_endpoints(struct ef_embed_pool *p, const struct ef_embed_config *cfg,
			       struct ef_error *err)
{
	p->neps = ef_embed_endpoint_count(cfg);
	p->eps = calloc(p->neps, sizeof(*p->eps));
	if (!p->eps)
		return ef_error_oom(err, "creating the embedding pool");
	for (size_t i = 0; i < p->neps; i++) {
		struct endpoint *ep = &p->eps[i];

		ep->index = i;
		ep->verified = true;
		if (ef_embed_resolve_at(cfg, i, &ep->cfg, err) != EF_OK ||
		    add_route(ep, cfg, i, err) != EF_OK)
			return err ? err->status : EF_ERR_USAGE;
	}
	return EF_OK;
}

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
	if (add_endpoints(p, cfg, err) != EF_OK) {
		ef_embed_pool_free(p);
		return err ? err->status : EF_ERR_USAGE;
	}
	p->multi = curl_multi_init();
	if (!p->multi) {
		ef_embed_pool_free(p);
		return ef_error_set(err, EF_ERR_EMBED, "cannot create a curl multi handle");
	}
	/* a host is a name and a port: endpoints on one machine count apart */
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
	j->probe_of = -1;
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
	if (!j || copy_texts(j, texts, n) != 0) {
		if (j)
			job_free(j);
		return ef_error_oom(err, "queueing a batch for the embedding service");
	}
	p->pending++;
	job_append(n ? &p->jobs : &p->done, j);
	if (n > 0 && queue_batch(p, j, n) != 0) {
		stop(p, EF_ERR_NOMEM, "out of memory queueing a batch for the embedding service",
		     NULL);
		if (err)
			*err = p->fatal;
		return p->fatal.status;
	}
	kick(p);
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
	for (size_t i = 0; i < p->neps; i++)
		if (!p->eps[i].refused)
			return p->eps[i].cfg.base64 ? EF_EMBED_ENC_BASE64 : EF_EMBED_ENC_FLOAT;
	return p->cfg.base64 ? EF_EMBED_ENC_BASE64 : EF_EMBED_ENC_FLOAT;
}

void ef_embed_pool_wakeup(ef_embed_pool *p)
{
	curl_multi_wakeup(p->multi);
}

unsigned ef_embed_pool_capacity(const ef_embed_pool *p)
{
	return p->concurrency * (unsigned)usable_endpoints(p);
}

size_t ef_embed_pool_withdraw(ef_embed_pool *p, void **tags, size_t max)
{
	size_t n = 0;
	struct job *j = p->jobs, *next;

	for (; j; j = next) {
		next = j->next;
		if (j->probe_of >= 0)
			continue;
		drop_reqs_of(p, j);
		job_unlink(&p->jobs, j);
		if (n < max)
			tags[n] = j->res->tag;
		n++;
		p->pending--;
		job_free(j);
	}
	return n < max ? n : max;
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
	for (size_t i = 0; p->eps && i < p->neps; i++) {
		free(p->eps[i].answer);
		free(p->eps[i].route_native);
		ef_embed_resolved_release(&p->eps[i].cfg);
		if (p->eps[i].has_alt)
			ef_embed_resolved_release(&p->eps[i].alt);
	}
	free(p->eps);
	for (size_t i = 0; p->probe_texts && i < p->nprobe; i++)
		free(p->probe_texts[i]);
	free(p->probe_texts);
	free(p->ref);
	ef_embed_resolved_release(&p->cfg);
	free(p);
}

/* --- endpoints, for the caller ------------------------------------------------ */

const char *ef_embed_ep_state_name(enum ef_embed_ep_state s)
{
	static const char *const names[] = { "up", "resting", "unverified", "refused" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

size_t ef_embed_pool_endpoint_count(const ef_embed_pool *p)
{
	return p->neps;
}

/* Items per second over the last ten seconds or so, from samples taken
 * when the caller asks (at most two a second). */
static double endpoint_rate(struct endpoint *ep, double now)
{
	int i;

	if (!ep->nrate || now - ep->rate_t[ep->nrate - 1] >= 500) {
		if (ep->nrate == RATE_SAMPLES) {
			memmove(ep->rate_t, ep->rate_t + 1, sizeof(ep->rate_t[0]) * (RATE_SAMPLES - 1));
			memmove(ep->rate_items, ep->rate_items + 1,
				sizeof(ep->rate_items[0]) * (RATE_SAMPLES - 1));
			ep->nrate--;
		}
		ep->rate_t[ep->nrate] = now;
		ep->rate_items[ep->nrate++] = ep->items;
	}
	for (i = 0; i < ep->nrate - 1 && now - ep->rate_t[i] > 10000; i++)
		;
	if (now - ep->rate_t[i] < 200)
		return 0;
	return (double)(ep->items - ep->rate_items[i]) * 1000.0 / (now - ep->rate_t[i]);
}

static enum ef_embed_ep_state ep_state(const struct ef_embed_pool *p, const struct endpoint *ep)
{
	if (ep->refused)
		return EF_EMBED_EP_REFUSED;
	if (ep->down_ms)
		return EF_EMBED_EP_RESTING;
	if (p->verifying && !ep->verified)
		return EF_EMBED_EP_UNVERIFIED;
	return EF_EMBED_EP_UP;
}

size_t ef_embed_pool_endpoints(ef_embed_pool *p, struct ef_embed_endpoint_stat *out, size_t max)
{
	double now = ef_embed_now_ms();
	size_t n = 0;

	for (; n < p->neps && n < max; n++) {
		struct endpoint *ep = &p->eps[n];
		struct ef_embed_endpoint_stat *o = &out[n];

		memset(o, 0, sizeof(*o));
		snprintf(o->url, sizeof(o->url), "%.159s", ep->cfg.shown);
		o->state = ep_state(p, ep);
		o->in_flight = ep->in_flight;
		o->capacity = p->concurrency;
		o->requests = ep->requests;
		o->errors = ep->errors;
		o->items = ep->items;
		o->rate = endpoint_rate(ep, now);
		o->down_since = ep->down_ms ? ep->down_wall : 0;
		o->retry_in_s = ep->rest_until_ms > now ? (ep->rest_until_ms - now) / 1000.0 : 0;
		memcpy(o->last_error, ep->last_error, sizeof(o->last_error));
	}
	return n;
}

bool ef_embed_pool_waiting(ef_embed_pool *p, time_t *since, double *retry_in_s)
{
	double now = ef_embed_now_ms(), next = INFINITY;
	time_t latest = 0;

	*since = 0;
	*retry_in_s = 0;
	if (!batch_jobs(p))
		return false;
	for (size_t i = 0; i < p->neps; i++) {
		const struct endpoint *ep = &p->eps[i];

		if (ep->refused)
			continue;
		if (!ep->down_ms)
			return false;
		if (ep->down_wall > latest)
			latest = ep->down_wall;
		if (ep->rest_until_ms < next)
			next = ep->rest_until_ms;
	}
	if (!latest)
		return false;
	*since = latest;
	*retry_in_s = next > now ? (next - now) / 1000.0 : 0;
	return true;
}

bool ef_embed_pool_note(ef_embed_pool *p, char *buf, size_t size)
{
	if (!p->nnotes)
		return false;
	snprintf(buf, size, "%s", p->notes[p->note_first]);
	p->note_first = (p->note_first + 1) % NOTES;
	p->nnotes--;
	return true;
}

/* --- verification, for the caller --------------------------------------------- */

static ef_status queue_probe(struct ef_embed_pool *p, struct endpoint *ep, struct ef_error *err)
{
	struct job *j = job_new(p, NULL, p->nprobe);
	struct req *r = j ? req_new(j, 0, p->nprobe) : NULL;

	if (!j || copy_texts(j, (const char *const *)p->probe_texts, p->nprobe) != 0 || !r) {
		if (j)
			job_free(j);
		free(r);
		return ef_error_oom(err, "verifying the embedding endpoints");
	}
	j->probe_of = (int)ep->index;
	job_append(&p->jobs, j);
	req_append(&p->waiting, r);
	return EF_OK;
}

static bool probe_pending(const struct ef_embed_pool *p, size_t i)
{
	for (const struct job *j = p->jobs; j; j = j->next)
		if (j->probe_of == (int)i)
			return true;
	return false;
}

/* Every endpoint has answered its probe, failed it once, or is out. */
static bool all_heard(const struct ef_embed_pool *p)
{
	for (size_t i = 0; i < p->neps; i++) {
		const struct endpoint *ep = &p->eps[i];

		if (ep->refused || ep->tried || !probe_pending(p, i))
			continue;
		if ((!ep->verified && !ep->answer) || ep->route_pending)
			return false;
	}
	return true;
}

/* Without a reference given, the first endpoint in list order that
 * answered gives it; every other answer is judged against it. */
static void choose_reference(struct ef_embed_pool *p)
{
	for (size_t i = 0; i < p->neps && !p->ref; i++)
		if (p->eps[i].answer) {
			set_reference(p, &p->eps[i], p->eps[i].answer);
			p->eps[i].answer = NULL;
			p->eps[i].verified = true;
		}
	for (size_t i = 0; i < p->neps && p->fatal.status == EF_OK; i++) {
		float *v = p->eps[i].answer;

		p->eps[i].answer = NULL;
		if (v)
			judge(p, &p->eps[i], v);
	}
}

static ef_status copy_probe(struct ef_embed_pool *p, const char *const *texts, size_t n,
			    const float *ref, struct ef_error *err)
{
	size_t bytes = n * (size_t)p->cfg.dim * sizeof(float);

	p->probe_texts = calloc(n + 1, sizeof(*p->probe_texts));
	for (size_t i = 0; p->probe_texts && i < n; i++)
		if (!(p->probe_texts[i] = strdup(texts[i])))
			return ef_error_oom(err, NULL);
	if (!p->probe_texts)
		return ef_error_oom(err, NULL);
	p->nprobe = n;
	if (!ref)
		return EF_OK;
	if (!(p->ref = malloc(bytes)))
		return ef_error_oom(err, NULL);
	memcpy(p->ref, ref, bytes);
	snprintf(p->ref_from, sizeof(p->ref_from), "the run's reference");
	return EF_OK;
}

ef_status ef_embed_pool_verify(ef_embed_pool *p, const char *const *texts, size_t n,
			       const float *ref, struct ef_error *err)
{
	ef_error_clear(err);
	if (p->fatal.status != EF_OK || p->verifying || n == 0) {
		if (err && p->fatal.status != EF_OK)
			*err = p->fatal;
		return p->fatal.status;
	}
	if (copy_probe(p, texts, n, ref, err) != EF_OK)
		return err->status;
	p->verifying = true;
	for (size_t i = 0; i < p->neps; i++) {
		p->eps[i].verified = false;
		p->eps[i].route_pending = p->eps[i].has_alt && !p->eps[i].refused;
		if (!p->eps[i].refused && queue_probe(p, &p->eps[i], err) != EF_OK)
			return err->status;
	}
	p->in_verify = true;
	while (p->fatal.status == EF_OK && !all_heard(p)) {
		check_cancel(p);
		if (p->fatal.status == EF_OK)
			step(p, ef_embed_now_ms() + POLL_SLICE_MS);
	}
	if (p->fatal.status == EF_OK)
		choose_reference(p);
	p->in_verify = false;
	if (p->fatal.status != EF_OK && err)
		*err = p->fatal;
	return p->fatal.status;
}

const float *ef_embed_pool_reference(const ef_embed_pool *p, size_t *n, int *dim)
{
	*n = p->ref ? p->nprobe : 0;
	*dim = p->cfg.dim;
	return p->ref;
}

/* --- the route of a tei endpoint ---------------------------------------------- */

void ef_embed_pool_route(const ef_embed_pool *p, size_t i, struct ef_embed_route_info *out)
{
	memset(out, 0, sizeof(*out));
	out->native_ms = out->openai_ms = -1;
	out->cosine = -2;
	if (i < p->neps)
		*out = p->eps[i].route;
}

static const char *native_shown(struct endpoint *ep)
{
	return cfg_via(ep, EF_EMBED_TEI)->shown;
}

/*
 * The route is decided: work may go to the endpoint, on it.  Under
 * EMBED_ENCODING=base64 only the OpenAI route will do, and an endpoint
 * without it is refused (the pool stops when it was the last, or during
 * the verification).
 */
static void settle_route(struct ef_embed_pool *p, struct endpoint *ep, struct job *j)
{
	struct ef_embed_route_info *ri = &ep->route;
	char msg[EF_ERR_TEXT_MAX];
	bool insist = ep->cfg.encoding == EF_EMBED_ENC_BASE64;

	ep->route_pending = false;
	free(ep->route_native);
	ep->route_native = NULL;
	if (j) {
		drop_reqs_of(p, j);
		job_unlink(&p->jobs, j);
		job_free(j);
	}
	if (ri->route == EF_EMBED_ROUTE_NATIVE && insist) {
		snprintf(msg, sizeof(msg), "text-embeddings-inference at \"%s\" cannot be driven "
			 "through its OpenAI route, and EMBED_ENCODING=base64 insists on it: %s",
			 native_shown(ep), ri->why);
		return refuse_endpoint(p, ep, msg, "set EMBED_ENCODING=auto (or float) for this "
				       "service: /embed gives the same vectors, as numbers");
	}
	if ((ri->route == EF_EMBED_ROUTE_OPENAI) != (ep->cfg.provider == EF_EMBED_OPENAI))
		swap_routes(ep);
	note(p, "endpoint \"%s\": %s (%s)", native_shown(ep),
	     ef_embed_route_name(EF_EMBED_TEI, ri->route), ri->why);
}

/* The endpoint's /embed answered the verification: the same texts go to
 * its OpenAI route. */
static void start_route(struct ef_embed_pool *p, struct endpoint *ep, const float *native)
{
	struct job *j = native ? job_new(p, NULL, p->nprobe) : NULL;
	struct req *r = j ? req_new(j, 0, p->nprobe) : NULL;
	size_t bytes = p->nprobe * (size_t)p->cfg.dim * sizeof(float);

	free(ep->route_native);
	ep->route_native = malloc(bytes);
	if (!j || !r || !ep->route_native ||
	    copy_texts(j, (const char *const *)p->probe_texts, p->nprobe) != 0) {
		if (j)
			job_free(j);
		free(r);
		ep->route.route = EF_EMBED_ROUTE_NATIVE;
		snprintf(ep->route.why, sizeof(ep->route.why), "not probed: out of memory");
		return settle_route(p, ep, NULL);
	}
	memcpy(ep->route_native, native, bytes);
	j->probe_of = (int)ep->index;
	j->route = true;
	job_append(&p->jobs, j);
	req_push(&p->waiting, r);
}

static double fastest(double a, double b)
{
	return a < 0 || (b >= 0 && b < a) ? b : a;
}

/*
 * An answer to a probe of a tei endpoint with two routes.  The
 * verification's /embed answer only gives its time (the vectors come
 * through probe_finished); a route probe's answer is judged here, and its
 * request goes out again (ROUTED_AGAIN) or is done with (ROUTED_DONE: the
 * caller frees it).  NOT_ROUTED leaves the answer to the pool's rules (a
 * retry under EMBED_ENCODING=base64, which insists on the route).
 */
static enum routed route_answer(struct ef_embed_pool *p, struct endpoint *ep, struct req *r,
				const struct ef_embed_exchange *ex,
				const struct ef_embed_outcome *o, double ms)
{
	struct ef_embed_route_info *ri = &ep->route;
	struct job *j = r->job;
	struct ef_embed_route_evidence ev;
	bool ok = o->action == EF_EMBED_ACT_OK;
	bool insist = cfg_via(ep, EF_EMBED_OPENAI)->encoding == EF_EMBED_ENC_BASE64;

	if (!j->route) {
		if (ok)
			ri->native_ms = fastest(ri->native_ms, ms);
		return NOT_ROUTED;
	}
	if (r->via == EF_EMBED_TEI) {
		/* timed again: /embed's time, then /v1/embeddings once more */
		if (ok) {
			ri->native_ms = fastest(ri->native_ms, ms);
			j->round++;
			r->ready_ms = 0;
			req_push(&p->waiting, r);
			return ROUTED_AGAIN;
		}
		ri->route = EF_EMBED_ROUTE_NATIVE;
		snprintf(ri->why, sizeof(ri->why), "/v1/embeddings gives the same vectors but is "
			 "slower: probe %.1f ms vs %.1f ms on /embed", ri->openai_ms, ri->native_ms);
		settle_route(p, ep, j);
		return ROUTED_DONE;
	}
	if (insist && o->action == EF_EMBED_ACT_RETRY)
		return NOT_ROUTED;
	ri->probed = true;
	ri->status = ex->status;
	if (ok)
		ri->openai_ms = fastest(ri->openai_ms, ms);
	memset(&ev, 0, sizeof(ev));
	ev.setting = insist ? EF_EMBED_ENC_BASE64 : EF_EMBED_ENC_AUTO;
	ev.answered = ex->net == EF_EMBED_NET_OK;
	ev.status = ex->status;
	ev.net_msg = ex->net_msg;
	ev.o = o;
	ev.native = ep->route_native;
	ev.n = p->nprobe;
	ev.dim = p->cfg.dim;
	ev.native_ms = ri->native_ms;
	ev.openai_ms = ri->openai_ms;
	ev.last_round = j->round >= 2;
	if (ef_embed_route_judge(&ev, ri) == EF_EMBED_ROUTE_AGAIN) {
		j->round++;
		r->ready_ms = 0;
		req_push(&p->waiting, r);
		return ROUTED_AGAIN;
	}
	settle_route(p, ep, j);
	return ROUTED_DONE;
}
