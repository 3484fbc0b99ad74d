"""Schedule benchmark: scheduled runs of PartitionedJobs (``spec.runs``) after a restart, and idle.

On a fresh local control plane (its own temporary data directory), with the operator running
as a separate process as users run it:

1. **Catch-up after a restart.** With the operator *not* running, a minutely PartitionedJob
   whose ``schedule.start`` is N (1,000) minutes ago and whose ``schedule.end`` is the last
   full minute (so exactly N partitions exist, all of them missed), ``runs: {catchUp: All,
   concurrency: 100}``, pods of 100 ms under KWOK. Then the operator starts. Reported, from the
   moment the operator process is spawned: time to the first Job ``ADDED``, to the first Job of
   the last partition (the N-th), and to all N partitions succeeded in the ledger
   (``status.ledger.succeeded``); Jobs created per second; Jobs per partition (a Job watch
   records every ``ADDED``: no partition may get two); where the time goes (Job ``ADDED`` ->
   ``Complete``, Jobs in flight, slot refill, mean pass); the schedule's ``status.runs``; the
   CPU of the operator and of each control-plane process; the operator's writes.
2. **Idle schedules.** The catch-up job is deleted and the operator stopped; first the operator
   alone (no PartitionedJob) is measured idle for ``--baseline-seconds``. Then, with the operator
   stopped, M (1,000) PartitionedJobs with ``spec.runs`` that have nothing to run (daily cron
   ``0 0 * * *`` starting at today's midnight UTC: no window is complete until tomorrow) are
   created, and the operator is started: the start-up burst (wall time and CPU until every one
   has ``status.runs``, and until the operator is quiet: 3 s in a row under 5% of a core), then,
   5 s later, the operator's CPU over ``--idle-seconds`` (60) of idle: % of one core in total
   and per schedule (goal: 1,000 idle schedules under 5% of one core), the reconcile passes and
   API requests in that interval, its RSS; and what one ``GET /metrics`` (a Prometheus scrape)
   costs the operator with M schedules, since a real deployment is scraped every 15 to 60 s.

CPU is utime + stime of the process and its descendants (``/proc/<pid>/stat``; reaped
children through cutime + cstime). Numbers only: the exit code says only whether the runs
themselves went right (every partition succeeded, no partition got two Jobs, every schedule
got ``status.runs``).

Run: ``python bench/bench_schedule.py [--missed 1000] [--concurrency 100] [--idle-jobs 1000]
[--idle-seconds 60] [--baseline-seconds 15] [--json F]``; ``--missed 0`` or ``--idle-jobs 0``
skips that part.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import (
    GROUP,
    KIB,
    VERSION,
    WRITE_VERBS,
    Clients,
    Event,
    Lifecycle,
    Operator,
    RequestKey,
    Result,
    Watch,
    apiserver_requests,
    create_namespace,
    custom_watch,
    fresh_cluster,
    job_finished,
    job_template,
    job_watch,
    list_rv,
    load,
    load_average,
    percentile,
    print_results,
    refill_latencies,
    say,
    wait_until,
    write_results,
)

from backfill_operator.planning.ranges import IndexSet
from devcluster import Cluster

BENCH = "schedule"
#: Pod run time under KWOK of the catch-up run's Jobs.
POD_TIME = "100ms"
INDEX = f"{GROUP}/partition-index"
SCHEDULED = f"{GROUP}/scheduled"
PARTITIONED_JOB = f"{GROUP}/partitioned-job"


# ------------------------------------------------------------------------------ objects


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def catch_up_job(name: str, start: datetime, end: datetime, concurrency: int) -> dict[str, Any]:
    """A minutely PartitionedJob with partitions ``[start, end)`` and ``catchUp: All``."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PartitionedJob",
        "metadata": {"name": name},
        "spec": {
            "partitions": {
                "schedule": {
                    "cron": "* * * * *",
                    "timeZone": "UTC",
                    "start": _rfc3339(start),
                    "end": _rfc3339(end),
                }
            },
            "jobTemplate": job_template(POD_TIME),
            "runs": {"catchUp": "All", "concurrency": concurrency},
        },
    }


