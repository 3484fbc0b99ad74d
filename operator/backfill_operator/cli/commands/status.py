"""``status``: one view of a Backfill, or (``-w``) follow it until it ends.

:func:`build_view` turns a raw Backfill into a :class:`~..render.StatusView`; the grid is
drawn over the Backfill's selection as the operator's verdict resolves it (pinned end
included), cached while the Backfill's generation, partitioning and selection stay the same.
:func:`follow` is shared with ``create --wait`` and ``retry-failed --wait``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.live import Live

from ... import clock
from ...api.model import BACKFILLS, PARTITIONED_JOBS, BackfillSpec, BackfillStatus, Phase
from ...api.reasons import Reason
from ...planning.verdict import load_partitioned_job
from .. import documents, render
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .objects import backfill_models, verdict_of
from .session import Session

_Grid = tuple[render.GridData | None, str | None, str | None]


class _GridResolver:
    """Resolves (and caches) the selection a Backfill's status grid is drawn over."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._key: object = None
        self._value: _Grid = (None, None, None)

    def resolve(self, body: dict[str, Any], spec: BackfillSpec, status: BackfillStatus) -> _Grid:
        """Return (grid data or None, why there is no grid, the job's description)."""
        sel = status.selection
        key = (
            body["metadata"].get("generation"),
            status.partitioning,
            (sel.first, sel.last, sel.count) if sel else None,
        )
        if key != self._key or sel is None:
            self._value = self._compute(spec, status)
            self._key = key
        return self._value

    def _compute(self, spec: BackfillSpec, status: BackfillStatus) -> _Grid:
        job = spec.job_ref.name
        body = self.session.client.find(PARTITIONED_JOBS, job)
        verdict = verdict_of(
            spec, status, load_partitioned_job(job, body), namespace=self.session.namespace
        )
        space, selection = verdict.space, verdict.selection
        if space is None or selection is None:
            invalid = verdict.invalid
            assert invalid is not None  # no selection: the verdict says why
            if invalid.reason is Reason.PARTITIONED_JOB_NOT_FOUND:
                return None, f'PartitionedJob "{job}" not found', None
            if verdict.partitioned_job.spec_error is not None:
                return None, f'PartitionedJob "{job}" is invalid', None
            return None, invalid.message, None
        description = space.describe()
        if verdict.partitioning_changed:
            return (
                None,
                f'the partitions of PartitionedJob "{job}" changed after this Backfill started',
                description,
            )
        indices = selection.indices

        def key_at(position: int) -> str:
            return selection.key(indices.nth(position))

        return render.GridData(indices, key_at), None, description


def build_view(session: Session, body: dict[str, Any], grids: _GridResolver) -> render.StatusView:
    """Return the :class:`~..render.StatusView` of a Backfill object (raw API dict)."""
    spec, status = backfill_models(body)
    meta = body["metadata"]
    grid, note, description = grids.resolve(body, spec, status)
    return render.StatusView(
        name=meta["name"],
        namespace=meta.get("namespace", session.namespace),
        job=spec.job_ref.name,
        spec=spec,
        status=status,
        created=meta.get("creationTimestamp"),
        deleting=bool(meta.get("deletionTimestamp")),
        description=description,
        grid=grid,
        grid_note=note,
    )


def _finished(body: dict[str, Any], view: render.StatusView) -> int | None:
    """Return the exit code once a followed Backfill is done, None while it is not.

    Done: Succeeded (0), Failed (1), Invalid (2), a dry run whose plan is written (0). A
    status older than the spec (observedGeneration behind) is never done.
    """
    status = view.status
    generation = body["metadata"].get("generation")
    if status.observed_generation is None or (
        generation is not None and status.observed_generation < generation
    ):
        return None
    if status.phase is Phase.INVALID:
        return EXIT_USAGE
    if view.spec.dry_run and status.plan is not None:
        return EXIT_OK
    if status.phase is Phase.SUCCEEDED:
        return EXIT_OK
    if status.phase is Phase.FAILED:
        return EXIT_FAILED
    return None


