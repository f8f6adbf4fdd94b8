/*
 * fuzz_redact_dsn - a connection string for display and for a reproducing
 * command (ef_redact_dsn, ef_redact_dsn_error, ef_redact_dsn_command,
 * ef_redact_dsn_has_password).
 *
 * Input: the connection string (up to the first NUL byte).  Any violation
 * aborts:
 * - every output is printable UTF-8 (no control character) and the same
 *   when asked twice;
 * - for a string libpq parses, no output depends on a password: the string
 *   rewritten with every password and sslpassword value changed gives the
 *   same outputs, so none of them can hold a password's value; the command
 *   form gives libpq the same options but the passwords, and redaction
 *   leaves it as it is;
 * - for a string libpq cannot parse, the display is the hidden form, and a
 *   password's value (found here by a lax reading of "password=...",
 *   "user:...@" and "?password=...") shows only inside a quoted misspelt
 *   key that occurs once in the input.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "embfill/ident.h"
#include "embfill/redact.h"
#include "embfill/strbuf.h"

#define HIDDEN_LEAD "(connection string hidden: libpq cannot parse it: "

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool secret_key(const char *kw)
{
	return strcmp(kw, "password") == 0 || strcmp(kw, "sslpassword") == 0;
}

static void check_printable(const char *s)
{
	if (!s || !ef_utf8_printable(s, strlen(s)))
		abort();
}

/* Every option given, each value single-quoted (\' and \\ escaped); the
 * secret ones replaced by other when other is not NULL. */
static char *canonical(const PQconninfoOption *o, const char *other)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	ef_strbuf_add(&b, "");
	for (; o->keyword; o++) {
		const char *v = o->val;

		if (!v)
			continue;
		if (other && secret_key(o->keyword) && *v)
			v = other;
		ef_strbuf_addf(&b, "%s%s='", b.len ? " " : "", o->keyword);
		for (; *v; v++) {
			if (*v == '\'' || *v == '\\')
				ef_strbuf_add(&b, "\\");
			ef_strbuf_addn(&b, v, 1);
		}
		ef_strbuf_add(&b, "'");
	}
	return ef_strbuf_take(&b);
}

/* The options libpq reads from s but the secret ones, as "k=v\n" lines. */
static char *public_options(const char *s)
{
	PQconninfoOption *o = PQconninfoParse(s, NULL);
	struct ef_strbuf b = EF_STRBUF_INIT;

	if (!o)
		abort();
	ef_strbuf_add(&b, "");
	for (PQconninfoOption *p = o; p->keyword; p++)
		if (p->val && !secret_key(p->keyword))
			ef_strbuf_addf(&b, "%s=%s\n", p->keyword, p->val);
	PQconninfoFree(o);
	return ef_strbuf_take(&b);
}

static void same(const char *a, const char *b)
{
	if (!a || !b || strcmp(a, b) != 0)
		abort();
}

static void check_parsed(const char *in, PQconninfoOption *opts)
{
	char *c = canonical(opts, NULL), *c2 = canonical(opts, "zz-other-value-zz");
	char *d = ef_redact_dsn(in), *dc = ef_redact_dsn(c), *dc2 = ef_redact_dsn(c2);
	char *k = ef_redact_dsn_command(in), *k2 = ef_redact_dsn_command(c2);
	bool has = false;

	same(d, dc);
	same(dc, dc2);
	same(k, k2);
	if (strcmp(k, "(connection string hidden)") != 0) {
		char *want = public_options(in), *got = public_options(k), *red = ef_redact(k);

		same(got, want);
		same(red, k);
		free(red);
		free(got);
		free(want);
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && *o->val && secret_key(o->keyword))
			has = true;
	if (has != ef_redact_dsn_has_password(in))
		abort();
	free(k2);
	free(k);
	free(dc2);
	free(dc);
	free(d);
	free(c2);
	free(c);
}

/* Whether v shows in out only inside quoted words of [a-z_] that occur
 * once in the input (the misspelt keys the reason may name). */
static bool only_in_shown_keys(const char *in, const char *out, const char *v)
{
	for (const char *p = strstr(out, v); p; p = strstr(p + 1, v)) {
		const char *open = p, *close;
		size_t len;
		char *word;
		bool ok;

		while (open > out && (islower((unsigned char)open[-1]) || open[-1] == '_'))
			open--;
		close = open;
		while (islower((unsigned char)*close) || *close == '_')
			close++;
		if (open == out || open[-1] != '"' || *close != '"' || close < p + strlen(v))
			return false;
		len = (size_t)(close - open);
		word = strndup(open, len);
		ok = word && strstr(in, word) && !strstr(strstr(in, word) + 1, word);
		free(word);
		if (!ok)
			return false;
	}
	return true;
}

