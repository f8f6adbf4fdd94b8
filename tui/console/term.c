/*
 * term.c - curses, colours, glyphs, signals and resize; see term.h.
 *
 * Why stderr goes to a file while curses runs: libpq, libcurl or a stray
 * perror would otherwise write over the screen.  What they said is replayed
 * after endwin(), where the operator can read it.
 *
 * Signal handlers only record the signal and write one byte to the wake
 * pipe (both async-signal-safe), so that the main loop's poll() returns at
 * once; the loop then decides what the signal means.
 */
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include <curses.h>

#include "tui/console/term.h"

static struct {
	bool active;
	bool ascii;
	bool color;
	SCREEN *scr;
	int wake[2];
	int saved_stderr;
	FILE *errlog;
	bool atexit_set;
} T = { .wake = { -1, -1 }, .saved_stderr = -1 };

static volatile sig_atomic_t pending_sig;
static volatile sig_atomic_t pending_winch;

static void on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGWINCH)
		pending_winch = 1;
	else
		pending_sig = sig;
	if (T.wake[1] >= 0 && write(T.wake[1], "s", 1) < 0)
		errno = saved; /* a full pipe is awake enough */
	errno = saved;
}

static void install_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void redirect_stderr(void)
{
	fflush(stderr);
	T.errlog = tmpfile();
	if (!T.errlog)
		return;
	T.saved_stderr = dup(STDERR_FILENO);
	if (T.saved_stderr < 0 || dup2(fileno(T.errlog), STDERR_FILENO) < 0) {
		fclose(T.errlog);
		T.errlog = NULL;
	}
}

static void replay_stderr(void)
{
	char buf[4096];
	size_t n;

	if (!T.errlog)
		return;
	fflush(stderr);
	dup2(T.saved_stderr, STDERR_FILENO);
	close(T.saved_stderr);
	T.saved_stderr = -1;
	rewind(T.errlog);
	while ((n = fread(buf, 1, sizeof(buf), T.errlog)) > 0)
		if (fwrite(buf, 1, n, stderr) != n)
			break;
	fclose(T.errlog);
	T.errlog = NULL;
}

/* Pairs with the terminal's own background, so that a light or dark theme
 * stays readable. */
static void start_colors(void)
{
	static const short fg[R__COUNT] = {
		[R_GOOD] = COLOR_GREEN, [R_WARN] = COLOR_YELLOW, [R_FAIL] = COLOR_RED,
		[R_ACCENT] = COLOR_CYAN, [R_BAR] = COLOR_CYAN, [R_DIM] = COLOR_BLUE,
	};

	if (!has_colors() || start_color() == ERR)
		return;
	use_default_colors();
	for (int r = 0; r < R__COUNT; r++)
		if (fg[r])
			init_pair((short)r, fg[r], -1);
	T.color = true;
}

