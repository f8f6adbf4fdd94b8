/*
 * Unit tests of the failure classes: what the client does with each answer
 * of each provider, Retry-After in its three forms, backoff, and scrubbing
 * the key out of messages.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_classify.h"

#define KEY "sk-test-PLANTED-0123456789"

static struct ef_embed_exchange ex(enum ef_embed_provider p, long status, const char *body,
				   size_t n)
{
	struct ef_embed_exchange x = {
		.provider = p, .endpoint = "http://127.0.0.1:9/api/embed", .model = "nomic",
		.secret = KEY, .n = n, .dim = 2, .status = status, .body = body,
		.body_len = body ? strlen(body) : 0, .retry_after_max_ms = 60000,
		.now = 1700000000, .dim_confirm = 3,
	};
	return x;
}

static struct ef_embed_outcome run(const struct ef_embed_exchange *x)
{
	struct ef_embed_outcome o;

	ef_embed_classify(x, &o);
	cr_assert_null(strstr(o.cause, KEY), "key in cause: %s", o.cause);
	cr_assert_null(strstr(o.hint, KEY), "key in hint: %s", o.hint);
	return o;
}

static void expect(enum ef_embed_provider p, long status, const char *body, size_t n,
		   enum ef_embed_action want)
{
	struct ef_embed_exchange x = ex(p, status, body, n);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, want, "HTTP %ld n=%zu %s: action %d, want %d (%s)", status, n,
		     body ? body : "", o.action, want, o.cause);
	free(o.vec.data);
}

Test(embed_classify, good_answer_is_ok_with_vectors)
{
	struct ef_embed_exchange x = ex(EF_EMBED_TEI, 200, "[[1,2],[3,4]]", 2);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, EF_EMBED_ACT_OK);
	cr_assert_not_null(o.vec.data);
	free(o.vec.data);
}

Test(embed_classify, inconsistent_200_is_retried)
{
	expect(EF_EMBED_TEI, 200, "[[1,2]]", 2, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_TEI, 200, "[[1,2],[1]]", 2, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_TEI, 200, "[[1,NaN],[1,2]]", 2, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_TEI, 200, "[[1,1e999],[1,2]]", 2, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_TEI, 200, "<html>", 2, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_OPENAI, 200, "{\"data\":[{\"index\":1,\"embedding\":[1,2]},"
	       "{\"index\":1,\"embedding\":[1,2]}]}", 2, EF_EMBED_ACT_RETRY);
}

Test(embed_classify, uniform_wrong_dim_is_retried_at_once_until_confirmed_then_fatal)
{
	struct ef_embed_exchange x = ex(EF_EMBED_TEI, 200, "[[1,2,3],[4,5,6]]", 2);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY);
	cr_assert_eq(o.dim_seen, 3);
	cr_assert_eq(o.dim_repeats, 1);
	cr_assert_eq(o.retry_after_ms, 0, "no backoff: the service is not overloaded");
	x.prev_dim = 3;
	x.dim_repeats = 1;
	o = run(&x);
	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY);
	cr_assert_eq(o.dim_repeats, 2);
	x.dim_repeats = 2;
	o = run(&x);
	cr_assert_eq(o.action, EF_EMBED_ACT_FATAL);
	cr_assert(strstr(o.cause, "dimension 3") && strstr(o.cause, "EMBED_DIM is 2"), "%s",
		  o.cause);
	cr_assert(strstr(o.hint, "EMBED_DIM") && strstr(o.hint, "EMBED_MODEL"), "%s", o.hint);
}

Test(embed_classify, a_different_wrong_dim_starts_the_count_again)
{
	struct ef_embed_exchange x = ex(EF_EMBED_TEI, 200, "[[1],[4]]", 2);
	struct ef_embed_outcome o;

	x.prev_dim = 3;
	x.dim_repeats = 2;
	o = run(&x);
	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY);
	cr_assert_eq(o.dim_seen, 1);
	cr_assert_eq(o.dim_repeats, 1);
}

Test(embed_classify, transport_failures_retry_tls_is_fatal)
{
	struct ef_embed_exchange x = ex(EF_EMBED_TEI, 0, NULL, 2);
	struct ef_embed_outcome o;

	x.net = EF_EMBED_NET_TRANSIENT;
	x.net_msg = "Couldn't connect to server";
	o = run(&x);
	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY);
	cr_assert(strstr(o.cause, "Couldn't connect"), "%s", o.cause);
	x.net = EF_EMBED_NET_FATAL;
	o = run(&x);
	cr_assert_eq(o.action, EF_EMBED_ACT_FATAL);
	cr_assert_neq(o.hint[0], '\0');
}

Test(embed_classify, auth_failures_are_fatal_with_a_key_hint)
{
	struct ef_embed_exchange x = ex(EF_EMBED_OPENAI, 401, "{\"error\":{\"message\":"
					"\"Incorrect API key provided: " KEY "\",\"code\":"
					"\"invalid_api_key\"}}", 4);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, EF_EMBED_ACT_FATAL);
	cr_assert(strstr(o.cause, "[redacted]"), "the echoed key is masked: %s", o.cause);
	cr_assert(strstr(o.hint, "EMBED_API_KEY"), "%s", o.hint);
	expect(EF_EMBED_TEI, 403, "", 1, EF_EMBED_ACT_FATAL);
	x.secret = NULL;
	x.body = "{\"error\":{\"message\":\"missing bearer token\"}}";
	x.body_len = strlen(x.body);
	o = run(&x);
	cr_assert(strstr(o.hint, "wants an API key"), "%s", o.hint);
}

Test(embed_classify, model_not_found_is_fatal_with_pull_hint_for_ollama)
{
	struct ef_embed_exchange x = ex(EF_EMBED_OLLAMA, 404, "{\"error\":\"model \\\"nomic\\\" "
					"not found, try pulling it first\"}", 3);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, EF_EMBED_ACT_FATAL);
	cr_assert(strstr(o.hint, "ollama pull nomic"), "%s", o.hint);
	expect(EF_EMBED_OPENAI, 404, "{\"object\":\"error\",\"message\":\"The model `x` does not "
	       "exist.\",\"type\":\"NotFoundError\",\"code\":404}", 3, EF_EMBED_ACT_FATAL);
	expect(EF_EMBED_OPENAI, 400, "{\"error\":{\"message\":\"unknown model\",\"code\":"
	       "\"model_not_found\"}}", 1, EF_EMBED_ACT_FATAL);
}

Test(embed_classify, unknown_endpoint_is_fatal_with_provider_hint)
{
	struct ef_embed_exchange x = ex(EF_EMBED_TEI, 404, "404 page not found", 1);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, EF_EMBED_ACT_FATAL);
	cr_assert(strstr(o.hint, "EMBED_PROVIDER"), "%s", o.hint);
	expect(EF_EMBED_TEI, 405, "", 2, EF_EMBED_ACT_FATAL);
	expect(EF_EMBED_TEI, 301, "", 2, EF_EMBED_ACT_FATAL);
}

Test(embed_classify, too_large_splits_a_batch_and_rejects_a_single_input)
{
	expect(EF_EMBED_TEI, 413, "Failed to buffer the request body: length limit exceeded", 8,
	       EF_EMBED_ACT_SPLIT);
	expect(EF_EMBED_TEI, 413, "", 1, EF_EMBED_ACT_REJECT);
	expect(EF_EMBED_TEI, 422, "{\"error\":\"batch size 64 > maximum allowed batch size 32\","
	       "\"error_type\":\"Validation\"}", 64, EF_EMBED_ACT_SPLIT);
	expect(EF_EMBED_OPENAI, 400, "{\"error\":{\"message\":\"This model's maximum context "
	       "length is 8192 tokens\",\"code\":\"context_length_exceeded\"}}", 1,
	       EF_EMBED_ACT_REJECT);
	expect(EF_EMBED_OLLAMA, 500, "{\"error\":\"input length exceeds the context length\"}", 2,
	       EF_EMBED_ACT_SPLIT);
	expect(EF_EMBED_OLLAMA, 500, "{\"error\":\"input length exceeds the context length\"}", 1,
	       EF_EMBED_ACT_REJECT);
}

Test(embed_classify, input_error_isolates_then_rejects_with_the_reason)
{
	struct ef_embed_exchange x = ex(EF_EMBED_TEI, 422, "{\"error\":\"Input validation error:"
					" bad input at index 3\",\"error_type\":\"Validation\"}", 1);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, EF_EMBED_ACT_REJECT);
	cr_assert_str_eq(o.cause, "HTTP 422: Input validation error: bad input at index 3");
	expect(EF_EMBED_TEI, 422, x.body, 5, EF_EMBED_ACT_SPLIT);
	expect(EF_EMBED_OLLAMA, 400, "{\"error\":\"invalid input\"}", 5, EF_EMBED_ACT_SPLIT);
	expect(EF_EMBED_OLLAMA, 400, "", 1, EF_EMBED_ACT_REJECT);
}

Test(embed_classify, overload_and_server_errors_are_retried)
{
	expect(EF_EMBED_TEI, 429, "{\"error\":\"Model is overloaded\",\"error_type\":"
	       "\"overloaded\"}", 2, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_OLLAMA, 503, "{\"error\":\"model is loading\"}", 2, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_OLLAMA, 500, "{\"error\":\"boom\"}", 1, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_OLLAMA, 502, "<html>bad gateway</html>", 1, EF_EMBED_ACT_RETRY);
	expect(EF_EMBED_OLLAMA, 408, "", 1, EF_EMBED_ACT_RETRY);
}

Test(embed_classify, quota_exhausted_429_is_fatal)
{
	struct ef_embed_exchange x = ex(EF_EMBED_OPENAI, 429, "{\"error\":{\"message\":\"You "
					"exceeded your current quota\",\"type\":"
					"\"insufficient_quota\",\"code\":\"insufficient_quota\"}}", 2);
	struct ef_embed_outcome o = run(&x);

	cr_assert_eq(o.action, EF_EMBED_ACT_FATAL);
	cr_assert(strstr(o.cause, "quota"), "%s", o.cause);
	cr_assert_neq(o.hint[0], '\0');
}

Test(embed_classify, retry_after_of_a_429_is_carried)
{
	struct ef_embed_exchange x = ex(EF_EMBED_OPENAI, 429, "{}", 2);
	struct ef_embed_outcome o;

	x.retry_after = "7";
	o = run(&x);
	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY);
	cr_assert_eq(o.retry_after_ms, 7000);
	x.retry_after_ms = "1500";
	o = run(&x);
	cr_assert_eq(o.retry_after_ms, 1500);
	x.retry_after = x.retry_after_ms = NULL;
	o = run(&x);
	cr_assert_eq(o.retry_after_ms, -1);
}

/* --- Retry-After ------------------------------------------------------------ */

