/*
 * sandbox_embedder.c - the sandbox embedding service over real HTTP.
 *
 * Each test starts its own embfill-embedder on a free loopback port
 * (tests/lib/embedder_proc.h) and talks to it with libcurl, the way the
 * embfill client will.  The fault tests pin the status, headers and body
 * shape a client's error handling depends on; the hash tests pin the
 * properties the demo's spot-checks depend on.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "embedder_proc.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_DIM 1024

struct http_resp {
	CURLcode rc;
	long status;
	char *body;
	size_t len;
	char headers[8192];
	size_t hlen;
	double seconds;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct http_resp *r = ud;
	char *nb = realloc(r->body, r->len + size * n + 1);

	if (nb == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, ptr, size * n);
	r->len += size * n;
	r->body[r->len] = '\0';
	return size * n;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
	struct http_resp *r = ud;
	size_t k = size * n;

	if (r->hlen + k < sizeof(r->headers)) {
		memcpy(r->headers + r->hlen, ptr, k);
		r->hlen += k;
		r->headers[r->hlen] = '\0';
	}
	return k;
}

static void http(struct http_resp *r, const char *method, const char *url, const char *body,
		 const char *auth)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

	memset(r, 0, sizeof(*r));
	cr_assert_not_null(c);
	if (auth != NULL)
		h = curl_slist_append(h, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	r->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (r->body == NULL)
		r->body = calloc(1, 1);
}

static void post(struct http_resp *r, const struct embedder_proc *p, const char *path,
		 const char *body)
{
	char url[128];

	snprintf(url, sizeof(url), "%s%s", p->url, path);
	http(r, "POST", url, body, NULL);
	cr_assert_eq(r->rc, CURLE_OK, "POST %s: %s", path, curl_easy_strerror(r->rc));
}

static void get(struct http_resp *r, const struct embedder_proc *p, const char *path)
{
	char url[128];

	snprintf(url, sizeof(url), "%s%s", p->url, path);
	http(r, "GET", url, NULL, NULL);
	cr_assert_eq(r->rc, CURLE_OK, "GET %s: %s", path, curl_easy_strerror(r->rc));
}

static void resp_free(struct http_resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* Value of a response header, matched case-insensitively; NULL if absent. */
static const char *header(struct http_resp *r, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);

	for (char *line = r->headers; line != NULL && *line != '\0';) {
		char *end = strstr(line, "\r\n");
		size_t llen = end ? (size_t)(end - line) : strlen(line);
		if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(llen - (size_t)(v - line)), v);
			return out;
		}
		line = end ? end + 2 : NULL;
	}
	return NULL;
}

static cJSON *json_of(const struct http_resp *r)
{
	return cJSON_ParseWithOpts(r->body, NULL, 1);
}

static const char *str_at(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int to_doubles(const cJSON *arr, double *out)
{
	const cJSON *x;
	int n = 0;

	cr_assert(cJSON_IsArray(arr), "vector is not an array");
	cJSON_ArrayForEach(x, arr) {
		cr_assert(cJSON_IsNumber(x), "vector component is not a number");
		cr_assert_lt(n, MAX_DIM);
		out[n++] = x->valuedouble;
	}
	return n;
}

static double dot(const double *a, const double *b, int n)
{
	double s = 0;

	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static double cosine(const double *a, const double *b, int n)
{
	return dot(a, b, n) / sqrt(dot(a, a, n) * dot(b, b, n));
}

#define START(p, ...) do { \
	const char *const args_[] = {__VA_ARGS__, NULL}; \
	cr_assert_eq(embedder_start((p), args_), 0, "embedder did not start"); \
} while (0)

/* The vectors of an answer of any API, in input order: ollama and TEI
 * lists as they are, openai data items placed by their index. */
static cJSON *vectors_of(const char *path, cJSON *root)
{
	const cJSON *item;
	cJSON *out, *data;

	if (strcmp(path, "/api/embed") == 0)
		return cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(root, "embeddings"), 1);
	if (strcmp(path, "/embed") == 0)
		return cJSON_Duplicate(root, 1);
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	out = cJSON_CreateArray();
	for (int i = 0; i < cJSON_GetArraySize(data); i++)
		cJSON_AddItemToArray(out, cJSON_CreateNull());
	cJSON_ArrayForEach(item, data) {
		int idx = (int)cJSON_GetObjectItemCaseSensitive(item, "index")->valuedouble;
		cr_assert(idx >= 0 && idx < cJSON_GetArraySize(data), "index %d out of range", idx);
		cJSON_ReplaceItemInArray(out, idx, cJSON_Duplicate(
			cJSON_GetObjectItemCaseSensitive(item, "embedding"), 1));
	}
	return out;
}

static const char *const paths[] = {"/api/embed", "/v1/embeddings", "/embed"};

/* A request body for path with the given JSON array (or string) of inputs. */
static void body_for(char *out, size_t size, const char *path, const char *inputs)
{
	if (strcmp(path, "/embed") == 0)
		snprintf(out, size, "{\"inputs\":%s}", inputs);
	else
		snprintf(out, size, "{\"model\":\"embfill-hash\",\"input\":%s%s}", inputs,
			 strcmp(path, "/v1/embeddings") == 0 ? ",\"encoding_format\":\"float\"" : "");
}

static void embed(struct http_resp *r, const struct embedder_proc *p, const char *path,
		  const char *inputs)
{
	char body[8192];

	body_for(body, sizeof(body), path, inputs);
	post(r, p, path, body);
}

/* Embeds one text through ollama; returns its dimension. */
static int embed_one(const struct embedder_proc *p, const char *text, double *out)
{
	struct http_resp r;
	char inputs[1024];
	cJSON *root, *vecs;
	int n;

	snprintf(inputs, sizeof(inputs), "[\"%s\"]", text);
	embed(&r, p, "/api/embed", inputs);
	cr_assert_eq(r.status, 200, "status %ld: %s", r.status, r.body);
	root = json_of(&r);
	vecs = vectors_of("/api/embed", root);
	n = to_doubles(cJSON_GetArrayItem(vecs, 0), out);
	cJSON_Delete(vecs);
	cJSON_Delete(root);
	resp_free(&r);
	return n;
}

/* Every vector of the answer has dim components; returns how many vectors. */
static int check_vectors(const char *path, const struct http_resp *r, int dim)
{
	static double v[MAX_DIM];
	cJSON *root = json_of(r), *vecs;
	const cJSON *x;
	int n = 0;

	cr_assert_not_null(root, "%s: answer is not JSON: %.200s", path, r->body);
	vecs = vectors_of(path, root);
	cJSON_ArrayForEach(x, vecs) {
		cr_assert_eq(to_doubles(x, v), dim, "%s: vector %d has the wrong dimension", path, n);
		n++;
	}
	cJSON_Delete(vecs);
	cJSON_Delete(root);
	return n;
}

/* Error text of an answer in the API's shape (openai nests it). */
static void error_of(const char *path, const struct http_resp *r, char *msg, size_t size,
		     char *kind, size_t ksize)
{
	cJSON *root = json_of(r);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");

	cr_assert_not_null(root, "%s: error body is not JSON: %.200s", path, r->body);
	kind[0] = '\0';
	if (strcmp(path, "/v1/embeddings") == 0) {
		cr_assert(cJSON_IsObject(e), "openai error is not nested: %s", r->body);
		snprintf(msg, size, "%s", str_at(e, "message") ? str_at(e, "message") : "");
		snprintf(kind, ksize, "%s", str_at(e, "code") ? str_at(e, "code") : "");
	} else {
		cr_assert(cJSON_IsString(e), "%s error is not a string: %s", path, r->body);
		snprintf(msg, size, "%s", e->valuestring);
		if (strcmp(path, "/embed") == 0)
			snprintf(kind, ksize, "%s", str_at(root, "error_type") ? str_at(root, "error_type") : "");
	}
	cJSON_Delete(root);
}

/* ---- the three APIs ---------------------------------------------------- */

Test(sandbox_api, ollama_returns_one_vector_per_input_of_the_configured_dim)
{
	struct embedder_proc p;
	struct http_resp r;
	char ct[128];
	cJSON *root;

	START(&p, "--dim", "64");
	embed(&r, &p, "/api/embed", "[\"alpha beta\",\"gamma\",\"delta epsilon\"]");
	cr_assert_eq(r.status, 200);
	cr_assert_not_null(header(&r, "Content-Type", ct, sizeof(ct)));
	cr_assert_str_eq(ct, "application/json");
	cr_assert_eq(check_vectors("/api/embed", &r, 64), 3);
	root = json_of(&r);
	cr_assert_str_eq(str_at(root, "model"), "embfill-hash");
	cJSON_Delete(root);
	resp_free(&r);
	embed(&r, &p, "/api/embed", "\"just one string\"");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(check_vectors("/api/embed", &r, 64), 1);
	resp_free(&r);
	embedder_stop(&p);
}

Test(sandbox_api, openai_returns_a_list_with_indices_and_usage)
{
	struct embedder_proc p;
	struct http_resp r;
	const cJSON *item, *usage;
	cJSON *root;
	int i = 0;

	START(&p, "--dim", "32");
	embed(&r, &p, "/v1/embeddings", "[\"first text here\",\"second\"]");
	cr_assert_eq(r.status, 200, "%s", r.body);
	root = json_of(&r);
	cr_assert_str_eq(str_at(root, "object"), "list");
	cr_assert_str_eq(str_at(root, "model"), "embfill-hash");
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "data")), 2);
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "data")) {
		cr_assert_str_eq(str_at(item, "object"), "embedding");
		cr_assert_eq(cJSON_GetObjectItemCaseSensitive(item, "index")->valuedouble, i++);
		cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(item, "embedding")), 32);
	}
	usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
	cr_assert_gt(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens")->valuedouble, 0);
	cr_assert_eq(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens")->valuedouble,
		     cJSON_GetObjectItemCaseSensitive(usage, "total_tokens")->valuedouble);
	cJSON_Delete(root);
	resp_free(&r);
	embed(&r, &p, "/v1/embeddings", "\"a single string\"");
	cr_assert_eq(check_vectors("/v1/embeddings", &r, 32), 1);
	resp_free(&r);
	embedder_stop(&p);
}

