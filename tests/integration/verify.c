/*
 * verify.c - `embfill verify` on PostgreSQL 15 (real[] vectors) and PGlite
 * (pgvector): a fresh collection passes, and each discrepancy planted
 * alone is reported with its count, an example and its explanation.
 *
 * Suites named pglite_* run one test at a time (PGlite serves one
 * connection); every helper here closes its connection before embfill runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)

/* PGlite refuses a connection while the previous one is still closing (see
 * tests/lib/testdb.c), and the test's own SQL has just closed one: a
 * refused connection is retried, not taken for embfill's failure. */
static bool pglite_refused(enum backend b, const struct proc_result *r)
{
	return b == BACKEND_PGLITE && r->status == 3 && r->err &&
	       strstr(r->err, "cannot connect to the database");
}

static int run(struct fx *f, struct proc_result *r, const char *const *args)
{
	fx_run(f, r, args);
	for (int i = 0; i < 30 && pglite_refused(f->b, r); i++) {
		proc_result_free(r);
		usleep(100 * 1000);
		fx_run(f, r, args);
	}
	return r->status;
}

/* acme: chunks 1-6, globex: 11-12, all embedded fresh with model m1. */
static void fresh_fixture(struct fx *f, enum backend b)
{
	struct proc_result r;
	const char *init[] = { "schema", "init", "--dim", "4", NULL };

	fx_init(f, b, NULL);
	cr_assert_eq(run(f, &r, init), 0, "schema init failed: %s", r.err);
	proc_result_free(&r);
	fx_sql(f,
	       "INSERT INTO @S.documents (id, collection, title, source_uri, body) VALUES"
	       " (1, 'acme', 'Acme handbook', 'file:///acme', 'a'),"
	       " (2, 'globex', 'Globex notes', 'file:///globex', 'g');"
	       "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
	       " SELECT g, 1, 'acme', g, 'acme chunk ' || g FROM generate_series(1, 6) g;"
	       "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
	       " SELECT g, 2, 'globex', g, 'globex chunk ' || g FROM generate_series(11, 12) g;"
	       "INSERT INTO @S.document_embeddings"
	       " (chunk_id, collection, model, dim, content_sha256, embedding)"
	       " SELECT id, collection, 'm1', 4, sha256(convert_to(content, 'UTF8')),"
	       "  ARRAY[0.5, 0.5, 0.5, 0.5]::real[] FROM @S.document_chunks");
}

/* Runs verify -C coll --json (plus extra); returns the parsed object and
 * the exit code in *rc. */
static cJSON *verify_json(struct fx *f, const char *coll, const char *const *extra, int *rc)
{
	const char *args[16] = { "verify", "-C", coll, "--json" };
	struct proc_result r;
	size_t n = 4;
	cJSON *o;

	while (extra && *extra && n < 15)
		args[n++] = *extra++;
	args[n] = NULL;
	*rc = run(f, &r, args);
	cr_assert(*rc == 0 || *rc == 1, "verify exited %d on %s:\n%s", *rc, backend_name(f->b),
		  r.err);
	o = cJSON_Parse(r.out);
	cr_assert(cJSON_IsObject(o), "verify --json printed no object: %s", r.out);
	proc_result_free(&r);
	return o;
}

static long long num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert(cJSON_IsNumber(v), "field \"%s\" is missing or not a number", key);
	return (long long)v->valuedouble;
}

static bool is_ok(const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "ok");

	cr_assert(cJSON_IsBool(v), "field \"ok\" is missing or not a boolean");
	return cJSON_IsTrue(v);
}

static const cJSON *issue(const cJSON *o, const char *kind)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "discrepancies"), *it;

	cr_assert(cJSON_IsArray(arr), "field \"discrepancies\" is missing");
	cJSON_ArrayForEach(it, arr) {
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "kind");
		if (cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0)
			return it;
	}
	return NULL;
}

/* Asserts one discrepancy: count, explained, first example, and a word of
 * its reason. */
