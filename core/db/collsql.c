/*
 * collsql.c - the collection's SQL fragments, shared by status, verify and
 * spot-check (see collsql.h for the parameters and aliases they assume).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "embfill/strbuf.h"

bool ef_collsql_quote(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m,
		      struct ef_error *err)
{
	const struct { const char *name, *ident; bool qualified; } list[] = {
		{ "chunks", m->chunks, true }, { "embeddings", m->embeddings, true },
		{ "lookup", m->lookup, true }, { "tool", m->tool_schema, false },
		{ "cid", m->chunk_id, false }, { "ccoll", m->chunk_collection, false },
		{ "content", m->chunk_content, false }, { "echunk", m->emb_chunk, false },
		{ "ecoll", m->emb_collection, false }, { "model", m->emb_model, false },
		{ "hash", m->emb_hash, false }, { "vec", m->emb_vector, false },
		{ "lkey", m->lookup_key, false }, { "lname", m->lookup_name, false },
		{ "documents", m->documents, true }, { "doc_id", m->doc_id, false },
		{ "doc_coll", m->doc_collection, false }, { "title", m->doc_title, false },
		{ "source", m->doc_source, false }, { "cdoc", m->chunk_document, false },
		{ "cidx", m->chunk_index, false }, { "at", m->emb_at, false },
		{ "body", m->doc_body, false }, { "dim", m->emb_dim, false },
		{ "run", m->emb_run, false },
	};

	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
		if (list[i].ident && !ef_sqlvars_quote(v, db, list[i].name, list[i].ident,
						       list[i].qualified, err))
			return false;
	return true;
}

bool ef_collsql_frags(struct ef_sqlvars *v, const struct ef_mapping *m, bool one)
{
	bool lookup = m->coll_mode == EF_COLL_LOOKUP;
	bool ok = true;

	ok &= ef_sqlvars_frag(v, "cname", lookup ? "l.{lname}" : "c.{ccoll}");
	ok &= ef_sqlvars_frag(v, "cjoin", lookup ? "JOIN {lookup} l ON l.{lkey} = c.{ccoll}" : "");
	ok &= ef_sqlvars_frag(v, "cwhere", !one ? "" : lookup ? "WHERE l.{lname} = $3"
							       : "WHERE c.{ccoll} = $3");
	ok &= ef_sqlvars_frag(v, "ename", lookup ? "coalesce(l.{lname}::text, '?' || e.{ecoll}::text)"
						 : "e.{ecoll}");
	ok &= ef_sqlvars_frag(v, "eljoin",
			      lookup ? "LEFT JOIN {lookup} l ON l.{lkey} = e.{ecoll}" : "");
	ok &= ef_sqlvars_frag(v, "ewhere", !one ? "" : lookup ? "WHERE l.{lname} = $3"
							       : "WHERE e.{ecoll} = $3");
	ok &= ef_sqlvars_raw(v, "qwhere", one ? "WHERE collection = $3" : "");
	return ok;
}

bool ef_collsql_layout(struct ef_sqlvars *v, const struct ef_mapping *m)
{
	bool separate = m->layout == EF_LAYOUT_SEPARATE;

	return ef_sqlvars_raw(v, "e", separate ? "e" : "c") &&
	       ef_sqlvars_frag(v, "ejoin", separate ? "LEFT JOIN {embeddings} e ON e.{echunk} = "
						      "c.{cid} AND e.{ecoll} = c.{ccoll}" : "");
}

int ef_collsql_fixed_dim(const struct ef_schema *sc)
{
	bool declared = strcmp(sc->dim_source, "type modifier") == 0 ||
			strcmp(sc->dim_source, "CHECK constraint") == 0;

	return sc->dim > 0 && !sc->mixed_dims && declared ? sc->dim : 0;
}

bool ef_collsql_stale(struct ef_sqlvars *v, const struct ef_schema *sc)
{
	const char *content = sc->hash_is_text
		? "lower({e}.{hash}) IS DISTINCT FROM"
		  " encode(sha256(convert_to(c.{content}, 'UTF8')), 'hex')"
		: "{e}.{hash} IS DISTINCT FROM sha256(convert_to(c.{content}, 'UTF8'))";
	char fixed[32];

	/* a dimension the schema declares is a constant: no vector is read
	 * (detoasted) just to learn its length */
	snprintf(fixed, sizeof(fixed), "%d", ef_collsql_fixed_dim(sc));
	return ef_sqlvars_frag(v, "vdims", ef_collsql_fixed_dim(sc) ? fixed
					   : sc->vec_type == EF_VEC_PGVECTOR ? "vector_dims({e}.{vec})"
									     : "cardinality({e}.{vec})") &&
	       ef_sqlvars_frag(v, "stale_model", "{e}.{model} IS DISTINCT FROM $1::text") &&
	       ef_sqlvars_frag(v, "stale_dim", "{vdims} IS DISTINCT FROM $2::int") &&
	       ef_sqlvars_frag(v, "stale_content", content);
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
