"""kubectl-style plain tables: ``list`` and ``plan`` (the default ``-o table``).

:func:`format_table` pads columns like ``kubectl get`` (upper-case headers, three spaces, no
trailing spaces); :func:`list_rows` gives the rows of ``list`` from raw Backfill objects,
:func:`plan_table_rows` those of ``plan`` from a preview, lazily.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ...api.model import Order
from ...planning.ledger import Preview
from ...planning.times import parse_time
from .progress import TERMINAL_PHASE_NAMES, format_age


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
    ``succeeded/total`` (``+N skipped`` appended), FAILED counts the partitions that failed or
    were not run because an upstream step did not succeed (``failed + upstreamFailed``), and
    AGE is since creation.
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
        if (spec.get("suspend") is True) and phase not in TERMINAL_PHASE_NAMES:
            phase = "Suspended"
        if spec.get("dryRun") is True:
            phase += " (dry run)"
        row = [
            str(meta.get("name", "")),
            str((spec.get("jobRef") or {}).get("name", "")),
            phase,
            status.get("progress") or f"{counts.get('succeeded', 0)}/{counts.get('total', 0)}",
            str(int(counts.get("failed", 0) or 0) + int(counts.get("upstreamFailed", 0) or 0)),
            str(counts.get("running", 0)),
            format_age((now - created).total_seconds()) if created else "",
        ]
        if all_namespaces:
            row.insert(0, str(meta.get("namespace", "")))
        rows.append(row)
    return headers, rows


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
