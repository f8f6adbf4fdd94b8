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

#include <stddef.h>

#include "embfill/db.h"
#include "embfill/error.h"
#include "embfill/schema.h"
#include "embfill/settings.h"

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
};

struct ef_status_report {
	struct ef_counts *rows;
	size_t n;
};

/*
 * Counts every collection (collection NULL) or one.  The model and
 * dimension compared against are cfg->embed_model and cfg->embed_dim.
 * One collection that has neither chunks nor embedding rows gives n == 0.
 */
ef_status ef_scan_status(ef_db *db, const struct ef_config *cfg, const struct ef_schema *sc,
			 const char *collection, struct ef_status_report *out,
			 struct ef_error *err);

void ef_status_report_free(struct ef_status_report *r);

/* The collection names within edit distance max of name (excluding name
 * itself), newest-first order irrelevant; for "did you mean" and typo
 * warnings.  Returns a NULL-terminated array; caller frees it and each. */
char **ef_scan_near_names(ef_db *db, const struct ef_config *cfg, const char *name,
			  size_t max, struct ef_error *err);

/* Every collection name that has chunks, sorted; NULL-terminated. */
char **ef_scan_collection_names(ef_db *db, const struct ef_config *cfg, struct ef_error *err);

void ef_names_free(char **names);

#endif
