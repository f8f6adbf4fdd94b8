/*
 * options.c - one table of options drives parsing, --help and the test
 * that keeps --help and the man page in step.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/cli/cli.h"

enum opt_id {
	O_CONFIG = 256, O_DSN, O_SET, O_JSON, O_NO_COLOR, O_ASCII, O_VERSION, O_HELP,
	O_COLLECTION, O_DIM, O_VECTOR_TYPE, O_BATCH_SIZE, O_CONCURRENCY,
	O_CONFIRM, O_OUT, O_UNTIL, O_NOTE, O_INTO, O_K, O_N, O_DRY_RUN, O_RESUME,
	O_HISTORYLOG, O_RETRY_QUARANTINED, O_QUERY, O_WITH, O_BACKUP, O_APPROVE_PROVIDER,
	O_MIN_HIT_RATE, O_RECHUNK, O_TABLE, O_MODEL, O_FORCE, O_ONLY, O_PROVENANCE, O_SAMPLE,
	O_REBUILD_INDEX, O_JOIN,
};

struct opt {
	const char *name;
	int has_arg;
	int id;
	char shortopt;
	const char *metavar;
	unsigned cmds;
	const char *help;
};

static const struct opt opts[] = {
	{ "config", 1, O_CONFIG, 0, "FILE", CMD_ALL,
	  "settings file (default ./embfill.env when present)" },
	{ "dsn", 1, O_DSN, 0, "DSN", CMD_ALL,
	  "PostgreSQL connection string or URI, without a password (sets DATABASE_URL)" },
	{ "set", 1, O_SET, 0, "KEY=VALUE", CMD_ALL, "set any settings key for this run" },
	{ "json", 0, O_JSON, 0, NULL,
	  CMD_STATUS | CMD_SCHEMA | CMD_DOCTOR | CMD_PLAN | CMD_VERIFY | CMD_SPOTCHECK |
		  CMD_HISTORY | CMD_CHUNK | CMD_SWAP | CMD_ROLLBACK | CMD_ADOPT,
	  "print JSON for scripts" },
	{ "no-color", 0, O_NO_COLOR, 0, NULL, CMD_ALL, "no colours (NO_COLOR is honoured too)" },
	{ "ascii", 0, O_ASCII, 0, NULL, CMD_ALL, "ASCII drawing only" },
	{ "version", 0, O_VERSION, 0, NULL, CMD_ALL, "print the version" },
	{ "help", 0, O_HELP, 'h', NULL, CMD_ALL, "show this help" },
	{ "collection", 1, O_COLLECTION, 'C', "COLL",
	  CMD_STATUS | CMD_PLAN | CMD_RUN | CMD_VERIFY | CMD_SPOTCHECK | CMD_TUI | CMD_CHUNK |
		  CMD_SWAP | CMD_ROLLBACK | CMD_ADOPT | CMD_STOP,
	  "the collection (status: only this one, with its run's workers; tui: listed first)" },
	{ "confirm", 1, O_CONFIRM, 0, "COLL", CMD_RUN | CMD_SWAP | CMD_ADOPT | CMD_STOP,
	  "the collection's name typed again; must equal -C exactly" },
	{ "batch-size", 1, O_BATCH_SIZE, 0, "N", CMD_RUN | CMD_PLAN,
	  "chunks per request (sets BATCH_SIZE)" },
	{ "concurrency", 1, O_CONCURRENCY, 0, "K", CMD_RUN | CMD_PLAN,
	  "requests in flight on each endpoint (sets EMBED_CONCURRENCY)" },
	{ "dry-run", 0, O_DRY_RUN, 0, NULL, CMD_RUN | CMD_ADOPT,
	  "say what would be done, write nothing" },
	{ "only", 1, O_ONLY, 0, "missing", CMD_RUN | CMD_PLAN,
	  "embed only chunks without a vector; stale ones are reported, not touched" },
	{ "resume", 0, O_RESUME, 0, NULL, CMD_RUN,
	  "continue the collection's interrupted run" },
	{ "join", 0, O_JOIN, 0, NULL, CMD_RUN,
	  "join the collection's active run as one more worker (any host)" },
	{ "until", 1, O_UNTIL, 0, "HH:MM", CMD_RUN,
	  "stop cleanly when the maintenance window ends (exit 5)" },
	{ "note", 1, O_NOTE, 0, "TEXT", CMD_RUN, "maintenance-window note for the records" },
	{ "historylog", 0, O_HISTORYLOG, 0, NULL, CMD_RUN,
	  "write the historylog entry when the run ends" },
	{ "retry-quarantined", 0, O_RETRY_QUARANTINED, 0, NULL, CMD_RUN | CMD_PLAN,
	  "try quarantined chunks again" },
	{ "into", 1, O_INTO, 0, "NEWCOLL", CMD_RUN | CMD_CHUNK,
	  "write into this new collection instead (run: copying the chunks first)" },
	{ "rechunk", 0, O_RECHUNK, 0, NULL, CMD_RUN,
	  "with --into: cut the documents anew (MAX_CHUNK_SIZE, CHUNK_OVERLAP) instead" },
	{ "backup", 0, O_BACKUP, 0, NULL, CMD_RUN,
	  "save the vectors an in-place run overwrites; `rollback` restores them" },
	{ "rebuild-index", 0, O_REBUILD_INDEX, 0, NULL, CMD_RUN,
	  "drop the table's vector indexes for the load, rebuild them CONCURRENTLY after it" },
	{ "approve-provider-change", 0, O_APPROVE_PROVIDER, 0, NULL, CMD_RUN | CMD_SWAP,
	  "the owner approved a new provider or service host" },
	{ "with", 1, O_WITH, 0, "NEWCOLL", CMD_SWAP,
	  "the verified new collection that takes the collection's name" },
	{ "min-hit-rate", 1, O_MIN_HIT_RATE, 0, "R", CMD_SWAP,
	  "self-retrieval hit rate the new collection needs, 0..1 (default 0.8)" },
	{ "out", 1, O_OUT, 0, "FILE", CMD_PLAN, "also write the plan as JSON to FILE" },
	{ "query", 1, O_QUERY, 'q', "QUERY", CMD_SPOTCHECK,
	  "a query to run (repeatable); without it 5 chunks are sampled" },
	{ "top", 1, O_K, 'k', "N", CMD_SPOTCHECK, "chunks retrieved per query (default 5)" },
	{ "entries", 1, O_N, 'n', "N", CMD_HISTORY, "newest N entries (default 5)" },
	{ "dim", 1, O_DIM, 0, "N", CMD_SCHEMA | CMD_ADOPT,
	  "schema init, adopt: vector dimension (default EMBED_DIM)" },
	{ "provenance", 0, O_PROVENANCE, 0, NULL, CMD_VERIFY,
	  "also re-embed a sample and compare it with the stored vectors" },
	{ "sample", 1, O_SAMPLE, 0, "N", CMD_VERIFY | CMD_ADOPT,
	  "chunks the provenance probe re-embeds (default 20)" },
	{ "model", 1, O_MODEL, 0, "NAME", CMD_ADOPT,
	  "adopt: the model the vectors were made with (default EMBED_MODEL)" },
	{ "force", 0, O_FORCE, 0, NULL, CMD_ADOPT,
	  "adopt: also vectors recorded as another model or from other text" },
	{ "vector-type", 1, O_VECTOR_TYPE, 0, "auto|vector|halfvec|real[]", CMD_SCHEMA,
	  "schema init: pgvector's vector(N) or halfvec(N), real[], or vector when available (auto)" },
	{ "table", 1, O_TABLE, 0, "NAME", CMD_SCHEMA,
	  "schema detect: the table that holds the vectors, when several do" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const struct {
	const char *name;
	enum cli_cmd cmd;
	const char *args;
	const char *help;
} cmds[] = {
	{ "doctor", CMD_DOCTOR, "",
	  "settings with origins, database, schema and embedding service checks" },
	{ "status", CMD_STATUS, "[-C COLL]",
	  "chunks, embedded, missing and stale per collection" },
	{ "plan", CMD_PLAN, "-C COLL [--out FILE]",
	  "counts, batches, estimated duration, risks and the command to run" },
	{ "run", CMD_RUN, "-C COLL --confirm COLL [--batch-size N] [--concurrency K] [--dry-run]"
	  " [--resume | --join] [--into NEWCOLL [--rechunk]] [--backup] [--rebuild-index]"
	  " [--until HH:MM] [--note TEXT] [--historylog]",
	  "embed the collection's missing and stale chunks" },
	{ "stop", CMD_STOP, "-C COLL --confirm COLL",
	  "ask every worker of the collection's run to stop at its next checkpoint" },
	{ "verify", CMD_VERIFY, "-C COLL [--provenance [--sample N]]", "vector rows against "
	  "chunk rows, every discrepancy explained, isolation audit; which recipe made them" },
	{ "spot-check", CMD_SPOTCHECK, "-C COLL [-q QUERY]... [-k N]",
	  "retrieval with citations; self-retrieval hit rate when sampling" },
	{ "chunk", CMD_CHUNK, "-C COLL --into NEWCOLL",
	  "re-chunk the collection's documents into a new collection" },
	{ "swap", CMD_SWAP, "-C COLL --with NEWCOLL --confirm COLL [--min-hit-rate R]",
	  "the verified new collection takes the name; the old one is kept" },
	{ "rollback", CMD_ROLLBACK, "-C COLL",
	  "undo the collection's last swap, or restore its last backup" },
	{ "adopt", CMD_ADOPT, "-C COLL --confirm COLL [--model M] [--dim D] [--dry-run] [--force]",
	  "record the vectors a table already has as a model's, embedding nothing" },
	{ "history", CMD_HISTORY, "[-n N]", "the newest historylog entries" },
	{ "demo", CMD_NONE, "[--scenario NAME] [--keep | --stop]",
	  "the sandbox: throwaway database, embedder and corpus, then the console" },
	{ "schema", CMD_SCHEMA, "init [--dim N] | check | detect [--table NAME]",
	  "create the default layout, check the mapped one, or map the tables you have" },
	{ "tui", CMD_TUI, "[-C COLL]", "the operator console (also `embfill` alone on a terminal)" },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct opt *opt_by_id(int id)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].id == id || (opts[i].shortopt && opts[i].shortopt == id))
			return &opts[i];
	return NULL;
}

static void opt_line(FILE *f, const struct opt *o, bool with_help)
{
	char left[64];

	if (o->shortopt)
		snprintf(left, sizeof(left), "-%c, --%s%s%s", o->shortopt, o->name,
			 o->metavar ? " " : "", o->metavar ? o->metavar : "");
	else
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
	if (with_help)
		fprintf(f, "  %-28s %s\n", left, o->help);
	else
		fprintf(f, "%s\n", left);
}

void cli_list_options(FILE *f, enum cli_cmd cmd)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].cmds & cmd)
			opt_line(f, &opts[i], false);
}

/* The usage line names --json wherever the command takes it: the table of
 * options says where, so the two cannot disagree. */
