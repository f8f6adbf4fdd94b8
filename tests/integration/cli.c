/*
 * cli.c - the command line as an operator meets it: schema init and check,
 * bad settings, unknown or hostile collection names, unreachable databases,
 * and no secret in any output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)

static int run_in(struct fx *f, struct proc_result *r, const char *const *args)
{
	return fx_run(f, r, args);
}

static void init_twice_is_idempotent(enum backend b)
{
	struct fx f;
	struct proc_result r;
	const char *init[] = { "schema", "init", "--dim", "4", NULL };

	fx_init(&f, b, NULL);
	cr_assert_eq(run_in(&f, &r, init), 0, "%s", r.err);
	HAS(r.out, "created");
	proc_result_free(&r);
	fx_sql(&f, "INSERT INTO @S.documents (id, collection, title, body) VALUES (1, 'a', 't', 'b')");
	cr_assert_eq(run_in(&f, &r, init), 0, "%s", r.err);
	cr_expect_null(strstr(r.out, "created \""), "second init created something:\n%s", r.out);
	HAS(r.out, "exists; left as it is");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&f, "SELECT count(*) FROM @S.documents"), 1, "init touched data");
	fx_free(&f);
}

Test(pg_cli, schema_init_twice_changes_nothing) { init_twice_is_idempotent(BACKEND_PG); }
Test(pglite_cli, schema_init_twice_changes_nothing) { init_twice_is_idempotent(BACKEND_PGLITE); }

static void init_refuses_other_dim(enum backend b)
{
	struct fx f;
	struct proc_result r;

	fx_init(&f, b, NULL);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "init", "--dim", "4", NULL }), 0);
	proc_result_free(&r);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "init", "--dim", "8", NULL }), 2);
	HAS(r.err, "already holds dimension 4");
	HAS(r.err, "hint:");
	proc_result_free(&r);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "check", NULL }), 0, "%s%s", r.out,
		     r.err);
	HAS(r.out, "dimension 4");
	proc_result_free(&r);
	fx_free(&f);
}

Test(pg_cli, schema_init_refuses_another_dimension) { init_refuses_other_dim(BACKEND_PG); }
Test(pglite_cli, schema_init_refuses_another_dimension)
{
	init_refuses_other_dim(BACKEND_PGLITE);
}

static void check_reports_type_and_dim(enum backend b)
{
	struct fx f;
	struct proc_result r;

	fx_init(&f, b, NULL);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "check", NULL }), 1);
	HAS(r.out, "[FAIL] chunk table");
	HAS(r.out, "hint: run `embfill schema init`");
	proc_result_free(&r);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "init", "--dim", "4", NULL }), 0);
	proc_result_free(&r);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "check", NULL }), 0, "%s", r.out);
	/* schema init chooses vector(N) wherever pgvector can be created */
	if (!test_pgvector(b))
		HAS(r.out, "is real[], dimension 4 (from the CHECK constraint)");
	else
		HAS(r.out, "is vector, dimension 4 (from the type modifier)");
	HAS(r.out, "cross-tenant rows are impossible");
	HAS(r.out, "has an index on (collection, id)");
	proc_result_free(&r);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "check", "--set", "EMBED_DIM=768",
						       NULL }), 1);
	HAS(r.out, "[FAIL] dimension: the vector column holds dimension 4, EMBED_DIM is 768");
	proc_result_free(&r);
	fx_free(&f);
}

Test(pg_cli, schema_check_finds_type_dimension_and_isolation)
{
	check_reports_type_and_dim(BACKEND_PG);
}
Test(pglite_cli, schema_check_finds_type_dimension_and_isolation)
{
	check_reports_type_and_dim(BACKEND_PGLITE);
}

/* Collection names are values, never SQL: quotes, semicolons, backslashes
 * and unicode come back exactly; a 10 kB paste is refused clearly. */
