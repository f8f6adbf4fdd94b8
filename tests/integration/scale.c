/*
 * scale.c - one run on several embedding endpoints and several workers,
 * coordinated by PostgreSQL: separate embfill processes on native
 * PostgreSQL (PGlite's server serves one session at a time), sandbox
 * embedders that compute a few requests at once like a GPU.
 *
 * What would break: two workers embedding one chunk, a chunk no lease
 * covers, a lease never taken over, a lease paged in its keys' text order
 * instead of their own, vectors of other weights written beside the
 * reference's, a dead endpoint or worker ending the run.
 */
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "embedder_proc.h"
#include "embfill/embed.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define BATCH 50
#define CONC 2

struct sc {
	struct fx f;
	struct embedder_proc e[2];
	int ne;
	int dim;
	char log[8][512];
};

/* A GPU: two requests computed at once, 50 ms each and 1 ms per input. */
static const char *const gpu[] = { "--compute-slots", "2", "--latency-ms", "50",
				   "--item-latency-ms", "1", NULL };

static void add_settings(struct fx *f, const char *text)
{
	FILE *cf = fopen(f->config, "a");

	cr_assert(cf);
	fputs(text, cf);
	fclose(cf);
}

static void start_embedder(struct sc *t, int i, const char *const *extra)
{
	const char *args[24];
	char dim[16];
	size_t n = 0;

	snprintf(dim, sizeof(dim), "%d", t->dim);
	args[n++] = "--dim";
	args[n++] = dim;
	args[n++] = "--model";
	args[n++] = "m1";
	for (const char *const *a = extra; a && *a && n < 22; a++)
		args[n++] = *a;
	args[n] = NULL;
	cr_assert_eq(embedder_start(&t->e[i], args), 0, "embedder %d did not start", i);
}

/* The settings of every worker: both endpoints, small leases, a short
 * lease timeout. */
static void point_at_endpoints(struct sc *t)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "EMBED_PROVIDER=openai\nEMBED_URL=%s%s%s\nEMBED_MODEL=m1\n"
		 "EMBED_DIM=%d\nBATCH_SIZE=%d\nEMBED_CONCURRENCY=%d\nLEASE_CHUNKS=300\n"
		 "LEASE_TIMEOUT_S=3\n", t->e[0].url, t->ne > 1 ? "," : "",
		 t->ne > 1 ? t->e[1].url : "", t->dim, BATCH, CONC);
	add_settings(&t->f, buf);
}

static void load_chunks(struct sc *t, long long n_acme, long long n_globex)
{
	char *sql = NULL;

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

static void sc_start(struct sc *t, int dim, int ne, const char *const *emb_args)
{
	char init_dim[16];
	struct proc_result r;

	memset(t, 0, sizeof(*t));
	t->dim = dim;
	t->ne = ne;
	fx_init(&t->f, BACKEND_PG, NULL);
	for (int i = 0; i < 8; i++)
		snprintf(t->log[i], sizeof(t->log[i]), "%s/worker%d.log", t->f.dir, i);
	for (int i = 0; i < ne; i++)
		start_embedder(t, i, emb_args);
	point_at_endpoints(t);
	snprintf(init_dim, sizeof(init_dim), "%d", dim);
	cr_assert_eq(fx_run(&t->f, &r, (const char *[]){ "schema", "init", "--dim", init_dim,
							 NULL }), 0, "%s", r.err);
	proc_result_free(&r);
}

static void sc_stop(struct sc *t)
{
	for (int i = 0; i < t->ne; i++)
		embedder_stop(&t->e[i]);
	fx_free(&t->f);
}

static int spawn_worker(struct sc *t, int i, const char *coll, const char *const *extra)
{
	const char *args[24] = { "--config", t->f.config, "run", "-C", coll, "--confirm", coll };
	const char *env[] = { "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM", "EMBED_URL", NULL };
	size_t n = 7;
	int pid;

	while (extra && *extra && n < 23)
		args[n++] = *extra++;
	args[n] = NULL;
	pid = spawn_embfill(args, env, t->f.dir, t->log[i]);
	cr_assert_gt(pid, 0);
	return pid;
}

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

/* Waits for sql (a count) to reach at least want, while pid runs. */
static void wait_for(struct sc *t, int pid, const char *sql, long long want, const char *what)
{
	for (int i = 0; i < 1200; i++) {
		if (fx_ll(&t->f, sql) >= want)
			return;
		cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the run ended before %s", what);
		usleep(25 * 1000);
	}
	cr_assert_fail("never: %s", what);
}

/* The run is set up (its leases made) and writing. */
static void wait_writing(struct sc *t, int pid)
{
	wait_for(t, pid, "SELECT count(*) FROM @T.runs r WHERE state = 'running' AND done > 0"
			 " AND EXISTS (SELECT 1 FROM @T.leases l WHERE l.run_id = r.id)", 1,
		 "the run wrote its first batch");
}

/* Inputs an embedder has embedded (its /stats). */
static long long items_of(const struct embedder_proc *e)
{
	cJSON *j = embedder_stats(e);
	long long n;

	cr_assert(j, "the embedder's /stats could not be read");
	cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "items")), "no \"items\" in its /stats");
	n = (long long)cJSON_GetObjectItem(j, "items")->valuedouble;
	cJSON_Delete(j);
	return n;
}

