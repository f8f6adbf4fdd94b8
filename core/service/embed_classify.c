/*
 * embed_classify.c - the failure classes of the embedding client.
 *
 * The rules, in the order they are tried:
 *   transport failure          retry (TLS verification, bad URL: fatal)
 *   200                        checked vectors, or retry if anything is off;
 *                              a uniform wrong dimension dim_confirm times
 *                              in a row is the model, not a glitch: fatal;
 *                              an unusable vector for the same input twice
 *                              in a row is the input's: isolate it, or
 *                              reject it when it is alone
 *   401, 403                   fatal (bad key), or quota
 *   404                        fatal: model not found, or wrong endpoint
 *   413                        too large: split, or reject a single input
 *   429                        retry after the asked delay; quota: fatal
 *   400, 422                   base64 refused: ask for numbers (fatal when
 *                              EMBED_ENCODING=base64); too large or input
 *                              error: split to isolate, or reject a single
 *                              input
 *   408, 5xx                   retry (a context-length 500 from old ollama
 *                              and llama.cpp: split/reject)
 *   3xx and other 4xx          fatal: the URL or provider is wrong
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/service/embed_classify.h"

static void set(struct ef_embed_outcome *out, enum ef_embed_action act, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set(struct ef_embed_outcome *out, enum ef_embed_action act, const char *fmt, ...)
{
	va_list ap;

	out->action = act;
	va_start(ap, fmt);
	vsnprintf(out->cause, sizeof(out->cause), fmt, ap);
	va_end(ap);
}

static void hint(struct ef_embed_outcome *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hint(struct ef_embed_outcome *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->hint, sizeof(out->hint), fmt, ap);
	va_end(ap);
}

/* "HTTP 422: <message>" or just "HTTP 422", the form every cause uses. */
static void status_text(char *buf, size_t size, long status, const struct ef_embed_err_info *ei)
{
	if (ei->message[0])
		snprintf(buf, size, "HTTP %ld: %s", status, ei->message);
	else
		snprintf(buf, size, "HTTP %ld", status);
}

/* --- 200 ---------------------------------------------------------------- */

static void dim_fatal(const struct ef_embed_exchange *x, struct ef_embed_outcome *out, int d)
{
	set(out, EF_EMBED_ACT_FATAL, "model \"%s\" at \"%s\" returns vectors of dimension %d, "
	    "EMBED_DIM is %d", x->model ? x->model : "", x->endpoint, d, x->dim);
	hint(out, "set EMBED_DIM=%d (a new collection: see `embfill plan`), or set EMBED_MODEL "
	     "to a model of dimension %d", d, x->dim);
}

/*
 * One answer of the wrong dimension can be a glitch (a proxy, a replica
 * mid-deploy), and stopping the run on it would be wrong; the same wrong
 * dimension again and again is the model.  The retry is immediate: the
 * service answered, it is not overloaded.
 */
static void on_wrong_dim(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
			 const char *why)
{
	int d = out->vec.dim;

	out->dim_seen = d;
	out->dim_repeats = x->prev_dim == d ? x->dim_repeats + 1 : 1;
	if (out->dim_repeats >= x->dim_confirm)
		return dim_fatal(x, out, d);
	set(out, EF_EMBED_ACT_RETRY, "invalid response from \"%s\": %s", x->endpoint, why);
	out->retry_after_ms = 0;
}

/*
 * An unusable vector (NaN, all zeros, an absurd norm) may be a glitch of
 * one answer, so the batch is asked for again; the same input's vector
 * unusable in the next answer too is that input's, which the service
 * cannot embed: it is asked for alone, and rejected when it fails alone,
 * so that the run quarantines it and goes on.
 */
static void on_bad_vector(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
			  const char *why)
{
	size_t bad = out->vec.bad_item;

	out->bad_item = bad;
	if (x->prev_bad != bad)
		set(out, EF_EMBED_ACT_RETRY, "invalid response from \"%s\": %s", x->endpoint, why);
	else if (x->n == 1)
		set(out, EF_EMBED_ACT_REJECT, "unusable vector, twice in a row: %s",
		    out->vec.bad_reason);
	else
		set(out, EF_EMBED_ACT_ISOLATE, "input %zu of %zu has an unusable vector twice in "
		    "a row (%s): asking for it alone", bad - 1, x->n, out->vec.bad_reason);
}

static void on_ok(const struct ef_embed_exchange *x, struct ef_embed_outcome *out)
{
	char why[256];
	enum ef_embed_parse_rc rc;

	rc = ef_embed_parse_answer(x->provider, x->base64_asked, x->body, x->body_len, x->n,
				   x->dim, &out->vec, why, sizeof(why));
	if (rc == EF_EMBED_PARSE_OK)
		out->action = EF_EMBED_ACT_OK;
	else if (rc == EF_EMBED_PARSE_DIM)
		on_wrong_dim(x, out, why);
	else if (out->vec.bad_item)
		on_bad_vector(x, out, why);
	else
		set(out, EF_EMBED_ACT_RETRY, "invalid response from \"%s\": %s", x->endpoint, why);
}

