"""Scheduled runs of a PartitionedJob: the schedule as one more run of the job.

A PartitionedJob with ``spec.runs`` runs each of its time partitions once the window has
closed: partition ``i`` is *due* at ``end_i + delaySeconds``. Which due partitions the
schedule takes on (on time, missed, caught up) is :func:`~.catchup.take_on`'s decision.

The schedule is then one more *run* of the job, beside its Backfills: :func:`judge_runs` builds
a :class:`~.verdict.Verdict` whose selection is the set of partitions the schedule took on,
and :func:`plan_runs` decides it with the Backfill planner (:func:`~.decide.plan`): the same
retries, partition lock, job-wide limit with ``runs.priority``, Kueue, history limits and the
shared ledger (``reprocess: Missing``: a partition some run already recorded an outcome for is
skipped, so a Backfill and the schedule never run a partition twice). ``concurrencyPolicy:
Forbid`` adds: no new partition starts while one of the schedule's partitions waits for a retry.

Pure: the clock is the ``now`` argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ..api.model import (
    SCHEDULE_RUN,
    BackfillSpec,
    BackfillStatus,
    ConcurrencyPolicy,
    JobRef,
    MissedPartitions,
    PartitionedJobStatus,
    Reprocess,
    ScheduledRuns,
    ScheduleStatus,
)
from ..api.reasons import ConditionType, EventReason, Reason
from . import conditions as cond
from .admission import Claim
from .catchup import TakeOn, take_on
from .decide import Decision, plan
from .observed import ObservedJob
from .ranges import IndexSet
from .schedule import TimePartitions
from .space import utc_from_epoch
from .state import LaunchRequest, Unit
from .status import EventIntent, compose_status, status_events
from .steps import step_graph
from .times import rfc3339
from .verdict import (
    MAIN_GRAPH,
    BackfillView,
    InvalidSpec,
    PartitionedJobView,
    TemplateCheck,
    Verdict,
    build_space,
)

__all__ = [
    "RunsVerdict",
    "as_backfill_status",
    "compose_runs_status",
    "judge_runs",
    "next_requeue",
    "plan_runs",
    "runs_events",
    "series_name",
]


# ---------------------------------------------------------------------------- the run


def run_spec(runs: ScheduledRuns, job: str) -> BackfillSpec:
    """The Backfill spec the schedule's pass is planned with (``reprocess: Missing``)."""
    forbid = runs.concurrency_policy is ConcurrencyPolicy.FORBID
    return BackfillSpec(
        job_ref=JobRef(name=job),
        concurrency=1 if forbid else runs.concurrency,
        order=runs.order,
        reprocess=Reprocess.MISSING,
        retries=runs.retries,
        priority=runs.priority,
        kueue=runs.kueue,
        suspend=runs.suspend,
        successful_jobs_history_limit=runs.successful_jobs_history_limit,
        failed_jobs_history_limit=runs.failed_jobs_history_limit,
        ignore_first_depends_on_past=True,
    )


def as_backfill_status(runs: ScheduleStatus) -> BackfillStatus:
    """``status.runs`` in the shape of a Backfill's status (what the planner reads back)."""
    return BackfillStatus(
        partitioning=runs.partitioning,
        counts=runs.counts,
        partitions=runs.partitions,
        steps=runs.steps,
        running=runs.running,
        failures=runs.failures,
        failures_omitted=runs.failures_omitted,
        retries=runs.retries,
        start_time=runs.start_time,
        last_failure_event_time=runs.last_failure_event_time,
    )


@dataclass(frozen=True)
class RunsVerdict:
    """The schedule's pass before any Job is looked at.

    ``verdict`` is the schedule as a run (its selection is ``take.scheduled``; None when
    that is empty); ``previous`` the recorded ``status.runs`` (empty after a numbering
    change); ``space`` the job's partitions; ``next_window`` the next partition to come due
    (index, window start, window end; epoch seconds) or None.
    """

    runs: ScheduledRuns
    verdict: Verdict
    take: TakeOn
    previous: ScheduleStatus
    space: TimePartitions
    now: datetime
    next_window: tuple[int, int, int] | None

    @property
    def next_due(self) -> datetime | None:
        """When the next partition comes due (window end plus delay), or None."""
        if self.next_window is None:
            return None
        return utc_from_epoch(self.next_window[2] + self.runs.delay_seconds)


