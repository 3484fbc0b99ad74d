"""Steps inside a partition on the real control plane (issue 12): the order of steps, an
upstream failure, re-running only what failed, selecting one step, parameters, marking
partitions succeeded, and bad input. Job creations are measured with a watch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from helpers import wait_for
from operator_support import OperatorProcess

from .test_operator import Api, JobRecorder, backfill

GROUP, VERSION = "backfill.dev", "v1alpha1"
STEP = "backfill.dev/step"
INDEX = "backfill.dev/partition-index"
DAYS = 20  # 2024-01-01 .. 2024-01-20


class Steps(JobRecorder):
    """A JobRecorder that also records each created Job's (step, partition index, run)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace)
        self.units: list[tuple[str, int, str]] = []

    def handle(self, event_type: str, job: Any) -> None:
        super().handle(event_type, job)
        if event_type == "ADDED":
            labels = job.metadata.labels or {}
            self.units.append(
                (labels.get(STEP, ""), int(labels[INDEX]), labels.get("backfill.dev/backfill", ""))
            )

    def of(self, run: str) -> list[tuple[str, int]]:
        return sorted((s, i) for s, i, r in self.units if r == run)


@pytest.fixture
def api(kube_api: client.ApiClient, namespace: str) -> Api:
    return Api(kube_api, namespace)


@pytest.fixture
def steps(kube_api: client.ApiClient, namespace: str) -> Iterator[Steps]:
    with Steps(kube_api, namespace) as rec:
        yield rec


def _template(step: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "annotations": {"kwok.backfill.dev/duration": "300ms", **(annotations or {})}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": step,
                            "image": "example.com/etl:1",
                            "args": ["$(STEP_NAME)", "$(PARTITION_KEY)"],
                            "env": [{"name": "MODE", "value": "default"}],
                        }
                    ],
                },
            },
        }
    }


def pipeline(name: str, *, fail_transform: str = "") -> dict[str, Any]:
    """extract -> transform -> load over daily partitions; transform fails on the given days."""
    fail = {"kwok.backfill.dev/fail-partitions": fail_transform} if fail_transform else {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PartitionedJob",
        "metadata": {"name": name},
        "spec": {
            "partitions": {
                "schedule": {"cron": "0 0 * * *", "start": "2024-01-01", "end": "2024-01-21"}
            },
            "steps": [
                {"name": "extract", "jobTemplate": _template("extract")},
                {
                    "name": "transform",
                    "dependsOn": ["extract"],
                    "jobTemplate": _template("transform", fail),
                },
                {"name": "load", "dependsOn": ["transform"], "jobTemplate": _template("load")},
            ],
        },
    }


def ledger(api: Api, job: str) -> dict[str, Any]:
    status = api.get("partitionedjobs", job).get("status") or {}
    return dict(status.get("ledger") or {})


def step_counts(status: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        s["name"]: {k: v for k, v in s["counts"].items() if v and k != "total"}
        for s in status.get("steps") or []
    }


def test_three_steps_an_upstream_failure_and_rerunning_only_what_failed(
    operator: OperatorProcess, api: Api, steps: Steps
) -> None:
    api.create(pipeline("etl", fail_transform="2024-01-05"))
    api.create(backfill("first", "etl", range={"from": "2024-01-01", "to": "2024-01-20"}))
    status = api.wait_phase("first", {"Failed"}, timeout=240)
    assert step_counts(status) == {
        "extract": {"succeeded": DAYS},
        "transform": {"succeeded": DAYS - 1, "failed": 1},
        "load": {"succeeded": DAYS - 1, "upstreamFailed": 1},
    }
    assert status["counts"]["failed"] == 1 and status["counts"]["succeeded"] == DAYS - 1
    assert status["steps"][2]["partitions"]["upstreamFailed"] == "4"
    (failure,) = status["failures"]
    assert (failure["step"], failure["key"]) == ("transform", "2024-01-05")
    # One Job per (partition, step) that ran; none for the upstream-failed load of day 5.
    assert len(steps.of("first")) == 3 * DAYS - 1
    assert ("load", 4) not in steps.of("first")
    assert len(set(steps.created)) == len(steps.created)
    wanted = {"UpstreamFailed", "PartitionFailed", "Failed"}  # sent after the status write
    wait_for(lambda: wanted <= {e.reason for e in api.events("first")}, 30, 0.3)
    book = ledger(api, "etl")
    assert {s["name"]: s["failed"] for s in book["steps"]} == {
        "extract": "",
        "transform": "4",
        "load": "",
    }
    assert book["failed"] == "4" and book["succeeded"] == "0-3,5-19"

    # The data is fixed: reprocess Failed re-runs transform and load of day 5, nothing else.
    api.patch_spec("partitionedjobs", "etl", {"steps": pipeline("etl")["spec"]["steps"]})
    api.create(
        backfill(
            "retry", "etl", range={"from": "2024-01-01", "to": "2024-01-20"}, reprocess="Failed"
        )
    )
    status = api.wait_phase("retry", {"Succeeded"}, timeout=120)
    assert steps.of("retry") == [("load", 4), ("transform", 4)]
    assert step_counts(status) == {
        "extract": {"skipped": DAYS},
        "transform": {"succeeded": 1, "skipped": DAYS - 1},
        "load": {"succeeded": 1, "skipped": DAYS - 1},
    }
    assert ledger(api, "etl")["succeeded"] == "0-19"


