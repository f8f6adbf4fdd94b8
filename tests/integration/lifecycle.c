/*
 * lifecycle.c - a model or chunking change through a new collection:
 * `chunk`, `run --into`, `swap`, `rollback`, `run --backup`, and the
 * approval a change of provider needs.  Real PostgreSQL and PGlite
 * (pgvector), the sandbox embedder over real HTTP, the binary as an
 * operator runs it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "embedder_proc.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define NDOCS 12

struct lt {
	struct fx f;
	struct embedder_proc e;
};

static void add_settings(struct fx *f, const char *fmt, const char *a)
{
	FILE *cf = fopen(f->config, "a");

	cr_assert(cf);
	fprintf(cf, fmt, a);
	fclose(cf);
}

/* Schema; NDOCS documents of acme (and two of globex) with bodies of
 * paragraphs and sentences, cut by hand into 400-byte chunks; an embedder
 * that knows models m1 and m2. */
static void lt_start(struct lt *t, enum backend b)
{
	const char *emb[] = { "--dim", "64", "--model", "m1,m2", NULL };
	const char *init[] = { "schema", "init", "--dim", "64", NULL };
	struct proc_result r;

	fx_init(&t->f, b, "EMBED_PROVIDER=openai\nEMBED_DIM=64\nMAX_CHUNK_SIZE=400\n"
			  "CHUNK_OVERLAP=0\nEMBED_MAX_ATTEMPTS=8\n");
	cr_assert_eq(embedder_start(&t->e, emb), 0, "the sandbox embedder did not start");
	add_settings(&t->f, "EMBED_URL=%s\n", t->e.url);
	add_settings(&t->f, "HISTORYLOG=%s/historylog.md\n", t->f.dir);
	cr_assert_eq(fx_run(&t->f, &r, init), 0, "%s", r.err);
	proc_result_free(&r);
	fx_sql(&t->f,
	       "INSERT INTO @S.documents (id, collection, title, source_uri, body)"
	       " SELECT g, CASE WHEN g <= " "12" " THEN 'acme' ELSE 'globex' END, 'Doc ' || g,"
	       "  'file:///doc' || g, string_agg((SELECT string_agg(initcap(substr(md5(g || ':' || p"
	       "   || ':' || k), 1, 4)) || ' ' || (SELECT string_agg(substr(md5(g || ':' || p || ':' || k || ':' || w), 1,"
	       "   3 + w % 6), ' ') FROM generate_series(1, 6 + k % 5) w) || '.', ' ')"
	       "   FROM generate_series(1, 2 + (g + p) % 4) k), E'\\n\\n' ORDER BY p)"
	       " FROM generate_series(1, 14) g, generate_series(1, 1 + g % 5) p GROUP BY g;"
	       "INSERT INTO @S.document_chunks (document_id, collection, chunk_index, content)"
	       " SELECT d.id, d.collection, i, substr(d.body, 1 + i * 400, 400) FROM @S.documents d,"
	       " generate_series(0, 20) i WHERE length(substr(d.body, 1 + i * 400, 400)) > 0");
}

static void lt_stop(struct lt *t)
{
	embedder_stop(&t->e);
	fx_free(&t->f);
}

static int cmd(struct lt *t, struct proc_result *r, const char *const *args)
{
	return fx_run(&t->f, r, args);
}

static void ok(struct lt *t, const char *const *args)
{
	struct proc_result r;
	int rc = cmd(t, &r, args);

	cr_assert_eq(rc, 0, "embfill %s %s exited %d:\n%s%s", args[0], args[1] ? args[1] : "", rc,
		     r.out, r.err);
	proc_result_free(&r);
}

static void run_model(struct lt *t, const char *coll, const char *model, const char *extra)
{
	const char *args[] = { "run", "-C", coll, "--confirm", coll, "--set", model, extra, NULL };

	ok(t, args);
}

/* Every row of a collection's chunks and embeddings, as text, hashed:
 * equal fingerprints mean equal rows, column for column. */
static char *fingerprint(struct lt *t, const char *coll)
{
	char *q = NULL, *out;

	cr_assert(asprintf(&q, "SELECT coalesce(md5(string_agg(x, '|' ORDER BY x)), '-') || ' '"
			       " || count(*) FROM (SELECT 'c' || c::text AS x FROM @S.document_chunks c"
			       " WHERE collection = '%s' UNION ALL SELECT 'e' || e::text FROM"
			       " @S.document_embeddings e WHERE collection = '%s') s", coll, coll) > 0);
	out = fx_text(&t->f, q);
	free(q);
	return out;
}

