"""Steps inside a partition: the graph, the selection, the order rules, reprocess and marking.

Pure: the planner is driven with plain values (no API server), as in ``test_planner.py``; a
hypothesis simulation checks the invariants over random step graphs, outcomes and selections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stored_forms import as_text, forced_encodings, summary, through_api

from backfill_operator.api.model import (
    BackfillSpec,
    BackfillStatus,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    Phase,
    StepLedger,
)
from backfill_operator.api.reasons import EventReason, Reason
from backfill_operator.controller import builders
from backfill_operator.planning import naming
from backfill_operator.planning import verdict as planner
from backfill_operator.planning.decide import Decision, plan
from backfill_operator.planning.ledger import preview
from backfill_operator.planning.observed import JobState, ObservedJob
from backfill_operator.planning.partitioned_job import partitioned_job_status
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.selection import InvalidSpec
from backfill_operator.planning.state import LaunchRequest
from backfill_operator.planning.status import compose_status, status_events
from backfill_operator.planning.steps import select_steps, step_graph

NOW = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
UID = "11111111-2222-3333-4444-555555555555"


def template(name: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": name, "image": "busybox"}]}}}}


def stepped_job(
    n: int, steps: list[tuple[str, list[str]]], past: tuple[str, ...] = ()
) -> PartitionedJobSpec:
    return PartitionedJobSpec.model_validate(
        {
            "partitions": {"values": [f"k{i:03d}" for i in range(n)]},
            "steps": [
                {
                    "name": name,
                    "dependsOn": deps,
                    "dependsOnPast": name in past,
                    "jobTemplate": template(name),
                }
                for name, deps in steps
            ],
        }
    )


PIPELINE = [("ingest", []), ("validate", ["ingest"]), ("publish", ["validate"])]


def spec(**kw: Any) -> BackfillSpec:
    base: dict[str, Any] = {"jobRef": {"name": "pj"}, "range": {"from": "k000"}, "concurrency": 100}
    base.update(kw)
    return BackfillSpec.model_validate(base)


def ledger_status(
    job: PartitionedJobSpec, steps: dict[str, tuple[str, str]]
) -> PartitionedJobStatus:
    status = partitioned_job_status(job, PartitionedJobStatus(), 1, NOW)
    entries = [StepLedger(name=s, succeeded=ok, failed=bad) for s, (ok, bad) in steps.items()]
    return status.model_copy(update={"ledger": PartitionLedger(steps=entries)})


class StepWorld:
    """One Backfill of a job with steps, its Jobs and the job's ledger, as plain values."""

    def __init__(
        self,
        job: PartitionedJobSpec,
        bf: BackfillSpec,
        job_status: PartitionedJobStatus | None = None,
        *,
        encoding: str = "model",
    ) -> None:
        """``encoding``: as ``test_planner.World``'s (statuses read back from the API)."""
        self.encoding = encoding
        self.job = job
        self.spec = bf
        self.status = BackfillStatus()
        self.job_status = job_status or partitioned_job_status(job, PartitionedJobStatus(), 1, NOW)
        self.jobs: dict[str, ObservedJob] = {}
        self.created: list[LaunchRequest] = []
        self.now = NOW
        self.events: list[str] = []

    def decide(
        self, status: BackfillStatus | None = None, job_status: PartitionedJobStatus | None = None
    ) -> Decision:
        view = planner.BackfillView("bf", "ns", UID, 1, self.spec, status or self.status)
        job = planner.PartitionedJobView("pj", self.job, job_status or self.job_status)
        return plan(planner.judge(view, job, self.now), list(self.jobs.values()), self.now)

    def step(self) -> Decision:
        with forced_encodings(self.encoding == "forced"):
            return self._step()

    def _step(self) -> Decision:
        decision = self.decide()
        if self.encoding != "model":
            plain = self.decide(as_text(self.status), as_text(self.job_status))
            assert summary(plain) == summary(decision)
        if decision.ledger is not None and decision.ledger.applies_to(self.job_status):
            ledger = decision.ledger.apply(self.job_status)
            self.job_status = self.job_status.model_copy(update={"ledger": ledger})
            if self.encoding != "model":
                self.job_status = through_api(self.job_status)
        for req in decision.launches:
            assert req.job_name not in self.jobs, "a Job was created twice"
            assert len(req.job_name) <= 63
            self.created.append(req)
            self.jobs[req.job_name] = ObservedJob(
                name=req.job_name,
                index=req.index,
                attempt=req.attempt,
                key=req.key,
                state=JobState.ACTIVE,
                owned=True,
                start_time=self.now,
                step=req.step,
                count=req.count,
                last_key=req.last_key,
            )
        status = compose_status(decision.verdict, decision.state, decision.launches, self.now)
        self.events += [e.reason for e in status_events(decision.verdict, decision.state, status)]
        if self.encoding != "model":
            stored = through_api(status)
            assert as_text(stored) == as_text(status)
            status = stored
        self.status = status
        for name in decision.deletions:
            del self.jobs[name]
        return decision

    def finish(self, name: str, ok: bool) -> None:
        job = self.jobs[name]
        self.jobs[name] = ObservedJob(
            **{
                **job.__dict__,
                "state": JobState.SUCCEEDED if ok else JobState.FAILED,
                "finish_time": self.now,
            }
        )

    def active(self) -> list[ObservedJob]:
        return [j for j in self.jobs.values() if j.state is JobState.ACTIVE]

    def launched(self) -> list[tuple[str, int]]:
        return [(r.step, r.index) for r in self.created]

    def step_counts(self, step: str) -> dict[str, int]:
        entry = next(s for s in self.status.steps if s.name == step)
        return {k: v for k, v in entry.counts.model_dump().items() if v}

    def run(self, fail: set[tuple[str, int]] = frozenset(), passes: int = 50) -> None:  # type: ignore[assignment]
        """Pass until nothing is active; Jobs of ``fail`` units fail every attempt."""
        for _ in range(passes):
            self.step()
            active = self.active()
            if not active:
                # Nothing runs and nothing waits for a retry (no backoff here): no later pass
                # would come, so the run must have ended (every rule applied in one pass).
                assert self.status.phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.INVALID)
                return
            for job in active:
                self.finish(job.name, (job.step, job.index) not in fail)
            self.now += timedelta(seconds=60)
        raise AssertionError("did not finish")


