/*
 * historylog.c - formatting, parsing and atomic prepending of historylog
 * entries.
 *
 * The file is Markdown that people read and edit by hand, so the parser is
 * line-based and forgiving: it only needs to know where the head ends and
 * where each "## " section starts, and it copies everything else byte for
 * byte.  Prepending never rewrites an old entry.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "embfill/historylog.h"
#include "embfill/redact.h"
#include "embfill/strbuf.h"

/* A historylog of many years is a few MiB; past this something is wrong,
 * and reading it whole on a weak maintenance host would hurt. */
#define MAX_FILE_BYTES ((size_t)256 << 20)

/* --- formatting --------------------------------------------------------- */

/* Appends s on one line: line breaks and tabs become spaces, other control
 * characters "?", so that a hostile collection name or note cannot start
 * a heading or a fence that would split the entry on the next read. */
static void add_field(struct ef_strbuf *sb, const char *s)
{
	if (!s || !*s) {
		ef_strbuf_add(sb, "-");
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n' || c == '\r' || c == '\t')
			ef_strbuf_add(sb, " ");
		else if (c < 0x20 || c == 0x7f)
			ef_strbuf_add(sb, "?");
		else
			ef_strbuf_addn(sb, s, 1);
	}
}

static void add_when(struct ef_strbuf *sb, const char *given)
{
	time_t now;
	struct tm tm;
	char buf[64];

	if (given) {
		add_field(sb, given);
		return;
	}
	now = time(NULL);
	if (!gmtime_r(&now, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, sizeof(buf), "@%lld UTC", (long long)now);
	ef_strbuf_add(sb, buf);
}

/* user@host.  SUDO_USER first: the person behind sudo is the operator on
 * record, not root. */
static void add_operator(struct ef_strbuf *sb, const char *given)
{
	const char *user = getenv("SUDO_USER");
	struct passwd pw, *res = NULL;
	char pwbuf[2048], host[256];

	if (given) {
		add_field(sb, given);
		return;
	}
	if ((!user || !*user) && getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 &&
	    res)
		user = res->pw_name;
	if (!user || !*user)
		user = getenv("USER");
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown-host");
	host[sizeof(host) - 1] = '\0';
	add_field(sb, user && *user ? user : "unknown");
	ef_strbuf_add(sb, "@");
	add_field(sb, host);
}

static void add_counts(struct ef_strbuf *sb, const char *label, const struct ef_counts *c)
{
	if (c->unknown) {
		ef_strbuf_addf(sb, "- **%s:** unknown (the database could not be read)\n", label);
		return;
	}
	ef_strbuf_addf(sb, "- **%s:** %lld chunks, %lld embedded, %lld missing, stale %lld model"
			   " / %lld dim / %lld content, %lld quarantined\n", label, c->chunks,
		       c->embedded, c->missing, c->stale_model, c->stale_dim, c->stale_content,
		       c->quarantined);
}

static void add_duration(struct ef_strbuf *sb, double secs, double rate)
{
	ef_strbuf_add(sb, "- **Duration:** ");
	if (isfinite(secs) && secs >= 0 && secs < 1e9) {
		long long s = (long long)secs;

		ef_strbuf_addf(sb, "%.1f s (%lld:%02lld:%02lld)", secs, s / 3600, s / 60 % 60,
			       s % 60);
	} else {
		ef_strbuf_add(sb, "-");
	}
	if (isfinite(rate))
		ef_strbuf_addf(sb, ", %.1f chunks/s\n", rate);
	else
		ef_strbuf_add(sb, ", - chunks/s\n");
}

static void add_list(struct ef_strbuf *sb, const char *label, const char *const *items,
		     size_t n)
{
	ef_strbuf_addf(sb, "- **%s:**%s\n", label, n && items ? "" : " none");
	for (size_t i = 0; items && i < n; i++) {
		ef_strbuf_add(sb, "  - ");
		add_field(sb, items[i]);
		ef_strbuf_add(sb, "\n");
	}
}

static void add_settings(struct ef_strbuf *sb, const struct ef_history_entry *e)
{
	char *url = ef_redact_url(e->url);

	ef_strbuf_add(sb, "- **Embedding:** provider ");
	add_field(sb, e->provider);
	ef_strbuf_add(sb, ", URL ");
	add_field(sb, e->url ? (url ? url : "***") : NULL);
	ef_strbuf_add(sb, ", model ");
	add_field(sb, e->model);
	ef_strbuf_addf(sb, ", dim %d\n", e->dim);
	ef_strbuf_addf(sb, "- **Batching:** batch size %d, concurrency %d; chunking: max chunk "
			   "size %d, overlap %d\n", e->batch_size, e->concurrency,
		       e->max_chunk_size, e->chunk_overlap);
	free(url);
}

/* The command in a fence longer than any backtick run inside it, so that
 * nothing in the command can close the block early. */
static void add_command(struct ef_strbuf *sb, const char *cmd)
{
	size_t run = 0, longest = 0, len, fence;

	if (!cmd || !*cmd) {
		ef_strbuf_add(sb, "Reproduce headless: (no command recorded)\n");
		return;
	}
	for (const char *p = cmd; *p; p++) {
		run = *p == '`' ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	fence = longest >= 3 ? longest + 1 : 3;
	len = strlen(cmd);
	while (len && (cmd[len - 1] == '\n' || cmd[len - 1] == '\r' || cmd[len - 1] == ' '))
		len--;
	ef_strbuf_add(sb, "Reproduce headless:\n\n");
	for (size_t i = 0; i < fence; i++)
		ef_strbuf_add(sb, "`");
	ef_strbuf_add(sb, "sh\n");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)cmd[i];

		if (c == '\r')
			continue;
		ef_strbuf_addn(sb, (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? "?" : &cmd[i],
			       1);
	}
	ef_strbuf_add(sb, "\n");
	for (size_t i = 0; i < fence; i++)
		ef_strbuf_add(sb, "`");
	ef_strbuf_add(sb, "\n");
}

char *ef_history_format(const struct ef_history_entry *e)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;
	char *raw, *safe;

	if (!e)
		return NULL;
	ef_strbuf_add(&sb, "## ");
	add_when(&sb, e->when_utc);
	ef_strbuf_add(&sb, " - ");
	add_field(&sb, e->collection);
	if (e->event) {
		ef_strbuf_add(&sb, " - ");
		add_field(&sb, e->event);
		ef_strbuf_add(&sb, "\n\n");
	} else if (e->run_id > 0) {
		ef_strbuf_addf(&sb, " - run %lld\n\n", e->run_id);
	} else {
		ef_strbuf_add(&sb, " - no run\n\n");
	}
	ef_strbuf_add(&sb, "- **Operator:** ");
	add_operator(&sb, e->operator_name);
	ef_strbuf_add(&sb, "\n- **Outcome:** ");
	add_field(&sb, e->outcome);
	ef_strbuf_add(&sb, "\n- **Window:** ");
	add_field(&sb, e->note);
	ef_strbuf_add(&sb, "\n");
	add_settings(&sb, e);
	add_counts(&sb, "Before", &e->before);
	add_counts(&sb, "After", &e->after);
	if (!e->event) {
		add_duration(&sb, e->duration_s, e->rate);
		ef_strbuf_addf(&sb, "- **Retries:** %lld; **quarantined:** %lld\n", e->retries,
			       e->quarantined);
	}
	ef_strbuf_add(&sb, "- **Verification:** ");
	add_field(&sb, e->verification);
	ef_strbuf_add(&sb, "\n");
	if (!e->event || e->nspot)
		add_list(&sb, "Spot-check", e->spot_lines, e->nspot);
	add_list(&sb, "Accepted warnings", e->accepted_warnings, e->naccepted);
	ef_strbuf_add(&sb, "\n");
	add_command(&sb, e->command);
	raw = ef_strbuf_take(&sb);
	safe = ef_redact(raw);
	free(raw);
	return safe;
}

