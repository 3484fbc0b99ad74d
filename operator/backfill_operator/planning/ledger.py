"""The PartitionedJob's partition ledger: the last final outcome of every partition.

Every Backfill of a PartitionedJob merges the final outcomes it records into the job's
``status.ledger`` (:class:`LedgerUpdate`; per step for a job with steps), and ``reprocess``
reads it to skip partitions (steps) that already have an outcome (:func:`reprocess_skips`);
:func:`preview` is what a new Backfill would run, the answer ``kubectl backfill plan`` and
``create`` show before creating it.

Writers (``docs/design.md``, "Status writers"): Backfill passes merge outcomes into ``ledger``;
the PartitionedJob pass owns ``partitioning`` and clears the ledger when it changes. A merge
applies only to a ledger kept for the same fingerprint as the outcomes: outcomes of an older
numbering are dropped rather than written into a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..api.model import Order, PartitionedJobStatus, PartitionLedger, Reprocess, StepLedger
from .ranges import IndexSet
from .space import Selection
from .steps import MAIN_STEP
from .verdict import Verdict


def ledger_of(
    job_status: PartitionedJobStatus, partitioning: str | None, step: str = MAIN_STEP
) -> tuple[IndexSet, IndexSet]:
    """Return (succeeded, failed) of ``step`` in the ledger ("": the partition-level sets).

    Empty sets when the ledger is kept for another partitioning fingerprint, or the step has
    no entry.
    """
    if job_status.partitioning != partitioning:
        return IndexSet(), IndexSet()
    ledger = job_status.ledger
    if step == MAIN_STEP:
        return IndexSet.parse(ledger.succeeded), IndexSet.parse(ledger.failed)
    entry = next((s for s in ledger.steps if s.name == step), None)
    if entry is None:
        return IndexSet(), IndexSet()
    return IndexSet.parse(entry.succeeded), IndexSet.parse(entry.failed)


def reprocess_skips(
    candidates: IndexSet,
    reprocess: Reprocess,
    job_status: PartitionedJobStatus,
    partitioning: str | None,
    step: str = MAIN_STEP,
) -> IndexSet:
    """Return the candidates that ``reprocess`` skips, by the PartitionedJob's ledger of ``step``.

    Missing skips partitions with any recorded final outcome, Failed skips those whose last
    outcome is success, All skips none (Airflow's reprocess_behavior none/failed/completed,
    Dagster's "missing" and "failed and missing" partition selections). A ledger kept for
    another partitioning fingerprint is ignored.
    """
    if reprocess is Reprocess.ALL:
        return IndexSet()
    ok, bad = ledger_of(job_status, partitioning, step)
    if reprocess is Reprocess.FAILED:
        return candidates.intersection(ok)
    return candidates.intersection(ok.union(bad))


@dataclass(frozen=True)
class LedgerUpdate:
    """Final outcomes to merge into the PartitionedJob's ledger (global indices).

    A job with ``jobTemplate`` records ``succeeded``/``failed``; a job with steps records
    ``steps`` (step -> (succeeded, failed)) and the partition-level sets are recomputed as the
    roll-up over ``job_steps`` (every step of the job): succeeded when every step's last
    outcome is success, failed when some step's is failure.
    """

    partitioning: str
    succeeded: IndexSet = field(default_factory=IndexSet)
    failed: IndexSet = field(default_factory=IndexSet)
    steps: Mapping[str, tuple[IndexSet, IndexSet]] = field(default_factory=dict)
    job_steps: tuple[str, ...] = ()

    def applies_to(self, status: PartitionedJobStatus) -> bool:
        """True when ``status`` keeps its ledger for this update's partitioning."""
        return status.partitioning == self.partitioning

    def apply(self, status: PartitionedJobStatus) -> PartitionLedger:
        """Return the merged ledger: the latest outcome of a (partition, step) wins.

        A ledger kept for another partitioning is returned unchanged (see the module doc).
        """
        if not self.applies_to(status):
            return status.ledger
        if not self.job_steps:
            old_ok = IndexSet.parse(status.ledger.succeeded)
            old_bad = IndexSet.parse(status.ledger.failed)
            ok = old_ok.difference(self.failed).union(self.succeeded)
            bad = old_bad.difference(self.succeeded).union(self.failed)
            return status.ledger.model_copy(
                update={"succeeded": ok.stored(), "failed": bad.stored()}
            )
        entries = {s.name: s for s in status.ledger.steps}
        for step, (new_ok, new_bad) in self.steps.items():
            old = entries.get(step) or StepLedger(name=step)
            ok = IndexSet.parse(old.succeeded).difference(new_bad).union(new_ok)
            bad = IndexSet.parse(old.failed).difference(new_ok).union(new_bad)
            entries[step] = StepLedger(name=step, succeeded=ok.stored(), failed=bad.stored())
        roll_ok: IndexSet | None = None
        roll_bad = IndexSet()
        for step in self.job_steps:
            entry = entries.get(step)
            step_ok = IndexSet.parse(entry.succeeded) if entry else IndexSet()
            roll_ok = step_ok if roll_ok is None else roll_ok.intersection(step_ok)
            if entry is not None:
                roll_bad = roll_bad.union(IndexSet.parse(entry.failed))
        kept = [entries[s] for s in self.job_steps if s in entries]
        kept += [e for name, e in entries.items() if name not in self.job_steps]
        return PartitionLedger(
            succeeded=(roll_ok or IndexSet()).stored(), failed=roll_bad.stored(), steps=kept
        )


@dataclass(frozen=True)
class Preview:
    """What a new Backfill would run: the selection, the indices it would launch, the skips."""

    selection: Selection
    to_run: IndexSet
    skipped: IndexSet

    def launch_order(self, order: Order) -> Iterable[int]:
        """Iterate the indices to run in launch order (lazy)."""
        return iter(self.to_run) if order is Order.OLDEST_FIRST else self.to_run.iter_descending()


def preview(verdict: Verdict) -> Preview:
    """Return what the judged Backfill would run on its first pass (the CLI's ``plan``).

    Raises the verdict's :class:`~.verdict.InvalidSpec` when it is invalid.
    """
    if verdict.invalid is not None:
        raise verdict.invalid
    selection, spec = verdict.selection, verdict.backfill.spec
    assert selection is not None and spec is not None  # a valid verdict has both
    skipped: IndexSet | None = None
    for step in verdict.steps:
        # A partition is skipped when every step it runs is: the first step in order that
        # runs makes its downstream steps run too (the closure), never fewer.
        step_skips = reprocess_skips(
            selection.indices,
            spec.reprocess,
            verdict.partitioned_job.status,
            verdict.fingerprint,
            step,
        )
        skipped = step_skips if skipped is None else skipped.intersection(step_skips)
    skipped = skipped or IndexSet()
    return Preview(selection, selection.indices.difference(skipped), skipped)
