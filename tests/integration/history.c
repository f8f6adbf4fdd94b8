/*
 * history.c - `embfill history` through the binary: the newest entries in
 * order, the -n bounds, --json, a historylog that does not exist yet or is
 * a directory, and redaction of what the file holds.  No database needed.
 *
 * Each test runs embfill in its own temporary directory (the binary reads
 * ./embfill.env from there) with HISTORYLOG set by a --config file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "proc.h"
#include "testdb.h"

#define HAS(hay, needle) \
	cr_expect(strstr((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))
#define HASNT(hay, needle) \
	cr_expect_null(strstr((hay), (needle)), "\"%s\" must not be in:\n%s", (needle), (hay))

/* The environment may set any of these; the tests decide them. */
static const char *const clean_env[] = { "HISTORYLOG", "EMBED_API_KEY", "LC_ALL=C.UTF-8",
					 "TZ=UTC", NULL };

struct hx {
	char *dir;
	char *config;
	char *log;      /* HISTORYLOG */
};

static void hx_init(struct hx *h, const char *log_name)
{
	char *text = NULL;

	h->dir = test_tmpdir();
	cr_assert(asprintf(&h->log, "%s/%s", h->dir, log_name) > 0);
	cr_assert(asprintf(&text, "HISTORYLOG=%s\n", h->log) > 0);
	h->config = write_file(h->dir, "settings.env", text);
	free(text);
}

static void hx_free(struct hx *h)
{
	free(h->dir);
	free(h->config);
	free(h->log);
}

/* A historylog of n entries, "run n" first, each with a fenced command
 * that holds a line looking like a heading. */
static void hx_write_log(struct hx *h, int n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	fprintf(m, "# Historylog\n\nPreamble: one entry per backfill run.\n\n");
	for (int i = n; i >= 1; i--)
		fprintf(m, "## 2030-01-%02d 02:00:00 UTC - acme - run %d\n\n"
			   "- **Operator:** opal@db1\n\nReproduce headless:\n\n"
			   "```sh\nembfill run -C acme --confirm acme\n## not a heading %d\n```\n\n",
			i, i, i);
	fclose(m);
	cr_assert_eq(strcmp(strrchr(h->log, '/') + 1, "h.md"), 0);
	free(write_file(h->dir, "h.md", text));
	free(text);
}

static int hx_run(struct hx *h, struct proc_result *r, const char *const *args,
		  const char *const *env)
{
	const char *argv[16] = { "--config", h->config };
	int k = 2;

	for (int i = 0; args[i] && k < 15; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	return run_embfill(argv, env ? env : clean_env, h->dir, r);
}

/* Where a heading line "## ... run N" starts in out, or -1. */
static long heading_at(const char *out, int run)
{
	char want[64];
	const char *p;

	snprintf(want, sizeof(want), "UTC - acme - run %d\n", run);
	p = strstr(out, want);
	if (!p)
		return -1;
	while (p > out && p[-1] != '\n')
		p--;
	return strncmp(p, "## ", 3) == 0 ? p - out : -1;
}

static int count_headings(const char *out)
{
	int n = strncmp(out, "## ", 3) == 0;

	for (const char *p = out; (p = strstr(p, "\n## 2030")); p++)
		n++;
	return n;
}

Test(history_cli, n_2_prints_the_two_newest_entries_newest_first)
{
	struct hx h;
	struct proc_result r;

	hx_init(&h, "h.md");
	hx_write_log(&h, 3);
	cr_assert_eq(hx_run(&h, &r, (const char *[]){ "history", "-n", "2", NULL }, NULL), 0,
		     "%s", r.err);
	cr_expect_eq(count_headings(r.out), 2, "%s", r.out);
	cr_expect_geq(heading_at(r.out, 3), 0, "%s", r.out);
	cr_expect_gt(heading_at(r.out, 2), heading_at(r.out, 3), "%s", r.out);
	cr_expect_eq(heading_at(r.out, 1), -1, "%s", r.out);
	HAS(r.out, "## not a heading 3\n```\n");
	HAS(r.out, "## not a heading 2\n```\n");
	HASNT(r.out, "Preamble");
	cr_expect_str_eq(r.err, "");
	proc_result_free(&r);
	hx_free(&h);
}

Test(history_cli, without_n_prints_five_entries)
{
	struct hx h;
	struct proc_result r;

	hx_init(&h, "h.md");
	hx_write_log(&h, 7);
	cr_assert_eq(hx_run(&h, &r, (const char *[]){ "history", NULL }, NULL), 0, "%s", r.err);
	cr_expect_eq(count_headings(r.out), 5, "%s", r.out);
	cr_expect_eq(heading_at(r.out, 7), 0, "%s", r.out);
	cr_expect_geq(heading_at(r.out, 3), 0, "%s", r.out);
	cr_expect_eq(heading_at(r.out, 2), -1, "%s", r.out);
	proc_result_free(&r);
	hx_free(&h);
}

Test(history_cli, n_outside_1_to_1000_is_a_usage_error)
{
	static const char *const bad[] = { "0", "x", "-1", "1001", "5x", "" };
	struct hx h;
	struct proc_result r;

	hx_init(&h, "h.md");
	hx_write_log(&h, 2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[32];

		cr_expect_eq(hx_run(&h, &r, (const char *[]){ "history", "-n", bad[i], NULL }, NULL),
			     2, "-n '%s' accepted:\n%s", bad[i], r.out);
		snprintf(want, sizeof(want), "-n \"%s\"", bad[i]);
		HAS(r.err, want);
		HAS(r.err, "1 to 1000");
		HAS(r.err, "hint:");
		cr_expect_str_eq(r.out, "");
		proc_result_free(&r);
	}
	cr_expect_eq(hx_run(&h, &r, (const char *[]){ "history", "-n", "1000", NULL }, NULL), 0);
	cr_expect_eq(count_headings(r.out), 2);
	proc_result_free(&r);
	hx_free(&h);
}

Test(history_cli, json_is_an_array_of_heading_and_text)
{
	struct hx h;
	struct proc_result r;
	cJSON *arr;

	hx_init(&h, "h.md");
	hx_write_log(&h, 3);
	cr_assert_eq(hx_run(&h, &r, (const char *[]){ "history", "-n", "2", "--json", NULL },
			    NULL), 0, "%s", r.err);
	arr = cJSON_ParseWithOpts(r.out, NULL, 0);
	cr_assert(cJSON_IsArray(arr), "not a JSON array:\n%s", r.out);
	cr_assert_eq(cJSON_GetArraySize(arr), 2);
	for (int i = 0; i < 2; i++) {
		cJSON *o = cJSON_GetArrayItem(arr, i);
		const char *heading = cJSON_GetStringValue(cJSON_GetObjectItem(o, "heading"));
		const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(o, "text"));
		char want[64];

		snprintf(want, sizeof(want), "2030-01-%02d 02:00:00 UTC - acme - run %d", 3 - i,
			 3 - i);
		cr_assert(heading && text, "entry %d lacks heading or text", i);
		cr_expect_str_eq(heading, want);
		cr_expect(strncmp(text, "## ", 3) == 0 && strncmp(text + 3, want, strlen(want)) == 0,
			  "text: %s", text);
		HAS(text, "```sh\nembfill run -C acme --confirm acme\n");
		cr_expect_eq(text[strlen(text) - 1], '\n');
	}
	cJSON_Delete(arr);
	proc_result_free(&r);
	hx_free(&h);
}

