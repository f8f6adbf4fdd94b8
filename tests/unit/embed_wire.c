/*
 * Unit tests of vectors on the wire: the number scanner against strtof,
 * base64 answers, the checks every vector passes in both forms, the
 * fallback from base64, and isolating an input whose vector is unusable.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_classify.h"
#include "core/service/embed_wire.h"
#include "embfill/settings.h"

/* --- helpers -------------------------------------------------------------- */

static locale_t c_locale(void)
{
	static locale_t loc;

	if (!loc)
		loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	cr_assert(loc);
	return loc;
}

static uint32_t bits_of(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float float_of(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* The scanner on text must read all of it and agree with strtof bit for bit. */
static void same_as_strtof(const char *text)
{
	size_t len = strlen(text);
	float got = -1.0f, want = strtof_l(text, NULL, c_locale());
	size_t n = ef_wire_number(text, text + len, &got);

	cr_assert_eq(n, len, "\"%s\": read %zu of %zu characters", text, n, len);
	cr_assert_eq(bits_of(got), bits_of(want), "\"%s\": %a (0x%08x), strtof %a (0x%08x)", text,
		     (double)got, bits_of(got), (double)want, bits_of(want));
}

/* --- the number scanner ---------------------------------------------------- */

Test(embed_wire, numbers_at_the_edges_of_float32_match_strtof)
{
	static const char *const cases[] = {
		"0", "-0", "0.0", "-0.0", "0e10", "-0E-10", "1", "-1", "10", "123456789",
		"0.1", "0.30000001", "-0.0123456789", "1e-45", "1.4e-45", "1.401298464324817e-45",
		"7e-46", "7.1e-46", "1e-46", "1.17549435e-38", "1.1754942e-38", "3.4028235e38",
		"3.40282347e+38", "3.4028235677973366e38", "3.4028236e38", "1e39", "-1e39",
		"1e-50", "16777216", "16777217", "16777218", "16777219", "33554435",
		"1.000000059604644775390625", "1.0000000596046448", "1.000000059604645",
		"9007199254740993", "9007199254740992e-22", "4.9406564584124654e-324",
		"123456789012345678901234567890", "0.000000000000000000000000000001",
		"1E5", "1e+5", "2.5E-3", "1e22", "1e23", "1e-22", "1e-23", "8388609e-1",
		"340282346638528859811704183484516925440", "1e99999999999", "1e-99999999999",
		"0.00000000000000000000000000000000000000000000140129846432481707092372958",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		same_as_strtof(cases[i]);
}

Test(embed_wire, millions_of_random_floats_printed_every_way_match_strtof)
{
	static const char *const formats[] = { "%.9g", "%.17g", "%.6e", "%.3g", "%.12f" };
	char text[512];
	long checked = 0;

	for (int i = 0; i < 1000000; i++) {
		float f = float_of((uint32_t)rnd());

		if (!isfinite(f))
			continue;
		for (size_t k = 0; k < sizeof(formats) / sizeof(formats[0]); k++) {
			if (k == 4 && fabsf(f) > 1e30f)
				continue;
			snprintf(text, sizeof(text), formats[k], (double)f);
			same_as_strtof(text);
			checked++;
		}
	}
	cr_assert_gt(checked, 4000000);
}

/* Random decimals: 1 to 25 digits, a point anywhere, exponents around the fast path. */
Test(embed_wire, millions_of_random_decimals_match_strtof)
{
	char text[64];

	for (int i = 0; i < 2000000; i++) {
		uint64_t r = rnd();
		int nd = 1 + (int)(r % 25), point = (int)((r >> 8) % (uint64_t)(nd + 1));
		int e = (int)((r >> 16) % 121) - 60;
		size_t k = 0;

		if (r >> 63)
			text[k++] = '-';
		for (int d = 0; d < nd; d++) {
			if (d == point && d > 0)
				text[k++] = '.';
			text[k++] = (char)('0' + (d == 0 ? 1 + rnd() % 9 : rnd() % 10));
		}
		if ((r >> 30) & 1)
			k += (size_t)snprintf(text + k, sizeof(text) - k, "e%d", e);
		text[k] = '\0';
		same_as_strtof(text);
	}
}

Test(embed_wire, what_json_does_not_call_a_number_is_refused)
{
	static const char *const bad[] = {
		"", "-", "+1", ".5", "1.", "01", "-01", "1e", "1e+", "1.e5", "1x", "1.5.3",
		"0x10", "inf", "NaN", "1e5e5", "--1", "1_000",
	};
	float f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ef_wire_number(bad[i], bad[i] + strlen(bad[i]), &f), 0,
			     "\"%s\" was read as a number", bad[i]);
}

Test(embed_wire, a_number_stops_at_its_delimiter_and_never_reads_past_the_end)
{
	char buf[] = { '1', '2', '.', '5' };
	float f;

	cr_assert_eq(ef_wire_number("12.5,3", "12.5,3" + 6, &f), 4);
	cr_assert_eq(f, 12.5f);
	cr_assert_eq(ef_wire_number("-7]", "-7]" + 3, &f), 2);
	cr_assert_eq(f, -7.0f);
	cr_assert_eq(ef_wire_number(buf, buf + sizeof(buf), &f), 4);
	cr_assert_eq(f, 12.5f);
	cr_assert_eq(ef_wire_number(buf, buf + 3, &f), 0, "\"12.\" is not a number");
}

Test(embed_wire, a_comma_locale_does_not_change_the_numbers)
{
	locale_t de = newlocale(LC_NUMERIC_MASK, "de_DE.UTF-8", (locale_t)0);
	locale_t old;
	float f = 0;

	if (!de)
		de = newlocale(LC_NUMERIC_MASK, "fr_FR.UTF-8", (locale_t)0);
	if (!de)
		cr_skip_test("no locale with a decimal comma is installed");
	old = uselocale(de);
	ef_wire_number("0.5", "0.5" + 3, &f);
	uselocale(old);
	freelocale(de);
	cr_assert_eq(f, 0.5f);
}

/* --- base64 ---------------------------------------------------------------- */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard padded base64 of floats, little-endian; malloc'ed. */
static char *b64_floats(const float *v, size_t n)
{
	unsigned char *b = malloc(n * 4 + 1);
	char *out = malloc(n * 4 / 3 * 4 + 16);
	size_t k = 0, i;

	for (size_t j = 0; j < n; j++) {
		uint32_t u = bits_of(v[j]);

		for (int s = 0; s < 4; s++)
			b[j * 4 + (size_t)s] = (unsigned char)(u >> (8 * s));
	}
	for (i = 0; i + 3 <= n * 4; i += 3) {
		uint32_t w = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
		out[k++] = alphabet[w >> 18], out[k++] = alphabet[(w >> 12) & 63];
		out[k++] = alphabet[(w >> 6) & 63], out[k++] = alphabet[w & 63];
	}
	if (i < n * 4) {
		uint32_t w = (uint32_t)b[i] << 16 | (i + 1 < n * 4 ? (uint32_t)b[i + 1] << 8 : 0);
		out[k++] = alphabet[w >> 18], out[k++] = alphabet[(w >> 12) & 63];
		out[k++] = i + 1 < n * 4 ? alphabet[(w >> 6) & 63] : '=';
		out[k++] = '=';
	}
	out[k] = '\0';
	free(b);
	return out;
}

/* An openai answer whose items carry the given embedding texts (JSON values). */
static char *openai_body(const char *const *emb, size_t n)
{
	size_t cap = 256;
	char *s;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		cap += strlen(emb[i]) + 64;
	s = malloc(cap);
	k += (size_t)snprintf(s + k, cap - k, "{\"object\":\"list\",\"data\":[");
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(s + k, cap - k, "%s{\"object\":\"embedding\",\"index\":%zu,"
				      "\"embedding\":%s}", i ? "," : "", i, emb[i]);
	snprintf(s + k, cap - k, "],\"model\":\"m\"}");
	return s;
}

static char *quoted(const char *b64)
{
	char *q = malloc(strlen(b64) + 3);

	sprintf(q, "\"%s\"", b64);
	return q;
}

static enum ef_embed_parse_rc parse64(const char *body, size_t n, int dim,
				      struct ef_embed_vectors *v, char *why)
{
	return ef_embed_parse_answer(EF_EMBED_OPENAI, true, body, strlen(body), n, dim, v, why,
				     256);
}

Test(embed_wire, base64_vectors_are_decoded_exactly_and_in_index_order)
{
	float a[5] = { 1.0f, -0.0f, 1e-45f, 65504.5f, 0.1f }, b[5] = { -2.5f, 0, 0, 0, 7 };
	char *ea = quoted(b64_floats(a, 5)), *eb = quoted(b64_floats(b, 5));
	char body[1024];
	struct ef_embed_vectors v;
	char why[256];

	snprintf(body, sizeof(body), "{\"data\":[{\"index\":1,\"embedding\":%s},"
		 "{\"index\":0,\"embedding\":%s}]}", eb, ea);
	cr_assert_eq(parse64(body, 2, 5, &v, why), EF_EMBED_PARSE_OK, "%s", why);
	cr_assert_eq(v.encoding, EF_EMBED_ENC_BASE64);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(bits_of(v.data[i]), bits_of(a[i]), "row 0 component %d", i);
		cr_assert_eq(bits_of(v.data[5 + i]), bits_of(b[i]), "row 1 component %d", i);
	}
	free(v.data);
	free(ea);
	free(eb);
}

Test(embed_wire, numbers_answered_to_a_base64_request_are_taken_as_they_are)
{
	const char *emb[] = { "[1,2]", "[3,4]" };
	char *body = openai_body(emb, 2);
	struct ef_embed_vectors v;
	char why[256];

	cr_assert_eq(parse64(body, 2, 2, &v, why), EF_EMBED_PARSE_OK, "%s", why);
	cr_assert_eq(v.encoding, EF_EMBED_ENC_FLOAT);
	cr_assert_eq(v.data[3], 4.0f);
	free(v.data);
	free(body);
}

static void expect64(const char *emb_json, int dim, enum ef_embed_parse_rc want, const char *words)
{
	const char *emb[] = { emb_json };
	char *body = openai_body(emb, 1);
	struct ef_embed_vectors v;
	char why[256];
	enum ef_embed_parse_rc rc = parse64(body, 1, dim, &v, why);

	cr_assert_eq(rc, want, "%s: rc %d, want %d (%s)", emb_json, rc, want, why);
	if (rc != EF_EMBED_PARSE_OK)
		cr_assert_null(v.data, "no vectors out of a bad answer");
	free(v.data);
	if (words)
		cr_assert(strstr(why, words), "%s: \"%s\" lacks \"%s\"", emb_json, why, words);
	free(body);
}

Test(embed_wire, bad_base64_is_a_malformed_answer)
{
	/* 1.0f and 2.0f are AACAPwAAAEA= */
	expect64("\"AACAPwAAAEA=\"", 2, EF_EMBED_PARSE_OK, NULL);
	expect64("\"AACAPwAAAEA\"", 2, EF_EMBED_PARSE_MALFORMED, "whole number of float32");
	expect64("\"AACAPwAAAEA==\"", 2, EF_EMBED_PARSE_MALFORMED, "whole number of float32");
	expect64("\"AACAPwAAAE=A\"", 2, EF_EMBED_PARSE_MALFORMED, NULL);
	expect64("\"AACA=wAAAEA=\"", 2, EF_EMBED_PARSE_MALFORMED, "outside the alphabet");
	expect64("\"AACAPwAAAEB=\"", 2, EF_EMBED_PARSE_MALFORMED, "stray bits");
	expect64("\"AACAPwA AAE=\"", 2, EF_EMBED_PARSE_MALFORMED, "outside the alphabet");
	expect64("\"AACAPwAA\\nAEA=\"", 2, EF_EMBED_PARSE_MALFORMED, NULL);
	expect64("\"AACAP-AAAE_=\"", 2, EF_EMBED_PARSE_MALFORMED, "outside the alphabet");
	expect64("\"AACAPw==\"", 2, EF_EMBED_PARSE_DIM, "dimension 1, expected 2");
	expect64("\"\"", 2, EF_EMBED_PARSE_INVALID, "empty");
	expect64("\"AACA\"", 1, EF_EMBED_PARSE_MALFORMED, "whole number of float32");
}

Test(embed_wire, base64_of_another_dimension_is_a_dim_mismatch_naming_it)
{
	struct ef_embed_vectors v;
	float x[3] = { 1, 2, 3 };
	char *e = quoted(b64_floats(x, 3));
	const char *emb[] = { e, e };
	char *body = openai_body(emb, 2);
	char why[256];

	cr_assert_eq(parse64(body, 2, 4, &v, why), EF_EMBED_PARSE_DIM, "%s", why);
	cr_assert_eq(v.dim, 3);
	cr_assert_null(v.data);
	free(body);
	free(e);
}

Test(embed_wire, base64_and_numbers_mixed_in_one_answer_are_malformed)
{
	const char *emb[] = { "\"AACAPwAAAEA=\"", "[1,2]" };
	char *body = openai_body(emb, 2);
	struct ef_embed_vectors v;
	char why[256];

	cr_assert_eq(parse64(body, 2, 2, &v, why), EF_EMBED_PARSE_MALFORMED, "%s", why);
	cr_assert_null(v.data);
	free(body);
}

Test(embed_wire, base64_is_not_accepted_where_it_was_not_asked_for)
{
	const char *body = "[\"AACAPwAAAEA=\"]";
	struct ef_embed_vectors v;
	char why[256];

	cr_assert_eq(ef_embed_parse_answer(EF_EMBED_TEI, true, body, strlen(body), 1, 2, &v, why,
					   sizeof(why)), EF_EMBED_PARSE_INVALID, "%s", why);
	cr_assert_null(v.data);
}

/* --- what a usable vector is, in both forms -------------------------------- */

static void expect_unusable(const char *emb_json, bool base64, size_t n, size_t bad,
			    const char *reason)
{
	const char *fill = base64 ? "\"AAAAPwAAAD8=\"" : "[0.5,0.5]";   /* 0.5f, 0.5f */
	const char *emb[4] = { fill, fill, fill, fill };
	struct ef_embed_vectors v;
	char why[256], *body;
	enum ef_embed_parse_rc rc;

	emb[bad] = emb_json;
	body = openai_body(emb, n);
	rc = ef_embed_parse_answer(EF_EMBED_OPENAI, base64, body, strlen(body), n, 2, &v, why,
				   sizeof(why));
	cr_assert_eq(rc, EF_EMBED_PARSE_INVALID, "%s: rc %d (%s)", emb_json, rc, why);
	cr_assert_null(v.data);
	cr_assert_eq(v.bad_item, bad + 1, "%s: bad item %zu, want %zu", emb_json, v.bad_item,
		     bad + 1);
	cr_assert(strstr(v.bad_reason, reason), "%s: \"%s\" lacks \"%s\"", emb_json,
		  v.bad_reason, reason);
	cr_assert(strstr(why, reason), "%s", why);
	free(body);
}

Test(embed_wire, all_zero_vectors_are_refused_single_zeros_are_not)
{
	float z[2] = { 0.0f, -0.0f }, ok[2] = { 0.0f, 1.0f };
	char *ez = quoted(b64_floats(z, 2)), *eok = quoted(b64_floats(ok, 2));
	const char *emb[] = { "[0,1]", "[1e-45,0]" };
	char *body = openai_body(emb, 2);
	struct ef_embed_vectors v;
	char why[256];

	expect_unusable("[0,0]", false, 3, 1, "all-zero vector");
	expect_unusable("[-0.0,0e5]", false, 2, 0, "all-zero vector");
	expect_unusable(ez, true, 4, 3, "all-zero vector");
	cr_assert_eq(ef_embed_parse_answer(EF_EMBED_OPENAI, false, body, strlen(body), 2, 2, &v,
					   why, sizeof(why)), EF_EMBED_PARSE_OK, "%s", why);
	free(v.data);
	expect64(eok, 2, EF_EMBED_PARSE_OK, NULL);
	free(body);
	free(ez);
	free(eok);
}

Test(embed_wire, non_finite_values_are_refused_naming_the_component)
{
	float nan_v[2] = { 1.0f, NAN }, inf_v[2] = { -INFINITY, 1.0f };
	char *en = quoted(b64_floats(nan_v, 2)), *ei = quoted(b64_floats(inf_v, 2));

	expect_unusable("[1,1e39]", false, 2, 1, "non-finite value inf at component 1");
	expect_unusable("[-1e39,1]", false, 1, 0, "non-finite value -inf at component 0");
	expect_unusable(en, true, 3, 2, "non-finite value NaN at component 1");
	expect_unusable(ei, true, 2, 0, "non-finite value -inf at component 0");
	free(en);
	free(ei);
}

Test(embed_wire, an_absurd_norm_is_refused_saying_how_big)
{
	float huge[2] = { 1e29f, 0.0f };
	char *eh = quoted(b64_floats(huge, 2));
	const char *emb[] = { "[999999,0]", "[0,-707106.7]" };
	char *body = openai_body(emb, 2);
	struct ef_embed_vectors v;
	char why[256];

	expect_unusable("[1e29,1]", false, 2, 0, "vector norm 1e29 is absurd");
	expect_unusable("[800000,800000]", false, 2, 1, "vector norm 1.1e6 is absurd");
	expect_unusable(eh, true, 1, 0, "vector norm 1e29 is absurd");
	cr_assert_eq(ef_embed_parse_answer(EF_EMBED_OPENAI, false, body, strlen(body), 2, 2, &v,
					   why, sizeof(why)), EF_EMBED_PARSE_OK, "norms of 1e6 "
		     "and below pass: %s", why);
	free(v.data);
	free(body);
	free(eh);
}

/* --- the scanner on whole bodies, against cJSON and strtof ------------------ */

struct gen {
	char *s;
	size_t len, cap;
};

static void add(struct gen *g, const char *t)
{
	size_t n = strlen(t);

	if (g->len + n + 1 > g->cap) {
		g->cap = (g->len + n + 1) * 2;
		g->s = realloc(g->s, g->cap);
	}
	memcpy(g->s + g->len, t, n + 1);
	g->len += n;
}

static void blanks(struct gen *g)
{
	static const char *const ws[] = { "", "", "", " ", "\n", "\t", "\r\n  " };

	add(g, ws[rnd() % 7]);
}

/*
 * A random number token that strtof and JSON both read, and its strtof
 * value: mostly components of the size models give, sometimes any float.
 */
static float token(char *buf, size_t size)
{
	static const char *const formats[] = { "%.9g", "%.17g", "%.3e", "%g", "%.0f" };
	float f = rnd() % 100 ? (float)(((double)(rnd() >> 11) * 0x1.0p-53 - 0.5) *
					pow(10, (double)(rnd() % 8) - 6))
			     : float_of((uint32_t)rnd());
	int k = (int)(rnd() % 6);

	if (!isfinite(f) || k == 5) {
		snprintf(buf, size, "%d", (int)(rnd() % 2001) - 1000);
	} else {
		if (k == 4 && fabsf(f) > 1e20f)
			k = 0;
		snprintf(buf, size, formats[k], (double)f);
	}
	if (strchr(buf, 'e') && rnd() % 2)
		*strchr(buf, 'e') = 'E';
	return strtof_l(buf, NULL, c_locale());
}

/*
 * Bodies of every shape with random numbers and random blanks: the parse
 * must hand back exactly strtof's floats where cJSON sees a valid body, and
 * refuse it where not finite, all zero or too long.
 */
Test(embed_wire, scanned_bodies_give_strtofs_floats_where_cjson_sees_valid_json)
{
	enum ef_embed_provider ps[] = { EF_EMBED_TEI, EF_EMBED_OLLAMA, EF_EMBED_OPENAI };
	char tok[64], why[256];
	long compared = 0;

	for (int round = 0; round < 3000; round++) {
		enum ef_embed_provider p = ps[round % 3];
		size_t n = 1 + rnd() % 5, dim = 1 + rnd() % 40;
		float *want = malloc(n * dim * sizeof(float));
		struct gen g = { NULL, 0, 0 };
		struct ef_embed_vectors v;
		enum ef_embed_parse_rc rc;
		cJSON *ref;
		bool usable = true;

		add(&g, p == EF_EMBED_OLLAMA ? "{\"model\":\"m\",\"embeddings\":" :
			p == EF_EMBED_OPENAI ? "{\"data\":" : "");
		blanks(&g);
		add(&g, "[");
		for (size_t i = 0; i < n; i++) {
			double s = 0;

			blanks(&g);
			add(&g, i ? "," : "");
			if (p == EF_EMBED_OPENAI) {
				snprintf(tok, sizeof(tok), "{\"index\": %zu,\"embedding\":", i);
				add(&g, tok);
			}
			blanks(&g);
			add(&g, "[");
			for (size_t j = 0; j < dim; j++) {
				blanks(&g);
				add(&g, j ? "," : "");
				blanks(&g);
				want[i * dim + j] = token(tok, sizeof(tok));
				s += (double)want[i * dim + j] * want[i * dim + j];
				add(&g, tok);
			}
			blanks(&g);
			add(&g, "]");
			if (p == EF_EMBED_OPENAI)
				add(&g, "}");
			usable = usable && s > 0 && s <= 1e12;
		}
		add(&g, "]");
		if (p != EF_EMBED_TEI)
			add(&g, "}");
		blanks(&g);
		ref = cJSON_ParseWithLength(g.s, g.len);
		cr_assert_not_null(ref, "cJSON refuses the generated body %s", g.s);
		cJSON_Delete(ref);
		rc = ef_embed_parse_answer(p, false, g.s, g.len, n, (int)dim, &v, why, sizeof(why));
		if (usable) {
			cr_assert_eq(rc, EF_EMBED_PARSE_OK, "%s: %s", g.s, why);
			for (size_t k = 0; k < n * dim; k++, compared++)
				cr_assert_eq(bits_of(v.data[k]), bits_of(want[k]), "%s: float %zu",
					     g.s, k);
		} else {
			cr_assert_eq(rc, EF_EMBED_PARSE_INVALID, "%s: %s", g.s, why);
			cr_assert_neq(v.bad_item, 0);
		}
		free(v.data);
		free(want);
		free(g.s);
	}
	cr_assert_gt(compared, 100000, "only %ld floats compared", compared);
}

static void expect_tei(const char *body, enum ef_embed_parse_rc want, size_t n, int dim)
{
	struct ef_embed_vectors v;
	char why[256];
	enum ef_embed_parse_rc rc = ef_embed_parse_answer(EF_EMBED_TEI, false, body,
							  strlen(body), n, dim, &v, why,
							  sizeof(why));

	cr_assert_eq(rc, want, "%s: rc %d, want %d (%s)", body, rc, want, why);
	if (rc == EF_EMBED_PARSE_OK)
		cr_assert_not_null(v.data);
	else
		cr_assert_null(v.data);
	free(v.data);
}

Test(embed_wire, integers_exponents_denormals_and_blanks_are_read)
{
	struct ef_embed_vectors v;
	char why[256];
	const char *b = " [ [ 1 , -2 ,3E2, 1e-45 ,-0, 4.5e+1 ,0.1e-37 ]\n,\t[0,0,0,0,0,0,1] ] ";

	cr_assert_eq(ef_embed_parse_answer(EF_EMBED_TEI, false, b, strlen(b), 2, 7, &v, why,
					   sizeof(why)), EF_EMBED_PARSE_OK, "%s", why);
	cr_assert_eq(v.data[0], 1.0f);
	cr_assert_eq(v.data[1], -2.0f);
	cr_assert_eq(v.data[2], 300.0f);
	cr_assert_eq(bits_of(v.data[3]), 1u, "1e-45 is the smallest denormal");
	cr_assert_eq(bits_of(v.data[4]), 0x80000000u, "-0 keeps its sign");
	cr_assert_eq(v.data[5], 45.0f);
	cr_assert_eq(v.data[6], 1e-38f);
	cr_assert_eq(v.data[13], 1.0f);
	free(v.data);
}

Test(embed_wire, flt_max_is_read_as_a_number_and_one_past_it_overflows_to_inf)
{
	struct ef_embed_vectors v;
	char why[256];
	const char *max = "[[3.4028235e38]]", *over = "[[3.4028236e38]]";

	cr_assert_eq(ef_embed_parse_answer(EF_EMBED_TEI, false, max, strlen(max), 1, 1, &v, why,
					   sizeof(why)), EF_EMBED_PARSE_INVALID);
	cr_assert_str_eq(v.bad_reason, "vector norm 3.4e38 is absurd (above 1e6)");
	cr_assert_eq(ef_embed_parse_answer(EF_EMBED_TEI, false, over, strlen(over), 1, 1, &v, why,
					   sizeof(why)), EF_EMBED_PARSE_INVALID);
	cr_assert_str_eq(v.bad_reason, "non-finite value inf at component 0");
}

Test(embed_wire, junk_that_cjson_would_overlook_is_malformed)
{
	expect_tei("[[01,2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[1.5.3,2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[1e5e5,2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[1.,2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[1,2x]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[\x01 5],[1,2]]", EF_EMBED_PARSE_MALFORMED, 2, 0);
	expect_tei("[[1,\x0b 2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[1,2]]\x0c", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[\"a\x01\"]]", EF_EMBED_PARSE_MALFORMED, 1, 1);
	expect_tei("[[+1,2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[.5,2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
}

Test(embed_wire, nested_and_mixed_arrays_are_not_vectors)
{
	expect_tei("[[1,[2]]]", EF_EMBED_PARSE_INVALID, 1, 2);
	expect_tei("[[[1],[2]]]", EF_EMBED_PARSE_INVALID, 1, 2);
	expect_tei("[[1,\"2\"]]", EF_EMBED_PARSE_INVALID, 1, 2);
	expect_tei("[[1,null]]", EF_EMBED_PARSE_INVALID, 1, 2);
	expect_tei("[[1,{}]]", EF_EMBED_PARSE_INVALID, 1, 2);
	expect_tei("[[1,,2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[1,2,]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[[1 2]]", EF_EMBED_PARSE_MALFORMED, 1, 2);
	expect_tei("[5]", EF_EMBED_PARSE_INVALID, 1, 1);
	expect_tei("[[5]]", EF_EMBED_PARSE_OK, 1, 1);
	expect_tei("[[[[[[[[1]]]]]]]]", EF_EMBED_PARSE_INVALID, 1, 1);
}

Test(embed_wire, marker_lookalikes_in_the_body_stay_what_they_are)
{
	/* "[0]" in a string, and arrays elsewhere, must not become vectors */
	struct ef_embed_vectors v;
	char why[256];
	const char *b = "{\"model\":\"[0]\",\"extra\":[[7,7],[8]],\"embeddings\":[[1,2],[3,4]],"
			"\"n\":[1]}";

	cr_assert_eq(ef_embed_parse_answer(EF_EMBED_OLLAMA, false, b, strlen(b), 2, 2, &v, why,
					   sizeof(why)), EF_EMBED_PARSE_OK, "%s", why);
	cr_assert_eq(v.data[0], 1.0f);
	cr_assert_eq(v.data[3], 4.0f);
	free(v.data);
}

/* --- requests, classes, settings ------------------------------------------- */

Test(embed_wire, a_base64_request_asks_openai_only)
{
	const char *texts[] = { "a" };
	char *o = ef_embed_build_request_as(EF_EMBED_OPENAI, "m", true, texts, 1);
	char *l = ef_embed_build_request_as(EF_EMBED_OLLAMA, "m", true, texts, 1);
	char *t = ef_embed_build_request_as(EF_EMBED_TEI, "m", true, texts, 1);

	cr_assert_str_eq(o, "{\"model\":\"m\",\"encoding_format\":\"base64\",\"input\":[\"a\"]}");
	cr_assert_str_eq(l, "{\"model\":\"m\",\"truncate\":false,\"input\":[\"a\"]}");
	cr_assert_str_eq(t, "{\"inputs\":[\"a\"]}");
	free(o);
	free(l);
	free(t);
}

static struct ef_embed_exchange exchange(long status, const char *body, size_t n)
{
	struct ef_embed_exchange x = {
		.provider = EF_EMBED_OPENAI, .endpoint = "http://127.0.0.1:9/v1/embeddings",
		.model = "m", .n = n, .dim = 2, .status = status, .body = body,
		.body_len = strlen(body), .retry_after_max_ms = 60000, .dim_confirm = 3,
		.base64_asked = true,
	};
	return x;
}

#define REFUSAL "{\"error\":{\"message\":\"encoding_format \\\"base64\\\" is not supported\"," \
		"\"type\":\"invalid_request_error\"}}"

Test(embed_wire, a_refused_base64_falls_back_or_is_fatal_when_insisted_on)
{
	struct ef_embed_exchange x = exchange(400, REFUSAL, 3);
	struct ef_embed_outcome o;

	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_FALLBACK, "%s", o.cause);
	x.status = 422;
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_FALLBACK, "%s", o.cause);
	x.n = 1;
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_FALLBACK, "a single input is not rejected for it");
	x.base64_required = true;
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_FATAL);
	cr_assert(strstr(o.cause, "EMBED_ENCODING=base64"), "%s", o.cause);
	cr_assert(strstr(o.hint, "EMBED_ENCODING=auto"), "%s", o.hint);
	x.base64_required = false;
	x.base64_asked = false;
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_REJECT, "not asked: an ordinary input error");
}

