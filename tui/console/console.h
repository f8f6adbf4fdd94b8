/*
 * console.h - the operator console: six step screens over one event loop.
 *
 * Screens are rows of one table (console.c's steps[]): each draws the body
 * from the console's state with the ui_* helpers and handles keys, and
 * returns what the loop should do next (enum ev) instead of acting on the
 * terminal.  Keys are rows of one action table, which also drives the
 * footer and the `?` help.  Screens call core and render what it returns;
 * they never talk to the database or the network themselves.
 */
#ifndef EMBFILL_TUI_CONSOLE_H
#define EMBFILL_TUI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "embfill/check.h"
#include "embfill/ident.h"
#include "embfill/plan.h"
#include "embfill/run.h"
#include "embfill/scan.h"
#include "embfill/spotcheck.h"
#include "embfill/verify.h"
#include "tui/app.h"
#include "tui/console/term.h"
#include "tui/console/worker.h"

/* The six steps, in the order the operator walks them. */
enum step { STEP_SCOPE, STEP_LOCATE, STEP_PLAN, STEP_RUN, STEP_VALIDATE, STEP_SUMMARY, NSTEPS };
#define MAX_ACCEPTED 32
#define SPOT_MAX 5

/* X(id, key name, footer label, help text) */
#define CONSOLE_ACTIONS(X)                                                              \
	X(A_HELP, "?", "help", "show this help (F1 works everywhere)")                 \
	X(A_QUIT, "q", "quit", "leave the console (Esc too, and only Esc on a step "    \
			       "with fields); it asks first when something would be "   \
			       "lost: a run (stopped after the batches in flight are "  \
			       "written and checkpointed), an unwritten historylog "    \
			       "entry, or the steps done so far")                       \
	X(A_NEXT, "Enter", "next", "check this step and go on to the next one")       \
	X(A_BACK, "b", "back", "go back one step (before the run only)")              \
	X(A_FIELD, "Tab", "field", "next field (Shift-Tab, Up and Down move too)")    \
	X(A_ACCEPT, "a", "accept warnings", "go on despite this step's warnings; "    \
					    "the acceptance goes into the run's "            \
					    "historylog entry, which step 6 writes (w)")    \
	X(A_RECHECK, "r", "again", "run this step's checks again")                 \
	X(A_MODE, "m", "mode", "in place, only missing, new collection or dry run")   \
	X(A_BACKUP, "k", "backup", "keep the vectors an in-place run overwrites, so "   \
				   "that `embfill rollback` restores them")           \
	X(A_ADOPT, "o", "adopt", "record the vectors whose model is not on record as "  \
				 "EMBED_MODEL's, without embedding them (the name typed again)") \
	X(A_APPROVE, "v", "approve provider", "record that the collection's owner "   \
			"approved embeddings from another provider or service host")     \
	X(A_START, "s", "start", "start the run (or resume the interrupted one)")     \
	X(A_PAUSE, "p", "pause/resume", "pause the run (requests on the wire finish) " \
					"or resume it")                                 \
	X(A_CANCEL, "c", "cancel", "cancel the run after a confirmation; what was "   \
				   "written stays, the rest is resumable")            \
	X(A_QUERY, "t", "query", "type a spot-check query of your own (up to 5)") \
	X(A_SAMPLE, "s", "sample", "spot-check sampled chunks again")                 \
	X(A_WRITE, "w", "write historylog", "write the entry at the top of the historylog")  \
	X(A_SWAP, "x", "swap", "put the verified new collection in the live one's place "  \
			       "(the live name typed again; `embfill rollback` undoes it)") \
	X(A_SCROLL, "PgUp/PgDn", "scroll", "scroll this screen (Up, Down, Home, End too)")

enum action {
	A_NONE = 0,
#define ACTION_ENUM(id, key, label, help) id,
	CONSOLE_ACTIONS(ACTION_ENUM)
#undef ACTION_ENUM
	A__COUNT
};

enum step_state { ST_LOCKED, ST_OPEN, ST_PASSED, ST_ACCEPTED, ST_FAILED };

/* What a key handler asks of the loop. */
enum ev { EV_IGNORED, EV_HANDLED, EV_NEXT, EV_BACK, EV_QUIT };

struct console;

/*
 * A step.  The loop asks can() before a key's action reaches on_key(), so a
 * handler never acts where the footer does not offer the action; why_not()
 * (may be NULL) says why an action is not available now.  On a screen
 * with text_input, a printable key whose action is not available is typed.
 * forget() (may be NULL) drops what the step learnt, when an earlier step
 * changes.
 */
