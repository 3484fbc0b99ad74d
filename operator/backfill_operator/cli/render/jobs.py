"""The views of a PartitionedJob: ``status pj/NAME`` and ``missing``.

:class:`JobStatusView` is a PartitionedJob as ``status`` shows it: its partitions and whether
they are valid, its scheduled runs (``spec.runs`` and ``status.runs``: the schedule, what it
last took on, what comes due next, the lag, what it missed, its counts, running partitions and
failures), its Backfills, and a grid of every complete partition coloured by the ledger's
outcome and the active Jobs of any run (:class:`~..coverage.Coverage`). A job with steps
(``status.ledger.steps``) also has each step's coverage: a ``Steps`` row per step and a grid
with one block of rows per step (the roll-up grid with ``rollup``); its scheduled runs'
counts per step (``status.runs.steps``) follow theirs.
:func:`render_job_status` draws it, :func:`job_follow_line` as one line per change for
``status -w`` into a pipe, :func:`describe_runs` words the schedule's policy.

:class:`MissingView` is what ``missing`` found (:func:`render_missing`): the partitions looked
at, how many have an outcome or an active Job, the missing ones as ranges of consecutive keys,
and who would run some of them anyway (the schedule, unfinished Backfills).

Pure: ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ...api.model import (
    ConcurrencyPolicy,
    PartitionCounts,
    PartitionedJobSpec,
    PartitionedJobStatus,
    ScheduledRuns,
)
from ...planning.ranges import IndexSet
from ...planning.space import plural
from ...planning.times import parse_time
from ..coverage import Coverage, KeyRange, ScheduleShare
from .grid import (
    GRID_MAX_ROWS,
    Cell,
    grid_cells,
    grid_columns,
    render_grid,
    render_step_grid,
    step_lines,
)
from .progress import TERMINAL_PHASE_NAMES, format_age, format_duration, format_span
from .style import STYLES, kv, span, state_counts
from .tables import format_table
from .views import (
    UNSEEN_GRACE_SECONDS,
    GridData,
    describe_waiting,
    failures_block,
    running_block,
    step_counts_text,
)

#: Backfills listed by ``status`` of a PartitionedJob at most (the newest).
BACKFILL_LIMIT = 10
#: Ranges of missing partitions ``missing`` lists at most (``-o name|json`` give them all).
RANGE_LIMIT = 20
#: The job grid's legend: a partition without an outcome or Job is missing, not pending.
JOB_GRID_NAMES: Mapping[str, str] = {"pending": "missing"}
#: States no cell of the job grid has (the ledger records no skips).
JOB_GRID_HIDDEN = frozenset({"skipped"})


# ------------------------------------------------------------------------------ Backfills


@dataclass(frozen=True)
class BackfillSummary:
    """One Backfill of a PartitionedJob, as its ``status`` lists it.

    ``phase`` as ``list`` shows it (``Suspended`` while ``spec.suspend`` holds an unfinished
    one, `` (dry run)`` appended); ``progress`` is ``succeeded/total``; ``finished`` is True
    in a terminal phase.
    """

    name: str
    phase: str
    progress: str
    failed: int
    running: int
    created: str | None
    finished: bool


def backfill_summaries(items: Sequence[Mapping[str, Any]]) -> list[BackfillSummary]:
    """Return the summaries of raw Backfill objects, oldest first (by creationTimestamp)."""
    out: list[tuple[str, str, BackfillSummary]] = []
    for item in items:
        meta = item.get("metadata") or {}
        spec = item.get("spec") or {}
        status = item.get("status") or {}
        counts = status.get("counts") or {}
        phase = str(status.get("phase") or "Pending")
        finished = phase in TERMINAL_PHASE_NAMES
        if spec.get("suspend") is True and not finished:
            phase = "Suspended"
        if spec.get("dryRun") is True:
            phase += " (dry run)"
        created = meta.get("creationTimestamp")
        summary = BackfillSummary(
            name=str(meta.get("name", "")),
            phase=phase,
            progress=str(
                status.get("progress") or f"{counts.get('succeeded', 0)}/{counts.get('total', 0)}"
            ),
            failed=int(counts.get("failed", 0) or 0) + int(counts.get("upstreamFailed", 0) or 0),
            running=int(counts.get("running", 0) or 0),
            created=str(created) if created else None,
            finished=finished,
        )
        out.append((str(created or ""), summary.name, summary))
    out.sort(key=lambda row: (row[0], row[1]))
    return [row[2] for row in out]


# ------------------------------------------------------------------------------- the view


@dataclass(frozen=True)
class JobStatusView:
    """A PartitionedJob as ``status`` shows it.

    ``problem`` says why its partitions are invalid (spec unreadable, bad cron, ...; then
    ``description`` and ``coverage`` are None). ``coverage`` covers every complete partition
    (None when none is complete yet, or there are too many to draw: ``grid_note`` says
    why); ``first_key``/``last_key`` name the first and last of them. ``grid`` draws them.
    ``ledger_note`` says why no outcome is known (the ledger is of another numbering, or not
    written yet). ``backfills`` are the Backfills whose ``spec.jobRef`` is this job.
    ``steps`` is each step's coverage (name, coverage) in the steps' order, for a job with
    ``spec.steps`` (empty otherwise); ``coverage`` is then their roll-up (the ledger's
    top-level sets, and a partition runs when a Job of any of its steps is active).
    """

    name: str
    namespace: str
    spec: PartitionedJobSpec | None
    status: PartitionedJobStatus
    created: str | None = None
    deleting: bool = False
    generation: int | None = None
    description: str | None = None
    problem: str | None = None
    coverage: Coverage | None = None
    first_key: str | None = None
    last_key: str | None = None
    grid: GridData | None = None
    grid_note: str | None = None
    ledger_note: str | None = None
    backfills: tuple[BackfillSummary, ...] = field(default_factory=tuple)
    steps: tuple[tuple[str, Coverage], ...] = ()

    @property
    def runs(self) -> ScheduledRuns | None:
        """``spec.runs``, or None."""
        return None if self.spec is None else self.spec.runs


def job_headline(view: JobStatusView, now: datetime | None = None) -> str:
    """Return the job's state in a few words: ``Ready``, the Stalled message, or a placeholder.

    Before the operator's first status: "waiting for the operator", or, once the job is older
    than ``UNSEEN_GRACE_SECONDS``, a hint that the operator may not be running. A status of
    an older generation adds ``(status of generation N)``.
    """
    if view.problem is not None and view.spec is None:
        return f"invalid: {view.problem}"
    conds = {c.type: c for c in view.status.conditions}
    stalled = conds.get("Stalled")
    if stalled is not None and stalled.status == "True":
        return f"invalid: {stalled.message}" if stalled.message else "Stalled"
    if view.problem is not None:
        return f"invalid: {view.problem}"
    ready = conds.get("Ready")
    if ready is None:
        created = parse_time(view.created)
        if now is not None and created is not None:
            age = (now - created).total_seconds()
            if age > UNSEEN_GRACE_SECONDS:
                return f"no status {format_duration(age)} after creation: is the operator running?"
        return "waiting for the operator"
    text = "Ready" if ready.status == "True" else f"not ready: {ready.message or ready.reason}"
    observed = view.status.observed_generation
    if view.generation is not None and observed is not None and observed < view.generation:
        text += f" (status of generation {observed}; the operator has not seen the latest spec)"
    return text


def describe_runs(runs: ScheduledRuns) -> str:
    """Return the schedule's policy in one line.

    Shape: ``10m after each window closes; catch-up All within 7d (missed when over 5m
    late); 3 at a time (Allow); priority 100; 2 retries (backoff 10s); Kueue queue q``.
    ``Forbid`` reads ``one at a time, in order (Forbid)``.
    """
    parts: list[str] = []
    if runs.delay_seconds:
        parts.append(f"{format_span(runs.delay_seconds)} after each window closes")
    else:
        parts.append("as each window closes")
    catch = f"catch-up {runs.catch_up}"
    if runs.catch_up_window_seconds is not None:
        catch += f" within {format_span(runs.catch_up_window_seconds)}"
    catch += f" (missed when over {format_span(runs.starting_deadline_seconds)} late)"
    parts.append(catch)
    if runs.concurrency_policy is ConcurrencyPolicy.FORBID:
        parts.append("one at a time, in order (Forbid)")
    else:
        parts.append(f"{runs.concurrency} at a time (Allow)")
    parts.append(f"priority {runs.priority}")
    limit = runs.retries.limit
    if limit == 0:
        parts.append("no retries")
    else:
        retries = "1 retry" if limit == 1 else f"{limit} retries"
        parts.append(f"{retries} (backoff {runs.retries.backoff_seconds}s)")
    if runs.kueue is not None:
        kueue = f"Kueue queue {runs.kueue.queue_name}"
        if runs.kueue.priority_class:
            kueue += f" (priority class {runs.kueue.priority_class})"
        parts.append(kueue)
    return "; ".join(parts)


def _when(moment: datetime, now: datetime) -> str:
    """``2024-01-02 00:10:00 UTC (in 5m 00s)`` / ``(3m 00s ago)``."""
    delta = (moment - now).total_seconds()
    rel = f"in {format_duration(delta)}" if delta > 0 else f"{format_duration(-delta)} ago"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({rel})"


def live_lag_seconds(view: JobStatusView, now: datetime) -> int:
    """Seconds the scheduled runs are behind at ``now``: since ``status.runs.lagSince``.

    0 when nothing is outstanding; ``status.runs.lagSeconds`` when ``lagSince`` is unset or
    unreadable (it was computed when the status was written).
    """
    runs = view.status.runs
    if runs is None:
        return 0
    since = parse_time(runs.lag_since)
    if since is None:
        return max(0, runs.lag_seconds)
    return max(0, int((now - since).total_seconds()))


def counts_text(counts: PartitionCounts) -> Text:
    """``12 succeeded · 0 failed · 5 running · 73 pending · 0 skipped``.

    Queued, upstream failed and marked appear when some are.
    """
    return state_counts(lambda state: int(getattr(counts, state)))


def coverage_text(coverage: Coverage) -> Text:
    """``1000 succeeded · 3 failed · 2 running · 51 missing`` (queued when some)."""
    text = Text()
    values = [
        ("succeeded", len(coverage.succeeded.difference(coverage.active)), "succeeded"),
        ("failed", len(coverage.failed.difference(coverage.active)), "failed"),
        ("running", len(coverage.running), "running"),
        ("queued", len(coverage.queued), "queued"),
        ("missing", len(coverage.missing), "pending"),
    ]
    for word, value, style in values:
        if word == "queued" and not value:
            continue
        if text:
            text.append(" · ")
        text.append(f"{value} {word}", style=STYLES[style])
    return text


def _schedule_rows(view: JobStatusView, now: datetime) -> list[tuple[str, Text]]:
    runs = view.runs
    if runs is None:
        return [("Schedule", Text("no scheduled runs (spec.runs unset): only Backfills run it"))]
    rows: list[tuple[str, Text]] = [("Schedule", Text(describe_runs(runs)))]
    if runs.suspend:
        rows.append(
            (
                "",
                Text(
                    "spec.runs.suspend is set: no scheduled partition starts; windows closing "
                    "meanwhile are missed (catch-up decides on resume)",
                    style="yellow",
                ),
            )
        )
    rs = view.status.runs
    if rs is None:
        rows.append(("Scheduled", Text("no status of the scheduled runs yet", style="dim")))
        return rows
    if rs.message:
        rows.append(("Now", Text(rs.message)))
    last_time = parse_time(rs.last_schedule_time)
    if rs.last_scheduled:
        at = f" at {_when(last_time, now)}" if last_time else ""
        rows.append(("Last scheduled", Text(f"{rs.last_scheduled}{at}")))
    else:
        rows.append(("Last scheduled", Text("none yet")))
    due = parse_time(rs.next_run_time)
    if rs.next_partition:
        at = f", due {_when(due, now)}" if due else ""
        rows.append(("Next", Text(f"{rs.next_partition}{at}")))
    else:
        rows.append(("Next", Text("none: no window of the schedule closes any more")))
    lag = live_lag_seconds(view, now)
    since = parse_time(rs.lag_since)
    if lag or since is not None:
        text = Text(f"{format_duration(lag)} ({lag}s)", style="yellow" if lag else "")
        if since is not None:
            text.append(
                f": the oldest scheduled partition without a success ended "
                f"{since:%Y-%m-%d %H:%M:%S} UTC"
            )
        rows.append(("Lag", text))
    else:
        rows.append(("Lag", Text("none")))
    missed = rs.missed
    if missed.count:
        ends = span(missed.oldest or "?", missed.newest or "?")
        text = Text(f"{plural(missed.count, 'partition')}: {ends}", style="yellow")
        text.append(
            f" (not run by the schedule; fill them with: kubectl backfill missing {view.name} "
            f"-n {view.namespace} --create)",
            style="dim",
        )
        rows.append(("Missed", text))
    else:
        rows.append(("Missed", Text("none")))
    rows.append(("Scheduled runs", counts_text(rs.counts)))
    width = max((len(step.name) for step in rs.steps), default=0)
    for n, step in enumerate(rs.steps):
        line = Text(step.name.ljust(width) + "  ", style="bold")
        line.append_text(step_counts_text(step.counts))
        rows.append(("By step" if n == 0 else "", line))
    waiting = describe_waiting(rs.waiting)
    if waiting:
        rows.append(("Waiting", Text(waiting)))
    return rows


def _backfill_block(view: JobStatusView, now: datetime) -> list[RenderableType]:
    parts: list[RenderableType] = [Text("")]
    if not view.backfills:
        parts.append(Text("Backfills: none", style="bold"))
        return parts
    shown = view.backfills[-BACKFILL_LIMIT:]
    parts.append(Text(f"Backfills ({len(view.backfills)})", style="bold"))
    rows = []
    for b in shown:
        created = parse_time(b.created)
        age = format_age((now - created).total_seconds()) if created else ""
        rows.append([b.name, b.phase, b.progress, str(b.failed), str(b.running), age])
    table = format_table(["NAME", "PHASE", "PROGRESS", "FAILED", "RUNNING", "AGE"], rows)
    parts.extend(Text("  " + line) for line in table)
    hidden = len(view.backfills) - len(shown)
    if hidden:
        parts.append(
            Text(f"  … and {hidden} older (kubectl backfill list -n {view.namespace})", style="dim")
        )
    return parts


def _step_coverage_rows(steps: Sequence[tuple[str, Coverage]]) -> list[tuple[str, Text]]:
    """``Steps`` rows: each step's outcomes over the complete partitions."""
    width = max((len(name) for name, _ in steps), default=0)
    rows: list[tuple[str, Text]] = []
    for n, (name, cov) in enumerate(steps):
        line = Text(name.ljust(width) + "  ", style="bold")
        line.append_text(coverage_text(cov))
        rows.append(("Steps" if n == 0 else "", line))
    return rows


