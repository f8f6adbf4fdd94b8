/*
 * sqltpl.c - SQL templates whose {name} placeholders take identifiers
 * quoted by libpq (sqltpl.h); values never go through here.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "core/db/sqltpl.h"
#include "embfill/strbuf.h"

bool ef_sqlvars_set(struct ef_sqlvars *v, const char *name, char *value)
{
	if (!value || v->n == EF_SQLVARS_MAX) {
		free(value);
		return false;
	}
	v->name[v->n] = name;
	v->value[v->n++] = value;
	return true;
}

bool ef_sqlvars_raw(struct ef_sqlvars *v, const char *name, const char *sql)
{
	return ef_sqlvars_set(v, name, strdup(sql));
}

bool ef_sqlvars_quote(struct ef_sqlvars *v, ef_db *db, const char *name, const char *ident,
		      bool qualified, struct ef_error *err)
{
	char *q = qualified ? ef_db_quote_ident(db, ident, err) : ef_db_quote_part(db, ident, err);

	return q && ef_sqlvars_set(v, name, q);
}

const char *ef_sqlvars_get(const struct ef_sqlvars *v, const char *name)
{
	for (int i = v->n - 1; i >= 0; i--)
		if (strcmp(v->name[i], name) == 0)
			return v->value[i];
	return NULL;
}

static const char *lookup_n(const struct ef_sqlvars *v, const char *name, size_t len)
{
	for (int i = v->n - 1; i >= 0; i--)
		if (strlen(v->name[i]) == len && strncmp(v->name[i], name, len) == 0)
			return v->value[i];
	return NULL;
}

/* One pass: substituted text is copied verbatim and never rescanned, so a
 * quoted identifier that contains braces stays what it is. */
char *ef_sqlvars_expand(const struct ef_sqlvars *v, const char *tpl)
{
	struct ef_strbuf out = EF_STRBUF_INIT;

	for (const char *p = tpl; *p;) {
		const char *close = *p == '{' ? strchr(p, '}') : NULL;
		const char *val = close ? lookup_n(v, p + 1, (size_t)(close - p - 1)) : NULL;

		if (val) {
			ef_strbuf_add(&out, val);
			p = close + 1;
		} else {
			ef_strbuf_addn(&out, p++, 1);
		}
	}
	return ef_strbuf_take(&out);
}

bool ef_sqlvars_frag(struct ef_sqlvars *v, const char *name, const char *tpl)
{
	return ef_sqlvars_set(v, name, ef_sqlvars_expand(v, tpl));
}

void ef_sqlvars_free(struct ef_sqlvars *v)
{
	for (int i = 0; i < v->n; i++)
		free(v->value[i]);
	v->n = 0;
}