Test(pg_cli, hostile_collection_names_are_bound_values)
{
	struct fx f;
	struct proc_result r;
	const char *evil = "O'Brien\"; DROP TABLE x; --\\";
	char *big = malloc(10241);
	cJSON *arr;

	fx_init(&f, BACKEND_PG, NULL);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "init", "--dim", "4", NULL }), 0);
	proc_result_free(&r);
	fx_sql(&f, "INSERT INTO @S.documents (id, collection, title, body) VALUES"
		   " (1, E'O''Brien\"; DROP TABLE x; --\\\\', 't', 'b'), (2, 'naïve 日本', 't', 'b');"
		   "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
		   " VALUES (1, 1, E'O''Brien\"; DROP TABLE x; --\\\\', 0, 'x'),"
		   " (2, 1, E'O''Brien\"; DROP TABLE x; --\\\\', 1, 'y'),"
		   " (3, 2, 'naïve 日本', 0, 'z')");
	arr = fx_status(&f, (const char *[]){ "-C", evil, NULL });
	fx_expect(arr, evil, (struct counts){ .chunks = 2, .missing = 2 });
	cJSON_Delete(arr);
	arr = fx_status(&f, (const char *[]){ "-C", "naïve 日本", NULL });
	fx_expect(arr, "naïve 日本", (struct counts){ .chunks = 1, .missing = 1 });
	cJSON_Delete(arr);
	memset(big, 'a', 10240);
	big[10240] = '\0';
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "-C", big, NULL }), 2);
	HAS(r.err, "the collection name is 10240 bytes long");
	proc_result_free(&r);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "-C", "tab\there", NULL }), 2);
	HAS(r.err, "control character");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&f, "SELECT count(*) FROM @S.document_chunks"), 3);
	free(big);
	fx_free(&f);
}

Test(pg_cli, unknown_collection_is_refused_with_the_near_name)
{
	struct fx f;
	struct proc_result r;

	fx_init(&f, BACKEND_PG, NULL);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "init", "--dim", "4", NULL }), 0);
	proc_result_free(&r);
	fx_sql(&f, "INSERT INTO @S.documents (id, collection, title, body) VALUES (1, 'tenant_acme',"
		   " 't', 'b'); INSERT INTO @S.document_chunks (id, document_id, collection,"
		   " chunk_index, content) VALUES (1, 1, 'tenant_acme', 0, 'x')");
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "-C", "tenant_acne", NULL }), 2);
	HAS(r.err, "collection \"tenant_acne\" has no chunks");
	HAS(r.err, "did you mean \"tenant_acme\"?");
	proc_result_free(&r);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "-C", "zzz", NULL }), 2);
	cr_expect_null(strstr(r.err, "did you mean"), "%s", r.err);
	proc_result_free(&r);
	fx_free(&f);
}

Test(pg_cli, bad_settings_exit_2_naming_key_origin_and_fix)
{
	struct fx f;
	struct proc_result r;
	char *cfg;

	fx_init(&f, BACKEND_PG, NULL);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "--set", "BATCH_SIZE=abc", NULL }), 2);
	HAS(r.err, "BATCH_SIZE=\"abc\" (from flag --set) is not a whole number");
	HAS(r.err, "hint: BATCH_SIZE takes a whole number from 1 to 10000");
	proc_result_free(&r);

	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "--set", "EMBED_CONCURRENCY=0",
						       NULL }), 2);
	HAS(r.err, "EMBED_CONCURRENCY=\"0\" (from flag --set) is out of range");
	proc_result_free(&r);

	cfg = write_file(f.dir, "bad.env", "EMBED_MODEL=m\n\nEMBED_DIM=0\n");
	cr_assert_eq(run_embfill((const char *[]){ "status", "--config", cfg, NULL },
				 (const char *[]){ "EMBED_DIM", NULL }, f.dir, &r), 2);
	HAS(r.err, "EMBED_DIM=\"0\" (from ");
	HAS(r.err, "bad.env:3) is out of range");
	proc_result_free(&r);
	free(cfg);

	cfg = write_file(f.dir, "bad2.env", "# ok\nBATCH_SIZE 12\n");
	cr_assert_eq(run_embfill((const char *[]){ "status", "--config", cfg, NULL }, NULL,
				 f.dir, &r), 2);
	HAS(r.err, "bad2.env:2: expected KEY=VALUE");
	proc_result_free(&r);
	free(cfg);

	cfg = write_file(f.dir, "bad3.env", "EMBED_MODLE=x\n");
	cr_assert_eq(run_embfill((const char *[]){ "status", "--config", cfg, NULL }, NULL,
				 f.dir, &r), 2);
	HAS(r.err, "unknown setting \"EMBED_MODLE\"");
	HAS(r.err, "did you mean EMBED_MODEL?");
	proc_result_free(&r);
	free(cfg);

	cr_assert_eq(run_embfill((const char *[]){ "status", NULL },
				 (const char *[]){ "EMBED_PROVIDER=bogus", NULL }, f.dir, &r), 2);
	HAS(r.err, "EMBED_PROVIDER=\"bogus\" (from environment)");
	HAS(r.err, "ollama|openai|tei");
	proc_result_free(&r);

	cr_assert_eq(run_embfill((const char *[]){ "status", "--config", "/nonexistent/x.env",
						   NULL }, NULL, f.dir, &r), 2);
	HAS(r.err, "cannot read settings file \"/nonexistent/x.env\"");
	proc_result_free(&r);

	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "--dim", "3", NULL }), 2);
	HAS(r.err, "option --dim does not apply to `embfill status`");
	proc_result_free(&r);
	fx_free(&f);
}