char *ef_history_heading(const char *entry_md)
{
	size_t n;

	if (!entry_md || strncmp(entry_md, "## ", 3) != 0)
		return strdup("");
	entry_md += 3;
	n = strcspn(entry_md, "\n");
	if (n && entry_md[n - 1] == '\r')
		n--;
	return strndup(entry_md, n);
}

/* --- parsing ------------------------------------------------------------ */

/* An opening code fence: up to three spaces, three or more backticks or
 * tildes; a backtick fence's info string may not hold a backtick.  This is
 * CommonMark's rule, so the file splits where a Markdown viewer shows it. */
static bool fence_open(const char *p, size_t n, char *ch, size_t *flen)
{
	size_t i = 0, k;

	while (i < n && i < 3 && p[i] == ' ')
		i++;
	if (i >= n || (p[i] != '`' && p[i] != '~'))
		return false;
	for (k = i; k < n && p[k] == p[i]; k++)
		;
	if (k - i < 3 || (p[i] == '`' && memchr(p + k, '`', n - k)))
		return false;
	*ch = p[i];
	*flen = k - i;
	return true;
}

static bool fence_close(const char *p, size_t n, char ch, size_t flen)
{
	size_t i = 0, k;

	while (i < n && i < 3 && p[i] == ' ')
		i++;
	for (k = i; k < n && p[k] == ch; k++)
		;
	if (k - i < flen)
		return false;
	for (; k < n; k++)
		if (p[k] != ' ' && p[k] != '\t' && p[k] != '\r')
			return false;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Drops trailing blank lines only: the last line with text keeps every
 * byte, so that "# " stays a title and an entry stays byte for byte. */
static size_t trim_end(const char *p, size_t n)
{
	size_t k = n;
	const char *nl;

	while (k && is_blank(p[k - 1]))
		k--;
	if (k == 0)
		return 0;
	nl = memchr(p + k, '\n', n - k);
	return nl ? (size_t)(nl - p) : n;
}

static bool add_entry(struct ef_history_doc *doc, size_t *cap, size_t off)
{
	if (doc->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct ef_history_span *ne = realloc(doc->entries, nc * sizeof(*ne));

		if (!ne)
			return false;
		doc->entries = ne;
		*cap = nc;
	}
	doc->entries[doc->n++] = (struct ef_history_span){ off, 0 };
	return true;
}

ef_status ef_history_parse(const char *text, size_t len, struct ef_history_doc *doc,
			   struct ef_error *err)
{
	size_t cap = 0, flen = 0, lineno = 0, fence_line = 0;
	bool in_fence = false;
	char fch = 0;

	memset(doc, 0, sizeof(*doc));
	for (size_t off = 0; off < len;) {
		const char *p = text + off, *nl = memchr(p, '\n', len - off);
		size_t n = nl ? (size_t)(nl - p) : len - off;

		lineno++;
		if (in_fence) {
			in_fence = !fence_close(p, n, fch, flen);
		} else if (fence_open(p, n, &fch, &flen)) {
			in_fence = true;
			fence_line = lineno;
		} else if (n >= 3 && memcmp(p, "## ", 3) == 0) {
			if (!add_entry(doc, &cap, off)) {
				ef_history_doc_free(doc);
				return ef_error_oom(err, "reading the historylog");
			}
		} else if (doc->n == 0 && n >= 2 && memcmp(p, "# ", 2) == 0) {
			doc->has_title = true;
		}
		off += n + (nl ? 1 : 0);
	}
	doc->open_fence_line = in_fence ? fence_line : 0;
	doc->head_len = doc->n ? doc->entries[0].off : len;
	for (size_t i = 0; i < doc->n; i++) {
		size_t end = i + 1 < doc->n ? doc->entries[i + 1].off : len;

		doc->entries[i].len = trim_end(text + doc->entries[i].off, end - doc->entries[i].off);
	}
	return EF_OK;
}

void ef_history_doc_free(struct ef_history_doc *doc)
{
	if (!doc)
		return;
	free(doc->entries);
	memset(doc, 0, sizeof(*doc));
}

/* --- composing ---------------------------------------------------------- */

static ef_status check_entry(const char *entry_md, size_t *elen, struct ef_error *err)
{
	struct ef_history_doc d;
	ef_status st = ef_history_parse(entry_md, strlen(entry_md), &d, err);
	bool one = st == EF_OK && d.n == 1 && d.entries[0].off == 0 && d.open_fence_line == 0;

	if (one)
		*elen = d.entries[0].len;
	ef_history_doc_free(&d);
	if (st != EF_OK)
		return st;
	if (!one) {
		ef_error_set(err, EF_ERR_USAGE, "the historylog entry is not one \"## \" section "
						"with its code blocks closed");
		return ef_error_hint(err, "format entries with ef_history_format()");
	}
	return EF_OK;
}

/* The head with a title: kept as it is when it has one; otherwise the
 * title, a blank line and the preamble from its first non-blank line. */
static void add_head(struct ef_strbuf *sb, const char *old, const struct ef_history_doc *d)
{
	size_t hl = trim_end(old, d->head_len), start = 0;

	if (d->has_title) {
		ef_strbuf_addn(sb, old, hl);
		return;
	}
	ef_strbuf_add(sb, EF_HISTORY_TITLE);
	while (start < hl && is_blank(old[start]))
		start++;
	while (start > 0 && old[start - 1] != '\n')
		start--;
	if (start < hl) {
		ef_strbuf_add(sb, "\n\n");
		ef_strbuf_addn(sb, old + start, hl - start);
	}
}

char *ef_history_compose(const char *old, size_t oldlen, const char *entry_md, size_t *outlen,
			 struct ef_error *err)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;
	struct ef_history_doc d;
	size_t elen = 0;
	char *out;

	if (!entry_md) {
		ef_error_set(err, EF_ERR_USAGE, "no historylog entry to write");
		return NULL;
	}
	if (check_entry(entry_md, &elen, err) != EF_OK ||
	    ef_history_parse(old ? old : "", old ? oldlen : 0, &d, err) != EF_OK)
		return NULL;
	if (d.n == 0 && d.open_fence_line) {
		ef_error_set(err, EF_ERR_USAGE, "the code block opened on line %zu is never closed, "
						"so a new entry would land inside it",
			     d.open_fence_line);
		ef_error_hint(err, "close it with a ``` line, then write the entry again");
		ef_history_doc_free(&d);
		return NULL;
	}
	add_head(&sb, old, &d);
	ef_strbuf_add(&sb, "\n\n");
	ef_strbuf_addn(&sb, entry_md, elen);
	ef_strbuf_add(&sb, "\n");
	if (d.n) {
		ef_strbuf_add(&sb, "\n");
		ef_strbuf_addn(&sb, old + d.entries[0].off, oldlen - d.entries[0].off);
	}
	ef_history_doc_free(&d);
	*outlen = sb.len;
	out = ef_strbuf_take(&sb);
	if (!out)
		ef_error_oom(err, "writing the historylog");
	return out;
}

