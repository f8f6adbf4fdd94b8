/*
 * Unit tests of names that reach SQL: identifier settings, collection names
 * and the edit distance behind "did you mean" hints.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "embfill/ident.h"

static struct ef_error err;

static ef_status ident(const char *name, bool qualified)
{
	ef_error_clear(&err);
	return ef_ident_check(name, qualified, "CHUNKS_TABLE", &err);
}

static ef_status coll(const char *name)
{
	ef_error_clear(&err);
	return ef_collection_name_check(name, &err);
}

static void assert_refused(const char *name, bool qualified, const char *why)
{
	cr_assert_eq(ident(name, qualified), EF_ERR_USAGE, "\"%s\" should be refused", name);
	cr_assert_eq(err.status, EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "CHUNKS_TABLE"), "names what: %s", err.msg);
	cr_assert(strstr(err.msg, why), "\"%s\": expected \"%s\" in: %s", name, why, err.msg);
	cr_assert_neq(err.hint[0], '\0', "a hint says what to do");
}

/* Fills buf with n copies of c; buf holds at least n + 1 bytes. */
static char *repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* --- identifiers --------------------------------------------------------- */

Test(ident, accepts_quotes_semicolons_backslashes_spaces_and_unicode)
{
	static const char *const ok[] = {
		"chunks", "Chunks \"Quoted\"", "x; DROP TABLE users; --", "back\\slash",
		"with space", "naïve_日本語", "emoji_🙂", "O'Brien", "1starts_with_digit",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(ident(ok[i], false), EF_OK, "\"%s\": %s", ok[i], err.msg);
		cr_assert_eq(ident(ok[i], true), EF_OK, "\"%s\": %s", ok[i], err.msg);
	}
	cr_assert_eq(ident("app.document_chunks", true), EF_OK, "%s", err.msg);
	cr_assert_eq(ident("\"My Schema\".\"My; Table\"", true), EF_OK, "%s", err.msg);
}

Test(ident, refuses_empty_names_and_empty_parts)
{
	assert_refused("", false, "empty");
	assert_refused("", true, "empty");
	cr_assert_eq(ident(NULL, true), EF_ERR_USAGE);
	assert_refused(".chunks", true, "empty name part");
	assert_refused("app.", true, "empty name part");
}

Test(ident, limits_each_part_to_63_bytes)
{
	char s63[64], s64[65], buf[200];
	const char *n63 = repeat(s63, 'a', 63), *n64 = repeat(s64, 'b', 64);

	cr_assert_eq(ident(n63, false), EF_OK, "%s", err.msg);
	assert_refused(n64, false, "64 bytes");
	snprintf(buf, sizeof(buf), "%s.%s", n63, n63);
	cr_assert_eq(ident(buf, true), EF_OK, "the limit is per part: %s", err.msg);
	snprintf(buf, sizeof(buf), "app.%s", n64);
	assert_refused(buf, true, "64 bytes");
	snprintf(buf, sizeof(buf), "%s.t", n64);
	assert_refused(buf, true, "64 bytes");
	/* 21 three-byte characters are 63 bytes; one more is 66 */
	strcpy(buf, "");
	for (int i = 0; i < 21; i++)
		strcat(buf, "日");
	cr_assert_eq(ident(buf, false), EF_OK, "bytes, not characters: %s", err.msg);
	strcat(buf, "日");
	assert_refused(buf, false, "66 bytes");
}

Test(ident, refuses_control_characters)
{
	assert_refused("tab\there", false, "control character");
	assert_refused("new\nline", false, "control character");
	assert_refused("esc\x1b[31m", false, "control character");
	assert_refused("del\x7f", false, "control character");
	assert_refused("c1\xc2\x85next", false, "control character");
	assert_refused("app.t\x01", true, "control character");
}

