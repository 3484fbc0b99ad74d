"""A Backfill's whole status, and the Events that go with its changes.

:func:`compose_status` is a function of (verdict, state, launched, now): the phase, the
kstatus conditions (:mod:`backfill_operator.api.reasons` for the reasons, the messages are
here), counts, compact partition sets, running and failed entries, the dry-run plan and the
timestamps. :func:`status_events` compares the new status with the previous one and returns the
Events to send once it is written (transitions only).

Status size is bounded whatever the pattern of outcomes: the partition sets are compact
(text, or a compressed bitmap when that is shorter: :meth:`~.ranges.IndexSet.stored`);
``retries`` holds every partition that will be retried in a few groups by (attempts, retry
time) (:func:`_retry_groups` coarsens the times when there are many); ``failures`` lists at
most :data:`MAX_RETRY_DETAILS` of those with details plus the last
:data:`MAX_FAILURE_DETAILS` partitions that failed for good (all of them are in
``partitions.failed``), ``failuresOmitted`` counts the rest; messages are cut at 256
characters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..api.model import (
    MAX_FAILURE_DETAILS,
    MAX_LOCK_HOLDERS,
    MAX_RETRY_DETAILS,
    TERMINAL_PHASES,
    BackfillStatus,
    Condition,
    FailedPartition,
    LockHolder,
    Order,
    PartitionCounts,
    PartitionSets,
    Phase,
    Plan,
    RetryGroup,
    StepStatus,
    Waiting,
)
from ..api.model import Selection as SelectionStatus
from ..api.reasons import ConditionType, EventReason, Reason
from . import conditions as cond
from .admission import holders
from .decide import Blocked
from .ranges import IndexSet
from .retries import Retries
from .state import LaunchRequest, PartitionState, RunState, Unit
from .times import parse_time, rfc3339
from .verdict import Verdict

#: ``status.retries`` groups at most before retry times are rounded up (:func:`_retry_groups`).
MAX_RETRY_GROUPS = 64
#: The roundings tried in turn, seconds (after merging the retries already due).
RETRY_GRAINS_SECONDS = (10, 60, 300, 900, 3600)
#: Keys shown at each end of a dry-run plan.
PLAN_SAMPLE = 5
#: At most one PartitionFailed event per Backfill per this many seconds.
FAILURE_EVENT_INTERVAL_SECONDS = 30


@dataclass(frozen=True)
class EventIntent:
    """An Event to send after the status write: type Normal/Warning, CamelCase reason."""

    type: str
    reason: EventReason | Reason
    message: str


_Trio = tuple[bool, Reason, str]


@dataclass(frozen=True)
class _Waits:
    """What holds work back in a pass: the lock, the job-wide limit, a quota refusal."""

    locked: Mapping[Unit, str]
    for_job_slot: int
    limit: int | None
    quota: str | None

    def describe(self) -> str:
        """Return ``", 3 waiting on a lock (held by a: 2, b: 1), ..."`` or ""."""
        text = ""
        if self.locked:
            held = ", ".join(f"{run}: {n}" for run, n in holders(self.locked, 3))
            text += f", {len(self.locked)} waiting on a lock (held by {held})"
        if self.for_job_slot:
            text += f", waiting for a job-wide slot (limit {self.limit})"
        return text


def _phase_and_conditions(
    verdict: Verdict,
    counts: PartitionCounts,
    active: int,
    retrying: int,
    launch_error: str | None,
    waits: _Waits | None = None,
    *,
    pending_units: int | None = None,
) -> tuple[Phase, list[Condition]]:
    """Return the phase and the Ready/Reconciling/Stalled trio.

    ``pending_units`` counts the (partition, step) pairs never launched (default
    ``counts.pending``), without those waiting to retry (``retrying`` counts those);
    ``active`` counts queued Jobs too (``counts.queued`` says how many).
    """
    gen = verdict.backfill.generation
    pending = counts.pending if pending_units is None else pending_units

    def trio(
        phase: Phase, ready: _Trio, reconciling: _Trio, stalled: _Trio
    ) -> tuple[Phase, list[Condition]]:
        return phase, [
            cond.make(ConditionType.READY, *ready, gen),
            cond.make(ConditionType.RECONCILING, *reconciling, gen),
            cond.make(ConditionType.STALLED, *stalled, gen),
        ]

    invalid, spec = verdict.invalid, verdict.backfill.spec
    if invalid is not None or spec is None:
        assert invalid is not None  # a verdict without a spec is invalid
        return trio(
            Phase.INVALID,
            (False, invalid.reason, invalid.message),
            (False, invalid.reason, "fix the spec; nothing is launched while it is invalid"),
            (True, invalid.reason, invalid.message),
        )
    budget_out = (
        spec.max_failed_partitions is not None and counts.failed >= spec.max_failed_partitions
    )
    ok = (False, Reason.AS_EXPECTED, "")
    if spec.dry_run:
        msg = f"dry run: {counts.pending} partitions would run, {counts.skipped} skipped"
        if spec.mark_succeeded:
            msg = f"dry run: {counts.pending} partitions would be marked succeeded"
        return trio(Phase.PENDING, (True, Reason.DRY_RUN, msg), ok, ok)
    work_left = pending + retrying
    if active == 0 and (work_left == 0 or budget_out):
        if counts.failed or counts.upstream_failed:
            msg = f"{counts.failed} of {counts.total} partitions failed"
            if counts.upstream_failed:
                msg += f", {counts.upstream_failed} not run (an upstream step did not succeed)"
            reason = Reason.FAILURE_BUDGET_EXHAUSTED if budget_out else Reason.PARTITIONS_FAILED
            if budget_out and work_left:
                msg += (
                    f" (maxFailedPartitions {spec.max_failed_partitions}); {work_left} not launched"
                )
            return trio(Phase.FAILED, (False, reason, msg), ok, (True, reason, msg))
        msg = f"{counts.succeeded} of {counts.total} partitions succeeded" + (
            f", {counts.skipped} skipped" if counts.skipped else ""
        )
        if counts.marked:
            msg = (
                f"{counts.marked} of {counts.total} partitions marked succeeded"
                + (f", {counts.succeeded} succeeded" if counts.succeeded else "")
                + (f", {counts.skipped} skipped" if counts.skipped else "")
            )
        return trio(Phase.SUCCEEDED, (True, Reason.SUCCEEDED, msg), ok, ok)
    if spec.suspend:
        msg = "suspended: launching nothing new"
        if active:
            msg += "; 1 running Job finishes" if active == 1 else f"; {active} running Jobs finish"
        return trio(
            Phase.SUSPENDED,
            (False, Reason.SUSPENDED, msg),
            (active > 0, Reason.WAITING_FOR_JOBS if active else Reason.SUSPENDED, msg),
            ok,
        )
    if budget_out:
        msg = (
            f"{counts.failed} partitions failed (maxFailedPartitions "
            f"{spec.max_failed_partitions}); waiting for {active} running Jobs"
        )
        return trio(
            Phase.RUNNING,
            (False, Reason.FAILURE_BUDGET_EXHAUSTED, msg),
            (True, Reason.WAITING_FOR_JOBS, msg),
            ok,
        )
    running = (
        f"{active - counts.queued} running, {counts.queued} queued"
        if counts.queued
        else f"{active} running"
    )
    done = counts.succeeded + counts.skipped + counts.marked
    progress = f"{done}/{counts.total} done, {running}, {pending} pending"
    if retrying:
        progress += f", {retrying} waiting to retry"
    if waits is not None:
        progress += waits.describe()
    if launch_error:
        progress += f"; last launch failed: {launch_error}"
    reason = Reason.LAUNCHING if pending else Reason.WAITING_FOR_JOBS
    if not pending and not active and retrying:
        reason = Reason.WAITING_FOR_RETRY
    if waits is not None and waits.quota:
        reason = Reason.QUOTA_EXCEEDED
        progress += f"; quota exceeded: {waits.quota}"
    elif waits is not None and waits.for_job_slot:
        reason = Reason.WAITING_FOR_JOB_SLOT
    elif waits is not None and waits.locked and len(waits.locked) >= pending + retrying:
        reason = Reason.WAITING_FOR_LOCK
    started = active or retrying or counts.succeeded or counts.failed or counts.marked
    phase = Phase.RUNNING if started else Phase.PENDING
    return trio(phase, (False, Reason.IN_PROGRESS, progress), (True, reason, progress), ok)


def _plan(state: RunState, order: Order, skipped: int) -> Plan:
    """The ``dryRun`` plan: how many would run, the first and last keys in launch order."""
    pending, selection = state.pending, state.selection
    if order is Order.OLDEST_FIRST:
        head = list(itertools.islice(iter(pending), PLAN_SAMPLE))
        tail = list(itertools.islice(pending.iter_descending(), PLAN_SAMPLE))[::-1]
        tail = tail if len(pending) > PLAN_SAMPLE else []
    else:
        head = list(itertools.islice(pending.iter_descending(), PLAN_SAMPLE))
        tail = list(itertools.islice(iter(pending), PLAN_SAMPLE))[::-1]
    return Plan(
        count=len(pending),
        first=[selection.key(i) for i in head],
        last=[selection.key(i) for i in tail],
        skipped=skipped,
    )


#: The states of :class:`PartitionSets` (model field names); pending is what none of them has.
_SET_STATES = ("succeeded", "failed", "skipped", "running", "queued", "upstream_failed", "marked")


def _counts_and_sets(
    selection: IndexSet, states: Mapping[str, IndexSet]
) -> tuple[PartitionCounts, PartitionSets]:
    """Counts (within ``selection``; pending: the rest) and sets of disjoint per-state sets."""
    counts = {name: len(states[name].intersection(selection)) for name in _SET_STATES}
    pending = len(selection) - sum(counts.values())
    return (
        PartitionCounts(total=len(selection), pending=pending, **counts),
        PartitionSets(**{name: states[name].stored() for name in _SET_STATES}),
    )


def _lane_status(lane: PartitionState) -> tuple[PartitionCounts, PartitionSets]:
    """One lane's counts and sets (running: started Jobs; queued: Kueue holds them)."""
    queued = lane.queued_set
    return _counts_and_sets(
        lane.selection.indices,
        {
            "succeeded": lane.succeeded,
            "failed": lane.failed,
            "skipped": lane.skipped,
            "running": lane.running_set.difference(queued),
            "queued": queued,
            "upstream_failed": lane.upstream_failed,
            "marked": lane.marked,
        },
    )


