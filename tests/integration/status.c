/*
 * status.c - `embfill status` against hand-built fixtures on PostgreSQL 15
 * (real[] vectors) and PGlite (pgvector), in every layout.
 *
 * Suites named pglite_* run one test at a time (PGlite serves one
 * connection); tests/integration/run.sh takes care of that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "fixture.h"

/* Tables of a pipeline's own need pgvector created first on PGlite. */
static void need_vector(enum backend b)
{
	if (b == BACKEND_PGLITE)
		sql_exec(b, "CREATE EXTENSION IF NOT EXISTS vector");
}

static const char *vec_type(enum backend b)
{
	return b == BACKEND_PG ? "real[]" : "vector";
}

/* The default layout, created by `embfill schema init`, with acme holding
 * one chunk of every state and globex all fresh. */
static void default_fixture(struct fx *f)
{
	struct proc_result r;
	const char *init[] = { "schema", "init", "--dim", "4", NULL };

	cr_assert_eq(fx_run(f, &r, init), 0, "schema init failed: %s", r.err);
	proc_result_free(&r);
	fx_sql(f,
	       "INSERT INTO @S.documents (id, collection, title, source_uri, body) VALUES"
	       " (1, 'acme', 'Acme handbook', 'file:///acme', 'a'),"
	       " (2, 'globex', 'Globex notes', 'file:///globex', 'g');"
	       "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
	       " SELECT g, 1, 'acme', g, 'acme chunk ' || g FROM generate_series(1, 10) g;"
	       "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
	       " SELECT g, 2, 'globex', g, 'globex chunk ' || g FROM generate_series(11, 13) g;"
	       "INSERT INTO @S.document_embeddings"
	       " (chunk_id, collection, model, dim, content_sha256, embedding)"
	       " SELECT c.id, c.collection,"
	       "  CASE WHEN c.id IN (5, 7) THEN 'm0' ELSE 'm1' END, 4,"
	       "  CASE WHEN c.id IN (6, 7) THEN sha256('old text'::bytea)"
	       "       ELSE sha256(convert_to(c.content, 'UTF8')) END,"
	       "  CASE WHEN c.id = 4 THEN NULL ELSE ARRAY[0.5, 0.5, 0.5, 0.5]::real[] END"
	       " FROM @S.document_chunks c WHERE c.id NOT IN (3, 9);"
	       "INSERT INTO @T.quarantine (collection, chunk_id, reason)"
	       " VALUES ('acme', 9, 'HTTP 400: input rejected');");
}

static void default_layout_counts(enum backend b)
{
	struct fx f;
	cJSON *arr;

	fx_init(&f, b, NULL);
	default_fixture(&f);
	arr = fx_status(&f, NULL);
	cr_assert_eq(cJSON_GetArraySize(arr), 2);
	fx_expect(arr, "acme", (struct counts){ .chunks = 10, .embedded = 7, .missing = 3,
						.stale = 3, .stale_model = 2, .stale_content = 2,
						.quarantined = 1 });
	fx_expect(arr, "globex", (struct counts){ .chunks = 3, .embedded = 3 });
	cJSON_Delete(arr);

	/* a chunk edited after it was embedded turns stale by content */
	fx_sql(&f, "UPDATE @S.document_chunks SET content = 'rewritten' WHERE id = 1");
	arr = fx_status(&f, (const char *[]){ "-C", "acme", NULL });
	cr_assert_eq(cJSON_GetArraySize(arr), 1);
	cr_expect_eq(fx_num(fx_row(arr, "acme"), "stale_content"), 3);
	cr_expect_eq(fx_num(fx_row(arr, "acme"), "stale"), 4);
	cJSON_Delete(arr);

	/* another EMBED_DIM makes every embedded vector stale by dimension */
	arr = fx_status(&f, (const char *[]){ "--set", "EMBED_DIM=5", NULL });
	cr_expect_eq(fx_num(fx_row(arr, "acme"), "stale_dim"), 7);
	cr_expect_eq(fx_num(fx_row(arr, "globex"), "stale_dim"), 3);
	cr_expect_eq(fx_num(fx_row(arr, "globex"), "stale"), 3);
	cJSON_Delete(arr);
	fx_free(&f);
}