# ------------------------------------------------------------------------------ the graph


def test_graph_order_is_topological_with_declared_ties() -> None:
    graph = step_graph(stepped_job(1, [("load", ["b", "a"]), ("a", []), ("b", ["a"])]))
    assert graph.order == ("a", "b", "load")
    assert graph.upstream["load"] == ("b", "a")
    assert graph.descendants(["a"]) == {"b", "load"}
    assert graph.ancestors(["load"]) == {"a", "b"}


def test_a_cycle_is_named() -> None:
    job = stepped_job(1, [("a", ["c"]), ("b", ["a"]), ("c", ["b"]), ("d", [])])
    with pytest.raises(InvalidSpec) as err:
        step_graph(job)
    assert err.value.reason is Reason.INVALID_STEPS
    assert "cycle: a -> b -> c -> a" in err.value.message


def test_unknown_dependency_and_duplicates_are_refused_by_the_operator_too() -> None:
    with pytest.raises(InvalidSpec, match='depends on "nope"'):
        step_graph(stepped_job(1, [("a", ["nope"])]))
    with pytest.raises(InvalidSpec, match='two steps are named "a"'):
        step_graph(stepped_job(1, [("a", []), ("a", [])]))


def test_select_steps_widens_up_and_down() -> None:
    graph = step_graph(stepped_job(1, [*PIPELINE, ("report", ["ingest"])]))
    assert select_steps(graph, None) == ("ingest", "validate", "publish", "report")
    assert select_steps(graph, ["validate"]) == ("validate",)
    assert select_steps(graph, ["validate"], include_upstream=True) == ("ingest", "validate")
    assert select_steps(graph, ["validate"], include_downstream=True) == ("validate", "publish")
    with pytest.raises(InvalidSpec, match='step "transform" is not a step'):
        select_steps(graph, ["transform"])


