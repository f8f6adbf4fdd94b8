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
#include "embfill/sanitize.h"
#include "tui/console.h"

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

/* --- the body ------------------------------------------------------------- */

static void push_line(struct console *c, enum role r, const char *text, size_t len)
{
	if (c->nlines == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct line *l = realloc(c->lines, cap * sizeof(*l));

		if (!l)
			return;
		c->lines = l;
		c->cap = cap;
	}
	if (len >= sizeof(c->lines[0].text))
		len = sizeof(c->lines[0].text) - 1;
	c->lines[c->nlines].role = r;
	memcpy(c->lines[c->nlines].text, text, len);
	c->lines[c->nlines].text[len] = '\0';
	c->nlines++;
}

/* Bytes of s that fit in width columns, ending at a character boundary. */
static size_t fit(const char *s, int width)
{
	size_t off = 0;
	int cols = 0;

	while (s[off]) {
		int len = mblen(s + off, MB_CUR_MAX);
		char ch[8];

		if (len <= 0)
			len = 1;
		memcpy(ch, s + off, (size_t)len);
		ch[len] = '\0';
		cols += (int)term_cols(ch);
		if (cols > width)
			break;
		off += (size_t)len;
	}
	return off;
}

/* Continuation lines hang under the text: two columns past the line's own
 * indent, or under the text after a "[ok]   " status tag. */
static size_t hang(const char *s)
{
	size_t indent = strspn(s, " ");
	const char *close;

	if (s[indent] == '[' && (close = strchr(s + indent, ']')) && close - s < 12 &&
	    close[1] == ' ')
		return (size_t)(close + 1 - s) + strspn(close + 1, " ") - 2;
	return indent;
}

static void wrap_one(struct console *c, enum role r, const char *s)
{
	size_t indent = hang(s);
	int width = c->body_w > 10 ? c->body_w : 10;
	char buf[sizeof(c->lines[0].text)];
	bool first = true;

	while (*s || first) {
		int avail = first ? width : width - (int)indent - 2;
		size_t n = fit(s, avail), cut = n;

		if (s[n]) {
			for (size_t i = n; i > 0; i--)
				if (s[i] == ' ') {
					cut = i;
					break;
				}
			if (cut == 0 || (first && cut <= indent))
				cut = n ? n : 1;
		}
		if (first)
			snprintf(buf, sizeof(buf), "%.*s", (int)cut, s);
		else
			snprintf(buf, sizeof(buf), "%*s%.*s", (int)indent + 2, "", (int)cut, s);
		push_line(c, r, buf, strlen(buf));
		s += cut;
		while (*s == ' ')
			s++;
		first = false;
	}
}

/* Sanitised as the command line's output is (core/sanitize.c), so that the
 * console shows a control character from the database as the same escape;
 * newlines stay, as each starts a body line. */
void ui_line(struct console *c, enum role r, const char *fmt, ...)
{
	char raw[2048], red[2048], *safe, *p, *nl;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	ef_redact_buf(raw, red, sizeof(red));
	safe = ef_sanitize(red, strlen(red), EF_SAN_KEEP_LINES);
	if (!safe)
		return;
	for (p = safe; (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		wrap_one(c, r, p);
	}
	wrap_one(c, r, p);
	free(safe);
}

void ui_blank(struct console *c)
{
	push_line(c, R_NORMAL, "", 0);
}

void ui_checklist(struct console *c, const struct ef_checklist *l)
{
	static const char *const tag[] = { "[ok]  ", "[warn]", "[FAIL]" };
	static const enum role role[] = { R_GOOD, R_WARN, R_FAIL };

	for (size_t i = 0; i < l->n; i++) {
		const struct ef_check *k = &l->items[i];

		ui_line(c, role[k->level], "%s %s: %s", tag[k->level], k->what, k->detail);
		if (k->hint[0] && k->level != EF_CHECK_PASS)
			ui_line(c, R_DIM, "       hint: %s", k->hint);
	}
}

void ui_bar(struct console *c, const char *label, double frac, const char *suffix)
{
	char buf[sizeof(c->lines[0].text)];
	size_t len;
	int w = c->body_w - (int)strlen(label) - 22, full;

	if (w < 8)
		w = 8;
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	full = (int)(frac * w + 0.5);
	len = (size_t)snprintf(buf, sizeof(buf), "%s [", label);
	for (int i = 0; i < w && len + 8 < sizeof(buf); i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s",
					term_glyph(i < full ? G_BAR_FULL : G_BAR_EMPTY));
	snprintf(buf + len, sizeof(buf) - len, "] %-19.19s", suffix);
	push_line(c, R_BAR, buf, strlen(buf));
}

void ui_field(struct console *c, const char *label, const char *value, bool focus)
{
	char safe[EF_COLLECTION_NAME_MAX * 2 + 64];

	ef_redact_buf(value, safe, sizeof(safe));
	ui_line(c, focus ? R_FOCUS : R_FIELD, "%s %-*s[%s%s]", focus ? term_glyph(G_ARROW) : " ",
		16, label, safe, focus ? "_" : "");
}

void console_msg(struct console *c, enum role r, const char *fmt, ...)
{
	va_list ap;
	char *safe;

	va_start(ap, fmt);
	safe = ef_safe_vformat(fmt, ap);
	va_end(ap);
	snprintf(c->msg, sizeof(c->msg), "%s", safe ? safe : "");
	free(safe);
	c->msg_role = r;
}

void fmt_duration(double s, char *buf, size_t n)
{
	if (s < 0)
		snprintf(buf, n, "unknown");
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

bool console_run_active(const struct console *c)
{
	return c->run.w != NULL && !c->run.finished;
}

void console_accept(struct console *c, const char *step, const char *what)
{
	char buf[600];

	if (c->naccepted == MAX_ACCEPTED)
		return;
	snprintf(buf, sizeof(buf), "%s: %s", step, what);
	c->accepted[c->naccepted] = strdup(buf);
	c->accepted_step[c->naccepted] = c->step;
	if (c->accepted[c->naccepted])
		c->naccepted++;
}

static void drop_accepted_after(struct console *c, int step)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->naccepted; i++) {
		if (c->accepted_step[i] > step) {
			free(c->accepted[i]);
			continue;
		}
		c->accepted[kept] = c->accepted[i];
		c->accepted_step[kept++] = c->accepted_step[i];
	}
	c->naccepted = kept;
}