static void expect_issue(const cJSON *o, const char *kind, long long count, bool explained,
			 long long first, const char *reason_part)
{
	const cJSON *is = issue(o, kind), *ex, *reason;

	cr_assert_not_null(is, "no discrepancy \"%s\" in %s", kind, cJSON_PrintUnformatted(o));
	cr_expect_eq(num(is, "count"), count, "%s: count %lld, want %lld", kind, num(is, "count"),
		     count);
	cr_expect_eq(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(is, "explained")), explained,
		     "%s: explained", kind);
	ex = cJSON_GetObjectItemCaseSensitive(is, "examples");
	cr_assert(cJSON_IsArray(ex) && cJSON_GetArraySize(ex) >= 1, "%s: no examples", kind);
	cr_expect_eq((long long)cJSON_GetArrayItem(ex, 0)->valuedouble, first,
		     "%s: first example %g, want %lld", kind, cJSON_GetArrayItem(ex, 0)->valuedouble,
		     first);
	reason = cJSON_GetObjectItemCaseSensitive(is, "reason");
	cr_assert(cJSON_IsString(reason), "%s: no reason", kind);
	HAS(reason->valuestring, reason_part);
}

static size_t nissues(const cJSON *o)
{
	return (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "discrepancies"));
}

/* --- a fresh collection ------------------------------------------------------ */

static void fresh_is_ok(enum backend b)
{
	struct fx f;
	struct proc_result r;
	int rc;
	cJSON *o, *models;

	fresh_fixture(&f, b);
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 0);
	cr_expect(is_ok(o));
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(o, "collection")->valuestring, "acme");
	cr_expect_eq(num(o, "chunks"), 6);
	cr_expect_eq(num(o, "vectors"), 6);
	cr_expect_eq(nissues(o), 0, "%s", cJSON_PrintUnformatted(o));
	models = cJSON_GetObjectItemCaseSensitive(o, "models");
	cr_assert_eq(cJSON_GetArraySize(models), 1);
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(models, 0),
							  "model")->valuestring, "m1");
	cr_expect_eq(num(cJSON_GetArrayItem(models, 0), "dim"), 4);
	cr_expect_eq(num(cJSON_GetArrayItem(models, 0), "count"), 6);
	cJSON_Delete(o);
	cr_assert_eq(run(&f, &r, (const char *[]){ "verify", "-C", "acme", NULL }), 0, "%s%s",
		     r.out, r.err);
	HAS(r.out, "verify \"acme\": 6 chunks, 6 vector rows, 6 fresh");
	HAS(r.out, "result: ok");
	proc_result_free(&r);
	fx_free(&f);
}

Test(pg_verify, fresh_collection_is_ok) { fresh_is_ok(BACKEND_PG); }
Test(pglite_verify, fresh_collection_is_ok) { fresh_is_ok(BACKEND_PGLITE); }

/* --- each discrepancy alone ----------------------------------------------- */

struct plant {
	const char *sql;       /* applied to the fresh fixture */
	const char *kind;
	long long count, first;
	const char *reason_part;
};

static void planted(enum backend b, const struct plant *p)
{
	struct fx f;
	int rc;
	cJSON *o;

	fresh_fixture(&f, b);
	fx_sql(&f, p->sql);
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1, "a %s discrepancy must fail verify", p->kind);
	cr_expect(!is_ok(o));
	expect_issue(o, p->kind, p->count, false, p->first, p->reason_part);
	cr_expect_eq(nissues(o), 1, "only %s was planted: %s", p->kind, cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	/* the other collection is untouched */
	o = verify_json(&f, "globex", NULL, &rc);
	cr_expect_eq(rc, 0);
	cJSON_Delete(o);
	fx_free(&f);
}

static const struct plant missing_row = {
	"DELETE FROM @S.document_embeddings WHERE chunk_id = 3", "missing_row", 1, 3,
	"no embedding row" };
static const struct plant null_vector = {
	"UPDATE @S.document_embeddings SET embedding = NULL WHERE chunk_id = 4", "null_vector", 1,
	4, "NULL" };

