/*
 * chunker.h - splits a document's text into overlapping chunks.
 *
 * Sizes are counted in characters (Unicode code points), never in bytes:
 * MAX_CHUNK_SIZE and CHUNK_OVERLAP mean the same to a reader of English and
 * of Japanese.  The function is pure: text in, (offset, length) pairs out,
 * no database, no global state, so the same text and parameters always
 * give the same chunks.
 *
 * The contract, checked by the property tests:
 *   - every chunk holds 1..max_chars characters; none is empty;
 *   - chunk 0 starts at byte 0 and the last one ends at the text's end;
 *   - each chunk after the first starts exactly `overlap` characters before
 *     the end of the one before it, so removing the first `overlap`
 *     characters of every chunk but the first and concatenating gives the
 *     text back, byte for byte;
 *   - a valid UTF-8 sequence is never split;  a byte that is not part of
 *     one counts as one character of its own;
 *   - a chunk ends, by preference, after a blank line (paragraph), then
 *     after a sentence end, then after whitespace; only when the part of
 *     the window past the overlap holds no whitespace (a word longer than
 *     max_chars - overlap) is a word cut, and then at exactly max_chars.
 */
#ifndef EMBFILL_CHUNKER_H
#define EMBFILL_CHUNKER_H

#include <stddef.h>

#include "embfill/error.h"

/* Where a chunk ends: the kind of boundary that was chosen. */
enum ef_chunk_cut {
	EF_CUT_END = 0,     /* the end of the text */
	EF_CUT_PARAGRAPH,   /* after a blank line */
	EF_CUT_SENTENCE,    /* after . ! ? (and closing quotes) plus whitespace, or 。！？ */
	EF_CUT_WORD,        /* after whitespace */
	EF_CUT_HARD,        /* inside a word longer than the window */
};

struct ef_chunk {
	size_t offset;          /* first byte, into the text */
	size_t length;          /* bytes */
	size_t chars;           /* characters (code points) */
	enum ef_chunk_cut cut;  /* why it ends where it ends */
};

/*
 * Splits text (len bytes; NUL bytes are ordinary characters) into chunks of
 * at most max_chars characters with overlap characters shared by
 * neighbours.  Requires 1 <= max_chars and overlap < max_chars, else
 * EF_ERR_USAGE naming the values.  An empty text gives no chunks.
 * On EF_OK, *out is an array of *n chunks that the caller frees with free()
 * (NULL when *n is 0).
 */
ef_status ef_chunk_split(const char *text, size_t len, size_t max_chars, size_t overlap,
			 struct ef_chunk **out, size_t *n, struct ef_error *err);

/* The name of a cut ("end", "paragraph", "sentence", "word", "hard"). */
const char *ef_chunk_cut_name(enum ef_chunk_cut cut);

#endif
