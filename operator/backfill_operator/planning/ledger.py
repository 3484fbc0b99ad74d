"""The PartitionedJob's partition ledger: the last final outcome of every partition.

Every Backfill of a PartitionedJob merges the final outcomes it records into the job's
``status.ledger`` (:class:`LedgerUpdate`), and ``reprocess`` reads it to skip partitions that
already have an outcome (:func:`reprocess_skips`); :func:`preview` is what a new Backfill
would run, the answer ``kubectl backfill plan``/``create`` show before creating it.

Writers (``docs/design.md``, "Status writers"): Backfill passes merge outcomes into ``ledger``;
the PartitionedJob pass owns ``partitioning`` and clears the ledger when it changes. A merge
applies only to a ledger kept for the same fingerprint as the outcomes: outcomes of an older
numbering are dropped rather than written into a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..api.model import Order, PartitionedJobStatus, PartitionLedger, Reprocess
from .ranges import IndexSet
from .space import Selection
from .verdict import Verdict


def reprocess_skips(
    candidates: IndexSet,
    reprocess: Reprocess,
    job_status: PartitionedJobStatus,
    partitioning: str | None,
) -> IndexSet:
    """Return the candidates that ``reprocess`` skips, by the PartitionedJob's ledger.

    Missing skips partitions with any recorded final outcome, Failed skips those whose last
    outcome is success, All skips none (Airflow's reprocess_behavior none/failed/completed,
    Dagster's "missing" and "failed and missing" partition selections). A ledger kept for
    another partitioning fingerprint is ignored.
    """
    if reprocess is Reprocess.ALL or job_status.partitioning != partitioning:
        return IndexSet()
    ok = IndexSet.parse(job_status.ledger.succeeded)
    if reprocess is Reprocess.FAILED:
        return candidates.intersection(ok)
    return candidates.intersection(ok.union(IndexSet.parse(job_status.ledger.failed)))


@dataclass(frozen=True)
class LedgerUpdate:
    """Final outcomes to merge into the PartitionedJob's ledger (global indices)."""

    partitioning: str
    succeeded: IndexSet
    failed: IndexSet

    def applies_to(self, status: PartitionedJobStatus) -> bool:
        """True when ``status`` keeps its ledger for this update's partitioning."""
        return status.partitioning == self.partitioning

    def apply(self, status: PartitionedJobStatus) -> PartitionLedger:
        """Return the merged ledger: the latest outcome of a partition wins.

        A ledger kept for another partitioning is returned unchanged (see the module doc).
        """
        if not self.applies_to(status):
            return status.ledger
        old_ok = IndexSet.parse(status.ledger.succeeded)
        old_bad = IndexSet.parse(status.ledger.failed)
        ok = old_ok.difference(self.failed).union(self.succeeded)
        bad = old_bad.difference(self.succeeded).union(self.failed)
        return PartitionLedger(succeeded=str(ok), failed=str(bad))


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
    skipped = reprocess_skips(
        selection.indices, spec.reprocess, verdict.partitioned_job.status, verdict.fingerprint
    )
    return Preview(selection, selection.indices.difference(skipped), skipped)