/* Text the hidden form may hold whatever the input: libpq's messages (as
 * libpq 15 writes them), the lead, and the names of libpq's keywords. */
static const char *vocabulary(void)
{
	static char *vocab;

	if (!vocab) {
		struct ef_strbuf b = EF_STRBUF_INIT;
		PQconninfoOption *all = PQconninfoParse("", NULL);

		ef_strbuf_add(&b, HIDDEN_LEAD "; did you mean \"...\"?) out of memory\n"
			      "connection info string size exceeds the maximum allowed\n"
			      "missing \"=\" after in connection info string\n"
			      "invalid connection option\n"
			      "unterminated quoted string in connection info string\n"
			      "invalid percent-encoded token:\n"
			      "forbidden value %00 in percent-encoded value:\n"
			      "invalid URI propagated to internal parser routine:\n"
			      "end of string reached when looking for matching \"]\" in IPv6 "
			      "host address in URI:\n"
			      "IPv6 host address may not be empty in URI:\n"
			      "unexpected character at position in URI (expected \":\" or "
			      "\"/\"):\n"
			      "extra key/value separator \"=\" in URI query parameter:\n"
			      "missing key/value separator \"=\" in URI query parameter:\n"
			      "invalid URI query parameter:\n");
		for (PQconninfoOption *o = all; o && o->keyword; o++)
			ef_strbuf_addf(&b, "\"%s\"\n", o->keyword);
		PQconninfoFree(all);
		vocab = ef_strbuf_take(&b);
	}
	return vocab;
}

/* Whether the value may be checked: one that is libpq's own words or a
 * number (a position libpq reports) shows up whatever the input holds. */
static bool checkable(const char *v)
{
	return strlen(v) >= 4 && strspn(v, "0123456789") != strlen(v) &&
	       !strstr(vocabulary(), v);
}

/* A lax reading of the values that look like passwords. */
static void each_lax_password(const char *in, const char *out)
{
	static const char *const keys[] = { "password", "sslpassword" };
	const char *uri = strstr(in, "://");

	for (size_t k = 0; k < 2; k++) {
		for (const char *p = strstr(in, keys[k]); p; p = strstr(p + 1, keys[k])) {
			const char *v = p + strlen(keys[k]);
			size_t n;
			char *val;

			v += strspn(v, " \t\n\r\f\v");
			if (*v != '=')
				continue;
			v++;
			v += strspn(v, " \t\n\r\f\v");
			if (*v == '\'')
				v++;
			n = strcspn(v, " \t\n\r\f\v'&");
			val = strndup(v, n);
			if (val && checkable(val) && !only_in_shown_keys(in, out, val))
				abort();
			free(val);
		}
	}
	if (uri) {
		const char *at = strchr(uri + 3, '@'), *colon = strchr(uri + 3, ':');

		if (at && colon && colon < at) {
			char *val = strndup(colon + 1, (size_t)(at - colon - 1));

			if (val && checkable(val) && !only_in_shown_keys(in, out, val))
				abort();
			free(val);
		}
	}
}

static void check_unparsed(const char *in)
{
	char *d = ef_redact_dsn(in), *why = ef_redact_dsn_error(in);
	char *k = ef_redact_dsn_command(in);

	if (!d || strncmp(d, HIDDEN_LEAD, strlen(HIDDEN_LEAD)) != 0 || !why || !*why)
		abort();
	same(k, "(connection string hidden)");
	if (ef_redact_dsn_has_password(in))
		abort();
	each_lax_password(in, d);
	free(k);
	free(why);
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = strndup((const char *)data, size);
	char *d, *again, *why, *k;
	PQconninfoOption *opts;

	if (!in)
		return 0;
	d = ef_redact_dsn(in);
	again = ef_redact_dsn(in);
	why = ef_redact_dsn_error(in);
	k = ef_redact_dsn_command(in);
	check_printable(d);
	check_printable(why);
	same(d, again);
	if (!k)
		abort();
	opts = PQconninfoParse(in, NULL);
	if (opts)
		check_parsed(in, opts);
	else
		check_unparsed(in);
	PQconninfoFree(opts);
	free(k);
	free(why);
	free(again);
	free(d);
	free(in);
	return 0;
}
