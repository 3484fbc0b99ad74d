"""``logs``: the log of the pod that ran a partition, or why there is none.

The partition's Jobs are found by the Backfill's UID label and the partition-key annotation
(:mod:`backfill_operator.api.labels`); without a Job, the Backfill's status (read through the
operator's verdict on its selection) says whether the partition succeeded or failed and its
Job was deleted, was skipped, or has not started. For a PartitionedJob with steps a partition
has one Job per step: ``--step`` picks the step (label ``backfill.dev/step``), and is needed
when the partition has Jobs of several steps; the step's own status sets say why it has no
Job (it was not run because an upstream step failed, or it was marked succeeded).
"""

from __future__ import annotations

from typing import Any

from ...api.labels import ANNOTATION_PARTITION_KEY, LABEL_ATTEMPT, LABEL_BACKFILL_UID, LABEL_STEP
from ...api.model import (
    BACKFILLS,
    PARTITIONED_JOBS,
    BackfillSpec,
    BackfillStatus,
    PartitionSets,
)
from ...planning.ranges import IndexSet
from ...planning.space import PartitionError
from ...planning.verdict import load_partitioned_job
from .. import render
from ..client import LogUnavailable
from ..errors import EXIT_FAILED, EXIT_OK, CliError
from .objects import backfill_models, verdict_of
from .session import Session


def _step_sets(name: str, status: BackfillStatus, step: str | None) -> PartitionSets:
    """The status sets that say what became of ``step`` (None: the partitions' own sets).

    Raises CliError (exit 2) when the Backfill does not run that step.
    """
    if step is None:
        return status.partitions
    for entry in status.steps:
        if entry.name == step:
            return entry.partitions
    ran = ", ".join(entry.name for entry in status.steps)
    have = f" (its steps: {ran})" if ran else " (it has no steps)"
    raise CliError(f'Backfill {name} does not run a step "{step}"{have}')


def _why_no_job(
    session: Session,
    name: str,
    spec: BackfillSpec,
    status: BackfillStatus,
    key: str,
    step: str | None = None,
) -> CliError:
    """Explain why partition ``key`` (its ``step``) of Backfill ``name`` has no Job (exit 2/1)."""
    sets = _step_sets(name, status, step)
    what = f"partition {key}" + (f" step {step}" if step else "")
    job = spec.job_ref.name
    body = session.client.find(PARTITIONED_JOBS, job)
    verdict = verdict_of(
        spec, status, load_partitioned_job(job, body), namespace=session.namespace, name=name
    )
    space, selection = verdict.space, verdict.selection
    if space is not None and selection is not None:
        try:
            index = space.select_keys([key]).indices.first()
        except PartitionError as exc:
            return CliError(str(exc))
        if index not in selection.indices:
            return CliError(
                f'partition "{key}" is not one of Backfill {name}\'s partitions '
                f"({selection.first_key} … {selection.last_key})"
            )
        if index in IndexSet.parse(sets.marked):
            return CliError(
                f"{what} was marked succeeded without running (markSucceeded): no Job, no log",
                EXIT_FAILED,
            )
        if index in IndexSet.parse(sets.upstream_failed):
            return CliError(
                f"{what} was not run: a step it depends on failed or has no success "
                "(upstream failed): no Job, no log",
                EXIT_FAILED,
            )
        if index in IndexSet.parse(sets.succeeded):
            return CliError(
                f"no Job left for {what}: it succeeded and its Job was deleted "
                f"(Backfill {name} keeps its last {spec.successful_jobs_history_limit} "
                "successful Jobs: spec.successfulJobsHistoryLimit)",
                EXIT_FAILED,
            )
        if index in IndexSet.parse(sets.failed):
            return CliError(
                f"no Job left for {what}: it failed and its Job was deleted "
                f"(Backfill {name} keeps its last {spec.failed_jobs_history_limit} failed "
                "Jobs: spec.failedJobsHistoryLimit)",
                EXIT_FAILED,
            )
        if index in IndexSet.parse(sets.skipped):
            return CliError(
                f"{what} was skipped (it already had an outcome; reprocess "
                f"{spec.reprocess}): no Job ran for it in Backfill {name}",
                EXIT_FAILED,
            )
        return CliError(f"{what} has not started yet: no Job, no log", EXIT_FAILED)
    return CliError(f"Backfill {name} has no Job for {what}", EXIT_FAILED)


