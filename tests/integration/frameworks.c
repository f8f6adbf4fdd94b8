/*
 * frameworks.c - the tables RAG frameworks create, served as they are:
 * LangChain's PGVector (langchain_pg_collection, langchain_pg_embedding),
 * LlamaIndex's PGVectorStore (data_<name>), a pgai vectorizer's
 * <source>_embedding_store, and embfill's default layout beside them.
 *
 * Each layout is made by the DDL its framework runs (written out below
 * from the frameworks' published code), in a schema of the test's own.
 * The settings are what `embfill schema detect` prints, with only the
 * connection, the service and embfill's schema added; then embfill is run
 * as an operator would, and the test checks with its own SQL that exactly
 * the vectors that were missing were written, each the sandbox embedder's
 * vector of its text (asked for over HTTP by the test itself), that no
 * other row changed in any column, and that the framework's DDL is as it
 * was.
 *
 * On the native PostgreSQL 15 the vector types need pgvector; every test
 * first tries CREATE EXTENSION, and without it runs the same layout with
 * real[] or double precision[] columns, and says so in its log.
 *
 * Suites named pglite_* run one test at a time (PGlite serves one
 * connection); every helper here closes its connection before embfill runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>

#include "embedder_proc.h"
#include "embfill/schema.h"
#include "fixture.h"

#define HAS(hay, needle) cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", needle, hay)
#define DIM 64
#define PG_DUMP "/usr/lib/postgresql/15/bin/pg_dump"

struct ft {
	struct fx f;
	struct embedder_proc e;
	bool pgv;         /* the server has pgvector: vector and halfvec columns */
};

/* How a layout's rows are read: x is a row of the table that holds the
 * text; the vector may sit on it or on a joined row. */
struct layout {
	const char *key;      /* a row's key as text, over the FROM clause */
	const char *from;     /* the FROM clause */
	const char *row;      /* the row embfill may write (x, or e of a join) */
	const char *text;     /* the chunk's text */
	const char *vec;      /* the vector column, qualified */
	const char *vec_name; /* its name in the written row */
	char kind;            /* 'V' vector(N), 'U' vector, 'H' halfvec(N) */
};

/* --- servers, settings and commands ---------------------------------------- */

/* Whether pgvector can be used: the extension exists or is created now (a
 * second test creating it at the same moment loses a race, not the type). */
static bool have_vector(enum backend b)
{
	char *st = sql_try(b, "CREATE EXTENSION IF NOT EXISTS vector");
	bool ok = !*st;

	free(st);
	return ok || sql_ll(b, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'") > 0;
}

static void ft_start(struct ft *t, enum backend b, const char *what)
{
	const char *emb[] = { "--dim", "64", "--model", "m1,m2", NULL };

	fx_init(&t->f, b, NULL);
	t->pgv = have_vector(b);
	cr_assert(t->pgv || b == BACKEND_PG, "PGlite was started without pgvector");
	if (!t->pgv)
		cr_log_warn("%s on %s: pgvector cannot be created here, so this ran with real[] "
			    "and double precision[] columns in place of vector and halfvec", what,
			    backend_name(b));
	cr_assert_eq(embedder_start(&t->e, emb), 0, "the sandbox embedder did not start");
}

static void ft_stop(struct ft *t)
{
	embedder_stop(&t->e);
	fx_free(&t->f);
}

/* The column type a letter stands for, on this server. */
static const char *col_type(const struct ft *t, char kind)
{
	if (kind == 'H')
		return t->pgv ? "halfvec(64)" : "double precision[]";
	if (kind == 'U')
		return t->pgv ? "vector" : "real[]";
	return t->pgv ? "vector(64)" : "real[]";
}

/* A vector literal "[a,b,...]" in w.lit, as a value of the column's type:
 * through pgvector's vector (and its cast to halfvec, as embfill's write
 * does), or as the float array. */
static const char *lit_as(const struct ft *t, char kind)
{
	if (t->pgv)
		return kind == 'H' ? "CAST(w.lit AS vector)::halfvec" : "CAST(w.lit AS vector)";
	return kind == 'H' ? "CAST(translate(w.lit, '[]', '{}') AS real[])::float8[]"
			   : "CAST(translate(w.lit, '[]', '{}') AS real[])";
}

/* SQL with @V, @U and @H replaced by the column types, then run with @S
 * and @T as fixture.c replaces them. */
static void ddl(struct ft *t, const char *tpl)
{
	size_t cap = strlen(tpl) * 2 + 64, n = 0;
	char *out = malloc(cap);

	cr_assert(out);
	for (const char *p = tpl; *p; p++) {
		const char *rep = NULL;

		if (p[0] == '@' && (p[1] == 'V' || p[1] == 'U' || p[1] == 'H'))
			rep = col_type(t, p[1]);
		if (rep) {
			size_t rl = strlen(rep);
			if (n + rl + 1 >= cap)
				cr_assert(out = realloc(out, cap = cap * 2 + rl));
			memcpy(out + n, rep, rl);
			n += rl;
			p++;
			continue;
		}
		if (n + 2 >= cap)
			cr_assert(out = realloc(out, cap *= 2));
		out[n++] = *p;
	}
	out[n] = '\0';
	fx_sql(&t->f, out);
	free(out);
}

/* PGlite refuses a connection while the previous one is still closing (see
 * tests/lib/testdb.c), and the test's own SQL has just closed one: a
 * refused connection is retried, not taken for embfill's failure. */
static bool pglite_refused(enum backend b, const struct proc_result *r)
{
	return b == BACKEND_PGLITE && r->status == 3 && r->err &&
	       strstr(r->err, "cannot connect to the database");
}

static int cmd(struct ft *t, struct proc_result *r, const char *const *args)
{
	fx_run(&t->f, r, args);
	for (int i = 0; i < 30 && pglite_refused(t->f.b, r); i++) {
		proc_result_free(r);
		usleep(100 * 1000);
		fx_run(&t->f, r, args);
	}
	return r->status;
}

/* Runs a command that must succeed; returns its standard output. */
static char *ok(struct ft *t, const char *const *args)
{
	struct proc_result r;
	char *out;
	int rc = cmd(t, &r, args);

	cr_assert_eq(rc, 0, "embfill %s %s exited %d on %s:\n%s%s", args[0],
		     args[1] ? args[1] : "", rc, backend_name(t->f.b), r.out, r.err);
	out = strdup(r.out ? r.out : "");
	proc_result_free(&r);
	return out;
}

static void ok_quiet(struct ft *t, const char *const *args)
{
	free(ok(t, args));
}

/*
 * `embfill schema detect --table <schema>.<table>`, whose output becomes the
 * settings file as it is, with only the connection, the service, the model
 * and embfill's schema appended.  Returns the detected block.
 */
static char *detect(struct ft *t, const char *table)
{
	char *qualified = NULL, *text = NULL, *out;

	cr_assert(asprintf(&qualified, "%s.%s", t->f.schema, table) > 0);
	out = ok(t, (const char *[]){ "schema", "detect", "--table", qualified, NULL });
	cr_assert(asprintf(&text, "%s\n# added by the test\nDATABASE_URL=\"%s\"\n"
				  "EMBED_PROVIDER=openai\nEMBED_URL=%s\nEMBED_MODEL=m1\n"
				  "EMBED_DIM=%d\nEMBFILL_SCHEMA=%s\nHISTORYLOG=%s/historylog.md\n",
			   out, test_dsn(t->f.b), t->e.url, DIM, t->f.tool, t->f.dir) > 0);
	free(t->f.config);
	t->f.config = write_file(t->f.dir, "embfill.env", text);
	free(text);
	free(qualified);
	return out;
}

/* The line KEY=VALUE in a detected block. */
static void has_setting(const char *block, const char *key, const char *value)
{
	char line[512];

	snprintf(line, sizeof(line), "\n%s=%s\n", key, value);
	cr_expect(strstr(block, line), "schema detect did not print %s=%s:\n%s", key, value, block);
}

/* --- the sandbox embedder, asked directly ---------------------------------- */

struct body {
	char *buf;
	size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	char *nb = realloc(b->buf, b->len + size * n + 1);

	if (!nb)
		return 0;
	memcpy(nb + b->len, data, size * n);
	b->len += size * n;
	nb[b->len] = '\0';
	b->buf = nb;
	return size * n;
}

/*
 * The embedder's vectors of texts (a JSON array of strings) for model m1,
 * through its OpenAI route with plain floats, as pgvector literals
 * "[a,b,...]" with every float32 printed exactly.  Returns a JSON array of
 * strings (caller deletes).
 */
static cJSON *embed_texts(struct ft *t, const cJSON *texts)
{
	cJSON *req = cJSON_CreateObject(), *res, *data, *it, *out = cJSON_CreateArray();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct body b = { NULL, 0 };
	char url[128], *payload;
	CURL *c = curl_easy_init();

	cJSON_AddStringToObject(req, "model", "m1");
	cJSON_AddItemToObject(req, "input", cJSON_Duplicate(texts, true));
	payload = cJSON_PrintUnformatted(req);
	snprintf(url, sizeof(url), "%s/v1/embeddings", t->e.url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "the sandbox embedder did not answer");
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	cJSON_Delete(req);
	free(payload);
	res = cJSON_Parse(b.buf);
	data = cJSON_GetObjectItemCaseSensitive(res, "data");
	cr_assert(cJSON_IsArray(data) && cJSON_GetArraySize(data) == cJSON_GetArraySize(texts),
		  "the embedder answered: %s", b.buf);
	cJSON_ArrayForEach(it, data) {
		const cJSON *v, *emb = cJSON_GetObjectItemCaseSensitive(it, "embedding");
		char lit[DIM * 20 + 4];
		size_t n = 1;

		cr_assert(cJSON_IsArray(emb) && cJSON_GetArraySize(emb) == DIM);
		lit[0] = '[';
		cJSON_ArrayForEach(v, emb)
			n += (size_t)snprintf(lit + n, sizeof(lit) - n, "%s%.9g", n > 1 ? "," : "",
					      (double)(float)v->valuedouble);
		snprintf(lit + n, sizeof(lit) - n, "]");
		cJSON_AddItemToArray(out, cJSON_CreateString(lit));
	}
	cJSON_Delete(res);
	free(b.buf);
	return out;
}

static void add_quoted(char **sql, size_t *len, const char *s)
{
	FILE *m = open_memstream(sql, len);

	cr_assert(m);
	fputc('\'', m);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', m);
		fputc(*s, m);
	}
	fputc('\'', m);
	fclose(m);
}

