"""What the planner sees of the cluster: Jobs reduced to small frozen records.

Raw API objects (dicts, as the apiserver returns them) are read here, once, so the planner
works on typed values only. A Job is finished when it has the condition ``Complete`` or
``Failed`` with status "True" (batch/v1 Job API; ``SuccessCriteriaMet`` and
``FailureTarget`` are interim and do not count).
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
    controller ownerReference is the deciding Backfill (only owned Jobs are adopted, counted
    or deleted; the others belong to other runs: ``run`` and ``run_uid`` name that Backfill,
    from its labels). ``created`` is the creationTimestamp as the API wrote it; other times are
    aware UTC datetimes; ``message`` is the reason and message of the Failed condition (""
    otherwise). ``suspended`` is an active Job with ``spec.suspend: true`` (Kueue holds it:
    queued); ``partitioning`` the numbering its index belongs to ("" on Jobs made before the
    label existed). A Job of the PartitionedJob's scheduled runs has ``run`` ``(schedule)``.
    ``step`` is the step it runs ("" for a job with ``jobTemplate``).
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

    @property
    def active(self) -> bool:
        """True until the Job finished (a queued Job is active: it holds its slot)."""
        return self.state is JobState.ACTIVE


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


def observe_job(raw: dict[str, Any], backfill_uid: str) -> ObservedJob | None:
    """Return the planner's view of a raw batch/v1 Job, or None if it lacks our labels.

    A Job whose index or attempt label is not a non-negative integer is ignored (None): it was
    not created by this operator.
    """
    meta = raw.get("metadata") or {}
    job_labels = meta.get("labels") or {}
    try:
        index = int(job_labels[labels.LABEL_PARTITION_INDEX])
        attempt = int(job_labels[labels.LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None
    if index < 0 or attempt < 1:
        return None
    owners = meta.get("ownerReferences") or []
    owned = any(o.get("controller") and o.get("uid") == backfill_uid for o in owners)
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
        run=(
            SCHEDULE_RUN
            if job_labels.get(labels.LABEL_SCHEDULED) == "true"
            else job_labels.get(labels.LABEL_BACKFILL, "")
        ),
        run_uid=job_labels.get(labels.LABEL_BACKFILL_UID, ""),
        partitioning=job_labels.get(labels.LABEL_PARTITIONING, ""),
        step=job_labels.get(labels.LABEL_STEP, ""),
    )