def test_a_backfill_selecting_an_unknown_step_is_invalid_and_launches_nothing() -> None:
    world = StepWorld(stepped_job(3, PIPELINE), spec(steps=["transform"]))
    decision = world.step()
    assert decision.launches == []
    assert world.status.phase is Phase.INVALID
    stalled = next(c for c in world.status.conditions if c.type == "Stalled")
    assert stalled.reason == Reason.INVALID_STEPS
    assert Reason.INVALID_STEPS in world.events


def test_a_cycle_makes_backfills_and_the_job_invalid() -> None:
    job = stepped_job(2, [("a", ["b"]), ("b", ["a"])])
    world = StepWorld(job, spec())
    assert world.step().launches == []
    assert world.status.phase is Phase.INVALID
    pj = partitioned_job_status(job, PartitionedJobStatus(), 1, NOW)
    ready = next(c for c in pj.conditions if c.type == "Ready")
    assert ready.status == "False" and ready.reason == Reason.INVALID_STEPS
    assert "cycle" in ready.message


# ----------------------------------------------------------------------------- the order


def test_steps_start_in_order_and_partitions_progress_independently() -> None:
    world = StepWorld(stepped_job(3, PIPELINE), spec())
    first = world.step()
    assert [(r.step, r.index) for r in first.launches] == [
        ("ingest", 0),
        ("ingest", 1),
        ("ingest", 2),
    ]
    # Partition 1's ingest ends first: its validate starts while the others still ingest.
    world.finish(first.launches[1].job_name, ok=True)
    second = world.step()
    assert [(r.step, r.index) for r in second.launches] == [("validate", 1)]
    assert world.status.counts.running == 3
    assert world.step_counts("validate") == {"total": 3, "running": 1, "pending": 2}


def test_job_names_are_deterministic_distinct_per_step_and_short() -> None:
    long = "x" * 40
    names = {
        naming.job_name("a" * 63, UID, 7, "2024-03-11T00:00:00+00:00", 1, step)
        for step in (long, long[:-1] + "y", "ingest")
    }
    assert len(names) == 3
    assert all(len(n) <= 63 for n in names)
    assert naming.job_name("bf", UID, 7, "k", 1, "ingest") == naming.job_name(
        "bf", UID, 7, "k", 1, "ingest"
    )


def test_concurrency_counts_jobs_and_the_order_is_by_partition_then_step() -> None:
    world = StepWorld(stepped_job(3, [("a", []), ("b", [])]), spec(concurrency=3))
    launches = world.step().launches
    assert [(r.step, r.index) for r in launches] == [("a", 0), ("b", 0), ("a", 1)]
    world = StepWorld(
        stepped_job(3, [("a", []), ("b", [])]), spec(concurrency=3, order="NewestFirst")
    )
    launches = world.step().launches
    assert [(r.step, r.index) for r in launches] == [("a", 2), ("b", 2), ("a", 1)]


def test_an_upstream_failure_marks_the_downstream_steps_upstream_failed() -> None:
    world = StepWorld(stepped_job(4, PIPELINE), spec(retries={"limit": 1, "backoffSeconds": 0}))
    world.run(fail={("validate", 2)})
    status = world.status
    assert status.phase is Phase.FAILED
    assert world.step_counts("ingest") == {"total": 4, "succeeded": 4}
    assert world.step_counts("validate") == {"total": 4, "succeeded": 3, "failed": 1}
    assert world.step_counts("publish") == {"total": 4, "succeeded": 3, "upstream_failed": 1}
    assert status.counts.failed == 1 and status.counts.succeeded == 3
    assert ("publish", 2) not in world.launched()
    assert world.launched().count(("validate", 2)) == 2  # the retry
    assert EventReason.UPSTREAM_FAILED in world.events
    failure = next(f for f in status.failures if f.index == 2)
    assert failure.step == "validate" and failure.attempts == 2
    ledger = {s.name: (s.succeeded, s.failed) for s in world.job_status.ledger.steps}
    assert ledger == {"ingest": ("0-3", ""), "validate": ("0-1,3", "2"), "publish": ("0-1,3", "")}
    assert world.job_status.ledger.succeeded == "0-1,3"
    assert world.job_status.ledger.failed == "2"


