/*
 * adopt.c - a collection's existing vectors recorded as one model's,
 * without embedding anything (lifecycle.h, ef_coll_adopt).
 *
 * A table made by a framework holds vectors and nothing about them: no
 * model, no content hash.  Until that is on record every vector counts as
 * stale and a run would embed them all again.  Adoption is the operator's
 * assertion "these vectors are model M's, made from the text they sit
 * next to", written where the record lives: embfill's bookkeeping table,
 * and the table's own model, dimension and hash columns where it has
 * them.  No vector is read back or written.
 *
 * What is adopted: every non-NULL vector of the collection whose model is
 * not on record, whose dimension is the one asserted, and whose recorded
 * content hash (if one is recorded) is the chunk's current one.  A vector
 * recorded as another model is left alone unless forced; one of another
 * dimension is listed and left stale.
 *
 * The candidates are chosen once, into a temporary table, because the
 * record is written in two places and the first write changes what the
 * second would see as unrecorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "core/life/life_int.h"
#include "embfill/lifecycle.h"
#include "embfill/recipe.h"

/* $1 collection, $2 model, $3 dim, $4 force ("t"/"f"). */
static const char counts_tpl[] =
	"SELECT count(*),"
	" count(*) FILTER (WHERE {e}.{vec} IS NULL),"
	" count(*) FILTER (WHERE {e}.{vec} IS NOT NULL),"
	" count(*) FILTER (WHERE {e}.{vec} IS NOT NULL AND {unrecorded}),"
	" count(*) FILTER (WHERE {e}.{vec} IS NOT NULL AND {fmodel} = $2::text),"
	" count(*) FILTER (WHERE {e}.{vec} IS NOT NULL AND {fmodel} <> $2::text),"
	" count(*) FILTER (WHERE {e}.{vec} IS NOT NULL AND {vdims} IS DISTINCT FROM $3::int),"
	" count(*) FILTER (WHERE {cand}),"
	" count(*) FILTER (WHERE {e}.{vec} IS NOT NULL AND {unrecorded}"
	"  AND {fhash} IS NOT NULL AND {fhash} <> {chash}),"
	" count(*) FILTER (WHERE {cand} AND NOT ({unrecorded}) AND {fmodel} = $2::text)"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin} {cwhere}";

static const char wrong_tpl[] =
	"SELECT {ckeyd}, {vdims} FROM {chunks} c {cjoin} {ejoin} {bjoin} {cwhere}"
	" AND {e}.{vec} IS NOT NULL AND {vdims} IS DISTINCT FROM $3::int"
	" AND ({unrecorded} OR ($4::bool AND {fmodel} <> $2::text))"
	" ORDER BY {ckey} LIMIT 10";

/* The candidates: unrecorded, recorded as the model without a recipe (made
 * before recipes were recorded), or, forced, recorded as another model;
 * the asserted dimension, and no recorded hash that contradicts the text. */
static const char cand_frag[] =
	"{e}.{vec} IS NOT NULL AND {vdims} = $3::int"
	" AND ({unrecorded} OR ({fmodel} = $2::text AND ({recipe_unknown}))"
	"  OR ($4::bool AND {fmodel} <> $2::text))"
	" AND ({fhash} IS NULL OR {fhash} = {chash} OR $4::bool)";

static const char pick_tpl[] =
	"CREATE TEMP TABLE embfill_adopt ON COMMIT DROP AS"
	" SELECT {ckeyt} AS kt, {pickcols}, {chashb} AS h"
	" FROM {chunks} c {cjoin} {ejoin} {bjoin} {cwhere} AND {cand}";

static const char book_tpl[] =
	"INSERT INTO {tool}.vectors AS t (collection, chunk_key, model, dim, content_sha256,"
	" recipe, embedded_at, run_id)"
	" SELECT {bval}, a.kt, $2::text, $3::int, a.h, {rlit}, now(), NULL FROM embfill_adopt a"
	" WHERE $1::text IS NOT NULL"
	" ON CONFLICT (collection, chunk_key) DO UPDATE SET model = EXCLUDED.model,"
	" dim = EXCLUDED.dim, content_sha256 = EXCLUDED.content_sha256, recipe = EXCLUDED.recipe,"
	" embedded_at = EXCLUDED.embedded_at, run_id = NULL";

