"""Several partitions per Job (``partitionsPerJob``): batching, outcomes, retries, the Job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from test_planner import TEMPLATE, World, daily_job, spec, static_job
from test_steps import StepWorld, stepped_job
from test_steps import spec as step_spec

from backfill_operator.api import labels
from backfill_operator.api.model import BackfillSpec, PartitionedJobSpec, Phase
from backfill_operator.controller import builders
from backfill_operator.planning.observed import JobState, observe_job
from backfill_operator.planning.ranges import IndexSet

UID = "11111111-2222-3333-4444-555555555555"


def batches(world: World | StepWorld, decision: Any) -> list[tuple[int, int, int]]:
    return [(r.index, r.index + r.count - 1, r.attempt) for r in decision.launches]


def test_batches_of_consecutive_partitions_and_concurrency_counts_jobs() -> None:
    world = World(static_job(10), spec(concurrency=2, partitionsPerJob=3))
    first = world.step()
    assert batches(world, first) == [(0, 2, 1), (3, 5, 1)]
    assert [r.key for r in first.launches] == ["k000", "k003"]
    assert [r.last_key for r in first.launches] == ["k002", "k005"]
    counts = world.status.counts
    assert (counts.running, counts.pending) == (6, 4)
    assert [(r.index, r.count, r.last_key) for r in world.status.running] == [
        (0, 3, "k002"),
        (3, 3, "k005"),
    ]
    assert world.step().launches == []  # two Jobs hold both slots
    world.finish(next(iter(world.jobs)), ok=True)
    third = world.step()
    assert batches(world, third) == [(6, 8, 1)]
    assert world.status.counts.succeeded == 3
    assert world.status.partitions.succeeded == "0-2"
    # the outcome of a Job is each of its partitions'
    (outcome,) = third.outcomes
    assert (outcome.index, outcome.count, outcome.succeeded) == (0, 3, True)


def test_newest_first_cuts_batches_from_the_end() -> None:
    world = World(static_job(10), spec(concurrency=2, partitionsPerJob=4, order="NewestFirst"))
    assert batches(world, world.step()) == [(6, 9, 1), (2, 5, 1)]


def test_a_failed_batch_is_retried_whole_and_fails_each_partition_for_good() -> None:
    world = World(
        static_job(5),
        spec(concurrency=1, partitionsPerJob=5, retries={"limit": 1, "backoffSeconds": 0}),
    )
    assert batches(world, world.step()) == [(0, 4, 1)]
    world.finish(next(iter(world.jobs)), ok=False)
    retry = world.step()
    assert batches(world, retry) == [(0, 4, 2)]
    assert retry.state is not None and len(retry.state.new_failures) == 5
    name = retry.launches[0].job_name
    world.finish(name, ok=False)
    world.step()
    status = world.status
    assert status.phase is Phase.FAILED
    assert (status.counts.failed, status.counts.succeeded) == (5, 0)
    assert {f.index for f in status.failures} == set(range(5))
    assert {f.key for f in status.failures} == {f"k{i:03d}" for i in range(5)}
    assert all(f.attempts == 2 and f.job == name for f in status.failures)


def test_batches_stop_at_gaps_and_at_partitions_another_run_records() -> None:
    # k002 and k005 succeeded before (reprocess Missing skips them): batches do not span them
    world = World(static_job(8), spec(concurrency=5, partitionsPerJob=3))
    world.job_status = world.job_status.model_copy(
        update={"ledger": world.job_status.ledger.model_copy(update={"succeeded": "2,5"})}
    )
    assert batches(world, world.step()) == [(0, 1, 1), (3, 4, 1), (6, 7, 1)]


def test_the_job_default_applies_and_a_backfill_overrides_it() -> None:
    job = PartitionedJobSpec.model_validate(
        {
            "partitions": {"values": [f"k{i:03d}" for i in range(6)]},
            "jobTemplate": TEMPLATE,
            "partitionsPerJob": 6,
        }
    )
    default = World(job, spec(concurrency=5))
    assert batches(default, default.step()) == [(0, 5, 1)]
    own = World(job, spec(concurrency=5, partitionsPerJob=2))
    assert batches(own, own.step()) == [(0, 1, 1), (2, 3, 1), (4, 5, 1)]


def test_depends_on_past_batches_run_the_chain_in_one_job() -> None:
    job = stepped_job(10, [("a", [])], past=("a",))
    world = StepWorld(job, step_spec(concurrency=3, partitionsPerJob=4))
    first = world.step()
    # only partition 0 is ready; 1-3 wait only for their previous one: one Job runs 0-3
    assert batches(world, first) == [(0, 3, 1)]
    world.run()
    assert [(r.index, r.count) for r in world.created] == [(0, 4), (4, 4), (8, 2)]
    assert world.step_counts("a") == {"total": 10, "succeeded": 10}


def test_time_partitions_data_interval_of_a_batch() -> None:
    world = World(
        daily_job(), spec(range={"from": "2024-01-01", "to": "2024-01-10"}, partitionsPerJob=7)
    )
    req = world.step().launches[0]
    assert (req.key, req.last_key, req.count) == ("2024-01-01", "2024-01-07", 7)
    assert req.start == datetime(2024, 1, 1, tzinfo=UTC)
    assert req.end == datetime(2024, 1, 8, tzinfo=UTC)


def job_and_env(req: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The Job built for ``req`` and its container's environment."""
    body = builders.build_job(
        owner=builders.Owner("ns", "bf", UID),
        partitioned_job="pj",
        job_template=TEMPLATE,
        request=req,
        template_hash="abc",
    )
    env = {e["name"]: e["value"] for e in body["spec"]["template"]["spec"]["containers"][0]["env"]}
    return body, env


