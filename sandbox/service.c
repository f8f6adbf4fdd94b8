/*
 * service.c - the fake embedding service's decisions for one request.
 *
 * The order of the checks follows a real deployment from the outside in: a
 * proxy's body limit, then authentication, then a model still loading, then
 * the planted outages (--fail-first, 500s, 429s), and only then the request
 * itself (model, batch size, input length, rejected items).  Planted answer
 * faults (wrong dimension, NaN, a missing or shuffled item, broken JSON, a
 * dropped connection) come last, on a response that would have been right.
 *
 * Every embed request takes the next number from an atomic counter; the
 * number alone decides its planted faults (see dice.c), so a test that
 * replays the same requests against the same --seed sees the same faults.
 */
#include "service.h"

#include "dice.h"
#include "hashembed.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NAME_SHOWN 200

struct sbx_service {
	const struct sbx_config *cfg;
	sbx_uselite *ul;
	atomic_uint_fast64_t seq;
	struct timespec started;
};

sbx_service *sbx_service_new(const struct sbx_config *cfg, sbx_uselite *ul)
{
	sbx_service *svc = calloc(1, sizeof(*svc));

	if (svc == NULL)
		return NULL;
	svc->cfg = cfg;
	svc->ul = ul;
	atomic_init(&svc->seq, 0);
	clock_gettime(CLOCK_MONOTONIC, &svc->started);
	return svc;
}

void sbx_service_free(sbx_service *svc)
{
	free(svc);
}

bool sbx_service_loading(const sbx_service *svc)
{
	struct timespec now;
	double elapsed;

	if (svc->cfg->loading_seconds <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - svc->started.tv_sec) +
		  (double)(now.tv_nsec - svc->started.tv_nsec) / 1e9;
	return elapsed < svc->cfg->loading_seconds;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) != 0)
		;
}

/* Compares the whole key whatever the first difference, so response times
 * do not reveal how much of a guessed key was right. */
static bool authorized(const char *key, const char *header)
{
	size_t klen = strlen(key);
	unsigned char diff = 0;

	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return false;
	header += 7;
	if (strlen(header) != klen)
		return false;
	for (size_t i = 0; i < klen; i++)
		diff |= (unsigned char)(header[i] ^ key[i]);
	return diff == 0;
}

