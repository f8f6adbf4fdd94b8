/*
 * api.c - request and answer shapes of Ollama, OpenAI-compatible servers and
 * text-embeddings-inference, as close to the real services as a client's
 * error handling can tell.
 *
 * The same condition looks different on each: TEI says 422 "Validation"
 * where OpenAI says 413 with a nested error object and Ollama 413 with a
 * bare string.  One table holds those differences, so a reader can compare
 * the providers on one screen and a client's tests meet the real variety.
 */
#include "api.h"

#include "fmtfloat.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512
#define COMPONENT_MAX (SBX_FMT_FLOAT_MAX + 1)

struct cond_shape {
	int status[3];                  /* ollama, openai, tei */
	const char *oa_type;
	const char *oa_code;            /* NULL: JSON null */
	const char *tei_type;
};

static const struct cond_shape shapes[] = {
	[SBX_BAD_REQUEST]     = {{400, 400, 400}, "invalid_request_error", NULL, "Validation"},
	[SBX_UNKNOWN_MODEL]   = {{404, 404, 404}, "invalid_request_error", "model_not_found", "Validation"},
	[SBX_UNAUTHORIZED]    = {{401, 401, 401}, "invalid_request_error", "invalid_api_key", "Unauthorized"},
	[SBX_LOADING]         = {{503, 503, 503}, "server_error", "model_loading", "Unhealthy"},
	[SBX_INJECTED_500]    = {{500, 500, 500}, "server_error", NULL, "Backend"},
	[SBX_RATE_LIMITED]    = {{429, 429, 429}, "requests", "rate_limit_exceeded", "Overloaded"},
	[SBX_FAIL_FIRST]      = {{503, 503, 503}, "server_error", NULL, "Unhealthy"},
	[SBX_BATCH_TOO_LARGE] = {{413, 413, 422}, "invalid_request_error", "batch_too_large", "Validation"},
	[SBX_CONTEXT_LENGTH]  = {{500, 400, 413}, "invalid_request_error", "context_length_exceeded", "Validation"},
	[SBX_REJECTED]        = {{400, 400, 422}, "invalid_request_error", "invalid_input", "Validation"},
	[SBX_BACKEND_FAILED]  = {{500, 500, 500}, "server_error", NULL, "Backend"},
};

bool sbx_api_for_path(const char *url, enum sbx_api *api)
{
	if (strcmp(url, "/api/embed") == 0)
		*api = SBX_API_OLLAMA;
	else if (strcmp(url, "/v1/embeddings") == 0)
		*api = SBX_API_OPENAI;
	else if (strcmp(url, "/embed") == 0)
		*api = SBX_API_TEI;
	else
		return false;
	return true;
}

/* A --fail-status answer should look like what such a status means. */
static struct cond_shape shape_for_status(enum sbx_cond cond, int status)
{
	struct cond_shape s = shapes[cond];

	if (cond != SBX_FAIL_FIRST)
		return s;
	if (status == 429)
		return shapes[SBX_RATE_LIMITED];
	if (status < 500) {
		s.oa_type = "invalid_request_error";
		s.tei_type = "Validation";
	} else if (status != 503) {
		s.tei_type = "Backend";
	}
	return s;
}

static cJSON *error_tree(enum sbx_api api, const struct cond_shape *s, const char *msg)
{
	cJSON *root = cJSON_CreateObject(), *inner;

	if (api != SBX_API_OPENAI) {
		cJSON_AddStringToObject(root, "error", msg);
		if (api == SBX_API_TEI)
			cJSON_AddStringToObject(root, "error_type", s->tei_type);
		return root;
	}
	inner = cJSON_AddObjectToObject(root, "error");
	cJSON_AddStringToObject(inner, "message", msg);
	cJSON_AddStringToObject(inner, "type", s->oa_type);
	cJSON_AddNullToObject(inner, "param");
	if (s->oa_code != NULL)
		cJSON_AddStringToObject(inner, "code", s->oa_code);
	else
		cJSON_AddNullToObject(inner, "code");
	return root;
}

static void set_json_body(struct sbx_reply *r, cJSON *tree)
{
	free(r->body);
	r->body = tree != NULL ? cJSON_PrintUnformatted(tree) : NULL;
	r->len = r->body != NULL ? strlen(r->body) : 0;
	r->content_type = "application/json";
	cJSON_Delete(tree);
}

void sbx_api_error(struct sbx_reply *r, enum sbx_api api, enum sbx_cond cond, int status,
		   const char *fmt, ...)
{
	char msg[MSG_MAX];
	struct cond_shape s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->status = status != 0 ? status : shapes[cond].status[api];
	s = shape_for_status(cond, r->status);
	set_json_body(r, error_tree(api, &s, msg));
}

void sbx_api_plain(struct sbx_reply *r, int status, const char *text)
{
	free(r->body);
	r->status = status;
	r->body = strdup(text);
	r->len = r->body != NULL ? strlen(r->body) : 0;
	r->content_type = "text/plain; charset=utf-8";
}