Test(ident, refuses_invalid_utf8)
{
	static const char *const bad[] = {
		"over\xc0\xaflong",         /* overlong '/' in two bytes */
		"over\xe0\x80\xaflong",     /* overlong '/' in three bytes */
		"over\xf0\x80\x80\xaflong", /* overlong '/' in four bytes */
		"sur\xed\xa0\x80rogate",    /* U+D800 */
		"sur\xed\xbf\xbfrogate",    /* U+DFFF */
		"big\xf4\x90\x80\x80",      /* U+110000 */
		"cut\xe6\x97",              /* truncated sequence */
		"lone\x80",                 /* continuation byte alone */
		"latin1 na\xefve",          /* ISO-8859-1 text */
		"\xff\xfe",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(bad[i], false, "invalid UTF-8");
	cr_assert_eq(ident("max\xf4\x8f\xbf\xbf", false), EF_OK, "U+10FFFF is valid: %s", err.msg);
	cr_assert_eq(ident("edge\xed\x9f\xbf", false), EF_OK, "U+D7FF is valid: %s", err.msg);
}

Test(ident, refuses_two_dots_and_a_dot_in_a_column)
{
	assert_refused("a.b.c", true, "more than one dot");
	assert_refused("a..b", true, "more than one dot");
	assert_refused("chunks.content", false, "holds a dot");
	assert_refused(".", false, "holds a dot");
}

Test(ident, utf8_printable_checks_exactly_the_given_length)
{
	cr_assert(ef_utf8_printable("abc", 3));
	cr_assert(ef_utf8_printable("", 0));
	cr_assert(ef_utf8_printable("ab\x01", 2), "the byte after len is not looked at");
	cr_assert_not(ef_utf8_printable("ab\x01", 3));
	cr_assert_not(ef_utf8_printable("\xe6\x97\xa5", 2), "a sequence cut by len is invalid");
	cr_assert(ef_utf8_printable("\xc2\xa0", 2), "U+00A0 is printable");
	cr_assert_not(ef_utf8_printable("\xc2\x9f", 2), "U+009F is a C1 control");
}

/* --- collection names ---------------------------------------------------- */

Test(ident, collection_name_accepts_what_operators_type)
{
	static const char *const ok[] = {
		"tenant_42", "ACME \"quoted\"; drop", "naïve-日本", "a", "docs/2024 Q3", "x.y.z",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert_eq(coll(ok[i]), EF_OK, "\"%s\": %s", ok[i], err.msg);
}

Test(ident, collection_name_refuses_empty)
{
	cr_assert_eq(coll(""), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
	cr_assert_neq(err.hint[0], '\0');
	cr_assert_eq(coll(NULL), EF_ERR_USAGE);
}

Test(ident, collection_name_of_10_kB_is_refused_with_its_length)
{
	static char sbig[10241], s200[201], s201[202];
	const char *big = repeat(sbig, 'k', 10240), *n200 = repeat(s200, 'n', 200);
	const char *n201 = repeat(s201, 'n', 201);

	cr_assert_eq(coll(big), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "10240 bytes"), "%s", err.msg);
	cr_assert(strlen(err.msg) < 200, "the message quotes only a little: %s", err.msg);
	cr_assert_eq(coll(n200), EF_OK, "%s", err.msg);
	cr_assert_eq(coll(n201), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "201 bytes"), "%s", err.msg);
}

Test(ident, collection_name_refuses_control_characters_and_bad_utf8)
{
	static const char *const bad[] = { "tenant\n42", "tenant\t42", "\x1b[2J", "x\x7f",
					   "over\xc0\xaf" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(coll(bad[i]), EF_ERR_USAGE, "entry %zu", i);
		cr_assert(strstr(err.msg, "control character"), "%s", err.msg);
	}
}

/* --- edit distance -------------------------------------------------------- */

Test(ident, edit_distance_known_values)
{
	cr_assert_eq(ef_edit_distance("kitten", "sitting", 10), 3);
	cr_assert_eq(ef_edit_distance("flaw", "lawn", 10), 2);
	cr_assert_eq(ef_edit_distance("", "abc", 10), 3);
	cr_assert_eq(ef_edit_distance("abc", "", 10), 3);
	cr_assert_eq(ef_edit_distance("", "", 0), 0);
	cr_assert_eq(ef_edit_distance("BATCH_SIZE", "BATCH_SIZE", 0), 0);
	cr_assert_eq(ef_edit_distance("BATCH_SIZ", "BATCH_SIZE", 3), 1);
	cr_assert_eq(ef_edit_distance("EMBED_MODLE", "EMBED_MODEL", 3), 2);
	cr_assert_eq(ef_edit_distance("kitten", "sitting", 3), 3, "exactly max is returned");
}

Test(ident, edit_distance_stops_early_at_max_plus_one)
{
	cr_assert_eq(ef_edit_distance("kitten", "sitting", 2), 3);
	cr_assert_eq(ef_edit_distance("abcdef", "uvwxyz", 2), 3);
	cr_assert_eq(ef_edit_distance("a", "abcdefgh", 3), 4, "length gap alone exceeds max");
	cr_assert_eq(ef_edit_distance("DATABASE_URL", "COLLECTIONS_NAME_COLUMN", 3), 4);
	cr_assert_eq(ef_edit_distance("abc", "abd", 0), 1);
	cr_assert_eq(ef_edit_distance("abc", "bcda", 1), 2, "3 is over max even without early stop");
}
