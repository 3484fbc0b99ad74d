"""kubectl backfill, pure parts: names, progress and ETA, the partition grid, previews, tables,
command-line errors that never need a cluster (exit 2 / 3), and the commands against a fake
API (retry-failed, status of a PartitionedJob, missing)."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console, RenderableType
from rich.text import Text

from backfill_operator import clock
from backfill_operator.api.model import (
    BackfillSpec,
    BackfillStatus,
    Order,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    Reprocess,
    RetryGroup,
    ScheduledRuns,
    ScheduleStatus,
    Waiting,
)
from backfill_operator.cli import app, coverage, documents, render
from backfill_operator.cli.client import Target
from backfill_operator.cli.commands import job_status, manage, specs
from backfill_operator.cli.commands import missing as missing_command
from backfill_operator.cli.commands.session import Session
from backfill_operator.cli.errors import CliError
from backfill_operator.cli.render.views import grid_sets
from backfill_operator.planning import ledger, naming
from backfill_operator.planning.observed import observe_job
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.selection import build_space
from backfill_operator.planning.verdict import PartitionedJobView, judge, new_backfill

NOW = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
DNS = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
TEMPLATE: dict[str, Any] = {
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
}


def text_of(renderable: RenderableType, width: int = 100) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False, soft_wrap=True).print(
        renderable
    )
    return buffer.getvalue()


def daily_job() -> PartitionedJobSpec:
    return PartitionedJobSpec.model_validate(
        {
            "partitions": {"schedule": {"cron": "0 0 * * *", "start": "2024-01-01"}},
            "jobTemplate": TEMPLATE,
        }
    )


def backfill_spec(**kw: Any) -> BackfillSpec:
    base: dict[str, Any] = {"jobRef": {"name": "sales"}, "range": {"from": "2024-01-01"}}
    base.update(kw)
    return BackfillSpec.model_validate(base)


def preview_of(
    job: PartitionedJobSpec, job_status: PartitionedJobStatus, spec: BackfillSpec, now: datetime
) -> ledger.Preview:
    """What a new Backfill with ``spec`` would run: the operator's verdict, then its preview."""
    verdict = judge(new_backfill("ns", spec), PartitionedJobView("sales", job, job_status), now)
    return ledger.preview(verdict)


# ---------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("sales-pipeline", "sales-pipeline-20241101-3f2a"),
        ("Sales_Pipeline", "sales-pipeline-20241101-3f2a"),
        ("x" * 80, "x" * 49 + "-20241101-3f2a"),
        ("---", "backfill-20241101-3f2a"),
        ("a.b", "a.b-20241101-3f2a"),
    ],
)
def test_default_name(job: str, expected: str) -> None:
    name = naming.default_name(job, NOW, "3f2a")
    assert name == expected
    assert len(name) <= 63
    assert DNS.fullmatch(name)
    assert naming.name_problem(name) is None


@given(st.text(min_size=0, max_size=300), st.text("0123456789abcdef", min_size=4, max_size=4))
def test_default_name_is_always_a_valid_name(job: str, token: str) -> None:
    name = naming.default_name(job, NOW, token)
    assert naming.name_problem(name) is None
    assert name.endswith(f"-20241101-{token}")


def test_derived_name_keeps_the_suffix() -> None:
    name = naming.derived_name("a" * 70, "retry-00ff")
    assert name.endswith("-retry-00ff") and len(name) == 63


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ok-name", None),
        ("a", None),
        ("", "cannot be empty"),
        ("Upper", "not a valid Backfill name"),
        ("-lead", "not a valid Backfill name"),
        ("trail-", "not a valid Backfill name"),
        ("under_score", "not a valid Backfill name"),
        ("x" * 64, None),  # any legal object name (the Jobs' labels hash long ones)
        ("x" * 253, None),
        ("x" * 254, "at most 253"),
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    found = naming.name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_flag_message_names_the_flags() -> None:
    assert render.flag_message('range.from "x" is after range.to "y"') == (
        '--from "x" is after --to "y"'
    )


# ------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0s"),
        (0.4, "0s"),
        (12, "12s"),
        (59.6, "1m 00s"),
        (245, "4m 05s"),
        (7380, "2h 03m"),
        (3 * 86400 + 4 * 3600, "3d 04h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert render.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (119, "119s"), (120, "2m"), (7199, "119m"), (7200, "2h"), (3 * 86400, "3d")],
)
def test_format_age(seconds: float, text: str) -> None:
    assert render.format_age(seconds) == text


# ------------------------------------------------------------------------------- progress


def status_of(**kw: Any) -> BackfillStatus:
    return BackfillStatus.model_validate(kw)


def test_progress_rate_and_eta() -> None:
    status = status_of(
        phase="Running",
        counts={"total": 100, "succeeded": 18, "failed": 2, "running": 10, "pending": 70},
        startTime="2024-11-01T11:58:00Z",
    )
    p = render.progress_of(status, NOW)
    assert p.elapsed_seconds == 120
    assert p.rate_per_minute == pytest.approx(10.0)  # 20 finished in 2 minutes
    assert p.eta_seconds == pytest.approx(8 * 60)  # 80 remaining at 10/min
    assert p.done == 20 and p.fraction == pytest.approx(0.2)


def test_progress_unknown_rate_before_anything_finished() -> None:
    status = status_of(
        phase="Running", counts={"total": 5, "running": 5}, startTime="2024-11-01T11:59:50Z"
    )
    p = render.progress_of(status, NOW)
    assert p.rate_per_minute is None and p.eta_seconds is None


def test_progress_finished_uses_completion_time() -> None:
    status = status_of(
        phase="Failed",
        counts={"total": 4, "succeeded": 3, "failed": 1},
        startTime="2024-11-01T11:00:00Z",
        completionTime="2024-11-01T11:02:00Z",
    )
    p = render.progress_of(status, NOW)
    assert p.elapsed_seconds == 120 and p.eta_seconds == 0
    assert p.rate_per_minute == pytest.approx(2.0)


def test_skipped_count_as_done_but_not_in_the_rate() -> None:
    status = status_of(
        phase="Running",
        counts={"total": 10, "succeeded": 1, "skipped": 5, "pending": 4},
        startTime="2024-11-01T11:59:00Z",
    )
    p = render.progress_of(status, NOW)
    assert p.done == 6 and p.rate_per_minute == pytest.approx(1.0)
    assert p.eta_seconds == pytest.approx(4 * 60)


def test_format_rate() -> None:
    assert render.format_rate(None) == "-"
    assert render.format_rate(12.34) == "12.3 partitions/min"
    assert render.format_rate(0.5) == "30.0 partitions/h"


@pytest.mark.parametrize(
    ("counts", "width", "expected"),
    [
        ({"total": 10, "succeeded": 5, "pending": 5}, 12, "[#####.....]"),
        (
            {"total": 10, "succeeded": 2, "failed": 1, "running": 2, "pending": 5},
            12,
            "[##X>>.....]",
        ),
        ({"total": 1000, "succeeded": 1, "pending": 999}, 12, "[#.........]"),
        ({"total": 0}, 12, "[..........]"),
        ({"total": 3, "succeeded": 3}, 12, "[##########]"),
    ],
)
def test_progress_bar_plain(counts: dict[str, int], width: int, expected: str) -> None:
    p = render.progress_of(status_of(counts=counts), NOW)
    assert render.progress_bar(p, width, color=False).plain == expected


def test_progress_bar_colour_is_as_wide_as_asked() -> None:
    p = render.progress_of(status_of(counts={"total": 7, "succeeded": 3, "pending": 4}), NOW)
    bar = render.progress_bar(p, 30, color=True)
    assert bar.plain == "━" * 30
    assert {str(span.style) for span in bar.spans} >= {"green", "bright_black"}


# ----------------------------------------------------------------------------------- grid


def test_positions_map_global_indices_to_ranks() -> None:
    selection = IndexSet.parse("10-14,20-24")
    assert str(render.positions(selection, IndexSet.parse("11,20-21,30"))) == "1,5-6"
    assert str(render.positions(selection, IndexSet.parse("14,20"))) == "4-5"
    assert str(render.positions(selection, IndexSet())) == ""


def test_grid_one_cell_per_partition() -> None:
    selection = IndexSet.parse("0-5")
    sets = {
        "succeeded": IndexSet.parse("0-1"),
        "failed": IndexSet.parse("2"),
        "running": IndexSet.parse("3"),
        "skipped": IndexSet.parse("4"),
    }
    cells, size = render.grid_cells(selection, sets, max_cells=100)
    assert size == 1
    assert [c.state for c in cells] == [
        "succeeded",
        "succeeded",
        "failed",
        "running",
        "skipped",
        "pending",
    ]


