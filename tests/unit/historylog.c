/*
 * Unit tests of the historylog: what an entry records and hides, how
 * prepending keeps the title, the preamble and every old entry byte for
 * byte, what happens when many processes write at once, and how unusable
 * paths are refused.  Every test works in its own temporary directory.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "embfill/historylog.h"
#include "embfill/redact.h"
#include "testdb.h"

#define HAS(hay, needle) \
	cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))
#define HASNT(hay, needle) \
	cr_expect_null(strstr((hay), (needle)), "\"%s\" must not be in:\n%s", (needle), (hay))

#define SECRET "sk-test-PLANTED-4f1c2b9d7e8a"

static char *dir;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static void setup(void)
{
	ef_redact_reset();
	dir = test_tmpdir();
}

static void teardown(void)
{
	ef_redact_reset();
	if (dir) {
		chmod(dir, 0755);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		free(dir);
		dir = NULL;
	}
}

TestSuite(historylog, .init = setup, .fini = teardown);

static char *path_in(const char *name)
{
	char *p = NULL;

	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	cr_assert(f, "cannot open %s: %s", path, strerror(errno));
	m = open_memstream(&buf, &len);
	for (int c; (c = fgetc(f)) != EOF;)
		fputc(c, m);
	fclose(m);
	fclose(f);
	return buf;
}

/* The names in a directory, sorted and joined by spaces. */
static char *listing(const char *d)
{
	struct dirent **names;
	int n = scandir(d, &names, NULL, alphasort);
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	cr_assert(n >= 0);
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
			fprintf(m, "%s%s", ftell(m) > 0 ? " " : "", names[i]->d_name);
		free(names[i]);
	}
	free(names);
	fclose(m);
	return out;
}

static const char *spots[] = {
	"\"how do I reset my password\" -> Acme handbook #3 (file:///acme/handbook)",
	"\"refund policy\" -> Billing FAQ #1 (file:///acme/billing)",
};
static const char *warns[] = {
	"batch size 500 is above the provider's advice",
	"collection \"acme\" is one edit away from \"acme2\"",
};

/* An entry with a distinct value in every field. */
static struct ef_history_entry sample(long long run)
{
	return (struct ef_history_entry){
		.when_utc = "2030-01-02 03:04:05 UTC",
		.operator_name = "opal@db-host-7",
		.collection = "acme_docs",
		.run_id = run,
		.outcome = "completed",
		.command = "embfill --config /etc/embfill/prod.env run -C acme_docs --confirm "
			   "acme_docs --batch-size 77 --concurrency 5 --note 'window OPS-12'",
		.provider = "tei",
		.url = "https://embed.example.com/v1",
		.model = "bge-small-en-v1.5",
		.dim = 384,
		.batch_size = 77,
		.concurrency = 5,
		.max_chunk_size = 900,
		.chunk_overlap = 90,
		.note = "window OPS-12, 02:00-04:00",
		.before = { .chunks = 11, .embedded = 8, .missing = 3, .stale_model = 2,
			    .stale_dim = 1, .stale_content = 4, .quarantined = 5 },
		.after = { .chunks = 11, .embedded = 10, .missing = 1, .stale_model = 0,
			   .stale_dim = 0, .stale_content = 0, .quarantined = 6 },
		.duration_s = 3723.5,
		.rate = 12.25,
		.retries = 13,
		.quarantined = 17,
		.verification = "ok: 11 chunks, 10 vectors, 1 quarantined",
		.spot_lines = spots,
		.nspot = 2,
		.accepted_warnings = warns,
		.naccepted = 2,
	};
}

static char *formatted(long long run)
{
	struct ef_history_entry e = sample(run);
	char *s = ef_history_format(&e);

	cr_assert_not_null(s);
	return s;
}

static void prepend_ok(const char *path, const char *entry)
{
	struct ef_error err;

	ef_error_clear(&err);
	cr_assert_eq(ef_history_prepend(path, entry, &err), EF_OK, "prepend: %s", err.msg);
}

/* --- format ------------------------------------------------------------- */

