"""Refill on pod success against the real control plane (issue 13).

The test plays the Job controller: the Jobs' template names another manager
(``spec.managedBy``, batch/v1), so the built-in Job controller leaves them alone (no pods, no
conditions) and the test creates each pod and writes each outcome itself. That makes the
order of events certain: a slot freed while the Job has no ``Complete`` condition can only
have been freed by the pod's success.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from helpers import wait_for
from operator_support import OperatorProcess

from .test_operator import Api, backfill, partitioned_job


@pytest.fixture
def api(kube_api: client.ApiClient, namespace: str) -> Api:
    return Api(kube_api, namespace)


MANAGER = "backfill.dev/test-plays-the-job-controller"
INDEX = "backfill.dev/partition-index"


def job_of(api: Api, index: int) -> Any | None:
    found = [j for j in api.jobs() if (j.metadata.labels or {}).get(INDEX) == str(index)]
    return found[0] if found else None


def run_pod(api: Api, job: Any, phase: str) -> None:
    """Create the Job's pod as the Job controller would, then give it ``phase``."""
    template = job.spec.template
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=f"{job.metadata.name}-pod",
            labels=template.metadata.labels,
            owner_references=[
                client.V1OwnerReference(
                    api_version="batch/v1",
                    kind="Job",
                    name=job.metadata.name,
                    uid=job.metadata.uid,
                    controller=True,
                )
            ],
        ),
        spec=client.V1PodSpec(
            restart_policy="Never",
            containers=template.spec.containers,
            node_selector={"backfill.dev/no-such-node": "true"},  # never scheduled
        ),
    )
    api.core.create_namespaced_pod(api.ns, pod)
    api.core.patch_namespaced_pod_status(pod.metadata.name, api.ns, {"status": {"phase": phase}})


def complete(api: Api, job: Any) -> None:
    """Write the Job's success as the Job controller does (batch/v1 status rules)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": now, "lastProbeTime": now}
        for kind in ("SuccessCriteriaMet", "Complete")
    ]
    api.batch.patch_namespaced_job_status(
        job.metadata.name,
        api.ns,
        {
            "status": {
                "startTime": job.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "completionTime": now,
                "succeeded": 1,
                "conditions": conditions,
            }
        },
    )


def test_a_succeeded_pod_frees_its_slot_before_the_job_completes(
    operator: OperatorProcess, api: Api
) -> None:
    body = partitioned_job("refill", values=["a", "b", "c"])
    body["spec"]["jobTemplate"]["spec"]["managedBy"] = MANAGER
    api.create(body)
    api.create(backfill("bf", "refill", range={"from": "a", "to": "c"}, concurrency=1))
    first = wait_for(lambda: job_of(api, 0), 60, message="the first partition's Job")
    assert first.spec.managed_by == MANAGER

    run_pod(api, first, "Succeeded")
    second = wait_for(lambda: job_of(api, 1), 60, message="the slot refilled on pod success")
    first = job_of(api, 0)
    assert first is not None and not first.status.conditions  # nobody completed it
    status = api.status("bf")
    assert status["counts"]["succeeded"] == 0  # the outcome waits for the Job's condition
    assert {r["key"] for r in status.get("running") or []} <= {"a", "b"}

    run_pod(api, second, "Failed")  # a failed pod frees nothing: the Job may retry it
    complete(api, first)
    status = wait_for(
        lambda: (s := api.status("bf"))["counts"]["succeeded"] == 1 and s,
        60,
        message="the first Job's success recorded from its condition",
    )
    assert job_of(api, 2) is None, "a failed pod freed a slot"
    assert status["counts"]["running"] == 1