/* Every chunk of coll has exactly one current vector and no row is extra. */
static void expect_exact(struct sc *t, const char *coll, long long n)
{
	char *q1 = NULL, *q2 = NULL;

	cr_assert(asprintf(&q1, "SELECT count(*) FROM @S.document_chunks c JOIN"
				" @S.document_embeddings e ON e.chunk_id = c.id AND e.collection ="
				" c.collection WHERE c.collection = '%s' AND e.model = 'm1' AND e.dim = %d"
				" AND e.embedding IS NOT NULL AND e.content_sha256 ="
				" sha256(convert_to(c.content, 'UTF8'))", coll, t->dim) > 0);
	cr_assert(asprintf(&q2, "SELECT count(*) FROM @S.document_embeddings WHERE"
				" collection = '%s'", coll) > 0);
	cr_expect_eq(fx_ll(&t->f, q1), n, "%s: current vectors", coll);
	cr_expect_eq(fx_ll(&t->f, q2), n, "%s: embedding rows", coll);
	free(q1);
	free(q2);
}

/*
 * Each stored vector is its own chunk's: the vector a clean service gives
 * for the chunk's text, for every chunk of the collection (a vector filed
 * under a neighbour's key would pass the counts).
 */
static void expect_own_vectors(const char *rows, int dim)
{
	struct embedder_proc clean;
	char dims[16];
	const char *p = rows;
	size_t checked = 0;

	snprintf(dims, sizeof(dims), "%d", dim);
	cr_assert_eq(embedder_start(&clean, (const char *[]){ "--dim", dims, NULL }), 0);
	while (*p) {
		const char *texts[200];
		char *lines[200];
		struct ef_embed_config ec;
		struct ef_embed_result *res = NULL;
		struct ef_error err;
		size_t n = 0;

		while (*p && n < 200) {
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - p) : strlen(p);
			char *tab;

			lines[n] = strndup(p, len);
			tab = strchr(lines[n], '\t');
			cr_assert(tab, "row without a tab: %s", lines[n]);
			*tab = '\0';
			texts[n] = lines[n];
			n++;
			p += len + (nl ? 1 : 0);
		}
		ef_embed_config_defaults(&ec);
		ec.provider = EF_EMBED_TEI;
		ec.url = clean.url;
		ec.dim = dim;
		cr_assert_eq(ef_embed_batch(&ec, texts, n, &res, &err), EF_OK, "%s", err.msg);
		for (size_t i = 0; i < n; i++) {
			char *v = lines[i] + strlen(lines[i]) + 1;

			for (int k = 0; k < dim; k++) {
				float f = strtof(v, &v);

				cr_expect(fabsf(f - res->vectors[i * (size_t)dim + (size_t)k]) < 1e-6f,
					  "\"%s\" [%d]: stored %g, its own %g", lines[i], k, (double)f,
					  (double)res->vectors[i * (size_t)dim + (size_t)k]);
				if (*v == ',')
					v++;
			}
			free(lines[i]);
			checked++;
		}
		ef_embed_result_free(res);
	}
	cr_expect_gt(checked, 0);
	embedder_stop(&clean);
}

