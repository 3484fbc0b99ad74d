"""The reconciler against a fake API and a hand-driven clock (no cluster).

As the CronJob controller's sync loop is tested with an injected Job control and clock
(``pkg/controller/cronjob/cronjob_controllerv2_test.go``), these tests drive
:class:`~backfill_operator.controller.reconciler.Reconciler` through a fake
:class:`~backfill_operator.controller.kube.KubeApi` that records every call, and check the
order of effects (create → ledger → status → deletions → events), a Conflict on the status
write, adoption on AlreadyExists, and that a crash between any two steps is repaired by the
next pass. The real control plane is kept for what only it can show (tests/integration).
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from backfill_operator.api import labels
from backfill_operator.api.model import API_VERSION, BACKFILLS, PARTITIONED_JOBS
from backfill_operator.controller.jobcache import TRUST_SECONDS, JobCache
from backfill_operator.controller.kube import AlreadyExists, Conflict, QuotaExceeded, Rejected
from backfill_operator.controller.metrics import Metrics
from backfill_operator.controller.reconciler import (
    LEDGER_NOT_READY_REQUEUE_SECONDS,
    STATUS_DEFER_SECONDS,
    WRITTEN_BODY_SECONDS,
    PassResult,
    Reconciler,
)
from backfill_operator.planning.times import rfc3339

NS = "team"
UID = "0d5c3e0e-1111-4222-8333-444455556666"
START = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
TEMPLATE: dict[str, Any] = {
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
}


class Crash(BaseException):
    """The operator process dies here (injected; no ``except Exception`` catches it)."""


class FakeClock:
    """Time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.current = START

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return (self.current - START).total_seconds()