static int bad_request(struct sbx_reply *r, enum sbx_api api, const char *msg)
{
	sbx_api_error(r, api, SBX_BAD_REQUEST, 0, "%s", msg);
	return -1;
}

static int take_texts(enum sbx_api api, const cJSON *input, struct sbx_request *req,
		      struct sbx_reply *r)
{
	const cJSON *it;
	size_t i = 0;

	if (cJSON_IsString(input)) {
		req->n = 1;
		req->texts = malloc(sizeof(*req->texts));
		if (req->texts == NULL)
			return bad_request(r, api, "out of memory");
		req->texts[0] = input->valuestring;
		return 0;
	}
	if (!cJSON_IsArray(input) || cJSON_GetArraySize(input) == 0)
		return bad_request(r, api, api == SBX_API_TEI
				   ? "\"inputs\" must be a string or a non-empty array of strings"
				   : "\"input\" must be a string or a non-empty array of strings");
	req->n = (size_t)cJSON_GetArraySize(input);
	req->texts = calloc(req->n, sizeof(*req->texts));
	if (req->texts == NULL)
		return bad_request(r, api, "out of memory");
	cJSON_ArrayForEach(it, input) {
		if (!cJSON_IsString(it))
			return bad_request(r, api, "every input must be a string (token arrays are not supported)");
		req->texts[i++] = it->valuestring;
	}
	return 0;
}

/* OpenAI takes "float" (the default) or "base64", and refuses anything else. */
static int take_encoding(const cJSON *root, struct sbx_request *req, struct sbx_reply *r)
{
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");

	if (fmt == NULL || (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "float") == 0))
		return 0;
	if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "base64") == 0) {
		req->base64 = true;
		return 0;
	}
	return bad_request(r, SBX_API_OPENAI, "Invalid value for 'encoding_format': expected "
			   "'float' or 'base64'.");
}

static int take_model(enum sbx_api api, const cJSON *root, struct sbx_request *req,
		      struct sbx_reply *r)
{
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");

	if (!cJSON_IsString(model) || model->valuestring[0] == '\0')
		return bad_request(r, api, api == SBX_API_OPENAI
				   ? "you must provide a model parameter" : "model is required");
	req->model = model->valuestring;
	return api == SBX_API_OPENAI ? take_encoding(root, req, r) : 0;
}

int sbx_api_parse(enum sbx_api api, const char *body, size_t len,
		  struct sbx_request *req, struct sbx_reply *r)
{
	const char *end = NULL;
	char msg[96];
	cJSON *root;

	memset(req, 0, sizeof(*req));
	root = cJSON_ParseWithOpts(body, &end, 1);
	req->root = root;
	if (root == NULL || end != body + len) {
		snprintf(msg, sizeof(msg), "request body is not valid JSON (at byte %zu)",
			 end != NULL && end >= body ? (size_t)(end - body) : (size_t)0);
		return bad_request(r, api, msg);
	}
	if (!cJSON_IsObject(root))
		return bad_request(r, api, "request body must be a JSON object");
	if (api != SBX_API_TEI && take_model(api, root, req, r) != 0)
		return -1;
	return take_texts(api, cJSON_GetObjectItemCaseSensitive(root,
			  api == SBX_API_TEI ? "inputs" : "input"), req, r);
}

void sbx_request_free(struct sbx_request *req)
{
	cJSON_Delete(req->root);
	free(req->texts);
	memset(req, 0, sizeof(*req));
}

static bool planted_nan(const struct sbx_vectors *v, size_t item, int i)
{
	return v->nan_token != NULL && item == v->nan_item && (size_t)i == v->nan_pos;
}

/*
 * Vectors are printed by hand as raw JSON, for two reasons: nine digits
 * are the fewest that always give a float back exactly (cJSON prints 17
 * digits of the double), and a planted NaN must reach the client as the
 * bare token that real servers have been seen to send, which cJSON would
 * turn into null.  sbx_fmt_float, not printf, because printing is most of
 * the embedder's time, taken from the client's CPU on a small machine.
 */
static cJSON *vector_raw(const struct sbx_vectors *v, size_t item)
{
	const float *x = v->data + item * v->stride;
	size_t cap = (size_t)v->dim * COMPONENT_MAX + 3, len = 0;
	char *s = malloc(cap);
	cJSON *raw;

	if (s == NULL)
		return NULL;
	s[len++] = '[';
	for (int i = 0; i < v->dim; i++) {
		if (i)
			s[len++] = ',';
		if (planted_nan(v, item, i))
			len += (size_t)snprintf(s + len, cap - len, "%s", v->nan_token);
		else
			len += sbx_fmt_float(s + len, x[i]);
	}
	s[len++] = ']';
	s[len] = '\0';
	raw = cJSON_CreateRaw(s);
	free(s);
	return raw;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard padded base64 of n bytes, written to out; returns its length. */
static size_t base64(const unsigned char *in, size_t n, char *out)
{
	size_t k = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[k++] = b64_alphabet[w >> 18];
		out[k++] = b64_alphabet[(w >> 12) & 63];
		out[k++] = b64_alphabet[(w >> 6) & 63];
		out[k++] = b64_alphabet[w & 63];
	}
	if (i < n) {
		uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[k++] = b64_alphabet[w >> 18];
		out[k++] = b64_alphabet[(w >> 12) & 63];
		out[k++] = i + 1 < n ? b64_alphabet[(w >> 6) & 63] : '=';
		out[k++] = '=';
	}
	return k;
}

