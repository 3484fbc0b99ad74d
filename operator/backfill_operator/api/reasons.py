"""Condition types, condition reasons and event reasons: every one the operator writes.

The three condition types are kstatus' "abnormal-true" trio, so Flux, Argo CD and
``kubectl wait`` read health without custom code (sigs.k8s.io/cli-utils/pkg/kstatus):
``Ready`` (True when the Backfill finished successfully), ``Reconciling`` (True while work is
in progress) and ``Stalled`` (True when it cannot make progress without a change from the
user). Reasons are CamelCase (Kubernetes API conventions, "Typical status properties"). As
JobSet and Kueue keep theirs (``jobset_types.go``, ``workload.go``), each member says when it
is used; the messages that go with them are built in :mod:`backfill_operator.planning.status`.
A new reason is added here first, then used there, then listed in ``docs/usage.md``.
"""

from __future__ import annotations

import enum


class ConditionType(enum.StrEnum):
    """Condition types set on Backfills and PartitionedJobs."""

    #: True when the Backfill succeeded (or a dry run's plan is written); on a
    #: PartitionedJob, True when its partitions parse.
    READY = "Ready"
    #: True while the operator is launching or waiting for Jobs of the Backfill.
    RECONCILING = "Reconciling"
    #: True when the object cannot make progress without a change from the user.
    STALLED = "Stalled"


class Reason(enum.StrEnum):
    """Condition reasons (``status.conditions[].reason``)."""

    # ---- Ready
    #: Ready=True: every selected partition succeeded or was skipped.
    SUCCEEDED = "Succeeded"
    #: Ready=False: partitions are running or pending.
    IN_PROGRESS = "InProgress"
    #: Ready=True on a ``dryRun`` Backfill: the plan is in ``status.plan``.
    DRY_RUN = "DryRunPlanned"
    #: Ready=False, Reconciling (while Jobs finish): ``spec.suspend`` is set.
    SUSPENDED = "Suspended"
    #: Ready=False, Stalled=True: the Backfill ended with partitions that failed for good.
    PARTITIONS_FAILED = "PartitionsFailed"
    #: Ready=False: ``maxFailedPartitions`` partitions failed; nothing more is launched.
    FAILURE_BUDGET_EXHAUSTED = "FailureBudgetExhausted"
    #: Ready=True on a PartitionedJob whose partitions parse.
    VALID = "Valid"
    # ---- Stalled (invalid input: phase Invalid, nothing is launched)
    #: The referenced PartitionedJob does not exist in the Backfill's namespace.
    PARTITIONED_JOB_NOT_FOUND = "PartitionedJobNotFound"
    #: The PartitionedJob's partitions do not parse (cron, time zone, start, end, values), or
    #: its spec cannot be read at all.
    INVALID_PARTITIONS = "InvalidPartitions"
    #: The Backfill's range or partition list selects nothing valid, or its spec cannot be read.
    INVALID_SELECTION = "InvalidSelection"
    #: The apiserver refuses a Job built from the PartitionedJob's jobTemplate.
    INVALID_JOB_TEMPLATE = "InvalidJobTemplate"
    #: The PartitionedJob's steps are not a valid graph (a cycle), or the Backfill selects
    #: steps the job does not have (or steps of a job without spec.steps).
    INVALID_STEPS = "InvalidSteps"
    #: The PartitionedJob's partition numbering changed after the Backfill started.
    PARTITIONING_CHANGED = "PartitioningChanged"
    # ---- Reconciling
    #: Reconciling=True: pending partitions are being launched.
    LAUNCHING = "Launching"
    #: Reconciling=True: nothing is left to launch; running Jobs are awaited.
    WAITING_FOR_JOBS = "WaitingForJobs"
    #: Reconciling=True: only retries are left, waiting for their backoff.
    WAITING_FOR_RETRY = "WaitingForRetry"
    #: Reconciling=True: pending partitions wait for other Backfills' Jobs of the same
    #: partitions to end (the partition lock), and nothing else can launch.
    WAITING_FOR_LOCK = "WaitingForLock"
    #: Reconciling=True: the PartitionedJob's job-wide concurrency is taken (by this or
    #: other Backfills, or higher priorities).
    WAITING_FOR_JOB_SLOT = "WaitingForJobSlot"
    #: Reconciling=True: the apiserver refused a Job create because a ResourceQuota is used
    #: up; the Backfill creates again when a Job ends (no partition fails for it).
    QUOTA_EXCEEDED = "QuotaExceeded"
    #: Reconciling=False or Stalled=False: nothing unusual.
    AS_EXPECTED = "AsExpected"


class EventReason(enum.StrEnum):
    """Reasons of the Events the operator sends (after the status write).

    About a Backfill, and about a PartitionedJob's scheduled runs (CatchUp,
    MissedPartitions, PartitionFailed).

    An Invalid Backfill's Warning event uses its Stalled condition's :class:`Reason` instead.
    """

    #: Normal: the first partition was launched (counts, span, concurrency).
    STARTED = "Started"
    #: Warning: partition attempts failed (at most one event per
    #: ``FAILURE_EVENT_INTERVAL_SECONDS``; the first failure and how many more).
    PARTITION_FAILED = "PartitionFailed"
    #: Normal: the Backfill reached phase Succeeded.
    SUCCEEDED = "Succeeded"
    #: Warning: the Backfill reached phase Failed.
    FAILED = "Failed"
    #: Normal: a ``markSucceeded`` Backfill recorded its (partition, step) outcomes as
    #: succeeded without running them (how many).
    MARKED_SUCCEEDED = "MarkedSucceeded"
    #: Warning: downstream steps were not run because an upstream step failed (how many).
    UPSTREAM_FAILED = "UpstreamFailed"
    #: Normal: the Backfill was suspended.
    SUSPENDED = "Suspended"
    #: Normal: a suspended Backfill launches again.
    RESUMED = "Resumed"
    #: Normal, on a PartitionedJob: its schedule takes on missed partitions (catch-up).
    CATCH_UP = "CatchUp"
    #: Warning, on a PartitionedJob: the catch-up policy or window left missed partitions
    #: unrun (count and span; a Backfill can run them).
    MISSED_PARTITIONS = "MissedPartitions"