Test(pg_verify, missing_row_is_reported) { planted(BACKEND_PG, &missing_row); }
Test(pglite_verify, missing_row_is_reported) { planted(BACKEND_PGLITE, &missing_row); }
Test(pg_verify, null_vector_is_reported) { planted(BACKEND_PG, &null_vector); }
Test(pglite_verify, null_vector_is_reported) { planted(BACKEND_PGLITE, &null_vector); }

/* A vector of zeros stored before embfill refused them (or by another
 * writer), in whichever type the column has. */
static const struct plant zero_vector = {
	"UPDATE @S.document_embeddings SET embedding = ARRAY[0, 0, 0, 0]::real[] WHERE chunk_id = 5",
	"zero_vector", 1, 5, "zeros" };

Test(pg_verify, zero_vector_is_reported) { planted(BACKEND_PG, &zero_vector); }
Test(pglite_verify, zero_vector_is_reported) { planted(BACKEND_PGLITE, &zero_vector); }

/* An UPDATE of the chunk after it was embedded: stale by content, with
 * the row's embedded_at beside the example. */
static void stale_content(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;
	const cJSON *det;

	fresh_fixture(&f, b);
	fx_sql(&f, "UPDATE @S.document_embeddings SET embedded_at = '2024-05-01 10:00:00+00'"
		   " WHERE chunk_id = 2;"
		   "UPDATE @S.document_chunks SET content = 'rewritten' WHERE id = 2");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "stale_content", 1, false, 2, "chunk changed after it was embedded");
	cr_expect_eq(nissues(o), 1, "%s", cJSON_PrintUnformatted(o));
	det = cJSON_GetObjectItemCaseSensitive(issue(o, "stale_content"), "details");
	cr_assert(cJSON_IsArray(det) && cJSON_GetArraySize(det) == 1);
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(det, 0),
							  "embedded_at")->valuestring,
			 "2024-05-01 10:00:00+00");
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, stale_content_after_update_is_reported) { stale_content(BACKEND_PG); }
Test(pglite_verify, stale_content_after_update_is_reported) { stale_content(BACKEND_PGLITE); }

/* One vector of another model: stale by model, and two (model, dim)
 * pairs, each listed with its count. */
static void two_models(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;
	const cJSON *models;

	fresh_fixture(&f, b);
	fx_sql(&f, "UPDATE @S.document_embeddings SET model = 'm0' WHERE chunk_id = 5");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	cr_expect(!is_ok(o));
	expect_issue(o, "stale_model", 1, false, 5, "another model than \"m1\"");
	expect_issue(o, "mixed_models", 1, false, 5, "2 (model, dimension) pairs");
	cr_expect_eq(nissues(o), 2, "%s", cJSON_PrintUnformatted(o));
	models = cJSON_GetObjectItemCaseSensitive(o, "models");
	cr_assert_eq(cJSON_GetArraySize(models), 2, "%s", cJSON_PrintUnformatted(o));
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(models, 0),
							  "model")->valuestring, "m1");
	cr_expect_eq(num(cJSON_GetArrayItem(models, 0), "count"), 5);
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(models, 1),
							  "model")->valuestring, "m0");
	cr_expect_eq(num(cJSON_GetArrayItem(models, 1), "count"), 1);
	cr_expect_eq(num(cJSON_GetArrayItem(models, 1), "dim"), 4);
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, two_models_are_listed_and_fail) { two_models(BACKEND_PG); }
Test(pglite_verify, two_models_are_listed_and_fail) { two_models(BACKEND_PGLITE); }

/* Another EMBED_DIM than the stored vectors': every vector stale by
 * dimension. */