/* The collection's fingerprint equals want. */
static void same(struct lt *t, const char *coll, const char *want, const char *what)
{
	char *got = fingerprint(t, coll);

	cr_expect_str_eq(got, want, "%s: %s", coll, what);
	free(got);
}

static long long count_of(struct lt *t, const char *fmt, const char *a)
{
	char *q = NULL;
	long long n;

	cr_assert(asprintf(&q, fmt, a) > 0);
	n = fx_ll(&t->f, q);
	free(q);
	return n;
}

/* --- a chunking change: chunk, run --into, swap, rollback ----------------- */

static void chunking_change(enum backend b)
{
	struct lt t;
	struct proc_result r;
	char *live, *globex, *prev_name, *q = NULL;
	long long n_old, n_new, bad;

	lt_start(&t, b);
	run_model(&t, "acme", "EMBED_MODEL=m1", NULL);
	live = fingerprint(&t, "acme");
	globex = fingerprint(&t, "globex");
	n_old = count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection = '%s'",
			 "acme");

	/* cut anew at 150 characters, 30 shared */
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "chunk", "-C", "acme", "--into", "acme_v2",
						   "--set", "MAX_CHUNK_SIZE=150", "--set",
						   "CHUNK_OVERLAP=30", NULL }), 0, "%s", r.err);
	HAS(r.out, "chunked 12 documents of \"acme\" into");
	proc_result_free(&r);
	n_new = count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection = '%s'",
			 "acme_v2");
	cr_expect_gt(n_new, n_old, "smaller chunks, more of them");
	/* every document's text comes back from its new chunks, overlaps
	 * removed; no chunk is empty or longer than the setting */
	bad = fx_ll(&t.f, "SELECT count(*) FROM @S.documents d WHERE d.collection = 'acme_v2' AND"
			  " d.body IS DISTINCT FROM (SELECT string_agg(CASE WHEN c.chunk_index = 0 THEN"
			  " c.content ELSE substr(c.content, 31) END, '' ORDER BY c.chunk_index) FROM"
			  " @S.document_chunks c WHERE c.document_id = d.id)");
	cr_expect_eq(bad, 0, "documents whose chunks do not give their text back");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_chunks WHERE collection ="
				 " 'acme_v2' AND (char_length(content) > 150 OR content = '')"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.documents d JOIN @S.documents o ON"
				 " o.body = d.body AND o.collection = 'acme' WHERE d.collection = 'acme_v2'"),
		     NDOCS, "every document copied once");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.collections WHERE name = 'acme_v2' AND"
				 " max_chunk_size = 150 AND chunk_overlap = 30 AND chunked_from = 'acme'"),
		     1, "the chunking is recorded with the collection");
	same(&t, "acme", live, "chunk touched the live collection");

	/* a second chunk into the same name writes nothing */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "chunk", "-C", "acme", "--into", "acme_v2",
						   NULL }), 2);
	HAS(r.err, "already holds");
	proc_result_free(&r);
	cr_expect_eq(count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection ="
				  " '%s'", "acme_v2"), n_new);

	/* the new model into the new collection; the live one stays as it was */
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						   "--into", "acme_v2", "--set", "EMBED_MODEL=m2",
						   NULL }), 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	same(&t, "acme", live, "run --into touched the live collection");

	cr_assert_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "acme_v2",
						   "--confirm", "acme", "--set", "EMBED_MODEL=m2",
						   "--json", NULL }), 0, "%s%s", r.out, r.err);
	HAS(r.out, "\"swapped\":true");
	proc_result_free(&r);
	cr_expect_eq(count_of(&t, "SELECT count(*) FROM @S.document_embeddings WHERE collection ="
				  " '%s' AND model = 'm2'", "acme"), n_new);
	cr_expect_eq(count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection ="
				  " '%s'", "acme_v2"), 0, "the new name is gone after the swap");
	prev_name = fx_text(&t.f, "SELECT previous_name FROM @T.swaps");
	cr_expect(strncmp(prev_name, "acme__prev_", 11) == 0, "%s", prev_name);
	cr_expect_eq(count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection ="
				  " '%s'", prev_name), n_old, "the old collection is kept");

	/* rollback: the live name holds the old rows again, exactly */
	ok(&t, (const char *[]){ "rollback", "-C", "acme", NULL });
	same(&t, "acme", live, "rollback is not exact");
	cr_expect_eq(count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection ="
				  " '%s'", "acme_v2"), n_new, "the new collection has its name back");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.swaps WHERE rolled_back_at IS NOT NULL"),
		     1);
	same(&t, "globex", globex, "another collection was touched");
	/* both are on record */
	cr_assert(asprintf(&q, "%s/historylog.md", t.f.dir) > 0);
	{
		FILE *h = fopen(q, "r");
		char buf[16384];
		size_t n = h ? fread(buf, 1, sizeof(buf) - 1, h) : 0;

		buf[n] = '\0';
		if (h)
			fclose(h);
		HAS(buf, " - acme - swap 1\n");
		HAS(buf, " - acme - rollback\n");
		cr_expect(!strstr(buf, "**Duration"), "an event entry with a run's duration:\n%s",
			  buf);
		HAS(buf, "rolled back swap 1");
		HAS(buf, "took the name \"acme\"");
		HAS(buf, "embfill --config");
		cr_expect(strstr(buf, "rolled back") < strstr(buf, "took the name"),
			  "newest entry first");
	}
	free(q);
	free(prev_name);
	free(live);
	free(globex);
	lt_stop(&t);
}