def roll_up(state: RunState) -> tuple[PartitionCounts, PartitionSets]:
    """The partition-level counts and sets of a run with steps (precedence: module doc).

    running > queued > pending (a step pending or waiting to retry) > failed (a step failed
    for good) > upstreamFailed > marked > succeeded > skipped (every step skipped).
    """
    sel = state.selection.indices
    layers: dict[str, IndexSet] = {}
    taken = IndexSet()
    picks: tuple[tuple[str, Callable[[PartitionState], IndexSet]], ...] = (
        ("running", lambda lane: lane.running_set.difference(lane.queued_set)),
        ("queued", lambda lane: lane.queued_set),
        ("pending", lambda lane: lane.pending.union(lane.retrying)),
        ("failed", lambda lane: lane.failed),
        ("upstream_failed", lambda lane: lane.upstream_failed),
        ("marked", lambda lane: lane.marked),
        ("succeeded", lambda lane: lane.succeeded),
    )
    for name, pick in picks:
        layer = IndexSet()
        for lane in state.lanes:
            layer = layer.union(pick(lane))
        layers[name] = layer.intersection(sel).difference(taken)
        taken = taken.union(layers[name])
    layers["skipped"] = sel.difference(taken)
    return _counts_and_sets(sel, layers)


def compose_status(
    verdict: Verdict,
    state: RunState | None,
    launched: Sequence[LaunchRequest],
    now: datetime,
    *,
    created: Mapping[Unit, str] | None = None,
    launch_error: str | None = None,
    blocked: Blocked | None = None,
    quota: str | None = None,
) -> BackfillStatus:
    """Return the Backfill's whole new status.

    ``state`` is the pass's state (None without a selection: then the recorded state is kept
    and only phase and conditions say why); ``launched`` are the requests whose Job now exists
    (created or adopted), ``created`` their Jobs' creationTimestamps by (step, index) (else
    ``now``); ``launch_error`` a create refusal the apiserver gave (shown in the Reconciling
    message); ``blocked`` what the planner held back (lock, job-wide limit) and ``quota`` a
    create the apiserver refused for a used-up ResourceQuota (``status.waiting`` and
    Reconciling). For a job with steps, ``steps`` has each step's counts and sets and the
    top-level ones are their :func:`roll_up`.
    """
    bf = verdict.backfill
    previous = bf.status
    gen = bf.generation
    if state is None or bf.spec is None:
        phase, conds = _phase_and_conditions(verdict, previous.counts, 0, 0, None)
        return previous.model_copy(
            update={
                "phase": phase,
                "observed_generation": gen,
                "conditions": cond.merge(previous.conditions, conds, now),
                "completion_time": None,
            }
        )
    spec = bf.spec
    state = state.launched(launched, created or {}, now)
    selection = state.selection
    running_entries = state.running_entries()
    steps: list[StepStatus] = []
    pending_units = 0
    retrying = 0
    for lane in state.lanes:
        retrying += len(lane.retrying)
        pending_units += len(lane.pending.intersection(selection.indices))
        if state.stepped:
            lane_counts, lane_sets = _lane_status(lane)
            steps.append(StepStatus(name=lane.step, counts=lane_counts, partitions=lane_sets))
    retry_groups, failures, omitted = _failures(state, now)
    if state.stepped:
        counts, sets = roll_up(state)
    else:
        counts, sets = _lane_status(state.lanes[0])
    active = len(running_entries)
    blocked = blocked or Blocked()
    limit = verdict.partitioned_job.spec.concurrency if verdict.partitioned_job.spec else None
    waits = _Waits(blocked.locked, blocked.for_job_slot, limit, quota)
    phase, conds = _phase_and_conditions(
        verdict,
        counts,
        active,
        retrying,
        launch_error,
        waits,
        pending_units=pending_units,
    )
    started = previous.start_time
    if started is None and (active or counts.succeeded or counts.failed):
        started = rfc3339(now)
    completion = previous.completion_time if phase in TERMINAL_PHASES else None
    if completion is None and phase in TERMINAL_PHASES:
        completion = rfc3339(now)
    rng = spec.range
    progress = f"{counts.succeeded + counts.marked}/{counts.total}"
    if counts.skipped:
        progress += f" (+{counts.skipped} skipped)"
    last_failure_event = previous.last_failure_event_time
    if state.new_failures and _failure_event_due(previous, now):
        last_failure_event = rfc3339(now)
    return BackfillStatus(
        phase=phase,
        observed_generation=gen,
        conditions=cond.merge(previous.conditions, conds, now),
        partitioning=selection.space_fingerprint,
        selection=SelectionStatus(
            first=selection.first_key,
            last=selection.last_key,
            count=len(selection),
            range_from=rng.from_ if rng else None,
            range_to=rng.to if rng else None,
        ),
        counts=counts,
        progress=progress,
        partitions=sets,
        steps=steps,
        running=running_entries,
        failures=failures,
        failures_omitted=omitted or None,
        retries=retry_groups,
        plan=_plan(state, spec.order, counts.skipped) if spec.dry_run else None,
        waiting=_waiting(blocked) if phase not in TERMINAL_PHASES else None,
        template_hash=verdict.template_hash or previous.template_hash,
        start_time=started,
        completion_time=completion,
        last_failure_event_time=last_failure_event,
    )


