/*
 * console.c - the console's event loop, frame, footer, help and dialogs.
 *
 * One loop poll()s the terminal and the wake pipe (written by signal
 * handlers and by the worker), handles what arrived, and draws one frame:
 * erase(), header, checklist sidebar, the step's body, status line, footer,
 * then any dialog on top.  curses sends only what changed, so redrawing the
 * whole frame five times a second during a run does not flicker.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curses.h>

#include "embfill/redact.h"
#include "tui/console/console.h"
#include "tui/console/term.h"
#include "tui/console/worker.h"

#define MIN_COLS 80
#define MIN_ROWS 24
#define SIDE_W 21          /* sidebar, its rule included */
#define ERR_LIMIT 100      /* getch() ERRs in a row on a readable tty: it is gone */

static const struct screen *const steps[NSTEPS] = {
	&screen_scope, &screen_locate, &screen_plan, &screen_run, &screen_validate,
	&screen_summary,
};

static const struct {
	const char *key, *label, *help;
} actions[A__COUNT] = {
#define ACTION_ROW(id, key, label, help) [id] = { key, label, help },
	CONSOLE_ACTIONS(ACTION_ROW)
#undef ACTION_ROW
};

/* Keys of each action; a screen's own actions are looked up first, so one
 * key ('s') may mean different things on different screens. */
static bool key_is(enum action a, int key)
{
	switch (a) {
	case A_HELP: return key == '?' || key == KEY_F(1);
	case A_QUIT: return key == 'q' || key == 'Q' || key == 27;
	case A_NEXT: return key == '\r' || key == '\n' || key == KEY_ENTER;
	case A_BACK: return key == 'b' || key == KEY_LEFT;
	case A_FIELD: return key == '\t' || key == KEY_BTAB || key == KEY_UP || key == KEY_DOWN;
	case A_ACCEPT: return key == 'a';
	case A_RECHECK: return key == 'r';
	case A_MODE: return key == 'm';
	case A_BACKUP: return key == 'k';
	case A_APPROVE: return key == 'v';
	case A_ADOPT: return key == 'o';
	case A_SWAP: return key == 'x';
	case A_START: return key == 's';
	case A_PAUSE: return key == 'p';
	case A_CANCEL: return key == 'c';
	case A_QUERY: return key == 't';
	case A_SAMPLE: return key == 's';
	case A_WRITE: return key == 'w';
	case A_SCROLL: return key == KEY_PPAGE || key == KEY_NPAGE || key == KEY_UP ||
			      key == KEY_DOWN || key == KEY_HOME || key == KEY_END;
	default: return false;
	}
}

static const enum action globals[] = { A_NEXT, A_BACK, A_HELP, A_QUIT, A_SCROLL, A_NONE };

static enum action lookup(const struct screen *s, int key)
{
	for (const enum action *a = s->actions; *a != A_NONE; a++)
		if (key_is(*a, key))
			return *a;
	for (const enum action *a = globals; *a != A_NONE; a++)
		if (key_is(*a, key))
			return *a;
	return A_NONE;
}

/* --- the frame ------------------------------------------------------------ */

static void draw_header(const struct console *c)
{
	char left[128], right[300];

	term_fill(0, 0, COLS, R_HEADER, " ");
	snprintf(left, sizeof(left), " embfill %s  operator console", EF_VERSION);
	snprintf(right, sizeof(right), "step %d/6: %s ", c->step + 1, steps[c->step]->name);
	term_put(0, 0, COLS, R_HEADER, left);
	term_put(0, COLS - (int)term_cols(right), (int)term_cols(right), R_HEADER, right);
}

