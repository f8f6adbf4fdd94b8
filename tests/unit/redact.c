/*
 * Unit tests of redaction: registered secrets, secret shapes (URL userinfo,
 * token-like query parameters, conninfo passwords, bearer tokens), and the
 * display forms of URLs and connection strings.  Registered secrets are
 * process-global, so every test starts and ends with an empty registry.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "embfill/redact.h"
#include "embfill/settings.h"
#include "embfill/strbuf.h"
#include "proc.h"

static void setup(void)
{
	ef_redact_reset();
	unsetenv("PGPASSWORD");
}

static void teardown(void)
{
	ef_redact_reset();
}

TestSuite(redact, .init = setup, .fini = teardown);

/* Redacts text and compares it with want.  The result is copied and freed
 * before asserting, so that a failing test reports no leak of its own. */
static void assert_redacts(const char *text, const char *want)
{
	char *got = ef_redact(text), copy[512];

	cr_assert_not_null(got);
	snprintf(copy, sizeof(copy), "%s", got);
	free(got);
	cr_assert_str_eq(copy, want, "ef_redact(\"%s\")", text);
}

/* Takes got (allocated) and asserts that secret is not in it. */
static void assert_hidden(char *got, const char *secret)
{
	char copy[512];

	cr_assert_not_null(got);
	snprintf(copy, sizeof(copy), "%s", got);
	free(got);
	cr_assert_null(strstr(copy, secret), "\"%s\" leaked: %s", secret, copy);
}

/* --- registered secrets -------------------------------------------------- */

Test(redact, registered_secret_is_masked_wherever_it_appears)
{
	ef_redact_add_secret("sk-live-0123456789abcdef");
	assert_redacts("key sk-live-0123456789abcdef then sk-live-0123456789abcdef again",
		       "key *** then *** again");
	assert_redacts("{\"api_key\":\"sk-live-0123456789abcdef\",\"model\":\"m\"}",
		       "{\"api_key\":\"***\",\"model\":\"m\"}");
	assert_redacts("GET https://h/v1/sk-live-0123456789abcdef/embed",
		       "GET https://h/v1/***/embed");
	assert_redacts("xxsk-live-0123456789abcdefyy", "xx***yy");
	assert_redacts("sk-live-0123456789abcde (one short)", "sk-live-0123456789abcde (one short)");
}

Test(redact, several_secrets_are_all_masked)
{
	ef_redact_add_secret("first-secret");
	ef_redact_add_secret("second-secret");
	assert_redacts("a first-secret b second-secret c", "a *** b *** c");
}

/* When one secret begins with another, the longer one must go whole: masking
 * the shorter prefix would print the rest of the longer secret. */
Test(redact, a_secret_that_extends_another_is_masked_whole)
{
	ef_redact_add_secret("hunter22");
	ef_redact_add_secret("hunter22-prod-api-key");
	assert_hidden(ef_redact("key=hunter22-prod-api-key"), "prod-api-key");
	assert_redacts("pw hunter22 and key hunter22-prod-api-key", "pw *** and key ***");
}

Test(redact, values_shorter_than_four_bytes_are_ignored)
{
	ef_redact_add_secret("abc");
	ef_redact_add_secret("");
	ef_redact_add_secret(NULL);
	assert_redacts("abc abcabc", "abc abcabc");
	ef_redact_add_secret("wxyz");
	assert_redacts("wxyz wxy", "*** wxy");
}

Test(redact, reset_forgets_the_secrets)
{
	ef_redact_add_secret("forget-me-please");
	assert_redacts("forget-me-please", "***");
	ef_redact_reset();
	assert_redacts("forget-me-please", "forget-me-please");
}

Test(redact, null_in_null_out_and_plain_text_unchanged)
{
	cr_assert_null(ef_redact(NULL));
	assert_redacts("", "");
	assert_redacts("connected to db.internal:5432 as app; 120 chunks, page=2",
		       "connected to db.internal:5432 as app; 120 chunks, page=2");
}

