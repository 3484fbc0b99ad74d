"""kopf handlers: each turns kopf's arguments into a call of :mod:`.reconciler`. Nothing else.

* one daemon per Backfill runs its reconcile loop (kopf starts it for every Backfill that
  exists when the operator starts, so a restart resumes every backfill);
* watch events of Jobs labelled with a Backfill, and spec changes (a new generation) of
  Backfills and PartitionedJobs, wake the loops concerned; a Job event never writes anything
  to the Job (``on.event`` handlers store no progress and add no finalizers);
* an index maps each PartitionedJob to the Backfills that reference it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, cast

import kopf

from . import naming
from .model import GROUP, VERSION
from .reconciler import Runtime

logger = logging.getLogger(__name__)

#: Set by :func:`backfill_operator.__main__.main` before kopf starts.
RUNTIME: Runtime | None = None


def _runtime() -> Runtime:
    if RUNTIME is None:
        raise kopf.PermanentError("operator runtime not initialised")
    return RUNTIME


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


def _ns(namespace: str | None) -> str:
    if namespace is None:  # the resources are namespaced; kopf types allow cluster scope
        raise kopf.PermanentError("a namespaced object without a namespace")
    return namespace


@kopf.index(GROUP, VERSION, "backfills")
def backfills_by_job(
    *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[str, str]:
    """Index: ``namespace/partitioned job`` → Backfill names referencing it."""
    job = (spec.get("jobRef") or {}).get("name", "")
    return {naming.object_key(_ns(namespace), job): name}


@kopf.daemon(GROUP, VERSION, "backfills", cancellation_timeout=10.0)
async def backfill_worker(
    *, namespace: str | None, name: str, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Run the Backfill's reconcile loop until it is deleted or the operator stops."""

    def stop_wait(timeout: float | None) -> Awaitable[object]:
        return cast(Awaitable[object], stopped.wait(timeout))

    await _runtime().run_worker(_ns(namespace), name, stopped.is_set, stop_wait)


@kopf.on.event(GROUP, VERSION, "backfills")
def backfill_event(
    *, namespace: str | None, name: str, type: str, meta: kopf.Meta, **_: Any
) -> None:
    """Wake the Backfill's loop on a spec change; when it was deleted, drop its metrics."""
    runtime = _runtime()
    if type == "DELETED":
        runtime.spec_changed("Backfill", _ns(namespace), name, None)
        runtime.reconciler.metrics.forget(_ns(namespace), name)
        return
    if runtime.spec_changed("Backfill", _ns(namespace), name, meta.get("generation")):
        runtime.wake(_ns(namespace), name)


def _frees_a_slot(event_type: str, status: Mapping[str, Any]) -> bool:
    """A Job event matters to its Backfill when the Job ended or went away."""
    if event_type == "DELETED":
        return True
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


@kopf.on.event("batch", "v1", "jobs", labels={naming.LABEL_BACKFILL: kopf.PRESENT})
def job_event(
    *,
    namespace: str | None,
    labels: Mapping[str, str],
    type: str,
    status: kopf.Status,
    **_: Any,
) -> None:
    """Wake the loop of the Job's Backfill when the Job ended or was deleted.

    A freed slot is refilled at once; the Job's progress updates (pods started, ready) change
    nothing the planner reads, so they wake nothing.
    """
    if _frees_a_slot(type, status):
        _runtime().wake(_ns(namespace), labels[naming.LABEL_BACKFILL])


@kopf.on.event(GROUP, VERSION, "partitionedjobs")
async def partitioned_job_event(
    *, namespace: str | None, name: str, type: str, meta: kopf.Meta, **kwargs: Any
) -> None:
    """On a spec change or deletion: refresh its status, wake the Backfills that use it."""
    runtime = _runtime()
    ns = _ns(namespace)
    generation = None if type == "DELETED" else meta.get("generation")
    if not runtime.spec_changed("PartitionedJob", ns, name, generation):
        return  # a status write (the ledger): nothing for the Backfills to do
    if type != "DELETED":
        await asyncio.to_thread(runtime.reconciler.reconcile_partitioned_job, ns, name)
    index: kopf.Index[str, str] = kwargs["backfills_by_job"]
    for backfill in index.get(naming.object_key(ns, name), []):
        runtime.wake(ns, backfill)
