/*
 * vindex.c - vector indexes: found in the catalog, measured by a probe
 * that is rolled back, dropped with a record, rebuilt from it.
 *
 * An index counts when its access method is pgvector's (hnsw, ivfflat) and
 * it depends on the vector column, as a key column or inside an
 * expression (pg_depend records both).  Definitions are what
 * pg_get_indexdef() prints, so a rebuild gives back the same index under
 * the same name; the tablespace, which it does not print, is restored
 * through default_tablespace, and the comment with COMMENT ON INDEX.
 */
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/db/db_pg.h"
#include "embfill/strbuf.h"
#include "embfill/vindex.h"

#define PROBE_ROWS 200
#define PROBE_STEP 25
#define PROBE_MIN_ROWS 20
#define PROBE_BUDGET_MS 1000.0
#define SAMPLE_ROWS 1000

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* --- finding them ----------------------------------------------------------- */

static const char find_sql[] =
	"SELECT c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), am.amname,"
	" coalesce(oc.opcname, ''), coalesce((SELECT o.oprname FROM pg_amop ao"
	"  JOIN pg_operator o ON o.oid = ao.amopopr WHERE ao.amopfamily = oc.opcfamily"
	"  AND ao.amoppurpose = 'o' ORDER BY ao.amopstrategy LIMIT 1), ''),"
	" coalesce(array_to_string(c.reloptions, ', '), ''), coalesce(ts.spcname, ''),"
	" pg_get_indexdef(c.oid), pg_relation_size(c.oid), i.indisvalid, i.indpred IS NOT NULL,"
	" i.indexprs IS NOT NULL"
	" FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
	" JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam"
	" LEFT JOIN pg_opclass oc ON oc.oid = i.indclass[0]"
	" LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace"
	" JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = $2"
	" WHERE i.indrelid = $1::oid AND am.amname IN ('hnsw', 'ivfflat')"
	"  AND (a.attnum = ANY (i.indkey) OR EXISTS (SELECT 1 FROM pg_depend d"
	"   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid"
	"   AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid"
	"   AND d.refobjsubid = a.attnum))"
	" ORDER BY c.relname";

static const char table_sql[] =
	"SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
	" pg_has_role(c.relowner, 'USAGE'), c.reltuples::bigint"
	" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE c.oid = to_regclass($1)";

static void take_index(struct ef_vindex *v, const PGresult *r, int i)
{
	copy(v->name, sizeof(v->name), PQgetvalue(r, i, 0));
	copy(v->qname, sizeof(v->qname), PQgetvalue(r, i, 1));
	copy(v->method, sizeof(v->method), PQgetvalue(r, i, 2));
	copy(v->opclass, sizeof(v->opclass), PQgetvalue(r, i, 3));
	copy(v->op, sizeof(v->op), PQgetvalue(r, i, 4));
	copy(v->options, sizeof(v->options), PQgetvalue(r, i, 5));
	copy(v->tablespace, sizeof(v->tablespace), PQgetvalue(r, i, 6));
	copy(v->def, sizeof(v->def), PQgetvalue(r, i, 7));
	v->bytes = ef_db_ll(r, i, 8);
	v->valid = strcmp(PQgetvalue(r, i, 9), "t") == 0;
	v->partial = strcmp(PQgetvalue(r, i, 10), "t") == 0;
	v->expression = strcmp(PQgetvalue(r, i, 11), "t") == 0;
}

static ef_status find_dropped(ef_db *db, const char *tool, struct ef_vindexes *out,
			      struct ef_error *err)
{
	char *sql = NULL;
	const char *p[1] = { out->table };
	PGresult *r;

	if (asprintf(&sql, "SELECT index_name, definition, coalesce(run_id, 0),"
			   " coalesce(collection, ''), to_char(dropped_at AT TIME ZONE 'UTC',"
			   " 'YYYY-MM-DD HH24:MI:SS'), coalesce(tablespace, '')"
			   " FROM %s.vector_indexes WHERE table_name = $1 ORDER BY index_name",
		     tool) < 0)
		return ef_error_oom(err, NULL);
	r = ef_db_query(db, sql, 1, p, PGRES_TUPLES_OK, err);
	free(sql);
	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r) && out->ndropped < EF_VINDEX_MAX; i++) {
		struct ef_vindex_dropped *d = &out->dropped[out->ndropped++];

		copy(d->qname, sizeof(d->qname), PQgetvalue(r, i, 0));
		copy(d->def, sizeof(d->def), PQgetvalue(r, i, 1));
		d->run_id = ef_db_ll(r, i, 2);
		copy(d->collection, sizeof(d->collection), PQgetvalue(r, i, 3));
		copy(d->dropped_at, sizeof(d->dropped_at), PQgetvalue(r, i, 4));
		copy(d->tablespace, sizeof(d->tablespace), PQgetvalue(r, i, 5));
	}
	PQclear(r);
	return EF_OK;
}

