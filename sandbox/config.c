/*
 * config.c - flags of embfill-embedder, validated up front.
 *
 * Every value is checked before the server starts, so a typo in a training
 * script fails at once with exit 2 and the flag's name, instead of turning
 * into a server that quietly plants no faults.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "embfill-embedder"
#define KEY_MAX 4096
#define DEFAULT_BODY_LIMIT ((size_t)64 << 20)
#define MS_MAX 600000L

enum opt_id {
	OPT_HELP = 'h',
	OPT_PORT = 256, OPT_PORT_FILE, OPT_DIM, OPT_BACKEND, OPT_MODEL, OPT_SEED,
	OPT_LATENCY, OPT_ITEM_LATENCY, OPT_FAIL_500, OPT_FAIL_429, OPT_RETRY_AFTER,
	OPT_RETRY_AFTER_MS, OPT_MAX_BATCH, OPT_MAX_BODY, OPT_MAX_CHARS,
	OPT_MALFORMED, OPT_WRONG_DIM, OPT_NAN, OPT_WRONG_COUNT, OPT_SHUFFLE,
	OPT_DROP, OPT_REJECT, OPT_KEY_FILE, OPT_FAIL_FIRST, OPT_FAIL_STATUS,
	OPT_LOADING, OPT_NODE_MODULES, OPT_PARENT_PID, OPT_VERBOSE, OPT_VERSION,
	OPT_COMPUTE_SLOTS, OPT_CACHE_DIR,
	OPT_ZERO, OPT_HUGE, OPT_IGNORE_B64, OPT_REFUSE_B64, OPT_OPENAI_ROUTE,
	OPT_OPENAI_LATENCY,
};

struct opt_doc {
	const char *name;
	const char *arg;	/* NULL: the flag takes no value */
	int id;
	const char *help;
};

/* One table feeds both getopt_long and --help, so they cannot disagree. */
static const struct opt_doc docs[] = {
	{"port", "N", OPT_PORT, "TCP port on 127.0.0.1; 0 picks a free one (default 0)"},
	{"port-file", "FILE", OPT_PORT_FILE, "also write the chosen port to FILE"},
	{"dim", "D", OPT_DIM, "vector dimension (default 768; use-lite: 512 only)"},
	{"backend", "NAME", OPT_BACKEND, "hash (default, instant) or use-lite (Universal Sentence Encoder Lite)"},
	{"model", "NAME[,NAME...]", OPT_MODEL, "accepted model names (default embfill-hash; use-lite: embfill-use-lite)"},
	{"seed", "S", OPT_SEED, "seed of the fault dice; same seed and requests, same faults (default 1)"},
	{"latency-ms", "L", OPT_LATENCY, "answer every embed request L ms after it arrived, its own work included (--compute-slots: L ms in its slot)"},
	{"item-latency-ms", "L", OPT_ITEM_LATENCY, "extra delay of L ms per input computed (a cache hit: none)"},
	{"compute-slots", "N", OPT_COMPUTE_SLOTS, "compute at most N requests at once, the others wait in order"},
	{"cache-dir", "DIR", OPT_CACHE_DIR, "keep computed vectors in DIR; known texts are not computed again"},
	{"fail-500", "RATE", OPT_FAIL_500, "answer this fraction of requests with 500"},
	{"fail-429", "RATE", OPT_FAIL_429, "answer this fraction with 429 (+Retry-After; TEI: none)"},
	{"retry-after", "SECONDS", OPT_RETRY_AFTER, "Retry-After value of 429 answers (default 1)"},
	{"retry-after-ms", "MS", OPT_RETRY_AFTER_MS, "also send a retry-after-ms header"},
	{"max-batch", "N", OPT_MAX_BATCH, "reject batches of more than N inputs (TEI 422, others 413)"},
	{"max-body-bytes", "N", OPT_MAX_BODY, "reject larger bodies with a plain-text 413 (default 64 MiB)"},
	{"max-input-chars", "N", OPT_MAX_CHARS, "context length: longer inputs are refused, or cut if the request allows"},
	{"malformed-rate", "RATE", OPT_MALFORMED, "answer 200 with truncated JSON"},
	{"wrong-dim-rate", "RATE", OPT_WRONG_DIM, "answer with vectors of dimension D+1 or D-1"},
	{"nan-rate", "RATE", OPT_NAN, "put NaN or 1e999 into one vector"},
	{"zero-rate", "RATE", OPT_ZERO, "answer an all-zero vector for this fraction of inputs (the same texts every time)"},
	{"huge-rate", "RATE", OPT_HUGE, "scale this fraction of inputs' vectors to norm 1e29 (the same texts every time)"},
	{"ignore-base64", NULL, OPT_IGNORE_B64, "openai: answer numbers even to encoding_format \"base64\""},
	{"refuse-base64", NULL, OPT_REFUSE_B64, "openai: answer 400 naming encoding_format to \"base64\""},
	{"openai-route", "MODE", OPT_OPENAI_ROUTE, "POST /v1/embeddings: serve (default), missing (404, a TEI without the route) or other (vectors of another model)"},
	{"openai-latency-ms", "L", OPT_OPENAI_LATENCY, "delay POST /v1/embeddings alone by L ms more (a slower route)"},
	{"wrong-count-rate", "RATE", OPT_WRONG_COUNT, "answer with one vector fewer than asked"},
	{"shuffle-rate", "RATE", OPT_SHUFFLE, "openai: return data items out of order (index fields stay right)"},
	{"drop-rate", "RATE", OPT_DROP, "close the connection halfway through the body"},
	{"reject-marker", "STR", OPT_REJECT, "fail any batch holding an input that contains STR, naming its index"},
	{"api-key-file", "FILE", OPT_KEY_FILE, "require 'Authorization: Bearer <FILE contents>', else 401"},
	{"fail-first", "N", OPT_FAIL_FIRST, "fail the first N embed requests with --fail-status"},
	{"fail-status", "CODE", OPT_FAIL_STATUS, "their status (default 503); Retry-After only with --retry-after(-ms)"},
	{"loading-seconds", "S", OPT_LOADING, "answer 503 \"model is loading\" for the first S seconds"},
	{"node-modules", "DIR", OPT_NODE_MODULES, "node_modules holding @energetic-ai (or EMBFILL_NODE_MODULES)"},
	{"parent-pid", "PID", OPT_PARENT_PID, "exit when process PID, the parent, exits (test harnesses)"},
	{"verbose", NULL, OPT_VERBOSE, "one access-log line per request on stderr (never bodies or keys)"},
	{"version", NULL, OPT_VERSION, "print the version"},
	{"help", NULL, OPT_HELP, "this text"},
};

