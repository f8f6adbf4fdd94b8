/*
 * vecbin.c - vectors in the binary wire formats of their column types.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "core/run_int.h"

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
