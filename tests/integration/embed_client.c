/*
 * Integration tests of the embedding client over real HTTP, against the
 * sandbox embedder (build/embfill-embedder, hash backend).  Each test
 * starts its own embedder with the faults it plants and counts the
 * requests the server saw through GET /stats, so that every retry, split,
 * isolation and fatal stop is checked by number, not by "it worked".
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "embedder_proc.h"
#include "embfill/embed.h"

#define KEY "sk-test-PLANTED-4f1c9e2a7b"
#define DIM 16
#define MAXP 2

static struct embedder_proc procs[MAXP];
static char key_path[64];

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
	for (int i = 0; i < MAXP; i++)
		embedder_stop(&procs[i]);
	if (key_path[0])
		unlink(key_path);
	curl_global_cleanup();
}

/* Starts embedder i with --dim DIM, the hash backend and the given flags. */
static const char *start(int i, const char *const *flags)
{
	const char *args[40] = { "--dim", "16", "--backend", "hash" };
	size_t n = 4;

	for (; flags && *flags && n < 39; flags++)
		args[n++] = *flags;
	args[n] = NULL;
	embedder_stop(&procs[i]);
	cr_assert_eq(embedder_start(&procs[i], args), 0, "the sandbox embedder did not start");
	return procs[i].url;
}

static const char *write_key_file(const char *key)
{
	FILE *f;

	snprintf(key_path, sizeof(key_path), "/tmp/embfill-it-key-%ld", (long)getpid());
	f = fopen(key_path, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", key);
	fclose(f);
	chmod(key_path, 0600);
	return key_path;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* --- /stats ---------------------------------------------------------------- */

struct buf {
	char data[8192];
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *userp)
{
	struct buf *b = userp;
	size_t add = size * n;

	if (add > sizeof(b->data) - 1 - b->len)
		add = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = '\0';
	return size * n;
}

struct stats {
	long requests;
	long status[600];
	long base64;              /* requests that asked for base64 */
};

static struct stats get_stats(const char *url)
{
	struct stats st = { 0 };
	struct buf b = { .len = 0 };
	char full[128];
	CURL *e = curl_easy_init();
	cJSON *root, *by, *it;

	snprintf(full, sizeof(full), "%s/stats", url);
	curl_easy_setopt(e, CURLOPT_URL, full);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	cr_assert_eq(curl_easy_perform(e), CURLE_OK);
	curl_easy_cleanup(e);
	root = cJSON_Parse(b.data);
	cr_assert_not_null(root, "GET /stats: %s", b.data);
	st.requests = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(root, "requests"));
	st.base64 = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(root, "base64_requests"));
	by = cJSON_GetObjectItem(root, "by_status");
	cJSON_ArrayForEach(it, by) {
		int code = atoi(it->string);
		if (code > 0 && code < 600)
			st.status[code] = (long)it->valuedouble;
	}
	cJSON_Delete(root);
	return st;
}

/* --- inputs, configs, checks ---------------------------------------------- */

static char texts_buf[64][96];
static const char *texts[64];

static const char *const *make_texts(size_t n, const char *tag)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(texts_buf[i], sizeof(texts_buf[i]), "chunk %zu of %s: the quick brown fox",
			 i, tag);
		texts[i] = texts_buf[i];
	}
	return texts;
}

static struct ef_embed_config config(enum ef_embed_provider p, const char *url)
{
	struct ef_embed_config c;

	ef_embed_config_defaults(&c);
	c.provider = p;
	c.url = url;
	c.model = "embfill-hash";
	c.dim = DIM;
	c.max_attempts = 6;
	c.backoff_base_ms = 10;
	c.backoff_max_ms = 100;
	c.jitter_seed = 7;
	c.timeout_ms = 10000;
	return c;
}

/* No message, hint or reason may ever hold the key. */
static void no_secret(const struct ef_error *err, const struct ef_embed_result *res)
{
	if (err) {
		cr_assert_null(strstr(err->msg, "PLANTED"), "key in message: %s", err->msg);
		cr_assert_null(strstr(err->hint, "PLANTED"), "key in hint: %s", err->hint);
	}
	for (size_t i = 0; res && i < res->n; i++)
		if (res->reasons[i])
			cr_assert_null(strstr(res->reasons[i], "PLANTED"), "%s", res->reasons[i]);
}

static void vectors_sane(const struct ef_embed_result *res)
{
	cr_assert_eq(res->dim, DIM);
	for (size_t i = 0; i < res->n * DIM; i++)
		cr_assert(isfinite(res->vectors[i]), "value %zu is not finite", i);
}

/* The reference vectors: the same texts, one request, a clean server. */
static struct ef_embed_result *reference(enum ef_embed_provider p, const char *const *in,
					 size_t n)
{
	const char *url = procs[1].pid ? procs[1].url : start(1, NULL);
	struct ef_embed_config c = config(p, url);
	struct ef_embed_result *res;
	struct ef_error err;

	cr_assert_eq(ef_embed_batch(&c, in, n, &res, &err), EF_OK, "%s", err.msg);
	return res;
}

static void same_vectors(const struct ef_embed_result *got, const struct ef_embed_result *want)
{
	cr_assert_eq(got->n, want->n);
	for (size_t i = 0; i < got->n; i++) {
		if (got->rejected[i])
			continue;
		cr_assert(memcmp(got->vectors + i * DIM, want->vectors + i * DIM,
				 DIM * sizeof(float)) == 0, "row %zu differs from the reference", i);
	}
}

static struct ef_embed_result *batch_ok(const struct ef_embed_config *c, const char *const *in,
					size_t n)
{
	struct ef_embed_result *res = NULL;
	struct ef_error err;
	ef_status st = ef_embed_batch(c, in, n, &res, &err);

	no_secret(&err, res);
	cr_assert_eq(st, EF_OK, "%s / %s", err.msg, err.hint);
	vectors_sane(res);
	return res;
}

