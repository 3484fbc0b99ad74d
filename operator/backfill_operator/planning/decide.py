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
        len(lane.succeeded) + len(lane.failed) + len(lane.running) + len(lane.retrying)
        for lane in state.lanes
    )


def _request(verdict: Verdict, step: str, index: int, attempt: int) -> LaunchRequest:
    selection = verdict.selection
    assert selection is not None
    bf = verdict.backfill
    part = selection.partition(index)
    name = naming.job_name(bf.name, bf.uid, index, part.key, attempt, step)
    return LaunchRequest(part.index, part.key, part.start, part.end, attempt, name, step)


def _in_order(lanes: Sequence[tuple[int, str, IndexSet]], order: Order) -> Iterator[Unit]:
    """Iterate (step, index) over the lanes' sets: by partition in ``order``, then step rank."""
    newest = order is Order.NEWEST_FIRST

    def stream(rank: int, step: str, ready: IndexSet) -> Iterator[tuple[int, int, str]]:
        if newest:
            return ((-i, rank, step) for i in ready.iter_descending())
        return ((i, rank, step) for i in ready)

    for key, _, step in heapq.merge(*(stream(*lane) for lane in lanes)):
        yield (step, -key if newest else key)


def _launches(
    verdict: Verdict,
    spec: BackfillSpec,
    state: RunState,
    shared: JobWide,
    claim: Claim,
    now: datetime,
) -> tuple[list[LaunchRequest], float | None, Blocked, Claim]:
    """Launches in order (due retries, then ready pending), the requeue, what waits, the claim."""
    held = shared.held
    held_sets = held_by_step(held)
    slots = max(0, spec.concurrency - state.active_jobs)
    due: list[tuple[int, int, str, int]] = []
    waiting: list[datetime] = []
    locked: dict[Unit, str] = {}
    ready: list[tuple[int, str, IndexSet]] = []
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
        taken = held_sets.get(step)
        if taken:
            locked.update(((step, i), held[(step, i)]) for i in launchable.intersection(taken))
            launchable = launchable.difference(taken)
        ready.append((rank, step, launchable))
    due.sort(key=lambda d: (d[0], d[1]))
    wanted = min(slots, len(due) + sum(len(r) for _, _, r in ready))
    claim = Claim(claim.key, claim.priority, claim.active, claim.active + wanted, claim.started)
    granted = grant(shared.limit, shared.active_jobs, [*shared.claims, claim], claim.key)
    take = wanted if granted is None else min(wanted, granted)
    launches = [_request(verdict, step, i, n + 1) for i, _, step, n in due[:take]]
    left = max(0, take - len(launches))
    ordered = _in_order(ready, spec.order)
    launches.extend(_request(verdict, s, i, 1) for s, i in itertools.islice(ordered, left))
    requeue = max(0.0, (min(waiting) - now).total_seconds()) if waiting else None
    return launches, requeue, Blocked(locked, wanted - take), claim


def _deletions(
    spec: BackfillSpec, grouped: dict[Unit, list[ObservedJob]], state: RunState
) -> list[str]:
    """Finished, recorded Jobs beyond the history limits, oldest first (CronJob's rule).

    Jobs of a step the run no longer runs (its spec changed) are kept.
    """
    ok: list[ObservedJob] = []
    bad: list[ObservedJob] = []
    for (step, index), attempts in grouped.items():
        lane = state.lane(step)
        if lane is None:
            continue
        succeeded: IndexSet = lane.succeeded
        for obs in attempts:
            if obs.deleting:
                continue
            if obs.state is JobState.SUCCEEDED and index in succeeded:
                ok.append(obs)
            elif obs.state is JobState.FAILED:
                recorded = index in succeeded or index in lane.failed
                if recorded or lane.attempts_recorded(index) >= obs.attempt:
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
