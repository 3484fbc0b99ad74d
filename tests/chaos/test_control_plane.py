"""Scenarios (b) and (c): the kube-apiserver, then etcd, SIGKILLed mid-run and started again.

Each crash is ``Cluster.kill_component`` (SIGKILL of the process group), a pause, then
``Cluster.restart_component``: the same command line, ports, certificates and data directory,
until it answers its health check. The operator is never restarted: it must carry on by itself
(same process at the end). The controller manager, scheduler and KWOK must survive too.

The Backfills keep every Job (``successfulJobsHistoryLimit`` above their size): a restarted
apiserver answers the recorder's watch with 410 (its watch cache starts empty), and the
recorder's re-list can then only be complete if no Job was deleted meanwhile.
"""

from __future__ import annotations

import time

import pytest

from helpers import wait_for

from .conftest import ChaosEnv
from .support import ChaosRecorder, Expected, backfill, check_run, keys, values_job


def run_control_plane_crashes(
    chaos: ChaosEnv,
    *,
    partitions: int,
    concurrency: int,
    crashes: list[tuple[str, float]],
) -> None:
    """One Backfill of ``partitions``; ``crashes``: (component, seconds down), spread evenly
    through the run."""
    names = keys(partitions)
    operator = chaos.operator()
    figures: list[str] = []
    with ChaosRecorder(chaos.client, chaos.namespace) as recorder:
        chaos.api.create(values_job("work", names, duration="1s", jitter="2s"))
        started = time.monotonic()
        chaos.api.create(
            backfill(
                "all",
                "work",
                range={"from": names[0], "to": names[-1]},
                concurrency=concurrency,
                successfulJobsHistoryLimit=partitions,
            )
        )
        for number, (component, down_seconds) in enumerate(crashes, start=1):
            target = number * partitions // (len(crashes) + 1)
            wait_for(
                lambda target=target: recorder.created_count() >= target,
                300,
                message=f"{target} Jobs created before crash {number}",
            )
            chaos.cluster.kill_component(component)
            time.sleep(down_seconds)
            up_seconds = chaos.cluster.restart_component(component)
            back = time.time()
            # Progress again: a Job created after the component answered again.
            first = wait_for(
                lambda back=back: recorder.first_created_after(back),
                120,
                message=f"a Job created after {component} came back",
            )
            figures.append(
                f"{component} down {down_seconds:g} s, healthy {up_seconds:.1f} s after its "
                f"start, next Job {first - back:.1f} s later"
            )
        chaos.api.wait_phase("all", {"Succeeded"}, timeout=180 + partitions)
        wall = time.monotonic() - started
        check_run(
            chaos.api,
            recorder,
            "work",
            [Expected("all", frozenset(range(partitions)), concurrency)],
        )
    assert operator.running() and operator.starts == 1, "the operator did not carry on"
    assert not chaos.cluster.unhealthy(), f"components down: {chaos.cluster.unhealthy()}"
    chaos.report(
        f"control-plane crashes ({partitions} partitions)",
        crashes="; ".join(figures),
        wall_seconds=round(wall, 1),
        recorder_resyncs=recorder.resyncs,
        max_active=f"{recorder.max_active}/{concurrency}",
    )


def test_apiserver_killed_mid_run(chaos: ChaosEnv) -> None:
    """The short version: the apiserver only. An etcd kill can make KWOK (the pod simulator,
    not the system under test) miss a pod until it re-lists about 9 minutes later, so the
    etcd scenarios run in ``make chaos`` only (docs/reliability.md, Limits)."""
    run_control_plane_crashes(
        chaos, partitions=150, concurrency=20, crashes=[("kube-apiserver", 2.0)]
    )


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_apiserver_killed_three_times(chaos: ChaosEnv) -> None:
    run_control_plane_crashes(
        chaos,
        partitions=900,
        concurrency=50,
        crashes=[("kube-apiserver", 1.0), ("kube-apiserver", 5.0), ("kube-apiserver", 20.0)],
    )


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_etcd_killed_three_times(chaos: ChaosEnv) -> None:
    run_control_plane_crashes(
        chaos,
        partitions=900,
        concurrency=50,
        crashes=[("etcd", 1.0), ("etcd", 5.0), ("etcd", 20.0)],
    )
