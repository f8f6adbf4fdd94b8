/*
 * fuzz_sanitize - the terminal sanitiser (ef_sanitize) and the formatting
 * every printer goes through (ef_safe_vformat).
 *
 * Input: any bytes, NULs included.  Any violation aborts:
 * - the output of each mode is valid UTF-8 without C0 or C1 control
 *   characters or DEL, except \n and \t where the mode keeps lines; it is
 *   the same when asked twice, and input that needs no escape comes out
 *   unchanged;
 * - JSON mode keeps a JSON document valid and its strings exact: the input
 *   as a cJSON string, printed, sanitised and parsed again, is the input
 *   (bytes that are not UTF-8 become U+FFFD);
 * - formatting "%s\n%s" with the two halves of the input keeps exactly the
 *   format's newline: no newline of the values reaches the output.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/redact.h"
#include "embfill/sanitize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Strict UTF-8, written apart from core's decoder; *ctl tells whether a
 * control character (C0, DEL, C1) was seen other than those in keep. */
static bool utf8_ok(const unsigned char *p, size_t len, const char *keep, bool *ctl)
{
	*ctl = false;
	for (size_t i = 0; i < len;) {
		uint32_t c = p[i];
		size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
			 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;

		if (n == 0 || i + n > len)
			return false;
		c = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			c = (c << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
		    (c >= 0xD800 && c <= 0xDFFF))
			return false;
		if ((c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0)) &&
		    !(c && c < 0x80 && strchr(keep, (int)c)))
			*ctl = true;
		i += n;
	}
	return true;
}

static char *sanitized(const uint8_t *data, size_t size, unsigned flags, const char *keep)
{
	char *out = ef_sanitize((const char *)data, size, flags);
	char *again = ef_sanitize((const char *)data, size, flags);
	bool ctl;

	if (!out || !again || strcmp(out, again) != 0)
		abort();
	if (!utf8_ok((const unsigned char *)out, strlen(out), keep, &ctl) || ctl)
		abort();
	free(again);
	return out;
}

static void check_clean_input_unchanged(const uint8_t *data, size_t size, const char *out,
					const char *keep)
{
	bool ctl;

	if (utf8_ok(data, size, keep, &ctl) && !ctl && !memchr(data, '\0', size) &&
	    (strlen(out) != size || memcmp(out, data, size) != 0))
		abort();
}

/* The input as a JSON string survives sanitising exactly. */
static void check_json(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size), *doc, *safe;
	cJSON *str, *back;
	bool ctl;

	if (!s)
		return;
	str = cJSON_CreateString(s);
	doc = str ? cJSON_Print(str) : NULL;
	if (!doc) {
		cJSON_Delete(str);
		free(s);
		return;
	}
	safe = sanitized((const uint8_t *)doc, strlen(doc), EF_SAN_KEEP_LINES | EF_SAN_JSON, "\n\t");
	back = cJSON_ParseWithLength(safe, strlen(safe));
	if (!cJSON_IsString(back))
		abort();
	if (utf8_ok((const unsigned char *)s, strlen(s), "", &ctl) &&
	    strcmp(back->valuestring, s) != 0)
		abort();
	cJSON_Delete(back);
	free(safe);
	free(doc);
	cJSON_Delete(str);
	free(s);
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = ef_safe_vformat(fmt, ap);
	va_end(ap);
	return s;
}

static void check_format(const uint8_t *data, size_t size)
{
	char *a = strndup((const char *)data, size), *b, *out, *nl;
	size_t half = strlen(a ? a : "") / 2;
	bool ctl;

	if (!a)
		return;
	b = strdup(a + half);
	a[half] = '\0';
	out = b ? format("%s\n%s", a, b) : NULL;
	if (!out)
		abort();
	nl = strchr(out, '\n');
	if (!nl || strchr(nl + 1, '\n'))
		abort();
	if (!utf8_ok((const unsigned char *)out, strlen(out), "\n", &ctl) || ctl)
		abort();
	free(out);
	free(b);
	free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *plain = sanitized(data, size, 0, "");
	char *lines = sanitized(data, size, EF_SAN_KEEP_LINES, "\n\t");
	char *json = sanitized(data, size, EF_SAN_JSON, "");

	check_clean_input_unchanged(data, size, plain, "");
	check_clean_input_unchanged(data, size, lines, "\n\t");
	free(json);
	free(lines);
	free(plain);
	if (size < 4096) {
		check_json(data, size);
		check_format(data, size);
	}
	return 0;
}
