"""Scenario (e): many Backfills at once on a few PartitionedJobs (no starvation).

Every Backfill runs its own disjoint range of partitions (so each partition runs once) at its
own concurrency, under a job-wide limit on each PartitionedJob that is far below what the
Backfills ask for together: free slots go in even shares (docs/usage.md), so every Backfill
must get some and finish. Figures: wall time from the first create to the last Backfill
Succeeded, the longest wait of a Backfill for its first Job, the operator's CPU seconds over
the run (utime + stime from /proc/<pid>/stat) and its peak RSS (VmHWM).
"""

from __future__ import annotations

import time

import pytest

from .conftest import ChaosEnv
from .support import (
    LABEL_BACKFILL,
    ChaosRecorder,
    Expected,
    backfill,
    check_run,
    keys,
    values_job,
    wait_phase_all,
)


def run_many_backfills(
    chaos: ChaosEnv,
    *,
    jobs: int,
    backfills_per_job: int,
    partitions_each: int,
    concurrency: int,
    job_concurrency: int,
) -> None:
    operator = chaos.operator()
    size = backfills_per_job * partitions_each
    names = keys(size)
    expected: dict[str, list[Expected]] = {}
    with ChaosRecorder(chaos.client, chaos.namespace) as recorder:
        for j in range(jobs):
            chaos.api.create(
                values_job(f"job-{j}", names, duration="1s", concurrency=job_concurrency)
            )
        cpu_before = operator.cpu_seconds()
        started = time.monotonic()
        created_at: dict[str, float] = {}
        for i in range(backfills_per_job):  # interleave the jobs, as teams would
            lo = i * partitions_each
            hi = lo + partitions_each - 1
            for j in range(jobs):
                name = f"bf-{j}-{i}"
                chaos.api.create(
                    backfill(
                        name,
                        f"job-{j}",
                        range={"from": names[lo], "to": names[hi]},
                        concurrency=concurrency,
                    )
                )
                created_at[name] = time.time()
                expected.setdefault(f"job-{j}", []).append(
                    Expected(name, frozenset(range(lo, hi + 1)), concurrency)
                )
        created_seconds = time.monotonic() - started
        wait_phase_all(chaos.api, created_at, timeout=600 + 2 * jobs * size)
        wall = time.monotonic() - started
        cpu = operator.cpu_seconds() - cpu_before
        _, peak_kib = operator.memory_kib()
        for job, runs in expected.items():
            check_run(chaos.api, recorder, job, runs, job_concurrency=job_concurrency)
        first_job: dict[str, float] = {}
        for facts in recorder.jobs.values():
            owner = facts.labels.get(LABEL_BACKFILL, "")
            first_job[owner] = min(first_job.get(owner, facts.seen_at), facts.seen_at)
        waits = sorted(first_job[name] - at for name, at in created_at.items())
    total = jobs * size
    chaos.report(
        f"many Backfills ({jobs * backfills_per_job} x {partitions_each} partitions)",
        jobs=jobs,
        job_concurrency=job_concurrency,
        backfill_concurrency=concurrency,
        created_seconds=round(created_seconds, 1),
        wall_seconds=round(wall, 1),
        partitions_per_second=round(total / wall, 1),
        first_job_wait_p50_max_seconds=(round(waits[len(waits) // 2], 1), round(waits[-1], 1)),
        operator_cpu_seconds=round(cpu, 1),
        operator_peak_rss_mib=round(peak_kib / 1024, 1),
        max_active_per_job=dict(recorder.max_active_by("backfill.dev/partitioned-job")),
    )


def test_20_backfills_of_10_partitions_at_once(chaos: ChaosEnv) -> None:
    run_many_backfills(
        chaos, jobs=2, backfills_per_job=10, partitions_each=10, concurrency=3, job_concurrency=10
    )


@pytest.mark.chaos
@pytest.mark.timeout(7200)
def test_200_backfills_of_50_partitions_at_once(chaos: ChaosEnv) -> None:
    run_many_backfills(
        chaos,
        jobs=8,
        backfills_per_job=25,
        partitions_each=50,
        concurrency=5,
        job_concurrency=20,
    )
