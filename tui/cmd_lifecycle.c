/*
 * cmd_lifecycle.c - `embfill chunk`, `swap` and `rollback`: a new
 * collection cut from an old one's documents, the verified swap, and its
 * undoing.  Swaps and rollbacks are written to the historylog: they change
 * what every reader of the collection gets.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "embfill/historylog.h"
#include "embfill/ident.h"
#include "embfill/lifecycle.h"
#include "embfill/scan.h"
#include "embfill/strbuf.h"
#include "tui/cli.h"
#include "tui/common.h"

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

static void add_word(struct ef_strbuf *b, const char *w)
{
	ef_strbuf_add(b, " ");
	ef_strbuf_add_shell_word(b, w);
}

static int event(struct app *app, const char *what, const char *outcome, const char *cmd,
		 const char *verification, const struct ef_counts *before,
		 const struct ef_counts *after)
{
	struct ef_error err;

	ef_error_clear(&err);
	if (app_write_event(app, app->cli->collection, what, outcome, cmd, verification, before,
			    after, &err) != EF_OK)
		return out_error(&err);
	if (!app->cli->json)
		out_printf(stdout, "historylog: entry written at the top of %s\n",
			   app->cfg->historylog);
	return 0;
}

/* --- chunk ------------------------------------------------------------- */

