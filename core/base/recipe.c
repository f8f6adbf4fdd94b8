/*
 * recipe.c - the embedding recipe, its fingerprint, and the prefixes the
 * documentation of known models asks for (recipe.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "embfill/recipe.h"
#include "embfill/strbuf.h"

#define RETRIEVAL_INSTRUCTION "Represent this sentence for searching relevant passages: "

static const char *const nomic_others[] = { "search_query: ", "clustering: ",
					    "classification: ", NULL };
static const char *const e5_others[] = { "query: ", NULL };
static const char *const instr_others[] = { RETRIEVAL_INSTRUCTION, NULL };

/* From the models' cards: nomic-embed-text (v1, v1.5), the e5 family
 * (e5-*, multilingual-e5-*; not e5-mistral, which takes instructions),
 * BGE English v1.5, mxbai-embed-large and snowflake-arctic-embed put an
 * instruction before queries only. */
static const struct ef_known_model known[] = {
	{ "nomic-embed-text", "search_document: ", "search_query: ", nomic_others },
	{ "e5", "passage: ", "query: ", e5_others },
	{ "bge", "", RETRIEVAL_INSTRUCTION, instr_others },
	{ "mxbai-embed-large", "", RETRIEVAL_INSTRUCTION, instr_others },
	{ "snowflake-arctic-embed", "", RETRIEVAL_INSTRUCTION, instr_others },
};

/* The model's own name: without an owner ("intfloat/"), a tag (":latest")
 * and case. */
static void base_name(const char *model, char *out, size_t n)
{
	const char *slash = strrchr(model, '/');
	size_t i = 0;

	for (const char *p = slash ? slash + 1 : model; *p && *p != ':' && i + 1 < n; p++)
		out[i++] = (char)tolower((unsigned char)*p);
	out[i] = '\0';
}

const struct ef_known_model *ef_recipe_known(const char *model)
{
	char b[256];

	if (!model)
		return NULL;
	base_name(model, b, sizeof(b));
	if (strncmp(b, "nomic-embed-text", 16) == 0 && strstr(b, "v2") == NULL)
		return &known[0];
	if ((strncmp(b, "e5-", 3) == 0 || strncmp(b, "multilingual-e5-", 16) == 0) &&
	    strstr(b, "mistral") == NULL && strstr(b, "instruct") == NULL)
		return &known[1];
	if (strncmp(b, "bge-", 4) == 0 && strstr(b, "-en") && strstr(b, "v1.5"))
		return &known[2];
	if (strncmp(b, "mxbai-embed-large", 17) == 0)
		return &known[3];
	/* arctic-embed 2.0 ("snowflake-arctic-embed2", "-l-v2.0") asks "query: " */
	if (strncmp(b, "snowflake-arctic-embed", 22) == 0 && b[22] != '2' && strstr(b, "v2") == NULL)
		return &known[4];
	return NULL;
}

/* A prefix as a quoted line: quotes, backslashes and controls escaped, so
 * that two different prefixes never give one text. */
static void add_quoted(struct ef_strbuf *b, const char *s)
{
	ef_strbuf_add(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			ef_strbuf_addf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			ef_strbuf_addf(b, "\\x%02x", c);
		else
			ef_strbuf_addn(b, s, 1);
	}
	ef_strbuf_add(b, "\"");
}

char *ef_recipe_text(const struct ef_recipe *r)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	ef_strbuf_add(&b, "embfill-recipe-1\n");
	if (r->doc_prefix && *r->doc_prefix) {
		ef_strbuf_add(&b, "document-prefix: ");
		add_quoted(&b, r->doc_prefix);
		ef_strbuf_add(&b, "\n");
	}
	if (r->dimensions > 0)
		ef_strbuf_addf(&b, "dimensions: %d\n", r->dimensions);
	if (r->truncate)
		ef_strbuf_add(&b, "truncate: true\n");
	if (r->normalize == 0)
		ef_strbuf_add(&b, "normalize: false\n");
	return ef_strbuf_take(&b);
}

bool ef_recipe_id(const struct ef_recipe *r, char out[EF_RECIPE_ID_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char *text = ef_recipe_text(r);
	bool ok;

	out[0] = '\0';
	if (!text)
		return false;
	ok = EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) == 1 && len >= 8;
	free(text);
	if (!ok)
		return false;
	memcpy(out, "r1-", 3);
	for (int i = 0; i < 8; i++)
		snprintf(out + 3 + 2 * i, 3, "%02x", md[i]);
	return true;
}

char *ef_recipe_describe(const struct ef_recipe *r)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	const char *sep = "";

	if (r->doc_prefix && *r->doc_prefix) {
		ef_strbuf_add(&b, "prefix ");
		add_quoted(&b, r->doc_prefix);
		sep = ", ";
	}
	if (r->dimensions > 0) {
		ef_strbuf_addf(&b, "%sdimensions %d", sep, r->dimensions);
		sep = ", ";
	}
	if (r->truncate) {
		ef_strbuf_addf(&b, "%struncation on", sep);
		sep = ", ";
	}
	if (r->normalize == 0)
		ef_strbuf_addf(&b, "%snot normalised", sep);
	if (!b.len)
		ef_strbuf_add(&b, "plain (no prefix)");
	return ef_strbuf_take(&b);
}

char *ef_recipe_apply(const char *prefix, const char *text)
{
	char *out = NULL;

	if (!prefix || !*prefix)
		return strdup(text);
	return asprintf(&out, "%s%s", prefix, text) < 0 ? NULL : out;
}

bool ef_recipe_id_valid(const char *s)
{
	if (!s || strncmp(s, "r1-", 3) != 0 || strlen(s) != EF_RECIPE_ID_LEN - 1)
		return false;
	for (s += 3; *s; s++)
		if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
			return false;
	return true;
}
