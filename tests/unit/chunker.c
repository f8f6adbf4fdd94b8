/*
 * Unit and property tests of the chunker.  The properties are checked with
 * a UTF-8 decoder of the test's own (table 3-7 of the Unicode standard), so
 * a bug in the chunker's decoder is not excused by the same bug here.
 * Generated documents come from a fixed-seed generator: every run checks
 * the same thousands of documents, and a failure names its seed.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/chunker.h"

/* --- an independent decoder -------------------------------------------- */

/* Length of a well-formed sequence at p, 0 when ill-formed (Unicode table 3-7). */
static size_t wf_len(const unsigned char *p, size_t avail)
{
	static const struct { unsigned char a, b, lo1, hi1; size_t n; } rows[] = {
		{ 0x00, 0x7F, 0, 0, 1 },       { 0xC2, 0xDF, 0x80, 0xBF, 2 },
		{ 0xE0, 0xE0, 0xA0, 0xBF, 3 }, { 0xE1, 0xEC, 0x80, 0xBF, 3 },
		{ 0xED, 0xED, 0x80, 0x9F, 3 }, { 0xEE, 0xEF, 0x80, 0xBF, 3 },
		{ 0xF0, 0xF0, 0x90, 0xBF, 4 }, { 0xF1, 0xF3, 0x80, 0xBF, 4 },
		{ 0xF4, 0xF4, 0x80, 0x8F, 4 },
	};

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		if (p[0] < rows[r].a || p[0] > rows[r].b)
			continue;
		if (rows[r].n == 1)
			return 1;
		if (avail < rows[r].n || p[1] < rows[r].lo1 || p[1] > rows[r].hi1)
			return 0;
		for (size_t i = 2; i < rows[r].n; i++)
			if ((p[i] & 0xC0) != 0x80)
				return 0;
		return rows[r].n;
	}
	return 0;
}

/* charat[b] = index of the character starting at byte b, or -1 inside a
 * sequence; charat[len] = number of characters.  Caller frees. */
static long *char_index(const char *text, size_t len)
{
	long *at = malloc((len + 1) * sizeof(*at));
	long c = 0;
	size_t b = 0, n;

	cr_assert_not_null(at);
	while (b < len) {
		n = wf_len((const unsigned char *)text + b, len - b);
		if (n == 0)
			n = 1;
		at[b] = c++;
		for (size_t i = 1; i < n; i++)
			at[b + i] = -1;
		b += n;
	}
	at[len] = c;
	return at;
}

