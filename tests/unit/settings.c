/*
 * Unit tests of settings: the precedence of defaults, file, environment and
 * flags, the origin each value remembers, the dotenv reader, and the
 * validation done by ef_settings_finish().  No test reads the process
 * environment: environ-style arrays are built here.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embfill/redact.h"
#include "embfill/settings.h"

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

TestSuite(settings, .init = setup, .fini = teardown);

static ef_status load(const char *text)
{
	ef_error_clear(&err);
	return ef_settings_load_text(s, "test.env", text, strlen(text), &err);
}

static ef_status load_env(char *const *envp)
{
	ef_error_clear(&err);
	return ef_settings_load_env(s, envp, &err);
}

static ef_status flag(const char *key, const char *value, const char *spelling)
{
	ef_error_clear(&err);
	return ef_settings_set_flag(s, key, value, spelling, &err);
}

static ef_status finish(void)
{
	ef_error_clear(&err);
	return ef_settings_finish(s, &err);
}

static const char *origin_of(enum ef_key k)
{
	static char buf[512];

	ef_settings_origin(s, k, buf, sizeof(buf));
	return buf;
}

static void assert_has(const char *hay, const char *needle, const char *where)
{
	cr_assert(strstr(hay, needle), "%s should contain \"%s\": %s", where, needle, hay);
}

/* finish() must fail as a usage error whose message names the key and the
 * origin, and whose message or hint says what is accepted. */
static void assert_bad(const char *key, const char *origin, const char *accepted)
{
	char both[2 * EF_ERR_TEXT_MAX + 2];

	cr_assert_eq(finish(), EF_ERR_USAGE, "%s should be refused", key);
	cr_assert_eq(err.status, EF_ERR_USAGE);
	cr_assert_null(ef_settings_config(s), "no config after a failed finish");
	assert_has(err.msg, key, "message");
	assert_has(err.msg, origin, "message");
	snprintf(both, sizeof(both), "%s\n%s", err.msg, err.hint);
	assert_has(both, accepted, "message or hint");
}

/* --- precedence and origins ------------------------------------------ */

Test(settings, defaults_have_origin_default_and_make_a_valid_config)
{
	const struct ef_config *c;

	cr_assert_str_eq(ef_settings_value(s, EF_K_BATCH_SIZE), "100");
	cr_assert_eq(ef_settings_origin_kind(s, EF_K_BATCH_SIZE), EF_FROM_DEFAULT);
	cr_assert_str_eq(origin_of(EF_K_BATCH_SIZE), "default");
	cr_assert_null(ef_settings_config(s), "no config before finish");
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	c = ef_settings_config(s);
	cr_assert_not_null(c);
	cr_assert_eq(c->batch_size, 100);
	cr_assert_eq(c->embed_dim, 768);
	cr_assert_str_eq(c->provider, "ollama");
}

static void load_in_order(const int order[3])
{
	static char *env[] = { "BATCH_SIZE=20", "EMBED_DIM=384", NULL };

	for (int i = 0; i < 3; i++) {
		switch (order[i]) {
		case 0:
			cr_assert_eq(load("# test\nBATCH_SIZE=10\nEMBED_DIM=1024\nEMBED_MODEL=m-file\n"),
				     EF_OK, "%s", err.msg);
			break;
		case 1:
			cr_assert_eq(load_env(env), EF_OK, "%s", err.msg);
			break;
		default:
			cr_assert_eq(flag("BATCH_SIZE", "30", "--batch-size"), EF_OK, "%s", err.msg);
		}
	}
}

Test(settings, env_overrides_file_and_flag_overrides_env)
{
	static const int orders[6][3] = {
		{ 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 }, { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 },
	};

	for (int o = 0; o < 6; o++) {
		ef_settings_free(s);
		s = ef_settings_new();
		cr_assert_not_null(s);
		load_in_order(orders[o]);
		cr_assert_str_eq(ef_settings_value(s, EF_K_BATCH_SIZE), "30", "order %d", o);
		cr_assert_str_eq(origin_of(EF_K_BATCH_SIZE), "flag --batch-size", "order %d", o);
		cr_assert_eq(ef_settings_origin_kind(s, EF_K_BATCH_SIZE), EF_FROM_FLAG);
		cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_DIM), "384", "order %d", o);
		cr_assert_str_eq(origin_of(EF_K_EMBED_DIM), "environment", "order %d", o);
		cr_assert_eq(ef_settings_origin_kind(s, EF_K_EMBED_DIM), EF_FROM_ENV);
		cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL), "m-file", "order %d", o);
		cr_assert_str_eq(origin_of(EF_K_EMBED_MODEL), "test.env:4", "order %d", o);
		cr_assert_eq(ef_settings_origin_kind(s, EF_K_EMBED_MODEL), EF_FROM_FILE);
		cr_assert_str_eq(origin_of(EF_K_EMBED_URL), "default", "order %d", o);
		cr_assert_eq(finish(), EF_OK, "%s", err.msg);
		cr_assert_eq(ef_settings_config(s)->batch_size, 30);
		cr_assert_eq(ef_settings_config(s)->embed_dim, 384);
	}
}

