"""The planner: table-driven cases and a simulated cluster driven by hypothesis."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stored_forms import as_text, forced_encodings, summary, through_api

from backfill_operator.api.model import (
    BackfillSpec,
    BackfillStatus,
    ConditionStatus,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    Phase,
)
from backfill_operator.planning import naming
from backfill_operator.planning import verdict as planner
from backfill_operator.planning.decide import Decision, plan
from backfill_operator.planning.observed import JobState, ObservedJob
from backfill_operator.planning.partitioned_job import partitioned_job_status
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.state import LaunchRequest, Outcome
from backfill_operator.planning.status import EventIntent, compose_status, status_events

NOW = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
UID = "11111111-2222-3333-4444-555555555555"
TEMPLATE: dict[str, Any] = {
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
}


def static_job(n: int) -> PartitionedJobSpec:
    return PartitionedJobSpec.model_validate(
        {"partitions": {"values": [f"k{i:03d}" for i in range(n)]}, "jobTemplate": TEMPLATE}
    )


def daily_job() -> PartitionedJobSpec:
    return PartitionedJobSpec.model_validate(
        {
            "partitions": {"schedule": {"cron": "0 0 * * *", "start": "2024-01-01"}},
            "jobTemplate": TEMPLATE,
        }
    )


def spec(**kw: Any) -> BackfillSpec:
    base: dict[str, Any] = {"jobRef": {"name": "pj"}, "range": {"from": "k000"}}
    base.update(kw)
    return BackfillSpec.model_validate(base)


class World:
    """One Backfill, its PartitionedJob and Jobs, as plain values, for driving the planner."""

    def __init__(
        self,
        job: PartitionedJobSpec,
        bf: BackfillSpec,
        ledger: PartitionedJobStatus | None = None,
        *,
        encoding: str = "model",
    ) -> None:
        """``encoding``: "model" keeps the composed status as is; "api" and "forced" read it
        back as the apiserver holds it (``compacted()``, JSON, parsed; "forced": every set
        written as a bitmap or relative set), and each pass is checked against the same pass
        planned from the status with every set in plain text."""
        self.encoding = encoding
        self.job = job
        self.spec = bf
        self.status = BackfillStatus()
        # What the PartitionedJob pass writes before any Backfill merges outcomes.
        self.job_status = ledger or partitioned_job_status(job, PartitionedJobStatus(), 1, NOW)
        self.jobs: dict[str, ObservedJob] = {}
        self.created: list[tuple[int, int]] = []
        self.outcomes: list[Outcome] = []
        self.finished: list[tuple[int, int, bool]] = []
        self.now = NOW
        self.generation = 1

    def space(self) -> Any:
        return planner.build_space(self.job, self.now)

    def decide(
        self,
        template_error: str | None = None,
        status: BackfillStatus | None = None,
        job_status: PartitionedJobStatus | None = None,
    ) -> Decision:
        view = planner.BackfillView(
            "bf", "ns", UID, self.generation, self.spec, status or self.status
        )
        job = planner.PartitionedJobView("pj", self.job, job_status or self.job_status)
        verdict = planner.judge(view, job, self.now, check_template=lambda *_: template_error)
        return plan(verdict, list(self.jobs.values()), self.now)

    def step(self) -> Decision:
        """One pass in which every launch goes through and the status is written."""
        with forced_encodings(self.encoding == "forced"):
            return self._step()

    def _step(self) -> Decision:
        decision = self.decide()
        if self.encoding != "model":
            # The same pass planned from plain text sets decides the same.
            plain = self.decide(status=as_text(self.status), job_status=as_text(self.job_status))
            assert summary(plain) == summary(decision)
        self.outcomes.extend(decision.outcomes)
        if decision.ledger is not None and decision.ledger.applies_to(self.job_status):
            ledger = decision.ledger.apply(self.job_status)
            self.job_status = through_api(self.job_status.model_copy(update={"ledger": ledger}))
        for req in decision.launches:
            name = naming.job_name("bf", UID, req.index, req.key, req.attempt)
            assert name not in self.jobs, "a Job was created twice"
            self.created.extend((i, req.attempt) for i in req.indices)
            self.jobs[name] = ObservedJob(
                name=name,
                index=req.index,
                attempt=req.attempt,
                key=req.key,
                state=JobState.ACTIVE,
                owned=True,
                start_time=self.now,
                count=req.count,
                last_key=req.last_key,
            )
        self.status = compose_status(decision.verdict, decision.state, decision.launches, self.now)
        if self.encoding != "model":
            stored = through_api(self.status)
            assert as_text(stored) == as_text(self.status)  # written and read back: the same
            self.status = stored
        for name in decision.deletions:
            del self.jobs[name]
        return decision

    def finish(self, name: str, ok: bool) -> None:
        job = self.jobs[name]
        self.finished.extend((i, job.attempt, ok) for i in job.indices)
        self.jobs[name] = ObservedJob(
            **{
                **job.__dict__,
                "state": JobState.SUCCEEDED if ok else JobState.FAILED,
                "finish_time": self.now,
                "message": "" if ok else "BackoffLimitExceeded: Job has reached the limit",
            }
        )

    def pod_succeeded(self, name: str) -> None:
        """The Job's pod succeeded; its Complete condition comes later (finishing)."""
        self.jobs[name] = ObservedJob(**{**self.jobs[name].__dict__, "finishing": True})

    def active(self) -> list[str]:
        return [n for n, j in self.jobs.items() if j.state is JobState.ACTIVE]

    def holding_slots(self) -> list[str]:
        return [n for n, j in self.jobs.items() if j.holds_slot]