def idle_schedule(now: datetime) -> tuple[str, str]:
    """(cron, start) of a daily schedule with no complete window for a while after ``now``.

    Today's midnight UTC; within 15 minutes of the next midnight, the next midnight itself
    (no partition at all yet), so the idle interval never sees a window close.
    """
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight + timedelta(days=1) - now < timedelta(minutes=15):
        midnight += timedelta(days=1)
    return "0 0 * * *", _rfc3339(midnight)


def idle_job(name: str, cron: str, start: str) -> dict[str, Any]:
    """A PartitionedJob with ``spec.runs`` and nothing due."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PartitionedJob",
        "metadata": {"name": name},
        "spec": {
            "partitions": {"schedule": {"cron": cron, "timeZone": "UTC", "start": start}},
            "jobTemplate": job_template("1s"),
            "runs": {"catchUp": "All", "concurrency": 1},
        },
    }


def warm_up_job(name: str) -> dict[str, Any]:
    """One plain 1-pod Job (the Job controller, scheduler and KWOK warm up on it)."""
    template = job_template(POD_TIME)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, **template}


# ----------------------------------------------------------------------------- readings


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants, plus their reaped children's."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid -> (ppid, cpu seconds)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is stat's field 3 (state): ppid 4, utime 14, stime 15, cutime 16, cstime 17
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        stats[int(entry)] = (int(fields[1]), ticks / tick)
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _) in stats.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(stats[p][1] for p in tree if p in stats)


def component_cpu(cluster: Cluster, operator: Operator) -> dict[str, float]:
    """CPU seconds so far of each control-plane process, the operator and this benchmark."""
    out = {record.name: tree_cpu_seconds(record.pid) for record in cluster.records}
    out["operator"] = tree_cpu_seconds(operator.pid) if operator.running() else 0.0
    own = os.times()
    out["benchmark"] = own.user + own.system
    return out


def _delta(after: dict[str, float], before: dict[str, float], series: str) -> float:
    return after.get(series, 0.0) - before.get(series, 0.0)


def request_diff(
    before: tuple[Counter[RequestKey], Counter[RequestKey]],
    after: tuple[Counter[RequestKey], Counter[RequestKey]],
) -> Counter[RequestKey]:
    """Requests made between two :func:`apiserver_requests` readings."""
    diff = after[0].copy()
    diff.subtract(before[0])
    return +diff


def _operator_write(key: RequestKey) -> bool:
    """True for the writes only the operator makes: Jobs created or deleted, backfill.dev.

    (The garbage collector also deletes Jobs whose PartitionedJob is gone.)
    """
    verb, group, resource, sub, _ = key
    if verb not in WRITE_VERBS:
        return False
    return group == GROUP or (group == "batch" and resource == "jobs" and not sub)


def writes_line(diff: Counter[RequestKey]) -> str:
    """The operator's writes (:func:`_operator_write`) in ``diff``, one line."""
    parts = []
    for key, n in sorted(diff.items()):
        verb, _, resource, sub, dry_run = key
        if _operator_write(key) and n > 0:
            label = (
                f"{verb} {resource}" + (f"/{sub}" if sub else "") + (" (dry)" if dry_run else "")
            )
            parts.append(f"{label} {n}")
    return ", ".join(parts) or "none"


def writes_total(diff: Counter[RequestKey]) -> int:
    """The number of the operator's writes (:func:`_operator_write`) in ``diff``."""
    return sum(n for key, n in diff.items() if _operator_write(key))


def reads_line(diff: Counter[RequestKey]) -> str:
    """GET / LIST / WATCH requests to jobs and backfill.dev objects, one line."""
    parts = [
        f"{verb} {resource} {n}"
        for (verb, group, resource, sub, _), n in sorted(diff.items())
        if verb in ("GET", "LIST", "WATCH") and group in ("batch", GROUP) and not sub and n > 0
    ]
    return ", ".join(parts) or "none"


# ------------------------------------------------------------------ 1. catch-up after restart