static bool space_byte(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* --- the properties ---------------------------------------------------- */

struct doc {
	const char *text;
	size_t len;
	size_t max, overlap;
	const char *label;  /* names the document in failures */
};

static void check_coverage(const struct doc *d, const struct ef_chunk *c, size_t n,
			   const long *at)
{
	char *joined = malloc(d->len + 1);
	size_t jl = 0;

	cr_assert_not_null(joined);
	for (size_t i = 0; i < n; i++) {
		size_t skip = 0, b = c[i].offset;

		/* the first `overlap` characters of every chunk but the first repeat
		 * the previous chunk's last ones */
		while (i > 0 && skip < d->overlap) {
			b++;
			while (b < d->len && at[b] < 0)
				b++;
			skip++;
		}
		cr_assert_leq(b, c[i].offset + c[i].length, "%s: chunk %zu shorter than the overlap",
			      d->label, i);
		memcpy(joined + jl, d->text + b, c[i].offset + c[i].length - b);
		jl += c[i].offset + c[i].length - b;
		cr_assert_leq(jl, d->len, "%s: chunks add up to more than the text", d->label);
	}
	cr_assert_eq(jl, d->len, "%s: chunks without overlaps hold %zu of %zu bytes", d->label,
		     jl, d->len);
	cr_assert(memcmp(joined, d->text, d->len) == 0,
		  "%s: chunks without overlaps do not concatenate to the text", d->label);
	free(joined);
}

static void check_chunk(const struct doc *d, const struct ef_chunk *c, size_t i, size_t n,
			const long *at)
{
	size_t end = c[i].offset + c[i].length;

	cr_assert_gt(c[i].length, 0, "%s: chunk %zu is empty", d->label, i);
	cr_assert_leq(end, d->len, "%s: chunk %zu runs past the text", d->label, i);
	cr_assert_geq(at[c[i].offset], 0, "%s: chunk %zu starts inside a UTF-8 sequence",
		      d->label, i);
	cr_assert_geq(at[end], 0, "%s: chunk %zu ends inside a UTF-8 sequence", d->label, i);
	cr_assert_eq((size_t)(at[end] - at[c[i].offset]), c[i].chars,
		     "%s: chunk %zu says %zu characters", d->label, i, c[i].chars);
	cr_assert_leq(c[i].chars, d->max, "%s: chunk %zu has %zu characters, more than %zu",
		      d->label, i, c[i].chars, d->max);
	cr_assert_eq(c[i].cut == EF_CUT_END, i == n - 1,
		     "%s: only the last chunk ends at the end", d->label);
	if (i + 1 < n)
		cr_assert_eq((size_t)(at[end] - at[c[i + 1].offset]), d->overlap,
			     "%s: chunks %zu and %zu share %ld characters, not %zu", d->label, i,
			     i + 1, at[end] - at[c[i + 1].offset], d->overlap);
}

/* A word is cut only when nothing past the overlap was whitespace. */
static void check_cut(const struct doc *d, const struct ef_chunk *c, const long *at)
{
	size_t end = c->offset + c->length, b, skipped = 0;

	if (c->cut == EF_CUT_WORD || c->cut == EF_CUT_PARAGRAPH)
		cr_assert(space_byte((unsigned char)d->text[end - 1]),
			  "%s: a %s cut after a non-space", d->label, ef_chunk_cut_name(c->cut));
	if (c->cut == EF_CUT_PARAGRAPH)
		cr_assert(memmem(d->text + c->offset, c->length, "\n", 1) != NULL &&
				  d->text[end - 1] == '\n', "%s: a paragraph cut not after a newline",
			  d->label);
	if (c->cut != EF_CUT_HARD)
		return;
	cr_assert_eq(c->chars, d->max, "%s: a hard cut before the window's end", d->label);
	for (b = c->offset; b < end; b++) {
		if (at[b] < 0)
			continue;
		if (skipped++ < d->overlap)
			continue;
		cr_assert(!space_byte((unsigned char)d->text[b]),
			  "%s: a hard cut although byte %zu is whitespace", d->label, b);
	}
}

/* How many chunks of each cut the checks saw, so that a test can tell
 * whether its documents exercised every kind of boundary. */
static size_t seen_cuts[EF_CUT_HARD + 1];

static void check_doc(const struct doc *d)
{
	struct ef_chunk *c = NULL, *again = NULL;
	struct ef_error err;
	size_t n = 0, n2 = 0;
	long *at = char_index(d->text, d->len);

	ef_error_clear(&err);
	cr_assert_eq(ef_chunk_split(d->text, d->len, d->max, d->overlap, &c, &n, &err), EF_OK,
		     "%s: %s", d->label, err.msg);
	cr_assert_eq(n == 0, d->len == 0, "%s: %zu chunks of %zu bytes", d->label, n, d->len);
	if (n > 0)
		cr_assert_eq(c[0].offset, 0, "%s: the first chunk does not start the text", d->label);
	for (size_t i = 0; i < n; i++) {
		check_chunk(d, c, i, n, at);
		check_cut(d, &c[i], at);
		seen_cuts[c[i].cut]++;
	}
	check_coverage(d, c, n, at);
	cr_assert_eq(ef_chunk_split(d->text, d->len, d->max, d->overlap, &again, &n2, &err), EF_OK);
	cr_assert_eq(n2, n, "%s: a second split gives %zu chunks, not %zu", d->label, n2, n);
	for (size_t i = 0; i < n; i++)
		cr_assert(c[i].offset == again[i].offset && c[i].length == again[i].length &&
				  c[i].chars == again[i].chars && c[i].cut == again[i].cut,
			  "%s: a second split differs at chunk %zu", d->label, i);
	free(again);
	free(c);
	free(at);
}

/* --- generated documents ----------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static const char *const words[] = {
	"the", "embedding", "of", "a", "chunk", "is", "missing", "naïve", "café", "日本語の",
	"文章", "Ελληνικά", "русский", "emoji😀", "🦀🦀", "e.g.", "vector(512)", "\"quoted\"",
	"U+10FFFF\xf4\x8f\xbf\xbf", "tab\there", "x",
};
static const char *const ends[] = { ".", "!", "?", ".\"", ".)", "。", "？", ":", ";", "" };

static void add(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n < cap) {
		memcpy(buf + *len, s, n);
		*len += n;
	}
}

/* A document of paragraphs of sentences of words, with now and then a
 * long unbroken word, a run of blanks or a line of spaces between
 * paragraphs.  Always valid UTF-8. */
static size_t gen_doc(uint64_t seed, char *buf, size_t cap)
{
	uint64_t s = seed * 2654435761u + 1;
	size_t len = 0, paras = 1 + rnd(&s) % 6;

	for (size_t p = 0; p < paras; p++) {
		size_t sentences = 1 + rnd(&s) % 8;
		for (size_t i = 0; i < sentences; i++) {
			size_t nw = 1 + rnd(&s) % 15;
			for (size_t w = 0; w < nw; w++) {
				if (rnd(&s) % 40 == 0)
					for (size_t k = rnd(&s) % 300; k > 0; k--)
						add(buf, cap, &len, k % 7 ? "a" : "é");
				else
					add(buf, cap, &len, words[rnd(&s) % (sizeof(words) / sizeof(words[0]))]);
				add(buf, cap, &len, rnd(&s) % 10 ? " " : (rnd(&s) % 2 ? "\n" : "  "));
			}
			add(buf, cap, &len, ends[rnd(&s) % (sizeof(ends) / sizeof(ends[0]))]);
			add(buf, cap, &len, " ");
		}
		add(buf, cap, &len, rnd(&s) % 5 ? "\n\n" : (rnd(&s) % 2 ? "\n  \t\n" : "\n\n\n\n"));
	}
	return rnd(&s) % 20 ? len : len / 2;  /* now and then cut mid-character */
}

static const size_t params[][2] = {
	{ 1, 0 }, { 2, 1 }, { 16, 0 }, { 16, 4 }, { 16, 15 }, { 40, 10 }, { 64, 0 },
	{ 100, 20 }, { 100, 99 }, { 1000, 100 }, { 7, 3 },
};

Test(chunker, generated_documents_keep_every_property)
{
	char buf[16384], label[64];

	for (uint64_t seed = 1; seed <= 400; seed++) {
		size_t len = gen_doc(seed, buf, sizeof(buf));
		for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++) {
			snprintf(label, sizeof(label), "seed %llu size %zu overlap %zu",
				 (unsigned long long)seed, params[p][0], params[p][1]);
			check_doc(&(struct doc){ buf, len, params[p][0], params[p][1], label });
		}
	}
	for (int cut = EF_CUT_END; cut <= EF_CUT_HARD; cut++)
		cr_assert_gt(seen_cuts[cut], 100, "only %zu %s cuts in the generated documents",
			     seen_cuts[cut], ef_chunk_cut_name((enum ef_chunk_cut)cut));
}