Test(pg_lifecycle, a_chunking_change_goes_through_a_new_collection_and_back, .timeout = 120)
{
	chunking_change(BACKEND_PG);
}

Test(pglite_lifecycle, a_chunking_change_goes_through_a_new_collection_and_back,
     .timeout = 180)
{
	chunking_change(BACKEND_PGLITE);
}

/* --- a model change while a reader queries the collection ------------------ */

struct reader {
	char *dsn, *sql;
	atomic_int stop;
	atomic_llong queries;
	long long mixed, seen_m1, seen_m2, partial, expected;
	char error[256];
};

static void *read_loop(void *arg)
{
	struct reader *rd = arg;
	PGconn *c = PQconnectdb(rd->dsn);

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(rd->error, sizeof(rd->error), "%s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	while (!atomic_load(&rd->stop)) {
		PGresult *r = PQexec(c, rd->sql);

		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(rd->error, sizeof(rd->error), "%s", PQerrorMessage(c));
			PQclear(r);
			break;
		}
		rd->queries++;
		if (atoll(PQgetvalue(r, 0, 0)) != 1)
			rd->mixed++;
		else if (strcmp(PQgetvalue(r, 0, 1), "m1") == 0)
			rd->seen_m1++;
		else if (strcmp(PQgetvalue(r, 0, 1), "m2") == 0)
			rd->seen_m2++;
		if (atoll(PQgetvalue(r, 0, 2)) != rd->expected)
			rd->partial++;
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

Test(pg_lifecycle, a_reader_never_sees_two_models_during_the_swap, .timeout = 180)
{
	struct lt t;
	struct reader rd;
	pthread_t th;
	long long n;

	lt_start(&t, BACKEND_PG);
	run_model(&t, "acme", "EMBED_MODEL=m1", NULL);
	n = count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection = '%s'", "acme");
	ok(&t, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--into", "acme_next",
				 "--set", "EMBED_MODEL=m2", NULL });
	memset(&rd, 0, sizeof(rd));
	rd.dsn = strdup(test_dsn(BACKEND_PG));
	rd.expected = n;
	/* what a retrieval query of the application sees of acme: the chunks
	 * with their vectors, in one statement */
	cr_assert(asprintf(&rd.sql, "SELECT count(DISTINCT e.model), min(e.model), count(*) FROM"
				    " \"%s\".document_chunks c JOIN \"%s\".document_embeddings e ON"
				    " e.chunk_id = c.id AND e.collection = c.collection WHERE"
				    " c.collection = 'acme'", t.f.schema, t.f.schema) > 0);
	cr_assert_eq(pthread_create(&th, NULL, read_loop, &rd), 0);
	/* from here to the join nothing may end the test early: the reader
	 * holds pointers into this frame */
	{
		struct proc_result r1, r2;
		int rc1, rc2;
		long long at;

		while (atomic_load(&rd.queries) < 20 && !rd.error[0])
			;
		rc1 = cmd(&t, &r1, (const char *[]){ "swap", "-C", "acme", "--with", "acme_next",
						     "--confirm", "acme", "--set", "EMBED_MODEL=m2",
						     NULL });
		at = atomic_load(&rd.queries);
		while (atomic_load(&rd.queries) < at + 20 && !rd.error[0])
			;
		rc2 = cmd(&t, &r2, (const char *[]){ "rollback", "-C", "acme", NULL });
		at = atomic_load(&rd.queries);
		while (atomic_load(&rd.queries) < at + 20 && !rd.error[0])
			;
		atomic_store(&rd.stop, 1);
		pthread_join(th, NULL);
		cr_expect_eq(rc1, 0, "swap: %s%s", r1.out, r1.err);
		cr_expect_eq(rc2, 0, "rollback: %s%s", r2.out, r2.err);
		proc_result_free(&r1);
		proc_result_free(&r2);
	}
	cr_assert_eq(rd.error[0], '\0', "reader: %s", rd.error);
	cr_expect_eq(rd.mixed, 0, "%lld of %lld queries saw two models at once", rd.mixed,
		     rd.queries);
	cr_expect_eq(rd.partial, 0, "%lld of %lld queries saw a partial collection", rd.partial,
		     rd.queries);
	cr_expect_gt(rd.seen_m1, 0, "the reader never saw the old model");
	cr_expect_gt(rd.seen_m2, 0, "the reader never saw the new model");
	free(rd.dsn);
	free(rd.sql);
	lt_stop(&t);
}

