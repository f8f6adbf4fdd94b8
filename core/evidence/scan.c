/*
 * scan.c - collection counts in one set-based statement.
 *
 * Status is one query with three parts, so that the database does the
 * counting in a single pass per table instead of a round trip per
 * collection or per chunk:
 *   ch - per collection, chunks joined to their embedding row (same chunk
 *        key AND same collection, so a vector filed under another tenant
 *        never counts as this tenant's), with FILTERed counts;
 *   em - per collection named by the embedding rows: orphans and
 *        cross-tenant rows (separate layout only);
 *   q  - quarantined chunks from embfill's own table.
 * The content check hashes the chunk text in the database
 * (sha256(convert_to(content, 'UTF8'))), the same bytes embfill hashes
 * when it embeds, so nothing but counts crosses the wire.  What belongs
 * to a collection, and what is stale, comes from core/collsql.h, which
 * verify and spot-check share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "embfill/ident.h"
#include "embfill/registry.h"
#include "embfill/scan.h"
#include "embfill/session.h"

/* r: one row per combination of the chunk's states, each computed once
 * per chunk (the content's hash among them: a FILTER per count would hash
 * every chunk once for each count it appears in) and packed into one
 * integer, the cheapest key to group by; ch adds them up per collection,
 * and models_sql per (model, dimension) of the vectors.  The bits: 1 a
 * vector, 2 stale by model, 4 by dimension, 8 by content, 16 no model on
 * record, 32 stale by recipe, 64 no recipe on record; 46 is stale at all. */
static const char status_sql[] =
	"WITH r AS ("
	" SELECT {cname}::text AS collection, {rmodel} AS model, {rdim} AS dim,"
	"  CASE WHEN {e}.{vec} IS NULL THEN 0 ELSE 1 + ({stale_model})::int * 2"
	"   + ({stale_dim})::int * 4 + ({stale_content})::int * 8 + ({unrecorded})::int * 16"
	"   + ({stale_recipe})::int * 32 + ({recipe_unknown})::int * 64 END AS f, count(*) AS n"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin} {cwhere} GROUP BY 1, 2, 3, 4),"
	"ch AS ("
	" SELECT collection, sum(n)::bigint AS chunks,"
	"  coalesce(sum(n) FILTER (WHERE f & 1 <> 0), 0)::bigint AS embedded,"
	"  coalesce(sum(n) FILTER (WHERE f & 2 <> 0), 0)::bigint AS stale_model,"
	"  coalesce(sum(n) FILTER (WHERE f & 4 <> 0), 0)::bigint AS stale_dim,"
	"  coalesce(sum(n) FILTER (WHERE f & 8 <> 0), 0)::bigint AS stale_content,"
	"  coalesce(sum(n) FILTER (WHERE f & 46 <> 0), 0)::bigint AS stale,"
	"  coalesce(sum(n) FILTER (WHERE f & 16 <> 0), 0)::bigint AS unrecorded,"
	"  coalesce(sum(n) FILTER (WHERE f & 32 <> 0), 0)::bigint AS stale_recipe,"
	"  coalesce(sum(n) FILTER (WHERE f & 64 <> 0 AND f & 46 = 0), 0)::bigint AS recipe_unknown"
	" FROM r GROUP BY 1),"
"em AS ({em_sql}),"
	"q AS ({q_sql})"
	" SELECT coalesce(ch.collection, em.collection),"
	"  coalesce(ch.chunks, 0), coalesce(ch.embedded, 0),"
	"  coalesce(ch.chunks, 0) - coalesce(ch.embedded, 0),"
	"  coalesce(ch.stale, 0), coalesce(ch.stale_model, 0), coalesce(ch.stale_dim, 0),"
	"  coalesce(ch.stale_content, 0), coalesce(em.orphans, 0),"
	"  coalesce(em.cross_tenant, 0), coalesce(q.quarantined, 0), coalesce(ch.unrecorded, 0),"
	"  coalesce(ch.stale_recipe, 0), coalesce(ch.recipe_unknown, 0),"
	"  false AS is_model, NULL::text AS model, NULL::int AS dim"
	" FROM ch FULL JOIN em ON em.collection = ch.collection"
	" LEFT JOIN q ON q.collection = coalesce(ch.collection, em.collection)"
	" {models_sql}"
	" ORDER BY 1, 15, 2 DESC, 16, 17";