static const enum ef_embed_provider all[] = { EF_EMBED_OLLAMA, EF_EMBED_OPENAI, EF_EMBED_TEI };

TestSuite(embed_client, .init = setup, .fini = teardown, .timeout = 60);

/* --- the good path ---------------------------------------------------------- */

Test(embed_client, each_provider_returns_rows_in_input_order)
{
	const char *url = start(0, NULL);
	const char *const *in = make_texts(7, "order");

	for (size_t k = 0; k < 3; k++) {
		struct ef_embed_config c = config(all[k], url);
		struct ef_embed_result *res = batch_ok(&c, in, 7);

		for (size_t i = 0; i < 7; i++) {
			struct ef_embed_result *one = batch_ok(&c, in + i, 1);

			cr_assert(memcmp(res->vectors + i * DIM, one->vectors, DIM * sizeof(float)) == 0,
				  "%s row %zu is not the vector of input %zu",
				  ef_embed_provider_name(all[k]), i, i);
			ef_embed_result_free(one);
		}
		cr_assert_eq(res->n_rejected, 0);
		cr_assert_eq(res->retries + res->splits, 0);
		ef_embed_result_free(res);
	}
	cr_assert_eq(get_stats(url).requests, 3 * 8);
}

Test(embed_client, trailing_slash_and_v1_base_are_tolerated)
{
	char base[128];
	const char *url = start(0, NULL);
	const char *const *in = make_texts(2, "slash");
	struct ef_embed_config c = config(EF_EMBED_OPENAI, base);

	snprintf(base, sizeof(base), "%s/v1/", url);
	ef_embed_result_free(batch_ok(&c, in, 2));
	snprintf(base, sizeof(base), "%s//", url);
	c.provider = EF_EMBED_TEI;
	ef_embed_result_free(batch_ok(&c, in, 2));
	cr_assert_eq(get_stats(url).status[200], 2);
}

Test(embed_client, empty_batch_needs_no_request)
{
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, url);
	struct ef_embed_result *res = batch_ok(&c, texts, 0);

	cr_assert_eq(res->n, 0);
	ef_embed_result_free(res);
	cr_assert_eq(get_stats(url).requests, 0);
}

/* --- keys ---------------------------------------------------------------------- */

Test(embed_client, bearer_key_from_a_key_file_is_accepted)
{
	const char *args[] = { "--api-key-file", write_key_file(KEY), NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);
	struct ef_error err;
	char *key;

	cr_assert_eq(ef_embed_read_key_file(key_path, &key, &err), EF_OK, "%s", err.msg);
	c.api_key = key;
	ef_embed_result_free(batch_ok(&c, make_texts(3, "key"), 3));
	free(key);
	cr_assert_eq(get_stats(url).status[200], 1);
}

Test(embed_client, wrong_or_missing_key_is_fatal_at_once_and_never_echoed)
{
	const char *args[] = { "--api-key-file", write_key_file(KEY), NULL };
	const char *url = start(0, args);
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	for (size_t k = 0; k < 3; k++) {
		struct ef_embed_config c = config(all[k], url);

		c.api_key = "sk-test-PLANTED-wrong-key";
		cr_assert_eq(ef_embed_batch(&c, make_texts(3, "k"), 3, &res, &err), EF_ERR_EMBED);
		cr_assert_null(res);
		no_secret(&err, NULL);
		cr_assert(strstr(err.msg, "HTTP 401"), "%s", err.msg);
		cr_assert(strstr(err.hint, "EMBED_API_KEY"), "%s", err.hint);
		c.api_key = NULL;
		cr_assert_eq(ef_embed_batch(&c, texts, 3, &res, &err), EF_ERR_EMBED);
		cr_assert(strstr(err.hint, "wants an API key"), "%s", err.hint);
	}
	cr_assert_eq(get_stats(url).requests, 6, "a refused key is never retried");
}

Test(embed_client, url_userinfo_and_query_never_reach_a_message)
{
	char base[256];
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, base);
	struct ef_embed_result *res;
	struct ef_embed_probe probe;
	struct ef_error err;
	char want[128];

	snprintf(base, sizeof(base), "http://user:sk-test-PLANTED-pw@%s/?token=sk-test-PLANTED-q",
		 url + strlen("http://"));
	snprintf(want, sizeof(want), "\"http://127.0.0.1:%d/api/embed\"", procs[0].port);
	c.model = "no-such-model";
	cr_assert_eq(ef_embed_batch(&c, make_texts(1, "u"), 1, &res, &err), EF_ERR_EMBED);
	no_secret(&err, NULL);
	cr_assert(strstr(err.msg, want), "%s", err.msg);
	cr_assert_eq(ef_embed_probe(&c, &probe, &err), EF_ERR_EMBED);
	no_secret(&err, NULL);
	cr_assert_null(strstr(probe.endpoint, "PLANTED"));
	cr_assert_null(strstr(probe.endpoint, "user"));
}

/* --- fatal stops ------------------------------------------------------------------ */

Test(embed_client, unknown_model_is_fatal_with_the_fix)
{
	const char *url = start(0, NULL);
	struct ef_embed_result *res;
	struct ef_error err;

	for (size_t k = 0; k < 2; k++) {
		struct ef_embed_config c = config(all[k], url);

		c.model = "nomic-embed-text";
		cr_assert_eq(ef_embed_batch(&c, make_texts(4, "m"), 4, &res, &err), EF_ERR_EMBED);
		cr_assert(strstr(err.msg, "model \"nomic-embed-text\" not found"), "%s", err.msg);
		cr_assert(strstr(err.hint, k == 0 ? "ollama pull nomic-embed-text" : "EMBED_MODEL"),
			  "%s", err.hint);
	}
	cr_assert_eq(get_stats(url).status[404], 2, "no retry of a missing model");
}

