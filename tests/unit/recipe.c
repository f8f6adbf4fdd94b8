/*
 * Unit tests of the embedding recipe (recipe.h): the documented prefixes
 * of known models, the canonical text and its fingerprint (stable across
 * releases: golden values), the description for people, and the recipe
 * as settings (derived prefixes and their origin, a model change followed).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/recipe.h"
#include "embfill/redact.h"
#include "embfill/settings.h"

/* --- known models -------------------------------------------------------- */

static const char *family(const char *model)
{
	const struct ef_known_model *km = ef_recipe_known(model);

	return km ? km->family : NULL;
}

Test(recipe_known, names_with_owner_tag_and_case_find_their_family)
{
	const struct { const char *model, *family, *doc, *query; } cases[] = {
		{ "nomic-embed-text", "nomic-embed-text", "search_document: ", "search_query: " },
		{ "nomic-embed-text:latest", "nomic-embed-text", "search_document: ",
		  "search_query: " },
		{ "nomic-ai/nomic-embed-text-v1.5", "nomic-embed-text", "search_document: ",
		  "search_query: " },
		{ "Nomic-Embed-Text:v1.5", "nomic-embed-text", "search_document: ",
		  "search_query: " },
		{ "intfloat/e5-large-v2", "e5", "passage: ", "query: " },
		{ "intfloat/multilingual-e5-base", "e5", "passage: ", "query: " },
		{ "BAAI/bge-large-en-v1.5", "bge", "",
		  "Represent this sentence for searching relevant passages: " },
		{ "mxbai-embed-large:335m", "mxbai-embed-large", "",
		  "Represent this sentence for searching relevant passages: " },
		{ "snowflake-arctic-embed:l", "snowflake-arctic-embed", "",
		  "Represent this sentence for searching relevant passages: " },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ef_known_model *km = ef_recipe_known(cases[i].model);

		cr_assert_not_null(km, "%s is a known model", cases[i].model);
		cr_expect_str_eq(km->family, cases[i].family, "%s", cases[i].model);
		cr_expect_str_eq(km->doc_prefix, cases[i].doc, "%s", cases[i].model);
		cr_expect_str_eq(km->query_prefix, cases[i].query, "%s", cases[i].model);
	}
}

Test(recipe_known, models_without_documented_prefixes_are_not_known)
{
	const char *unknown[] = { "text-embedding-3-small", "text-embedding-3-large",
				  "intfloat/e5-mistral-7b-instruct", "nomic-embed-text-v2-moe",
				  "BAAI/bge-m3", "bge-large-zh-v1.5", "snowflake-arctic-embed2",
				  "embfill-hash", "", NULL };

	for (size_t i = 0; unknown[i]; i++)
		cr_expect_null(family(unknown[i]), "%s has no documented prefix", unknown[i]);
	cr_expect_null(ef_recipe_known(NULL));
}

Test(recipe_known, nomic_lists_its_other_task_prefixes)
{
	const struct ef_known_model *km = ef_recipe_known("nomic-embed-text");
	size_t n = 0;
	bool query = false, clustering = false;

	cr_assert_not_null(km);
	for (const char *const *p = km->others; p && *p; p++, n++) {
		query |= strcmp(*p, "search_query: ") == 0;
		clustering |= strcmp(*p, "clustering: ") == 0;
	}
	cr_expect(query && clustering, "the probe's candidates need the other prefixes");
	cr_expect_geq(n, 3);
}

/* --- canonical text and fingerprint --------------------------------------- */

static char *id_of(const struct ef_recipe *r)
{
	static char out[EF_RECIPE_ID_LEN];

	cr_assert(ef_recipe_id(r, out));
	return out;
}