def status_of(decision: Decision) -> BackfillStatus:
    """The status of a pass in which nothing was launched."""
    return compose_status(decision.verdict, decision.state, [], NOW)


def events(decision: Decision, status: BackfillStatus) -> list[EventIntent]:
    return status_events(decision.verdict, decision.state, status)


def cond(status: BackfillStatus, ctype: str) -> tuple[ConditionStatus, str]:
    c = next(c for c in status.conditions if c.type == ctype)
    return c.status, c.reason


def test_first_pass_launches_up_to_concurrency_oldest_first() -> None:
    world = World(static_job(10), spec(concurrency=3))
    decision = world.step()
    assert [r.index for r in decision.launches] == [0, 1, 2]
    assert all(r.attempt == 1 for r in decision.launches)
    assert world.status.phase is Phase.RUNNING
    assert world.status.counts.running == 3
    assert world.status.counts.pending == 7
    assert world.status.partitions.running == "0-2"
    assert cond(world.status, "Reconciling") == (ConditionStatus.TRUE, "Launching")
    assert world.status.start_time is not None


def test_newest_first() -> None:
    world = World(static_job(10), spec(concurrency=3, order="NewestFirst"))
    assert [r.index for r in world.step().launches] == [9, 8, 7]


def test_full_slots_launch_nothing_and_a_freed_slot_is_refilled() -> None:
    world = World(static_job(10), spec(concurrency=2))
    world.step()
    assert world.decide().launches == []
    world.finish(world.active()[0], ok=True)
    decision = world.step()
    assert [r.index for r in decision.launches] == [2]
    assert world.status.counts.succeeded == 1
    assert world.status.partitions.succeeded == "0"


def test_finished_jobs_are_deleted_beyond_history_limit() -> None:
    world = World(static_job(5), spec(concurrency=5, successfulJobsHistoryLimit=1))
    world.step()
    for name in world.active()[:3]:
        world.finish(name, ok=True)
    decision = world.step()
    assert len(decision.deletions) == 2
    assert world.status.counts.succeeded == 3
    assert len([j for j in world.jobs.values() if j.state is JobState.SUCCEEDED]) == 1


