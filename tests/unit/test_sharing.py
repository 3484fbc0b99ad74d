"""Several Backfills of one PartitionedJob: the partition lock, the job-wide limit, priorities.

Pure: the planning functions the operator calls, driven by a simulated cluster in which the
Backfills take turns (as the operator serializes the passes of one PartitionedJob).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backfill_operator.api.model import (
    BackfillSpec,
    BackfillStatus,
    PartitionedJobSpec,
    PartitionedJobStatus,
    Phase,
)
from backfill_operator.planning.admission import Claim, grant
from backfill_operator.planning.decide import Decision, plan
from backfill_operator.planning.observed import JobState, ObservedJob
from backfill_operator.planning.partitioned_job import partitioned_job_status
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.status import compose_status
from backfill_operator.planning.verdict import BackfillView, PartitionedJobView, judge

NOW = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
TEMPLATE: dict[str, Any] = {
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
}


def job_spec(n: int, limit: int | None = None) -> PartitionedJobSpec:
    body: dict[str, Any] = {
        "partitions": {"values": [f"k{i:03d}" for i in range(n)]},
        "jobTemplate": TEMPLATE,
    }
    if limit is not None:
        body["concurrency"] = limit
    return PartitionedJobSpec.model_validate(body)


@dataclass
class Run:
    """One Backfill in the simulation."""

    name: str
    spec: BackfillSpec
    status: BackfillStatus = field(default_factory=BackfillStatus)
    claim: Claim | None = None

    @property
    def uid(self) -> str:
        return f"uid-{self.name}"


@dataclass
class SimJob:
    job: ObservedJob  # as its own Backfill sees it (owned=True)
    owner_uid: str


class Cluster:
    """Backfills, their Jobs and the PartitionedJob's ledger, as plain values."""

    def __init__(self, job: PartitionedJobSpec, runs: list[Run]) -> None:
        self.job = job
        self.runs = runs
        self.job_status = partitioned_job_status(job, PartitionedJobStatus(), 1, NOW)
        self.jobs: dict[str, SimJob] = {}
        self.created: list[tuple[str, int, int]] = []
        self.finished: list[tuple[str, int, bool]] = []
        self.now = NOW
        self.max_active = 0

    def seen_by(self, run: Run) -> list[ObservedJob]:
        return [replace(j.job, owned=j.owner_uid == run.uid) for j in self.jobs.values()]

    def active(self, run: Run | None = None) -> list[str]:
        return [
            n
            for n, j in self.jobs.items()
            if j.job.state is JobState.ACTIVE and (run is None or j.owner_uid == run.uid)
        ]

    def step(self, run: Run) -> Decision:
        view = BackfillView(run.name, "ns", run.uid, 1, run.spec, run.status)
        verdict = judge(view, PartitionedJobView("pj", self.job, self.job_status), self.now)
        claims = [r.claim for r in self.runs if r is not run and r.claim is not None]
        decision = plan(verdict, self.seen_by(run), self.now, claims)
        run.claim = decision.claim
        for req in decision.launches:
            assert req.job_name not in self.jobs, "a Job was created twice"
            self.created.extend((run.name, i, req.attempt) for i in req.indices)
            self.jobs[req.job_name] = SimJob(
                ObservedJob(
                    name=req.job_name,
                    index=req.index,
                    attempt=req.attempt,
                    key=req.key,
                    state=JobState.ACTIVE,
                    owned=True,
                    start_time=self.now,
                    run=run.name,
                    run_uid=run.uid,
                    partitioning=verdict.fingerprint or "",
                    count=req.count,
                    last_key=req.last_key,
                ),
                run.uid,
            )
        self.check_lock_and_limits()
        if decision.ledger is not None and decision.ledger.applies_to(self.job_status):
            ledger = decision.ledger.apply(self.job_status)
            self.job_status = self.job_status.model_copy(update={"ledger": ledger})
        run.status = compose_status(
            verdict, decision.state, decision.launches, self.now, blocked=decision.blocked
        )
        for name in decision.deletions:
            del self.jobs[name]
        return decision

    def holding(self, run: Run | None = None) -> list[SimJob]:
        """Jobs that count against limits: active, pod not succeeded yet (not finishing)."""
        return [
            j
            for j in self.jobs.values()
            if j.job.holds_slot and (run is None or j.owner_uid == run.uid)
        ]

    def check_lock_and_limits(self) -> None:
        active = [self.jobs[n] for n in self.active()]
        # finishing Jobs still hold their partitions (every partition of a batch)
        indices = [i for j in active for i in j.job.indices]
        assert len(indices) == len(set(indices)), "two active Jobs of one partition"
        holding = self.holding()
        if self.job.concurrency is not None:
            assert len(holding) <= self.job.concurrency, "above the job-wide limit"
        for run in self.runs:
            assert len(self.holding(run)) <= run.spec.concurrency, "above a Backfill's limit"
        self.max_active = max(self.max_active, len(holding))

    def pod_succeeded(self, name: str) -> None:
        sim = self.jobs[name]
        self.jobs[name] = SimJob(replace(sim.job, finishing=True), sim.owner_uid)

    def finish(self, name: str, ok: bool) -> None:
        sim = self.jobs[name]
        self.finished.extend((sim.job.run, i, ok) for i in sim.job.indices)
        self.jobs[name] = SimJob(
            replace(
                sim.job,
                state=JobState.SUCCEEDED if ok else JobState.FAILED,
                finish_time=self.now,
                message="" if ok else "BackoffLimitExceeded",
            ),
            sim.owner_uid,
        )