Test(embed_classify, retry_after_seconds_date_and_ms)
{
	time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */

	cr_assert_eq(ef_embed_retry_after("120", NULL, now, 600000), 120000);
	cr_assert_eq(ef_embed_retry_after(" 3 ", NULL, now, 600000), 3000);
	cr_assert_eq(ef_embed_retry_after("0", NULL, now, 600000), 0);
	cr_assert_eq(ef_embed_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", NULL, now, 600000),
		     30000);
	cr_assert_eq(ef_embed_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", NULL, now, 600000), 0,
		     "a date in the past means now");
	cr_assert_eq(ef_embed_retry_after(NULL, "250", now, 600000), 250);
	cr_assert_eq(ef_embed_retry_after("9", "250.7", now, 600000), 250,
		     "retry-after-ms wins");
	cr_assert_eq(ef_embed_retry_after("9", "junk", now, 600000), 9000);
}

Test(embed_classify, retry_after_is_capped_and_junk_ignored)
{
	cr_assert_eq(ef_embed_retry_after("86400", NULL, 0, 60000), 60000);
	cr_assert_eq(ef_embed_retry_after(NULL, "99999999", 0, 60000), 60000);
	cr_assert_eq(ef_embed_retry_after("-5", NULL, 0, 60000), -1);
	cr_assert_eq(ef_embed_retry_after("1.5", NULL, 0, 60000), -1);
	cr_assert_eq(ef_embed_retry_after("soon", NULL, 0, 60000), -1);
	cr_assert_eq(ef_embed_retry_after("", "", 0, 60000), -1);
	cr_assert_eq(ef_embed_retry_after("1e308", NULL, 0, 60000), -1);
}

