/*
 * screen_scope.c - step 1: which collection, typed twice, with what batch
 * size and window; the objective in one sentence, constraints, assumptions.
 *
 * The list of collections is there to read, not to pick with the arrow
 * keys: the procedure's first pitfall is running on the wrong collection,
 * so the name is typed, then typed again, and a name a typo away from
 * another existing collection is a warning the operator must accept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curses.h> /* key codes only: drawing goes through term.c */

#include "embfill/ident.h"
#include "embfill/run.h"
#include "embfill/scan.h"
#include "embfill/schema.h"
#include "tui/flow/app.h"
#include "tui/flow/request.h"
#include "tui/console/console.h"

static const char *const labels[F__COUNT] = {
	"Collection", "Type it again", "Batch size", "Window note", "Window ends",
};

static void load_list(struct console *c)
{
	struct ef_error err;
	ef_session *s;

	ef_error_clear(&err);
	ef_status_report_free(&c->scope.list);
	c->scope.list_err[0] = '\0';
	if (app_session(c->app, EF_NEED_TABLES, &s, &err) != EF_OK ||
	    ef_scan_status(s, NULL, &c->scope.list, &err) != EF_OK)
		snprintf(c->scope.list_err, sizeof(c->scope.list_err), "%.300s%s%.190s", err.msg,
			 err.hint[0] ? "\nhint: " : "", err.hint);
	c->scope.loaded = true;
}

static void scope_enter(struct console *c)
{
	if (!c->scope.loaded) {
		console_busy(c, "reading the collections");
		load_list(c);
		c->msg[0] = '\0';
	}
}

void scope_free(struct console *c)
{
	ef_status_report_free(&c->scope.list);
	memset(&c->scope.list, 0, sizeof(c->scope.list));
}

static void draw_objective(struct console *c)
{
	const struct ef_config *cfg = c->app->cfg;
	const char *coll = c->scope.collection[0] ? c->scope.collection : c->scope.f[F_COLL];

	ui_line(c, R_TITLE, "Objective");
	ui_line(c, R_NORMAL, "  Regenerate the missing and stale embeddings of collection \"%s\" "
		"with the existing %s service and model \"%s\" (dimension %d), in batches of %s, "
		"then show that every chunk has a fresh vector and that retrieval cites it.",
		coll[0] ? coll : "(not chosen yet)", cfg->provider, cfg->embed_model, cfg->embed_dim,
		c->scope.f[F_BATCH][0] ? c->scope.f[F_BATCH] : "?");
}

static void draw_list(struct console *c)
{
	const struct ef_status_report *l = &c->scope.list;

	ui_line(c, R_TITLE, "Collections (read the name here, then type it above)");
	if (c->scope.list_err[0]) {
		ui_line(c, R_FAIL, "  cannot list the collections: %s", c->scope.list_err);
		return;
	}
	if (!l->n) {
		ui_line(c, R_WARN, "  no collection has chunks yet");
		return;
	}
	ui_line(c, R_DIM, "  %-20s %7s %7s %6s %8s", "name", "chunks", "missing", "stale",
		"coverage");
	/* the collection named with -C first, marked; then the others */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < l->n; i++) {
			const struct ef_counts *k = &l->rows[i];
			long long fresh = k->embedded - k->stale;
			double cov = k->chunks ? 100.0 * (double)fresh / (double)k->chunks : 0;
			bool mine = c->scope.suggested[0] &&
				    strcmp(k->collection, c->scope.suggested) == 0;

			if (mine != (pass == 0))
				continue;
			ui_line(c, mine ? R_ACCENT : R_NORMAL, "%s%-20.20s %7lld %7lld %6lld %7.1f%%",
				mine ? "> " : "  ", k->collection, k->chunks, k->missing, k->stale,
				cov);
		}
	}
}

/* Whether the collection named with -C is in the list, with chunks. */
static bool suggested_known(const struct console *c)
{
	const struct ef_status_report *l = &c->scope.list;

	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->rows[i].collection, c->scope.suggested) == 0)
			return l->rows[i].chunks > 0;
	return false;
}

/* -C NAME: which collection the scenario is about, or that it is unknown.
 * Only said: the fields stay empty, the name is still typed twice. */