static void stale_dim(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;

	fresh_fixture(&f, b);
	o = verify_json(&f, "acme", (const char *[]){ "--set", "EMBED_DIM=5", NULL }, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "stale_dim", 6, false, 1, "dimension is not 5");
	cr_expect_eq(nissues(o), 1, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, stale_dimension_is_reported) { stale_dim(BACKEND_PG); }
Test(pglite_verify, stale_dimension_is_reported) { stale_dim(BACKEND_PGLITE); }

/* A quarantined chunk with its reason is explained: verify still passes.
 * Once the chunk changes, the quarantine explains nothing any more. */
static void quarantined(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;
	const cJSON *reasons;

	fresh_fixture(&f, b);
	fx_sql(&f, "DELETE FROM @S.document_embeddings WHERE chunk_id = 6;"
		   "INSERT INTO @T.quarantine (collection, chunk_id, reason, content_sha256)"
		   " VALUES ('acme', 6, 'HTTP 400: input is too long',"
		   "  sha256(convert_to('acme chunk 6', 'UTF8')))");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 0, "an explained quarantine alone must pass");
	cr_expect(is_ok(o));
	expect_issue(o, "quarantined", 1, true, 6, "HTTP 400: input is too long");
	cr_expect_eq(nissues(o), 1, "%s", cJSON_PrintUnformatted(o));
	reasons = cJSON_GetObjectItemCaseSensitive(issue(o, "quarantined"), "reasons");
	cr_assert_eq(cJSON_GetArraySize(reasons), 1);
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(reasons, 0),
							  "reason")->valuestring,
			 "HTTP 400: input is too long");
	cr_expect_eq(num(cJSON_GetArrayItem(reasons, 0), "count"), 1);
	cJSON_Delete(o);

	fx_sql(&f, "UPDATE @S.document_chunks SET content = 'shorter now' WHERE id = 6");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "quarantine_outdated", 1, false, 6, "changed after it was quarantined");
	expect_issue(o, "missing_row", 1, false, 6, "no embedding row");
	cr_expect_null(issue(o, "quarantined"));
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, quarantine_with_reason_is_explained) { quarantined(BACKEND_PG); }
Test(pglite_verify, quarantine_with_reason_is_explained) { quarantined(BACKEND_PGLITE); }

/* The examples of one kind, as numbers, in the order reported. */
static void expect_examples(const cJSON *o, const char *kind, const long long *want, int n)
{
	const cJSON *ex = cJSON_GetObjectItemCaseSensitive(issue(o, kind), "examples");

	cr_assert_eq(cJSON_GetArraySize(ex), n, "%s: %s", kind, cJSON_PrintUnformatted(ex));
	for (int i = 0; i < n; i++)
		cr_expect_eq((long long)cJSON_GetArrayItem(ex, i)->valuedouble, want[i],
			     "%s: example %d is %g, want %lld", kind, i,
			     cJSON_GetArrayItem(ex, i)->valuedouble, want[i]);
}

/* Several kinds at once, each counted alone and illustrated by its own
 * lowest keys (five at most, in key order): the counts come from one
 * pass, the examples from one bounded query per kind found. */
