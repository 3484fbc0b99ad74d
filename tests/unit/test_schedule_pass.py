"""The PartitionedJob pass with scheduled runs, against the fake API and clock of
``test_reconciler`` (no cluster): the take-on is recorded before any Job is created, a crash
in between does not re-decide, the next window is the requeue time, and a Backfill's Job is a
lock the schedule respects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from test_reconciler import NS, START, TEMPLATE, Crash, FakeApi, FakeClock, backfill, effects

from backfill_operator.api.model import API_VERSION, BACKFILLS, PARTITIONED_JOBS
from backfill_operator.controller.metrics import Metrics
from backfill_operator.controller.reconciler import Reconciler

# Hourly partitions from 02:00; START is 12:00, so windows 0..9 (02:00-03:00 .. 11:00-12:00)
# are complete, and the newest one came due just now (on time).
CRON_START = "2024-11-01T02:00:00Z"


def scheduled_job(**runs: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PartitionedJob",
        "metadata": {
            "name": "pj",
            "namespace": NS,
            "uid": "pj-uid",
            "generation": 1,
            "creationTimestamp": "2024-11-01T00:00:00Z",
        },
        "spec": {
            "partitions": {"schedule": {"cron": "0 * * * *", "start": CRON_START}},
            "jobTemplate": TEMPLATE,
            "runs": runs,
        },
    }


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.clock = FakeClock()
    return fake


def reconciler(api: FakeApi) -> Reconciler:
    return Reconciler(api, Metrics(CollectorRegistry()), api.clock, parallelism=1)


def runs_status(api: FakeApi) -> dict[str, Any]:
    status: dict[str, Any] = api.status(PARTITIONED_JOBS, "pj").get("runs") or {}
    return status


def test_take_on_is_recorded_before_the_jobs_then_the_status(api: FakeApi) -> None:
    api.put(PARTITIONED_JOBS, scheduled_job(catchUp="Latest", concurrency=5))
    rec = reconciler(api)
    result = rec.reconcile_partitioned_job(NS, "pj")
    assert effects(api)[0] == "status partitionedjobs"  # the decision, before any Job
    assert [c for c in effects(api) if c.startswith("create job")] == [
        f"create job {next(iter(api.jobs))}"
    ]
    assert effects(api)[2:] == ["status partitionedjobs", "event MissedPartitions"]
    status = runs_status(api)
    # 0..8 came due long before the pass (missed, Latest leaves them); 9 just now (on time).
    assert (status["scheduled"], status["missedSet"], status["considered"]) == ("9", "0-8", 9)
    assert status["missed"] == {
        "count": 9,
        "oldest": "2024-11-01T02:00",
        "newest": "2024-11-01T10:00",
    }
    assert status["counts"]["running"] == 1
    assert status["nextPartition"] == "2024-11-01T12:00"
    assert status["nextRunTime"] == "2024-11-01T13:00:00Z"
    assert result.requeue_after_seconds == 3600
    taken = {
        how: rec.metrics.schedule_taken.labels(NS, "pj", how)._value.get()
        for how in ("on_time", "caught_up", "missed")
    }
    assert taken == {"on_time": 1, "caught_up": 0, "missed": 9}
    rec.reconcile_partitioned_job(NS, "pj")  # nothing new: counted once
    assert rec.metrics.schedule_taken.labels(NS, "pj", "missed")._value.get() == 9
    (job,) = api.jobs.values()
    assert job["metadata"]["labels"]["backfill.dev/scheduled"] == "true"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "PartitionedJob"
    assert "backfill.dev/backfill" not in job["metadata"]["labels"]


def test_a_crash_after_the_decision_does_not_decide_again(api: FakeApi) -> None:
    api.put(PARTITIONED_JOBS, scheduled_job(catchUp="None", startingDeadlineSeconds=60))
    api.crash_on = lambda call: call.startswith("create job")
    with pytest.raises(Crash):
        reconciler(api).reconcile_partitioned_job(NS, "pj")
    assert runs_status(api)["scheduled"] == "9"  # 9 was on time at 12:00
    # The operator comes back 10 minutes later: 9 is now late, but it was decided on time.
    api.clock.current = START + timedelta(minutes=10)
    reconciler(api).reconcile_partitioned_job(NS, "pj")
    assert len(api.creations) == 1 and runs_status(api)["scheduled"] == "9"
    assert runs_status(api)["missed"]["count"] == 9


def test_the_next_window_runs_on_time_and_the_ledger_records_it(api: FakeApi) -> None:
    api.put(PARTITIONED_JOBS, scheduled_job(catchUp="None", successfulJobsHistoryLimit=0))
    rec = reconciler(api)
    rec.reconcile_partitioned_job(NS, "pj")
    for name in api.active():
        api.finish(name, ok=True)
    api.clock.current = START + timedelta(hours=1, seconds=2)
    rec.reconcile_partitioned_job(NS, "pj")
    assert len(api.creations) == 2
    for name in api.active():
        api.finish(name, ok=True)
    rec.reconcile_partitioned_job(NS, "pj")
    status = api.status(PARTITIONED_JOBS, "pj")
    assert status["ledger"]["succeeded"] == "9-10"
    assert status["runs"]["lagSeconds"] == 0 and status["runs"]["counts"]["succeeded"] == 2
    assert api.jobs == {}  # recorded, beyond the history limit of 0


def test_the_schedule_waits_for_a_backfills_job_and_skips_what_it_recorded(
    api: FakeApi,
) -> None:
    job = scheduled_job(suspend=True)
    api.put(PARTITIONED_JOBS, job)
    rec = reconciler(api)
    rec.reconcile_partitioned_job(NS, "pj")
    bf = backfill(concurrency=10)
    bf["spec"]["range"] = {"from": "2024-11-01T02:00", "to": "2024-11-01T11:00"}
    api.put(BACKFILLS, bf)
    rec.reconcile(NS, "bf")
    assert len(api.active()) == 10
    job["spec"]["runs"] = {"suspend": False, "concurrency": 10}
    job["metadata"]["generation"] = 2
    api.objects[(PARTITIONED_JOBS, "pj")]["spec"] = job["spec"]
    rec.reconcile_partitioned_job(NS, "pj")
    assert len(api.creations) == 10  # every partition is held by the Backfill's Jobs
    assert runs_status(api)["waiting"]["holders"] == [{"backfill": "bf", "count": 10}]
    for name in api.active():
        api.finish(name, ok=True)
    rec.reconcile(NS, "bf")
    rec.reconcile_partitioned_job(NS, "pj")
    assert len(api.creations) == 10
    assert runs_status(api)["counts"]["skipped"] == 10


def test_an_invalid_schedule_sends_one_warning_and_creates_nothing(api: FakeApi) -> None:
    job = scheduled_job()
    job["spec"]["partitions"]["schedule"]["cron"] = "0 25 * * *"
    api.put(PARTITIONED_JOBS, job)
    rec = reconciler(api)
    rec.reconcile_partitioned_job(NS, "pj")
    rec.reconcile_partitioned_job(NS, "pj")
    assert [e["reason"] for e in api.events] == ["InvalidPartitions"]  # once, not per pass
    assert api.jobs == {} and "runs" not in api.status(PARTITIONED_JOBS, "pj")


def test_removing_runs_lets_running_jobs_record_their_outcome_then_drops_the_status(
    api: FakeApi,
) -> None:
    api.put(PARTITIONED_JOBS, scheduled_job(catchUp="All", concurrency=2))
    rec = reconciler(api)
    rec.reconcile_partitioned_job(NS, "pj")
    running = api.active()
    assert len(running) == 2
    stored = api.objects[(PARTITIONED_JOBS, "pj")]
    del stored["spec"]["runs"]
    stored["metadata"]["generation"] = 2
    rec.reconcile_partitioned_job(NS, "pj")
    assert api.active() == running  # suspended: nothing new starts
    assert runs_status(api)["counts"]["running"] == 2
    for name in running:
        api.finish(name, ok=True)
    rec.reconcile_partitioned_job(NS, "pj")
    assert api.status(PARTITIONED_JOBS, "pj")["ledger"]["succeeded"] == "0-1"
    rec.reconcile_partitioned_job(NS, "pj")
    assert "runs" not in api.status(PARTITIONED_JOBS, "pj")
    assert len(api.creations) == 2
