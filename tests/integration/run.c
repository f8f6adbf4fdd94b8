/*
 * run.c - `embfill run` end to end: real PostgreSQL and PGlite, the sandbox
 * embedder over real HTTP, the binary as an operator runs it.
 */
#include <math.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "embedder_proc.h"
#include "embfill/embed.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define DIM 8

struct rt {
	struct fx f;
	struct embedder_proc e;
	char log[512];
};

static char *slurp(const char *path);

static void add_settings(struct fx *f, const char *text)
{
	FILE *cf = fopen(f->config, "a");

	cr_assert(cf);
	fputs(text, cf);
	fclose(cf);
}

static void point_at(struct rt *t, const struct embedder_proc *e)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "EMBED_PROVIDER=openai\nEMBED_URL=%s\nEMBED_MODEL=m1\n"
				   "EMBED_DIM=%d\nEMBED_MAX_ATTEMPTS=8\n", e->url, DIM);
	add_settings(&t->f, buf);
}

/* Schema, `acme` chunks with ids 1..n_acme and `globex` chunks after them,
 * and an embedder speaking openai with the given fault flags. */
static void rt_start(struct rt *t, enum backend b, long long n_acme, long long n_globex,
		     const char *const *emb_args)
{
	const char *base[32] = { "--dim", "8", "--model", "m1" };
	const char *init[] = { "schema", "init", "--dim", "8", NULL };
	struct proc_result r;
	char *sql = NULL;
	size_t n = 4;

	while (emb_args && *emb_args && n < 31)
		base[n++] = *emb_args++;
	base[n] = NULL;
	fx_init(&t->f, b, NULL);
	snprintf(t->log, sizeof(t->log), "%s/bg.log", t->f.dir);
	cr_assert_eq(embedder_start(&t->e, base), 0, "the sandbox embedder did not start");
	point_at(t, &t->e);
	cr_assert_eq(fx_run(&t->f, &r, init), 0, "%s", r.err);
	proc_result_free(&r);
	cr_assert(asprintf(&sql,
		"INSERT INTO @S.documents (id, collection, title, source_uri, body) VALUES"
		" (1, 'acme', 'Acme', 'file:///acme', 'a'), (2, 'globex', 'Globex', 'file:///g', 'g');"
		"INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
		" SELECT g, 1, 'acme', g, 'acme text ' || g || ' about widgets and gears'"
		" FROM generate_series(1, %lld) g;"
		"INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
		" SELECT g, 2, 'globex', g, 'globex note ' || g FROM generate_series(%lld, %lld) g",
		n_acme, n_acme + 1, n_acme + n_globex) > 0);
	fx_sql(&t->f, sql);
	free(sql);
}

static void rt_stop(struct rt *t)
{
	embedder_stop(&t->e);
	fx_free(&t->f);
}

static int run_coll(struct rt *t, struct proc_result *r, const char *coll,
		    const char *const *extra)
{
	const char *args[24] = { "run", "-C", coll, "--confirm", coll };
	size_t n = 5;

	while (extra && *extra && n < 23)
		args[n++] = *extra++;
	args[n] = NULL;
	return fx_run(&t->f, r, args);
}

static int spawn_run(struct rt *t, const char *coll, const char *const *extra)
{
	const char *args[24] = { "--config", t->f.config, "run", "-C", coll, "--confirm", coll };
	const char *env[] = { "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM", NULL };
	size_t n = 7;
	int pid;

	while (extra && *extra && n < 23)
		args[n++] = *extra++;
	args[n] = NULL;
	pid = spawn_embfill(args, env, t->f.dir, t->log);
	cr_assert_gt(pid, 0);
	return pid;
}

/* Every chunk of coll has exactly one current vector: model m1, dimension
 * 8, the hash of its present content; and no embedding row is extra. */
static void expect_exact(struct fx *f, const char *coll, long long n)
{
	char *q1 = NULL, *q2 = NULL;

	cr_assert(asprintf(&q1, "SELECT count(*) FROM @S.document_chunks c JOIN"
				" @S.document_embeddings e ON e.chunk_id = c.id AND e.collection ="
				" c.collection WHERE c.collection = '%s' AND e.model = 'm1' AND e.dim = 8"
				" AND e.embedding IS NOT NULL AND e.content_sha256 ="
				" sha256(convert_to(c.content, 'UTF8'))", coll) > 0);
	cr_assert(asprintf(&q2, "SELECT count(*) FROM @S.document_embeddings WHERE"
				" collection = '%s'", coll) > 0);
	cr_expect_eq(fx_ll(f, q1), n, "%s: current vectors", coll);
	cr_expect_eq(fx_ll(f, q2), n, "%s: embedding rows", coll);
	free(q1);
	free(q2);
}

/* One counter of the embedder's /stats. */
static long long embedder_stat(const struct embedder_proc *e, const char *key)
{
	cJSON *j = embedder_stats(e);
	long long n;

	cr_assert(j, "the embedder's /stats could not be read");
	cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, key)), "no \"%s\" in its /stats", key);
	n = (long long)cJSON_GetObjectItem(j, key)->valuedouble;
	cJSON_Delete(j);
	return n;
}

/* Inputs the embedder has embedded so far. */
static long long embedder_items(const struct embedder_proc *e)
{
	return embedder_stat(e, "items");
}

/* The stored vector of a chunk equals what a clean service returns for its
 * text: proof that no faulty answer was ever written. */
static void expect_vector_of(struct rt *t, const struct embedder_proc *clean, long long id)
{
	char *q = NULL, text[256], *vals;
	struct ef_embed_config ec;
	struct ef_embed_result *res = NULL;
	struct ef_error err;
	const char *texts[1] = { text };
	char *p;

	snprintf(text, sizeof(text), "acme text %lld about widgets and gears", id);
	ef_embed_config_defaults(&ec);
	ec.provider = EF_EMBED_TEI;
	ec.url = clean->url;
	ec.dim = DIM;
	cr_assert_eq(ef_embed_batch(&ec, texts, 1, &res, &err), EF_OK, "%s", err.msg);
	cr_assert(asprintf(&q, "SELECT array_to_string(embedding::real[], ',') FROM"
			       " @S.document_embeddings WHERE chunk_id = %lld", id) > 0);
	vals = fx_text(&t->f, q);
	p = vals;
	for (int i = 0; i < DIM; i++) {
		float v = strtof(p, &p);
		cr_expect(fabsf(v - res->vectors[i]) < 1e-6f, "chunk %lld [%d]: stored %g, clean %g",
			  id, i, (double)v, (double)res->vectors[i]);
		if (*p == ',')
			p++;
	}
	free(vals);
	free(q);
	ef_embed_result_free(res);
}