def test_reprocess_failed_reruns_only_the_failed_step_and_what_depends_on_it() -> None:
    job = stepped_job(4, PIPELINE)
    status = ledger_status(
        job, {"ingest": ("0-3", ""), "validate": ("0-1,3", "2"), "publish": ("0-1,3", "")}
    )
    world = StepWorld(job, spec(reprocess="Failed"), status)
    world.run()
    assert world.launched() == [("validate", 2), ("publish", 2)]
    assert world.status.phase is Phase.SUCCEEDED
    assert world.step_counts("ingest") == {"total": 4, "skipped": 4}
    assert world.step_counts("publish") == {"total": 4, "succeeded": 1, "skipped": 3}
    assert world.job_status.ledger.succeeded == "0-3"


def test_reprocess_all_of_one_step_reruns_it_and_with_downstream_its_dependants() -> None:
    job = stepped_job(3, PIPELINE)
    done = {s: ("0-2", "") for s, _ in PIPELINE}
    world = StepWorld(job, spec(steps=["ingest"], reprocess="All"), ledger_status(job, done))
    world.run()
    assert world.launched() == [("ingest", 0), ("ingest", 1), ("ingest", 2)]
    world = StepWorld(
        job,
        spec(steps=["ingest"], includeDownstream=True, reprocess="All"),
        ledger_status(job, done),
    )
    world.run()
    assert sorted(world.launched()) == sorted((s, i) for s, _ in PIPELINE for i in range(3))


def test_one_step_waits_for_an_upstream_success_recorded_outside_the_run() -> None:
    job = stepped_job(3, PIPELINE)
    # ingest succeeded for partitions 0 and 1 only (an earlier run).
    status = ledger_status(job, {"ingest": ("0-1", "")})
    world = StepWorld(job, spec(steps=["validate"]), status)
    world.run()
    assert world.launched() == [("validate", 0), ("validate", 1)]
    assert world.step_counts("validate") == {"total": 3, "succeeded": 2, "upstream_failed": 1}
    assert world.status.phase is Phase.FAILED
    # ignoreDependencies runs it for every partition.
    world = StepWorld(job, spec(steps=["validate"], ignoreDependencies=True), status)
    world.run()
    assert world.launched() == [("validate", 0), ("validate", 1), ("validate", 2)]
    assert world.status.phase is Phase.SUCCEEDED


def test_an_outside_upstream_another_run_is_running_is_waited_for() -> None:
    job = stepped_job(1, PIPELINE)
    world = StepWorld(job, spec(steps=["validate"]))
    other = ObservedJob(
        name="other-ingest",
        index=0,
        attempt=1,
        key="k000",
        state=JobState.ACTIVE,
        owned=False,
        run="other",
        run_uid="x",
        step="ingest",
    )
    world.jobs[other.name] = other
    assert world.step().launches == []
    assert world.status.counts.pending == 1 and world.status.counts.upstream_failed == 0
    world.finish(other.name, ok=True)
    world.job_status = ledger_status(job, {"ingest": ("0", "")})
    assert [(r.step, r.index) for r in world.step().launches] == [("validate", 0)]


