/*
 * life.c (flow) - the swap and the rollback for both front ends (life.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/ident.h"
#include "tui/flow/app.h"
#include "tui/flow/command.h"
#include "tui/flow/history.h"
#include "tui/flow/life.h"

void swap_from_cli(struct swap_request *r, const struct cli *cli)
{
	memset(r, 0, sizeof(*r));
	r->collection = cli->collection;
	r->with = cli->with;
	r->min_hit_rate = cli->min_hit_rate;
	r->approve_provider = cli->approve_provider;
}

ef_status swap_hit_rate(const char *text, double *out, struct ef_error *err)
{
	char *end;
	double v;

	*out = EF_SWAP_MIN_HIT_RATE;
	if (!text)
		return EF_OK;
	errno = 0;
	v = strtod(text, &end);
	if (!errno && end != text && !*end && isfinite(v) && v > 0 && v <= 1) {
		*out = v;
		return EF_OK;
	}
	ef_error_set(err, EF_ERR_USAGE, "--min-hit-rate \"%s\" is not a share above 0 and at "
		     "most 1", text);
	return ef_error_hint(err, "write it as a fraction: --min-hit-rate 0.8 asks 4 of 5 sampled "
				  "chunks to find themselves");
}

char *swap_command(const struct app *app, const struct swap_request *r)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	command_start(&b, app, "swap");
	command_flag(&b, "-C", r->collection);
	command_flag(&b, "--with", r->with);
	command_flag(&b, "--confirm", r->collection);
	command_flag(&b, "--min-hit-rate", r->min_hit_rate);
	if (r->approve_provider)
		command_word(&b, "--approve-provider-change");
	return ef_strbuf_take(&b);
}

/* Counts of a collection for an entry; what cannot be read is not worth
 * failing a swap that happened, and the entry says it is unknown. */
static void counts(ef_session *s, const char *name, struct ef_counts *c)
{
	struct ef_error ignored;

	ef_error_clear(&ignored);
	ef_scan_counts(s, name, c, &ignored);
}

static void log_swap(struct app *app, ef_session *s, const struct swap_request *r,
		     struct swap_outcome *o, struct ef_counts *before)
{
	struct ef_counts after;
	char verification[512], what[40], *cmd = swap_command(app, r);

	counts(s, r->collection, &after);
	snprintf(o->outcome, sizeof(o->outcome), "swap %lld: \"%s\" took the name \"%s\"; the "
		 "previous collection is kept as \"%s\" (undo: embfill rollback -C %s)",
		 o->res.swap_id, r->with, r->collection, o->res.previous_name, r->collection);
	snprintf(verification, sizeof(verification), "before the swap: %lld of %lld chunks with "
		 "a fresh vector, self-retrieval %zu of %zu", o->res.fresh, o->res.chunks,
		 o->res.hits, o->res.samples);
	snprintf(what, sizeof(what), "swap %lld", o->res.swap_id);
	ef_error_clear(&o->log_err);
	if (!cmd)
		ef_error_oom(&o->log_err, "writing the historylog");
	else
		o->logged = history_event(app, r->collection, what, o->outcome, cmd, verification,
					  before, &after, &o->log_err) == EF_OK;
	free(after.collection);
	free(cmd);
}

ef_status flow_swap(struct app *app, const struct swap_request *r, struct swap_outcome *o,
		    struct ef_error *err)
{
	struct ef_swap_opts so = { .collection = r->collection, .with = r->with,
				   .approve_provider_change = r->approve_provider };
	struct ef_embed_config ec;
	struct ef_counts before;
	ef_session *s;

	memset(o, 0, sizeof(*o));
	o->min_hit_rate = EF_SWAP_MIN_HIT_RATE;
	if (swap_hit_rate(r->min_hit_rate, &o->min_hit_rate, err) != EF_OK ||
	    app_embed_config(app, &ec, err) != EF_OK ||
	    app_session(app, EF_NEED_TABLES | EF_NEED_TOOL, &s, err) != EF_OK)
		return err->status;
	so.min_hit_rate = o->min_hit_rate;
	so.ecfg = &ec;
	counts(s, r->collection, &before);
	if (ef_coll_swap(s, &so, &o->res, err) != EF_OK) {
		free(before.collection);
		return err->status;
	}
	log_swap(app, s, r, o, &before);
	free(before.collection);
	return EF_OK;
}