def _retry_groups(books: Sequence[Retries], now: datetime) -> list[Retries]:
    """The lanes' retries with at most :data:`MAX_RETRY_GROUPS` groups in all, when possible.

    As they are when few; else retries already due are merged (one group per attempt count),
    then later retry times rounded up to 10 s, a minute, 5, 15 or 60 minutes until few enough
    (:meth:`.retries.Retries.coarsened`): no retry starts before its time.
    """
    if sum(len(b.groups) for b in books) <= MAX_RETRY_GROUPS:
        return list(books)
    for grain in (None, *RETRY_GRAINS_SECONDS):
        coarse = [b.coarsened(now, grain) for b in books]
        if sum(len(b.groups) for b in coarse) <= MAX_RETRY_GROUPS:
            break
    return coarse


def _failures(
    state: RunState, now: datetime
) -> tuple[list[RetryGroup], list[FailedPartition], int]:
    """``status.retries``, ``status.failures`` and ``status.failuresOmitted`` of a pass.

    Retries: every (partition, step) waiting for a retry or running it. Failures: the first
    :data:`MAX_RETRY_DETAILS` of those with details (by partition, then step order), then
    the last :data:`MAX_FAILURE_DETAILS` failed for good; omitted: the failed pairs not listed.
    """
    ranks = {lane.step: rank for rank, lane in enumerate(state.lanes)}

    def order(f: FailedPartition) -> tuple[int, int]:
        return (f.index, ranks.get(f.step or "", 0))

    books: list[Retries] = []
    for lane in state.lanes:
        # A partition whose retry runs stays in its group: it records which attempts already
        # failed (their Jobs may still be listed, kept by the history limit) until it ends.
        running = lane.running_set.difference(lane.succeeded)
        books.append(lane.retries.restricted(lane.retrying.union(running)))
    books = _retry_groups(books, now)
    groups: list[RetryGroup] = []
    retry_details: list[FailedPartition] = []
    final_details: list[FailedPartition] = []
    failed_total = 0
    for lane, book in zip(state.lanes, books, strict=True):
        groups += [
            RetryGroup(
                step=lane.step or None,
                attempts=g.attempts,
                retry_at=g.at,
                partitions=g.indices.stored(),
            )
            for g in book.groups
        ]
        members = book.members
        for f in lane.failures.values():
            if f.index in members:
                at = book.retry_at_of(f.index)
                retry_details.append(
                    f if at == f.retry_at else f.model_copy(update={"retry_at": at})
                )
            elif f.index in lane.failed:
                final_details.append(f)
        failed_total += len(members) + len(lane.failed)
    retry_details.sort(key=order)
    final_details.sort(key=order)
    failures = retry_details[:MAX_RETRY_DETAILS] + final_details[-MAX_FAILURE_DETAILS:]
    return groups, failures, max(0, failed_total - len(failures))


