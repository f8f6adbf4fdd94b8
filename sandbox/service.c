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
 *
 * An answer's vectors go through the same steps whether they were computed
 * or found in the --cache-dir: the backend's raw vector of the text as
 * embedded (cut to the context when the request allows), then the recipe
 * (normalisation, Matryoshka shortening), then the planted faults.  Only
 * the backend call and the compute time (--latency-ms, --item-latency-ms)
 * sit behind the --compute-slots queue, and only for texts not cached.
 */
#include "service.h"

#include "dice.h"
#include "hashembed.h"
#include "recipe.h"
#include "slots.h"
#include "vcache.h"

#include <errno.h>
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
	struct sbx_stats *stats;
	sbx_vcache *cache;              /* NULL without --cache-dir */
	struct sbx_slots slots;         /* used when --compute-slots > 0 */
	const char *fingerprint;        /* the backend's, for cache keys */
	atomic_uint_fast64_t seq;
	struct timespec started;
};

static int open_cache(sbx_service *svc, char *err, size_t errsz)
{
	const struct sbx_config *c = svc->cfg;
	const char *name = c->backend == SBX_BACKEND_HASH ? "hash" : "use-lite";

	if (c->cache_dir == NULL)
		return 0;
	svc->cache = sbx_vcache_open(c->cache_dir, name, c->dim, err, errsz);
	if (svc->cache == NULL)
		return -1;
	sbx_stats_cache_size(svc->stats, sbx_vcache_count(svc->cache));
	fprintf(stderr, "embfill-embedder: vector cache \"%s\": %zu vectors, %zu bytes each\n",
		sbx_vcache_path(svc->cache), sbx_vcache_count(svc->cache),
		sbx_vcache_record_bytes(c->dim));
	return 0;
}

sbx_service *sbx_service_new(const struct sbx_config *cfg, sbx_uselite *ul,
			     struct sbx_stats *stats, char *err, size_t errsz)
{
	sbx_service *svc = calloc(1, sizeof(*svc));

