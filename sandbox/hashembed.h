/*
 * hashembed.h - the built-in "hash" backend: instant, deterministic vectors.
 */
#ifndef SBX_HASHEMBED_H
#define SBX_HASHEMBED_H

#include <stddef.h>

/* Fills out[0..dim) with the unit-length embedding of text. */
void sbx_hash_embed(const char *text, int dim, float *out);

/* Words in text: the sandbox's stand-in for a tokenizer's token count. */
size_t sbx_hash_count_words(const char *text);

#endif