def _step_of(job: dict[str, Any]) -> str:
    return str((job["metadata"].get("labels") or {}).get(LABEL_STEP, ""))


def _attempt(job: dict[str, Any]) -> int:
    try:
        return int((job["metadata"].get("labels") or {}).get(LABEL_ATTEMPT, "0"))
    except ValueError:
        return 0


def logs(
    session: Session,
    name: str,
    *,
    key: str,
    attempt: int | None,
    container: str | None,
    tail: int | None,
    step: str | None = None,
) -> int:
    """``logs``: print the log of the pod that ran partition ``key`` (latest attempt).

    ``step`` picks the step's Jobs (a job with steps); without it, a partition with Jobs of
    several steps is a usage error naming them. Returns 0 when printed; raises CliError:
    exit 2 for an unknown Backfill, partition, step, attempt or container, or a missing
    ``--step``; exit 1 when there is no Job, no pod or no log.
    """
    body = session.client.get(BACKFILLS, name)
    spec, status = backfill_models(body)
    uid = body["metadata"]["uid"]
    jobs = [
        j
        for j in session.client.list_jobs(f"{LABEL_BACKFILL_UID}={uid}")
        if (j["metadata"].get("annotations") or {}).get(ANNOTATION_PARTITION_KEY) == key
    ]
    if step is not None:
        jobs = [j for j in jobs if _step_of(j) == step]
    if not jobs:
        raise _why_no_job(session, name, spec, status, key, step)
    steps = sorted({_step_of(j) for j in jobs})
    if len(steps) > 1:
        raise CliError(
            f"partition {key} has Jobs of several steps ({', '.join(steps)}): choose one with "
            "--step"
        )
    jobs.sort(key=_attempt)
    if attempt is not None:
        picked = [j for j in jobs if _attempt(j) == attempt]
        if not picked:
            have = ", ".join(str(_attempt(j)) for j in jobs)
            raise CliError(f"partition {key} has no Job for attempt {attempt} (attempts: {have})")
        job = picked[-1]
    else:
        job = jobs[-1]
    job_name = job["metadata"]["name"]
    pods = session.client.list_pods(f"batch.kubernetes.io/job-name={job_name}") or (
        session.client.list_pods(f"job-name={job_name}")
    )
    if not pods:
        raise CliError(
            f"no pod left for partition {key} (Job {job_name}): it was deleted or not created yet",
            EXIT_FAILED,
        )
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    pod = pods[-1]
    pod_name = pod["metadata"]["name"]
    node = (pod.get("spec") or {}).get("nodeName")
    phase = (pod.get("status") or {}).get("phase", "Unknown")
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if container is not None and container not in containers:
        raise CliError(
            f"pod {pod_name} has no container {container} (it has: {', '.join(containers)})"
        )
    label = f"partition {key}" + (f" step {_step_of(job)}" if _step_of(job) else "")
    session.err.print(
        f"{label}: Job {job_name}, attempt {_attempt(job)}, pod {pod_name} ({phase})"
        + (f" on node {node}" if node else ""),
        style="dim",
        highlight=False,
    )
    if not node:
        raise CliError(
            f"no log available for partition {key}: pod {pod_name} has not started ({phase})",
            EXIT_FAILED,
        )
    chosen = [container] if container else containers
    for c in chosen:
        try:
            text = session.client.pod_log(pod_name, c, tail)
        except LogUnavailable as exc:
            raise CliError(
                render.log_unavailable(key=key, pod=pod_name, node=node, detail=exc.detail),
                EXIT_FAILED,
            ) from exc
        if len(chosen) > 1:
            session.write(f"==> container {c} <==\n")
        session.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK
