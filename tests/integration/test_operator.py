"""The operator against the real control plane, run as users run it (a separate process)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from helpers import wait_for
from operator_support import OperatorProcess

GROUP, VERSION = "backfill.dev", "v1alpha1"
UID_LABEL = "backfill.dev/backfill-uid"


def partitioned_job(
    name: str,
    *,
    values: list[str] | None = None,
    cron: str | None = None,
    start: str = "2024-01-01",
    time_zone: str = "UTC",
    annotations: dict[str, str] | None = None,
    backoff_limit: int = 0,
) -> dict[str, Any]:
    partitions: dict[str, Any] = (
        {"values": values}
        if values is not None
        else {"schedule": {"cron": cron, "start": start, "timeZone": time_zone}}
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PartitionedJob",
        "metadata": {"name": name},
        "spec": {
            "partitions": partitions,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": backoff_limit,
                    "template": {
                        "metadata": {
                            "annotations": {
                                "kwok.backfill.dev/duration": "1s",
                                **(annotations or {}),
                            }
                        },
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "example.com/etl:1",
                                    "args": ["--date", "$(PARTITION_KEY)"],
                                }
                            ],
                        },
                    },
                }
            },
        },
    }


def backfill(name: str, job: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Backfill",
        "metadata": {"name": name},
        "spec": {"jobRef": {"name": job}, **spec},
    }


class Api:
    """Small helpers over the official client for one test namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.ns = namespace

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural = obj["kind"].lower() + "s"
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, obj
        )
        return created

    def get(self, plural: str, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name
        )
        return got

    def patch_spec(self, plural: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name, {"spec": spec}
        )

    def delete(self, plural: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)

    def status(self, name: str) -> dict[str, Any]:
        return self.get("backfills", name).get("status") or {}

    def wait_phase(self, name: str, phases: set[str], timeout: float = 120) -> dict[str, Any]:
        """Wait until the status of the current generation shows one of ``phases``."""

        def check() -> dict[str, Any] | None:
            obj = self.get("backfills", name)
            status: dict[str, Any] = obj.get("status") or {}
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            return status if current and status.get("phase") in phases else None

        return wait_for(check, timeout, 0.3, message=lambda: f"phase {phases}: {self.status(name)}")

    def jobs(self) -> list[Any]:
        return list(self.batch.list_namespaced_job(self.ns).items)

    def events(self, name: str) -> list[Any]:
        return [
            e
            for e in self.core.list_namespaced_event(self.ns).items
            if e.involved_object.name == name and e.involved_object.kind == "Backfill"
        ]


