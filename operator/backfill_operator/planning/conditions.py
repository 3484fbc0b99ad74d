"""Building and updating ``metav1.Condition`` lists (the types and reasons are in the API).

Reasons come from :mod:`backfill_operator.api.reasons`; this module only knows the update rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..api.model import Condition, ConditionStatus
from ..api.reasons import ConditionType, Reason
from .times import rfc3339


def make(
    ctype: ConditionType, status: bool, reason: Reason, message: str, generation: int | None
) -> Condition:
    """Return a condition without lastTransitionTime (:func:`merge` fills it in)."""
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


def find(conditions: Sequence[Condition], ctype: ConditionType) -> Condition | None:
    """Return the condition of type ``ctype``, or None."""
    return next((c for c in conditions if c.type == ctype), None)
