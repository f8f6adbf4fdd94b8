/*
 * coll_swap.c - the swap (a gate, then renames in one transaction), its
 * rollback and the restore of a backup, and the embedding table of its own
 * that a collection of another dimension gets.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/life/life_int.h"
#include "core/db/sqltpl.h"
#include "embfill/chunker.h"
#include "embfill/ident.h"
#include "embfill/lifecycle.h"
#include "embfill/registry.h"
#include "embfill/scan.h"
#include "embfill/session.h"
#include "embfill/redact.h"
#include "embfill/schema.h"
#include "embfill/spotcheck.h"
#include "embfill/strbuf.h"
#include "embfill/verify.h"

/* --- swap ------------------------------------------------------------------ */

/* Renames a collection everywhere it is named: one statement per table,
 * each touching only rows that still carry the old name. */
static ef_status rename_coll(struct ef_life *l, const char *from, const char *to,
			     struct ef_error *err)
{
	const char *p[2] = { from, to };
	const struct ef_mapping *m = &l->cfg->map;
	ef_status st = EF_OK;

	if (m->coll_mode == EF_COLL_LOOKUP) {
		st = ef_life_x(l, "UPDATE {lookup} SET {lname} = $2 WHERE {lname} = $1", 2, p, NULL, err);
	} else {
		if (l->sc.documents_ok && m->doc_collection)
			st = ef_life_x(l, "UPDATE {documents} SET {doc_coll} = $2 WHERE {doc_coll} = $1", 2, p,
			       NULL, err);
		if (st == EF_OK)
			st = ef_life_x(l, "UPDATE {chunks} SET {ccoll} = $2 WHERE {ccoll} = $1", 2, p, NULL,
			       err);
		if (st == EF_OK && m->layout == EF_LAYOUT_SEPARATE && m->emb_collection)
			st = ef_life_x(l, "UPDATE {embeddings} SET {ecoll} = $2 WHERE {ecoll} = $1", 2, p,
			       NULL, err);
	}
	if (st == EF_OK)
		st = ef_life_x(l, "UPDATE {tool}.quarantine SET collection = $2 WHERE collection = $1", 2, p,
		       NULL, err);
	/* bookkeeping is filed under the value rows carry: a name in column
	 * mode, the lookup key (which does not move) in lookup mode */
	if (st == EF_OK && l->sc.bookkeeping && m->coll_mode == EF_COLL_COLUMN)
		st = ef_life_x(l, "UPDATE {tool}.vectors SET collection = $2 WHERE collection = $1", 2,
			       p, NULL, err);
	if (st == EF_OK)
		st = ef_life_x(l, "UPDATE {tool}.collections SET name = $2 WHERE name = $1", 2, p, NULL, err);
	if (st == EF_ERR_DB)
		ef_error_hint(err, "renaming \"%s\" failed and nothing changed; a foreign key that "
				   "does not cascade updates of the collection column blocks it",
			      from);
	return st;
}

/* Whether any row names the collection (chunks, documents, embedding rows,
 * the lookup table). */
