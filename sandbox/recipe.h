/*
 * recipe.h - the request fields that change a vector, as each provider
 * names them: Matryoshka "dimensions" (OpenAI, Ollama), "truncate" (Ollama,
 * TEI) and "normalize" (TEI).  The embedder embeds exactly the text it is
 * given: a task prefix is part of the text, as it is for the real services.
 */
#ifndef SBX_RECIPE_H
#define SBX_RECIPE_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>

struct sbx_recipe {
	int dim;                        /* components answered: the native dim unless asked */
	bool truncate;                  /* cut inputs over the context instead of refusing them */
	bool normalize;                 /* answer unit vectors */
};

/*
 * Reads the recipe fields of a parsed request body (req->root) for api.
 * Returns 0, or -1 with r set to the provider's answer to a bad field:
 * OpenAI 400 for "dimensions" outside 1..native_dim, Ollama 400 for a field
 * of the wrong JSON type (it ignores a "dimensions" it cannot honour, as
 * Ollama does), TEI 422 for a field of the wrong type.  Fields a provider
 * does not know are ignored, as each of the three does.
 */
int sbx_recipe_parse(enum sbx_api api, const struct sbx_request *req, int native_dim,
		     struct sbx_recipe *rc, struct sbx_reply *r);

/* Length of the first max_chars UTF-8 characters of text, in bytes. */
size_t sbx_recipe_cut_bytes(const char *text, long max_chars);

/*
 * Turns a unit vector of native_dim components into the recipe's: its first
 * rc->dim components scaled back to unit length, as text-embedding-3 and
 * Ollama shorten a vector.  Nothing changes when rc->dim is native_dim.
 */
void sbx_recipe_shorten(const struct sbx_recipe *rc, float *vec, int native_dim);

#endif
