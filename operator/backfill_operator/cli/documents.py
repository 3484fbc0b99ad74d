"""The machine-readable output of ``kubectl backfill``: the ``-o json|yaml`` documents.

These shapes are a contract (scripts parse them); a change is a change of the CLI's API.
Keys are camelCase like the Kubernetes API; timestamps are RFC 3339 UTC
(:func:`backfill_operator.planning.times.rfc3339`); partition sets are index sets in the form
the operator stores them (global partition indices): the text ``"0-4,7"``, or, for a set with
many gaps (since issue 13), the compressed form ``"~<base64>"`` (a zlib-compressed Roaring
bitmap in its portable serialization; :mod:`backfill_operator.api.sets`). Every document's
size grows with the intervals of its sets at most, never with the number of partitions.

``plan -o json|yaml`` (:func:`plan_document`)::

    {"partitionedJob": str, "namespace": str, "description": str, "order": str,
     "selection": {"first": key, "last": key, "count": int},
     "count": int,                                  # partitions to run
     "skipped": {"count": int, "partitions": [key, ...]},
     "partitions": [{"index": int, "key": str, "start": str|null, "end": str|null}, ...]}

``partitions`` is in launch order; ``start``/``end`` are null for static values. Since issue
12 (steps): ``"steps": [str, ...]|null`` (the steps a Backfill with this spec would run, in
launch order; null for a job with ``jobTemplate``) and ``"markSucceeded": bool``. Since issue
13 (scale): ``partitions`` lists at most :data:`PLAN_DOCUMENT_PARTITIONS` (10,000), the first
in launch order, and ``"partitionsOmitted": int`` counts the others (0 when all are listed);
``"indices": index set`` is every partition to run and ``skipped`` has ``"indices"`` too
(its ``partitions`` keys are likewise the first 10,000). ``plan -o name`` prints every key.

``status -o json`` (:func:`status_document`; with ``-w``, one document per line)::

    {"name", "namespace", "partitionedJob", "phase", "message": str,
     "suspended", "dryRun": bool,
     "counts": {"total", "pending", "queued", "running", "succeeded", "failed",
                "skipped": int},
     "progress": {"done": int, "total": int, "percent": float},
     "ratePerMinute": float|null, "etaSeconds": float|null,
     "startTime", "completionTime": str|null,
     "selection": object|null, "partitions": {state: index set},
     "running": [...], "failures": [...], "plan": object|null,
     "waiting": {"onLock": int, "holders": [{"backfill": str, "count": int}, ...],
                 "forJobSlot": int}|null,
     "failuresOmitted": int, "retries": [...]}

``selection``, ``partitions``, ``running``, ``failures``, ``plan`` and ``waiting`` are the
Backfill's status fields as the API shows them. Since issue 9 (Kueue and job-wide limits):
``counts.queued`` counts partitions whose Job Kueue holds suspended (no longer in
``counts.running``; ``total`` is the sum of the six states), ``partitions`` has a ``queued``
set, a ``running`` entry has ``"queued": true`` while its Job is queued, and ``waiting`` (null
when nothing waits) says how many pending partitions wait for another Backfill's Job of the
same partition (``onLock``, with the ``holders``, most first, at most 10) and how many Jobs
wait for a slot of the PartitionedJob's job-wide limit (``forJobSlot``). Since issue 12
(steps): ``counts`` and ``partitions`` also have ``upstreamFailed`` and ``marked`` (when
the operator writes them), and ``"steps": [{"name": str, "counts": {...}, "partitions":
{...}}, ...]`` is the Backfill's ``status.steps`` (empty for a job with ``jobTemplate``);
``counts`` and ``partitions`` are then the partitions' roll-up, and ``running``/``failures``
entries carry their ``step``. Since issue 13 (scale): ``failures`` lists at most 100 waiting
retries and the last 100 final failures, ``failuresOmitted`` counts the others, and
``retries`` is the status' ``retries``: every partition that will be retried, as
``[{"step": str (with steps), "attempts": int, "retryAt": str, "partitions": index set}]``.

``status pj/NAME -o json`` (:func:`job_status_document`; a PartitionedJob; with ``-w``, one
document per line)::

    {"kind": "PartitionedJob", "name", "namespace": str,
     "description": str|null,                       # the partitions, null when invalid
     "state": str,                                  # Ready, "invalid: ...", ...
     "valid": bool, "problem": str|null,
     "partitioning": str|null,                      # status.partitioning
     "complete": {"count": int, "first": key, "last": key}|null,
     "ledgerKnown": bool,                           # false: no outcome known (see docs)
     "outcomes": {"succeeded", "failed", "running", "queued", "missing": int}|null,
     "partitions": {"succeeded", "failed", "running", "queued", "missing": index set}|null,
     "schedule": {"spec": object, "status": object|null, "lagSeconds": int}|null,
     "backfills": [{"name", "phase", "progress": str, "failed", "running": int,
                    "creationTimestamp": str|null}, ...]}

``outcomes`` and ``partitions`` cover every complete partition: the ledger's last outcome,
except that a partition with an active Job of any run (scheduled or Backfill) counts as
``running`` (``queued`` while Kueue holds it); ``missing`` has neither. ``schedule`` is null
without ``spec.runs``; ``spec`` and ``status`` are ``spec.runs`` and ``status.runs`` as the
API shows them, ``lagSeconds`` the lag at the time of the document. Since issue 12 (steps):
``"steps": [{"name": str, "outcomes": {...}, "partitions": {...}}, ...]`` gives each step's
``outcomes`` and ``partitions`` as above, from the ledger's ``steps`` and the step label of
the active Jobs (empty for a job with ``jobTemplate``); the top-level ones are the roll-up.

``missing -o json|yaml`` (:func:`missing_document`)::

    {"partitionedJob", "namespace", "description": str,
     "from", "to": key|null,                        # the partitions looked at
     "complete": int,
     "outcomes": {"succeeded", "failed", "running", "queued", "missing": int}|null,
     "includeFailed": bool,
     "count": int, "failed": int,                   # listed; of them failed (--failed)
     "partitions": index set,                       # the listed ones, global indices
     "ranges": [{"first": key, "last": key, "count": int}, ...],   # every range
     "schedule": {"left", "taken", "undecided": int}|null,
     "backfills": [{"name": str, "count": int}, ...]}

``from``/``to``/``outcomes`` are null when no partition is complete yet.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..api.model import BackfillSpec
from ..planning.ledger import Preview
from ..planning.times import rfc3339
from .coverage import Coverage, KeyRange
from .render.jobs import JobStatusView, MissingView, job_headline, live_lag_seconds
from .render.progress import progress_of
from .render.views import StatusView, headline, phase_of

#: Partitions a ``plan`` document lists at most (with their keys and windows), in launch order.
PLAN_DOCUMENT_PARTITIONS = 10_000


def plan_document(
    *,
    job: str,
    namespace: str,
    description: str,
    preview: Preview,
    spec: BackfillSpec,
    steps: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Return the ``plan -o json|yaml`` document: the partitions to run, in launch order.

    ``steps`` are the steps that would run (None: a job without steps). Shape: see the
    module doc.
    """
    sel = preview.selection
    items = []
    for index in itertools.islice(preview.launch_order(spec.order), PLAN_DOCUMENT_PARTITIONS):
        part = sel.partition(index)
        items.append(
            {
                "index": part.index,
                "key": part.key,
                "start": rfc3339(part.start) or None,
                "end": rfc3339(part.end) or None,
            }
        )
    return {
        "partitionedJob": job,
        "namespace": namespace,
        "description": description,
        "order": str(spec.order),
        "selection": {"first": sel.first_key, "last": sel.last_key, "count": len(sel)},
        "count": len(preview.to_run),
        "indices": preview.to_run.stored(),
        "skipped": {
            "count": len(preview.skipped),
            "partitions": [
                sel.key(i) for i in itertools.islice(preview.skipped, PLAN_DOCUMENT_PARTITIONS)
            ],
            "indices": preview.skipped.stored(),
        },
        "steps": None if steps is None else list(steps),
        "markSucceeded": spec.mark_succeeded,
        "partitions": items,
        "partitionsOmitted": len(preview.to_run) - len(items),
    }