def test_depends_on_past_runs_a_step_partition_after_partition() -> None:
    job = stepped_job(4, [("a", []), ("b", ["a"])], past=("b",))
    world = StepWorld(job, spec())
    world.run()
    order = [u for u in world.launched() if u[0] == "b"]
    assert order == [("b", 0), ("b", 1), ("b", 2), ("b", 3)]
    starts = {(r.step, r.index): n for n, r in enumerate(world.created)}
    assert all(starts[("b", i)] > starts[("b", i - 1)] for i in range(1, 4))


def test_a_failure_with_depends_on_past_cascades_in_one_pass() -> None:
    job = stepped_job(5, [("a", [])], past=("a",))
    world = StepWorld(job, spec())
    world.run(fail={("a", 1)})
    assert world.launched() == [("a", 0), ("a", 1)]
    assert world.step_counts("a") == {"total": 5, "succeeded": 1, "failed": 1, "upstream_failed": 3}


def test_depends_on_past_outside_the_run_and_ignore_first() -> None:
    job = stepped_job(5, [("a", [])], past=("a",))
    world = StepWorld(job, spec(range={"from": "k002", "to": "k003"}))
    world.run()
    assert world.launched() == []
    assert world.step_counts("a") == {"total": 2, "upstream_failed": 2}
    world = StepWorld(
        job, spec(range={"from": "k002", "to": "k003"}, ignoreFirstDependsOnPast=True)
    )
    world.run()
    assert world.launched() == [("a", 2), ("a", 3)]
    ok = ledger_status(job, {"a": ("0-1", "")})
    world = StepWorld(job, spec(range={"from": "k002", "to": "k003"}), ok)
    world.run()
    assert world.launched() == [("a", 2), ("a", 3)]


def test_mark_succeeded_fills_the_ledger_and_creates_no_job() -> None:
    job = stepped_job(3, PIPELINE)
    world = StepWorld(job, spec(markSucceeded=True, steps=["ingest"]))
    decision = world.step()
    assert decision.launches == [] and world.created == []
    assert world.status.phase is Phase.SUCCEEDED
    assert world.status.counts.marked == 3
    assert world.step_counts("ingest") == {"total": 3, "marked": 3}
    # The marks reach the ledger in the next pass, asked for at once.
    assert decision.ledger is None and decision.requeue_after_seconds == 0.0
    again = world.step()
    assert again.ledger is not None and again.requeue_after_seconds is None
    assert world.step().ledger is None  # recorded: nothing more to merge
    ledger = {s.name: s.succeeded for s in world.job_status.ledger.steps}
    assert ledger == {"ingest": "0-2"}
    assert world.job_status.ledger.succeeded == ""  # validate and publish have no success
    assert EventReason.MARKED_SUCCEEDED in world.events
    # The next Backfill of the other steps runs them: ingest counts as done.
    world = StepWorld(job, spec(), world.job_status)
    world.run()
    assert sorted(world.launched()) == sorted(
        (s, i) for s in ("validate", "publish") for i in range(3)
    )


def test_a_lost_status_write_after_marking_marks_again_not_skips() -> None:
    """The marking pass's status write is lost (a Conflict): the next pass marks again."""
    job = stepped_job(2, PIPELINE)
    world = StepWorld(job, spec(markSucceeded=True, steps=["ingest"]))
    world.decide()  # decided, but neither the status nor anything else was written
    world.step()
    world.step()
    assert world.step_counts("ingest") == {"total": 2, "marked": 2}
    assert [(s.name, s.succeeded) for s in world.job_status.ledger.steps] == [("ingest", "0-1")]


def test_marks_never_overwrite_an_outcome_another_run_recorded() -> None:
    job = stepped_job(2, PIPELINE)
    world = StepWorld(job, spec(markSucceeded=True, steps=["ingest"]))
    world.step()
    # Before the marks are merged, another run records a failure of ingest for partition 1.
    world.job_status = ledger_status(job, {"ingest": ("", "1")})
    world.step()
    assert [(s.name, s.succeeded, s.failed) for s in world.job_status.ledger.steps] == [
        ("ingest", "0", "1")
    ]