Test(embed_wire, an_unusable_vector_is_retried_then_isolated_then_rejected)
{
	const char *body = "{\"data\":[{\"index\":0,\"embedding\":[1,2]},"
			   "{\"index\":1,\"embedding\":[0,0]},{\"index\":2,\"embedding\":[3,4]}]}";
	const char *alone = "{\"data\":[{\"index\":0,\"embedding\":[0,0]}]}";
	struct ef_embed_exchange x = exchange(200, body, 3);
	struct ef_embed_outcome o;

	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY, "%s", o.cause);
	cr_assert_eq(o.bad_item, 2);
	cr_assert(strstr(o.cause, "all-zero vector"), "%s", o.cause);
	x.prev_bad = 1;
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY, "another input before: still a glitch");
	x.prev_bad = 2;
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_ISOLATE, "%s", o.cause);
	cr_assert_eq(o.bad_item, 2);
	x = exchange(200, alone, 1);
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_RETRY);
	x.prev_bad = 1;
	ef_embed_classify(&x, &o);
	cr_assert_eq(o.action, EF_EMBED_ACT_REJECT);
	cr_assert_str_eq(o.cause, "unusable vector, twice in a row: all-zero vector (cosine "
			 "similarity is undefined)");
	cr_assert_null(o.vec.data);
}

