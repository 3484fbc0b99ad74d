"""kopf handlers: each turns kopf's arguments into a call of the runtime or reconciler.

* one daemon per Backfill and one per PartitionedJob run their reconcile loops (kopf starts
  them for every object that exists when the operator starts, so a restart resumes every
  backfill and every schedule; the PartitionedJob's loop sleeps until its next window);
* a spec change of a Backfill (``metadata.generation`` ahead of ``status.observedGeneration``)
  wakes its loop; a spec change of a PartitionedJob runs its pass, then wakes its loop and the
  Backfills that reference it; the operator's own status writes (generation observed) wake
  nothing;
* watch events of the operator's Jobs (labelled with a PartitionedJob) wake every run of the
  Job's PartitionedJob (its Backfills and its schedule) when the Job ended or went away (a
  freed slot or partition lock may be another run's to take), and the Job's own run when
  Kueue started a queued Job (``on.event`` handlers store no progress and add no finalizers
  on Jobs);
* an index maps each PartitionedJob to the Backfills that reference it.

The :class:`~.runtime.Runtime` reaches the handlers through kopf's memo (``memo.runtime``,
set by :mod:`backfill_operator.__main__`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, cast

import kopf

from ..api.labels import (
    KUEUE_QUEUE_NAME,
    LABEL_BACKFILL,
    LABEL_PARTITIONED_JOB,
    LABEL_SCHEDULED,
)
from ..api.model import BACKFILLS, GROUP, PARTITIONED_JOBS, VERSION
from ..planning.naming import object_key
from ..planning.observed import JobState, job_state
from .runtime import Runtime


def _runtime(memo: Any) -> Runtime:
    runtime = getattr(memo, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise kopf.PermanentError("operator runtime not initialised (memo.runtime)")
    return runtime


def _ns(namespace: str | None) -> str:
    if namespace is None:  # the resources are namespaced; kopf types allow cluster scope
        raise kopf.PermanentError("a namespaced object without a namespace")
    return namespace


def spec_unobserved(meta: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """True when the object's spec generation is not the one its status last observed.

    The apiserver bumps ``metadata.generation`` only for spec changes, and every status the
    operator writes carries ``observedGeneration`` (Kubernetes API conventions), so the
    operator's own status writes come back as events for which this is False.
    """
    generation = meta.get("generation")
    return generation is None or status.get("observedGeneration") != generation


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's own bookkeeping off user objects as far as kopf allows."""
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )


@kopf.index(GROUP, VERSION, BACKFILLS)
def backfills_by_job(
    *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[str, str]:
    """Index: ``namespace/partitioned job`` → Backfill names referencing it."""
    job = (spec.get("jobRef") or {}).get("name", "")
    return {object_key(_ns(namespace), job): name}


@kopf.daemon(GROUP, VERSION, BACKFILLS, cancellation_timeout=10.0)
async def backfill_worker(
    *, namespace: str | None, name: str, stopped: kopf.DaemonStopped, memo: Any, **_: Any
) -> None:
    """Run the Backfill's reconcile loop until it is deleted or the operator stops."""

    def stop_wait(timeout: float | None) -> Awaitable[object]:
        return cast(Awaitable[object], stopped.wait(timeout))

    await _runtime(memo).run_worker(_ns(namespace), name, stopped.is_set, stop_wait)


@kopf.on.event(GROUP, VERSION, BACKFILLS)
def backfill_event(
    *,
    namespace: str | None,
    name: str,
    type: str,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: Any,
    **_: Any,
) -> None:
    """Wake the Backfill's loop on a spec change; when it was deleted, drop its metrics."""
    runtime = _runtime(memo)
    if type == "DELETED":
        runtime.reconciler.metrics.forget(_ns(namespace), name)
    elif spec_unobserved(meta, status):
        runtime.wake(_ns(namespace), name)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_PARTITIONED_JOB: kopf.PRESENT})
def job_event(
    *,
    namespace: str | None,
    labels: Mapping[str, str],
    type: str,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: Any,
    **kwargs: Any,
) -> None:
    """Wake the runs a Job event matters to.

    A Job that ended or was deleted frees a slot (of its run and of the job-wide limit) and a
    partition lock: every run of its PartitionedJob is woken (its Backfills, and its schedule
    when it has ``spec.runs``), so the one that may take it does at once. A Kueue Job that was
    started (``suspend`` cleared) wakes its own run (queued becomes running). Other updates
    (pods started, ready) wake nothing.
    """
    runtime = _runtime(memo)
    ns = _ns(namespace)
    job = labels[LABEL_PARTITIONED_JOB]
    state = job_state(list(status.get("conditions") or []))[0]
    if type == "DELETED" or state is not JobState.ACTIVE:
        index: kopf.Index[str, str] = kwargs["backfills_by_job"]
        for backfill in set(index.get(object_key(ns, job), [])):
            runtime.wake(ns, backfill)
        if LABEL_BACKFILL in labels:
            runtime.wake(ns, labels[LABEL_BACKFILL])
        if labels.get(LABEL_SCHEDULED) == "true" or runtime.reconciler.has_schedule(ns, job):
            runtime.wake_job(ns, job)
    elif KUEUE_QUEUE_NAME in labels and spec.get("suspend") is False and status.get("active"):
        if labels.get(LABEL_SCHEDULED) == "true":
            runtime.wake_job(ns, job)
        elif LABEL_BACKFILL in labels:
            runtime.wake(ns, labels[LABEL_BACKFILL])


@kopf.daemon(GROUP, VERSION, PARTITIONED_JOBS, cancellation_timeout=10.0)
async def partitioned_job_worker(
    *, namespace: str | None, name: str, stopped: kopf.DaemonStopped, memo: Any, **_: Any
) -> None:
    """Run the PartitionedJob's loop (status, scheduled runs) until deleted or stopping."""

    def stop_wait(timeout: float | None) -> Awaitable[object]:
        return cast(Awaitable[object], stopped.wait(timeout))

    await _runtime(memo).run_job_worker(_ns(namespace), name, stopped.is_set, stop_wait)


@kopf.on.event(GROUP, VERSION, PARTITIONED_JOBS)
async def partitioned_job_event(
    *,
    namespace: str | None,
    name: str,
    type: str,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: Any,
    **kwargs: Any,
) -> None:
    """On a spec change or deletion: run its pass, wake its loop and its Backfills.

    The pass runs here, before the Backfills are woken, so they see its new numbering.
    """
    runtime = _runtime(memo)
    ns = _ns(namespace)
    if type != "DELETED":
        if not spec_unobserved(meta, status):
            return  # a status write (the ledger, the schedule): nothing to do
        await asyncio.to_thread(runtime.reconciler.reconcile_partitioned_job, ns, name)
        runtime.wake_job(ns, name)
    index: kopf.Index[str, str] = kwargs["backfills_by_job"]
    for backfill in index.get(object_key(ns, name), []):
        runtime.wake(ns, backfill)