Test(embed_client, wrong_provider_path_is_fatal_with_a_hint)
{
	char base[128];
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_TEI, base);
	struct ef_embed_result *res;
	struct ef_error err;

	snprintf(base, sizeof(base), "%s/nothing-here", url);
	cr_assert_eq(ef_embed_batch(&c, make_texts(2, "p"), 2, &res, &err), EF_ERR_EMBED);
	cr_assert(strstr(err.hint, "EMBED_PROVIDER"), "%s", err.hint);
	cr_assert(strstr(err.msg, "HTTP 404"), "%s", err.msg);
}

Test(embed_client, model_of_another_dimension_is_fatal_naming_both_numbers)
{
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_TEI, url);
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	c.dim = 768;
	c.max_attempts = 3;
	cr_assert_eq(ef_embed_batch(&c, make_texts(4, "dim"), 4, &res, &err), EF_ERR_EMBED);
	cr_assert_null(res);
	cr_assert(strstr(err.msg, "dimension 16") && strstr(err.msg, "EMBED_DIM is 768"), "%s",
		  err.msg);
	cr_assert(strstr(err.hint, "EMBED_DIM=16"), "%s", err.hint);
	cr_assert_eq(get_stats(url).requests, 3, "confirmed on every attempt, then stopped");
}

Test(embed_client, the_same_inputs_all_rejected_stop_the_run)
{
	const char *args[] = { "--reject-marker", "chunk", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, url);
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	c.reject_streak_max = 4;
	cr_assert_eq(ef_embed_batch(&c, make_texts(8, "all"), 8, &res, &err), EF_ERR_EMBED);
	cr_assert(strstr(err.msg, "rejected 4 inputs in a row"), "%s", err.msg);
	cr_assert(strstr(err.hint, "MAX_CHUNK_SIZE"), "%s", err.hint);
}

/* --- transient failures -------------------------------------------------------------- */

Test(embed_client, server_errors_are_retried_exactly_as_often_as_they_happen)
{
	const char *args[] = { "--fail-first", "2", "--fail-status", "500", NULL };
	const char *url = start(0, args);

	for (size_t k = 0; k < 3; k++) {
		struct ef_embed_config c = config(all[k], url);
		struct ef_embed_result *res;

		res = batch_ok(&c, make_texts(5, "500"), 5);
		cr_assert_eq(res->retries, k == 0 ? 2u : 0u);
		ef_embed_result_free(res);
	}
	cr_assert_eq(get_stats(url).status[500], 2);
	cr_assert_eq(get_stats(url).status[200], 3);
}

Test(embed_client, retry_after_ms_and_retry_after_seconds_are_honoured)
{
	const char *args[] = { "--fail-first", "1", "--fail-status", "429", "--retry-after", "1",
			       "--retry-after-ms", "400", NULL };
	const char *args2[] = { "--fail-first", "1", "--fail-status", "429", "--retry-after", "1",
				NULL };
	struct ef_embed_config c = config(EF_EMBED_OPENAI, start(0, args));
	double t0 = now_ms();
	struct ef_embed_result *res = batch_ok(&c, make_texts(2, "ra"), 2);
	double ms = now_ms() - t0;

	cr_assert_geq(ms, 400.0, "retry-after-ms 400 was not waited for (%.0f ms)", ms);
	cr_assert_lt(ms, 1000.0, "retry-after-ms wins over Retry-After (%.0f ms)", ms);
	cr_assert_eq(res->retries, 1);
	ef_embed_result_free(res);
	c.url = start(1, args2);
	t0 = now_ms();
	res = batch_ok(&c, texts, 2);
	ms = now_ms() - t0;
	cr_assert_geq(ms, 1000.0, "Retry-After: 1 was not waited for (%.0f ms)", ms);
	ef_embed_result_free(res);
}

Test(embed_client, tei_overload_without_retry_after_backs_off)
{
	const char *args[] = { "--fail-first", "3", "--fail-status", "429", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_TEI, url);
	struct ef_embed_result *res = batch_ok(&c, make_texts(3, "tei429"), 3);

	cr_assert_eq(res->retries, 3);
	cr_assert_eq(get_stats(url).status[429], 3);
	ef_embed_result_free(res);
}

Test(embed_client, a_loading_model_is_waited_for)
{
	const char *args[] = { "--loading-seconds", "0.6", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, url);
	struct ef_embed_result *res;

	c.max_attempts = 30;
	c.backoff_base_ms = 50;
	c.backoff_max_ms = 200;
	res = batch_ok(&c, make_texts(3, "load"), 3);
	cr_assert_gt(get_stats(url).status[503], 0);
	cr_assert_eq(get_stats(url).status[200], 1);
	ef_embed_result_free(res);
}

Test(embed_client, attempts_are_bounded_and_the_last_cause_is_named)
{
	const char *args[] = { "--fail-first", "1000", "--fail-status", "503", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	c.api_key = KEY;
	c.max_attempts = 4;
	cr_assert_eq(ef_embed_batch(&c, make_texts(3, "b"), 3, &res, &err), EF_ERR_EMBED);
	no_secret(&err, NULL);
	cr_assert(strstr(err.msg, "giving up after 4 attempts") && strstr(err.msg, "HTTP 503"),
		  "%s", err.msg);
	cr_assert_eq(get_stats(url).requests, 4);
}

Test(embed_client, connection_refused_is_retried_then_reported)
{
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, "http://127.0.0.1:1");
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	c.max_attempts = 2;
	cr_assert_eq(ef_embed_batch(&c, make_texts(1, "c"), 1, &res, &err), EF_ERR_EMBED);
	cr_assert(strstr(err.msg, "giving up after 2 attempts") &&
		  strstr(err.msg, "\"http://127.0.0.1:1/api/embed\""), "%s", err.msg);
}

/*
 * Every answer fault of the embedder, at a rate that hits often: whatever
 * the client hands back must equal a clean server's vectors, row by row.
 */
