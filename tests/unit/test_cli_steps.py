"""kubectl backfill and steps inside a partition (issue 12), no cluster: the flags of ``create``
and ``plan`` (``--steps``, ``--env``, ``--label``, ...), the preview of a job with steps, the
status grid with one block of rows per step (and ``--rollup``), the new cell states
(upstream failed, marked), ``status pj/NAME`` of a job with steps, ``retry-failed`` re-running
only the failed steps, and ``logs --step``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from test_cli_render import FakeClient, fake_session, out_of, text_of

from backfill_operator import clock
from backfill_operator.api.model import (
    PARTITION_STATES,
    RESERVED_ENV,
    BackfillSpec,
    BackfillStatus,
    PartitionedJobSpec,
)
from backfill_operator.cli import app, documents, render
from backfill_operator.cli.commands import job_status, logs, manage, specs, submit
from backfill_operator.cli.commands import status as bstatus
from backfill_operator.cli.errors import CliError
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.selection import build_space

NOW = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
TEMPLATE: dict[str, Any] = {
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
}
KEYS = [f"2024-03-{d:02d}" for d in range(8, 15)]


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def stepped_job(**kw: Any) -> PartitionedJobSpec:
    """ingest -> validate -> publish, daily from 2024-01-01 (declared out of order)."""
    raw: dict[str, Any] = {
        "partitions": {"schedule": {"cron": "0 0 * * *", "start": "2024-01-01"}},
        "steps": [
            {"name": "publish", "dependsOn": ["validate"], "jobTemplate": TEMPLATE},
            {"name": "ingest", "jobTemplate": TEMPLATE},
            {"name": "validate", "dependsOn": ["ingest"], "jobTemplate": TEMPLATE},
        ],
    }
    raw.update(kw)
    return PartitionedJobSpec.model_validate(raw)


def plain_job() -> PartitionedJobSpec:
    return PartitionedJobSpec.model_validate(
        {
            "partitions": {"schedule": {"cron": "0 0 * * *", "start": "2024-01-01"}},
            "jobTemplate": TEMPLATE,
        }
    )


FP = build_space(stepped_job(), NOW).fingerprint


def pj_body(spec: PartitionedJobSpec | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "api",
            "namespace": "ns",
            "generation": 1,
            "creationTimestamp": "2024-10-01T00:00:00Z",
        },
        "spec": (spec or stepped_job()).to_api(),
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Valid", "message": "ok"}],
            "partitioning": FP,
            **status,
        },
    }


# ------------------------------------------------------------------------- states, glyphs


def test_every_partition_state_has_a_glyph_a_style_and_a_place() -> None:
    assert set(render.style.STATE_ORDER) == set(PARTITION_STATES)
    for state in render.CELL_STATES:
        assert state in render.GLYPHS and state in render.STYLES
    assert len(set(render.GLYPHS.values())) == len(render.GLYPHS)


def test_grid_cells_draw_upstream_failed_and_marked() -> None:
    selection = IndexSet.parse("0-5")
    sets = {
        "succeeded": IndexSet.parse("0"),
        "failed": IndexSet.parse("1"),
        "upstream_failed": IndexSet.parse("2"),
        "marked": IndexSet.parse("3"),
        "skipped": IndexSet.parse("4"),
    }
    cells, size = render.grid_cells(selection, sets, 100)
    assert size == 1
    assert [c.state for c in cells] == [
        "succeeded",
        "failed",
        "upstream_failed",
        "marked",
        "skipped",
        "pending",
    ]
    # Buckets: failed wins, then upstream failed; all marked (or marked and skipped) is
    # marked; succeeded with marked is succeeded.
    cells, size = render.grid_cells(
        IndexSet.parse("0-7"),
        {
            "failed": IndexSet.parse("1"),
            "upstream_failed": IndexSet.parse("0,2"),
            "running": IndexSet.parse("3"),
            "marked": IndexSet.parse("4-6"),
            "skipped": IndexSet.parse("7"),
            "succeeded": IndexSet.parse(""),
        },
        4,
    )
    assert size == 2
    assert [c.state for c in cells] == ["failed", "upstream_failed", "marked", "marked"]


def test_legend_lists_upstream_failed_and_marked_only_when_drawn() -> None:
    cells = [render.Cell(0, 0, "succeeded"), render.Cell(1, 1, "pending")]
    out = text_of(render.render_grid(cells, 1, KEYS.__getitem__, 10, color=False))
    assert "upstream" not in out and "marked" not in out
    cells.append(render.Cell(2, 2, "upstream_failed"))
    cells.append(render.Cell(3, 3, "marked"))
    out = text_of(render.render_grid(cells, 1, KEYS.__getitem__, 10, color=False))
    assert out.splitlines() == [
        "2024-03-08 #.um",
        "# succeeded  X failed  u upstream failed  > running  . pending  s skipped  m marked",
    ]


def test_progress_counts_upstream_failed_and_marked_as_done() -> None:
    status = BackfillStatus.model_validate(
        {
            "phase": "Running",
            "counts": {
                "total": 10,
                "succeeded": 3,
                "failed": 1,
                "upstreamFailed": 2,
                "marked": 2,
                "pending": 2,
            },
            "startTime": "2024-11-01T11:58:00Z",
        }
    )
    prog = render.progress_of(status, NOW)
    assert (prog.done, prog.upstream_failed, prog.marked) == (8, 2, 2)
    assert prog.rate_per_minute == 2.0  # succeeded + failed only
    bar = render.progress_bar(prog, 12, color=False).plain
    assert bar == "[#####Xuu..]"


def test_step_grid_rows_share_the_rows_out() -> None:
    assert render.grid.step_lines(3) == 6
    assert render.grid.step_lines(50) == 1
    cells = [render.Cell(i, i, "succeeded") for i in range(5)]
    out = text_of(
        render.render_step_grid(
            [("ingest", cells), ("validate", cells[:3] + cells[3:])],
            1,
            KEYS.__getitem__,
            3,
            color=False,
        )
    )
    assert out.splitlines() == [
        "ingest    2024-03-08 ###",
        "          2024-03-11 ##",
        "validate  2024-03-08 ###",
        "          2024-03-11 ##",
        "# succeeded  X failed  > running  . pending  s skipped",
    ]


# ---------------------------------------------------------------------- Backfill status


def stepped_status(**kw: Any) -> BackfillStatus:
    raw: dict[str, Any] = {
        "phase": "Running",
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "InProgress", "message": "running"}
        ],
        "selection": {"first": "2024-03-08", "last": "2024-03-14", "count": 7},
        "counts": {"total": 7, "succeeded": 4, "failed": 1, "running": 1, "marked": 1},
        "partitions": {"succeeded": "0-2,6", "failed": "3", "running": "4", "marked": "5"},
        "steps": [
            {
                "name": "ingest",
                "counts": {"total": 7, "succeeded": 5, "running": 1, "marked": 1},
                "partitions": {"succeeded": "0-3,6", "running": "4", "marked": "5"},
            },
            {
                "name": "validate",
                "counts": {"total": 7, "succeeded": 4, "failed": 1, "pending": 1, "marked": 1},
                "partitions": {"succeeded": "0-2,6", "failed": "3", "marked": "5"},
            },
            {
                "name": "publish",
                "counts": {
                    "total": 7,
                    "succeeded": 4,
                    "upstreamFailed": 1,
                    "pending": 1,
                    "marked": 1,
                },
                "partitions": {"succeeded": "0-2,6", "upstreamFailed": "3", "marked": "5"},
            },
        ],
        "running": [
            {
                "key": "2024-03-12",
                "index": 4,
                "step": "ingest",
                "job": "j-ingest",
                "attempt": 1,
                "startTime": "2024-11-01T11:59:30Z",
            }
        ],
        "failures": [
            {
                "key": "2024-03-11",
                "index": 3,
                "step": "validate",
                "job": "j-validate",
                "attempts": 1,
                "message": "BackoffLimitExceeded: boom",
            }
        ],
        "startTime": "2024-11-01T11:58:00Z",
    }
    raw.update(kw)
    return BackfillStatus.model_validate(raw)


def stepped_view(status: BackfillStatus | None = None) -> render.StatusView:
    spec = BackfillSpec.model_validate(
        {"jobRef": {"name": "api"}, "range": {"from": "2024-03-08", "to": "2024-03-14"}}
    )
    return render.StatusView(
        name="b1",
        namespace="ns",
        job="api",
        spec=spec,
        status=status or stepped_status(),
        description="daily",
        grid=render.GridData(IndexSet.parse("0-6"), KEYS.__getitem__),
    )


def test_status_of_a_backfill_with_steps_has_a_row_per_step() -> None:
    out = text_of(render.render_status(stepped_view(), NOW, 100, color=False))
    lines = out.splitlines()
    for line in [
        "Counts          4 succeeded · 1 failed · 1 running · 0 pending · 0 skipped · 1 marked",
        "Steps           ingest    6/7 done: 5 succeeded · 1 running · 1 marked",
        "                validate  6/7 done: 4 succeeded · 1 failed · 1 pending · 1 marked",
        "                publish   6/7 done: 4 succeeded · 1 upstream failed · 1 pending "
        "· 1 marked",
        "ingest    2024-03-08 ####>m#",
        "validate  2024-03-08 ###X.m#",
        "publish   2024-03-08 ###u.m#",
        "# succeeded  X failed  u upstream failed  > running  . pending  s skipped  m marked",
        "  2024-03-12  ingest  attempt 1, 30s  job/j-ingest",
        "  2024-03-11  validate  attempt 1/1, failed for good",
    ]:
        assert line in lines, line
    rolled = text_of(render.render_status(stepped_view(), NOW, 100, color=False, rollup=True))
    assert "2024-03-08 ###X>m#" in rolled.splitlines()
    assert "validate  2024-03-08" not in rolled
    assert "Steps           ingest" in rolled  # the counts per step stay


def test_a_steps_running_entries_count_as_running_in_its_row() -> None:
    """A Job started after the step's sets were written still shows as running (queued)."""
    status = stepped_status()
    step = status.steps[0].model_copy(
        update={"partitions": status.steps[0].partitions.model_copy(update={"running": ""})}
    )
    running = [
        *status.running,
        status.running[0].model_copy(update={"index": 6, "key": "2024-03-14", "queued": True}),
    ]
    sets = render.views.step_grid_sets(step, running)
    assert (str(sets["running"]), str(sets["queued"]), str(sets["succeeded"])) == (
        "4",
        "6",
        "0-3",
    )


