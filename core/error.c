#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "embfill/error.h"

void ef_error_clear(struct ef_error *err)
{
	if (!err)
		return;
	err->status = EF_OK;
	err->msg[0] = '\0';
	err->hint[0] = '\0';
}

ef_status ef_error_set(struct ef_error *err, ef_status st, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return st;
	err->status = st;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return st;
}

ef_status ef_error_hint(struct ef_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return EF_OK;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	return err->status;
}

void ef_error_prefix(struct ef_error *err, const char *fmt, ...)
{
	char pre[256];
	char old[EF_ERR_TEXT_MAX];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	snprintf(old, sizeof(old), "%s", err->msg);
	snprintf(err->msg, sizeof(err->msg), "%s: %s", pre, old);
}