/* --- a run replaces what is missing or stale, and only that --------------- */

static void replaces_missing_and_stale(enum backend b)
{
	struct rt t;
	struct proc_result r;
	struct embedder_proc clean;

	rt_start(&t, b, 40, 5, NULL);
	/* 1-10 fresh (embedded long ago), 11-15 stale model, 16-20 stale content,
	 * 21-25 NULL vectors, the rest missing */
	fx_sql(&t.f, "INSERT INTO @S.document_embeddings (chunk_id, collection, model, dim,"
		     " content_sha256, embedding, embedded_at)"
		     " SELECT id, collection, CASE WHEN id BETWEEN 11 AND 15 THEN 'm0' ELSE 'm1' END, 8,"
		     "  CASE WHEN id BETWEEN 16 AND 20 THEN sha256('old'::bytea)"
		     "   ELSE sha256(convert_to(content, 'UTF8')) END,"
		     "  CASE WHEN id BETWEEN 21 AND 25 THEN NULL ELSE ARRAY[1,1,1,1,1,1,1,1]::real[] END,"
		     "  '2020-01-01' FROM @S.document_chunks WHERE id <= 25");
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s\n%s", r.out, r.err);
	HAS(r.out, "completed: 30 written, 0 quarantined of 30");
	proc_result_free(&r);
	expect_exact(&t.f, "acme", 40);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "verify", "-C", "acme", NULL }), 0,
		     "verify after the run:\n%s%s", r.out, r.err);
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE chunk_id <= 10"
				 " AND embedded_at = '2020-01-01'"), 10, "fresh rows were rewritten");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE"
				 " collection = 'globex'"), 0, "another collection was touched");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'completed'"
				 " AND written = 30 AND total = 30"), 1);
	cr_assert_eq(embedder_start(&clean, (const char *[]){ "--dim", "8", NULL }), 0);
	expect_vector_of(&t, &clean, 12);
	expect_vector_of(&t, &clean, 33);
	embedder_stop(&clean);
	/* a second run finds nothing to do */
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s", r.err);
	HAS(r.out, "0 written, 0 quarantined of 0");
	proc_result_free(&r);
	rt_stop(&t);
}

Test(pg_run, replaces_missing_and_stale_rows_and_leaves_fresh_ones, .timeout = 120)
{
	replaces_missing_and_stale(BACKEND_PG);
}
Test(pglite_run, replaces_missing_and_stale_rows_and_leaves_fresh_ones, .timeout = 120)
{
	replaces_missing_and_stale(BACKEND_PGLITE);
}

Test(pg_run, a_confirmation_that_differs_touches_nothing)
{
	struct rt t;
	struct proc_result r;
	const char *args[] = { "run", "-C", "acme", "--confirm", "acme ", NULL };

	rt_start(&t, BACKEND_PG, 10, 0, NULL);
	cr_assert_eq(fx_run(&t.f, &r, args), 2);
	HAS(r.err, "the confirmation \"acme \" differs from the collection \"acme\"");
	HAS(r.err, "nothing was touched");
	proc_result_free(&r);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "run", "-C", "acme", NULL }), 2);
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	cr_expect_eq(embedder_items(&t.e), 0, "the service was asked");
	rt_stop(&t);
}

Test(pg_run, dry_run_writes_nothing)
{
	struct rt t;
	struct proc_result r;

	rt_start(&t, BACKEND_PG, 250, 0, NULL);
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--dry-run", "--batch-size",
								 "100", NULL }), 0, "%s", r.err);
	HAS(r.out, "to embed: 250 chunks in 3 batches of 100");
	HAS(r.out, "estimate: ");
	HAS(r.out, " run -C acme --confirm acme --batch-size 100");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	/* the estimate comes from embedding up to two rounds of EMBED_CONCURRENCY
	 * batches (here 250 chunks: 100, 100, 50), which are not written */
	cr_expect_eq(embedder_items(&t.e), 250);
	rt_stop(&t);
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert(cJSON_IsNumber(v), "no number \"%s\" in %s", key, cJSON_PrintUnformatted(o));
	return v->valuedouble;
}

/* The estimate comes from probes at the run's concurrency: two rounds of K
 * batches of the run's size through the pool, K of them computing at the
 * service at once, with the range the rounds allow; nothing is written.
 * (How close the estimate comes to a run is measured in the sandbox, not
 * asserted here.) */
Test(pg_run, the_plan_probes_at_the_chosen_concurrency, .timeout = 60)
{
	struct rt t;
	struct proc_result r;
	cJSON *o, *probe;

	rt_start(&t, BACKEND_PG, 60, 0, (const char *[]){ "--item-latency-ms", "20", NULL });
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "plan", "-C", "acme", "--json",
							"--batch-size", "5", "--concurrency", "3",
							NULL }), 0, "%s", r.err);
	o = cJSON_Parse(r.out);
	cr_assert(cJSON_IsObject(o), "%s", r.out);
	probe = cJSON_GetObjectItemCaseSensitive(o, "probe");
	cr_assert(cJSON_IsObject(probe), "%s", r.out);
	cr_expect_eq(num(probe, "chunks"), 30, "two rounds of 3 batches of 5");
	cr_expect_eq(num(probe, "requests"), 6);
	cr_expect_eq(num(probe, "concurrency"), 3);
	cr_expect_gt(num(probe, "chunks_per_s"), 0);
	cr_expect_leq(num(o, "estimated_seconds_low"), num(o, "estimated_seconds"));
	cr_expect_geq(num(o, "estimated_seconds_high"), num(o, "estimated_seconds"));
	cr_expect_lt(num(o, "estimated_seconds_low"), num(o, "estimated_seconds_high"));
	cJSON_Delete(o);
	proc_result_free(&r);
	cr_expect_eq(embedder_stat(&t.e, "requests"), 6);
	cr_expect_eq(embedder_stat(&t.e, "items"), 30);
	cr_expect_eq(embedder_stat(&t.e, "max_computing"), 3, "the probe's requests were not "
		     "in flight together");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "plan", "-C", "acme", "--batch-size", "5",
							"--concurrency", "3", NULL }), 0, "%s",
		     r.err);
	HAS(r.out, "a probe of 30 chunks in 6 requests, 3 in flight");
	HAS(r.out, ", likely ");
	proc_result_free(&r);
	rt_stop(&t);
}

