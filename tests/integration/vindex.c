/*
 * vindex.c - vector indexes end to end: schema check and plan name and
 * price them, run --rebuild-index drops and rebuilds them under the same
 * definition (a kill -9 in between leaves the rebuild to --resume), a new
 * collection's table of its own gets them before the swap, and spot-check
 * measures their recall.
 *
 * pgvector is needed for any of it: PGlite always has it; on the system
 * PostgreSQL these tests run where pgvector is installed and are reported
 * as skipped (with the reason on stderr) where it is not.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <cjson/cJSON.h>

#include "embedder_proc.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define LACKS(hay, needle) cr_expect(!strstr((hay), (needle)), "unexpected \"%s\" in:\n%s", \
				     needle, hay)

struct vt {
	struct fx f;
	struct embedder_proc e;
	char log[512];
};

static void need_pgvector(enum backend b)
{
	if (test_pgvector(b))
		return;
	fprintf(stderr, "%s: not run: pgvector is not installed in the system PostgreSQL\n",
		backend_name(b));
	cr_skip_test("pgvector is not installed in %s", backend_name(b));
}

static void add_settings(struct fx *f, const char *text)
{
	FILE *cf = fopen(f->config, "a");

	cr_assert(cf);
	fputs(text, cf);
	fclose(cf);
}

/* Schema (vector(8)), n chunks of "acme" with texts of their own words,
 * and an openai embedder of dimension 8. */
static void vt_start(struct vt *t, enum backend b, long long n, const char *const *emb_args)
{
	const char *args[16] = { "--dim", "8", "--model", "m1" };
	const char *init[] = { "schema", "init", "--dim", "8", NULL };
	struct proc_result r;
	char *sql = NULL, buf[512];
	size_t k = 4;

	need_pgvector(b);
	/* made here, not by schema init: two tests creating the extension at
	 * once would race, and the loser would get real[] */
	for (int i = 0; i < 5; i++) {
		char *state = sql_try(b, "CREATE EXTENSION IF NOT EXISTS vector");
		bool ok = !*state;

		free(state);
		if (ok)
			break;
		usleep(100 * 1000);
	}
	while (emb_args && *emb_args && k < 15)
		args[k++] = *emb_args++;
	args[k] = NULL;
	fx_init(&t->f, b, NULL);
	snprintf(t->log, sizeof(t->log), "%s/bg.log", t->f.dir);
	cr_assert_eq(embedder_start(&t->e, args), 0, "the sandbox embedder did not start");
	snprintf(buf, sizeof(buf), "EMBED_PROVIDER=openai\nEMBED_URL=%s\nEMBED_MODEL=m1\n"
				   "EMBED_DIM=8\nEMBED_MAX_ATTEMPTS=8\n", t->e.url);
	add_settings(&t->f, buf);
	cr_assert_eq(fx_run(&t->f, &r, init), 0, "%s", r.err);
	proc_result_free(&r);
	cr_assert(asprintf(&sql,
		"INSERT INTO @S.documents (id, collection, title, source_uri, body) VALUES"
		" (1, 'acme', 'Acme', 'file:///acme', 'a');"
		"INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
		" SELECT g, 1, 'acme', g, 'note ' || g || ': ' || substr(md5(g::text), 1, 6) || ' '"
		" || substr(md5((g * 7)::text), 1, 5) || ' about ' || substr(md5((g * 13)::text), 1, 4)"
		" FROM generate_series(1, %lld) g", n) > 0);
	fx_sql(&t->f, sql);
	free(sql);
}

static void vt_stop(struct vt *t)
{
	embedder_stop(&t->e);
	fx_free(&t->f);
}

static int vrun(struct vt *t, struct proc_result *r, const char *const *args)
{
	return fx_run(&t->f, r, args);
}

static void run_ok(struct vt *t, const char *const *args)
{
	struct proc_result r;

	cr_assert_eq(vrun(t, &r, args), 0, "%s\n%s", r.out, r.err);
	proc_result_free(&r);
}

