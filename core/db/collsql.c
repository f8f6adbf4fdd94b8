/*
 * collsql.c - the collection's SQL fragments, shared by status, verify,
 * spot-check, the run and a collection's life (see collsql.h for the
 * fragments and the aliases they assume).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "embfill/recipe.h"
#include "embfill/strbuf.h"

bool ef_collsql_quote(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m,
		      struct ef_error *err)
{
	const struct { const char *name, *ident; bool qualified; } list[] = {
		{ "chunks", m->chunks, true }, { "embeddings", m->embeddings, true },
		{ "lookup", m->lookup, true }, { "tool", m->tool_schema, false },
		{ "cid", m->chunk_key[0], false }, { "ck1", m->chunk_key[0], false },
		{ "ck2", m->chunk_key[1], false }, { "ccoll", m->chunk_collection, false },
		{ "content", m->chunk_content, false }, { "echunk", m->emb_key[0], false },
		{ "ek1", m->emb_key[0], false }, { "ek2", m->emb_key[1], false },
		{ "ecoll", m->emb_collection, false }, { "model", m->emb_model, false },
		{ "hash", m->emb_hash, false }, { "vec", m->emb_vector, false },
		{ "lkey", m->lookup_key, false }, { "lname", m->lookup_name, false },
		{ "documents", m->documents, true }, { "doc_id", m->doc_id, false },
		{ "doc_coll", m->doc_collection, false }, { "title", m->doc_title, false },
		{ "source", m->doc_source, false }, { "cdoc", m->chunk_document, false },
		{ "cidx", m->chunk_index, false }, { "at", m->emb_at, false },
		{ "body", m->doc_body, false }, { "dim", m->emb_dim, false },
		{ "run", m->emb_run, false }, { "recipe", m->emb_recipe, false },
	};

	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
		if (list[i].ident && !ef_sqlvars_quote(v, db, list[i].name, list[i].ident,
						       list[i].qualified, err))
			return false;
	return true;
}

int ef_collsql_fixed_dim(const struct ef_schema *sc)
{
	bool declared = strcmp(sc->dim_source, "type modifier") == 0 ||
			strcmp(sc->dim_source, "CHECK constraint") == 0;

	return sc->dim > 0 && !sc->mixed_dims && declared ? sc->dim : 0;
}

bool ef_collsql_merge_pass(const struct ef_mapping *m, const struct ef_schema *sc, bool quarantine)
{
	return m->layout == EF_LAYOUT_SEPARATE && m->coll_mode == EF_COLL_COLUMN &&
	       !sc->bookkeeping && !quarantine;
}

/* "$n" into buf, or "NULL" when the parameter is not bound. */
static const char *param(char *buf, size_t n, int num, const char *cast)
{
	if (num <= 0)
		snprintf(buf, n, "NULL::%s", cast);
	else
		snprintf(buf, n, "$%d::%s", num, cast);
	return buf;
}

/* Fragments with the key columns of one alias: "x.k1, x.k2" and friends. */
static bool key_frags(struct ef_sqlvars *v, const struct ef_mapping *m)
{
	bool two = m->nkey > 1, sep = m->layout == EF_LAYOUT_SEPARATE;

	return ef_sqlvars_frag(v, "ckey", two ? "c.{ck1}, c.{ck2}" : "c.{ck1}") &&
	       ef_sqlvars_frag(v, "ckeyt", two ? "ARRAY[c.{ck1}::text, c.{ck2}::text]"
					      : "ARRAY[c.{ck1}::text]") &&
	       ef_sqlvars_frag(v, "ckeyd", two ? "(c.{ck1}::text || '/' || c.{ck2}::text)"
					      : "c.{ck1}::text") &&
	       (!sep || (ef_sqlvars_frag(v, "ekeyt", two ? "ARRAY[e.{ek1}::text, e.{ek2}::text]"
							: "ARRAY[e.{ek1}::text]") &&
			 ef_sqlvars_frag(v, "ekeyd", two ? "(e.{ek1}::text || '/' || e.{ek2}::text)"
							: "e.{ek1}::text") &&
			 ef_sqlvars_frag(v, "ekeyeq", two ? "e.{ek1} = c.{ck1} AND e.{ek2} = c.{ck2}"
							 : "e.{ek1} = c.{ck1}") &&
			 ef_sqlvars_frag(v, "xkeyeq", two ? "x.{ek1} = c.{ck1} AND x.{ek2} = c.{ck2}"
							 : "x.{ek1} = c.{ck1}")));
}

