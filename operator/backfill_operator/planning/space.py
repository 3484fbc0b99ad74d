"""Partition spaces: what the partitions of a PartitionedJob are, their keys and windows.

A PartitionedJob is partitioned by a cron schedule (:class:`TimePartitions`) or by a list of
values (:class:`StaticPartitions`). Both number their partitions by a *global index* from 0
and turn a Backfill's ``range`` or ``partitions`` into a :class:`Selection`: the ascending set
of global indices it runs, with each partition's key and window.

This module holds the common part (:class:`Partition`, :class:`Selection`, the abstract
:class:`PartitionSpace`) and :class:`StaticPartitions`; :mod:`.schedule` holds
:class:`TimePartitions`. :func:`space_of` builds the space of a PartitionedJob spec.

Pure: no clock; ``now`` is an argument. Errors are :class:`PartitionError` with a message a
user can act on, written into a Kubernetes condition verbatim.
"""

from __future__ import annotations

import abc
import hashlib
import json
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .ranges import IndexSet

__all__ = [
    "MAX_PARTITIONS",
    "Partition",
    "PartitionError",
    "PartitionSpace",
    "Selection",
    "StaticPartitions",
    "check_key_list",
    "fingerprint_of",
    "plural",
    "utc_from_epoch",
]

#: Most partitions one selection may hold; larger selections are refused, never enumerated.
MAX_PARTITIONS: int = 1_000_000


class PartitionError(ValueError):
    """A partition definition or selection is invalid; the message is user-facing."""


@dataclass(frozen=True)
class Partition:
    """One partition: global index, key and, for schedules, its window ``[start, end)``.

    ``start``/``end`` are aware UTC datetimes (``t_i`` and ``t_(i+1)``); None for static values.
    """

    index: int
    key: str
    start: datetime | None
    end: datetime | None


# --------------------------------------------------------------------------------- helpers


def utc_from_epoch(epoch: int) -> datetime:
    """Return the aware UTC datetime of ``epoch`` (whole seconds since the Unix epoch)."""
    return datetime.fromtimestamp(epoch, UTC)


def fingerprint_of(*parts: str) -> str:
    """Return 16 hex digits of sha256 over ``parts`` joined by newlines."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def plural(n: int, word: str) -> str:
    """Return ``"1 partition"`` / ``"3 partitions"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ------------------------------------------------------------------------------- Selection


class Selection:
    """The partitions a Backfill runs: ascending global indices with keys and windows.

    Immutable. ``indices`` is the exact set of global indices selected, ``len()`` its size.
    :meth:`partition` and :meth:`key` answer for members only: O(1) for a range selection,
    O(log intervals) for a selection by keys. Built by :meth:`PartitionSpace.select_range`
    and :meth:`PartitionSpace.select_keys`.
    """

    __slots__ = (
        "_ends",
        "_first",
        "_format",
        "_indices",
        "_locate",
        "_single",
        "_space",
        "_starts",
    )

    _space: str
    _indices: IndexSet
    _format: Callable[[int, int], str]
    _starts: array[int] | None
    _ends: array[int] | None
    _single: bool
    _first: int
    _locate: Callable[[int], tuple[int, int]] | None

    def __init__(
        self,
        *,
        space_fingerprint: str,
        indices: IndexSet,
        key_format: Callable[[int, int], str],
        starts: array[int] | None = None,
        ends: array[int] | None = None,
        locate: Callable[[int], tuple[int, int]] | None = None,
    ) -> None:
        """Wrap a resolved selection (spaces build these; not meant for direct use).

        ``key_format(index, start_epoch)`` returns a member's key. ``starts`` holds each
        member's window start in epoch seconds, by rank; ``ends`` the window ends, or None
        when ``indices`` is one interval and ``starts`` has one more entry (``end[r] ==
        starts[r + 1]``). Both None for static values. ``locate(index)`` instead returns a
        member's window ``(start, end)`` in epoch seconds on demand (a scheduled run's growing
        set, whose windows are looked up only for the few partitions launched). Raises
        ValueError when the set is empty.
        """
        if not indices:
            raise ValueError("a selection holds at least one partition")
        set_ = object.__setattr__
        set_(self, "_space", space_fingerprint)
        set_(self, "_indices", indices)
        set_(self, "_format", key_format)
        set_(self, "_starts", starts)
        set_(self, "_ends", ends)
        set_(self, "_single", indices.interval_count() == 1)
        set_(self, "_first", indices.first())
        set_(self, "_locate", locate)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Selection is immutable")

    def __copy__(self) -> Selection:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Selection:
        return self

    @property
    def space_fingerprint(self) -> str:
        """Fingerprint of the partition space the indices belong to."""
        return self._space

    @property
    def indices(self) -> IndexSet:
        """The exact set of global indices selected (ascending when iterated)."""
        return self._indices

    def __len__(self) -> int:
        return len(self._indices)

    def __repr__(self) -> str:
        return f"Selection({len(self)} partitions, {self.first_key!r}..{self.last_key!r})"

    def _rank(self, index: int) -> int:
        if index not in self._indices:
            raise KeyError(f"partition index {index} is not in this selection")
        if self._locate is not None:
            return index  # windows are located by index
        return index - self._first if self._single else self._indices.rank(index)

    def _window(self, rank: int) -> tuple[int, int] | None:
        if self._locate is not None:
            return self._locate(rank)
        if self._starts is None:
            return None
        start = self._starts[rank]
        end = self._starts[rank + 1] if self._ends is None else self._ends[rank]
        return start, end

    def partition(self, index: int) -> Partition:
        """Return the partition with global ``index``; raises KeyError if not selected."""
        window = self._window(self._rank(index))
        if window is None:
            return Partition(index=index, key=self._format(index, 0), start=None, end=None)
        return Partition(
            index=index,
            key=self._format(index, window[0]),
            start=utc_from_epoch(window[0]),
            end=utc_from_epoch(window[1]),
        )

    def key(self, index: int) -> str:
        """Return the key of the partition with global ``index``; KeyError if not selected."""
        window = self._window(self._rank(index))
        return self._format(index, 0 if window is None else window[0])

    @property
    def first_key(self) -> str:
        """Key of the partition with the lowest selected index."""
        return self.key(self._first)

    @property
    def last_key(self) -> str:
        """Key of the partition with the highest selected index."""
        return self.key(self._indices.last())