static ef_status name_used(struct ef_life *l, const char *name, bool *used, struct ef_error *err)
{
	char *val = NULL;
	long long docs = 0, chunks = 0;
	const char *p[1] = { name };
	PGresult *r;

	*used = false;
	if (ef_life_value(l, name, &val, err) != EF_OK)
		return err->status;
	if (l->cfg->map.coll_mode == EF_COLL_LOOKUP) {
		*used = val != NULL;
		free(val);
		return EF_OK;
	}
	if (ef_life_holds(l, val, &docs, &chunks, err) != EF_OK) {
		free(val);
		return err->status;
	}
	free(val);
	*used = docs || chunks;
	if (*used || l->cfg->map.layout != EF_LAYOUT_SEPARATE || !l->cfg->map.emb_collection)
		return EF_OK;
	r = ef_life_q(l, "SELECT EXISTS (SELECT 1 FROM {embeddings} WHERE {ecoll} = $1)", 1, p,
	      PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*used = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return EF_OK;
}

static ef_status previous_name(struct ef_life *l, const char *coll, char *out, size_t n,
			       struct ef_error *err)
{
	PGresult *r = ef_db_query(l->db, "SELECT to_char(now() AT TIME ZONE 'UTC',"
					 " 'YYYYMMDD\"T\"HH24MISS\"Z\"')", 0, NULL,
				  PGRES_TUPLES_OK, err);
	char stamp[32];
	bool used = true;

	if (!r)
		return err->status;
	snprintf(stamp, sizeof(stamp), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	for (int i = 1; i < 10 && used; i++) {
		if (i == 1)
			snprintf(out, n, "%s__prev_%s", coll, stamp);
		else
			snprintf(out, n, "%s__prev_%s_%d", coll, stamp, i);
		if (ef_collection_name_check(out, err) != EF_OK)
			return err->status;
		if (name_used(l, out, &used, err) != EF_OK)
			return err->status;
	}
	if (used)
		return ef_error_set(err, EF_ERR_USAGE, "no free name for the previous collection "
				    "of \"%s\"", coll);
	return EF_OK;
}

static void refuse(struct ef_swap_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void refuse(struct ef_swap_result *res, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(res->refusal);

	if (len + 3 >= sizeof(res->refusal))
		return;
	if (len)
		strcat(res->refusal, "; ");
	va_start(ap, fmt);
	vsnprintf(res->refusal + strlen(res->refusal), sizeof(res->refusal) - strlen(res->refusal),
		  fmt, ap);
	va_end(ap);
}

/* Counts, models and unexplained rows of the new collection, through its
 * own view. */
static ef_status gate_verify(struct ef_life *l, const char *with, struct ef_swap_result *res,
			     struct ef_error *err)
{
	struct ef_verify_report v;

	if (ef_verify(l->s, with, &v, err) != EF_OK)
		return err->status;
	res->chunks = v.chunks;
	res->fresh = v.fresh;
	if (v.chunks == 0)
		refuse(res, "\"%s\" has no chunks", with);
	if (v.fresh != v.chunks)
		refuse(res, "%lld of its %lld chunks have no fresh vector of %s (dim %d)",
		       v.chunks - v.fresh, v.chunks, l->cfg->embed_model, l->cfg->embed_dim);
	if (v.vectors != v.chunks)
		refuse(res, "it holds %lld vector rows for %lld chunks", v.vectors, v.chunks);
	if (v.nmodels > 1)
		refuse(res, "its vectors are of %zu models or dimensions", v.nmodels);
	for (size_t i = 0; i < v.nissues; i++)
		refuse(res, "%s: %lld", v.issues[i].title, v.issues[i].count);
	ef_verify_report_free(&v);
	return EF_OK;
}

static ef_status gate_retrieval(struct ef_life *l, const struct ef_swap_opts *o,
				struct ef_swap_result *res, double min, struct ef_error *err)
{
	struct ef_spot_request req = { .collection = o->with, .k = 5 };
	struct ef_spot_report sp;

	if (ef_spotcheck(l->s, o->ecfg, &req, &sp, err) != EF_OK)
		return err->status;
	res->hits = sp.hits;
	res->samples = sp.nqueries;
	res->hit_rate = sp.hit_rate;
	if (sp.nqueries == 0)
		refuse(res, "no chunk could be sampled for self-retrieval");
	else if (sp.hit_rate + 1e-9 < min)
		refuse(res, "self-retrieval found %zu of %zu sampled chunks in their top 5 (%.0f%%), "
		       "below the %.0f%% a swap needs", sp.hits, sp.nqueries, 100 * sp.hit_rate,
		       100 * min);
	ef_spot_report_free(&sp);
	return EF_OK;
}

static ef_status gate_provider(struct ef_life *l, const struct ef_swap_opts *o,
			       struct ef_error *err)
{
	struct ef_origin live, fresh;

	if (o->approve_provider_change)
		return EF_OK;
	if (ef_coll_origin(l->s, o->collection, &live, err) != EF_OK ||
	    ef_coll_origin(l->s, o->with, &fresh, err) != EF_OK)
		return err->status;
	if (!live.known || !fresh.known || (strcmp(live.provider, fresh.provider) == 0 &&
					     ef_same_service_host(live.host, fresh.host)))
		return EF_OK;
	ef_error_set(err, EF_ERR_USAGE, "provider change: \"%s\" was embedded by %s at %s, \"%s\" "
		     "by %s at %s; nothing was swapped", o->collection, live.provider, live.host,
		     o->with, fresh.provider, fresh.host);
	return ef_error_hint(err, "a change of provider needs the collection owner's approval; "
				  "once given, repeat the command with --approve-provider-change");
}

static ef_status swap_checks(struct ef_life *l, const struct ef_swap_opts *o, struct ef_error *err)
{
	bool used;

	if (ef_collection_name_check(o->with, err) != EF_OK ||
	    ef_life_one_table(l->cfg, "a swap", err) != EF_OK)
		return err->status;
	if (strcmp(o->collection, o->with) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "--with names the collection itself (\"%s\")",
			     o->collection);
		return ef_error_hint(err, "--with names the new collection, verified, that takes "
					  "its place");
	}
	if (name_used(l, o->collection, &used, err) != EF_OK)
		return err->status;
	if (!used)
		return ef_scan_unknown(l->s, o->collection, err);
	if (name_used(l, o->with, &used, err) != EF_OK)
		return err->status;
	if (!used)
		return ef_scan_unknown(l->s, o->with, err);
	return EF_OK;
}

/* Where the new collection's vectors live, when not in the live table. */
static ef_status vectors_table(struct ef_life *l, const char *with, struct ef_swap_result *res,
			       struct ef_error *err)
{
	struct ef_view v;

	if (ef_coll_view(l->s, with, &v, err) != EF_OK)
		return err->status;
	if (v.own_table)
		snprintf(res->vectors_table, sizeof(res->vectors_table), "%s", v.own_table);
	return EF_OK;
}

ef_status ef_coll_swap(ef_session *s, const struct ef_swap_opts *o, struct ef_swap_result *res,
		       struct ef_error *err)
{
	double min = o->min_hit_rate > 0 ? o->min_hit_rate : EF_SWAP_MIN_HIT_RATE;
	const char *p[3];
	struct ef_life l;
	PGresult *r;
	ef_status st;

	memset(res, 0, sizeof(*res));
	st = ef_life_open(&l, s, NULL, err);
	if (st == EF_OK)
		st = ef_life_begin(&l, err);
	if (st == EF_OK)
		st = ef_life_lock(&l, o->collection, err);
	if (st == EF_OK)
		st = ef_life_lock(&l, o->with, err);
	if (st == EF_OK)
		st = swap_checks(&l, o, err);
	if (st == EF_OK)
		st = gate_provider(&l, o, err);
	if (st == EF_OK)
		st = gate_verify(&l, o->with, res, err);
	if (st == EF_OK && !res->refusal[0])
		st = gate_retrieval(&l, o, res, min, err);
	if (st == EF_OK)
		st = vectors_table(&l, o->with, res, err);
	if (st == EF_OK && res->refusal[0]) {
		ef_error_set(err, EF_ERR_CHECK, "\"%s\" does not verify clean, so it does not replace "
			     "\"%s\"; nothing was swapped", o->with, o->collection);
		ef_error_hint(err, "`embfill verify -C %s` and `embfill spot-check -C %s` show the "
				   "details; finish it with `embfill run -C %s --confirm %s`", o->with,
			      o->with, o->with, o->with);
		st = EF_ERR_CHECK;
	}
	if (st == EF_OK)
		st = previous_name(&l, o->collection, res->previous_name,
				   sizeof(res->previous_name), err);
	if (st == EF_OK)
		st = rename_coll(&l, o->collection, res->previous_name, err);
	if (st == EF_OK)
		st = rename_coll(&l, o->with, o->collection, err);
	p[0] = o->collection;
	p[1] = o->with;
	p[2] = res->previous_name;
	if (st == EF_OK) {
		r = ef_life_q(&l, "INSERT INTO {tool}.swaps (collection, with_collection, previous_name)"
			  " VALUES ($1, $2, $3) RETURNING id", 3, p, PGRES_TUPLES_OK, err);
		if (r) {
			res->swap_id = ef_db_ll(r, 0, 0);
			PQclear(r);
		}
		st = r ? EF_OK : err->status;
	}
	if (st == EF_OK)
		st = ef_life_commit(&l, true, err);
	ef_life_close(&l);
	return st;
}

/* --- rollback ------------------------------------------------------------ */

static ef_status undo_swap(struct ef_life *l, const char *coll, PGresult *ev,
			   struct ef_rollback_result *res, struct ef_error *err)
{
	const char *with = PQgetvalue(ev, 0, 3), *prev = PQgetvalue(ev, 0, 4);
	char id[24];
	const char *p[1] = { id };
	bool used;

	snprintf(res->moved_to, sizeof(res->moved_to), "%s", with);
	snprintf(res->restored_from, sizeof(res->restored_from), "%s", prev);
	snprintf(id, sizeof(id), "%lld", res->id);
	if (ef_life_lock(l, with, err) != EF_OK || ef_life_lock(l, prev, err) != EF_OK ||
	    name_used(l, with, &used, err) != EF_OK)
		return err->status;
	if (used) {
		ef_error_set(err, EF_ERR_USAGE, "swap %lld cannot be undone: the name \"%s\" it "
			     "would give back is in use again; nothing changed", res->id, with);
		return ef_error_hint(err, "move or remove collection \"%s\" first", with);
	}
	if (name_used(l, prev, &used, err) != EF_OK)
		return err->status;
	if (!used) {
		ef_error_set(err, EF_ERR_USAGE, "swap %lld cannot be undone: the previous collection "
			     "\"%s\" no longer exists; nothing changed", res->id, prev);
		return ef_error_hint(err, "`embfill status` lists the collections");
	}
	if (rename_coll(l, coll, with, err) != EF_OK || rename_coll(l, prev, coll, err) != EF_OK)
		return err->status;
	return ef_life_x(l, "UPDATE {tool}.swaps SET rolled_back_at = now() WHERE id = $1::bigint", 1, p,
		 NULL, err);
}

/* The saved bookkeeping rows back: the run's rows of those chunks go, the
 * saved ones return as they were (a chunk that had none gets none). */
static ef_status restore_records(struct ef_life *l, const char *id, const char *val,
				 struct ef_error *err)
{
	const char *p[2] = { id, val };

	if (!l->sc.bookkeeping)
		return EF_OK;
	if (ef_life_x(l, "DELETE FROM {tool}.vectors v USING {tool}.backups b WHERE b.run_id ="
		      " $1::bigint AND v.collection = $2 AND v.chunk_key = coalesce(b.chunk_key,"
		      " ARRAY[b.chunk_id::text])", 2, p, NULL, err) != EF_OK)
		return err->status;
	return ef_life_x(l, "INSERT INTO {tool}.vectors SELECT r.* FROM {tool}.backups b CROSS JOIN"
			 " LATERAL jsonb_populate_record(NULL::{tool}.vectors, b.bookkeeping) r"
			 " WHERE b.run_id = $1::bigint AND b.bookkeeping IS NOT NULL", 1, p, NULL, err);
}

/* The inline layout: the vector and the bookkeeping columns the chunk
 * table has, from the saved row. */
static ef_status restore_inline(struct ef_life *l, const char *id, long long *n,
				struct ef_error *err)
{
	const struct ef_mapping *m = &l->cfg->map;
	const char *p[1] = { id };

	if (!ef_sqlvars_frag(&l->v, "set_model", m->emb_model ? ", {model} = r.{model}" : "") ||
	    !ef_sqlvars_frag(&l->v, "set_hash", m->emb_hash ? ", {hash} = r.{hash}" : "") ||
	    !ef_sqlvars_frag(&l->v, "set_dim", m->emb_dim ? ", {dim} = r.{dim}" : "") ||
	    !ef_sqlvars_frag(&l->v, "set_at", m->emb_at ? ", {at} = r.{at}" : "") ||
	    !ef_sqlvars_frag(&l->v, "set_run", m->emb_run ? ", {run} = r.{run}" : ""))
		return ef_life_oom(err);
	return ef_life_x(l, "UPDATE {chunks} c SET {vec} = b.embedding{set_model}{set_hash}{set_dim}"
		    "{set_at}{set_run} FROM {tool}.backups b CROSS JOIN LATERAL"
		    " jsonb_populate_record(NULL::{chunks}, b.row_data) r"
		    " WHERE b.run_id = $1::bigint AND {ckeyt} = coalesce(b.chunk_key,"
		    " ARRAY[b.chunk_id::text])", 1, p, n, err);
}

/* The saved rows back into the embedding table: every column from the
 * saved jsonb, the vector from its real[] copy (an assignment cast turns it
 * into pgvector's type).  The column list comes from the catalog, so that
 * a mapped table with columns of its own gets them back too. */
static ef_status restore_rows(struct ef_life *l, const char *id, long long *n,
			      struct ef_error *err)
{
	const char *p[2] = { ef_sqlvars_get(&l->v, "embeddings"), l->cfg->map.emb_vector };
	const char *pid[1] = { id };
	struct ef_strbuf cols = EF_STRBUF_INIT, vals = EF_STRBUF_INIT;
	PGresult *r = ef_db_query(l->db, "SELECT quote_ident(attname), attname = $2 FROM"
					 " pg_attribute WHERE attrelid = $1::regclass AND attnum > 0"
					 " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
				  2, p, PGRES_TUPLES_OK, err);
	ef_status st = EF_OK;

	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r); i++) {
		ef_strbuf_addf(&cols, "%s%s", i ? ", " : "", PQgetvalue(r, i, 0));
		if (strcmp(PQgetvalue(r, i, 1), "t") == 0)
			ef_strbuf_addf(&vals, "%sb.embedding", i ? ", " : "");
		else
			ef_strbuf_addf(&vals, "%sr.%s", i ? ", " : "", PQgetvalue(r, i, 0));
	}
	PQclear(r);
	if (cols.oom || vals.oom || !ef_sqlvars_raw(&l->v, "rcols", ef_strbuf_str(&cols)) ||
	    !ef_sqlvars_raw(&l->v, "rvals", ef_strbuf_str(&vals)))
		st = ef_life_oom(err);
	ef_strbuf_free(&cols);
	ef_strbuf_free(&vals);
	if (st != EF_OK)
		return st;
	return ef_life_x(l, "INSERT INTO {embeddings} ({rcols}) OVERRIDING SYSTEM VALUE SELECT {rvals}"
		    " FROM {tool}.backups b CROSS JOIN LATERAL"
		    " jsonb_populate_record(NULL::{embeddings}, b.row_data) r"
		    " WHERE b.run_id = $1::bigint AND b.existed", 1, pid, n, err);
}

