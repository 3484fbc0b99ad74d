"""What each ``kubectl backfill`` command does, on top of the planner, client and renderers.

Every function returns the exit code (:mod:`.errors`) or raises CliError.

Previews go through :func:`backfill_operator.planner.preview`, exactly as the operator's first
pass selects partitions; the status grid re-resolves the Backfill's selection with
:func:`backfill_operator.planner.resolve_selection` (the pinned end from the status included).
"""

from __future__ import annotations

import itertools
import json
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live

from .. import clock, naming, planner
from ..model import (
    API_VERSION,
    GROUP,
    MAX_EXPLICIT_PARTITIONS,
    BackfillSpec,
    BackfillStatus,
    Order,
    PartitionedJobSpec,
    PartitionedJobStatus,
    Phase,
    Reprocess,
)
from ..partitions import PartitionError
from ..ranges import IndexSet
from . import render
from .client import (
    BACKFILLS,
    PARTITIONED_JOBS,
    Client,
    LogUnavailable,
    NameTaken,
    Target,
    connect,
)
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError

#: Seconds between two reads of a followed Backfill.
DEFAULT_INTERVAL_SECONDS = 1.0
#: Seconds ``cancel`` waits for the Backfill to disappear (the operator holds a finalizer).
CANCEL_WAIT_SECONDS = 10.0


@dataclass
class Session:
    """One invocation: where to connect, the consoles, whether a person can answer prompts.

    The client connects on first use, so usage errors never need a cluster.
    """

    target: Target
    out: Console
    err: Console
    interactive: bool
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        """The API client (connects on first use; raises CliError)."""
        if self._client is None:
            self._client = connect(self.target)
        return self._client

    @property
    def namespace(self) -> str:
        """The namespace commands act in."""
        return self.client.namespace

    def write(self, text: str) -> None:
        """Write ``text`` to stdout as is (machine-readable output, logs)."""
        sys.stdout.write(text)
        sys.stdout.flush()

    @property
    def color(self) -> bool:
        """True when stdout shows colours (a terminal, no NO_COLOR)."""
        return self.out.color_system is not None and not self.out.no_color


# ------------------------------------------------------------------------------- models


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))


def _job_models(body: dict[str, Any]) -> tuple[PartitionedJobSpec, PartitionedJobStatus]:
    name = body["metadata"]["name"]
    try:
        spec = PartitionedJobSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise CliError(f'PartitionedJob "{name}" is invalid: {_validation_message(exc)}') from exc
    try:
        status = PartitionedJobStatus.model_validate(body.get("status") or {})
    except ValidationError:
        status = PartitionedJobStatus()
    return spec, status


def _backfill_models(body: dict[str, Any]) -> tuple[BackfillSpec, BackfillStatus]:
    name = body["metadata"]["name"]
    try:
        spec = BackfillSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise CliError(f'Backfill "{name}" is invalid: {_validation_message(exc)}') from exc
    try:
        status = BackfillStatus.model_validate(body.get("status") or {})
    except ValidationError:
        status = BackfillStatus()
    return spec, status


def parse_keys(text: str) -> list[str]:
    """Split ``--partitions a,b,c`` into keys (spaces trimmed); CliError (exit 2) when empty."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise CliError("--partitions is empty: list partition keys, e.g. --partitions a,b,c")
    return keys


def build_spec(
    *,
    job: str,
    from_: str | None,
    to: str | None,
    partitions: list[str] | None,
    concurrency: int,
    order: Order,
    reprocess: Reprocess,
    retries: int,
    retry_backoff_seconds: int,
    max_failed: int | None,
    dry_run: bool,
) -> BackfillSpec:
    """Return the Backfill spec the flags describe; CliError (exit 2) when it is invalid.

    Exactly one of ``from_`` and ``partitions`` must be given; ``to`` only with ``from_``.
    """
    if (from_ is None) == (partitions is None):
        raise CliError("give either --from (with an optional --to) or --partitions")
    if to is not None and from_ is None:
        raise CliError("--to needs --from")
    raw: dict[str, Any] = {
        "jobRef": {"name": job},
        "concurrency": concurrency,
        "order": str(order),
        "reprocess": str(reprocess),
        "retries": {"limit": retries, "backoffSeconds": retry_backoff_seconds},
        "dryRun": dry_run,
    }
    if from_ is not None:
        raw["range"] = {"from": from_, **({"to": to} if to is not None else {})}
    else:
        raw["partitions"] = partitions
    if max_failed is not None:
        raw["maxFailedPartitions"] = max_failed
    try:
        return BackfillSpec.model_validate(raw)
    except ValidationError as exc:
        message = _validation_message(exc)
        raise CliError(f"invalid backfill: {render.flag_message(message)}") from exc


# ------------------------------------------------------------------------------ preview


@dataclass(frozen=True)
class Planned:
    """A previewed Backfill: the PartitionedJob's description and what would run."""

    job: str
    namespace: str
    description: str
    preview: planner.Preview
    spec: BackfillSpec


