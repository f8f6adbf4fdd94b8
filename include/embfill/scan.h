/*
 * scan.h - per-collection counts: what is embedded, missing and stale.
 *
 * A chunk is missing when it has no embedding row or a NULL embedding; it is
 * stale when its embedding's model or dimension differs from the current
 * settings, or the stored content hash differs from the chunk's content.
 * The three stale kinds are counted independently (one chunk can be stale
 * by model and by content); `stale` counts each stale chunk once.
 * Orphans are embedding rows whose chunk does not exist, cross-tenant rows
 * are embedding rows filed under one collection that point at a chunk of
 * another: both are counted under the collection the embedding row names.
 */
#ifndef EMBFILL_SCAN_H
#define EMBFILL_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/session.h"
#include "embfill/settings.h"
#include "embfill/strbuf.h"

struct ef_counts {
	char *collection;
	long long chunks;
	long long embedded;     /* chunks with a non-NULL vector, fresh or stale */
	long long missing;      /* chunks - embedded */
	long long stale;        /* embedded chunks stale in any way */
	long long stale_model;
	long long stale_dim;
	long long stale_content;
	long long orphans;
	long long cross_tenant;
	long long quarantined;
	long long stale_recipe; /* made by another recipe (prefix, dimensions, ...) */
	long long recipe_unknown; /* fresh otherwise, but with no recipe on record (made
				     before recipes were recorded): not stale; `verify
				     --provenance` or `adopt` settles them */
	long long unrecorded;   /* vectors whose model is not on record (counted in
				   stale_model too): `embfill adopt` records them */
	bool unknown;           /* could not be counted (the database failed): the
				   numbers mean nothing and are shown as unknown */
};

/* One (model, dimension) pair of a collection's vectors. */
struct ef_scan_model {
	char *model;            /* never NULL: vectors of no recorded model are not listed */
	int dim;
	long long count;        /* vectors of the collection's chunks */
};

struct ef_status_report {
	struct ef_counts *rows;
	size_t n;
	struct ef_scan_model *models; /* when one collection was asked for: its vectors'
					 (model, dimension) pairs, most vectors first */
	size_t nmodels;
};

/*
 * Counts every collection (collection NULL) or one, each through its view
 * (its own embedding table when it has one).  The model and dimension
 * compared against are the settings' EMBED_MODEL and EMBED_DIM.  One
 * collection that has neither chunks nor embedding rows gives n == 0.
 * One pass over the chunks, in a read-only snapshot of its own.
 */
ef_status ef_scan_status(ef_session *s, const char *collection, struct ef_status_report *out,
			 struct ef_error *err);

/* One collection's counts (all zero when it has no rows); c->collection
 * is set, and freed by the caller.  When they cannot be counted,
 * c->unknown is set and err says why. */
ef_status ef_scan_counts(ef_session *s, const char *collection, struct ef_counts *c,
			 struct ef_error *err);

void ef_status_report_free(struct ef_status_report *r);

/* The collection names within edit distance max of name (excluding name
 * itself); for "did you mean" and typo warnings.  Returns a
 * NULL-terminated array; caller frees it with ef_names_free(). */
char **ef_scan_near_names(ef_session *s, const char *name, size_t max, struct ef_error *err);

/* Every collection name that has chunks, sorted; NULL-terminated. */
char **ef_scan_collection_names(ef_session *s, struct ef_error *err);

/*
 * Fills err with EF_ERR_USAGE for a collection that has no chunks and no
 * embeddings, with a "did you mean" hint naming a collection a typo away.
 * Returns EF_ERR_USAGE; when the names cannot be read the hint is generic.
 */
ef_status ef_scan_unknown(ef_session *s, const char *name, struct ef_error *err);

#endif
