"""Labels and annotations on the Jobs (and pod templates) the operator creates.

Their names are API: dashboards, ``kubectl`` selectors, the CLI and the operator itself (it
lists a Backfill's Jobs by :data:`LABEL_BACKFILL_UID`) rely on them. ``docs/design.md``,
"Labels and annotations", lists where each appears.
"""

from __future__ import annotations

from .model import GROUP

#: Label: the Backfill's name (on Jobs and pods; a watch selector of the operator).
LABEL_BACKFILL = f"{GROUP}/backfill"
#: Label: the Backfill's UID (the selector the operator lists a Backfill's Jobs by).
LABEL_BACKFILL_UID = f"{GROUP}/backfill-uid"
#: Label on the Jobs (and pods) of a PartitionedJob's scheduled runs: "true" (they have no
#: Backfill labels; their controller owner is the PartitionedJob).
LABEL_SCHEDULED = f"{GROUP}/scheduled"
#: Label: the PartitionedJob's name.
LABEL_PARTITIONED_JOB = f"{GROUP}/partitioned-job"
#: Label: the global partition index, decimal.
LABEL_PARTITION_INDEX = f"{GROUP}/partition-index"
#: Label: the step of the partition the Job runs (jobs with ``spec.steps`` only).
LABEL_STEP = f"{GROUP}/step"
#: Label: the attempt number, 1-based, decimal.
LABEL_ATTEMPT = f"{GROUP}/attempt"
#: Annotation: the partition key.
ANNOTATION_PARTITION_KEY = f"{GROUP}/partition-key"
#: Annotation: the hash of the jobTemplate the Job was built from.
ANNOTATION_TEMPLATE_HASH = f"{GROUP}/template-hash"
#: Label a retry Backfill made by ``kubectl backfill retry-failed`` carries: the original.
LABEL_RETRY_OF = f"{GROUP}/retry-of"
#: Label: the fingerprint of the partition numbering the index label belongs to.
LABEL_PARTITIONING = f"{GROUP}/partitioning"
#: Kueue's label naming the LocalQueue of a Job (set from ``spec.kueue.queueName``).
KUEUE_QUEUE_NAME = "kueue.x-k8s.io/queue-name"
#: Kueue's label naming the WorkloadPriorityClass of a Job.
KUEUE_PRIORITY_CLASS = "kueue.x-k8s.io/priority-class"