static void draw_sidebar(const struct console *c, int h)
{
	static const char *const mark[] = { "[ ]", "[ ]", "[x]", "[!]", "[-]" };
	static const enum role role[] = { R_DIM, R_NORMAL, R_GOOD, R_WARN, R_FAIL };
	char buf[300];
	int y = 2;

	for (int i = 1; i <= h; i++)
		term_put(i, SIDE_W - 1, 1, R_DIM, term_glyph(G_VLINE));
	term_put(1, 1, SIDE_W - 2, R_TITLE, "Checklist");
	for (int i = 0; i < NSTEPS; i++, y++) {
		snprintf(buf, sizeof(buf), "%s %d %s", i == c->step && c->st[i] == ST_OPEN ? "[>]"
			 : mark[c->st[i]], i + 1, steps[i]->name);
		term_put(y, 1, SIDE_W - 2, i == c->step ? R_FOCUS : role[c->st[i]], buf);
	}
	y++;
	if (c->scope.collection[0]) {
		term_put(y++, 1, SIDE_W - 2, R_TITLE, "Collection");
		ef_redact_buf(c->scope.collection, buf, sizeof(buf));
		term_put(y++, 2, SIDE_W - 3, R_ACCENT, buf);
		snprintf(buf, sizeof(buf), "batch %d", c->scope.batch);
		term_put(y++, 2, SIDE_W - 3, R_NORMAL, buf);
		if (c->scope.until[0]) {
			snprintf(buf, sizeof(buf), "until %s", c->scope.until);
			term_put(y++, 2, SIDE_W - 3, R_NORMAL, buf);
		}
		if (c->scope.resume) {
			snprintf(buf, sizeof(buf), "resume run %lld", c->scope.interrupted.run_id);
			term_put(y++, 2, SIDE_W - 3, R_WARN, buf);
		}
	}
	if (c->naccepted) {
		snprintf(buf, sizeof(buf), "%zu accepted", c->naccepted);
		term_put(++y, 1, SIDE_W - 2, R_WARN, buf);
		term_put(++y, 1, SIDE_W - 2, R_WARN, "warning(s)");
	}
}

static bool text_input(const struct console *c)
{
	return steps[c->step]->text_input;
}

#define FOOT_ITEMS (A__COUNT + 8)
#define FOOT_ROWS_MAX 2
#define MSG_ROWS_MAX 6

struct footer {
	char item[FOOT_ITEMS][64];
	size_t n;
};

static void foot_add(struct footer *f, const char *key, const char *label)
{
	if (f->n < FOOT_ITEMS)
		snprintf(f->item[f->n++], sizeof(f->item[0]), "%s %s", key, label);
}

/* What the keys do now: a dialog's keys, or the step's actions that act
 * now, then help and the quit key as it acts on this step (Esc alone where
 * q is typed into a field). */
static void footer_items(const struct console *c, bool scroll, struct footer *f)
{
	const struct screen *s = steps[c->step];

	f->n = 0;
	if (c->modal.more || (c->modal.kind != M_NONE && c->modal.scroll))
		foot_add(f, "PgDn/PgUp", "more");
	switch (c->modal.kind) {
	case M_CONFIRM:
		foot_add(f, "y", "yes");
		foot_add(f, "n/Esc", "no");
		return;
	case M_PROMPT:
		foot_add(f, "Enter", "done");
		foot_add(f, "Esc", "cancel");
		return;
	case M_HELP:
		foot_add(f, "any other key", "closes the help");
		return;
	case M_CHOICE:
		for (int i = 0; i < c->modal.nchoices; i++) {
			char key[2] = { (char)c->modal.choice[i].key, '\0' };
			foot_add(f, key, c->modal.choice[i].label);
		}
		foot_add(f, "Esc", c->modal.leaving ? "stay" : "cancel");
		return;
	case M_NONE:
		break;
	}
	for (const enum action *a = s->actions; *a != A_NONE; a++)
		if (*a != A_FIELD && s->can(c, *a))
			foot_add(f, actions[*a].key, actions[*a].label);
	if (s->can(c, A_NEXT))
		foot_add(f, actions[A_NEXT].key, actions[A_NEXT].label);
	if (s->can(c, A_BACK))
		foot_add(f, actions[A_BACK].key, actions[A_BACK].label);
	if (scroll)
		foot_add(f, "PgDn", "more");
	if (text_input(c)) {
		foot_add(f, "Tab", "field");
		foot_add(f, "F1", "help");
		foot_add(f, "Esc", "quit");
	} else {
		foot_add(f, "?", "help");
		foot_add(f, "q/Esc", "quit");
	}
}

/* Lays the items out in rows of the screen's width, never cutting one
 * while a row is left; returns the rows used (row NULL: only counts). */