struct screen {
	const char *name;
	const char *help;               /* what the step is for, for `?` */
	const enum action *actions;     /* the step's own, ending in A_NONE */
	bool text_input;
	void (*enter)(struct console *c);
	void (*draw)(struct console *c);
	enum ev (*on_key)(struct console *c, int key, enum action a);
	bool (*can)(const struct console *c, enum action a);
	const char *(*why_not)(const struct console *c, enum action a);
	void (*forget)(struct console *c);
};

enum field { F_COLL, F_CONFIRM, F_BATCH, F_NOTE, F_UNTIL, F__COUNT };
enum run_mode { MODE_IN_PLACE, MODE_MISSING_ONLY, MODE_NEW_COLLECTION, MODE_DRY_RUN,
		MODE__COUNT };

/* In place, every kind of work or only chunks without a vector. */
#define MODE_WRITES_IN_PLACE(m) ((m) == MODE_IN_PLACE || (m) == MODE_MISSING_ONLY)

struct line {
	enum role role;
	char text[320];
};

typedef void (*confirm_fn)(struct console *c, bool yes);
typedef void (*prompt_fn)(struct console *c, const char *text);
/* The key of the choice taken, or 0 for Esc (nothing chosen). */
typedef void (*choice_fn)(struct console *c, int key);

#define MODAL_CHOICES 3

/* A dialog.  One taller than the screen scrolls (PgUp/PgDn, Up/Down). */
struct modal {
	enum { M_NONE, M_CONFIRM, M_PROMPT, M_HELP, M_CHOICE } kind;
	char title[128];
	char text[640];
	char input[EF_SPOT_QUERY_CHARS + 1];
	confirm_fn on_confirm;
	prompt_fn on_prompt;
	choice_fn on_choice;
	struct {
		int key;
		char label[48];
	} choice[MODAL_CHOICES];
	int nchoices;
	bool leaving;                    /* asks whether to leave the console */
	int scroll, more;                /* first line shown, lines below the box */
};

struct console {
	struct app *app;
	const struct screen *const *steps; /* the loop's table, NSTEPS long */
	void (*draw_frame)(struct console *c); /* the loop's frame, drawn now */
	int step;                        /* shown */
	enum step_state st[NSTEPS];
	int scroll[NSTEPS];
	char msg[320];
	enum role msg_role;
	struct modal modal;
	bool quitting;                   /* leave once the worker stopped */
	bool write_on_leave;             /* ... and write the run's entry then */
	bool entry_dropped;              /* left without writing the run's entry */
	bool sandbox;                    /* `embfill demo`: leaving stops the sandbox */
	int hangup;                      /* SIGHUP/SIGTERM, or the tty vanished */
	int exit_code;
	char small_msg[200];             /* what a key did while the terminal was too small */

	/* the body, rebuilt every frame */
	struct line *lines;
	size_t nlines, cap;
	int body_w, body_h;

	/* warnings the operator accepted, for the historylog */
	char *accepted[MAX_ACCEPTED];
	int accepted_step[MAX_ACCEPTED];
	size_t naccepted;

	struct {                         /* 1: scope */
		char f[F__COUNT][EF_COLLECTION_NAME_MAX + 1];
		int focus;
		bool loaded;
		struct ef_status_report list;
		char list_err[512];
		char warn[512];          /* a near name, pending acceptance */
		char suggested[EF_COLLECTION_NAME_MAX + 1]; /* -C: shown first, never prefilled */
		char collection[EF_COLLECTION_NAME_MAX + 1];
		char note[EF_COLLECTION_NAME_MAX + 1];
		char until[9];           /* HH:MM or HH:MM:SS */
		time_t deadline;
		int batch;
		struct ef_run_info interrupted; /* run_id 0: none */
		bool resume;
	} scope;

	struct {                         /* 2: locate */
		bool done;
		struct ef_checklist list;
		size_t pass, warn, fail;
	} locate;

	struct {                         /* 3: plan */
		bool done, ok;
		struct ef_plan plan;
		char err[EF_ERR_TEXT_MAX * 2];
		char path[1024];
		enum run_mode mode;
		bool mode_chosen;        /* the operator pressed m: keep the choice */
		bool backup;             /* in place: keep the old vectors */
		bool approved;           /* provider change approved by the owner */
		char target[EF_COLLECTION_NAME_MAX + 1]; /* new collection mode */
		char target_err[512];
	} plan;

