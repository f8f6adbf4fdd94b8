/*
 * screen_plan.c - step 3: counts, the estimate against the window, risks,
 * in place / new collection / dry run, the backup choice, and plan.json.
 *
 * When the model, the dimension or the chunking changed, the plan
 * recommends (and preselects) a new collection: the run step then makes it
 * from the live one's documents, embeds it, the validate step checks it,
 * and the summary offers the swap.  In place, a backup can be kept.  A
 * change of provider needs the owner's approval, given here with v.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "embfill/lifecycle.h"
#include "embfill/plan.h"
#include "embfill/recipe.h"
#include "embfill/redact.h"
#include "tui/flow/app.h"
#include "tui/console/console.h"
#include "tui/flow/life.h"
#include "tui/flow/planfile.h"
#include "tui/flow/request.h"

#define PLAN_FILE "plan.json"

static const char *const mode_names[MODE__COUNT] = {
	"in place", "in place, only chunks without a vector (stale vectors stay as they are)",
	"new collection", "dry run (writes nothing)",
};

static bool over_window(const struct console *c)
{
	return c->scope.deadline && c->plan.plan.est_seconds >= 0 &&
	       (double)(c->scope.deadline - time(NULL)) < c->plan.plan.est_seconds;
}

static bool has_warnings(const struct console *c)
{
	for (size_t i = 0; i < c->plan.plan.nrisks; i++)
		if (c->plan.plan.risks[i].level != EF_RISK_INFO)
			return true;
	return c->plan.plan.new_collection || over_window(c);
}

/* plan.json holds the in-place command `embfill run` would record for
 * this collection, and the new-collection path's commands. */
static void write_plan(struct console *c)
{
	struct run_request r = { .collection = c->scope.collection };
	struct ef_error err;
	char *cmd = request_command(c->app, &r), *json, *safe;
	cJSON *o = plan_json(c->app, &c->plan.plan, cmd ? cmd : "", c->plan.target);
	char real[PATH_MAX];

	ef_error_clear(&err);
	json = cJSON_Print(o);
	safe = ef_redact(json);
	if (safe && plan_write_file(PLAN_FILE, safe, &err) == EF_OK)
		snprintf(c->plan.path, sizeof(c->plan.path), "%.1000s",
			 realpath(PLAN_FILE, real) ? real : PLAN_FILE);
	else
		snprintf(c->plan.err, sizeof(c->plan.err), "%.900s (%.900s)", err.msg, err.hint);
	cJSON_Delete(o);
	free(json);
	free(safe);
	free(cmd);
}

/* The new collection's name: <COLL>_next, or the first of _next2.. that is
 * free or was made from this collection by an earlier start. */
static void choose_target(struct console *c)
{
	char name[EF_COLLECTION_NAME_MAX + 1];
	struct ef_error err;
	ef_session *s;
	int has;

	c->plan.target[0] = '\0';
	c->plan.target_err[0] = '\0';
	ef_error_clear(&err);
	if (app_session(c->app, EF_NEED_TABLES | EF_NEED_TOOL, &s, &err) != EF_OK) {
		snprintf(c->plan.target_err, sizeof(c->plan.target_err), "%.500s", err.msg);
		return;
	}
	for (int i = 1; i <= 9; i++) {
		if (i == 1)
			snprintf(name, sizeof(name), "%.*s_next", EF_COLLECTION_NAME_MAX - 8,
				 c->scope.collection);
		else
			snprintf(name, sizeof(name), "%.*s_next%d", EF_COLLECTION_NAME_MAX - 8,
				 c->scope.collection, i);
		ef_error_clear(&err);
		if (ef_coll_into_state(s, c->scope.collection, name, &has, &err) == EF_OK) {
			snprintf(c->plan.target, sizeof(c->plan.target), "%s", name);
			return;
		}
		if (err.status != EF_ERR_USAGE) {
			snprintf(c->plan.target_err, sizeof(c->plan.target_err), "%.500s", err.msg);
			return;
		}
	}
	snprintf(c->plan.target_err, sizeof(c->plan.target_err), "no free name from %s_next "
		 "to %s_next9", c->scope.collection, c->scope.collection);
}

