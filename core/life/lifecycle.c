/*
 * lifecycle.c - what the files of a collection's life share (life_int.h):
 * the session with the collection's quoted names, transactions, the run
 * locks, and the value rows carry for a collection name.
 *
 * A collection is a name on rows: on documents, chunks and embedding rows
 * (or, in lookup mode, one row of the lookup table).  A swap is therefore a
 * pair of renames in one transaction: MVCC lets every reader see the names
 * as they were before the commit or after it, never in between.  Renames
 * go table by table (documents, chunks, embedding rows), each statement
 * touching only rows that still carry the old name, so they are right both
 * when foreign keys cascade a rename downwards (the default layout) and
 * when a mapped layout has no such keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "core/life/life_int.h"
#include "embfill/registry.h"
#include "embfill/session.h"

double ef_life_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

ef_status ef_life_oom(struct ef_error *err)
{
	return ef_error_oom(err, NULL);
}

/* Runs tpl (expanded with the quoted names) and returns its result when its
 * status is expect. */
PGresult *ef_life_q(struct ef_life *l, const char *tpl, int n, const char *const *p,
		   ExecStatusType expect, struct ef_error *err)
{
	char *sql = ef_sqlvars_expand(&l->v, tpl);
	PGresult *r;

	if (!sql) {
		ef_life_oom(err);
		return NULL;
	}
	r = ef_db_query(l->db, sql, n, p, expect, err);
	free(sql);
	return r;
}

/* A statement without rows; *affected (may be NULL) gets its row count. */
ef_status ef_life_x(struct ef_life *l, const char *tpl, int n, const char *const *p,
		   long long *affected, struct ef_error *err)
{
	PGresult *r = ef_life_q(l, tpl, n, p, PGRES_COMMAND_OK, err);

	if (!r)
		return err->status;
	if (affected)
		*affected = atoll(PQcmdTuples(r));
	PQclear(r);
	return EF_OK;
}

/* The session's connection, with the mapping of collection coll (its own
 * embedding table when it has one) or, without coll, the settings'. */
ef_status ef_life_open(struct ef_life *l, ef_session *s, const char *coll, struct ef_error *err)
{
	const struct ef_collsql_params p = { .model = 0, .dim = 0, .collection = 1 };
	struct ef_view v;

	memset(l, 0, sizeof(*l));
	l->s = s;
	l->db = ef_session_db(s);
	l->cfg = ef_session_config(s);
	if (ef_session_require(s, EF_NEED_TABLES | EF_NEED_TOOL | EF_NEED_WRITE, err) != EF_OK)
		return err->status;
	if (coll && ef_coll_view(s, coll, &v, err) != EF_OK)
		return err->status;
	if (coll)
		l->cfg = v.cfg;
	l->sc = coll ? *v.sc : *ef_session_schema(s);
	if (!ef_collsql_vars(&l->v, l->db, &l->cfg->map, &l->sc, &p, true, err))
		return err->status;
	return EF_OK;
}

/* Ends what ef_life_open began; a transaction still open is rolled back.
 * The session stays open for the caller. */
void ef_life_close(struct ef_life *l)
{
	struct ef_error ignored;

	if (l->in_txn && l->db)
		ef_db_exec(l->db, "ROLLBACK", &ignored);
	ef_sqlvars_free(&l->v);
	l->db = NULL;
}

/* After rows moved between collection names the planner's statistics of
 * the collection columns are wrong: a name it thinks empty holds 100,000
 * chunks, and a status or verify of it would pick a nested loop over the
 * whole embedding table.  Refreshed at once (a sample, and never blocking
 * readers or writers); a table we do not own is skipped by the server. */
void ef_life_analyze(struct ef_life *l)
{
	struct ef_error ignored;

	ef_life_x(l, "ANALYZE {chunks}", 0, NULL, NULL, &ignored);
	if (l->cfg->map.layout == EF_LAYOUT_SEPARATE)
		ef_life_x(l, "ANALYZE {embeddings}", 0, NULL, NULL, &ignored);
	if (l->sc.documents_ok)
		ef_life_x(l, "ANALYZE {documents}", 0, NULL, NULL, &ignored);
}

