/*
 * db.h - one PostgreSQL connection and what the operator should know of it.
 *
 * The connection string comes from --dsn / DATABASE_URL, or else libpq's PG*
 * variables and defaults.  Messages name the server, database and user,
 * never the password.
 */
#ifndef EMBFILL_DB_H
#define EMBFILL_DB_H

#include <stdbool.h>

#include "embfill/error.h"

typedef struct ef_db ef_db;

struct ef_db_info {
	char server_version[64]; /* "15.18" */
	int server_num;          /* 150018 */
	char database[128];
	char user[128];
	char host[256];          /* host name, address or socket directory */
	char port[16];
	bool vector_installed;   /* CREATE EXTENSION vector done in this database */
	bool vector_available;   /* the extension can be created */
	char vector_version[32];
	bool halfvec;            /* the installed pgvector has halfvec (0.7 and later) */
};

/* Connects; EF_ERR_DB with the server's reason when it cannot. */
ef_status ef_db_connect(const char *dsn, ef_db **out, struct ef_error *err);
/* The same, giving up after timeout_s seconds (libpq's connect_timeout,
 * over the dsn's own): for a connection beside another that a server
 * taking one connection at a time would hold until the first closes. */
ef_status ef_db_connect_within(const char *dsn, int timeout_s, ef_db **out,
			       struct ef_error *err);
void ef_db_close(ef_db *db);

/* Server version, database, user, host and the vector extension's state. */
ef_status ef_db_info(ef_db *db, struct ef_db_info *info, struct ef_error *err);

/* Runs one SQL statement without parameters or rows (DDL, SET). */
ef_status ef_db_exec(ef_db *db, const char *sql, struct ef_error *err);

#endif
