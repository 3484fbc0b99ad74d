"""What ``create`` and ``plan`` show before acting: the selection, what runs, what is skipped.

:func:`render_preview` draws a :class:`~backfill_operator.planning.ledger.Preview` (the
operator's own answer to "what would a new Backfill run") as a label/value block: the
partition space, the selected span, how many run and under which policy
(:func:`describe_policy`; the priority and the Kueue queue by :func:`describe_queueing`), how
many ``reprocess`` skips, and the first and last keys in launch order (:func:`launch_sample`,
lazy whatever the selection's size). For a PartitionedJob with steps it names the steps that
run (:func:`describe_steps`; the counts stay partition-level); the parameters the Jobs get
(``--env``, ``--label``, ``--annotation``) and ``--mark-succeeded`` have rows of their own
(:func:`describe_parameters`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from rich.console import Group
from rich.text import Text

from ...api.model import BackfillSpec, Order, Reprocess
from ...planning.ledger import Preview
from ...planning.space import plural
from .style import kv, span

#: Keys shown at each end of a preview.
PREVIEW_SAMPLE = 5


def launch_sample(
    preview: Preview, order: Order, sample: int = PREVIEW_SAMPLE
) -> tuple[list[str], list[str]]:
    """Return the keys of the first and the last ``sample`` partitions in launch order.

    The second list is empty when everything fits in the first (``len <= 2 * sample``: then
    the first list holds every key). Lazy: never enumerates the whole selection.
    """
    sel = preview.selection
    run = preview.to_run
    if len(run) <= 2 * sample:
        return [sel.key(i) for i in preview.launch_order(order)], []
    head = [sel.key(i) for i in itertools.islice(preview.launch_order(order), sample)]
    reverse = iter(run) if order is Order.NEWEST_FIRST else run.iter_descending()
    tail = [sel.key(i) for i in itertools.islice(reverse, sample)][::-1]
    return head, tail


def describe_queueing(spec: BackfillSpec) -> list[str]:
    """Return how the Backfill competes for slots: ``["priority 5", "Kueue queue q"]``.

    Each part only when set: a non-zero ``priority``, and the Kueue LocalQueue (with its
    WorkloadPriorityClass when given: ``"Kueue queue q (priority class high)"``).
    """
    parts = []
    if spec.priority:
        parts.append(f"priority {spec.priority}")
    if spec.kueue is not None:
        kueue = f"Kueue queue {spec.kueue.queue_name}"
        if spec.kueue.priority_class:
            kueue += f" (priority class {spec.kueue.priority_class})"
        parts.append(kueue)
    return parts


def describe_policy(spec: BackfillSpec) -> str:
    """Return ``"oldest first, 10 at a time, 2 retries, stop after 5 failures"``.

    A non-zero priority and a Kueue queue follow (:func:`describe_queueing`):
    ``"..., stop after 5 failures, priority 5, Kueue queue q"``.
    """
    order = "newest first" if spec.order is Order.NEWEST_FIRST else "oldest first"
    parts = [order, f"{spec.concurrency} at a time"]
    limit = spec.retries.limit
    if limit == 0:
        parts.append("no retries")
    else:
        retries = "1 retry" if limit == 1 else f"{limit} retries"
        parts.append(f"{retries} (backoff {spec.retries.backoff_seconds}s)")
    if spec.max_failed_partitions is not None:
        parts.append(f"stop after {plural(spec.max_failed_partitions, 'failure')}")
    parts.extend(describe_queueing(spec))
    return ", ".join(parts)


def describe_steps(spec: BackfillSpec, steps: Sequence[str], all_steps: Sequence[str]) -> list[str]:
    """Return the ``Steps`` lines of a preview: which steps run, and how their order is kept.

    First line: ``all 3: ingest, validate, publish`` or ``validate, publish (2 of 3; not run:
    ingest)``, then ``; ignoring dependencies outside this run`` (``ignoreDependencies``) and
    ``; the first partition does not wait for dependsOnPast`` (``ignoreFirstDependsOnPast``).
    Second line (reprocess Missing or Failed): per partition, a step runs (is marked, with
    markSucceeded) when it has no outcome (success) recorded or a step it depends on runs.
    """
    if list(steps) == list(all_steps):
        first = f"all {len(all_steps)}: {', '.join(steps)}"
    else:
        left = [s for s in all_steps if s not in steps]
        first = f"{', '.join(steps)} ({len(steps)} of {len(all_steps)}; not run: {', '.join(left)})"
    if spec.ignore_dependencies:
        first += "; ignoring dependencies outside this run"
    if spec.ignore_first_depends_on_past:
        first += "; the first partition does not wait for dependsOnPast"
    lines = [first]
    if spec.reprocess is not Reprocess.ALL:
        outcome = "outcome" if spec.reprocess is Reprocess.MISSING else "success"
        verb = "is marked" if spec.mark_succeeded else "runs"
        lines.append(
            f"per partition, a step {verb} when it has no {outcome} recorded (reprocess "
            f"{spec.reprocess}) or a step it depends on {verb}"
        )
    return lines


def describe_parameters(spec: BackfillSpec) -> list[tuple[str, str]]:
    """Return the preview rows of what the Jobs get: ``Env``, ``Labels``, ``Annotations``.

    Each row only when set: ``("Env", "MODE=full, TARGET=$(PARTITION_KEY)")`` (a variable
    from ``valueFrom`` reads ``NAME (valueFrom)``), labels and annotations as ``k=v``.
    """
    rows: list[tuple[str, str]] = []
    if spec.env:
        rows.append(
            (
                "Env",
                ", ".join(
                    f"{e.name} (valueFrom)"
                    if e.value_from is not None
                    else f"{e.name}={e.value or ''}"
                    for e in spec.env
                ),
            )
        )
    for label, pairs in (
        ("Labels", spec.job_labels),
        ("Annotations", spec.job_annotations),
    ):
        if pairs:
            rows.append((label, ", ".join(f"{k}={v}" for k, v in pairs.items())))
    return rows


def render_preview(
    *,
    job: str,
    namespace: str,
    description: str,
    preview: Preview,
    spec: BackfillSpec,
    name: str | None,
    reprocess_hint: bool = True,
    steps: Sequence[str] | None = None,
    all_steps: Sequence[str] | None = None,
) -> Group:
    """Return what ``create``/``plan`` show before acting: counts, the first and last keys.

    ``description`` is the partition space's (``daily schedule "0 0 * * *" in UTC``);
    ``name`` the Backfill to create (the "To run" line then gives the whole policy), or None
    for ``plan`` (only the priority and queue, when set). ``reprocess_hint`` False leaves
    the ``--reprocess`` hint out of the Skipped line (a command without that flag).
    ``steps`` and ``all_steps`` (a job with steps: those that run and every one) add the
    ``Steps`` rows (:func:`describe_steps`). With ``markSucceeded`` the count reads ``To
    mark`` (no Job runs, so no policy); the parameters follow (:func:`describe_parameters`).
    """
    sel = preview.selection
    rows: list[tuple[str, Text]] = [
        ("PartitionedJob", Text(f"{namespace}/{job}: {description}")),
        (
            "Selected",
            Text(f"{plural(len(sel), 'partition')}: {span(sel.first_key, sel.last_key)}"),
        ),
    ]
    run = len(preview.to_run)
    policy = ""
    if run and name is not None:
        policy = describe_policy(spec)
    elif run:
        policy = ", ".join(describe_queueing(spec))
    if spec.mark_succeeded:
        rows.append(
            (
                "To mark",
                Text.assemble(
                    (plural(run, "partition"), "bold"),
                    ": recorded as succeeded without running a Job (--mark-succeeded)",
                ),
            )
        )
    else:
        rows.append(
            (
                "To run",
                Text.assemble((plural(run, "partition"), "bold"), f", {policy}" if policy else ""),
            )
        )
    if steps is not None and all_steps is not None:
        for n, line in enumerate(describe_steps(spec, steps, all_steps)):
            rows.append(("Steps" if n == 0 else "", Text(line, style="" if n == 0 else "dim")))
    if preview.skipped:
        hint = {"Missing": "; --reprocess failed|all to run them", "Failed": "; --reprocess all"}
        if not reprocess_hint:
            hint = {}
        rows.append(
            (
                "Skipped",
                Text(
                    f"{len(preview.skipped)} with a recorded outcome"
                    + (" of every step" if steps is not None else "")
                    + f" (reprocess {spec.reprocess}{hint.get(str(spec.reprocess), '')})"
                ),
            )
        )
    head, tail = launch_sample(preview, spec.order)
    if head and not tail:
        rows.append(("Partitions", Text(", ".join(head))))
    elif head:
        rows.append(("First", Text(", ".join(head))))
        rows.append(("Last", Text(", ".join(tail))))
    rows.extend((label, Text(value)) for label, value in describe_parameters(spec))
    if name is not None:
        rows.append(("Backfill", Text(name + ("  (dry run)" if spec.dry_run else ""))))
    return kv(rows)