static void build(struct console *c)
{
	struct ef_embed_config ec;
	struct ef_error err;
	ef_session *s;

	plan_free(c);
	console_busy(c, "planning: counting and timing one batch with the service");
	ef_error_clear(&err);
	memset(&c->plan.plan, 0, sizeof(c->plan.plan));
	c->plan.done = true;
	if (app_embed_config(c->app, &ec, &err) != EF_OK ||
	    app_session(c->app, EF_NEED_TABLES, &s, &err) != EF_OK ||
	    ef_plan_build(s, &ec, c->scope.collection, false, &c->plan.plan, &err) != EF_OK) {
		snprintf(c->plan.err, sizeof(c->plan.err), "%.900s%s%.900s", err.msg,
			 err.hint[0] ? "\nhint: " : "", err.hint);
		c->st[STEP_PLAN] = ST_FAILED;
		console_msg(c, R_FAIL, "the plan could not be made; r tries again");
		return;
	}
	c->plan.ok = true;
	choose_target(c);
	/* resuming an interrupted run continues it where it is: in place */
	if (!c->plan.mode_chosen)
		c->plan.mode = c->plan.plan.new_collection && c->plan.target[0] &&
			       !c->scope.resume ? MODE_NEW_COLLECTION : MODE_IN_PLACE;
	write_plan(c);
	c->st[STEP_PLAN] = has_warnings(c) ? ST_OPEN : ST_PASSED;
	console_msg(c, c->st[STEP_PLAN] == ST_PASSED ? R_GOOD : R_WARN, c->st[STEP_PLAN] == ST_PASSED
		    ? "plan ready: Enter goes on to the run" : "the plan has warnings: read them, "
		    "then a accepts them");
}

static void plan_enter(struct console *c)
{
	if (!c->plan.done)
		build(c);
}

void plan_free(struct console *c)
{
	enum run_mode mode = c->plan.mode;
	bool chosen = c->plan.mode_chosen, backup = c->plan.backup, approved = c->plan.approved;
	bool rebuild = c->plan.rebuild_index;

	if (c->plan.done)
		ef_plan_free(&c->plan.plan);
	memset(&c->plan, 0, sizeof(c->plan));
	c->plan.mode = mode;
	c->plan.mode_chosen = chosen;
	c->plan.backup = backup;
	c->plan.approved = approved;
	c->plan.rebuild_index = rebuild;
}

static void draw_estimate(struct console *c)
{
	const struct ef_plan *p = &c->plan.plan;
	char est[32], left[32];

	fmt_duration(p->est_seconds, est, sizeof(est));
	if (p->todo == 0)
		ui_line(c, R_GOOD, "  estimate: nothing to do");
	else if (p->probe_ms >= 0) {
		char lo[32], hi[32], eps[64] = "";

		fmt_duration(p->est_low, lo, sizeof(lo));
		fmt_duration(p->est_high, hi, sizeof(hi));
		if (p->nendpoints > 1 && p->endpoints_ok == 1)
			snprintf(eps, sizeof(eps), " on the 1 endpoint that answers");
		else if (p->nendpoints > 1)
			snprintf(eps, sizeof(eps), " on each of %zu endpoints",
				 p->endpoints_ok ? p->endpoints_ok : p->nendpoints);
		ui_line(c, R_NORMAL, "  estimate: %s, likely %s to %s (embedding only: a probe of "
			"%d chunks in %d requests, %d in flight%s, took %.1f s: %.0f chunks/s)", est,
			lo, hi, p->probe_chunks, p->probe_requests, p->concurrency, eps,
			p->probe_ms / 1e3, p->probe_rate);
	}
	else
		ui_line(c, R_NORMAL, "  estimate: unknown (no probe)");
	if (!c->scope.deadline) {
		ui_line(c, R_NORMAL, "  window: no end time given");
		return;
	}
	fmt_duration((double)(c->scope.deadline - time(NULL)), left, sizeof(left));
	ui_line(c, over_window(c) ? R_WARN : R_GOOD, "  window: ends at %s, %s from now: %s",
		c->scope.until, left, over_window(c) ? "the estimate does NOT fit; the run stops "
		"at the end and is resumable" : "the estimate fits");
}