/* --- the gate ------------------------------------------------------------------ */

static void swap_refused(enum backend b)
{
	struct lt t;
	struct proc_result r;
	char *live, *next;

	lt_start(&t, b);
	run_model(&t, "acme", "EMBED_MODEL=m1", NULL);
	ok(&t, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--into", "acme_next",
				 "--set", "EMBED_MODEL=m2", NULL });
	/* three vectors of the new collection lost */
	fx_sql(&t.f, "DELETE FROM @S.document_embeddings WHERE chunk_id IN (SELECT id FROM"
		     " @S.document_chunks WHERE collection = 'acme_next' ORDER BY id LIMIT 3)");
	live = fingerprint(&t, "acme");
	next = fingerprint(&t, "acme_next");
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "acme_next",
						   "--confirm", "acme", "--set", "EMBED_MODEL=m2",
						   NULL }), 1, "%s%s", r.out, r.err);
	HAS(r.out, "3 of its");
	HAS(r.err, "nothing was swapped");
	proc_result_free(&r);
	same(&t, "acme", live, "a refused swap changed it");
	same(&t, "acme_next", next, "a refused swap changed it");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.swaps"), 0);
	/* vectors of another model than the settings' are not clean either */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "acme_next",
						   "--confirm", "acme", "--set", "EMBED_MODEL=m1",
						   NULL }), 1);
	proc_result_free(&r);
	/* a confirmation that differs touches nothing, before any check */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "acme_next",
						   "--confirm", "acme ", NULL }), 2);
	HAS(r.err, "differs");
	proc_result_free(&r);
	/* once complete, the swap goes through */
	ok(&t, (const char *[]){ "run", "-C", "acme_next", "--confirm", "acme_next", "--set",
				 "EMBED_MODEL=m2", NULL });
	ok(&t, (const char *[]){ "swap", "-C", "acme", "--with", "acme_next", "--confirm", "acme",
				 "--set", "EMBED_MODEL=m2", NULL });
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.swaps"), 1);
	free(live);
	free(next);
	lt_stop(&t);
}

Test(pg_lifecycle, swap_is_refused_when_the_new_collection_does_not_verify, .timeout = 120)
{
	swap_refused(BACKEND_PG);
}

Test(pglite_lifecycle, swap_is_refused_when_the_new_collection_does_not_verify,
     .timeout = 180)
{
	swap_refused(BACKEND_PGLITE);
}

/* --- backup and rollback ------------------------------------------------------ */