#define N_DOCS (sizeof(docs) / sizeof(docs[0]))

__attribute__((format(printf, 1, 2)))
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nhint: run `" PROG " --help` for the flags and their ranges\n", stderr);
}

static void print_help(void)
{
	printf("usage: " PROG " [flags]\n\n"
	       "Sandbox embedding service on 127.0.0.1: Ollama POST /api/embed, OpenAI\n"
	       "POST /v1/embeddings, TEI POST /embed; GET /health, GET /stats,\n"
	       "POST /stats/reset.  Prints `listening on 127.0.0.1:PORT` when ready.\n"
	       "RATE is a fraction between 0 and 1.  Requests may set \"dimensions\" (openai,\n"
	       "ollama), \"truncate\" (ollama: default true; tei: default false) and\n"
	       "\"normalize\" (tei).  With --compute-slots, a request computes in a slot\n"
	       "for L + inputs x item latency.\n\n");
	for (size_t i = 0; i < N_DOCS; i++)
		printf("  --%s%s%s\n        %s\n", docs[i].name, docs[i].arg ? " " : "",
		       docs[i].arg ? docs[i].arg : "", docs[i].help);
}

static void build_longopts(struct option *lo)
{
	for (size_t i = 0; i < N_DOCS; i++) {
		lo[i].name = docs[i].name;
		lo[i].has_arg = docs[i].arg ? required_argument : no_argument;
		lo[i].flag = NULL;
		lo[i].val = docs[i].id;
	}
	memset(&lo[N_DOCS], 0, sizeof(lo[N_DOCS]));
}