class FakeApi:
    """An in-memory apiserver for the calls of ``KubeApi``, with a log of every call.

    ``calls`` holds one string per call: ``"get backfills"``, ``"list jobs"``,
    ``"create job <name>"``, ``"status backfills"``, ``"status partitionedjobs"``,
    ``"delete job <name>"``, ``"event <reason>"``, ``"read job <name>"``, ``"dry-run"``.
    ``crash_on(call)`` returning True makes that call raise :class:`Crash` before it acts;
    ``conflicts[plural]`` status writes of that plural raise Conflict first; ``hidden`` Job
    names are left out of lists (another writer created them after our list).
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.crash_on: Callable[[str], bool] = lambda _: False
        self.conflicts: dict[str, int] = {}
        self.hidden: set[str] = set()
        self.after: Callable[[str], None] = lambda _: None
        self.creations: list[str] = []
        self._rv = itertools.count(1)
        # Job watches (a JobCache's observe): told every Job change at once.
        self.watchers: list[Callable[[str | None, dict[str, Any]], None]] = []

    def _notify(self, event_type: str, job: dict[str, Any]) -> None:
        for watcher in self.watchers:
            watcher(event_type, copy.deepcopy(job))

    def _enter(self, call: str) -> None:
        if self.crash_on(call):
            self.crash_on = lambda _: False  # a process dies once
            raise Crash(call)
        self.calls.append(call)

    def put(self, plural: str, body: dict[str, Any]) -> None:
        body["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[(plural, body["metadata"]["name"])] = body

    # ---- KubeApi
    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self._enter(f"get {plural}")
        found = self.objects.get((plural, name))
        result = copy.deepcopy(found)
        self.after(f"get {plural}")
        return result

    def replace_status(
        self, plural: str, body: dict[str, Any], status: dict[str, Any]
    ) -> dict[str, Any] | None:
        self._enter(f"status {plural}")
        if self.conflicts.get(plural):
            self.conflicts[plural] -= 1
            raise Conflict("the object has been modified")
        current = self.objects[(plural, body["metadata"]["name"])]
        if current["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified")
        current["status"] = copy.deepcopy(status)
        current["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(current)

    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self._enter("list jobs")
        key, value = selector.split("=")
        out = [
            copy.deepcopy(j)
            for name, j in sorted(self.jobs.items())
            if j["metadata"]["labels"].get(key) == value and name not in self.hidden
        ]
        self.after("list jobs")
        return out

    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        self._enter(f"create job {name}")
        if name in self.jobs:
            raise AlreadyExists(f'jobs.batch "{name}" already exists')
        job = copy.deepcopy(manifest)
        job["metadata"]["creationTimestamp"] = rfc3339(self.clock.now())
        job["status"] = {"startTime": rfc3339(self.clock.now())}
        self.jobs[name] = job
        self.creations.append(name)
        self._notify("ADDED", job)
        return copy.deepcopy(job)

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._enter(f"read job {name}")
        return copy.deepcopy(self.jobs.get(name))

    def dry_run_job(self, manifest: dict[str, Any]) -> str | None:
        self._enter("dry-run")
        return self.refusal

    refusal: str | None = None  # what a server-side dry run answers

    def delete_job(self, namespace: str, name: str) -> None:
        self._enter(f"delete job {name}")
        job = self.jobs.pop(name, None)
        if job is not None:
            self._notify("DELETED", job)

    def create_event(self, event: dict[str, Any]) -> None:
        self._enter(f"event {event['reason']}")
        self.events.append(event)

    # ---- test helpers
    clock: FakeClock

    def finish(self, name: str, ok: bool) -> None:
        """Mark a Job Complete or Failed, as the Job controller does."""
        stamp = rfc3339(self.clock.now())
        kind = "Complete" if ok else "Failed"
        condition = {"type": kind, "status": "True", "lastTransitionTime": stamp}
        if not ok:
            condition |= {"reason": "BackoffLimitExceeded", "message": "Job has reached the limit"}
        status = self.jobs[name]["status"]
        status["conditions"] = [condition]
        status["completionTime" if ok else "failedTime"] = stamp
        self._notify("MODIFIED", self.jobs[name])

    def changed(self, name: str) -> None:
        """Tell the watchers about a change a test made to Job ``name`` itself."""
        self._notify("MODIFIED", self.jobs[name])

    def active(self) -> list[str]:
        return sorted(n for n, j in self.jobs.items() if not j["status"].get("conditions"))

    def status(self, plural: str = BACKFILLS, name: str = "bf") -> dict[str, Any]:
        status: dict[str, Any] = self.objects[(plural, name)].get("status") or {}
        return status


def partitioned_job(values: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PartitionedJob",
        "metadata": {"name": "pj", "namespace": NS, "uid": "pj-uid", "generation": 1},
        "spec": {"partitions": {"values": values}, "jobTemplate": TEMPLATE},
    }


def backfill(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Backfill",
        "metadata": {"name": "bf", "namespace": NS, "uid": UID, "generation": 1},
        "spec": {"jobRef": {"name": "pj"}, "range": {"from": "a"}, **spec},
    }


#: For scenarios staged around the LIST (a Job hidden from it, a change while it runs); the
#: cache's own view of such races is tested in tests/unit/test_jobcache.py.
LISTED_ONLY = pytest.mark.parametrize("world", ["listed"], indirect=True)


@pytest.fixture(params=["listed", "watched"])
def world(request: pytest.FixtureRequest) -> tuple[FakeApi, Reconciler]:
    """The fake apiserver and a Reconciler that lists Jobs every pass, or (``watched``) keeps
    them in a JobCache fed by an instant watch of the fake (every scenario runs both ways)."""
    api = FakeApi()
    api.clock = FakeClock()
    return api, reconciler(api, watched=request.param == "watched")


def reconciler(api: FakeApi, *, watched: bool) -> Reconciler:
    """A Reconciler on ``api`` (a new process: empty memory), optionally with a watched cache."""
    jobs = JobCache(api.clock.monotonic) if watched else None
    if jobs is not None:
        api.watchers.append(jobs.observe)
    return Reconciler(api, Metrics(CollectorRegistry()), api.clock, parallelism=1, jobs=jobs)


def setup(
    world: tuple[FakeApi, Reconciler], values: list[str], **spec: Any
) -> tuple[FakeApi, Reconciler]:
    api, rec = world
    api.put(PARTITIONED_JOBS, partitioned_job(values))
    api.put(BACKFILLS, backfill(**spec))
    rec.reconcile_partitioned_job(NS, "pj")
    api.calls.clear()
    return api, rec


def runs(rec: Reconciler, result: str) -> float:
    value = rec.metrics.runs.labels(NS, "bf", result)._value.get()
    return float(value)


def effects(api: FakeApi) -> list[str]:
    """The calls that change something, in order (reads left out)."""
    kinds = ("create ", "status ", "delete ", "event ")
    return [c for c in api.calls if c.startswith(kinds)]


def test_first_pass_creates_then_writes_status_then_sends_events(world: Any) -> None:
    api, rec = setup(world, ["a", "b", "c"], concurrency=2)
    assert rec.reconcile(NS, "bf") == PassResult()
    created = [c for c in effects(api) if c.startswith("create job")]
    assert len(created) == 2
    assert effects(api)[2:] == ["status backfills", "event Started"]
    status = api.status()
    assert status["phase"] == "Running" and status["counts"]["running"] == 2
    assert [r["job"] for r in status["running"]] == [c.split()[-1] for c in created]
    assert rec.metrics.jobs_created.labels(NS, "bf")._value.get() == 2


def test_order_create_ledger_status_delete_events(world: Any) -> None:
    api, rec = setup(world, ["a", "b", "c"], concurrency=1, failedJobsHistoryLimit=0)
    rec.reconcile(NS, "bf")
    (first,) = api.active()
    api.finish(first, ok=False)
    api.clock.current += timedelta(seconds=40)
    api.calls.clear()
    rec.reconcile(NS, "bf")
    (second,) = api.active()
    assert effects(api) == [
        f"create job {second}",
        "status partitionedjobs",
        "status backfills",
        f"delete job {first}",
        "event PartitionFailed",
    ]
    assert api.status(PARTITIONED_JOBS, "pj")["ledger"] == {
        "succeeded": "",
        "failed": "0",
        "steps": [],
    }
    assert api.status()["partitions"]["failed"] == "0"
    assert runs(rec, "failed") == 1


def test_conflict_on_status_write_asks_for_another_pass(world: Any) -> None:
    api, rec = setup(world, ["a", "b", "c"], concurrency=2)
    api.conflicts[BACKFILLS] = 1
    result = rec.reconcile(NS, "bf")
    assert result.again
    assert "status" not in api.status()
    assert not [c for c in api.calls if c.startswith("event")]
    assert rec.metrics.jobs_created.labels(NS, "bf")._value.get() == 2  # counted once
    assert rec.reconcile(NS, "bf") == PassResult()
    assert len(api.creations) == 2  # the second pass found the Jobs: none created again
    assert api.status()["counts"]["running"] == 2
    assert rec.metrics.jobs_created.labels(NS, "bf")._value.get() == 2


@LISTED_ONLY
def test_already_exists_and_ours_is_adopted(world: Any) -> None:
    api, rec = setup(world, ["a", "b"], concurrency=1)
    # Another replica created the first Job after this pass listed the Jobs.
    other = reconciler(api, watched=rec.jobs is not None)
    other.reconcile(NS, "bf")
    (name,) = api.active()
    api.hidden.add(name)
    bf = api.objects[(BACKFILLS, "bf")]
    bf["status"] = {}
    api.calls.clear()
    assert rec.reconcile(NS, "bf") == PassResult()
    assert api.calls[api.calls.index(f"create job {name}") + 1] == f"read job {name}"
    assert api.creations == [name]
    assert [r["job"] for r in api.status()["running"]] == [name]
    assert rec.metrics.jobs_created.labels(NS, "bf")._value.get() == 0  # adopted, not created


@LISTED_ONLY
def test_already_exists_and_foreign_is_a_launch_error(world: Any) -> None:
    api, rec = setup(world, ["a", "b"], concurrency=1)
    rec.reconcile(NS, "bf")
    (name,) = api.active()
    job = api.jobs[name]
    job["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    api.hidden.add(name)
    api.objects[(BACKFILLS, "bf")]["status"] = {}
    result = rec.reconcile(NS, "bf")
    assert result.requeue_after_seconds == 30.0
    reconciling = next(c for c in api.status()["conditions"] if c["type"] == "Reconciling")
    assert "is not owned by this Backfill" in reconciling["message"]
    assert api.creations == [name]


def test_ledger_waits_for_the_partitioned_job_pass(world: Any) -> None:
    api, rec = world
    api.put(PARTITIONED_JOBS, partitioned_job(["a"]))
    api.put(BACKFILLS, backfill())
    rec.reconcile(NS, "bf")
    (name,) = api.active()
    api.finish(name, ok=True)
    before = copy.deepcopy(api.status())
    result = rec.reconcile(NS, "bf")
    assert result.requeue_after_seconds == LEDGER_NOT_READY_REQUEUE_SECONDS
    assert api.status() == before  # nothing recorded before the ledger can take it
    assert name in api.jobs
    rec.reconcile_partitioned_job(NS, "pj")
    rec.reconcile(NS, "bf")
    assert api.status()["phase"] == "Succeeded"
    assert api.status(PARTITIONED_JOBS, "pj")["ledger"]["succeeded"] == "0"


@LISTED_ONLY
def test_outcomes_of_an_older_numbering_stay_out_of_the_ledger(world: Any) -> None:
    """A pass that read the old spec cannot write its numbering back (one writer each)."""
    api, rec = setup(world, ["a", "b"], concurrency=2)
    rec.reconcile(NS, "bf")
    for name in api.active():
        api.finish(name, ok=True)

    numbering: list[str] = []
    # Another operator process (a replica taking over): the in-process lock does not cover it.
    other = reconciler(api, watched=rec.jobs is not None)

    def respec(call: str) -> None:
        # The spec changes right after this pass read the PartitionedJob (hooked on that read,
        # not on the Jobs' LIST: the LIST runs in another thread, beside the read).
        if call == "get partitionedjobs":
            api.after = lambda _: None
            pj = api.objects[(PARTITIONED_JOBS, "pj")]
            pj["spec"]["partitions"]["values"] = ["z", "a", "b"]
            pj["metadata"]["generation"] = 2
            other.reconcile_partitioned_job(NS, "pj")
            numbering.append(api.status(PARTITIONED_JOBS, "pj")["partitioning"])

    old = api.status(PARTITIONED_JOBS, "pj")["partitioning"]
    api.after = respec
    rec.reconcile(NS, "bf")
    pj_status = api.status(PARTITIONED_JOBS, "pj")
    assert numbering and numbering[0] != old
    assert pj_status["partitioning"] == numbering[0]  # not written back to the old one
    assert pj_status["ledger"] == {"succeeded": "", "failed": "", "steps": []}
    assert api.status()["partitioning"] == old  # the Backfill recorded its own numbering


def test_deleted_backfill_ends_the_loop(world: Any) -> None:
    api, rec = setup(world, ["a"])
    del api.objects[(BACKFILLS, "bf")]
    assert rec.reconcile(NS, "bf") == PassResult(gone=True)


def test_unreadable_spec_is_invalid_and_touches_nothing(world: Any) -> None:
    api, rec = setup(world, ["a"], concurrency="many")
    rec.reconcile(NS, "bf")
    assert api.status()["phase"] == "Invalid"
    assert api.creations == []  # (its Jobs are listed while it is judged: a read only)
    assert effects(api) == ["status backfills", "event InvalidSelection"]


STEPS = [
    "create job",
    "status partitionedjobs",
    "status backfills",
    "delete job",
    "event",
]


@pytest.mark.parametrize("crash_before", STEPS)
def test_a_crash_between_any_two_steps_is_repaired_by_the_next_pass(
    world: Any, crash_before: str
) -> None:
    """Each step of a busy pass in turn is where the process dies; a new process repairs it."""
    api, rec = setup(
        world,
        ["a", "b", "c", "d"],
        concurrency=2,
        successfulJobsHistoryLimit=0,
        failedJobsHistoryLimit=0,
    )
    rec.reconcile(NS, "bf")
    done, failing = api.active()
    api.finish(done, ok=True)
    api.finish(failing, ok=False)
    api.crash_on = lambda call: call.startswith(crash_before)
    with pytest.raises(Crash):
        rec.reconcile(NS, "bf")
    # A restarted operator: new memory, same cluster.
    fresh = reconciler(api, watched=rec.jobs is not None)
    for _ in range(5):
        assert fresh.reconcile(NS, "bf").again is False
        for name in api.active():
            api.finish(name, ok=True)
        api.clock.current += timedelta(seconds=1)
    status = api.status()
    assert status["phase"] == "Failed"
    assert status["partitions"] == {
        "succeeded": "0,2-3",
        "failed": "1",
        "skipped": "",
        "running": "",
        "queued": "",
        "upstreamFailed": "",
        "marked": "",
    }
    assert api.status(PARTITIONED_JOBS, "pj")["ledger"] == {
        "succeeded": "0,2-3",
        "failed": "1",
        "steps": [],
    }
    assert len(api.creations) == len(set(api.creations)) == 4  # each attempt created once
    assert api.jobs == {}  # every finished Job deleted once its outcome was recorded
    reasons = [e["reason"] for e in api.events]
    assert reasons.count("Started") == 1 and reasons.count("Failed") == 1
    assert reasons.count("PartitionFailed") <= 1  # lost only when the crash hit the events


def test_rejected_create_is_shown_and_retried_later(world: Any) -> None:
    api, rec = setup(world, ["a"])

    def refuse(manifest: dict[str, Any]) -> dict[str, Any]:
        api.calls.append("create job (refused)")
        raise Rejected("Job.batch is invalid: spec.template.spec.containers: Required value")

    api.create_job = refuse  # type: ignore[method-assign]
    result = rec.reconcile(NS, "bf")
    assert result.requeue_after_seconds == 30.0
    reconciling = next(c for c in api.status()["conditions"] if c["type"] == "Reconciling")
    assert "last launch failed: Job.batch is invalid" in reconciling["message"]
    rec.reconcile(NS, "bf")  # the refusal is remembered for this template: Invalid
    assert api.status()["phase"] == "Invalid"
    stalled = next(c for c in api.status()["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "InvalidJobTemplate"


def test_quota_refusal_waits_without_failing(world: Any) -> None:
    api, rec = setup(world, ["a", "b", "c"], concurrency=3)
    create = api.create_job
    allowed = 1

    def quota(manifest: dict[str, Any]) -> dict[str, Any]:
        if len(api.active()) >= allowed:
            api.calls.append("create job (quota)")
            raise QuotaExceeded(
                'jobs.batch "x" is forbidden: exceeded quota: jobs, requested: '
                "count/jobs.batch=1, used: count/jobs.batch=1, limited: count/jobs.batch=1"
            )
        return create(manifest)

    api.create_job = quota  # type: ignore[method-assign]
    result = rec.reconcile(NS, "bf")
    assert result.requeue_after_seconds == 30.0
    status = api.status()
    assert status["counts"]["running"] == 1 and status["counts"]["failed"] == 0
    reconciling = next(c for c in status["conditions"] if c["type"] == "Reconciling")
    assert reconciling["reason"] == "QuotaExceeded"
    assert "quota exceeded: jobs.batch" in reconciling["message"]
    assert rec.metrics.quota_refusals.labels(NS, "bf")._value.get() == 1
    allowed = 3
    api.finish(api.active()[0], ok=True)
    rec.reconcile(NS, "bf")
    assert api.status()["counts"]["running"] == 2
    reconciling = next(c for c in api.status()["conditions"] if c["type"] == "Reconciling")
    assert reconciling["reason"] == "WaitingForJobs"


def test_partition_lock_across_backfills_reads_the_jobs(world: Any) -> None:
    api, rec = setup(world, ["a", "b", "c", "d"], concurrency=2)
    second = backfill(concurrency=4, range={"from": "a", "to": "d"})
    second["metadata"] |= {"name": "bf2", "uid": "other-uid"}
    api.put(BACKFILLS, second)
    rec.reconcile(NS, "bf")
    held = api.active()
    assert all(api.jobs[n]["metadata"]["labels"][labels.LABEL_PARTITIONING] for n in held)
    rec.reconcile(NS, "bf2")
    mine = [n for n in api.active() if n not in held]
    assert sorted(
        api.jobs[n]["metadata"]["labels"][labels.LABEL_PARTITION_INDEX] for n in mine
    ) == [
        "2",
        "3",
    ]
    waiting = api.status(BACKFILLS, "bf2")["waiting"]
    assert waiting == {"onLock": 2, "holders": [{"backfill": "bf", "count": 2}], "forJobSlot": 0}


def test_kueue_jobs_are_created_suspended_and_counted_queued(world: Any) -> None:
    api, rec = setup(world, ["a", "b"], concurrency=2, kueue={"queueName": "team-queue"})
    rec.reconcile(NS, "bf")
    jobs = list(api.jobs.values())
    assert all(j["spec"]["suspend"] is True for j in jobs)
    assert all(j["metadata"]["labels"][labels.KUEUE_QUEUE_NAME] == "team-queue" for j in jobs)
    # Queued and running are counted from the Jobs: a status that only they change is
    # written within STATUS_DEFER_SECONDS of the last write.
    rec.reconcile(NS, "bf")  # now the listed Jobs are seen suspended
    assert not api.status()["counts"].get("queued")  # not written yet
    api.clock.current += timedelta(seconds=STATUS_DEFER_SECONDS)
    rec.reconcile(NS, "bf")
    counts = api.status()["counts"]
    assert counts["queued"] == 2 and counts["running"] == 0
    assert all(r["queued"] is True for r in api.status()["running"])
    jobs[0]["spec"]["suspend"] = False  # Kueue admitted one
    api.changed(jobs[0]["metadata"]["name"])
    result = rec.reconcile(NS, "bf")
    assert api.status()["counts"]["queued"] == 2  # not written yet
    assert result.requeue_after_seconds is not None
    assert 0 < result.requeue_after_seconds <= STATUS_DEFER_SECONDS
    api.clock.current += timedelta(seconds=result.requeue_after_seconds)
    rec.reconcile(NS, "bf")
    counts = api.status()["counts"]
    assert counts["queued"] == 1 and counts["running"] == 1
    assert len(api.creations) == 2  # queued Jobs hold their slots


def test_a_run_waiting_on_a_lock_is_woken_when_the_holder_records_its_outcome(
    world: Any,
) -> None:
    """The holder's ledger write wakes nobody by itself: its pass names the waiting runs."""
    api, rec = setup(world, ["a", "b"], concurrency=2)
    second = backfill(concurrency=2, range={"from": "a", "to": "b"})
    second["metadata"] |= {"name": "bf2", "uid": "other-uid"}
    api.put(BACKFILLS, second)
    rec.reconcile(NS, "bf")
    waiting = rec.reconcile(NS, "bf2")  # both partitions locked by bf
    assert waiting.requeue_after_seconds == 30.0  # the safety net
    for name in api.active():
        api.finish(name, ok=True)
    assert "bf2" in rec.reconcile(NS, "bf").wake  # bf recorded its outcomes: bf2 looks again
    assert rec.reconcile(NS, "bf2").requeue_after_seconds is None  # skipped: nothing waits
    assert api.status(BACKFILLS, "bf2")["phase"] == "Succeeded"