static void faults_never_reach_the_caller(const char *flag, const char *rate,
					  enum ef_embed_provider p, int expect_retries)
{
	const char *args[] = { flag, rate, "--seed", "3", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(p, url);
	const char *const *in = make_texts(12, flag);
	struct ef_embed_result *want = reference(p, in, 12);
	unsigned retries = 0;

	c.max_attempts = 12;
	for (int round = 0; round < 6; round++) {
		struct ef_embed_result *res = batch_ok(&c, in, 12);

		same_vectors(res, want);
		cr_assert_eq(res->n_rejected, 0);
		retries += res->retries;
		ef_embed_result_free(res);
	}
	if (expect_retries)
		cr_assert_gt(retries, 0, "%s %s planted no fault in 6 requests", flag, rate);
	else
		cr_assert_eq(retries, 0);
	cr_assert_eq(get_stats(url).requests, 6 + (long)retries);
	ef_embed_result_free(want);
}

Test(embed_client, malformed_json_is_retried_never_returned)
{
	for (size_t k = 0; k < 3; k++)
		faults_never_reach_the_caller("--malformed-rate", "0.4", all[k], 1);
}

Test(embed_client, wrong_dim_in_an_answer_is_retried_never_returned)
{
	for (size_t k = 0; k < 3; k++)
		faults_never_reach_the_caller("--wrong-dim-rate", "0.4", all[k], 1);
}

Test(embed_client, nan_and_inf_are_retried_never_returned)
{
	for (size_t k = 0; k < 3; k++)
		faults_never_reach_the_caller("--nan-rate", "0.5", all[k], 1);
}

Test(embed_client, wrong_count_is_retried_never_returned)
{
	for (size_t k = 0; k < 3; k++)
		faults_never_reach_the_caller("--wrong-count-rate", "0.4", all[k], 1);
}

Test(embed_client, dropped_connections_are_retried)
{
	for (size_t k = 0; k < 3; k++)
		faults_never_reach_the_caller("--drop-rate", "0.4", all[k], 1);
}

Test(embed_client, openai_shuffled_items_are_put_back_by_index)
{
	faults_never_reach_the_caller("--shuffle-rate", "1", EF_EMBED_OPENAI, 0);
}

Test(embed_client, random_500s_and_429s_are_ridden_out)
{
	const char *args[] = { "--fail-500", "0.3", "--fail-429", "0.3", "--retry-after", "0",
			       "--seed", "5", NULL };
	const char *url = start(0, args);

	for (size_t k = 0; k < 3; k++) {
		struct ef_embed_config c = config(all[k], url);
		struct ef_embed_result *want = reference(all[k], make_texts(6, "rnd"), 6);

		c.max_attempts = 12;
		for (int i = 0; i < 4; i++) {
			struct ef_embed_result *res = batch_ok(&c, texts, 6);

			same_vectors(res, want);
			ef_embed_result_free(res);
		}
		ef_embed_result_free(want);
	}
	cr_assert_gt(get_stats(url).status[500] + get_stats(url).status[429], 0);
}

/* --- too large: split; alone: rejected ---------------------------------------------- */

Test(embed_client, batch_over_the_limit_is_split_in_halves)
{
	const char *args[] = { "--max-batch", "4", NULL };
	const char *url = start(0, args);

	for (size_t k = 0; k < 3; k++) {
		struct ef_embed_config c = config(all[k], url);
		struct ef_embed_result *want = reference(all[k], make_texts(10, "split"), 10);
		struct ef_embed_result *res = batch_ok(&c, texts, 10);

		/* 10 -> 5 + 5 -> (2 + 3) + (2 + 3): three splits, seven requests */
		cr_assert_eq(res->splits, 3);
		same_vectors(res, want);
		ef_embed_result_free(res);
		ef_embed_result_free(want);
	}
	cr_assert_eq(get_stats(url).status[200], 12);
	cr_assert_eq(get_stats(url).status[413], 6, "ollama and openai say 413");
	cr_assert_eq(get_stats(url).status[422], 3, "tei says 422");
}

/* One input of eight fails alone; the other seven succeed. */
static void isolate_one(const char *const *args, size_t bad, const char *const *reasons)
{
	const char *url = start(0, args);

	for (size_t k = 0; k < 3; k++) {
		struct ef_embed_config c = config(all[k], url);
		struct ef_embed_result *res;

		make_texts(8, "iso");
		snprintf(texts_buf[bad], sizeof(texts_buf[bad]), "%s", "BAD-INPUT xxxxxxxxxxxxxxxx"
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		res = batch_ok(&c, texts, 8);
		cr_assert_eq(res->n_rejected, 1, "%s", ef_embed_provider_name(all[k]));
		cr_assert(res->rejected[bad]);
		cr_assert(strstr(res->reasons[bad], reasons[k]), "%s: %s",
			  ef_embed_provider_name(all[k]), res->reasons[bad]);
		for (size_t i = 0; i < 8; i++)
			cr_assert((i == bad) == (res->reasons[i] != NULL));
		/* 8 -> 4 + 4 -> 2 + 2 -> 1 + 1: three splits, seven requests */
		cr_assert_eq(res->splits, 3);
		ef_embed_result_free(res);
	}
	cr_assert_eq(get_stats(url).requests, 21);
}

Test(embed_client, an_input_over_the_context_length_is_isolated_and_rejected)
{
	const char *args[] = { "--max-input-chars", "60", NULL };
	const char *reasons[] = { "HTTP 500: the input length exceeds the context length",
				  "HTTP 400: This model's maximum context length is 60",
				  "HTTP 413: Input validation error: inputs must have less than 60" };

	isolate_one(args, 5, reasons);
}

Test(embed_client, an_input_the_service_refuses_is_isolated_with_its_reason)
{
	const char *args[] = { "--reject-marker", "BAD-INPUT", NULL };
	const char *reasons[] = { "HTTP 400: input 0 is rejected: it contains the reject marker",
				  "HTTP 400: input 0 is rejected: it contains the reject marker",
				  "HTTP 422: Input validation error: input 0 is rejected" };

	isolate_one(args, 2, reasons);
}

Test(embed_client, an_unattributed_400_on_a_batch_splits_to_isolate_and_recovers)
{
	const char *args[] = { "--fail-first", "1", "--fail-status", "400", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, url);
	struct ef_embed_result *res = batch_ok(&c, make_texts(4, "400"), 4);

	cr_assert_eq(res->splits, 1, "4 -> 2 + 2");
	cr_assert_eq(res->n_rejected, 0, "both halves succeed: nobody is quarantined");
	cr_assert_eq(get_stats(url).status[400], 1);
	cr_assert_eq(get_stats(url).status[200], 2);
	ef_embed_result_free(res);
}

Test(embed_client, a_body_over_the_proxy_limit_is_split_and_a_huge_input_rejected)
{
	static char huge[3000];
	const char *args[] = { "--max-body-bytes", "2000", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_TEI, url);
	const char *in[24];
	struct ef_embed_result *res;

	memset(huge, 'h', sizeof(huge) - 1);
	make_texts(24, "body limit, padded to make the body grow past two kilobytes");
	memcpy(in, texts, sizeof(in));
	in[7] = huge;
	res = batch_ok(&c, in, 24);
	cr_assert_eq(res->n_rejected, 1);
	cr_assert(res->rejected[7]);
	cr_assert(strstr(res->reasons[7], "HTTP 413"), "%s", res->reasons[7]);
	cr_assert_gt(res->splits, 1);
	ef_embed_result_free(res);
}

/* --- the pool --------------------------------------------------------------------------- */

static struct ef_embed_result *next_result(ef_embed_pool *pool, unsigned *max_seen)
{
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	while (!res) {
		cr_assert_eq(ef_embed_pool_next(pool, 20, &res, &err), EF_OK, "%s", err.msg);
		if (ef_embed_pool_in_flight(pool) > *max_seen)
			*max_seen = ef_embed_pool_in_flight(pool);
	}
	return res;
}

Test(embed_client, concurrency_k_keeps_k_requests_in_flight)
{
	const char *args[] = { "--latency-ms", "300", NULL };
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, start(0, args));
	ef_embed_pool *pool;
	struct ef_embed_counters cnt;
	struct ef_error err;
	unsigned seen = 0, tags = 0;
	double t0 = now_ms();

	cr_assert_eq(ef_embed_pool_new(&c, 4, &pool, &err), EF_OK, "%s", err.msg);
	for (size_t b = 0; b < 4; b++)
		cr_assert_eq(ef_embed_pool_submit(pool, (void *)(b + 1), make_texts(5, "cc"), 5, &err),
			     EF_OK);
	cr_assert_eq(ef_embed_pool_pending(pool), 4);
	for (int i = 0; i < 4; i++) {
		struct ef_embed_result *res = next_result(pool, &seen);

		tags |= 1u << ((size_t)res->tag - 1);
		ef_embed_result_free(res);
	}
	ef_embed_pool_counters(pool, &cnt);
	cr_assert_eq(tags, 0xf, "every batch came back once");
	cr_assert_gt(seen, 1, "requests were in flight together");
	cr_assert_eq(cnt.in_flight_max, 4);
	cr_assert_eq(cnt.requests, 4);
	cr_assert_eq(cnt.batches, 4);
	cr_assert_eq(ef_embed_pool_pending(pool), 0);
	cr_log_info("4 batches at concurrency 4 with 300 ms latency: %.0f ms", now_ms() - t0);
	ef_embed_pool_free(pool);
}

/* In one pool (one run) the limit is learnt once: the first batch of ten
 * is split as above, and the next goes out at once in parts of three, the
 * most that was answered, with no refusal; every vector still right. */
Test(embed_client, a_learnt_batch_limit_cuts_the_next_batches_without_refusals)
{
	const char *args[] = { "--max-batch", "4", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);
	struct ef_embed_result *want = reference(EF_EMBED_OPENAI, make_texts(10, "limit"), 10);
	ef_embed_pool *pool;
	struct ef_error err;
	unsigned seen = 0;

	cr_assert_eq(ef_embed_pool_new(&c, 1, &pool, &err), EF_OK, "%s", err.msg);
	for (int round = 0; round < 2; round++) {
		struct ef_embed_result *res;

		cr_assert_eq(ef_embed_pool_submit(pool, NULL, make_texts(10, "limit"), 10, &err),
			     EF_OK, "%s", err.msg);
		res = next_result(pool, &seen);
		cr_assert_eq(res->n_rejected, 0);
		same_vectors(res, want);
		cr_assert_eq(res->splits, round == 0 ? 3 : 0, "round %d", round);
		ef_embed_result_free(res);
		/* 10 -> 5 + 5 -> (2 + 3) + (2 + 3), then 3 + 3 + 3 + 1 */
		cr_assert_eq(get_stats(url).status[413], 3, "round %d", round);
		cr_assert_eq(get_stats(url).status[200], round == 0 ? 4 : 8, "round %d", round);
	}
	ef_embed_result_free(want);
	ef_embed_pool_free(pool);
}

struct canceller {
	atomic_int *flag;
	ef_embed_pool *pool;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;