static void backup_exact(enum backend b)
{
	struct lt t;
	struct proc_result r;
	char *before, *globex;

	lt_start(&t, b);
	run_model(&t, "acme", "EMBED_MODEL=m1", NULL);
	run_model(&t, "globex", "EMBED_MODEL=m1", NULL);
	/* fresh, stale by content, NULL and missing rows side by side */
	fx_sql(&t.f, "UPDATE @S.document_embeddings SET content_sha256 = sha256('x'::bytea)"
		     " WHERE collection = 'acme' AND chunk_id % 4 = 1;"
		     "UPDATE @S.document_embeddings SET embedding = NULL WHERE collection = 'acme'"
		     " AND chunk_id % 4 = 2;"
		     "DELETE FROM @S.document_embeddings WHERE collection = 'acme' AND chunk_id % 4 = 3");
	before = fingerprint(&t, "acme");
	globex = fingerprint(&t, "globex");
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						   "--backup", "--set", "EMBED_MODEL=m2", NULL }), 0,
		     "%s%s", r.out, r.err);
	HAS(r.out, "backup:");
	proc_result_free(&r);
	{
		char *after = fingerprint(&t, "acme");
		cr_expect_str_neq(after, before, "the run changed nothing");
		free(after);
	}
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "rollback", "-C", "acme", "--json", NULL }), 0,
		     "%s%s", r.out, r.err);
	HAS(r.out, "\"kind\":\"backup\"");
	proc_result_free(&r);
	same(&t, "acme", before, "rollback did not restore exactly");
	same(&t, "globex", globex, "another collection was touched");
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "rollback", "-C", "acme", NULL }), 2,
		     "a second rollback found something: %s", r.out);
	HAS(r.err, "nothing to roll back");
	proc_result_free(&r);
	/* --backup is for in-place runs */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						   "--into", "acme_x", "--backup", NULL }), 2);
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_chunks WHERE collection ="
				 " 'acme_x'"), 0);
	free(before);
	free(globex);
	lt_stop(&t);
}

Test(pg_lifecycle, rollback_restores_a_backup_row_for_row, .timeout = 120)
{
	backup_exact(BACKEND_PG);
}

Test(pglite_lifecycle, rollback_restores_a_backup_row_for_row, .timeout = 180)
{
	backup_exact(BACKEND_PGLITE);
}

/* --- approval of a provider change ------------------------------------------ */

Test(pg_lifecycle, a_provider_change_is_refused_without_approval, .timeout = 120)
{
	const char *emb[] = { "--dim", "64", "--model", "m1,m2", NULL };
	struct embedder_proc other;
	struct lt t;
	struct proc_result r;
	char url[96], *before;
	long long runs;

	lt_start(&t, BACKEND_PG);
	run_model(&t, "acme", "EMBED_MODEL=m1", NULL);
	cr_assert_eq(embedder_start(&other, emb), 0);
	/* another host: the same loopback address by its name */
	snprintf(url, sizeof(url), "EMBED_URL=http://localhost:%d", other.port);
	/* another port of the same host is the same service's: no approval */
	{
		char same_host[96];

		snprintf(same_host, sizeof(same_host), "EMBED_URL=%s", other.url);
		cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
							   "--set", same_host, "--set",
							   "EMBED_MODEL=m2", NULL }), 0, "%s", r.err);
		proc_result_free(&r);
	}
	/* another provider on the same service is a change */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--set",
						   "EMBED_PROVIDER=tei", "--set", "EMBED_MODEL=m2",
						   NULL }), 2);
	HAS(r.err, "were made by openai");
	proc_result_free(&r);
	before = fingerprint(&t, "acme");
	runs = fx_ll(&t.f, "SELECT count(*) FROM @T.runs");
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--set",
						   url, "--set", "EMBED_MODEL=m1", NULL }), 2);
	HAS(r.err, "provider change");
	HAS(r.err, "--approve-provider-change");
	proc_result_free(&r);
	same(&t, "acme", before, "a refused run wrote");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), runs, "a refused run left a record");
	/* the plan says so too */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "plan", "-C", "acme", "--set", url, NULL }), 0);
	HAS(r.out, "provider change");
	proc_result_free(&r);

	/* into a new collection: its source's provider counts */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						   "--into", "acme_b", "--set", url, "--set",
						   "EMBED_MODEL=m2", NULL }), 2);
	proc_result_free(&r);
	ok(&t, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--into", "acme_b",
				 "--set", url, "--set", "EMBED_MODEL=m2",
				 "--approve-provider-change", NULL });
	/* and the swap asks again */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "acme_b",
						   "--confirm", "acme", "--set", url, "--set",
						   "EMBED_MODEL=m2", NULL }), 2);
	HAS(r.err, "provider change");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.swaps"), 0);
	ok(&t, (const char *[]){ "swap", "-C", "acme", "--with", "acme_b", "--confirm", "acme",
				 "--set", url, "--set", "EMBED_MODEL=m2",
				 "--approve-provider-change", NULL });
	/* approved, the new provider is the collection's own now */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--set",
						   url, "--set", "EMBED_MODEL=m2", NULL }), 0,
		     "%s", r.err);
	proc_result_free(&r);
	free(before);
	embedder_stop(&other);
	lt_stop(&t);
}