def run_catch_up(
    clients: Clients, cluster: Cluster, operator: Operator, missed: int, concurrency: int
) -> dict[str, Any]:
    """Part 1 (see the module doc); the operator is stopped on entry and running on return."""
    namespace, name = "bench-catchup", "minutely"
    create_namespace(clients, namespace)

    say("   warm-up: one plain 1-pod Job")
    clients.create_job(namespace, warm_up_job("warm-up"))

    def warm_done() -> bool:
        return job_finished(
            load(clients.batch.read_namespaced_job("warm-up", namespace, _preload_content=False))
        )

    wait_until(warm_done, 120, "the warm-up Job", 0.2)
    response: Any = clients.batch.delete_namespaced_job(
        "warm-up", namespace, propagation_policy="Background", _preload_content=False
    )
    _ = response.data  # read it: the connection goes back to the pool clean

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=missed)
    clients.create_custom(namespace, "partitionedjobs", catch_up_job(name, start, end, concurrency))
    say(
        f"   created PartitionedJob {name} with the operator down: minutely, "
        f"{_rfc3339(start)} .. {_rfc3339(end)} ({missed} partitions, all missed), "
        f"catchUp All, concurrency {concurrency}, {POD_TIME} pods"
    )

    done = threading.Event()
    ledger_at: dict[int, float] = {}  # succeeded count -> first time seen

    def on_pj(event: Event) -> None:
        if event.obj["metadata"]["name"] != name:
            return
        ledger = (event.obj.get("status") or {}).get("ledger") or {}
        count = len(IndexSet.parse(ledger.get("succeeded") or ""))
        ledger_at.setdefault(count, event.at)
        if count >= missed:
            done.set()

    job_rv = list_rv(clients.batch.list_namespaced_job(namespace, _preload_content=False))
    pj_rv = list_rv(
        clients.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "partitionedjobs", _preload_content=False
        )
    )
    requests_before = apiserver_requests(cluster)
    with (
        Watch(job_watch(clients, namespace, job_rv), job_rv) as jobs,
        Watch(custom_watch(clients, namespace, "partitionedjobs", pj_rv), pj_rv, on_pj) as pjs,
    ):
        time.sleep(0.5)  # both watches open
        say("   starting the operator")
        cpu_before = component_cpu(cluster, operator)
        spawned = time.monotonic()
        operator.start()
        ready = time.monotonic()
        say(f"   ... healthy after {ready - spawned:.1f} s (pid {operator.pid})")
        progress_at = ready
        while not done.wait(timeout=1.0):
            now = time.monotonic()
            if now - spawned > 600:
                raise TimeoutError(f"{missed} partitions not succeeded after 600 s")
            if now - progress_at >= 10:
                progress_at = now
                so_far = sum(1 for e in jobs.events if e.type == "ADDED")
                say(
                    f"   ... {now - spawned:5.1f} s: {so_far} Jobs created, ledger "
                    f"{max(ledger_at, default=0)} succeeded"
                )
        finished_at = time.monotonic()
        cpu_after = component_cpu(cluster, operator)
        time.sleep(3)  # trailing deletions and status writes of the last passes
    for watch in (jobs, pjs):
        if watch.error is not None:
            raise RuntimeError(f"watch failed: {watch.error!r}")
    requests_after = apiserver_requests(cluster)
    cpu = tree_cpu_seconds(operator.pid)
    metrics = operator.metric_values()
    rss = operator.proc_status()

    scheduled_adds = [
        e
        for e in jobs.events
        if e.type == "ADDED" and (e.obj["metadata"].get("labels") or {}).get(SCHEDULED) == "true"
    ]
    per_index = Counter(int(e.obj["metadata"]["labels"][INDEX]) for e in scheduled_adds)
    first_per_index: dict[int, float] = {}
    for e in scheduled_adds:
        first_per_index.setdefault(int(e.obj["metadata"]["labels"][INDEX]), e.at)
    ours = [
        e
        for e in jobs.events
        if (e.obj["metadata"].get("labels") or {}).get(PARTITIONED_JOB) == name
    ]
    life = Lifecycle.of(ours, job_finished)
    added = sorted(first_per_index.values())  # the first Job of each partition
    body = clients.get_custom(namespace, "partitionedjobs", name)
    status = body.get("status") or {}
    runs = status.get("runs") or {}
    events = load(clients.core.list_namespaced_event(namespace, _preload_content=False))["items"]
    reasons = Counter(
        str(e.get("reason"))
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == "PartitionedJob"
    )
    diff = request_diff(requests_before, requests_after)
    run_times = [life.finished[j] - at for j, at in life.added.items() if j in life.finished]
    span = (max(life.finished.values()) - min(life.added.values())) if life.finished else 0.0
    return {
        "components": {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()},
        "job_run": run_times,
        "refill": refill_latencies(life, concurrency),
        "in_flight": sum(run_times) / span if span > 0 else float("nan"),
        "pass_mean": (
            metrics.get("backfill_reconcile_duration_seconds_sum", 0.0)
            / max(1.0, metrics.get("backfill_reconcile_duration_seconds_count", 0.0))
        ),
        "namespace": namespace,
        "name": name,
        "ready": ready - spawned,
        "first_job": added[0] - spawned if added else float("nan"),
        "last_job": added[-1] - spawned if added else float("nan"),
        "all_succeeded": finished_at - spawned,
        "jobs_created": len(scheduled_adds),
        "jobs_finished": len(life.finished),
        "partitions_with_jobs": len(per_index),
        "duplicates": sum(n - 1 for n in per_index.values() if n > 1),
        "outside": sorted(i for i in per_index if not 0 <= i < missed)[:10],
        "ledger_succeeded": len(IndexSet.parse((status.get("ledger") or {}).get("succeeded", ""))),
        "runs": runs,
        "events": reasons,
        "cpu": cpu,
        "rss": rss,
        "passes": metrics.get("backfill_reconcile_duration_seconds_count", 0.0),
        "writes": writes_total(diff),
        "writes_line": writes_line(diff),
    }