	usleep(200 * 1000);
	atomic_store(k->flag, 1);
	ef_embed_pool_wakeup(k->pool);
	return NULL;
}

Test(embed_client, cancel_stops_promptly_with_interrupted)
{
	const char *args[] = { "--latency-ms", "5000", NULL };
	struct ef_embed_config c = config(EF_EMBED_TEI, start(0, args));
	atomic_int cancel = 0;
	struct canceller k = { &cancel, NULL };
	struct ef_embed_result *res = NULL;
	struct ef_error err;
	pthread_t th;
	double t0;
	ef_status st;

	cr_assert_eq(ef_embed_pool_new(&c, 2, &k.pool, &err), EF_OK);
	ef_embed_pool_set_flags(k.pool, &cancel, NULL);
	ef_embed_pool_submit(k.pool, NULL, make_texts(3, "cancel"), 3, &err);
	ef_embed_pool_submit(k.pool, NULL, texts, 3, &err);
	t0 = now_ms();
	pthread_create(&th, NULL, cancel_later, &k);
	st = ef_embed_pool_next(k.pool, -1, &res, &err);
	pthread_join(th, NULL);
	cr_assert_eq(st, EF_ERR_INTERRUPTED, "%d %s", st, err.msg);
	cr_assert_null(res);
	cr_assert_lt(now_ms() - t0, 1500.0, "cancel took %.0f ms", now_ms() - t0);
	cr_assert(strstr(err.msg, "cancelled with 2 batch"), "%s", err.msg);
	cr_assert_eq(ef_embed_pool_in_flight(k.pool), 0);
	cr_assert_eq(ef_embed_pool_next(k.pool, 0, &res, &err), EF_ERR_INTERRUPTED, "sticky");
	cr_assert_eq(ef_embed_pool_submit(k.pool, NULL, texts, 1, &err), EF_ERR_INTERRUPTED);
	ef_embed_pool_free(k.pool);
}

Test(embed_client, pause_holds_new_requests_and_resume_finishes)
{
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);
	atomic_int pause = 1;
	ef_embed_pool *pool;
	struct ef_embed_result *res = NULL;
	struct ef_error err;
	unsigned seen = 0;

