/*
 * redact.c - masking of secrets in everything embfill prints or writes.
 *
 * The rules are deliberately on the side of hiding too much: an operator
 * loses nothing by seeing "***" where a harmless value was, while a key that
 * reaches a terminal recording or a historylog committed to git is a leak.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "embfill/ident.h"
#include "embfill/redact.h"
#include "embfill/sanitize.h"
#include "embfill/strbuf.h"
#include "embfill/urllist.h"

#define MAX_SECRETS 32
#define MASK "***"

static char *secrets[MAX_SECRETS];
static size_t nsecrets;

void ef_redact_add_secret(const char *value)
{
	if (!value || strlen(value) < 4 || nsecrets == MAX_SECRETS)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], value) == 0)
			return;
	secrets[nsecrets] = strdup(value);
	if (secrets[nsecrets])
		nsecrets++;
}

void ef_redact_reset(void)
{
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i]);
	nsecrets = 0;
}

/* Query parameter names that carry credentials in the wild: API gateways use
 * key/api_key/token, cloud storage uses sig/signature, proxies use auth. */
static bool name_is_secretish(const char *name, size_t len)
{
	static const char *const words[] = {
		"key", "token", "secret", "pass", "pwd", "sig", "auth", "credential",
	};
	char low[64];

	if (len == 0 || len >= sizeof(low))
		return len > 0;
	for (size_t i = 0; i < len; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[len] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(low, words[i]))
			return true;
	return false;
}

static bool is_url_end(char c)
{
	return c == '\0' || isspace((unsigned char)c) || c == '"' || c == '\'' ||
	       c == '>' || c == ')' || c == ']' || c == '`';
}

/* Returns the longest registered secret that starts at p, or NULL: when
 * one secret is a prefix of another, masking the shorter would leave the
 * rest of the longer one in clear. */
static const char *secret_at(const char *p)
{
	const char *best = NULL;

	for (size_t i = 0; i < nsecrets; i++)
		if (strncmp(p, secrets[i], strlen(secrets[i])) == 0 &&
		    (!best || strlen(secrets[i]) > strlen(best)))
			best = secrets[i];
	return best;
}

static bool word_start(const char *text, const char *p)
{
	return p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
}

/* password=..., sslpassword=... in key=value connection strings; the value
 * is a quoted string with backslash escapes or a run of non-blanks. */
static size_t conninfo_password(const char *text, const char *p, struct ef_strbuf *out)
{
	static const char *const keys[] = { "password", "sslpassword" };
	const char *v = NULL;

	for (size_t i = 0; i < 2 && !v; i++)
		if (strncasecmp(p, keys[i], strlen(keys[i])) == 0 && word_start(text, p))
			v = p + strlen(keys[i]);
	if (!v)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v != '=')
		return 0;
	for (v++; *v == ' ' || *v == '\t'; v++)
		;
	ef_strbuf_addn(out, p, (size_t)(strchr(p, '=') - p) + 1);
	ef_strbuf_add(out, MASK);
	if (*v == '\'') {
		for (v++; *v && *v != '\''; v++)
			if (*v == '\\' && v[1])
				v++;
		if (*v == '\'')
			v++;
	} else {
		while (*v && !isspace((unsigned char)*v) && *v != '&')
			v++;
	}
	return (size_t)(v - p);
}

static size_t bearer(const char *text, const char *p, struct ef_strbuf *out)
{
	static const char *const words[] = { "Bearer ", "Basic " };
	const char *v = NULL;
	size_t wl = 0;

	for (size_t i = 0; i < 2 && !v; i++) {
		wl = strlen(words[i]);
		if (strncasecmp(p, words[i], wl) == 0 && word_start(text, p))
			v = p + wl;
	}
	if (!v || *v == '\0' || isspace((unsigned char)*v))
		return 0;
	ef_strbuf_addn(out, p, wl);
	ef_strbuf_add(out, MASK);
	while (*v && !isspace((unsigned char)*v) && *v != '"' && *v != '\'')
		v++;
	return (size_t)(v - p);
}

