/*
 * recipe.c - the embedding recipe end to end: prefixes, requested
 * dimensions and the switches as settings, the fingerprint stored with
 * every vector and counted by status and plan, the provenance probe of
 * `verify --provenance` and `adopt`, spot-check's query prefix, and the
 * migration of embfill's tables from version 3.
 *
 * The sandbox embedder (hash backend) embeds exactly the text it is given,
 * so on the short texts used here a prefix moves a vector far; vectors it
 * is expected to have made are asked of it directly over HTTP (libcurl),
 * not through embfill's client.
 *
 * Suites named pglite_* run one test at a time (PGlite serves one
 * connection); every helper here closes its connection before embfill runs,
 * and a connection PGlite refuses is retried.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>

#include "embedder_proc.h"
#include "embfill/schema.h"
#include "embfill/strbuf.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define DIM 32
#define MAXDIM 1024

/* Golden fingerprints (tests/unit/recipe.c says how they were computed). */
#define ID_PLAIN "r1-8e5f967f6f1d5467"
#define ID_NOMIC "r1-2d0538bdce4ccab5"
#define ID_DIMS256 "r1-5636c472d82903df"

struct rt {
	struct fx f;
	struct embedder_proc e;
	char model[64];
};

/* acme: 8 short texts (a prefix changes their vectors a lot); globex: 6. */
static const char *const acme_texts[] = {
	"list files by date", "rename a folder", "restore a deleted file",
	"share a link with a colleague", "change the password", "print the monthly report",
	"book a meeting room", "order new toner",
};
static const char *const globex_texts[] = {
	"quarterly sales figures", "holiday calendar", "parking for visitors",
	"expense claims", "laptop replacement", "security badge lost",
};
#define NACME 8
#define NGLOBEX 6

/* --- running embfill ------------------------------------------------------- */

static bool pglite_refused(enum backend b, const struct proc_result *r)
{
	return b == BACKEND_PGLITE && r->status == 3 && r->err &&
	       strstr(r->err, "cannot connect to the database");
}

/* embfill --config <file> args, with env ("KEY=VALUE" set, "KEY" removed)
 * on top of the variables every test removes. */
static int run_env(struct fx *f, struct proc_result *r, const char *const *env,
		   const char *const *args)
{
	const char *argv[64] = { "--config", f->config };
	const char *e[32] = { "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM", "PGHOST", "PGPORT",
			      "EMBED_DOCUMENT_PREFIX", "EMBED_QUERY_PREFIX", "EMBED_DIMENSIONS" };
	size_t n = 2, ne = 8;

	while (args && *args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	while (env && *env && ne < 31)
		e[ne++] = *env++;
	e[ne] = NULL;
	run_embfill(argv, e, f->dir, r);
	for (int i = 0; i < 30 && pglite_refused(f->b, r); i++) {
		proc_result_free(r);
		usleep(100 * 1000);
		run_embfill(argv, e, f->dir, r);
	}
	return r->status;
}

static int run(struct fx *f, struct proc_result *r, const char *const *args)
{
	return run_env(f, r, NULL, args);
}

/* Runs args and asserts the exit code; the output is freed. */
static void ok_run(struct fx *f, int want, const char *const *args)
{
	struct proc_result r;

	cr_assert_eq(run(f, &r, args), want, "embfill %s %s exited %d, want %d:\n%s%s", args[0],
		     args[1] ? args[1] : "", r.status, want, r.out, r.err);
	proc_result_free(&r);
}

/* Runs args (with --json among them) and returns the parsed output. */
static cJSON *run_json(struct fx *f, const char *const *args, int *rc)
{
	struct proc_result r;
	cJSON *o;

	*rc = run(f, &r, args);
	o = cJSON_Parse(r.out);
	cr_assert_not_null(o, "embfill %s printed no JSON (exit %d):\n%s%s", args[0], r.status,
			   r.out, r.err);
	proc_result_free(&r);
	return o;
}

static const cJSON *get(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert_not_null(v, "field \"%s\" missing in %s", key, cJSON_PrintUnformatted(o));
	return v;
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);

	cr_assert(cJSON_IsNumber(v), "field \"%s\" is not a number", key);
	return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);

	cr_assert(cJSON_IsString(v), "field \"%s\" is not a string", key);
	return v->valuestring;
}

static bool truth(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);

	cr_assert(cJSON_IsBool(v), "field \"%s\" is not a boolean", key);
	return cJSON_IsTrue(v);
}

__attribute__((format(printf, 2, 3)))
static void add_settings(struct fx *f, const char *fmt, ...)
{
	FILE *cf = fopen(f->config, "a");
	va_list ap;

	cr_assert_not_null(cf);
	va_start(ap, fmt);
	vfprintf(cf, fmt, ap);
	va_end(ap);
	fclose(cf);
}

/* The status row of one collection (status --json -C coll). */
static cJSON *status_of(struct fx *f, const char *coll)
{
	int rc;
	cJSON *arr = run_json(f, (const char *[]){ "status", "--json", "-C", coll, NULL }, &rc);

	cr_assert_eq(rc, 0, "status exited %d", rc);
	cr_assert(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 1, "%s",
		  cJSON_PrintUnformatted(arr));
	return arr;
}

static long long status_num(struct fx *f, const char *coll, const char *field)
{
	cJSON *arr = status_of(f, coll);
	long long v = (long long)num(cJSON_GetArrayItem(arr, 0), field);

	cJSON_Delete(arr);
	return v;
}

/* --- the fixture -------------------------------------------------------------- */

static void insert_texts(struct fx *f, const char *coll, long long doc, long long first,
			 const char *const *texts, size_t n)
{
	char *sql = NULL;

	cr_assert(asprintf(&sql, "INSERT INTO @S.documents (id, collection, title, source_uri, body)"
				 " VALUES (%lld, '%s', 'Notes of %s', 'file:///%s', 'b')", doc, coll,
			   coll, coll) > 0);
	fx_sql(f, sql);
	free(sql);
	for (size_t i = 0; i < n; i++) {
		cr_assert(asprintf(&sql, "INSERT INTO @S.document_chunks (id, document_id, collection,"
					 " chunk_index, content) VALUES (%lld, %lld, '%s', %zu,"
					 " $t$%s$t$)", first + (long long)i, doc, coll, i, texts[i]) > 0);
		fx_sql(f, sql);
		free(sql);
	}
}

/*
 * A sandbox serving `model` (its vectors of dimension native), settings
 * pointing at it with dimension dim and extra lines, embfill's schema
 * (vector_type for schema init, NULL: its choice), and the chunks of acme
 * (ids 1..8) and globex (11..16).
 */
static void rt_start(struct rt *t, enum backend b, const char *model, int native, int dim,
		     const char *extra, const char *vector_type)
{
	char nd[16], d[16];
	const char *emb[] = { "--dim", nd, "--model", model, NULL };
	const char *init[8] = { "schema", "init", "--dim", d, NULL };

	snprintf(nd, sizeof(nd), "%d", native);
	snprintf(d, sizeof(d), "%d", dim);
	snprintf(t->model, sizeof(t->model), "%s", model);
	if (vector_type) {
		init[4] = "--vector-type";
		init[5] = vector_type;
		init[6] = NULL;
	}
	fx_init(&t->f, b, NULL);
	cr_assert_eq(embedder_start(&t->e, emb), 0, "the sandbox embedder did not start");
	add_settings(&t->f, "EMBED_PROVIDER=openai\nEMBED_URL=%s\nEMBED_MODEL=%s\nEMBED_DIM=%d\n"
			    "EMBED_MAX_ATTEMPTS=3\nHISTORYLOG=%s/historylog.md\n%s\n", t->e.url,
		     model, dim, t->f.dir, extra ? extra : "");
	ok_run(&t->f, 0, init);
	insert_texts(&t->f, "acme", 1, 1, acme_texts, NACME);
	insert_texts(&t->f, "globex", 2, 11, globex_texts, NGLOBEX);
}