Test(pg_status, default_layout_counts_every_state) { default_layout_counts(BACKEND_PG); }
Test(pglite_status, default_layout_counts_every_state) { default_layout_counts(BACKEND_PGLITE); }

static void default_schema_refuses_cross_tenant(enum backend b)
{
	struct fx f;
	char *st;

	fx_init(&f, b, NULL);
	default_fixture(&f);
	fx_sql(&f, "DELETE FROM @S.document_embeddings WHERE chunk_id = 12");
	{
		char *sql = NULL;
		cr_assert(asprintf(&sql, "INSERT INTO \"%s\".document_embeddings (chunk_id,"
					 " collection, model, dim, content_sha256, embedding)"
					 " VALUES (12, 'acme', 'm1', 4, sha256('x'::bytea),"
					 " ARRAY[1,2,3,4]::real[])", f.schema) > 0);
		st = sql_try(b, sql);
		free(sql);
	}
	cr_expect_str_eq(st, "23503", "a vector filed under another tenant must be refused by "
				      "the foreign key, got SQLSTATE \"%s\"", st);
	free(st);
	fx_free(&f);
}

Test(pg_status, default_schema_refuses_cross_tenant_rows)
{
	default_schema_refuses_cross_tenant(BACKEND_PG);
}
Test(pglite_status, default_schema_refuses_cross_tenant_rows)
{
	default_schema_refuses_cross_tenant(BACKEND_PGLITE);
}