	cr_assert_eq(ef_embed_pool_new(&c, 2, &pool, &err), EF_OK);
	ef_embed_pool_set_flags(pool, NULL, &pause);
	ef_embed_pool_submit(pool, NULL, make_texts(3, "pause"), 3, &err);
	cr_assert_eq(ef_embed_pool_next(pool, 200, &res, &err), EF_OK);
	cr_assert_null(res);
	cr_assert_eq(get_stats(url).requests, 0, "nothing was sent while paused");
	atomic_store(&pause, 0);
	res = next_result(pool, &seen);
	cr_assert_eq(res->n, 3);
	ef_embed_result_free(res);
	ef_embed_pool_free(pool);
}

Test(embed_client, a_service_that_goes_away_is_reported_after_bounded_retries)
{
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, url);
	ef_embed_pool *pool;
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	c.max_attempts = 3;
	cr_assert_eq(ef_embed_pool_new(&c, 1, &pool, &err), EF_OK);
	ef_embed_pool_submit(pool, (void *)1, make_texts(2, "first"), 2, &err);
	cr_assert_eq(ef_embed_pool_next(pool, -1, &res, &err), EF_OK);
	cr_assert_eq(res->tag, (void *)1);
	ef_embed_result_free(res);
	embedder_stop(&procs[0]);
	ef_embed_pool_submit(pool, (void *)2, texts, 2, &err);
	cr_assert_eq(ef_embed_pool_next(pool, -1, &res, &err), EF_ERR_EMBED);
	cr_assert_null(res);
	cr_assert(strstr(err.msg, "giving up after 3 attempts"), "%s", err.msg);
	ef_embed_pool_free(pool);
}

/* --- vectors on the wire: base64 and its fallbacks ------------------------------------- */

static struct ef_embed_result *pool_one(ef_embed_pool *pool, const char *const *in, size_t n)
{
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	cr_assert_eq(ef_embed_pool_submit(pool, NULL, in, n, &err), EF_OK, "%s", err.msg);
	while (!res)
		cr_assert_eq(ef_embed_pool_next(pool, -1, &res, &err), EF_OK, "%s / %s", err.msg,
			     err.hint);
	no_secret(&err, res);
	vectors_sane(res);
	return res;
}

static void identical(const struct ef_embed_result *a, const struct ef_embed_result *b,
		      const char *what)
{
	cr_assert_eq(a->n, b->n);
	cr_assert(memcmp(a->vectors, b->vectors, a->n * DIM * sizeof(float)) == 0,
		  "%s: the floats differ", what);
}

Test(embed_client, openai_is_asked_for_base64_and_its_floats_equal_every_providers_numbers)
{
	const char *url = start(0, NULL);
	const char *const *in = make_texts(9, "wire");
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);
	struct ef_embed_counters cnt;
	struct ef_embed_result *b64, *other;
	ef_embed_pool *pool;
	struct ef_error err;

	cr_assert_eq(ef_embed_pool_new(&c, 1, &pool, &err), EF_OK, "%s", err.msg);
	cr_assert_eq(ef_embed_pool_encoding(pool), EF_EMBED_ENC_BASE64, "auto starts with base64");
	b64 = pool_one(pool, in, 9);
	ef_embed_pool_counters(pool, &cnt);
	cr_assert_eq(cnt.answers_base64, 1);
	cr_assert_eq(cnt.answers_float, 0);
	cr_assert_eq(ef_embed_pool_encoding(pool), EF_EMBED_ENC_BASE64);
	ef_embed_pool_free(pool);
	cr_assert_eq(get_stats(url).base64, 1, "the request asked for base64");
	c.encoding = EF_EMBED_ENC_FLOAT;
	other = batch_ok(&c, in, 9);
	identical(other, b64, "openai numbers against base64");
	ef_embed_result_free(other);
	for (size_t k = 0; k < 3; k += 2) {
		struct ef_embed_config o = config(all[k], url);

		other = batch_ok(&o, in, 9);
		identical(other, b64, ef_embed_provider_name(all[k]));
		ef_embed_result_free(other);
	}
	cr_assert_eq(get_stats(url).base64, 1, "float, ollama and tei never ask for base64");
	cr_assert_eq(get_stats(url).requests, 4);
	ef_embed_result_free(b64);
}