static int footer_rows(const struct footer *f, char row[][512], int max)
{
	int rows = 0;
	size_t cols = 0;
	char line[512] = "";

	for (size_t i = 0; i < f->n; i++) {
		size_t w = term_cols(f->item[i]) + (cols ? 2 : 1);

		if (cols && cols + w > (size_t)COLS && rows + 1 < max) {
			if (row)
				snprintf(row[rows], sizeof(row[0]), "%s", line);
			rows++;
			cols = 0;
			line[0] = '\0';
			w = term_cols(f->item[i]) + 1;
		}
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s", cols ? "  " : " ",
			 f->item[i]);
		cols += w;
	}
	if (row)
		snprintf(row[rows], sizeof(row[0]), "%s", line);
	return rows + 1;
}

static void draw_footer(const struct footer *f, int rows)
{
	char row[FOOT_ROWS_MAX][512];

	footer_rows(f, row, FOOT_ROWS_MAX);
	for (int i = 0; i < rows; i++) {
		term_fill(LINES - rows + i, 0, COLS, R_KEY, " ");
		term_put(LINES - rows + i, 0, COLS, R_KEY, row[i]);
	}
}

static void draw_box(int y, int x, int h, int w, const char *title)
{
	for (int i = 0; i < h; i++)
		term_fill(y + i, x, COLS - x, R_NORMAL, " ");
	term_fill(y, x, w, R_DIM, term_glyph(G_HLINE));
	term_fill(y + h - 1, x, w, R_DIM, term_glyph(G_HLINE));
	for (int i = 1; i < h - 1; i++) {
		term_put(y + i, x, 1, R_DIM, term_glyph(G_VLINE));
		term_put(y + i, x + w - 1, 1, R_DIM, term_glyph(G_VLINE));
	}
	term_put(y, x + 2, w - 4, R_TITLE, title);
}

/* A dialog's lines at a width, appended to the body's lines. */
static size_t modal_lines(struct console *c, int width)
{
	size_t first = c->nlines;
	int saved = c->body_w;

	c->body_w = width;
	if (c->modal.kind == M_HELP) {
		const struct screen *s = steps[c->step];

		ui_line(c, R_NORMAL, "%s", s->help);
		ui_blank(c);
		for (const enum action *a = s->actions; *a != A_NONE; a++)
			ui_line(c, R_NORMAL, "%-9s %s", actions[*a].key, actions[*a].help);
		for (const enum action *a = globals; *a != A_NONE; a++)
			ui_line(c, R_NORMAL, "%-9s %s", actions[*a].key, actions[*a].help);
	} else {
		ui_line(c, R_NORMAL, "%s", c->modal.text);
		ui_blank(c);
		if (c->modal.kind == M_CONFIRM)
			ui_line(c, R_TITLE, "y: yes    n: no");
		else if (c->modal.kind == M_CHOICE) {
			for (int i = 0; i < c->modal.nchoices; i++)
				ui_line(c, R_TITLE, "%c: %s", c->modal.choice[i].key,
					c->modal.choice[i].label);
			ui_line(c, R_TITLE, "Esc: %s", c->modal.leaving ? "stay" : "cancel");
		} else
			ui_line(c, R_FOCUS, "> %s_", c->modal.input);
	}
	c->body_w = saved;
	return c->nlines - first;
}

struct box {
	int y, x, h, w;
	size_t first, n;
};

/* Where the dialog goes: beside the checklist when it fits there, else
 * across the screen; one taller than the screen scrolls. */
static void layout_modal(struct console *c, int foot_rows, struct box *b)
{
	int inner = LINES - foot_rows - 3;

	memset(b, 0, sizeof(*b));
	if (c->modal.kind == M_NONE)
		return;
	b->x = SIDE_W + 1;
	b->w = COLS - SIDE_W - 4;
	b->first = c->nlines;
	b->n = modal_lines(c, b->w - 4);
	if ((int)b->n > inner) {
		c->nlines = b->first;
		b->x = 1;
		b->w = COLS - 2;
		b->n = modal_lines(c, b->w - 4);
	}
	b->h = ((int)b->n < inner ? (int)b->n : inner) + 2;
	if (c->modal.scroll > (int)b->n - (b->h - 2))
		c->modal.scroll = (int)b->n - (b->h - 2);
	if (c->modal.scroll < 0)
		c->modal.scroll = 0;
	c->modal.more = (int)b->n - (b->h - 2) - c->modal.scroll;
	b->y = (LINES - foot_rows - b->h) / 2;
}

