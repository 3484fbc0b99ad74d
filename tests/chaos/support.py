"""What every chaos scenario shares: a recorder that survives a restarted apiserver, the
invariants checked from it, and the manifests.

The recorder is ``JobRecorder`` (tests/integration/test_operator.py: Jobs and pods watched
from before the test acts, slots replayed in resourceVersion order) with three additions:

* it keeps watching across a control-plane crash: a broken stream is re-opened from the last
  resourceVersion seen, and when that version is gone (HTTP 410, which a restarted apiserver
  answers because its watch cache starts empty) it lists again and replays the difference
  (new objects as ADDED, changed ones as MODIFIED, vanished ones as DELETED at the list's
  version). Events between the crash and that list are then seen as their end state, so a
  scenario that restarts the apiserver keeps every Job (``successfulJobsHistoryLimit`` at
  least its size): no Job can vanish unseen, and every Job ever created is in the list;
* per Job it keeps its labels, when this process first saw it (``time.time()``) and whether it
  was seen Failed;
* ``max_active_by(label)``: the slot replay grouped by a label (per Backfill, per
  PartitionedJob).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from backfill_operator.api.model import BackfillStatus, PartitionedJobStatus
from backfill_operator.planning.ranges import IndexSet
from helpers import wait_for
from integration.test_operator import Api, JobRecorder, backfill, partitioned_job

__all__ = [
    "FIGURES",
    "Api",
    "ChaosRecorder",
    "Expected",
    "JobFacts",
    "backfill",
    "check_run",
    "keys",
    "log_time",
    "partitioned_job",
    "values_job",
    "wait_phase_all",
]

#: (scenario, figures) measured in this run, printed at its end (conftest.py).
FIGURES: list[tuple[str, dict[str, Any]]] = []

LABEL_BACKFILL = "backfill.dev/backfill"
LABEL_JOB = "backfill.dev/partitioned-job"
LABEL_INDEX = "backfill.dev/partition-index"
LABEL_ATTEMPT = "backfill.dev/attempt"


def keys(count: int, prefix: str = "p") -> list[str]:
    """Static partition keys ``p0000`` .. : key i is global partition index i."""
    return [f"{prefix}{i:04d}" for i in range(count)]


def values_job(
    name: str,
    values: list[str],
    *,
    duration: str = "1s",
    jitter: str | None = None,
    fail_once: Iterable[str] = (),
    concurrency: int | None = None,
) -> dict[str, Any]:
    """A PartitionedJob over static ``values`` whose KWOK pods run ``duration`` (uniform up to
    ``jitter`` when given); the partitions in ``fail_once`` fail their first attempt.
    ``concurrency`` is the job-wide limit (unset: none)."""
    annotations = {"kwok.backfill.dev/duration": duration}
    if jitter:
        annotations["kwok.backfill.dev/duration-jitter"] = jitter
    failing = ",".join(fail_once)
    if failing:
        annotations["kwok.backfill.dev/fail-partitions"] = failing
        annotations["kwok.backfill.dev/fail-attempts"] = "1"
    job = partitioned_job(name, values=values, annotations=annotations)
    if concurrency is not None:
        job["spec"]["concurrency"] = concurrency
    return job


@dataclasses.dataclass
class JobFacts:
    """What the recorder saw of one Job: its labels, when it first saw it (wall clock, s) and
    whether it was seen Failed."""

    labels: dict[str, str]
    seen_at: float
    failed: bool = False


class ChaosRecorder(JobRecorder):
    """JobRecorder that survives a restarted apiserver (see the module doc) and keeps
    :class:`JobFacts` per Job. ``errors`` holds what broke a watch thread (a test asserts it
    empty); ``reconnects`` and ``resyncs`` count re-opened streams and re-lists."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.jobs: dict[str, JobFacts] = {}
        self.errors: list[BaseException] = []
        self.reconnects = 0
        self.resyncs = 0

    def _run(self, record: Any) -> None:
        try:
            record()
        except Exception as exc:
            if not self._stopping:
                self.errors.append(exc)

    def _stream(self, watcher: watch.Watch, lister: Any, handle: Any) -> None:
        present: dict[str, Any] = {}  # name -> last object seen, for objects that exist
        known: set[str] = set()  # every name ever delivered

        def deliver(event_type: str, obj: Any) -> None:
            name = obj.metadata.name
            if event_type == "DELETED":
                present.pop(name, None)
            else:
                present[name] = obj
            known.add(name)
            handle(event_type, obj)

        version = self._list(lister, deliver, present, known)
        self._ready.wait(10)
        while not self._stopping:
            try:
                for event in watcher.stream(
                    lister, self.namespace, resource_version=version, timeout_seconds=300
                ):
                    deliver(event["type"], event["object"])
                    version = event["object"].metadata.resource_version
            except ApiException as exc:
                if exc.status != 410:
                    self._pause_after_error()
                    continue
                self.resyncs += 1
                version = self._list(lister, deliver, present, known)
            except Exception:  # the apiserver went away mid-stream or refuses connections
                self._pause_after_error()

    def _pause_after_error(self) -> None:
        self.reconnects += 1
        time.sleep(0.5)

    def _list(
        self,
        lister: Any,
        deliver: Callable[[str, Any], None],
        present: dict[str, Any],
        known: set[str],
    ) -> str:
        """List until it works; deliver the difference to what was seen; return the list's
        resourceVersion."""
        while True:
            try:
                listed = lister(self.namespace)
                break
            except Exception:
                if self._stopping:
                    return "0"
                self._pause_after_error()
        version: str = listed.metadata.resource_version
        names = set()
        for item in listed.items:
            names.add(item.metadata.name)
            deliver("MODIFIED" if item.metadata.name in known else "ADDED", item)
        for name in sorted(set(present) - names):
            gone = present[name]
            gone.metadata.resource_version = version  # deleted at the latest before the list
            deliver("DELETED", gone)
        return version

    def handle(self, event_type: str, job: Any) -> None:
        super().handle(event_type, job)
        name = job.metadata.name
        facts = self.jobs.get(name)
        if facts is None:
            facts = JobFacts(labels=dict(job.metadata.labels or {}), seen_at=time.time())
            self.jobs[name] = facts
        if any(c.type == "Failed" and c.status == "True" for c in (job.status.conditions or [])):
            facts.failed = True

    def max_active_by(self, label: str) -> Counter[str]:
        """Like ``max_active``, per value of the Jobs' ``label``."""
        with self._lock:
            slots = sorted(self._slots)
            group = {name: facts.labels.get(label, "") for name, facts in self.jobs.items()}
        held: Counter[str] = Counter()
        most: Counter[str] = Counter()
        for _, change, name in slots:
            key = group.get(name, "")
            held[key] += change
            most[key] = max(most[key], held[key])
        return most

    def created_count(self, job: str | None = None) -> int:
        """Jobs seen so far (of PartitionedJob ``job`` only, when given)."""
        with self._lock:
            return sum(1 for f in self.jobs.values() if job in (None, f.labels.get(LABEL_JOB)))

    def first_created_after(self, moment: float) -> float | None:
        """Wall-clock time this process first saw a Job created after ``moment``, or None."""
        with self._lock:
            times = [f.seen_at for f in self.jobs.values() if f.seen_at > moment]
        return min(times) if times else None


