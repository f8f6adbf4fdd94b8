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
#include "embfill/session.h"
#include "embfill/settings.h"

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
ef_status ef_coll_copy(ef_session *s, const char *from, const char *into, bool rechunk,
		       struct ef_copy_result *res, struct ef_error *err);

/*
 * What run --into NEW finds: 0 when NEW is empty (copy it first), 1 when it
 * holds chunks made from `from` by ef_coll_copy (embed them), else
 * EF_ERR_USAGE explaining why NEW cannot be used.
 */
ef_status ef_coll_into_state(ef_session *s, const char *from, const char *into, int *has_chunks,
			     struct ef_error *err);

/*
 * A collection whose vectors have another dimension than the live
 * embedding column lives in an embedding table of its own, one per
 * dimension (<EMBEDDINGS_TABLE>_d<dim>), recorded in embfill's collections
 * table.  ef_coll_prepare_dim() creates that table for `into` when
 * cfg->embed_dim needs it (one transaction; the live table is not
 * touched) and says which table in *table (NULL: the live one will do;
 * caller frees).  EF_ERR_USAGE when the layout cannot hold it (inline).
 */
ef_status ef_coll_prepare_dim(ef_session *s, const char *into, char **table,
			      struct ef_error *err);

/* What run --into NEW found and did before embedding NEW. */
struct ef_into_result {
	bool made_before;            /* NEW held chunks `chunk` (or an earlier start) cut
					from the source: they are embedded as they are */
	bool would_copy;             /* dry run: NEW would be made now */
	bool copied;                 /* NEW was made now: copy says how */
	struct ef_copy_result copy;
	char own_table[512];         /* NEW's own embedding table (another dimension),
					"" when it is the live one */
};

/* Called with what the preparation is doing, for a front end to show. */
typedef void (*ef_life_note_fn)(void *ctx, const char *text);

/*
 * The preparation of run --into NEW, the same for the command line and the
 * console: NEW is made from `from` unless it holds chunks made from it
 * already (re-chunked with rechunk, else its chunks copied as they are),
 * then it gets an embedding table of its own when EMBED_DIM needs one.
 * With dry_run nothing is written and r says what would be done.  fn (may
 * be NULL) hears each step.  Errors as ef_coll_into_state, ef_coll_copy and
 * ef_coll_prepare_dim.
 */
ef_status ef_coll_prepare_into(ef_session *s, const char *from, const char *into, bool rechunk,
			       bool dry_run, ef_life_note_fn fn, void *ctx,
			       struct ef_into_result *r, struct ef_error *err);

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
	int indexes_built;             /* the live table's vector indexes built on it by the
					  swap (its run had not) */
	double index_s;
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
ef_status ef_coll_swap(ef_session *s, const struct ef_swap_opts *o, struct ef_swap_result *res,
		       struct ef_error *err);

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
ef_status ef_coll_rollback(ef_session *s, const char *collection, struct ef_rollback_result *res,
			   struct ef_error *err);

#define EF_ADOPT_EXAMPLES 10

struct ef_adopt_opts {
	const char *collection;
	const char *model;             /* what the vectors are asserted to be */
	int dim;                       /* and their dimension */
	bool dry_run;                  /* count, write nothing */
	bool force;                    /* also re-record vectors recorded as another
					  model, or whose recorded hash is not the text's */
};

struct ef_adopt_result {
	long long chunks;              /* of the collection */
	long long nulls;               /* chunks without a vector: left for a run */
	long long vectors;             /* chunks with one */
	long long unrecorded;          /* ... whose model is not on record */
	long long recorded_same;       /* ... recorded as the model already */
	long long recorded_other;      /* ... recorded as another model (kept unless forced) */
	long long wrong_dim;           /* ... of another dimension (never adopted) */
	long long changed;             /* unrecorded model, but a recorded hash that is not
					  the text's (kept unless forced) */
	long long adopted;             /* recorded now (or, dry run, would be) */
	long long recipe_only;         /* ... of them recorded as the model already, whose
					  recipe was not on record */
	struct {
		char key[128];
		int dim;
	} wrong[EF_ADOPT_EXAMPLES];    /* the first vectors of another dimension */
	size_t nwrong;
	bool bookkeeping;              /* recorded in embfill's bookkeeping table */
	bool own_columns;              /* and in the table's own model/dim/hash columns */
	bool written;                  /* committed */
};

/*
 * Records the collection's vectors whose model is not on record as
 * o->model's at o->dim, made from their chunks' current text: in embfill's
 * bookkeeping table and in the model, dimension and hash columns the
 * mapped table has.  No vector is written.  Vectors of another dimension
 * are counted, listed (res->wrong) and left as they are.  One transaction
 * holding the collection's run lock.  EF_ERR_USAGE when the model or
 * dimension is missing or the collection has no chunks; EF_ERR_BUSY when a
 * run holds it.
 */
ef_status ef_coll_adopt(ef_session *s, const struct ef_adopt_opts *o, struct ef_adopt_result *res,
			struct ef_error *err);

#endif
