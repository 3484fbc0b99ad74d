"""The loops that drive reconcile passes: one worker per Backfill and per PartitionedJob.

A worker (run by a kopf daemon) waits for a wake-up (a Job, Backfill or PartitionedJob watch
event) or for the planner's requeue time (a retry, the next scheduled window), then runs a
pass in a thread. Wake-ups that arrive during a pass coalesce into one more pass. Errors back
off exponentially (1 s doubling to 60 s).

Each pass gets the names of the namespace's Jobs whose pod succeeded (``pods_done``: a
snapshot of the pod index the handlers keep, taken in the event loop before the pass goes to
its thread, so the pass never reads a structure the watch is changing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from ..planning.naming import object_key
from ..planning.runs import series_name
from .reconciler import PassResult, Reconciler

logger = logging.getLogger(__name__)

#: Longest wait between passes of a Backfill that has nothing scheduled (a safety net).
RESYNC_SECONDS = 300.0
#: Passes that may run at once (threads; passes of one PartitionedJob's runs still take turns
#: under its lock). A pass mostly waits for the API, so these overlap their round trips; with
#: asyncio's default executor (``cpu_count() + 4`` threads: 6 on 2 CPUs) 200 woken Backfills
#: queued for seconds behind each other's round trips.
PASS_THREADS = 24
#: Longest wait after a failed pass, seconds.
MAX_ERROR_BACKOFF_SECONDS = 60.0

StopWait = Callable[[float | None], Awaitable[object]]
#: One pass, given the snapshot of the namespace's Jobs with a succeeded pod.
OnePass = Callable[[Collection[str]], PassResult]
#: Key prefix of PartitionedJob workers (Backfill workers use the plain object key).
_JOB = "partitionedjob:"


class Runtime:
    """Per-object workers: wake-ups by key, one pass at a time per object."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self._wakeups: dict[str, asyncio.Event] = {}
        self._pods_done: Mapping[str, Iterable[str]] = {}
        self._passes = ThreadPoolExecutor(max_workers=PASS_THREADS, thread_name_prefix="pass")

    def use_pod_index(self, index: Mapping[str, Iterable[str]]) -> None:
        """Read succeeded pods' Job names from ``index`` from now on.

        ``index`` maps a namespace to Job names: a live view the event loop updates (a kopf
        index).
        """
        self._pods_done = index

    def pods_done(self, namespace: str) -> frozenset[str]:
        """Snapshot of the Job names in ``namespace`` with a succeeded pod (event loop only)."""
        return frozenset(self._pods_done.get(namespace, ()))

    def wake(self, namespace: str, name: str) -> None:
        """Ask the worker of Backfill namespace/name for a pass (coalesced)."""
        event = self._wakeups.get(object_key(namespace, name))
        if event is not None:
            event.set()

    def wake_job(self, namespace: str, name: str) -> None:
        """Ask the worker of PartitionedJob namespace/name (its scheduled runs) for a pass."""
        event = self._wakeups.get(_JOB + object_key(namespace, name))
        if event is not None:
            event.set()

    async def run_worker(
        self, namespace: str, name: str, is_stopped: Callable[[], bool], stop_wait: StopWait
    ) -> None:
        """Run passes for one Backfill until ``is_stopped()``.

        ``stop_wait(timeout)`` must return an awaitable that completes when the worker is
        asked to stop or after ``timeout`` seconds (kopf's ``stopped.wait``).
        """
        metrics = self.reconciler.metrics
        metrics.touch(namespace, name)
        try:
            await self._loop(
                object_key(namespace, name),
                "Backfill",
                lambda done: self.reconciler.reconcile(namespace, name, done),
                lambda: metrics.error(namespace, name),
                is_stopped,
                stop_wait,
            )
        finally:
            self.reconciler.forget(namespace, name)
            # Deleted (or the operator stops): no series of this Backfill may linger.
            metrics.forget(namespace, name)

    async def run_job_worker(
        self, namespace: str, name: str, is_stopped: Callable[[], bool], stop_wait: StopWait
    ) -> None:
        """Run PartitionedJob passes (status, scheduled runs) until ``is_stopped()``.

        Its metrics are those of its scheduled runs (``backfill="schedule:<name>"``).
        """
        metrics = self.reconciler.metrics
        series = series_name(name)
        metrics.touch(namespace, series)
        try:
            await self._loop(
                _JOB + object_key(namespace, name),
                "PartitionedJob",
                lambda done: self.reconciler.reconcile_partitioned_job(namespace, name, done),
                lambda: metrics.error(namespace, series),
                is_stopped,
                stop_wait,
            )
        finally:
            self.reconciler.forget_schedule(namespace, name)

    async def _loop(
        self,
        key: str,
        kind: str,
        one_pass: OnePass,
        count_error: Callable[[], None],
        is_stopped: Callable[[], bool],
        stop_wait: StopWait,
    ) -> None:
        wake = self._wakeups.setdefault(key, asyncio.Event())
        if self.reconciler.jobs is not None:
            # A worker starts when the operator starts, resumes after a peering pause (another
            # replica may have acted while this one's watches were closed) or meets a new
            # object: the Job cache lists again before it is trusted.
            self.reconciler.jobs.distrust()
        namespace = key.removeprefix(_JOB).split("/", 1)[0]  # object_key's spelling
        error_backoff = 1.0
        try:
            while not is_stopped():
                wake.clear()
                timeout: float | None
                try:
                    result = await asyncio.get_running_loop().run_in_executor(
                        self._passes, one_pass, self.pods_done(namespace)
                    )
                except Exception:
                    logger.exception("reconcile of %s %s failed", kind, key)
                    count_error()
                    timeout = error_backoff
                    error_backoff = min(error_backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
                else:
                    error_backoff = 1.0
                    for other in result.wake:
                        self.wake(namespace, other)
                    if result.wake_job:
                        self.wake_job(namespace, result.wake_job)
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

    @staticmethod
    async def _sleep(wake: asyncio.Event, timeout: float, stop_wait: StopWait) -> None:
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop_wait(timeout))
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()