def test_retry_after_backoff_then_success() -> None:
    world = World(static_job(1), spec(retries={"limit": 2, "backoffSeconds": 10}))
    world.step()
    world.finish(world.active()[0], ok=False)
    decision = world.step()
    assert decision.launches == []
    assert decision.requeue_after_seconds == pytest.approx(10.0)
    (failure,) = world.status.failures
    assert failure.attempts == 1 and failure.retry_at == "2024-11-01T12:00:10Z"
    assert world.status.phase is Phase.RUNNING
    assert cond(world.status, "Reconciling") == (ConditionStatus.TRUE, "WaitingForRetry")
    world.now += timedelta(seconds=10)
    decision = world.step()
    assert [(r.index, r.attempt) for r in decision.launches] == [(0, 2)]
    world.finish(world.active()[0], ok=False)
    world.step()
    assert world.status.failures[0].retry_at == "2024-11-01T12:00:30Z"  # 10 * 2^1 later
    world.now += timedelta(seconds=20)
    world.step()
    world.finish(world.active()[0], ok=True)
    world.step()
    assert world.status.phase is Phase.SUCCEEDED
    assert world.status.failures == []
    assert world.created == [(0, 1), (0, 2), (0, 3)]
    assert world.job_status.ledger.succeeded == "0"


def test_failure_budget_stops_launches_and_ends_failed() -> None:
    world = World(static_job(10), spec(concurrency=2, maxFailedPartitions=1))
    world.step()
    first, second = world.active()
    world.finish(first, ok=False)
    decision = world.step()
    assert decision.launches == []
    assert world.status.phase is Phase.RUNNING  # one Job still runs
    world.finish(second, ok=True)
    world.step()
    assert world.status.phase is Phase.FAILED
    assert world.status.counts.failed == 1
    assert world.status.counts.pending == 8
    assert cond(world.status, "Stalled") == (ConditionStatus.TRUE, "FailureBudgetExhausted")
    assert world.job_status.ledger.failed == "0"
    assert world.status.completion_time is not None


def test_suspend_and_resume() -> None:
    world = World(static_job(10), spec(concurrency=2))
    world.step()
    world.spec = spec(concurrency=2, suspend=True)
    for name in world.active():
        world.finish(name, ok=True)
    decision = world.step()
    assert decision.launches == []
    assert world.status.phase is Phase.SUSPENDED
    assert [e.reason for e in events(decision, world.status)] == ["Suspended"]
    world.spec = spec(concurrency=2)
    decision = world.step()
    assert [r.index for r in decision.launches] == [2, 3]
    assert "Resumed" in [e.reason for e in events(decision, world.status)]


def test_concurrency_change_applies_live() -> None:
    world = World(static_job(10), spec(concurrency=4))
    world.step()
    world.spec = spec(concurrency=2)
    for name in world.active()[:1]:
        world.finish(name, ok=True)
    assert world.decide().launches == []  # 3 still active > 2
    world.spec = spec(concurrency=6)
    assert len(world.decide().launches) == 3


def test_dry_run_plans_and_launches_nothing() -> None:
    ledger = PartitionedJobStatus()
    world = World(static_job(10), spec(dryRun=True), ledger)
    decision = world.step()
    assert decision.launches == []
    assert world.status.phase is Phase.PENDING
    assert world.status.plan is not None
    assert world.status.plan.count == 10
    assert world.status.plan.first == ["k000", "k001", "k002", "k003", "k004"]
    assert world.status.plan.last == ["k005", "k006", "k007", "k008", "k009"]
    assert cond(world.status, "Ready") == (ConditionStatus.TRUE, "DryRunPlanned")


@pytest.mark.parametrize(
    ("reprocess", "launched"),
    [("Missing", [4, 5]), ("Failed", [2, 3]), ("All", [0, 1])],
)
def test_reprocess_uses_the_ledger(reprocess: str, launched: list[int]) -> None:
    job = static_job(6)
    fingerprint = planner.build_space(job, NOW).fingerprint
    ledger = PartitionedJobStatus(
        partitioning=fingerprint, ledger=PartitionLedger(succeeded="0-1", failed="2-3")
    )
    world = World(job, spec(concurrency=2, reprocess=reprocess), ledger)
    assert [r.index for r in world.step().launches] == launched


def test_ledger_of_another_partitioning_is_ignored() -> None:
    ledger = PartitionedJobStatus(partitioning="other", ledger=PartitionLedger(succeeded="0-5"))
    world = World(static_job(6), spec(concurrency=2), ledger)
    assert [r.index for r in world.step().launches] == [0, 1]


