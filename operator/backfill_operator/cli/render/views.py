"""The ``status`` view of one Backfill: header, progress, counts, rate and ETA, grid, details.

:class:`StatusView` is a Backfill as ``status`` shows it (its spec and status, plus what the
command resolved: the PartitionedJob's description and the selection the grid is drawn over);
:func:`render_status` draws it for a terminal, :func:`follow_line` as one line per change for
``status -w`` into a pipe. :func:`headline` is the one-sentence state (the Ready or Stalled
condition's message), :func:`describe_waiting` why pending partitions wait (the partition
lock, the job-wide limit). Queued partitions (Jobs Kueue holds suspended) and the waiting row
appear only when there are some, so a Backfill without either reads as before.

A Backfill of a PartitionedJob with steps (``status.steps``) gets a ``Steps`` row per step
(its counts) and a grid with one block of rows per step (:func:`step_grid_sets`); with
``rollup`` the grid is the partition roll-up of the top-level status, as for a job without
steps. Pure: ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.console import Group, RenderableType
from rich.text import Text

from ...api.model import (
    BackfillSpec,
    BackfillStatus,
    FailedPartition,
    PartitionCounts,
    PartitionSets,
    RunningPartition,
    StepStatus,
    Waiting,
)
from ...planning.ranges import IndexSet
from ...planning.retries import retries_waiting
from ...planning.space import plural
from ...planning.state import running_indices
from ...planning.times import parse_time
from .grid import (
    GRID_MAX_ROWS,
    Cell,
    grid_cells,
    grid_columns,
    render_grid,
    render_step_grid,
    step_lines,
)
from .progress import (
    TERMINAL_PHASE_NAMES,
    format_duration,
    format_rate,
    progress_bar,
    progress_of,
)
from .style import (
    OPTIONAL_STATES,
    PHASE_STYLES,
    STATE_ORDER,
    kv,
    span,
    state_counts,
    state_word,
)

#: Running partitions and failures listed by ``status`` at most.
DETAIL_LIMIT = 8
#: Seconds without a status after which ``status`` suggests the operator is not running.
UNSEEN_GRACE_SECONDS = 30


@dataclass(frozen=True)
class GridData:
    """What :func:`render_status` needs to draw the grid.

    ``indices`` are the selection's global indices; ``key_at(position)`` the key at a position.
    """

    indices: IndexSet
    key_at: Callable[[int], str]


@dataclass(frozen=True)
class StatusView:
    """A Backfill as ``status`` shows it.

    ``grid`` is None when the selection could not be resolved (``grid_note`` says why).
    ``description`` is the PartitionedJob's partition space, when known.
    """

    name: str
    namespace: str
    job: str
    spec: BackfillSpec
    status: BackfillStatus
    created: str | None = None
    deleting: bool = False
    description: str | None = None
    grid: GridData | None = None
    grid_note: str | None = None


def phase_of(view: StatusView) -> str:
    """Return the phase to show: status.phase, or ``Pending`` before the first reconcile."""
    return str(view.status.phase) if view.status.phase else "Pending"


def headline(view: StatusView, now: datetime | None = None) -> str:
    """Return the Ready (or, when stalled, Stalled) condition message, or a placeholder.

    Before the operator's first status: "waiting for the operator", or, once the Backfill is
    older than ``UNSEEN_GRACE_SECONDS`` at ``now``, a hint that the operator may not run.
    """
    conds = {c.type: c for c in view.status.conditions}
    stalled = conds.get("Stalled")
    if stalled is not None and stalled.status == "True" and stalled.message:
        return stalled.message
    ready = conds.get("Ready")
    if ready is not None and ready.message:
        return ready.message
    if view.status.phase is None:
        created = parse_time(view.created)
        if now is not None and created is not None:
            age = (now - created).total_seconds()
            if age > UNSEEN_GRACE_SECONDS:
                return f"no status {format_duration(age)} after creation: is the operator running?"
        return "waiting for the operator"
    return ""


def grid_sets(sets: PartitionSets) -> dict[str, IndexSet]:
    """Return the per-state index sets of a status' ``partitions`` (for :func:`grid_cells`)."""
    return {
        "succeeded": IndexSet.parse(sets.succeeded),
        "failed": IndexSet.parse(sets.failed),
        "running": IndexSet.parse(sets.running),
        "queued": IndexSet.parse(sets.queued),
        "skipped": IndexSet.parse(sets.skipped),
        "upstream_failed": IndexSet.parse(sets.upstream_failed),
        "marked": IndexSet.parse(sets.marked),
    }


