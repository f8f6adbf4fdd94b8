/*
 * screen_run.c - step 4: the backfill on the worker thread, drawn from the
 * snapshot the main loop copies (run_poll) several times a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/redact.h"
#include "tui/console/term.h"
#include "tui/console/worker.h"
#include "tui/flow/app.h"
#include "tui/flow/request.h"
#include "tui/console/console.h"

/*
 * The run the operator chose, through the same request as `embfill run`:
 * the engine's options and the reproducing command come from it.  The main
 * thread's session is closed first: the worker opens its own, and a server
 * that serves one connection at a time must have it free.
 */
static void start(struct console *c, bool resume)
{
	struct run_request r;
	struct ef_run_opts o;
	struct ef_error err;
	char why[256], from[sizeof(c->run.resumed_from)] = "";

	ef_error_clear(&err);
	/* where a resumed run goes on, shown until the engine reports */
	if (resume)
		snprintf(from, sizeof(from), "%s", c->run.have_res ? c->run.snap.p.checkpoint
			 : c->scope.interrupted.checkpoint);
	run_free(c);
	snprintf(c->run.resumed_from, sizeof(c->run.resumed_from), "%s", from);
	console_request(c, &r);
	r.resume = resume;
	if (app_embed_config(c->app, &c->run.ec, &err) != EF_OK ||
	    !(c->run.cmd = request_command(c->app, &r)) ||
	    request_run_opts(&r, c->run.cmd, &o, &err) != EF_OK) {
		console_msg(c, R_FAIL, "%s", err.msg[0] ? err.msg : "out of memory");
		return;
	}
	app_session_close(c->app);
	c->run.w = worker_start(c->app->cfg, &c->run.ec, &o, r.rechunk, term_wake_wfd(), why,
				sizeof(why));
	if (!c->run.w) {
		console_msg(c, R_FAIL, "%s", why);
		return;
	}
	c->run.started = true;
	c->st[STEP_RUN] = ST_OPEN;
	console_msg(c, R_ACCENT, "%s", resume ? "resuming the interrupted run" : "run started");
}

/* The worker finished: judge the run. */
static void finished(struct console *c)
{
	const struct ef_run_result *r;

	worker_join(c->run.w);
	c->run.finished = true;
	c->run.st = worker_status(c->run.w, &c->run.err);
	r = worker_result(c->run.w);
	c->run.res = *r;
	c->run.have_res = true;
	c->scope.resume = false;
	if (c->run.st == EF_OK && r->unconverged) {
		c->st[STEP_RUN] = ST_OPEN;
		console_msg(c, R_WARN, "the run did not converge: %lld chunks are still to embed "
			    "(e.g. chunk %s: %s); s runs again, a accepts", r->unconverged,
			    r->nleft ? r->left[0].key : "?", r->nleft ? r->left[0].why : "?");
	} else if (c->run.st == EF_OK && r->quarantined == 0) {
		c->st[STEP_RUN] = ST_PASSED;
		console_msg(c, R_GOOD, "%s: Enter goes on to validation", r->dry_run ? "dry run done, "
			    "nothing written" : "run completed");
	} else if (c->run.st == EF_OK) {
		c->st[STEP_RUN] = ST_OPEN;
		console_msg(c, R_WARN, "run completed with %lld chunk(s) quarantined: a accepts",
			    r->quarantined);
	} else {
		c->st[STEP_RUN] = ST_FAILED;
		console_msg(c, R_FAIL, "%s%s", c->run.err.msg, c->run.st == EF_ERR_INTERRUPTED ?
			    " - s resumes it" : "");
	}
}

void run_poll(struct console *c)
{
	if (!c->run.w || c->run.finished)
		return;
	worker_snapshot(c->run.w, &c->run.snap);
	if (c->run.snap.finished)
		finished(c);
}

void run_free(struct console *c)
{
	worker_free(c->run.w);
	c->run.w = NULL;
	free(c->run.cmd);
	c->run.cmd = NULL;
	c->run.finished = c->run.have_res = c->run.paused = false;
	memset(&c->run.snap, 0, sizeof(c->run.snap));
	memset(&c->run.res, 0, sizeof(c->run.res));
}

