"""One reconcile pass of a Backfill or a PartitionedJob: I/O around the pure planning.

A Backfill pass reads the Backfill and its PartitionedJob (from the API, or as this operator's
last status write returned them while the watch confirms that write is their latest version:
:meth:`Reconciler._read`) and its Jobs (the Job cache of :mod:`.jobcache`, which lists them
from the API whenever it cannot vouch for them; without a cache, a LIST every pass), has
:func:`~backfill_operator.planning.verdict.judge` and
:func:`~backfill_operator.planning.decide.plan` decide, then acts in an order that survives a
crash between any two steps:

1. create the planned Jobs (deterministic names: AlreadyExists → adopt it when its controller
   owner reference is this Backfill, as the CronJob controller does), first so that a freed
   slot is refilled with the least delay;
2. merge new final outcomes into the PartitionedJob's ledger (idempotent);
3. write the Backfill's whole status once, only if it changed (optimistic lock: a Conflict
   ends the pass and asks for another at once);
4. delete finished Jobs whose outcome that status records (beyond the history limits);
5. send Events (after the status write, as JobSet and Kueue do).

A crash after 1 leaves Jobs the next pass lists and adopts; after 2, a merge the next pass
repeats without effect; after 3, Jobs the next pass deletes; after 4, Events not sent (they
describe transitions the next pass no longer sees: at most those are lost, never duplicated).

The API calls go through a :class:`~.kube.KubeApi` and time through a
:class:`~backfill_operator.clock.Clock`, both injected, so the order above is unit-tested
with fakes (``tests/unit/test_reconciler.py``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from .. import clock as clocks
from ..api import labels
from ..api.model import (
    BACKFILLS,
    PARTITIONED_JOBS,
    SCHEDULE_RUN,
    BackfillStatus,
    PartitionedJobStatus,
)
from ..planning import runs as runs_planning
from ..planning import verdict as judging
from ..planning.admission import Claim
from ..planning.decide import Decision, plan
from ..planning.ledger import LedgerUpdate
from ..planning.naming import object_key
from ..planning.observed import ObservedJob, observe_job
from ..planning.partitioned_job import (
    SAMPLE_PARTITION,
    partitioned_job_events,
    partitioned_job_status,
)
from ..planning.space import Partition
from ..planning.state import LaunchRequest
from ..planning.status import compose_status, only_launches, status_events
from ..planning.steps import step_graph
from ..planning.times import parse_time
from . import builders
from .actions import JobActions, Launched
from .builders import Owner
from .jobcache import JobCache
from .kube import Conflict, KubeApi, update_status
from .metrics import Metrics

#: Creates and deletes one pass sends at once (the client's connection pool holds 32).
API_PARALLELISM = 16
#: Threads for a pass's reads done beside each other (the LIST of the Jobs).
READ_THREADS = 24
#: Requeue after a launch the apiserver refused, seconds.
LAUNCH_ERROR_REQUEUE_SECONDS = 30.0
#: Requeue while the PartitionedJob's status has no partitioning yet, seconds.
LEDGER_NOT_READY_REQUEUE_SECONDS = 1.0
#: Longest time a Backfill as this operator last wrote it may stand in for a GET, seconds
#: (:meth:`Reconciler._read`; the watch confirms it is still current meanwhile).
WRITTEN_BODY_SECONDS = 10.0
#: Longest time a pass that only launched Jobs leaves its status unwritten after this
#: operator's last write of it, seconds (:meth:`Reconciler._defer_status`).
STATUS_DEFER_SECONDS = 1.0


@dataclass(frozen=True)
class PassResult:
    """What one pass asks of its loop.

    ``requeue_after_seconds``: look again then at the latest (None: only on a wake-up);
    ``gone``: the Backfill no longer exists (or is being deleted): stop its loop;
    ``again``: run another pass at once (the status write met a conflict);
    ``wake``: other Backfills (names, same namespace) that should look again now: job-wide
    slots are free and their claims want them; ``wake_job``: likewise a PartitionedJob
    (name) whose scheduled runs want them.
    """

    requeue_after_seconds: float | None = None
    gone: bool = False
    again: bool = False
    wake: tuple[str, ...] = ()
    wake_job: str | None = None


class Reconciler:
    """Runs reconcile passes (synchronous; one pass at a time per object, any thread)."""

    def __init__(
        self,
        api: KubeApi,
        metrics: Metrics,
        clock: clocks.Clock = clocks.SYSTEM,
        *,
        parallelism: int = API_PARALLELISM,
        background: bool = False,
        jobs: JobCache | None = None,
    ) -> None:
        self.api = api
        # The Jobs as the watch shows them (None: every pass lists them from the apiserver).
        self.jobs = jobs
        self.metrics = metrics
        self.clock = clock
        self._selections = judging.SelectionCache()
        self._template_checks: dict[tuple[str, str, str], str | None] = {}
        self._locks_guard = threading.Lock()
        self._job_locks: dict[str, threading.Lock] = {}
        # Each run's latest claim on its PartitionedJob's job-wide limit, by job key then
        # Backfill key (memory only: rebuilt by every Backfill's first pass after a restart).
        self._claims: dict[str, dict[str, Claim]] = {}
        self.actions = JobActions(
            api,
            metrics,
            parallelism,
            background=background,
            on_created=None if jobs is None else jobs.created,
            on_deleted=None if jobs is None else jobs.deleted,
        )
        # The Jobs' read beside the PartitionedJob's (each from memory or the API), for as
        # many passes as run at once (controller/runtime.py).
        self._reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="read")
        # Per thread: how long the current pass waited for its PartitionedJob's lock.
        self._waited = threading.local()
        # PartitionedJobs (keys) whose last pass found spec.runs: their schedule's pass follows
        # every Job end of the job (a freed lock or slot, an outcome for its status).
        self._schedules: set[str] = set()
        # Runs (Backfill names, or SCHEDULE_RUN) by PartitionedJob key whose last pass waited
        # for another run's Job: woken when a pass records outcomes in the job's ledger.
        self._waiting: dict[str, set[str]] = {}
        # Each Backfill and PartitionedJob (by plural, namespace, name) as this operator's
        # last status write returned it (monotonic time of the write, body), and the
        # resourceVersion the watch last delivered: :meth:`_read`.
        self._written: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self._seen_version: dict[tuple[str, str, str], str] = {}

    # ------------------------------------------------------------------ Backfill pass
    def reconcile(
        self, namespace: str, name: str, pods_done: Collection[str] = frozenset()
    ) -> PassResult:
        """Run one pass for Backfill namespace/name; see the module docstring for the order.

        ``pods_done``: names of the namespace's Jobs with a succeeded pod, as the operator's
        pod watch saw them when the pass started (their slots are free:
        :mod:`~backfill_operator.planning.observed`).
        """
        started = self.clock.monotonic()
        self._waited.seconds = 0.0
        try:
            return self._reconcile(namespace, name, pods_done)
        finally:
            spent = self.clock.monotonic() - started - self._waited.seconds
            self.metrics.reconcile_seconds.observe(spent)

    def _check_template(
        self, owner: Owner, pj: judging.PartitionedJobView, t_hash: str, sample: Partition
    ) -> str | None:
        """Server-side dry run of a Job built from each step's template, once per template hash.

        Returns the first refusal (prefixed with the step's name for a job with steps).
        """
        key = (owner.namespace, pj.name, t_hash)
        if key not in self._template_checks:
            assert pj.spec is not None
            graph = step_graph(pj.spec)
            refusal: str | None = None
            for step in graph.order:
                request = LaunchRequest(
                    sample.index, sample.key, sample.start, sample.end, 1, "-", step
                )
                manifest = builders.build_job(
                    owner=owner,
                    partitioned_job=pj.name,
                    job_template=graph.templates[step],
                    request=request,
                    template_hash=t_hash,
                )
                refusal = self.api.dry_run_job(manifest)
                if refusal:
                    refusal = f'step "{step}": {refusal}' if step else refusal
                    break
            self._template_checks[key] = refusal
        return self._template_checks[key]

    def _judge(
        self, body: dict[str, Any], owner: Owner
    ) -> tuple[judging.Verdict, dict[str, Any] | None]:
        """Judge the Backfill; also return the raw PartitionedJob read for it (None: absent)."""
        view = judging.load_backfill(body)
        pj_name = view.spec.job_ref.name if view.spec is not None else ""
        pj_body = self._read(PARTITIONED_JOBS, owner.namespace, pj_name) if pj_name else None
        verdict = judging.judge(
            view,
            judging.load_partitioned_job(pj_name, pj_body),
            self.clock.now(),
            selections=self._selections,
            check_template=functools.partial(self._check_template, owner),
        )
        return verdict, pj_body

    def _job_lock(self, namespace: str, partitioned_job: str) -> threading.Lock:
        """The lock that serializes the passes touching one PartitionedJob's runs."""
        key = object_key(namespace, partitioned_job)
        with self._locks_guard:
            return self._job_locks.setdefault(key, threading.Lock())

    def forget(self, namespace: str, name: str) -> None:
        """Drop what memory holds about Backfill namespace/name (it was deleted)."""
        with self._locks_guard:
            self._written.pop((BACKFILLS, namespace, name), None)
            self._seen_version.pop((BACKFILLS, namespace, name), None)
            for claims in self._claims.values():
                claims.pop(object_key(namespace, name), None)
            for key, runs in self._waiting.items():
                if key.startswith(f"{namespace}/"):
                    runs.discard(name)

    def seen_backfill(self, namespace: str, name: str, resource_version: str | None) -> None:
        """Note the resourceVersion of Backfill namespace/name a watch event delivered."""
        self._seen(BACKFILLS, namespace, name, resource_version)

    def seen_partitioned_job(self, namespace: str, name: str, resource_version: str | None) -> None:
        """Note the resourceVersion of PartitionedJob namespace/name a watch event delivered."""
        self._seen(PARTITIONED_JOBS, namespace, name, resource_version)

    def _seen(self, plural: str, namespace: str, name: str, resource_version: str | None) -> None:
        key = (plural, namespace, name)
        with self._locks_guard:
            if resource_version is None:
                self._seen_version.pop(key, None)
                self._written.pop(key, None)
            else:
                self._seen_version[key] = resource_version

    def _wrote(self, plural: str, namespace: str, name: str, body: dict[str, Any] | None) -> None:
        """Remember ``body``, the object as a status write returned it (None: forget it)."""
        key = (plural, namespace, name)
        with self._locks_guard:
            if body is None:
                self._written.pop(key, None)
            else:
                self._written[key] = (self.clock.monotonic(), body)

    def _read(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object a pass starts from: the body this operator last wrote, or a GET.

        The written body (the status write's response) stands in for a GET, saving a round
        trip before the pass can refill a slot, only while the watch's latest event of the
        object is that very write (watch events of an object come in resourceVersion order,
        so a later change by anyone shows as another version) and for at most
        :data:`WRITTEN_BODY_SECONDS`. Otherwise, and after a restart, it is read from the API.
        A stale body cannot be written back: status writes send its resourceVersion.
        """
        key = (plural, namespace, name)
        with self._locks_guard:
            written = self._written.get(key)
            seen = self._seen_version.get(key)
        if written is not None:
            when, body = written
            fresh = self.clock.monotonic() - when <= WRITTEN_BODY_SECONDS
            if fresh and seen is not None and body["metadata"].get("resourceVersion") == seen:
                return copy.deepcopy(body)
        return self.api.get(plural, namespace, name)

    def _reconcile(self, namespace: str, name: str, pods_done: Collection[str]) -> PassResult:
        body = self._read(BACKFILLS, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.forget(namespace, name)
            return PassResult(gone=True)
        # One pass at a time per PartitionedJob: the partition lock and the job-wide limit are
        # read from the Jobs a pass lists, so a pass must see the Jobs the previous one created
        # and the outcomes it merged (one active operator: kopf peering).
        with self._locked(namespace, judging.raw_job_ref(body)):
            return self._reconcile_locked(namespace, name, body, pods_done)

    @contextlib.contextmanager
    def _locked(self, namespace: str, partitioned_job: str) -> Iterator[None]:
        """Hold the PartitionedJob's lock; the wait for it is measured apart from the pass."""
        lock = self._job_lock(namespace, partitioned_job)
        asked = self.clock.monotonic()
        with lock:
            waited = self.clock.monotonic() - asked
            self._waited.seconds += waited
            self.metrics.lock_wait_seconds.observe(waited)
            yield

    def _reconcile_locked(
        self, namespace: str, name: str, body: dict[str, Any], pods_done: Collection[str]
    ) -> PassResult:
        uid = body["metadata"]["uid"]
        owner = Owner(namespace, name, uid)
        now = self.clock.now()
        # The Jobs are taken (from the cache, or listed when it cannot vouch for them) while
        # the PartitionedJob is read and the Backfill judged: when both need the API, one
        # round trip less before this pass can refill a slot.
        job_ref = judging.raw_job_ref(body)
        listing = (
            self._reads.submit(self._observe_jobs, namespace, job_ref, uid, pods_done)
            if job_ref
            else None
        )
        verdict, pj_body = self._judge(body, owner)
        observed = listing.result() if listing is not None else []
        job_key = object_key(namespace, verdict.partitioned_job.name)
        if verdict.backfill.spec is None or verdict.partitioned_job.name != job_ref:
            observed = []
        me = object_key(namespace, name)
        with self._locks_guard:
            others = [c for k, c in self._claims.get(job_key, {}).items() if k != me]
        decision = plan(verdict, observed, now, others)
        if decision.claim is not None:
            with self._locks_guard:
                self._claims.setdefault(job_key, {})[me] = decision.claim

        launched = self.actions.launch(owner, verdict, decision.launches)
        if decision.ledger is not None and not self._merge_ledger(
            namespace, verdict.partitioned_job.name, decision.ledger, pj_body
        ):
            # The PartitionedJob pass has not numbered the ledger yet: record nothing now.
            return PassResult(requeue_after_seconds=LEDGER_NOT_READY_REQUEUE_SECONDS)
        status = compose_status(
            verdict,
            decision.state,
            launched.requests,
            now,
            created=launched.created_at,
            launch_error=launched.error,
            blocked=decision.blocked,
            quota=launched.quota,
        )
        if launched.error is not None and not launched.requests and decision.launches:
            # A Job the apiserver refuses would be refused for every partition: stop here.
            key = (namespace, verdict.partitioned_job.name, verdict.template_hash)
            self._template_checks[key] = launched.error
        defer = self._defer_status(namespace, name, decision, launched, status)
        if defer is None and status != verdict.backfill.status:
            try:
                written = self.api.replace_status(BACKFILLS, body, status.compacted().to_api())
            except Conflict:
                self._wrote(BACKFILLS, namespace, name, None)
                self.metrics.record(namespace, name, (), launched.created)
                return PassResult(again=True)
            self._wrote(BACKFILLS, namespace, name, written)
        self.actions.delete(namespace, decision.deletions)
        if defer is None:
            self.actions.send_events(body, status_events(verdict, decision.state, status), now)
        self._observe(namespace, name, decision, status, launched.created)
        requeue = decision.requeue_after_seconds
        if defer is not None:
            requeue = defer if requeue is None else min(requeue, defer)
        if launched.error is not None or launched.quota is not None:
            requeue = min(requeue or LAUNCH_ERROR_REQUEUE_SECONDS, LAUNCH_ERROR_REQUEUE_SECONDS)
        siblings = self._siblings(decision, launched) + self._note_waiting(
            job_key, verdict.backfill.run_name, decision
        )
        return PassResult(
            requeue_after_seconds=requeue,
            wake=tuple(s for s in siblings if s != SCHEDULE_RUN),
            wake_job=verdict.partitioned_job.name if SCHEDULE_RUN in siblings else None,
        )

    def _defer_status(
        self,
        namespace: str,
        name: str,
        decision: Decision,
        launched: Launched,
        status: BackfillStatus,
    ) -> float | None:
        """Seconds the status write of this pass may wait, or None: write it now.

        A pass that only launched Jobs (no outcome, deletion, ledger change or refusal, and a
        status that differs from the recorded one only in what launches change:
        :func:`~backfill_operator.planning.status.only_launches`) leaves its status to a pass
        at most :data:`STATUS_DEFER_SECONDS` after this operator's last write of it, so a
        freed slot is refilled without a status round trip on the way. Nothing is lost if the
        operator stops meanwhile: the next pass derives all of it from the Jobs again.
        """
        old = decision.verdict.backfill.status
        if (
            decision.outcomes
            or decision.deletions
            or decision.ledger is not None
            or launched.error is not None
            or launched.quota is not None
            or not only_launches(old, status)
        ):
            return None
        with self._locks_guard:
            written = self._written.get((BACKFILLS, namespace, name))
        if written is None:
            return None
        left = STATUS_DEFER_SECONDS - (self.clock.monotonic() - written[0])
        return left if left > 0 else None

    def _note_waiting(self, job_key: str, run: str, decision: Decision) -> tuple[str, ...]:
        """Remember whether ``run`` waits for another run's Job; return the runs to wake now.

        A run waits for another's Job when a unit it would launch is locked, or an upstream step
        (or the previous partition, ``dependsOnPast``) is that run's active Job. That run's
        outcome reaches the ledger in a pass after its Job ended, and a ledger write wakes
        nobody: so a pass that recorded outcomes wakes the waiting runs (besides itself).
        """
        state = decision.state
        waits = bool(decision.blocked.locked) or (
            state is not None and any(lane.waiting_on_others for lane in state.lanes)
        )
        with self._locks_guard:
            waiting = self._waiting.setdefault(job_key, set())
            if waits:
                waiting.add(run)
            else:
                waiting.discard(run)
            if decision.ledger is None:
                return ()
            return tuple(sorted(waiting - {run}))

    @staticmethod
    def _siblings(decision: Decision, launched: Launched) -> tuple[str, ...]:
        """Other runs to wake: job-wide slots stay free after this pass and they want some.

        Their claims are from their last pass; waking them makes them take the slots, or
        publish claims that let another run take them.
        """
        shared = decision.shared
        if shared.limit is None or launched.quota is not None:
            return ()
        if shared.limit - shared.active_jobs - len(launched.requests) <= 0:
            return ()
        return tuple(sorted(c.key for c in shared.claims if c.wanted > 0))

    def _observe(
        self, namespace: str, name: str, decision: Decision, status: BackfillStatus, created: int
    ) -> None:
        spec = decision.verdict.backfill.spec
        self.metrics.record(namespace, name, decision.outcomes, created)
        if spec is not None:
            self.metrics.observe_status(
                namespace, name, spec.job_ref.name, spec.concurrency, status
            )
            pj = decision.verdict.partitioned_job
            self.metrics.observe_job_wide(
                namespace,
                pj.name,
                decision.shared.active_jobs + created,
                pj.spec.concurrency if pj.spec is not None else None,
            )

    def _merge_ledger(
        self, namespace: str, name: str, update: LedgerUpdate, body: dict[str, Any] | None
    ) -> bool:
        """Merge final outcomes into the PartitionedJob's ledger (bounded retries).

        ``body`` is the PartitionedJob this pass read (tried first: under the PartitionedJob's
        lock it is current unless a user edited it, then a Conflict re-reads it). Returns
        False when its status has no ``partitioning`` yet (its pass has not run: the caller
        records nothing and looks again soon); outcomes of another numbering than the
        status' are dropped (``planning.ledger``).
        """
        ready = True

        def change(body: dict[str, Any]) -> dict[str, Any] | None:
            nonlocal ready
            status = judging.load_partitioned_job(name, body).status
            if status.partitioning is None:
                ready = False
                return None
            if not update.applies_to(status):
                return None
            new = status.model_copy(update={"ledger": update.apply(status)})
            return None if new == status else new.compacted().to_api()

        try:
            written = update_status(self.api, PARTITIONED_JOBS, namespace, name, change, body=body)
        except BaseException:
            self._wrote(PARTITIONED_JOBS, namespace, name, None)
            raise
        if written is not None:
            self._wrote(PARTITIONED_JOBS, namespace, name, written)
        return ready

    # ------------------------------------------------------------- PartitionedJob pass
    def _observe_jobs(
        self, namespace: str, partitioned_job: str, uid: str, pods_done: Collection[str]
    ) -> list[ObservedJob]:
        """The Jobs of ``partitioned_job`` as the planner sees them (run ``uid`` deciding).

        From the Job cache when there is one (it lists them when it cannot vouch for them:
        :mod:`.jobcache`), else listed from the apiserver.
        """
        label = labels.label_value(partitioned_job)
        selector = f"{labels.LABEL_PARTITIONED_JOB}={label}"
        if self.jobs is None:
            raw = self.api.list_jobs(namespace, selector)
        else:
            raw = self.jobs.jobs(
                namespace, label, functools.partial(self.api.list_jobs, namespace, selector)
            )
        observed = (
            observe_job(r, uid, (r.get("metadata") or {}).get("name") in pods_done) for r in raw
        )
        return [j for j in observed if j is not None]

    def reconcile_partitioned_job(
        self, namespace: str, name: str, pods_done: Collection[str] = frozenset()
    ) -> PassResult:
        """Run one pass for PartitionedJob namespace/name: its status and its scheduled runs.

        Under the job's lock (its Backfills' passes wait): validity, description and
        numbering (:func:`~backfill_operator.planning.partitioned_job.partitioned_job_status`);
        with ``spec.runs``, the schedule's pass (:mod:`backfill_operator.planning.runs`).
        ``pods_done`` as for :meth:`reconcile`.
        """
        started = self.clock.monotonic()
        self._waited.seconds = 0.0
        try:
            with self._locked(namespace, name):
                return self._reconcile_partitioned_job(namespace, name, pods_done)
        finally:
            spent = self.clock.monotonic() - started - self._waited.seconds
            self.metrics.reconcile_seconds.observe(spent)

    def _reconcile_partitioned_job(
        self, namespace: str, name: str, pods_done: Collection[str]
    ) -> PassResult:
        body = self.api.get(PARTITIONED_JOBS, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.forget_schedule(namespace, name)
            return PassResult(gone=True)
        now = self.clock.now()
        meta = body["metadata"]
        view = judging.load_partitioned_job(name, body)
        spec = view.spec if view.spec is not None else view.spec_error
        assert spec is not None  # found: a spec, or why it cannot be read
        generation = int(meta.get("generation") or 0)
        owner = Owner(namespace, name, meta["uid"], kind="PartitionedJob")
        t_hash = ""
        refusal = None
        if view.spec is not None:
            # The template is checked when it changes (a dry run per template hash), so a job
            # no Backfill can run says so itself.
            with contextlib.suppress(judging.InvalidSpec):
                t_hash = step_graph(view.spec).template_hash()
                refusal = self._check_template(owner, view, t_hash, SAMPLE_PARTITION)
        base = partitioned_job_status(spec, view.status, generation, now, refusal)
        rv = runs_planning.judge_runs(
            replace(view, status=base),
            namespace=namespace,
            uid=owner.uid,
            generation=generation,
            created=parse_time(meta.get("creationTimestamp")) or now,
            now=now,
            template_hash=t_hash,
            check_template=functools.partial(self._check_template, owner),
        )
        validity = partitioned_job_events(view.status, base)
        if rv is None:
            status = base.model_copy(update={"runs": None})
            if status != view.status and not self._write_status(body, status):
                return PassResult(again=True)
            self.actions.send_events(body, validity, now)
            self.forget_schedule(namespace, name)
            return PassResult()
        if rv.take.changed:
            # Record what the schedule takes on before acting on it: the policy is applied
            # once, even if the operator stops between here and the Jobs' creation.
            recorded = rv.previous.model_copy(
                update={
                    "partitioning": rv.space.fingerprint,
                    "considered": rv.take.considered,
                    "scheduled": str(rv.take.scheduled),
                    "missed_set": str(rv.take.missed),
                }
            )
            if not self._write_status(body, base.model_copy(update={"runs": recorded})):
                return PassResult(again=True)
            self.metrics.count_taken(namespace, name, rv.take)
            body = self.api.get(PARTITIONED_JOBS, namespace, name)
            if body is None:
                return PassResult(gone=True)
        me = object_key(namespace, SCHEDULE_RUN)
        job_key = object_key(namespace, name)
        with self._locks_guard:
            self._schedules.add(job_key)
        series = runs_planning.series_name(name)
        observed = self._observe_jobs(namespace, name, owner.uid, pods_done)
        with self._locks_guard:
            others = [c for k, c in self._claims.get(job_key, {}).items() if k != me]
        decision = runs_planning.plan_runs(rv, observed, others)
        if decision.claim is not None:
            with self._locks_guard:
                self._claims.setdefault(job_key, {})[me] = decision.claim
        launched = self.actions.launch(owner, rv.verdict, decision.launches)
        merged = base
        if decision.ledger is not None and decision.ledger.applies_to(base):
            merged = base.model_copy(update={"ledger": decision.ledger.apply(base)})
        runs_status = runs_planning.compose_runs_status(
            rv,
            decision,
            launched.requests,
            ledger=merged,
            created=launched.created_at,
            launch_error=launched.error,
            quota=launched.quota,
        )
        status = merged.model_copy(update={"runs": runs_status})
        current = judging.load_partitioned_job(name, body).status
        if status != current and not self._write_status(body, status):
            self.metrics.record(namespace, series, (), launched.created)
            return PassResult(again=True)
        self.actions.delete(namespace, decision.deletions)
        events = [*validity, *runs_planning.runs_events(rv, decision, runs_status)]
        self.actions.send_events(body, events, now)
        self.metrics.record(namespace, series, decision.outcomes, launched.created)
        run_spec = rv.verdict.backfill.spec
        assert run_spec is not None  # the schedule's view always has one
        self.metrics.observe_status(
            namespace,
            series,
            name,
            run_spec.concurrency,
            runs_planning.as_backfill_status(runs_status),
            phase=False,
        )
        self.metrics.observe_schedule(namespace, name, rv.runs, runs_status)
        self.metrics.observe_job_wide(
            namespace,
            name,
            decision.shared.active_jobs + launched.created,
            decision.shared.limit,
        )
        requeue = runs_planning.next_requeue(rv, decision)
        if launched.error is not None or launched.quota is not None:
            requeue = min(requeue or LAUNCH_ERROR_REQUEUE_SECONDS, LAUNCH_ERROR_REQUEUE_SECONDS)
        waiting = self._note_waiting(job_key, SCHEDULE_RUN, decision)
        return PassResult(
            requeue_after_seconds=requeue,
            wake=tuple(sorted(set(self._siblings(decision, launched)) | set(waiting))),
        )

    def _write_status(self, body: dict[str, Any], status: PartitionedJobStatus) -> bool:
        """Write a PartitionedJob's whole status at ``body``'s resourceVersion; False: Conflict."""
        meta = body["metadata"]
        try:
            written = self.api.replace_status(PARTITIONED_JOBS, body, status.compacted().to_api())
        except Conflict:
            self._wrote(PARTITIONED_JOBS, meta["namespace"], meta["name"], None)
            return False
        self._wrote(PARTITIONED_JOBS, meta["namespace"], meta["name"], written)
        return True

    def has_schedule(self, namespace: str, name: str) -> bool:
        """True when PartitionedJob namespace/name had ``spec.runs`` at its last pass."""
        with self._locks_guard:
            return object_key(namespace, name) in self._schedules

    def forget_schedule(self, namespace: str, name: str) -> None:
        """Drop what memory holds about PartitionedJob namespace/name's schedule."""
        with self._locks_guard:
            self._schedules.discard(object_key(namespace, name))
            self._waiting.get(object_key(namespace, name), set()).discard(SCHEDULE_RUN)
            self._claims.get(object_key(namespace, name), {}).pop(
                object_key(namespace, SCHEDULE_RUN), None
            )
        self.metrics.forget_schedule(namespace, name)
        self.metrics.forget(namespace, runs_planning.series_name(name))