/* VALUES ('key', '[vector]'), ... of the embedder's vectors of the texts
 * of rows (a JSON array of [key, text]). */
static char *values_of(struct ft *t, const cJSON *rows)
{
	cJSON *texts = cJSON_CreateArray(), *vecs, *row;
	char *out = NULL;
	size_t len = 0;
	FILE *m;
	int i = 0;

	cJSON_ArrayForEach(row, rows)
		cJSON_AddItemToArray(texts, cJSON_CreateString(cJSON_GetArrayItem(row, 1)->valuestring));
	vecs = embed_texts(t, texts);
	m = open_memstream(&out, &len);
	cr_assert(m);
	fputs("(VALUES ", m);
	cJSON_ArrayForEach(row, rows) {
		char *k = NULL, *v = NULL;
		size_t kl = 0, vl = 0;

		add_quoted(&k, &kl, cJSON_GetArrayItem(row, 0)->valuestring);
		add_quoted(&v, &vl, cJSON_GetArrayItem(vecs, i)->valuestring);
		fprintf(m, "%s(%s, %s)", i++ ? ", " : "", k, v);
		free(k);
		free(v);
	}
	fputs(") w(k, lit)", m);
	fclose(m);
	cJSON_Delete(texts);
	cJSON_Delete(vecs);
	return out;
}

/* [key, text] of the rows of the layout that where selects, as JSON. */
static cJSON *texts_of(struct ft *t, const struct layout *l, const char *where)
{
	char *q = NULL, *json;
	cJSON *rows;

	cr_assert(asprintf(&q, "SELECT coalesce(json_agg(json_build_array(k, txt) ORDER BY k), '[]')"
			       " FROM (SELECT (%s)::text AS k, %s AS txt FROM %s WHERE %s) s",
			   l->key, l->text, l->from, where) > 0);
	json = fx_text(&t->f, q);
	rows = cJSON_Parse(json);
	cr_assert(cJSON_IsArray(rows), "%s", json);
	free(json);
	free(q);
	return rows;
}

/* The rows where selects get the embedder's vectors of their texts, set by
 * the test as a framework would have written them.  Returns how many. */
static int set_vectors(struct ft *t, const char *table, const struct layout *l,
		       const char *where)
{
	cJSON *rows = texts_of(t, l, where);
	int n = cJSON_GetArraySize(rows);
	char *vals = values_of(t, rows), *q = NULL;

	cr_assert(n > 0);
	cr_assert(asprintf(&q, "UPDATE @S.%s x SET %s = %s FROM %s WHERE (%s)::text = w.k", table,
			   l->vec_name, lit_as(t, l->kind), vals, l->key) > 0);
	fx_sql(&t->f, q);
	free(q);
	free(vals);
	cJSON_Delete(rows);
	return n;
}

/* Every row of rows (a JSON array of [key, text]) holds the embedder's
 * vector of its text, to the column's precision. */
static void expect_embedder_vectors(struct ft *t, const struct layout *l, const cJSON *rows,
				    const char *what)
{
	int n = cJSON_GetArraySize(rows);
	char *vals, *q = NULL;
	long long got;

	if (n == 0)
		return;
	vals = values_of(t, rows);
	cr_assert(asprintf(&q, "SELECT count(*) FROM %s JOIN %s ON (%s)::text = w.k"
			       " WHERE %s = %s", l->from, vals, l->key, l->vec,
			   lit_as(t, l->kind)) > 0);
	got = fx_ll(&t->f, q);
	cr_expect_eq(got, n, "%s: %lld of %d written vectors are the embedder's vectors of their "
		     "text", what, got, n);
	free(q);
	free(vals);
}

/* --- the rows: what was written, and that nothing else was ----------------- */

struct snap {
	char *text;   /* key|md5 of the row|md5 of the row without the vector|to write, per line */
};

static struct snap snapshot(struct ft *t, const struct layout *l, const char *todo)
{
	struct snap s;
	char *q = NULL;

	cr_assert(asprintf(&q, "SELECT coalesce(string_agg(format('%%s|%%s|%%s|%%s', k,"
			       " md5(r::text), md5((to_jsonb(r) - '%s')::text), w), E'\\n'"
			       " ORDER BY k), '')"
			       " FROM (SELECT (%s)::text AS k, %s AS r, coalesce(%s, false) AS w"
			       " FROM %s) s", l->vec_name, l->key, l->row, todo, l->from) > 0);
	s.text = fx_text(&t->f, q);
	free(q);
	return s;
}

/* Splits a snapshot line into its four fields (in place). */
static void fields(char *line, char **f)
{
	for (int i = 0; i < 4; i++) {
		f[i] = line;
		line += strcspn(line, "|");
		if (*line)
			*line++ = '\0';
	}
}

/*
 * Compares two snapshots of the same rows: a row marked "to write" before
 * must have another vector now (and, when rest_kept, every other column as
 * it was); every other row must be byte for byte what it was.  Returns the
 * keys written as a JSON array of [key, text] for expect_embedder_vectors.
 */
static cJSON *written(struct ft *t, const struct layout *l, struct snap *before,
		      struct snap *after, bool rest_kept, int want, const char *what)
{
	char *b = strdup(before->text), *a = strdup(after->text), *sb, *sa;
	char *lb = strtok_r(b, "\n", &sb), *la = strtok_r(a, "\n", &sa);
	char *in = NULL;
	size_t inlen = 0;
	FILE *m = open_memstream(&in, &inlen);
	int n = 0, rows = 0;
	cJSON *keys;

	cr_assert(m);
	fputs("false", m);
	for (; lb && la; lb = strtok_r(NULL, "\n", &sb), la = strtok_r(NULL, "\n", &sa)) {
		char *fb[4], *fa[4];

		fields(lb, fb);
		fields(la, fa);
		rows++;
		cr_assert_str_eq(fa[0], fb[0], "%s: the rows are not the same rows", what);
		if (strcmp(fb[3], "t") == 0) {
			char *k = NULL;
			size_t kl = 0;

			n++;
			cr_expect_str_neq(fa[1], fb[1], "%s: row %s was to be written and was not",
					  what, fb[0]);
			if (rest_kept)
				cr_expect_str_eq(fa[2], fb[2], "%s: row %s was written in another "
						 "column than its vector", what, fb[0]);
			add_quoted(&k, &kl, fb[0]);
			fprintf(m, " OR (%s)::text = %s", l->key, k);
			free(k);
		} else {
			cr_expect_str_eq(fa[1], fb[1], "%s: row %s was not to be written, and changed",
					 what, fb[0]);
		}
	}
	cr_expect(!lb && !la, "%s: rows were added or removed", what);
	fclose(m);
	cr_expect_eq(n, want, "%s: %d rows were to be written, the test expected %d", what, n,
		     want);
	cr_expect(rows > n, "%s: every row was to be written, nothing shows untouched rows", what);
	keys = texts_of(t, l, in);
	free(in);
	free(a);
	free(b);
	return keys;
}

static void snap_free(struct snap *s)
{
	free(s->text);
	s->text = NULL;
}

/* md5 of every row of a table, all columns. */
static char *table_md5(struct ft *t, const char *table, const char *where)
{
	char *q = NULL, *out;

	cr_assert(asprintf(&q, "SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, '|'"
			       " ORDER BY x::text)), '-') FROM @S.%s x WHERE %s", table, where) > 0);
	out = fx_text(&t->f, q);
	free(q);
	return out;
}

/* --- the DDL -------------------------------------------------------------- */