@dataclasses.dataclass(frozen=True)
class Expected:
    """One Backfill of a scenario: its name, the global indices it must run, its concurrency
    and the indices whose first attempt fails (those run exactly twice)."""

    name: str
    indices: frozenset[int]
    concurrency: int
    fail_once: frozenset[int] = frozenset()


def _set(value: str) -> set[int]:
    return set(IndexSet.parse(value)) if value else set()


def check_run(
    api: Api,
    recorder: ChaosRecorder,
    job: str,
    backfills: list[Expected],
    *,
    job_concurrency: int | None = None,
) -> None:
    """Assert, from the recorder's independent watch and the objects' status, that every
    Backfill of PartitionedJob ``job`` ran each of its partitions exactly as expected.

    * no two Jobs for one (partition, attempt); a second attempt only of a partition whose
      first attempt's Job was seen Failed, and exactly the ``fail_once`` ones have one; every
      expected partition has a Job and no other partition has one (none run twice, none lost);
    * per Backfill at most ``concurrency`` Jobs held a slot at once (and at most
      ``job_concurrency`` for the PartitionedJob when given);
    * each Backfill ``Succeeded`` with exact counts and ``partitions.succeeded``;
    * the PartitionedJob's ledger has exactly the union of the Backfills' partitions as
      succeeded, and nothing failed.
    """
    assert not recorder.errors, f"the recorder's watch broke: {recorder.errors!r}"
    expected_jobs = sum(len(b.indices) + len(b.fail_once) for b in backfills)
    # The Backfills' status says they are done; give the watch a moment to deliver the rest.
    wait_for(
        lambda: recorder.created_count(job) >= expected_jobs,
        15,
        message=f"{expected_jobs} Jobs of {job} seen",
    )
    by_backfill = {b.name: b for b in backfills}
    runs: dict[str, dict[int, list[tuple[int, str]]]] = {b.name: {} for b in backfills}
    failed: set[tuple[str, int, int]] = set()
    for name, facts in list(recorder.jobs.items()):
        if facts.labels.get(LABEL_JOB) != job:
            continue
        owner = facts.labels.get(LABEL_BACKFILL, "")
        assert owner in by_backfill, f"Job {name} of an unexpected run {owner!r}"
        index, attempt = int(facts.labels[LABEL_INDEX]), int(facts.labels[LABEL_ATTEMPT])
        runs[owner].setdefault(index, []).append((attempt, name))
        if facts.failed:
            failed.add((owner, index, attempt))
    for expected in backfills:
        jobs = runs[expected.name]
        assert set(jobs) == set(expected.indices), (
            f"{expected.name}: lost {sorted(set(expected.indices) - set(jobs))[:20]}, "
            f"unexpected {sorted(set(jobs) - set(expected.indices))[:20]}"
        )
        for index, attempts in jobs.items():
            numbers = sorted(a for a, _ in attempts)
            assert len(numbers) == len(set(numbers)), (
                f"{expected.name}: partition {index} has two Jobs for one attempt: {attempts}"
            )
            want = [1, 2] if index in expected.fail_once else [1]
            assert numbers == want, f"{expected.name}: partition {index} ran {attempts}"
            for attempt in numbers[1:]:
                assert (expected.name, index, attempt - 1) in failed, (
                    f"{expected.name}: partition {index} attempt {attempt} without a failed "
                    f"attempt {attempt - 1}"
                )
    most = recorder.max_active_by(LABEL_BACKFILL)
    for expected in backfills:
        assert most[expected.name] <= expected.concurrency, (
            f"{expected.name}: {most[expected.name]} Jobs active at once, "
            f"concurrency {expected.concurrency}"
        )
    if job_concurrency is not None:
        active = recorder.max_active_by(LABEL_JOB)[job]
        assert active <= job_concurrency, f"{job}: {active} Jobs at once"
    for expected in backfills:
        raw = api.get("backfills", expected.name)
        status = BackfillStatus.model_validate(raw.get("status") or {})
        total = len(expected.indices)
        assert status.phase == "Succeeded", f"{expected.name}: {status.phase}"
        assert status.counts.to_api() == {
            "total": total,
            "pending": 0,
            "queued": 0,
            "running": 0,
            "succeeded": total,
            "failed": 0,
            "skipped": 0,
            "upstreamFailed": 0,
            "marked": 0,
        }, f"{expected.name}: counts {status.counts.to_api()}"
        assert _set(status.partitions.succeeded) == set(expected.indices), expected.name
        assert status.progress == f"{total}/{total}"
    pj = PartitionedJobStatus.model_validate(api.get("partitionedjobs", job).get("status") or {})
    ran = set().union(*(b.indices for b in backfills))
    assert _set(pj.ledger.succeeded) == ran, f"{job}: ledger {pj.ledger.succeeded[:200]}"
    assert not _set(pj.ledger.failed), f"{job}: failed in the ledger {pj.ledger.failed[:200]}"