static void draw_ready(struct console *c)
{
	const struct ef_run_info *ri = &c->scope.interrupted;

	if (console_into(c))
		ui_line(c, R_NORMAL, "Ready to %s the new collection \"%s\" from \"%s\", then "
			"embed it, batches of %d, %d in flight; \"%s\" is not written.",
			c->plan.plan.chunking_changed ? "re-chunk" : "copy", c->plan.target,
			c->scope.collection, c->app->cfg->batch_size, c->app->cfg->concurrency,
			c->scope.collection);
	else
		ui_line(c, R_NORMAL, "Ready to %s collection \"%s\" %s, batches of %d, %d in "
			"flight.", c->scope.resume ? "resume" : "backfill", c->scope.collection,
			c->plan.mode == MODE_DRY_RUN ? "as a DRY RUN (nothing is written)"
			: c->plan.mode == MODE_MISSING_ONLY ? "in place, only chunks without a vector"
			: "in place",
			c->app->cfg->batch_size, c->app->cfg->concurrency);
	if (MODE_WRITES_IN_PLACE(c->plan.mode) && c->plan.backup)
		ui_line(c, R_NORMAL, "The vectors it overwrites are saved first (rollback restores "
			"them).");
	if (c->scope.resume)
		ui_line(c, R_WARN, "Run %lld stopped with %lld of %lld done; it continues after "
			"chunk %s.", ri->run_id, ri->done, ri->total,
			ri->checkpoint[0] ? ri->checkpoint : "(none: from the start)");
	if (c->plan.ok)
		ui_line(c, R_NORMAL, "The plan counts %lld chunks to embed.", c->plan.plan.todo);
	if (c->scope.until[0])
		ui_line(c, R_NORMAL, "It stops cleanly at %s, the end of the window.",
			c->scope.until);
	ui_blank(c);
	ui_line(c, R_TITLE, "Press s to start. During the run: p pauses, c cancels, q stops "
		"and leaves.");
}

static void draw_spark(struct console *c, const struct worker_snap *s)
{
	char buf[sizeof(c->lines[0].text)];
	double max = 0;
	int w = c->body_w - 24, first;
	size_t len;

	if (w > WORKER_SPARK)
		w = WORKER_SPARK;
	first = s->nspark > w ? s->nspark - w : 0;
	for (int i = first; i < s->nspark; i++)
		if (s->spark[i] > max)
			max = s->spark[i];
	len = (size_t)snprintf(buf, sizeof(buf), "Rate/s  ");
	for (int i = first; i < s->nspark && len + 8 < sizeof(buf); i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s",
					term_spark(max > 0 ? (int)(s->spark[i] / max * 7.0 + 0.5) : 0));
	snprintf(buf + len, sizeof(buf) - len, "  max %.0f", max);
	ui_line(c, R_ACCENT, "%s", buf);
}

/* The service away: when the run started waiting, when it tries again. */
static void draw_waiting(struct console *c, const struct ef_run_progress *p)
{
	struct tm tm;
	char at[16];

	if (!p->waiting || c->run.finished)
		return;
	localtime_r(&p->waiting_since, &tm);
	strftime(at, sizeof(at), "%H:%M:%S", &tm);
	ui_line(c, R_WARN, "[!] waiting for the service since %s, retry in %.0f s (q stops "
		"here; the run resumes later)", at, p->retry_in_s);
}

/* Each endpoint, when there are several: state, requests in flight, rate,
 * errors. */
static void draw_endpoints(struct console *c, const struct ef_run_progress *p)
{
	if (p->nendpoints < 2)
		return;
	ui_line(c, R_TITLE, "Endpoints");
	for (int i = 0; i < p->nendpoints; i++) {
		const struct ef_run_endpoint *x = &p->endpoints[i];
		const char *host = strstr(x->url, "://");

		ui_line(c, strcmp(x->state, "up") == 0 ? R_NORMAL : R_WARN,
			"  %s %-28.28s %-10s %u/%u in flight %6.0f/s %4lu err",
			strcmp(x->state, "up") == 0 ? "[x]" : "[!]", host ? host + 3 : x->url,
			x->state, x->in_flight, x->capacity, x->rate, x->errors);
	}
}

/* The run's workers, when it has more than this one: host, pid, the key
 * range each embeds, done, rate, heartbeat age. */
