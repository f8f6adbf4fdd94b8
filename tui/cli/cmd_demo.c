/*
 * cmd_demo.c - `embfill demo`: finds sandbox/demo.sh and hands over to it.
 *
 * Starting and stopping a database cluster and a service, and cleaning up
 * after them on every signal, is a shell script's job, kept in one place
 * (sandbox/demo.sh).  What the script cannot do well is the one step that
 * must match embfill exactly: splitting documents into chunks.  So this
 * file also carries the hidden `embfill demo --copy-corpus`, which chunks
 * the rendered corpus with core's chunker into COPY files for psql.
 */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "embfill/chunker.h"
#include "embfill/strbuf.h"
#include "tui/cli/cmd_demo.h"

#define SCRIPT_REL "/../sandbox/demo.sh"

static bool self_path(char *buf, size_t n)
{
	ssize_t len = readlink("/proc/self/exe", buf, n - 1);

	if (len <= 0 || (size_t)len >= n - 1)
		return false;
	buf[len] = '\0';
	return true;
}

/* EMBFILL_DEMO_SCRIPT, else sandbox/demo.sh next to the build directory
 * that holds this binary (build/embfill -> sandbox/demo.sh). */
static bool find_script(const char *self, char *out, size_t n)
{
	const char *env = getenv("EMBFILL_DEMO_SCRIPT");
	const char *slash = strrchr(self, '/');
	int len;

	if (env && *env) {
		len = snprintf(out, n, "%s", env);
		return len > 0 && (size_t)len < n && access(out, R_OK) == 0;
	}
	if (!slash)
		return false;
	len = snprintf(out, n, "%.*s%s", (int)(slash - self), self, SCRIPT_REL);
	return len > 0 && (size_t)len < n && access(out, R_OK) == 0;
}

static int exec_script(int argc, char **argv)
{
	static char sh[] = "sh";
	char self[PATH_MAX], script[PATH_MAX + 32];
	char **args = calloc((size_t)argc + 3, sizeof(*args));

	if (!args || !self_path(self, sizeof(self)) || !find_script(self, script, sizeof(script))) {
		fprintf(stderr, "embfill: cannot find the sandbox script sandbox/demo.sh\n"
				"hint: run `make demo` in embfill's source tree, or set "
				"EMBFILL_DEMO_SCRIPT to the script's path\n");
		free(args);
		return 2;
	}
	setenv("EMBFILL_BIN", self, 1);
	args[0] = sh;
	args[1] = script;
	for (int i = 1; i < argc; i++)
		args[i + 1] = argv[i];
	execv("/bin/sh", args);
	fprintf(stderr, "embfill: cannot run /bin/sh %s: %s\n", script, strerror(errno));
	free(args);
	return 2;
}

/* --- --copy-corpus ------------------------------------------------------ */

/* PostgreSQL's COPY text format: backslash, tab, newline and CR escaped. */
static void put_copy(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '\\': fputs("\\\\", f); break;
		case '\t': fputs("\\t", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		default: fputc(s[i], f);
		}
	}
}

static char *slurp(const char *path, size_t *len)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ef_strbuf_addn(&b, chunk, n);
	fclose(f);
	*len = b.len;
	if (b.oom) {
		ef_strbuf_free(&b);
		return NULL;
	}
	return ef_strbuf_take(&b);
}

/* PostgreSQL takes no NUL in text and only valid UTF-8 in a UTF8 database;
 * the chunker itself would split anything. */
static bool valid_text(const char *s, size_t n)
{
	mbstate_t st;
	size_t i = 0, k;

	memset(&st, 0, sizeof(st));
	while (i < n) {
		k = mbrlen(s + i, n - i, &st);
		if (k == 0 || k == (size_t)-1 || k == (size_t)-2)
			return false;
		i += k;
	}
	return true;
}

struct corpus {
	const char *outdir;
	size_t size, overlap;
	long long doc_id, chunk_id;
	long long docs, chunks, skipped;
};

static FILE *open_out(const struct corpus *c, const char *batch, const char *what)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s.%s", c->outdir, batch, what);

	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	return fopen(path, "a");
}