static void several_kinds(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;

	fresh_fixture(&f, b);
	fx_sql(&f, "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index,"
		   " content) SELECT g, 1, 'acme', g, 'acme chunk ' || g FROM generate_series(21, 40) g;"
		   "INSERT INTO @S.document_embeddings"
		   " (chunk_id, collection, model, dim, content_sha256, embedding)"
		   " SELECT id, collection, 'm1', 4, sha256(convert_to(content, 'UTF8')),"
		   "  ARRAY[0.5, 0.5, 0.5, 0.5]::real[] FROM @S.document_chunks WHERE id >= 21;"
		   "DELETE FROM @S.document_embeddings WHERE chunk_id IN (40, 22, 35, 30, 25, 38, 33, 27);"
		   "UPDATE @S.document_chunks SET content = 'changed' WHERE id IN (31, 24);"
		   "UPDATE @S.document_embeddings SET model = 'm0' WHERE chunk_id = 29;"
		   "INSERT INTO @T.quarantine (collection, chunk_id, reason, content_sha256)"
		   " VALUES ('acme', 27, 'HTTP 400: input is too long',"
		   "  sha256(convert_to('acme chunk 27', 'UTF8')))");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	cr_expect_eq(num(o, "chunks"), 26);
	cr_expect_eq(num(o, "vectors"), 18);
	cr_expect_eq(num(o, "fresh"), 15);
	expect_issue(o, "missing_row", 7, false, 22, "no embedding row");
	expect_examples(o, "missing_row", (const long long[]){ 22, 25, 30, 33, 35 }, 5);
	expect_issue(o, "stale_content", 2, false, 24, "chunk changed");
	expect_examples(o, "stale_content", (const long long[]){ 24, 31 }, 2);
	expect_issue(o, "stale_model", 1, false, 29, "another model");
	expect_issue(o, "mixed_models", 1, false, 29, "2 (model, dimension) pairs");
	expect_issue(o, "quarantined", 1, true, 27, "HTTP 400: input is too long");
	cr_expect_eq(nissues(o), 5, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);

	/* without a quarantine the same chunk is one more missing row */
	fx_sql(&f, "DELETE FROM @T.quarantine");
	o = verify_json(&f, "acme", NULL, &rc);
	expect_issue(o, "missing_row", 8, false, 22, "no embedding row");
	expect_examples(o, "missing_row", (const long long[]){ 22, 25, 27, 30, 33 }, 5);
	cr_expect_null(issue(o, "quarantined"));
	cr_expect_eq(nissues(o), 4, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	fx_free(&f);
}

/* A kind with more chunks than are ranked together (60,000 without a row)
 * takes its lowest keys by ORDER BY key LIMIT 5, beside a kind with one
 * chunk ranked in the pass over the few. */
static void many_and_few(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;

	fresh_fixture(&f, b);
	fx_sql(&f, "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index,"
		   " content) SELECT g, 1, 'acme', g, 'acme chunk ' || g"
		   " FROM generate_series(100000, 159999) g;"
		   "UPDATE @S.document_chunks SET content = 'changed' WHERE id = 4");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "missing_row", 60000, false, 100000, "no embedding row");
	expect_examples(o, "missing_row",
			(const long long[]){ 100000, 100001, 100002, 100003, 100004 }, 5);
	expect_issue(o, "stale_content", 1, false, 4, "chunk changed");
	cr_expect_eq(nissues(o), 2, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, a_kind_of_many_chunks_takes_its_lowest_keys, .timeout = 60)
{
	many_and_few(BACKEND_PG);
}

Test(pg_verify, several_kinds_each_with_its_lowest_examples) { several_kinds(BACKEND_PG); }
Test(pglite_verify, several_kinds_each_with_its_lowest_examples)
{
	several_kinds(BACKEND_PGLITE);
}

static void unknown_collection(enum backend b)
{
	struct fx f;
	struct proc_result r;

	fresh_fixture(&f, b);
	cr_expect_eq(run(&f, &r, (const char *[]){ "verify", "-C", "acmee", NULL }), 2,
		     "%s%s", r.out, r.err);
	HAS(r.err, "collection \"acmee\" has no chunks");
	HAS(r.err, "did you mean \"acme\"?");
	proc_result_free(&r);
	cr_expect_eq(run(&f, &r, (const char *[]){ "verify", NULL }), 2, "%s", r.err);
	HAS(r.err, "-C COLL");
	proc_result_free(&r);
	fx_free(&f);
}

Test(pg_verify, unknown_collection_exits_2_with_a_suggestion)
{
	unknown_collection(BACKEND_PG);
}
Test(pglite_verify, unknown_collection_exits_2_with_a_suggestion)
{
	unknown_collection(BACKEND_PGLITE);
}

/* --- a pipeline's own tables, without the isolation foreign key ------------- */

/* Creates the test's schema and runs ddl with its %s replaced by the
 * backend's vector type.  These tables are built by hand, not by schema
 * init, so on PGlite the extension may not exist yet. */
static void with_vectors(struct fx *f, const char *ddl)
{
	char *sql = NULL;
	bool pg = f->b == BACKEND_PG;

	cr_assert(asprintf(&sql, "%sCREATE SCHEMA @S;", pg ? "" : "CREATE EXTENSION IF NOT EXISTS"
							       " vector;") > 0);
	fx_sql(f, sql);
	free(sql);
	cr_assert(asprintf(&sql, ddl, pg ? "real[]" : "vector(4)") > 0);
	fx_sql(f, sql);
	free(sql);
}

/* Hex-text hashes, no unique key and no foreign key, so orphans and rows
 * crossing the tenant boundary can exist. */
static void mapped_fixture(struct fx *f, enum backend b)
{
	char *extra = NULL;

	fx_init(f, b, NULL);
	cr_assert(asprintf(&extra,
			   "CHUNKS_TABLE=%1$s.chunks\nCHUNKS_COLLECTION_COLUMN=tenant\n"
			   "CHUNKS_DOCUMENT_COLUMN=doc\nCHUNKS_INDEX_COLUMN=pos\n"
			   "CHUNKS_CONTENT_COLUMN=body\nEMBEDDINGS_TABLE=%1$s.vecs\n"
			   "EMBEDDINGS_CHUNK_COLUMN=chunk\nEMBEDDINGS_COLLECTION_COLUMN=tenant\n"
			   "EMBEDDINGS_HASH_COLUMN=sha\nEMBEDDINGS_VECTOR_COLUMN=v\n"
			   "EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n",
			   f->schema) > 0);
	{
		FILE *cf = fopen(f->config, "a");
		cr_assert_not_null(cf);
		fputs(extra, cf);
		fclose(cf);
	}
	free(extra);
	with_vectors(f, "CREATE TABLE @S.vecs (chunk bigint, tenant text, model text, sha text,"
		        " v %s)");
	fx_sql(f,
	       "CREATE TABLE @S.chunks (id bigint PRIMARY KEY, doc bigint, tenant text, pos int,"
	       " body text);"
	       "INSERT INTO @S.chunks SELECT g, 1, 'acme', g, 'a' || g FROM generate_series(1, 4) g;"
	       "INSERT INTO @S.chunks SELECT g, 2, 'globex', g, 'g' || g FROM generate_series(5, 6) g;"
	       "INSERT INTO @S.vecs SELECT id, tenant, 'm1', encode(sha256(convert_to(body, 'UTF8')),"
	       " 'hex'), ARRAY[1, 0, 0, 0]::real[] FROM @S.chunks");
}

static void orphans(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;

	mapped_fixture(&f, b);
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	fx_sql(&f, "INSERT INTO @S.vecs VALUES (999, 'acme', 'm1', 'ab', ARRAY[1,0,0,0]::real[])");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "orphans", 1, false, 999, "whose chunk does not exist");
	cr_expect_eq(nissues(o), 1, "%s", cJSON_PrintUnformatted(o));
	cr_expect_eq(num(o, "vectors"), 5, "the orphan is a vector row of acme");
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, orphan_rows_are_reported) { orphans(BACKEND_PG); }
Test(pglite_verify, orphan_rows_are_reported) { orphans(BACKEND_PGLITE); }