Test(redact, redact_buf_masks_and_truncates)
{
	char out[8];

	ef_redact_add_secret("0123456789");
	cr_assert_eq(ef_redact_buf("a 0123456789 b", out, sizeof(out)), out);
	cr_assert_str_eq(out, "a *** b");
	ef_redact_buf("0123 0123456789 trailing words", out, sizeof(out));
	cr_assert_str_eq(out, "0123 **");
	ef_redact_buf(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "");
}

/* --- shapes -------------------------------------------------------------- */

Test(redact, url_userinfo_is_removed)
{
	assert_redacts("connecting to https://user:pa55word@embed.example.com:8443/v1 failed",
		       "connecting to https://embed.example.com:8443/v1 failed");
	assert_redacts("postgresql://app:s3cret@db.internal:5432/app?sslmode=require",
		       "postgresql://db.internal:5432/app?sslmode=require");
	assert_redacts("http://tokenonly@h/x", "http://h/x");
	assert_redacts("mail user@example.com stays", "mail user@example.com stays");
}

Test(redact, token_like_query_parameters_are_masked_and_others_kept)
{
	assert_redacts("https://h/v1?api_key=AAAA1111&model=nomic&page=2",
		       "https://h/v1?api_key=***&model=nomic&page=2");
	assert_redacts("https://h/e?model=m&token=BBBB2222", "https://h/e?model=m&token=***");
	assert_redacts("https://b.s3.amazonaws.com/o?X-Amz-Date=1&X-Amz-Signature=CCCC3333&page=1",
		       "https://b.s3.amazonaws.com/o?X-Amz-Date=1&X-Amz-Signature=***&page=1");
	assert_redacts("https://blob/x?sv=1&sig=DDDD4444#top", "https://blob/x?sv=1&sig=***#top");
	assert_redacts("\"https://h/cb?access_token=EEEE5555\"", "\"https://h/cb?access_token=***\"");
}

Test(redact, conninfo_password_is_masked_bare_and_quoted)
{
	assert_redacts("host=db port=5432 password=hunter2hunter dbname=app",
		       "host=db port=5432 password=*** dbname=app");
	assert_redacts("host=db password='correct horse battery' user=app",
		       "host=db password=*** user=app");
	assert_redacts("password='it\\'s a secret' x", "password=*** x");
	assert_redacts("sslpassword=keypass1 sslmode=verify-full",
		       "sslpassword=*** sslmode=verify-full");
	assert_redacts("PASSWORD=Upper1234", "PASSWORD=***");
	assert_redacts("password = spaced99 host=h", "password =*** host=h");
}

/* libpq allows any blanks around '=' in key=value strings. */
Test(redact, conninfo_password_with_other_blanks_around_the_equals_is_masked)
{
	assert_hidden(ef_redact("host=h password  =  blanks99 dbname=app"), "blanks99");
	assert_hidden(ef_redact("host=h password\t=\ttabbed99 dbname=app"), "tabbed99");
}

Test(redact, bearer_and_basic_credentials_are_masked)
{
	assert_redacts("Authorization: Bearer xyz", "Authorization: Bearer ***");
	assert_redacts("{\"Authorization\":\"Bearer sk-abc.def-123\"}",
		       "{\"Authorization\":\"Bearer ***\"}");
	assert_redacts("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***");
	assert_redacts("Bearer ", "Bearer ");
}

/* --- URLs and connection strings for display ------------------------------ */