# ---------------------------------------------------------------------------------- spaces


class PartitionSpace(abc.ABC):
    """Every partition of one PartitionedJob, numbered by a global index from 0."""

    #: sha256-based 16-hex-digit digest of what numbers the partitions: the cron expression,
    #: time zone and first occurrence, or the values. Not ``end``: moving the end keeps indices.
    fingerprint: str
    #: ``"date"`` (keys ``YYYY-MM-DD``), ``"minute"`` (``YYYY-MM-DDTHH:MM``) or ``"static"``.
    granularity: str

    @abc.abstractmethod
    def describe(self) -> str:
        """Return a short description: ``hourly schedule "0 * * * *" in UTC``, ``3 values``."""

    @abc.abstractmethod
    def select_range(self, from_: str | None, to: str | None) -> Selection:
        """Return the partitions from ``from_`` to ``to``, both inclusive.

        None ``from_`` means the first partition, None ``to`` the last existing one. Raises
        PartitionError when a bound does not parse, ``from_`` is after ``to``, nothing is
        selected, or more than ``MAX_PARTITIONS`` partitions would be.
        """

    @abc.abstractmethod
    def select_keys(self, keys: Sequence[str]) -> Selection:
        """Return the partitions with exactly these keys (any order; result is ascending).

        Raises PartitionError naming the first key (in the given order) that is not a key of
        an existing partition, on a duplicate key, on an empty list, or on more than
        ``MAX_PARTITIONS`` keys.
        """

    @abc.abstractmethod
    def last_index(self) -> int | None:
        """Return the highest global index that exists now, or None when none does yet."""


class StaticPartitions(PartitionSpace):
    """Partitions named by a list of values; the global index is the list position.

    Raises PartitionError for an empty list, an empty value, a duplicate value, or more than
    ``MAX_PARTITIONS`` values.
    """

    def __init__(self, values: Sequence[str]) -> None:
        values = list(values)
        if not values:
            raise PartitionError("values is empty: list at least one partition value")
        if len(values) > MAX_PARTITIONS:
            raise PartitionError(
                f"values has {len(values)} entries, more than the limit of {MAX_PARTITIONS}"
            )
        positions: dict[str, int] = {}
        for i, v in enumerate(values):
            if not v:
                raise PartitionError(f"values[{i}] is empty: partition values must be non-empty")
            if v in positions:
                raise PartitionError(
                    f'value "{v}" appears twice in values (positions {positions[v]} and {i})'
                )
            positions[v] = i
        self._values: tuple[str, ...] = tuple(values)
        self._positions = positions
        self.fingerprint = fingerprint_of("values", json.dumps(self._values))
        self.granularity = "static"

    def describe(self) -> str:
        """Return ``"3 static values"`` (the count of values)."""
        return plural(len(self._values), "static value")

    def _key_format(self, index: int, _start: int) -> str:
        return self._values[index]

    def _position(self, key: str) -> int:
        pos = self._positions.get(key)
        if pos is None:
            raise PartitionError(
                f'partition "{key}" is not a partition of this job ({self.describe()})'
            )
        return pos

    def _selection(self, indices: IndexSet) -> Selection:
        return Selection(
            space_fingerprint=self.fingerprint, indices=indices, key_format=self._key_format
        )

    def select_range(self, from_: str | None, to: str | None) -> Selection:
        """Return the values from key ``from_`` to key ``to`` by list position, inclusive.

        None bounds mean the first/last value. Raises PartitionError for an unknown key or
        when ``from_`` comes after ``to`` in the list.
        """
        lo = 0 if from_ is None else self._position(from_)
        hi = len(self._values) - 1 if to is None else self._position(to)
        if lo > hi:
            raise PartitionError(
                f'range.from "{from_}" comes after range.to "{to}" in values '
                f"(positions {lo} and {hi})"
            )
        return self._selection(IndexSet.from_range(lo, hi))

    def select_keys(self, keys: Sequence[str]) -> Selection:
        """Return the values named by ``keys``; see :meth:`PartitionSpace.select_keys`."""
        check_key_list(keys)
        return self._selection(IndexSet.from_indices(self._position(k) for k in keys))

    def last_index(self) -> int:
        """Return ``len(values) - 1``: every value exists."""
        return len(self._values) - 1


def check_key_list(keys: Sequence[str]) -> None:
    """Raise PartitionError for an empty list, too many keys or a duplicate key."""
    if isinstance(keys, str):
        raise TypeError("keys must be a sequence of strings, not a string")
    if not keys:
        raise PartitionError("no partitions listed: list at least one partition key")
    if len(keys) > MAX_PARTITIONS:
        raise PartitionError(
            f"{len(keys)} partitions listed, more than the limit of {MAX_PARTITIONS}"
        )
    seen: set[str] = set()
    for k in keys:
        if k in seen:
            raise PartitionError(f'partition "{k}" is listed twice')
        seen.add(k)