static ef_status restore_backup(struct ef_life *l, const char *coll,
				struct ef_rollback_result *res, struct ef_error *err)
{
	char id[24], *val = NULL;
	const char *p[2] = { id, NULL };
	long long deleted = 0;
	ef_status st;

	snprintf(id, sizeof(id), "%lld", res->id);
	if (ef_life_value(l, coll, &val, err) != EF_OK)
		return err->status;
	if (!val)
		return ef_life_lookup_missing(l, coll, err);
	p[1] = val;
	if (!ef_sqlvars_frag(&l->v, "ecollrestore", l->cfg->map.emb_collection
			     ? "AND e.{ecoll} = $2" : "AND $2::text IS NOT NULL")) {
		free(val);
		return ef_life_oom(err);
	}
	if (l->cfg->map.layout == EF_LAYOUT_INLINE) {
		st = restore_inline(l, id, &res->rows_restored, err);
	} else {
		st = ef_life_x(l, "DELETE FROM {embeddings} e USING {tool}.backups b WHERE b.run_id ="
			  " $1::bigint AND {ekeyt} = coalesce(b.chunk_key, ARRAY[b.chunk_id::text])"
			  " {ecollrestore}", 2, p, &deleted, err);
		if (st == EF_OK)
			st = restore_rows(l, id, &res->rows_restored, err);
		res->rows_removed = deleted - res->rows_restored;
		if (res->rows_removed < 0)
			res->rows_removed = 0;
	}
	if (st == EF_OK)
		st = restore_records(l, id, val, err);
	free(val);
	if (st == EF_OK)
		st = ef_life_x(l, "UPDATE {tool}.runs SET restored_at = now() WHERE id = $1::bigint", 1, p,
		       NULL, err);
	return st;
}