Test(historylog, format_records_every_field)
{
	char *s = formatted(4242);

	cr_expect(strncmp(s, "## 2030-01-02 03:04:05 UTC - acme_docs - run 4242\n",
			  strlen("## 2030-01-02 03:04:05 UTC - acme_docs - run 4242\n")) == 0,
		  "heading:\n%s", s);
	HAS(s, "opal@db-host-7");
	HAS(s, "completed");
	HAS(s, "--batch-size 77 --concurrency 5 --note 'window OPS-12'");
	HAS(s, "provider tei");
	HAS(s, "URL https://embed.example.com/v1");
	HAS(s, "model bge-small-en-v1.5");
	HAS(s, "dim 384");
	HAS(s, "batch size 77");
	HAS(s, "concurrency 5");
	HAS(s, "max chunk size 900");
	HAS(s, "overlap 90");
	HAS(s, "window OPS-12, 02:00-04:00");
	HAS(s, "**Before:** 11 chunks, 8 embedded, 3 missing, stale 2 model / 1 dim / 4 content, "
	       "5 quarantined");
	HAS(s, "**After:** 11 chunks, 10 embedded, 1 missing, stale 0 model / 0 dim / 0 content, "
	       "6 quarantined");
	HAS(s, "3723.5 s (1:02:03)");
	HAS(s, "12.2 chunks/s");
	HAS(s, "**Retries:** 13");
	HAS(s, "**quarantined:** 17");
	HAS(s, "ok: 11 chunks, 10 vectors, 1 quarantined");
	HAS(s, spots[0]);
	HAS(s, spots[1]);
	HAS(s, warns[0]);
	HAS(s, warns[1]);
	cr_expect_eq(s[strlen(s) - 1], '\n');
	cr_expect_neq(s[strlen(s) - 2], '\n', "entry ends in a blank line");
	free(s);
}

Test(historylog, format_fills_in_time_and_operator)
{
	struct ef_history_entry e = sample(1);
	char host[256] = "", *s;
	int y, mo, d, h, mi, sec;

	e.when_utc = NULL;
	e.operator_name = NULL;
	unsetenv("SUDO_USER");
	s = ef_history_format(&e);
	cr_assert_not_null(s);
	cr_expect_eq(sscanf(s, "## %4d-%2d-%2d %2d:%2d:%2d UTC - acme_docs", &y, &mo, &d, &h, &mi,
			    &sec), 6, "heading: %s", s);
	cr_expect_geq(y, 2024);
	gethostname(host, sizeof(host) - 1);
	HAS(s, "**Operator:** ");
	{
		char want[300];

		snprintf(want, sizeof(want), "@%s\n", host);
		HAS(s, want);
	}
	free(s);
}

Test(historylog, format_never_holds_a_secret)
{
	struct ef_history_entry e = sample(7);
	const char *lines[] = { "\"q\" -> doc fetched with " SECRET };
	char *s;

	ef_redact_add_secret(SECRET);
	e.url = "https://alice:hunter2-PLANTED@embed.example.com/v1/embeddings"
		"?api_key=PLANTED-QUERY-KEY&model=bge";
	e.command = "EMBED_API_KEY=" SECRET " embfill run -C acme_docs --confirm acme_docs "
		    "--dsn 'postgresql://app:pw-PLANTED-db@db/x?sslmode=require'";
	e.note = "key was " SECRET;
	e.verification = "ok, Authorization: Bearer PLANTED-BEARER-TOKEN";
	e.spot_lines = lines;
	e.nspot = 1;
	e.accepted_warnings = (const char *[]){ "password=PLANTED-CONNINFO-PW in DATABASE_URL" };
	e.naccepted = 1;
	s = ef_history_format(&e);
	cr_assert_not_null(s);
	HASNT(s, "PLANTED");
	HASNT(s, "hunter2");
	HASNT(s, "alice");
	HAS(s, "https://embed.example.com/v1/embeddings");
	HAS(s, "model=bge");
	free(s);
}

Test(historylog, format_puts_the_command_in_a_fenced_block)
{
	struct ef_history_entry e = sample(3);
	char *s = ef_history_format(&e), want[512];
	struct ef_history_doc d;
	struct ef_error err;

	snprintf(want, sizeof(want), "\n```sh\n%s\n```\n", e.command);
	HAS(s, want);
	free(s);
	e.command = "embfill run -C a --confirm a --note 'has ``` inside\nand a second line'";
	s = ef_history_format(&e);
	HAS(s, "\n````sh\nembfill run -C a --confirm a --note 'has ``` inside\nand a second "
	       "line'\n````\n");
	ef_error_clear(&err);
	cr_assert_eq(ef_history_parse(s, strlen(s), &d, &err), EF_OK);
	cr_expect_eq(d.n, 1);
	cr_expect_eq(d.open_fence_line, 0);
	ef_history_doc_free(&d);
	free(s);
}