Test(sandbox_api, tei_returns_an_array_of_arrays_and_ignores_the_model)
{
	struct embedder_proc p;
	struct http_resp r;

	START(&p, "--dim", "16");
	embed(&r, &p, "/embed", "[\"one\",\"two\"]");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body[0], '[');
	cr_assert_eq(check_vectors("/embed", &r, 16), 2);
	resp_free(&r);
	post(&r, &p, "/embed", "{\"inputs\":\"one\",\"model\":\"anything\"}");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(check_vectors("/embed", &r, 16), 1);
	resp_free(&r);
	embedder_stop(&p);
}

Test(sandbox_api, unknown_model_is_404_in_each_provider_shape)
{
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--model", "m1,m2");
	post(&r, &p, "/api/embed", "{\"model\":\"x\",\"input\":[\"a\"]}");
	cr_assert_eq(r.status, 404);
	cr_assert_str_eq(r.body, "{\"error\":\"model \\\"x\\\" not found, try pulling it first\"}");
	resp_free(&r);
	post(&r, &p, "/v1/embeddings", "{\"model\":\"embfill-hash\",\"input\":[\"a\"]}");
	cr_assert_eq(r.status, 404);
	error_of("/v1/embeddings", &r, msg, sizeof(msg), kind, sizeof(kind));
	cr_assert_str_eq(kind, "model_not_found");
	cr_assert(strstr(r.body, "\"type\":\"invalid_request_error\"") != NULL);
	resp_free(&r);
	post(&r, &p, "/v1/embeddings", "{\"model\":\"m2\",\"input\":[\"a\"]}");
	cr_assert_eq(r.status, 200, "a listed model is accepted");
	resp_free(&r);
	embedder_stop(&p);
}

Test(sandbox_api, bad_json_or_shape_is_400_in_each_provider_shape)
{
	static const char *const bodies[] = {"{\"model\":", "[1,2]", "{\"model\":\"embfill-hash\",\"input\":5,\"inputs\":5}",
					     "{\"model\":\"embfill-hash\",\"input\":[],\"inputs\":[]}"};
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--dim", "8");
	for (size_t i = 0; i < 3; i++)
		for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
			post(&r, &p, paths[i], bodies[b]);
			cr_assert_eq(r.status, 400, "%s %s: %ld", paths[i], bodies[b], r.status);
			error_of(paths[i], &r, msg, sizeof(msg), kind, sizeof(kind));
			cr_assert_neq(msg[0], '\0');
			if (i == 2)
				cr_assert_str_eq(kind, "Validation");
			resp_free(&r);
		}
	embedder_stop(&p);
}

Test(sandbox_api, health_and_routes)
{
	struct embedder_proc p;
	struct http_resp r;
	char v[64];

	START(&p, "--dim", "8");
	get(&r, &p, "/health");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	get(&r, &p, "/nope");
	cr_assert_eq(r.status, 404);
	resp_free(&r);
	get(&r, &p, "/api/embed");
	cr_assert_eq(r.status, 405);
	cr_assert_str_eq(header(&r, "Allow", v, sizeof(v)), "POST");
	resp_free(&r);
	embedder_stop(&p);
}

/* ---- hash backend ---------------------------------------------------- */

Test(sandbox_hash, deterministic_across_two_servers)
{
	struct embedder_proc a, b;
	struct http_resp ra, rb;

	START(&a, "--seed", "1");
	START(&b, "--seed", "99");
	for (size_t i = 0; i < 3; i++) {
		embed(&ra, &a, paths[i], "[\"Backups run nightly at two.\",\"Rotate the keys.\"]");
		embed(&rb, &b, paths[i], "[\"Backups run nightly at two.\",\"Rotate the keys.\"]");
		cr_assert_eq(ra.status, 200);
		cr_assert_str_eq(ra.body, rb.body, "%s differs between servers", paths[i]);
		resp_free(&ra);
		resp_free(&rb);
	}
	embedder_stop(&a);
	embedder_stop(&b);
}

Test(sandbox_hash, vectors_have_unit_norm)
{
	static const char *const texts[] = {"hello", "The quick brown fox.", "", "!!!", "é中文 mixed"};
	static double v[MAX_DIM];
	struct embedder_proc p;

	START(&p, "--dim", "768");
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		int n = embed_one(&p, texts[i], v);
		cr_assert_eq(n, 768);
		cr_assert_float_eq(sqrt(dot(v, v, n)), 1.0, 1e-5, "norm of \"%s\"", texts[i]);
	}
	embedder_stop(&p);
}

Test(sandbox_hash, shared_words_score_higher_than_unrelated_text)
{
	static double a[MAX_DIM], b[MAX_DIM], c[MAX_DIM];
	struct embedder_proc p;
	int n;

	START(&p, "--dim", "768");
	n = embed_one(&p, "how to restore the database from a backup", a);
	embed_one(&p, "restore a database backup", b);
	embed_one(&p, "the cat sat on the mat in the sun", c);
	cr_assert_gt(cosine(a, b, n), cosine(a, c, n) + 0.2, "shared %f vs unrelated %f",
		     cosine(a, b, n), cosine(a, c, n));
	embedder_stop(&p);
}

/* ---- planted faults ---------------------------------------------------- */

Test(sandbox_faults, fail_500_answers_500_in_each_shape)
{
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--fail-500", "1");
	for (size_t i = 0; i < 3; i++) {
		embed(&r, &p, paths[i], "[\"a\"]");
		cr_assert_eq(r.status, 500, "%s", paths[i]);
		error_of(paths[i], &r, msg, sizeof(msg), kind, sizeof(kind));
		if (i == 2)
			cr_assert_str_eq(kind, "Backend");
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, fail_429_sends_retry_after_except_tei)
{
	struct embedder_proc p;
	struct http_resp r;
	char v[64], msg[512], kind[64];

	START(&p, "--fail-429", "1", "--retry-after", "7", "--retry-after-ms", "250");
	for (size_t i = 0; i < 2; i++) {
		embed(&r, &p, paths[i], "[\"a\"]");
		cr_assert_eq(r.status, 429);
		cr_assert_str_eq(header(&r, "Retry-After", v, sizeof(v)), "7", "%s", paths[i]);
		cr_assert_str_eq(header(&r, "retry-after-ms", v, sizeof(v)), "250");
		error_of(paths[i], &r, msg, sizeof(msg), kind, sizeof(kind));
		if (i == 1)
			cr_assert_str_eq(kind, "rate_limit_exceeded");
		resp_free(&r);
	}
	embed(&r, &p, "/embed", "[\"a\"]");
	cr_assert_eq(r.status, 429);
	cr_assert_null(header(&r, "Retry-After", v, sizeof(v)), "TEI sends no Retry-After");
	cr_assert_str_eq(r.body, "{\"error\":\"Model is overloaded\",\"error_type\":\"Overloaded\"}");
	resp_free(&r);
	embedder_stop(&p);
}

static void expect_stat(const struct embedder_proc *p, const char *status, double want)
{
	struct http_resp r;
	cJSON *root;
	const cJSON *n;

	get(&r, p, "/stats");
	root = json_of(&r);
	n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "by_status"), status);
	cr_assert_eq(cJSON_IsNumber(n) ? n->valuedouble : 0, want, "by_status[%s]: %s", status, r.body);
	cJSON_Delete(root);
	resp_free(&r);
}

Test(sandbox_faults, fail_first_fails_exactly_n_requests_then_succeeds)
{
	struct embedder_proc p;
	struct http_resp r;

	START(&p, "--fail-first", "3", "--dim", "8");
	for (int i = 0; i < 5; i++) {
		embed(&r, &p, paths[i % 3], "[\"a\"]");
		cr_assert_eq(r.status, i < 3 ? 503 : 200, "request %d: %ld", i, r.status);
		resp_free(&r);
	}
	expect_stat(&p, "503", 3);
	expect_stat(&p, "200", 2);
	embedder_stop(&p);
}

Test(sandbox_faults, fail_status_picks_the_status_and_retry_after_on_request)
{
	struct embedder_proc p, q;
	struct http_resp r;
	char v[64], msg[512], kind[64];

	START(&p, "--fail-first", "1", "--fail-status", "429", "--retry-after", "2");
	embed(&r, &p, "/v1/embeddings", "[\"a\"]");
	cr_assert_eq(r.status, 429);
	cr_assert_str_eq(header(&r, "Retry-After", v, sizeof(v)), "2");
	resp_free(&r);
	START(&q, "--fail-first", "1", "--fail-status", "502");
	embed(&r, &q, "/embed", "[\"a\"]");
	cr_assert_eq(r.status, 502);
	cr_assert_null(header(&r, "Retry-After", v, sizeof(v)));
	error_of("/embed", &r, msg, sizeof(msg), kind, sizeof(kind));
	cr_assert_str_eq(kind, "Backend");
	resp_free(&r);
	embedder_stop(&p);
	embedder_stop(&q);
}

Test(sandbox_faults, loading_seconds_answers_503_then_serves, .timeout = 30)
{
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];
	int tries = 0;

	START(&p, "--loading-seconds", "2.5", "--dim", "8");
	embed(&r, &p, "/api/embed", "[\"a\"]");
	cr_assert_eq(r.status, 503);
	cr_assert_str_eq(r.body, "{\"error\":\"model is loading\"}");
	resp_free(&r);
	embed(&r, &p, "/v1/embeddings", "[\"a\"]");
	error_of("/v1/embeddings", &r, msg, sizeof(msg), kind, sizeof(kind));
	cr_assert_str_eq(msg, "model is loading");
	resp_free(&r);
	get(&r, &p, "/health");
	cr_assert_eq(r.status, 503);
	resp_free(&r);
	do {
		nanosleep(&(struct timespec){.tv_nsec = 100000000L}, NULL);
		embed(&r, &p, "/embed", "[\"a\"]");
		resp_free(&r);
	} while (r.status == 503 && ++tries < 100);
	cr_assert_eq(r.status, 200);
	cr_assert_gt(tries, 5, "loaded too early");
	embedder_stop(&p);
}