static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	char *out = malloc(strlen(s) * 2 + 1024), *o = out;

	for (const char *p = s; *p;) {
		if (strncmp(p, from, fl) == 0) {
			memcpy(o, to, tl);
			o += tl;
			p += fl;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* A pipeline's own tables: hostile names, hex-text hashes, no foreign key,
 * no fixed dimension, so orphans, cross-tenant rows and mixed dimensions
 * can all exist and must all be counted. */
static void mapped_separate(enum backend b)
{
	struct fx f;
	cJSON *arr;
	char *extra = NULL;
	char sch[64];

	/* unique per process: PGlite keeps one database for every test run */
	snprintf(sch, sizeof(sch), "we\"ird; sch %d", (int)getpid());
	cr_assert(asprintf(&extra,
			   "CHUNKS_TABLE='%s.Chunk \"Store\"; --'\n"
			   "CHUNKS_ID_COLUMN=Id\nCHUNKS_COLLECTION_COLUMN=tenant\n"
			   "CHUNKS_DOCUMENT_COLUMN=doc\nCHUNKS_INDEX_COLUMN=pos\n"
			   "CHUNKS_CONTENT_COLUMN=body text\n"
			   "EMBEDDINGS_TABLE='%s.vecs'\nEMBEDDINGS_CHUNK_COLUMN=chunk\n"
			   "EMBEDDINGS_COLLECTION_COLUMN=tenant\nEMBEDDINGS_MODEL_COLUMN=model name\n"
			   "EMBEDDINGS_HASH_COLUMN=sha\nEMBEDDINGS_VECTOR_COLUMN=v\n"
			   "EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n",
			   sch, sch) > 0);
	fx_init(&f, b, extra);
	free(extra);
	{
		char *ddl = NULL, *out;
		char qs[80];
		snprintf(qs, sizeof(qs), "\"we\"\"ird; sch %d\"", (int)getpid());
		cr_assert(asprintf(&ddl,
				"CREATE SCHEMA \"we\"\"ird; sch\";"
			"CREATE TABLE \"we\"\"ird; sch\".\"Chunk \"\"Store\"\"; --\" (\"Id\" bigint"
			" PRIMARY KEY, doc bigint, tenant text, pos int, \"body text\" text);"
			"CREATE INDEX ON \"we\"\"ird; sch\".\"Chunk \"\"Store\"\"; --\" (tenant, \"Id\");"
			"CREATE TABLE \"we\"\"ird; sch\".vecs (chunk bigint UNIQUE, tenant text,"
			" \"model name\" text, sha text, v %s);"
			"INSERT INTO \"we\"\"ird; sch\".\"Chunk \"\"Store\"\"; --\" VALUES"
			" (1, 1, 'acme', 0, 'one'), (2, 1, 'acme', 1, 'two'),"
			" (3, 1, 'acme', 2, 'three'), (4, 1, 'acme', 3, 'four'),"
			" (5, 2, 'globex', 0, 'five'), (6, 2, 'globex', 1, 'six');"
			"INSERT INTO \"we\"\"ird; sch\".vecs VALUES"
			" (1, 'acme', 'm1', encode(sha256('one'::bytea), 'hex'), ARRAY[1,0,0,0]::real[]),"
			" (2, 'acme', 'm1', 'deadbeef', ARRAY[1,0,0,0]::real[]),"
			" (3, 'acme', 'm1', upper(encode(sha256('three'::bytea), 'hex')),"
			"  ARRAY[1,0,0]::real[]),"
			" (999, 'acme', 'm1', 'ab', ARRAY[1,0,0,0]::real[]),"
			" (5, 'acme', 'm1', encode(sha256('five'::bytea), 'hex'), ARRAY[1,0,0,0]::real[]),"
			" (6, 'globex', 'm1', encode(sha256('six'::bytea), 'hex'), ARRAY[1,0,0,0]::real[])",
			vec_type(b)) > 0);
		out = replace_all(ddl, "\"we\"\"ird; sch\"", qs);
		need_vector(b);
		sql_exec(b, out);
		free(out);
		free(ddl);
	}
	arr = fx_status(&f, NULL);
	fx_expect(arr, "acme", (struct counts){ .chunks = 4, .embedded = 3, .missing = 1,
						.stale = 2, .stale_dim = 1, .stale_content = 1,
						.orphans = 1, .cross_tenant = 1 });
	fx_expect(arr, "globex", (struct counts){ .chunks = 2, .embedded = 1, .missing = 1 });
	cJSON_Delete(arr);
	fx_free(&f);
}

Test(pg_status, mapped_layout_counts_orphans_cross_tenant_and_mixed_dims)
{
	mapped_separate(BACKEND_PG);
}
Test(pglite_status, mapped_layout_counts_orphans_cross_tenant_and_mixed_dims)
{
	mapped_separate(BACKEND_PGLITE);
}

/* Embedding columns on the chunk table itself: NULL means missing. */
static void inline_layout(enum backend b)
{
	struct fx f;
	cJSON *arr;
	char *ddl = NULL;

	fx_init(&f, b, "SCHEMA_LAYOUT=inline\nEMBEDDINGS_VECTOR_COLUMN=emb\n"
		       "EMBEDDINGS_MODEL_COLUMN=emb_model\nEMBEDDINGS_HASH_COLUMN=emb_sha\n"
		       "EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n");
	cr_assert(asprintf(&ddl,
		"CREATE SCHEMA \"%s\";"
		"CREATE TABLE \"%s\".document_chunks (id bigint PRIMARY KEY, document_id bigint,"
		" collection text, chunk_index int, content text, emb %s, emb_model text,"
		" emb_sha bytea);"
		"INSERT INTO \"%s\".document_chunks VALUES"
		" (1, 1, 'acme', 0, 'one', ARRAY[1,0,0,0]::real[], 'm1', sha256('one'::bytea)),"
		" (2, 1, 'acme', 1, 'two', NULL, NULL, NULL),"
		" (3, 1, 'acme', 2, 'three', ARRAY[1,0,0,0]::real[], 'old', sha256('three'::bytea)),"
		" (4, 1, 'acme', 3, 'four', ARRAY[1,0,0,0]::real[], 'm1', sha256('4'::bytea)),"
		" (5, 2, 'globex', 0, 'five', NULL, NULL, NULL)",
		f.schema, f.schema, b == BACKEND_PG ? "real[]" : "vector(4)", f.schema) > 0);
	need_vector(b);
	sql_exec(b, ddl);
	free(ddl);
	arr = fx_status(&f, NULL);
	fx_expect(arr, "acme", (struct counts){ .chunks = 4, .embedded = 3, .missing = 1,
						.stale = 2, .stale_model = 1, .stale_content = 1 });
	fx_expect(arr, "globex", (struct counts){ .chunks = 1, .missing = 1 });
	cJSON_Delete(arr);
	fx_free(&f);
}

Test(pg_status, inline_layout_counts) { inline_layout(BACKEND_PG); }
Test(pglite_status, inline_layout_counts) { inline_layout(BACKEND_PGLITE); }

/* The collection found through a lookup table (name -> key). */
static void lookup_mode(enum backend b)
{
	struct fx f;
	cJSON *arr;
	char *ddl = NULL;

	fx_init(&f, b, "COLLECTION_MODE=lookup\nCHUNKS_COLLECTION_COLUMN=collection_id\n"
		       "EMBEDDINGS_COLLECTION_COLUMN=collection_id\n"
		       "EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n");
	{
		char *line = NULL;
		FILE *cf = fopen(f.config, "a");
		cr_assert(asprintf(&line, "COLLECTIONS_TABLE=%s.collections\n", f.schema) > 0);
		fputs(line, cf);
		fclose(cf);
		free(line);
	}
	cr_assert(asprintf(&ddl,
		"CREATE SCHEMA \"%1$s\";"
		"CREATE TABLE \"%1$s\".collections (id int PRIMARY KEY, name text UNIQUE);"
		"CREATE TABLE \"%1$s\".document_chunks (id bigint PRIMARY KEY, document_id bigint,"
		" collection_id int, chunk_index int, content text);"
		"CREATE TABLE \"%1$s\".document_embeddings (chunk_id bigint PRIMARY KEY,"
		" collection_id int, model text, content_sha256 bytea, embedding %2$s);"
		"INSERT INTO \"%1$s\".collections VALUES (1, 'acme'), (2, 'globex');"
		"INSERT INTO \"%1$s\".document_chunks VALUES (1, 1, 1, 0, 'one'),"
		" (2, 1, 1, 1, 'two'), (3, 1, 1, 2, 'three'), (4, 2, 2, 0, 'four');"
		"INSERT INTO \"%1$s\".document_embeddings VALUES"
		" (1, 1, 'm1', sha256('one'::bytea), ARRAY[1,0,0,0]::real[]),"
		" (2, 1, 'old', sha256('two'::bytea), ARRAY[1,0,0,0]::real[]),"
		" (4, 1, 'm1', sha256('four'::bytea), ARRAY[1,0,0,0]::real[])",
		f.schema, b == BACKEND_PG ? "real[]" : "vector(4)") > 0);
	need_vector(b);
	sql_exec(b, ddl);
	free(ddl);
	arr = fx_status(&f, NULL);
	fx_expect(arr, "acme", (struct counts){ .chunks = 3, .embedded = 2, .missing = 1,
						.stale = 1, .stale_model = 1, .cross_tenant = 1 });
	fx_expect(arr, "globex", (struct counts){ .chunks = 1, .missing = 1 });
	cJSON_Delete(arr);
	arr = fx_status(&f, (const char *[]){ "-C", "globex", NULL });
	cr_expect_eq(cJSON_GetArraySize(arr), 1);
	fx_expect(arr, "globex", (struct counts){ .chunks = 1, .missing = 1 });
	cJSON_Delete(arr);
	fx_free(&f);
}

Test(pg_status, lookup_mode_counts) { lookup_mode(BACKEND_PG); }
Test(pglite_status, lookup_mode_counts) { lookup_mode(BACKEND_PGLITE); }

/* Random states over many chunks, against ground truth written the plain
 * way (one EXISTS per state), not the way embfill counts. */
static void random_against_ground_truth(enum backend b)
{
	struct fx f;
	struct proc_result r;
	const char *init[] = { "schema", "init", "--dim", "4", NULL };
	static const char *colls[] = { "alpha", "beta", "gamma" };
	cJSON *arr;

	fx_init(&f, b, NULL);
	cr_assert_eq(fx_run(&f, &r, init), 0, "%s", r.err);
	proc_result_free(&r);
	fx_sql(&f,
	       "SELECT setseed(0.42);"
	       "INSERT INTO @S.documents (id, collection, title, body)"
	       " SELECT g, (ARRAY['alpha','beta','gamma'])[g], 'doc', 'b' FROM generate_series(1,3) g;"
	       "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
	       " SELECT g, 1 + g % 3, (ARRAY['alpha','beta','gamma'])[1 + g % 3], g,"
	       "  'text ' || g FROM generate_series(1, 1500) g;"
	       "DROP TABLE IF EXISTS pick; CREATE TEMP TABLE pick AS SELECT id, collection, content, random() AS r,"
	       " random() AS r2 FROM @S.document_chunks;"
	       "INSERT INTO @S.document_embeddings (chunk_id, collection, model, dim,"
	       " content_sha256, embedding)"
	       " SELECT id, collection, CASE WHEN r2 < 0.2 THEN 'm0' ELSE 'm1' END, 4,"
	       "  CASE WHEN r2 > 0.85 THEN sha256('stale'::bytea)"
	       "       ELSE sha256(convert_to(content, 'UTF8')) END,"
	       "  CASE WHEN r < 0.1 THEN NULL ELSE ARRAY[1,2,3,4]::real[] END"
	       " FROM pick WHERE r < 0.8;");
	arr = fx_status(&f, NULL);
	for (int i = 0; i < 3; i++) {
		char *q[4] = { NULL };
		cJSON *row = fx_row(arr, colls[i]);
		cr_assert(asprintf(&q[0], "SELECT count(*) FROM \"%s\".document_chunks c WHERE"
					  " collection = '%s' AND NOT EXISTS (SELECT 1 FROM"
					  " \"%s\".document_embeddings e WHERE e.chunk_id = c.id AND"
					  " e.embedding IS NOT NULL)", f.schema, colls[i], f.schema) > 0);
		cr_assert(asprintf(&q[1], "SELECT count(*) FROM \"%s\".document_embeddings WHERE"
					  " collection = '%s' AND embedding IS NOT NULL AND model <> 'm1'",
				   f.schema, colls[i]) > 0);
		cr_assert(asprintf(&q[2], "SELECT count(*) FROM \"%s\".document_embeddings e JOIN"
					  " \"%s\".document_chunks c ON c.id = e.chunk_id WHERE"
					  " e.collection = '%s' AND e.embedding IS NOT NULL AND"
					  " e.content_sha256 <> sha256(convert_to(c.content, 'UTF8'))",
				   f.schema, f.schema, colls[i]) > 0);
		cr_assert(asprintf(&q[3], "SELECT count(*) FROM \"%s\".document_chunks WHERE"
					  " collection = '%s'", f.schema, colls[i]) > 0);
		cr_expect_eq(fx_num(row, "missing"), sql_ll(b, q[0]), "%s missing", colls[i]);
		cr_expect_eq(fx_num(row, "stale_model"), sql_ll(b, q[1]), "%s model", colls[i]);
		cr_expect_eq(fx_num(row, "stale_content"), sql_ll(b, q[2]), "%s content", colls[i]);
		cr_expect_eq(fx_num(row, "chunks"), sql_ll(b, q[3]), "%s chunks", colls[i]);
		cr_expect_eq(fx_num(row, "chunks"), fx_num(row, "embedded") + fx_num(row, "missing"));
		cr_expect_gt(fx_num(row, "missing"), 0);
		cr_expect_gt(fx_num(row, "stale_content"), 0);
		for (int k = 0; k < 4; k++)
			free(q[k]);
	}
	cJSON_Delete(arr);
	fx_free(&f);
}

Test(pg_status, random_states_match_ground_truth, .timeout = 120)
{
	random_against_ground_truth(BACKEND_PG);
}
Test(pglite_status, random_states_match_ground_truth, .timeout = 120)
{
	random_against_ground_truth(BACKEND_PGLITE);
}