/* Every table, view, column (type, nullability, default, storage),
 * constraint, index and trigger of the test's schema, as the catalog
 * describes them: the comparison that works on any server version. */
static char *catalog(struct ft *t)
{
	return fx_text(&t->f,
		"SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM ("
		" SELECT format('rel %s %s %s', c.relname, c.relkind,"
		"  CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END) AS x"
		"  FROM pg_class c WHERE c.relnamespace = '@S'::regnamespace"
		" UNION ALL SELECT format('col %s.%s %s notnull=%s default=%s storage=%s gen=%s',"
		"  c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
		"  pg_get_expr(d.adbin, d.adrelid), a.attstorage, a.attgenerated)"
		"  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
		"  AND NOT a.attisdropped LEFT JOIN pg_attrdef d ON d.adrelid = c.oid"
		"  AND d.adnum = a.attnum WHERE c.relnamespace = '@S'::regnamespace"
		"  AND c.relkind IN ('r', 'p', 'v')"
		" UNION ALL SELECT format('con %s %s %s', conrelid::regclass, conname,"
		"  pg_get_constraintdef(oid)) FROM pg_constraint"
		"  WHERE connamespace = '@S'::regnamespace"
		" UNION ALL SELECT format('idx %s', pg_get_indexdef(i.indexrelid)) FROM pg_index i"
		"  JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = '@S'::regnamespace"
		" UNION ALL SELECT format('trg %s', pg_get_triggerdef(g.oid)) FROM pg_trigger g"
		"  JOIN pg_class c ON c.oid = g.tgrelid WHERE c.relnamespace = '@S'::regnamespace"
		"  AND NOT g.tgisinternal) s");
}

/* pg_dump --schema-only of the test's schema (native PostgreSQL only: the
 * system's pg_dump is older than PGlite's server), without the \restrict
 * lines whose key is new on every dump. */
static char *dump(struct ft *t)
{
	struct proc_result r;
	char *schema = NULL, *out, *sp = NULL;
	size_t len = 0;
	FILE *m;

	if (t->f.b != BACKEND_PG)
		return strdup("");
	cr_assert(asprintf(&schema, "--schema=%s", t->f.schema) > 0);
	proc_run((const char *[]){ PG_DUMP, "--schema-only", "--no-owner", schema, "-d",
				   test_dsn(t->f.b), NULL }, NULL, NULL, &r);
	cr_assert_eq(r.status, 0, "pg_dump failed: %s", r.err);
	cr_assert(strstr(r.out, "CREATE TABLE"), "pg_dump printed no table:\n%s", r.out);
	m = open_memstream(&out, &len);
	cr_assert(m);
	for (char *line = strtok_r(r.out, "\n", &sp); line; line = strtok_r(NULL, "\n", &sp))
		if (strncmp(line, "\\restrict ", 10) != 0 && strncmp(line, "\\unrestrict ", 12) != 0)
			fprintf(m, "%s\n", line);
	fclose(m);
	proc_result_free(&r);
	free(schema);
	return out;
}

struct ddl_snap {
	char *catalog, *dump;
};

static struct ddl_snap ddl_snap(struct ft *t)
{
	struct ddl_snap d = { catalog(t), dump(t) };

	cr_assert(strstr(d.catalog, "rel "), "the test's schema holds no table:\n%s", d.catalog);
	return d;
}

static void ddl_same(struct ft *t, struct ddl_snap *before, const char *what)
{
	struct ddl_snap now = ddl_snap(t);

	cr_expect_str_eq(now.catalog, before->catalog, "%s: the catalog of the framework's schema "
			 "changed", what);
	cr_expect_str_eq(now.dump, before->dump, "%s: pg_dump --schema-only of the framework's "
			 "schema changed", what);
	free(now.catalog);
	free(now.dump);
	free(before->catalog);
	free(before->dump);
}

/* --- status, schema check and init ----------------------------------------- */

static cJSON *status_row(struct ft *t, const char *coll)
{
	struct proc_result r;
	cJSON *arr, *it, *row = NULL;

	cr_assert_eq(cmd(t, &r, (const char *[]){ "status", "--json", NULL }), 0,
		     "status exited %d:\n%s", r.status, r.err);
	arr = cJSON_Parse(r.out);
	cr_assert(cJSON_IsArray(arr), "status --json printed no array: %s", r.out);
	proc_result_free(&r);
	cJSON_ArrayForEach(it, arr) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "collection");
		if (cJSON_IsString(c) && strcmp(c->valuestring, coll) == 0)
			row = cJSON_Duplicate(it, true);
	}
	cJSON_Delete(arr);
	cr_assert(row, "status lists no collection \"%s\"", coll);
	return row;
}

static long long num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert(cJSON_IsNumber(v), "field \"%s\" is missing", key);
	return (long long)v->valuedouble;
}

/*
 * status --json of a collection against counts of the test's own SQL over
 * the rows of the layout that where selects: chunks, vectors, NULL or
 * absent ones; stale (and unrecorded) is given, as the test knows it.
 */
static void expect_status(struct ft *t, const struct layout *l, const char *coll,
			  const char *where, long long stale, long long unrecorded)
{
	char *q = NULL, *counts;
	long long chunks = 0, vectors = 0;
	cJSON *row = status_row(t, coll);

	cr_assert(asprintf(&q, "SELECT count(*) || ' ' || count(%s) FROM %s WHERE %s", l->vec,
			   l->from, where) > 0);
	counts = fx_text(&t->f, q);
	cr_assert_eq(sscanf(counts, "%lld %lld", &chunks, &vectors), 2);
	cr_assert(chunks > 0);
	cr_expect_eq(num(row, "chunks"), chunks, "%s: chunks %lld, SQL counts %lld", coll,
		     num(row, "chunks"), chunks);
	cr_expect_eq(num(row, "embedded"), vectors, "%s: embedded %lld, SQL counts %lld", coll,
		     num(row, "embedded"), vectors);
	cr_expect_eq(num(row, "missing"), chunks - vectors, "%s: missing %lld, SQL counts %lld",
		     coll, num(row, "missing"), chunks - vectors);
	cr_expect_eq(num(row, "stale"), stale, "%s: stale %lld, want %lld", coll,
		     num(row, "stale"), stale);
	cr_expect_eq(num(row, "unrecorded"), unrecorded, "%s: unrecorded %lld, want %lld", coll,
		     num(row, "unrecorded"), unrecorded);
	cr_expect_eq(num(row, "orphans") + num(row, "cross_tenant") + num(row, "quarantined"), 0,
		     "%s: orphans, cross-tenant or quarantined rows reported", coll);
	cJSON_Delete(row);
	free(counts);
	free(q);
}

/* schema check passes as detected; schema init then creates embfill's
 * tables and nothing of the framework's (the catalog of its schema is
 * compared by the caller). */
static void check_and_init(struct ft *t, bool inline_layout)
{
	char *out = ok(t, (const char *[]){ "schema", "check", NULL }), line[32];
	long long tool;

	cr_expect_null(strstr(out, "[FAIL]"), "schema check:\n%s", out);
	free(out);
	out = ok(t, (const char *[]){ "schema", "init", NULL });
	if (inline_layout)
		HAS(out, "only embfill's tables were created");
	else
		cr_expect_null(strstr(out, "created \""), "schema init created a data table:\n%s",
			       out);
	free(out);
	tool = fx_ll(&t->f, "SELECT count(*) FROM pg_class WHERE relnamespace = '@T'::regnamespace"
			    " AND relkind = 'r' AND relname IN ('meta', 'runs', 'quarantine',"
			    " 'collections', 'backups', 'swaps', 'vectors')");
	cr_expect_eq(tool, 7, "embfill's own tables: %lld of 7", tool);
	out = ok(t, (const char *[]){ "schema", "check", NULL });
	cr_expect_null(strstr(out, "[FAIL]"), "schema check after init:\n%s", out);
	snprintf(line, sizeof(line), "(version %d)", EF_TOOL_SCHEMA_VERSION);
	HAS(out, line);
	free(out);
}

/* adopt records that many vectors as m1's, booked of them in embfill's
 * bookkeeping (all for a table without a model column). */
static void adopt(struct ft *t, const char *coll, long long vectors, long long booked_want)
{
	char *out, *q = NULL, line[64];
	long long booked;

	out = ok(t, (const char *[]){ "adopt", "-C", coll, "--confirm", coll, NULL });
	snprintf(line, sizeof(line), "recorded: %lld vectors", vectors);
	HAS(out, line);
	free(out);
	cr_assert(asprintf(&q, "SELECT count(*) FROM @T.vectors WHERE model = 'm1' AND dim = %d"
			       " AND run_id IS NULL", DIM) > 0);
	booked = fx_ll(&t->f, q);
	cr_expect_eq(booked, booked_want, "adopt recorded %lld vectors in the bookkeeping, not "
		     "%lld", booked, booked_want);
	free(q);
}

/* embfill's bookkeeping: adopted vectors (no run) and vectors runs wrote.
 * A run that rewrote a vector it should have left would show here even
 * when it wrote the same floats. */