def test_grid_buckets_when_the_selection_is_large() -> None:
    selection = IndexSet.parse("0-99")
    sets = {
        "succeeded": IndexSet.parse("0-49"),
        "failed": IndexSet.parse("75"),
        "running": IndexSet.parse("60"),
        "skipped": IndexSet.parse("50-54"),
    }
    cells, size = render.grid_cells(selection, sets, max_cells=10)
    assert size == 10 and len(cells) == 10
    assert [c.state for c in cells] == [
        "succeeded",
        "succeeded",
        "succeeded",
        "succeeded",
        "succeeded",
        "partial",
        "running",
        "failed",
        "pending",
        "pending",
    ]
    assert (cells[0].first, cells[0].last, cells[-1].last) == (0, 9, 99)


def test_grid_of_a_million_partitions_stays_small() -> None:
    selection = IndexSet.from_range(5, 1_000_004)
    sets = {"succeeded": IndexSet.from_range(5, 500_004)}
    cells, size = render.grid_cells(selection, sets, max_cells=2000)
    assert len(cells) == 2000 and size == 500
    assert cells[999].state == "succeeded" and cells[1000].state == "pending"


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(0, 300), min_size=1, max_size=120),
    st.lists(st.sampled_from(["succeeded", "failed", "running", "skipped", None]), max_size=120),
)
def test_grid_cells_match_each_partition(members: set[int], states: list[str | None]) -> None:
    ordered = sorted(members)
    assigned = dict(zip(ordered, states, strict=False))
    sets = {
        s: IndexSet.from_indices(i for i, x in assigned.items() if x == s)
        for s in ("succeeded", "failed", "running", "skipped")
    }
    cells, size = render.grid_cells(IndexSet.from_indices(members), sets, max_cells=1000)
    assert size == 1
    assert [c.state for c in cells] == [assigned.get(i) or "pending" for i in ordered]


def test_render_grid_rows_are_labelled_with_their_first_key() -> None:
    cells = [render.Cell(i, i, "succeeded" if i < 12 else "pending") for i in range(25)]
    keys = [f"2024-01-{d:02d}" for d in range(1, 26)]
    out = text_of(render.render_grid(cells, 1, keys.__getitem__, 10, color=False))
    assert out.splitlines() == [
        "2024-01-01 ##########",
        "2024-01-11 ##........",
        "2024-01-21 .....",
        "# succeeded  X failed  > running  . pending  s skipped",
    ]


def test_render_grid_legend_says_what_a_cell_stands_for() -> None:
    cells = [render.Cell(0, 9, "partial")]
    out = text_of(render.render_grid(cells, 10, lambda _: "k", 10, color=False))
    assert "+ partial" in out and "(one cell = 10 partitions)" in out


def test_grid_columns() -> None:
    assert render.grid_columns(80, 10) == 69
    assert render.grid_columns(300, 10) == render.GRID_MAX_COLUMNS
    assert render.grid_columns(10, 30) == 8


# -------------------------------------------------------------------------------- preview


def test_preview_shows_counts_skips_and_both_ends_in_launch_order() -> None:
    spec = backfill_spec(range={"from": "2024-01-01", "to": "2024-01-31"}, order="NewestFirst")
    job_status = PartitionedJobStatus(
        partitioning=build_space(daily_job(), NOW).fingerprint,
        ledger=PartitionLedger(succeeded="0-2"),
    )
    preview = preview_of(daily_job(), job_status, spec, NOW)
    head, tail = render.launch_sample(preview, spec.order)
    assert head == ["2024-01-31", "2024-01-30", "2024-01-29", "2024-01-28", "2024-01-27"]
    assert tail == ["2024-01-08", "2024-01-07", "2024-01-06", "2024-01-05", "2024-01-04"]
    out = text_of(
        render.render_preview(
            job="sales",
            namespace="ns",
            description="daily",
            preview=preview,
            spec=spec,
            name="sales-x",
        )
    )
    assert "31 partitions: 2024-01-01 … 2024-01-31" in out
    assert "28 partitions, newest first, 10 at a time, no retries" in out
    assert "Skipped         3 with a recorded outcome (reprocess Missing" in out
    assert "Backfill        sales-x" in out
    assert not any(line != line.rstrip() for line in out.splitlines())


def test_preview_lists_every_key_when_few() -> None:
    spec = backfill_spec(partitions=["2024-01-03", "2024-01-01"], retries={"limit": 2})
    preview = preview_of(daily_job(), PartitionedJobStatus(), spec, NOW)
    assert render.launch_sample(preview, spec.order) == (["2024-01-01", "2024-01-03"], [])
    out = text_of(
        render.render_preview(
            job="sales",
            namespace="ns",
            description="daily",
            preview=preview,
            spec=spec,
            name=None,
        )
    )
    assert "Partitions      2024-01-01, 2024-01-03" in out
    assert "Backfill" not in out and "at a time" not in out  # plan: no policy, no name


def test_describe_policy() -> None:
    spec = backfill_spec(
        concurrency=3, retries={"limit": 1, "backoffSeconds": 5}, maxFailedPartitions=2
    )
    assert render.describe_policy(spec) == (
        "oldest first, 3 at a time, 1 retry (backoff 5s), stop after 2 failures"
    )


def test_plan_document_and_rows() -> None:
    spec = backfill_spec(range={"from": "2024-01-01", "to": "2024-01-03"})
    preview = preview_of(daily_job(), PartitionedJobStatus(), spec, NOW)
    doc = documents.plan_document(
        job="sales", namespace="ns", description="daily", preview=preview, spec=spec
    )
    assert doc["count"] == 3 and doc["selection"] == {
        "first": "2024-01-01",
        "last": "2024-01-03",
        "count": 3,
    }
    assert doc["partitions"][0] == {
        "index": 0,
        "key": "2024-01-01",
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-02T00:00:00Z",
    }
    rows = list(render.plan_table_rows(preview, spec.order))
    assert rows[-1] == ["3", "2024-01-03", "2024-01-03 00:00", "2024-01-04 00:00"]


# --------------------------------------------------------------------------------- tables


def test_format_table_pads_like_kubectl() -> None:
    lines = render.format_table(["NAME", "AGE"], [["a-long-name", "5m"], ["b", ""]])
    assert lines == ["NAME          AGE", "a-long-name   5m", "b"]


def test_list_rows() -> None:
    item = {
        "metadata": {"name": "b1", "namespace": "ns", "creationTimestamp": "2024-11-01T11:50:00Z"},
        "spec": {"jobRef": {"name": "sales"}, "suspend": True},
        "status": {"phase": "Running", "progress": "3/9", "counts": {"failed": 1, "running": 2}},
    }
    headers, rows = render.list_rows([item], NOW, all_namespaces=True)
    assert headers[0] == "NAMESPACE"
    assert rows == [["ns", "b1", "sales", "Suspended", "3/9", "1", "2", "10m"]]


# --------------------------------------------------------------------------------- status


def status_view(**kw: Any) -> render.StatusView:
    spec = backfill_spec(range={"from": "2024-01-01", "to": "2024-01-10"}, retries={"limit": 1})
    status = BackfillStatus.model_validate(
        {
            "phase": "Running",
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "InProgress",
                    "message": "4/10 done, 2 running, 4 pending",
                },
            ],
            "selection": {"first": "2024-01-01", "last": "2024-01-10", "count": 10},
            "counts": {"total": 10, "succeeded": 3, "failed": 1, "running": 2, "pending": 4},
            "partitions": {"succeeded": "0-2", "failed": "3", "running": "4-5"},
            "running": [
                {
                    "key": "2024-01-05",
                    "index": 4,
                    "job": "j5",
                    "attempt": 1,
                    "startTime": "2024-11-01T11:59:30Z",
                },
            ],
            "failures": [
                {
                    "key": "2024-01-04",
                    "index": 3,
                    "job": "j4",
                    "attempts": 2,
                    "message": "BackoffLimitExceeded: boom",
                },
            ],
            "startTime": "2024-11-01T11:58:00Z",
        }
    )
    keys = [f"2024-01-{d:02d}" for d in range(1, 11)]
    fields: dict[str, Any] = {
        "description": "daily",
        "grid": render.GridData(IndexSet.parse("0-9"), keys.__getitem__),
        **kw,
    }
    return render.StatusView(
        name="b1", namespace="ns", job="sales", spec=spec, status=status, **fields
    )


def test_render_status_plain() -> None:
    out = text_of(render.render_status(status_view(), NOW, 100, color=False))
    assert "Phase           Running  4/10 done, 2 running, 4 pending" in out
    assert "4/10  40%" in out
    assert "3 succeeded · 1 failed · 2 running · 4 pending · 0 skipped" in out
    assert "Rate            2.0 partitions/min, ETA 3m 00s" in out
    assert "2024-01-01 ###X>>...." in out
    assert "2024-01-05  attempt 1, 30s  job/j5" in out
    assert "2024-01-04  attempt 2/2, failed for good" in out
    assert "job/j4: BackoffLimitExceeded: boom" in out


