/*
 * app.h - what the command line said, and what every front end needs once
 * the settings are resolved: the types both front ends and their shared
 * workflows (tui/flow) read.
 */
#ifndef EMBFILL_TUI_APP_H
#define EMBFILL_TUI_APP_H

#include <stdbool.h>

#include "embfill/session.h"
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
	CMD_ADOPT = 1u << 12,
	CMD_STOP = 1u << 13,
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
	bool rebuild_index;       /* run --rebuild-index */
	bool rechunk;             /* run --into --rechunk */
	bool approve_provider;    /* --approve-provider-change */
	const char *k;            /* -k N */
	const char *n;            /* -n N */
	bool dry_run;
	bool resume;
	bool join;                /* run --join: one more worker of the active run */
	bool historylog;          /* --historylog: write the entry */
	bool retry_quarantined;
	const char *queries[16];  /* -q QUERY, repeatable */
	int nqueries;
	const char *dim;          /* --dim */
	const char *vector_type;  /* --vector-type */
	const char *table;        /* schema detect --table */
	const char *model;        /* adopt --model */
	bool force;               /* adopt --force */
	const char *only;         /* run --only missing */
	bool provenance;          /* verify --provenance */
	const char *sample;       /* --sample N */
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
	ef_session *session;        /* the main thread's, opened at first use */
	char *key;                  /* the API key read from EMBED_API_KEY_FILE */
};

#endif
