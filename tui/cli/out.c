/*
 * out.c - the front end's only way to print: redacted, always.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "embfill/redact.h"
#include "tui/cli/cli.h"

void out_printf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	char *raw = NULL, *safe;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	safe = ef_redact(raw);
	fputs(safe ? safe : "", f);
	free(safe);
	free(raw);
}

int out_error(const struct ef_error *err)
{
	out_printf(stderr, "embfill: %s\n", err->msg[0] ? err->msg : "failed");
	if (err->hint[0])
		out_printf(stderr, "hint: %s\n", err->hint);
	return err->status;
}

void out_json(const char *text)
{
	out_printf(stdout, "%s\n", text ? text : "null");
}