/* The collection in each mode; lit is the table mode's name as a literal. */
static bool coll_frags(struct ef_sqlvars *v, const struct ef_mapping *m, const char *lit,
		       int coll, bool one)
{
	char c[32], w[160], bv[160];
	bool sep = m->layout == EF_LAYOUT_SEPARATE, ok = true;

	snprintf(c, sizeof(c), "$%d", coll > 0 ? coll : 1);
	switch (m->coll_mode) {
	case EF_COLL_TABLE:
		snprintf(w, sizeof(w), "WHERE %s = %s::text", lit, c);
		ok &= ef_sqlvars_raw(v, "cval", lit) && ef_sqlvars_raw(v, "cname", lit) &&
		      ef_sqlvars_raw(v, "ename", lit) && ef_sqlvars_raw(v, "bval", lit) &&
		      ef_sqlvars_raw(v, "cjoin", "") && ef_sqlvars_raw(v, "eljoin", "") &&
		      ef_sqlvars_raw(v, "cwhere", one ? w : "WHERE true") &&
		      ef_sqlvars_raw(v, "ewhere", one ? w : "WHERE true") &&
		      ef_sqlvars_raw(v, "ecollmatch", "") && ef_sqlvars_raw(v, "xcollmatch", "");
		return ok;
	case EF_COLL_LOOKUP:
		snprintf(w, sizeof(w), "WHERE l.{lname} = %s", c);
		ok &= ef_sqlvars_frag(v, "cname", "l.{lname}") &&
		      ef_sqlvars_frag(v, "cjoin", "JOIN {lookup} l ON l.{lkey} = c.{ccoll}") &&
		      ef_sqlvars_frag(v, "ename", "coalesce(l.{lname}::text, '?' || e.{ecoll}::text)") &&
		      ef_sqlvars_frag(v, "eljoin", "LEFT JOIN {lookup} l ON l.{lkey} = e.{ecoll}");
		snprintf(bv, sizeof(bv), "(SELECT {lkey}::text FROM {lookup} WHERE {lname} = %s)", c);
		ok &= ef_sqlvars_frag(v, "bval", bv);
		snprintf(w, sizeof(w), "WHERE l.{lname} = %s", c);
		break;
	default:
		snprintf(w, sizeof(w), "%s::text", c);
		ok &= ef_sqlvars_frag(v, "cname", "c.{ccoll}") && ef_sqlvars_raw(v, "cjoin", "") &&
		      ef_sqlvars_frag(v, "ename", "e.{ecoll}") && ef_sqlvars_raw(v, "eljoin", "") &&
		      ef_sqlvars_raw(v, "bval", w);
		break;
	}
	ok &= ef_sqlvars_frag(v, "cval", "c.{ccoll}::text");
	if (m->coll_mode == EF_COLL_LOOKUP) {
		ok &= ef_sqlvars_frag(v, "cwhere", one ? w : "WHERE true");
		ok &= ef_sqlvars_frag(v, "ewhere", one ? w : "WHERE true");
	} else {
		char cw[64], ew[64];

		snprintf(cw, sizeof(cw), "WHERE c.{ccoll} = %s", c);
		snprintf(ew, sizeof(ew), "WHERE e.{ecoll} = %s", c);
		ok &= ef_sqlvars_frag(v, "cwhere", one ? cw : "WHERE true");
		ok &= ef_sqlvars_frag(v, "ewhere", one && sep ? ew : "WHERE true");
	}
	ok &= ef_sqlvars_frag(v, "ecollmatch", sep && m->emb_collection
			      ? " AND e.{ecoll} = c.{ccoll}" : "");
	ok &= ef_sqlvars_frag(v, "xcollmatch", sep && m->emb_collection
			      ? " AND x.{ecoll} = c.{ccoll}" : "");
	return ok;
}

