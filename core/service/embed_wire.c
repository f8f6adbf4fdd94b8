/*
 * embed_wire.c - numbers and base64 of embedding answers, without a tree.
 *
 * A batch of 100 vectors of 768 dimensions is 76,800 decimal numbers.
 * Through cJSON each costs a node (a malloc), a copy and a strtod that
 * looks up the locale's decimal point; here each is read once, in place,
 * straight into the float buffer the caller hands back.
 */
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_wire.h"

/* The fast path's arithmetic must be plain IEEE double, as on x86-64 and arm64. */
_Static_assert(FLT_EVAL_METHOD == 0, "double arithmetic must not use extended precision");

/* --- numbers -------------------------------------------------------------- */

static pthread_once_t c_once = PTHREAD_ONCE_INIT;
static locale_t c_loc;

static void make_c_locale(void)
{
	c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/*
 * The console sets the user's locale for wide characters, and strtof reads
 * "0.5" as 0 in a locale whose decimal point is a comma: the conversion
 * goes through a "C" locale of its own, made once.
 */
static float strtof_c(const char *s, size_t n)
{
	char small[64];
	char *t = n < sizeof(small) ? small : malloc(n + 1);
	float f;

	pthread_once(&c_once, make_c_locale);
	if (!t || c_loc == (locale_t)0) {
		if (t != small)
			free(t);
		return NAN;
	}
	memcpy(t, s, n);
	t[n] = '\0';
	f = strtof_l(t, NULL, c_loc);
	if (t != small)
		free(t);
	return f;
}

static const double pow10_exact[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/*
 * Clinger's fast path, computed in double: when the significand w fits in
 * 53 bits and |e| <= 22, w and 10^|e| are exact doubles, so one IEEE
 * multiplication or division gives the double nearest to w * 10^e.  Going
 * on to float rounds twice, which differs from rounding once only when
 * that double is itself halfway between two floats: then the low 29 of
 * its 52 fraction bits are exactly 1 followed by zeros, and strtof decides.
 * The range (1e-22 to 9e37) keeps every result a normal float.
 */
static bool fast_path(uint64_t w, long e, float *out)
{
	double r;
	uint64_t bits;

	if (w > (UINT64_C(1) << 53) || e < -22 || e > 22)
		return false;
	r = e >= 0 ? (double)w * pow10_exact[e] : (double)w / pow10_exact[-e];
	memcpy(&bits, &r, sizeof(bits));
	if ((bits & UINT64_C(0x1FFFFFFF)) == UINT64_C(0x10000000))
		return false;
	*out = (float)r;
	return true;
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* What may follow a number in JSON. */
static inline bool ends_number(char c)
{
	return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' ||
	       c == '\r';
}

static inline const char *exponent(const char *p, const char *end, long *e)
{
	bool neg = false;
	long x = 0;

	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	if (p >= end || !is_digit(*p))
		return NULL;
	for (; p < end && is_digit(*p); p++)
		if (x < 100000)
			x = x * 10 + (*p - '0');
	*e += neg ? -x : x;
	return p;
}

/*
 * The grammar of RFC 8259 section 6, read once.  Every digit goes into w,
 * leading zeros of the fraction included (they leave it unchanged), so w
 * is exact while there are at most 19 digits; with more, w wraps and the
 * number goes to strtof whole.
 */
static inline size_t scan_number(const char *s, const char *end, float *out)
{
	const char *p = s, *digits;
	uint64_t w = 0;
	long e = 0;
	size_t nd;
	bool neg = false;

	if (p < end && *p == '-')
		neg = true, p++;
	if (p >= end || !is_digit(*p))
		return 0;
	digits = p;
	if (*p == '0')
		p++;
	else
		for (; p < end && is_digit(*p); p++)
			w = w * 10 + (uint64_t)(*p - '0');
	nd = (size_t)(p - digits);
	if (p < end && *p == '.') {
		digits = ++p;
		for (; p < end && is_digit(*p); p++)
			w = w * 10 + (uint64_t)(*p - '0');
		if (p == digits)
			return 0;
		e = -(long)(p - digits);
		nd += (size_t)(p - digits);
	}
	if (p < end && (*p == 'e' || *p == 'E') && !(p = exponent(p + 1, end, &e)))
		return 0;
	if (p < end && !ends_number(*p))
		return 0;
	if (nd > 19 || !fast_path(w, e, out))
		*out = strtof_c(s, (size_t)(p - s));
	else if (neg)
		*out = -*out;
	return (size_t)(p - s);
}

size_t ef_wire_number(const char *s, const char *end, float *out)
{
	return scan_number(s, end, out);
}

/* --- base64 --------------------------------------------------------------- */

#define NOT64 0x80u

static const unsigned char b64_value[256] = {
#define R8(x) x, x, x, x, x, x, x, x
	R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64),
	NOT64, NOT64, NOT64, 62, NOT64, NOT64, NOT64, 63,              /* ( ) * + , - . / */
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61,                        /* 0-9 */
	NOT64, NOT64, NOT64, NOT64, NOT64, NOT64, NOT64,               /* : ; < = > ? @ */
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,      /* A-Q */
	17, 18, 19, 20, 21, 22, 23, 24, 25,                            /* R-Z */
	NOT64, NOT64, NOT64, NOT64, NOT64, NOT64,                      /* [ \ ] ^ _ ` */
	26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, /* a-q */
	43, 44, 45, 46, 47, 48, 49, 50, 51,                            /* r-z */
	NOT64, NOT64, NOT64, NOT64, NOT64,                             /* { | } ~ DEL */
	R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64),
	R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64), R8(NOT64),
#undef R8
};

