"""Scale benchmark: one Backfill of 1,000,000 minutely partitions (about 694 days).

(a) In process, pure: the planning of one reconcile pass, as the operator does it, timed step
    by step (``build_space`` and ``resolve_selection`` of ``planning.verdict``,
    ``planning.decide.plan`` with the observed Jobs, ``planning.status.compose_status``) for
    several states of the Backfill, and the size of the status it writes (compact JSON, as
    stored), with the PartitionedJob's ledger size:

    * first pass: nothing recorded, no Jobs;
    * steady state half-way: 499,950 succeeded, 50 Jobs active, 10 of them just finished;
    * all done, 1% failed at random (10,000 isolated failures);
    * worst case: every partition done, every other one failed (alternating);
    * 10,000 failed partitions waiting for a retry (each one listed with details).

    Goals: planning under 2 s; status under 256 KiB.

(b) On a fresh local control plane, with the operator running as users run it: a real
    1,000,000-partition Backfill (concurrency 50, 1 s pods) for ``--seconds`` (60): time to the
    first Job, throughput (Jobs finished per second), the operator's peak RSS (``VmHWM``, goal
    under 300 MB), the status size as stored (``kubectl get backfill -o json``); then the
    Backfill is deleted. Before the operator starts, the worst-case status from (a) is written
    to a scratch Backfill, to show whether the apiserver and etcd accept it at all.

Numbers only, no assertions. Run: ``python bench/bench_scale.py [--seconds 60] [--json F]``;
``--no-cluster`` runs (a) only.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import random
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from common import (
    KIB,
    Clients,
    Event,
    Lifecycle,
    Operator,
    Result,
    Watch,
    backfill,
    compact,
    create_namespace,
    fresh_cluster,
    job_finished,
    job_template,
    job_watch,
    list_rv,
    load_average,
    partitioned_job,
    print_results,
    say,
    wait_until,
    write_results,
)

from backfill_operator.api.model import (
    BackfillSpec,
    BackfillStatus,
    FailedPartition,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    PartitionSets,
    RunningPartition,
)
from backfill_operator.planning import verdict as planner
from backfill_operator.planning.decide import plan
from backfill_operator.planning.naming import job_name, template_hash
from backfill_operator.planning.observed import JobState, ObservedJob
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.space import Selection
from backfill_operator.planning.state import LaunchRequest
from backfill_operator.planning.status import compose_status

BENCH = "scale"
PARTITIONS = 1_000_000
CONCURRENCY = 50
#: 2023-01-01T00:00 .. 2024-11-25T10:39 UTC is exactly 1,000,000 minutes.
RANGE_FROM, RANGE_TO = "2023-01-01T00:00", "2024-11-25T10:39"
FIRST = datetime(2023, 1, 1)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NAME, UID = "minutely-1m", "6f1c2f4e-0000-4000-8000-000000000001"
FAILED_MESSAGE = "BackoffLimitExceeded: Job has reached the specified backoff limit"


def partitioned_job_body(name: str) -> dict[str, Any]:
    """The minutely PartitionedJob (UTC, from 2023-01-01)."""
    return partitioned_job(name, {"jobTemplate": job_template()}, start=FIRST)


def backfill_body(name: str, job: str) -> dict[str, Any]:
    """The 1,000,000-partition Backfill (RANGE_FROM .. RANGE_TO)."""
    return backfill(name, job, PARTITIONS, CONCURRENCY, start=FIRST)


# ------------------------------------------------------------------- (a) pure planning


@dataclass
class Scenario:
    """A state of the Backfill: its previous status, the Jobs listed, the job's ledger."""

    name: str
    previous: BackfillStatus
    jobs: list[ObservedJob]
    ledger: PartitionLedger
    spec: BackfillSpec


def _observed(selection: Selection, index: int, state: JobState, t_hash: str) -> ObservedJob:
    started = NOW - timedelta(seconds=2)
    return ObservedJob(
        name=job_name(NAME, UID, index, selection.key(index), 1),
        index=index,
        attempt=1,
        key=selection.key(index),
        state=state,
        owned=True,
        created=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        start_time=started,
        finish_time=None if state is JobState.ACTIVE else NOW - timedelta(milliseconds=200),
    )