/* The recipe the run embeds with, and where its prefixes came from. */
static void draw_recipe(struct console *c)
{
	const struct ef_config *cfg = c->app->cfg;
	struct ef_recipe r = { cfg->doc_prefix, cfg->dimensions, cfg->truncate, cfg->normalize };
	char *desc = ef_recipe_describe(&r), dorig[160];

	ef_settings_origin(c->app->settings, EF_K_EMBED_DOCUMENT_PREFIX, dorig, sizeof(dorig));
	ui_line(c, R_DIM, "  recipe: %s (%s); document prefix from: %s; queries prefixed \"%s\"",
		desc ? desc : "?", cfg->recipe_id, dorig, cfg->query_prefix);
	free(desc);
}

static void draw_plan(struct console *c)
{
	const struct ef_plan *p = &c->plan.plan;
	const struct ef_counts *k = &p->counts;

	ui_line(c, R_NORMAL, "  chunks %lld, embedded %lld, missing %lld, stale %lld (model "
		"%lld, dim %lld, content %lld, recipe %lld), quarantined %lld", k->chunks,
		k->embedded, k->missing, k->stale, k->stale_model, k->stale_dim, k->stale_content,
		k->stale_recipe, k->quarantined);
	draw_recipe(c);
	if (k->recipe_unknown)
		ui_line(c, R_WARN, "  %lld vectors have no recipe on record (made before recipes "
			"were recorded): `embfill verify --provenance` tells which made them",
			k->recipe_unknown);
	if (k->unrecorded)
		ui_line(c, R_WARN, "  %lld vectors have no model on record (o adopts them as "
			"\"%s\"'s at dimension %d, embedding nothing)", k->unrecorded,
			c->app->cfg->embed_model, c->app->cfg->embed_dim);
	if (c->plan.mode == MODE_MISSING_ONLY)
		ui_line(c, R_NORMAL, "  to embed (only missing): %lld chunks without a vector; "
			"%lld stale vectors stay as they are", k->missing, k->stale);
	else
	ui_line(c, R_NORMAL, "  to embed: %s%lld chunks in %lld batches of %d, %d in flight%s",
		p->new_collection && p->chunking_changed ? "about " : "", p->todo, p->batches,
		p->batch_size, p->concurrency, p->new_collection ? " (a new collection: all of "
		"them)" : "");
	draw_estimate(c);
	for (size_t i = 0; i < p->nmodels; i++)
		ui_line(c, R_DIM, "  vectors now: %lld of \"%s\", dimension %d", p->models[i].count,
			p->models[i].model, p->models[i].dim);
	if (p->probed)
		ui_line(c, p->prov.ok ? R_GOOD : R_WARN, "  provenance: %zu of %zu sampled vectors "
			"without a recorded model or recipe match \"%s\" with %s: %s",
			p->prov.matches, p->prov.sampled, c->app->cfg->embed_model,
			p->prov.claimed_desc, p->prov.ok ? "made that way" : "NOT made that way");
	else if (p->prov_error[0])
		ui_line(c, R_DIM, "  provenance: not checked: %s", p->prov_error);
	ui_blank(c);
	ui_line(c, R_TITLE, "Risks");
	if (!p->nrisks)
		ui_line(c, R_GOOD, "  none found");
	for (size_t i = 0; i < p->nrisks; i++) {
		ui_line(c, p->risks[i].level == EF_RISK_INFO ? R_NORMAL : R_WARN, "  [%s] %s",
			ef_risk_level_name(p->risks[i].level), p->risks[i].what);
		ui_line(c, R_DIM, "       %s %s", term_glyph(G_ARROW), p->risks[i].advice);
	}
	ui_line(c, p->new_collection ? R_WARN : R_GOOD, "  recommendation: %s",
		p->new_collection ? "a NEW collection first (model, dimension or chunking "
		"changed), then verify and swap" : "in place");
}

