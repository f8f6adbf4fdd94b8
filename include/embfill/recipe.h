/*
 * recipe.h - how a text is given to the model: what, besides the model's
 * name, decides which vector comes back.
 *
 * Two vectors are comparable only when the same recipe made them: the
 * model, the task prefix put in front of the text ("search_document: " for
 * nomic-embed-text, "passage: " for the e5 family), the dimensions asked of
 * a model that can shorten its vectors, and the service's truncation and
 * normalisation switches.  A recipe is named by a stable fingerprint
 * ("r1-" and 16 hex digits of the SHA-256 of its canonical text), stored
 * with every vector embfill writes, so that a vector made another way is
 * stale by recipe, and never silently mixed with the others.
 *
 * The model's name is recorded on its own and is not part of the recipe.
 * The query prefix is not either: it changes the queries an application
 * makes, not the stored vectors.
 */
#ifndef EMBFILL_RECIPE_H
#define EMBFILL_RECIPE_H

#include <stdbool.h>
#include <stddef.h>

/* "r1-" + 16 hex digits + NUL */
#define EF_RECIPE_ID_LEN 20

struct ef_recipe {
	const char *doc_prefix;     /* put before every document; "" none */
	int dimensions;             /* asked of the service; 0 not asked */
	bool truncate;              /* the service may cut an over-long text */
	int normalize;              /* -1 the service's default (normalised), 0 off, 1 on */
};

/* What a model's documentation says its texts need. */
struct ef_known_model {
	const char *family;         /* "nomic-embed-text" */
	const char *doc_prefix;     /* the documents' prefix */
	const char *query_prefix;   /* the queries' prefix */
	const char *const *others;  /* other task prefixes the model documents, NULL-ended */
};

/* The documented prefixes of a known model ("nomic-embed-text:latest",
 * "nomic-ai/nomic-embed-text-v1.5", "intfloat/e5-large-v2", ...), or NULL. */
const struct ef_known_model *ef_recipe_known(const char *model);

/* The canonical text of a recipe (caller frees; NULL when out of memory):
 * only what differs from the plain recipe is in it, one "key: value" line
 * each, so that adding a switch later does not change existing ids. */
char *ef_recipe_text(const struct ef_recipe *r);

/* The fingerprint of a recipe into out; false when out of memory. */
bool ef_recipe_id(const struct ef_recipe *r, char out[EF_RECIPE_ID_LEN]);

/* A short description for people: "plain", or "prefix \"passage: \",
 * dimensions 256".  Caller frees. */
char *ef_recipe_describe(const struct ef_recipe *r);

/* prefix + text, newly allocated (text alone when prefix is NULL or ""). */
char *ef_recipe_apply(const char *prefix, const char *text);

/* Whether s is a fingerprint as ef_recipe_id writes it (safe in SQL). */
bool ef_recipe_id_valid(const char *s);

#endif