class JobRecorder:
    """Watches the namespace's Jobs and pods from before the test acts; records creations and
    the largest number of Jobs holding a concurrency slot at once.

    A Job holds a slot from its creation until its pod succeeded, it finished (``Complete`` or
    ``Failed``) or it was deleted, whichever comes first (the operator refills a slot when the
    pod succeeds: docs/usage.md). The two watches deliver in no common order, so the count is
    replayed in the order of the events' resourceVersions: on this control plane (one etcd)
    they are etcd revisions, one sequence across resources. ``max_active`` is therefore exact,
    whichever watch the operator or this recorder heard first.
    """

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.created: list[tuple[str, str, str]] = []  # (name, index, attempt)
        self.active: set[str] = set()  # Jobs not finished nor deleted (finishing included)
        self.events = 0
        self._lock = threading.Lock()
        # (resourceVersion, +1 / -1, Job name): slot taken / freed
        self._slots: list[tuple[int, int, str]] = []
        self._freed: set[str] = set()
        self._watch = watch.Watch()
        self._pod_watch = watch.Watch()
        self._stopping = False
        self._ready = threading.Barrier(3)
        self._threads = [
            threading.Thread(target=self._run, args=(self._record,), daemon=True),
            threading.Thread(target=self._run, args=(self._record_pods,), daemon=True),
        ]

    def __enter__(self) -> JobRecorder:
        for thread in self._threads:
            thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self._watch.stop()
        self._pod_watch.stop()

    def _run(self, record: Any) -> None:
        try:
            record()
        except Exception:  # the watch outlives the test; the cluster may be gone by then
            if not self._stopping:
                raise

    def _stream(self, watcher: watch.Watch, lister: Any, handle: Any) -> None:
        listed = lister(self.namespace)
        version = listed.metadata.resource_version
        for item in listed.items:
            handle("ADDED", item)
        self._ready.wait(10)
        # The apiserver ends a watch after timeoutSeconds: watch again from the last event seen,
        # so runs longer than that are recorded whole (a 410 Gone fails the test loudly).
        while not self._stopping:
            for event in watcher.stream(
                lister, self.namespace, resource_version=version, timeout_seconds=300
            ):
                handle(event["type"], event["object"])
                version = event["object"].metadata.resource_version

    def _record(self) -> None:
        self._stream(self._watch, self.batch.list_namespaced_job, self._handle_job)

    def _record_pods(self) -> None:
        self._stream(self._pod_watch, self.core.list_namespaced_pod, self._handle_pod)

    def _free(self, version: str, job: str) -> None:
        if job not in self._freed:
            self._freed.add(job)
            self._slots.append((int(version), -1, job))

    def _handle_job(self, event_type: str, job: Any) -> None:
        with self._lock:
            name = job.metadata.name
            finished = any(
                c.type in ("Complete", "Failed") and c.status == "True"
                for c in (job.status.conditions or [])
            )
            if event_type == "ADDED" and name not in self.active and name not in self._freed:
                self._slots.append((int(job.metadata.resource_version), 1, name))
            if event_type == "DELETED" or finished:
                self._free(job.metadata.resource_version, name)
            self.handle(event_type, job)

    def _handle_pod(self, event_type: str, pod: Any) -> None:
        if pod.status.phase != "Succeeded":
            return
        with self._lock:
            for ref in pod.metadata.owner_references or []:
                if ref.controller and ref.kind == "Job":
                    self._free(pod.metadata.resource_version, ref.name)

    @property
    def max_active(self) -> int:
        """The most Jobs holding a slot at once (see the class doc), so far."""
        with self._lock:
            slots = sorted(self._slots)
        most = held = 0
        for _, change, _ in slots:
            held += change
            most = max(most, held)
        return most

    def handle(self, event_type: str, job: Any) -> None:
        """Record one watch event of a Job (subclasses record more; called under a lock)."""
        name = job.metadata.name
        self.events += 1
        if event_type == "ADDED":
            labels = job.metadata.labels or {}
            self.created.append(
                (
                    name,
                    labels.get("backfill.dev/partition-index", ""),
                    labels.get("backfill.dev/attempt", ""),
                )
            )
        finished = any(
            c.type in ("Complete", "Failed") and c.status == "True"
            for c in (job.status.conditions or [])
        )
        if event_type == "DELETED" or finished:
            self.active.discard(name)
        else:
            self.active.add(name)


@pytest.fixture
def api(kube_api: client.ApiClient, namespace: str) -> Api:
    return Api(kube_api, namespace)


@pytest.fixture
def recorder(kube_api: client.ApiClient, namespace: str) -> Iterator[JobRecorder]:
    with JobRecorder(kube_api, namespace) as rec:
        yield rec


def test_backfill_runs_every_partition_once_within_concurrency(
    operator: OperatorProcess, api: Api, recorder: JobRecorder
) -> None:
    api.create(partitioned_job("daily", cron="0 0 * * *"))
    api.create(
        backfill(
            "jan",
            "daily",
            range={"from": "2024-01-01", "to": "2024-01-20"},
            concurrency=4,
            successfulJobsHistoryLimit=2,
        )
    )
    status = api.wait_phase("jan", {"Succeeded"})
    assert status["counts"] == {
        "total": 20,
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 20,
        "failed": 0,
        "skipped": 0,
        "upstreamFailed": 0,
        "marked": 0,
    }
    assert status["partitions"]["succeeded"] == "0-19"
    assert status["progress"] == "20/20"
    assert status["selection"]["first"] == "2024-01-01"
    assert status["selection"]["last"] == "2024-01-20"
    assert recorder.max_active <= 4
    keys = sorted((i, a) for _, i, a in recorder.created)
    assert keys == sorted((str(i), "1") for i in range(20))
    # finished Jobs are deleted once recorded, except the history limit
    wait_for(lambda: len(api.jobs()) == 2, 30, message="history limit applied")
    for job in api.jobs():  # kopf only watches Jobs: no finalizers, no kopf annotations
        assert not job.metadata.finalizers
        assert not [a for a in job.metadata.annotations if "kopf" in a]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Stalled"]["status"] == "False"
    assert conditions["Reconciling"]["status"] == "False"
    reasons = [e.reason for e in api.events("jan")]
    assert "Started" in reasons and "Succeeded" in reasons
    ledger = api.get("partitionedjobs", "daily")["status"]["ledger"]
    assert ledger["succeeded"] == "0-19"
    # every container saw its partition through $(PARTITION_KEY) env expansion
    metrics = operator.metrics()
    assert (
        f'backfill_partitions{{backfill="jan",namespace="{api.ns}",state="succeeded"}} 20.0'
        in metrics
    )


