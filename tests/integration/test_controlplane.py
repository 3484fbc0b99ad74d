"""The local control plane behaves like a real cluster for what the operator relies on.

Runs against the real processes started by the ``cluster`` fixture: apiserver validation of a
structural CRD schema, the Job controller with KWOK pods (success, failure with exit codes,
the fail-partitions/fail-attempts annotations), garbage collection, TTL-after-finished, pod
deletion without a kubelet, and 200 Jobs at once.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException

from devcluster import Cluster, stages_file
from helpers import wait_for

JOB_TIMEOUT = 90.0


def job_manifest(
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    completions: int = 1,
    backoff_limit: int = 0,
    owner_references: list[dict[str, Any]] | None = None,
    ttl_seconds_after_finished: int | None = None,
) -> dict[str, Any]:
    """A batch/v1 Job whose pod template carries ``annotations`` (the KWOK contract)."""
    spec: dict[str, Any] = {
        "completions": completions,
        "parallelism": completions,
        "backoffLimit": backoff_limit,
        "template": {
            "metadata": {"annotations": annotations or {}, "labels": labels or {}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "work", "image": "example.invalid/work:1"}],
            },
        },
    }
    if ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = ttl_seconds_after_finished
    metadata: dict[str, Any] = {"name": name}
    if owner_references:
        metadata["ownerReferences"] = owner_references
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def finished_condition(job: Any) -> str | None:
    """Return "Complete" or "Failed" once the Job controller has set that condition."""
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def wait_finished(batch: client.BatchV1Api, namespace: str, name: str) -> Any:
    """Wait until the Job is Complete or Failed; return the Job."""

    def job_if_finished() -> Any:
        job = batch.read_namespaced_job(name, namespace)
        return job if finished_condition(job) else None

    return wait_for(job_if_finished, JOB_TIMEOUT, message=f"Job {namespace}/{name} to finish")


def job_pods(core: client.CoreV1Api, namespace: str, job_name: str) -> list[Any]:
    selector = f"batch.kubernetes.io/job-name={job_name}"
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


def is_not_found(read: Callable[[], object]) -> bool:
    """Call ``read``; True on HTTP 404, False when the object is still there."""
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def terminated_state(pod: Any) -> Any:
    statuses = pod.status.container_statuses or []
    assert len(statuses) == 1, f"{pod.metadata.name}: container statuses {statuses}"
    terminated = statuses[0].state.terminated
    assert terminated is not None, f"{pod.metadata.name}: container not terminated"
    return terminated


# --------------------------------------------------------------------------------- apiserver


def test_structural_crd_schema_rejects_invalid_object_with_apiserver_message(
    cluster: Cluster, kube_api: ApiClient, namespace: str
) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    group = f"t{secrets.token_hex(4)}.devcluster.backfill.dev"
    crd_name = f"widgets.{group}"
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["color"],
                                        "properties": {
                                            "color": {"type": "string", "enum": ["red", "blue"]},
                                            "replicas": {"type": "integer", "minimum": 1},
                                        },
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    try:

        def established() -> bool:
            crd = ext.read_custom_resource_definition(crd_name)
            return any(
                c.type == "Established" and c.status == "True"
                for c in (crd.status.conditions or [])
            )

        wait_for(established, 30, message=f"CRD {crd_name} to be Established")

        def widget(name: str, spec: dict[str, Any]) -> str:
            manifest = {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            }
            return json.dumps(manifest)

        cluster.kubectl("create", "-f", "-", input=widget("good", {"color": "red", "replicas": 2}))
        strict = cluster.kubectl(
            "create", "-f", "-", input=widget("extra", {"color": "blue", "x": 1}), check=False
        )
        assert 'strict decoding error: unknown field "spec.x"' in strict.stderr
        cluster.kubectl(
            "create",
            "--validate=false",
            "-f",
            "-",
            input=widget("pruned", {"color": "blue", "x": 1}),
        )
        stored = json.loads(
            cluster.kubectl(
                "get", f"widgets.{group}", "pruned", "-n", namespace, "-o", "json"
            ).stdout
        )
        assert stored["spec"] == {"color": "blue"}, "the unknown field was not pruned"

        bad = cluster.kubectl(
            "create",
            "-f",
            "-",
            input=widget("bad", {"color": "green", "replicas": "three"}),
            check=False,
        )
        assert bad.returncode != 0
        assert 'The Widget "bad" is invalid' in bad.stderr
        assert 'spec.color: Unsupported value: "green"' in bad.stderr
        assert "spec.replicas in body must be of type integer" in bad.stderr
        missing = cluster.kubectl(
            "get", f"widgets.{group}", "bad", "-n", namespace, "--ignore-not-found", "-o", "name"
        )
        assert missing.stdout.strip() == ""
    finally:
        ext.delete_custom_resource_definition(crd_name)


# ------------------------------------------------------------------------ Jobs on KWOK pods


def test_job_with_three_completions_completes_and_pods_succeed(
    kube_api: ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    batch.create_namespaced_job(
        namespace,
        job_manifest("three", completions=3, annotations={"kwok.backfill.dev/duration": "2s"}),
    )

    job = wait_finished(batch, namespace, "three")

    assert finished_condition(job) == "Complete"
    assert job.status.succeeded == 3
    assert not job.status.failed
    pods = job_pods(core, namespace, "three")
    assert [p.status.phase for p in pods] == ["Succeeded"] * 3
    for pod in pods:
        terminated = terminated_state(pod)
        assert (terminated.exit_code, terminated.reason) == (0, "Completed")
        ran = terminated.finished_at - terminated.started_at
        # Timestamps have 1 s resolution; KWOK never finishes a pod before its duration.
        assert ran.total_seconds() >= 1, f"{pod.metadata.name} ran {ran} < duration 2s"


def test_failing_job_fails_after_backoff_limit_with_exit_code(
    kube_api: ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    annotations = {"kwok.backfill.dev/outcome": "fail", "kwok.backfill.dev/exit-code": "3"}
    batch.create_namespaced_job(
        namespace, job_manifest("doomed", annotations=annotations, backoff_limit=1)
    )

    job = wait_finished(batch, namespace, "doomed")

    assert finished_condition(job) == "Failed"
    reasons = {c.reason for c in job.status.conditions if c.type == "Failed"}
    assert reasons == {"BackoffLimitExceeded"}
    assert job.status.failed == 2  # backoffLimit 1: the first pod and one retry
    assert not job.status.succeeded
    pods = job_pods(core, namespace, "doomed")
    assert [p.status.phase for p in pods] == ["Failed", "Failed"]
    assert [terminated_state(p).exit_code for p in pods] == [3, 3]


FAIL_PARTITIONS = {
    "kwok.backfill.dev/fail-partitions": "2024-01-02, 2024-01-03",
    "kwok.backfill.dev/duration": "200ms",
}

# (job name, partition key, attempt, where the attempt is, fail-attempts, expected condition)
PARTITION_CASES = [
    ("p2-a1", "2024-01-02", "1", "annotation", "1", "Failed"),
    ("p2-a2", "2024-01-02", "2", "annotation", "1", "Complete"),
    ("p1-a1", "2024-01-01", "1", "annotation", "1", "Complete"),
    ("p3-a5-always", "2024-01-03", "5", "annotation", None, "Failed"),
    ("p2-label-a1", "2024-01-02", "1", "label", "1", "Failed"),
    ("p2-label-a2", "2024-01-02", "2", "label", "1", "Complete"),
    ("p2-no-attempt", "2024-01-02", None, "annotation", "1", "Failed"),
]


def test_fail_partitions_fail_listed_keys_until_fail_attempts(
    kube_api: ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    for name, key, attempt, place, fail_attempts, _ in PARTITION_CASES:
        annotations = {**FAIL_PARTITIONS, "backfill.dev/partition-key": key}
        labels: dict[str, str] = {}
        if fail_attempts is not None:
            annotations["kwok.backfill.dev/fail-attempts"] = fail_attempts
        if attempt is not None:
            (annotations if place == "annotation" else labels)["backfill.dev/attempt"] = attempt
        batch.create_namespaced_job(
            namespace, job_manifest(name, annotations=annotations, labels=labels)
        )

    outcomes = {
        name: finished_condition(wait_finished(batch, namespace, name))
        for name, *_ in PARTITION_CASES
    }

    assert outcomes == {case[0]: case[-1] for case in PARTITION_CASES}
    for name, *_, expected in PARTITION_CASES:
        (pod,) = job_pods(core, namespace, name)
        assert terminated_state(pod).exit_code == (1 if expected == "Failed" else 0), name


def test_two_hundred_jobs_created_at_once_all_complete(kube_api: ApiClient, namespace: str) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    count = 200
    annotations = {"kwok.backfill.dev/duration": "1s", "kwok.backfill.dev/duration-jitter": "3s"}
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda i: batch.create_namespaced_job(
                    namespace, job_manifest(f"bulk-{i:03d}", annotations=annotations)
                ),
                range(count),
            )
        )

    def finished() -> dict[str, str | None] | None:
        jobs = batch.list_namespaced_job(namespace).items
        states = {j.metadata.name: finished_condition(j) for j in jobs}
        return states if len(states) == count and all(states.values()) else None

    states = wait_for(finished, 300, interval=1.0, message=f"{count} Jobs to finish")

    assert sorted(states.values()) == ["Complete"] * count
    phases = [p.status.phase for p in core.list_namespaced_pod(namespace).items]
    assert phases == ["Succeeded"] * count


# ------------------------------------------------------- garbage collection and deletion


def test_deleting_owner_garbage_collects_running_job_and_its_pod(
    kube_api: ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
        "blockOwnerDeletion": True,
    }
    batch.create_namespaced_job(
        namespace,
        job_manifest(
            "owned",
            annotations={"kwok.backfill.dev/duration": "10m"},
            owner_references=[reference],
        ),
    )
    wait_for(
        lambda: [p for p in job_pods(core, namespace, "owned") if p.status.phase == "Running"],
        JOB_TIMEOUT,
        message="the owned Job's pod to run",
    )

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    wait_for(
        lambda: is_not_found(lambda: batch.read_namespaced_job("owned", namespace)),
        60,
        message="the garbage collector to delete the owned Job",
    )
    wait_for(
        lambda: not core.list_namespaced_pod(namespace).items,
        60,
        message="the owned Job's pod to disappear",
    )


def test_ttl_after_finished_deletes_completed_job(kube_api: ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(kube_api)
    batch.create_namespaced_job(
        namespace,
        job_manifest(
            "short-lived",
            annotations={"kwok.backfill.dev/duration": "100ms"},
            ttl_seconds_after_finished=0,
        ),
    )

    # Only a finished Job is deleted by the TTL controller, so absence implies completion.
    wait_for(
        lambda: is_not_found(lambda: batch.read_namespaced_job("short-lived", namespace)),
        60,
        message="the TTL-after-finished controller to delete the Job",
    )


def test_deleted_running_pod_disappears_without_kubelet(
    kube_api: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "lonely", "annotations": {"kwok.backfill.dev/duration": "10m"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "work", "image": "example.invalid/work:1"}],
            },
        },
    )
    wait_for(
        lambda: core.read_namespaced_pod("lonely", namespace).status.phase == "Running",
        JOB_TIMEOUT,
        message="pod lonely to run",
    )

    core.delete_namespaced_pod("lonely", namespace)  # default 30 s grace period

    wait_for(
        lambda: is_not_found(lambda: core.read_namespaced_pod("lonely", namespace)),
        15,
        message="pod lonely to be deleted by KWOK",
    )


# ----------------------------------------------------------------- stages file and launcher


def _pod_stage_selectors() -> dict[str, list[dict[str, Any]]]:
    stages = list(yaml.safe_load_all(stages_file().read_text(encoding="utf-8")))
    return {
        s["metadata"]["name"]: [e["jq"] for e in s["spec"]["selector"]["matchExpressions"]]
        for s in stages
        if s["spec"]["resourceRef"]["kind"] == "Pod"
    }


def test_complete_and_fail_stages_share_one_predicate_with_opposite_operators() -> None:
    selectors = _pod_stage_selectors()
    complete, fail = selectors["pod-complete"], selectors["pod-fail"]

    assert complete[:-1] == fail[:-1]
    assert complete[-1]["key"] == fail[-1]["key"]
    assert (complete[-1]["operator"], fail[-1]["operator"]) == ("NotIn", "In")
    assert complete[-1]["values"] == fail[-1]["values"] == ["true"]


def test_terminate_and_delete_stages_split_deleted_pods_by_phase() -> None:
    selectors = _pod_stage_selectors()
    terminate, delete = selectors["pod-terminate"], selectors["pod-delete"]

    assert terminate[0] == delete[0] == {"key": ".metadata.deletionTimestamp", "operator": "Exists"}
    assert terminate[1]["key"] == delete[1]["key"] == ".status.phase"
    assert (terminate[1]["operator"], delete[1]["operator"]) == ("NotIn", "In")
    assert terminate[1]["values"] == delete[1]["values"]


def test_devcluster_status_reports_every_component_running(cluster: Cluster) -> None:
    if cluster.data_dir is None:
        pytest.skip("reusing an existing cluster: no data directory to inspect")
    hack = Path(__file__).resolve().parents[2] / "hack"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hack), os.environ.get("PYTHONPATH", "")]),
    }

    result = subprocess.run(
        [sys.executable, "-m", "devcluster", "status", "--data-dir", str(cluster.data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"API server: {cluster.server} (ready)" in result.stdout
    rows = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines()[4:-1]}
    assert rows == {
        name: "running"
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    }
