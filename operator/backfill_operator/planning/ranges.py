"""Compact sets of non-negative integers, written like Kubernetes' ``completedIndexes``.

An :class:`IndexSet` holds sorted, disjoint, non-adjacent inclusive intervals. Its text form is
the one Kubernetes uses for an Indexed Job's ``status.completedIndexes`` ("1,3-5,7"; "" for
the empty set). The operator stores partition states in this form, so a set of a million
indices with few gaps stays a short string.

Costs: ``in``, :meth:`IndexSet.rank` and :meth:`IndexSet.nth` are O(log intervals); ``len`` is
O(1); :meth:`IndexSet.union`, :meth:`IndexSet.difference` and :meth:`IndexSet.intersection`
are O(intervals of both); :func:`iter_complement` yields K members in O(intervals passed + K).

Pure: standard library only.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator

__all__ = ["MAX_INDEX", "IndexSet"]

#: Largest index an :class:`IndexSet` holds (indices are stored as signed 64-bit integers).
MAX_INDEX = 2**62

_TOKEN = re.compile(r"\s*(\d{1,19})\s*(?:-\s*(\d{1,19})\s*)?")


def _merge(pairs: Iterable[tuple[int, int]]) -> tuple[array[int], array[int]]:
    """Return (starts, ends) of the union of intervals given in ascending order of start.

    Overlapping and adjacent intervals are joined. ``pairs`` must be sorted by start.
    """
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    cur_lo = cur_hi = -2
    have = False
    for lo, hi in pairs:
        if have and lo <= cur_hi + 1:
            if hi > cur_hi:
                cur_hi = hi
            continue
        if have:
            starts.append(cur_lo)
            ends.append(cur_hi)
        cur_lo, cur_hi, have = lo, hi, True
    if have:
        starts.append(cur_lo)
        ends.append(cur_hi)
    return starts, ends


class IndexSet:
    """An immutable set of indices in ``[0, MAX_INDEX]``, stored as inclusive intervals.

    Build one with :meth:`parse`, :meth:`from_indices`, :meth:`from_range` or
    :meth:`from_intervals`; every operation returns a new set. Iteration is ascending;
    :meth:`iter_descending` goes the other way. Equal sets compare equal and hash alike.
    """

    __slots__ = ("_counts", "_ends", "_len", "_starts")

    _starts: array[int]
    _ends: array[int]
    _counts: array[int]
    _len: int

    def __init__(self) -> None:
        """Create the empty set; use the ``from_*`` and :meth:`parse` constructors otherwise."""
        self._set(array("q"), array("q"))

    def _set(self, starts: array[int], ends: array[int]) -> None:
        # _counts[k] = number of members in intervals before interval k (prefix sums for rank).
        counts: array[int] = array("q", bytes(8 * len(starts)))
        total = 0
        for k in range(len(starts)):
            counts[k] = total
            total += ends[k] - starts[k] + 1
        object.__setattr__(self, "_starts", starts)
        object.__setattr__(self, "_ends", ends)
        object.__setattr__(self, "_counts", counts)
        object.__setattr__(self, "_len", total)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("IndexSet is immutable")

    def __copy__(self) -> IndexSet:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> IndexSet:
        return self

    def __reduce__(self) -> tuple[Callable[[str], IndexSet], tuple[str]]:
        return (IndexSet.parse, (self.format(),))

    @classmethod
    def _make(cls, starts: array[int], ends: array[int]) -> IndexSet:
        obj = cls.__new__(cls)
        obj._set(starts, ends)
        return obj

    # ----------------------------------------------------------------------- constructors

    @classmethod
    def parse(cls, text: str) -> IndexSet:
        """Parse Kubernetes' compact index list: ``"1,3-5,7"``; ``""`` is the empty set.

        The canonical form (ascending, disjoint, non-adjacent, as Kubernetes writes
        ``completedIndexes``) round-trips through ``str()``. Other well-formed lists, such as
        ``"5,1-2,2-3"``, are accepted and normalised. Spaces around numbers are ignored.

        Raises ValueError with a plain message for anything else: an empty item, a sign, a
        range whose end is below its start (``"5-3"``), or an index above ``MAX_INDEX``.
        """
        if not text.strip():
            return cls()
        pairs: list[tuple[int, int]] = []
        for pos, item in enumerate(text.split(",")):
            m = _TOKEN.fullmatch(item)
            if m is None:
                raise ValueError(
                    f'"{text}" is not a list of indices like "1,3-5,7": item {pos + 1} '
                    f'("{item.strip()}") is not a number or a range'
                )
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise ValueError(f'"{text}" is not a list of indices: range "{lo}-{hi}" is empty')
            if hi > MAX_INDEX:
                raise ValueError(f'"{text}" is not a list of indices: {hi} is above {MAX_INDEX}')
            pairs.append((lo, hi))
        if any(pairs[k][0] <= pairs[k - 1][1] + 1 for k in range(1, len(pairs))):
            pairs.sort()
        return cls._make(*_merge(pairs))

    @classmethod
    def from_indices(cls, indices: Iterable[int]) -> IndexSet:
        """Return the set of the given indices (any order, duplicates allowed).

        O(n log n) for n indices (O(n) when already ascending). Raises ValueError for an
        index outside ``[0, MAX_INDEX]``.
        """
        values = sorted(set(indices))
        if values and (values[0] < 0 or values[-1] > MAX_INDEX):
            bad = values[0] if values[0] < 0 else values[-1]
            raise ValueError(f"index {bad} is outside 0..{MAX_INDEX}")
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        it = iter(values)
        for first in it:
            lo = hi = first
            for v in it:
                if v == hi + 1:
                    hi = v
                    continue
                starts.append(lo)
                ends.append(hi)
                lo = hi = v
            starts.append(lo)
            ends.append(hi)
        return cls._make(starts, ends)

    @classmethod
    def from_range(cls, lo: int, hi: int) -> IndexSet:
        """Return ``{lo, ..., hi}`` (both inclusive); empty when ``hi < lo``.

        Raises ValueError for a bound outside ``[0, MAX_INDEX]`` when the range is not empty.
        """
        if hi < lo:
            return cls()
        if lo < 0 or hi > MAX_INDEX:
            raise ValueError(f"range {lo}-{hi} is outside 0..{MAX_INDEX}")
        return cls._make(array("q", [lo]), array("q", [hi]))

    @classmethod
    def from_intervals(cls, intervals: Iterable[tuple[int, int]]) -> IndexSet:
        """Return the union of inclusive ``(lo, hi)`` intervals (any order; empty ones ignored).

        Raises ValueError for a bound outside ``[0, MAX_INDEX]``.
        """
        pairs = sorted((lo, hi) for lo, hi in intervals if lo <= hi)
        for lo, hi in pairs:
            if lo < 0 or hi > MAX_INDEX:
                raise ValueError(f"range {lo}-{hi} is outside 0..{MAX_INDEX}")
        return cls._make(*_merge(pairs))

    # ----------------------------------------------------------------------------- reading

    @property
    def intervals(self) -> tuple[tuple[int, int], ...]:
        """The inclusive ``(lo, hi)`` intervals, ascending, disjoint and non-adjacent."""
        return tuple(zip(self._starts, self._ends, strict=True))

    def interval_count(self) -> int:
        """Return the number of intervals (the size of the text form, not of the set)."""
        return len(self._starts)

    def format(self) -> str:
        """Return the canonical text, e.g. ``"1,3-5,7"``; ``""`` for the empty set."""
        return ",".join(
            str(lo) if lo == hi else f"{lo}-{hi}"
            for lo, hi in zip(self._starts, self._ends, strict=True)
        )

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"IndexSet({self.format()!r})"

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        k = bisect_right(self._starts, index) - 1
        return k >= 0 and index <= self._ends[k]

    def __iter__(self) -> Iterator[int]:
        for lo, hi in zip(self._starts, self._ends, strict=True):
            yield from range(lo, hi + 1)

    def iter_descending(self) -> Iterator[int]:
        """Yield the members from the largest to the smallest, lazily."""
        for k in range(len(self._starts) - 1, -1, -1):
            yield from range(self._ends[k], self._starts[k] - 1, -1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexSet):
            return NotImplemented
        return self._starts == other._starts and self._ends == other._ends

    def __hash__(self) -> int:
        return hash((self._starts.tobytes(), self._ends.tobytes()))

    def first(self) -> int:
        """Return the smallest member; raises ValueError when the set is empty."""
        if not self._starts:
            raise ValueError("the index set is empty")
        return self._starts[0]

    def last(self) -> int:
        """Return the largest member; raises ValueError when the set is empty."""
        if not self._ends:
            raise ValueError("the index set is empty")
        return self._ends[-1]

    def rank(self, index: int) -> int:
        """Return how many members are smaller than ``index`` (its position when a member).

        O(log intervals). ``index`` need not be a member.
        """
        k = bisect_right(self._starts, index) - 1
        if k < 0:
            return 0
        return self._counts[k] + min(index, self._ends[k] + 1) - self._starts[k]

    def nth(self, position: int) -> int:
        """Return the member at ``position`` (0 = smallest; negative counts from the end).

        O(log intervals). Raises IndexError when out of range.
        """
        if position < 0:
            position += self._len
        if not 0 <= position < self._len:
            raise IndexError(f"position {position} is outside a set of {self._len} indices")
        k = bisect_right(self._counts, position) - 1
        return self._starts[k] + position - self._counts[k]

    # ---------------------------------------------------------------------------- algebra

    def union(self, other: IndexSet) -> IndexSet:
        """Return the members of either set. O(intervals of both)."""
        if not other._len:
            return self
        if not self._len:
            return other
        a_s, a_e, b_s, b_e = self._starts, self._ends, other._starts, other._ends

        def pairs() -> Iterator[tuple[int, int]]:
            i = j = 0
            na, nb = len(a_s), len(b_s)
            while i < na or j < nb:
                if j >= nb or (i < na and a_s[i] <= b_s[j]):
                    yield a_s[i], a_e[i]
                    i += 1
                else:
                    yield b_s[j], b_e[j]
                    j += 1

        return IndexSet._make(*_merge(pairs()))

    def intersection(self, other: IndexSet) -> IndexSet:
        """Return the members of both sets. O(intervals of both)."""
        a_s, a_e, b_s, b_e = self._starts, self._ends, other._starts, other._ends
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        i = j = 0
        na, nb = len(a_s), len(b_s)
        while i < na and j < nb:
            lo = max(a_s[i], b_s[j])
            hi = min(a_e[i], b_e[j])
            if lo <= hi:
                starts.append(lo)
                ends.append(hi)
            if a_e[i] < b_e[j]:
                i += 1
            else:
                j += 1
        return IndexSet._make(starts, ends)

    def difference(self, other: IndexSet) -> IndexSet:
        """Return the members of this set that are not in ``other``. O(intervals of both)."""
        if not other._len or not self._len:
            return self
        b_s, b_e = other._starts, other._ends
        nb = len(b_s)
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        j = 0
        for lo, hi in zip(self._starts, self._ends, strict=True):
            while j < nb and b_e[j] < lo:
                j += 1
            cur = lo
            k = j
            while k < nb and b_s[k] <= hi:
                if b_s[k] > cur:
                    starts.append(cur)
                    ends.append(b_s[k] - 1)
                cur = max(cur, b_e[k] + 1)
                if b_e[k] > hi:
                    break
                k += 1
            if cur <= hi:
                starts.append(cur)
                ends.append(hi)
            j = k
        return IndexSet._make(starts, ends)

    __or__ = union
    __and__ = intersection
    __sub__ = difference

    def add(self, index: int) -> IndexSet:
        """Return this set with ``index`` added. O(intervals); use :meth:`union` in bulk."""
        if index in self:
            return self
        return self.union(IndexSet.from_range(index, index))

    def remove(self, index: int) -> IndexSet:
        """Return this set without ``index`` (unchanged when absent). O(intervals)."""
        if index not in self:
            return self
        return self.difference(IndexSet.from_range(index, index))

    def clip(self, lo: int, hi: int) -> IndexSet:
        """Return the members in ``[lo, hi]``. O(log intervals + intervals kept)."""
        if hi < lo or not self._len:
            return IndexSet()
        i = max(0, bisect_right(self._starts, lo) - 1)
        j = bisect_right(self._starts, hi)
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        for k in range(i, j):
            s, e = max(self._starts[k], lo), min(self._ends[k], hi)
            if s <= e:
                starts.append(s)
                ends.append(e)
        return IndexSet._make(starts, ends)

    def shift(self, delta: int) -> IndexSet:
        """Return ``{i + delta}`` for the members, dropping those that fall below 0. O(intervals).

        ``shift(1)`` of the partitions whose step succeeded is the partitions whose *previous*
        partition's step succeeded (``dependsOnPast``).
        """
        if not self._len or delta == 0:
            return self
        return IndexSet.from_intervals(
            (max(0, s + delta), min(MAX_INDEX, e + delta))
            for s, e in zip(self._starts, self._ends, strict=True)
            if e + delta >= 0 and s + delta <= MAX_INDEX
        )