def plan_backfill(session: Session, spec: BackfillSpec) -> Planned:
    """Preview ``spec`` against the PartitionedJob in the cluster, as the operator would run it.

    Raises CliError (exit 2) for an unknown PartitionedJob, an invalid one, an unparseable
    date, a range outside the job's partitions or an unknown key.
    """
    job = spec.job_ref.name
    body = session.client.get(PARTITIONED_JOBS, job)
    pj_spec, pj_status = _job_models(body)
    now = clock.now()
    try:
        description = planner.build_space(pj_spec, now).describe()
    except planner.InvalidSpec as exc:
        raise CliError(f'PartitionedJob "{job}" is invalid: {exc.message}') from exc
    try:
        result = planner.preview(pj_spec, pj_status, spec, now)
    except planner.InvalidSpec as exc:
        raise CliError(render.flag_message(exc.message)) from exc
    return Planned(job, session.namespace, description, result, spec)


def _show_preview(session: Session, planned: Planned, name: str | None) -> None:
    session.out.print(
        render.render_preview(
            job=planned.job,
            namespace=planned.namespace,
            description=planned.description,
            preview=planned.preview,
            spec=planned.spec,
            name=name,
        )
    )


def _token() -> str:
    return secrets.token_hex(2)


def submit(
    session: Session,
    spec: BackfillSpec,
    *,
    name: str | None,
    make_name: Callable[[], str],
    yes: bool,
    wait: bool,
    interval: float,
    labels: dict[str, str] | None = None,
) -> int:
    """Preview, confirm (on a terminal, without ``yes``), create and optionally follow.

    ``name`` None means a generated name (``make_name()``, drawn again once if taken).
    Returns 0 (created, or succeeded with ``wait``), 1 (declined, or failed with ``wait``).
    """
    if name is not None and session.client.find(BACKFILLS, name) is not None:
        raise NameTaken(
            f'a Backfill named "{name}" already exists in namespace "{session.namespace}": '
            "pick another --name, or leave --name out for a generated one"
        )
    planned = plan_backfill(session, spec)
    chosen = name or make_name()
    run = len(planned.preview.to_run)
    _show_preview(session, planned, chosen if run else None)
    if run == 0:
        session.out.print(
            "Nothing to run: every selected partition already has a recorded outcome "
            f"(reprocess {spec.reprocess}); no Backfill created."
        )
        return EXIT_OK
    if session.interactive and not yes:
        what = "dry-run Backfill" if spec.dry_run else "Backfill"
        question = f"Create {what} {chosen} ({run} partition{'s' if run != 1 else ''})?"
        if not typer.confirm(question, default=False, err=True):
            session.err.print("Aborted: nothing created.")
            return EXIT_FAILED
    ns = session.namespace
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Backfill",
        "metadata": {"name": chosen, "namespace": ns, **({"labels": labels} if labels else {})},
        "spec": spec.to_api(),
    }
    try:
        session.client.create_backfill(body)
    except NameTaken:
        if name is not None:
            raise
        chosen = make_name()
        body["metadata"]["name"] = chosen
        session.client.create_backfill(body)
    session.out.print(f"backfill.{GROUP}/{chosen} created")
    if spec.dry_run and not wait:
        session.out.print(
            "Dry run: the operator writes the plan into the Backfill's status and launches "
            f"nothing. See it with: kubectl backfill status {chosen} -n {ns}",
            style="dim",
        )
    elif not wait:
        session.out.print(
            f"Follow it with: kubectl backfill status {chosen} -n {ns} -w", style="dim"
        )
    if wait:
        return follow(session, chosen, interval=interval, output="text")
    return EXIT_OK


