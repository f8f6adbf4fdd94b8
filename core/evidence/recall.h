/*
 * recall.h - the recall of the vector indexes a spot-check's queries go
 * through (recall.c), inside core/evidence.
 */
#ifndef EMBFILL_CORE_EVIDENCE_RECALL_H
#define EMBFILL_CORE_EVIDENCE_RECALL_H

#include <stddef.h>

#include "embfill/error.h"
#include "embfill/session.h"
#include "embfill/spotcheck.h"

/*
 * Measures out->recall for each distinct ordering operator of the
 * collection's valid vector indexes: nq query vectors (vectors: a text[]
 * literal of pgvector literals), their top k through the index and
 * exactly.  Nothing for a column that is not vector or halfvec.
 */
ef_status ef_recall_measure(ef_session *s, const struct ef_view *view, const char *vectors,
			    size_t nq, int k, struct ef_spot_report *out, struct ef_error *err);

#endif
