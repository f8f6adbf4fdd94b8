/*
 * cmd_run.c - `embfill run -C COLL --confirm COLL ...`: the headless
 * backfill, with a progress line, signals that checkpoint, and a summary.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "embfill/lifecycle.h"
#include "embfill/run.h"
#include "tui/cli/cli.h"
#include "tui/flow/app.h"
#include "tui/flow/history.h"
#include "tui/flow/request.h"

static atomic_int stop_flag;
static atomic_int cancel_flag;
static volatile sig_atomic_t last_signal;

/* The first signal stops after the batches in flight are written; a second
 * one aborts them (what was written stays written). */
static void on_signal(int sig)
{
	last_signal = sig;
	if (atomic_load(&stop_flag))
		atomic_store(&cancel_flag, 1);
	atomic_store(&stop_flag, 1);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

struct progress_ctx {
	bool tty;
	time_t last_plain;
	unsigned long last_log;   /* the run's log lines printed so far */
	bool was_waiting;
	int last_phase;
};

static void fmt_eta(double s, char *buf, size_t n)
{
	if (s < 0)
		snprintf(buf, n, "--:--");
	else if (s >= 3600)
		snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
	else
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* "waiting for the service since 10:04:31, retry in 8 s", or "". */
static void waiting_text(const struct ef_run_progress *p, char *buf, size_t n)
{
	struct tm tm;
	char at[16];

	buf[0] = '\0';
	if (!p->waiting)
		return;
	localtime_r(&p->waiting_since, &tm);
	strftime(at, sizeof(at), "%H:%M:%S", &tm);
	snprintf(buf, n, "waiting for the service since %s, retry in %.0f s", at, p->retry_in_s);
}

/* Each endpoint when there are several: "gpu1:8080 up 2/2 310/s 0 err". */
static void endpoints_text(const struct ef_run_progress *p, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; p->nendpoints > 1 && i < p->nendpoints && len < n; i++) {
		const struct ef_run_endpoint *x = &p->endpoints[i];
		const char *host = strstr(x->url, "://");

		len += (size_t)snprintf(buf + len, n - len, "%s%.40s %s %u/%u %.0f/s %lu err",
					i ? ", " : "", host ? host + 3 : x->url, x->state,
					x->in_flight, x->capacity, x->rate, x->errors);
	}
}

/* Several workers: the run's progress, not this worker's alone. */
static double run_pct(const struct ef_run_progress *p, long long *done, long long *total)
{
	bool run = p->nworkers > 1 || p->joined;

	*done = run ? p->run_done : p->done;
	*total = run ? p->run_total : p->total;
	return *total ? 100.0 * (double)*done / (double)*total : 100.0;
}

/* What the run logged since the last report (endpoints failing and back,
 * leases taken over, chunks quarantined), each line once. */
static void print_log(struct progress_ctx *c, const struct ef_run_progress *p)
{
	unsigned long first = p->nlogged - (unsigned long)p->nlog;

	if (c->last_log < first)
		c->last_log = first;
	/* the escape that clears the progress line is the format's own: an
	 * argument would be printed as the text "\x1b[K" */
	for (; c->last_log < p->nlogged; c->last_log++)
		out_printf(stderr, c->tty ? "\r\033[Kembfill: %s\n" : "embfill: %s\n",
			   p->log[c->last_log - first]);
}

/* The terminal's width, as ls(1) reads it: COLUMNS when it holds a
 * number, else the terminal's own, else 80.  Read at every update, so a
 * resized window gets lines that fit it. */
static int line_width(void)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;
	long n = env ? strtol(env, NULL, 10) : 0;

	if (n > 0 && n < 10000)
		return (int)n;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/*
 * The progress line of a terminal, rewritten in place: it must stay one
 * line, so it is at most width - 1 columns (a full line would wrap at the
 * last column on many terminals, and every update would add a line).
 * Fields go, least useful first, until it fits: requests in flight and the
 * endpoints, zero counts of quarantined chunks and retries, the phase, the
 * rate and the workers, non-zero counts, and last the ETA (or the wait for
 * the service); the percentage and the counts always stay.  Several
 * workers: the run's progress, not this worker's alone.
 */
static void run_progress_line(const struct ef_run_progress *p, int width, char *out, size_t n)
{
	struct { char text[400]; int drop; } f[9];
	long long done, total;
	double pct = run_pct(p, &done, &total);
	char eta[32];
	size_t len, nf = 0;

	fmt_eta(p->eta_s, eta, sizeof(eta));
	if (p->waiting) {
		waiting_text(p, f[nf].text, sizeof(f[nf].text));
		f[nf++].drop = 8;
	} else {
		snprintf(f[nf].text, sizeof(f[nf].text), "%.0f/s", p->rate);
		f[nf++].drop = 5;
		snprintf(f[nf].text, sizeof(f[nf].text), "ETA %s", eta);
		f[nf++].drop = 8;
		snprintf(f[nf].text, sizeof(f[nf].text), "in flight %u/%u", p->in_flight,
			 p->concurrency);
		f[nf++].drop = 2;
		snprintf(f[nf].text, sizeof(f[nf].text), "wait: service %.0f s, parse %.1f s, "
			 "db %.0f s", p->service_s, p->parse_s, p->db_s);
		f[nf++].drop = 1;
		snprintf(f[nf].text, sizeof(f[nf].text), "retries %lld", p->retries);
		f[nf++].drop = p->retries ? 7 : 3;
		snprintf(f[nf].text, sizeof(f[nf].text), "quarantined %lld", p->quarantined);
		f[nf++].drop = p->quarantined ? 6 : 2;
		snprintf(f[nf].text, sizeof(f[nf].text), "%s", ef_run_phase_name(p->phase));
		f[nf++].drop = 4;
	}
	if (p->nworkers > 1) {
		snprintf(f[nf].text, sizeof(f[nf].text), "workers %d", p->nworkers);
		f[nf++].drop = 5;
	}
	if (!p->waiting && p->nendpoints > 1) {
		endpoints_text(p, f[nf].text, sizeof(f[nf].text));
		f[nf++].drop = 1;
	}
	for (int level = 0; level <= 8; level++) {
		len = (size_t)snprintf(out, n, "%5.1f%% %lld/%lld", pct, done, total);
		for (size_t i = 0; i < nf && len < n; i++)
			if (f[i].drop > level)
				len += (size_t)snprintf(out + len, n - len, "  %s", f[i].text);
		if ((int)len < width)
			return;
	}
	if (width > 1 && (size_t)width <= n)
		out[width - 1] = '\0';
}

static void on_progress(const struct ef_run_progress *p, void *vctx)
{
	struct progress_ctx *c = vctx;
	long long done, total;
	double pct = run_pct(p, &done, &total);
	char eta[32], wait[96], eps[400], workers[32] = "", line[1024];
	bool changed = p->waiting != c->was_waiting || (int)p->phase != c->last_phase;

	c->was_waiting = p->waiting;
	c->last_phase = (int)p->phase;
	fmt_eta(p->eta_s, eta, sizeof(eta));
	waiting_text(p, wait, sizeof(wait));
	endpoints_text(p, eps, sizeof(eps));
	if (p->nworkers > 1)
		snprintf(workers, sizeof(workers), "  workers %d", p->nworkers);
	print_log(c, p);
	if (c->tty) {
		run_progress_line(p, line_width(), line, sizeof(line));
		out_printf(stderr, "\r%s\033[K", line);
		return;
	}
	if (!changed && time(NULL) - c->last_plain < 5 && p->phase != EF_PHASE_FINISHED)
		return;
	c->last_plain = time(NULL);
	if (p->waiting)
		out_printf(stderr, "embfill: %s %.1f%% %lld/%lld chunks, %s%s\n",
			   ef_run_phase_name(p->phase), pct, done, total, wait, workers);
	else
		out_printf(stderr, "embfill: %s %.1f%% %lld/%lld chunks, %.0f/s, ETA %s, in flight "
				   "%u/%u, waited on the service %.1f s, parsing %.1f s, the database "
				   "%.1f s, retries %lld, quarantined %lld%s%s%s\n",
			   ef_run_phase_name(p->phase), pct, done, total, p->rate, eta, p->in_flight,
			   p->concurrency, p->service_s, p->parse_s, p->db_s, p->retries,
			   p->quarantined, workers, eps[0] ? "; endpoints: " : "", eps);
}

/* Without --resume, an interrupted run is offered on a terminal; a script
 * gets a new run, which skips whatever the old one wrote anyway. */
static bool offer_resume(ef_session *s, const struct run_request *r)
{
	struct ef_run_info ri;
	struct ef_error err;
	char answer[16] = "";
	const char *coll = request_target(r);

	ef_error_clear(&err);
	if (r->resume || r->dry_run || r->join ||
	    ef_run_find_interrupted(s, coll, &ri, &err) != EF_OK ||
	    !ri.run_id || strcmp(ri.state, "running") == 0)
		return r->resume;
	out_printf(stderr, "embfill: run %lld of \"%s\" was %s (host %s, started %s UTC, %lld of "
			   "%lld done)\n", ri.run_id, coll, ri.state, ri.host, ri.started_at,
		   ri.done, ri.total);
	if (!isatty(STDIN_FILENO)) {
		out_printf(stderr, "embfill: starting a new run; --resume continues run %lld\n",
			   ri.run_id);
		return false;
	}
	out_printf(stderr, "resume it? [Y/n] ");
	if (!fgets(answer, sizeof(answer), stdin))
		return false;
	return answer[0] != 'n' && answer[0] != 'N';
}

static void print_counts(const char *label, const struct ef_counts *c, const char *left)
{
	if (c->unknown && left) {
		out_printf(stdout, "  %-7s %s\n", label, left);
		return;
	}
	if (c->unknown) {
		out_printf(stdout, "  %-7s unknown: the database could not be read\n", label);
		return;
	}
	out_printf(stdout, "  %-7s chunks %lld, embedded %lld, missing %lld, stale %lld "
			   "(model %lld, dim %lld, content %lld), quarantined %lld\n", label,
		   c->chunks, c->embedded, c->missing, c->stale, c->stale_model, c->stale_dim,
		   c->stale_content, c->quarantined);
}

/* The run's record lists every worker it had; one worker alone needs no
 * list. */
static void print_workers(const struct ef_run_result *r)
{
	if (r->nworkers < 2 && !r->joined)
		return;
	out_printf(stdout, "  run %lld (%s): %lld written, %lld quarantined of %lld, by %d "
			   "worker%s:\n", r->run_id, r->run_state, r->run_written, r->run_quarantined,
		   r->run_total, r->nworkers, r->nworkers == 1 ? "" : "s");
	for (int i = 0; i < r->nworkers; i++) {
		const struct ef_run_worker *w = &r->workers[i];

		out_printf(stdout, "    %s pid %d: %lld chunks, %.0f/s, %s%s\n", w->host, w->pid,
			   w->done, w->rate, w->state, w->me ? " (this one)" : "");
	}
}

static void print_summary(const struct app *app, const char *coll,
			  const struct ef_run_result *r)
{
	if (r->dry_run) {
		out_printf(stdout, "dry run of \"%s\": %lld chunks to embed, %lld batches of %d, "
				   "%d in flight; nothing was written\n", coll, r->total,
			   (r->total + app->cfg->batch_size - 1) / app->cfg->batch_size,
			   app->cfg->batch_size, app->cfg->concurrency);
		print_counts("now", &r->before, NULL);
		return;
	}
	out_printf(stdout, "run %lld of \"%s\" %s%s%s: %lld written, %lld quarantined of %lld "
			   "in %.1f s (%.0f chunks/s), %lld requests, %lld retries\n", r->run_id, coll,
		   r->state, r->resumed ? " (resumed)" : "", r->joined ? " (this worker)" : "",
		   r->written, r->quarantined, r->total, r->elapsed_s, r->rate, r->requests,
		   r->retries);
	if (r->elapsed_s > 0)
		out_printf(stdout, "  time: %.1f s choosing batches, %.1f s waiting on writes, "
				   "%.1f s waiting on the service, %.1f s reading its answers\n",
			   r->fetch_s, r->write_s, r->service_s, r->parse_s);
	print_counts("before", &r->before, NULL);
	print_counts("after", &r->after, r->ended_run || r->db_failed ? NULL
		     : strcmp(r->run_state, "running") == 0 ? "taken by the run's last worker, "
							       "when it ends"
		     : "taken by the worker that ended the run");
	print_workers(r);
	if (r->backed_up)
		out_printf(stdout, "  backup: %lld rows saved first; `embfill rollback -C %s` puts "
				   "them back\n", r->backed_up, coll);
	if (r->indexes_dropped || r->indexes_built)
		out_printf(stdout, "  vector indexes: %d dropped for the load, %d built after it in "
				   "%.1f s\n", r->indexes_dropped, r->indexes_built, r->index_s);
}

static int finish(struct app *app, const struct run_request *rq, const struct ef_run_result *r,
		  ef_status st, struct ef_error *err, bool tty)
{
	const char *coll = request_target(rq);

	if (tty)
		out_printf(stderr, "\n");
	if (st == EF_OK || st == EF_ERR_INTERRUPTED || r->run_id)
		print_summary(app, coll, r);
	if (st == EF_ERR_INTERRUPTED) {
		if (r->stopped_by_deadline)
			ef_error_set(err, EF_ERR_INTERRUPTED, "the maintenance window ended (--until "
				     "%s); run %lld checkpointed", rq->until, r->run_id);
		else if (last_signal)
			ef_error_set(err, EF_ERR_INTERRUPTED, "stopped by signal %d; run %lld "
				     "checkpointed", (int)last_signal, r->run_id);
		if (r->stop_asked && !r->ended_run)
			ef_error_hint(err, "once every worker has stopped, continue with: embfill run "
				      "-C %s --confirm %s --resume", coll, coll);
		else if (!r->ended_run)
			ef_error_hint(err, "run %lld goes on in its other workers; this one joins it "
				      "again with: embfill run -C %s --confirm %s --join", r->run_id,
				      coll, coll);
		else
			ef_error_hint(err, "continue with: embfill run -C %s --confirm %s --resume",
				      coll, coll);
	}
	if (st == EF_OK && r->unconverged) {
		for (size_t i = 0; i < r->nleft; i++)
			out_printf(stdout, "  left: chunk %s: %s\n", r->left[i].key, r->left[i].why);
		ef_error_set(err, EF_ERR_CHECK, "the run did not converge: %lld chunks of \"%s\" it "
			     "set out to embed are still missing or stale", r->unconverged, coll);
		ef_error_hint(err, "a chunk that changed during the run, or another writer: `embfill "
				   "verify -C %s` explains each; running again embeds them", coll);
		return out_error(err);
	}
	return st == EF_OK ? 0 : out_error(err);
}

/* The historylog entry of a run, written when --historylog asks for it;
 * a run that did not start (busy, bad settings) leaves none. */
static int write_history(struct app *app, const struct run_request *rq,
			 const struct ef_run_result *r, const char *cmd, ef_status st)
{
	struct history_extras x = { .verification = NULL };
	struct ef_error err;
	char verification[512];
	char *md;
	ef_status w;

	if (!(app->cli->historylog || r->historylog_asked) || r->dry_run || !r->run_id ||
	    !r->ended_run)
		return 0;
	ef_error_clear(&err);
	history_verify_now(app, request_target(rq), verification, sizeof(verification));
	x.verification = verification;
	/* a worker that joined records the run as its first worker started it */
	if (r->joined && r->run_command[0])
		md = history_run_entry(app, request_target(rq), r->run_note[0] ? r->run_note : NULL,
				       r, st, r->run_command, &x);
	else
		md = history_run_entry(app, request_target(rq), rq->note, r, st, cmd, &x);
	if (!md) {
		ef_error_oom(&err, "writing the historylog");
		return out_error(&err);
	}
	w = history_write(app, md, &err);
	free(md);
	if (w != EF_OK)
		return out_error(&err);
	out_printf(stdout, "historylog: entry written at the top of %s\n", app->cfg->historylog);
	return 0;
}

/*
 * run --into NEW: NEW is made from COLL (its chunks copied, or its
 * documents cut anew with --rechunk) unless it holds chunks made from COLL
 * already, and gets a table of its own for a new dimension; the run then
 * embeds NEW.  Returns -1 after a dry run's report (nothing more to do).
 */
static int prepare_into(struct app *app, ef_session *s, const struct run_request *r)
{
	struct ef_into_result res;
	struct ef_error err;

	if (!r->into)
		return 0;
	ef_error_clear(&err);
	if (ef_coll_prepare_into(s, r->collection, r->into, r->rechunk, r->dry_run, NULL, NULL,
				 &res, &err) != EF_OK)
		return out_error(&err);
	if (res.would_copy) {
		out_printf(stdout, "dry run: \"%s\" would get the %s of \"%s\"%s, and every one of "
				   "them would be embedded; nothing was written\n", r->into,
			   r->rechunk ? "documents" : "chunks", r->collection,
			   r->rechunk ? " cut anew" : " as they are");
		return -1;
	}
	if (res.copied)
		out_printf(stdout, "%s %lld documents and %lld chunks of \"%s\" into \"%s\"%s\n",
			   res.copy.rechunked ? "re-chunked" : "copied", res.copy.documents,
			   res.copy.chunks, r->collection, r->into, res.copy.left_out ? " (some "
			   "chunks had no document of their own and stay)" : "");
	if (res.own_table[0])
		out_printf(stdout, "EMBED_DIM %d differs from the live column's: \"%s\" keeps its "
				   "vectors in %s\n", app->cfg->embed_dim, r->into, res.own_table);
	return 0;
}

int cmd_run(struct app *app)
{
	struct progress_ctx pc = { .tty = isatty(STDERR_FILENO) != 0 };
	struct run_request rq;
	struct ef_run_opts o;
	struct ef_embed_config ec;
	struct ef_run_result res;
	struct ef_error err;
	ef_session *s;
	char *cmd = NULL;
	ef_status st;
	int rc;

	ef_error_clear(&err);
	request_from_cli(&rq, app->cli);
	if (request_check(&rq, app->cli->confirm, &err) != EF_OK)
		return out_error(&err);
	if (app_session(app, EF_NEED_TABLES, &s, &err) != EF_OK)
		return out_error(&err);
	if ((rc = prepare_into(app, s, &rq)) != 0)
		return rc < 0 ? 0 : rc;
	/* a dry run is the plan: the same counts, probe, risks and command */
	if (rq.dry_run)
		return cmd_plan_of(app, &rq);
	if (app_embed_config(app, &ec, &err) != EF_OK)
		return out_error(&err);
	rq.resume = offer_resume(s, &rq);
	if (!(cmd = request_command(app, &rq))) {
		ef_error_oom(&err, NULL);
		return out_error(&err);
	}
	if (request_run_opts(&rq, cmd, &o, &err) != EF_OK) {
		free(cmd);
		return out_error(&err);
	}
	o.historylog = app->cli->historylog;
	o.stop = &stop_flag;
	o.cancel = &cancel_flag;
	o.on_progress = on_progress;
	o.ctx = &pc;
	install_signals();
	st = ef_run_execute(s, &ec, &o, &res, &err);
	rc = finish(app, &rq, &res, st, &err, pc.tty);
	if (st == EF_OK || st == EF_ERR_INTERRUPTED || st == EF_ERR_EMBED) {
		int hrc = write_history(app, &rq, &res, cmd, st);
		if (rc == 0)
			rc = hrc;
	}
	ef_run_result_free(&res);
	free(cmd);
	return rc;
}
