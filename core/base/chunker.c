/*
 * chunker.c - overlapping chunks of a document, counted in characters.
 *
 * Each chunk is chosen by looking at a window of at most max_chars
 * characters from its start, and picking the latest good boundary in it:
 * a blank line, else a sentence end, else whitespace, else a hard cut at
 * the window's end.  The next chunk then starts exactly `overlap`
 * characters before that boundary, which is what makes the chunks
 * concatenate back to the text once the overlaps are removed.
 *
 * Paragraph and sentence boundaries only count in the second half of the
 * window, so a short heading followed by a long paragraph does not become
 * a chunk of its own; whitespace counts anywhere past the overlap, so a
 * word is cut only when no whitespace is left to cut at.  A boundary must
 * lie past the overlap, or the next chunk would not move forward.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/chunker.h"

struct chunk_list {
	struct ef_chunk *v;
	size_t n, cap;
};

/*
 * Length of the UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 1 when the bytes there are not a
 * valid sequence: such a byte is a character of its own, so invalid input
 * still splits deterministically and valid sequences around it stay whole.
 */
static size_t seq_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		need = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		need = 4;
	else
		return 1;
	if (avail < need)
		return 1;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (p[1] < lo || p[1] > hi)
		return 1;
	for (size_t i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 1;
	return need;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A cut at p follows a newline that closes a line of nothing but blanks. */
static bool paragraph_at(const unsigned char *t, size_t p)
{
	size_t i;

	if (p < 2 || t[p - 1] != '\n')
		return false;
	for (i = p - 2; i > 0 && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r'); i--)
		;
	return t[i] == '\n';
}

/* ". " "?\n" ".\" " ".) " and the ideographic 。！？ (which take no space). */
static bool sentence_at(const unsigned char *t, size_t p, size_t last_char_at)
{
	static const unsigned char cjk[][3] = {
		{ 0xE3, 0x80, 0x82 }, { 0xEF, 0xBC, 0x81 }, { 0xEF, 0xBC, 0x9F },
	};
	size_t q;

	if (p - last_char_at == 3) {
		for (size_t i = 0; i < sizeof(cjk) / sizeof(cjk[0]); i++)
			if (memcmp(t + last_char_at, cjk[i], 3) == 0)
				return true;
		return false;
	}
	if (p < 2 || !is_space(t[p - 1]))
		return false;
	q = p - 2;
	while (q > 0 && (t[q] == '"' || t[q] == '\'' || t[q] == ')' || t[q] == ']'))
		q--;
	return t[q] == '.' || t[q] == '!' || t[q] == '?';
}

/*
 * Picks the end of a full window: offs[0..k] are the byte offsets of its
 * character boundaries (k == max_chars).  Returns the number of characters
 * the chunk keeps, always in (overlap, k].
 */
static size_t choose_end(const unsigned char *t, const size_t *offs, size_t k, size_t overlap,
			 enum ef_chunk_cut *cut)
{
	size_t half = (k + 1) / 2;
	size_t lo = overlap + 1 > half ? overlap + 1 : half;
	size_t e;

	for (e = k; e >= lo; e--)
		if (paragraph_at(t, offs[e])) {
			*cut = EF_CUT_PARAGRAPH;
			return e;
		}
	for (e = k; e >= lo; e--)
		if (sentence_at(t, offs[e], offs[e - 1])) {
			*cut = EF_CUT_SENTENCE;
			return e;
		}
	for (e = k; e > overlap; e--)
		if (is_space(t[offs[e] - 1])) {
			*cut = EF_CUT_WORD;
			return e;
		}
	*cut = EF_CUT_HARD;
	return k;
}

static bool push(struct chunk_list *l, size_t offset, size_t length, size_t chars,
		 enum ef_chunk_cut cut)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct ef_chunk *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return false;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct ef_chunk){ offset, length, chars, cut };
	return true;
}

/* Fills offs[0..] with the character boundaries from start, at most max
 * characters' worth; returns how many characters it walked. */
static size_t walk(const unsigned char *t, size_t len, size_t start, size_t max, size_t *offs)
{
	size_t k = 0, pos = start;

	offs[0] = start;
	while (k < max && pos < len) {
		pos += seq_len(t + pos, len - pos);
		offs[++k] = pos;
	}
	return k;
}

/* False only when out of memory. */
static bool split(const unsigned char *t, size_t len, size_t max, size_t overlap, size_t *offs,
		  struct chunk_list *l)
{
	size_t start = 0, k, e;
	enum ef_chunk_cut cut;

	for (;;) {
		k = walk(t, len, start, max, offs);
		if (offs[k] == len)
			return push(l, start, len - start, k, EF_CUT_END);
		e = choose_end(t, offs, k, overlap, &cut);
		if (!push(l, start, offs[e] - start, e, cut))
			return false;
		start = offs[e - overlap];
	}
}

ef_status ef_chunk_split(const char *text, size_t len, size_t max_chars, size_t overlap,
			 struct ef_chunk **out, size_t *n, struct ef_error *err)
{
	struct chunk_list l = { NULL, 0, 0 };
	size_t window, *offs;

	*out = NULL;
	*n = 0;
	if (max_chars == 0 || overlap >= max_chars) {
		ef_error_set(err, EF_ERR_USAGE,
			     "chunk overlap %zu must be below the chunk size %zu, which must be "
			     "at least 1", overlap, max_chars);
		return ef_error_hint(err, "set CHUNK_OVERLAP below MAX_CHUNK_SIZE");
	}
	if (len == 0)
		return EF_OK;
	/* a text of len bytes has at most len characters: a window wider
	 * than that always reaches the end */
	window = max_chars < len ? max_chars : len;
	offs = malloc((window + 1) * sizeof(*offs));
	if (!offs || !split((const unsigned char *)text, len, window, overlap, offs, &l)) {
		free(offs);
		free(l.v);
		return ef_error_oom(err, "chunking a document");
	}
	free(offs);
	*out = l.v;
	*n = l.n;
	return EF_OK;
}

const char *ef_chunk_cut_name(enum ef_chunk_cut cut)
{
	switch (cut) {
	case EF_CUT_END: return "end";
	case EF_CUT_PARAGRAPH: return "paragraph";
	case EF_CUT_SENTENCE: return "sentence";
	case EF_CUT_WORD: return "word";
	case EF_CUT_HARD: return "hard";
	}
	return "?";
}