/* plan --json's "todo" with the given options, and its models array. */
static long long plan_todo(struct rt *t, const char *const *extra, cJSON **models)
{
	const char *args[16] = { "plan", "-C", "acme", "--json" };
	struct proc_result r;
	size_t n = 4;
	long long todo;
	cJSON *o;

	while (extra && *extra && n < 15)
		args[n++] = *extra++;
	args[n] = NULL;
	cr_assert_eq(fx_run(&t->f, &r, args), 0, "%s", r.err);
	o = cJSON_Parse(r.out);
	cr_assert(cJSON_IsObject(o), "%s", r.out);
	todo = (long long)num(o, "todo");
	if (models)
		*models = cJSON_DetachItemFromObjectCaseSensitive(o, "models");
	cJSON_Delete(o);
	proc_result_free(&r);
	return todo;
}

/* The plan's chunks to embed and (model, dimension) pairs come from the
 * status pass: missing plus stale, less what is quarantined unchanged
 * (counted apart only while the collection has quarantined chunks), and
 * the same pairs verify lists. */
static void plan_counts(enum backend b)
{
	struct rt t;
	struct proc_result r;
	cJSON *models = NULL;

	rt_start(&t, b, 30, 0, NULL);
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s", r.err);
	proc_result_free(&r);
	fx_sql(&t.f, "DELETE FROM @S.document_embeddings WHERE chunk_id IN (3, 9, 17, 5);"
		     "UPDATE @S.document_chunks SET content = 'changed ' || id WHERE id IN (11, 21);"
		     "UPDATE @S.document_embeddings SET model = 'm0' WHERE chunk_id = 26;"
		     "INSERT INTO @T.quarantine (collection, chunk_id, chunk_key, reason, content_sha256)"
		     " SELECT 'acme', 5, ARRAY['5'], 'HTTP 400: too long',"
		     "  sha256(convert_to(content, 'UTF8')) FROM @S.document_chunks WHERE id = 5");
	/* 4 without a vector (one quarantined unchanged), 3 stale */
	cr_expect_eq(plan_todo(&t, NULL, &models), 6);
	cr_assert_eq(cJSON_GetArraySize(models), 2, "%s", cJSON_PrintUnformatted(models));
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(models, 0),
							  "model")->valuestring, "m1");
	cr_expect_eq(num(cJSON_GetArrayItem(models, 0), "count"), 25);
	cr_expect_eq(num(cJSON_GetArrayItem(models, 0), "dim"), DIM);
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(models, 1),
							  "model")->valuestring, "m0");
	cr_expect_eq(num(cJSON_GetArrayItem(models, 1), "count"), 1);
	cJSON_Delete(models);
	cr_expect_eq(plan_todo(&t, (const char *[]){ "--retry-quarantined", NULL }, NULL), 7);
	cr_expect_eq(plan_todo(&t, (const char *[]){ "--only", "missing", NULL }, NULL), 3);
	fx_sql(&t.f, "DELETE FROM @T.quarantine");
	cr_expect_eq(plan_todo(&t, NULL, NULL), 7);
	cr_expect_eq(plan_todo(&t, (const char *[]){ "--only", "missing", NULL }, NULL), 4);
	/* nothing to embed: no texts are read for the probe, none is sent */
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s", r.err);
	proc_result_free(&r);
	{
		long long before = embedder_stat(&t.e, "items");

		cr_expect_eq(plan_todo(&t, NULL, NULL), 0);
		cr_expect_eq(embedder_stat(&t.e, "items"), before, "a plan with nothing to do "
			     "embedded chunks");
	}
	rt_stop(&t);
}

Test(pg_run, plan_counts_come_from_the_status_pass, .timeout = 120) { plan_counts(BACKEND_PG); }
Test(pglite_run, plan_counts_come_from_the_status_pass, .timeout = 120)
{
	plan_counts(BACKEND_PGLITE);
}

/* --- one run per collection ------------------------------------------------ */

static void wait_running(struct fx *f)
{
	for (int i = 0; i < 600; i++) {
		if (fx_ll(f, "SELECT count(*) FROM @T.runs WHERE state = 'running' AND done > 0") > 0)
			return;
		usleep(50 * 1000);
	}
	cr_assert_fail("the first run never started writing");
}

Test(pg_run, a_second_run_on_the_collection_exits_6_naming_the_holder, .timeout = 120)
{
	struct rt t;
	struct proc_result r;
	int pid;

	rt_start(&t, BACKEND_PG, 600, 0, (const char *[]){ "--latency-ms", "150", NULL });
	pid = spawn_run(&t, "acme", (const char *[]){ "--concurrency", "1", NULL });
	wait_running(&t.f);
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 6, "%s\n%s", r.out, r.err);
	HAS(r.err, "collection \"acme\" is busy: run ");
	HAS(r.err, "on host ");
	HAS(r.err, "(pid ");
	proc_result_free(&r);
	cr_expect_eq(wait_exit(pid, 90), 0, "the first run failed");
	expect_exact(&t.f, "acme", 600);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 1, "the refused run left a record");
	rt_stop(&t);
}

Test(pg_run, runs_on_two_collections_at_once_both_finish_apart, .timeout = 120)
{
	struct rt t;
	int a, g;

	rt_start(&t, BACKEND_PG, 800, 800, (const char *[]){ "--latency-ms", "20", NULL });
	a = spawn_run(&t, "acme", NULL);
	g = spawn_run(&t, "globex", NULL);
	cr_expect_eq(wait_exit(a, 90), 0);
	cr_expect_eq(wait_exit(g, 90), 0);
	expect_exact(&t.f, "acme", 800);
	expect_exact(&t.f, "globex", 800);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings e JOIN @T.runs r ON"
				 " r.id = e.run_id WHERE r.collection <> e.collection"), 0,
		     "a run wrote rows of the other collection");
	rt_stop(&t);
}

/* --- crashes, signals and the window ---------------------------------------- */

static void kill_when_done(struct rt *t, int pid, long long at)
{
	for (int i = 0; i < 1200; i++) {
		if (fx_ll(&t->f, "SELECT coalesce(max(done), 0) FROM @T.runs") >= at) {
			kill(pid, SIGKILL);
			cr_expect_eq(wait_exit(pid, 10), 128 + SIGKILL);
			return;
		}
		usleep(25 * 1000);
	}
	cr_assert_fail("the run never reached %lld chunks", at);
}

