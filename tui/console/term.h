/*
 * term.h - the one owner of the terminal: curses start and end, colours or
 * attributes only (NO_COLOR, --no-color), UTF-8 or ASCII drawing, signals,
 * resize, and the wake pipe that the console's poll() watches.
 *
 * Nothing else calls initscr/endwin or installs signal handlers.  The
 * terminal is restored by term_done(), which is idempotent and also runs
 * from atexit(), so every exit path leaves a sane tty behind.
 */
#ifndef EMBFILL_TUI_TERM_H
#define EMBFILL_TUI_TERM_H

#include <stdbool.h>
#include <stddef.h>

/* What a piece of text is; term_attr() turns it into colour and/or
 * attributes.  Colour never carries meaning alone: every status also has a
 * glyph ("[x]", "[!]") in the text itself. */
enum role {
	R_NORMAL, R_TITLE, R_DIM, R_GOOD, R_WARN, R_FAIL, R_ACCENT, R_FIELD, R_FOCUS,
	R_KEY, R_HEADER, R_BAR, R__COUNT
};

enum glyph { G_VLINE, G_HLINE, G_BAR_FULL, G_BAR_EMPTY, G_ARROW, G_DOTS, G__COUNT };

struct term_opts {
	bool no_color;  /* --no-color; NO_COLOR (non-empty) is read here too */
	bool ascii;     /* --ascii; also forced when the locale is not UTF-8 */
};

/* Starts curses; on failure returns -1 with the reason in why (nothing to
 * restore then). */
int term_init(const struct term_opts *o, char *why, size_t n);

/* Ends curses, restores the tty and stderr, and replays what was written to
 * stderr meanwhile.  Safe to call any number of times, from any exit path. */
void term_done(void);

bool term_ascii(void);
bool term_color(void);
int term_attr(enum role r);
const char *term_glyph(enum glyph g);
/* One sparkline cell, level 0 (lowest) .. 7. */
const char *term_spark(int level);

/* The wake pipe: the read end for poll(), the write end for the worker. */
int term_wake_rfd(void);
int term_wake_wfd(void);
void term_wake_drain(void);

/* The newest of SIGINT/SIGTERM/SIGHUP since the last call, or 0. */
int term_take_signal(void);
/* True (once) after SIGWINCH; the curses screen is resized already. */
bool term_take_resize(void);

/* Display columns of UTF-8 text as term_put() would draw it. */
size_t term_cols(const char *s);
/* Draws text at (y, x), at most width columns, in role r.  Control
 * characters become '?', and so does non-ASCII text in ASCII mode.
 * Returns the columns drawn. */
int term_put(int y, int x, int width, enum role r, const char *text);
/* Fills width columns at (y, x) with a glyph. */
void term_fill(int y, int x, int width, enum role r, const char *glyph);

#endif