/*
 * Golden fingerprints, computed outside embfill from the canonical texts
 * with the shell when this test was written:
 *   printf 'embfill-recipe-1\n' | sha256sum | cut -c1-16
 *   printf 'embfill-recipe-1\ndocument-prefix: "search_document: "\n' | sha256sum | cut -c1-16
 *   printf 'embfill-recipe-1\ndimensions: 256\n' | sha256sum | cut -c1-16
 *   printf 'embfill-recipe-1\ndocument-prefix: "passage: "\ndimensions: 256\ntruncate: true\nnormalize: false\n' | sha256sum | cut -c1-16
 * A change here turns every stored vector of every collection stale by
 * recipe: the canonical form may only grow by lines for new switches.
 */
Test(recipe_id, fingerprints_are_stable_across_releases)
{
	struct ef_recipe plain = { "", 0, false, -1 };
	struct ef_recipe nomic = { "search_document: ", 0, false, -1 };
	struct ef_recipe dims = { NULL, 256, false, -1 };
	struct ef_recipe all = { "passage: ", 256, true, 0 };

	cr_expect_str_eq(id_of(&plain), "r1-8e5f967f6f1d5467");
	cr_expect_str_eq(id_of(&nomic), "r1-2d0538bdce4ccab5");
	cr_expect_str_eq(id_of(&dims), "r1-5636c472d82903df");
	cr_expect_str_eq(id_of(&all), "r1-0a6223bbda12aa7b");
}

Test(recipe_id, the_canonical_text_holds_only_what_differs_from_plain)
{
	struct ef_recipe plain = { NULL, 0, false, -1 };
	struct ef_recipe on = { "", 0, false, 1 };
	struct ef_recipe all = { "passage: ", 256, true, 0 };
	char *t;

	t = ef_recipe_text(&plain);
	cr_expect_str_eq(t, "embfill-recipe-1\n");
	free(t);
	/* normalisation on is the services' default: the same vectors */
	cr_expect_str_eq(id_of(&on), "r1-8e5f967f6f1d5467");
	t = ef_recipe_text(&all);
	cr_expect_str_eq(t, "embfill-recipe-1\ndocument-prefix: \"passage: \"\ndimensions: 256\n"
			    "truncate: true\nnormalize: false\n");
	free(t);
}

Test(recipe_id, every_part_of_the_recipe_changes_the_fingerprint)
{
	const struct ef_recipe r[] = {
		{ "", 0, false, -1 },
		{ "search_document: ", 0, false, -1 },
		{ "search_document:", 0, false, -1 },   /* without the trailing blank */
		{ "search_query: ", 0, false, -1 },
		{ "", 256, false, -1 },
		{ "", 1024, false, -1 },
		{ "", 0, true, -1 },
		{ "", 0, false, 0 },
		{ "passage: ", 256, true, 0 },
	};
	char ids[sizeof(r) / sizeof(r[0])][EF_RECIPE_ID_LEN];

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		cr_assert(ef_recipe_id(&r[i], ids[i]));
		cr_expect(ef_recipe_id_valid(ids[i]), "%s", ids[i]);
		for (size_t j = 0; j < i; j++)
			cr_expect_str_neq(ids[i], ids[j], "recipes %zu and %zu share a fingerprint", j,
					  i);
	}
}

/* A prefix holding the quote, the backslash or a newline cannot end its
 * line early, nor be taken for another prefix plus another switch. */
Test(recipe_id, quotes_backslashes_and_controls_are_escaped)
{
	struct ef_recipe q = { "say \"hi\": ", 0, false, -1 };
	struct ef_recipe bs = { "a\\\" b", 0, false, -1 };
	struct ef_recipe nl = { "x\"\ndimensions: 256\n", 0, false, -1 };
	struct ef_recipe fake = { "x", 256, false, -1 };
	char *t, a[EF_RECIPE_ID_LEN], b[EF_RECIPE_ID_LEN];

	t = ef_recipe_text(&q);
	cr_expect_str_eq(t, "embfill-recipe-1\ndocument-prefix: \"say \\\"hi\\\": \"\n");
	free(t);
	t = ef_recipe_text(&bs);
	cr_expect_str_eq(t, "embfill-recipe-1\ndocument-prefix: \"a\\\\\\\" b\"\n");
	free(t);
	t = ef_recipe_text(&nl);
	cr_expect_str_eq(t, "embfill-recipe-1\ndocument-prefix: \"x\\\"\\x0adimensions: 256\\x0a\"\n");
	cr_expect_eq(strchr(t + strlen("embfill-recipe-1\n"), '\n'),
		     t + strlen(t) - 1, "one line per part: %s", t);
	free(t);
	cr_assert(ef_recipe_id(&nl, a) && ef_recipe_id(&fake, b));
	cr_expect_str_neq(a, b);
}

