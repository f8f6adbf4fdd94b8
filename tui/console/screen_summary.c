/*
 * screen_summary.c - step 6: what changed, why, how to verify, next steps,
 * and the historylog entry exactly as it will be written; w writes it.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/spotcheck.h"
#include "embfill/strbuf.h"
#include "tui/flow/command.h"
#include "tui/flow/history.h"
#include "tui/flow/life.h"
#include "tui/console/console.h"

static void spot_lines(struct console *c)
{
	const struct ef_spot_report *s = &c->validate.sr;

	if (!c->validate.have_sr || !s->nqueries)
		return;
	c->summary.spot = calloc(s->nqueries, sizeof(char *));
	for (size_t i = 0; c->summary.spot && i < s->nqueries; i++) {
		const struct ef_spot_query *q = &s->queries[i];
		struct ef_strbuf b = EF_STRBUF_INIT;
		char *text = ef_spot_cut(q->text, 60);

		ef_strbuf_addf(&b, "\"%s\" ->", text ? text : "");
		free(text);
		for (size_t j = 0; j < q->ncites; j++)
			ef_strbuf_addf(&b, "%s %s #%lld (%.2f)", j ? ";" : "",
				       q->cites[j].title ? q->cites[j].title : "(no title)",
				       q->cites[j].chunk_index, q->cites[j].score);
		if (!q->ncites)
			ef_strbuf_add(&b, " no citation");
		c->summary.spot[c->summary.nspot++] = ef_strbuf_take(&b);
	}
}

/* The run's entry, as `run --historylog` writes it, with what the console
 * adds: the spot-check's citations and the warnings the operator accepted. */
static void build_entry(struct console *c)
{
	struct history_extras x = { .verification = NULL };

	summary_free(c);
	if (!c->run.have_res) {
		snprintf(c->summary.err, sizeof(c->summary.err), "no run to record");
		return;
	}
	spot_lines(c);
	x.verification = c->validate.verification[0] ? c->validate.verification : NULL;
	x.spot_lines = (const char *const *)c->summary.spot;
	x.nspot = c->summary.nspot;
	x.accepted = (const char *const *)c->accepted;
	x.naccepted = c->naccepted;
	c->summary.entry = history_run_entry(c->app, console_target(c),
					     c->scope.note[0] ? c->scope.note : NULL, &c->run.res,
					     c->run.st, c->run.cmd, &x);
	if (!c->summary.entry)
		snprintf(c->summary.err, sizeof(c->summary.err), "out of memory");
}

static void summary_enter(struct console *c)
{
	if (!c->summary.entry && !c->summary.written)
		build_entry(c);
}

bool summary_pending(const struct console *c)
{
	return c->run.have_res && c->run.res.run_id && !c->run.res.dry_run &&
	       !c->summary.written;
}

static void write_entry(struct console *c);

bool summary_write(struct console *c)
{
	if (!c->summary.entry && !c->summary.written)
		build_entry(c);
	write_entry(c);
	return c->summary.written;
}

void summary_free(struct console *c)
{
	free(c->summary.entry);
	for (size_t i = 0; i < c->summary.nspot; i++)
		free(c->summary.spot[i]);
	free(c->summary.spot);
	memset(&c->summary, 0, sizeof(c->summary));
}

/*
 * Why the run was needed, and the path it took.  Into a new collection,
 * the run's own counts are the new collection's (every chunk missing), so
 * the reason is the plan's, of the live collection: the model, dimension
 * or chunking that changed; then the path: made, embedded, verified, and
 * swapped or to be swapped.
 */
static void draw_why(struct console *c)
{
	const struct ef_run_result *r = &c->run.res;
	const struct ef_plan *p = &c->plan.plan;
	bool reason = false;

	ui_line(c, R_TITLE, "Why");
	if (!console_into(c)) {
		ui_line(c, R_NORMAL, "  - %lld chunks had no vector and %lld had a stale one (of "
			"another model %lld, another dimension %lld, changed content %lld)",
			r->before.missing, r->before.stale, r->before.stale_model,
			r->before.stale_dim, r->before.stale_content);
		ui_line(c, R_NORMAL, "  - retrieval needs a fresh vector of \"%s\" for every chunk",
			c->app->cfg->embed_model);
		return;
	}
	for (size_t i = 0; i < p->nrisks; i++) {
		if (p->risks[i].level != EF_RISK_HIGH)
			continue;
		ui_line(c, R_NORMAL, "  - %s", p->risks[i].what);
		reason = true;
	}
	if (!reason)
		ui_line(c, R_NORMAL, "  - a new collection was chosen in step 3 for \"%s\" (%lld "
			"chunks, %lld stale)", c->scope.collection, p->counts.chunks,
			p->counts.stale);
	ui_line(c, R_NORMAL, "  - so the path was a new collection: readers of \"%s\" kept its "
		"vectors while \"%s\" was %s from it and embedded with \"%s\"%s",
		c->scope.collection, c->plan.target, p->chunking_changed ? "re-chunked" : "copied",
		c->app->cfg->embed_model, !c->validate.done ? "" : c->validate.verify_ok
		? ", then verified" : ", then checked (its problems accepted)");
	if (c->summary.swapped)
		ui_line(c, R_NORMAL, "  - then the swap put \"%s\" in \"%s\"'s place in one "
			"transaction; the old one is kept, and `embfill rollback -C %s` undoes it",
			c->plan.target, c->scope.collection, c->scope.collection);
	else
		ui_line(c, R_NORMAL, "  - the swap is next: x puts \"%s\" in \"%s\"'s place",
			c->plan.target, c->scope.collection);
}

