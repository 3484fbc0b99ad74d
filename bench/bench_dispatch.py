"""Dispatch benchmark: a Backfill against one Indexed Job running the same pods.

On a fresh local control plane (its own temporary data directory), with the operator running
as users run it:

1. warm-up: a 20-pod Indexed Job (then deleted) and a 20-partition Backfill (kept, in its own
   namespace);
2. one Indexed Job (completionMode Indexed, completions N, parallelism C) whose pods run
   ``RUN_TIME`` under KWOK: wall time from create to the Complete condition;
3. after its pods are gone, a Backfill of N minutely partitions, concurrency C, whose Jobs
   run the same pod: wall time from create to phase Succeeded.

Reported: both wall times and their ratio (goal <= 0.80, issue 13: faster than the Job
controller's own Indexed Job); slot-refill latency p50/p99 (goal p99 <= 250 ms): the time a
pod is seen ``Succeeded`` in a pod watch to the time the next new Job is seen ADDED in a Job
watch (the k-th pod success paired with the (C+k)-th Job creation: the operator frees a slot
when the partition's pod succeeds), also pod to pod for both runs; API writes per partition
by the operator (goal <= 3) from the apiserver's ``apiserver_request_total`` (diff around the
Backfill run) and the Events it posted. Numbers only, no assertions.

Run: ``python bench/bench_dispatch.py [--partitions 1000] [--concurrency 50] [--json F]``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from common import (
    GROUP,
    RUN_TIME,
    Clients,
    Event,
    Lifecycle,
    OperatorCost,
    OperatorReadings,
    Result,
    Watch,
    component_cpu,
    count_pods,
    cpu_line,
    create_namespace,
    job_finished,
    job_template,
    job_watch,
    latency_line,
    list_rv,
    load,
    load_average,
    ms,
    operator_events,
    operator_on_fresh_cluster,
    partitioned_job,
    percentile,
    pod_finished,
    pod_template,
    pod_watch,
    print_results,
    refill_latencies,
    run_backfill,
    say,
    wait_until,
    write_breakdown,
    write_results,
)

BENCH = "dispatch"


def indexed_job(name: str, completions: int, parallelism: int) -> dict[str, Any]:
    """An Indexed Job of ``completions`` pods, ``parallelism`` at once."""
    template = pod_template()
    container = template["spec"]["containers"][0]
    container["args"] = ["--partition", "$(JOB_COMPLETION_INDEX)"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": parallelism,
            "backoffLimit": 0,
            "template": template,
        },
    }


# ------------------------------------------------------------------------------ runs


def run_indexed(
    clients: Clients, namespace: str, completions: int, parallelism: int
) -> dict[str, Any]:
    """Run one Indexed Job to completion; return wall time and pod-level lifecycles."""
    create_namespace(clients, namespace)
    name = f"indexed-{completions}"
    done = threading.Event()
    finished_at: list[float] = []

    def on_job(event: Event) -> None:
        if event.obj["metadata"]["name"] == name and job_finished(event.obj) and not done.is_set():
            finished_at.append(event.at)
            done.set()

    job_rv = list_rv(clients.batch.list_namespaced_job(namespace, _preload_content=False))
    pod_rv = list_rv(clients.core.list_namespaced_pod(namespace, _preload_content=False))
    with (
        Watch(job_watch(clients, namespace, job_rv), job_rv, on_job) as jobs,
        Watch(pod_watch(clients, namespace, pod_rv), pod_rv) as pods,
    ):
        started = time.monotonic()
        clients.create_job(namespace, indexed_job(name, completions, parallelism))
        if not done.wait(timeout=1800):
            raise TimeoutError(f"Indexed Job {name} did not finish in 1800 s")
        time.sleep(0.5)
    for watch in (jobs, pods):
        if watch.error is not None:
            raise RuntimeError(f"watch failed: {watch.error!r}")
    job = load(clients.batch.read_namespaced_job(name, namespace, _preload_content=False))
    status = job.get("status") or {}
    pod_life = Lifecycle.of(pods.events, pod_finished)
    return {
        "wall": finished_at[0] - started,
        "succeeded": int(status.get("succeeded") or 0),
        "failed": int(status.get("failed") or 0),
        "pods": pod_life,
        "first_pod": min(pod_life.added.values()) - started if pod_life.added else float("nan"),
    }


def delete_and_drain(clients: Clients, namespace: str, name: str) -> None:
    """Delete a Job (background propagation) and wait until the namespace has no pods."""
    clients.batch.delete_namespaced_job(
        name, namespace, propagation_policy="Background", _preload_content=False
    )
    wait_until(lambda: count_pods(clients, namespace) == 0, 600, f"pods of {name} to go", 1.0)


def timed_backfill(
    clients: Clients,
    namespace: str,
    name: str,
    partitions: int,
    concurrency: int,
    before_start: Callable[[], None] = lambda: None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``common.run_backfill`` of a ``jobTemplate`` PartitionedJob, pods watched too; return
    the timings, the Job and pod lifecycles and the Jobs created per partition. ``spec``:
    more fields of the Backfill's spec."""
    job = partitioned_job(f"{name}-job", {"jobTemplate": job_template()})
    run = run_backfill(
        clients,
        namespace,
        name,
        job,
        partitions,
        concurrency,
        before_start,
        watch_pods=True,
        spec=spec,
    )
    indices = Counter(
        e.obj["metadata"]["labels"].get("backfill.dev/partition-index")
        for e in run.job_events
        if e.type == "ADDED"
    )
    pod_job = {
        e.obj["metadata"]["name"]: (e.obj["metadata"].get("labels") or {}).get(
            "batch.kubernetes.io/job-name", ""
        )
        for e in run.pod_events
    }
    return {
        "pod_job": pod_job,
        "wall": run.wall,
        "phase": run.phase,
        "counts": run.status.get("counts") or {},
        "jobs": run.jobs,
        "pods": Lifecycle.of(run.pod_events, pod_finished),
        "first_job": run.first_job,
        "jobs_created": sum(indices.values()),
        "duplicates": sum(n - 1 for n in indices.values() if n > 1),
    }


def pod_to_next_job(pods: Lifecycle, jobs: Lifecycle, slots: int) -> list[float]:
    """Seconds from the k-th pod success to the (slots + k)-th Job creation, for each k.

    With at most ``slots`` pods running, the (slots + k)-th Job can only be created once k
    pods succeeded (this run fails none), so this is how long the k-th freed slot stayed
    empty. Both ends are watch arrival times (two watches of one apiserver).
    """
    finishes = sorted(pods.finished.values())
    adds = sorted(jobs.added.values())
    return [adds[slots + k] - finishes[k] for k in range(min(len(finishes), len(adds) - slots))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument(
        "--backfill-only", action="store_true", help="skip the Indexed Job (operator A/B runs)"
    )
    parser.add_argument(
        "--keep-jobs",
        action="store_true",
        help=(
            "successfulJobsHistoryLimit = partitions (at most 1000): no Job deleted during "
            "the run (the Indexed Job deletes no pod either; the default limit, 3, deletes "
            "nearly every Job)"
        ),
    )
    args = parser.parse_args()
    n, c = args.partitions, args.concurrency

    say(
        f"== dispatch ({load_average()}): {n} partitions / completions, "
        f"concurrency / parallelism {c}, {RUN_TIME} pods"
    )
    with operator_on_fresh_cluster(BENCH) as (cluster, clients, operator):
        say("   warm-up: a 20-pod Indexed Job and a 20-partition Backfill")
        warm = run_indexed(clients, "warmup", 20, 10)
        say(f"   ... Indexed Job Complete after {warm['wall']:.1f} s")
        delete_and_drain(clients, "warmup", "indexed-20")
        say("   ... its pods are gone")
        warm = timed_backfill(clients, "warmup", "warmup", 20, 10)
        say(f"   ... Backfill {warm['phase']} after {warm['wall']:.1f} s")
        # Left in place: deleting it waits ~30 s for the garbage collector to discover
        # the new CRD; a finished Backfill costs one pass per 5 minutes.

        indexed: dict[str, Any] | None = None
        cpu_lines: list[str] = []
        if not args.backfill_only:
            say(f"   Indexed Job: completions {n}, parallelism {c}")
            cpu_before = component_cpu(cluster, operator)
            indexed = run_indexed(clients, "bench-indexed", n, c)
            cpu_lines.append(
                "Indexed Job: "
                + cpu_line(cpu_before, component_cpu(cluster, operator), indexed["wall"])
            )
            say(f"   ... Complete after {indexed['wall']:.1f} s; deleting it and its pods")
            delete_and_drain(clients, "bench-indexed", f"indexed-{n}")
            time.sleep(2)

        say(f"   Backfill: {n} partitions, concurrency {c}")
        before: list[OperatorReadings] = []

        cpu_at_start: list[dict[str, float]] = []

        def snapshot() -> None:
            time.sleep(1)  # the PartitionedJob's own status write settles
            before.append(OperatorReadings.take(cluster, operator))
            cpu_at_start.append(component_cpu(cluster, operator))

        keep = {"successfulJobsHistoryLimit": min(n, 1000)} if args.keep_jobs else None
        result = timed_backfill(clients, "bench-backfill", "dispatch", n, c, snapshot, keep)
        say(f"   ... {result['phase']} after {result['wall']:.1f} s")
        cpu_lines.append(
            "Backfill:    "
            + cpu_line(cpu_at_start[0], component_cpu(cluster, operator), result["wall"])
        )
        time.sleep(3)  # trailing deletions and events of the last pass
        cost = OperatorCost.between(before[0], OperatorReadings.take(cluster, operator))
        events = operator_events(clients, "bench-backfill")
        rss = operator.proc_status()

    diff = cost.requests
    per_partition, ours, theirs = write_breakdown(diff, cost.failed, events, n)
    passes, pass_seconds, cpu = cost.passes, cost.pass_seconds, cost.cpu
    reads = {
        label: diff[key]
        for label, key in (
            ("GET backfills", ("GET", GROUP, "backfills", "", "")),
            ("GET partitionedjobs", ("GET", GROUP, "partitionedjobs", "", "")),
            ("LIST jobs", ("LIST", "batch", "jobs", "", "")),
        )
    }

    ratio = result["wall"] / indexed["wall"] if indexed else float("nan")
    jobs_life, pods_life = result["jobs"], result["pods"]
    # The chain of one refill: pod ends -> its Job Complete (job controller) -> next Job ADDED
    # (the operator) -> that Job's pod ADDED (job controller).
    pod_to_job_done = [
        jobs_life.finished[job] - at
        for pod, at in pods_life.finished.items()
        if (job := result["pod_job"].get(pod)) in jobs_life.finished
    ]
    job_to_pod = [
        at - jobs_life.added[job]
        for pod, at in pods_life.added.items()
        if (job := result["pod_job"].get(pod)) in jobs_life.added
    ]
    slot_refill = pod_to_next_job(pods_life, jobs_life, c)
    job_refill = refill_latencies(result["jobs"], c)
    bf_pod_refill = refill_latencies(result["pods"], c)
    ix_pod_refill = refill_latencies(indexed["pods"], c) if indexed else []
    ideal = n / c * 1.0

    print()
    say(f"== dispatch results ({load_average()})")
    if indexed:
        say(
            f"   Indexed Job: {indexed['wall']:.1f} s create -> Complete "
            f"({indexed['succeeded']} succeeded, {indexed['failed']} failed; first pod after "
            f"{ms(indexed['first_pod'])}); pure run time / parallelism = {ideal:.0f} s"
        )
    counts = result["counts"]
    say(
        f"   Backfill:    {result['wall']:.1f} s create -> {result['phase']} "
        f"(succeeded {counts.get('succeeded')}, failed {counts.get('failed')}; "
        f"{result['jobs_created']} Jobs created, {result['duplicates']} duplicates; "
        f"first Job after {ms(result['first_job'])})"
    )
    say(f"   ratio Backfill / Indexed Job: {ratio:.3f} (goal <= 0.80)")
    say("   " + latency_line("slot refill, pod Succeeded -> next Job ADDED", slot_refill))
    say("   " + latency_line("  (Job finished -> next Job ADDED, for reference)", job_refill))
    say("   " + latency_line("pod finished -> next pod ADDED (Indexed Job)", ix_pod_refill))
    say("   " + latency_line("pod finished -> next pod ADDED (Backfill)", bf_pod_refill))
    say("   " + latency_line("  of which: pod finished -> its Job Complete", pod_to_job_done))
    say("   " + latency_line("  of which: Job ADDED -> its pod ADDED", job_to_pod))
    say(
        f"   operator: {passes:.0f} reconcile passes ({passes / n:.2f} per partition), "
        f"mean pass {ms(pass_seconds / passes if passes else float('nan'))}, "
        f"CPU {cpu:.1f} s ({cpu / result['wall'] * 100:.0f}% of one core), "
        f"peak RSS {rss.get('VmHWM', 0) / 1024:.0f} MiB"
    )
    say(
        f"   API writes by the operator during the Backfill: {per_partition:.2f} per partition "
        "(goal <= 3)"
    )
    for label, count in ours:
        say(f"      {label:42} {count:6d}  {count / n:6.3f} / partition")
    say(
        "   reads by the operator (for reference): "
        + ", ".join(
            f"{label} {count} ({count / n:.2f}/partition)" for label, count in reads.items()
        )
    )
    say("   CPU seconds by process during each run (2 CPUs: 2.00 cores is all of them):")
    for line in cpu_lines:
        say(f"      {line}")
    say(
        "   writes by other components (job controller, scheduler, KWOK, GC; not counted): "
        + ", ".join(f"{label} {count}" for label, count in theirs)
    )

    refill_p99 = percentile(slot_refill, 99)
    results = [
        Result(
            BENCH,
            f"Indexed Job wall time ({n} x {RUN_TIME}, parallelism {c})",
            f"{indexed['wall']:.1f} s" if indexed else "(skipped)",
        ),
        Result(
            BENCH,
            f"Backfill wall time ({n} partitions, concurrency {c})",
            f"{result['wall']:.1f} s",
        ),
        Result(
            BENCH,
            "wall-time ratio Backfill / Indexed Job",
            f"{ratio:.3f}",
            "<= 0.80",
            ratio <= 0.80,
        ),
        Result(BENCH, "slot refill p50", ms(percentile(slot_refill, 50))),
        Result(BENCH, "slot refill p99", ms(refill_p99), "<= 250 ms", refill_p99 <= 0.250),
        Result(
            BENCH,
            "API writes per partition (operator)",
            f"{per_partition:.2f}",
            "<= 3",
            per_partition <= 3,
        ),
    ]
    write_results(args.json, results)
    print()
    print_results(results)
    return 0 if result["phase"] == "Succeeded" and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
