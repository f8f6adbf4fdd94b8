/*
 * embed.h - the embedding service client: one interface over ollama,
 * OpenAI-compatible servers and text-embeddings-inference.
 *
 * Nothing reaches the caller before the response has been checked: HTTP
 * status, JSON shape, item count, order, dimension, and vectors that can be
 * used (finite values, not all zero, a norm of at most 1e6).  A failure is
 * handled inside the client according to its class:
 *
 *   unavailable connect failure, timeout, dropped connection, 429, 408,
 *               5xx: the service is not there or not coping.  The endpoint
 *               is rested (exponential backoff with full jitter, at least
 *               what Retry-After or retry-after-ms asks) and the request
 *               goes to another endpoint, or to this one when its rest is
 *               over.  With a retry budget, EF_ERR_EMBED once every
 *               endpoint has been failing for longer than it; without one,
 *               after max_attempts attempts of one request.
 *   unusable    a malformed or inconsistent 200: the service answered,
 *               wrongly; retried after a backoff, EF_ERR_EMBED after
 *               max_attempts attempts.  An unusable vector for the same
 *               input twice in a row is that input's: it is asked for
 *               alone, and rejected when it fails alone again.
 *   too large   413, batch-limit 422, context-length errors: the batch is
 *               split in halves and each half is retried.
 *   rejected    an input that fails alone with a 4xx input error, or
 *               whose vector is unusable, comes back flagged as rejected
 *               with the reason, so the run can quarantine it; the other
 *               inputs succeed.
 *   fatal       401/403, model not found, every vector of another dimension
 *               than expected, quota exhausted, TLS failure: the endpoint is
 *               refused (out of rotation for the pool's life); with no
 *               endpoint left, EF_ERR_EMBED with the cause and the fix, and
 *               the pool stops.
 *
 * A configuration may name several endpoints of one service and model
 * (EMBED_URL "http://gpu1:8080,http://gpu2:8080", urllist.h).  A pool
 * keeps up to `concurrency` requests in flight on each, and gives every
 * request to the endpoint with the most free capacity.
 *
 * No message made here contains the API key, the URL's userinfo or its
 * query string.
 *
 * The caller must have called curl_global_init(CURL_GLOBAL_DEFAULT) before
 * any thread starts and before the first function of this module; the
 * module never calls it, because it is not thread-safe.
 */
#ifndef EMBFILL_EMBED_H
#define EMBFILL_EMBED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "embfill/error.h"

enum ef_embed_provider {
	EF_EMBED_NONE = 0,
	EF_EMBED_OLLAMA,        /* POST {url}/api/embed */
	EF_EMBED_OPENAI,        /* POST {url}/v1/embeddings */
	EF_EMBED_TEI,           /* POST {url}/embed */
};

/*
 * How an OpenAI-compatible service is asked to send vectors (its
 * "encoding_format"): base64 of little-endian float32 is a quarter of the
 * bytes of decimal numbers and costs no parsing.  ollama and tei have no
 * such parameter and always send numbers.
 */
enum ef_embed_encoding {
	EF_EMBED_ENC_AUTO = 0,      /* base64; numbers for a service that refuses or ignores it */
	EF_EMBED_ENC_BASE64,        /* base64 only: a refusal stops the pool */
	EF_EMBED_ENC_FLOAT,         /* decimal numbers only */
};

/*
 * Where a text-embeddings-inference endpoint is driven.  TEI serves its own
 * POST /embed (decimal numbers) and an OpenAI-compatible POST
 * /v1/embeddings that can send base64.  Under EMBED_ENCODING=auto a run
 * (ef_embed_pool_verify) and doctor ask both routes for the same probe
 * texts, and drive the endpoint through the OpenAI route, base64, when its
 * vectors are the same (EF_EMBED_ROUTE_COSINE, and the same norm) and it is
 * not slower; otherwise /embed, remembered for the pool's life.  The vectors
 * are the same either way, so the recipe is too.
 */
enum ef_embed_route {
	EF_EMBED_ROUTE_NATIVE = 0,  /* the provider's own path (tei: /embed, numbers) */
	EF_EMBED_ROUTE_OPENAI,      /* tei's /v1/embeddings, base64 */
};