/*
 * What OpenAI sends for "encoding_format":"base64": the float32 array's
 * bytes, little-endian, as one string.  A planted NaN is a NaN or an
 * infinity in the bytes, the only form it can take there.
 */
static cJSON *vector_base64(const struct sbx_vectors *v, size_t item)
{
	size_t bytes = (size_t)v->dim * 4;
	unsigned char *raw = malloc(bytes + 1);
	char *s = malloc((bytes + 2) / 3 * 4 + 3);
	cJSON *node = NULL;
	size_t len = 0;

	if (raw != NULL && s != NULL) {
		for (int i = 0; i < v->dim; i++) {
			float f = v->data[item * v->stride + (size_t)i];
			uint32_t w;

			if (planted_nan(v, item, i))
				f = strcmp(v->nan_token, "NaN") == 0 ? NAN : INFINITY;
			memcpy(&w, &f, sizeof(w));
			for (int b = 0; b < 4; b++)
				raw[(size_t)i * 4 + (size_t)b] = (unsigned char)(w >> (8 * b));
		}
		s[len++] = '"';
		len += base64(raw, bytes, s + len);
		s[len++] = '"';
		s[len] = '\0';
		node = cJSON_CreateRaw(s);
	}
	free(raw);
	free(s);
	return node;
}

static size_t item_at(const struct sbx_vectors *v, size_t k)
{
	return v->order != NULL ? v->order[k] : k;
}

static cJSON *openai_tree(const struct sbx_vectors *v)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *data = cJSON_AddArrayToObject(root, "data");
	cJSON *usage;

	cJSON_AddStringToObject(root, "object", "list");
	for (size_t k = 0; k < v->n; k++) {
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "object", "embedding");
		cJSON_AddNumberToObject(item, "index", (double)item_at(v, k));
		cJSON_AddItemToObject(item, "embedding", v->base64 ? vector_base64(v, item_at(v, k))
							       : vector_raw(v, item_at(v, k)));
		cJSON_AddItemToArray(data, item);
	}
	cJSON_AddStringToObject(root, "model", v->model);
	usage = cJSON_AddObjectToObject(root, "usage");
	cJSON_AddNumberToObject(usage, "prompt_tokens", (double)v->prompt_tokens);
	cJSON_AddNumberToObject(usage, "total_tokens", (double)v->prompt_tokens);
	return root;
}

static cJSON *vector_list(const struct sbx_vectors *v)
{
	cJSON *list = cJSON_CreateArray();

	for (size_t k = 0; list != NULL && k < v->n; k++)
		cJSON_AddItemToArray(list, vector_raw(v, k));
	return list;
}

static cJSON *ollama_tree(const struct sbx_vectors *v)
{
	cJSON *root = cJSON_CreateObject();

	cJSON_AddStringToObject(root, "model", v->model);
	cJSON_AddItemToObject(root, "embeddings", vector_list(v));
	cJSON_AddNumberToObject(root, "prompt_eval_count", (double)v->prompt_tokens);
	return root;
}

/*
 * An answer is megabytes: printed into one buffer of its largest possible
 * size rather than one that cJSON doubles and copies as it grows.  Pages
 * the text does not reach are never touched.
 */
static size_t answer_bound(const struct sbx_vectors *v)
{
	size_t per = v->base64 ? ((size_t)v->dim * 4 + 2) / 3 * 4 + 2
			       : (size_t)v->dim * COMPONENT_MAX + 3;

	return v->n * (per + 128) + (v->model != NULL ? strlen(v->model) * 6 : 0) + 512;
}

int sbx_api_render(struct sbx_reply *r, enum sbx_api api, const struct sbx_vectors *v)
{
	size_t bound = answer_bound(v);
	cJSON *tree;

	switch (api) {
	case SBX_API_OLLAMA: tree = ollama_tree(v); break;
	case SBX_API_OPENAI: tree = openai_tree(v); break;
	default: tree = vector_list(v); break;
	}
	r->status = 200;
	free(r->body);
	r->body = tree != NULL && bound <= INT_MAX ? malloc(bound) : NULL;
	if (r->body != NULL && !cJSON_PrintPreallocated(tree, r->body, (int)bound, 0)) {
		free(r->body);
		r->body = NULL;
	}
	if (r->body == NULL && tree != NULL)
		r->body = cJSON_PrintUnformatted(tree);
	r->len = r->body != NULL ? strlen(r->body) : 0;
	r->content_type = "application/json";
	cJSON_Delete(tree);
	return r->body != NULL ? 0 : -1;
}
