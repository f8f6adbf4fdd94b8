/*
 * testdb.h - fixtures on the real servers that tests/integration/run.sh
 * started: PostgreSQL 15 (real[] vectors, or pgvector when the machine has
 * it installed: test_pgvector() says) and PGlite (pgvector).
 *
 * Every helper opens a connection, does its work and closes it again:
 * PGlite's socket server takes one connection at a time, and the embfill
 * process under test needs it too.
 */
#ifndef EMBFILL_TESTS_TESTDB_H
#define EMBFILL_TESTS_TESTDB_H

#include <stdbool.h>

enum backend { BACKEND_PG, BACKEND_PGLITE };

/* The backend's connection string; fails the test when it is not set. */
const char *test_dsn(enum backend b);
const char *backend_name(enum backend b);

/* Runs SQL (several statements allowed); fails the test on error. */
void sql_exec(enum backend b, const char *sql);
/* Runs SQL, returns the SQLSTATE of its error or "" when it succeeded. */
char *sql_try(enum backend b, const char *sql);
/* First column of the first row as a number; fails the test on error. */
long long sql_ll(enum backend b, const char *sql);

/* First column of the first row as text (caller frees); fails on error. */
char *sql_text(enum backend b, const char *sql);

/* Whether the server can create pgvector's extension: PGlite always, the
 * system PostgreSQL when pgvector is installed into it. */
bool test_pgvector(enum backend b);

/* A name unique to this test process: prefix_<pid>_<n>. Caller frees. */
char *unique_name(const char *prefix);

/* A temporary directory for this test (under $EF_TEST_TMP). Caller frees. */
char *test_tmpdir(void);

/* Writes text to dir/name; returns the path (caller frees). */
char *write_file(const char *dir, const char *name, const char *text);

#endif