def test_follow_line_and_document_of_a_backfill_with_steps() -> None:
    view = stepped_view()
    assert render.follow_line(view, NOW) == (
        "12:00:00 Running 6/7 done: 4 succeeded, 1 failed, 1 running, 0 pending, 1 marked; ETA 24s"
    )
    upstream = stepped_status(counts={"total": 7, "failed": 1, "upstreamFailed": 2, "pending": 4})
    line = render.follow_line(stepped_view(upstream), NOW)
    assert "0 succeeded, 1 failed, 2 upstream failed, 0 running, 4 pending;" in line
    doc = documents.status_document(view, NOW)
    assert [s["name"] for s in doc["steps"]] == ["ingest", "validate", "publish"]
    assert doc["steps"][2]["partitions"]["upstreamFailed"] == "3"
    assert doc["counts"]["marked"] == 1 and doc["running"][0]["step"] == "ingest"
    json.dumps(doc)


def test_a_backfill_without_steps_reads_as_before() -> None:
    status = stepped_status(steps=[], running=[], failures=[])
    out = text_of(render.render_status(stepped_view(status), NOW, 100, color=False))
    assert "Steps" not in out
    assert "2024-03-08 ###X>m#" in out.splitlines()


def test_the_last_line_of_a_followed_backfill_with_steps() -> None:
    status = stepped_status(
        phase="Failed",
        counts={"total": 7, "succeeded": 4, "failed": 1, "upstreamFailed": 2},
        running=[],
    )
    session = fake_session(FakeClient({}), width=300)
    bstatus._print_ending(session, stepped_view(status), 1)
    assert out_of(session) == (
        "Backfill b1 failed: 3 of 7 partitions failed (2024-03-11 validate, …); 2 of them only "
        "upstream failed (a step they depend on failed or has no success). Run their failed "
        "steps again with: kubectl backfill retry-failed b1 -n ns\n"
    )
    view = stepped_view(stepped_status(phase="Succeeded", counts={"total": 7, "marked": 7}))
    marking = render.StatusView(
        **{**view.__dict__, "spec": view.spec.model_copy(update={"mark_succeeded": True})}
    )
    session = fake_session(FakeClient({}), width=300)
    bstatus._print_ending(session, marking, 0)
    assert out_of(session) == (
        "Backfill b1 succeeded: 7 of 7 partitions marked succeeded without running.\n"
    )


