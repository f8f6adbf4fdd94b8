/*
 * historylog.h - the Markdown record of every run, newest entry first.
 *
 * The file (setting HISTORYLOG) is a title line ("# Historylog"), any
 * preamble the team keeps under it, then one "## " section per run.  An
 * entry is the lines from its "## " heading up to the next "## " heading;
 * lines inside fenced code blocks (``` or ~~~) never start an entry, so a
 * reproducing command can hold anything.  Nothing but "## " headings at the
 * start of a line outside a fence separates entries.
 *
 * Writers hold an exclusive flock() on "<file>.lock" next to the file and
 * replace the file by rename(), so readers need no lock and see either the
 * old or the new file, never a half-written one; concurrent writers are
 * serialised and none loses an entry.  The lock file is left in place on
 * purpose: unlinking it would let two writers lock two different inodes.
 *
 * Everything written passes through ef_redact(): the historylog is often
 * committed to git, so no secret may reach it even if a caller forgot.
 */
#ifndef EMBFILL_HISTORYLOG_H
#define EMBFILL_HISTORYLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/error.h"
#include "embfill/scan.h"

#define EF_HISTORY_TITLE "# Historylog"

/* What one run leaves on record.  Strings may be NULL ("-" is written);
 * single-line fields lose their line breaks and control characters so
 * that no field can start a heading or a code fence of its own. */
struct ef_history_entry {
	const char *when_utc;       /* NULL: now, as "YYYY-MM-DD HH:MM:SS UTC" */
	const char *operator_name;  /* NULL: user@host of this process */
	const char *collection;
	long long run_id;           /* <= 0: no run (dry run, refused run) */
	const char *event;          /* not a run but this ("swap 3", "rollback"): the
				       heading names it, and the run's duration,
				       retries and spot-check lines are left out */
	const char *outcome;        /* "completed", "interrupted (resumable)", ... */
	const char *command;        /* reproduces the run headless; may span lines */
	const char *provider, *url, *model;
	int dim, batch_size, concurrency, max_chunk_size, chunk_overlap;
	const char *note;           /* maintenance-window note */
	struct ef_counts before, after; /* .collection is not used */
	double duration_s, rate;    /* seconds; chunks per second */
	long long retries, quarantined;
	const char *verification;
	const char *const *spot_lines; /* "query -> citations", one per line */
	size_t nspot;
	const char *const *accepted_warnings;
	size_t naccepted;
};

/* The entry as Markdown: a "## " heading with time, collection and run id,
 * a short list, and the command in a fenced block; ends in one newline.
 * Redacted.  Returns NULL when out of memory.  Caller frees. */
char *ef_history_format(const struct ef_history_entry *e);

/* The heading of an entry's Markdown without "## " and the line end;
 * "" when the text does not start with "## ".  Caller frees. */
char *ef_history_heading(const char *entry_md);

/* Byte ranges of a historylog's text, as ef_history_parse() finds them. */
struct ef_history_span {
	size_t off;
	size_t len;                 /* trailing blank lines and spaces excluded */
};

struct ef_history_doc {
	size_t head_len;            /* title and preamble: bytes before entry 0 */
	bool has_title;             /* a "# " line outside a fence in the head */
	size_t open_fence_line;     /* 1-based line of a fence the head never
				     * closes (entries cannot follow it); 0: none */
	struct ef_history_span *entries; /* newest first, as in the file */
	size_t n;
};

/* Splits len bytes of historylog text (NUL bytes allowed) into head and
 * entries.  Fails only when out of memory.  Free with ef_history_doc_free. */
ef_status ef_history_parse(const char *text, size_t len, struct ef_history_doc *doc,
			   struct ef_error *err);
void ef_history_doc_free(struct ef_history_doc *doc);

/* The new contents of a historylog that held old (oldlen bytes, may be
 * empty): its title (added when missing) and preamble, then entry_md, then
 * the old entries byte for byte.  entry_md must be exactly one "## "
 * section with its fences closed (EF_ERR_USAGE otherwise); a head with an
 * unclosed fence is refused too.  Returns the text and its length in
 * *outlen; NULL on error.  Caller frees. */
char *ef_history_compose(const char *old, size_t oldlen, const char *entry_md, size_t *outlen,
			 struct ef_error *err);

/* Prepends entry_md (redacted again here) to the historylog at path under
 * the lock, creating the file and its parent directories when missing and
 * keeping the file's permissions.  A path that is a directory, not a
 * regular file, or not writable is refused with EF_ERR_USAGE naming it; so
 * is any I/O failure, and then the file is left as it was and no temporary
 * file remains. */
ef_status ef_history_prepend(const char *path, const char *entry_md, struct ef_error *err);

/* The newest entries of a historylog. */
struct ef_history_list {
	bool missing;               /* the file does not exist (yet) */
	char **entries;             /* Markdown, each ending in one newline */
	size_t n;
};

/* Reads at most max entries (0: all) of the historylog at path, newest
 * first.  A missing file is not an error: out->missing is set and n is 0.
 * Free with ef_history_list_free. */
ef_status ef_history_read(const char *path, size_t max, struct ef_history_list *out,
			  struct ef_error *err);
void ef_history_list_free(struct ef_history_list *l);

#endif