static void draw_new_collection(struct console *c)
{
	const struct ef_plan *p = &c->plan.plan;

	if (!c->plan.target[0]) {
		ui_line(c, R_FAIL, "  no name for the new collection: %s", c->plan.target_err);
		return;
	}
	ui_line(c, R_NORMAL, "  the new collection is \"%s\"; \"%s\" stays as it is until the "
		"swap:", c->plan.target, c->scope.collection);
	if (p->chunking_changed)
		ui_line(c, R_NORMAL, "    1. run: re-chunk its documents (MAX_CHUNK_SIZE %d, "
			"CHUNK_OVERLAP %d) into \"%s\", then embed them with \"%s\"",
			c->app->cfg->max_chunk_size, c->app->cfg->chunk_overlap, c->plan.target,
			c->app->cfg->embed_model);
	else
		ui_line(c, R_NORMAL, "    1. run: copy its chunks into \"%s\", then embed them "
			"with \"%s\" (dimension %d)", c->plan.target, c->app->cfg->embed_model,
			c->app->cfg->embed_dim);
	ui_line(c, R_NORMAL, "    2. validate: verify and spot-check \"%s\"", c->plan.target);
	ui_line(c, R_NORMAL, "    3. summary: x swaps it into \"%s\"'s place in one transaction "
		"(the old one is kept; rollback undoes it)", c->scope.collection);
}

/* The vector indexes' choice, where the plan offers loading without them
 * (the cost and its reason are among the risks above). */
static void draw_indexes(struct console *c)
{
	const struct ef_plan_index *pi = &c->plan.plan.vindex;

	if (!pi->rebuild_offered || c->plan.mode == MODE_DRY_RUN)
		return;
	ui_line(c, R_TITLE, "Vector indexes of %s (i changes)", pi->ix.table);
	ui_line(c, c->plan.rebuild_index ? R_FOCUS : R_NORMAL, "  (%s) drop them for the load, "
		"rebuild them CONCURRENTLY after it: faster; searches on the table rank every row "
		"until then", c->plan.rebuild_index ? "*" : " ");
	ui_line(c, !c->plan.rebuild_index ? R_FOCUS : R_NORMAL, "  (%s) keep them: every vector "
		"written goes into them", !c->plan.rebuild_index ? "*" : " ");
}

static void draw_choices(struct console *c)
{
	const struct ef_plan *p = &c->plan.plan;

	ui_line(c, R_TITLE, "How (m changes)");
	for (int m = 0; m < MODE__COUNT; m++)
		ui_line(c, (int)c->plan.mode == m ? R_FOCUS : R_NORMAL, "  (%s) %s%s",
			(int)c->plan.mode == m ? "*" : " ", mode_names[m],
			m == MODE_NEW_COLLECTION && p->new_collection ? " (recommended)" : "");
	if (c->plan.mode == MODE_NEW_COLLECTION)
		draw_new_collection(c);
	ui_line(c, R_TITLE, "Backup (k changes)");
	if (MODE_WRITES_IN_PLACE(c->plan.mode)) {
		ui_line(c, c->plan.backup ? R_FOCUS : R_NORMAL, "  (%s) keep the vectors this run "
			"overwrites: `embfill rollback -C %s` restores them exactly",
			c->plan.backup ? "*" : " ", c->scope.collection);
		ui_line(c, !c->plan.backup ? R_FOCUS : R_NORMAL, "  (%s) no backup: stale vectors "
			"are overwritten; each batch commits with its checkpoint",
			!c->plan.backup ? "*" : " ");
	} else {
		ui_line(c, R_DIM, "  none needed: %s", c->plan.mode == MODE_DRY_RUN
			? "a dry run writes nothing" : "the live collection is not written, and the "
			"swap keeps it under another name");
	}
	draw_indexes(c);
	if (p->provider_change && c->plan.mode != MODE_DRY_RUN) {
		ui_line(c, R_TITLE, "Approval (v gives it)");
		ui_line(c, c->plan.approved ? R_GOOD : R_WARN, "  %s", c->plan.approved
			? "[ok] the collection's owner approved the change of provider (it goes into "
			  "the run's historylog entry)"
			: "the provider or service host changed: the run needs the collection "
			  "owner's approval; ask them, then press v");
	}
}

