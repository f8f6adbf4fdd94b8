/*
 * fmtfloat.c - nine significant digits of a float32 without printf.
 *
 * snprintf("%.9g") takes most of the embedder's time on a batch of 768-
 * dimensional vectors, time a 2-core machine's client needs.  Nine digits
 * always bring a float32 back exactly, with room to spare: two floats near
 * x are at least x * 2^-24 (6e-8 x) apart, nine digits are x * 1e-8 apart,
 * so even a last digit off by one (the scaling below is a double product,
 * exact to 1e-16) stays closer to x than to either neighbour.
 */
#include "fmtfloat.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 10^k for k = 0..60, each the double nearest to it. */
static const double p10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29,
	1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43,
	1e44, 1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57,
	1e58, 1e59, 1e60,
};

/* d * 10^k for k in [-60, 60]. */
static double scale(double d, int k)
{
	return k >= 0 ? d * p10[k] : d / p10[-k];
}

/* floor(log2 d) for a double d > 0 that came from a float, read off its bits. */
static int binary_exponent(double d)
{
	uint64_t bits;
	int e;

	memcpy(&bits, &d, sizeof(bits));
	e = (int)((bits >> 52) & 0x7FF) - 1023;
	return e;
}

/*
 * The nine digits of d > 0 as an integer in [1e8, 1e9), and the decimal
 * exponent of the first.  floor(e2 * log10 2), computed as e2 * 78913 >>
 * 18 (exact for |e2| < 1650), is never above floor(log10 d) and at most one
 * below it.  Ties go to even, as printf's do.
 */
static uint32_t nine_digits(double d, int *e10)
{
	int e2 = binary_exponent(d);
	uint64_t m;
	double v;

	*e10 = (e2 * 78913) >> 18;
	v = scale(d, 8 - *e10);
	if (v >= 999999999.5) {
		++*e10;
		v = scale(d, 8 - *e10);
	}
	m = (uint64_t)v;
	if (v - (double)m > 0.5 || (v - (double)m == 0.5 && (m & 1)))
		m++;
	if (m >= 1000000000) {
		++*e10;
		m = 100000000;
	}
	return (uint32_t)m;
}

static size_t put_exponent(char *p, int e)
{
	size_t n = 0;

	p[n++] = 'e';
	p[n++] = e < 0 ? '-' : '+';
	e = e < 0 ? -e : e;
	if (e >= 10)
		p[n++] = (char)('0' + e / 10);
	else
		p[n++] = '0';
	p[n++] = (char)('0' + e % 10);
	return n;
}

size_t sbx_fmt_float(char *buf, float x)
{
	char dig[9];
	size_t n = 0;
	int e10, nd = 9;
	uint32_t m;
	double d = x;

	if (signbit(d))
		buf[n++] = '-', d = -d;
	if (d == 0) {
		buf[n++] = '0';
		return n;
	}
	m = nine_digits(d, &e10);
	for (int i = 8; i >= 0; i--, m /= 10)
		dig[i] = (char)('0' + m % 10);
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	if (e10 < -4 || e10 >= 9) {
		buf[n++] = dig[0];
		if (nd > 1)
			buf[n++] = '.';
		for (int i = 1; i < nd; i++)
			buf[n++] = dig[i];
		return n + put_exponent(buf + n, e10);
	}
	if (e10 < 0) {
		buf[n++] = '0';
		buf[n++] = '.';
		for (int i = e10; i < -1; i++)
			buf[n++] = '0';
		for (int i = 0; i < nd; i++)
			buf[n++] = dig[i];
		return n;
	}
	for (int i = 0; i <= e10; i++)
		buf[n++] = i < nd ? dig[i] : '0';
	if (nd > e10 + 1)
		buf[n++] = '.';
	for (int i = e10 + 1; i < nd; i++)
		buf[n++] = dig[i];
	return n;
}