/* --- errors ------------------------------------------------------------- */

static void too_large(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
		      const char *st)
{
	if (x->n > 1)
		set(out, EF_EMBED_ACT_SPLIT, "batch of %zu too large (%s)", x->n, st);
	else
		set(out, EF_EMBED_ACT_REJECT, "%s", st);
}

static void bad_input(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
		      const char *st)
{
	if (x->n > 1)
		set(out, EF_EMBED_ACT_SPLIT, "batch of %zu refused (%s): isolating the input",
		    x->n, st);
	else
		set(out, EF_EMBED_ACT_REJECT, "%s", st);
}

static void auth_fatal(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
		       const char *st)
{
	set(out, EF_EMBED_ACT_FATAL, "embedding service \"%s\" refused the request (%s)",
	    x->endpoint, st);
	if (x->secret && x->secret[0])
		hint(out, "check the key in EMBED_API_KEY or EMBED_API_KEY_FILE and its permissions");
	else
		hint(out, "the service wants an API key: set EMBED_API_KEY or EMBED_API_KEY_FILE");
}

static void quota_fatal(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
			const char *st)
{
	set(out, EF_EMBED_ACT_FATAL, "embedding service \"%s\" says the quota is exhausted (%s)",
	    x->endpoint, st);
	hint(out, "add credit or raise the account's quota, then resume with `embfill run --resume`");
}

static void model_fatal(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
			const char *st)
{
	const char *m = x->model ? x->model : "";

	set(out, EF_EMBED_ACT_FATAL, "model \"%s\" not found at \"%s\" (%s)", m, x->endpoint, st);
	if (x->provider == EF_EMBED_OLLAMA)
		hint(out, "run `ollama pull %s` on the service host, or fix EMBED_MODEL", m);
	else
		hint(out, "set EMBED_MODEL to a model the service serves");
}

static void endpoint_fatal(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
			   const char *st)
{
	set(out, EF_EMBED_ACT_FATAL, "unexpected answer from embedding service \"%s\" (%s)",
	    x->endpoint, st);
	hint(out, "check EMBED_URL and EMBED_PROVIDER (ollama serves /api/embed, openai "
	     "/v1/embeddings, tei /embed)");
}

static void retry(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
		  const char *st)
{
	set(out, EF_EMBED_ACT_RETRY, "embedding service \"%s\" answered %s", x->endpoint, st);
	out->unavailable = true;
	out->retry_after_ms = ef_embed_retry_after(x->retry_after, x->retry_after_ms, x->now,
						   x->retry_after_max_ms);
}

/*
 * Older vLLM, llama.cpp and LocalAI builds answer 400 or 422 to
 * "encoding_format":"base64"; numbers work everywhere.
 */
static void base64_refused(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
			   const char *st)
{
	if (!x->base64_required) {
		set(out, EF_EMBED_ACT_FALLBACK, "embedding service \"%s\" refuses base64 vectors "
		    "(%s): asking for numbers", x->endpoint, st);
		return;
	}
	set(out, EF_EMBED_ACT_FATAL, "embedding service \"%s\" refuses base64 vectors, and "
	    "EMBED_ENCODING=base64 insists on them (%s)", x->endpoint, st);
	hint(out, "set EMBED_ENCODING=auto (or float) for this service");
}

static void on_4xx(const struct ef_embed_exchange *x, struct ef_embed_outcome *out,
		   const struct ef_embed_err_info *ei, const char *st)
{
	if ((x->status == 400 || x->status == 422) && x->base64_asked &&
	    ef_embed_refuses_base64(ei->message))
		return base64_refused(x, out, st);
	switch (x->status) {
	case 401:
	case 403:
		return ei->kind == EF_EMBED_EK_QUOTA ? quota_fatal(x, out, st) : auth_fatal(x, out, st);
	case 404:
		if (ei->kind == EF_EMBED_EK_MODEL)
			return model_fatal(x, out, st);
		return endpoint_fatal(x, out, st);
	case 408:
		return retry(x, out, st);
	case 413:
		return too_large(x, out, st);
	case 429:
		return ei->kind == EF_EMBED_EK_QUOTA ? quota_fatal(x, out, st) : retry(x, out, st);
	case 400:
	case 422:
		break;
	default:
		return endpoint_fatal(x, out, st);
	}
	switch (ei->kind) {
	case EF_EMBED_EK_TOO_LARGE: return too_large(x, out, st);
	case EF_EMBED_EK_MODEL: return model_fatal(x, out, st);
	case EF_EMBED_EK_AUTH: return auth_fatal(x, out, st);
	case EF_EMBED_EK_QUOTA: return quota_fatal(x, out, st);
	case EF_EMBED_EK_OVERLOAD: return retry(x, out, st);
	default: return bad_input(x, out, st);
	}
}

