"""The partition state of one reconcile pass: recorded outcomes merged with the observed Jobs.

:func:`observe` reads the previous status and the Backfill's Jobs once and returns a
:class:`PartitionState` (succeeded, failed, skipped, running, retrying, pending) together with
the outcomes this pass records for the first time (:class:`Outcome`, for metrics and the
ledger). :meth:`PartitionState.launched` moves launched partitions to running. Everything
after (launch decisions, status, events) reads this one state.

Rules (``docs/design.md``, "Planning rules"):

* a Job's outcome is recorded once: a success when the Job completes; a failed attempt by its
  attempt number, and only the latest attempt of a partition counts;
* a failed attempt below ``retries.limit + 1`` schedules a retry at ``finish +
  backoffSeconds * 2^(attempt-1)`` (capped at ``MAX_BACKOFF_SECONDS``); the last one fails the
  partition for good;
* ``reprocess`` skips partitions with an outcome in the PartitionedJob's ledger (only while
  the Backfill is valid), also partitions waiting for a retry when another run recorded an
  outcome for them meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..api.model import (
    MAX_BACKOFF_SECONDS,
    BackfillSpec,
    FailedPartition,
    RunningPartition,
)
from .ledger import LedgerUpdate, reprocess_skips
from .observed import JobState, ObservedJob
from .ranges import IndexSet
from .space import Selection
from .times import rfc3339
from .verdict import Verdict

#: Characters of a Job's failure message kept in status.
MAX_MESSAGE_LENGTH = 256


@dataclass(frozen=True)
class LaunchRequest:
    """One Job to create: a partition attempt (``attempt`` 1-based) and its Job's name."""

    index: int
    key: str
    start: datetime | None
    end: datetime | None
    attempt: int
    job_name: str


@dataclass(frozen=True)
class Outcome:
    """A partition attempt whose end this pass recorded (for metrics).

    ``final`` is False for a failed attempt that will be retried.
    """

    index: int
    key: str
    attempt: int
    succeeded: bool
    duration_seconds: float | None
    final: bool


def waiting_to_retry(
    failures: Iterable[FailedPartition],
    running: IndexSet | frozenset[int],
    succeeded: IndexSet | None = None,
) -> list[FailedPartition]:
    """Return the failure entries waiting for a retry: a retry time, not running, not succeeded.

    The one definition of "waiting to retry", used by the planner and by what shows a status
    (there ``running`` is the indices of ``status.running``; succeeded ones have no entry).
    """
    succeeded = succeeded if succeeded is not None else IndexSet()
    return [
        f
        for f in failures
        if f.retry_at is not None and f.index not in running and f.index not in succeeded
    ]


