/*
 * ui.c - what the screens draw and say through: the body's lines, bars and
 * fields (wrapped to the body's width, redacted), the status line, the
 * dialogs, accepted warnings, and the steps' states.  The loop (console.c)
 * owns the frame and the keys; it hands its table of steps and its
 * frame-drawing function to the console state, so nothing here calls back
 * into a screen by name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/redact.h"
#include "embfill/sanitize.h"
#include "tui/console/console.h"
#include "tui/console/term.h"
#include "tui/flow/request.h"

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

size_t ui_text(struct console *c, enum role r, const char *text, int width)
{
	size_t before = c->nlines;
	int saved = c->body_w;
	char *copy = strdup(text), *p, *nl;

	if (!copy)
		return 0;
	c->body_w = width;
	for (p = copy; (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		wrap_one(c, r, p);
	}
	wrap_one(c, r, p);
	c->body_w = saved;
	free(copy);
	return c->nlines - before;
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
		if (c->steps[i]->forget)
			c->steps[i]->forget(c);
	}
	drop_accepted_after(c, step);
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

void console_choose(struct console *c, const char *title, const char *text, choice_fn fn,
		    int nchoices, const int *keys, const char *const *labels)
{
	memset(&c->modal, 0, sizeof(c->modal));
	c->modal.kind = M_CHOICE;
	snprintf(c->modal.title, sizeof(c->modal.title), "%s", title);
	ef_redact_buf(text, c->modal.text, sizeof(c->modal.text));
	c->modal.on_choice = fn;
	for (int i = 0; i < nchoices && i < MODAL_CHOICES; i++) {
		c->modal.choice[i].key = keys[i];
		snprintf(c->modal.choice[i].label, sizeof(c->modal.choice[i].label), "%s",
			 labels[i]);
		c->modal.nchoices++;
	}
}

void console_busy(struct console *c, const char *what)
{
	console_msg(c, R_ACCENT, "%s %s", what, term_glyph(G_DOTS));
	if (!c->hangup)
		c->draw_frame(c);
}

bool console_into(const struct console *c)
{
	return c->plan.mode == MODE_NEW_COLLECTION && c->plan.target[0];
}

const char *console_target(const struct console *c)
{
	return console_into(c) ? c->plan.target : c->scope.collection;
}

void console_request(const struct console *c, struct run_request *r)
{
	memset(r, 0, sizeof(*r));
	r->collection = c->scope.collection;
	r->into = console_into(c) ? c->plan.target : NULL;
	r->rechunk = r->into && c->plan.plan.chunking_changed;
	r->backup = MODE_WRITES_IN_PLACE(c->plan.mode) && c->plan.backup;
	r->only_missing = c->plan.mode == MODE_MISSING_ONLY;
	r->approve_provider = c->plan.approved;
	r->dry_run = c->plan.mode == MODE_DRY_RUN;
	r->until = c->scope.until[0] ? c->scope.until : NULL;
	r->note = c->scope.note[0] ? c->scope.note : NULL;
}