static void rt_stop(struct rt *t)
{
	embedder_stop(&t->e);
	fx_free(&t->f);
}

static void run_coll(struct rt *t, const char *coll, const char *const *extra)
{
	const char *args[24] = { "run", "-C", coll, "--confirm", coll };
	size_t n = 5;

	while (extra && *extra && n < 23)
		args[n++] = *extra++;
	args[n] = NULL;
	ok_run(&t->f, 0, args);
}

/* --- the sandbox's own vectors, asked over HTTP ------------------------------- */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct ef_strbuf *b = arg;

	ef_strbuf_addn(b, p, size * n);
	return size * n;
}

/* The vector of text as the sandbox at url answers it on the OpenAI route
 * (dimensions 0: not asked); returns its dimension. */
static int sandbox_vec(const char *url, const char *model, const char *text, int dimensions,
		       float *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct ef_strbuf body = EF_STRBUF_INIT;
	cJSON *req = cJSON_CreateObject(), *in = cJSON_AddArrayToObject(req, "input"), *ans, *emb;
	char *json, full[128];
	long status = 0;
	int n = 0;

	cJSON_AddStringToObject(req, "model", model);
	cJSON_AddItemToArray(in, cJSON_CreateString(text));
	cJSON_AddStringToObject(req, "encoding_format", "float");
	if (dimensions)
		cJSON_AddNumberToObject(req, "dimensions", dimensions);
	json = cJSON_PrintUnformatted(req);
	snprintf(full, sizeof(full), "%s/v1/embeddings", url);
	curl_easy_setopt(c, CURLOPT_URL, full);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "the sandbox at %s did not answer", url);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	cr_assert_eq(status, 200, "the sandbox answered %ld: %s", status, ef_strbuf_str(&body));
	ans = cJSON_Parse(ef_strbuf_str(&body));
	emb = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
		cJSON_GetObjectItemCaseSensitive(ans, "data"), 0), "embedding");
	cr_assert(cJSON_IsArray(emb), "no embedding in %s", ef_strbuf_str(&body));
	for (const cJSON *x = emb->child; x && n < MAXDIM; x = x->next)
		out[n++] = (float)x->valuedouble;
	cJSON_Delete(ans);
	cJSON_Delete(req);
	free(json);
	ef_strbuf_free(&body);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return n;
}

/* The stored vector of a chunk, as real[] whatever its column's type. */
static int stored_vec(struct fx *f, const char *table, long long id, float *out)
{
	char *sql = NULL, *text, *p, *end;
	int n = 0;

	cr_assert(asprintf(&sql, "SELECT embedding::real[]::text FROM %s WHERE chunk_id = %lld",
			   table, id) > 0);
	text = fx_text(f, sql);
	free(sql);
	cr_assert(text && text[0] == '{', "no vector stored for chunk %lld: %s", id,
		  text ? text : "(null)");
	for (p = text + 1; *p && *p != '}' && n < MAXDIM; p = end + (*end == ',')) {
		out[n++] = strtof(p, &end);
		cr_assert(end != p, "unreadable vector %s", text);
	}
	free(text);
	return n;
}

static double cosine(const float *a, const float *b, int n)
{
	double ab = 0, aa = 0, bb = 0;

	for (int i = 0; i < n; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return ab / sqrt(aa * bb);
}

/* Every chunk of the text list has the vector the sandbox gives prefix +
 * text (with dimensions asked, when not 0), float for float. */
static void expect_vectors(struct rt *t, const char *table, long long first,
			   const char *const *texts, size_t n, const char *prefix, int dimensions)
{
	static float want[MAXDIM], got[MAXDIM];

	for (size_t i = 0; i < n; i++) {
		char *text = NULL;
		int nw, ng;

		cr_assert(asprintf(&text, "%s%s", prefix, texts[i]) > 0);
		nw = sandbox_vec(t->e.url, t->model, text, dimensions, want);
		ng = stored_vec(&t->f, table, first + (long long)i, got);
		cr_assert_eq(ng, nw, "chunk %lld: %d floats stored, the sandbox gives %d",
			     first + (long long)i, ng, nw);
		for (int k = 0; k < nw; k++)
			cr_assert_float_eq(got[k], want[k], 1e-6, "chunk %lld (\"%s\") component %d: "
					   "stored %g, the sandbox gives %g", first + (long long)i,
					   text, k, (double)got[k], (double)want[k]);
		free(text);
	}
}

static char *read_file(const char *path)
{
	FILE *h = fopen(path, "r");
	struct ef_strbuf b = EF_STRBUF_INIT;
	char buf[4096];
	size_t n;

	while (h && (n = fread(buf, 1, sizeof(buf), h)) > 0)
		ef_strbuf_addn(&b, buf, n);
	if (h)
		fclose(h);
	ef_strbuf_add(&b, "");
	return ef_strbuf_take(&b);
}

static char *historylog(struct rt *t)
{
	char *path = NULL, *text;

	cr_assert(asprintf(&path, "%s/historylog.md", t->f.dir) > 0);
	text = read_file(path);
	free(path);
	return text;
}

/* --- 1. the recipe as settings --------------------------------------------------- */

static const cJSON *setting(const cJSON *doctor, const char *key)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, get(doctor, "settings"))
		if (strcmp(str(it, "key"), key) == 0)
			return it;
	cr_assert_fail("doctor lists no setting %s", key);
	return NULL;
}

static const char *check_detail(const cJSON *doctor, const char *what)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, get(doctor, "checks")) {
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(it, "what");
		if (cJSON_IsString(w) && strcmp(w->valuestring, what) == 0)
			return str(it, "detail");
	}
	cr_assert_fail("doctor has no \"%s\" check: %s", what, cJSON_PrintUnformatted(doctor));
	return NULL;
}

