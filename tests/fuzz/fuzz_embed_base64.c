/*
 * fuzz_embed_base64 - openai answers to a request that asked for base64.
 *
 * Input: byte 0 picks the form.  Below 0x80 the input builds an answer:
 * byte 0 % 8 + 1 items, byte 1 % 33 the expected dimension (0 = any), the
 * rest split evenly into the items' raw float32 bytes; each item is sent
 * as valid base64 of its bytes, or, when its first byte is odd, as the
 * bytes themselves inside the quotes (junk).  From 0x80 on, byte 1 gives n
 * and dim the same way and the rest is the body itself.
 *
 * Whatever the body, an OK answer hands back exactly n finite vectors of
 * the expected dimension, none all zero, none of norm above 1e6, and a
 * vector sent as valid base64 comes back bit for bit; any other answer
 * hands back none.  The classifier must agree.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_classify.h"

static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t base64(const uint8_t *in, size_t n, char *out)
{
	size_t k = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[k++] = abc[w >> 18], out[k++] = abc[(w >> 12) & 63];
		out[k++] = abc[(w >> 6) & 63], out[k++] = abc[w & 63];
	}
	if (i < n) {
		uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[k++] = abc[w >> 18], out[k++] = abc[(w >> 12) & 63];
		out[k++] = i + 1 < n ? abc[(w >> 6) & 63] : '=';
		out[k++] = '=';
	}
	return k;
}

struct built {
	char *body;
	size_t len;
	const uint8_t *raw[8];     /* the bytes an item was built from, if sent as base64 */
	size_t raw_len[8];
};

static void build(const uint8_t *data, size_t size, size_t n, struct built *b)
{
	size_t per = (size - 2) / n, cap = 64 + n * (per * 2 + 64), k = 0;

	memset(b, 0, sizeof(*b));
	b->body = malloc(cap);
	k += (size_t)snprintf(b->body, cap, "{\"object\":\"list\",\"data\":[");
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = data + 2 + i * per;

		k += (size_t)snprintf(b->body + k, cap - k, "%s{\"index\":%zu,\"embedding\":\"",
				      i ? "," : "", n - 1 - i);
		if (per > 0 && (p[0] & 1)) {
			memcpy(b->body + k, p, per);
			k += per;
		} else {
			b->raw[n - 1 - i] = p;
			b->raw_len[n - 1 - i] = per;
			k += base64(p, per, b->body + k);
		}
		k += (size_t)snprintf(b->body + k, cap - k, "\"}");
	}
	k += (size_t)snprintf(b->body + k, cap - k, "]}");
	b->len = k;
}

static void check_ok(const struct ef_embed_vectors *v, size_t n, int dim, const struct built *b)
{
	if (!v->data || v->n != n || v->dim <= 0 || (dim && v->dim != dim))
		abort();
	for (size_t i = 0; i < n; i++) {
		const float *x = v->data + i * (size_t)v->dim;
		double s = 0;

		for (int j = 0; j < v->dim; j++) {
			if (!isfinite(x[j]))
				abort();
			s += (double)x[j] * x[j];
		}
		if (!(s > 0) || sqrt(s) > 1e6)
			abort();
		if (b && b->raw[i] && (b->raw_len[i] != (size_t)v->dim * 4 ||
				       memcmp(x, b->raw[i], b->raw_len[i]) != 0))
			abort();
	}
}

static void classify(const char *body, size_t len, size_t n, int dim)
{
	struct ef_embed_exchange x = {
		.provider = EF_EMBED_OPENAI, .endpoint = "http://127.0.0.1:1/v1/embeddings",
		.model = "m", .n = n, .dim = dim, .status = 200, .body = body, .body_len = len,
		.retry_after_max_ms = 60000, .dim_confirm = 2, .base64_asked = true,
		.prev_bad = (len % 3),
	};
	struct ef_embed_outcome o;

	ef_embed_classify(&x, &o);
	if (o.action == EF_EMBED_ACT_OK)
		check_ok(&o.vec, n, dim, NULL);
	else if (o.vec.data)
		abort();
	if ((o.action == EF_EMBED_ACT_ISOLATE && (n < 2 || !o.bad_item || o.bad_item > n)) ||
	    (o.action == EF_EMBED_ACT_REJECT && n != 1))
		abort();
	free(o.vec.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ef_embed_vectors v;
	struct built b = { 0 };
	const char *body;
	size_t len, n;
	int dim;
	char why[256];

	if (size < 2)
		return 0;
	n = (size_t)(data[data[0] < 0x80 ? 0 : 1] % 8) + 1;
	dim = data[1] % 33;
	if (data[0] < 0x80) {
		build(data, size, n, &b);
		body = b.body;
		len = b.len;
	} else {
		body = (const char *)data + 2;
		len = size - 2;
	}
	if (ef_embed_parse_answer(EF_EMBED_OPENAI, true, body, len, n, dim, &v, why,
				  sizeof(why)) == EF_EMBED_PARSE_OK)
		check_ok(&v, n, dim, b.body ? &b : NULL);
	else if (v.data || v.bad_item > n)
		abort();
	if (memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	free(v.data);
	classify(body, len, n, dim);
	free(b.body);
	return 0;
}
