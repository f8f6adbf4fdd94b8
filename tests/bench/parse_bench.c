/*
 * parse_bench - CPU per chunk of reading one embedding answer: 100 vectors
 * of 768 dimensions, as a service sends them.  Printed, never asserted.
 *
 *   cJSON tree (old)    the whole body through cJSON: a node, a malloc and a
 *                       locale-aware strtod per number, then (float)double
 *   scanner             ef_embed_parse_answer on the same decimal numbers
 *                       (tei and openai shapes), every check included
 *   base64              ef_embed_parse_answer on openai's base64 answer
 *
 * and, per number, the conversion alone: the scanner's against strtof_l.
 *   usage: parse_bench [SECONDS_PER_CASE]
 */
#include <cjson/cJSON.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/service/embed_parse.h"
#include "core/service/embed_wire.h"

#define ITEMS 100
#define DIM 768

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) * 0x1.0p-53;
}

/* Unit vectors of roughly normal components, as sentence encoders give. */
static void make_vectors(float *v)
{
	for (size_t i = 0; i < ITEMS; i++) {
		double s = 0;

		for (size_t j = 0; j < DIM; j++) {
			double g = uniform() + uniform() + uniform() - 1.5;

			v[i * DIM + j] = (float)g;
			s += g * g;
		}
		for (size_t j = 0; j < DIM; j++)
			v[i * DIM + j] = (float)(v[i * DIM + j] / sqrt(s));
	}
}

struct text {
	char *s;
	size_t len, cap;
};

static void put(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->s = realloc(t->s, t->cap);
		if (!t->s)
			abort();
	}
	memcpy(t->s + t->len, s, n + 1);
	t->len += n;
}

static void numbers(struct text *t, const float *v, const char *fmt)
{
	char num[40];

	put(t, "[");
	for (size_t j = 0; j < DIM; j++) {
		snprintf(num, sizeof(num), fmt, (double)v[j]);
		put(t, j ? "," : "");
		put(t, num);
	}
	put(t, "]");
}

static char *tei_body(const float *v, const char *fmt)
{
	struct text t = { NULL, 0, 0 };

	put(&t, "[");
	for (size_t i = 0; i < ITEMS; i++) {
		put(&t, i ? "," : "");
		numbers(&t, v + i * DIM, fmt);
	}
	put(&t, "]");
	return t.s;
}

static void base64_of(const float *v, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *b = (const unsigned char *)v;
	size_t n = DIM * 4, k = 0, i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
		out[k++] = a[w >> 18], out[k++] = a[(w >> 12) & 63];
		out[k++] = a[(w >> 6) & 63], out[k++] = a[w & 63];
	}
	if (i < n) {
		uint32_t w = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0);
		out[k++] = a[w >> 18], out[k++] = a[(w >> 12) & 63];
		out[k++] = i + 1 < n ? a[(w >> 6) & 63] : '=';
		out[k++] = '=';
	}
	out[k] = '\0';
}

static char *openai_body(const float *v, int base64)
{
	struct text t = { NULL, 0, 0 };
	char head[96], *b64 = malloc((DIM * 4 + 2) / 3 * 4 + 1);

	put(&t, "{\"object\":\"list\",\"data\":[");
	for (size_t i = 0; i < ITEMS; i++) {
		snprintf(head, sizeof(head), "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":",
			 i ? "," : "", i);
		put(&t, head);
		if (base64) {
			base64_of(v + i * DIM, b64);
			put(&t, "\"");
			put(&t, b64);
			put(&t, "\"");
		} else {
			numbers(&t, v + i * DIM, "%.9g");
		}
		put(&t, "}");
	}
	put(&t, "],\"model\":\"m\",\"usage\":{\"prompt_tokens\":900,\"total_tokens\":900}}");
	free(b64);
	return t.s;
}

/* What embfill did before: the whole tree, then (float)valuedouble. */
static int old_parse(const char *body, size_t len, float *out)
{
	cJSON *root = cJSON_ParseWithLengthOpts(body, len, NULL, 0);
	const cJSON *row, *x;
	size_t k = 0;

	if (!root)
		return -1;
	cJSON_ArrayForEach(row, root) {
		cJSON_ArrayForEach(x, row) {
			if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) ||
			    fabs(x->valuedouble) > FLT_MAX)
				return cJSON_Delete(root), -1;
		}
	}
	cJSON_ArrayForEach(row, root)
		cJSON_ArrayForEach(x, row)
			out[k++] = (float)x->valuedouble;
	cJSON_Delete(root);
	return k == ITEMS * DIM ? 0 : -1;
}

