"""Reading API objects for the commands: a Backfill's models, its PartitionedJob, the verdict.

Raw objects are loaded with :func:`~backfill_operator.planning.verdict.load_backfill` and
:func:`~backfill_operator.planning.verdict.load_partitioned_job`, and judged with
:func:`~backfill_operator.planning.verdict.judge`, the operator's own code: the partition
space, the selection and whether the partition numbering changed are decided there, once, and
never re-derived here. What is left to the commands is how a problem is worded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import clock
from ...api.model import BackfillSpec, BackfillStatus
from ...planning.verdict import (
    BackfillView,
    PartitionedJobView,
    Verdict,
    judge,
    load_backfill,
    load_partitioned_job,
)
from ..errors import CliError


def backfill_models(body: Mapping[str, Any]) -> tuple[BackfillSpec, BackfillStatus]:
    """Return the spec and status of a raw Backfill; CliError (exit 2) when the spec is invalid.

    An unreadable status reads as empty (the operator's next write replaces it).
    """
    view = load_backfill(body)
    if view.spec is None:
        summary = view.spec_error.summary if view.spec_error is not None else "unreadable"
        raise CliError(f'Backfill "{view.name}" is invalid: {summary}')
    return view.spec, view.status


def partitioned_job(name: str, body: Mapping[str, Any] | None) -> PartitionedJobView:
    """Return the view of PartitionedJob ``name`` (``body`` None: it does not exist).

    Raises CliError (exit 2) when its spec cannot be read.
    """
    view = load_partitioned_job(name, body)
    if view.spec_error is not None:
        raise CliError(f'PartitionedJob "{name}" is invalid: {view.spec_error.summary}')
    return view


def verdict_of(
    spec: BackfillSpec,
    status: BackfillStatus,
    job: PartitionedJobView,
    *,
    namespace: str,
    name: str = "",
) -> Verdict:
    """Judge an existing Backfill's spec and status with its PartitionedJob, now.

    ``name`` and ``namespace`` only word the verdict's own messages (a new Backfill is judged
    from :func:`~backfill_operator.planning.verdict.new_backfill` instead).
    """
    view = BackfillView(
        name=name, namespace=namespace, uid="", generation=0, spec=spec, status=status
    )
    return judge(view, job, clock.now())