def test_mark_succeeded_on_a_job_template_job() -> None:
    job = PartitionedJobSpec.model_validate(
        {"partitions": {"values": ["a", "b"]}, "jobTemplate": template("main")}
    )
    world = StepWorld(job, spec(range={"from": "a"}, markSucceeded=True))
    world.step()
    world.step()
    assert world.created == [] and world.status.counts.marked == 2
    assert world.job_status.ledger.succeeded == "0-1"
    assert world.status.steps == []


def test_preview_counts_partitions_with_any_step_to_run() -> None:
    job = stepped_job(3, PIPELINE)
    status = ledger_status(
        job, {"ingest": ("0-2", ""), "validate": ("0-2", ""), "publish": ("0,2", "1")}
    )
    view = planner.BackfillView("", "ns", "", 0, spec(reprocess="Failed"), BackfillStatus())
    verdict = planner.judge(view, planner.PartitionedJobView("pj", job, status), NOW)
    assert list(preview(verdict).to_run) == [1]


def test_a_step_job_has_its_template_label_and_variables() -> None:
    job = stepped_job(2, PIPELINE)
    bf = spec(
        env=[{"name": "MODE", "value": "backfill-$(PARTITION_KEY)"}],
        jobLabels={"team": "data"},
        jobAnnotations={"cost-center": "42"},
    )
    world = StepWorld(job, bf)
    request = world.step().launches[0]
    verdict = world.decide().verdict
    manifest = builders.build_job(
        owner=builders.Owner("ns", "bf", UID),
        partitioned_job="pj",
        job_template=verdict.graph.templates[request.step],
        request=request,
        template_hash=verdict.template_hash,
        env=[e.to_api() for e in bf.env or []],
        extra_labels=bf.job_labels,
        extra_annotations=bf.job_annotations,
    )
    meta = manifest["metadata"]
    assert meta["labels"]["backfill.dev/step"] == "ingest"
    assert meta["labels"]["team"] == "data"
    assert meta["annotations"]["cost-center"] == "42"
    pod = manifest["spec"]["template"]
    assert pod["metadata"]["labels"]["backfill.dev/step"] == "ingest"
    container = pod["spec"]["containers"][0]
    assert container["name"] == "ingest"
    names = [e["name"] for e in container["env"]]
    assert names.index("STEP_NAME") < names.index("MODE")
    assert names.index("PARTITION_KEY") < names.index("MODE")
    assert {"name": "STEP_NAME", "value": "ingest"} in container["env"]


def test_env_cannot_override_the_operators_variables_in_the_schema() -> None:
    from backfill_operator.api import crdgen

    schema = crdgen.schema_for(BackfillSpec)
    env = schema["properties"]["env"]
    rule = env["x-kubernetes-validations"][0]["rule"]
    assert "'PARTITION_KEY'" in rule and "'STEP_NAME'" in rule


# -------------------------------------------------------------------- the simulation


@dataclass
class Sim:
    """A random step graph, outcomes, selection and ledger."""

    n_steps: int
    edges: set[tuple[int, int]]
    past: set[int]
    partitions: int
    first: int
    last: int
    concurrency: int
    retries: int
    fails: set[tuple[int, int, int]]
    selected: list[int] | None
    up: bool
    down: bool
    ignore: bool
    ignore_first: bool
    reprocess: str
    encoding: str = "model"
    per_job: int = 1
    ledger_ok: dict[int, set[int]] = field(default_factory=dict)
    ledger_bad: dict[int, set[int]] = field(default_factory=dict)