def test_partitioned_job_with_a_refused_template_says_so_itself(world: Any) -> None:
    api, rec = world
    api.refusal = 'Job.batch "dry-run-" is invalid: spec.template.spec.containers: Required value'
    api.put(PARTITIONED_JOBS, partitioned_job(["a", "b"]))
    rec.reconcile_partitioned_job(NS, "pj")
    status = api.status(PARTITIONED_JOBS, "pj")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Stalled"]["status"] == "True"
    assert conditions["Stalled"]["reason"] == "InvalidJobTemplate"
    assert "containers: Required value" in conditions["Stalled"]["message"]
    assert status["partitioning"]  # the numbering stands: only the template is refused
    assert [e["reason"] for e in api.events] == ["InvalidJobTemplate"]
    rec.reconcile_partitioned_job(NS, "pj")
    assert api.calls.count("dry-run") == 1  # once per template, not per pass
    api.put(BACKFILLS, backfill())
    rec.reconcile(NS, "bf")
    assert api.status()["phase"] == "Invalid" and api.creations == []


def test_a_pass_starts_from_its_own_write_only_while_the_watch_shows_it(world: Any) -> None:
    api, rec = setup(world, ["a", "b", "c", "d"], concurrency=1)
    rec.reconcile(NS, "bf")
    written = api.objects[(BACKFILLS, "bf")]["metadata"]["resourceVersion"]
    (first,) = api.active()
    api.finish(first, ok=True)
    # the watch has not delivered the write yet: read from the API
    api.calls.clear()
    rec.reconcile(NS, "bf")
    assert "get backfills" in api.calls
    # the watch's latest event is this operator's write: no GET, the write's body is used
    rec.seen_backfill(NS, "bf", api.objects[(BACKFILLS, "bf")]["metadata"]["resourceVersion"])
    (second,) = api.active()
    api.finish(second, ok=True)
    api.calls.clear()
    rec.reconcile(NS, "bf")
    assert "get backfills" not in api.calls
    assert api.status()["counts"]["succeeded"] == 2
    # a change by someone else (another version seen): read again, and see the change
    api.objects[(BACKFILLS, "bf")]["spec"]["suspend"] = True
    api.objects[(BACKFILLS, "bf")]["metadata"]["resourceVersion"] = "999"
    rec.seen_backfill(NS, "bf", "999")
    (third,) = api.active()
    api.finish(third, ok=True)
    api.calls.clear()
    rec.reconcile(NS, "bf")
    assert "get backfills" in api.calls
    assert not [c for c in api.calls if c.startswith("create job")]  # suspended: no launch
    assert written != "999"
    # past WRITTEN_BODY_SECONDS the write is not trusted even when the watch agrees
    rec.seen_backfill(NS, "bf", api.objects[(BACKFILLS, "bf")]["metadata"]["resourceVersion"])
    api.clock.current += timedelta(seconds=WRITTEN_BODY_SECONDS + 1)
    api.calls.clear()
    rec.reconcile(NS, "bf")
    assert "get backfills" in api.calls