Test(pg_run, kill_9_at_several_points_then_resume_is_exact, .timeout = 300)
{
	struct rt t;
	struct proc_result r;
	const long long n = 20000, points[] = { 1500, 7000, 14000 };

	rt_start(&t, BACKEND_PG, n, 0, (const char *[]){ "--latency-ms", "25", NULL });
	for (int i = 0; i < 3; i++) {
		int pid = spawn_run(&t, "acme", i ? (const char *[]){ "--resume", NULL } : NULL);
		kill_when_done(&t, pid, points[i]);
	}
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--resume", NULL }), 0,
		     "%s\n%s", r.out, r.err);
	HAS(r.out, "(resumed)");
	proc_result_free(&r);
	expect_exact(&t.f, "acme", n);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 1, "resumes made new runs");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'completed' AND"
				 " checkpoint_chunk_id = 20000"), 1);
	/* what a killed process had written was not embedded again: at most the
	 * batches in flight at each kill (2 x 100) are redone */
	cr_expect_leq(embedder_items(&t.e), n + 3 * 2 * 100 + 200, "resume redid finished work");
	rt_stop(&t);
}

/*
 * A resumed run does not wait for the counts of its collection, which take
 * seconds at a million chunks: they are taken beside it.  Here they are
 * held (EMBFILL_TEST_HOLD=counts:K waits for an advisory lock the test
 * holds) while the run writes; once let go, they are still the counts from
 * before the run's first write, and the run's total what was left.
 */
Test(pg_run, a_resumed_run_writes_before_its_counts_and_they_are_from_before_it,
     .timeout = 180)
{
	struct rt t;
	const long long n = 4000;
	long long had, seen = 0;
	char *log, want[160];
	int pid;
	PGconn *lock;
	PGresult *r;
	FILE *trunc;

	rt_start(&t, BACKEND_PG, n, 0, (const char *[]){ "--latency-ms", "20", NULL });
	pid = spawn_run(&t, "acme", NULL);
	kill_when_done(&t, pid, 1000);
	had = fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE collection = 'acme'");
	cr_assert(had >= 1000 && had < n, "%lld written before the kill", had);
	lock = PQconnectdb(test_dsn(BACKEND_PG));
	cr_assert_eq(PQstatus(lock), CONNECTION_OK, "%s", PQerrorMessage(lock));
	r = PQexec(lock, "SELECT pg_advisory_lock(7247001)");
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(lock));
	PQclear(r);
	cr_assert((trunc = fopen(t.log, "w")));
	fclose(trunc);
	setenv("EMBFILL_TEST_HOLD", "counts:7247001", 1);
	pid = spawn_run(&t, "acme", (const char *[]){ "--resume", NULL });
	unsetenv("EMBFILL_TEST_HOLD");
	/* the run writes a good part of what is left while its counts wait */
	for (int i = 0; i < 2400 && seen < had + 1000; i++) {
		cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the run ended with its counts held");
		usleep(25 * 1000);
		seen = fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE"
				   " collection = 'acme'");
	}
	cr_assert_geq(seen, had + 1000, "the resumed run waited for its counts");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE"
				 " '%pg_advisory_lock_shared(7247001)%' AND wait_event_type = 'Lock'"),
		     1, "the counts were not held while the run wrote");
	r = PQexec(lock, "SELECT pg_advisory_unlock(7247001)");
	PQclear(r);
	PQfinish(lock);
	cr_assert_eq(wait_exit(pid, 120), 0);
	log = slurp(t.log);
	snprintf(want, sizeof(want), "before  chunks %lld, embedded %lld, missing %lld,", n, had,
		 n - had);
	HAS(log, want);
	snprintf(want, sizeof(want), "counted: %lld chunks were left when the run resumed",
		 n - had);
	HAS(log, want);
	/* the killed worker is not listed as running any more */
	cr_expect_null(strstr(log, ", running\n"), "%s", log);
	HAS(log, ", failed\n");
	free(log);
	cr_expect_eq(fx_ll(&t.f, "SELECT total FROM @T.runs"), n, "the run's total");
	expect_exact(&t.f, "acme", n);
	rt_stop(&t);
}

/* PGlite serves one connection at a time and holds a second until the
 * first closes: the counts of a resumed run get no connection beside it, so
 * the run counts on its own before its first write, and ends. */
Test(pglite_run, a_resumed_run_counts_on_its_own_connection_when_there_is_no_second,
     .timeout = 180)
{
	struct rt t;
	const long long n = 600;
	long long had;
	char *log, want[160];
	int pid;
	FILE *trunc;

	rt_start(&t, BACKEND_PGLITE, n, 0, (const char *[]){ "--latency-ms", "40", NULL });
	add_settings(&t.f, "BATCH_SIZE=20\n");
	pid = spawn_run(&t, "acme", NULL);
	/* the database is the run's alone meanwhile: the service says how far
	 * it got */
	for (int i = 0; i < 2400 && embedder_stat(&t.e, "items") < 200; i++) {
		cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the run ended before the kill");
		usleep(25 * 1000);
	}
	kill(pid, SIGKILL);
	cr_assert_eq(wait_exit(pid, 10), 128 + SIGKILL);
	had = fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE collection = 'acme'");
	cr_assert(had < n, "%lld written before the kill", had);
	cr_assert((trunc = fopen(t.log, "w")));
	fclose(trunc);
	pid = spawn_run(&t, "acme", (const char *[]){ "--resume", NULL });
	cr_assert_eq(wait_exit(pid, 150), 0);
	log = slurp(t.log);
	HAS(log, "counting before the first write");
	snprintf(want, sizeof(want), "before  chunks %lld, embedded %lld, missing %lld,", n, had,
		 n - had);
	HAS(log, want);
	free(log);
	expect_exact(&t.f, "acme", n);
	rt_stop(&t);
}

/* A backfill leaves the planner's statistics of the vectors' table current:
 * status and verify right after it otherwise plan for the empty table. */
Test(pg_run, a_backfill_leaves_the_statistics_of_its_table_current, .timeout = 120)
{
	struct rt t;
	struct proc_result r;

	rt_start(&t, BACKEND_PG, 1500, 0, NULL);
	cr_assert_eq(fx_ll(&t.f, "SELECT count(*) FROM pg_stat_user_tables WHERE relid ="
				 " '@S.document_embeddings'::regclass AND last_analyze IS NOT NULL"), 0);
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s", r.err);
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM pg_stat_user_tables WHERE relid ="
				 " '@S.document_embeddings'::regclass AND last_analyze IS NOT NULL"), 1,
		     "the run did not analyze the table it filled");
	cr_expect_eq(fx_ll(&t.f, "SELECT reltuples::bigint FROM pg_class WHERE oid ="
				 " '@S.document_embeddings'::regclass"), 1500);
	rt_stop(&t);
}