def backfill(partitions: tuple[int, int], **kw: Any) -> BackfillSpec:
    lo, hi = partitions
    body = {"jobRef": {"name": "pj"}, "range": {"from": f"k{lo:03d}", "to": f"k{hi:03d}"}}
    return BackfillSpec.model_validate({**body, **kw})


def done(run: Run) -> bool:
    return run.status.phase in (Phase.SUCCEEDED, Phase.FAILED)


def drive(
    cluster: Cluster,
    rng: random.Random,
    steps: int,
    fails: dict[int, int] | None = None,
    finish_rate: float = 0.5,
) -> None:
    """Passes in random order and random completions until every Backfill ended.

    ``fails[index]`` attempts of a partition fail (per Backfill), the next ones succeed.
    """
    fails = fails or {}
    for _ in range(steps):
        order = list(cluster.runs)
        rng.shuffle(order)
        for run in order:
            cluster.step(run)
        if all(done(r) for r in cluster.runs):
            return
        for name in cluster.active():
            job = cluster.jobs[name].job
            ok = job.attempt > max(fails.get(i, 0) for i in job.indices)
            draw = rng.random()
            if ok and not job.finishing and draw < finish_rate * 0.6:
                cluster.pod_succeeded(name)  # its Complete condition comes in a later pass
            elif draw < finish_rate:
                cluster.finish(name, ok=ok)
        cluster.now += timedelta(seconds=1)
    pytest.fail("the Backfills never all finished (deadlock or starvation)")


# ------------------------------------------------------------------------------ examples


def test_second_backfill_waits_on_the_lock_and_skips_what_the_first_ran() -> None:
    first = Run("first", backfill((0, 9), concurrency=10))
    second = Run("second", backfill((5, 14), concurrency=10))
    cluster = Cluster(job_spec(20), [first, second])
    cluster.step(first)
    decision = cluster.step(second)
    assert [r.index for r in decision.launches] == [10, 11, 12, 13, 14]
    waiting = second.status.waiting
    assert waiting is not None and waiting.on_lock == 5
    assert [(h.backfill, h.count) for h in waiting.holders] == [("first", 5)]
    reconciling = next(c for c in second.status.conditions if c.type == "Reconciling")
    assert "5 waiting on a lock (held by first: 5)" in reconciling.message
    for name in cluster.active(first):
        cluster.finish(name, ok=True)
    cluster.step(first)  # records the outcomes in the ledger
    cluster.step(second)
    assert second.status.counts.skipped == 5  # reprocess Missing: they have an outcome now
    assert second.status.waiting is None


