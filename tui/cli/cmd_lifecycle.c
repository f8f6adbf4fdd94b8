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
#include "tui/cli/report.h"
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
		cJSON_AddNumberToObject(o, "indexes_built", r->indexes_built);
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
	if (res->indexes_built)
		out_printf(stdout, "built the live table's %d vector index%s on %s first (%.1f s)\n",
			   res->indexes_built, res->indexes_built == 1 ? "" : "es",
			   res->vectors_table, res->index_s);
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

/* --- adopt ------------------------------------------------------------- */

static int check_adopt_args(const struct cli *cli)
{
	struct ef_error err;
	int rc;

	if ((rc = need(cli, cli->collection, "the collection: -C COLL",
		       "embfill adopt -C COLL --confirm COLL [--model M] [--dim D]")) != 0 ||
	    (rc = name_ok(cli->collection)) != 0)
		return rc;
	if (cli->dry_run || (cli->confirm && strcmp(cli->confirm, cli->collection) == 0))
		return 0;
	ef_error_clear(&err);
	if (!cli->confirm)
		ef_error_set(&err, EF_ERR_USAGE, "the confirmation is missing: `embfill adopt` "
			     "records vectors only when the collection's name is typed twice; "
			     "nothing was recorded");
	else
		ef_error_set(&err, EF_ERR_USAGE, "the confirmation \"%s\" differs from the "
			     "collection \"%s\"; nothing was recorded", cli->confirm, cli->collection);
	ef_error_hint(&err, "add --confirm %s (or --dry-run to see what would be recorded)",
		      cli->collection);
	return out_error(&err);
}

static void adopt_json(const struct adopt_request *r, const struct adopt_outcome *oc)
{
	const struct ef_adopt_result *a = &oc->res;
	cJSON *o = cJSON_CreateObject(), *w = cJSON_CreateArray();
	char *text;

	cJSON_AddStringToObject(o, "collection", r->collection);
	cJSON_AddStringToObject(o, "model", r->model);
	cJSON_AddNumberToObject(o, "dim", r->dim);
	cJSON_AddBoolToObject(o, "dry_run", r->dry_run);
	cJSON_AddBoolToObject(o, "written", a->written);
	cJSON_AddNumberToObject(o, "chunks", (double)a->chunks);
	cJSON_AddNumberToObject(o, "without_vector", (double)a->nulls);
	cJSON_AddNumberToObject(o, "vectors", (double)a->vectors);
	cJSON_AddNumberToObject(o, "unrecorded", (double)a->unrecorded);
	cJSON_AddNumberToObject(o, "recorded_same", (double)a->recorded_same);
	cJSON_AddNumberToObject(o, "recorded_other", (double)a->recorded_other);
	cJSON_AddNumberToObject(o, "changed_text", (double)a->changed);
	cJSON_AddNumberToObject(o, "wrong_dim", (double)a->wrong_dim);
	cJSON_AddNumberToObject(o, "adopted", (double)a->adopted);
	for (size_t i = 0; i < a->nwrong; i++) {
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "key", a->wrong[i].key);
		cJSON_AddNumberToObject(e, "dim", a->wrong[i].dim);
		cJSON_AddItemToArray(w, e);
	}
	cJSON_AddItemToObject(o, "wrong_dim_examples", w);
	if (oc->probed)
		cJSON_AddItemToObject(o, "provenance", provenance_json(&oc->prov, r->model));
	else
		cJSON_AddStringToObject(o, "provenance_not_run", oc->unprobed);
	cJSON_AddNumberToObject(o, "recipe_only", (double)a->recipe_only);
	cJSON_AddStringToObject(o, "recorded_in", a->bookkeeping && a->own_columns
				? "bookkeeping and table" : a->bookkeeping ? "bookkeeping" : "table");
	text = cJSON_PrintUnformatted(o);
	out_json(text);
	free(text);
	cJSON_Delete(o);
}

