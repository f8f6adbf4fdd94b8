/*
 * vindex_of.c - the vector indexes of a session's tables (vindex.h): the
 * table a collection's view names, embfill's schema when its tables can
 * record a drop, and the settings' build memory and workers.  Apart from
 * vindex.c, which discovery calls, so that no call goes back up from the
 * catalog to the session.
 */
#include <stdlib.h>
#include <string.h>

#include "core/db/db_pg.h"
#include "embfill/registry.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/vindex.h"

char *ef_vindex_tool(ef_session *s, struct ef_error *err)
{
	const struct ef_schema *sc = ef_session_schema(s);

	ef_error_clear(err);
	if (!sc->tool_schema || sc->tool_version < 5)
		return NULL;
	return ef_db_quote_part(ef_session_db(s), ef_session_config(s)->map.tool_schema, err);
}

ef_status ef_vindex_of(ef_session *s, const char *collection, struct ef_vindexes *out,
		       struct ef_error *err)
{
	const struct ef_config *cfg = ef_session_config(s);
	struct ef_view v;
	char *tool;
	ef_status st;

	memset(out, 0, sizeof(*out));
	if (collection) {
		if (ef_coll_view(s, collection, &v, err) != EF_OK)
			return err->status;
		cfg = v.cfg;
	}
	tool = ef_vindex_tool(s, err);
	if (!tool && err->status != EF_OK)
		return err->status;
	st = ef_vindex_find(ef_session_db(s), tool, cfg->map.layout == EF_LAYOUT_SEPARATE
			    ? cfg->map.embeddings : cfg->map.chunks, cfg->map.emb_vector, out, err);
	free(tool);
	return st;
}

struct ef_vindex_build ef_vindex_build_of(const struct ef_config *cfg)
{
	struct ef_vindex_build b = { cfg->index_build_memory_mb, cfg->index_build_workers, NULL };

	return b;
}

ef_status ef_vindex_probe_of(ef_session *s, const struct ef_vindexes *ix,
			     struct ef_vindex_probe *out, struct ef_error *err)
{
	struct ef_vindex_build b = ef_vindex_build_of(ef_session_config(s));
	char *tool = ef_vindex_tool(s, err);
	ef_status st;

	if (!tool && err->status != EF_OK)
		return err->status;
	st = ef_vindex_probe(ef_session_db(s), tool, ix->column, ix, &b, out, err);
	free(tool);
	return st;
}
