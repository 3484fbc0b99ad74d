"""Helpers for the tests that plan from statuses as the apiserver stores them (issue 13).

A status is written with ``compacted()`` (bitmaps, relative sets, references) and read back
parsed; :func:`as_text` turns every index set of a status into plain text (the form before
issue 13), :func:`forced_encodings` makes every set a bitmap and one set of each group
relative, so small tests exercise the forms large statuses use.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, TypeVar
from unittest import mock

from backfill_operator.api import sets
from backfill_operator.api.model import BackfillStatus, PartitionedJobStatus
from backfill_operator.planning.decide import Decision
from backfill_operator.planning.ranges import IndexSet

_Status = TypeVar("_Status", BackfillStatus, PartitionedJobStatus)


def through_api(status: _Status) -> _Status:
    """``status`` as the operator writes it and reads it back (compacted, JSON, parsed)."""
    return type(status).model_validate(json.loads(json.dumps(status.compacted().to_api())))


def _text_sets(data: Any) -> Any:
    """Every index set in a dumped status as plain text (sets are under these keys)."""
    names = {"succeeded", "failed", "skipped", "running", "queued", "upstreamFailed", "marked"}
    if isinstance(data, dict):
        return {
            k: IndexSet.parse(v).format()
            if isinstance(v, str) and (k in names or (k == "partitions" and "attempts" in data))
            else _text_sets(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_text_sets(v) for v in data]
    return data


def as_text(status: _Status) -> _Status:
    """``status`` with every index set in plain text (as before issue 13)."""
    return type(status).model_validate(_text_sets(status.model_dump(by_alias=True)))


@contextlib.contextmanager
def forced_encodings(on: bool) -> Iterator[None]:
    """Write every set that has a bitmap as a bitmap, and a relative set in every group."""
    if not on:
        yield
        return

    def choose(count: int, text: Any, bitmap: Any) -> str:
        members = bitmap()
        return sets.encode_bitmap(members) if count and members is not None else str(text())

    with (
        mock.patch.object(sets, "choose", choose),
        mock.patch.object(sets, "RELATIVE_MIN_SAVING", -(10**9)),
    ):
        yield


def summary(decision: Decision) -> Any:
    """What a pass decides, comparable across encodings of the same state."""
    state = decision.state
    lanes = (
        [(lane.succeeded, lane.failed, lane.pending, lane.retrying) for lane in state.lanes]
        if state
        else None
    )
    return (
        [(r.index, r.attempt, r.step) for r in decision.launches],
        sorted(decision.deletions),
        decision.requeue_after_seconds,
        [(o.index, o.attempt, o.succeeded, o.final) for o in decision.outcomes],
        lanes,
    )