/*
 * The same model in the same server, so the same vectors bit for bit on a
 * deterministic backend; a GPU server batching requests together may still
 * differ in the last bits of a component (another summation order), which
 * an exact comparison would take for another model.  Ten times stricter
 * than EF_EMBED_SAME_COSINE between servers; norms must agree within
 * EF_EMBED_ROUTE_NORM (relative), since a cosine cannot see normalisation.
 */
#define EF_EMBED_ROUTE_COSINE 0.9999
#define EF_EMBED_ROUTE_NORM 1e-4

/* What the route probe found for one endpoint. */
struct ef_embed_route_info {
	enum ef_embed_route route;
	bool probed;               /* /v1/embeddings was asked */
	long status;               /* its last HTTP status; 0: no answer or not asked */
	double native_ms;          /* the fastest probe on each route (request and
				      reading the answer, without connecting); -1 unknown */
	double openai_ms;
	double cosine;             /* the lowest cosine between the routes' vectors; -2 unknown */
	char why[256];             /* e.g. "same vectors as /embed (...)", "/v1/embeddings
				      answered HTTP 404" */
};

/*
 * Everything the client needs, decoupled from the settings module.  The
 * strings are borrowed: a pool copies what it keeps.  Zero in a number
 * means "the default" (see ef_embed_config_defaults).
 */
struct ef_embed_config {
	enum ef_embed_provider provider;
	const char *url;            /* base URL, http or https; trailing '/' ok; or
				       several, separated by commas (urllist.h) */
	const char *model;          /* required by ollama and openai */
	int dim;                    /* expected dimension; 0 only for a probe */
	const char *api_key;        /* bearer token or NULL */
	const char *ca_file;        /* PEM bundle trusted besides the system's CA
				       directory, or NULL; TLS is always verified */
	long connect_timeout_ms;    /* default 10000 */
	long timeout_ms;            /* whole request, default 120000 */
	unsigned max_attempts;      /* per request, default 5: for unusable answers,
				       and for unavailability without a budget */
	long retry_budget_ms;       /* how long every endpoint may be unavailable before
				       the pool gives up; 0: count attempts instead */
	long backoff_base_ms;       /* default 500 */
	long backoff_max_ms;        /* default 30000 */
	long retry_after_max_ms;    /* cap on a server's Retry-After, default 60000 */
	unsigned reject_streak_max; /* rejected inputs in a row before stopping, default 50 */
	unsigned long long jitter_seed; /* 0: seeded from the clock */
	enum ef_embed_encoding encoding; /* openai; tei: auto probes the OpenAI route,
					    base64 insists on it, float keeps /embed */
	struct ef_embed_switches {   /* the recipe's switches (recipe.h) */
		int dimensions;      /* "dimensions" (openai, ollama); 0 not sent */
		bool truncate;       /* "truncate" (ollama, tei); openai has none */
		int normalize;       /* "normalize" (tei): 0 not sent, 1 true, -1 false */
	} sw;
};

/* Fills cfg with the defaults (provider and strings left empty; switches:
 * no dimensions, no truncation, the service's normalisation). */
void ef_embed_config_defaults(struct ef_embed_config *cfg);

/* Checks cfg for what would fail at every request: EF_ERR_USAGE if bad. */
ef_status ef_embed_config_check(const struct ef_embed_config *cfg, struct ef_error *err);

/* "ollama", "openai", "tei", or "none". */
const char *ef_embed_provider_name(enum ef_embed_provider p);

/* "auto", "base64" or "float". */
const char *ef_embed_encoding_name(enum ef_embed_encoding e);

/*
 * The encoding EMBED_ENCODING names; auto for NULL, "" or a name the
 * settings would have refused.
 */
enum ef_embed_encoding ef_embed_encoding_from(const char *name);

/* Parses a provider name as EMBED_PROVIDER spells it; EF_ERR_USAGE if unknown. */
ef_status ef_embed_provider_parse(const char *name, enum ef_embed_provider *out,
				  struct ef_error *err);

