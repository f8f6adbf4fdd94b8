/*
 * db.c - the connection, its errors, and identifier quoting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/db/db_pg.h"
#include "embfill/redact.h"
#include "embfill/strbuf.h"

struct ef_db {
	PGconn *conn;
};

/* NOTICEs ("relation already exists, skipping") would land on the terminal,
 * under curses too; what matters reaches the operator through results. */
static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* libpq's messages end in a newline and may run over several lines,
 * each continuation indented ("...unexpectedly\n\tThis probably means...");
 * an error is one line: the trailing newlines go, and each line break with
 * the blanks around it becomes one space. */
static void trim_newline(char *s)
{
	size_t n = strlen(s), o = 0;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\n' && s[i] != '\r') {
			s[o++] = s[i];
			continue;
		}
		while (o > 0 && (s[o - 1] == ' ' || s[o - 1] == '\t'))
			o--;
		while (i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\t' || s[i + 1] == '\n' ||
				     s[i + 1] == '\r'))
			i++;
		s[o++] = ' ';
	}
	s[o] = '\0';
}

ef_status ef_db_connect(const char *dsn, ef_db **out, struct ef_error *err)
{
	return ef_db_connect_within(dsn, 0, out, err);
}

ef_status ef_db_connect_within(const char *dsn, int timeout_s, ef_db **out,
			       struct ef_error *err)
{
	char timeout[16];
	const char *kw[] = { "dbname", "fallback_application_name", "connect_timeout", NULL };
	const char *val[] = { dsn && *dsn ? dsn : NULL, "embfill", timeout, NULL };
	ef_db *db;
	char *shown, *why;

	snprintf(timeout, sizeof(timeout), "%d", timeout_s);
	if (timeout_s <= 0)
		kw[2] = val[2] = NULL;
	*out = NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		return ef_error_oom(err, NULL);
	/* A server that closes a new connection before the start-up finished
	 * (a single-connection proxy still tearing down the previous session,
	 * a pooler at its limit) usually takes the next one: retry briefly. */
	for (int attempt = 0; attempt < 20; attempt++) {
		if (attempt)
			PQfinish(db->conn), usleep(100 * 1000);
		db->conn = val[0] ? PQconnectdbParams(kw, val, 1)
				  : PQconnectdbParams(kw + 1, val + 1, 0);
		if (!db->conn || PQstatus(db->conn) == CONNECTION_OK ||
		    !strstr(PQerrorMessage(db->conn), "closed the connection unexpectedly"))
			break;
	}
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		shown = ef_redact_dsn(dsn);
		why = ef_redact(db->conn ? PQerrorMessage(db->conn) : "out of memory");
		if (why)
			trim_newline(why);
		ef_error_set(err, EF_ERR_DB, "cannot connect to the database (%s): %s",
			     shown ? shown : "?", why ? why : "?");
		free(shown);
		free(why);
		ef_db_close(db);
		return ef_error_hint(err, "check --dsn, DATABASE_URL or the PG* variables; "
					  "`embfill doctor` shows where each setting came from");
	}
	PQsetNoticeProcessor(db->conn, quiet_notices, NULL);
	*out = db;
	return EF_OK;
}

void ef_db_close(ef_db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	free(db);
}

PGconn *ef_db_pg(ef_db *db)
{
	return db->conn;
}

const char *ef_db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

ef_status ef_db_fail(ef_db *db, const PGresult *res, struct ef_error *err)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	char *msg;

	if (!primary)
		primary = PQerrorMessage(db->conn);
	msg = ef_redact(primary);
	if (msg)
		trim_newline(msg);
	if (detail)
		ef_error_set(err, EF_ERR_DB, "database: %s (%s)", msg ? msg : "?", detail);
	else
		ef_error_set(err, EF_ERR_DB, "database: %s", msg ? msg : "?");
	free(msg);
	err->hint[0] = '\0';
	if (hint)
		ef_error_hint(err, "%s", hint);
	return EF_ERR_DB;
}

PGresult *ef_db_query(ef_db *db, const char *sql, int nparams, const char *const *params,
		      ExecStatusType expect, struct ef_error *err)
{
	PGresult *res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (res && PQresultStatus(res) == expect)
		return res;
	ef_db_fail(db, res, err);
	PQclear(res);
	return NULL;
}

/* The simple protocol, so that one call can carry several DDL statements. */
ef_status ef_db_exec(ef_db *db, const char *sql, struct ef_error *err)
{
	PGresult *res = PQexec(db->conn, sql);

	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		ef_db_fail(db, res, err);
		PQclear(res);
		return EF_ERR_DB;
	}
	PQclear(res);
	return EF_OK;
}

ef_status ef_db_snapshot_begin(ef_db *db, bool *began, struct ef_error *err)
{
	struct ef_error ignored;

	*began = false;
	if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		return EF_OK;
	if (ef_db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err) != EF_OK)
		return err->status;
	*began = true;
	/* a server without the setting (or refusing it) reads without the change */
	if (ef_db_exec(db, "SAVEPOINT nojit; SET LOCAL jit = off; RELEASE SAVEPOINT nojit",
		       &ignored) != EF_OK)
		ef_db_exec(db, "ROLLBACK TO SAVEPOINT nojit", &ignored);
	return EF_OK;
}

ef_status ef_db_snapshot_merge_joins(ef_db *db, bool began, struct ef_error *err)
{
	return began ? ef_db_exec(db, "SET LOCAL enable_hashjoin = off;"
				      " SET LOCAL enable_nestloop = off", err) : EF_OK;
}

void ef_db_snapshot_end(ef_db *db, bool began)
{
	struct ef_error ignored;

	if (began)
		ef_db_exec(db, "ROLLBACK", &ignored);
}

char *ef_db_quote_part(ef_db *db, const char *name, struct ef_error *err)
{
	char *q = PQescapeIdentifier(db->conn, name, strlen(name));
	char *ret;

	if (!q) {
		ef_error_set(err, EF_ERR_USAGE, "cannot quote the name \"%.80s\": %s", name,
			     PQerrorMessage(db->conn));
		trim_newline(err->msg);
		return NULL;
	}
	ret = strdup(q);
	PQfreemem(q);
	if (!ret)
		ef_error_oom(err, NULL);
	return ret;
}

char *ef_db_quote_literal(ef_db *db, const char *value, struct ef_error *err)
{
	char *q = PQescapeLiteral(db->conn, value, strlen(value));
	char *ret;

	if (!q) {
		ef_error_set(err, EF_ERR_USAGE, "cannot quote the value \"%.80s\": %s", value,
			     PQerrorMessage(db->conn));
		trim_newline(err->msg);
		return NULL;
	}
	ret = strdup(q);
	PQfreemem(q);
	if (!ret)
		ef_error_oom(err, NULL);
	return ret;
}

char *ef_db_quote_ident(ef_db *db, const char *name, struct ef_error *err)
{
	const char *dot = strchr(name, '.');
	char *schema, *a, *b, *ret;

	if (!dot)
		return ef_db_quote_part(db, name, err);
	schema = strndup(name, (size_t)(dot - name));
	if (!schema) {
		ef_error_oom(err, NULL);
		return NULL;
	}
	a = ef_db_quote_part(db, schema, err);
	b = a ? ef_db_quote_part(db, dot + 1, err) : NULL;
	free(schema);
	ret = NULL;
	if (a && b && asprintf(&ret, "%s.%s", a, b) < 0)
		ret = NULL;
	free(a);
	free(b);
	return ret;
}

long long ef_db_ll(const PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		return 0;
	return strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static void copy_field(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

ef_status ef_db_info(ef_db *db, struct ef_db_info *info, struct ef_error *err)
{
	static const char sql[] =
		"SELECT current_setting('server_version'), current_database(), current_user,"
		" (SELECT extversion FROM pg_extension WHERE extname = 'vector'),"
		" EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector'),"
		" EXISTS (SELECT 1 FROM pg_type t JOIN pg_depend d ON d.objid = t.oid"
		"  JOIN pg_extension x ON x.oid = d.refobjid"
		"  WHERE x.extname = 'vector' AND t.typname = 'halfvec')";
	PGresult *res;

	memset(info, 0, sizeof(*info));
	res = ef_db_query(db, sql, 0, NULL, PGRES_TUPLES_OK, err);
	if (!res)
		return err->status;
	copy_field(info->server_version, sizeof(info->server_version), PQgetvalue(res, 0, 0));
	info->server_version[strcspn(info->server_version, " ")] = '\0';
	copy_field(info->database, sizeof(info->database), PQgetvalue(res, 0, 1));
	copy_field(info->user, sizeof(info->user), PQgetvalue(res, 0, 2));
	info->vector_installed = !PQgetisnull(res, 0, 3);
	copy_field(info->vector_version, sizeof(info->vector_version), PQgetvalue(res, 0, 3));
	info->vector_available = info->vector_installed || strcmp(PQgetvalue(res, 0, 4), "t") == 0;
	info->halfvec = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
	PQclear(res);
	info->server_num = PQserverVersion(db->conn);
	copy_field(info->host, sizeof(info->host), PQhost(db->conn));
	copy_field(info->port, sizeof(info->port), PQport(db->conn));
	return EF_OK;
}
