/*
 * vcache.h - vectors kept between starts of the embedder (--cache-dir).
 *
 * A vector is found by a key: the SHA-256 of the backend's fingerprint
 * (its name and the version of its algorithm or model), the model name the
 * request used, the native dimension, and the exact text the backend
 * embedded (after any cut to the context length).  What is stored is the
 * backend's own output, before normalisation and Matryoshka truncation,
 * which are applied to cached and computed vectors alike: one vector per
 * text serves every recipe, and a cache hit is bit for bit a fresh compute.
 */
#ifndef SBX_VCACHE_H
#define SBX_VCACHE_H

#include "digest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sbx_vcache sbx_vcache;

/*
 * Opens (creating DIR and the file when missing) DIR/NAME-dDIM.vectors and
 * loads every intact record into memory.  Returns NULL with an operator's
 * message in err when DIR cannot be created or the file cannot be opened.
 */
sbx_vcache *sbx_vcache_open(const char *dir, const char *name, int dim, char *err, size_t errsz);

/* Closes the file and frees the table; NULL is fine. */
void sbx_vcache_close(sbx_vcache *c);

/* The key of text as embedded by backend fingerprint fp for model. */
int sbx_vcache_key(const char *fp, const char *model, int dim, const char *text,
		   uint8_t key[SBX_SHA256_LEN]);

/* Copies the vector of key into out (dim floats); false when unknown. */
bool sbx_vcache_get(sbx_vcache *c, const uint8_t key[SBX_SHA256_LEN], float *out);

/*
 * Adds n vectors, vector i at vecs + i * stride under keys[i], to the table
 * and appends the new ones to the file in one write.  Returns 0, or -1 when
 * the file could not be written (the table still holds them).
 */
int sbx_vcache_put(sbx_vcache *c, const uint8_t (*keys)[SBX_SHA256_LEN], const float *vecs,
		   size_t stride, size_t n);

/* Vectors held; bytes of one record in the file. */
size_t sbx_vcache_count(sbx_vcache *c);
size_t sbx_vcache_record_bytes(int dim);

/* The file's path, for messages. */
const char *sbx_vcache_path(const sbx_vcache *c);

#endif
