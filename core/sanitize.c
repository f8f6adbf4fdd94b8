/*
 * sanitize.c - control characters written as visible escapes.
 *
 * Escapes rather than deletion: an operator who sees "evil\x1b[2J" in a
 * collection name knows what the database holds, and one who sees "evil[2J"
 * does not.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/redact.h"
#include "embfill/sanitize.h"
#include "embfill/strbuf.h"

size_t ef_utf8_char(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n;
	uint32_t c;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2, c = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		n = 3, c = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0);
}

static void escape_one(struct ef_strbuf *out, uint32_t cp, bool json)
{
	if (cp == '\n')
		ef_strbuf_add(out, "\\n");
	else if (cp == '\t')
		ef_strbuf_add(out, "\\t");
	else if (cp == '\r')
		ef_strbuf_add(out, "\\r");
	else if (json || cp >= 0x80)
		ef_strbuf_addf(out, "\\u%04x", (unsigned)cp);
	else
		ef_strbuf_addf(out, "\\x%02x", (unsigned)cp);
}

char *ef_sanitize(const char *s, size_t len, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;
	struct ef_strbuf out = EF_STRBUF_INIT;
	bool json = flags & EF_SAN_JSON, lines = flags & EF_SAN_KEEP_LINES;
	size_t i = 0;

	ef_strbuf_add(&out, "");
	while (i < len) {
		uint32_t cp;
		size_t n = ef_utf8_char(p + i, len - i, &cp);

		if (n == 0) {
			if (json)
				ef_strbuf_add(&out, "\\ufffd");
			else
				ef_strbuf_addf(&out, "\\x%02x", p[i]);
			i++;
			continue;
		}
		if (is_control(cp) && !(lines && (cp == '\n' || cp == '\t')))
			escape_one(&out, cp, json);
		else
			ef_strbuf_addn(&out, s + i, n);
		i += n;
	}
	return ef_strbuf_take(&out);
}

static void add_clean(struct ef_strbuf *out, const char *s, size_t len)
{
	char *seg = strndup(s, len), *red = seg ? ef_redact(seg) : NULL;
	char *clean = red ? ef_sanitize(red, strlen(red), 0) : NULL;

	if (clean)
		ef_strbuf_add(out, clean);
	else
		out->oom = true;
	free(clean);
	free(red);
	free(seg);
}

/* Which bytes of the formatted text the format wrote itself: fmt is
 * formatted twice, once as it is and once with each of its control bytes
 * replaced by '#'.  Conversions do not depend on the literal text around
 * them, so both results have the same length and differ exactly where fmt
 * wrote a control byte; every other control byte came from a value. */
char *ef_safe_vformat(const char *fmt, va_list ap)
{
	struct ef_strbuf out = EF_STRBUF_INIT;
	char *plain = NULL, *marked = NULL, *mfmt = strdup(fmt);
	size_t start = 0;
	int n1, n2;
	va_list ap2;

	if (!mfmt)
		return NULL;
	for (char *p = mfmt; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = '#';
	va_copy(ap2, ap);
	n1 = vasprintf(&plain, fmt, ap);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n2 = vasprintf(&marked, mfmt, ap2);
#pragma GCC diagnostic pop
	va_end(ap2);
	free(mfmt);
	if (n1 < 0 || n2 < 0) {
		free(n1 < 0 ? NULL : plain);
		free(n2 < 0 ? NULL : marked);
		return NULL;
	}
	ef_strbuf_add(&out, "");
	for (size_t i = 0; n1 == n2 && i < (size_t)n1; i++) {
		if (plain[i] == marked[i])
			continue;
		add_clean(&out, plain + start, i - start);
		ef_strbuf_addn(&out, plain + i, 1);
		start = i + 1;
	}
	add_clean(&out, plain + start, (size_t)n1 - start);
	free(plain);
	free(marked);
	return ef_strbuf_take(&out);
}
