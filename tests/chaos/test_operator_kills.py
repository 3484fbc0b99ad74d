"""Scenario (a): the operator SIGKILLed again and again during one Backfill, restarted each time.

Kills are spread through the run (after every ``partitions / (kills + 1)`` Jobs created, at a
random moment within a second, so some land in the middle of a pass), and the operator stays
down up to 1.5 s each time (plus its start-up, 2 to 5 s) while Jobs go on finishing. About 1%
of the partitions fail their first attempt and are retried once, so the retry path is crashed
into too.
"""

from __future__ import annotations

import random
import time

import pytest

from helpers import wait_for

from .conftest import ChaosEnv
from .support import ChaosRecorder, Expected, backfill, check_run, keys, values_job


def run_operator_kills(
    chaos: ChaosEnv, *, partitions: int, kills: int, concurrency: int, seed: int
) -> None:
    rng = random.Random(seed)
    names = keys(partitions)
    fail_once = names[7::97]
    operator = chaos.operator()
    with ChaosRecorder(chaos.client, chaos.namespace) as recorder:
        chaos.api.create(values_job("work", names, duration="1s", jitter="2s", fail_once=fail_once))
        started = time.monotonic()
        chaos.api.create(
            backfill(
                "all",
                "work",
                range={"from": names[0], "to": names[-1]},
                concurrency=concurrency,
                retries={"limit": 1, "backoffSeconds": 1},
            )
        )
        down = 0.0
        for kill in range(1, kills + 1):
            target = kill * partitions // (kills + 1)
            wait_for(
                lambda target=target: recorder.created_count() >= target,
                300,
                message=f"{target} Jobs created before kill {kill}",
            )
            time.sleep(rng.uniform(0.0, 1.0))  # anywhere in a pass
            operator.kill()
            killed = time.monotonic()
            time.sleep(rng.uniform(0.0, 1.5))  # down: Jobs go on finishing meanwhile
            operator.start()
            down += time.monotonic() - killed
        chaos.api.wait_phase("all", {"Succeeded"}, timeout=120 + partitions)
        wall = time.monotonic() - started
        check_run(
            chaos.api,
            recorder,
            "work",
            [
                Expected(
                    "all",
                    frozenset(range(partitions)),
                    concurrency,
                    frozenset(int(k[1:]) for k in fail_once),
                )
            ],
        )
    chaos.report(
        f"operator kills ({partitions} partitions)",
        kills=kills,
        operator_starts=operator.starts,
        wall_seconds=round(wall, 1),
        operator_down_seconds=round(down, 1),
        jobs=recorder.created_count(),
        max_active=f"{recorder.max_active}/{concurrency}",
        retried=len(fail_once),
    )


def test_operator_killed_5_times_during_300_partitions(chaos: ChaosEnv) -> None:
    run_operator_kills(chaos, partitions=300, kills=5, concurrency=20, seed=5)


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_operator_killed_20_times_during_2000_partitions(chaos: ChaosEnv) -> None:
    run_operator_kills(chaos, partitions=2000, kills=20, concurrency=50, seed=20)
