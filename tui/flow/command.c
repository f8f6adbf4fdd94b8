/*
 * command.c (flow) - reproducing command lines (command.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/redact.h"
#include "tui/flow/command.h"

void command_word(struct ef_strbuf *b, const char *w)
{
	if (!w)
		return;
	ef_strbuf_add(b, " ");
	ef_strbuf_add_shell_word(b, w);
}

void command_flag(struct ef_strbuf *b, const char *flag, const char *value)
{
	if (!value)
		return;
	command_word(b, flag);
	command_word(b, value);
}

/* Settings given as flags, so that the line runs against the same
 * database and service.  A connection string's password is refused on the
 * command line, and keys are never flags, so nothing secret is copied. */
void command_start(struct ef_strbuf *b, const struct app *app, const char *cmd)
{
	const struct cli *cli = app->cli;

	ef_strbuf_add(b, "embfill");
	command_flag(b, "--config", cli->config);
	for (int i = 0; i < cli->nsets; i++) {
		const char *k = cli->sets[i].key;
		char *kv = NULL;

		if (strcmp(k, "BATCH_SIZE") == 0 || strcmp(k, "EMBED_CONCURRENCY") == 0)
			continue;
		if (strcmp(k, "DATABASE_URL") == 0) {
			/* in the form redaction leaves whole; a password is left to
			 * libpq's own sources */
			char *dsn = ef_redact_dsn_command(cli->sets[i].value);

			command_flag(b, "--dsn", dsn ? dsn : "(connection string hidden)");
			free(dsn);
			continue;
		}
		if (asprintf(&kv, "%s=%s", k, cli->sets[i].value) < 0) {
			b->oom = true;
			continue;
		}
		command_flag(b, "--set", kv);
		free(kv);
	}
	command_word(b, cmd);
}

char *command_for(const struct app *app, const char *cmd, const char *collection)
{
	struct ef_strbuf b = EF_STRBUF_INIT;

	command_start(&b, app, cmd);
	command_flag(&b, "-C", collection);
	return ef_strbuf_take(&b);
}
