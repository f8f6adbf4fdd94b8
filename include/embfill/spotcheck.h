/*
 * spotcheck.h - does retrieval work on the collection, and only on it?
 *
 * Each query is embedded with the settings' provider and model, and the
 * top k chunks of the collection are retrieved by cosine similarity:
 * pgvector's <=> when the column is vector, the same formula in plain SQL
 * over real[] otherwise.  Only vectors filed under the collection, of a
 * chunk of the collection, made with EMBED_MODEL at EMBED_DIM are ranked:
 * a vector of another model is not comparable, and another tenant's chunk
 * is never a citation, even through a row filed under the wrong name.
 *
 * Without queries, EF_SPOT_SAMPLES chunks with a fresh vector are sampled,
 * spread over the id range (deterministic: the lowest id of each of
 * EF_SPOT_SAMPLES equal slices), and each one's first sentence is the
 * query.  A sampled chunk that comes back in its own top k is a
 * self-retrieval hit.
 *
 * The check passes (ok) when every query returned at least one citation,
 * when sampling, at least EF_SPOT_HIT_PCT_MIN percent of the samples
 * retrieved themselves, and at least SPOTCHECK_MIN_COVERAGE of the chunks
 * have a comparable vector: citations from a partly embedded collection
 * speak only for the part that has vectors, so such a check is partial.  60% leaves room for a sample whose first sentence
 * is generic ("See below."), while a broken index, a mismatched model or
 * vectors written to the wrong rows score near 0%.
 */
#ifndef EMBFILL_SPOTCHECK_H
#define EMBFILL_SPOTCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/db.h"
#include "embfill/embed.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/settings.h"

#define EF_SPOT_K_DEFAULT 5
#define EF_SPOT_K_MAX 50
#define EF_SPOT_QUERIES_MAX 16
#define EF_SPOT_SAMPLES 5
#define EF_SPOT_HIT_PCT_MIN 60
#define EF_SPOT_SNIPPET_CHARS 72   /* a snippet, quoted and indented, fits 80 columns */
#define EF_SPOT_QUERY_CHARS 200    /* a sampled query: the first sentence, cut */

struct ef_spot_citation {
	char *key;              /* the chunk's key ("7", "7/2", a uuid) */
	char *title;            /* the document's title; NULL without a document */
	char *source;           /* its source URI, as stored: print it redacted */
	long long chunk_index;  /* -1 when NULL */
	double score;           /* cosine similarity (1 - cosine distance); NAN if undefined */
	char *snippet;          /* the chunk's start on one line, at most
				   EF_SPOT_SNIPPET_CHARS, ending in "..." when cut */
};

struct ef_spot_query {
	char *text;
	char *sample_key;       /* the sampled chunk's key; NULL for an operator's query */
	bool self_hit;          /* sampled, and the chunk is among the citations */
	struct ef_spot_citation *cites;   /* best first */
	size_t ncites;
};

struct ef_spot_request {
	const char *collection;
	const char *const *queries;  /* NULL or nqueries == 0: sample the collection */
	size_t nqueries;             /* at most EF_SPOT_QUERIES_MAX */
	int k;                       /* 1..EF_SPOT_K_MAX */
};

struct ef_spot_report {
	char *collection;
	int k;
	bool sampled;
	struct ef_spot_query *queries;
	size_t nqueries;             /* 0 when sampling found no fresh chunk */
	size_t hits;                 /* self-retrieval hits, when sampled */
	double hit_rate;             /* hits / nqueries, when sampled */
	long long chunks;            /* chunks of the collection */
	long long comparable;        /* its vectors of EMBED_MODEL at EMBED_DIM */
	double coverage;             /* comparable / chunks */
	double min_coverage;         /* SPOTCHECK_MIN_COVERAGE */
	bool partial;                /* coverage < min_coverage: not ok */
	bool retrieval_ok;           /* citations and self-retrieval passed */
	bool ok;                     /* retrieval_ok and not partial */
};

/*
 * Parses -k: a whole number in 1..EF_SPOT_K_MAX (NULL: the default), else
 * EF_ERR_USAGE naming the value.
 */
ef_status ef_spot_parse_k(const char *text, int *k, struct ef_error *err);

/*
 * Runs the check: samples when there are no queries, embeds every query
 * in one request with ec (the same provider and model as the run), and
 * retrieves each one's top k in one statement.  Returns EF_ERR_USAGE for a
 * bad request or a collection without chunks (with a "did you mean" hint),
 * EF_ERR_DB, or the embedding client's error (EF_ERR_EMBED).  A check that
 * found problems is EF_OK with out->ok false.  On EF_OK the caller frees
 * *out with ef_spot_report_free().
 */
ef_status ef_spotcheck(ef_session *s, const struct ef_embed_config *ec,
		       const struct ef_spot_request *req, struct ef_spot_report *out,
		       struct ef_error *err);

void ef_spot_report_free(struct ef_spot_report *r);

/*
 * A copy of one line of text cut to at most max code points (max >= 4),
 * "..." included, at a blank of the last third when there is one; never
 * splits a UTF-8 sequence.  For fitting titles and sources to a screen.
 * Caller frees; NULL when out of memory.
 */
char *ef_spot_cut(const char *text, size_t max);

#endif
