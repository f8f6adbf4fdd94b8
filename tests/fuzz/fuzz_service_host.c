/*
 * fuzz_service_host - the parsing behind the provider check: a service's
 * host[:port] from a URL (libcurl's parser) and whether two of them are
 * the same host.
 *
 * Input: two strings split at the first NUL byte.  Any violation aborts:
 * a host that is not the same service as itself, a relation that is not
 * symmetric, a host that keeps URL userinfo.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "embfill/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a = malloc(size + 1), *b, *h;
	size_t n;

	if (!a)
		return 0;
	memcpy(a, data, size);
	a[size] = '\0';
	n = strlen(a);
	b = n < size ? a + n + 1 : a + n;
	if (!ef_same_service_host(a, a) || !ef_same_service_host(b, b) ||
	    ef_same_service_host(a, b) != ef_same_service_host(b, a))
		abort();
	h = ef_url_host(a);
	if (h && (strchr(h, '@') || !ef_same_service_host(h, h)))
		abort();
	free(h);
	free(a);
	return 0;
}
