/*
 * cli.c - the command line as an operator meets it: schema init and check,
 * bad settings, unknown or hostile collection names, unreachable databases,
 * and no secret in any output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

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
	if (b == BACKEND_PG)
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
			      "DATABASE_URL", NULL };

	cr_assert_eq(run_embfill((const char *[]){ "status", "--dsn",
						   "postgresql://ops:s3cr3t-PLANTED@127.0.0.1:1/db",
						   NULL }, env, dir, &r), 3);
	HAS(r.err, "cannot connect to the database");
	HAS(r.err, "user=ops");
	cr_expect_null(strstr(r.err, "s3cr3t-PLANTED"), "%s", r.err);
	cr_expect_null(strstr(r.out, "s3cr3t-PLANTED"), "%s", r.out);
	cr_expect_null(strstr(r.err, "sk-test-PLANTED"), "%s", r.err);
	proc_result_free(&r);
	cr_assert_eq(run_embfill((const char *[]){ "schema", "check", "--dsn",
						   "host=127.0.0.1 port=1 password=s3cr3t-PLANTED",
						   NULL }, env, dir, &r), 3);
	cr_expect_null(strstr(r.err, "s3cr3t-PLANTED"), "%s", r.err);
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
	HAS(r.err, "needs init or check");
	proc_result_free(&r);
}
