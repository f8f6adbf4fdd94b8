/*
 * embed_parse.h - the pure half of the embedding client: request bodies,
 * response bodies and error bodies of the three providers.  No curl, no
 * I/O; unit tests and fuzz targets call these directly.
 */
#ifndef EMBFILL_EMBED_PARSE_H
#define EMBFILL_EMBED_PARSE_H

#include <stddef.h>

#include "embfill/embed.h"

enum ef_embed_parse_rc {
	EF_EMBED_PARSE_OK = 0,
	EF_EMBED_PARSE_MALFORMED,  /* not JSON, or not the provider's shape */
	EF_EMBED_PARSE_INVALID,    /* the shape, but wrong count/order/values/dims */
	EF_EMBED_PARSE_DIM,        /* every vector has the same, unexpected dim */
};

struct ef_embed_vectors {
	size_t n;
	int dim;
	float *data;               /* n * dim, malloc'ed; NULL unless OK */
};

/*
 * Parses a 200 body of `provider` holding `n` vectors of `dim` floats
 * (dim 0: any dimension, as long as all agree).  On OK out->data is the
 * caller's; otherwise why says what was wrong and, for EF_EMBED_PARSE_DIM,
 * out->dim is the dimension the service returned.
 */
enum ef_embed_parse_rc ef_embed_parse_response(enum ef_embed_provider provider,
					       const char *body, size_t len, size_t n,
					       int dim, struct ef_embed_vectors *out,
					       char *why, size_t whylen);

/* Builds the request body; malloc'ed string the caller frees, NULL on OOM. */
char *ef_embed_build_request(enum ef_embed_provider provider, const char *model,
			     const char *const *texts, size_t n);

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
