/*
 * plan_index.c - what the vector indexes of the table a run writes will
 * cost it, measured by a probe (vindex.h), and whether loading without
 * them is offered.
 *
 * Three cases.  A new collection of another dimension gets a table of its
 * own: it is loaded without indexes and gets the live table's after the
 * load, before the swap.  A run into the live table (in place, or a new
 * collection of the same dimension) writes through the indexes, which the
 * plan prices; --rebuild-index is offered when dropping them for the load
 * and rebuilding them after it is faster by the probe's numbers, the
 * session may drop them, and embfill's tables can record the drop.  Its
 * cost is stated with it: until the rebuild, searches on the table rank
 * every row.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run/run_int.h"
#include "embfill/plan.h"
#include "embfill/session.h"
#include "embfill/vindex.h"

/* "public.x (hnsw (vector_cosine_ops, m=16), 117.2 MB), ..." */
static void names(const struct ef_vindexes *ix, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ix->n && len < n; i++) {
		char desc[256];

		ef_vindex_describe(&ix->ix[i], desc, sizeof(desc));
		len += (size_t)snprintf(buf + len, n - len, "%s%s %s, %.1f MB", i ? "; " : "",
					ix->ix[i].qname, desc, (double)ix->ix[i].bytes / 1048576.0);
	}
}

static double build_all(const struct ef_vindexes *ix, const struct ef_vindex_probe *pr,
			long long rows)
{
	double sum = 0;

	for (size_t i = 0; i < ix->n; i++) {
		double one = ef_vindex_build_estimate_s(ix, pr, i, rows);

		if (!ix->ix[i].valid)
			continue;
		if (one < 0)
			return -1;
		sum += one;
	}
	return sum;
}

static void dropped_lines(struct ef_plan *p, const struct ef_vindexes *ix)
{
	for (size_t i = 0; i < ix->ndropped; i++)
		ef_plan_add_risk(p, EF_RISK_MEDIUM, "the run rebuilds it CONCURRENTLY after its load; `embfill "
		     "run --resume` finishes the run that dropped it",
		     "vector index %s was dropped by run %lld of \"%s\" (%s UTC) and is not rebuilt "
		     "yet: searches on %s rank every row until it is", ix->dropped[i].qname,
		     ix->dropped[i].run_id, ix->dropped[i].collection, ix->dropped[i].dropped_at,
		     ix->table);
}

/* A new collection of another dimension: its own table, indexes after. */
static void own_table_line(struct ef_plan *p, struct ef_plan_index *pi, int dim)
{
	char list[900], b[32];

	pi->own_table = true;
	for (size_t i = 0; i < pi->ix.n; i++)
		pi->build_after += pi->ix.ix[i].valid && !pi->ix.ix[i].expression;
	if (!pi->build_after)
		return;
	pi->rows_after = p->todo;
	pi->build_s = build_all(&pi->ix, &pi->probe, pi->rows_after);
	names(&pi->ix, list, sizeof(list));
	ef_vindex_duration(pi->build_s, b, sizeof(b));
	ef_plan_add_risk(p, EF_RISK_INFO, "nothing to choose: nobody searches the new table before the swap",
	     "the new collection gets a table of its own (dimension %d) and is loaded without "
	     "vector indexes; the live table's (%s) are built on it after the load, before the "
	     "swap: about %s for %lld rows%s%s%s", dim, list, b, pi->rows_after,
	     pi->probe.measured ? "" : " (not measured: ", pi->probe.measured ? "" : pi->probe.why_not,
	     pi->probe.measured ? "" : ")");
}

static void why_not(struct ef_plan_index *pi, const char *text)
{
	if (!pi->rebuild_why_not[0])
		snprintf(pi->rebuild_why_not, sizeof(pi->rebuild_why_not), "%s", text);
}

/* Whether --rebuild-index is offered, and why not when it is not. */
static void judge(struct ef_plan *p, struct ef_plan_index *pi, bool can_record)
{
	double saved = pi->write_with_s - pi->write_without_s - pi->build_s;

	if (!pi->ix.owner)
		why_not(pi, "only the table's owner may drop and rebuild its indexes");
	else if (!can_record)
		why_not(pi, "embfill's tables cannot record a dropped index yet: run `embfill "
			    "schema init`");
	else if (!pi->probe.measured && pi->ix.rows < 1000 && p->todo >= 1000)
		pi->rebuild_offered = true;
	else if (!pi->probe.measured)
		why_not(pi, "their cost could not be measured");
	else if (saved <= 0)
		why_not(pi, "rebuilding them over the whole table would cost more than this run's "
			    "writes save");
	else
		pi->rebuild_offered = true;
}