ef_status flow_rollback(struct app *app, const char *collection, struct rollback_outcome *o,
			struct ef_error *err)
{
	struct ef_counts before, after;
	struct ef_strbuf cmd = EF_STRBUF_INIT;
	const struct ef_rollback_result *res = &o->res;
	ef_session *s;

	memset(o, 0, sizeof(*o));
	if (ef_collection_name_check(collection, err) != EF_OK ||
	    app_session(app, EF_NEED_TABLES | EF_NEED_TOOL, &s, err) != EF_OK)
		return err->status;
	counts(s, collection, &before);
	if (ef_coll_rollback(s, collection, &o->res, err) != EF_OK) {
		free(before.collection);
		return err->status;
	}
	if (strcmp(res->kind, "swap") == 0)
		snprintf(o->outcome, sizeof(o->outcome), "rolled back swap %lld of %s UTC: \"%s\" "
			 "holds its previous collection again (from \"%s\"); the swapped-in one is "
			 "\"%s\" again", res->id, res->when, collection, res->restored_from,
			 res->moved_to);
	else
		snprintf(o->outcome, sizeof(o->outcome), "restored the backup of run %lld (%s UTC): "
			 "%lld embedding rows put back as they were, %lld rows the run had added "
			 "removed", res->id, res->when, res->rows_restored, res->rows_removed);
	counts(s, collection, &after);
	command_start(&cmd, app, "rollback");
	command_flag(&cmd, "-C", collection);
	ef_error_clear(&o->log_err);
	o->logged = history_event(app, collection, "rollback", o->outcome, ef_strbuf_str(&cmd),
				  "-", &before, &after, &o->log_err) == EF_OK;
	ef_strbuf_free(&cmd);
	free(before.collection);
	free(after.collection);
	return EF_OK;
}

/* --- adopt ------------------------------------------------------------- */

ef_status adopt_from_cli(struct adopt_request *r, const struct app *app, struct ef_error *err)
{
	const struct cli *cli = app->cli;
	char *end;
	long d;

	memset(r, 0, sizeof(*r));
	r->collection = cli->collection;
	r->model = cli->model ? cli->model : app->cfg->embed_model;
	r->dim = app->cfg->embed_dim;
	r->dry_run = cli->dry_run;
	r->force = cli->force;
	if (app_sample(app, &r->sample, err) != EF_OK)
		return err->status;
	if (!cli->dim)
		return EF_OK;
	errno = 0;
	d = strtol(cli->dim, &end, 10);
	if (errno || end == cli->dim || *end || d < 1 || d > 16000) {
		ef_error_set(err, EF_ERR_USAGE, "--dim \"%s\" is not a vector dimension", cli->dim);
		return ef_error_hint(err, "give the number of floats in each vector, 1 to 16000: "
					  "--dim 768");
	}
	r->dim = (int)d;
	return EF_OK;
}

char *adopt_command(const struct app *app, const struct adopt_request *r)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	char dim[16];

	snprintf(dim, sizeof(dim), "%d", r->dim);
	command_start(&b, app, "adopt");
	command_flag(&b, "-C", r->collection);
	command_flag(&b, "--confirm", r->collection);
	command_flag(&b, "--model", r->model);
	command_flag(&b, "--dim", dim);
	if (r->force)
		command_word(&b, "--force");
	if (r->dry_run)
		command_word(&b, "--dry-run");
	return ef_strbuf_take(&b);
}

static void adopt_outcome_line(const struct app *app, const struct adopt_request *r,
			       struct adopt_outcome *o)
{
	const struct ef_adopt_result *a = &o->res;
	char probe[400];