def _job_step_grid(
    view: JobStatusView, key_width: int, width: int, *, color: bool
) -> RenderableType:
    """The grid of a job with steps: one block of rows per step, over the complete partitions."""
    assert view.grid is not None
    name_width = max(len(name) for name, _ in view.steps)
    columns = grid_columns(width, name_width + 2 + key_width)
    per_step = step_lines(len(view.steps)) * columns
    rows: list[tuple[str, list[Cell]]] = []
    size = 1
    for name, cov in view.steps:
        cells, size = grid_cells(view.grid.indices, cov.grid_sets(), per_step)
        rows.append((name, cells))
    return render_step_grid(
        rows,
        size,
        view.grid.key_at,
        columns,
        color=color,
        names=JOB_GRID_NAMES,
        hidden=JOB_GRID_HIDDEN,
    )


def render_job_status(
    view: JobStatusView, now: datetime, width: int, *, color: bool, rollup: bool = False
) -> Group:
    """Return the ``status`` view of a PartitionedJob.

    Rows: the job, its partitions (or why they are invalid), its state, the complete
    partitions and their outcomes (then each step's, for a job with steps), then the
    schedule (when ``spec.runs`` is set); the Backfills of the job; the grid of complete
    partitions (one block of rows per step for a job with steps, unless ``rollup``); the
    scheduled runs' running partitions and failures. ``width`` is the console width;
    ``color`` boxes or glyphs.
    """
    name = f"{view.namespace}/{view.name}" + (" (deleting)" if view.deleting else "")
    rows: list[tuple[str, Text]] = [("PartitionedJob", Text(name))]
    if view.description is not None:
        rows.append(("Partitions", Text(view.description)))
    headline = job_headline(view, now)
    style = "bold green" if headline.startswith("Ready") else "bold"
    if headline.startswith("invalid"):
        style = "bold red"
    rows.append(("State", Text(headline, style=style)))
    cov = view.coverage
    if cov is not None and view.first_key is not None and view.last_key is not None:
        rows.append(
            (
                "Complete",
                Text(
                    f"{plural(len(cov.complete), 'partition')}: "
                    f"{span(view.first_key, view.last_key)}"
                ),
            )
        )
        rows.append(("Outcomes", coverage_text(cov)))
        rows.extend(_step_coverage_rows(view.steps))
    elif view.grid_note and view.problem is None:
        rows.append(("Complete", Text(view.grid_note, style="dim")))
    if view.ledger_note:
        rows.append(("", Text(view.ledger_note, style="yellow")))
    if view.problem is None or view.spec is not None:
        rows.extend(_schedule_rows(view, now))
    parts: list[RenderableType] = [kv(rows)]
    parts.extend(_backfill_block(view, now))
    if view.grid is not None and cov is not None and view.steps and not rollup:
        label = max(len(view.first_key or ""), len(view.last_key or ""), 10)
        parts.append(Text(""))
        parts.append(_job_step_grid(view, label, width, color=color))
    elif view.grid is not None and cov is not None:
        label = max(len(view.first_key or ""), len(view.last_key or ""), 10)
        columns = grid_columns(width, label)
        cells, size = grid_cells(view.grid.indices, cov.grid_sets(), GRID_MAX_ROWS * columns)
        parts.append(Text(""))
        parts.append(
            render_grid(
                cells,
                size,
                view.grid.key_at,
                columns,
                color=color,
                names=JOB_GRID_NAMES,
                hidden=JOB_GRID_HIDDEN,
            )
        )
    elif view.grid_note and view.problem is None and cov is not None:
        parts.append(Text(""))
        parts.append(Text(f"(no partition grid: {view.grid_note})", style="dim"))
    rs = view.status.runs
    runs = view.runs
    if rs is not None and runs is not None:
        parts.extend(running_block(rs.running, now, title="Scheduled runs: "))
        parts.extend(
            failures_block(
                rs.failures,
                runs.retries.limit + 1,
                title="Scheduled runs: ",
                omitted=rs.failures_omitted or 0,
            )
        )
    return Group(*parts)