Test(sandbox_faults, max_batch_is_413_or_tei_422)
{
	static const long want[] = {413, 413, 422};
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--max-batch", "2", "--dim", "8");
	for (size_t i = 0; i < 3; i++) {
		embed(&r, &p, paths[i], "[\"a\",\"b\",\"c\"]");
		cr_assert_eq(r.status, want[i], "%s: %ld", paths[i], r.status);
		error_of(paths[i], &r, msg, sizeof(msg), kind, sizeof(kind));
		cr_assert_str_eq(msg, "batch size 3 > maximum allowed batch size 2");
		if (i == 2)
			cr_assert_str_eq(kind, "Validation");
		resp_free(&r);
		embed(&r, &p, paths[i], "[\"a\",\"b\"]");
		cr_assert_eq(r.status, 200);
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, max_body_bytes_is_a_plain_text_413)
{
	struct embedder_proc p;
	struct http_resp r;
	char big[512], ct[128];
	cJSON *root;

	START(&p, "--max-body-bytes", "200", "--dim", "8");
	snprintf(big, sizeof(big), "[\"%0300d\"]", 7);
	for (size_t i = 0; i < 3; i++) {
		embed(&r, &p, paths[i], big);
		cr_assert_eq(r.status, 413, "%s", paths[i]);
		cr_assert(strncmp(header(&r, "Content-Type", ct, sizeof(ct)), "text/plain", 10) == 0);
		root = json_of(&r);
		cr_assert_null(root, "a proxy's 413 is not JSON");
		resp_free(&r);
		embed(&r, &p, paths[i], "[\"small\"]");
		cr_assert_eq(r.status, 200);
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, max_input_chars_is_a_context_length_error)
{
	static const long want[] = {500, 400, 413};
	static const char *const prefix[] = {
		"the input length exceeds the context length",
		"This model's maximum context length is 10 tokens",
		"Input validation error: inputs must have less than 10 tokens",
	};
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--max-input-chars", "10", "--dim", "8");
	for (size_t i = 0; i < 3; i++) {
		if (i == 0)	/* ollama cuts unless told not to */
			post(&r, &p, paths[i], "{\"model\":\"embfill-hash\",\"truncate\":false,"
			     "\"input\":[\"short\",\"this one is much longer than ten\"]}");
		else
			embed(&r, &p, paths[i], "[\"short\",\"this one is much longer than ten\"]");
		cr_assert_eq(r.status, want[i], "%s: %ld", paths[i], r.status);
		error_of(paths[i], &r, msg, sizeof(msg), kind, sizeof(kind));
		cr_assert(strncmp(msg, prefix[i], strlen(prefix[i])) == 0, "%s: %s", paths[i], msg);
		if (i == 2)
			cr_assert_str_eq(kind, "Validation");
		resp_free(&r);
		embed(&r, &p, paths[i], "[\"short\",\"ten chars!\"]");
		cr_assert_eq(r.status, 200);
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, malformed_rate_answers_200_with_invalid_json)
{
	struct embedder_proc p;
	struct http_resp r;
	cJSON *root;

	START(&p, "--malformed-rate", "1", "--dim", "8");
	for (size_t i = 0; i < 3; i++) {
		embed(&r, &p, paths[i], "[\"a\",\"b\"]");
		cr_assert_eq(r.status, 200);
		cr_assert_gt(r.len, 0);
		root = json_of(&r);
		cr_assert_null(root, "%s: body parsed: %s", paths[i], r.body);
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, wrong_dim_rate_answers_one_dimension_off)
{
	struct embedder_proc p;
	struct http_resp r;
	static double v[MAX_DIM];
	cJSON *root, *vecs;

	START(&p, "--wrong-dim-rate", "1", "--dim", "32");
	for (size_t i = 0; i < 3; i++) {
		embed(&r, &p, paths[i], "[\"a\",\"b\"]");
		cr_assert_eq(r.status, 200);
		root = json_of(&r);
		vecs = vectors_of(paths[i], root);
		for (int k = 0; k < 2; k++) {
			int n = to_doubles(cJSON_GetArrayItem(vecs, k), v);
			cr_assert(n == 31 || n == 33, "%s: dimension %d", paths[i], n);
		}
		cJSON_Delete(vecs);
		cJSON_Delete(root);
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, nan_rate_plants_a_non_number)
{
	struct embedder_proc p;
	struct http_resp r;
	cJSON *root;

	START(&p, "--nan-rate", "1", "--dim", "16", "--seed", "5");
	for (int i = 0; i < 6; i++) {
		embed(&r, &p, paths[i % 3], "[\"a\",\"b\"]");
		cr_assert_eq(r.status, 200);
		cr_assert(strstr(r.body, "NaN") != NULL || strstr(r.body, "1e999") != NULL,
			  "no NaN or 1e999 in %s", r.body);
		root = json_of(&r);
		cr_assert(root == NULL || strstr(r.body, "1e999") != NULL);
		cJSON_Delete(root);
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, wrong_count_rate_answers_one_vector_fewer)
{
	struct embedder_proc p;
	struct http_resp r;

	START(&p, "--wrong-count-rate", "1", "--dim", "8");
	for (size_t i = 0; i < 3; i++) {
		embed(&r, &p, paths[i], "[\"a\",\"b\",\"c\"]");
		cr_assert_eq(r.status, 200);
		cr_assert_eq(check_vectors(paths[i], &r, 8), 2, "%s", paths[i]);
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, shuffle_rate_permutes_openai_items_with_right_indices)
{
	static const char *inputs = "[\"zero\",\"one one\",\"two two two\",\"three\",\"four\"]";
	struct embedder_proc p;
	struct http_resp r, ref;
	cJSON *root, *reordered, *expected;
	const cJSON *item;
	bool moved = false;
	int k = 0;

	START(&p, "--shuffle-rate", "1", "--dim", "8");
	embed(&ref, &p, "/api/embed", inputs);
	cr_assert_eq(check_vectors("/api/embed", &ref, 8), 5);
	embed(&r, &p, "/v1/embeddings", inputs);
	cr_assert_eq(r.status, 200);
	root = json_of(&r);
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "data"))
		moved |= cJSON_GetObjectItemCaseSensitive(item, "index")->valuedouble != k++;
	cr_assert(moved, "items came back in order");
	reordered = vectors_of("/v1/embeddings", root);
	expected = json_of(&ref);
	cr_assert(cJSON_Compare(reordered, cJSON_GetObjectItemCaseSensitive(expected, "embeddings"), 1),
		  "reordering by index does not give the inputs' vectors");
	cJSON_Delete(reordered);
	cJSON_Delete(expected);
	cJSON_Delete(root);
	resp_free(&r);
	resp_free(&ref);
	embedder_stop(&p);
}

Test(sandbox_faults, drop_rate_cuts_the_answer_short)
{
	struct embedder_proc p;
	struct http_resp r;
	char url[128], body[256];

	START(&p, "--drop-rate", "1", "--dim", "64");
	for (size_t i = 0; i < 3; i++) {
		snprintf(url, sizeof(url), "%s%s", p.url, paths[i]);
		body_for(body, sizeof(body), paths[i], "[\"a\",\"b\"]");
		http(&r, "POST", url, body, NULL);
		cr_assert_neq(r.rc, CURLE_OK, "%s: transfer completed", paths[i]);
		cr_assert_gt(r.len, 0, "part of the body arrives first");
		resp_free(&r);
	}
	expect_stat(&p, "200", 3);
	embedder_stop(&p);
}

Test(sandbox_faults, reject_marker_fails_the_batch_naming_the_item)
{
	static const long want[] = {400, 400, 422};
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--reject-marker", "POISON", "--dim", "8");
	for (size_t i = 0; i < 3; i++) {
		embed(&r, &p, paths[i], "[\"ok\",\"fine\",\"has POISON in it\",\"ok too\"]");
		cr_assert_eq(r.status, want[i], "%s: %ld", paths[i], r.status);
		error_of(paths[i], &r, msg, sizeof(msg), kind, sizeof(kind));
		cr_assert(strstr(msg, "input 2 ") != NULL, "%s: %s", paths[i], msg);
		if (i == 2)
			cr_assert_str_eq(kind, "Validation");
		resp_free(&r);
		embed(&r, &p, paths[i], "[\"ok\",\"fine\",\"ok too\"]");
		cr_assert_eq(r.status, 200, "the batch without the item succeeds");
		resp_free(&r);
		embed(&r, &p, paths[i], "[\"has POISON in it\"]");
		cr_assert_eq(r.status, want[i], "the item alone still fails");
		resp_free(&r);
	}
	embedder_stop(&p);
}

static void status_sequence(const char *seed, long *out, int n)
{
	struct embedder_proc p;
	struct http_resp r;

	START(&p, "--fail-500", "0.5", "--seed", seed, "--dim", "8");
	for (int i = 0; i < n; i++) {
		embed(&r, &p, paths[i % 3], "[\"a\"]");
		out[i] = r.status;
		resp_free(&r);
	}
	embedder_stop(&p);
}

Test(sandbox_faults, same_seed_same_faults)
{
	long a[32], b[32], c[32];
	int fails = 0;

	status_sequence("42", a, 32);
	status_sequence("42", b, 32);
	status_sequence("43", c, 32);
	for (int i = 0; i < 32; i++)
		fails += a[i] == 500;
	cr_assert(memcmp(a, b, sizeof(a)) == 0, "same seed, different faults");
	cr_assert(memcmp(a, c, sizeof(a)) != 0, "another seed, same faults");
	cr_assert(fails > 4 && fails < 28, "%d of 32 failed at rate 0.5", fails);
}

Test(sandbox_faults, latency_flags_delay_the_answer)
{
	struct embedder_proc p, q;
	struct http_resp r;

	START(&p, "--latency-ms", "300", "--dim", "8");
	embed(&r, &p, "/embed", "[\"a\"]");
	cr_assert_eq(r.status, 200);
	cr_assert_geq(r.seconds, 0.29);
	resp_free(&r);
	START(&q, "--item-latency-ms", "100", "--dim", "8");
	embed(&r, &q, "/embed", "[\"a\"]");
	cr_assert_lt(r.seconds, 0.29);
	resp_free(&r);
	embed(&r, &q, "/embed", "[\"a\",\"b\",\"c\",\"d\"]");
	cr_assert_geq(r.seconds, 0.39);
	resp_free(&r);
	embedder_stop(&p);
	embedder_stop(&q);
}

/* ---- base64 and unusable vectors ---------------------------------------- */

static int b64_value(char c)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;

	return p ? (int)(p - a) : -1;
}

/* Decodes padded base64 of little-endian float32; returns how many floats. */
static int from_base64(const char *s, float *out, int max)
{
	unsigned char bytes[MAX_DIM * 4 + 3];
	size_t len = strlen(s), k = 0;

	cr_assert_eq(len % 4, 0, "base64 of %zu characters", len);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];

		for (int j = 0; j < 4; j++)
			v[j] = s[i + (size_t)j] == '=' ? 0 : b64_value(s[i + (size_t)j]);
		cr_assert(v[0] >= 0 && v[1] >= 0 && v[2] >= 0 && v[3] >= 0, "not base64: %s", s);
		cr_assert_lt(k + 3, sizeof(bytes));
		bytes[k++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (s[i + 2] != '=')
			bytes[k++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
		if (s[i + 3] != '=')
			bytes[k++] = (unsigned char)(v[2] << 6 | v[3]);
	}
	cr_assert_eq(k % 4, 0);
	for (size_t i = 0; i < k / 4 && (int)i < max; i++) {
		uint32_t w = (uint32_t)bytes[i * 4] | (uint32_t)bytes[i * 4 + 1] << 8 |
			     (uint32_t)bytes[i * 4 + 2] << 16 | (uint32_t)bytes[i * 4 + 3] << 24;
		memcpy(&out[i], &w, sizeof(w));
	}
	return (int)(k / 4);
}

static void openai_as(struct http_resp *r, const struct embedder_proc *p, const char *inputs,
		      const char *format)
{
	char body[4096];

	snprintf(body, sizeof(body), "{\"model\":\"embfill-hash\",\"input\":%s,"
		 "\"encoding_format\":\"%s\"}", inputs, format);
	post(r, p, "/v1/embeddings", body);
}

/* The embedding of data item k (placed by index) of an openai answer. */
static const cJSON *openai_item(const cJSON *root, int k)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "data"))
		if (cJSON_GetObjectItemCaseSensitive(item, "index")->valuedouble == k)
			return cJSON_GetObjectItemCaseSensitive(item, "embedding");
	cr_assert_fail("no item with index %d", k);
	return NULL;
}

/* The floats of a decimal answer, read as strtof reads them (not as doubles). */
static int floats_of_text(const char *body, int k, float *out)
{
	const char *p = body;
	int n = 0;

	for (int i = 0; i <= k; i++) {
		p = strstr(p, "\"embedding\":[");
		cr_assert_not_null(p);
		p += strlen("\"embedding\":[");
	}
	while (*p != ']') {
		char *end;

		out[n++] = strtof(p, &end);
		cr_assert(end > p, "not a number at %.20s", p);
		p = *end == ',' ? end + 1 : end;
	}
	return n;
}

Test(sandbox_base64, base64_is_the_same_float32_the_numbers_spell)
{
	static float f[MAX_DIM], b[MAX_DIM];
	struct embedder_proc p;
	struct http_resp rf, rb;
	cJSON *root;
	int n;

	START(&p, "--dim", "768");
	openai_as(&rf, &p, "[\"alpha beta gamma\"]", "float");
	openai_as(&rb, &p, "[\"alpha beta gamma\"]", "base64");
	cr_assert_eq(rb.status, 200, "%s", rb.body);
	root = json_of(&rb);
	cr_assert(cJSON_IsString(openai_item(root, 0)), "embedding is not a string: %.200s", rb.body);
	n = from_base64(openai_item(root, 0)->valuestring, b, MAX_DIM);
	cr_assert_eq(n, 768);
	cr_assert_eq(floats_of_text(rf.body, 0, f), 768);
	cr_assert(memcmp(f, b, sizeof(float) * 768) == 0,
		  "the printed numbers do not read back as the base64 floats");
	cJSON_Delete(root);
	resp_free(&rf);
	resp_free(&rb);
	embedder_stop(&p);
}

Test(sandbox_base64, an_unknown_encoding_format_is_a_400_naming_it)
{
	static const char *const bodies[] = {
		"{\"model\":\"embfill-hash\",\"input\":[\"a\"],\"encoding_format\":\"base32\"}",
		"{\"model\":\"embfill-hash\",\"input\":[\"a\"],\"encoding_format\":1}",
	};
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];
	cJSON *root;

	START(&p, "--dim", "8");
	for (size_t i = 0; i < 2; i++) {
		post(&r, &p, "/v1/embeddings", bodies[i]);
		cr_assert_eq(r.status, 400, "%s: %ld", bodies[i], r.status);
		error_of("/v1/embeddings", &r, msg, sizeof(msg), kind, sizeof(kind));
		cr_assert(strstr(msg, "encoding_format") != NULL, "%s", msg);
		root = json_of(&r);
		cr_assert_str_eq(str_at(cJSON_GetObjectItemCaseSensitive(root, "error"), "type"),
				 "invalid_request_error");
		cJSON_Delete(root);
		resp_free(&r);
	}
	post(&r, &p, "/embed", "{\"inputs\":[\"a\"],\"encoding_format\":\"base32\"}");
	cr_assert_eq(r.status, 200, "tei has no such parameter and ignores it");
	resp_free(&r);
	embedder_stop(&p);
}