Test(pg_recipe, doctor_shows_the_models_prefixes_in_quotes_with_their_origin, .timeout = 60)
{
	struct rt t;
	struct proc_result r;
	cJSON *o;
	int rc;

	rt_start(&t, BACKEND_PG, "nomic-embed-text", DIM, DIM, NULL, NULL);
	o = run_json(&t.f, (const char *[]){ "doctor", "--json", NULL }, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	cr_expect_str_eq(str(setting(o, "EMBED_DOCUMENT_PREFIX"), "value"), "\"search_document: \"");
	cr_expect_str_eq(str(setting(o, "EMBED_DOCUMENT_PREFIX"), "origin"),
			 "default for nomic-embed-text");
	cr_expect_str_eq(str(setting(o, "EMBED_QUERY_PREFIX"), "value"), "\"search_query: \"");
	cr_expect_str_eq(str(setting(o, "EMBED_QUERY_PREFIX"), "origin"),
			 "default for nomic-embed-text");
	HAS(check_detail(o, "recipe"), "documents prefixed \"search_document: \" (default for "
				       "nomic-embed-text)");
	HAS(check_detail(o, "recipe"), ID_NOMIC);
	cJSON_Delete(o);

	/* plain output: the same, in quotes */
	cr_assert_eq(run(&t.f, &r, (const char *[]){ "doctor", NULL }), 0, "%s%s", r.out, r.err);
	HAS(r.out, "\"search_document: \"");
	HAS(r.out, "default for nomic-embed-text");
	proc_result_free(&r);

	/* set in the file (quoted: the blank stays) and in the environment */
	add_settings(&t.f, "EMBED_DOCUMENT_PREFIX=\"passage: \"\n");
	cr_assert_eq(run_env(&t.f, &r, (const char *[]){ "EMBED_QUERY_PREFIX=query: ", NULL },
			     (const char *[]){ "doctor", "--json", NULL }), 0, "%s", r.err);
	o = cJSON_Parse(r.out);
	cr_assert_not_null(o);
	cr_expect_str_eq(str(setting(o, "EMBED_DOCUMENT_PREFIX"), "value"), "\"passage: \"");
	{
		char want[600];

		snprintf(want, sizeof(want), "%s:", t.f.config);
		cr_expect(strncmp(str(setting(o, "EMBED_DOCUMENT_PREFIX"), "origin"), want,
				  strlen(want)) == 0, "origin %s, want the file's line",
			  str(setting(o, "EMBED_DOCUMENT_PREFIX"), "origin"));
	}
	cr_expect_str_eq(str(setting(o, "EMBED_QUERY_PREFIX"), "value"), "\"query: \"");
	cr_expect_str_eq(str(setting(o, "EMBED_QUERY_PREFIX"), "origin"), "environment");
	HAS(check_detail(o, "recipe"), "queries \"query: \" (environment)");
	cJSON_Delete(o);
	proc_result_free(&r);
	rt_stop(&t);
}

/* Each refusal exits 2 before anything connects, naming the keys. */
static void refused(struct fx *f, const char *const *sets, const char *const *names)
{
	const char *args[16] = { "status" };
	struct proc_result r;
	size_t n = 1;

	for (; *sets && n < 14; sets++) {
		args[n++] = "--set";
		args[n++] = *sets;
	}
	args[n] = NULL;
	cr_expect_eq(run(f, &r, args), 2, "%s should be refused: %s%s", args[2], r.out, r.err);
	for (; *names; names++)
		HAS(r.err, *names);
	HAS(r.err, "hint:");
	proc_result_free(&r);
}

Test(pg_recipe, switches_a_provider_does_not_have_are_refused_with_exit_2)
{
	struct fx f;

	fx_init(&f, BACKEND_PG, "EMBED_PROVIDER=openai\nEMBED_DIM=8\n");
	refused(&f, (const char *[]){ "EMBED_DIMENSIONS=256", NULL },
		(const char *[]){ "EMBED_DIMENSIONS=\"256\"", "EMBED_DIM", "8", NULL });
	refused(&f, (const char *[]){ "EMBED_PROVIDER=tei", "EMBED_DIMENSIONS=8", NULL },
		(const char *[]){ "EMBED_DIMENSIONS", "text-embeddings-inference", NULL });
	refused(&f, (const char *[]){ "EMBED_TRUNCATE=true", NULL },
		(const char *[]){ "EMBED_TRUNCATE", "OpenAI-style", NULL });
	refused(&f, (const char *[]){ "EMBED_PROVIDER=ollama", "EMBED_NORMALIZE=false", NULL },
		(const char *[]){ "EMBED_NORMALIZE", "text-embeddings-inference only", "ollama",
				  NULL });
	fx_free(&f);
}

/* --- 2. the provenance probe tells the two recipes apart ---------------------- */

/* acme embedded as the settings say (nomic's "search_document: "), globex
 * without a prefix and then its recipe forgotten, as a previous release
 * left it. */
static void two_recipes(struct rt *t, enum backend b)
{
	rt_start(t, b, "nomic-embed-text", DIM, DIM, NULL, NULL);
	run_coll(t, "acme", NULL);
	run_coll(t, "globex", (const char *[]){ "--set", "EMBED_DOCUMENT_PREFIX=", NULL });
	cr_expect_eq(status_num(&t->f, "globex", "stale_recipe"), NGLOBEX,
		     "the plain vectors are another recipe than the settings'");
	fx_sql(&t->f, "UPDATE @S.document_embeddings SET recipe = NULL WHERE collection = 'globex'");
}

static const cJSON *risk_with(const cJSON *plan, const char *words)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, get(plan, "risks"))
		if (strstr(str(it, "what"), words))
			return it;
	return NULL;
}

static const cJSON *candidate(const cJSON *prov, const char *description)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, get(prov, "candidates"))
		if (strcmp(str(it, "description"), description) == 0)
			return it;
	return NULL;
}