def create(
    session: Session,
    spec: BackfillSpec,
    *,
    name: str | None,
    yes: bool,
    wait: bool,
    interval: float = DEFAULT_INTERVAL_SECONDS,
) -> int:
    """``create``: see :func:`submit`; the default name is ``<job>-<YYYYMMDD>-<4 hex>``."""
    job = spec.job_ref.name
    return submit(
        session,
        spec,
        name=name,
        make_name=lambda: render.default_name(job, clock.now(), _token()),
        yes=yes,
        wait=wait,
        interval=interval,
    )


def plan(session: Session, spec: BackfillSpec, output: str) -> int:
    """``plan``: the partitions a Backfill with ``spec`` would run, in launch order.

    ``output``: ``table`` (summary then one row per partition), ``json``, ``yaml`` or ``name``
    (one key per line). Creates nothing.
    """
    planned = plan_backfill(session, spec)
    if output in ("json", "yaml"):
        doc = render.plan_document(
            job=planned.job,
            namespace=planned.namespace,
            description=planned.description,
            preview=planned.preview,
            spec=spec,
        )
        if output == "json":
            session.write(json.dumps(doc, indent=2) + "\n")
        else:
            session.write(yaml.safe_dump(doc, sort_keys=False))
        return EXIT_OK
    if output == "name":
        sel = planned.preview.selection
        for chunk in _chunks(sel.key(i) for i in planned.preview.launch_order(spec.order)):
            session.write("".join(k + "\n" for k in chunk))
        return EXIT_OK
    _show_preview(session, planned, None)
    session.out.print()
    lines = render.format_table(
        ["#", "KEY", "START (UTC)", "END (UTC)"],
        render.plan_table_rows(planned.preview, spec.order),
    )
    session.write("\n".join(lines) + "\n")
    return EXIT_OK


def _chunks(items: Iterator[str], size: int = 4096) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


# ------------------------------------------------------------------------------- status