Test(sandbox_base64, ignore_base64_answers_numbers)
{
	struct embedder_proc p;
	struct http_resp r;

	START(&p, "--dim", "16", "--ignore-base64");
	openai_as(&r, &p, "[\"a\",\"b\"]", "base64");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(check_vectors("/v1/embeddings", &r, 16), 2);
	resp_free(&r);
	expect_stat(&p, "200", 1);
	embedder_stop(&p);
}

Test(sandbox_base64, refuse_base64_answers_400_naming_encoding_format_and_serves_numbers)
{
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--dim", "16", "--refuse-base64");
	openai_as(&r, &p, "[\"a\"]", "base64");
	cr_assert_eq(r.status, 400);
	error_of("/v1/embeddings", &r, msg, sizeof(msg), kind, sizeof(kind));
	cr_assert(strstr(msg, "encoding_format") != NULL, "%s", msg);
	resp_free(&r);
	openai_as(&r, &p, "[\"a\"]", "float");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(check_vectors("/v1/embeddings", &r, 16), 1);
	resp_free(&r);
	embedder_stop(&p);
}

/* /stats: POSTs to one embed path, whatever the answer. */
static double path_stat(const struct embedder_proc *p, const char *path)
{
	struct http_resp r;
	cJSON *root, *n;
	double v;

	get(&r, p, "/stats");
	root = json_of(&r);
	n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "by_path"), path);
	cr_assert(cJSON_IsNumber(n), "no by_path count of %s: %s", path, r.body);
	v = n->valuedouble;
	cJSON_Delete(root);
	resp_free(&r);
	return v;
}

/* The vector of "a" from /embed as numbers, and from /v1/embeddings as base64. */
static void both_routes(const struct embedder_proc *p, float *tei, float *oa)
{
	struct http_resp r;
	cJSON *root;

	const char *at;
	int n = 0;

	post(&r, p, "/embed", "{\"inputs\":[\"a\"]}");
	cr_assert_eq(r.status, 200);
	cr_assert(strncmp(r.body, "[[", 2) == 0, "%s", r.body);
	for (at = r.body + 2; *at != ']' && n < MAX_DIM;) {
		char *end;

		tei[n++] = strtof(at, &end);
		cr_assert(end > at, "not a number at %.20s", at);
		at = *end == ',' ? end + 1 : end;
	}
	cr_assert_eq(n, 16);
	resp_free(&r);
	openai_as(&r, p, "[\"a\"]", "base64");
	cr_assert_eq(r.status, 200, "%s", r.body);
	root = json_of(&r);
	cr_assert_eq(from_base64(openai_item(root, 0)->valuestring, oa, MAX_DIM), 16);
	cJSON_Delete(root);
	resp_free(&r);
}

Test(sandbox_tei_route, the_openai_route_serves_the_vectors_of_embed)
{
	struct embedder_proc p;
	float tei[MAX_DIM], oa[MAX_DIM];

	START(&p, "--dim", "16");
	both_routes(&p, tei, oa);
	cr_assert(memcmp(tei, oa, 16 * sizeof(float)) == 0, "the routes differ");
	cr_expect_eq(path_stat(&p, "/embed"), 1);
	cr_expect_eq(path_stat(&p, "/v1/embeddings"), 1);
	cr_expect_eq(path_stat(&p, "/api/embed"), 0);
	embedder_stop(&p);
}

Test(sandbox_tei_route, openai_route_missing_is_a_404_and_embed_still_serves)
{
	struct embedder_proc p;
	struct http_resp r;

	START(&p, "--dim", "16", "--openai-route", "missing");
	openai_as(&r, &p, "[\"a\"]", "base64");
	cr_assert_eq(r.status, 404, "%ld %s", r.status, r.body);
	resp_free(&r);
	post(&r, &p, "/embed", "{\"inputs\":[\"a\"]}");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	cr_expect_eq(path_stat(&p, "/v1/embeddings"), 1, "a POST to a missing route is counted");
	cr_expect_eq(path_stat(&p, "/embed"), 1);
	expect_stat(&p, "404", 0);
	embedder_stop(&p);
}