/* scheme://user:pass@host -> scheme://host ; the whole userinfo goes, since
 * a user name in a private URL is itself often a token. */
static size_t url_userinfo(const char *p, struct ef_strbuf *out)
{
	const char *s, *at = NULL;

	if (strncmp(p, "://", 3) != 0)
		return 0;
	for (s = p + 3; !is_url_end(*s) && *s != '/' && *s != '?' && *s != '#'; s++)
		if (*s == '@')
			at = s;
	if (!at)
		return 0;
	ef_strbuf_add(out, "://");
	return (size_t)(at + 1 - p);
}

/* In a query string, name=value with a secret-looking name keeps its name
 * and loses its value. */
static size_t query_param(const char *p, struct ef_strbuf *out)
{
	const char *name, *eq, *v;

	if (*p != '?' && *p != '&')
		return 0;
	name = p + 1;
	eq = name;
	while (*eq && *eq != '=' && *eq != '&' && !is_url_end(*eq))
		eq++;
	if (*eq != '=' || !name_is_secretish(name, (size_t)(eq - name)))
		return 0;
	ef_strbuf_addn(out, p, (size_t)(eq - p) + 1);
	ef_strbuf_add(out, MASK);
	for (v = eq + 1; *v && *v != '&' && *v != '#' && !is_url_end(*v); v++)
		;
	return (size_t)(v - p);
}

static void redact_into(const char *text, struct ef_strbuf *out)
{
	const char *p = text;

	while (*p) {
		const char *sec = secret_at(p);
		size_t used;

		if (sec) {
			ef_strbuf_add(out, MASK);
			p += strlen(sec);
			continue;
		}
		used = conninfo_password(text, p, out);
		if (!used)
			used = bearer(text, p, out);
		if (!used)
			used = url_userinfo(p, out);
		if (!used)
			used = query_param(p, out);
		if (used) {
			p += used;
			continue;
		}
		ef_strbuf_addn(out, p, 1);
		p++;
	}
}

char *ef_redact(const char *text)
{
	struct ef_strbuf out = EF_STRBUF_INIT;

	if (!text)
		return NULL;
	redact_into(text, &out);
	return ef_strbuf_take(&out);
}

char *ef_redact_buf(const char *text, char *out, size_t outsz)
{
	char *r;

	if (!out || outsz == 0)
		return out;
	r = ef_redact(text ? text : "");
	snprintf(out, outsz, "%s", r ? r : "");
	free(r);
	return out;
}

static void drop_secret_params(CURLU *u)
{
	char *q = NULL;
	struct ef_strbuf keep = EF_STRBUF_INIT;

	if (curl_url_get(u, CURLUPART_QUERY, &q, 0) != CURLUE_OK || !q)
		return;
	for (char *save = NULL, *tok = strtok_r(q, "&", &save); tok;
	     tok = strtok_r(NULL, "&", &save)) {
		size_t nl = strcspn(tok, "=");
		if (name_is_secretish(tok, nl))
			continue;
		if (keep.len)
			ef_strbuf_add(&keep, "&");
		ef_strbuf_add(&keep, tok);
	}
	curl_free(q);
	curl_url_set(u, CURLUPART_QUERY, keep.len ? keep.buf : NULL, 0);
	ef_strbuf_free(&keep);
}

static char *redact_one_url(const char *url)
{
	CURLU *u;
	char *s = NULL, *ret;

	if (!url)
		return NULL;
	u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		curl_url_cleanup(u);
		return ef_redact(url);
	}
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
	curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	drop_secret_params(u);
	if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK || !s) {
		curl_url_cleanup(u);
		return ef_redact(url);
	}
	ret = ef_redact(s);
	curl_free(s);
	curl_url_cleanup(u);
	return ret;
}

/* A list of endpoints (urllist.h) is redacted item by item. */
char *ef_redact_url(const char *url)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;
	char **items;
	size_t n;

	if (!url || ef_url_list_count(url) == 1)
		return redact_one_url(url);
	if (!(items = ef_url_list_split(url, &n)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char *one = redact_one_url(items[i]);

		if (!one) {
			ef_names_free(items);
			ef_strbuf_free(&sb);
			return NULL;
		}
		ef_strbuf_addf(&sb, "%s%s", i ? "," : "", one);
		free(one);
	}
	ef_names_free(items);
	return ef_strbuf_take(&sb);
}