def test_a_deletion_in_flight_or_done_is_not_sent_again() -> None:
    """Deletions run in the background: a pass that still sees the Job does not resend it,
    while the request runs or after it ended (the pass may have read the Jobs before)."""
    import threading

    from backfill_operator.controller.actions import JobActions

    release = threading.Event()
    sent: list[str] = []

    class SlowDeletes(FakeApi):
        def delete_job(self, namespace: str, name: str) -> None:
            sent.append(name)
            release.wait(10)

    actions = JobActions(SlowDeletes(), Metrics(CollectorRegistry()), 4, background=True)
    actions.delete(NS, ["a", "b"])
    actions.delete(NS, ["a", "c"])  # "a" is still being deleted
    release.set()
    deadline = time.monotonic() + 10
    while actions._deleting and time.monotonic() < deadline:
        time.sleep(0.01)
    actions.delete(NS, ["b", "d"])  # "b" was deleted already
    actions._pool.shutdown(wait=True)
    assert sorted(sent) == ["a", "b", "c", "d"]


def test_a_watched_pass_refills_without_reading_jobs_or_its_job_again() -> None:
    """With the Job cache fed by the watch, a refill pass needs no LIST and no GET."""
    api = FakeApi()
    api.clock = FakeClock()
    rec = reconciler(api, watched=True)
    setup((api, rec), ["a", "b", "c", "d"], concurrency=2)
    rec.reconcile(NS, "bf")
    assert "list jobs" in api.calls  # the first pass lists: nothing vouches for the cache
    for plural in (BACKFILLS, PARTITIONED_JOBS):
        rv = api.objects[(plural, "bf" if plural == BACKFILLS else "pj")]["metadata"]
        getattr(rec, "seen_backfill" if plural == BACKFILLS else "seen_partitioned_job")(
            NS, rv["name"], rv["resourceVersion"]
        )
    first, _ = api.active()
    api.finish(first, ok=True)
    api.calls.clear()
    rec.reconcile(NS, "bf")
    assert not [c for c in api.calls if c.startswith(("list", "get"))]
    assert len(api.active()) == 2 and len(api.creations) == 3
    assert api.status()["counts"]["succeeded"] == 1