static void draw_suggested(struct console *c)
{
	if (!c->scope.suggested[0])
		return;
	if (c->scope.list_err[0])
		ui_line(c, R_ACCENT, "The scenario's collection is \"%s\" (-C): type it in both "
			"fields (the list could not be read to check it).", c->scope.suggested);
	else if (suggested_known(c))
		ui_line(c, R_ACCENT, "The scenario's collection is \"%s\" (-C, first in the list "
			"below): type it in both fields.", c->scope.suggested);
	else
		ui_line(c, R_WARN, "[warn] the collection named with -C, \"%s\", is unknown here: it "
			"has no chunks. Choose one from the list below.", c->scope.suggested);
}

static void draw_constraints(struct console *c)
{
	const struct ef_config *cfg = c->app->cfg;

	ui_line(c, R_TITLE, "Constraints");
	ui_line(c, R_NORMAL, "  - no secret reaches the screen, a log or the historylog "
		"(keys from the environment or a key file only; URLs and DSNs are redacted)");
	ui_line(c, R_NORMAL, "  - only this collection is written; tenant isolation is checked "
		"in step 5 and enforced by the database where a foreign key exists");
	ui_line(c, R_NORMAL, "  - the existing pipeline: provider %s, model \"%s\", dimension %d; "
		"no provider switch", cfg->provider, cfg->embed_model, cfg->embed_dim);
	ui_line(c, R_NORMAL, "  - %d requests in flight at most; one run per collection at a "
		"time (advisory lock)", cfg->concurrency);
	if (c->scope.f[F_UNTIL][0])
		ui_line(c, R_NORMAL, "  - the window ends at %s: the run stops cleanly there and "
			"can be resumed", c->scope.f[F_UNTIL]);
	ui_line(c, R_TITLE, "Assumptions");
	ui_line(c, R_NORMAL, "  - EMBED_MODEL and EMBED_DIM (from the settings) are what the "
		"collection should hold; other vectors count as stale");
	ui_line(c, R_NORMAL, "  - chunking is unchanged (MAX_CHUNK_SIZE %d, CHUNK_OVERLAP %d): "
		"chunks are embedded as they are", cfg->max_chunk_size, cfg->chunk_overlap);
	ui_line(c, R_NORMAL, "  - the vector column fits dimension %d (checked in step 2)",
		cfg->embed_dim);
}

static void scope_draw(struct console *c)
{
	ui_line(c, R_TITLE, "Step 1 - Scope: confirm the collection and the constraints");
	draw_suggested(c);
	ui_blank(c);
	for (int i = 0; i < F__COUNT; i++)
		ui_field(c, labels[i], c->scope.f[i], c->scope.focus == i && !c->run.started);
	ui_line(c, R_DIM, "  (window end as HH:MM or HH:MM:SS, optional; batch size 1-10000)");
	if (c->scope.warn[0]) {
		ui_line(c, R_WARN, "[warn] %s", c->scope.warn);
		ui_line(c, R_DIM, "       hint: press a to accept this warning, or correct the "
			"name");
	}
	if (c->st[STEP_SCOPE] == ST_PASSED || c->st[STEP_SCOPE] == ST_ACCEPTED)
		ui_line(c, R_GOOD, "[ok]   collection \"%s\" confirmed", c->scope.collection);
	ui_blank(c);
	draw_objective(c);
	ui_blank(c);
	draw_list(c);
	ui_blank(c);
	draw_constraints(c);
}

/* --- checking what was typed ------------------------------------------------ */

/* The window's end, read the way `run --until` reads it. */
static bool parse_until(struct console *c, const char *s, time_t *out)
{
	struct ef_error err;

	ef_error_clear(&err);
	if (request_until(s, out, &err) == EF_OK)
		return true;
	console_msg(c, R_FAIL, "%s; %s", err.msg, err.hint);
	return false;
}

static bool set_batch(struct console *c, const char *s)
{
	struct ef_error err;
	char *end = NULL;
	long v = strtol(s, &end, 10);

	ef_error_clear(&err);
	if (!*s || *end || v < 1 || v > 10000) {
		console_msg(c, R_FAIL, "batch size \"%s\" is not a whole number from 1 to 10000", s);
		return false;
	}
	if (v == c->app->cfg->batch_size)
		return true;
	if (ef_settings_set_flag(c->app->settings, "BATCH_SIZE", s, "console", &err) != EF_OK ||
	    ef_settings_finish(c->app->settings, &err) != EF_OK) {
		console_msg(c, R_FAIL, "%s", err.msg);
		return false;
	}
	return true;
}

static void clear_both(struct console *c)
{
	c->scope.f[F_COLL][0] = c->scope.f[F_CONFIRM][0] = '\0';
	c->scope.focus = F_COLL;
}