	if (svc == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	svc->cfg = cfg;
	svc->ul = ul;
	svc->stats = stats;
	svc->fingerprint = ul != NULL ? sbx_uselite_fingerprint(ul) : SBX_HASH_FINGERPRINT;
	sbx_slots_init(&svc->slots, cfg->compute_slots);
	atomic_init(&svc->seq, 0);
	clock_gettime(CLOCK_MONOTONIC, &svc->started);
	if (open_cache(svc, err, errsz) != 0) {
		sbx_service_free(svc);
		return NULL;
	}
	return svc;
}

void sbx_service_free(sbx_service *svc)
{
	if (svc == NULL)
		return;
	sbx_vcache_close(svc->cache);
	sbx_slots_destroy(&svc->slots);
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

/* The per-input delay this thread's request slept, which the request's
 * latency does not absorb (sbx_service_handle). */
static _Thread_local long item_slept_ms;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
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
			  const struct sbx_request *req, const struct sbx_recipe *rc,
			  struct sbx_reply *r)
{
	for (size_t i = 0; c->max_input_chars > 0 && !rc->truncate && i < req->n; i++) {
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
			   const struct sbx_request *req, const struct sbx_recipe *rc,
			   struct sbx_reply *r)
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
		return refuse_inputs(c, api, req, rc, r);
	return true;
}

/* One request's inputs on their way to vectors. */
struct batch {
	size_t n;
	const char **texts;             /* as embedded: the input, or its cut copy */
	char **cut;                     /* owned cut copies; NULL where uncut */
	float *vecs;                    /* row i at vecs + i * stride */
	size_t stride;
	size_t *todo;                   /* rows the backend computes */
	size_t n_todo;
	uint8_t (*keys)[SBX_SHA256_LEN];        /* NULL without a cache */
};

static void batch_free(struct batch *b)
{
	for (size_t i = 0; b->cut != NULL && i < b->n; i++)
		free(b->cut[i]);
	free(b->cut);
	free(b->texts);
	free(b->vecs);
	free(b->todo);
	free(b->keys);
}

/* The texts to embed: each input, cut to the context length when it is
 * longer and the recipe allows cutting (refuse_inputs refused it otherwise). */
static int cut_texts(const struct sbx_config *c, const struct sbx_request *req, struct batch *b)
{
	for (size_t i = 0; i < req->n; i++) {
		size_t keep = c->max_input_chars > 0
			? sbx_recipe_cut_bytes(req->texts[i], c->max_input_chars) : strlen(req->texts[i]);
		b->texts[i] = req->texts[i];
		if (req->texts[i][keep] == '\0')
			continue;
		b->cut[i] = strndup(req->texts[i], keep);
		if (b->cut[i] == NULL)
			return -1;
		b->texts[i] = b->cut[i];
	}
	return 0;
}

static int batch_init(const sbx_service *svc, const struct sbx_request *req, struct batch *b)
{
	size_t n = req->n;

	memset(b, 0, sizeof(*b));
	b->n = n;
	b->stride = (size_t)svc->cfg->dim + 1;
	b->texts = calloc(n, sizeof(*b->texts));
	b->cut = calloc(n, sizeof(*b->cut));
	b->vecs = calloc(n * b->stride, sizeof(*b->vecs));
	b->todo = calloc(n, sizeof(*b->todo));
	if (svc->cache != NULL)
		b->keys = calloc(n, sizeof(*b->keys));
	if (b->texts == NULL || b->cut == NULL || b->vecs == NULL || b->todo == NULL ||
	    (svc->cache != NULL && b->keys == NULL))
		return -1;
	return cut_texts(svc->cfg, req, b);
}

/* Fills the rows the cache knows; the others go on the to-do list.  TEI
 * names no model: its vectors are the server's first model's. */
static int look_up(const sbx_service *svc, const char *model, struct batch *b)
{
	if (model == NULL)
		model = svc->cfg->models[0];
	for (size_t i = 0; i < b->n; i++) {
		if (svc->cache != NULL) {
			if (sbx_vcache_key(svc->fingerprint, model, svc->cfg->dim, b->texts[i],
					   b->keys[i]) != 0)
				return -1;
			if (sbx_vcache_get(svc->cache, b->keys[i], b->vecs + i * b->stride))
				continue;
		}
		b->todo[b->n_todo++] = i;
	}
	return 0;
}

static int backend(const sbx_service *svc, const char *const *texts, size_t n, float *out,
		   size_t stride, char *err, size_t errsz)
{
	if (svc->ul != NULL)
		return sbx_uselite_embed(svc->ul, texts, n, out, stride, err, errsz);
	for (size_t i = 0; i < n; i++)
		sbx_hash_embed_raw(texts[i], svc->cfg->dim, out + i * stride);
	return 0;
}

/*
 * The compute of the to-do rows: with --compute-slots, in a slot taken in
 * turn and held for the whole compute time, as a request holds a GPU;
 * without, after the per-item time only (the per-request latency was spent
 * on arrival, as before slots existed).
 */
static int compute_rows(sbx_service *svc, const struct batch *b, const char **texts, float *out,
			char *err, size_t errsz)
{
	const struct sbx_config *c = svc->cfg;
	long ms = c->item_latency_ms * (long)b->n_todo;
	int rc;

	for (size_t k = 0; k < b->n_todo; k++)
		texts[k] = b->texts[b->todo[k]];
	if (c->compute_slots > 0) {
		sbx_slots_acquire(&svc->slots);
		ms += c->latency_ms;
	}
	sbx_stats_compute_begin(svc->stats);
	if (c->compute_slots == 0)
		item_slept_ms += ms;
	sleep_ms(ms);
	rc = backend(svc, texts, b->n_todo, out, b->stride, err, errsz);
	sbx_stats_compute_end(svc->stats);
	if (c->compute_slots > 0)
		sbx_slots_release(&svc->slots);
	return rc;
}

/* Puts computed rows in place and into the cache; a cache that cannot be
 * written costs its speed-up, never the answer. */
static void keep_rows(sbx_service *svc, struct batch *b, const float *out,
		      uint8_t (*keys)[SBX_SHA256_LEN])
{
	for (size_t k = 0; k < b->n_todo; k++) {
		memcpy(b->vecs + b->todo[k] * b->stride, out + k * b->stride,
		       (size_t)svc->cfg->dim * sizeof(float));
		if (keys != NULL)
			memcpy(keys[k], b->keys[b->todo[k]], SBX_SHA256_LEN);
	}
	if (keys == NULL)
		return;
	if (sbx_vcache_put(svc->cache, (const uint8_t (*)[SBX_SHA256_LEN])keys, out, b->stride,
			   b->n_todo) != 0)
		fprintf(stderr, "embfill-embedder: cannot append to \"%s\": %s\n",
			sbx_vcache_path(svc->cache), strerror(errno));
	sbx_stats_cache_size(svc->stats, sbx_vcache_count(svc->cache));
}

static int compute(sbx_service *svc, struct batch *b, char *err, size_t errsz)
{
	size_t m = b->n_todo;
	const char **texts = calloc(m, sizeof(*texts));
	float *out = calloc(m * b->stride, sizeof(*out));
	uint8_t (*keys)[SBX_SHA256_LEN] = svc->cache != NULL ? calloc(m, sizeof(*keys)) : NULL;
	int rc = -1;

	if (texts == NULL || out == NULL || (svc->cache != NULL && keys == NULL))
		snprintf(err, errsz, "out of memory for %zu vectors", m);
	else if ((rc = compute_rows(svc, b, texts, out, err, errsz)) == 0)
		keep_rows(svc, b, out, keys);
	free(keys);
	free(out);
	free(texts);
	return rc;
}

/* The recipe, on computed and cached rows alike. */
static void apply_recipe(const sbx_service *svc, const struct sbx_recipe *rc, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		float *row = b->vecs + i * b->stride;
		if (svc->ul == NULL && rc->normalize)
			sbx_hash_normalise(row, svc->cfg->dim);
		sbx_recipe_shorten(rc, row, svc->cfg->dim);
	}
}

