/*
 * screen_validate.c - step 5: vector rows against chunk rows (or each
 * discrepancy explained), the isolation audit, and 3 to 5 spot-check
 * queries with their citations, sampled or typed by the operator.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/spotcheck.h"
#include "embfill/verify.h"
#include "tui/flow/app.h"
#include "tui/flow/history.h"
#include "tui/console/console.h"

#define SPOT_K 3

static void spot(struct console *c, ef_session *s)
{
	struct ef_embed_config ec;
	struct ef_spot_request req = { .collection = console_target(c), .k = SPOT_K };
	struct ef_error err;

	ef_error_clear(&err);
	req.queries = (const char *const *)c->validate.queries;
	req.nqueries = c->validate.nqueries;
	if (app_embed_config(c->app, &ec, &err) == EF_OK &&
	    ef_spotcheck(s, &ec, &req, &c->validate.sr, &err) == EF_OK) {
		c->validate.have_sr = true;
		c->validate.spot_ok = c->validate.sr.ok;
	} else {
		snprintf(c->validate.err, sizeof(c->validate.err), "spot-check: %.900s%s%.900s", err.msg,
			 err.hint[0] ? "\nhint: " : "", err.hint);
	}
}

/* The same line `run --historylog` writes, with the spot-check's verdict. */
static void verification_line(struct console *c)
{
	history_verification(&c->validate.vr, c->validate.have_sr ? &c->validate.sr : NULL,
			     c->validate.verification, sizeof(c->validate.verification));
}

static void validate_run(struct console *c, bool verify_too)
{
	struct ef_error err;
	ef_session *s;

	console_busy(c, "verifying counts and spot-checking retrieval");
	ef_error_clear(&err);
	c->validate.err[0] = '\0';
	if (c->validate.have_sr)
		ef_spot_report_free(&c->validate.sr);
	c->validate.have_sr = c->validate.spot_ok = false;
	if (app_session(c->app, EF_NEED_TABLES, &s, &err) != EF_OK) {
		snprintf(c->validate.err, sizeof(c->validate.err), "%.1000s", err.msg);
		c->st[STEP_VALIDATE] = ST_FAILED;
		return;
	}
	if (verify_too) {
		if (c->validate.have_vr)
			ef_verify_report_free(&c->validate.vr);
		c->validate.have_vr = ef_verify(s, console_target(c), &c->validate.vr,
						&err) == EF_OK;
		c->validate.verify_ok = c->validate.have_vr && c->validate.vr.ok;
		if (!c->validate.have_vr)
			snprintf(c->validate.err, sizeof(c->validate.err), "verify: %.1000s", err.msg);
	}
	if (c->validate.have_vr)
		spot(c, s);
	c->validate.done = true;
	if (c->validate.have_vr)
		verification_line(c);
	c->st[STEP_VALIDATE] = !c->validate.have_vr ? ST_FAILED
		 : c->validate.verify_ok && c->validate.spot_ok ? ST_PASSED : ST_OPEN;
	console_msg(c, c->st[STEP_VALIDATE] == ST_PASSED ? R_GOOD : R_WARN, c->st[STEP_VALIDATE] == ST_PASSED ?
		    "counts match and retrieval cites the collection: Enter goes on" :
		    c->st[STEP_VALIDATE] == ST_FAILED ? "validation could not run: r tries again" :
		    "validation found problems: read them; a accepts them (recorded)");
}

static void validate_enter(struct console *c)
{
	if (!c->validate.done)
		validate_run(c, true);
}

void validate_free(struct console *c)
{
	if (c->validate.have_vr)
		ef_verify_report_free(&c->validate.vr);
	if (c->validate.have_sr)
		ef_spot_report_free(&c->validate.sr);
	for (size_t i = 0; i < c->validate.nqueries; i++)
		free(c->validate.queries[i]);
	memset(&c->validate, 0, sizeof(c->validate));
}

static void draw_counts(struct console *c)
{
	const struct ef_verify_report *v = &c->validate.vr;

	ui_line(c, R_TITLE, "Counts");
	ui_line(c, v->ok ? R_GOOD : R_FAIL, "%s %lld chunks, %lld vector rows (%lld chunks embedded, "
		"%lld fresh)%s", v->ok ? "[ok]  " : "[FAIL]", v->chunks, v->vectors, v->embedded,
		v->fresh, v->ok && !v->nissues ? ": they match" : "");
	for (size_t i = 0; i < v->nissues; i++) {
		const struct ef_verify_issue *is = &v->issues[i];

		ui_line(c, is->explained ? R_WARN : R_FAIL, "  %lld %s%s", is->count, is->title,
			is->explained ? " (explained)" : "");
		ui_line(c, R_NORMAL, "    why: %s", is->reason);
		if (is->hint && *is->hint)
			ui_line(c, R_DIM, "    hint: %s", is->hint);
	}
	for (size_t i = 0; i < v->nmodels; i++)
		ui_line(c, R_DIM, "  vectors of \"%s\", dimension %d: %lld",
			v->models[i].model ? v->models[i].model : "(none)", v->models[i].dim,
			v->models[i].count);
}

static void draw_isolation(struct console *c)
{
	const struct ef_verify_report *v = &c->validate.vr;
	long long o = ef_verify_count(v, "orphans"), x = ef_verify_count(v, "cross_tenant"),
		  in = ef_verify_count(v, "cross_tenant_inbound");

	ui_line(c, R_TITLE, "Isolation audit");
	if (v->inline_layout) {
		ui_line(c, R_GOOD, "[ok]   vectors live on the chunk rows: nothing can cross");
		return;
	}
	ui_line(c, o + x + in ? R_FAIL : R_GOOD, "%s %lld orphans, %lld rows filed here pointing at "
		"another collection's chunks, %lld rows of other collections pointing here",
		o + x + in ? "[FAIL]" : "[ok]  ", o, x, in);
	ui_line(c, v->isolation_fk ? R_GOOD : R_WARN, "%s the database %s cross-tenant rows",
		v->isolation_fk ? "[ok]  " : "[warn]", v->isolation_fk ? "refuses (foreign key)"
		: "does not refuse (no composite foreign key)");
}

