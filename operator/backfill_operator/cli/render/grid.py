"""The partition grid of ``status`` (Dagster's Partitions tab in a terminal).

A Backfill's status keeps compact per-state sets of global partition indices;
:func:`grid_cells` maps them onto the positions (ranks) of its selection and buckets them
into at most ``rows x columns`` cells (a cell then stands for several partitions), and
:func:`render_grid` draws the cells in rows labelled with their first key, with a legend.
Sizes stay bounded whatever the selection: a million partitions cost a few thousand cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.text import Text

from ...planning.ranges import IndexSet
from .style import BOX, CELL_STATES, GLYPHS, STYLES

#: Rows of the partition grid at most; beyond rows x columns, a cell stands for several.
GRID_MAX_ROWS = 20
#: Columns of the partition grid at most.
GRID_MAX_COLUMNS = 100


#: The states the status keeps an index set of (every other selected partition is pending).
_SET_STATES = ("succeeded", "failed", "running", "queued", "skipped")


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

    Failed wins, then running, then queued (a Job Kueue holds suspended); a cell whose
    partitions are all done is succeeded (skipped when none of them ran); partly done is
    "partial"; nothing done is pending.
    """
    if counts["failed"]:
        return "failed"
    if counts["running"]:
        return "running"
    if counts["queued"]:
        return "queued"
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
    "failed", "running", "queued" and "skipped" to the status' index sets (missing keys:
    empty); every other selected partition is pending. Returns the cells in selection order
    and how many partitions one cell stands for (1 when the selection fits, else
    ``ceil(n / max_cells)``).
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
    lists "partial" only when a cell stands for several partitions and "queued" only when a
    cell is queued. ``names`` renames states in the legend (a PartitionedJob's grid calls
    pending "missing"); states in ``hidden`` are left out of it (states no cell can have).
    """
    rows: list[Text] = []
    labels = [key_at(cells[i].first) for i in range(0, len(cells), columns)]
    width = max((len(label) for label in labels), default=0)
    for label, start in zip(labels, range(0, len(cells), columns), strict=True):
        line = Text()
        line.append(label.ljust(width) + " ", style="dim")
        for cell in cells[start : start + columns]:
            line.append(BOX if color else GLYPHS[cell.state], style=STYLES[cell.state])
        rows.append(line)
    legend = Text()
    queued = any(cell.state == "queued" for cell in cells)
    shown = [
        s
        for s in CELL_STATES
        if (s != "partial" or size > 1) and (s != "queued" or queued) and s not in hidden
    ]
    for state in shown:
        if legend:
            legend.append("  ")
        legend.append(BOX if color else GLYPHS[state], style=STYLES[state])
        legend.append(f" {(names or {}).get(state, state)}")
    if size > 1:
        legend.append(f"  (one cell = {size} partitions)", style="dim")
    rows.append(legend)
    return Group(*rows)