/* A row filed under acme that points at globex's chunk 5: acme sees it
 * going out, globex sees it coming in; both fail. */
static void cross_tenant(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;
	const cJSON *iso, *det;

	mapped_fixture(&f, b);
	fx_sql(&f, "INSERT INTO @S.vecs VALUES (5, 'acme', 'm1', encode(sha256('g5'::bytea), 'hex'),"
		   " ARRAY[1,0,0,0]::real[])");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "cross_tenant", 1, false, 5, "another collection's chunk");
	det = cJSON_GetObjectItemCaseSensitive(issue(o, "cross_tenant"), "details");
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(det, 0),
							  "collection")->valuestring, "globex");
	cr_expect_null(issue(o, "cross_tenant_inbound"));
	iso = cJSON_GetObjectItemCaseSensitive(o, "isolation");
	cr_expect_eq(num(iso, "cross_tenant"), 1);
	cr_expect_eq(num(iso, "cross_tenant_inbound"), 0);
	cJSON_Delete(o);

	o = verify_json(&f, "globex", NULL, &rc);
	cr_expect_eq(rc, 1, "a foreign row on globex's chunk must fail globex too");
	expect_issue(o, "cross_tenant_inbound", 1, false, 5, "filed under another collection");
	det = cJSON_GetObjectItemCaseSensitive(issue(o, "cross_tenant_inbound"), "details");
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(det, 0),
							  "filed_under")->valuestring, "acme");
	cr_expect_null(issue(o, "cross_tenant"));
	cr_expect_eq(nissues(o), 1, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, cross_tenant_rows_fail_both_collections) { cross_tenant(BACKEND_PG); }