/*
 * Reads an API key file (EMBED_API_KEY_FILE): one line, trailing newline
 * and blanks stripped.  Refuses an empty file, a key with inner blanks or
 * control characters, and a file readable by group or others.  On success
 * *out is a malloc'ed string the caller frees (and should wipe).
 */
ef_status ef_embed_read_key_file(const char *path, char **out, struct ef_error *err);

/* --- results ------------------------------------------------------------ */

/* One finished batch: every input has a vector or is rejected. */
struct ef_embed_result {
	void *tag;                /* as given to ef_embed_pool_submit */
	size_t n;                 /* inputs */
	int dim;                  /* the expected dimension */
	float *vectors;           /* n * dim; row i is input i; zeros if rejected */
	unsigned char *rejected;  /* n flags */
	char **reasons;           /* n; the service's reason, NULL unless rejected */
	size_t n_rejected;
	unsigned retries, splits; /* spent on this batch */
	double elapsed_ms;        /* from submit to the last answer */
};

void ef_embed_result_free(struct ef_embed_result *res);

struct ef_embed_counters {
	unsigned long requests;   /* HTTP requests started */
	unsigned long retries;    /* requests repeated after a transient failure */
	unsigned long splits;     /* batches split in halves */
	unsigned long rejected;   /* inputs rejected alone */
	unsigned long batches;    /* results handed back */
	unsigned in_flight;       /* requests on the wire now */
	unsigned in_flight_max;   /* most ever on the wire at once */
	unsigned long answers_base64;  /* answers whose vectors came as base64 */
	unsigned long answers_float;   /* answers whose vectors came as numbers */
	unsigned long base64_refused;  /* requests the service refused for asking base64 */
	double parse_ms;               /* time spent reading and checking answers */
};

/* --- the pool: several requests in flight over curl multi ---------------- */

typedef struct ef_embed_pool ef_embed_pool;

/*
 * Creates a pool that keeps at most `concurrency` (1..64) requests in
 * flight on each endpoint of cfg->url.  The pool and its curl handles
 * belong to the thread that calls it; only ef_embed_pool_wakeup may be
 * called from another thread.
 */
ef_status ef_embed_pool_new(const struct ef_embed_config *cfg, unsigned concurrency,
			    ef_embed_pool **out, struct ef_error *err);

/*
 * Flags owned by the caller, read by the pool (either may be NULL).
 * cancel != 0: transfers abort from curl's progress callback and
 * ef_embed_pool_next returns EF_ERR_INTERRUPTED.  pause != 0: no new
 * request starts (a request on the wire finishes, so that no server work is
 * thrown away); clearing it resumes.
 */
void ef_embed_pool_set_flags(ef_embed_pool *pool, const atomic_int *cancel,
			     const atomic_int *pause);

/* Queues a batch; the pool copies the texts.  n may be 0. */
ef_status ef_embed_pool_submit(ef_embed_pool *pool, void *tag, const char *const *texts,
			       size_t n, struct ef_error *err);

/*
 * Drives the transfers, retries, backoff timers and splits for up to
 * timeout_ms (-1: until a batch is finished; 0: one pass) and hands back
 * one finished batch in *done (the caller frees it), or NULL when none
 * finished in time or nothing is queued.  Finished batches are handed back
 * before an error; after a fatal error or a cancel, every later call
 * returns the same error and the unfinished batches are dropped.
 */
ef_status ef_embed_pool_next(ef_embed_pool *pool, int timeout_ms,
			     struct ef_embed_result **done, struct ef_error *err);

/* Requests on the wire now. */
unsigned ef_embed_pool_in_flight(const ef_embed_pool *pool);

/* Batches submitted and not yet handed back. */
size_t ef_embed_pool_pending(const ef_embed_pool *pool);

void ef_embed_pool_counters(const ef_embed_pool *pool, struct ef_embed_counters *out);

/*
 * The encoding the pool asks for now: BASE64 or FLOAT, never AUTO.  Under
 * EMBED_ENCODING=auto it starts with base64 and turns to float for the rest
 * of the pool's life once the service refuses base64 or answers with
 * numbers instead.
 */