/* --- bad input -------------------------------------------------------------------- */

Test(pg_lifecycle, bad_names_and_targets_are_refused_and_nothing_is_written, .timeout = 120)
{
	struct lt t;
	struct proc_result r;
	long long chunks;

	lt_start(&t, BACKEND_PG);
	chunks = fx_ll(&t.f, "SELECT count(*) FROM @S.document_chunks");
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "chunk", "-C", "acme", NULL }), 2);
	HAS(r.err, "--into");
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "chunk", "-C", "acme", "--into", "acme", NULL }),
		     2);
	HAS(r.err, "itself");
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "chunk", "-C", "acmee", "--into", "n", NULL }),
		     2);
	HAS(r.err, "did you mean \"acme\"");
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "chunk", "-C", "acme", "--into", "bad\nname",
						   NULL }), 2);
	proc_result_free(&r);
	/* a target that holds chunks made from elsewhere */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						   "--into", "globex", NULL }), 2);
	HAS(r.err, "not made from \"acme\"");
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "nope",
						   "--confirm", "acme", NULL }), 2);
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "globex",
						   "--confirm", "acme", "--min-hit-rate", "1.5",
						   NULL }), 2);
	HAS(r.err, "--min-hit-rate");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_chunks"), chunks);
	lt_stop(&t);
}

/* --- a dimension change ----------------------------------------------------------- */

static void dimension_change(enum backend b)
{
	const char *emb32[] = { "--dim", "32", "--model", "m3", NULL };
	struct embedder_proc e32;
	struct lt t;
	struct proc_result r;
	char url[96], *live;
	long long n;

	lt_start(&t, b);
	run_model(&t, "acme", "EMBED_MODEL=m1", NULL);
	live = fingerprint(&t, "acme");
	n = count_of(&t, "SELECT count(*) FROM @S.document_chunks WHERE collection = '%s'", "acme");
	cr_assert_eq(embedder_start(&e32, emb32), 0);
	snprintf(url, sizeof(url), "EMBED_URL=%s", e32.url);
	/* in place, the live column cannot take it */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--set",
						   url, "--set", "EMBED_MODEL=m3", "--set",
						   "EMBED_DIM=32", "--approve-provider-change", NULL }), 2);
	HAS(r.err, "--into");
	proc_result_free(&r);
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						   "--into", "acme_32", "--set", url, "--set",
						   "EMBED_MODEL=m3", "--set", "EMBED_DIM=32",
						   "--approve-provider-change", NULL }), 0, "%s%s", r.out,
		     r.err);
	HAS(r.out, "document_embeddings_d32");
	proc_result_free(&r);
	same(&t, "acme", live, "the live collection was touched");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings_d32 WHERE collection"
				 " = 'acme_32' AND model = 'm3'"), n);
	/* status and verify read the new collection's own table */
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "verify", "-C", "acme_32", "--set",
						   "EMBED_MODEL=m3", "--set", "EMBED_DIM=32", NULL }), 0,
		     "%s", r.out);
	proc_result_free(&r);
	{
		cJSON *st = fx_status(&t.f, (const char *[]){ "--set", "EMBED_MODEL=m3", "--set",
							    "EMBED_DIM=32", NULL });
		cr_expect_eq(fx_num(fx_row(st, "acme_32"), "missing"), 0);
		cr_expect_eq(fx_num(fx_row(st, "acme_32"), "stale"), 0);
		cr_expect_eq(fx_num(fx_row(st, "acme"), "stale_dim"), n);
		cJSON_Delete(st);
	}
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "swap", "-C", "acme", "--with", "acme_32",
						   "--confirm", "acme", "--set", url, "--set",
						   "EMBED_MODEL=m3", "--set", "EMBED_DIM=32",
						   "--approve-provider-change", NULL }), 0, "%s%s", r.out,
		     r.err);
	HAS(r.out, "point the application's queries there");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings_d32 WHERE collection"
				 " = 'acme' AND model = 'm3'"), n, "the vectors did not follow the name");
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "spot-check", "-C", "acme", "--set", url,
						   "--set", "EMBED_MODEL=m3", "--set", "EMBED_DIM=32",
						   NULL }), 0, "%s", r.out);
	proc_result_free(&r);
	ok(&t, (const char *[]){ "rollback", "-C", "acme", NULL });
	same(&t, "acme", live, "rollback is not exact");
	free(live);
	embedder_stop(&e32);
	lt_stop(&t);
}

