/*
 * embed_classify.h - what to do with one HTTP exchange: hand the vectors
 * back, retry, split, reject the single input, or stop.  Pure functions
 * (curl_getdate aside), so that every rule has a unit test.
 */
#ifndef EMBFILL_EMBED_CLASSIFY_H
#define EMBFILL_EMBED_CLASSIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/service/embed_parse.h"

enum ef_embed_net {
	EF_EMBED_NET_OK = 0,       /* an HTTP answer arrived whole */
	EF_EMBED_NET_TRANSIENT,    /* connect, timeout, reset, partial body */
	EF_EMBED_NET_FATAL,        /* TLS verification, bad URL: retrying won't help */
};

/* One request and its answer, as the transport saw them. */
struct ef_embed_exchange {
	enum ef_embed_provider provider;
	const char *endpoint;      /* redacted URL, for messages */
	const char *model;
	const char *secret;        /* the API key, to scrub from messages; may be NULL */
	size_t n;                  /* inputs in the request */
	int dim;                   /* expected; 0 accepts any */
	enum ef_embed_net net;
	const char *net_msg;       /* transport error text when net != OK */
	long status;               /* HTTP status */
	const char *body;
	size_t body_len;
	const char *retry_after;   /* header values, NULL when absent */
	const char *retry_after_ms;
	long retry_after_max_ms;
	time_t now;
	int prev_dim;              /* uniform wrong dim of the previous attempts, 0 none */
	unsigned dim_repeats;      /* how many attempts in a row returned prev_dim */
	unsigned dim_confirm;      /* answers of one wrong dim in a row that prove it */
	bool base64_asked;         /* the request asked for "encoding_format":"base64" */
	bool base64_required;      /* EMBED_ENCODING=base64: a refusal is fatal */
	size_t prev_bad;           /* 1 + the input whose vector the previous answer
				      refused as unusable; 0 none */
};

enum ef_embed_action {
	EF_EMBED_ACT_OK = 0,       /* vec holds n checked vectors */
	EF_EMBED_ACT_RETRY,        /* transient: back off and ask again */
	EF_EMBED_ACT_SPLIT,        /* too large or unattributed input error, n > 1 */
	EF_EMBED_ACT_REJECT,       /* the one input fails alone: cause is the reason */
	EF_EMBED_ACT_FATAL,        /* stop: cause and hint name the fix */
	EF_EMBED_ACT_FALLBACK,     /* base64 refused: ask again for numbers, at once */
	EF_EMBED_ACT_ISOLATE,      /* input bad_item - 1 had an unusable vector twice:
				      ask for it alone, and for the others again */
};

struct ef_embed_outcome {
	enum ef_embed_action action;
	bool unavailable;          /* RETRY because the service is away or not coping
				      (transport, 408, 429, 5xx), not because its
				      answer was wrong */
	char cause[768];           /* retry cause, reject reason or fatal message */
	char hint[256];
	long retry_after_ms;       /* -1: none asked for */
	int dim_seen;              /* uniform wrong dim seen (RETRY or FATAL), else 0 */
	unsigned dim_repeats;      /* answers in a row with dim_seen, this one included */
	size_t bad_item;           /* 1 + the input whose vector was unusable (RETRY,
				      ISOLATE, REJECT), else 0 */
	struct ef_embed_vectors vec;
};

/* Sorts one exchange.  On OK the caller owns out->vec.data. */
void ef_embed_classify(const struct ef_embed_exchange *x, struct ef_embed_outcome *out);

/*
 * The delay a server asks for: retry-after-ms (OpenAI) wins over
 * Retry-After, which is either seconds or an HTTP date (RFC 9110).
 * Returns -1 when neither is there or readable, else ms capped to cap_ms.
 */
long ef_embed_retry_after(const char *retry_after, const char *retry_after_ms, time_t now,
			  long cap_ms);

/*
 * Exponential backoff with full jitter: uniform in [0, min(max, base*2^k)]
 * for the k-th retry (k from 0), and never less than what the server asked.
 */
long ef_embed_backoff(unsigned k, long base_ms, long max_ms, long asked_ms, uint64_t *rng);

/* Replaces every occurrence of secret in s (in place) by "[redacted]". */
void ef_embed_scrub(char *s, size_t size, const char *secret);

#endif