def job_follow_line(view: JobStatusView, now: datetime) -> str:
    """Return one line for ``status -w`` of a PartitionedJob when the output is no terminal.

    Shape: ``HH:MM:SS 1000 succeeded, 3 failed, 2 running, 51 missing; schedule: up to date;
    next 2024-01-02 at ...`` (queued after running when some; the schedule part when
    ``status.runs`` is set, else the job's state).
    """
    head = f"{now:%H:%M:%S}"
    cov = view.coverage
    if cov is not None:
        parts = [
            f"{len(cov.succeeded.difference(cov.active))} succeeded",
            f"{len(cov.failed.difference(cov.active))} failed",
            f"{len(cov.running)} running",
        ]
        if cov.queued:
            parts.append(f"{len(cov.queued)} queued")
        parts.append(f"{len(cov.missing)} missing")
        head += " " + ", ".join(parts) + ";"
    rs = view.status.runs
    if rs is not None and rs.message:
        return f"{head} schedule: {rs.message}"
    return f"{head} {job_headline(view, now)}"


# -------------------------------------------------------------------------------- missing


@dataclass(frozen=True)
class MissingView:
    """What ``missing`` found for a PartitionedJob.

    ``coverage`` is over the partitions looked at (the complete ones, within ``--from`` and
    ``--to``; None when none is complete yet), ``first_key``/``last_key`` name the first and
    last of them; ``missing`` the partitions listed (with ``include_failed``: also the failed
    ones); ``ranges`` the first :data:`RANGE_LIMIT` runs of consecutive ones and
    ``range_count`` how many runs there are. ``share`` splits them by what the scheduled
    runs decided (None without scheduled runs); ``in_backfills`` names the unfinished
    Backfills selecting some of them, with how many. ``ledger_note`` as in
    :class:`JobStatusView`.
    """

    job: str
    namespace: str
    description: str
    coverage: Coverage | None
    first_key: str | None
    last_key: str | None
    missing: IndexSet
    include_failed: bool
    ranges: tuple[KeyRange, ...]
    range_count: int
    bounded: bool = False
    share: ScheduleShare | None = None
    in_backfills: tuple[tuple[str, int], ...] = ()
    ledger_note: str | None = None

    @property
    def failed_count(self) -> int:
        """How many listed partitions failed last (0 without ``include_failed``)."""
        if not self.include_failed or self.coverage is None:
            return 0
        return len(self.missing.intersection(self.coverage.failed))


