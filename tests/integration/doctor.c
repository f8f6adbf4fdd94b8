/*
 * doctor.c - `embfill doctor` against the sandbox embedder speaking each of
 * the three APIs over real HTTP, with a real database behind it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "embedder_proc.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define KEY "sk-test-PLANTED-0123456789abcdef"

struct doc {
	struct fx f;
	struct embedder_proc e;
	struct proc_result r;
};

static void start(struct doc *d, enum backend b, const char *const *embedder_args)
{
	const char *init[] = { "schema", "init", "--dim", "4", NULL };

	fx_init(&d->f, b, NULL);
	cr_assert_eq(fx_run(&d->f, &d->r, init), 0, "%s", d->r.err);
	proc_result_free(&d->r);
	cr_assert_eq(embedder_start(&d->e, embedder_args), 0, "the sandbox embedder did not start");
}

static int doctor(struct doc *d, const char *provider, const char *url, const char *const *env_extra,
		  bool json)
{
	char p[64], u[128];
	const char *env[12] = { p, u, "EMBED_MODEL=m1", "EMBED_DIM=4", "DATABASE_URL",
				"EMBED_API_KEY", "EMBED_API_KEY_FILE" };
	const char *args[] = { "--config", d->f.config, "doctor", json ? "--json" : NULL, NULL };
	size_t n = 7;

	snprintf(p, sizeof(p), "EMBED_PROVIDER=%s", provider);
	snprintf(u, sizeof(u), "EMBED_URL=%s", url);
	while (env_extra && *env_extra && n < 11)
		env[n++] = *env_extra++;
	env[n] = NULL;
	return run_embfill(args, env, d->f.dir, &d->r);
}

static void finish(struct doc *d)
{
	embedder_stop(&d->e);
	proc_result_free(&d->r);
	fx_free(&d->f);
}

static void all_pass(enum backend b, const char *provider)
{
	struct doc d;

	start(&d, b, (const char *[]){ "--dim", "4", "--model", "m1", NULL });
	cr_assert_eq(doctor(&d, provider, d.e.url, NULL, false), 0, "doctor exited %d:\n%s\n%s",
		     d.r.status, d.r.out, d.r.err);
	HAS(d.r.out, "[ok]   embedding service");
	HAS(d.r.out, "returns dimension 4 = EMBED_DIM");
	HAS(d.r.out, "[ok]   schema dimension");
	HAS(d.r.out, "EMBED_PROVIDER");
	HAS(d.r.out, "environment");
	cr_expect_null(strstr(d.r.out, "[FAIL]"), "%s", d.r.out);
	finish(&d);
}

Test(pg_doctor, passes_against_ollama) { all_pass(BACKEND_PG, "ollama"); }
Test(pg_doctor, passes_against_openai) { all_pass(BACKEND_PG, "openai"); }
Test(pg_doctor, passes_against_tei) { all_pass(BACKEND_PG, "tei"); }
Test(pglite_doctor, passes_against_openai_with_pgvector)
{
	all_pass(BACKEND_PGLITE, "openai");
}

static void dim_mismatch(const char *provider)
{
	struct doc d;

	start(&d, BACKEND_PG, (const char *[]){ "--dim", "8", "--model", "m1", NULL });
	cr_assert_eq(doctor(&d, provider, d.e.url, NULL, false), 1, "%s\n%s", d.r.out, d.r.err);
	HAS(d.r.out, "[FAIL] dimension: model \"m1\" returns dimension 8, EMBED_DIM is 4");
	HAS(d.r.out, "[FAIL] schema dimension: the vector column holds dimension 4, the service "
		     "returns 8");
	HAS(d.r.out, "hint: set EMBED_DIM");
	finish(&d);
}

Test(pg_doctor, dimension_mismatch_fails_ollama) { dim_mismatch("ollama"); }
Test(pg_doctor, dimension_mismatch_fails_openai) { dim_mismatch("openai"); }
Test(pg_doctor, dimension_mismatch_fails_tei) { dim_mismatch("tei"); }

Test(pg_doctor, unreachable_service_exits_4)
{
	struct doc d;

	start(&d, BACKEND_PG, NULL);
	cr_assert_eq(doctor(&d, "openai", "http://127.0.0.1:1", NULL, false), 4, "%s\n%s",
		     d.r.out, d.r.err);
	HAS(d.r.out, "[FAIL] embedding service");
	HAS(d.r.out, "[ok]   database");
	finish(&d);
}

Test(pg_doctor, unreachable_database_exits_3_and_still_probes_the_service)
{
	struct doc d;
	const char *env[] = { "PGPASSWORD=pw-PLANTED", NULL };

	start(&d, BACKEND_PG, (const char *[]){ "--dim", "4", "--model", "m1", NULL });
	{
		const char *args[] = { "--config", d.f.config, "doctor", NULL };
		char u[128];
		const char *e2[] = { "EMBED_PROVIDER=tei", u, "EMBED_DIM=4", env[0],
				     "DATABASE_URL=postgresql://u:pw-PLANTED@127.0.0.1:1/x", NULL };
		snprintf(u, sizeof(u), "EMBED_URL=%s", d.e.url);
		cr_assert_eq(run_embfill(args, e2, d.f.dir, &d.r), 3, "%s\n%s", d.r.out, d.r.err);
	}
	HAS(d.r.out, "[FAIL] database: cannot connect");
	HAS(d.r.out, "[ok]   embedding service");
	cr_expect_null(strstr(d.r.out, "pw-PLANTED"), "%s", d.r.out);
	cr_expect_null(strstr(d.r.err, "pw-PLANTED"), "%s", d.r.err);
	finish(&d);
}

/* The key reaches the service (200) and no output, in either format,
 * and a wrong key is reported without echoing either key. */