static void draw_workers(struct console *c, const struct ef_run_progress *p)
{
	if (p->nworkers < 2 && !p->joined)
		return;
	ui_line(c, R_TITLE, "Workers of run %lld: %lld of %lld chunks", p->run_id, p->run_done,
		p->run_total);
	for (int i = 0; i < p->nworkers; i++) {
		const struct ef_run_worker *w = &p->workers[i];

		ui_line(c, R_NORMAL, "  %s %-14.14s %7d %-22.22s %7lld %5.0f/s %4.1fs",
			w->me ? "[>]" : "   ", w->host, w->pid, w->lease, w->done, w->rate,
			w->heartbeat_age_s);
	}
}

static void draw_progress(struct console *c)
{
	const struct worker_snap *s = &c->run.snap;
	const struct ef_run_progress *p = &s->p;
	char suffix[128], eta[32], el[32];
	double frac = p->total ? (double)p->done / (double)p->total : s->finished ? 1.0 : 0;
	const char *checkpoint = p->checkpoint[0] || s->have_progress ? p->checkpoint
				 : c->run.resumed_from;

	fmt_duration(p->eta_s, eta, sizeof(eta));
	fmt_duration(p->elapsed_s, el, sizeof(el));
	snprintf(suffix, sizeof(suffix), "%5.1f%%", frac * 100);
	ui_bar(c, "Overall    ", frac, suffix);
	/* paused, the rate falls towards 0 and the ETA grows without meaning */
	if (c->run.w && worker_paused(c->run.w) && !c->run.finished)
		ui_line(c, R_WARN, "  %lld/%lld chunks  %s (p resumes)  elapsed %s", p->done,
			p->total, p->phase == EF_PHASE_PAUSED ? "paused" : "pausing: the requests "
			"on the wire finish", el);
	else
		ui_line(c, R_NORMAL, "  %lld/%lld chunks  %.1f/s  ETA %s  elapsed %s", p->done,
			p->total, p->rate, eta, el);
	draw_waiting(c, p);
	snprintf(suffix, sizeof(suffix), "%u/%u", p->in_flight, p->concurrency);
	ui_bar(c, "In flight  ", p->concurrency ? (double)p->in_flight / p->concurrency : 0,
	       suffix);
	ui_line(c, R_DIM, "  waited on: the service %.1f s, reading answers %.1f s, the "
		"database %.1f s", p->service_s, p->parse_s, p->db_s);
	snprintf(suffix, sizeof(suffix), "%lld of %lld requests", p->retries, p->requests);
	ui_bar(c, "Retries    ", p->requests ? (double)p->retries / (double)p->requests : 0,
	       suffix);
	snprintf(suffix, sizeof(suffix), "%lld of %lld", p->quarantined, p->done);
	ui_bar(c, "Quarantined", p->done ? (double)p->quarantined / (double)p->done : 0, suffix);
	draw_spark(c, s);
	ui_line(c, R_DIM, "phase %s%s, checkpoint: %s%s, written %lld",
		ef_run_phase_name(p->phase), c->run.w && worker_paused(c->run.w) &&
		!c->run.finished ? " (pause requested)" : "", checkpoint[0] ? "chunk " : "",
		checkpoint[0] ? checkpoint : "none yet", p->written);
	draw_endpoints(c, p);
	draw_workers(c, p);
	ui_line(c, R_TITLE, "Log");
	for (int i = 0; i < p->nlog; i++)
		ui_line(c, R_NORMAL, "  %s", p->log[i]);
}

static void draw_result(struct console *c)
{
	const struct ef_run_result *r = &c->run.res;

	ui_line(c, c->run.st == EF_OK ? R_GOOD : R_FAIL, "%s run %lld %s: %lld written, %lld "
		"quarantined of %lld in %.1f s (%.0f chunks/s), %lld retries",
		c->run.st == EF_OK ? "[ok]" : "[FAIL]", r->run_id, r->state, r->written,
		r->quarantined, r->total, r->elapsed_s, r->rate, r->retries);
	if (c->run.st != EF_OK && c->run.err.hint[0])
		ui_line(c, R_DIM, "       hint: %s", c->run.err.hint);
}