_Static_assert(sizeof(b64_value) == 256, "one entry per byte");

static size_t padding(const char *s, size_t len)
{
	if (len < 4 || s[len - 1] != '=')
		return 0;
	return s[len - 2] == '=' ? 2 : 1;
}

long ef_wire_base64_size(const char *s, size_t len)
{
	if (len % 4 != 0 || len / 4 > (size_t)(LONG_MAX / 3))
		return -1;
	return (long)(len / 4 * 3 - padding(s, len));
}

int ef_wire_base64_decode(const char *s, size_t len, unsigned char *out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t pad = padding(s, len), quads = len / 4 - (pad ? 1 : 0);
	unsigned bad = 0;
	uint32_t a, b, c, d;

	if (len % 4 != 0)
		return -1;
	for (size_t q = 0; q < quads; q++, u += 4, out += 3) {
		a = b64_value[u[0]], b = b64_value[u[1]], c = b64_value[u[2]], d = b64_value[u[3]];
		bad |= a | b | c | d;
		a = a << 18 | b << 12 | c << 6 | d;
		out[0] = (unsigned char)(a >> 16);
		out[1] = (unsigned char)(a >> 8);
		out[2] = (unsigned char)a;
	}
	if (pad == 0)
		return bad & NOT64 ? -1 : 0;
	a = b64_value[u[0]], b = b64_value[u[1]];
	c = pad == 1 ? b64_value[u[2]] : 0;
	bad |= a | b | c;
	out[0] = (unsigned char)(a << 2 | b >> 4);
	if (pad == 1)
		out[1] = (unsigned char)(b << 4 | c >> 2);
	if (pad == 1 ? c & 3 : b & 15)
		return -1;
	return bad & NOT64 ? -1 : 0;
}

void ef_wire_floats_le_to_host(float *v, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (size_t i = 0; i < n; i++) {
		uint32_t x;

		memcpy(&x, &v[i], sizeof(x));
		x = __builtin_bswap32(x);
		memcpy(&v[i], &x, sizeof(x));
	}
#else
	(void)v, (void)n;
#endif
}

/* --- the walk ------------------------------------------------------------- */

static int grow(void **buf, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (c < need) {
		if (c > SIZE_MAX / 2 / size)
			return -1;
		c *= 2;
	}
	p = realloc(*buf, c * size);
	if (!p)
		return -1;
	*buf = p;
	*cap = c;
	return 0;
}

struct walk {
	const char *p, *end;
	struct ef_wire_scan *sc;
	size_t skel_cap;
};

static int emit(struct walk *w, const char *s, size_t n)
{
	struct ef_wire_scan *sc = w->sc;

	if (grow((void **)&sc->skel, &w->skel_cap, sc->skel_len + n + 1, 1) != 0)
		return -1;
	memcpy(sc->skel + sc->skel_len, s, n);
	sc->skel_len += n;
	sc->skel[sc->skel_len] = '\0';
	return 0;
}

static inline bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && blank(*p))
		p++;
	return p;
}

static inline bool starts_number(const char *p, const char *end)
{
	return p < end && (*p == '-' || is_digit(*p));
}

