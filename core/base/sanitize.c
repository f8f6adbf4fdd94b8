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