ef_status ef_life_begin(struct ef_life *l, struct ef_error *err)
{
	if (ef_db_exec(l->db, "BEGIN", err) != EF_OK)
		return err->status;
	l->in_txn = true;
	return EF_OK;
}

/* A commit may have moved names or tables: the session's views are
 * resolved again from the registry.  The view this life was opened with is
 * among them, so what needs its mapping (the statistics refresh, when asked
 * for) runs before it is forgotten, and the settings' mapping stands in for
 * it after. */
ef_status ef_life_commit(struct ef_life *l, bool analyze, struct ef_error *err)
{
	ef_status st;

	l->in_txn = false;
	st = ef_db_exec(l->db, "COMMIT", err);
	if (st == EF_OK && analyze)
		ef_life_analyze(l);
	ef_session_forget_views(l->s);
	l->cfg = ef_session_config(l->s);
	return st;
}

/* The run lock of a collection (the key run.c takes), for this
 * transaction: no run can start on it, and none is running. */
ef_status ef_life_lock(struct ef_life *l, const char *name, struct ef_error *err)
{
	char *key = NULL;
	const char *p[1];
	PGresult *r;
	bool got;

	if (asprintf(&key, "embfill:%s:%s", l->cfg->map.tool_schema, name) < 0)
		return ef_life_oom(err);
	p[0] = key;
	r = ef_db_query(l->db, "SELECT pg_try_advisory_xact_lock(hashtextextended($1::text, 0))",
			1, p, PGRES_TUPLES_OK, err);
	free(key);
	if (!r)
		return err->status;
	got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (got)
		return EF_OK;
	ef_error_set(err, EF_ERR_BUSY, "collection \"%s\" is busy: an embfill run holds it", name);
	return ef_error_hint(err, "wait for the run to finish (`embfill status -C %s`), then "
				  "try again", name);
}

/* The value rows carry for a collection: its name, or in lookup mode its
 * key in the lookup table (NULL in *out when it is not there). */
ef_status ef_life_value(struct ef_life *l, const char *name, char **out, struct ef_error *err)
{
	const char *p[1] = { name };
	PGresult *r;

	*out = NULL;
	if (l->cfg->map.coll_mode != EF_COLL_LOOKUP) {
		*out = strdup(name);
		return *out ? EF_OK : ef_life_oom(err);
	}
	r = ef_life_q(l, "SELECT {lkey}::text FROM {lookup} WHERE {lname} = $1", 1, p, PGRES_TUPLES_OK,
	      err);
	if (!r)
		return err->status;
	if (PQntuples(r) == 1 && !(*out = strdup(PQgetvalue(r, 0, 0)))) {
		PQclear(r);
		return ef_life_oom(err);
	}
	PQclear(r);
	return EF_OK;
}

ef_status ef_life_lookup_missing(struct ef_life *l, const char *name, struct ef_error *err)
{
	ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" is not in the lookup table %s", name,
		     l->cfg->map.lookup);
	return ef_error_hint(err, "`embfill status` lists the collections");
}

ef_status ef_life_one_table(const struct ef_config *cfg, const char *what, struct ef_error *err)
{
	if (cfg->map.coll_mode != EF_COLL_TABLE)
		return EF_OK;
	ef_error_set(err, EF_ERR_USAGE, "%s needs a second collection, and %s is one collection "
		     "(COLLECTION_MODE=table); nothing was done", what, cfg->map.chunks);
	return ef_error_hint(err, "in a table-per-collection layout a new collection is a new "
				  "table the application must create and point at; embfill does not "
				  "create or rename your tables (docs/adopting.md)");
}