@dataclass(frozen=True)
class PartitionState:
    """Every selected partition's state in one pass, by global index.

    The sets are disjoint, except that ``failures`` also holds entries of running retries.

    * ``succeeded``/``failed``/``skipped``: recorded final states (``failed``: for good);
    * ``running``: partitions with an active Job, by index;
    * ``failures``: the last failed attempt of partitions that failed or wait for a retry;
    * ``retrying``: failed partitions waiting for a retry (:func:`waiting_to_retry`);
    * ``pending``: selected partitions with none of the above (never launched);
    * ``active_jobs``: active Jobs counted against ``concurrency``;
    * ``new_failures``: failed attempts recorded by this pass (for the PartitionFailed event).
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

    @property
    def running_set(self) -> IndexSet:
        """The indices of ``running`` (queued ones included)."""
        return IndexSet.from_indices(self.running)

    @property
    def queued_set(self) -> IndexSet:
        """The indices of ``running`` whose Job Kueue holds suspended."""
        return IndexSet.from_indices(i for i, r in self.running.items() if r.queued)

    def launched(
        self,
        requests: Sequence[LaunchRequest],
        created: Mapping[int, str],
        now: datetime,
    ) -> PartitionState:
        """Return the state after ``requests`` got their Jobs (created or adopted).

        ``created`` maps an index to its Job's creationTimestamp (else ``now`` is used).
        """
        if not requests:
            return self
        running = dict(self.running)
        for req in requests:
            running[req.index] = RunningPartition(
                key=req.key,
                index=req.index,
                job=req.job_name,
                attempt=req.attempt,
                start_time=created.get(req.index) or rfc3339(now),
            )
        moved = IndexSet.from_indices(r.index for r in requests)
        return replace(
            self,
            running=running,
            retrying=self.retrying.difference(moved),
            pending=self.pending.difference(moved),
            active_jobs=self.active_jobs + len(requests),
        )


def backoff_seconds(spec: BackfillSpec, attempt: int) -> int:
    """Delay before the retry that follows failed attempt ``attempt`` (1-based), seconds."""
    base = spec.retries.backoff_seconds
    if base == 0:
        return 0
    return min(MAX_BACKOFF_SECONDS, base * int(2 ** min(attempt - 1, 20)))


def group_by_index(jobs: Iterable[ObservedJob]) -> dict[int, list[ObservedJob]]:
    """Return the Jobs by partition index, each list by ascending attempt."""
    grouped: dict[int, list[ObservedJob]] = {}
    for job in jobs:
        grouped.setdefault(job.index, []).append(job)
    for items in grouped.values():
        items.sort(key=lambda j: j.attempt)
    return grouped


@dataclass(frozen=True)
class Observation:
    """What :func:`observe` returns.

    The state, the new outcomes, the ledger update, and the Backfill's own Jobs by partition
    index (each list by ascending attempt).
    """

    state: PartitionState
    outcomes: tuple[Outcome, ...]
    ledger: LedgerUpdate | None
    owned: dict[int, list[ObservedJob]]


def observe(verdict: Verdict, jobs: Sequence[ObservedJob], now: datetime) -> Observation | None:
    """Merge the previous status with the Backfill's owned Jobs; None without a selection.

    ``jobs`` are the PartitionedJob's Jobs (only the Backfill's ``owned`` ones count here).
    """
    spec, selection = verdict.backfill.spec, verdict.selection
    if spec is None or selection is None:
        return None
    previous = verdict.backfill.status
    succeeded = IndexSet.parse(previous.partitions.succeeded)
    failed = IndexSet.parse(previous.partitions.failed)
    skipped = IndexSet.parse(previous.partitions.skipped)
    failures = {f.index: f for f in previous.failures}
    new_ok: list[int] = []
    new_bad: list[int] = []
    outcomes: list[Outcome] = []
    new_failures: list[FailedPartition] = []
    running: dict[int, RunningPartition] = {}
    active_jobs = 0

    owned = group_by_index(j for j in jobs if j.owned)
    for index, attempts in owned.items():
        for obs in attempts:
            if obs.state is JobState.ACTIVE:
                active_jobs += 1
                running[index] = RunningPartition(
                    key=obs.key,
                    index=index,
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
                if index in succeeded:
                    continue
                succeeded = succeeded.add(index)
                failed = failed.remove(index) if index in failed else failed
                failures.pop(index, None)
                new_ok.append(index)
                outcomes.append(Outcome(index, obs.key, obs.attempt, True, duration, True))
                continue
            # Failed attempt: recorded once, by attempt number; one superseded by a newer
            # attempt was recorded before that attempt could be launched.
            if index in succeeded or obs is not attempts[-1]:
                continue
            known = failures.get(index)
            if known is not None and known.attempts >= obs.attempt:
                continue
            final = obs.attempt > spec.retries.limit
            retry_at = None
            if not final:
                delay = timedelta(seconds=backoff_seconds(spec, obs.attempt))
                retry_at = rfc3339((obs.finish_time or now) + delay)
            entry = FailedPartition(
                key=obs.key,
                index=index,
                job=obs.name,
                attempts=obs.attempt,
                message=obs.message[:MAX_MESSAGE_LENGTH],
                retry_at=retry_at,
            )
            failures[index] = entry
            new_failures.append(entry)
            if final:
                failed = failed.add(index)
                new_bad.append(index)
            outcomes.append(Outcome(index, obs.key, obs.attempt, False, duration, final))

    running_set = IndexSet.from_indices(running)
    retrying = IndexSet.from_indices(
        f.index for f in waiting_to_retry(failures.values(), running_set, succeeded)
    )
    pending = (
        selection.indices.difference(succeeded.union(failed).union(skipped))
        .difference(running_set)
        .difference(retrying)
    )
    if verdict.invalid is None:
        # A partition another run recorded an outcome for since this one selected it (it
        # waited on the lock, or for a retry) is skipped as ``reprocess`` says.
        skip = reprocess_skips(
            pending.union(retrying),
            spec.reprocess,
            verdict.partitioned_job.status,
            verdict.fingerprint,
        )
        if skip:
            skipped = skipped.union(skip)
            pending = pending.difference(skip)
            for index in retrying.intersection(skip):
                failures.pop(index, None)
            retrying = retrying.difference(skip)
    ledger = None
    if verdict.fingerprint and (new_ok or new_bad):
        ledger = LedgerUpdate(
            partitioning=verdict.fingerprint,
            succeeded=IndexSet.from_indices(new_ok),
            failed=IndexSet.from_indices(new_bad),
        )
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
    )
    return Observation(state, tuple(outcomes), ledger, owned)
