/*
 * fuzz_historylog - the reader of existing historylog files, and the
 * prepend that is built on it.
 *
 * Input: the bytes of a historylog as someone may have left it (hand
 * edits, CRLF, NUL bytes, unclosed code blocks).  ef_history_parse() must
 * not crash and must give spans in order, inside the text, each starting
 * with "## ".  Then ef_history_compose() prepends a fixed entry; when it
 * succeeds, parsing the result must find a title, the new entry first and
 * every old entry after it byte for byte; when it fails, it must be a
 * usage error with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/historylog.h"

static const char entry[] = "## 2030-01-02 03:04:05 UTC - acme - run 7\n\n"
			    "- **Operator:** fuzz@host\n\n"
			    "Reproduce headless:\n\n````sh\nembfill run -C acme\n## no\n```\n````\n";

static void check_doc(const char *text, size_t len, const struct ef_history_doc *d)
{
	size_t prev_end = d->head_len;

	if (d->head_len > len || (d->n && d->head_len != d->entries[0].off))
		abort();
	if (d->n == 0 && d->head_len != len)
		abort();
	for (size_t i = 0; i < d->n; i++) {
		const struct ef_history_span *s = &d->entries[i];

		if (s->off < prev_end || s->off > len || s->len > len - s->off || s->len < 3 ||
		    memcmp(text + s->off, "## ", 3) != 0)
			abort();
		if (s->off != 0 && text[s->off - 1] != '\n')
			abort();
		prev_end = s->off + s->len;
	}
}

static bool same_span(const char *a, const struct ef_history_span *sa, const char *b,
		      const struct ef_history_span *sb)
{
	return sa->len == sb->len && memcmp(a + sa->off, b + sb->off, sa->len) == 0;
}

/* A titled head is kept up to the end of its last line with text. */
static size_t head_kept(const char *old, size_t n)
{
	size_t k = n;

	while (k && strchr(" \t\r\n", old[k - 1]) && old[k - 1] != '\0')
		k--;
	while (k && k < n && old[k] != '\n')
		k++;
	return k;
}

static void check_composed(const char *old, size_t oldlen, const struct ef_history_doc *od)
{
	struct ef_history_doc nd;
	struct ef_error err;
	size_t len = 0;
	char *text;

	ef_error_clear(&err);
	text = ef_history_compose(old, oldlen, entry, &len, &err);
	if (!text) {
		if (err.status != EF_ERR_USAGE || err.msg[0] == '\0' || od->n != 0 ||
		    od->open_fence_line == 0)
			abort();
		return;
	}
	if (ef_history_parse(text, len, &nd, &err) != EF_OK)
		abort();
	check_doc(text, len, &nd);
	if (!nd.has_title || nd.n != od->n + 1 || nd.entries[0].len != strlen(entry) - 1 ||
	    memcmp(text + nd.entries[0].off, entry, nd.entries[0].len) != 0)
		abort();
	for (size_t i = 0; i < od->n; i++)
		if (!same_span(old, &od->entries[i], text, &nd.entries[i + 1]))
			abort();
	if (od->has_title && memcmp(text, old, head_kept(old, od->head_len)) != 0)
		abort();
	if (!od->has_title && strncmp(text, EF_HISTORY_TITLE "\n", strlen(EF_HISTORY_TITLE) + 1))
		abort();
	ef_history_doc_free(&nd);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct ef_history_doc d;
	struct ef_error err;

	ef_error_clear(&err);
	if (ef_history_parse(text, size, &d, &err) != EF_OK)
		return 0;
	check_doc(text, size, &d);
	for (size_t i = 0; i < d.n; i++) {
		char *e = strndup(text + d.entries[i].off, d.entries[i].len);
		char *h = e ? ef_history_heading(e) : NULL;

		if (e && (!h || strchr(h, '\n')))
			abort();
		free(h);
		free(e);
	}
	check_composed(text, size, &d);
	ef_history_doc_free(&d);
	return 0;
}
