/*
 * Unit tests of the embedding response and error parsers: every shape the
 * three providers send, and every way an answer can be wrong.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_parse.h"

static enum ef_embed_parse_rc parse(enum ef_embed_provider p, const char *body, size_t n,
				    int dim, struct ef_embed_vectors *v, char *why)
{
	return ef_embed_parse_response(p, body, strlen(body), n, dim, v, why, 256);
}

static void expect_rc(enum ef_embed_provider p, const char *body, size_t n, int dim,
		      enum ef_embed_parse_rc want)
{
	struct ef_embed_vectors v;
	char why[256];
	enum ef_embed_parse_rc rc = parse(p, body, n, dim, &v, why);

	cr_assert_eq(rc, want, "body %s: rc %d, want %d (%s)", body, rc, want, why);
	if (rc != EF_EMBED_PARSE_OK)
		cr_assert_null(v.data, "no vectors may come out of a bad answer");
	else
		cr_assert_not_null(v.data);
	free(v.data);
}

Test(embed_parse, ollama_good_body_gives_rows_in_order)
{
	struct ef_embed_vectors v;
	char why[256];
	const char *b = "{\"model\":\"m\",\"embeddings\":[[1,2,3],[4,5,6]],\"prompt_eval_count\":4}";

	cr_assert_eq(parse(EF_EMBED_OLLAMA, b, 2, 3, &v, why), EF_EMBED_PARSE_OK, "%s", why);
	cr_assert_eq(v.n, 2);
	cr_assert_eq(v.dim, 3);
	cr_assert_float_eq(v.data[0], 1.0f, 1e-6);
	cr_assert_float_eq(v.data[5], 6.0f, 1e-6);
	free(v.data);
}

Test(embed_parse, tei_good_body)
{
	expect_rc(EF_EMBED_TEI, " [[0.5,-0.25],[1e-3,2E2]]\n", 2, 2, EF_EMBED_PARSE_OK);
}

Test(embed_parse, openai_items_are_put_back_in_index_order)
{
	struct ef_embed_vectors v;
	char why[256];
	const char *b = "{\"object\":\"list\",\"data\":["
			"{\"object\":\"embedding\",\"index\":2,\"embedding\":[3,3]},"
			"{\"object\":\"embedding\",\"index\":0,\"embedding\":[1,1]},"
			"{\"object\":\"embedding\",\"index\":1,\"embedding\":[2,2]}],"
			"\"model\":\"m\",\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}";

	cr_assert_eq(parse(EF_EMBED_OPENAI, b, 3, 2, &v, why), EF_EMBED_PARSE_OK, "%s", why);
	for (int i = 0; i < 3; i++)
		cr_assert_float_eq(v.data[i * 2], (float)(i + 1), 1e-6, "row %d", i);
	free(v.data);
}

Test(embed_parse, openai_duplicate_index_is_invalid)
{
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":0,\"embedding\":[1]},"
		  "{\"index\":0,\"embedding\":[2]}]}", 2, 1, EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, openai_index_out_of_range_missing_or_fractional_is_invalid)
{
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":0,\"embedding\":[1]},"
		  "{\"index\":2,\"embedding\":[2]}]}", 2, 1, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"embedding\":[1]}]}", 1, 1,
		  EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":0.5,\"embedding\":[1]}]}", 1, 1,
		  EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":-1,\"embedding\":[1]}]}", 1, 1,
		  EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":\"0\",\"embedding\":[1]}]}", 1, 1,
		  EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, openai_base64_embedding_is_malformed)
{
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":0,\"embedding\":\"AACAPw==\"}]}", 1, 1,
		  EF_EMBED_PARSE_MALFORMED);
}

Test(embed_parse, wrong_count_is_invalid_for_every_provider)
{
	expect_rc(EF_EMBED_OLLAMA, "{\"embeddings\":[[1,2]]}", 2, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_OLLAMA, "{\"embeddings\":[[1,2],[1,2],[1,2]]}", 2, 2,
		  EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[1,2]]", 2, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":0,\"embedding\":[1,2]}]}", 2, 2,
		  EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[]", 1, 2, EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, some_vectors_of_another_dim_is_invalid_not_a_dim_mismatch)
{
	expect_rc(EF_EMBED_OLLAMA, "{\"embeddings\":[[1,2,3],[1,2]]}", 2, 3,
		  EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[1,2],[1,2,3]]", 2, 2, EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, every_vector_of_another_dim_is_a_dim_mismatch_naming_it)
{
	struct ef_embed_vectors v;
	char why[256];

	cr_assert_eq(parse(EF_EMBED_TEI, "[[1,2,3,4],[5,6,7,8]]", 2, 3, &v, why),
		     EF_EMBED_PARSE_DIM);
	cr_assert_eq(v.dim, 4);
	cr_assert_null(v.data);
	cr_assert(strstr(why, "4") && strstr(why, "3"), "%s", why);
}

Test(embed_parse, dim_zero_accepts_any_dimension_all_agreeing)
{
	struct ef_embed_vectors v;
	char why[256];

	cr_assert_eq(parse(EF_EMBED_TEI, "[[1,2,3,4,5]]", 1, 0, &v, why), EF_EMBED_PARSE_OK);
	cr_assert_eq(v.dim, 5);
	free(v.data);
	expect_rc(EF_EMBED_TEI, "[[1,2],[1]]", 2, 0, EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, non_finite_values_never_pass)
{
	expect_rc(EF_EMBED_TEI, "[[1e999,1]]", 1, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[-1e999,1]]", 1, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[1e300,1]]", 1, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[NaN,1]]", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_TEI, "[[Infinity,1]]", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_OLLAMA, "{\"embeddings\":[[null,1]]}", 1, 2, EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, non_numeric_values_and_wrong_nesting_are_rejected)
{
	expect_rc(EF_EMBED_TEI, "[[\"1\",2]]", 1, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[true,2]]", 1, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[[1],2]]", 1, 2, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[1,2]", 2, 1, EF_EMBED_PARSE_INVALID);
	expect_rc(EF_EMBED_TEI, "[[]]", 1, 0, EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, missing_fields_and_wrong_roots_are_malformed)
{
	expect_rc(EF_EMBED_OLLAMA, "{\"embedding\":[1,2]}", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_OLLAMA, "[[1,2]]", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_OPENAI, "{\"object\":\"list\"}", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_OPENAI, "{\"data\":{}}", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_TEI, "{\"embeddings\":[[1,2]]}", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_OPENAI, "{\"data\":[{\"index\":0}]}", 1, 2, EF_EMBED_PARSE_INVALID);
}

Test(embed_parse, broken_json_is_malformed)
{
	expect_rc(EF_EMBED_TEI, "", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_TEI, "[[1,2]", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_TEI, "[[1,2]] trailing", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_TEI, "[[1,2]]]", 1, 2, EF_EMBED_PARSE_MALFORMED);
	expect_rc(EF_EMBED_OLLAMA, "{\"embeddings\":[[1,2]]", 1, 2, EF_EMBED_PARSE_MALFORMED);
}

Test(embed_parse, body_without_terminator_is_read_within_its_length)
{
	struct ef_embed_vectors v;
	char body[] = "[[1,2]]XXXX";

	cr_assert_eq(ef_embed_parse_response(EF_EMBED_TEI, body, 7, 1, 2, &v, NULL, 0),
		     EF_EMBED_PARSE_OK);
	free(v.data);
}

Test(embed_parse, request_bodies_have_each_providers_shape)
{
	const char *texts[] = { "a \"quoted\"\n text", "b" };
	char *o = ef_embed_build_request(EF_EMBED_OLLAMA, "nomic", texts, 2);
	char *a = ef_embed_build_request(EF_EMBED_OPENAI, "text-embedding-3-small", texts, 2);
	char *t = ef_embed_build_request(EF_EMBED_TEI, "ignored", texts, 1);

	cr_assert_str_eq(o, "{\"model\":\"nomic\",\"truncate\":false,"
			 "\"input\":[\"a \\\"quoted\\\"\\n text\",\"b\"]}");
	cr_assert_str_eq(a, "{\"model\":\"text-embedding-3-small\",\"encoding_format\":\"float\","
			 "\"input\":[\"a \\\"quoted\\\"\\n text\",\"b\"]}");
	cr_assert_str_eq(t, "{\"inputs\":[\"a \\\"quoted\\\"\\n text\"]}");
	free(o);
	free(a);
	free(t);
}

/* --- error bodies --------------------------------------------------------- */

