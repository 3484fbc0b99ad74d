"""The examples parse with the API models and select what their comments promise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from backfill_operator.api.model import BackfillSpec, PartitionedJobSpec, PartitionedJobStatus
from backfill_operator.planning.ledger import preview as preview_of
from backfill_operator.planning.verdict import PartitionedJobView, judge, new_backfill

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def load(name: str) -> tuple[PartitionedJobSpec, BackfillSpec]:
    docs: list[dict[str, Any]] = list(yaml.safe_load_all((EXAMPLES / name).read_text()))
    job = next(d for d in docs if d["kind"] == "PartitionedJob")
    backfill = next(d for d in docs if d["kind"] == "Backfill")
    assert backfill["spec"]["jobRef"]["name"] == job["metadata"]["name"]
    return (
        PartitionedJobSpec.model_validate(job["spec"]),
        BackfillSpec.model_validate(backfill["spec"]),
    )


@pytest.mark.parametrize(
    ("name", "count", "first", "last"),
    [
        ("sales-pipeline.yaml", 300, "2024-01-01", "2024-10-26"),
        ("api-ingestion.yaml", 3, "2024-03-10", "2024-03-12"),
        ("regions.yaml", 3, "us-east-1", "eu-central-1"),
        ("shared-warehouse.yaml", 3, "2024-03-04", "2024-03-06"),
        ("orders-scheduled.yaml", 366, "2024-01-01", "2024-12-31"),
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
