"""Compact sets of non-negative integers, written like Kubernetes' ``completedIndexes``.

An :class:`IndexSet` holds sorted, disjoint, non-adjacent inclusive intervals. Its text form is
the one Kubernetes uses for an Indexed Job's ``status.completedIndexes`` ("1,3-5,7"; "" for
the empty set). The operator stores partition states in this form, so a set of a million
indices with few gaps stays a short string; a set with many gaps is stored as a compressed
bitmap instead (:meth:`IndexSet.stored`, the forms in :mod:`backfill_operator.api.sets`), and
:meth:`IndexSet.parse` reads both.

Two representations, chosen per set and converted lazily (both are exact):

* intervals (``array`` of starts and ends): what parsing text gives, and what small sets use;
* a Roaring bitmap (``pyroaring``, indices up to 2**32 - 1): what the bitmap form decodes to,
  and what the algebra of two sets with more than :data:`SMALL_INTERVALS` intervals between
  them runs on (in C: the union of two sets of 500,000 intervals each takes milliseconds
  where the interval merge takes half a second).

Costs: ``in``, :meth:`IndexSet.rank` and :meth:`IndexSet.nth` are O(log intervals) (or a
bitmap lookup); ``len`` is O(1) once known; :meth:`IndexSet.union`,
:meth:`IndexSet.difference` and :meth:`IndexSet.intersection` are O(intervals of both) for
small sets, O(bitmap containers) otherwise. Reading :attr:`IndexSet.intervals` of a bitmap
set costs O(intervals) once.

Pure: the standard library and ``pyroaring`` only.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from pyroaring import BitMap

from ..api import sets as forms

__all__ = ["MAX_INDEX", "SMALL_INTERVALS", "IndexSet"]

#: Largest index an :class:`IndexSet` holds (indices are stored as signed 64-bit integers).
MAX_INDEX = 2**62
#: Two sets with at most this many intervals between them are combined interval by interval;
#: larger ones as bitmaps (when every index fits one).
SMALL_INTERVALS = 64

_TOKEN = re.compile(r"\s*(\d{1,19})\s*(?:-\s*(\d{1,19})\s*)?")
#: A whole well-formed text (checked at C speed before the items are read).
_WELL_FORMED = re.compile(r"\d{1,19}(?:-\d{1,19})?(?:,\d{1,19}(?:-\d{1,19})?)*")
#: Text forms at least this long are parsed once and remembered (:func:`_parse_cached`).
_CACHED_LENGTH = 4096


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


def _range_bitmap(lo: int, hi: int) -> BitMap:
    out = BitMap()
    out.add_range(lo, hi + 1)
    return out


class IndexSet:
    """An immutable set of indices in ``[0, MAX_INDEX]``, as intervals and/or a bitmap.

    Build one with :meth:`parse`, :meth:`from_indices`, :meth:`from_range` or
    :meth:`from_intervals`; every operation returns a new set. Iteration is ascending;
    :meth:`iter_descending` goes the other way. Equal sets compare equal and hash alike,
    whatever their representation.
    """

    __slots__ = ("_bitmap_cache", "_counts", "_ends", "_len", "_starts")

    _starts: array[int] | None
    _ends: array[int] | None
    _counts: array[int] | None
    _bitmap_cache: BitMap | None
    _len: int

    def __init__(self) -> None:
        """Create the empty set; use the ``from_*`` and :meth:`parse` constructors otherwise."""
        self._init(array("q"), array("q"), None)

    def _init(self, starts: array[int] | None, ends: array[int] | None, bm: BitMap | None) -> None:
        set_ = object.__setattr__
        set_(self, "_starts", starts)
        set_(self, "_ends", ends)
        set_(self, "_bitmap_cache", bm)
        set_(self, "_counts", None)
        set_(self, "_len", -1)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("IndexSet is immutable")

    def __copy__(self) -> IndexSet:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> IndexSet:
        return self

    def __reduce__(self) -> tuple[Callable[[str], IndexSet], tuple[str]]:
        return (IndexSet.parse, (self.stored(),))

    @classmethod
    def _make(cls, starts: array[int], ends: array[int]) -> IndexSet:
        obj = cls.__new__(cls)
        obj._init(starts, ends, None)
        return obj

    @classmethod
    def _of_bitmap(cls, bm: BitMap) -> IndexSet:
        obj = cls.__new__(cls)
        obj._init(None, None, bm)
        return obj

    # ------------------------------------------------------------------ representations

    def _intervals(self) -> tuple[array[int], array[int]]:
        """(starts, ends), computed from the bitmap on first use."""
        if self._starts is None or self._ends is None:
            bm = self._bitmap_cache
            assert bm is not None
            starts = array("q", bm.difference(bm.shift(1)).to_array())
            ends = array("q", bm.difference(bm.shift(-1)).to_array())
            object.__setattr__(self, "_starts", starts)
            object.__setattr__(self, "_ends", ends)
            return starts, ends
        return self._starts, self._ends

    def _bitmap(self) -> BitMap | None:
        """The bitmap (built from the intervals on first use); None when an index is too big."""
        bm = self._bitmap_cache
        if bm is not None:
            return bm
        starts, ends = self._intervals()
        if ends and ends[-1] > forms.BITMAP_MAX_INDEX:
            return None
        bm = BitMap()
        singles = [lo for lo, hi in zip(starts, ends, strict=True) if lo == hi]
        if singles:
            bm.update(singles)
        if len(singles) < len(starts):
            add = bm.add_range
            for lo, hi in zip(starts, ends, strict=True):
                if lo != hi:
                    add(lo, hi + 1)
        object.__setattr__(self, "_bitmap_cache", bm)
        return bm

    def _prefix_counts(self) -> array[int]:
        # counts[k] = number of members in intervals before interval k (prefix sums for rank).
        counts = self._counts
        if counts is None:
            starts, ends = self._intervals()
            counts = array("q", bytes(8 * len(starts)))
            total = 0
            for k in range(len(starts)):
                counts[k] = total
                total += ends[k] - starts[k] + 1
            object.__setattr__(self, "_counts", counts)
        return counts

    def _small(self, other: IndexSet) -> bool:
        """True when ``self`` and ``other`` are best combined interval by interval."""
        if self._starts is None or other._starts is None:
            return False
        return len(self._starts) + len(other._starts) <= SMALL_INTERVALS

    def _bitmaps(self, other: IndexSet) -> tuple[BitMap, BitMap] | None:
        """Both bitmaps when the pair is large and every index fits a bitmap, else None."""
        if self._small(other):
            return None
        a = self._bitmap()
        b = other._bitmap() if a is not None else None
        return None if a is None or b is None else (a, b)

    # ----------------------------------------------------------------------- constructors

    @classmethod
    def parse(cls, text: str) -> IndexSet:
        """Parse a stored index set: ``"1,3-5,7"``, ``""`` (empty) or the bitmap form ``"~..."``.

        The canonical text (ascending, disjoint, non-adjacent, as Kubernetes writes
        ``completedIndexes``) round-trips through ``str()``; :meth:`stored` round-trips too.
        Other well-formed lists, such as ``"5,1-2,2-3"``, are accepted and normalised. Spaces
        around numbers are ignored. Long texts are parsed once and remembered (the same status
        is read by several parts of a pass).

        Raises ValueError with a plain message for anything else: an empty item, a sign, a
        range whose end is below its start (``"5-3"``), an index above ``MAX_INDEX``, a bitmap
        form that does not decode, or a relative form (``"^..."``: a status' validators
        resolve those, :mod:`backfill_operator.api.sets`).
        """
        if len(text) >= _CACHED_LENGTH:
            return _parse_cached(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> IndexSet:
        if text.startswith(forms.BITMAP_PREFIX):
            return cls._of_bitmap(forms.decode_bitmap(text))
        if text.startswith(forms.RELATIVE_PREFIX):
            raise ValueError(
                f'"{text[:40]}" is a relative index set: it is read with the status it is part of'
            )
        if not text.strip():
            return cls()
        if _WELL_FORMED.fullmatch(text):
            fast = cls._parse_fast(text)
            if fast is not None:
                return fast
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
    def _parse_fast(cls, text: str) -> IndexSet | None:
        """Parse a text without spaces (what the operator writes) in one pass, no regex per item.

        None when a range is invalid (the caller's item-by-item parse says which).
        """
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        ordered = True
        prev = -2
        for item in text.split(","):
            lo_text, dash, hi_text = item.partition("-")
            lo = int(lo_text)
            hi = int(hi_text) if dash else lo
            if hi < lo or hi > MAX_INDEX:
                return None
            if lo <= prev + 1:
                ordered = False
            starts.append(lo)
            ends.append(hi)
            prev = hi
        if ordered:
            return cls._make(starts, ends)
        return cls._make(*_merge(sorted(zip(starts, ends, strict=True))))

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
        if len(values) > SMALL_INTERVALS and values[-1] <= forms.BITMAP_MAX_INDEX:
            return cls._of_bitmap(BitMap(values))
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
        return tuple(zip(*self._intervals(), strict=True))

    def interval_count(self) -> int:
        """Return the number of intervals (the size of the text form, not of the set)."""
        if self._starts is None:
            bm = self._bitmap_cache
            assert bm is not None
            return len(bm.difference(bm.shift(1)))
        return len(self._starts)

    def format(self) -> str:
        """Return the canonical text, e.g. ``"1,3-5,7"``; ``""`` for the empty set."""
        return ",".join(
            str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in zip(*self._intervals(), strict=True)
        )

    def stored(self) -> str:
        """Return the form a status stores: the text, or the bitmap form when it is shorter.

        Text while it is at most :data:`~backfill_operator.api.sets.TEXT_LIMIT` characters
        (a clean run's sets stay readable); a set with many gaps becomes ``"~<base64>"``
        (:func:`backfill_operator.api.sets.choose`). :meth:`parse` reads both. Deterministic:
        equal sets give equal strings.
        """
        return forms.choose(self.interval_count(), self.format, self._bitmap)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        if self.interval_count() > 20:
            return f"IndexSet(<{len(self)} indices in {self.interval_count()} intervals>)"
        return f"IndexSet({self.format()!r})"

    def __len__(self) -> int:
        n = self._len
        if n < 0:
            if self._bitmap_cache is not None:
                n = len(self._bitmap_cache)
            else:
                starts, ends = self._intervals()
                n = sum(ends) - sum(starts) + len(starts)
            object.__setattr__(self, "_len", n)
        return n

    def __bool__(self) -> bool:
        if self._bitmap_cache is not None:
            return bool(self._bitmap_cache)
        return bool(self._starts)

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        bm = self._bitmap_cache
        if bm is not None:
            return 0 <= index <= forms.BITMAP_MAX_INDEX and index in bm
        starts, ends = self._intervals()
        k = bisect_right(starts, index) - 1
        return k >= 0 and index <= ends[k]

    def __iter__(self) -> Iterator[int]:
        if self._bitmap_cache is not None:
            yield from self._bitmap_cache
            return
        for lo, hi in zip(*self._intervals(), strict=True):
            yield from range(lo, hi + 1)

    def iter_descending(self) -> Iterator[int]:
        """Yield the members from the largest to the smallest, lazily."""
        starts, ends = self._intervals()
        for k in range(len(starts) - 1, -1, -1):
            yield from range(ends[k], starts[k] - 1, -1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexSet):
            return NotImplemented
        if self is other:
            return True
        a, b = self._bitmap_cache, other._bitmap_cache
        if a is not None and b is not None:
            return bool(a == b)
        if len(self) != len(other):
            return False
        return self._intervals() == other._intervals()

    def __hash__(self) -> int:
        if not self:
            return hash(())
        return hash((len(self), self.first(), self.last()))

    def first(self) -> int:
        """Return the smallest member; raises ValueError when the set is empty."""
        if not self:
            raise ValueError("the index set is empty")
        bm = self._bitmap_cache
        if bm is not None:
            return int(bm.min())
        assert self._starts is not None
        return self._starts[0]

    def last(self) -> int:
        """Return the largest member; raises ValueError when the set is empty."""
        if not self:
            raise ValueError("the index set is empty")
        bm = self._bitmap_cache
        if bm is not None:
            return int(bm.max())
        assert self._ends is not None
        return self._ends[-1]

    def rank(self, index: int) -> int:
        """Return how many members are smaller than ``index`` (its position when a member).

        O(log intervals). ``index`` need not be a member.
        """
        bm = self._bitmap_cache
        if bm is not None:
            if index <= 0:
                return 0
            if index > forms.BITMAP_MAX_INDEX:
                return len(self)
            return int(bm.rank(index - 1))
        starts, ends = self._intervals()
        k = bisect_right(starts, index) - 1
        if k < 0:
            return 0
        return self._prefix_counts()[k] + min(index, ends[k] + 1) - starts[k]

    def nth(self, position: int) -> int:
        """Return the member at ``position`` (0 = smallest; negative counts from the end).

        O(log intervals). Raises IndexError when out of range.
        """
        n = len(self)
        if position < 0:
            position += n
        if not 0 <= position < n:
            raise IndexError(f"position {position} is outside a set of {n} indices")
        bm = self._bitmap_cache
        if bm is not None:
            return int(bm[position])
        counts = self._prefix_counts()
        k = bisect_right(counts, position) - 1
        starts, _ = self._intervals()
        return starts[k] + position - counts[k]

    # ---------------------------------------------------------------------------- algebra

    def union(self, other: IndexSet) -> IndexSet:
        """Return the members of either set. O(intervals of both), or bitmap-fast."""
        if not other:
            return self
        if not self:
            return other
        pair = self._bitmaps(other)
        if pair is not None:
            return IndexSet._of_bitmap(pair[0] | pair[1])
        (a_s, a_e), (b_s, b_e) = self._intervals(), other._intervals()

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
        """Return the members of both sets. O(intervals of both), or bitmap-fast."""
        if not self or not other:
            return IndexSet()
        pair = self._bitmaps(other)
        if pair is not None:
            return IndexSet._of_bitmap(pair[0] & pair[1])
        (a_s, a_e), (b_s, b_e) = self._intervals(), other._intervals()
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
        if not other or not self:
            return self
        pair = self._bitmaps(other)
        if pair is not None:
            return IndexSet._of_bitmap(pair[0] - pair[1])
        (a_s, a_e), (b_s, b_e) = self._intervals(), other._intervals()
        nb = len(b_s)
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        j = 0
        for lo, hi in zip(a_s, a_e, strict=True):
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
        if hi < lo or not self:
            return IndexSet()
        bm = self._bitmap_cache
        if bm is not None and self._starts is None:
            lo, hi = max(lo, 0), min(hi, forms.BITMAP_MAX_INDEX)
            return IndexSet._of_bitmap(bm & _range_bitmap(lo, hi)) if lo <= hi else IndexSet()
        all_starts, all_ends = self._intervals()
        i = max(0, bisect_right(all_starts, lo) - 1)
        j = bisect_right(all_starts, hi)
        starts: array[int] = array("q")
        ends: array[int] = array("q")
        for k in range(i, j):
            s, e = max(all_starts[k], lo), min(all_ends[k], hi)
            if s <= e:
                starts.append(s)
                ends.append(e)
        return IndexSet._make(starts, ends)

    def shift(self, delta: int) -> IndexSet:
        """Return ``{i + delta}`` for the members, dropping those that fall below 0. O(intervals).

        ``shift(1)`` of the partitions whose step succeeded is the partitions whose *previous*
        partition's step succeeded (``dependsOnPast``).
        """
        if not self or delta == 0:
            return self
        bm = self._bitmap_cache
        if (
            bm is not None
            and self._starts is None
            and self.last() + delta <= forms.BITMAP_MAX_INDEX
        ):
            return IndexSet._of_bitmap(bm.shift(delta))
        starts, ends = self._intervals()
        return IndexSet.from_intervals(
            (max(0, s + delta), min(MAX_INDEX, e + delta))
            for s, e in zip(starts, ends, strict=True)
            if e + delta >= 0 and s + delta <= MAX_INDEX
        )


@lru_cache(maxsize=8)
def _parse_cached(text: str) -> IndexSet:
    """:meth:`IndexSet.parse` of a long text, remembered (sets are immutable)."""
    return IndexSet._parse(text)