/* A table never analyzed has no estimate (-1): it is counted. */
static ef_status table_rows(ef_db *db, struct ef_vindexes *out, long long est,
			    struct ef_error *err)
{
	char *sql = NULL;
	PGresult *r;

	if (est >= 0) {
		out->rows = est;
		return EF_OK;
	}
	if (asprintf(&sql, "SELECT count(*) FROM %s", out->table) < 0)
		return ef_error_oom(err, NULL);
	r = ef_db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, err);
	free(sql);
	if (!r)
		return err->status;
	out->rows = ef_db_ll(r, 0, 0);
	PQclear(r);
	return EF_OK;
}

ef_status ef_vindex_find(ef_db *db, const char *tool, const char *table, const char *column,
			 struct ef_vindexes *out, struct ef_error *err)
{
	char *quoted = ef_db_quote_ident(db, table, err);
	const char *p[2] = { quoted, column };
	char oid[16];
	long long est;
	PGresult *r;

	memset(out, 0, sizeof(*out));
	if (!quoted)
		return err->status;
	copy(out->column, sizeof(out->column), column);
	r = ef_db_query(db, table_sql, 1, p, PGRES_TUPLES_OK, err);
	free(quoted);
	if (!r)
		return err->status;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return EF_OK;
	}
	copy(oid, sizeof(oid), PQgetvalue(r, 0, 0));
	copy(out->table, sizeof(out->table), PQgetvalue(r, 0, 1));
	out->owner = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
	est = ef_db_ll(r, 0, 3);
	PQclear(r);
	p[0] = oid;
	r = ef_db_query(db, find_sql, 2, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r) && out->n < EF_VINDEX_MAX; i++)
		take_index(&out->ix[out->n++], r, i);
	PQclear(r);
	if (table_rows(db, out, est, err) != EF_OK)
		return err->status;
	return tool ? find_dropped(db, tool, out, err) : EF_OK;
}

void ef_vindex_describe(const struct ef_vindex *v, char *buf, size_t n)
{
	snprintf(buf, n, "%s (%s%s%s)%s%s", v->method, v->opclass[0] ? v->opclass : "?",
		 v->options[0] ? ", " : "", v->options, v->partial ? ", partial" : "",
		 v->valid ? "" : ", INVALID");
}

/*
 * What follows "ON <table> " in a definition: "USING hnsw (...) WITH (...)
 * WHERE ...", to be put after another table's name.  NULL when the
 * definition does not have that shape.
 */
static const char *def_tail(const char *def, const char *table)
{
	const char *on = strstr(def, " ON ");

	if (!on)
		return NULL;
	on += 4;
	if (strncmp(on, "ONLY ", 5) == 0)
		on += 5;
	if (strncmp(on, table, strlen(table)) != 0 || strncmp(on + strlen(table), " USING ", 7) != 0)
		return NULL;
	return on + strlen(table) + 1;
}

/* --- session settings for a build ------------------------------------------- */

static ef_status set_build(ef_db *db, const struct ef_vindex_build *b, bool local,
			   struct ef_error *err)
{
	char sql[160];

	if (!b)
		return EF_OK;
	snprintf(sql, sizeof(sql), "SET %smaintenance_work_mem = '%dMB'", local ? "LOCAL " : "",
		 b->memory_mb);
	if (ef_db_exec(db, sql, err) != EF_OK)
		return err->status;
	snprintf(sql, sizeof(sql), "SET %smax_parallel_maintenance_workers = %d",
		 local ? "LOCAL " : "", b->workers);
	return ef_db_exec(db, sql, err);
}

static void reset_build(ef_db *db)
{
	struct ef_error ignored;

	ef_db_exec(db, "RESET maintenance_work_mem", &ignored);
	ef_db_exec(db, "RESET max_parallel_maintenance_workers", &ignored);
	ef_db_exec(db, "RESET default_tablespace", &ignored);
}

/* --- the probe --------------------------------------------------------------- */

struct probe {
	ef_db *db;
	const struct ef_vindexes *ix;
	char *col;                /* quoted column */
	char type[128];           /* its type, as format_type() says: vector(768) */
	char scratch[200];        /* the copy without the vector indexes */
	char sample[200];         /* the rows the indexes are built over */
	char **tids;
	int ntids;
	char *noise;              /* a small constant vector, as the column's literal */
};