/* Later steps drop what they learnt, and accepted warnings of those steps
 * are forgotten with them ("scope: ..." of step 1 stays when 1 is kept). */
void console_reset_after(struct console *c, int step)
{
	for (int i = step + 1; i < NSTEPS; i++) {
		c->st[i] = ST_LOCKED;
		c->scroll[i] = 0;
	}
	drop_accepted_after(c, step);
	if (step < 1)
		locate_free(c);
	if (step < 2)
		plan_free(c);
	if (step < 4)
		validate_free(c);
	if (step < 5)
		summary_free(c);
}

void console_confirm(struct console *c, const char *title, const char *text, confirm_fn fn)
{
	memset(&c->modal, 0, sizeof(c->modal));
	c->modal.kind = M_CONFIRM;
	snprintf(c->modal.title, sizeof(c->modal.title), "%s", title);
	ef_redact_buf(text, c->modal.text, sizeof(c->modal.text));
	c->modal.on_confirm = fn;
}

void console_prompt(struct console *c, const char *title, const char *text, prompt_fn fn)
{
	memset(&c->modal, 0, sizeof(c->modal));
	c->modal.kind = M_PROMPT;
	snprintf(c->modal.title, sizeof(c->modal.title), "%s", title);
	ef_redact_buf(text, c->modal.text, sizeof(c->modal.text));
	c->modal.on_prompt = fn;
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
	return c->step == 0;
}

static void draw_footer(const struct console *c)
{
	const struct screen *s = steps[c->step];
	char buf[512];
	size_t len = 0;
	enum action shown[A__COUNT];
	size_t n = 0;

	if (c->modal.kind == M_CONFIRM)
		len = (size_t)snprintf(buf, sizeof(buf), " y yes  n no");
	else if (c->modal.kind == M_PROMPT)
		len = (size_t)snprintf(buf, sizeof(buf), " Enter done  Esc cancel");
	else if (c->modal.kind == M_HELP)
		len = (size_t)snprintf(buf, sizeof(buf), " any key closes the help");
	else {
		for (const enum action *a = s->actions; *a != A_NONE; a++)
			if (*a != A_FIELD && s->can(c, *a))
				shown[n++] = *a;
		if (s->can(c, A_NEXT))
			shown[n++] = A_NEXT;
		if (s->can(c, A_BACK))
			shown[n++] = A_BACK;
		if ((int)c->nlines > c->body_h)
			shown[n++] = A_SCROLL;
		for (size_t i = 0; i < n; i++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, " %s %s ",
						shown[i] == A_SCROLL ? "PgDn" : actions[shown[i]].key,
						shown[i] == A_SCROLL ? "more" : actions[shown[i]].label);
		if (text_input(c))
			snprintf(buf + len, sizeof(buf) - len, " Tab field  F1 help  Esc quit");
		else
			snprintf(buf + len, sizeof(buf) - len, " ? help  q quit");
	}
	term_fill(LINES - 1, 0, COLS, R_KEY, " ");
	term_put(LINES - 1, 0, COLS, R_KEY, buf);
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

/* A dialog: its lines are built with the body helpers at the box's width. */
static void draw_modal(struct console *c)
{
	int w = COLS - SIDE_W - 4, x = SIDE_W + 1, y, h;
	size_t first;

	if (c->modal.kind == M_NONE)
		return;
	first = c->nlines;
	c->body_w = w - 4;
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
		else
			ui_line(c, R_FOCUS, "> %s_", c->modal.input);
	}
	h = (int)(c->nlines - first) + 2;
	if (h > LINES - 3)
		h = LINES - 3;
	y = (LINES - h) / 2;
	draw_box(y, x, h, w, c->modal.kind == M_HELP ? "Help" : c->modal.title);
	for (int i = 0; i < h - 2; i++)
		term_put(y + 1 + i, x + 2, w - 4, c->lines[first + (size_t)i].role,
			 c->lines[first + (size_t)i].text);
}

