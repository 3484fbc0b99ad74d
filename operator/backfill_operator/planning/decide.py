"""The decision of one reconcile pass: which Jobs to create and delete, and when to look again.

:func:`plan` is a function of (verdict, observed Jobs, now): it takes the
:class:`~.state.RunState` of :func:`~.flow.observe` and decides

* launches: at most ``concurrency - active`` Jobs, one per (partition, step); retries that are
  due first (by index, then step order), then the pending pairs whose upstream steps allow it
  (:mod:`.flow`), by partition in ``order``, then step order; none when the Backfill is
  invalid, suspended, a dry run, marking (``markSucceeded``) or out of failure budget; never a
  (partition, step) another run's Job holds (the partition lock), and no more than the
  job-wide limit grants (:mod:`.admission`);
* deletions: finished Jobs whose outcome the status records, beyond the history limits
  (oldest first, the CronJob controller's rule); none without a selection, since then the
  status cannot record their outcomes;
* the requeue time: at once after marking (:mod:`.flow`); the earliest retry that is not due
  yet; and at most :data:`LOCK_RECHECK_SECONDS` while work waits for another run's Job (the
  partition lock, an upstream step another run is running): the reconciler wakes such runs
  when that run records its outcome in the ledger, this is the safety net (e.g. after a
  restart, when nobody remembers who waits).

The status written afterwards is :func:`~.status.compose_status` of the same state.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..api.model import BackfillSpec, Order
from . import naming
from .admission import Claim, JobWide, grant, shared_view
from .flow import held_by_step, observe
from .ledger import LedgerUpdate
from .observed import JobState, ObservedJob
from .ranges import IndexSet
from .state import LaunchRequest, Outcome, RunState, Unit
from .verdict import Verdict

#: Look again after at most this many seconds while work waits for another run's Job.
LOCK_RECHECK_SECONDS = 30.0


@dataclass(frozen=True)
class Blocked:
    """Why launchable work waits although this Backfill has free slots.

    ``locked`` maps a pending (or due retry) unit (step, partition index) to the run whose
    Job holds it; ``for_job_slot`` counts Jobs the job-wide limit did not grant in this pass.
    """

    locked: dict[Unit, str] = field(default_factory=dict)
    for_job_slot: int = 0


@dataclass(frozen=True)
class Decision:
    """What one pass does: the state it decided on and the actions that follow from it.

    ``state`` is None when the Backfill has no selection (then nothing else is set).
    ``claim`` is what this run asks of the job-wide limit (for the other runs' passes).
    """

    verdict: Verdict
    state: RunState | None
    launches: list[LaunchRequest] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    ledger: LedgerUpdate | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    requeue_after_seconds: float | None = None
    claim: Claim | None = None
    blocked: Blocked = field(default_factory=Blocked)
    shared: JobWide = field(default_factory=JobWide)


def may_act(verdict: Verdict) -> bool:
    """True unless the Backfill is invalid, suspended or a dry run (it may launch or mark)."""
    spec = verdict.backfill.spec
    if spec is None or verdict.invalid is not None:
        return False
    return not spec.suspend and not spec.dry_run


def may_launch(verdict: Verdict, state: RunState) -> bool:
    """True unless the Backfill is invalid, suspended, a dry run, marking or out of budget."""
    spec = verdict.backfill.spec
    if spec is None or not may_act(verdict) or spec.mark_succeeded:
        return False
    budget = spec.max_failed_partitions
    return budget is None or len(state.failed) < budget


def plan(
    verdict: Verdict,
    jobs: Sequence[ObservedJob],
    now: datetime,
    claims: Sequence[Claim] = (),
) -> Decision:
    """Decide one reconcile pass of a judged Backfill.

    ``jobs`` are every Job of the PartitionedJob as listed from the API (this Backfill's and
    other runs'; only owned ones are this Backfill's); ``claims`` the other runs' latest
    claims on the job-wide limit. ``now`` is aware UTC.

    Invariants (tested with hypothesis): at most ``concurrency - active`` launches; no launch
    for a partition with an active Job, a recorded success or a final failure; no launch at all
    when invalid, suspended, dry-run or out of failure budget; a Job is deleted only when its
    outcome is part of the status composed from the returned state.
    """
    pj = verdict.partitioned_job
    shared = shared_view(
        jobs,
        verdict.backfill.uid,
        pj.status,
        verdict.fingerprint,
        pj.spec.concurrency if pj.spec is not None else None,
        claims,
    )
    spec = verdict.backfill.spec
    mark = spec is not None and spec.mark_succeeded and may_act(verdict)
    seen = observe(verdict, jobs, now, shared.held, mark=mark)
    if seen is None:
        return Decision(verdict, None)
    assert spec is not None  # observe returns None without a spec
    state = seen.state
    launches: list[LaunchRequest] = []
    requeue: float | None = None
    blocked = Blocked()
    claim = Claim(
        verdict.backfill.run_name,
        spec.priority,
        state.active_jobs,
        state.active_jobs,
        _started(state),
    )
    if may_launch(verdict, state):
        launches, requeue, blocked, claim = _launches(verdict, spec, state, shared, claim, now)
    deletions = _deletions(spec, seen.owned, state)
    if blocked.locked or any(lane.waiting_on_others for lane in state.lanes):
        requeue = min(requeue or LOCK_RECHECK_SECONDS, LOCK_RECHECK_SECONDS)
    if any(lane.new_marked for lane in state.lanes):
        requeue = 0.0  # the next pass merges the marks into the ledger (planning/flow.py)
    return Decision(
        verdict=verdict,
        state=state,
        launches=launches,
        deletions=deletions,
        ledger=seen.ledger,
        outcomes=list(seen.outcomes),
        requeue_after_seconds=requeue,
        claim=claim,
        blocked=blocked,
        shared=shared,
    )


def _started(state: RunState) -> int:
    """(Partition, step) pairs this run has started so far (the tie-breaker of equal claims)."""
    return sum(
        len(lane.succeeded) + len(lane.failed) + len(lane.running_set) + len(lane.retrying)
        for lane in state.lanes
    )


def batch_size(verdict: Verdict) -> int:
    """Partitions per Job of a run: its ``partitionsPerJob``, else its job's, else 1."""
    spec = verdict.backfill.spec
    if spec is not None and spec.partitions_per_job is not None:
        return spec.partitions_per_job
    pj = verdict.partitioned_job.spec
    if pj is not None and pj.partitions_per_job is not None:
        return pj.partitions_per_job
    return 1


#: A batch to launch: (step, first index, last index, attempt), indices inclusive.
Batch = tuple[str, int, int, int]


def _request(verdict: Verdict, batch: Batch) -> LaunchRequest:
    step, lo, hi, attempt = batch
    selection = verdict.selection
    assert selection is not None
    bf = verdict.backfill
    part = selection.partition(lo)
    name = naming.job_name(bf.name, bf.uid, lo, part.key, attempt, step)
    if hi == lo:
        return LaunchRequest(part.index, part.key, part.start, part.end, attempt, name, step)
    last = selection.partition(hi)
    return LaunchRequest(
        lo, part.key, part.start, last.end, attempt, name, step, hi - lo + 1, last.key
    )


def _chunks(ready: IndexSet, size: int, newest: bool) -> Iterator[tuple[int, int]]:
    """Inclusive ``(lo, hi)`` runs of at most ``size`` consecutive members, in launch order.

    Oldest first: each interval is cut from its low end; newest first: from its high end.
    """
    if newest:
        for lo, hi in reversed(ready.intervals):
            while hi >= lo:
                yield (max(lo, hi - size + 1), hi)
                hi -= size
    else:
        for lo, hi in ready.intervals:
            while lo <= hi:
                yield (lo, min(hi, lo + size - 1))
                lo += size


def _chained_chunks(
    ready: IndexSet, chained: IndexSet, size: int, newest: bool
) -> Iterator[tuple[int, int]]:
    """Return the batches of a ``dependsOnPast`` lane as inclusive ``(lo, hi)``.

    Each starts at a ready partition and goes on over the chained ones right after it (they
    wait only for their previous partition), at most ``size``; by first partition in order
    (newest first: the latest start first).
    """
    starts = ready.iter_descending() if newest else iter(ready)
    for lo in starts:
        hi = lo
        while hi - lo + 1 < size and hi + 1 in chained:
            hi += 1
        yield (lo, hi)


def _in_order(
    lanes: Sequence[tuple[int, str, IndexSet, IndexSet]], order: Order, size: int
) -> Iterator[Batch]:
    """Iterate first-attempt batches over the lanes' sets: by partition in ``order``, then step.

    A batch is at most ``size`` consecutive partitions of one lane (1: one partition a Job);
    in a lane with chained partitions (``dependsOnPast``) it starts at a ready one.
    """
    newest = order is Order.NEWEST_FIRST
    sign = -1 if newest else 1

    def stream(
        rank: int, step: str, ready: IndexSet, chained: IndexSet
    ) -> Iterator[tuple[int, int, int, int, str]]:
        # (sort key, step rank, lo, hi, step): by first partition (newest first: by the
        # chunk's high end, or its start in a chained lane, descending)
        if size > 1 and chained:
            chunks = _chained_chunks(ready, chained, size, newest)
            return ((sign * lo, rank, lo, hi, step) for lo, hi in chunks)
        if size == 1:
            indices = ready.iter_descending() if newest else iter(ready)
            return ((sign * i, rank, i, i, step) for i in indices)
        chunks = _chunks(ready, size, newest)
        return ((-hi if newest else lo, rank, lo, hi, step) for lo, hi in chunks)

    for _, _, lo, hi, step in heapq.merge(*(stream(*lane) for lane in lanes)):
        yield (step, lo, hi, 1)


def _retry_batches(due: list[tuple[int, int, str, int]], size: int) -> list[Batch]:
    """Group due retries ``(index, rank, step, failed attempts)`` into batches, in launch order.

    A batch is at most ``size`` consecutive partitions of one step with the same failed
    attempts (so a failed batch is retried as one Job again); batches by first index, then
    step rank.
    """
    if size == 1:
        return [(step, i, i, n + 1) for i, _, step, n in sorted(due, key=lambda d: (d[0], d[1]))]
    runs: list[tuple[int, int, str, int, int]] = []  # (lo, rank, step, attempts, hi)
    for index, rank, step, attempts in sorted(due, key=lambda d: (d[1], d[3], d[0])):
        if runs:
            lo, r, s, n, hi = runs[-1]
            if (r, n) == (rank, attempts) and index == hi + 1 and index - lo < size:
                runs[-1] = (lo, r, s, n, index)
                continue
        runs.append((index, rank, step, attempts, index))
    runs.sort(key=lambda b: (b[0], b[1]))
    return [(step, lo, hi, n + 1) for lo, _, step, n, hi in runs]


def _launches(
    verdict: Verdict,
    spec: BackfillSpec,
    state: RunState,
    shared: JobWide,
    claim: Claim,
    now: datetime,
) -> tuple[list[LaunchRequest], float | None, Blocked, Claim]:
    """Launches in order (due retries, then ready pending), the requeue, what waits, the claim.

    Slots count Jobs: with ``partitionsPerJob`` each launch is a batch of consecutive
    partitions (:func:`_retry_batches`, :func:`_in_order`).
    """
    held = shared.held
    held_sets = held_by_step(held)
    size = batch_size(verdict)
    slots = max(0, spec.concurrency - state.active_jobs)
    due: list[tuple[int, int, str, int]] = []
    waiting: list[datetime] = []
    locked: dict[Unit, str] = {}
    ready: list[tuple[int, str, IndexSet, IndexSet]] = []
    for rank, lane in enumerate(state.lanes):
        step = lane.step
        due_now, later = lane.due_retries(now)  # (index, failed attempts), next retry time
        if later is not None:
            waiting.append(later)
        for index, attempts in due_now:
            if (step, index) in held:
                locked[(step, index)] = held[(step, index)]
            else:
                due.append((index, rank, step, attempts))
        launchable = lane.launchable
        chained = lane.chained
        taken = held_sets.get(step)
        if taken:
            locked.update(((step, i), held[(step, i)]) for i in launchable.intersection(taken))
            launchable = launchable.difference(taken)
            chained = chained.difference(taken)
        ready.append((rank, step, launchable, chained))
    retries = _retry_batches(due, size)
    first = list(itertools.islice(_in_order(ready, spec.order, size), slots))
    wanted = min(slots, len(retries) + len(first))
    claim = Claim(claim.key, claim.priority, claim.active, claim.active + wanted, claim.started)
    granted = grant(shared.limit, shared.active_jobs, [*shared.claims, claim], claim.key)
    take = wanted if granted is None else min(wanted, granted)
    batches = [*retries[:take], *first[: max(0, take - len(retries))]]
    launches = [_request(verdict, b) for b in batches]
    requeue = max(0.0, (min(waiting) - now).total_seconds()) if waiting else None
    return launches, requeue, Blocked(locked, wanted - take), claim


def _covers(members: IndexSet, job: ObservedJob) -> bool:
    """True when ``members`` holds every partition ``job`` runs."""
    if job.count == 1:
        return job.index in members
    return len(members.clip(job.index, job.index + job.count - 1)) == job.count


def _deletions(
    spec: BackfillSpec, grouped: dict[Unit, list[ObservedJob]], state: RunState
) -> list[str]:
    """Finished, recorded Jobs beyond the history limits, oldest first (CronJob's rule).

    A Job of several partitions is recorded when each of them is. Jobs of a step the run no
    longer runs (its spec changed) are kept.
    """
    ok: list[ObservedJob] = []
    bad: list[ObservedJob] = []
    for (step, _), attempts in grouped.items():
        lane = state.lane(step)
        if lane is None:
            continue
        succeeded: IndexSet = lane.succeeded
        for obs in attempts:
            if obs.deleting:
                continue
            if obs.state is JobState.SUCCEEDED and _covers(succeeded, obs):
                ok.append(obs)
            elif obs.state is JobState.FAILED and all(
                i in succeeded or i in lane.failed or lane.attempts_recorded(i) >= obs.attempt
                for i in obs.indices
            ):
                bad.append(obs)
    out: list[str] = []
    for items, keep in (
        (ok, spec.successful_jobs_history_limit),
        (bad, spec.failed_jobs_history_limit),
    ):
        items.sort(key=lambda j: (j.finish_time.timestamp() if j.finish_time else 0.0, j.name))
        excess = len(items) - keep
        out.extend(j.name for j in items[: max(0, excess)])
    return out