/* Runs one statement of the probe; false with why set when it fails. */
static bool px(struct probe *pr, const char *sql, int n, const char *const *p,
	       struct ef_vindex_probe *out)
{
	struct ef_error e;
	PGresult *r = ef_db_query(pr->db, sql, n, p, PGRES_COMMAND_OK, &e);

	if (!r) {
		snprintf(out->why_not, sizeof(out->why_not), "%.250s", e.msg);
		return false;
	}
	PQclear(r);
	return true;
}

static PGresult *pq(struct probe *pr, const char *sql, int n, const char *const *p,
		    struct ef_vindex_probe *out)
{
	struct ef_error e;
	PGresult *r = ef_db_query(pr->db, sql, n, p, PGRES_TUPLES_OK, &e);

	if (!r)
		snprintf(out->why_not, sizeof(out->why_not), "%.250s", e.msg);
	return r;
}

/* The column's type, and whether pgvector's + adds to it. */
static bool column_type(struct probe *pr, const char *column, struct ef_vindex_probe *out)
{
	const char *p[2] = { pr->ix->table, column };
	PGresult *r = pq(pr, "SELECT format_type(atttypid, atttypmod), format_type(atttypid, NULL)"
			     " FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2",
			 2, p, out);
	bool ok;

	if (!r)
		return false;
	ok = PQntuples(r) == 1 && (strcmp(PQgetvalue(r, 0, 1), "vector") == 0 ||
				   strcmp(PQgetvalue(r, 0, 1), "halfvec") == 0);
	if (ok)
		copy(pr->type, sizeof(pr->type), PQgetvalue(r, 0, 0));
	else
		snprintf(out->why_not, sizeof(out->why_not), "the column is %s: its index is on "
			 "an expression, which the probe does not write",
			 PQntuples(r) ? PQgetvalue(r, 0, 0) : "missing");
	PQclear(r);
	return ok;
}

/* Up to PROBE_ROWS rows that hold a vector, and the vectors' dimension. */
static bool pick_rows(struct probe *pr, struct ef_vindex_probe *out)
{
	char *sql = NULL;
	PGresult *r;
	int dim;

	if (asprintf(&sql, "SELECT ctid::text, vector_dims(%s) FROM %s WHERE %s IS NOT NULL"
			   " LIMIT %d", pr->col, pr->ix->table, pr->col, PROBE_ROWS) < 0)
		return false;
	r = pq(pr, sql, 0, NULL, out);
	free(sql);
	if (!r)
		return false;
	pr->tids = calloc((size_t)PQntuples(r) + 1, sizeof(*pr->tids));
	for (int i = 0; pr->tids && i < PQntuples(r); i++)
		if ((pr->tids[pr->ntids] = strdup(PQgetvalue(r, i, 0))) != NULL)
			pr->ntids++;
	dim = PQntuples(r) ? (int)ef_db_ll(r, 0, 1) : 0;
	PQclear(r);
	if (pr->ntids < PROBE_MIN_ROWS) {
		snprintf(out->why_not, sizeof(out->why_not), "the table holds %d vectors: too few "
			 "to measure what its indexes cost", pr->ntids);
		return false;
	}
	/* a constant offset of about 0.1% per component, alternating in sign
	 * with a period that does not divide the dimension evenly */
	{
		struct ef_strbuf b = EF_STRBUF_INIT;

		ef_strbuf_add(&b, "[");
		for (int d = 0; d < dim; d++)
			ef_strbuf_addf(&b, "%s%s0.00%d", d ? "," : "", (d % 3) ? "" : "-", 1 + d % 7);
		ef_strbuf_add(&b, "]");
		pr->noise = ef_strbuf_take(&b);
	}
	return pr->noise != NULL;
}

/* The rows from..to of the picked ones, as a tid[] literal. */
static char *tid_array(const struct probe *pr, int from, int to)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	ef_strbuf_add(&b, "{");
	for (int i = from; i < to; i++)
		ef_strbuf_addf(&b, "%s\"%s\"", i > from ? "," : "", pr->tids[i]);
	ef_strbuf_add(&b, "}");
	return ef_strbuf_take(&b);
}

/* A table like the target (columns, defaults, checks, storage, its other
 * indexes) without its vector indexes, holding the picked rows. */
