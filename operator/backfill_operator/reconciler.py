"""One reconcile pass of a Backfill (I/O around the pure planner) and the loop that drives it.

A pass reads the Backfill, its PartitionedJob and its Jobs from the API (never from memory),
asks :mod:`.planner` what to do, then acts in an order that survives a crash at any point:

1. create the planned Jobs (deterministic names: AlreadyExists → adopt if ours), first so
   that a freed slot is refilled with the least delay;
2. merge new final outcomes into the PartitionedJob's ledger (idempotent);
3. write the Backfill's whole status once, only if it changed (optimistic lock);
4. delete finished Jobs whose outcome that status records (beyond the history limits);
5. send Events (after the status write, as JobSet and Kueue do).

:class:`Runtime` runs one worker per Backfill (a kopf daemon): it waits for a wake-up (a Job
or Backfill watch event) or for the planner's requeue time, then runs a pass in a thread.
Wake-ups that arrive during a pass coalesce into one more pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from . import builders, clock, naming, planner
from .builders import LaunchRequest, Owner
from .conditions import Reason
from .kube import Conflict, Kube, Rejected
from .metrics import Metrics
from .model import (
    API_VERSION,
    BackfillSpec,
    BackfillStatus,
    PartitionedJobSpec,
    PartitionedJobStatus,
)
from .observed import observe_job
from .partitions import PartitionSpace, Selection

logger = logging.getLogger(__name__)

BACKFILLS = "backfills"
PARTITIONED_JOBS = "partitionedjobs"
#: Resolved selections kept in memory (the expensive part of a pass for huge backfills).
SELECTION_CACHE_SIZE = 64
#: Creates and deletes one pass sends at once (the client's connection pool holds 32).
API_PARALLELISM = 16
#: Longest wait between passes of a Backfill that has nothing scheduled (a safety net).
RESYNC_SECONDS = 300.0


@dataclass(frozen=True)
class PassResult:
    """What one pass asks of the loop: when to look again (seconds), or that it is gone."""

    requeue_after_seconds: float | None = None
    gone: bool = False
    again: bool = False


def _involved(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "kind": body.get("kind", "Backfill"),
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }


class Reconciler:
    """Runs reconcile passes (synchronous, thread-safe per Backfill key)."""

    def __init__(self, kube: Kube, metrics: Metrics) -> None:
        self.kube = kube
        self.metrics = metrics
        self._selections: OrderedDict[tuple[object, ...], Selection] = OrderedDict()
        self._template_checks: dict[tuple[str, str, str], str | None] = {}
        self._pool = ThreadPoolExecutor(max_workers=API_PARALLELISM, thread_name_prefix="api")

    # ------------------------------------------------------------------ helpers
    def _selection(
        self,
        space: PartitionSpace,
        job: PartitionedJobSpec,
        spec: BackfillSpec,
        previous: BackfillStatus,
    ) -> Selection:
        key = planner.selection_key(job, spec, previous)
        if key is not None and key in self._selections:
            self._selections.move_to_end(key)
            return self._selections[key]
        selection = planner.resolve_selection(space, spec, previous)
        if key is not None:
            self._selections[key] = selection
            while len(self._selections) > SELECTION_CACHE_SIZE:
                self._selections.popitem(last=False)
        return selection

    def _template_error(
        self, owner: Owner, job_name: str, job: PartitionedJobSpec, t_hash: str, sample: Any
    ) -> str | None:
        """Server-side dry run of a Job built from the template, once per template hash."""
        key = (owner.namespace, job_name, t_hash)
        if key not in self._template_checks:
            manifest = builders.build_job(
                owner=owner,
                partitioned_job=job_name,
                job_template=job.job_template,
                request=sample,
                template_hash=t_hash,
            )
            self._template_checks[key] = self.kube.dry_run_job(manifest)
        return self._template_checks[key]

    # ------------------------------------------------------------- Backfill pass
    def reconcile(self, namespace: str, name: str) -> PassResult:
        """Run one pass for Backfill namespace/name; see the module docstring for the order."""
        started = clock.monotonic()
        try:
            return self._reconcile(namespace, name)
        finally:
            self.metrics.reconcile_seconds.observe(clock.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> PassResult:
        body = self.kube.get(BACKFILLS, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return PassResult(gone=True)
        meta = body["metadata"]
        now = clock.now()
        try:
            previous = BackfillStatus.model_validate(body.get("status") or {})
        except ValidationError:
            previous = BackfillStatus()
        invalid: planner.InvalidSpec | None = None
        try:
            spec = BackfillSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            return self._write_unparseable(body, previous, str(exc))
        owner = Owner(namespace, name, meta["uid"])
        pj_body = self.kube.get(PARTITIONED_JOBS, namespace, spec.job_ref.name)
        pj_spec: PartitionedJobSpec | None = None
        pj_status = PartitionedJobStatus()
        if pj_body is not None:
            try:
                pj_status = PartitionedJobStatus.model_validate(pj_body.get("status") or {})
            except ValidationError:
                pj_status = PartitionedJobStatus()
            try:
                pj_spec = PartitionedJobSpec.model_validate(pj_body.get("spec") or {})
            except ValidationError as exc:
                invalid = planner.InvalidSpec(
                    Reason.INVALID_PARTITIONS,
                    f'PartitionedJob "{spec.job_ref.name}" is invalid: {exc}',
                )
        selection: Selection | None = None
        fingerprint: str | None = None
        t_hash = ""
        t_error: str | None = None
        if pj_spec is not None and invalid is None:
            try:
                space = planner.build_space(pj_spec, now)
                fingerprint = space.fingerprint
                selection = self._selection(space, pj_spec, spec, previous)
            except planner.InvalidSpec as exc:
                invalid = exc
            t_hash = naming.template_hash(pj_spec.job_template)
            if selection is not None:
                first = selection.partition(selection.indices.first())
                sample = LaunchRequest(first.index, first.key, first.start, first.end, 1)
                t_error = self._template_error(owner, spec.job_ref.name, pj_spec, t_hash, sample)
        job_view = planner.JobView(
            name=spec.job_ref.name,
            spec=pj_spec,
            status=pj_status,
            template_hash=t_hash,
            template_error=t_error,
        )
        view = planner.BackfillView(
            name=name,
            namespace=namespace,
            uid=meta["uid"],
            generation=int(meta.get("generation") or 0),
            spec=spec,
            status=previous,
        )
        raw_jobs = self.kube.list_jobs(namespace, f"{naming.LABEL_BACKFILL_UID}={meta['uid']}")
        observed = [j for j in (observe_job(r, meta["uid"]) for r in raw_jobs) if j is not None]
        decision = planner.plan(view, job_view, selection, fingerprint, observed, now, invalid)

        launched: list[LaunchRequest] = []
        created_at: dict[int, str] = {}
        launch_error: str | None = None
        created = 0
        if pj_spec is not None and decision.launches:
            template = pj_spec.job_template
            manifests = [
                builders.build_job(
                    owner=owner,
                    partitioned_job=spec.job_ref.name,
                    job_template=template,
                    request=request,
                    template_hash=t_hash,
                )
                for request in decision.launches
            ]
            # Jobs that finished together are replaced together: the creates run in parallel.
            futures = [self._pool.submit(self.kube.create_job, m, owner.uid) for m in manifests]
            failure: BaseException | None = None
            for request, future in zip(decision.launches, futures, strict=True):
                try:
                    result = future.result()
                except Rejected as exc:
                    launch_error = launch_error or str(exc)
                    continue
                except Exception as exc:  # transient: the next pass lists what exists
                    failure = failure or exc
                    continue
                launched.append(request)
                created_at[request.index] = result.created
                created += 0 if result.adopted else 1
            if failure is not None and not launched:
                raise failure

        # The ledger goes before the status that records the same outcomes (a crash between
        # the two repeats an idempotent merge), after the launches (freed slots first).
        if decision.ledger is not None and pj_body is not None:
            self._merge_ledger(namespace, spec.job_ref.name, decision.ledger)
        status = decision.status(launched, launch_error, created_at)
        if launch_error is not None and not launched and decision.launches:
            # A Job the apiserver refuses would be refused for every partition: stop here.
            self._template_checks[(namespace, spec.job_ref.name, t_hash)] = launch_error
        if status != previous:
            try:
                self.kube.replace_status(BACKFILLS, body, status.to_api())
            except Conflict:
                self.metrics.record(namespace, name, (), created)
                return PassResult(again=True)
        for done in [
            self._pool.submit(self.kube.delete_job, namespace, n) for n in decision.deletions
        ]:
            done.result()
        for intent in decision.events(status):
            self.kube.create_event(
                builders.build_event(
                    involved=_involved(body),
                    event_type=intent.type,
                    reason=intent.reason,
                    message=intent.message,
                    now=now,
                )
            )
        self.metrics.record(namespace, name, decision.outcomes, created)
        self.metrics.observe_status(namespace, name, spec.job_ref.name, spec.concurrency, status)
        requeue = decision.requeue_after_seconds
        if launch_error is not None:
            requeue = min(requeue or 30.0, 30.0)
        return PassResult(requeue_after_seconds=requeue)

    def _write_unparseable(
        self, body: dict[str, Any], previous: BackfillStatus, error: str
    ) -> PassResult:
        """A spec the models cannot read (the CRD schema should have caught it): Invalid."""
        meta = body["metadata"]
        view = planner.BackfillView(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation") or 0),
            spec=BackfillSpec.model_validate({"jobRef": {"name": "-"}, "partitions": ["-"]}),
            status=previous,
        )
        invalid = planner.InvalidSpec(Reason.INVALID_SELECTION, f"spec is invalid: {error}")
        job = planner.JobView(name="-", spec=None, status=PartitionedJobStatus())
        decision = planner.plan(view, job, None, None, [], clock.now(), invalid)
        status = decision.status()
        if status != previous:
            self.kube.replace_status(BACKFILLS, body, status.to_api())
        return PassResult()

    def _merge_ledger(self, namespace: str, name: str, update: planner.LedgerUpdate) -> None:
        """Merge final outcomes into the PartitionedJob's ledger, retrying on conflicts."""
        for _ in range(10):
            body = self.kube.get(PARTITIONED_JOBS, namespace, name)
            if body is None:
                return
            status = PartitionedJobStatus.model_validate(body.get("status") or {})
            ledger = update.apply(status)
            new = status.model_copy(update={"ledger": ledger, "partitioning": update.partitioning})
            if new == status:
                return
            try:
                self.kube.replace_status(PARTITIONED_JOBS, body, new.to_api())
                return
            except Conflict:
                continue
        raise RuntimeError(f"could not update the ledger of {namespace}/{name}: conflicts")

    # ------------------------------------------------------- PartitionedJob pass
    def reconcile_partitioned_job(self, namespace: str, name: str) -> None:
        """Write a PartitionedJob's status (validity, description) when it changed."""
        body = self.kube.get(PARTITIONED_JOBS, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            previous = PartitionedJobStatus.model_validate(body.get("status") or {})
        except ValidationError:
            previous = PartitionedJobStatus()
        generation = int(body["metadata"].get("generation") or 0)
        try:
            spec = PartitionedJobSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            logger.warning("PartitionedJob %s/%s unreadable: %s", namespace, name, exc)
            return
        status = planner.partitioned_job_status(spec, previous, generation, clock.now())
        if status != previous:
            try:
                self.kube.replace_status(PARTITIONED_JOBS, body, status.to_api())
            except Conflict:
                self.reconcile_partitioned_job(namespace, name)


StopWait = Callable[[float | None], Awaitable[object]]


class Runtime:
    """Per-Backfill workers: wake-ups by key, one pass at a time per Backfill."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self._wakeups: dict[str, asyncio.Event] = {}
        self._generations: dict[tuple[str, str], int] = {}

    def spec_changed(self, kind: str, namespace: str, name: str, generation: int | None) -> bool:
        """Return True unless ``generation`` is the one last seen for this object.

        The operator's own status writes come back as watch events with an unchanged
        ``metadata.generation`` (the apiserver bumps it only for spec changes); waking a loop
        for those would only repeat a pass that just ran.
        """
        key = (kind, naming.object_key(namespace, name))
        if generation is None:
            self._generations.pop(key, None)
            return True
        changed = self._generations.get(key) != generation
        self._generations[key] = generation
        return changed

    def wake(self, namespace: str, name: str) -> None:
        """Ask the worker of Backfill namespace/name for a pass (coalesced)."""
        event = self._wakeups.get(naming.object_key(namespace, name))
        if event is not None:
            event.set()

    async def run_worker(
        self, namespace: str, name: str, is_stopped: Callable[[], bool], stop_wait: StopWait
    ) -> None:
        """Run passes for one Backfill until ``is_stopped()``.

        ``stop_wait(timeout)`` must return an awaitable that completes when the worker is
        asked to stop or after ``timeout`` seconds (kopf's ``stopped.wait``).
        """
        key = naming.object_key(namespace, name)
        wake = self._wakeups.setdefault(key, asyncio.Event())
        metrics = self.reconciler.metrics
        metrics.touch(namespace, name)
        error_backoff = 1.0
        try:
            while not is_stopped():
                wake.clear()
                timeout: float | None
                try:
                    result = await asyncio.to_thread(self.reconciler.reconcile, namespace, name)
                except Exception:
                    logger.exception("reconcile of Backfill %s failed", key)
                    metrics.error(namespace, name)
                    timeout = error_backoff
                    error_backoff = min(error_backoff * 2, 60.0)
                else:
                    error_backoff = 1.0
                    if result.gone:
                        return
                    if result.again:
                        continue
                    timeout = result.requeue_after_seconds
                    if timeout is None:
                        timeout = RESYNC_SECONDS
                await self._sleep(wake, timeout, stop_wait)
        finally:
            self._wakeups.pop(key, None)
            # Deleted (or the operator stops): no series of this Backfill may linger.
            metrics.forget(namespace, name)

    @staticmethod
    async def _sleep(wake: asyncio.Event, timeout: float, stop_wait: StopWait) -> None:
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop_wait(timeout))
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()