Test(pg_doctor, api_key_is_used_and_never_printed)
{
	struct doc d;
	char *dir = test_tmpdir();
	char *keyfile = write_file(dir, "key", KEY "\n");
	char *wrong = NULL;
	const char *env_ok[] = { "EMBED_API_KEY=" KEY, NULL };
	const char *env_bad[] = { "EMBED_API_KEY=sk-test-PLANTED-wrong-key-000", NULL };

	chmod(keyfile, 0600);
	start(&d, BACKEND_PG, (const char *[]){ "--dim", "4", "--model", "m1", "--api-key-file",
						keyfile, NULL });
	cr_assert_eq(doctor(&d, "openai", d.e.url, env_ok, false), 0, "%s\n%s", d.r.out, d.r.err);
	HAS(d.r.out, "EMBED_API_KEY            *** (set)");
	cr_expect_null(strstr(d.r.out, "PLANTED"), "%s", d.r.out);
	cr_expect_null(strstr(d.r.err, "PLANTED"), "%s", d.r.err);
	proc_result_free(&d.r);
	cr_assert_eq(doctor(&d, "openai", d.e.url, env_ok, true), 0);
	cr_expect_null(strstr(d.r.out, "PLANTED"), "%s", d.r.out);
	HAS(d.r.out, "\"ok\":true");
	proc_result_free(&d.r);
	cr_assert_eq(doctor(&d, "openai", d.e.url, env_bad, false), 1, "%s\n%s", d.r.out, d.r.err);
	HAS(d.r.out, "[FAIL] embedding service");
	HAS(d.r.out, "401");
	cr_expect_null(strstr(d.r.out, "PLANTED"), "%s", d.r.out);
	cr_expect_null(strstr(d.r.err, "PLANTED"), "%s", d.r.err);
	proc_result_free(&d.r);
	/* the key from a key file works the same and stays as secret */
	cr_assert(asprintf(&wrong, "EMBED_API_KEY_FILE=%s", keyfile) > 0);
	cr_assert_eq(doctor(&d, "openai", d.e.url, (const char *[]){ wrong, NULL }, false), 0,
		     "%s\n%s", d.r.out, d.r.err);
	cr_expect_null(strstr(d.r.out, "PLANTED"), "%s", d.r.out);
	free(wrong);
	free(keyfile);
	free(dir);
	finish(&d);
}

Test(pg_doctor, unknown_model_is_a_failed_check_with_a_hint)
{
	struct doc d;

	start(&d, BACKEND_PG, (const char *[]){ "--dim", "4", "--model", "other", NULL });
	cr_assert_eq(doctor(&d, "ollama", d.e.url, NULL, false), 1, "%s\n%s", d.r.out, d.r.err);
	HAS(d.r.out, "[FAIL] embedding service");
	HAS(d.r.out, "404");
	HAS(d.r.out, "hint:");
	finish(&d);
}

/* openai alone has a choice of encoding; doctor says which one the service speaks. */
Test(pg_doctor, says_which_vector_encoding_the_service_speaks)
{
	struct doc d;
	const char *refuse[] = { "--dim", "4", "--model", "m1", "--refuse-base64", NULL };
	const char *insist[] = { "EMBED_ENCODING=base64", NULL };

	start(&d, BACKEND_PG, (const char *[]){ "--dim", "4", "--model", "m1", NULL });
	cr_assert_eq(doctor(&d, "openai", d.e.url, NULL, false), 0, "%s\n%s", d.r.out, d.r.err);
	HAS(d.r.out, "[ok]   vector encoding: the service sends vectors as base64 float32 "
		     "(EMBED_ENCODING=auto)");
	HAS(d.r.out, "EMBED_ENCODING");
	proc_result_free(&d.r);
	cr_assert_eq(doctor(&d, "tei", d.e.url, NULL, false), 0, "%s\n%s", d.r.out, d.r.err);
	cr_expect_null(strstr(d.r.out, "vector encoding"), "tei has no choice: %s", d.r.out);
	proc_result_free(&d.r);
	embedder_stop(&d.e);
	cr_assert_eq(embedder_start(&d.e, refuse), 0, "the sandbox embedder did not start");
	cr_assert_eq(doctor(&d, "openai", d.e.url, NULL, false), 0, "%s\n%s", d.r.out, d.r.err);
	HAS(d.r.out, "[ok]   vector encoding: the service refuses base64 and sends decimal "
		     "numbers");
	proc_result_free(&d.r);
	cr_assert_eq(doctor(&d, "openai", d.e.url, insist, false), 1, "%s\n%s", d.r.out, d.r.err);
	HAS(d.r.out, "[FAIL] embedding service");
	HAS(d.r.out, "EMBED_ENCODING=base64 insists");
	HAS(d.r.out, "hint: set EMBED_ENCODING=auto");
	finish(&d);
}
