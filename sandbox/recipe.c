/*
 * recipe.c - the recipe fields of the three APIs, with each provider's
 * defaults and its way of refusing a bad value.
 *
 *   field        ollama /api/embed      openai /v1/embeddings    tei /embed
 *   dimensions   int; 0 < N < native    int 1..native, else 400  (unknown: ignored)
 *                shortens, else ignored
 *   truncate     bool, default true     (none: too long is 400)  bool, default false
 *   normalize    (always)               (always)                 bool, default true
 *
 * Ollama's EmbedHandler shortens only when 0 < dimensions < the model's
 * size and keeps the whole vector otherwise; Go's JSON decoder refuses a
 * value of the wrong type with 400.  TEI's request structs do not deny
 * unknown fields, so a "dimensions" sent to TEI is silently ignored, and
 * axum answers a field of the wrong type with a plain-text 422.
 */
#include "recipe.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define ANSWER_MAX 256

static const char *json_kind(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "string";
	if (cJSON_IsNumber(v))
		return "number";
	if (cJSON_IsBool(v))
		return "bool";
	if (cJSON_IsArray(v))
		return "array";
	return cJSON_IsObject(v) ? "object" : "null";
}

static bool is_integer(const cJSON *v)
{
	return cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
	       v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15;
}

/* Go's encoding/json: "json: cannot unmarshal string into Go struct field
 * EmbedRequest.truncate of type bool". */
static int ollama_type_error(struct sbx_reply *r, const char *field, const cJSON *v,
			     const char *go_type)
{
	if (cJSON_IsNumber(v))
		sbx_api_error(r, SBX_API_OLLAMA, SBX_BAD_REQUEST, 0, "json: cannot unmarshal number %g "
			      "into Go struct field EmbedRequest.%s of type %s", v->valuedouble, field, go_type);
	else
		sbx_api_error(r, SBX_API_OLLAMA, SBX_BAD_REQUEST, 0, "json: cannot unmarshal %s into "
			      "Go struct field EmbedRequest.%s of type %s", json_kind(v), field, go_type);
	return -1;
}

static int ollama(const cJSON *root, int native, struct sbx_recipe *rc, struct sbx_reply *r)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "truncate");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "dimensions");

	if (t != NULL && !cJSON_IsNull(t) && !cJSON_IsBool(t))
		return ollama_type_error(r, "truncate", t, "bool");
	if (d != NULL && !cJSON_IsNull(d) && !is_integer(d))
		return ollama_type_error(r, "dimensions", d, "int");
	rc->truncate = !cJSON_IsFalse(t);
	if (is_integer(d) && d->valuedouble > 0 && d->valuedouble < native)
		rc->dim = (int)d->valuedouble;
	return 0;
}

static int openai(const cJSON *root, int native, struct sbx_recipe *rc, struct sbx_reply *r)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "dimensions");

	rc->truncate = false;
	if (d == NULL || cJSON_IsNull(d))
		return 0;
	if (!is_integer(d))
		sbx_api_error(r, SBX_API_OPENAI, SBX_BAD_REQUEST, 0, "Invalid type for 'dimensions': "
			      "expected an integer, but got %s instead.",
			      cJSON_IsNumber(d) ? "a decimal" : json_kind(d));
	else if (d->valuedouble < 1)
		sbx_api_error(r, SBX_API_OPENAI, SBX_BAD_REQUEST, 0, "Invalid 'dimensions': integer "
			      "below minimum value. Expected a value >= 1, but got %.0f instead.",
			      d->valuedouble);
	else if (d->valuedouble > native)
		sbx_api_error(r, SBX_API_OPENAI, SBX_BAD_REQUEST, 0, "Invalid 'dimensions': integer "
			      "above maximum value. Expected a value <= %d, but got %.0f instead.",
			      native, d->valuedouble);
	else {
		rc->dim = (int)d->valuedouble;
		return 0;
	}
	return -1;
}

/* axum's Json extractor: a plain-text 422 naming the field. */
static int tei_type_error(struct sbx_reply *r, const char *field, const cJSON *v)
{
	char text[ANSWER_MAX];

	snprintf(text, sizeof(text), "Failed to deserialize the JSON body into the target type: "
		 "%s: invalid type: %s, expected a boolean", field, json_kind(v));
	sbx_api_plain(r, 422, text);
	return -1;
}

static int tei(const cJSON *root, struct sbx_recipe *rc, struct sbx_reply *r)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "truncate");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalize");

	if (t != NULL && !cJSON_IsNull(t) && !cJSON_IsBool(t))
		return tei_type_error(r, "truncate", t);
	if (n != NULL && !cJSON_IsBool(n))
		return tei_type_error(r, "normalize", n);
	rc->truncate = cJSON_IsTrue(t);
	rc->normalize = !cJSON_IsFalse(n);
	return 0;
}

int sbx_recipe_parse(enum sbx_api api, const struct sbx_request *req, int native_dim,
		     struct sbx_recipe *rc, struct sbx_reply *r)
{
	const cJSON *root = req->root;

	rc->dim = native_dim;
	rc->truncate = false;
	rc->normalize = true;
	switch (api) {
	case SBX_API_OLLAMA: return ollama(root, native_dim, rc, r);
	case SBX_API_OPENAI: return openai(root, native_dim, rc, r);
	default: return tei(root, rc, r);
	}
}

size_t sbx_recipe_cut_bytes(const char *text, long max_chars)
{
	long chars = 0;
	size_t i = 0;

	for (; text[i] != '\0'; i++) {
		if (((unsigned char)text[i] & 0xC0) == 0x80)
			continue;
		if (chars == max_chars)
			break;
		chars++;
	}
	return i;
}

void sbx_recipe_shorten(const struct sbx_recipe *rc, float *vec, int native_dim)
{
	double sum = 0;

	if (rc->dim >= native_dim || !rc->normalize)
		return;
	for (int i = 0; i < rc->dim; i++)
		sum += (double)vec[i] * vec[i];
	for (int i = 0; sum > 0 && i < rc->dim; i++)
		vec[i] = (float)(vec[i] / sqrt(sum));
}