Test(redact, redact_url_drops_userinfo_fragment_and_secret_params)
{
	char *u = ef_redact_url(
		"https://user:pw@api.example.com:8443/v1/embeddings?api_key=SEKRET&model=m&sig=abc#frag");

	cr_assert_not_null(u);
	cr_assert_str_eq(u, "https://api.example.com:8443/v1/embeddings?model=m");
	free(u);
	u = ef_redact_url("http://127.0.0.1:11434/?token=t0k3n#x");
	cr_assert_str_eq(u, "http://127.0.0.1:11434/");
	free(u);
	u = ef_redact_url("http://127.0.0.1:11434");
	cr_assert_str_eq(u, "http://127.0.0.1:11434/");
	free(u);
	cr_assert_null(ef_redact_url(NULL));
}

Test(redact, redact_url_of_text_that_is_no_url_still_redacts)
{
	char *u;

	ef_redact_add_secret("registered-secret");
	u = ef_redact_url("not a url registered-secret");
	cr_assert_str_eq(u, "not a url ***");
	free(u);
}

Test(redact, redact_dsn_keeps_host_port_user_dbname_of_a_uri)
{
	char *d = ef_redact_dsn("postgresql://u:pw1234@h:5432/db?sslmode=require");

	cr_assert_not_null(d);
	cr_assert(strstr(d, "host=h"), "%s", d);
	cr_assert(strstr(d, "port=5432"), "%s", d);
	cr_assert(strstr(d, "user=u"), "%s", d);
	cr_assert(strstr(d, "dbname=db"), "%s", d);
	cr_assert(strstr(d, "sslmode=require"), "%s", d);
	cr_assert_null(strstr(d, "pw1234"), "%s", d);
	cr_assert_null(strstr(d, "password"), "%s", d);
	free(d);
}

Test(redact, redact_dsn_keeps_host_port_user_dbname_of_key_value_pairs)
{
	char *d = ef_redact_dsn("host=db.internal port=5433 user=app dbname=prod "
				"password='hunter2 hunter2' sslpassword=keypass1");

	cr_assert(strstr(d, "host=db.internal"), "%s", d);
	cr_assert(strstr(d, "port=5433"), "%s", d);
	cr_assert(strstr(d, "user=app"), "%s", d);
	cr_assert(strstr(d, "dbname=prod"), "%s", d);
	cr_assert_null(strstr(d, "hunter2"), "%s", d);
	cr_assert_null(strstr(d, "keypass1"), "%s", d);
	free(d);
}

Test(redact, redact_dsn_of_empty_or_unparseable_text)
{
	char *d = ef_redact_dsn("");

	cr_assert_str_eq(d, "(libpq defaults)");
	free(d);
	d = ef_redact_dsn(NULL);
	cr_assert_str_eq(d, "(libpq defaults)");
	free(d);
	assert_hidden(ef_redact_dsn("host='unterminated password=topsecret1"), "topsecret1");
	assert_hidden(ef_redact_dsn("postgresql://app:topsecret2@[::1/db"), "topsecret2");
}

Test(redact, dsn_password_is_masked_in_unrelated_error_text)
{
	ef_redact_add_dsn_secrets("postgresql://app:Pg-Pass-9876@db/app");
	assert_hidden(ef_redact("FATAL: role \"app\" said Pg-Pass-9876 is wrong"), "Pg-Pass-9876");
	ef_redact_reset();
	ef_redact_add_dsn_secrets("host=db user=app password='kv pass 42'");
	assert_redacts("echo: kv pass 42.", "echo: ***.");
}

Test(redact, pgpassword_is_registered_with_the_dsn_secrets)
{
	setenv("PGPASSWORD", "from-the-env-77", 1);
	ef_redact_add_dsn_secrets("");
	assert_redacts("auth from-the-env-77 failed", "auth *** failed");
}

