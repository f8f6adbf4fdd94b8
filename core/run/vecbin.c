/*
 * vecbin.c - vectors in the binary wire formats of their column types.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/run/run_int.h"

#define FLOAT4OID 700

size_t ef_vec_binary_size(int n, bool pgvector)
{
	return pgvector ? 4 + (size_t)n * 4 : 20 + (size_t)n * 8;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
	return p + 4;
}

static unsigned char *put_float(unsigned char *p, float f)
{
	uint32_t bits;

	memcpy(&bits, &f, 4);
	return put32(p, bits);
}

size_t ef_vec_to_binary(const float *v, int n, bool pgvector, unsigned char *out)
{
	unsigned char *p = out;

	if (pgvector) {
		uint16_t dim = htons((uint16_t)n), unused = 0;

		memcpy(p, &dim, 2);
		memcpy(p + 2, &unused, 2);
		p += 4;
		for (int i = 0; i < n; i++)
			p = put_float(p, v[i]);
		return (size_t)(p - out);
	}
	p = put32(p, 1);          /* dimensions */
	p = put32(p, 0);          /* no NULLs */
	p = put32(p, FLOAT4OID);  /* element type */
	p = put32(p, (uint32_t)n);
	p = put32(p, 1);          /* lower bound */
	for (int i = 0; i < n; i++) {
		p = put32(p, 4);
		p = put_float(p, v[i]);
	}
	return (size_t)(p - out);
}

unsigned char *ef_vec_batch_binary(const float *vectors, size_t n, int dim,
				   const unsigned char *skip, bool pgvector, unsigned vec_oid,
				   size_t *len)
{
	size_t rows = 0, elem = ef_vec_binary_size(dim, true);
	unsigned char *buf, *p;

	for (size_t i = 0; i < n; i++)
		rows += !skip[i];
	*len = 20 + (pgvector ? rows * (4 + elem) : rows * (size_t)dim * 8);
	buf = malloc(*len);
	if (!buf)
		return NULL;
	p = put32(buf, 1);
	p = put32(p, 0);
	p = put32(p, pgvector ? vec_oid : FLOAT4OID);
	p = put32(p, (uint32_t)(pgvector ? rows : rows * (size_t)dim));
	p = put32(p, 1);
	for (size_t i = 0; i < n; i++) {
		const float *v = vectors + i * (size_t)dim;

		if (skip[i])
			continue;
		if (pgvector) {
			p = put32(p, (uint32_t)elem);
			p += ef_vec_to_binary(v, dim, true, p);
			continue;
		}
		for (int k = 0; k < dim; k++) {
			p = put32(p, 4);
			p = put_float(p, v[k]);
		}
	}
	return buf;
}