/*
 * A collection that is not yet in the lookup table gets its row: the name,
 * and a key the column's default makes, or a fresh uuid (as text for a
 * text key), or one above the largest integer.  Any other column the table
 * requires without a default makes it refuse, naming the column.
 */
ef_status ef_life_add_lookup(struct ef_life *l, const char *name, char **value,
			     struct ef_error *err)
{
	static const char cols[] =
		"SELECT a.attname, format_type(a.atttypid, NULL), a.atthasdef OR a.attidentity <> '',"
		" a.attnotnull FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0"
		" AND NOT a.attisdropped AND a.attgenerated = ''";
	const struct ef_mapping *m = &l->cfg->map;
	const char *p[1] = { ef_sqlvars_get(&l->v, "lookup") }, *pn[1] = { name };
	const char *key = NULL;
	PGresult *r = ef_db_query(l->db, cols, 1, p, PGRES_TUPLES_OK, err);
	bool key_default = false;

	*value = NULL;
	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *col = PQgetvalue(r, i, 0);
		bool def = strcmp(PQgetvalue(r, i, 2), "t") == 0;

		if (strcmp(col, m->lookup_key) == 0) {
			key_default = def;
			key = strcmp(PQgetvalue(r, i, 1), "uuid") == 0 ? "gen_random_uuid()"
			      : strcmp(PQgetvalue(r, i, 1), "text") == 0 ||
				strncmp(PQgetvalue(r, i, 1), "character", 9) == 0
			      ? "gen_random_uuid()::text"
			      : "(SELECT coalesce(max({lkey}), 0) + 1 FROM {lookup})";
		} else if (strcmp(col, m->lookup_name) != 0 && !def &&
			   strcmp(PQgetvalue(r, i, 3), "t") == 0) {
			ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" would need a row in %s, "
				     "whose column \"%s\" must be given and has no default", name,
				     m->lookup, col);
			PQclear(r);
			return ef_error_hint(err, "add the collection's row to %s yourself, then "
						  "repeat the command", m->lookup);
		}
	}
	PQclear(r);
	if (key_default)
		r = ef_life_q(l, "INSERT INTO {lookup} ({lname}) VALUES ($1) RETURNING {lkey}::text", 1,
			      pn, PGRES_TUPLES_OK, err);
	else {
		char sql[512];

		if (strstr(key, "max(") && ef_life_x(l, "LOCK TABLE {lookup} IN SHARE ROW EXCLUSIVE"
						     " MODE", 0, NULL, NULL, err) != EF_OK)
			return err->status;
		snprintf(sql, sizeof(sql), "INSERT INTO {lookup} ({lkey}, {lname}) VALUES (%s, $1)"
			 " RETURNING {lkey}::text", key);
		r = ef_life_q(l, sql, 1, pn, PGRES_TUPLES_OK, err);
	}
	if (!r)
		return err->status;
	*value = PQntuples(r) == 1 ? strdup(PQgetvalue(r, 0, 0)) : NULL;
	PQclear(r);
	return *value ? EF_OK : ef_life_oom(err);
}

/* How many documents and chunks carry a collection value. */
ef_status ef_life_holds(struct ef_life *l, const char *value, long long *docs, long long *chunks,
		       struct ef_error *err)
{
	const char *p[1] = { value };
	PGresult *r;

	*docs = *chunks = 0;
	if (!value)
		return EF_OK;
	r = ef_life_q(l, "SELECT count(*) FROM {chunks} WHERE {ccoll} = $1", 1, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*chunks = ef_db_ll(r, 0, 0);
	PQclear(r);
	if (!l->sc.documents_ok || !l->cfg->map.doc_collection)
		return EF_OK;
	r = ef_life_q(l, "SELECT count(*) FROM {documents} WHERE {doc_coll} = $1", 1, p, PGRES_TUPLES_OK,
	      err);
	if (!r)
		return err->status;
	*docs = ef_db_ll(r, 0, 0);
	PQclear(r);
	return EF_OK;
}