struct job {
	enum ef_embed_provider p;
	bool base64;
	const char *body;
	float *scratch;
	const float *want;
};

static int run_old(const struct job *j)
{
	return old_parse(j->body, strlen(j->body), j->scratch);
}

static int run_new(const struct job *j)
{
	struct ef_embed_vectors v;
	char why[256];
	int rc = ef_embed_parse_answer(j->p, j->base64, j->body, strlen(j->body), ITEMS, DIM, &v,
				       why, sizeof(why));

	if (rc != EF_EMBED_PARSE_OK) {
		fprintf(stderr, "parse_bench: %s\n", why);
		exit(1);
	}
	if (j->want && memcmp(v.data, j->want, sizeof(float) * ITEMS * DIM) != 0) {
		fprintf(stderr, "parse_bench: the floats differ from the ones printed\n");
		exit(1);
	}
	free(v.data);
	return 0;
}

/* CPU microseconds per chunk (one vector) of fn on job, over about secs. */
static double per_chunk(int (*fn)(const struct job *), const struct job *j, double secs)
{
	double t0 = cpu_s(), t;
	long rounds = 0;

	do {
		if (fn(j) != 0)
			abort();
		rounds++;
	} while ((t = cpu_s() - t0) < secs);
	return t / (double)rounds / ITEMS * 1e6;
}

/* Nanoseconds per number: the scanner's conversion, then strtof_l's. */
static void per_number(const char *body, double secs)
{
	locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	const char *end = body + strlen(body);
	double t0, fast, slow;
	volatile float sink = 0;
	long n = 0, rounds = 0;
	float f;

	t0 = cpu_s();
	do {
		for (const char *p = body; p < end; p++)
			if (*p == '-' || (*p >= '0' && *p <= '9')) {
				size_t k = ef_wire_number(p, end, &f);
				sink += f;
				p += k - 1;
				n += rounds == 0;
			}
		rounds++;
	} while ((fast = cpu_s() - t0) < secs);
	fast = fast / (double)rounds / (double)n * 1e9;
	rounds = 0;
	t0 = cpu_s();
	do {
		for (const char *p = body; p < end; p++)
			if (*p == '-' || (*p >= '0' && *p <= '9')) {
				char *q;
				sink += strtof_l(p, &q, c);
				p = q - 1;
			}
		rounds++;
	} while ((slow = cpu_s() - t0) < secs);
	slow = slow / (double)rounds / (double)n * 1e9;
	printf("  one number, 9 digits: scanner %.1f ns, strtof_l %.1f ns\n", fast, slow);
	freelocale(c);
	(void)sink;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	float *v = malloc(sizeof(float) * ITEMS * DIM), *scratch = malloc(sizeof(float) * ITEMS * DIM);
	char *tei9 = NULL, *tei17, *oai, *oai64;

	if (!v || !scratch)
		return 1;
	make_vectors(v);
	tei9 = tei_body(v, "%.9g");
	tei17 = tei_body(v, "%.17g");
	oai = openai_body(v, 0);
	oai64 = openai_body(v, 1);
	printf("parse bench: %d vectors of %d dimensions per answer, CPU per chunk (one vector)\n",
	       ITEMS, DIM);
	printf("  answer sizes: decimal %zu bytes, base64 %zu bytes\n", strlen(oai), strlen(oai64));
	printf("  cJSON tree (old), tei, 9 digits:     %7.2f us\n",
	       per_chunk(run_old, &(struct job){ EF_EMBED_TEI, false, tei9, scratch, NULL }, secs));
	printf("  scanner, tei, 9 digits:              %7.2f us\n",
	       per_chunk(run_new, &(struct job){ EF_EMBED_TEI, false, tei9, NULL, v }, secs));
	printf("  scanner, openai floats, 9 digits:    %7.2f us\n",
	       per_chunk(run_new, &(struct job){ EF_EMBED_OPENAI, false, oai, NULL, v }, secs));
	printf("  cJSON tree (old), tei, 17 digits:    %7.2f us\n",
	       per_chunk(run_old, &(struct job){ EF_EMBED_TEI, false, tei17, scratch, NULL }, secs));
	printf("  scanner, tei, 17 digits (strtof_l):  %7.2f us\n",
	       per_chunk(run_new, &(struct job){ EF_EMBED_TEI, false, tei17, NULL, v }, secs));
	printf("  base64, openai:                      %7.2f us\n",
	       per_chunk(run_new, &(struct job){ EF_EMBED_OPENAI, true, oai64, NULL, v }, secs));
	per_number(tei9, secs);
	free(tei9);
	free(tei17);
	free(oai);
	free(oai64);
	free(v);
	free(scratch);
	return 0;
}
