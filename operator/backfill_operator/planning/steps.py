"""The steps of a partition: the step graph of a PartitionedJob and a Backfill's step selection.

A PartitionedJob has either one ``jobTemplate`` (one Job per partition: the graph has the one
step :data:`MAIN_STEP`, named "") or ``spec.steps``: named steps, each with its own Job
template and ``dependsOn`` (steps of the same partition that must succeed first). The graph
must be acyclic; unique names and known ``dependsOn`` names are checked by the CRD schema
too, again here for objects written before it (:func:`step_graph` raises
:class:`~.selection.InvalidSpec` with reason ``InvalidSteps``).

A Backfill runs every step, or ``spec.steps`` only (Airflow's ``-t``), widened by
``includeUpstream`` / ``includeDownstream`` (Airflow's ``--upstream``/``--downstream`` of
``tasks clear``; Dagster's asset selection ``+name`` / ``name+``): :func:`select_steps`.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.model import PartitionedJobSpec
from ..api.reasons import Reason
from .selection import InvalidSpec

#: The step name of a job with ``spec.jobTemplate`` (its one step; no step label, no
#: STEP_NAME variable).
MAIN_STEP = ""

__all__ = ["MAIN_STEP", "StepGraph", "select_steps", "step_graph"]


@dataclass(frozen=True)
class StepGraph:
    """A PartitionedJob's steps as a DAG.

    ``order`` is a topological order (among steps whose upstream steps are placed, the
    declared order decides: Kahn's algorithm with a priority queue); ``upstream`` maps a step
    to its direct upstream steps; ``past`` holds the steps with ``dependsOnPast``;
    ``templates`` maps a step to its JobTemplateSpec; ``stepped`` is False for a job with
    ``jobTemplate`` (then ``order`` is ``("",)``).
    """

    order: tuple[str, ...]
    upstream: Mapping[str, tuple[str, ...]]
    past: frozenset[str]
    templates: Mapping[str, dict[str, Any]]
    stepped: bool

    def rank(self, step: str) -> int:
        """Position of ``step`` in :attr:`order` (the tie-breaker of launch order)."""
        return self.order.index(step)

    def downstream(self, step: str) -> tuple[str, ...]:
        """The steps that depend directly on ``step``, in :attr:`order`."""
        return tuple(s for s in self.order if step in self.upstream[s])

    def ancestors(self, steps: Iterable[str]) -> frozenset[str]:
        """Every step some step of ``steps`` depends on, directly or not (``steps`` excluded)."""
        seen: set[str] = set()
        todo = [u for s in steps for u in self.upstream[s]]
        while todo:
            step = todo.pop()
            if step not in seen:
                seen.add(step)
                todo.extend(self.upstream[step])
        return frozenset(seen)

    def descendants(self, steps: Iterable[str]) -> frozenset[str]:
        """Every step that depends on some step of ``steps``, directly or not."""
        seen: set[str] = set()
        todo = [d for s in steps for d in self.downstream(s)]
        while todo:
            step = todo.pop()
            if step not in seen:
                seen.add(step)
                todo.extend(self.downstream(step))
        return frozenset(seen)

    def template_hash(self) -> str:
        """Return 10 hex characters identifying every step's template and dependencies."""
        if not self.stepped:
            return _hash(self.templates[MAIN_STEP])
        return _hash(
            [[s, list(self.upstream[s]), s in self.past, self.templates[s]] for s in self.order]
        )


def _hash(value: Any) -> str:
    """10 hex characters of sha256 over canonical JSON (as :func:`.naming.template_hash`)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def step_graph(spec: PartitionedJobSpec) -> StepGraph:
    """Return the step graph of a PartitionedJob spec.

    Raises :class:`~.selection.InvalidSpec` (reason ``InvalidSteps``) when both or neither of
    ``jobTemplate`` and ``steps`` are set, for a duplicate name, a ``dependsOn`` naming an
    unknown step, or a cycle (the message names the steps on it).
    """
    if spec.steps is None:
        if spec.job_template is None:
            raise InvalidSpec(Reason.INVALID_STEPS, "set one of jobTemplate and steps")
        return StepGraph(
            (MAIN_STEP,), {MAIN_STEP: ()}, frozenset(), {MAIN_STEP: spec.job_template}, False
        )
    if spec.job_template is not None:
        raise InvalidSpec(Reason.INVALID_STEPS, "set jobTemplate or steps, not both")
    declared = [s.name for s in spec.steps]
    seen: set[str] = set()
    for name in declared:
        if name in seen:
            raise InvalidSpec(Reason.INVALID_STEPS, f'two steps are named "{name}"')
        seen.add(name)
    upstream: dict[str, tuple[str, ...]] = {}
    for step in spec.steps:
        for dep in step.depends_on:
            if dep not in seen:
                raise InvalidSpec(
                    Reason.INVALID_STEPS,
                    f'step "{step.name}" depends on "{dep}", which is not a step of this job',
                )
        upstream[step.name] = tuple(dict.fromkeys(step.depends_on))
    order = _topological(declared, upstream)
    return StepGraph(
        order=order,
        upstream=upstream,
        past=frozenset(s.name for s in spec.steps if s.depends_on_past),
        templates={s.name: s.job_template for s in spec.steps},
        stepped=True,
    )


def _topological(
    declared: Sequence[str], upstream: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """Kahn's algorithm, ties by declared position; raises InvalidSpec on a cycle."""
    position = {name: i for i, name in enumerate(declared)}
    missing = {name: len(set(upstream[name])) for name in declared}
    downstream: dict[str, list[str]] = {name: [] for name in declared}
    for name in declared:
        for dep in set(upstream[name]):
            downstream[dep].append(name)
    ready = [position[n] for n in declared if missing[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = declared[heapq.heappop(ready)]
        order.append(name)
        for child in downstream[name]:
            missing[child] -= 1
            if missing[child] == 0:
                heapq.heappush(ready, position[child])
    if len(order) < len(declared):
        cycle = _cycle(upstream, [n for n in declared if missing[n] > 0])
        raise InvalidSpec(
            Reason.INVALID_STEPS,
            "the steps' dependsOn form a cycle: " + " -> ".join(cycle),
        )
    return tuple(order)


def _cycle(upstream: Mapping[str, tuple[str, ...]], stuck: Sequence[str]) -> list[str]:
    """One cycle among the ``stuck`` steps, as names with the first repeated at the end."""
    left = set(stuck)
    step = stuck[0]
    path: list[str] = []
    while step not in path:
        path.append(step)
        step = next(u for u in upstream[step] if u in left)
    cycle = path[path.index(step) :]
    cycle.reverse()  # upstream first: a -> b means b depends on a
    start = min(range(len(cycle)), key=lambda k: stuck.index(cycle[k]))
    cycle = cycle[start:] + cycle[:start]  # from the first declared step on it
    return [*cycle, cycle[0]]


def select_steps(
    graph: StepGraph,
    names: Sequence[str] | None,
    *,
    include_upstream: bool = False,
    include_downstream: bool = False,
) -> tuple[str, ...]:
    """Return the steps a run runs, in the graph's order.

    ``names`` None: every step. Otherwise those steps, plus their ancestors with
    ``include_upstream`` and their descendants with ``include_downstream``. Raises
    :class:`~.selection.InvalidSpec` (``InvalidSteps``) for a name the job does not have, or
    any name when the job has ``jobTemplate`` instead of steps.
    """
    if names is None:
        return graph.order
    if not graph.stepped:
        raise InvalidSpec(
            Reason.INVALID_STEPS,
            "spec.steps selects steps, but the PartitionedJob has a jobTemplate, not steps",
        )
    unknown = [n for n in names if n not in graph.upstream]
    if unknown:
        known = ", ".join(graph.order)
        raise InvalidSpec(
            Reason.INVALID_STEPS,
            f'step "{unknown[0]}" is not a step of the PartitionedJob (its steps: {known})',
        )
    chosen = set(names)
    if include_upstream:
        chosen |= graph.ancestors(names)
    if include_downstream:
        chosen |= graph.descendants(names)
    return tuple(s for s in graph.order if s in chosen)