def delete_catch_up(clients: Clients, namespace: str, name: str) -> float:
    """Delete the catch-up PartitionedJob (operator running); return seconds until it is gone."""
    started = time.monotonic()
    clients.delete_custom(namespace, "partitionedjobs", name)

    def gone() -> bool:
        return not clients.list_custom(namespace, "partitionedjobs")

    wait_until(gone, 120, f"PartitionedJob {name} to be deleted", 0.2)
    return time.monotonic() - started


# --------------------------------------------------------------------- 2. idle schedules


def metric_values(operator: Operator) -> dict[str, float]:
    """The operator's /metrics as {series: value} (a long timeout: 1,000 schedules are big)."""
    out: dict[str, float] = {}
    with urllib.request.urlopen(operator.metrics_url, timeout=120) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[series] = float(value)
    return out


def idle_interval(cluster: Cluster, operator: Operator, seconds: float) -> dict[str, Any]:
    """CPU, reconcile passes and API requests of the operator over ``seconds`` of idle."""
    requests_before = apiserver_requests(cluster)
    metrics_before = metric_values(operator)
    time.sleep(1.0)  # the scrape's own work is over
    cpu_before = tree_cpu_seconds(operator.pid)
    started = time.monotonic()
    time.sleep(seconds)
    cpu_after = tree_cpu_seconds(operator.pid)
    wall = time.monotonic() - started
    metrics_after = metric_values(operator)
    requests_after = apiserver_requests(cluster)
    diff = request_diff(requests_before, requests_after)
    return {
        "wall": wall,
        "cpu": cpu_after - cpu_before,
        "passes": _delta(
            metrics_after, metrics_before, "backfill_reconcile_duration_seconds_count"
        ),
        "writes": writes_total(diff),
        "writes_line": writes_line(diff),
        "reads_line": reads_line(diff),
        "rss": operator.proc_status(),
    }


