/*
 * Unit tests of the route rules of a text-embeddings-inference endpoint:
 * which recipes the OpenAI route can honour, how its answer to the probe
 * texts is compared with /embed's, and when it is slower.  The answers are
 * real bodies, classified by the client's own classifier.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_route.h"

#define DIM 4

static const float native[2 * DIM] = { 0.5f, -0.5f, 0.5f, 0.5f, 0.1f, 0.2f, 0.3f, 0.9f };

/* Standard padded base64 of n little-endian float32. */
static void b64(const float *v, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[64];
	size_t len = n * 4, k = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t w;

		memcpy(&w, &v[i], 4);
		for (int b = 0; b < 4; b++)
			raw[i * 4 + (size_t)b] = (unsigned char)(w >> (8 * b));
	}
	for (size_t i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)raw[i] << 16 | (i + 1 < len ? (uint32_t)raw[i + 1] << 8 : 0) |
			     (i + 2 < len ? raw[i + 2] : 0);

		out[k++] = a[w >> 18];
		out[k++] = a[(w >> 12) & 63];
		out[k++] = i + 1 < len ? a[(w >> 6) & 63] : '=';
		out[k++] = i + 2 < len ? a[w & 63] : '=';
	}
	out[k] = '\0';
}

/* An OpenAI-shaped answer with the two vectors as base64. */
static char *base64_body(const float *v)
{
	char e0[64], e1[64], *body = NULL;

	b64(v, DIM, e0);
	b64(v + DIM, DIM, e1);
	cr_assert(asprintf(&body, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
			   "\"embedding\":\"%s\"},{\"object\":\"embedding\",\"index\":1,\"embedding\":"
			   "\"%s\"}],\"model\":\"m1\"}", e0, e1) > 0);
	return body;
}

struct probe {
	struct ef_embed_outcome o;
	struct ef_embed_route_evidence ev;
	struct ef_embed_route_info info;
};

/* The /v1/embeddings answer (status, body) classified as the pool does,
 * and judged against native with the given times. */
static enum ef_embed_route_verdict judge(struct probe *p, long status, const char *body,
					 enum ef_embed_encoding setting, double openai_ms,
					 double native_ms, bool last)
{
	struct ef_embed_exchange x = {
		.provider = EF_EMBED_OPENAI, .endpoint = "http://127.0.0.1:9/v1/embeddings",
		.model = "m1", .n = 2, .dim = DIM, .status = status, .body = body,
		.body_len = body ? strlen(body) : 0, .retry_after_max_ms = 60000,
		.now = 1700000000, .dim_confirm = 3, .base64_asked = true,
		.base64_required = setting == EF_EMBED_ENC_BASE64,
	};

	memset(p, 0, sizeof(*p));
	ef_embed_classify(&x, &p->o);
	p->ev = (struct ef_embed_route_evidence){
		.setting = setting, .answered = true, .status = status, .o = &p->o,
		.native = native, .n = 2, .dim = DIM, .native_ms = native_ms,
		.openai_ms = openai_ms, .last_round = last,
	};
	return ef_embed_route_judge(&p->ev, &p->info);
}

static void done(struct probe *p)
{
	free(p->o.vec.data);
}

#define WHY(p, s) cr_expect(strstr((p)->info.why, (s)), "why: \"%s\", want \"%s\"", (p)->info.why, s)

Test(embed_route, the_recipe_decides_whether_the_route_may_be_used)
{
	char why[128] = "";
	struct ef_embed_switches sw = { 0 };

	cr_expect(ef_embed_route_eligible(NULL, why, sizeof(why)));
	cr_expect(ef_embed_route_eligible(&sw, why, sizeof(why)));
	sw.normalize = 1;
	cr_expect(ef_embed_route_eligible(&sw, why, sizeof(why)), "the route normalises too");
	sw.normalize = -1;
	cr_expect_not(ef_embed_route_eligible(&sw, why, sizeof(why)));
	cr_expect(strstr(why, "EMBED_NORMALIZE=false"), "%s", why);
	sw.normalize = 0;
	sw.truncate = true;
	cr_expect_not(ef_embed_route_eligible(&sw, why, sizeof(why)));
	cr_expect(strstr(why, "EMBED_TRUNCATE=true"), "%s", why);
}