static void embed_all(struct vt *t)
{
	run_ok(t, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", NULL });
}

static void make_stale(struct vt *t)
{
	fx_sql(&t->f, "UPDATE @S.document_embeddings SET content_sha256 = sha256('x'::bytea)");
}

static void hnsw(struct vt *t, const char *opts)
{
	char *sql = NULL;

	cr_assert(asprintf(&sql, "CREATE INDEX acme_vec ON @S.document_embeddings USING hnsw"
				 " (embedding vector_cosine_ops) WITH (%s);"
				 "COMMENT ON INDEX @S.acme_vec IS 'search index of the app'", opts) > 0);
	fx_sql(&t->f, sql);
	free(sql);
}

static char *index_def(struct vt *t)
{
	return fx_text(&t->f, "SELECT coalesce(pg_get_indexdef(to_regclass('@S.acme_vec')), 'none')");
}

/* Every chunk of acme has exactly one current vector of m1 at dimension 8. */
static void expect_exact(struct vt *t, long long n)
{
	cr_expect_eq(fx_ll(&t->f, "SELECT count(*) FROM @S.document_chunks c JOIN"
				  " @S.document_embeddings e ON e.chunk_id = c.id AND e.collection ="
				  " c.collection WHERE e.model = 'm1' AND e.dim = 8 AND e.embedding IS"
				  " NOT NULL AND e.content_sha256 = sha256(convert_to(c.content, 'UTF8'))"),
		     n, "current vectors");
	cr_expect_eq(fx_ll(&t->f, "SELECT count(*) FROM @S.document_embeddings"), n, "rows");
}

static cJSON *json_of(struct vt *t, const char *const *args)
{
	struct proc_result r;
	cJSON *j;

	vrun(t, &r, args);
	j = cJSON_Parse(r.out);
	cr_assert(j, "not JSON:\n%s\n%s", r.out, r.err);
	proc_result_free(&r);
	return j;
}

/* --- schema check ---------------------------------------------------------- */

static void schema_check_names_hnsw(enum backend b)
{
	struct vt t;
	struct proc_result r;
	char *before, *after;

	vt_start(&t, b, 300, NULL);
	embed_all(&t);
	hnsw(&t, "m = 4, ef_construction = 16");
	before = fx_text(&t.f, "SELECT md5(string_agg(chunk_id || ':' || embedding::text, ','"
			       " ORDER BY chunk_id)) FROM @S.document_embeddings");
	cr_assert_eq(vrun(&t, &r, (const char *[]){ "schema", "check", NULL }), 0, "%s\n%s",
		     r.out, r.err);
	HAS(r.out, "[ok]   vector index: ");
	HAS(r.out, ".acme_vec on ");
	HAS(r.out, "hnsw (vector_cosine_ops, m=4, ef_construction=16)");
	HAS(r.out, "[ok]   index cost: a probe (rolled back) wrote ");
	HAS(r.out, "ms more per vector written");
	HAS(r.out, "building them over 300 rows took");
	proc_result_free(&r);
	/* the probe leaves nothing: the vectors are as they were, no copy stays */
	after = fx_text(&t.f, "SELECT md5(string_agg(chunk_id || ':' || embedding::text, ','"
			      " ORDER BY chunk_id)) FROM @S.document_embeddings");
	cr_expect_str_eq(after, before, "the probe changed the vectors");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM pg_class WHERE relname LIKE"
				 " 'embfill_probe%'"), 0, "the probe left a table");
	free(before);
	free(after);
	vt_stop(&t);
}

Test(pg_vindex, schema_check_names_an_hnsw_index_and_its_cost, .timeout = 180)
{
	schema_check_names_hnsw(BACKEND_PG);
}
Test(pglite_vindex, schema_check_names_an_hnsw_index_and_its_cost, .timeout = 180)
{
	schema_check_names_hnsw(BACKEND_PGLITE);
}

/* --- plan ------------------------------------------------------------------- */

/* A first backfill of a table that has its index already: nothing to
 * search yet, every vector inserted into the graph one by one: plan
 * offers loading without it, and says what searches get meanwhile. */