static struct ef_embed_err_info err_of(const char *body)
{
	struct ef_embed_err_info ei;

	ef_embed_parse_error(body, strlen(body), &ei);
	return ei;
}

Test(embed_parse, ollama_error_string)
{
	struct ef_embed_err_info ei = err_of("{\"error\":\"model \\\"nomic\\\" not found, try "
					     "pulling it first\"}");

	cr_assert_str_eq(ei.message, "model \"nomic\" not found, try pulling it first");
	cr_assert_eq(ei.kind, EF_EMBED_EK_MODEL);
	ei = err_of("{\"error\":\"input length exceeds the context length\"}");
	cr_assert_eq(ei.kind, EF_EMBED_EK_TOO_LARGE);
}

Test(embed_parse, openai_nested_error_takes_message_and_code)
{
	struct ef_embed_err_info ei = err_of(
		"{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens, "
		"however you requested 9000 tokens\",\"type\":\"invalid_request_error\","
		"\"param\":null,\"code\":\"context_length_exceeded\"}}");

	cr_assert_eq(ei.kind, EF_EMBED_EK_TOO_LARGE);
	cr_assert_str_eq(ei.type, "context_length_exceeded");
	ei = err_of("{\"error\":{\"message\":\"You exceeded your current quota, please check "
		    "your plan and billing details.\",\"type\":\"insufficient_quota\","
		    "\"param\":null,\"code\":\"insufficient_quota\"}}");
	cr_assert_eq(ei.kind, EF_EMBED_EK_QUOTA);
	ei = err_of("{\"error\":{\"message\":\"Incorrect API key provided: sk-****\","
		    "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}");
	cr_assert_eq(ei.kind, EF_EMBED_EK_AUTH);
	ei = err_of("{\"error\":{\"message\":\"Rate limit reached for requests\","
		    "\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}");
	cr_assert_eq(ei.kind, EF_EMBED_EK_OVERLOAD);
}