Test(embed_route, the_same_vectors_as_base64_take_the_route)
{
	struct probe p;
	char *body = base64_body(native);

	cr_assert_eq(judge(&p, 200, body, EF_EMBED_ENC_AUTO, 3, 5, false), EF_EMBED_ROUTE_TAKE,
		     "%s", p.info.why);
	cr_expect_eq(p.info.route, EF_EMBED_ROUTE_OPENAI);
	cr_expect_eq(p.info.cosine, 1.0);
	WHY(&p, "same vectors as /embed, probe 3.0 ms vs 5.0 ms on /embed");
	done(&p);
	free(body);
}

/* A batching GPU server may differ in the last bit of a component. */
Test(embed_route, a_last_bit_difference_is_the_same_vector)
{
	struct probe p;
	float v[2 * DIM];
	char *body;

	memcpy(v, native, sizeof(v));
	v[1] = nextafterf(v[1], 0);
	v[6] = nextafterf(v[6], 1);
	body = base64_body(v);
	cr_expect_eq(judge(&p, 200, body, EF_EMBED_ENC_AUTO, 1, 1, false), EF_EMBED_ROUTE_TAKE,
		     "%s", p.info.why);
	done(&p);
	free(body);
}

Test(embed_route, other_vectors_keep_embed)
{
	struct probe p;
	float v[2 * DIM];
	char *body;

	for (int i = 0; i < 2 * DIM; i++)
		v[i] = native[(i / DIM) * DIM + (i + 1) % DIM];
	body = base64_body(v);
	cr_assert_eq(judge(&p, 200, body, EF_EMBED_ENC_AUTO, 1, 5, false), EF_EMBED_ROUTE_KEEP);
	cr_expect_eq(p.info.route, EF_EMBED_ROUTE_NATIVE);
	cr_expect_lt(p.info.cosine, EF_EMBED_ROUTE_COSINE);
	WHY(&p, "/v1/embeddings does not give /embed's vectors (cosine ");
	done(&p);
	free(body);
}

/* A cosine cannot see a normalisation: /embed unnormalised, the route not. */
Test(embed_route, another_norm_in_the_same_direction_keeps_embed)
{
	struct probe p;
	float v[2 * DIM];
	char *body;

	for (int i = 0; i < 2 * DIM; i++)
		v[i] = native[i] * 1.01f;
	body = base64_body(v);
	cr_assert_eq(judge(&p, 200, body, EF_EMBED_ENC_AUTO, 1, 5, false), EF_EMBED_ROUTE_KEEP);
	cr_expect_geq(p.info.cosine, EF_EMBED_ROUTE_COSINE);
	WHY(&p, "another normalisation");
	done(&p);
	free(body);
}

Test(embed_route, numbers_instead_of_base64_keep_embed)
{
	struct probe p;
	const char *body = "{\"data\":[{\"index\":0,\"embedding\":[0.5,-0.5,0.5,0.5]},{\"index\":1,"
			   "\"embedding\":[0.1,0.2,0.3,0.9]}]}";

	cr_assert_eq(judge(&p, 200, body, EF_EMBED_ENC_AUTO, 1, 5, false), EF_EMBED_ROUTE_KEEP);
	WHY(&p, "/v1/embeddings answered numbers, not base64");
	done(&p);
}

Test(embed_route, a_missing_route_keeps_embed)
{
	struct probe p;

	cr_assert_eq(judge(&p, 404, "{\"error\":\"not found\"}", EF_EMBED_ENC_AUTO, 1, 5, false),
		     EF_EMBED_ROUTE_KEEP);
	cr_expect_str_eq(p.info.why, "/v1/embeddings answered HTTP 404");
	done(&p);
	judge(&p, 401, "", EF_EMBED_ENC_AUTO, 1, 5, false);
	cr_expect_str_eq(p.info.why, "/v1/embeddings answered HTTP 401");
	done(&p);
	judge(&p, 503, "", EF_EMBED_ENC_AUTO, 1, 5, false);
	cr_expect_str_eq(p.info.why, "/v1/embeddings answered HTTP 503");
	done(&p);
}