/* A password in the connection string, an API key in the environment: an
 * unreachable database prints neither, and exits 3. */
Test(pg_cli, unreachable_database_exits_3_without_secrets)
{
	struct proc_result r;
	char *dir = test_tmpdir();
	const char *env[] = { "EMBED_API_KEY=sk-test-PLANTED-4242", "PGPASSWORD=pw-PLANTED-pg",
			      "DATABASE_URL=postgresql://ops:s3cr3t-PLANTED@127.0.0.1:1/db", NULL };

	cr_assert_eq(run_embfill((const char *[]){ "status", NULL }, env, dir, &r), 3);
	HAS(r.err, "cannot connect to the database");
	HAS(r.err, "user=ops");
	cr_expect_null(strstr(r.err, "s3cr3t-PLANTED"), "%s", r.err);
	cr_expect_null(strstr(r.out, "s3cr3t-PLANTED"), "%s", r.out);
	cr_expect_null(strstr(r.err, "sk-test-PLANTED"), "%s", r.err);
	proc_result_free(&r);
	env[2] = "DATABASE_URL=host=127.0.0.1 port=1 password=s3cr3t-PLANTED";
	cr_assert_eq(run_embfill((const char *[]){ "schema", "check", NULL }, env, dir, &r), 3);
	cr_expect_null(strstr(r.err, "s3cr3t-PLANTED"), "%s", r.err);
	proc_result_free(&r);
	free(dir);
}

/* A misspelt key makes libpq refuse the string; its values (the password
 * under the misspelt key, and any other) stay hidden wherever it comes
 * from, and libpq's newline is not printed as "\n". */
Test(pg_cli, a_connection_string_with_a_misspelt_key_is_refused_without_its_values)
{
	static const char dsn[] = "host=/tmp/x dbname=lab passwrod=S3CRET-PLANTED foo=S3CRET-PLANTED";
	struct proc_result r;
	char *dir = test_tmpdir(), *cfg, *text = NULL;
	const char *env[] = { "DATABASE_URL=host=/tmp/x dbname=lab passwrod=S3CRET-PLANTED "
			      "foo=S3CRET-PLANTED", "PGPASSWORD", NULL };
	static const char *const cmds[][3] = { { "status", NULL }, { "doctor", "--json", NULL } };

	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(run_embfill(cmds[i], env, dir, &r), 2, "%s", r.err);
		HAS(r.err, "DATABASE_URL (from environment) is not a connection string libpq");
		HAS(r.err, "invalid connection option \"passwrod\"; did you mean \"password\"?");
		cr_expect_null(strstr(r.err, "PLANTED"), "%s", r.err);
		cr_expect_null(strstr(r.out, "PLANTED"), "%s", r.out);
		cr_expect_null(strstr(r.err, "\\n"), "%s", r.err);
		proc_result_free(&r);
	}
	cr_assert(asprintf(&text, "DATABASE_URL=\"%s\"\n", dsn) > 0);
	cfg = write_file(dir, "embfill.env", text);
	cr_assert_eq(run_embfill((const char *[]){ "status", NULL },
				 (const char *[]){ "DATABASE_URL", NULL }, dir, &r), 2);
	HAS(r.err, "embfill.env:1) is not a connection string libpq");
	cr_expect_null(strstr(r.err, "PLANTED"), "%s", r.err);
	cr_expect_null(strstr(r.err, "/tmp/x"), "%s", r.err);
	proc_result_free(&r);
	free(cfg);
	free(text);
	free(dir);
}

