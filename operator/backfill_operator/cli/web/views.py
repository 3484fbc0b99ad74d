"""What the pages show, as plain values: rows, page headers, the launch form, the preview.

Pure (no I/O, no clock): :mod:`.service` reads the cluster and builds these; the templates
and the JSON endpoints render them. :func:`parse_launch` checks the Launch modal's JSON body
(the ``create`` flags' limits); :func:`preview_document` is the modal's preview.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...api.model import MAX_CONCURRENCY, MAX_RETRIES, TERMINAL_PHASES, Order, Reprocess
from ...planning import naming
from ...planning.observed import JobState
from ...planning.ranges import IndexSet
from .. import render
from ..commands.submit import Planned
from ..errors import CliError
from . import data

__all__ = [
    "PREVIEW_KEYS",
    "TERMINAL",
    "BackfillPage",
    "BackfillRow",
    "JobPage",
    "JobRow",
    "LaunchForm",
    "backfill_row",
    "coverage_counts",
    "job_state",
    "parse_launch",
    "preview_document",
    "state_at",
]

#: Partitions a preview lists by key at most (first and last, skipped).
PREVIEW_KEYS = 5
#: Phase names of a finished Backfill.
TERMINAL = frozenset(str(p) for p in TERMINAL_PHASES)
#: Status count names that differ from the grid's state names.
_SNAKE = {"upstreamFailed": "upstream_failed"}


@dataclass(frozen=True)
class JobRow:
    """One PartitionedJob on the jobs page.

    ``counts`` maps a grid state (and ``missing``) to a partition count over its complete
    partitions; ``lag_seconds`` is the scheduled runs' lag (None without scheduled runs).
    """

    namespace: str
    name: str
    description: str
    headline: str
    total: int
    counts: Mapping[str, int]
    steps: tuple[str, ...]
    lag_seconds: int | None
    backfills: int
    active_backfills: int
    note: str | None = None


@dataclass(frozen=True)
class JobPage:
    """A job's partitions page header: the job's view without outcomes, and its schedule.

    ``view`` has no coverage (the grid brings the counts); ``total`` is its complete
    partitions; ``steps`` in launch order (empty without steps); ``lag_seconds`` None without
    scheduled runs.
    """

    view: render.JobStatusView
    headline: str
    total: int
    steps: tuple[str, ...]
    lag_seconds: int | None
    schedule: str | None


@dataclass(frozen=True)
class BackfillRow:
    """One Backfill on a Backfills list: phase, progress (done/total) and its job."""

    namespace: str
    name: str
    job: str
    phase: str
    done: int
    total: int
    counts: Mapping[str, int]
    created: str | None
    finished: bool
    suspended: bool


@dataclass(frozen=True)
class BackfillPage:
    """A Backfill's page: the ``status`` view, its progress (rate, ETA) and what it may do.

    ``headline`` is the Ready/Stalled message; ``can_*`` say which buttons apply.
    """

    view: render.StatusView
    progress: render.Progress
    headline: str
    phase: str
    suspended: bool
    finished: bool
    failed: int
    steps: tuple[tuple[str, Mapping[str, int]], ...]
    failures: tuple[Mapping[str, Any], ...]

    @property
    def can_suspend(self) -> bool:
        """Not finished and not suspended."""
        return not self.finished and not self.suspended

    @property
    def can_resume(self) -> bool:
        """Suspended and not finished."""
        return self.suspended and not self.finished

    @property
    def can_retry(self) -> bool:
        """Some partition failed (a step, or upstream)."""
        return self.failed > 0


@dataclass(frozen=True)
class LaunchForm:
    """What the Launch modal sends: the selected positions of the job's grid and options.

    ``positions`` is an index-set text over the grid's positions (``"0-9,12"``); the options
    are the ``create`` flags of the same names. Parsed from JSON by :func:`parse_launch`.
    """

    positions: IndexSet
    concurrency: int = 10
    order: Order = Order.OLDEST_FIRST
    reprocess: Reprocess = Reprocess.MISSING
    retries: int = 0
    retry_backoff_seconds: int = 10
    max_failed: int | None = None
    steps: list[str] | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    name: str | None = None
    dry_run: bool = False


def _int(raw: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int) -> int | None:
    value = raw.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CliError(f"{key} must be a whole number, not {str(value)[:40]!r}")
    try:
        number = int(value)
    except ValueError:
        raise CliError(f"{key} must be a whole number, not {str(value)[:40]!r}") from None
    if not lo <= number <= hi:
        raise CliError(f"{key} must be between {lo} and {hi}, not {number}")
    return number


def parse_launch(raw: Mapping[str, Any]) -> LaunchForm:
    """Return the :class:`LaunchForm` of the modal's JSON body; CliError with a plain reason.

    Keys: ``positions`` (index-set text, required), ``concurrency``, ``order``
    (``OldestFirst``/``NewestFirst``), ``reprocess`` (``Missing``/``Failed``/``All``),
    ``retries``, ``retryBackoffSeconds``, ``maxFailed`` (empty: none), ``steps`` (list; empty
    or absent: every step), ``includeUpstream``, ``includeDownstream``, ``name`` (empty: a
    generated one), ``dryRun``. Ranges follow the CRD's.
    """
    text = raw.get("positions")
    if not isinstance(text, str) or not text.strip():
        raise CliError("select at least one partition on the grid")
    try:
        positions = IndexSet.parse(text.strip())
    except ValueError as exc:
        raise CliError(f"the selection is not an index set: {exc}") from exc
    try:
        order = Order(str(raw.get("order") or Order.OLDEST_FIRST))
        reprocess = Reprocess(str(raw.get("reprocess") or Reprocess.MISSING))
    except ValueError as exc:
        raise CliError(f"invalid option: {exc}") from exc
    steps = raw.get("steps")
    if steps is not None and (
        not isinstance(steps, list) or not all(isinstance(s, str) for s in steps)
    ):
        raise CliError("steps must be a list of step names")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise CliError("name must be text")
    name = (name or "").strip() or None
    if name is not None:
        problem = naming.name_problem(name)
        if problem is not None:
            raise CliError(f"name: {problem}")
    concurrency = _int(raw, "concurrency", 10, 1, MAX_CONCURRENCY)
    retries = _int(raw, "retries", 0, 0, MAX_RETRIES)
    backoff = _int(raw, "retryBackoffSeconds", 10, 0, 86_400)
    assert concurrency is not None and retries is not None and backoff is not None
    return LaunchForm(
        positions=positions,
        concurrency=concurrency,
        order=order,
        reprocess=reprocess,
        retries=retries,
        retry_backoff_seconds=backoff,
        max_failed=_int(raw, "maxFailed", None, 0, 1_000_000),
        steps=list(steps) if steps else None,
        include_upstream=bool(raw.get("includeUpstream")) and bool(steps),
        include_downstream=bool(raw.get("includeDownstream")) and bool(steps),
        name=name,
        dry_run=bool(raw.get("dryRun")),
    )


def coverage_counts(view: render.JobStatusView) -> dict[str, int]:
    """Partitions per grid state of a job's roll-up, and ``missing``; {} without coverage."""
    cov = view.coverage
    if cov is None:
        return {}
    counts = {state: len(members) for state, members in cov.grid_sets().items()}
    counts["missing"] = len(cov.missing)
    return counts