int cmd_chunk(struct app *app)
{
	const struct cli *cli = app->cli;
	struct ef_copy_result res;
	struct ef_error err;
	int rc;

	if ((rc = need(cli, cli->collection, "the collection: -C COLL",
		       "embfill chunk -C COLL --into NEWCOLL")) != 0 ||
	    (rc = need(cli, cli->into, "the new collection: --into NEWCOLL",
		       "embfill chunk -C COLL --into NEWCOLL; NEWCOLL must not exist yet")) != 0 ||
	    (rc = name_ok(cli->collection)) != 0)
		return rc;
	ef_error_clear(&err);
	if (ef_coll_copy(app->cfg, cli->collection, cli->into, true, &res, &err) != EF_OK)
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

static int parse_rate(const char *text, double *out)
{
	struct ef_error err;
	char *end;
	double v;

	*out = EF_SWAP_MIN_HIT_RATE;
	if (!text)
		return 0;
	errno = 0;
	v = strtod(text, &end);
	if (!errno && end != text && !*end && isfinite(v) && v > 0 && v <= 1) {
		*out = v;
		return 0;
	}
	ef_error_clear(&err);
	ef_error_set(&err, EF_ERR_USAGE, "--min-hit-rate \"%s\" is not a share above 0 and at "
		     "most 1", text);
	ef_error_hint(&err, "write it as a fraction: --min-hit-rate 0.8 asks 4 of 5 sampled chunks "
			    "to find themselves");
	return out_error(&err);
}

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

static char *swap_command(const struct app *app)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	const struct cli *cli = app->cli;

	ef_strbuf_add(&b, "embfill");
	if (cli->config) {
		add_word(&b, "--config");
		add_word(&b, cli->config);
	}
	add_word(&b, "swap");
	add_word(&b, "-C");
	add_word(&b, cli->collection);
	add_word(&b, "--with");
	add_word(&b, cli->with);
	add_word(&b, "--confirm");
	add_word(&b, cli->collection);
	if (cli->min_hit_rate) {
		add_word(&b, "--min-hit-rate");
		add_word(&b, cli->min_hit_rate);
	}
	if (cli->approve_provider)
		add_word(&b, "--approve-provider-change");
	return ef_strbuf_take(&b);
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

int cmd_swap(struct app *app)
{
	const struct cli *cli = app->cli;
	struct ef_swap_opts o = { .collection = cli->collection, .with = cli->with,
				  .approve_provider_change = cli->approve_provider };
	struct ef_swap_result res;
	struct ef_embed_config ec;
	struct ef_counts before, after;
	struct ef_error err;
	char *key = NULL, *cmd, outcome[1200], verification[512];
	ef_status st;
	int rc;

	if ((rc = check_swap_args(cli)) != 0 || (rc = parse_rate(cli->min_hit_rate,
								&o.min_hit_rate)) != 0)
		return rc;
	ef_error_clear(&err);
	if (app_embed_config(app, &ec, &key, &err) != EF_OK)
		return out_error(&err);
	o.ecfg = &ec;
	app_counts(app, cli->collection, &before);
	st = ef_coll_swap(app->cfg, &o, &res, &err);
	if (cli->json)
		swap_json(app, &res, st, o.min_hit_rate);
	if (st == EF_ERR_CHECK && !cli->json)
		out_printf(stdout, "refused: %s\n", res.refusal);
	if (st != EF_OK) {
		app_key_free(key);
		return out_error(&err);
	}
	if (!cli->json) {
		out_printf(stdout, "gate: \"%s\" has %lld chunks, %lld with a fresh vector of %s (dim "
				   "%d); self-retrieval %zu of %zu (%.0f%%, needs %.0f%%)\n", cli->with,
			   res.chunks, res.fresh, app->cfg->embed_model, app->cfg->embed_dim,
			   res.hits, res.samples, 100 * res.hit_rate, 100 * o.min_hit_rate);
		out_printf(stdout, "swapped (swap %lld): \"%s\" now holds what was \"%s\"; the "
				   "previous \"%s\" is kept as \"%s\"\n", res.swap_id, cli->collection,
			   cli->with, cli->collection, res.previous_name);
		if (res.vectors_table[0])
			out_printf(stdout, "its vectors are of dimension %d and live in %s: point the "
					   "application's queries there\n", app->cfg->embed_dim,
				   res.vectors_table);
		out_printf(stdout, "undo with: embfill rollback -C %s\n", cli->collection);
	}
	app_counts(app, cli->collection, &after);
	snprintf(outcome, sizeof(outcome), "swap %lld: \"%s\" took the name \"%s\"; the previous "
		 "collection is kept as \"%s\" (undo: embfill rollback -C %s)", res.swap_id,
		 cli->with, cli->collection, res.previous_name, cli->collection);
	snprintf(verification, sizeof(verification), "before the swap: %lld of %lld chunks with "
		 "a fresh vector, self-retrieval %zu of %zu", res.fresh, res.chunks, res.hits,
		 res.samples);
	cmd = swap_command(app);
	{
		char what[40];

		snprintf(what, sizeof(what), "swap %lld", res.swap_id);
		rc = event(app, what, outcome, cmd, verification, &before, &after);
	}
	free(cmd);
	app_key_free(key);
	return rc;
}

/* --- rollback ------------------------------------------------------------ */

int cmd_rollback(struct app *app)
{
	const struct cli *cli = app->cli;
	struct ef_rollback_result res;
	struct ef_counts before, after;
	struct ef_strbuf cmd = EF_STRBUF_INIT;
	struct ef_error err;
	char outcome[1200];
	int rc;

	if ((rc = need(cli, cli->collection, "the collection: -C COLL",
		       "embfill rollback -C COLL")) != 0 || (rc = name_ok(cli->collection)) != 0)
		return rc;
	ef_error_clear(&err);
	app_counts(app, cli->collection, &before);
	if (ef_coll_rollback(app->cfg, cli->collection, &res, &err) != EF_OK)
		return out_error(&err);
	if (strcmp(res.kind, "swap") == 0)
		snprintf(outcome, sizeof(outcome), "rolled back swap %lld of %s UTC: \"%s\" holds "
			 "its previous collection again (from \"%s\"); the swapped-in one is "
			 "\"%s\" again", res.id, res.when, cli->collection, res.restored_from,
			 res.moved_to);
	else
		snprintf(outcome, sizeof(outcome), "restored the backup of run %lld (%s UTC): %lld "
			 "embedding rows put back as they were, %lld rows the run had added "
			 "removed", res.id, res.when, res.rows_restored, res.rows_removed);
	app_counts(app, cli->collection, &after);
	if (cli->json) {
		cJSON *o = cJSON_CreateObject();
		char *text;

		cJSON_AddStringToObject(o, "collection", cli->collection);
		cJSON_AddStringToObject(o, "kind", res.kind);
		cJSON_AddNumberToObject(o, "id", (double)res.id);
		if (strcmp(res.kind, "swap") == 0) {
			cJSON_AddStringToObject(o, "restored_from", res.restored_from);
			cJSON_AddStringToObject(o, "moved_to", res.moved_to);
		} else {
			cJSON_AddNumberToObject(o, "rows_restored", (double)res.rows_restored);
			cJSON_AddNumberToObject(o, "rows_removed", (double)res.rows_removed);
		}
		text = cJSON_PrintUnformatted(o);
		out_json(text);
		free(text);
		cJSON_Delete(o);
	} else {
		out_printf(stdout, "%s\n", outcome);
	}
	ef_strbuf_add(&cmd, "embfill");
	if (cli->config) {
		add_word(&cmd, "--config");
		add_word(&cmd, cli->config);
	}
	add_word(&cmd, "rollback");
	add_word(&cmd, "-C");
	add_word(&cmd, cli->collection);
	rc = event(app, "rollback", outcome, ef_strbuf_str(&cmd), "-", &before, &after);
	ef_strbuf_free(&cmd);
	return rc;
}
