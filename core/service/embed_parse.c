/*
 * embed_parse.c - request, response and error bodies of the embedding
 * providers.  Every check that decides whether vectors may reach the
 * database lives here, where it can be tested and fuzzed without a network.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/service/embed_parse.h"
#include "core/service/embed_wire.h"

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
 * so that the chunk is quarantined with its reason (EMBED_TRUNCATE=true
 * lets ollama and tei cut it).  The other switches are sent only when set,
 * to the providers that have them: "dimensions" (openai, ollama) and
 * "normalize" (tei); the settings refuse them elsewhere.
 */
static int add_model(cJSON *root, enum ef_embed_provider provider, const char *model,
		     bool base64, const struct ef_embed_switches *sw)
{
	bool ok = true;

	if (provider == EF_EMBED_TEI) {
		if (sw && sw->truncate)
			ok = cJSON_AddTrueToObject(root, "truncate") != NULL;
		if (ok && sw && sw->normalize)
			ok = cJSON_AddBoolToObject(root, "normalize", sw->normalize > 0) != NULL;
		return ok;
	}
	if (!cJSON_AddStringToObject(root, "model", model ? model : ""))
		return 0;
	if (provider == EF_EMBED_OPENAI)
		ok = cJSON_AddStringToObject(root, "encoding_format",
					     base64 ? "base64" : "float") != NULL;
	else
		ok = cJSON_AddBoolToObject(root, "truncate", sw && sw->truncate) != NULL;
	if (ok && sw && sw->dimensions > 0)
		ok = cJSON_AddNumberToObject(root, "dimensions", sw->dimensions) != NULL;
	return ok;
}

char *ef_embed_build_request_with(enum ef_embed_provider provider, const char *model,
				  bool base64, const struct ef_embed_switches *sw,
				  const char *const *texts, size_t n)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = input_array(texts, n);
	const char *key = provider == EF_EMBED_TEI ? "inputs" : "input";
	char *body = NULL;

	if (root && arr && add_model(root, provider, model, base64, sw)) {
		cJSON_AddItemToObject(root, key, arr);
		arr = NULL;
		body = cJSON_PrintUnformatted(root);
	}
	cJSON_Delete(arr);
	cJSON_Delete(root);
	return body;
}

char *ef_embed_build_request_as(enum ef_embed_provider provider, const char *model,
				bool base64, const char *const *texts, size_t n)
{
	return ef_embed_build_request_with(provider, model, base64, NULL, texts, n);
}

char *ef_embed_build_request(enum ef_embed_provider provider, const char *model,
			     const char *const *texts, size_t n)
{
	return ef_embed_build_request_as(provider, model, false, texts, n);
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
 * An answer as read: the body's arrays of numbers already floats (see
 * embed_wire.h), the small rest a cJSON tree, and for each input the node
 * standing for its vector: a marker of an array of numbers, a base64
 * string, or whatever else the service put there.
 */
struct answer {
	struct ef_wire_scan sc;
	cJSON *root;
	const cJSON **rows;
	size_t n;
	bool base64_asked;
	bool base64, numbers;      /* what the rows turned out to be */
};

static const struct ef_wire_span *span_of(const struct answer *a, const cJSON *row)
{
	const cJSON *k = cJSON_IsArray(row) ? row->child : NULL;

	if (!k || k->next || !cJSON_IsNumber(k) || !(k->valuedouble >= 0) ||
	    k->valuedouble >= (double)a->sc.nrows)
		return NULL;
	return &a->sc.rows[(size_t)k->valuedouble];
}

static bool is_base64_row(const struct answer *a, const cJSON *row)
{
	return a->base64_asked && cJSON_IsString(row);
}

/*
 * The numbers first, straight into floats, then cJSON on what is left: a
 * few hundred bytes of shape and indices per batch instead of a node per
 * number.
 */
static enum ef_embed_parse_rc read_answer(struct answer *a, const char *body, size_t len,
					  int dim, char *why, size_t whylen)
{
	size_t hint = dim > 0 ? a->n * (size_t)dim : 0;

	if (!body || len == 0)
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "the body is not valid JSON");
	if (hint > len / 2 + 1)
		hint = len / 2 + 1;
	switch (ef_wire_scan(body, len, hint, &a->sc)) {
	case EF_WIRE_OK:
		break;
	case EF_WIRE_NOMEM:
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "out of memory");
	default:
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "the body is not valid JSON");
	}
	a->root = parse_json(a->sc.skel, a->sc.skel_len);
	if (!a->root)
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "the body is not valid JSON");
	a->rows = calloc(a->n ? a->n : 1, sizeof(*a->rows));
	if (!a->rows)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "out of memory");
	return EF_EMBED_PARSE_OK;
}