static bool make_scratch(struct probe *pr, const char *tool, struct ef_vindex_probe *out)
{
	char *sql = NULL, *all = tid_array(pr, 0, pr->ntids);
	const char *p[1] = { all };
	PGresult *r = NULL;
	bool ok;

	snprintf(pr->scratch, sizeof(pr->scratch), "%s%sembfill_probe_%d", tool ? tool : "",
		 tool ? "." : "", (int)getpid());
	snprintf(pr->sample, sizeof(pr->sample), "%s%sembfill_probe_sample_%d", tool ? tool : "",
		 tool ? "." : "", (int)getpid());
	if (!tool)
		snprintf(out->scratch_note, sizeof(out->scratch_note), "the copy was a temporary "
			 "table, written without WAL");
	ok = all && asprintf(&sql, "CREATE %sTABLE %s (LIKE %s INCLUDING ALL EXCLUDING GENERATED"
			     " EXCLUDING IDENTITY)", tool ? "" : "TEMP ", pr->scratch,
			     pr->ix->table) > 0 && px(pr, sql, 0, NULL, out);
	free(sql);
	sql = NULL;
	if (ok && asprintf(&sql, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
				 " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
				 " JOIN pg_namespace n ON n.oid = c.relnamespace"
				 " JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = '%s'::regclass"
				 " AND am.amname IN ('hnsw', 'ivfflat')", pr->scratch) > 0)
		r = pq(pr, sql, 0, NULL, out);
	free(sql);
	ok = ok && r;
	for (int i = 0; ok && i < PQntuples(r); i++) {
		sql = NULL;
		ok = asprintf(&sql, "DROP INDEX %s", PQgetvalue(r, i, 0)) > 0 &&
		     px(pr, sql, 0, NULL, out);
		free(sql);
	}
	PQclear(r);
	sql = NULL;
	ok = ok && asprintf(&sql, "INSERT INTO %s SELECT * FROM %s WHERE ctid = ANY ($1::tid[])",
			    pr->scratch, pr->ix->table) > 0 && px(pr, sql, 1, p, out);
	free(sql);
	free(all);
	return ok;
}

/* The same change, row by row the table's indexes take it, in steps until
 * the budget is spent; then the same number of rows in the copy. */
static bool time_writes(struct probe *pr, struct ef_vindex_probe *out)
{
	char *sql = NULL, *scratch_sql = NULL, n[16];
	bool ok = asprintf(&sql, "UPDATE %s SET %s = %s + $2::%s WHERE ctid = ANY ($1::tid[])",
			   pr->ix->table, pr->col, pr->col, pr->type) > 0;
	double t0 = now_ms();

	for (int at = 0; ok && at < pr->ntids && now_ms() - t0 < PROBE_BUDGET_MS;
	     at += PROBE_STEP) {
		int to = at + PROBE_STEP < pr->ntids ? at + PROBE_STEP : pr->ntids;
		char *tids = tid_array(pr, at, to);
		const char *p[2] = { tids, pr->noise };

		ok = tids && px(pr, sql, 2, p, out);
		free(tids);
		out->rows = to;
	}
	out->with_ms = now_ms() - t0;
	snprintf(n, sizeof(n), "%d", out->rows);
	if (ok && asprintf(&scratch_sql, "UPDATE %s SET %s = %s + $1::%s WHERE ctid = ANY (ARRAY("
					 "SELECT ctid FROM %s LIMIT $2::int))", pr->scratch, pr->col,
			   pr->col, pr->type, pr->scratch) > 0) {
		const char *p[2] = { pr->noise, n };

		t0 = now_ms();
		ok = px(pr, scratch_sql, 2, p, out);
		out->without_ms = now_ms() - t0;
	}
	free(sql);
	free(scratch_sql);
	return ok;
}

/* Each index built over a sample of the table's rows, one at a time. */
static bool time_builds(struct probe *pr, const char *tool, const struct ef_vindex_build *b,
			struct ef_vindex_probe *out)
{
	struct ef_error e;
	char *sql = NULL;
	PGresult *r;
	bool ok = asprintf(&sql, "CREATE %sTABLE %s (LIKE %s INCLUDING DEFAULTS)", tool ? "" :
			   "TEMP ", pr->sample, pr->ix->table) > 0 && px(pr, sql, 0, NULL, out);