static void expect_own(struct sc *t, const char *coll)
{
	char *q = NULL, *rows;

	cr_assert(asprintf(&q, "SELECT coalesce(string_agg(c.content || E'\\t' ||"
			       " array_to_string(e.embedding::real[], ','), E'\\n' ORDER BY c.id), '')"
			       " FROM @S.document_chunks c JOIN @S.document_embeddings e"
			       " ON e.chunk_id = c.id WHERE c.collection = '%s'", coll) > 0);
	rows = fx_text(&t->f, q);
	expect_own_vectors(rows, t->dim);
	free(rows);
	free(q);
}

static const char fingerprint_sql[] =
	"SELECT md5(coalesce(string_agg(chunk_id::text || '|' || model || '|' || dim || '|' ||"
	" encode(content_sha256, 'hex') || '|' || embedding::text || '|' || embedded_at::text"
	" || '|' || coalesce(run_id::text, ''), ',' ORDER BY chunk_id), ''))"
	" FROM @S.document_embeddings WHERE collection = 'globex'";

static void verify_ok(struct sc *t, const char *coll)
{
	struct proc_result r;

	cr_expect_eq(fx_run(&t->f, &r, (const char *[]){ "verify", "-C", coll, NULL }), 0,
		     "verify:\n%s%s", r.out, r.err);
	proc_result_free(&r);
}

static void embed_globex(struct sc *t)
{
	struct proc_result r;

	cr_assert_eq(fx_run(&t->f, &r, (const char *[]){ "run", "-C", "globex", "--confirm",
							 "globex", NULL }), 0, "%s", r.err);
	proc_result_free(&r);
}

/* --- several workers, several endpoints --------------------------------------- */

static void workers_finish_exact(int nworkers)
{
	const long long n = 6000;
	struct sc t;
	int pid[3];
	char *before, *after, *log, *hist = NULL;
	long long items;

	sc_start(&t, 8, 2, gpu);
	load_chunks(&t, n, 200);
	embed_globex(&t);
	if (nworkers == 2) {
		struct proc_result r;

		cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "plan", "-C", "acme", NULL }), 0,
			     "%s", r.err);
		HAS(r.out, "endpoint 1 of 2: ");
		HAS(r.out, "endpoint 2 of 2: ");
		HAS(r.out, "2 of 2 endpoints answer");
		proc_result_free(&r);
	}
	cr_assert(asprintf(&hist, "HISTORYLOG=%s/h.md\n", t.f.dir) > 0);
	add_settings(&t.f, hist);
	free(hist);
	before = fx_text(&t.f, fingerprint_sql);
	items = items_of(&t.e[0]) + items_of(&t.e[1]);
	pid[0] = spawn_worker(&t, 0, "acme", (const char *[]){ "--historylog", NULL });
	wait_writing(&t, pid[0]);
	for (int i = 1; i < nworkers; i++)
		pid[i] = spawn_worker(&t, i, "acme", (const char *[]){ "--join", NULL });
	for (int i = 0; i < nworkers; i++) {
		int rc = wait_exit(pid[i], 120);

		log = slurp(t.log[i]);
		cr_expect_eq(rc, 0, "worker %d exited %d:\n%s", i, rc, log);
		free(log);
	}
	expect_exact(&t, "acme", n);
	expect_own(&t, "acme");
	after = fx_text(&t.f, fingerprint_sql);
	cr_expect_str_eq(after, before, "the other collection changed");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE collection = 'acme'"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE collection = 'acme' AND"
				 " state = 'completed' AND done = 6000 AND written = 6000"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.workers w JOIN @T.runs r ON r.id ="
				 " w.run_id WHERE r.collection = 'acme' AND w.state = 'finished'"),
		     nworkers, "the run's record lists every worker");
	cr_expect_eq(fx_ll(&t.f, "SELECT sum(w.done) FROM @T.workers w JOIN @T.runs r ON r.id ="
				 " w.run_id WHERE r.collection = 'acme'"), n, "a chunk done twice");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.leases l JOIN @T.runs r ON r.id ="
				 " l.run_id WHERE r.collection = 'acme' AND l.state <> 'done'"), 0);
	/* nothing embedded twice: the chunks, and the probe texts once per
	 * endpoint and worker */
	cr_expect_leq(items_of(&t.e[0]) + items_of(&t.e[1]) - items,
		      n + (long long)EF_EMBED_PROBE_TEXTS * 2 * nworkers);
	verify_ok(&t, "acme");
	/* the worker that ended the run wrote the one entry, with the command
	 * that started it */
	cr_assert(asprintf(&hist, "%s/h.md", t.f.dir) > 0);
	log = slurp(hist);
	HAS(log, "- acme - run ");
	cr_expect_null(strstr(strstr(log, "- acme - run ") + 1, "- acme - run "), "%s", log);
	HAS(log, "run -C acme --confirm acme");
	cr_expect_null(strstr(log, "--join"), "%s", log);
	free(log);
	free(hist);
	free(before);
	free(after);
	sc_stop(&t);
}