class _GridResolver:
    """Resolves (and caches) the selection a Backfill's status grid is drawn over."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._key: object = None
        self._value: tuple[render.GridData | None, str | None, str | None] = (None, None, None)

    def resolve(
        self, body: dict[str, Any], spec: BackfillSpec, status: BackfillStatus
    ) -> tuple[render.GridData | None, str | None, str | None]:
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

    def _compute(
        self, spec: BackfillSpec, status: BackfillStatus
    ) -> tuple[render.GridData | None, str | None, str | None]:
        job = spec.job_ref.name
        body = self.session.client.find(PARTITIONED_JOBS, job)
        if body is None:
            return None, f'PartitionedJob "{job}" not found', None
        try:
            pj_spec = PartitionedJobSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return None, f'PartitionedJob "{job}" is invalid', None
        try:
            space = planner.build_space(pj_spec, clock.now())
            selection = planner.resolve_selection(space, spec, status)
        except planner.InvalidSpec as exc:
            return None, exc.message, None
        description = space.describe()
        if status.partitioning and status.partitioning != space.fingerprint:
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
    """Return the :class:`~.render.StatusView` of a Backfill object (raw API dict)."""
    spec, status = _backfill_models(body)
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


def _verdict(session: Session, view: render.StatusView, code: int) -> None:
    """Print the last line of a followed Backfill: how it ended and what to do next."""
    c = view.status.counts
    if code == EXIT_USAGE:
        raise CliError(f"Backfill {view.name} is invalid: {render.headline(view)}")
    if view.spec.dry_run:
        session.out.print(f"Dry run of Backfill {view.name} planned: {render.headline(view)}")
        return
    if code == EXIT_OK:
        skipped = f", {c.skipped} skipped" if c.skipped else ""
        session.out.print(
            f"Backfill {view.name} succeeded: {c.succeeded} of {c.total} partitions{skipped}.",
            style="green" if session.color else None,
        )
        return
    keys = [f.key for f in view.status.failures if f.retry_at is None][:5]
    sample = f" ({', '.join(keys)}{', …' if c.failed > len(keys) else ''})" if keys else ""
    session.out.print(
        f"Backfill {view.name} failed: {c.failed} of {c.total} partitions failed{sample}. "
        f"Run them again with: kubectl backfill retry-failed {view.name} -n {view.namespace}",
        style="red" if session.color else None,
    )


def status(session: Session, name: str, *, watch: bool, output: str, interval: float) -> int:
    """``status``: one view of a Backfill, or (``watch``) follow it until it ends.

    Without ``watch`` the exit code is 0 whatever the phase; with it, see :func:`follow`.
    """
    if watch:
        session.client.get(BACKFILLS, name)  # a clear error before following anything
        return follow(session, name, interval=interval, output=output)
    body = session.client.get(BACKFILLS, name)
    view = build_view(session, body, _GridResolver(session))
    now = clock.now()
    if output == "json":
        session.write(json.dumps(render.status_document(view, now), indent=2) + "\n")
    else:
        session.out.print(render.render_status(view, now, session.out.width, color=session.color))
    return EXIT_OK


@contextmanager
def _live(session: Session, enabled: bool) -> Iterator[Live | None]:
    if not enabled:
        yield None
        return
    with Live(console=session.out, auto_refresh=False, transient=False) as live:
        yield live


def follow(session: Session, name: str, *, interval: float, output: str) -> int:
    """Follow Backfill ``name`` until it ends; return 0 succeeded, 1 failed or deleted.

    On a terminal the full status view is redrawn in place at every read; otherwise one line
    is printed whenever the counts change (``output == "json"``: one JSON document per line)
    and the full view once at the end. Raises CliError (exit 2) when it turns Invalid.
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
                    render.render_status(view, now, session.out.width, color=session.color),
                    refresh=True,
                )
            else:
                state = (view.status.phase, view.status.counts, view.status.plan)
                if state != last_state:
                    last_state = state
                    if output == "json":
                        session.write(json.dumps(render.status_document(view, now)) + "\n")
                    else:
                        session.out.print(render.follow_line(view, now), soft_wrap=True)
            if code is not None:
                break
            time.sleep(interval)
    if output != "json":
        if live is None:
            session.out.print()
            session.out.print(
                render.render_status(view, clock.now(), session.out.width, color=session.color)
            )
        session.out.print()
        _verdict(session, view, code)
    elif code == EXIT_USAGE:
        raise CliError(f"Backfill {view.name} is invalid: {render.headline(view)}")
    return code


# --------------------------------------------------------------------------------- list


