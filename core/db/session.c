/*
 * session.c - the database session every core call takes (session.h):
 * one connection, set up once, and what discovery found of the tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "core/db/session_int.h"
#include "embfill/session.h"
#include "embfill/strbuf.h"

static void clear_discovery(ef_session *s)
{
	ef_checklist_free(&s->findings);
	memset(&s->sc, 0, sizeof(s->sc));
}

ef_status ef_session_rediscover(ef_session *s, struct ef_error *err)
{
	ef_session_forget_views(s);
	clear_discovery(s);
	return ef_schema_discover(s->db, &s->cfg->map, &s->sc, &s->findings, err);
}

/*
 * Text travels as UTF-8 whatever the server's or the client's locale: the
 * service gets UTF-8 JSON, and chunk contents are hashed as UTF-8 bytes in
 * the database and here alike.  A SQL_ASCII database holds bytes, which the
 * server would check as UTF-8 on their way out, failing the whole query
 * for one bad chunk: there the client takes the bytes as they are, and the
 * run quarantines a text that is not UTF-8 itself.
 */
static ef_status client_encoding(ef_db *db, struct ef_error *err)
{
	PGresult *r = ef_db_query(db, "SELECT current_setting('server_encoding') = 'SQL_ASCII'",
				  0, NULL, PGRES_TUPLES_OK, err);
	bool bytes;

	if (!r)
		return err->status;
	bytes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return ef_db_exec(db, bytes ? "SET client_encoding = 'SQL_ASCII'"
				    : "SET client_encoding = 'UTF8'", err);
}

ef_status ef_session_open(const struct ef_config *cfg, ef_session **out, struct ef_error *err)
{
	return ef_session_open_within(cfg, 0, out, err);
}

ef_status ef_session_open_within(const struct ef_config *cfg, int timeout_s, ef_session **out,
				 struct ef_error *err)
{
	ef_session *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return ef_error_oom(err, "opening a database session");
	s->cfg = cfg;
	if (ef_db_connect_within(cfg->dsn, timeout_s, &s->db, err) != EF_OK ||
	    client_encoding(s->db, err) != EF_OK ||
	    ef_session_rediscover(s, err) != EF_OK) {
		ef_session_close(s);
		return err->status;
	}
	*out = s;
	return EF_OK;
}

void ef_session_forget_views(ef_session *s)
{
	for (size_t i = 0; i < s->nviews; i++) {
		free(s->views[i]->collection);
		free(s->views[i]->own_table);
		free(s->views[i]);
	}
	free(s->views);
	s->views = NULL;
	s->nviews = s->capviews = 0;
	ef_names_free(s->own);
	s->own = NULL;
	s->own_loaded = false;
}

void ef_session_close(ef_session *s)
{
	if (!s)
		return;
	ef_session_forget_views(s);
	clear_discovery(s);
	ef_db_close(s->db);
	free(s);
}

ef_db *ef_session_db(ef_session *s)
{
	return s->db;
}

const struct ef_config *ef_session_config(const ef_session *s)
{
	return s->cfg;
}

const struct ef_schema *ef_session_schema(const ef_session *s)
{
	return &s->sc;
}

const struct ef_checklist *ef_session_findings(const ef_session *s)
{
	return &s->findings;
}

/* The mapping is the default layout when every table and column name is
 * the built-in one: only then can `schema init` create what is missing. */
static bool default_layout(const struct ef_mapping *m)
{
	return m->layout == EF_LAYOUT_SEPARATE && m->coll_mode == EF_COLL_COLUMN &&
	       strcmp(m->chunks, "document_chunks") == 0 && m->embeddings &&
	       strcmp(m->embeddings, "document_embeddings") == 0 &&
	       strcmp(m->documents, "documents") == 0;
}

static ef_status tables_missing(ef_session *s, struct ef_error *err)
{
	const struct ef_schema *sc = &s->sc;

	ef_error_set(err, EF_ERR_DB, "the collection's tables are not usable as mapped (chunk "
		     "table %s, embeddings %s)", sc->chunks_ok ? "ok" : "missing or incomplete",
		     sc->embeddings_ok ? "ok" : "missing or incomplete");
	if (default_layout(&s->cfg->map))
		return ef_error_hint(err, "`embfill schema check` lists what is missing; `embfill "
					  "schema init` creates the default layout");
	return ef_error_hint(err, "`embfill schema check` lists what is missing in the mapped "
				  "tables, and the setting that fixes each");
}

ef_status ef_session_require(ef_session *s, unsigned need, struct ef_error *err)
{
	const char *tool = s->cfg->map.tool_schema;

	if ((need & EF_NEED_TABLES) && !ef_schema_usable(&s->sc))
		return tables_missing(s, err);
	if ((need & EF_NEED_WRITE) && ef_schema_usable(&s->sc) && !s->sc.key_unique) {
		ef_error_set(err, EF_ERR_DB, "no primary key or unique index guarantees the chunk "
			     "key of %s: one vector would be written into every row that shares a "
			     "key; nothing was written", s->cfg->map.chunks);
		return ef_error_hint(err, "`embfill schema check` names the unique keys the table "
					  "has and the index that would make this one unique");
	}
	/* Without model and hash columns, what a vector was made from lives in
	 * embfill's bookkeeping table: counting needs it as much as writing. */
	if ((need & EF_NEED_TABLES) && s->sc.bookkeeping_required)
		need |= EF_NEED_TOOL;
	if (!(need & EF_NEED_TOOL))
		return EF_OK;
	if (!s->sc.tool_schema) {
		ef_error_set(err, EF_ERR_DB, "embfill's own tables (schema \"%s\") do not exist%s",
			     tool, s->sc.bookkeeping_required ? "; the mapped tables have no model or content "
			     "hash columns, so embfill keeps both in its bookkeeping there" : "");
		return ef_error_hint(err, "run `embfill schema init`: it adds them and leaves "
					  "your tables as they are");
	}
	if (s->sc.tool_version < EF_TOOL_SCHEMA_VERSION) {
		ef_error_set(err, EF_ERR_DB, "embfill's tables in schema \"%s\" are version %d; this "
			     "embfill needs version %d", tool, s->sc.tool_version,
			     EF_TOOL_SCHEMA_VERSION);
		return ef_error_hint(err, "run `embfill schema init`: it upgrades embfill's tables "
					  "and leaves yours as they are");
	}
	return EF_OK;
}
