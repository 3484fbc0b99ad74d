"""The partitions that will be retried, grouped by (failed attempts, retry time).

A failed attempt below ``retries.limit + 1`` is retried at or after ``finish + backoff``
(:mod:`.state`). ``status.retries`` stores every such (partition, step) in groups, one per
attempt count and retry time, and a lane plans from the same groups (:class:`Retries`), so
the size of the state grows with the distinct retry times, not with the partitions waiting.
:meth:`Retries.coarsened` merges groups when there are many (retries already due, then retry
times rounded up), which never makes a retry start earlier or changes its attempt number.

Pure: times are arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from ..api.model import BackfillStatus, FailedPartition, RetryGroup, ScheduleStatus
from .ranges import IndexSet
from .times import parse_time, rfc3339

__all__ = ["Retries", "Retry", "retries_waiting"]


@dataclass(frozen=True)
class Retry:
    """Partitions of one step whose failed attempt ``attempts`` is retried at or after ``at``."""

    attempts: int
    at: str
    indices: IndexSet


@dataclass(frozen=True)
class Retries:
    """A lane's partitions that will be retried (waiting, or their retry running).

    Disjoint groups by (failed attempts, retry time), as ``status.retries`` stores them: the
    size of the planning state grows with the distinct retry times, not with the partitions.
    """

    groups: tuple[Retry, ...] = ()

    @classmethod
    def read(
        cls, groups: Iterable[RetryGroup], failures: Iterable[FailedPartition] = ()
    ) -> Retries:
        """The retries of one step's ``status.retries`` entries (``groups``).

        Detail entries with a retry time that no group holds (a status written before
        ``retries`` existed) are added. Raises ValueError for a set that does not parse.
        """
        book = Retries._of({(g.attempts, g.retry_at): IndexSet.parse(g.partitions) for g in groups})
        extra: dict[tuple[int, str], list[int]] = {}
        members = book.members
        for f in failures:
            if f.retry_at is not None and f.index not in members:
                extra.setdefault((f.attempts, f.retry_at), []).append(f.index)
        return book.changed(IndexSet(), extra) if extra else book

    @cached_property
    def members(self) -> IndexSet:
        """Every partition of the groups."""
        out = IndexSet()
        for g in self.groups:
            out = out.union(g.indices)
        return out

    @cached_property
    def _by_attempts(self) -> dict[int, IndexSet]:
        out: dict[int, IndexSet] = {}
        for g in self.groups:
            out[g.attempts] = out.get(g.attempts, IndexSet()).union(g.indices)
        return out

    def attempts_of(self, index: int) -> int:
        """Failed attempts recorded for ``index`` (0 when it is not waiting for a retry)."""
        return next((n for n, members in self._by_attempts.items() if index in members), 0)

    def retry_at_of(self, index: int) -> str | None:
        """When the retry of ``index`` may start, or None when it has none."""
        return next((g.at for g in self.groups if index in g.indices), None)

    def changed(self, removed: IndexSet, added: Mapping[tuple[int, str], Iterable[int]]) -> Retries:
        """Return the groups without ``removed``, with ``added`` (by (attempts, retry time)).

        An added partition leaves the group it was in. O(groups + added keys).
        """
        new = {key: IndexSet.from_indices(indices) for key, indices in added.items()}
        gone = removed
        for indices in new.values():
            gone = gone.union(indices)
        merged = {(g.attempts, g.at): g.indices.difference(gone) for g in self.groups}
        for key, indices in new.items():
            merged[key] = merged.get(key, IndexSet()).union(indices)
        return Retries._of(merged)

    @staticmethod
    def _of(merged: Mapping[tuple[int, str], IndexSet]) -> Retries:
        return Retries(
            tuple(Retry(n, at, indices) for (n, at), indices in sorted(merged.items()) if indices)
        )

    def restricted(self, keep: IndexSet) -> Retries:
        """Return the groups with only the partitions of ``keep``."""
        if not self.groups or not self.members.difference(keep):
            return self
        return Retries._of({(g.attempts, g.at): g.indices.intersection(keep) for g in self.groups})

    def coarsened(self, now: datetime, grain_seconds: int | None) -> Retries:
        """Return fewer groups whose retries start no earlier than these ones' do.

        Retries already due at ``now`` become one group per attempt count (at the latest of
        their times, which is due too); with ``grain_seconds``, later times are rounded up to
        a multiple of it (since the epoch). Planning stays exact: no retry starts earlier, none
        changes its attempt number.
        """
        merged: dict[tuple[int, str], IndexSet] = {}
        due: dict[int, tuple[datetime, IndexSet]] = {}
        for g in self.groups:
            at = parse_time(g.at) or now
            if at <= now:
                latest, indices = due.get(g.attempts, (at, IndexSet()))
                due[g.attempts] = (max(latest, at), indices.union(g.indices))
                continue
            if grain_seconds:
                stamp = math.ceil(at.timestamp() / grain_seconds) * grain_seconds
                at = datetime.fromtimestamp(stamp, UTC)
            key = (g.attempts, rfc3339(at))
            merged[key] = merged.get(key, IndexSet()).union(g.indices)
        for attempts, (at, indices) in due.items():
            key = (attempts, rfc3339(at))
            merged[key] = merged.get(key, IndexSet()).union(indices)
        return Retries._of(merged)

    def due(self, among: IndexSet, now: datetime) -> tuple[list[tuple[int, int]], datetime | None]:
        """Return the retries of ``among`` due at ``now`` and the earliest one not due yet.

        Due retries are (index, failed attempts) pairs, by index; the time is None when no
        retry of ``among`` waits beyond ``now``.
        """
        ready: list[tuple[int, int]] = []
        later: datetime | None = None
        for g in self.groups:
            members = g.indices.intersection(among)
            if not members:
                continue
            at = parse_time(g.at) or now
            if at > now:
                later = at if later is None else min(later, at)
            else:
                ready.extend((i, g.attempts) for i in members)
        ready.sort()
        return ready, later


def retries_waiting(status: BackfillStatus | ScheduleStatus) -> int:
    """How many (partition, step) pairs of a status wait for a retry (not running it yet).

    The pairs of ``status.retries`` (and of ``status.failures`` entries with a retry time, for
    a status written before ``retries`` existed) without a ``status.running`` entry.
    """
    steps = {g.step for g in status.retries} | {f.step for f in status.failures if f.retry_at}
    total = 0
    for step in steps:
        try:
            book = Retries.read(
                [g for g in status.retries if g.step == step],
                [f for f in status.failures if f.step == step],
            )
        except ValueError:
            continue
        running = IndexSet.from_intervals(
            (r.index, r.index + (r.count or 1) - 1) for r in status.running if r.step == step
        )
        total += len(book.members.difference(running))
    return total