static void unauthorized(enum sbx_api api, const char *header, struct sbx_reply *r)
{
	if (api != SBX_API_OPENAI)
		sbx_api_error(r, api, SBX_UNAUTHORIZED, 0, "Unauthorized");
	else if (header == NULL)
		sbx_api_error(r, api, SBX_UNAUTHORIZED, 0, "You didn't provide an API key. "
			      "You need to provide your API key in an Authorization header "
			      "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
	else
		sbx_api_error(r, api, SBX_UNAUTHORIZED, 0, "Incorrect API key provided.");
	r->auth_challenge = true;
}

static void set_retry_headers(const struct sbx_config *c, struct sbx_reply *r)
{
	snprintf(r->retry_after, sizeof(r->retry_after), "%ld", c->retry_after_s);
	if (c->retry_after_ms >= 0)
		snprintf(r->retry_after_ms, sizeof(r->retry_after_ms), "%ld", c->retry_after_ms);
}

/* TEI's 429 carries no Retry-After: clients must back off on their own. */
static void rate_limited(const struct sbx_config *c, enum sbx_api api, struct sbx_reply *r)
{
	if (api == SBX_API_TEI) {
		sbx_api_error(r, api, SBX_RATE_LIMITED, 0, "Model is overloaded");
		return;
	}
	sbx_api_error(r, api, SBX_RATE_LIMITED, 0,
		      "Rate limit reached for requests. Please try again in %lds.", c->retry_after_s);
	set_retry_headers(c, r);
}

static void fail_first(const struct sbx_config *c, enum sbx_api api, uint64_t seq,
		       struct sbx_reply *r)
{
	if (api == SBX_API_TEI && c->fail_status == 429)
		sbx_api_error(r, api, SBX_FAIL_FIRST, 429, "Model is overloaded");
	else
		sbx_api_error(r, api, SBX_FAIL_FIRST, c->fail_status,
			      "injected failure %llu of %ld (--fail-first)",
			      (unsigned long long)seq + 1, c->fail_first);
	if (api != SBX_API_TEI && c->retry_after_given &&
	    (c->fail_status == 429 || c->fail_status == 503))
		set_retry_headers(c, r);
}

static bool refuse_early(sbx_service *svc, enum sbx_api api, const struct sbx_incoming *in,
			 uint64_t seq, struct sbx_reply *r)
{
	const struct sbx_config *c = svc->cfg;
	char text[128];

	if (in->too_big) {
		snprintf(text, sizeof(text), "Payload Too Large: the request body exceeds %zu bytes\n",
			 c->max_body_bytes);
		sbx_api_plain(r, 413, text);
	} else if (c->api_key != NULL && !authorized(c->api_key, in->authorization)) {
		unauthorized(api, in->authorization, r);
	} else if (sbx_service_loading(svc)) {
		sbx_api_error(r, api, SBX_LOADING, 0, "model is loading");
	} else if (seq < (uint64_t)c->fail_first) {
		fail_first(c, api, seq, r);
	} else if (sbx_dice_hit(c->seed, seq, SBX_DICE_500, c->fail_500)) {
		sbx_api_error(r, api, SBX_INJECTED_500, 0, "internal server error (injected by --fail-500)");
	} else if (sbx_dice_hit(c->seed, seq, SBX_DICE_429, c->fail_429)) {
		rate_limited(c, api, r);
	} else {
		return false;
	}
	return true;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static void context_length(const struct sbx_config *c, enum sbx_api api, size_t item,
			   size_t chars, struct sbx_reply *r)
{
	if (api == SBX_API_OLLAMA)
		sbx_api_error(r, api, SBX_CONTEXT_LENGTH, 0, "the input length exceeds the context length");
	else if (api == SBX_API_TEI)
		sbx_api_error(r, api, SBX_CONTEXT_LENGTH, 0, "Input validation error: inputs must have "
			      "less than %ld tokens. Given: %zu (input %zu)", c->max_input_chars, chars, item);
	else
		sbx_api_error(r, api, SBX_CONTEXT_LENGTH, 0, "This model's maximum context length is "
			      "%ld tokens, however you requested %zu tokens in input %zu. Please reduce "
			      "the length of the input.", c->max_input_chars, chars, item);
}

static bool refuse_inputs(const struct sbx_config *c, enum sbx_api api,
			  const struct sbx_request *req, struct sbx_reply *r)
{
	for (size_t i = 0; c->max_input_chars > 0 && i < req->n; i++) {
		size_t chars = utf8_chars(req->texts[i]);
		if (chars > (size_t)c->max_input_chars) {
			context_length(c, api, i, chars, r);
			return true;
		}
	}
	for (size_t i = 0; c->reject_marker != NULL && i < req->n; i++)
		if (strstr(req->texts[i], c->reject_marker) != NULL) {
			sbx_api_error(r, api, SBX_REJECTED, 0, "%sinput %zu is rejected: it contains "
				      "the reject marker", api == SBX_API_TEI ? "Input validation error: " : "", i);
			return true;
		}
	return false;
}

static bool refuse_request(const struct sbx_config *c, enum sbx_api api,
			   const struct sbx_request *req, struct sbx_reply *r)
{
	if (req->base64 && c->refuse_base64)
		sbx_api_error(r, api, SBX_BAD_REQUEST, 0, "encoding_format \"base64\" is not "
			      "supported by this server (--refuse-base64); use \"float\"");
	else if (api == SBX_API_OLLAMA && !sbx_config_has_model(c, req->model))
		sbx_api_error(r, api, SBX_UNKNOWN_MODEL, 0, "model \"%.*s\" not found, try pulling it first",
			      NAME_SHOWN, req->model);
	else if (api == SBX_API_OPENAI && !sbx_config_has_model(c, req->model))
		sbx_api_error(r, api, SBX_UNKNOWN_MODEL, 0, "The model `%.*s` does not exist or you do "
			      "not have access to it.", NAME_SHOWN, req->model);
	else if (c->max_batch > 0 && req->n > (size_t)c->max_batch)
		sbx_api_error(r, api, SBX_BATCH_TOO_LARGE, 0, "batch size %zu > maximum allowed batch size %ld",
			      req->n, c->max_batch);
	else
		return refuse_inputs(c, api, req, r);
	return true;
}

static int embed(const sbx_service *svc, const struct sbx_request *req, float *out,
		 size_t stride, char *err, size_t errsz)
{
	if (svc->ul != NULL)
		return sbx_uselite_embed(svc->ul, req->texts, req->n, out, stride, err, errsz);
	for (size_t i = 0; i < req->n; i++)
		sbx_hash_embed(req->texts[i], svc->cfg->dim, out + i * stride);
	return 0;
}

static size_t prompt_tokens(const struct sbx_request *req)
{
	size_t n = 0;

	for (size_t i = 0; i < req->n; i++) {
		size_t words = sbx_hash_count_words(req->texts[i]);
		n += words > 0 ? words : 1;
	}
	return n;
}

/* A permutation that is never the identity, so a client that ignores the
 * index fields is caught every time the fault hits. */
static size_t *shuffled_order(struct sbx_dice *d, size_t n)
{
	size_t *order = malloc(sizeof(*order) * (n > 0 ? n : 1));

	if (order == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = sbx_dice_below(d, i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	if (n > 1 && order[0] == 0 && order[1] == 1) {
		order[0] = 1;
		order[1] = 0;
	}
	return order;
}

static void plant_nan(const struct sbx_config *c, uint64_t seq, struct sbx_vectors *v)
{
	struct sbx_dice d;

	if (v->n == 0 || !sbx_dice_hit(c->seed, seq, SBX_DICE_NAN, c->nan_rate))
		return;
	sbx_dice_detail(&d, c->seed, seq, SBX_DICE_NAN);
	v->nan_item = sbx_dice_below(&d, v->n);
	v->nan_pos = sbx_dice_below(&d, (size_t)v->dim);
	v->nan_token = sbx_dice_below(&d, 2) ? "NaN" : "1e999";
}

static uint64_t text_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/*
 * A model that returns zeros or garbage for an input does so every time:
 * these faults are decided by the text, not by the request, so a client
 * that asks again gets the same vector and must isolate the input.
 */
static void plant_text_faults(const struct sbx_config *c, const struct sbx_request *req,
			      float *vecs, size_t stride)
{
	for (size_t i = 0; i < req->n; i++) {
		float *x = vecs + i * stride;
		uint64_t h = text_hash(req->texts[i]);

		if (sbx_dice_hit(c->seed, h, SBX_DICE_ZERO, c->zero_rate))
			memset(x, 0, (size_t)c->dim * sizeof(*x));
		else if (sbx_dice_hit(c->seed, h, SBX_DICE_HUGE, c->huge_rate))
			for (int k = 0; k < c->dim; k++)
				x[k] *= 1e29f;
	}
}

/* Decides the answer faults of request seq; returns the openai order to
 * free, or NULL. */
static size_t *plant_vector_faults(const struct sbx_config *c, enum sbx_api api, uint64_t seq,
				   struct sbx_vectors *v)
{
	struct sbx_dice d;

	if (sbx_dice_hit(c->seed, seq, SBX_DICE_WRONG_DIM, c->wrong_dim_rate)) {
		sbx_dice_detail(&d, c->seed, seq, SBX_DICE_WRONG_DIM);
		v->dim = (sbx_dice_below(&d, 2) || v->dim == 1) ? v->dim + 1 : v->dim - 1;
	}
	if (v->n > 0 && sbx_dice_hit(c->seed, seq, SBX_DICE_WRONG_COUNT, c->wrong_count_rate))
		v->n--;
	plant_nan(c, seq, v);
	if (api != SBX_API_OPENAI || !sbx_dice_hit(c->seed, seq, SBX_DICE_SHUFFLE, c->shuffle_rate))
		return NULL;
	sbx_dice_detail(&d, c->seed, seq, SBX_DICE_SHUFFLE);
	return shuffled_order(&d, v->n);
}

static void plant_transport_faults(const struct sbx_config *c, uint64_t seq, struct sbx_reply *r)
{
	if (sbx_dice_hit(c->seed, seq, SBX_DICE_MALFORMED, c->malformed_rate))
		r->len /= 2;
	r->drop = sbx_dice_hit(c->seed, seq, SBX_DICE_DROP, c->drop_rate);
}

static void answer(sbx_service *svc, enum sbx_api api, const struct sbx_request *req,
		   uint64_t seq, struct sbx_reply *r)
{
	const struct sbx_config *c = svc->cfg;
	size_t stride = (size_t)c->dim + 1;
	float *vecs = calloc(req->n * stride, sizeof(*vecs));
	struct sbx_vectors v = {.data = vecs, .stride = stride, .n = req->n, .dim = c->dim,
				.prompt_tokens = prompt_tokens(req), .model = req->model,
				.base64 = req->base64 && !c->ignore_base64};
	char err[512];
	size_t *order = NULL;

	if (vecs == NULL)
		snprintf(err, sizeof(err), "out of memory for %zu vectors", req->n);
	if (vecs == NULL || embed(svc, req, vecs, stride, err, sizeof(err)) != 0) {
		sbx_api_error(r, api, SBX_BACKEND_FAILED, 0, "%s", err);
	} else {
		plant_text_faults(c, req, vecs, stride);
		v.order = order = plant_vector_faults(c, api, seq, &v);
		if (sbx_api_render(r, api, &v) == 0)
			plant_transport_faults(c, seq, r);
	}
	free(order);
	free(vecs);
}

void sbx_service_handle(sbx_service *svc, enum sbx_api api,
			const struct sbx_incoming *in, struct sbx_reply *r)
{
	uint64_t seq = atomic_fetch_add(&svc->seq, 1);
	struct sbx_request req;

	sleep_ms(svc->cfg->latency_ms);
	if (refuse_early(svc, api, in, seq, r))
		return;
	if (sbx_api_parse(api, in->body, in->len, &req, r) == 0) {
		r->items = req.n;
		r->base64_asked = req.base64;
		if (!refuse_request(svc->cfg, api, &req, r)) {
			sleep_ms(svc->cfg->item_latency_ms * (long)req.n);
			answer(svc, api, &req, seq, r);
		}
	}
	sbx_request_free(&req);
}
