/*
 * tei_route.c - a text-embeddings-inference endpoint driven through its
 * OpenAI route with base64 when that gives /embed's vectors, and kept on
 * /embed when the route is missing, gives other vectors or is slower: the
 * sandbox embedder playing each TEI, `embfill run` and `embfill doctor`
 * against it, PostgreSQL behind them.  The embedder's /stats counts the
 * requests of each path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include "embedder_proc.h"
#include "embfill/embed.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define DIM 8
#define CHUNKS 30
#define BATCH 10

struct tr {
	struct fx f;
	struct embedder_proc e;
	struct proc_result r;
};

/* A schema with CHUNKS chunks of collection acme, settings for tei at the
 * embedder (started with args), batches of BATCH, and extra settings. */
static void tr_start(struct tr *t, const char *const *emb_args, const char *extra)
{
	const char *base[16] = { "--dim", "8", "--model", "m1" };
	const char *init[] = { "schema", "init", "--dim", "8", NULL };
	char settings[512];
	size_t n = 4;
	FILE *cf;

	while (emb_args && *emb_args && n < 15)
		base[n++] = *emb_args++;
	base[n] = NULL;
	memset(&t->r, 0, sizeof(t->r));
	fx_init(&t->f, BACKEND_PG, NULL);
	cr_assert_eq(embedder_start(&t->e, base), 0, "the sandbox embedder did not start");
	snprintf(settings, sizeof(settings), "EMBED_PROVIDER=tei\nEMBED_URL=%s\nEMBED_MODEL=m1\n"
		 "EMBED_DIM=%d\nBATCH_SIZE=%d\n%s", t->e.url, DIM, BATCH, extra ? extra : "");
	cr_assert(cf = fopen(t->f.config, "a"));
	fputs(settings, cf);
	fclose(cf);
	cr_assert_eq(fx_run(&t->f, &t->r, init), 0, "%s", t->r.err);
	proc_result_free(&t->r);
	fx_sql(&t->f, "INSERT INTO @S.documents (id, collection, title, source_uri, body) VALUES"
		      " (1, 'acme', 'Acme', 'file:///acme', 'a');"
		      "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
		      " SELECT g, 1, 'acme', g, 'acme text ' || g || ' about widgets and gears'"
		      " FROM generate_series(1, 30) g");
}

static void tr_stop(struct tr *t)
{
	embedder_stop(&t->e);
	proc_result_free(&t->r);
	fx_free(&t->f);
}

static int run_acme(struct tr *t)
{
	const char *args[] = { "run", "-C", "acme", "--confirm", "acme", NULL };

	proc_result_free(&t->r);
	return fx_run(&t->f, &t->r, args);
}

/* POSTs the embedder answered on one path, from its /stats. */
static long long path_count(const struct embedder_proc *e, const char *path)
{
	cJSON *j = embedder_stats(e), *by;
	long long n;

	cr_assert(j, "the embedder's /stats could not be read");
	by = cJSON_GetObjectItem(j, "by_path");
	cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(by, path)), "no count of %s in its /stats",
		  path);
	n = (long long)cJSON_GetObjectItem(by, path)->valuedouble;
	cJSON_Delete(j);
	return n;
}

/*
 * Every chunk has one vector, and it is bit for bit the vector /embed gives
 * for its text (asked here through a pool without verification, which
 * stays on /embed): whichever route the run took, the vectors are the
 * recipe's.
 */
static void expect_embed_vectors(struct tr *t)
{
	struct ef_embed_config ec;
	struct ef_embed_result *res = NULL;
	struct ef_error err;
	char *texts[CHUNKS];

	cr_assert_eq(fx_ll(&t->f, "SELECT count(*) FROM @S.document_embeddings WHERE collection ="
				  " 'acme' AND model = 'm1' AND dim = 8"), CHUNKS);
	for (int i = 0; i < CHUNKS; i++)
		cr_assert(asprintf(&texts[i], "acme text %d about widgets and gears", i + 1) > 0);
	ef_embed_config_defaults(&ec);
	ec.provider = EF_EMBED_TEI;
	ec.url = t->e.url;
	ec.model = "m1";
	ec.dim = DIM;
	cr_assert_eq(ef_embed_batch(&ec, (const char *const *)texts, CHUNKS, &res, &err), EF_OK,
		     "%s", err.msg);
	for (int i = 0; i < CHUNKS; i++) {
		char *q = NULL, *vals, *p;

		cr_assert(asprintf(&q, "SELECT array_to_string(embedding::real[], ',') FROM"
				       " @S.document_embeddings WHERE chunk_id = %d", i + 1) > 0);
		vals = fx_text(&t->f, q);
		p = vals;
		for (int k = 0; k < DIM; k++) {
			float v = strtof(p, &p);

			cr_expect(v == res->vectors[i * DIM + k], "chunk %d [%d]: stored %.9g, /embed "
				  "%.9g", i + 1, k, (double)v, (double)res->vectors[i * DIM + k]);
			if (*p == ',')
				p++;
		}
		free(vals);
		free(q);
		free(texts[i]);
	}
	ef_embed_result_free(res);
}