@st.composite
def sims(draw: st.DrawFn) -> Sim:
    n = draw(st.integers(1, 4))
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    edges = set(draw(st.lists(st.sampled_from(pairs), unique=True))) if pairs else set()
    past = set(draw(st.lists(st.integers(0, n - 1), unique=True, max_size=2)))
    parts = draw(st.integers(1, 6))
    first = draw(st.integers(0, parts - 1))
    last = draw(st.integers(first, parts - 1))
    retries = draw(st.integers(0, 1))
    fails = set(
        draw(
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, parts - 1), st.integers(1, 2)),
                max_size=6,
            )
        )
    )
    selected = draw(st.none() | st.lists(st.integers(0, n - 1), min_size=1, unique=True))
    ledger_ok: dict[int, set[int]] = {}
    ledger_bad: dict[int, set[int]] = {}
    for s in range(n):
        marks = draw(st.lists(st.sampled_from(["ok", "bad", None]), min_size=parts, max_size=parts))
        ledger_ok[s] = {p for p, m in enumerate(marks) if m == "ok"}
        ledger_bad[s] = {p for p, m in enumerate(marks) if m == "bad"}
    return Sim(
        n_steps=n,
        edges=edges,
        past=past,
        partitions=parts,
        first=first,
        last=last,
        concurrency=draw(st.integers(1, 5)),
        retries=retries,
        fails=fails,
        selected=selected,
        up=draw(st.booleans()),
        down=draw(st.booleans()),
        ignore=draw(st.booleans()),
        ignore_first=draw(st.booleans()),
        reprocess=draw(st.sampled_from(["Missing", "Failed", "All"])),
        encoding=draw(st.sampled_from(["model", "api", "forced"])),
        per_job=draw(st.sampled_from([1, 1, 2, 4])),
        ledger_ok=ledger_ok,
        ledger_bad=ledger_bad,
    )


def _name(s: int) -> str:
    return f"s{s}"


