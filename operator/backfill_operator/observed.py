"""What the planner sees of the cluster: Jobs and objects reduced to small frozen records.

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

from . import naming


class JobState(enum.Enum):
    """Lifecycle of one Job as the planner needs it."""

    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ObservedJob:
    """One Job labelled with a Backfill's UID.

    ``index`` and ``attempt`` come from the Job's labels; ``owned`` is True when the Job's
    controller ownerReference is the Backfill (only owned Jobs are adopted, counted or
    deleted). ``created`` is the creationTimestamp as the API wrote it; other times are aware
    UTC datetimes; ``message`` is the reason and message of the
    Failed condition ("" otherwise).
    """

    name: str
    index: int
    attempt: int
    key: str
    state: JobState
    owned: bool
    template_hash: str
    created: str = ""
    start_time: datetime | None = None
    finish_time: datetime | None = None
    message: str = ""
    deleting: bool = False


def parse_time(text: str | None) -> datetime | None:
    """Parse a metav1.Time ("2024-01-01T00:00:00Z"); None for None or ""."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _finished(conditions: list[dict[str, Any]]) -> tuple[JobState, datetime | None, str]:
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
    labels = meta.get("labels") or {}
    try:
        index = int(labels[naming.LABEL_PARTITION_INDEX])
        attempt = int(labels[naming.LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None
    if index < 0 or attempt < 1:
        return None
    owners = meta.get("ownerReferences") or []
    owned = any(o.get("controller") and o.get("uid") == backfill_uid for o in owners)
    status = raw.get("status") or {}
    state, finished, message = _finished(status.get("conditions") or [])
    if state is not JobState.ACTIVE:
        finished = parse_time(status.get("completionTime")) or finished
    annotations = meta.get("annotations") or {}
    return ObservedJob(
        name=meta.get("name", ""),
        index=index,
        attempt=attempt,
        key=annotations.get(naming.ANNOTATION_PARTITION_KEY, str(index)),
        state=state,
        owned=owned,
        template_hash=annotations.get(naming.ANNOTATION_TEMPLATE_HASH, ""),
        created=meta.get("creationTimestamp") or "",
        start_time=parse_time(status.get("startTime")) or parse_time(meta.get("creationTimestamp")),
        finish_time=finished,
        message=message,
        deleting=bool(meta.get("deletionTimestamp")),
    )
