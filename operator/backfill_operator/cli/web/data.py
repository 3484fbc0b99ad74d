"""What the partitions page draws, as JSON-ready dicts: pure functions, no I/O, no clock.

The browser draws a grid of partitions on a canvas (``static/grid.js``). It receives, per row
of the grid (the roll-up of a job, then one row per step; one row for a job without steps or
a Backfill), compact index sets (``"0-41,57,60-99"``, the same text form as the status'
``partitions``) in *positions*: 0 is the first partition drawn, ``count - 1`` the last. A
partition belongs to at most one set of its row; one in none is *missing* (no outcome, no
active Job, nothing waiting to run it). A grid of 1,000,000 partitions with 10,000 scattered
failures is about 200 KB of JSON, decoded by the browser in tens of milliseconds.

Positions are the ranks of global partition indices in the drawn set (:func:`to_positions`);
for a job's grid the drawn set is every complete partition (one interval), for a Backfill its
selection (a range, or a key list with gaps).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...planning.ranges import IndexSet
from ..coverage import Coverage

__all__ = [
    "GRID_STATES",
    "LABEL_TARGET",
    "GridRow",
    "grid_document",
    "label_keys",
    "rows_of_coverage",
    "rows_of_sets",
    "selection_of",
    "to_positions",
]

#: The states a grid cell can have besides missing, in the order the legend lists them.
#: ``waiting``: selected by an unfinished Backfill or taken on by the scheduled runs, with no
#: Job yet; ``queued``: its Job is held by Kueue; ``upstream_failed``, ``skipped`` and
#: ``marked`` are a Backfill's own final states.
GRID_STATES = (
    "succeeded",
    "failed",
    "running",
    "queued",
    "waiting",
    "upstream_failed",
    "skipped",
    "marked",
)

#: How many row labels (keys at the start of a drawn line) a grid document carries at most.
LABEL_TARGET = 2_000


@dataclass(frozen=True)
class GridRow:
    """One row of the grid: ``name`` ("" for the roll-up or a job without steps) and its sets.

    ``sets`` maps a name of :data:`GRID_STATES` to global indices; the sets are disjoint.
    """

    name: str
    sets: Mapping[str, IndexSet]


def to_positions(members: IndexSet, drawn: IndexSet) -> IndexSet:
    """Return the positions (ranks in ``drawn``) of ``members & drawn``.

    ``drawn`` is the ascending set of global indices the grid draws. O(intervals x log
    intervals): an interval of members inside ``drawn`` maps to consecutive positions.
    """
    inside = members.intersection(drawn)
    if not inside:
        return IndexSet()
    if drawn.interval_count() == 1:
        return inside.shift(-drawn.first())
    out: list[tuple[int, int]] = []
    for lo, hi in inside.intervals:
        # [lo, hi] lies in one interval of ``drawn``, or spans several: map each piece.
        for a, b in drawn.clip(lo, hi).intervals:
            start = drawn.rank(a)
            out.append((start, start + b - a))
    return IndexSet.from_intervals(out)


def selection_of(positions: IndexSet, drawn: IndexSet) -> IndexSet:
    """Return the global indices at ``positions`` of ``drawn`` (inverse of :func:`to_positions`).

    Positions outside ``0 .. len(drawn) - 1`` are dropped. O(intervals of both).
    """
    n = len(drawn)
    positions = positions.clip(0, n - 1) if n else IndexSet()
    if not positions:
        return IndexSet()
    if drawn.interval_count() == 1:
        return positions.shift(drawn.first())
    out: list[tuple[int, int]] = []
    for lo, hi in positions.intervals:
        p = lo
        while p <= hi:
            index = drawn.nth(p)
            # the interval of ``drawn`` holding ``index`` continues for ``room`` more members
            room = drawn.clip(index, drawn.last()).intervals[0][1] - index
            take = min(room, hi - p)
            out.append((index, index + take))
            p += take + 1
    return IndexSet.from_intervals(out)


def rows_of_coverage(
    coverage: Coverage,
    steps: Sequence[tuple[str, Coverage]],
    waiting: IndexSet,
) -> list[GridRow]:
    """Return the rows of a PartitionedJob's grid: the roll-up, then each step in order.

    ``coverage`` is the roll-up (:func:`~..coverage.coverage_of`), ``steps`` each step's;
    ``waiting`` the partitions an unfinished run will run (drawn as waiting where they are
    missing). For a job without steps (``steps`` empty) the one row is the job's.
    """
    rows = [GridRow("", _coverage_sets(coverage, waiting))]
    rows.extend(GridRow(name, _coverage_sets(cov, waiting)) for name, cov in steps)
    return rows


def _coverage_sets(coverage: Coverage, waiting: IndexSet) -> dict[str, IndexSet]:
    sets = dict(coverage.grid_sets())
    sets["waiting"] = waiting.intersection(coverage.missing)
    return sets


def rows_of_sets(
    rollup: Mapping[str, IndexSet], steps: Sequence[tuple[str, Mapping[str, IndexSet]]]
) -> list[GridRow]:
    """Return the rows of a Backfill's grid from its status sets (``render.grid_sets``).

    A Backfill's ``pending`` partitions are the ones in no set; they are drawn as waiting
    (the Backfill will run them) unless it has finished (then nothing is waiting), which the
    caller decides by passing ``rollup["waiting"]``.
    """
    rows = [GridRow("", rollup)]
    rows.extend(GridRow(name, sets) for name, sets in steps)
    return rows


def label_keys(key_at: Callable[[int], str], count: int, every: int) -> tuple[int, list[str]]:
    """Return (step, the keys at positions ``0, step, 2 * step, ...`` below ``count``).

    The browser labels each drawn line of ``every`` cells with the key it starts at. The step
    is ``every`` doubled until at most :data:`LABEL_TARGET` keys are returned (the browser then
    labels every k-th line). Raises ValueError for ``every < 1``.
    """
    if every < 1:
        raise ValueError("every must be at least 1")
    while (count + every - 1) // every > LABEL_TARGET:
        every *= 2
    return every, [key_at(p) for p in range(0, max(0, count), every)]


def grid_document(
    *,
    drawn: IndexSet,
    rows: Sequence[GridRow],
    key_at: Callable[[int], str],
    columns: int,
    note: str | None = None,
    time_based: bool = True,
    generated: datetime | None = None,
) -> dict[str, Any]:
    """Return the grid JSON document the browser draws.

    Shape: ``{"count": n, "offset": first global index or null, "contiguous": bool,
    "columns": c, "labelEvery": e, "labels": [key, ...], "first": key, "last": key,
    "timeBased": bool, "note": text or null, "generated": RFC 3339 or null,
    "rows": [{"name": step or "", "sets": {state: "0-4,9"}}]}``. Sets are in positions
    (:func:`to_positions`); ``labels[i]`` is the key at position ``i * labelEvery``; lines
    of ``columns`` cells. ``columns`` is the browser's choice (its canvas width in cells).
    """
    count = len(drawn)
    every, labels = label_keys(key_at, count, max(1, columns))
    out_rows = [
        {
            "name": row.name,
            "sets": {
                state: to_positions(row.sets[state], drawn).format()
                for state in GRID_STATES
                if row.sets.get(state)
            },
        }
        for row in rows
    ]
    return {
        "count": count,
        "offset": drawn.first() if count else None,
        "contiguous": drawn.interval_count() <= 1,
        "columns": columns,
        "labelEvery": every,
        "labels": labels,
        "first": key_at(0) if count else None,
        "last": key_at(count - 1) if count else None,
        "timeBased": time_based,
        "note": note,
        "generated": generated.isoformat() if generated is not None else None,
        "rows": out_rows,
    }