/* The (model, dimension) pairs of one collection's vectors, as verify
 * lists them (vectors of no recorded model apart), most vectors first. */
static const char models_sql[] =
	"UNION ALL SELECT collection, sum(n)::bigint, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
	"  true, model, dim"
	" FROM r WHERE f & 17 = 1 GROUP BY collection, model, dim";

/* Embedding rows seen from their side: an orphan has no chunk of its key,
 * a cross-tenant row has one only under another collection.  Asked as
 * anti-joins, so that a key unique only within a collection (unique
 * (collection, id)) never counts a row twice. */
static const char em_separate[] =
	"SELECT {ename}::text AS collection,"
	"  count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {chunks} c WHERE {ekeyeq})) AS orphans,"
	"  count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {chunks} c WHERE {ekeyeq}{ecollmatch})"
	"   AND EXISTS (SELECT 1 FROM {chunks} c WHERE {ekeyeq})) AS cross_tenant"
	" FROM {embeddings} e {eljoin} {ewhere} GROUP BY 1";

static const char em_none[] =
	"SELECT NULL::text AS collection, 0::bigint AS orphans, 0::bigint AS cross_tenant"
	" WHERE false";

static const char q_tool[] =
	"SELECT collection, count(*) AS quarantined FROM {tool}.quarantine {qwhere} GROUP BY 1";

static const char q_none[] =
	"SELECT NULL::text AS collection, 0::bigint AS quarantined WHERE false";

static char *build_status_sql(ef_db *db, const struct ef_config *cfg,
			      const struct ef_schema *sc, bool one, struct ef_error *err)
{
	const struct ef_mapping *m = &cfg->map;
	const struct ef_collsql_params p = { 1, 2, 3, cfg->recipe_id };
	struct ef_sqlvars v = { .n = 0 };
	bool separate = m->layout == EF_LAYOUT_SEPARATE;
	bool ok;
	char *sql = NULL;

	ok = ef_collsql_vars(&v, db, m, sc, &p, one, err) &&
	     /* a validated (chunk, collection) foreign key makes both impossible:
	      * two anti-joins over every embedding row spared */
	     ef_sqlvars_frag(&v, "em_sql", separate && !sc->isolation_fk_valid ? em_separate
									  : em_none) &&
	     ef_sqlvars_frag(&v, "q_sql", sc->tool_schema ? q_tool : q_none) &&
	     /* grouped by model only for one collection, whose pairs are listed */
	     ef_sqlvars_frag(&v, "rmodel", one ? "{fmodel}" : "NULL::text") &&
	     ef_sqlvars_frag(&v, "rdim", one ? "CASE WHEN {e}.{vec} IS NOT NULL THEN {vdims}::int END"
					  : "NULL::int") &&
	     ef_sqlvars_frag(&v, "models_sql", one ? models_sql : "");
	if (ok)
		sql = ef_sqlvars_expand(&v, status_sql);
	if (!sql && err->status == EF_OK)
		ef_error_oom(err, NULL);
	ef_sqlvars_free(&v);
	return sql;
}

