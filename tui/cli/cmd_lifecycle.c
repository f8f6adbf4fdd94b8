/*
 * cmd_lifecycle.c - `embfill chunk`, `swap` and `rollback`: a new
 * collection cut from an old one's documents, the verified swap, and its
 * undoing.  Swaps and rollbacks are written to the historylog: they change
 * what every reader of the collection gets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/ident.h"
#include "embfill/lifecycle.h"
#include "tui/cli/cli.h"
#include "tui/flow/app.h"
#include "tui/flow/life.h"

static int need(const struct cli *cli, const char *value, const char *what, const char *example)
{
	struct ef_error err;

	if (value)
		return 0;
	ef_error_clear(&err);
	ef_error_set(&err, EF_ERR_USAGE, "`embfill %s` needs %s", cli->cmd_name, what);
	ef_error_hint(&err, "%s", example);
	return out_error(&err);
}

static int name_ok(const char *name)
{
	struct ef_error err;

	ef_error_clear(&err);
	return ef_collection_name_check(name, &err) == EF_OK ? 0 : out_error(&err);
}

/* --- chunk ------------------------------------------------------------- */

int cmd_chunk(struct app *app)
{
	const struct cli *cli = app->cli;
	struct ef_copy_result res;
	struct ef_error err;
	ef_session *s;
	int rc;

	if ((rc = need(cli, cli->collection, "the collection: -C COLL",
		       "embfill chunk -C COLL --into NEWCOLL")) != 0 ||
	    (rc = need(cli, cli->into, "the new collection: --into NEWCOLL",
		       "embfill chunk -C COLL --into NEWCOLL; NEWCOLL must not exist yet")) != 0 ||
	    (rc = name_ok(cli->collection)) != 0)
		return rc;
	ef_error_clear(&err);
	if (app_session(app, EF_NEED_TABLES | EF_NEED_TOOL, &s, &err) != EF_OK ||
	    ef_coll_copy(s, cli->collection, cli->into, true, &res, &err) != EF_OK)
		return out_error(&err);
	if (cli->json) {
		cJSON *o = cJSON_CreateObject();
		char *text;

		cJSON_AddStringToObject(o, "collection", cli->collection);
		cJSON_AddStringToObject(o, "into", cli->into);
		cJSON_AddNumberToObject(o, "documents", (double)res.documents);
		cJSON_AddNumberToObject(o, "chunks", (double)res.chunks);
		cJSON_AddNumberToObject(o, "max_chunk_size", res.max_chunk_size);
		cJSON_AddNumberToObject(o, "chunk_overlap", res.chunk_overlap);
		cJSON_AddNumberToObject(o, "elapsed_s", res.elapsed_s);
		text = cJSON_PrintUnformatted(o);
		out_json(text);
		free(text);
		cJSON_Delete(o);
		return 0;
	}
	out_printf(stdout, "chunked %lld documents of \"%s\" into %lld chunks of \"%s\" "
			   "(MAX_CHUNK_SIZE %d, CHUNK_OVERLAP %d) in %.1f s\n", res.documents,
		   cli->collection, res.chunks, cli->into, res.max_chunk_size, res.chunk_overlap,
		   res.elapsed_s);
	out_printf(stdout, "next: embfill run -C %s --confirm %s --into %s\n", cli->collection,
		   cli->collection, cli->into);
	return 0;
}

/* --- swap -------------------------------------------------------------- */

static int check_swap_args(const struct cli *cli)
{
	struct ef_error err;
	int rc;

	if ((rc = need(cli, cli->collection, "the live collection: -C COLL",
		       "embfill swap -C COLL --with NEWCOLL --confirm COLL")) != 0 ||
	    (rc = need(cli, cli->with, "the new collection: --with NEWCOLL",
		       "embfill swap -C COLL --with NEWCOLL --confirm COLL")) != 0 ||
	    (rc = name_ok(cli->collection)) != 0)
		return rc;
	if (cli->confirm && strcmp(cli->confirm, cli->collection) == 0)
		return 0;
	ef_error_clear(&err);
	ef_error_set(&err, EF_ERR_USAGE, "the confirmation \"%s\" differs from the collection \"%s\";"
		     " nothing was swapped", cli->confirm ? cli->confirm : "", cli->collection);
	ef_error_hint(&err, "type the live collection's exact name twice: -C %s --confirm %s",
		      cli->collection, cli->collection);
	return out_error(&err);
}