Test(embed_classify, backoff_is_full_jitter_within_an_exponential_ceiling)
{
	uint64_t rng = 42;
	long seen_max = 0;

	for (unsigned k = 0; k < 12; k++) {
		long ceiling = 100L << k > 5000 ? 5000 : 100L << k;

		for (int i = 0; i < 200; i++) {
			long d = ef_embed_backoff(k, 100, 5000, -1, &rng);

			cr_assert(d >= 0 && d <= ceiling, "k=%u d=%ld ceiling=%ld", k, d, ceiling);
			if (d > seen_max)
				seen_max = d;
		}
	}
	cr_assert_gt(seen_max, 2500, "the delays spread up to the maximum");
	cr_assert_geq(ef_embed_backoff(0, 100, 5000, 7000, &rng), 7000,
		      "never shorter than the server asked");
}

Test(embed_classify, backoff_is_reproducible_with_a_seed)
{
	uint64_t a = 7, b = 7;

	for (unsigned k = 0; k < 10; k++)
		cr_assert_eq(ef_embed_backoff(k, 50, 1000, -1, &a),
			     ef_embed_backoff(k, 50, 1000, -1, &b));
}

/* --- scrubbing ---------------------------------------------------------------- */

Test(embed_classify, scrub_masks_every_occurrence_and_stays_bounded)
{
	char s[64];

	snprintf(s, sizeof(s), "a " KEY " b " KEY);
	ef_embed_scrub(s, sizeof(s), KEY);
	cr_assert_str_eq(s, "a [redacted] b [redacted]");
	snprintf(s, sizeof(s), "abcd");
	ef_embed_scrub(s, sizeof(s), "dact");
	cr_assert_str_eq(s, "abcd");
	memcpy(s, "xyzxyzxyzxy", 12);
	ef_embed_scrub(s, 12, "zxyz");
	cr_assert_null(strstr(s, "zxyz"), "%s", s);
	snprintf(s, sizeof(s), "short");
	ef_embed_scrub(s, sizeof(s), "sho");
	cr_assert_str_eq(s, "short", "keys under 4 bytes are not masked");
}