static void expect_book(struct ft *t, long long adopted, long long by_runs, const char *what)
{
	char *got = fx_text(&t->f, "SELECT count(*) FILTER (WHERE run_id IS NULL) || ' ' ||"
				   " count(*) FILTER (WHERE run_id IS NOT NULL) FROM @T.vectors");
	char want[64];

	snprintf(want, sizeof(want), "%lld %lld", adopted, by_runs);
	cr_expect_str_eq(got, want, "%s: bookkeeping rows adopted and written by runs", what);
	free(got);
}

static void verify_and_spotcheck(struct ft *t, const char *coll)
{
	char *out = ok(t, (const char *[]){ "verify", "-C", coll, NULL });

	HAS(out, "result: ok");
	free(out);
	out = ok(t, (const char *[]){ "spot-check", "-C", coll, NULL });
	HAS(out, "result: ok");
	free(out);
}

/* --- LangChain PGVector ------------------------------------------------------ */

/*
 * langchain_postgres.vectorstores: CollectionStore and EmbeddingStore as
 * SQLAlchemy's create_all() makes them (the embedding column is
 * Vector(None), pgvector's vector without a dimension, unless
 * embedding_length is given; id is unique and indexed as well as primary).
 */
static const char langchain_ddl[] =
	"CREATE SCHEMA @S;"
	"CREATE TABLE @S.langchain_pg_collection ("
	"  uuid UUID NOT NULL,"
	"  name VARCHAR NOT NULL,"
	"  cmetadata JSON,"
	"  PRIMARY KEY (uuid),"
	"  UNIQUE (name));"
	"CREATE TABLE @S.langchain_pg_embedding ("
	"  id VARCHAR NOT NULL,"
	"  collection_id UUID,"
	"  embedding @U,"
	"  document VARCHAR,"
	"  cmetadata JSONB,"
	"  PRIMARY KEY (id),"
	"  FOREIGN KEY(collection_id) REFERENCES @S.langchain_pg_collection (uuid)"
	"   ON DELETE CASCADE);"
	"CREATE UNIQUE INDEX ix_langchain_pg_embedding_id ON @S.langchain_pg_embedding (id);"
	"CREATE INDEX ix_cmetadata_gin ON @S.langchain_pg_embedding"
	"  USING gin (cmetadata jsonb_path_ops);"
	/* two collections; ids are uuid4 strings, as add_documents() makes them */
	"INSERT INTO @S.langchain_pg_collection VALUES"
	"  ('5d1e0d8e-6c53-4a43-9b0e-7c3f1a2b9d01', 'docs', '{}'),"
	"  ('0f9a2c44-1b7e-4f3d-8e21-6a5b4c3d2e10', 'other', NULL);"
	"INSERT INTO @S.langchain_pg_embedding (id, collection_id, document, cmetadata)"
	" SELECT md5('docs' || g)::uuid::text, '5d1e0d8e-6c53-4a43-9b0e-7c3f1a2b9d01',"
	"  'Topic ' || g || ' ' || (SELECT string_agg(substr(md5(g || ':' || w), 1, 3 + w % 5),"
	"  ' ') FROM generate_series(1, 9) w) || '. More words ' || md5('more' || g) || '.',"
	"  jsonb_build_object('source', 'file:///docs/' || g || '.md', 'page', g)"
	" FROM generate_series(1, 16) g;"
	"INSERT INTO @S.langchain_pg_embedding (id, collection_id, document, cmetadata)"
	" SELECT md5('other' || g)::uuid::text, '0f9a2c44-1b7e-4f3d-8e21-6a5b4c3d2e10',"
	"  'Other note ' || g || ' ' || md5('o' || g) || '.',"
	"  jsonb_build_object('source', 'file:///other/' || g)"
	" FROM generate_series(1, 6) g;";

static const struct layout langchain = {
	.key = "x.id", .from = "@S.langchain_pg_embedding x", .row = "x", .text = "x.document",
	.vec = "x.embedding", .vec_name = "embedding", .kind = 'U',
};

#define LC_DOCS "x.collection_id = '5d1e0d8e-6c53-4a43-9b0e-7c3f1a2b9d01'"
#define LC_OTHER "x.collection_id = '0f9a2c44-1b7e-4f3d-8e21-6a5b4c3d2e10'"

/* The LangChain store, detected and set up: the vectors of ten of docs'
 * sixteen rows and all of other's, as LangChain wrote them; the rest NULL
 * (the rows of a failed add_documents() batch).  Returns the DDL before
 * embfill first ran. */
static struct ddl_snap langchain_setup(struct ft *t)
{
	struct ddl_snap before;
	char *block;

	ddl(t, langchain_ddl);
	set_vectors(t, "langchain_pg_embedding", &langchain,
		    LC_DOCS " AND x.cmetadata->>'page' IN"
		    " ('1', '2', '3', '5', '6', '8', '10', '11', '13', '16')");
	/* other's vectors come from another recipe: written again by
	 * mistake, they would change */
	set_vectors(t, "langchain_pg_embedding", &(struct layout){
			    .key = langchain.key, .from = langchain.from,
			    .text = "x.document || ' as an older model read it'",
			    .vec_name = langchain.vec_name, .kind = langchain.kind }, LC_OTHER);
	before = ddl_snap(t);
	block = detect(t, "langchain_pg_embedding");
	HAS(block, "LangChain PGVector");
	has_setting(block, "SCHEMA_LAYOUT", "inline");
	has_setting(block, "COLLECTION_MODE", "lookup");
	has_setting(block, "CHUNKS_ID_COLUMN", "id");
	has_setting(block, "CHUNKS_COLLECTION_COLUMN", "collection_id");
	has_setting(block, "CHUNKS_CONTENT_COLUMN", "document");
	has_setting(block, "COLLECTIONS_KEY_COLUMN", "uuid");
	has_setting(block, "EMBEDDINGS_VECTOR_COLUMN", "embedding");
	has_setting(block, "EMBEDDINGS_MODEL_COLUMN", "");
	HAS(block, t->pgv ? "embedding, vector\n" : "embedding, real[]\n");
	free(block);
	check_and_init(t, true);
	return before;
}

static void langchain_served(enum backend b)
{
	struct ft t;
	struct ddl_snap before;
	struct snap s0, s1;
	cJSON *w;
	char *other0, *other1;

	ft_start(&t, b, "LangChain with an untyped vector column");
	before = langchain_setup(&t);
	other0 = table_md5(&t, "langchain_pg_embedding", LC_OTHER);
	expect_status(&t, &langchain, "docs", LC_DOCS, 10, 10);
	expect_status(&t, &langchain, "other", LC_OTHER, 6, 6);
	adopt(&t, "docs", 10, 10);
	expect_status(&t, &langchain, "docs", LC_DOCS, 0, 0);
	expect_status(&t, &langchain, "other", LC_OTHER, 6, 6);
	s0 = snapshot(&t, &langchain, "x.embedding IS NULL AND " LC_DOCS);
	ok_quiet(&t, (const char *[]){ "run", "-C", "docs", "--confirm", "docs", "--only",
				       "missing", NULL });
	s1 = snapshot(&t, &langchain, "false");
	w = written(&t, &langchain, &s0, &s1, true, 6, "run --only missing");
	expect_embedder_vectors(&t, &langchain, w, "run --only missing");
	cJSON_Delete(w);
	expect_status(&t, &langchain, "docs", LC_DOCS, 0, 0);
	expect_book(&t, 10, 6, "run --only missing");
	/* a plain run after it finds nothing left to write */
	ok_quiet(&t, (const char *[]){ "run", "-C", "docs", "--confirm", "docs", NULL });
	snap_free(&s0);
	s0 = snapshot(&t, &langchain, "false");
	cr_expect_str_eq(s0.text, s1.text, "a plain run after --only missing rewrote rows");
	expect_book(&t, 10, 6, "a plain run after it");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(DISTINCT run_id) FROM @T.vectors"), 1,
		     "a plain run after --only missing rewrote vectors");
	other1 = table_md5(&t, "langchain_pg_embedding", LC_OTHER);
	cr_expect_str_eq(other1, other0, "collection \"other\" changed");
	verify_and_spotcheck(&t, "docs");
	ddl_same(&t, &before, "LangChain");
	snap_free(&s0);
	snap_free(&s1);
	free(other0);
	free(other1);
	ft_stop(&t);
}

Test(pg_frameworks, langchain_store_is_filled_and_nothing_else_changes, .timeout = 120)
{
	langchain_served(BACKEND_PG);
}

Test(pglite_frameworks, langchain_store_is_filled_and_nothing_else_changes, .timeout = 180)
{
	langchain_served(BACKEND_PGLITE);
}

/* The lookup table as name=uuid pairs, by name. */
static char *names(struct ft *t)
{
	return fx_text(&t->f, "SELECT string_agg(name || '=' || uuid, ',' ORDER BY name)"
			      " FROM @S.langchain_pg_collection");
}

/* What LangChain's similarity_search reads for collection_name='docs': the
 * rows joined by name, each with the model embfill's bookkeeping has for
 * it. */
