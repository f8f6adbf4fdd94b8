/*
 * manpages.c - the manual pages cannot drift from the program: every
 * settings key is in embfill.env(5), and every option of every command's
 * --help is in embfill(1) and the other way round.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "embfill/settings.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert(f, "cannot open %s (tests run from the source tree)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return buf;
}

Test(manpages, every_settings_key_is_documented_in_embfill_env_5)
{
	char *man = slurp("man/embfill.env.5");

	for (int k = 0; k < EF_K__COUNT; k++) {
		char want[128];
		snprintf(want, sizeof(want), ".It Ev %s\n", ef_settings_key_name((enum ef_key)k));
		cr_expect(strstr(man, want), "embfill.env(5) lacks an entry for %s",
			  ef_settings_key_name((enum ef_key)k));
	}
	free(man);
}

/* Options of `embfill CMD --help`: the words starting with "--" or "-X". */
static char *help_of(const char *cmd)
{
	char line[512];
	char *cmdline = NULL, *out = calloc(1, 16384);
	const char *bin = getenv("EMBFILL_BIN");
	FILE *p;

	cr_assert(bin, "EMBFILL_BIN is not set: run through `make check`");
	cr_assert(asprintf(&cmdline, "'%s' %s --help", bin, cmd) > 0);
	p = popen(cmdline, "r");
	cr_assert(p);
	while (fgets(line, sizeof(line), p))
		if (strlen(out) + strlen(line) < 16383)
			strcat(out, line);
	cr_assert_eq(pclose(p), 0, "%s failed", cmdline);
	free(cmdline);
	return out;
}

static void each_option(const char *help, void (*fn)(const char *opt, void *ctx), void *ctx)
{
	for (const char *p = strstr(help, "\n  -"); p; p = strstr(p + 1, "\n  -")) {
		const char *s = p + 3;
		char opt[64];
		size_t n;

		if (s[1] != '-') { /* "-C, --collection" */
			snprintf(opt, sizeof(opt), "%.2s", s);
			fn(opt, ctx);
			s = strstr(s, "--");
		}
		n = strcspn(s, " \n");
		snprintf(opt, sizeof(opt), "%.*s", (int)n, s);
		fn(opt, ctx);
	}
}

static void in_man(const char *opt, void *ctx)
{
	char want[80];

	snprintf(want, sizeof(want), "Fl %s", opt + 1);
	cr_expect(strstr((const char *)ctx, want), "embfill(1) does not document %s", opt);
}

Test(manpages, every_help_option_is_in_embfill_1)
{
	static const char *const cmds[] = { "", "doctor", "status", "schema", "plan", "run",
					    "verify", "spot-check", "history", "tui", "demo" };
	char *man = slurp("man/embfill.1");

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *help = help_of(cmds[i]);
		each_option(help, in_man, man);
		free(help);
	}
	free(man);
}

Test(manpages, every_option_in_embfill_1_is_in_some_help)
{
	char *man = slurp("man/embfill.1");
	char *all = calloc(1, 65536);
	static const char *const cmds[] = { "", "doctor", "status", "schema", "plan", "run",
					    "verify", "spot-check", "history", "tui", "demo" };

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *help = help_of(cmds[i]);
		strcat(all, help);
		free(help);
	}
	for (const char *p = strstr(man, "Fl -"); p; p = strstr(p + 1, "Fl -")) {
		char opt[64];
		snprintf(opt, sizeof(opt), "-%.*s", (int)strcspn(p + 3, " \n"), p + 3);
		cr_expect(strstr(all, opt), "embfill(1) documents %s, which no --help shows", opt);
	}
	free(all);
	free(man);
}

/* `embfill --help` names --json in the usage line of every command whose
 * own --help lists it, and of no other. */
Test(manpages, the_usage_lines_show_json_wherever_a_command_takes_it)
{
	static const char *const cmds[] = { "doctor", "status", "plan", "run", "verify",
					    "spot-check", "chunk", "swap", "rollback", "adopt",
					    "history", "schema", "tui" };
	char *top = help_of("");

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *help = help_of(cmds[i]), want[64];
		bool takes = strstr(help, "\n  --json ") != NULL;
		const char *line;
		size_t len;

		snprintf(want, sizeof(want), "usage: embfill %s ", cmds[i]);
		line = strstr(top, want);
		if (!line) {
			snprintf(want, sizeof(want), "usage: embfill %s\n", cmds[i]);
			line = strstr(top, want);
		}
		cr_assert(line, "no usage line for %s in:\n%s", cmds[i], top);
		len = strcspn(line, "\n");
		cr_expect_eq(memmem(line, len, "[--json]", 8) != NULL, takes,
			     "%.*s: --json %s in `embfill %s --help`", (int)len, line,
			     takes ? "is listed" : "is not listed", cmds[i]);
		free(help);
	}
	free(top);
}

/* Every console action of tui/console.h has its key in the KEYS section. */
Test(manpages, every_console_key_is_in_the_keys_section)
{
	char *man = slurp("man/embfill.1");
	char *h = slurp("tui/console/console.h");
	const char *keys = strstr(man, ".Sh KEYS");
	int n = 0;

	cr_assert(keys, "embfill(1) has no KEYS section");
	for (const char *p = strstr(h, "\tX(A_"); p; p = strstr(p + 1, "\tX(A_")) {
		const char *q = strchr(p, '"');
		char key[32], want[64];

		cr_assert(q);
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(q + 1, "\""), q + 1);
		/* a lone punctuation key is escaped with \& so mdoc does not take
		 * it for a delimiter */
		snprintf(want, sizeof(want), ".It Cm %s%s\n", ispunct((unsigned char)key[0]) &&
			 !key[1] ? "\\&" : "", key);
		cr_expect(strstr(keys, want), "KEYS lacks the console key \"%s\"", key);
		n++;
	}
	cr_expect_gt(n, 10, "no console actions found in tui/console.h");
	free(h);
	free(man);
}
