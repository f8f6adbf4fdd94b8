/*
 * hashembed.c - signed feature hashing of words and character 3-grams.
 *
 * The trainee's demo needs vectors that behave like embeddings (texts that
 * share words lie closer than unrelated ones) without a model, a GPU or a
 * download.  Each lowercased word and each 3-gram of "<word>" is hashed; the
 * hash picks a bucket and, from an independent bit, a sign, so unrelated
 * features cancel out on average instead of piling up.  Whole words weigh
 * more than 3-grams; the 3-grams give near misses ("folder"/"folders") some
 * similarity.  The result depends on nothing but the text and dim, so two
 * servers agree byte for byte.
 */
#include "hashembed.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define WORD_MAX 64
#define WORD_WEIGHT 1.0f
#define GRAM_WEIGHT 0.5f

/* FNV-1a keyed by a feature kind, then murmur3's finaliser: FNV alone leaves
 * its low bits, which pick the bucket, poorly mixed for short keys. */
static uint64_t feature_hash(char kind, const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	h = (h ^ (unsigned char)kind) * 1099511628211ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static void add_feature(float *out, int dim, uint64_t h, float weight)
{
	size_t bucket = (size_t)((uint32_t)h % (uint32_t)dim);

	out[bucket] += (h >> 63) ? -weight : weight;
}

static bool is_word_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Copies the next word, lowercased and capped, into word; returns its
 * length, 0 at the end of text. */
static size_t next_word(const char **p, char *word)
{
	const char *s = *p;
	size_t n = 0;

	while (*s != '\0' && !is_word_byte((unsigned char)*s))
		s++;
	for (; *s != '\0' && is_word_byte((unsigned char)*s); s++)
		if (n < WORD_MAX)
			word[n++] = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
	*p = s;
	return n;
}

static void add_word(float *out, int dim, const char *word, size_t len)
{
	char padded[WORD_MAX + 2];

	add_feature(out, dim, feature_hash('w', word, len), WORD_WEIGHT);
	padded[0] = '<';
	memcpy(padded + 1, word, len);
	padded[len + 1] = '>';
	for (size_t i = 0; i + 3 <= len + 2; i++)
		add_feature(out, dim, feature_hash('g', padded + i, 3), GRAM_WEIGHT);
}

/* A text without words still gets a feature, the same for all, so that no
 * vector is zero before normalisation. */
void sbx_hash_embed_raw(const char *text, int dim, float *out)
{
	char word[WORD_MAX];
	size_t len;
	bool any = false;

	memset(out, 0, sizeof(*out) * (size_t)dim);
	while ((len = next_word(&text, word)) > 0) {
		add_word(out, dim, word, len);
		any = true;
	}
	for (int i = 0; any && i < dim; i++)
		if (out[i] != 0)
			return;
	add_feature(out, dim, feature_hash('e', "", 0), 1.0f);
}

void sbx_hash_normalise(float *out, int dim)
{
	double sum = 0;

	for (int i = 0; i < dim; i++)
		sum += (double)out[i] * out[i];
	for (int i = 0; sum > 0 && i < dim; i++)
		out[i] = (float)(out[i] / sqrt(sum));
}

void sbx_hash_embed(const char *text, int dim, float *out)
{
	sbx_hash_embed_raw(text, dim, out);
	sbx_hash_normalise(out, dim);
}

size_t sbx_hash_count_words(const char *text)
{
	char word[WORD_MAX];
	size_t n = 0;

	while (next_word(&text, word) > 0)
		n++;
	return n;
}