static void draw_changes(struct console *c)
{
	const struct ef_run_result *r = &c->run.res;

	ui_line(c, R_TITLE, "What changed");
	if (r->dry_run)
		ui_line(c, R_NORMAL, "  - nothing: this was a dry run (%lld chunks would be "
			"embedded)", r->total);
	else
		ui_line(c, R_NORMAL, "  - run %lld wrote %lld vectors into \"%s\" (%lld quarantined) "
			"in %.1f s, %.0f chunks/s, %lld retries", r->run_id, r->written,
			console_target(c), r->quarantined, r->elapsed_s, r->rate, r->retries);
	if (console_into(c))
		ui_line(c, R_NORMAL, "  - \"%s\" is a new collection made from \"%s\"%s; \"%s\" "
			"itself was not written", c->plan.target, c->scope.collection,
			c->plan.plan.chunking_changed ? " by re-chunking its documents" : "",
			c->scope.collection);
	if (r->backed_up)
		ui_line(c, R_NORMAL, "  - %lld rows were saved first: `embfill rollback -C %s` puts "
			"them back", r->backed_up, c->scope.collection);
	ui_line(c, R_NORMAL, "  - before: %lld chunks, %lld missing, %lld stale; after: %lld "
		"missing, %lld stale", r->before.chunks, r->before.missing, r->before.stale,
		r->after.missing, r->after.stale);
	draw_why(c);
}

static void draw_swap_command(struct console *c);

static void draw_verify(struct console *c)
{
	static const char *const cmds[] = { "verify", "spot-check", "status" };

	ui_line(c, R_TITLE, "How to verify");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *cmd = command_for(c->app, cmds[i], console_target(c));
		ui_line(c, R_ACCENT, "  $ %s", cmd ? cmd : "");
		free(cmd);
	}
	ui_line(c, R_ACCENT, "  $ embfill history -n 1");
	ui_line(c, R_TITLE, "Next steps");
	if (console_into(c) && !c->summary.swapped) {
		ui_line(c, R_NORMAL, "  1. x swaps \"%s\" into \"%s\"'s place once it verifies "
			"clean, or headless:", c->plan.target, c->scope.collection);
		draw_swap_command(c);
		ui_line(c, R_NORMAL, "  2. `embfill rollback -C %s` undoes the swap if readers "
			"complain", c->scope.collection);
		return;
	}
	if (c->run.res.after.missing + c->run.res.after.stale > 0 || c->run.res.dry_run)
		ui_line(c, R_NORMAL, "  1. run the backfill again (or resume) until nothing is "
			"missing or stale");
	else
		ui_line(c, R_NORMAL, "  1. point retrieval traffic at \"%s\" again and watch "
			"for empty results", c->scope.collection);
	ui_line(c, R_NORMAL, "  2. commit the historylog entry with the change it records");
	if (c->run.res.quarantined)
		ui_line(c, R_NORMAL, "  3. look at the quarantined chunks (`embfill verify` "
			"lists their reasons)");
}

static void summary_draw(struct console *c)
{
	ui_line(c, R_TITLE, "Step 6 - Summary: \"%s\"", console_target(c));
	if (c->summary.swap_msg[0])
		ui_line(c, c->summary.swap_role, "%s", c->summary.swap_msg);
	if (c->summary.written)
		ui_line(c, R_GOOD, "[ok]   entry written at the top of %s", c->summary.where);
	if (c->summary.err[0])
		ui_line(c, R_FAIL, "[FAIL] %s", c->summary.err);
	draw_changes(c);
	draw_verify(c);
	ui_blank(c);
	ui_line(c, R_TITLE, "Historylog entry, exactly as it will be written to %s",
		c->app->cfg->historylog);
	if (c->summary.entry)
		ui_line(c, R_NORMAL, "%s", c->summary.entry);
}

static void write_entry(struct console *c)
{
	struct ef_error err;
	char real[PATH_MAX];

	ef_error_clear(&err);
	if (!c->summary.entry || c->summary.written)
		return;
	if (history_write(c->app, c->summary.entry, &err) != EF_OK) {
		snprintf(c->summary.err, sizeof(c->summary.err), "%.900s%s%.900s", err.msg,
			 err.hint[0] ? " - hint: " : "", err.hint);
		console_msg(c, R_FAIL, "the historylog entry was not written");
		return;
	}
	c->summary.written = true;
	c->summary.err[0] = '\0';
	snprintf(c->summary.where, sizeof(c->summary.where), "%.1000s",
		 realpath(c->app->cfg->historylog, real) ? real : c->app->cfg->historylog);
	c->st[STEP_SUMMARY] = ST_PASSED;
	c->scroll[STEP_SUMMARY] = 0;
	console_msg(c, R_GOOD, "historylog entry written at the top of %s", c->summary.where);
}

