"""Issue 13, part 3: statuses stay bounded whatever the pattern of outcomes and retries.

A Backfill of 1,000,000 minutely partitions with the patterns that made statuses large
(every other partition failed, outcomes at random, tens of thousands of retries waiting, a job
with steps), planned for one pass: the status and the ledger as written stay under 256 KiB,
read back they are exactly the sets planned, and counts are exact. Many retries at many
different times: grouped in a few ``status.retries`` entries, and still every retry starts at
or after its time, with the right attempt number. Sizes, not times (times are for bench/).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from stored_forms import through_api
from test_planner import World, spec, static_job

from backfill_operator.api.model import (
    MAX_FAILURE_DETAILS,
    MAX_RETRY_DETAILS,
    BackfillSpec,
    BackfillStatus,
    FailedPartition,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    PartitionSets,
    Phase,
)
from backfill_operator.planning import verdict as planner
from backfill_operator.planning.decide import plan
from backfill_operator.planning.observed import JobState
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.retries import retries_waiting
from backfill_operator.planning.status import MAX_RETRY_GROUPS, compose_status

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MILLION = 1_000_000
LIMIT = 256 * 1024
TEMPLATE: dict[str, Any] = {
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
}


def minutely(steps: tuple[str, ...] = ()) -> PartitionedJobSpec:
    body: dict[str, Any] = {
        "partitions": {"schedule": {"cron": "* * * * *", "start": "2023-01-01"}},
    }
    if steps:
        body["steps"] = [{"name": s, "jobTemplate": TEMPLATE} for s in steps]
    else:
        body["jobTemplate"] = TEMPLATE
    return PartitionedJobSpec.model_validate(body)


def million_spec(partitions: int = MILLION, **kw: Any) -> BackfillSpec:
    last = datetime(2023, 1, 1) + timedelta(minutes=partitions - 1)
    return BackfillSpec.model_validate(
        {
            "jobRef": {"name": "pj"},
            "range": {"from": "2023-01-01T00:00", "to": f"{last:%Y-%m-%dT%H:%M}"},
            **kw,
        }
    )


def one_pass(
    job: PartitionedJobSpec, bf: BackfillSpec, previous: BackfillStatus, ledger: PartitionLedger
) -> tuple[BackfillStatus, dict[str, Any], dict[str, Any]]:
    """One pass without Jobs: the new status, and status and ledger as written (JSON data)."""
    fingerprint = planner.build_space(job, NOW).fingerprint
    job_status = PartitionedJobStatus(partitioning=fingerprint, ledger=ledger)
    view = planner.BackfillView("bf", "ns", "uid", 1, bf, previous)
    verdict = planner.judge(view, planner.PartitionedJobView("pj", job, job_status), NOW)
    decision = plan(verdict, [], NOW)
    status = compose_status(verdict, decision.state, [], NOW)
    written = json.loads(json.dumps(status.compacted().to_api()))
    return status, written, json.loads(json.dumps(ledger.compacted().to_api()))


def size(data: Any) -> int:
    return len(json.dumps(data, separators=(",", ":")).encode())


def outcome_patterns() -> dict[str, IndexSet]:
    rng = random.Random(13)
    return {
        "every other": IndexSet.from_indices(range(0, MILLION, 2)),
        "random": IndexSet.from_indices(i for i in range(MILLION) if rng.random() < 0.5),
    }


def test_a_million_outcomes_in_any_pattern_stay_under_256_kib() -> None:
    job = minutely()
    everything = IndexSet.from_range(0, MILLION - 1)
    fingerprint = planner.build_space(job, NOW).fingerprint
    for name, bad in outcome_patterns().items():
        ok = everything.difference(bad)
        sets = PartitionSets(succeeded=str(ok), failed=str(bad))  # as an older operator wrote
        previous = BackfillStatus(partitioning=fingerprint, partitions=sets)
        ledger = PartitionLedger(succeeded=ok.stored(), failed=bad.stored())
        status, written, stored_ledger = one_pass(job, million_spec(), previous, ledger)
        assert size(written) < LIMIT and size(stored_ledger) < LIMIT, name
        assert status.counts.failed == len(bad) and status.counts.succeeded == len(ok), name
        assert status.phase is Phase.FAILED
        back = BackfillStatus.model_validate(written)
        assert back == status, name  # relations resolved: the very sets planned
        assert IndexSet.parse(back.partitions.failed) == bad
        assert PartitionLedger.model_validate(stored_ledger) == ledger
        again, rewritten, _ = one_pass(job, million_spec(), back, ledger)
        assert again == status and rewritten == written, name  # stable: nothing to write


def test_a_million_units_of_a_job_with_steps_stay_under_256_kib() -> None:
    """333,333 partitions x 3 independent steps, every (partition, step) at random."""
    steps = ("a", "b", "c")
    job = minutely(steps)
    n = 333_333
    everything = IndexSet.from_range(0, n - 1)
    rng = random.Random(5)
    step_sets = []
    for _ in steps:
        bad = IndexSet.from_indices(i for i in range(n) if rng.random() < 0.5)
        step_sets.append((everything.difference(bad), bad))
    fingerprint = planner.build_space(job, NOW).fingerprint
    previous = BackfillStatus.model_validate(
        {
            "partitioning": fingerprint,
            "steps": [
                {"name": s, "partitions": {"succeeded": ok.stored(), "failed": bad.stored()}}
                for s, (ok, bad) in zip(steps, step_sets, strict=True)
            ],
        }
    )
    ledger = PartitionLedger.model_validate(
        {
            "steps": [
                {"name": s, "succeeded": ok.stored(), "failed": bad.stored()}
                for s, (ok, bad) in zip(steps, step_sets, strict=True)
            ]
        }
    )
    status, written, stored_ledger = one_pass(job, million_spec(n), previous, ledger)
    assert size(written) < LIMIT and size(stored_ledger) < LIMIT
    for step, (ok, bad) in zip(status.steps, step_sets, strict=True):
        assert step.counts.succeeded == len(ok) and step.counts.failed == len(bad)
        assert IndexSet.parse(step.partitions.failed) == bad
    all_ok = step_sets[0][0].intersection(step_sets[1][0]).intersection(step_sets[2][0])
    assert status.counts.succeeded == len(all_ok) and status.counts.failed == n - len(all_ok)
    assert BackfillStatus.model_validate(written) == status


def test_tens_of_thousands_of_retries_stay_under_256_kib_and_exact() -> None:
    """50,000 partitions wait for a retry at 3,000 different seconds, attempts 1 to 3, in the
    format before issue 13 (each one a failures entry): one pass writes them as a few groups;
    read back, every partition keeps its attempt count and no retry time moved earlier."""
    job = minutely()
    fingerprint = planner.build_space(job, NOW).fingerprint
    rng = random.Random(9)
    waiting = sorted(rng.sample(range(500_000), 50_000))
    due: dict[int, tuple[int, datetime]] = {}
    failures = []
    for i in waiting:
        attempts = rng.randint(1, 3)
        at = NOW + timedelta(seconds=60 + rng.randrange(3_000))
        due[i] = (attempts, at)
        failures.append(
            FailedPartition(
                key=f"k{i}",
                index=i,
                job=f"job-{i}",
                attempts=attempts,
                message="BackoffLimitExceeded",
                retry_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )
    ok = IndexSet.from_range(0, 499_999).difference(IndexSet.from_indices(waiting))
    previous = BackfillStatus(
        partitioning=fingerprint,
        partitions=PartitionSets(succeeded=ok.stored()),
        failures=failures,
    )
    bf = million_spec(retries={"limit": 5, "backoffSeconds": 600})
    status, written, _ = one_pass(job, bf, previous, PartitionLedger(succeeded=ok.stored()))
    assert size(written) < LIMIT
    assert len(status.retries) <= MAX_RETRY_GROUPS
    assert len(status.failures) <= MAX_RETRY_DETAILS
    assert status.failures_omitted == 50_000 - len(status.failures)
    assert retries_waiting(status) == 50_000
    back = BackfillStatus.model_validate(written)
    seen: set[int] = set()
    for group in back.retries:
        members = IndexSet.parse(group.partitions)
        at = datetime.fromisoformat(group.retry_at.replace("Z", "+00:00"))
        for i in members:
            attempts, original = due[i]
            assert group.attempts == attempts and at >= original
            assert at - original < timedelta(minutes=5)  # rounded up, not much
        assert not seen & set(members)
        seen |= set(members)
    assert seen == set(waiting)
    # The next pass plans from the groups: nothing is due yet, it wakes up at the first time.
    _, rewritten, _ = one_pass(job, bf, back, PartitionLedger(succeeded=ok.stored()))
    assert rewritten == written


def test_retries_at_many_times_start_on_time_with_the_right_attempt() -> None:
    """A thousand Jobs fail at a thousand different seconds: their retries are a few groups,
    and each retry is launched at or after its own time, as attempt 2, none twice."""
    world = World(
        static_job(1_000),
        spec(concurrency=1_000, retries={"limit": 1, "backoffSeconds": 3_600}),
        encoding="api",
    )
    world.step()
    start = world.now
    due: dict[int, datetime] = {}
    for k, name in enumerate(world.active()):
        world.now = start + timedelta(seconds=k)
        due[world.jobs[name].index] = world.now + timedelta(seconds=3_600)
        world.finish(name, ok=False)
    world.step()
    assert len(world.status.retries) <= MAX_RETRY_GROUPS
    assert retries_waiting(world.status) == 1_000
    assert len(world.status.failures) == MAX_RETRY_DETAILS
    assert world.status.failures_omitted == 1_000 - MAX_RETRY_DETAILS
    launched: dict[int, datetime] = {}
    for _ in range(600):
        world.now += timedelta(seconds=10)
        decision = world.step()
        for req in decision.launches:
            assert req.attempt == 2 and req.index not in launched
            assert world.now >= due[req.index], "a retry started before its time"
            launched[req.index] = world.now
        for name in world.active():
            world.finish(name, ok=True)
        if world.status.phase is Phase.SUCCEEDED:
            break
    assert set(launched) == set(due)
    late = max(launched[i] - due[i] for i in due)
    assert late <= timedelta(minutes=5, seconds=10)  # rounded up at most to 5 minutes
    assert world.status.retries == [] and world.status.failures == []


def test_final_failures_are_capped_with_a_count() -> None:
    world = World(static_job(500), spec(concurrency=500), encoding="api")
    world.step()
    for name in world.active():
        world.finish(name, ok=False)
    world.step()
    assert world.status.phase is Phase.FAILED and world.status.counts.failed == 500
    assert len(world.status.failures) == MAX_FAILURE_DETAILS
    assert [f.index for f in world.status.failures] == list(range(400, 500))  # the last ones
    assert world.status.failures_omitted == 400
    assert world.status.retries == []


def test_a_status_written_before_retries_groups_still_retries_on_time() -> None:
    """Upgrade: a waiting retry only in ``failures`` (no ``retries``) is retried as before."""
    world = World(static_job(3), spec(retries={"limit": 2, "backoffSeconds": 60}))
    world.step()
    first = world.active()[0]
    world.finish(first, ok=False)
    world.step()
    old = world.status.model_copy(update={"retries": []})  # as an older operator wrote it
    assert old.failures[0].retry_at == "2024-11-01T12:01:00Z"
    world.status = through_api(old)
    assert world.decide().launches == [] or all(r.index != 0 for r in world.decide().launches)
    world.now += timedelta(seconds=60)
    decision = world.step()
    assert [(r.index, r.attempt) for r in decision.launches if r.index == 0] == [(0, 2)]
    assert [(g.attempts, g.partitions) for g in world.status.retries] == [(1, "0")]


def test_failed_jobs_of_waiting_retries_are_deleted_beyond_the_limit() -> None:
    """Failed Jobs of partitions waiting for a retry are deleted beyond the history limit."""
    world = World(
        static_job(5),
        spec(concurrency=5, retries={"limit": 1, "backoffSeconds": 600}, failedJobsHistoryLimit=1),
    )
    world.step()
    for name in world.active():
        world.finish(name, ok=False)
    decision = world.step()
    failed_jobs = [j for j in world.jobs.values() if j.state is JobState.FAILED]
    assert len(decision.deletions) == 5 - 1 and len(failed_jobs) == 1  # failedJobsHistoryLimit 1
