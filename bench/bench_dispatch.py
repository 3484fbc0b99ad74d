"""Dispatch benchmark: a Backfill against one Indexed Job running the same pods.

On a fresh local control plane (its own temporary data directory), with the operator running
as users run it:

1. warm-up: a 20-pod Indexed Job and a 20-partition Backfill (then deleted);
2. one Indexed Job (completionMode Indexed, completions N, parallelism C) whose pods run
   ``RUN_TIME`` under KWOK: wall time from create to the Complete condition;
3. after its pods are gone, a Backfill of N minutely partitions, concurrency C, whose Jobs
   run the same pod: wall time from create to phase Succeeded.

Reported: both wall times and their ratio (goal <= 1.10); slot-refill latency p50/p99 (goal
p99 <= 250 ms): the time a Job is seen finished in a Job watch to the time the next new Job
is seen ADDED (the k-th finish paired with the (C+k)-th creation), also at pod level for both
runs; API writes per partition by the operator (goal <= 3) from the apiserver's
``apiserver_request_total`` (diff around the Backfill run) and the Events it posted. Numbers
only, no assertions.

Run: ``python bench/bench_dispatch.py [--partitions 1000] [--concurrency 50] [--json F]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from common import (
    GROUP,
    RUN_TIME,
    VERSION,
    Clients,
    Event,
    Lifecycle,
    Operator,
    RequestKey,
    Result,
    Watch,
    apiserver_requests,
    count_pods,
    create_namespace,
    custom_watch,
    fresh_cluster,
    job_finished,
    job_watch,
    list_rv,
    load,
    load_average,
    percentile,
    pod_finished,
    pod_watch,
    print_results,
    refill_latencies,
    say,
    wait_until,
    write_results,
)

BENCH = "dispatch"
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")
#: First partition of the benchmark's minutely PartitionedJob.
START = datetime(2024, 1, 1)


def pod_template() -> dict[str, Any]:
    """The pod both runs use: KWOK runs it for RUN_TIME, then it succeeds."""
    return {
        "metadata": {"annotations": {"kwok.backfill.dev/duration": RUN_TIME}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "work",
                    "image": "registry.example/bench-work:1.0",
                    "args": ["--partition", "$(PARTITION_KEY)"],
                }
            ],
        },
    }


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


def partitioned_job(name: str) -> dict[str, Any]:
    """A minutely PartitionedJob (UTC, from START) whose Jobs run the benchmark pod."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PartitionedJob",
        "metadata": {"name": name},
        "spec": {
            "partitions": {
                "schedule": {"cron": "* * * * *", "timeZone": "UTC", "start": "2024-01-01"}
            },
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": pod_template()}},
        },
    }