def judge_runs(
    job: PartitionedJobView,
    *,
    namespace: str,
    uid: str,
    generation: int,
    created: datetime,
    now: datetime,
    template_hash: str,
    check_template: TemplateCheck | None = None,
) -> RunsVerdict | None:
    """Return the schedule's verdict, or None when it has nothing to do.

    None when ``spec.runs`` is unset (and none of the schedule's Jobs is left running) or the
    job's partitions are not a valid schedule (the PartitionedJob's own conditions say why).
    ``job.status`` must be the status the pass is about to write (its ``partitioning``
    current): ``status.runs`` recorded for another numbering is started afresh.
    ``check_template`` is called with the first partition the schedule takes on; a refusal
    makes the verdict invalid (nothing is launched).
    """
    spec = job.spec
    previous = job.status.runs
    if spec is None or (spec.runs is None and (previous is None or not previous.running)):
        return None
    # spec.runs removed while scheduled Jobs run: suspended until they end (their outcomes
    # still reach the ledger), then status.runs goes.
    runs = spec.runs or ScheduledRuns(suspend=True)
    try:
        space = build_space(spec, now)
    except InvalidSpec:
        return None
    if not isinstance(space, TimePartitions) or space.fingerprint != job.status.partitioning:
        return None
    if previous is None or previous.partitioning != space.fingerprint:
        previous = ScheduleStatus()  # first pass, or recorded for another numbering
    epoch = int(now.timestamp())
    take = take_on(runs, previous, space, epoch, int(created.timestamp()))
    selection = space.select_indices(take.scheduled) if take.scheduled else None
    bf_status = as_backfill_status(previous.model_copy(update={"partitioning": space.fingerprint}))
    view = BackfillView(
        name=job.name,
        namespace=namespace,
        uid=uid,
        generation=generation,
        spec=run_spec(runs, job.name),
        status=bf_status,
        run=SCHEDULE_RUN,
    )
    invalid = None
    graph = MAIN_GRAPH
    try:
        graph = step_graph(spec)
    except InvalidSpec as exc:
        invalid = InvalidSpec(exc.reason, f"invalid steps: {exc.message}", exc.message)
        selection = None
    if invalid is None and check_template is not None and selection is not None:
        refusal = check_template(job, template_hash, selection.partition(take.scheduled.first()))
        if refusal:
            invalid = InvalidSpec(
                Reason.INVALID_JOB_TEMPLATE,
                f"the apiserver rejects a Job built from the jobTemplate: {refusal}",
                refusal,
            )
    verdict = Verdict(view, job, space, selection, template_hash, invalid, graph, graph.order)
    following = (take.considered if take.considered is not None else -1) + 1
    window = space.window_of(following)
    return RunsVerdict(
        runs=runs,
        verdict=verdict,
        take=take,
        previous=previous,
        space=space,
        now=now,
        next_window=None if window is None else (following, *window),
    )


def plan_runs(
    rv: RunsVerdict, jobs: Sequence[ObservedJob], claims: Sequence[Claim] = ()
) -> Decision:
    """Decide the schedule's pass with the Backfill planner, plus ``concurrencyPolicy``.

    ``jobs`` are every Job of the PartitionedJob (the schedule's are those it owns);
    ``claims`` the other runs' latest claims on the job-wide limit. With Forbid, nothing new
    starts while one of its partitions waits for a retry (the retry itself may start).
    """
    decision = plan(rv.verdict, jobs, rv.now, claims)
    if rv.runs.concurrency_policy is not ConcurrencyPolicy.FORBID or decision.state is None:
        return decision
    retrying = decision.state.retrying
    if not retrying:
        return decision
    state = decision.state
    kept = [
        r for r in decision.launches if (lane := state.lane(r.step)) and r.index in lane.retrying
    ]
    claim = decision.claim
    if claim is not None:
        claim = replace(claim, desired=claim.active + len(kept))
    return replace(decision, launches=kept, claim=claim)


def series_name(job: str) -> str:
    """The ``backfill`` label value of a schedule's per-run metrics: ``schedule:<job>``.

    (":" never appears in a Backfill's name.)
    """
    return f"schedule:{job}"


def _key(rv: RunsVerdict, index: int) -> str:
    return rv.space.format_key(rv.space.occurrences(index, 1)[0])


