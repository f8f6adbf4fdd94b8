/*
 * strbuf.h - a growable NUL-terminated string.
 *
 * Allocation failure is sticky: the buffer keeps what it had, sets .oom and
 * ignores further appends, so callers check once at the end instead of after
 * every append.
 */
#ifndef EMBFILL_STRBUF_H
#define EMBFILL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct ef_strbuf {
	char *buf;  /* NULL until the first append */
	size_t len;
	size_t cap;
	bool oom;
};

#define EF_STRBUF_INIT { NULL, 0, 0, false }

void ef_strbuf_addn(struct ef_strbuf *sb, const char *s, size_t n);
void ef_strbuf_add(struct ef_strbuf *sb, const char *s);
void ef_strbuf_addf(struct ef_strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Returns the string (never NULL unless out of memory: "" when empty) and
 * leaves sb empty.  Caller frees. */
char *ef_strbuf_take(struct ef_strbuf *sb);
void ef_strbuf_free(struct ef_strbuf *sb);
/* Appends w as one word of a POSIX shell command line: as it is when it
 * holds only characters no shell treats specially, else in single quotes
 * (a ' inside becomes '\''), so that a printed command can be pasted. */
void ef_strbuf_add_shell_word(struct ef_strbuf *sb, const char *w);

/* The current contents, "" when empty; valid until the next append. */
const char *ef_strbuf_str(const struct ef_strbuf *sb);

/* Frees a NULL-terminated array of strings and each string in it. */
void ef_names_free(char **names);

#endif