/* --- files -------------------------------------------------------------- */

static ef_status io_error(struct ef_error *err, const char *path, const char *what, int e)
{
	ef_error_set(err, EF_ERR_USAGE, "cannot %s historylog \"%s\": %s", what, path,
		     strerror(e));
	return err ? err->status : EF_ERR_USAGE;
}

/* Reads a whole file into a NUL-terminated buffer. */
static ef_status read_fd(int fd, const char *path, char **buf, size_t *len,
			 struct ef_error *err)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);

	while (b) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb = cap >= MAX_FILE_BYTES ? NULL : realloc(b, cap * 2);

			if (!nb) {
				free(b);
				ef_error_set(err, EF_ERR_USAGE, "historylog \"%s\" is too large to "
								"read (limit 256 MiB)", path);
				return ef_error_hint(err, "move old entries to an archive file");
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(b);
			return io_error(err, path, "read", e);
		}
		if (r == 0) {
			b[n] = '\0';
			*buf = b;
			*len = n;
			return EF_OK;
		}
		n += (size_t)r;
	}
	return io_error(err, path, "read", ENOMEM);
}

static ef_status not_a_file(struct ef_error *err, const char *path, const struct stat *st)
{
	if (S_ISDIR(st->st_mode)) {
		ef_error_set(err, EF_ERR_USAGE, "historylog \"%s\" is a directory", path);
		return ef_error_hint(err, "set HISTORYLOG to a file, e.g. %s/historylog.md", path);
	}
	ef_error_set(err, EF_ERR_USAGE, "historylog \"%s\" is not a regular file", path);
	return ef_error_hint(err, "set HISTORYLOG to a Markdown file, e.g. agents/historylog.md");
}