def test_render_status_without_grid_says_why() -> None:
    out = text_of(
        render.render_status(
            status_view(grid=None, grid_note='PartitionedJob "sales" not found'),
            NOW,
            100,
            color=False,
        )
    )
    assert '(no partition grid: PartitionedJob "sales" not found)' in out


def test_render_status_before_the_operator_saw_it() -> None:
    view = render.StatusView(
        name="b1",
        namespace="ns",
        job="sales",
        spec=backfill_spec(),
        status=BackfillStatus(),
        created="2024-11-01T11:59:50Z",
    )
    out = text_of(render.render_status(view, NOW, 80, color=False))
    assert "Pending  waiting for the operator" in out
    assert render.follow_line(view, NOW) == "12:00:00 Pending: waiting for the operator"
    later = NOW + timedelta(minutes=2)
    assert render.headline(view, later) == (
        "no status 2m 10s after creation: is the operator running?"
    )


def test_follow_line_counts_partitions_waiting_to_retry() -> None:
    view = status_view()
    failures = [
        f.model_copy(update={"retry_at": "2024-11-01T12:01:00Z"}) for f in view.status.failures
    ]
    retrying = render.StatusView(
        "b1", "ns", "sales", view.spec, view.status.model_copy(update={"failures": failures})
    )
    assert "4 pending (1 waiting to retry); ETA" in render.follow_line(retrying, NOW)


def test_status_document_and_follow_line() -> None:
    view = status_view()
    doc = documents.status_document(view, NOW)
    assert doc["phase"] == "Running" and doc["progress"] == {
        "done": 4,
        "total": 10,
        "percent": 40.0,
    }
    assert doc["partitions"]["failed"] == "3" and doc["etaSeconds"] == 180.0
    assert render.follow_line(view, NOW) == (
        "12:00:00 Running 4/10 done: 3 succeeded, 1 failed, 2 running, 4 pending; ETA 3m 00s"
    )


def test_headline_prefers_stalled() -> None:
    view = status_view()
    raw = view.status.to_api()
    raw["conditions"].append(
        {"type": "Stalled", "status": "True", "reason": "X", "message": "bad range"}
    )
    stalled = BackfillStatus.model_validate(raw)
    assert render.headline(render.StatusView("b", "n", "j", view.spec, stalled)) == "bad range"


def test_log_unavailable_message() -> None:
    text = render.log_unavailable(key="2024-01-03", pod="p", node="node-1", detail="no addresses")
    assert text.startswith("no log available for partition 2024-01-03: pod p on node node-1: ")
    assert text.endswith(": the apiserver said: no addresses") and "\n" not in text


# ---------------------------------------------------------- command line, no cluster needed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create"], "Missing argument"),
        (["create", "j", "--bogus"], "No such option: --bogus"),
        (["create", "j"], "give either --from"),
        (["create", "j", "--from", "a", "--partitions", "b"], "give either --from"),
        (["create", "j", "--to", "2024-01-01", "--partitions", "a"], "--to needs --from"),
        (["create", "j", "--partitions", " , "], "--partitions is empty"),
        (["create", "j", "--from", "a", "--name", "Bad_Name"], "--name:"),
        (["create", "j", "--from", "a", "--concurrency", "0"], "--concurrency"),
        (["create", "j", "--from", "a", "--order", "sideways"], "--order"),
        (["create", "j", "--from", "a", "--reprocess", "some"], "--reprocess"),
        (["plan", "j", "--from", "a", "-o", "xml"], "--output"),
        (["-A", "status", "b"], "-A/--all-namespaces applies to list and ui only"),
        (["logs", "b"], "--partition"),
        (["retry-failed", "b", "--name", "-x"], "--name:"),
        (["frobnicate"], "No such command"),
        (["status", "cronjob/x"], '"cronjob" is not a type status shows'),
        (["missing"], "Missing argument"),
        (["missing", "j", "--create", "-o", "json"], "--create previews the Backfill"),
        (["missing", "j", "-o", "xml"], "--output"),
        (["missing", "j", "--queue-priority-class", "hi"], "needs --queue"),
        (["missing", "j", "--name", "Bad_Name"], "--name:"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_usage_error_points_at_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["create", "j", "--bogus"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "See 'kubectl backfill create --help' for usage."
    )


def test_help_and_no_arguments_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["--help"]) == 0
    assert app.main([]) == 0
    assert "retry-failed" in capsys.readouterr().out


def test_missing_kubeconfig_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert app.main(["list", "--kubeconfig", str(tmp_path / "nope")]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_unknown_context_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: a, context: {cluster: c, user: u, namespace: team}}]\n"
    )
    assert app.main(["--kubeconfig", str(config), "--context", "zz", "list"]) == 2
    assert 'context "zz" is not in the kubeconfig' in capsys.readouterr().err


def test_unreachable_cluster_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: a, context: {cluster: c, user: u, namespace: team}}]\n"
    )
    assert app.main(["list", "--kubeconfig", str(config)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:1 (context a)" in err
    assert "connection refused" in err


# ------------------------------------------------ priorities, Kueue, queued and waiting


def test_build_spec_sets_priority_and_kueue() -> None:
    common: dict[str, Any] = {
        "job": "sales",
        "from_": "2024-01-01",
        "to": None,
        "partitions": None,
        "concurrency": 4,
        "order": Order.OLDEST_FIRST,
        "reprocess": Reprocess.MISSING,
        "retries": 0,
        "retry_backoff_seconds": 10,
        "max_failed": None,
        "dry_run": False,
    }
    plain_spec = specs.build_spec(**common)
    assert plain_spec.priority == 0 and plain_spec.kueue is None
    spec = specs.build_spec(
        **common, priority=-7, queue="team-a", queue_priority_class="batch.high"
    )
    assert spec.priority == -7
    assert spec.kueue is not None and spec.kueue.to_api() == {
        "queueName": "team-a",
        "priorityClass": "batch.high",
    }
    only_queue = specs.build_spec(**common, priority=5, queue="team-a")
    assert only_queue.to_api()["kueue"] == {"queueName": "team-a"}
    assert only_queue.to_api()["priority"] == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "j", "--from", "a", "--queue-priority-class", "hi"], "needs --queue"),
        (["plan", "j", "--from", "a", "--queue-priority-class", "hi"], "needs --queue"),
        (["create", "j", "--from", "a", "--queue", "Team_A"], '--queue: "Team_A" is not a'),
        (["create", "j", "--from", "a", "--queue", ""], "--queue is empty"),
        (["plan", "j", "--from", "a", "--queue", "q" * 64], "at most 63"),
        (
            ["create", "j", "--from", "a", "--queue", "q", "--queue-priority-class", "-hi"],
            '--queue-priority-class: "-hi" is not a valid WorkloadPriorityClass name',
        ),
        (["create", "j", "--from", "a", "--priority", "1000000001"], "--priority 1000000001"),
        (["plan", "j", "--from", "a", "--priority", "-1000000001"], "out of range"),
        (["create", "j", "--from", "a", "--priority", "high"], "--priority"),
    ],
)
def test_queue_and_priority_flag_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_flag_message_names_the_kueue_flags() -> None:
    assert render.flag_message("kueue.priorityClass: too long; kueue.queueName: bad") == (
        "--queue-priority-class: too long; --queue: bad"
    )


def test_describe_policy_mentions_priority_and_queue() -> None:
    spec = backfill_spec(
        concurrency=3, priority=5, kueue={"queueName": "team-a", "priorityClass": "high"}
    )
    assert render.describe_policy(spec) == (
        "oldest first, 3 at a time, no retries, priority 5, "
        "Kueue queue team-a (priority class high)"
    )
    assert render.describe_policy(backfill_spec(priority=-2, kueue={"queueName": "q"})).endswith(
        "no retries, priority -2, Kueue queue q"
    )
    assert render.describe_queueing(backfill_spec()) == []


def test_plan_preview_shows_priority_and_queue_only_when_set() -> None:
    def to_run(spec: BackfillSpec, name: str | None) -> str:
        preview = preview_of(daily_job(), PartitionedJobStatus(), spec, NOW)
        out = text_of(
            render.render_preview(
                job="sales",
                namespace="ns",
                description="daily",
                preview=preview,
                spec=spec,
                name=name,
            )
        )
        return next(line for line in out.splitlines() if line.startswith("To run"))

    rng = {"from": "2024-01-01", "to": "2024-01-03"}
    assert to_run(backfill_spec(range=rng), None) == "To run          3 partitions"
    queued = backfill_spec(range=rng, priority=5, kueue={"queueName": "team-a"})
    assert to_run(queued, None) == "To run          3 partitions, priority 5, Kueue queue team-a"
    assert to_run(queued, "b1") == (
        "To run          3 partitions, oldest first, 10 at a time, no retries, priority 5, "
        "Kueue queue team-a"
    )