def step_grid_sets(step: StepStatus, running: Sequence[RunningPartition]) -> dict[str, IndexSet]:
    """Return one step's per-state index sets: its ``partitions``, with its active Jobs.

    The ``running[]`` entries of the step (``step`` is its name) count as running (or queued
    while Kueue holds them) even when the step's sets were written before they started.
    """
    sets = grid_sets(step.partitions)
    mine = [r for r in running if r.step == step.name]
    if mine:
        queued = running_indices(r for r in mine if r.queued)
        active = running_indices(r for r in mine if not r.queued)
        sets["running"] = sets["running"].union(active).difference(queued)
        sets["queued"] = sets["queued"].union(queued)
        for state in ("succeeded", "failed", "skipped", "upstream_failed", "marked"):
            sets[state] = sets[state].difference(active).difference(queued)
    return sets


def step_counts_text(counts: PartitionCounts) -> Text:
    """One step's counts: ``5/7 done: 4 succeeded · 1 failed · 2 running`` (non-zero only)."""
    done = (
        counts.succeeded + counts.failed + counts.skipped + counts.upstream_failed + counts.marked
    )
    text = Text(f"{done}/{counts.total} done: ")
    text.append_text(state_counts(lambda state: int(getattr(counts, state)), compact=True))
    return text


def _step_rows(steps: Sequence[StepStatus]) -> list[tuple[str, Text]]:
    """``Steps`` rows: each step's name and counts, names padded to the longest."""
    width = max((len(s.name) for s in steps), default=0)
    rows: list[tuple[str, Text]] = []
    for n, step in enumerate(steps):
        line = Text(step.name.ljust(width) + "  ", style="bold")
        line.append_text(step_counts_text(step.counts))
        rows.append(("Steps" if n == 0 else "", line))
    return rows


def describe_waiting(waiting: Waiting | None) -> str:
    """Return the ``Waiting`` row of ``status``: why pending partitions wait; "" when none do.

    Shape: ``3 partitions wait on a lock: other-bf holds 3; 2 Jobs wait for a job-wide slot``
    (either part alone). Holders beyond those the status lists are summed as ``others``.
    """
    if waiting is None:
        return ""
    parts: list[str] = []
    if waiting.on_lock:
        verb = "waits" if waiting.on_lock == 1 else "wait"
        text = f"{plural(waiting.on_lock, 'partition')} {verb} on a lock"
        held = [f"{h.backfill} holds {h.count}" for h in waiting.holders]
        rest = waiting.on_lock - sum(h.count for h in waiting.holders)
        if held and rest > 0:
            held.append(f"others hold {rest}")
        if held:
            text += ": " + ", ".join(held)
        parts.append(text)
    if waiting.for_job_slot:
        verb = "waits" if waiting.for_job_slot == 1 else "wait"
        parts.append(f"{plural(waiting.for_job_slot, 'Job')} {verb} for a job-wide slot")
    return "; ".join(parts)


