/*
 * embed.c - the embedding client's configuration: checking it, resolving
 * it into the endpoint URL and owned strings, the API key file, and the
 * redacted form of the URL that every message uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/service/embed_http.h"
#include "core/service/embed_route.h"
#include "embfill/strbuf.h"
#include "embfill/urllist.h"

#define KEY_FILE_MAX 4096

static const char *const provider_names[] = {
	[EF_EMBED_NONE] = "none",
	[EF_EMBED_OLLAMA] = "ollama",
	[EF_EMBED_OPENAI] = "openai",
	[EF_EMBED_TEI] = "tei",
};

const char *ef_embed_provider_name(enum ef_embed_provider p)
{
	if ((unsigned)p >= sizeof(provider_names) / sizeof(provider_names[0]))
		return "none";
	return provider_names[p];
}

ef_status ef_embed_provider_parse(const char *name, enum ef_embed_provider *out,
				  struct ef_error *err)
{
	ef_error_clear(err);
	for (int p = EF_EMBED_OLLAMA; p <= EF_EMBED_TEI; p++) {
		if (name && strcmp(name, provider_names[p]) == 0) {
			*out = (enum ef_embed_provider)p;
			return EF_OK;
		}
	}
	ef_error_set(err, EF_ERR_USAGE, "unknown embedding provider \"%s\"", name ? name : "");
	return ef_error_hint(err, "set EMBED_PROVIDER to ollama, openai or tei");
}

static const char *const encoding_names[] = {
	[EF_EMBED_ENC_AUTO] = "auto",
	[EF_EMBED_ENC_BASE64] = "base64",
	[EF_EMBED_ENC_FLOAT] = "float",
};

const char *ef_embed_encoding_name(enum ef_embed_encoding e)
{
	if ((unsigned)e >= sizeof(encoding_names) / sizeof(encoding_names[0]))
		return "auto";
	return encoding_names[e];
}

enum ef_embed_encoding ef_embed_encoding_from(const char *name)
{
	for (int e = EF_EMBED_ENC_BASE64; e <= EF_EMBED_ENC_FLOAT; e++)
		if (name && strcmp(name, encoding_names[e]) == 0)
			return (enum ef_embed_encoding)e;
	return EF_EMBED_ENC_AUTO;
}

void ef_embed_config_defaults(struct ef_embed_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->connect_timeout_ms = 10000;
	cfg->timeout_ms = 120000;
	cfg->max_attempts = 5;
	cfg->backoff_base_ms = 500;
	cfg->backoff_max_ms = 30000;
	cfg->retry_after_max_ms = 60000;
	cfg->reject_streak_max = 50;
}

/* --- URLs ------------------------------------------------------------------ */

/*
 * What a message may show of a URL: scheme://host:port/path.  Userinfo can
 * hold a password and a query string a token, so both go; curl's parser
 * decides where each part starts, not a hand-written one.
 */
static void redact_url(const char *url, char *out, size_t size)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
		snprintf(out, size, "%s://%s:%s%s", scheme, host, port, path);
	else
		snprintf(out, size, "(unreadable URL)");
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
}

static const char *endpoint_path(enum ef_embed_provider p)
{
	switch (p) {
	case EF_EMBED_OLLAMA: return "/api/embed";
	case EF_EMBED_OPENAI: return "/v1/embeddings";
	default: return "/embed";
	}
}

/*
 * Appends the provider's path to the base path.  OpenAI's own docs give
 * the base URL with "/v1", so a base that already ends in it keeps one.
 */
static int join_path(CURLU *u, enum ef_embed_provider p)
{
	char *base = NULL;
	char path[2048];
	size_t len;
	const char *add = endpoint_path(p);

	if (curl_url_get(u, CURLUPART_PATH, &base, 0) != CURLUE_OK)
		return -1;
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	if (p == EF_EMBED_OPENAI && len >= 3 && strncmp(base + len - 3, "/v1", 3) == 0)
		add = "/embeddings";
	snprintf(path, sizeof(path), "%.*s%s", (int)len, base, add);
	curl_free(base);
	return curl_url_set(u, CURLUPART_PATH, path, 0) == CURLUE_OK ? 0 : -1;
}

