/*
 * digest.h - SHA-256 for the vector cache's keys and record checks, by
 * OpenSSL's libcrypto.
 */
#ifndef SBX_DIGEST_H
#define SBX_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define SBX_SHA256_LEN 32

/* An incremental SHA-256; begin() returns -1 when out of memory. */
struct sbx_sha256 {
	void *ctx;
};

int sbx_sha256_begin(struct sbx_sha256 *h);
void sbx_sha256_add(struct sbx_sha256 *h, const void *data, size_t len);

/* Writes the digest and frees the context. */
void sbx_sha256_end(struct sbx_sha256 *h, uint8_t out[SBX_SHA256_LEN]);

/* One-shot digest of data[0..len); returns -1 when out of memory. */
int sbx_sha256(const void *data, size_t len, uint8_t out[SBX_SHA256_LEN]);

#endif
