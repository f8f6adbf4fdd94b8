/*
 * ident.c - names from settings and from operators (ident.h): SQL
 * identifiers and collection names checked before they reach SQL or a
 * screen, and the edit distance behind "did you mean".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/ident.h"
#include "embfill/sanitize.h"

bool ef_utf8_printable(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = ef_utf8_char(p + i, len - i, &cp);

		if (n == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
			return false;
		i += n;
	}
	return true;
}

void ef_escape_controls(const char *s, char *out, size_t n)
{
	char *safe;
	size_t len;

	if (n == 0)
		return;
	safe = ef_sanitize(s, strlen(s), 0);
	len = safe ? strlen(safe) : 0;
	if (len >= n)
		for (len = n - 1; len > 0 && ((unsigned char)safe[len] & 0xC0) == 0x80; len--)
			;
	memcpy(out, safe ? safe : "", len);
	out[len] = '\0';
	free(safe);
}

static ef_status part_check(const char *part, size_t len, const char *name,
			    const char *what, struct ef_error *err)
{
	char shown[128];

	ef_escape_controls(name, shown, sizeof(shown));
	if (len == 0) {
		ef_error_set(err, EF_ERR_USAGE, "%s \"%s\" has an empty name part", what, shown);
		return ef_error_hint(err, "write a table as name or schema.name, a column as name");
	}
	if (len > EF_IDENT_MAX) {
		ef_escape_controls(part, shown, 41);
		ef_error_set(err, EF_ERR_USAGE, "%s \"%s...\" is %zu bytes long", what, shown, len);
		return ef_error_hint(err, "PostgreSQL names hold at most %d bytes; use the name "
					  "as the database knows it", EF_IDENT_MAX);
	}
	if (!ef_utf8_printable(part, len)) {
		ef_error_set(err, EF_ERR_USAGE,
			     "%s holds a control character or invalid UTF-8", what);
		return ef_error_hint(err, "names may hold any printable UTF-8, including quotes "
					  "and spaces, but no control characters");
	}
	return EF_OK;
}

ef_status ef_ident_check(const char *name, bool qualified, const char *what,
			 struct ef_error *err)
{
	const char *dot;
	char shown[128];
	size_t len;

	if (!name || !*name) {
		ef_error_set(err, EF_ERR_USAGE, "%s is empty", what);
		return ef_error_hint(err, "set %s to a %s name", what, qualified ? "table" : "column");
	}
	len = strlen(name);
	dot = strchr(name, '.');
	ef_escape_controls(name, shown, sizeof(shown));
	if (dot && !qualified) {
		ef_error_set(err, EF_ERR_USAGE, "%s \"%s\" holds a dot", what, shown);
		return ef_error_hint(err, "a column name is one name; the table is set separately");
	}
	if (dot && strchr(dot + 1, '.')) {
		ef_error_set(err, EF_ERR_USAGE, "%s \"%s\" has more than one dot", what, shown);
		return ef_error_hint(err, "write the table as name or schema.name");
	}
	if (!dot)
		return part_check(name, len, name, what, err);
	if (part_check(name, (size_t)(dot - name), name, what, err) != EF_OK)
		return err->status;
	return part_check(dot + 1, len - (size_t)(dot - name) - 1, name, what, err);
}

ef_status ef_collection_name_check(const char *name, struct ef_error *err)
{
	size_t len;

	if (!name || !*name) {
		ef_error_set(err, EF_ERR_USAGE, "the collection name is empty");
		return ef_error_hint(err, "give the collection with -C NAME; `embfill status` "
					  "lists them");
	}
	len = strlen(name);
	if (len > EF_COLLECTION_NAME_MAX) {
		char shown[48];

		ef_escape_controls(name, shown, 37);
		ef_error_set(err, EF_ERR_USAGE, "the collection name is %zu bytes long (\"%s...\")",
			     len, shown);
		return ef_error_hint(err, "collection names hold at most %d bytes; check what was "
					  "pasted", EF_COLLECTION_NAME_MAX);
	}
	if (!ef_utf8_printable(name, len)) {
		ef_error_set(err, EF_ERR_USAGE,
			     "the collection name holds a control character or invalid UTF-8");
		return ef_error_hint(err, "type the name again; `embfill status` lists the "
					  "collections");
	}
	return EF_OK;
}

size_t ef_edit_distance(const char *a, const char *b, size_t max)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row, result;

	if ((la > lb ? la - lb : lb - la) > max)
		return max + 1;
	row = malloc((lb + 1) * sizeof(*row));
	if (!row)
		return max + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0], best;

		row[0] = i;
		best = row[0];
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = diag + (a[i - 1] != b[j - 1]);

			if (row[j - 1] + 1 < cost)
				cost = row[j - 1] + 1;
			if (up + 1 < cost)
				cost = up + 1;
			row[j] = cost;
			diag = up;
			if (cost < best)
				best = cost;
		}
		if (best > max) {
			free(row);
			return max + 1;
		}
	}
	result = row[lb] > max ? max + 1 : row[lb];
	free(row);
	return result;
}