def status_document(view: StatusView, now: datetime) -> dict[str, Any]:
    """Return the ``status -o json`` document of a Backfill at ``now``.

    Shape: see the module doc.
    """
    status = view.status
    prog = progress_of(status, now)
    api = status.to_api()
    return {
        "name": view.name,
        "namespace": view.namespace,
        "partitionedJob": view.job,
        "phase": phase_of(view),
        "message": headline(view, now),
        "suspended": view.spec.suspend,
        "dryRun": view.spec.dry_run,
        "counts": status.counts.to_api(),
        "progress": {
            "done": prog.done,
            "total": prog.total,
            "percent": round(prog.fraction * 100, 1),
        },
        "ratePerMinute": None if prog.rate_per_minute is None else round(prog.rate_per_minute, 3),
        "etaSeconds": None if prog.eta_seconds is None else round(prog.eta_seconds, 1),
        "startTime": status.start_time,
        "completionTime": status.completion_time,
        "selection": api.get("selection"),
        "partitions": api.get("partitions", {}),
        "running": api.get("running", []),
        "failures": api.get("failures", []),
        "plan": api.get("plan"),
        "waiting": api.get("waiting"),
        "steps": api.get("steps", []),
        "failuresOmitted": status.failures_omitted or 0,
        "retries": api.get("retries", []),
    }