static void usage_line(FILE *f, size_t i)
{
	const struct opt *json = opt_by_id(O_JSON);
	bool takes_json = cmds[i].cmd != CMD_NONE && (json->cmds & cmds[i].cmd);

	fprintf(f, "usage: embfill %s%s%s%s\n", cmds[i].name, cmds[i].args[0] ? " " : "",
		cmds[i].args, takes_json ? " [--json]" : "");
}

void cli_usage(FILE *f, enum cli_cmd cmd)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (cmd == CMD_NONE || cmds[i].cmd == cmd)
			usage_line(f, i);
	if (cmd == CMD_NONE) {
		fprintf(f, "\ncommands:\n");
		for (size_t i = 0; i < NCMDS; i++)
			fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
		fprintf(f, "\nglobal options:\n");
	} else {
		fprintf(f, "\noptions:\n");
	}
	for (size_t i = 0; i < NOPTS; i++)
		if ((cmd == CMD_NONE && opts[i].cmds == CMD_ALL) ||
		    (cmd != CMD_NONE && (opts[i].cmds & cmd)))
			opt_line(f, &opts[i], true);
	fprintf(f, "\nexit codes: 0 ok, 1 checks found problems, 2 usage or settings, "
		   "3 database,\n4 embedding service, 5 interrupted, 6 collection busy, "
		   "7 out of memory.\n"
		   "See embfill(1) and embfill.env(5).\n");
}