	if (o->probed && o->prov.sampled)
		snprintf(probe, sizeof(probe), "provenance probe: %zu of %zu sampled chunks matched "
			 "their stored vector%s", o->prov.matches, o->prov.sampled, o->prov.ok ? ""
			 : " (the claim FAILED the probe and was recorded with --force)");
	else if (o->probed)
		snprintf(probe, sizeof(probe), "provenance probe: nothing to sample");
	else
		snprintf(probe, sizeof(probe), "provenance probe not run: %.300s", o->unprobed);
	snprintf(o->outcome, sizeof(o->outcome), "%s %lld existing vectors as model \"%s\" at "
		 "dimension %d with recipe %s, made from their chunks' current text (asserted by "
		 "the operator; no vector was embedded or changed); %lld of another dimension "
		 "left stale, %lld recorded as another model %s, %lld chunks without a vector left "
		 "for a run; %s", r->dry_run ? "would record" : "recorded", a->adopted, r->model,
		 r->dim, app->cfg->recipe_id, a->wrong_dim, a->recorded_other, r->force
		 ? "re-recorded" : "kept", a->nulls, probe);
}

/* The claim checked before anything is recorded: a sample of the vectors
 * adopt would record, embedded again by the claimed model and recipe.  A
 * service that cannot be reached leaves the claim unchecked, and said so. */
static ef_status adopt_probe(struct app *app, ef_session *s, const struct adopt_request *r,
			     struct adopt_outcome *o, struct ef_error *err)
{
	struct ef_prov_opts po = { .collection = r->collection, .select = EF_PROV_UNRECORDED,
				   .model = r->model, .dim = r->dim, .sample = r->sample,
				   .candidates = true };
	struct ef_embed_config ec;
	struct ef_error perr;

	ef_error_clear(&perr);
	if (app_embed_config(app, &ec, err) != EF_OK)
		return err->status;
	if (ef_provenance(s, &ec, &po, &o->prov, &perr) == EF_OK) {
		o->probed = true;
		return EF_OK;
	}
	if (perr.status != EF_ERR_EMBED) {
		*err = perr;
		return err->status;
	}
	snprintf(o->unprobed, sizeof(o->unprobed), "%.500s", perr.msg);
	return EF_OK;
}

ef_status flow_adopt(struct app *app, const struct adopt_request *r, struct adopt_outcome *o,
		     struct ef_error *err)
{
	struct ef_adopt_opts ao = { .collection = r->collection, .model = r->model, .dim = r->dim,
				    .dry_run = r->dry_run, .force = r->force };
	struct ef_counts before, after;
	char *cmd;
	ef_session *s;

	memset(o, 0, sizeof(*o));
	if (ef_collection_name_check(r->collection, err) != EF_OK ||
	    app_session(app, EF_NEED_TABLES | EF_NEED_TOOL, &s, err) != EF_OK ||
	    adopt_probe(app, s, r, o, err) != EF_OK)
		return err->status;
	if (o->probed && !o->prov.ok && !r->force) {
		ef_error_set(err, EF_ERR_CHECK, "the vectors of \"%s\" were not made by \"%s\" with "
			     "%s: %zu of %zu sampled chunks embedded again match their stored vector; "
			     "nothing was recorded", r->collection, r->model, o->prov.claimed_desc,
			     o->prov.matches, o->prov.sampled);
		return ef_error_hint(err, "the probe's candidates above name the recipe that comes "
					  "closest; set the settings to it, or pass --force to record "
					  "the claim anyway (the historylog says so)");
	}
	counts(s, r->collection, &before);
	if (ef_coll_adopt(s, &ao, &o->res, err) != EF_OK) {
		free(before.collection);
		return err->status;
	}
	adopt_outcome_line(app, r, o);
	if (!o->res.written) {
		free(before.collection);
		return EF_OK;
	}
	counts(s, r->collection, &after);
	ef_error_clear(&o->log_err);
	if (!(cmd = adopt_command(app, r)))
		ef_error_oom(&o->log_err, "writing the historylog");
	else
		o->logged = history_event(app, r->collection, "adopt", o->outcome, cmd, "-",
					  &before, &after, &o->log_err) == EF_OK;
	free(cmd);
	free(before.collection);
	free(after.collection);
	return EF_OK;
}
