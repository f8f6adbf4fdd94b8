/*
 * collsql.h - SQL fragments that say which rows belong to a collection.
 *
 * status, verify and spot-check must agree on what "the chunks of acme",
 * "acme's vector" and "stale" mean in every layout and collection mode, so
 * the fragments live here once.  They are sqltpl variables: identifiers
 * quoted by libpq, values bound as parameters.  The parameters are fixed
 * for every statement that uses these fragments:
 *   $1  EMBED_MODEL (text)     $2  EMBED_DIM (int)     $3  the collection
 * Aliases: c = the chunk table, e = the embedding table (separate layout),
 * l = the lookup table (lookup mode), q = embfill's quarantine.
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

/*
 * Quotes the mapping's identifiers into v: {chunks} {embeddings} {lookup}
 * {documents} {tool} and the columns {cid} {ccoll} {content} {cdoc} {cidx}
 * {echunk} {ecoll} {model} {hash} {vec} {at} {lkey} {lname} {doc_id}
 * {doc_coll} {title} {source} {body} {dim} {run}.  Optional names left unset in the settings
 * (EMBEDDINGS_AT_COLUMN, the inline layout's embedding table) stay unset.
 */
bool ef_collsql_quote(struct ef_sqlvars *v, ef_db *db, const struct ef_mapping *m,
		      struct ef_error *err);

/*
 * The collection in either mode, for every collection or (one) for $3:
 *   {cname}  the chunk's collection name      {cjoin} {cwhere}  on c
 *   {ename}  the name an embedding row is filed under
 *   {eljoin} {ewhere}                          on e, separate layout
 *   {qwhere}                                   on q
 * In lookup mode the filter goes through the lookup table's name, so the
 * planner resolves the key once and walks the chunk index.
 */
bool ef_collsql_frags(struct ef_sqlvars *v, const struct ef_mapping *m, bool one);

/*
 * Where the vector lives: {e} is the alias that holds the embedding
 * columns (e, or c in the inline layout) and {ejoin} joins a chunk to its
 * embedding row by chunk key AND collection, so that a vector filed under
 * another tenant never counts as this tenant's.  Needs ef_collsql_quote.
 */
bool ef_collsql_layout(struct ef_sqlvars *v, const struct ef_mapping *m);

/*
 * {vdims} the vector's dimension; {stale_model} {stale_dim} {stale_content}
 * conditions on a row with a vector, against $1 and $2.  The content check
 * hashes the chunk text in the database, the same bytes embfill hashes when
 * it embeds.  Needs ef_collsql_layout first ({e} is expanded here).
 */
bool ef_collsql_stale(struct ef_sqlvars *v, const struct ef_schema *sc);

/* The dimension the schema declares for every vector (vector(N) or a
 * validated CHECK), or 0 when only the vectors themselves can tell. */
int ef_collsql_fixed_dim(const struct ef_schema *sc);

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

#endif