static void swap_request_of(const struct console *c, struct swap_request *r)
{
	memset(r, 0, sizeof(*r));
	r->collection = c->scope.collection;
	r->with = c->plan.target;
	r->approve_provider = c->plan.approved;
}

/* The command `embfill swap` would record for this swap. */
static void draw_swap_command(struct console *c)
{
	struct swap_request r;
	char *cmd;

	swap_request_of(c, &r);
	cmd = swap_command(c->app, &r);
	ui_line(c, R_ACCENT, "  $ %s", cmd ? cmd : "");
	free(cmd);
}

/* The swap, on the live name typed again: the same workflow as `embfill
 * swap` (the gate, the renames in one transaction, its historylog entry). */
static void swap_answer(struct console *c, const char *typed)
{
	struct swap_request r;
	struct swap_outcome o;
	struct ef_error err;

	if (strcmp(typed, c->scope.collection) != 0) {
		console_msg(c, R_FAIL, "\"%s\" is not \"%s\": nothing was swapped", typed,
			    c->scope.collection);
		return;
	}
	console_busy(c, "swapping: checking the new collection, then renaming");
	ef_error_clear(&err);
	swap_request_of(c, &r);
	if (flow_swap(c->app, &r, &o, &err) != EF_OK) {
		c->summary.swap_role = R_FAIL;
		snprintf(c->summary.swap_msg, sizeof(c->summary.swap_msg), "[FAIL] not swapped: "
			 "%.400s%s%.500s", err.msg, o.res.refusal[0] ? " - " : "", o.res.refusal);
		console_msg(c, R_FAIL, "the swap was refused; nothing changed");
		return;
	}
	c->summary.swapped = true;
	c->summary.swap_role = R_GOOD;
	snprintf(c->summary.swap_msg, sizeof(c->summary.swap_msg), "[ok]   swap %lld: \"%s\" "
		 "now holds what was \"%s\"; the previous one is kept as \"%.300s\"%s%.300s",
		 o.res.swap_id, c->scope.collection, c->plan.target, o.res.previous_name,
		 o.res.vectors_table[0] ? "; its vectors live in " : "", o.res.vectors_table);
	if (!o.logged)
		console_msg(c, R_FAIL, "swapped, but the historylog entry was not written: %s",
			    o.log_err.msg);
	else
		console_msg(c, R_GOOD, "swapped; the swap is in the historylog");
}

/* Only what summary_can() allows reaches here (the loop checks it first). */
static enum ev summary_key(struct console *c, int key, enum action a)
{
	char text[1024];

	(void)key;
	if (a == A_WRITE) {
		write_entry(c);
		return EV_HANDLED;
	}
	if (a == A_SWAP) {
		snprintf(text, sizeof(text), "Put \"%s\" in the place of \"%s\"? The old one is "
			 "kept and `embfill rollback` undoes it. Type the live collection's name, "
			 "\"%s\", to confirm.", c->plan.target, c->scope.collection,
			 c->scope.collection);
		console_prompt(c, "Swap", text, swap_answer);
		return EV_HANDLED;
	}
	if (a == A_NEXT)
		return EV_HANDLED;
	return EV_IGNORED;
}

static bool summary_can(const struct console *c, enum action a)
{
	if (a == A_SWAP)
		return console_into(c) && !c->summary.swapped && c->run.have_res &&
		       !c->run.res.dry_run;
	return a == A_WRITE && c->summary.entry && !c->summary.written;
}

static const char *summary_why_not(const struct console *c, enum action a)
{
	if (a == A_SWAP)
		return c->summary.swapped ? "swapped already" : "only after a run into a new "
									 "collection";
	if (a == A_WRITE)
		return c->summary.written ? "the entry is written already" : "there is no entry";
	return NULL;
}

static const enum action summary_actions[] = { A_WRITE, A_SWAP, A_NONE };

const struct screen screen_summary = {
	.name = "Summary",
	.help = "Step 6 sums up what changed and why, the exact commands that verify it "
		"again, and the next steps. Below is the historylog entry exactly as it will "
		"be written (newest first, under the file's title): w writes it at the top of "
		"the historylog (setting HISTORYLOG) and shows where. Accepted warnings are part "
		"of the entry. After a run into a new collection, x swaps it into the live "
		"one's place once you type the live name again; the swap checks it first, "
		"keeps the old collection, and is written to the historylog at once.",
	.actions = summary_actions,
	.enter = summary_enter,
	.draw = summary_draw,
	.on_key = summary_key,
	.can = summary_can,
	.why_not = summary_why_not,
	.forget = summary_free,
};