enum ef_embed_encoding ef_embed_pool_encoding(const ef_embed_pool *pool);

/* Wakes a pool waiting in ef_embed_pool_next; safe from any thread. */
void ef_embed_pool_wakeup(ef_embed_pool *pool);

/* Requests the pool keeps in flight at most: concurrency times the
 * endpoints not refused. */
unsigned ef_embed_pool_capacity(const ef_embed_pool *pool);

/*
 * Withdraws every batch not finished yet: its requests are dropped (those
 * on the wire aborted), and its tag is stored in tags (up to max of them;
 * the rest are dropped all the same).  Returns how many were withdrawn.
 * Finished batches stay, to be handed back.  For a caller that stops while
 * the service is away: the batches were not embedded, and are redone.
 */
size_t ef_embed_pool_withdraw(ef_embed_pool *pool, void **tags, size_t max);

/* --- endpoints --------------------------------------------------------------- */

#define EF_EMBED_MAX_ENDPOINTS 16

enum ef_embed_ep_state {
	EF_EMBED_EP_UP = 0,        /* answering */
	EF_EMBED_EP_RESTING,       /* failed: no request until the rest is over */
	EF_EMBED_EP_UNVERIFIED,    /* not yet proven to give the reference's vectors */
	EF_EMBED_EP_REFUSED,       /* out of rotation: other vectors, or a refusal */
};

/* "up", "resting", "unverified", "refused". */
const char *ef_embed_ep_state_name(enum ef_embed_ep_state s);

struct ef_embed_endpoint_stat {
	char url[160];             /* the endpoint, without userinfo or query */
	enum ef_embed_ep_state state;
	unsigned in_flight, capacity;
	unsigned long requests;    /* started */
	unsigned long errors;      /* failed: unavailable, unusable or refused */
	unsigned long items;       /* inputs it embedded */
	double rate;               /* items per second over the last seconds */
	time_t down_since;         /* wall clock of the first failure in a row; 0 up */
	double retry_in_s;         /* resting: seconds until it is tried again */
	char last_error[200];      /* the newest failure, "" none */
};

/* Number of endpoints of the pool. */
size_t ef_embed_pool_endpoint_count(const ef_embed_pool *pool);

/* Fills out[0..max) with each endpoint's state; returns how many. */
size_t ef_embed_pool_endpoints(ef_embed_pool *pool, struct ef_embed_endpoint_stat *out,
			       size_t max);

/*
 * Whether the pool waits for the service: work is queued and no endpoint
 * is up.  *since is when the last endpoint went (wall clock); *retry_in_s
 * how long until the next endpoint is tried.
 */
bool ef_embed_pool_waiting(ef_embed_pool *pool, time_t *since, double *retry_in_s);

/*
 * Takes the oldest note the pool left for the caller's log (an endpoint
 * failing, resting, back, refused), redacted; false when there is none.
 */
bool ef_embed_pool_note(ef_embed_pool *pool, char *buf, size_t size);

/* --- one vector space across endpoints ------------------------------------------ */

/* Texts every endpoint is asked, the same for all, and how close their
 * vectors must be: the cosine of each pair. */
#define EF_EMBED_PROBE_TEXTS 2
#define EF_EMBED_SAME_COSINE 0.999
extern const char *const ef_embed_probe_texts[EF_EMBED_PROBE_TEXTS];

/*
 * From now on no endpoint gets work before its vectors for texts[0..n)
 * (each with the recipe's prefix, as the run gives chunks) match the
 * reference: ref (n x dim floats, copied) when given, else the answer of
 * the first endpoint in list order among those that answer now.  Blocks
 * until every endpoint has answered once or failed once (or the pool was
 * cancelled).  An endpoint that answers with other vectors now gives
 * EF_ERR_EMBED with the evidence (both endpoints, the cosine, the text),
 * and the pool stops: nothing was embedded yet.  One that was away now is
 * checked when it answers, and refused (out of rotation, a note says why)
 * if it differs.  With no endpoint up, EF_OK: the first to answer later
 * gives the reference.
 */
