/*
 * digest.c - SHA-256 through libcrypto's EVP interface.
 */
#include "digest.h"

#include <openssl/evp.h>
#include <string.h>

int sbx_sha256_begin(struct sbx_sha256 *h)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	h->ctx = ctx;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		h->ctx = NULL;
		return -1;
	}
	return 0;
}

void sbx_sha256_add(struct sbx_sha256 *h, const void *data, size_t len)
{
	if (h->ctx != NULL && len > 0)
		EVP_DigestUpdate(h->ctx, data, len);
}

void sbx_sha256_end(struct sbx_sha256 *h, uint8_t out[SBX_SHA256_LEN])
{
	unsigned int n = 0;

	memset(out, 0, SBX_SHA256_LEN);
	if (h->ctx != NULL)
		EVP_DigestFinal_ex(h->ctx, out, &n);
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int sbx_sha256(const void *data, size_t len, uint8_t out[SBX_SHA256_LEN])
{
	struct sbx_sha256 h;

	if (sbx_sha256_begin(&h) != 0)
		return -1;
	sbx_sha256_add(&h, data, len);
	sbx_sha256_end(&h, out);
	return 0;
}
