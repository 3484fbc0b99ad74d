"""Pure rendering for ``kubectl backfill``: no I/O, no clock (``now`` is passed in).

Modules, in import order:

* :mod:`.style`: state glyphs and colours, phase styles, label/value blocks;
* :mod:`.progress`: durations, ages, :class:`Progress` (counts, rate, ETA), the progress bar;
* :mod:`.grid`: the partition grid (:func:`grid_cells`, :func:`render_grid`; one block of rows
  per step for a job with steps: :func:`render_step_grid`);
* :mod:`.preview`: what ``create``/``plan`` show before acting (:func:`render_preview`);
* :mod:`.views`: the ``status`` view of a Backfill (:class:`StatusView`,
  :func:`render_status`, :func:`follow_line`, :func:`headline`, :func:`describe_waiting`);
* :mod:`.jobs`: the views of a PartitionedJob: ``status pj/NAME`` (:class:`JobStatusView`,
  :func:`render_job_status`, :func:`job_follow_line`, :func:`describe_runs`) and
  ``missing`` (:class:`MissingView`, :func:`render_missing`);
* :mod:`.tables`: kubectl-style tables (:func:`format_table`, :func:`list_rows`,
  :func:`plan_table_rows`);
* :mod:`.messages`: one-line messages (:func:`flag_message`, :func:`log_unavailable`).

The public names are re-exported here (``render.grid_cells(...)``). Backfill names live in
:mod:`backfill_operator.planning.naming`, timestamps in :mod:`backfill_operator.planning.times`;
the ``-o json|yaml`` documents in :mod:`backfill_operator.cli.documents`.
"""

from __future__ import annotations

from .grid import (
    GRID_MAX_COLUMNS,
    GRID_MAX_ROWS,
    Cell,
    grid_cells,
    grid_columns,
    positions,
    render_grid,
    render_step_grid,
    step_lines,
)
from .jobs import (
    BACKFILL_LIMIT,
    RANGE_LIMIT,
    BackfillSummary,
    JobStatusView,
    MissingView,
    backfill_summaries,
    coverage_text,
    describe_runs,
    job_follow_line,
    job_headline,
    live_lag_seconds,
    render_job_status,
    render_missing,
)
from .messages import flag_message, log_unavailable
from .preview import (
    PREVIEW_SAMPLE,
    describe_policy,
    describe_queueing,
    launch_sample,
    render_preview,
)
from .progress import (
    TERMINAL_PHASE_NAMES,
    Progress,
    format_age,
    format_duration,
    format_rate,
    format_span,
    progress_bar,
    progress_of,
)
from .style import BAR, BOX, CELL_STATES, GLYPHS, PHASE_STYLES, STYLES, kv, span
from .tables import format_table, list_rows, plan_table_rows
from .views import (
    DETAIL_LIMIT,
    UNSEEN_GRACE_SECONDS,
    GridData,
    StatusView,
    describe_waiting,
    failures_block,
    follow_line,
    headline,
    phase_of,
    render_status,
    running_block,
)

__all__ = [
    "BACKFILL_LIMIT",
    "BAR",
    "BOX",
    "CELL_STATES",
    "DETAIL_LIMIT",
    "GLYPHS",
    "GRID_MAX_COLUMNS",
    "GRID_MAX_ROWS",
    "PHASE_STYLES",
    "PREVIEW_SAMPLE",
    "RANGE_LIMIT",
    "STYLES",
    "TERMINAL_PHASE_NAMES",
    "UNSEEN_GRACE_SECONDS",
    "BackfillSummary",
    "Cell",
    "GridData",
    "JobStatusView",
    "MissingView",
    "Progress",
    "StatusView",
    "backfill_summaries",
    "coverage_text",
    "describe_policy",
    "describe_queueing",
    "describe_runs",
    "describe_waiting",
    "failures_block",
    "flag_message",
    "follow_line",
    "format_age",
    "format_duration",
    "format_rate",
    "format_span",
    "format_table",
    "grid_cells",
    "grid_columns",
    "headline",
    "job_follow_line",
    "job_headline",
    "kv",
    "launch_sample",
    "list_rows",
    "live_lag_seconds",
    "log_unavailable",
    "phase_of",
    "plan_table_rows",
    "positions",
    "progress_bar",
    "progress_of",
    "render_grid",
    "render_job_status",
    "render_missing",
    "render_preview",
    "render_status",
    "render_step_grid",
    "running_block",
    "span",
    "step_lines",
]
