"""A run's state in one pass: its lanes observed, then ``reprocess``, the step order and marking.

:func:`observe` builds the :class:`~.state.RunState` of a run from its previous status and its
Jobs (:func:`~.state.observe_lane` per step), then applies, lane by lane in step order:

1. **reprocess** (while the run is valid), per (partition, step): Missing skips pairs with a
   recorded outcome in the PartitionedJob's ledger, Failed pairs with a recorded success,
   All none (Airflow's reprocess_behavior none/failed/completed). *Closure*: a step is not
   skipped for a partition when a step it depends on runs in this run for that partition
   (what depends on a re-run step re-runs: Airflow's clear with downstream, dagster#20465).
   Applied to pending pairs and pairs waiting for a retry, so a pair another run recorded
   meanwhile is skipped too.
2. **the step order** (:func:`_gate`): a pending pair is *ready* when every step it
   ``dependsOn`` succeeded for the partition: in this run, or, when this run does not do that
   step for the partition, in the ledger. It is *upstream-failed* (final for this run) when an
   upstream step failed for good or is upstream-failed in this run, or is outside the run with
   no success recorded and no other run's Job active on it (``ignoreDependencies``: outside
   upstream steps are not checked). ``dependsOnPast``: the step of partition ``i`` also needs
   the same step of ``i - 1`` to have succeeded (the job's first partition has no past;
   ``ignoreFirstDependsOnPast`` frees the run's first partition); a failure there cascades to
   every later partition of the run whose chain leads to it. Pending pairs that wait only for
   the previous partition of the same lane are *chained*: a Job of several partitions
   (``partitionsPerJob``) that starts at a ready one may run them after it, in order.
3. **markSucceeded**: every pending pair no other run's active Job holds is recorded as
   succeeded (``marked``), without a Job and without the step order. The marks go to the
   ledger in the *next* pass (the caller runs it at once), from the status: were they merged
   first and the status write then lost (a Conflict, a crash), the next pass would find them
   recorded and report them skipped; this way a lost status write marks them again, and a
   lost ledger merge is repeated (only for pairs without any outcome in the ledger).

The outcomes recorded for the first time go to the ledger (:class:`~.ledger.LedgerUpdate`).
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ..api.model import BackfillSpec, PartitionSets
from .ledger import LedgerUpdate, ledger_of, reprocess_skips
from .observed import ObservedJob
from .ranges import IndexSet
from .state import Outcome, PartitionState, RunState, Unit, group_by_unit, observe_lane
from .steps import MAIN_STEP, StepGraph
from .verdict import Verdict

__all__ = ["Observation", "held_by_step", "observe"]


@dataclass(frozen=True)
class Observation:
    """What :func:`observe` returns.

    The state, the new outcomes, the ledger update (None: nothing new), and the run's own
    Jobs by (step, partition index) (each list by ascending attempt).
    """

    state: RunState
    outcomes: tuple[Outcome, ...]
    ledger: LedgerUpdate | None
    owned: dict[Unit, list[ObservedJob]]


def held_by_step(held: Mapping[Unit, str]) -> dict[str, IndexSet]:
    """Return the held units as an index set per step."""
    per: dict[str, list[int]] = {}
    for step, index in held:
        per.setdefault(step, []).append(index)
    return {step: IndexSet.from_indices(indices) for step, indices in per.items()}


def _previous_sets(verdict: Verdict, step: str) -> PartitionSets:
    status = verdict.backfill.status
    if step == MAIN_STEP:
        return status.partitions
    entry = next((s for s in status.steps if s.name == step), None)
    return entry.partitions if entry is not None else PartitionSets()


def observe(
    verdict: Verdict,
    jobs: Sequence[ObservedJob],
    now: datetime,
    held: Mapping[Unit, str] | None = None,
    *,
    mark: bool = False,
) -> Observation | None:
    """Observe a judged run; None without a selection (see the module doc for the rules).

    ``jobs`` are the PartitionedJob's Jobs (only the run's ``owned`` ones are its own);
    ``held`` maps units other runs' Jobs hold to those runs (:func:`.admission.shared_view`);
    ``mark`` applies ``markSucceeded`` (the caller passes it when the run may act).
    """
    spec, selection, graph = verdict.backfill.spec, verdict.selection, verdict.graph
    if spec is None or selection is None:
        return None
    previous = verdict.backfill.status
    owned = group_by_unit(j for j in jobs if j.owned)
    per_step: dict[str, dict[int, list[ObservedJob]]] = {}
    for (step, index), attempts in owned.items():
        per_step.setdefault(step, {})[index] = attempts
    lanes: dict[str, PartitionState] = {}
    outcomes: list[Outcome] = []
    new_ok: dict[str, IndexSet] = {}
    new_bad: dict[str, IndexSet] = {}
    for step in verdict.steps:
        seen = observe_lane(
            spec,
            step,
            selection,
            _previous_sets(verdict, step),
            [f for f in previous.failures if (f.step or MAIN_STEP) == step],
            per_step.get(step, {}),
            now,
            [g for g in previous.retries if (g.step or MAIN_STEP) == step],
        )
        lanes[step] = seen.state
        outcomes.extend(seen.outcomes)
        new_ok[step], new_bad[step] = seen.new_succeeded, seen.new_failed
    held_sets = held_by_step(held or {})
    if verdict.invalid is None:
        _reprocess(verdict, spec, graph, lanes)
        job_status = verdict.partitioned_job.status
        for step, lane in lanes.items():
            # Marks the status records but the ledger does not (the pass after marking): a pair
            # with any outcome in the ledger keeps it (another run's, maybe newer).
            if lane.marked:
                ok, bad = ledger_of(job_status, verdict.fingerprint, step)
                unrecorded = lane.marked.difference(ok).difference(bad)
                new_ok[step] = new_ok[step].union(unrecorded)
        if mark:
            for step, lane in lanes.items():
                marked = lane.pending.difference(held_sets.get(step, IndexSet()))
                if marked:
                    lanes[step] = replace(
                        lane,
                        pending=lane.pending.difference(marked),
                        marked=lane.marked.union(marked),
                        new_marked=len(marked),
                    )
        else:
            _gate(verdict, spec, graph, lanes, held_sets)
    ledger = None
    fingerprint = verdict.fingerprint
    if fingerprint and (any(new_ok.values()) or any(new_bad.values())):
        if graph.stepped:
            ledger = LedgerUpdate(
                partitioning=fingerprint,
                steps={s: (new_ok[s], new_bad[s]) for s in lanes if new_ok[s] or new_bad[s]},
                job_steps=graph.order,
            )
        else:
            ledger = LedgerUpdate(
                partitioning=fingerprint,
                succeeded=new_ok[MAIN_STEP],
                failed=new_bad[MAIN_STEP],
            )
    state = RunState(selection, tuple(lanes[s] for s in verdict.steps), graph.stepped)
    return Observation(state, tuple(outcomes), ledger, owned)


def _reprocess(
    verdict: Verdict, spec: BackfillSpec, graph: StepGraph, lanes: dict[str, PartitionState]
) -> None:
    """Skip what ``reprocess`` skips, lane by lane in step order (closure: module doc)."""
    job_status = verdict.partitioned_job.status
    for step, lane in lanes.items():
        candidates = lane.pending.union(lane.retrying)
        if not candidates:
            continue
        skip = reprocess_skips(candidates, spec.reprocess, job_status, verdict.fingerprint, step)
        for up in graph.upstream[step]:
            if skip and up in lanes:
                skip = skip.difference(lanes[up].in_run)
        if not skip:
            continue
        failures = {
            i: f for i, f in lane.failures.items() if i not in skip or i not in lane.retrying
        }
        lanes[step] = replace(
            lane,
            skipped=lane.skipped.union(skip),
            pending=lane.pending.difference(skip),
            retrying=lane.retrying.difference(skip),
            failures=failures,
        )


def _gate(
    verdict: Verdict,
    spec: BackfillSpec,
    graph: StepGraph,
    lanes: dict[str, PartitionState],
    held: Mapping[str, IndexSet],
) -> None:
    """Split each lane's pending pairs into ready, waiting and upstream-failed (module doc)."""
    job_status = verdict.partitioned_job.status
    selection = lanes[next(iter(lanes))].selection if lanes else None
    if selection is None:
        return
    first = selection.indices.first()
    for step, lane in lanes.items():
        pending = lane.pending
        upstream = graph.upstream[step]
        if not pending or (not upstream and step not in graph.past):
            continue
        bad = IndexSet()
        wait = IndexSet()
        others = IndexSet()
        chained = IndexSet()
        for up in upstream:
            outside = pending
            if up in lanes:
                up_lane = lanes[up]
                inside = pending.intersection(up_lane.in_run)
                up_bad = up_lane.failed.union(up_lane.upstream_failed)
                bad = bad.union(inside.intersection(up_bad))
                wait = wait.union(inside.difference(up_lane.succeeded).difference(up_bad))
                outside = pending.difference(up_lane.in_run)
            if outside and not spec.ignore_dependencies:
                ok, _ = ledger_of(job_status, verdict.fingerprint, up)
                missing = outside.difference(ok)
                busy = missing.intersection(held.get(up, IndexSet()))
                wait = wait.union(busy)
                others = others.union(busy)
                bad = bad.union(missing.difference(busy))
        if step in graph.past:
            past_bad, past_wait, past_others = _past(
                verdict, spec, lane, pending.difference(bad), bad, first, held
            )
            # waiting only for the previous partition of this run's own lane (a batch that
            # runs that one first may take them: ``partitionsPerJob``)
            inside = past_wait.difference(past_others).difference(past_bad)
            chained = inside.difference(wait).difference(bad)
            bad = bad.union(past_bad)
            wait = wait.union(past_wait)
            others = others.union(past_others)
        wait = wait.difference(bad)
        lanes[step] = replace(
            lane,
            pending=pending.difference(bad),
            upstream_failed=lane.upstream_failed.union(bad),
            ready=pending.difference(bad).difference(wait),
            new_upstream_failed=len(bad),
            waiting_on_others=len(others.difference(bad)),
            chained=chained.difference(bad),
        )


