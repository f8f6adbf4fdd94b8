/*
 * embed_http.h - the transport half of the embedding client: a resolved
 * configuration and one curl easy handle per request.  Internal to
 * core/embed*.c.
 */
#ifndef EMBFILL_EMBED_HTTP_H
#define EMBFILL_EMBED_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "core/service/embed_classify.h"
#include "embfill/embed.h"

/* A configuration with its defaults applied and its strings owned. */
struct ef_embed_resolved {
	enum ef_embed_provider provider;
	char *endpoint;            /* the URL to POST to, userinfo and query kept */
	char shown[512];           /* the same without userinfo and query */
	char *model;
	char *api_key;
	char *ca_file;
	char *auth_header;         /* "Authorization: Bearer ..." or NULL */
	int dim;
	long connect_timeout_ms, timeout_ms;
	unsigned max_attempts;
	long retry_budget_ms;      /* 0: unavailability counts attempts */
	long backoff_base_ms, backoff_max_ms, retry_after_max_ms;
	unsigned reject_streak_max;
	uint64_t rng;
	enum ef_embed_encoding encoding; /* as configured */
	bool base64;               /* ask for base64 now (openai, not yet refused) */
	struct ef_embed_switches sw;
};

/* Checks cfg and fills r (defaults applied) for its first endpoint, or its
 * endpoint i; release with the function below. */
ef_status ef_embed_resolve(const struct ef_embed_config *cfg, struct ef_embed_resolved *r,
			   struct ef_error *err);
ef_status ef_embed_resolve_at(const struct ef_embed_config *cfg, size_t i,
			      struct ef_embed_resolved *r, struct ef_error *err);
void ef_embed_resolved_release(struct ef_embed_resolved *r);

/* The base URL of endpoint i of an EMBED_URL list, malloc'ed; NULL when
 * there is no such item or out of memory. */
char *ef_embed_url_at(const char *list, size_t i);

/* One request on the wire and what came back. */
struct ef_embed_xfer {
	CURL *easy;
	struct curl_slist *headers;
	char *request;             /* the JSON body, owned */
	char *body;                /* the answer so far */
	size_t len, cap, limit;
	char retry_after[64];
	char retry_after_ms[32];
	int has_retry_after, has_retry_after_ms;
	int overflow;              /* the answer outgrew limit */
	char net_msg[256];
	const atomic_int *cancel;
	double started_ms;
	bool base64;               /* the request asks for base64 */
};

/* Prepares x to POST texts[0..n) to r's endpoint, asking for base64 if r->base64. */
ef_status ef_embed_xfer_init(struct ef_embed_xfer *x, const struct ef_embed_resolved *r,
			     const char *const *texts, size_t n, const atomic_int *cancel,
			     struct ef_error *err);

/* Describes the finished transfer (curl result rc) for ef_embed_classify. */
void ef_embed_xfer_exchange(struct ef_embed_xfer *x, CURLcode rc,
			    const struct ef_embed_resolved *r, size_t n,
			    struct ef_embed_exchange *out);

void ef_embed_xfer_cleanup(struct ef_embed_xfer *x);

/* How long the finished transfer took from sending the request to the end
 * of the answer, connecting left out; -1 unknown. */
double ef_embed_xfer_wire_ms(struct ef_embed_xfer *x);

/* Milliseconds on the monotonic clock. */
double ef_embed_now_ms(void);

#endif