def render_missing(view: MissingView) -> Group:
    """Return ``missing``'s report: what was looked at, the missing ranges, who runs some.

    Shape (plain)::

        PartitionedJob  ns/job: daily schedule "0 0 * * *" in UTC
        Complete        30 partitions: 2024-01-01 … 2024-01-30
        Outcomes        25 succeeded · 1 failed · 1 running · 3 missing
        Missing         3 partitions in 2 ranges (no outcome, no active Job)
                        2024-01-03 … 2024-01-04 (2)
                        2024-01-20 (1)

    then, when some apply, ``Of them`` rows: how many the schedule left, took on or has not
    decided on yet, and which unfinished Backfills select some. ``Looked at`` replaces
    ``Complete`` when ``--from``/``--to`` narrowed the partitions.
    """
    rows: list[tuple[str, Text]] = [
        ("PartitionedJob", Text(f"{view.namespace}/{view.job}: {view.description}"))
    ]
    cov = view.coverage
    if cov is None or view.first_key is None or view.last_key is None:
        rows.append(("Complete", Text("no partition is complete yet")))
        return kv(rows)
    looked = f"{plural(len(cov.complete), 'partition')}: {span(view.first_key, view.last_key)}"
    rows.append(("Looked at" if view.bounded else "Complete", Text(looked)))
    rows.append(("Outcomes", coverage_text(cov)))
    if view.ledger_note:
        rows.append(("", Text(view.ledger_note, style="yellow")))
    n = len(view.missing)
    what = "no outcome, no active Job"
    if view.include_failed:
        failed = view.failed_count
        what = f"{n - failed} without an outcome, {failed} failed; no active Job"
    if not n:
        none = "failed or missing" if view.include_failed else "missing"
        rows.append(("Missing", Text(f"none: no partition is {none}", style="green")))
        return kv(rows)
    rows.append(
        (
            "Missing",
            Text.assemble(
                (plural(n, "partition"), "bold"),
                f" in {plural(view.range_count, 'range')} ({what})",
            ),
        )
    )
    rows.extend(("", Text(str(r))) for r in view.ranges)
    more = view.range_count - len(view.ranges)
    if more > 0:
        rows.append(
            (
                "",
                Text(
                    f"… and {plural(more, 'more range')} (-o name lists every key, -o json "
                    "every range)",
                    style="dim",
                ),
            )
        )
    notes: list[str] = []
    share = view.share
    if share is not None:
        if share.left:
            notes.append(
                f"{share.left} missed by the schedule and left by its catch-up policy or window"
            )
        if share.taken:
            notes.append(f"{share.taken} taken on by the schedule (it runs them)")
        if share.undecided:
            notes.append(
                f"{share.undecided} not decided on by the schedule yet (not due, or it "
                "is suspended)"
            )
    if view.in_backfills:
        named = ", ".join(f"{name} ({count})" for name, count in view.in_backfills)
        notes.append(f"selected by unfinished Backfills: {named}")
    for i, note in enumerate(notes):
        rows.append(("Of them" if i == 0 else "", Text(note)))
    return kv(rows)