/* Opens and reads path; *missing when it does not exist.  *st gets its
 * metadata (for the permissions of the replacement). */
static ef_status read_file(const char *path, char **buf, size_t *len, bool *missing,
			   struct stat *st, struct ef_error *err)
{
	/* O_NONBLOCK: a FIFO put where the file should be must not hang us;
	 * it changes nothing for a regular file. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ef_status rc;

	*buf = NULL;
	*len = 0;
	*missing = false;
	if (fd < 0 && errno == ENOENT) {
		*missing = true;
		return EF_OK;
	}
	if (fd < 0)
		return io_error(err, path, "read", errno);
	if (fstat(fd, st) != 0) {
		rc = io_error(err, path, "read", errno);
	} else if (!S_ISREG(st->st_mode)) {
		rc = not_a_file(err, path, st);
	} else {
		rc = read_fd(fd, path, buf, len, err);
	}
	close(fd);
	return rc;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* mkdir -p of path's directory, naming the first component that is in the
 * way ("/proc/version" in "/proc/version/x"). */
static ef_status make_parents(const char *path, struct ef_error *err)
{
	char *dir = dir_of(path);
	ef_status rc = EF_OK;
	struct stat st;

	if (!dir)
		return io_error(err, path, "create", ENOMEM);
	for (char *p = dir + 1; rc == EF_OK; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
			ef_error_set(err, EF_ERR_USAGE, "cannot create historylog \"%s\": \"%s\" is "
							"not a directory", path, dir);
			rc = ef_error_hint(err, "set HISTORYLOG to a path inside a directory");
		} else if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
			ef_error_set(err, EF_ERR_USAGE, "cannot create directory \"%s\" for historylog "
							"\"%s\": %s", dir, path, strerror(errno));
			rc = ef_error_hint(err, "create it yourself, or set HISTORYLOG elsewhere");
		}
		if (last)
			break;
		*p = '/';
	}
	free(dir);
	return rc;
}

