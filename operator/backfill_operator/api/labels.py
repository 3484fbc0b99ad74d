"""Labels and annotations on the Jobs (and pod templates) the operator creates.

Their names are API: dashboards, ``kubectl`` selectors, the CLI and the operator itself (it
lists a PartitionedJob's Jobs by :data:`LABEL_PARTITIONED_JOB`, a Backfill's by
:data:`LABEL_BACKFILL_UID`) rely on them. ``docs/design.md``, "Labels and annotations", lists
where each appears.

A label value holds at most 63 characters, an object name up to 253: labels that carry a
name carry :func:`label_value` of it (the name itself when it fits).
"""

from __future__ import annotations

import hashlib

from .model import GROUP

#: Longest label value (Kubernetes: a name segment of at most 63 characters).
MAX_LABEL_VALUE_LENGTH = 63
#: Hex characters of the hash that ends a shortened label value.
LABEL_HASH_LENGTH = 10


def label_value(name: str) -> str:
    """Return the label value that stands for an object name (a DNS-1123 subdomain).

    A name of at most 63 characters is its own value. A longer one becomes its first 52
    characters (trailing "-" and "." trimmed), "-" and the first 10 hex characters of the
    sha256 of the whole name: 63 characters at most, a valid label value, and two names that
    share their first 52 characters still get different values (a collision needs a sha256
    prefix collision). Selectors use the same function, so ``label=value`` finds the object.
    """
    if len(name) <= MAX_LABEL_VALUE_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:LABEL_HASH_LENGTH]
    head = name[: MAX_LABEL_VALUE_LENGTH - LABEL_HASH_LENGTH - 1].rstrip("-.")
    return f"{head}-{digest}"


#: Label: the Backfill's name, as :func:`label_value` (on Jobs and pods).
LABEL_BACKFILL = f"{GROUP}/backfill"
#: Label: the Backfill's UID (the selector the operator lists a Backfill's Jobs by).
LABEL_BACKFILL_UID = f"{GROUP}/backfill-uid"
#: Label on the Jobs (and pods) of a PartitionedJob's scheduled runs: "true" (they have no
#: Backfill labels; their controller owner is the PartitionedJob).
LABEL_SCHEDULED = f"{GROUP}/scheduled"
#: Label: the PartitionedJob's name, as :func:`label_value` (the selector the operator lists
#: and watches Jobs and pods by).
LABEL_PARTITIONED_JOB = f"{GROUP}/partitioned-job"
#: Label: the global partition index, decimal.
LABEL_PARTITION_INDEX = f"{GROUP}/partition-index"
#: Label: how many consecutive partitions from the index the Job runs, decimal (only on Jobs
#: of more than one partition: ``partitionsPerJob``; absent means 1).
LABEL_PARTITION_COUNT = f"{GROUP}/partition-count"
#: Annotation: the key of the last partition of a Job of more than one partition.
ANNOTATION_PARTITION_KEY_LAST = f"{GROUP}/partition-key-last"
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
