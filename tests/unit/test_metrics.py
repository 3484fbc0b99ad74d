"""The per-state and per-step partition gauges: set from a status, removed by ``forget``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from backfill_operator.api.model import (
    PARTITION_STATES,
    BackfillStatus,
    PartitionCounts,
    StepStatus,
)
from backfill_operator.controller.metrics import Metrics

NS = "data"


def _series(registry: CollectorRegistry, metric: str) -> dict[tuple[str, ...], float]:
    """The samples of gauge ``metric``: label values (in label order) to value."""
    return {
        tuple(sample.labels.values()): sample.value
        for family in registry.collect()
        if family.name == metric
        for sample in family.samples
    }


def _stepped_status(*steps: tuple[str, PartitionCounts]) -> BackfillStatus:
    return BackfillStatus(
        counts=PartitionCounts(total=3, succeeded=1, upstream_failed=1, marked=1),
        steps=[StepStatus(name=name, counts=counts) for name, counts in steps],
    )


def test_partition_states_include_upstream_failed_and_marked() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.observe_status(NS, "bf", "pj", 3, _stepped_status())
    got = _series(registry, "backfill_partitions")
    assert {labels[2] for labels in got} == set(PARTITION_STATES)
    assert got[(NS, "bf", "upstream_failed")] == 1
    assert got[(NS, "bf", "marked")] == 1
    assert not _series(registry, "backfill_step_partitions")  # no steps: no step series


def test_step_gauge_follows_status_steps_and_forget_clears_it() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    status = _stepped_status(
        ("ingest", PartitionCounts(total=3, succeeded=2, failed=1)),
        ("validate", PartitionCounts(total=3, succeeded=2, upstream_failed=1)),
        ("publish", PartitionCounts(total=3, running=1, pending=1, upstream_failed=1)),
    )
    metrics.observe_status(NS, "bf", "pj", 3, status)
    metrics.observe_status(NS, "other", "pj", 3, status)
    got = _series(registry, "backfill_step_partitions")
    assert len(got) == 2 * 3 * len(PARTITION_STATES)
    assert got[(NS, "bf", "ingest", "failed")] == 1
    assert got[(NS, "bf", "validate", "upstream_failed")] == 1
    assert got[(NS, "bf", "publish", "running")] == 1
    assert got[(NS, "bf", "publish", "succeeded")] == 0

    # A step the status no longer has (the job's steps changed) loses its series.
    metrics.observe_status(NS, "bf", "pj", 3, _stepped_status(("ingest", PartitionCounts())))
    got = _series(registry, "backfill_step_partitions")
    assert {labels[2] for labels in got if labels[1] == "bf"} == {"ingest"}
    assert got[(NS, "bf", "ingest", "failed")] == 0

    metrics.forget(NS, "bf")
    for metric in ("backfill_step_partitions", "backfill_partitions"):
        left = _series(registry, metric)
        assert left and all(labels[1] == "other" for labels in left), metric
    metrics.forget(NS, "other")
    assert not _series(registry, "backfill_step_partitions")
    assert not _series(registry, "backfill_partitions")
