"""The partition grid of ``status`` (Dagster's Partitions tab in a terminal).

A Backfill's status keeps compact per-state sets of global partition indices;
:func:`grid_cells` maps them onto the positions (ranks) of its selection and buckets them
into at most ``rows x columns`` cells (a cell then stands for several partitions), and
:func:`render_grid` draws the cells in rows labelled with their first key, with a legend.
For a job with steps, :func:`render_step_grid` draws one block of rows per step (Airflow's
grid view: steps down, partitions across), each labelled with the step's name.
Sizes stay bounded whatever the selection: a million partitions cost a few thousand cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.text import Text

from ...planning.ranges import IndexSet
from .style import BOX, CELL_STATES, GLYPHS, OPTIONAL_STATES, STYLES, state_word

#: Rows of the partition grid at most; beyond rows x columns, a cell stands for several.
GRID_MAX_ROWS = 20
#: Columns of the partition grid at most.
GRID_MAX_COLUMNS = 100


#: The states the status keeps an index set of (every other selected partition is pending).
_SET_STATES = ("succeeded", "failed", "running", "queued", "skipped", "upstream_failed", "marked")


@dataclass(frozen=True)
class Cell:
    """One square of the partition grid.

    ``first..last`` are selection positions (inclusive, 0-based ranks); ``state`` is the state
    it is drawn in, one of :data:`~.style.CELL_STATES`.
    """

    first: int
    last: int
    state: str


def positions(selection: IndexSet, members: IndexSet) -> IndexSet:
    """Return the positions (ranks, 0-based) in ``selection`` of the members of ``members``.

    Global partition indices outside the selection are ignored. O(intervals x log); for a
    selection of one interval (a range) O(log + intervals kept).
    """
    if selection.interval_count() == 1:
        lo, hi = selection.first(), selection.last()
        kept = members.clip(lo, hi)
        if lo == 0:
            return kept
        return IndexSet.from_intervals((a - lo, b - lo) for a, b in kept.intervals)
    common = selection.intersection(members)
    return IndexSet.from_intervals(
        (selection.rank(lo), selection.rank(hi)) for lo, hi in common.intervals
    )


def _cell_state(counts: Mapping[str, int], size: int) -> str:
    """State drawn for a cell of ``size`` partitions with these per-state ``counts``.

    Failed wins, then upstream failed, running, then queued (a Job Kueue holds suspended); a
    cell whose partitions are all done is succeeded (else marked when some were marked
    succeeded, else skipped: none of them ran); partly done is "partial"; nothing done is
    pending.
    """
    for state in ("failed", "upstream_failed", "running", "queued"):
        if counts.get(state):
            return state
    done = counts["succeeded"] + counts["skipped"] + counts.get("marked", 0)
    if done >= size:
        if counts["succeeded"]:
            return "succeeded"
        return "marked" if counts.get("marked") else "skipped"
    if done:
        return "partial"
    return "pending"


def grid_cells(
    selection: IndexSet, sets: Mapping[str, IndexSet], max_cells: int
) -> tuple[list[Cell], int]:
    """Map per-state sets of global indices onto at most ``max_cells`` grid cells.

    ``selection`` is the Backfill's selection (global indices); ``sets`` maps "succeeded",
    "failed", "running", "queued", "skipped", "upstream_failed" and "marked" to the status'
    index sets (missing keys: empty); every other selected partition is pending. Returns the
    cells in selection order and how many partitions one cell stands for (1 when the
    selection fits, else ``ceil(n / max_cells)``).
    """
    n = len(selection)
    if n == 0:
        return [], 1
    size = 1 if n <= max_cells else math.ceil(n / max(1, max_cells))
    pos = {state: positions(selection, sets.get(state, IndexSet())) for state in _SET_STATES}
    cells: list[Cell] = []
    for first in range(0, n, size):
        last = min(n, first + size) - 1
        if size == 1:
            counts = {state: int(first in members) for state, members in pos.items()}
        else:
            counts = {
                state: members.rank(last + 1) - members.rank(first)
                for state, members in pos.items()
            }
        cells.append(Cell(first, last, _cell_state(counts, last - first + 1)))
    return cells, size


def grid_columns(width: int, label_width: int) -> int:
    """Return the number of cells per grid row for a console ``width`` and row labels."""
    return max(8, min(GRID_MAX_COLUMNS, width - label_width - 1))


def _legend(
    cells: Iterable[Cell],
    size: int,
    *,
    color: bool,
    names: Mapping[str, str] | None,
    hidden: Collection[str],
) -> Text:
    """The grid's last line: a glyph and a name per state, then what one cell stands for.

    "partial" only when a cell stands for several partitions; the optional states (queued,
    upstream failed, marked) only when some cell has them; none of ``hidden``.
    """
    present = {cell.state for cell in cells}
    shown = [
        s
        for s in CELL_STATES
        if (s != "partial" or size > 1)
        and (s not in OPTIONAL_STATES or s in present)
        and s not in hidden
    ]
    legend = Text()
    for state in shown:
        if legend:
            legend.append("  ")
        legend.append(BOX if color else GLYPHS[state], style=STYLES[state])
        legend.append(f" {(names or {}).get(state, state_word(state))}")
    if size > 1:
        legend.append(f"  (one cell = {size} partitions)", style="dim")
    return legend


def _cells_text(cells: Iterable[Cell], *, color: bool) -> Text:
    line = Text()
    for cell in cells:
        line.append(BOX if color else GLYPHS[cell.state], style=STYLES[cell.state])
    return line


def render_grid(
    cells: Sequence[Cell],
    size: int,
    key_at: Callable[[int], str],
    columns: int,
    *,
    color: bool,
    names: Mapping[str, str] | None = None,
    hidden: Collection[str] = (),
) -> Group:
    """Draw cells in rows of ``columns``, each row labelled with its first partition's key.

    ``key_at(position)`` returns the key of the partition at a selection position. The last
    line is the legend (and, when ``size > 1``, how many partitions a cell stands for); it
    lists "partial" only when a cell stands for several partitions and "queued",
    "upstream failed" and "marked" only when a cell is in that state. ``names`` renames states
    in the legend (a PartitionedJob's grid calls pending "missing"); states in ``hidden`` are
    left out of it (states no cell can have).
    """
    return render_step_grid(
        [("", cells)], size, key_at, columns, color=color, names=names, hidden=hidden
    )


def step_lines(steps: int, rows: int = GRID_MAX_ROWS) -> int:
    """Rows of cells each step gets in a step grid: ``rows`` shared out, at least one."""
    return max(1, rows // max(1, steps))


def render_step_grid(
    steps: Sequence[tuple[str, Sequence[Cell]]],
    size: int,
    key_at: Callable[[int], str],
    columns: int,
    *,
    color: bool,
    names: Mapping[str, str] | None = None,
    hidden: Collection[str] = (),
) -> Group:
    """Draw one block of rows per step: the step's name, then its cells as in :func:`render_grid`.

    ``steps`` are (name, cells) in display order, every step's cells over the same selection
    with the same ``size`` (from :func:`grid_cells` with the same ``max_cells``). A step's
    first row carries its name; every row also its first partition's key. Shape (plain)::

        ingest    2024-03-08 #######
        validate  2024-03-08 ###X###
        publish   2024-03-08 ###u###
        # succeeded  X failed  u upstream failed  . pending  s skipped

    The legend is shared (as :func:`render_grid`'s, over every step's cells).
    """
    blocks: list[tuple[str, str, Sequence[Cell]]] = []
    for name, cells in steps:
        for n, start in enumerate(range(0, len(cells), columns)):
            row = cells[start : start + columns]
            blocks.append((name if n == 0 else "", key_at(row[0].first), row))
    name_width = max((len(name) for name, _ in steps), default=0)
    key_width = max((len(key) for _, key, _ in blocks), default=0)
    rows: list[Text] = []
    for name, key, row in blocks:
        line = Text()
        if name_width:  # one unnamed block: the plain grid of render_grid
            line.append(name.ljust(name_width) + "  ", style="bold")
        line.append(key.ljust(key_width) + " ", style="dim")
        line.append_text(_cells_text(row, color=color))
        rows.append(line)
    every = [cell for _, cells in steps for cell in cells]
    rows.append(_legend(every, size, color=color, names=names, hidden=hidden))
    return Group(*rows)
