/*
 * life.h (flow) - the swap and the rollback as both front ends run them:
 * counts before and after, the core call, and the historylog entry with
 * the command that reproduces it.
 */
#ifndef EMBFILL_TUI_FLOW_LIFE_H
#define EMBFILL_TUI_FLOW_LIFE_H

#include <stdbool.h>

#include "embfill/error.h"
#include "embfill/lifecycle.h"
#include "embfill/provenance.h"
#include "embfill/scan.h"
#include "tui/app.h"

struct swap_request {
	const char *collection;        /* the live collection */
	const char *with;              /* the verified new one */
	const char *min_hit_rate;      /* as typed; NULL: the default */
	bool approve_provider;
};

/* The request from the command line's flags (strings borrowed). */
void swap_from_cli(struct swap_request *r, const struct cli *cli);

/* Parses --min-hit-rate: a share above 0 and at most 1 (NULL: default). */
ef_status swap_hit_rate(const char *text, double *out, struct ef_error *err);

/* The command that reproduces the swap; caller frees. */
char *swap_command(const struct app *app, const struct swap_request *r);

struct swap_outcome {
	struct ef_swap_result res;     /* the gate's figures, and the refusal */
	double min_hit_rate;
	char outcome[1200];            /* the historylog's outcome line */
	bool logged;                   /* the historylog entry was written */
	struct ef_error log_err;       /* why not, when the swap went through */
};

/*
 * The swap: the gate and the renames (ef_coll_swap), then its historylog
 * entry.  EF_OK when swapped (o->logged says whether the entry was written,
 * o->log_err why not); otherwise the swap's status (EF_ERR_CHECK: the gate
 * refused, o->res.refusal says why) and nothing changed.
 */
ef_status flow_swap(struct app *app, const struct swap_request *r, struct swap_outcome *o,
		    struct ef_error *err);

struct rollback_outcome {
	struct ef_rollback_result res;
	char outcome[1200];
	bool logged;
	struct ef_error log_err;
};

/* The rollback of collection's last swap or backup, then its entry. */
ef_status flow_rollback(struct app *app, const char *collection, struct rollback_outcome *o,
			struct ef_error *err);

struct adopt_request {
	const char *collection;
	const char *model;             /* --model, else EMBED_MODEL */
	int dim;                       /* --dim, else EMBED_DIM */
	bool dry_run, force;
	size_t sample;                 /* --sample: the provenance probe's (0 default) */
};

/* The request of `embfill adopt`; EF_ERR_USAGE for a --dim that is not one. */
ef_status adopt_from_cli(struct adopt_request *r, const struct app *app, struct ef_error *err);

/* The command that repeats the adoption (for the historylog and the console). */
char *adopt_command(const struct app *app, const struct adopt_request *r);

struct adopt_outcome {
	struct ef_adopt_result res;
	struct ef_prov_report prov;    /* the probe of the claim, when probed */
	bool probed;
	char unprobed[600];            /* why the probe could not run (the service) */
	char outcome[1200];            /* what was (or would be) recorded, in a line */
	bool logged;                   /* the historylog entry was written */
	struct ef_error log_err;       /* why not, when the record was written */
};

/*
 * Adoption for both front ends: ef_coll_adopt, then (when something was
 * recorded) a historylog entry naming the operator, the model and
 * dimension asserted, and what was left alone.
 */
ef_status flow_adopt(struct app *app, const struct adopt_request *r, struct adopt_outcome *o,
		     struct ef_error *err);

#endif
