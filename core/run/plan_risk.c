/*
 * plan_risk.c - one risk line of the plan, for plan.c and plan_index.c
 * (run_int.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run/run_int.h"
#include "embfill/plan.h"

void ef_plan_add_risk(struct ef_plan *p, enum ef_risk_level level, const char *advice,
		      const char *fmt, ...)
{
	struct ef_risk *nr = realloc(p->risks, (p->nrisks + 1) * sizeof(*nr));
	va_list ap;

	if (!nr)
		return;
	p->risks = nr;
	nr[p->nrisks].level = level;
	nr[p->nrisks].advice = strdup(advice);
	va_start(ap, fmt);
	if (vasprintf(&nr[p->nrisks].what, fmt, ap) < 0)
		nr[p->nrisks].what = NULL;
	va_end(ap);
	if (nr[p->nrisks].what && nr[p->nrisks].advice) {
		p->nrisks++;
	} else {
		free(nr[p->nrisks].what);
		free(nr[p->nrisks].advice);
		return;
	}
	if (level == EF_RISK_HIGH && strstr(advice, "new collection"))
		p->new_collection = true;
}
