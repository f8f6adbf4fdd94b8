#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "fixture.h"

void fx_init(struct fx *f, enum backend b, const char *extra)
{
	char *text = NULL;

	memset(f, 0, sizeof(*f));
	f->b = b;
	f->schema = unique_name("s");
	f->tool = unique_name("tool");
	f->dir = test_tmpdir();
	cr_assert(asprintf(&text,
			   "# written by the test\n"
			   "DATABASE_URL=\"%s\"\n"
			   "DOCUMENTS_TABLE=%s.documents\n"
			   "CHUNKS_TABLE=%s.document_chunks\n"
			   "EMBEDDINGS_TABLE=%s.document_embeddings\n"
			   "EMBFILL_SCHEMA=%s\n"
			   "EMBED_MODEL=m1\n"
			   "EMBED_DIM=4\n"
			   "%s\n",
			   test_dsn(b), f->schema, f->schema, f->schema, f->tool,
			   extra ? extra : "") > 0);
	f->config = write_file(f->dir, "embfill.env", text);
	free(text);
}

void fx_free(struct fx *f)
{
	free(f->schema);
	free(f->tool);
	free(f->dir);
	free(f->config);
}

int fx_run(struct fx *f, struct proc_result *r, const char *const *args)
{
	const char *argv[48] = { "--config", f->config };
	size_t n = 2;
	const char *env[] = { "DATABASE_URL", "EMBED_MODEL", "EMBED_DIM", "PGHOST", "PGPORT",
			      NULL };

	while (args && *args && n < 47)
		argv[n++] = *args++;
	argv[n] = NULL;
	return run_embfill(argv, env, f->dir, r);
}

static char *subst(struct fx *f, const char *sql)
{
	size_t cap = strlen(sql) * 2 + 256, n = 0;
	char *out = malloc(cap);

	for (const char *p = sql; *p; p++) {
		const char *rep = NULL;
		if (p[0] == '@' && p[1] == 'S')
			rep = f->schema;
		else if (p[0] == '@' && p[1] == 'T')
			rep = f->tool;
		if (rep) {
			size_t rl = strlen(rep);
			if (n + rl + 3 >= cap)
				out = realloc(out, cap = cap * 2 + rl);
			out[n++] = '"';
			memcpy(out + n, rep, rl);
			n += rl;
			out[n++] = '"';
			p++;
			continue;
		}
		if (n + 2 >= cap)
			out = realloc(out, cap *= 2);
		out[n++] = *p;
	}
	out[n] = '\0';
	return out;
}

void fx_sql(struct fx *f, const char *sql)
{
	char *s = subst(f, sql);
	sql_exec(f->b, s);
	free(s);
}

long long fx_ll(struct fx *f, const char *sql)
{
	char *s = subst(f, sql);
	long long v = sql_ll(f->b, s);
	free(s);
	return v;
}

char *fx_text(struct fx *f, const char *sql)
{
	char *s = subst(f, sql);
	char *v = sql_text(f->b, s);
	free(s);
	return v;
}

cJSON *fx_status(struct fx *f, const char *const *extra)
{
	const char *args[16] = { "status", "--json" };
	struct proc_result r;
	size_t n = 2;
	cJSON *arr;

	while (extra && *extra && n < 15)
		args[n++] = *extra++;
	args[n] = NULL;
	fx_run(f, &r, args);
	cr_assert_eq(r.status, 0, "status exited %d on %s:\n%s", r.status, backend_name(f->b),
		     r.err);
	arr = cJSON_Parse(r.out);
	cr_assert(cJSON_IsArray(arr), "status --json did not print an array: %s", r.out);
	proc_result_free(&r);
	return arr;
}

cJSON *fx_row(cJSON *arr, const char *collection)
{
	cJSON *it;

	cJSON_ArrayForEach(it, arr) {
		cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "collection");
		if (cJSON_IsString(c) && strcmp(c->valuestring, collection) == 0)
			return it;
	}
	cr_assert_fail("no status row for collection \"%s\"", collection);
	return NULL;
}

long long fx_num(cJSON *row, const char *field)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(row, field);

	cr_assert(cJSON_IsNumber(v), "status field \"%s\" missing", field);
	return (long long)v->valuedouble;
}

void fx_expect(cJSON *arr, const char *coll, struct counts w)
{
	cJSON *row = fx_row(arr, coll);
	const struct { const char *name; long long want; } f[] = {
		{ "chunks", w.chunks }, { "embedded", w.embedded }, { "missing", w.missing },
		{ "stale", w.stale }, { "stale_model", w.stale_model },
		{ "stale_dim", w.stale_dim }, { "stale_content", w.stale_content },
		{ "orphans", w.orphans }, { "cross_tenant", w.cross_tenant },
		{ "quarantined", w.quarantined },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		cr_expect_eq(fx_num(row, f[i].name), f[i].want, "%s.%s: got %lld, want %lld", coll,
			     f[i].name, fx_num(row, f[i].name), f[i].want);
}
