"""Refill on pod success: a Job whose pod succeeded frees its slot, never its partition.

Pure: the planner with Jobs observed as the operator observes them (``observe_job`` with the
pod watch's verdict), as in ``tests/unit/test_planner.py``.
"""

from __future__ import annotations

from typing import Any

from test_planner import World, spec, static_job
from test_sharing import Cluster, Run, backfill, job_spec

from backfill_operator.planning.observed import JobState, observe_job


def raw_job(**spec_fields: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "bf-k000-abc",
            "labels": {"backfill.dev/partition-index": "0", "backfill.dev/attempt": "1"},
            "ownerReferences": [{"controller": True, "uid": "u"}],
        },
        "spec": spec_fields,
        "status": {"active": 1},
    }


def test_an_active_job_with_a_succeeded_pod_is_finishing() -> None:
    job = observe_job(raw_job(), "u", pod_succeeded=True)
    assert job is not None and job.active and job.finishing and not job.holds_slot
    plain = observe_job(raw_job(), "u")
    assert plain is not None and plain.holds_slot and not plain.finishing


def test_a_job_of_several_pods_is_not_finished_by_one_pod() -> None:
    for fields in ({"completions": 3}, {"parallelism": 2}):
        job = observe_job(raw_job(**fields), "u", pod_succeeded=True)
        assert job is not None and not job.finishing and job.holds_slot


def test_a_completed_job_is_not_finishing() -> None:
    raw = raw_job()
    raw["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    job = observe_job(raw, "u", pod_succeeded=True)
    assert job is not None and job.state is JobState.SUCCEEDED and not job.finishing


def test_a_succeeded_pod_refills_its_slot_before_the_job_completes() -> None:
    world = World(static_job(5), spec(concurrency=2))
    world.step()
    first = world.active()[0]
    world.pod_succeeded(first)
    decision = world.step()
    assert [r.index for r in decision.launches] == [2]  # the slot is free at once
    assert decision.outcomes == []  # the outcome waits for the Job's condition
    assert world.status.counts.succeeded == 0
    assert world.status.counts.running == 3  # the finishing Job still shows as running
    assert world.step().launches == []  # two Jobs hold the two slots again
    world.finish(first, ok=True)
    decision = world.step()
    assert [(o.index, o.succeeded) for o in decision.outcomes] == [(0, True)]
    assert decision.launches == []  # completing a finishing Job frees no second slot
    assert world.status.counts.succeeded == 1 and world.status.counts.running == 2


def test_a_finishing_job_keeps_its_partition_locked_for_other_runs() -> None:
    first = Run("first", backfill((0, 0)))
    second = Run("second", backfill((0, 1)))
    cluster = Cluster(job_spec(2, limit=1), [first, second])
    cluster.step(first)
    (name,) = cluster.active()
    cluster.pod_succeeded(name)
    cluster.step(first)  # woken by the pod too: its claim no longer wants the slot
    decision = cluster.step(second)
    assert [r.index for r in decision.launches] == [1]  # the job-wide slot is free ...
    assert second.status.waiting is not None and second.status.waiting.on_lock == 1  # ... not 0


def test_slim_diff_base_builds_kopf_s_own_essence() -> None:
    import kopf

    from backfill_operator.controller.handlers import SlimDiffBaseStorage

    raw: dict[str, Any] = {
        "apiVersion": "backfill.dev/v1alpha1",
        "kind": "Backfill",
        "metadata": {
            "name": "a",
            "namespace": "n",
            "uid": "u",
            "labels": {"x": "1"},
            "annotations": {
                "backfill.dev/partition-key": "k",
                "backfill.dev/last-handled-configuration": "{}",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
            "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"conditions": [{"type": "Complete", "status": "True"}], "active": 1},
    }
    options = {"prefix": "backfill.dev", "key": "last-handled-configuration"}
    body = kopf.Body(raw)
    ours = SlimDiffBaseStorage(**options).build(body=body)
    assert ours == kopf.AnnotationsDiffBaseStorage(**options).build(body=body)
    assert ours["spec"] and "status" not in ours
    assert "managedFields" not in ours.get("metadata", {})
    # Jobs and pods: only watched (event and index handlers), no essence is built
    for api_version, kind in (("batch/v1", "Job"), ("v1", "Pod")):
        watched = kopf.Body(raw | {"apiVersion": api_version, "kind": kind})
        assert SlimDiffBaseStorage(**options).build(body=watched) == {}


def test_only_launches_tells_a_refill_status_from_one_with_news() -> None:
    """What may wait for the next status write: counts, sets, running, condition messages."""
    from backfill_operator.api.model import BackfillStatus, Condition, PartitionCounts, Phase
    from backfill_operator.planning.status import only_launches

    def status(
        running: int, *, phase: Phase = Phase.RUNNING, reason: str = "Running", **more: Any
    ) -> BackfillStatus:
        return BackfillStatus(
            phase=phase,
            conditions=[
                Condition(type="Reconciling", status="True", reason=reason, message=f"{running}")
            ],
            counts=PartitionCounts(total=4, running=running, pending=4 - running),
            progress=f"0/4 done, {running} running",
            **more,
        )

    old = status(1)
    assert only_launches(old, old)
    assert only_launches(old, status(2))
    assert not only_launches(old, status(2, phase=Phase.SUCCEEDED))
    assert not only_launches(old, status(2, reason="Waiting"))
    assert not only_launches(old, status(2, failures_omitted=1))
    assert not only_launches(old, status(1, completion_time="2024-01-01T00:00:00Z"))
