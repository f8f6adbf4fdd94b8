/*
 * embed_http.c - one embedding request as a curl easy handle: options,
 * body buffer, the headers the retry logic needs, and the cancel check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/service/embed_http.h"

double ef_embed_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/*
 * The answer is kept whole because it is parsed whole, so it is bounded:
 * a misbehaving server streaming forever must not eat the host's memory.
 * The limit is generous (a float printed as JSON takes about 20 bytes, as
 * base64 5.3).
 */
static size_t answer_limit(size_t n, int dim)
{
	size_t per = dim > 0 ? (size_t)dim * 40 + 256 : 1u << 20;
	size_t limit = (n ? n : 1) * per + (1u << 16);

	return limit < (1u << 20) ? (1u << 20) : limit;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct ef_embed_xfer *x = userp;
	size_t add = size * nmemb;

	if (add > x->limit - x->len) {
		x->overflow = 1;
		return 0;
	}
	if (x->len + add + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 8192;
		char *p;

		while (cap < x->len + add + 1)
			cap *= 2;
		p = realloc(x->body, cap);
		if (!p)
			return 0;
		x->body = p;
		x->cap = cap;
	}
	memcpy(x->body + x->len, data, add);
	x->len += add;
	x->body[x->len] = '\0';
	return add;
}

/* Copies a header's value, trimmed, when the line is "name: value". */
static int header_value(const char *line, size_t len, const char *name, char *dst,
			size_t size)
{
	size_t nlen = strlen(name);
	size_t start, end;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return 0;
	for (start = nlen + 1; start < len && (line[start] == ' ' || line[start] == '\t'); start++)
		;
	for (end = len; end > start && (unsigned char)line[end - 1] <= ' '; end--)
		;
	snprintf(dst, size, "%.*s", (int)(end - start), line + start);
	return 1;
}

/*
 * A new status line starts a new set of headers (after a 100 Continue), so
 * that only the final answer's Retry-After counts.
 */
static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
	struct ef_embed_xfer *x = userp;
	size_t len = size * nmemb;

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
		x->has_retry_after = x->has_retry_after_ms = 0;
	if (header_value(line, len, "retry-after", x->retry_after, sizeof(x->retry_after)))
		x->has_retry_after = 1;
	if (header_value(line, len, "retry-after-ms", x->retry_after_ms,
			 sizeof(x->retry_after_ms)))
		x->has_retry_after_ms = 1;
	return len;
}

/* Called by curl at least once a second, and on every chunk of data. */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct ef_embed_xfer *x = userp;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return x->cancel && atomic_load(x->cancel) ? 1 : 0;
}

static struct curl_slist *make_headers(const struct ef_embed_resolved *r)
{
	struct curl_slist *h = NULL, *t;
	const char *lines[] = {
		"Content-Type: application/json", "Accept: application/json", "Expect:",
		r->auth_header,
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (!lines[i])
			continue;
		t = curl_slist_append(h, lines[i]);
		if (!t) {
			curl_slist_free_all(h);
			return NULL;
		}
		h = t;
	}
	return h;
}

/*
 * TLS verification stays on: there is no option to turn it off, only a CA
 * bundle to add.  No redirects: a key must not follow a Location header to
 * another host, and a moved service is a setting to fix.  Only http(s).
 */
static int set_options(struct ef_embed_xfer *x, const struct ef_embed_resolved *r)
{
	CURL *e = x->easy;
	int bad = 0;

	bad |= curl_easy_setopt(e, CURLOPT_URL, r->endpoint);
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->request);
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "embfill/" EF_VERSION);
	bad |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
	bad |= curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	if (r->ca_file)
		bad |= curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file);
	return bad;
}

ef_status ef_embed_xfer_init(struct ef_embed_xfer *x, const struct ef_embed_resolved *r,
			     const char *const *texts, size_t n, const atomic_int *cancel,
			     struct ef_error *err)
{
	memset(x, 0, sizeof(*x));
	x->cancel = cancel;
	x->limit = answer_limit(n, r->dim);
	x->base64 = r->base64;
	x->request = ef_embed_build_request_with(r->provider, r->model, x->base64, &r->sw, texts,
						 n);
	x->headers = make_headers(r);
	x->easy = curl_easy_init();
	if (x->request && x->headers && x->easy && set_options(x, r) == 0) {
		x->started_ms = ef_embed_now_ms();
		return EF_OK;
	}
	ef_embed_xfer_cleanup(x);
	ef_error_set(err, EF_ERR_EMBED, "cannot prepare a request to \"%s\": out of memory "
		     "or an unsupported curl option", r->shown);
	return ef_error_hint(err, "libcurl 7.85 or newer is needed");
}

void ef_embed_xfer_cleanup(struct ef_embed_xfer *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->request);
	free(x->body);
	memset(x, 0, sizeof(*x));
}

double ef_embed_xfer_wire_ms(struct ef_embed_xfer *x)
{
	curl_off_t total = 0, pre = 0;

	if (!x->easy || curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total) != CURLE_OK ||
	    curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK ||
	    total < pre)
		return -1;
	return (double)(total - pre) / 1000.0;
}

/* Failures that will fail the same way every time. */
static int net_fatal(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_NOT_BUILT_IN:
	case CURLE_OUT_OF_MEMORY:
		return 1;
	default:
		return 0;
	}
}

static void describe_net(struct ef_embed_xfer *x, CURLcode rc, const struct ef_embed_resolved *r)
{
	if (x->overflow)
		snprintf(x->net_msg, sizeof(x->net_msg), "the answer is larger than %zu bytes",
			 x->limit);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(x->net_msg, sizeof(x->net_msg), "no complete answer within %ld ms",
			 r->timeout_ms);
	else
		snprintf(x->net_msg, sizeof(x->net_msg), "%s", curl_easy_strerror(rc));
}

void ef_embed_xfer_exchange(struct ef_embed_xfer *x, CURLcode rc,
			    const struct ef_embed_resolved *r, size_t n,
			    struct ef_embed_exchange *out)
{
	long status = 0;

	memset(out, 0, sizeof(*out));
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	out->provider = r->provider;
	out->endpoint = r->shown;
	out->model = r->model;
	out->secret = r->api_key;
	out->n = n;
	out->dim = r->dim;
	out->net = rc == CURLE_OK ? EF_EMBED_NET_OK
		 : net_fatal(rc) ? EF_EMBED_NET_FATAL : EF_EMBED_NET_TRANSIENT;
	if (rc != CURLE_OK)
		describe_net(x, rc, r);
	out->net_msg = x->net_msg;
	out->status = status;
	out->body = x->body;
	out->body_len = x->len;
	out->retry_after = x->has_retry_after ? x->retry_after : NULL;
	out->retry_after_ms = x->has_retry_after_ms ? x->retry_after_ms : NULL;
	out->retry_after_max_ms = r->retry_after_max_ms;
	out->now = time(NULL);
	out->dim_confirm = r->max_attempts;
	out->base64_asked = x->base64;
	out->base64_required = r->encoding == EF_EMBED_ENC_BASE64;
}
