"""IndexSet against Python sets and the Kubernetes text form."""

from __future__ import annotations

import copy
import itertools
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backfill_operator.planning.ranges import MAX_INDEX, IndexSet

small_sets = st.sets(st.integers(min_value=0, max_value=200), max_size=60)
# Clustered sets: runs of indices, so intervals are long and gaps vary.
runs = st.lists(st.tuples(st.integers(0, 5_000), st.integers(0, 40)), max_size=20).map(
    lambda rs: {i for lo, n in rs for i in range(lo, lo + n)}
)
any_set = st.one_of(small_sets, runs)


def canonical(members: set[int]) -> str:
    """Kubernetes' completedIndexes text for a set, written independently of IndexSet."""
    parts = []
    for _, group in itertools.groupby(enumerate(sorted(members)), lambda p: p[1] - p[0]):
        values = [v for _, v in group]
        parts.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    return ",".join(parts)


@pytest.mark.parametrize(
    ("text", "members"),
    [
        ("", set()),
        ("0", {0}),
        ("1,3-5,7", {1, 3, 4, 5, 7}),
        ("0-2,4-6", {0, 1, 2, 4, 5, 6}),
        ("10-10", {10}),
    ],
)
def test_parse_table(text: str, members: set[int]) -> None:
    s = IndexSet.parse(text)
    assert set(s) == members
    assert len(s) == len(members)


@pytest.mark.parametrize(
    ("text", "canon"),
    [("5,1-2,2-3", "1-3,5"), ("1,2,3", "1-3"), (" 1 , 3 - 4 ", "1,3-4"), ("4,4", "4")],
)
def test_parse_normalises_well_formed_lists(text: str, canon: str) -> None:
    assert IndexSet.parse(text).format() == canon


@pytest.mark.parametrize(
    "text", ["1,,2", ",", "a", "1-", "-1", "1-2-3", "5-3", "1;2", "+1", f"{MAX_INDEX + 1}", "1.5"]
)
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not a list of indices"):
        IndexSet.parse(text)


@given(any_set)
def test_round_trip_and_basics(members: set[int]) -> None:
    s = IndexSet.from_indices(members)
    text = canonical(members)
    assert s.format() == text == str(s)
    assert IndexSet.parse(text) == s
    assert hash(IndexSet.parse(text)) == hash(s)
    assert list(s) == sorted(members)
    assert list(s.iter_descending()) == sorted(members, reverse=True)
    assert len(s) == len(members)
    assert bool(s) == bool(members)
    for i in range(-1, 5_100, 7):
        assert (i in s) == (i in members)
    if members:
        assert s.first() == min(members)
        assert s.last() == max(members)
        ordered = sorted(members)
        for pos in range(0, len(ordered), max(1, len(ordered) // 10)):
            assert s.nth(pos) == ordered[pos]
            assert s.rank(ordered[pos]) == pos
        assert s.nth(-1) == ordered[-1]
    for lo, hi in s.intervals:
        assert lo <= hi
    pairs = s.intervals
    assert all(pairs[k][0] > pairs[k - 1][1] + 1 for k in range(1, len(pairs)))


@given(any_set, any_set)
def test_algebra_matches_sets(a: set[int], b: set[int]) -> None:
    x, y = IndexSet.from_indices(a), IndexSet.from_indices(b)
    assert set(x.union(y)) == a | b
    assert set(x.intersection(y)) == a & b
    assert set(x.difference(y)) == a - b
    assert x.union(y) == IndexSet.from_indices(a | b)  # canonical form after each operation
    assert x.difference(y) == IndexSet.from_indices(a - b)
    assert x.intersection(y) == IndexSet.from_indices(a & b)
    assert (x | y) == x.union(y) and (x & y) == x.intersection(y) and (x - y) == x.difference(y)


@given(any_set, st.integers(0, 5_100))
def test_add_remove(a: set[int], i: int) -> None:
    s = IndexSet.from_indices(a)
    assert set(s.add(i)) == a | {i}
    assert set(s.remove(i)) == a - {i}
    assert s.add(i) == IndexSet.from_indices(a | {i})
    assert s.remove(i) == IndexSet.from_indices(a - {i})
    assert set(s) == a  # unchanged: immutable


@given(any_set, st.integers(0, 5_100), st.integers(0, 5_100))
def test_rank_and_clip(a: set[int], lo: int, hi: int) -> None:
    s = IndexSet.from_indices(a)
    assert s.rank(lo) == len([v for v in a if v < lo])
    assert set(s.clip(lo, hi)) == {v for v in a if lo <= v <= hi}


def test_from_range_and_empty() -> None:
    assert IndexSet.from_range(3, 5).format() == "3-5"
    assert IndexSet.from_range(5, 3) == IndexSet() == IndexSet.parse("")
    assert len(IndexSet.from_range(0, 999_999)) == 1_000_000
    with pytest.raises(ValueError, match="empty"):
        IndexSet().first()
    with pytest.raises(ValueError, match="empty"):
        IndexSet().last()
    with pytest.raises(IndexError):
        IndexSet.from_range(0, 2).nth(3)
    with pytest.raises(ValueError):
        IndexSet.from_indices([-1])
    assert "x" not in IndexSet.from_range(0, 2)
    assert IndexSet.from_intervals([(5, 9), (0, 2), (3, 3), (7, 4)]).format() == "0-3,5-9"


def test_immutable_copyable_picklable() -> None:
    s = IndexSet.parse("1,3-5")
    with pytest.raises(AttributeError):
        s._len = 7
    assert copy.copy(s) is s and copy.deepcopy(s) is s
    assert pickle.loads(pickle.dumps(s)) == s


def test_million_indices_fast_paths() -> None:
    # One interval of a million: every operation is O(intervals), so these are instant.
    full = IndexSet.from_range(0, 999_999)
    evens = IndexSet.from_indices(range(0, 1_000_000, 2))
    assert evens.interval_count() == 500_000
    odds = full.difference(evens)
    assert len(odds) == 500_000 and odds.first() == 1 and odds.last() == 999_999
    assert full.union(evens) == full
    assert IndexSet.parse(evens.format()) == evens
    pending = full.difference(evens).difference(IndexSet.from_range(0, 499_999))
    assert list(itertools.islice(iter(pending), 3)) == [500_001, 500_003, 500_005]
    back = full.difference(odds).iter_descending()
    assert list(itertools.islice(back, 2)) == [999_998, 999_996]