/* Refuses what cannot become the historylog before anything is created. */
static ef_status check_target(const char *path, struct ef_error *err)
{
	struct stat st;
	char *dir;
	ef_status rc = EF_OK;

	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return not_a_file(err, path, &st);
		if (access(path, W_OK) != 0) {
			ef_error_set(err, EF_ERR_USAGE, "historylog \"%s\" is not writable: %s", path,
				     strerror(errno));
			return ef_error_hint(err, "fix its permissions, or set HISTORYLOG to a file "
						  "you can write");
		}
	} else if (errno != ENOENT && errno != ENOTDIR) {
		return io_error(err, path, "use", errno);
	}
	if ((rc = make_parents(path, err)) != EF_OK)
		return rc;
	dir = dir_of(path);
	if (dir && access(dir, W_OK | X_OK) != 0) {
		ef_error_set(err, EF_ERR_USAGE, "historylog \"%s\" is not writable: directory \"%s\": "
						"%s", path, dir, strerror(errno));
		rc = ef_error_hint(err, "the file is replaced by a rename, so its directory must be "
					"writable; fix that or set HISTORYLOG elsewhere");
	}
	free(dir);
	return rc;
}

/* A temporary file is only ever alive while its writer holds the lock, so
 * any found by the lock holder was left by a writer that died: remove it. */