Test(embed_parse, openai_flat_error_of_vllm)
{
	struct ef_embed_err_info ei = err_of("{\"object\":\"error\",\"message\":\"The model "
					     "`foo` does not exist.\",\"type\":\"NotFoundError\","
					     "\"param\":null,\"code\":404}");

	cr_assert_eq(ei.kind, EF_EMBED_EK_MODEL);
	cr_assert_str_eq(ei.type, "NotFoundError");
}

Test(embed_parse, tei_errors)
{
	struct ef_embed_err_info ei = err_of("{\"error\":\"Input validation error: `inputs` must "
					     "have less than 512 tokens. Given: 600\","
					     "\"error_type\":\"Validation\"}");

	cr_assert_eq(ei.kind, EF_EMBED_EK_TOO_LARGE);
	cr_assert_str_eq(ei.type, "Validation");
	ei = err_of("{\"error\":\"batch size 64 > maximum allowed batch size 32\","
		    "\"error_type\":\"Validation\"}");
	cr_assert_eq(ei.kind, EF_EMBED_EK_TOO_LARGE);
	ei = err_of("{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}");
	cr_assert_eq(ei.kind, EF_EMBED_EK_OVERLOAD);
	ei = err_of("{\"error\":\"`inputs` cannot be empty\",\"error_type\":\"Validation\"}");
	cr_assert_eq(ei.kind, EF_EMBED_EK_INPUT);
}

Test(embed_parse, plain_text_body_keeps_its_first_line)
{
	struct ef_embed_err_info ei = err_of("Failed to buffer the request body: length limit "
					     "exceeded\nmore\n");

	cr_assert_str_eq(ei.message, "Failed to buffer the request body: length limit exceeded");
	cr_assert_eq(ei.kind, EF_EMBED_EK_TOO_LARGE);
}

Test(embed_parse, fastapi_detail_list)
{
	struct ef_embed_err_info ei = err_of("{\"detail\":[{\"loc\":[\"body\",\"input\"],"
					     "\"msg\":\"field required\",\"type\":\"missing\"}]}");

	cr_assert_str_eq(ei.message, "field required");
	cr_assert_eq(ei.kind, EF_EMBED_EK_INPUT);
}

Test(embed_parse, error_message_is_one_clean_line_cut_on_utf8)
{
	char body[2000];
	struct ef_embed_err_info ei;
	size_t k = 0;

	k += (size_t)snprintf(body, sizeof(body), "{\"error\":\"a\\u0001\\n\\tb ");
	for (int i = 0; i < 400; i++)
		k += (size_t)snprintf(body + k, sizeof(body) - k, "\xc3\xa9");
	snprintf(body + k, sizeof(body) - k, "\"}");
	ef_embed_parse_error(body, strlen(body), &ei);
	cr_assert(strncmp(ei.message, "a b ", 4) == 0, "%s", ei.message);
	cr_assert_lt(strlen(ei.message), sizeof(ei.message));
	cr_assert_eq(strlen(ei.message) % 2, 0, "cut inside a 2-byte character: %s", ei.message);
}

Test(embed_parse, empty_or_unknown_bodies_have_no_kind)
{
	cr_assert_eq(err_of("").kind, EF_EMBED_EK_NONE);
	cr_assert_eq(err_of("{}").kind, EF_EMBED_EK_NONE);
	cr_assert_eq(err_of("[1,2]").kind, EF_EMBED_EK_NONE);
	cr_assert_str_eq(err_of("[1,2]").message, "");
}
