"""Scheduled runs of a PartitionedJob on the real control plane (issue 10): catch-up policies,
the catch-up window, downtime, a window closing while the operator runs, and one ledger shared
with Backfills."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from helpers import wait_for
from operator_support import OperatorProcess

from .test_operator import Api, JobRecorder, backfill, partitioned_job

INDEX = "backfill.dev/partition-index"
SCHEDULED = "backfill.dev/scheduled"


class Runs(JobRecorder):
    """A JobRecorder that records, per created Job, its run ("schedule" or the Backfill's name)
    and the most active Jobs of one partition at once."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.runs: list[tuple[str, int]] = []
        self.by_index: dict[int, set[str]] = {}
        self.max_per_index = 0

    def handle(self, event_type: str, job: Any) -> None:
        super().handle(event_type, job)
        labels = job.metadata.labels or {}
        index = int(labels.get(INDEX, "-1"))
        if event_type == "ADDED":
            run = "schedule" if labels.get(SCHEDULED) == "true" else labels["backfill.dev/backfill"]
            self.runs.append((run, index))
        holders = self.by_index.setdefault(index, set())
        if job.metadata.name in self.active:
            holders.add(job.metadata.name)
        else:
            holders.discard(job.metadata.name)
        self.max_per_index = max(self.max_per_index, len(holders))

    def indices(self, run: str = "schedule") -> list[int]:
        return sorted(i for r, i in self.runs if r == run)


@pytest.fixture
def api(kube_api: client.ApiClient, namespace: str) -> Api:
    return Api(kube_api, namespace)


@pytest.fixture
def runs(kube_api: client.ApiClient, namespace: str) -> Iterator[Runs]:
    with Runs(kube_api, namespace) as rec:
        yield rec


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def ten_closed_hours(name: str, **runs: Any) -> tuple[dict[str, Any], datetime]:
    """A PartitionedJob with exactly 10 hourly partitions, the newest ending about 30 minutes
    ago (``schedule.end`` stops it there), and ``spec.runs``; returns it and the last end."""
    end = _minute(datetime.now(UTC) - timedelta(minutes=30))
    job = partitioned_job(
        name, cron=f"{end.minute} * * * *", start=(end - timedelta(hours=10)).isoformat()
    )
    job["spec"]["partitions"]["schedule"]["end"] = end.isoformat()
    job["spec"]["runs"] = runs
    return job, end


def job_status(api: Api, name: str) -> dict[str, Any]:
    return api.get("partitionedjobs", name).get("status") or {}


def schedule(api: Api, name: str) -> dict[str, Any]:
    return job_status(api, name).get("runs") or {}


def settled(api: Api, name: str, considered: int, succeeded: str) -> dict[str, Any]:
    """Wait until the schedule decided up to ``considered`` and the ledger shows ``succeeded``
    with nothing of the schedule running, pending or waiting to retry."""

    def check() -> dict[str, Any] | None:
        status = job_status(api, name)
        runs = status.get("runs") or {}
        counts = runs.get("counts") or {}
        # The pass first writes what it takes on (considered, scheduled, missedSet) and only
        # then the whole status.runs (missed, message, counts): wait for the whole one.
        done = (
            bool(runs.get("message"))
            and runs.get("considered") == considered
            and status.get("ledger", {}).get("succeeded", "") == succeeded
            and not counts.get("running")
            and not counts.get("pending")
            and not counts.get("queued")
        )
        return runs if done else None

    return wait_for(check, 90, 0.3, message=lambda: f"settled: {job_status(api, name)}")


def events(api: Api, name: str, reason: str) -> list[Any]:
    return [
        e
        for e in api.core.list_namespaced_event(api.ns).items
        if e.involved_object.kind == "PartitionedJob"
        and e.involved_object.name == name
        and e.reason == reason
    ]


@pytest.mark.parametrize(
    ("policy", "window", "run", "missed"),
    [
        ("All", None, list(range(10)), 0),
        ("Latest", None, [9], 9),
        ("None", None, [], 10),
        ("All", 3 * 3600, [7, 8, 9], 7),
    ],
)
def test_catch_up_policy_and_window(
    operator: OperatorProcess,
    api: Api,
    runs: Runs,
    policy: str,
    window: int | None,
    run: list[int],
    missed: int,
) -> None:
    spec: dict[str, Any] = {"catchUp": policy, "concurrency": 10}
    if window is not None:
        spec["catchUpWindowSeconds"] = window
    job, end = ten_closed_hours("hourly", **spec)
    api.create(job)
    expected = ",".join(str(i) for i in run) if len(run) < 3 else f"{run[0]}-{run[-1]}"
    status = settled(api, "hourly", 9, expected)
    assert runs.indices() == run  # each scheduled partition once, nothing else
    assert status["scheduled"] == expected
    assert status["missed"]["count"] == missed
    first = (end - timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M")  # keys: window starts
    if missed:
        assert status["missed"]["oldest"] == first
        warning = wait_for(lambda: events(api, "hourly", "MissedPartitions"), 30, 0.3)
        assert f"{missed} missed partitions" in warning[0].message
    if policy == "All" and window is None:
        assert status["lastScheduled"] == (end - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        assert status["lagSeconds"] == 0 and "lagSince" not in status
        assert "nextPartition" not in status  # schedule.end: no window comes due any more
        assert wait_for(lambda: events(api, "hourly", "CatchUp"), 30, 0.3)
    metrics = operator.metrics()
    assert (
        f'backfill_schedule_missed_partitions{{namespace="{api.ns}",partitioned_job="hourly"}} '
        f"{float(missed)}" in metrics
    )
    assert f'backfill_schedule_lag_seconds{{namespace="{api.ns}",partitioned_job="hourly"}}' in (
        metrics
    )


def test_windows_closed_while_the_operator_was_down_are_decided_once(
    operator: OperatorProcess, api: Api, runs: Runs
) -> None:
    operator.stop()
    job, _ = ten_closed_hours("outage", catchUp="Latest")
    api.create(job)
    operator.restart()
    settled(api, "outage", 9, "9")
    assert runs.indices() == [9]
    before = schedule(api, "outage")
    operator.kill()
    operator.restart()
    # A pass after the restart sees the same decision and starts nothing.
    wait_for(lambda: "backfill_schedule_missed_partitions" in operator.metrics(), 30, 0.3)
    after = settled(api, "outage", 9, "9")
    assert runs.indices() == [9]
    assert (after["scheduled"], after["missedSet"]) == (before["scheduled"], before["missedSet"])
    assert after["missed"]["count"] == 9


def test_a_window_closing_while_running_starts_exactly_one_job(
    operator: OperatorProcess, api: Api, runs: Runs
) -> None:
    start = _minute(datetime.now(UTC)) - timedelta(minutes=3)
    job = partitioned_job("minutely", cron="* * * * *", start=start.isoformat())
    job["spec"]["runs"] = {"catchUp": "None"}
    api.create(job)
    decided = wait_for(lambda: schedule(api, "minutely").get("considered"), 30, 0.3)
    # The windows closed before the job existed are missed (None); the next one runs on time.
    first_new = decided + 1
    wait_for(lambda: first_new in runs.indices(), 90, 0.3, message="the next window runs")
    status = settled(api, "minutely", schedule(api, "minutely")["considered"], str(first_new))
    assert runs.indices()[0] == first_new
    assert runs.indices().count(first_new) == 1
    assert status["missed"]["count"] == decided + 1
    assert status["nextRunTime"] > status["lastScheduleTime"]


def test_a_backfill_and_the_schedule_run_each_partition_once(
    operator: OperatorProcess, api: Api, runs: Runs
) -> None:
    job, _ = ten_closed_hours("shared", suspend=True, concurrency=3)
    job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"][
        "kwok.backfill.dev/duration"
    ] = "2s"
    api.create(job)
    api.create(backfill("manual", "shared", concurrency=3, range={"from": "2000-01-01"}))
    wait_for(lambda: runs.indices("manual"), 30, 0.3, message="the Backfill runs")
    assert schedule(api, "shared").get("considered") is None  # suspended: nothing decided
    api.patch_spec("partitionedjobs", "shared", {"runs": {"suspend": False}})
    settled(api, "shared", 9, "0-9")
    api.wait_phase("manual", {"Succeeded"})
    assert sorted(runs.indices() + runs.indices("manual")) == list(range(10))
    assert runs.max_per_index == 1
    assert runs.indices()  # the schedule took some of them


def test_invalid_runs_are_refused_at_apply(api: Api) -> None:
    static = partitioned_job("static", values=["a", "b"])
    static["spec"]["runs"] = {}
    with pytest.raises(client.ApiException) as refused:
        api.create(static)
    assert "runs (scheduled runs) needs time partitions" in refused.value.body
    for bad, message in (
        ({"delaySeconds": -1}, "delaySeconds"),
        ({"catchUpWindowSeconds": 0}, "catchUpWindowSeconds"),
        ({"catchUp": "Sometimes"}, "catchUp"),
        ({"concurrencyPolicy": "Forbid", "concurrency": 2}, "one partition at a time"),
    ):
        job = partitioned_job("bad", cron="0 * * * *")
        job["spec"]["runs"] = bad
        with pytest.raises(client.ApiException) as refused:
            api.create(job)
        assert message in refused.value.body, (bad, refused.value.body)


def test_operator_kills_during_a_catch_up_start_each_partition_once(
    operator: OperatorProcess, api: Api, runs: Runs
) -> None:
    end = _minute(datetime.now(UTC)) - timedelta(minutes=1)
    job = partitioned_job(
        "crashy", cron="* * * * *", start=(end - timedelta(minutes=200)).isoformat()
    )
    job["spec"]["partitions"]["schedule"]["end"] = end.isoformat()
    job["spec"]["runs"] = {"catchUp": "All", "concurrency": 20}
    api.create(job)
    for started in (40, 90, 140):
        wait_for(lambda n=started: len(runs.runs) >= n, 120, 0.1, message=f"{started} started")
        operator.kill()  # SIGKILL: no graceful shutdown, mid-pass
        operator.restart()
    settled(api, "crashy", 199, "0-199")
    assert runs.indices() == list(range(200))  # each partition's Job created once
    assert runs.max_active <= 20


def test_scheduled_jobs_go_through_kueue(
    operator: OperatorProcess, api: Api, runs: Runs, kueue_queue: str
) -> None:
    job, _ = ten_closed_hours(
        "queued", catchUp="All", concurrency=4, kueue={"queueName": kueue_queue}
    )
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": "1"}}
    api.create(job)
    queued = wait_for(
        lambda: (schedule(api, "queued").get("counts") or {}).get("queued"),
        60,
        0.2,
        message=lambda: f"some Jobs queued: {schedule(api, 'queued')}",
    )
    assert queued >= 1  # created suspended, Kueue holds them (quota: two cpu-1 Jobs)
    settled(api, "queued", 9, "0-9")
    assert runs.indices() == list(range(10))
    for item in api.batch.list_namespaced_job(api.ns).items:
        assert item.metadata.labels["kueue.x-k8s.io/queue-name"] == kueue_queue


@pytest.mark.long
@pytest.mark.timeout(2400)
def test_ten_thousand_missed_partitions(operator: OperatorProcess, api: Api, runs: Runs) -> None:
    _many(operator, api, runs, 10_000, timeout=1800)


def test_a_thousand_missed_partitions(operator: OperatorProcess, api: Api, runs: Runs) -> None:
    _many(operator, api, runs, 1_000, timeout=300)


def _many(operator: OperatorProcess, api: Api, runs: Runs, count: int, timeout: float) -> None:
    """``count`` missed minutely partitions, policy All, concurrency 20: every one runs once,
    never more than 20 at once, and the PartitionedJob stays under 256 KiB."""
    end = _minute(datetime.now(UTC)) - timedelta(minutes=1)
    job = partitioned_job(
        "many", cron="* * * * *", start=(end - timedelta(minutes=count)).isoformat()
    )
    job["spec"]["partitions"]["schedule"]["end"] = end.isoformat()
    job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"][
        "kwok.backfill.dev/duration"
    ] = "100ms"
    job["spec"]["runs"] = {"catchUp": "All", "concurrency": 20}
    api.create(job)
    largest = 0

    def done() -> bool:
        nonlocal largest
        obj = api.get("partitionedjobs", "many")
        largest = max(largest, len(json.dumps(obj)))
        return (obj.get("status") or {}).get("ledger", {}).get("succeeded") == f"0-{count - 1}"

    wait_for(done, timeout, 1.0, message=lambda: f"all ran: {schedule(api, 'many')}")
    assert runs.indices() == list(range(count))  # each exactly once
    print(f"{count} missed partitions: largest PartitionedJob object {largest} bytes")
    assert largest < 256 * 1024, largest
    created = [
        sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
        if sample.name == "backfill_jobs_created_total"
        and sample.labels == {"namespace": api.ns, "backfill": "schedule:many"}
    ]
    assert created == [count]  # the operator created one Job per partition, no more
    assert runs.max_active <= 20


def test_an_invalid_schedule_is_stalled_with_an_event_and_no_job(
    operator: OperatorProcess, api: Api, runs: Runs
) -> None:
    job = partitioned_job("broken", cron="0 25 * * *", start="2024-01-01")
    job["spec"]["runs"] = {"catchUp": "All"}
    api.create(job)

    def stalled() -> dict[str, Any] | None:
        conditions = job_status(api, "broken").get("conditions") or []
        found = [c for c in conditions if c["type"] == "Stalled" and c["status"] == "True"]
        return found[0] if found else None

    condition = wait_for(stalled, 30, 0.3, message="Stalled")
    assert condition["reason"] == "InvalidPartitions"
    (event,) = wait_for(lambda: events(api, "broken", "InvalidPartitions"), 30, 0.3)
    assert event.type == "Warning" and "0 25 * * *" in event.message
    assert "runs" not in job_status(api, "broken")
    assert runs.created == []