static void signal_stops_and_resumes(int sig)
{
	struct rt t;
	struct proc_result r;
	int pid;

	rt_start(&t, BACKEND_PG, 3000, 0, (const char *[]){ "--latency-ms", "60", NULL });
	pid = spawn_run(&t, "acme", NULL);
	wait_running(&t.f);
	kill(pid, sig);
	cr_assert_eq(wait_exit(pid, 60), 5, "a signal must checkpoint and exit 5");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'interrupted'"), 1);
	/* everything up to the checkpoint is written */
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_chunks c WHERE c.id <="
				 " (SELECT checkpoint_chunk_id FROM @T.runs) AND NOT EXISTS (SELECT 1"
				 " FROM @S.document_embeddings e WHERE e.chunk_id = c.id)"), 0);
	cr_expect_lt(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 3000,
		     "the run was not stopped early");
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--resume", NULL }), 0, "%s",
		     r.err);
	proc_result_free(&r);
	expect_exact(&t.f, "acme", 3000);
	rt_stop(&t);
}

Test(pg_run, sigterm_checkpoints_exits_5_and_resumes, .timeout = 120)
{
	signal_stops_and_resumes(SIGTERM);
}
Test(pg_run, sighup_checkpoints_exits_5_and_resumes, .timeout = 120)
{
	signal_stops_and_resumes(SIGHUP);
}
Test(pg_run, sigint_checkpoints_exits_5_and_resumes, .timeout = 120)
{
	signal_stops_and_resumes(SIGINT);
}

Test(pg_run, the_end_of_the_window_stops_cleanly_with_exit_5, .timeout = 120)
{
	struct rt t;
	struct proc_result r;
	char until[16];
	time_t end = time(NULL) + 2;
	struct tm tm;

	localtime_r(&end, &tm);
	strftime(until, sizeof(until), "%H:%M:%S", &tm);
	rt_start(&t, BACKEND_PG, 5000, 0, (const char *[]){ "--latency-ms", "100", NULL });
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--until", until, NULL }), 5,
		     "%s\n%s", r.out, r.err);
	HAS(r.err, "the maintenance window ended");
	HAS(r.err, "--resume");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'interrupted'"), 1);
	cr_expect_gt(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	cr_expect_lt(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 5000);
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--until", "25:00", NULL }), 2);
	HAS(r.err, "is not a time of day");
	proc_result_free(&r);
	rt_stop(&t);
}

/* --- a faulty service ----------------------------------------------------------- */

Test(pg_run, service_faults_never_write_a_bad_vector, .timeout = 180)
{
	struct rt t;
	struct proc_result r;
	struct embedder_proc clean;

	rt_start(&t, BACKEND_PG, 600, 0, (const char *[]){
		"--seed", "7", "--fail-500", "0.1", "--fail-429", "0.1", "--retry-after", "0",
		"--malformed-rate", "0.05", "--wrong-dim-rate", "0.05", "--nan-rate", "0.05",
		"--wrong-count-rate", "0.05", "--drop-rate", "0.05", "--max-batch", "40",
		"--reject-marker", "POISON", NULL });
	fx_sql(&t.f, "UPDATE @S.document_chunks SET content = content || ' POISON'"
		     " WHERE id IN (7, 300, 555)");
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s\n%s", r.out, r.err);
	HAS(r.out, "597 written, 3 quarantined of 600");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.quarantine WHERE chunk_id IN (7, 300, 555)"
				 " AND reason <> ''"), 3);
	/* as real[], whichever type schema init chose (vector when the server
	 * has pgvector) */
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE"
				 " 'NaN'::real = ANY(embedding::real[])"
				 " OR cardinality(embedding::real[]) <> 8"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 597);
	cr_assert_eq(embedder_start(&clean, (const char *[]){ "--dim", "8", NULL }), 0);
	for (long long id = 1; id <= 600; id += 37)
		if (id != 7 && id != 300 && id != 555)
			expect_vector_of(&t, &clean, id);
	embedder_stop(&clean);
	/* quarantined chunks are skipped until asked for */
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s", r.err);
	HAS(r.out, "0 written, 0 quarantined of 0");
	proc_result_free(&r);
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--retry-quarantined", NULL }), 0);
	HAS(r.out, "0 written, 3 quarantined of 3");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT sum(attempts) FROM @T.quarantine"), 6);
	rt_stop(&t);
}

/* --- texts that cannot be sent, runs that do not converge -------------------- */

/* Runs SQL on another database of the test cluster (libpq's own encoding
 * there: SQL_ASCII passes bytes as they are). */
static void db_exec(const char *dsn, const char *sql)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r;

	cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
	r = PQexec(c, sql);
	cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
		  "%s\n%s", PQresultErrorMessage(r), sql);
	PQclear(r);
	PQfinish(c);
}

static long long db_ll(const char *dsn, const char *sql)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r = PQexec(c, sql);
	long long v;

	cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s\n%s",
		  PQresultErrorMessage(r), sql);
	v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* A SQL_ASCII database stores any bytes: one chunk that is not UTF-8 once
 * failed every run (the server refused to hand it out as UTF-8).  It is
 * quarantined with its reason, the others are embedded, and later runs
 * skip it. */