Test(pg_scale, two_workers_on_two_endpoints_finish_exact, .timeout = 240)
{
	workers_finish_exact(2);
}

Test(pg_scale, three_workers_on_two_endpoints_finish_exact, .timeout = 240)
{
	workers_finish_exact(3);
}

/*
 * kill -9 of a worker holding a lease: the other takes it over once its
 * heartbeat is LEASE_TIMEOUT_S old, from its checkpoint.  The service
 * embeds at most the chunks, the killed worker's window (its requests in
 * flight and the batch it was writing) and the probes.
 */
Test(pg_scale, kill_9_of_a_worker_mid_lease_is_taken_over_and_exact, .timeout = 240)
{
	const long long n = 6000, window = (CONC * 2 + 1) * BATCH;
	struct sc t;
	int lead, joiner, rc;
	long long items;
	char *log;

	sc_start(&t, 8, 2, gpu);
	load_chunks(&t, n, 0);
	items = items_of(&t.e[0]) + items_of(&t.e[1]);
	lead = spawn_worker(&t, 0, "acme", NULL);
	wait_writing(&t, lead);
	joiner = spawn_worker(&t, 1, "acme", (const char *[]){ "--join", NULL });
	wait_for(&t, lead, "SELECT count(*) FROM @T.workers WHERE done > 0", 2,
		 "both workers wrote");
	cr_assert_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.leases l JOIN @T.workers w ON"
				 " w.id = l.worker_id WHERE w.pid <> 0 AND l.state = 'taken'"
				 " AND w.id = (SELECT min(id) FROM @T.workers)") > 0, 1,
		     "the first worker held no lease when it was killed");
	kill(lead, SIGKILL);
	cr_expect_eq(wait_exit(lead, 10), 128 + SIGKILL);
	rc = wait_exit(joiner, 180);
	log = slurp(t.log[1]);
	cr_assert_eq(rc, 0, "the worker left exited %d:\n%s", rc, log);
	HAS(log, "taken over from ");
	free(log);
	expect_exact(&t, "acme", n);
	expect_own(&t, "acme");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'completed'"), 1);
	cr_expect_geq(fx_ll(&t.f, "SELECT sum(takeovers) FROM @T.leases"), 1);
	cr_expect_leq(items_of(&t.e[0]) + items_of(&t.e[1]) - items,
		      n + window + (long long)EF_EMBED_PROBE_TEXTS * 2 * 2,
		      "the takeover embedded more than the killed worker's window again");
	verify_ok(&t, "acme");
	sc_stop(&t);
}

