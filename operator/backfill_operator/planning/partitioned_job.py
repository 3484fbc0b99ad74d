"""A PartitionedJob's status: whether its partitions parse, and the numbering of its ledger.

The PartitionedJob pass is the one writer of ``observedGeneration``, ``conditions``,
``description`` and ``partitioning``; when ``partitioning`` changes it also clears the
ledger (the old partition numbers no longer apply). Backfill passes only merge outcomes into
``ledger`` (:mod:`.ledger`).
"""

from __future__ import annotations

from datetime import datetime

from ..api.model import PartitionedJobSpec, PartitionedJobStatus, PartitionLedger
from ..api.reasons import ConditionType, Reason
from . import conditions as cond
from .space import Partition
from .status import EventIntent
from .steps import StepGraph, step_graph
from .verdict import InvalidSpec, SpecError, build_space


def _is_chain(graph: StepGraph) -> bool:
    """True when each step depends on exactly the one before it (a -> b -> c)."""
    return all(
        graph.upstream[s] == ((graph.order[i - 1],) if i else ()) for i, s in enumerate(graph.order)
    )


#: The partition a PartitionedJob's template is tried with (server-side dry run). A partition
#: changes only values the apiserver does not check (an annotation, environment values, a
#: name the dry run replaces), so a stand-in judges the template as well as a real one, and
#: exists before the first window of a schedule ends.
SAMPLE_PARTITION = Partition(0, "sample", None, None)


def partitioned_job_status(
    spec: PartitionedJobSpec | SpecError,
    previous: PartitionedJobStatus,
    generation: int,
    now: datetime,
    template_refusal: str | None = None,
) -> PartitionedJobStatus:
    """Return a PartitionedJob's status: Ready/Stalled by whether its partitions parse.

    ``spec`` is the parsed spec, or why it could not be read (then Ready=False and
    Stalled=True with reason InvalidPartitions, and the ledger is kept as it is);
    partitions that do not parse (InvalidPartitions) or a cycle among its steps
    (InvalidSteps) likewise. ``template_refusal`` is the apiserver's refusal of a Job built
    from the template (server-side dry run, :data:`SAMPLE_PARTITION`): Ready=False and
    Stalled=True with reason InvalidJobTemplate, numbering and ledger kept (no Backfill can
    run it, but the partitions are what they were). The ledger is kept unless the
    partitioning fingerprint changed.
    """
    try:
        if isinstance(spec, SpecError):
            raise InvalidSpec(Reason.INVALID_PARTITIONS, f"spec is invalid: {spec.full}")
        space = build_space(spec, now)
        graph = step_graph(spec)
    except InvalidSpec as exc:
        conds = [
            cond.make(ConditionType.READY, False, exc.reason, exc.message, generation),
            cond.make(ConditionType.STALLED, True, exc.reason, exc.message, generation),
        ]
        return previous.model_copy(
            update={
                "observed_generation": generation,
                "conditions": cond.merge(previous.conditions, conds, now),
                "description": None,
            }
        )
    ledger = previous.ledger if previous.partitioning == space.fingerprint else PartitionLedger()
    describe = space.describe()
    if graph.stepped:
        describe += (
            f"; steps {' -> '.join(graph.order)}"
            if _is_chain(graph)
            else (f"; {len(graph.order)} steps")
        )
    conds = [
        cond.make(ConditionType.READY, True, Reason.VALID, describe, generation),
        cond.make(ConditionType.STALLED, False, Reason.VALID, "", generation),
    ]
    if template_refusal:
        message = f"the apiserver rejects a Job built from the jobTemplate: {template_refusal}"
        bad = Reason.INVALID_JOB_TEMPLATE
        conds = [
            cond.make(ConditionType.READY, False, bad, message, generation),
            cond.make(ConditionType.STALLED, True, bad, message, generation),
        ]
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "conditions": cond.merge(previous.conditions, conds, now),
            "partitioning": space.fingerprint,
            "description": describe,
            "ledger": ledger,
        }
    )


def partitioned_job_events(
    previous: PartitionedJobStatus, status: PartitionedJobStatus
) -> list[EventIntent]:
    """Return the Events for a PartitionedJob's validity change.

    A Warning with the Stalled reason when it becomes invalid or its invalid message changes
    (as for an Invalid Backfill); nothing otherwise.
    """
    stalled = cond.find(status.conditions, ConditionType.STALLED)
    if stalled is None or stalled.status != "True":
        return []
    old = cond.find(previous.conditions, ConditionType.STALLED)
    if old is not None and old.status == "True" and old.message == stalled.message:
        return []
    return [EventIntent("Warning", Reason(stalled.reason), stalled.message)]