def test_reprocess_all_runs_the_locked_partitions_afterwards() -> None:
    first = Run("first", backfill((0, 3), concurrency=4))
    second = Run("second", backfill((0, 3), concurrency=4, reprocess="All"))
    cluster = Cluster(job_spec(4), [first, second])
    cluster.step(first)
    assert cluster.step(second).launches == []
    reconciling = next(c for c in second.status.conditions if c.type == "Reconciling")
    assert reconciling.reason == "WaitingForLock"
    for name in cluster.active():
        cluster.finish(name, ok=True)
    cluster.step(first)
    assert [r.index for r in cluster.step(second).launches] == [0, 1, 2, 3]


def test_a_finished_job_holds_its_partition_until_its_outcome_is_in_the_ledger() -> None:
    first = Run("first", backfill((0, 0)))
    second = Run("second", backfill((0, 0)))
    cluster = Cluster(job_spec(1), [first, second])
    cluster.step(first)
    (name,) = cluster.active()
    cluster.finish(name, ok=True)
    assert cluster.step(second).launches == []  # first has not recorded it yet
    cluster.step(first)
    cluster.step(second)
    assert second.status.phase is Phase.SUCCEEDED and second.status.counts.skipped == 1


def test_a_failed_job_of_a_run_that_will_not_retry_holds_nothing() -> None:
    retrying = {"limit": 1, "backoffSeconds": 0}
    first = Run("first", backfill((0, 0), retries=retrying))
    second = Run("second", backfill((0, 0)))
    cluster = Cluster(job_spec(1), [first, second])
    cluster.step(first)
    (name,) = cluster.active()
    cluster.finish(name, ok=False)
    first.spec = backfill((0, 0), retries=retrying, suspend=True)  # its retry never comes
    cluster.step(first)
    assert name in cluster.jobs  # kept by failedJobsHistoryLimit
    assert [r.index for r in cluster.step(second).launches] == [0]


def test_job_wide_limit_gives_slots_by_priority() -> None:
    low = Run("low", backfill((0, 19), concurrency=10))
    high = Run("high", backfill((20, 39), concurrency=10, priority=10))
    cluster = Cluster(job_spec(40, limit=4), [low, high])
    assert len(cluster.step(low).launches) == 4  # alone so far: takes the free slots
    cluster.step(high)  # the limit is taken: high waits, its claim is now known
    assert high.status.waiting is not None and high.status.waiting.for_job_slot == 10
    reconciling = next(c for c in high.status.conditions if c.type == "Reconciling")
    assert reconciling.reason == "WaitingForJobSlot"
    for name in cluster.active(low)[:2]:
        cluster.finish(name, ok=True)
    assert cluster.step(low).launches == []  # the freed slots are high's
    assert len(cluster.step(high).launches) == 2


def test_equal_priorities_share_the_limit_evenly() -> None:
    runs = [Run(n, backfill((i * 20, i * 20 + 19), concurrency=10)) for i, n in enumerate("abc")]
    cluster = Cluster(job_spec(60, limit=6), runs)
    for run in runs:
        cluster.step(run)
    # No preemption: the first takes the free slots; freed slots then go to even shares.
    assert [len(cluster.active(r)) for r in runs] == [6, 0, 0]
    for name in cluster.active():
        cluster.finish(name, ok=True)
    for run in runs:
        cluster.step(run)
    assert [len(cluster.active(r)) for r in runs] == [2, 2, 2]


