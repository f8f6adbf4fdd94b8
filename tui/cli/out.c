/*
 * out.c - the front end's only way to print: redacted and sanitised, always.
 *
 * What a command prints holds text from the database and the embedding
 * service; a terminal would obey the control characters in it.  The
 * format's own newlines, tabs and carriage returns are kept; every other
 * control character, and every byte that is not UTF-8, is printed as a
 * visible escape (core/sanitize.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/redact.h"
#include "embfill/sanitize.h"
#include "tui/cli/cli.h"

void out_printf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	char *safe;

	va_start(ap, fmt);
	safe = ef_safe_vformat(fmt, ap);
	va_end(ap);
	if (safe)
		fputs(safe, f);
	free(safe);
}

/* Redacted, then sanitised with flags. */
static void put_whole(FILE *f, const char *text, unsigned flags)
{
	char *red = ef_redact(text ? text : "");
	char *safe = red ? ef_sanitize(red, strlen(red), flags) : NULL;

	if (safe)
		fputs(safe, f);
	free(safe);
	free(red);
}

void out_text(FILE *f, const char *text)
{
	put_whole(f, text, EF_SAN_KEEP_LINES);
}

int out_error(const struct ef_error *err)
{
	out_printf(stderr, "embfill: %s\n", err->msg[0] ? err->msg : "failed");
	if (err->hint[0])
		out_printf(stderr, "hint: %s\n", err->hint);
	return err->status;
}

/* cJSON escapes the C0 controls inside strings, and its own newlines and
 * tabs are layout; DEL, C1 controls and bytes that are not UTF-8 it copies
 * as they are, so those become \u escapes, which keep the document valid
 * and its strings as they were. */
void out_json(const char *text)
{
	put_whole(stdout, text ? text : "null", EF_SAN_KEEP_LINES | EF_SAN_JSON);
	fputc('\n', stdout);
}