/* A command line shows in ps to every user of the host for the whole run:
 * a password there is refused before anything connects or is written.
 * The database here is reachable and the string otherwise right, so
 * anything but the refusal would create the schema. */
Test(pg_cli, a_password_on_the_command_line_is_refused_before_anything_connects)
{
	struct fx f;
	struct proc_result r;
	char *kv = NULL, *set = NULL, *uri = NULL, *q = NULL, *host = NULL;
	PQconninfoOption *o = PQconninfoParse(test_dsn(BACKEND_PG), NULL), *p;
	const char *port = "5432";

	fx_init(&f, BACKEND_PG, NULL);
	for (p = o; p->keyword; p++) {
		if (strcmp(p->keyword, "host") == 0)
			host = p->val;
		if (strcmp(p->keyword, "port") == 0 && p->val)
			port = p->val;
	}
	cr_assert(asprintf(&kv, "%s password=pw-PLANTED-kv", test_dsn(BACKEND_PG)) > 0);
	cr_assert(asprintf(&set, "DATABASE_URL=%s", kv) > 0);
	cr_assert(asprintf(&uri, "postgresql://postgres:pw-PLANTED-uri@/postgres?host=%s&port=%s",
			   host, port) > 0);
	{
		const char *const lines[][8] = {
			{ "schema", "init", "--dim", "4", "--dsn", kv, NULL },
			{ "schema", "init", "--dim", "4", "--set", set, NULL },
			{ "schema", "init", "--dim", "4", "--dsn", uri, NULL },
			{ "run", "-C", "a", "--confirm", "a", "--dsn", uri, NULL },
		};

		for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
			cr_assert_eq(run_in(&f, &r, lines[i]), 2, "line %zu accepted:\n%s%s", i,
				     r.out, r.err);
			HAS(r.err, "the connection string holds a password");
			HAS(r.err, "embfill.env");
			HAS(r.err, "PGPASSFILE");
			HAS(r.err, "~/.pgpass");
			HAS(r.err, "PGPASSWORD");
			cr_expect_null(strstr(r.err, "PLANTED"), "%s", r.err);
			cr_expect_null(strstr(r.out, "PLANTED"), "%s", r.out);
			proc_result_free(&r);
		}
	}
	cr_assert(asprintf(&q, "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'", f.tool) > 0);
	cr_expect_eq(fx_ll(&f, q), 0, "embfill's schema was made");
	free(q);
	PQconninfoFree(o);
	free(kv);
	free(set);
	free(uri);
	fx_free(&f);
}

/* fopen() opens a directory and reading it fails, which read as an empty
 * settings file: the defaults were used without a word. */
Test(pg_cli, a_directory_or_unreadable_file_given_to_config_is_refused)
{
	struct proc_result r;
	char *dir = test_tmpdir();

	cr_assert_eq(run_embfill((const char *[]){ "status", "--config", dir, NULL },
				 (const char *[]){ "DATABASE_URL", NULL }, dir, &r), 2, "%s", r.err);
	HAS(r.err, "is a directory");
	HAS(r.err, dir);
	HAS(r.err, "settings file");
	proc_result_free(&r);
	cr_assert_eq(run_embfill((const char *[]){ "status", "--config", "/proc/self/mem", NULL },
				 (const char *[]){ "DATABASE_URL", NULL }, dir, &r), 2, "%s", r.err);
	HAS(r.err, "cannot read settings file \"/proc/self/mem\"");
	proc_result_free(&r);
	free(dir);
}

Test(pg_cli, help_and_version_and_usage_errors)
{
	struct proc_result r;

	cr_assert_eq(run_embfill((const char *[]){ "--version", NULL }, NULL, NULL, &r), 0);
	HAS(r.out, "embfill ");
	proc_result_free(&r);
	cr_assert_eq(run_embfill((const char *[]){ "status", "--help", NULL }, NULL, NULL, &r), 0);
	HAS(r.out, "-C, --collection COLL");
	proc_result_free(&r);
	cr_assert_eq(run_embfill((const char *[]){ "frobnicate", NULL }, NULL, NULL, &r), 2);
	HAS(r.err, "unknown command \"frobnicate\"");
	proc_result_free(&r);
	cr_assert_eq(run_embfill((const char *[]){ "schema", "drop", NULL }, NULL, NULL, &r), 2);
	HAS(r.err, "needs init, check or detect");
	proc_result_free(&r);
	/* what is missing is named as missing, with the fix on a hint line */
	cr_assert_eq(run_embfill((const char *[]){ "run", "-C", "acme", NULL }, NULL, NULL, &r), 2);
	HAS(r.err, "the confirmation is missing");
	HAS(r.err, "\nhint: add --confirm acme");
	cr_expect_null(strstr(r.err, "differs"), "%s", r.err);
	proc_result_free(&r);
	cr_assert_eq(run_embfill((const char *[]){ "plan", NULL }, NULL, NULL, &r), 2);
	HAS(r.err, "needs the collection: -C COLL");
	HAS(r.err, "\nhint: ");
	proc_result_free(&r);
}