/* Three batches through one pool of one, against a server planting flag. */
static ef_embed_pool *three_batches(const char *flag, struct ef_embed_counters *cnt,
				    const char **url)
{
	const char *args[] = { flag, NULL };
	struct ef_embed_config c;
	struct ef_embed_result *want = reference(EF_EMBED_OPENAI, make_texts(6, "fallback"), 6);
	ef_embed_pool *pool;
	struct ef_error err;

	*url = start(0, args);
	c = config(EF_EMBED_OPENAI, *url);
	cr_assert_eq(ef_embed_pool_new(&c, 1, &pool, &err), EF_OK, "%s", err.msg);
	for (int b = 0; b < 3; b++) {
		struct ef_embed_result *res = pool_one(pool, texts, 6);

		identical(res, want, flag);
		cr_assert_eq(res->n_rejected, 0);
		cr_assert_eq(res->retries, 0, "falling back is not a retry");
		ef_embed_result_free(res);
	}
	ef_embed_pool_counters(pool, cnt);
	ef_embed_result_free(want);
	return pool;
}

Test(embed_client, a_service_ignoring_base64_has_its_numbers_taken_and_is_asked_for_numbers)
{
	struct ef_embed_counters cnt;
	const char *url;
	ef_embed_pool *pool = three_batches("--ignore-base64", &cnt, &url);
	struct stats st = get_stats(url);

	cr_assert_eq(cnt.answers_float, 3);
	cr_assert_eq(cnt.answers_base64, 0);
	cr_assert_eq(cnt.base64_refused, 0);
	cr_assert_eq(ef_embed_pool_encoding(pool), EF_EMBED_ENC_FLOAT, "remembered");
	cr_assert_eq(st.requests, 3);
	cr_assert_eq(st.base64, 1, "only the first request asked for base64");
	ef_embed_pool_free(pool);
}

Test(embed_client, a_service_refusing_base64_costs_one_request_then_numbers_for_the_pool)
{
	struct ef_embed_counters cnt;
	const char *url;
	ef_embed_pool *pool = three_batches("--refuse-base64", &cnt, &url);
	struct stats st = get_stats(url);

	cr_assert_eq(cnt.base64_refused, 1);
	cr_assert_eq(cnt.answers_float, 3);
	cr_assert_eq(cnt.retries, 0);
	cr_assert_eq(ef_embed_pool_encoding(pool), EF_EMBED_ENC_FLOAT);
	cr_assert_eq(st.status[400], 1, "one refusal");
	cr_assert_eq(st.status[200], 3);
	cr_assert_eq(st.requests, 4);
	cr_assert_eq(st.base64, 1);
	ef_embed_pool_free(pool);
}

Test(embed_client, embed_encoding_base64_against_a_refusing_service_stops_naming_the_fix)
{
	const char *args[] = { "--refuse-base64", NULL };
	const char *url = start(0, args);
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);
	struct ef_embed_result *res = NULL;
	struct ef_error err;

	c.encoding = EF_EMBED_ENC_BASE64;
	cr_assert_eq(ef_embed_batch(&c, make_texts(3, "insist"), 3, &res, &err), EF_ERR_EMBED);
	cr_assert_null(res);
	cr_assert(strstr(err.msg, "refuses base64 vectors, and EMBED_ENCODING=base64 insists"),
		  "%s", err.msg);
	cr_assert(strstr(err.msg, "encoding_format"), "the service's words: %s", err.msg);
	cr_assert(strstr(err.hint, "set EMBED_ENCODING=auto"), "%s", err.hint);
	cr_assert_eq(get_stats(url).requests, 1, "a setting, not a glitch: no retry");
}

Test(embed_client, embed_encoding_float_never_asks_for_base64_and_base64_always_does)
{
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);

	c.encoding = EF_EMBED_ENC_FLOAT;
	ef_embed_result_free(batch_ok(&c, make_texts(2, "float"), 2));
	ef_embed_result_free(batch_ok(&c, texts, 2));
	cr_assert_eq(get_stats(url).base64, 0);
	c.encoding = EF_EMBED_ENC_BASE64;
	ef_embed_result_free(batch_ok(&c, texts, 2));
	ef_embed_result_free(batch_ok(&c, texts, 2));
	cr_assert_eq(get_stats(url).base64, 2);
}

/* --- unusable vectors: all zero, absurd norms -------------------------------------------- */

/* Whether the server, asked for text alone, answers an all-zero or huge vector. */
static bool unusable_alone(const char *url, const char *text)
{
	struct buf b = { .len = 0 };
	char full[128], body[256];
	CURL *e = curl_easy_init();
	cJSON *root;
	const cJSON *x;
	double s = 0;

	snprintf(full, sizeof(full), "%s/embed", url);
	snprintf(body, sizeof(body), "{\"inputs\":[\"%s\"]}", text);
	curl_easy_setopt(e, CURLOPT_URL, full);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	cr_assert_eq(curl_easy_perform(e), CURLE_OK);
	curl_easy_cleanup(e);
	root = cJSON_Parse(b.data);
	cr_assert_not_null(root, "%s", b.data);
	cJSON_ArrayForEach(x, cJSON_GetArrayItem(root, 0))
		s += x->valuedouble * x->valuedouble;
	cJSON_Delete(root);
	return s == 0 || s > 1e12;
}

/*
 * Twelve inputs, some of which the service answers unusably every time:
 * exactly those come back rejected with the reason, the others with the
 * vectors of a clean server, whether the vectors travel as numbers (tei)
 * or as base64 (openai).
 */
static void unusable_inputs_are_rejected(const char *flag, const char *reason)
{
	const char *args[] = { flag, "0.25", "--seed", "4", NULL };
	const char *url = start(0, args);
	const char *const *in = make_texts(12, flag);
	enum ef_embed_provider ps[] = { EF_EMBED_TEI, EF_EMBED_OPENAI };
	bool bad[12];
	size_t nbad = 0;

	for (size_t i = 0; i < 12; i++)
		nbad += bad[i] = unusable_alone(url, in[i]);
	cr_assert(nbad > 0 && nbad < 12, "%s 0.25 planted %zu of 12", flag, nbad);
	for (size_t k = 0; k < 2; k++) {
		struct ef_embed_config c = config(ps[k], url);
		struct ef_embed_result *want = reference(ps[k], in, 12);
		struct ef_embed_result *res = batch_ok(&c, in, 12);

		cr_assert_eq(res->n_rejected, nbad, "%s", ef_embed_provider_name(ps[k]));
		for (size_t i = 0; i < 12; i++) {
			cr_assert_eq(res->rejected[i], bad[i], "%s input %zu",
				     ef_embed_provider_name(ps[k]), i);
			if (bad[i])
				cr_assert(strstr(res->reasons[i], reason), "%s", res->reasons[i]);
		}
		same_vectors(res, want);
		cr_assert_gt(res->splits, 0, "the input was isolated");
		ef_embed_result_free(res);
		ef_embed_result_free(want);
	}
}