Test(embed_wire, encoding_names_and_the_setting)
{
	ef_settings *s = ef_settings_new();
	struct ef_error err;
	static char *bad[] = { "EMBED_ENCODING=gzip", NULL };
	static char *good[] = { "EMBED_ENCODING=float", NULL };

	cr_assert_eq(ef_embed_encoding_from("base64"), EF_EMBED_ENC_BASE64);
	cr_assert_eq(ef_embed_encoding_from("float"), EF_EMBED_ENC_FLOAT);
	cr_assert_eq(ef_embed_encoding_from("auto"), EF_EMBED_ENC_AUTO);
	cr_assert_eq(ef_embed_encoding_from(NULL), EF_EMBED_ENC_AUTO);
	cr_assert_str_eq(ef_embed_encoding_name(EF_EMBED_ENC_BASE64), "base64");
	cr_assert_eq(ef_settings_finish(s, &err), EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_config(s)->encoding, "auto", "the default");
	cr_assert_eq(ef_settings_load_env(s, bad, &err), EF_OK);
	cr_assert_eq(ef_settings_finish(s, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "EMBED_ENCODING"), "%s", err.msg);
	cr_assert_eq(ef_settings_load_env(s, good, &err), EF_OK);
	cr_assert_eq(ef_settings_finish(s, &err), EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_config(s)->encoding, "float");
	ef_settings_free(s);
}

Test(embed_wire, an_unknown_encoding_in_the_config_is_a_usage_error)
{
	struct ef_embed_config c;
	struct ef_error err;

	ef_embed_config_defaults(&c);
	c.provider = EF_EMBED_OPENAI;
	c.url = "http://127.0.0.1:9";
	c.model = "m";
	cr_assert_eq(c.encoding, EF_EMBED_ENC_AUTO, "auto is the default");
	c.encoding = (enum ef_embed_encoding)7;
	cr_assert_eq(ef_embed_config_check(&c, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.hint, "EMBED_ENCODING"), "%s", err.hint);
}