static void draw_modal(struct console *c, const struct box *b)
{
	if (c->modal.kind == M_NONE)
		return;
	draw_box(b->y, b->x, b->h, b->w, c->modal.kind == M_HELP ? "Help" : c->modal.title);
	for (int i = 0; i < b->h - 2; i++) {
		const struct line *l = &c->lines[b->first + (size_t)(c->modal.scroll + i)];
		term_put(b->y + 1 + i, b->x + 2, b->w - 4, l->role, l->text);
	}
	if (c->modal.more > 0)
		term_put(b->y + b->h - 1, b->x + b->w - 16, 14, R_TITLE, " PgDn: more ");
}

/* Below 80x24: what the console needs, and what a key just did; an open
 * dialog's title and keys, so that it can still be answered. */
static void draw_small(const struct console *c)
{
	char buf[256];
	struct footer f;
	char row[1][512];
	int y = LINES / 2 - 2 > 0 ? LINES / 2 - 2 : 0;

	snprintf(buf, sizeof(buf), "terminal too small: %dx%d", COLS, LINES);
	term_put(y++, 0, COLS, R_WARN, buf);
	term_put(y++, 0, COLS, R_NORMAL, "embfill needs at least 80x24");
	if (c->modal.kind != M_NONE) {
		term_put(y++, 0, COLS, R_TITLE, c->modal.kind == M_HELP ? "Help" : c->modal.title);
		footer_items(c, false, &f);
		footer_rows(&f, row, 1);
		term_put(y++, 0, COLS, R_KEY, row[0]);
		return;
	}
	if (c->small_msg[0])
		term_put(y++, 0, COLS, R_ACCENT, c->small_msg);
	term_put(y++, 0, COLS, R_DIM, console_run_active(c) ? "(a run goes on meanwhile; p "
		 "pauses it, q stops it)" : "(q or Esc quits)");
}

static bool too_small(void)
{
	return COLS < MIN_COLS || LINES < MIN_ROWS;
}

/*
 * One frame.  The status message wraps onto as many rows as it needs (up
 * to MSG_ROWS_MAX) and the footer onto two rows when the keys do not fit
 * one: the body gives up the rows, so nothing is cut at 80x24.
 */
static void draw(struct console *c)
{
	int x = SIDE_W + 1, h, nmsg = 0, nfoot;
	size_t nbody, msg_first;
	struct footer f;
	struct box box;

	erase();
	if (too_small()) {
		draw_small(c);
		refresh();
		return;
	}
	c->nlines = 0;
	c->body_w = COLS - x - 1;
	c->body_h = LINES - 3;
	steps[c->step]->draw(c);
	nbody = c->nlines;
	msg_first = c->nlines;
	if (c->msg[0])
		nmsg = (int)ui_text(c, c->msg_role, c->msg, COLS - 2);
	if (nmsg > MSG_ROWS_MAX)
		nmsg = MSG_ROWS_MAX;
	footer_items(c, false, &f);
	nfoot = footer_rows(&f, NULL, FOOT_ROWS_MAX);
	h = LINES - 1 - (nmsg ? nmsg : 1) - nfoot;
	if ((int)nbody > h) {
		footer_items(c, true, &f);
		nfoot = footer_rows(&f, NULL, FOOT_ROWS_MAX);
		h = LINES - 1 - (nmsg ? nmsg : 1) - nfoot;
	}
	c->body_h = h;
	layout_modal(c, nfoot, &box);
	footer_items(c, (int)nbody > h, &f);
	if (c->scroll[c->step] > (int)nbody - h)
		c->scroll[c->step] = (int)nbody - h;
	if (c->scroll[c->step] < 0)
		c->scroll[c->step] = 0;
	draw_header(c);
	draw_sidebar(c, h);
	for (int i = 0; i < h && (size_t)(c->scroll[c->step] + i) < nbody; i++) {
		const struct line *l = &c->lines[c->scroll[c->step] + i];
		term_put(1 + i, x, c->body_w, l->role, l->text);
	}
	for (int i = 0; i < nmsg; i++)
		term_put(1 + h + i, 1, COLS - 2, c->lines[msg_first + (size_t)i].role,
			 c->lines[msg_first + (size_t)i].text);
	draw_footer(&f, nfoot);
	draw_modal(c, &box);
	refresh();
}