static void draw_small(void)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "terminal too small: %dx%d", COLS, LINES);
	term_put(LINES / 2 - 1, 0, COLS, R_WARN, buf);
	term_put(LINES / 2, 0, COLS, R_NORMAL, "embfill needs at least 80x24");
	term_put(LINES / 2 + 1, 0, COLS, R_DIM, "(a run goes on meanwhile)");
}

static void draw(struct console *c)
{
	int h = LINES - 3, x = SIDE_W + 1;

	erase();
	if (COLS < MIN_COLS || LINES < MIN_ROWS) {
		draw_small();
		refresh();
		return;
	}
	c->nlines = 0;
	c->body_w = COLS - x - 1;
	c->body_h = h;
	steps[c->step]->draw(c);
	if (c->scroll[c->step] > (int)c->nlines - h)
		c->scroll[c->step] = (int)c->nlines - h;
	if (c->scroll[c->step] < 0)
		c->scroll[c->step] = 0;
	draw_header(c);
	draw_sidebar(c, h);
	for (int i = 0; i < h && (size_t)(c->scroll[c->step] + i) < c->nlines; i++) {
		const struct line *l = &c->lines[c->scroll[c->step] + i];
		term_put(1 + i, x, c->body_w, l->role, l->text);
	}
	term_put(LINES - 2, 1, COLS - 2, c->msg_role, c->msg);
	draw_footer(c);
	draw_modal(c);
	refresh();
}

void console_busy(struct console *c, const char *what)
{
	console_msg(c, R_ACCENT, "%s %s", what, term_glyph(G_DOTS));
	if (!c->hangup)
		draw(c);
}

/* --- keys ----------------------------------------------------------------- */

static void go_next(struct console *c)
{
	if (c->step + 1 >= NSTEPS)
		return;
	if (c->st[c->step] != ST_PASSED && c->st[c->step] != ST_ACCEPTED) {
		console_msg(c, R_WARN, "this step has not passed: fix it, or accept its warnings "
				       "(a) where that is offered");
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

static void modal_key(struct console *c, int key)
{
	struct modal m = c->modal;
	size_t len = strlen(c->modal.input);

	if (m.kind == M_HELP) {
		c->modal.kind = M_NONE;
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

static void quit_confirmed(struct console *c, bool yes)
{
	if (!yes || !console_run_active(c))
		return;
	worker_stop(c->run.w);
	c->quitting = true;
	console_msg(c, R_WARN, "stopping: the batches in flight are written and checkpointed, "
			       "then the console closes");
}

static enum ev global_key(struct console *c, enum action a, int key)
{
	int *sc = &c->scroll[c->step];

	switch (a) {
	case A_HELP:
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

static void on_quit(struct console *c)
{
	if (console_run_active(c)) {
		if (!c->quitting)
			console_confirm(c, "Leave during the run?",
					"The run stops after the batches in flight are written "
					"and checkpointed; it can be resumed later (the console "
					"offers it). Leave?", quit_confirmed);
		return;
	}
	c->quitting = true;
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
	if (COLS < MIN_COLS || LINES < MIN_ROWS) {
		if (key == 'q' || key == 'Q')
			on_quit(c);
		return;
	}
	a = lookup(s, key);
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

static void cancel_answer(struct console *c, bool yes)
{
	if (yes && console_run_active(c)) {
		worker_cancel(c->run.w);
		console_msg(c, R_WARN, "cancelling: requests on the wire are aborted");
	}
}

/* SIGINT asks (a run is cancelled only on the operator's word); SIGHUP and
 * SIGTERM stop the run after the batches in flight and leave with 5. */
static void handle_signal(struct console *c, int sig)
{
	if (sig == SIGINT) {
		if (console_run_active(c) && !worker_stopping(c->run.w))
			console_confirm(c, "Cancel the run?", "Ctrl-C: cancel the run? What was "
				"written stays; the rest can be resumed.", cancel_answer);
		else if (!console_run_active(c))
			c->quitting = true;
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
	c->st[0] = ST_OPEN;
	c->scope.batch = app->cfg->batch_size;
	/* -C names the collection to show first (the sandbox's scenario); the
	 * fields stay empty: the operator still types the name twice */
	if (app->cli->collection)
		snprintf(c->scope.suggested, sizeof(c->scope.suggested), "%s",
			 app->cli->collection);
	snprintf(c->scope.f[F_BATCH], sizeof(c->scope.f[F_BATCH]), "%d", app->cfg->batch_size);
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
	term_done();
	rc = farewell(&c);
	console_free(&c);
	return rc;
}

bool console_into(const struct console *c)
{
	return c->plan.mode == MODE_NEW_COLLECTION && c->plan.target[0];
}

const char *console_target(const struct console *c)
{
	return console_into(c) ? c->plan.target : c->scope.collection;
}