ef_status ef_coll_rollback(ef_session *s, const char *collection, struct ef_rollback_result *res,
			   struct ef_error *err)
{
	const char *p[1] = { collection };
	struct ef_life l;
	PGresult *ev = NULL;
	ef_status st;

	memset(res, 0, sizeof(*res));
	st = ef_life_open(&l, s, collection, err);
	if (st == EF_OK)
		st = ef_life_begin(&l, err);
	if (st == EF_OK)
		st = ef_life_lock(&l, collection, err);
	if (st == EF_OK) {
		ev = ef_life_q(&l, "SELECT kind, id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
			   " a, b FROM (SELECT 'swap' AS kind, id, swapped_at AS at, with_collection"
			   " AS a, previous_name AS b FROM {tool}.swaps WHERE collection = $1 AND"
			   " rolled_back_at IS NULL UNION ALL SELECT 'backup', id, started_at, NULL,"
			   " NULL FROM {tool}.runs WHERE collection = $1 AND backup AND restored_at"
			   " IS NULL) x ORDER BY at DESC, id DESC LIMIT 1", 1, p, PGRES_TUPLES_OK, err);
		st = ev ? EF_OK : err->status;
	}
	if (st == EF_OK && PQntuples(ev) == 0) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" has nothing to roll back: no swap "
			     "and no run with --backup that is not already undone", collection);
		st = ef_error_hint(err, "`embfill history` shows what was done to it");
	}
	if (st == EF_OK) {
		snprintf(res->kind, sizeof(res->kind), "%s", PQgetvalue(ev, 0, 0));
		res->id = ef_db_ll(ev, 0, 1);
		snprintf(res->when, sizeof(res->when), "%s", PQgetvalue(ev, 0, 2));
		st = strcmp(res->kind, "swap") == 0 ? undo_swap(&l, collection, ev, res, err)
						    : restore_backup(&l, collection, res, err);
	}
	if (st == EF_OK)
		st = ef_life_commit(&l, true, err);
	PQclear(ev);
	ef_life_close(&l);
	return st;
}