def test_the_job_of_a_batch_and_its_observation() -> None:
    world = World(
        daily_job(), spec(range={"from": "2024-01-01", "to": "2024-01-03"}, partitionsPerJob=3)
    )
    (req,) = world.step().launches
    body, env = job_and_env(req)
    assert env["PARTITION_KEY_FIRST"] == env["PARTITION_KEY"] == "2024-01-01"
    assert env["PARTITION_KEY_LAST"] == "2024-01-03"
    assert env["PARTITION_COUNT"] == "3"
    assert env["PARTITION_START"] == "2024-01-01T00:00:00Z"
    assert env["PARTITION_END"] == "2024-01-04T00:00:00Z"
    meta = body["metadata"]
    assert meta["labels"][labels.LABEL_PARTITION_COUNT] == "3"
    assert meta["annotations"][labels.ANNOTATION_PARTITION_KEY_LAST] == "2024-01-03"
    pod_labels = body["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[labels.LABEL_PARTITION_COUNT] == "3"
    seen = observe_job(body, UID)
    assert seen is not None
    assert (seen.index, seen.count, seen.last_key, seen.owned) == (req.index, 3, "2024-01-03", True)
    assert seen.state is JobState.ACTIVE
    # a Job of one partition has no count label; a bad count label is not ours
    single = dict(body, metadata={**meta, "labels": dict(meta["labels"])})
    del single["metadata"]["labels"][labels.LABEL_PARTITION_COUNT]
    one = observe_job(single, UID)
    assert one is not None and one.count == 1
    single["metadata"]["labels"][labels.LABEL_PARTITION_COUNT] = "0"
    assert observe_job(single, UID) is None


def test_one_partition_jobs_get_the_batch_variables_too() -> None:
    world = World(static_job(2), spec(concurrency=1))
    (req,) = world.step().launches
    body, env = job_and_env(req)
    assert (env["PARTITION_KEY_FIRST"], env["PARTITION_KEY_LAST"], env["PARTITION_COUNT"]) == (
        "k000",
        "k000",
        "1",
    )
    assert labels.LABEL_PARTITION_COUNT not in body["metadata"]["labels"]


def test_partitions_per_job_bounds() -> None:
    body = {"jobRef": {"name": "pj"}, "range": {"from": "a"}}
    for bad in (0, 100_001):
        try:
            BackfillSpec.model_validate({**body, "partitionsPerJob": bad})
        except ValueError:
            continue
        raise AssertionError(f"partitionsPerJob {bad} accepted")
    assert BackfillSpec.model_validate({**body, "partitionsPerJob": 100_000}).partitions_per_job


def test_running_set_counts_batches_whole() -> None:
    world = World(static_job(10), spec(concurrency=1, partitionsPerJob=10))
    world.step()
    decision = world.step()  # observes the batch's Job
    assert decision.state is not None and decision.state.active_jobs == 1
    lane = decision.state.lanes[0]
    assert lane.pending == IndexSet()
    assert lane.running_set == IndexSet.from_range(0, 9)