Test(pg_run, a_text_that_is_not_utf8_is_quarantined_and_the_others_embedded, .timeout = 120)
{
	struct fx f;
	struct embedder_proc e;
	struct proc_result r;
	char *db = unique_name("ascii"), *dsn = NULL, *extra = NULL, *sql = NULL;
	const char *base = test_dsn(BACKEND_PG), *cut = strstr(base, " dbname=");
	const char *emb[] = { "--dim", "8", "--model", "m1", NULL };
	cJSON *arr;

	cr_assert(cut);
	cr_assert(asprintf(&sql, "CREATE DATABASE %s ENCODING 'SQL_ASCII' TEMPLATE template0"
			   " LC_COLLATE 'C' LC_CTYPE 'C'", db) > 0);
	sql_exec(BACKEND_PG, sql);
	free(sql);
	cr_assert(asprintf(&dsn, "%.*s dbname=%s", (int)(cut - base), base, db) > 0);
	cr_assert_eq(embedder_start(&e, emb), 0);
	cr_assert(asprintf(&extra, "DATABASE_URL=\"%s\"\nEMBED_PROVIDER=openai\nEMBED_URL=%s\n"
			   "EMBED_DIM=8\n", dsn, e.url) > 0);
	fx_init(&f, BACKEND_PG, extra);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "schema", "init", "--dim", "8", NULL }), 0,
		     "%s", r.err);
	proc_result_free(&r);
	cr_assert(asprintf(&sql,
		"INSERT INTO %s.documents (id, collection, title, body) VALUES (1, 'acme', 't', 'b');"
		"INSERT INTO %s.document_chunks (id, document_id, collection, chunk_index, content)"
		" SELECT g, 1, 'acme', g, 'valid text ' || g FROM generate_series(1, 9) g;"
		"INSERT INTO %s.document_chunks (id, document_id, collection, chunk_index, content)"
		" VALUES (10, 1, 'acme', 10, E'bad \\xff\\xfe bytes')", f.schema, f.schema,
		f.schema) > 0);
	db_exec(dsn, sql);
	free(sql);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						      NULL }), 0, "%s\n%s", r.out, r.err);
	HAS(r.out, "9 written, 1 quarantined of 10");
	proc_result_free(&r);
	cr_assert(asprintf(&sql, "SELECT count(*) FROM %s.quarantine WHERE chunk_id = 10"
			   " AND reason LIKE '%%not valid UTF-8 (byte 0xff at offset 4)%%'", f.tool) > 0);
	cr_expect_eq(db_ll(dsn, sql), 1);
	free(sql);
	cr_assert(asprintf(&sql, "SELECT count(*) FROM %s.document_embeddings"
			   " WHERE embedding IS NOT NULL AND chunk_id <> 10", f.schema) > 0);
	cr_expect_eq(db_ll(dsn, sql), 9);
	free(sql);
	arr = fx_status(&f, (const char *[]){ "-C", "acme", NULL });
	cr_expect_eq(fx_num(fx_row(arr, "acme"), "quarantined"), 1);
	cr_expect_eq(fx_num(fx_row(arr, "acme"), "embedded"), 9);
	cJSON_Delete(arr);
	cr_expect_eq(fx_run(&f, &r, (const char *[]){ "verify", "-C", "acme", NULL }), 0, "%s",
		     r.out);
	HAS(r.out, "not valid UTF-8");
	proc_result_free(&r);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						      NULL }), 0, "%s", r.err);
	HAS(r.out, "0 written, 0 quarantined of 0");
	proc_result_free(&r);
	embedder_stop(&e);
	fx_free(&f);
	cr_assert(asprintf(&sql, "DROP DATABASE %s", db) > 0);
	sql_exec(BACKEND_PG, sql);
	free(sql);
	free(extra);
	free(dsn);
	free(db);
}

/* A vector that does not stick (here a trigger of the application's drops
 * chunk 7's) leaves the run short of what it set out to do: it says which
 * chunk and why, and exits 1 instead of 0. */
Test(pg_run, a_run_that_does_not_converge_exits_1_and_names_what_is_left, .timeout = 60)
{
	struct rt t;
	struct proc_result r;

	rt_start(&t, BACKEND_PG, 40, 0, NULL);
	fx_sql(&t.f, "CREATE FUNCTION @S.lose() RETURNS trigger LANGUAGE plpgsql AS"
		     " $$BEGIN IF NEW.chunk_id = 7 THEN NEW.embedding := NULL; END IF;"
		     " RETURN NEW; END$$;"
		     "CREATE TRIGGER lose BEFORE INSERT OR UPDATE ON @S.document_embeddings"
		     " FOR EACH ROW EXECUTE FUNCTION @S.lose()");
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 1, "%s\n%s", r.out, r.err);
	HAS(r.out, "left: chunk 7: no vector");
	HAS(r.err, "did not converge: 1 chunks");
	proc_result_free(&r);
	fx_sql(&t.f, "DROP TRIGGER lose ON @S.document_embeddings");
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 0, "%s\n%s", r.out, r.err);
	HAS(r.out, "1 written, 0 quarantined of 1");
	proc_result_free(&r);
	rt_stop(&t);
}

Test(pg_run, a_fatal_service_error_exits_4_and_records_the_run_failed, .timeout = 60)
{
	struct rt t;
	struct proc_result r;

	rt_start(&t, BACKEND_PG, 50, 0, NULL);
	add_settings(&t.f, "EMBED_MODEL=not-pulled\n");
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 4, "%s\n%s", r.out, r.err);
	HAS(r.err, "not-pulled");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'failed'"
				 " AND error <> ''"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	rt_stop(&t);
}

Test(pg_run, a_service_that_times_out_stops_with_exit_4_and_resumes, .timeout = 120)
{
	struct rt t;
	struct proc_result r;
	struct embedder_proc fast;

	rt_start(&t, BACKEND_PG, 300, 0, (const char *[]){ "--latency-ms", "2500", NULL });
	add_settings(&t.f, "EMBED_TIMEOUT_S=1\nEMBED_RETRY_BUDGET_S=2\n");
	cr_assert_eq(run_coll(&t, &r, "acme", NULL), 4, "%s\n%s", r.out, r.err);
	HAS(r.err, "longer than the retry budget (EMBED_RETRY_BUDGET_S=2)");
	HAS(r.err, "no complete answer within 1000 ms");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'failed'"), 1);
	/* the service recovers: the failed run is resumed and completes */
	cr_assert_eq(embedder_start(&fast, (const char *[]){ "--dim", "8", "--model", "m1", NULL }),
		     0);
	point_at(&t, &fast);
	add_settings(&t.f, "EMBED_TIMEOUT_S=30\n");
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--resume", NULL }), 0, "%s",
		     r.err);
	proc_result_free(&r);
	expect_exact(&t.f, "acme", 300);
	embedder_stop(&fast);
	rt_stop(&t);
}

/* --- a service that goes away and comes back ------------------------------------ */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	cr_assert(fread(text, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return text;
}

/* Waits until the background run's output holds what, while it runs. */
static void wait_log(struct rt *t, int pid, const char *what)
{
	for (int i = 0; i < 1200; i++) {
		char *log = slurp(t->log);
		bool seen = strstr(log, what) != NULL;

		free(log);
		if (seen)
			return;
		cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the run ended before \"%s\"", what);
		usleep(25 * 1000);
	}
	cr_assert_fail("the run never said \"%s\"", what);
}