/* what "arg" rest, e.g. unknown command "x" */
static int usage_error(const char *what, const char *arg, const char *rest, const char *hint)
{
	struct ef_error err;

	ef_error_clear(&err);
	if (arg)
		ef_error_set(&err, EF_ERR_USAGE, "%s \"%.200s\"%s", what, arg, rest);
	else
		ef_error_set(&err, EF_ERR_USAGE, "%s%s", what, rest);
	ef_error_hint(&err, "%s", hint);
	return out_error(&err);
}

static int add_set(struct cli *cli, const char *key, const char *value, const char *flag)
{
	if (cli->nsets == (int)(sizeof(cli->sets) / sizeof(cli->sets[0])))
		return usage_error("too many settings flags", NULL, "", "use a settings file");
	cli->sets[cli->nsets].key = key;
	cli->sets[cli->nsets].value = value;
	cli->sets[cli->nsets].flag = flag;
	cli->nsets++;
	return 0;
}

static int parse_set(struct cli *cli, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t kl = eq ? (size_t)(eq - arg) : 0;
	char *kb = cli->set_buf[cli->nsets % 64];

	if (!eq || kl == 0 || kl >= sizeof(cli->set_buf[0]))
		return usage_error("--set", arg, " is not KEY=VALUE",
				   "write --set BATCH_SIZE=50; `man embfill.env` lists the keys");
	memcpy(kb, arg, kl);
	kb[kl] = '\0';
	return add_set(cli, kb, eq + 1, "--set");
}

