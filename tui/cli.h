/*
 * cli.h - the command-line front end: options, output, and the commands.
 */
#ifndef EMBFILL_TUI_CLI_H
#define EMBFILL_TUI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "embfill/error.h"
#include "embfill/settings.h"

enum cli_cmd {
	CMD_NONE = 0,
	CMD_STATUS = 1u << 0,
	CMD_SCHEMA = 1u << 1,
	CMD_DOCTOR = 1u << 2,
	CMD_PLAN = 1u << 3,
	CMD_RUN = 1u << 4,
	CMD_VERIFY = 1u << 5,
	CMD_SPOTCHECK = 1u << 6,
	CMD_HISTORY = 1u << 7,
	CMD_TUI = 1u << 8,
	CMD_CHUNK = 1u << 9,
	CMD_SWAP = 1u << 10,
	CMD_ROLLBACK = 1u << 11,
	CMD_ALL = 0xffffu,
};

/* Everything the command line said, before settings are resolved. */
struct cli {
	enum cli_cmd cmd;
	const char *cmd_name;
	const char *sub;          /* "init" / "check" for schema */
	const char *config;       /* --config */
	bool json;
	bool no_color;
	bool ascii;
	bool help;
	bool version;
	const char *collection;   /* -C */
	const char *confirm;      /* --confirm */
	const char *out;          /* --out FILE */
	const char *until;        /* --until HH:MM */
	const char *note;         /* --note TEXT */
	const char *into;         /* --into NEWCOLL */
	const char *with;         /* swap --with NEWCOLL */
	const char *min_hit_rate; /* swap --min-hit-rate R */
	bool backup;              /* run --backup */
	bool approve_provider;    /* --approve-provider-change */
	const char *k;            /* -k N */
	const char *n;            /* -n N */
	bool dry_run;
	bool resume;
	bool historylog;          /* --historylog: write the entry */
	bool retry_quarantined;
	const char *queries[16];  /* -q QUERY, repeatable */
	int nqueries;
	const char *dim;          /* --dim */
	const char *vector_type;  /* --vector-type */
	/* flags that set settings: (key, value, spelling) */
	struct { const char *key, *value, *flag; } sets[64];
	int nsets;
	char set_buf[64][128];    /* key storage for --set KEY=VALUE */
};

/* Everything a command needs once settings are resolved. */
struct app {
	struct cli *cli;
	ef_settings *settings;
	const struct ef_config *cfg;
	struct ef_config own_cfg;   /* cfg with a collection's own embedding table */
	char *own_table;
};

/* Parses argv into cli; on a usage error prints it and returns 2. */
int cli_parse(int argc, char **argv, struct cli *cli);
void cli_usage(FILE *f, enum cli_cmd cmd);
/* The command's option list, one per line ("--dsn DSN"), for tests. */
void cli_list_options(FILE *f, enum cli_cmd cmd);

/* Output: redacted, and sanitised for the terminal: control characters
 * from the values are printed as visible escapes, the format's own
 * newlines, tabs and carriage returns are kept. */
void out_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a text whose newlines and tabs are its own (a historylog entry),
 * redacted and sanitised. */
void out_text(FILE *f, const char *text);
/* Prints "embfill: msg" and "hint: ..." to stderr; returns err->status. */
int out_error(const struct ef_error *err);
/* Prints a cJSON-built document (passed as text) redacted, with newline. */
void out_json(const char *text);

int cmd_status(struct app *app);
int cmd_schema(struct app *app);
int cmd_doctor(struct app *app);
int cmd_plan(struct app *app);
int cmd_run(struct app *app);
int cmd_verify(struct app *app);
int cmd_spotcheck(struct app *app);
int cmd_history(struct app *app);
int cmd_chunk(struct app *app);
int cmd_swap(struct app *app);
int cmd_rollback(struct app *app);

#endif