static void draw_spot(struct console *c)
{
	const struct ef_spot_report *s = &c->validate.sr;

	ui_line(c, R_TITLE, "Spot-check (%s, top %d)", s->sampled ? "sampled chunks" :
		"typed queries", s->k);
	if (s->coverage < 1.0 && s->comparable > 0)
		ui_line(c, s->partial ? R_FAIL : R_WARN, "%s coverage: only %lld of %lld chunks "
			"(%.0f%%) have a vector of this model; citations come from those alone%s",
			s->partial ? "[FAIL]" : "[warn]", s->comparable, s->chunks,
			s->coverage * 100, s->partial ? ": partial, below SPOTCHECK_MIN_COVERAGE" : "");
	if (s->sampled)
		ui_line(c, s->retrieval_ok ? R_GOOD : R_FAIL, "%s self-retrieval %zu/%zu (%.0f%%)",
			s->retrieval_ok ? "[ok]  " : "[FAIL]", s->hits, s->nqueries,
			s->hit_rate * 100);
	for (size_t i = 0; i < s->nqueries; i++) {
		const struct ef_spot_query *q = &s->queries[i];
		char *text = ef_spot_cut(q->text, 36);

		ui_line(c, q->ncites ? R_NORMAL : R_FAIL, "Q%zu \"%s\"%s%s", i + 1,
			text ? text : "", q->sample_key ? (q->self_hit ? " [self-hit]" : " [miss]")
			: "", q->ncites ? "" : " - no citation");
		free(text);
		for (size_t j = 0; j < q->ncites; j++) {
			const struct ef_spot_citation *ct = &q->cites[j];
			char *title = ct->title ? ef_spot_cut(ct->title, 18) : NULL;
			char *src = ct->source ? ef_spot_cut(ct->source, 22) : NULL;

			ui_line(c, R_DIM, "   %zu. %.2f %s, %s #%lld", j + 1,
				isnan(ct->score) ? 0.0 : ct->score, title ? title : "(no title)",
				src ? src : "(no source)", ct->chunk_index);
			free(title);
			free(src);
		}
	}
}

static void validate_draw(struct console *c)
{
	ui_line(c, R_TITLE, "Step 5 - Validate: \"%s\"", console_target(c));
	if (c->validate.err[0])
		ui_line(c, R_FAIL, "[FAIL] %s", c->validate.err);
	if (!c->validate.have_vr)
		return;
	draw_counts(c);
	draw_isolation(c);
	if (c->validate.have_sr)
		draw_spot(c);
}

static void add_query(struct console *c, const char *text)
{
	if (!*text)
		return;
	if (c->validate.nqueries == SPOT_MAX) {
		console_msg(c, R_WARN, "at most %d queries; s samples again", SPOT_MAX);
		return;
	}
	c->validate.queries[c->validate.nqueries] = strdup(text);
	if (c->validate.queries[c->validate.nqueries])
		c->validate.nqueries++;
	validate_run(c, false);
}

static enum ev validate_key(struct console *c, int key, enum action a)
{
	(void)key;
	switch (a) {
	case A_RECHECK:
		validate_run(c, true);
		return EV_HANDLED;
	case A_QUERY:
		console_prompt(c, "Spot-check query", "Type a query; its top chunks of the "
			       "collection are retrieved with citations.", add_query);
		return EV_HANDLED;
	case A_SAMPLE:
		for (size_t i = 0; i < c->validate.nqueries; i++)
			free(c->validate.queries[i]);
		c->validate.nqueries = 0;
		validate_run(c, false);
		return EV_HANDLED;
	case A_ACCEPT:
		console_accept(c, "validate", c->validate.verification);
		c->st[STEP_VALIDATE] = ST_ACCEPTED;
		return EV_NEXT;
	default:
		return EV_IGNORED;
	}
}

static bool validate_can(const struct console *c, enum action a)
{
	switch (a) {
	case A_RECHECK:
	case A_QUERY:
	case A_SAMPLE:
		return true;
	case A_ACCEPT:
		return c->st[STEP_VALIDATE] == ST_OPEN && c->validate.have_vr;
	case A_NEXT:
		return c->st[STEP_VALIDATE] == ST_PASSED || c->st[STEP_VALIDATE] == ST_ACCEPTED;
	default:
		return false;
	}
}

static const enum action validate_actions[] = { A_QUERY, A_SAMPLE, A_RECHECK, A_ACCEPT,
						A_NONE };

const struct screen screen_validate = {
	.name = "Validate",
	.help = "Step 5 counts again: vector rows against chunk rows, each discrepancy with "
		"its reason and hint (a quarantined chunk is explained). The isolation audit "
		"counts orphans and rows that cross between collections. The spot-check embeds "
		"queries with the same model and retrieves the collection's top chunks with "
		"their citations (title, source, chunk, score): 5 sampled chunks by default, "
		"each of which should retrieve itself; t types a query of your own (up to 5), "
		"s samples again, r verifies again.",
	.actions = validate_actions,
	.enter = validate_enter,
	.draw = validate_draw,
	.on_key = validate_key,
	.can = validate_can,
	.forget = validate_free,
};