def test_one_step_with_and_without_ignore_dependencies(
    operator: OperatorProcess, api: Api, steps: Steps
) -> None:
    api.create(pipeline("sel"))
    # extract succeeded only for days 1-3 (a Backfill of extract alone).
    api.create(
        backfill("ex", "sel", range={"from": "2024-01-01", "to": "2024-01-03"}, steps=["extract"])
    )
    api.wait_phase("ex", {"Succeeded"})
    assert steps.of("ex") == [("extract", 0), ("extract", 1), ("extract", 2)]

    days = {"from": "2024-01-01", "to": "2024-01-05"}
    api.create(backfill("tr", "sel", range=days, steps=["transform"]))
    status = api.wait_phase("tr", {"Failed"})
    assert steps.of("tr") == [("transform", 0), ("transform", 1), ("transform", 2)]
    assert step_counts(status) == {"transform": {"succeeded": 3, "upstreamFailed": 2}}

    # ignoreDependencies: the two days without extract run too (days 1-3 have a transform
    # outcome now: reprocess Missing skips them).
    api.create(backfill("tr-i", "sel", range=days, steps=["transform"], ignoreDependencies=True))
    status = api.wait_phase("tr-i", {"Succeeded"})
    assert steps.of("tr-i") == [("transform", 3), ("transform", 4)]
    assert step_counts(status) == {"transform": {"succeeded": 2, "skipped": 3}}
    # includeUpstream adds extract, which has no outcome on days 4-6: it runs, and what depends
    # on it runs again after it (transform of days 4-5 too, although it has a success).
    api.create(
        backfill(
            "ld",
            "sel",
            range={"from": "2024-01-04", "to": "2024-01-06"},
            steps=["load"],
            includeUpstream=True,
        )
    )
    api.wait_phase("ld", {"Succeeded"})
    assert steps.of("ld") == sorted(
        (s, i) for s in ("extract", "transform", "load") for i in (3, 4, 5)
    )


def test_env_labels_and_annotations_reach_the_jobs_and_pods(
    operator: OperatorProcess, api: Api, steps: Steps
) -> None:
    api.create(pipeline("params"))
    api.create(
        backfill(
            "p",
            "params",
            partitions=["2024-01-02"],
            steps=["extract"],
            env=[
                {"name": "MODE", "value": "backfill"},
                {"name": "TARGET", "value": "s3://bucket/$(PARTITION_KEY)"},
            ],
            jobLabels={"team": "data"},
            jobAnnotations={"cost-center": "42"},
        )
    )
    api.wait_phase("p", {"Succeeded"})
    (job,) = [
        j for j in api.jobs() if (j.metadata.labels or {}).get("backfill.dev/backfill") == "p"
    ]
    assert job.metadata.labels["team"] == "data" and job.metadata.labels[STEP] == "extract"
    assert job.metadata.annotations["cost-center"] == "42"
    pods = api.core.list_namespaced_pod(api.ns, label_selector="backfill.dev/backfill=p").items
    assert pods, "the Job controller made a pod"
    pod = pods[0]
    assert pod.metadata.labels["team"] == "data" and pod.metadata.labels[STEP] == "extract"
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["MODE"] == "backfill"  # the Backfill's value replaces the template's
    assert env["TARGET"] == "s3://bucket/$(PARTITION_KEY)"  # the kubelet expands it
    assert env["STEP_NAME"] == "extract" and env["PARTITION_KEY"] == "2024-01-02"
    names = [e.name for e in pod.spec.containers[0].env]
    assert names.index("PARTITION_KEY") < names.index("TARGET")


def test_mark_succeeded_creates_no_job_and_fills_the_ledger(
    operator: OperatorProcess, api: Api, steps: Steps
) -> None:
    api.create(pipeline("marks"))
    days = {"from": "2024-01-01", "to": "2024-01-10"}
    api.create(backfill("m", "marks", range=days, steps=["extract"], markSucceeded=True))
    status = api.wait_phase("m", {"Succeeded"})
    assert status["counts"]["marked"] == 10
    assert step_counts(status) == {"extract": {"marked": 10}}
    wait_for(lambda: {"MarkedSucceeded", "Succeeded"} <= {e.reason for e in api.events("m")}, 30)
    # The marks reach the ledger in the pass right after the one that wrote them.
    book = wait_for(lambda: ledger(api, "marks").get("steps") and ledger(api, "marks"), 30, 0.3)
    assert [(s["name"], s["succeeded"]) for s in book["steps"]] == [("extract", "0-9")]
    # The next Backfill needs no extract: transform and load run on the marked days.
    api.create(backfill("rest", "marks", range=days))
    api.wait_phase("rest", {"Succeeded"}, timeout=120)
    assert {s for s, _ in steps.of("rest")} == {"transform", "load"}
    assert steps.of("m") == []