static ef_status fill_report(PGresult *res, struct ef_status_report *out, struct ef_error *err)
{
	int n = PQntuples(res);

	out->rows = calloc((size_t)n + 1, sizeof(*out->rows));
	out->models = calloc((size_t)n + 1, sizeof(*out->models));
	if (!out->rows || !out->models)
		return ef_error_oom(err, NULL);
	for (int i = 0; i < n; i++) {
		struct ef_counts *c = &out->rows[out->n];

		if (strcmp(PQgetvalue(res, i, 14), "t") == 0) {
			struct ef_scan_model *m = &out->models[out->nmodels];

			m->model = PQgetisnull(res, i, 15) ? NULL : strdup(PQgetvalue(res, i, 15));
			if (!PQgetisnull(res, i, 15) && !m->model)
				return ef_error_oom(err, NULL);
			m->dim = (int)ef_db_ll(res, i, 16);
			m->count = ef_db_ll(res, i, 1);
			out->nmodels++;
			continue;
		}
		c->collection = strdup(PQgetvalue(res, i, 0));
		if (!c->collection)
			return ef_error_oom(err, NULL);
		out->n++;
		c->chunks = ef_db_ll(res, i, 1);
		c->embedded = ef_db_ll(res, i, 2);
		c->missing = ef_db_ll(res, i, 3);
		c->stale = ef_db_ll(res, i, 4);
		c->stale_model = ef_db_ll(res, i, 5);
		c->stale_dim = ef_db_ll(res, i, 6);
		c->stale_content = ef_db_ll(res, i, 7);
		c->orphans = ef_db_ll(res, i, 8);
		c->cross_tenant = ef_db_ll(res, i, 9);
		c->quarantined = ef_db_ll(res, i, 10);
		c->unrecorded = ef_db_ll(res, i, 11);
		c->stale_recipe = ef_db_ll(res, i, 12);
		c->recipe_unknown = ef_db_ll(res, i, 13);
	}
	return EF_OK;
}

static ef_status count(ef_session *s, const struct ef_view *v, const char *collection,
		       struct ef_status_report *out, struct ef_error *err);

/* A collection of another dimension keeps its vectors in a table of its
 * own (registry.h): its row is counted again through its view. */
static ef_status recount(ef_session *s, struct ef_counts *row, struct ef_error *err)
{
	struct ef_status_report one;
	struct ef_view v;

	if (ef_coll_view(s, row->collection, &v, err) != EF_OK)
		return err->status;
	if (!v.own_table)
		return EF_OK;
	if (count(s, &v, row->collection, &one, err) != EF_OK)
		return err->status;
	if (one.n == 1) {
		free(row->collection);
		*row = one.rows[0];
		one.rows[0].collection = NULL;
	}
	ef_status_report_free(&one);
	return EF_OK;
}