static bool parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		usage_error("--%s \"%s\" is not a whole number from %ld to %ld", flag, s, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

static bool parse_double(const char *flag, const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
		usage_error("--%s \"%s\" is not a number from %g to %g", flag, s, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

static bool parse_seed(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || strchr(s, '-') != NULL) {
		usage_error("--seed \"%s\" is not an unsigned 64-bit number", s);
		return false;
	}
	*out = (uint64_t)v;
	return true;
}

static bool parse_models(struct sbx_config *cfg, const char *s)
{
	char *save = NULL;

	free(cfg->model_list);
	cfg->model_list = strdup(s);
	cfg->n_models = 0;
	if (cfg->model_list == NULL)
		return false;
	for (char *tok = strtok_r(cfg->model_list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (cfg->n_models == SBX_MAX_MODELS) {
			usage_error("--model lists more than %d names", SBX_MAX_MODELS);
			return false;
		}
		cfg->models[cfg->n_models++] = tok;
	}
	if (cfg->n_models == 0) {
		usage_error("--model \"%s\" names no model", s);
		return false;
	}
	return true;
}

/*
 * Reads the key once at startup.  Error messages name the file, never its
 * contents: a key file with a stray second line must not end up on a screen.
 */
static bool read_key_file(struct sbx_config *cfg, const char *path)
{
	char buf[KEY_MAX + 1];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		usage_error("--api-key-file \"%s\" cannot be read: %s", path, strerror(errno));
		return false;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n > KEY_MAX) {
		usage_error("--api-key-file \"%s\" is unreadable or longer than %d bytes", path, KEY_MAX);
		return false;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (n == 0 || memchr(buf, '\n', (size_t)n) || memchr(buf, '\0', (size_t)n)) {
		usage_error("--api-key-file \"%s\" must hold one non-empty line", path);
		return false;
	}
	free(cfg->api_key);
	cfg->api_key = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return cfg->api_key != NULL;
}

static bool parse_backend(struct sbx_config *cfg, const char *s)
{
	if (strcmp(s, "hash") == 0)
		cfg->backend = SBX_BACKEND_HASH;
	else if (strcmp(s, "use-lite") == 0)
		cfg->backend = SBX_BACKEND_USE_LITE;
	else {
		usage_error("--backend \"%s\" is not hash or use-lite", s);
		return false;
	}
	return true;
}

static bool parse_openai_route(struct sbx_config *cfg, const char *s)
{
	if (strcmp(s, "serve") == 0)
		cfg->openai_route = SBX_OPENAI_SERVE;
	else if (strcmp(s, "missing") == 0)
		cfg->openai_route = SBX_OPENAI_MISSING;
	else if (strcmp(s, "other") == 0)
		cfg->openai_route = SBX_OPENAI_OTHER;
	else {
		usage_error("--openai-route \"%s\" is not serve, missing or other", s);
		return false;
	}
	return true;
}

static bool set_long(const char *flag, const char *s, long lo, long hi, int *out)
{
	long v;

	if (!parse_long(flag, s, lo, hi, &v))
		return false;
	*out = (int)v;
	return true;
}

static bool set_size(const char *flag, const char *s, size_t *out)
{
	long v;

	if (!parse_long(flag, s, 1, 1L << 40, &v))
		return false;
	*out = (size_t)v;
	return true;
}

/* Flat dispatch from flag to field; each case validates its own range. */
static bool apply_option(struct sbx_config *c, int id, const char *name, const char *a)
{
	switch (id) {
	case OPT_PORT: return set_long(name, a, 0, 65535, &c->port);
	case OPT_PORT_FILE: c->port_file = a; return true;
	case OPT_DIM: return set_long(name, a, 1, 65536, &c->dim);
	case OPT_BACKEND: return parse_backend(c, a);
	case OPT_MODEL: return parse_models(c, a);
	case OPT_SEED: return parse_seed(a, &c->seed);
	case OPT_LATENCY: return parse_long(name, a, 0, MS_MAX, &c->latency_ms);
	case OPT_ITEM_LATENCY: return parse_long(name, a, 0, MS_MAX, &c->item_latency_ms);
	case OPT_FAIL_500: return parse_double(name, a, 0, 1, &c->fail_500);
	case OPT_FAIL_429: return parse_double(name, a, 0, 1, &c->fail_429);
	case OPT_RETRY_AFTER:
		c->retry_after_given = true;
		return parse_long(name, a, 0, 86400, &c->retry_after_s);
	case OPT_RETRY_AFTER_MS:
		c->retry_after_given = true;
		return parse_long(name, a, 0, 86400000L, &c->retry_after_ms);
	case OPT_MAX_BATCH: return parse_long(name, a, 1, 1000000, &c->max_batch);
	case OPT_MAX_BODY:
		c->max_body_given = true;
		return set_size(name, a, &c->max_body_bytes);
	case OPT_MAX_CHARS: return parse_long(name, a, 1, 100000000L, &c->max_input_chars);
	case OPT_MALFORMED: return parse_double(name, a, 0, 1, &c->malformed_rate);
	case OPT_WRONG_DIM: return parse_double(name, a, 0, 1, &c->wrong_dim_rate);
	case OPT_NAN: return parse_double(name, a, 0, 1, &c->nan_rate);
	case OPT_ZERO: return parse_double(name, a, 0, 1, &c->zero_rate);
	case OPT_HUGE: return parse_double(name, a, 0, 1, &c->huge_rate);
	case OPT_IGNORE_B64: c->ignore_base64 = true; return true;
	case OPT_REFUSE_B64: c->refuse_base64 = true; return true;
	case OPT_OPENAI_ROUTE: return parse_openai_route(c, a);
	case OPT_OPENAI_LATENCY: return parse_long(name, a, 0, MS_MAX, &c->openai_latency_ms);
	case OPT_WRONG_COUNT: return parse_double(name, a, 0, 1, &c->wrong_count_rate);
	case OPT_SHUFFLE: return parse_double(name, a, 0, 1, &c->shuffle_rate);
	case OPT_DROP: return parse_double(name, a, 0, 1, &c->drop_rate);
	case OPT_REJECT:
		if (*a == '\0') {
			usage_error("--reject-marker must not be empty");
			return false;
		}
		c->reject_marker = a;
		return true;
	case OPT_KEY_FILE: return read_key_file(c, a);
	case OPT_FAIL_FIRST: return parse_long(name, a, 0, 1000000000L, &c->fail_first);
	case OPT_FAIL_STATUS: return set_long(name, a, 400, 599, &c->fail_status);
	case OPT_LOADING: return parse_double(name, a, 0, 86400, &c->loading_seconds);
	case OPT_NODE_MODULES: c->node_modules = a; return true;
	case OPT_PARENT_PID: return parse_long(name, a, 1, INT_MAX, &c->parent_pid);
	case OPT_VERBOSE: c->verbose = true; return true;
	case OPT_COMPUTE_SLOTS: return parse_long(name, a, 0, 4096, &c->compute_slots);
	case OPT_CACHE_DIR:
		if (*a == '\0') {
			usage_error("--cache-dir must not be empty");
			return false;
		}
		c->cache_dir = a;
		return true;
	default: return false;
	}
}

static void set_defaults(struct sbx_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->seed = 1;
	cfg->retry_after_s = 1;
	cfg->retry_after_ms = -1;
	cfg->fail_status = 503;
	cfg->max_body_bytes = DEFAULT_BODY_LIMIT;
}

/* Defaults that depend on the backend are settled after every flag is read. */
static int finish(struct sbx_config *cfg)
{
	bool lite = cfg->backend == SBX_BACKEND_USE_LITE;

	if (lite && cfg->dim != 0 && cfg->dim != SBX_USE_LITE_DIM) {
		usage_error("--dim %d cannot be served by use-lite, which always returns %d dimensions",
			    cfg->dim, SBX_USE_LITE_DIM);
		return 2;
	}
	if (cfg->ignore_base64 && cfg->refuse_base64) {
		usage_error("--ignore-base64 and --refuse-base64 exclude each other");
		return 2;
	}
	if (cfg->dim == 0)
		cfg->dim = lite ? SBX_USE_LITE_DIM : 768;
	if (cfg->n_models == 0 && !parse_models(cfg, lite ? "embfill-use-lite" : "embfill-hash"))
		return 2;
	if (cfg->node_modules == NULL)
		cfg->node_modules = getenv("EMBFILL_NODE_MODULES");
	return -1;
}

static int lookup_name(int id, const char **name)
{
	for (size_t i = 0; i < N_DOCS; i++)
		if (docs[i].id == id) {
			*name = docs[i].name;
			return 0;
		}
	return -1;
}

int sbx_config_parse(struct sbx_config *cfg, int argc, char **argv)
{
	struct option lo[N_DOCS + 1];
	const char *name = "";
	int id;

	set_defaults(cfg);
	build_longopts(lo);
	opterr = 0;
	while ((id = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (id == OPT_HELP) {
			print_help();
			return 0;
		}
		if (id == OPT_VERSION) {
			printf(PROG " " EF_VERSION "\n");
			return 0;
		}
		if (id == '?' || id == ':') {
			usage_error("%s \"%s\"", id == ':' ? "missing value for" : "unknown flag",
				    argv[optind - 1]);
			return 2;
		}
		if (lookup_name(id, &name) != 0 || !apply_option(cfg, id, name, optarg))
			return 2;
	}
	if (optind < argc) {
		usage_error("unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	return finish(cfg);
}

void sbx_config_free(struct sbx_config *cfg)
{
	free(cfg->model_list);
	cfg->model_list = NULL;
	if (cfg->api_key != NULL) {
		explicit_bzero(cfg->api_key, strlen(cfg->api_key));
		free(cfg->api_key);
		cfg->api_key = NULL;
	}
}

bool sbx_config_has_model(const struct sbx_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_models; i++)
		if (strcmp(cfg->models[i], name) == 0)
			return true;
	return false;
}