def test_bad_steps_are_refused_or_invalid_and_create_no_job(
    operator: OperatorProcess, api: Api, steps: Steps
) -> None:
    refusals = [
        (
            {"steps": [{"name": "a", "dependsOn": ["zz"], "jobTemplate": _template("a")}]},
            "does not exist",
        ),
        (
            {"steps": [{"name": "a", "jobTemplate": _template("a")}] * 2},
            "Duplicate value",
        ),
        (
            {
                "steps": [{"name": "a", "jobTemplate": _template("a")}],
                "jobTemplate": _template("x"),
            },
            "exactly one of jobTemplate and steps",
        ),
        ({"steps": [{"name": "a", "dependsOn": ["a"], "jobTemplate": _template("a")}]}, "itself"),
    ]
    for change, message in refusals:
        job = pipeline("bad")
        job["spec"].pop("steps")
        job["spec"].update(change)
        with pytest.raises(client.ApiException) as refused:
            api.create(job)
        assert message in refused.value.body, (change, refused.value.body)
    api.create(pipeline("ok"))
    api.create(backfill("sel", "ok", partitions=["2024-01-01"], steps=["load"], suspend=True))
    for change in ({"steps": ["extract"]}, {"includeUpstream": True}, {"steps": None}):
        with pytest.raises(client.ApiException) as refused:
            api.patch_spec("backfills", "sel", change)
        assert "the step selection" in refused.value.body and "immutable" in refused.value.body
    for name, spec, message in (
        ("env", {"env": [{"name": "PARTITION_KEY", "value": "x"}]}, "env cannot override"),
        ("label", {"jobLabels": {"backfill.dev/backfill": "x"}}, "jobLabels cannot set"),
    ):
        with pytest.raises(client.ApiException) as refused:
            api.create(backfill(name, "ok", partitions=["2024-01-01"], **spec))
        assert message in refused.value.body, refused.value.body

    # A cycle passes the schema: the job is Stalled and its Backfills Invalid, no Job.
    cyclic = pipeline("cyclic")
    cyclic["spec"]["steps"][0]["dependsOn"] = ["load"]
    api.create(cyclic)
    api.create(backfill("c", "cyclic", partitions=["2024-01-01"]))
    status = api.wait_phase("c", {"Invalid"})
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "InvalidSteps"
    assert "extract -> transform -> load -> extract" in stalled["message"]

    def job_stalled() -> dict[str, Any] | None:
        conds = (api.get("partitionedjobs", "cyclic").get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Stalled" and c["status"] == "True"), None)

    assert wait_for(job_stalled, 30, 0.3)["reason"] == "InvalidSteps"
    api.create(backfill("u", "ok", partitions=["2024-01-01"], steps=["transfrom"]))
    status = api.wait_phase("u", {"Invalid"})
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert 'step "transfrom" is not a step' in stalled["message"]
    assert any(e.reason == "InvalidSteps" and e.type == "Warning" for e in api.events("u"))
    assert steps.created == []


def test_scheduled_runs_run_every_step_in_order(
    operator: OperatorProcess, api: Api, steps: Steps
) -> None:
    """The schedule catches up 5 missed hours of a 3-step job: 15 Jobs, each step after its
    upstream, per-step counts in status.runs.steps and the ledger per step."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    job = pipeline("hourly")
    job["spec"]["partitions"]["schedule"] = {
        "cron": f"{end.minute} * * * *",
        "start": (end - timedelta(hours=5)).isoformat(),
        "end": end.isoformat(),
    }
    job["spec"]["runs"] = {"catchUp": "All", "concurrency": 3}
    api.create(job)

    def settled() -> dict[str, Any] | None:
        status = api.get("partitionedjobs", "hourly").get("status") or {}
        runs = status.get("runs") or {}
        done = (status.get("ledger") or {}).get("succeeded") == "0-4"
        return runs if done and not runs.get("counts", {}).get("running") else None

    runs = wait_for(settled, 120, 0.3, message="the schedule ran every step")
    assert step_counts(runs) == {s: {"succeeded": 5} for s in ("extract", "transform", "load")}
    units = sorted((s, i) for s, i, _ in steps.units)
    assert units == sorted((s, i) for s in ("extract", "transform", "load") for i in range(5))
    order = {(s, i): n for n, (s, i, _) in enumerate(steps.units)}
    for i in range(5):
        assert order[("extract", i)] < order[("transform", i)] < order[("load", i)]
    assert len(set(steps.created)) == len(steps.created) == 15
