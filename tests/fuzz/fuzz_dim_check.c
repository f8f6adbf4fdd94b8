/*
 * fuzz_dim_check - the CHECK-constraint parser.
 *
 * Input: the first line is the column as quote_ident() would print it, the
 * rest is the constraint definition.  The parser must not crash or read
 * past either string, must stay within its documented range, and may only
 * find a dimension where array_length( or cardinality( is applied to the
 * column.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/schema.h"

static char *dup_n(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static bool applied_to(const char *def, const char *col)
{
	static const char *const fns[] = { "array_length(", "cardinality(" };

	for (size_t f = 0; f < 2; f++) {
		for (const char *p = strstr(def, fns[f]); p; p = strstr(p + 1, fns[f]))
			if (strncmp(p + strlen(fns[f]), col, strlen(col)) == 0)
				return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t cl = nl ? (size_t)(nl - data) : size;
	char *col = dup_n(data, cl);
	char *def = nl ? dup_n(nl + 1, size - cl - 1) : dup_n(data, 0);
	int dim;

	if (col && def) {
		dim = ef_schema_parse_dim_check(def, col);
		if (dim < 0 || dim > 100000)
			abort();
		if (dim > 0 && (!*col || !applied_to(def, col)))
			abort();
	}
	free(col);
	free(def);
	return 0;
}
