/*
 * error.h - status codes and operator-facing error messages.
 *
 * Every core function that can fail returns an ef_status and fills a
 * caller-owned struct ef_error.  The status values are the documented exit
 * codes of the command line, so a front end can exit with err.status as is.
 */
#ifndef EMBFILL_ERROR_H
#define EMBFILL_ERROR_H

#include <stddef.h>

typedef enum ef_status {
	EF_OK = 0,
	EF_ERR_CHECK = 1,       /* checks found problems (verify, doctor) */
	EF_ERR_USAGE = 2,       /* usage, settings or confirmation error */
	EF_ERR_DB = 3,          /* database error */
	EF_ERR_EMBED = 4,       /* embedding service error */
	EF_ERR_INTERRUPTED = 5, /* interrupted, resumable */
	EF_ERR_BUSY = 6,        /* collection busy: another run holds it */
	EF_ERR_NOMEM = 7,       /* out of memory */
} ef_status;

#define EF_ERR_TEXT_MAX 1024

struct ef_error {
	ef_status status;
	char msg[EF_ERR_TEXT_MAX];  /* what went wrong, lowercase, no newline */
	char hint[EF_ERR_TEXT_MAX]; /* what to do about it; may be empty */
};

/* Resets err to EF_OK with empty texts. */
void ef_error_clear(struct ef_error *err);

/* Sets status and message; keeps any hint already set.  Returns st. */
ef_status ef_error_set(struct ef_error *err, ef_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets the hint line.  Returns err->status. */
ef_status ef_error_hint(struct ef_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Sets EF_ERR_NOMEM with "out of memory" (and what was being done, when
 * what is not NULL) and the hint every such failure shares.  Returns
 * EF_ERR_NOMEM.  Out of memory is never reported as another status: the
 * operator's fix is different.
 */
ef_status ef_error_oom(struct ef_error *err, const char *what);

/* Prefixes the message with context ("reading settings: ..."). */
void ef_error_prefix(struct ef_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