def test_grid_draws_queued_partitions() -> None:
    selection = IndexSet.parse("0-4")
    sets = {
        "succeeded": IndexSet.parse("0"),
        "running": IndexSet.parse("1"),
        "queued": IndexSet.parse("2-3"),
    }
    cells, _ = render.grid_cells(selection, sets, max_cells=100)
    assert [c.state for c in cells] == ["succeeded", "running", "queued", "queued", "pending"]
    # A cell of several partitions: failed, then running, then queued win.
    big = IndexSet.parse("0-29")
    sets = {
        "succeeded": IndexSet.parse("0-9"),
        "running": IndexSet.parse("10"),
        "queued": IndexSet.parse("11,20"),
        "failed": IndexSet.parse("12"),
    }
    cells, size = render.grid_cells(big, sets, max_cells=3)
    assert size == 10 and [c.state for c in cells] == ["succeeded", "failed", "queued"]


def test_render_grid_legend_lists_queued_only_when_a_cell_is_queued() -> None:
    cells = [
        render.Cell(0, 0, "running"),
        render.Cell(1, 1, "queued"),
        render.Cell(2, 2, "pending"),
    ]
    out = text_of(render.render_grid(cells, 1, lambda _: "k", 10, color=False))
    assert out.splitlines() == [
        "k >q.",
        "# succeeded  X failed  > running  q queued  . pending  s skipped",
    ]
    coloured = render.render_grid(cells, 1, lambda _: "k", 10, color=True)
    first_row = coloured.renderables[0]
    assert isinstance(first_row, Text) and "magenta" in {str(s.style) for s in first_row.spans}
    unqueued = [render.Cell(0, 0, "running")]
    assert "queued" not in text_of(render.render_grid(unqueued, 1, lambda _: "k", 10, color=False))


def test_progress_bar_draws_queued_after_running() -> None:
    counts = {"total": 10, "succeeded": 2, "running": 2, "queued": 2, "pending": 4}
    p = render.progress_of(status_of(counts=counts), NOW)
    assert p.queued == 2
    assert render.progress_bar(p, 12, color=False).plain == "[##>>qq....]"


def test_queued_partitions_count_in_the_eta() -> None:
    status = status_of(
        phase="Running",
        counts={"total": 10, "succeeded": 2, "queued": 3, "pending": 5},
        startTime="2024-11-01T11:58:00Z",
    )
    p = render.progress_of(status, NOW)
    assert p.rate_per_minute == pytest.approx(1.0)
    assert p.eta_seconds == pytest.approx(8 * 60)  # 5 pending and 3 queued at 1/min


def queued_view() -> render.StatusView:
    """The status view of a Backfill with queued Jobs and partitions that wait."""
    view = status_view()
    raw = view.status.to_api()
    raw["counts"] = {
        "total": 10,
        "succeeded": 3,
        "failed": 1,
        "running": 1,
        "queued": 1,
        "pending": 4,
    }
    raw["partitions"] = {"succeeded": "0-2", "failed": "3", "running": "4", "queued": "5"}
    raw["running"].append(
        {
            "key": "2024-01-06",
            "index": 5,
            "job": "j6",
            "attempt": 1,
            "startTime": "2024-11-01T11:59:50Z",
            "queued": True,
        }
    )
    raw["waiting"] = {
        "onLock": 3,
        "holders": [{"backfill": "other-bf", "count": 3}],
        "forJobSlot": 2,
    }
    status = BackfillStatus.model_validate(raw)
    return render.StatusView("b1", "ns", "sales", view.spec, status, grid=view.grid)


def test_render_status_shows_queued_and_waiting() -> None:
    out = text_of(render.render_status(queued_view(), NOW, 100, color=False))
    assert (
        "Counts          3 succeeded · 1 failed · 1 running · 1 queued · 4 pending · 0 skipped"
        in (out)
    )
    assert (
        "Waiting         3 partitions wait on a lock: other-bf holds 3; "
        "2 Jobs wait for a job-wide slot"
    ) in out
    assert "2024-01-01 ###X>q...." in out
    assert "# succeeded  X failed  > running  q queued  . pending  s skipped" in out
    assert "Running (1) and queued (1)" in out
    assert "  2024-01-05  attempt 1, 30s  job/j5" in out
    assert "  2024-01-06  attempt 1, queued  job/j6" in out


def test_render_status_without_queues_or_waits_shows_neither() -> None:
    out = text_of(render.render_status(status_view(), NOW, 100, color=False))
    assert "queued" not in out and "Waiting" not in out and "wait" not in out
    assert "\nRunning (1)\n" in out
    assert "# succeeded  X failed  > running  . pending  s skipped\n" in out


def test_running_list_of_only_queued_jobs() -> None:
    view = queued_view()
    only_queued = [r for r in view.status.running if r.queued]
    status = view.status.model_copy(update={"running": only_queued})
    out = text_of(
        render.render_status(
            render.StatusView("b1", "ns", "sales", view.spec, status), NOW, 100, color=False
        )
    )
    assert "\nQueued (1)\n  2024-01-06  attempt 1, queued  job/j6\n" in out


@pytest.mark.parametrize(
    ("waiting", "text"),
    [
        (None, ""),
        ({"forJobSlot": 1}, "1 Job waits for a job-wide slot"),
        (
            {"onLock": 1, "holders": [{"backfill": "a", "count": 1}]},
            "1 partition waits on a lock: a holds 1",
        ),
        (
            {
                "onLock": 7,
                "holders": [{"backfill": "a", "count": 4}, {"backfill": "b", "count": 1}],
                "forJobSlot": 3,
            },
            "7 partitions wait on a lock: a holds 4, b holds 1, others hold 2; "
            "3 Jobs wait for a job-wide slot",
        ),
        ({"onLock": 2}, "2 partitions wait on a lock"),
        ({}, ""),
    ],
)
def test_describe_waiting(waiting: dict[str, Any] | None, text: str) -> None:
    model = None if waiting is None else Waiting.model_validate(waiting)
    assert render.describe_waiting(model) == text


def test_follow_line_counts_queued_only_when_some_are() -> None:
    assert render.follow_line(queued_view(), NOW) == (
        "12:00:00 Running 4/10 done: 3 succeeded, 1 failed, 1 running, 1 queued, 4 pending; "
        "ETA 3m 00s"
    )
    assert ", 2 running, 4 pending;" in render.follow_line(status_view(), NOW)


def test_status_document_waiting() -> None:
    assert documents.status_document(status_view(), NOW)["waiting"] is None
    doc = documents.status_document(queued_view(), NOW)
    assert doc["waiting"] == {
        "onLock": 3,
        "holders": [{"backfill": "other-bf", "count": 3}],
        "forJobSlot": 2,
    }
    assert doc["counts"]["queued"] == 1 and doc["partitions"]["queued"] == "5"
    assert doc["running"][-1]["queued"] is True and "queued" not in doc["running"][0]
    json.dumps(doc)  # serialisable as is


# ------------------------------------------------------- retry-failed against a fake API


