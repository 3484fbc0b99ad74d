"""A PartitionedJob of 1,000,000 partitions with a history, without running a million Jobs.

For the web page's scale test and benchmark (issue 11): :func:`million_job` is a minutely
PartitionedJob of exactly :data:`MILLION` partitions (``start`` to ``end``), and
:func:`history_status` the ``status`` the operator would have written after running all of
them with scattered failures (its ``partitioning`` fingerprint and ledger, built with the
operator's own partition space and index sets). Apply the job, then write the status with
``kubectl replace --subresource=status`` or the status endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backfill_operator.api.model import API_VERSION, PartitionedJobSpec
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.selection import build_space

__all__ = ["MILLION", "START", "history_status", "million_job"]

#: Partitions of :func:`million_job`.
MILLION = 1_000_000
#: Its first partition: 2023-01-01T00:00Z; the last starts 999,999 minutes later.
START = datetime(2023, 1, 1, tzinfo=UTC)


def _template() -> dict[str, Any]:
    return {
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"kwok.backfill.dev/duration": "1s"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example.com/etl:1"}],
                },
            },
        }
    }


def million_job(name: str, namespace: str, *, steps: int = 0) -> dict[str, Any]:
    """Return the manifest of a minutely PartitionedJob of exactly 1,000,000 partitions.

    ``steps`` > 0 gives a chain of that many steps (``s0 -> s1 -> ...``) instead of a
    ``jobTemplate``. No scheduled runs: nothing runs unless a Backfill asks.
    """
    end = START + timedelta(minutes=MILLION)
    spec: dict[str, Any] = {
        "partitions": {
            "schedule": {
                "cron": "* * * * *",
                "start": START.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        }
    }
    if steps:
        spec["steps"] = [
            {
                "name": f"s{i}",
                **({"dependsOn": [f"s{i - 1}"]} if i else {}),
                "jobTemplate": _template(),
            }
            for i in range(steps)
        ]
    else:
        spec["jobTemplate"] = _template()
    return {
        "apiVersion": API_VERSION,
        "kind": "PartitionedJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def history_status(spec: dict[str, Any], *, failed_every: int = 100) -> dict[str, Any]:
    """Return a ``status`` of :func:`million_job`'s ``spec`` after one run of everything.

    Every ``failed_every``-th partition (index 0, 100, 200, ...) failed (10,000 of them by
    default), the rest succeeded; for a job with steps the first step failed there and the
    later steps did not run for those partitions (no outcome), succeeded elsewhere.
    """
    model = PartitionedJobSpec.model_validate(spec)
    space = build_space(model, datetime.now(UTC))
    last = space.last_index()
    assert last == MILLION - 1, last
    failed = IndexSet.from_indices(range(0, MILLION, failed_every))
    succeeded = IndexSet.from_range(0, last).difference(failed)
    ledger: dict[str, Any] = {"succeeded": succeeded.format(), "failed": failed.format()}
    if model.steps:
        ledger["steps"] = [
            {
                "name": step.name,
                "succeeded": succeeded.format(),
                **({"failed": failed.format()} if i == 0 else {}),
            }
            for i, step in enumerate(model.steps)
        ]
    return {"partitioning": space.fingerprint, "ledger": ledger}