Test(settings, a_later_source_of_equal_rank_replaces_an_earlier_one)
{
	static char *env1[] = { "EMBED_DIM=384", NULL };
	static char *env2[] = { "EMBED_DIM=512", NULL };
	static const char second[] = "\n\nBATCH_SIZE=11\n";

	cr_assert_eq(load("BATCH_SIZE=10\n"), EF_OK);
	cr_assert_eq(ef_settings_load_text(s, "second.env", second, strlen(second), &err), EF_OK);
	cr_assert_str_eq(ef_settings_value(s, EF_K_BATCH_SIZE), "11");
	cr_assert_str_eq(origin_of(EF_K_BATCH_SIZE), "second.env:3");
	cr_assert_eq(load_env(env1), EF_OK);
	cr_assert_eq(load_env(env2), EF_OK);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_DIM), "512");
	cr_assert_eq(flag("EMBED_MODEL", "a", "--model"), EF_OK);
	cr_assert_eq(flag("EMBED_MODEL", "b", "--set"), EF_OK);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL), "b");
	cr_assert_str_eq(origin_of(EF_K_EMBED_MODEL), "flag --set");
}

Test(settings, environment_array_reads_known_keys_and_ignores_the_rest)
{
	static char *env[] = {
		"PATH=/usr/bin", "NO_EQUALS_SIGN", "batch_size=5", "EMBED_MODEL=", "BATCH_SIZE=7",
		"BATCH_SIZE_EXTRA=9", NULL,
	};

	cr_assert_eq(load_env(env), EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_BATCH_SIZE), "7");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL), "");
	cr_assert_eq(ef_settings_origin_kind(s, EF_K_EMBED_MODEL), EF_FROM_ENV);
	cr_assert_eq(load_env(NULL), EF_OK);
}

Test(settings, settings_file_is_read_from_disk_and_may_be_missing_when_optional)
{
	char dir[] = "/tmp/embfill-settings-XXXXXX", path[128], missing[128], want[160];
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/embfill.env", dir);
	snprintf(missing, sizeof(missing), "%s/nope.env", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("# settings\n\nBATCH_SIZE=12\n", f);
	fclose(f);
	cr_assert_eq(ef_settings_load_file(s, path, true, &err), EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_BATCH_SIZE), "12");
	snprintf(want, sizeof(want), "%s:3", path);
	cr_assert_str_eq(origin_of(EF_K_BATCH_SIZE), want);
	cr_assert_eq(ef_settings_load_file(s, missing, false, &err), EF_OK);
	ef_error_clear(&err);
	cr_assert_eq(ef_settings_load_file(s, missing, true, &err), EF_ERR_USAGE);
	assert_has(err.msg, missing, "message");
	unlink(path);
	rmdir(dir);
}

/* fopen() opens a directory and fread() then fails with EISDIR, which read
 * as an empty file: every setting silently at its default. */
Test(settings, a_directory_given_as_settings_file_is_refused)
{
	char dir[] = "/tmp/embfill-settings-XXXXXX";

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(ef_settings_load_file(s, dir, true, &err), EF_ERR_USAGE);
	assert_has(err.msg, dir, "message");
	assert_has(err.msg, "is a directory", "message");
	assert_has(err.hint, "settings file", "hint");
	ef_error_clear(&err);
	cr_assert_eq(ef_settings_load_file(s, dir, false, &err), EF_ERR_USAGE,
		     "the default ./embfill.env as a directory");
	rmdir(dir);
}

/* A file that opens but cannot be read (here EIO at offset 0). */
Test(settings, a_settings_file_that_cannot_be_read_is_refused)
{
	cr_assert_eq(ef_settings_load_file(s, "/proc/self/mem", true, &err), EF_ERR_USAGE);
	assert_has(err.msg, "cannot read settings file \"/proc/self/mem\"", "message");
}

/* --- dotenv syntax ------------------------------------------------------- */

Test(settings, dotenv_skips_comments_and_blank_lines_and_accepts_export)
{
	cr_assert_eq(load("# a comment\n\n   \n\t# indented comment\nexport BATCH_SIZE=42\n"
			  "  EMBED_DIM = 256\nexport   EMBED_MODEL=mxbai\n"),
		     EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_BATCH_SIZE), "42");
	cr_assert_str_eq(origin_of(EF_K_BATCH_SIZE), "test.env:5");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_DIM), "256");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL), "mxbai");
	cr_assert_str_eq(origin_of(EF_K_EMBED_MODEL), "test.env:7");
}