static void remove_stale_temps(const char *path)
{
	char *dir = dir_of(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char prefix[512];
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	snprintf(prefix, sizeof(prefix), "%s.tmp.", base);
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	free(dir);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The rename is done when this runs: a failure here is not reported,
 * because the caller would retry and write the entry twice. */
static void sync_dir(const char *path)
{
	char *dir = dir_of(path);
	int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* Writes text to a temporary file beside path, flushes it to disk and
 * renames it over path; on any failure the temporary file is removed and
 * path is untouched.  old (NULL for a new file) gives mode and owner. */
static ef_status replace_file(const char *path, const char *text, size_t len,
			      const struct stat *old, struct ef_error *err)
{
	char tmp[4096];
	int fd, e = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return io_error(err, path, "write", ENAMETOOLONG);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return io_error(err, path, "write", errno);
	/* Owner first: fchown may clear set-id bits that fchmod then restores.
	 * Only root can give a file away; for others the owner stays theirs. */
	if (old && (old->st_uid != geteuid() || old->st_gid != getegid()) &&
	    fchown(fd, old->st_uid, old->st_gid) != 0) {
		/* best effort, see above */
	}
	if ((old && fchmod(fd, old->st_mode & 07777) != 0) || write_all(fd, text, len) != 0 ||
	    fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) != 0)
		e = errno;
	if (e) {
		unlink(tmp);
		return io_error(err, path, "write", e);
	}
	sync_dir(path);
	return EF_OK;
}

static ef_status prepend_locked(const char *path, const char *entry_md, struct ef_error *err)
{
	struct stat st;
	char *old = NULL, *text;
	size_t oldlen = 0, len = 0;
	bool missing = false;
	ef_status rc;

	remove_stale_temps(path);
	rc = read_file(path, &old, &oldlen, &missing, &st, err);
	if (rc != EF_OK)
		return rc;
	text = ef_history_compose(old, oldlen, entry_md, &len, err);
	if (!text) {
		ef_error_prefix(err, "historylog \"%s\"", path);
		rc = err ? err->status : EF_ERR_USAGE;
	} else {
		rc = replace_file(path, text, len, missing ? NULL : &st, err);
	}
	free(text);
	free(old);
	return rc;
}

static ef_status lock_and_prepend(const char *path, const char *entry_md, struct ef_error *err)
{
	char lockpath[4096];
	int fd, r;
	ef_status rc;

	if ((size_t)snprintf(lockpath, sizeof(lockpath), "%s.lock", path) >= sizeof(lockpath))
		return io_error(err, path, "lock", ENAMETOOLONG);
	/* Read-only is enough for flock(), and lets operators who share the
	 * historylog use a lock file that another of them created. */
	fd = open(lockpath, O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		io_error(err, path, "lock", errno);
		return ef_error_hint(err, "check that \"%s\" can be created and written",
				     lockpath);
	}
	do
		r = flock(fd, LOCK_EX);
	while (r != 0 && errno == EINTR);
	if (r != 0)
		rc = io_error(err, path, "lock", errno);
	else
		rc = prepend_locked(path, entry_md, err);
	close(fd);
	return rc;
}

ef_status ef_history_prepend(const char *path, const char *entry_md, struct ef_error *err)
{
	char *safe, *real = NULL;
	struct stat st;
	ef_status rc;

	if (!path || !*path) {
		ef_error_set(err, EF_ERR_USAGE, "the historylog path is empty");
		return ef_error_hint(err, "set HISTORYLOG, e.g. HISTORYLOG=agents/historylog.md");
	}
	/* A symlinked historylog stays a symlink: the target is replaced. */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		real = realpath(path, NULL);
	if (real)
		path = real;
	safe = entry_md ? ef_redact(entry_md) : NULL;
	if (!entry_md) {
		rc = ef_error_set(err, EF_ERR_USAGE, "no historylog entry to write");
	} else if (!safe) {
		rc = io_error(err, path, "write", ENOMEM);
	} else if ((rc = check_target(path, err)) == EF_OK) {
		rc = lock_and_prepend(path, safe, err);
	}
	free(safe);
	free(real);
	return rc;
}

/* Readers take no lock: writers replace the file by rename, so an open
 * file is always a complete old or new version. */
ef_status ef_history_read(const char *path, size_t max, struct ef_history_list *out,
			  struct ef_error *err)
{
	struct ef_history_doc d;
	struct stat st;
	char *text = NULL;
	size_t len = 0, n;
	ef_status rc;

	memset(out, 0, sizeof(*out));
	if (!path || !*path) {
		ef_error_set(err, EF_ERR_USAGE, "the historylog path is empty");
		return ef_error_hint(err, "set HISTORYLOG, e.g. HISTORYLOG=agents/historylog.md");
	}
	rc = read_file(path, &text, &len, &out->missing, &st, err);
	if (rc != EF_OK || out->missing)
		return rc;
	if ((rc = ef_history_parse(text, len, &d, err)) != EF_OK) {
		free(text);
		return rc;
	}
	n = max && max < d.n ? max : d.n;
	out->entries = calloc(n ? n : 1, sizeof(*out->entries));
	for (size_t i = 0; out->entries && i < n; i++) {
		char *e = malloc(d.entries[i].len + 2);

		if (!e)
			break;
		memcpy(e, text + d.entries[i].off, d.entries[i].len);
		memcpy(e + d.entries[i].len, "\n", 2);
		out->entries[out->n++] = e;
	}
	if (out->n != n) {
		ef_history_list_free(out);
		rc = io_error(err, path, "read", ENOMEM);
	}
	ef_history_doc_free(&d);
	free(text);
	return rc;
}

void ef_history_list_free(struct ef_history_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i]);
	free(l->entries);
	l->entries = NULL;
	l->n = 0;
}
