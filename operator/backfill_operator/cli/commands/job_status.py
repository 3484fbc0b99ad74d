"""``status`` of a PartitionedJob, and which object ``status REF`` names.

``status`` takes a Backfill or a PartitionedJob (:func:`parse_ref`): ``pj/NAME`` (or
``partitionedjob/NAME``, as kubectl spells types) names a PartitionedJob, ``bf/NAME`` (or
``backfill/NAME``) a Backfill, and a bare ``NAME`` the Backfill of that name, else the
PartitionedJob of that name. :func:`status` dispatches; a Backfill's view is
:mod:`.status`'s.

A PartitionedJob's view (:func:`build_job_view`) puts the ledger (``status.ledger``) and the
active Jobs of every run (its scheduled runs' and its Backfills', by the label
``backfill.dev/partitioned-job``) over its complete partitions, with ``spec.runs`` and
``status.runs`` and its Backfills. A PartitionedJob never ends: ``status -w`` follows it until
interrupted or deleted (:func:`follow_job`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.live import Live

from ... import clock
from ...api.model import BACKFILLS, GROUP, PARTITIONED_JOBS
from ...planning.ranges import IndexSet
from ...planning.schedule import TimePartitions
from ...planning.space import MAX_PARTITIONS, PartitionError, PartitionSpace, Selection
from ...planning.verdict import load_partitioned_job
from .. import coverage, documents, render
from ..errors import EXIT_FAILED, EXIT_OK, CliError
from . import status as backfill_status
from .objects import backfills_of, complete_partitions, job_space, observed_step_jobs, step_names
from .session import Session

#: Type prefixes of ``status TYPE/NAME``, as kubectl spells them (short name, singular,
#: plural, with or without the group).
_TYPES = {
    **{t: PARTITIONED_JOBS for t in ("pj", "partitionedjob", "partitionedjobs")},
    **{f"{t}.{GROUP}": PARTITIONED_JOBS for t in ("partitionedjob", "partitionedjobs")},
    **{t: BACKFILLS for t in ("bf", "backfill", "backfills")},
    **{f"{t}.{GROUP}": BACKFILLS for t in ("backfill", "backfills")},
}


def parse_ref(ref: str) -> tuple[str | None, str]:
    """Split ``status``'s argument into (resource plural or None for a bare name, name).

    ``pj/NAME``, ``partitionedjob/NAME``, ``partitionedjobs.backfill.dev/NAME`` name a
    PartitionedJob; ``bf/NAME``, ``backfill/NAME``, ``backfills.backfill.dev/NAME`` a
    Backfill (types are case-insensitive). Raises CliError (exit 2) for another type or an
    empty name.
    """
    kind, slash, name = ref.partition("/")
    if not slash:
        if not ref:
            raise CliError("name a Backfill or a PartitionedJob (pj/NAME)")
        return None, ref
    plural = _TYPES.get(kind.lower())
    if plural is None:
        raise CliError(
            f'"{kind}" is not a type status shows: give NAME, bf/NAME (a Backfill) or pj/NAME '
            "(a PartitionedJob)"
        )
    if not name or "/" in name:
        raise CliError(f'"{ref}" does not name an object: give {kind}/NAME')
    return plural, name


def _not_found(session: Session, name: str) -> CliError:
    ns = session.namespace
    try:
        jobs = sorted(
            str(i["metadata"]["name"]) for i in session.client.list_objects(PARTITIONED_JOBS, ns)
        )
    except CliError:
        jobs = []
    listed = f"{', '.join(jobs[:8])}{', …' if len(jobs) > 8 else ''}" if jobs else "none"
    return CliError(
        f'Backfill "{name}" not found in namespace "{ns}", nor a PartitionedJob of that name '
        f"(`kubectl backfill list -n {ns}` lists the Backfills; PartitionedJobs: {listed})"
    )


def status(
    session: Session,
    ref: str,
    *,
    watch: bool,
    output: str,
    interval: float,
    rollup: bool = False,
) -> int:
    """``status REF``: the view of a Backfill or of a PartitionedJob (see the module doc).

    A bare name is looked up as a Backfill first. Raises CliError (exit 2) when nothing of
    that name exists. Exit codes as :func:`.status.status` for a Backfill; for a
    PartitionedJob 0, or with ``watch`` see :func:`follow_job`. ``rollup``: for a job with
    steps, the grid of the partitions' roll-up instead of one block of rows per step.
    """
    plural, name = parse_ref(ref)
    body: dict[str, Any] | None = None
    if plural is None:
        body = session.client.find(BACKFILLS, name)
        if body is None:
            job = session.client.find(PARTITIONED_JOBS, name)
            if job is None:
                raise _not_found(session, name)
            return job_status(
                session,
                name,
                watch=watch,
                output=output,
                interval=interval,
                body=job,
                rollup=rollup,
            )
        plural = BACKFILLS
    if plural == BACKFILLS:
        return backfill_status.status(
            session,
            name,
            watch=watch,
            output=output,
            interval=interval,
            body=body,
            rollup=rollup,
        )
    return job_status(session, name, watch=watch, output=output, interval=interval, rollup=rollup)


# ---------------------------------------------------------------------------------- view


_Complete = tuple[Selection | None, IndexSet, str | None]


class _CompleteResolver:
    """Resolves a job's complete partitions; caches them until the next window closes.

    For ``status -w``: the complete partitions change only when a window closes (or the
    partitions' definition changes), so a followed job walks its schedule once per window.
    """

    def __init__(self) -> None:
        self._key: object = None
        self._until: int | None = None
        self._value: _Complete = (None, IndexSet(), None)

    def resolve(self, space: PartitionSpace, definition: object, now: int) -> _Complete:
        """Return :func:`complete_of`'s answer, cached while it cannot have changed.

        That is while ``definition`` (the spec's partitions) is the same and ``now`` (epoch
        seconds) is before the end of the window after the last complete one.
        """
        fresh = self._until is None or now < self._until
        if definition != self._key or not fresh:
            self._value = complete_of(space)
            self._key = definition
            self._until = _next_end(space, self._value[1])
        return self._value


def _next_end(space: PartitionSpace, complete: IndexSet) -> int | None:
    """End (epoch seconds) of the window after the last complete one; None: none comes."""
    if not isinstance(space, TimePartitions):
        return None
    window = space.window_of(complete.last() + 1 if complete else 0)
    return None if window is None else window[1]


def complete_of(space: PartitionSpace) -> _Complete:
    """Return (selection for keys, indices, note) of every complete partition of ``space``.

    The selection is None when none is complete yet (the note says so), or when there are
    more than ``MAX_PARTITIONS`` (then the indices are still all of them, and the note says
    why there is no grid).
    """
    try:
        selection = complete_partitions(space)
    except PartitionError:
        last = space.last_index()
        assert last is not None  # partitions exist: there are too many of them
        return (
            None,
            IndexSet.from_range(0, last),
            f"{last + 1} complete partitions, more than the {MAX_PARTITIONS} a grid draws",
        )
    if selection is None:
        return None, IndexSet(), "no partition is complete yet"
    return selection, selection.indices, None


def _end_keys(space: PartitionSpace, complete: IndexSet) -> tuple[str | None, str | None]:
    """Keys of the first and last complete partition, without a selection (many partitions)."""
    if not complete or not isinstance(space, TimePartitions):
        return None, None
    first = space.occurrences(complete.first(), 1)
    last = space.occurrences(complete.last(), 1)
    if not first or not last:
        return None, None
    return space.format_key(first[0]), space.format_key(last[0])


def _grid_of(selection: Selection) -> render.GridData:
    return render.GridData(
        selection.indices, lambda position: selection.key(selection.indices.nth(position))
    )


def build_job_view(
    session: Session,
    body: dict[str, Any],
    resolver: _CompleteResolver | None = None,
    *,
    outcomes: bool = True,
    backfills: list[dict[str, Any]] | None = None,
) -> render.JobStatusView:
    """Return the :class:`~..render.JobStatusView` of a raw PartitionedJob, read now.

    Lists the namespace's Backfills (unless ``backfills``, the job's raw Backfills, are
    given) and the job's Jobs: two requests. ``outcomes`` False reads nothing more: the view
    has the job's partitions (description, first and last complete keys, ``grid``) but no
    Backfills and no coverage (the web page's header, whose grid brings the outcomes).
    """
    meta = body["metadata"]
    name = str(meta["name"])
    now = clock.now()
    pj = load_partitioned_job(name, body)
    summaries: tuple[render.BackfillSummary, ...] = ()
    if outcomes:
        raw = backfills if backfills is not None else backfills_of(session, name)
        summaries = tuple(render.backfill_summaries(raw))
    common: dict[str, Any] = {
        "name": name,
        "namespace": str(meta.get("namespace") or session.namespace),
        "spec": pj.spec,
        "status": pj.status,
        "created": meta.get("creationTimestamp"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "generation": meta.get("generation"),
        "backfills": summaries,
    }
    space, problem = job_space(pj, now)
    if space is None:
        return render.JobStatusView(**common, problem=problem)
    if resolver is None:
        selection, complete, note = complete_of(space)
    else:
        assert pj.spec is not None  # a space was built from it
        definition = pj.spec.partitions.model_dump_json()
        selection, complete, note = resolver.resolve(space, definition, int(now.timestamp()))
    fingerprint = space.fingerprint
    if not outcomes:
        return render.JobStatusView(
            **common,
            description=space.describe(),
            first_key=selection.first_key if selection is not None else None,
            last_key=selection.last_key if selection is not None else None,
            grid=None if selection is None else _grid_of(selection),
            grid_note=note,
            ledger_note=coverage.ledger_problem(pj.status, fingerprint),
        )
    jobs = observed_step_jobs(session, name)
    active = coverage.active_jobs((job for _, job in jobs), fingerprint)
    cov = None
    steps: tuple[tuple[str, coverage.Coverage], ...] = ()
    if complete:
        cov = coverage.coverage_of(complete, coverage.ledger_sets(pj.status, fingerprint), active)
        names = step_names(pj.spec)
        if names:
            steps = coverage.step_coverages(
                complete,
                names,
                coverage.step_ledger_sets(pj.status, fingerprint),
                coverage.active_jobs_by_step(jobs, fingerprint),
            )
    grid = None
    first_key = last_key = None
    if selection is not None:
        grid = _grid_of(selection)
        first_key, last_key = selection.first_key, selection.last_key
    elif complete:
        first_key, last_key = _end_keys(space, complete)
    return render.JobStatusView(
        **common,
        description=space.describe(),
        coverage=cov,
        first_key=first_key,
        last_key=last_key,
        grid=grid,
        grid_note=note,
        ledger_note=coverage.ledger_problem(pj.status, fingerprint),
        steps=steps,
    )


def job_status(
    session: Session,
    name: str,
    *,
    watch: bool,
    output: str,
    interval: float,
    body: dict[str, Any] | None = None,
    rollup: bool = False,
) -> int:
    """``status pj/NAME``: one view of a PartitionedJob, or (``watch``) follow it.

    ``body`` is the PartitionedJob when the caller has just read it; ``rollup`` draws the
    roll-up grid of a job with steps. Returns 0; raises CliError (exit 2) when it does not
    exist.
    """
    if body is None:
        body = session.client.get(PARTITIONED_JOBS, name)
    if watch:
        return follow_job(session, name, interval=interval, output=output, rollup=rollup)
    view = build_job_view(session, body)
    now = clock.now()
    if output == "json":
        session.write(json.dumps(documents.job_status_document(view, now), indent=2) + "\n")
    else:
        session.out.print(
            render.render_job_status(
                view, now, session.out.width, color=session.color, rollup=rollup
            )
        )
    return EXIT_OK


def _state(view: render.JobStatusView) -> object:
    """What changes a followed PartitionedJob's line: outcomes, the schedule, the Backfills."""
    cov = view.coverage
    sets = None if cov is None else tuple(str(m) for m in cov.grid_sets().values())
    steps = tuple((name, tuple(str(m) for m in c.grid_sets().values())) for name, c in view.steps)
    runs = view.status.runs
    return (
        sets,
        steps,
        None if runs is None else (runs.message, runs.counts, runs.missed),
        tuple((b.name, b.phase, b.progress) for b in view.backfills),
        view.problem,
    )


def follow_job(
    session: Session, name: str, *, interval: float, output: str, rollup: bool = False
) -> int:
    """Follow PartitionedJob ``name`` until interrupted (exit 0) or deleted (exit 1).

    On a terminal the whole view is redrawn in place at every read (``rollup``: the roll-up
    grid of a job with steps); otherwise one line (:func:`~..render.job_follow_line`;
    ``output == "json"``: one document) whenever the outcomes (the roll-up's or a step's),
    the scheduled runs or the Backfills change.
    """
    resolver = _CompleteResolver()
    live_view = output != "json" and session.out.is_terminal
    last: object = None
    live: Live | None = None
    try:
        if live_view:
            live = Live(console=session.out, auto_refresh=False, transient=False)
            live.start()
        while True:
            body = session.client.find(PARTITIONED_JOBS, name)
            if body is None:
                if live is not None:
                    live.stop()
                    live = None
                session.err.print(f"PartitionedJob {name} was deleted.")
                return EXIT_FAILED
            view = build_job_view(session, body, resolver)
            now = clock.now()
            if live is not None:
                live.update(
                    render.render_job_status(
                        view, now, session.out.width, color=session.color, rollup=rollup
                    ),
                    refresh=True,
                )
            else:
                state = _state(view)
                if state != last:
                    last = state
                    if output == "json":
                        doc = documents.job_status_document(view, now)
                        session.write(json.dumps(doc) + "\n")
                    else:
                        session.out.print(render.job_follow_line(view, now), soft_wrap=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        if live is not None:
            live.stop()