def _past(
    verdict: Verdict,
    spec: BackfillSpec,
    lane: PartitionState,
    candidates: IndexSet,
    known_bad: IndexSet,
    first: int,
    held: Mapping[str, IndexSet],
) -> tuple[IndexSet, IndexSet, IndexSet]:
    """``dependsOnPast`` of one lane: (upstream-failed, waiting, waiting for another run).

    The third set is the part of the waiting candidates that wait for another run's Job.

    The previous partition ``p - 1`` of a candidate ``p``: in this run (selected, not skipped)
    it must have succeeded here (failed or upstream-failed: bad; else wait); outside the run
    the ledger must show its success (another run's active Job on it: wait; else bad).
    Partition 0 has no past; with ``ignoreFirstDependsOnPast`` neither has ``first``. A bad
    partition makes every candidate after it bad whose chain of previous partitions leads to
    it through candidates (the cascade, in one pass); ``known_bad`` are pending partitions
    this pass already found upstream-failed (seeds of the cascade too).
    """
    exempt = IndexSet.from_indices([0] + ([first] if spec.ignore_first_depends_on_past else []))
    checked = candidates.difference(exempt)
    if not checked:
        return IndexSet(), IndexSet(), IndexSet()
    in_run = lane.in_run
    prev_in_run = in_run.shift(1)  # p such that p - 1 is in the run
    inside = checked.intersection(prev_in_run)
    outside = checked.difference(prev_in_run)
    lane_bad = lane.failed.union(lane.upstream_failed).union(known_bad)
    bad = inside.intersection(lane_bad.shift(1))
    wait = inside.difference(lane.succeeded.shift(1)).difference(bad)
    busy = IndexSet()
    if outside:
        ok, _ = ledger_of(verdict.partitioned_job.status, verdict.fingerprint, lane.step)
        missing = outside.difference(ok.shift(1))
        busy = missing.intersection(held.get(lane.step, IndexSet()).shift(1))
        wait = wait.union(busy)
        bad = bad.union(missing.difference(busy))
    # Cascade: a waiting candidate whose previous partition is bad is bad, along each run of
    # consecutive candidates.
    seeds = bad.union(known_bad)
    if bad:
        cascade: list[tuple[int, int]] = []
        for lo, hi in candidates.union(seeds).intervals:
            chunk = seeds.clip(lo, hi)
            if chunk:
                cascade.append((chunk.first(), hi))
        bad = bad.union(IndexSet.from_intervals(cascade).intersection(candidates))
        wait = wait.difference(bad)
    return bad, wait, busy.difference(bad)
