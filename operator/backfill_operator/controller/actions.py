"""The Job actions of a pass: create (with adoption), delete, and send Events.

Shared by the Backfill pass and the PartitionedJob pass (:mod:`.reconciler`); the calls go
through the injected :class:`~.kube.KubeApi`, in parallel on a small thread pool.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..api.model import API_VERSION
from ..planning import runs as runs_planning
from ..planning import verdict as judging
from ..planning.state import LaunchRequest, Unit
from ..planning.status import EventIntent
from . import builders
from .builders import Owner
from .kube import AlreadyExists, KubeApi, QuotaExceeded, Rejected
from .metrics import Metrics

logger = logging.getLogger(__name__)

#: How long this process remembers a Job it deleted, so as not to delete it again, seconds.
DELETED_MEMORY_SECONDS = 60.0


@dataclass
class Launched:
    """The launches of a pass that went through, their Jobs' creation times, the refusal."""

    requests: list[LaunchRequest] = field(default_factory=list)
    created_at: dict[Unit, str] = field(default_factory=dict)
    created: int = 0
    error: str | None = None
    quota: str | None = None


def involved_object(body: dict[str, Any]) -> dict[str, Any]:
    """Return the ``involvedObject`` reference of an Event about ``body``."""
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "kind": body.get("kind", "Backfill"),
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def _owned_by(job: dict[str, Any], uid: str) -> bool:
    owners = (job.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("controller") and o.get("uid") == uid for o in owners)


