"""A real Kueue (v0.17.0, started by the ``kueue`` fixture) gates plain batch Jobs.

The Jobs run on KWOK pods (``kwok.backfill.dev/duration``); Kueue admits them against a
ClusterQueue whose quota fits exactly two Jobs requesting ``cpu: 1`` (``kueue_queue``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from devcluster.kueue import GROUP, QUEUE_LABEL, Kueue
from helpers import wait_for

TIMEOUT = 120.0


def queued_job(
    name: str, queue: str, *, suspend: bool | None, duration: str = "3s"
) -> dict[str, Any]:
    """A one-pod Job for ``queue`` requesting one CPU; ``suspend`` None leaves the field out."""
    spec: dict[str, Any] = {
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": 0,
        "template": {
            "metadata": {"annotations": {"kwok.backfill.dev/duration": duration}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "work",
                        "image": "example.invalid/work:1",
                        "resources": {"requests": {"cpu": "1"}},
                    }
                ],
            },
        },
    }
    if suspend is not None:
        spec["suspend"] = suspend
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {QUEUE_LABEL: queue}},
        "spec": spec,
    }


def finished(job: Any) -> str | None:
    """ "Complete" or "Failed" once the Job controller set that condition (what Kueue reads)."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def condition_true(obj: dict[str, Any], kind: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == kind and c["status"] == "True" for c in conditions)


def workloads(kube_api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(kube_api)
    listed = custom.list_namespaced_custom_object(GROUP, "v1beta2", namespace, "workloads")
    return list(listed["items"])


def cluster_queue_of(kube_api: ApiClient, namespace: str, local_queue: str) -> str:
    custom = client.CustomObjectsApi(kube_api)
    lq = custom.get_namespaced_custom_object(
        GROUP, "v1beta2", namespace, "localqueues", local_queue
    )
    return str(lq["spec"]["clusterQueue"])


def test_quota_of_two_cpus_runs_four_suspended_jobs_two_at_a_time_to_completion(
    kube_api: ApiClient, namespace: str, kueue_queue: str
) -> None:
    batch = client.BatchV1Api(kube_api)
    start_version = batch.list_namespaced_job(namespace).metadata.resource_version
    names = [f"queued-{i}" for i in range(4)]
    for name in names:
        batch.create_namespaced_job(namespace, queued_job(name, kueue_queue, suspend=True))

    # One watch from before the first create: events arrive in the apiserver's commit order,
    # so the set of running Jobs replayed here is the one the cluster went through. A Job
    # runs from `suspend: false` until its Complete/Failed condition; Kueue frees the quota
    # only after that condition (one-pod Jobs reclaim nothing earlier).
    state: dict[str, tuple[bool, str | None]] = {}
    history: list[tuple[str, ...]] = []
    version = start_version
    deadline = time.monotonic() + TIMEOUT
    stream = watch.Watch()
    while not (len(state) == len(names) and all(done for _, done in state.values())):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for 4 Jobs to finish; last state {state}"
        for event in stream.stream(
            batch.list_namespaced_job,
            namespace,
            resource_version=version,
            timeout_seconds=max(1, int(remaining)),
            _request_timeout=remaining + 10,
        ):
            job = event["object"]
            version = job.metadata.resource_version
            state[job.metadata.name] = (bool(job.spec.suspend), finished(job))
            running = tuple(sorted(n for n, (sus, done) in state.items() if not sus and not done))
            if not history or history[-1] != running:
                history.append(running)
            if len(state) == len(names) and all(done for _, done in state.values()):
                stream.stop()

    assert max(len(r) for r in history) == 2, f"running sets over time: {history}"
    assert {name: done for name, (_, done) in state.items()} == dict.fromkeys(names, "Complete")

    cluster_queue = cluster_queue_of(kube_api, namespace, kueue_queue)
    jobs = {j.metadata.uid: j.metadata.name for j in batch.list_namespaced_job(namespace).items}

    def finished_workloads() -> dict[str, dict[str, Any]] | None:
        by_job = {
            jobs[ref["uid"]]: wl
            for wl in workloads(kube_api, namespace)
            for ref in wl["metadata"].get("ownerReferences", [])
            if ref["kind"] == "Job" and ref["uid"] in jobs
        }
        done = all(condition_true(wl, "Finished") for wl in by_job.values())
        return by_job if len(by_job) == len(names) and done else None

    by_job = wait_for(finished_workloads, 30, message="a Finished Workload per Job")
    for name, wl in by_job.items():
        assert wl["spec"]["queueName"] == kueue_queue, name
        assert condition_true(wl, "QuotaReserved"), (name, wl["status"])
        assert condition_true(wl, "Admitted"), (name, wl["status"])
        admission = wl["status"]["admission"]
        assert admission["clusterQueue"] == cluster_queue, name
        assert admission["podSetAssignments"][0]["resourceUsage"] == {"cpu": "1"}, name


def test_webhook_suspends_labelled_job_created_unsuspended_then_kueue_runs_it(
    kube_api: ApiClient, namespace: str, kueue_queue: str
) -> None:
    batch = client.BatchV1Api(kube_api)

    created = batch.create_namespaced_job(
        namespace, queued_job("unsuspended", kueue_queue, suspend=None, duration="1s")
    )
    unlabelled = queued_job("no-queue", kueue_queue, suspend=None, duration="1s")
    del unlabelled["metadata"]["labels"]
    plain = batch.create_namespaced_job(namespace, unlabelled)

    # The create response is the stored object: only the mutating webhook can have set it.
    assert created.spec.suspend is True
    assert not plain.spec.suspend, "a Job without the queue label must not go through Kueue"
    done = wait_for(
        lambda: finished(batch.read_namespaced_job("unsuspended", namespace)),
        TIMEOUT,
        message="the webhook-suspended Job to be admitted and complete",
    )
    assert done == "Complete"


def test_validating_webhook_rejects_queue_name_that_is_not_a_valid_name(
    kube_api: ApiClient, namespace: str, kueue: Kueue
) -> None:
    batch = client.BatchV1Api(kube_api)

    with pytest.raises(ApiException) as denied:
        batch.create_namespaced_job(namespace, queued_job("bad", "Not_A_Queue", suspend=True))

    assert denied.value.status == 403  # how the apiserver reports a webhook's denial
    message = json.loads(denied.value.body)["message"]
    assert message.startswith('admission webhook "vjob.kb.io" denied the request'), message
    assert "metadata.labels[kueue.x-k8s.io/queue-name]" in message
