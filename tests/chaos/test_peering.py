"""Scenario (d): two operator replicas with kopf peering; the active one SIGKILLed mid-run.

Both run ``backfill-operator run --peering chaos --priority N`` with the default
``--peering-lifetime`` (10 s). The higher priority is active; the other starts paused (kopf
starts every peered operator paused until it has read the peering object) and stays so, without
a log line, once it sees a live peer of higher priority. When the active one is killed, the
standby resumes ("Resuming operations ...") once the dead
replica's last keep-alive is older than its lifetime: kopf's standby sleeps until that moment
(``engines/peering.process_peering_event``), touches its own record and, seeing the peer dead,
resumes; kopf refreshes keep-alives every 1 to 5 s at a 10 s lifetime, so the standby resumes
5 to 10 s after the kill, then lists and starts the Backfill's daemon.

Takeover = from the kill to the first Job created after the standby logged "Resuming
operations" (both wall-clock times on this machine), asserted at most 15 s. Before the next
handover the killed replica comes back with a lower priority, as the new standby, and that
handover kills the other one.
"""

from __future__ import annotations

import time

import pytest

from devcluster.operator import OperatorProcess
from helpers import wait_for

from .conftest import ChaosEnv
from .support import ChaosRecorder, Expected, backfill, check_run, keys, log_time, values_job

PEERING = "chaos"
TAKEOVER_LIMIT_SECONDS = 15.0
RESUMED = "Resuming operations"


def wait_standby(chaos: ChaosEnv, replica: OperatorProcess) -> None:
    """Wait until ``replica`` keeps its record in the peering object, and check that it did not
    resume: it runs, as the standby."""

    def recorded() -> bool:
        peering = chaos.api.custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", PEERING
        )
        return replica.identity in (peering.get("status") or {})

    wait_for(recorded, 30, message=f"{replica.identity} in the peering object")
    assert log_time(replica.log_path, RESUMED) is None, f"{replica.identity} did not pause"


def run_handovers(chaos: ChaosEnv, *, partitions: int, concurrency: int, handovers: int) -> None:
    chaos.cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata: {{name: {PEERING}}}\n",
    )
    # Pod ids as in the chart (POD_ID), unique per test so stale records of another never count.
    suffix = chaos.namespace[-6:]
    active = chaos.operator(
        "replica-a", peering=PEERING, priority=1000, identity=f"replica-a-{suffix}"
    )
    standby = chaos.operator(
        "replica-b", peering=PEERING, priority=900, identity=f"replica-b-{suffix}"
    )
    wait_standby(chaos, standby)
    next_priority = 800
    takeovers: list[float] = []
    resumes: list[float] = []
    names = keys(partitions)
    with ChaosRecorder(chaos.client, chaos.namespace) as recorder:
        chaos.api.create(values_job("work", names, duration="1s", jitter="2s"))
        started = time.monotonic()
        chaos.api.create(
            backfill(
                "all", "work", range={"from": names[0], "to": names[-1]}, concurrency=concurrency
            )
        )
        for handover in range(1, handovers + 1):
            target = handover * partitions // (handovers + 1)
            wait_for(
                lambda target=target: recorder.created_count() >= target,
                300,
                message=f"{target} Jobs created before handover {handover}",
            )
            killed = time.time()
            active.kill()
            resumed = wait_for(
                lambda log=standby.log_path, killed=killed: log_time(log, RESUMED, after=killed),
                60,
                message=f"the standby resumed (handover {handover})",
            )
            first = wait_for(
                lambda resumed=resumed: recorder.first_created_after(resumed),
                60,
                message=f"a Job created by the standby (handover {handover})",
            )
            # Nothing was created between the kill and the standby's resumption (the killed
            # replica's last requests land within milliseconds).
            gap = recorder.first_created_after(killed + 1.0)
            assert gap is None or gap >= resumed, "a Job was created while no replica was active"
            takeovers.append(first - killed)
            resumes.append(resumed - killed)
            if handover == handovers:
                break
            # The killed replica comes back as the new standby.
            active.priority = next_priority
            next_priority -= 100
            active.start()
            wait_standby(chaos, active)
            active, standby = standby, active
        chaos.api.wait_phase("all", {"Succeeded"}, timeout=180 + partitions)
        wall = time.monotonic() - started
        check_run(
            chaos.api,
            recorder,
            "work",
            [Expected("all", frozenset(range(partitions)), concurrency)],
        )
    chaos.report(
        f"peering handovers ({partitions} partitions)",
        handovers=handovers,
        resumed_after_kill_seconds=[round(s, 1) for s in resumes],
        takeover_seconds=[round(s, 1) for s in takeovers],
        wall_seconds=round(wall, 1),
        max_active=f"{recorder.max_active}/{concurrency}",
    )
    for number, seconds in enumerate(takeovers, start=1):
        assert seconds <= TAKEOVER_LIMIT_SECONDS, f"handover {number} took {seconds:.1f} s"


def test_standby_takes_over_when_the_active_replica_is_killed(chaos: ChaosEnv) -> None:
    run_handovers(chaos, partitions=100, concurrency=10, handovers=1)


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_five_handovers_between_two_replicas(chaos: ChaosEnv) -> None:
    run_handovers(chaos, partitions=1000, concurrency=30, handovers=5)