static void plan_draw(struct console *c)
{
	ui_line(c, R_TITLE, "Step 3 - Plan: \"%s\"", c->scope.collection);
	if (!c->plan.ok) {
		if (c->plan.err[0])
			ui_line(c, R_FAIL, "[FAIL] %s", c->plan.err);
		else
			ui_line(c, R_DIM, "planning %s", term_glyph(G_DOTS));
		return;
	}
	draw_plan(c);
	ui_blank(c);
	draw_choices(c);
	ui_blank(c);
	if (c->plan.path[0])
		ui_line(c, R_GOOD, "plan written to %s", c->plan.path);
	else
		ui_line(c, R_FAIL, "plan.json not written: %s", c->plan.err);
}

static void accept_plan(struct console *c)
{
	const struct ef_plan *p = &c->plan.plan;

	for (size_t i = 0; i < p->nrisks; i++)
		if (p->risks[i].level != EF_RISK_INFO)
			console_accept(c, "plan", p->risks[i].what);
	if (p->new_collection && MODE_WRITES_IN_PLACE(c->plan.mode))
		console_accept(c, "plan", "a new collection was recommended; ran in place");
	if (over_window(c))
		console_accept(c, "plan", "the estimate does not fit the maintenance window");
	c->st[STEP_PLAN] = ST_ACCEPTED;
}

static void adopt_answer(struct console *c, const char *typed)
{
	struct adopt_request r = { .collection = c->scope.collection,
				   .model = c->app->cfg->embed_model,
				   .dim = c->app->cfg->embed_dim };
	struct adopt_outcome o;
	struct ef_error err;

	if (strcmp(typed, c->scope.collection) != 0) {
		console_msg(c, R_WARN, "not adopted: the name typed was not \"%s\"",
			    c->scope.collection);
		return;
	}
	console_busy(c, "adopting: recording the vectors' model");
	ef_error_clear(&err);
	if (flow_adopt(c->app, &r, &o, &err) != EF_OK) {
		console_msg(c, R_FAIL, "not adopted: %s", err.msg);
		return;
	}
	build(c);
	if (o.res.written && !o.logged)
		console_msg(c, R_FAIL, "adopted %lld vectors, but the historylog entry was not "
			    "written: %s", o.res.adopted, o.log_err.msg);
	else
		console_msg(c, o.res.wrong_dim ? R_WARN : R_GOOD, "adopted %lld vectors as \"%s\" "
			    "(in the historylog)%s", o.res.adopted, r.model, o.res.wrong_dim
			    ? "; some are of another dimension and stay stale" : "");
}

static void adopt_ask(struct console *c)
{
	char text[1024];

	snprintf(text, sizeof(text), "Record the %lld vectors of \"%s\" whose model is not on "
		 "record as \"%s\"'s at dimension %d, made from their chunks' current text? "
		 "Nothing is embedded; you assert what made them, and the historylog says who. "
		 "Type the collection's name, \"%s\", to confirm.",
		 c->plan.plan.counts.unrecorded, c->scope.collection, c->app->cfg->embed_model,
		 c->app->cfg->embed_dim, c->scope.collection);
	console_prompt(c, "Adopt", text, adopt_answer);
}

static bool needs_approval(const struct console *c)
{
	return c->plan.plan.provider_change && !c->plan.approved && c->plan.mode != MODE_DRY_RUN;
}

/* Only what plan_can() allows reaches here (the loop checks it first). */
static enum ev plan_key(struct console *c, int key, enum action a)
{
	(void)key;
	switch (a) {
	case A_MODE:
		c->plan.mode = (enum run_mode)((c->plan.mode + 1) % MODE__COUNT);
		c->plan.mode_chosen = true;
		return EV_HANDLED;
	case A_BACKUP:
		c->plan.backup = !c->plan.backup;
		return EV_HANDLED;
	case A_INDEX:
		c->plan.rebuild_index = !c->plan.rebuild_index;
		return EV_HANDLED;
	case A_ADOPT:
		adopt_ask(c);
		return EV_HANDLED;
	case A_APPROVE:
		c->plan.approved = true;
		console_accept(c, "plan", "the collection's owner approved the change of provider "
			       "or service host");
		console_msg(c, R_WARN, "approval noted: it goes into the run's historylog entry, "
			    "which step 6 writes (w)");
		return EV_HANDLED;
	case A_RECHECK:
		console_reset_after(c, STEP_LOCATE);
		build(c);
		return EV_HANDLED;
	case A_ACCEPT:
		accept_plan(c);
		console_msg(c, R_WARN, "plan warnings accepted: they go into the run's historylog "
			    "entry, which step 6 writes (w)");
		return EV_HANDLED;
	case A_NEXT:
		return EV_NEXT;
	default:
		return EV_IGNORED;
	}
}

