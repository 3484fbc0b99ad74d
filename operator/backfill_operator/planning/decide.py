"""The decision of one reconcile pass: which Jobs to create and delete, and when to look again.

:func:`plan` is a function of (verdict, observed Jobs, now): it takes the
:class:`~.state.PartitionState` of :func:`~.state.observe` and decides

* launches: at most ``concurrency - active`` Jobs; retries that are due first (by index), then
  pending partitions in ``order``; none when the Backfill is invalid, suspended, a dry run or
  out of failure budget; never a partition another run's Job holds (the partition lock), and
  no more than the job-wide limit grants (:mod:`.admission`);
* deletions: finished Jobs whose outcome the status records, beyond the history limits
  (oldest first, the CronJob controller's rule); none without a selection, since then the
  status cannot record their outcomes;
* the requeue time: the earliest retry that is not due yet.

The status written afterwards is :func:`~.status.compose_status` of the same state.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..api.model import BackfillSpec, FailedPartition, Order
from . import naming
from .admission import Claim, JobWide, grant, shared_view
from .ledger import LedgerUpdate
from .observed import JobState, ObservedJob
from .ranges import IndexSet
from .state import LaunchRequest, Outcome, PartitionState, observe
from .times import parse_time
from .verdict import Verdict


@dataclass(frozen=True)
class Blocked:
    """Why launchable work waits although this Backfill has free slots.

    ``locked`` maps a pending (or due retry) partition to the run whose Job holds it;
    ``for_job_slot`` counts Jobs the job-wide limit did not grant in this pass.
    """

    locked: dict[int, str] = field(default_factory=dict)
    for_job_slot: int = 0


@dataclass(frozen=True)
class Decision:
    """What one pass does: the state it decided on and the actions that follow from it.

    ``state`` is None when the Backfill has no selection (then nothing else is set).
    ``claim`` is what this run asks of the job-wide limit (for the other runs' passes).
    """

    verdict: Verdict
    state: PartitionState | None
    launches: list[LaunchRequest] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    ledger: LedgerUpdate | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    requeue_after_seconds: float | None = None
    claim: Claim | None = None
    blocked: Blocked = field(default_factory=Blocked)
    shared: JobWide = field(default_factory=JobWide)


def may_launch(verdict: Verdict, state: PartitionState) -> bool:
    """True unless the Backfill is invalid, suspended, a dry run or out of failure budget."""
    spec = verdict.backfill.spec
    if spec is None or verdict.invalid is not None:
        return False
    budget = spec.max_failed_partitions
    budget_left = budget is None or len(state.failed) < budget
    return not spec.suspend and not spec.dry_run and budget_left


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
    seen = observe(verdict, jobs, now)
    if seen is None:
        return Decision(verdict, None)
    spec = verdict.backfill.spec
    assert spec is not None  # observe returns None without a spec
    state = seen.state
    pj = verdict.partitioned_job
    shared = shared_view(
        jobs,
        verdict.backfill.uid,
        pj.status,
        verdict.fingerprint,
        pj.spec.concurrency if pj.spec is not None else None,
        claims,
    )
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


def _started(state: PartitionState) -> int:
    """Partitions this run has started so far (the tie-breaker of equal claims)."""
    return len(state.succeeded) + len(state.failed) + len(state.running) + len(state.retrying)


def _request(verdict: Verdict, index: int, attempt: int) -> LaunchRequest:
    selection = verdict.selection
    assert selection is not None
    bf = verdict.backfill
    part = selection.partition(index)
    name = naming.job_name(bf.name, bf.uid, index, part.key, attempt)
    return LaunchRequest(part.index, part.key, part.start, part.end, attempt, name)


def _launches(
    verdict: Verdict,
    spec: BackfillSpec,
    state: PartitionState,
    shared: JobWide,
    claim: Claim,
    now: datetime,
) -> tuple[list[LaunchRequest], float | None, Blocked, Claim]:
    """Launches in order (due retries, then pending), the requeue time, what waits, the claim."""
    held = shared.held
    slots = max(0, spec.concurrency - state.active_jobs)
    due: list[FailedPartition] = []
    waiting: list[datetime] = []
    locked: dict[int, str] = {}
    selected = state.selection.indices
    for index in state.retrying:
        if index not in selected:
            continue
        entry = state.failures[index]
        at = parse_time(entry.retry_at) or now
        if at > now:
            waiting.append(at)
        elif index in held:
            locked[index] = held[index]
        else:
            due.append(entry)
    pending = state.pending
    if held:
        taken = IndexSet.from_indices(held)
        locked.update((i, held[i]) for i in pending.intersection(taken))
        pending = pending.difference(taken)
    wanted = min(slots, len(due) + len(pending))
    claim = Claim(claim.key, claim.priority, claim.active, claim.active + wanted, claim.started)
    granted = grant(shared.limit, shared.active_jobs, [*shared.claims, claim], claim.key)
    take = wanted if granted is None else min(wanted, granted)
    launches = [_request(verdict, e.index, e.attempts + 1) for e in due[:take]]
    left = take - len(launches)
    ordered = iter(pending) if spec.order is Order.OLDEST_FIRST else pending.iter_descending()
    launches.extend(_request(verdict, i, 1) for i in itertools.islice(ordered, max(0, left)))
    requeue = max(0.0, (min(waiting) - now).total_seconds()) if waiting else None
    return launches, requeue, Blocked(locked, wanted - take), claim


def _deletions(
    spec: BackfillSpec, grouped: dict[int, list[ObservedJob]], state: PartitionState
) -> list[str]:
    """Finished, recorded Jobs beyond the history limits, oldest first (CronJob's rule)."""
    ok: list[ObservedJob] = []
    bad: list[ObservedJob] = []
    succeeded: IndexSet = state.succeeded
    for index, attempts in grouped.items():
        for obs in attempts:
            if obs.deleting:
                continue
            if obs.state is JobState.SUCCEEDED and index in succeeded:
                ok.append(obs)
            elif obs.state is JobState.FAILED:
                entry = state.failures.get(index)
                recorded = index in succeeded or index in state.failed
                if recorded or (entry is not None and entry.attempts >= obs.attempt):
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