/* --- keys ----------------------------------------------------------------- */

/* Why Enter does not go on: the step's own reason, else its warnings. */
static const char *not_passed(const struct console *c)
{
	const struct screen *s = steps[c->step];
	const char *why = s->why_not ? s->why_not(c, A_NEXT) : NULL;

	if (why)
		return why;
	return s->can(c, A_ACCEPT) ? "this step has not passed: read its warnings, then a "
				     "accepts them, or fix what they name"
				   : "this step has not passed yet: fix what it names first";
}

static void go_next(struct console *c)
{
	if (c->step + 1 >= NSTEPS)
		return;
	if (c->st[c->step] != ST_PASSED && c->st[c->step] != ST_ACCEPTED) {
		console_msg(c, R_WARN, "%s", not_passed(c));
		return;
	}
	c->step++;
	if (c->st[c->step] == ST_LOCKED)
		c->st[c->step] = ST_OPEN;
	c->msg[0] = '\0';
	if (steps[c->step]->enter)
		steps[c->step]->enter(c);
}

static void go_back(struct console *c)
{
	if (c->step == 0 || c->run.started)
		return;
	c->step--;
	c->msg[0] = '\0';
}

/* Up, Down, PgUp, PgDn, Home and End scroll a dialog taller than the
 * screen; returns whether key was one of them. */
static bool modal_scroll(struct console *c, int key)
{
	int page = LINES / 2;

	switch (key) {
	case KEY_UP: c->modal.scroll -= 1; break;
	case KEY_DOWN: c->modal.scroll += 1; break;
	case KEY_PPAGE: c->modal.scroll -= page; break;
	case KEY_NPAGE: c->modal.scroll += page; break;
	case KEY_HOME: c->modal.scroll = 0; break;
	case KEY_END: c->modal.scroll = 1 << 20; break;
	default: return false;
	}
	if (c->modal.scroll < 0)
		c->modal.scroll = 0;
	return true;
}

static void choice_key(struct console *c, int key)
{
	struct modal m = c->modal;

	if (key == 27) {
		c->modal.kind = M_NONE;
		m.on_choice(c, 0);
		return;
	}
	for (int i = 0; i < m.nchoices; i++) {
		if (key == m.choice[i].key || key == m.choice[i].key - 'a' + 'A') {
			c->modal.kind = M_NONE;
			m.on_choice(c, m.choice[i].key);
			return;
		}
	}
}

static void modal_key(struct console *c, int key)
{
	struct modal m = c->modal;
	size_t len = strlen(c->modal.input);

	if (modal_scroll(c, key))
		return;
	if (m.kind == M_HELP) {
		c->modal.kind = M_NONE;
	} else if (m.kind == M_CHOICE) {
		choice_key(c, key);
	} else if (m.kind == M_CONFIRM) {
		if (key != 'y' && key != 'Y' && key != 'n' && key != 'N' && key != 27)
			return;
		c->modal.kind = M_NONE;
		m.on_confirm(c, key == 'y' || key == 'Y');
	} else if (key == 27) {
		c->modal.kind = M_NONE;
	} else if (key == '\r' || key == '\n' || key == KEY_ENTER) {
		c->modal.kind = M_NONE;
		m.on_prompt(c, m.input);
	} else if ((key == KEY_BACKSPACE || key == 127 || key == 8) && len) {
		c->modal.input[len - 1] = '\0';
	} else if (key == 21) {
		c->modal.input[0] = '\0';
	} else if (key >= 0x20 && key < 0x100 && key != 0x7f && len + 1 < sizeof(m.input)) {
		c->modal.input[len] = (char)key;
		c->modal.input[len + 1] = '\0';
	}
}

static enum ev global_key(struct console *c, enum action a, int key)
{
	int *sc = &c->scroll[c->step];

	switch (a) {
	case A_HELP:
		memset(&c->modal, 0, sizeof(c->modal));
		c->modal.kind = M_HELP;
		return EV_HANDLED;
	case A_QUIT:
		return EV_QUIT;
	case A_NEXT:
		return EV_NEXT;
	case A_BACK:
		return EV_BACK;
	case A_SCROLL:
		*sc += key == KEY_PPAGE ? -(c->body_h - 1) : key == KEY_NPAGE ? c->body_h - 1
		     : key == KEY_UP ? -1 : key == KEY_DOWN ? 1 : key == KEY_HOME ? -100000 : 100000;
		return EV_HANDLED;
	default:
		return EV_IGNORED;
	}
}