/* The sandbox embedder stops (by PID) while the run is writing. */
static int stop_service_mid_run(struct rt *t, const char *const *extra)
{
	int pid = spawn_run(t, "acme", extra);

	wait_running(&t->f);
	embedder_stop(&t->e);
	return pid;
}

/* The same embedder again, on the port the run knows. */
static void restart_service(struct rt *t, int port)
{
	char p[16];

	snprintf(p, sizeof(p), "%d", port);
	cr_assert_eq(embedder_start(&t->e, (const char *[]){ "--dim", "8", "--model", "m1",
							     "--port", p, NULL }), 0,
		     "the embedder did not start again on port %d", port);
}

static void expect_clean_vectors(struct rt *t, long long n)
{
	struct embedder_proc clean;

	cr_assert_eq(embedder_start(&clean, (const char *[]){ "--dim", "8", NULL }), 0);
	for (long long id = 1; id <= n; id += n / 17)
		expect_vector_of(t, &clean, id);
	embedder_stop(&clean);
}

/* A routine restart of the service: away for about ten seconds, then
 * back on its port.  The run waits it out (the retry budget is five
 * minutes), says so, and completes exact. */
Test(pg_run, a_service_restart_is_waited_out_and_the_run_completes_exact, .timeout = 180)
{
	struct rt t;
	int pid, port;
	char *log;
	time_t back;

	rt_start(&t, BACKEND_PG, 3000, 0, (const char *[]){ "--latency-ms", "200", NULL });
	port = t.e.port;
	pid = stop_service_mid_run(&t, (const char *[]){ "--concurrency", "1", NULL });
	back = time(NULL) + 10;
	wait_log(&t, pid, "waiting for the service since ");
	while (time(NULL) < back) {
		cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the run ended while the service "
			     "was away");
		usleep(100 * 1000);
	}
	restart_service(&t, port);
	cr_assert_eq(wait_exit(pid, 150), 0, "the run did not complete after the restart");
	log = slurp(t.log);
	HAS(log, "retry in ");
	free(log);
	expect_exact(&t.f, "acme", 3000);
	expect_clean_vectors(&t, 3000);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'completed'"
				 " AND done = 3000"), 1);
	rt_stop(&t);
}

/* With a budget of a few seconds the same outage ends the run: exit 4, a
 * message that names the budget, the run failed and resumable. */
Test(pg_run, a_service_away_longer_than_the_budget_exits_4_and_resumes, .timeout = 120)
{
	struct rt t;
	struct proc_result r;
	int pid, port;
	char *log;

	rt_start(&t, BACKEND_PG, 3000, 0, (const char *[]){ "--latency-ms", "200", NULL });
	add_settings(&t.f, "EMBED_RETRY_BUDGET_S=3\n");
	port = t.e.port;
	pid = stop_service_mid_run(&t, (const char *[]){ "--concurrency", "1", NULL });
	cr_assert_eq(wait_exit(pid, 60), 4, "a service away past the budget must exit 4");
	log = slurp(t.log);
	HAS(log, "has been unavailable since ");
	HAS(log, "longer than the retry budget (EMBED_RETRY_BUDGET_S=3)");
	HAS(log, "hint: check the service");
	free(log);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'failed'"), 1);
	cr_expect_lt(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 3000);
	restart_service(&t, port);
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--resume", NULL }), 0, "%s",
		     r.err);
	proc_result_free(&r);
	expect_exact(&t.f, "acme", 3000);
	expect_clean_vectors(&t, 3000);
	rt_stop(&t);
}

/* The database lost mid-run (the server ends the run's connections while
 * it waits for the service): exit 3, and the summary says the counts after
 * it are unknown instead of printing zeros for a collection of 3,000. */
Test(pg_run, a_database_lost_mid_run_leaves_the_after_counts_unknown, .timeout = 120)
{
	struct rt t;
	int pid;
	char *log;

	rt_start(&t, BACKEND_PG, 3000, 0, (const char *[]){ "--latency-ms", "200", NULL });
	/* this run's connections go by a name of their own: the cluster
	 * serves the other tests at the same time */
	setenv("PGAPPNAME", t.f.tool, 1);
	pid = stop_service_mid_run(&t, (const char *[]){ "--concurrency", "1", NULL });
	unsetenv("PGAPPNAME");
	wait_log(&t, pid, "waiting for the service since ");
	cr_assert(asprintf(&log, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid)"
				 " FROM pg_stat_activity WHERE application_name = '%s') x",
			   t.f.tool) > 0);
	cr_assert_geq(fx_ll(&t.f, log), 1, "the run's connections end");
	free(log);
	cr_assert_eq(wait_exit(pid, 60), 3, "a database lost mid-run must exit 3");
	log = slurp(t.log);
	HAS(log, "after   unknown: the database could not be read");
	cr_expect(!strstr(log, "after   chunks 0"), "after-counts printed as zeros:\n%s", log);
	free(log);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_chunks"
				 " WHERE collection = 'acme'"), 3000);
	rt_stop(&t);
}

/* Ctrl-C while the run waits for the service: it stops at once (the batches
 * waiting were not embedded, so none is lost), exit 5, and resumes exact. */
Test(pg_run, ctrl_c_while_waiting_for_the_service_stops_cleanly, .timeout = 120)
{
	struct rt t;
	struct proc_result r;
	int pid, port;

	rt_start(&t, BACKEND_PG, 3000, 0, (const char *[]){ "--latency-ms", "200", NULL });
	port = t.e.port;
	pid = stop_service_mid_run(&t, (const char *[]){ "--concurrency", "1", NULL });
	wait_log(&t, pid, "waiting for the service since ");
	kill(pid, SIGINT);
	cr_assert_eq(wait_exit(pid, 20), 5, "Ctrl-C while waiting must checkpoint and exit 5");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'interrupted'"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_chunks c WHERE c.id <="
				 " (SELECT checkpoint_chunk_id FROM @T.runs) AND NOT EXISTS (SELECT 1"
				 " FROM @S.document_embeddings e WHERE e.chunk_id = c.id)"), 0);
	restart_service(&t, port);
	cr_assert_eq(run_coll(&t, &r, "acme", (const char *[]){ "--resume", NULL }), 0, "%s",
		     r.err);
	proc_result_free(&r);
	expect_exact(&t.f, "acme", 3000);
	rt_stop(&t);
}

/* --historylog: the entry at the top of the file, with the command that
 * reproduces the run, the verdict of verify, and no secret. */