/* The table's own record columns, matched by key (and collection); the
 * model and dimension as literals ({mlit} {dlit}), since a statement must
 * use every parameter it is given and this one may need neither. */
static const char own_tpl[] =
	"UPDATE {target} t SET {sets} FROM embfill_adopt a WHERE {match}";

static ef_status oom(struct ef_error *err)
{
	return ef_error_oom(err, "adopting vectors");
}

/* The columns the temporary table keeps to find the rows again, and the
 * statement that writes the table's own record columns ("" if none). */
static bool own_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
		      const struct ef_schema *sc, const char *mlit, int dim, const char *recipe,
		      bool *any)
{
	char rlit[48];
	char dlit[16];
	bool sep = m->layout == EF_LAYOUT_SEPARATE;
	char pick[256], match[384], sets[384];
	size_t ns = 0;

	snprintf(pick, sizeof(pick), "c.{ck1} AS k1%s%s", m->nkey > 1 ? ", c.{ck2} AS k2" : "",
		 sep && m->emb_collection ? ", c.{ccoll} AS kc" : "");
	if (sep)
		snprintf(match, sizeof(match), "t.{ek1} = a.k1%s%s",
			 m->nkey > 1 ? " AND t.{ek2} = a.k2" : "",
			 m->emb_collection ? " AND t.{ecoll} = a.kc" : "");
	else
		snprintf(match, sizeof(match), "t.{ck1} = a.k1%s",
			 m->nkey > 1 ? " AND t.{ck2} = a.k2" : "");
	sets[0] = '\0';
	snprintf(dlit, sizeof(dlit), "%d", dim);
	/* a fingerprint is "r1-" and hex digits (checked): safe as a literal */
	snprintf(rlit, sizeof(rlit), ef_recipe_id_valid(recipe) ? "'%s'" : "NULL::text", recipe);
	if (m->emb_model)
		ns += (size_t)snprintf(sets + ns, sizeof(sets) - ns, "{model} = {mlit}");
	if (m->emb_dim)
		ns += (size_t)snprintf(sets + ns, sizeof(sets) - ns, "%s{dim} = {dlit}",
				       ns ? ", " : "");
	if (m->emb_hash)
		ns += (size_t)snprintf(sets + ns, sizeof(sets) - ns, "%s{hash} = %s", ns ? ", " : "",
				       sc->hash_is_text ? "encode(a.h, 'hex')" : "a.h");
	if (sc->recipe_col)
		ns += (size_t)snprintf(sets + ns, sizeof(sets) - ns, "%s{recipe} = {rlit}",
				       ns ? ", " : "");
	*any = ns > 0;
	return ef_sqlvars_raw(v, "mlit", mlit) && ef_sqlvars_raw(v, "dlit", dlit) &&
	       ef_sqlvars_raw(v, "rlit", rlit) &&
	       ef_sqlvars_frag(v, "pickcols", pick) && ef_sqlvars_frag(v, "match", match) &&
	       ef_sqlvars_frag(v, "sets", ns ? sets : "{vec} = {vec}") &&
	       ef_sqlvars_frag(v, "target", sep ? "{embeddings}" : "{chunks}") &&
	       ef_sqlvars_frag(v, "cand", cand_frag);
}

static ef_status counts(struct ef_life *l, const char *const *p, struct ef_adopt_result *res,
			struct ef_error *err)
{
	long long *f[] = { &res->chunks, &res->nulls, &res->vectors, &res->unrecorded,
			   &res->recorded_same, &res->recorded_other, &res->wrong_dim,
			   &res->adopted, &res->changed, &res->recipe_only };
	PGresult *r = ef_life_q(l, counts_tpl, 4, p, PGRES_TUPLES_OK, err);