Test(historylog, hostile_fields_stay_inside_one_entry)
{
	struct ef_history_entry e = sample(9);
	const char *lines[] = { "q\n## fake spot heading", "q2\n```" };
	char *path = path_in("h.md"), *s, *heading;
	struct ef_history_list l;
	struct ef_error err;

	e.collection = "evil\n## fake heading";
	e.note = "line\n```\n# Title";
	e.verification = "ok\r\n## again";
	e.spot_lines = lines;
	e.command = "embfill run\n## not a heading\n```\n~~~";
	s = ef_history_format(&e);
	heading = ef_history_heading(s);
	cr_expect_str_eq(heading, "2030-01-02 03:04:05 UTC - evil ## fake heading - run 9");
	prepend_ok(path, s);
	prepend_ok(path, s);
	ef_error_clear(&err);
	cr_assert_eq(ef_history_read(path, 0, &l, &err), EF_OK);
	cr_expect_eq(l.n, 2);
	cr_expect_str_eq(l.entries[0], s);
	cr_expect_str_eq(l.entries[1], s);
	ef_history_list_free(&l);
	free(heading);
	free(s);
	free(path);
}

/* --- prepend ------------------------------------------------------------ */

Test(historylog, prepend_creates_file_and_directories_with_the_title)
{
	char *path = path_in("agents/deeper/historylog.md"), *e = formatted(1), *got, want[8192];

	prepend_ok(path, e);
	got = slurp(path);
	snprintf(want, sizeof(want), "# Historylog\n\n%s", e);
	cr_expect_str_eq(got, want);
	free(got);
	free(e);
	free(path);
}

Test(historylog, prepend_puts_the_newest_entry_first_under_the_title)
{
	char *path = path_in("h.md"), *e1 = formatted(1), *e2 = formatted(2), *e3 = formatted(3);
	char *got, want[16384];
	struct ef_history_list l;
	struct ef_error err;

	prepend_ok(path, e1);
	prepend_ok(path, e2);
	prepend_ok(path, e3);
	got = slurp(path);
	snprintf(want, sizeof(want), "# Historylog\n\n%s\n%s\n%s", e3, e2, e1);
	cr_expect_str_eq(got, want);
	ef_error_clear(&err);
	cr_assert_eq(ef_history_read(path, 2, &l, &err), EF_OK);
	cr_assert_eq(l.n, 2);
	cr_expect_str_eq(l.entries[0], e3);
	cr_expect_str_eq(l.entries[1], e2);
	ef_history_list_free(&l);
	free(got);
	free(e1);
	free(e2);
	free(e3);
	free(path);
}

Test(historylog, prepend_keeps_the_preamble_and_a_custom_title)
{
	char *path = path_in("h.md"), *e = formatted(5), *got, want[8192];
	static const char pre[] = "# Backfill records of team Search\n\n"
				  "Every embfill run adds an entry here. Do not edit entries.\n"
				  "```\n## an example heading inside a block\n```\n";
	static const char old[] = "## 2029-12-31 23:00:00 UTC - acme - run 4\n\nhand written\n";

	free(write_file(dir, "h.md", "# Backfill records of team Search\n\n"
				     "Every embfill run adds an entry here. Do not edit entries.\n"
				     "```\n## an example heading inside a block\n```\n\n\n"
				     "## 2029-12-31 23:00:00 UTC - acme - run 4\n\nhand written\n"));
	prepend_ok(path, e);
	got = slurp(path);
	snprintf(want, sizeof(want), "%s\n%s\n%s", pre, e, old);
	cr_expect_str_eq(got, want);
	HASNT(got, EF_HISTORY_TITLE);
	free(got);
	free(e);
	free(path);
}

Test(historylog, prepend_gives_an_untitled_file_a_title)
{
	char *path = path_in("h.md"), *e = formatted(2), *got, want[8192];

	free(write_file(dir, "h.md", "\n\nNotes kept by hand.\n\n## old entry\n\nbody\n"));
	prepend_ok(path, e);
	got = slurp(path);
	snprintf(want, sizeof(want), "# Historylog\n\nNotes kept by hand.\n\n%s\n## old entry\n\n"
				     "body\n", e);
	cr_expect_str_eq(got, want);
	free(got);

	free(write_file(dir, "h.md", "## only an entry\n"));
	prepend_ok(path, e);
	got = slurp(path);
	snprintf(want, sizeof(want), "# Historylog\n\n%s\n## only an entry\n", e);
	cr_expect_str_eq(got, want);
	free(got);

	free(write_file(dir, "h.md", ""));
	prepend_ok(path, e);
	got = slurp(path);
	snprintf(want, sizeof(want), "# Historylog\n\n%s", e);
	cr_expect_str_eq(got, want);
	free(got);
	free(e);
	free(path);
}