@pytest.mark.parametrize(
    ("claims", "limit", "active", "expected"),
    [
        ([Claim("a", 0, 0, 5), Claim("b", 0, 0, 5)], 4, 0, {"a": 2, "b": 2}),
        ([Claim("a", 0, 3, 5), Claim("b", 0, 0, 5)], 5, 3, {"a": 0, "b": 2}),
        ([Claim("a", 1, 0, 5), Claim("b", 0, 0, 5)], 4, 0, {"a": 4, "b": 0}),
        ([Claim("a", 1, 0, 1), Claim("b", 0, 0, 5)], 4, 0, {"a": 1, "b": 3}),
        ([Claim("a", 0, 0, 5, started=9), Claim("b", 0, 0, 5, started=2)], 1, 0, {"b": 1}),
        ([Claim("a", 0, 0, 5)], None, 0, {"a": None}),
        ([Claim("a", 0, 0, 0)], 4, 0, {"a": 0}),
        ([Claim("a", 0, 0, 5)], 4, 9, {"a": 0}),  # Jobs of gone runs count too
    ],
)
def test_grant(
    claims: list[Claim], limit: int | None, active: int, expected: dict[str, int | None]
) -> None:
    for key, want in expected.items():
        assert grant(limit, active, claims, key) == want


# --------------------------------------------------------------------------- simulation


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(4, 24),
    runs=st.integers(2, 4),
    limit=st.one_of(st.none(), st.integers(1, 6)),
    reprocess=st.sampled_from(["Missing", "All"]),
    seed=st.integers(0, 10_000),
    per_job=st.sampled_from([1, 1, 2, 5]),
)
def test_simulated_backfills_share_a_job(
    n: int, runs: int, limit: int | None, reprocess: str, seed: int, per_job: int
) -> None:
    """Overlapping Backfills with priorities, a job-wide limit, random completions, retries.

    Never two active Jobs of one partition, never above any limit (checked at every create),
    every Backfill ends, and each partition succeeds exactly once in total (Missing) or once
    per Backfill that selects it (All); no Backfill makes more attempts than its retry limit.
    With ``partitionsPerJob`` (some Backfills) a Job holds each partition of its batch.
    """
    rng = random.Random(seed)
    backfills = []
    for i in range(runs):
        lo = rng.randrange(n)
        hi = rng.randrange(lo, n)
        spec = backfill(
            (lo, hi),
            concurrency=rng.randint(1, 5),
            priority=rng.choice([0, 0, 5]),
            reprocess=reprocess,
            order=rng.choice(["OldestFirst", "NewestFirst"]),
            successfulJobsHistoryLimit=rng.randint(0, 2),
            failedJobsHistoryLimit=rng.randint(0, 2),
            retries={"limit": 1, "backoffSeconds": 0},
            partitionsPerJob=rng.choice([1, per_job]),
        )
        backfills.append((f"bf{i}", spec, range(lo, hi + 1)))
    cluster = Cluster(job_spec(n, limit), [Run(name, spec) for name, spec, _ in backfills])
    fails = {i: rng.choice([0, 0, 0, 1]) for i in range(n)}
    drive(cluster, rng, steps=20 * n + 50, fails=fails)
    succeeded: dict[int, int] = {}
    for _, index, ok in cluster.finished:
        succeeded[index] = succeeded.get(index, 0) + ok
    selected = [set(r) for _, _, r in backfills]
    for index in range(n):
        wanted = sum(1 for s in selected if index in s)
        if reprocess == "Missing":
            assert succeeded.get(index, 0) == (1 if wanted else 0), index
        else:
            assert succeeded.get(index, 0) == wanted, index
    attempts: dict[tuple[str, int], int] = {}
    for name, index, attempt in cluster.created:
        attempts[(name, index)] = max(attempts.get((name, index), 0), attempt)
    assert all(a <= 2 for a in attempts.values())
    for run, (_, _, sel) in zip(cluster.runs, backfills, strict=True):
        counts = run.status.counts
        assert run.status.phase is Phase.SUCCEEDED
        assert counts.total == len(sel) == counts.succeeded + counts.skipped
        assert IndexSet.parse(run.status.partitions.succeeded).union(
            IndexSet.parse(run.status.partitions.skipped)
        ) == IndexSet.from_range(sel.start, sel.stop - 1)
    if limit is not None:
        assert cluster.max_active <= limit
