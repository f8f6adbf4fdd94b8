/*
 * fuzz_float_scan - the JSON number scanner against strtof, and the walk
 * that lifts arrays of numbers out of a body.
 *
 * Input: any bytes.  Whatever ef_wire_number reads at the start must be a
 * number cJSON also reads, and its float must be bit for bit what strtof_l
 * gives in the "C" locale for the same characters, strtof consuming all of
 * them.  Then the whole input is walked as a body: every lifted array must
 * have its floats inside the buffer, and the skeleton must be no bigger
 * than the body plus its markers.
 */
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/service/embed_wire.h"

static locale_t c_locale;

static void check_number(const char *s, size_t size)
{
	float got, want;
	size_t n = ef_wire_number(s, s + size, &got);
	char *tok, *end;
	const char *cend = NULL;
	cJSON *c;
	uint32_t a, b;

	if (n == 0)
		return;
	if (n > size)
		abort();
	tok = malloc(n + 1);
	memcpy(tok, s, n);
	tok[n] = '\0';
	want = strtof_l(tok, &end, c_locale);
	if ((size_t)(end - tok) != n)
		abort();
	memcpy(&a, &got, sizeof(a));
	memcpy(&b, &want, sizeof(b));
	if (a != b)
		abort();
	c = cJSON_ParseWithLengthOpts(tok, n, &cend, 0);
	if (!cJSON_IsNumber(c) || cend != tok + n)
		abort();
	cJSON_Delete(c);
	free(tok);
}

static void check_walk(const char *s, size_t size)
{
	struct ef_wire_scan sc;

	if (ef_wire_scan(s, size, size % 64, &sc) == EF_WIRE_OK) {
		for (size_t i = 0; i < sc.nrows; i++)
			if (sc.rows[i].len == 0 || sc.rows[i].off + sc.rows[i].len > sc.nfloats)
				abort();
		if (sc.skel_len > size + 24 * sc.nrows || strlen(sc.skel) != sc.skel_len)
			abort();
	}
	ef_wire_scan_release(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!c_locale)
		c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	check_number((const char *)data, size);
	check_walk((const char *)data, size);
	return 0;
}