/* --- leaving ---------------------------------------------------------------- */

static const int leave_keys[] = { 'w', 'l' };
static const char *const leave_labels[] = { "write it, then leave", "leave without it" };

static void run_leave_answer(struct console *c, int key)
{
	if (!key || !console_run_active(c))
		return;
	worker_stop(c->run.w);
	c->quitting = true;
	c->write_on_leave = key == 'w';
	c->entry_dropped = key == 'l';
	console_msg(c, R_WARN, "stopping: the batches in flight are written and checkpointed%s, "
			       "then the console closes", key == 'w' ? ", then the run's "
			       "historylog entry" : "");
}

static void dry_leave_answer(struct console *c, bool yes)
{
	if (!yes || !console_run_active(c))
		return;
	worker_stop(c->run.w);
	c->quitting = true;
	console_msg(c, R_WARN, "stopping the dry run, then the console closes");
}

static void entry_answer(struct console *c, int key)
{
	if (key == 'w') {
		if (summary_write(c))
			c->quitting = true;
		else
			console_msg(c, R_FAIL, "the historylog entry was not written (%s); the console "
				    "stays open", c->summary.err);
	} else if (key == 'l') {
		c->entry_dropped = true;
		c->quitting = true;
	} else {
		console_msg(c, R_NORMAL, "still here: step 6 shows the entry, and w writes it");
	}
}

static void typed_answer(struct console *c, bool yes)
{
	if (yes)
		c->quitting = true;
}

static const char *sandbox_note(const struct console *c)
{
	return c->sandbox ? " Leaving also stops the sandbox (its database and embedder); "
			    "`embfill demo` starts a new one." : "";
}

/* Anything typed or chosen that leaving would throw away: the fields of
 * step 1, or any step after it, unless the run's entry was written. */
static bool work_at_stake(const struct console *c)
{
	char batch[16];

	if (c->summary.written)
		return false;
	if (c->step > STEP_SCOPE || c->st[STEP_SCOPE] == ST_PASSED ||
	    c->st[STEP_SCOPE] == ST_ACCEPTED)
		return true;
	snprintf(batch, sizeof(batch), "%d", c->app->cfg->batch_size);
	return c->scope.f[F_COLL][0] || c->scope.f[F_CONFIRM][0] || c->scope.f[F_NOTE][0] ||
	       c->scope.f[F_UNTIL][0] || strcmp(c->scope.f[F_BATCH], batch) != 0;
}

/*
 * Every way out (q, Esc, Ctrl-C) comes here, and asks whenever leaving
 * would lose something: a run (stopped first, its entry written or not on
 * the operator's word), the finished run's unwritten historylog entry, or
 * what was typed and chosen.  With nothing at stake it leaves at once.
 */
static void on_quit(struct console *c)
{
	char text[640];

	if (console_run_active(c)) {
		if (c->quitting)
			return;
		if (c->plan.mode == MODE_DRY_RUN) {
			console_confirm(c, "Leave during the dry run?", "The dry run stops; nothing "
					"was written. Leave?", dry_leave_answer);
		} else {
			snprintf(text, sizeof(text), "The run stops after the batches in flight are "
				 "written and checkpointed; it can be resumed later (the console "
				 "offers it). Its historylog entry records what it did, the warnings "
				 "accepted and the command that resumes it.%s", sandbox_note(c));
			console_choose(c, "Leave during the run?", text, run_leave_answer, 2,
				       leave_keys, leave_labels);
		}
		c->modal.leaving = true;
		return;
	}
	if (summary_pending(c)) {
		snprintf(text, sizeof(text), "The historylog entry of run %lld is not written yet: "
			 "without it nothing records what the run did, the warnings accepted and the "
			 "verification.%s", c->run.res.run_id, sandbox_note(c));
		console_choose(c, "Leave without the historylog entry?", text, entry_answer, 2,
			       leave_keys, leave_labels);
		c->modal.leaving = true;
		return;
	}
	if (work_at_stake(c)) {
		snprintf(text, sizeof(text), "What was typed and chosen here is not kept: a new "
			 "console starts again at step 1.%s Leave?", sandbox_note(c));
		console_confirm(c, "Leave the console?", text, typed_answer);
		c->modal.leaving = true;
		return;
	}
	c->quitting = true;
}

