/*
 * fuzz_ident - the checks of identifiers and collection names, the escaping
 * of a bad value echoed in a message, and the edit distance behind "did you
 * mean".
 *
 * Input: two strings split at the first NUL byte.  Any violation aborts:
 * - an accepted collection name or identifier holds no C0 or C1 control
 *   character and no DEL, is valid UTF-8, and is within its length limit;
 *   an identifier holds at most one dot, and none when unqualified;
 * - a refusal is a usage error whose message and hint are printable UTF-8
 *   (the value is echoed escaped, never raw);
 * - the escaped copy of any input is printable UTF-8 and fits its buffer;
 * - the edit distance is symmetric, 0 exactly for equal strings, and stays
 *   within max + 1.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/ident.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Independent of core's decoder: any control byte, DEL, an encoded C1
 * (C2 80..C2 9F) or a byte sequence that is not UTF-8. */
static bool clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
			 : (*p & 0xF8) == 0xF0 ? 4 : 0;

		if (n == 0 || *p < 0x20 || *p == 0x7F || *p == 0xC0 || *p == 0xC1 || *p > 0xF4)
			return false;
		if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
			return false;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xC0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

static void check_refusal(ef_status st, const struct ef_error *err)
{
	if (st != EF_ERR_USAGE || err->status != EF_ERR_USAGE || !err->msg[0])
		abort();
	if (!clean_utf8(err->msg) || !clean_utf8(err->hint))
		abort();
}

static void check_ident(const char *s, bool qualified)
{
	struct ef_error err;
	ef_status st;

	ef_error_clear(&err);
	st = ef_ident_check(s, qualified, "CHUNKS_TABLE", &err);
	if (st != EF_OK) {
		check_refusal(st, &err);
		return;
	}
	if (!clean_utf8(s) || !*s || (!qualified && strchr(s, '.')))
		abort();
	if (strchr(s, '.') && strchr(strchr(s, '.') + 1, '.'))
		abort();
	if (strlen(s) > 2 * EF_IDENT_MAX + 1)
		abort();
}

static void check_collection(const char *s)
{
	struct ef_error err;
	ef_status st;

	ef_error_clear(&err);
	st = ef_collection_name_check(s, &err);
	if (st != EF_OK) {
		check_refusal(st, &err);
		return;
	}
	if (!clean_utf8(s) || !*s || strlen(s) > EF_COLLECTION_NAME_MAX)
		abort();
	if (!ef_utf8_printable(s, strlen(s)))
		abort();
}

static void check_escape(const char *s)
{
	char small[17], big[4096];

	memset(small, 'x', sizeof(small));
	ef_escape_controls(s, small, sizeof(small) - 1);
	if (small[16] != 'x' || !memchr(small, '\0', 16) || !clean_utf8(small))
		abort();
	ef_escape_controls(s, big, sizeof(big));
	if (!clean_utf8(big))
		abort();
}

static void check_distance(const char *a, const char *b)
{
	size_t ab = ef_edit_distance(a, b, 8), ba = ef_edit_distance(b, a, 8);

	if (ab != ba || ab > 9 || (ab == 0) != (strcmp(a, b) == 0))
		abort();
	if (ef_edit_distance(a, a, 0) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a = malloc(size + 1), *b;
	size_t n;

	if (!a)
		return 0;
	memcpy(a, data, size);
	a[size] = '\0';
	n = strlen(a);
	b = n < size ? a + n + 1 : a + n;
	check_collection(a);
	check_ident(a, true);
	check_ident(a, false);
	check_escape(a);
	if (strlen(a) < 100 && strlen(b) < 100)
		check_distance(a, b);
	free(a);
	return 0;
}
