/*
 * ident.h - names that end up in SQL: identifiers and collection names.
 *
 * Identifiers from settings are validated here (length, control bytes,
 * UTF-8, at most schema.table) and quoted with libpq's PQescapeIdentifier by
 * core/db.c; collection names are only ever bound parameters, but they are
 * still checked so that a 10 kB paste or a control character gets a clear
 * message instead of a confusing "no such collection".
 */
#ifndef EMBFILL_IDENT_H
#define EMBFILL_IDENT_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/error.h"

#define EF_IDENT_MAX 63          /* PostgreSQL's NAMEDATALEN - 1, in bytes */
#define EF_COLLECTION_NAME_MAX 200

/* True when s is valid UTF-8 without C0/C1 control characters or DEL. */
bool ef_utf8_printable(const char *s, size_t len);

/*
 * Checks an identifier setting.  qualified allows "schema.table" (one dot);
 * a column name allows no dot.  On failure err says why, naming what,
 * which is how the caller refers to the value ("CHUNKS_TABLE").
 */
ef_status ef_ident_check(const char *name, bool qualified, const char *what,
			 struct ef_error *err);

/* Checks a collection name typed by an operator or given with -C. */
ef_status ef_collection_name_check(const char *name, struct ef_error *err);

/* Copies s into out (size n, truncating at a character boundary) with
 * control characters and bytes that are not UTF-8 written as escapes
 * (ef_sanitize), so that a bad value echoed in a message stays one
 * printable line and cannot drive the terminal. */
void ef_escape_controls(const char *s, char *out, size_t n);

/* Levenshtein distance between two byte strings, stopping early once it
 * exceeds max (then returns max + 1).  For "did you mean" warnings. */
size_t ef_edit_distance(const char *a, const char *b, size_t max);

#endif