/* Writes one document and its chunks; false when a file cannot be written. */
static bool emit(struct corpus *c, char *const f[5], const char *body, size_t len)
{
	struct ef_chunk *ch;
	struct ef_error err;
	size_t n;
	FILE *docs = open_out(c, f[0], "documents"), *chunks = open_out(c, f[0], "chunks");
	bool ok = docs && chunks;

	ef_error_clear(&err);
	if (ok && ef_chunk_split(body, len, c->size, c->overlap, &ch, &n, &err) != EF_OK) {
		fprintf(stderr, "embfill: %s\n", err.msg);
		ok = false;
	}
	if (ok) {
		c->doc_id++;
		fprintf(docs, "%lld", c->doc_id);
		for (int i = 1; i <= 3; i++) {
			fputc('\t', docs);
			put_copy(docs, f[i], strlen(f[i]));
		}
		fputc('\t', docs);
		put_copy(docs, body, len);
		fputc('\n', docs);
		for (size_t i = 0; i < n; i++) {
			fprintf(chunks, "%lld\t%lld\t", ++c->chunk_id, c->doc_id);
			put_copy(chunks, f[1], strlen(f[1]));
			fprintf(chunks, "\t%zu\t", i);
			put_copy(chunks, body + ch[i].offset, ch[i].length);
			fputc('\n', chunks);
		}
		c->docs++;
		c->chunks += (long long)n;
		free(ch);
	}
	if (docs && fclose(docs) != 0)
		ok = false;
	if (chunks && fclose(chunks) != 0)
		ok = false;
	return ok;
}

/* "batch<TAB>collection<TAB>title<TAB>source_uri<TAB>path" */
static bool split_fields(char *line, char *f[5])
{
	line[strcspn(line, "\r\n")] = '\0';
	for (int i = 0; i < 5; i++) {
		f[i] = line;
		line = strchr(line, '\t');
		if (i < 4) {
			if (!line)
				return false;
			*line++ = '\0';
		}
	}
	return *f[0] && *f[1] && *f[4] && !strchr(f[0], '/');
}

static int copy_corpus_lines(FILE *m, struct corpus *c)
{
	char line[8192], *f[5];
	char *body;
	size_t len;
	int lineno = 0;

	while (fgets(line, sizeof(line), m)) {
		lineno++;
		if (!split_fields(line, f)) {
			fprintf(stderr, "embfill: manifest line %d is not batch, collection, "
					"title, source, path\n", lineno);
			return 2;
		}
		body = slurp(f[4], &len);
		if (!body || len == 0 || !valid_text(body, len)) {
			fprintf(stderr, "embfill: skipping \"%s\": %s\n", f[4],
				!body ? strerror(errno) : len == 0 ? "empty" : "not UTF-8 text");
			c->skipped++;
			free(body);
			continue;
		}
		if (!emit(c, f, body, len)) {
			fprintf(stderr, "embfill: cannot write the COPY files under \"%s\"\n",
				c->outdir);
			free(body);
			return 2;
		}
		free(body);
	}
	return 0;
}

static bool parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > 100000000ULL)
		return false;
	*out = (size_t)v;
	return true;
}

/*
 * embfill demo --copy-corpus MANIFEST OUTDIR SIZE OVERLAP FIRST_DOC_ID FIRST_CHUNK_ID
 * Appends OUTDIR/<batch>.documents and OUTDIR/<batch>.chunks in COPY text
 * format: (id, collection, title, source_uri, body) and (id, document_id,
 * collection, chunk_index, content).  Ids run on from the given ones, so
 * one manifest can be loaded in several batches at different times.
 */
static int copy_corpus(int argc, char **argv)
{
	struct corpus c = { 0 };
	size_t first_doc, first_chunk;
	FILE *m;
	int rc;

	if (argc != 6 || !parse_size(argv[2], &c.size) || !parse_size(argv[3], &c.overlap) ||
	    !parse_size(argv[4], &first_doc) || !parse_size(argv[5], &first_chunk)) {
		fprintf(stderr, "usage: embfill demo --copy-corpus MANIFEST OUTDIR SIZE OVERLAP "
				"FIRST_DOC_ID FIRST_CHUNK_ID\n");
		return 2;
	}
	/* valid_text() asks the C library, whose idea of a character is the
	 * locale's: the corpus is UTF-8 whatever the caller's locale */
	if (!setlocale(LC_CTYPE, "C.UTF-8")) {
		fprintf(stderr, "embfill: the C.UTF-8 locale is missing\n");
		return 2;
	}
	c.outdir = argv[1];
	c.doc_id = (long long)first_doc - 1;
	c.chunk_id = (long long)first_chunk - 1;
	m = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
	if (!m) {
		fprintf(stderr, "embfill: cannot read manifest \"%s\": %s\n", argv[0],
			strerror(errno));
		return 2;
	}
	rc = copy_corpus_lines(m, &c);
	if (m != stdin)
		fclose(m);
	if (rc == 0)
		printf("%lld documents, %lld chunks, %lld skipped\n", c.docs, c.chunks, c.skipped);
	return rc;
}

int cmd_demo(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--copy-corpus") == 0)
		return copy_corpus(argc - 2, argv + 2);
	return exec_script(argc, argv);
}