/* --- connection strings --------------------------------------------------- */

#define DSN_HIDDEN "(connection string hidden)"

/* libpq marks the options whose value is a secret with dispchar "*"
 * (password, sslpassword); the names are checked too in case a libpq
 * version forgets one. */
static bool dsn_key_hidden(const PQconninfoOption *o)
{
	return (o->dispchar && strchr(o->dispchar, '*')) || strcmp(o->keyword, "password") == 0 ||
	       strcmp(o->keyword, "sslpassword") == 0;
}

/* key=value as libpq reads it back: the value bare when it holds no blank,
 * quote or backslash, else in single quotes with \' and \\. */
static void add_conninfo_pair(struct ef_strbuf *out, const char *kw, const char *v)
{
	if (out->len)
		ef_strbuf_add(out, " ");
	ef_strbuf_addf(out, "%s=", kw);
	if (*v && strcspn(v, " \t\n\r\f\v'\\") == strlen(v)) {
		ef_strbuf_add(out, v);
		return;
	}
	ef_strbuf_add(out, "'");
	for (; *v; v++) {
		if (*v == '\'' || *v == '\\')
			ef_strbuf_add(out, "\\");
		ef_strbuf_addn(out, v, 1);
	}
	ef_strbuf_add(out, "'");
}

/* The nearest libpq keyword to tok, into near: within an edit distance of
 * 1, or of 2 for a word of 7 letters or more ("passwrod"), so that a short
 * word of a password ("horse", 2 from "host") does not pass for a key;
 * false when there is none. */
static bool near_keyword(const char *tok, char *near, size_t n)
{
	PQconninfoOption *all = PQconninfoParse("", NULL);
	size_t max = strlen(tok) >= 7 ? 2 : 1, best = max + 1;

	for (PQconninfoOption *o = all; o && o->keyword; o++) {
		size_t d = ef_edit_distance(tok, o->keyword, max);
		if (d < best) {
			best = d;
			snprintf(near, n, "%s", o->keyword);
		}
	}
	PQconninfoFree(all);
	return best <= max;
}

static bool occurs_once(const char *hay, const char *tok, size_t len)
{
	size_t hl = strlen(hay);
	const char *p = memmem(hay, hl, tok, len);

	return p && !memmem(p + 1, hl - (size_t)(p + 1 - hay), tok, len);
}

/* Whether text libpq quotes in its message may be shown: its own
 * punctuation ("=", ":", "]"), or a misspelt key: a lowercase word close to
 * a libpq keyword that appears once in the string, so that it is not also
 * a value.  Anything else it quotes (a token, the whole URI) may hold the
 * password. */
static bool quoted_shown(const char *dsn, const char *tok, size_t len, char *near, size_t n)
{
	char word[48];

	if (len == 1 && ispunct((unsigned char)*tok))
		return true;
	if (len < 3 || len >= sizeof(word))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((tok[i] >= 'a' && tok[i] <= 'z') || tok[i] == '_'))
			return false;
	memcpy(word, tok, len);
	word[len] = '\0';
	return occurs_once(dsn, tok, len) && near_keyword(word, near, n);
}

/* libpq's parse errors (fe-connect.c): %s is text of the string, %c one
 * byte of it, %d a number.  libpq writes them in English here, as embfill
 * never sets LC_MESSAGES. */
static const char *const parse_errors[] = {
	"missing \"=\" after \"%s\" in connection info string",
	"unterminated quoted string in connection info string",
	"invalid connection option \"%s\"",
	"invalid percent-encoded token: \"%s\"",
	"forbidden value %%00 in percent-encoded value: \"%s\"",
	"invalid URI propagated to internal parser routine: \"%s\"",
	"end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"%s\"",
	"IPv6 host address may not be empty in URI: \"%s\"",
	"unexpected character \"%c\" at position %d in URI (expected \":\" or \"/\"): \"%s\"",
	"extra key/value separator \"=\" in URI query parameter: \"%s\"",
	"missing key/value separator \"=\" in URI query parameter: \"%s\"",
	"invalid URI query parameter: \"%s\"",
	"connection info string size exceeds the maximum allowed (%d)",
	"out of memory",
};