/* Another model of the same dimension: the same norm, another direction. */
Test(sandbox_tei_route, openai_route_other_gives_other_vectors_of_the_same_norm)
{
	struct embedder_proc p;
	float tei[MAX_DIM], oa[MAX_DIM];
	double a = 0, b = 0, ab = 0;

	START(&p, "--dim", "16", "--openai-route", "other");
	both_routes(&p, tei, oa);
	for (int i = 0; i < 16; i++) {
		a += (double)tei[i] * tei[i];
		b += (double)oa[i] * oa[i];
		ab += (double)tei[i] * oa[i];
	}
	cr_expect_float_eq(a, b, 1e-6, "norms %g and %g", a, b);
	cr_expect_lt(ab / sqrt(a * b), 0.9, "cosine %g", ab / sqrt(a * b));
	embedder_stop(&p);
}

/* A lower bound on a planted delay, not a speed: /v1/embeddings waits at
 * least its extra latency, /embed does not wait for it. */
Test(sandbox_tei_route, openai_latency_delays_the_openai_route_alone)
{
	struct embedder_proc p;
	struct http_resp r;
	struct timespec t0, t1;
	double ms;

	START(&p, "--dim", "16", "--openai-latency-ms", "300");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	openai_as(&r, &p, "[\"a\"]", "base64");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	cr_expect_geq(ms, 300.0, "/v1/embeddings answered after %.0f ms", ms);
	embedder_stop(&p);
}

Test(sandbox_base64, nan_rate_plants_a_nan_or_an_infinity_in_base64)
{
	static float v[MAX_DIM];
	struct embedder_proc p;
	struct http_resp r;
	cJSON *root;

	START(&p, "--nan-rate", "1", "--dim", "16", "--seed", "5");
	for (int i = 0; i < 4; i++) {
		int bad = 0;

		openai_as(&r, &p, "[\"a\",\"b\"]", "base64");
		cr_assert_eq(r.status, 200);
		root = json_of(&r);
		cr_assert_not_null(root, "base64 answers stay valid JSON");
		for (int k = 0; k < 2; k++) {
			cr_assert_eq(from_base64(openai_item(root, k)->valuestring, v, MAX_DIM), 16);
			for (int j = 0; j < 16; j++)
				bad += !isfinite(v[j]);
		}
		cr_assert_eq(bad, 1, "one planted non-finite value, not %d", bad);
		cJSON_Delete(root);
		resp_free(&r);
	}
	embedder_stop(&p);
}

/* The vector of text under the hash backend, by ollama. */
static double text_norm(const struct embedder_proc *p, const char *text)
{
	static double v[MAX_DIM];
	int n = embed_one(p, text, v);

	return sqrt(dot(v, v, n));
}

Test(sandbox_faults, zero_and_huge_rates_pick_the_same_texts_every_time)
{
	static const char *const texts[] = { "one", "two", "three", "four", "five", "six",
					     "seven", "eight", "nine", "ten", "eleven", "twelve" };
	struct embedder_proc z, h;
	int zeros = 0, huge = 0;

	START(&z, "--zero-rate", "0.3", "--dim", "32", "--seed", "2");
	START(&h, "--huge-rate", "0.3", "--dim", "32", "--seed", "2");
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		double nz = text_norm(&z, texts[i]), nh = text_norm(&h, texts[i]);

		cr_assert(nz == 0 || fabs(nz - 1) < 1e-5, "\"%s\": norm %g", texts[i], nz);
		cr_assert(fabs(nh - 1) < 1e-5 || fabs(nh / 1e29 - 1) < 1e-5, "\"%s\": norm %g",
			  texts[i], nh);
		cr_assert_eq(text_norm(&z, texts[i]), nz, "\"%s\" changed between requests", texts[i]);
		zeros += nz == 0;
		huge += nh > 1e6;
	}
	cr_assert(zeros > 0 && zeros < 12, "%d of 12 zeroed at rate 0.3", zeros);
	cr_assert(huge > 0 && huge < 12, "%d of 12 huge at rate 0.3", huge);
	embedder_stop(&z);
	embedder_stop(&h);
}

/* ---- stats and auth ---------------------------------------------------- */