static char *app_view(struct ft *t)
{
	return fx_text(&t->f, "SELECT count(*) || ' ' || md5(string_agg(e.id || ':' ||"
			      " coalesce(v.model, '-') || ':' || md5(e.embedding::text), ','"
			      " ORDER BY e.id)) FROM @S.langchain_pg_embedding e"
			      " JOIN @S.langchain_pg_collection c ON c.uuid = e.collection_id"
			      " LEFT JOIN @T.vectors v ON v.collection = c.uuid::text"
			      " AND v.chunk_key = ARRAY[e.id::text] WHERE c.name = 'docs'");
}

static void langchain_model_change(enum backend b)
{
	struct ft t;
	struct ddl_snap before;
	char *other0, *other1, *live, *view, *nm, *next_uuid, *docs_m1, *q = NULL;
	cJSON *rows;

	ft_start(&t, b, "LangChain model change");
	before = langchain_setup(&t);
	adopt(&t, "docs", 10, 10);
	ok_quiet(&t, (const char *[]){ "run", "-C", "docs", "--confirm", "docs", "--only",
				       "missing", NULL });
	other0 = table_md5(&t, "langchain_pg_embedding", LC_OTHER);
	live = table_md5(&t, "langchain_pg_embedding", LC_DOCS);
	docs_m1 = app_view(&t);
	HAS(docs_m1, "16 ");

	/* the new model's vectors into a new collection: a lookup row of its
	 * own, the rows copied under its uuid, docs untouched */
	ok_quiet(&t, (const char *[]){ "run", "-C", "docs", "--confirm", "docs", "--into",
				       "docs_next", "--set", "EMBED_MODEL=m2", NULL });
	nm = names(&t);
	next_uuid = fx_text(&t.f, "SELECT uuid::text FROM @S.langchain_pg_collection"
				  " WHERE name = 'docs_next'");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(DISTINCT uuid) FROM @S.langchain_pg_collection"), 3,
		     "docs_next has no uuid of its own: %s", nm);
	cr_assert(asprintf(&q, "docs=5d1e0d8e-6c53-4a43-9b0e-7c3f1a2b9d01,docs_next=%s,"
			       "other=0f9a2c44-1b7e-4f3d-8e21-6a5b4c3d2e10", next_uuid) > 0);
	cr_expect_str_eq(nm, q, "the lookup table after run --into");
	free(q);
	free(nm);
	cr_assert(asprintf(&q, "SELECT count(*) FROM @S.langchain_pg_embedding e JOIN @T.vectors v"
			       " ON v.collection = e.collection_id::text AND v.chunk_key ="
			       " ARRAY[e.id::text] WHERE e.collection_id = '%s' AND v.model = 'm2'"
			       " AND e.embedding IS NOT NULL", next_uuid) > 0);
	cr_expect_eq(fx_ll(&t.f, q), 16, "docs_next: rows with an m2 vector");
	free(q);
	cr_assert(asprintf(&q, "x.collection_id = '%s'", next_uuid) > 0);
	rows = texts_of(&t, &langchain, q);
	cr_expect_eq(cJSON_GetArraySize(rows), 16);
	expect_embedder_vectors(&t, &langchain, rows, "run --into docs_next");
	cJSON_Delete(rows);
	free(q);
	other1 = table_md5(&t, "langchain_pg_embedding", LC_DOCS);
	cr_expect_str_eq(other1, live, "docs changed while docs_next was made");
	free(other1);

	/* swap: the name docs points at the new rows, which the application
	 * reads with m2 vectors */
	ok_quiet(&t, (const char *[]){ "swap", "-C", "docs", "--with", "docs_next", "--confirm",
				       "docs", "--set", "EMBED_MODEL=m2", NULL });
	nm = names(&t);
	cr_assert(asprintf(&q, "docs=%s,docs__prev_", next_uuid) > 0);
	cr_expect(strncmp(nm, q, strlen(q)) == 0, "the lookup table after swap: %s", nm);
	HAS(nm, "=5d1e0d8e-6c53-4a43-9b0e-7c3f1a2b9d01,other=0f9a2c44-1b7e-4f3d-8e21-6a5b4c3d2e10");
	free(q);
	free(nm);
	cr_assert(asprintf(&q, "SELECT count(*) FROM @S.langchain_pg_embedding e"
			       " JOIN @S.langchain_pg_collection c ON c.uuid = e.collection_id"
			       " JOIN @T.vectors v ON v.collection = c.uuid::text"
			       " AND v.chunk_key = ARRAY[e.id::text]"
			       " WHERE c.name = 'docs' AND v.model = 'm2' AND e.collection_id = '%s'",
			   next_uuid) > 0);
	cr_expect_eq(fx_ll(&t.f, q), 16, "after the swap, docs is not the m2 rows");
	free(q);
	view = app_view(&t);
	cr_expect_str_neq(view, docs_m1, "after the swap, docs reads the m1 rows");
	free(view);

	/* rollback: the name goes back to the old rows, as they were */
	ok_quiet(&t, (const char *[]){ "rollback", "-C", "docs", NULL });
	nm = names(&t);
	cr_assert(asprintf(&q, "docs=5d1e0d8e-6c53-4a43-9b0e-7c3f1a2b9d01,docs_next=%s,"
			       "other=0f9a2c44-1b7e-4f3d-8e21-6a5b4c3d2e10", next_uuid) > 0);
	cr_expect_str_eq(nm, q, "the lookup table after rollback");
	free(q);
	free(nm);
	view = app_view(&t);
	cr_expect_str_eq(view, docs_m1, "after the rollback, docs does not read the m1 rows");
	free(view);
	other1 = table_md5(&t, "langchain_pg_embedding", LC_DOCS);
	cr_expect_str_eq(other1, live, "the old docs rows changed");
	free(other1);
	other1 = table_md5(&t, "langchain_pg_embedding", LC_OTHER);
	cr_expect_str_eq(other1, other0, "collection \"other\" changed");
	free(other1);
	ddl_same(&t, &before, "LangChain after swap and rollback");
	free(other0);
	free(live);
	free(docs_m1);
	free(next_uuid);
	ft_stop(&t);
}

Test(pg_frameworks, langchain_model_change_swaps_and_rolls_back_the_lookup_names,
     .timeout = 120)
{
	langchain_model_change(BACKEND_PG);
}

Test(pglite_frameworks, langchain_model_change_swaps_and_rolls_back_the_lookup_names,
     .timeout = 180)
{
	langchain_model_change(BACKEND_PGLITE);
}

/* --- LlamaIndex PGVectorStore ------------------------------------------------ */

/*
 * llama_index.vector_stores.postgres: get_data_model() for table_name
 * "docs" (hybrid search off, JSON metadata, embed_dim given), and the
 * ref_doc_id index it adds.  With use_halfvec the column is HALFVEC.
 */
static const char llamaindex_ddl[] =
	"CREATE SCHEMA @S;"
	"CREATE TABLE @S.data_docs ("
	"  id BIGSERIAL NOT NULL,"
	"  text VARCHAR NOT NULL,"
	"  metadata_ JSON,"
	"  node_id VARCHAR,"
	"  embedding @V,"
	"  PRIMARY KEY (id));"
	"CREATE INDEX docs_idx_1 ON @S.data_docs USING btree ((metadata_ ->> 'ref_doc_id'));"
	"INSERT INTO @S.data_docs (text, metadata_, node_id)"
	" SELECT 'Node ' || g || ' ' || (SELECT string_agg(substr(md5(g || '/' || w), 1, 3 + w % 6),"
	"  ' ') FROM generate_series(1, 10) w) || '. Tail ' || md5('t' || g) || '.',"
	"  json_build_object('ref_doc_id', 'doc-' || (g % 4), 'file_name', 'notes' || g || '.txt',"
	"  '_node_type', 'TextNode'), md5('node' || g)::uuid::text"
	" FROM generate_series(1, 14) g;";

static const struct layout llamaindex = {
	.key = "x.id", .from = "@S.data_docs x", .row = "x", .text = "x.text",
	.vec = "x.embedding", .vec_name = "embedding", .kind = 'V',
};