	struct {                         /* 4: run */
		worker *w;
		bool started, finished;
		struct worker_snap snap;
		ef_status st;
		struct ef_error err;
		struct ef_run_result res;
		bool have_res;
		char *cmd;
		struct ef_embed_config ec;
		bool paused;
		char resumed_from[128];  /* a resumed run's checkpoint, until it reports */
	} run;

	struct {                         /* 5: validate */
		bool done;
		bool verify_ok, spot_ok;
		struct ef_verify_report vr;
		bool have_vr;
		struct ef_spot_report sr;
		bool have_sr;
		char err[EF_ERR_TEXT_MAX * 2];
		char *queries[SPOT_MAX];
		size_t nqueries;
		char verification[512];
	} validate;

	struct {                         /* 6: summary */
		char *entry;             /* the historylog entry, as it will be written */
		bool written;
		char where[1024];
		char err[EF_ERR_TEXT_MAX * 2];
		char **spot;             /* "query -> citations" lines */
		size_t nspot;
		bool swapped;            /* the new collection took the live name */
		char swap_msg[1200];
		enum role swap_role;
	} summary;
};

/* The collection the run writes: the new one in new-collection mode. */
const char *console_target(const struct console *c);
bool console_into(const struct console *c);

struct run_request;
/* The run the operator chose on the screens, as `embfill run` would take it
 * (strings borrowed from the console). */
void console_request(const struct console *c, struct run_request *r);

/* `embfill` on a terminal, and `embfill tui`. */
int cmd_tui(struct app *app);

/* --- drawing the body (console.c) ----------------------------------------- */

/* A line of text, redacted, wrapped to the body's width; continuation lines
 * are indented two columns past the line's own indent. */
void ui_line(struct console *c, enum role r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ui_blank(struct console *c);
/* A findings list: "[ok] what: detail" and "hint:" under the others. */
void ui_checklist(struct console *c, const struct ef_checklist *l);
/* "label [####....] suffix" filling the body's width. */
void ui_bar(struct console *c, const char *label, double frac, const char *suffix);
/* A field: "label: [value_]", highlighted when it has the focus. */
void ui_field(struct console *c, const char *label, const char *value, bool focus);

/* The status line under the body. */
void console_msg(struct console *c, enum role r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Draws the frame now (before a call that blocks for a moment). */
void console_busy(struct console *c, const char *what);

void console_confirm(struct console *c, const char *title, const char *text, confirm_fn fn);
void console_prompt(struct console *c, const char *title, const char *text, prompt_fn fn);
/* A dialog of up to MODAL_CHOICES keys ("w", "write it and leave"), and
 * Esc for none; fn gets the key. */
void console_choose(struct console *c, const char *title, const char *text, choice_fn fn,
		    int nchoices, const int *keys, const char *const *labels);
/* Lines of text already made safe (redacted, sanitised), wrapped at width
 * columns, appended to the body's lines; returns how many. */
size_t ui_text(struct console *c, enum role r, const char *text, int width);

/* Records an accepted warning ("step: what"), for the historylog. */
void console_accept(struct console *c, const char *step, const char *what);
/* Forgets every step after `step` (0-based): results and states. */
void console_reset_after(struct console *c, int step);

/* Small formatting shared by screens. */
void fmt_duration(double s, char *buf, size_t n);
bool console_run_active(const struct console *c);

/* --- the steps (screen_*.c) ------------------------------------------------ */

extern const struct screen screen_scope, screen_locate, screen_plan, screen_run,
	screen_validate, screen_summary;

/* Called by the loop when the worker woke it, and when it finished. */
void run_poll(struct console *c);
/* Asks before cancelling the run (the c key, and Ctrl-C). */
void run_ask_cancel(struct console *c);
/* Frees what each step holds. */
void scope_free(struct console *c);
void locate_free(struct console *c);
void plan_free(struct console *c);
void run_free(struct console *c);
void validate_free(struct console *c);
void summary_free(struct console *c);
/* The finished run's historylog entry is not written yet (a dry run has
 * none). */
bool summary_pending(const struct console *c);
/* Builds the run's entry, when step 6 has not, and writes it; false with
 * the reason in c->summary.err when it could not be written. */
bool summary_write(struct console *c);

#endif
