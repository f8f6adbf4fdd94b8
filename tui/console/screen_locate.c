/*
 * screen_locate.c - step 2: where everything is and whether it works: the
 * doctor's checks (database, schema, service, dimensions), live, each with
 * its hint, and the settings with their origins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/console/console.h"
#include "tui/flow/doctor.h"

static void run_checks(struct console *c)
{
	struct doctor d;

	console_busy(c, "checking the database, the schema and the embedding service");
	ef_checklist_free(&c->locate.list);
	doctor_run(c->app, &d);
	c->locate.list = d.list;
	c->locate.pass = ef_check_count(&d.list, EF_CHECK_PASS);
	c->locate.warn = ef_check_count(&d.list, EF_CHECK_WARN);
	c->locate.fail = ef_check_count(&d.list, EF_CHECK_FAIL);
	c->locate.done = true;
	c->st[STEP_LOCATE] = c->locate.fail ? ST_FAILED : c->locate.warn ? ST_OPEN : ST_PASSED;
	if (c->locate.fail)
		console_msg(c, R_FAIL, "%zu check(s) failed: fix them (see the hints) and press r",
			    c->locate.fail);
	else if (c->locate.warn)
		console_msg(c, R_WARN, "%zu warning(s): press a to accept them, or fix and press r",
			    c->locate.warn);
	else
		console_msg(c, R_GOOD, "every check passed: Enter goes on to the plan");
}

static void locate_enter(struct console *c)
{
	if (!c->locate.done)
		run_checks(c);
}

void locate_free(struct console *c)
{
	ef_checklist_free(&c->locate.list);
	memset(&c->locate, 0, sizeof(c->locate));
}

static void draw_settings(struct console *c)
{
	const ef_settings *s = c->app->settings;

	ui_line(c, R_TITLE, "Settings (value, and where it came from)");
	for (int k = 0; k < EF_K__COUNT; k++) {
		char origin[512];
		char *v;

		if (!doctor_show_key(c->app, (enum ef_key)k))
			continue;
		v = ef_settings_display(s, (enum ef_key)k);
		ef_settings_origin(s, (enum ef_key)k, origin, sizeof(origin));
		ui_line(c, R_NORMAL, "  %-18s %s  (%s)", ef_settings_key_name((enum ef_key)k),
			v && *v ? v : "(empty)", origin);
		free(v);
	}
}

static void locate_draw(struct console *c)
{
	const struct ef_config *cfg = c->app->cfg;

	ui_line(c, R_TITLE, "Step 2 - Locate: database, schema, embedding service");
	ui_line(c, c->locate.fail ? R_FAIL : c->locate.warn ? R_WARN : R_GOOD,
		"%zu ok, %zu warnings, %zu failed", c->locate.pass, c->locate.warn,
		c->locate.fail);
	ui_blank(c);
	ui_checklist(c, &c->locate.list);
	ui_blank(c);
	ui_line(c, R_TITLE, "Where things are");
	ui_line(c, R_NORMAL, "  chunks: table %s, embeddings: %s", cfg->map.chunks,
		cfg->map.embeddings ? cfg->map.embeddings : "a column of the chunk table");
	ui_line(c, R_NORMAL, "  settings file: %s; historylog: %s",
		c->app->cli->config ? c->app->cli->config : "./embfill.env (when present)",
		cfg->historylog);
	ui_line(c, R_NORMAL, "  backfill entrypoint: `embfill run` (the console drives the same "
		"engine)");
	ui_blank(c);
	draw_settings(c);
}

static enum ev locate_key(struct console *c, int key, enum action a)
{
	(void)key;
	if (a == A_RECHECK) {
		console_reset_after(c, STEP_SCOPE);
		c->st[STEP_LOCATE] = ST_OPEN;
		run_checks(c);
		return EV_HANDLED;
	}
	if (a == A_ACCEPT) {
		for (size_t i = 0; i < c->locate.list.n; i++)
			if (c->locate.list.items[i].level == EF_CHECK_WARN) {
				char buf[600];
				snprintf(buf, sizeof(buf), "%s: %s", c->locate.list.items[i].what,
					 c->locate.list.items[i].detail);
				console_accept(c, "locate", buf);
			}
		c->st[STEP_LOCATE] = ST_ACCEPTED;
		console_msg(c, R_WARN, "warnings accepted: they go into the run's historylog entry, "
			    "which step 6 writes (w)");
		return EV_NEXT;
	}
	return EV_IGNORED;
}

static bool locate_can(const struct console *c, enum action a)
{
	switch (a) {
	case A_NEXT:
		return c->st[STEP_LOCATE] == ST_PASSED || c->st[STEP_LOCATE] == ST_ACCEPTED;
	case A_BACK:
	case A_RECHECK:
		return !c->run.started;
	case A_ACCEPT:
		return !c->run.started && c->locate.warn && !c->locate.fail &&
		       c->st[STEP_LOCATE] == ST_OPEN;
	default:
		return false;
	}
}

static const enum action locate_actions[] = { A_RECHECK, A_ACCEPT, A_NONE };

const struct screen screen_locate = {
	.name = "Locate",
	.help = "Step 2 checks, live, everything the run needs: the database (server, "
		"database, user; never a password), the tables as mapped and their vector type "
		"and dimension, and one request to the embedding service (reachable, latency, "
		"returned dimension against EMBED_DIM and the column). Each finding has a hint. "
		"Failures must be fixed (then r); warnings may be accepted with a, and the "
		"run's historylog entry (written in step 6) records that.",
	.actions = locate_actions,
	.enter = locate_enter,
	.draw = locate_draw,
	.on_key = locate_key,
	.can = locate_can,
	.forget = locate_free,
};