class FakeClient:
    """The calls ``retry-failed``, ``status pj/NAME`` and ``missing`` make, against a dict of
    objects (and a list of Jobs)."""

    namespace = "ns"

    def __init__(
        self,
        objects: dict[tuple[str, str], dict[str, Any]],
        jobs: list[dict[str, Any]] | None = None,
    ) -> None:
        self.objects = objects
        self.jobs = jobs or []
        self.created: list[dict[str, Any]] = []
        self.selectors: list[str] = []

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        return [body for (kind, _), body in self.objects.items() if kind == plural]

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        return self.jobs

    def find(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((plural, name))

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        body = self.find(plural, name)
        assert body is not None, (plural, name)
        return body

    def create_backfill(self, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return body


def test_retry_failed_keeps_priority_and_queue() -> None:
    job = {
        "metadata": {"name": "sales", "namespace": "ns"},
        "spec": daily_job().to_api(),
    }
    original = {
        "metadata": {"name": "b1", "namespace": "ns", "generation": 1},
        "spec": backfill_spec(
            range={"from": "2024-01-01", "to": "2024-01-05"},
            priority=7,
            kueue={"queueName": "team-a", "priorityClass": "high"},
        ).to_api(),
        "status": {
            "phase": "Failed",
            "counts": {"total": 5, "succeeded": 4, "failed": 1},
            "partitions": {"succeeded": "0-1,3-4", "failed": "2"},
        },
    }
    client = FakeClient({("partitionedjobs", "sales"): job, ("backfills", "b1"): original})
    session = Session(
        target=Target(),
        out=Console(file=io.StringIO(), color_system=None, width=120, soft_wrap=True),
        err=Console(file=io.StringIO(), color_system=None, width=120),
        interactive=False,
        _client=client,  # type: ignore[arg-type]
    )
    code = manage.retry_failed(
        session, "b1", new_name="b1-again", concurrency=None, retries=None, yes=True, wait=False
    )
    assert code == 0
    (created,) = client.created
    assert created["spec"]["partitions"] == ["2024-01-03"]
    assert created["spec"]["priority"] == 7
    assert created["spec"]["kueue"] == {"queueName": "team-a", "priorityClass": "high"}
    out = session.out.file.getvalue()  # type: ignore[attr-defined]
    assert "no retries, priority 7, Kueue queue team-a (priority class high)" in out


# ---------------------------------------------- PartitionedJobs: status pj/NAME, missing

#: A daily PartitionedJob from 2024-01-01 with scheduled runs; at NOW its complete partitions
#: are 2024-01-01 … 2024-10-31 (indices 0-304). Its ledger: 0-30 and 34-299 succeeded, 300
#: (2024-10-27) failed; the schedule missed and left 31-33 (2024-02-01 … 02-03), took on
#: 295-303 and has not decided on 304 yet; 301 runs (a scheduled Job), 302 is queued (a
#: Backfill's Job Kueue holds). Missing: 31-33, 303, 304.
RUNS = {"delaySeconds": 600, "catchUp": "None", "catchUpWindowSeconds": 604800}


def scheduled_spec(**kw: Any) -> PartitionedJobSpec:
    raw: dict[str, Any] = {
        "partitions": {"schedule": {"cron": "0 0 * * *", "start": "2024-01-01"}},
        "jobTemplate": TEMPLATE,
        "runs": RUNS,
    }
    raw.update(kw)
    return PartitionedJobSpec.model_validate({k: v for k, v in raw.items() if v is not None})


FP = build_space(scheduled_spec(), NOW).fingerprint


def pj_object(spec: PartitionedJobSpec | None = None, **status: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Valid", "message": "ok"}],
        "partitioning": FP,
        "ledger": {"succeeded": "0-30,34-299", "failed": "300"},
        "runs": {
            "partitioning": FP,
            "considered": 303,
            "scheduled": "295-303",
            "missedSet": "31-33",
            "missed": {"count": 3, "oldest": "2024-02-01", "newest": "2024-02-03"},
            "lastScheduled": "2024-10-30",
            "lastScheduleTime": "2024-10-31T00:10:00Z",
            "nextPartition": "2024-10-31",
            "nextRunTime": "2024-11-01T00:10:00Z",
            "lagSeconds": 120000,
            "lagSince": "2024-10-31T00:00:00Z",
            "counts": {"total": 9, "succeeded": 5, "failed": 1, "running": 1, "pending": 2},
            "partitions": {"succeeded": "295-299", "failed": "300", "running": "301"},
            "running": [
                {
                    "key": "2024-10-28",
                    "index": 301,
                    "job": "sales-s-301",
                    "attempt": 1,
                    "startTime": "2024-11-01T11:59:00Z",
                }
            ],
            "message": "running; lag 120000s; 3 missed (oldest 2024-02-01)",
        },
    }
    base.update(status)
    return {
        "metadata": {
            "name": "sales",
            "namespace": "ns",
            "generation": 1,
            "creationTimestamp": "2024-10-01T00:00:00Z",
        },
        "spec": (spec or scheduled_spec()).to_api(),
        "status": base,
    }


def k8s_job(
    index: int,
    *,
    active: bool = True,
    suspend: bool = False,
    partitioning: str = FP,
    scheduled: bool = False,
) -> dict[str, Any]:
    """A raw Job of PartitionedJob "sales", as the operator labels it."""
    labels = {
        "backfill.dev/partitioned-job": "sales",
        "backfill.dev/partition-index": str(index),
        "backfill.dev/attempt": "1",
        **({"backfill.dev/partitioning": partitioning} if partitioning else {}),
        **({"backfill.dev/scheduled": "true"} if scheduled else {"backfill.dev/backfill": "b1"}),
    }
    done = {"conditions": [{"type": "Complete", "status": "True"}]}
    return {
        "metadata": {"name": f"job-{index}", "labels": labels},
        "spec": {"suspend": suspend},
        "status": {} if active else done,
    }


JOBS = [
    k8s_job(301, scheduled=True),
    k8s_job(302, suspend=True),
    k8s_job(5, active=False),
    k8s_job(303, partitioning="another-numbering"),
]


def backfill_object(name: str, job: str, phase: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "generation": 1,
            "creationTimestamp": "2024-11-01T11:00:00Z",
        },
        "spec": {"jobRef": {"name": job}, **spec},
        "status": {"phase": phase, "progress": "0/9", "counts": {"total": 9}, "partitioning": FP},
    }


def job_client(pj: dict[str, Any] | None = None, **objects: dict[str, Any]) -> FakeClient:
    found: dict[tuple[str, str], dict[str, Any]] = {("partitionedjobs", "sales"): pj or pj_object()}
    found[("backfills", "b1")] = backfill_object(
        "b1", "sales", "Running", range={"from": "2024-02-02", "to": "2024-02-10"}
    )
    found[("backfills", "other")] = backfill_object(
        "other", "another-job", "Running", range={"from": "2024-01-01"}
    )
    for name, body in objects.items():
        found[("backfills", name)] = body
    return FakeClient(found, list(JOBS))


def fake_session(client: FakeClient, width: int = 100) -> Session:
    return Session(
        target=Target(),
        out=Console(file=io.StringIO(), color_system=None, width=width, soft_wrap=True),
        err=Console(file=io.StringIO(), color_system=None, width=width),
        interactive=False,
        _client=client,  # type: ignore[arg-type]
    )


def out_of(session: Session) -> str:
    return session.out.file.getvalue()  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def test_active_jobs_are_those_of_this_numbering() -> None:
    raw = [*JOBS, k8s_job(7, partitioning="")]
    observed = [j for j in (observe_job(r, "") for r in raw) if j is not None]
    running, queued = coverage.active_jobs(observed, FP)
    # 5 finished, 303 belongs to another numbering; a Job without the label counts.
    assert (str(running), str(queued)) == ("7,301", "302")


def test_ledger_applies_only_to_its_numbering() -> None:
    status = PartitionedJobStatus(
        partitioning="fp", ledger=PartitionLedger(succeeded="0-3", failed="5")
    )
    assert coverage.ledger_sets(status, "fp") == (IndexSet.parse("0-3"), IndexSet.parse("5"))
    assert coverage.ledger_problem(status, "fp") is None
    assert coverage.ledger_sets(status, "other") is None
    assert "earlier numbering" in str(coverage.ledger_problem(status, "other"))
    assert coverage.ledger_sets(PartitionedJobStatus(), "fp") is None
    assert "has not recorded" in str(coverage.ledger_problem(PartitionedJobStatus(), "fp"))


def test_coverage_missing_and_grid_sets() -> None:
    cov = coverage.coverage_of(
        IndexSet.parse("0-9"),
        (IndexSet.parse("0-2,8"), IndexSet.parse("3,9")),
        (IndexSet.parse("8"), IndexSet.parse("4,12")),
    )
    assert str(cov.missing) == "5-7"
    assert str(coverage.missing_of(cov)) == "5-7"
    assert str(coverage.missing_of(cov, include_failed=True)) == "3,5-7,9"
    # A partition that runs again is drawn running, not by its old outcome; 12 is not complete.
    assert {k: str(v) for k, v in cov.grid_sets().items()} == {
        "succeeded": "0-2",
        "failed": "3,9",
        "running": "8",
        "queued": "4",
    }
    unknown = coverage.coverage_of(IndexSet.parse("0-9"), None, (IndexSet(), IndexSet()))
    assert not unknown.ledger_known and str(unknown.missing) == "0-9"


def test_missing_over_a_million_partitions_is_set_arithmetic() -> None:
    calls: list[int] = []

    def key(index: int) -> str:
        calls.append(index)
        return f"k{index}"

    complete = IndexSet.from_range(0, 999_999)
    ok = IndexSet.parse("0-499999,500010-999999")
    cov = coverage.coverage_of(
        complete, (ok, IndexSet.parse("500003")), (IndexSet.parse("500005"), IndexSet())
    )
    missing = coverage.missing_of(cov)
    assert str(missing) == "500000-500002,500004,500006-500009"
    ranges = coverage.key_ranges(missing, key)
    assert [str(r) for r in ranges] == [
        "k500000 … k500002 (3)",
        "k500004 (1)",
        "k500006 … k500009 (4)",
    ]
    assert len(calls) == 5  # two keys per range, one for a single partition
    assert [str(r) for r in coverage.key_ranges(missing, key, limit=1)] == ["k500000 … k500002 (3)"]
    target = coverage.fill_target(missing, key)
    assert target.reprocess is Reprocess.MISSING and target.range_from is None
    assert target.partitions == [
        f"k{i}" for i in (500000, 500001, 500002, 500004, *range(500006, 500010))
    ]
    # Nothing recorded: all million are missing, one range; a Backfill covers them as a range.
    everything = coverage.missing_of(coverage.coverage_of(complete, None, (IndexSet(), IndexSet())))
    assert len(everything) == 1_000_000 and everything.interval_count() == 1
    calls.clear()
    big = coverage.fill_target(everything, key, include_failed=True)
    assert (big.partitions, big.range_from, big.range_to) == (None, "k0", "k999999")
    assert big.reprocess is Reprocess.FAILED and big.count is None
    assert len(calls) == 2
    with pytest.raises(ValueError, match="no partitions"):
        coverage.fill_target(IndexSet(), key)


def test_fill_target_lists_keys_up_to_the_limit() -> None:
    at_limit = IndexSet.from_range(0, 9_999)
    assert coverage.fill_target(at_limit, str).count == 10_000
    over = IndexSet.parse("0-9999,20000")
    target = coverage.fill_target(over, str)
    assert (target.range_from, target.range_to, target.partitions) == ("0", "20000", None)


def test_schedule_share_counts_what_the_schedule_decided() -> None:
    runs = ScheduleStatus(partitioning="fp", considered=20, scheduled="15-20", missed_set="0-9")
    share = coverage.schedule_share(IndexSet.parse("5-12,18,25-26"), runs, "fp")
    assert share == coverage.ScheduleShare(left=5, taken=1, undecided=2)
    assert coverage.schedule_share(IndexSet.parse("1"), runs, "other") is None
    assert coverage.schedule_share(IndexSet.parse("1"), None, "fp") is None
    fresh = ScheduleStatus(partitioning="fp")  # nothing considered yet: everything undecided
    assert coverage.schedule_share(IndexSet.parse("0-4"), fresh, "fp") == (
        coverage.ScheduleShare(undecided=5)
    )
    assert coverage.count_within(IndexSet.parse("0-99"), IndexSet.parse("10-19,50,200")) == 11


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("b1", (None, "b1")),
        ("pj/sales", ("partitionedjobs", "sales")),
        ("PartitionedJob/sales", ("partitionedjobs", "sales")),
        ("partitionedjobs.backfill.dev/sales", ("partitionedjobs", "sales")),
        ("bf/b1", ("backfills", "b1")),
        ("backfill.backfill.dev/b1", ("backfills", "b1")),
    ],
)
def test_status_reference(ref: str, parsed: tuple[str | None, str]) -> None:
    assert job_status.parse_ref(ref) == parsed


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("cronjob/x", '"cronjob" is not a type status shows'),
        ("pj/", "does not name an object: give pj/NAME"),
        ("pj/a/b", "does not name an object"),
        ("", "name a Backfill or a PartitionedJob"),
    ],
)
def test_status_reference_errors(ref: str, message: str) -> None:
    with pytest.raises(CliError, match=re.escape(message)):
        job_status.parse_ref(ref)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (600, "10m"), (5400, "1h 30m"), (604800, "7d"), (86401, "1d 1s")],
)
def test_format_span(seconds: int, text: str) -> None:
    assert render.format_span(seconds) == text


