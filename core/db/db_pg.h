/*
 * db_pg.h - libpq access for core modules only (never included by tui/).
 */
#ifndef EMBFILL_CORE_DB_PG_H
#define EMBFILL_CORE_DB_PG_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "embfill/db.h"

PGconn *ef_db_pg(ef_db *db);

/*
 * Runs sql with text parameters (values may be NULL for SQL NULL) and
 * returns the result when its status is expect; otherwise NULL with err
 * filled from the server's message, detail and hint (EF_ERR_DB).
 * The caller PQclear()s the result.
 */
PGresult *ef_db_query(ef_db *db, const char *sql, int nparams, const char *const *params,
		      ExecStatusType expect, struct ef_error *err);

/* Fills err from a failed result or, when res is NULL, the connection. */
ef_status ef_db_fail(ef_db *db, const PGresult *res, struct ef_error *err);

/* Quotes an identifier that may be schema-qualified ("a.b" -> "a"."b").
 * Returns a newly allocated string, or NULL with err set. */
char *ef_db_quote_ident(ef_db *db, const char *name, struct ef_error *err);

/* Quotes a single identifier part (a dot is part of the name). */
char *ef_db_quote_part(ef_db *db, const char *name, struct ef_error *err);

/* Quotes a value as an SQL literal, for the few constants that must be
 * part of a statement's text (a table mode's collection name in a
 * fragment); caller frees. */
char *ef_db_quote_literal(ef_db *db, const char *value, struct ef_error *err);

/*
 * A read-only snapshot for the statements of one report (counts, then the
 * examples of what they found): REPEATABLE READ, so that every statement
 * sees the same moment, and without JIT, whose compilation of these
 * one-pass statements costs seconds and saves less.  When the connection
 * is already inside a transaction it is left as it is (*began false).
 * ef_db_snapshot_end() rolls back what ef_db_snapshot_begin() began.
 */
ef_status ef_db_snapshot_begin(ef_db *db, bool *began, struct ef_error *err);
void ef_db_snapshot_end(ef_db *db, bool began);

/*
 * Within a snapshot ef_db_snapshot_begin() began: merge joins only, for a
 * pass that joins every chunk to its embedding row by their key indexes.
 * A merge join reads each table once in key order in constant memory,
 * whatever the statistics say; right after a backfill they are older than
 * the table (autovacuum analyzes it a minute or two later), and the plans
 * chosen on them were a hash join that spilled the full embedding table to
 * disk in 128 batches, or a nested loop scanning the table it took for
 * empty once per chunk.
 */
ef_status ef_db_snapshot_merge_joins(ef_db *db, bool began, struct ef_error *err);

/* The SQLSTATE of a result, or "" */
const char *ef_db_sqlstate(const PGresult *res);

/* Value of row r, column c parsed as a long long (0 when NULL). */
long long ef_db_ll(const PGresult *res, int r, int c);

#endif