	free(sql);
	sql = NULL;
	ok = ok && asprintf(&sql, "INSERT INTO %s SELECT * FROM %s WHERE %s IS NOT NULL LIMIT %d",
			    pr->sample, pr->ix->table, pr->col, SAMPLE_ROWS) > 0 &&
	     px(pr, sql, 0, NULL, out);
	free(sql);
	sql = NULL;
	if (ok && asprintf(&sql, "SELECT count(*) FROM %s", pr->sample) > 0 &&
	    (r = pq(pr, sql, 0, NULL, out)) != NULL) {
		out->sample = (int)ef_db_ll(r, 0, 0);
		PQclear(r);
	}
	free(sql);
	if (ok && set_build(pr->db, b, true, &e) != EF_OK) {
		snprintf(out->why_not, sizeof(out->why_not), "%.250s", e.msg);
		ok = false;
	}
	for (size_t i = 0; ok && i < pr->ix->n; i++) {
		const char *tail = def_tail(pr->ix->ix[i].def, pr->ix->table);
		double t0 = now_ms();

		out->build_ms[i] = -1;
		if (!tail)
			continue;
		sql = NULL;
		ok = asprintf(&sql, "CREATE INDEX ON %s %s", pr->sample, tail) > 0 &&
		     px(pr, sql, 0, NULL, out);
		free(sql);
		if (ok)
			out->build_ms[i] = now_ms() - t0;
	}
	return ok;
}

static void probe_free(struct probe *pr)
{
	for (int i = 0; i < pr->ntids; i++)
		free(pr->tids[i]);
	free(pr->tids);
	free(pr->noise);
	free(pr->col);
}

ef_status ef_vindex_probe(ef_db *db, const char *tool, const char *column,
			  const struct ef_vindexes *ix, const struct ef_vindex_build *b,
			  struct ef_vindex_probe *out, struct ef_error *err)
{
	struct probe pr = { .db = db, .ix = ix };
	struct ef_error ignored;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (!ix->n) {
		snprintf(out->why_not, sizeof(out->why_not), "the table has no vector index");
		return EF_OK;
	}
	if (!(pr.col = ef_db_quote_part(db, column, err)))
		return err->status;
	if (ef_db_exec(db, "BEGIN", err) != EF_OK) {
		probe_free(&pr);
		return err->status;
	}
	ok = px(&pr, "SET LOCAL lock_timeout = '2s'", 0, NULL, out) &&
	     px(&pr, "SET LOCAL statement_timeout = '120s'", 0, NULL, out) &&
	     column_type(&pr, column, out) && pick_rows(&pr, out) && make_scratch(&pr, tool, out) &&
	     time_writes(&pr, out) && time_builds(&pr, tool, b, out);
	ef_db_exec(db, "ROLLBACK", &ignored);
	out->measured = ok;
	probe_free(&pr);
	return EF_OK;
}

double ef_vindex_cost_per_row_ms(const struct ef_vindex_probe *p)
{
	double d;

	if (!p->measured || p->rows <= 0)
		return 0;
	d = (p->with_ms - p->without_ms) / p->rows;
	return d > 0 ? d : 0;
}

double ef_vindex_build_estimate_s(const struct ef_vindexes *ix, const struct ef_vindex_probe *p,
				  size_t i, long long rows)
{
	double s, n;

	if (!p->measured || i >= ix->n || p->build_ms[i] < 0 || p->sample < 2)
		return -1;
	s = (double)p->sample;
	n = rows > p->sample ? (double)rows : s;
	if (strcmp(ix->ix[i].method, "hnsw") == 0)
		return p->build_ms[i] / 1e3 * (n / s) * (log(n) / log(s));
	return p->build_ms[i] / 1e3 * (n / s);
}

/*
 * A build can take minutes: it is sent without waiting, and the cancel
 * flag is looked at five times a second while the server works, so that
 * a cancelled run does not wait for it.
 */
static ef_status exec_build(ef_db *db, const char *sql, const atomic_int *cancel,
			    struct ef_error *err)
{
	PGconn *pg = ef_db_pg(db);
	PGresult *r, *bad = NULL;
	bool cancelled = false;

	if (!PQsendQuery(pg, sql))
		return ef_db_fail(db, NULL, err);
	for (;;) {
		struct pollfd pfd = { PQsocket(pg), POLLIN, 0 };

		if (!PQconsumeInput(pg))
			return ef_db_fail(db, NULL, err);
		if (!PQisBusy(pg))
			break;
		if (cancel && atomic_load(cancel) && !cancelled) {
			PGcancel *c = PQgetCancel(pg);
			char buf[256];

			if (c)
				PQcancel(c, buf, sizeof(buf));
			PQfreeCancel(c);
			cancelled = true;
		}
		poll(&pfd, 1, 200);
	}
	while ((r = PQgetResult(pg)) != NULL) {
		if (!bad && PQresultStatus(r) != PGRES_COMMAND_OK)
			bad = r;
		else
			PQclear(r);
	}
	if (!bad)
		return EF_OK;
	ef_db_fail(db, bad, err);
	PQclear(bad);
	if (cancelled)
		ef_error_set(err, EF_ERR_INTERRUPTED, "the index build was cancelled");
	return err->status;
}