static bool listed(char **names, const char *name)
{
	for (size_t i = 0; names && names[i]; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* One query says which collections have a table of their own (none,
 * mostly); only those are counted again. */
static ef_status own_tables(ef_session *s, struct ef_status_report *out, struct ef_error *err)
{
	char **own = NULL;
	ef_status st = ef_coll_own_tables(s, &own, err);

	for (size_t i = 0; st == EF_OK && own && own[0] && i < out->n; i++)
		if (listed(own, out->rows[i].collection))
			st = recount(s, &out->rows[i], err);
	ef_names_free(own);
	return st;
}

static ef_status count(ef_session *s, const struct ef_view *v, const char *collection,
		       struct ef_status_report *out, struct ef_error *err)
{
	char dim[16];
	const char *params[3] = { v->cfg->embed_model, dim, collection };
	char *sql;
	PGresult *res;
	ef_status st;
	bool began;

	memset(out, 0, sizeof(*out));
	snprintf(dim, sizeof(dim), "%d", v->cfg->embed_dim);
	sql = build_status_sql(ef_session_db(s), v->cfg, v->sc, collection != NULL, err);
	if (!sql)
		return err->status;
	if (ef_db_snapshot_begin(ef_session_db(s), &began, err) != EF_OK) {
		free(sql);
		return err->status;
	}
	res = NULL;
	if (!ef_collsql_merge_pass(&v->cfg->map, v->sc, false) ||
	    ef_db_snapshot_merge_joins(ef_session_db(s), began, err) == EF_OK)
		res = ef_db_query(ef_session_db(s), sql, collection ? 3 : 2, params,
				  PGRES_TUPLES_OK, err);
	ef_db_snapshot_end(ef_session_db(s), began);
	free(sql);
	if (!res)
		return err->status;
	st = fill_report(res, out, err);
	PQclear(res);
	if (st != EF_OK)
		ef_status_report_free(out);
	return st;
}

ef_status ef_scan_status(ef_session *s, const char *collection, struct ef_status_report *out,
			 struct ef_error *err)
{
	struct ef_view v;
	ef_status st;

	memset(out, 0, sizeof(*out));
	if (ef_session_require(s, EF_NEED_TABLES, err) != EF_OK)
		return err->status;
	if (collection && ef_collection_name_check(collection, err) != EF_OK)
		return err->status;
	if (collection && ef_coll_view(s, collection, &v, err) != EF_OK)
		return err->status;
	if (!collection) {
		v.collection = NULL;
		v.cfg = ef_session_config(s);
		v.sc = ef_session_schema(s);
		v.own_table = NULL;
	}
	st = count(s, &v, collection, out, err);
	if (st == EF_OK && !collection)
		st = own_tables(s, out, err);
	if (st != EF_OK)
		ef_status_report_free(out);
	return st;
}

ef_status ef_scan_counts(ef_session *s, const char *collection, struct ef_counts *c,
			 struct ef_error *err)
{
	struct ef_status_report rep;

	memset(c, 0, sizeof(*c));
	if (ef_scan_status(s, collection, &rep, err) != EF_OK) {
		c->unknown = true;
		return err->status;
	}
	if (rep.n == 1) {
		*c = rep.rows[0];
		rep.rows[0].collection = NULL;
	}
	ef_status_report_free(&rep);
	free(c->collection);
	c->collection = strdup(collection);
	return c->collection ? EF_OK : ef_error_oom(err, NULL);
}

void ef_status_report_free(struct ef_status_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->rows[i].collection);
	for (size_t i = 0; i < r->nmodels; i++)
		free(r->models[i].model);
	free(r->rows);
	free(r->models);
	r->rows = NULL;
	r->models = NULL;
	r->n = r->nmodels = 0;
}

char **ef_scan_collection_names(ef_session *s, struct ef_error *err)
{
	const struct ef_collsql_params p = EF_COLLSQL_PARAMS;
	ef_db *db = ef_session_db(s);
	const struct ef_config *cfg = ef_session_config(s);
	struct ef_sqlvars v = { .n = 0 };
	char *sql = NULL, **names = NULL;
	PGresult *res = NULL;
	int n;

	if (ef_collsql_vars(&v, db, &cfg->map, ef_session_schema(s), &p, false, err))
		sql = ef_sqlvars_expand(&v, "SELECT DISTINCT {cname}::text FROM {chunks} c {cjoin}"
					    " ORDER BY 1");
	ef_sqlvars_free(&v);
	if (sql)
		res = ef_db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, err);
	free(sql);
	if (!res)
		return NULL;
	n = PQntuples(res);
	names = calloc((size_t)n + 1, sizeof(*names));
	for (int i = 0; names && i < n; i++)
		names[i] = strdup(PQgetvalue(res, i, 0));
	PQclear(res);
	if (!names)
		ef_error_oom(err, NULL);
	return names;
}

char **ef_scan_near_names(ef_session *s, const char *name, size_t max, struct ef_error *err)
{
	char **all = ef_scan_collection_names(s, err);
	size_t k = 0;

	if (!all)
		return NULL;
	for (size_t i = 0; all[i]; i++) {
		char *cand = all[i];

		all[i] = NULL;
		if (strcmp(cand, name) != 0 && ef_edit_distance(cand, name, max) <= max)
			all[k++] = cand;
		else
			free(cand);
	}
	return all;
}

ef_status ef_scan_unknown(ef_session *s, const char *name, struct ef_error *err)
{
	struct ef_error scratch;
	char **near;

	ef_error_clear(&scratch);
	near = ef_scan_near_names(s, name, 2, &scratch);
	ef_error_clear(err);
	ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" has no chunks and no embeddings", name);
	if (near && near[0])
		ef_error_hint(err, "did you mean \"%s\"? `embfill status` lists the collections",
			      near[0]);
	else
		ef_error_hint(err, "`embfill status` lists the collections");
	ef_names_free(near);
	return EF_ERR_USAGE;
}