static bool locale_is_utf8(void)
{
	const char *cs = nl_langinfo(CODESET);

	return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

int term_init(const struct term_opts *o, char *why, size_t n)
{
	const char *nc = getenv("NO_COLOR");

	if (T.active)
		return 0;
	setlocale(LC_CTYPE, "");
	T.ascii = o->ascii || !locale_is_utf8();
	if (pipe2(T.wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(why, n, "cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	install_signals();
	if (!T.atexit_set && atexit(term_done) == 0)
		T.atexit_set = true;
	T.scr = newterm(NULL, stdout, stdin);
	if (!T.scr) {
		snprintf(why, n, "cannot drive the terminal \"%s\"",
			 getenv("TERM") ? getenv("TERM") : "(TERM unset)");
		return -1;
	}
	set_term(T.scr);
	T.active = true;
	redirect_stderr();
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	if (!o->no_color && !(nc && *nc))
		start_colors();
	return 0;
}

void term_done(void)
{
	if (!T.active)
		return;
	T.active = false;
	endwin();
	delscreen(T.scr);
	T.scr = NULL;
	replay_stderr();
	fflush(stdout);
}

bool term_ascii(void)
{
	return T.ascii;
}

bool term_color(void)
{
	return T.color;
}

/* Without colour, attributes alone keep every role distinct enough. */
int term_attr(enum role r)
{
	static const int mono[R__COUNT] = {
		[R_TITLE] = A_BOLD, [R_GOOD] = A_BOLD, [R_WARN] = A_BOLD,
		[R_FAIL] = A_BOLD | A_UNDERLINE, [R_FIELD] = A_UNDERLINE, [R_FOCUS] = A_REVERSE,
		[R_KEY] = A_REVERSE, [R_HEADER] = A_REVERSE | A_BOLD, [R_DIM] = A_DIM,
		[R_ACCENT] = A_BOLD,
	};
	int a = mono[r];

	if (T.color && r != R_NORMAL && r != R_TITLE && r != R_FIELD && r != R_FOCUS &&
	    r != R_KEY && r != R_HEADER)
		a = (r == R_FAIL || r == R_GOOD ? A_BOLD : 0) | (int)COLOR_PAIR(r);
	return a;
}

const char *term_glyph(enum glyph g)
{
	static const char *const utf[G__COUNT] = { "\u2502", "\u2500", "\u2588", "\u2591",
						   "\u25b8", "\u2026" };
	static const char *const asc[G__COUNT] = { "|", "-", "#", ".", ">", "..." };

	return T.ascii ? asc[g] : utf[g];
}

const char *term_spark(int level)
{
	static const char *const utf[8] = { "\u2581", "\u2582", "\u2583", "\u2584",
					    "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char *const asc[8] = { "_", ".", ",", "-", "~", "=", "*", "#" };

	level = level < 0 ? 0 : level > 7 ? 7 : level;
	return T.ascii ? asc[level] : utf[level];
}

int term_wake_rfd(void)
{
	return T.wake[0];
}

int term_wake_wfd(void)
{
	return T.wake[1];
}

void term_wake_drain(void)
{
	char buf[256];

	while (read(T.wake[0], buf, sizeof(buf)) > 0)
		;
}

int term_take_signal(void)
{
	int s = pending_sig;

	pending_sig = 0;
	return s;
}

bool term_take_resize(void)
{
	struct winsize ws;

	if (!pending_winch)
		return false;
	pending_winch = 0;
	if (T.active && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		resizeterm(ws.ws_row, ws.ws_col);
	return true;
}

/* Decodes one character of s; returns its length in bytes and sets *w to
 * its columns (-1: not printable). */
static size_t next_char(const char *s, wchar_t *wc, int *w)
{
	mbstate_t st;
	size_t len;

	memset(&st, 0, sizeof(st));
	if ((unsigned char)*s < 0x80) {
		*wc = (wchar_t)*s;
		*w = (*s >= 0x20 && *s < 0x7f) ? 1 : -1;
		return 1;
	}
	len = mbrtowc(wc, s, MB_CUR_MAX, &st);
	if (len == (size_t)-1 || len == (size_t)-2 || len == 0) {
		*w = -1;
		return 1;
	}
	*w = T.ascii ? -1 : wcwidth(*wc);
	return len;
}

size_t term_cols(const char *s)
{
	size_t cols = 0;
	wchar_t wc;
	int w;

	while (*s) {
		s += next_char(s, &wc, &w);
		cols += w < 0 ? 1 : (size_t)w;
	}
	return cols;
}

int term_put(int y, int x, int width, enum role r, const char *text)
{
	int col = 0;
	wchar_t wc;
	int w;

	if (!T.active || width <= 0)
		return 0;
	attrset(term_attr(r));
	move(y, x);
	while (*text) {
		size_t len = next_char(text, &wc, &w);

		if (col + (w < 0 ? 1 : w) > width)
			break;
		if (w < 0)
			addch('?');
		else if (len == 1)
			addch((chtype)(unsigned char)*text);
		else
			addnstr(text, (int)len);
		col += w < 0 ? 1 : w;
		text += len;
	}
	attrset(A_NORMAL);
	return col;
}

void term_fill(int y, int x, int width, enum role r, const char *glyph)
{
	if (!T.active)
		return;
	attrset(term_attr(r));
	move(y, x);
	for (int i = 0; i < width; i++)
		addstr(glyph);
	attrset(A_NORMAL);
}
