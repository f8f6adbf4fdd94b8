/*
 * embed_route.h - the route of a text-embeddings-inference endpoint: its
 * own /embed, or its OpenAI-compatible /v1/embeddings with base64.  The
 * pool asks both routes for the same probe texts; what their answers mean
 * is decided here, in pure functions, so that every rule has a unit test.
 * Internal to core/embed*.c.
 */
#ifndef EMBFILL_EMBED_ROUTE_H
#define EMBFILL_EMBED_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/service/embed_classify.h"

/*
 * Whether tei's OpenAI route can give the vectors /embed gives under the
 * recipe's switches.  It has no "truncate" (it cuts only when the server
 * was started with --auto-truncate) and no "normalize" (it always
 * normalises): EMBED_TRUNCATE=true and EMBED_NORMALIZE=false keep /embed.
 * false with the reason in why.
 */
bool ef_embed_route_eligible(const struct ef_embed_switches *sw, char *why, size_t size);

/* The lowest cosine, and the largest difference of norms relative to the
 * larger, over n pairs of vectors of dim floats. */
void ef_embed_route_compare(const float *a, const float *b, size_t n, int dim, double *cosine,
			    double *norm_dev);

/*
 * The OpenAI route is slower when its probe took more than a quarter
 * longer than /embed's, plus 2 ms: one small request is noisy, and what it
 * cannot show (fewer bytes and no decimal parsing for a batch of hundreds of
 * vectors) is in the OpenAI route's favour.
 */
bool ef_embed_route_slower(double openai_ms, double native_ms);

/* One answer of /v1/embeddings to the probe texts, and what it is judged against. */
struct ef_embed_route_evidence {
	enum ef_embed_encoding setting;     /* AUTO or BASE64 (BASE64: no timing) */
	bool answered;                      /* an HTTP answer came */
	long status;
	const char *net_msg;                /* the transport error when !answered */
	const struct ef_embed_outcome *o;   /* the answer, classified */
	const float *native;                /* /embed's vectors of the texts, n x dim */
	size_t n;
	int dim;
	double native_ms, openai_ms;        /* the fastest probe of each route so far */
	bool last_round;                    /* no further round of timing */
};

enum ef_embed_route_verdict {
	EF_EMBED_ROUTE_TAKE,       /* drive the endpoint through /v1/embeddings */
	EF_EMBED_ROUTE_KEEP,       /* stay on /embed */
	EF_EMBED_ROUTE_AGAIN,      /* same vectors, slower: time both routes once more */
};

/*
 * The verdict, with info->route, why and cosine filled (the caller keeps
 * probed, status and the times).  The rules, in order: no answer, a status
 * other than 2xx, an unusable answer, numbers instead of base64, other
 * vectors (a cosine below EF_EMBED_ROUTE_COSINE or norms apart by more
 * than EF_EMBED_ROUTE_NORM) keep /embed; so does a slower route after the
 * last round, under EMBED_ENCODING=auto only.
 */
enum ef_embed_route_verdict ef_embed_route_judge(const struct ef_embed_route_evidence *ev,
						 struct ef_embed_route_info *info);

#endif
