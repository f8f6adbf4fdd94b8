/*
 * spotcheck.c - `embfill spot-check` over real HTTP (the sandbox embedder,
 * hash backend, dimension 64) on PostgreSQL 15 (cosine over real[] in SQL)
 * and PGlite (pgvector's <=>).
 *
 * The fixture's vectors come from the same embedder, fetched by the test
 * itself and written with SQL, so embfill's search is the only part of
 * embfill under test.  Two collections share words, and globex holds a
 * near-identical twin of an acme chunk: it must never be cited for acme.
 *
 * Suites named pglite_* run one test at a time (PGlite serves one
 * connection); every helper here closes its connection before embfill runs.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "embedder_proc.h"
#include "embfill/embed.h"
#include "embfill/ident.h"
#include "embfill/strbuf.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define KEY "sk-test-PLANTED-7e3d91c0ab"
#define DIM 64

/* PGlite refuses a connection while the previous one is still closing (see
 * tests/lib/testdb.c), and the test's own SQL has just closed one: a
 * refused connection is retried, not taken for embfill's failure. */
static bool pglite_refused(enum backend b, const struct proc_result *r)
{
	return b == BACKEND_PGLITE && r->status == 3 && r->err &&
	       strstr(r->err, "cannot connect to the database");
}

struct chunk {
	long long id;
	const char *coll;
	int doc, index;
	const char *text;
};

/* Acme's chunk 1 has a twin in globex (chunk 11) that differs by one
 * character; chunk 4 is long, multi-line and not ASCII. */
static const struct chunk chunks[] = {
	{ 1, "acme", 1, 0, "To reset your password, open Settings and choose Security. "
			   "Then follow the link we email you." },
	{ 2, "acme", 1, 1, "Invoices are sent monthly by email to the billing contact of "
			   "each account." },
	{ 3, "acme", 1, 2, "The office coffee machine is descaled every Friday afternoon "
			   "by the facilities team." },
	{ 4, "acme", 2, 0, "Parkausweise für Besucher:\r\n\tam Empfang im Erdgeschoss. "
			   "Visitors' parking permits — issued at the front desk, next to the "
			   "café and the lifts." },
	{ 5, "acme", 2, 1, "Quarterly security audits cover firewalls, backups and access "
			   "reviews." },
	{ 6, "acme", 2, 2, "Holiday requests need approval from your manager two weeks in "
			   "advance." },
	{ 11, "globex", 3, 0, "To reset your password, open Settings and choose Security. "
			      "Then follow the link we email you!" },
	{ 12, "globex", 3, 1, "Globex invoices are sent monthly by email to the billing "
			      "contact." },
	{ 13, "globex", 3, 2, "The Globex coffee machine is descaled every Friday." },
	{ 14, "globex", 3, 3, "Rockets are assembled in hangar nine." },
};
#define NCHUNKS (sizeof(chunks) / sizeof(chunks[0]))

struct spot {
	struct fx f;
	struct embedder_proc e;
	struct proc_result r;
	char url[96];
};

/* Embeds every fixture chunk with the service, as the run would. */
static struct ef_embed_result *embed_chunks(const char *url)
{
	struct ef_embed_config ec;
	struct ef_embed_result *res = NULL;
	struct ef_error err;
	const char *texts[NCHUNKS];

	for (size_t i = 0; i < NCHUNKS; i++)
		texts[i] = chunks[i].text;
	ef_error_clear(&err);
	ef_embed_config_defaults(&ec);
	ec.provider = EF_EMBED_OPENAI;
	ec.url = url;
	ec.model = "m1";
	ec.dim = DIM;
	ec.api_key = KEY;
	cr_assert_eq(ef_embed_batch(&ec, texts, NCHUNKS, &res, &err), EF_OK,
		     "embedding the fixture failed: %s", err.msg);
	return res;
}