static int take_option(struct cli *cli, int id, const char *arg)
{
	switch (id) {
	case O_CONFIG: cli->config = arg; break;
	case O_DSN: return add_set(cli, "DATABASE_URL", arg, "--dsn");
	case O_SET: return parse_set(cli, arg);
	case O_JSON: cli->json = true; break;
	case O_NO_COLOR: cli->no_color = true; break;
	case O_ASCII: cli->ascii = true; break;
	case O_VERSION: cli->version = true; break;
	case 'h': case O_HELP: cli->help = true; break;
	case 'C': case O_COLLECTION: cli->collection = arg; break;
	case O_DIM: cli->dim = arg; break;
	case O_VECTOR_TYPE: cli->vector_type = arg; break;
	case O_TABLE: cli->table = arg; break;
	case O_MODEL: cli->model = arg; break;
	case O_FORCE: cli->force = true; break;
	case O_PROVENANCE: cli->provenance = true; break;
	case O_SAMPLE: cli->sample = arg; break;
	case O_ONLY:
		if (strcmp(arg, "missing") != 0)
			return usage_error("--only", arg, " is not a selection embfill knows",
					   "--only missing embeds only chunks without a vector; "
					   "without --only, stale vectors are embedded again too");
		cli->only = arg;
		break;
	case O_BATCH_SIZE: return add_set(cli, "BATCH_SIZE", arg, "--batch-size");
	case O_CONCURRENCY: return add_set(cli, "EMBED_CONCURRENCY", arg, "--concurrency");
	case O_CONFIRM: cli->confirm = arg; break;
	case O_OUT: cli->out = arg; break;
	case O_UNTIL: cli->until = arg; break;
	case O_NOTE: cli->note = arg; break;
	case O_INTO: cli->into = arg; break;
	case O_WITH: cli->with = arg; break;
	case O_MIN_HIT_RATE: cli->min_hit_rate = arg; break;
	case O_BACKUP: cli->backup = true; break;
	case O_REBUILD_INDEX: cli->rebuild_index = true; break;
	case O_RECHUNK: cli->rechunk = true; break;
	case O_APPROVE_PROVIDER: cli->approve_provider = true; break;
	case 'k': case O_K: cli->k = arg; break;
	case 'n': case O_N: cli->n = arg; break;
	case O_DRY_RUN: cli->dry_run = true; break;
	case O_RESUME: cli->resume = true; break;
	case O_JOIN: cli->join = true; break;
	case O_HISTORYLOG: cli->historylog = true; break;
	case O_RETRY_QUARANTINED: cli->retry_quarantined = true; break;
	case 'q': case O_QUERY:
		if (cli->nqueries == (int)(sizeof(cli->queries) / sizeof(cli->queries[0])))
			return usage_error("at most 16 queries", NULL, "", "run spot-check again");
		cli->queries[cli->nqueries++] = arg;
		break;
	default: return EF_ERR_USAGE;
	}
	return 0;
}

