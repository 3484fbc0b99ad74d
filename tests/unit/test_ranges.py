"""IndexSet against Python sets and the Kubernetes text form."""

from __future__ import annotations

import copy
import itertools
import pickle
import random
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from backfill_operator.api import sets
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


# ------------------------------------------------------- representations and stored forms
# A set is held as intervals (parsed text, small sets) or as a bitmap (decoded, built from many
# indices, results of the algebra of large sets): every operation must agree across both.

_big_runs = st.lists(
    st.tuples(st.integers(0, 100_000), st.integers(0, 300)), min_size=70, max_size=200
)
big_sets = st.one_of(
    st.sets(st.integers(min_value=0, max_value=20_000), min_size=65, max_size=400),
    _big_runs.map(lambda rs: {i for lo, n in rs for i in range(lo, lo + n)}),
)
either = st.one_of(any_set, big_sets)


def both_forms(members: set[int]) -> tuple[IndexSet, IndexSet]:
    """The same set as intervals (parsed from its text) and as a bitmap (decoded)."""
    text = IndexSet.parse(canonical(members))
    bitmap = IndexSet.parse(sets.encode_bitmap(BitMap(members)))
    return text, bitmap


@settings(max_examples=60, deadline=None)
@given(either, either)
def test_algebra_agrees_across_representations(a: set[int], b: set[int]) -> None:
    for x in both_forms(a):
        for y in both_forms(b):
            assert set(x.union(y)) == a | b
            assert set(x.intersection(y)) == a & b
            assert set(x.difference(y)) == a - b
            assert x.union(y) == IndexSet.from_indices(a | b)
            assert hash(x.difference(y)) == hash(IndexSet.from_indices(a - b))
    x, y = both_forms(a)
    assert x == y and hash(x) == hash(y) and x.format() == y.format() == canonical(a)
    assert list(y) == sorted(a) and list(y.iter_descending()) == sorted(a, reverse=True)
    assert len(y) == len(a) and y.interval_count() == x.interval_count()
    if a:
        ordered = sorted(a)
        for pos in range(0, len(ordered), max(1, len(ordered) // 7)):
            assert y.nth(pos) == ordered[pos] and y.rank(ordered[pos]) == pos
        assert y.rank(ordered[-1] + 1) == len(ordered) and y.nth(-1) == ordered[-1]
        lo, hi = ordered[len(ordered) // 3], ordered[-1] + 5
        assert set(y.clip(lo, hi)) == {v for v in a if lo <= v <= hi}
        assert set(y.shift(-lo)) == {v - lo for v in a if v >= lo}
        assert set(y.shift(7)) == {v + 7 for v in a}


@settings(max_examples=60, deadline=None)
@given(either)
def test_stored_form_round_trips_and_is_deterministic(members: set[int]) -> None:
    s = IndexSet.from_indices(members)
    stored = s.stored()
    assert IndexSet.parse(stored) == s
    assert IndexSet.parse(canonical(members)).stored() == stored  # whatever the representation
    text = canonical(members)
    if len(text) <= sets.TEXT_LIMIT:
        assert stored == text  # short sets stay readable
    else:
        assert len(stored) <= len(text)
    assert pickle.loads(pickle.dumps(s)) == s


def test_scattered_million_is_stored_small_and_contiguous_stays_text() -> None:
    evens = IndexSet.from_indices(range(0, 1_000_000, 2))
    assert evens.stored().startswith("~") and len(evens.stored()) < 1_000
    assert IndexSet.parse(evens.stored()) == evens
    assert IndexSet.from_range(0, 999_999).stored() == "0-999999"
    assert IndexSet.parse("1,3-5,7").stored() == "1,3-5,7"
    huge = IndexSet.from_indices([2**40 + 2 * i for i in range(2_000)])  # beyond a bitmap
    assert huge.stored() == huge.format()


@pytest.mark.parametrize("text", ["~", "~not base64!", "~AAAA", "^0-9", "^0-9~AAAA"])
def test_parse_rejects_bad_and_unresolved_forms(text: str) -> None:
    with pytest.raises(ValueError):
        IndexSet.parse(text)


# ------------------------------------------------------------- relative sets of a group


disjoint_groups = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=0, max_size=3_000).map(
    lambda labels: {name: {i for i, x in enumerate(labels) if x == name} for name in "abc"}
)


@settings(max_examples=60, deadline=None)
@given(disjoint_groups, st.sets(st.integers(0, 3_500), max_size=300))
def test_relative_sets_resolve_to_the_stored_sets(
    group: dict[str, set[int]], extra: set[int]
) -> None:
    """``relate`` writes one set relative to the others (and the extra sets), ``resolve_relative``
    gives back exactly the stored form the writer had: whatever the sets, exact."""
    extra_set = IndexSet.from_indices(extra).difference(
        IndexSet.from_indices(set().union(*group.values()))
    )
    stored = {name: IndexSet.from_indices(members).stored() for name, members in group.items()}
    with mock.patch.object(sets, "RELATIVE_MIN_SAVING", -(10**9)):  # always write one relative
        written = sets.relate(stored, stored, [extra_set.stored()])
    relative = [name for name, value in written.items() if value.startswith("^")]
    assert len(relative) <= 1
    assert relative or not any(v.startswith("~") for v in stored.values())
    for name in relative:
        others = {k: v for k, v in written.items() if k != name}
        others["\0"] = extra_set.stored()
        assert sets.resolve_relative(written[name], others) == stored[name]


def test_random_outcomes_write_one_set_relative() -> None:
    rng = random.Random(3)
    ok = IndexSet.from_indices(i for i in range(1_000_000) if rng.random() < 0.5)
    bad = IndexSet.from_range(0, 999_999).difference(ok)
    stored = {"succeeded": ok.stored(), "failed": bad.stored()}
    written = sets.relate(stored, stored)
    assert sorted(v[0] for v in written.values()) == ["^", "~"]
    short = next(v for v in written.values() if v.startswith("^"))
    assert "~" not in short  # "the rest" of its span: nothing toggled
    assert sum(len(v) for v in written.values()) < 180_000  # about 1 bit per partition