def render_status(
    view: StatusView, now: datetime, width: int, *, color: bool, rollup: bool = False
) -> Group:
    """Return the ``status`` view: header, progress bar, counts, rate/ETA, grid, details.

    ``width`` is the console width in cells; ``color`` chooses coloured boxes or ASCII glyphs.
    A Backfill with ``status.steps`` also gets a ``Steps`` row per step and its grid has one
    block of rows per step, unless ``rollup``: then the grid is the partitions' roll-up.
    """
    status = view.status
    prog = progress_of(status, now)
    phase = phase_of(view)
    if view.deleting:
        phase += " (deleting)"
    rows: list[tuple[str, Text]] = [
        ("Backfill", Text(f"{view.namespace}/{view.name}")),
        (
            "PartitionedJob",
            Text(view.job + (f": {view.description}" if view.description else "")),
        ),
    ]
    if status.selection is not None:
        sel = status.selection
        rows.append(
            ("Partitions", Text(f"{plural(sel.count, 'partition')}: {span(sel.first, sel.last)}"))
        )
    message = headline(view, now)
    rows.append(
        (
            "Phase",
            Text.assemble((phase, PHASE_STYLES.get(phase.split()[0], "bold")), f"  {message}"),
        )
    )
    if view.spec.suspend and phase not in TERMINAL_PHASE_NAMES and phase != "Suspended":
        rows.append(("", Text("spec.suspend is set: nothing new is launched", style="yellow")))
    plan = status.plan
    if view.spec.dry_run:
        if plan is not None:
            sample = ", ".join(plan.first)
            if plan.last:
                sample += " … " + ", ".join(plan.last)
            rows.append(
                (
                    "Dry run",
                    Text(
                        f"{plural(plan.count, 'partition')} would run, {plan.skipped} "
                        f"skipped: {sample}"
                    ),
                )
            )
        else:
            rows.append(("Dry run", Text("plan not computed yet")))
    else:
        bar = progress_bar(prog, min(60, max(20, width - 40)), color=color)
        bar.append(f"  {prog.done}/{prog.total}  {prog.fraction:.0%}")
        rows.append(("Progress", bar))
        rows.append(("Counts", state_counts(prog.count)))
        rows.extend(_step_rows(status.steps))
        waiting = describe_waiting(status.waiting)
        if waiting:
            rows.append(("Waiting", Text(waiting)))
        eta = "-" if prog.eta_seconds is None else format_duration(prog.eta_seconds)
        if phase == "Suspended":
            rows.append(("Rate", Text(f"{format_rate(prog.rate_per_minute)}, ETA - (suspended)")))
        elif phase in TERMINAL_PHASE_NAMES:
            took = format_duration(prog.elapsed_seconds or 0)
            rows.append(("Rate", Text(f"{format_rate(prog.rate_per_minute)}, took {took}")))
        else:
            rows.append(("Rate", Text(f"{format_rate(prog.rate_per_minute)}, ETA {eta}")))
    started = parse_time(status.start_time)
    if started is not None:
        ago = format_duration((now - started).total_seconds())
        rows.append(("Started", Text(f"{started:%Y-%m-%d %H:%M:%S} UTC ({ago} ago)")))
    finished = parse_time(status.completion_time)
    if finished is not None:
        rows.append(("Finished", Text(f"{finished:%Y-%m-%d %H:%M:%S} UTC")))
    parts: list[RenderableType] = [kv(rows)]

    if view.grid is not None and not view.spec.dry_run:
        label = (
            max(len(status.selection.first), len(status.selection.last)) if status.selection else 10
        )
        parts.append(Text(""))
        if status.steps and not rollup:
            parts.append(_step_grid(view, status.steps, label, width, color=color))
        else:
            columns = grid_columns(width, label)
            sets = grid_sets(status.partitions)
            cells, size = grid_cells(view.grid.indices, sets, GRID_MAX_ROWS * columns)
            parts.append(render_grid(cells, size, view.grid.key_at, columns, color=color))
    elif view.grid_note and not view.spec.dry_run:
        parts.append(Text(""))
        parts.append(Text(f"(no partition grid: {view.grid_note})", style="dim"))

    parts.extend(running_block(status.running, now))
    parts.extend(
        failures_block(
            status.failures, view.spec.retries.limit + 1, omitted=status.failures_omitted or 0
        )
    )
    return Group(*parts)


def _step_grid(
    view: StatusView, steps: Sequence[StepStatus], key_width: int, width: int, *, color: bool
) -> Group:
    """The grid of a Backfill with steps: one block of rows per step of ``status.steps``."""
    assert view.grid is not None
    name_width = max(len(s.name) for s in steps)
    columns = grid_columns(width, name_width + 2 + key_width)
    per_step = step_lines(len(steps)) * columns
    rows: list[tuple[str, list[Cell]]] = []
    size = 1
    for step in steps:
        sets = step_grid_sets(step, view.status.running)
        cells, size = grid_cells(view.grid.indices, sets, per_step)
        rows.append((step.name, cells))
    return render_step_grid(rows, size, view.grid.key_at, columns, color=color)


def _step_part(step: str | None) -> str:
    """``  validate`` after a partition's key when the entry names a step, else nothing."""
    return f"  {step}" if step else ""