Test(embed_route, a_refusal_of_base64_keeps_embed)
{
	struct probe p;
	const char *body = "{\"error\":{\"message\":\"encoding_format base64 is not supported\","
			   "\"type\":\"invalid_request_error\"}}";

	cr_assert_eq(judge(&p, 400, body, EF_EMBED_ENC_AUTO, 1, 5, false), EF_EMBED_ROUTE_KEEP);
	cr_expect_str_eq(p.info.why, "/v1/embeddings refuses base64 (HTTP 400)");
	done(&p);
}

Test(embed_route, an_unusable_answer_or_none_keeps_embed)
{
	struct probe p;

	cr_assert_eq(judge(&p, 200, "{\"data\":[", EF_EMBED_ENC_AUTO, 1, 5, false),
		     EF_EMBED_ROUTE_KEEP);
	WHY(&p, "/v1/embeddings gave an unusable answer: ");
	done(&p);
	judge(&p, 0, NULL, EF_EMBED_ENC_AUTO, 1, 5, false);
	p.ev.answered = false;
	p.ev.net_msg = "Couldn't connect to server";
	cr_assert_eq(ef_embed_route_judge(&p.ev, &p.info), EF_EMBED_ROUTE_KEEP);
	cr_expect_str_eq(p.info.why, "/v1/embeddings did not answer: Couldn't connect to server");
	done(&p);
}

Test(embed_route, slower_is_timed_again_then_keeps_embed)
{
	struct probe p;
	char *body = base64_body(native);

	cr_expect_eq(judge(&p, 200, body, EF_EMBED_ENC_AUTO, 40, 10, false), EF_EMBED_ROUTE_AGAIN);
	done(&p);
	cr_expect_eq(judge(&p, 200, body, EF_EMBED_ENC_AUTO, 40, 10, true), EF_EMBED_ROUTE_KEEP);
	WHY(&p, "/v1/embeddings gives the same vectors but is slower: probe 40.0 ms vs 10.0 ms "
		"on /embed");
	done(&p);
	cr_expect_eq(judge(&p, 200, body, EF_EMBED_ENC_BASE64, 40, 10, false), EF_EMBED_ROUTE_TAKE,
		     "base64 insists on the route, whatever its speed");
	done(&p);
	free(body);
}

Test(embed_route, slower_means_beyond_a_quarter_and_two_ms)
{
	cr_expect_not(ef_embed_route_slower(14.5, 10));
	cr_expect(ef_embed_route_slower(14.6, 10));
	cr_expect_not(ef_embed_route_slower(2.0, 0));
	cr_expect(ef_embed_route_slower(2.1, 0));
	cr_expect_not(ef_embed_route_slower(3, 5));
}

Test(embed_route, compare_gives_the_lowest_cosine_and_the_largest_norm_gap)
{
	const float a[4] = { 1, 0, 0, 1 }, b[4] = { 2, 0, 0, 1 };
	double cosine, dev;

	ef_embed_route_compare(a, b, 2, 2, &cosine, &dev);
	cr_expect_float_eq(cosine, 1.0, 1e-12);
	cr_expect_float_eq(dev, 0.5, 1e-12);
	ef_embed_route_compare(a, a + 2, 1, 2, &cosine, &dev);
	cr_expect_float_eq(cosine, 0.0, 1e-12);
}

Test(embed_route, names_say_the_path_and_the_encoding)
{
	cr_expect_str_eq(ef_embed_route_name(EF_EMBED_TEI, EF_EMBED_ROUTE_OPENAI),
			 "OpenAI route /v1/embeddings, base64");
	cr_expect_str_eq(ef_embed_route_name(EF_EMBED_TEI, EF_EMBED_ROUTE_NATIVE), "/embed, numbers");
}