static void probe_tells_recipes_apart(enum backend b)
{
	struct rt t;
	struct proc_result r;
	const cJSON *prov, *best, *settings;
	cJSON *o;
	int rc;

	two_recipes(&t, b);
	expect_vectors(&t, "@S.document_embeddings", 1, acme_texts, NACME, "search_document: ", 0);
	expect_vectors(&t, "@S.document_embeddings", 11, globex_texts, NGLOBEX, "", 0);

	o = run_json(&t.f, (const char *[]){ "verify", "-C", "acme", "--provenance", "--json",
					     NULL }, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	prov = get(o, "provenance");
	cr_expect(truth(prov, "ok"));
	cr_expect_eq(num(prov, "sampled"), NACME);
	cr_expect_eq(num(prov, "matches"), NACME);
	cr_expect_str_eq(str(prov, "recipe"), ID_NOMIC);
	cr_expect_str_eq(str(prov, "recipe_description"), "prefix \"search_document: \"");
	cr_expect_float_eq(num(prov, "mean_cosine"), 1.0, 1e-5);
	cJSON_Delete(o);

	o = run_json(&t.f, (const char *[]){ "verify", "-C", "globex", "--provenance", "--json",
					     NULL }, &rc);
	cr_expect_eq(rc, 1, "a collection made by another recipe fails the probe");
	cr_expect(truth(o, "ok"), "verify itself passes: no recipe on record is not stale");
	cr_expect_eq(num(o, "recipe_unknown"), NGLOBEX);
	prov = get(o, "provenance");
	cr_expect(!truth(prov, "ok"));
	cr_expect_eq(num(prov, "sampled"), NGLOBEX);
	cr_expect_eq(num(prov, "matches"), 0, "%s", cJSON_PrintUnformatted(prov));
	cr_expect_lt(num(prov, "mean_cosine"), 0.95);
	cr_expect_eq(cJSON_GetArraySize(get(prov, "lowest")), 5);
	best = cJSON_GetArrayItem(get(prov, "candidates"), 0);
	cr_assert_not_null(best, "no candidates: %s", cJSON_PrintUnformatted(prov));
	cr_expect_str_eq(str(best, "description"), "plain (no prefix)");
	cr_expect_str_eq(str(best, "document_prefix"), "");
	cr_expect_str_eq(str(best, "recipe"), ID_PLAIN);
	cr_expect_eq(num(best, "matches"), NGLOBEX);
	cr_expect_float_eq(num(best, "mean_cosine"), 1.0, 1e-5);
	cr_expect(!truth(best, "settings"));
	cr_expect_gt(num(prov, "margin"), 0.05, "the margin over the next candidate");
	settings = candidate(prov, "prefix \"search_document: \"");
	cr_assert_not_null(settings, "the settings' recipe is a candidate");
	cr_expect(truth(settings, "settings"));
	cr_expect_not_null(candidate(prov, "prefix \"search_query: \""),
			   "the model's other documented prefixes are tried");
	cJSON_Delete(o);

	cr_expect_eq(run(&t.f, &r, (const char *[]){ "verify", "-C", "globex", "--provenance",
						     NULL }), 1, "%s", r.err);
	HAS(r.out, "verdict: NOT made by this model and recipe");
	HAS(r.out, "closest: plain (no prefix)");
	proc_result_free(&r);

	/* plan probes them too: do not run the settings' recipe over them */
	o = run_json(&t.f, (const char *[]){ "plan", "-C", "globex", "--json", NULL }, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	cr_expect(!truth(get(o, "provenance"), "ok"));
	cr_expect_eq(num(get(o, "counts"), "recipe_unknown"), NGLOBEX);
	cr_expect_not_null(risk_with(o, "provenance:"), "%s", cJSON_PrintUnformatted(o));
	cr_expect_str_eq(str(o, "recommendation"), "new-collection");
	cJSON_Delete(o);

	/* the service gone: exit 4, not a verdict */
	embedder_stop(&t.e);
	cr_expect_eq(run(&t.f, &r, (const char *[]){ "verify", "-C", "acme", "--provenance",
						     NULL }), 4, "%s%s", r.out, r.err);
	proc_result_free(&r);
	rt_stop(&t);
}

Test(pg_recipe, the_probe_names_the_recipe_that_made_the_vectors, .timeout = 120)
{
	probe_tells_recipes_apart(BACKEND_PG);
}
Test(pglite_recipe, the_probe_names_the_recipe_that_made_the_vectors, .timeout = 180)
{
	probe_tells_recipes_apart(BACKEND_PGLITE);
}

/* --- 3. a recipe change is a model change ---------------------------------------- */

Test(pg_recipe, a_recipe_change_goes_through_a_new_collection_and_a_swap, .timeout = 180)
{
	struct rt t;
	cJSON *o, *arr;
	const cJSON *row, *risk;
	char *id, *sql = NULL;
	int rc;

	rt_start(&t, BACKEND_PG, "nomic-embed-text", DIM, DIM, NULL, NULL);
	run_coll(&t, "acme", NULL);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"
				 " WHERE collection = 'acme' AND recipe = '" ID_NOMIC "'"), NACME);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.recipes WHERE id = '" ID_NOMIC "'"
				 " AND description = 'prefix \"search_document: \"'"), 1,
		     "the recipe is registered with its description");

	/* the team's pipeline uses another prefix (quoted: its blank stays) */
	add_settings(&t.f, "EMBED_DOCUMENT_PREFIX=\"clustering: \"\n");
	arr = status_of(&t.f, "acme");
	row = cJSON_GetArrayItem(arr, 0);
	cr_expect_eq(num(row, "chunks"), NACME);
	cr_expect_eq(num(row, "stale_recipe"), NACME);
	cr_expect_eq(num(row, "stale"), NACME);
	cr_expect_eq(num(row, "stale_model"), 0);
	cr_expect_eq(num(row, "stale_content"), 0);
	cr_expect_eq(num(row, "recipe_unknown"), 0);
	cJSON_Delete(arr);

	o = run_json(&t.f, (const char *[]){ "plan", "-C", "acme", "--json", NULL }, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	cr_expect_str_eq(str(o, "recommendation"), "new-collection");
	risk = risk_with(o, "recipe change");
	cr_assert_not_null(risk, "no recipe risk: %s", cJSON_PrintUnformatted(o));
	cr_expect_str_eq(str(risk, "level"), "high");
	HAS(str(risk, "what"), "8 of 8 vectors");
	HAS(str(risk, "what"), "prefix \"clustering: \"");
	cr_expect_eq(num(get(o, "counts"), "stale_recipe"), NACME);
	cr_expect_str_eq(str(get(o, "recipe"), "document_prefix"), "clustering: ");
	HAS(str(get(o, "recipe"), "document_prefix_origin"), "embfill.env:");
	cr_expect_str_eq(str(get(o, "recipe"), "query_prefix"), "search_query: ");
	cr_expect_str_eq(str(get(o, "recipe"), "query_prefix_origin"),
			 "default for nomic-embed-text");
	cJSON_Delete(o);
	{
		struct proc_result r;

		cr_assert_eq(run(&t.f, &r, (const char *[]){ "plan", "-C", "acme", NULL }), 0,
			     "%s%s", r.out, r.err);
		HAS(r.out, "recipe: prefix \"clustering: \"");
		HAS(r.out, "queries \"search_query: \" (default for nomic-embed-text)");
		HAS(r.out, "recipe 8)");
		HAS(r.out, "recommendation: backfill into a NEW collection");
		proc_result_free(&r);
	}

	ok_run(&t.f, 0, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--into",
					  "acme_v2", NULL });
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"
				 " WHERE collection = 'acme' AND recipe = '" ID_NOMIC "'"), NACME,
		     "run --into left the live collection alone");
	ok_run(&t.f, 0, (const char *[]){ "swap", "-C", "acme", "--with", "acme_v2", "--confirm",
					  "acme", NULL });

	o = run_json(&t.f, (const char *[]){ "verify", "-C", "acme", "--json", NULL }, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	id = strdup(str(o, "recipe"));
	cr_expect_str_neq(id, ID_NOMIC);
	cJSON_Delete(o);
	cr_assert(asprintf(&sql, "SELECT count(*) FROM @S.document_embeddings WHERE collection ="
				 " 'acme' AND recipe = '%s'", id) > 0);
	cr_expect_eq(fx_ll(&t.f, sql), NACME, "the swapped-in vectors carry the new fingerprint");
	free(sql);
	cr_assert(asprintf(&sql, "SELECT count(*) FROM @T.recipes WHERE id = '%s' AND"
				 " description = 'prefix \"clustering: \"'", id) > 0);
	cr_expect_eq(fx_ll(&t.f, sql), 1);
	free(sql);
	free(id);
	cr_expect_eq(status_num(&t.f, "acme", "stale"), 0);
	cr_expect_eq(status_num(&t.f, "acme", "stale_recipe"), 0);
	/* made from "clustering: " + text, the blank kept */
	{
		static const char *const ids_sql = "SELECT min(e.chunk_id) FROM @S.document_embeddings e"
						   " JOIN @S.document_chunks c ON c.id = e.chunk_id"
						   " WHERE e.collection = 'acme' AND c.content = $t$%s$t$";
		static float want[MAXDIM], got[MAXDIM];

		for (size_t i = 0; i < NACME; i++) {
			char *q = NULL, *text = NULL;
			long long cid;

			cr_assert(asprintf(&q, ids_sql, acme_texts[i]) > 0);
			cid = fx_ll(&t.f, q);
			free(q);
			cr_assert(asprintf(&text, "clustering: %s", acme_texts[i]) > 0);
			cr_assert_eq(sandbox_vec(t.e.url, t.model, text, 0, want),
				     stored_vec(&t.f, "@S.document_embeddings", cid, got));
			cr_expect_float_eq(cosine(want, got, DIM), 1.0, 1e-6, "chunk %lld", cid);
			free(text);
		}
	}
	rt_stop(&t);
}

/* --- 4. vectors from before recipes were recorded ------------------------------- */