def _waiting(blocked: Blocked) -> Waiting | None:
    """``status.waiting`` from what the planner held back; None when nothing waits."""
    if not blocked.locked and not blocked.for_job_slot:
        return None
    return Waiting(
        on_lock=len(blocked.locked),
        holders=[
            LockHolder(backfill=run, count=n)
            for run, n in holders(blocked.locked, MAX_LOCK_HOLDERS)
        ],
        for_job_slot=blocked.for_job_slot,
    )


def _failure_event_due(previous: BackfillStatus, now: datetime) -> bool:
    sent = parse_time(previous.last_failure_event_time)
    return sent is None or (now - sent).total_seconds() >= FAILURE_EVENT_INTERVAL_SECONDS


def _marked_units(status: BackfillStatus) -> int:
    """(Partition, step) pairs marked succeeded: per step when there are steps."""
    if status.steps:
        return sum(s.counts.marked for s in status.steps)
    return status.counts.marked


#: Status fields that launching Jobs changes, and nothing else does alone: a status that
#: differs from the recorded one only there may be written a little later (:func:`only_launches`).
_LAUNCH_FIELDS = ("running", "counts", "progress", "partitions", "steps", "plan", "waiting")


def only_launches(old: BackfillStatus, new: BackfillStatus) -> bool:
    """True when ``new`` differs from ``old`` at most in what launching Jobs changes.

    That is the running Jobs, the counts and sets, progress, plan and waiting, and condition
    messages (they quote the counts); not phase, condition status or reason, failures, retries,
    times, generation or numbering. Such a status can wait for the next write without losing
    anything: every part of it is derived again from the Jobs by the next pass. The caller must
    also know the pass recorded no outcome (the counts change then too).
    """

    def essentials(status: BackfillStatus) -> tuple[object, ...]:
        conditions = tuple((c.type, c.status, c.reason) for c in status.conditions)
        rest = status.model_copy(update={f: None for f in _LAUNCH_FIELDS} | {"conditions": []})
        return conditions, rest

    return essentials(old) == essentials(new)


