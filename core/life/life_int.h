/*
 * life_int.h - what the files of a collection's life (lifecycle.h) share:
 * a connection with the quoted names of the mapping, transactions, the run
 * locks, and the value rows carry for a collection name.
 */
#ifndef EMBFILL_CORE_LIFE_INT_H
#define EMBFILL_CORE_LIFE_INT_H

#include <stdbool.h>

#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/settings.h"

struct ef_life {
	ef_session *s;
	const struct ef_config *cfg; /* the collection's view of the settings */
	ef_db *db;                   /* the session's */
	struct ef_schema sc;
	struct ef_sqlvars v;
	bool in_txn;
};

double ef_life_now(void);
ef_status ef_life_oom(struct ef_error *err);
/* tpl expanded with the quoted names; the result when its status is expect */
PGresult *ef_life_q(struct ef_life *l, const char *tpl, int n, const char *const *p,
		 ExecStatusType expect, struct ef_error *err);
/* a statement without rows; *affected (may be NULL) gets its row count */
ef_status ef_life_x(struct ef_life *l, const char *tpl, int n, const char *const *p,
		 long long *affected, struct ef_error *err);
/* on the session; with coll, the mapping is that collection's view */
ef_status ef_life_open(struct ef_life *l, ef_session *s, const char *coll, struct ef_error *err);
void ef_life_close(struct ef_life *l);
void ef_life_analyze(struct ef_life *l);
ef_status ef_life_begin(struct ef_life *l, struct ef_error *err);
ef_status ef_life_commit(struct ef_life *l, bool analyze, struct ef_error *err);
/* the run lock of a collection, for this transaction; EF_ERR_BUSY if taken */
ef_status ef_life_lock(struct ef_life *l, const char *name, struct ef_error *err);
/* the name, or in lookup mode its key (*out NULL when not in the table) */
ef_status ef_life_value(struct ef_life *l, const char *name, char **out, struct ef_error *err);
ef_status ef_life_lookup_missing(struct ef_life *l, const char *name, struct ef_error *err);
/* EF_ERR_USAGE for what (a new collection, a swap) in table mode, where
 * the table is the only collection. */
ef_status ef_life_one_table(const struct ef_config *cfg, const char *what, struct ef_error *err);
/* Adds collection name to the lookup table; *value is its new key. */
ef_status ef_life_add_lookup(struct ef_life *l, const char *name, char **value,
			     struct ef_error *err);
/* documents and chunks that carry a collection value */
ef_status ef_life_holds(struct ef_life *l, const char *value, long long *docs, long long *chunks,
		     struct ef_error *err);

#endif