/* One endpoint dies mid-run: its batches go to the other, the run ends. */
Test(pg_scale, an_endpoint_killed_mid_run_the_run_finishes_on_the_other, .timeout = 180)
{
	const long long n = 4000;
	struct sc t;
	int pid, rc;
	char *log;

	sc_start(&t, 8, 2, gpu);
	load_chunks(&t, n, 0);
	pid = spawn_worker(&t, 0, "acme", NULL);
	wait_writing(&t, pid);
	kill(t.e[1].pid, SIGKILL);
	waitpid(t.e[1].pid, NULL, 0);
	t.e[1].pid = 0;
	rc = wait_exit(pid, 150);
	log = slurp(t.log[0]);
	cr_assert_eq(rc, 0, "the run exited %d:\n%s", rc, log);
	free(log);
	expect_exact(&t, "acme", n);
	expect_own(&t, "acme");
	cr_expect_gt(items_of(&t.e[0]), n / 2, "the endpoint left did not carry the run");
	sc_stop(&t);
}

/* plan with one of two endpoints away: it is named, and the probe's
 * batches go to the one that answers, which gives the estimate its range. */
Test(pg_scale, plan_probes_only_the_endpoints_that_answer, .timeout = 120)
{
	struct sc t;
	struct proc_result r;
	long long items;

	sc_start(&t, 8, 2, gpu);
	load_chunks(&t, 600, 0);
	kill(t.e[1].pid, SIGKILL);
	waitpid(t.e[1].pid, NULL, 0);
	t.e[1].pid = 0;
	items = items_of(&t.e[0]);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "plan", "-C", "acme", NULL }), 0,
		     "%s%s", r.out, r.err);
	HAS(r.out, "endpoint 1 of 2: ");
	HAS(r.out, "endpoint 2 of 2: ");
	HAS(r.out, "1 of 2 endpoints answer");
	HAS(r.out, ", likely ");
	HAS(r.out, "in flight on 1 endpoint (");
	cr_expect_gt(items_of(&t.e[0]) - items, 50, "the probe's batches did not reach the "
		     "endpoint that answers");
	proc_result_free(&r);
	expect_exact(&t, "acme", 0);
	sc_stop(&t);
}

/* Another model behind the same name (the use-lite encoder where the
 * first endpoint hashes): refused with the evidence, nothing written. */
Test(pg_scale, an_endpoint_with_other_weights_is_refused_before_anything_is_written,
     .timeout = 180)
{
	struct sc t;
	struct proc_result r;
	const char *lite[] = { "--backend", "use-lite", NULL };

	memset(&t, 0, sizeof(t));
	t.dim = 512;
	t.ne = 2;
	fx_init(&t.f, BACKEND_PG, NULL);
	for (int i = 0; i < 8; i++)
		snprintf(t.log[i], sizeof(t.log[i]), "%s/worker%d.log", t.f.dir, i);
	start_embedder(&t, 0, NULL);
	start_embedder(&t, 1, lite);
	point_at_endpoints(&t);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "schema", "init", "--dim", "512", NULL }),
		     0, "%s", r.err);
	proc_result_free(&r);
	load_chunks(&t, 500, 0);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
							NULL }), 4, "%s\n%s", r.out, r.err);
	HAS(r.err, "gives other vectors than");
	HAS(r.err, t.e[1].url + 7);
	HAS(r.err, "cosine ");
	HAS(r.err, "behind the name \"m1\"");
	HAS(r.err, "hint: every endpoint of EMBED_URL must serve the same model");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.leases"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'failed' AND"
				 " error LIKE '%gives other vectors%'"), 1);
	/* doctor compares the endpoints too */
	cr_expect_eq(fx_run(&t.f, &r, (const char *[]){ "doctor", NULL }), 1, "%s", r.out);
	HAS(r.out, "gives other vectors than");
	proc_result_free(&r);
	sc_stop(&t);
}

/* --- joining ------------------------------------------------------------------- */

