/*
 * embed_parse.h - the pure half of the embedding client: request bodies,
 * response bodies and error bodies of the three providers.  No curl, no
 * I/O; unit tests and fuzz targets call these directly.
 */
#ifndef EMBFILL_EMBED_PARSE_H
#define EMBFILL_EMBED_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/embed.h"

enum ef_embed_parse_rc {
	EF_EMBED_PARSE_OK = 0,
	EF_EMBED_PARSE_MALFORMED,  /* not JSON, or not the provider's shape */
	EF_EMBED_PARSE_INVALID,    /* the shape, but wrong count/order/values/dims */
	EF_EMBED_PARSE_DIM,        /* every vector has the same, unexpected dim */
};

/* Above this Euclidean norm a vector is garbage, whatever the model. */
#define EF_EMBED_NORM_MAX 1e6

struct ef_embed_vectors {
	size_t n;
	int dim;
	float *data;               /* n * dim, malloc'ed; NULL unless OK */
	enum ef_embed_encoding encoding; /* BASE64 or FLOAT when OK */
	size_t bad_item;           /* INVALID because of the vector of input
				      bad_item - 1 alone (0: not so) */
	char bad_reason[96];       /* what is wrong with that vector */
};

/*
 * Parses a 200 body of `provider` holding `n` vectors of `dim` floats
 * (dim 0: any dimension, as long as all agree).  When base64_asked (openai
 * only), each embedding may be a base64 string of little-endian float32, or
 * numbers from a service that ignored the request, but all alike;
 * otherwise a base64 string is malformed.  Every vector must be finite,
 * not all zero, and of norm at most EF_EMBED_NORM_MAX.  On OK out->data is
 * the caller's; otherwise why says what was wrong and, for
 * EF_EMBED_PARSE_DIM, out->dim is the dimension the service returned.
 */
enum ef_embed_parse_rc ef_embed_parse_answer(enum ef_embed_provider provider, bool base64_asked,
					     const char *body, size_t len, size_t n, int dim,
					     struct ef_embed_vectors *out, char *why,
					     size_t whylen);

/* ef_embed_parse_answer for a request that asked for numbers. */
enum ef_embed_parse_rc ef_embed_parse_response(enum ef_embed_provider provider,
					       const char *body, size_t len, size_t n,
					       int dim, struct ef_embed_vectors *out,
					       char *why, size_t whylen);

/*
 * Builds the request body; malloc'ed string the caller frees, NULL on OOM.
 * base64 asks an openai service for "encoding_format":"base64" instead of
 * "float"; the other providers have no such parameter.
 */
char *ef_embed_build_request_as(enum ef_embed_provider provider, const char *model,
				bool base64, const char *const *texts, size_t n);

/* The same with the recipe's switches (NULL: none; ollama then gets
 * "truncate": false as always). */
char *ef_embed_build_request_with(enum ef_embed_provider provider, const char *model,
				  bool base64, const struct ef_embed_switches *sw,
				  const char *const *texts, size_t n);

/* ef_embed_build_request_as asking for numbers. */
char *ef_embed_build_request(enum ef_embed_provider provider, const char *model,
			     const char *const *texts, size_t n);

/*
 * True when an error message says the service does not take
 * "encoding_format": "base64" (it names the parameter or base64).
 */
bool ef_embed_refuses_base64(const char *message);

/* What an error body says, once sorted. */
enum ef_embed_err_kind {
	EF_EMBED_EK_NONE = 0,      /* nothing recognisable */
	EF_EMBED_EK_TOO_LARGE,     /* context length, batch size, body size */
	EF_EMBED_EK_MODEL,         /* model not found / not pulled */
	EF_EMBED_EK_AUTH,          /* bad or missing key */
	EF_EMBED_EK_QUOTA,         /* quota or billing exhausted: retrying won't help */
	EF_EMBED_EK_OVERLOAD,      /* loading, overloaded, rate limited */
	EF_EMBED_EK_INPUT,         /* validation of the request or an input */
};

struct ef_embed_err_info {
	enum ef_embed_err_kind kind;
	char message[512];         /* the service's message, one line, printable */
	char type[64];             /* error type / error_type / code, if any */
};

/*
 * Reads an error body of any of the three shapes (ollama {"error":"..."},
 * openai {"error":{"message","type","code"}} or flat {"message","type"},
 * tei {"error","error_type"}), or a plain-text body, and sorts it.  Never
 * fails: an unreadable body leaves message empty and kind NONE.
 */
void ef_embed_parse_error(const char *body, size_t len, struct ef_embed_err_info *out);

/* The kind a message and type suggest, by the words the providers use. */
enum ef_embed_err_kind ef_embed_err_kind_of(const char *message, const char *type);

#endif
