"""kopf handlers: each turns kopf's arguments into a call of the runtime or reconciler.

* one daemon per Backfill and one per PartitionedJob run their reconcile loops (kopf starts
  them for every object that exists when the operator starts, so a restart resumes every
  backfill and every schedule; the PartitionedJob's loop sleeps until its next window);
* a spec change of a Backfill (``metadata.generation`` ahead of ``status.observedGeneration``)
  wakes its loop; a spec change of a PartitionedJob runs its pass, then wakes its loop and the
  Backfills that reference it; the operator's own status writes (generation observed) wake
  nothing;
* watch events of the operator's Jobs (labelled with a PartitionedJob) wake the Job's own run
  when the Job ended or went away, or Kueue started it; under a job-wide limit every Backfill of
  the PartitionedJob too (the freed slot may be another's), and the job's schedule when a Job
  ended (``on.event`` handlers store no progress and add no finalizers on Jobs); a run waiting
  for a partition another run holds is woken by the pass that records that run's outcome;
* the operator's pods (the same label, copied from the Job's pod template) are watched only
  once they succeeded (a server-side field selector): a succeeded pod frees its Job's slot
  before the Job controller writes ``Complete`` (about a second later), so it wakes its run
  (and, under a job-wide limit, the others), and an index (``pods_done``: namespace → Job
  names) tells passes which Jobs are finishing (``planning.observed``);
* indexes map the label value of each PartitionedJob's name (as Jobs and pods carry it) to the
  Backfills that reference it and to its name (and whether it has a job-wide limit), and the
  label value of each Backfill's name to its name.

Jobs and pods are watched with the server-side label selector ``backfill.dev/partitioned-job``
(kopf's ``settings.watching.label_selectors``): other workloads of the cluster never reach the
operator.

The :class:`~.runtime.Runtime` reaches the handlers through kopf's memo (``memo.runtime``,
set by :mod:`backfill_operator.__main__`). Event and index handlers are coroutines: they only
update memory and wake loops, so they run on the event loop (kopf would run plain functions in
a thread pool, a thread hop per event, and an :class:`asyncio.Event` must be set from its
loop's thread).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, cast

import kopf

from ..api.labels import (
    KUEUE_QUEUE_NAME,
    LABEL_BACKFILL,
    LABEL_PARTITIONED_JOB,
    LABEL_SCHEDULED,
    label_value,
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


#: (apiVersion, kind) of the resources this operator only watches (event and index handlers).
_NO_ESSENCE = frozenset({("batch/v1", "Job"), ("v1", "Pod")})


class SlimDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff base, built without deep-copying what kopf then discards.

    kopf builds an object's "essence" (spec, labels, annotations) for every watch event by
    deep-copying the whole body, ``status`` and ``managedFields`` included, then deleting
    them: for a Job, a pod or a Backfill with a large status that copy was a fifth of the
    operator's CPU in the dispatch benchmark. This drops those parts before kopf copies; the
    essence is identical (unless a handler asks for extra fields, then kopf's own way).

    Jobs and pods get an empty essence: kopf computes one for every event of every watched
    resource, but only uses it to detect changes for on-create/update/resume handlers and to
    reset daemons' idling, and this operator has neither for Jobs or pods (only event and
    index handlers). Their essence (the pod template included) was copied twice per event.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        """Return kopf's essence of ``body`` (same value as kopf's, computed faster)."""
        extra = list(extra_fields or ())
        if extra:
            return super().build(body=body, extra_fields=extra)
        if (body.get("apiVersion"), body.get("kind")) in _NO_ESSENCE:
            return cast(kopf.BodyEssence, {})
        meta = body.get("metadata") or {}
        slim: dict[str, Any] = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        slim["metadata"] = {
            k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta
        }
        return super().build(body=kopf.Body(cast(kopf.RawBody, slim)))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: Any, **kwargs: Any) -> None:
    """Configure kopf: bookkeeping off user objects, server-side selectors, the pod index.

    Keeps kopf's own bookkeeping off user objects as far as kopf allows, watches only the
    operator's Jobs and succeeded pods, and hands the pod index to the runtime.
    """
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.label_selectors["batch", "jobs"] = LABEL_PARTITIONED_JOB
    settings.watching.label_selectors["", "pods"] = LABEL_PARTITIONED_JOB
    settings.watching.field_selectors["", "pods"] = "status.phase=Succeeded"
    _runtime(memo).use_pod_index(kwargs["pods_done"])
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = SlimDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )


@kopf.index(GROUP, VERSION, BACKFILLS)
async def backfills_by_job(
    *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[str, str]:
    """Index: ``namespace/label value of the partitioned job`` → Backfills referencing it.

    Keyed by the label value (:func:`~backfill_operator.api.labels.label_value`), as Jobs and
    pods carry it.
    """
    job = (spec.get("jobRef") or {}).get("name", "")
    return {object_key(_ns(namespace), label_value(str(job))): name}


@kopf.index(GROUP, VERSION, BACKFILLS)
async def backfills_by_label(*, namespace: str | None, name: str, **_: Any) -> dict[str, str]:
    """Index: ``namespace/label value`` → the Backfill's name (pods carry the label value)."""
    return {object_key(_ns(namespace), label_value(name)): name}