Test(pg_recipe, vectors_without_a_recipe_are_unknown_not_stale_and_not_embedded_again,
     .timeout = 120)
{
	struct rt t;
	cJSON *arr;
	const cJSON *row;
	char *before, *after;
	static const char *const snap = "SELECT md5(string_agg(e::text, '|' ORDER BY chunk_id))"
					" FROM @S.document_embeddings e WHERE collection = 'acme'"
					" AND chunk_id <= 8";

	rt_start(&t, BACKEND_PG, "nomic-embed-text", DIM, DIM, NULL, NULL);
	run_coll(&t, "acme", NULL);
	fx_sql(&t.f, "UPDATE @S.document_embeddings SET recipe = NULL"
		     " WHERE collection = 'acme' AND chunk_id <= 5");
	arr = status_of(&t.f, "acme");
	row = cJSON_GetArrayItem(arr, 0);
	cr_expect_eq(num(row, "recipe_unknown"), 5);
	cr_expect_eq(num(row, "stale"), 0);
	cr_expect_eq(num(row, "stale_recipe"), 0);
	cr_expect_eq(num(row, "missing"), 0);
	cJSON_Delete(arr);

	before = fx_text(&t.f, snap);
	run_coll(&t, "acme", NULL);
	after = fx_text(&t.f, snap);
	cr_expect_str_eq(after, before, "the run embedded vectors without a recipe again");
	free(before);
	free(after);

	/* a table made before the recipe column existed: the recipe lives in
	 * the bookkeeping, where none is on record for these vectors */
	fx_sql(&t.f, "ALTER TABLE @S.document_embeddings DROP COLUMN recipe");
	cr_expect_eq(status_num(&t.f, "acme", "recipe_unknown"), NACME);
	cr_expect_eq(status_num(&t.f, "acme", "stale"), 0);
	fx_sql(&t.f, "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index,"
		     " content) VALUES (9, 1, 'acme', 8, 'water the plants')");
	before = fx_text(&t.f, snap);
	run_coll(&t, "acme", NULL);
	after = fx_text(&t.f, snap);
	cr_expect_str_eq(after, before, "the run embedded vectors without a recipe again");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors WHERE collection = 'acme'"
				 " AND chunk_key = ARRAY['9'] AND recipe = '" ID_NOMIC "'"), 1,
		     "the new vector's recipe is kept in the bookkeeping");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors"), 1, "only the new vector");
	arr = status_of(&t.f, "acme");
	row = cJSON_GetArrayItem(arr, 0);
	cr_expect_eq(num(row, "chunks"), NACME + 1);
	cr_expect_eq(num(row, "missing"), 0);
	cr_expect_eq(num(row, "stale"), 0);
	cr_expect_eq(num(row, "recipe_unknown"), NACME);
	cJSON_Delete(arr);
	free(before);
	free(after);
	rt_stop(&t);
}

/* --- 5. adopt checks the claim before it records it ------------------------------ */

static char *snapshot(struct fx *f, const char *table)
{
	char *sql = NULL, *v;

	cr_assert(asprintf(&sql, "SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)),"
				 " 'empty') FROM %s x", table) > 0);
	v = fx_text(f, sql);
	free(sql);
	return v;
}

/* Vectors a previous release wrote (recipe NULL): a false claim (no
 * prefix) is refused and nothing is recorded; the true one is recorded. */
static void adopt_default_layout(enum backend b)
{
	struct rt t;
	struct proc_result r;
	char *emb, *book, *log;
	cJSON *o;
	int rc;

	rt_start(&t, b, "nomic-embed-text", DIM, DIM, NULL, NULL);
	run_coll(&t, "acme", NULL);
	fx_sql(&t.f, "UPDATE @S.document_embeddings SET recipe = NULL WHERE collection = 'acme'");
	emb = snapshot(&t.f, "@S.document_embeddings");
	book = snapshot(&t.f, "@T.vectors");
	log = historylog(&t);

	o = run_json(&t.f, (const char *[]){ "adopt", "-C", "acme", "--confirm", "acme",
					     "--set", "EMBED_DOCUMENT_PREFIX=", "--json", NULL }, &rc);
	cr_expect_eq(rc, 1, "a false claim must be refused");
	cr_expect(!truth(o, "ok"));
	cr_expect_eq(num(o, "matches"), 0);
	cr_expect_str_eq(str(o, "recipe"), ID_PLAIN);
	cr_expect_str_eq(str(cJSON_GetArrayItem(get(o, "candidates"), 0), "description"),
			 "prefix \"search_document: \"");
	cJSON_Delete(o);
	cr_expect_eq(run(&t.f, &r, (const char *[]){ "adopt", "-C", "acme", "--confirm", "acme",
						     "--set", "EMBED_DOCUMENT_PREFIX=", NULL }), 1);
	HAS(r.out, "closest: prefix \"search_document: \"");
	HAS(r.err, "nothing was recorded");
	HAS(r.err, "hint:");
	proc_result_free(&r);
	{
		char *e2 = snapshot(&t.f, "@S.document_embeddings"), *b2 = snapshot(&t.f, "@T.vectors");
		char *l2 = historylog(&t);

		cr_expect_str_eq(e2, emb, "a refused claim changed the table");
		cr_expect_str_eq(b2, book, "a refused claim changed the bookkeeping");
		cr_expect_str_eq(l2, log, "a refused claim wrote the historylog");
		free(e2);
		free(b2);
		free(l2);
	}

	o = run_json(&t.f, (const char *[]){ "adopt", "-C", "acme", "--confirm", "acme", "--json",
					     NULL }, &rc);
	cr_expect_eq(rc, 0, "the true claim: %s", cJSON_PrintUnformatted(o));
	cr_expect(truth(o, "written"));
	cr_expect_eq(num(o, "adopted"), NACME);
	cr_expect_eq(num(o, "recipe_only"), NACME);
	cr_expect(truth(get(o, "provenance"), "ok"));
	cr_expect_eq(num(get(o, "provenance"), "matches"), NACME);
	cJSON_Delete(o);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings"
				 " WHERE collection = 'acme' AND recipe = '" ID_NOMIC "'"), NACME);
	cr_expect_eq(status_num(&t.f, "acme", "recipe_unknown"), 0);
	cr_expect_eq(status_num(&t.f, "acme", "stale"), 0);
	free(log);
	log = historylog(&t);
	HAS(log, " - acme - adopt");
	cr_expect(!strstr(log, "FAILED"), "%s", log);
	free(emb);
	free(book);
	free(log);
	rt_stop(&t);
}

Test(pg_recipe, adopt_refuses_a_claim_without_the_prefix_and_records_the_true_one,
     .timeout = 120)
{
	adopt_default_layout(BACKEND_PG);
}
Test(pglite_recipe, adopt_refuses_a_claim_without_the_prefix_and_records_the_true_one,
     .timeout = 180)
{
	adopt_default_layout(BACKEND_PGLITE);
}

/* A framework's table (vectors only; what made them lives in embfill's
 * bookkeeping, here forgotten) filled by another model behind a second
 * sandbox: vectors of dimension 64 shortened to 32, another vector space. */