static void insert_chunks(struct spot *s, const struct ef_embed_result *res)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	bool pg = s->f.b == BACKEND_PG;

	ef_strbuf_add(&b, "INSERT INTO @S.documents (id, collection, title, source_uri, body)"
			  " VALUES (1, 'acme', 'Acme handbook', 'https://docs.example/acme?token="
			  "tok-PLANTED-123456', 'h'), (2, 'acme', 'Acme office guide',"
			  " 'file:///acme/office', 'o'), (3, 'globex', 'Globex notes',"
			  " 'file:///globex', 'g');");
	for (size_t i = 0; i < NCHUNKS; i++) {
		const struct chunk *c = &chunks[i];

		ef_strbuf_addf(&b, "INSERT INTO @S.document_chunks (id, document_id, collection,"
				   " chunk_index, content) VALUES (%lld, %d, '%s', %d, $t$%s$t$);"
				   "INSERT INTO @S.document_embeddings (chunk_id, collection, model,"
				   " dim, content_sha256, embedding) SELECT id, collection, 'm1', %d,"
				   " sha256(convert_to(content, 'UTF8')), '%s",
			       c->id, c->doc, c->coll, c->index, c->text, DIM, pg ? "{" : "[");
		for (int d = 0; d < DIM; d++)
			ef_strbuf_addf(&b, "%s%.9g", d ? "," : "", (double)res->vectors[i * DIM + d]);
		ef_strbuf_addf(&b, "%s'::%s FROM @S.document_chunks WHERE id = %lld;",
			       pg ? "}" : "]", pg ? "real[]" : "vector", c->id);
	}
	cr_assert(!b.oom);
	fx_sql(&s->f, ef_strbuf_str(&b));
	ef_strbuf_free(&b);
}

/* Schema, chunks and vectors; the embedder requires the planted key. */
static void start(struct spot *s, enum backend b)
{
	struct ef_embed_result *res;
	char *dir = test_tmpdir();
	char *keyfile = write_file(dir, "key", KEY "\n");
	const char *init[] = { "schema", "init", "--dim", "64", NULL };

	chmod(keyfile, 0600);
	memset(s, 0, sizeof(*s));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cr_assert_eq(embedder_start(&s->e, (const char *[]){ "--dim", "64", "--model", "m1",
				    "--backend", "hash", "--api-key-file", keyfile, NULL }), 0,
		     "the sandbox embedder did not start");
	free(keyfile);
	free(dir);
	fx_init(&s->f, b, "EMBED_DIM=64\nEMBED_PROVIDER=openai\n");
	fx_run(&s->f, &s->r, init);
	for (int i = 0; i < 30 && pglite_refused(b, &s->r); i++) {
		proc_result_free(&s->r);
		usleep(100 * 1000);
		fx_run(&s->f, &s->r, init);
	}
	cr_assert_eq(s->r.status, 0, "schema init failed: %s", s->r.err);
	proc_result_free(&s->r);
	res = embed_chunks(s->e.url);
	insert_chunks(s, res);
	ef_embed_result_free(res);
	snprintf(s->url, sizeof(s->url), "EMBED_URL=%s", s->e.url);
}

static void finish(struct spot *s)
{
	embedder_stop(&s->e);
	proc_result_free(&s->r);
	fx_free(&s->f);
	curl_global_cleanup();
}

/* Runs spot-check with args; the key comes from the environment unless
 * env_key is given ("EMBED_API_KEY=..." or "EMBED_API_KEY_FILE=..."). */
static int spot(struct spot *s, const char *const *args, const char *env_key)
{
	const char *argv[48] = { "--config", s->f.config, "spot-check" };
	const char *env[] = { s->url, "EMBED_MODEL=m1", "EMBED_DIM=64", "DATABASE_URL",
			      "EMBED_API_KEY", "EMBED_API_KEY_FILE",
			      env_key ? env_key : "EMBED_API_KEY=" KEY, NULL };
	size_t n = 3;

	while (args && *args && n < 47)
		argv[n++] = *args++;
	argv[n] = NULL;
	proc_result_free(&s->r);
	run_embfill(argv, env, s->f.dir, &s->r);
	for (int i = 0; i < 30 && pglite_refused(s->f.b, &s->r); i++) {
		proc_result_free(&s->r);
		usleep(100 * 1000);
		run_embfill(argv, env, s->f.dir, &s->r);
	}
	return s->r.status;
}