Test(pg_lifecycle, a_dimension_change_gets_a_table_of_its_own_and_swaps, .timeout = 120)
{
	dimension_change(BACKEND_PG);
}

Test(pglite_lifecycle, a_dimension_change_gets_a_table_of_its_own_and_swaps, .timeout = 180)
{
	dimension_change(BACKEND_PGLITE);
}

/* --- lookup mode: the swap renames two rows of the lookup table -------------- */

/* A mapped layout of the test's own: settings, an embedder of dimension 4
 * that knows m1 and m2, tables from ddl (printf: %1$s the schema, %2$s the
 * vector type, %3$s what creates pgvector on PGlite), and embfill's tables. */
static void mapped_start(struct fx *f, struct embedder_proc *e, enum backend b,
			 const char *settings, const char *ddl_fmt)
{
	const char *emb[] = { "--dim", "4", "--model", "m1,m2", NULL };
	struct proc_result r;
	char *ddl = NULL;

	fx_init(f, b, settings);
	cr_assert_eq(embedder_start(e, emb), 0);
	add_settings(f, "EMBED_URL=%s\n", e->url);
	cr_assert(asprintf(&ddl, ddl_fmt, f->schema, b == BACKEND_PG ? "real[]" : "vector(4)",
			   b == BACKEND_PG ? "" : "CREATE EXTENSION IF NOT EXISTS vector;") > 0);
	sql_exec(b, ddl);
	free(ddl);
	cr_assert_eq(fx_run(f, &r, (const char *[]){ "schema", "init", "--dim", "4", NULL }), 0,
		     "%s", r.err);
	proc_result_free(&r);
}

static void lookup_swap(enum backend b)
{
	struct embedder_proc e;
	struct fx f;
	struct proc_result r;
	char *names;

	mapped_start(&f, &e, b, "COLLECTION_MODE=lookup\nCHUNKS_COLLECTION_COLUMN=collection_id\n"
				"EMBEDDINGS_COLLECTION_COLUMN=collection_id\nEMBED_PROVIDER=openai\n"
				"EMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\n"
				"EMBEDDINGS_RUN_COLUMN=\n",
		     "%3$s CREATE SCHEMA \"%1$s\";"
		     "CREATE TABLE \"%1$s\".collections (id int PRIMARY KEY, name text UNIQUE);"
		     "CREATE TABLE \"%1$s\".document_chunks (id bigint PRIMARY KEY, document_id bigint,"
		     " collection_id int, chunk_index int, content text);"
		     "CREATE TABLE \"%1$s\".document_embeddings (chunk_id bigint PRIMARY KEY,"
		     " collection_id int, model text, content_sha256 bytea, embedding %2$s);"
		     "INSERT INTO \"%1$s\".collections VALUES (1, 'acme'), (2, 'acme_next');"
		     "INSERT INTO \"%1$s\".document_chunks SELECT g, 1, 1, g, 'chunk ' || g || ' '"
		     " || md5(g::text) FROM generate_series(1, 30) g");
	add_settings(&f, "COLLECTIONS_TABLE=%s.collections\n", f.schema);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						      "--set", "EMBED_DIM=4", NULL }), 0, "%s", r.err);
	proc_result_free(&r);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						      "--into", "acme_next", "--set", "EMBED_DIM=4",
						      "--set", "EMBED_MODEL=m2", NULL }), 0, "%s%s",
		     r.out, r.err);
	HAS(r.out, "30 chunks");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&f, "SELECT count(*) FROM @S.document_chunks WHERE collection_id = 2"),
		     30);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "swap", "-C", "acme", "--with", "acme_next",
						      "--confirm", "acme", "--set", "EMBED_DIM=4",
						      "--set", "EMBED_MODEL=m2", "--min-hit-rate",
						      "0.2", NULL }), 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	/* the rows did not move: the names did */
	names = fx_text(&f, "SELECT string_agg(id || '=' || left(name, 11), ',' ORDER BY id)"
			    " FROM @S.collections");
	cr_expect_str_eq(names, "1=acme__prev_,2=acme");
	free(names);
	cr_expect_eq(fx_ll(&f, "SELECT count(*) FROM @S.document_embeddings WHERE"
			       " collection_id = 2 AND model = 'm2'"), 30);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "rollback", "-C", "acme", NULL }), 0, "%s",
		     r.err);
	proc_result_free(&r);
	names = fx_text(&f, "SELECT string_agg(id || '=' || name, ',' ORDER BY id)"
			    " FROM @S.collections");
	cr_expect_str_eq(names, "1=acme,2=acme_next");
	free(names);
	embedder_stop(&e);
	fx_free(&f);
}