Test(pg_recipe, adopt_refuses_another_models_vectors_unless_forced, .timeout = 120)
{
	struct rt t;
	struct embedder_proc other;
	struct proc_result r;
	char *vecs, *log, *other_url = NULL;
	cJSON *o;
	int rc;
	const char *other_emb[] = { "--dim", "64", "--model", "other-embed", NULL };

	rt_start(&t, BACKEND_PG, "nomic-embed-text", DIM, DIM, NULL, NULL);
	cr_assert_eq(embedder_start(&other, other_emb), 0, "the second sandbox did not start");
	fx_sql(&t.f, "CREATE TABLE @S.vecs AS SELECT chunk_id, collection, embedding"
		     " FROM @S.document_embeddings WHERE false;"
		     "ALTER TABLE @S.vecs ADD PRIMARY KEY (chunk_id)");
	add_settings(&t.f, "EMBEDDINGS_TABLE=%s.vecs\nEMBEDDINGS_MODEL_COLUMN=\n"
			   "EMBEDDINGS_HASH_COLUMN=\nEMBEDDINGS_DIM_COLUMN=\nEMBEDDINGS_AT_COLUMN=\n"
			   "EMBEDDINGS_RUN_COLUMN=\nEMBEDDINGS_RECIPE_COLUMN=\n", t.f.schema);
	cr_assert(asprintf(&other_url, "EMBED_URL=%s", other.url) > 0);
	{
		const char *with_other[] = { "--set", other_url, "--set", "EMBED_MODEL=other-embed",
					     "--set", "EMBED_DIMENSIONS=32", NULL };

		run_coll(&t, "acme", with_other);
		cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors WHERE model = 'other-embed'"),
			     NACME);
		fx_sql(&t.f, "DELETE FROM @T.vectors");
		vecs = snapshot(&t.f, "@S.vecs");
		log = historylog(&t);

		/* claimed as nomic-embed-text's, made by the settings' sandbox */
		o = run_json(&t.f, (const char *[]){ "adopt", "-C", "acme", "--confirm", "acme",
						     "--json", NULL }, &rc);
		cr_expect_eq(rc, 1, "another model's vectors must be refused");
		cr_expect(!truth(o, "ok"));
		cr_expect_eq(num(o, "matches"), 0, "%s", cJSON_PrintUnformatted(o));
		cr_expect_lt(num(cJSON_GetArrayItem(get(o, "candidates"), 0), "mean_cosine"), 0.95,
			     "no recipe of the model made them");
		cJSON_Delete(o);
		cr_expect_eq(run(&t.f, &r, (const char *[]){ "adopt", "-C", "acme", "--confirm",
							     "acme", NULL }), 1);
		HAS(r.out, "none of the model's recipes made them");
		proc_result_free(&r);
		cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors"), 0,
			     "a refused claim wrote the bookkeeping");
		{
			char *v2 = snapshot(&t.f, "@S.vecs"), *l2 = historylog(&t);

			cr_expect_str_eq(v2, vecs, "a refused claim changed the table");
			cr_expect_str_eq(l2, log, "a refused claim wrote the historylog");
			free(v2);
			free(l2);
		}

		/* the true claim, against the service that made them */
		o = run_json(&t.f, (const char *[]){ "adopt", "-C", "acme", "--confirm", "acme",
						     "--set", other_url, "--set",
						     "EMBED_MODEL=other-embed", "--set",
						     "EMBED_DIMENSIONS=32", "--json", NULL }, &rc);
		cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
		cr_expect_eq(num(o, "adopted"), NACME);
		cr_expect(truth(get(o, "provenance"), "ok"));
		cJSON_Delete(o);
		cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors WHERE model = 'other-embed'"
					 " AND dim = 32 AND recipe = 'r1-' || left(encode(sha256("
					 "convert_to(E'embfill-recipe-1\\ndimensions: 32\\n', 'UTF8')),"
					 " 'hex'), 16)"), NACME);
		cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.recipes WHERE description ="
					 " 'dimensions 32' AND canonical = E'embfill-recipe-1\\n"
					 "dimensions: 32\\n'"), 1, "adopt registers the recipe it records");
		{
			char *v2 = snapshot(&t.f, "@S.vecs");

			cr_expect_str_eq(v2, vecs, "adopt wrote a vector");
			free(v2);
		}
	}

	/* forced: recorded, and the historylog says the probe failed */
	fx_sql(&t.f, "DELETE FROM @T.vectors");
	o = run_json(&t.f, (const char *[]){ "adopt", "-C", "acme", "--confirm", "acme", "--force",
					     "--json", NULL }, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	cr_expect(!truth(get(o, "provenance"), "ok"));
	cr_expect_eq(num(o, "adopted"), NACME);
	cJSON_Delete(o);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors WHERE model = 'nomic-embed-text'"
				 " AND recipe = '" ID_NOMIC "'"), NACME);
	free(log);
	log = historylog(&t);
	HAS(log, "FAILED the probe and was recorded with --force");
	HAS(log, "--force");
	free(log);
	free(vecs);
	free(other_url);
	embedder_stop(&other);
	rt_stop(&t);
}

/* --- 6. dimensions asked of an OpenAI-style service --------------------------------- */

static void dims_256(enum backend b, const char *vector_type, const char *want_type)
{
	struct rt t;
	static float full[MAXDIM], got[MAXDIM];
	char *type;

	rt_start(&t, b, "text-embedding-3-small", 768, 256, "EMBED_DIMENSIONS=256\n", vector_type);
	type = fx_text(&t.f, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
			     " WHERE attrelid = '@S.document_embeddings'::regclass"
			     " AND attname = 'embedding'");
	cr_assert_str_eq(type, want_type);
	free(type);
	run_coll(&t, "acme", NULL);
	/* the stored vectors are the first 256 components of the model's 768,
	 * scaled back to length 1: what "dimensions": 256 asks for */
	for (size_t i = 0; i < NACME; i++) {
		double head = 0;

		cr_assert_eq(sandbox_vec(t.e.url, t.model, acme_texts[i], 0, full), 768);
		cr_assert_eq(stored_vec(&t.f, "@S.document_embeddings", (long long)i + 1, got), 256);
		for (int k = 0; k < 256; k++)
			head += (double)full[k] * full[k];
		for (int k = 0; k < 256; k++)
			cr_assert_float_eq(got[k], full[k] / sqrt(head), 1e-6,
					   "chunk %zu component %d", i + 1, k);
	}
	expect_vectors(&t, "@S.document_embeddings", 1, acme_texts, NACME, "", 256);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE collection ="
				 " 'acme' AND dim = 256 AND recipe = '" ID_DIMS256 "'"), NACME);
	cr_expect_eq(status_num(&t.f, "acme", "stale"), 0);
	ok_run(&t.f, 0, (const char *[]){ "verify", "-C", "acme", "--provenance", NULL });
	rt_stop(&t);
}

Test(pg_recipe, dimensions_256_fills_a_real_array_column, .timeout = 120)
{
	dims_256(BACKEND_PG, "real[]", "real[]");
}
Test(pg_recipe, dimensions_256_fills_a_vector_256_column_with_pgvector, .timeout = 120)
{
	if (!test_pgvector(BACKEND_PG))
		cr_skip_test("pgvector is not installed in this PostgreSQL");
	dims_256(BACKEND_PG, "vector", "vector(256)");
}
Test(pglite_recipe, dimensions_256_fills_a_vector_256_column, .timeout = 180)
{
	dims_256(BACKEND_PGLITE, NULL, "vector(256)");
}

/* --- 7. spot-check sends the query prefix ----------------------------------------- */

static double top_score(struct rt *t, const char *query, const char *const *extra,
			long long *chunk)
{
	const char *args[16] = { "spot-check", "-C", "acme", "-q", query, "--json" };
	size_t n = 6;
	const cJSON *top;
	cJSON *o;
	double s;
	int rc;

	while (extra && *extra && n < 15)
		args[n++] = *extra++;
	args[n] = NULL;
	o = run_json(&t->f, args, &rc);
	cr_assert_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	top = cJSON_GetArrayItem(get(cJSON_GetArrayItem(get(o, "queries"), 0), "citations"), 0);
	cr_assert_not_null(top, "no citation: %s", cJSON_PrintUnformatted(o));
	s = num(top, "score");
	*chunk = (long long)num(top, "chunk_id");
	cJSON_Delete(o);
	return s;
}

Test(pg_recipe, spot_check_puts_the_query_prefix_before_the_query, .timeout = 120)
{
	struct rt t;
	long long chunk = 0;
	double s;

	rt_start(&t, BACKEND_PG, "m1", DIM, DIM,
		 "EMBED_DOCUMENT_PREFIX=\"search_query: \"\nEMBED_QUERY_PREFIX=\"search_query: \"\n",
		 NULL);
	run_coll(&t, "acme", NULL);
	s = top_score(&t, acme_texts[2], NULL, &chunk);
	cr_expect_eq(chunk, 3);
	cr_expect_float_eq(s, 1.0, 1e-4, "the query was embedded as the document was: %f", s);
	s = top_score(&t, acme_texts[2], (const char *[]){ "--set", "EMBED_QUERY_PREFIX=", NULL },
		      &chunk);
	cr_expect_lt(s, 0.95, "without the prefix the query is another text: %f", s);
	rt_stop(&t);
}