static cJSON *spot_json(struct spot *s, const char *const *args, int want_rc)
{
	cJSON *o;

	cr_assert_eq(spot(s, args, NULL), want_rc, "spot-check exited %d on %s:\n%s\n%s",
		     s->r.status, backend_name(s->f.b), s->r.out, s->r.err);
	o = cJSON_Parse(s->r.out);
	cr_assert(cJSON_IsObject(o), "spot-check --json printed no object: %s", s->r.out);
	return o;
}

static const cJSON *get(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert_not_null(v, "field \"%s\" missing in %s", key, cJSON_PrintUnformatted(o));
	return v;
}

static const char *coll_of(long long id)
{
	for (size_t i = 0; i < NCHUNKS; i++)
		if (chunks[i].id == id)
			return chunks[i].coll;
	return "?";
}

/* Every citation of every query belongs to coll. */
static void expect_only(const cJSON *o, const char *coll)
{
	const cJSON *q, *c;

	cJSON_ArrayForEach(q, get(o, "queries")) {
		cJSON_ArrayForEach(c, get(q, "citations")) {
			long long id = (long long)get(c, "chunk_id")->valuedouble;
			cr_expect_str_eq(coll_of(id), coll, "chunk %lld of %s cited for %s", id,
					 coll_of(id), coll);
		}
	}
}

static const cJSON *citation(const cJSON *o, int q, int c)
{
	return cJSON_GetArrayItem(get(cJSON_GetArrayItem(get(o, "queries"), q), "citations"), c);
}

/* --- isolation and ranking ---------------------------------------------------- */

static void only_this_collection(enum backend b)
{
	struct spot s;
	const char *q = chunks[0].text;
	const cJSON *top;
	cJSON *o;

	start(&s, b);
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", q, "-k", "50", "--json", NULL }, 0);
	cr_expect_str_eq(get(o, "collection")->valuestring, "acme");
	cr_expect_eq(get(o, "k")->valuedouble, 50);
	cr_expect(cJSON_IsTrue(get(o, "ok")));
	cr_expect_eq(cJSON_GetArraySize(get(cJSON_GetArrayItem(get(o, "queries"), 0),
					    "citations")), 6, "all 6 acme chunks and nothing else");
	expect_only(o, "acme");
	top = citation(o, 0, 0);
	cr_expect_eq(get(top, "chunk_id")->valuedouble, 1);
	cr_expect_str_eq(get(top, "title")->valuestring, "Acme handbook");
	cr_expect_eq(get(top, "chunk_index")->valuedouble, 0);
	cr_expect_gt(get(top, "score")->valuedouble, 0.999);
	cr_expect_str_eq(get(top, "snippet")->valuestring,
			 "To reset your password, open Settings and choose Security. Then...");
	cJSON_Delete(o);

	/* the twin is globex's best answer, and acme's chunk is never cited */
	o = spot_json(&s, (const char *[]){ "-C", "globex", "-q", q, "--json", NULL }, 0);
	expect_only(o, "globex");
	cr_expect_eq(get(citation(o, 0, 0), "chunk_id")->valuedouble, 11);
	cr_expect_str_eq(get(citation(o, 0, 0), "title")->valuestring, "Globex notes");
	cJSON_Delete(o);

	/* without the foreign key, a row filed under acme that holds globex's
	 * chunk 14: still not acme's chunk, never cited for acme */
	fx_sql(&s.f, "DO $$ DECLARE r record; BEGIN FOR r IN SELECT conname FROM pg_constraint"
		     " WHERE conrelid = '@S.document_embeddings'::regclass AND contype = 'f' LOOP"
		     " EXECUTE format('ALTER TABLE @S.document_embeddings DROP CONSTRAINT %I',"
		     " r.conname); END LOOP; END $$;"
		     "UPDATE @S.document_embeddings SET collection = 'acme' WHERE chunk_id = 14");
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", chunks[NCHUNKS - 1].text, "-k",
					    "50", "--json", NULL }, 0);
	expect_only(o, "acme");
	cJSON_Delete(o);
	finish(&s);
}