def test_describe_runs() -> None:
    assert render.describe_runs(ScheduledRuns()) == (
        "as each window closes; catch-up All (missed when over 5m late); 1 at a time (Allow); "
        "priority 100; no retries"
    )
    runs = ScheduledRuns.model_validate(
        {
            "delaySeconds": 600,
            "catchUp": "Latest",
            "catchUpWindowSeconds": 604800,
            "startingDeadlineSeconds": 60,
            "concurrencyPolicy": "Forbid",
            "retries": {"limit": 2},
            "kueue": {"queueName": "q", "priorityClass": "high"},
        }
    )
    assert render.describe_runs(runs) == (
        "10m after each window closes; catch-up Latest within 7d (missed when over 1m late); "
        "one at a time, in order (Forbid); priority 100; 2 retries (backoff 10s); Kueue queue q "
        "(priority class high)"
    )


@pytest.mark.usefixtures("frozen_clock")
def test_status_of_a_partitioned_job() -> None:
    client = job_client()
    session = fake_session(client)
    assert job_status.status(session, "sales", watch=False, output="text", interval=1) == 0
    out = out_of(session)
    assert client.selectors == ["backfill.dev/partitioned-job=sales"]
    lines = out.splitlines()
    assert lines[:6] == [
        "PartitionedJob  ns/sales",
        'Partitions      daily schedule "0 0 * * *" in UTC',
        "State           Ready",
        "Complete        305 partitions: 2024-01-01 … 2024-10-31",
        "Outcomes        297 succeeded · 1 failed · 1 running · 1 queued · 5 missing",
        "Schedule        10m after each window closes; catch-up None within 7d (missed when over "
        "5m late); 1 at a time (Allow); priority 100; no retries",
    ]
    for line in [
        "Now             running; lag 120000s; 3 missed (oldest 2024-02-01)",
        "Last scheduled  2024-10-30 at 2024-10-31 00:10:00 UTC (1d 11h ago)",
        "Next            2024-10-31, due 2024-11-01 00:10:00 UTC (11h 50m ago)",
        "Lag             1d 12h (129600s): the oldest scheduled partition without a success "
        "ended 2024-10-31 00:00:00 UTC",
        "Missed          3 partitions: 2024-02-01 … 2024-02-03 (not run by the schedule; fill "
        "them with: kubectl backfill missing sales -n ns --create)",
        "Scheduled runs  5 succeeded · 1 failed · 1 running · 2 pending · 0 skipped",
        "Backfills (1)",
        "  NAME   PHASE     PROGRESS   FAILED   RUNNING   AGE",
        "  b1     Running   0/9        0        0         60m",
        "# succeeded  X failed  > running  q queued  . missing",
        "Scheduled runs: running (1)",
        "  2024-10-28  attempt 1, 1m 00s  job/sales-s-301",
    ]:
        assert line in lines, line
    grid = [line for line in lines if line.startswith("2024-")]
    cells = "".join(line.split(" ", 1)[1] for line in grid)
    assert cells == "#" * 31 + "..." + "#" * 266 + "X>q.."
    assert "other" not in out  # a Backfill of another job


@pytest.mark.usefixtures("frozen_clock")
def test_status_of_a_partitioned_job_without_scheduled_runs() -> None:
    spec = scheduled_spec(runs=None)
    client = job_client(pj_object(spec, partitioning=FP, runs=None))
    session = fake_session(client)
    job_status.status(session, "pj/sales", watch=False, output="text", interval=1)
    out = out_of(session)
    assert "Schedule        no scheduled runs (spec.runs unset): only Backfills run it\n" in out
    assert "Outcomes        297 succeeded · 1 failed · 1 running · 1 queued · 5 missing" in out
    assert "Backfills (1)" in out and "Scheduled runs" not in out and "Lag" not in out
    assert "# succeeded  X failed  > running  q queued  . missing" in out


@pytest.mark.usefixtures("frozen_clock")
def test_status_of_an_invalid_or_unnumbered_partitioned_job() -> None:
    bad = scheduled_spec(partitions={"schedule": {"cron": "nope", "start": "2024-01-01"}})
    raw = pj_object(bad, runs=None)
    raw["status"]["conditions"] = [
        {"type": "Stalled", "status": "True", "reason": "InvalidPartitions", "message": "bad cron"}
    ]
    session = fake_session(job_client(raw))
    job_status.status(session, "pj/sales", watch=False, output="text", interval=1)
    out = out_of(session)
    assert "State           invalid: bad cron" in out and "Complete" not in out
    # Not numbered by the operator yet: no outcome known, all partitions missing.
    session = fake_session(job_client(pj_object(partitioning=None, conditions=[], runs=None)))
    job_status.status(session, "pj/sales", watch=False, output="text", interval=1)
    out = out_of(session)
    assert "State           no status 31d 12h after creation: is the operator running?" in out
    assert "0 succeeded · 0 failed · 1 running · 1 queued · 303 missing" in out
    assert "no outcome is known: the operator has not recorded this job's status yet" in out


@pytest.mark.usefixtures("frozen_clock")
def test_status_resolves_backfills_first_then_partitioned_jobs() -> None:
    same_name = backfill_object("sales", "sales", "Succeeded", partitions=["2024-01-01"])
    client = job_client(sales=same_name)
    session = fake_session(client)
    job_status.status(session, "sales", watch=False, output="text", interval=1)
    assert out_of(session).startswith("Backfill        ns/sales\n")
    session = fake_session(client)
    job_status.status(session, "pj/sales", watch=False, output="text", interval=1)
    assert out_of(session).startswith("PartitionedJob  ns/sales\n")
    session = fake_session(client)
    job_status.status(session, "bf/b1", watch=False, output="text", interval=1)
    assert out_of(session).startswith("Backfill        ns/b1\n")
    with pytest.raises(CliError) as caught:
        job_status.status(fake_session(client), "ghost", watch=False, output="text", interval=1)
    assert caught.value.message == (
        'Backfill "ghost" not found in namespace "ns", nor a PartitionedJob of that name '
        "(`kubectl backfill list -n ns` lists the Backfills; PartitionedJobs: sales)"
    )


