"""What the pages show and do, as blocking calls on the user's own API client.

Every function here is what one request of the web app needs: read objects through
:class:`~..client.Client` (the user's kubeconfig, context and RBAC: a request the user may
not make fails with the apiserver's words, as ``kubectl backfill`` says them), build the
views the command line builds (:func:`~..commands.job_status.build_job_view`,
:func:`~..commands.status.build_view`, :func:`~..commands.submit.plan_backfill`), and
return dataclasses and dicts the templates and the JSON endpoints render. Errors are
:class:`~..errors.CliError` with a plain message; the server shows them on the page.

:class:`Ui` holds the connection and the per-object caches (a job's complete partitions, a
Backfill's selection); it is shared by the server's worker threads, its caches behind a lock.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from ... import clock
from ...api.labels import (
    LABEL_PARTITION_INDEX,
    LABEL_PARTITIONED_JOB,
    LABEL_RETRY_OF,
    label_value,
)
from ...api.model import (
    BACKFILLS,
    MAX_EXPLICIT_PARTITIONS,
    PARTITIONED_JOBS,
    TERMINAL_PHASES,
    BackfillSpec,
)
from ...planning import naming
from ...planning.observed import observe_job
from ...planning.ranges import IndexSet
from ...planning.space import PartitionError, PartitionSpace, Selection
from ...planning.times import rfc3339
from ...planning.verdict import load_partitioned_job
from .. import render
from ..client import Client, LogUnavailable, Target, connect
from ..commands import job_status, specs
from ..commands import status as backfill_status
from ..commands.manage import failed_set, retry_spec
from ..commands.objects import (
    backfill_models,
    backfills_of,
    complete_partitions,
    job_space,
    step_names,
)
from ..commands.session import Session
from ..commands.submit import create_backfill, new_token, plan_backfill
from ..errors import CliError
from ..render.views import grid_sets, step_grid_sets
from . import data
from .views import (
    TERMINAL,
    BackfillPage,
    BackfillRow,
    JobPage,
    JobRow,
    LaunchForm,
    backfill_row,
    coverage_counts,
    job_state,
    preview_document,
    state_at,
)

#: Lines of a pod's log the partition panel shows at most (the tail).
LOG_TAIL_LINES = 500


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


class Ui:
    """The web app's connection to the cluster and its caches; one per ``kubectl backfill ui``.

    ``target`` are the kubeconfig flags; ``all_namespaces`` makes the lists span every
    namespace. Methods block (API requests); the server calls them from worker threads.
    Raises CliError from any method as the command line would.
    """

    def __init__(self, target: Target, *, all_namespaces: bool = False) -> None:
        self.target = target
        self.all_namespaces = all_namespaces
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], job_status._CompleteResolver] = {}
        self._grids: dict[tuple[str, str], backfill_status._GridResolver] = {}

    @property
    def client(self) -> Client:
        """The client of the kubeconfig's context (connects on first use)."""
        with self._lock:
            if self._client is None:
                self._client = connect(self.target)
            return self._client

    @property
    def namespace(self) -> str:
        """The namespace of ``-n``, else the context's, else ``default``."""
        return self.client.namespace

    @property
    def context(self) -> str:
        """The kubeconfig context in use."""
        return self.client.context

    def session(self, namespace: str) -> Session:
        """Return a Session acting in ``namespace`` (quiet consoles, no prompts)."""
        return Session(
            target=self.target,
            out=_quiet(),
            err=_quiet(),
            interactive=False,
            _client=self.client.in_namespace(namespace),
        )

    def _resolver(self, namespace: str, job: str) -> job_status._CompleteResolver:
        with self._lock:
            resolver = self._jobs.get((namespace, job))
            if resolver is None:
                resolver = self._jobs[(namespace, job)] = job_status._CompleteResolver()
            return resolver

    def _grid_resolver(self, session: Session, name: str) -> backfill_status._GridResolver:
        key = (session.namespace, name)
        with self._lock:
            resolver = self._grids.get(key)
            if resolver is None:
                resolver = self._grids[key] = backfill_status._GridResolver(session)
            return resolver

    # --------------------------------------------------------------------------- jobs

    def jobs(self, namespace: str | None) -> list[JobRow]:
        """Return the PartitionedJobs of ``namespace`` (None: every namespace), by name."""
        items = self.client.list_objects(PARTITIONED_JOBS, namespace)
        backfills = self.client.list_objects(BACKFILLS, namespace)
        items.sort(key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["name"]))
        return [self._job_row(item, backfills) for item in items]

    def _job_row(self, body: dict[str, Any], backfills: Sequence[dict[str, Any]]) -> JobRow:
        meta = body["metadata"]
        ns, name = str(meta.get("namespace") or self.namespace), str(meta["name"])
        view = self._job_view(ns, name, body)
        counts = coverage_counts(view)
        mine = [
            b
            for b in backfills
            if _ns(b) == ns and (b.get("spec") or {}).get("jobRef", {}).get("name") == name
        ]
        active = sum(1 for b in mine if str((b.get("status") or {}).get("phase")) not in TERMINAL)
        return JobRow(
            namespace=ns,
            name=name,
            description=view.description or "",
            headline=render.job_headline(view, clock.now()),
            total=sum(counts.values()),
            counts=counts,
            steps=step_names(view.spec),
            lag_seconds=(
                render.live_lag_seconds(view, clock.now()) if view.status.runs is not None else None
            ),
            backfills=len(mine),
            active_backfills=active,
            note=view.problem or view.grid_note or view.ledger_note,
        )

    def _job_view(
        self, namespace: str, name: str, body: dict[str, Any] | None = None
    ) -> render.JobStatusView:
        session = self.session(namespace)
        if body is None:
            body = session.client.get(PARTITIONED_JOBS, name)
        return job_status.build_job_view(session, body, self._resolver(namespace, name))

    def job(self, namespace: str, name: str) -> JobPage:
        """Return a PartitionedJob's page header: its partitions, headline, schedule and lag.

        Reads the job only (one request; the complete partitions are cached): the counts come
        with the grid (:meth:`job_grid`), which the page loads next.
        """
        session = self.session(namespace)
        body = session.client.get(PARTITIONED_JOBS, name)
        view = job_status.build_job_view(
            session, body, self._resolver(namespace, name), outcomes=False
        )
        now = clock.now()
        runs = view.runs
        return JobPage(
            view=view,
            headline=render.job_headline(view, now),
            total=len(view.grid.indices) if view.grid is not None else 0,
            steps=step_names(view.spec),
            lag_seconds=render.live_lag_seconds(view, now) if view.status.runs else None,
            schedule=None if runs is None else render.describe_runs(runs),
        )

    def job_grid(self, namespace: str, name: str, columns: int) -> dict[str, Any]:
        """Return the grid document (:func:`.data.grid_document`) of a job's partitions.

        Rows: the roll-up, then each step. Waiting: missing partitions an unfinished Backfill
        selects or the scheduled runs took on. CliError when the job does not exist; a job
        whose partitions cannot be drawn gives an empty grid with a note.
        """
        session = self.session(namespace)
        body = session.client.get(PARTITIONED_JOBS, name)
        backfills = backfills_of(session, name)
        view = job_status.build_job_view(
            session, body, self._resolver(namespace, name), backfills=backfills
        )
        now = clock.now()
        if view.coverage is None or view.grid is None:
            note = view.problem or view.grid_note or "no partition is complete yet"
            return data.grid_document(
                drawn=IndexSet(), rows=[], key_at=str, columns=columns, note=note, generated=now
            )
        waiting = self._waiting(session, view, backfills)
        rows = data.rows_of_coverage(view.coverage, view.steps, waiting)
        grid = view.grid
        return data.grid_document(
            drawn=grid.indices,
            rows=rows,
            key_at=grid.key_at,
            columns=columns,
            note=view.ledger_note,
            time_based=_time_based(view),
            generated=now,
        )

    def _waiting(
        self, session: Session, view: render.JobStatusView, backfills: Sequence[dict[str, Any]]
    ) -> IndexSet:
        """Partitions an unfinished run will run: Backfills' selections, the schedule's share.

        ``backfills`` are the job's raw Backfills.
        """
        waiting = IndexSet()
        runs = view.status.runs
        if runs is not None and runs.scheduled:
            with contextlib.suppress(ValueError):
                waiting = waiting.union(IndexSet.parse(runs.scheduled))
        for body in backfills:
            spec, status = backfill_models(body)
            if status.phase in TERMINAL_PHASES:
                continue
            name = str(body["metadata"]["name"])
            grid, _, _ = self._grid_resolver(session, name).resolve(body, spec, status)
            if grid is not None:
                waiting = waiting.union(grid.indices)
        return waiting

    def partition(self, namespace: str, job: str, position: int) -> dict[str, Any]:
        """Return what the partition panel shows for the partition at grid ``position``.

        Shape: ``{"position", "index", "key", "start", "end", "state", "steps": [{"name",
        "state"}], "jobs": [{"name", "run", "step", "attempt", "state", "created",
        "message"}], "runs": [{"backfill", "state", "phase", "at"}]}``; ``jobs`` are the Jobs
        that still exist (the newest first), ``runs`` the Backfills whose status records it
        (the newest first; ``at`` is the Backfill's creation time).
        CliError when the position is outside the grid.
        """
        session = self.session(namespace)
        body = session.client.get(PARTITIONED_JOBS, job)
        space, selection, complete, note = self._complete_selection(session, job, body)
        if selection is None or not 0 <= position < len(complete):
            raise CliError(note or f"no partition at position {position}")
        index = complete.nth(position)
        part = selection.partition(index)
        backfills = backfills_of(session, job)
        view = job_status.build_job_view(
            session, body, self._resolver(namespace, job), backfills=backfills
        )
        jobs = self._jobs_of(session, job, index, space.fingerprint)
        runs = _runs_recording(index, view, backfills)
        rows = [("", view.coverage)] if view.coverage is not None else []
        rows.extend(view.steps)
        states = {name: state_at(cov.grid_sets(), cov.missing, index) for name, cov in rows}
        return {
            "position": position,
            "index": index,
            "key": part.key,
            "start": rfc3339(part.start) or None,
            "end": rfc3339(part.end) or None,
            "state": states.get("", "missing"),
            "steps": [{"name": n, "state": s} for n, s in states.items() if n],
            "jobs": jobs,
            "runs": runs,
        }

    def _jobs_of(
        self, session: Session, job: str, index: int, fingerprint: str | None
    ) -> list[dict[str, Any]]:
        selector = f"{LABEL_PARTITIONED_JOB}={label_value(job)},{LABEL_PARTITION_INDEX}={index}"
        out = []
        for raw in session.client.list_jobs(selector):
            observed = observe_job(raw, "")
            if observed is None:
                continue
            if observed.partitioning and fingerprint and observed.partitioning != fingerprint:
                continue
            out.append(
                {
                    "name": observed.name,
                    "run": observed.run,
                    "step": observed.step,
                    "attempt": observed.attempt,
                    "state": job_state(observed.state, observed.suspended),
                    "created": observed.created or None,
                    "message": observed.message or None,
                }
            )
        out.sort(key=lambda j: (str(j["created"] or ""), j["attempt"]), reverse=True)
        return out

    def job_log(self, namespace: str, job_name: str) -> str:
        """Return the last :data:`LOG_TAIL_LINES` lines of the newest pod of Job ``job_name``.

        Only Jobs of this operator (the partitioned-job label) are read. CliError when the
        Job has no pod left, the pod has not started, or the apiserver has no log.
        """
        session = self.session(namespace)
        pods = session.client.list_pods(f"batch.kubernetes.io/job-name={job_name}")
        pods = [p for p in pods if LABEL_PARTITIONED_JOB in (p["metadata"].get("labels") or {})]
        if not pods:
            raise CliError(f"no pod left for Job {job_name}: it was deleted or not created yet")
        pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        pod = pods[-1]
        pod_name = pod["metadata"]["name"]
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase", "Unknown")
        if not node:
            raise CliError(f"pod {pod_name} has not started ({phase}): no log yet")
        try:
            return session.client.pod_log(pod_name, None, LOG_TAIL_LINES)
        except LogUnavailable as exc:
            raise CliError(f"no log for pod {pod_name} on node {node}: {exc.detail}") from exc

    def _complete_selection(
        self, session: Session, job: str, body: dict[str, Any] | None = None
    ) -> tuple[PartitionSpace, Selection | None, IndexSet, str | None]:
        """The job's space and complete partitions (selection, indices, note), cached.

        ``body`` is the PartitionedJob when the caller has read it (else it is read).
        """
        if body is None:
            body = session.client.get(PARTITIONED_JOBS, job)
        pj = load_partitioned_job(job, body)
        now = clock.now()
        space, problem = job_space(pj, now)
        if space is None:
            raise CliError(problem or f"PartitionedJob {job} has no partitions")
        definition = pj.spec.partitions.model_dump_json() if pj.spec is not None else None
        selection, complete, note = self._resolver(session.namespace, job).resolve(
            space, definition, int(now.timestamp())
        )
        return space, selection, complete, note

    def range_positions(self, namespace: str, job: str, from_: str, to: str) -> dict[str, Any]:
        """Return ``{"positions": text, "count": n}``: the grid positions from ``from_`` to ``to``.

        Keys as ``--from``/``--to`` take them (an empty bound: the first or last complete
        partition). CliError with the parse error for a bad or empty range.
        """
        session = self.session(namespace)
        space, _, complete, note = self._complete_selection(session, job)
        if not complete:
            raise CliError(note or "no partition is complete yet")
        try:
            chosen = complete_partitions(space, from_ or None, to or None)
        except PartitionError as exc:
            raise CliError(str(exc)) from exc
        if chosen is None:
            raise CliError("no partition is complete yet")
        positions = data.to_positions(chosen.indices, complete)
        return {"positions": positions.format(), "count": len(positions)}

    # ------------------------------------------------------------------------- launch

    def _spec_of(
        self, session: Session, job: str, form: LaunchForm
    ) -> tuple[BackfillSpec, str | None, IndexSet]:
        """Return (spec, note, complete): what a launch form runs and the grid's positions.

        ``note`` says when the selection was widened; ``complete`` are the job's complete
        partitions, whose ranks are the grid's positions.

        The selected positions map to keys through the job's complete partitions: one run of
        consecutive partitions is a ``range``; scattered ones an explicit key list up to
        ``MAX_EXPLICIT_PARTITIONS``; more than that a range from the first to the last (the
        note says so; ``reprocess`` then decides what runs in between).
        """
        _, selection, complete, note = self._complete_selection(session, job)
        if selection is None:
            raise CliError(note or "no partition is complete yet")
        chosen = data.selection_of(form.positions, complete)
        if not chosen:
            raise CliError("the selection holds no partition of this job")
        widened = None
        from_ = to = None
        keys: list[str] | None = None
        if chosen.interval_count() == 1:
            from_, to = selection.key(chosen.first()), selection.key(chosen.last())
        elif len(chosen) <= MAX_EXPLICIT_PARTITIONS:
            keys = [selection.key(i) for i in chosen]
        else:
            from_, to = selection.key(chosen.first()), selection.key(chosen.last())
            widened = (
                f"{len(chosen)} scattered partitions are more than the "
                f"{MAX_EXPLICIT_PARTITIONS} a Backfill lists: it runs the range {from_} to "
                f"{to}, and reprocess {form.reprocess} decides which of them run"
            )
        spec = specs.build_spec(
            job=job,
            from_=from_,
            to=to,
            partitions=keys,
            concurrency=form.concurrency,
            order=form.order,
            reprocess=form.reprocess,
            retries=form.retries,
            retry_backoff_seconds=form.retry_backoff_seconds,
            max_failed=form.max_failed,
            dry_run=form.dry_run,
            steps=form.steps,
            include_upstream=form.include_upstream,
            include_downstream=form.include_downstream,
        )
        return spec, widened, complete

    def preview(self, namespace: str, job: str, form: LaunchForm) -> dict[str, Any]:
        """Return the Launch modal's preview: what the operator's first pass would run.

        The same :func:`~..commands.submit.plan_backfill` as ``create`` and ``plan``. Shape:
        ``{"count", "selected", "first": [keys], "last": [keys], "skipped": {"count",
        "keys"}, "steps": [names] or null, "allSteps", "spec", "note", "positions"}``;
        ``positions`` are the grid positions that would run.
        """
        session = self.session(namespace)
        spec, note, complete = self._spec_of(session, job, form)
        return preview_document(plan_backfill(session, spec), note, complete)

    def launch(self, namespace: str, job: str, form: LaunchForm) -> str:
        """Create the Backfill the form describes (after the same preview); return its name.

        CliError when nothing would run (every selected partition has an outcome under the
        chosen reprocess), or the apiserver refuses it (RBAC, a name taken, the schema).
        """
        session = self.session(namespace)
        spec, _, _ = self._spec_of(session, job, form)
        planned = plan_backfill(session, spec)
        if not planned.preview.to_run:
            raise CliError(
                "nothing to run: every selected partition already has a recorded outcome "
                f"(reprocess {spec.reprocess}); no Backfill created"
            )

        def generated() -> str:
            return naming.default_name(job, clock.now(), new_token())

        if form.name is not None and session.client.find(BACKFILLS, form.name) is not None:
            raise CliError(f'a Backfill named "{form.name}" already exists in "{namespace}"')
        return create_backfill(
            session,
            spec,
            form.name or generated(),
            retry_name=None if form.name else generated,
        )

    # ---------------------------------------------------------------------- backfills

    def backfills(self, namespace: str | None, job: str | None = None) -> list[BackfillRow]:
        """Return the Backfills of ``namespace`` (None: all), newest first; only ``job``'s."""
        items = self.client.list_objects(BACKFILLS, namespace)
        rows = []
        for item in items:
            spec = item.get("spec") or {}
            if job is not None and (spec.get("jobRef") or {}).get("name") != job:
                continue
            rows.append(backfill_row(item))
        rows.sort(key=lambda r: (r.created or "", r.name), reverse=True)
        return rows

    def backfill(self, namespace: str, name: str) -> BackfillPage:
        """Return a Backfill's page: its status view, progress and which actions apply."""
        session = self.session(namespace)
        body = session.client.get(BACKFILLS, name)
        view = backfill_status.build_view(session, body, self._grid_resolver(session, name))
        now = clock.now()
        status = view.status
        phase = render.phase_of(view)
        finished = status.phase in TERMINAL_PHASES
        return BackfillPage(
            view=view,
            progress=render.progress_of(status, now),
            headline=render.headline(view, now),
            phase=phase,
            suspended=view.spec.suspend,
            finished=finished,
            failed=len(failed_set(status)),
            steps=tuple((s.name, s.counts.model_dump()) for s in status.steps),
            failures=tuple(f.model_dump(by_alias=True) for f in status.failures[:20]),
        )

    def backfill_grid(self, namespace: str, name: str, columns: int) -> dict[str, Any]:
        """Return the grid document of a Backfill's selection: roll-up, then each step."""
        page = self.backfill(namespace, name)
        view = page.view
        if view.grid is None:
            return data.grid_document(
                drawn=IndexSet(),
                rows=[],
                key_at=str,
                columns=columns,
                note=view.grid_note or "the selection is not resolved yet",
                generated=clock.now(),
            )
        status = view.status
        rollup = dict(grid_sets(status.partitions))
        if not page.finished:
            done = IndexSet()
            for members in rollup.values():
                done = done.union(members)
            rollup["waiting"] = view.grid.indices.difference(done)
        steps = [(s.name, step_grid_sets(s, status.running)) for s in status.steps]
        return data.grid_document(
            drawn=view.grid.indices,
            rows=data.rows_of_sets(rollup, steps),
            key_at=view.grid.key_at,
            columns=columns,
            generated=clock.now(),
        )

    def set_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        """Merge-patch ``spec.suspend`` of Backfill ``name`` (running Jobs finish either way)."""
        self.session(namespace).client.patch_backfill(name, {"spec": {"suspend": suspend}})

    def cancel(self, namespace: str, name: str) -> None:
        """Delete Backfill ``name``; its Jobs go by garbage collection (as ``cancel``)."""
        self.session(namespace).client.delete_backfill(name)

    def retry_failed(self, namespace: str, name: str) -> str:
        """Create a Backfill of exactly the failed partitions of ``name`` (as ``retry-failed``).

        Returns the new Backfill's name; CliError when nothing failed.
        """
        session = self.session(namespace)
        body = session.client.get(BACKFILLS, name)
        spec, status = backfill_models(body)
        if not failed_set(status):
            raise CliError(f"Backfill {name} has no failed partitions; nothing to retry")
        new_spec = retry_spec(session, spec, status)

        def generated() -> str:
            return naming.derived_name(name, f"retry-{new_token()}")

        return create_backfill(
            session, new_spec, generated(), retry_name=generated, labels={LABEL_RETRY_OF: name}
        )


# ------------------------------------------------------------------------------ helpers


def _ns(item: Mapping[str, Any]) -> str:
    return str((item.get("metadata") or {}).get("namespace") or "")


def _time_based(view: render.JobStatusView) -> bool:
    spec = view.spec
    return spec is not None and spec.partitions.schedule is not None


def _runs_recording(
    index: int, view: render.JobStatusView, backfills: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The Backfills (raw, of the job) whose status records partition ``index``, newest first."""
    out: list[dict[str, Any]] = []
    phases = {summary.name: summary.phase for summary in view.backfills}
    for body in backfills:
        _, status = backfill_models(body)
        sets = grid_sets(status.partitions)
        state = next((s for s, members in sets.items() if index in members), None)
        if state is not None:
            name = str(body["metadata"]["name"])
            created = str(body["metadata"].get("creationTimestamp") or "")
            out.append(
                {"backfill": name, "state": state, "phase": phases.get(name, ""), "at": created}
            )
    out.sort(key=lambda r: str(r["at"]), reverse=True)
    return out
