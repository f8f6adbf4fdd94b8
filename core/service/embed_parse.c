/*
 * embed_parse.c - request, response and error bodies of the embedding
 * providers.  Every check that decides whether vectors may reach the
 * database lives here, where it can be tested and fuzzed without a network.
 */
#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/service/embed_parse.h"

/* --- request bodies ------------------------------------------------------- */

/*
 * String references, not copies: a batch of large chunks would otherwise be
 * held three times (caller, tree, printed body) at the peak.
 */
static cJSON *input_array(const char *const *texts, size_t n)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; arr && i < n; i++) {
		cJSON *s = cJSON_CreateStringReference(texts[i]);

		if (!s || !cJSON_AddItemToArray(arr, s)) {
			cJSON_Delete(s);
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}

/*
 * Ollama cuts an input longer than the model's context unless told not to,
 * and answers the cut text's vector as if it were the chunk's; "truncate":
 * false makes it refuse the input instead, as OpenAI and TEI do by default,
 * so that the chunk is quarantined with its reason.
 */
static int add_model(cJSON *root, enum ef_embed_provider provider, const char *model)
{
	if (provider == EF_EMBED_TEI)
		return 1;
	if (!cJSON_AddStringToObject(root, "model", model ? model : ""))
		return 0;
	if (provider == EF_EMBED_OPENAI)
		return cJSON_AddStringToObject(root, "encoding_format", "float") != NULL;
	return cJSON_AddFalseToObject(root, "truncate") != NULL;
}

char *ef_embed_build_request(enum ef_embed_provider provider, const char *model,
			     const char *const *texts, size_t n)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = input_array(texts, n);
	const char *key = provider == EF_EMBED_TEI ? "inputs" : "input";
	char *body = NULL;

	if (root && arr && add_model(root, provider, model)) {
		cJSON_AddItemToObject(root, key, arr);
		arr = NULL;
		body = cJSON_PrintUnformatted(root);
	}
	cJSON_Delete(arr);
	cJSON_Delete(root);
	return body;
}

/* --- response bodies ------------------------------------------------------ */

/*
 * cJSON accepts a value followed by anything when it is not asked for a
 * terminator; a body with trailing garbage is a broken answer, not a valid
 * one with noise, so only whitespace may follow.
 */
static cJSON *parse_json(const char *body, size_t len)
{
	const char *end = NULL;
	cJSON *root;

	if (!body || len == 0)
		return NULL;
	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (!root)
		return NULL;
	for (; end && end < body + len; end++) {
		if (!isspace((unsigned char)*end) && *end != '\0') {
			cJSON_Delete(root);
			return NULL;
		}
	}
	return root;
}

static enum ef_embed_parse_rc fail(enum ef_embed_parse_rc rc, char *why, size_t whylen,
				   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum ef_embed_parse_rc fail(enum ef_embed_parse_rc rc, char *why, size_t whylen,
				   const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/*
 * A float column cannot hold what a double overflows to, and a NaN or an
 * infinity poisons every distance computed against it; cJSON turns 1e999
 * into inf, so finiteness is checked after the narrowing too.
 */
static int finite_float(double v)
{
	return isfinite(v) && fabs(v) <= FLT_MAX;
}

/* Counts a row's numbers; -1 if it is not an array of finite numbers. */
static int row_dim(const cJSON *row)
{
	const cJSON *v;
	int d = 0;

	if (!cJSON_IsArray(row))
		return -1;
	cJSON_ArrayForEach(v, row) {
		if (!cJSON_IsNumber(v) || !finite_float(v->valuedouble) || d == INT_MAX)
			return -1;
		d++;
	}
	return d;
}

static enum ef_embed_parse_rc check_dims(const cJSON *const *rows, size_t n, int dim,
					 struct ef_embed_vectors *out, char *why,
					 size_t whylen)
{
	int d0 = -1;

	for (size_t i = 0; i < n; i++) {
		int d = row_dim(rows[i]);

		if (d < 0)
			return fail(EF_EMBED_PARSE_INVALID, why, whylen,
				    "item %zu is not an array of finite numbers", i);
		if (d == 0)
			return fail(EF_EMBED_PARSE_INVALID, why, whylen, "item %zu is empty", i);
		if (i > 0 && d != d0)
			return fail(EF_EMBED_PARSE_INVALID, why, whylen,
				    "vectors of different dimensions (%d at item 0, %d at item %zu)",
				    d0, d, i);
		d0 = d;
	}
	out->dim = d0;
	if (dim > 0 && d0 != dim)
		return fail(EF_EMBED_PARSE_DIM, why, whylen,
			    "the service returns vectors of dimension %d, expected %d", d0, dim);
	return EF_EMBED_PARSE_OK;
}

static enum ef_embed_parse_rc fill(const cJSON *const *rows, size_t n,
				   struct ef_embed_vectors *out, char *why, size_t whylen)
{
	size_t k = 0;

	out->data = malloc(n * (size_t)out->dim * sizeof(float));
	if (!out->data)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "out of memory for %zu vectors", n);
	for (size_t i = 0; i < n; i++) {
		const cJSON *v;

		cJSON_ArrayForEach(v, rows[i])
			out->data[k++] = (float)v->valuedouble;
	}
	out->n = n;
	return EF_EMBED_PARSE_OK;
}

/* Rows in input order from an array of arrays (ollama, tei). */
static enum ef_embed_parse_rc rows_plain(const cJSON *arr, const cJSON **rows, size_t n,
					 char *why, size_t whylen)
{
	const cJSON *row;
	size_t i = 0;

	if (!cJSON_IsArray(arr))
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "no array of embeddings");
	cJSON_ArrayForEach(row, arr) {
		if (i < n)
			rows[i] = row;
		i++;
	}
	if (i != n)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen,
			    "%zu vectors returned for %zu inputs", i, n);
	return EF_EMBED_PARSE_OK;
}

/* An openai item's index, or -1 when it is not a whole number in [0, n). */
static long item_index(const cJSON *item, size_t n)
{
	const cJSON *ix = cJSON_GetObjectItemCaseSensitive(item, "index");
	double v;

	if (!cJSON_IsNumber(ix))
		return -1;
	v = ix->valuedouble;
	if (!(v >= 0) || v >= (double)n || v != floor(v))
		return -1;
	return (long)v;
}

/*
 * OpenAI-compatible servers may answer out of order (vLLM does under load),
 * so rows are placed by "index"; an index missing, repeated or out of range
 * means the answer cannot be matched to the inputs and is thrown away.
 */
static enum ef_embed_parse_rc rows_openai(const cJSON *data, const cJSON **rows, size_t n,
					  char *why, size_t whylen)
{
	const cJSON *item;
	size_t count = 0;

	if (!cJSON_IsArray(data))
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "no \"data\" array");
	if ((size_t)cJSON_GetArraySize(data) != n)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "%d vectors returned for %zu inputs",
			    cJSON_GetArraySize(data), n);
	cJSON_ArrayForEach(item, data) {
		long ix = item_index(item, n);

		if (ix < 0)
			return fail(EF_EMBED_PARSE_INVALID, why, whylen,
				    "item %zu has no valid \"index\"", count);
		if (rows[ix])
			return fail(EF_EMBED_PARSE_INVALID, why, whylen, "index %ld appears twice", ix);
		rows[ix] = cJSON_GetObjectItemCaseSensitive(item, "embedding");
		if (cJSON_IsString(rows[ix]))
			return fail(EF_EMBED_PARSE_MALFORMED, why, whylen,
				    "embeddings came base64-encoded, not as floats");
		count++;
	}
	return EF_EMBED_PARSE_OK;
}

static enum ef_embed_parse_rc locate_rows(enum ef_embed_provider provider, const cJSON *root,
					  const cJSON **rows, size_t n, char *why,
					  size_t whylen)
{
	switch (provider) {
	case EF_EMBED_OLLAMA:
		return rows_plain(cJSON_GetObjectItemCaseSensitive(root, "embeddings"), rows, n,
				  why, whylen);
	case EF_EMBED_OPENAI:
		return rows_openai(cJSON_GetObjectItemCaseSensitive(root, "data"), rows, n, why,
				   whylen);
	case EF_EMBED_TEI:
		return rows_plain(root, rows, n, why, whylen);
	default:
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "unknown provider");
	}
}

enum ef_embed_parse_rc ef_embed_parse_response(enum ef_embed_provider provider,
					       const char *body, size_t len, size_t n,
					       int dim, struct ef_embed_vectors *out,
					       char *why, size_t whylen)
{
	const cJSON **rows;
	cJSON *root;
	enum ef_embed_parse_rc rc;

	memset(out, 0, sizeof(*out));
	if (why && whylen)
		why[0] = '\0';
	root = parse_json(body, len);
	if (!root)
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "the body is not valid JSON");
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		rc = fail(EF_EMBED_PARSE_INVALID, why, whylen, "out of memory");
	else
		rc = locate_rows(provider, root, rows, n, why, whylen);
	if (rc == EF_EMBED_PARSE_OK && n > 0)
		rc = check_dims(rows, n, dim, out, why, whylen);
	if (rc == EF_EMBED_PARSE_OK && n > 0)
		rc = fill(rows, n, out, why, whylen);
	free(rows);
	cJSON_Delete(root);
	return rc;
}

/* --- error bodies --------------------------------------------------------- */

/* Drops a multibyte sequence that a cut at k left incomplete. */
static size_t utf8_cut(const char *s, size_t k)
{
	size_t i = k;
	unsigned char lead;
	size_t need;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return k;
	lead = (unsigned char)s[i - 1];
	need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	return k - (i - 1) < need ? i - 1 : k;
}

/*
 * A service's message ends up in a terminal and in the quarantine table:
 * one line of printable text, blanks squeezed, cut on a UTF-8 boundary.
 */