# ------------------------------------------------------------------------- flags, specs


def test_parse_steps() -> None:
    assert specs.parse_steps(None) is None
    assert specs.parse_steps(["a,b", " c ", "a"]) == ["a", "b", "c"]
    for bad, message in [
        ([" , "], "--steps is empty"),
        (["Bad_Name"], "not a step name"),
        (["x" * 41], "at most 40"),
    ]:
        with pytest.raises(CliError, match=message):
            specs.parse_steps(bad)


@pytest.mark.parametrize("name", RESERVED_ENV)
def test_env_cannot_override_the_operators_variables(name: str) -> None:
    with pytest.raises(CliError) as caught:
        specs.parse_env([f"{name}=x"])
    assert caught.value.message.startswith(f"--env {name}: the operator sets {name}")


def test_parse_env() -> None:
    assert specs.parse_env(None) is None
    assert specs.parse_env(["MODE=full", "TARGET=$(PARTITION_KEY)", "EMPTY=", "Q=a=b"]) == [
        {"name": "MODE", "value": "full"},
        {"name": "TARGET", "value": "$(PARTITION_KEY)"},
        {"name": "EMPTY", "value": ""},
        {"name": "Q", "value": "a=b"},
    ]
    for bad, message in [
        (["MODE"], "is not KEY=VALUE"),
        (["=x"], "is not KEY=VALUE"),
        (["1X=a"], "not a valid variable name"),
        (["A=1", "A=2"], "given twice"),
    ]:
        with pytest.raises(CliError, match=message):
            specs.parse_env(bad)