def scenarios(job: PartitionedJobSpec) -> list[Scenario]:
    """The Backfill states of (a); see the module docstring."""
    spec = BackfillSpec.model_validate(
        {"jobRef": {"name": "x"}, "range": {"from": RANGE_FROM, "to": RANGE_TO}, "concurrency": 50}
    )
    retry_spec = spec.model_copy(
        update={"retries": spec.retries.model_copy(update={"limit": 3, "backoff_seconds": 600})}
    )
    space = planner.build_space(job, NOW)
    selection = planner.resolve_selection(space, spec, BackfillStatus())
    fingerprint = space.fingerprint
    t_hash = template_hash(job.job_template)
    first = BackfillStatus()

    def status(
        ok: IndexSet,
        bad: IndexSet,
        running: list[int],
        failures: list[FailedPartition] | None = None,
    ) -> BackfillStatus:
        return BackfillStatus(
            partitioning=fingerprint,
            partitions=PartitionSets(
                succeeded=str(ok), failed=str(bad), running=str(IndexSet.from_indices(running))
            ),
            running=[
                RunningPartition(
                    key=selection.key(i),
                    index=i,
                    job=job_name(NAME, UID, i, selection.key(i), 1),
                    attempt=1,
                    start_time="2025-12-31T23:59:58Z",
                )
                for i in running
            ],
            failures=failures or [],
            template_hash=t_hash,
            start_time="2025-12-01T00:00:00Z",
        )

    half = PARTITIONS // 2
    # Steady state: 0 .. half-51 succeeded, the next 50 running; 10 of those just finished.
    running = list(range(half - 50, half))
    steady_jobs = [
        _observed(selection, i, JobState.SUCCEEDED if i < half - 40 else JobState.ACTIVE, t_hash)
        for i in running
    ]
    steady_ok = IndexSet.from_range(0, half - 51)
    steady = status(steady_ok, IndexSet.parse(""), running)

    rng = random.Random(7)
    bad_1pct = IndexSet.from_indices(sorted(rng.sample(range(PARTITIONS), PARTITIONS // 100)))
    ok_1pct = IndexSet.from_range(0, PARTITIONS - 1).difference(bad_1pct)
    scattered = status(ok_1pct, bad_1pct, [])

    evens = IndexSet.from_indices(range(0, PARTITIONS, 2))
    odds = IndexSet.from_indices(range(1, PARTITIONS, 2))
    worst = status(odds, evens, [])

    waiting = sorted(rng.sample(range(half - 50), 10_000))
    retry_at = (NOW + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    retry_failures = [
        FailedPartition(
            key=selection.key(i),
            index=i,
            job=job_name(NAME, UID, i, selection.key(i), 1),
            attempts=1,
            message=FAILED_MESSAGE,
            retry_at=retry_at,
        )
        for i in waiting
    ]
    retry_ok = IndexSet.from_range(0, half - 51).difference(IndexSet.from_indices(waiting))
    retrying = status(retry_ok, IndexSet.parse(""), running, retry_failures)
    active_only = [j for j in steady_jobs if j.state is JobState.ACTIVE]

    def ledger(ok: IndexSet, bad: IndexSet) -> PartitionLedger:
        return PartitionLedger(succeeded=str(ok), failed=str(bad))

    return [
        Scenario("first pass (empty status, no Jobs)", first, [], PartitionLedger(), spec),
        Scenario(
            "steady, half done, 50 Jobs (10 just finished)",
            steady,
            steady_jobs,
            ledger(steady_ok, IndexSet.parse("")),
            spec,
        ),
        Scenario(
            "all done, 1% failed at random",
            scattered,
            active_only,
            ledger(ok_1pct, bad_1pct),
            spec,
        ),
        Scenario("worst: all done, every other one failed", worst, [], ledger(odds, evens), spec),
        Scenario(
            "10,000 failed partitions waiting to retry",
            retrying,
            active_only,
            ledger(retry_ok, IndexSet.parse("")),
            retry_spec,
        ),
    ]


@dataclass
class PlanTiming:
    """Seconds per step of one pass and the sizes it produced."""

    build_space: float
    resolve: float
    plan: float
    status: float
    status_bytes: int
    ledger_bytes: int
    launches: int
    phase: str
    payload: dict[str, Any]

    @property
    def total(self) -> float:
        """build_space + resolve_selection + plan + status."""
        return self.build_space + self.resolve + self.plan + self.status


def one_pass(job: PartitionedJobSpec, scenario: Scenario) -> PlanTiming:
    """Time one planning pass, as ``Reconciler._reconcile`` runs it (selection not cached)."""
    clock = time.perf_counter
    t0 = clock()
    space = planner.build_space(job, NOW)
    t1 = clock()
    selection = planner.resolve_selection(space, scenario.spec, scenario.previous)
    t2 = clock()
    job_view = planner.PartitionedJobView(
        name="x",
        spec=job,
        status=PartitionedJobStatus(partitioning=space.fingerprint, ledger=scenario.ledger),
    )
    view = planner.BackfillView(
        name=NAME,
        namespace="bench",
        uid=UID,
        generation=1,
        spec=scenario.spec,
        status=scenario.previous,
    )
    # What planning.verdict.judge returns for this Backfill, from the space and selection above.
    verdict = planner.Verdict(
        view, job_view, space, selection, template_hash(job.job_template), invalid=None
    )
    decision = plan(verdict, scenario.jobs, NOW)
    t3 = clock()
    launched: list[LaunchRequest] = list(decision.launches)
    new_status = compose_status(verdict, decision.state, launched, NOW)
    t4 = clock()
    ledger = scenario.ledger
    if decision.ledger is not None:
        ledger = decision.ledger.apply(job_view.status)
    return PlanTiming(
        build_space=t1 - t0,
        resolve=t2 - t1,
        plan=t3 - t2,
        status=t4 - t3,
        status_bytes=compact(payload := new_status.to_api()),
        ledger_bytes=compact(ledger.to_api()),
        launches=len(decision.launches),
        phase=str(new_status.phase),
        payload=payload,
    )


def run_planning(repeat: int) -> list[tuple[str, PlanTiming]]:
    """Run (a): every scenario ``repeat`` times; keep the median by total time."""
    job = PartitionedJobSpec.model_validate(partitioned_job_body("x")["spec"])
    started = time.perf_counter()
    cases = scenarios(job)
    say(f"   built the scenarios in {time.perf_counter() - started:.1f} s")
    out: list[tuple[str, PlanTiming]] = []
    for case in cases:
        runs = []
        for _ in range(repeat):
            gc.collect()
            runs.append(one_pass(job, case))
        runs.sort(key=lambda t: t.total)
        median = runs[len(runs) // 2]
        out.append((case.name, median))
        say(
            f"   {case.name:46} {median.total:6.3f} s (space {median.build_space:.3f}, "
            f"select {median.resolve:.3f}, plan {median.plan:.3f}, status {median.status:.3f}); "
            f"status {median.status_bytes / KIB:8.1f} KiB, ledger {median.ledger_bytes / KIB:8.1f}"
            f" KiB; {median.launches} launches; phase {median.phase}"
        )
    return out


# ---------------------------------------------------------------- (b) on the cluster


def probe_status(clients: Clients, namespace: str, payload: dict[str, Any]) -> tuple[str, str]:
    """Write status ``payload`` to a scratch Backfill (no operator running yet).

    Returns (short outcome, detail): whether the apiserver and etcd store a status that big.
    """
    name = "status-probe"
    created = clients.create_custom(namespace, "backfills", backfill_body(name, "nothing"))
    created["status"] = payload
    try:
        clients.replace_custom_status(namespace, "backfills", created)
        short = detail = "stored"
    except Exception as exc:  # the apiserver's answer is the result
        detail = getattr(exc, "body", None) or str(exc)
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            detail = json.loads(detail).get("message", detail)
        short = f"rejected (HTTP {getattr(exc, 'status', '?')})"
        detail = f"{short}: {str(detail)[:200]}"
    finally:
        clients.delete_custom(namespace, "backfills", name)
    return short, detail


def run_cluster(seconds: float, probes: list[tuple[str, PlanTiming]]) -> dict[str, Any]:
    """Run (b); see the module docstring."""
    namespace = "bench-scale"
    with fresh_cluster(BENCH) as cluster:
        assert cluster.data_dir is not None
        clients = Clients.connect(cluster.kubeconfig)
        try:
            create_namespace(clients, namespace)
            stored: list[tuple[str, int, str]] = []
            for name, timing in probes:
                short, detail = probe_status(clients, namespace, timing.payload)
                size = timing.status_bytes
                say(f"   status of '{name}' ({size / KIB:.0f} KiB) written directly: {detail}")
                stored.append((name, size, short))
            operator = Operator(cluster, cluster.data_dir / "operator.log")
            try:
                with operator:
                    run = _run_with_operator(clients, cluster, operator, namespace, seconds)
                    return {**run, "probes": stored}
            except BaseException:
                say(f"   operator log (tail):\n{operator.log_tail()}")
                raise
        finally:
            clients.close()


def _run_with_operator(
    clients: Clients, cluster: Any, operator: Operator, namespace: str, seconds: float
) -> dict[str, Any]:
    job = "minutely"
    clients.create_custom(namespace, "partitionedjobs", partitioned_job_body(job))
    time.sleep(2)
    rss_idle = operator.proc_status().get("VmRSS", 0)
    metrics_before = operator.metric_values()
    cpu_before = operator.cpu_seconds()
    first_job = threading.Event()

    def on_job(event: Event) -> None:
        if event.type == "ADDED":
            first_job.set()

    rv = list_rv(clients.batch.list_namespaced_job(namespace, _preload_content=False))
    with Watch(job_watch(clients, namespace, rv), rv, on_job) as jobs:
        started = time.monotonic()
        clients.create_custom(namespace, "backfills", backfill_body(NAME, job))
        say(f"   created Backfill {NAME} ({PARTITIONS:,} partitions); running for {seconds:.0f} s")
        first_job.wait(timeout=seconds)
        deadline = started + seconds
        while time.monotonic() < deadline:
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
            life = Lifecycle.of(jobs.events, job_finished)
            rss = operator.proc_status()
            say(
                f"   ... {time.monotonic() - started:5.1f} s: {len(life.added)} Jobs created, "
                f"{len(life.finished)} finished; operator RSS {rss.get('VmRSS', 0) / KIB:.0f} "
                f"MiB (peak {rss.get('VmHWM', 0) / KIB:.0f} MiB)"
            )
        window = time.monotonic() - started
    if jobs.error is not None:
        raise RuntimeError(f"watch failed: {jobs.error!r}")
    life = Lifecycle.of(jobs.events, job_finished)
    peak = operator.proc_status().get("VmHWM", 0)
    metrics_after = operator.metric_values()
    cpu = operator.cpu_seconds() - cpu_before
    raw = cluster.kubectl("-n", namespace, "get", "backfill", NAME, "-o", "json").stdout
    body = json.loads(raw)
    pj = json.loads(
        cluster.kubectl("-n", namespace, "get", "partitionedjob", job, "-o", "json").stdout
    )
    first = min(life.added.values()) - started if life.added else float("nan")

    deleting = time.monotonic()
    clients.delete_custom(namespace, "backfills", NAME)

    def gone() -> bool:
        return not clients.list_custom(namespace, "backfills")

    wait_until(gone, 120, f"Backfill {NAME} to be deleted", 0.2)
    deleted_in = time.monotonic() - deleting

    def delta(series: str) -> float:
        return metrics_after.get(series, 0.0) - metrics_before.get(series, 0.0)

    return {
        "first_job": first,
        "window": window,
        "created": len(life.added),
        "finished": len(life.finished),
        "rss_idle_kib": rss_idle,
        "peak_rss_kib": peak,
        "status_bytes": compact(body.get("status") or {}),
        "object_bytes": compact(body),
        "ledger_bytes": compact(((pj.get("status") or {}).get("ledger")) or {}),
        "succeeded": int(((body.get("status") or {}).get("counts") or {}).get("succeeded") or 0),
        "passes": delta("backfill_reconcile_duration_seconds_count"),
        "pass_seconds": delta("backfill_reconcile_duration_seconds_sum"),
        "cpu": cpu,
        "deleted_in": deleted_in,
    }


# --------------------------------------------------------------------------------- main


def _fmt_kib(n: int) -> str:
    return f"{n} B" if n < KIB else f"{n / KIB:.1f} KiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the (b) run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per (a) scenario")
    parser.add_argument("--no-cluster", action="store_true", help="run (a) only")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()

    say(
        f"== scale ({load_average()}): (a) planning one pass of a {PARTITIONS:,}-partition Backfill"
    )
    planning = run_planning(args.repeat)
    results: list[Result] = []
    for name, timing in planning:
        results.append(
            Result(BENCH, f"planning: {name}", f"{timing.total:.3f} s", "< 2 s", timing.total < 2)
        )
    for name, timing in planning:
        results.append(
            Result(
                BENCH,
                f"status size: {name}",
                _fmt_kib(timing.status_bytes),
                "< 256 KiB",
                timing.status_bytes < 256 * KIB,
            )
        )
    if not args.no_cluster:
        say(f"== scale (b): the operator on {PARTITIONS:,} partitions for {args.seconds:.0f} s")
        big = [(name, t) for name, t in planning if t.status_bytes >= 256 * KIB]
        run = run_cluster(args.seconds, big)
        throughput = run["finished"] / run["window"]
        peak_mb = run["peak_rss_kib"] * 1024 / 1e6
        passes = run["passes"]
        say(f"== scale (b) results ({load_average()})")
        say(f"   time to first Job: {run['first_job'] * 1000:.0f} ms")
        say(
            f"   {run['created']} Jobs created, {run['finished']} finished in "
            f"{run['window']:.0f} s: "
            f"{throughput:.1f} partitions/s (status counts {run['succeeded']} succeeded)"
        )
        say(
            f"   operator RSS: {run['rss_idle_kib'] / KIB:.0f} MiB idle, peak (VmHWM) "
            f"{run['peak_rss_kib'] / KIB:.0f} MiB = {peak_mb:.0f} MB; CPU {run['cpu']:.1f} s "
            f"({run['cpu'] / run['window'] * 100:.0f}% of one core)"
        )
        say(
            f"   {passes:.0f} reconcile passes, mean "
            f"{run['pass_seconds'] / passes * 1000 if passes else float('nan'):.0f} ms"
        )
        say(
            f"   status as stored: {_fmt_kib(run['status_bytes'])} (whole object "
            f"{_fmt_kib(run['object_bytes'])}); PartitionedJob ledger "
            f"{_fmt_kib(run['ledger_bytes'])}"
        )
        say(f"   Backfill deleted (finalizer released) in {run['deleted_in']:.1f} s")
        results += [
            Result(BENCH, "cluster: time to first Job", f"{run['first_job'] * 1000:.0f} ms"),
            Result(BENCH, "cluster: throughput", f"{throughput:.1f} partitions/s"),
            Result(
                BENCH, "cluster: operator peak RSS", f"{peak_mb:.0f} MB", "< 300 MB", peak_mb < 300
            ),
            Result(
                BENCH,
                "cluster: status size as stored",
                _fmt_kib(run["status_bytes"]),
                "< 256 KiB",
                run["status_bytes"] < 256 * KIB,
            ),
        ]
        results += [
            Result(BENCH, f"cluster: {size / KIB:.0f} KiB status ({name}) written", short)
            for name, size, short in run["probes"]
        ]
    write_results(args.json, results)
    print()
    print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