/* Actions every step has, whatever its can() says. */
static bool always(enum action a)
{
	return a == A_NONE || a == A_HELP || a == A_QUIT || a == A_SCROLL || a == A_FIELD;
}

/*
 * The one place that decides whether a key's action may reach the step:
 * what can() refuses is never handled (the footer did not offer it); the
 * operator hears why, and on a text field the key is simply typed.
 */
static enum action allowed(struct console *c, const struct screen *s, int key, enum action a)
{
	const char *why;

	if (always(a) || s->can(c, a))
		return a;
	if (s->text_input && key >= 0x20 && key < 0x100 && key != 0x7f)
		return A_NONE;
	why = s->why_not ? s->why_not(c, a) : NULL;
	if (!why && a == A_NEXT)
		why = not_passed(c);
	if (!why && a == A_BACK)
		why = c->run.started ? "the run has started: the steps before it are fixed"
				     : "this is the first step";
	console_msg(c, R_DIM, "%s (%s): %s", actions[a].key, actions[a].label,
		    why ? why : "not available at this point of the step");
	return A__COUNT;
}

/* The terminal is too small to show the step: the keys that must work
 * blind still do (quit, and pause or cancel a run), and every other key
 * is answered on the small screen instead of being dropped. */
static void small_key(struct console *c, int key)
{
	const struct screen *s = steps[c->step];
	enum action a = lookup(s, key);

	if (a == A_QUIT) {
		on_quit(c);
		return;
	}
	if ((a == A_PAUSE || a == A_CANCEL) && s->can(c, a)) {
		c->msg[0] = '\0';
		s->on_key(c, key, a);
		snprintf(c->small_msg, sizeof(c->small_msg), "%s", c->msg[0] ? c->msg
			 : "cancel asked");
		return;
	}
	snprintf(c->small_msg, sizeof(c->small_msg), "%s%s%s was not taken: enlarge the "
		 "terminal first", key == '\r' || key == '\n' ? "Enter" : "\"",
		 key == '\r' || key == '\n' ? "" : keyname(key), key == '\r' || key == '\n' ? ""
		 : "\"");
}

static void handle_key(struct console *c, int key)
{
	const struct screen *s = steps[c->step];
	enum action a;
	enum ev ev;

	if (key == KEY_RESIZE)
		return;
	if (c->modal.kind != M_NONE) {
		modal_key(c, key);
		return;
	}
	if (too_small()) {
		small_key(c, key);
		return;
	}
	c->small_msg[0] = '\0';
	a = allowed(c, s, key, lookup(s, key));
	if (a == A__COUNT)
		return;
	ev = s->on_key(c, key, a);
	if (ev == EV_IGNORED)
		ev = global_key(c, a, key);
	if (ev == EV_NEXT)
		go_next(c);
	else if (ev == EV_BACK)
		go_back(c);
	else if (ev == EV_QUIT)
		on_quit(c);
}

/* --- signals -------------------------------------------------------------- */

/* SIGINT asks (a run is cancelled only on the operator's word; leaving
 * asks as q does); SIGHUP and SIGTERM stop the run after the batches in
 * flight and leave with 5, without asking: nobody may be there. */
static void handle_signal(struct console *c, int sig)
{
	if (sig == SIGINT) {
		if (console_run_active(c) && !worker_stopping(c->run.w))
			run_ask_cancel(c);
		else if (!console_run_active(c) && !(c->modal.kind != M_NONE && c->modal.leaving))
			on_quit(c);
		return;
	}
	c->hangup = sig;
	c->quitting = true;
	if (console_run_active(c))
		worker_stop(c->run.w);
}

/* --- the loop ------------------------------------------------------------- */

static void read_keys(struct console *c, short revents, int *errs)
{
	int key, got = 0;

	if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
		handle_signal(c, SIGHUP);
		return;
	}
	while ((key = getch()) != ERR) {
		got++;
		handle_key(c, key);
	}
	*errs = got ? 0 : *errs + 1;
	if (*errs >= ERR_LIMIT)
		handle_signal(c, SIGHUP);
}

