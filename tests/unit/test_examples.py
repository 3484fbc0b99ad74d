"""The examples parse with the API models and select what their comments promise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from backfill_operator.api.model import (
    BackfillSpec,
    PartitionedJobSpec,
    PartitionedJobStatus,
    Reprocess,
)
from backfill_operator.planning.decide import plan
from backfill_operator.planning.ledger import preview as preview_of
from backfill_operator.planning.steps import select_steps, step_graph
from backfill_operator.planning.verdict import PartitionedJobView, judge, new_backfill

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def load(name: str) -> tuple[PartitionedJobSpec, BackfillSpec]:
    """The first Backfill of example ``name`` and the PartitionedJob it refers to: the one in
    the same file, else the one of that name in another example (a file holding only a
    Backfill, such as api-ingestion-rerun.yaml, is applied after its job's file)."""
    docs = _docs(EXAMPLES / name)
    backfill = next(d for d in docs if d["kind"] == "Backfill")
    wanted = backfill["spec"]["jobRef"]["name"]
    jobs = [d for d in docs if d["kind"] == "PartitionedJob"] or [
        d
        for other in sorted(EXAMPLES.glob("*.yaml"))
        for d in _docs(other)
        if d["kind"] == "PartitionedJob" and d["metadata"]["name"] == wanted
    ]
    job = jobs[0]
    assert job["metadata"]["name"] == wanted
    return (
        PartitionedJobSpec.model_validate(job["spec"]),
        BackfillSpec.model_validate(backfill["spec"]),
    )


@pytest.mark.parametrize(
    ("name", "count", "first", "last"),
    [
        ("sales-pipeline.yaml", 300, "2024-01-01", "2024-10-26"),
        ("api-ingestion.yaml", 3, "2024-03-10", "2024-03-12"),
        ("api-ingestion-rerun.yaml", 3, "2024-03-10", "2024-03-12"),
        ("regions.yaml", 3, "us-east-1", "eu-central-1"),
        ("shared-warehouse.yaml", 3, "2024-03-04", "2024-03-06"),
        ("orders-scheduled.yaml", 366, "2024-01-01", "2024-12-31"),
        ("clickstream-batched.yaml", 744, "2024-01-01T00:00", "2024-01-31T23:00"),
    ],
)
def test_example_selects(name: str, count: int, first: str, last: str) -> None:
    job, spec = load(name)
    view = PartitionedJobView("pj", job, PartitionedJobStatus())
    preview = preview_of(judge(new_backfill("ns", spec), view, NOW))
    keys = [preview.selection.key(i) for i in preview.launch_order(spec.order)]
    assert len(keys) == count
    assert (keys[0], keys[-1]) == (first, last)


def test_scheduled_example_catches_up_seven_days() -> None:
    """orders-scheduled.yaml, created at NOW after everything before it was missed: the
    schedule takes on the 7 days due within its catch-up window and reports the rest."""
    from backfill_operator.api.model import ScheduleStatus
    from backfill_operator.planning.catchup import take_on
    from backfill_operator.planning.selection import build_space

    job, _ = load("orders-scheduled.yaml")
    assert job.runs is not None
    space = build_space(job, NOW)
    epoch = int(NOW.timestamp())
    take = take_on(job.runs, ScheduleStatus(), space, epoch, epoch)
    keys = [space.format_key(space.occurrences(i, 1)[0]) for i in take.scheduled]
    assert keys == [f"2026-11-{d}" for d in range(13, 20)]
    assert len(take.left) == len(take.beyond_window) == take.scheduled.first()


def test_api_ingestion_steps_form_a_chain() -> None:
    """api-ingestion.yaml: ingest -> validate -> publish, every step run by its Backfill, and
    only ingest fails, on 2024-03-11's first attempt (retried: the retry succeeds)."""
    job, spec = load("api-ingestion.yaml")
    assert job.job_template is None and job.steps is not None
    graph = step_graph(job)
    assert graph.stepped
    assert graph.order == ("ingest", "validate", "publish")
    assert dict(graph.upstream) == {
        "ingest": (),
        "validate": ("ingest",),
        "publish": ("validate",),
    }
    assert not graph.past
    assert spec.steps is None
    assert select_steps(graph, spec.steps) == graph.order
    assert spec.retries.limit >= 1
    failing = {
        step.name: step.job_template["spec"]["template"]["metadata"]["annotations"]
        for step in job.steps
        if "kwok.backfill.dev/fail-partitions"
        in step.job_template["spec"]["template"]["metadata"]["annotations"]
    }
    assert list(failing) == ["ingest"]
    assert failing["ingest"]["kwok.backfill.dev/fail-partitions"] == "2024-03-11"
    assert failing["ingest"]["kwok.backfill.dev/fail-attempts"] == "1"
    for step in job.steps:  # a real cluster: the same outcome from the script
        (container,) = step.job_template["spec"]["template"]["spec"]["containers"]
        script = " ".join(container["args"])
        assert ("2024-03-11" in script) == (step.name == "ingest"), step.name


def test_api_ingestion_rerun_selects_only_ingest() -> None:
    """api-ingestion-rerun.yaml re-runs ingest alone for every day; its comment says what
    includeDownstream would add (validate and publish) and includeUpstream (nothing)."""
    job, spec = load("api-ingestion-rerun.yaml")
    graph = step_graph(job)
    assert spec.steps == ["ingest"]
    assert spec.reprocess is Reprocess.ALL
    assert not (spec.include_upstream or spec.include_downstream or spec.ignore_dependencies)
    assert not spec.mark_succeeded
    assert select_steps(
        graph,
        spec.steps,
        include_upstream=spec.include_upstream,
        include_downstream=spec.include_downstream,
    ) == ("ingest",)
    assert select_steps(graph, spec.steps, include_downstream=True) == graph.order
    assert select_steps(graph, spec.steps, include_upstream=True) == ("ingest",)


def test_clickstream_batches_a_day_per_job() -> None:
    """partitionsPerJob on the PartitionedJob: 744 hours in 31 Jobs of 24, 4 at a time."""
    job, spec = load("clickstream-batched.yaml")
    assert job.partitions_per_job == 24 and spec.partitions_per_job is None
    view = PartitionedJobView("pj", job, PartitionedJobStatus())
    decision = plan(judge(new_backfill("ns", spec), view, NOW), [], NOW)
    assert [(r.key, r.last_key, r.count) for r in decision.launches] == [
        (f"2024-01-{d:02d}T00:00", f"2024-01-{d:02d}T23:00", 24) for d in range(1, 5)
    ]