Test(redact, settings_display_never_shows_secrets)
{
	static char *env[] = {
		"EMBED_API_KEY=sk-live-0123456789abcdef",
		"DATABASE_URL=postgresql://app:DbPw-5555@db:5432/app",
		"EMBED_URL=https://u:UrlPw-6666@embed.example.com/v1?api_key=QueryKey-7777&model=m",
		NULL,
	};
	struct ef_error err;
	ef_settings *s = ef_settings_new();
	char *shown;

	cr_assert_not_null(s);
	ef_error_clear(&err);
	cr_assert_eq(ef_settings_load_env(s, env, &err), EF_OK);
	shown = ef_settings_display(s, EF_K_EMBED_API_KEY);
	cr_assert_str_eq(shown, "*** (set)");
	free(shown);
	shown = ef_settings_display(s, EF_K_DATABASE_URL);
	cr_assert(strstr(shown, "host=db"), "%s", shown);
	assert_hidden(shown, "DbPw-5555");
	shown = ef_settings_display(s, EF_K_EMBED_URL);
	cr_assert(strstr(shown, "embed.example.com"), "%s", shown);
	cr_assert_null(strstr(shown, "QueryKey-7777"), "%s", shown);
	assert_hidden(shown, "UrlPw-6666");
	ef_settings_register_secrets(s);
	assert_redacts("key sk-live-0123456789abcdef pw DbPw-5555", "key *** pw ***");
	ef_settings_free(s);
	s = ef_settings_new();
	shown = ef_settings_display(s, EF_K_EMBED_API_KEY);
	cr_assert_str_eq(shown, "(not set)");
	free(shown);
	ef_settings_free(s);
}

/* --- connection strings: what libpq parses, and nothing it cannot --------- */

/* Takes got (allocated) and asserts that it holds no control character and
 * none of the secrets (NULL-terminated). */
static void assert_clean_of(char *got, const char *const *secrets)
{
	char copy[1024];

	cr_assert_not_null(got);
	snprintf(copy, sizeof(copy), "%s", got);
	free(got);
	for (const char *p = copy; *p; p++)
		cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "control byte 0x%02x in: %s",
			  (unsigned char)*p, copy);
	cr_assert_null(strstr(copy, "\\n"), "libpq's newline shown as \\n: %s", copy);
	for (; *secrets; secrets++)
		cr_assert_null(strstr(copy, *secrets), "\"%s\" leaked: %s", *secrets, copy);
}

/* libpq refuses an unknown key, so before, the string was only passed
 * through the shape rules, which know "password" and not its misspellings. */
Test(redact, redact_dsn_with_a_misspelt_key_hides_the_whole_string)
{
	char *d = ef_redact_dsn("host=/tmp/x dbname=lab passwrod=S3CRET foo=S3CRET");

	cr_assert_not_null(d);
	cr_expect_str_eq(d, "(connection string hidden: libpq cannot parse it: invalid connection "
			    "option \"passwrod\"; did you mean \"password\"?)");
	free(d);
	assert_clean_of(ef_redact_dsn("host=/tmp/x foo=S3CRET"),
			(const char *[]){ "S3CRET", "/tmp/x", NULL });
	assert_clean_of(ef_redact_dsn("postgresql://u@h/db?passwrod=S3CRET"),
			(const char *[]){ "S3CRET", NULL });
}

/* libpq's reason quotes the token it choked on, which may be the second
 * half of an unquoted password or the whole URI. */
Test(redact, redact_dsn_never_shows_what_libpq_quotes_from_a_value)
{
	static const char *const bad[] = {
		"host=h password=correct horse",
		"host=h password=correct horse=battery",
		"password=hostx hostx=1",
		"host=h password='unterminated horse",
		"postgresql://app:Sup3r%zzhorse@db/x",
		"postgresql://app:horse@[::1/db",
		"postgresql://app@db/x?password=horse&x",
		"postgresql://app@db/x?sslpassword==horse",
		"\"horse\" x=1",
		"'h,&&&post\"&&9&&resql://app:horse@db:5&g'h,&&&post\"&&&gr",
		"host=h password='untermost=h password='horse p=\" after \"horse",
		"postgresql://app:horse@[::1]x/db",
	};
	static const char lead[] = "(connection string hidden: libpq cannot parse it: ";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *d = ef_redact_dsn(bad[i]);
		char *why = ef_redact_dsn_error(bad[i]);

		cr_assert_not_null(why);
		cr_expect_neq(*why, '\0', "no reason for %s", bad[i]);
		cr_expect(strncmp(d, lead, strlen(lead)) == 0, "%s -> %s", bad[i], d);
		assert_clean_of(d, (const char *[]){ "horse", "hostx", "Sup3r", NULL });
		assert_clean_of(why, (const char *[]){ "horse", "hostx", "Sup3r", NULL });
	}
}