static bool layout_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
			 const struct ef_schema *sc)
{
	bool sep = m->layout == EF_LAYOUT_SEPARATE;

	return ef_sqlvars_raw(v, "e", sep ? "e" : "c") &&
	       ef_sqlvars_frag(v, "ejoin", sep ? "LEFT JOIN {embeddings} e ON {ekeyeq}{ecollmatch}"
					       : "") &&
	       ef_sqlvars_frag(v, "ejoin1", sep ? "LEFT JOIN LATERAL (SELECT * FROM {embeddings} x"
						 " WHERE {xkeyeq}{xcollmatch} LIMIT 1) e ON true" : "") &&
	       ef_sqlvars_frag(v, "bjoin", sc->bookkeeping
			       ? "LEFT JOIN {tool}.vectors b ON b.collection = {cval}"
				 " AND b.chunk_key = {ckeyt}" : "");
}

/* The recipe of each vector, from its column or from bookkeeping; a vector
 * with none recorded is not stale for it (an upgrade must not turn a whole
 * collection stale), and is counted apart. */
static bool recipe_frags(struct ef_sqlvars *v, const struct ef_schema *sc,
			 const struct ef_collsql_params *p)
{
	char buf[160];

	if (p->recipe && ef_recipe_id_valid(p->recipe))
		snprintf(buf, sizeof(buf), "{frecipe} IS NOT NULL AND {frecipe} <> '%s'",
			 p->recipe);
	else
		snprintf(buf, sizeof(buf), "false");
	return ef_sqlvars_frag(v, "frecipe", sc->recipe_col ? "{e}.{recipe}::text"
					     : sc->bookkeeping ? "b.recipe" : "NULL::text") &&
	       ef_sqlvars_frag(v, "stale_recipe", buf) &&
	       ef_sqlvars_frag(v, "recipe_unknown", "{frecipe} IS NULL") &&
	       ef_sqlvars_frag(v, "stale_any", "({stale_model}) OR ({stale_dim}) OR "
				"({stale_content}) OR ({stale_recipe})");
}

/* What is recorded of each vector, from its column or from bookkeeping. */
static bool record_frags(struct ef_sqlvars *v, const struct ef_mapping *m,
			 const struct ef_schema *sc, const struct ef_collsql_params *p)
{
	char model[32], dim[32], fixed[64], buf[160];
	int fd = ef_collsql_fixed_dim(sc);
	bool ok;

	ok = ef_sqlvars_frag(v, "fmodel", m->emb_model ? "{e}.{model}::text" : "b.model") &&
	     /* the text's bytes: as UTF-8, or in a SQL_ASCII database as they are
	      * (the same bytes for a valid text, and no error for another) */
	     ef_sqlvars_frag(v, "chashb", sc->sql_ascii
			     ? "sha256(convert_to(c.{content}, 'SQL_ASCII'))"
			     : "sha256(convert_to(c.{content}, 'UTF8'))") &&
	     ef_sqlvars_frag(v, "chash", "encode({chashb}, 'hex')") &&
	     ef_sqlvars_frag(v, "fhash", !m->emb_hash ? "encode(b.content_sha256, 'hex')"
				 : sc->hash_is_text ? "lower({e}.{hash}::text)"
						    : "encode({e}.{hash}, 'hex')") &&
	     ef_sqlvars_frag(v, "fat", m->emb_at ? "{e}.{at}" : sc->bookkeeping ? "b.embedded_at"
						  : "NULL::timestamptz");
	snprintf(fixed, sizeof(fixed), "%d", fd);
	ok = ok && ef_sqlvars_frag(v, "vdims", fd ? fixed : sc->vec_type == EF_VEC_PGVECTOR ||
					 sc->vec_type == EF_VEC_HALFVEC ? "vector_dims({e}.{vec})"
						     : "cardinality({e}.{vec})");
	param(model, sizeof(model), p->model, "text");
	param(dim, sizeof(dim), p->dim, "int");
	snprintf(buf, sizeof(buf), "{fmodel} IS DISTINCT FROM %s", model);
	ok = ok && ef_sqlvars_frag(v, "stale_model", buf);
	if (fd)
		snprintf(buf, sizeof(buf), "%d IS DISTINCT FROM %s", fd, dim);
	else if (m->emb_dim)
		snprintf(buf, sizeof(buf), "{e}.{dim} IS DISTINCT FROM %s", dim);
	else
		snprintf(buf, sizeof(buf), "{vdims} IS DISTINCT FROM %s", dim);
	return ok && ef_sqlvars_frag(v, "stale_dim", buf) &&
	       ef_sqlvars_frag(v, "stale_content",
			       !m->emb_hash ? "b.content_sha256 IS DISTINCT FROM"
					      " {chashb}"
			       : sc->hash_is_text ? "lower({e}.{hash}::text) IS DISTINCT FROM {chash}"
			       : "{e}.{hash} IS DISTINCT FROM {chashb}") &&
	       ef_sqlvars_frag(v, "unrecorded", "{fmodel} IS NULL") &&
	       recipe_frags(v, sc, p);
}