def test_a_silent_watch_still_shows_the_jobs_this_process_created() -> None:
    """Expectations: Jobs created by a pass are seen by the next one before their events."""
    api = FakeApi()
    api.clock = FakeClock()
    rec = reconciler(api, watched=True)
    setup((api, rec), ["a", "b", "c", "d"], concurrency=2)
    api.watchers.clear()  # the watch delivers nothing from here on
    rec.reconcile(NS, "bf")
    api.calls.clear()
    for _ in range(3):
        rec.reconcile(NS, "bf")
    assert "list jobs" not in api.calls
    assert len(api.creations) == 2  # nothing created again, concurrency held
    # A Job deleted unseen (a ghost) holds its slot until the next LIST, TRUST_SECONDS on.
    first, _ = api.active()
    api.finish(first, ok=True)
    api.jobs.pop(first)
    rec.reconcile(NS, "bf")
    assert len(api.creations) == 2
    api.clock.current += timedelta(seconds=TRUST_SECONDS + 1)
    rec.reconcile(NS, "bf")
    assert "list jobs" in api.calls
    assert len(api.creations) == 3 and len(api.active()) == 2


def test_a_pass_that_only_refills_a_slot_puts_off_its_status_write(world: Any) -> None:
    """A freed slot is refilled at once; the status follows within STATUS_DEFER_SECONDS."""
    api, rec = setup(world, ["a", "b", "c", "d"], concurrency=1)
    rec.reconcile(NS, "bf")
    (first,) = api.active()
    # its pod succeeded (the Job is not Complete yet): the slot is free, nothing recorded
    api.calls.clear()
    result = rec.reconcile(NS, "bf", pods_done={first})
    assert [c for c in effects(api) if c.startswith("status")] == []
    assert len(api.creations) == 2
    assert [r["key"] for r in api.status()["running"]] == ["a"]  # as last written
    assert result.requeue_after_seconds == STATUS_DEFER_SECONDS
    # an outcome is written at once, with the Job the previous pass launched
    api.finish(first, ok=True)
    api.calls.clear()
    rec.reconcile(NS, "bf")
    assert "status backfills" in api.calls
    assert [r["key"] for r in api.status()["running"]] == ["b"]
    assert api.status()["counts"]["succeeded"] == 1
    # a restarted operator (no memory of its writes) writes what it finds at once
    (second,) = api.active()
    fresh = reconciler(api, watched=rec.jobs is not None)
    api.calls.clear()
    fresh.reconcile(NS, "bf", pods_done={second})
    assert "status backfills" in api.calls
    assert sorted(r["key"] for r in api.status()["running"]) == ["b", "c"]