/* Old entries are copied, never rewritten: an odd hand-edited entry (CRLF,
 * trailing blanks, no final newline) survives forty prepends unchanged. */
Test(historylog, prepend_keeps_every_old_entry_byte_for_byte)
{
	static const char odd[] = "## hand edited\r\nwith CRLF  \r\n```\r\n## inside\r\n```\r\n"
				  "last line without newline";
	char *path = path_in("h.md"), *got, *e[40];
	struct ef_history_list l;
	struct ef_error err;

	free(write_file(dir, "h.md", odd));
	for (int i = 0; i < 40; i++) {
		struct ef_history_entry s = sample(100 + i);
		char note[64];

		snprintf(note, sizeof(note), "note %d with trailing text", i);
		s.note = note;
		s.nspot = (size_t)(i % 3);
		s.command = i % 2 ? "embfill run -C a --confirm a\n## two lines" : "x ```` y";
		e[i] = ef_history_format(&s);
		prepend_ok(path, e[i]);
	}
	got = slurp(path);
	cr_expect(strncmp(got, "# Historylog\n\n", 14) == 0);
	cr_expect_str_eq(got + strlen(got) - strlen(odd), odd);
	ef_error_clear(&err);
	cr_assert_eq(ef_history_read(path, 0, &l, &err), EF_OK);
	cr_assert_eq(l.n, 41);
	for (int i = 0; i < 40; i++)
		cr_expect_str_eq(l.entries[i], e[39 - i], "entry %d changed", i);
	ef_history_list_free(&l);
	for (int i = 0; i < 40; i++)
		free(e[i]);
	free(got);
	free(path);
}

Test(historylog, prepend_keeps_the_file_permissions)
{
	char *path = path_in("h.md"), *e = formatted(1);
	struct stat st;

	free(write_file(dir, "h.md", "# Historylog\n"));
	cr_assert_eq(chmod(path, 0640), 0);
	prepend_ok(path, e);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	cr_assert_eq(chmod(path, 0604), 0);
	prepend_ok(path, e);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0604, "mode %o", st.st_mode & 07777);
	free(e);
	free(path);
}

Test(historylog, prepend_through_a_symlink_keeps_the_link)
{
	char *path = path_in("h.md"), *link = path_in("link.md"), *e = formatted(1), *got;
	struct stat st;

	free(write_file(dir, "h.md", "# Historylog\n"));
	cr_assert_eq(symlink(path, link), 0);
	prepend_ok(link, e);
	cr_assert_eq(lstat(link, &st), 0);
	cr_expect(S_ISLNK(st.st_mode), "the symlink was replaced by a file");
	got = slurp(path);
	HAS(got, "run 1\n");
	free(got);
	free(e);
	free(link);
	free(path);
}

Test(historylog, prepend_redacts_the_entry_it_is_given)
{
	char *path = path_in("h.md"), *got;

	ef_redact_add_secret(SECRET);
	prepend_ok(path, "## raw\n\nkey " SECRET " url https://u:pw-PLANTED@h/x?token=PLANTED-T\n");
	got = slurp(path);
	HASNT(got, "PLANTED");
	HAS(got, "https://h/x?token=***");
	free(got);
	free(path);
}

/* 16 processes released at the same instant, 10 entries each. */
#define WRITERS 16
#define EACH 10

static char *writer_entry(int w, int i)
{
	struct ef_history_entry e = sample(w * 1000 + i + 1);
	char coll[32];

	snprintf(coll, sizeof(coll), "writer_%02d", w);
	e.collection = coll;
	return ef_history_format(&e);
}

static void writer(const char *path, int w, int gate)
{
	char c;
	struct ef_error err;

	if (read(gate, &c, 1) != 0)
		_exit(90);
	for (int i = 0; i < EACH; i++) {
		char *e = writer_entry(w, i);

		if (!e || ef_history_prepend(path, e, &err) != EF_OK)
			_exit(91);
		free(e);
	}
	_exit(0);
}