class JobActions:
    """Creates and deletes Jobs and sends Events for reconcile passes (thread-safe).

    With ``background`` set, :meth:`delete` and :meth:`send_events` hand their requests to
    the pool and return at once (failures are logged; a Job left undeleted is planned for
    deletion again by the next pass, an Event lost is lost, as after a crash), so a pass ends,
    and the next one can refill slots, without waiting for them. Unset (unit tests), they
    finish before returning.
    """

    def __init__(
        self,
        api: KubeApi,
        metrics: Metrics,
        parallelism: int,
        *,
        background: bool = False,
        on_created: Callable[[dict[str, Any]], None] | None = None,
        on_deleted: Callable[[str, str], None] | None = None,
    ) -> None:
        self.api = api
        # Told every Job a launch created or adopted, and every (namespace, name) deleted
        # (the Job cache's expectations).
        self.on_created = on_created
        self.on_deleted = on_deleted
        self.metrics = metrics
        self.background = background
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="api")
        self._guard = threading.Lock()
        self._deleting: set[tuple[str, str]] = set()  # (namespace, Job) deletions in flight
        # (namespace, Job) deleted (or found gone) by this process -> monotonic time it ended.
        self._deleted: dict[tuple[str, str], float] = {}

    def launch(
        self, owner: Owner, verdict: judging.Verdict, requests: Sequence[LaunchRequest]
    ) -> Launched:
        """Create the Jobs of ``requests`` in parallel; adopt the ones that exist and are ours.

        A refusal (Rejected, or a Job of that name owned by something else) is reported in the
        result; other errors are raised when no launch went through (the pass is retried),
        else left for the next pass, which lists what exists.
        """
        out = Launched()
        pj = verdict.partitioned_job
        spec = verdict.backfill.spec
        if pj.spec is None or spec is None or not requests:
            return out
        env = [e.to_api() for e in spec.env] if spec.env else None
        manifests = [
            builders.build_job(
                owner=owner,
                partitioned_job=pj.name,
                job_template=verdict.graph.templates[request.step],
                request=request,
                template_hash=verdict.template_hash,
                partitioning=verdict.fingerprint or "",
                kueue=spec.kueue,
                env=env,
                extra_labels=spec.job_labels,
                extra_annotations=spec.job_annotations,
            )
            for request in requests
        ]
        futures = [self._pool.submit(self._create, m, owner) for m in manifests]
        failure: BaseException | None = None
        for request, future in zip(requests, futures, strict=True):
            try:
                stamp, adopted = future.result()
            except QuotaExceeded as exc:
                out.quota = out.quota or str(exc)
                continue
            except Rejected as exc:
                out.error = out.error or str(exc)
                continue
            except Exception as exc:  # transient: the next pass lists what exists
                failure = failure or exc
                continue
            out.requests.append(request)
            out.created_at[request.unit] = stamp
            out.created += 0 if adopted else 1
        if out.quota is not None:
            series = runs_planning.series_name(owner.name) if owner.scheduled else owner.name
            self.metrics.quota_refused(owner.namespace, series)
        if failure is not None and not out.requests:
            raise failure
        return out

    def _create(self, manifest: dict[str, Any], owner: Owner) -> tuple[str, bool]:
        """Create one Job; return (its creationTimestamp, adopted)."""
        meta = manifest["metadata"]
        try:
            job = self.api.create_job(manifest)
            if self.on_created is not None:
                self.on_created(job)
            return str(job["metadata"].get("creationTimestamp") or ""), False
        except AlreadyExists:
            existing = self.api.read_job(meta["namespace"], meta["name"])
        if existing is None:  # deleted since: the next pass creates it again
            raise RuntimeError(f'Job "{meta["name"]}" existed and is gone')
        if not _owned_by(existing, owner.uid):
            raise Rejected(
                f'Job "{meta["name"]}" already exists and is not owned by this {owner.kind}'
            )
        if self.on_created is not None:
            self.on_created(existing)
        return str(existing["metadata"].get("creationTimestamp") or ""), True

    def delete(self, namespace: str, names: Sequence[str]) -> None:
        """Delete Jobs namespace/names in parallel (gone already: fine).

        A Job whose deletion this process already sent (in the background, while the next
        pass may still see it) is not deleted again while that request runs, nor for
        :data:`DELETED_MEMORY_SECONDS` after it ended (a pass that read the Jobs before it
        ended still plans it: a second DELETE would only meet a 404). Job names are never
        reused (they carry the run's uid and the attempt).
        """
        now = time.monotonic()
        with self._guard:
            while self._deleted:
                key, when = next(iter(self._deleted.items()))
                if now - when <= DELETED_MEMORY_SECONDS:
                    break
                del self._deleted[key]
            fresh = [
                n
                for n in names
                if (namespace, n) not in self._deleting and (namespace, n) not in self._deleted
            ]
            self._deleting.update((namespace, n) for n in fresh)
        futures = [self._pool.submit(self._delete, namespace, n) for n in fresh]
        self._finish(futures, "delete a Job")

    def _delete(self, namespace: str, name: str) -> None:
        try:
            self.api.delete_job(namespace, name)
            with self._guard:
                self._deleted[(namespace, name)] = time.monotonic()
            if self.on_deleted is not None:
                self.on_deleted(namespace, name)
        finally:
            with self._guard:
                self._deleting.discard((namespace, name))

    def send_events(
        self, body: dict[str, Any], intents: Iterable[EventIntent], now: datetime
    ) -> None:
        """Send one Event about ``body`` per intent (after the status write), in order."""
        events = [
            builders.build_event(
                involved=involved_object(body),
                event_type=intent.type,
                reason=intent.reason,
                message=intent.message,
                now=now,
            )
            for intent in intents
        ]
        if events:
            self._finish([self._pool.submit(self._post_events, events)], "send an Event")

    def _post_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.api.create_event(event)

    def _finish(self, futures: list[Future[None]], what: str) -> None:
        """Wait for ``futures`` (raising the first error), or, in the background, log errors."""
        if not self.background:
            for future in futures:
                future.result()
            return
        for future in futures:
            future.add_done_callback(functools.partial(_log_failure, what))


def _log_failure(what: str, future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        logger.warning("could not %s (the next pass tries again): %s", what, exc)
