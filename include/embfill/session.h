/*
 * session.h - one database session, opened once and set up once.
 *
 * Every core call that reads or writes the collection's tables takes a
 * session, the way every curl call takes an easy handle: the connection,
 * its encoding, the discovery of the mapped tables and what it found are
 * made in one place, so no command can open the database another way.
 * A session belongs to the thread that opened it; the run's worker thread
 * opens its own.
 *
 * A collection can keep its vectors in an embedding table of its own (a
 * new collection of another dimension, see registry.h): core calls look
 * at a collection through its view, which the registry resolves and the
 * session keeps, so front ends never swap mappings themselves.
 */
#ifndef EMBFILL_SESSION_H
#define EMBFILL_SESSION_H

#include <stdbool.h>

#include "embfill/check.h"
#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/settings.h"

typedef struct ef_session ef_session;

/*
 * Connects (cfg->dsn, else libpq's PG* variables), sets the client
 * encoding to UTF8 and discovers the tables cfg's mapping names.  Missing
 * tables are not an error here (see ef_session_require); a database that
 * cannot be reached or read is (EF_ERR_DB).  cfg is borrowed and must
 * outlive the session.
 */
ef_status ef_session_open(const struct ef_config *cfg, ef_session **out, struct ef_error *err);
/* The same, the connection given up after timeout_s (ef_db_connect_within). */
ef_status ef_session_open_within(const struct ef_config *cfg, int timeout_s, ef_session **out,
				 struct ef_error *err);
void ef_session_close(ef_session *s);

ef_db *ef_session_db(ef_session *s);
const struct ef_config *ef_session_config(const ef_session *s);
/* What discovery found of the mapping's tables, and its findings (each
 * with a hint), as `schema check` lists them. */
const struct ef_schema *ef_session_schema(const ef_session *s);
const struct ef_checklist *ef_session_findings(const ef_session *s);

/* Discovers the tables again (after `schema init` created them) and
 * forgets every view. */
ef_status ef_session_rediscover(ef_session *s, struct ef_error *err);

enum ef_need {
	EF_NEED_TABLES = 1u << 0, /* the chunk and embedding tables usable as mapped */
	EF_NEED_TOOL = 1u << 1,   /* embfill's own tables, at this build's version */
	EF_NEED_WRITE = 1u << 2,  /* a chunk key a primary key or unique index guarantees:
				     without one a write could land in several rows */
};

/*
 * EF_OK when what need asks for is there; else EF_ERR_DB with what is
 * missing and the command that fixes it for this mapping.
 */
ef_status ef_session_require(ef_session *s, unsigned need, struct ef_error *err);

/* How a core call sees one collection: the settings with its own
 * embedding table when it has one, and that table's schema.  Borrowed
 * from the session; valid until the session closes or forgets its views. */
struct ef_view {
	const char *collection;
	const struct ef_config *cfg;
	const struct ef_schema *sc;
	const char *own_table;   /* NULL: the mapping's embedding table */
};

/* Views are resolved again after a change of the registry (a new table,
 * a swap, a rollback). */
void ef_session_forget_views(ef_session *s);

#endif
