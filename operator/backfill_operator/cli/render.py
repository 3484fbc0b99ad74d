"""Pure rendering and parsing for ``kubectl backfill``: no I/O, no clock (``now`` is passed in).

What is here:

* Backfill names: :func:`default_name`, :func:`derived_name`, :func:`name_problem`;
* progress arithmetic: :class:`Progress` and :func:`progress_of` (counts, rate, ETA),
  :func:`format_duration`, :func:`format_age`;
* the partition grid (Dagster's Partitions tab in a terminal): :func:`grid_cells` maps the
  compact per-state index sets of a Backfill's status onto the positions of its selection,
  :func:`render_grid` draws them;
* whole views as rich renderables: :func:`render_preview`, :func:`render_status`;
* machine-readable documents: :func:`plan_document`, :func:`status_document`;
* kubectl-style plain tables: :func:`format_table`, :func:`list_rows`.

Colour is a parameter: with ``color=False`` (output not a terminal, or ``NO_COLOR``) every state
has its own ASCII glyph so that the grid and the bar stay readable in logs and in tests.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ..model import BackfillSpec, BackfillStatus, Order, Phase
from ..planner import Preview
from ..ranges import IndexSet

#: A Backfill's name becomes a label value on its Jobs: at most 63 characters.
MAX_NAME_LENGTH = 63
#: Keys shown at each end of a preview.
PREVIEW_SAMPLE = 5
#: Rows of the partition grid at most; beyond rows x columns, a cell stands for several.
GRID_MAX_ROWS = 20
#: Columns of the partition grid at most.
GRID_MAX_COLUMNS = 100
#: Running partitions and failures listed by ``status`` at most.
DETAIL_LIMIT = 8
#: Seconds without a status after which ``status`` suggests the operator is not running.
UNSEEN_GRACE_SECONDS = 30

STATES = ("succeeded", "failed", "running", "pending", "skipped")
#: Grid cell states: the partition states, plus "partial" for a multi-partition cell that is
#: partly done.
CELL_STATES = (*STATES, "partial")

GLYPHS: Mapping[str, str] = {
    "succeeded": "#",
    "failed": "X",
    "running": ">",
    "pending": ".",
    "skipped": "s",
    "partial": "+",
}
STYLES: Mapping[str, str] = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "pending": "bright_black",
    "skipped": "dark_green",
    "partial": "cyan",
}
PHASE_STYLES: Mapping[str, str] = {
    "Succeeded": "bold green",
    "Failed": "bold red",
    "Invalid": "bold red",
    "Running": "bold blue",
    "Suspended": "bold yellow",
    "Pending": "bold",
}
_BOX = "■"
_BAR = "━"

_NOT_DNS = re.compile(r"[^a-z0-9.-]+")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


# ------------------------------------------------------------------------------- names


def _slug(text: str, limit: int) -> str:
    """Lower-case ``text``, map runs of other characters to '-', cut at ``limit``, trim."""
    slug = _NOT_DNS.sub("-", text.lower()).strip("-.")
    return slug[: max(0, limit)].strip("-.")


def derived_name(base: str, suffix: str) -> str:
    """Return ``<base>-<suffix>`` cut to a valid Backfill name (at most 63 characters).

    ``base`` is slugged (lower case, DNS characters) and truncated so the suffix survives
    whole; ``suffix`` must already be DNS-safe (e.g. ``"retry-3f2a"``).
    """
    head = _slug(base, MAX_NAME_LENGTH - len(suffix) - 1)
    return f"{head}-{suffix}" if head else f"backfill-{suffix}"


def default_name(job: str, now: datetime, token: str) -> str:
    """Return the default Backfill name ``<job>-<YYYYMMDD>-<token>``.

    ``now`` gives the date (UTC), ``token`` (4 hex characters from the caller's random source)
    keeps two Backfills created the same day apart. Always a DNS-1123 name of at most 63
    characters, valid as a label value.
    """
    return derived_name(job, f"{now:%Y%m%d}-{token}")


def name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a Backfill, or None when it can.

    A Backfill name must be a DNS-1123 subdomain of at most 63 characters (it is copied into
    a label value on every Job).
    """
    if not name:
        return "a Backfill name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f'"{name}" is {len(name)} characters long; a Backfill name has at most 63'
    if not _SUBDOMAIN.fullmatch(name):
        return (
            f'"{name}" is not a valid Backfill name: use lower-case letters, digits, "-" and '
            '".", starting and ending with a letter or digit'
        )
    return None


def flag_message(message: str) -> str:
    """Return a planner message with the API's field names replaced by the CLI's flags.

    ``range.from`` becomes ``--from`` and ``range.to`` ``--to``: the user typed flags.
    """
    return message.replace("range.from", "--from").replace("range.to", "--to")


# ---------------------------------------------------------------------------- durations


def format_duration(seconds: float) -> str:
    """Return a short human duration: ``"12s"``, ``"4m 05s"``, ``"2h 03m"``, ``"3d 04h"``.

    Negative durations count as 0; fractions are rounded to whole seconds.
    """
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_age(seconds: float) -> str:
    """Return an age as kubectl prints it: ``"45s"``, ``"12m"``, ``"5h"``, ``"3d"``.

    Seconds below 2 minutes, minutes below 2 hours, hours below 2 days, then days.
    """
    total = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= 2 * size:
            return f"{total // size}{unit}"
    return f"{total}s"


def parse_time(text: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp as the apiserver writes it (``...Z``); None when unset."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Progress:
    """Counts of a Backfill's selection by state, with throughput and time to completion.

    ``rate_per_minute`` is finished partitions (succeeded + failed; skipped ones cost nothing)
    per minute since ``status.startTime``; ``eta_seconds`` is the time the remaining (pending
    + running) partitions take at that rate: 0 when nothing remains, None when unknown.
    """

    total: int
    succeeded: int
    failed: int
    running: int
    pending: int
    skipped: int
    elapsed_seconds: float | None
    rate_per_minute: float | None
    eta_seconds: float | None

    @property
    def done(self) -> int:
        """Partitions with a final state: succeeded, failed or skipped."""
        return self.succeeded + self.failed + self.skipped

    @property
    def fraction(self) -> float:
        """``done / total`` in ``[0, 1]`` (1 for an empty selection)."""
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


def progress_of(status: BackfillStatus, now: datetime) -> Progress:
    """Return the :class:`Progress` of a Backfill's ``status`` at ``now`` (aware UTC)."""
    c = status.counts
    start = parse_time(status.start_time)
    end = parse_time(status.completion_time) or now
    elapsed = (end - start).total_seconds() if start is not None else None
    finished = c.succeeded + c.failed
    rate = None
    if elapsed is not None and elapsed > 0 and finished > 0:
        rate = finished / elapsed * 60.0
    remaining = c.pending + c.running
    eta: float | None
    if status.phase in (Phase.SUCCEEDED, Phase.FAILED) or remaining == 0:
        eta = 0.0
    elif rate:
        eta = remaining / rate * 60.0
    else:
        eta = None
    return Progress(
        total=c.total,
        succeeded=c.succeeded,
        failed=c.failed,
        running=c.running,
        pending=c.pending,
        skipped=c.skipped,
        elapsed_seconds=elapsed,
        rate_per_minute=rate,
        eta_seconds=eta,
    )


def format_rate(rate_per_minute: float | None) -> str:
    """Return ``"12.5 partitions/min"`` (or per hour when slow); ``"-"`` when unknown."""
    if rate_per_minute is None:
        return "-"
    if rate_per_minute < 1:
        return f"{rate_per_minute * 60:.1f} partitions/h"
    return f"{rate_per_minute:.1f} partitions/min"


def _split(total_cells: int, counts: Sequence[int], total: int) -> list[int]:
    """Divide ``total_cells`` among ``counts`` (summing to at most ``total``).

    Cumulative rounding: segments add up exactly, and a non-zero count gets at least one
    cell while cells are left.
    """
    out: list[int] = []
    cum = 0
    drawn = 0
    for count in counts:
        cum += count
        edge = round(total_cells * cum / total) if total else 0
        if count and edge == drawn and drawn < total_cells:
            edge = drawn + 1
        edge = min(edge, total_cells)
        out.append(max(0, edge - drawn))
        drawn = max(drawn, edge)
    return out


def progress_bar(progress: Progress, width: int, *, color: bool) -> Text:
    """Return a bar ``width`` cells wide: done (succeeded and skipped), failed, running, rest.

    In colour: ``━`` segments green, red, yellow and grey. Without colour: ``[###X>>....]``
    (the brackets are part of ``width``).
    """
    p = progress
    inner = max(4, width - (0 if color else 2))
    parts = _split(inner, [p.succeeded + p.skipped, p.failed, p.running], p.total)
    rest = inner - sum(parts)
    text = Text()
    if not color:
        text.append("[")
    for state, cells in zip(("succeeded", "failed", "running"), parts, strict=True):
        text.append((_BAR if color else GLYPHS[state]) * cells, style=STYLES[state])
    text.append((_BAR if color else GLYPHS["pending"]) * rest, style=STYLES["pending"])
    if not color:
        text.append("]")
    return text


# --------------------------------------------------------------------------------- grid


@dataclass(frozen=True)
class Cell:
    """One square of the partition grid.

    ``first..last`` are selection positions (inclusive, 0-based ranks); ``state`` is the state
    it is drawn in, one of :data:`CELL_STATES`.
    """

    first: int
    last: int
    state: str


def positions(selection: IndexSet, members: IndexSet) -> IndexSet:
    """Return the positions (ranks, 0-based) in ``selection`` of the members of ``members``.

    Global partition indices outside the selection are ignored. O(intervals x log).
    """
    common = selection.intersection(members)
    return IndexSet.from_intervals(
        (selection.rank(lo), selection.rank(hi)) for lo, hi in common.intervals
    )


def _cell_state(counts: Mapping[str, int], size: int) -> str:
    """State drawn for a cell of ``size`` partitions with these per-state ``counts``.

    Failed wins, then running; a cell whose partitions are all done is succeeded (skipped
    when none of them ran); partly done is "partial"; nothing done is pending.
    """
    if counts["failed"]:
        return "failed"
    if counts["running"]:
        return "running"
    done = counts["succeeded"] + counts["skipped"]
    if done >= size:
        return "succeeded" if counts["succeeded"] else "skipped"
    if done:
        return "partial"
    return "pending"


def grid_cells(
    selection: IndexSet, sets: Mapping[str, IndexSet], max_cells: int
) -> tuple[list[Cell], int]:
    """Map per-state sets of global indices onto at most ``max_cells`` grid cells.

    ``selection`` is the Backfill's selection (global indices); ``sets`` maps "succeeded",
    "failed", "running" and "skipped" to the status' index sets (missing keys: empty); every
    other selected partition is pending. Returns the cells in selection order and how many
    partitions one cell stands for (1 when the selection fits, else ``ceil(n / max_cells)``).
    """
    n = len(selection)
    if n == 0:
        return [], 1
    size = 1 if n <= max_cells else math.ceil(n / max(1, max_cells))
    pos = {
        state: positions(selection, sets.get(state, IndexSet()))
        for state in ("succeeded", "failed", "running", "skipped")
    }
    cells: list[Cell] = []
    for first in range(0, n, size):
        last = min(n, first + size) - 1
        if size == 1:
            counts = {state: int(first in members) for state, members in pos.items()}
        else:
            counts = {state: len(members.clip(first, last)) for state, members in pos.items()}
        cells.append(Cell(first, last, _cell_state(counts, last - first + 1)))
    return cells, size


def grid_columns(width: int, label_width: int) -> int:
    """Return the number of cells per grid row for a console ``width`` and row labels."""
    return max(8, min(GRID_MAX_COLUMNS, width - label_width - 1))


def render_grid(
    cells: Sequence[Cell],
    size: int,
    key_at: Callable[[int], str],
    columns: int,
    *,
    color: bool,
) -> Group:
    """Draw cells in rows of ``columns``, each row labelled with its first partition's key.

    ``key_at(position)`` returns the key of the partition at a selection position. The last
    line is the legend (and, when ``size > 1``, how many partitions a cell stands for).
    """
    rows: list[Text] = []
    labels = [key_at(cells[i].first) for i in range(0, len(cells), columns)]
    width = max((len(label) for label in labels), default=0)
    for label, start in zip(labels, range(0, len(cells), columns), strict=True):
        line = Text()
        line.append(label.ljust(width) + " ", style="dim")
        for cell in cells[start : start + columns]:
            line.append(_BOX if color else GLYPHS[cell.state], style=STYLES[cell.state])
        rows.append(line)
    legend = Text()
    shown = [s for s in CELL_STATES if s != "partial" or size > 1]
    for state in shown:
        if legend:
            legend.append("  ")
        legend.append(_BOX if color else GLYPHS[state], style=STYLES[state])
        legend.append(f" {state}")
    if size > 1:
        legend.append(f"  (one cell = {size} partitions)", style="dim")
    rows.append(legend)
    return Group(*rows)


# ------------------------------------------------------------------------------ preview


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


def _span(first: str, last: str) -> str:
    """Return ``"first … last"``, or just the key when both are the same."""
    return first if first == last else f"{first} … {last}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe_policy(spec: BackfillSpec) -> str:
    """Return ``"oldest first, 10 at a time, 2 retries, stop after 5 failures"``."""
    order = "newest first" if spec.order is Order.NEWEST_FIRST else "oldest first"
    parts = [order, f"{spec.concurrency} at a time"]
    limit = spec.retries.limit
    if limit == 0:
        parts.append("no retries")
    else:
        retries = "1 retry" if limit == 1 else f"{limit} retries"
        parts.append(f"{retries} (backoff {spec.retries.backoff_seconds}s)")
    if spec.max_failed_partitions is not None:
        parts.append(f"stop after {_plural(spec.max_failed_partitions, 'failure')}")
    return ", ".join(parts)


def _kv(rows: Iterable[tuple[str, Text]]) -> Group:
    """Return ``label  value`` lines, labels bold and padded to the longest.

    No trailing spaces and no wrapping of its own: long values wrap where the terminal does.
    """
    materialised = list(rows)
    width = max((len(k) for k, _ in materialised), default=0)
    lines = []
    for key, value in materialised:
        line = Text()
        line.append(key.ljust(width) + "  ", style="bold")
        line.append_text(value)
        lines.append(line)
    return Group(*lines)


def render_preview(
    *,
    job: str,
    namespace: str,
    description: str,
    preview: Preview,
    spec: BackfillSpec,
    name: str | None,
) -> Group:
    """Return what ``create``/``plan`` show before acting: counts, the first and last keys.

    ``description`` is the partition space's (``daily schedule "0 0 * * *" in UTC``);
    ``name`` the Backfill to create, or None for ``plan``.
    """
    sel = preview.selection
    rows: list[tuple[str, Text]] = [
        ("PartitionedJob", Text(f"{namespace}/{job}: {description}")),
        (
            "Selected",
            Text(f"{_plural(len(sel), 'partition')}: {_span(sel.first_key, sel.last_key)}"),
        ),
    ]
    run = len(preview.to_run)
    rows.append(
        (
            "To run",
            Text.assemble(
                (_plural(run, "partition"), "bold"),
                f", {describe_policy(spec)}" if run and name is not None else "",
            ),
        )
    )
    if preview.skipped:
        hint = {"Missing": "; --reprocess failed|all to run them", "Failed": "; --reprocess all"}
        rows.append(
            (
                "Skipped",
                Text(
                    f"{len(preview.skipped)} with a recorded outcome (reprocess "
                    f"{spec.reprocess}{hint.get(str(spec.reprocess), '')})"
                ),
            )
        )
    head, tail = launch_sample(preview, spec.order)
    if head and not tail:
        rows.append(("Partitions", Text(", ".join(head))))
    elif head:
        rows.append(("First", Text(", ".join(head))))
        rows.append(("Last", Text(", ".join(tail))))
    if name is not None:
        rows.append(("Backfill", Text(name + ("  (dry run)" if spec.dry_run else ""))))
    return _kv(rows)


def plan_document(
    *, job: str, namespace: str, description: str, preview: Preview, spec: BackfillSpec
) -> dict[str, Any]:
    """Return the ``plan -o json|yaml`` document: every partition to run, in launch order.

    Shape: ``{"partitionedJob", "namespace", "description", "order", "selection": {"first",
    "last", "count"}, "count", "skipped": {"count", "partitions": [keys]}, "partitions":
    [{"index", "key", "start", "end"}]}``; ``start``/``end`` are RFC 3339 UTC, or null for
    static values.
    """
    sel = preview.selection
    items = []
    for index in preview.launch_order(spec.order):
        part = sel.partition(index)
        items.append(
            {
                "index": part.index,
                "key": part.key,
                "start": _rfc3339(part.start),
                "end": _rfc3339(part.end),
            }
        )
    return {
        "partitionedJob": job,
        "namespace": namespace,
        "description": description,
        "order": str(spec.order),
        "selection": {"first": sel.first_key, "last": sel.last_key, "count": len(sel)},
        "count": len(preview.to_run),
        "skipped": {
            "count": len(preview.skipped),
            "partitions": [sel.key(i) for i in preview.skipped],
        },
        "partitions": items,
    }


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_table_rows(preview: Preview, order: Order) -> Iterable[list[str]]:
    """Yield ``[#, KEY, START, END]`` per partition to run, in launch order (lazily).

    START and END are UTC (``2024-01-01 00:00``); empty for static values.
    """
    sel = preview.selection
    for n, index in enumerate(preview.launch_order(order), start=1):
        part = sel.partition(index)
        yield [
            str(n),
            part.key,
            part.start.strftime("%Y-%m-%d %H:%M") if part.start else "",
            part.end.strftime("%Y-%m-%d %H:%M") if part.end else "",
        ]


# ------------------------------------------------------------------------------- tables


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Return kubectl-style plain table lines: upper-case headers, columns padded, 3 spaces.

    Trailing spaces are stripped. Columns that are empty in every row are still shown.
    """
    materialised = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for row in materialised:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *materialised]:
        lines.append("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return lines


def list_rows(
    items: Sequence[Mapping[str, Any]], now: datetime, *, all_namespaces: bool
) -> tuple[list[str], list[list[str]]]:
    """Return headers and rows for ``list``: one row per Backfill object (raw API dicts).

    Columns: [NAMESPACE] NAME JOB PHASE PROGRESS FAILED RUNNING AGE, where PROGRESS is
    ``succeeded/total`` (``+N skipped`` appended) and AGE is since creation.
    """
    headers = ["NAME", "JOB", "PHASE", "PROGRESS", "FAILED", "RUNNING", "AGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    rows = []
    for item in items:
        meta = item.get("metadata") or {}
        spec = item.get("spec") or {}
        status = item.get("status") or {}
        counts = status.get("counts") or {}
        created = parse_time(meta.get("creationTimestamp"))
        phase = status.get("phase") or "Pending"
        if (spec.get("suspend") is True) and phase not in ("Succeeded", "Failed"):
            phase = "Suspended"
        if spec.get("dryRun") is True:
            phase += " (dry run)"
        row = [
            str(meta.get("name", "")),
            str((spec.get("jobRef") or {}).get("name", "")),
            phase,
            status.get("progress") or f"{counts.get('succeeded', 0)}/{counts.get('total', 0)}",
            str(counts.get("failed", 0)),
            str(counts.get("running", 0)),
            format_age((now - created).total_seconds()) if created else "",
        ]
        if all_namespaces:
            row.insert(0, str(meta.get("namespace", "")))
        rows.append(row)
    return headers, rows


# ------------------------------------------------------------------------------- status


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


def _grid_sets(status: BackfillStatus) -> dict[str, IndexSet]:
    sets = status.partitions
    return {
        "succeeded": IndexSet.parse(sets.succeeded),
        "failed": IndexSet.parse(sets.failed),
        "running": IndexSet.parse(sets.running),
        "skipped": IndexSet.parse(sets.skipped),
    }


def render_status(view: StatusView, now: datetime, width: int, *, color: bool) -> Group:
    """Return the ``status`` view: header, progress bar, counts, rate/ETA, grid, details.

    ``width`` is the console width in cells; ``color`` chooses coloured boxes or ASCII glyphs.
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
            ("Partitions", Text(f"{_plural(sel.count, 'partition')}: {_span(sel.first, sel.last)}"))
        )
    message = headline(view, now)
    rows.append(
        (
            "Phase",
            Text.assemble((phase, PHASE_STYLES.get(phase.split()[0], "bold")), f"  {message}"),
        )
    )
    if view.spec.suspend and phase not in ("Succeeded", "Failed", "Suspended"):
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
                        f"{_plural(plan.count, 'partition')} would run, {plan.skipped} "
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
        counts = Text()
        for state in STATES:
            if counts:
                counts.append(" · ")
            counts.append(f"{getattr(prog, state)} {state}", style=STYLES[state])
        rows.append(("Counts", counts))
        eta = "-" if prog.eta_seconds is None else format_duration(prog.eta_seconds)
        if phase == "Suspended":
            rows.append(("Rate", Text(f"{format_rate(prog.rate_per_minute)}, ETA - (suspended)")))
        elif phase in ("Succeeded", "Failed"):
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
    parts: list[RenderableType] = [_kv(rows)]

    if view.grid is not None and not view.spec.dry_run:
        label = (
            max(len(status.selection.first), len(status.selection.last)) if status.selection else 10
        )
        columns = grid_columns(width, label)
        cells, size = grid_cells(view.grid.indices, _grid_sets(status), GRID_MAX_ROWS * columns)
        parts.append(Text(""))
        parts.append(render_grid(cells, size, view.grid.key_at, columns, color=color))
    elif view.grid_note and not view.spec.dry_run:
        parts.append(Text(""))
        parts.append(Text(f"(no partition grid: {view.grid_note})", style="dim"))

    if status.running:
        parts.append(Text(""))
        parts.append(Text(f"Running ({len(status.running)})", style="bold"))
        for r in status.running[:DETAIL_LIMIT]:
            since = parse_time(r.start_time)
            took = f", {format_duration((now - since).total_seconds())}" if since else ""
            parts.append(Text(f"  {r.key}  attempt {r.attempt}{took}  job/{r.job}"))
        if len(status.running) > DETAIL_LIMIT:
            parts.append(Text(f"  … and {len(status.running) - DETAIL_LIMIT} more", style="dim"))
    if status.failures:
        limit = view.spec.retries.limit + 1
        parts.append(Text(""))
        parts.append(Text(f"Failures ({len(status.failures)})", style="bold red"))
        for f in status.failures[:DETAIL_LIMIT]:
            when = f"retry at {f.retry_at}" if f.retry_at else "failed for good"
            line = Text(f"  {f.key}  attempt {f.attempts}/{limit}, {when}")
            line.append(f"\n    job/{f.job}" + (f": {f.message}" if f.message else ""), style="dim")
            parts.append(line)
        if len(status.failures) > DETAIL_LIMIT:
            parts.append(Text(f"  … and {len(status.failures) - DETAIL_LIMIT} more", style="dim"))
    return Group(*parts)


def status_document(view: StatusView, now: datetime) -> dict[str, Any]:
    """Return the ``status -o json`` document.

    Shape: ``{"name", "namespace", "partitionedJob", "phase", "message", "suspended",
    "dryRun", "counts": {total, pending, running, succeeded, failed, skipped}, "progress":
    {"done", "total", "percent"}, "ratePerMinute", "etaSeconds", "startTime",
    "completionTime", "selection", "partitions" (compact global index sets by state),
    "running", "failures", "plan"}``.
    """
    status = view.status
    prog = progress_of(status, now)
    api = status.to_api()
    return {
        "name": view.name,
        "namespace": view.namespace,
        "partitionedJob": view.job,
        "phase": phase_of(view),
        "message": headline(view, now),
        "suspended": view.spec.suspend,
        "dryRun": view.spec.dry_run,
        "counts": status.counts.to_api(),
        "progress": {
            "done": prog.done,
            "total": prog.total,
            "percent": round(prog.fraction * 100, 1),
        },
        "ratePerMinute": None if prog.rate_per_minute is None else round(prog.rate_per_minute, 3),
        "etaSeconds": None if prog.eta_seconds is None else round(prog.eta_seconds, 1),
        "startTime": status.start_time,
        "completionTime": status.completion_time,
        "selection": api.get("selection"),
        "partitions": api.get("partitions", {}),
        "running": api.get("running", []),
        "failures": api.get("failures", []),
        "plan": api.get("plan"),
    }


def follow_line(view: StatusView, now: datetime) -> str:
    """Return one progress line for ``status -w`` when the output is not a terminal.

    Shape: ``HH:MM:SS Running 12/90 done: 10 succeeded, 2 failed, 5 running, 73 pending;
    ETA 3m 10s`` (skipped appear only when there are some).
    """
    if view.status.phase is None:
        return f"{now:%H:%M:%S} Pending: {headline(view, now)}"
    prog = progress_of(view.status, now)
    eta = "-" if prog.eta_seconds is None else format_duration(prog.eta_seconds)
    counts = ", ".join(f"{getattr(prog, s)} {s}" for s in STATES if s != "skipped" or prog.skipped)
    running = {r.index for r in view.status.running}
    retrying = sum(
        1 for f in view.status.failures if f.retry_at is not None and f.index not in running
    )
    if retrying:
        counts += f" ({retrying} waiting to retry)"
    return f"{now:%H:%M:%S} {phase_of(view)} {prog.done}/{prog.total} done: {counts}; ETA {eta}"


# --------------------------------------------------------------------------------- logs


def log_unavailable(*, key: str, pod: str, node: str | None, simulated: bool, detail: str) -> str:
    """Return the one-line message shown when a partition's log cannot be had.

    ``simulated`` is True for a pod on a KWOK node (no kubelet keeps container output);
    ``detail`` is what the apiserver said.
    """
    if simulated:
        return (
            f"no log available for partition {key}: pod {pod} ran on simulated node {node} "
            f"(KWOK runs no containers, so there is no output; the apiserver said: {detail})"
        )
    where = f" on node {node}" if node else ""
    return f"no log available for partition {key}: pod {pod}{where}: {detail}"