Test(pglite_verify, cross_tenant_rows_fail_both_collections) { cross_tenant(BACKEND_PGLITE); }

/* Lookup mode: the collection is a key into a lookup table; globex's only
 * vector is filed under acme's key. */
static void lookup_mode(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;
	FILE *cf;

	fx_init(&f, b, "COLLECTION_MODE=lookup\nCHUNKS_COLLECTION_COLUMN=collection_id\n"
		       "EMBEDDINGS_COLLECTION_COLUMN=collection_id\n"
		       "EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n");
	cf = fopen(f.config, "a");
	cr_assert_not_null(cf);
	fprintf(cf, "COLLECTIONS_TABLE=%s.collections\n", f.schema);
	fclose(cf);
	with_vectors(&f, "CREATE TABLE @S.document_embeddings (chunk_id bigint PRIMARY KEY,"
			 " collection_id int, model text, content_sha256 bytea, embedding %s)");
	fx_sql(&f,
	       "CREATE TABLE @S.collections (id int PRIMARY KEY, name text UNIQUE);"
	       "CREATE TABLE @S.document_chunks (id bigint PRIMARY KEY, document_id bigint,"
	       " collection_id int, chunk_index int, content text);"
	       "INSERT INTO @S.collections VALUES (1, 'acme'), (2, 'globex');"
	       "INSERT INTO @S.document_chunks VALUES (1, 1, 1, 0, 'one'), (2, 1, 1, 1, 'two'),"
	       " (4, 2, 2, 0, 'four');"
	       "INSERT INTO @S.document_embeddings VALUES"
	       " (1, 1, 'm1', sha256('one'::bytea), ARRAY[1,0,0,0]::real[]),"
	       " (2, 1, 'm1', sha256('two'::bytea), ARRAY[1,0,0,0]::real[]),"
	       " (4, 1, 'm1', sha256('four'::bytea), ARRAY[1,0,0,0]::real[])");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	cr_expect_eq(num(o, "chunks"), 2);
	expect_issue(o, "cross_tenant", 1, false, 4, "another collection's chunk");
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
		cJSON_GetObjectItemCaseSensitive(issue(o, "cross_tenant"), "details"), 0),
		"collection")->valuestring, "globex");
	cr_expect_eq(nissues(o), 1, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	o = verify_json(&f, "globex", NULL, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "missing_row", 1, false, 4, "no embedding row");
	expect_issue(o, "cross_tenant_inbound", 1, false, 4, "filed under another collection");
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, lookup_mode_audits_isolation_both_ways) { lookup_mode(BACKEND_PG); }
Test(pglite_verify, lookup_mode_audits_isolation_both_ways) { lookup_mode(BACKEND_PGLITE); }

/* Inline layout: the vector is a column of the chunk table. */
static void inline_layout(enum backend b)
{
	struct fx f;
	int rc;
	cJSON *o;

	fx_init(&f, b, "SCHEMA_LAYOUT=inline\nEMBEDDINGS_VECTOR_COLUMN=emb\n"
		       "EMBEDDINGS_MODEL_COLUMN=emb_model\nEMBEDDINGS_HASH_COLUMN=emb_sha\n"
		       "EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n");
	with_vectors(&f, "CREATE TABLE @S.document_chunks (id bigint PRIMARY KEY,"
			 " document_id bigint, collection text, chunk_index int, content text,"
			 " emb %s, emb_model text, emb_sha bytea)");
	fx_sql(&f, "INSERT INTO @S.document_chunks VALUES"
		   " (1, 1, 'acme', 0, 'one', ARRAY[1,0,0,0]::real[], 'm1', sha256('one'::bytea)),"
		   " (2, 1, 'acme', 1, 'two', ARRAY[1,0,0,0]::real[], 'm1', sha256('two'::bytea))");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	cr_expect_eq(num(o, "vectors"), 2);
	cJSON_Delete(o);
	fx_sql(&f, "UPDATE @S.document_chunks SET emb = NULL WHERE id = 2");
	o = verify_json(&f, "acme", NULL, &rc);
	cr_expect_eq(rc, 1);
	expect_issue(o, "null_vector", 1, false, 2, "vector column is NULL");
	cr_expect_eq(nissues(o), 1, "%s", cJSON_PrintUnformatted(o));
	cJSON_Delete(o);
	fx_free(&f);
}