bool ef_collsql_vars(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m,
		     const struct ef_schema *sc, const struct ef_collsql_params *p, bool one,
		     struct ef_error *err)
{
	char *lit = NULL, q[64];
	bool ok;

	if (!ef_collsql_quote(v, db, m, err))
		return false;
	if (m->coll_mode == EF_COLL_TABLE && !(lit = ef_db_quote_literal(db, m->coll_name, err)))
		return false;
	q[0] = '\0';
	if (one)
		snprintf(q, sizeof(q), "WHERE collection = $%d", p->collection);
	ok = key_frags(v, m) && coll_frags(v, m, lit, p->collection, one) &&
	     layout_frags(v, m, sc) && record_frags(v, m, sc, p) && ef_sqlvars_raw(v, "qwhere", q);
	free(lit);
	if (!ok && err->status == EF_OK)
		ef_error_oom(err, NULL);
	return ok;
}

char *ef_collsql_key_from_param(const struct ef_mapping *m, const struct ef_schema *sc, int n,
				const char *array_expr)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	for (int i = 0; i < m->nkey; i++) {
		if (array_expr)
			ef_strbuf_addf(&b, "%s(%s)[%d]::%s", i ? ", " : "", array_expr, i + 1,
				       sc->key_type[i]);
		else
			ef_strbuf_addf(&b, "%s($%d::text[])[%d]::%s", i ? ", " : "", n, i + 1,
				       sc->key_type[i]);
	}
	return ef_strbuf_take(&b);
}

ef_status ef_collsql_tool_query(ef_db *db, const struct ef_config *cfg, const char *tpl, int n,
				const char *const *params, PGresult **out, struct ef_error *err)
{
	struct ef_sqlvars v = { .n = 0 };
	char *sql = NULL;

	*out = NULL;
	if (ef_sqlvars_quote(&v, db, "tool", cfg->map.tool_schema, false, err))
		sql = ef_sqlvars_expand(&v, tpl);
	ef_sqlvars_free(&v);
	if (!sql)
		return err->status ? err->status : ef_error_oom(err, NULL);
	*out = ef_db_query(db, sql, n, params, PGRES_TUPLES_OK, err);
	free(sql);
	return *out ? EF_OK : err->status;
}

char *ef_collsql_shell_word(const char *name)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	ef_strbuf_add_shell_word(&b, name);
	return ef_strbuf_take(&b);
}

void ef_collsql_array_elem(struct ef_strbuf *b, const char *s)
{
	if (b->len && ef_strbuf_str(b)[b->len - 1] != '{')
		ef_strbuf_add(b, ",");
	ef_strbuf_add(b, "\"");
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			ef_strbuf_add(b, "\\");
		ef_strbuf_addn(b, p, 1);
	}
	ef_strbuf_add(b, "\"");
}