static void swap_json(const struct app *app, const struct ef_swap_result *r, ef_status st,
		      double min)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	cJSON_AddStringToObject(o, "collection", app->cli->collection);
	cJSON_AddStringToObject(o, "with", app->cli->with);
	cJSON_AddBoolToObject(o, "swapped", st == EF_OK);
	if (st == EF_OK) {
		cJSON_AddNumberToObject(o, "swap_id", (double)r->swap_id);
		cJSON_AddStringToObject(o, "previous_name", r->previous_name);
		if (r->vectors_table[0])
			cJSON_AddStringToObject(o, "vectors_table", r->vectors_table);
	}
	cJSON_AddNumberToObject(o, "chunks", (double)r->chunks);
	cJSON_AddNumberToObject(o, "fresh", (double)r->fresh);
	cJSON_AddNumberToObject(o, "samples", (double)r->samples);
	cJSON_AddNumberToObject(o, "hits", (double)r->hits);
	cJSON_AddNumberToObject(o, "hit_rate", r->hit_rate);
	cJSON_AddNumberToObject(o, "min_hit_rate", min);
	if (r->refusal[0])
		cJSON_AddStringToObject(o, "refusal", r->refusal);
	text = cJSON_PrintUnformatted(o);
	out_json(text);
	free(text);
	cJSON_Delete(o);
}

static void print_swap(const struct app *app, const struct swap_outcome *o)
{
	const struct cli *cli = app->cli;
	const struct ef_swap_result *res = &o->res;

	out_printf(stdout, "gate: \"%s\" has %lld chunks, %lld with a fresh vector of %s (dim "
			   "%d); self-retrieval %zu of %zu (%.0f%%, needs %.0f%%)\n", cli->with,
		   res->chunks, res->fresh, app->cfg->embed_model, app->cfg->embed_dim, res->hits,
		   res->samples, 100 * res->hit_rate, 100 * o->min_hit_rate);
	out_printf(stdout, "swapped (swap %lld): \"%s\" now holds what was \"%s\"; the "
			   "previous \"%s\" is kept as \"%s\"\n", res->swap_id, cli->collection,
		   cli->with, cli->collection, res->previous_name);
	if (res->vectors_table[0])
		out_printf(stdout, "its vectors are of dimension %d and live in %s: point the "
				   "application's queries there\n", app->cfg->embed_dim,
			   res->vectors_table);
	out_printf(stdout, "undo with: embfill rollback -C %s\n", cli->collection);
}

/* The swap happened; its entry may not have been written. */
static int logged(const struct app *app, bool ok, const struct ef_error *log_err)
{
	if (!ok)
		return out_error(log_err);
	if (!app->cli->json)
		out_printf(stdout, "historylog: entry written at the top of %s\n",
			   app->cfg->historylog);
	return 0;
}

int cmd_swap(struct app *app)
{
	const struct cli *cli = app->cli;
	struct swap_request r;
	struct swap_outcome o;
	struct ef_error err;
	ef_status st;
	int rc;

	if ((rc = check_swap_args(cli)) != 0)
		return rc;
	ef_error_clear(&err);
	if (swap_hit_rate(cli->min_hit_rate, &o.min_hit_rate, &err) != EF_OK)
		return out_error(&err);
	swap_from_cli(&r, cli);
	st = flow_swap(app, &r, &o, &err);
	if (cli->json)
		swap_json(app, &o.res, st, o.min_hit_rate);
	if (st == EF_ERR_CHECK && !cli->json)
		out_printf(stdout, "refused: %s\n", o.res.refusal);
	if (st != EF_OK)
		return out_error(&err);
	if (!cli->json)
		print_swap(app, &o);
	return logged(app, o.logged, &o.log_err);
}

/* --- rollback ------------------------------------------------------------ */

int cmd_rollback(struct app *app)
{
	const struct cli *cli = app->cli;
	struct rollback_outcome o;
	struct ef_error err;
	int rc;

	if ((rc = need(cli, cli->collection, "the collection: -C COLL",
		       "embfill rollback -C COLL")) != 0 || (rc = name_ok(cli->collection)) != 0)
		return rc;
	ef_error_clear(&err);
	if (flow_rollback(app, cli->collection, &o, &err) != EF_OK)
		return out_error(&err);
	if (cli->json) {
		cJSON *j = cJSON_CreateObject();
		char *text;

		cJSON_AddStringToObject(j, "collection", cli->collection);
		cJSON_AddStringToObject(j, "kind", o.res.kind);
		cJSON_AddNumberToObject(j, "id", (double)o.res.id);
		if (strcmp(o.res.kind, "swap") == 0) {
			cJSON_AddStringToObject(j, "restored_from", o.res.restored_from);
			cJSON_AddStringToObject(j, "moved_to", o.res.moved_to);
		} else {
			cJSON_AddNumberToObject(j, "rows_restored", (double)o.res.rows_restored);
			cJSON_AddNumberToObject(j, "rows_removed", (double)o.res.rows_removed);
		}
		text = cJSON_PrintUnformatted(j);
		out_json(text);
		free(text);
		cJSON_Delete(j);
	} else {
		out_printf(stdout, "%s\n", o.outcome);
	}
	return logged(app, o.logged, &o.log_err);
}