def _partition_sets(cov: Coverage) -> dict[str, str]:
    sets = {state: members.stored() for state, members in cov.grid_sets().items()}
    sets["missing"] = cov.missing.stored()
    return sets


def _outcomes(cov: Coverage) -> dict[str, int]:
    active = cov.active
    return {
        "succeeded": len(cov.succeeded.difference(active)),
        "failed": len(cov.failed.difference(active)),
        "running": len(cov.running),
        "queued": len(cov.queued),
        "missing": len(cov.missing),
    }


def job_status_document(view: JobStatusView, now: datetime) -> dict[str, Any]:
    """Return the ``status -o json`` document of a PartitionedJob at ``now``.

    Shape: see the module doc.
    """
    cov = view.coverage
    sets = None if cov is None else _partition_sets(cov)
    state = job_headline(view, now)
    schedule = None
    runs = view.runs
    if runs is not None:
        rs = view.status.runs
        schedule = {
            "spec": runs.to_api(),
            "status": None if rs is None else rs.to_api(),
            "lagSeconds": live_lag_seconds(view, now),
        }
    complete = None
    if cov is not None and view.first_key is not None:
        complete = {"count": len(cov.complete), "first": view.first_key, "last": view.last_key}
    return {
        "kind": "PartitionedJob",
        "name": view.name,
        "namespace": view.namespace,
        "description": view.description,
        "state": state,
        "valid": view.problem is None and not state.startswith("invalid"),
        "problem": view.problem,
        "partitioning": view.status.partitioning,
        "complete": complete,
        "ledgerKnown": cov is not None and cov.ledger_known,
        "outcomes": None if cov is None else _outcomes(cov),
        "partitions": sets,
        "schedule": schedule,
        "backfills": [
            {
                "name": b.name,
                "phase": b.phase,
                "progress": b.progress,
                "failed": b.failed,
                "running": b.running,
                "creationTimestamp": b.created,
            }
            for b in view.backfills
        ],
        "steps": [
            {"name": name, "outcomes": _outcomes(c), "partitions": _partition_sets(c)}
            for name, c in view.steps
        ],
    }


def missing_document(view: MissingView, ranges: Sequence[KeyRange]) -> dict[str, Any]:
    """Return the ``missing -o json|yaml`` document; ``ranges`` are all of them.

    Shape: see the module doc.
    """
    cov = view.coverage
    share = view.share
    return {
        "partitionedJob": view.job,
        "namespace": view.namespace,
        "description": view.description,
        "from": view.first_key,
        "to": view.last_key,
        "complete": 0 if cov is None else len(cov.complete),
        "outcomes": None if cov is None else _outcomes(cov),
        "includeFailed": view.include_failed,
        "count": len(view.missing),
        "failed": view.failed_count,
        "partitions": view.missing.stored(),
        "ranges": [{"first": r.first, "last": r.last, "count": r.count} for r in ranges],
        "schedule": None
        if share is None
        else {"left": share.left, "taken": share.taken, "undecided": share.undecided},
        "backfills": [{"name": name, "count": count} for name, count in view.in_backfills],
    }