@pytest.mark.usefixtures("frozen_clock")
def test_job_status_document_and_follow_line(capsys: pytest.CaptureFixture[str]) -> None:
    session = fake_session(job_client())
    job_status.status(session, "pj/sales", watch=False, output="json", interval=1)
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "PartitionedJob" and doc["valid"] is True
    assert doc["complete"] == {"count": 305, "first": "2024-01-01", "last": "2024-10-31"}
    assert doc["outcomes"] == {
        "succeeded": 297,
        "failed": 1,
        "running": 1,
        "queued": 1,
        "missing": 5,
    }
    assert doc["partitions"]["missing"] == "31-33,303-304" and doc["ledgerKnown"] is True
    assert doc["schedule"]["lagSeconds"] == 129600
    assert doc["schedule"]["spec"]["catchUp"] == "None"
    assert doc["schedule"]["status"]["missed"]["count"] == 3
    assert [b["name"] for b in doc["backfills"]] == ["b1"]
    view = job_status.build_job_view(session, pj_object())
    assert render.job_follow_line(view, NOW) == (
        "12:00:00 297 succeeded, 1 failed, 1 running, 1 queued, 5 missing; schedule: running; "
        "lag 120000s; 3 missed (oldest 2024-02-01)"
    )


@pytest.mark.usefixtures("frozen_clock")
def test_missing_lists_ranges_and_who_runs_them() -> None:
    session = fake_session(job_client())
    code = missing_command.missing(
        session, "sales", from_=None, to=None, include_failed=False, output="text"
    )
    assert code == 0
    assert out_of(session).splitlines() == [
        'PartitionedJob  ns/sales: daily schedule "0 0 * * *" in UTC',
        "Complete        305 partitions: 2024-01-01 … 2024-10-31",
        "Outcomes        297 succeeded · 1 failed · 1 running · 1 queued · 5 missing",
        "Missing         5 partitions in 2 ranges (no outcome, no active Job)",
        "                2024-02-01 … 2024-02-03 (3)",
        "                2024-10-30 … 2024-10-31 (2)",
        "Of them         3 missed by the schedule and left by its catch-up policy or window",
        "                1 taken on by the schedule (it runs them)",
        "                1 not decided on by the schedule yet (not due, or it is suspended)",
        "                selected by unfinished Backfills: b1 (2)",
        "Fill them with: kubectl backfill missing sales -n ns --create",
    ]


@pytest.mark.usefixtures("frozen_clock")
def test_missing_with_failed_and_bounds() -> None:
    session = fake_session(job_client())
    missing_command.missing(
        session, "sales", from_="2024-10-01", to=None, include_failed=True, output="text"
    )
    out = out_of(session)
    assert "Looked at       31 partitions: 2024-10-01 … 2024-10-31" in out
    assert "Missing         3 partitions in 2 ranges (2 without an outcome, 1 failed; no " in out
    assert "                2024-10-27 (1)\n                2024-10-30 … 2024-10-31 (2)\n" in out
    assert "kubectl backfill missing sales -n ns --from 2024-10-01 --failed --create" in out
    with pytest.raises(CliError, match=r'^--to "someday" is not a partition key or timestamp$'):
        missing_command.missing(
            session, "sales", from_=None, to="someday", include_failed=False, output="text"
        )


@pytest.mark.usefixtures("frozen_clock")
def test_missing_documents_and_names(capsys: pytest.CaptureFixture[str]) -> None:
    session = fake_session(job_client())
    missing_command.missing(
        session, "sales", from_=None, to=None, include_failed=False, output="json"
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] == 5 and doc["partitions"] == "31-33,303-304"
    assert doc["ranges"] == [
        {"first": "2024-02-01", "last": "2024-02-03", "count": 3},
        {"first": "2024-10-30", "last": "2024-10-31", "count": 2},
    ]
    assert doc["schedule"] == {"left": 3, "taken": 1, "undecided": 1}
    assert doc["backfills"] == [{"name": "b1", "count": 2}]
    assert (doc["from"], doc["to"], doc["complete"]) == ("2024-01-01", "2024-10-31", 305)
    missing_command.missing(
        session, "sales", from_=None, to=None, include_failed=False, output="name"
    )
    assert capsys.readouterr().out.split() == [
        "2024-02-01",
        "2024-02-02",
        "2024-02-03",
        "2024-10-30",
        "2024-10-31",
    ]


@pytest.mark.usefixtures("frozen_clock")
def test_missing_create_lists_the_keys() -> None:
    client = job_client()
    session = fake_session(client)
    code = missing_command.missing(
        session,
        "sales",
        from_=None,
        to=None,
        include_failed=True,
        output="text",
        create=True,
        options=missing_command.FillOptions(concurrency=3, priority=5),
        name="fill-1",
        yes=True,
    )
    assert code == 0
    (created,) = client.created
    assert created["metadata"]["name"] == "fill-1"
    spec = created["spec"]
    assert spec["partitions"] == [
        "2024-02-01",
        "2024-02-02",
        "2024-02-03",
        "2024-10-27",
        "2024-10-30",
        "2024-10-31",
    ]
    assert spec["reprocess"] == "Failed" and "range" not in spec
    assert (spec["concurrency"], spec["priority"]) == (3, 5)
    out = out_of(session)
    assert "To run          6 partitions, oldest first, 3 at a time, no retries, priority 5" in out
    assert "backfill.backfill.dev/fill-1 created" in out


@pytest.mark.usefixtures("frozen_clock")
def test_missing_create_of_many_partitions_is_a_range() -> None:
    hourly = scheduled_spec(
        partitions={"schedule": {"cron": "0 * * * *", "start": "2023-01-01"}}, runs=None
    )
    fingerprint = build_space(hourly, NOW).fingerprint
    raw = pj_object(hourly, partitioning=fingerprint, runs=None)
    raw["status"]["ledger"] = {"succeeded": "100-199", "failed": ""}
    client = job_client(raw)
    client.jobs = []
    session = fake_session(client)
    missing_command.missing(
        session, "sales", from_=None, to=None, include_failed=False, output="text", create=True
    )
    (created,) = client.created
    assert created["spec"]["range"] == {"from": "2023-01-01T00:00", "to": "2024-11-01T11:00"}
    assert created["spec"]["reprocess"] == "Missing" and "partitions" not in created["spec"]
    out = out_of(session)
    assert "Missing         15992 partitions in 2 ranges" in out
    assert (
        "15992 partitions are more than the 10000 a Backfill can list: it runs the range "
        "2023-01-01T00:00 … 2024-11-01T11:00 with reprocess Missing, which skips the "
        "partitions of the range that have an outcome."
    ) in out
    assert "Skipped         100 with a recorded outcome (reprocess Missing)\n" in out


@pytest.mark.usefixtures("frozen_clock")
def test_missing_when_nothing_is_missing_or_complete() -> None:
    client = job_client(pj_object(ledger={"succeeded": "0-304", "failed": ""}))
    client.jobs = []
    session = fake_session(client)
    missing_command.missing(
        session, "sales", from_=None, to=None, include_failed=False, output="text", create=True
    )
    out = out_of(session)
    assert "Missing         none: no partition is missing\n" in out
    assert "Nothing is missing: no Backfill created." in out and not client.created
    future = scheduled_spec(partitions={"schedule": {"cron": "0 0 * * *", "start": "2030-01-01"}})
    session = fake_session(job_client(pj_object(future, runs=None)))
    assert (
        missing_command.missing(
            session, "sales", from_=None, to=None, include_failed=False, output="text"
        )
        == 0
    )
    assert "Complete        no partition is complete yet" in out_of(session)


@pytest.mark.usefixtures("frozen_clock")
def test_following_a_partitioned_job_prints_changes_until_it_is_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = [pj_object(), pj_object(), pj_object(ledger={"succeeded": "0-299", "failed": ""})]

    class Vanishing(FakeClient):
        def find(
            self, plural: str, name: str, namespace: str | None = None
        ) -> dict[str, Any] | None:
            if plural == "partitionedjobs":
                return reads.pop(0) if reads else None
            return super().find(plural, name, namespace)

    client = Vanishing(job_client().objects, list(JOBS))
    monkeypatch.setattr(job_status.time, "sleep", lambda _: None)
    session = fake_session(client)
    code = job_status.status(session, "pj/sales", watch=True, output="text", interval=1)
    assert code == 1
    assert out_of(session).splitlines() == [
        "12:00:00 297 succeeded, 1 failed, 1 running, 1 queued, 5 missing; schedule: running; "
        "lag 120000s; 3 missed (oldest 2024-02-01)",
        "12:00:00 300 succeeded, 0 failed, 1 running, 1 queued, 3 missing; schedule: running; "
        "lag 120000s; 3 missed (oldest 2024-02-01)",
    ]
    assert "PartitionedJob sales was deleted." in session.err.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.usefixtures("frozen_clock")
