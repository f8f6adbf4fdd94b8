/*
 * render_bench - CPU per chunk the sandbox embedder spends writing one
 * answer of 100 vectors of 768 dimensions: decimal numbers (tei, openai
 * float) and openai's base64, for the hash backend's sparse vectors (what
 * the sandbox serves) and for dense ones (what a real model returns).  On a
 * shared 2-core machine this is CPU the client being measured does not
 * get.  Printed, never asserted.
 *   usage: render_bench [SECONDS_PER_CASE]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandbox/api.h"
#include "sandbox/hashembed.h"

#define ITEMS 100
#define DIM 768

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double per_chunk(enum sbx_api api, const struct sbx_vectors *v, double secs,
			size_t *bytes)
{
	double t0 = cpu_s(), t;
	long rounds = 0;

	do {
		struct sbx_reply r;

		memset(&r, 0, sizeof(r));
		if (sbx_api_render(&r, api, v) != 0)
			abort();
		*bytes = r.len;
		free(r.body);
		rounds++;
	} while ((t = cpu_s() - t0) < secs);
	return t / (double)rounds / ITEMS * 1e6;
}

/* Unit vectors with every component set, as sentence encoders give. */
static void dense(float *v, size_t stride)
{
	uint64_t x = 0x2545F4914F6CDD1DULL;

	for (size_t i = 0; i < ITEMS; i++) {
		double s = 0;

		for (size_t j = 0; j < DIM; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			v[i * stride + j] = (float)((double)(x >> 11) * 0x1.0p-53 - 0.5);
			s += (double)v[i * stride + j] * v[i * stride + j];
		}
		for (size_t j = 0; j < DIM; j++)
			v[i * stride + j] = (float)(v[i * stride + j] / sqrt(s));
	}
}

static void cases(const char *what, struct sbx_vectors *v, double secs)
{
	size_t bytes = 0;
	double us;

	v->base64 = false;
	us = per_chunk(SBX_API_TEI, v, secs, &bytes);
	printf("  %s, tei, decimal numbers:     %7.2f us  (%zu bytes per answer)\n", what, us, bytes);
	us = per_chunk(SBX_API_OPENAI, v, secs, &bytes);
	printf("  %s, openai, decimal numbers:  %7.2f us  (%zu bytes per answer)\n", what, us, bytes);
	v->base64 = true;
	us = per_chunk(SBX_API_OPENAI, v, secs, &bytes);
	printf("  %s, openai, base64:           %7.2f us  (%zu bytes per answer)\n", what, us, bytes);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	float *vecs = calloc(ITEMS * (DIM + 1), sizeof(float));
	struct sbx_vectors v = { .data = vecs, .stride = DIM + 1, .n = ITEMS, .dim = DIM,
				 .prompt_tokens = 900, .model = "bench" };
	char text[64];

	if (!vecs)
		return 1;
	for (int i = 0; i < ITEMS; i++) {
		snprintf(text, sizeof(text), "chunk %d of the benchmark: words about vectors", i);
		sbx_hash_embed(text, DIM, vecs + (size_t)i * (DIM + 1));
	}
	printf("render bench: the sandbox embedder writing %d vectors of %d dimensions, CPU per chunk\n",
	       ITEMS, DIM);
	cases("hash ", &v, secs);
	dense(vecs, DIM + 1);
	cases("dense", &v, secs);
	free(vecs);
	return 0;
}