Test(settings, dotenv_crlf_lines_lose_their_carriage_return)
{
	cr_assert_eq(load("# windows\r\nBATCH_SIZE=42\r\nEMBED_MODEL='quoted'\r\n"
			  "EMBED_URL=\"http://h:1\"\r\n\r\nEMBED_DIM=3"),
		     EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_BATCH_SIZE), "42");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL), "quoted");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_URL), "http://h:1");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_DIM), "3");
	cr_assert_str_eq(origin_of(EF_K_EMBED_DIM), "test.env:6");
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
}

Test(settings, dotenv_bare_value_comment_needs_a_blank_before_the_hash)
{
	cr_assert_eq(load("EMBED_MODEL=nomic # the default model\n"
			  "EMBED_URL=http://h:1/p#frag\n"
			  "HISTORYLOG=log.md\t# tab before hash\n"
			  "DOCUMENTS_TABLE=docs   \n"),
		     EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL), "nomic");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_URL), "http://h:1/p#frag");
	cr_assert_str_eq(ef_settings_value(s, EF_K_HISTORYLOG), "log.md");
	cr_assert_str_eq(ef_settings_value(s, EF_K_DOCUMENTS_TABLE), "docs");
}

/* "an unquoted ' #' starts a comment" (settings.h): with nothing before the
 * comment the value is empty, not the comment's text. */
Test(settings, dotenv_comment_after_an_empty_bare_value_is_not_the_value)
{
	cr_assert_eq(load("EMBEDDINGS_RUN_COLUMN=   # we have no run column\n"), EF_OK, "%s",
		     err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBEDDINGS_RUN_COLUMN), "");
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_null(ef_settings_config(s)->map.emb_run);
}

Test(settings, dotenv_single_quotes_are_literal)
{
	cr_assert_eq(load("EMBED_MODEL='a \\n \"b\" # not a comment \\\\' # comment\n"), EF_OK, "%s",
		     err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL),
			 "a \\n \"b\" # not a comment \\\\");
}

Test(settings, dotenv_double_quotes_take_escapes)
{
	cr_assert_eq(load("EMBED_MODEL=\"say \\\"hi\\\" \\\\ back\\nnext\\ttab # kept\"  # comment\n"),
		     EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL),
			 "say \"hi\" \\ back\nnext\ttab # kept");
}

Test(settings, dotenv_empty_values_in_every_form)
{
	cr_assert_eq(load("EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=''\n"
			  "EMBEDDINGS_RUN_COLUMN=\"\"\nEMBED_CA_FILE=   \n"),
		     EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBEDDINGS_DIM_COLUMN), "");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBEDDINGS_AT_COLUMN), "");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBEDDINGS_RUN_COLUMN), "");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_CA_FILE), "");
	cr_assert_eq(ef_settings_origin_kind(s, EF_K_EMBEDDINGS_RUN_COLUMN), EF_FROM_FILE);
}

static void assert_malformed(const char *bad_line, const char *why)
{
	char text[512];
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "# header\nBATCH_SIZE=5\n%s\nEMBED_DIM=9\n",
			     bad_line);
	ef_settings_free(s);
	s = ef_settings_new();
	ef_error_clear(&err);
	cr_assert_eq(ef_settings_load_text(s, "bad.env", text, n, &err), EF_ERR_USAGE,
		     "line \"%s\" should be refused", bad_line);
	cr_assert_eq(err.status, EF_ERR_USAGE);
	cr_assert(strncmp(err.msg, "bad.env:3: ", 11) == 0, "file and line for \"%s\": %s",
		  bad_line, err.msg);
	assert_has(err.msg, why, bad_line);
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_DIM), "768", "stops at the bad line");
}

Test(settings, dotenv_malformed_lines_name_file_and_line)
{
	assert_malformed("BATCH_SIZE 5", "expected KEY=VALUE");
	assert_malformed("just words", "expected KEY=VALUE");
	assert_malformed("=5", "expected KEY=VALUE");
	assert_malformed("1BATCH=5", "expected KEY=VALUE");
	assert_malformed("BATCH-SIZE=5", "expected KEY=VALUE");
	assert_malformed("EMBED_MODEL='open", "unterminated single quote");
	assert_malformed("EMBED_MODEL=\"open", "unterminated double quote");
	assert_malformed("EMBED_MODEL=\"open\\\"", "unterminated double quote");
	assert_malformed("EMBED_MODEL='a'b", "text after the closing quote");
	assert_malformed("EMBED_MODEL=\"a\" b", "text after the closing quote");
}