	if (!r)
		return err->status;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		*f[i] = atoll(PQgetvalue(r, 0, (int)i));
	PQclear(r);
	r = ef_life_q(l, wrong_tpl, 4, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	for (int i = 0; i < PQntuples(r) && i < EF_ADOPT_EXAMPLES; i++) {
		snprintf(res->wrong[i].key, sizeof(res->wrong[i].key), "%s", PQgetvalue(r, i, 0));
		res->wrong[i].dim = atoi(PQgetvalue(r, i, 1));
		res->nwrong = (size_t)i + 1;
	}
	PQclear(r);
	return EF_OK;
}

/* The recorded recipe in embfill's registry of recipes, as a run registers
 * its own, so that a report can later say what these vectors' recipe was. */
static ef_status register_recipe(struct ef_life *l, struct ef_error *err)
{
	const struct ef_config *c = l->cfg;
	struct ef_recipe r = { c->doc_prefix, c->dimensions, c->truncate, c->normalize };
	char *text = ef_recipe_text(&r), *desc = ef_recipe_describe(&r);
	const char *p[3] = { c->recipe_id, desc, text };
	ef_status st = text && desc
		? ef_life_x(l, "INSERT INTO {tool}.recipes (id, description, canonical)"
			       " VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING", 3, p, NULL, err)
		: oom(err);

	free(text);
	free(desc);
	return st;
}

static ef_status usage(struct ef_error *err, const char *what, const char *hint)
{
	ef_error_set(err, EF_ERR_USAGE, "%s", what);
	return ef_error_hint(err, "%s", hint);
}

ef_status ef_coll_adopt(ef_session *s, const struct ef_adopt_opts *o, struct ef_adopt_result *res,
			struct ef_error *err)
{
	const struct ef_collsql_params pp = { .model = 2, .dim = 3, .collection = 1 };
	char dim[16], *mlit;
	const char *p[4];
	struct ef_life l;
	bool own = false;
	ef_status st;

	memset(res, 0, sizeof(*res));
	if (!o->model || !*o->model)
		return usage(err, "adopt needs the model the vectors were made with",
			     "set EMBED_MODEL, or name it: --model NAME");
	if (o->dim <= 0)
		return usage(err, "adopt needs the dimension of the vectors",
			     "set EMBED_DIM, or name it: --dim N");
	if (ef_life_open(&l, s, o->collection, err) != EF_OK)
		return err->status;
	ef_sqlvars_free(&l.v);
	if (!ef_collsql_vars(&l.v, l.db, &l.cfg->map, &l.sc, &pp, true, err)) {
		ef_life_close(&l);
		return err->status;
	}
	if (!(mlit = ef_db_quote_literal(l.db, o->model, err))) {
		ef_life_close(&l);
		return err->status;
	}
	if (!own_frags(&l.v, &l.cfg->map, &l.sc, mlit, o->dim, l.cfg->recipe_id, &own)) {
		free(mlit);
		ef_life_close(&l);
		return oom(err);
	}
	free(mlit);
	snprintf(dim, sizeof(dim), "%d", o->dim);
	p[0] = o->collection;
	p[1] = o->model;
	p[2] = dim;
	p[3] = o->force ? "t" : "f";
	res->bookkeeping = l.sc.bookkeeping;
	res->own_columns = own;
	if ((st = ef_life_begin(&l, err)) != EF_OK ||
	    (st = ef_life_lock(&l, o->collection, err)) != EF_OK ||
	    (st = counts(&l, p, res, err)) != EF_OK)
		goto out;
	if (res->chunks == 0) {
		ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" has no chunks: nothing to adopt",
			     o->collection);
		st = ef_error_hint(err, "`embfill status` lists the collections and their chunks");
		goto out;
	}
	if (o->dry_run || res->adopted == 0)
		goto out;
	if ((st = ef_life_x(&l, pick_tpl, 4, p, NULL, err)) != EF_OK)
		goto out;
	if (l.sc.bookkeeping && (st = ef_life_x(&l, book_tpl, 3, p, NULL, err)) != EF_OK)
		goto out;
	if (own && (st = ef_life_x(&l, own_tpl, 0, NULL, NULL, err)) != EF_OK)
		goto out;
	if ((st = register_recipe(&l, err)) != EF_OK)
		goto out;
	if ((st = ef_life_commit(&l, true, err)) != EF_OK)
		goto out;
	res->written = true;
out:
	ef_life_close(&l);
	return st;
}
