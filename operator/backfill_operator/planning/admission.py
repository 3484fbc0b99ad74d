"""Sharing a PartitionedJob between its runs: the partition lock and the job-wide limit.

Every Backfill of a PartitionedJob (and, later, its scheduled runs) draws on two shared things:

* **the partition lock**: at most one active Job per partition across all runs of the job. It
  is read from the API (the ``backfill.dev/partitioned-job`` and ``partition-index`` labels of
  the job's active Jobs), so it survives restarts; a run that reaches a locked partition skips
  it for now and launches the next unlocked one. A run never waits while holding a partition
  (holding means having an active Job, which ends on its own), so two runs cannot deadlock;
* **the job-wide limit** (``PartitionedJob.spec.concurrency``): at most that many active Jobs
  across all runs (a finishing Job, whose pod succeeded, no longer counts:
  :mod:`~backfill_operator.planning.observed`). Free slots go by :func:`grant`: higher
  ``priority`` first; among equal priorities, to the run with the fewest active Jobs (then
  the fewest partitions started so far, then by name), one slot at a time: max-min fair
  shares, so no run starves another of its priority (Dagster's run queue with priorities,
  Airflow's pools; the order Kueue's ClusterQueue uses for workloads of equal priority is by
  creation time instead).

Pure: a pass passes in what it listed (:func:`shared_view` of the job's Jobs) and the other
runs' latest claims (kept by the operator in memory: after a restart each run's first pass
restores its claim, so shares are even again within seconds; the lock and the limit hold
throughout, since they are read from the Jobs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..api.model import PartitionedJobStatus
from .ledger import ledger_of
from .observed import JobState, ObservedJob
from .ranges import IndexSet


@dataclass(frozen=True)
class Claim:
    """What one run of a PartitionedJob asks of the job-wide limit.

    ``key`` names the run; ``active`` its active Jobs; ``desired`` how many active Jobs it
    would have if nothing job-wide stood in the way (its own concurrency, capped by what it
    can launch: locked partitions excluded), so that it still says the right thing when some
    of its Jobs end before its next pass; ``started`` the partitions it has started so far
    (a tie-breaker: the run that has done less goes first).
    """

    key: str
    priority: int
    active: int
    desired: int
    started: int = 0

    @property
    def wanted(self) -> int:
        """Jobs it would create now: ``desired - active``, at least 0."""
        return max(0, self.desired - self.active)


@dataclass(frozen=True)
class JobWide:
    """The PartitionedJob's runs as one pass of one of them sees them.

    ``limit`` is ``spec.concurrency`` of the PartitionedJob (None: no job-wide limit);
    ``active_jobs`` every active Job of the job, of any run, that holds a slot (not finishing);
    ``held`` maps a unit (step,
    partition index) to the name of the run whose active Job holds it (runs other than the
    deciding one; the lock is per (partition, step));
    ``claims`` the other runs' latest claims.
    """

    limit: int | None = None
    active_jobs: int = 0
    held: Mapping[tuple[str, int], str] = field(default_factory=dict)
    claims: Sequence[Claim] = ()


def grant(limit: int | None, active_jobs: int, claims: Sequence[Claim], key: str) -> int | None:
    """Return how many new Jobs the run ``key`` may create now under the job-wide limit.

    ``claims`` holds every run's claim, ``key``'s included; ``active_jobs`` counts every active
    Job of the job (also of runs without a claim). None means no limit. Free slots
    (``limit - active_jobs``) are handed out one at a time: to the highest priority with
    ``wanted`` left, and within it to the claim with the fewest ``active`` (counting slots
    already handed out in this round), then the fewest ``started``, then ``key``. The result
    never exceeds the claim's ``wanted``. No preemption: running Jobs keep their slots.
    """
    mine = next((c for c in claims if c.key == key), None)
    if mine is None or mine.wanted == 0:
        return None if limit is None else 0
    if limit is None:
        return None
    free = max(0, limit - active_jobs)
    wanting = [c for c in claims if c.wanted > 0]
    given = {c.key: 0 for c in wanting}
    while free > 0:
        open_claims = [c for c in wanting if given[c.key] < c.wanted]
        if not open_claims:
            break
        top = max(c.priority for c in open_claims)
        chosen = min(
            (c for c in open_claims if c.priority == top),
            key=lambda c: (c.active + given[c.key], c.started, c.key),
        )
        given[chosen.key] += 1
        free -= 1
    return given.get(key, 0)


def shared_view(
    jobs: Iterable[ObservedJob],
    run_uid: str,
    job_status: PartitionedJobStatus,
    fingerprint: str | None,
    limit: int | None,
    claims: Sequence[Claim],
) -> JobWide:
    """Return what the PartitionedJob's Jobs say about its other runs, for the run ``run_uid``.

    ``jobs`` are every Job of the PartitionedJob (all runs); ``job_status`` holds the ledger
    as read in this pass. Another run's Job holds its partition while it is active, and a
    succeeded one until the ledger shows the success (its run records it right after the Job
    ends, and ``reprocess`` must see it). A failed Job holds nothing: its run may retry later
    or never (a Backfill out of failure budget keeps its failed Jobs), and a partition without
    a success may run again. Jobs of another numbering (``partitioning`` label) hold nothing.
    ``claims`` (other runs' latest) get their ``active`` counted afresh from ``jobs``. A Job
    of several partitions (``partitionsPerJob``) holds each of them and one slot.
    """
    jobs = list(jobs)
    active_jobs = sum(1 for j in jobs if j.holds_slot)
    per_run: dict[str, int] = {}
    foreign = [
        j
        for j in jobs
        if not j.owned
        and j.run_uid != run_uid
        and (not j.partitioning or j.partitioning == fingerprint)
    ]
    held: dict[tuple[str, int], str] = {}
    succeeded = [j for j in foreign if j.state is JobState.SUCCEEDED]
    ok: dict[str, IndexSet] = {}
    for job in foreign:
        if job.active:
            if job.holds_slot:
                per_run[job.run] = per_run.get(job.run, 0) + 1
            held.update(((job.step, i), job.run) for i in job.indices)
    for job in succeeded:
        if job.step not in ok:
            ok[job.step] = ledger_of(job_status, fingerprint, job.step)[0]
        for i in job.indices:
            if i not in ok[job.step]:
                held.setdefault((job.step, i), job.run)
    fresh = [replace(c, active=per_run.get(c.key, 0)) for c in claims]
    return JobWide(limit=limit, active_jobs=active_jobs, held=held, claims=fresh)


def holders(locked: Mapping[tuple[str, int], str], most: int) -> list[tuple[str, int]]:
    """Return (run, partitions) for the runs holding ``locked``, most first, at most ``most``."""
    counts: dict[str, int] = {}
    for run in locked.values():
        counts[run] = counts.get(run, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:most]