/* --- 8. embfill's tables migrate from version 3 ----------------------------------- */

/* embfill's own tables as a version-3 embfill left them (its schema
 * init's statements up to version 3), and the default layout it made:
 * no recipe column, no recipes table. */
static const char v3_tool_ddl[] =
	"CREATE SCHEMA IF NOT EXISTS @T;"
	"CREATE TABLE IF NOT EXISTS @T.meta ("
	"  key text PRIMARY KEY, value text NOT NULL);"
	"INSERT INTO @T.meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;"
	"CREATE TABLE IF NOT EXISTS @T.runs ("
	"  id bigserial PRIMARY KEY,"
	"  collection text NOT NULL,"
	"  target_collection text NOT NULL,"
	"  state text NOT NULL DEFAULT 'running' CHECK (state IN"
	"    ('running', 'interrupted', 'completed', 'failed', 'cancelled', 'dry-run')),"
	"  operator text NOT NULL DEFAULT current_user,"
	"  host text, pid integer, command text, note text,"
	"  settings jsonb NOT NULL DEFAULT '{}',"
	"  started_at timestamptz NOT NULL DEFAULT now(),"
	"  heartbeat_at timestamptz NOT NULL DEFAULT now(),"
	"  finished_at timestamptz,"
	"  checkpoint_chunk_id bigint,"
	"  total bigint NOT NULL DEFAULT 0, done bigint NOT NULL DEFAULT 0,"
	"  written bigint NOT NULL DEFAULT 0, requests bigint NOT NULL DEFAULT 0,"
	"  retries bigint NOT NULL DEFAULT 0, quarantined bigint NOT NULL DEFAULT 0,"
	"  error text);"
	"CREATE INDEX IF NOT EXISTS runs_collection_idx ON @T.runs (collection, id DESC);"
	"CREATE TABLE IF NOT EXISTS @T.quarantine ("
	"  collection text NOT NULL, chunk_id bigint NOT NULL,"
	"  reason text NOT NULL, content_sha256 bytea,"
	"  run_id bigint REFERENCES @T.runs (id) ON DELETE SET NULL,"
	"  attempts integer NOT NULL DEFAULT 1,"
	"  first_seen timestamptz NOT NULL DEFAULT now(),"
	"  last_seen timestamptz NOT NULL DEFAULT now(),"
	"  PRIMARY KEY (collection, chunk_id));"
	"CREATE TABLE IF NOT EXISTS @T.collections ("
	"  name text PRIMARY KEY, model text, dim integer, provider text, service_host text,"
	"  max_chunk_size integer, chunk_overlap integer, chunked_from text,"
	"  updated_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS @T.backups ("
	"  run_id bigint NOT NULL, collection text NOT NULL, chunk_id bigint NOT NULL,"
	"  model text, dim integer, content_sha256 bytea, embedding real[],"
	"  embedded_at timestamptz, saved_at timestamptz NOT NULL DEFAULT now(),"
	"  PRIMARY KEY (run_id, chunk_id));"
	"CREATE TABLE IF NOT EXISTS @T.swaps ("
	"  id bigserial PRIMARY KEY, collection text NOT NULL, with_collection text NOT NULL,"
	"  previous_name text NOT NULL, operator text NOT NULL DEFAULT current_user,"
	"  swapped_at timestamptz NOT NULL DEFAULT now(), rolled_back_at timestamptz);"
	"ALTER TABLE @T.collections ADD COLUMN IF NOT EXISTS embeddings_table text;"
	"ALTER TABLE @T.backups ADD COLUMN IF NOT EXISTS existed boolean NOT NULL DEFAULT true;"
	"ALTER TABLE @T.backups ADD COLUMN IF NOT EXISTS row_data jsonb;"
	"ALTER TABLE @T.runs ADD COLUMN IF NOT EXISTS backup boolean NOT NULL DEFAULT false;"
	"ALTER TABLE @T.runs ADD COLUMN IF NOT EXISTS restored_at timestamptz;"
	"CREATE INDEX IF NOT EXISTS swaps_collection_idx ON @T.swaps (collection, id DESC);"
	"ALTER TABLE @T.backups ALTER COLUMN embedding SET STORAGE EXTERNAL;"
	"UPDATE @T.meta SET value = '2' WHERE key = 'schema_version' AND value::int < 2;"
	"CREATE TABLE IF NOT EXISTS @T.vectors ("
	"  collection text NOT NULL, chunk_key text[] NOT NULL,"
	"  model text, dim integer, content_sha256 bytea, recipe text,"
	"  embedded_at timestamptz NOT NULL DEFAULT now(), run_id bigint,"
	"  PRIMARY KEY (collection, chunk_key));"
	"ALTER TABLE @T.runs ADD COLUMN IF NOT EXISTS checkpoint_key text[];"
	"UPDATE @T.runs SET checkpoint_key = ARRAY[checkpoint_chunk_id::text]"
	"  WHERE checkpoint_key IS NULL AND checkpoint_chunk_id IS NOT NULL;"
	"ALTER TABLE @T.quarantine ADD COLUMN IF NOT EXISTS chunk_key text[];"
	"UPDATE @T.quarantine SET chunk_key = ARRAY[chunk_id::text] WHERE chunk_key IS NULL;"
	"ALTER TABLE @T.quarantine DROP CONSTRAINT IF EXISTS quarantine_pkey;"
	"ALTER TABLE @T.quarantine ALTER COLUMN chunk_id DROP NOT NULL;"
	"CREATE UNIQUE INDEX IF NOT EXISTS quarantine_key_idx"
	"  ON @T.quarantine (collection, chunk_key);"
	"ALTER TABLE @T.backups ADD COLUMN IF NOT EXISTS chunk_key text[];"
	"UPDATE @T.backups SET chunk_key = ARRAY[chunk_id::text] WHERE chunk_key IS NULL;"
	"ALTER TABLE @T.backups DROP CONSTRAINT IF EXISTS backups_pkey;"
	"ALTER TABLE @T.backups ALTER COLUMN chunk_id DROP NOT NULL;"
	"CREATE UNIQUE INDEX IF NOT EXISTS backups_key_idx ON @T.backups (run_id, chunk_key);"
	"ALTER TABLE @T.backups ADD COLUMN IF NOT EXISTS bookkeeping jsonb;"
	"UPDATE @T.meta SET value = '3' WHERE key = 'schema_version' AND value::int < 3;";

static const char v3_data_ddl[] =
	"CREATE SCHEMA @S;"
	"CREATE TABLE @S.documents (id bigserial PRIMARY KEY, collection text NOT NULL,"
	"  title text NOT NULL DEFAULT '', source_uri text, body text NOT NULL,"
	"  created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (id, collection));"
	"CREATE TABLE @S.document_chunks (id bigserial PRIMARY KEY, document_id bigint NOT NULL,"
	"  collection text NOT NULL, chunk_index integer NOT NULL CHECK (chunk_index >= 0),"
	"  content text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
	"  UNIQUE (id, collection), UNIQUE (document_id, chunk_index),"
	"  FOREIGN KEY (document_id, collection) REFERENCES @S.documents (id, collection)"
	"    ON DELETE CASCADE ON UPDATE CASCADE);"
	"CREATE INDEX document_chunks_collection_id_idx ON @S.document_chunks (collection, id);"
	"CREATE TABLE @S.document_embeddings (chunk_id bigint PRIMARY KEY,"
	"  collection text NOT NULL, model text NOT NULL,"
	"  dim integer NOT NULL CHECK (dim > 0),"
	"  content_sha256 bytea NOT NULL CHECK (octet_length(content_sha256) = 32),"
	"  embedding real[] CHECK (array_ndims(embedding) = 1 AND array_length(embedding, 1) = 32),"
	"  CHECK (embedding IS NULL OR cardinality(embedding) = dim),"
	"  embedded_at timestamptz NOT NULL DEFAULT now(), run_id bigint,"
	"  CONSTRAINT document_embeddings_isolation_fkey FOREIGN KEY (chunk_id, collection)"
	"    REFERENCES @S.document_chunks (id, collection) ON DELETE CASCADE ON UPDATE CASCADE);"
	"CREATE INDEX document_embeddings_collection_chunk_idx"
	"  ON @S.document_embeddings (collection, chunk_id);"
	"ALTER TABLE @S.document_embeddings ALTER COLUMN embedding SET STORAGE EXTERNAL";

