"""Creating Backfills: the preview (``plan``), and ``create`` (preview, confirm, create, follow).

Previews are :func:`backfill_operator.planning.ledger.preview` of the operator's own verdict
(:func:`backfill_operator.planning.verdict.judge`) on a Backfill not created yet, so what
``create`` and ``plan`` show is exactly what the operator's first pass will run.
:func:`submit` is shared with ``retry-failed``.

For a PartitionedJob with steps the preview stays partition-level (how many partitions, which
ones) and names the steps that run, as the same verdict resolves ``--steps``,
``--include-upstream`` and ``--include-downstream``; a step the job does not have (or
``--steps`` on a job without steps) is a usage error before anything is created.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import typer
import yaml

from ... import clock
from ...api.model import API_VERSION, BACKFILLS, GROUP, PARTITIONED_JOBS, BackfillSpec
from ...api.reasons import Reason
from ...planning import ledger, naming
from ...planning.verdict import InvalidSpec, Verdict, judge, new_backfill
from .. import documents, render
from ..client import NameTaken
from ..errors import EXIT_FAILED, EXIT_OK, CliError
from .objects import partitioned_job
from .session import DEFAULT_INTERVAL_SECONDS, Session
from .status import follow


@dataclass(frozen=True)
class Planned:
    """A previewed Backfill: the PartitionedJob's description and what would run.

    ``steps`` are the steps that would run, in launch order, and ``all_steps`` every step of
    the job (both None for a job without steps).
    """

    job: str
    namespace: str
    description: str
    preview: ledger.Preview
    spec: BackfillSpec
    steps: tuple[str, ...] | None = None
    all_steps: tuple[str, ...] | None = None


def _preview_error(job: str, verdict: Verdict, invalid: InvalidSpec) -> CliError:
    """Word why a preview failed: a bad selection in flags, else the PartitionedJob's fault.

    A bad selection is ``--from``/``--to``/keys, or ``--steps`` naming a step the job lacks
    (or any step of a job with ``jobTemplate``); the job's fault is, among others, a cycle
    among its steps (then the verdict holds no step graph of the job's).
    """
    spec = verdict.partitioned_job.spec
    graph_failed = spec is not None and spec.steps is not None and not verdict.graph.stepped
    if invalid.reason is Reason.INVALID_SELECTION or (
        invalid.reason is Reason.INVALID_STEPS and not graph_failed
    ):
        return CliError(render.flag_message(invalid.message))
    return CliError(f'PartitionedJob "{job}" is invalid: {invalid.detail}')


def plan_backfill(session: Session, spec: BackfillSpec) -> Planned:
    """Preview ``spec`` against the PartitionedJob in the cluster, as the operator would run it.

    Raises CliError (exit 2) for an unknown PartitionedJob, an invalid one (a cycle among
    its steps too), an unparseable date, a range outside the job's partitions, an unknown key
    or step.
    """
    job = spec.job_ref.name
    body = session.client.get(PARTITIONED_JOBS, job)
    pj = partitioned_job(job, body)
    verdict = judge(new_backfill(session.namespace, spec), pj, clock.now())
    try:
        result = ledger.preview(verdict)
    except InvalidSpec as exc:
        raise _preview_error(job, verdict, exc) from exc
    assert verdict.space is not None  # a valid verdict has its space
    graph = verdict.graph
    chosen, every = (verdict.steps, graph.order) if graph.stepped else (None, None)
    return Planned(job, session.namespace, verdict.space.describe(), result, spec, chosen, every)


def _show_preview(
    session: Session, planned: Planned, name: str | None, *, reprocess_hint: bool = True
) -> None:
    session.out.print(
        render.render_preview(
            job=planned.job,
            namespace=planned.namespace,
            description=planned.description,
            preview=planned.preview,
            spec=planned.spec,
            name=name,
            reprocess_hint=reprocess_hint,
            steps=planned.steps,
            all_steps=planned.all_steps,
        )
    )


def new_token() -> str:
    """Return 4 random hex characters for a generated Backfill name."""
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
    reprocess_hint: bool = True,
) -> int:
    """Preview, confirm (on a terminal, without ``yes``), create and optionally follow.

    ``name`` None means a generated name (``make_name()``, drawn again once if taken).
    ``reprocess_hint`` False: the preview does not suggest ``--reprocess`` (``missing``).
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
    _show_preview(session, planned, chosen if run else None, reprocess_hint=reprocess_hint)
    if run == 0:
        session.out.print(
            "Nothing to run: every selected partition already has a recorded outcome "
            f"(reprocess {spec.reprocess}); no Backfill created."
        )
        return EXIT_OK
    if session.interactive and not yes:
        what = "dry-run Backfill" if spec.dry_run else "Backfill"
        count = f"{run} partition{'s' if run != 1 else ''}"
        if spec.mark_succeeded:
            count = f"marks {count} succeeded without running them"
        question = f"Create {what} {chosen} ({count})?"
        if not typer.confirm(question, default=False, err=True):
            session.err.print("Aborted: nothing created.")
            return EXIT_FAILED
    ns = session.namespace
    chosen = create_backfill(
        session, spec, chosen, retry_name=None if name is not None else make_name, labels=labels
    )
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


def create_backfill(
    session: Session,
    spec: BackfillSpec,
    name: str,
    *,
    retry_name: Callable[[], str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """Create Backfill ``name`` with ``spec`` (and ``labels``) in the session's namespace.

    When the name is taken and ``retry_name`` is given (a generated name), one more name is
    drawn from it. Returns the name created; raises :class:`~..client.NameTaken` or
    CliError as :meth:`~..client.Client.create_backfill`. Shared by ``create``,
    ``retry-failed`` and the web page's Launch.
    """
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Backfill",
        "metadata": {
            "name": name,
            "namespace": session.namespace,
            **({"labels": labels} if labels else {}),
        },
        "spec": spec.to_api(),
    }
    try:
        session.client.create_backfill(body)
    except NameTaken:
        if retry_name is None:
            raise
        name = retry_name()
        body["metadata"]["name"] = name
        session.client.create_backfill(body)
    return name


def create(
    session: Session,
    spec: BackfillSpec,
    *,
    name: str | None,
    yes: bool,
    wait: bool,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    reprocess_hint: bool = True,
) -> int:
    """``create``: see :func:`submit`; the default name is ``<job>-<YYYYMMDD>-<4 hex>``."""
    job = spec.job_ref.name
    return submit(
        session,
        spec,
        name=name,
        make_name=lambda: naming.default_name(job, clock.now(), new_token()),
        yes=yes,
        wait=wait,
        interval=interval,
        reprocess_hint=reprocess_hint,
    )


def plan(session: Session, spec: BackfillSpec, output: str) -> int:
    """``plan``: the partitions a Backfill with ``spec`` would run, in launch order.

    ``output``: ``table`` (summary then one row per partition), ``json``, ``yaml`` or ``name``
    (one key per line). Creates nothing.
    """
    planned = plan_backfill(session, spec)
    if output in ("json", "yaml"):
        doc = documents.plan_document(
            job=planned.job,
            namespace=planned.namespace,
            description=planned.description,
            preview=planned.preview,
            spec=spec,
            steps=planned.steps,
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