Test(chunker, random_bytes_keep_every_property)
{
	char buf[2048], label[64];
	uint64_t s = 42;

	for (int i = 0; i < 2000; i++) {
		size_t len = rnd(&s) % sizeof(buf);
		for (size_t b = 0; b < len; b++) {
			/* mostly bytes that matter: spaces, newlines, dots, lead and
			 * continuation bytes */
			static const char pick[] = " \n.\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\x80\xbf\xff!a";
			buf[b] = rnd(&s) % 3 ? pick[rnd(&s) % (sizeof(pick) - 1)] : (char)rnd(&s);
		}
		size_t max = 1 + rnd(&s) % 64, ov = rnd(&s) % max;
		snprintf(label, sizeof(label), "random %d size %zu overlap %zu", i, max, ov);
		check_doc(&(struct doc){ buf, len, max, ov, label });
	}
}

/* --- examples ---------------------------------------------------------- */

struct want {
	const char *text;
	enum ef_chunk_cut cut;
};

static void expect(const char *text, size_t max, size_t ov, const struct want *w, size_t nw)
{
	struct ef_chunk *c;
	struct ef_error err;
	size_t n;

	ef_error_clear(&err);
	cr_assert_eq(ef_chunk_split(text, strlen(text), max, ov, &c, &n, &err), EF_OK);
	cr_assert_eq(n, nw, "%zu chunks, wanted %zu", n, nw);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(c[i].length, strlen(w[i].text), "chunk %zu: \"%.*s\"", i,
			     (int)c[i].length, text + c[i].offset);
		cr_assert(memcmp(text + c[i].offset, w[i].text, c[i].length) == 0,
			  "chunk %zu: \"%.*s\", wanted \"%s\"", i, (int)c[i].length,
			  text + c[i].offset, w[i].text);
		cr_assert_eq(c[i].cut, w[i].cut, "chunk %zu ends at a %s, wanted %s", i,
			     ef_chunk_cut_name(c[i].cut), ef_chunk_cut_name(w[i].cut));
	}
	free(c);
}