/* Rows in input order from an array of arrays (ollama, tei). */
static enum ef_embed_parse_rc rows_plain(struct answer *a, const cJSON *arr, char *why,
					 size_t whylen)
{
	const cJSON *row;
	size_t i = 0;

	if (!cJSON_IsArray(arr))
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "no array of embeddings");
	cJSON_ArrayForEach(row, arr) {
		if (i < a->n)
			a->rows[i] = row;
		i++;
	}
	if (i != a->n)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen,
			    "%zu vectors returned for %zu inputs", i, a->n);
	a->numbers = true;
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
static enum ef_embed_parse_rc rows_openai(struct answer *a, const cJSON *data, char *why,
					  size_t whylen)
{
	const cJSON *item;
	size_t count = 0;

	if (!cJSON_IsArray(data))
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "no \"data\" array");
	if ((size_t)cJSON_GetArraySize(data) != a->n)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "%d vectors returned for %zu inputs",
			    cJSON_GetArraySize(data), a->n);
	cJSON_ArrayForEach(item, data) {
		long ix = item_index(item, a->n);
		const cJSON *row;

		if (ix < 0)
			return fail(EF_EMBED_PARSE_INVALID, why, whylen,
				    "item %zu has no valid \"index\"", count);
		if (a->rows[ix])
			return fail(EF_EMBED_PARSE_INVALID, why, whylen, "index %ld appears twice", ix);
		row = a->rows[ix] = cJSON_GetObjectItemCaseSensitive(item, "embedding");
		if (cJSON_IsString(row) && !a->base64_asked)
			return fail(EF_EMBED_PARSE_MALFORMED, why, whylen,
				    "embeddings came base64-encoded, not as floats");
		if (is_base64_row(a, row))
			a->base64 = true;
		else if (cJSON_IsArray(row))
			a->numbers = true;
		count++;
	}
	if (a->base64 && a->numbers)
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen,
			    "some embeddings came base64-encoded, others as numbers");
	return EF_EMBED_PARSE_OK;
}

static enum ef_embed_parse_rc locate_rows(enum ef_embed_provider provider, struct answer *a,
					  char *why, size_t whylen)
{
	switch (provider) {
	case EF_EMBED_OLLAMA:
		return rows_plain(a, cJSON_GetObjectItemCaseSensitive(a->root, "embeddings"), why,
				  whylen);
	case EF_EMBED_OPENAI:
		return rows_openai(a, cJSON_GetObjectItemCaseSensitive(a->root, "data"), why,
				   whylen);
	case EF_EMBED_TEI:
		return rows_plain(a, a->root, why, whylen);
	default:
		return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "unknown provider");
	}
}

/* The dimension of input i's vector, before any of it is decoded. */
static enum ef_embed_parse_rc row_dim(const struct answer *a, size_t i, int *d, char *why,
				      size_t whylen)
{
	const cJSON *row = a->rows[i];
	const struct ef_wire_span *sp = span_of(a, row);
	size_t count = 0;
	long bytes;

	*d = 0;
	if (sp) {
		count = sp->len;
	} else if (is_base64_row(a, row)) {
		bytes = ef_wire_base64_size(row->valuestring, strlen(row->valuestring));
		if (bytes < 0 || bytes % 4 != 0)
			return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "item %zu: the base64 "
				    "embedding is not a whole number of float32 values", i);
		count = (size_t)bytes / 4;
	} else if (!cJSON_IsArray(row) || row->child) {
		return fail(EF_EMBED_PARSE_INVALID, why, whylen,
			    "item %zu is not an array of finite numbers", i);
	}
	if (count == 0)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "item %zu is empty", i);
	if (count > INT_MAX)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "item %zu is too long", i);
	*d = (int)count;
	return EF_EMBED_PARSE_OK;
}

static enum ef_embed_parse_rc check_dims(const struct answer *a, int dim,
					 struct ef_embed_vectors *out, char *why,
					 size_t whylen)
{
	int d0 = -1;

	for (size_t i = 0; i < a->n; i++) {
		int d;
		enum ef_embed_parse_rc rc = row_dim(a, i, &d, why, whylen);

		if (rc != EF_EMBED_PARSE_OK)
			return rc;
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

/* The rows came in order, one after another: the scan's buffer is the result. */
static bool in_place(const struct answer *a, size_t row)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct ef_wire_span *sp = span_of(a, a->rows[i]);

		if (!sp || sp->off != i * row)
			return false;
	}
	return true;
}

static enum ef_embed_parse_rc fill(struct answer *a, struct ef_embed_vectors *out, char *why,
				   size_t whylen)
{
	size_t row = (size_t)out->dim;

	if (in_place(a, row)) {
		out->data = a->sc.floats;
		a->sc.floats = NULL;
		out->n = a->n;
		return EF_EMBED_PARSE_OK;
	}
	out->data = malloc(a->n * row * sizeof(float));
	if (!out->data)
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "out of memory for %zu vectors",
			    a->n);
	for (size_t i = 0; i < a->n; i++) {
		const cJSON *r = a->rows[i];
		const struct ef_wire_span *sp = span_of(a, r);
		float *dst = out->data + i * row;

		if (sp) {
			memcpy(dst, a->sc.floats + sp->off, row * sizeof(float));
		} else if (ef_wire_base64_decode(r->valuestring, strlen(r->valuestring),
						 (unsigned char *)dst) == 0) {
			ef_wire_floats_le_to_host(dst, row);
		} else {
			free(out->data);
			out->data = NULL;
			return fail(EF_EMBED_PARSE_MALFORMED, why, whylen, "item %zu: the base64 "
				    "embedding holds a character outside the alphabet or stray bits", i);
		}
	}
	out->n = a->n;
	return EF_EMBED_PARSE_OK;
}