@settings(max_examples=300, deadline=None)
@given(sim=sims())
def test_simulated_steps_invariants(sim: Sim) -> None:
    steps = [
        (_name(b), [_name(a) for a, bb in sorted(sim.edges) if bb == b]) for b in range(sim.n_steps)
    ]
    job = stepped_job(sim.partitions, steps, past=tuple(_name(s) for s in sim.past))
    status = ledger_status(
        job,
        {
            _name(s): (
                str(IndexSet.from_indices(sim.ledger_ok[s])),
                str(IndexSet.from_indices(sim.ledger_bad[s])),
            )
            for s in range(sim.n_steps)
        },
    )
    bf = spec(
        range={"from": f"k{sim.first:03d}", "to": f"k{sim.last:03d}"},
        concurrency=sim.concurrency,
        retries={"limit": sim.retries, "backoffSeconds": 0},
        steps=[_name(s) for s in sim.selected] if sim.selected is not None else None,
        includeUpstream=sim.up,
        includeDownstream=sim.down,
        ignoreDependencies=sim.ignore,
        ignoreFirstDependsOnPast=sim.ignore_first,
        reprocess=sim.reprocess,
        partitionsPerJob=sim.per_job,
    )
    graph = step_graph(job)
    run_steps = select_steps(
        graph,
        bf.steps,
        include_upstream=sim.up,
        include_downstream=sim.down,
    )
    selection = range(sim.first, sim.last + 1)
    ok0 = {_name(s): sim.ledger_ok[s] for s in range(sim.n_steps)}
    bad0 = {_name(s): sim.ledger_bad[s] for s in range(sim.n_steps)}

    # Which (step, partition) pairs the run takes on: reprocess with the closure.
    in_run: dict[str, set[int]] = {}
    for s in run_steps:
        skip = {"All": set(), "Failed": ok0[s], "Missing": ok0[s] | bad0[s]}[sim.reprocess]
        own = set(selection) - skip
        for u in graph.upstream[s]:
            if u in in_run:
                own |= in_run[u]
        in_run[s] = own

    world = StepWorld(job, bf, status, encoding=sim.encoding)
    attempts: dict[tuple[str, int], int] = {}
    succeeded: set[tuple[str, int]] = set()
    failed: set[tuple[str, int]] = set()
    for _ in range(100):
        decision = world.step()
        for req in decision.launches:
            assert 1 <= req.count <= sim.per_job
            s = req.step
            for p in req.indices:
                assert p in selection and s in run_steps
                assert p in in_run[s], "launched a pair reprocess skips"
                assert req.attempt == attempts.get((s, p), 0) + 1, "each attempt created once"
                attempts[(s, p)] = req.attempt
                if req.attempt > 1:
                    continue
                for u in graph.upstream[s]:
                    if u in in_run and p in in_run[u]:
                        assert (u, p) in succeeded, "started before its upstream succeeded"
                    elif not sim.ignore:
                        assert p in ok0[u], "started without an upstream success recorded"
                if s in graph.past and p > 0 and not (sim.ignore_first and p == sim.first):
                    q = p - 1
                    if q >= req.index:
                        continue  # the previous partition runs before it, in the same Job
                    if q in selection and q in in_run[s]:
                        assert (s, q) in succeeded, "dependsOnPast order broken"
                    else:
                        assert q in ok0[s], "dependsOnPast without a recorded success"
        assert len(world.active()) <= sim.concurrency
        active = world.active()
        if not active:
            # Nothing runs and no retry waits (backoff 0): the run must have ended in this pass.
            assert world.status.phase in (Phase.SUCCEEDED, Phase.FAILED), world.status.phase
            break
        for job_ in active:
            # a Job of several partitions fails when one of them does
            ok = all((int(job_.step[1:]), p, job_.attempt) not in sim.fails for p in job_.indices)
            world.finish(job_.name, ok)
            for p in job_.indices:
                (succeeded if ok else failed).add((job_.step, p))
                if ok:
                    failed.discard((job_.step, p))
        world.now += timedelta(seconds=1)
    else:
        raise AssertionError("the run did not end")

    # Exact counts: every pair of the run ends in exactly one state.
    final = world.status
    for s in run_steps:
        entry = next(e for e in final.steps if e.name == s)
        c = entry.counts
        ran = {p for (ss, p) in attempts if ss == s}
        ok_pairs = {p for (ss, p) in succeeded if ss == s}
        bad_pairs = {p for (ss, p) in failed if ss == s} - ok_pairs
        assert c.total == len(selection)
        assert c.succeeded == len(ok_pairs)
        assert c.failed == len(bad_pairs)
        assert c.skipped == len(set(selection) - in_run[s])
        assert c.upstream_failed == len(in_run[s] - ran)
        assert c.pending == c.running == c.queued == c.marked == 0
    assert final.counts.total == len(selection)
    c = final.counts
    assert c.total == c.succeeded + c.failed + c.skipped + c.upstream_failed + c.marked


def test_repeated_long_sets_are_written_once_and_read_back_whole() -> None:
    """A scattered failure of the first step recurs in every downstream step's upstreamFailed
    and in the roll-up: the API gets it once and references (the status stays bounded)."""
    n = 3000
    job = stepped_job(n, [("s0", []), *[(f"s{i}", [f"s{i - 1}"]) for i in range(1, 10)]])
    world = StepWorld(job, spec(concurrency=1000))
    fail = {("s0", i) for i in range(0, n, 7)}
    world.run(fail=fail, passes=200)
    status = world.status
    assert status.counts.failed == len(fail) and status.counts.succeeded == n - len(fail)
    written = status.compacted().to_api()

    def sets_size(doc: dict[str, Any]) -> int:
        return len(json.dumps([doc["partitions"], [s["partitions"] for s in doc["steps"]]]))

    refs = [v for s in written["steps"] for v in s["partitions"].values() if v.startswith("=")]
    assert len(refs) == 2 * 10  # every step: succeeded, and failed or upstreamFailed
    assert sets_size(written) < sets_size(status.to_api()) / 3
    assert BackfillStatus.model_validate(written) == status  # parsing resolves references
    ledger = world.job_status.ledger
    stored = ledger.compacted().to_api()
    assert PartitionLedger.model_validate(stored) == ledger
    assert len(json.dumps(stored)) < len(ledger.model_dump_json()) / 3