def scrape_cost(operator: Operator, probe: str, rounds: int = 3) -> dict[str, float]:
    """What one GET of the operator's /metrics costs (median of ``rounds``), and its size.

    ``probe``: a label value; the series that carry it are counted (e.g. one schedule's).
    """
    walls, cpus = [], []
    text = ""
    for _ in range(rounds):
        cpu_before = tree_cpu_seconds(operator.pid)
        started = time.monotonic()
        with urllib.request.urlopen(operator.metrics_url, timeout=120) as response:
            text = response.read().decode()
        walls.append(time.monotonic() - started)
        cpus.append(tree_cpu_seconds(operator.pid) - cpu_before)
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {
        "wall": sorted(walls)[len(walls) // 2],
        "cpu": sorted(cpus)[len(cpus) // 2],
        "bytes": len(text.encode()),
        "series": len(series),
        "probe_series": sum(1 for line in series if f'"{probe}"' in line),
    }


def create_many(clients: Clients, namespace: str, bodies: list[dict[str, Any]]) -> float:
    """Create ``bodies`` (8 requests at a time); return the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda b: clients.create_custom(namespace, "partitionedjobs", b), bodies))
    return time.monotonic() - started


def run_idle(
    clients: Clients,
    cluster: Cluster,
    operator: Operator,
    count: int,
    idle_seconds: float,
    baseline_seconds: float,
) -> dict[str, Any]:
    """Part 2 (see the module doc); the operator is stopped on entry and running on return."""
    out: dict[str, Any] = {"count": count}
    if baseline_seconds > 0:
        say(
            f"   baseline: the operator alone (no PartitionedJob), idle for "
            f"{baseline_seconds:.0f} s"
        )
        operator.start()
        time.sleep(5)  # start-up and the initial lists settle
        out["baseline"] = idle_interval(cluster, operator, baseline_seconds)
        out["baseline_scrape"] = scrape_cost(operator, "-")
        say(
            f"   ... {out['baseline']['cpu'] / out['baseline']['wall'] * 100:.2f}% of one core, "
            f"{out['baseline']['passes']:.0f} passes"
        )
        operator.stop()

    namespace = "bench-idle"
    create_namespace(clients, namespace)
    cron, start = idle_schedule(datetime.now(UTC))
    bodies = [idle_job(f"idle-{i:04d}", cron, start) for i in range(count)]
    out["create_seconds"] = create_many(clients, namespace, bodies)
    out["cron"], out["start"] = cron, start
    say(
        f"   created {count} PartitionedJobs (cron '{cron}', start {start}, catchUp All) with "
        f"the operator down in {out['create_seconds']:.1f} s"
    )

    have_runs: dict[str, float] = {}
    have_partitioning: dict[str, float] = {}
    all_runs = threading.Event()

    def on_pj(event: Event) -> None:
        status = event.obj.get("status") or {}
        pj = event.obj["metadata"]["name"]
        if status.get("partitioning"):
            have_partitioning.setdefault(pj, event.at)
        if status.get("runs"):
            have_runs.setdefault(pj, event.at)
            if len(have_runs) >= count:
                all_runs.set()

    rv = list_rv(
        clients.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "partitionedjobs", _preload_content=False
        )
    )
    cpu_samples: list[tuple[float, float]] = []
    with Watch(custom_watch(clients, namespace, "partitionedjobs", rv), rv, on_pj) as pjs:
        time.sleep(0.5)
        say("   starting the operator")
        spawned = time.monotonic()
        operator.start()
        ready = time.monotonic()
        cpu_ready = tree_cpu_seconds(operator.pid)
        say(f"   ... healthy after {ready - spawned:.1f} s ({cpu_ready:.1f} s CPU so far)")
        progress_at = ready
        while not all_runs.wait(timeout=1.0):
            now = time.monotonic()
            cpu_samples.append((now - spawned, tree_cpu_seconds(operator.pid)))
            if now - progress_at >= 10:
                progress_at = now
                say(
                    f"   ... {now - spawned:5.1f} s: {len(have_runs)} with status.runs, "
                    f"{len(have_partitioning)} with status.partitioning; operator CPU "
                    f"{cpu_samples[-1][1]:.1f} s"
                )
            if now - spawned > 300:
                say(f"   !!! only {len(have_runs)} of {count} have status.runs after 300 s")
                break
        taken_on = time.monotonic()
        cpu_taken = tree_cpu_seconds(operator.pid)
    if pjs.error is not None:
        raise RuntimeError(f"watch failed: {pjs.error!r}")
    out.update(
        ready=ready - spawned,
        cpu_ready=cpu_ready,
        taken_on=taken_on - spawned,
        cpu_taken=cpu_taken,
        with_runs=len(have_runs),
        with_partitioning=len(have_partitioning),
        first_runs=min(have_runs.values(), default=float("nan")) - spawned,
        rss_taken=operator.proc_status(),
    )
    say(
        f"   ... all {len(have_runs)} have status.runs {taken_on - spawned:.1f} s after the "
        f"start; operator CPU {cpu_taken:.1f} s"
    )
    # The burst goes on after the last status.runs (kopf handles the operator's own status
    # writes as events): it ends at the first 3 s in a row under 5% of a core each.
    quiet = 0
    last = cpu_taken
    while quiet < 3 and time.monotonic() - taken_on < 120:
        time.sleep(1.0)
        cpu_now = tree_cpu_seconds(operator.pid)
        quiet = quiet + 1 if cpu_now - last < 0.05 else 0
        last = cpu_now
    quiet_at = time.monotonic() - 3.0  # the quiet run began 3 s ago
    out["burst_end"] = quiet_at - spawned
    out["cpu_burst"] = last
    say(
        f"   ... quiet (under 5% of a core) from {out['burst_end']:.1f} s after the start: "
        f"{last:.1f} s CPU in all; settling 5 s, then idle for {idle_seconds:.0f} s"
    )
    time.sleep(5.0)
    out["idle"] = idle_interval(cluster, operator, idle_seconds)
    out["scrape"] = scrape_cost(operator, "schedule:idle-0000")
    out["scrape_named"] = scrape_cost(operator, "idle-0000", rounds=1)["probe_series"]
    sample = clients.get_custom(namespace, "partitionedjobs", "idle-0000")
    out["sample_runs"] = (sample.get("status") or {}).get("runs") or {}
    return out


# --------------------------------------------------------------------------------- main


def _pct(cpu: float, wall: float) -> float:
    return cpu / wall * 100 if wall > 0 else float("nan")


def log_findings(path: Path) -> tuple[int, int, list[str]]:
    """(warning lines, error lines, the last few of them) in an operator log."""
    warnings = errors = 0
    tail: list[str] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, 0, []
    for line in lines:
        if " WARNING " in line:
            warnings += 1
            tail.append(line)
        elif " ERROR " in line or "Traceback" in line:
            errors += 1
            tail.append(line)
    return warnings, errors, tail[-5:]


def report_catch_up(catch: dict[str, Any], n: int, concurrency: int) -> list[Result]:
    """Print part 1's numbers; return its rows of the summary table."""
    runs = catch["runs"]
    counts = runs.get("counts") or {}
    created_span = catch["last_job"] - catch["first_job"]
    say(
        f"   1. catch-up of {n} missed minutely partitions (catchUp All, concurrency "
        f"{concurrency}, {POD_TIME} pods), times from the operator's spawn:"
    )
    say(f"      operator healthy            {catch['ready']:6.1f} s")
    say(f"      first Job created           {catch['first_job']:6.1f} s")
    say(f"      last ({n}th) Job created   {catch['last_job']:6.1f} s")
    say(f"      all {n} succeeded (ledger) {catch['all_succeeded']:6.1f} s")
    say(
        f"      Jobs created per second: {(catch['jobs_created'] - 1) / created_span:.1f} "
        f"(first to last), {catch['jobs_created'] / catch['last_job']:.1f} (from the spawn); "
        f"partitions succeeded per second from the spawn: {n / catch['all_succeeded']:.1f}"
    )
    say(
        f"      Jobs: {catch['jobs_created']} created for {catch['partitions_with_jobs']} "
        f"partitions, {catch['duplicates']} partitions with a second Job"
        + (f", outside 0..{n - 1}: {catch['outside']}" if catch["outside"] else "")
        + f"; {catch['jobs_finished']} seen finished; ledger succeeded {catch['ledger_succeeded']}"
    )
    say(
        f"      status.runs: considered {runs.get('considered')}, scheduled "
        f"'{runs.get('scheduled')}', missedSet '{runs.get('missedSet', '')}', counts {counts}, "
        f"lagSeconds {runs.get('lagSeconds')}; events {dict(catch['events'])}"
    )
    say(
        f"      operator: CPU {catch['cpu']:.1f} s (start-up included), "
        f"{catch['passes']:.0f} reconcile passes, peak RSS "
        f"{catch['rss'].get('VmHWM', 0) / KIB:.0f} MiB; writes (Jobs, backfill.dev) "
        f"{catch['writes']} ({catch['writes'] / n:.2f} per partition): {catch['writes_line']}"
    )
    say(
        f"      Jobs ADDED -> Complete: p50 {percentile(catch['job_run'], 50):.2f} s, p90 "
        f"{percentile(catch['job_run'], 90):.2f} s; Jobs in flight (created, not finished) "
        f"{catch['in_flight']:.0f} on average of {concurrency} slots; slot refill "
        f"(Complete -> next Job ADDED) p50 {percentile(catch['refill'], 50):.2f} s, p90 "
        f"{percentile(catch['refill'], 90):.2f} s, p99 {percentile(catch['refill'], 99):.2f} s;"
        f" mean pass {catch['pass_mean'] * 1000:.0f} ms"
    )
    comps = catch["components"]
    say(
        f"      CPU from the spawn to all succeeded ({catch['all_succeeded']:.0f} s): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(comps.items(), key=lambda kv: -kv[1]))
        + f"; {sum(comps.values()) / catch['all_succeeded']:.2f} cores on average"
    )
    say(f"      operator log: {catch['log'][0]} warnings, {catch['log'][1]} errors")
    for line in catch["log"][2]:
        say(f"         {line[:200]}")

    return [
        Result(
            BENCH,
            f"catch-up {n} missed: first Job after operator start",
            f"{catch['first_job']:.1f} s",
        ),
        Result(
            BENCH,
            f"catch-up {n} missed: last Job after operator start",
            f"{catch['last_job']:.1f} s",
        ),
        Result(
            BENCH, f"catch-up {n} missed: all succeeded (ledger)", f"{catch['all_succeeded']:.1f} s"
        ),
        Result(
            BENCH,
            "catch-up: Jobs created per second (first to last)",
            f"{(catch['jobs_created'] - 1) / created_span:.1f}",
        ),
        Result(
            BENCH,
            "catch-up: partitions with two Jobs",
            str(catch["duplicates"]),
            "0",
            catch["duplicates"] == 0,
        ),
    ]


def report_idle(idle: dict[str, Any]) -> list[Result]:
    """Print part 2's numbers; return its rows of the summary table."""
    m = idle["count"]
    idle_run = idle["idle"]
    idle_pct = _pct(idle_run["cpu"], idle_run["wall"])
    say(f"   2. {m} idle scheduled PartitionedJobs (cron '{idle['cron']}', start {idle['start']})")
    if "baseline" in idle:
        base = idle["baseline"]
        say(
            f"      operator alone, no PartitionedJob: {_pct(base['cpu'], base['wall']):.2f}% of "
            f"one core over {base['wall']:.0f} s ({base['passes']:.0f} passes, RSS "
            f"{base['rss'].get('VmRSS', 0) / KIB:.0f} MiB)"
        )
    say(
        f"      start-up: healthy after {idle['ready']:.1f} s ({idle['cpu_ready']:.1f} s CPU); "
        f"first status.runs after {idle['first_runs']:.1f} s; all {idle['with_runs']} after "
        f"{idle['taken_on']:.1f} s, {idle['cpu_taken']:.1f} s CPU from the spawn "
        f"({idle['cpu_taken'] - idle['cpu_ready']:.1f} s after healthy); burst over (CPU under "
        f"5% of a core) {idle['burst_end']:.1f} s after the start, {idle['cpu_burst']:.1f} s "
        f"CPU in all ({(idle['cpu_burst'] - idle['cpu_ready']) / m * 1000:.1f} ms per "
        f"PartitionedJob after healthy)"
    )
    say(
        f"      idle {idle_run['wall']:.0f} s: CPU {idle_run['cpu']:.2f} s = {idle_pct:.2f}% "
        f"of one core, {idle_pct / m * 1000:.2f} milli-% ({idle_pct / m:.5f}%) per schedule; "
        f"{idle_run['passes']:.0f} reconcile passes; writes {idle_run['writes']}: "
        f"{idle_run['writes_line']}; reads: {idle_run['reads_line']}"
    )
    rss = idle_run["rss"]
    say(
        f"      operator RSS {rss.get('VmRSS', 0) / KIB:.0f} MiB after the idle interval, peak "
        f"{rss.get('VmHWM', 0) / KIB:.0f} MiB"
    )
    scrape, base_scrape = idle["scrape"], idle.get("baseline_scrape")
    scrape_pct = scrape["cpu"] / 15 * 100
    say(
        f"      one GET /metrics (Prometheus scrape): {scrape['series']:,} series, "
        f"{scrape['bytes'] / KIB:,.0f} KiB, {scrape['wall'] * 1000:.0f} ms, operator CPU "
        f"{scrape['cpu'] * 1000:.0f} ms (median of 3); series with "
        f'backfill="schedule:idle-0000": {scrape["probe_series"]}, with "idle-0000": '
        f"{idle['scrape_named']}"
        + (
            f"; with no PartitionedJob: {base_scrape['series']:,} series, "
            f"{base_scrape['cpu'] * 1000:.0f} ms CPU"
            if base_scrape
            else ""
        )
    )
    say(
        f"      idle plus a scrape every 15 s: {idle_pct + scrape_pct:.2f}% of one core "
        f"(every 30 s: {idle_pct + scrape_pct / 2:.2f}%)"
    )
    sample = idle["sample_runs"]
    say(
        f"      a sample status.runs: nextPartition {sample.get('nextPartition')}, nextRunTime "
        f"{sample.get('nextRunTime')}, message '{sample.get('message')}'"
    )
    say(f"      operator log: {idle['log'][0]} warnings, {idle['log'][1]} errors")
    for line in idle["log"][2]:
        say(f"         {line[:200]}")

    return [
        Result(
            BENCH,
            f"{m} idle schedules: take-on after start (wall, CPU)",
            f"{idle['taken_on']:.1f} s, {idle['cpu_taken']:.1f} s CPU; quiet after "
            f"{idle['burst_end']:.1f} s, {idle['cpu_burst']:.1f} s CPU",
        ),
        Result(
            BENCH,
            f"{m} idle schedules: operator CPU",
            f"{idle_pct:.2f}% of one core",
            "< 5%",
            idle_pct < 5,
        ),
        Result(
            BENCH,
            f"{m} idle schedules: operator CPU with a scrape every 15 s",
            f"{idle_pct + scrape_pct:.2f}% of one core",
            "< 5%",
            idle_pct + scrape_pct < 5,
        ),
        Result(
            BENCH,
            f"{m} idle schedules: /metrics size, scrape CPU",
            f"{scrape['series']:,} series, {scrape['bytes'] / KIB:,.0f} KiB, "
            f"{scrape['cpu'] * 1000:.0f} ms CPU",
        ),
        Result(
            BENCH,
            f"{m} idle schedules: operator RSS",
            f"{rss.get('VmRSS', 0) / KIB:.0f} MiB (peak {rss.get('VmHWM', 0) / KIB:.0f})",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--missed", type=int, default=1000, help="missed minutely partitions (0: skip part 1)"
    )
    parser.add_argument("--concurrency", type=int, default=100, help="runs.concurrency (part 1)")
    parser.add_argument(
        "--idle-jobs", type=int, default=1000, help="idle PartitionedJobs (0: skip part 2)"
    )
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle interval")
    parser.add_argument(
        "--baseline-seconds", type=float, default=15.0, help="operator-alone interval (0: skip)"
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    n, m = args.missed, args.idle_jobs

    say(
        f"== schedule ({load_average()}): catch-up of {n} missed minutely partitions after a "
        f"restart; {m} idle schedules"
    )
    catch: dict[str, Any] | None = None
    idle: dict[str, Any] | None = None
    with fresh_cluster(BENCH) as cluster:
        assert cluster.data_dir is not None
        clients = Clients.connect(cluster.kubeconfig)
        operator = Operator(cluster, cluster.data_dir / "operator.log")
        try:
            try:
                if n > 0:
                    catch = run_catch_up(clients, cluster, operator, n, args.concurrency)
                    say(
                        f"   ... all {n} succeeded in the ledger after "
                        f"{catch['all_succeeded']:.1f} s"
                    )
                    deleted = delete_catch_up(clients, catch["namespace"], catch["name"])
                    catch["log"] = log_findings(operator.log_path)
                    operator.stop()
                    say(
                        f"   deleted the catch-up PartitionedJob in {deleted:.1f} s; "
                        "operator stopped"
                    )
                if m > 0:
                    idle = run_idle(
                        clients, cluster, operator, m, args.idle_seconds, args.baseline_seconds
                    )
                    idle["log"] = log_findings(operator.log_path)
            finally:
                operator.stop()
        except BaseException:
            say(f"   operator log (tail):\n{operator.log_tail()}")
            raise
        finally:
            clients.close()

    print()
    say(f"== schedule results ({load_average()})")
    results: list[Result] = []
    ok = True
    if catch is not None:
        results += report_catch_up(catch, n, args.concurrency)
        ok = (
            catch["duplicates"] == 0
            and catch["ledger_succeeded"] == n
            and catch["partitions_with_jobs"] == n
        )
    if idle is not None:
        results += report_idle(idle)
        ok = ok and idle["with_runs"] == m
    write_results(args.json, results)
    print()
    print_results(results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
