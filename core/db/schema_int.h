/*
 * schema_int.h - catalog look-ups shared by the schema, init and scan code.
 */
#ifndef EMBFILL_CORE_SCHEMA_INT_H
#define EMBFILL_CORE_SCHEMA_INT_H

#include <stdbool.h>

#include "embfill/db.h"
#include "embfill/error.h"

struct ef_colinfo {
	char *name;
	char *type;   /* format_type() without modifier: "vector", "real[]", "bigint" */
	int typmod;
	int attnum;
	unsigned typoid;
};

struct ef_relinfo {
	bool exists;
	char oid[16];
	char *quoted;            /* "schema"."table" as given, quoted */
	struct ef_colinfo *cols;
	int ncols;
};

ef_status ef_relinfo_load(ef_db *db, const char *name, struct ef_relinfo *r,
			  struct ef_error *err);
const struct ef_colinfo *ef_relinfo_col(const struct ef_relinfo *r, const char *name);
void ef_relinfo_free(struct ef_relinfo *r);

#endif
