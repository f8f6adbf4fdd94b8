/*
 * redact.h - the one place that decides what a secret looks like.
 *
 * Every printer (plain and JSON output, the console, the historylog,
 * plan.json, error messages) passes its text through ef_redact() before it
 * leaves the process.  Secrets are known two ways: values registered with
 * ef_redact_add_secret() (the API key, the database password), and shapes
 * (URL userinfo, token-like query parameters, password=... in connection
 * strings, "Bearer ..." headers).
 *
 * Registration happens at start-up, before any thread exists; after that the
 * registry is only read, so ef_redact() is safe to call from any thread.
 */
#ifndef EMBFILL_REDACT_H
#define EMBFILL_REDACT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Remembers value as a secret (copied).  Values shorter than 4 bytes are
 * ignored: masking every "a" would make output unreadable and hide nothing. */
void ef_redact_add_secret(const char *value);

/* Forgets every registered secret (tests, and before exit). */
void ef_redact_reset(void);

/* Returns a newly allocated copy of text with every secret masked as "***".
 * NULL in, NULL out; NULL on allocation failure. Caller frees. */
char *ef_redact(const char *text);

/* Same as ef_redact() into a caller buffer, truncating; returns out. */
char *ef_redact_buf(const char *text, char *out, size_t outsz);

/* A URL for display: no userinfo, no fragment, token-like query parameters
 * removed.  Text that does not parse as a URL is passed through ef_redact().
 * Returns a newly allocated string; caller frees. */
char *ef_redact_url(const char *url);

/* A libpq connection string or URI for display: the options libpq parsed
 * from it, as key=value pairs, without password or sslpassword, on one
 * printable line; "(libpq defaults)" when it sets none.  A string libpq
 * cannot parse is hidden whole: "(connection string hidden: libpq cannot
 * parse it: <reason>)" with the reason of ef_redact_dsn_error().  Caller
 * frees; NULL on allocation failure. */
char *ef_redact_dsn(const char *dsn);

/* Why libpq cannot parse dsn, fit to print: libpq's message on one line,
 * where what it quotes from dsn is shown only when it is libpq's own
 * punctuation or a misspelt key, with the key meant ("invalid connection
 * option \"passwrod\"; did you mean \"password\"?"), and "..." otherwise.
 * "" when dsn parses.  Caller frees. */
char *ef_redact_dsn_error(const char *dsn);

/* The connection string as a command that reproduces a run carries it:
 * libpq's key=value form of the same options, without password and
 * sslpassword, so that the command connects to the same database with the
 * password from libpq's own sources (PGPASSWORD, PGPASSFILE, ~/.pgpass).
 * ef_redact() leaves the result as it is, so a command line holding it as
 * one shell word stays one word after redaction.  A string that cannot be
 * shown so (libpq cannot parse it, or another value looks like a secret)
 * becomes "(connection string hidden)", which a rerun refuses instead of
 * connecting elsewhere.  "" for "".  Caller frees; NULL on allocation
 * failure. */
char *ef_redact_dsn_command(const char *dsn);

/* Whether libpq reads a non-empty password or sslpassword from dsn. */
bool ef_redact_dsn_has_password(const char *dsn);

/* Registers the password of a connection string (and PGPASSWORD) as a
 * secret, so that it is masked wherever it might be echoed. */
void ef_redact_add_dsn_secrets(const char *dsn);

/* Formats like vasprintf(), then redacts (ef_redact) and sanitises the
 * result, except that the control characters written in fmt itself (the
 * caller's newlines, tabs and carriage returns) stay as they are: a
 * newline inside a value is shown as "\n" and cannot forge a line.
 * Newly allocated; NULL on allocation failure. */
char *ef_safe_vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