static void loop(struct console *c)
{
	int errs = 0;

	while (!(c->quitting && !console_run_active(c))) {
		struct pollfd pf[2] = {
			{ .fd = c->hangup ? -1 : STDIN_FILENO, .events = POLLIN },
			{ .fd = term_wake_rfd(), .events = POLLIN },
		};
		int sig;

		if (!c->hangup)
			draw(c);
		if (poll(pf, 2, console_run_active(c) ? 200 : 1000) < 0 && errno != EINTR)
			break;
		if (pf[1].revents & POLLIN)
			term_wake_drain();
		if ((sig = term_take_signal()) != 0)
			handle_signal(c, sig);
		if (term_take_resize())
			clearok(curscr, TRUE);
		if (!c->hangup && pf[0].revents)
			read_keys(c, pf[0].revents, &errs);
		run_poll(c);
	}
}

static void console_init(struct console *c, struct app *app)
{
	memset(c, 0, sizeof(*c));
	c->app = app;
	c->steps = steps;
	c->draw_frame = draw;
	c->st[STEP_SCOPE] = ST_OPEN;
	c->scope.batch = app->cfg->batch_size;
	/* -C names the collection to show first (the sandbox's scenario); the
	 * fields stay empty: the operator still types the name twice */
	if (app->cli->collection)
		snprintf(c->scope.suggested, sizeof(c->scope.suggested), "%s",
			 app->cli->collection);
	snprintf(c->scope.f[F_BATCH], sizeof(c->scope.f[F_BATCH]), "%d", app->cfg->batch_size);
	c->sandbox = getenv("EMBFILL_SANDBOX") && *getenv("EMBFILL_SANDBOX");
}

static void console_free(struct console *c)
{
	scope_free(c);
	locate_free(c);
	plan_free(c);
	run_free(c);
	validate_free(c);
	summary_free(c);
	for (size_t i = 0; i < c->naccepted; i++)
		free(c->accepted[i]);
	free(c->lines);
}

/* After endwin: what the operator needs to know on the plain terminal. */
static int farewell(const struct console *c)
{
	const char *coll = c->scope.collection;
	bool interrupted = c->run.have_res && c->run.st == EF_ERR_INTERRUPTED;

	if (c->summary.written)
		fprintf(stdout, "embfill: historylog entry written at the top of %s\n",
			c->summary.where);
	else if (summary_pending(c))
		fprintf(stderr, "embfill: the historylog entry of run %lld was not written%s%s\n",
			c->run.res.run_id, c->summary.err[0] ? ": " : c->entry_dropped ?
			" (left without it)" : "", c->summary.err);
	if (interrupted) {
		char *safe = ef_redact(coll);
		fprintf(stderr, "embfill: run %lld of \"%s\" stopped%s and checkpointed\n"
				"hint: open the console again to resume it, or run `embfill run -C "
				"%s --confirm %s --resume`\n", c->run.res.run_id, safe ? safe : "",
			c->hangup == SIGHUP ? " (hangup)" : c->hangup == SIGTERM ? " (SIGTERM)" : "",
			safe ? safe : "", safe ? safe : "");
		free(safe);
	}
	if (c->hangup || interrupted)
		return EF_ERR_INTERRUPTED;
	return 0;
}

int cmd_tui(struct app *app)
{
	static struct console c;
	struct term_opts to = { .no_color = app->cli->no_color, .ascii = app->cli->ascii };
	char why[256];
	int rc;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "embfill: the console needs a terminal\n"
				"hint: every step exists as a command: `embfill --help` lists them\n");
		return EF_ERR_USAGE;
	}
	if (term_init(&to, why, sizeof(why)) != 0) {
		fprintf(stderr, "embfill: %s\nhint: set TERM to your terminal's type, e.g. "
				"xterm-256color\n", why);
		return EF_ERR_USAGE;
	}
	console_init(&c, app);
	steps[0]->enter(&c);
	loop(&c);
	/* "w" while the run stopped: its entry, now that its result is in */
	if (c.write_on_leave && summary_pending(&c))
		summary_write(&c);
	term_done();
	rc = farewell(&c);
	console_free(&c);
	return rc;
}