ef_status ef_embed_pool_verify(ef_embed_pool *pool, const char *const *texts, size_t n,
			       const float *ref, struct ef_error *err);

/* The reference vectors (n x dim, owned by the pool), or NULL before one is
 * known. */
const float *ef_embed_pool_reference(const ef_embed_pool *pool, size_t *n, int *dim);

/* Where endpoint i of the pool is driven now, and why (NATIVE, "" before a
 * verification decided it). */
void ef_embed_pool_route(const ef_embed_pool *pool, size_t i, struct ef_embed_route_info *out);

/* "/embed, numbers" or "OpenAI route /v1/embeddings, base64", for messages. */
const char *ef_embed_route_name(enum ef_embed_provider provider, enum ef_embed_route route);

/* The cosine of two vectors of dim floats; 0 when either is all zeros. */
double ef_embed_cosine(const float *a, const float *b, int dim);

void ef_embed_pool_free(ef_embed_pool *pool);

/* --- one batch, blocking --------------------------------------------------- */

/* Embeds texts with a pool of one; *out is the caller's to free. */
ef_status ef_embed_batch(const struct ef_embed_config *cfg, const char *const *texts,
			 size_t n, struct ef_embed_result **out, struct ef_error *err);

/* --- doctor's probe -------------------------------------------------------- */

struct ef_embed_probe {
	int reachable;            /* an HTTP answer came back */
	long http_status;         /* 0 without an answer */
	double latency_ms;        /* of the one request */
	int dim;                  /* what the service returns, 0 if unknown */
	int dim_matches;          /* dim == cfg->dim (always 1 when cfg->dim is 0) */
	char endpoint[512];       /* the URL asked, without userinfo or query */
	enum ef_embed_encoding encoding; /* how the vectors came: BASE64 or FLOAT;
					    AUTO when no vector came */
	int base64_refused;       /* base64 was refused, and float asked for again */
	int base64_ignored;       /* base64 was asked for, numbers came */
	struct ef_embed_route_info route; /* tei, after ef_embed_probe_route: the
					     route a run would take */
	int route_failed;         /* EMBED_ENCODING=base64 and the OpenAI route
				     cannot be used: route.why says why */
};

/*
 * Embeds one short text with a single attempt (two when the service refuses
 * base64 and EMBED_ENCODING=auto) and fills *out as far as it got.
 * Returns EF_OK when the service works and returns cfg->dim (or any dimension when cfg->dim is 0);
 * otherwise the classified error, with a dimension mismatch naming both
 * numbers.
 */
ef_status ef_embed_probe(const struct ef_embed_config *cfg, struct ef_embed_probe *out,
			 struct ef_error *err);

/*
 * For tei, after ef_embed_probe_at(cfg, i, p) found the dimension p->dim:
 * the route probe a run makes at its start, on endpoint i alone, into
 * p->route (a pool of that endpoint verifying itself, so the probe texts
 * go to /embed and to the OpenAI route).  Under EMBED_ENCODING=base64 a
 * route that cannot be used sets p->route_failed.  Other providers: nothing.
 */
void ef_embed_probe_route(const struct ef_embed_config *cfg, size_t i, struct ef_embed_probe *p);

/* Endpoints named by cfg->url (1 for a single URL). */
size_t ef_embed_endpoint_count(const struct ef_embed_config *cfg);

/* ef_embed_probe() of endpoint i of cfg->url. */
ef_status ef_embed_probe_at(const struct ef_embed_config *cfg, size_t i,
			    struct ef_embed_probe *out, struct ef_error *err);

/*
 * Whether every endpoint of cfg->url gives the same vectors for the probe
 * texts (doctor's check, the run's before it writes): a pool of them,
 * ef_embed_pool_verify() with prefix before each text.  EF_OK when they
 * agree or there is only one; EF_ERR_EMBED with the evidence otherwise, or
 * when one cannot be asked.
 */
ef_status ef_embed_endpoints_agree(const struct ef_embed_config *cfg, const char *prefix,
				   struct ef_error *err);

#endif