static void llamaindex_served(enum backend b)
{
	struct ft t;
	struct ddl_snap before;
	struct snap s0, s1;
	cJSON *w;
	char *block;

	ft_start(&t, b, "LlamaIndex with a vector(64) column");
	ddl(&t, llamaindex_ddl);
	set_vectors(&t, "data_docs", &llamaindex, "x.id % 3 <> 0");
	before = ddl_snap(&t);
	block = detect(&t, "data_docs");
	HAS(block, "LlamaIndex PGVectorStore");
	has_setting(block, "SCHEMA_LAYOUT", "inline");
	has_setting(block, "COLLECTION_MODE", "table");
	has_setting(block, "CHUNKS_ID_COLUMN", "id");
	has_setting(block, "CHUNKS_CONTENT_COLUMN", "text");
	has_setting(block, "CITATION_SOURCE", "metadata_->ref_doc_id");
	HAS(block, t.pgv ? "embedding, vector(64)\n" : "embedding, real[]\n");
	if (t.pgv)
		HAS(block, "# EMBED_DIM must be the column's dimension: 64");
	free(block);
	check_and_init(&t, true);
	expect_status(&t, &llamaindex, "data_docs", "true", 10, 10);
	adopt(&t, "data_docs", 10, 10);
	expect_status(&t, &llamaindex, "data_docs", "true", 0, 0);
	/* a plain run after adopt: only the NULL vectors are work */
	s0 = snapshot(&t, &llamaindex, "x.embedding IS NULL");
	ok_quiet(&t, (const char *[]){ "run", "-C", "data_docs", "--confirm", "data_docs", NULL });
	s1 = snapshot(&t, &llamaindex, "false");
	w = written(&t, &llamaindex, &s0, &s1, true, 4, "run after adopt");
	expect_embedder_vectors(&t, &llamaindex, w, "run after adopt");
	expect_book(&t, 10, 4, "run after adopt");
	cJSON_Delete(w);
	expect_status(&t, &llamaindex, "data_docs", "true", 0, 0);
	verify_and_spotcheck(&t, "data_docs");
	ddl_same(&t, &before, "LlamaIndex");
	snap_free(&s0);
	snap_free(&s1);
	ft_stop(&t);
}

Test(pg_frameworks, llamaindex_table_is_filled_and_nothing_else_changes, .timeout = 120)
{
	llamaindex_served(BACKEND_PG);
}

Test(pglite_frameworks, llamaindex_table_is_filled_and_nothing_else_changes, .timeout = 180)
{
	llamaindex_served(BACKEND_PGLITE);
}

/* --- pgai vectorizer --------------------------------------------------------- */

/*
 * pgai's ai._vectorizer_create_target_table() for a source table blog
 * with primary key id, as its documentation shows it (the embedding is NOT
 * NULL: a pgai store has no missing vectors, only stale ones), its storage
 * setting, and the view it creates beside the store.
 */
static const char pgai_ddl[] =
	"CREATE SCHEMA @S;"
	"CREATE TABLE @S.blog (id INT PRIMARY KEY, title TEXT NOT NULL, authors TEXT NOT NULL,"
	"  contents TEXT NOT NULL, metadata JSONB);"
	"CREATE TABLE @S.blog_embedding_store"
	"( embedding_uuid uuid not null primary key default pg_catalog.gen_random_uuid()"
	", id int not null"
	", chunk_seq int not null"
	", chunk text not null"
	", embedding @V not null"
	", unique (id, chunk_seq)"
	", foreign key (id) references @S.blog (id) on delete cascade"
	");"
	"ALTER TABLE @S.blog_embedding_store ALTER COLUMN embedding SET STORAGE MAIN;"
	"CREATE VIEW @S.blog_embedding AS SELECT t.embedding_uuid, t.chunk_seq, t.chunk,"
	"  t.embedding, s.id, s.title, s.authors, s.contents, s.metadata"
	"  FROM @S.blog_embedding_store t LEFT JOIN @S.blog s ON t.id = s.id;"
	"INSERT INTO @S.blog SELECT g, 'Post ' || g, 'author ' || g, 'contents of post ' || g, '{}'"
	" FROM generate_series(1, 3) g;";

/* Five chunks per post; their vectors (the column is NOT NULL) are set
 * right after, to the vectorizer's. */
static void pgai_rows(struct ft *t)
{
	ddl(t, "INSERT INTO @S.blog_embedding_store (id, chunk_seq, chunk, embedding)"
	       " SELECT b, s, 'Post ' || b || ' part ' || s || ' ' || (SELECT string_agg("
	       "  substr(md5(b || '.' || s || '.' || w), 1, 3 + w % 4), ' ')"
	       "  FROM generate_series(1, 8) w) || '.', array_fill(0, ARRAY[64])::real[]"
	       " FROM generate_series(1, 3) b, generate_series(0, 4) s");
}

static const struct layout pgai = {
	.key = "x.id || '/' || x.chunk_seq", .from = "@S.blog_embedding_store x", .row = "x",
	.text = "x.chunk", .vec = "x.embedding", .vec_name = "embedding", .kind = 'V',
};

static void pgai_served(enum backend b)
{
	struct ft t;
	struct ddl_snap before;
	struct snap s0, s1;
	cJSON *w;
	char *block, *blog;

	ft_start(&t, b, "a pgai store with a vector(64) column");
	ddl(&t, pgai_ddl);
	pgai_rows(&t);
	cr_assert_eq(set_vectors(&t, "blog_embedding_store", &pgai, "true"), 15);
	before = ddl_snap(&t);
	block = detect(&t, "blog_embedding_store");
	HAS(block, "pgai vectorizer store");
	has_setting(block, "SCHEMA_LAYOUT", "inline");
	has_setting(block, "COLLECTION_MODE", "table");
	has_setting(block, "CHUNKS_ID_COLUMN", "id,chunk_seq");
	has_setting(block, "CHUNKS_CONTENT_COLUMN", "chunk");
	has_setting(block, "CHUNKS_INDEX_COLUMN", "chunk_seq");
	cr_assert(asprintf(&blog, "%s.blog", t.f.schema) > 0);
	has_setting(block, "DOCUMENTS_TABLE", blog);
	has_setting(block, "CHUNKS_DOCUMENT_COLUMN", "id");
	has_setting(block, "DOCUMENTS_TITLE_COLUMN", "title");
	free(blog);
	free(block);
	check_and_init(&t, true);
	blog = table_md5(&t, "blog", "true");
	expect_status(&t, &pgai, "blog_embedding_store", "true", 15, 15);
	adopt(&t, "blog_embedding_store", 15, 15);
	expect_status(&t, &pgai, "blog_embedding_store", "true", 0, 0);
	/* the source changed and the chunks with it: their vectors are stale,
	 * not missing; --only missing leaves them, a plain run renews them */
	fx_sql(&t.f, "UPDATE @S.blog_embedding_store SET chunk = chunk || ' Revised.'"
		     " WHERE chunk_seq = 2");
	expect_status(&t, &pgai, "blog_embedding_store", "true", 3, 0);
	s0 = snapshot(&t, &pgai, "false");
	ok_quiet(&t, (const char *[]){ "run", "-C", "blog_embedding_store", "--confirm",
				       "blog_embedding_store", "--only", "missing", NULL });
	s1 = snapshot(&t, &pgai, "false");
	cr_expect_str_eq(s1.text, s0.text, "run --only missing wrote a stale vector");
	expect_book(&t, 15, 0, "run --only missing");
	snap_free(&s0);
	snap_free(&s1);
	s0 = snapshot(&t, &pgai, "x.chunk LIKE '% Revised.'");
	ok_quiet(&t, (const char *[]){ "run", "-C", "blog_embedding_store", "--confirm",
				       "blog_embedding_store", NULL });
	s1 = snapshot(&t, &pgai, "false");
	w = written(&t, &pgai, &s0, &s1, true, 3, "run after the chunks changed");
	expect_embedder_vectors(&t, &pgai, w, "run after the chunks changed");
	expect_book(&t, 12, 3, "run after the chunks changed");
	cJSON_Delete(w);
	expect_status(&t, &pgai, "blog_embedding_store", "true", 0, 0);
	block = table_md5(&t, "blog", "true");
	cr_expect_str_eq(block, blog, "the source table changed");
	free(block);
	verify_and_spotcheck(&t, "blog_embedding_store");
	ddl_same(&t, &before, "pgai");
	snap_free(&s0);
	snap_free(&s1);
	free(blog);
	ft_stop(&t);
}

Test(pg_frameworks, pgai_store_renews_stale_vectors_and_nothing_else, .timeout = 120)
{
	pgai_served(BACKEND_PG);
}

Test(pglite_frameworks, pgai_store_renews_stale_vectors_and_nothing_else, .timeout = 180)
{
	pgai_served(BACKEND_PGLITE);
}

/* CHUNKS_ID_COLUMN=id: five chunks share each id, so one vector would land
 * in five rows.  schema check names the fix, and run writes nothing. */
