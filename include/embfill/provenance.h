/*
 * provenance.h - were the stored vectors made by the recipe they are said
 * to be made by?
 *
 * A sample of the collection's chunks is embedded again, by the model and
 * recipe claimed, and each new vector compared with the stored one: when
 * (nearly) all of them agree, at a cosine of PROVENANCE_MIN_COSINE or more,
 * the claim holds.  When too few agree, the sample is embedded again with
 * each candidate recipe of the model (no prefix, each prefix its
 * documentation gives, the stored dimension asked for) and the candidate
 * whose vectors come closest is named, with its margin over the next one:
 * a prefix moves a long text's vector only a little, so the verdict rests
 * on the best candidate, not on the threshold alone.
 *
 * `verify --provenance` asks it of the vectors that count as fresh; `adopt`
 * of the vectors it would record, before it records them.
 */
#ifndef EMBFILL_PROVENANCE_H
#define EMBFILL_PROVENANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/embed.h"
#include "embfill/error.h"
#include "embfill/recipe.h"
#include "embfill/session.h"

#define EF_PROV_DEFAULT_SAMPLE 20
#define EF_PROV_MAX_SAMPLE 1000
#define EF_PROV_EXAMPLES 5
#define EF_PROV_MAX_CANDIDATES 8
/* The share of the sample that must agree: one in twenty may be off (a
 * GPU's nondeterminism, a quantised server) before the claim fails. */
#define EF_PROV_MIN_SHARE 0.95

enum ef_prov_select {
	EF_PROV_FRESH,        /* vectors that count as fresh (verify --provenance) */
	EF_PROV_UNRECORDED,   /* vectors adopt would record: model or recipe not on record */
};

struct ef_prov_opts {
	const char *collection;
	enum ef_prov_select select;
	const char *model;          /* claimed; NULL: the settings' EMBED_MODEL */
	int dim;                    /* claimed; 0: EMBED_DIM */
	size_t sample;              /* 0: EF_PROV_DEFAULT_SAMPLE */
	double min_cosine;          /* 0: the settings' PROVENANCE_MIN_COSINE */
	bool candidates;            /* when too few agree, try the other recipes */
};

struct ef_prov_candidate {
	char name[160];             /* "no prefix", "prefix \"passage: \"", ... */
	struct ef_recipe recipe;
	char prefix[128];           /* recipe.doc_prefix points here */
	char id[24];
	double mean_cosine;
	size_t matches;             /* at min_cosine or more */
	bool claimed;               /* the recipe under test */
};

struct ef_prov_report {
	size_t sampled;             /* chunks embedded again (0: nothing to sample) */
	size_t matches;             /* of them, at min_cosine or more */
	double share;               /* matches / sampled */
	double mean_cosine, min_cosine_seen;
	double min_cosine;          /* the threshold used */
	bool ok;                    /* share >= EF_PROV_MIN_SHARE */
	struct {
		char key[128];
		double cosine;
	} worst[EF_PROV_EXAMPLES];  /* lowest cosine first */
	size_t nworst;
	struct ef_prov_candidate cand[EF_PROV_MAX_CANDIDATES]; /* best first; [0] may be
								    the claimed one */
	size_t ncand;
	double margin;              /* best candidate's mean cosine over the next one's */
	char claimed_desc[200];     /* the recipe under test, described */
	char claimed_id[24];
};

/*
 * Embeds a sample (chosen by the chunks' keys, so that it is the same for
 * the same collection) with ecfg's service and the claimed model and the
 * settings' recipe, and compares.  EF_ERR_EMBED when the service fails,
 * EF_ERR_USAGE for a bad option; EF_OK otherwise, with r->ok the verdict
 * (r->sampled 0: nothing to compare, and ok).
 */
ef_status ef_provenance(ef_session *s, const struct ef_embed_config *ecfg,
			const struct ef_prov_opts *o, struct ef_prov_report *r,
			struct ef_error *err);

#endif