Test(chunker, prefers_a_blank_line_to_a_later_sentence_end)
{
	const struct want w[] = {
		{ "First para. Still one.\n\n", EF_CUT_PARAGRAPH },
		{ "Second one. And more text", EF_CUT_END },
	};
	expect("First para. Still one.\n\nSecond one. And more text", 30, 0, w, 2);
}

Test(chunker, prefers_a_sentence_end_to_a_later_space)
{
	const struct want w[] = {
		{ "One sentence here. ", EF_CUT_SENTENCE },
		{ "Another that goes on", EF_CUT_END },
	};
	expect("One sentence here. Another that goes on", 24, 0, w, 2);
}

Test(chunker, a_blank_line_of_spaces_is_a_paragraph)
{
	const struct want w[] = {
		{ "Alpha beta gamma\n   \n", EF_CUT_PARAGRAPH },
		{ "delta", EF_CUT_END },
	};
	expect("Alpha beta gamma\n   \ndelta", 24, 0, w, 2);
}

Test(chunker, ignores_an_early_paragraph_in_favour_of_a_fuller_chunk)
{
	/* the blank line is in the first half of the window: a word cut late
	 * in the window makes the fuller chunk */
	const struct want w[] = {
		{ "Title\n\nwords words words ", EF_CUT_WORD },
		{ "words", EF_CUT_END },
	};
	expect("Title\n\nwords words words words", 28, 0, w, 2);
}

Test(chunker, cuts_a_word_only_when_it_is_longer_than_the_window)
{
	const struct want w[] = {
		{ "abcdefgh", EF_CUT_HARD },
		{ "ijkl ", EF_CUT_WORD },
		{ "mnopq rs", EF_CUT_END },
	};
	expect("abcdefghijkl mnopq rs", 8, 0, w, 3);
}

Test(chunker, overlap_is_counted_in_characters)
{
	/* each é is two bytes; the overlap of 2 repeats 2 characters, 4 bytes */
	const struct want w[] = {
		{ "éé éé ", EF_CUT_WORD },
		{ "é ééé", EF_CUT_END },
	};
	expect("éé éé ééé", 6, 2, w, 2);
}

Test(chunker, ideographic_full_stop_ends_a_sentence)
{
	const struct want w[] = {
		{ "日本語です。", EF_CUT_SENTENCE },
		{ "次の文", EF_CUT_END },
	};
	expect("日本語です。次の文", 8, 0, w, 2);
}

Test(chunker, a_short_text_is_one_chunk_and_an_empty_one_none)
{
	const struct want one[] = { { "short", EF_CUT_END } };
	struct ef_chunk *c = (struct ef_chunk *)1;
	struct ef_error err;
	size_t n = 7;

	expect("short", 1000, 100, one, 1);
	cr_assert_eq(ef_chunk_split("", 0, 10, 2, &c, &n, &err), EF_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(c);
}

Test(chunker, nul_bytes_are_characters)
{
	static const char text[] = "ab\0cd\0ef";
	struct ef_chunk *c;
	struct ef_error err;
	size_t n;

	cr_assert_eq(ef_chunk_split(text, sizeof(text) - 1, 3, 1, &c, &n, &err), EF_OK);
	cr_assert_eq(n, 4);
	cr_assert_eq(c[3].offset + c[3].length, sizeof(text) - 1);
	free(c);
}

Test(chunker, refuses_an_overlap_not_below_the_size)
{
	struct ef_chunk *c;
	struct ef_error err;
	size_t n;

	ef_error_clear(&err);
	cr_assert_eq(ef_chunk_split("text", 4, 10, 10, &c, &n, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "overlap 10") != NULL, "%s", err.msg);
	cr_assert(strstr(err.hint, "CHUNK_OVERLAP") != NULL, "%s", err.hint);
	cr_assert_eq(ef_chunk_split("text", 4, 0, 0, &c, &n, &err), EF_ERR_USAGE);
}