Test(pg_spotcheck, cites_only_the_requested_collection, .timeout = 60)
{
	only_this_collection(BACKEND_PG);
}
Test(pglite_spotcheck, cites_only_the_requested_collection, .timeout = 60)
{
	only_this_collection(BACKEND_PGLITE);
}

/* A query equal to a chunk's text finds that chunk first, for every chunk;
 * snippets are one line of valid UTF-8 that fits the screen. */
static void chunk_text_finds_itself(enum backend b)
{
	struct spot s;
	const char *args[32] = { "-C", "acme", "--json" };
	size_t n = 3;
	cJSON *o;

	start(&s, b);
	for (size_t i = 0; i < NCHUNKS; i++) {
		if (strcmp(chunks[i].coll, "acme") != 0)
			continue;
		args[n++] = "-q";
		args[n++] = chunks[i].text;
	}
	args[n] = NULL;
	o = spot_json(&s, args, 0);
	cr_assert_eq(cJSON_GetArraySize(get(o, "queries")), 6);
	for (int i = 0; i < 6; i++) {
		const cJSON *top = citation(o, i, 0);
		const char *snip = get(top, "snippet")->valuestring;

		cr_expect_eq(get(top, "chunk_id")->valuedouble, chunks[i].id,
			     "query %d: top citation %g, want %lld", i + 1,
			     get(top, "chunk_id")->valuedouble, chunks[i].id);
		cr_expect(ef_utf8_printable(snip, strlen(snip)), "snippet not one clean line: %s",
			  snip);
	}
	{
		const char *snip = get(citation(o, 3, 0), "snippet")->valuestring;
		size_t cps = 0;

		for (const char *p = snip; *p; p++)
			cps += ((unsigned char)*p & 0xc0) != 0x80;
		cr_expect_leq(cps, 72, "snippet of %zu characters: %s", cps, snip);
		HAS(snip, "Parkausweise für Besucher: am Empfang im Erdgeschoss. Visitors'");
		cr_expect_str_eq(snip + strlen(snip) - 3, "...");
		cr_expect_str_eq(get(citation(o, 3, 0), "title")->valuestring, "Acme office guide");
		cr_expect_str_eq(get(citation(o, 3, 0), "source")->valuestring, "file:///acme/office");
	}
	expect_only(o, "acme");
	cJSON_Delete(o);
	finish(&s);
}

Test(pg_spotcheck, chunk_text_retrieves_that_chunk_first, .timeout = 60)
{
	chunk_text_finds_itself(BACKEND_PG);
}
Test(pglite_spotcheck, chunk_text_retrieves_that_chunk_first, .timeout = 60)
{
	chunk_text_finds_itself(BACKEND_PGLITE);
}

/* Without -q: five chunks sampled, each one's first sentence finds it. */
static void sampled(enum backend b)
{
	struct spot s;
	const cJSON *q;
	cJSON *o;
	int n = 0;

	start(&s, b);
	o = spot_json(&s, (const char *[]){ "-C", "acme", "--json", NULL }, 0);
	cr_expect(cJSON_IsTrue(get(o, "sampled")));
	cr_expect_eq(get(o, "hit_rate")->valuedouble, 1.0);
	cJSON_ArrayForEach(q, get(o, "queries")) {
		long long id = (long long)get(q, "sample_chunk_id")->valuedouble;

		cr_expect_str_eq(coll_of(id), "acme");
		cr_expect(cJSON_IsTrue(get(q, "self_hit")), "chunk %lld missed itself", id);
		n++;
	}
	cr_expect_eq(n, 5);
	/* the first sentence, not the whole chunk */
	cr_expect_str_eq(get(cJSON_GetArrayItem(get(o, "queries"), 0), "query")->valuestring,
			 "To reset your password, open Settings and choose Security.");
	expect_only(o, "acme");
	cJSON_Delete(o);

	cr_assert_eq(spot(&s, (const char *[]){ "-C", "acme", NULL }, NULL), 0, "%s%s", s.r.out,
		     s.r.err);
	HAS(s.r.out, "self-retrieval: 5/5 (100%)");
	HAS(s.r.out, "result: ok");
	HAS(s.r.out, "Acme handbook, chunk 0 (#1)");
	HAS(s.r.out, "https://docs.example/acme");
	finish(&s);
}

