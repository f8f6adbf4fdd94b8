/*
 * fuzz_sandbox_request - the sandbox embedder's reading of an embed request:
 * the body (sbx_api_parse) and its recipe fields (sbx_recipe_parse), then
 * the cut of each text to a context length and the shortening of a vector.
 *
 * Input: byte 0 picks the API, byte 1 the context length in characters
 * (0: none); the rest is the body.  A refused request must come with a
 * status and a body; an accepted one must keep dimensions within 1..native
 * and cut every text at a character boundary no longer than the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/api.h"
#include "sandbox/recipe.h"

#define NATIVE 32

static void check_cut(const char *text, long max_chars)
{
	size_t keep = sbx_recipe_cut_bytes(text, max_chars);

	if (keep > strlen(text))
		abort();
	if (text[keep] != '\0' && ((unsigned char)text[keep] & 0xC0) == 0x80)
		abort();
}

static void check_recipe(enum sbx_api api, const struct sbx_request *req, long max_chars)
{
	struct sbx_reply r = {0};
	struct sbx_recipe rc;
	float vec[NATIVE];

	if (sbx_recipe_parse(api, req, NATIVE, &rc, &r) != 0) {
		if (r.status < 400 || r.body == NULL)
			abort();
		free(r.body);
		return;
	}
	if (rc.dim < 1 || rc.dim > NATIVE || r.body != NULL)
		abort();
	for (int i = 0; i < NATIVE; i++)
		vec[i] = (float)(i % 7) - 3.0f;
	sbx_recipe_shorten(&rc, vec, NATIVE);
	for (size_t i = 0; max_chars > 0 && i < req->n; i++)
		check_cut(req->texts[i], max_chars);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum sbx_api apis[] = {SBX_API_OLLAMA, SBX_API_OPENAI, SBX_API_TEI};
	struct sbx_reply r = {0};
	struct sbx_request req;
	enum sbx_api api;
	long max_chars;
	char *body;

	if (size < 2)
		return 0;
	api = apis[data[0] % 3];
	max_chars = data[1];
	body = malloc(size - 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + 2, size - 2);
	body[size - 2] = '\0';
	if (sbx_api_parse(api, body, size - 2, &req, &r) == 0)
		check_recipe(api, &req, max_chars);
	else if (r.status < 400 || r.body == NULL)
		abort();
	free(r.body);
	sbx_request_free(&req);
	free(body);
	return 0;
}