static void run_draw(struct console *c)
{
	if (console_into(c))
		ui_line(c, R_TITLE, "Step 4 - Run: \"%s\" into \"%s\"", c->scope.collection,
			c->plan.target);
	else
		ui_line(c, R_TITLE, "Step 4 - Run: \"%s\"%s", c->scope.collection,
			c->plan.mode == MODE_DRY_RUN ? " (dry run)" : c->plan.mode ==
			MODE_MISSING_ONLY ? " in place, only missing" : " in place");
	if (!c->run.started) {
		draw_ready(c);
		return;
	}
	if (c->run.snap.prep[0])
		ui_line(c, R_NORMAL, "%s", c->run.snap.prep);
	if (c->run.snap.p.run_id)
		ui_line(c, R_DIM, "run %lld", c->run.snap.p.run_id);
	if (c->run.finished)
		draw_result(c);
	draw_progress(c);
}

static void cancel_answer(struct console *c, bool yes)
{
	if (!yes || !console_run_active(c))
		return;
	worker_cancel(c->run.w);
	console_msg(c, R_WARN, "cancelling: requests on the wire are aborted; what was written "
			       "stays and the rest is resumable");
}

void run_ask_cancel(struct console *c)
{
	console_confirm(c, "Cancel the run?", "Cancel the run? Requests on the wire are "
			"aborted; batches already written stay, and the rest can be resumed "
			"later.", cancel_answer);
}

static enum ev run_key(struct console *c, int key, enum action a)
{
	bool active = console_run_active(c);

	(void)key;
	switch (a) {
	case A_START:
		if (active || c->st[STEP_RUN] == ST_PASSED || c->st[STEP_RUN] == ST_ACCEPTED)
			return EV_HANDLED;
		/* the interrupted run found at scope is the live collection's: a run
		 * into a new collection resumes only its own */
		start(c, (c->scope.resume && !console_into(c)) ||
			 (c->run.have_res && c->run.res.run_id && !c->run.res.dry_run));
		return EV_HANDLED;
	case A_PAUSE:
		if (active && !worker_stopping(c->run.w)) {
			worker_pause(c->run.w, !worker_paused(c->run.w));
			console_msg(c, R_ACCENT, worker_paused(c->run.w) ? "paused: no new request "
				    "starts (p resumes)" : "resumed");
		}
		return EV_HANDLED;
	case A_CANCEL:
		if (!worker_stopping(c->run.w))
			run_ask_cancel(c);
		return EV_HANDLED;
	case A_ACCEPT:
		if (c->run.finished && c->run.st == EF_OK && c->st[STEP_RUN] == ST_OPEN) {
			char buf[128];
			snprintf(buf, sizeof(buf), "%lld chunk(s) quarantined by the service",
				 c->run.res.quarantined);
			console_accept(c, "run", buf);
			c->st[STEP_RUN] = ST_ACCEPTED;
			return EV_NEXT;
		}
		return EV_HANDLED;
	default:
		return EV_IGNORED;
	}
}

static bool run_can(const struct console *c, enum action a)
{
	bool active = console_run_active(c);

	switch (a) {
	case A_START:
		return !active && c->st[STEP_RUN] != ST_PASSED && c->st[STEP_RUN] != ST_ACCEPTED;
	case A_PAUSE:
	case A_CANCEL:
		return active;
	case A_ACCEPT:
		return c->run.finished && c->run.st == EF_OK && c->st[STEP_RUN] == ST_OPEN;
	case A_NEXT:
		return c->st[STEP_RUN] == ST_PASSED || c->st[STEP_RUN] == ST_ACCEPTED;
	case A_BACK:
		return !c->run.started;
	default:
		return false;
	}
}

static const enum action run_actions[] = { A_START, A_PAUSE, A_CANCEL, A_ACCEPT, A_NONE };

const struct screen screen_run = {
	.name = "Run",
	.help = "Step 4 runs the backfill on a worker thread: batches of missing and stale "
		"chunks are embedded, several requests in flight, and each batch is written "
		"with its checkpoint in one transaction. The bars show overall progress (percent, "
		"done/total, rate, ETA), requests in flight, retries and quarantined chunks; the "
		"sparkline shows the rate over the last minute. p pauses (requests on the wire "
		"finish) and resumes; c cancels after a confirmation; q stops this worker (not "
		"the run's others) after the batches in flight are written and leaves. A stopped "
		"run is resumable: s here, or a new console offers it.",
	.actions = run_actions,
	.draw = run_draw,
	.on_key = run_key,
	.can = run_can,
};