Test(sandbox_stats, count_requests_by_status_and_items)
{
	struct embedder_proc p;
	struct http_resp r;

	START(&p, "--fail-first", "1", "--dim", "8");
	embed(&r, &p, "/embed", "[\"a\"]");
	resp_free(&r);
	embed(&r, &p, "/embed", "[\"a\",\"b\",\"c\"]");
	resp_free(&r);
	embed(&r, &p, "/api/embed", "[\"a\",\"b\"]");
	resp_free(&r);
	post(&r, &p, "/api/embed", "{\"model\":\"other\",\"input\":[\"a\"]}");
	resp_free(&r);
	get(&r, &p, "/health");
	resp_free(&r);
	post(&r, &p, "/v1/embeddings", "{\"model\":\"embfill-hash\",\"input\":[\"a\"],"
	     "\"encoding_format\":\"base64\"}");
	resp_free(&r);
	get(&r, &p, "/stats");
	cr_assert_str_eq(r.body, "{\"requests\":5,\"by_status\":{\"200\":3,\"404\":1,\"503\":1},"
			 "\"items\":6,\"base64_requests\":1,\"computed\":6,\"cached\":0,"
			 "\"computing\":0,\"max_computing\":1,\"cache_vectors\":0,\"by_path\":"
			 "{\"/api/embed\":2,\"/v1/embeddings\":1,\"/embed\":2}}");
	resp_free(&r);
	post(&r, &p, "/stats/reset", "");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	get(&r, &p, "/stats");
	cr_assert_str_eq(r.body, "{\"requests\":0,\"by_status\":{},\"items\":0,"
			 "\"base64_requests\":0,\"computed\":0,\"cached\":0,\"computing\":0,"
			 "\"max_computing\":0,\"cache_vectors\":0,\"by_path\":{\"/api/embed\":0,"
			 "\"/v1/embeddings\":0,\"/embed\":0}}");
	resp_free(&r);
	embedder_stop(&p);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void embed_with_auth(struct http_resp *r, const struct embedder_proc *p, const char *path,
			    const char *auth)
{
	char url[128], body[256];

	snprintf(url, sizeof(url), "%s%s", p->url, path);
	body_for(body, sizeof(body), path, "[\"a\"]");
	http(r, "POST", url, body, auth);
	cr_assert_eq(r->rc, CURLE_OK);
}

Test(sandbox_auth, api_key_is_required_and_never_echoed)
{
	char keyfile[] = "/tmp/sandbox-key-XXXXXX", msg[512], kind[64], v[64];
	struct embedder_proc p;
	struct http_resp r;
	int fd = mkstemp(keyfile);

	cr_assert_geq(fd, 0);
	close(fd);
	write_file(keyfile, "s3cret-sandbox-key\n");
	START(&p, "--api-key-file", keyfile, "--dim", "8");
	unlink(keyfile);
	for (size_t i = 0; i < 3; i++) {
		embed_with_auth(&r, &p, paths[i], NULL);
		cr_assert_eq(r.status, 401, "%s without a key", paths[i]);
		cr_assert_str_eq(header(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer");
		resp_free(&r);
		embed_with_auth(&r, &p, paths[i], i == 0 ? "Authorization: Bearer s3cret-wrong"
				: "Authorization: Bearer s3cret-sandbox-kez");
		cr_assert_eq(r.status, 401, "%s with a wrong key", paths[i]);
		cr_assert_null(strstr(r.body, "s3cret"), "key echoed: %s", r.body);
		if (i == 1) {
			error_of(paths[i], &r, msg, sizeof(msg), kind, sizeof(kind));
			cr_assert_str_eq(kind, "invalid_api_key");
			cr_assert(strstr(r.body, "\"type\":\"invalid_request_error\"") != NULL);
		}
		resp_free(&r);
		embed_with_auth(&r, &p, paths[i], "Authorization: Bearer s3cret-sandbox-key");
		cr_assert_eq(r.status, 200, "%s with the key", paths[i]);
		resp_free(&r);
	}
	get(&r, &p, "/health");
	cr_assert_eq(r.status, 200, "health needs no key");
	resp_free(&r);
	embedder_stop(&p);
}

/* ---- command line and process ------------------------------------------ */

/* Runs the embedder to completion; returns its exit status, output in out. */
static int run_embedder(const char *const *args, char *out, size_t size)
{
	const char *bin = getenv("EMBFILL_EMBEDDER");
	char *argv[32];
	posix_spawn_file_actions_t fa;
	size_t n = 0, len = 0;
	int fds[2], status;
	pid_t pid;
	ssize_t k;

	cr_assert_not_null(bin, "EMBFILL_EMBEDDER is not set");
	argv[n++] = strdup(bin);
	for (size_t i = 0; args[i] != NULL; i++)
		argv[n++] = strdup(args[i]);
	argv[n] = NULL;
	cr_assert_eq(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	cr_assert_eq(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while (len + 1 < size && (k = read(fds[0], out + len, size - len - 1)) > 0)
		len += (size_t)k;
	out[len] = '\0';
	close(fds[0]);
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(sandbox_cli, bad_flags_exit_2_naming_the_flag, .timeout = 60)
{
	static const char *const cases[][5] = {
		{"--fail-500", "abc", NULL}, {"--fail-429", "1.5", NULL}, {"--nan-rate", "-0.1", NULL},
		{"--dim", "0", NULL}, {"--port", "70000", NULL}, {"--latency-ms", "soon", NULL},
		{"--backend", "gpu", NULL}, {"--fail-status", "200", NULL}, {"--seed", "-3", NULL},
		{"--api-key-file", "/nonexistent/key", NULL}, {"--max-batch", "0", NULL},
		{"--drop-rate", "nan", NULL}, {"--bogus", NULL}, {"--retry-after", NULL},
		{"--dim", "768", "--backend", "use-lite", NULL}, {"--zero-rate", "2", NULL},
		{"--huge-rate", "x", NULL}, {"--ignore-base64", "--refuse-base64", NULL},
		{"--openai-route", "absent", NULL}, {"--openai-latency-ms", "-1", NULL},
	};
	char out[4096];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_embedder(cases[i], out, sizeof(out));
		cr_assert_eq(rc, 2, "%s %s: exit %d", cases[i][0], cases[i][1] ? cases[i][1] : "", rc);
		cr_assert(strstr(out, cases[i][0]) != NULL, "message does not name %s: %s",
			  cases[i][0], out);
	}
}

Test(sandbox_cli, help_lists_every_flag)
{
	static const char *const flags[] = {
		"--port", "--port-file", "--dim", "--backend", "--model", "--seed", "--latency-ms",
		"--item-latency-ms", "--fail-500", "--fail-429", "--retry-after", "--retry-after-ms",
		"--max-batch", "--max-body-bytes", "--max-input-chars", "--malformed-rate",
		"--wrong-dim-rate", "--nan-rate", "--wrong-count-rate", "--shuffle-rate",
		"--drop-rate", "--reject-marker", "--api-key-file", "--fail-first", "--fail-status",
		"--loading-seconds", "--node-modules", "--parent-pid", "--verbose", "--zero-rate",
		"--huge-rate", "--ignore-base64", "--refuse-base64", "--openai-route",
		"--openai-latency-ms",
	};
	const char *const args[] = {"--help", NULL};
	char out[16384];

	cr_assert_eq(run_embedder(args, out, sizeof(out)), 0);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		cr_assert(strstr(out, flags[i]) != NULL, "--help lacks %s", flags[i]);
}

static int try_connect(const char *addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc, err;

	inet_pton(AF_INET, addr, &sa.sin_addr);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	close(fd);
	return rc == 0 ? 0 : err;
}

/* 127.0.0.2 reaches this host too; a socket bound to all interfaces would
 * accept there, one bound to 127.0.0.1 refuses. */
Test(sandbox_cli, binds_127_0_0_1_only)
{
	struct embedder_proc p;
	char line[512], want[32];
	bool found = false;
	FILE *f;

	START(&p, "--dim", "8");
	cr_assert_eq(try_connect("127.0.0.1", p.port), 0);
	cr_assert_eq(try_connect("127.0.0.2", p.port), ECONNREFUSED);
	snprintf(want, sizeof(want), ":%04X ", p.port);
	f = fopen("/proc/net/tcp", "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, want) != NULL && strstr(line, " 0A ") != NULL)
			found |= strstr(line, "0100007F:") != NULL;
	fclose(f);
	cr_assert(found, "no listening socket on 127.0.0.1:%d in /proc/net/tcp", p.port);
	embedder_stop(&p);
}

Test(sandbox_cli, port_file_and_clean_exit_on_sigterm)
{
	char path[] = "/tmp/sandbox-port-XXXXXX", text[32] = "";
	struct embedder_proc p;
	int fd = mkstemp(path), status;
	FILE *f;

	cr_assert_geq(fd, 0);
	close(fd);
	START(&p, "--port-file", path, "--dim", "8");
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(text, sizeof(text), f));
	fclose(f);
	unlink(path);
	cr_assert_eq(atoi(text), p.port);
	kill(p.pid, SIGTERM);
	cr_assert_eq(waitpid(p.pid, &status, 0), p.pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
	p.pid = 0;
}

/* Running and not a zombie awaiting a reaper. */
static bool alive(pid_t pid)
{
	char path[64], state = 'X';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = 'X';
	fclose(f);
	return state != 'Z' && state != 'X';
}

/* A test that dies before embedder_stop() must not leave its server. */
Test(sandbox_cli, server_exits_with_the_process_that_started_it)
{
	struct embedder_proc p;
	int fds[2], status;
	pid_t child, server = 0;

	cr_assert_eq(pipe(fds), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		if (embedder_start(&p, NULL) == 0)
			(void)!write(fds[1], &p.pid, sizeof(p.pid));
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &server, sizeof(server)), (ssize_t)sizeof(server));
	close(fds[0]);
	waitpid(child, &status, 0);
	for (int i = 0; i < 100 && alive(server); i++)
		nanosleep(&(struct timespec){.tv_nsec = 50000000L}, NULL);
	cr_assert(!alive(server), "server %d outlived its parent", (int)server);
}

Test(sandbox_cli, use_lite_without_packages_or_node_exits_2)
{
	const char *const args[] = {"--backend", "use-lite", "--node-modules", "/nonexistent", NULL};
	char out[4096];

	const char *const lite[] = {"--backend", "use-lite", NULL};

	cr_assert_eq(run_embedder(args, out, sizeof(out)), 2);
	cr_assert(strstr(out, "/nonexistent") != NULL, "%s", out);
	setenv("PATH", "/nonexistent", 1);
	cr_assert_eq(run_embedder(lite, out, sizeof(out)), 2, "without node: %s", out);
	cr_assert(strstr(out, "node") != NULL, "%s", out);
}

/* ---- use-lite ---------------------------------------------------------- */

Test(sandbox_use_lite, returns_512_dims_and_ranks_a_paraphrase_first, .timeout = 120)
{
	static double q[MAX_DIM], para[MAX_DIM], other[MAX_DIM];
	struct embedder_proc p;
	struct http_resp r;
	int n;

	START(&p, "--backend", "use-lite", "--model", "embfill-hash");
	n = embed_one(&p, "How do I list the files in a directory?", q);
	cr_assert_eq(n, 512);
	embed_one(&p, "Which command shows the contents of a folder?", para);
	embed_one(&p, "The cat sat on the mat in the sun.", other);
	cr_assert_gt(cosine(q, para, n), cosine(q, other, n), "paraphrase %f, unrelated %f",
		     cosine(q, para, n), cosine(q, other, n));
	embed(&r, &p, "/v1/embeddings", "[\"a\",\"\",\"b\"]");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(check_vectors("/v1/embeddings", &r, 512), 3, "an empty input keeps its slot");
	resp_free(&r);
	embedder_stop(&p);
}

/* A rendered manual page is indented and broken into lines; the model's
 * own tokenizer reads blanks and line breaks as single spaces, so the same
 * words laid out differently must give the same vector. */
Test(sandbox_use_lite, layout_blanks_do_not_change_the_vector, .timeout = 120)
{
	static double flat[MAX_DIM], laid[MAX_DIM];
	struct embedder_proc p;
	int n;

	START(&p, "--backend", "use-lite", "--model", "embfill-hash");
	n = embed_one(&p, "-t sort by time, newest first", flat);
	cr_assert_eq(n, 512);
	embed_one(&p, "\\n       -t     sort by\\n              time,\\tnewest first\\n\\n", laid);
	cr_assert_gt(cosine(flat, laid, n), 0.9999, "cosine %f", cosine(flat, laid, n));
	embedder_stop(&p);
}

/* ---- recipes: the request fields that change a vector ------------------ */

/* Posts a body built from fmt to path; the answer must be 200 or want. */
__attribute__((format(printf, 5, 6)))
static void post_fmt(struct http_resp *r, const struct embedder_proc *p, const char *path,
		     long want, const char *fmt, ...)
{
	char body[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	post(r, p, path, body);
	cr_assert_eq(r->status, want, "%s %s: %ld %s", path, body, r->status, r->body);
}

/* Vector item of a 200 answer of path; returns its dimension. */
static int vector_at(const char *path, const struct http_resp *r, int item, double *out)
{
	cJSON *root = json_of(r), *vecs;
	int n;

	cr_assert_not_null(root, "%s: not JSON: %.200s", path, r->body);
	vecs = vectors_of(path, root);
	cr_assert(cJSON_GetArraySize(vecs) > item, "%s: no vector %d: %.200s", path, item, r->body);
	n = to_doubles(cJSON_GetArrayItem(vecs, item), out);
	cJSON_Delete(vecs);
	cJSON_Delete(root);
	return n;
}

/* The vector of text alone, asked of path with the extra fields given. */
static int vector_of(const struct embedder_proc *p, const char *path, const char *text,
		     const char *extra, double *out)
{
	struct http_resp r;
	int n;

	if (strcmp(path, "/embed") == 0)
		post_fmt(&r, p, path, 200, "{\"inputs\":[\"%s\"]%s}", text, extra);
	else
		post_fmt(&r, p, path, 200, "{\"model\":\"embfill-hash\",\"input\":[\"%s\"]%s}", text, extra);
	n = vector_at(path, &r, 0, out);
	resp_free(&r);
	return n;
}

static double norm_of(const double *a, int n)
{
	return sqrt(dot(a, a, n));
}

static bool same_doubles(const double *a, const double *b, int n)
{
	return memcmp(a, b, sizeof(*a) * (size_t)n) == 0;
}

Test(sandbox_recipe, a_task_prefix_is_embedded_with_the_text_and_the_same_text_repeats_exactly)
{
	static double plain[MAX_DIM], prefixed[MAX_DIM], again[MAX_DIM];
	struct embedder_proc p;

	START(&p, "--dim", "768");
	for (size_t i = 0; i < 3; i++) {
		int n = vector_of(&p, paths[i], "list files by date", "", plain);
		cr_assert_eq(vector_of(&p, paths[i], "search_document: list files by date", "", prefixed), n);
		vector_of(&p, paths[i], "list files by date", "", again);
		cr_assert_lt(cosine(plain, prefixed, n), 0.99, "%s: the prefix changed nothing (%f)",
			     paths[i], cosine(plain, prefixed, n));
		cr_assert(same_doubles(plain, again, n), "%s: the same text, another vector", paths[i]);
	}
	embedder_stop(&p);
}

Test(sandbox_recipe, dimensions_keeps_the_first_n_components_scaled_to_unit_length)
{
	static double full[MAX_DIM], shortv[MAX_DIM], same[MAX_DIM];
	const char *const apis[] = {"/api/embed", "/v1/embeddings"};
	struct embedder_proc p;

	START(&p, "--dim", "64");
	cr_assert_eq(vector_of(&p, "/api/embed", "alpha beta gamma delta", "", full), 64);
	for (size_t k = 0; k < 2; k++) {
		double head;
		cr_assert_eq(vector_of(&p, apis[k], "alpha beta gamma delta", ",\"dimensions\":16",
				       shortv), 16, "%s", apis[k]);
		head = norm_of(full, 16);
		cr_assert_float_eq(norm_of(shortv, 16), 1.0, 1e-6, "%s", apis[k]);
		for (int i = 0; i < 16; i++)
			cr_assert_float_eq(shortv[i], full[i] / head, 1e-6, "%s component %d", apis[k], i);
		cr_assert_eq(vector_of(&p, apis[k], "alpha beta gamma delta", ",\"dimensions\":64",
				       same), 64);
		cr_assert(same_doubles(same, full, 64), "%s: the native dimension changes nothing", apis[k]);
	}
	embedder_stop(&p);
}

Test(sandbox_recipe, openai_refuses_dimensions_outside_one_to_the_native_dimension)
{
	static const char *const bad[] = {"0", "65", "-2", "1.5", "\"16\"", "true"};
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--dim", "64");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		post_fmt(&r, &p, "/v1/embeddings", 400, "{\"model\":\"embfill-hash\",\"input\":[\"a\"],"
			 "\"dimensions\":%s}", bad[i]);
		error_of("/v1/embeddings", &r, msg, sizeof(msg), kind, sizeof(kind));
		cr_assert(strstr(msg, "'dimensions'") != NULL, "%s: %s", bad[i], msg);
		cr_assert(strstr(r.body, "\"type\":\"invalid_request_error\"") != NULL, "%s", r.body);
		resp_free(&r);
	}
	embedder_stop(&p);
}

/* Ollama shortens only when 0 < dimensions < the model's size and answers
 * the whole vector otherwise; a value of the wrong type is Go's 400. */
Test(sandbox_recipe, ollama_answers_the_whole_vector_for_dimensions_it_cannot_honour)
{
	static double full[MAX_DIM], v[MAX_DIM];
	static const char *const ignored[] = {",\"dimensions\":0", ",\"dimensions\":65",
					      ",\"dimensions\":-3", ",\"dimensions\":null"};
	struct embedder_proc p;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--dim", "64");
	vector_of(&p, "/api/embed", "alpha", "", full);
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		cr_assert_eq(vector_of(&p, "/api/embed", "alpha", ignored[i], v), 64, "%s", ignored[i]);
		cr_assert(same_doubles(v, full, 64), "%s", ignored[i]);
	}
	post_fmt(&r, &p, "/api/embed", 400, "{\"model\":\"embfill-hash\",\"input\":[\"a\"],"
		 "\"dimensions\":\"16\"}");
	error_of("/api/embed", &r, msg, sizeof(msg), kind, sizeof(kind));
	cr_assert(strstr(msg, "EmbedRequest.dimensions") != NULL, "%s", msg);
	resp_free(&r);
	embedder_stop(&p);
}

/* TEI's request structs do not deny unknown fields: "dimensions" is not
 * one of its fields and changes nothing. */
Test(sandbox_recipe, tei_ignores_a_dimensions_field)
{
	static double full[MAX_DIM], v[MAX_DIM];
	struct embedder_proc p;

	START(&p, "--dim", "64");
	vector_of(&p, "/embed", "alpha", "", full);
	cr_assert_eq(vector_of(&p, "/embed", "alpha", ",\"dimensions\":16,\"bogus\":[1]", v), 64);
	cr_assert(same_doubles(v, full, 64));
	embedder_stop(&p);
}

Test(sandbox_recipe, ollama_cuts_an_input_over_the_context_unless_truncate_is_false)
{
	static double cut[MAX_DIM], v[MAX_DIM], whole[MAX_DIM];
	struct embedder_proc p, q;
	struct http_resp r;
	char msg[512], kind[64];

	START(&p, "--max-input-chars", "10", "--dim", "64");
	START(&q, "--dim", "64");
	vector_of(&p, "/api/embed", "abcdefghij", "", cut);
	vector_of(&q, "/api/embed", "abcdefghij klmnop", "", whole);
	cr_assert_lt(cosine(cut, whole, 64), 0.99, "the cut must show in the vector");
	vector_of(&p, "/api/embed", "abcdefghij klmnop", "", v);
	cr_assert(same_doubles(v, cut, 64), "by default the input is cut to the context");
	vector_of(&p, "/api/embed", "abcdefghij klmnop", ",\"truncate\":true", v);
	cr_assert(same_doubles(v, cut, 64));
	vector_of(&p, "/api/embed", "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9", "", cut);
	vector_of(&p, "/api/embed", "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
		  "\\u00e9\\u00e9", "", v);
	cr_assert(same_doubles(v, cut, 64), "cut by characters, not bytes");
	post_fmt(&r, &p, "/api/embed", 500, "{\"model\":\"embfill-hash\",\"input\":[\"abcdefghij "
		 "klmnop\"],\"truncate\":false}");
	error_of("/api/embed", &r, msg, sizeof(msg), kind, sizeof(kind));
	cr_assert_str_eq(msg, "the input length exceeds the context length");
	resp_free(&r);
	post_fmt(&r, &p, "/api/embed", 400, "{\"model\":\"embfill-hash\",\"input\":[\"a\"],"
		 "\"truncate\":\"no\"}");
	cr_assert(strstr(r.body, "EmbedRequest.truncate") != NULL, "%s", r.body);
	resp_free(&r);
	embedder_stop(&p);
	embedder_stop(&q);
}

Test(sandbox_recipe, tei_refuses_an_input_over_the_context_unless_truncate_is_true)
{
	static double cut[MAX_DIM], v[MAX_DIM];
	struct embedder_proc p;
	struct http_resp r;
	char ct[128];

	START(&p, "--max-input-chars", "10", "--dim", "64");
	vector_of(&p, "/embed", "abcdefghij", "", cut);
	post_fmt(&r, &p, "/embed", 413, "{\"inputs\":[\"abcdefghij klmnop\"]}");
	resp_free(&r);
	post_fmt(&r, &p, "/embed", 413, "{\"inputs\":[\"abcdefghij klmnop\"],\"truncate\":false}");
	resp_free(&r);
	post_fmt(&r, &p, "/embed", 413, "{\"inputs\":[\"abcdefghij klmnop\"],\"truncate\":null}");
	resp_free(&r);
	vector_of(&p, "/embed", "abcdefghij klmnop", ",\"truncate\":true", v);
	cr_assert(same_doubles(v, cut, 64), "truncate:true embeds the cut text");
	post_fmt(&r, &p, "/embed", 422, "{\"inputs\":[\"a\"],\"truncate\":1}");
	cr_assert_str_eq(header(&r, "Content-Type", ct, sizeof(ct)), "text/plain; charset=utf-8");
	cr_assert(strstr(r.body, "truncate: invalid type") != NULL, "%s", r.body);
	resp_free(&r);
	embedder_stop(&p);
}

Test(sandbox_recipe, tei_normalize_false_answers_the_vector_before_normalisation)
{
	static double unit[MAX_DIM], raw[MAX_DIM], again[MAX_DIM], longer[MAX_DIM];
	struct embedder_proc p;
	struct http_resp r;
	double n1, n2;

	START(&p, "--dim", "64");
	vector_of(&p, "/embed", "one two", "", unit);
	vector_of(&p, "/embed", "one two", ",\"normalize\":true", raw);
	cr_assert(same_doubles(raw, unit, 64), "normalize defaults to true");
	vector_of(&p, "/embed", "one two", ",\"normalize\":false", raw);
	vector_of(&p, "/embed", "one two", ",\"normalize\":false", again);
	vector_of(&p, "/embed", "one two three four five six seven", ",\"normalize\":false", longer);
	n1 = norm_of(raw, 64);
	n2 = norm_of(longer, 64);
	cr_assert_float_eq(norm_of(unit, 64), 1.0, 1e-6);
	cr_assert(fabs(n1 - 1.0) > 0.1, "norm %f: normalised anyway", n1);
	cr_assert(fabs(n2 - n1) > 0.1, "norms %f and %f: the length does not follow the text", n1, n2);
	cr_assert(same_doubles(raw, again, 64), "the raw vector is deterministic");
	for (int i = 0; i < 64; i++)
		cr_assert_float_eq(raw[i] / n1, unit[i], 1e-6, "component %d", i);
	post_fmt(&r, &p, "/embed", 422, "{\"inputs\":[\"a\"],\"normalize\":\"yes\"}");
	cr_assert(strstr(r.body, "normalize: invalid type") != NULL, "%s", r.body);
	resp_free(&r);
	embedder_stop(&p);
}

/* ---- capacity: --compute-slots ----------------------------------------- */

static double stat_of(const struct embedder_proc *p, const char *key)
{
	struct http_resp r;
	cJSON *root;
	const cJSON *n;
	double v;

	get(&r, p, "/stats");
	root = json_of(&r);
	n = cJSON_GetObjectItemCaseSensitive(root, key);
	cr_assert(cJSON_IsNumber(n), "/stats has no \"%s\": %s", key, r.body);
	v = n->valuedouble;
	cJSON_Delete(root);
	resp_free(&r);
	return v;
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * n;
}

/* Sends n requests at once through one curl multi handle, request i with
 * body i; fills their statuses and returns the wall time in seconds. */
static double post_at_once(const struct embedder_proc *p, const char *path,
			   char bodies[][512], int n, long *status)
{
	CURLM *m = curl_multi_init();
	CURL *e[16];
	char url[128];
	struct timespec t0, t1;
	int running = 1;

	cr_assert(n <= 16);
	snprintf(url, sizeof(url), "%s%s", p->url, path);
	for (int i = 0; i < n; i++) {
		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, url);
		curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 30L);
		curl_multi_add_handle(m, e[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (running) {
		cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
		if (running)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int i = 0; i < n; i++) {
		curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &status[i]);
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
	}
	curl_multi_cleanup(m);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

static void six_bodies(char bodies[][512], const char *tag)
{
	for (int i = 0; i < 6; i++)
		snprintf(bodies[i], 512, "{\"inputs\":[\"%s %d a\",\"%s %d b\",\"%s %d c\",\"%s %d d\"]}",
			 tag, i, tag, i, tag, i, tag, i);
}

Test(sandbox_capacity, compute_slots_bound_the_requests_computing_at_once, .timeout = 60)
{
	char bodies[6][512];
	long status[6];
	struct embedder_proc p, q;
	double wall;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	START(&p, "--compute-slots", "2", "--latency-ms", "100", "--dim", "8");
	six_bodies(bodies, "slots");
	wall = post_at_once(&p, "/embed", bodies, 6, status);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(status[i], 200, "request %d: %ld", i, status[i]);
	cr_log_info("6 requests of 100 ms on 2 slots: %.3f s", wall);
	cr_assert_leq(stat_of(&p, "max_computing"), 2, "more requests computed at once than slots");
	cr_assert_eq(stat_of(&p, "computed"), 24);
	cr_assert_eq(stat_of(&p, "computing"), 0);
	embedder_stop(&p);

	/* the counter counts: without slots the same load computes side by side */
	START(&q, "--item-latency-ms", "100", "--dim", "8");
	six_bodies(bodies, "free");
	post_at_once(&q, "/embed", bodies, 6, status);
	cr_assert_gt(stat_of(&q, "max_computing"), 2);
	embedder_stop(&q);
	curl_global_cleanup();
}

/* ---- the vector cache: --cache-dir ------------------------------------- */

/* Under the runner's scratch directory when there is one, which it removes
 * even when a failed assertion skipped remove_dir(). */
static void temp_dir(char *dir, size_t size)
{
	const char *base = getenv("EF_TEST_TMP");

	snprintf(dir, size, "%s/sandbox-cache-XXXXXX", base != NULL && *base != '\0' ? base : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
	char cmd[320];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

#define CACHE_TEXTS "[\"the quick brown fox\",\"jumps over\",\"the lazy dog\"]"

/* The bodies of one round of requests through every API and recipe. */
static void cache_round(const struct embedder_proc *p, char out[][16384])
{
	static const char *const extra[] = {"", ",\"dimensions\":8", ""};
	const char *const tei_extra = ",\"normalize\":false";
	struct http_resp r;

	for (size_t i = 0; i < 3; i++) {
		if (i == 2)
			post_fmt(&r, p, paths[i], 200, "{\"inputs\":%s%s}", CACHE_TEXTS, tei_extra);
		else
			post_fmt(&r, p, paths[i], 200, "{\"model\":\"embfill-hash\",\"input\":%s%s}",
				 CACHE_TEXTS, extra[i]);
		snprintf(out[i], 16384, "%s", r.body);
		resp_free(&r);
	}
}

Test(sandbox_cache, a_restarted_embedder_answers_known_texts_from_the_cache_bit_identically)
{
	static char first[3][16384], second[3][16384], fresh[3][16384];
	char dir[256];
	struct embedder_proc p;

	temp_dir(dir, sizeof(dir));
	START(&p, "--dim", "32", "--cache-dir", dir);
	cache_round(&p, first);
	cr_assert_eq(stat_of(&p, "computed"), 3, "three texts, computed once for every API");
	cr_assert_eq(stat_of(&p, "cache_vectors"), 3);
	embedder_stop(&p);

	START(&p, "--dim", "32", "--cache-dir", dir);
	cr_assert_eq(stat_of(&p, "cache_vectors"), 3, "the vectors were loaded at start");
	cache_round(&p, second);
	cr_assert_eq(stat_of(&p, "computed"), 0, "a known text was computed again");
	cr_assert_eq(stat_of(&p, "cached"), 9);
	embedder_stop(&p);

	START(&p, "--dim", "32");
	cache_round(&p, fresh);
	embedder_stop(&p);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_str_eq(second[i], first[i], "%s: the cached answer differs", paths[i]);
		cr_assert_str_eq(second[i], fresh[i], "%s: cached and computed differ", paths[i]);
	}
	remove_dir(dir);
}

static void embed_counts(const struct embedder_proc *p, const char *inputs, double computed,
			 double cached)
{
	struct http_resp r;

	post(&r, p, "/stats/reset", "");
	resp_free(&r);
	embed(&r, p, "/embed", inputs);
	cr_assert_eq(r.status, 200, "%s", r.body);
	resp_free(&r);
	cr_assert_eq(stat_of(p, "computed"), computed, "computed, for %s", inputs);
	cr_assert_eq(stat_of(p, "cached"), cached, "cached, for %s", inputs);
}

static long file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return (long)st.st_size;
}

/* A crash mid-append leaves a torn record at the end of the file, and a bad
 * disk a damaged one inside: both are skipped, the others still served, and
 * what is appended next starts where a record should. */
Test(sandbox_cache, a_torn_or_damaged_record_is_skipped_and_the_others_served)
{
	const long rec = 48 + 4 * 16;
	char dir[256], file[320];
	struct embedder_proc p;
	FILE *f;

	temp_dir(dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/hash-d16.vectors", dir);
	START(&p, "--dim", "16", "--cache-dir", dir);
	embed_counts(&p, "[\"zero\",\"one\",\"two\"]", 3, 0);
	embedder_stop(&p);
	cr_assert_eq(file_size(file), 3 * rec);

	f = fopen(file, "r+");
	cr_assert_not_null(f);
	fseek(f, rec + 60, SEEK_SET);
	fputc(0x5a, f);
	fseek(f, 0, SEEK_END);
	fwrite("torn record", 1, 11, f);
	fclose(f);

	START(&p, "--dim", "16", "--cache-dir", dir);
	cr_assert_eq(stat_of(&p, "cache_vectors"), 2);
	embed_counts(&p, "[\"zero\",\"one\",\"two\"]", 1, 2);
	embed_counts(&p, "[\"three\"]", 1, 0);
	embedder_stop(&p);
	cr_assert_eq(file_size(file), 5 * rec, "the torn tail was not cut before appending");

	START(&p, "--dim", "16", "--cache-dir", dir);
	embed_counts(&p, "[\"zero\",\"one\",\"two\",\"three\"]", 0, 4);
	embedder_stop(&p);
	remove_dir(dir);
}

Test(sandbox_cache, faults_are_planted_on_cached_answers)
{
	char dir[256];
	struct embedder_proc p;
	struct http_resp r;

	temp_dir(dir, sizeof(dir));
	START(&p, "--dim", "16", "--cache-dir", dir);
	embed_counts(&p, "[\"alpha\",\"beta\"]", 2, 0);
	embedder_stop(&p);
	START(&p, "--dim", "16", "--cache-dir", dir, "--nan-rate", "1", "--wrong-count-rate", "1");
	embed(&r, &p, "/api/embed", "[\"alpha\",\"beta\"]");
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.body, "NaN") != NULL || strstr(r.body, "1e999") != NULL, "%s", r.body);
	cr_assert_eq(stat_of(&p, "computed"), 0);
	cr_assert_eq(stat_of(&p, "cached"), 2);
	resp_free(&r);
	embedder_stop(&p);
	remove_dir(dir);
}

Test(sandbox_cache, use_lite_vectors_come_back_from_the_cache_unchanged, .timeout = 180)
{
	static double a[MAX_DIM], b[MAX_DIM];
	char dir[256];
	struct embedder_proc p;

	temp_dir(dir, sizeof(dir));
	START(&p, "--backend", "use-lite", "--model", "embfill-hash", "--cache-dir", dir);
	cr_assert_eq(vector_of(&p, "/api/embed", "how do I list files", "", a), 512);
	cr_assert_eq(stat_of(&p, "computed"), 1);
	embedder_stop(&p);
	START(&p, "--backend", "use-lite", "--model", "embfill-hash", "--cache-dir", dir);
	cr_assert_eq(vector_of(&p, "/api/embed", "how do I list files", "", b), 512);
	cr_assert_eq(stat_of(&p, "computed"), 0);
	cr_assert(same_doubles(a, b, 512));
	embedder_stop(&p);
	remove_dir(dir);
}

Test(sandbox_cli, help_lists_the_capacity_and_cache_flags)
{
	const char *const args[] = {"--help", NULL};
	char out[16384];

	cr_assert_eq(run_embedder(args, out, sizeof(out)), 0);
	cr_assert(strstr(out, "--compute-slots") != NULL, "--help lacks --compute-slots");
	cr_assert(strstr(out, "--cache-dir") != NULL, "--help lacks --cache-dir");
}

Test(sandbox_cli, bad_capacity_and_cache_flags_are_refused, .timeout = 60)
{
	static const char *const bad[][3] = {
		{"--compute-slots", "-1", NULL}, {"--compute-slots", "two", NULL},
		{"--cache-dir", "", NULL},
	};
	const char *const unwritable[] = {"--port", "0", "--cache-dir", "/proc/embfill/cache", NULL};
	char out[4096];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(run_embedder(bad[i], out, sizeof(out)), 2, "%s %s", bad[i][0], bad[i][1]);
		cr_assert(strstr(out, bad[i][0]) != NULL, "%s", out);
	}
	cr_assert_neq(run_embedder(unwritable, out, sizeof(out)), 0);
	cr_assert(strstr(out, "--cache-dir \"/proc/embfill/cache\"") != NULL, "%s", out);
}