struct hole {
	const char *at;
	size_t len;
};

/* Matches msg[0..len) against template t, filling one hole per %s, %c or
 * %d (at most 3); a %s takes any text, trying the longest first.  Only a
 * hole recurses, so the depth stays at 3 however long the string is. */
static bool match_error(const char *t, const char *msg, size_t len, struct hole *h, int nh)
{
	size_t l;

	while (*t && !(t[0] == '%' && t[1] != '%')) {
		if (!len || *msg != *t)
			return false;
		t += t[0] == '%' ? 2 : 1;
		msg++;
		len--;
	}
	if (!*t)
		return len == 0;
	if (nh == 3)
		return false;
	h[nh].at = msg;
	if (t[1] == 'c' || t[1] == 'd') {
		l = t[1] == 'c' ? 1 : strspn(msg, "0123456789");
		h[nh].len = l;
		return l && l <= len && match_error(t + 2, msg + l, len - l, h, nh + 1);
	}
	for (l = len + 1; l-- > 0;) {
		h[nh].len = l;
		if (match_error(t + 2, msg + l, len - l, h, nh + 1))
			return true;
	}
	return false;
}

/* libpq's message with what it quotes from dsn replaced by "..." unless
 * quoted_shown() allows it (a number libpq adds is kept), on one line.  A
 * message of another shape is not shown, since where it quotes the string
 * cannot be told. */
static void add_parse_reason(struct ef_strbuf *out, const char *dsn, const char *msg)
{
	size_t len = strlen(msg), k, n = sizeof(parse_errors) / sizeof(parse_errors[0]);
	struct hole h[3];
	char near[64], meant[64] = "";
	int hi = 0;

	while (len && isspace((unsigned char)msg[len - 1]))
		len--;
	for (k = 0; k < n && !match_error(parse_errors[k], msg, len, h, 0); k++)
		;
	if (k == n) {
		ef_strbuf_add(out, "libpq's reason is not shown");
		return;
	}
	for (const char *t = parse_errors[k]; *t; t++) {
		const struct hole *x = &h[hi];

		if (*t != '%' || t[1] == '%') {
			ef_strbuf_addn(out, t, 1);
			t += *t == '%';
			continue;
		}
		hi++;
		t++;
		near[0] = '\0';
		if (*t == 'd' || quoted_shown(dsn, x->at, x->len, near, sizeof(near)))
			ef_strbuf_addn(out, x->at, x->len);
		else
			ef_strbuf_add(out, "...");
		if (near[0] && (strlen(near) != x->len || strncmp(near, x->at, x->len) != 0))
			snprintf(meant, sizeof(meant), "%s", near);
	}
	if (meant[0])
		ef_strbuf_addf(out, "; did you mean \"%s\"?", meant);
}

char *ef_redact_dsn_error(const char *dsn)
{
	struct ef_strbuf out = EF_STRBUF_INIT;
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn ? dsn : "", &msg);

	ef_strbuf_add(&out, "");
	if (opts)
		PQconninfoFree(opts);
	else
		add_parse_reason(&out, dsn ? dsn : "", msg ? msg : "out of memory");
	PQfreemem(msg);
	return ef_strbuf_take(&out);
}

/* The options libpq parsed from the string, without the secret ones;
 * PQconninfoParse fills in no defaults, so these are what the string said. */
static char *conninfo_without_secrets(const PQconninfoOption *opts)
{
	struct ef_strbuf out = EF_STRBUF_INIT;

	ef_strbuf_add(&out, "");
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && !dsn_key_hidden(o))
			add_conninfo_pair(&out, o->keyword, o->val);
	return ef_strbuf_take(&out);
}