static bool plan_can(const struct console *c, enum action a)
{
	switch (a) {
	case A_NEXT:
		return (c->st[STEP_PLAN] == ST_PASSED || c->st[STEP_PLAN] == ST_ACCEPTED) &&
		       !(c->plan.mode == MODE_NEW_COLLECTION && !c->plan.target[0]) &&
		       !needs_approval(c);
	case A_BACKUP:
		return !c->run.started && c->plan.ok && MODE_WRITES_IN_PLACE(c->plan.mode);
	case A_INDEX:
		return !c->run.started && c->plan.ok && c->plan.plan.vindex.rebuild_offered &&
		       c->plan.mode != MODE_DRY_RUN;
	case A_ADOPT:
		return !c->run.started && c->plan.ok && c->plan.plan.counts.unrecorded > 0;
	case A_APPROVE:
		return !c->run.started && c->plan.ok && c->plan.plan.provider_change &&
		       !c->plan.approved;
	case A_BACK:
	case A_RECHECK:
		return !c->run.started;
	case A_MODE:
		return !c->run.started && c->plan.ok;
	case A_ACCEPT:
		return !c->run.started && c->st[STEP_PLAN] == ST_OPEN && c->plan.ok;
	default:
		return false;
	}
}

static const char *plan_why_not(const struct console *c, enum action a)
{
	if (c->run.started && a != A_NEXT)
		return "the run has started: the plan is fixed";
	if (a == A_NEXT && c->plan.mode == MODE_NEW_COLLECTION && !c->plan.target[0])
		return "the new collection has no name (m chooses another mode)";
	if (a == A_NEXT && needs_approval(c))
		return "the provider changed: press v once the collection's owner approved it, "
		       "or m for a dry run";
	if (a == A_NEXT)
		return "the plan has warnings: read them, then a accepts them";
	if (a == A_BACKUP)
		return "a backup is for a run in place (m changes the mode)";
	if (a == A_ADOPT)
		return "every vector's model is on record already";
	if (a == A_INDEX)
		return "the plan does not offer loading without the vector indexes (the risks say "
		       "why)";
	if (a == A_APPROVE)
		return c->plan.approved ? "the approval is recorded already"
					: "the provider did not change";
	return NULL;
}

static const enum action plan_actions[] = { A_MODE, A_BACKUP, A_INDEX, A_ADOPT, A_APPROVE,
					    A_ACCEPT, A_RECHECK, A_NONE };

const struct screen screen_plan = {
	.name = "Plan",
	.help = "Step 3 counts what the run would embed, times one batch with the service "
		"(nothing is written), and compares the estimate with the window's end. "
		"Risks name what could go wrong; a changed model, dimension or chunking "
		"recommends a new collection, preselected then: the run makes it from the "
		"collection's documents and embeds it, validation checks it, and the summary "
		"swaps it in. m chooses in place, in place for chunks without a vector only, new "
		"collection or dry run; o adopts vectors whose model is not on record (a "
		"framework's table) as EMBED_MODEL's without embedding them; k keeps a backup of "
		"what an in-place run overwrites; i loads without the table's vector indexes and "
		"rebuilds them after, where the plan offers it; v records the owner's approval of a new "
		"provider. The plan is written to plan.json in the current directory.",
	.actions = plan_actions,
	.enter = plan_enter,
	.draw = plan_draw,
	.on_key = plan_key,
	.can = plan_can,
	.why_not = plan_why_not,
	.forget = plan_free,
};
