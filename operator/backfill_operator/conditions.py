"""Condition types and reasons, and the rule for updating a list of conditions.

The three types are kstatus' "abnormal-true" trio, so Flux, Argo CD and ``kubectl wait`` read
health without custom code (sigs.k8s.io/cli-utils/pkg/kstatus): ``Ready`` (True when the
Backfill finished successfully), ``Reconciling`` (True while work is in progress) and
``Stalled`` (True when it cannot make progress without a change from the user). Each reason is
CamelCase (Kubernetes API conventions); messages are built next to their reasons, in the
planner.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

from .builders import rfc3339
from .model import Condition, ConditionStatus


class ConditionType(enum.StrEnum):
    """Condition types set on Backfills and PartitionedJobs."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Reason(enum.StrEnum):
    """Every reason the operator writes, one place."""

    # Ready
    SUCCEEDED = "Succeeded"
    IN_PROGRESS = "InProgress"
    DRY_RUN = "DryRunPlanned"
    SUSPENDED = "Suspended"
    PARTITIONS_FAILED = "PartitionsFailed"
    FAILURE_BUDGET_EXHAUSTED = "FailureBudgetExhausted"
    VALID = "Valid"
    # Stalled (invalid input)
    PARTITIONED_JOB_NOT_FOUND = "PartitionedJobNotFound"
    INVALID_PARTITIONS = "InvalidPartitions"
    INVALID_SELECTION = "InvalidSelection"
    INVALID_JOB_TEMPLATE = "InvalidJobTemplate"
    PARTITIONING_CHANGED = "PartitioningChanged"
    # Reconciling
    LAUNCHING = "Launching"
    WAITING_FOR_JOBS = "WaitingForJobs"
    WAITING_FOR_RETRY = "WaitingForRetry"
    AS_EXPECTED = "AsExpected"


def make(
    ctype: ConditionType, status: bool, reason: Reason, message: str, generation: int | None
) -> Condition:
    """Return a condition without lastTransitionTime (``merge`` fills it in)."""
    return Condition(
        type=str(ctype),
        status=ConditionStatus.TRUE if status else ConditionStatus.FALSE,
        reason=str(reason),
        message=message,
        observed_generation=generation,
    )


def merge(old: Sequence[Condition], new: Sequence[Condition], now: datetime) -> list[Condition]:
    """Return ``new`` with lastTransitionTime kept from ``old`` unless the status flipped.

    As ``meta.SetStatusCondition`` in k8s.io/apimachinery: the transition time moves only
    when a condition's status changes; reason, message and observedGeneration are replaced.
    Conditions of ``old`` whose type is not in ``new`` are kept unchanged. Order: ``new``'s.
    """
    previous = {c.type: c for c in old}
    merged: list[Condition] = []
    for cond in new:
        before = previous.pop(cond.type, None)
        if before is not None and before.status == cond.status and before.last_transition_time:
            stamp = before.last_transition_time
        else:
            stamp = rfc3339(now)
        merged.append(cond.model_copy(update={"last_transition_time": stamp}))
    merged.extend(previous.values())
    return merged