Test(settings, dotenv_nul_byte_is_refused_with_file_and_line)
{
	static const char text[] = "BATCH_SIZE=5\nEMBED_MODEL=ab\0cd\n";

	cr_assert_eq(ef_settings_load_text(s, "nul.env", text, sizeof(text) - 1, &err),
		     EF_ERR_USAGE);
	cr_assert(strncmp(err.msg, "nul.env:2: ", 11) == 0, "%s", err.msg);
	assert_has(err.msg, "NUL", "message");
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_MODEL), "nomic-embed-text");
}

Test(settings, dotenv_unknown_key_is_named_with_the_nearest_key)
{
	cr_assert_eq(load("EMBED_DIM=3\nBATCH_SIZ=5\n"), EF_ERR_USAGE);
	cr_assert(strncmp(err.msg, "test.env:2: ", 12) == 0, "%s", err.msg);
	assert_has(err.msg, "\"BATCH_SIZ\"", "message");
	assert_has(err.hint, "did you mean BATCH_SIZE?", "hint");
	cr_assert_eq(load("TOTALLY_UNRELATED_THING=1\n"), EF_ERR_USAGE);
	assert_has(err.msg, "TOTALLY_UNRELATED_THING", "message");
	cr_assert_null(strstr(err.hint, "did you mean"), "no near key: %s", err.hint);
}

Test(settings, api_key_in_a_file_is_refused_with_a_hint_for_the_key_file)
{
	cr_assert_eq(load("\nexport EMBED_API_KEY=sk-live-0123456789abcdef\n"), EF_ERR_USAGE);
	cr_assert(strncmp(err.msg, "test.env:2: ", 12) == 0, "%s", err.msg);
	assert_has(err.msg, "EMBED_API_KEY", "message");
	assert_has(err.hint, "EMBED_API_KEY_FILE", "hint");
	cr_assert_null(strstr(err.msg, "sk-live"), "the key is not echoed: %s", err.msg);
	cr_assert_null(strstr(err.hint, "sk-live"));
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_API_KEY), "");
	cr_assert_eq(ef_settings_origin_kind(s, EF_K_EMBED_API_KEY), EF_FROM_DEFAULT);
}

Test(settings, api_key_from_the_environment_is_kept_but_never_displayed)
{
	static char *env[] = { "EMBED_API_KEY=sk-live-0123456789abcdef", NULL };
	char *shown;

	cr_assert_eq(load_env(env), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_config(s)->api_key, "sk-live-0123456789abcdef");
	shown = ef_settings_display(s, EF_K_EMBED_API_KEY);
	cr_assert_not_null(shown);
	cr_assert_null(strstr(shown, "sk-live"), "%s", shown);
	cr_assert_str_eq(shown, "*** (set)");
	free(shown);
}

Test(settings, api_key_flag_is_refused)
{
	cr_assert_eq(flag("EMBED_API_KEY", "sk-live-0123456789abcdef", "--set"), EF_ERR_USAGE);
	cr_assert_eq(err.status, EF_ERR_USAGE);
	assert_has(err.msg, "--set", "message");
	assert_has(err.msg, "EMBED_API_KEY", "message");
	assert_has(err.hint, "EMBED_API_KEY_FILE", "hint");
	cr_assert_null(strstr(err.msg, "sk-live"));
	cr_assert_str_eq(ef_settings_value(s, EF_K_EMBED_API_KEY), "");
}

Test(settings, unknown_flag_key_is_named_with_the_nearest_key)
{
	cr_assert_eq(flag("EMBED_MODLE", "x", "--set"), EF_ERR_USAGE);
	assert_has(err.msg, "--set", "message");
	assert_has(err.msg, "\"EMBED_MODLE\"", "message");
	assert_has(err.hint, "did you mean EMBED_MODEL?", "hint");
}

/* --- validation ---------------------------------------------------------- */

Test(settings, batch_size_that_is_not_a_number_names_key_origin_and_range)
{
	static const char *const bad[] = { "abc", "12x", "", " 5", "+5", "5.0",
					   "99999999999999999999999" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(flag("BATCH_SIZE", bad[i], "--batch-size"), EF_OK);
		assert_bad("BATCH_SIZE", "flag --batch-size", "1 to 10000");
	}
	ef_settings_free(s);
	s = ef_settings_new();
	cr_assert_eq(load("\nBATCH_SIZE=lots\n"), EF_OK);
	assert_bad("BATCH_SIZE", "test.env:2", "1 to 10000");
	assert_has(err.msg, "\"lots\"", "message");
}