def running_block(
    running: Sequence[RunningPartition], now: datetime, *, title: str = ""
) -> list[RenderableType]:
    """Return the lines listing active Jobs (at most ``DETAIL_LIMIT``); none when empty.

    A blank line, the title (``Running (3) and queued (2)``, ``Queued (2)`` when none runs
    yet; prefixed by ``title``, e.g. ``Scheduled runs: ``), then ``  KEY  attempt N, 12s
    job/NAME`` per Job (``queued`` instead of a duration while Kueue holds it; the step after
    the key for a job with steps: ``  KEY  STEP  attempt N, ...``; a Job of several
    partitions shows ``FIRST .. LAST (N partitions)`` as its key).
    """
    if not running:
        return []
    n_queued = sum(1 for r in running if r.queued)
    n_running = len(running) - n_queued
    heading = f"Running ({n_running})"
    if n_queued:
        heading = f"{heading} and queued ({n_queued})" if n_running else f"Queued ({n_queued})"
    if title:
        heading = title + heading[0].lower() + heading[1:]
    lines: list[RenderableType] = [Text(""), Text(heading, style="bold")]
    for r in running[:DETAIL_LIMIT]:
        since = parse_time(r.start_time)
        if r.queued:
            took = ", queued"
        else:
            took = f", {format_duration((now - since).total_seconds())}" if since else ""
        keys = f"{r.key} .. {r.last_key} ({r.count} partitions)" if r.count else r.key
        lines.append(Text(f"  {keys}{_step_part(r.step)}  attempt {r.attempt}{took}  job/{r.job}"))
    if len(running) > DETAIL_LIMIT:
        lines.append(Text(f"  … and {len(running) - DETAIL_LIMIT} more", style="dim"))
    return lines


def failures_block(
    failures: Sequence[FailedPartition], attempts: int, *, title: str = "", omitted: int = 0
) -> list[RenderableType]:
    """Return the lines listing failed partitions (at most ``DETAIL_LIMIT``); none when empty.

    ``attempts`` is the retry limit plus one; ``omitted`` the failures the status counts but
    does not list (``failuresOmitted``). A blank line, the title (``Failures (2)``, the
    listed and omitted ones, prefixed by ``title``), then per partition ``  KEY  attempt 2/3,
    retry at T`` (or ``failed for good``; the step after the key for a job with steps) and
    the Job with its failure message, then ``… and N more``.
    """
    if not failures and not omitted:
        return []
    total = len(failures) + omitted
    heading = f"Failures ({total})"
    if title:
        heading = title + heading[0].lower() + heading[1:]
    lines: list[RenderableType] = [Text(""), Text(heading, style="bold red")]
    for f in failures[:DETAIL_LIMIT]:
        when = f"retry at {f.retry_at}" if f.retry_at else "failed for good"
        line = Text(f"  {f.key}{_step_part(f.step)}  attempt {f.attempts}/{attempts}, {when}")
        line.append(f"\n    job/{f.job}" + (f": {f.message}" if f.message else ""), style="dim")
        lines.append(line)
    shown = min(len(failures), DETAIL_LIMIT)
    if total > shown:
        more = f"  … and {total - shown} more" if shown else "  (none listed with details)"
        lines.append(Text(more, style="dim"))
    return lines


def follow_line(view: StatusView, now: datetime) -> str:
    """Return one progress line for ``status -w`` when the output is not a terminal.

    Shape: ``HH:MM:SS Running 12/90 done: 10 succeeded, 2 failed, 5 running, 73 pending;
    ETA 3m 10s`` (upstream failed after failed, queued after running, skipped and marked
    appear only when there are some; then ``(N waiting to retry)`` when failed partitions
    wait for a retry, as :func:`~backfill_operator.planning.retries.retries_waiting` counts
    them). For a job with steps the counts are the partitions' roll-up.
    """
    if view.status.phase is None:
        return f"{now:%H:%M:%S} Pending: {headline(view, now)}"
    prog = progress_of(view.status, now)
    eta = "-" if prog.eta_seconds is None else format_duration(prog.eta_seconds)
    counts = ", ".join(
        f"{prog.count(s)} {state_word(s)}"
        for s in STATE_ORDER
        if prog.count(s) or (s not in OPTIONAL_STATES and s != "skipped")
    )
    retrying = retries_waiting(view.status)
    if retrying:
        counts += f" ({retrying} waiting to retry)"
    return f"{now:%H:%M:%S} {phase_of(view)} {prog.done}/{prog.total} done: {counts}; ETA {eta}"