static void print_adopt(const struct app *app, const struct adopt_request *r,
			const struct adopt_outcome *o)
{
	const struct ef_adopt_result *a = &o->res;

	out_printf(stdout, "adopt \"%s\" as model \"%s\", dimension %d%s\n", r->collection,
		   r->model, r->dim, r->dry_run ? " (dry run: nothing recorded)" : "");
	out_printf(stdout, "  chunks %lld: %lld with a vector, %lld without one\n", a->chunks,
		   a->vectors, a->nulls);
	out_printf(stdout, "  vectors whose model is not on record: %lld\n", a->unrecorded);
	if (a->recipe_only)
		out_printf(stdout, "  recorded as \"%s\" without a recipe: %lld (the recipe is "
				   "recorded)\n", r->model, a->recipe_only);
	if (a->recorded_same)
		out_printf(stdout, "  already recorded as \"%s\": %lld (left as they are)\n",
			   r->model, a->recorded_same);
	if (a->recorded_other)
		out_printf(stdout, "  recorded as another model: %lld (%s)\n", a->recorded_other,
			   r->force ? "re-recorded: --force" : "left as they are; --force "
			   "re-records them");
	if (a->changed)
		out_printf(stdout, "  recorded from other text than the chunk's: %lld (%s)\n",
			   a->changed, r->force ? "re-recorded: --force" : "left stale");
	out_printf(stdout, "  %s: %lld vectors, in %s\n", r->dry_run ? "would record"
		   : "recorded", a->adopted, a->bookkeeping && a->own_columns
		   ? "embfill's bookkeeping and the table's own columns" : a->bookkeeping
		   ? "embfill's bookkeeping (your table is not written)"
		   : "the table's model, dimension and hash columns");
	if (a->wrong_dim) {
		out_printf(stdout, "  of another dimension than %d: %lld, not recorded and left "
				   "stale; e.g.", r->dim, a->wrong_dim);
		for (size_t i = 0; i < a->nwrong; i++)
			out_printf(stdout, "%s %s (dim %d)", i ? "," : "", a->wrong[i].key,
				   a->wrong[i].dim);
		out_printf(stdout, "%s\n", a->wrong_dim > (long long)a->nwrong ? ", ..." : "");
	}
	if (o->probed && o->prov.sampled)
		out_printf(stdout, "  provenance: %zu of %zu sampled chunks embedded again match "
				   "their stored vector%s\n", o->prov.matches, o->prov.sampled,
			   o->prov.ok ? "" : " (claim recorded anyway: --force)");
	else if (!o->probed)
		out_printf(stdout, "  provenance: not checked, the service could not be reached: "
				   "%s\n", o->unprobed);
	if (a->nulls)
		out_printf(stdout, "next: embfill run -C %s --confirm %s --only missing\n",
			   r->collection, r->collection);
	(void)app;
}

int cmd_adopt(struct app *app)
{
	struct adopt_request r;
	struct adopt_outcome o;
	struct ef_error err;
	int rc;

	if ((rc = check_adopt_args(app->cli)) != 0)
		return rc;
	ef_error_clear(&err);
	if (adopt_from_cli(&r, app, &err) != EF_OK)
		return out_error(&err);
	if (flow_adopt(app, &r, &o, &err) != EF_OK) {
		/* the probe's evidence for a refused claim */
		if (o.probed && !o.prov.ok && app->cli->json) {
			cJSON *j = provenance_json(&o.prov, r.model);
			char *text = cJSON_PrintUnformatted(j);

			out_json(text);
			free(text);
			cJSON_Delete(j);
		} else if (o.probed && !o.prov.ok) {
			print_provenance(&o.prov, r.model);
		}
		return out_error(&err);
	}
	if (app->cli->json)
		adopt_json(&r, &o);
	else
		print_adopt(app, &r, &o);
	if (o.res.written && (rc = logged(app, o.logged, &o.log_err)) != 0)
		return rc;
	if (o.res.wrong_dim) {
		ef_error_set(&err, EF_ERR_CHECK, "%lld vectors of \"%s\" are not of dimension %d "
			     "and were not recorded", o.res.wrong_dim, r.collection, r.dim);
		ef_error_hint(&err, "they count as stale: `embfill run -C %s --confirm %s` embeds "
			      "them again", r.collection, r.collection);
		return out_error(&err);
	}
	return 0;
}
