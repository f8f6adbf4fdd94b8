/*
 * strbuf.c - a growable string whose allocation failure is sticky
 * (strbuf.h): callers append freely and check once at the end.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/strbuf.h"

static bool grow(struct ef_strbuf *sb, size_t extra)
{
	size_t need, cap;
	char *nb;

	if (sb->oom)
		return false;
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	nb = realloc(sb->buf, cap);
	if (!nb) {
		sb->oom = true;
		return false;
	}
	sb->buf = nb;
	sb->cap = cap;
	return true;
}

void ef_strbuf_addn(struct ef_strbuf *sb, const char *s, size_t n)
{
	if (!grow(sb, n))
		return;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void ef_strbuf_add(struct ef_strbuf *sb, const char *s)
{
	ef_strbuf_addn(sb, s, strlen(s));
}

void ef_strbuf_addf(struct ef_strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !grow(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

char *ef_strbuf_take(struct ef_strbuf *sb)
{
	char *s;

	if (sb->oom) {
		ef_strbuf_free(sb);
		return NULL;
	}
	s = sb->buf ? sb->buf : strdup("");
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return s;
}

void ef_strbuf_free(struct ef_strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	sb->oom = false;
}

const char *ef_strbuf_str(const struct ef_strbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

void ef_strbuf_add_shell_word(struct ef_strbuf *sb, const char *w)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				   "0123456789_-./:=@+";

	if (*w && strspn(w, safe) == strlen(w)) {
		ef_strbuf_add(sb, w);
		return;
	}
	ef_strbuf_add(sb, "'");
	for (const char *p = w; *p; p++) {
		if (*p == '\'')
			ef_strbuf_add(sb, "'\\''");
		else
			ef_strbuf_addn(sb, p, 1);
	}
	ef_strbuf_add(sb, "'");
}

void ef_names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}