Test(historylog, concurrent_prepends_lose_nothing, .timeout = 120)
{
	char *path = path_in("h.md"), *got, *names;
	int gate[2], seen[WRITERS][EACH] = { { 0 } }, last[WRITERS];
	pid_t pids[WRITERS];
	struct ef_history_list l;
	struct ef_error err;

	cr_assert_eq(pipe(gate), 0);
	for (int w = 0; w < WRITERS; w++) {
		last[w] = EACH;
		pids[w] = fork();
		cr_assert_geq(pids[w], 0);
		if (pids[w] == 0) {
			close(gate[1]);
			writer(path, w, gate[0]);
		}
	}
	close(gate[0]);
	close(gate[1]);
	for (int w = 0; w < WRITERS; w++) {
		int status = 0;

		cr_assert_eq(waitpid(pids[w], &status, 0), pids[w]);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d: status %d", w,
			  status);
	}
	got = slurp(path);
	cr_expect(strncmp(got, "# Historylog\n\n## ", 17) == 0, "file starts with:\n%.80s", got);
	ef_error_clear(&err);
	cr_assert_eq(ef_history_read(path, 0, &l, &err), EF_OK, "%s", err.msg);
	cr_assert_eq(l.n, WRITERS * EACH, "%zu entries", l.n);
	for (size_t k = 0; k < l.n; k++) {
		int w = -1, i = -1;
		long long run = 0;
		char *want;

		cr_assert_eq(sscanf(l.entries[k], "## 2030-01-02 03:04:05 UTC - writer_%d - run %lld",
				    &w, &run), 2, "entry %zu:\n%s", k, l.entries[k]);
		i = (int)(run - w * 1000 - 1);
		cr_assert(w >= 0 && w < WRITERS && i >= 0 && i < EACH, "entry %zu: %d/%d", k, w, i);
		seen[w][i]++;
		/* a writer's later entries sit nearer the top */
		cr_expect_lt(i, last[w], "writer %d: entry %d below entry %d", w, i, last[w]);
		last[w] = i;
		want = writer_entry(w, i);
		cr_expect_str_eq(l.entries[k], want, "entry %zu is not intact", k);
		free(want);
	}
	for (int w = 0; w < WRITERS; w++)
		for (int i = 0; i < EACH; i++)
			cr_expect_eq(seen[w][i], 1, "writer %d entry %d seen %d times", w, i,
				     seen[w][i]);
	names = listing(dir);
	cr_expect_str_eq(names, "h.md h.md.lock");
	ef_history_list_free(&l);
	free(names);
	free(got);
	free(path);
}

Test(historylog, a_failed_write_leaves_the_file_and_no_temporary_file)
{
	char *path = path_in("h.md"), *got, *names, *big;
	static const char old[] = "# Historylog\n\n## old\n\nbody\n";
	pid_t pid;
	int status = 0;

	free(write_file(dir, "h.md", old));
	big = calloc(1, 64 * 1024);
	memcpy(big, "## big\n\n", 8);
	memset(big + 8, 'x', 64 * 1024 - 10);
	big[64 * 1024 - 2] = '\n';
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* The file size limit makes write() fail with EFBIG half-way,
		 * even for root. */
		struct rlimit rl = { 4096, 4096 };
		struct ef_error err;

		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		ef_error_clear(&err);
		if (ef_history_prepend(path, big, &err) != EF_ERR_USAGE)
			_exit(1);
		_exit(strstr(err.msg, path) ? 0 : 2);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	got = slurp(path);
	cr_expect_str_eq(got, old);
	names = listing(dir);
	cr_expect_str_eq(names, "h.md h.md.lock");
	free(names);
	free(got);
	free(big);
	free(path);
}

Test(historylog, temporary_files_of_a_dead_writer_are_removed)
{
	char *path = path_in("h.md"), *e = formatted(1), *names;

	free(write_file(dir, "h.md.tmp.99999", "half an entry"));
	prepend_ok(path, e);
	names = listing(dir);
	cr_expect_str_eq(names, "h.md h.md.lock");
	free(names);
	free(e);
	free(path);
}

/* --- refusals ----------------------------------------------------------- */

static void expect_refused(const char *path, const char *entry, const char *what)
{
	struct ef_error err;

	ef_error_clear(&err);
	cr_expect_eq(ef_history_prepend(path, entry, &err), EF_ERR_USAGE, "%s accepted", path);
	cr_expect_eq(err.status, EF_ERR_USAGE);
	HAS(err.msg, path);
	HAS(err.msg, what);
	cr_expect_neq(err.hint[0], '\0', "no hint for %s", path);
}