def test_kill_and_restart_mid_backfill_no_duplicates_exact_counts(
    operator: OperatorProcess, api: Api, recorder: JobRecorder
) -> None:
    api.create(
        partitioned_job(
            "regions",
            values=[f"r{i:02d}" for i in range(24)],
            annotations={"kwok.backfill.dev/duration": "2s"},
        )
    )
    api.create(backfill("all", "regions", range={"from": "r00", "to": "r23"}, concurrency=5))
    wait_for(
        lambda: api.status("all").get("counts", {}).get("succeeded", 0) >= 5,
        90,
        message="5 partitions succeeded",
    )
    operator.kill()
    # Jobs keep running and finishing while the operator is down.
    wait_for(
        lambda: any(
            any(c.type == "Complete" for c in (j.status.conditions or [])) for j in api.jobs()
        ),
        30,
        message="a Job finished while the operator was down",
    )
    operator.restart()
    status = api.wait_phase("all", {"Succeeded"}, timeout=180)
    assert status["counts"]["succeeded"] == 24
    assert status["counts"]["total"] == 24
    created = [(i, a) for _, i, a in recorder.created]
    assert len(created) == len(set(created)) == 24
    assert recorder.max_active <= 5


def test_failure_retry_and_failure_budget(
    operator: OperatorProcess, api: Api, recorder: JobRecorder
) -> None:
    api.create(
        partitioned_job(
            "flaky",
            values=["a", "b", "c", "d", "e", "f"],
            annotations={
                "kwok.backfill.dev/fail-partitions": "b,d,e",
            },
        )
    )
    # b, d and e fail on every attempt; with maxFailedPartitions 2 the backfill stops after
    # the second final failure (d's retry) and ends Failed. Retries that are due go first, so
    # with no backoff and one slot the order is fixed: a, b, b again, c, d, d again.
    api.create(
        backfill(
            "budget",
            "flaky",
            partitions=["a", "b", "c", "d", "e", "f"],
            concurrency=1,
            retries={"limit": 1, "backoffSeconds": 0},
            maxFailedPartitions=2,
        )
    )
    status = api.wait_phase("budget", {"Failed"}, timeout=120)
    assert status["counts"]["failed"] == 2
    assert status["counts"]["succeeded"] == 2  # a and c
    assert status["counts"]["pending"] == 2  # e and f never launched
    assert status["partitions"]["failed"] == "1,3"
    attempts = sorted((i, a) for _, i, a in recorder.created)
    assert attempts == [
        ("0", "1"),
        ("1", "1"),
        ("1", "2"),
        ("2", "1"),
        ("3", "1"),
        ("3", "2"),
    ]
    failures = {f["key"]: f for f in status["failures"]}
    assert failures["b"]["attempts"] == 2 and "retryAt" not in failures["b"]
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "FailureBudgetExhausted"
    reasons = [e.reason for e in api.events("budget")]
    assert "PartitionFailed" in reasons and "Failed" in reasons


def test_fail_once_then_succeed_on_retry(operator: OperatorProcess, api: Api) -> None:
    api.create(
        partitioned_job(
            "api",
            cron="0 0 * * *",
            time_zone="America/New_York",
            annotations={
                "kwok.backfill.dev/fail-partitions": "2024-03-11",
                "kwok.backfill.dev/fail-attempts": "1",
            },
        )
    )
    api.create(
        backfill(
            "rerun",
            "api",
            range={"from": "2024-03-10", "to": "2024-03-12"},
            retries={"limit": 2, "backoffSeconds": 1},
        )
    )
    status = api.wait_phase("rerun", {"Succeeded"})
    assert status["counts"]["succeeded"] == 3
    assert status["failures"] == [] or "failures" not in status