Test(recipe_id, valid_ids_are_r1_and_16_lowercase_hex_digits)
{
	cr_expect(ef_recipe_id_valid("r1-8e5f967f6f1d5467"));
	cr_expect(!ef_recipe_id_valid(NULL));
	cr_expect(!ef_recipe_id_valid(""));
	cr_expect(!ef_recipe_id_valid("r1-8E5F967F6F1D5467"));
	cr_expect(!ef_recipe_id_valid("r1-8e5f967f6f1d546"));
	cr_expect(!ef_recipe_id_valid("r1-8e5f967f6f1d54670"));
	cr_expect(!ef_recipe_id_valid("r2-8e5f967f6f1d5467"));
	cr_expect(!ef_recipe_id_valid("r1-8e5f967f6f1d546'"));
}

/* --- descriptions and application ----------------------------------------- */

Test(recipe_describe, says_plain_or_each_part)
{
	const struct { struct ef_recipe r; const char *want; } cases[] = {
		{ { "", 0, false, -1 }, "plain (no prefix)" },
		{ { NULL, 0, false, 1 }, "plain (no prefix)" },
		{ { "search_document: ", 0, false, -1 }, "prefix \"search_document: \"" },
		{ { "", 256, false, -1 }, "dimensions 256" },
		{ { "passage: ", 256, true, 0 },
		  "prefix \"passage: \", dimensions 256, truncation on, not normalised" },
		{ { "\"q\"\t", 0, false, -1 }, "prefix \"\\\"q\\\"\\x09\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *d = ef_recipe_describe(&cases[i].r);

		cr_expect_str_eq(d, cases[i].want);
		free(d);
	}
}

Test(recipe_apply, puts_the_prefix_before_the_text)
{
	char *t;

	t = ef_recipe_apply("search_document: ", "list files");
	cr_expect_str_eq(t, "search_document: list files");
	free(t);
	t = ef_recipe_apply("", "list files");
	cr_expect_str_eq(t, "list files");
	free(t);
	t = ef_recipe_apply(NULL, "");
	cr_expect_str_eq(t, "");
	free(t);
}

/* --- the recipe as settings ------------------------------------------------ */

static ef_settings *s;
static struct ef_error err;

static void setup(void)
{
	ef_redact_reset();
	s = ef_settings_new();
	cr_assert_not_null(s);
	ef_error_clear(&err);
}

static void teardown(void)
{
	ef_settings_free(s);
	ef_redact_reset();
}

TestSuite(recipe_settings, .init = setup, .fini = teardown);

static void load(const char *text)
{
	ef_error_clear(&err);
	cr_assert_eq(ef_settings_load_text(s, "test.env", text, strlen(text), &err), EF_OK, "%s",
		     err.msg);
}

static const struct ef_config *finish(void)
{
	ef_error_clear(&err);
	cr_assert_eq(ef_settings_finish(s, &err), EF_OK, "%s", err.msg);
	return ef_settings_config(s);
}

static const char *origin_of(enum ef_key k)
{
	static char buf[512];

	ef_settings_origin(s, k, buf, sizeof(buf));
	return buf;
}

Test(recipe_settings, a_known_model_gets_its_prefixes_with_their_origin)
{
	const struct ef_config *c;
	char *shown;
	struct ef_recipe nomic = { "search_document: ", 0, false, -1 };

	load("EMBED_MODEL=nomic-embed-text:latest\n");
	c = finish();
	cr_expect_str_eq(c->doc_prefix, "search_document: ");
	cr_expect_str_eq(c->query_prefix, "search_query: ");
	cr_expect_str_eq(origin_of(EF_K_EMBED_DOCUMENT_PREFIX), "default for nomic-embed-text");
	cr_expect_str_eq(origin_of(EF_K_EMBED_QUERY_PREFIX), "default for nomic-embed-text");
	cr_expect_str_eq(c->recipe_id, id_of(&nomic));
	shown = ef_settings_display(s, EF_K_EMBED_DOCUMENT_PREFIX);
	cr_expect_str_eq(shown, "\"search_document: \"");
	free(shown);
}

Test(recipe_settings, a_change_of_model_is_followed_and_a_set_prefix_is_kept)
{
	const struct ef_config *c;

	load("EMBED_MODEL=intfloat/e5-base-v2\nEMBED_QUERY_PREFIX=\"ask: \"\n");
	c = finish();
	cr_expect_str_eq(c->doc_prefix, "passage: ");
	cr_expect_str_eq(c->query_prefix, "ask: ");
	cr_expect_str_eq(origin_of(EF_K_EMBED_QUERY_PREFIX), "test.env:2");
	cr_assert_eq(ef_settings_set_flag(s, "EMBED_MODEL", "text-embedding-3-small", "--set",
					  &err), EF_OK, "%s", err.msg);
	c = finish();
	cr_expect_str_eq(c->doc_prefix, "", "no documented prefix for the new model");
	cr_expect_str_eq(origin_of(EF_K_EMBED_DOCUMENT_PREFIX), "default");
	cr_expect_str_eq(c->query_prefix, "ask: ");
}

/* Set to nothing in the file: no prefix, although the model has one. */
Test(recipe_settings, an_empty_prefix_in_the_file_overrides_the_models)
{
	const struct ef_config *c;
	struct ef_recipe plain = { "", 0, false, -1 };

	load("EMBED_MODEL=nomic-embed-text\nEMBED_DOCUMENT_PREFIX=\n");
	c = finish();
	cr_expect_str_eq(c->doc_prefix, "");
	cr_expect_str_eq(origin_of(EF_K_EMBED_DOCUMENT_PREFIX), "test.env:2");
	cr_expect_str_eq(c->recipe_id, id_of(&plain));
}

Test(recipe_settings, a_quoted_prefix_keeps_its_trailing_blank)
{
	const struct ef_config *c;
	char *shown;

	load("EMBED_MODEL=m1\nEMBED_DOCUMENT_PREFIX=\"passage: \"\n");
	c = finish();
	cr_expect_str_eq(c->doc_prefix, "passage: ");
	shown = ef_settings_display(s, EF_K_EMBED_DOCUMENT_PREFIX);
	cr_expect_str_eq(shown, "\"passage: \"");
	free(shown);
}

Test(recipe_settings, dimensions_enter_the_recipe_and_must_equal_the_dimension)
{
	const struct ef_config *c;
	struct ef_recipe dims = { "", 256, false, -1 };

	load("EMBED_PROVIDER=openai\nEMBED_MODEL=text-embedding-3-small\nEMBED_DIM=256\n"
	     "EMBED_DIMENSIONS=256\n");
	c = finish();
	cr_expect_eq(c->dimensions, 256);
	cr_expect_str_eq(c->recipe_id, id_of(&dims));
	load("EMBED_DIM=1536\n");
	cr_expect_eq(ef_settings_finish(s, &err), EF_ERR_USAGE);
	cr_expect(strstr(err.msg, "EMBED_DIMENSIONS") && strstr(err.msg, "EMBED_DIM"), "%s",
		  err.msg);
}
