"""What a PartitionedJob's partitions have: an outcome, an active Job, or nothing (missing).

Pure arithmetic on compact index sets (:class:`~backfill_operator.planning.ranges.IndexSet`),
shared by ``status`` of a PartitionedJob (its ledger grid) and ``missing``:

* :func:`ledger_sets` reads the PartitionedJob's ledger (``status.ledger``), if it was kept
  for the current numbering of the partitions (:func:`step_ledger_sets`: each step's, for a
  job with steps);
* :func:`active_jobs` reduces the Jobs of every run of the job (scheduled runs and Backfills)
  to the partitions with an active Job, running or held by Kueue (queued)
  (:func:`active_jobs_by_step`: per step, from the Jobs' step label);
* :class:`Coverage` puts both over a set of complete partitions; :func:`missing_of` is what
  ``missing`` lists: no outcome in the ledger and no active Job (with ``include_failed``,
  also those whose last outcome is a failure);
* :func:`key_ranges` groups indices into runs of consecutive partitions, named by their first
  and last keys (``2024-01-03 … 2024-01-05 (3)``);
* :func:`fill_target` is the Backfill selection that fills them (a key list up to
  :data:`~backfill_operator.api.model.MAX_EXPLICIT_PARTITIONS`, else one range);
* :func:`schedule_share` counts which of them the scheduled runs left, took on or have not
  decided on yet (:func:`count_within`: a count without building the intersection).

Costs are O(intervals) of the sets involved, never O(partitions), except where keys are
produced (one key lookup per range end, or per key of an explicit list). No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from ..api.model import (
    MAX_EXPLICIT_PARTITIONS,
    PartitionedJobStatus,
    Reprocess,
    ScheduleStatus,
)
from ..planning.observed import ObservedJob
from ..planning.ranges import IndexSet

__all__ = [
    "Coverage",
    "FillTarget",
    "KeyRange",
    "ScheduleShare",
    "active_jobs",
    "active_jobs_by_step",
    "count_within",
    "coverage_of",
    "fill_target",
    "iter_keys",
    "key_ranges",
    "ledger_problem",
    "ledger_sets",
    "missing_of",
    "schedule_share",
    "step_coverages",
    "step_ledger_sets",
]


def ledger_sets(
    status: PartitionedJobStatus, fingerprint: str | None
) -> tuple[IndexSet, IndexSet] | None:
    """Return the ledger's (succeeded, failed) index sets, or None when it does not apply.

    The ledger applies when it was kept for ``fingerprint``, the numbering of the partition
    space as built now (``status.partitioning``): None when the operator has not numbered the
    job yet or the numbering changed since (the operator clears the ledger on its next pass).
    An unparseable set reads as empty.
    """
    if fingerprint is None or status.partitioning != fingerprint:
        return None
    return _parse(status.ledger.succeeded), _parse(status.ledger.failed)


def step_ledger_sets(
    status: PartitionedJobStatus, fingerprint: str | None
) -> dict[str, tuple[IndexSet, IndexSet]] | None:
    """Return each step's (succeeded, failed) index sets (``status.ledger.steps``), or None.

    None when the ledger does not apply (as :func:`ledger_sets`); a step the ledger has no
    entry for is absent (no outcome recorded yet).
    """
    if fingerprint is None or status.partitioning != fingerprint:
        return None
    return {s.name: (_parse(s.succeeded), _parse(s.failed)) for s in status.ledger.steps}


def ledger_problem(status: PartitionedJobStatus, fingerprint: str | None) -> str | None:
    """Return why the ledger does not apply (:func:`ledger_sets` is None), or None.

    Worded for a user: the operator has not numbered the partitions yet, or it numbered
    another partitioning (the cron, time zone, start or values changed since).
    """
    if fingerprint is None or status.partitioning == fingerprint:
        return None
    if status.partitioning is None:
        return (
            "no outcome is known: the operator has not recorded this job's status yet (is it "
            "running?)"
        )
    return (
        "no outcome is known: the ledger belongs to an earlier numbering of the partitions "
        "(cron, timeZone, start or values changed); the operator clears it on its next pass"
    )


def _parse(text: str) -> IndexSet:
    try:
        return IndexSet.parse(text)
    except ValueError:
        return IndexSet()


def active_jobs(jobs: Iterable[ObservedJob], fingerprint: str | None) -> tuple[IndexSet, IndexSet]:
    """Return the partitions with an active Job of any run: (running, queued).

    ``jobs`` are every Job of the PartitionedJob (label ``backfill.dev/partitioned-job``),
    scheduled ones and those of its Backfills. Queued: the Job is active but suspended (Kueue
    holds it). A Job of another numbering (its ``backfill.dev/partitioning`` label differs
    from ``fingerprint``) names another partition by its index and is left out; a Job
    without the label counts (as the operator's partition lock counts it).
    """
    running: list[int] = []
    queued: list[int] = []
    for job in jobs:
        if not job.active or (job.partitioning and job.partitioning != fingerprint):
            continue
        (queued if job.suspended else running).append(job.index)
    queued_set = IndexSet.from_indices(queued)
    return IndexSet.from_indices(running).difference(queued_set), queued_set


def active_jobs_by_step(
    jobs: Iterable[tuple[str, ObservedJob]], fingerprint: str | None
) -> dict[str, tuple[IndexSet, IndexSet]]:
    """Return (running, queued) per step, as :func:`active_jobs` for the Jobs of each step.

    ``jobs`` are (step, Job) pairs, the step read from the Job's step label ("" for a Job of
    a job without steps).
    """
    by_step: dict[str, list[ObservedJob]] = {}
    for step, job in jobs:
        by_step.setdefault(step, []).append(job)
    return {step: active_jobs(members, fingerprint) for step, members in by_step.items()}


@dataclass(frozen=True)
class Coverage:
    """The state of a set of complete partitions (global indices), across all runs.

    ``complete`` are the partitions looked at; the other sets are within it. ``succeeded`` and
    ``failed`` are the ledger's last outcomes, ``running``/``queued`` the partitions with an
    active Job (an active Job wins over a recorded outcome: the partition runs again).
    ``ledger_known`` is False when the ledger did not apply (then no outcome is known).
    """

    complete: IndexSet
    succeeded: IndexSet = field(default_factory=IndexSet)
    failed: IndexSet = field(default_factory=IndexSet)
    running: IndexSet = field(default_factory=IndexSet)
    queued: IndexSet = field(default_factory=IndexSet)
    ledger_known: bool = True

    @cached_property
    def active(self) -> IndexSet:
        """Partitions with an active Job (running or queued; computed once)."""
        return self.running.union(self.queued)

    @cached_property
    def missing(self) -> IndexSet:
        """Partitions with neither a recorded outcome nor an active Job (computed once)."""
        return (
            self.complete.difference(self.succeeded).difference(self.failed).difference(self.active)
        )

    def grid_sets(self) -> dict[str, IndexSet]:
        """The per-state sets of the partition grid (:func:`~.render.grid_cells`).

        ``succeeded`` and ``failed`` without the partitions that run again; every other
        partition is drawn as pending (missing).
        """
        active = self.active
        return {
            "succeeded": self.succeeded.difference(active),
            "failed": self.failed.difference(active),
            "running": self.running,
            "queued": self.queued,
        }


def coverage_of(
    complete: IndexSet,
    ledger: tuple[IndexSet, IndexSet] | None,
    active: tuple[IndexSet, IndexSet],
) -> Coverage:
    """Return the :class:`Coverage` of ``complete`` from the ledger and the active Jobs.

    ``ledger`` is :func:`ledger_sets`'s answer (None: no outcome known); ``active`` is
    :func:`active_jobs`'s (running, queued). Indices outside ``complete`` are dropped.
    """
    succeeded, failed = ledger if ledger is not None else (IndexSet(), IndexSet())
    running, queued = active
    return Coverage(
        complete=complete,
        succeeded=complete.intersection(succeeded),
        failed=complete.intersection(failed).difference(succeeded),
        running=complete.intersection(running),
        queued=complete.intersection(queued),
        ledger_known=ledger is not None,
    )


def step_coverages(
    complete: IndexSet,
    steps: Sequence[str],
    ledgers: Mapping[str, tuple[IndexSet, IndexSet]] | None,
    active: Mapping[str, tuple[IndexSet, IndexSet]],
) -> tuple[tuple[str, Coverage], ...]:
    """Return each step's :class:`Coverage` of ``complete``, in the order of ``steps``.

    ``ledgers`` is :func:`step_ledger_sets`'s answer (None: no outcome known; a step it lacks
    has no outcome recorded), ``active`` :func:`active_jobs_by_step`'s.
    """
    none = (IndexSet(), IndexSet())
    out = []
    for step in steps:
        ledger = None if ledgers is None else ledgers.get(step, none)
        out.append((step, coverage_of(complete, ledger, active.get(step, none))))
    return tuple(out)


def missing_of(coverage: Coverage, *, include_failed: bool = False) -> IndexSet:
    """Return the partitions ``missing`` lists (global indices).

    Those with no recorded outcome and no active Job of any run; with ``include_failed``
    also those whose last recorded outcome is a failure and that do not run again now.
    """
    missing = coverage.missing
    if include_failed:
        missing = missing.union(coverage.failed.difference(coverage.active))
    return missing


# --------------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class KeyRange:
    """A run of consecutive partitions: first and last key, inclusive, and how many."""

    first: str
    last: str
    count: int
    first_index: int
    last_index: int

    def __str__(self) -> str:
        """``2024-01-03 … 2024-01-05 (3)``, or ``2024-01-03 (1)`` for one partition."""
        keys = self.first if self.count == 1 else f"{self.first} … {self.last}"
        return f"{keys} ({self.count})"


def key_ranges(
    indices: IndexSet, key: Callable[[int], str], limit: int | None = None
) -> list[KeyRange]:
    """Return the intervals of ``indices`` as :class:`KeyRange` (ascending), at most ``limit``.

    ``indices`` are global partition indices of a contiguous space (every index between two
    members is a partition), so an interval is a run of consecutive partitions. ``key(index)``
    returns a partition's key; it is called twice per range returned (once for a single
    partition). O(ranges returned).
    """
    out: list[KeyRange] = []
    for lo, hi in indices.intervals[:limit] if limit is not None else indices.intervals:
        first = key(lo)
        out.append(KeyRange(first, first if lo == hi else key(hi), hi - lo + 1, lo, hi))
    return out


def iter_keys(indices: IndexSet, key: Callable[[int], str]) -> Iterator[str]:
    """Yield the key of every member of ``indices``, ascending (lazily)."""
    for index in indices:
        yield key(index)


@dataclass(frozen=True)
class FillTarget:
    """The selection of a Backfill that runs a set of partitions.

    Exactly one of ``partitions`` (an explicit key list) and ``range_from``/``range_to`` (an
    inclusive range of keys) is set. ``reprocess`` is ``Missing`` (a partition that gets an
    outcome meanwhile is skipped, as is every partition of the range that has one), or
    ``Failed`` when failed partitions are to run again.
    """

    reprocess: Reprocess
    partitions: list[str] | None = None
    range_from: str | None = None
    range_to: str | None = None

    @property
    def count(self) -> int | None:
        """Keys listed, or None for a range."""
        return None if self.partitions is None else len(self.partitions)


def fill_target(
    indices: IndexSet,
    key: Callable[[int], str],
    *,
    include_failed: bool = False,
    max_keys: int = MAX_EXPLICIT_PARTITIONS,
) -> FillTarget:
    """Return the Backfill selection that fills ``indices`` (non-empty; global indices).

    Up to ``max_keys`` partitions: an explicit ``partitions`` list of their keys. More: a
    ``range`` from the first to the last, which also covers the partitions in between that
    already have an outcome; ``reprocess`` skips those (``Missing``; ``Failed`` with
    ``include_failed``, which runs failed partitions again and skips succeeded ones).
    Raises ValueError when ``indices`` is empty.
    """
    if not indices:
        raise ValueError("no partitions to fill")
    reprocess = Reprocess.FAILED if include_failed else Reprocess.MISSING
    if len(indices) <= max_keys:
        return FillTarget(reprocess, partitions=list(iter_keys(indices, key)))
    return FillTarget(reprocess, range_from=key(indices.first()), range_to=key(indices.last()))


# ----------------------------------------------------------------------------- schedule


def count_within(members: IndexSet, within: IndexSet) -> int:
    """Return ``len(members & within)`` without building the intersection.

    O(intervals of ``within`` x log intervals of ``members``): cheap when ``within`` has few
    intervals (a schedule's sets, a Backfill's range), whatever the size of ``members``.
    """
    if not members or not within:
        return 0
    return sum(members.rank(hi + 1) - members.rank(lo) for lo, hi in within.intervals)


@dataclass(frozen=True)
class ScheduleShare:
    """How many of a set of partitions the scheduled runs have decided on, and how.

    ``left``: the schedule missed them and its catch-up policy or window left them (a
    Backfill must run them); ``taken``: the schedule took them on (it runs them, or they wait
    for a retry or a slot); ``undecided``: after its cursor (``status.runs.considered``), not
    due yet (``delaySeconds``) or not decided while suspended.
    """

    left: int = 0
    taken: int = 0
    undecided: int = 0


def schedule_share(
    indices: IndexSet, runs: ScheduleStatus | None, fingerprint: str | None
) -> ScheduleShare | None:
    """Count ``indices`` by what the scheduled runs decided (``status.runs``).

    None when the job has no scheduled-runs status, or it was recorded for another numbering
    than ``fingerprint``.
    """
    if runs is None or fingerprint is None or runs.partitioning != fingerprint:
        return None
    considered = -1 if runs.considered is None else runs.considered
    return ScheduleShare(
        left=count_within(indices, _parse(runs.missed_set)),
        taken=count_within(indices, _parse(runs.scheduled)),
        undecided=len(indices) - indices.rank(considered + 1),
    )