Test(pg_spotcheck, sampled_self_retrieval_is_5_of_5, .timeout = 60) { sampled(BACKEND_PG); }
Test(pglite_spotcheck, sampled_self_retrieval_is_5_of_5, .timeout = 60)
{
	sampled(BACKEND_PGLITE);
}

/* --- options, errors and secrets --------------------------------------------- */

static void k_bounds(enum backend b)
{
	struct spot s;
	const char *bad[] = { "0", "51", "-3", "five", "5x" };
	cJSON *o;

	start(&s, b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", "coffee", "-k", bad[i],
							NULL }, NULL), 2,
			     "-k %s: exit %d\n%s", bad[i], s.r.status, s.r.err);
		HAS(s.r.err, "from 1 to 50");
	}
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", "coffee", "-k", "1", "--json",
					    NULL }, 0);
	cr_expect_eq(cJSON_GetArraySize(get(cJSON_GetArrayItem(get(o, "queries"), 0),
					    "citations")), 1);
	cr_expect_eq(get(citation(o, 0, 0), "chunk_id")->valuedouble, 3);
	cJSON_Delete(o);
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", "coffee", "--json", NULL }, 0);
	cr_expect_eq(get(o, "k")->valuedouble, 5);
	cr_expect_eq(cJSON_GetArraySize(get(cJSON_GetArrayItem(get(o, "queries"), 0),
					    "citations")), 5);
	cJSON_Delete(o);
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acmee", "-q", "coffee", NULL }, NULL), 2,
		     "%s", s.r.err);
	HAS(s.r.err, "did you mean \"acme\"?");
	finish(&s);
}

Test(pg_spotcheck, k_is_bounded_and_unknown_collections_refused, .timeout = 60)
{
	k_bounds(BACKEND_PG);
}
Test(pglite_spotcheck, k_is_bounded_and_unknown_collections_refused, .timeout = 60)
{
	k_bounds(BACKEND_PGLITE);
}

static void no_secret(struct spot *s)
{
	cr_expect_null(strstr(s->r.out, "PLANTED"), "a secret in stdout:\n%s", s->r.out);
	cr_expect_null(strstr(s->r.err, "PLANTED"), "a secret in stderr:\n%s", s->r.err);
}

/* The key reaches the service (a wrong one is refused: exit 4) and no
 * output, plain or JSON, from the environment or a key file. */
static void key_never_printed(enum backend b)
{
	struct spot s;
	char *dir = test_tmpdir();
	char *keyfile = write_file(dir, "client-key", KEY "\n");
	char *file_env = NULL;

	chmod(keyfile, 0600);
	cr_assert(asprintf(&file_env, "EMBED_API_KEY_FILE=%s", keyfile) > 0);
	start(&s, b);
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", NULL }, NULL), 0, "%s%s", s.r.out,
		     s.r.err);
	no_secret(&s);
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", "--json", "-q", KEY, NULL }, NULL),
		     0, "%s", s.r.err);
	no_secret(&s);
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", "coffee", NULL },
			  "EMBED_API_KEY=sk-test-PLANTED-wrong-0000"), 4, "%s%s", s.r.out, s.r.err);
	HAS(s.r.err, "401");
	no_secret(&s);
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", "coffee", NULL }, file_env), 0,
		     "%s%s", s.r.out, s.r.err);
	no_secret(&s);
	free(file_env);
	free(keyfile);
	free(dir);
	finish(&s);
}

Test(pg_spotcheck, api_key_never_printed, .timeout = 60) { key_never_printed(BACKEND_PG); }
Test(pglite_spotcheck, api_key_never_printed, .timeout = 60)
{
	key_never_printed(BACKEND_PGLITE);
}