char *ef_redact_dsn(const char *dsn)
{
	PQconninfoOption *opts;
	char *form, *red, *ret, *why;

	if (!dsn || !*dsn)
		return strdup("(libpq defaults)");
	opts = PQconninfoParse(dsn, NULL);
	if (!opts) {
		why = ef_redact_dsn_error(dsn);
		ret = NULL;
		if (why && asprintf(&ret, "(connection string hidden: libpq cannot parse it: %s)",
				    why) < 0)
			ret = NULL;
		free(why);
		return ret;
	}
	form = conninfo_without_secrets(opts);
	PQconninfoFree(opts);
	if (!form)
		return NULL;
	red = ef_redact(*form ? form : "(libpq defaults)");
	ret = red ? ef_sanitize(red, strlen(red), 0) : NULL;
	free(red);
	free(form);
	return ret;
}

char *ef_redact_dsn_command(const char *dsn)
{
	PQconninfoOption *opts;
	char *form, *red;

	if (!dsn || !*dsn)
		return strdup("");
	opts = PQconninfoParse(dsn, NULL);
	if (!opts)
		return strdup(DSN_HIDDEN);
	form = conninfo_without_secrets(opts);
	PQconninfoFree(opts);
	red = form ? ef_redact(form) : NULL;
	if (form && red && strcmp(form, red) != 0) {
		free(form);
		form = strdup(DSN_HIDDEN);
	}
	free(red);
	return form;
}

bool ef_redact_dsn_has_password(const char *dsn)
{
	PQconninfoOption *opts = dsn && *dsn ? PQconninfoParse(dsn, NULL) : NULL;
	bool found = false;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (o->val && *o->val && dsn_key_hidden(o))
			found = true;
	PQconninfoFree(opts);
	return found;
}

void ef_redact_add_dsn_secrets(const char *dsn)
{
	PQconninfoOption *opts;
	const char *env = getenv("PGPASSWORD");

	if (env)
		ef_redact_add_secret(env);
	if (!dsn || !*dsn)
		return;
	opts = PQconninfoParse(dsn, NULL);
	if (!opts)
		return;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && dsn_key_hidden(o))
			ef_redact_add_secret(o->val);
	PQconninfoFree(opts);
}

/* --- printing: formatted, redacted, sanitised ------------------------------ */

static void add_clean(struct ef_strbuf *out, const char *s, size_t len)
{
	char *seg = strndup(s, len), *red = seg ? ef_redact(seg) : NULL;
	char *clean = red ? ef_sanitize(red, strlen(red), 0) : NULL;

	if (clean)
		ef_strbuf_add(out, clean);
	else
		out->oom = true;
	free(clean);
	free(red);
	free(seg);
}

/* Which bytes of the formatted text the format wrote itself: fmt is
 * formatted twice, once as it is and once with each of its control bytes
 * replaced by '#'.  Conversions do not depend on the literal text around
 * them, so both results have the same length and differ exactly where fmt
 * wrote a control byte; every other control byte came from a value. */
char *ef_safe_vformat(const char *fmt, va_list ap)
{
	struct ef_strbuf out = EF_STRBUF_INIT;
	char *plain = NULL, *marked = NULL, *mfmt = strdup(fmt);
	size_t start = 0;
	int n1, n2;
	va_list ap2;

	if (!mfmt)
		return NULL;
	for (char *p = mfmt; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = '#';
	va_copy(ap2, ap);
	n1 = vasprintf(&plain, fmt, ap);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n2 = vasprintf(&marked, mfmt, ap2);
#pragma GCC diagnostic pop
	va_end(ap2);
	free(mfmt);
	if (n1 < 0 || n2 < 0) {
		free(n1 < 0 ? NULL : plain);
		free(n2 < 0 ? NULL : marked);
		return NULL;
	}
	ef_strbuf_add(&out, "");
	for (size_t i = 0; n1 == n2 && i < (size_t)n1; i++) {
		if (plain[i] == marked[i])
			continue;
		add_clean(&out, plain + start, i - start);
		ef_strbuf_addn(&out, plain + i, 1);
		start = i + 1;
	}
	add_clean(&out, plain + start, (size_t)n1 - start);
	free(plain);
	free(marked);
	return ef_strbuf_take(&out);
}