Test(pg_scale, join_without_an_active_run_exits_2, .timeout = 60)
{
	struct sc t;
	struct proc_result r;

	sc_start(&t, 8, 1, NULL);
	load_chunks(&t, 100, 0);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
							"--join", NULL }), 2, "%s\n%s", r.out, r.err);
	HAS(r.err, "collection \"acme\" has no active run to join");
	HAS(r.err, "hint: start one without --join");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), 0);
	cr_expect_eq(items_of(&t.e[0]), 0, "the service was asked");
	sc_stop(&t);
}

/* While a run is active: a second run without --join is busy (exit 6) and
 * says how to join; a joiner with another model or recipe refuses (exit
 * 2); neither touches the run. */
Test(pg_scale, a_run_is_joined_only_with_join_and_the_same_settings, .timeout = 180)
{
	const char *model[] = { "run", "-C", "acme", "--confirm", "acme", "--join", "--set",
				"EMBED_MODEL=m2", NULL };
	const char *recipe[] = { "run", "-C", "acme", "--confirm", "acme", "--join", "--set",
				 "EMBED_DOCUMENT_PREFIX=passage: ", NULL };
	struct sc t;
	struct proc_result r;
	int pid;

	sc_start(&t, 8, 2, gpu);
	load_chunks(&t, 8000, 0);
	pid = spawn_worker(&t, 0, "acme", (const char *[]){ "--concurrency", "1", NULL });
	wait_writing(&t, pid);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
							NULL }), 6, "%s\n%s", r.out, r.err);
	HAS(r.err, "collection \"acme\" is busy: run ");
	HAS(r.err, "embfill run -C acme --confirm acme --join");
	proc_result_free(&r);
	cr_assert_eq(fx_run(&t.f, &r, model), 2, "%s\n%s", r.out, r.err);
	HAS(r.err, "EMBED_MODEL differs from run ");
	HAS(r.err, "\"m2\" here, \"m1\" in the run; nothing was touched");
	proc_result_free(&r);
	cr_assert_eq(fx_run(&t.f, &r, recipe), 2, "%s\n%s", r.out, r.err);
	HAS(r.err, "recipe differs from run ");
	proc_result_free(&r);
	cr_assert_eq(wait_exit(pid, 150), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.workers"), 1, "a refused worker joined");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 1);
	expect_exact(&t, "acme", 8000);
	sc_stop(&t);
}

/* `embfill stop` reaches every worker through the run's record: each stops
 * at its next checkpoint with exit 5, hands its leases back, and the run
 * is resumable and completes exact.  status -C lists the workers. */
Test(pg_scale, stop_asks_every_worker_to_stop_and_the_run_resumes_exact, .timeout = 240)
{
	const long long n = 12000;
	struct sc t;
	struct proc_result r;
	int pid[2];
	char spid[2][16];

	sc_start(&t, 8, 2, gpu);
	load_chunks(&t, n, 0);
	pid[0] = spawn_worker(&t, 0, "acme", (const char *[]){ "--concurrency", "1", NULL });
	wait_writing(&t, pid[0]);
	pid[1] = spawn_worker(&t, 1, "acme", (const char *[]){ "--join", "--concurrency", "1",
							     NULL });
	wait_for(&t, pid[1], "SELECT count(*) FROM @T.workers WHERE done > 0", 2,
		 "both workers wrote");
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "status", "-C", "acme", NULL }), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(spid[i], sizeof(spid[i]), " %d ", pid[i]);
		HAS(r.out, spid[i]);
	}
	HAS(r.out, "worker host");
	HAS(r.out, "leases: ");
	proc_result_free(&r);
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "stop", "-C", "acme", "--confirm", "acme",
							NULL }), 0, "%s", r.err);
	HAS(r.out, "asked its 2 live workers to stop");
	proc_result_free(&r);
	for (int i = 0; i < 2; i++) {
		char *log;
		int rc = wait_exit(pid[i], 60);

		log = slurp(t.log[i]);
		cr_expect_eq(rc, 5, "worker %d exited %d:\n%s", i, rc, log);
		HAS(log, "stopped at a checkpoint: `embfill stop` asked every worker of run ");
		free(log);
	}
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'interrupted'"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.leases WHERE state = 'taken'"), 0,
		     "a stopped worker kept its lease");
	cr_expect_lt(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"), n,
		     "the workers did not stop early");
	cr_assert_eq(fx_run(&t.f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
							"--resume", NULL }), 0, "%s", r.err);
	HAS(r.out, "(resumed)");
	proc_result_free(&r);
	expect_exact(&t, "acme", n);
	expect_own(&t, "acme");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 1);
	sc_stop(&t);
}

