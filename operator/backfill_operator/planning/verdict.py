"""One verdict per question: is this Backfill valid, and which partitions does it select.

:func:`judge_objects` loads a Backfill and its PartitionedJob from raw API objects (dicts, as
the apiserver returns them) and :func:`judge` decides, once, everything the operator, ``plan``
and every CLI command need to know before acting: the parsed models, the partition space and
its fingerprint, the resolved selection, the template hash, and the first reason (if any) that
makes the Backfill invalid. Nothing else in the package builds a partition space from a spec
or resolves a selection.

Invalid reasons, in the order they are checked (the first one found is reported):

1. the Backfill's spec cannot be read (``InvalidSelection``);
2. the PartitionedJob's spec cannot be read (``InvalidPartitions``);
3. the PartitionedJob does not exist (``PartitionedJobNotFound``);
4. its partitions do not parse (``InvalidPartitions``);
5. the Backfill's range or keys select nothing valid (``InvalidSelection``);
6. the job's steps form a cycle, or the Backfill selects steps the job does not have
   (``InvalidSteps``; :mod:`.steps`);
7. the apiserver refuses a Job built from the template (``InvalidJobTemplate``; only when the
   caller passes a ``check_template``, which the operator does with a server-side dry run);
8. the partition numbering changed after the Backfill started (``PartitioningChanged``).

Pure: ``now`` is an argument; the template check is an injected callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..api.model import BackfillSpec, BackfillStatus, PartitionedJobSpec, PartitionedJobStatus
from ..api.reasons import Reason
from .selection import (
    InvalidSpec,
    SelectionCache,
    build_space,
    effective_range_to,
    resolve_selection,
    selection_key,
)
from .space import Partition, PartitionSpace, Selection
from .steps import MAIN_STEP, StepGraph, select_steps, step_graph

#: The graph of a job with ``jobTemplate`` (one step, ""), also what a verdict holds before
#: the job's own graph is known.
MAIN_GRAPH = StepGraph((MAIN_STEP,), {MAIN_STEP: ()}, frozenset(), {MAIN_STEP: {}}, False)

__all__ = [
    "MAIN_GRAPH",
    "BackfillView",
    "InvalidSpec",
    "PartitionedJobView",
    "SelectionCache",
    "SpecError",
    "TemplateCheck",
    "Verdict",
    "build_space",
    "effective_range_to",
    "judge",
    "judge_objects",
    "load_backfill",
    "load_partitioned_job",
    "new_backfill",
    "raw_job_ref",
    "resolve_selection",
    "selection_key",
    "validation_summary",
]


@dataclass(frozen=True)
class SpecError:
    """Why a spec could not be read.

    ``summary`` is the first error (``loc: msg``), ``full`` pydantic's whole report.
    """

    summary: str
    full: str


def validation_summary(exc: ValidationError) -> str:
    """Return the first error of a pydantic ValidationError as ``field.path: message``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))


def _spec_error(exc: ValidationError) -> SpecError:
    return SpecError(validation_summary(exc), str(exc))


# ------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class BackfillView:
    """A Backfill as planning reads it.

    ``spec`` is None exactly when ``spec_error`` says why it could not be read. ``status`` is
    the last written status (empty when unreadable: the next write replaces it). ``run``
    names the run in claims and lock holders when it is not the Backfill's name (a
    PartitionedJob's scheduled runs are planned as a Backfill named after the job, run
    ``(schedule)``: :mod:`.runs`).
    """

    name: str
    namespace: str
    uid: str
    generation: int
    spec: BackfillSpec | None
    status: BackfillStatus
    spec_error: SpecError | None = None
    run: str = ""

    @property
    def run_name(self) -> str:
        """The run's name in claims and lock holders: ``run``, else the Backfill's name."""
        return self.run or self.name


@dataclass(frozen=True)
class PartitionedJobView:
    """The PartitionedJob a Backfill references.

    ``found`` is False when it does not exist; ``spec`` is None when it does not exist or
    cannot be read (``spec_error``).
    """

    name: str
    spec: PartitionedJobSpec | None
    status: PartitionedJobStatus
    found: bool = True
    spec_error: SpecError | None = None


def _status_of(model: type[Any], raw: Any) -> Any:
    try:
        return model.model_validate(raw or {})
    except ValidationError:
        return model()


def new_backfill(namespace: str, spec: BackfillSpec) -> BackfillView:
    """Return the view of a Backfill not created yet (for previews: ``plan``, ``create``)."""
    return BackfillView(
        name="", namespace=namespace, uid="", generation=0, spec=spec, status=BackfillStatus()
    )


def load_backfill(body: Mapping[str, Any]) -> BackfillView:
    """Return the :class:`BackfillView` of a raw Backfill object (never raises on user data)."""
    meta = body.get("metadata") or {}
    spec: BackfillSpec | None = None
    error: SpecError | None = None
    try:
        spec = BackfillSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        error = _spec_error(exc)
    return BackfillView(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        spec=spec,
        status=_status_of(BackfillStatus, body.get("status")),
        spec_error=error,
    )


def load_partitioned_job(name: str, body: Mapping[str, Any] | None) -> PartitionedJobView:
    """Return the view of PartitionedJob ``name`` from its raw object, or None (not found)."""
    if body is None:
        return PartitionedJobView(name, None, PartitionedJobStatus(), found=False)
    status = _status_of(PartitionedJobStatus, body.get("status"))
    try:
        spec = PartitionedJobSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        return PartitionedJobView(name, None, status, spec_error=_spec_error(exc))
    return PartitionedJobView(name, spec, status)


# -------------------------------------------------------------------------------- verdict