Test(redact, redact_dsn_error_is_empty_for_a_string_libpq_parses)
{
	char *why = ef_redact_dsn_error("host=h dbname=x");

	cr_assert_str_eq(why, "");
	free(why);
}

/* libpq's own punctuation and numbers stay; what it quotes does not. */
Test(redact, redact_dsn_error_keeps_the_shape_of_libpqs_reason)
{
	static const char head[] = "unexpected character \"...\" at position ";
	static const char tail[] = " in URI (expected \":\" or \"/\"): \"...\"";
	char *why = ef_redact_dsn_error("postgresql://app:horse@[::1]x/db");
	size_t n = strlen(why), h = strlen(head), t = strlen(tail);

	cr_expect_eq(strncmp(why, head, h), 0, "%s", why);
	cr_expect(n > h + t && strcmp(why + n - t, tail) == 0, "%s", why);
	cr_expect(n > h + t && strspn(why + h, "0123456789") == n - h - t, "%s", why);
	free(why);
	why = ef_redact_dsn_error("host=h password='horse");
	cr_expect_str_eq(why, "unterminated quoted string in connection info string");
	free(why);
}

Test(redact, redact_dsn_of_a_uri_keeps_the_user_and_loses_every_password)
{
	char *d = ef_redact_dsn("postgresql://app:pw-one@db.internal:5433/prod"
				"?password=pw-two&sslpassword=pw-three&sslmode=require");

	cr_assert_not_null(d);
	cr_expect_str_eq(d, "user=app dbname=prod host=db.internal port=5433 sslmode=require");
	free(d);
}

Test(redact, redact_dsn_quotes_values_and_escapes_control_characters)
{
	char *d = ef_redact_dsn("host=h application_name='nightly run' options='-c x=\\'y\\''");

	cr_expect_str_eq(d, "host=h options='-c x=\\'y\\'' application_name='nightly run'");
	free(d);
	assert_clean_of(ef_redact_dsn("host=h application_name='a\x1b[2Jb\x07'"),
			(const char *[]){ "\x1b", "\x07", NULL });
}

/* --- connection strings in a reproducing command -------------------------- */

/* The command line a run records, with dsn as its --dsn word, passed
 * through the redaction every recorded text gets; caller frees. */
static char *recorded_command(const char *dsn)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	char *form = ef_redact_dsn_command(dsn), *line;

	cr_assert_not_null(form);
	ef_strbuf_add(&b, "embfill --dsn ");
	ef_strbuf_add_shell_word(&b, form);
	ef_strbuf_add(&b, " run -C acme --confirm acme");
	free(form);
	line = ef_redact(ef_strbuf_str(&b));
	ef_strbuf_free(&b);
	return line;
}

static void assert_parses_as_shell(const char *cmd)
{
	struct proc_result r;

	cr_assert_eq(proc_run((const char *[]){ "bash", "-n", "-c", cmd, NULL }, NULL, NULL, &r),
		     0, "bash -n refused: %s\n%s", cmd, r.err);
	proc_result_free(&r);
}

/* The options a string gives libpq, password keys left out, as "k=v;". */
static char *options_of(const char *dsn)
{
	PQconninfoOption *o = PQconninfoParse(dsn, NULL);
	struct ef_strbuf b = EF_STRBUF_INIT;

	cr_assert_not_null(o, "libpq cannot parse %s", dsn);
	for (PQconninfoOption *p = o; p->keyword; p++)
		if (p->val && strcmp(p->keyword, "password") && strcmp(p->keyword, "sslpassword"))
			ef_strbuf_addf(&b, "%s=%s;", p->keyword, p->val);
	PQconninfoFree(o);
	return ef_strbuf_take(&b);
}