static void plan_offers_rebuild(enum backend b)
{
	struct vt t;
	struct proc_result r;
	cJSON *j, *vi;

	vt_start(&t, b, 1200, NULL);
	hnsw(&t, "m = 4, ef_construction = 16");
	cr_assert_eq(vrun(&t, &r, (const char *[]){ "plan", "-C", "acme", NULL }), 0, "%s\n%s",
		     r.out, r.err);
	HAS(r.out, "vector indexes on ");
	HAS(r.out, ".acme_vec hnsw (vector_cosine_ops, m=4, ef_construction=16)");
	HAS(r.out, "`run --rebuild-index` loads the table without them and rebuilds them "
		   "CONCURRENTLY");
	HAS(r.out, "searches on it rank every row meanwhile");
	HAS(r.out, "--confirm acme --batch-size 100 --concurrency 2 --rebuild-index");
	proc_result_free(&r);
	j = json_of(&t, (const char *[]){ "plan", "-C", "acme", "--json", NULL });
	vi = cJSON_GetObjectItem(j, "vector_indexes");
	cr_assert(vi, "no vector_indexes in plan.json");
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(vi, "rebuild_index_offered")));
	cr_expect(cJSON_GetObjectItem(j, "command_rebuild_index"));
	cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(vi, "indexes")), 1);
	cJSON_Delete(j);
	/* once the table holds the vectors, the probe measures the cost */
	embed_all(&t);
	make_stale(&t);
	j = json_of(&t, (const char *[]){ "plan", "-C", "acme", "--json", NULL });
	vi = cJSON_GetObjectItem(j, "vector_indexes");
	cr_assert(vi);
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(vi, "probe"), "measured")),
		  "%s", cJSON_Print(vi));
	cr_expect(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(vi, "probe"),
							   "rows")) >= 20);
	cr_expect(cJSON_GetObjectItem(vi, "write_with_seconds"));
	cr_expect(cJSON_GetObjectItem(vi, "build_seconds"));
	cJSON_Delete(j);
	vt_stop(&t);
}

Test(pg_vindex, plan_offers_the_rebuild_and_states_its_impact, .timeout = 240)
{
	plan_offers_rebuild(BACKEND_PG);
}
Test(pglite_vindex, plan_offers_the_rebuild_and_states_its_impact, .timeout = 240)
{
	plan_offers_rebuild(BACKEND_PGLITE);
}

/* --- run --rebuild-index ------------------------------------------------------ */

static void rebuild_keeps_definition(enum backend b)
{
	struct vt t;
	struct proc_result r;
	char *def, *after, *comment;
	long long oid;

	vt_start(&t, b, 800, NULL);
	embed_all(&t);
	hnsw(&t, "m = 6, ef_construction = 20");
	make_stale(&t);
	def = index_def(&t);
	oid = fx_ll(&t.f, "SELECT to_regclass('@S.acme_vec')::oid");
	cr_assert_eq(vrun(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						     "--rebuild-index", NULL }), 0, "%s\n%s",
		     r.out, r.err);
	HAS(r.out, "vector indexes: 1 dropped for the load, 1 built after it in ");
	proc_result_free(&r);
	after = index_def(&t);
	cr_expect_str_eq(after, def, "the index came back with another definition");
	cr_expect_neq(fx_ll(&t.f, "SELECT to_regclass('@S.acme_vec')::oid"), oid,
		      "the index was never dropped");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM pg_index WHERE indexrelid ="
				 " to_regclass('@S.acme_vec') AND indisvalid AND indisready"), 1);
	comment = fx_text(&t.f, "SELECT coalesce(obj_description(to_regclass('@S.acme_vec'),"
				" 'pg_class'), 'none')");
	cr_expect_str_eq(comment, "search index of the app");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vector_indexes"), 0,
		     "the record of the drop stayed");
	expect_exact(&t, 800);
	free(def);
	free(after);
	free(comment);
	vt_stop(&t);
}

Test(pg_vindex, rebuild_index_run_leaves_the_same_definition_and_exact_vectors,
     .timeout = 240)
{
	rebuild_keeps_definition(BACKEND_PG);
}
Test(pglite_vindex, rebuild_index_run_leaves_the_same_definition_and_exact_vectors,
     .timeout = 240)
{
	rebuild_keeps_definition(BACKEND_PGLITE);
}

