/*
 * session_int.h - the session's insides, for the registry, which resolves
 * and keeps the views of collections in it (inside core/db only).
 */
#ifndef EMBFILL_CORE_SESSION_INT_H
#define EMBFILL_CORE_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/check.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/settings.h"

/* One resolved view: a collection's own copy of the settings, pointing at
 * its own embedding table, and that table's schema. */
struct ef_view_slot {
	char *collection;
	char *own_table;           /* NULL: the mapping's table */
	struct ef_config cfg;
	struct ef_schema sc;
};

struct ef_session {
	const struct ef_config *cfg;
	ef_db *db;
	struct ef_schema sc;
	struct ef_checklist findings;
	struct ef_view_slot **views;   /* each allocated alone: a view stays put */
	size_t nviews, capviews;
	char **own;                /* collections with a table of their own */
	bool own_loaded;
};

#endif