Test(pg_spotcheck, unreachable_service_exits_4, .timeout = 60)
{
	struct spot s;

	start(&s, BACKEND_PG);
	snprintf(s.url, sizeof(s.url), "EMBED_URL=http://127.0.0.1:1");
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", "coffee", "--set",
						"EMBED_MAX_ATTEMPTS=1", NULL }, NULL), 4,
		     "%s%s", s.r.out, s.r.err);
	HAS(s.r.err, "embfill: ");
	no_secret(&s);
	finish(&s);
}

/* Stale vectors are not sampled, vectors of another model not ranked: with
 * every acme vector of model m0, nothing is comparable and the check fails. */
Test(pg_spotcheck, vectors_of_another_model_are_not_compared, .timeout = 60)
{
	struct spot s;
	cJSON *o;

	start(&s, BACKEND_PG);
	fx_sql(&s.f, "UPDATE @S.document_embeddings SET model = 'm0' WHERE collection = 'acme'");
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", "coffee", "--json", NULL }, 1);
	cr_expect(cJSON_IsFalse(get(o, "ok")));
	cr_expect_eq(get(o, "comparable_vectors")->valuedouble, 0);
	cr_expect_eq(cJSON_GetArraySize(get(cJSON_GetArrayItem(get(o, "queries"), 0),
					    "citations")), 0);
	cJSON_Delete(o);
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", NULL }, NULL), 1, "%s", s.r.out);
	HAS(s.r.out, "nothing to sample");
	finish(&s);
}

/* A partly embedded collection: the citations come from the chunks with a
 * vector only, so the report warns of the coverage, and below
 * SPOTCHECK_MIN_COVERAGE its result is partial (exit 1). */
Test(pg_spotcheck, a_partly_embedded_collection_is_partial, .timeout = 60)
{
	struct spot s;
	cJSON *o;

	start(&s, BACKEND_PG);
	fx_sql(&s.f, "DELETE FROM @S.document_embeddings WHERE chunk_id IN (5, 6)");
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", "coffee", "--json", NULL }, 1);
	cr_expect(cJSON_IsTrue(get(o, "partial")));
	cr_expect(cJSON_IsFalse(get(o, "ok")));
	cr_expect_eq(get(o, "chunks")->valuedouble, 6);
	cr_expect_eq(get(o, "comparable_vectors")->valuedouble, 4);
	cr_expect_float_eq(get(o, "coverage")->valuedouble, 0.6667, 1e-4);
	cr_expect_float_eq(get(o, "coverage_min")->valuedouble, 0.95, 1e-9);
	cr_expect_eq(get(citation(o, 0, 0), "chunk_id")->valuedouble, 3);
	cJSON_Delete(o);
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", "coffee", NULL }, NULL), 1,
		     "%s%s", s.r.out, s.r.err);
	HAS(s.r.out, "coverage warning: only 4 of the 6 chunks of \"acme\" (67%) have a vector "
		     "of \"m1\"");
	HAS(s.r.out, "result: partial (coverage 67%, below SPOTCHECK_MIN_COVERAGE 0.95)");
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", "coffee", "--set",
						"SPOTCHECK_MIN_COVERAGE=0.5", NULL }, NULL), 0,
		     "%s%s", s.r.out, s.r.err);
	HAS(s.r.out, "coverage: only 4 of the 6 chunks");
	HAS(s.r.out, "result: ok");
	cr_expect_eq(spot(&s, (const char *[]){ "-C", "globex", "-q", "coffee", NULL }, NULL), 0,
		     "%s%s", s.r.out, s.r.err);
	cr_expect_null(strstr(s.r.out, "coverage"), "a whole collection has no coverage "
		       "line:\n%s", s.r.out);
	finish(&s);
}

/* Chunks cut from the middle of a page start mid-word: a sampled query
 * starts at the next sentence, or at the next word when no sentence
 * starts early enough. */
