/*
 * vindex.c - the arithmetic of vector index costs: what a probe's numbers
 * say per row, how a sample's build time grows to a table's, and which of
 * the live table's indexes a new table lacks.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "embfill/vindex.h"

static struct ef_vindex ix_of(const char *method, const char *opclass, bool valid, bool expr)
{
	struct ef_vindex v;

	memset(&v, 0, sizeof(v));
	snprintf(v.method, sizeof(v.method), "%s", method);
	snprintf(v.opclass, sizeof(v.opclass), "%s", opclass);
	v.valid = valid;
	v.expression = expr;
	return v;
}

Test(vindex, cost_per_row_is_the_difference_the_indexes_make)
{
	struct ef_vindex_probe p = { .measured = true, .rows = 200, .with_ms = 1200,
				     .without_ms = 200 };

	cr_expect_float_eq(ef_vindex_cost_per_row_ms(&p), 5.0, 1e-9);
	p.without_ms = 1500;    /* noise: never a negative cost */
	cr_expect_float_eq(ef_vindex_cost_per_row_ms(&p), 0.0, 1e-9);
	p.measured = false;
	cr_expect_float_eq(ef_vindex_cost_per_row_ms(&p), 0.0, 1e-9);
}

Test(vindex, a_sample_build_grows_n_log_n_for_hnsw_and_linearly_for_ivfflat)
{
	struct ef_vindexes ix;
	struct ef_vindex_probe p = { .measured = true, .sample = 1000 };
	double hnsw, ivf;

	memset(&ix, 0, sizeof(ix));
	ix.ix[0] = ix_of("hnsw", "vector_cosine_ops", true, false);
	ix.ix[1] = ix_of("ivfflat", "vector_l2_ops", true, false);
	ix.n = 2;
	p.build_ms[0] = 1000;
	p.build_ms[1] = 500;
	hnsw = ef_vindex_build_estimate_s(&ix, &p, 0, 1000000);
	ivf = ef_vindex_build_estimate_s(&ix, &p, 1, 1000000);
	cr_expect_float_eq(hnsw, 1.0 * 1000 * log(1e6) / log(1e3), 1e-6);
	cr_expect_float_eq(ivf, 0.5 * 1000, 1e-6);
	/* a table no larger than the sample takes what the sample took */
	cr_expect_float_eq(ef_vindex_build_estimate_s(&ix, &p, 0, 10), 1.0, 1e-9);
	p.build_ms[1] = -1;
	cr_expect_lt(ef_vindex_build_estimate_s(&ix, &p, 1, 1000000), 0);
	p.measured = false;
	cr_expect_lt(ef_vindex_build_estimate_s(&ix, &p, 0, 1000000), 0);
}

Test(vindex, a_new_table_lacks_what_it_has_no_like_of)
{
	struct ef_vindexes live, mine;

	memset(&live, 0, sizeof(live));
	memset(&mine, 0, sizeof(mine));
	live.ix[0] = ix_of("hnsw", "vector_cosine_ops", true, false);
	live.ix[1] = ix_of("ivfflat", "vector_l2_ops", true, false);
	live.ix[2] = ix_of("hnsw", "vector_ip_ops", false, false);  /* invalid: never copied */
	live.ix[3] = ix_of("hnsw", "vector_l2_ops", true, true);    /* on an expression */
	live.n = 4;
	cr_expect_eq(ef_vindex_missing(&live, &mine), 2);
	mine.ix[0] = ix_of("hnsw", "vector_cosine_ops", true, false);
	mine.n = 1;
	cr_expect_eq(ef_vindex_missing(&live, &mine), 1);
	mine.ix[1] = ix_of("hnsw", "vector_l2_ops", true, false);  /* another method's opclass */
	mine.n = 2;
	cr_expect_eq(ef_vindex_missing(&live, &mine), 1);
	mine.ix[2] = ix_of("ivfflat", "vector_l2_ops", true, false);
	mine.n = 3;
	cr_expect_eq(ef_vindex_missing(&live, &mine), 0);
}

Test(vindex, an_index_is_described_by_method_opclass_and_options)
{
	struct ef_vindex v = ix_of("hnsw", "halfvec_cosine_ops", true, false);
	char buf[256];

	snprintf(v.options, sizeof(v.options), "m=8, ef_construction=32");
	ef_vindex_describe(&v, buf, sizeof(buf));
	cr_expect_str_eq(buf, "hnsw (halfvec_cosine_ops, m=8, ef_construction=32)");
	v.valid = false;
	v.partial = true;
	v.options[0] = '\0';
	ef_vindex_describe(&v, buf, sizeof(buf));
	cr_expect_str_eq(buf, "hnsw (halfvec_cosine_ops), partial, INVALID");
}