def test_missing_partitioned_job_is_invalid() -> None:
    view = planner.BackfillView("bf", "ns", UID, 3, spec(), BackfillStatus())
    job = planner.PartitionedJobView("pj", None, PartitionedJobStatus(), found=False)
    decision = plan(planner.judge(view, job, NOW), [], NOW)
    assert decision.launches == []
    status = status_of(decision)
    assert status.phase is Phase.INVALID
    assert cond(status, "Stalled") == (ConditionStatus.TRUE, "PartitionedJobNotFound")
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert stalled.message == 'PartitionedJob "pj" not found in namespace "ns"'
    assert stalled.observed_generation == 3
    assert [e.type for e in events(decision, status)] == ["Warning"]


def test_rejected_template_is_invalid_and_launches_nothing() -> None:
    world = World(static_job(3), spec())
    decision = world.decide(template_error="spec.template.spec.containers: Required value")
    assert decision.launches == []
    status = status_of(decision)
    assert status.phase is Phase.INVALID
    assert cond(status, "Stalled") == (ConditionStatus.TRUE, "InvalidJobTemplate")


def test_bad_key_is_invalid() -> None:
    space = planner.build_space(static_job(3), NOW)
    with pytest.raises(planner.InvalidSpec) as err:
        planner.resolve_selection(space, spec(range=None, partitions=["nope"]), BackfillStatus())
    assert err.value.reason == "InvalidSelection"
    assert "nope" in err.value.message


def test_bad_cron_is_invalid() -> None:
    job = PartitionedJobSpec.model_validate(
        {
            "partitions": {"schedule": {"cron": "61 * * * *", "start": "2024-01-01"}},
            "jobTemplate": TEMPLATE,
        }
    )
    with pytest.raises(planner.InvalidSpec) as err:
        planner.build_space(job, NOW)
    assert err.value.reason == "InvalidPartitions"


def test_changed_partitioning_after_start_is_invalid() -> None:
    world = World(static_job(5), spec(concurrency=1))
    world.step()
    world.job = static_job(6)  # a new value changes the partitioning fingerprint
    decision = world.step()
    assert decision.launches == []
    assert world.status.phase is Phase.INVALID
    assert cond(world.status, "Stalled")[1] == "PartitioningChanged"


def test_succeeded_end_to_end_with_events_and_stable_transition_times() -> None:
    world = World(static_job(3), spec(concurrency=3))
    first = world.step()
    first_ready = next(c for c in world.status.conditions if c.type == "Ready")
    world.now += timedelta(seconds=5)
    world.step()
    again = next(c for c in world.status.conditions if c.type == "Ready")
    assert again.last_transition_time == first_ready.last_transition_time
    for name in world.active():
        world.finish(name, ok=True)
    world.now += timedelta(seconds=5)
    decision = world.step()
    assert world.status.phase is Phase.SUCCEEDED
    assert world.status.progress == "3/3"
    assert cond(world.status, "Ready") == (ConditionStatus.TRUE, "Succeeded")
    assert cond(world.status, "Reconciling")[0] is ConditionStatus.FALSE
    assert [e.reason for e in events(decision, world.status)] == ["Succeeded"]
    assert first is not None


def test_daily_range_selects_inclusive_ends() -> None:
    world = World(daily_job(), spec(range={"from": "2024-01-01", "to": "2024-01-31"}))
    world.spec = spec(range={"from": "2024-01-01", "to": "2024-01-31"}, concurrency=100)
    decision = world.step()
    assert len(decision.launches) == 31
    assert decision.launches[0].key == "2024-01-01"
    assert decision.launches[-1].key == "2024-01-31"
    assert decision.launches[0].end == decision.launches[1].start