static void cost_line(struct ef_plan *p, struct ef_plan_index *pi)
{
	char list[900], with[32], without[32], build[32], saved[32], what[1400], advice[700];
	const struct ef_vindex_probe *pr = &pi->probe;

	names(&pi->ix, list, sizeof(list));
	ef_vindex_duration(pi->write_with_s, with, sizeof(with));
	ef_vindex_duration(pi->write_without_s, without, sizeof(without));
	ef_vindex_duration(pi->build_s, build, sizeof(build));
	ef_vindex_duration(pi->write_with_s - pi->write_without_s - pi->build_s, saved, sizeof(saved));
	if (pr->measured)
		snprintf(what, sizeof(what), "vector indexes on %s: %s; a probe wrote %d rows in "
			 "%.2f s with them and %.2f s without (%.1f ms more per vector%s%s): for "
			 "%lld chunks about %s of writes with them kept, %s without; building them "
			 "over %lld rows takes about %s", pi->ix.table, list, pr->rows,
			 pr->with_ms / 1e3, pr->without_ms / 1e3, ef_vindex_cost_per_row_ms(pr),
			 pr->scratch_note[0] ? "; " : "", pr->scratch_note, p->todo, with, without,
			 pi->rows_after, build);
	else
		snprintf(what, sizeof(what), "vector indexes on %s: %s; every vector the run writes "
			 "is inserted into them (cost not measured: %s)", pi->ix.table, list,
			 pr->why_not);
	if (pi->rebuild_offered && pr->measured)
		snprintf(advice, sizeof(advice), "faster: `run --rebuild-index` drops them for the "
			 "load and rebuilds them CONCURRENTLY under the same names after it (about %s "
			 "saved); until then searches on %s rank every row exactly (slower, not wrong), "
			 "for every collection in it; a crash leaves the rebuild to `run --resume`",
			 saved, pi->ix.table);
	else if (pi->rebuild_offered)
		snprintf(advice, sizeof(advice), "`run --rebuild-index` loads the table without "
			 "them and rebuilds them CONCURRENTLY after it: with %lld vectors in %s now, "
			 "dropping them costs searches little, and building once is faster than "
			 "inserting each vector into the graph", pi->ix.rows, pi->ix.table);
	else
		snprintf(advice, sizeof(advice), "kept as they are: %s", pi->rebuild_why_not);
	ef_plan_add_risk(p, EF_RISK_INFO, advice, "%s", what);
}

ef_status ef_plan_index_build(ef_session *s, const struct ef_config *cfg, struct ef_plan *p,
			      struct ef_error *err)
{
	struct ef_plan_index *pi = &p->vindex;
	bool own = p->new_collection && p->schema_dim && p->schema_dim != cfg->embed_dim;
	char *tool;
	double per_with, per_without;

	if (ef_vindex_of(s, p->collection, &pi->ix, err) != EF_OK)
		return err->status;
	pi->write_with_s = pi->write_without_s = pi->build_s = -1;
	dropped_lines(p, &pi->ix);
	if (!pi->ix.n)
		return EF_OK;
	if (ef_vindex_probe_of(s, &pi->ix, &pi->probe, err) != EF_OK)
		return err->status;
	if (own) {
		own_table_line(p, pi, cfg->embed_dim);
		return EF_OK;
	}
	if (pi->probe.measured) {
		per_with = pi->probe.with_ms / pi->probe.rows;
		per_without = pi->probe.without_ms / pi->probe.rows;
		pi->write_with_s = (double)p->todo * per_with / 1e3;
		pi->write_without_s = (double)p->todo * per_without / 1e3;
	}
	pi->rows_after = pi->ix.rows + (p->new_collection ? p->todo
				       : cfg->map.layout == EF_LAYOUT_SEPARATE ? p->counts.missing : 0);
	pi->build_s = build_all(&pi->ix, &pi->probe, pi->rows_after);
	tool = ef_vindex_tool(s, err);
	if (!tool && err->status != EF_OK)
		return err->status;
	judge(p, pi, tool != NULL);
	free(tool);
	cost_line(p, pi);
	return EF_OK;
}
