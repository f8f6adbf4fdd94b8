#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "testdb.h"

const char *test_dsn(enum backend b)
{
	const char *var = b == BACKEND_PG ? "EF_TEST_PG_DSN" : "EF_TEST_PGLITE_DSN";
	const char *v = getenv(var);

	cr_assert(v && *v, "%s is not set: run the suite through `make check` "
			   "(tests/integration/run.sh starts the servers)", var);
	return v;
}

const char *backend_name(enum backend b)
{
	return b == BACKEND_PG ? "PostgreSQL 15" : "PGlite";
}

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static PGconn *connect_or_fail(enum backend b)
{
	PGconn *c = NULL;

	/* PGlite refuses a second connection while one is closing: retry. */
	for (int i = 0; i < 50; i++) {
		c = PQconnectdb(test_dsn(b));
		if (PQstatus(c) == CONNECTION_OK) {
			PQsetNoticeProcessor(c, quiet, NULL);
			return c;
		}
		PQfinish(c);
		usleep(100 * 1000);
	}
	c = PQconnectdb(test_dsn(b));
	cr_assert(PQstatus(c) == CONNECTION_OK, "cannot connect to %s: %s", backend_name(b),
		  PQerrorMessage(c));
	return c;
}

void sql_exec(enum backend b, const char *sql)
{
	PGconn *c = connect_or_fail(b);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	cr_assert(ok, "SQL failed on %s: %s\n%.400s", backend_name(b), msg, sql);
}

char *sql_try(enum backend b, const char *sql)
{
	PGconn *c = connect_or_fail(b);
	PGresult *r = PQexec(c, sql);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	char *ret = strdup(st ? st : "");

	PQclear(r);
	PQfinish(c);
	return ret;
}

long long sql_ll(enum backend b, const char *sql)
{
	PGconn *c = connect_or_fail(b);
	PGresult *r = PQexec(c, sql);
	long long v = 0;
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
	if (ok)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	cr_assert(ok, "SQL failed on %s: %s\n%.400s", backend_name(b), msg, sql);
	return v;
}

char *sql_text(enum backend b, const char *sql)
{
	PGconn *c = connect_or_fail(b);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	char msg[1024], *v = NULL;

	snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
	if (ok)
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	cr_assert(ok, "SQL failed on %s: %s\n%.400s", backend_name(b), msg, sql);
	return v;
}

char *unique_name(const char *prefix)
{
	static int n;
	char *s = NULL;

	cr_assert(asprintf(&s, "%s_%d_%d", prefix, (int)getpid(), ++n) > 0);
	return s;
}

char *test_tmpdir(void)
{
	const char *base = getenv("EF_TEST_TMP");
	char *tpl = NULL;

	cr_assert(asprintf(&tpl, "%s/t.XXXXXX", base && *base ? base : "/tmp") > 0);
	cr_assert(mkdtemp(tpl), "mkdtemp %s failed", tpl);
	return tpl;
}

char *write_file(const char *dir, const char *name, const char *text)
{
	char *path = NULL;
	FILE *f;

	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "w");
	cr_assert(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

bool test_pgvector(enum backend b)
{
	return sql_ll(b, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") > 0;
}