def backfill(name: str, job: str, partitions: int, concurrency: int) -> dict[str, Any]:
    """A Backfill of the first ``partitions`` minutes of ``job``."""
    last = START + timedelta(minutes=partitions - 1)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Backfill",
        "metadata": {"name": name},
        "spec": {
            "jobRef": {"name": job},
            "range": {
                "from": START.strftime("%Y-%m-%dT%H:%M"),
                "to": last.strftime("%Y-%m-%dT%H:%M"),
            },
            "concurrency": concurrency,
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


def run_backfill(
    clients: Clients,
    namespace: str,
    name: str,
    partitions: int,
    concurrency: int,
    before_start: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Create a PartitionedJob and a Backfill, wait for a final phase; return the timings."""
    create_namespace(clients, namespace)
    job_name = f"{name}-job"
    clients.create_custom(namespace, "partitionedjobs", partitioned_job(job_name))

    def job_ready() -> bool:
        body = clients.get_custom(namespace, "partitionedjobs", job_name)
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    wait_until(job_ready, 60, f"PartitionedJob {job_name} Ready (written by the operator)", 0.2)
    before_start()
    done = threading.Event()
    final: list[tuple[float, str]] = []

    def on_backfill(event: Event) -> None:
        phase = (event.obj.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Invalid") and not done.is_set():
            final.append((event.at, str(phase)))
            done.set()

    def rv(kind: str) -> str:
        if kind == "jobs":
            return list_rv(clients.batch.list_namespaced_job(namespace, _preload_content=False))
        if kind == "pods":
            return list_rv(clients.core.list_namespaced_pod(namespace, _preload_content=False))
        return list_rv(
            clients.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "backfills", _preload_content=False
            )
        )

    job_rv, pod_rv, bf_rv = rv("jobs"), rv("pods"), rv("backfills")
    with (
        Watch(job_watch(clients, namespace, job_rv), job_rv) as jobs,
        Watch(pod_watch(clients, namespace, pod_rv), pod_rv) as pods,
        Watch(custom_watch(clients, namespace, "backfills", bf_rv), bf_rv, on_backfill) as bfs,
    ):
        started = time.monotonic()
        clients.create_custom(
            namespace, "backfills", backfill(name, job_name, partitions, concurrency)
        )
        if not done.wait(timeout=1800):
            raise TimeoutError(f"Backfill {name} did not finish in 1800 s")
        time.sleep(0.5)
    for watch in (jobs, pods, bfs):
        if watch.error is not None:
            raise RuntimeError(f"watch failed: {watch.error!r}")
    body = clients.get_custom(namespace, "backfills", name)
    job_life = Lifecycle.of(jobs.events, job_finished)
    indices = Counter(
        e.obj["metadata"]["labels"].get("backfill.dev/partition-index")
        for e in jobs.events
        if e.type == "ADDED"
    )
    pod_job = {
        e.obj["metadata"]["name"]: (e.obj["metadata"].get("labels") or {}).get(
            "batch.kubernetes.io/job-name", ""
        )
        for e in pods.events
    }
    return {
        "pod_job": pod_job,
        "wall": final[0][0] - started,
        "phase": final[0][1],
        "counts": (body.get("status") or {}).get("counts") or {},
        "jobs": job_life,
        "pods": Lifecycle.of(pods.events, pod_finished),
        "first_job": min(job_life.added.values()) - started if job_life.added else float("nan"),
        "jobs_created": sum(indices.values()),
        "duplicates": sum(n - 1 for n in indices.values() if n > 1),
        "status_bytes": len(_json_bytes(body.get("status") or {})),
    }


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def operator_events(clients: Clients, namespace: str) -> Counter[str]:
    """Events in ``namespace`` posted by the operator (or by kopf on its behalf), by reason."""
    items = load(clients.core.list_namespaced_event(namespace, _preload_content=False))["items"]
    out: Counter[str] = Counter()
    for item in items:
        source = (item.get("source") or {}).get("component") or item.get("reportingComponent")
        if source in ("backfill-operator", "kopf"):
            out[f"{source}:{item.get('reason')}"] += int(item.get("count") or 1)
    return out


# --------------------------------------------------------------------------- reports


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def latency_line(label: str, values: list[float]) -> str:
    """p50 / p90 / p99 / max of ``values`` (seconds) as one line."""
    if not values:
        return f"{label}: no samples"
    return (
        f"{label}: n={len(values)} p50 {_ms(percentile(values, 50))}, "
        f"p90 {_ms(percentile(values, 90))}, p99 {_ms(percentile(values, 99))}, "
        f"max {_ms(max(values))}"
    )


def write_breakdown(
    diff: Counter[RequestKey], failed: Counter[RequestKey], events: Counter[str], partitions: int
) -> tuple[float, list[tuple[str, int]], list[tuple[str, int]]]:
    """Operator writes (rows, total per partition) and other components' writes (rows)."""
    ours: list[tuple[str, int]] = []
    theirs: list[tuple[str, int]] = []
    for key, n in sorted(diff.items()):
        verb, group, resource, sub, dry_run = key
        if verb not in WRITE_VERBS or n <= 0:
            continue
        qualified = f"{group}/{resource}" if group not in ("", "batch", GROUP) else resource
        label = (
            f"{verb} {qualified}" + (f"/{sub}" if sub else "") + (" (dry run)" if dry_run else "")
        )
        if (verb, group, resource) == ("POST", GROUP, "backfills"):
            continue  # the benchmark's own create
        custom = group == GROUP
        jobs = group == "batch" and resource == "jobs" and not sub and verb in ("POST", "DELETE")
        if failed[key] > 0:
            label += f" ({failed[key]} not 2xx)"
        if custom or jobs:
            ours.append((label, n))
        else:
            theirs.append((label, n))
    for reason, n in sorted(events.items()):
        ours.append((f"POST events ({reason})", n))
    total = sum(n for _, n in ours)
    return total / partitions, ours, theirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument(
        "--backfill-only", action="store_true", help="skip the Indexed Job (operator A/B runs)"
    )
    args = parser.parse_args()
    n, c = args.partitions, args.concurrency

    say(
        f"== dispatch ({load_average()}): {n} partitions / completions, "
        f"concurrency / parallelism {c}, {RUN_TIME} pods"
    )
    with fresh_cluster(BENCH) as cluster:
        assert cluster.data_dir is not None
        clients = Clients.connect(cluster.kubeconfig)
        operator = Operator(cluster, cluster.data_dir / "operator.log")
        try:
            with operator:
                say("   warm-up: a 20-pod Indexed Job and a 20-partition Backfill")
                warm = run_indexed(clients, "warmup", 20, 10)
                say(f"   ... Indexed Job Complete after {warm['wall']:.1f} s")
                delete_and_drain(clients, "warmup", "indexed-20")
                say("   ... its pods are gone")
                warm = run_backfill(clients, "warmup", "warmup", 20, 10)
                say(f"   ... Backfill {warm['phase']} after {warm['wall']:.1f} s")
                # Left in place: deleting it waits ~30 s for the garbage collector to discover
                # the new CRD; a finished Backfill costs one pass per 5 minutes.

                indexed: dict[str, Any] | None = None
                if not args.backfill_only:
                    say(f"   Indexed Job: completions {n}, parallelism {c}")
                    indexed = run_indexed(clients, "bench-indexed", n, c)
                    say(f"   ... Complete after {indexed['wall']:.1f} s; deleting it and its pods")
                    delete_and_drain(clients, "bench-indexed", f"indexed-{n}")
                    time.sleep(2)

                say(f"   Backfill: {n} partitions, concurrency {c}")
                snap: dict[str, Any] = {}

                def snapshot() -> None:
                    time.sleep(1)  # the PartitionedJob's own status write settles
                    snap["requests"] = apiserver_requests(cluster)
                    snap["metrics"] = operator.metric_values()
                    snap["cpu"] = operator.cpu_seconds()

                result = run_backfill(clients, "bench-backfill", "dispatch", n, c, snapshot)
                say(f"   ... {result['phase']} after {result['wall']:.1f} s")
                time.sleep(3)  # trailing deletions and events of the last pass
                after = apiserver_requests(cluster)
                metrics_after = operator.metric_values()
                cpu = operator.cpu_seconds() - snap["cpu"]
                events = operator_events(clients, "bench-backfill")
                rss = operator.proc_status()
        except BaseException:
            say(f"   operator log (tail):\n{operator.log_tail()}")
            raise
        finally:
            clients.close()

    diff = after[0].copy()
    diff.subtract(snap["requests"][0])
    failed = after[1].copy()
    failed.subtract(snap["requests"][1])
    metrics_before = snap["metrics"]
    per_partition, ours, theirs = write_breakdown(diff, failed, events, n)
    passes = metrics_after.get("backfill_reconcile_duration_seconds_count", 0.0) - (
        metrics_before.get("backfill_reconcile_duration_seconds_count", 0.0)
    )
    pass_seconds = metrics_after.get("backfill_reconcile_duration_seconds_sum", 0.0) - (
        metrics_before.get("backfill_reconcile_duration_seconds_sum", 0.0)
    )
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
            f"{_ms(indexed['first_pod'])}); pure run time / parallelism = {ideal:.0f} s"
        )
    counts = result["counts"]
    say(
        f"   Backfill:    {result['wall']:.1f} s create -> {result['phase']} "
        f"(succeeded {counts.get('succeeded')}, failed {counts.get('failed')}; "
        f"{result['jobs_created']} Jobs created, {result['duplicates']} duplicates; "
        f"first Job after {_ms(result['first_job'])})"
    )
    say(f"   ratio Backfill / Indexed Job: {ratio:.3f} (goal <= 1.10)")
    say("   " + latency_line("slot refill, Job finished -> next Job ADDED (Backfill)", job_refill))
    say("   " + latency_line("pod finished -> next pod ADDED (Indexed Job)", ix_pod_refill))
    say("   " + latency_line("pod finished -> next pod ADDED (Backfill)", bf_pod_refill))
    say("   " + latency_line("  of which: pod finished -> its Job Complete", pod_to_job_done))
    say("   " + latency_line("  of which: Job ADDED -> its pod ADDED", job_to_pod))
    say(
        f"   operator: {passes:.0f} reconcile passes ({passes / n:.2f} per partition), "
        f"mean pass {_ms(pass_seconds / passes if passes else float('nan'))}, "
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
    say(
        "   writes by other components (job controller, scheduler, KWOK, GC; not counted): "
        + ", ".join(f"{label} {count}" for label, count in theirs)
    )

    refill_p99 = percentile(job_refill, 99)
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
            "<= 1.10",
            ratio <= 1.10,
        ),
        Result(BENCH, "slot refill p50", _ms(percentile(job_refill, 50))),
        Result(BENCH, "slot refill p99", _ms(refill_p99), "<= 250 ms", refill_p99 <= 0.250),
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
