/*
 * Unit tests of the terminal sanitiser: control characters from values
 * become visible escapes, UTF-8 text stays as it is, the format's own
 * newlines stay, and JSON stays JSON.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/redact.h"
#include "embfill/sanitize.h"

static void setup(void)
{
	ef_redact_reset();
}

TestSuite(sanitize, .init = setup, .fini = setup);

static void assert_sanitizes(const char *in, size_t len, unsigned flags, const char *want)
{
	char *got = ef_sanitize(in, len, flags), copy[512];

	cr_assert_not_null(got);
	snprintf(copy, sizeof(copy), "%s", got);
	free(got);
	cr_assert_str_eq(copy, want);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	s = ef_safe_vformat(f, ap);
	va_end(ap);
	cr_assert_not_null(s);
	return s;
}

static void assert_fmt(char *got, const char *want)
{
	char copy[512];

	snprintf(copy, sizeof(copy), "%s", got);
	free(got);
	cr_assert_str_eq(copy, want);
}

Test(sanitize, terminal_controls_become_visible_escapes)
{
	static const char evil[] = "evil\x1b[2J\x1b]0;pwned\x07 del\x7f csi\xc2\x9b" "6n";

	assert_sanitizes(evil, strlen(evil), 0,
			 "evil\\x1b[2J\\x1b]0;pwned\\x07 del\\x7f csi\\u009b6n");
	assert_sanitizes("a\nb\tc\rd", 7, 0, "a\\nb\\tc\\rd");
	assert_sanitizes("nul\0x", 5, 0, "nul\\x00x");
}

Test(sanitize, bytes_that_are_not_utf8_become_escapes)
{
	assert_sanitizes("raw csi \x9b[2J", 12, 0, "raw csi \\x9b[2J");
	assert_sanitizes("cut \xe6\x97", 6, 0, "cut \\xe6\\x97");
	assert_sanitizes("overlong \xc0\xaf", 11, 0, "overlong \\xc0\\xaf");
	assert_sanitizes("surrogate \xed\xa0\x80", 13, 0, "surrogate \\xed\\xa0\\x80");
}

Test(sanitize, printable_utf8_is_left_alone)
{
	static const char text[] = "naïve 日本 — café \xf0\x9f\x98\x80 \\x1b stays";

	assert_sanitizes(text, strlen(text), 0, text);
	assert_sanitizes("", 0, 0, "");
}

Test(sanitize, keep_lines_keeps_newlines_and_tabs_only)
{
	assert_sanitizes("a\nb\tc\x1b\r", 7, EF_SAN_KEEP_LINES, "a\nb\tc\\x1b\\r");
}

Test(sanitize, json_mode_keeps_the_document_valid_and_its_strings_exact)
{
	cJSON *o = cJSON_CreateObject(), *back;
	char *doc, *safe;

	cJSON_AddStringToObject(o, "name", "evil\x1b[2J\x07 csi\xc2\x9b del\x7f");
	doc = cJSON_Print(o);
	safe = ef_sanitize(doc, strlen(doc), EF_SAN_KEEP_LINES | EF_SAN_JSON);
	for (const char *p = safe; *p; p++)
		cr_assert(*p == '\n' || *p == '\t' || ((unsigned char)*p >= 0x20 && *p != 0x7f &&
						       (unsigned char)*p != 0xc2),
			  "raw control in %s", safe);
	back = cJSON_Parse(safe);
	cr_assert_not_null(back, "not JSON: %s", safe);
	cr_expect_str_eq(cJSON_GetObjectItem(back, "name")->valuestring,
			 "evil\x1b[2J\x07 csi\xc2\x9b del\x7f");
	cJSON_Delete(back);
	free(safe);
	free(doc);
	cJSON_Delete(o);
	assert_sanitizes("\"\xff\"", 3, EF_SAN_JSON, "\"\\ufffd\"");
}

/* The format's newline is the caller's; the one in the value is data. */
Test(sanitize, safe_format_keeps_the_formats_own_controls_only)
{
	assert_fmt(fmt("row %s\n", "evil\x1b[2J"), "row evil\\x1b[2J\n");
	assert_fmt(fmt("%s\n", "forged\nembfill: all ok"), "forged\\nembfill: all ok\n");
	assert_fmt(fmt("\r%5.1f%%\t%s\n", 12.5, "a\tb\r"), "\r 12.5%\ta\\tb\\r\n");
	assert_fmt(fmt("%c%c|%s", '\n', 'x', "\n"), "\\nx|\\n");
	assert_fmt(fmt("%s", ""), "");
	assert_fmt(fmt("plain %d", 7), "plain 7");
}

Test(sanitize, safe_format_redacts_too)
{
	ef_redact_add_secret("sk-live-0123456789abcdef");
	assert_fmt(fmt("key %s\nnext %s\n", "sk-live-0123456789abcdef", "https://u:pw@h/x"),
		   "key ***\nnext https://h/x\n");
}

Test(sanitize, utf8_char_decodes_and_refuses)
{
	uint32_t cp = 0;

	cr_expect_eq(ef_utf8_char((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
	cr_expect_eq(cp, 0xe9);
	cr_expect_eq(ef_utf8_char((const unsigned char *)"\xc2\x9b", 2, &cp), 2);
	cr_expect_eq(cp, 0x9b);
	cr_expect_eq(ef_utf8_char((const unsigned char *)"\xc3", 1, &cp), 0);
	cr_expect_eq(ef_utf8_char((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), 0);
	cr_expect_eq(ef_utf8_char((const unsigned char *)"x", 0, &cp), 0);
}