Test(settings, batch_size_range_is_1_to_10000)
{
	static char *zero[] = { "BATCH_SIZE=0", NULL };
	static char *over[] = { "BATCH_SIZE=10001", NULL };
	static char *neg[] = { "BATCH_SIZE=-1", NULL };

	cr_assert_eq(load_env(zero), EF_OK);
	assert_bad("BATCH_SIZE", "environment", "1 to 10000");
	cr_assert_eq(load_env(over), EF_OK);
	assert_bad("BATCH_SIZE", "environment", "1 to 10000");
	cr_assert_eq(load_env(neg), EF_OK);
	assert_bad("BATCH_SIZE", "environment", "1 to 10000");
	cr_assert_eq(flag("BATCH_SIZE", "1", "--batch-size"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(ef_settings_config(s)->batch_size, 1);
	cr_assert_eq(flag("BATCH_SIZE", "10000", "--batch-size"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(ef_settings_config(s)->batch_size, 10000);
}

Test(settings, spotcheck_min_coverage_is_a_share_from_0_to_1_defaulting_to_0_95)
{
	static const char *const bad[] = { "abc", "", "1.5", "-0.1", "95%", "0,9", "1e-1",
					   " 0.5" };

	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_float_eq(ef_settings_config(s)->spotcheck_min_coverage, 0.95, 1e-9);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(flag("SPOTCHECK_MIN_COVERAGE", bad[i], "--set"), EF_OK);
		assert_bad("SPOTCHECK_MIN_COVERAGE", "flag --set", "from 0 to 1");
	}
	cr_assert_eq(flag("SPOTCHECK_MIN_COVERAGE", "0.5", "--set"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_float_eq(ef_settings_config(s)->spotcheck_min_coverage, 0.5, 1e-9);
	cr_assert_eq(flag("SPOTCHECK_MIN_COVERAGE", "1", "--set"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_float_eq(ef_settings_config(s)->spotcheck_min_coverage, 1.0, 1e-9);
}

Test(settings, embed_dim_zero_is_refused)
{
	cr_assert_eq(load("EMBED_DIM=0\n"), EF_OK);
	assert_bad("EMBED_DIM", "test.env:1", "1 to 16000");
}

Test(settings, unknown_provider_lists_the_accepted_ones)
{
	static char *env[] = { "EMBED_PROVIDER=bogus", NULL };

	cr_assert_eq(load_env(env), EF_OK);
	assert_bad("EMBED_PROVIDER", "environment", "ollama|openai|tei");
	assert_has(err.msg, "\"bogus\"", "message");
	cr_assert_eq(flag("EMBED_PROVIDER", "OpenAI", "--provider"), EF_OK);
	assert_bad("EMBED_PROVIDER", "flag --provider", "ollama|openai|tei");
	cr_assert_eq(flag("EMBED_PROVIDER", "tei", "--provider"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_str_eq(ef_settings_config(s)->provider, "tei");
}

Test(settings, embed_url_must_be_http_or_https)
{
	cr_assert_eq(flag("EMBED_URL", "ftp://x", "--url"), EF_OK);
	assert_bad("EMBED_URL", "flag --url", "http");
	assert_has(err.msg, "ftp://x", "message");
	cr_assert_eq(flag("EMBED_URL", "not a url", "--url"), EF_OK);
	assert_bad("EMBED_URL", "flag --url", "http://");
	cr_assert_eq(flag("EMBED_URL", "https://embed.example.com/v1", "--url"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
}

Test(settings, chunk_overlap_must_be_below_max_chunk_size)
{
	static char *env[] = { "MAX_CHUNK_SIZE=500", "CHUNK_OVERLAP=500", NULL };

	cr_assert_eq(load_env(env), EF_OK);
	assert_bad("CHUNK_OVERLAP", "environment", "MAX_CHUNK_SIZE");
	cr_assert_eq(flag("CHUNK_OVERLAP", "800", "--overlap"), EF_OK);
	assert_bad("CHUNK_OVERLAP", "flag --overlap", "MAX_CHUNK_SIZE");
	cr_assert_eq(flag("CHUNK_OVERLAP", "499", "--overlap"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(ef_settings_config(s)->chunk_overlap, 499);
}

Test(settings, unparseable_database_url_is_refused)
{
	cr_assert_eq(load("DATABASE_URL=\"host='unterminated\"\n"), EF_OK, "%s", err.msg);
	assert_bad("DATABASE_URL", "test.env:1", "postgresql://");
	assert_has(err.msg, "libpq", "message");
}

/* libpq's parse errors quote the URI or the token they choke on, password
 * included; the message must not carry it to the operator's terminal. */
Test(settings, database_url_parse_error_never_shows_the_password)
{
	static const char *const urls[] = {
		"postgresql://app:Sup3rS3cretPw@[::1/db",
		"postgresql://app:Sup3rS3cret%zzPw@db.internal/app",
	};

	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(flag("DATABASE_URL", urls[i], "--dsn"), EF_OK);
		assert_bad("DATABASE_URL", "flag --dsn", "postgresql://");
		cr_assert_null(strstr(err.msg, "Sup3rS3cret"), "password leaked: %s", err.msg);
		cr_assert_null(strstr(err.hint, "Sup3rS3cret"), "password leaked: %s", err.hint);
	}
}

/* A misspelt key makes the string unparseable; before, the message showed
 * the string with only its "password=" values masked. */
Test(settings, database_url_with_a_misspelt_key_is_refused_without_its_values)
{
	static char *env[] = { "DATABASE_URL=host=/tmp/x dbname=lab passwrod=S3CRET foo=S3CRET",
			       NULL };

	cr_assert_eq(load("DATABASE_URL=\"host=/tmp/x passwrod=S3CRET\"\n"), EF_OK);
	assert_bad("DATABASE_URL", "test.env:1", "postgresql://");
	assert_has(err.msg, "invalid connection option \"passwrod\"", "message");
	cr_assert_null(strstr(err.msg, "S3CRET"), "password leaked: %s", err.msg);
	cr_assert_null(strstr(err.msg, "\\n"), "libpq's newline shown: %s", err.msg);
	cr_assert_eq(load_env(env), EF_OK);
	assert_bad("DATABASE_URL", "environment", "postgresql://");
	cr_assert_null(strstr(err.msg, "S3CRET"), "password leaked: %s", err.msg);
	cr_assert_null(strstr(err.msg, "/tmp/x"), "value shown: %s", err.msg);
}

/* A command line is visible in ps for the whole run. */
Test(settings, a_password_in_a_connection_string_flag_is_refused)
{
	static const char *const dsns[] = {
		"host=/tmp/x dbname=lab password=pw-PLANTED",
		"host=/tmp/x sslpassword='pw PLANTED'",
		"postgresql://ops:pw-PLANTED@db/lab",
		"postgresql://ops@db/lab?sslmode=require&password=pw-PLANTED",
	};

	for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++) {
		cr_assert_eq(flag("DATABASE_URL", dsns[i], i % 2 ? "--set" : "--dsn"),
			     EF_ERR_USAGE, "%s accepted", dsns[i]);
		assert_has(err.msg, i % 2 ? "--set" : "--dsn", "message");
		assert_has(err.msg, "password", "message");
		assert_has(err.hint, "embfill.env", "hint");
		assert_has(err.hint, "PGPASSFILE", "hint");
		assert_has(err.hint, "~/.pgpass", "hint");
		assert_has(err.hint, "PGPASSWORD", "hint");
		cr_assert_null(strstr(err.msg, "PLANTED"), "%s", err.msg);
		cr_assert_null(strstr(err.hint, "PLANTED"), "%s", err.hint);
		cr_assert_str_eq(ef_settings_value(s, EF_K_DATABASE_URL), "", "stored anyway");
	}
}

Test(settings, a_password_in_the_file_or_environment_is_accepted)
{
	static char *env[] = { "DATABASE_URL=postgresql://ops:pw-env@db/lab", NULL };

	cr_assert_eq(flag("DATABASE_URL", "postgresql://ops@db/lab?sslmode=require", "--dsn"),
		     EF_OK, "%s", err.msg);
	ef_settings_free(s);
	s = ef_settings_new();
	cr_assert_eq(load("DATABASE_URL=\"host=/tmp/x password=pw-file\"\n"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(load_env(env), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
}

Test(settings, missing_ca_file_is_refused)
{
	char dir[] = "/tmp/embfill-ca-XXXXXX", path[128];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing.pem", dir);
	cr_assert_eq(flag("EMBED_CA_FILE", path, "--ca-file"), EF_OK);
	assert_bad("EMBED_CA_FILE", "flag --ca-file", "readable file");
	assert_has(err.msg, "missing.pem", "message");
	cr_assert_eq(flag("EMBED_CA_FILE", dir, "--ca-file"), EF_OK);
	assert_bad("EMBED_CA_FILE", "flag --ca-file", "not a regular file");
	rmdir(dir);
}

Test(settings, identifier_settings_are_checked_and_named)
{
	char long_name[65];
	static char *env[] = { "CHUNKS_TABLE=a.b.c", NULL };

	memset(long_name, 'x', 64);
	long_name[64] = '\0';
	cr_assert_eq(load_env(env), EF_OK);
	assert_bad("CHUNKS_TABLE", "environment", "dot");
	cr_assert_eq(flag("CHUNKS_TABLE", "app.chunks", "--set"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "a schema-qualified table is fine: %s", err.msg);

	cr_assert_eq(load("\n\nCHUNKS_CONTENT_COLUMN=chunks.content\n"), EF_OK);
	assert_bad("CHUNKS_CONTENT_COLUMN", "test.env:3", "dot");
	cr_assert_eq(flag("CHUNKS_CONTENT_COLUMN", long_name, "--set"), EF_OK);
	assert_bad("CHUNKS_CONTENT_COLUMN", "flag --set", "64 bytes");
	cr_assert_eq(flag("CHUNKS_CONTENT_COLUMN", "con\ttent", "--set"), EF_OK);
	assert_bad("CHUNKS_CONTENT_COLUMN", "flag --set", "control character");
	cr_assert_eq(flag("CHUNKS_CONTENT_COLUMN", "", "--set"), EF_OK);
	assert_bad("CHUNKS_CONTENT_COLUMN", "flag --set", "empty");
	cr_assert_eq(flag("CHUNKS_CONTENT_COLUMN", "Content \"Text\"; x", "--set"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(flag("EMBFILL_SCHEMA", "a.b", "--set"), EF_OK);
	assert_bad("EMBFILL_SCHEMA", "flag --set", "dot");
}

Test(settings, a_bad_value_in_the_file_that_the_environment_overrides_does_not_fail)
{
	static char *env[] = { "BATCH_SIZE=50", "EMBED_PROVIDER=openai", NULL };

	cr_assert_eq(load("BATCH_SIZE=not-a-number\nEMBED_PROVIDER=bogus\n"), EF_OK);
	cr_assert_eq(load_env(env), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(ef_settings_config(s)->batch_size, 50);
	cr_assert_str_eq(ef_settings_config(s)->provider, "openai");
}

static void assert_one_printable_line(const char *s)
{
	for (const char *p = s; *p; p++)
		cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f,
			  "control byte 0x%02x at %td in: %s", (unsigned char)*p, p - s, s);
}

/* error.h: the message is one line; a value echoed into it must not bring
 * a line break or a terminal escape along. */
Test(settings, a_bad_value_is_echoed_on_one_printable_line)
{
	static char *env[] = { "EMBED_PROVIDER=ollama\x1b[2J", NULL };

	cr_assert_eq(load("BATCH_SIZE=\"12\\n34\"\n"), EF_OK, "%s", err.msg);
	assert_bad("BATCH_SIZE", "test.env:1", "1 to 10000");
	assert_one_printable_line(err.msg);
	cr_assert_eq(flag("BATCH_SIZE", "10", "--batch-size"), EF_OK);
	cr_assert_eq(load_env(env), EF_OK);
	assert_bad("EMBED_PROVIDER", "environment", "ollama|openai|tei");
	assert_one_printable_line(err.msg);
	cr_assert_eq(flag("EMBED_PROVIDER", "ollama", "--provider"), EF_OK);
	cr_assert_eq(flag("CHUNKS_CONTENT_COLUMN", "a.b\nc", "--set"), EF_OK);
	assert_bad("CHUNKS_CONTENT_COLUMN", "flag --set", "dot");
	assert_one_printable_line(err.msg);
}

Test(settings, empty_required_text_is_refused)
{
	cr_assert_eq(flag("EMBED_MODEL", "", "--model"), EF_OK);
	assert_bad("EMBED_MODEL", "flag --model", "empty");
}

/* --- the typed config ---------------------------------------------------- */

Test(settings, config_holds_the_typed_values)
{
	static char *env[] = { "EMBED_TIMEOUT_S=30", "EMBED_CONCURRENCY=4", NULL };
	const struct ef_config *c;

	cr_assert_eq(load("DATABASE_URL=postgresql://app@db/app\nEMBED_PROVIDER=openai\n"
			  "EMBED_URL=https://api.example.com\nEMBED_MODEL=text-embedding-3-small\n"
			  "EMBED_DIM=1536\nMAX_CHUNK_SIZE=2000\nCHUNK_OVERLAP=200\n"
			  "EMBED_MAX_ATTEMPTS=3\nEMBED_CONNECT_TIMEOUT_S=5\nHISTORYLOG=h.md\n"),
		     EF_OK, "%s", err.msg);
	cr_assert_eq(load_env(env), EF_OK);
	cr_assert_eq(flag("BATCH_SIZE", "64", "--batch-size"), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	c = ef_settings_config(s);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->dsn, "postgresql://app@db/app");
	cr_assert_str_eq(c->provider, "openai");
	cr_assert_str_eq(c->embed_url, "https://api.example.com");
	cr_assert_str_eq(c->embed_model, "text-embedding-3-small");
	cr_assert_eq(c->embed_dim, 1536);
	cr_assert_null(c->api_key);
	cr_assert_null(c->api_key_file);
	cr_assert_null(c->ca_file);
	cr_assert_eq(c->timeout_s, 30);
	cr_assert_eq(c->connect_timeout_s, 5);
	cr_assert_eq(c->max_attempts, 3);
	cr_assert_eq(c->concurrency, 4);
	cr_assert_eq(c->batch_size, 64);
	cr_assert_eq(c->max_chunk_size, 2000);
	cr_assert_eq(c->chunk_overlap, 200);
	cr_assert_str_eq(c->historylog, "h.md");
}

Test(settings, config_is_withdrawn_when_a_value_changes_after_finish)
{
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_not_null(ef_settings_config(s));
	cr_assert_eq(flag("BATCH_SIZE", "5", "--batch-size"), EF_OK);
	cr_assert_null(ef_settings_config(s), "the config no longer matches the values");
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(ef_settings_config(s)->batch_size, 5);
}

Test(settings, default_mapping_is_separate_layout_and_collection_column)
{
	const struct ef_mapping *m;

	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	m = &ef_settings_config(s)->map;
	cr_assert_eq(m->layout, EF_LAYOUT_SEPARATE);
	cr_assert_eq(m->coll_mode, EF_COLL_COLUMN);
	cr_assert_str_eq(m->tool_schema, "embfill");
	cr_assert_str_eq(m->chunks, "document_chunks");
	cr_assert_str_eq(m->chunk_content, "content");
	cr_assert_str_eq(m->embeddings, "document_embeddings");
	cr_assert_str_eq(m->emb_vector, "embedding");
	cr_assert_str_eq(m->emb_dim, "dim");
	cr_assert_str_eq(m->emb_at, "embedded_at");
	cr_assert_str_eq(m->emb_run, "run_id");
	cr_assert_null(m->lookup);
}

Test(settings, inline_layout_has_no_embeddings_table)
{
	cr_assert_eq(load("SCHEMA_LAYOUT=inline\nEMBEDDINGS_VECTOR_COLUMN=vec\n"), EF_OK, "%s",
		     err.msg);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	cr_assert_eq(ef_settings_config(s)->map.layout, EF_LAYOUT_INLINE);
	cr_assert_null(ef_settings_config(s)->map.embeddings);
	cr_assert_str_eq(ef_settings_config(s)->map.emb_vector, "vec");
	cr_assert_eq(flag("SCHEMA_LAYOUT", "sideways", "--set"), EF_OK);
	assert_bad("SCHEMA_LAYOUT", "flag --set", "separate|inline");
}

Test(settings, empty_optional_columns_map_to_null)
{
	static char *env[] = { "EMBEDDINGS_DIM_COLUMN=", "EMBEDDINGS_AT_COLUMN=",
			       "EMBEDDINGS_RUN_COLUMN=", NULL };
	const struct ef_mapping *m;

	cr_assert_eq(load_env(env), EF_OK);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	m = &ef_settings_config(s)->map;
	cr_assert_null(m->emb_dim);
	cr_assert_null(m->emb_at);
	cr_assert_null(m->emb_run);
	cr_assert_str_eq(m->emb_hash, "content_sha256");
}

Test(settings, lookup_mode_sets_the_lookup_table)
{
	const struct ef_mapping *m;

	cr_assert_eq(load("COLLECTION_MODE=lookup\nCOLLECTIONS_TABLE=app.tenants\n"
			  "COLLECTIONS_KEY_COLUMN=tenant_id\nCOLLECTIONS_NAME_COLUMN=slug\n"),
		     EF_OK, "%s", err.msg);
	cr_assert_eq(finish(), EF_OK, "%s", err.msg);
	m = &ef_settings_config(s)->map;
	cr_assert_eq(m->coll_mode, EF_COLL_LOOKUP);
	cr_assert_str_eq(m->lookup, "app.tenants");
	cr_assert_str_eq(m->lookup_key, "tenant_id");
	cr_assert_str_eq(m->lookup_name, "slug");
	cr_assert_eq(flag("COLLECTION_MODE", "tables", "--set"), EF_OK);
	assert_bad("COLLECTION_MODE", "flag --set", "column|lookup|table");
}

Test(settings, key_names_round_trip_and_have_help)
{
	for (int k = 0; k < EF_K__COUNT; k++) {
		cr_assert_eq(ef_settings_key_lookup(ef_settings_key_name((enum ef_key)k)), k);
		cr_assert_neq(ef_settings_key_help((enum ef_key)k)[0], '\0', "key %d", k);
	}
	cr_assert_eq(ef_settings_key_lookup("batch_size"), -1);
	cr_assert_eq(ef_settings_key_lookup("NOPE"), -1);
}