@kopf.index(GROUP, VERSION, PARTITIONED_JOBS)
async def partitioned_jobs_by_label(
    *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[str, tuple[str, bool]]:
    """Index: ``namespace/label value`` → (the PartitionedJob's name, has a job-wide limit)."""
    return {object_key(_ns(namespace), label_value(name)): (name, "concurrency" in spec)}


@kopf.daemon(GROUP, VERSION, BACKFILLS, cancellation_timeout=10.0)
async def backfill_worker(
    *, namespace: str | None, name: str, stopped: kopf.DaemonStopped, memo: Any, **_: Any
) -> None:
    """Run the Backfill's reconcile loop until it is deleted or the operator stops."""

    def stop_wait(timeout: float | None) -> Awaitable[object]:
        return cast(Awaitable[object], stopped.wait(timeout))

    await _runtime(memo).run_worker(_ns(namespace), name, stopped.is_set, stop_wait)


@kopf.on.event(GROUP, VERSION, BACKFILLS)
async def backfill_event(
    *,
    namespace: str | None,
    name: str,
    type: str,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: Any,
    **_: Any,
) -> None:
    """Wake the Backfill's loop on a spec change; when it was deleted, drop its metrics.

    Every event's resourceVersion goes to the reconciler: a pass may start from the body the
    operator wrote last only while that is the latest version the watch delivered.
    """
    runtime = _runtime(memo)
    deleted = type == "DELETED"
    runtime.reconciler.seen_backfill(
        _ns(namespace), name, None if deleted else meta.get("resourceVersion")
    )
    if deleted:
        runtime.reconciler.metrics.forget(_ns(namespace), name)
    elif spec_unobserved(meta, status):
        runtime.wake(_ns(namespace), name)


def _wake_runs(
    runtime: Runtime,
    ns: str,
    labels: Mapping[str, str],
    indexes: Any,
    owner: tuple[str, str] | None,
    *,
    ended: bool,
) -> None:
    """Wake the runs a freed slot (and, when ``ended``, a freed partition) matters to.

    ``owner`` is the (kind, name) of the run that owns the Job; ``labels`` are the Job's or
    its pod's; ``indexes`` the handler's kwargs, holding kopf's indexes. The owner is woken
    (the slot is its own). Under a job-wide limit every Backfill of the PartitionedJob is woken
    too (the slot may be another's by priority or share). When the Job ``ended``, the
    schedule of a job with ``spec.runs`` follows (its status counts every outcome). Runs
    waiting for the partition itself are woken by the pass that records its outcome in the
    ledger (the reconciler remembers them).
    """
    key = object_key(ns, labels[LABEL_PARTITIONED_JOB])
    if owner is not None:
        kind, name = owner
        if kind == "PartitionedJob":
            runtime.wake_job(ns, name)
        else:
            runtime.wake(ns, name)
    jobs: kopf.Index[str, tuple[str, bool]] = indexes["partitioned_jobs_by_label"]
    for job, limited in set(jobs.get(key, [])):
        if limited:
            backfills: kopf.Index[str, str] = indexes["backfills_by_job"]
            for backfill in set(backfills.get(key, [])):
                runtime.wake(ns, backfill)
        if ended and runtime.reconciler.has_schedule(ns, job):
            runtime.wake_job(ns, job)


def _job_owner(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (kind, name) of a Job's controller owner: a Backfill or a PartitionedJob."""
    for kind in ("Backfill", "PartitionedJob"):
        name = _controller(meta, kind)
        if name is not None:
            return kind, name
    return None


def _pod_owner(ns: str, labels: Mapping[str, str], indexes: Any) -> tuple[str, str] | None:
    """The (kind, name) of the run that owns a pod's Job, from the pod's labels."""
    if labels.get(LABEL_SCHEDULED) == "true":
        jobs: kopf.Index[str, tuple[str, bool]] = indexes["partitioned_jobs_by_label"]
        for name, _limited in jobs.get(object_key(ns, labels[LABEL_PARTITIONED_JOB]), []):
            return "PartitionedJob", name
        return None
    backfills: kopf.Index[str, str] = indexes["backfills_by_label"]
    for name in backfills.get(object_key(ns, labels.get(LABEL_BACKFILL, "")), []):
        return "Backfill", name
    return None


def _controller(meta: Mapping[str, Any], kind: str) -> str | None:
    """The name of the object's controller owner of ``kind``, if any."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind and ref.get("name"):
            return str(ref["name"])
    return None


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_PARTITIONED_JOB: kopf.PRESENT})
async def job_event(
    *,
    namespace: str | None,
    labels: Mapping[str, str],
    type: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: Any,
    **kwargs: Any,
) -> None:
    """Wake the runs a Job event matters to.

    A Job that ended or was deleted frees a slot and a partition: its run is woken (it
    records the outcome), and the others it may matter to (:func:`_wake_runs`). A Kueue Job
    that was started (``suspend`` cleared) wakes its own run (queued becomes running). Other
    updates (pods started, ready) wake nothing.
    """
    runtime = _runtime(memo)
    ns = _ns(namespace)
    if runtime.reconciler.jobs is not None:
        # Before any wake-up: the woken pass must see what woke it.
        runtime.reconciler.jobs.observe(type, kwargs["body"])
    state = job_state(list(status.get("conditions") or []))[0]
    if type == "DELETED" or state is not JobState.ACTIVE:
        _wake_runs(runtime, ns, labels, kwargs, _job_owner(meta), ended=True)
    elif KUEUE_QUEUE_NAME in labels and spec.get("suspend") is False and status.get("active"):
        _wake_runs(runtime, ns, labels, kwargs, _job_owner(meta), ended=False)


def _succeeded_job(meta: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    """The name of the Job that controls a pod, when the pod has phase ``Succeeded``."""
    return _controller(meta, "Job") if status.get("phase") == "Succeeded" else None


@kopf.index("", "v1", "pods", labels={LABEL_PARTITIONED_JOB: kopf.PRESENT})
async def pods_done(
    *, namespace: str | None, meta: kopf.Meta, status: kopf.Status, **_: Any
) -> dict[str, str] | None:
    """Index: namespace → names of the operator's Jobs with a succeeded pod (finishing Jobs).

    A pod leaves the index when it is deleted (with its Job, by garbage collection).
    """
    job = _succeeded_job(meta, status)
    return None if job is None else {_ns(namespace): job}


@kopf.on.event("", "v1", "pods", labels={LABEL_PARTITIONED_JOB: kopf.PRESENT})
async def pod_event(
    *,
    namespace: str | None,
    labels: Mapping[str, str],
    type: str,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: Any,
    **kwargs: Any,
) -> None:
    """A pod succeeded: its Job's slot is free now.

    Wakes its run (and, under a job-wide limit, the job's other runs).
    """
    if type != "DELETED" and _succeeded_job(meta, status) is not None:
        ns = _ns(namespace)
        owner = _pod_owner(ns, labels, kwargs)
        _wake_runs(_runtime(memo), ns, labels, kwargs, owner, ended=False)


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
    runtime.reconciler.seen_partitioned_job(
        ns, name, None if type == "DELETED" else meta.get("resourceVersion")
    )
    if type != "DELETED":
        if not spec_unobserved(meta, status):
            return  # a status write (the ledger, the schedule): nothing to do
        await asyncio.to_thread(
            runtime.reconciler.reconcile_partitioned_job, ns, name, runtime.pods_done(ns)
        )
        runtime.wake_job(ns, name)
    index: kopf.Index[str, str] = kwargs["backfills_by_job"]
    for backfill in index.get(object_key(ns, label_value(name)), []):
        runtime.wake(ns, backfill)
