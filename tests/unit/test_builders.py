"""Job manifests, names and the observed-Job reader."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from backfill_operator.api import labels as naming
from backfill_operator.controller.builders import Owner, build_event, build_job
from backfill_operator.planning import naming as names
from backfill_operator.planning.observed import JobState, observe_job
from backfill_operator.planning.state import LaunchRequest

ENV_NAMES = (
    "PARTITION_KEY",
    "PARTITION_START",
    "PARTITION_END",
    "PARTITION_INDEX",
    "BACKFILL_NAME",
    "BACKFILL_ATTEMPT",
)

OWNER = Owner("data", "sales-pipeline-2024", "0c6f9f4e-1a2b-4c3d-8e9f-000000000001")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def template() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"team": "data"}, "annotations": {"a": "b"}},
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 30,
            "template": {
                "metadata": {"annotations": {"kwok.backfill.dev/duration": "2s"}},
                "spec": {
                    "restartPolicy": "Never",
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "args": ["--date", "$(PARTITION_KEY)"],
                            "env": [
                                {"name": "PARTITION_KEY", "value": "user's"},
                                {"name": "OTHER", "value": "$(PARTITION_START)"},
                            ],
                        }
                    ],
                },
            },
        },
    }


def request() -> LaunchRequest:
    return LaunchRequest(
        index=7,
        key="2024-01-08",
        start=datetime(2024, 1, 8, tzinfo=UTC),
        end=datetime(2024, 1, 9, tzinfo=UTC),
        attempt=2,
        job_name=names.job_name(OWNER.name, OWNER.uid, 7, "2024-01-08", 2),
    )


def test_job_manifest() -> None:
    job = build_job(
        owner=OWNER,
        partitioned_job="sales",
        job_template=template(),
        request=request(),
        template_hash="abc",
    )
    meta = job["metadata"]
    assert meta["name"] == request().job_name
    assert meta["labels"]["team"] == "data"
    assert meta["labels"][naming.LABEL_BACKFILL_UID] == OWNER.uid
    assert meta["labels"][naming.LABEL_PARTITION_INDEX] == "7"
    assert meta["labels"][naming.LABEL_ATTEMPT] == "2"
    assert meta["annotations"][naming.ANNOTATION_PARTITION_KEY] == "2024-01-08"
    assert meta["annotations"][naming.ANNOTATION_TEMPLATE_HASH] == "abc"
    (ref,) = meta["ownerReferences"]
    assert ref["controller"] is True and ref["uid"] == OWNER.uid and ref["kind"] == "Backfill"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    pod = job["spec"]["template"]
    assert pod["metadata"]["annotations"]["kwok.backfill.dev/duration"] == "2s"
    assert pod["metadata"]["annotations"][naming.ANNOTATION_PARTITION_KEY] == "2024-01-08"
    assert pod["metadata"]["labels"][naming.LABEL_ATTEMPT] == "2"
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert set(ENV_NAMES) <= set(env)
        assert env["PARTITION_KEY"] == "2024-01-08"
        assert env["PARTITION_START"] == "2024-01-08T00:00:00Z"
        assert env["PARTITION_END"] == "2024-01-09T00:00:00Z"
        assert env["BACKFILL_NAME"] == OWNER.name
        assert env["BACKFILL_ATTEMPT"] == "2"
    main = pod["spec"]["containers"][0]
    names = [e["name"] for e in main["env"]]
    assert names.count("PARTITION_KEY") == 1
    assert names.index("OTHER") > names.index("PARTITION_START")  # $(VAR) sees ours
    assert main["args"] == ["--date", "$(PARTITION_KEY)"]


def test_template_is_not_mutated() -> None:
    tpl = template()
    build_job(
        owner=OWNER, partitioned_job="s", job_template=tpl, request=request(), template_hash="x"
    )
    assert tpl == template()


def test_static_partition_has_empty_window() -> None:
    req = LaunchRequest(index=0, key="eu-west", start=None, end=None, attempt=1, job_name="s-eu")
    job = build_job(
        owner=OWNER, partitioned_job="s", job_template=template(), request=req, template_hash="x"
    )
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PARTITION_START"] == "" and env["PARTITION_END"] == ""


@given(
    backfill=st.from_regex(r"[a-z][a-z0-9-]{0,62}", fullmatch=True).map(
        lambda s: s.rstrip("-") or "a"
    ),
    key=st.text(min_size=1, max_size=80),
    index=st.integers(0, 10**7),
    attempt=st.integers(1, 101),
)
def test_job_names_are_dns_labels_and_deterministic(
    backfill: str, key: str, index: int, attempt: int
) -> None:
    name = names.job_name(backfill, OWNER.uid, index, key, attempt)
    assert len(name) <= names.MAX_NAME_LENGTH
    assert DNS_LABEL.match(name), name
    assert name == names.job_name(backfill, OWNER.uid, index, key, attempt)
    assert name != names.job_name(backfill, OWNER.uid, index, key, attempt + 1)
    assert name != names.job_name(backfill, OWNER.uid, index + 1, key, attempt)


def test_job_name_is_readable() -> None:
    name = names.job_name("sales-pipeline", OWNER.uid, 3, "2024-01-04T05:00", 1)
    assert name.startswith("sales-pipeline-2024-01-04t05-00-")


def test_object_key_is_one_spelling() -> None:
    assert names.object_key("ns", "name") == "ns/name"


def raw_job(conditions: list[dict[str, str]], owner_uid: str = OWNER.uid) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "j",
            "labels": {naming.LABEL_PARTITION_INDEX: "4", naming.LABEL_ATTEMPT: "1"},
            "annotations": {naming.ANNOTATION_PARTITION_KEY: "2024-01-05"},
            "ownerReferences": [{"uid": owner_uid, "controller": True}],
            "creationTimestamp": "2024-01-01T00:00:00Z",
        },
        "status": {"startTime": "2024-01-01T00:00:01Z", "conditions": conditions},
    }


def test_observe_active_succeeded_failed() -> None:
    active = observe_job(raw_job([]), OWNER.uid)
    assert active is not None and active.state is JobState.ACTIVE and active.owned
    interim = observe_job(raw_job([{"type": "SuccessCriteriaMet", "status": "True"}]), OWNER.uid)
    assert interim is not None and interim.state is JobState.ACTIVE
    done = observe_job(
        raw_job(
            [{"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:04Z"}]
        ),
        OWNER.uid,
    )
    assert done is not None and done.state is JobState.SUCCEEDED
    assert done.finish_time is not None and done.start_time is not None
    assert (done.finish_time - done.start_time).total_seconds() == 3
    failed = observe_job(
        raw_job(
            [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ]
        ),
        OWNER.uid,
    )
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.message == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    foreign = observe_job(raw_job([], owner_uid="other"), OWNER.uid)
    assert foreign is not None and not foreign.owned


def test_observe_ignores_jobs_without_our_labels() -> None:
    raw = raw_job([])
    raw["metadata"]["labels"][naming.LABEL_ATTEMPT] = "x"
    assert observe_job(raw, OWNER.uid) is None


def test_event_shape() -> None:
    event = build_event(
        involved={"kind": "Backfill", "name": "b", "namespace": "n", "uid": "u"},
        event_type="Warning",
        reason="PartitionFailed",
        message="x" * 2000,
        now=datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert event["metadata"] == {"generateName": "b.", "namespace": "n"}
    assert len(event["message"]) == 1024
    assert event["lastTimestamp"] == "2024-01-01T00:00:00Z"


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@given(st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", fullmatch=True))
def test_label_values_of_any_legal_name_are_valid_and_distinct(name: str) -> None:
    value = naming.label_value(name)
    assert len(value) <= 63 and LABEL_VALUE.fullmatch(value)
    if len(name) <= 63:
        assert value == name
    else:
        assert naming.label_value(name + "x") != value  # the hash tells long names apart


def test_long_names_run_with_hashed_labels() -> None:
    backfill, job = "b" * 120 + ".2024", "pj-" + "p" * 200
    owner = Owner("data", backfill, OWNER.uid)
    manifest = build_job(
        owner=owner,
        partitioned_job=job,
        job_template=template(),
        request=request(),
        template_hash="abc",
    )
    meta, pod_meta = manifest["metadata"], manifest["spec"]["template"]["metadata"]
    for found in (meta["labels"], pod_meta["labels"]):
        assert found[naming.LABEL_BACKFILL] == naming.label_value(backfill) != backfill
        assert found[naming.LABEL_PARTITIONED_JOB] == naming.label_value(job)
        assert all(len(v) <= 63 for v in found.values())
    assert DNS_LABEL.fullmatch(meta["name"]) and len(meta["name"]) <= 63
    # the run's name comes back whole from the owner reference, not from the label
    observed = observe_job(manifest, owner.uid)
    assert observed is not None and observed.run == backfill and observed.owned
