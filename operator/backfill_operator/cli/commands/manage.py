"""Managing existing Backfills: ``list``, ``suspend``/``resume``, ``cancel``, ``retry-failed``.

``retry-failed`` maps the failed partitions of a Backfill (global indices in its status) to
keys through the Backfill's own selection, as the operator's verdict resolves it, and submits
a new Backfill of exactly those keys (:func:`~.submit.submit`). For a PartitionedJob with
steps the failed partitions are the roll-up's (a step failed, or only upstream failed) and
the new Backfill runs them with ``reprocess: Failed``: per partition only the steps without
a recorded success run, with the steps that depend on them; the steps that succeeded are
skipped.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from pydantic import ValidationError

from ... import clock
from ...api.labels import LABEL_RETRY_OF
from ...api.model import (
    BACKFILLS,
    GROUP,
    MAX_EXPLICIT_PARTITIONS,
    PARTITIONED_JOBS,
    TERMINAL_PHASES,
    BackfillSpec,
    BackfillStatus,
    Reprocess,
)
from ...planning import naming
from ...planning.ranges import IndexSet
from ...planning.verdict import PartitionedJobView, validation_summary
from .. import render
from ..errors import EXIT_FAILED, EXIT_OK, CliError
from .job_status import parse_ref
from .objects import backfill_models, partitioned_job, verdict_of
from .session import DEFAULT_INTERVAL_SECONDS, Session
from .submit import new_token, submit

#: Seconds ``cancel`` waits for the Backfill to disappear (the operator holds a finalizer).
CANCEL_WAIT_SECONDS = 10.0


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


def set_suspend(session: Session, ref: str, suspend: bool) -> int:
    """``suspend`` / ``resume``: merge-patch ``spec.suspend``; running Jobs finish either way.

    ``pj/NAME`` (as ``status`` spells it) suspends or resumes a PartitionedJob's scheduled
    runs instead (``spec.runs.suspend``); a bare name is a Backfill.
    """
    plural, name = parse_ref(ref)
    if plural == PARTITIONED_JOBS:
        return _set_schedule_suspend(session, name, suspend)
    body = session.client.get(BACKFILLS, name)
    spec, status = backfill_models(body)
    word = "suspended" if suspend else "resumed"
    if spec.suspend == suspend:
        state = "suspended" if suspend else "not suspended"
        session.out.print(f"Backfill {name} is already {state}; nothing changed.")
        return EXIT_OK
    session.client.patch_backfill(name, {"spec": {"suspend": suspend}})
    session.out.print(f"backfill.{GROUP}/{name} {word}")
    if status.phase in TERMINAL_PHASES:
        session.out.print(
            f"Note: Backfill {name} has already finished ({status.phase}); this changes nothing.",
            style="dim",
        )
    elif suspend and status.running:
        session.out.print(
            f"Nothing new is launched; {_jobs(len(status.running))} finish. "
            f"Resume with: kubectl backfill resume {name} -n {session.namespace}",
            style="dim",
        )
    return EXIT_OK


def _set_schedule_suspend(session: Session, name: str, suspend: bool) -> int:
    """Merge-patch ``spec.runs.suspend`` of PartitionedJob ``name``.

    Raises CliError (exit 2) when the job has no scheduled runs.
    """
    job = partitioned_job(name, session.client.get(PARTITIONED_JOBS, name))
    runs = job.spec.runs if job.spec is not None else None
    if runs is None:
        raise CliError(
            f'PartitionedJob "{name}" has no scheduled runs (spec.runs): nothing to '
            f"{'suspend' if suspend else 'resume'}"
        )
    state = "suspended" if suspend else "not suspended"
    if runs.suspend == suspend:
        session.out.print(f"The schedule of PartitionedJob {name} is already {state}.")
        return EXIT_OK
    session.client.patch_partitioned_job(name, {"spec": {"runs": {"suspend": suspend}}})
    session.out.print(
        f"partitionedjob.{GROUP}/{name} schedule {'suspended' if suspend else 'resumed'}"
    )
    note = (
        "No scheduled partition starts; running ones finish; Backfills of the job keep "
        "running. Windows closing meanwhile are decided on resume by catchUp "
        f"({runs.catch_up})."
        if suspend
        else f"Windows that closed while suspended are decided now by catchUp ({runs.catch_up})."
    )
    session.out.print(note, style="dim")
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
    spec, status = backfill_models(body)
    c = status.counts
    jobs = len(status.running)  # active Jobs (a Job may run several partitions)
    phase = status.phase or "Pending"
    session.out.print(
        f"Backfill {name} (PartitionedJob {spec.job_ref.name}): {phase}, "
        f"{c.succeeded + c.failed + c.skipped + c.upstream_failed + c.marked}/{c.total} done, "
        f"{c.running} running."
    )
    if session.interactive and not yes:
        question = f"Cancel Backfill {name}? It is deleted" + (
            f" and its {_jobs(jobs)} {'are' if jobs > 1 else 'is'} stopped" if jobs else ""
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
        f"; its {_jobs(jobs)} {'are' if jobs > 1 else 'is'} removed by garbage collection"
        if jobs
        else ""
    )
    session.out.print(f"backfill.{GROUP}/{name} deleted{tail}")
    return EXIT_OK


# --------------------------------------------------------------------------- retry-failed


def failed_set(status: BackfillStatus) -> IndexSet:
    """Return a Backfill's failed partitions: ``partitions.failed`` and ``upstreamFailed``.

    For a job with steps these are the roll-up's: some step failed, or (upstreamFailed)
    steps were not run because a step they depend on failed or has no success.
    """
    sets = status.partitions
    return IndexSet.parse(sets.failed).union(IndexSet.parse(sets.upstream_failed))


def failed_keys(
    session: Session,
    spec: BackfillSpec,
    status: BackfillStatus,
    job_view: PartitionedJobView | None = None,
) -> list[str]:
    """Return the keys of a Backfill's failed partitions (:func:`failed_set`).

    The compact sets hold global indices; they are mapped to keys through the Backfill's own
    selection, as the operator's verdict resolves it (``job_view`` is its PartitionedJob,
    read when None). Raises CliError when the job is gone, invalid, or its partitions changed
    (the indices no longer name the same partitions), or when more than
    ``MAX_EXPLICIT_PARTITIONS`` failed.
    """
    failed = failed_set(status)
    job = spec.job_ref.name
    if job_view is None:
        job_view = partitioned_job(job, session.client.get(PARTITIONED_JOBS, job))
    verdict = verdict_of(spec, status, job_view, namespace=session.namespace)
    selection = verdict.selection
    if selection is None:
        invalid = verdict.invalid
        assert invalid is not None  # no selection: the verdict says why
        raise CliError(f"cannot map the failed partitions to keys: {invalid.message}") from invalid
    if verdict.partitioning_changed:
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


def retry_spec(
    session: Session,
    spec: BackfillSpec,
    status: BackfillStatus,
    *,
    concurrency: int | None = None,
    retries: int | None = None,
) -> BackfillSpec:
    """Return the spec of a Backfill of exactly the failed partitions of ``spec``/``status``.

    See :func:`retry_failed` for what is kept and what changes. Raises CliError as
    :func:`failed_keys` does, and when the result is invalid. Shared with the web page's
    Retry failed.
    """
    job = spec.job_ref.name
    job_view = partitioned_job(job, session.client.get(PARTITIONED_JOBS, job))
    keys = failed_keys(session, spec, status, job_view)
    stepped = bool(status.steps) or (job_view.spec is not None and job_view.spec.steps is not None)
    retry_policy = spec.retries.to_api()
    if retries is not None:
        retry_policy["limit"] = retries
    raw: dict[str, Any] = {
        "jobRef": {"name": job},
        "partitions": keys,
        "concurrency": concurrency or spec.concurrency,
        "order": str(spec.order),
        "reprocess": str(Reprocess.FAILED if stepped else Reprocess.ALL),
        "retries": retry_policy,
    }
    if spec.steps is not None:
        raw["steps"] = list(spec.steps)
    raw["includeUpstream"] = spec.include_upstream
    raw["includeDownstream"] = spec.include_downstream
    raw["ignoreDependencies"] = spec.ignore_dependencies
    raw["ignoreFirstDependsOnPast"] = spec.ignore_first_depends_on_past
    if spec.env:
        raw["env"] = [e.to_api() for e in spec.env]
    if spec.job_labels:
        raw["jobLabels"] = dict(spec.job_labels)
    if spec.job_annotations:
        raw["jobAnnotations"] = dict(spec.job_annotations)
    if spec.max_failed_partitions is not None:
        raw["maxFailedPartitions"] = spec.max_failed_partitions
    if spec.partitions_per_job is not None:
        raw["partitionsPerJob"] = spec.partitions_per_job
    raw["priority"] = spec.priority
    if spec.kueue is not None:
        raw["kueue"] = spec.kueue.to_api()
    try:
        return BackfillSpec.model_validate(raw)
    except ValidationError as exc:
        raise CliError(f"invalid backfill: {validation_summary(exc)}") from exc


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
    """``retry-failed``: a new Backfill of exactly the failed partitions.

    Concurrency, order, retry policy and failure budget are the original's unless given;
    priority, Kueue queue, the step selection (``steps``, ``includeUpstream``,
    ``includeDownstream``), ``ignoreDependencies``, ``ignoreFirstDependsOnPast``, ``env``,
    ``jobLabels`` and ``jobAnnotations`` are the original's. ``reprocess`` is ``All`` for a
    job without steps (every failed partition runs again) and ``Failed`` for a job with
    steps (only the steps without a recorded success run, and what depends on them).
    Returns 0 when there is nothing to retry; otherwise as :func:`~.submit.submit`.
    """
    body = session.client.get(BACKFILLS, name)
    spec, status = backfill_models(body)
    if not failed_set(status):
        session.out.print(f"Backfill {name} has no failed partitions; nothing to retry.")
        return EXIT_OK
    if status.phase not in TERMINAL_PHASES:
        session.err.print(
            f"Note: Backfill {name} is still {status.phase or 'Pending'}; partitions that "
            "fail from now on are not included.",
            style="dim",
        )
    new_spec = retry_spec(session, spec, status, concurrency=concurrency, retries=retries)
    return submit(
        session,
        new_spec,
        name=new_name,
        make_name=lambda: naming.derived_name(name, f"retry-{new_token()}"),
        yes=yes,
        wait=wait,
        interval=interval,
        labels={LABEL_RETRY_OF: name},
        reprocess_hint=False,
    )
