"""``missing``: the complete partitions of a PartitionedJob that nobody ran, and filling them.

A partition is *missing* when its window is complete, the job's ledger records no outcome for
it (neither success nor failure) and no run (scheduled or Backfill) has an active Job for it;
``--failed`` adds the partitions whose last outcome is a failure. The computation is
:mod:`..coverage`'s index-set arithmetic over the complete partitions (selected as the
operator selects a Backfill's range, so ``--from``/``--to`` read as ``create``'s), so a job
of a million partitions costs a few set operations, not a loop over partitions.

``--create`` then submits the Backfill that fills them, through ``create``'s own preview,
confirmation and creation (:func:`~.submit.create`): an explicit ``partitions`` list when
there are at most ``MAX_EXPLICIT_PARTITIONS``, else a ``range`` from the first to the last
with ``reprocess`` skipping those that have an outcome (:func:`~..coverage.fill_target`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from ... import clock
from ...api.model import MAX_EXPLICIT_PARTITIONS, PARTITIONED_JOBS, Order
from ...planning.ranges import IndexSet
from ...planning.space import PartitionError, Selection
from ...planning.verdict import PartitionedJobView, load_backfill
from .. import coverage, documents, render
from ..errors import EXIT_OK, CliError
from . import specs, submit
from .objects import (
    backfills_of,
    complete_partitions,
    job_space,
    observed_jobs,
    partitioned_job,
    verdict_of,
)
from .session import DEFAULT_INTERVAL_SECONDS, Session

#: Keys written per chunk by ``-o name``.
_CHUNK = 4096


@dataclass(frozen=True)
class FillOptions:
    """The flags of the Backfill ``missing --create`` makes (as ``create``'s)."""

    concurrency: int = 10
    order: Order = Order.OLDEST_FIRST
    retries: int = 0
    retry_backoff_seconds: int = 10
    max_failed: int | None = None
    dry_run: bool = False
    priority: int = 0
    queue: str | None = None
    queue_priority_class: str | None = None


@dataclass(frozen=True)
class Found:
    """What ``missing`` found: the report and how to name the partitions.

    ``selection`` is the partitions looked at (None when none is complete); ``view.missing``
    the listed ones.
    """

    view: render.MissingView
    selection: Selection | None


def _unfinished_share(
    session: Session, job: PartitionedJobView, wanted: IndexSet
) -> tuple[tuple[str, int], ...]:
    """Return (Backfill, how many of ``wanted`` it selects) for the unfinished Backfills.

    Unfinished: not Succeeded, Failed or Invalid, and not a dry run; each one's selection is
    resolved as the operator resolves it (a Backfill of another numbering is left out).
    """
    out: list[tuple[str, int]] = []
    for item in backfills_of(session, job.name):
        phase = (item.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Invalid"):
            continue
        view = load_backfill(item)
        if view.spec is None or view.spec.dry_run:
            continue
        verdict = verdict_of(view.spec, view.status, job, namespace=session.namespace)
        if verdict.selection is None or verdict.partitioning_changed:
            continue
        count = coverage.count_within(wanted, verdict.selection.indices)
        if count:
            out.append((view.name, count))
    out.sort(key=lambda item: (-item[1], item[0]))
    return tuple(out)


def find(
    session: Session,
    job_name: str,
    *,
    from_: str | None,
    to: str | None,
    include_failed: bool,
) -> Found:
    """Read the PartitionedJob, its Jobs and Backfills; return what is missing.

    Raises CliError (exit 2) for an unknown or invalid PartitionedJob, a bound that does not
    parse, a range that selects no complete partition or more than ``MAX_PARTITIONS``.
    """
    body = session.client.get(PARTITIONED_JOBS, job_name)
    job = partitioned_job(job_name, body)
    space, problem = job_space(job, clock.now())
    if space is None:
        raise CliError(f'PartitionedJob "{job_name}" is invalid: {problem}')
    try:
        selection = complete_partitions(space, from_, to)
    except PartitionError as exc:
        raise CliError(render.flag_message(str(exc))) from exc
    description = space.describe()
    ns = session.namespace
    if selection is None:
        empty = render.MissingView(
            job=job_name,
            namespace=ns,
            description=description,
            coverage=None,
            first_key=None,
            last_key=None,
            missing=IndexSet(),
            include_failed=include_failed,
            ranges=(),
            range_count=0,
        )
        return Found(empty, None)
    fingerprint = space.fingerprint
    active = coverage.active_jobs(observed_jobs(session, job_name), fingerprint)
    cov = coverage.coverage_of(
        selection.indices, coverage.ledger_sets(job.status, fingerprint), active
    )
    wanted = coverage.missing_of(cov, include_failed=include_failed)
    share = None
    if job.spec is not None and job.spec.runs is not None:
        share = coverage.schedule_share(wanted, job.status.runs, fingerprint)
    view = render.MissingView(
        job=job_name,
        namespace=ns,
        description=description,
        coverage=cov,
        first_key=selection.first_key,
        last_key=selection.last_key,
        missing=wanted,
        include_failed=include_failed,
        ranges=tuple(coverage.key_ranges(wanted, selection.key, render.RANGE_LIMIT)),
        range_count=wanted.interval_count(),
        bounded=from_ is not None or to is not None,
        share=share,
        in_backfills=_unfinished_share(session, job, wanted) if wanted else (),
        ledger_note=coverage.ledger_problem(job.status, fingerprint),
    )
    return Found(view, selection)


def _fill_command(job: str, ns: str, from_: str | None, to: str | None, failed: bool) -> str:
    flags = "".join(
        f" {flag} {value}" for flag, value in (("--from", from_), ("--to", to)) if value
    )
    return f"kubectl backfill missing {job} -n {ns}{flags}{' --failed' if failed else ''} --create"


def missing(
    session: Session,
    job: str,
    *,
    from_: str | None,
    to: str | None,
    include_failed: bool,
    output: str,
    create: bool = False,
    options: FillOptions | None = None,
    name: str | None = None,
    yes: bool = False,
    wait: bool = False,
    interval: float = DEFAULT_INTERVAL_SECONDS,
) -> int:
    """``missing``: list the missing partitions; with ``create``, submit the Backfill filling them.

    ``output``: ``text`` (the report, ranges of consecutive keys), ``json``/``yaml``
    (:func:`~..documents.missing_document`, every range) or ``name`` (every key, one per
    line); ``create`` needs ``text``. Returns 0, or with ``create`` as :func:`~.submit.create`
    (0 when nothing is missing: nothing is created).
    """
    if create and output != "text":
        raise CliError("--create previews the Backfill and asks first: use it with -o text")
    found = find(session, job, from_=from_, to=to, include_failed=include_failed)
    view, selection = found.view, found.selection
    if output in ("json", "yaml"):
        ranges = coverage.key_ranges(view.missing, selection.key) if selection else []
        doc = documents.missing_document(view, ranges)
        if output == "json":
            session.write(json.dumps(doc, indent=2) + "\n")
        else:
            session.write(yaml.safe_dump(doc, sort_keys=False))
        return EXIT_OK
    if output == "name":
        if selection is not None:
            keys = coverage.iter_keys(view.missing, selection.key)
            chunk: list[str] = []
            for key in keys:
                chunk.append(key + "\n")
                if len(chunk) >= _CHUNK:
                    session.write("".join(chunk))
                    chunk = []
            session.write("".join(chunk))
        return EXIT_OK
    session.out.print(render.render_missing(view))
    if not view.missing or selection is None:
        if create:
            session.out.print("Nothing is missing: no Backfill created.")
        return EXIT_OK
    if not create:
        session.out.print(
            "Fill them with: " + _fill_command(job, session.namespace, from_, to, include_failed),
            style="dim",
        )
        return EXIT_OK
    target = coverage.fill_target(view.missing, selection.key, include_failed=include_failed)
    opts = options or FillOptions()
    session.out.print()
    if target.partitions is None:
        skipped = "that succeeded" if include_failed else "that have an outcome"
        session.out.print(
            f"{len(view.missing)} partitions are more than the {MAX_EXPLICIT_PARTITIONS} a "
            f"Backfill can list: it runs the range {target.range_from} … {target.range_to} "
            f"with reprocess {target.reprocess}, which skips the partitions of the range "
            f"{skipped}.",
            style="dim",
        )
    spec = specs.build_spec(
        job=job,
        from_=target.range_from,
        to=target.range_to,
        partitions=target.partitions,
        concurrency=opts.concurrency,
        order=opts.order,
        reprocess=target.reprocess,
        retries=opts.retries,
        retry_backoff_seconds=opts.retry_backoff_seconds,
        max_failed=opts.max_failed,
        dry_run=opts.dry_run,
        priority=opts.priority,
        queue=opts.queue,
        queue_priority_class=opts.queue_priority_class,
    )
    return submit.create(
        session, spec, name=name, yes=yes, wait=wait, interval=interval, reprocess_hint=False
    )
