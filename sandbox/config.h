/*
 * config.h - command line of the sandbox embedder (embfill-embedder).
 *
 * The embedder is a stand-in for a team's embedding service: it speaks the
 * Ollama, OpenAI and TEI embedding APIs on one loopback port and can plant
 * the faults a real service shows (latency, 429s, 5xx, bad vectors, dropped
 * connections) so that embfill's client can be trained and tested on them.
 */
#ifndef SBX_CONFIG_H
#define SBX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBX_MAX_MODELS 16
#define SBX_USE_LITE_DIM 512

enum sbx_backend { SBX_BACKEND_HASH, SBX_BACKEND_USE_LITE };

/* What POST /v1/embeddings is, for a test that plays a TEI whose OpenAI
 * route is missing or gives other vectors than its /embed. */
enum sbx_openai_route {
	SBX_OPENAI_SERVE = 0,             /* the OpenAI API, as always */
	SBX_OPENAI_MISSING,               /* 404, as a server without the route */
	SBX_OPENAI_OTHER,                 /* vectors of another model: each rotated by one */
};

struct sbx_config {
	int port;
	const char *port_file;
	int dim;
	enum sbx_backend backend;
	char *model_list;                 /* owned copy of --model, split in place */
	const char *models[SBX_MAX_MODELS];
	size_t n_models;
	uint64_t seed;
	long latency_ms;
	long item_latency_ms;
	double fail_500;
	double fail_429;
	long retry_after_s;
	long retry_after_ms;              /* -1: no retry-after-ms header */
	bool retry_after_given;           /* --retry-after or --retry-after-ms */
	long max_batch;                   /* 0: unlimited */
	size_t max_body_bytes;
	bool max_body_given;
	long max_input_chars;             /* 0: unlimited */
	long compute_slots;               /* 0: unlimited */
	const char *cache_dir;            /* NULL: no vector cache */
	double malformed_rate;
	double wrong_dim_rate;
	double nan_rate;
	double zero_rate;                 /* fraction of inputs, by text */
	double huge_rate;
	double wrong_count_rate;
	double shuffle_rate;
	double drop_rate;
	const char *reject_marker;        /* NULL: none */
	char *api_key;                    /* owned; NULL: no auth */
	long fail_first;
	int fail_status;
	double loading_seconds;
	const char *node_modules;         /* NULL: search next to the program */
	long parent_pid;                  /* 0: outlive the parent */
	bool verbose;
	bool ignore_base64;               /* answer numbers to encoding_format base64 */
	bool refuse_base64;               /* answer 400 to encoding_format base64 */
	enum sbx_openai_route openai_route;
	long openai_latency_ms;           /* extra delay of /v1/embeddings only */
};

/*
 * Parses argv into cfg.  Returns -1 when the server should start, or the
 * exit code to leave with (0 after --help/--version, 2 on a usage error,
 * already reported on stderr).  Free with sbx_config_free() either way.
 */
int sbx_config_parse(struct sbx_config *cfg, int argc, char **argv);

void sbx_config_free(struct sbx_config *cfg);

/* True when name is one of the models the server was started with. */
bool sbx_config_has_model(const struct sbx_config *cfg, const char *name);

#endif
