/*
 * fuzz_embed_response - the 200-body parsers of the three providers.
 *
 * Input: byte 0 picks the provider, byte 1 the number of inputs (0..15),
 * byte 2 the expected dimension (0..31, 0 = any); the rest is the body.
 * Whatever the body, a parse that says OK must hand back exactly n rows of
 * the expected dimension, all finite, none all zero and none of norm above
 * 1e6; any other answer must hand back none.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_classify.h"

static const enum ef_embed_provider providers[] = {
	EF_EMBED_OLLAMA, EF_EMBED_OPENAI, EF_EMBED_TEI,
};

static void check_ok(const struct ef_embed_vectors *v, size_t n, int dim)
{
	if (n == 0)
		return;
	if (!v->data || v->n != n || v->dim <= 0 || (dim && v->dim != dim))
		abort();
	for (size_t i = 0; i < n; i++) {
		double s = 0;

		for (size_t j = 0; j < (size_t)v->dim; j++) {
			float x = v->data[i * (size_t)v->dim + j];

			if (!isfinite(x))
				abort();
			s += (double)x * x;
		}
		if (!(s > 0) || sqrt(s) > 1e6)
			abort();
	}
}

static void classify_as_200(enum ef_embed_provider p, const char *body, size_t len, size_t n,
			    int dim)
{
	struct ef_embed_exchange x = {
		.provider = p, .endpoint = "http://127.0.0.1:1/embed", .model = "m",
		.secret = "sk-test-PLANTED-fuzz", .n = n, .dim = dim, .status = 200,
		.body = body, .body_len = len, .retry_after_max_ms = 60000, .dim_confirm = 2,
	};
	struct ef_embed_outcome o;

	ef_embed_classify(&x, &o);
	if (o.action == EF_EMBED_ACT_OK)
		check_ok(&o.vec, n, dim);
	else if (o.vec.data)
		abort();
	free(o.vec.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ef_embed_vectors v;
	enum ef_embed_provider p;
	size_t n;
	int dim;
	char why[256];

	if (size < 3)
		return 0;
	p = providers[data[0] % 3];
	n = data[1] % 16;
	dim = data[2] % 32;
	if (ef_embed_parse_response(p, (const char *)data + 3, size - 3, n, dim, &v, why,
				    sizeof(why)) == EF_EMBED_PARSE_OK)
		check_ok(&v, n, dim);
	else if (v.data)
		abort();
	if (memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	free(v.data);
	classify_as_200(p, (const char *)data + 3, size - 3, n, dim);
	return 0;
}