void ef_vindex_duration(double s, char *buf, size_t n)
{
	if (s < 0)
		snprintf(buf, n, "unknown");
	else if (s < 90)
		snprintf(buf, n, "%.1f s", s);
	else if (s < 5400)
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		snprintf(buf, n, "%.1f h", s / 3600);
}

void ef_vindex_cost_check(const struct ef_vindexes *ix, const struct ef_vindex_probe *p,
			  struct ef_checklist *l)
{
	char per100k[32], build[32];
	double total = 0, sample_ms = 0;

	if (!ix->n)
		return;
	if (!p->measured) {
		ef_check_add(l, EF_CHECK_PASS, "index cost", "", "not measured: %s", p->why_not);
		return;
	}
	for (size_t i = 0; i < ix->n && total >= 0; i++) {
		double one = ef_vindex_build_estimate_s(ix, p, i, ix->rows);

		total = one < 0 ? -1 : total + one;
		sample_ms += p->build_ms[i] > 0 ? p->build_ms[i] : 0;
	}
	ef_vindex_duration(ef_vindex_cost_per_row_ms(p) * 100, per100k, sizeof(per100k));
	ef_vindex_duration(total, build, sizeof(build));
	ef_check_add(l, EF_CHECK_PASS, "index cost", "`embfill plan -C COLL` weighs keeping them "
		     "against `run --rebuild-index` for a run",
		     "a probe (rolled back) wrote %d rows in %.2f s with the vector indexes and "
		     "%.2f s without: %.1f ms more per vector written, %s per 100,000%s%s; building "
		     "them over %d rows took %.2f s, about %s for the table's %lld", p->rows,
		     p->with_ms / 1e3, p->without_ms / 1e3, ef_vindex_cost_per_row_ms(p), per100k,
		     p->scratch_note[0] ? "; " : "", p->scratch_note, p->sample,
		     sample_ms / 1e3, build, ix->rows);
}

/* --- drop and rebuild ----------------------------------------------------- */

static ef_status record_drop(ef_db *db, const char *tool, const struct ef_vindexes *ix,
			     const struct ef_vindex *v, long long run_id, const char *collection,
			     struct ef_error *err)
{
	char *sql = NULL, run[24];
	const char *p[7] = { v->qname, ix->table, v->def, v->tablespace[0] ? v->tablespace : NULL,
			     run, collection, v->qname };
	PGresult *r;

	snprintf(run, sizeof(run), "%lld", run_id);
	if (asprintf(&sql, "INSERT INTO %s.vector_indexes (index_name, table_name, definition,"
			   " tablespace, run_id, collection, comment) VALUES ($1, $2, $3, $4,"
			   " $5::bigint, $6, obj_description(to_regclass($7), 'pg_class'))"
			   " ON CONFLICT (index_name) DO UPDATE SET table_name = EXCLUDED.table_name,"
			   " definition = EXCLUDED.definition, tablespace = EXCLUDED.tablespace,"
			   " run_id = EXCLUDED.run_id, collection = EXCLUDED.collection,"
			   " comment = EXCLUDED.comment, dropped_at = now()", tool) < 0)
		return ef_error_oom(err, NULL);
	r = ef_db_query(db, sql, 7, p, PGRES_COMMAND_OK, err);
	free(sql);
	if (!r)
		return err->status;
	PQclear(r);
	return EF_OK;
}

ef_status ef_vindex_drop(ef_db *db, const char *tool, const struct ef_vindexes *ix,
			 long long run_id, const char *collection, struct ef_error *err)
{
	struct ef_error ignored;
	ef_status st;

	if (!ix->owner) {
		ef_error_set(err, EF_ERR_DB, "the vector indexes of %s can be dropped and rebuilt "
			     "only by the table's owner; nothing was dropped", ix->table);
		return ef_error_hint(err, "leave out --rebuild-index, or run as the table's owner");
	}
	st = ef_db_exec(db, "BEGIN", err);
	if (st == EF_OK)
		st = ef_db_exec(db, "SET LOCAL lock_timeout = '5s'", err);
	for (size_t i = 0; st == EF_OK && i < ix->n; i++) {
		char *sql = NULL;

		if (!ix->ix[i].valid)
			continue;
		st = record_drop(db, tool, ix, &ix->ix[i], run_id, collection, err);
		if (st == EF_OK && asprintf(&sql, "DROP INDEX %s", ix->ix[i].qname) < 0)
			st = ef_error_oom(err, NULL);
		if (st == EF_OK)
			st = ef_db_exec(db, sql, err);
		free(sql);
	}
	if (st == EF_OK)
		return ef_db_exec(db, "COMMIT", err);
	ef_db_exec(db, "ROLLBACK", &ignored);
	ef_error_prefix(err, "dropping the vector indexes of %s", ix->table);
	if (strstr(err->msg, "lock timeout"))
		ef_error_hint(err, "a long query or transaction holds %s: try again when it is "
				   "done, or leave out --rebuild-index; nothing was dropped", ix->table);
	return err->status;
}

