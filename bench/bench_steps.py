"""Steps benchmark: what steps inside a partition (issue 12) cost the planner and the operator.

1. **Pure planning, no cluster.** One reconcile pass as the operator plans it
   (``planning.verdict.judge``, ``planning.decide.plan``, ``planning.status.compose_status``) of
   a Backfill of a minutely PartitionedJob from 2025-01-01T00:00 to 2026-11-01T00:00 (963,361
   partitions), concurrency 1,000, for a job with ``jobTemplate`` and for chains of steps
   (``s0 -> s1 -> ...``): 3 steps, 3 steps with ``dependsOnPast`` on the second, 10 steps, 10
   steps with ``dependsOnPast`` on the second. Four states of the Backfill:

   * first pass: empty status, no Jobs (it launches 1,000 Jobs);
   * 1,000 Jobs active: the status the first pass wrote, and one active Job (an
     ``ObservedJob``) for each of its launches, so every lane's bookkeeping runs;
   * 1,000 Jobs, 100 just succeeded: the same, with the first 100 launched Jobs Complete (the
     pass records 100 outcomes, updates the ledger and launches 100 Jobs: for steps, the next
     step of those partitions);
   * all done, 1% failed at random: no Jobs; the first step (the job's only one for
     ``jobTemplate``) failed for 9,633 partitions picked at random, the other steps of those
     partitions are upstreamFailed (with ``dependsOnPast``: of every partition from the first
     failure on), everything else succeeded: the scattered outcomes that make a status large.

   Reported: seconds per pass (median of ``--repeat``, 5; judge without the operator's selection
   cache, so the selection is resolved every time) with the share of judge / plan / status, and
   the size of the status written (compact JSON, as stored).

2. **On a fresh local control plane** (``common.fresh_cluster``) with the operator running as
   users run it, after a warm-up (a 10-partition 3-step Backfill):

   a. a PartitionedJob with ``jobTemplate``: one Backfill of 900 minutely partitions
      (900 Jobs), concurrency 50;
   b. a PartitionedJob with three steps ``extract -> transform -> load`` (the same pod): one
      Backfill of 300 partitions (900 Jobs), concurrency 50.

   Pods run ``common.RUN_TIME`` under KWOK. Reported for both: wall time from the Backfill's
   create to phase Succeeded, Jobs per second, Jobs in flight on average (the Jobs' ADDED ->
   finished times summed, over the wall time), the tail (the last first-step Job ADDED ->
   Succeeded: with steps, the last partitions' chains run one step after another), slot refill
   (k-th Job finished -> (C+k)-th Job ADDED, as in ``bench_dispatch.py``), the operator's API
   writes per Job (apiserver ``apiserver_request_total`` and the operator's Events, counted as
   ``bench_dispatch.py`` counts them), reconcile passes; for (b) the step hand-off: from (step
   s, partition i) seen finished in a Job watch to (the next step, i) seen ADDED, p50 / p99.

Numbers only, no assertions; the exit code says whether the runs went right (Succeeded, no
duplicate Job). Run: ``python bench/bench_steps.py [--repeat 5] [--partitions 900]
[--concurrency 50] [--no-cluster] [--json F]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from common import (
    KIB,
    RUN_TIME,
    Clients,
    Lifecycle,
    Operator,
    OperatorCost,
    OperatorReadings,
    Result,
    compact,
    job_template,
    latency_line,
    load_average,
    ms,
    operator_events,
    operator_on_fresh_cluster,
    partitioned_job,
    percentile,
    print_results,
    refill_latencies,
    run_backfill,
    say,
    write_breakdown,
    write_results,
)

from backfill_operator.api import labels
from backfill_operator.api.model import (
    BackfillSpec,
    BackfillStatus,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionSets,
    StepStatus,
)
from backfill_operator.planning import verdict as planner
from backfill_operator.planning.decide import plan
from backfill_operator.planning.observed import JobState, ObservedJob
from backfill_operator.planning.partitioned_job import partitioned_job_status
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.state import LaunchRequest
from backfill_operator.planning.status import compose_status
from devcluster import Cluster

BENCH = "steps"

# ------------------------------------------------------------------- 1. pure planning

PLAN_FROM, PLAN_TO = "2025-01-01T00:00", "2026-11-01T00:00"
PLAN_CONCURRENCY = 1000
#: Jobs of the 1,000 active ones that finish before the third scenario's pass.
JUST_FINISHED = 100
#: Share of partitions whose first step failed in the "all done" scenario (at random).
FAILED_SHARE = 0.01
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NAME, UID = "steps-bench", "6f1c2f4e-0000-4000-8000-000000000012"


@dataclass(frozen=True)
class Variant:
    """A PartitionedJob shape: no steps (``jobTemplate``) or a chain of ``steps`` steps."""

    label: str
    steps: int  # 0: jobTemplate
    past: bool = False  # dependsOnPast on the second step

    def spec(self) -> PartitionedJobSpec:
        template = job_template()
        body: dict[str, Any] = {
            "partitions": {
                "schedule": {"cron": "* * * * *", "timeZone": "UTC", "start": "2025-01-01"}
            }
        }
        if not self.steps:
            body["jobTemplate"] = template
        else:
            body["steps"] = [
                {
                    "name": f"s{i}",
                    "dependsOn": [f"s{i - 1}"] if i else [],
                    "dependsOnPast": self.past and i == 1,
                    "jobTemplate": template,
                }
                for i in range(self.steps)
            ]
        return PartitionedJobSpec.model_validate(body)


VARIANTS = (
    Variant("jobTemplate", 0),
    Variant("3 steps", 3),
    Variant("3 steps, dependsOnPast", 3, past=True),
    Variant("10 steps", 10),
    Variant("10 steps, dependsOnPast", 10, past=True),
)


@dataclass
class PassTiming:
    """One planning pass: seconds per stage, what it produced."""

    judge: float
    plan: float
    status: float
    status_bytes: int
    launches: list[LaunchRequest]
    new_status: BackfillStatus
    selected: int

    @property
    def total(self) -> float:
        """judge + plan + status."""
        return self.judge + self.plan + self.status


def one_pass(
    job: PartitionedJobSpec,
    job_status: PartitionedJobStatus,
    spec: BackfillSpec,
    previous: BackfillStatus,
    jobs: list[ObservedJob],
) -> PassTiming:
    """Time judge, plan and compose_status of one pass."""
    clock = time.perf_counter
    t0 = clock()
    view = planner.BackfillView(NAME, "bench", UID, 1, spec, previous)
    verdict = planner.judge(view, planner.PartitionedJobView("pj", job, job_status), NOW)
    t1 = clock()
    decision = plan(verdict, jobs, NOW)
    t2 = clock()
    new_status = compose_status(verdict, decision.state, decision.launches, NOW)
    t3 = clock()
    return PassTiming(
        judge=t1 - t0,
        plan=t2 - t1,
        status=t3 - t2,
        status_bytes=compact(new_status.compacted().to_api()),  # as the operator writes it
        launches=list(decision.launches),
        new_status=new_status,
        selected=len(verdict.selection.indices) if verdict.selection is not None else 0,
    )


def observed(launch: LaunchRequest, fingerprint: str, state: JobState) -> ObservedJob:
    """The Job a launch created, as the next pass lists it (owned by the Backfill)."""
    created = NOW - timedelta(seconds=5)
    return ObservedJob(
        name=launch.job_name,
        index=launch.index,
        attempt=launch.attempt,
        key=launch.key,
        state=state,
        owned=True,
        created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        start_time=created,
        finish_time=None if state is JobState.ACTIVE else NOW - timedelta(seconds=1),
        run=NAME,
        run_uid=UID,
        partitioning=fingerprint,
        step=launch.step,
    )


def done_status(variant: Variant, fingerprint: str, partitions: int) -> BackfillStatus:
    """The status of a finished run where the first step failed for 1% of partitions at random.

    The downstream steps of those partitions are upstreamFailed (with ``dependsOnPast`` on the
    second step: every partition from the first failure on, the cascade); the rest succeeded.
    """
    everything = IndexSet.from_range(0, partitions - 1)
    rng = random.Random(12)
    bad = IndexSet.from_indices(
        sorted(rng.sample(range(partitions), int(partitions * FAILED_SHARE)))
    )
    ok = everything.difference(bad)
    if not variant.steps:
        sets = PartitionSets(succeeded=str(ok), failed=str(bad))
        return BackfillStatus(partitioning=fingerprint, partitions=sets)
    down_bad = IndexSet.from_range(bad.first(), partitions - 1) if variant.past else bad
    steps = [StepStatus(name="s0", partitions=PartitionSets(succeeded=str(ok), failed=str(bad)))]
    steps += [
        StepStatus(
            name=f"s{i}",
            partitions=PartitionSets(
                succeeded=str(everything.difference(down_bad)), upstream_failed=str(down_bad)
            ),
        )
        for i in range(1, variant.steps)
    ]
    return BackfillStatus(partitioning=fingerprint, steps=steps)


def median_pass(repeat: int, one: Callable[[], PassTiming]) -> PassTiming:
    """The pass of median total time among ``repeat`` calls of ``one`` (a collection before
    each)."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        runs.append(one())
    runs.sort(key=lambda t: t.total)
    return runs[len(runs) // 2]


def run_planning(repeat: int) -> list[tuple[Variant, str, PassTiming]]:
    """Part 1: every variant in every state; the median of ``repeat`` passes each."""
    spec = BackfillSpec.model_validate(
        {
            "jobRef": {"name": "pj"},
            "range": {"from": PLAN_FROM, "to": PLAN_TO},
            "concurrency": PLAN_CONCURRENCY,
        }
    )
    out: list[tuple[Variant, str, PassTiming]] = []
    for variant in VARIANTS:
        job = variant.spec()
        job_status = partitioned_job_status(job, PartitionedJobStatus(), 1, NOW)
        fingerprint = job_status.partitioning or ""
        pass_after = partial(one_pass, job, job_status, spec)  # (previous status, Jobs)
        first = median_pass(repeat, partial(pass_after, BackfillStatus(), []))
        launched = first.launches
        active = [observed(launch, fingerprint, JobState.ACTIVE) for launch in launched]
        finished = [
            observed(
                launch, fingerprint, JobState.SUCCEEDED if i < JUST_FINISHED else JobState.ACTIVE
            )
            for i, launch in enumerate(launched)
        ]
        previous = first.new_status
        done = done_status(variant, fingerprint, first.selected)
        cases = [
            ("first pass", first),
            (
                f"{len(active):,} Jobs active",
                median_pass(repeat, partial(pass_after, previous, active)),
            ),
            (
                f"{len(active):,} Jobs, {JUST_FINISHED} just succeeded",
                median_pass(repeat, partial(pass_after, previous, finished)),
            ),
            (
                f"all done, {FAILED_SHARE:.0%} failed at random",
                median_pass(repeat, partial(pass_after, done, [])),
            ),
        ]
        for state, timing in cases:
            steps = Counter(launch.step for launch in timing.launches)
            by_step = ", ".join(f"{s or '-'}: {n}" for s, n in sorted(steps.items()))
            say(
                f"   {variant.label:24} {state:32} {timing.total:6.3f} s (judge {timing.judge:.3f}"
                f", plan {timing.plan:.3f}, status {timing.status:.3f}); status "
                f"{timing.status_bytes / KIB:6.1f} KiB; {len(timing.launches)} launches "
                f"({by_step}); {timing.selected:,} partitions"
            )
            out.append((variant, state, timing))
    return out


# -------------------------------------------------------------- 2. on the control plane

CHAIN = ("extract", "transform", "load")


def chain_job(name: str, steps: tuple[str, ...]) -> dict[str, Any]:
    """A minutely PartitionedJob (``common.partitioned_job``): ``jobTemplate`` or a chain of
    ``steps``."""
    template = job_template()
    if not steps:
        return partitioned_job(name, {"jobTemplate": template})
    chain = [
        {"name": step, "dependsOn": [steps[i - 1]] if i else [], "jobTemplate": template}
        for i, step in enumerate(steps)
    ]
    return partitioned_job(name, {"steps": chain})


def timed_backfill(
    clients: Clients,
    namespace: str,
    name: str,
    steps: tuple[str, ...],
    partitions: int,
    concurrency: int,
    before_start: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``common.run_backfill`` of a ``chain_job(steps)``; return the timings, the Job
    lifecycles and each Job's (step, partition index)."""
    job = chain_job(f"{name}-job", steps)
    run = run_backfill(clients, namespace, name, job, partitions, concurrency, before_start)
    unit: dict[str, tuple[str, int]] = {}
    for event in run.job_events:
        meta = event.obj["metadata"]
        job_labels = meta.get("labels") or {}
        unit[meta["name"]] = (
            job_labels.get(labels.LABEL_STEP, ""),
            int(job_labels.get(labels.LABEL_PARTITION_INDEX, -1)),
        )
    life = run.jobs
    created = Counter(unit[name] for name in life.added)
    busy = sum(at - life.added[name] for name, at in life.finished.items() if name in life.added)
    head = steps[0] if steps else ""
    last_head = max((at for name, at in life.added.items() if unit[name][0] == head), default=0.0)
    return {
        "wall": run.wall,
        "in_flight": busy / run.wall,
        "tail": run.ended - last_head,
        "head": head,
        "phase": run.phase,
        "status": run.status,
        "jobs": life,
        "unit": unit,
        "first_job": run.first_job,
        "last_job": max(life.added.values()) - run.started if life.added else float("nan"),
        "jobs_created": len(life.added),
        "duplicates": sum(n - 1 for n in created.values() if n > 1),
    }


def hand_offs(result: dict[str, Any], steps: tuple[str, ...]) -> list[float]:
    """Seconds from (step s, partition i) finished to (the step after s, i) ADDED."""
    life: Lifecycle = result["jobs"]
    finished = {result["unit"][name]: at for name, at in life.finished.items()}
    added = {result["unit"][name]: at for name, at in life.added.items()}
    out = []
    for (step, index), at in finished.items():
        if step in steps[:-1]:
            after = added.get((steps[steps.index(step) + 1], index))
            if after is not None:
                out.append(after - at)
    return out


def partition_spans(result: dict[str, Any], steps: tuple[str, ...]) -> list[float]:
    """Seconds from a partition's first step ADDED to its last step finished."""
    life: Lifecycle = result["jobs"]
    finished = {result["unit"][name]: at for name, at in life.finished.items()}
    added = {result["unit"][name]: at for name, at in life.added.items()}
    return [
        finished[(steps[-1], index)] - at
        for (step, index), at in added.items()
        if step == steps[0] and (steps[-1], index) in finished
    ]


def measured_run(
    cluster: Cluster,
    clients: Clients,
    operator: Operator,
    namespace: str,
    name: str,
    steps: tuple[str, ...],
    partitions: int,
    concurrency: int,
) -> dict[str, Any]:
    """``timed_backfill`` with the apiserver's request counters and the operator's metrics
    around."""
    before: list[OperatorReadings] = []

    def snapshot() -> None:
        time.sleep(1)  # the PartitionedJob's own status write settles
        before.append(OperatorReadings.take(cluster, operator))

    result = timed_backfill(clients, namespace, name, steps, partitions, concurrency, snapshot)
    say(
        f"   ... {result['phase']} after {result['wall']:.1f} s "
        f"({result['jobs_created']} Jobs, {result['duplicates']} duplicates)"
    )
    time.sleep(3)  # trailing deletions and events of the last pass
    cost = OperatorCost.between(before[0], OperatorReadings.take(cluster, operator))
    events = operator_events(clients, namespace)
    jobs = max(1, result["jobs_created"])
    per_job, ours, _ = write_breakdown(cost.requests, cost.failed, events, jobs)
    result["writes_per_job"], result["writes"] = per_job, ours
    result["cpu"], result["passes"], result["pass_seconds"] = (
        cost.cpu,
        cost.passes,
        cost.pass_seconds,
    )
    return result


def report_run(label: str, result: dict[str, Any]) -> None:
    """Print one cluster run's numbers."""
    jobs = result["jobs_created"]
    wall = result["wall"]
    counts = result["status"].get("counts") or {}
    passes = result["passes"]
    say(
        f"   {label}: {wall:.1f} s create -> {result['phase']}; {jobs} Jobs "
        f"({result['duplicates']} duplicates), {jobs / wall:.1f} Jobs/s; first Job after "
        f"{ms(result['first_job'])}, last after {result['last_job']:.1f} s; counts "
        f"{json.dumps(counts, separators=(',', ':'))}"
    )
    say(
        f"      Jobs in flight on average {result['in_flight']:.1f} (of the concurrency); "
        f"tail: last {result['head'] + ' ' if result['head'] else ''}Job ADDED -> "
        f"Succeeded {result['tail']:.1f} s"
    )
    say("      " + latency_line("slot refill, Job finished -> next Job ADDED", result["refill"]))
    say(
        f"      operator: {passes:.0f} reconcile passes ({passes / max(1, jobs):.2f} per Job), "
        f"mean pass {ms(result['pass_seconds'] / passes if passes else float('nan'))}, "
        f"CPU {result['cpu']:.1f} s ({result['cpu'] / wall * 100:.0f}% of one core)"
    )
    say(f"      API writes by the operator: {result['writes_per_job']:.2f} per Job")
    for what, count in result["writes"]:
        say(f"         {what:42} {count:6d}  {count / max(1, jobs):6.3f} / Job")


def run_cluster(partitions: int, concurrency: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Part 2: the jobTemplate run, then the 3-step run, on one fresh control plane."""
    with operator_on_fresh_cluster(BENCH) as (cluster, clients, operator):
        say("   warm-up: a 10-partition 3-step Backfill, concurrency 10")
        warm = timed_backfill(clients, "warmup", "warmup", CHAIN, 10, 10)
        say(f"   ... {warm['phase']} after {warm['wall']:.1f} s")
        say(f"   (a) jobTemplate: {partitions} partitions, concurrency {concurrency}")
        plain = measured_run(
            cluster,
            clients,
            operator,
            "bench-template",
            "template",
            (),
            partitions,
            concurrency,
        )
        time.sleep(2)
        chained = partitions // len(CHAIN)
        say(
            f"   (b) {' -> '.join(CHAIN)}: {chained} partitions "
            f"({chained * len(CHAIN)} Jobs), concurrency {concurrency}"
        )
        stepped = measured_run(
            cluster,
            clients,
            operator,
            "bench-steps",
            "chain",
            CHAIN,
            chained,
            concurrency,
        )
        rss = operator.proc_status()
    for result in (plain, stepped):
        result["refill"] = refill_latencies(result["jobs"], concurrency)
        result["rss"] = rss
    stepped["hand_off"] = hand_offs(stepped, CHAIN)
    stepped["spans"] = partition_spans(stepped, CHAIN)
    return plain, stepped


# ------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes per planning case")
    parser.add_argument(
        "--partitions", type=int, default=900, help="Jobs of each cluster run (a multiple of 3)"
    )
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-cluster", action="store_true", help="run part 1 only")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()

    say(
        f"== steps ({load_average()}): 1. planning one pass, {PLAN_FROM} .. {PLAN_TO} minutely, "
        f"concurrency {PLAN_CONCURRENCY}, median of {args.repeat}"
    )
    results: list[Result] = []
    for variant, state, timing in run_planning(args.repeat):
        results.append(
            Result(
                BENCH,
                f"plan: {variant.label}, {state}",
                f"{timing.total:.3f} s, status {timing.status_bytes / KIB:.1f} KiB",
            )
        )
    ok = True
    if not args.no_cluster:
        n, c = args.partitions, args.concurrency
        say(f"== steps 2. on a control plane: {n} Jobs each, concurrency {c}, {RUN_TIME} pods")
        plain, stepped = run_cluster(n, c)
        print()
        say(f"== steps 2. results ({load_average()})")
        report_run("(a) jobTemplate", plain)
        report_run(f"(b) {' -> '.join(CHAIN)}", stepped)
        say(
            "      "
            + latency_line("step hand-off, step finished -> next step ADDED", stepped["hand_off"])
        )
        say(
            "      "
            + latency_line("partition, first step ADDED -> last step finished", stepped["spans"])
        )
        say(f"   operator peak RSS {stepped['rss'].get('VmHWM', 0) / KIB:.0f} MiB")
        ratio = stepped["wall"] / plain["wall"]
        say(f"   wall-time ratio (b) / (a): {ratio:.3f}")
        chained = n // len(CHAIN)
        for label, result in (
            (f"jobTemplate, {n} partitions", plain),
            (f"3 steps, {chained} partitions", stepped),
        ):
            jobs, refill = result["jobs_created"], result["refill"]
            results += [
                Result(
                    BENCH,
                    f"cluster {label}: wall time ({jobs} Jobs, c {c})",
                    f"{result['wall']:.1f} s",
                ),
                Result(BENCH, f"cluster {label}: Jobs/s", f"{jobs / result['wall']:.1f}"),
                Result(
                    BENCH,
                    f"cluster {label}: Jobs in flight (mean); tail",
                    f"{result['in_flight']:.1f}; {result['tail']:.1f} s",
                ),
                Result(
                    BENCH,
                    f"cluster {label}: slot refill p50 / p99",
                    f"{ms(percentile(refill, 50))} / {ms(percentile(refill, 99))}",
                ),
                Result(
                    BENCH,
                    f"cluster {label}: operator API writes per Job",
                    f"{result['writes_per_job']:.2f}",
                ),
            ]
            ok = ok and result["phase"] == "Succeeded" and result["duplicates"] == 0
        hand = stepped["hand_off"]
        results += [
            Result(
                BENCH,
                "cluster 3 steps: step hand-off p50 / p99",
                f"{ms(percentile(hand, 50))} / {ms(percentile(hand, 99))} (n={len(hand)})",
            ),
            Result(BENCH, "cluster: wall-time ratio 3 steps / jobTemplate", f"{ratio:.3f}"),
        ]
    write_results(args.json, results)
    print()
    print_results(results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