def test_parse_labels_and_annotations() -> None:
    assert specs.parse_pairs(["team=data", "example.com/run=r-1", "empty="], "--label") == {
        "team": "data",
        "example.com/run": "r-1",
        "empty": "",
    }
    assert specs.parse_pairs(["note=any text: here"], "--annotation") == {"note": "any text: here"}
    for values, flag, message in [
        (["backfill.dev/step=x"], "--label", "are the operator's own"),
        (["backfill.dev/anything=x"], "--annotation", "are the operator's own"),
        (["Bad_/x=1"], "--label", "is not a DNS subdomain"),
        (["-x=1"], "--label", "not a valid key name"),
        (["k=not ok"], "--label", "not a valid label value"),
        (["k=" + "v" * 64], "--label", "not a valid label value"),
        (["k=1", "k=2"], "--annotation", "given twice"),
    ]:
        with pytest.raises(CliError, match=message):
            specs.parse_pairs(values, flag)


def test_build_spec_sets_the_step_fields() -> None:
    spec = specs.build_spec(
        job="api",
        from_="2024-03-10",
        to="2024-03-12",
        partitions=None,
        concurrency=3,
        order=BackfillSpec.model_fields["order"].default,
        reprocess=BackfillSpec.model_fields["reprocess"].default,
        retries=0,
        retry_backoff_seconds=10,
        max_failed=None,
        dry_run=False,
        steps=["validate"],
        include_downstream=True,
        ignore_dependencies=True,
        ignore_first_depends_on_past=True,
        env=[{"name": "MODE", "value": "full"}],
        job_labels={"team": "data"},
        job_annotations={"note": "x"},
    )
    api = spec.to_api()
    assert api["steps"] == ["validate"]
    assert api["includeDownstream"] is True and api["includeUpstream"] is False
    assert api["ignoreDependencies"] is True and api["ignoreFirstDependsOnPast"] is True
    assert api["markSucceeded"] is False
    assert api["env"] == [{"name": "MODE", "value": "full"}]
    assert (api["jobLabels"], api["jobAnnotations"]) == ({"team": "data"}, {"note": "x"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "PARTITION_KEY=x"], "--env PARTITION_KEY: the operator sets PARTITION_KEY"),
        (["--env", "STEP_NAME=x"], "--env STEP_NAME: the operator sets STEP_NAME"),
        (["--env", "NOEQUALS"], '--env "NOEQUALS" is not KEY=VALUE'),
        (["--label", "backfill.dev/step=x"], "keys under backfill.dev/ are the operator's own"),
        (["--annotation", "backfill.dev/x=y"], "keys under backfill.dev/ are the operator's own"),
        (["--include-downstream"], "--include-downstream needs --steps"),
        (["--include-upstream"], "--include-upstream needs --steps"),
        (["--steps", "Bad"], '--steps: "Bad" is not a step name'),
    ],
)
def test_step_flag_errors_exit_2_before_anything_is_created(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = app.main(["--kubeconfig", "/nonexistent", "create", "api", "--from", "x", *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_plan_takes_the_step_selection_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code = app.main(["plan", "api", "--from", "x", "--include-upstream"])
    assert code == 2 and "--include-upstream needs --steps" in capsys.readouterr().err


# --------------------------------------------------------------------- create and plan


def api_client(pj: dict[str, Any] | None = None, **backfills: dict[str, Any]) -> FakeClient:
    objects = {("partitionedjobs", "api"): pj or pj_body()}
    objects.update({("backfills", name): body for name, body in backfills.items()})
    return FakeClient(objects)


def build(**kw: Any) -> BackfillSpec:
    base: dict[str, Any] = {
        "job": "api",
        "from_": "2024-03-10",
        "to": "2024-03-12",
        "partitions": None,
        "concurrency": 4,
        "order": BackfillSpec.model_fields["order"].default,
        "reprocess": BackfillSpec.model_fields["reprocess"].default,
        "retries": 0,
        "retry_backoff_seconds": 10,
        "max_failed": None,
        "dry_run": False,
    }
    base.update(kw)
    return specs.build_spec(**base)


@pytest.mark.usefixtures("frozen_clock")
def test_create_with_steps_previews_them_and_creates_the_spec() -> None:
    client = api_client()
    session = fake_session(client, width=120)
    spec = build(
        steps=["validate"],
        include_downstream=True,
        env=specs.parse_env(["MODE=full"]),
        job_labels={"team": "data"},
    )
    assert submit.create(session, spec, name="rerun", yes=True, wait=False) == 0
    lines = out_of(session).splitlines()
    assert lines[:8] == [
        'PartitionedJob  ns/api: daily schedule "0 0 * * *" in UTC',
        "Selected        3 partitions: 2024-03-10 … 2024-03-12",
        "To run          3 partitions, oldest first, 4 at a time, no retries",
        "Steps           validate, publish (2 of 3; not run: ingest)",
        "                per partition, a step runs when it has no outcome recorded (reprocess "
        "Missing) or a step it depends on runs",
        "Partitions      2024-03-10, 2024-03-11, 2024-03-12",
        "Env             MODE=full",
        "Labels          team=data",
    ]
    (created,) = client.created
    assert created["spec"]["steps"] == ["validate"]
    assert created["spec"]["includeDownstream"] is True
    assert created["spec"]["env"] == [{"name": "MODE", "value": "full"}]
    assert created["spec"]["jobLabels"] == {"team": "data"}


@pytest.mark.usefixtures("frozen_clock")
def test_preview_of_every_step_and_of_mark_succeeded() -> None:
    session = fake_session(api_client(), width=120)
    spec = build(mark_succeeded=True, reprocess=BackfillSpec.model_fields["reprocess"].default)
    assert submit.create(session, spec, name="mark", yes=True, wait=False) == 0
    out = out_of(session)
    assert (
        "To mark         3 partitions: recorded as succeeded without running a Job "
        "(--mark-succeeded)" in out
    )
    assert "Steps           all 3: ingest, validate, publish\n" in out
    assert (
        "a step is marked when it has no outcome recorded (reprocess Missing) or a step it " in out
    )


@pytest.mark.usefixtures("frozen_clock")
def test_preview_skips_a_partition_only_when_every_step_has_an_outcome() -> None:
    """2024-03-10 (index 69): every step succeeded; 2024-03-11: publish has no outcome."""
    body = pj_body(
        ledger={
            "succeeded": "69",
            "steps": [
                {"name": "ingest", "succeeded": "69-70"},
                {"name": "validate", "succeeded": "69-70"},
                {"name": "publish", "succeeded": "69"},
            ],
        }
    )
    session = fake_session(api_client(body), width=140)
    planned = submit.plan_backfill(session, build())
    assert (str(planned.preview.skipped), str(planned.preview.to_run)) == ("69", "70-71")
    session.out.print(
        render.render_preview(
            job="api",
            namespace="ns",
            description="daily",
            preview=planned.preview,
            spec=planned.spec,
            name=None,
            steps=planned.steps,
            all_steps=planned.all_steps,
        )
    )
    assert (
        "Skipped         1 with a recorded outcome of every step (reprocess Missing; "
        "--reprocess failed|all to run them)" in out_of(session)
    )


@pytest.mark.usefixtures("frozen_clock")
def test_unknown_steps_and_steps_of_a_job_without_steps_are_usage_errors() -> None:
    with pytest.raises(CliError) as caught:
        submit.plan_backfill(fake_session(api_client()), build(steps=["nope"]))
    assert caught.value.message.startswith('step "nope" is not a step of the PartitionedJob')
    plain = api_client(pj_body(plain_job()))
    with pytest.raises(CliError) as caught:
        submit.plan_backfill(fake_session(plain), build(steps=["ingest"]))
    assert caught.value.message.startswith("--steps selects steps, but the PartitionedJob has")
    assert plain.created == []
    planned = submit.plan_backfill(fake_session(plain), build())
    assert planned.steps is None and planned.all_steps is None


@pytest.mark.usefixtures("frozen_clock")
def test_plan_document_names_the_steps(capsys: pytest.CaptureFixture[str]) -> None:
    session = fake_session(api_client())
    assert submit.plan(session, build(steps=["ingest"], include_downstream=True), "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["steps"] == ["ingest", "validate", "publish"]
    assert doc["markSucceeded"] is False and doc["count"] == 3


# ------------------------------------------------------------------------- retry-failed


def failed_backfill(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "jobRef": {"name": "api"},
        "range": {"from": "2024-03-08", "to": "2024-03-14"},
        "concurrency": 5,
    }
    base.update(spec)
    return {
        "metadata": {"name": "b1", "namespace": "ns", "generation": 1},
        "spec": base,
        "status": {
            "phase": "Failed",
            "partitioning": FP,
            "counts": {"total": 7, "succeeded": 4, "failed": 1, "upstreamFailed": 2},
            "partitions": {"succeeded": "67-68,72-73", "failed": "70", "upstreamFailed": "69,71"},
            "steps": [
                {"name": "validate", "counts": {"total": 7}, "partitions": {"failed": "70"}},
                {"name": "publish", "counts": {"total": 7}, "partitions": {}},
            ],
        },
    }


@pytest.mark.usefixtures("frozen_clock")
def test_retry_failed_reruns_only_the_failed_steps() -> None:
    original = failed_backfill(
        steps=["validate"],
        includeDownstream=True,
        ignoreDependencies=True,
        ignoreFirstDependsOnPast=True,
        env=[{"name": "MODE", "value": "full"}, {"name": "S", "valueFrom": {"secretKeyRef": {}}}],
        jobLabels={"team": "data"},
        jobAnnotations={"note": "x"},
        retries={"limit": 2, "backoffSeconds": 5},
    )
    client = api_client(b1=original)
    session = fake_session(client, width=140)
    code = manage.retry_failed(
        session, "b1", new_name="b1-again", concurrency=None, retries=None, yes=True, wait=False
    )
    assert code == 0
    (created,) = client.created
    spec = created["spec"]
    assert spec["partitions"] == ["2024-03-10", "2024-03-11", "2024-03-12"]
    assert spec["reprocess"] == "Failed"
    assert spec["steps"] == ["validate"] and spec["includeDownstream"] is True
    assert spec["ignoreDependencies"] is True and spec["ignoreFirstDependsOnPast"] is True
    assert spec["env"] == original["spec"]["env"]
    assert (spec["jobLabels"], spec["jobAnnotations"]) == ({"team": "data"}, {"note": "x"})
    assert spec["concurrency"] == 5 and spec["retries"]["limit"] == 2
    assert created["metadata"]["labels"] == {"backfill.dev/retry-of": "b1"}
    out = out_of(session)
    assert "Steps           validate, publish (2 of 3; not run: ingest)" in out
    assert "a step runs when it has no success recorded (reprocess Failed)" in out
    assert "Env             MODE=full, S (valueFrom)" in out


@pytest.mark.usefixtures("frozen_clock")
def test_retry_failed_of_a_job_without_steps_still_runs_them_all() -> None:
    body = failed_backfill()
    body["status"]["steps"] = []
    body["status"]["partitions"] = {"succeeded": "67-69,71-73", "failed": "70"}
    body["status"]["partitioning"] = build_space(plain_job(), NOW).fingerprint
    client = api_client(pj_body(plain_job()), b1=body)
    manage.retry_failed(
        fake_session(client),
        "b1",
        new_name="x",
        concurrency=None,
        retries=None,
        yes=True,
        wait=False,
    )
    (created,) = client.created
    assert created["spec"]["partitions"] == ["2024-03-11"]
    assert created["spec"]["reprocess"] == "All" and "steps" not in created["spec"]


def test_nothing_to_retry_when_nothing_failed_or_upstream_failed() -> None:
    body = failed_backfill()
    body["status"]["partitions"] = {"succeeded": "67-73"}
    session = fake_session(api_client(b1=body))
    code = manage.retry_failed(
        session, "b1", new_name=None, concurrency=None, retries=None, yes=True, wait=False
    )
    assert code == 0 and "has no failed partitions; nothing to retry" in out_of(session)


# ------------------------------------------------------------------- status pj/NAME


def step_job(index: int, step: str, *, suspend: bool = False) -> dict[str, Any]:
    labels = {
        "backfill.dev/partitioned-job": "api",
        "backfill.dev/partition-index": str(index),
        "backfill.dev/attempt": "1",
        "backfill.dev/partitioning": FP,
        "backfill.dev/backfill": "b1",
        "backfill.dev/step": step,
    }
    return {
        "metadata": {"name": f"job-{index}-{step}", "labels": labels},
        "spec": {"suspend": suspend},
        "status": {},
    }


def stepped_pj_client() -> FakeClient:
    """Complete: 0-304. Ingest succeeded 0-299, validate 0-298 (299 failed), publish 0-297
    (299 not run); validate of 300 runs, publish of 301 is queued."""
    body = pj_body(
        ledger={
            "succeeded": "0-297",
            "failed": "299",
            "steps": [
                {"name": "ingest", "succeeded": "0-299"},
                {"name": "validate", "succeeded": "0-298", "failed": "299"},
                {"name": "publish", "succeeded": "0-297"},
            ],
        },
        runs={
            "partitioning": FP,
            "counts": {"total": 3, "succeeded": 1, "failed": 1, "upstreamFailed": 1},
            "steps": [
                {"name": "ingest", "counts": {"total": 3, "succeeded": 3}},
                {"name": "validate", "counts": {"total": 3, "succeeded": 2, "failed": 1}},
                {
                    "name": "publish",
                    "counts": {"total": 3, "succeeded": 1, "failed": 0, "upstreamFailed": 1},
                },
            ],
        },
    )
    body["spec"]["runs"] = {"delaySeconds": 600}
    jobs = [step_job(300, "validate"), step_job(301, "publish", suspend=True)]
    return FakeClient({("partitionedjobs", "api"): body}, jobs)


@pytest.mark.usefixtures("frozen_clock")
def test_status_of_a_partitioned_job_with_steps() -> None:
    session = fake_session(stepped_pj_client())
    assert job_status.status(session, "pj/api", watch=False, output="text", interval=1) == 0
    lines = out_of(session).splitlines()
    for line in [
        "Outcomes        298 succeeded · 1 failed · 1 running · 1 queued · 4 missing",
        "Steps           ingest    300 succeeded · 0 failed · 0 running · 5 missing",
        "                validate  299 succeeded · 1 failed · 1 running · 4 missing",
        "                publish   298 succeeded · 0 failed · 0 running · 1 queued · 6 missing",
        "Scheduled runs  1 succeeded · 1 failed · 1 upstream failed · 0 running · 0 pending "
        "· 0 skipped",
        "By step         ingest    3/3 done: 3 succeeded",
        "                validate  3/3 done: 2 succeeded · 1 failed",
        "                publish   2/3 done: 1 succeeded · 1 upstream failed",
        "# succeeded  X failed  > running  q queued  . missing",
    ]:
        assert line in lines, line
    names = [line.split()[0] for line in lines if line.endswith(" 2024-01-01 " + "#" * 79)]
    assert names == ["ingest", "validate", "publish"]  # the graph's order, not the declared one
    last = [line for line in lines if " 2024-08-25 " in line]  # 4 rows a step, 1 cell a partition
    assert [line[-6:] for line in last] == ["#.....", "X>....", "..q..."]
    session = fake_session(stepped_pj_client())
    job_status.status(session, "pj/api", watch=False, output="text", interval=1, rollup=True)
    rolled = out_of(session)
    assert "validate  2024-01-01" not in rolled
    assert "Steps           ingest" in rolled


@pytest.mark.usefixtures("frozen_clock")
def test_job_status_document_has_each_steps_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    session = fake_session(stepped_pj_client())
    job_status.status(session, "pj/api", watch=False, output="json", interval=1)
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["steps"]] == ["ingest", "validate", "publish"]
    assert doc["steps"][1]["outcomes"] == {
        "succeeded": 299,
        "failed": 1,
        "running": 1,
        "queued": 0,
        "missing": 4,
    }
    assert doc["steps"][2]["partitions"]["queued"] == "301"
    assert doc["outcomes"]["succeeded"] == 298


# --------------------------------------------------------------------------------- logs


def test_logs_of_a_partition_with_several_steps_needs_step() -> None:
    body = failed_backfill()
    body["metadata"]["uid"] = "u1"
    jobs = [
        {
            "metadata": {
                "name": f"b1-{step}",
                "labels": {"backfill.dev/step": step, "backfill.dev/attempt": "1"},
                "annotations": {"backfill.dev/partition-key": "2024-03-11"},
            }
        }
        for step in ("ingest", "validate")
    ]
    client = FakeClient({("partitionedjobs", "api"): pj_body(), ("backfills", "b1"): body}, jobs)
    with pytest.raises(CliError) as caught:
        logs.logs(
            fake_session(client), "b1", key="2024-03-11", attempt=None, container=None, tail=None
        )
    assert caught.value.message == (
        "partition 2024-03-11 has Jobs of several steps (ingest, validate): choose one with --step"
    )
    with pytest.raises(CliError) as caught:
        logs.logs(
            fake_session(client),
            "b1",
            key="2024-03-11",
            attempt=None,
            container=None,
            tail=None,
            step="deploy",
        )
    assert caught.value.message == (
        'Backfill b1 does not run a step "deploy" (its steps: validate, publish)'
    )
