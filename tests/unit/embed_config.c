/*
 * Unit tests of the embedding client's configuration: provider names, the
 * checks made before any request, and the API key file.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embfill/embed.h"

static struct ef_embed_config good(void)
{
	struct ef_embed_config c;

	ef_embed_config_defaults(&c);
	c.provider = EF_EMBED_OLLAMA;
	c.url = "http://127.0.0.1:11434/";
	c.model = "nomic-embed-text";
	c.dim = 768;
	return c;
}

static ef_status check(const struct ef_embed_config *c, struct ef_error *err)
{
	ef_error_clear(err);
	return ef_embed_config_check(c, err);
}

Test(embed_config, provider_names_round_trip)
{
	struct ef_error err;
	enum ef_embed_provider p;

	for (int i = EF_EMBED_OLLAMA; i <= EF_EMBED_TEI; i++) {
		cr_assert_eq(ef_embed_provider_parse(ef_embed_provider_name(i), &p, &err), EF_OK);
		cr_assert_eq((int)p, i);
	}
	cr_assert_eq(ef_embed_provider_parse("OpenAI ", &p, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "\"OpenAI \"") && strstr(err.hint, "ollama, openai or tei"));
}

Test(embed_config, a_good_config_passes)
{
	struct ef_embed_config c = good();
	struct ef_error err;

	cr_assert_eq(check(&c, &err), EF_OK, "%s", err.msg);
	c.provider = EF_EMBED_TEI;
	c.model = NULL;
	c.url = "https://user:pw@tei.internal:8080/base/?token=x";
	cr_assert_eq(check(&c, &err), EF_OK, "tei needs no model: %s", err.msg);
}

Test(embed_config, bad_configs_are_usage_errors_with_hints)
{
	struct ef_embed_config c = good();
	struct ef_error err;

	c.provider = EF_EMBED_NONE;
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE);
	c = good();
	c.model = "";
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.hint, "EMBED_MODEL"));
	c = good();
	c.url = "ftp://host/";
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.hint, "EMBED_URL"));
	c.url = "127.0.0.1:11434";
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE);
	c = good();
	c.dim = -1;
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE);
	c = good();
	c.api_key = "sk-abc\r\nX-Evil: 1";
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE, "a key must not inject a header");
	cr_assert_null(strstr(err.msg, "sk-abc"));
	c = good();
	c.ca_file = "/nonexistent/ca.pem";
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "/nonexistent/ca.pem"));
}

Test(embed_config, a_bad_url_is_not_echoed)
{
	struct ef_embed_config c = good();
	struct ef_error err;

	c.url = "gopher://admin:hunter22@host/?key=secret";
	cr_assert_eq(check(&c, &err), EF_ERR_USAGE);
	cr_assert_null(strstr(err.msg, "hunter22"));
	cr_assert_null(strstr(err.msg, "secret"));
}

Test(embed_config, pool_refuses_bad_concurrency)
{
	struct ef_embed_config c = good();
	struct ef_error err;
	ef_embed_pool *p;

	cr_assert_eq(ef_embed_pool_new(&c, 0, &p, &err), EF_ERR_USAGE);
	cr_assert_null(p);
	cr_assert_eq(ef_embed_pool_new(&c, 65, &p, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.hint, "EMBED_CONCURRENCY"));
	c.dim = 0;
	cr_assert_eq(ef_embed_pool_new(&c, 2, &p, &err), EF_ERR_USAGE, "a pool needs EMBED_DIM");
	cr_assert(strstr(err.hint, "EMBED_DIM"));
}

/* --- key file -------------------------------------------------------------- */

static char *key_file(const char *content, mode_t mode)
{
	char *path = strdup("/tmp/embfill-key-XXXXXX");
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	chmod(path, mode);
	return path;
}

static ef_status read_key(const char *content, mode_t mode, char **key, struct ef_error *err)
{
	char *path = key_file(content, mode);
	ef_status st;

	ef_error_clear(err);
	st = ef_embed_read_key_file(path, key, err);
	unlink(path);
	free(path);
	return st;
}

Test(embed_config, key_file_is_read_and_trailing_blanks_stripped)
{
	struct ef_error err;
	char *key;

	cr_assert_eq(read_key("sk-test-PLANTED-abc\n", 0600, &key, &err), EF_OK, "%s", err.msg);
	cr_assert_str_eq(key, "sk-test-PLANTED-abc");
	free(key);
	cr_assert_eq(read_key("sk-xyz \r\n\n", 0400, &key, &err), EF_OK, "%s", err.msg);
	cr_assert_str_eq(key, "sk-xyz");
	free(key);
}

Test(embed_config, key_file_readable_by_others_is_refused_with_chmod_hint)
{
	struct ef_error err;
	char *key;

	cr_assert_eq(read_key("sk-test-PLANTED-abc\n", 0644, &key, &err), EF_ERR_USAGE);
	cr_assert_null(key);
	cr_assert(strstr(err.msg, "readable by other users"), "%s", err.msg);
	cr_assert(strstr(err.hint, "chmod 600"), "%s", err.hint);
	cr_assert_null(strstr(err.msg, "PLANTED"));
	cr_assert_eq(read_key("sk-abc\n", 0640, &key, &err), EF_ERR_USAGE);
}

Test(embed_config, empty_or_multi_token_key_file_is_refused)
{
	struct ef_error err;
	char *key;

	cr_assert_eq(read_key("", 0600, &key, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "is empty"), "%s", err.msg);
	cr_assert_eq(read_key(" \n\n", 0600, &key, &err), EF_ERR_USAGE);
	cr_assert_eq(read_key("sk-test-PLANTED-a\nsecond line\n", 0600, &key, &err),
		     EF_ERR_USAGE);
	cr_assert_null(strstr(err.msg, "PLANTED"), "the key is never echoed: %s", err.msg);
	cr_assert_eq(read_key("OPENAI_API_KEY=sk abc\n", 0600, &key, &err), EF_ERR_USAGE);
}

Test(embed_config, missing_key_file_and_directory_are_refused)
{
	struct ef_error err;
	char *key;

	ef_error_clear(&err);
	cr_assert_eq(ef_embed_read_key_file("/nonexistent/key", &key, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "\"/nonexistent/key\""), "%s", err.msg);
	cr_assert_eq(ef_embed_read_key_file("/tmp", &key, &err), EF_ERR_USAGE);
}

Test(embed_config, oversized_key_file_is_refused)
{
	struct ef_error err;
	char *big = malloc(10000);
	char *key;

	memset(big, 'k', 9999);
	big[9999] = '\0';
	cr_assert_eq(read_key(big, 0600, &key, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "larger than"), "%s", err.msg);
	free(big);
}