def list_backfills(session: Session, *, all_namespaces: bool, output: str) -> int:
    """``list``: the Backfills of the namespace (or all), as a table, JSON or names."""
    items = session.client.list_objects(BACKFILLS, None if all_namespaces else session.namespace)
    items.sort(key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["name"]))
    if output == "json":
        session.write(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
        session.write("\n")
        return EXIT_OK
    if output == "name":
        session.write("".join(f"backfill.{GROUP}/{i['metadata']['name']}\n" for i in items))
        return EXIT_OK
    if not items:
        where = "" if all_namespaces else f' in namespace "{session.namespace}"'
        session.err.print(f"No Backfills found{where}.")
        return EXIT_OK
    headers, rows = render.list_rows(items, clock.now(), all_namespaces=all_namespaces)
    session.write("\n".join(render.format_table(headers, rows)) + "\n")
    return EXIT_OK


# ------------------------------------------------------------------------ suspend/resume


def set_suspend(session: Session, name: str, suspend: bool) -> int:
    """``suspend`` / ``resume``: merge-patch ``spec.suspend``; running Jobs finish either way."""
    body = session.client.get(BACKFILLS, name)
    spec, status = _backfill_models(body)
    word = "suspended" if suspend else "resumed"
    if spec.suspend == suspend:
        state = "suspended" if suspend else "not suspended"
        session.out.print(f"Backfill {name} is already {state}; nothing changed.")
        return EXIT_OK
    session.client.patch_backfill(name, {"spec": {"suspend": suspend}})
    session.out.print(f"backfill.{GROUP}/{name} {word}")
    if status.phase in (Phase.SUCCEEDED, Phase.FAILED):
        session.out.print(
            f"Note: Backfill {name} has already finished ({status.phase}); this changes nothing.",
            style="dim",
        )
    elif suspend and status.counts.running:
        session.out.print(
            f"Nothing new is launched; {_jobs(status.counts.running)} finish. "
            f"Resume with: kubectl backfill resume {name} -n {session.namespace}",
            style="dim",
        )
    return EXIT_OK


# --------------------------------------------------------------------------------- cancel


def _jobs(running: int) -> str:
    return f"{running} running Job" + ("s" if running != 1 else "")


def cancel(session: Session, name: str, *, yes: bool) -> int:
    """``cancel``: ask (on a terminal, without ``yes``), then delete the Backfill.

    Its Jobs (and their pods) are deleted by garbage collection: they are owned by it. Waits
    up to ``CANCEL_WAIT_SECONDS`` for the Backfill to go (the operator's finalizer) and says
    so when it has not. Returns 0, or 1 when declined.
    """
    body = session.client.get(BACKFILLS, name)
    spec, status = _backfill_models(body)
    c = status.counts
    phase = status.phase or "Pending"
    session.out.print(
        f"Backfill {name} (PartitionedJob {spec.job_ref.name}): {phase}, "
        f"{c.succeeded + c.failed + c.skipped}/{c.total} done, {c.running} running."
    )
    if session.interactive and not yes:
        question = f"Cancel Backfill {name}? It is deleted" + (
            f" and its {_jobs(c.running)} {'are' if c.running > 1 else 'is'} stopped"
            if c.running
            else ""
        )
        if not typer.confirm(question, default=False, err=True):
            session.err.print(f"Aborted: Backfill {name} kept.")
            return EXIT_FAILED
    session.client.delete_backfill(name)
    deadline = clock.monotonic() + CANCEL_WAIT_SECONDS
    left = session.client.find(BACKFILLS, name)
    while left is not None and clock.monotonic() < deadline:
        time.sleep(0.2)
        left = session.client.find(BACKFILLS, name)
    if left is not None:
        finalizers = ", ".join(left["metadata"].get("finalizers") or []) or "none"
        session.out.print(
            f"backfill.{GROUP}/{name} is being deleted: waiting for its finalizers "
            f"({finalizers}); the operator releases it once it has stopped (is it running?)"
        )
        return EXIT_OK
    tail = (
        f"; its {_jobs(c.running)} {'are' if c.running > 1 else 'is'} removed by garbage collection"
        if c.running
        else ""
    )
    session.out.print(f"backfill.{GROUP}/{name} deleted{tail}")
    return EXIT_OK


# --------------------------------------------------------------------------- retry-failed


def failed_keys(session: Session, spec: BackfillSpec, status: BackfillStatus) -> list[str]:
    """Return the keys of a Backfill's failed partitions (``status.partitions.failed``).

    The compact set holds global indices; they are mapped to keys through the Backfill's own
    selection, re-resolved from its PartitionedJob. Raises CliError when the job is gone or
    its partitions changed (the indices no longer name the same partitions), or when more
    than ``MAX_EXPLICIT_PARTITIONS`` failed.
    """
    failed = IndexSet.parse(status.partitions.failed)
    job = spec.job_ref.name
    body = session.client.get(PARTITIONED_JOBS, job)
    pj_spec, _ = _job_models(body)
    try:
        space = planner.build_space(pj_spec, clock.now())
        selection = planner.resolve_selection(space, spec, status)
    except planner.InvalidSpec as exc:
        raise CliError(f"cannot map the failed partitions to keys: {exc.message}") from exc
    if status.partitioning and status.partitioning != space.fingerprint:
        raise CliError(
            f'the partitions of PartitionedJob "{job}" changed (cron, timeZone, start or '
            "values) since this Backfill ran; its failed partition numbers no longer name the "
            "same partitions"
        )
    members = failed.intersection(selection.indices)
    if len(members) > MAX_EXPLICIT_PARTITIONS:
        raise CliError(
            f"{len(members)} partitions failed, more than the {MAX_EXPLICIT_PARTITIONS} a "
            f"Backfill can list; run the range again with only the failed ones: kubectl "
            f"backfill create {job} --from {selection.first_key} --to {selection.last_key} "
            "--reprocess failed"
        )
    return [selection.key(i) for i in members]


def retry_failed(
    session: Session,
    name: str,
    *,
    new_name: str | None,
    concurrency: int | None,
    retries: int | None,
    yes: bool,
    wait: bool,
    interval: float = DEFAULT_INTERVAL_SECONDS,
) -> int:
    """``retry-failed``: a new Backfill of exactly the failed partitions, ``reprocess: All``.

    Concurrency, order, retry policy and failure budget are the original's unless given.
    Returns 0 when there is nothing to retry; otherwise as :func:`submit`.
    """
    body = session.client.get(BACKFILLS, name)
    spec, status = _backfill_models(body)
    if not status.partitions.failed:
        session.out.print(f"Backfill {name} has no failed partitions; nothing to retry.")
        return EXIT_OK
    if status.phase not in (Phase.SUCCEEDED, Phase.FAILED):
        session.err.print(
            f"Note: Backfill {name} is still {status.phase or 'Pending'}; partitions that "
            "fail from now on are not included.",
            style="dim",
        )
    keys = failed_keys(session, spec, status)
    retry_policy = spec.retries.to_api()
    if retries is not None:
        retry_policy["limit"] = retries
    raw: dict[str, Any] = {
        "jobRef": {"name": spec.job_ref.name},
        "partitions": keys,
        "concurrency": concurrency or spec.concurrency,
        "order": str(spec.order),
        "reprocess": str(Reprocess.ALL),
        "retries": retry_policy,
    }
    if spec.max_failed_partitions is not None:
        raw["maxFailedPartitions"] = spec.max_failed_partitions
    try:
        new_spec = BackfillSpec.model_validate(raw)
    except ValidationError as exc:
        raise CliError(f"invalid backfill: {_validation_message(exc)}") from exc
    return submit(
        session,
        new_spec,
        name=new_name,
        make_name=lambda: render.derived_name(name, f"retry-{_token()}"),
        yes=yes,
        wait=wait,
        interval=interval,
        labels={f"{GROUP}/retry-of": name},
    )


# ----------------------------------------------------------------------------------- logs


def _why_no_job(
    session: Session, name: str, spec: BackfillSpec, status: BackfillStatus, key: str
) -> CliError:
    """Explain why partition ``key`` of Backfill ``name`` has no Job (exit 2 or 1)."""
    body = session.client.find(PARTITIONED_JOBS, spec.job_ref.name)
    if body is not None:
        try:
            pj_spec = PartitionedJobSpec.model_validate(body.get("spec") or {})
            space = planner.build_space(pj_spec, clock.now())
            selection = planner.resolve_selection(space, spec, status)
            index = space.select_keys([key]).indices.first()
        except (ValidationError, planner.InvalidSpec):
            index = None
        except PartitionError as exc:
            return CliError(str(exc))
        if index is not None:
            if index not in selection.indices:
                return CliError(
                    f'partition "{key}" is not one of Backfill {name}\'s partitions '
                    f"({selection.first_key} … {selection.last_key})"
                )
            sets = status.partitions
            if index in IndexSet.parse(sets.succeeded):
                return CliError(
                    f"no Job left for partition {key}: it succeeded and its Job was deleted "
                    f"(Backfill {name} keeps its last {spec.successful_jobs_history_limit} "
                    "successful Jobs: spec.successfulJobsHistoryLimit)",
                    EXIT_FAILED,
                )
            if index in IndexSet.parse(sets.failed):
                return CliError(
                    f"no Job left for partition {key}: it failed and its Job was deleted "
                    f"(Backfill {name} keeps its last {spec.failed_jobs_history_limit} failed "
                    "Jobs: spec.failedJobsHistoryLimit)",
                    EXIT_FAILED,
                )
            if index in IndexSet.parse(sets.skipped):
                return CliError(
                    f"partition {key} was skipped (it already had an outcome; reprocess "
                    f"{spec.reprocess}): no Job ran for it in Backfill {name}",
                    EXIT_FAILED,
                )
            return CliError(f"partition {key} has not started yet: no Job, no log", EXIT_FAILED)
    return CliError(f"Backfill {name} has no Job for partition {key}", EXIT_FAILED)


def _attempt(job: dict[str, Any]) -> int:
    try:
        return int((job["metadata"].get("labels") or {}).get(naming.LABEL_ATTEMPT, "0"))
    except ValueError:
        return 0


def logs(
    session: Session,
    name: str,
    *,
    key: str,
    attempt: int | None,
    container: str | None,
    tail: int | None,
) -> int:
    """``logs``: print the log of the pod that ran partition ``key`` (latest attempt).

    Returns 0 when printed; raises CliError: exit 2 for an unknown Backfill, partition,
    attempt or container; exit 1 when there is no Job, no pod or no log (e.g. under KWOK).
    """
    body = session.client.get(BACKFILLS, name)
    spec, status = _backfill_models(body)
    uid = body["metadata"]["uid"]
    jobs = [
        j
        for j in session.client.list_jobs(f"{naming.LABEL_BACKFILL_UID}={uid}")
        if (j["metadata"].get("annotations") or {}).get(naming.ANNOTATION_PARTITION_KEY) == key
    ]
    if not jobs:
        raise _why_no_job(session, name, spec, status, key)
    jobs.sort(key=_attempt)
    if attempt is not None:
        picked = [j for j in jobs if _attempt(j) == attempt]
        if not picked:
            have = ", ".join(str(_attempt(j)) for j in jobs)
            raise CliError(f"partition {key} has no Job for attempt {attempt} (attempts: {have})")
        job = picked[-1]
    else:
        job = jobs[-1]
    job_name = job["metadata"]["name"]
    pods = session.client.list_pods(f"batch.kubernetes.io/job-name={job_name}") or (
        session.client.list_pods(f"job-name={job_name}")
    )
    if not pods:
        raise CliError(
            f"no pod left for partition {key} (Job {job_name}): it was deleted or not created yet",
            EXIT_FAILED,
        )
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    pod = pods[-1]
    pod_name = pod["metadata"]["name"]
    node = (pod.get("spec") or {}).get("nodeName")
    phase = (pod.get("status") or {}).get("phase", "Unknown")
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if container is not None and container not in containers:
        raise CliError(
            f"pod {pod_name} has no container {container} (it has: {', '.join(containers)})"
        )
    session.err.print(
        f"partition {key}: Job {job_name}, attempt {_attempt(job)}, pod {pod_name} ({phase})"
        + (f" on node {node}" if node else ""),
        style="dim",
        highlight=False,
    )
    if not node:
        raise CliError(
            f"no log available for partition {key}: pod {pod_name} has not started ({phase})",
            EXIT_FAILED,
        )
    chosen = [container] if container else containers
    for c in chosen:
        try:
            text = session.client.pod_log(pod_name, c, tail)
        except LogUnavailable as exc:
            node_obj = session.client.find_node(node)
            raise CliError(
                render.log_unavailable(
                    key=key,
                    pod=pod_name,
                    node=node,
                    simulated=session.client.is_simulated(node_obj),
                    detail=exc.detail,
                ),
                EXIT_FAILED,
            ) from exc
        if len(chosen) > 1:
            session.write(f"==> container {c} <==\n")
        session.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK
