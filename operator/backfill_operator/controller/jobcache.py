"""The operator's Jobs as its Job watch and its own creations show them, checked by LISTs.

A pass needs the Jobs of its PartitionedJob (the partition lock, the job-wide limit, its own
running Jobs). Listing them from the apiserver on every pass put a consistent LIST on the
critical path of every slot refill and was a fifth of the pass time at 50 Jobs in flight
(docs/benchmarks.md). :class:`JobCache` keeps them instead, in the manner of client-go's
informer cache with controller-runtime's expectations:

* the Job watch (kopf's, through :func:`~.handlers.job_event`) puts every event's object, and
  removes deleted ones, **before** the event wakes any run, so a woken pass sees what woke it;
* a Job this process created or adopted is put at once (:meth:`JobCache.created`) unless the
  watch delivered it already or saw it deleted (a tombstone by uid), so the next pass sees it
  even before its watch event; one it deleted leaves at once (:meth:`JobCache.deleted`), so
  the next pass does not send the deletion again;
* a selector is trusted only for :data:`TRUST_SECONDS` after a real LIST of it, and not at
  all after :meth:`JobCache.distrust` (a worker started: the operator started, or resumed
  after a peering pause during which another replica acted and its watch was closed) or a
  re-list by the watch (kopf lists again after a "410 Gone"; objects deleted meanwhile never
  produce a DELETED event). An untrusted selector is listed by the next pass.

A LIST reconciles the cache: it is a consistent read that started after every entry put
before it, so those entries are replaced by what it returned, and the ones it did not return
are dropped (deleted since); entries put while it ran are kept (possibly newer).

What a stale view can do, and why it is safe: a Job shown running after it ended holds its
slot a little longer (conservative); a Job shown after its deletion is planned for deletion
again (a no-op); a Job created by this process is never missing (expectations); one created
by someone else and not yet seen by the watch is at worst created again by its deterministic
name, which the apiserver refuses (AlreadyExists) and the pass adopts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..api import labels

#: Longest time a pass trusts the cache for a selector after its last LIST, seconds.
TRUST_SECONDS = 30.0
#: How long a deleted Job's uid is remembered (a late :meth:`JobCache.created` of it is
#: ignored), seconds.
TOMBSTONE_SECONDS = 300.0

#: The fields of a Job a pass reads (``planning.observed.observe_job``); the rest is not kept.
_META_FIELDS = (
    "name",
    "namespace",
    "uid",
    "labels",
    "annotations",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
    "resourceVersion",
)
_STATUS_FIELDS = ("conditions", "startTime", "completionTime", "active", "succeeded", "failed")


def slim(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a Job manifest (API shape) a pass reads: metadata, ``spec.suspend``, status."""
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    return {
        "metadata": {k: meta[k] for k in _META_FIELDS if k in meta},
        "spec": {"suspend": spec["suspend"]} if "suspend" in spec else {},
        "status": {k: status[k] for k in _STATUS_FIELDS if k in status},
    }


@dataclass
class _Entry:
    job: dict[str, Any]
    put: float  # monotonic seconds


class JobCache:
    """Jobs by (namespace, PartitionedJob label value), thread-safe.

    ``clock``: monotonic seconds (injected for tests). Jobs without the PartitionedJob label
    are ignored.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._guard = threading.Lock()
        self._jobs: dict[tuple[str, str], dict[str, _Entry]] = {}
        self._listed: dict[tuple[str, str], float] = {}
        self._tombstones: dict[str, float] = {}

    @staticmethod
    def _key(raw: Mapping[str, Any]) -> tuple[tuple[str, str], str] | None:
        meta = raw.get("metadata") or {}
        label = (meta.get("labels") or {}).get(labels.LABEL_PARTITIONED_JOB)
        if not label or not meta.get("name"):
            return None
        return (str(meta.get("namespace") or ""), str(label)), str(meta["name"])

    def observe(self, event_type: str | None, raw: Mapping[str, Any]) -> None:
        """Apply one watch event (``None``: an object of a (re-)listing, as kopf passes it)."""
        key = self._key(raw)
        if key is None:
            return
        selector, name = key
        now = self._clock()
        with self._guard:
            jobs = self._jobs.setdefault(selector, {})
            if event_type == "DELETED":
                jobs.pop(name, None)
                uid = (raw.get("metadata") or {}).get("uid")
                if uid:
                    self._tombstones.pop(str(uid), None)
                    self._tombstones[str(uid)] = now
                self._prune(now)
                return
            if str((raw.get("metadata") or {}).get("uid") or "") in self._tombstones:
                return  # a late event of a Job this process deleted
            if event_type is None:
                self._listed.pop(selector, None)  # a re-list: deletions may have been missed
            jobs[name] = _Entry(slim(raw), now)

    def deleted(self, namespace: str, name: str) -> None:
        """Note that this process deleted Job namespace/name (or found it gone).

        It leaves the cache at once (its DELETED event may come after the next pass, which
        would send the deletion again); a late event of that object is ignored.
        """
        now = self._clock()
        with self._guard:
            for (ns, _label), jobs in self._jobs.items():
                if ns == namespace and name in jobs:
                    uid = jobs.pop(name).job["metadata"].get("uid")
                    if uid:
                        self._tombstones.pop(str(uid), None)
                        self._tombstones[str(uid)] = now
            self._prune(now)

    def created(self, raw: Mapping[str, Any]) -> None:
        """Note a Job this process created or adopted (unless the watch knows better)."""
        key = self._key(raw)
        if key is None:
            return
        selector, name = key
        uid = str((raw.get("metadata") or {}).get("uid") or "")
        with self._guard:
            jobs = self._jobs.setdefault(selector, {})
            if name not in jobs and uid not in self._tombstones:
                jobs[name] = _Entry(slim(raw), self._clock())

    def distrust(self) -> None:
        """Make the next pass of every selector list its Jobs from the apiserver."""
        with self._guard:
            self._listed.clear()

    def jobs(
        self, namespace: str, label: str, list_jobs: Callable[[], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The Jobs of ``namespace`` whose PartitionedJob label is ``label`` (slim copies).

        Calls ``list_jobs()`` (the apiserver's consistent LIST of that selector) when the
        selector is not trusted, and reconciles the cache with its result (module docstring).
        """
        selector = (namespace, label)
        started = self._clock()
        with self._guard:
            listed = self._listed.get(selector)
            if listed is not None and started - listed <= TRUST_SECONDS:
                return [dict(e.job) for e in self._jobs.get(selector, {}).values()]
        fresh = {str(r["metadata"]["name"]): slim(r) for r in list_jobs()}
        with self._guard:
            jobs = self._jobs.setdefault(selector, {})
            for name in [n for n, e in jobs.items() if e.put < started and n not in fresh]:
                del jobs[name]
            for name, job in fresh.items():
                if str(job["metadata"].get("uid") or "") in self._tombstones:
                    continue  # deleted by this process while the LIST ran
                entry = jobs.get(name)
                if entry is None or entry.put < started:
                    jobs[name] = _Entry(job, started)
            self._listed[selector] = started
            return [dict(e.job) for e in jobs.values()]

    def _prune(self, now: float) -> None:
        """Forget tombstones older than :data:`TOMBSTONE_SECONDS` (oldest first; guard held)."""
        while self._tombstones:
            uid, when = next(iter(self._tombstones.items()))
            if now - when <= TOMBSTONE_SECONDS:
                break
            del self._tombstones[uid]

    def __len__(self) -> int:
        with self._guard:
            return sum(len(jobs) for jobs in self._jobs.values())
