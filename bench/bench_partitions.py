"""Partition-space benchmarks: wall time and memory; numbers only, no assertions.

Run: ``python bench/bench_partitions.py`` from the repository root (adds ``operator/`` to the
path). Each scenario runs once untraced for its wall time, then once under tracemalloc for the
peak of Python allocations; ``maxrss`` is the process's resident high-water mark so far.
"""

from __future__ import annotations

import gc
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from backfill_operator.planning.schedule import TimePartitions

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def minutely(zone: str) -> Callable[[], str]:
    def run() -> str:
        space = TimePartitions(
            cron="* * * * *", time_zone=zone, start="2023-01-01", end=None, now=NOW
        )
        # 2023-01-01T00:00 .. 2024-11-25T10:39 is exactly 1,000,000 minutes in UTC.
        sel = space.select_range(None, "2024-11-25T10:39")
        return f"{len(sel)} partitions, {sel.first_key} .. {sel.last_key}"

    return run


def daily_from_2000() -> str:
    space = TimePartitions(
        cron="0 0 * * *", time_zone="America/New_York", start="2000-01-01", end=None, now=NOW
    )
    sel = space.select_range("2024-01-01", "2024-12-31")
    return f"{len(sel)} partitions, indices {sel.indices}"


def minutely_ny_since_2000_last_index() -> str:
    space = TimePartitions(
        cron="* * * * *", time_zone="America/New_York", start="2000-01-01", end=None, now=NOW
    )
    return f"last_index {space.last_index()}"


def minutely_ny_since_2000_one_day() -> str:
    space = TimePartitions(
        cron="* * * * *", time_zone="America/New_York", start="2000-01-01", end=None, now=NOW
    )
    sel = space.select_range("2025-11-02", "2025-11-02T23:59")
    return f"{len(sel)} partitions, indices {sel.indices}"


def select_10k_keys() -> str:
    space = TimePartitions(
        cron="0 * * * *", time_zone="America/New_York", start="2023-01-01", end=None, now=NOW
    )
    every = space.select_range(None, None)
    rng = random.Random(7)
    keys = [every.key(i) for i in rng.sample(range(len(every)), 10_000)]
    start = time.perf_counter()
    sel = space.select_keys(keys)
    took = time.perf_counter() - start
    return f"{len(sel)} keys of {len(every)} (select_keys alone {took:.3f} s)"


def key_every_partition() -> str:
    space = TimePartitions(cron="* * * * *", time_zone="UTC", start="2023-01-01", end=None, now=NOW)
    sel = space.select_range(None, "2024-11-25T10:39")
    start = time.perf_counter()
    n = sum(1 for i in sel.indices if sel.partition(i).key)
    took = time.perf_counter() - start
    return f"{n} Partition objects built in {took:.3f} s"


SCENARIOS: list[tuple[str, Callable[[], str]]] = [
    ("1,000,000 minutely partitions, UTC: build + select_range", minutely("UTC")),
    ("1,000,000 minutely partitions, America/New_York", minutely("America/New_York")),
    ("daily from 2000 (New York), select 2024", daily_from_2000),
    ("minutely from 2000 (New York), last_index", minutely_ny_since_2000_last_index),
    ("minutely from 2000 (New York), select one day", minutely_ny_since_2000_one_day),
    ("hourly (New York) select_keys of 10,000 keys", select_10k_keys),
    ("1,000,000 minutely: Selection.partition() for each", key_every_partition),
]


def main() -> None:
    print(f"{'scenario':55} {'wall s':>8} {'peak MiB':>9} {'maxrss MiB':>10}  result")
    for name, fn in SCENARIOS:
        gc.collect()
        start = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - start
        gc.collect()
        tracemalloc.start()
        fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"{name:55} {wall:8.3f} {peak / 2**20:9.1f} {maxrss:10.1f}  {result}")


if __name__ == "__main__":
    main()