static void pgai_key_not_unique(enum backend b)
{
	struct ft t;
	struct proc_result r;
	char *block, *before, *after;

	ft_start(&t, b, "a pgai store mapped by a key that is not unique");
	ddl(&t, pgai_ddl);
	pgai_rows(&t);
	set_vectors(&t, "blog_embedding_store", &pgai, "x.chunk_seq <> 1");
	fx_sql(&t.f, "UPDATE @S.blog_embedding_store SET chunk = chunk || ' Revised.'"
		     " WHERE chunk_seq = 1");
	block = detect(&t, "blog_embedding_store");
	free(block);
	ok_quiet(&t, (const char *[]){ "schema", "init", NULL });
	before = table_md5(&t, "blog_embedding_store", "true");
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "--set", "CHUNKS_ID_COLUMN=id", "schema",
						   "check", NULL }), 1,
		     "schema check exited %d:\n%s%s", r.status, r.out, r.err);
	HAS(r.out, "[FAIL] chunk key");
	HAS(r.out, "CHUNKS_ID_COLUMN=id");
	HAS(r.out, "map CHUNKS_ID_COLUMN to \"embedding_uuid\" or \"id,chunk_seq\"");
	HAS(r.out, "CREATE UNIQUE INDEX ON");
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "--set", "CHUNKS_ID_COLUMN=id", "run", "-C",
						   "blog_embedding_store", "--confirm",
						   "blog_embedding_store", NULL }), 3,
		     "run exited %d:\n%s%s", r.status, r.out, r.err);
	HAS(r.err, "not usable as mapped");
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "--set", "CHUNKS_ID_COLUMN=id", "run", "-C",
						   "blog_embedding_store", "--confirm",
						   "blog_embedding_store", "--only", "missing",
						   NULL }), 3,
		     "run --only missing exited %d:\n%s%s", r.status, r.out, r.err);
	proc_result_free(&r);
	cr_expect_eq(cmd(&t, &r, (const char *[]){ "--set", "CHUNKS_ID_COLUMN=id", "adopt", "-C",
						   "blog_embedding_store", "--confirm",
						   "blog_embedding_store", NULL }), 3,
		     "adopt exited %d:\n%s%s", r.status, r.out, r.err);
	proc_result_free(&r);
	after = table_md5(&t, "blog_embedding_store", "true");
	cr_expect_str_eq(after, before, "the store was written under a key that is not unique");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @T.vectors"), 0,
		     "bookkeeping was written under a key that is not unique");
	free(after);
	/* mapped as detected, the same run writes the three changed chunks */
	ok_quiet(&t, (const char *[]){ "run", "-C", "blog_embedding_store", "--confirm",
				       "blog_embedding_store", NULL });
	after = table_md5(&t, "blog_embedding_store", "true");
	cr_expect_str_neq(after, before, "the run as detected wrote nothing");
	free(after);
	free(before);
	ft_stop(&t);
}

Test(pg_frameworks, pgai_store_mapped_by_a_shared_id_is_refused, .timeout = 120)
{
	pgai_key_not_unique(BACKEND_PG);
}

Test(pglite_frameworks, pgai_store_mapped_by_a_shared_id_is_refused, .timeout = 180)
{
	pgai_key_not_unique(BACKEND_PGLITE);
}

/* --- embfill's default layout, for comparison -------------------------------- */

static const struct layout default_layout = {
	.key = "c.id", .from = "@S.document_chunks c LEFT JOIN @S.document_embeddings e"
			       " ON e.chunk_id = c.id AND e.collection = c.collection",
	.row = "e", .text = "c.content", .vec = "e.embedding", .vec_name = "embedding",
	.kind = 'V',
};

static void default_served(enum backend b)
{
	struct ft t;
	struct ddl_snap before;
	struct snap s0, s1;
	cJSON *w;
	char *block, *setup = unique_name("setup"), *q = NULL, *chunks0, *chunks1, *docs0, *docs1;

	ft_start(&t, b, "embfill's default layout");
	cr_assert(asprintf(&q, "EMBFILL_SCHEMA=%s", setup) > 0);
	ok_quiet(&t, (const char *[]){ "--set", q, "schema", "init", "--dim", "64", "--vector-type",
				       t.pgv ? "vector" : "real", NULL });
	free(q);
	fx_sql(&t.f,
	       "INSERT INTO @S.documents (id, collection, title, source_uri, body)"
	       " SELECT g, CASE WHEN g < 4 THEN 'acme' ELSE 'globex' END, 'Doc ' || g,"
	       "  'file:///doc' || g, 'body' FROM generate_series(1, 4) g;"
	       "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
	       " SELECT g, CASE WHEN g <= 14 THEN 1 + g % 3 ELSE 4 END,"
	       "  CASE WHEN g <= 14 THEN 'acme' ELSE 'globex' END, g,"
	       "  'Chunk ' || g || ' ' || (SELECT string_agg(substr(md5(g || '-' || w), 1, 3 + w % 5),"
	       "  ' ') FROM generate_series(1, 9) w) || '. End ' || md5('e' || g) || '.'"
	       " FROM generate_series(1, 18) g;"
	       "INSERT INTO @S.document_embeddings (chunk_id, collection, model, dim, content_sha256,"
	       "  embedding, embedded_at)"
	       " SELECT id, collection, 'm1', 64, sha256(convert_to(content, 'UTF8')), NULL,"
	       "  '2024-01-01' FROM @S.document_chunks WHERE id <= 10 OR id > 14");
	/* 1-8 and globex embedded, 9-10 NULL, 11-14 without a row */
	set_vectors(&t, "document_embeddings", &(struct layout){
			    .key = "x.chunk_id", .from = "@S.document_embeddings x JOIN"
			    " @S.document_chunks c ON c.id = x.chunk_id", .text = "c.content",
			    .vec_name = "embedding", .kind = 'V' },
		    "x.chunk_id <= 8 OR x.chunk_id > 14");
	before = ddl_snap(&t);
	block = detect(&t, "document_embeddings");
	HAS(block, "embfill's default layout");
	cr_assert(asprintf(&q, "%s.document_embeddings", t.f.schema) > 0);
	has_setting(block, "EMBEDDINGS_TABLE", q);
	free(q);
	cr_assert(asprintf(&q, "%s.document_chunks", t.f.schema) > 0);
	has_setting(block, "CHUNKS_TABLE", q);
	free(q);
	cr_assert(asprintf(&q, "%s.documents", t.f.schema) > 0);
	has_setting(block, "DOCUMENTS_TABLE", q);
	free(q);
	free(block);
	check_and_init(&t, false);
	expect_status(&t, &default_layout, "acme", "c.collection = 'acme'", 0, 0);
	expect_status(&t, &default_layout, "globex", "c.collection = 'globex'", 0, 0);
	adopt(&t, "acme", 8, 0);
	chunks0 = table_md5(&t, "document_chunks", "true");
	docs0 = table_md5(&t, "documents", "true");
	s0 = snapshot(&t, &default_layout, "e.embedding IS NULL AND c.collection = 'acme'");
	ok_quiet(&t, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", "--only",
				       "missing", NULL });
	s1 = snapshot(&t, &default_layout, "false");
	w = written(&t, &default_layout, &s0, &s1, false, 6, "run --only missing");
	expect_embedder_vectors(&t, &default_layout, w, "run --only missing");
	expect_book(&t, 0, 0, "the default layout keeps its records in its own columns");
	cJSON_Delete(w);
	expect_status(&t, &default_layout, "acme", "c.collection = 'acme'", 0, 0);
	chunks1 = table_md5(&t, "document_chunks", "true");
	docs1 = table_md5(&t, "documents", "true");
	cr_expect_str_eq(chunks1, chunks0, "the chunk table changed");
	cr_expect_str_eq(docs1, docs0, "the document table changed");
	verify_and_spotcheck(&t, "acme");
	ddl_same(&t, &before, "the default layout");
	snap_free(&s0);
	snap_free(&s1);
	free(chunks0);
	free(chunks1);
	free(docs0);
	free(docs1);
	free(setup);
	ft_stop(&t);
}

Test(pg_frameworks, default_layout_is_filled_and_nothing_else_changes, .timeout = 120)
{
	default_served(BACKEND_PG);
}

Test(pglite_frameworks, default_layout_is_filled_and_nothing_else_changes, .timeout = 180)
{
	default_served(BACKEND_PGLITE);
}

/* --- halfvec and an untyped vector read back ----------------------------------- */

/*
 * LlamaIndex with use_halfvec: a halfvec(64) column.  Vectors travel as
 * float32 and the server rounds them to half precision; they must read
 * back as exactly that rounding of the service's vectors.  (The untyped
 * vector column is LangChain's: its vectors are compared with the
 * service's exactly in langchain_served.)
 */
static const char halfvec_ddl[] =
	"CREATE SCHEMA @S;"
	"CREATE TABLE @S.data_notes ("
	"  id BIGSERIAL NOT NULL,"
	"  text VARCHAR NOT NULL,"
	"  metadata_ JSON,"
	"  node_id VARCHAR,"
	"  embedding @H,"
	"  PRIMARY KEY (id));"
	"CREATE INDEX notes_idx_1 ON @S.data_notes USING btree ((metadata_ ->> 'ref_doc_id'));"
	"INSERT INTO @S.data_notes (text, metadata_, node_id)"
	" SELECT 'Note ' || g || ' ' || (SELECT string_agg(substr(md5(g || '#' || w), 1, 4 + w % 5),"
	"  ' ') FROM generate_series(1, 10) w) || '.', json_build_object('ref_doc_id', 'n' || g),"
	"  md5('note' || g)::uuid::text FROM generate_series(1, 9) g;";

static const struct layout halfvec = {
	.key = "x.id", .from = "@S.data_notes x", .row = "x", .text = "x.text",
	.vec = "x.embedding", .vec_name = "embedding", .kind = 'H',
};

