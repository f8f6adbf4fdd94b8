/*
 * lifecycle.h - a collection's life beyond one run.
 *
 * The procedure: "If changing embedding model or chunking, backfill into a
 * NEW collection name first (safety), then swap."  So a collection can be
 * copied or re-chunked into a new one, the new one swapped with the live
 * one in a single transaction (a reader sees the old collection or the new
 * one, never a mix), and the swap rolled back.  An in-place run can keep
 * the vectors it overwrites, and rollback restores them exactly.  Who made
 * a collection's embeddings (provider and service host) is on record, so a
 * change of provider is never silent.
 *
 * Every operation holds the collections' run locks (the advisory locks a
 * run takes), so none of them races a run, and each one commits all or
 * nothing.
 */
#ifndef EMBFILL_LIFECYCLE_H
#define EMBFILL_LIFECYCLE_H

#include <stdbool.h>

#include "embfill/db.h"
#include "embfill/embed.h"
#include "embfill/error.h"
#include "embfill/settings.h"

/* The schema_version of embfill's own tables this build needs. */
#define EF_TOOL_SCHEMA_VERSION 2

/* The self-retrieval hit rate a new collection needs before a swap. */
#define EF_SWAP_MIN_HIT_RATE 0.8

struct ef_copy_result {
	long long documents;      /* documents copied into the new collection */
	long long chunks;         /* chunks written there */
	long long left_out;       /* chunks of the source whose document is not
				     the source's (not copied) */
	bool rechunked;           /* cut anew with max_chunk_size/chunk_overlap */
	int max_chunk_size, chunk_overlap; /* the chunking recorded for it; 0 unknown */
	double elapsed_s;
};

/*
 * Creates collection `into` from the documents of `from`: with rechunk, the
 * documents' bodies are cut anew with cfg->max_chunk_size and
 * cfg->chunk_overlap (core's chunker); without, the chunks are copied as
 * they are.  Documents are copied (new ids) so that the new chunks belong
 * to documents of their own collection.  One transaction; the chunking and
 * where it came from are recorded in embfill's collections table.
 * EF_ERR_USAGE (nothing written) when `into` already holds documents or
 * chunks, is `from`, is not a valid name, or `from` is unknown;
 * EF_ERR_BUSY when a run holds either collection.
 */
ef_status ef_coll_copy(const struct ef_config *cfg, const char *from, const char *into,
		       bool rechunk, struct ef_copy_result *res, struct ef_error *err);

/*
 * What run --into NEW finds: 0 when NEW is empty (copy it first), 1 when it
 * holds chunks made from `from` by ef_coll_copy (embed them), else
 * EF_ERR_USAGE explaining why NEW cannot be used.
 */
ef_status ef_coll_into_state(const struct ef_config *cfg, const char *from, const char *into,
			     int *has_chunks, struct ef_error *err);

/*
 * A collection whose vectors have another dimension than the live
 * embedding column lives in an embedding table of its own, one per
 * dimension (<EMBEDDINGS_TABLE>_d<dim>), recorded in embfill's collections
 * table.  ef_coll_prepare_dim() creates that table for `into` when
 * cfg->embed_dim needs it (one transaction; the live table is not
 * touched) and says which table in *table (NULL: the live one will do;
 * caller frees).  EF_ERR_USAGE when the layout cannot hold it (inline).
 */
ef_status ef_coll_prepare_dim(const struct ef_config *cfg, const char *into, char **table,
			      struct ef_error *err);

/*
 * *out = *cfg, with the embedding table of collection name when it has one
 * of its own; *owned (freed by the caller, may be NULL) keeps that name.
 * *moved tells whether it differs from cfg's.
 */
ef_status ef_coll_config(ef_db *db, const struct ef_config *cfg, const char *name,
			 struct ef_config *out, char **owned, bool *moved, struct ef_error *err);

/* Who made a collection's embeddings. */
struct ef_origin {
	bool known;
	char provider[32];
	char host[256];          /* host[:port] of the service, no userinfo */
	char model[256];
	int dim;
};

/* From embfill's collections table, else from the newest run that wrote
 * vectors; known is false when neither says. */
ef_status ef_coll_origin(ef_db *db, const struct ef_config *cfg, const char *name,
			 struct ef_origin *o, struct ef_error *err);

/* Records cfg's provider, service host, model and dimension as the origin
 * of name's embeddings. */
ef_status ef_coll_record_origin(ef_db *db, const struct ef_config *cfg, const char *name,
				struct ef_error *err);

/*
 * EF_OK when cfg's provider and service host (ports aside) are those of o
 * (or o is unknown); else EF_ERR_USAGE with a message naming both and a hint to
 * approve the change with --approve-provider-change.
 */
ef_status ef_coll_check_provider(const struct ef_config *cfg, const char *name,
				 const struct ef_origin *o, struct ef_error *err);

/* host[:port] of a URL through libcurl's parser, without userinfo;
 * NULL when the URL does not parse.  Caller frees. */
char *ef_url_host(const char *url);

/* Whether two host[:port] name the same host: the port does not count, so
 * a service moved to another port of its host is no change of provider. */
bool ef_same_service_host(const char *a, const char *b);

struct ef_swap_opts {
	const char *collection;        /* the live collection */
	const char *with;              /* the new one, verified, takes its name */
	double min_hit_rate;           /* 0 < r <= 1; 0: EF_SWAP_MIN_HIT_RATE */
	bool approve_provider_change;
	const struct ef_embed_config *ecfg;  /* for the self-retrieval check */
};

struct ef_swap_result {
	long long swap_id;
	char previous_name[512];       /* where the old collection now lives */
	long long chunks, fresh;       /* of the new collection, at the check */
	double hit_rate;
	size_t hits, samples;
	char refusal[1024];            /* why the gate refused; "" when it passed */
	char vectors_table[512];       /* the new collection's own embedding table (another
					  dimension), "" when it is the live one */
};

/*
 * The gate, then the swap, in one transaction holding both run locks: the
 * new collection must have a fresh vector (current model and dimension,
 * current content) for every chunk, no quarantined or unexplained rows,
 * one model and dimension, and a self-retrieval hit rate of at least
 * min_hit_rate; its provider must be the live one's unless approved.  Then
 * the live collection is renamed COLL__prev_<UTC timestamp> and the new one
 * takes its name, in every table (or, in lookup mode, in the lookup table
 * alone).  EF_ERR_CHECK (nothing changed) when the gate refuses, with
 * res->refusal saying why.
 */
ef_status ef_coll_swap(const struct ef_config *cfg, const struct ef_swap_opts *o,
		       struct ef_swap_result *res, struct ef_error *err);

struct ef_rollback_result {
	char kind[8];                  /* "swap" or "backup" */
	long long id;                  /* the swap's or the backup run's id */
	char restored_from[512];       /* swap: the name the old collection had */
	char moved_to[512];            /* swap: the name the new one gets back */
	long long rows_restored;       /* backup: rows put back as they were */
	long long rows_removed;        /* backup: rows the run had added */
	char when[40];                 /* when the swap or the run happened, UTC */
};

/*
 * Undoes the newest of: the collection's last swap not rolled back, and
 * its last in-place run with a backup not yet restored.  A swap is undone
 * by the reverse renames; a backup by putting every saved row back exactly
 * as it was and removing rows that did not exist.  One transaction.
 * EF_ERR_USAGE when there is nothing to roll back.
 */
ef_status ef_coll_rollback(const struct ef_config *cfg, const char *collection,
			   struct ef_rollback_result *res, struct ef_error *err);

#endif
