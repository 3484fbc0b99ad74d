"""What the planner sees of the cluster: Jobs reduced to small frozen records.

Raw API objects (dicts, as the apiserver returns them) are read here, once, so the planner
works on typed values only. A Job is finished when it has the condition ``Complete`` or
``Failed`` with status "True" (batch/v1 Job API; ``SuccessCriteriaMet`` and
``FailureTarget`` are interim and do not count).

A Job whose only pod has succeeded but whose ``Complete`` condition the Job controller has not
written yet (about a second later: its sync batch period) is *finishing*: it cannot run again
(``completions: 1``, ``parallelism: 1``: a succeeded pod completes it), so it no longer holds a
concurrency slot, but it still holds its partition (its outcome is recorded from the Job's
condition, the one source of truth for success and failure).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..api import labels
from ..api.model import SCHEDULE_RUN
from .times import parse_time


class JobState(enum.Enum):
    """Lifecycle of one Job as the planner needs it."""

    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ObservedJob:
    """One Job of a PartitionedJob, as the Backfill deciding a pass sees it.

    ``index`` and ``attempt`` come from the Job's labels; ``owned`` is True when the Job's
    controller ownerReference is the deciding Backfill (only owned Jobs are adopted, counted or
    deleted; the others belong to other runs: ``run`` and ``run_uid`` name that Backfill, from
    its controller owner reference and uid label). ``created`` is the creationTimestamp as the
    API wrote it; other times are aware UTC datetimes; ``message`` is the reason and message of
    the Failed condition ("" otherwise). ``suspended`` is an active Job with ``spec.suspend:
    true`` (Kueue holds it: queued); ``partitioning`` the numbering its index belongs to ("" on
    Jobs made before the label existed). A Job of the PartitionedJob's scheduled runs has
    ``run`` ``(schedule)``. ``step`` is the step it runs ("" for a job with ``jobTemplate``).
    ``finishing``: active, but its pod succeeded (module doc): it holds its partition, not a
    concurrency slot. ``count`` (``partitionsPerJob``): the Job runs the partitions ``index``
    .. ``index + count - 1`` (``key`` the first one's, ``last_key`` the last one's) and its
    outcome is each of theirs.
    """

    name: str
    index: int
    attempt: int
    key: str
    state: JobState
    owned: bool
    created: str = ""
    start_time: datetime | None = None
    finish_time: datetime | None = None
    message: str = ""
    deleting: bool = False
    suspended: bool = False
    run: str = ""
    run_uid: str = ""
    partitioning: str = ""
    step: str = ""
    finishing: bool = False
    count: int = 1
    last_key: str = ""

    @property
    def indices(self) -> range:
        """The global partition indices the Job runs (``count`` from ``index``)."""
        return range(self.index, self.index + self.count)

    @property
    def active(self) -> bool:
        """True until the Job finished (a queued Job is active: it holds its slot)."""
        return self.state is JobState.ACTIVE

    @property
    def holds_slot(self) -> bool:
        """True while the Job counts against a concurrency limit: active and not finishing."""
        return self.state is JobState.ACTIVE and not self.finishing


def job_state(conditions: list[dict[str, Any]]) -> tuple[JobState, datetime | None, str]:
    """Return a Job's state from its ``status.conditions``, with when and why it ended.

    Returns (state, the finishing condition's lastTransitionTime or None, "reason: message"
    of a Failed condition or ""). The one definition of "this Job is finished" (module doc).
    """
    for cond in conditions:
        if cond.get("status") != "True":
            continue
        when = parse_time(cond.get("lastTransitionTime"))
        if cond.get("type") == "Complete":
            return JobState.SUCCEEDED, when, ""
        if cond.get("type") == "Failed":
            reason = cond.get("reason") or "Failed"
            message = cond.get("message") or ""
            return JobState.FAILED, when, f"{reason}: {message}" if message else reason
    return JobState.ACTIVE, None, ""


def single_pod(spec: dict[str, Any]) -> bool:
    """True when a Job spec runs one pod to one completion.

    That is ``completions`` and ``parallelism`` unset or 1: then its pod's success is the
    Job's (batch/v1 Job API).
    """
    return spec.get("completions") in (None, 1) and spec.get("parallelism") in (None, 1)


def observe_job(
    raw: dict[str, Any], backfill_uid: str, pod_succeeded: bool = False
) -> ObservedJob | None:
    """Return the planner's view of a raw batch/v1 Job, or None if it lacks our labels.

    A Job whose index, attempt or count label is not an integer in range is ignored (None):
    it was not created by this operator. ``pod_succeeded``: a pod of this Job has phase
    ``Succeeded`` (from the operator's pod watch); the Job is then *finishing* (module doc)
    while active and :func:`single_pod`.
    """
    meta = raw.get("metadata") or {}
    job_labels = meta.get("labels") or {}
    try:
        index = int(job_labels[labels.LABEL_PARTITION_INDEX])
        attempt = int(job_labels[labels.LABEL_ATTEMPT])
        count = int(job_labels.get(labels.LABEL_PARTITION_COUNT, "1"))
    except (KeyError, ValueError):
        return None
    if index < 0 or attempt < 1 or count < 1:
        return None
    owners = meta.get("ownerReferences") or []
    owned = any(o.get("controller") and o.get("uid") == backfill_uid for o in owners)
    # The run's name from the controller owner (the label holds a shortened name beyond 63
    # characters); a Job without one falls back to the label.
    run = next(
        (
            str(o.get("name") or "")
            for o in owners
            if o.get("controller") and o.get("kind") == "Backfill"
        ),
        job_labels.get(labels.LABEL_BACKFILL, ""),
    )
    status = raw.get("status") or {}
    state, finished, message = job_state(status.get("conditions") or [])
    if state is not JobState.ACTIVE:
        finished = parse_time(status.get("completionTime")) or finished
    annotations = meta.get("annotations") or {}
    spec = raw.get("spec") or {}
    return ObservedJob(
        name=meta.get("name", ""),
        index=index,
        attempt=attempt,
        key=annotations.get(labels.ANNOTATION_PARTITION_KEY, str(index)),
        state=state,
        owned=owned,
        created=meta.get("creationTimestamp") or "",
        start_time=parse_time(status.get("startTime")) or parse_time(meta.get("creationTimestamp")),
        finish_time=finished,
        message=message,
        deleting=bool(meta.get("deletionTimestamp")),
        suspended=state is JobState.ACTIVE and spec.get("suspend") is True,
        run=SCHEDULE_RUN if job_labels.get(labels.LABEL_SCHEDULED) == "true" else run,
        run_uid=job_labels.get(labels.LABEL_BACKFILL_UID, ""),
        partitioning=job_labels.get(labels.LABEL_PARTITIONING, ""),
        step=job_labels.get(labels.LABEL_STEP, ""),
        finishing=pod_succeeded and state is JobState.ACTIVE and single_pod(spec),
        count=count,
        last_key=annotations.get(labels.ANNOTATION_PARTITION_KEY_LAST, ""),
    )