static void halfvec_round_trip(enum backend b)
{
	struct ft t;
	struct ddl_snap before;
	struct snap s0, s1;
	cJSON *w;
	char *block;

	ft_start(&t, b, "LlamaIndex with a halfvec(64) column");
	ddl(&t, halfvec_ddl);
	set_vectors(&t, "data_notes", &halfvec, "x.id <= 3");
	before = ddl_snap(&t);
	block = detect(&t, "data_notes");
	HAS(block, t.pgv ? "embedding, halfvec(64)\n" : "embedding, double precision[]\n");
	free(block);
	check_and_init(&t, true);
	adopt(&t, "data_notes", 3, 3);
	s0 = snapshot(&t, &halfvec, "x.embedding IS NULL");
	ok_quiet(&t, (const char *[]){ "run", "-C", "data_notes", "--confirm", "data_notes", NULL });
	s1 = snapshot(&t, &halfvec, "false");
	w = written(&t, &halfvec, &s0, &s1, true, 6, "run into halfvec");
	expect_embedder_vectors(&t, &halfvec, w, "run into halfvec");
	expect_book(&t, 3, 6, "run into halfvec");
	if (t.pgv)
		cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.data_notes x"
					 " WHERE vector_dims(x.embedding) = 64"), 9,
			     "the halfvec vectors do not read back at dimension 64");
	cJSON_Delete(w);
	expect_status(&t, &halfvec, "data_notes", "true", 0, 0);
	verify_and_spotcheck(&t, "data_notes");
	ddl_same(&t, &before, "LlamaIndex halfvec");
	snap_free(&s0);
	snap_free(&s1);
	ft_stop(&t);
}

Test(pg_frameworks, halfvec_column_reads_back_the_services_vectors_at_half_precision,
     .timeout = 120)
{
	halfvec_round_trip(BACKEND_PG);
}

Test(pglite_frameworks, halfvec_column_reads_back_the_services_vectors_at_half_precision,
     .timeout = 180)
{
	halfvec_round_trip(BACKEND_PGLITE);
}

/* --- embfill's own tables of version 2 ---------------------------------------- */

/* embfill's schema as version 2 made it (integer chunk ids throughout),
 * statement for statement. */
static const char tool_v2_ddl[] =
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
	"UPDATE @T.meta SET value = '2' WHERE key = 'schema_version' AND value::int < 2;";

/*
 * What version 2 left behind: run 1 was a --backup run that embedded
 * chunks 1-4 of acme (1 and 2 had m0 vectors, saved whole; 3 and 4 had no
 * row), and the service rejected chunk 5, which is quarantined.
 */
static const char v2_state[] =
	"INSERT INTO @T.runs (id, collection, target_collection, state, started_at, finished_at,"
	"  checkpoint_chunk_id, total, done, written, backup)"
	" VALUES (1, 'acme', 'acme', 'completed', '2025-03-01', '2025-03-01', 4, 5, 5, 4, true);"
	"SELECT setval(pg_get_serial_sequence('@T.runs', 'id'), 1);"
	"INSERT INTO @S.document_embeddings (chunk_id, collection, model, dim, content_sha256,"
	"  embedding, embedded_at)"
	" SELECT id, collection, 'm0', 64, sha256(convert_to(content, 'UTF8')),"
	"  array_fill(0.25::real, ARRAY[64]), '2024-06-01' FROM @S.document_chunks WHERE id <= 2;"
	"INSERT INTO @T.backups (run_id, collection, chunk_id, model, dim, content_sha256,"
	"  embedding, embedded_at, existed, row_data)"
	" SELECT 1, collection, chunk_id, model, dim, content_sha256, embedding::real[],"
	"  embedded_at, true, to_jsonb(e) - 'embedding' FROM @S.document_embeddings e;"
	"INSERT INTO @T.backups (run_id, collection, chunk_id, existed)"
	" VALUES (1, 'acme', 3, false), (1, 'acme', 4, false);"
	"INSERT INTO @T.quarantine (collection, chunk_id, reason, content_sha256, run_id)"
	" SELECT 'acme', id, 'the service refused it: input too long',"
	"  sha256(convert_to(content, 'UTF8')), 1 FROM @S.document_chunks WHERE id = 5;";

static void old_tool_schema(enum backend b)
{
	struct ft t;
	struct proc_result r;
	char *setup = unique_name("setup"), *q = NULL, *saved, *now, *block, *out;

	ft_start(&t, b, "embfill's tables of version 2");
	cr_assert(asprintf(&q, "EMBFILL_SCHEMA=%s", setup) > 0);
	ok_quiet(&t, (const char *[]){ "--set", q, "schema", "init", "--dim", "64", "--vector-type",
				       t.pgv ? "vector" : "real", NULL });
	free(q);
	fx_sql(&t.f,
	       "INSERT INTO @S.documents (id, collection, title, body) VALUES (1, 'acme', 'A', 'a');"
	       "INSERT INTO @S.document_chunks (id, document_id, collection, chunk_index, content)"
	       " SELECT g, 1, 'acme', g, 'Chunk ' || g || ' ' || md5('c' || g) || '.'"
	       " FROM generate_series(1, 6) g;");
	fx_sql(&t.f, tool_v2_ddl);
	fx_sql(&t.f, v2_state);
	saved = fx_text(&t.f, "SELECT string_agg(md5(e::text), ',' ORDER BY chunk_id)"
			      " FROM @S.document_embeddings e");
	/* what run 1 wrote */
	fx_sql(&t.f, "DELETE FROM @S.document_embeddings;"
		     "INSERT INTO @S.document_embeddings (chunk_id, collection, model, dim,"
		     "  content_sha256, embedding, run_id)"
		     " SELECT id, collection, 'm1', 64, sha256(convert_to(content, 'UTF8')), NULL, 1"
		     " FROM @S.document_chunks WHERE id <= 4");
	set_vectors(&t, "document_embeddings", &(struct layout){
			    .key = "x.chunk_id", .from = "@S.document_embeddings x JOIN"
			    " @S.document_chunks c ON c.id = x.chunk_id", .text = "c.content",
			    .vec_name = "embedding", .kind = 'V' }, "true");
	block = detect(&t, "document_embeddings");
	free(block);
	cr_assert_eq(cmd(&t, &r, (const char *[]){ "schema", "check", NULL }), 0, "%s%s", r.out,
		     r.err);
	HAS(r.out, "version 2");
	proc_result_free(&r);

	out = ok(&t, (const char *[]){ "schema", "init", NULL });
	free(out);
	cr_expect_eq(fx_ll(&t.f, "SELECT value::int FROM @T.meta WHERE key = 'schema_version'"),
		     EF_TOOL_SCHEMA_VERSION);
	now = fx_text(&t.f, "SELECT (SELECT string_agg(chunk_key::text, ' ' ORDER BY chunk_id)"
			    " FROM @T.backups) || ' q' || (SELECT string_agg(chunk_key::text, ' ')"
			    " FROM @T.quarantine) || ' r' || (SELECT checkpoint_key::text FROM"
			    " @T.runs WHERE id = 1)");
	cr_expect_str_eq(now, "{1} {2} {3} {4} q{5} r{4}", "version 2's ids as chunk keys");
	free(now);
	out = ok(&t, (const char *[]){ "schema", "check", NULL });
	cr_assert(asprintf(&q, "(version %d)", EF_TOOL_SCHEMA_VERSION) > 0);
	HAS(out, q);
	free(q);
	free(out);

	/* the quarantine of version 2 still holds chunk 5 back */
	out = ok(&t, (const char *[]){ "status", "--json", "-C", "acme", NULL });
	HAS(out, "\"quarantined\":1");
	free(out);
	out = ok(&t, (const char *[]){ "run", "-C", "acme", "--confirm", "acme", NULL });
	HAS(out, "1 written");
	free(out);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE chunk_id = 5"),
		     0, "the quarantined chunk was embedded");
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE chunk_id = 6"
				 " AND embedding IS NOT NULL AND model = 'm1'"), 1);

	/* the backups of version 2 still roll run 1 back */
	out = ok(&t, (const char *[]){ "rollback", "-C", "acme", NULL });
	free(out);
	now = fx_text(&t.f, "SELECT string_agg(md5(e::text), ',' ORDER BY chunk_id)"
			    " FROM @S.document_embeddings e WHERE chunk_id <= 4");
	cr_expect_str_eq(now, saved, "rollback did not restore version 2's saved rows");
	free(now);
	cr_expect_eq(fx_ll(&t.f, "SELECT count(*) FROM @S.document_embeddings WHERE chunk_id = 6"),
		     1, "rollback of run 1 removed a row a later run wrote");
	free(saved);
	free(setup);
	ft_stop(&t);
}

Test(pg_frameworks, tool_schema_of_version_2_upgrades_and_its_rows_still_read, .timeout = 120)
{
	old_tool_schema(BACKEND_PG);
}

Test(pglite_frameworks, tool_schema_of_version_2_upgrades_and_its_rows_still_read,
     .timeout = 180)
{
	old_tool_schema(BACKEND_PGLITE);
}
