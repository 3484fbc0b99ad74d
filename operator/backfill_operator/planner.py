"""The backfill logic: from (spec, observed Jobs, now) to what to do and what status to write.

Pure: no kopf, no Kubernetes client, no clock. One reconcile pass is

1. :func:`build_space` and :func:`resolve_selection`: the partitions the Backfill runs;
2. :func:`plan`: reads the previous status and the observed Jobs, records new outcomes, decides
   launches (at most ``concurrency - active`` Jobs, retries that are due first, then pending
   partitions in ``order``), deletions (finished Jobs whose outcome is recorded, beyond the
   history limits), ledger updates, events and when to look again;
3. :meth:`Decision.status`: the whole new status, given which launches went through.

The rules, in the order they apply, are documented in ``docs/behaviour.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import conditions as cond
from .builders import LaunchRequest, rfc3339
from .conditions import ConditionType, Reason
from .model import (
    MAX_BACKOFF_SECONDS,
    BackfillSpec,
    BackfillStatus,
    Condition,
    FailedPartition,
    Order,
    PartitionCounts,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    PartitionSets,
    Phase,
    Plan,
    Reprocess,
    RunningPartition,
)
from .model import Selection as SelectionStatus
from .naming import job_name
from .observed import JobState, ObservedJob, parse_time
from .partitions import (
    PartitionError,
    PartitionSpace,
    Selection,
    StaticPartitions,
    TimePartitions,
)
from .ranges import IndexSet

#: Failed-for-good partitions listed with details in status (all are in the index set).
MAX_FAILURE_DETAILS = 100
#: Characters of a Job's failure message kept in status.
MAX_MESSAGE_LENGTH = 256
#: Keys shown at each end of a dry-run plan.
PLAN_SAMPLE = 5
#: At most one PartitionFailed event per Backfill per this many seconds.
FAILURE_EVENT_INTERVAL_SECONDS = 30


class InvalidSpec(Exception):
    """The Backfill cannot run as written; ``reason`` and ``message`` go into its conditions."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# ------------------------------------------------------------------------------ partitions


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
    job: PartitionedJobSpec, spec: BackfillSpec, previous: BackfillStatus
) -> tuple[object, ...] | None:
    """Return a hashable key under which a resolved selection may be cached, or None.

    None when the selection depends on ``now`` (an unpinned open range).
    """
    sched = job.partitions.schedule
    job_part = (
        (sched.cron, sched.time_zone, sched.start, sched.end)
        if sched is not None
        else tuple(job.partitions.values or ())
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


def reprocess_skips(
    candidates: IndexSet,
    reprocess: Reprocess,
    job_status: PartitionedJobStatus,
    partitioning: str | None,
) -> IndexSet:
    """Return the candidates that ``reprocess`` skips, by the PartitionedJob's ledger.

    Missing skips partitions with any recorded final outcome, Failed skips those whose last
    outcome is success, All skips none (Airflow's reprocess_behavior none/failed/completed,
    Dagster's "missing" and "failed and missing" partition selections). A ledger kept for
    another partitioning fingerprint is ignored.
    """
    if reprocess is Reprocess.ALL or job_status.partitioning != partitioning:
        return IndexSet.parse("")
    ok = IndexSet.parse(job_status.ledger.succeeded)
    if reprocess is Reprocess.FAILED:
        return candidates.intersection(ok)
    return candidates.intersection(ok.union(IndexSet.parse(job_status.ledger.failed)))


@dataclass(frozen=True)
class Preview:
    """What a new Backfill would run: the selection, the indices it would launch, the skips."""

    selection: Selection
    to_run: IndexSet
    skipped: IndexSet

    def launch_order(self, order: Order) -> Iterable[int]:
        """Iterate the indices to run in launch order (lazy)."""
        return iter(self.to_run) if order is Order.OLDEST_FIRST else self.to_run.iter_descending()


def preview(
    job: PartitionedJobSpec, job_status: PartitionedJobStatus, spec: BackfillSpec, now: datetime
) -> Preview:
    """Return what a new Backfill with ``spec`` would run now (the CLI's ``plan``).

    The same functions as the operator's first pass: :func:`build_space`,
    :func:`resolve_selection`, :func:`reprocess_skips`. Raises :class:`InvalidSpec`.
    """
    space = build_space(job, now)
    selection = resolve_selection(space, spec, BackfillStatus())
    skipped = reprocess_skips(selection.indices, spec.reprocess, job_status, space.fingerprint)
    return Preview(selection, selection.indices.difference(skipped), skipped)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class BackfillView:
    """The Backfill as the planner reads it."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: BackfillSpec
    status: BackfillStatus


@dataclass(frozen=True)
class JobView:
    """The referenced PartitionedJob: None fields when it does not exist.

    ``template_error`` is the apiserver's rejection of a Job built from the template (a
    server-side dry run made by the caller), or None when accepted.
    """

    name: str
    spec: PartitionedJobSpec | None
    status: PartitionedJobStatus
    template_hash: str = ""
    template_error: str | None = None


@dataclass(frozen=True)
class EventIntent:
    """An Event to send after the status write: type Normal/Warning, CamelCase reason."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """A partition attempt whose end this pass recorded (for metrics)."""

    index: int
    key: str
    attempt: int
    succeeded: bool
    duration_seconds: float | None
    final: bool


@dataclass(frozen=True)
class LedgerUpdate:
    """Final outcomes to merge into the PartitionedJob's ledger."""

    partitioning: str
    succeeded: IndexSet
    failed: IndexSet

    def apply(self, status: PartitionedJobStatus) -> PartitionLedger:
        """Return the merged ledger: the latest outcome of a partition wins.

        A ledger recorded for another partitioning (fingerprint) is discarded first.
        """
        if status.partitioning == self.partitioning:
            old_ok = IndexSet.parse(status.ledger.succeeded)
            old_bad = IndexSet.parse(status.ledger.failed)
        else:
            old_ok = old_bad = IndexSet.parse("")
        ok = old_ok.difference(self.failed).union(self.succeeded)
        bad = old_bad.difference(self.succeeded).union(self.failed)
        return PartitionLedger(succeeded=str(ok), failed=str(bad))


