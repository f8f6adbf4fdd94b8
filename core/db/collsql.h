/*
 * collsql.h - SQL fragments that say which rows belong to a collection,
 * what its chunks' keys are, and where each vector's record lives.
 *
 * status, verify, spot-check, the run and a collection's life must agree
 * on what "the chunks of acme", "acme's vector" and "stale" mean in every
 * layout, collection mode, key and vector type, so the fragments live here
 * once.  They are sqltpl variables: identifiers quoted by libpq, values
 * bound as parameters (the numbers of the model, dimension and collection
 * parameters are the caller's, struct ef_collsql_params).
 *
 * Aliases: c = the chunk table, e = the embedding table (separate layout),
 * l = the lookup table (lookup mode), b = embfill's bookkeeping of vectors
 * (when the table has no column for the model or hash), q = quarantine.
 *
 * Identifiers: {chunks} {embeddings} {lookup} {documents} {tool} {content}
 * {ccoll} {cdoc} {cidx} {ecoll} {model} {hash} {vec} {dim} {at} {run}
 * {lkey} {lname} {doc_id} {doc_coll} {title} {source} {body}, the key
 * columns {ck1} {ck2} and {ek1} {ek2}, and {cid} {echunk} for the first of
 * each.  Names the settings leave empty stay unset.
 *
 * Fragments:
 *   {ckey}     c's key columns, "c.a, c.b": ORDER BY and row comparisons
 *   {ckeyt}    the key as text[] ("ARRAY[c.a::text, c.b::text]"): how embfill's
 *              own tables (bookkeeping, quarantine, backups, checkpoints) hold it
 *   {ckeyd}    the key as one text for a report ("7" or "7/2")
 *   {ekeyt} {ekeyd}  the same for an embedding row
 *   {cval}     the value the collection has on c's rows (its name, its lookup
 *              key, or in table mode the collection's name), as text
 *   {cname}    the collection's name for a chunk row
 *   {cjoin}    the lookup join on c ("" outside lookup mode)
 *   {cwhere}   "WHERE ..." keeping one collection (the collection parameter) or,
 *              for every collection, "WHERE true"
 *   {e}        the alias holding the vector: e, or c in the inline layout
 *   {ejoin}    c's embedding row (separate layout; by key and collection)
 *   {ejoin1}   the same as a LATERAL probe returning one row (for keysets)
 *   {ename} {eljoin} {ewhere}   an embedding row's collection, seen from it
 *   {bjoin}    c's bookkeeping row ("" when the table records everything)
 *   {bval}     the bookkeeping's collection value for the collection parameter
 *   {fmodel}   the vector's model, wherever it is recorded
 *   {fhash}    the recorded content hash as lower-case hex text
 *   {chash}    the hash of the chunk's current text, hex; {chashb} the same as bytea
 *   {fat}      when the vector was made (timestamptz, may be NULL)
 *   {vdims}    the vector's dimension
 *   {stale_model} {stale_dim} {stale_content} {stale_recipe}   conditions on a row
 *              with a vector; {stale_any} any of them
 *   {frecipe}  the recorded recipe's fingerprint (NULL: not recorded)
 *   {recipe_unknown}  a vector whose recipe is not on record (made before
 *              recipes were recorded, or by another tool): not stale for that
 *   {unrecorded}  a vector whose model is not on record (taken for stale by model)
 *   {qwhere}   quarantine rows of the collection parameter
 */
#ifndef EMBFILL_CORE_COLLSQL_H
#define EMBFILL_CORE_COLLSQL_H

#include <stdbool.h>

#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/settings.h"

/* $n of the model (text), the dimension (int) and the collection (text);
 * 0 leaves the fragments that need one unset.  recipe: the fingerprint of
 * the settings' recipe (recipe.h), written into {stale_recipe} as a literal
 * (it is validated); NULL: no vector is stale by recipe. */
struct ef_collsql_params {
	int model, dim, collection;
	const char *recipe;
};

/* The usual numbering of status, verify and spot-check: $1 model, $2 dim,
 * $3 collection. */
#define EF_COLLSQL_PARAMS { 1, 2, 3, NULL }

/*
 * Sets every identifier and fragment above in v for the mapping m and
 * what discovery found (sc).  one: the filters keep one collection (the
 * collection parameter); else every collection.  False with err set on
 * failure.
 */
bool ef_collsql_vars(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m,
		     const struct ef_schema *sc, const struct ef_collsql_params *p, bool one,
		     struct ef_error *err);

/* Only the identifiers (for statements that need no fragment). */
bool ef_collsql_quote(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m,
		      struct ef_error *err);

/* Whether a pass over a collection's chunks is best made by merge joins
 * only (ef_db_snapshot_merge_joins): chunks and embedding rows in tables of
 * their own, matched by key and collection column, with nothing else to
 * join but the chunks (no lookup table, no bookkeeping rows, no
 * quarantine: their few rows or keys without an index are best hashed). */
bool ef_collsql_merge_pass(const struct ef_mapping *m, const struct ef_schema *sc, bool quarantine);


/* The dimension the schema declares for every vector (vector(N) or a
 * validated CHECK), or 0 when only the vectors themselves can tell. */
int ef_collsql_fixed_dim(const struct ef_schema *sc);

/* The key's columns cast from one text[] parameter $n, for a row
 * comparison with {ckey}: "($n::text[])[1]::bigint, ($n::text[])[2]::int".
 * Caller frees. */
char *ef_collsql_key_from_param(const struct ef_mapping *m, const struct ef_schema *sc, int n,
				const char *array_expr);

/*
 * SQL text made safe to print on one line: every run of white space and
 * control characters (C0, DEL and C1, which a terminal may obey) becomes
 * one blank.  Done in the database so that the cut with left() counts
 * characters, never splitting a UTF-8 sequence.
 */
#define EF_SQL_ONELINE(expr) \
	"btrim(regexp_replace(" expr ", '[[:space:][:cntrl:]\\u0080-\\u009f]+', ' ', 'g'))"

/*
 * Runs tpl, whose only placeholder is {tool} (embfill's schema, quoted),
 * with text parameters; *out is the result (PGRES_TUPLES_OK), which the
 * caller clears.
 */
ef_status ef_collsql_tool_query(ef_db *db, const struct ef_config *cfg, const char *tpl, int n,
				const char *const *params, PGresult **out, struct ef_error *err);

/* The collection's name as one shell word, for hints that show a command
 * to paste: as it is when it is plain, else in single quotes.  Caller
 * frees; NULL when out of memory. */
char *ef_collsql_shell_word(const char *name);

/* Appends s to a PostgreSQL array literal being built in b ("{" ... "}"):
 * quoted, with quotes and backslashes escaped, so any text survives. */
struct ef_strbuf;
void ef_collsql_array_elem(struct ef_strbuf *b, const char *s);

#endif