Test(pg_recipe, embfills_tables_migrate_in_place_from_version_3, .timeout = 120)
{
	struct rt t;
	struct proc_result r;
	static float v[MAXDIM];
	const char *emb[] = { "--dim", "32", "--model", "m1", NULL };
	cJSON *arr, *o;
	const cJSON *row;
	int rc;

	/* the data a version-3 embfill wrote: plain vectors of m1 (no recipe
	 * existed), one chunk quarantined, a completed run, the registry */
	fx_init(&t.f, BACKEND_PG, NULL);
	snprintf(t.model, sizeof(t.model), "m1");
	cr_assert_eq(embedder_start(&t.e, emb), 0);
	add_settings(&t.f, "EMBED_PROVIDER=openai\nEMBED_URL=%s\nEMBED_MODEL=m1\nEMBED_DIM=32\n"
			   "HISTORYLOG=%s/historylog.md\n", t.e.url, t.f.dir);
	fx_sql(&t.f, v3_data_ddl);
	fx_sql(&t.f, v3_tool_ddl);
	insert_texts(&t.f, "acme", 1, 1, acme_texts, 4);
	fx_sql(&t.f, "INSERT INTO @T.runs (collection, target_collection, state, command, total,"
		     " done, written, quarantined, finished_at) VALUES ('acme', 'acme', 'completed',"
		     " 'embfill run -C acme --confirm acme', 4, 4, 3, 1, now());"
		     "INSERT INTO @T.quarantine (collection, chunk_id, chunk_key, reason,"
		     " content_sha256, run_id) SELECT 'acme', 4, ARRAY['4'], 'HTTP 400: too long',"
		     " sha256(convert_to(content, 'UTF8')), 1 FROM @S.document_chunks WHERE id = 4;"
		     "INSERT INTO @T.collections (name, model, dim, provider, service_host,"
		     " embeddings_table) VALUES ('acme', 'm1', 32, 'ollama', '127.0.0.1', NULL)");
	for (int i = 0; i < 3; i++) {
		struct ef_strbuf b = EF_STRBUF_INIT;

		cr_assert_eq(sandbox_vec(t.e.url, "m1", acme_texts[i], 0, v), DIM);
		ef_strbuf_addf(&b, "INSERT INTO @S.document_embeddings (chunk_id, collection, model,"
				   " dim, content_sha256, embedding, run_id) SELECT id, collection,"
				   " 'm1', 32, sha256(convert_to(content, 'UTF8')), '{");
		for (int k = 0; k < DIM; k++)
			ef_strbuf_addf(&b, "%s%.9g", k ? "," : "", (double)v[k]);
		ef_strbuf_addf(&b, "}'::real[], 1 FROM @S.document_chunks WHERE id = %d", i + 1);
		fx_sql(&t.f, ef_strbuf_str(&b));
		ef_strbuf_free(&b);
	}

	/* before the upgrade: counted as they are, no write until schema init */
	cr_expect_eq(status_num(&t.f, "acme", "embedded"), 3);
	cr_expect_eq(run(&t.f, &r, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
						     NULL }), 3, "%s%s", r.out, r.err);
	{
		char need[64];

		snprintf(need, sizeof(need), "are version 3; this embfill needs version %d",
			 EF_TOOL_SCHEMA_VERSION);
		HAS(r.err, need);
	}
	HAS(r.err, "embfill schema init");
	proc_result_free(&r);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs"), 1, "the refused run wrote a run");

	ok_run(&t.f, 0, (const char *[]){ "schema", "init", "--dim", "32", NULL });
	cr_expect_eq(fx_ll(&t.f, "SELECT value::int FROM @T.meta WHERE key = 'schema_version'"),
		     EF_TOOL_SCHEMA_VERSION);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.recipes"), 0);
	/* through version 4 (recipes) to 5: workers, leases, a run's stop */
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.workers"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.leases"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE NOT stop_requested"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM pg_attribute WHERE attrelid ="
				 " '@S.document_embeddings'::regclass AND attname = 'recipe'"), 0,
		     "the data tables are left as they are");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.runs WHERE state = 'completed'"), 1);

	/* the old rows read as before: three vectors, fresh, recipe unknown;
	 * the quarantine still explains chunk 4 */
	arr = status_of(&t.f, "acme");
	row = cJSON_GetArrayItem(arr, 0);
	cr_expect_eq(num(row, "chunks"), 4);
	cr_expect_eq(num(row, "embedded"), 3);
	cr_expect_eq(num(row, "stale"), 0);
	cr_expect_eq(num(row, "quarantined"), 1);
	cr_expect_eq(num(row, "recipe_unknown"), 3);
	cJSON_Delete(arr);
	o = run_json(&t.f, (const char *[]){ "verify", "-C", "acme", "--provenance", "--json",
					     NULL }, &rc);
	cr_expect_eq(rc, 0, "%s", cJSON_PrintUnformatted(o));
	cr_expect_eq(num(get(o, "provenance"), "matches"), 3);
	cJSON_Delete(o);
	cr_expect_eq(run(&t.f, &r, (const char *[]){ "plan", "-C", "acme", NULL }), 0, "%s%s",
		     r.out, r.err);
	HAS(r.out, "provider change: the embeddings were made by ollama");
	HAS(r.out, "provenance: 3 of 3 sampled vectors without a recorded model or recipe match"
		   " \"m1\" with plain (no prefix): made that way");
	proc_result_free(&r);

	/* adopt settles the recipe, in the bookkeeping (no column for it) */
	ok_run(&t.f, 0, (const char *[]){ "adopt", "-C", "acme", "--confirm", "acme", NULL });
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors WHERE collection = 'acme'"
				 " AND model = 'm1' AND recipe = '" ID_PLAIN "'"), 3);
	cr_expect_eq(status_num(&t.f, "acme", "recipe_unknown"), 0);
	cr_expect_eq(status_num(&t.f, "acme", "stale"), 0);

	/* once more: nothing changes */
	ok_run(&t.f, 0, (const char *[]){ "schema", "init", "--dim", "32", NULL });
	cr_expect_eq(fx_ll(&t.f, "SELECT value::int FROM @T.meta WHERE key = 'schema_version'"),
		     EF_TOOL_SCHEMA_VERSION);
	cr_expect_eq(status_num(&t.f, "acme", "quarantined"), 1);

	/* a run on the upgraded tables: the quarantined chunk through a lease,
	 * its recipe registered */
	ok_run(&t.f, 0, (const char *[]){ "run", "-C", "acme", "--confirm", "acme",
					  "--retry-quarantined", "--approve-provider-change", NULL });
	cr_expect_eq(status_num(&t.f, "acme", "embedded"), 4);
	cr_expect_eq(status_num(&t.f, "acme", "quarantined"), 0);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.leases l JOIN @T.runs r ON r.id ="
				 " l.run_id WHERE r.state = 'completed' AND l.state = 'done'"), 1);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.recipes WHERE id = '" ID_PLAIN "'"), 1);
	rt_stop(&t);
}
