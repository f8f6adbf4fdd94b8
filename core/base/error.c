/*
 * error.c - operator-facing errors: a status, a message and a hint.
 */
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
	size_t pl;
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	pl = strlen(pre);
	if (pl + 2 >= sizeof(err->msg))
		return;
	memcpy(err->msg, pre, pl);
	memcpy(err->msg + pl, ": ", 2);
	memcpy(err->msg + pl + 2, old, sizeof(err->msg) - pl - 2);
	err->msg[sizeof(err->msg) - 1] = '\0';
}

ef_status ef_error_oom(struct ef_error *err, const char *what)
{
	if (!err)
		return EF_ERR_NOMEM;
	if (what && *what)
		ef_error_set(err, EF_ERR_NOMEM, "out of memory %s", what);
	else
		ef_error_oom(err, NULL);
	ef_error_hint(err, "free memory on this host, or lower BATCH_SIZE or EMBED_CONCURRENCY, "
			   "then try again; a run resumes where it stopped");
	return EF_ERR_NOMEM;
}