def log_time(log: Path, text: str, *, after: float = 0.0) -> float | None:
    """Wall-clock time (s) of the first line of the operator's ``log`` that contains ``text``
    and was logged after ``after``, or None. Lines start with ``%(asctime)s`` (local time,
    ``2026-01-31 12:00:00,123``: backfill_operator.__main__)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if text not in line:
            continue
        try:
            moment = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        if moment > after:
            return moment
    return None


def wait_phase_all(api: Api, names: Iterable[str], timeout: float) -> float:
    """Wait until every named Backfill is Succeeded (a list every 2 s); return the seconds
    waited."""
    wanted = set(names)
    started = time.monotonic()

    def done() -> bool:
        listed = api.custom.list_namespaced_custom_object(
            "backfill.dev", "v1alpha1", api.ns, "backfills"
        )
        succeeded = {
            item["metadata"]["name"]
            for item in listed["items"]
            if (item.get("status") or {}).get("phase") == "Succeeded"
        }
        return wanted <= succeeded

    def describe() -> str:
        listed = api.custom.list_namespaced_custom_object(
            "backfill.dev", "v1alpha1", api.ns, "backfills"
        )
        phases = Counter((i.get("status") or {}).get("phase") for i in listed["items"])
        return f"every Backfill Succeeded: {dict(phases)}"

    wait_for(done, timeout, 2.0, message=describe)
    return time.monotonic() - started
