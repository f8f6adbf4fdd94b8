/*
 * hashembed.h - the built-in "hash" backend: instant, deterministic vectors.
 */
#ifndef SBX_HASHEMBED_H
#define SBX_HASHEMBED_H

#include <stddef.h>

/* Bumped whenever a change of this backend changes a vector, so that the
 * vectors of an older embedder in a --cache-dir are not taken for its. */
#define SBX_HASH_FINGERPRINT "hash/1"

/* Fills out[0..dim) with the unit-length embedding of text. */
void sbx_hash_embed(const char *text, int dim, float *out);

/* The same before normalisation: its length grows with the text's features. */
void sbx_hash_embed_raw(const char *text, int dim, float *out);

/* Scales out[0..dim) to unit length, exactly as sbx_hash_embed() does. */
void sbx_hash_normalise(float *out, int dim);

/* Words in text: the sandbox's stand-in for a tokenizer's token count. */
size_t sbx_hash_count_words(const char *text);

#endif
