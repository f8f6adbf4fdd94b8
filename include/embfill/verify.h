/*
 * verify.h - one collection's vector rows against its chunk rows, with
 * every discrepancy counted, explained and illustrated.
 *
 * A collection passes (ok) when every chunk has a fresh vector (made with
 * EMBED_MODEL, of EMBED_DIM, from the chunk's current content), except
 * chunks whose only problem is an explained quarantine; when no embedding
 * row filed under it is an orphan; when no row crosses the tenant boundary
 * in either direction; and when its vectors hold one (model, dimension).
 *
 * A quarantine explains a chunk without a fresh vector when the chunk is
 * unchanged since it was quarantined (the entry's content hash is the
 * chunk's, or was not recorded).  Such a chunk is reported under
 * "quarantined" only; a chunk that changed after it was quarantined is
 * reported under its own state and "quarantine_outdated".
 *
 * Discrepancy kinds, in the order they are reported:
 *   missing_row          chunk without an embedding row (separate layout)
 *   null_vector          embedding row or column holding NULL
 *   stale_content        chunk changed after it was embedded
 *   stale_model          vector of another model than EMBED_MODEL
 *   stale_dim            vector of another dimension than EMBED_DIM
 *   quarantine_outdated  quarantined, but the chunk changed since
 *   quarantined          quarantined and unchanged: explained
 *   mixed_models         vectors outside the most common (model, dim) pair
 *   orphans              rows filed under the collection, chunk missing
 *   cross_tenant         rows filed under the collection, another's chunk
 *   cross_tenant_inbound rows filed under another collection, its chunk
 * The last three exist only in the separate layout.
 */
#ifndef EMBFILL_VERIFY_H
#define EMBFILL_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/settings.h"

#define EF_VERIFY_EXAMPLES 5   /* example chunks per discrepancy */
#define EF_VERIFY_REASONS 10   /* distinct quarantine reasons kept */

struct ef_verify_example {
	char *key;             /* the chunk's key ("7", "7/2"), or the key an orphan row
				  points at */
	char *note;            /* what is known of it (see note_key), or NULL */
};

struct ef_verify_issue {
	const char *kind;      /* "missing_row", ... (static) */
	const char *title;     /* short, for a list: "chunks without an embedding row" */
	const char *note_key;  /* what each example's note is: "embedded_at", "model",
				  "dim", "reason", "pair", "collection", "filed_under",
				  or NULL when examples carry no note */
	bool explained;        /* true only for "quarantined" */
	long long count;
	char *reason;          /* one line: what it means, with the values involved */
	char *hint;            /* what to do about it */
	struct ef_verify_example examples[EF_VERIFY_EXAMPLES];
	size_t nexamples;      /* lowest ids first */
};

struct ef_verify_model {
	char *model;           /* NULL when the model column is NULL */
	int dim;
	long long count;       /* vectors of the collection's chunks */
};

struct ef_verify_reason {
	char *reason;          /* one line */
	long long count;
};

struct ef_verify_report {
	char *collection;
	long long chunks;      /* chunk rows of the collection */
	long long vectors;     /* rows filed under the collection that hold a vector */
	long long embedded;    /* chunks with a vector filed under the collection */
	long long fresh;       /* chunks whose vector is fresh */
	long long recipe_unknown; /* ... of which no recipe is on record (made before
				     recipes were recorded): fresh, and said apart */
	bool ok;               /* every discrepancy is explained */
	bool inline_layout;    /* no embedding table: no orphans or cross-tenant rows */
	bool isolation_fk;     /* the database refuses cross-tenant rows */
	struct ef_verify_issue *issues;   /* only kinds with count > 0 */
	size_t nissues;
	struct ef_verify_model *models;   /* most vectors first */
	size_t nmodels;
	struct ef_verify_reason *reasons; /* quarantine reasons of "quarantined",
					     most chunks first */
	size_t nreasons;
};

/*
 * Verifies one collection in one read-only snapshot: one pass over its
 * chunks for the counts, then the examples of the kinds found only,
 * comparing against cfg->embed_model and cfg->embed_dim.
 * EF_ERR_USAGE with a "did you mean" hint when the collection has neither
 * chunks nor embedding rows; EF_ERR_DB when the database fails.  On
 * success the caller frees *out with ef_verify_report_free().
 */
ef_status ef_verify(ef_session *s, const char *collection, struct ef_verify_report *out,
		    struct ef_error *err);

void ef_verify_report_free(struct ef_verify_report *r);

/* The issue of one kind, or NULL when the report has none of it. */
const struct ef_verify_issue *ef_verify_issue(const struct ef_verify_report *r,
					      const char *kind);

/* The count of one kind, 0 when absent (for the isolation audit's zeros). */
long long ef_verify_count(const struct ef_verify_report *r, const char *kind);

/* Issues that are not explained. */
size_t ef_verify_unexplained(const struct ef_verify_report *r);

#endif