@dataclass
class _State:
    """Partition state of one pass, before launches."""

    selection: Selection | None
    succeeded: IndexSet
    failed: IndexSet
    skipped: IndexSet
    running: dict[int, ObservedJob]
    failures: dict[int, FailedPartition]
    pending: IndexSet
    active_jobs: int
    new_failures: list[FailedPartition] = field(default_factory=list)


def _backoff_seconds(spec: BackfillSpec, attempt: int) -> int:
    """Delay before the retry that follows failed attempt ``attempt`` (1-based), seconds."""
    base = spec.retries.backoff_seconds
    if base == 0:
        return 0
    return min(MAX_BACKOFF_SECONDS, base * int(2 ** min(attempt - 1, 20)))


def _iso(moment: datetime) -> str:
    return rfc3339(moment)


def _latest_per_index(jobs: Iterable[ObservedJob]) -> dict[int, list[ObservedJob]]:
    grouped: dict[int, list[ObservedJob]] = {}
    for job in jobs:
        grouped.setdefault(job.index, []).append(job)
    for items in grouped.values():
        items.sort(key=lambda j: j.attempt)
    return grouped


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`plan`: actions to take and the inputs of the new status."""

    backfill: BackfillView
    job: JobView
    launches: list[LaunchRequest]
    deletions: list[str]
    ledger: LedgerUpdate | None
    outcomes: list[Outcome]
    requeue_after_seconds: float | None
    invalid: InvalidSpec | None
    now: datetime
    _state: _State | None

    def status(
        self,
        launched: Sequence[LaunchRequest] = (),
        launch_error: str | None = None,
        created: Mapping[int, str] | None = None,
    ) -> BackfillStatus:
        """Return the whole new status, given the launches that went through.

        ``launched`` are requests whose Job now exists (created or adopted); ``launch_error``
        is a create failure the apiserver gave (shown in the Reconciling condition);
        ``created`` maps a launched index to its Job's creationTimestamp (else ``now``).
        """
        return _status(self, launched, launch_error, created or {})

    def events(self, status: BackfillStatus) -> list[EventIntent]:
        """Return the Events to send once ``status`` is written (transitions only)."""
        return _events(self, status)


def plan(
    backfill: BackfillView,
    job: JobView,
    selection: Selection | None,
    partitioning: str | None,
    jobs: Sequence[ObservedJob],
    now: datetime,
    invalid: InvalidSpec | None = None,
) -> Decision:
    """Decide one reconcile pass of a Backfill.

    ``selection`` is the resolved selection (None when ``invalid`` says why it could not be
    resolved); ``partitioning`` the job's partition-space fingerprint; ``jobs`` every Job
    labelled with the Backfill's UID, as listed from the API. ``now`` is aware UTC.

    Invariants (tested with hypothesis): at most ``concurrency - active`` launches; no launch
    for a partition with an active Job, a recorded success or a final failure; no launch at all
    when invalid, suspended, dry-run or out of failure budget; a Job is deleted only when its
    outcome is part of the returned status.
    """
    spec, previous = backfill.spec, backfill.status
    if invalid is None and job.spec is None:
        invalid = InvalidSpec(
            Reason.PARTITIONED_JOB_NOT_FOUND,
            f'PartitionedJob "{job.name}" not found in namespace "{backfill.namespace}"',
        )
    if invalid is None and job.template_error:
        invalid = InvalidSpec(
            Reason.INVALID_JOB_TEMPLATE,
            f'PartitionedJob "{job.name}" has a jobTemplate the apiserver rejects: '
            f"{job.template_error}",
        )
    if invalid is None and previous.partitioning and previous.partitioning != partitioning:
        started = previous.counts.succeeded + previous.counts.failed + previous.counts.running
        if started:
            invalid = InvalidSpec(
                Reason.PARTITIONING_CHANGED,
                f'the partitions of PartitionedJob "{job.name}" changed (cron, timeZone, start '
                "or values) after this Backfill started; its partition numbers no longer "
                "apply. Create a new Backfill.",
            )

    owned = [j for j in jobs if j.owned]
    grouped = _latest_per_index(owned)
    succeeded = IndexSet.parse(previous.partitions.succeeded)
    failed = IndexSet.parse(previous.partitions.failed)
    skipped = IndexSet.parse(previous.partitions.skipped)
    failures = {f.index: f for f in previous.failures}
    new_ok: list[int] = []
    new_bad: list[int] = []
    outcomes: list[Outcome] = []
    new_failures: list[FailedPartition] = []
    running: dict[int, ObservedJob] = {}

    for index, attempts in grouped.items():
        for obs in attempts:
            if obs.state is JobState.ACTIVE:
                running[index] = obs
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
                when = (obs.finish_time or now) + timedelta(
                    seconds=_backoff_seconds(spec, obs.attempt)
                )
                retry_at = _iso(when)
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

    active_jobs = sum(1 for j in owned if j.state is JobState.ACTIVE)
    ledger = None
    if partitioning and (new_ok or new_bad):
        ledger = LedgerUpdate(
            partitioning=partitioning,
            succeeded=IndexSet.from_indices(new_ok),
            failed=IndexSet.from_indices(new_bad),
        )

    state: _State | None = None
    launches: list[LaunchRequest] = []
    requeue: float | None = None
    if selection is not None:
        retrying = IndexSet.from_indices(
            i
            for i, f in failures.items()
            if f.retry_at is not None and i not in running and i not in succeeded
        )
        done = succeeded.union(failed).union(skipped)
        candidates = (
            selection.indices.difference(done)
            .difference(IndexSet.from_indices(running))
            .difference(retrying)
        )
        if invalid is None:
            skip = reprocess_skips(candidates, spec.reprocess, job.status, partitioning)
            if len(skip):
                skipped = skipped.union(skip)
                candidates = candidates.difference(skip)
        state = _State(
            selection=selection,
            succeeded=succeeded,
            failed=failed,
            skipped=skipped,
            running=running,
            failures=failures,
            pending=candidates,
            active_jobs=active_jobs,
            new_failures=new_failures,
        )
        budget_left = spec.max_failed_partitions is None or len(failed) < spec.max_failed_partitions
        may_launch = invalid is None and not spec.suspend and not spec.dry_run and budget_left
        if may_launch:
            slots = max(0, spec.concurrency - active_jobs)
            due: list[FailedPartition] = []
            waiting: list[datetime] = []
            for index in retrying:
                entry = failures[index]
                assert entry.retry_at is not None
                at = parse_time(entry.retry_at)
                assert at is not None
                if index not in selection.indices:
                    continue
                if at <= now:
                    due.append(entry)
                else:
                    waiting.append(at)
            for entry in due[:slots]:
                part = selection.partition(entry.index)
                launches.append(
                    LaunchRequest(part.index, part.key, part.start, part.end, entry.attempts + 1)
                )
            slots -= len(launches)
            ordered = (
                iter(candidates)
                if spec.order is Order.OLDEST_FIRST
                else candidates.iter_descending()
            )
            for index in itertools.islice(ordered, max(0, slots)):
                part = selection.partition(index)
                launches.append(LaunchRequest(part.index, part.key, part.start, part.end, 1))
            if waiting:
                requeue = max(0.0, (min(waiting) - now).total_seconds())

    deletions = _deletions(spec, grouped, succeeded, failures, failed)
    return Decision(
        backfill=backfill,
        job=job,
        launches=launches if invalid is None else [],
        deletions=deletions,
        ledger=ledger,
        outcomes=outcomes,
        requeue_after_seconds=requeue,
        invalid=invalid,
        now=now,
        _state=state,
    )


def _deletions(
    spec: BackfillSpec,
    grouped: dict[int, list[ObservedJob]],
    succeeded: IndexSet,
    failures: dict[int, FailedPartition],
    failed: IndexSet,
) -> list[str]:
    """Finished, recorded Jobs beyond the history limits, oldest first (CronJob's rule)."""
    ok: list[ObservedJob] = []
    bad: list[ObservedJob] = []
    for index, attempts in grouped.items():
        for obs in attempts:
            if obs.deleting:
                continue
            if obs.state is JobState.SUCCEEDED and index in succeeded:
                ok.append(obs)
            elif obs.state is JobState.FAILED:
                entry = failures.get(index)
                recorded = index in succeeded or index in failed
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


# ---------------------------------------------------------------------------- the status


def _phase_and_conditions(
    decision: Decision,
    counts: PartitionCounts,
    active: int,
    retrying: int,
    launch_error: str | None,
) -> tuple[Phase, list[Condition]]:
    spec = decision.backfill.spec
    gen = decision.backfill.generation
    invalid = decision.invalid

    def trio(
        phase: Phase,
        ready: tuple[bool, Reason, str],
        reconciling: tuple[bool, Reason, str],
        stalled: tuple[bool, Reason, str],
    ) -> tuple[Phase, list[Condition]]:
        return phase, [
            cond.make(ConditionType.READY, *ready, gen),
            cond.make(ConditionType.RECONCILING, *reconciling, gen),
            cond.make(ConditionType.STALLED, *stalled, gen),
        ]

    if invalid is not None:
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
        return trio(Phase.PENDING, (True, Reason.DRY_RUN, msg), ok, ok)
    work_left = counts.pending + retrying
    if active == 0 and (work_left == 0 or budget_out):
        if counts.failed:
            msg = f"{counts.failed} of {counts.total} partitions failed"
            reason = Reason.FAILURE_BUDGET_EXHAUSTED if budget_out else Reason.PARTITIONS_FAILED
            if budget_out and work_left:
                msg += (
                    f" (maxFailedPartitions {spec.max_failed_partitions}); {work_left} not launched"
                )
            return trio(Phase.FAILED, (False, reason, msg), ok, (True, reason, msg))
        msg = f"{counts.succeeded} of {counts.total} partitions succeeded" + (
            f", {counts.skipped} skipped" if counts.skipped else ""
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
    progress = (
        f"{counts.succeeded + counts.skipped}/{counts.total} done, {active} running, "
        f"{counts.pending} pending"
    )
    if retrying:
        progress += f", {retrying} waiting to retry"
    if launch_error:
        progress += f"; last launch failed: {launch_error}"
    reason = Reason.LAUNCHING if counts.pending else Reason.WAITING_FOR_JOBS
    if not counts.pending and not active and retrying:
        reason = Reason.WAITING_FOR_RETRY
    started = active or retrying or counts.succeeded or counts.failed
    phase = Phase.RUNNING if started else Phase.PENDING
    return trio(phase, (False, Reason.IN_PROGRESS, progress), (True, reason, progress), ok)


def _status(
    decision: Decision,
    launched: Sequence[LaunchRequest],
    launch_error: str | None,
    created: Mapping[int, str],
) -> BackfillStatus:
    bf = decision.backfill
    previous = bf.status
    now = decision.now
    state = decision._state
    gen = bf.generation
    if state is None or state.selection is None:
        # Invalid before a selection exists: keep what was recorded, report why.
        phase, conds = _phase_and_conditions(decision, previous.counts, 0, 0, None)
        return previous.model_copy(
            update={
                "phase": phase,
                "observed_generation": gen,
                "conditions": cond.merge(previous.conditions, conds, now),
                "completion_time": None,
            }
        )
    selection = state.selection
    sel = selection.indices
    running = dict(state.running)
    launched_set = {r.index: r for r in launched}
    running_entries: list[RunningPartition] = []
    for index, obs in sorted(running.items()):
        running_entries.append(
            RunningPartition(
                key=obs.key,
                index=index,
                job=obs.name,
                attempt=obs.attempt,
                start_time=obs.created or None,
            )
        )
    for index, req in sorted(launched_set.items()):
        running_entries.append(
            RunningPartition(
                key=req.key,
                index=index,
                job=job_name(bf.name, bf.uid, index, req.key, req.attempt),
                attempt=req.attempt,
                start_time=created.get(index) or _iso(now),
            )
        )
    running_entries.sort(key=lambda r: r.index)
    running_set = IndexSet.from_indices(r.index for r in running_entries)
    pending = state.pending.difference(running_set)
    retrying = [
        f
        for f in state.failures.values()
        if f.retry_at is not None and f.index not in running_set and f.index not in state.succeeded
    ]
    failed_entries = [f for f in state.failures.values() if f.index in state.failed]
    failed_entries.sort(key=lambda f: f.index)
    # A partition whose retry runs keeps its entry: it records which attempts already failed
    # (their Jobs may still be listed, kept by the history limit) until the retry ends.
    in_retry = [
        f
        for f in state.failures.values()
        if f.retry_at is not None and f.index in running_set and f.index not in state.succeeded
    ]
    failures = (
        sorted(retrying + in_retry, key=lambda f: f.index) + failed_entries[-MAX_FAILURE_DETAILS:]
    )
    counts = PartitionCounts(
        total=len(selection),
        running=len(running_set.intersection(sel)),
        succeeded=len(state.succeeded.intersection(sel)),
        failed=len(state.failed.intersection(sel)),
        skipped=len(state.skipped.intersection(sel)),
    )
    counts = counts.model_copy(
        update={
            "pending": counts.total
            - counts.running
            - counts.succeeded
            - counts.failed
            - counts.skipped
        }
    )
    active = len(running_entries)
    phase, conds = _phase_and_conditions(
        decision,
        counts.model_copy(update={"pending": len(pending.intersection(sel))}),
        active,
        len(retrying),
        launch_error,
    )
    spec = bf.spec
    plan_status = None
    if spec.dry_run:
        ordered = list(pending) if spec.order is Order.OLDEST_FIRST else None
        if ordered is None:
            head = list(itertools.islice(pending.iter_descending(), PLAN_SAMPLE))
            tail = list(itertools.islice(iter(pending), PLAN_SAMPLE))[::-1]
        else:
            head = ordered[:PLAN_SAMPLE]
            tail = ordered[-PLAN_SAMPLE:] if len(ordered) > PLAN_SAMPLE else []
        plan_status = Plan(
            count=len(pending),
            first=[selection.key(i) for i in head],
            last=[selection.key(i) for i in tail],
            skipped=counts.skipped,
        )
    started = previous.start_time
    if started is None and (active or counts.succeeded or counts.failed):
        started = _iso(now)
    completion = previous.completion_time if phase in (Phase.SUCCEEDED, Phase.FAILED) else None
    if completion is None and phase in (Phase.SUCCEEDED, Phase.FAILED):
        completion = _iso(now)
    rng = spec.range
    progress = f"{counts.succeeded}/{counts.total}"
    if counts.skipped:
        progress += f" (+{counts.skipped} skipped)"
    last_failure_event = previous.last_failure_event_time
    if state.new_failures and _failure_event_due(previous, now):
        last_failure_event = _iso(now)
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
        partitions=PartitionSets(
            succeeded=str(state.succeeded),
            failed=str(state.failed),
            skipped=str(state.skipped),
            running=str(running_set),
        ),
        running=running_entries,
        failures=failures,
        plan=plan_status,
        template_hash=decision.job.template_hash or previous.template_hash,
        start_time=started,
        completion_time=completion,
        last_failure_event_time=last_failure_event,
    )


def _failure_event_due(previous: BackfillStatus, now: datetime) -> bool:
    last = previous.last_failure_event_time
    if not last:
        return True
    sent = parse_time(last)
    assert sent is not None
    return (now - sent).total_seconds() >= FAILURE_EVENT_INTERVAL_SECONDS


def _events(decision: Decision, status: BackfillStatus) -> list[EventIntent]:
    previous = decision.backfill.status
    events: list[EventIntent] = []
    before, after = previous.phase, status.phase
    ready = next((c for c in status.conditions if c.type == ConditionType.READY), None)
    message = ready.message if ready else ""
    if after is Phase.INVALID:
        stalled = next(c for c in status.conditions if c.type == ConditionType.STALLED)
        old = next((c for c in previous.conditions if c.type == ConditionType.STALLED), None)
        if before is not Phase.INVALID or old is None or old.message != stalled.message:
            events.append(EventIntent("Warning", stalled.reason, stalled.message))
        return events
    if previous.start_time is None and status.start_time is not None:
        sel = status.selection
        span = f" ({sel.first} … {sel.last})" if sel else ""
        events.append(
            EventIntent(
                "Normal",
                "Started",
                f"started {status.counts.total} partitions{span} of PartitionedJob "
                f'"{decision.job.name}", concurrency {decision.backfill.spec.concurrency}',
            )
        )
    new_failures = decision._state.new_failures if decision._state else []
    if new_failures and status.last_failure_event_time != previous.last_failure_event_time:
        first = new_failures[0]
        limit = decision.backfill.spec.retries.limit + 1
        retry = f", retry at {first.retry_at}" if first.retry_at else ", failed for good"
        more = f" (+{len(new_failures) - 1} more)" if len(new_failures) > 1 else ""
        events.append(
            EventIntent(
                "Warning",
                "PartitionFailed",
                f'partition "{first.key}" failed (attempt {first.attempts} of {limit}'
                f"{retry}): {first.message or 'Job failed'}{more}",
            )
        )
    if after != before and after in (Phase.SUCCEEDED, Phase.FAILED):
        events.append(
            EventIntent("Normal" if after is Phase.SUCCEEDED else "Warning", str(after), message)
        )
    if after != before and after is Phase.SUSPENDED:
        events.append(EventIntent("Normal", "Suspended", message))
    if before is Phase.SUSPENDED and after in (Phase.RUNNING, Phase.PENDING):
        events.append(EventIntent("Normal", "Resumed", "resumed launching partitions"))
    return events


# ------------------------------------------------------------------- PartitionedJob status


def partitioned_job_status(
    spec: PartitionedJobSpec, previous: PartitionedJobStatus, generation: int, now: datetime
) -> PartitionedJobStatus:
    """Return a PartitionedJob's status: Ready/Stalled by whether its partitions parse.

    The ledger is kept, unless the partitioning fingerprint changed (then it is reset: the
    old partition numbers no longer apply).
    """
    try:
        space = build_space(spec, now)
    except InvalidSpec as exc:
        conds = [
            cond.make(ConditionType.READY, False, exc.reason, exc.message, generation),
            cond.make(ConditionType.STALLED, True, exc.reason, exc.message, generation),
        ]
        return previous.model_copy(
            update={
                "observed_generation": generation,
                "conditions": cond.merge(previous.conditions, conds, now),
                "description": None,
            }
        )
    ledger = previous.ledger if previous.partitioning == space.fingerprint else PartitionLedger()
    conds = [
        cond.make(ConditionType.READY, True, Reason.VALID, space.describe(), generation),
        cond.make(ConditionType.STALLED, False, Reason.VALID, "", generation),
    ]
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "conditions": cond.merge(previous.conditions, conds, now),
            "partitioning": space.fingerprint,
            "description": space.describe(),
            "ledger": ledger,
        }
    )