static enum cli_cmd find_cmd(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return cmds[i].cmd;
	return CMD_NONE;
}

/* Every option is accepted anywhere on the line (getopt permutes), then
 * checked against the command, so `embfill status --dim 3` is refused
 * with a message instead of being silently ignored. */
static int check_applicable(struct cli *cli, const int *seen, int nseen)
{
	for (int i = 0; i < nseen; i++) {
		const struct opt *o = opt_by_id(seen[i]);
		if (o && !(o->cmds & cli->cmd)) {
			fprintf(stderr, "embfill: option --%s does not apply to `embfill %s`\n",
				o->name, cli->cmd_name);
			fprintf(stderr, "hint: `embfill %s --help` lists its options\n",
				cli->cmd_name);
			return EF_ERR_USAGE;
		}
	}
	return 0;
}

static int parse_positionals(struct cli *cli, int argc, char **argv)
{
	if (optind >= argc)
		return 0;
	cli->cmd_name = argv[optind];
	cli->cmd = find_cmd(argv[optind]);
	if (cli->cmd == CMD_NONE)
		return usage_error("unknown command", argv[optind], "",
				   "`embfill --help` lists the commands");
	if (++optind < argc && cli->cmd == CMD_SCHEMA)
		cli->sub = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind], "",
				   "options start with --; `embfill --help` lists them");
	return 0;
}

int cli_parse(int argc, char **argv, struct cli *cli)
{
	struct option lo[NOPTS + 1];
	char shorts[64] = "+";
	int seen[256], nseen = 0, c, rc;

	memset(lo, 0, sizeof(lo));
	shorts[0] = '\0';
	for (size_t i = 0; i < NOPTS; i++) {
		lo[i] = (struct option){ opts[i].name, opts[i].has_arg, NULL, opts[i].id };
		if (opts[i].shortopt) {
			size_t n = strlen(shorts);
			shorts[n] = opts[i].shortopt;
			shorts[n + 1] = '\0';
			if (opts[i].has_arg)
				strcat(shorts, ":");
		}
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == '?' || c == ':')
			return usage_error("unknown option or missing value:", argv[optind - 1], "",
					   "`embfill --help` lists the options");
		if (nseen < 256)
			seen[nseen++] = c;
		if ((rc = take_option(cli, c, optarg)) != 0)
			return rc;
	}
	if ((rc = parse_positionals(cli, argc, argv)) != 0)
		return rc;
	if (cli->cmd != CMD_NONE)
		return check_applicable(cli, seen, nseen);
	return 0;
}
