/*
 * fuzz_chunker - the chunker's contract on arbitrary bytes.
 *
 * Input: byte 0 picks the chunk size (1..128 characters), byte 1 the
 * overlap (below the size), the rest is the text.  Any violation aborts:
 * an empty or oversized chunk, a chunk boundary inside a well-formed UTF-8
 * sequence, an overlap other than the one set, chunks that do not
 * concatenate back to the text once the overlaps are removed, a second
 * split that differs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/chunker.h"

/* Length of the well-formed sequence at p, 1 for a byte outside one
 * (Unicode table 3-7, written apart from the chunker's own decoder). */
static size_t wf_len(const uint8_t *p, size_t avail)
{
	uint8_t c = p[0];
	size_t n = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
	uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
	uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;

	if (n <= 1)
		return 1;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 1;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 1;
	return n;
}

static void check(const uint8_t *t, size_t len, size_t max, size_t ov, const long *at,
		  const struct ef_chunk *c, size_t n)
{
	size_t covered = 0;

	if ((n == 0) != (len == 0) || (n > 0 && c[0].offset != 0))
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t end = c[i].offset + c[i].length, b = c[i].offset;

		if (c[i].length == 0 || end > len || at[c[i].offset] < 0 || at[end] < 0)
			abort();
		if ((size_t)(at[end] - at[c[i].offset]) != c[i].chars || c[i].chars > max)
			abort();
		if (i + 1 < n && (size_t)(at[end] - at[c[i + 1].offset]) != ov)
			abort();
		if (i > 0) {
			for (size_t k = 0; k < ov; k++)
				for (b++; b < len && at[b] < 0; b++)
					;
			if (b != covered)
				abort();
		}
		if (memcmp(t + b, t + covered, end - b) != 0)
			abort();
		covered = end;
	}
	if (covered != len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ef_chunk *c = NULL, *c2 = NULL;
	struct ef_error err;
	size_t n, n2, max, ov, len;
	const uint8_t *t;
	long *at, k = 0;

	if (size < 2)
		return 0;
	max = 1 + data[0] % 128;
	ov = data[1] % max;
	t = data + 2;
	len = size - 2;
	at = malloc((len + 1) * sizeof(*at));
	if (!at)
		return 0;
	for (size_t b = 0; b < len;) {
		size_t s = wf_len(t + b, len - b);
		at[b] = k++;
		for (size_t i = 1; i < s; i++)
			at[b + i] = -1;
		b += s;
	}
	at[len] = k;
	ef_error_clear(&err);
	if (ef_chunk_split((const char *)t, len, max, ov, &c, &n, &err) != EF_OK ||
	    ef_chunk_split((const char *)t, len, max, ov, &c2, &n2, &err) != EF_OK || n != n2)
		abort();
	check(t, len, max, ov, at, c, n);
	for (size_t i = 0; i < n; i++)
		if (c[i].offset != c2[i].offset || c[i].length != c2[i].length || c[i].cut != c2[i].cut)
			abort();
	free(c);
	free(c2);
	free(at);
	return 0;
}