/* "[k]" for the array of numbers just lifted out. */
static int emit_marker(struct walk *w, size_t k)
{
	char buf[32];
	size_t n = sizeof(buf);

	buf[--n] = ']';
	do
		buf[--n] = (char)('0' + k % 10);
	while ((k /= 10) != 0);
	buf[--n] = '[';
	return emit(w, buf + n, sizeof(buf) - n);
}

enum lift { LIFTED, NOT_NUMBERS, BAD_NUMBER, NO_MEMORY };

static enum lift push_row(struct walk *w, size_t off)
{
	struct ef_wire_scan *sc = w->sc;

	if (grow((void **)&sc->rows, &sc->rcap, sc->nrows + 1, sizeof(*sc->rows)) != 0)
		return NO_MEMORY;
	sc->rows[sc->nrows].off = off;
	sc->rows[sc->nrows].len = sc->nfloats - off;
	return emit_marker(w, sc->nrows++) == 0 ? LIFTED : NO_MEMORY;
}

/*
 * At a '[': reads the array as numbers straight into the float buffer.
 * Anything else in it (a string, a nested array, a stray comma) puts the
 * floats back and leaves the array to be copied as it is.
 */
static enum lift lift_numbers(struct walk *w)
{
	struct ef_wire_scan *sc = w->sc;
	const char *p = skip_blanks(w->p + 1, w->end);
	size_t mark = sc->nfloats, n;

	if (!starts_number(p, w->end))
		return NOT_NUMBERS;
	for (;;) {
		if (sc->nfloats == sc->fcap &&
		    grow((void **)&sc->floats, &sc->fcap, sc->nfloats + 1, sizeof(float)) != 0)
			return NO_MEMORY;
		n = scan_number(p, w->end, &sc->floats[sc->nfloats]);
		if (n == 0)
			return BAD_NUMBER;
		sc->nfloats++;
		p = skip_blanks(p + n, w->end);
		if (p < w->end && *p == ']') {
			w->p = p + 1;
			return push_row(w, mark);
		}
		if (p >= w->end || *p != ',')
			break;
		p = skip_blanks(p + 1, w->end);
		if (!starts_number(p, w->end))
			break;
	}
	sc->nfloats = mark;
	return NOT_NUMBERS;
}

/*
 * The end of the string opening at p, or NULL on a raw control character,
 * escaped or not (JSON wants them written as \uXXXX; cJSON would let them
 * through).  An unterminated
 * string runs to the end, where cJSON will refuse it.
 */
static const char *string_end(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c == '\\' && ++p >= end)
			break;
		if ((unsigned char)*p < 0x20)
			return NULL;
	}
	return end;
}

static enum ef_wire_rc copy_token(struct walk *w)
{
	const char *p = w->p, *q;
	float ignored;
	size_t n;

	if (*p == '"') {
		if (!(q = string_end(p, w->end)))
			return EF_WIRE_MALFORMED;
	} else if (starts_number(p, w->end)) {
		if ((n = scan_number(p, w->end, &ignored)) == 0)
			return EF_WIRE_MALFORMED;
		q = p + n;
	} else if ((unsigned char)*p < 0x20 && !blank(*p)) {
		return EF_WIRE_MALFORMED;
	} else {
		q = p + 1;
	}
	w->p = q;
	return emit(w, p, (size_t)(q - p)) == 0 ? EF_WIRE_OK : EF_WIRE_NOMEM;
}

enum ef_wire_rc ef_wire_scan(const char *body, size_t len, size_t float_hint,
			     struct ef_wire_scan *sc)
{
	struct walk w = { body, body + len, sc, 0 };
	enum ef_wire_rc rc = EF_WIRE_OK;

	memset(sc, 0, sizeof(*sc));
	if (float_hint && grow((void **)&sc->floats, &sc->fcap, float_hint, sizeof(float)) != 0)
		return EF_WIRE_NOMEM;
	if (emit(&w, "", 0) != 0)
		return EF_WIRE_NOMEM;
	while (rc == EF_WIRE_OK && w.p < w.end) {
		enum lift l = *w.p == '[' ? lift_numbers(&w) : NOT_NUMBERS;

		if (l == LIFTED)
			continue;
		if (l == BAD_NUMBER)
			rc = EF_WIRE_MALFORMED;
		else if (l == NO_MEMORY)
			rc = EF_WIRE_NOMEM;
		else
			rc = copy_token(&w);
	}
	return rc;
}

void ef_wire_scan_release(struct ef_wire_scan *sc)
{
	free(sc->skel);
	free(sc->floats);
	free(sc->rows);
	memset(sc, 0, sizeof(*sc));
}