Test(historylog, a_directory_is_refused)
{
	char *e = formatted(1), *sub = path_in("logs"), *names;

	cr_assert_eq(mkdir(sub, 0755), 0);
	expect_refused(sub, e, "is a directory");
	expect_refused(dir, e, "is a directory");
	names = listing(dir);
	cr_expect_str_eq(names, "logs", "something was created: %s", names);
	free(names);
	free(sub);
	free(e);
}

/* Root writes anywhere a mode allows, so the unwritable paths here are
 * ones no one can write: below a regular file, and inside /proc. */
Test(historylog, a_path_no_one_can_write_is_refused)
{
	char *e = formatted(1), *file = path_in("plain"), *under = path_in("plain/h.md");

	free(write_file(dir, "plain", "x"));
	expect_refused(under, e, "is not a directory");
	expect_refused("/proc/version/h.md", e, "\"/proc/version\" is not a directory");
	free(under);
	free(file);
	free(e);
}

Test(historylog, a_read_only_directory_is_refused)
{
	char *ro = path_in("ro"), *path = path_in("ro/h.md"), *e = formatted(1);

	cr_assert_eq(mkdir(ro, 0555), 0);
	if (geteuid() == 0)
		cr_skip_test("root bypasses directory permissions");
	expect_refused(path, e, "not writable");
	cr_expect_neq(access(path, F_OK), 0);
	free(e);
	free(path);
	free(ro);
}

Test(historylog, an_entry_that_is_not_one_section_is_refused)
{
	char *path = path_in("h.md");
	static const char *bad[] = {
		"no heading at all\n",
		"## one\n\n## two\n",
		"## open fence\n\n```sh\nembfill run\n",
		"text before\n## heading\n",
		"",
	};
	struct ef_error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ef_error_clear(&err);
		cr_expect_eq(ef_history_prepend(path, bad[i], &err), EF_ERR_USAGE, "accepted: %s",
			     bad[i]);
		HAS(err.msg, "not one \"## \" section");
	}
	cr_expect_neq(access(path, F_OK), 0, "the historylog was created");
	free(path);
}

Test(historylog, a_head_with_an_unclosed_fence_is_refused)
{
	static const char old[] = "# Historylog\n\n```\nopened and never closed\n";
	char *path = path_in("h.md"), *e = formatted(1), *got;
	struct ef_error err;

	free(write_file(dir, "h.md", old));
	ef_error_clear(&err);
	cr_expect_eq(ef_history_prepend(path, e, &err), EF_ERR_USAGE);
	HAS(err.msg, path);
	HAS(err.msg, "line 3");
	got = slurp(path);
	cr_expect_str_eq(got, old);
	free(got);
	free(e);
	free(path);
}

/* --- read and parse ----------------------------------------------------- */

Test(historylog, read_reports_a_missing_file_without_error)
{
	char *path = path_in("nope/h.md");
	struct ef_history_list l;
	struct ef_error err;

	ef_error_clear(&err);
	cr_assert_eq(ef_history_read(path, 5, &l, &err), EF_OK);
	cr_expect(l.missing);
	cr_expect_eq(l.n, 0);
	ef_history_list_free(&l);
	free(path);
}

Test(historylog, read_refuses_a_directory)
{
	struct ef_history_list l;
	struct ef_error err;

	ef_error_clear(&err);
	cr_expect_eq(ef_history_read(dir, 5, &l, &err), EF_ERR_USAGE);
	HAS(err.msg, dir);
	HAS(err.msg, "is a directory");
}

Test(historylog, parse_splits_only_at_headings_outside_code_blocks)
{
	static const char text[] = "# T\n\n```\n## no\n```\n"
				   "## one\n~~~~\n## no\n~~~\n## still no\n~~~~~\n\n"
				   "## two\n``` not a `fence\n## three\n    ```\n## four  \n\n\n";
	struct ef_history_doc d;
	struct ef_error err;

	ef_error_clear(&err);
	cr_assert_eq(ef_history_parse(text, strlen(text), &d, &err), EF_OK);
	cr_expect(d.has_title);
	cr_assert_eq(d.n, 4);
	cr_expect_eq(d.head_len, strlen("# T\n\n```\n## no\n```\n"));
	cr_expect_eq(strncmp(text + d.entries[1].off, "## two\n", 7), 0);
	cr_expect_eq(strncmp(text + d.entries[2].off, "## three\n", 9), 0);
	/* "    ```" is indented code, not a fence, so "## four" is a heading */
	cr_expect_eq(d.entries[3].len, strlen("## four  "));
	cr_expect_eq(d.open_fence_line, 0);
	ef_history_doc_free(&d);
}
