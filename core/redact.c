/*
 * redact.c - masking of secrets in everything embfill prints or writes.
 *
 * The rules are deliberately on the side of hiding too much: an operator
 * loses nothing by seeing "***" where a harmless value was, while a key that
 * reaches a terminal recording or a historylog committed to git is a leak.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "embfill/ident.h"
#include "embfill/redact.h"
#include "embfill/sanitize.h"
#include "embfill/strbuf.h"

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

char *ef_redact_url(const char *url)
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

static size_t occurrences(const char *hay, const char *tok, size_t len)
{
	size_t n = 0;

	for (const char *p = hay; (p = memmem(p, strlen(p), tok, len)); p++)
		n++;
	return n;
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
	return occurrences(dsn, tok, len) == 1 && near_keyword(word, near, n);
}

/* libpq's message without the text it quotes from dsn (see quoted_shown),
 * on one line.  libpq writes English here: embfill never sets
 * LC_MESSAGES, so the quotes are always '"'. */
static void add_parse_reason(struct ef_strbuf *out, const char *dsn, const char *msg)
{
	struct ef_strbuf r = EF_STRBUF_INIT;
	char near[64] = "", cand[64];
	size_t len = strlen(msg);
	char *clean;

	while (len && isspace((unsigned char)msg[len - 1]))
		len--;
	for (size_t i = 0; i < len; i++) {
		const char *close;
		size_t tl;

		if (msg[i] != '"') {
			ef_strbuf_addn(&r, msg + i, 1);
			continue;
		}
		close = memchr(msg + i + 1, '"', len - i - 1);
		tl = close ? (size_t)(close - msg - i - 1) : 0;
		if (close && quoted_shown(dsn, msg + i + 1, tl, cand, sizeof(cand))) {
			ef_strbuf_addn(&r, msg + i, tl + 2);
			if (tl > 1 && (strlen(cand) != tl || strncmp(cand, msg + i + 1, tl) != 0))
				snprintf(near, sizeof(near), "%s", cand);
		} else {
			ef_strbuf_add(&r, "\"...\"");
		}
		if (!close)
			break;
		i = (size_t)(close - msg);
	}
	if (near[0])
		ef_strbuf_addf(&r, "; did you mean \"%s\"?", near);
	clean = ef_sanitize(ef_strbuf_str(&r), r.len, 0);
	ef_strbuf_add(out, clean ? clean : "?");
	if (!clean)
		out->oom = true;
	free(clean);
	ef_strbuf_free(&r);
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