TestSuite(pg_tei_route, .timeout = 120);

/* Both routes take the same time in the sandbox; 20 ms each keeps the
 * probe's timing clear of a busy machine's scheduling noise. */
Test(pg_tei_route, a_working_openai_route_carries_the_run_with_base64)
{
	struct tr t;
	long long embed, openai;

	tr_start(&t, (const char *[]){ "--latency-ms", "20", NULL }, NULL);
	cr_assert_eq(run_acme(&t), 0, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.err, "/embed\": OpenAI route /v1/embeddings, base64 (same vectors as /embed, "
		     "probe ");
	embed = path_count(&t.e, "/embed");
	openai = path_count(&t.e, "/v1/embeddings");
	/* /embed: the verification's probe (and once more if the probe was timed
	 * again); every batch on /v1/embeddings, after the route probe */
	cr_expect(embed >= 1 && embed <= 2, "/embed was asked %lld times", embed);
	cr_expect(openai >= 1 + CHUNKS / BATCH && openai <= 2 + CHUNKS / BATCH,
		  "/v1/embeddings was asked %lld times", openai);
	expect_embed_vectors(&t);
	tr_stop(&t);
}

static void stays_on_embed(const char *const *emb_args, const char *why)
{
	struct tr t;

	tr_start(&t, emb_args, NULL);
	cr_assert_eq(run_acme(&t), 0, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.err, why);
	cr_expect_eq(path_count(&t.e, "/v1/embeddings"), 1, "the route probe alone");
	cr_expect_eq(path_count(&t.e, "/embed"), 1 + CHUNKS / BATCH, "the probe and every batch");
	expect_embed_vectors(&t);
	tr_stop(&t);
}

Test(pg_tei_route, a_missing_openai_route_keeps_embed)
{
	stays_on_embed((const char *[]){ "--openai-route", "missing", NULL },
		       "/embed\": /embed, numbers (/v1/embeddings answered HTTP 404)");
}

Test(pg_tei_route, an_openai_route_with_other_vectors_keeps_embed)
{
	stays_on_embed((const char *[]){ "--openai-route", "other", NULL },
		       "/embed\": /embed, numbers (/v1/embeddings does not give /embed's vectors "
		       "(cosine ");
}

Test(pg_tei_route, an_openai_route_that_answers_numbers_keeps_embed)
{
	stays_on_embed((const char *[]){ "--ignore-base64", NULL },
		       "(/v1/embeddings answered numbers, not base64)");
}

/* Timed twice, slower twice: 300 ms more than /embed is no scheduling noise. */
Test(pg_tei_route, a_slower_openai_route_keeps_embed)
{
	struct tr t;

	tr_start(&t, (const char *[]){ "--openai-latency-ms", "300", NULL }, NULL);
	cr_assert_eq(run_acme(&t), 0, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.err, "(/v1/embeddings gives the same vectors but is slower: probe ");
	cr_expect_eq(path_count(&t.e, "/v1/embeddings"), 2, "the route probe, timed twice");
	cr_expect_eq(path_count(&t.e, "/embed"), 2 + CHUNKS / BATCH,
		     "the probe, its second timing, and every batch");
	expect_embed_vectors(&t);
	tr_stop(&t);
}

Test(pg_tei_route, encoding_float_never_asks_the_openai_route)
{
	struct tr t;

	tr_start(&t, NULL, "EMBED_ENCODING=float\n");
	cr_assert_eq(run_acme(&t), 0, "%s\n%s", t.r.out, t.r.err);
	cr_expect_eq(path_count(&t.e, "/v1/embeddings"), 0);
	cr_expect_eq(path_count(&t.e, "/embed"), 1 + CHUNKS / BATCH);
	expect_embed_vectors(&t);
	tr_stop(&t);
}

Test(pg_tei_route, encoding_base64_without_the_route_is_refused_before_writing)
{
	struct tr t;

	tr_start(&t, (const char *[]){ "--openai-route", "missing", NULL }, "EMBED_ENCODING=base64\n");
	cr_assert_eq(run_acme(&t), 4, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.err, "cannot be driven through its OpenAI route, and EMBED_ENCODING=base64 insists "
		     "on it: /v1/embeddings answered HTTP 404");
	HAS(t.r.err, "hint: set EMBED_ENCODING=auto (or float)");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	cr_expect_eq(path_count(&t.e, "/embed"), 1, "the verification's probe alone");
	tr_stop(&t);
}