Test(redact, dsn_command_parses_as_shell_and_holds_no_password)
{
	static const char *const dsns[] = {
		"host=/tmp/sock dbname=lab user=ops password=pw-PLANTED-1",
		"host=/tmp/sock dbname=lab password='pw PLANTED \\'2\\'' sslpassword=pw-PLANTED-3",
		"postgresql://ops:pw-PLANTED-4@db.internal:5433/lab?sslmode=require"
		"&password=pw-PLANTED-5",
		"postgresql://ops@/lab?host=/tmp/sock&application_name=it%27s%20nightly",
	};

	for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++) {
		char *cmd = recorded_command(dsns[i]);

		cr_assert_null(strstr(cmd, "PLANTED"), "password in %s", cmd);
		cr_assert(strstr(cmd, "user=ops") || i == 1, "user dropped: %s", cmd);
		assert_parses_as_shell(cmd);
		free(cmd);
	}
}

/* What the command carries connects where the string did: the same
 * options, the password left to PGPASSWORD or the password file. */
Test(redact, dsn_command_gives_libpq_the_same_options_but_the_password)
{
	static const char *const dsns[] = {
		"host=/tmp/sock port=5433 dbname=lab user=ops password=pw options='-c a=\\'b c\\''",
		"postgresql://ops:pw@db.internal,db2:5433,5434/lab?sslmode=verify-full"
		"&application_name=back%20fill",
		"",
	};

	for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++) {
		char *form = ef_redact_dsn_command(dsns[i]);
		char *want = options_of(dsns[i]), *got = options_of(form);
		char *again = ef_redact(form);

		cr_expect_str_eq(got, want, "%s -> %s", dsns[i], form);
		cr_expect_str_eq(again, form, "redaction changes the command's --dsn word");
		free(again);
		free(got);
		free(want);
		free(form);
	}
}

Test(redact, dsn_command_of_a_string_that_cannot_be_shown_is_refused_on_rerun)
{
	char *form = ef_redact_dsn_command("host=h passwrod=S3CRET");

	cr_assert_str_eq(form, "(connection string hidden)");
	cr_assert_null(PQconninfoParse(form, NULL), "libpq accepts the placeholder");
	free(form);
	form = ef_redact_dsn_command("host=h application_name='https://u:S3CRET@x/'");
	cr_assert_str_eq(form, "(connection string hidden)");
	free(form);
}

Test(redact, dsn_has_password_finds_every_spelling)
{
	cr_expect(ef_redact_dsn_has_password("host=h password=x"));
	cr_expect(ef_redact_dsn_has_password("host=h PASSWORD=x") == false,
		  "libpq keys are lowercase: this string does not parse");
	cr_expect(ef_redact_dsn_has_password("host=h sslpassword='a b'"));
	cr_expect(ef_redact_dsn_has_password("postgresql://u:pw@h/db"));
	cr_expect(ef_redact_dsn_has_password("postgresql://u@h/db?password=pw"));
	cr_expect(ef_redact_dsn_has_password("postgres://h/db?sslpassword=pw"));
	cr_expect_not(ef_redact_dsn_has_password("postgresql://u@h/db"));
	cr_expect_not(ef_redact_dsn_has_password("postgresql://u:@h/db"));
	cr_expect_not(ef_redact_dsn_has_password("host=h password="));
	cr_expect_not(ef_redact_dsn_has_password("host=h passfile=/home/u/.pgpass"));
	cr_expect_not(ef_redact_dsn_has_password(""));
	cr_expect_not(ef_redact_dsn_has_password(NULL));
}
