"""Partition spaces and selections from specs: the one place a spec becomes partitions.

:func:`build_space` turns a PartitionedJob spec into its partition space, and
:func:`resolve_selection` a Backfill spec into the partitions it selects (with the end of an
open range pinned by the status); :class:`SelectionCache` keeps resolved selections across
passes. Errors are :class:`InvalidSpec` with the condition reason to report.
:mod:`.verdict` is their one caller outside tests and benchmarks.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from ..api.model import BackfillSpec, BackfillStatus, PartitionedJobSpec
from ..api.reasons import Reason
from .schedule import TimePartitions
from .space import PartitionError, PartitionSpace, Selection, StaticPartitions

#: Resolved selections a :class:`SelectionCache` keeps (resolving is the expensive part of a
#: pass for huge backfills).
SELECTION_CACHE_SIZE = 64


class InvalidSpec(Exception):
    """The Backfill cannot run as written.

    ``reason`` and ``message`` go into its conditions (and the Warning event); ``detail`` is
    the cause without the subject, for a caller that words the subject itself (the CLI).
    """

    def __init__(self, reason: Reason, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = message if detail is None else detail


def build_space(spec: PartitionedJobSpec, now: datetime) -> PartitionSpace:
    """Return the partition space of a PartitionedJob at ``now`` (aware UTC).

    Raises :class:`InvalidSpec` (reason InvalidPartitions) for an unparseable cron, unknown
    time zone, bad start/end or bad values.
    """
    parts = spec.partitions
    try:
        if parts.schedule is not None:
            sched = parts.schedule
            return TimePartitions(
                cron=sched.cron,
                time_zone=sched.time_zone,
                start=sched.start,
                end=sched.end,
                now=now,
            )
        return StaticPartitions(parts.values or [])
    except PartitionError as exc:
        raise InvalidSpec(Reason.INVALID_PARTITIONS, str(exc)) from exc


def effective_range_to(spec: BackfillSpec, previous: BackfillStatus) -> str | None:
    """Return ``range.to``, or the pinned last key when ``to`` is unset and already resolved.

    "Up to the last complete window" is resolved once, on the first pass after the range is
    set, and pinned in ``status.selection`` so a Backfill has a fixed end.
    """
    if spec.range is None:
        return None
    if spec.range.to is not None:
        return spec.range.to
    sel = previous.selection
    if sel is not None and sel.range_from == spec.range.from_ and sel.range_to is None:
        return sel.last
    return None


def selection_key(
    partitioned_job: PartitionedJobSpec, spec: BackfillSpec, previous: BackfillStatus
) -> tuple[object, ...] | None:
    """Return a hashable key under which a resolved selection may be cached, or None.

    None when the selection depends on ``now`` (an unpinned open range).
    """
    sched = partitioned_job.partitions.schedule
    job_part = (
        (sched.cron, sched.time_zone, sched.start, sched.end)
        if sched is not None
        else tuple(partitioned_job.partitions.values or ())
    )
    if spec.partitions is not None:
        return (job_part, "keys", tuple(spec.partitions))
    to = effective_range_to(spec, previous)
    if to is None or spec.range is None:
        return None
    return (job_part, "range", spec.range.from_, to)


def resolve_selection(
    space: PartitionSpace, spec: BackfillSpec, previous: BackfillStatus
) -> Selection:
    """Return the partitions a Backfill selects (ascending global indices).

    Raises :class:`InvalidSpec` (reason InvalidSelection) for a key that is not a partition of
    the job, an unparseable or empty range, or more than ``MAX_PARTITIONS`` partitions.
    """
    try:
        if spec.partitions is not None:
            return space.select_keys(spec.partitions)
        assert spec.range is not None  # the CRD's CEL rule: exactly one of range, partitions
        return space.select_range(spec.range.from_, effective_range_to(spec, previous))
    except PartitionError as exc:
        raise InvalidSpec(Reason.INVALID_SELECTION, str(exc)) from exc


class SelectionCache:
    """The last :data:`SELECTION_CACHE_SIZE` resolved selections, by :func:`selection_key`.

    Thread-safe; resolving runs outside the lock (two threads may resolve the same key once
    each: the answers are equal).
    """

    def __init__(self, size: int = SELECTION_CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[tuple[object, ...], Selection] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(
        self,
        space: PartitionSpace,
        partitioned_job: PartitionedJobSpec,
        spec: BackfillSpec,
        previous: BackfillStatus,
    ) -> Selection:
        """Return :func:`resolve_selection`'s answer, from the cache when it may be cached."""
        key = selection_key(partitioned_job, spec, previous)
        if key is None:
            return resolve_selection(space, spec, previous)
        with self._lock:
            cached = self._items.get(key)
            if cached is not None:
                self._items.move_to_end(key)
                return cached
        selection = resolve_selection(space, spec, previous)
        with self._lock:
            self._items[key] = selection
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return selection