Test(pg_lifecycle, lookup_mode_swaps_the_names_in_the_lookup_table, .timeout = 120)
{
	lookup_swap(BACKEND_PG);
}

Test(pglite_lifecycle, lookup_mode_swaps_the_names_in_the_lookup_table, .timeout = 180)
{
	lookup_swap(BACKEND_PGLITE);
}

/* --- the inline layout: a backup of the embedding columns of chunk rows ------ */

static void inline_backup(enum backend b)
{
	struct embedder_proc e;
	struct fx f;
	struct proc_result r;
	char *before, *after;
	const char *fp = "SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM @S.document_chunks c";

	mapped_start(&f, &e, b, "SCHEMA_LAYOUT=inline\nEMBEDDINGS_VECTOR_COLUMN=emb\n"
				"EMBED_PROVIDER=openai\nEMBEDDINGS_MODEL_COLUMN=emb_model\n"
				"EMBEDDINGS_HASH_COLUMN=emb_sha\nEMBEDDINGS_DIM_COLUMN=\n"
				"EMBEDDINGS_AT_COLUMN=\nEMBEDDINGS_RUN_COLUMN=\n",
		     "%3$s CREATE SCHEMA \"%1$s\";"
		     "CREATE TABLE \"%1$s\".document_chunks (id bigint PRIMARY KEY, document_id bigint,"
		     " collection text, chunk_index int, content text, emb %2$s, emb_model text,"
		     " emb_sha bytea);"
		     "CREATE UNIQUE INDEX ON \"%1$s\".document_chunks (id);"
		     "INSERT INTO \"%1$s\".document_chunks (id, document_id, collection, chunk_index,"
		     " content) SELECT g, 1, 'acme', g, 'chunk ' || g FROM generate_series(1, 12) g");
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						      "--set", "EMBED_DIM=4", NULL }), 0, "%s", r.err);
	proc_result_free(&r);
	fx_sql(&f, "UPDATE @S.document_chunks SET emb = NULL, emb_model = NULL, emb_sha = NULL"
		   " WHERE id % 3 = 0");
	before = fx_text(&f, fp);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						      "--backup", "--set", "EMBED_DIM=4", "--set",
						      "EMBED_MODEL=m2", NULL }), 0, "%s", r.err);
	proc_result_free(&r);
	after = fx_text(&f, fp);
	cr_expect_str_neq(after, before, "the run changed nothing");
	free(after);
	cr_assert_eq(fx_run(&f, &r, (const char *[]){ "rollback", "-C", "acme", NULL }), 0, "%s",
		     r.err);
	proc_result_free(&r);
	after = fx_text(&f, fp);
	cr_expect_str_eq(after, before, "rollback did not restore the chunk rows exactly");
	free(after);
	free(before);
	embedder_stop(&e);
	fx_free(&f);
}

Test(pg_lifecycle, inline_layout_backup_restores_the_embedding_columns, .timeout = 120)
{
	inline_backup(BACKEND_PG);
}

Test(pglite_lifecycle, inline_layout_backup_restores_the_embedding_columns, .timeout = 180)
{
	inline_backup(BACKEND_PGLITE);
}