Test(pg_run, historylog_entry_holds_the_command_and_no_secret, .timeout = 60)
{
	struct rt t;
	struct proc_result r;
	char line[512], *hist = NULL, *text;
	FILE *f;
	long n;

	rt_start(&t, BACKEND_PG, 120, 0, NULL);
	cr_assert(asprintf(&hist, "%s/agents/historylog.md", t.f.dir) > 0);
	snprintf(line, sizeof(line), "HISTORYLOG=%s\n", hist);
	add_settings(&t.f, line);
	cr_assert_eq(run_embfill((const char *[]){ "--config", t.f.config, "run", "-C", "acme",
						   "--confirm", "acme", "--note", "window 02:00-04:00",
						   "--historylog", NULL },
				 (const char *[]){ "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM",
						   "EMBED_API_KEY=sk-test-PLANTED-77aa", NULL },
				 t.f.dir, &r), 0, "%s", r.err);
	HAS(r.out, "historylog: entry written at the top of");
	cr_expect_null(strstr(r.out, "PLANTED"));
	cr_expect_null(strstr(r.err, "PLANTED"));
	proc_result_free(&r);
	f = fopen(hist, "r");
	cr_assert(f, "no historylog at %s", hist);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	cr_assert(fread(text, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	cr_expect_eq(strncmp(text, "# Historylog", 12), 0, "%s", text);
	HAS(text, "- acme - run 1");
	HAS(text, "run -C acme --confirm acme --batch-size 100 --concurrency 2 --note "
		  "'window 02:00-04:00'");
	HAS(text, "**Verification:** passed: 120 chunks, 120 fresh vectors");
	HAS(text, "window 02:00-04:00");
	cr_expect_null(strstr(text, "PLANTED"));
	free(text);
	free(hist);
	rt_stop(&t);
}

/* --- the command a historylog entry records --------------------------------- */

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	cr_assert(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	cr_assert(fread(text, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return text;
}

/* The command of the newest entry: the first ```sh block. */
static char *entry_command(const char *hist)
{
	const char *start = strstr(hist, "```sh\n"), *end;

	cr_assert(start, "no command block in:\n%s", hist);
	start += 6;
	end = strstr(start, "\n```");
	cr_assert(end, "unterminated command block in:\n%s", hist);
	return strndup(start, (size_t)(end - start));
}

/* Runs a run with args and --historylog, and checks the command its entry
 * records: it parses as shell, holds no secret, and run again as written
 * (with this build's binary) it succeeds against the same database. */
static char *recorded_and_rerun(struct rt *t, const char *const *args, const char *const *env)
{
	struct proc_result r;
	char *hist = NULL, *text, *cmd, *rerun = NULL, line[600];
	const char *argv[24] = { "--config", t->f.config, "run", "-C", "acme", "--confirm", "acme",
				 "--historylog" };
	size_t n = 8;

	snprintf(line, sizeof(line), "HISTORYLOG=%s/h.md\n", t->f.dir);
	add_settings(&t->f, line);
	while (args && *args && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	cr_assert_eq(run_embfill(argv, env, t->f.dir, &r), 0, "%s", r.err);
	cr_expect_null(strstr(r.out, "PLANTED"));
	cr_expect_null(strstr(r.err, "PLANTED"));
	proc_result_free(&r);
	cr_assert(asprintf(&hist, "%s/h.md", t->f.dir) > 0);
	text = read_all(hist);
	cmd = entry_command(text);
	cr_expect_null(strstr(text, "PLANTED"), "%s", text);
	cr_assert_eq(proc_run((const char *[]){ "bash", "-n", "-c", cmd, NULL }, NULL, NULL, &r), 0,
		     "the recorded command is not shell:\n%s\n%s", cmd, r.err);
	proc_result_free(&r);
	cr_assert_eq(strncmp(cmd, "embfill ", 8), 0, "%s", cmd);
	cr_assert(asprintf(&rerun, "'%s' %s", getenv("EMBFILL_BIN"), cmd + 8) > 0);
	cr_assert_eq(proc_run((const char *[]){ "sh", "-c", rerun, NULL }, env, t->f.dir, &r), 0,
		     "the recorded command failed as written:\n%s\n%s%s", cmd, r.out, r.err);
	proc_result_free(&r);
	free(rerun);
	free(text);
	free(hist);
	return cmd;
}

/* The password lives in the settings file (mode 600), where it belongs:
 * the command points at the file and never holds the password. */
Test(pg_run, historylog_command_of_a_keyword_dsn_with_a_password_is_shell, .timeout = 60)
{
	struct rt t;
	char line[600], *cmd;

	rt_start(&t, BACKEND_PG, 30, 0, NULL);
	snprintf(line, sizeof(line), "DATABASE_URL=\"%s password='pw PLANTED \\\\'1\\\\''\"\n",
		 test_dsn(BACKEND_PG));
	add_settings(&t.f, line);
	cmd = recorded_and_rerun(&t, (const char *[]){ "--note", "it's the window", NULL },
				 (const char *[]){ "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM",
						   "PGPASSWORD", NULL });
	HAS(cmd, "--config");
	free(cmd);
	rt_stop(&t);
}

/* A URI with a user name on the command line: before, the redaction of the
 * entry took "postgres@" for URL userinfo and dropped it, so the command
 * connected as another role. */
Test(pg_run, historylog_command_of_a_uri_dsn_keeps_the_user_and_reruns, .timeout = 60)
{
	struct rt t;
	char *uri = NULL, *cmd;
	const char *host = NULL, *port = "5432";
	PQconninfoOption *o = PQconninfoParse(test_dsn(BACKEND_PG), NULL);

	for (PQconninfoOption *p = o; p && p->keyword; p++) {
		if (strcmp(p->keyword, "host") == 0)
			host = p->val;
		if (strcmp(p->keyword, "port") == 0 && p->val)
			port = p->val;
	}
	rt_start(&t, BACKEND_PG, 30, 0, NULL);
	cr_assert(asprintf(&uri, "postgresql://postgres@/postgres?host=%s&port=%s"
				 "&application_name=nightly%%20backfill", host, port) > 0);
	cmd = recorded_and_rerun(&t, (const char *[]){ "--dsn", uri, NULL },
				 (const char *[]){ "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM",
						   "PGPASSWORD", "PGUSER", "PGDATABASE", NULL });
	HAS(cmd, "--dsn '");
	HAS(cmd, "user=postgres");
	HAS(cmd, "application_name=");
	free(cmd);
	free(uri);
	PQconninfoFree(o);
	rt_stop(&t);
}
