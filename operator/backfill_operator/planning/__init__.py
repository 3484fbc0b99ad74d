"""Pure planning: from (spec, observed objects, now) to what to do and what status to write.

No kopf, no Kubernetes client, no Prometheus client, no clock: ``now`` and the one I/O
callback (the template check) are arguments. Modules, bottom up:

* :mod:`.times`, :mod:`.ranges` (compact index sets), :mod:`.cronwalk` (cron occurrences),
  :mod:`.space` and :mod:`.schedule` (partition spaces, selections), :mod:`.naming`,
  :mod:`.observed` (raw Jobs to records), :mod:`.conditions` (the update rule);
* :mod:`.selection`: spaces and selections from specs; :mod:`.verdict`: the one judgment of a
  Backfill with its PartitionedJob;
* :mod:`.ledger`: the shared partition ledger, ``reprocess`` and the preview;
* :mod:`.state`: the partition state of a pass; :mod:`.decide`: launches, deletions, requeue;
* :mod:`.status`: the whole status and the Events; :mod:`.partitioned_job`: a job's status.
"""