static void say(ef_vindex_note_fn note, void *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(ef_vindex_note_fn note, void *ctx, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (!note)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	note(ctx, text);
}

/* 1: the index exists and is valid, 0: it exists, invalid, -1: absent. */
static int index_state(ef_db *db, const char *qname, struct ef_error *err, ef_status *st)
{
	const char *p[1] = { qname };
	PGresult *r = ef_db_query(db, "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid ="
				      " to_regclass($1)", 1, p, PGRES_TUPLES_OK, err);
	int state;

	*st = r ? EF_OK : err->status;
	if (!r)
		return -1;
	state = PQntuples(r) == 0 ? -1 : strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return state;
}

static ef_status forget_drop(ef_db *db, const char *tool, const char *qname,
			     struct ef_error *err)
{
	char *sql = NULL;
	const char *p[1] = { qname };
	PGresult *r;

	if (asprintf(&sql, "DELETE FROM %s.vector_indexes WHERE index_name = $1", tool) < 0)
		return ef_error_oom(err, NULL);
	r = ef_db_query(db, sql, 1, p, PGRES_COMMAND_OK, err);
	free(sql);
	if (!r)
		return err->status;
	PQclear(r);
	return EF_OK;
}

/* The recorded comment, put back on the rebuilt index. */
static ef_status restore_comment(ef_db *db, const char *tool, const char *qname,
				 struct ef_error *err)
{
	char *sql = NULL, *lit = NULL;
	const char *p[1] = { qname };
	PGresult *r;
	ef_status st = EF_OK;

	if (asprintf(&sql, "SELECT comment FROM %s.vector_indexes WHERE index_name = $1"
			   " AND comment IS NOT NULL", tool) < 0)
		return ef_error_oom(err, NULL);
	r = ef_db_query(db, sql, 1, p, PGRES_TUPLES_OK, err);
	free(sql);
	if (!r)
		return err->status;
	if (PQntuples(r) == 1) {
		sql = NULL;
		lit = ef_db_quote_literal(db, PQgetvalue(r, 0, 0), err);
		if (!lit || asprintf(&sql, "COMMENT ON INDEX %s IS %s", qname, lit) < 0)
			st = err->status ? err->status : ef_error_oom(err, NULL);
		else
			st = ef_db_exec(db, sql, err);
		free(sql);
		free(lit);
	}
	PQclear(r);
	return st;
}

/* "CREATE INDEX name ON ..." as "CREATE INDEX CONCURRENTLY name ON ...". */
static char *concurrently(const char *def)
{
	static const char head[] = "CREATE INDEX ";
	char *out = NULL;

	if (strncmp(def, head, sizeof(head) - 1) != 0)
		return NULL;
	if (asprintf(&out, "CREATE INDEX CONCURRENTLY %s", def + sizeof(head) - 1) < 0)
		return NULL;
	return out;
}

static ef_status rebuild_one(ef_db *db, const char *tool, const struct ef_vindex_dropped *d,
			     const struct ef_vindex_build *b, ef_vindex_note_fn note, void *ctx,
			     int *built, struct ef_error *err)
{
	ef_status st = EF_OK;
	int state = index_state(db, d->qname, err, &st);
	char *sql = NULL, *spc = NULL;
	double t0 = now_ms();

	if (st != EF_OK)
		return st;
	if (state == 1)
		return forget_drop(db, tool, d->qname, err);
	if (state == 0) {
		say(note, ctx, "index %s was left invalid by an interrupted build: dropping it",
		    d->qname);
		if (asprintf(&sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", d->qname) < 0)
			return ef_error_oom(err, NULL);
		st = ef_db_exec(db, sql, err);
		free(sql);
		sql = NULL;
		if (st != EF_OK)
			return st;
	}
	if (d->tablespace[0]) {
		if (!(spc = ef_db_quote_part(db, d->tablespace, err)) ||
		    asprintf(&sql, "SET default_tablespace = %s", spc) < 0 ||
		    ef_db_exec(db, sql, err) != EF_OK) {
			free(spc);
			free(sql);
			return err->status ? err->status : ef_error_oom(err, NULL);
		}
		free(sql);
	}
	free(spc);
	if (!(sql = concurrently(d->def))) {
		ef_error_set(err, EF_ERR_DB, "the recorded definition of %s is not a CREATE INDEX: "
			     "%.200s", d->qname, d->def);
		return ef_error_hint(err, "create the index yourself, then delete its row from "
					  "embfill's vector_indexes table");
	}
	say(note, ctx, "rebuilding index %s CONCURRENTLY", d->qname);
	st = exec_build(db, sql, b ? b->cancel : NULL, err);
	free(sql);
	if (st == EF_OK)
		st = restore_comment(db, tool, d->qname, err);
	if (st == EF_OK)
		st = forget_drop(db, tool, d->qname, err);
	if (st == EF_OK) {
		(*built)++;
		say(note, ctx, "index %s rebuilt in %.1f s", d->qname, (now_ms() - t0) / 1e3);
	}
	return st;
}

ef_status ef_vindex_rebuild(ef_db *db, const char *tool, const struct ef_vindexes *ix,
			    const struct ef_vindex_build *b, ef_vindex_note_fn note, void *ctx,
			    int *built, struct ef_error *err)
{
	ef_status st = EF_OK;

	*built = 0;
	if (!ix->ndropped)
		return EF_OK;
	if (set_build(db, b, false, err) != EF_OK)
		return err->status;
	for (size_t i = 0; st == EF_OK && i < ix->ndropped; i++)
		st = rebuild_one(db, tool, &ix->dropped[i], b, note, ctx, built, err);
	reset_build(db);
	if (st != EF_OK)
		ef_error_prefix(err, "rebuilding the vector indexes of %s", ix->table);
	return st;
}

/* --- a new table of its own ------------------------------------------------- */

static bool has_like(const struct ef_vindexes *mine, const struct ef_vindex *v)
{
	for (size_t i = 0; i < mine->n; i++)
		if (strcmp(mine->ix[i].method, v->method) == 0 &&
		    strcmp(mine->ix[i].opclass, v->opclass) == 0)
			return true;
	return false;
}

/* Indexes on an expression may name the live column's dimension (a cast
 * to vector(768)): they are not copied to a table of another one. */
static bool copyable(const struct ef_vindex *v)
{
	return v->valid && !v->expression;
}

size_t ef_vindex_missing(const struct ef_vindexes *live, const struct ef_vindexes *mine)
{
	size_t n = 0;

	for (size_t i = 0; i < live->n; i++)
		n += copyable(&live->ix[i]) && !has_like(mine, &live->ix[i]);
	return n;
}

ef_status ef_vindex_build_like(ef_db *db, const struct ef_vindexes *live, const char *table,
			       const char *column, const struct ef_vindex_build *b,
			       ef_vindex_note_fn note, void *ctx, int *built,
			       struct ef_error *err)
{
	struct ef_vindexes mine;
	ef_status st;

	*built = 0;
	if ((st = ef_vindex_find(db, NULL, table, column, &mine, err)) != EF_OK)
		return st;
	if (!mine.table[0] || !ef_vindex_missing(live, &mine))
		return EF_OK;
	if (set_build(db, b, false, err) != EF_OK)
		return err->status;
	for (size_t i = 0; st == EF_OK && i < live->n; i++) {
		const struct ef_vindex *v = &live->ix[i];
		const char *tail = def_tail(v->def, live->table);
		char *sql = NULL, desc[256];
		double t0 = now_ms();

		if (!copyable(v) || has_like(&mine, v) || !tail)
			continue;
		ef_vindex_describe(v, desc, sizeof(desc));
		say(note, ctx, "building the %s index of %s after the load", desc, mine.table);
		if (asprintf(&sql, "CREATE INDEX ON %s %s", mine.table, tail) < 0)
			st = ef_error_oom(err, NULL);
		else
			st = exec_build(db, sql, b ? b->cancel : NULL, err);
		free(sql);
		if (st == EF_OK) {
			(*built)++;
			say(note, ctx, "index built on %s in %.1f s", mine.table,
			    (now_ms() - t0) / 1e3);
		}
	}
	reset_build(db);
	if (st != EF_OK)
		ef_error_prefix(err, "building the vector index of %s", mine.table);
	return st;
}