Test(pg_verify, inline_layout_reports_null_vectors) { inline_layout(BACKEND_PG); }
Test(pglite_verify, inline_layout_reports_null_vectors) { inline_layout(BACKEND_PGLITE); }

/* --- plain output ---------------------------------------------------------- */

static size_t width(const char *line, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		w += ((unsigned char)line[i] & 0xc0) != 0x80;
	return w;
}

/* Every kind at once, a long quarantine reason with a newline in it: the
 * report still fits 80 columns and names each kind and example. */
static void plain_fits(enum backend b)
{
	struct fx f;
	struct proc_result r;

	fresh_fixture(&f, b);
	fx_sql(&f, "DELETE FROM @S.document_embeddings WHERE chunk_id IN (1, 6);"
		   "UPDATE @S.document_embeddings SET embedding = NULL WHERE chunk_id = 2;"
		   "UPDATE @S.document_embeddings SET model = 'an-older-embedding-model-v0'"
		   " WHERE chunk_id = 3;"
		   "UPDATE @S.document_chunks SET content = 'new text' WHERE id = 4;"
		   "INSERT INTO @T.quarantine (collection, chunk_id, reason) VALUES ('acme', 6,"
		   " 'HTTP 413 from https://embed.example/v1/embeddings: the input of 9000 tokens"
		   " is longer than the model''s context window of 8192 tokens;\nsplit the chunk"
		   " or raise MAX_CHUNK_SIZE and re-chunk the document before trying again')");
	cr_assert_eq(run(&f, &r, (const char *[]){ "verify", "-C", "acme", NULL }), 1,
		     "%s%s", r.out, r.err);
	for (const char *p = r.out; *p;) {
		size_t n = strcspn(p, "\n");
		cr_expect_leq(width(p, n), 80, "line wider than 80 columns: %.*s", (int)n, p);
		p += n + (p[n] == '\n');
	}
	HAS(r.out, "[FAIL] chunks without an embedding row (missing_row): 1");
	HAS(r.out, "e.g. #1");
	HAS(r.out, "#4 embedded_at:");
	HAS(r.out, "#3 model: an-older-embedding-model-v0");
	HAS(r.out, "[ok]   quarantined chunks, explained (quarantined): 1");
	HAS(r.out, "#6 reason: HTTP 413");
	HAS(r.out, "isolation: 0 rows filed under \"acme\"");
	HAS(r.out, "result: NOT OK");
	proc_result_free(&r);
	{
		int rc;
		cJSON *o = verify_json(&f, "acme", NULL, &rc);
		const cJSON *d;

		cr_assert_not_null(issue(o, "quarantined"));
		d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(issue(o, "quarantined"),
									"details"), 0);
		const char *reason = cJSON_GetObjectItemCaseSensitive(d, "reason")->valuestring;

		HAS(reason, "8192 tokens; split the chunk");
		cr_expect_null(strchr(reason, '\n'), "the reason must be one line: %s", reason);
		cJSON_Delete(o);
	}
	fx_free(&f);
}

Test(pg_verify, plain_report_fits_80_columns) { plain_fits(BACKEND_PG); }
Test(pglite_verify, plain_report_fits_80_columns) { plain_fits(BACKEND_PGLITE); }