/* Refuses a name with no chunks (with a "did you mean"), and words a
 * warning for a name a typo away from another collection. */
static bool known(struct console *c, const char *name)
{
	struct ef_status_report one = { 0 };
	struct ef_error err;
	ef_session *s = NULL;
	char **near = NULL;
	bool ok = false;

	ef_error_clear(&err);
	c->scope.warn[0] = '\0';
	if (app_session(c->app, EF_NEED_TABLES, &s, &err) != EF_OK ||
	    ef_scan_status(s, name, &one, &err) != EF_OK ||
	    !(near = ef_scan_near_names(s, name, 2, &err))) {
		console_msg(c, R_FAIL, "%s%s%s", err.msg, err.hint[0] ? " - hint: " : "", err.hint);
		goto out;
	}
	if (one.n == 0 || one.rows[0].chunks == 0) {
		console_msg(c, R_FAIL, "unknown collection \"%s\": it has no chunks; refused%s%s%s",
			    name, near[0] ? " (did you mean \"" : "", near[0] ? near[0] : "",
			    near[0] ? "\"?)" : "");
		clear_both(c);
		goto out;
	}
	if (near[0])
		snprintf(c->scope.warn, sizeof(c->scope.warn), "\"%s\" is a typo away from the "
			 "existing collection \"%s\": make sure \"%s\" is the one you mean", name,
			 near[0], name);
	ok = true;
out:
	ef_names_free(near);
	ef_status_report_free(&one);
	return ok;
}

static void resume_answer(struct console *c, bool yes)
{
	c->scope.resume = yes;
	console_msg(c, yes ? R_ACCENT : R_NORMAL, yes ? "run %lld will be resumed in step 4"
			   : "a new run will start in step 4 (run %lld stays interrupted)",
		    c->scope.interrupted.run_id);
}

static void offer_resume(struct console *c)
{
	struct ef_run_info *ri = &c->scope.interrupted;
	struct ef_error err;
	char text[512];
	ef_session *s;

	ef_error_clear(&err);
	c->scope.resume = false;
	memset(ri, 0, sizeof(*ri));
	if (app_session(c->app, EF_NEED_TABLES, &s, &err) != EF_OK ||
	    ef_run_find_interrupted(s, c->scope.collection, ri, &err) != EF_OK || !ri->run_id)
		return;
	if (strcmp(ri->state, "running") == 0) {
		console_msg(c, R_WARN, "run %lld of \"%s\" is running on %s now; a second run "
				       "would wait for it", ri->run_id, c->scope.collection, ri->host);
		ri->run_id = 0;
		return;
	}
	snprintf(text, sizeof(text), "Run %lld of \"%s\" was %s (host %s, started %s UTC, %lld of "
		 "%lld done). Resume it where it stopped?", ri->run_id, c->scope.collection,
		 ri->state, ri->host, ri->started_at, ri->done, ri->total);
	console_confirm(c, "Resume the interrupted run?", text, resume_answer);
}

/* Everything typed is right: fix the scope, and offer a resume. */
static enum ev confirmed(struct console *c, bool accepted)
{
	console_reset_after(c, STEP_SCOPE);
	snprintf(c->scope.collection, sizeof(c->scope.collection), "%s", c->scope.f[F_COLL]);
	snprintf(c->scope.note, sizeof(c->scope.note), "%s", c->scope.f[F_NOTE]);
	snprintf(c->scope.until, sizeof(c->scope.until), "%.8s", c->scope.f[F_UNTIL]);
	c->scope.batch = c->app->cfg->batch_size;
	if (accepted)
		console_accept(c, "scope", c->scope.warn);
	c->st[STEP_SCOPE] = accepted ? ST_ACCEPTED : ST_PASSED;
	c->scope.warn[0] = '\0';
	console_msg(c, R_GOOD, "collection \"%s\" confirmed", c->scope.collection);
	offer_resume(c);
	return EV_NEXT;
}

static enum ev submit(struct console *c)
{
	char (*f)[EF_COLLECTION_NAME_MAX + 1] = c->scope.f;
	struct ef_error err;