/* --- text from the database on a terminal ---------------------------------- */

/* Fails unless text holds no ESC, BEL or C1 CSI byte. */
static void expect_no_terminal_controls(const char *text, const char *what)
{
	cr_expect_null(memchr(text, 0x1b, strlen(text)), "ESC in %s:\n%s", what, text);
	cr_expect_null(memchr(text, 0x07, strlen(text)), "BEL in %s:\n%s", what, text);
	cr_expect_null(memchr(text, 0x9b, strlen(text)), "CSI in %s:\n%s", what, text);
}

#define EVIL "evil\x1b[2J\x1b]0;pwned\x07"
#define CSI "csi\xc2\x9b" "6n"
#define NEAR "acme\x1b[2J"

/* A collection named to clear the screen and set the window title, one with
 * a C1 CSI, and a model name with escapes: every command that prints them
 * prints escapes a terminal shows instead of obeying. */
Test(pg_cli, hostile_text_from_the_database_reaches_no_terminal_raw)
{
	struct fx f;
	struct proc_result r;
	cJSON *arr;

	fx_init(&f, BACKEND_PG, NULL);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "schema", "init", "--dim", "4", NULL }), 0);
	proc_result_free(&r);
	fx_sql(&f, "INSERT INTO @S.documents (id, collection, title, body) VALUES"
		   " (1, E'evil\\x1b[2J\\x1b]0;pwned\\x07', 't', 'b'), (2, E'csi\\u009b6n', 't', 'b'),"
		   " (3, E'acme\\x1b[2J', 't', 'b'), (4, 'plain', 't', 'b');"
		   "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
		   " VALUES (1, 1, E'evil\\x1b[2J\\x1b]0;pwned\\x07', 0, 'x'),"
		   " (2, 2, E'csi\\u009b6n', 0, 'y'), (3, 3, E'acme\\x1b[2J', 0, 'z'),"
		   " (4, 4, 'plain', 0, 'w');"
		   "INSERT INTO @S.document_embeddings"
		   " (chunk_id, collection, model, dim, content_sha256, embedding)"
		   " SELECT 4, 'plain', E'm\\x1b]0;model\\x07\\u009b', 4,"
		   " sha256(convert_to('w', 'UTF8')), ARRAY[1, 0, 0, 0]::real[]");

	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", NULL }), 0, "%s", r.err);
	expect_no_terminal_controls(r.out, "status");
	HAS(r.out, "evil\\x1b[2J\\x1b]0;pwned\\x07");
	HAS(r.out, "csi\\u009b6n");
	proc_result_free(&r);

	arr = fx_status(&f, NULL);
	fx_expect(arr, EVIL, (struct counts){ .chunks = 1, .missing = 1 });
	fx_expect(arr, CSI, (struct counts){ .chunks = 1, .missing = 1 });
	cJSON_Delete(arr);
	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "--json", NULL }), 0);
	expect_no_terminal_controls(r.out, "status --json");
	proc_result_free(&r);

	cr_assert_eq(run_in(&f, &r, (const char *[]){ "status", "-C", "acme[2J", NULL }), 2);
	HAS(r.err, "did you mean \"acme\\x1b[2J\"?");
	expect_no_terminal_controls(r.err, "the error naming a near collection");
	proc_result_free(&r);

	run_in(&f, &r, (const char *[]){ "verify", "-C", "plain", NULL });
	HAS(r.out, "m\\x1b]0;model\\x07\\u009b");
	expect_no_terminal_controls(r.out, "verify");
	expect_no_terminal_controls(r.err, "verify's errors");
	proc_result_free(&r);
	fx_free(&f);
}
