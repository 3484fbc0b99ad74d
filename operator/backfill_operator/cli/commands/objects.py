"""Reading API objects for the commands: a Backfill's models, its PartitionedJob, the verdict.

Raw objects are loaded with :func:`~backfill_operator.planning.verdict.load_backfill` and
:func:`~backfill_operator.planning.verdict.load_partitioned_job`, and judged with
:func:`~backfill_operator.planning.verdict.judge`, the operator's own code: the partition
space, the selection and whether the partition numbering changed are decided there, once, and
never re-derived here. What is left to the commands is how a problem is worded.

For a PartitionedJob's own views (``status pj/NAME``, ``missing``): :func:`job_space` builds
its partition space, :func:`complete_partitions` selects its complete partitions (within
``--from``/``--to``), :func:`observed_jobs` reads the Jobs of all its runs and
:func:`backfills_of` lists its Backfills.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ... import clock
from ...api.labels import LABEL_PARTITIONED_JOB, label_value
from ...api.model import BACKFILLS, BackfillSpec, BackfillStatus, PartitionedJobSpec
from ...planning.observed import ObservedJob, observe_job
from ...planning.space import PartitionError, PartitionSpace, Selection
from ...planning.steps import step_graph
from ...planning.verdict import (
    BackfillView,
    InvalidSpec,
    PartitionedJobView,
    Verdict,
    build_space,
    judge,
    load_backfill,
    load_partitioned_job,
    raw_job_ref,
)
from ..errors import CliError
from .session import Session


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


# ---------------------------------------------------------------------- PartitionedJob


def job_space(job: PartitionedJobView, now: datetime) -> tuple[PartitionSpace | None, str | None]:
    """Return the PartitionedJob's partition space at ``now``, or None and why it has none.

    The reason is the first error of an unreadable spec, or why its partitions do not parse
    (the message the operator writes into its conditions).
    """
    if job.spec_error is not None:
        return None, f"spec is invalid: {job.spec_error.summary}"
    if job.spec is None:
        return None, f'PartitionedJob "{job.name}" not found'
    try:
        return build_space(job.spec, now), None
    except InvalidSpec as exc:
        return None, exc.message


def complete_partitions(
    space: PartitionSpace, from_: str | None = None, to: str | None = None
) -> Selection | None:
    """Return the complete partitions from ``from_`` to ``to``, as a Backfill's range selects.

    ``from_`` None is the first partition, ``to`` None the last complete one. None when no
    partition is complete yet and no bound was given. Raises PartitionError otherwise (a
    bound that does not parse, an empty range, more than ``MAX_PARTITIONS``).
    """
    try:
        return space.select_range(from_, to)
    except PartitionError:
        if from_ is None and to is None and space.last_index() is None:
            return None
        raise


def step_names(spec: PartitionedJobSpec | None) -> tuple[str, ...]:
    """Return a PartitionedJob's steps in the order the operator launches them; () without.

    The order is the step graph's (upstream steps first, then as declared); for a graph the
    operator refuses (a cycle) the declared order.
    """
    if spec is None or spec.steps is None:
        return ()
    try:
        return step_graph(spec).order
    except InvalidSpec:
        return tuple(step.name for step in spec.steps)


def observed_jobs(session: Session, job: str) -> list[ObservedJob]:
    """Return every Job of PartitionedJob ``job`` (all its runs), as the planner sees Jobs."""
    return [observed for _, observed in observed_step_jobs(session, job)]


def observed_step_jobs(session: Session, job: str) -> list[tuple[str, ObservedJob]]:
    """Return every Job of PartitionedJob ``job`` with its step (label ``backfill.dev/step``).

    The step is "" for the Jobs of a job without steps. One request.
    """
    raw = session.client.list_jobs(f"{LABEL_PARTITIONED_JOB}={label_value(job)}")
    return [(j.step, j) for j in (observe_job(r, "") for r in raw) if j is not None]


def backfills_of(session: Session, job: str) -> list[dict[str, Any]]:
    """Return the raw Backfills of the namespace whose ``spec.jobRef.name`` is ``job``."""
    items = session.client.list_objects(BACKFILLS, session.namespace)
    return [item for item in items if raw_job_ref(item) == job]
