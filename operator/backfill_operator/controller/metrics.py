"""Prometheus metrics (prometheus-client), names as in ``docs/design.md``.

Names follow the Prometheus conventions: base units in the name (``_seconds``), counters end in
``_total``. Every series labelled with a Backfill is removed by :meth:`Metrics.forget` when the
Backfill is deleted, so dashboards do not show ghosts.

Steps (``PartitionedJob.spec.steps``) have one gauge of their own,
``backfill_step_partitions{step, state}`` from ``status.steps``; the counters and histograms
(runs, durations, Jobs created) count the Jobs of every step together, without a step label, so
that a job of 50 steps does not multiply their series.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import clock as clocks
from ..api.model import (
    PARTITION_STATES,
    BackfillStatus,
    Phase,
    ScheduledRuns,
    ScheduleStatus,
    StepStatus,
)
from ..planning.catchup import TakeOn
from ..planning.state import Outcome
from ..planning.times import parse_time

RESULTS = ("succeeded", "failed")
#: ``how`` label values of ``backfill_schedule_partitions_total``.
TAKEN = ("on_time", "caught_up", "missed")
_BF = ("namespace", "backfill")
_PJ = ("namespace", "partitioned_job")


class _LagCollector(Collector):
    """``backfill_schedule_lag_seconds``, computed at scrape time from ``status.runs.lagSince``.

    A gauge set by passes would stand still between them; a schedule whose passes stopped is
    exactly the one whose lag must keep growing.
    """

    def __init__(self, clock: clocks.Clock) -> None:
        self._clock = clock
        self._since: dict[tuple[str, str], float | None] = {}
        self._lock = threading.Lock()

    def set(self, namespace: str, job: str, since: float | None) -> None:
        with self._lock:
            self._since[(namespace, job)] = since

    def forget(self, namespace: str, job: str) -> None:
        with self._lock:
            self._since.pop((namespace, job), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "backfill_schedule_lag_seconds",
            "Seconds from the end of the oldest scheduled partition's window without a success "
            "to now (0: nothing outstanding).",
            labels=_PJ,
        )
        now = self._clock.now().timestamp()
        with self._lock:
            items = list(self._since.items())
        for (namespace, job), since in items:
            family.add_metric([namespace, job], 0.0 if since is None else max(0.0, now - since))
        yield family


_DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, float("inf"))


class Metrics:
    """The operator's metrics, registered in one registry (default: the global one)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, clock: clocks.Clock = clocks.SYSTEM
    ) -> None:
        reg = registry if registry is not None else REGISTRY
        self.partitions = Gauge(
            "backfill_partitions",
            "Partitions of a Backfill by state.",
            (*_BF, "state"),
            registry=reg,
        )
        self.step_partitions = Gauge(
            "backfill_step_partitions",
            "Partitions of a Backfill by step and state (PartitionedJobs with spec.steps).",
            (*_BF, "step", "state"),
            registry=reg,
        )
        self.concurrency = Gauge(
            "backfill_concurrency_limit", "spec.concurrency of a Backfill.", _BF, registry=reg
        )
        self.phase = Gauge(
            "backfill_phase",
            "1 for the Backfill's current phase, 0 otherwise.",
            (*_BF, "phase"),
            registry=reg,
        )
        self.info = Gauge(
            "backfill_info",
            "Always 1; links a Backfill to its PartitionedJob.",
            (*_BF, "partitioned_job"),
            registry=reg,
        )
        self.runs = Counter(
            "backfill_partition_runs",
            "Finished partition runs (partition attempts; a Job of N partitions counts N) by "
            "result.",
            (*_BF, "result"),
            registry=reg,
        )
        self.duration = Histogram(
            "backfill_partition_run_duration_seconds",
            "Run time of a Job attempt, start to finish (once per Job, whatever its partitions).",
            (*_BF, "result"),
            buckets=_DURATION_BUCKETS,
            registry=reg,
        )
        self.jobs_created = Counter(
            "backfill_jobs_created", "Jobs created by the operator.", _BF, registry=reg
        )
        self.errors = Counter(
            "backfill_reconcile_errors",
            "Reconcile passes that ended in an error.",
            _BF,
            registry=reg,
        )
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))
        self.reconcile_seconds = Histogram(
            "backfill_reconcile_duration_seconds",
            "Wall time of one reconcile pass (without the wait for its PartitionedJob's lock).",
            buckets=buckets,
            registry=reg,
        )
        self.lock_wait_seconds = Histogram(
            "backfill_reconcile_lock_wait_seconds",
            "Wait of a reconcile pass for its PartitionedJob's lock (one job's passes take turns).",
            buckets=buckets,
            registry=reg,
        )
        self.waiting = Gauge(
            "backfill_waiting_partitions",
            "Partitions of a Backfill that wait although it has free slots, by reason: lock "
            "(another Backfill's Job holds the partition), job_slot (the PartitionedJob's "
            "job-wide limit).",
            (*_BF, "reason"),
            registry=reg,
        )
        self.quota_refusals = Counter(
            "backfill_quota_refusals",
            "Job creates the apiserver refused because a ResourceQuota was used up.",
            _BF,
            registry=reg,
        )
        self.job_active = Gauge(
            "backfill_partitioned_job_active_jobs",
            "Active Jobs of a PartitionedJob, across all its Backfills (as of the last pass).",
            ("namespace", "partitioned_job"),
            registry=reg,
        )
        self.job_limit = Gauge(
            "backfill_partitioned_job_concurrency_limit",
            "spec.concurrency of a PartitionedJob (the job-wide limit); absent when unset.",
            ("namespace", "partitioned_job"),
            registry=reg,
        )
        self.schedule_lag = _LagCollector(clock)
        reg.register(self.schedule_lag)
        self.schedule_missed = Gauge(
            "backfill_schedule_missed_partitions",
            "Partitions a PartitionedJob's schedule missed and did not run (catch-up policy or "
            "window) that still have no outcome.",
            _PJ,
            registry=reg,
        )
        self.schedule_next = Gauge(
            "backfill_schedule_next_run_timestamp_seconds",
            "When the schedule's next partition comes due (window end plus delay), Unix time.",
            _PJ,
            registry=reg,
        )
        self.schedule_last = Gauge(
            "backfill_schedule_last_schedule_timestamp_seconds",
            "When the schedule last took partitions on, Unix time.",
            _PJ,
            registry=reg,
        )
        self.schedule_suspended = Gauge(
            "backfill_schedule_suspended", "1 while spec.runs.suspend is true.", _PJ, registry=reg
        )
        self.schedule_taken = Counter(
            "backfill_schedule_partitions",
            "Partitions the schedule decided on, by how: on_time (run when due), caught_up "
            "(missed, run by the catch-up policy), missed (missed, not run).",
            (*_PJ, "how"),
            registry=reg,
        )
        self._jobs: dict[tuple[str, str], str] = {}
        #: The steps each Backfill has ``backfill_step_partitions`` series for.
        self._steps: dict[tuple[str, str], frozenset[str]] = {}

    def observe_status(
        self,
        namespace: str,
        name: str,
        job: str,
        concurrency: int,
        status: BackfillStatus,
        *,
        phase: bool = True,
    ) -> None:
        """Set the gauges of one Backfill from its status.

        ``phase`` False leaves ``backfill_phase`` out (a schedule has no phase: six series
        less per scheduled PartitionedJob on every scrape). ``status.steps`` (jobs with
        ``spec.steps``) sets ``backfill_step_partitions``; the series of steps no longer in it
        are removed.
        """
        counts = status.counts
        for state in PARTITION_STATES:
            self.partitions.labels(namespace, name, state).set(getattr(counts, state))
        self._observe_steps(namespace, name, status.steps)
        self.concurrency.labels(namespace, name).set(concurrency)
        waiting = status.waiting
        self.waiting.labels(namespace, name, "lock").set(waiting.on_lock if waiting else 0)
        self.waiting.labels(namespace, name, "job_slot").set(waiting.for_job_slot if waiting else 0)
        for value in Phase if phase else ():
            self.phase.labels(namespace, name, str(value)).set(1 if status.phase == value else 0)
        old = self._jobs.get((namespace, name))
        if old is not None and old != job:
            self.info.remove(namespace, name, old)
        self._jobs[(namespace, name)] = job
        self.info.labels(namespace, name, job).set(1)

    def _observe_steps(self, namespace: str, name: str, steps: Sequence[StepStatus]) -> None:
        """Set ``backfill_step_partitions`` of one Backfill; drop the steps it no longer has."""
        names = frozenset(step.name for step in steps)
        for gone in self._steps.get((namespace, name), frozenset()) - names:
            self._remove_step(namespace, name, gone)
        for step in steps:
            for state in PARTITION_STATES:
                self.step_partitions.labels(namespace, name, step.name, state).set(
                    getattr(step.counts, state)
                )
        if names:
            self._steps[(namespace, name)] = names
        else:
            self._steps.pop((namespace, name), None)

    def _remove_step(self, namespace: str, name: str, step: str) -> None:
        """Remove the ``backfill_step_partitions`` series of one step of one Backfill."""
        for state in PARTITION_STATES:
            with contextlib.suppress(KeyError):
                self.step_partitions.remove(namespace, name, step, state)

    def record(self, namespace: str, name: str, outcomes: Iterable[Outcome], created: int) -> None:
        """Count finished runs (with durations) and created Jobs of one pass.

        Runs are partition attempts: with steps, every step's, counted together (``Outcome.step``
        is not a label); a Job of several partitions counts each and observes its duration once.
        """
        for outcome in outcomes:
            result = "succeeded" if outcome.succeeded else "failed"
            self.runs.labels(namespace, name, result).inc(outcome.count)
            if outcome.duration_seconds is not None:
                self.duration.labels(namespace, name, result).observe(outcome.duration_seconds)
        if created:
            self.jobs_created.labels(namespace, name).inc(created)

    def observe_job_wide(
        self, namespace: str, partitioned_job: str, active: int, limit: int | None
    ) -> None:
        """Set the job-wide gauges of a PartitionedJob (its active Jobs, its limit)."""
        self.job_active.labels(namespace, partitioned_job).set(active)
        if limit is None:
            with contextlib.suppress(KeyError):
                self.job_limit.remove(namespace, partitioned_job)
        else:
            self.job_limit.labels(namespace, partitioned_job).set(limit)

    def quota_refused(self, namespace: str, name: str) -> None:
        """Count one pass whose creates a ResourceQuota refused."""
        self.quota_refusals.labels(namespace, name).inc()

    def touch(self, namespace: str, name: str) -> None:
        """Create a Backfill's counters at zero, so rate() sees their first increments."""
        for result in RESULTS:
            self.runs.labels(namespace, name, result)
        self.jobs_created.labels(namespace, name)
        self.errors.labels(namespace, name)
        self.quota_refusals.labels(namespace, name)

    def error(self, namespace: str, name: str) -> None:
        """Count one failed reconcile pass."""
        self.errors.labels(namespace, name).inc()

    def forget(self, namespace: str, name: str) -> None:
        """Remove every series of a deleted Backfill."""
        for metric, extra in (
            (self.partitions, PARTITION_STATES),
            (self.phase, [str(p) for p in Phase]),
            (self.runs, RESULTS),
            (self.duration, RESULTS),
            (self.waiting, ("lock", "job_slot")),
        ):
            for value in extra:
                with contextlib.suppress(KeyError):
                    metric.remove(namespace, name, value)
        for metric in (self.concurrency, self.jobs_created, self.errors, self.quota_refusals):
            with contextlib.suppress(KeyError):
                metric.remove(namespace, name)
        job = self._jobs.pop((namespace, name), None)
        if job is not None:
            with contextlib.suppress(KeyError):
                self.info.remove(namespace, name, job)
        for step in self._steps.pop((namespace, name), frozenset()):
            self._remove_step(namespace, name, step)

    def observe_schedule(
        self,
        namespace: str,
        job: str,
        runs: ScheduledRuns,
        status: ScheduleStatus,
    ) -> None:
        """Set the schedule gauges of PartitionedJob namespace/job from its ``status.runs``."""
        since = parse_time(status.lag_since)
        self.schedule_lag.set(namespace, job, None if since is None else since.timestamp())
        self.schedule_missed.labels(namespace, job).set(status.missed.count)
        self.schedule_suspended.labels(namespace, job).set(1 if runs.suspend else 0)
        for gauge, text in (
            (self.schedule_next, status.next_run_time),
            (self.schedule_last, status.last_schedule_time),
        ):
            at = parse_time(text)
            if at is None:
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, job)
            else:
                gauge.labels(namespace, job).set(at.timestamp())
        for how in TAKEN:
            self.schedule_taken.labels(namespace, job, how)  # created at 0 for increase()

    def count_taken(self, namespace: str, job: str, take: TakeOn) -> None:
        """Count what a pass's take-on decided (once: right after the decision is recorded)."""
        for how, taken in zip(TAKEN, (take.on_time, take.caught_up, take.left), strict=True):
            if taken:
                self.schedule_taken.labels(namespace, job, how).inc(len(taken))

    def forget_schedule(self, namespace: str, job: str) -> None:
        """Remove the schedule series of PartitionedJob namespace/job."""
        self.schedule_lag.forget(namespace, job)
        for gauge in (
            self.schedule_missed,
            self.schedule_next,
            self.schedule_last,
            self.schedule_suspended,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, job)
        for how in TAKEN:
            with contextlib.suppress(KeyError):
                self.schedule_taken.remove(namespace, job, how)


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` of the global registry on ``address:port`` in a daemon thread.

    The ``*_created`` series of counters and histograms are left out (Prometheus does not
    need them, and they double the series count).
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]
    start_http_server(port, addr=address)
