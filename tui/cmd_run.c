/*
 * cmd_run.c - `embfill run -C COLL --confirm COLL ...`: the headless
 * backfill, with a progress line, signals that checkpoint, and a summary.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "embfill/historylog.h"
#include "embfill/ident.h"
#include "embfill/lifecycle.h"
#include "embfill/run.h"
#include "embfill/redact.h"
#include "embfill/strbuf.h"
#include "tui/cli.h"
#include "tui/common.h"

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
	int last_log;
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

static void on_progress(const struct ef_run_progress *p, void *vctx)
{
	struct progress_ctx *c = vctx;
	double pct = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
	char eta[32];

	fmt_eta(p->eta_s, eta, sizeof(eta));
	if (c->tty) {
		out_printf(stderr, "\r%5.1f%% %lld/%lld  %.0f/s  ETA %s  in flight %u  retries %lld"
				   "  quarantined %lld  %-9s\033[K", pct, p->done, p->total, p->rate,
			   eta, p->in_flight, p->retries, p->quarantined,
			   ef_run_phase_name(p->phase));
		return;
	}
	if (time(NULL) - c->last_plain < 5 && p->phase != EF_PHASE_FINISHED)
		return;
	c->last_plain = time(NULL);
	out_printf(stderr, "embfill: %s %.1f%% %lld/%lld chunks, %.0f/s, ETA %s, retries %lld, "
			   "quarantined %lld\n", ef_run_phase_name(p->phase), pct, p->done, p->total,
		   p->rate, eta, p->retries, p->quarantined);
}

/* --until HH:MM (or HH:MM:SS), local time: today, or tomorrow when that
 * time has passed (a window that ends at 02:00 is given at 23:00). */
static int parse_until(const char *s, time_t *out)
{
	int h, m, sec = 0, n;
	char extra;
	time_t now = time(NULL);
	struct tm tm;

	if (!s) {
		*out = 0;
		return 0;
	}
	n = sscanf(s, "%2d:%2d:%2d%c", &h, &m, &sec, &extra);
	if (!((n == 2 && strlen(s) == 5) || (n == 3 && strlen(s) == 8)) || h > 23 || m > 59 ||
	    sec > 59 || h < 0 || m < 0 || sec < 0) {
		struct ef_error err;
		ef_error_clear(&err);
		ef_error_set(&err, EF_ERR_USAGE, "--until \"%s\" is not a time of day", s);
		ef_error_hint(&err, "write the end of the maintenance window as HH:MM, e.g. 05:30");
		return out_error(&err);
	}
	localtime_r(&now, &tm);
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*out = mktime(&tm);
	if (*out <= now)
		*out += 24 * 3600;
	return 0;
}

static int check_confirmation(const struct cli *cli)
{
	struct ef_error err;

	ef_error_clear(&err);
	if (!cli->collection) {
		ef_error_set(&err, EF_ERR_USAGE, "`embfill run` needs the collection: -C COLL");
		ef_error_hint(&err, "embfill run -C COLL --confirm COLL; `embfill status` lists them");
		return out_error(&err);
	}
	if (ef_collection_name_check(cli->collection, &err) != EF_OK)
		return out_error(&err);
	if (!cli->confirm || strcmp(cli->confirm, cli->collection) != 0) {
		ef_error_set(&err, EF_ERR_USAGE, "the confirmation \"%s\" differs from the collection "
			     "\"%s\"; nothing was touched", cli->confirm ? cli->confirm : "",
			     cli->collection);
		ef_error_hint(&err, "type the exact collection name twice: -C %s --confirm %s",
			      cli->collection, cli->collection);
		return out_error(&err);
	}
	return 0;
}

static void add_word(struct ef_strbuf *b, const char *w)
{
	ef_strbuf_add(b, " ");
	ef_strbuf_add_shell_word(b, w);
}

char *run_command_line(const struct app *app)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	const struct cli *cli = app->cli;
	char num[16];

	ef_strbuf_add(&b, "embfill");
	if (cli->config) {
		add_word(&b, "--config");
		add_word(&b, cli->config);
	}
	/* settings given as flags, so that the line runs against the same
	 * database and service (the connection string in the form that
	 * redaction leaves whole, its password left to libpq's own sources;
	 * keys are never flags) */
	for (int i = 0; i < cli->nsets; i++) {
		const char *k = cli->sets[i].key;

		if (strcmp(k, "BATCH_SIZE") == 0 || strcmp(k, "EMBED_CONCURRENCY") == 0)
			continue;
		if (strcmp(k, "DATABASE_URL") == 0) {
			char *dsn = ef_redact_dsn_command(cli->sets[i].value);

			add_word(&b, "--dsn");
			add_word(&b, dsn ? dsn : "(connection string hidden)");
			free(dsn);
		} else {
			char *kv = NULL;

			if (asprintf(&kv, "%s=%s", k, cli->sets[i].value) < 0)
				continue;
			add_word(&b, "--set");
			add_word(&b, kv);
			free(kv);
		}
	}
	add_word(&b, "run");
	add_word(&b, "-C");
	add_word(&b, cli->collection);
	add_word(&b, "--confirm");
	add_word(&b, cli->collection);
	snprintf(num, sizeof(num), "%d", app->cfg->batch_size);
	add_word(&b, "--batch-size");
	add_word(&b, num);
	snprintf(num, sizeof(num), "%d", app->cfg->concurrency);
	add_word(&b, "--concurrency");
	add_word(&b, num);
	if (cli->into) {
		add_word(&b, "--into");
		add_word(&b, cli->into);
	}
	if (cli->backup)
		add_word(&b, "--backup");
	if (cli->approve_provider)
		add_word(&b, "--approve-provider-change");
	if (cli->retry_quarantined)
		add_word(&b, "--retry-quarantined");
	if (cli->until) {
		add_word(&b, "--until");
		add_word(&b, cli->until);
	}
	if (cli->note) {
		add_word(&b, "--note");
		add_word(&b, cli->note);
	}
	return ef_strbuf_take(&b);
}

