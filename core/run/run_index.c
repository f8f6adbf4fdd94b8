/*
 * run_index.c - the vector indexes around a run's load.
 *
 * Before the load: with --rebuild-index, the indexes of the table the run
 * writes are dropped, each recorded in the same transaction (vindex.h).
 * After a load that went through: every index recorded as dropped for the
 * table is rebuilt CONCURRENTLY, whichever run dropped it (a crashed one
 * included), and a new collection's table of its own gets the live
 * table's indexes, built in one go now that its rows are in.  A run that
 * stops early leaves the rebuild to the next one; the record says so to
 * `schema check` meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run/run_int.h"
#include "embfill/registry.h"
#include "embfill/session.h"

static void say(ef_vindex_note_fn note, void *ctx, const char *text)
{
	if (note)
		note(ctx, text);
}

ef_status ef_run_index_before(ef_session *s, const char *collection, bool rebuild,
			      long long run_id, struct ef_run_index *ri, ef_vindex_note_fn note,
			      void *ctx, struct ef_error *err)
{
	struct ef_view v;
	char text[700], *tool;
	ef_status st;

	memset(ri, 0, sizeof(*ri));
	if (ef_coll_view(s, collection, &v, err) != EF_OK ||
	    ef_vindex_of(s, collection, &ri->ix, err) != EF_OK)
		return err->status;
	if (v.own_table) {
		if (ef_vindex_of(s, NULL, &ri->live, err) != EF_OK)
			return err->status;
		ri->own = ef_vindex_missing(&ri->live, &ri->ix) > 0;
		if (ri->own) {
			snprintf(text, sizeof(text), "%s is loaded without vector indexes; the live "
				 "table's are built on it after the load", ri->ix.table);
			say(note, ctx, text);
		}
	}
	for (size_t i = 0; i < ri->ix.ndropped; i++) {
		snprintf(text, sizeof(text), "index %s, dropped by run %lld, is rebuilt after this "
			 "run", ri->ix.dropped[i].qname, ri->ix.dropped[i].run_id);
		say(note, ctx, text);
	}
	if (!rebuild)
		return EF_OK;
	if (!ri->ix.n) {
		say(note, ctx, "--rebuild-index: the table has no vector index to drop");
		return EF_OK;
	}
	tool = ef_vindex_tool(s, err);
	if (!tool)
		return err->status ? err->status : ef_error_set(err, EF_ERR_DB, "embfill's tables "
								"cannot record a dropped index");
	st = ef_vindex_drop(ef_session_db(s), tool, &ri->ix, run_id, collection, err);
	free(tool);
	if (st != EF_OK)
		return st;
	for (size_t i = 0; i < ri->ix.n; i++)
		ri->dropped += ri->ix.ix[i].valid;
	snprintf(text, sizeof(text), "dropped %d vector index%s of %s for the load (recorded); "
		 "rebuilt CONCURRENTLY under the same name%s after it", ri->dropped,
		 ri->dropped == 1 ? "" : "es", ri->ix.table, ri->dropped == 1 ? "" : "s");
	say(note, ctx, text);
	return EF_OK;
}

ef_status ef_run_index_after(ef_session *s, const char *collection, struct ef_run_index *ri,
			     const atomic_int *cancel, ef_vindex_note_fn note, void *ctx,
			     struct ef_error *err)
{
	struct ef_vindex_build b = ef_vindex_build_of(ef_session_config(s));
	ef_db *db = ef_session_db(s);
	char *tool;
	int n = 0;
	ef_status st = EF_OK;

	b.cancel = cancel;
	/* the records as they are now: another run may have rebuilt them */
	if (ef_vindex_of(s, collection, &ri->ix, err) != EF_OK)
		return err->status;
	if (ri->ix.ndropped) {
		tool = ef_vindex_tool(s, err);
		if (tool)
			st = ef_vindex_rebuild(db, tool, &ri->ix, &b, note, ctx, &n, err);
		else
			st = err->status;
		free(tool);
		ri->built += n;
	}
	if (st == EF_OK && ri->own) {
		n = 0;
		st = ef_vindex_build_like(db, &ri->live, ri->ix.table, ri->ix.column, &b, note, ctx,
					  &n, err);
		ri->built += n;
	}
	return st;
}