Test(pg_spotcheck, a_sampled_query_starts_at_a_sentence_or_a_word, .timeout = 60)
{
	struct spot s;
	const cJSON *q;
	cJSON *o;
	int n = 0;

	start(&s, BACKEND_PG);
	fx_sql(&s.f, "INSERT INTO @S.documents (id, collection, title, body) VALUES"
		     " (4, 'initech', 'Initech manual', 'm');"
		     "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index,"
		     " content) VALUES (21, 4, 'initech', 3, 'rint tally only when asked. Print"
		     " the totals of each column at the end of the report.'), (22, 4, 'initech',"
		     " 4, 'eading blanks are kept as they are in every field of the output');"
		     "INSERT INTO @S.document_embeddings (chunk_id, collection, model, dim,"
		     " content_sha256, embedding) SELECT c.id, c.collection, 'm1', 64,"
		     " sha256(convert_to(c.content, 'UTF8')), e.embedding FROM @S.document_chunks c,"
		     " @S.document_embeddings e WHERE c.collection = 'initech' AND e.chunk_id = 1");
	spot(&s, (const char *[]){ "-C", "initech", "--json", NULL }, NULL);
	o = cJSON_Parse(s.r.out);
	cr_assert(cJSON_IsObject(o), "spot-check --json printed no object: %s%s", s.r.out,
		  s.r.err);
	cJSON_ArrayForEach(q, get(o, "queries")) {
		long long id = (long long)get(q, "sample_chunk_id")->valuedouble;
		const char *text = get(q, "query")->valuestring;

		if (id == 21)
			cr_expect_str_eq(text, "Print the totals of each column at the end of the "
					       "report.");
		else
			cr_expect_str_eq(text, "blanks are kept as they are in every field of the "
					       "output");
		n++;
	}
	cr_expect_eq(n, 2);
	cJSON_Delete(o);
	finish(&s);
}

/* Without a documents table a chunk is cited without a title. */
Test(pg_spotcheck, cites_without_title_when_documents_are_missing, .timeout = 60)
{
	struct spot s;
	cJSON *o;
	const cJSON *top;

	start(&s, BACKEND_PG);
	fx_sql(&s.f, "SET client_min_messages = warning; DROP TABLE @S.documents CASCADE");
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", "invoices billing", "--json",
					    NULL }, 0);
	top = citation(o, 0, 0);
	cr_expect_eq(get(top, "chunk_id")->valuedouble, 2);
	cr_expect(cJSON_IsNull(get(top, "title")));
	cr_expect(cJSON_IsNull(get(top, "source")));
	cJSON_Delete(o);
	cr_assert_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", "invoices billing", NULL },
			  NULL), 0, "%s", s.r.err);
	HAS(s.r.out, "chunk 1 (#2)");
	finish(&s);
}

/* Fails unless text holds no ESC, BEL or C1 CSI byte. */
static void expect_no_terminal_controls(const char *text, const char *what)
{
	cr_expect_null(memchr(text, 0x1b, strlen(text)), "ESC in %s:\n%s", what, text);
	cr_expect_null(memchr(text, 0x07, strlen(text)), "BEL in %s:\n%s", what, text);
	cr_expect_null(memchr(text, 0x9b, strlen(text)), "CSI in %s:\n%s", what, text);
}

/* A query pasted with escapes in it, and a title holding some: the report
 * shows them as escapes, in plain text and in JSON. */
Test(pg_spotcheck, escapes_in_a_query_or_a_title_reach_no_terminal, .timeout = 60)
{
	struct spot s;
	const char *q = "reset\x1b[2J your\x1b]0;pwned\x07 password\xc2\x9b" "6n";
	cJSON *o;

	start(&s, BACKEND_PG);
	fx_sql(&s.f, "UPDATE @S.documents SET title = E'Acme\\x1b[2J handbook\\x07\\u009b'"
		     " WHERE id = 1");
	cr_assert_eq(spot(&s, (const char *[]){ "-C", "acme", "-q", q, NULL }, NULL), 0, "%s",
		     s.r.err);
	expect_no_terminal_controls(s.r.out, "spot-check");
	expect_no_terminal_controls(s.r.err, "spot-check's errors");
	HAS(s.r.out, "reset\\x1b[2J your\\x1b]0;pwned\\x07 password\\u009b6n");
	o = spot_json(&s, (const char *[]){ "-C", "acme", "-q", q, "--json", NULL }, 0);
	expect_no_terminal_controls(s.r.out, "spot-check --json");
	cJSON_Delete(o);
	finish(&s);
}
