/*
 * main.c - embfill's entry point: parse, resolve settings, dispatch.
 */
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "embfill/redact.h"
#include "embfill/settings.h"
#include "tui/cli/cli.h"
#include "tui/cli/cmd_demo.h"
#include "tui/flow/app.h"
#include "tui/console/console.h"

extern char **environ;

static int load_settings(struct app *app)
{
	struct cli *cli = app->cli;
	struct ef_error err;

	ef_error_clear(&err);
	app->settings = ef_settings_new();
	if (!app->settings) {
		ef_error_oom(&err, "reading the settings");
		return out_error(&err);
	}
	if (ef_settings_load_file(app->settings, cli->config ? cli->config : "embfill.env",
				  cli->config != NULL, &err) != EF_OK ||
	    ef_settings_load_env(app->settings, environ, &err) != EF_OK)
		return out_error(&err);
	for (int i = 0; i < cli->nsets; i++)
		if (ef_settings_set_flag(app->settings, cli->sets[i].key, cli->sets[i].value,
					 cli->sets[i].flag, &err) != EF_OK)
			return out_error(&err);
	ef_settings_register_secrets(app->settings);
	if (ef_settings_finish(app->settings, &err) != EF_OK)
		return out_error(&err);
	app->cfg = ef_settings_config(app->settings);
	return 0;
}

static int dispatch(struct app *app)
{
	switch (app->cli->cmd) {
	case CMD_STATUS:
		return cmd_status(app);
	case CMD_SCHEMA:
		return cmd_schema(app);
	case CMD_DOCTOR:
		return cmd_doctor(app);
	case CMD_VERIFY:
		return cmd_verify(app);
	case CMD_SPOTCHECK:
		return cmd_spotcheck(app);
	case CMD_RUN:
		return cmd_run(app);
	case CMD_HISTORY:
		return cmd_history(app);
	case CMD_CHUNK:
		return cmd_chunk(app);
	case CMD_SWAP:
		return cmd_swap(app);
	case CMD_ROLLBACK:
		return cmd_rollback(app);
	case CMD_ADOPT:
		return cmd_adopt(app);
	case CMD_STOP:
		return cmd_stop(app);
	case CMD_PLAN:
		return cmd_plan(app);
	case CMD_TUI:
		return cmd_tui(app);
	default:
		return EF_ERR_USAGE;
	}
}

/* Without a command, a terminal gets the console; anything else (a pipe,
 * cron) gets the usage, since there is nobody to drive the console. */
static int no_command(struct cli *cli)
{
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
		cli->cmd = CMD_TUI;
		cli->cmd_name = "tui";
		return 0;
	}
	fprintf(stderr, "embfill: no command given, and no terminal for the console\n\n");
	cli_usage(stderr, CMD_NONE);
	return EF_ERR_USAGE;
}

/*
 * A run holds, for every request in flight, an answer of a few hundred KB
 * (100 vectors of 768 in base64: 414 KB) and the batch's floats and write
 * buffer.  glibc maps such blocks one by one and unmaps them when freed, or
 * trims the heap under them: with 8 requests in flight that cost 46,000
 * page faults and 67 us of CPU per chunk in the wire bench, against 2,500
 * and 28 us with the blocks kept in the heap.  A freed block is kept for
 * the next answer instead; the run's memory stays bounded by what is in
 * flight (EMBED_CONCURRENCY x endpoints).
 */
static void keep_freed_blocks(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

int main(int argc, char **argv)
{
	static struct cli cli;
	struct app app = { .cli = &cli };
	int rc;

	/* the sandbox has options of its own, parsed by sandbox/demo.sh */
	if (argc > 1 && strcmp(argv[1], "demo") == 0)
		return cmd_demo(argc - 1, argv + 1);
	keep_freed_blocks();
	if ((rc = cli_parse(argc, argv, &cli)) != 0)
		return rc;
	if (cli.version) {
		printf("embfill %s\n", EF_VERSION);
		return 0;
	}
	if (cli.help) {
		cli_usage(stdout, cli.cmd);
		return 0;
	}
	if (cli.cmd == CMD_NONE && (rc = no_command(&cli)) != 0)
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "embfill: cannot initialise libcurl\n");
		return EF_ERR_EMBED;
	}
	rc = load_settings(&app);
	if (rc == 0)
		rc = dispatch(&app);
	app_free(&app);
	ef_settings_free(app.settings);
	ef_redact_reset();
	curl_global_cleanup();
	return rc;
}