Test(pg_tei_route, encoding_base64_with_the_route_carries_the_run)
{
	struct tr t;

	tr_start(&t, NULL, "EMBED_ENCODING=base64\n");
	cr_assert_eq(run_acme(&t), 0, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.err, "OpenAI route /v1/embeddings, base64 (same vectors as /embed");
	cr_expect_eq(path_count(&t.e, "/embed"), 1, "the verification's probe alone");
	cr_expect_eq(path_count(&t.e, "/v1/embeddings"), 1 + CHUNKS / BATCH);
	expect_embed_vectors(&t);
	tr_stop(&t);
}

Test(pg_tei_route, encoding_base64_with_truncate_is_a_usage_error)
{
	struct tr t;

	tr_start(&t, NULL, "EMBED_ENCODING=base64\nEMBED_TRUNCATE=true\n");
	cr_assert_eq(run_acme(&t), 2, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.err, "EMBED_ENCODING=base64 needs text-embeddings-inference's OpenAI route, which "
		     "cannot be used with this recipe: EMBED_TRUNCATE=true");
	cr_expect_eq(path_count(&t.e, "/v1/embeddings") + path_count(&t.e, "/embed"), 0);
	tr_stop(&t);
}

Test(pg_tei_route, truncate_keeps_embed_without_asking)
{
	struct tr t;

	tr_start(&t, NULL, "EMBED_TRUNCATE=true\n");
	cr_assert_eq(run_acme(&t), 0, "%s\n%s", t.r.out, t.r.err);
	cr_expect_eq(path_count(&t.e, "/v1/embeddings"), 0);
	expect_embed_vectors(&t);
	tr_stop(&t);
}

/* --- doctor ---------------------------------------------------------------- */

static int doctor(struct tr *t, bool json, const char *extra_env)
{
	const char *args[] = { "--config", t->f.config, "doctor", json ? "--json" : NULL, NULL };
	const char *env[] = { "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM", extra_env, NULL };

	proc_result_free(&t->r);
	return run_embfill(args, env, t->f.dir, &t->r);
}

static cJSON *route_of(struct tr *t)
{
	cJSON *j = cJSON_Parse(t->r.out), *routes = cJSON_GetObjectItem(j, "routes");

	cr_assert(cJSON_IsArray(routes) && cJSON_GetArraySize(routes) == 1, "%s", t->r.out);
	return j;
}

static const char *str(cJSON *j, const char *key)
{
	cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "routes"), 0);
	cJSON *v = cJSON_GetObjectItem(o, key);

	cr_assert(cJSON_IsString(v), "no string %s", key);
	return v->valuestring;
}

Test(pg_tei_route, doctor_says_the_openai_route_is_used_and_why)
{
	struct tr t;
	cJSON *j;

	tr_start(&t, NULL, NULL);
	cr_assert_eq(doctor(&t, false, NULL), 0, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.out, "[ok]   route: tei: OpenAI route /v1/embeddings, base64 (same vectors as "
		     "/embed, probe ");
	cr_assert_eq(doctor(&t, true, NULL), 0, "%s\n%s", t.r.out, t.r.err);
	j = route_of(&t);
	cr_expect_str_eq(str(j, "route"), "openai");
	cr_expect_str_eq(str(j, "path"), "/v1/embeddings");
	cr_expect_str_eq(str(j, "encoding"), "base64");
	cJSON_Delete(j);
	tr_stop(&t);
}

Test(pg_tei_route, doctor_says_embed_is_kept_when_the_route_is_missing)
{
	struct tr t;
	cJSON *j;

	tr_start(&t, (const char *[]){ "--openai-route", "missing", NULL }, NULL);
	cr_assert_eq(doctor(&t, false, NULL), 0, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.out, "[ok]   route: tei: /embed, numbers (/v1/embeddings answered HTTP 404)");
	cr_assert_eq(doctor(&t, true, NULL), 0, "%s\n%s", t.r.out, t.r.err);
	j = route_of(&t);
	cr_expect_str_eq(str(j, "route"), "embed");
	cr_expect_str_eq(str(j, "encoding"), "float");
	cr_expect_str_eq(str(j, "reason"), "/v1/embeddings answered HTTP 404");
	cJSON_Delete(j);
	cr_assert_eq(doctor(&t, false, "EMBED_ENCODING=base64"), 1, "%s\n%s", t.r.out, t.r.err);
	HAS(t.r.out, "[FAIL] route: tei: EMBED_ENCODING=base64 needs the OpenAI route "
		     "/v1/embeddings, which cannot be used (/v1/embeddings answered HTTP 404)");
	HAS(t.r.out, "set EMBED_ENCODING=auto (or float)");
	tr_stop(&t);
}