/* The drop is recorded in its own transaction; a run killed after it
 * leaves the index dropped and the record, which schema check reports and
 * the resumed run rebuilds from.  (PGlite serves one connection at a
 * time: the test cannot watch a run there.) */
Test(pg_vindex, kill_9_after_the_drop_leaves_resume_to_rebuild, .timeout = 300)
{
	struct vt t;
	struct proc_result r;
	const char *env[] = { "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM", NULL };
	const char *args[] = { "--config", NULL, "run", "-C", "acme", "--confirm", "acme",
			       "--rebuild-index", "--concurrency", "1", NULL };
	char *def, *rec, *after;
	int pid, i;

	vt_start(&t, BACKEND_PG, 3000, (const char *[]){ "--latency-ms", "40", NULL });
	embed_all(&t);
	hnsw(&t, "m = 4, ef_construction = 16");
	make_stale(&t);
	def = index_def(&t);
	args[1] = t.f.config;
	pid = spawn_embfill(args, env, t.f.dir, t.log);
	cr_assert_gt(pid, 0);
	for (i = 0; i < 1200; i++) {
		if (fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'running' AND done >= 300")
		    && fx_ll(&t.f, "SELECT count(*) FROM pg_class WHERE oid ="
				   " coalesce(to_regclass('@S.acme_vec'), 0)") == 0)
			break;
		usleep(25 * 1000);
	}
	cr_assert_lt(i, 1200, "the run never dropped the index and wrote 300 chunks");
	kill(pid, SIGKILL);
	cr_expect_eq(wait_exit(pid, 10), 128 + SIGKILL);
	rec = fx_text(&t.f, "SELECT definition FROM @T.vector_indexes");
	cr_expect_str_eq(rec, def, "the drop's record is not the index's definition");
	cr_assert_eq(vrun(&t, &r, (const char *[]){ "schema", "check", NULL }), 0, "%s", r.err);
	HAS(r.out, "[warn] vector index: ");
	HAS(r.out, "acme_vec was dropped by run ");
	HAS(r.out, "is not rebuilt yet");
	proc_result_free(&r);
	cr_assert_eq(vrun(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						     "--resume", NULL }), 0, "%s\n%s", r.out, r.err);
	HAS(r.out, "(resumed)");
	HAS(r.out, "vector indexes: 0 dropped for the load, 1 built after it");
	proc_result_free(&r);
	after = index_def(&t);
	cr_expect_str_eq(after, def);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vector_indexes"), 0);
	expect_exact(&t, 3000);
	free(def);
	free(rec);
	free(after);
	vt_stop(&t);
}

/* --- a new collection's table of its own -------------------------------------- */