	ef_error_clear(&err);
	c->scope.warn[0] = '\0';
	if (c->st[STEP_SCOPE] != ST_LOCKED)
		c->st[STEP_SCOPE] = ST_OPEN;
	if (!f[F_COLL][0]) {
		c->scope.focus = F_COLL;
		console_msg(c, R_WARN, "type the collection's name");
		return EV_HANDLED;
	}
	if (ef_collection_name_check(f[F_COLL], &err) != EF_OK) {
		console_msg(c, R_FAIL, "%s", err.msg);
		clear_both(c);
		return EV_HANDLED;
	}
	if (!f[F_CONFIRM][0]) {
		c->scope.focus = F_CONFIRM;
		console_msg(c, R_WARN, "type the collection's name again to confirm it");
		return EV_HANDLED;
	}
	if (strcmp(f[F_COLL], f[F_CONFIRM]) != 0) {
		console_msg(c, R_FAIL, "the names differ (\"%s\" and \"%s\"): refused, both fields "
				       "cleared; type the exact name twice", f[F_COLL], f[F_CONFIRM]);
		clear_both(c);
		return EV_HANDLED;
	}
	if (!set_batch(c, f[F_BATCH]) || !parse_until(c, f[F_UNTIL], &c->scope.deadline))
		return EV_HANDLED;
	console_busy(c, "checking the collection");
	if (!known(c, f[F_COLL]))
		return EV_HANDLED;
	if (c->scope.warn[0]) {
		console_msg(c, R_WARN, "warning: %s (a: accept)", c->scope.warn);
		return EV_HANDLED;
	}
	return confirmed(c, false);
}

/* --- keys ----------------------------------------------------------------- */

static void edit(struct console *c, int key)
{
	char *f = c->scope.f[c->scope.focus];
	size_t len = strlen(f);

	if (key == 127 || key == 8 || key == KEY_BACKSPACE) {
		while (len && ((unsigned char)f[len - 1] & 0xc0) == 0x80)
			len--;
		if (len)
			len--;
		f[len] = '\0';
	} else if (key == 21) {
		f[0] = '\0';
	} else if (len + 1 < sizeof(c->scope.f[0])) {
		f[len] = (char)key;
		f[len + 1] = '\0';
	}
	if (c->scope.warn[0])
		c->scope.warn[0] = '\0';
}

static enum ev scope_key(struct console *c, int key, enum action a)
{
	if (c->run.started) {
		if (a == A_FIELD || (key >= 0x20 && key < 0x100 && key != '?'))
			console_msg(c, R_DIM, "the run has started: the scope is fixed");
		return a == A_FIELD ? EV_HANDLED : EV_IGNORED;
	}
	if (a == A_FIELD) {
		int d = key == KEY_BTAB || key == KEY_UP ? F__COUNT - 1 : 1;
		c->scope.focus = (c->scope.focus + d) % F__COUNT;
		return EV_HANDLED;
	}
	if (a == A_NEXT)
		return submit(c);
	/* while a warning waits, a accepts it; any other edit withdraws it */
	if (a == A_ACCEPT && c->scope.warn[0] && c->scope.focus != F_NOTE)
		return confirmed(c, true);
	if (key == '?' && c->scope.focus != F_NOTE)
		return EV_IGNORED;
	if ((key >= 0x20 && key < 0x100 && key != 0x7f) || key == 127 || key == 8 ||
	    key == KEY_BACKSPACE || key == 21) {
		edit(c, key);
		return EV_HANDLED;
	}
	return EV_IGNORED;
}

static bool scope_can(const struct console *c, enum action a)
{
	switch (a) {
	case A_NEXT:
		return !c->run.started;
	case A_ACCEPT:
		return c->scope.warn[0] != '\0';
	default:
		return false;
	}
}

static const enum action scope_actions[] = { A_FIELD, A_ACCEPT, A_NONE };

const struct screen screen_scope = {
	.name = "Scope",
	.help = "Step 1 confirms what will be touched. Type the collection's name, Tab, "
		"and type it again: the two must match exactly, and the collection must "
		"exist. A name a typo (edit distance 2 or less) away from another existing "
		"collection is a warning you accept with a, and the acceptance goes into the "
		"run's historylog entry (written in step 6). Batch size is chunks per "
		"embedding request (default 100, smaller on weak hardware). The window note and end time (HH:MM or HH:MM:SS) go into the "
		"records; the run stops cleanly at the end time. Fields: Backspace deletes, "
		"Ctrl-U clears; ? is typed in the note field (use F1 there).",
	.actions = scope_actions,
	.text_input = true,
	.enter = scope_enter,
	.draw = scope_draw,
	.on_key = scope_key,
	.can = scope_can,
};