def test_missing_create_asks_first_unless_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    questions: list[str] = []

    def answer(question: str, **_: Any) -> bool:
        questions.append(question)
        return False

    monkeypatch.setattr(typer, "confirm", answer)
    client = job_client()
    session = fake_session(client)
    session.interactive = True
    code = missing_command.missing(
        session, "sales", from_=None, to=None, include_failed=False, output="text", create=True
    )
    assert code == 1 and not client.created
    assert len(questions) == 1
    assert re.fullmatch(
        r"Create Backfill sales-20241101-[0-9a-f]{4} \(5 partitions\)\?", questions[0]
    )
    code = missing_command.missing(
        session,
        "sales",
        from_=None,
        to=None,
        include_failed=False,
        output="text",
        create=True,
        yes=True,
    )
    assert code == 0 and len(questions) == 1 and len(client.created) == 1


class PatchingClient(FakeClient):
    """A FakeClient that records merge patches of PartitionedJobs."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        super().__init__(objects)
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def patch_partitioned_job(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((name, patch))
        return self.get("partitionedjobs", name)


def test_suspend_and_resume_a_schedule_with_pj_prefix() -> None:
    client = PatchingClient({("partitionedjobs", "sales"): pj_object()})
    session = fake_session(client)
    assert manage.set_suspend(session, "pj/sales", True) == 0
    assert client.patches == [("sales", {"spec": {"runs": {"suspend": True}}})]
    assert "schedule suspended" in out_of(session)
    # Already in the asked state: nothing is patched.
    assert manage.set_suspend(fake_session(client), "pj/sales", False) == 0
    assert len(client.patches) == 1


def test_suspend_of_a_job_without_runs_is_a_clear_error() -> None:
    client = PatchingClient({("partitionedjobs", "sales"): pj_object(daily_job())})
    with pytest.raises(CliError, match="has no scheduled runs"):
        manage.set_suspend(fake_session(client), "pj/sales", True)
    assert client.patches == []


# ------------------------------------------------- issue 13: the command line at 1,000,000


def million_view(failed: IndexSet, **status: Any) -> render.StatusView:
    """A finished Backfill of 1,000,000 minutely partitions with these failures, as stored."""
    everything = IndexSet.from_range(0, 999_999)
    ok = everything.difference(failed)
    spec = backfill_spec(range={"from": "2023-01-01T00:00", "to": "2024-11-25T10:39"})
    stored = BackfillStatus.model_validate(
        {
            "phase": "Failed",
            "selection": {"first": "2023-01-01T00:00", "last": "2024-11-25T10:39", "count": 10**6},
            "counts": {"total": 10**6, "succeeded": len(ok), "failed": len(failed)},
            "partitions": {"succeeded": ok.stored(), "failed": failed.stored()},
            "startTime": "2024-10-01T00:00:00Z",
            "completionTime": "2024-10-31T00:00:00Z",
            **status,
        }
    ).compacted()
    status_model = BackfillStatus.model_validate(json.loads(json.dumps(stored.to_api())))
    start = datetime(2023, 1, 1, tzinfo=UTC)
    return render.StatusView(
        name="big",
        namespace="ns",
        job="minutely",
        spec=spec,
        status=status_model,
        grid=render.GridData(
            everything, lambda p: f"{start + timedelta(minutes=p):%Y-%m-%dT%H:%M}"
        ),
    )


def test_status_document_of_a_million_partitions_is_exact_and_bounded() -> None:
    rng = random.Random(4)
    patterns = {
        "every other": IndexSet.from_indices(range(0, 10**6, 2)),
        "random": IndexSet.from_indices(i for i in range(10**6) if rng.random() < 0.5),
    }
    for name, failed in patterns.items():
        doc = documents.status_document(million_view(failed), NOW)
        assert doc["counts"]["failed"] == len(failed) and doc["counts"]["total"] == 10**6
        assert doc["progress"] == {"done": 10**6, "total": 10**6, "percent": 100.0}
        assert IndexSet.parse(doc["partitions"]["failed"]) == failed, name
        assert (
            doc["partitions"]["succeeded"]
            == IndexSet.from_range(0, 999_999).difference(failed).stored()
        )
        # Every set decodes alone (no relative forms): about 1 bit per partition per set.
        assert len(json.dumps(doc)) < 2 * 10**6 // 8 * 4 // 3 + 10_000, name


def test_grid_of_a_million_scattered_failures_summarises_each_cell() -> None:
    """2,000 cells of 500 partitions: a cell with a failure is drawn failed (the worst state)."""
    failed = IndexSet.from_indices(range(0, 500_000, 2))  # every other one in the first half
    view = million_view(failed)
    sets = grid_sets(view.status.partitions)
    assert sets["failed"] == failed
    cells, size = render.grid_cells(IndexSet.from_range(0, 999_999), sets, 2000)
    assert size == 500 and len(cells) == 2000
    assert {c.state for c in cells[:1000]} == {"failed"}
    assert {c.state for c in cells[1000:]} == {"succeeded"}
    out = text_of(render.render_status(view, NOW, 120, color=False), width=120)
    rows = [line for line in out.splitlines() if line.startswith("20")]
    assert len(rows) == 20 and "(one cell = 500 partitions)" in out
    assert rows[0].endswith("X" * 100) and rows[-1].endswith("#" * 100)


def test_failures_block_counts_what_it_does_not_list() -> None:
    view = million_view(
        IndexSet.from_indices(range(0, 10**6, 2)),
        failures=[
            {"key": "2024-11-25T10:38", "index": 999_998, "job": "j", "attempts": 1},
        ],
        failuresOmitted=499_999,
    )
    out = text_of(render.render_status(view, NOW, 120, color=False), width=120)
    assert "Failures (500000)" in out and "… and 499999 more" in out
    assert documents.status_document(view, NOW)["failuresOmitted"] == 499_999


def test_follow_line_counts_retries_of_every_group() -> None:
    view = status_view()
    retrying = view.status.model_copy(
        update={
            "failures": [],
            "retries": [
                RetryGroup(attempts=1, retry_at="2024-11-01T12:01:00Z", partitions="6-8"),
                RetryGroup(attempts=2, retry_at="2024-11-01T12:02:00Z", partitions="4,9"),
            ],
        }
    )
    line = render.follow_line(render.StatusView("b1", "ns", "sales", view.spec, retrying), NOW)
    assert "(4 waiting to retry)" in line  # 4 is running its retry
    doc = documents.status_document(
        render.StatusView("b1", "ns", "sales", view.spec, retrying), NOW
    )
    assert doc["retries"][1] == {
        "attempts": 2,
        "retryAt": "2024-11-01T12:02:00Z",
        "partitions": "4,9",
    }


def test_plan_document_of_a_million_partitions_lists_a_bounded_head() -> None:
    job = PartitionedJobSpec.model_validate(
        {
            "partitions": {"schedule": {"cron": "* * * * *", "start": "2022-11-01"}},
            "jobTemplate": TEMPLATE,
        }
    )
    spec = backfill_spec(
        range={"from": "2022-11-01T00:00", "to": "2024-09-25T10:39"}, order="NewestFirst"
    )
    fingerprint = build_space(job, NOW).fingerprint
    odd = IndexSet.from_indices(range(1, 10**6, 2))
    status = PartitionedJobStatus(
        partitioning=fingerprint, ledger=PartitionLedger(succeeded=odd.stored())
    )
    preview = preview_of(job, status, spec, NOW)  # reprocess Missing: every other one runs
    doc = documents.plan_document(
        job="minutely", namespace="ns", description="minutely", preview=preview, spec=spec
    )
    assert doc["count"] == 500_000 and doc["selection"]["count"] == 10**6
    assert len(doc["partitions"]) == documents.PLAN_DOCUMENT_PARTITIONS
    assert doc["partitionsOmitted"] == 500_000 - documents.PLAN_DOCUMENT_PARTITIONS
    assert [p["index"] for p in doc["partitions"][:2]] == [999_998, 999_996]  # launch order
    assert doc["partitions"][0]["key"] == "2024-09-25T10:38"
    assert IndexSet.parse(doc["indices"]) == IndexSet.from_indices(range(0, 10**6, 2))
    assert doc["skipped"]["count"] == 500_000
    assert IndexSet.parse(doc["skipped"]["indices"]) == odd
    assert len(doc["skipped"]["partitions"]) == documents.PLAN_DOCUMENT_PARTITIONS
    assert len(json.dumps(doc)) < 2 * 1024 * 1024
    few = backfill_spec(range={"from": "2022-11-01T00:00", "to": "2022-11-01T00:09"})
    small = documents.plan_document(
        job="minutely",
        namespace="ns",
        description="minutely",
        preview=preview_of(job, PartitionedJobStatus(), few, NOW),
        spec=few,
    )
    assert len(small["partitions"]) == 10 and small["partitionsOmitted"] == 0
    assert small["indices"] == "0-9" and small["skipped"]["indices"] == ""
