/*
 * sqltpl.h - SQL text with {name} placeholders for quoted identifiers.
 *
 * Identifiers from settings can only reach SQL through here, quoted by
 * libpq; values never do (they are bound parameters).  Keeping the SQL as
 * readable templates beats assembling it with snprintf calls.
 */
#ifndef EMBFILL_CORE_SQLTPL_H
#define EMBFILL_CORE_SQLTPL_H

#include <stdbool.h>

#include "embfill/db.h"
#include "embfill/error.h"

#define EF_SQLVARS_MAX 192

struct ef_sqlvars {
	const char *name[EF_SQLVARS_MAX];
	char *value[EF_SQLVARS_MAX];
	int n;
};

/* Takes ownership of value (freed even on failure); false when full or NULL. */
bool ef_sqlvars_set(struct ef_sqlvars *v, const char *name, char *value);
/* Sets name to a copy of constant SQL text. */
bool ef_sqlvars_raw(struct ef_sqlvars *v, const char *name, const char *sql);
/* Sets name to tpl expanded with the variables set so far: fragments are
 * expanded once, when they are defined, never again. */
bool ef_sqlvars_frag(struct ef_sqlvars *v, const char *name, const char *tpl);
/* Sets name to ident quoted (qualified: "a.b" -> "a"."b"). */
bool ef_sqlvars_quote(struct ef_sqlvars *v, ef_db *db, const char *name, const char *ident,
		      bool qualified, struct ef_error *err);
const char *ef_sqlvars_get(const struct ef_sqlvars *v, const char *name);
/* Replaces every {name} by its value in one pass; unknown names are left
 * as they are.  Caller frees. */
char *ef_sqlvars_expand(const struct ef_sqlvars *v, const char *tpl);
void ef_sqlvars_free(struct ef_sqlvars *v);

#endif