def compose_runs_status(
    rv: RunsVerdict,
    decision: Decision,
    launched: Sequence[LaunchRequest],
    *,
    ledger: PartitionedJobStatus,
    created: Mapping[Unit, str] | None = None,
    launch_error: str | None = None,
    quota: str | None = None,
) -> ScheduleStatus:
    """Return the new ``status.runs``.

    ``ledger`` is the PartitionedJob status whose ledger (after this pass's merge) counts the
    missed partitions that still lack an outcome and the lag.
    """
    now = rv.now
    take = rv.take
    bf = compose_status(
        rv.verdict,
        decision.state,
        launched,
        now,
        created=created,
        launch_error=launch_error,
        blocked=decision.blocked,
        quota=quota,
    )
    ok = IndexSet.parse(ledger.ledger.succeeded)
    done = ok.union(IndexSet.parse(ledger.ledger.failed))
    still_missed = take.missed.difference(done)
    missed = MissedPartitions(
        count=len(still_missed),
        oldest=_key(rv, still_missed.first()) if still_missed else None,
        newest=_key(rv, still_missed.last()) if still_missed else None,
    )
    open_ = take.scheduled.difference(ok).difference(IndexSet.parse(bf.partitions.succeeded))
    lag = 0
    lag_since = None
    if open_:
        window = rv.space.window_of(open_.first())
        if window is not None:
            lag = max(0, int(now.timestamp()) - window[1])
            lag_since = rfc3339(utc_from_epoch(window[1]))
    last_scheduled = rv.previous.last_scheduled
    last_time = rv.previous.last_schedule_time
    newly = take.on_time.union(take.caught_up)
    if newly:
        last_scheduled = _key(rv, newly.last())
        last_time = rfc3339(now)
    next_partition = next_time = None
    if rv.next_window is not None:
        next_partition = rv.space.format_key(rv.next_window[1])
        next_time = rfc3339(rv.next_due)
    return ScheduleStatus(
        partitioning=rv.space.fingerprint,
        considered=take.considered,
        scheduled=take.scheduled.stored(),
        missed_set=take.missed.stored(),
        missed=missed,
        last_scheduled=last_scheduled,
        last_schedule_time=last_time,
        next_partition=next_partition,
        next_run_time=next_time,
        lag_seconds=lag,
        lag_since=lag_since,
        counts=bf.counts,
        partitions=bf.partitions,
        steps=bf.steps,
        running=bf.running,
        failures=bf.failures,
        failures_omitted=bf.failures_omitted,
        retries=bf.retries,
        waiting=bf.waiting,
        message=_message(rv, bf, missed, lag, next_partition, next_time),
        start_time=bf.start_time,
        last_failure_event_time=bf.last_failure_event_time,
    )


def _message(
    rv: RunsVerdict,
    bf: BackfillStatus,
    missed: MissedPartitions,
    lag: int,
    next_partition: str | None,
    next_time: str | None,
) -> str:
    if rv.verdict.invalid is not None:
        return rv.verdict.invalid.message
    parts: list[str] = []
    if rv.runs.suspend:
        parts.append("suspended")
    c = bf.counts
    busy = c.pending or c.running or c.queued or bf.retries or any(f.retry_at for f in bf.failures)
    if busy:
        reconciling = cond.find(bf.conditions, ConditionType.RECONCILING)
        parts.append(reconciling.message if reconciling else "running")
    elif not rv.runs.suspend:
        parts.append("up to date")
    if lag:
        parts.append(f"lag {lag}s")
    if missed.count:
        parts.append(f"{missed.count} missed (oldest {missed.oldest})")
    if next_partition is not None and not rv.runs.suspend:
        parts.append(f"next {next_partition} at {next_time}")
    return "; ".join(parts)


def runs_events(rv: RunsVerdict, decision: Decision, status: ScheduleStatus) -> list[EventIntent]:
    """Events about the schedule's pass: catch-up decisions and failed partitions.

    CatchUp (Normal) when missed partitions were taken on, MissedPartitions (Warning) when
    the policy or the window left some, PartitionFailed as for a Backfill, and a Warning with
    the reason when the apiserver refuses the jobTemplate (once per message).
    """
    take = rv.take
    events: list[EventIntent] = []
    invalid = rv.verdict.invalid
    if invalid is not None and rv.previous.message != status.message:
        events.append(EventIntent("Warning", invalid.reason, status.message))
    policy = rv.runs.catch_up
    if take.caught_up:
        events.append(
            EventIntent(
                "Normal",
                EventReason.CATCH_UP,
                f"catching up {len(take.caught_up)} missed partitions "
                f"({_key(rv, take.caught_up.first())} … {_key(rv, take.caught_up.last())}), "
                f"catchUp {policy}",
            )
        )
    if take.left:
        window = (
            f", {len(take.beyond_window)} beyond catchUpWindowSeconds" if take.beyond_window else ""
        )
        events.append(
            EventIntent(
                "Warning",
                EventReason.MISSED_PARTITIONS,
                f"{len(take.left)} missed partitions not run by the schedule (catchUp "
                f"{policy}{window}): {_key(rv, take.left.first())} … "
                f"{_key(rv, take.left.last())}; run them with a Backfill "
                "(kubectl backfill missing)",
            )
        )
    if decision.state is not None:
        bf = as_backfill_status(status)
        for intent in status_events(rv.verdict, decision.state, bf):
            if intent.reason is EventReason.PARTITION_FAILED:
                events.append(intent)
    return events


def next_requeue(rv: RunsVerdict, decision: Decision) -> float | None:
    """Seconds until the schedule's next pass is needed (next due window, retry), or None."""
    waits = [decision.requeue_after_seconds] if decision.requeue_after_seconds is not None else []
    due = rv.next_due
    if due is not None and not rv.runs.suspend:
        waits.append(max(0.0, (due - rv.now).total_seconds()))
    return min(waits) if waits else None