/* Without --resume, an interrupted run is offered on a terminal; a script
 * gets a new run, which skips whatever the old one wrote anyway. */
static bool offer_resume(struct app *app)
{
	struct ef_run_info ri;
	struct ef_error err;
	char answer[16] = "";

	ef_error_clear(&err);
	if (app->cli->resume || app->cli->dry_run ||
	    ef_run_find_interrupted(app->cfg, app->cli->collection, &ri, &err) != EF_OK ||
	    !ri.run_id || strcmp(ri.state, "running") == 0)
		return app->cli->resume;
	out_printf(stderr, "embfill: run %lld of \"%s\" was %s (host %s, started %s UTC, %lld of "
			   "%lld done)\n", ri.run_id, app->cli->collection, ri.state, ri.host,
		   ri.started_at, ri.done, ri.total);
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

static void print_counts(const char *label, const struct ef_counts *c)
{
	out_printf(stdout, "  %-7s chunks %lld, embedded %lld, missing %lld, stale %lld "
			   "(model %lld, dim %lld, content %lld), quarantined %lld\n", label,
		   c->chunks, c->embedded, c->missing, c->stale, c->stale_model, c->stale_dim,
		   c->stale_content, c->quarantined);
}

static void print_summary(const struct app *app, const struct ef_run_result *r)
{
	if (r->dry_run) {
		out_printf(stdout, "dry run of \"%s\": %lld chunks to embed, %lld batches of %d, "
				   "%d in flight; nothing was written\n", app->cli->collection,
			   r->total, (r->total + app->cfg->batch_size - 1) / app->cfg->batch_size,
			   app->cfg->batch_size, app->cfg->concurrency);
		print_counts("now", &r->before);
		return;
	}
	out_printf(stdout, "run %lld of \"%s\" %s%s: %lld written, %lld quarantined of %lld in "
			   "%.1f s (%.0f chunks/s), %lld requests, %lld retries\n", r->run_id,
		   app->cli->collection, r->state, r->resumed ? " (resumed)" : "", r->written,
		   r->quarantined, r->total, r->elapsed_s, r->rate, r->requests, r->retries);
	if (r->elapsed_s > 0)
		out_printf(stdout, "  time: %.1f s choosing batches, %.1f s waiting on writes (the "
				   "rest embedding)\n", r->fetch_s, r->write_s);
	print_counts("before", &r->before);
	print_counts("after", &r->after);
	if (r->backed_up)
		out_printf(stdout, "  backup: %lld rows saved first; `embfill rollback -C %s` puts "
				   "them back\n", r->backed_up, app->cli->collection);
}

static int finish(struct app *app, const struct ef_run_result *r, ef_status st,
		  struct ef_error *err, bool tty)
{
	if (tty)
		out_printf(stderr, "\n");
	if (st == EF_OK || st == EF_ERR_INTERRUPTED || r->run_id)
		print_summary(app, r);
	if (st == EF_ERR_INTERRUPTED) {
		if (r->stopped_by_deadline)
			ef_error_set(err, EF_ERR_INTERRUPTED, "the maintenance window ended (--until "
				     "%s); run %lld checkpointed", app->cli->until, r->run_id);
		else if (last_signal)
			ef_error_set(err, EF_ERR_INTERRUPTED, "stopped by signal %d; run %lld "
				     "checkpointed", (int)last_signal, r->run_id);
		ef_error_hint(err, "continue with: embfill run -C %s --confirm %s --resume",
			      app->cli->collection, app->cli->collection);
	}
	return st == EF_OK ? 0 : out_error(err);
}

/* The historylog entry of a run, written when --historylog asks for it;
 * a run that did not start (busy, bad settings) leaves none. */
static int write_history(struct app *app, const struct ef_run_result *r, const char *cmd,
			 ef_status st)
{
	struct ef_history_entry h;
	struct ef_error err;
	char outcome[64], verification[512];
	char *md;
	ef_status w;

	if (!app->cli->historylog || r->dry_run || !r->run_id)
		return 0;
	ef_error_clear(&err);
	snprintf(outcome, sizeof(outcome), "%s%s", r->state,
		 st == EF_ERR_INTERRUPTED ? " (resumable)" : "");
	app_verification_line(app, verification, sizeof(verification));
	app_history_entry(app, r, cmd, outcome, verification, &h);
	md = ef_history_format(&h);
	if (!md)
		return out_error(&err);
	w = ef_history_prepend(app->cfg->historylog, md, &err);
	free(md);
	if (w != EF_OK)
		return out_error(&err);
	out_printf(stdout, "historylog: entry written at the top of %s\n", app->cfg->historylog);
	return 0;
}

/* A new dimension cannot go into the live column: the new collection
 * gets an embedding table of that dimension. */
static int prepare_dim(struct app *app)
{
	struct ef_error err;
	char *table = NULL;

	ef_error_clear(&err);
	if (ef_coll_prepare_dim(app->cfg, app->cli->into, &table, &err) != EF_OK)
		return out_error(&err);
	if (table)
		out_printf(stdout, "EMBED_DIM %d differs from the live column's: \"%s\" keeps its "
				   "vectors in %s\n", app->cfg->embed_dim, app->cli->into, table);
	free(table);
	return 0;
}

/*
 * run --into NEW: NEW gets COLL's documents and chunks as they are (unless
 * `embfill chunk` already cut them from COLL), and the run embeds NEW.
 * From here on the run is NEW's: its lock, record, resume and verdict.
 */
static int prepare_into(struct app *app)
{
	struct cli *cli = app->cli;
	struct ef_copy_result res;
	struct ef_error err;
	int has = 0;

	if (!cli->into)
		return 0;
	ef_error_clear(&err);
	if (cli->backup) {
		ef_error_set(&err, EF_ERR_USAGE, "--backup is for in-place runs; --into leaves the "
			     "vectors of \"%s\" untouched", cli->collection);
		ef_error_hint(&err, "leave out --backup: the old collection itself is the way back");
		return out_error(&err);
	}
	if (ef_coll_into_state(app->cfg, cli->collection, cli->into, &has, &err) != EF_OK)
		return out_error(&err);
	if (!has && cli->dry_run) {
		out_printf(stdout, "dry run: \"%s\" would get the chunks of \"%s\" as they are, "
				   "and every one of them would be embedded; nothing was written\n",
			   cli->into, cli->collection);
		return -1;
	}
	if (!has) {
		if (ef_coll_copy(app->cfg, cli->collection, cli->into, false, &res, &err) != EF_OK)
			return out_error(&err);
		out_printf(stdout, "copied %lld documents and %lld chunks of \"%s\" into \"%s\"%s\n",
			   res.documents, res.chunks, cli->collection, cli->into,
			   res.left_out ? " (some chunks had no document of their own and stay)" : "");
	}
	return prepare_dim(app);
}

int cmd_run(struct app *app)
{
	struct progress_ctx pc = { .tty = isatty(STDERR_FILENO) != 0 };
	struct ef_run_opts o = { .collection = app->cli->collection, .note = app->cli->note,
				 .stop = &stop_flag, .cancel = &cancel_flag,
				 .on_progress = on_progress, .ctx = &pc };
	struct ef_embed_config ec;
	struct ef_run_result res;
	struct ef_error err;
	char *key = NULL, *cmd;
	ef_status st;
	int rc;

	ef_error_clear(&err);
	if ((rc = check_confirmation(app->cli)) != 0 || (rc = parse_until(app->cli->until,
									     &o.deadline)) != 0)
		return rc;
	if ((rc = prepare_into(app)) != 0)
		return rc < 0 ? 0 : rc;
	o.command = cmd = run_command_line(app);
	if (app->cli->into) {
		o.source = app->cli->collection;
		app->cli->collection = app->cli->into;
		o.collection = app->cli->into;
		if ((rc = app_use_collection(app, app->cli->into)) != 0) {
			free(cmd);
			return rc;
		}
	}
	/* a dry run is the plan: the same counts, probe, risks and command */
	if (app->cli->dry_run) {
		free(cmd);
		return cmd_plan(app);
	}
	if (app_embed_config(app, &ec, &key, &err) != EF_OK) {
		free(cmd);
		return out_error(&err);
	}
	o.dry_run = app->cli->dry_run;
	o.retry_quarantined = app->cli->retry_quarantined;
	o.backup = app->cli->backup;
	o.approve_provider_change = app->cli->approve_provider;
	o.resume = offer_resume(app);
	install_signals();
	st = ef_run_execute(app->cfg, &ec, &o, &res, &err);
	rc = finish(app, &res, st, &err, pc.tty);
	if (st == EF_OK || st == EF_ERR_INTERRUPTED || st == EF_ERR_EMBED) {
		int hrc = write_history(app, &res, cmd, st);
		if (rc == 0)
			rc = hrc;
	}
	ef_run_result_free(&res);
	free(cmd);
	app_key_free(key);
	return rc;
}