static void copy_clean(char *dst, size_t size, const char *src, size_t len)
{
	size_t k = 0;

	for (size_t i = 0; i < len && src[i] && k + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (k == 0 || dst[k - 1] == ' '))
			continue;
		dst[k++] = (char)c;
	}
	k = utf8_cut(dst, k);
	while (k > 0 && dst[k - 1] == ' ')
		k--;
	dst[k] = '\0';
}

static void take_string(char *dst, size_t size, const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (dst[0] == '\0' && cJSON_IsString(v))
		copy_clean(dst, size, v->valuestring, strlen(v->valuestring));
}

/* FastAPI servers answer {"detail":[{"msg":...}]} to a validation error. */
static void take_detail(struct ef_embed_err_info *out, const cJSON *root)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "detail");

	take_string(out->message, sizeof(out->message), root, "detail");
	if (out->message[0] == '\0' && cJSON_IsArray(d)) {
		take_string(out->message, sizeof(out->message), cJSON_GetArrayItem(d, 0), "msg");
		if (out->type[0] == '\0')
			snprintf(out->type, sizeof(out->type), "validation");
	}
}

static void read_error_json(struct ef_embed_err_info *out, const cJSON *root)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");

	if (cJSON_IsObject(e)) {
		take_string(out->message, sizeof(out->message), e, "message");
		take_string(out->type, sizeof(out->type), e, "code");
		take_string(out->type, sizeof(out->type), e, "type");
	}
	take_string(out->message, sizeof(out->message), root, "error");
	take_string(out->message, sizeof(out->message), root, "message");
	take_detail(out, root);
	take_string(out->type, sizeof(out->type), root, "error_type");
	take_string(out->type, sizeof(out->type), root, "code");
	take_string(out->type, sizeof(out->type), root, "type");
}

void ef_embed_parse_error(const char *body, size_t len, struct ef_embed_err_info *out)
{
	cJSON *root = parse_json(body, len);

	memset(out, 0, sizeof(*out));
	if (cJSON_IsObject(root)) {
		read_error_json(out, root);
	} else if (!root && body && len > 0) {
		const char *nl = memchr(body, '\n', len);

		copy_clean(out->message, sizeof(out->message), body,
			   nl ? (size_t)(nl - body) : len);
	}
	cJSON_Delete(root);
	out->kind = ef_embed_err_kind_of(out->message, out->type);
}

/* --- sorting messages ----------------------------------------------------- */

static int has(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

static int has_any(const char *hay, const char *const *needles)
{
	for (; *needles; needles++)
		if (has(hay, *needles))
			return 1;
	return 0;
}

static const char *const quota_words[] = {
	"insufficient_quota", "current quota", "billing", "out of credits", NULL,
};

static const char *const model_words[] = {
	"not found", "does not exist", "not pulled", "no such model", "unknown model",
	"model_not_found", NULL,
};

static const char *const auth_words[] = {
	"api key", "api_key", "apikey", "unauthorized", "unauthenticated",
	"authentication", "invalid_api_key", "permission denied", "forbidden", NULL,
};

/*
 * The providers' own words for "too much at once": OpenAI and vLLM
 * ("maximum context length"), ollama ("input length exceeds the context
 * length"), TEI ("must have less than N tokens", "batch size N > maximum
 * allowed batch size M", 413 "length limit exceeded"), llama.cpp ("input
 * is too large", "physical batch size").
 */
static const char *const large_words[] = {
	"context length", "context window", "context size", "must have less than",
	"maximum allowed batch size", "batch size", "too large", "too long",
	"too many tokens", "too many inputs", "length limit", "exceeds the maximum",
	"maximum input length", "token limit", "payload too large", "entity too large",
	NULL,
};

static const char *const overload_words[] = {
	"loading", "overloaded", "rate limit", "rate_limit", "too many requests",
	"try again", "busy", "unavailable", NULL,
};

static const char *const input_words[] = {
	"validation", "invalid", "tokeniz", "bad request", "badrequest", "empty",
	"unprocessable", NULL,
};

enum ef_embed_err_kind ef_embed_err_kind_of(const char *message, const char *type)
{
	if (has_any(message, quota_words) || has_any(type, quota_words))
		return EF_EMBED_EK_QUOTA;
	if ((has(message, "model") && has_any(message, model_words)) ||
	    has(type, "model_not_found"))
		return EF_EMBED_EK_MODEL;
	if (has_any(message, auth_words) || has_any(type, auth_words))
		return EF_EMBED_EK_AUTH;
	if (has_any(message, large_words) || has(type, "context_length") ||
	    has(type, "too_large"))
		return EF_EMBED_EK_TOO_LARGE;
	if (has_any(message, overload_words) || has_any(type, overload_words))
		return EF_EMBED_EK_OVERLOAD;
	if (has_any(message, input_words) || has_any(type, input_words))
		return EF_EMBED_EK_INPUT;
	return EF_EMBED_EK_NONE;
}