/*
 * A key of two columns, text then integer, whose text order differs from
 * its own ("doc-10" < "doc-9" as text, 10 > 9 as integers): leases end at
 * keys of the run's order, and each worker pages its lease in that order.
 * Paged by the text of the key, ranges would overlap or leave gaps.
 */
Test(pg_scale, workers_page_a_two_column_key_in_its_own_order, .timeout = 240)
{
	struct sc t;
	char *settings = NULL, *rows;
	int pid[2];

	sc_start(&t, 8, 2, gpu);
	fx_sql(&t.f, "CREATE TABLE @S.parts (doc text, seq int, tenant text NOT NULL,"
		     " body text NOT NULL, PRIMARY KEY (doc, seq));"
		     "CREATE TABLE @S.part_vectors (doc text, seq int, tenant text NOT NULL,"
		     " embedding real[], PRIMARY KEY (doc, seq));"
		     "INSERT INTO @S.parts SELECT 'doc-' || d, s, 'acme',"
		     " 'part ' || s || ' of document ' || d FROM generate_series(1, 60) d,"
		     " generate_series(1, 100) s");
	cr_assert(asprintf(&settings,
		"DOCUMENTS_TABLE=\nCHUNKS_TABLE=%s.parts\nCHUNKS_ID_COLUMN=doc,seq\n"
		"CHUNKS_DOCUMENT_COLUMN=\nCHUNKS_INDEX_COLUMN=\nCHUNKS_COLLECTION_COLUMN=tenant\n"
		"CHUNKS_CONTENT_COLUMN=body\nEMBEDDINGS_TABLE=%s.part_vectors\n"
		"EMBEDDINGS_CHUNK_COLUMN=doc,seq\nEMBEDDINGS_COLLECTION_COLUMN=tenant\n"
		"EMBEDDINGS_MODEL_COLUMN=\nEMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_HASH_COLUMN=\n"
		"EMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\nEMBEDDINGS_RECIPE_COLUMN=\n",
		t.f.schema, t.f.schema) > 0);
	add_settings(&t.f, settings);
	free(settings);
	pid[0] = spawn_worker(&t, 0, "acme", NULL);
	wait_writing(&t, pid[0]);
	pid[1] = spawn_worker(&t, 1, "acme", (const char *[]){ "--join", NULL });
	for (int i = 0; i < 2; i++) {
		int rc = wait_exit(pid[i], 150);
		char *log = slurp(t.log[i]);

		cr_expect_eq(rc, 0, "worker %d exited %d:\n%s", i, rc, log);
		free(log);
	}
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.part_vectors WHERE embedding IS NOT NULL"),
		     6000);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors WHERE model = 'm1'"), 6000,
		     "a chunk without its bookkeeping, or one twice");
	cr_expect_eq(fx_ll(&t.f, "SELECT sum(done) FROM @T.leases"), 6000,
		     "leases overlap or leave gaps");
	cr_expect_gt(fx_ll(&t.f, "SELECT count(*) FROM @T.leases"), 10);
	rows = fx_text(&t.f, "SELECT string_agg(p.body || E'\\t' || array_to_string(v.embedding,"
			     " ','), E'\\n' ORDER BY p.doc, p.seq) FROM @S.parts p JOIN"
			     " @S.part_vectors v USING (doc, seq)");
	expect_own_vectors(rows, 8);
	free(rows);
	verify_ok(&t, "acme");
	sc_stop(&t);
}