Test(embed_client, all_zero_vectors_of_an_input_are_isolated_and_rejected_the_rest_kept)
{
	unusable_inputs_are_rejected("--zero-rate",
				     "unusable vector, twice in a row: all-zero vector (cosine "
				     "similarity is undefined)");
}

Test(embed_client, absurd_norms_of_an_input_are_isolated_and_rejected_the_rest_kept)
{
	unusable_inputs_are_rejected("--huge-rate", "vector norm 1e29 is absurd");
}

/* --- the probe ------------------------------------------------------------------------- */

Test(embed_client, probe_reports_the_encoding_the_service_speaks)
{
	static const char *const flags[] = { NULL, "--ignore-base64", "--refuse-base64" };
	static const enum ef_embed_encoding want[] = {
		EF_EMBED_ENC_BASE64, EF_EMBED_ENC_FLOAT, EF_EMBED_ENC_FLOAT,
	};
	struct ef_embed_probe p;
	struct ef_error err;

	for (size_t i = 0; i < 3; i++) {
		const char *args[] = { flags[i], NULL };
		const char *url = start(0, flags[i] ? args : NULL);
		struct ef_embed_config c = config(EF_EMBED_OPENAI, url);

		cr_assert_eq(ef_embed_probe(&c, &p, &err), EF_OK, "%s", err.msg);
		cr_assert_eq(p.encoding, want[i], "%s", flags[i] ? flags[i] : "plain");
		cr_assert_eq(p.base64_ignored, i == 1);
		cr_assert_eq(p.base64_refused, i == 2);
		cr_assert_eq(get_stats(url).requests, i == 2 ? 2 : 1, "asked again only when refused");
	}
	{
		struct ef_embed_config c = config(EF_EMBED_TEI, start(0, NULL));

		cr_assert_eq(ef_embed_probe(&c, &p, &err), EF_OK, "%s", err.msg);
		cr_assert_eq(p.encoding, EF_EMBED_ENC_FLOAT);
	}
	{
		const char *args[] = { "--refuse-base64", NULL };
		struct ef_embed_config c = config(EF_EMBED_OPENAI, start(0, args));

		c.encoding = EF_EMBED_ENC_BASE64;
		cr_assert_eq(ef_embed_probe(&c, &p, &err), EF_ERR_EMBED);
		cr_assert(strstr(err.msg, "EMBED_ENCODING=base64"), "%s", err.msg);
	}
}

Test(embed_client, probe_reports_status_latency_and_dimension)
{
	const char *url = start(0, NULL);
	struct ef_embed_config c = config(EF_EMBED_OPENAI, url);
	struct ef_embed_probe p;
	struct ef_error err;

	cr_assert_eq(ef_embed_probe(&c, &p, &err), EF_OK, "%s", err.msg);
	cr_assert(p.reachable && p.http_status == 200 && p.dim == DIM && p.dim_matches);
	cr_assert_gt(p.latency_ms, 0.0);
	c.dim = 768;
	cr_assert_eq(ef_embed_probe(&c, &p, &err), EF_ERR_EMBED);
	cr_assert_eq(p.dim, DIM, "the returned dimension is reported even when wrong");
	cr_assert_eq(p.dim_matches, 0);
	cr_assert(strstr(err.msg, "returns vectors of dimension 16, EMBED_DIM is 768"), "%s",
		  err.msg);
	cr_assert_eq(get_stats(url).requests, 2, "one request per probe");
}

Test(embed_client, probe_of_a_closed_port_is_unreachable)
{
	struct ef_embed_config c = config(EF_EMBED_TEI, "http://127.0.0.1:1/");
	struct ef_embed_probe p;
	struct ef_error err;

	cr_assert_eq(ef_embed_probe(&c, &p, &err), EF_ERR_EMBED);
	cr_assert_eq(p.reachable, 0);
	cr_assert_eq(p.http_status, 0);
	cr_assert_str_eq(p.endpoint, "http://127.0.0.1:1/embed");
	cr_assert_neq(err.hint[0], '\0');
}

/* --- throughput, logged (never asserted) ------------------------------------------- */

static double rate_at(const char *url, unsigned k, int batches)
{
	struct ef_embed_config c = config(EF_EMBED_OLLAMA, url);
	ef_embed_pool *pool;
	struct ef_error err;
	unsigned seen = 0;
	double t0 = now_ms();

	cr_assert_eq(ef_embed_pool_new(&c, k, &pool, &err), EF_OK);
	for (int b = 0; b < batches; b++)
		ef_embed_pool_submit(pool, NULL, make_texts(10, "rate"), 10, &err);
	for (int b = 0; b < batches; b++)
		ef_embed_result_free(next_result(pool, &seen));
	ef_embed_pool_free(pool);
	return batches / ((now_ms() - t0) / 1000.0);
}

Test(embed_client, throughput_at_concurrency_1_and_4_is_logged)
{
	const char *args[] = { "--latency-ms", "50", NULL };
	const char *url = start(0, args);
	double r1 = rate_at(url, 1, 20), r4 = rate_at(url, 4, 40);

	cr_log_info("latency 50 ms, 10 inputs of dim 16 per request: %.1f requests/s at "
		    "concurrency 1, %.1f at 4", r1, r4);
	cr_assert_gt(r4, r1, "concurrency 4 is faster than 1");
}
