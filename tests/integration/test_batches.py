"""Several partitions per Job (``partitionsPerJob``) against the real control plane."""

from __future__ import annotations

from operator_support import OperatorProcess

from .test_operator import Api, JobRecorder, api, backfill, partitioned_job, recorder

__all__ = ["api", "recorder"]  # the fixtures of test_operator, used here

COUNT = "backfill.dev/partition-count"


def test_batches_run_each_partition_once_and_a_failed_batch_is_retried_whole(
    operator: OperatorProcess, api: Api, recorder: JobRecorder
) -> None:
    # the batch starting 2024-01-05 fails its first attempt (KWOK reads the first key)
    api.create(
        partitioned_job(
            "daily",
            cron="0 0 * * *",
            annotations={
                "kwok.backfill.dev/fail-partitions": "2024-01-05",
                "kwok.backfill.dev/fail-attempts": "1",
            },
        )
    )
    api.create(
        backfill(
            "jan",
            "daily",
            range={"from": "2024-01-01", "to": "2024-01-10"},
            concurrency=2,
            partitionsPerJob=4,
            retries={"limit": 1, "backoffSeconds": 1},
            successfulJobsHistoryLimit=10,
            failedJobsHistoryLimit=10,
        )
    )
    status = api.wait_phase("jan", {"Succeeded"})
    counts = status["counts"]
    assert (counts["total"], counts["succeeded"], counts["failed"]) == (10, 10, 0)
    assert status["partitions"]["succeeded"] == "0-9"
    assert recorder.max_active <= 2  # concurrency counts Jobs
    assert sorted((int(i), int(a)) for _, i, a in recorder.created) == [
        (0, 1),
        (4, 1),
        (4, 2),
        (8, 1),
    ]
    by_first = {
        (
            j.metadata.labels["backfill.dev/partition-index"],
            j.metadata.labels["backfill.dev/attempt"],
        ): j
        for j in api.jobs()
    }
    assert {k: j.metadata.labels.get(COUNT) for k, j in by_first.items()} == {
        ("0", "1"): "4",
        ("4", "1"): "4",
        ("4", "2"): "4",
        ("8", "1"): "2",
    }
    env = {e.name: e.value for e in by_first[("8", "1")].spec.template.spec.containers[0].env}
    assert (env["PARTITION_KEY_FIRST"], env["PARTITION_KEY_LAST"], env["PARTITION_COUNT"]) == (
        "2024-01-09",
        "2024-01-10",
        "2",
    )
    assert (env["PARTITION_START"], env["PARTITION_END"]) == (
        "2024-01-09T00:00:00Z",
        "2024-01-11T00:00:00Z",
    )
    ledger = api.get("partitionedjobs", "daily")["status"]["ledger"]
    assert ledger["succeeded"] == "0-9"
    metrics = operator.metrics()
    runs = f'backfill_partition_runs_total{{backfill="jan",namespace="{api.ns}",result='
    assert f'{runs}"succeeded"}} 10.0' in metrics
    assert f'{runs}"failed"}} 4.0' in metrics  # the failed batch: each of its partitions
