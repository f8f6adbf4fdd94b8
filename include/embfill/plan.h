/*
 * plan.h - what a run of one collection would do, how long it would take,
 * and what could go wrong: the procedure's "plan smallest safe change set".
 */
#ifndef EMBFILL_PLAN_H
#define EMBFILL_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "embfill/embed.h"
#include "embfill/error.h"
#include "embfill/provenance.h"
#include "embfill/scan.h"
#include "embfill/session.h"
#include "embfill/settings.h"
#include "embfill/vindex.h"

enum ef_risk_level { EF_RISK_INFO, EF_RISK_MEDIUM, EF_RISK_HIGH };

struct ef_risk {
	enum ef_risk_level level;
	char *what;
	char *advice;
};

struct ef_model_count {
	char *model;
	int dim;
	long long count;
};

/* The vector indexes of the table the run writes, and what they cost it. */
struct ef_plan_index {
	struct ef_vindexes ix;      /* of the table the run writes */
	struct ef_vindex_probe probe;
	long long rows_after;       /* the table's rows once the run is done (estimate) */
	double write_with_s;        /* the run's writes with the indexes kept; < 0 unknown */
	double write_without_s;     /* ... without them */
	double build_s;             /* building them over rows_after rows; < 0 unknown */
	bool own_table;             /* a new collection's table of its own: loaded without
				       the live table's indexes, which are built after */
	size_t build_after;         /* how many the load builds after it (own table) */
	bool rebuild_offered;       /* --rebuild-index would be faster, and may be used */
	char rebuild_why_not[200];  /* why it is not offered, when the table has indexes */
};

/* One endpoint of EMBED_URL as the plan's probe found it. */
struct ef_plan_endpoint {
	char url[160];             /* without userinfo or query */
	bool ok;                   /* answered with vectors of EMBED_DIM */
	double latency_ms;         /* of one short request */
	int dim;                   /* what it returned, 0 unknown */
	char error[240];           /* why not ok */
};

struct ef_plan {
	char *collection;
	struct ef_counts counts;
	long long todo;            /* chunks the run would embed */
	long long batches;
	int batch_size, concurrency; /* concurrency: per endpoint */
	struct ef_plan_endpoint endpoints[EF_EMBED_MAX_ENDPOINTS]; /* each of EMBED_URL */
	size_t nendpoints, endpoints_ok;
	int probe_chunks;          /* chunks embedded by the probe */
	int probe_requests;        /* in batches of batch_size, concurrency in flight */
	double probe_ms;           /* how long that took; < 0: no probe */
	double probe_rate;         /* chunks per second the probe got */
	double est_seconds;        /* < 0: unknown */
	double est_low, est_high;  /* the range the probe allows (see plan.c) */
	struct ef_model_count *models; /* what the collection's vectors hold now */
	size_t nmodels;
	struct ef_risk *risks;
	size_t nrisks;
	bool new_collection;       /* recommended: model, dimension or chunking changed */
	bool chunking_changed;     /* ... and the chunks must be cut anew */
	bool provider_change;      /* run and swap need --approve-provider-change */
	int schema_dim;            /* the vector column's dimension, 0 unknown */
	bool only_missing;         /* todo counts chunks without a vector only */
	/* vectors whose model or recipe is not on record: a sample of them
	 * embedded again (the provenance probe); probed false when there were
	 * none or the service failed (prov_error says why) */
	bool probed;
	struct ef_prov_report prov;
	char prov_error[300];
	struct ef_plan_index vindex;
};

/* What ef_plan_build plans. */
enum {
	EF_PLAN_RETRY_QUARANTINED = 1u << 0,  /* quarantined chunks are tried again */
	EF_PLAN_ONLY_MISSING = 1u << 1,       /* run --only missing: stale vectors stay */
};

/*
 * Builds the plan: counts, the models present, a probe of the service with
 * the first chunks the run would embed, in up to two rounds of the run's
 * concurrency (nothing is written), the estimate with its range, and the
 * risks.  flags: EF_PLAN_*.  EF_ERR_USAGE when the
 * collection has no chunks.
 */
ef_status ef_plan_build(ef_session *s, const struct ef_embed_config *ecfg, const char *collection,
			unsigned flags, struct ef_plan *plan, struct ef_error *err);

void ef_plan_free(struct ef_plan *plan);

const char *ef_risk_level_name(enum ef_risk_level l);

#endif