static void own_table_indexed_before_swap(enum backend b)
{
	struct vt t;
	struct proc_result r;
	const char *dim4[] = { "--set", "EMBED_DIM=6", "--set", "EMBED_DIMENSIONS=6" };
	const char *own_def = "SELECT count(*) FROM pg_indexes WHERE schemaname = '@SCHEMA' AND"
			      " tablename = 'document_embeddings_d6' AND indexdef LIKE"
			      " '%USING hnsw (embedding vector_cosine_ops) WITH (m=''4'',"
			      " ef_construction=''16'')'";
	char *q = NULL;

	vt_start(&t, b, 400, NULL);
	embed_all(&t);
	hnsw(&t, "m = 4, ef_construction = 16");
	cr_assert(asprintf(&q, "%.*s%s%s", (int)(strstr(own_def, "@SCHEMA") - own_def), own_def,
			   t.f.schema, strstr(own_def, "@SCHEMA") + 7) > 0);
	cr_assert_eq(vrun(&t, &r, (const char *[]){ dim4[0], dim4[1], dim4[2], dim4[3], "plan",
						     "-C", "acme", NULL }), 0, "%s\n%s", r.out,
		     r.err);
	HAS(r.out, "is loaded without vector indexes; the live table's (");
	HAS(r.out, "are built on it after the load, before the swap");
	proc_result_free(&r);
	cr_assert_eq(vrun(&t, &r, (const char *[]){ dim4[0], dim4[1], dim4[2], dim4[3], "run",
						     "-C", "acme", "--confirm", "acme", "--into",
						     "acme6", NULL }), 0, "%s\n%s", r.out, r.err);
	HAS(r.out, "keeps its vectors in ");
	HAS(r.out, "vector indexes: 0 dropped for the load, 1 built after it");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, q), 1, "the new table has not the live table's index");
	/* a run that did not build it leaves it to the swap */
	fx_sql(&t.f, "DO $$ DECLARE i text; BEGIN SELECT c.oid::regclass::text INTO i FROM"
		     " pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid ="
		     " c.relam WHERE x.indrelid = to_regclass('@S.document_embeddings_d6') AND"
		     " a.amname = 'hnsw'; EXECUTE 'DROP INDEX ' || i; END $$");
	cr_assert_eq(fx_ll(&t.f, q), 0);
	cr_assert_eq(vrun(&t, &r, (const char *[]){ dim4[0], dim4[1], dim4[2], dim4[3], "swap",
						     "-C", "acme", "--with", "acme6", "--confirm",
						     "acme", NULL }), 0, "%s\n%s", r.out, r.err);
	HAS(r.out, "built the live table's 1 vector index on ");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, q), 1, "the swap did not build the index");
	free(q);
	vt_stop(&t);
}

Test(pg_vindex, a_new_collection_of_its_own_table_gets_its_index_before_the_swap,
     .timeout = 240)
{
	own_table_indexed_before_swap(BACKEND_PG);
}
Test(pglite_vindex, a_new_collection_of_its_own_table_gets_its_index_before_the_swap,
     .timeout = 240)
{
	own_table_indexed_before_swap(BACKEND_PGLITE);
}

/* --- spot-check's recall ------------------------------------------------------- */

static double recall_of(struct vt *t, const char *index)
{
	cJSON *j = json_of(t, (const char *[]){ "spot-check", "-C", "acme", "--json", NULL });
	cJSON *arr = cJSON_GetObjectItem(j, "index_recall"), *x;
	double v;

	cr_assert_eq(cJSON_GetArraySize(arr), 1, "%s", cJSON_Print(j));
	x = cJSON_GetArrayItem(arr, 0);
	cr_expect(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(x, "index")), index),
		  "%s", cJSON_Print(x));
	cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(x, "expected")), 25);
	v = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "recall"));
	cr_expect(v >= 0 && v <= 1, "recall %f", v);
	cJSON_Delete(j);
	return v;
}

static void recall_drops(enum backend b)
{
	struct vt t;
	struct proc_result r;
	double good, poor;

	vt_start(&t, b, 600, NULL);
	embed_all(&t);
	hnsw(&t, "m = 16, ef_construction = 64");
	good = recall_of(&t, "acme_vec");
	cr_assert_eq(vrun(&t, &r, (const char *[]){ "spot-check", "-C", "acme", NULL }), 0,
		     "%s\n%s", r.out, r.err);
	HAS(r.out, "index recall: ");
	HAS(r.out, "acme_vec (hnsw, <=>, hnsw.ef_search=");
	proc_result_free(&r);
	fx_sql(&t.f, "DROP INDEX @S.acme_vec;"
		     "CREATE INDEX acme_ivf ON @S.document_embeddings USING ivfflat"
		     " (embedding vector_cosine_ops) WITH (lists = 300)");
	poor = recall_of(&t, "acme_ivf");
	cr_expect_lt(poor, good, "recall did not drop: %f with HNSW, %f with IVFFlat of 300 lists "
		     "and one probe", good, poor);
	vt_stop(&t);
}

Test(pg_vindex, spot_check_recall_drops_with_a_poor_index, .timeout = 240)
{
	recall_drops(BACKEND_PG);
}
Test(pglite_vindex, spot_check_recall_drops_with_a_poor_index, .timeout = 240)
{
	recall_drops(BACKEND_PGLITE);
}