static int http_scheme(CURLU *u)
{
	char *scheme = NULL;
	int ok;

	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		return 0;
	ok = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
	curl_free(scheme);
	return ok;
}

/*
 * The URL to POST to, malloc'ed, or NULL when the base is not an http(s)
 * URL.  CURLU_NON_SUPPORT_SCHEME lets the scheme check give the message.
 */
static char *make_endpoint(const char *base, enum ef_embed_provider p)
{
	CURLU *u = curl_url();
	char *full = NULL, *copy = NULL;

	if (u && base && curl_url_set(u, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    http_scheme(u) && join_path(u, p) == 0 &&
	    curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK)
		copy = strdup(full);
	curl_free(full);
	curl_url_cleanup(u);
	return copy;
}

/* --- checking ------------------------------------------------------------- */

/* A key goes into a header line: a blank or control character would end it. */
static int key_printable(const char *key)
{
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

static ef_status check_strings(const struct ef_embed_config *cfg, struct ef_error *err)
{
	const char *pname = ef_embed_provider_name(cfg->provider);
	char why[128];

	if (cfg->provider < EF_EMBED_OLLAMA || cfg->provider > EF_EMBED_TEI) {
		ef_error_set(err, EF_ERR_USAGE, "no embedding provider chosen");
		return ef_error_hint(err, "set EMBED_PROVIDER to ollama, openai or tei");
	}
	if (cfg->provider != EF_EMBED_TEI && (!cfg->model || !cfg->model[0])) {
		ef_error_set(err, EF_ERR_USAGE, "provider \"%s\" needs a model name", pname);
		return ef_error_hint(err, "set EMBED_MODEL");
	}
	if (cfg->api_key && (!cfg->api_key[0] || !key_printable(cfg->api_key))) {
		ef_error_set(err, EF_ERR_USAGE, "the API key is empty or holds blanks or control "
			     "characters");
		return ef_error_hint(err, "check EMBED_API_KEY or the key file for a stray quote, "
				     "space or line break");
	}
	if ((unsigned)cfg->encoding > EF_EMBED_ENC_FLOAT) {
		ef_error_set(err, EF_ERR_USAGE, "unknown vector encoding %d", (int)cfg->encoding);
		return ef_error_hint(err, "set EMBED_ENCODING to auto, base64 or float");
	}
	if (cfg->provider == EF_EMBED_TEI && cfg->encoding == EF_EMBED_ENC_BASE64 &&
	    !ef_embed_route_eligible(&cfg->sw, why, sizeof(why))) {
		ef_error_set(err, EF_ERR_USAGE, "EMBED_ENCODING=base64 needs "
			     "text-embeddings-inference's OpenAI route, which cannot be used with "
			     "this recipe: %s", why);
		return ef_error_hint(err, "set EMBED_ENCODING=auto (or float): /embed honours the "
				     "recipe and sends the vectors as numbers");
	}
	if (cfg->ca_file && access(cfg->ca_file, R_OK) != 0) {
		ef_error_set(err, EF_ERR_USAGE, "cannot read CA file \"%s\": %s", cfg->ca_file,
			     strerror(errno));
		return ef_error_hint(err, "point EMBED_CA_FILE at a readable PEM bundle");
	}
	return EF_OK;
}

static ef_status check_numbers(const struct ef_embed_config *cfg, struct ef_error *err)
{
	if (cfg->dim < 0 || cfg->dim > 65535) {
		ef_error_set(err, EF_ERR_USAGE, "embedding dimension %d is out of range", cfg->dim);
		return ef_error_hint(err, "set EMBED_DIM to the model's dimension (1..65535)");
	}
	if (cfg->connect_timeout_ms < 0 || cfg->timeout_ms < 0 || cfg->backoff_base_ms < 0 ||
	    cfg->backoff_max_ms < 0 || cfg->retry_after_max_ms < 0 || cfg->retry_budget_ms < 0) {
		ef_error_set(err, EF_ERR_USAGE, "a negative timeout or backoff delay");
		return ef_error_hint(err, "check EMBED_TIMEOUT_S");
	}
	return EF_OK;
}

char *ef_embed_url_at(const char *list, size_t i)
{
	size_t n = 0;
	char **items = ef_url_list_split(list, &n), *one = NULL;

	if (items && i < n)
		one = strdup(items[i]);
	ef_names_free(items);
	return one;
}

size_t ef_embed_endpoint_count(const struct ef_embed_config *cfg)
{
	return cfg->url ? ef_url_list_count(cfg->url) : 1;
}

ef_status ef_embed_config_check(const struct ef_embed_config *cfg, struct ef_error *err)
{
	size_t n = ef_embed_endpoint_count(cfg);

	ef_error_clear(err);
	if (check_strings(cfg, err) != EF_OK || check_numbers(cfg, err) != EF_OK)
		return err ? err->status : EF_ERR_USAGE;
	if (n > EF_EMBED_MAX_ENDPOINTS) {
		ef_error_set(err, EF_ERR_USAGE, "EMBED_URL lists %zu endpoints; at most %d are "
			     "driven at once", n, EF_EMBED_MAX_ENDPOINTS);
		return ef_error_hint(err, "list at most %d endpoints of one service",
				     EF_EMBED_MAX_ENDPOINTS);
	}
	for (size_t i = 0; i < n; i++) {
		char *one = ef_embed_url_at(cfg->url, i);
		char *endpoint = one ? make_endpoint(one, cfg->provider) : NULL;

		free(one);
		if (!endpoint) {
			/* The value is not shown: it could not be parsed, so not redacted. */
			if (n == 1)
				ef_error_set(err, EF_ERR_USAGE, "EMBED_URL is not an http or https URL");
			else
				ef_error_set(err, EF_ERR_USAGE, "endpoint %zu of %zu in EMBED_URL is not "
					     "an http or https URL", i + 1, n);
			return ef_error_hint(err, "set EMBED_URL to the service's base URL, e.g. "
					     "http://127.0.0.1:11434, or several separated by commas");
		}
		free(endpoint);
	}
	return EF_OK;
}

/* --- resolving ------------------------------------------------------------ */

static long or_default(long v, long def)
{
	return v > 0 ? v : def;
}

static void apply_defaults(const struct ef_embed_config *cfg, struct ef_embed_resolved *r)
{
	r->provider = cfg->provider;
	r->dim = cfg->dim;
	r->connect_timeout_ms = or_default(cfg->connect_timeout_ms, 10000);
	r->timeout_ms = or_default(cfg->timeout_ms, 120000);
	r->max_attempts = cfg->max_attempts ? cfg->max_attempts : 5;
	r->retry_budget_ms = cfg->retry_budget_ms > 0 ? cfg->retry_budget_ms : 0;
	r->backoff_base_ms = or_default(cfg->backoff_base_ms, 500);
	r->backoff_max_ms = or_default(cfg->backoff_max_ms, 30000);
	r->retry_after_max_ms = or_default(cfg->retry_after_max_ms, 60000);
	r->reject_streak_max = cfg->reject_streak_max ? cfg->reject_streak_max : 50;
	r->encoding = cfg->encoding;
	r->sw = cfg->sw;
	r->base64 = cfg->provider == EF_EMBED_OPENAI && cfg->encoding != EF_EMBED_ENC_FLOAT;
	r->rng = cfg->jitter_seed ? cfg->jitter_seed
		 : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)r;
}

static char *dup_or_null(const char *s, int *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = 1;
	return d;
}

static char *bearer(const char *key, int *oom)
{
	size_t len;
	char *h;

	if (!key)
		return NULL;
	len = strlen(key) + sizeof("Authorization: Bearer ");
	h = malloc(len);
	if (!h)
		*oom = 1;
	else
		snprintf(h, len, "Authorization: Bearer %s", key);
	return h;
}

ef_status ef_embed_resolve(const struct ef_embed_config *cfg, struct ef_embed_resolved *r,
			   struct ef_error *err)
{
	return ef_embed_resolve_at(cfg, 0, r, err);
}

ef_status ef_embed_resolve_at(const struct ef_embed_config *cfg, size_t i,
			      struct ef_embed_resolved *r, struct ef_error *err)
{
	int oom = 0;
	char *one;

	memset(r, 0, sizeof(*r));
	if (ef_embed_config_check(cfg, err) != EF_OK)
		return err ? err->status : EF_ERR_USAGE;
	apply_defaults(cfg, r);
	one = ef_embed_url_at(cfg->url, i);
	r->endpoint = one ? make_endpoint(one, cfg->provider) : NULL;
	free(one);
	oom |= r->endpoint == NULL;
	r->model = dup_or_null(cfg->model, &oom);
	r->api_key = dup_or_null(cfg->api_key, &oom);
	r->ca_file = dup_or_null(cfg->ca_file, &oom);
	r->auth_header = bearer(cfg->api_key, &oom);
	if (oom) {
		ef_embed_resolved_release(r);
		return ef_error_oom(err, "preparing the embedding client");
	}
	redact_url(r->endpoint, r->shown, sizeof(r->shown));
	return EF_OK;
}

/* Secrets are wiped, not only freed: a core dump should not hold them. */
static void wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void ef_embed_resolved_release(struct ef_embed_resolved *r)
{
	free(r->endpoint);
	free(r->model);
	wipe_free(r->api_key);
	free(r->ca_file);
	wipe_free(r->auth_header);
	memset(r, 0, sizeof(*r));
}

/* --- key file -------------------------------------------------------------- */

static ef_status key_file_mode(int fd, const char *path, struct ef_error *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return ef_error_set(err, EF_ERR_USAGE, "cannot stat key file \"%s\": %s", path,
				    strerror(errno));
	if (!S_ISREG(st.st_mode)) {
		ef_error_set(err, EF_ERR_USAGE, "key file \"%s\" is not a regular file", path);
		return ef_error_hint(err, "point EMBED_API_KEY_FILE at a file holding the key");
	}
	if (st.st_mode & (S_IRGRP | S_IROTH)) {
		ef_error_set(err, EF_ERR_USAGE, "key file \"%s\" is readable by other users (mode %03o)",
			     path, (unsigned)(st.st_mode & 0777));
		return ef_error_hint(err, "run `chmod 600 %s`", path);
	}
	return EF_OK;
}

static ef_status read_all(int fd, const char *path, char *buf, size_t size, size_t *len,
			  struct ef_error *err)
{
	ssize_t got;

	*len = 0;
	while ((got = read(fd, buf + *len, size - 1 - *len)) > 0)
		if ((*len += (size_t)got) >= size - 1)
			break;
	if (got < 0)
		return ef_error_set(err, EF_ERR_USAGE, "cannot read key file \"%s\": %s", path,
				    strerror(errno));
	if (*len >= size - 1) {
		ef_error_set(err, EF_ERR_USAGE, "key file \"%s\" is larger than %zu bytes", path,
			     size - 2);
		return ef_error_hint(err, "the file should hold the key alone, on one line");
	}
	buf[*len] = '\0';
	return EF_OK;
}

/* Strips the trailing newline and blanks, then insists on one clean token. */
static ef_status key_text(char *buf, size_t len, const char *path, struct ef_error *err)
{
	while (len > 0 && (unsigned char)buf[len - 1] <= ' ')
		buf[--len] = '\0';
	if (len == 0) {
		ef_error_set(err, EF_ERR_USAGE, "key file \"%s\" is empty", path);
		return ef_error_hint(err, "write the API key into it, or unset EMBED_API_KEY_FILE");
	}
	if (strlen(buf) != len || !key_printable(buf)) {
		ef_error_set(err, EF_ERR_USAGE, "key file \"%s\" holds more than one token", path);
		return ef_error_hint(err, "the file should hold the key alone, on one line");
	}
	return EF_OK;
}

ef_status ef_embed_read_key_file(const char *path, char **out, struct ef_error *err)
{
	char buf[KEY_FILE_MAX + 2];
	size_t len = 0;
	ef_status st;
	int fd;

	*out = NULL;
	ef_error_clear(err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ef_error_set(err, EF_ERR_USAGE, "cannot open key file \"%s\": %s", path, strerror(errno));
		return ef_error_hint(err, "check EMBED_API_KEY_FILE");
	}
	st = key_file_mode(fd, path, err);
	if (st == EF_OK)
		st = read_all(fd, path, buf, sizeof(buf), &len, err);
	close(fd);
	if (st == EF_OK)
		st = key_text(buf, len, path, err);
	if (st == EF_OK && !(*out = strdup(buf)))
		st = ef_error_oom(err, "reading the key file");
	explicit_bzero(buf, sizeof(buf));
	return st;
}