/* --- what a usable vector is ------------------------------------------------ */

double ef_embed_cosine(const float *a, const float *b, int dim)
{
	double ab = 0, aa = 0, bb = 0;

	for (int i = 0; i < dim; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

static double squared_norm(const float *v, size_t dim)
{
	double s[4] = { 0, 0, 0, 0 };
	size_t j = 0;

	for (; j + 4 <= dim; j += 4)
		for (int k = 0; k < 4; k++)
			s[k] += (double)v[j + k] * (double)v[j + k];
	for (; j < dim; j++)
		s[0] += (double)v[j] * (double)v[j];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Two digits in an operator's spelling: "1e29", "1.1e6", not "1e+29". */
static void short_number(double x, char *buf, size_t size)
{
	char *e, *d;

	snprintf(buf, size, "%.2g", x);
	if (!(e = strchr(buf, 'e')))
		return;
	d = e + 1 + (e[1] == '+' || e[1] == '-');
	while (*d == '0' && d[1])
		memmove(d, d + 1, strlen(d));
	if (e[1] == '+')
		memmove(e + 1, e + 2, strlen(e + 1));
}

/* Says, for an operator, why a vector whose squared norm is s is unusable. */
static void explain(const float *v, size_t dim, double s, char *buf, size_t size)
{
	char norm[32];

	for (size_t j = 0; j < dim; j++)
		if (!isfinite(v[j])) {
			snprintf(buf, size, "non-finite value %s at component %zu",
				 isnan(v[j]) ? "NaN" : v[j] > 0 ? "inf" : "-inf", j);
			return;
		}
	if (s == 0) {
		snprintf(buf, size, "all-zero vector (cosine similarity is undefined)");
		return;
	}
	short_number(sqrt(s), norm, sizeof(norm));
	snprintf(buf, size, "vector norm %s is absurd (above 1e6)", norm);
}

/*
 * A NaN or an infinity poisons every distance computed against it; an
 * all-zero vector has no direction, so its cosine with anything is
 * undefined (pgvector returns NaN); a norm above EF_EMBED_NORM_MAX is no
 * model's output but a broken one.  Single zero components are normal.
 */
static enum ef_embed_parse_rc check_values(struct ef_embed_vectors *out, char *why,
					   size_t whylen)
{
	size_t dim = (size_t)out->dim;

	for (size_t i = 0; i < out->n; i++) {
		const float *v = out->data + i * dim;
		double s = squared_norm(v, dim);

		if (s > 0 && s <= EF_EMBED_NORM_MAX * EF_EMBED_NORM_MAX)
			continue;
		explain(v, dim, s, out->bad_reason, sizeof(out->bad_reason));
		out->bad_item = i + 1;
		free(out->data);
		out->data = NULL;
		return fail(EF_EMBED_PARSE_INVALID, why, whylen, "item %zu: %s", i, out->bad_reason);
	}
	return EF_EMBED_PARSE_OK;
}

enum ef_embed_parse_rc ef_embed_parse_answer(enum ef_embed_provider provider, bool base64_asked,
					     const char *body, size_t len, size_t n, int dim,
					     struct ef_embed_vectors *out, char *why,
					     size_t whylen)
{
	struct answer a;
	enum ef_embed_parse_rc rc;

	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	a.n = n;
	a.base64_asked = base64_asked && provider == EF_EMBED_OPENAI;
	if (why && whylen)
		why[0] = '\0';
	rc = read_answer(&a, body, len, dim, why, whylen);
	if (rc == EF_EMBED_PARSE_OK)
		rc = locate_rows(provider, &a, why, whylen);
	if (rc == EF_EMBED_PARSE_OK && n > 0)
		rc = check_dims(&a, dim, out, why, whylen);
	if (rc == EF_EMBED_PARSE_OK && n > 0)
		rc = fill(&a, out, why, whylen);
	if (rc == EF_EMBED_PARSE_OK && n > 0)
		rc = check_values(out, why, whylen);
	if (rc == EF_EMBED_PARSE_OK)
		out->encoding = a.base64 ? EF_EMBED_ENC_BASE64 : EF_EMBED_ENC_FLOAT;
	free(a.rows);
	cJSON_Delete(a.root);
	ef_wire_scan_release(&a.sc);
	return rc;
}

enum ef_embed_parse_rc ef_embed_parse_response(enum ef_embed_provider provider,
					       const char *body, size_t len, size_t n,
					       int dim, struct ef_embed_vectors *out,
					       char *why, size_t whylen)
{
	return ef_embed_parse_answer(provider, false, body, len, n, dim, out, why, whylen);
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

bool ef_embed_refuses_base64(const char *message)
{
	return has(message, "encoding_format") || has(message, "base64");
}

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