def state_at(sets: Mapping[str, IndexSet], missing: IndexSet, index: int) -> str:
    """The state of partition ``index``: the name of the set holding it, ``missing``, ``none``.

    ``none``: outside the partitions looked at (not complete).
    """
    for state, members in sets.items():
        if index in members:
            return state
    return "missing" if index in missing else "none"


def job_state(state: JobState, suspended: bool) -> str:
    """A Job's state as the panel shows it: running, queued (suspended by Kueue), or its end."""
    if state is JobState.ACTIVE:
        return "queued" if suspended else "running"
    return str(state.name.lower())


def backfill_row(item: Mapping[str, Any]) -> BackfillRow:
    """The :class:`BackfillRow` of a raw Backfill (as ``list`` shows it; counts by state)."""
    meta = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    counts = {
        _SNAKE.get(k, k): int(v)
        for k, v in (status.get("counts") or {}).items()
        if isinstance(v, int) and not isinstance(v, bool)
    }
    phase = str(status.get("phase") or "Pending")
    finished = phase in TERMINAL
    suspended = spec.get("suspend") is True
    shown = "Suspended" if suspended and not finished else phase
    if spec.get("dryRun") is True:
        shown += " (dry run)"
    done = sum(
        counts.get(k, 0) for k in ("succeeded", "failed", "skipped", "upstream_failed", "marked")
    )
    return BackfillRow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        job=str((spec.get("jobRef") or {}).get("name") or ""),
        phase=shown,
        done=done,
        total=counts.get("total", 0),
        counts=counts,
        created=meta.get("creationTimestamp"),
        finished=finished,
        suspended=suspended,
    )


def preview_document(planned: Planned, note: str | None, complete: IndexSet) -> dict[str, Any]:
    """The Launch modal's preview of ``planned`` (``create``'s preview) as JSON.

    Shape: ``{"count", "selected", "first": [keys], "last": [keys] (empty when ``first``
    holds them all), "skipped": {"count", "keys"}, "steps", "allSteps", "spec",
    "description", "note", "positions"}``; ``note`` says when the selection was widened to a
    range; ``positions`` are the grid positions (of ``complete``) that would run.
    """
    preview = planned.preview
    sel = preview.selection
    first, last = render.launch_sample(preview, planned.spec.order, PREVIEW_KEYS)
    skipped = itertools.islice(iter(preview.skipped), PREVIEW_KEYS)
    return {
        "count": len(preview.to_run),
        "selected": len(sel),
        "first": first,
        "last": last,
        "skipped": {"count": len(preview.skipped), "keys": [sel.key(i) for i in skipped]},
        "steps": None if planned.steps is None else list(planned.steps),
        "allSteps": None if planned.all_steps is None else list(planned.all_steps),
        "spec": planned.spec.to_api(),
        "description": planned.description,
        "note": note,
        "positions": data.to_positions(preview.to_run, complete).format() if complete else "",
    }