def test_open_range_is_pinned_at_first_pass() -> None:
    world = World(daily_job(), spec(range={"from": "2024-10-01"}, concurrency=1))
    world.step()
    assert world.status.selection is not None
    assert world.status.selection.last == "2024-10-31"
    world.now += timedelta(days=3)
    world.step()
    assert world.status.selection.last == "2024-10-31"
    assert world.status.counts.total == 31


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    concurrency=st.integers(1, 8),
    retries=st.integers(0, 2),
    max_failed=st.one_of(st.none(), st.integers(1, 5)),
    order=st.sampled_from(["OldestFirst", "NewestFirst"]),
    seed=st.integers(0, 10_000),
    encoding=st.sampled_from(["model", "api", "forced"]),
    per_job=st.sampled_from([None, 1, 2, 3, 7]),
)
def test_simulated_backfill_invariants(
    n: int,
    concurrency: int,
    retries: int,
    max_failed: int | None,
    order: str,
    seed: int,
    encoding: str,
    per_job: int | None,
) -> None:
    """Random completions and failures: the planner's invariants hold at every pass.

    A succeeding Job's pod may succeed passes before its Complete condition (finishing): it
    frees its slot at once, never its partition. Whichever way the status is stored (as
    composed, through the API, every set a bitmap or relative), planning decides the same
    as from plain text sets. With ``partitionsPerJob`` a Job runs up to that many consecutive
    partitions and fails when one of them does: concurrency counts Jobs, each (partition,
    attempt) is created once, every partition's outcome is recorded once per attempt.
    """
    rng = random.Random(seed)
    kw: dict[str, Any] = {
        "concurrency": concurrency,
        "order": order,
        "retries": {"limit": retries, "backoffSeconds": 0},
        "successfulJobsHistoryLimit": rng.randint(0, 2),
        "failedJobsHistoryLimit": rng.randint(0, 2),
    }
    if max_failed is not None:
        kw["maxFailedPartitions"] = max_failed
    if per_job is not None:
        kw["partitionsPerJob"] = per_job
    world = World(static_job(n), spec(**kw), encoding=encoding)
    fails: dict[int, int] = {i: rng.choice([0, 0, 1, 5]) for i in range(n)}
    for _ in range(10 * n + 20):
        before = len(world.holding_slots())
        decision = world.step()
        assert len(decision.launches) <= max(0, concurrency - before)
        assert len(world.holding_slots()) <= concurrency
        for req in decision.launches:
            assert 1 <= req.count <= (per_job or 1)
        active_indices = [i for name in world.active() for i in world.jobs[name].indices]
        assert len(active_indices) == len(set(active_indices)), "a partition ran twice at once"
        counts = world.status.counts
        assert counts.total == n
        assert (
            counts.pending + counts.running + counts.succeeded + counts.failed + counts.skipped == n
        )
        if world.status.phase in (Phase.SUCCEEDED, Phase.FAILED):
            break
        for name in list(world.active()):
            job = world.jobs[name]
            ok = job.attempt > max(fails[i] for i in job.indices)
            draw = rng.random()
            if ok and not job.finishing and draw < 0.3:
                world.pod_succeeded(name)
            elif draw < 0.5:
                world.finish(name, ok=ok)
        world.now += timedelta(seconds=1)
    else:
        pytest.fail("the backfill never finished")
    assert len(set(world.created)) == len(world.created)
    # every finished attempt is recorded exactly once (metrics and events count outcomes)
    recorded = sorted(
        (i, o.attempt, o.succeeded)
        for o in world.outcomes
        for i in range(o.index, o.index + o.count)
    )
    assert recorded == sorted(world.finished)
    final_failed = IndexSet.parse(world.status.partitions.failed)
    succeeded = IndexSet.parse(world.status.partitions.succeeded)
    for index in succeeded:
        assert fails[index] <= retries
    tried: dict[int, int] = {}
    for index, attempt in world.created:
        tried[index] = max(tried.get(index, 0), attempt)
    for index in final_failed:
        # alone it failed for itself; in a batch, maybe for another partition of the batch
        assert fails[index] > retries if (per_job or 1) == 1 else tried[index] == retries + 1
    if max_failed is None:
        assert len(succeeded) + len(final_failed) == n
        assert world.status.phase is (Phase.FAILED if len(final_failed) else Phase.SUCCEEDED)
    attempts_per_index: dict[int, int] = {}
    for index, attempt in world.created:
        attempts_per_index[index] = max(attempts_per_index.get(index, 0), attempt)
    assert all(a <= retries + 1 for a in attempts_per_index.values())


def test_launch_request_env_shape() -> None:
    world = World(daily_job(), spec(range={"from": "2024-01-01", "to": "2024-01-01"}))
    (req,) = world.step().launches
    assert isinstance(req, LaunchRequest)
    assert req.start == datetime(2024, 1, 1, tzinfo=UTC)
    assert req.end == datetime(2024, 1, 2, tzinfo=UTC)
