"""The all-pairs generator behind the fast tier covers every pair of values of every two dimensions."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tests.pairwise import all_pairs


def assert_covers_every_pair(dimensions, rows, valid=lambda row: True):
    for i, j in itertools.combinations(range(len(dimensions)), 2):
        wanted = {(row[i], row[j]) for row in itertools.product(*dimensions) if valid(row)}
        shown = {(row[i], row[j]) for row in rows}
        assert wanted <= shown, (i, j, sorted(wanted - shown))
    assert all(valid(row) for row in rows)
    assert all(row in set(itertools.product(*dimensions)) for row in rows)


def test_the_bidirectional_matrix_shape():
    dimensions = [range(6), range(5), ("true", "false"), ("false", "true"), ("ids", "features")]
    rows = all_pairs(dimensions)
    assert_covers_every_pair(dimensions, rows)
    assert len(rows) == 30  # the lower bound: 6 x 5 pairs of the two widest dimensions
    assert rows == all_pairs(dimensions)  # deterministic


def test_a_constraint_is_kept_and_only_possible_pairs_are_required():
    dimensions = [("a", "b", "c"), range(4), (False, True)]

    def valid(row):
        return not (row[0] == "a" and row[1] == 3)

    rows = all_pairs(dimensions, valid)
    assert_covers_every_pair(dimensions, rows, valid)
    assert ("a", 3) not in {(r[0], r[1]) for r in rows}


def test_one_dimension_lists_every_value():
    assert all_pairs([("x", "y", "z")]) == [("x",), ("y",), ("z",)]


def test_strength_one_shows_every_value_once_in_as_few_rows_as_the_widest_dimension():
    dimensions = [("a", "b", "c"), range(5), (False, True)]
    rows = all_pairs(dimensions, strength=1)
    assert len(rows) == 5
    for i, values in enumerate(dimensions):
        assert {row[i] for row in rows} == set(values)


@given(st.lists(st.integers(1, 4), min_size=2, max_size=5))
def test_drawn_shapes_are_covered(sizes):
    dimensions = [range(size) for size in sizes]
    rows = all_pairs(dimensions)
    assert_covers_every_pair(dimensions, rows)
    assert len(rows) <= len(list(itertools.product(*dimensions)))