static void on_status(const struct ef_embed_exchange *x, struct ef_embed_outcome *out)
{
	struct ef_embed_err_info ei;
	char st[600];

	ef_embed_parse_error(x->body, x->body_len, &ei);
	ef_embed_scrub(ei.message, sizeof(ei.message), x->secret);
	status_text(st, sizeof(st), x->status, &ei);
	if (x->status >= 400 && x->status < 500)
		return on_4xx(x, out, &ei, st);
	if (x->status >= 500 && ei.kind == EF_EMBED_EK_TOO_LARGE)
		return too_large(x, out, st);
	if (x->status >= 300 && x->status < 400) {
		set(out, EF_EMBED_ACT_FATAL, "embedding service \"%s\" redirects elsewhere (%s)",
		    x->endpoint, st);
		return hint(out, "set EMBED_URL to the address it redirects to");
	}
	retry(x, out, st);
}

static void on_net(const struct ef_embed_exchange *x, struct ef_embed_outcome *out)
{
	const char *msg = x->net_msg ? x->net_msg : "transfer failed";

	if (x->net == EF_EMBED_NET_TRANSIENT) {
		set(out, EF_EMBED_ACT_RETRY, "embedding service \"%s\": %s", x->endpoint, msg);
		out->unavailable = true;
		return;
	}
	set(out, EF_EMBED_ACT_FATAL, "cannot use embedding service \"%s\": %s", x->endpoint, msg);
	hint(out, "check EMBED_URL; for a private CA, set the CA file (EMBED_CA_FILE)");
}

void ef_embed_classify(const struct ef_embed_exchange *x, struct ef_embed_outcome *out)
{
	memset(out, 0, sizeof(*out));
	out->retry_after_ms = -1;
	if (x->net != EF_EMBED_NET_OK)
		on_net(x, out);
	else if (x->status == 200)
		on_ok(x, out);
	else
		on_status(x, out);
	ef_embed_scrub(out->cause, sizeof(out->cause), x->secret);
	ef_embed_scrub(out->hint, sizeof(out->hint), x->secret);
}

/* --- delays ------------------------------------------------------------- */

/*
 * A non-negative number with blanks around it, or -1.  Retry-After seconds
 * are whole (RFC 9110 delay-seconds); retry-after-ms may have a fraction.
 */
static double number(const char *s, int allow_fraction)
{
	const char *p;
	char *end;
	double v;

	while (*s == ' ' || *s == '\t')
		s++;
	for (p = s; *p >= '0' && *p <= '9'; p++)
		;
	if (p == s || (!allow_fraction && *p == '.'))
		return -1;
	v = strtod(s, &end);
	if (end > p && !allow_fraction)
		return -1;
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	return *end || !(v >= 0) || v > 1e12 ? -1 : v;
}

static long cap(double ms, long cap_ms)
{
	return ms > (double)cap_ms ? cap_ms : (long)ms;
}

long ef_embed_retry_after(const char *retry_after, const char *retry_after_ms, time_t now,
			  long cap_ms)
{
	double v;
	time_t when;

	if (retry_after_ms && (v = number(retry_after_ms, 1)) >= 0)
		return cap(v, cap_ms);
	if (!retry_after || !*retry_after)
		return -1;
	if ((v = number(retry_after, 0)) >= 0)
		return cap(v * 1000.0, cap_ms);
	when = curl_getdate(retry_after, NULL);
	if (when == (time_t)-1)
		return -1;
	return when <= now ? 0 : cap((double)(when - now) * 1000.0, cap_ms);
}

/* splitmix64: tiny, seedable, and good enough to spread clients apart. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

long ef_embed_backoff(unsigned k, long base_ms, long max_ms, long asked_ms, uint64_t *rng)
{
	long ceiling = base_ms;
	long delay;

	for (unsigned i = 0; i < k && ceiling < max_ms; i++)
		ceiling *= 2;
	if (ceiling > max_ms)
		ceiling = max_ms;
	delay = ceiling > 0 ? (long)(next_rand(rng) % ((uint64_t)ceiling + 1)) : 0;
	return asked_ms > delay ? asked_ms : delay;
}

void ef_embed_scrub(char *s, size_t size, const char *secret)
{
	static const char mask[] = "[redacted]";
	const size_t mlen = sizeof(mask) - 1;
	size_t slen = secret ? strlen(secret) : 0;
	char *from = s;
	char *p;

	if (slen < 4 || !s)
		return;
	while ((p = strstr(from, secret)) != NULL) {
		size_t off = (size_t)(p - s);
		size_t tail = strlen(p + slen);

		if (off + mlen + 1 > size) {
			*p = '\0';
			return;
		}
		if (off + mlen + tail + 1 > size)
			tail = size - off - mlen - 1;
		memmove(p + mlen, p + slen, tail);
		p[mlen + tail] = '\0';
		memcpy(p, mask, mlen);
		from = p + mlen;
	}
}