def status_events(
    verdict: Verdict, state: RunState | None, status: BackfillStatus
) -> list[EventIntent]:
    """Return the Events to send once ``status`` is written: transitions from the previous one.

    Started (first launch), PartitionFailed (new failures, rate-limited), UpstreamFailed
    (steps not run because an upstream did not succeed), MarkedSucceeded, Succeeded/Failed
    (the phase became terminal), Suspended/Resumed, and a Warning with the Stalled reason
    when the Backfill becomes Invalid or its Invalid message changes.
    """
    previous = verdict.backfill.status
    events: list[EventIntent] = []
    before, after = previous.phase, status.phase
    ready = cond.find(status.conditions, ConditionType.READY)
    message = ready.message if ready else ""
    if after is Phase.INVALID:
        stalled = cond.find(status.conditions, ConditionType.STALLED)
        assert stalled is not None
        old = cond.find(previous.conditions, ConditionType.STALLED)
        if before is not Phase.INVALID or old is None or old.message != stalled.message:
            events.append(EventIntent("Warning", Reason(stalled.reason), stalled.message))
        return events
    spec = verdict.backfill.spec
    assert spec is not None  # only an Invalid status lacks a spec
    if previous.start_time is None and status.start_time is not None:
        sel = status.selection
        span = f" ({sel.first} … {sel.last})" if sel else ""
        events.append(
            EventIntent(
                "Normal",
                EventReason.STARTED,
                f"started {status.counts.total} partitions{span} of PartitionedJob "
                f'"{verdict.partitioned_job.name}", concurrency {spec.concurrency}',
            )
        )
    new_failures = state.new_failures if state else ()
    if new_failures and status.last_failure_event_time != previous.last_failure_event_time:
        first = new_failures[0]
        limit = spec.retries.limit + 1
        retry = f", retry at {first.retry_at}" if first.retry_at else ", failed for good"
        more = f" (+{len(new_failures) - 1} more)" if len(new_failures) > 1 else ""
        step = f' step "{first.step}"' if first.step else ""
        events.append(
            EventIntent(
                "Warning",
                EventReason.PARTITION_FAILED,
                f'partition "{first.key}"{step} failed (attempt {first.attempts} of {limit}'
                f"{retry}): {first.message or 'Job failed'}{more}",
            )
        )
    if state is not None:
        blocked = [lane for lane in state.lanes if lane.new_upstream_failed]
        if blocked:
            total = sum(lane.new_upstream_failed for lane in blocked)
            names = ", ".join(f"{lane.step}: {lane.new_upstream_failed}" for lane in blocked)
            events.append(
                EventIntent(
                    "Warning",
                    EventReason.UPSTREAM_FAILED,
                    f"{total} (partition, step) pairs not run because an upstream step did not "
                    f"succeed ({names})",
                )
            )
    marked = _marked_units(status) - _marked_units(previous)
    if marked > 0:
        events.append(
            EventIntent(
                "Normal",
                EventReason.MARKED_SUCCEEDED,
                f"marked {marked} {'(partition, step) pairs' if status.steps else 'partitions'} "
                "succeeded without running them",
            )
        )
    if after != before and after is Phase.SUCCEEDED:
        events.append(EventIntent("Normal", EventReason.SUCCEEDED, message))
    if after != before and after is Phase.FAILED:
        events.append(EventIntent("Warning", EventReason.FAILED, message))
    if after != before and after is Phase.SUSPENDED:
        events.append(EventIntent("Normal", EventReason.SUSPENDED, message))
    if before is Phase.SUSPENDED and after in (Phase.RUNNING, Phase.PENDING):
        events.append(EventIntent("Normal", EventReason.RESUMED, "resumed launching partitions"))
    return events