def test_live_edits_suspend_resume_and_concurrency(
    operator: OperatorProcess, api: Api, recorder: JobRecorder
) -> None:
    api.create(
        partitioned_job(
            "slow",
            values=[f"v{i}" for i in range(12)],
            annotations={"kwok.backfill.dev/duration": "2s"},
        )
    )
    api.create(backfill("edit", "slow", range={"from": "v0"}, concurrency=1, suspend=True))
    status = api.wait_phase("edit", {"Suspended"})
    assert status["counts"]["running"] == 0
    assert recorder.created == []
    api.patch_spec("backfills", "edit", {"suspend": False, "concurrency": 4})
    wait_for(lambda: recorder.max_active >= 3, 30, message="concurrency raised to 4 applies")
    api.patch_spec("backfills", "edit", {"suspend": True})
    api.wait_phase("edit", {"Suspended"})
    wait_for(lambda: not recorder.active, 30, message="running Jobs finish while suspended")
    created = len(recorder.created)
    api.patch_spec("backfills", "edit", {"suspend": False})
    status = api.wait_phase("edit", {"Succeeded"}, timeout=120)
    assert status["counts"]["succeeded"] == 12
    assert len(recorder.created) == 12 > created
    assert recorder.max_active <= 4


def test_wider_range_and_template_change_apply_to_new_partitions(
    operator: OperatorProcess, api: Api, kube_api: client.ApiClient
) -> None:
    api.create(partitioned_job("grow", values=[f"g{i}" for i in range(6)]))
    api.create(backfill("grow", "grow", range={"from": "g0", "to": "g1"}, concurrency=2))
    api.wait_phase("grow", {"Succeeded"})
    template = api.get("partitionedjobs", "grow")["spec"]["jobTemplate"]
    template["metadata"] = {"labels": {"version": "two"}}
    api.patch_spec("partitionedjobs", "grow", {"jobTemplate": template})
    api.patch_spec("backfills", "grow", {"range": {"from": "g0", "to": "g5"}})
    status = api.wait_phase("grow", {"Succeeded"})
    assert status["counts"]["succeeded"] == 6 and status["counts"]["total"] == 6
    jobs = api.jobs()
    assert jobs, "history keeps the newest Jobs"
    assert all(j.metadata.labels.get("version") == "two" for j in jobs)
    hashes = {j.metadata.annotations["backfill.dev/template-hash"] for j in jobs}
    assert hashes == {status["templateHash"]}


def test_deleting_a_backfill_deletes_its_jobs(operator: OperatorProcess, api: Api) -> None:
    api.create(
        partitioned_job(
            "long", values=["x", "y"], annotations={"kwok.backfill.dev/duration": "600s"}
        )
    )
    api.create(backfill("gone", "long", partitions=["x", "y"]))
    wait_for(lambda: len(api.jobs()) == 2, 30, message="2 Jobs running")
    wait_for(lambda: 'backfill="gone"' in operator.metrics(), 30, message="metrics series")
    api.delete("backfills", "gone")
    wait_for(lambda: not api.jobs(), 60, message="Jobs garbage-collected")
    wait_for(lambda: 'backfill="gone"' not in operator.metrics(), 30, message="series removed")


