/*
 * Unit tests of the sandbox embedder's float printer: whatever it writes,
 * strtof must give back the very float, and the text must be a JSON number.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_wire.h"
#include "sandbox/fmtfloat.h"

static uint32_t bits_of(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

/* Printed, read back by strtof and by the client's scanner: the same bits. */
static void round_trips(float x)
{
	char buf[SBX_FMT_FLOAT_MAX + 1];
	size_t n = sbx_fmt_float(buf, x);
	float back, scanned;

	cr_assert_leq(n, SBX_FMT_FLOAT_MAX);
	buf[n] = '\0';
	back = strtof(buf, NULL);
	cr_assert_eq(bits_of(back), bits_of(x), "%a printed as \"%s\" reads back as %a",
		     (double)x, buf, (double)back);
	cr_assert_eq(ef_wire_number(buf, buf + n, &scanned), n, "\"%s\" is not a JSON number", buf);
	cr_assert_eq(bits_of(scanned), bits_of(x), "\"%s\"", buf);
}

Test(sandbox_fmtfloat, edges_of_float32_round_trip)
{
	const float cases[] = {
		0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 0.5f, 1e-45f, -1e-45f, FLT_MIN, FLT_MAX, -FLT_MAX,
		1.17549421e-38f, 16777216.0f, 16777218.0f, 1e8f, 99999999.0f, 999999999.0f, 1e9f,
		1e-4f, 9.99999e-5f, 0.00012345678f, 123456.789f, 1e38f, 3.3e-39f,
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		round_trips(cases[i]);
}

Test(sandbox_fmtfloat, every_power_of_two_and_its_neighbours_round_trip)
{
	for (int e = -149; e <= 127; e++) {
		float p = ldexpf(1.0f, e);

		round_trips(p);
		round_trips(nextafterf(p, 0.0f));
		round_trips(nextafterf(p, INFINITY));
		round_trips(-p);
	}
}

Test(sandbox_fmtfloat, millions_of_random_floats_round_trip)
{
	uint64_t s = 0x2545F4914F6CDD1DULL;
	long n = 0;

	for (int i = 0; i < 3000000; i++) {
		uint32_t u;
		float f;

		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		u = (uint32_t)(s >> 16);
		memcpy(&f, &u, sizeof(f));
		if (!isfinite(f))
			continue;
		round_trips(f);
		n++;
	}
	cr_assert_gt(n, 2900000);
}

Test(sandbox_fmtfloat, reads_like_printf_g)
{
	const struct { float x; const char *text; } cases[] = {
		{ 0.0f, "0" }, { -0.0f, "-0" }, { 1.0f, "1" }, { 0.5f, "0.5" }, { 100.0f, "100" },
		{ 0.1f, "0.100000001" }, { 1e-5f, "9.99999975e-06" }, { 1e9f, "1e+09" },
		{ 123456792.0f, "123456792" }, { 0.0001f, "9.99999975e-05" },
		{ 0.00025f, "0.000250000012" }, { 1e-45f, "1.40129846e-45" },
		{ 3.40282347e38f, "3.40282347e+38" }, { -2.5f, "-2.5" },
	};
	char buf[SBX_FMT_FLOAT_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf[sbx_fmt_float(buf, cases[i].x)] = '\0';
		cr_assert_str_eq(buf, cases[i].text);
	}
}
