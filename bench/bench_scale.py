"""Scale benchmark: one Backfill of 1,000,000 minutely partitions (about 694 days).

(a) In process, pure: one reconcile pass as the operator runs it, timed step by step: reading
    the stored statuses (``BackfillStatus`` and the PartitionedJob's status, parsed from the
    JSON the apiserver holds), ``planning.verdict.judge`` (partition space and selection, not
    cached), ``planning.decide.plan`` with the observed Jobs, ``planning.status.compose_status``
    and writing (``compacted().to_api()`` of the new status and of the merged ledger), for
    several states of the Backfill, with the size of the status and of the PartitionedJob's
    ledger as written (compact JSON, as stored):

    * first pass: nothing recorded, no Jobs;
    * steady state half-way: 499,950 succeeded, 50 Jobs active, 10 of them just finished;
    * all done, 1% failed at random (10,000 isolated failures);
    * all done, every other partition failed (alternating: the most intervals);
    * all done, each partition succeeded or failed at random (50/50: the most information);
    * 10,000 failed partitions waiting for a retry, all at the same time;
    * 50,000 failed partitions waiting for a retry at 3,000 different seconds, attempts 1 to 3;
    * 50,000 failed partitions whose retry is due (50 Jobs active: the pass launches none);
    * a job with 3 steps (no dependencies between them) over 333,333 partitions, each
      (partition, step) succeeded or failed at random (1,000,000 units).

    States that hold retries or steps are first written by one pass (so the measured pass reads
    what the operator itself stores). Goals: planning under 2 s; status under 256 KiB.

(c) The command line at 1,000,000 partitions, in process (a fake API serving the stored
    objects): ``kubectl backfill status NAME`` (text), ``status NAME -o json`` and ``plan -o
    json`` (the preview of a Backfill of every partition), for the alternating and the random
    states, and ``status pj/NAME`` of the job; seconds per command (median of 3). Goal: under
    2 s.

(b) On a fresh local control plane, with the operator running as users run it: a real
    1,000,000-partition Backfill (concurrency 50, 1 s pods) for ``--seconds`` (60): time to the
    first Job, throughput (Jobs finished per second), the operator's peak RSS (``VmHWM``, goal
    under 300 MB), the status size as stored (``kubectl get backfill -o json``); then the
    Backfill is deleted. Before the operator starts, the largest statuses of (a) are written to
    a scratch Backfill, to show whether the apiserver and etcd accept them.

(d) Batched, on another fresh control plane with the operator: a real Backfill of
    ``--batched-partitions`` (1,000,000) minutely partitions with ``partitionsPerJob: 1000`` on
    the Backfill's spec (each Job runs a contiguous batch: labels
    ``backfill.dev/partition-index`` = its first partition, ``backfill.dev/partition-count`` =
    how many), concurrency 50 (Jobs), the same 1 s pods, run **to completion**: wall time from
    the create to phase ``Succeeded`` (goal under 180 s; after 900 s what was reached is
    reported), Jobs created (1,000 expected) and the partitions their labels cover, time to the
    first Job, the operator's peak RSS (``VmHWM``, goal under 300 MB), CPU seconds and reconcile
    passes, the status size as stored and ``status.counts`` (all 1,000,000 succeeded).

Numbers only, no assertions. Run: ``python bench/bench_scale.py [--seconds 60] [--json F]``;
``--no-cluster`` runs (a) and (c) only, ``--no-batched`` skips (d), ``--only-batched`` runs (d)
only (``--batched-partitions N``, ``--partitions-per-job M``: other sizes).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from common import (
    KIB,
    Clients,
    Event,
    Lifecycle,
    Operator,
    OperatorCost,
    OperatorReadings,
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
    operator_events,
    operator_on_fresh_cluster,
    partitioned_job,
    print_results,
    run_backfill,
    say,
    wait_until,
    write_breakdown,
    write_results,
)
from rich.console import Console

from backfill_operator import clock
from backfill_operator.api import labels
from backfill_operator.api.model import (
    BackfillSpec,
    BackfillStatus,
    FailedPartition,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    PartitionSets,
    RunningPartition,
    StepLedger,
    StepStatus,
)
from backfill_operator.cli.client import Target
from backfill_operator.cli.commands import job_status as job_status_command
from backfill_operator.cli.commands import status as status_command
from backfill_operator.cli.commands import submit
from backfill_operator.cli.commands.session import Session
from backfill_operator.planning import verdict as planner
from backfill_operator.planning.decide import plan
from backfill_operator.planning.naming import job_name
from backfill_operator.planning.observed import JobState, ObservedJob
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.state import LaunchRequest
from backfill_operator.planning.status import compose_status

BENCH = "scale"
PARTITIONS = 1_000_000
CONCURRENCY = 50
#: 2023-01-01T00:00 .. 2024-11-25T10:39 UTC is exactly 1,000,000 minutes.
RANGE_FROM, RANGE_TO = "2023-01-01T00:00", "2024-11-25T10:39"
#: The 3-step job's Backfill: 333,333 minutes from RANGE_FROM.
STEPS_PARTITIONS = 333_333
STEPS = ("s0", "s1", "s2")
FIRST = datetime(2023, 1, 1)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NAME, UID = "minutely-1m", "6f1c2f4e-0000-4000-8000-000000000001"
FAILED_MESSAGE = "BackoffLimitExceeded: Job has reached the specified backoff limit"
#: Goals of issue 3 and 13.
PLAN_GOAL_SECONDS = 2.0
STATUS_GOAL_BYTES = 256 * KIB
CLI_GOAL_SECONDS = 2.0
RSS_GOAL_MB = 300.0
#: (d): partitions per Job, the goal for the wall time and how long to wait for the end.
PER_JOB = 1000
BATCHED_GOAL_SECONDS = 180.0
BATCHED_TIMEOUT = 900.0


def partitioned_job_body(name: str, steps: tuple[str, ...] = ()) -> dict[str, Any]:
    """The minutely PartitionedJob (UTC, from 2023-01-01); ``steps``: independent steps."""
    if not steps:
        return partitioned_job(name, {"jobTemplate": job_template()}, start=FIRST)
    return partitioned_job(
        name,
        {"steps": [{"name": s, "jobTemplate": job_template()} for s in steps]},
        start=FIRST,
    )


def backfill_body(name: str, job: str, partitions: int = PARTITIONS) -> dict[str, Any]:
    """The Backfill of the first ``partitions`` minutes (all 1,000,000: RANGE_FROM .. RANGE_TO)."""
    return backfill(name, job, partitions, CONCURRENCY, start=FIRST)


def _text(members: IndexSet) -> str:
    """A set as a status holds it (``stored()``; plain text before issue 13)."""
    return members.stored() if hasattr(members, "stored") else str(members)


def _stored(model: Any) -> Any:
    """What the apiserver holds of a status model: the written form, as JSON data."""
    return json.loads(json.dumps(model.compacted().to_api()))


# ------------------------------------------------------------------- (a) pure planning


@dataclass
class Scenario:
    """A state of the Backfill: its stored status, the Jobs listed, the job's stored ledger.

    ``settle``: run one pass first and measure the pass after it (on what that pass wrote).
    """

    name: str
    job: PartitionedJobSpec
    spec: BackfillSpec
    previous: dict[str, Any]
    ledger: dict[str, Any]
    jobs: list[ObservedJob]
    settle: bool = False
    short: str = ""


def _observed(
    key: Callable[[int], str], index: int, state: JobState, step: str = "", attempt: int = 1
) -> ObservedJob:
    started = NOW - timedelta(seconds=2)
    return ObservedJob(
        name=job_name(NAME, UID, index, key(index), attempt, step),
        index=index,
        attempt=attempt,
        key=key(index),
        state=state,
        owned=True,
        created=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        start_time=started,
        finish_time=None if state is JobState.ACTIVE else NOW - timedelta(milliseconds=200),
        step=step,
    )


def _spec(partitions: int, **changes: Any) -> BackfillSpec:
    body = backfill_body(NAME, "x", partitions)["spec"]
    return BackfillSpec.model_validate({**body, **changes})


def scenarios() -> list[Scenario]:
    """The Backfill states of (a); see the module docstring."""
    job = PartitionedJobSpec.model_validate(partitioned_job_body("x")["spec"])
    spec = _spec(PARTITIONS)
    retry_spec = _spec(PARTITIONS, retries={"limit": 3, "backoffSeconds": 600})
    space = planner.build_space(job, NOW)
    selection = planner.resolve_selection(space, spec, BackfillStatus())
    fingerprint = space.fingerprint
    key = selection.key

    def running_entries(indices: list[int]) -> list[RunningPartition]:
        return [
            RunningPartition(
                key=key(i),
                index=i,
                job=job_name(NAME, UID, i, key(i), 1),
                attempt=1,
                start_time="2025-12-31T23:59:58Z",
            )
            for i in indices
        ]

    def status(
        ok: IndexSet,
        bad: IndexSet,
        running: list[int],
        failures: list[FailedPartition] | None = None,
    ) -> dict[str, Any]:
        return _stored(
            BackfillStatus(
                partitioning=fingerprint,
                partitions=PartitionSets(
                    succeeded=_text(ok),
                    failed=_text(bad),
                    running=_text(IndexSet.from_indices(running)),
                ),
                running=running_entries(running),
                failures=failures or [],
                start_time="2025-12-01T00:00:00Z",
            )
        )

    def ledger(ok: IndexSet, bad: IndexSet) -> dict[str, Any]:
        return _stored(PartitionLedger(succeeded=_text(ok), failed=_text(bad)))

    everything = IndexSet.from_range(0, PARTITIONS - 1)
    half = PARTITIONS // 2
    # Steady state: 0 .. half-51 succeeded, the next 50 running; 10 of those just finished.
    running = list(range(half - 50, half))
    steady_jobs = [
        _observed(key, i, JobState.SUCCEEDED if i < half - 40 else JobState.ACTIVE) for i in running
    ]
    active_only = [j for j in steady_jobs if j.state is JobState.ACTIVE]
    steady_ok = IndexSet.from_range(0, half - 51)

    rng = random.Random(7)
    bad_1pct = IndexSet.from_indices(sorted(rng.sample(range(PARTITIONS), PARTITIONS // 100)))
    evens = IndexSet.from_indices(range(0, PARTITIONS, 2))
    odds = IndexSet.from_indices(range(1, PARTITIONS, 2))
    coin = IndexSet.from_indices(i for i in range(PARTITIONS) if rng.random() < 0.5)

    def retries(count: int, spread_seconds: int, due: bool) -> tuple[dict[str, Any], IndexSet]:
        waiting = sorted(rng.sample(range(half - 50), count))
        base = NOW - timedelta(minutes=5) if due else NOW + timedelta(minutes=5)
        failures = []
        for i in waiting:
            attempts = 1 if spread_seconds == 0 else rng.randint(1, 3)
            at = base + timedelta(seconds=rng.randrange(spread_seconds) if spread_seconds else 0)
            failures.append(
                FailedPartition(
                    key=key(i),
                    index=i,
                    job=job_name(NAME, UID, i, key(i), attempts),
                    attempts=attempts,
                    message=FAILED_MESSAGE,
                    retry_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
            )
        ok = IndexSet.from_range(0, half - 51).difference(IndexSet.from_indices(waiting))
        return status(ok, IndexSet(), running, failures), ok

    retry_10k, retry_10k_ok = retries(10_000, 0, due=False)
    retry_50k, retry_50k_ok = retries(50_000, 3_000, due=False)
    due_50k, due_50k_ok = retries(50_000, 3_000, due=True)
    cases = [
        Scenario("first pass (empty status, no Jobs)", job, spec, {}, {}, [], short="first"),
        Scenario(
            "steady, half done, 50 Jobs (10 just finished)",
            job,
            spec,
            status(steady_ok, IndexSet(), running),
            ledger(steady_ok, IndexSet()),
            steady_jobs,
            short="steady",
        ),
        Scenario(
            "all done, 1% failed at random",
            job,
            spec,
            status(everything.difference(bad_1pct), bad_1pct, []),
            ledger(everything.difference(bad_1pct), bad_1pct),
            [],
            short="1% failed",
        ),
        Scenario(
            "all done, every other one failed",
            job,
            spec,
            status(odds, evens, []),
            ledger(odds, evens),
            [],
            short="alternating",
        ),
        Scenario(
            "all done, 50/50 failed at random",
            job,
            spec,
            status(everything.difference(coin), coin, []),
            ledger(everything.difference(coin), coin),
            [],
            short="random 50/50",
        ),
        Scenario(
            "10,000 waiting to retry (same time)",
            job,
            retry_spec,
            retry_10k,
            ledger(retry_10k_ok, IndexSet()),
            active_only,
            settle=True,
            short="10k retries",
        ),
        Scenario(
            "50,000 waiting to retry (3,000 times)",
            job,
            retry_spec,
            retry_50k,
            ledger(retry_50k_ok, IndexSet()),
            active_only,
            settle=True,
            short="50k retries",
        ),
        Scenario(
            "50,000 retries due (no free slot)",
            job,
            retry_spec,
            due_50k,
            ledger(due_50k_ok, IndexSet()),
            active_only,
            settle=True,
            short="50k due",
        ),
        steps_scenario(rng),
    ]
    return cases


def steps_scenario(rng: random.Random) -> Scenario:
    """3 independent steps x 333,333 partitions, each unit succeeded or failed at random."""
    job = PartitionedJobSpec.model_validate(partitioned_job_body("x", STEPS)["spec"])
    spec = _spec(STEPS_PARTITIONS)
    space = planner.build_space(job, NOW)
    everything = IndexSet.from_range(0, STEPS_PARTITIONS - 1)
    steps: list[StepStatus] = []
    entries: list[StepLedger] = []
    roll_ok, roll_bad = everything, IndexSet()
    for step in STEPS:
        bad = IndexSet.from_indices(i for i in range(STEPS_PARTITIONS) if rng.random() < 0.5)
        ok = everything.difference(bad)
        steps.append(
            StepStatus(name=step, partitions=PartitionSets(succeeded=_text(ok), failed=_text(bad)))
        )
        entries.append(StepLedger(name=step, succeeded=_text(ok), failed=_text(bad)))
        roll_ok, roll_bad = roll_ok.intersection(ok), roll_bad.union(bad)
    previous = BackfillStatus(
        partitioning=space.fingerprint,
        partitions=PartitionSets(succeeded=_text(roll_ok), failed=_text(roll_bad)),
        steps=steps,
        start_time="2025-12-01T00:00:00Z",
    )
    ledger = PartitionLedger(succeeded=_text(roll_ok), failed=_text(roll_bad), steps=entries)
    return Scenario(
        "3 steps x 333,333, 50/50 failed at random",
        job,
        spec,
        _stored(previous),
        _stored(ledger),
        [],
        settle=True,
        short="3 steps random",
    )


@dataclass
class PlanTiming:
    """Seconds per step of one pass and the sizes it produced."""

    read: float
    judge: float
    plan: float
    status: float
    write: float
    status_bytes: int
    ledger_bytes: int
    launches: int
    phase: str
    payload: dict[str, Any]
    ledger: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """read + judge + plan + status + write."""
        return self.read + self.judge + self.plan + self.status + self.write


def one_pass(scenario: Scenario, previous: dict[str, Any], ledger: dict[str, Any]) -> PlanTiming:
    """Time one pass, as ``Reconciler._reconcile`` runs it (selection not cached)."""
    clock_ = time.perf_counter
    t0 = clock_()
    status = BackfillStatus.model_validate(previous)
    fingerprint = planner.build_space(scenario.job, NOW).fingerprint
    job_status = PartitionedJobStatus.model_validate(
        {"partitioning": fingerprint, "ledger": ledger}
    )
    t1 = clock_()
    view = planner.BackfillView(NAME, "bench", UID, 1, scenario.spec, status)
    job_view = planner.PartitionedJobView("x", scenario.job, job_status)
    verdict = planner.judge(view, job_view, NOW)
    t2 = clock_()
    decision = plan(verdict, scenario.jobs, NOW)
    t3 = clock_()
    launched: list[LaunchRequest] = list(decision.launches)
    new_status = compose_status(verdict, decision.state, launched, NOW)
    t4 = clock_()
    payload = new_status.compacted().to_api()
    merged = job_status.ledger
    if decision.ledger is not None:
        merged = decision.ledger.apply(job_status)
    written_ledger = merged.compacted().to_api()
    t5 = clock_()
    return PlanTiming(
        read=t1 - t0,
        judge=t2 - t1,
        plan=t3 - t2,
        status=t4 - t3,
        write=t5 - t4,
        status_bytes=compact(payload),
        ledger_bytes=compact(written_ledger),
        launches=len(decision.launches),
        phase=str(new_status.phase),
        payload=payload,
        ledger=written_ledger,
    )


def run_planning(repeat: int) -> list[tuple[Scenario, PlanTiming]]:
    """Run (a): every scenario ``repeat`` times; keep the median by total time."""
    started = time.perf_counter()
    cases = scenarios()
    say(f"   built the scenarios in {time.perf_counter() - started:.1f} s")
    out: list[tuple[Scenario, PlanTiming]] = []
    for case in cases:
        previous, ledger = case.previous, case.ledger
        if case.settle:
            first = one_pass(case, previous, ledger)
            previous = json.loads(json.dumps(first.payload))
            ledger = json.loads(json.dumps(first.ledger))
        runs = []
        for _ in range(repeat):
            gc.collect()
            runs.append(one_pass(case, previous, ledger))
        runs.sort(key=lambda t: t.total)
        median = runs[len(runs) // 2]
        out.append((case, median))
        say(
            f"   {case.name:44} {median.total:6.3f} s (read {median.read:.3f}, judge "
            f"{median.judge:.3f}, plan {median.plan:.3f}, status {median.status:.3f}, write "
            f"{median.write:.3f}); status {median.status_bytes / KIB:7.1f} KiB, ledger "
            f"{median.ledger_bytes / KIB:7.1f} KiB; {median.launches} launches; "
            f"{median.phase}"
        )
    return out


# ------------------------------------------------------------- (c) the command line


class _FakeApi:
    """The reads ``status`` and ``plan`` make, answered from stored objects."""

    namespace = "bench"

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects

    def find(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((plural, name))

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.objects[(plural, name)]

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        return [body for (kind, _), body in self.objects.items() if kind == plural]

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        return []


def _session(objects: dict[tuple[str, str], dict[str, Any]], sink: io.StringIO) -> Session:
    session = Session(
        target=Target(),
        out=Console(file=sink, width=120, color_system=None, soft_wrap=True),
        err=Console(file=io.StringIO()),
        interactive=False,
        _client=_FakeApi(objects),  # type: ignore[arg-type]
    )
    session.write = sink.write  # type: ignore[method-assign]
    return session


def run_cli(
    planning: list[tuple[Scenario, PlanTiming]], repeat: int
) -> list[tuple[str, float, int]]:
    """Run (c): (command, median seconds, output bytes) per command and state."""
    clock.now = lambda: NOW  # type: ignore[assignment]
    out: list[tuple[str, float, int]] = []
    wanted = {"alternating", "random 50/50"}
    for case, timing in planning:
        if case.short not in wanted:
            continue
        pj = partitioned_job_body("x")
        # An end right after the Backfill's last partition: the job's 1,000,000 complete
        # partitions are the Backfill's, and `status pj/x` draws them all.
        end = FIRST + timedelta(minutes=PARTITIONS)
        pj["spec"]["partitions"]["schedule"]["end"] = f"{end:%Y-%m-%dT%H:%M:%S}Z"
        job = PartitionedJobSpec.model_validate(pj["spec"])
        fingerprint = planner.build_space(job, NOW).fingerprint
        pj["metadata"].update(namespace="bench", generation=1)
        pj["status"] = {"partitioning": fingerprint, "ledger": timing.ledger}
        bf = backfill_body(NAME, "x")
        bf["metadata"].update(namespace="bench", generation=1, uid=UID)
        bf["status"] = json.loads(json.dumps(timing.payload))
        objects = {("partitionedjobs", "x"): pj, ("backfills", NAME): bf}
        spec = BackfillSpec.model_validate(
            {**bf["spec"], "reprocess": "All"}  # every partition, whatever the ledger says
        )
        commands: list[tuple[str, Callable[[Session], object]]] = [
            (
                "status",
                lambda s: status_command.status(s, NAME, watch=False, output="table", interval=1),
            ),
            (
                "status -o json",
                lambda s: status_command.status(s, NAME, watch=False, output="json", interval=1),
            ),
            ("plan -o json", lambda s, spec=spec: submit.plan(s, spec, "json")),
            (
                "status pj/x",
                lambda s: job_status_command.job_status(
                    s, "x", watch=False, output="table", interval=1
                ),
            ),
        ]
        for label, command in commands:
            times = []
            size = 0
            for _ in range(repeat):
                sink = io.StringIO()
                session = _session(objects, sink)
                gc.collect()
                t0 = time.perf_counter()
                command(session)
                times.append(time.perf_counter() - t0)
                size = len(sink.getvalue().encode())
            times.sort()
            name = f"{label} ({case.short})"
            out.append((name, times[len(times) // 2], size))
            say(f"   {name:36} {times[len(times) // 2]:6.3f} s; output {size / KIB:8.1f} KiB")
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
            say(
                f"   ... {time.monotonic() - started:5.1f} s: {len(life.added)} Jobs created, "
                f"{len(life.finished)} finished; {operator.rss_line()}"
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


# --------------------------------------------------------------- (d) batched, to the end


def job_batches(events: list[Event]) -> dict[str, tuple[int, int]]:
    """(first partition index, partition count) of every Job ADDED, from its labels."""
    out: dict[str, tuple[int, int]] = {}
    for event in events:
        meta = event.obj["metadata"]
        if event.type == "ADDED" and meta["name"] not in out:
            job_labels = meta.get("labels") or {}
            out[meta["name"]] = (
                int(job_labels.get(labels.LABEL_PARTITION_INDEX, -1)),
                int(job_labels.get(labels.LABEL_PARTITION_COUNT, 1)),
            )
    return out


def run_batched(partitions: int, per_job: int) -> dict[str, Any]:
    """Run (d); see the module docstring."""
    namespace = "bench-batched"
    with operator_on_fresh_cluster(f"{BENCH}-batched") as (cluster, clients, operator):
        before: list[OperatorReadings] = []
        rss_idle: list[int] = []

        def before_start() -> None:
            time.sleep(1)  # the PartitionedJob's own status write settles
            rss_idle.append(operator.proc_status().get("VmRSS", 0))
            before.append(OperatorReadings.take(cluster, operator))

        def progress(elapsed: float) -> None:
            counts = (clients.get_custom(namespace, "backfills", NAME).get("status") or {}).get(
                "counts"
            ) or {}
            say(
                f"   ... {elapsed:5.1f} s: {counts.get('succeeded', 0):,} of {partitions:,} "
                f"partitions succeeded, {counts.get('running', 0):,} running; "
                f"{operator.rss_line()}"
            )

        say(
            f"   Backfill {NAME}: {partitions:,} partitions, partitionsPerJob {per_job}, "
            f"concurrency {CONCURRENCY}; waiting up to {BATCHED_TIMEOUT:.0f} s for its end"
        )
        run = run_backfill(
            clients,
            namespace,
            NAME,
            partitioned_job_body("minutely"),
            partitions,
            CONCURRENCY,
            before_start,
            start=FIRST,
            spec={"partitionsPerJob": per_job},
            timeout=BATCHED_TIMEOUT,
            raise_on_timeout=False,
            progress=progress,
        )
        peak = operator.proc_status().get("VmHWM", 0)
        cost = OperatorCost.between(before[0], OperatorReadings.take(cluster, operator))
        events = operator_events(clients, namespace)
    batches = job_batches(run.job_events)
    jobs = len(run.jobs.added)
    writes_per_job, _, _ = write_breakdown(cost.requests, cost.failed, events, max(jobs, 1))
    sizes = [count for _, count in batches.values()]
    return {
        "phase": run.phase,
        "finished": run.finished,
        "wall": run.wall,
        "first_job": run.first_job,
        "jobs": jobs,
        "expected_jobs": -(-partitions // per_job),
        "first_indices": len({index for index, _ in batches.values()}),
        "covered": sum(sizes),
        "batch_sizes": (min(sizes), max(sizes)) if sizes else (0, 0),
        "rss_idle_kib": rss_idle[0],
        "peak_rss_kib": peak,
        "cpu": cost.cpu,
        "passes": cost.passes,
        "pass_seconds": cost.pass_seconds,
        "writes_per_job": writes_per_job,
        "status_bytes": compact(run.status),
        "counts": run.status.get("counts") or {},
    }


def batched_rows(partitions: int, per_job: int) -> list[Result]:
    """Run (d), print its numbers and return its result rows."""
    size = "1M" if partitions == 1_000_000 else f"{partitions:,}"
    say(f"== scale ({load_average()}) (d): {size} partitions, {per_job} per Job, to completion")
    run = run_batched(partitions, per_job)
    counts = run["counts"]
    succeeded = int(counts.get("succeeded") or 0)
    peak_mb = _mb(run["peak_rss_kib"])
    passes = run["passes"]
    say(f"== scale (d) results ({load_average()})")
    say(f"   phase {run['phase']} after {run['wall']:.1f} s (from the create)")
    low, high = run["batch_sizes"]
    say(
        f"   {run['jobs']:,} Jobs created ({run['expected_jobs']:,} expected), "
        f"{run['first_indices']:,} distinct first partitions, covering {run['covered']:,} "
        f"partitions (partition-count {low} to {high}); first Job after "
        f"{run['first_job'] * 1000:.0f} ms"
    )
    say(f"   {_rss_cpu_line(run['rss_idle_kib'], run['peak_rss_kib'], run['cpu'], run['wall'])}")
    say(
        f"   {passes:.0f} reconcile passes, mean "
        f"{run['pass_seconds'] / passes * 1000 if passes else float('nan'):.0f} ms; operator "
        f"API writes {run['writes_per_job']:.2f} per Job"
    )
    say(f"   status as stored: {_fmt_kib(run['status_bytes'])}; counts {json.dumps(counts)}")
    wall = (
        f"{run['wall']:.1f}"
        if run["finished"] and run["phase"] == "Succeeded"
        else f"{run['phase']} after {run['wall']:.0f}"
    )
    return [
        Result(
            BENCH,
            f"batched {size} wall (s)",
            wall,
            f"< {BATCHED_GOAL_SECONDS:.0f}",
            run["phase"] == "Succeeded" and run["wall"] < BATCHED_GOAL_SECONDS,
        ),
        Result(
            BENCH,
            "batched RSS (MB)",
            f"{peak_mb:.0f}",
            f"< {RSS_GOAL_MB:.0f}",
            peak_mb < RSS_GOAL_MB,
        ),
        Result(
            BENCH,
            "batched Jobs",
            f"{run['jobs']:,}",
            f"= {run['expected_jobs']:,}",
            run["jobs"] == run["expected_jobs"],
        ),
        Result(BENCH, "batched time to first Job", f"{run['first_job'] * 1000:.0f} ms"),
        Result(BENCH, "batched operator CPU", f"{run['cpu']:.1f} s"),
        Result(
            BENCH,
            "batched status size as stored",
            _fmt_kib(run["status_bytes"]),
            "< 256 KiB",
            run["status_bytes"] < STATUS_GOAL_BYTES,
        ),
        Result(
            BENCH,
            "batched partitions succeeded",
            f"{succeeded:,} (failed {int(counts.get('failed') or 0):,})",
            f"= {partitions:,}",
            succeeded == partitions,
        ),
    ]


# --------------------------------------------------------------------------------- main


def _fmt_kib(n: int) -> str:
    return f"{n} B" if n < KIB else f"{n / KIB:.1f} KiB"


def _mb(kib: int) -> float:
    """KiB (as /proc reports them) in MB."""
    return kib * 1024 / 1e6


def _rss_cpu_line(idle_kib: int, peak_kib: int, cpu: float, seconds: float) -> str:
    return (
        f"operator RSS: {idle_kib / KIB:.0f} MiB idle, peak (VmHWM) {peak_kib / KIB:.0f} MiB = "
        f"{_mb(peak_kib):.0f} MB; CPU {cpu:.1f} s ({cpu / seconds * 100:.0f}% of one core)"
    )


def in_process_rows(
    planning: list[tuple[Scenario, PlanTiming]], cli: list[tuple[str, float, int]]
) -> tuple[list[Result], list[Result]]:
    """The rows of (a) and (c): (every row printed, the rows of the results file)."""
    # Every row is printed; the results file (make bench's summary) gets the goals' rows.
    shown: list[Result] = []
    results: list[Result] = []
    for case, timing in planning:
        row = Result(
            BENCH,
            f"planning: {case.name}",
            f"{timing.total:.3f} s",
            "< 2 s",
            timing.total < PLAN_GOAL_SECONDS,
        )
        shown.append(row)
    for case, timing in planning:
        shown.append(
            Result(
                BENCH,
                f"status / ledger size: {case.name}",
                f"{_fmt_kib(timing.status_bytes)} / {_fmt_kib(timing.ledger_bytes)}",
                "< 256 KiB",
                max(timing.status_bytes, timing.ledger_bytes) < STATUS_GOAL_BYTES,
            )
        )
    worst, worst_timing = max(planning, key=lambda p: p[1].status_bytes)
    worst_ledger, worst_ledger_timing = max(planning, key=lambda p: p[1].ledger_bytes)
    slowest, slowest_timing = max(planning, key=lambda p: p[1].total)
    headline = [
        Result(
            BENCH,
            f"status bytes for the worst pattern ({worst.short})",
            _fmt_kib(worst_timing.status_bytes),
            "< 256 KiB",
            worst_timing.status_bytes < STATUS_GOAL_BYTES,
        ),
        Result(
            BENCH,
            f"ledger bytes for the worst pattern ({worst_ledger.short})",
            _fmt_kib(worst_ledger_timing.ledger_bytes),
            "< 256 KiB",
            worst_ledger_timing.ledger_bytes < STATUS_GOAL_BYTES,
        ),
        Result(
            BENCH,
            f"planning pass at the slowest pattern ({slowest.short})",
            f"{slowest_timing.total:.3f} s",
            "< 2 s",
            slowest_timing.total < PLAN_GOAL_SECONDS,
        ),
    ]
    shown += headline
    results += headline
    for label, seconds, _ in cli:
        row = Result(
            BENCH, f"cli: {label}", f"{seconds:.3f} s", "< 2 s", seconds < CLI_GOAL_SECONDS
        )
        shown.append(row)
        results.append(row)
    return shown, results


def cluster_rows(seconds: float, planning: list[tuple[Scenario, PlanTiming]]) -> list[Result]:
    """Run (b), print its numbers and return its result rows."""
    say(f"== scale (b): the operator on {PARTITIONS:,} partitions for {seconds:.0f} s")
    big = [(case.name, t) for case, t in planning]
    big = sorted(big, key=lambda p: -p[1].status_bytes)[:2]
    run = run_cluster(seconds, big)
    throughput = run["finished"] / run["window"]
    peak_mb = _mb(run["peak_rss_kib"])
    passes = run["passes"]
    say(f"== scale (b) results ({load_average()})")
    say(f"   time to first Job: {run['first_job'] * 1000:.0f} ms")
    say(
        f"   {run['created']} Jobs created, {run['finished']} finished in "
        f"{run['window']:.0f} s: "
        f"{throughput:.1f} partitions/s (status counts {run['succeeded']} succeeded)"
    )
    say(f"   {_rss_cpu_line(run['rss_idle_kib'], run['peak_rss_kib'], run['cpu'], run['window'])}")
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
    rows = [
        Result(BENCH, "cluster: time to first Job", f"{run['first_job'] * 1000:.0f} ms"),
        Result(BENCH, "cluster: throughput", f"{throughput:.1f} partitions/s"),
        Result(
            BENCH,
            "cluster: operator peak RSS",
            f"{peak_mb:.0f} MB",
            f"< {RSS_GOAL_MB:.0f} MB",
            peak_mb < RSS_GOAL_MB,
        ),
        Result(
            BENCH,
            "cluster: status size as stored",
            _fmt_kib(run["status_bytes"]),
            "< 256 KiB",
            run["status_bytes"] < STATUS_GOAL_BYTES,
        ),
    ]
    rows += [
        Result(BENCH, f"cluster: {size / KIB:.0f} KiB status ({name}) written", short)
        for name, size, short in run["probes"]
    ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the (b) run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per (a) scenario")
    parser.add_argument("--no-cluster", action="store_true", help="run (a) and (c) only")
    parser.add_argument("--no-batched", action="store_true", help="skip (d)")
    parser.add_argument("--only-batched", action="store_true", help="run (d) only")
    parser.add_argument(
        "--batched-partitions", type=int, default=PARTITIONS, help="partitions of the (d) run"
    )
    parser.add_argument(
        "--partitions-per-job", type=int, default=PER_JOB, help="partitionsPerJob of (d)"
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    if args.only_batched and (args.no_cluster or args.no_batched):
        parser.error("--only-batched runs (d) only: not with --no-cluster or --no-batched")

    shown: list[Result] = []
    results: list[Result] = []
    if not args.only_batched:
        say(
            f"== scale ({load_average()}): (a) planning one pass of a {PARTITIONS:,}-partition "
            "Backfill"
        )
        planning = run_planning(args.repeat)
        say(f"== scale ({load_average()}): (c) the command line at {PARTITIONS:,} partitions")
        cli = run_cli(planning, args.repeat)
        shown, results = in_process_rows(planning, cli)
        if not args.no_cluster:
            rows = cluster_rows(args.seconds, planning)
            shown += rows
            results += rows
    if not (args.no_cluster or args.no_batched):
        rows = batched_rows(args.batched_partitions, args.partitions_per_job)
        shown += rows
        results += rows
    write_results(args.json, results)
    print()
    print_results(shown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