/* Fills b's rows; returns 0, or -1 with err set. */
static int embed(sbx_service *svc, const struct sbx_request *req, const struct sbx_recipe *rc,
		 struct batch *b, char *err, size_t errsz)
{
	if (batch_init(svc, req, b) != 0 || look_up(svc, req->model, b) != 0) {
		snprintf(err, errsz, "out of memory for %zu vectors", req->n);
		return -1;
	}
	if (b->n_todo > 0 && compute(svc, b, err, errsz) != 0)
		return -1;
	sbx_stats_served(svc->stats, b->n_todo, b->n - b->n_todo);
	apply_recipe(svc, rc, b);
	return 0;
}

static size_t prompt_tokens(const struct batch *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++) {
		size_t words = sbx_hash_count_words(b->texts[i]);
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
			      float *vecs, size_t stride, int dim)
{
	for (size_t i = 0; i < req->n; i++) {
		float *x = vecs + i * stride;
		uint64_t h = text_hash(req->texts[i]);

		if (sbx_dice_hit(c->seed, h, SBX_DICE_ZERO, c->zero_rate))
			memset(x, 0, (size_t)dim * sizeof(*x));
		else if (sbx_dice_hit(c->seed, h, SBX_DICE_HUGE, c->huge_rate))
			for (int k = 0; k < dim; k++)
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

/* --openai-route other: the same norm, another direction, as another model
 * of the same dimension would give. */
static void other_model(struct batch *b, int dim)
{
	for (size_t i = 0; i < b->n; i++) {
		float *x = b->vecs + i * b->stride, first = x[0];

		memmove(x, x + 1, (size_t)(dim - 1) * sizeof(*x));
		x[dim - 1] = first;
	}
}

static void answer(sbx_service *svc, enum sbx_api api, const struct sbx_request *req,
		   const struct sbx_recipe *rc, uint64_t seq, struct sbx_reply *r)
{
	const struct sbx_config *c = svc->cfg;
	struct batch b;
	struct sbx_vectors v;
	char err[512];
	size_t *order = NULL;

	if (embed(svc, req, rc, &b, err, sizeof(err)) != 0) {
		sbx_api_error(r, api, SBX_BACKEND_FAILED, 0, "%s", err);
	} else {
		v = (struct sbx_vectors){.data = b.vecs, .stride = b.stride, .n = req->n,
					 .dim = rc->dim, .prompt_tokens = prompt_tokens(&b),
					 .model = req->model,
					 .base64 = req->base64 && !c->ignore_base64};
		if (api == SBX_API_OPENAI && c->openai_route == SBX_OPENAI_OTHER)
			other_model(&b, rc->dim);
		plant_text_faults(c, req, b.vecs, b.stride, rc->dim);
		v.order = order = plant_vector_faults(c, api, seq, &v);
		if (sbx_api_render(r, api, &v) == 0)
			plant_transport_faults(c, seq, r);
	}
	free(order);
	batch_free(&b);
}

void sbx_service_handle(sbx_service *svc, enum sbx_api api,
			const struct sbx_incoming *in, struct sbx_reply *r)
{
	uint64_t seq = atomic_fetch_add(&svc->seq, 1);
	struct sbx_request req;
	struct sbx_recipe rc;
	double t0;

	/* the OpenAI route's own delay comes on top of the latency */
	if (api == SBX_API_OPENAI)
		sleep_ms(svc->cfg->openai_latency_ms);
	t0 = now_ms();
	item_slept_ms = 0;
	if (!refuse_early(svc, api, in, seq, r)) {
		if (sbx_api_parse(api, in->body, in->len, &req, r) == 0) {
			r->items = req.n;
			r->base64_asked = req.base64;
			if (sbx_recipe_parse(api, &req, svc->cfg->dim, &rc, r) == 0 &&
			    !refuse_request(svc->cfg, api, &req, &rc, r))
				answer(svc, api, &req, &rc, seq, r);
		}
		sbx_request_free(&req);
	}
	/* --latency-ms is the time to the answer, as a service's latency is:
	 * the work of the request is part of it (the per-input delay is not) */
	if (svc->cfg->compute_slots == 0) {
		double spent = now_ms() - t0 - (double)item_slept_ms;

		if (spent < (double)svc->cfg->latency_ms)
			sleep_ms((long)((double)svc->cfg->latency_ms - spent + 0.5));
	}
}