def test_deleting_the_partitioned_job_stalls_its_backfills(
    operator: OperatorProcess, api: Api
) -> None:
    api.create(
        partitioned_job(
            "doomed", values=["x", "y", "z"], annotations={"kwok.backfill.dev/duration": "600s"}
        )
    )
    api.create(backfill("orphan", "doomed", partitions=["x", "y", "z"], concurrency=1))
    wait_for(lambda: len(api.jobs()) == 1, 30, message="1 Job running")
    api.delete("partitionedjobs", "doomed")
    status = api.wait_phase("orphan", {"Invalid"})
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "PartitionedJobNotFound"
    assert len(api.jobs()) == 1, "the running Job is left to finish; nothing new starts"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"range": {"from": "2024-02-01", "to": "2024-01-01"}},
            "range.from must not be after range.to",
        ),
        ({"range": {"from": "a"}, "partitions": ["a"]}, "exactly one of range and partitions"),
        ({}, "exactly one of range and partitions"),
        ({"range": {"from": "a"}, "concurrency": 0}, "spec.concurrency"),
        ({"range": {"from": "a"}, "order": "Sideways"}, 'Unsupported value: "Sideways"'),
        ({"range": {"from": "a"}, "reprocess": "Some"}, 'Unsupported value: "Some"'),
    ],
)
def test_schema_and_cel_reject_at_apply(
    api: Api, crds_installed: None, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as err:
        api.create(backfill("bad", "any", **spec))
    assert err.value.status == 422
    assert message in json.loads(err.value.body)["message"]


def test_partitioned_job_schema_rejects_both_schedule_and_values(
    api: Api, crds_installed: None
) -> None:
    obj = partitioned_job("both", values=["a"])
    obj["spec"]["partitions"]["schedule"] = {"cron": "0 0 * * *", "start": "2024-01-01"}
    with pytest.raises(ApiException) as err:
        api.create(obj)
    assert "exactly one of schedule and values must be set" in json.loads(err.value.body)["message"]


@pytest.mark.parametrize(
    ("job", "spec", "reason", "text"),
    [
        (
            {"cron": "61 * * * *"},
            {"range": {"from": "2024-01-01"}},
            "InvalidPartitions",
            "61 * * * *",
        ),
        (
            {"cron": "0 0 * * *", "time_zone": "Mars/Base"},
            {"range": {"from": "2024-01-01"}},
            "InvalidPartitions",
            "Mars/Base",
        ),
        ({"values": ["a", "b"]}, {"partitions": ["a", "zz"]}, "InvalidSelection", "zz"),
        (None, {"range": {"from": "2024-01-01"}}, "PartitionedJobNotFound", "not found"),
        (
            {"cron": "* * * * *", "start": "2020-01-01"},
            {"range": {"from": "2020-01-01"}},
            "InvalidSelection",
            "1000000",
        ),
        (
            {"values": ["a"], "backoff_limit": -3},
            {"partitions": ["a"]},
            "InvalidJobTemplate",
            "backoffLimit",
        ),
    ],
)
def test_invalid_input_gives_invalid_phase_event_and_no_job(
    operator: OperatorProcess,
    api: Api,
    job: dict[str, Any] | None,
    spec: dict[str, Any],
    reason: str,
    text: str,
) -> None:
    if job is not None:
        api.create(partitioned_job("pj", **job))
    api.create(backfill("bf", "pj", **spec))
    status = api.wait_phase("bf", {"Invalid"}, timeout=60)
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert stalled["reason"] == reason
    assert text in stalled["message"]
    wait_for(lambda: [e for e in api.events("bf") if e.type == "Warning"], 30, message="event")
    assert api.jobs() == []
    assert operator.running()


def test_dry_run_plans_without_jobs(operator: OperatorProcess, api: Api) -> None:
    api.create(partitioned_job("plan", cron="0 0 * * *"))
    api.create(
        backfill("dry", "plan", range={"from": "2024-01-01", "to": "2024-03-31"}, dryRun=True)
    )
    status = wait_for(lambda: api.status("dry").get("plan"), 60, message="plan in status")
    assert status == {
        "count": 91,
        "first": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
        "last": ["2024-03-27", "2024-03-28", "2024-03-29", "2024-03-30", "2024-03-31"],
        "skipped": 0,
    }
    assert api.status("dry")["phase"] == "Pending"
    assert api.jobs() == []


def test_reprocess_missing_skips_recorded_partitions(operator: OperatorProcess, api: Api) -> None:
    api.create(partitioned_job("ledger", values=["a", "b", "c", "d"]))
    api.create(backfill("first", "ledger", partitions=["a", "b"]))
    api.wait_phase("first", {"Succeeded"})
    api.create(backfill("second", "ledger", range={"from": "a", "to": "d"}))
    status = api.wait_phase("second", {"Succeeded"})
    assert status["counts"]["skipped"] == 2
    assert status["counts"]["succeeded"] == 2
    assert status["partitions"]["skipped"] == "0-1"
    assert status["progress"] == "2/4 (+2 skipped)"


def test_status_writes_are_coalesced(
    operator: OperatorProcess, api: Api, kube_api: client.ApiClient, recorder: JobRecorder
) -> None:
    api.create(partitioned_job("many", values=[f"m{i:02d}" for i in range(30)]))
    custom = client.CustomObjectsApi(kube_api)
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, api.ns, "backfills")
    writes: list[str] = []
    done = threading.Event()

    def count() -> None:
        w = watch.Watch()
        for event in w.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            api.ns,
            "backfills",
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=300,
        ):
            writes.append(event["type"])
            if (event["object"].get("status") or {}).get("phase") == "Succeeded":
                w.stop()
        done.set()

    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    api.create(backfill("coalesce", "many", range={"from": "m00"}, concurrency=10))
    assert done.wait(180), "backfill finished"
    modified = writes.count("MODIFIED")
    # Far fewer status writes than Job events (each Job has 4+); at most ~one per partition.
    assert modified < recorder.events / 2
    assert modified <= 30 + 2