def _print_ending(session: Session, view: render.StatusView, code: int) -> None:
    """Print the last line of a followed Backfill: how it ended and what to do next."""
    c = view.status.counts
    if code == EXIT_USAGE:
        raise CliError(f"Backfill {view.name} is invalid: {render.headline(view)}")
    if view.spec.dry_run:
        session.out.print(f"Dry run of Backfill {view.name} planned: {render.headline(view)}")
        return
    if code == EXIT_OK:
        skipped = f", {c.skipped} skipped" if c.skipped else ""
        done = f"{c.succeeded} of {c.total} partitions"
        if view.spec.mark_succeeded:
            done = f"{c.marked} of {c.total} partitions marked succeeded without running"
        elif c.marked:
            skipped = f", {c.marked} marked succeeded{skipped}"
        session.out.print(
            f"Backfill {view.name} succeeded: {done}{skipped}.",
            style="green" if session.color else None,
        )
        return
    final = [f for f in view.status.failures if f.retry_at is None]
    keys = list(dict.fromkeys(f.key + (f" {f.step}" if f.step else "") for f in final))[:5]
    failed = c.failed + c.upstream_failed
    sample = f" ({', '.join(keys)}{', …' if failed > len(keys) else ''})" if keys else ""
    upstream = (
        f"; {c.upstream_failed} of them only upstream failed (a step they depend on failed "
        "or has no success)"
        if c.upstream_failed
        else ""
    )
    again = "them" if not view.status.steps else "their failed steps"
    session.out.print(
        f"Backfill {view.name} failed: {failed} of {c.total} partitions failed{sample}"
        f"{upstream}. Run {again} again with: kubectl backfill retry-failed {view.name} "
        f"-n {view.namespace}",
        style="red" if session.color else None,
    )


def status(
    session: Session,
    name: str,
    *,
    watch: bool,
    output: str,
    interval: float,
    body: dict[str, Any] | None = None,
    rollup: bool = False,
) -> int:
    """``status``: one view of a Backfill, or (``watch``) follow it until it ends.

    ``body`` is the Backfill when the caller has just read it; ``rollup`` draws the roll-up
    grid of a Backfill with steps. Without ``watch`` the exit code is 0 whatever the phase;
    with it, see :func:`follow`.
    """
    if watch:
        if body is None:
            session.client.get(BACKFILLS, name)  # a clear error before following anything
        return follow(session, name, interval=interval, output=output, rollup=rollup)
    if body is None:
        body = session.client.get(BACKFILLS, name)
    view = build_view(session, body, _GridResolver(session))
    now = clock.now()
    if output == "json":
        session.write(json.dumps(documents.status_document(view, now), indent=2) + "\n")
    else:
        session.out.print(
            render.render_status(view, now, session.out.width, color=session.color, rollup=rollup)
        )
    return EXIT_OK


@contextmanager
def _live(session: Session, enabled: bool) -> Iterator[Live | None]:
    if not enabled:
        yield None
        return
    with Live(console=session.out, auto_refresh=False, transient=False) as live:
        yield live


def follow(
    session: Session, name: str, *, interval: float, output: str, rollup: bool = False
) -> int:
    """Follow Backfill ``name`` until it ends; return 0 succeeded, 1 failed or deleted.

    On a terminal the full status view is redrawn in place at every read; otherwise one line
    is printed whenever the counts change (``output == "json"``: one JSON document per line,
    also when ``status.waiting`` or a step's counts change) and the full view once at the
    end (``rollup``: with the roll-up grid of a Backfill with steps). Raises CliError (exit
    2) when it turns Invalid.
    """
    grids = _GridResolver(session)
    live_view = output != "json" and session.out.is_terminal
    last_state: object = None
    code: int | None = None
    view: render.StatusView | None = None
    with _live(session, live_view) as live:
        while True:
            body = session.client.find(BACKFILLS, name)
            if body is None:
                session.err.print(f"Backfill {name} was deleted.")
                return EXIT_FAILED
            view = build_view(session, body, grids)
            now = clock.now()
            code = _finished(body, view)
            if live is not None:
                live.update(
                    render.render_status(
                        view, now, session.out.width, color=session.color, rollup=rollup
                    ),
                    refresh=True,
                )
            else:
                state: object = (view.status.phase, view.status.counts, view.status.plan)
                if output == "json":  # the document shows what waits and steps; the line not
                    steps = tuple((s.name, s.counts) for s in view.status.steps)
                    state = (state, view.status.waiting, steps)
                if state != last_state:
                    last_state = state
                    if output == "json":
                        session.write(json.dumps(documents.status_document(view, now)) + "\n")
                    else:
                        session.out.print(render.follow_line(view, now), soft_wrap=True)
            if code is not None:
                break
            time.sleep(interval)
    if output != "json":
        if live is None:
            session.out.print()
            session.out.print(
                render.render_status(
                    view, clock.now(), session.out.width, color=session.color, rollup=rollup
                )
            )
        session.out.print()
        _print_ending(session, view, code)
    elif code == EXIT_USAGE:
        raise CliError(f"Backfill {view.name} is invalid: {render.headline(view)}")
    return code