/* --- a collection of another dimension ---------------------------------- */

/* <table>_d<dim>, the last part of the name kept within 63 bytes. */
static char *dim_table_name(const char *table, int dim)
{
	const char *dot = strrchr(table, '.');
	char suffix[16], *out = NULL;
	int keep;

	snprintf(suffix, sizeof(suffix), "_d%d", dim);
	keep = (int)(63 - strlen(suffix));
	if (dot && asprintf(&out, "%.*s%.*s%s", (int)(dot - table + 1), table, keep, dot + 1,
			    suffix) < 0)
		return NULL;
	if (!dot && asprintf(&out, "%.*s%s", keep, table, suffix) < 0)
		return NULL;
	return out;
}

ef_status ef_coll_prepare_dim(ef_session *s, const char *into, char **table,
			      struct ef_error *err)
{
	const struct ef_config *cfg = ef_session_config(s);
	struct ef_life l;
	char *name = NULL;
	const char *p[2] = { into, NULL };
	bool created = false;
	ef_status st;

	*table = NULL;
	st = ef_life_open(&l, s, NULL, err);
	if (st != EF_OK || !ef_collsql_fixed_dim(&l.sc) || l.sc.dim == cfg->embed_dim) {
		ef_life_close(&l);
		return st;
	}
	if (cfg->map.layout != EF_LAYOUT_SEPARATE) {
		ef_error_set(err, EF_ERR_USAGE, "EMBED_DIM is %d and the embedding column %s holds "
			     "dimension %d; in the inline layout a new dimension needs a column of "
			     "its own", cfg->embed_dim, cfg->map.emb_vector, l.sc.dim);
		ef_error_hint(err, "add a chunk table with a vector(%d) column for the new "
				   "collection, or keep EMBED_DIM at %d", cfg->embed_dim, l.sc.dim);
		ef_life_close(&l);
		return EF_ERR_USAGE;
	}
	name = dim_table_name(cfg->map.embeddings, cfg->embed_dim);
	p[1] = name;
	st = name ? ef_life_begin(&l, err) : ef_life_oom(err);
	if (st == EF_OK)
		st = ef_life_lock(&l, into, err);
	if (st == EF_OK)
		st = ef_schema_add_dim_table(l.db, &cfg->map, l.sc.vec_type, cfg->embed_dim, name,
					     &created, err);
	if (st == EF_OK)
		st = ef_life_x(&l, "INSERT INTO {tool}.collections (name, embeddings_table) VALUES ($1, $2)"
			   " ON CONFLICT (name) DO UPDATE SET embeddings_table = EXCLUDED"
			   ".embeddings_table, updated_at = now()", 2, p, NULL, err);
	if (st == EF_OK)
		st = ef_life_commit(&l, false, err);
	ef_life_close(&l);
	if (st == EF_OK)
		*table = name;
	else
		free(name);
	return st;
}
