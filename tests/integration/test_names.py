"""Any legal name runs, and a PartitionedJob checks its own template (issue 13).

Object names may have 253 characters, label values 63: the Jobs carry a hashed short form of
longer names (``backfill.dev/backfill``, ``backfill.dev/partitioned-job``), and the operator
selects by that form and by the Backfill's UID.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from helpers import wait_for
from operator_support import OperatorProcess

from .test_operator import Api, backfill, partitioned_job


@pytest.fixture
def api(kube_api: client.ApiClient, namespace: str) -> Api:
    return Api(kube_api, namespace)


def condition(obj: dict[str, object], kind: str) -> dict[str, str]:
    status = obj.get("status") or {}
    assert isinstance(status, dict)
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def test_names_of_any_legal_length_run(operator: OperatorProcess, api: Api) -> None:
    job_name = "nightly." + "j" * 190  # 198 characters
    backfill_name = "b" * 120 + "." + "c" * 132  # 253: the longest object name
    api.create(partitioned_job(job_name, values=["eu", "us", "apac"]))
    api.create(backfill(backfill_name, job_name, range={"from": "eu", "to": "apac"}))
    status = api.wait_phase(backfill_name, {"Succeeded"}, timeout=120)
    assert status["counts"]["succeeded"] == 3
    for job in api.jobs():
        labels = job.metadata.labels
        assert all(len(v) <= 63 for v in labels.values())
        assert labels["backfill.dev/backfill"].startswith("b" * 52 + "-")
        assert labels["backfill.dev/partitioned-job"].startswith("nightly." + "j" * 44)
        assert job.metadata.owner_references[0].name == backfill_name
    ledger = api.get("partitionedjobs", job_name)["status"]["ledger"]
    assert ledger["succeeded"] == "0-2"


def test_a_partitioned_job_with_a_refused_template_is_not_ready(
    operator: OperatorProcess, api: Api
) -> None:
    body = partitioned_job("broken", values=["a"])
    body["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    api.create(body)
    stalled = wait_for(
        lambda: (
            (c := condition(api.get("partitionedjobs", "broken"), "Stalled"))
            and c.get("status") == "True"
            and c
        ),
        60,
        message="the PartitionedJob's own template check",
    )
    assert stalled["reason"] == "InvalidJobTemplate"
    assert "restartPolicy" in stalled["message"]
    ready = condition(api.get("partitionedjobs", "broken"), "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidJobTemplate"
    api.create(backfill("uses-it", "broken", range={"from": "a", "to": "a"}))
    status = api.wait_phase("uses-it", {"Invalid"})
    assert condition({"status": status}, "Stalled")["reason"] == "InvalidJobTemplate"
    assert api.jobs() == []