Test(history_cli, a_missing_historylog_is_not_an_error)
{
	struct hx h;
	struct proc_result r;
	char want[4096];

	hx_init(&h, "not/yet/h.md");
	cr_assert_eq(hx_run(&h, &r, (const char *[]){ "history", NULL }, NULL), 0, "%s", r.err);
	snprintf(want, sizeof(want), "no historylog yet at %s\n", h.log);
	cr_expect_str_eq(r.out, want);
	proc_result_free(&r);
	cr_assert_eq(hx_run(&h, &r, (const char *[]){ "history", "--json", NULL }, NULL), 0);
	cr_expect_str_eq(r.out, "[]\n");
	proc_result_free(&r);
	hx_free(&h);
}

Test(history_cli, a_directory_as_historylog_is_a_usage_error)
{
	struct hx h;
	struct proc_result r;
	char want[4096];

	hx_init(&h, "logs");
	cr_assert_eq(mkdir(h.log, 0755), 0);
	cr_expect_eq(hx_run(&h, &r, (const char *[]){ "history", NULL }, NULL), 2, "%s", r.out);
	snprintf(want, sizeof(want), "historylog \"%s\" is a directory", h.log);
	HAS(r.err, want);
	proc_result_free(&r);
	hx_free(&h);
}

Test(history_cli, secrets_in_the_file_are_not_printed)
{
	static const char *const env[] = { "HISTORYLOG", "EMBED_API_KEY=sk-test-PLANTED-env-7d3f",
					   "LC_ALL=C.UTF-8", "TZ=UTC", NULL };
	struct hx h;
	struct proc_result r;

	hx_init(&h, "h.md");
	free(write_file(h.dir, "h.md",
			"# Historylog\n\n## 2030-01-01 00:00:00 UTC - acme - run 1\n\n"
			"- URL https://bob:pw-PLANTED@embed.example.com/v1?api_key=PLANTED-Q\n"
			"- key sk-test-PLANTED-env-7d3f\n"));
	cr_assert_eq(hx_run(&h, &r, (const char *[]){ "history", NULL }, env), 0, "%s", r.err);
	HAS(r.out, "https://embed.example.com/v1?api_key=***");
	HASNT(r.out, "PLANTED");
	proc_result_free(&r);
	cr_assert_eq(hx_run(&h, &r, (const char *[]){ "history", "--json", NULL }, env), 0);
	HASNT(r.out, "PLANTED");
	proc_result_free(&r);
	hx_free(&h);
}
