/*
 * Unit tests of the CHECK-constraint parser that reads a real[] column's
 * dimension off definitions as pg_get_constraintdef() prints them.
 */
#include <criterion/criterion.h>

#include "embfill/schema.h"

#define DIM(def, col) ef_schema_parse_dim_check(def, col)

Test(schema_parse, array_length_equality_gives_the_dimension)
{
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) = 768))", "embedding"), 768);
	cr_assert_eq(DIM("CHECK ((array_length(vec, 1) = 1536))", "vec"), 1536);
}

Test(schema_parse, ndims_and_length_conjunction_gives_the_length)
{
	cr_assert_eq(DIM("CHECK (((array_ndims(embedding) = 1) AND "
			 "(array_length(embedding, 1) = 384)))", "embedding"), 384);
	cr_assert_eq(DIM("CHECK (((embedding IS NULL) OR (array_length(embedding, 1) = 96)))",
			 "embedding"), 96);
}

Test(schema_parse, cardinality_equality_gives_the_dimension)
{
	cr_assert_eq(DIM("CHECK ((cardinality(embedding) = 3))", "embedding"), 3);
}

Test(schema_parse, quoted_column_names_match_as_quoted)
{
	cr_assert_eq(DIM("CHECK ((array_length(\"Emb Col\", 1) = 12))", "\"Emb Col\""), 12);
	cr_assert_eq(DIM("CHECK ((cardinality(\"Emb Col\") = 7))", "\"Emb Col\""), 7);
	cr_assert_eq(DIM("CHECK ((array_length(\"Emb Col\", 1) = 12))", "Emb Col"), 0,
		     "the column is given quoted as quote_ident() prints it");
}

Test(schema_parse, another_columns_constraint_gives_zero)
{
	cr_assert_eq(DIM("CHECK ((array_length(other, 1) = 5))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding_old, 1) = 5))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) = 5))", "emb"), 0);
	cr_assert_eq(DIM("CHECK ((cardinality(embedding2) = 5))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK (((array_length(other, 1) = 5) AND "
			 "(array_length(embedding, 1) = 8)))", "embedding"), 8);
}

Test(schema_parse, a_constraint_on_the_second_dimension_gives_zero)
{
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 2) = 5))", "embedding"), 0);
}

Test(schema_parse, a_function_whose_name_ends_in_array_length_gives_zero)
{
	cr_assert_eq(DIM("CHECK ((my_array_length(embedding, 1) = 5))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((xcardinality(embedding) = 5))", "embedding"), 0);
}

Test(schema_parse, comparisons_other_than_equality_give_zero)
{
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) <= 768))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) > 0))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) <> 768))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((cardinality(embedding) = ANY (ARRAY[384, 768])))", "embedding"),
		     0);
}

/* A constraint that allows several lengths, or forbids one, fixes none. */
Test(schema_parse, a_disjunction_or_negation_imposes_no_single_length)
{
	cr_assert_eq(DIM("CHECK (((array_length(embedding, 1) = 768) OR "
			 "(array_length(embedding, 1) = 1536)))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((NOT (array_length(embedding, 1) = 5)))", "embedding"), 0);
}

Test(schema_parse, garbage_and_out_of_range_give_zero)
{
	cr_assert_eq(DIM("", "embedding"), 0);
	cr_assert_eq(DIM("garbage", "embedding"), 0);
	cr_assert_eq(DIM("CHECK (", "embedding"), 0);
	cr_assert_eq(DIM("array_length(", "embedding"), 0);
	cr_assert_eq(DIM("array_length(embedding", "embedding"), 0);
	cr_assert_eq(DIM("array_length(embedding, 1)", "embedding"), 0);
	cr_assert_eq(DIM("array_length(embedding, 1) =", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) = 0))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) = -3))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) = 100001))", "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((array_length(embedding, 1) = 99999999999999999999))",
			 "embedding"), 0);
	cr_assert_eq(DIM(NULL, "embedding"), 0);
	cr_assert_eq(DIM("CHECK ((cardinality(embedding) = 3))", NULL), 0);
	cr_assert_eq(DIM("CHECK ((cardinality(embedding) = 3))", ""), 0);
}
