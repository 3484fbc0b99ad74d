"""The partition state of one reconcile pass: recorded outcomes merged with the observed Jobs.

A run (a Backfill, or a PartitionedJob's schedule) runs one or more *steps* of each selected
partition (:mod:`.steps`; a job with ``jobTemplate`` has the one step ""). Each step is a
*lane*: :func:`observe_lane` reads the step's previous status and its Jobs once and returns
its :class:`PartitionState` (succeeded, failed, skipped, upstreamFailed, marked, running,
retrying, pending) with the outcomes this pass records for the first time (:class:`Outcome`,
for metrics and the ledger). :class:`RunState` holds the lanes of a run in step order, and
:meth:`RunState.launched` moves launched (partition, step) pairs to running. The order rules
between steps (``dependsOn``, ``dependsOnPast``), ``reprocess`` and ``markSucceeded`` are
applied on top by :mod:`.flow`. Everything after (launch decisions, status, events) reads
this one state.

Rules (``docs/design.md``, "Planning rules"):

* a Job's outcome is recorded once: a success when the Job completes; a failed attempt by its
  attempt number, and only the latest attempt of a (partition, step) counts;
* a failed attempt below ``retries.limit + 1`` schedules a retry at ``finish +
  backoffSeconds * 2^(attempt-1)`` (capped at ``MAX_BACKOFF_SECONDS``); the last one fails the
  (partition, step) for good.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ..api.model import (
    MAX_BACKOFF_SECONDS,
    BackfillSpec,
    FailedPartition,
    PartitionSets,
    RetryGroup,
    RunningPartition,
)
from .observed import JobState, ObservedJob
from .ranges import IndexSet
from .retries import Retries
from .space import Selection
from .steps import MAIN_STEP
from .times import rfc3339

#: Characters of a Job's failure message kept in status.
MAX_MESSAGE_LENGTH = 256

#: A (step, global partition index) pair: one Job's unit of work. The step is "" for a job
#: with ``jobTemplate``.
Unit = tuple[str, int]


@dataclass(frozen=True)
class LaunchRequest:
    """One Job to create: a (partition, step) attempt (``attempt`` 1-based) and its Job's name.

    With ``count`` > 1 (``partitionsPerJob``) the Job runs the partitions ``index`` ..
    ``index + count - 1`` of this attempt: ``key``/``start`` are the first one's,
    ``last_key``/``end`` the last one's (``end`` is the end of the batch's data interval).
    """

    index: int
    key: str
    start: datetime | None
    end: datetime | None
    attempt: int
    job_name: str
    step: str = MAIN_STEP
    count: int = 1
    last_key: str = ""

    @property
    def unit(self) -> Unit:
        """``(step, index)`` of the (first) partition."""
        return (self.step, self.index)

    @property
    def indices(self) -> range:
        """The global partition indices the Job runs."""
        return range(self.index, self.index + self.count)


@dataclass(frozen=True)
class Outcome:
    """A (partition, step) attempt whose end this pass recorded (for metrics).

    ``final`` is False for a failed attempt that will be retried. ``count``: the partitions
    of one Job of several (``partitionsPerJob``) recorded alike (``index`` the first of
    them, ``key`` the Job's first partition's).
    """

    index: int
    key: str
    attempt: int
    succeeded: bool
    duration_seconds: float | None
    final: bool
    step: str = MAIN_STEP
    count: int = 1


@dataclass(frozen=True)
class PartitionState:
    """One step's state in one pass (a *lane*), by global partition index.

    The sets are disjoint, except that ``failures`` also holds entries of running retries.

    * ``succeeded``/``failed``/``skipped``: recorded final states (``failed``: for good);
    * ``upstream_failed``: not run because an upstream step (or, with ``dependsOnPast``, the
      previous partition's step) did not succeed; ``marked``: recorded as succeeded without a
      Job (``markSucceeded``);
    * ``running``: partitions with an active Job of this step, by index;
    * ``failures``: details of the last failed attempt of some partitions that failed or wait
      for a retry (those of the previous status, and every failure this pass recorded);
    * ``retries``: every partition that will be retried, by (failed attempts, retry time),
      while its retry waits and while it runs (:class:`~.retries.Retries`);
    * ``retrying``: failed partitions waiting for a retry (in ``retries``, not running);
    * ``pending``: selected partitions with none of the above (never launched);
    * ``ready``: the pending partitions whose upstream steps allow a start now (None: all);
    * ``active_jobs``: active Jobs counted against ``concurrency`` (finishing ones, whose pod
      succeeded, are not: ``planning.observed``);
    * ``new_failures``: failed attempts recorded by this pass (for the PartitionFailed event);
    * ``new_upstream_failed``: partitions this pass found upstream-failed (for the Event);
    * ``waiting_on_others``: pending partitions waiting for another run's Job of an upstream
      step (or, with ``dependsOnPast``, of the previous partition);
    * ``new_marked``: partitions this pass marked succeeded (their ledger merge is the next
      pass's: :mod:`.flow`);
    * ``chained``: pending partitions (not ready) of a ``dependsOnPast`` step that wait only for
      the previous partition of this lane: a Job of several partitions starting at a ready one
      may run them after it (``partitionsPerJob``).
    """

    selection: Selection
    succeeded: IndexSet
    failed: IndexSet
    skipped: IndexSet
    running: Mapping[int, RunningPartition]
    failures: Mapping[int, FailedPartition]
    retrying: IndexSet
    pending: IndexSet
    active_jobs: int
    new_failures: tuple[FailedPartition, ...] = ()
    step: str = MAIN_STEP
    upstream_failed: IndexSet = field(default_factory=IndexSet)
    marked: IndexSet = field(default_factory=IndexSet)
    ready: IndexSet | None = None
    new_upstream_failed: int = 0
    waiting_on_others: int = 0
    new_marked: int = 0
    retries: Retries = field(default_factory=Retries)
    chained: IndexSet = field(default_factory=IndexSet)

    def attempts_recorded(self, index: int) -> int:
        """Failed attempts of ``index`` the state records (0: none, or succeeded)."""
        entry = self.failures.get(index)
        return max(entry.attempts if entry is not None else 0, self.retries.attempts_of(index))

    def due_retries(self, now: datetime) -> tuple[list[tuple[int, int]], datetime | None]:
        """Selected partitions waiting for a retry that is due at ``now``, and the next retry.

        ``(index, failed attempts)`` by index (the retry is attempt ``attempts + 1``), and the
        earliest retry time after ``now`` (None: none waits).
        """
        return self.retries.due(self.retrying.intersection(self.selection.indices), now)

    @property
    def running_set(self) -> IndexSet:
        """The partitions with an active Job (queued ones included; batches counted whole)."""
        return _running_set(self.running)

    @property
    def queued_set(self) -> IndexSet:
        """The partitions whose Job Kueue holds suspended (batches counted whole)."""
        return _running_set({i: r for i, r in self.running.items() if r.queued})

    @property
    def launchable(self) -> IndexSet:
        """Pending partitions that may start now (``ready``, else every pending one)."""
        return self.pending if self.ready is None else self.ready

    @property
    def in_run(self) -> IndexSet:
        """Selected partitions this run does (or did) this step for: all but the skipped."""
        return self.selection.indices.difference(self.skipped)

    def launched(
        self,
        requests: Sequence[LaunchRequest],
        created: Mapping[Unit, str],
        now: datetime,
    ) -> PartitionState:
        """Return the state after ``requests`` of this step got their Jobs (created or adopted).

        Requests of other steps are ignored. ``created`` maps a unit to its Job's
        creationTimestamp (else ``now`` is used).
        """
        mine = [r for r in requests if r.step == self.step]
        if not mine:
            return self
        running = dict(self.running)
        for req in mine:
            running[req.index] = RunningPartition(
                key=req.key,
                index=req.index,
                count=req.count if req.count > 1 else None,
                last_key=(req.last_key or None) if req.count > 1 else None,
                step=req.step or None,
                job=req.job_name,
                attempt=req.attempt,
                start_time=created.get(req.unit) or rfc3339(now),
            )
        moved = IndexSet.from_intervals((r.index, r.index + r.count - 1) for r in mine)
        return replace(
            self,
            running=running,
            retrying=self.retrying.difference(moved),
            pending=self.pending.difference(moved),
            ready=None if self.ready is None else self.ready.difference(moved),
            chained=self.chained.difference(moved),
            active_jobs=self.active_jobs + len(mine),
        )


@dataclass(frozen=True)
class RunState:
    """Every lane of a run in one pass, in step order (:attr:`.steps.StepGraph.order`).

    For a job with ``jobTemplate`` there is one lane (step ""), and the unions below are that
    lane's sets. ``stepped`` is True for a job with ``spec.steps``.
    """

    selection: Selection
    lanes: tuple[PartitionState, ...]
    stepped: bool = False

    def lane(self, step: str) -> PartitionState | None:
        """The lane of ``step``, or None when the run does not run it."""
        return next((lane for lane in self.lanes if lane.step == step), None)

    def _union(self, name: str) -> IndexSet:
        out = IndexSet()
        for lane in self.lanes:
            out = out.union(getattr(lane, name))
        return out

    @property
    def succeeded(self) -> IndexSet:
        """Partitions with a step recorded succeeded by this run."""
        return self._union("succeeded")

    @property
    def failed(self) -> IndexSet:
        """Partitions with a step failed for good (what ``maxFailedPartitions`` counts)."""
        return self._union("failed")

    @property
    def skipped(self) -> IndexSet:
        """Partitions with a step skipped by ``reprocess``."""
        return self._union("skipped")

    @property
    def pending(self) -> IndexSet:
        """Partitions with a step never launched yet."""
        return self._union("pending")

    @property
    def retrying(self) -> IndexSet:
        """Partitions with a step waiting for a retry."""
        return self._union("retrying")

    @property
    def upstream_failed(self) -> IndexSet:
        """Partitions with a step not run because an upstream did not succeed."""
        return self._union("upstream_failed")

    @property
    def active_jobs(self) -> int:
        """Active Jobs of the run (every lane)."""
        return sum(lane.active_jobs for lane in self.lanes)

    @property
    def new_failures(self) -> tuple[FailedPartition, ...]:
        """Failed attempts this pass recorded, lane by lane."""
        return tuple(f for lane in self.lanes for f in lane.new_failures)

    def running_entries(self) -> list[RunningPartition]:
        """Every lane's running entries, by partition index, then step order."""
        entries = [
            (i, rank, lane.running[i]) for rank, lane in enumerate(self.lanes) for i in lane.running
        ]
        return [entry for _, _, entry in sorted(entries, key=lambda e: (e[0], e[1]))]

    def launched(
        self, requests: Sequence[LaunchRequest], created: Mapping[Unit, str], now: datetime
    ) -> RunState:
        """Return the state after ``requests`` got their Jobs (:meth:`PartitionState.launched`)."""
        if not requests:
            return self
        return replace(
            self, lanes=tuple(lane.launched(requests, created, now) for lane in self.lanes)
        )


def backoff_seconds(spec: BackfillSpec, attempt: int) -> int:
    """Delay before the retry that follows failed attempt ``attempt`` (1-based), seconds."""
    base = spec.retries.backoff_seconds
    if base == 0:
        return 0
    return min(MAX_BACKOFF_SECONDS, base * int(2 ** min(attempt - 1, 20)))


def group_by_unit(jobs: Iterable[ObservedJob]) -> dict[Unit, list[ObservedJob]]:
    """Return the Jobs by (step, partition index), each list by ascending attempt."""
    grouped: dict[Unit, list[ObservedJob]] = {}
    for job in jobs:
        grouped.setdefault((job.step, job.index), []).append(job)
    for items in grouped.values():
        items.sort(key=lambda j: j.attempt)
    return grouped


def _newer_attempts(owned: Mapping[int, list[ObservedJob]]) -> Callable[[int], IndexSet]:
    """Return attempt -> the partitions some owned Job of a higher attempt runs.

    A failed attempt of a partition is superseded (its outcome was recorded before the newer
    attempt could be launched) when a Job of a newer attempt covers that partition.
    """
    by_attempt: dict[int, list[tuple[int, int]]] = {}
    for attempts in owned.values():
        for obs in attempts:
            by_attempt.setdefault(obs.attempt, []).append((obs.index, obs.index + obs.count - 1))
    cache: dict[int, IndexSet] = {}

    def newer(attempt: int) -> IndexSet:
        if attempt not in cache:
            cache[attempt] = IndexSet.from_intervals(
                iv for a, ivs in by_attempt.items() if a > attempt for iv in ivs
            )
        return cache[attempt]

    return newer


def _key_of(selection: Selection, index: int) -> str:
    """The key of a selected partition; its index as text outside the selection."""
    try:
        return selection.key(index)
    except (KeyError, IndexError, ValueError):
        return str(index)


def running_indices(entries: Iterable[RunningPartition]) -> IndexSet:
    """The partitions that ``status.running`` entries run (a batch's ``count`` from its index)."""
    return IndexSet.from_intervals((r.index, r.index + (r.count or 1) - 1) for r in entries)


def _running_set(running: Mapping[int, RunningPartition]) -> IndexSet:
    """The partitions ``running`` entries (by first index) run, batches counted whole."""
    if all(r.count is None for r in running.values()):
        return IndexSet.from_indices(running)
    return running_indices(running.values())


@dataclass(frozen=True)
class LaneObservation:
    """What :func:`observe_lane` returns: the lane, its new outcomes, its new final outcomes."""

    state: PartitionState
    outcomes: tuple[Outcome, ...]
    new_succeeded: IndexSet
    new_failed: IndexSet


def observe_lane(
    spec: BackfillSpec,
    step: str,
    selection: Selection,
    previous: PartitionSets,
    previous_failures: Iterable[FailedPartition],
    owned: Mapping[int, list[ObservedJob]],
    now: datetime,
    previous_retries: Iterable[RetryGroup] = (),
) -> LaneObservation:
    """Merge one step's previous status with the run's own Jobs of that step.

    ``previous`` holds the step's recorded sets (the Backfill's top-level sets for a job with
    ``jobTemplate``, its ``status.steps[]`` entry otherwise); ``previous_failures`` the step's
    ``status.failures`` entries and ``previous_retries`` its ``status.retries`` groups;
    ``owned`` the run's Jobs of the step by partition index (each list by ascending attempt).
    Pure; ``now`` is aware UTC.
    """
    succeeded = IndexSet.parse(previous.succeeded)
    failed = IndexSet.parse(previous.failed)
    skipped = IndexSet.parse(previous.skipped)
    upstream_failed = IndexSet.parse(previous.upstream_failed)
    marked = IndexSet.parse(previous.marked)
    previous_failures = list(previous_failures)
    failures = {f.index: f for f in previous_failures}
    retries = Retries.read(previous_retries, previous_failures)
    new_ok: list[int] = []
    new_bad: list[int] = []
    ok_now: set[int] = set()  # succeeded in this pass, by Jobs of one partition
    ok_batches = IndexSet()  # succeeded in this pass, by Jobs of several
    retried: dict[tuple[int, str], list[int]] = {}
    outcomes: list[Outcome] = []
    new_failures: list[FailedPartition] = []
    running: dict[int, RunningPartition] = {}
    active_jobs = 0

    newer = _newer_attempts(owned)
    for index, attempts in owned.items():
        for obs in attempts:
            if obs.state is JobState.ACTIVE:
                if obs.holds_slot:
                    active_jobs += 1
                running[index] = RunningPartition(
                    key=obs.key,
                    index=index,
                    count=obs.count if obs.count > 1 else None,
                    last_key=(obs.last_key or None) if obs.count > 1 else None,
                    step=step or None,
                    job=obs.name,
                    attempt=obs.attempt,
                    start_time=obs.created or None,
                    queued=True if obs.suspended else None,
                )
                continue
            duration = (
                (obs.finish_time - obs.start_time).total_seconds()
                if obs.finish_time and obs.start_time
                else None
            )
            if obs.state is JobState.SUCCEEDED:
                if obs.count == 1:
                    if index in succeeded or index in ok_now or index in ok_batches:
                        continue
                    ok_now.add(index)
                    new_ok.append(index)
                    failures.pop(index, None)
                    outcomes.append(
                        Outcome(index, obs.key, obs.attempt, True, duration, True, step)
                    )
                    continue
                # a batch: set operations, not one step per partition
                lo, hi = obs.index, obs.index + obs.count - 1
                fresh = IndexSet.from_range(lo, hi).difference(succeeded).difference(ok_batches)
                if ok_now:
                    fresh = fresh.difference(
                        IndexSet.from_indices(i for i in ok_now if lo <= i <= hi)
                    )
                if not fresh:
                    continue
                ok_batches = ok_batches.union(fresh)
                for i in [i for i in failures if i in fresh]:
                    del failures[i]
                outcomes.append(
                    Outcome(
                        fresh.first(), obs.key, obs.attempt, True, duration, True, step, len(fresh)
                    )
                )
                continue
            # Failed attempt: recorded once per partition, by attempt number; one superseded
            # by a newer attempt was recorded before that attempt could be launched; a
            # partition failed for good is never launched again (its details may have left
            # the status).
            superseded = newer(obs.attempt)
            recorded: list[int] = []
            for i in obs.indices:
                if i in succeeded or i in ok_now or i in ok_batches or i in superseded:
                    continue
                if i in failed:
                    continue
                known = max(failures[i].attempts if i in failures else 0, retries.attempts_of(i))
                if known >= obs.attempt:
                    continue
                recorded.append(i)
            if not recorded:
                continue
            final = obs.attempt > spec.retries.limit
            retry_at = None
            if not final:
                delay = timedelta(seconds=backoff_seconds(spec, obs.attempt))
                retry_at = rfc3339((obs.finish_time or now) + delay)
            message = obs.message[:MAX_MESSAGE_LENGTH]
            for i in recorded:
                entry = FailedPartition(
                    key=obs.key if i == index else _key_of(selection, i),
                    index=i,
                    step=step or None,
                    job=obs.name,
                    attempts=obs.attempt,
                    message=message,
                    retry_at=retry_at,
                )
                failures[i] = entry
                new_failures.append(entry)
            if final:
                new_bad.extend(recorded)
            else:
                retried.setdefault((obs.attempt, retry_at or rfc3339(now)), []).extend(recorded)
            outcomes.append(
                Outcome(
                    recorded[0], obs.key, obs.attempt, False, duration, final, step, len(recorded)
                )
            )

    ok_set = IndexSet.from_indices(new_ok).union(ok_batches)
    bad_set = IndexSet.from_indices(new_bad)
    if ok_set or bad_set:
        succeeded = succeeded.union(ok_set)
        failed = failed.difference(ok_set).union(bad_set)
    if ok_set or bad_set or retried:
        retries = retries.changed(ok_set.union(bad_set), retried)
    running_set = _running_set(running)
    settled = succeeded.union(failed).union(skipped).union(upstream_failed).union(marked)
    retrying = retries.members.difference(running_set).difference(settled)
    pending = selection.indices.difference(settled).difference(running_set).difference(retrying)
    state = PartitionState(
        selection=selection,
        succeeded=succeeded,
        failed=failed,
        skipped=skipped,
        running=running,
        failures=failures,
        retrying=retrying,
        pending=pending,
        active_jobs=active_jobs,
        new_failures=tuple(new_failures),
        step=step,
        upstream_failed=upstream_failed,
        marked=marked,
        retries=retries,
    )
    return LaneObservation(state, tuple(outcomes), ok_set, bad_set)