#: ``check_template(partitioned_job, template_hash, sample)``: the apiserver's refusal of a
#: Job built from the PartitionedJob's template for partition ``sample``, or None.
TemplateCheck = Callable[[PartitionedJobView, str, Partition], "str | None"]


@dataclass(frozen=True)
class Verdict:
    """Everything known about a Backfill before any Job is looked at.

    ``space`` and ``selection`` are None when they could not be built (``invalid`` says why);
    ``invalid`` may also be set with a selection (a refused template, a changed numbering),
    then the recorded outcomes are kept and shown but nothing is launched. ``graph`` is the
    job's step graph and ``steps`` the steps this run runs, in graph order (``("",)`` for a
    job with ``jobTemplate``).
    """

    backfill: BackfillView
    partitioned_job: PartitionedJobView
    space: PartitionSpace | None
    selection: Selection | None
    template_hash: str
    invalid: InvalidSpec | None
    graph: StepGraph = MAIN_GRAPH
    steps: tuple[str, ...] = (MAIN_STEP,)

    @property
    def fingerprint(self) -> str | None:
        """The partition space's fingerprint, or None without a space."""
        return None if self.space is None else self.space.fingerprint

    @property
    def partitioning_changed(self) -> bool:
        """True when the status records indices of another numbering than the space's."""
        recorded = self.backfill.status.partitioning
        return bool(recorded) and self.space is not None and recorded != self.space.fingerprint


def judge(
    backfill: BackfillView,
    partitioned_job: PartitionedJobView,
    now: datetime,
    *,
    selections: SelectionCache | None = None,
    check_template: TemplateCheck | None = None,
) -> Verdict:
    """Judge a Backfill with its PartitionedJob at ``now``; see the module doc for the order.

    ``selections`` caches resolved selections across calls; ``check_template`` (optional)
    validates a Job built from the template (called only when a selection was resolved).
    Never raises for user input: every problem is the returned verdict's ``invalid``.
    """
    space: PartitionSpace | None = None
    selection: Selection | None = None
    t_hash = ""
    pj = partitioned_job
    graph = MAIN_GRAPH
    steps: tuple[str, ...] = (MAIN_STEP,)

    def verdict(invalid: InvalidSpec | None) -> Verdict:
        return Verdict(backfill, pj, space, selection, t_hash, invalid, graph, steps)

    spec = backfill.spec
    if spec is None:
        error = backfill.spec_error
        full = error.full if error else "unreadable"
        return verdict(
            InvalidSpec(
                Reason.INVALID_SELECTION,
                f"spec is invalid: {full}",
                error.summary if error else full,
            )
        )
    if pj.spec_error is not None:
        return verdict(
            InvalidSpec(
                Reason.INVALID_PARTITIONS,
                f'PartitionedJob "{pj.name}" is invalid: {pj.spec_error.full}',
                pj.spec_error.summary,
            )
        )
    if pj.spec is None:
        return verdict(
            InvalidSpec(
                Reason.PARTITIONED_JOB_NOT_FOUND,
                f'PartitionedJob "{pj.name}" not found in namespace "{backfill.namespace}"',
            )
        )
    try:
        space = build_space(pj.spec, now)
        if selections is not None:
            selection = selections.resolve(space, pj.spec, spec, backfill.status)
        else:
            selection = resolve_selection(space, spec, backfill.status)
    except InvalidSpec as exc:
        return verdict(exc)
    try:
        graph = step_graph(pj.spec)
    except InvalidSpec as exc:
        selection = None
        message = f'PartitionedJob "{pj.name}" has invalid steps: {exc.message}'
        return verdict(InvalidSpec(exc.reason, message, exc.message))
    try:
        steps = select_steps(
            graph,
            spec.steps,
            include_upstream=spec.include_upstream,
            include_downstream=spec.include_downstream,
        )
    except InvalidSpec as exc:
        selection = None
        return verdict(exc)
    t_hash = graph.template_hash()
    if check_template is not None:
        sample = selection.partition(selection.indices.first())
        refusal = check_template(pj, t_hash, sample)
        if refusal:
            return verdict(
                InvalidSpec(
                    Reason.INVALID_JOB_TEMPLATE,
                    f'PartitionedJob "{pj.name}" has a jobTemplate the apiserver rejects: '
                    f"{refusal}",
                    refusal,
                )
            )
    counts = backfill.status.counts
    started = counts.succeeded + counts.failed + counts.running
    recorded = backfill.status.partitioning
    if started and recorded and recorded != space.fingerprint:
        return verdict(
            InvalidSpec(
                Reason.PARTITIONING_CHANGED,
                f'the partitions of PartitionedJob "{pj.name}" changed (cron, timeZone, start '
                "or values) after this Backfill started; its partition numbers no longer "
                "apply. Create a new Backfill.",
            )
        )
    return verdict(None)


def judge_objects(
    backfill: Mapping[str, Any],
    partitioned_job: Mapping[str, Any] | None,
    now: datetime,
    *,
    selections: SelectionCache | None = None,
    check_template: TemplateCheck | None = None,
) -> Verdict:
    """Load a raw Backfill and its raw PartitionedJob (None: not found) and :func:`judge` them.

    The PartitionedJob's name is the Backfill's ``spec.jobRef.name`` (as written, even when
    the rest of the spec cannot be read).
    """
    view = load_backfill(backfill)
    name = view.spec.job_ref.name if view.spec else raw_job_ref(backfill)
    return judge(
        view,
        load_partitioned_job(name, partitioned_job),
        now,
        selections=selections,
        check_template=check_template,
    )


def raw_job_ref(body: Mapping[str, Any]) -> str:
    """Return ``spec.jobRef.name`` of a raw Backfill, "" when its spec does not say."""
    ref = (body.get("spec") or {}).get("jobRef")
    return str(ref.get("name", "")) if isinstance(ref, dict) else ""
