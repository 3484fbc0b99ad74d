"""The API of group ``backfill.dev``, version ``v1alpha1``, as pydantic models.

These models are the single source of truth: the CRD YAML in ``crds/`` is generated from them
(:mod:`backfill_operator.crdgen`), the operator parses objects with them, and the CLI builds
objects with them. Field names are the Kubernetes (camelCase) names; Python code uses the
snake_case attributes. Constraints that the apiserver can check (enums, minimums, one-of, CEL
rules) are declared here so that bad input is rejected at ``kubectl apply``; the rest is
checked by :mod:`backfill_operator.planning.verdict` and reported as phase ``Invalid``.

Conventions follow the Kubernetes API conventions (sig-architecture/api-conventions.md):
optional fields are omitted rather than null, status carries ``observedGeneration`` and
``conditions`` of type ``metav1.Condition``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from . import sets as set_forms

GROUP = "backfill.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: Resource (plural) names, as in API paths and ``kubectl get``.
BACKFILLS = "backfills"
PARTITIONED_JOBS = "partitionedjobs"

#: Largest explicit ``spec.partitions`` list of a Backfill (enforced by the CRD schema).
MAX_EXPLICIT_PARTITIONS = 10_000
#: Largest ``spec.partitions.values`` list of a PartitionedJob (enforced by the CRD schema).
MAX_STATIC_VALUES = 10_000
#: Largest ``spec.concurrency`` of a Backfill (enforced by the CRD schema).
MAX_CONCURRENCY = 1_000
#: Largest ``spec.concurrency`` of a PartitionedJob: the job-wide limit.
MAX_JOB_CONCURRENCY = 10_000
#: Most partitions one Job may run (``partitionsPerJob``).
MAX_PARTITIONS_PER_JOB = 100_000
#: Bounds of ``spec.priority`` (those of a Kubernetes PriorityClass value).
MAX_PRIORITY = 1_000_000_000
#: Other runs listed in ``status.waiting.holders`` at most.
MAX_LOCK_HOLDERS = 10
#: Largest ``spec.retries.limit``.
MAX_RETRIES = 100
#: Cap of one retry delay, seconds (exponential backoff stops growing there).
MAX_BACKOFF_SECONDS = 3_600
#: Largest ``spec.runs.delaySeconds`` and ``startingDeadlineSeconds`` (31 days).
MAX_SCHEDULE_SECONDS = 31 * 86_400
#: Largest ``spec.runs.catchUpWindowSeconds`` (10 years).
MAX_CATCH_UP_WINDOW_SECONDS = 3_660 * 86_400
#: Default ``spec.runs.startingDeadlineSeconds``.
DEFAULT_STARTING_DEADLINE_SECONDS = 300
#: Default ``spec.runs.priority``: above a Backfill's default 0 (airflow#72730: backfills
#: must not starve the schedule).
DEFAULT_SCHEDULE_PRIORITY = 100
#: Most steps of a PartitionedJob (``spec.steps``), and most ``dependsOn`` entries of one step.
MAX_STEPS = 50
#: Longest step name: a DNS-1123 label fragment, short enough to leave room in a Job's name.
MAX_STEP_NAME_LENGTH = 40
#: Most ``env`` entries of a Backfill.
MAX_BACKFILL_ENV = 100
#: Environment variables the operator sets on every container; a Backfill's ``env`` cannot
#: override them.
RESERVED_ENV = (
    "PARTITION_KEY",
    "PARTITION_START",
    "PARTITION_END",
    "PARTITION_INDEX",
    "PARTITION_KEY_FIRST",
    "PARTITION_KEY_LAST",
    "PARTITION_COUNT",
    "BACKFILL_NAME",
    "BACKFILL_ATTEMPT",
    "STEP_NAME",
)
#: The run name of a PartitionedJob's scheduled runs in claims, lock holders and metrics
#: (parentheses: never a Backfill's name).
SCHEDULE_RUN = "(schedule)"


#: An index set of a status at least this many characters long that equals one written before it
#: in the same status is written as a reference ``=<field>`` (:func:`_share_sets`).
SHARED_SET_MIN_LENGTH = 256
#: Final failures listed with details in ``failures`` at most (the latest; all are in
#: ``partitions.failed``).
MAX_FAILURE_DETAILS = 100
#: Partitions waiting for a retry listed with details in ``failures`` at most (the first by
#: index; all are in ``retries``).
MAX_RETRY_DETAILS = 20


def _share_sets(groups: list[tuple[str, dict[str, str]]]) -> list[dict[str, str]]:
    """Write repeated long index sets of one status once: later copies become ``=<key>``.

    ``groups`` are (prefix, {field alias: index set}) in document order; prefix "" for the
    top level (keys ``failed``), a step's name otherwise (keys ``ingest.failed``). With steps,
    the same scattered set (the partitions an early step failed on) recurs in every downstream
    step's ``upstreamFailed`` and in the roll-up: written once, the status grows with the
    distinct sets, not with the steps. Sets shorter than :data:`SHARED_SET_MIN_LENGTH` stay.
    """
    seen: dict[str, str] = {}
    out: list[dict[str, str]] = []
    for prefix, sets in groups:
        written: dict[str, str] = {}
        for alias, value in sets.items():
            key = f"{prefix}.{alias}" if prefix else alias
            if len(value) >= SHARED_SET_MIN_LENGTH and value in seen:
                written[alias] = "=" + seen[value]
            else:
                written[alias] = value
                if len(value) >= SHARED_SET_MIN_LENGTH:
                    seen.setdefault(value, key)
        out.append(written)
    return out


#: Sets a group's relative set is also relative to, by group prefix (not written in the group:
#: a step's ``retries`` partitions, which its sets do not hold either).
_Context = Mapping[str, Sequence[str]]


def _compact_sets(
    groups: list[tuple[str, dict[str, str]]], context: _Context | None = None
) -> list[dict[str, str]]:
    """Return the sets of a status as written: references, then one relative set per group.

    References as :func:`_share_sets` writes them; then, in each group, the set that gains most
    written relative to the others (:func:`.sets.relate`). A long text (someone wrote ``str()``
    of a scattered set) is first turned into its stored form (:func:`.sets.normalized`).
    """
    groups = [
        (prefix, {alias: set_forms.normalized(value) for alias, value in sets.items()})
        for prefix, sets in groups
    ]
    shared = _share_sets(groups)
    extra = context or {}
    return [
        set_forms.relate(written, resolved, extra.get(prefix, ()))
        for (prefix, resolved), written in zip(groups, shared, strict=True)
    ]


def _needs_resolving(groups: list[tuple[str, dict[str, str]]]) -> bool:
    return any(
        v.startswith(("=", set_forms.RELATIVE_PREFIX)) for _, g in groups for v in g.values()
    )


def _resolve_sets(
    groups: list[tuple[str, dict[str, str]]], context: _Context | None = None
) -> list[dict[str, str]]:
    """Undo :func:`_compact_sets`: resolve references, then relative sets.

    Each ``=<key>`` becomes the set it names ("" if unknown), then each relative set
    (``^lo-hi...``) its members, in their stored form.
    """
    known: dict[str, str] = {}
    out: list[dict[str, str]] = []
    for prefix, sets in groups:
        resolved: dict[str, str] = {}
        relative: list[str] = []
        for alias, value in sets.items():
            if value.startswith("="):
                value = known.get(value[1:], "")
            elif value.startswith(set_forms.RELATIVE_PREFIX):
                relative.append(alias)
            resolved[alias] = value
            if alias not in relative:
                known[f"{prefix}.{alias}" if prefix else alias] = value
        for alias in relative:
            others = {k: v for k, v in resolved.items() if k not in relative}
            for n, value in enumerate((context or {}).get(prefix, ())):
                others[f"\0{n}"] = value  # not a field name: never written, never a candidate
            resolved[alias] = set_forms.resolve_relative(resolved[alias], others)
            known[f"{prefix}.{alias}" if prefix else alias] = resolved[alias]
        out.append(resolved)
    return out


def _cel(rule: str, message: str, field_path: str | None = None) -> Any:
    """Return one ``x-kubernetes-validations`` entry (a CEL rule checked by the apiserver)."""
    entry: dict[str, str] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class _Model(BaseModel):
    """Base: camelCase aliases, populate by either name, unknown fields ignored on read."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def to_api(self) -> dict[str, Any]:
        """Return the object as the Kubernetes API shows it: camelCase keys, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ----------------------------------------------------------------------------- Shared


class Order(enum.StrEnum):
    """Launch order of partitions."""

    OLDEST_FIRST = "OldestFirst"
    NEWEST_FIRST = "NewestFirst"


class Retries(_Model):
    """Retry policy: a failed partition gets a new Job, after an exponential backoff."""

    limit: int = Field(
        default=0,
        ge=0,
        le=MAX_RETRIES,
        description="Extra attempts per partition after the first (0: no retries).",
    )
    backoff_seconds: int = Field(
        default=10,
        ge=0,
        le=MAX_BACKOFF_SECONDS,
        description=(
            "Delay before retry n is backoffSeconds * 2^(n-1) seconds, at most "
            f"{MAX_BACKOFF_SECONDS}."
        ),
    )


class Kueue(_Model):
    """Hand the Backfill's Jobs to Kueue (kueue.sigs.k8s.io): it admits them by quota."""

    queue_name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description=(
            "LocalQueue in the Backfill's namespace; set as the Jobs' label "
            "kueue.x-k8s.io/queue-name. The Jobs are created suspended and Kueue starts them."
        ),
    )
    priority_class: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description=(
            "WorkloadPriorityClass; set as the Jobs' label kueue.x-k8s.io/priority-class (a "
            "label value: at most 63 characters)."
        ),
    )


# --------------------------------------------------------------------------- PartitionedJob


class Schedule(_Model):
    """Time partitions: one per occurrence of a five-field cron schedule in a time zone."""

    cron: str = Field(
        min_length=1,
        max_length=128,
        description=(
            "Five-field cron expression (minute hour day-of-month month day-of-week), as "
            "croniter reads it. Partition i is the data interval [t_i, t_i+1) between two "
            "consecutive occurrences."
        ),
        examples=["0 0 * * *"],
    )
    time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone the schedule and the partition keys are in.",
    )
    start: str = Field(
        max_length=64,
        description=(
            "The first partition is the first occurrence at or after this instant: a date "
            "(2024-01-01), a wall time (2024-01-01T05:00) in timeZone, or RFC 3339 with offset."
        ),
    )
    end: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "Optional end: only partitions whose whole window ends at or before it exist. "
            "Unset: up to the last complete window before now."
        ),
    )


class PartitionsDefinition(_Model):
    """How a PartitionedJob is partitioned: exactly one of ``schedule`` and ``values``."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.schedule) != has(self.values)",
                    "exactly one of schedule and values must be set",
                )
            ]
        }
    )

    schedule: Schedule | None = Field(default=None, description="Time partitions.")
    values: list[Annotated[str, Field(min_length=1, max_length=63)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STATIC_VALUES,
        description="Static partition keys, e.g. regions; unique; run in list order.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class CatchUp(enum.StrEnum):
    """What the schedule does with partitions it missed (``spec.runs.catchUp``)."""

    #: Run every missed partition within ``catchUpWindowSeconds``.
    ALL = "All"
    #: Run only the most recent one; the others stay missing for a Backfill to take.
    LATEST = "Latest"
    #: Run none of them (they stay missing and are reported).
    NONE = "None"


class ConcurrencyPolicy(enum.StrEnum):
    """Whether a scheduled partition may start while an earlier one is unfinished (CronJob's)."""

    #: Up to ``concurrency`` scheduled Jobs at once.
    ALLOW = "Allow"
    #: One partition at a time, in order: the next one waits until the previous one
    #: succeeded or failed for good (its retries included). It is delayed, never skipped.
    FORBID = "Forbid"


class ScheduledRuns(_Model):
    """Scheduled runs: the PartitionedJob runs each partition once its window has closed."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.concurrencyPolicy) || self.concurrencyPolicy != 'Forbid' || "
                    "!has(self.concurrency) || self.concurrency == 1",
                    "concurrencyPolicy Forbid runs one partition at a time: leave concurrency "
                    "unset or 1",
                )
            ]
        }
    )

    suspend: bool = Field(
        default=False,
        description=(
            "True: start no scheduled partition (running ones finish; Backfills of this job "
            "keep running). Windows that close meanwhile are missed: catchUp decides on resume."
        ),
    )
    delay_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_SCHEDULE_SECONDS,
        description=(
            "Run a partition this many seconds after its window [start, end) closed (late data)."
        ),
    )
    starting_deadline_seconds: int = Field(
        default=DEFAULT_STARTING_DEADLINE_SECONDS,
        ge=0,
        le=MAX_SCHEDULE_SECONDS,
        description=(
            "A partition the schedule first considers more than this many seconds after it was "
            "due (window end + delay), or that was due before the PartitionedJob existed, is "
            "missed: catchUp decides whether it runs (CronJob's startingDeadlineSeconds)."
        ),
    )
    catch_up: CatchUp = Field(
        default=CatchUp.ALL,
        description=(
            "Missed partitions: All runs every one within catchUpWindowSeconds, Latest only the "
            "most recent, None none. Those not run are reported in status.runs.missed."
        ),
    )
    catch_up_window_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CATCH_UP_WINDOW_SECONDS,
        description=(
            "Missed partitions due longer ago than this are not run by the schedule (reported "
            "as missed; a Backfill can take them). Unset: no bound (Temporal's catchupWindow)."
        ),
    )
    order: Order = Field(
        default=Order.OLDEST_FIRST,
        description="Launch order when several scheduled partitions wait (catch-up).",
    )
    concurrency: int = Field(
        default=1,
        ge=1,
        le=MAX_CONCURRENCY,
        description="At most this many scheduled Jobs are active at once.",
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.ALLOW,
        description=(
            "Allow: up to concurrency partitions at once. Forbid: one at a time, in order; the "
            "next waits for the previous one's retries (never skipped)."
        ),
    )
    priority: int = Field(
        default=DEFAULT_SCHEDULE_PRIORITY,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description=(
            "Priority under the job-wide concurrency, as a Backfill's spec.priority; the "
            f"default {DEFAULT_SCHEDULE_PRIORITY} puts scheduled runs before Backfills of "
            "default priority 0."
        ),
    )
    retries: Retries = Field(default_factory=Retries, description="Retry policy.")
    kueue: Kueue | None = Field(
        default=None, description="Queue the scheduled Jobs in Kueue instead of starting them."
    )
    successful_jobs_history_limit: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Finished successful scheduled Jobs kept after their outcome is recorded.",
    )
    failed_jobs_history_limit: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Finished failed scheduled Jobs kept after their outcome is recorded.",
    )


_JOB_TEMPLATE_SCHEMA: dict[str, Any] = {
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
    "required": ["spec"],
}

_STEP_NAME = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_STEP_NAME_LENGTH,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    ),
]


class Step(_Model):
    """One step of every partition: its own Job per partition, after its upstream steps.

    A partition's step starts once every step it ``dependsOn`` succeeded for that partition
    (Airflow's ``task1 >> task2`` within one DAG run); an upstream failure (after its retries)
    marks the downstream steps of that partition ``upstreamFailed``.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.dependsOn) || !(self.name in self.dependsOn)",
                    "a step cannot depend on itself",
                )
            ]
        }
    )

    name: _STEP_NAME = Field(
        description=(
            "Unique within the job; a DNS-1123 label of at most "
            f"{MAX_STEP_NAME_LENGTH} characters (label backfill.dev/step, env STEP_NAME)."
        )
    )
    depends_on: list[_STEP_NAME] = Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description="Names of steps of the same partition that must succeed first.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    depends_on_past: bool = Field(
        default=False,
        description=(
            "True: this step of partition i waits until the same step of partition i-1 "
            "succeeded (Airflow's depends_on_past)."
        ),
    )
    job_template: dict[str, Any] = Field(
        description="A batch/v1 JobTemplateSpec for this step (as spec.jobTemplate).",
        json_schema_extra=_JOB_TEMPLATE_SCHEMA,
    )


class PartitionedJobSpec(_Model):
    """What runs, and how it is partitioned."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.runs) || has(self.partitions.schedule)",
                    "runs (scheduled runs) needs time partitions: partitions.schedule",
                    ".runs",
                ),
                _cel(
                    "has(self.jobTemplate) != has(self.steps)",
                    "exactly one of jobTemplate and steps must be set",
                ),
                _cel(
                    "!has(self.steps) || self.steps.all(s, !has(s.dependsOn) || s.dependsOn.all(d, "
                    "self.steps.exists(t, t.name == d)))",
                    "steps[].dependsOn names a step that does not exist",
                    ".steps",
                ),
            ]
        }
    )

    partitions: PartitionsDefinition = Field(description="The partitions of this job.")
    job_template: dict[str, Any] | None = Field(
        default=None,
        description=(
            "A batch/v1 JobTemplateSpec, as in CronJob: one Job per partition. Every container "
            "gets the environment variables PARTITION_KEY, PARTITION_START, PARTITION_END, "
            "PARTITION_INDEX, PARTITION_KEY_FIRST, PARTITION_KEY_LAST, PARTITION_COUNT, "
            "BACKFILL_NAME and BACKFILL_ATTEMPT (and STEP_NAME with steps). "
            "Exactly one of jobTemplate and steps."
        ),
        json_schema_extra=_JOB_TEMPLATE_SCHEMA,
    )
    steps: list[Step] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STEPS,
        description=(
            "Named steps, each with its own Job template and dependsOn: one Job per "
            "(partition, step). The graph must be acyclic. Exactly one of jobTemplate and steps."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=MAX_JOB_CONCURRENCY,
        description=(
            "Job-wide limit: at most this many active Jobs of this job at once, across all its "
            "Backfills. Free slots go to the Backfill with the highest spec.priority; equal "
            "priorities share them evenly. Unset: only each Backfill's own concurrency applies."
        ),
    )
    partitions_per_job: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARTITIONS_PER_JOB,
        description=(
            "Run up to this many consecutive partitions in one Job (Dagster's "
            "max_partitions_per_run), for jobs that process a range in one go: the Job gets "
            "PARTITION_KEY_FIRST, PARTITION_KEY_LAST, PARTITION_START (of the first), "
            "PARTITION_END (of the last) and PARTITION_COUNT. Its outcome is recorded for each "
            "of its partitions; a retry re-runs the batch. Concurrency limits count Jobs. The "
            "default of this job's Backfills (which may set their own) and of its scheduled "
            "runs' catch-up. Unset: 1."
        ),
    )
    runs: ScheduledRuns | None = Field(
        default=None,
        description=(
            "Scheduled runs (time partitions only): run each partition once its window has "
            "closed, and catch up missed ones. Unset: only Backfills run this job."
        ),
    )


# ------------------------------------------------------------------------------ Conditions


class ConditionStatus(enum.StrEnum):
    """``metav1.ConditionStatus``."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_Model):
    """A ``metav1.Condition`` (API conventions; kstatus reads Ready/Reconciling/Stalled)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: str | None = Field(default=None, description="RFC 3339, UTC.")


class StepLedger(_Model):
    """One step's last final outcomes, as compact index sets (see :class:`PartitionLedger`)."""

    name: str
    succeeded: str = ""
    failed: str = ""


class PartitionLedger(_Model):
    """Last final outcome of each partition across all Backfills, as compact index sets.

    Indices are global partition indices (``docs/design.md``); the sets use the format of an
    Indexed Job's ``status.completedIndexes`` ("1,3-5,7"), or a compressed bitmap (``~...``)
    when that is shorter (:mod:`.sets`). In the API a long step set may be written as a
    reference to an equal set before it (``=failed``, ``=ingest.succeeded``), and one set of
    each step (or of the top level) relative to the other (``^0-999999``: every index of the
    range the other set lacks); parsing resolves both (:meth:`compacted` writes them).
    """

    succeeded: str = ""
    failed: str = ""
    steps: list[StepLedger] = Field(
        default_factory=list,
        description=(
            "With spec.steps: each step's last final outcomes; then succeeded and failed above "
            "are their roll-up (succeeded: every step succeeded; failed: some step failed)."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )

    def _groups(self) -> list[tuple[str, dict[str, str]]]:
        return [("", {"succeeded": self.succeeded, "failed": self.failed})] + [
            (s.name, {"succeeded": s.succeeded, "failed": s.failed}) for s in self.steps
        ]

    def _with(self, groups: list[dict[str, str]]) -> PartitionLedger:
        top, *steps = groups
        return self.model_copy(
            update={
                **top,
                "steps": [s.model_copy(update=g) for s, g in zip(self.steps, steps, strict=True)],
            }
        )

    @model_validator(mode="after")
    def _resolved(self) -> PartitionLedger:
        groups = self._groups()
        return self._with(_resolve_sets(groups)) if _needs_resolving(groups) else self

    def compacted(self) -> PartitionLedger:
        """Return the ledger as written: references and relative sets (see the class doc)."""
        return self._with(_compact_sets(self._groups()))


class PartitionedJobStatus(_Model):
    """Status of a PartitionedJob: validity and the partition ledger used by ``reprocess``."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    partitioning: str | None = Field(
        default=None,
        description="Fingerprint of what numbers the partitions (cron, timeZone, start or values).",
    )
    description: str | None = None
    ledger: PartitionLedger = Field(default_factory=PartitionLedger)
    runs: ScheduleStatus | None = Field(
        default=None, description="The scheduled runs (unset when spec.runs is unset)."
    )

    def compacted(self) -> PartitionedJobStatus:
        """Return the status with repeated long sets written as references (for the API)."""
        return self.model_copy(
            update={
                "ledger": self.ledger.compacted(),
                "runs": self.runs.compacted() if self.runs is not None else None,
            }
        )


# -------------------------------------------------------------------------------- Backfill


class JobRef(_Model):
    """Reference to a PartitionedJob in the Backfill's namespace; immutable.

    A Backfill's Jobs are found by the PartitionedJob's label, and its partition numbers are
    that job's: pointing an existing Backfill at another job is refused (create a new one).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("self == oldSelf", "jobRef is immutable: create a new Backfill instead")
            ]
        }
    )

    name: str = Field(min_length=1, max_length=253)


class PartitionRange(_Model):
    """An inclusive range of partitions, by key or timestamp."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.to) || !(self.from.matches('^[0-9]{4}-') && "
                    "self.to.matches('^[0-9]{4}-')) || self.from <= self.to",
                    "range.from must not be after range.to",
                )
            ]
        }
    )

    from_: str = Field(
        alias="from",
        min_length=1,
        max_length=64,
        description="First partition (inclusive): a key or a timestamp.",
    )
    to: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description=(
            "Last partition (inclusive): a key or a timestamp. Unset: up to the last complete "
            "window before the Backfill was first reconciled."
        ),
    )


class Reprocess(enum.StrEnum):
    """Which partitions with a recorded outcome run again (Airflow's reprocess_behavior)."""

    MISSING = "Missing"
    FAILED = "Failed"
    ALL = "All"


class EnvVar(_Model):
    """A ``core/v1`` EnvVar.

    ``value`` may refer to earlier variables as ``$(NAME)``; ``valueFrom`` is kept as written
    (the apiserver checks it when the Job is created).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.value) && has(self.valueFrom))",
                    "set value or valueFrom, not both",
                )
            ]
        }
    )

    name: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = None
    value_from: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


def _reserved_env_rule() -> Any:
    names = ", ".join(f"'{n}'" for n in RESERVED_ENV)
    return _cel(
        f"self.all(e, !(e.name in [{names}]))",
        "env cannot override the variables the operator sets: " + ", ".join(RESERVED_ENV),
    )


class BackfillSpec(_Model):
    """One request to run a set of partitions of a PartitionedJob."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.range) != has(self.partitions)",
                    "exactly one of range and partitions must be set",
                ),
                _cel(
                    "(has(self.steps) ? has(oldSelf.steps) && self.steps == oldSelf.steps : "
                    "!has(oldSelf.steps)) && "
                    "(has(self.includeUpstream) && self.includeUpstream) == "
                    "(has(oldSelf.includeUpstream) && oldSelf.includeUpstream) && "
                    "(has(self.includeDownstream) && self.includeDownstream) == "
                    "(has(oldSelf.includeDownstream) && oldSelf.includeDownstream)",
                    "the step selection (steps, includeUpstream, includeDownstream) is immutable: "
                    "create a new Backfill instead",
                ),
            ]
        }
    )

    job_ref: JobRef = Field(description="The PartitionedJob to run (same namespace).")
    range: PartitionRange | None = Field(default=None, description="An inclusive range.")
    partitions: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EXPLICIT_PARTITIONS,
        description="An explicit list of partition keys; each must be a key of the job.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    concurrency: int = Field(
        default=10,
        ge=1,
        le=MAX_CONCURRENCY,
        description="At most this many of this Backfill's Jobs are active at once.",
    )
    partitions_per_job: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARTITIONS_PER_JOB,
        description=(
            "Run up to this many consecutive partitions in one Job (see the PartitionedJob's "
            "partitionsPerJob; concurrency counts Jobs). Unset: the PartitionedJob's, else 1."
        ),
    )
    order: Order = Field(default=Order.OLDEST_FIRST, description="Launch order.")
    reprocess: Reprocess = Field(
        default=Reprocess.MISSING,
        description=(
            "Missing: only partitions with no recorded outcome; Failed: those and partitions "
            "whose last outcome is failure; All: every selected partition."
        ),
    )
    retries: Retries = Field(default_factory=Retries, description="Retry policy.")
    max_failed_partitions: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Once this many partitions have failed for good, launch nothing more and end "
            "Failed. Unset: run everything."
        ),
    )
    priority: int = Field(
        default=0,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description=(
            "Under the PartitionedJob's job-wide concurrency, free slots go to higher "
            "priorities first; equal priorities share them evenly."
        ),
    )
    kueue: Kueue | None = Field(
        default=None, description="Queue the Jobs in Kueue instead of starting them at once."
    )
    suspend: bool = Field(default=False, description="True: launch nothing new.")
    dry_run: bool = Field(default=False, description="Compute the plan into status only.")
    successful_jobs_history_limit: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Finished successful Jobs kept after their outcome is recorded.",
    )
    failed_jobs_history_limit: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Finished failed Jobs kept after their outcome is recorded.",
    )
    steps: list[_STEP_NAME] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STEPS,
        description=(
            "Run only these steps of the PartitionedJob's spec.steps (Airflow's -t). Unset: "
            "every step."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    include_upstream: bool = Field(
        default=False, description="Also run every step the selected steps depend on."
    )
    include_downstream: bool = Field(
        default=False, description="Also run every step that depends on the selected steps."
    )
    ignore_dependencies: bool = Field(
        default=False,
        description=(
            "Run a selected step even when an upstream step outside this Backfill has no "
            "success recorded for that partition (Airflow's -i). Upstream steps this Backfill "
            "runs are still waited for."
        ),
    )
    ignore_first_depends_on_past: bool = Field(
        default=False,
        description=(
            "Steps with dependsOnPast do not wait for the partition before this Backfill's "
            "first one (Airflow's -I)."
        ),
    )
    mark_succeeded: bool = Field(
        default=False,
        description=(
            "Create no Job: record the selected (partition, step) outcomes as succeeded in the "
            "ledger, as reprocess selects them (Airflow's -m)."
        ),
    )
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=MAX_BACKFILL_ENV,
        description=(
            "Added to every container of this Backfill's Jobs, after the PARTITION_* variables "
            "(so $(PARTITION_KEY) resolves) and replacing the template's variables of the same "
            "name; the operator's own names are refused."
        ),
        json_schema_extra={"x-kubernetes-validations": [_reserved_env_rule()]},
    )
    job_labels: dict[str, str] | None = Field(
        default=None,
        description="Labels added to this Backfill's Jobs and pods (not backfill.dev/ ones).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.all(k, !k.startsWith('backfill.dev/'))",
                    "jobLabels cannot set the operator's backfill.dev/ labels",
                )
            ]
        },
    )
    job_annotations: dict[str, str] | None = Field(
        default=None,
        description="Annotations added to this Backfill's Jobs and pods (not backfill.dev/ ones).",
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.all(k, !k.startsWith('backfill.dev/'))",
                    "jobAnnotations cannot set the operator's backfill.dev/ annotations",
                )
            ]
        },
    )


class Phase(enum.StrEnum):
    """``status.phase`` of a Backfill."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INVALID = "Invalid"


#: Phases a Backfill does not leave (unless its spec changes).
TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})

#: The partition states of ``status.counts`` (besides ``total``), in display order; the
#: ``state`` label values of the ``backfill_partitions`` metric.
PARTITION_STATES = (
    "succeeded",
    "failed",
    "running",
    "queued",
    "pending",
    "skipped",
    "upstream_failed",
    "marked",
)


class PartitionCounts(_Model):
    """Partition counts; total is the sum of the other fields.

    For a Backfill of a job with steps the top-level counts roll the steps up per partition:
    running (some step running) before queued, pending (some step pending or waiting to
    retry), failed (some step failed or upstreamFailed), marked, succeeded, and skipped
    (every step skipped); ``status.steps`` has each step's own counts.
    """

    total: int = 0
    pending: int = 0
    queued: int = Field(default=0, description="Jobs created, held suspended by Kueue.")
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    upstream_failed: int = Field(
        default=0,
        description=(
            "Not run: an upstream step failed, or has no success recorded and is outside this "
            "run, or (dependsOnPast) the previous partition's step did not succeed."
        ),
    )
    marked: int = Field(
        default=0, description="Recorded as succeeded without a Job (markSucceeded)."
    )


class PartitionSets(_Model):
    """Per-state partition sets, as compact global index ranges ("1,3-5,7").

    A long set with many gaps is a compressed bitmap ("~..."), and one set may be written
    relative to the others ("^0-999999": the rest of that range); see docs/usage.md, Status.
    """

    succeeded: str = ""
    failed: str = ""
    skipped: str = ""
    running: str = ""
    queued: str = ""
    upstream_failed: str = ""
    marked: str = ""


class StepStatus(_Model):
    """One step's part of a run: its counts and partition sets (one entry per run step)."""

    name: str
    counts: PartitionCounts = Field(default_factory=PartitionCounts)
    partitions: PartitionSets = Field(default_factory=PartitionSets)


def _step_groups(
    partitions: PartitionSets, steps: list[StepStatus]
) -> list[tuple[str, dict[str, str]]]:
    return [("", partitions.model_dump(by_alias=True))] + [
        (s.name, s.partitions.model_dump(by_alias=True)) for s in steps
    ]


def _sets_with(
    partitions: PartitionSets, steps: list[StepStatus], groups: list[dict[str, str]]
) -> tuple[PartitionSets, list[StepStatus]]:
    top = PartitionSets.model_validate(groups[0])
    return top, [
        s.model_copy(update={"partitions": PartitionSets.model_validate(g)})
        for s, g in zip(steps, groups[1:], strict=True)
    ]


def _retry_context(steps: list[StepStatus], retries: list[RetryGroup]) -> dict[str, list[str]]:
    """Each group's retrying partitions: ``retries`` of the step (the top level's without steps)."""
    out: dict[str, list[str]] = {}
    for group in retries:
        prefix = group.step or "" if steps else ""
        if bool(group.step) == bool(steps):
            out.setdefault(prefix, []).append(group.partitions)
    return out


def resolved_sets(
    partitions: PartitionSets, steps: list[StepStatus], retries: list[RetryGroup]
) -> tuple[PartitionSets, list[StepStatus]]:
    """The sets with every reference and relative set resolved (see :func:`_compact_sets`).

    Returns the same objects when nothing needs resolving.
    """
    groups = _step_groups(partitions, steps)
    if not _needs_resolving(groups):
        return partitions, steps
    return _sets_with(partitions, steps, _resolve_sets(groups, _retry_context(steps, retries)))


def compacted_sets(
    partitions: PartitionSets, steps: list[StepStatus], retries: list[RetryGroup]
) -> tuple[PartitionSets, list[StepStatus]]:
    """The sets as written: references to equal earlier sets, one relative set per group.

    A group's relative set is also relative to the step's ``retries`` (``retries`` as
    written: the stored forms of their sets).
    """
    groups = _step_groups(partitions, steps)
    return _sets_with(partitions, steps, _compact_sets(groups, _retry_context(steps, retries)))


class RetryGroup(_Model):
    """Partitions (of one step) whose last attempt failed and that will be retried.

    Every such (partition, step) is in exactly one group, while its retry waits and while it
    runs: the retry is attempt ``attempts + 1`` and starts at or after ``retryAt``. Retries
    due at the same second are one group; when more than a few dozen times would be listed,
    times are rounded up (to 10 s, a minute, ...), and retries already due are one group per
    attempt, so the list stays short however many partitions wait. ``failures`` has the
    details (message, Job) of some of them.
    """

    step: str | None = Field(default=None, description="The step (jobs with spec.steps).")
    attempts: int = Field(description="Failed attempts so far; the retry is attempt attempts+1.")
    retry_at: str = Field(description="The retries start at or after this time (RFC 3339).")
    partitions: str = Field(description="The partitions, as an index set (global indices).")


class RunningPartition(_Model):
    """A partition (step) with an active Job; with ``count``, a batch of consecutive ones.

    ``index``/``key`` are the (first) partition's; a Job of ``partitionsPerJob`` runs the
    ``count`` partitions ``index`` .. ``index + count - 1`` (``lastKey`` the last one's key).
    """

    key: str
    index: int
    count: int | None = Field(
        default=None, description="Partitions the Job runs from index on (unset: 1)."
    )
    last_key: str | None = Field(default=None, description="The batch's last partition key.")
    step: str | None = Field(default=None, description="The step (jobs with spec.steps).")
    job: str
    attempt: int
    start_time: str | None = None
    queued: bool | None = Field(
        default=None, description="True while Kueue holds the Job suspended (not running yet)."
    )


class LockHolder(_Model):
    """Another Backfill whose active Jobs hold partitions this one waits for."""

    backfill: str
    count: int


class Waiting(_Model):
    """Pending partitions that wait although this Backfill has free slots, and why.

    All of them are counted in ``counts.pending``.
    """

    on_lock: int = Field(
        default=0, description="Partitions another Backfill's active Job holds (the lock)."
    )
    holders: list[LockHolder] = Field(
        default_factory=list,
        description=f"Who holds them, most first (at most {MAX_LOCK_HOLDERS}).",
    )
    for_job_slot: int = Field(
        default=0,
        description="Jobs not created now because of the PartitionedJob's job-wide limit.",
    )


class FailedPartition(_Model):
    """A partition (step) whose last attempt failed: waiting for a retry, or failed for good."""

    key: str
    index: int
    step: str | None = Field(default=None, description="The step (jobs with spec.steps).")
    job: str
    attempts: int
    message: str = ""
    retry_at: str | None = Field(default=None, description="Unset when failed for good.")


class Selection(_Model):
    """The resolved selection (pinned: ``to`` unset resolves once, when first reconciled)."""

    first: str
    last: str
    count: int
    range_from: str | None = None
    range_to: str | None = None


class Plan(_Model):
    """What a ``dryRun`` Backfill would run."""

    count: int
    first: list[str] = Field(default_factory=list)
    last: list[str] = Field(default_factory=list)
    skipped: int = 0


def _packed(retries: list[RetryGroup]) -> list[RetryGroup]:
    """``retries`` with any long text set in its stored form (:func:`.sets.normalized`)."""
    return [
        g.model_copy(update={"partitions": set_forms.normalized(g.partitions)}) for g in retries
    ]


class BackfillStatus(_Model):
    """Status of a Backfill: phase, kstatus conditions, counts and compact partition state."""

    phase: Phase | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    partitioning: str | None = None
    selection: Selection | None = None
    counts: PartitionCounts = Field(default_factory=PartitionCounts)
    progress: str | None = Field(default=None, description="succeeded/total, for kubectl get.")
    partitions: PartitionSets = Field(default_factory=PartitionSets)
    steps: list[StepStatus] = Field(
        default_factory=list,
        description="Per step (jobs with spec.steps): counts and sets; the above roll them up.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    running: list[RunningPartition] = Field(default_factory=list)
    failures: list[FailedPartition] = Field(
        default_factory=list,
        description=(
            f"Details of failed partitions (steps): the first {MAX_RETRY_DETAILS} waiting for a "
            f"retry (or running it) and the last {MAX_FAILURE_DETAILS} failed for good."
        ),
    )
    failures_omitted: int | None = Field(
        default=None,
        description=(
            "Failed partitions (steps) not listed in failures (all are in retries or "
            "partitions.failed); unset when none."
        ),
    )
    retries: list[RetryGroup] = Field(
        default_factory=list,
        description="Every partition (step) that will be retried, by retry time and attempt.",
    )
    plan: Plan | None = None
    waiting: Waiting | None = Field(default=None, description="Unset when nothing waits.")
    template_hash: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    last_failure_event_time: str | None = None

    @model_validator(mode="after")
    def _resolved(self) -> BackfillStatus:
        partitions, steps = resolved_sets(self.partitions, self.steps, self.retries)
        if steps is self.steps:
            return self
        return self.model_copy(update={"partitions": partitions, "steps": steps})

    def compacted(self) -> BackfillStatus:
        """Return the status as written: references, relative sets (:func:`_compact_sets`)."""
        retries = _packed(self.retries)
        partitions, steps = compacted_sets(self.partitions, self.steps, retries)
        return self.model_copy(
            update={"partitions": partitions, "steps": steps, "retries": retries}
        )


# --------------------------------------------------------------------------- Scheduled runs


class MissedPartitions(_Model):
    """Partitions the schedule did not run (catch-up policy or window) that still lack an outcome.

    A Backfill that runs them takes them off this count.
    """

    count: int = 0
    oldest: str | None = Field(default=None, description="Key of the oldest one.")
    newest: str | None = Field(default=None, description="Key of the newest one.")


class ScheduleStatus(_Model):
    """``status.runs`` of a PartitionedJob: what the schedule decided and how its runs go.

    Index sets use the global partition indices of ``status.partitioning``.
    """

    partitioning: str | None = Field(
        default=None, description="The numbering these index sets belong to (fingerprint)."
    )
    considered: int | None = Field(
        default=None,
        description=(
            "Highest partition index the schedule has decided on (run or missed); windows "
            "after it are decided when they come due."
        ),
    )
    scheduled: str = Field(default="", description="Partitions the schedule runs (index set).")
    missed_set: str = Field(
        default="", description="Partitions the catch-up policy or window left (index set)."
    )
    missed: MissedPartitions = Field(default_factory=MissedPartitions)
    last_scheduled: str | None = Field(
        default=None, description="Key of the newest partition the schedule took on."
    )
    last_schedule_time: str | None = Field(
        default=None, description="When the schedule last took partitions on (RFC 3339)."
    )
    next_partition: str | None = Field(
        default=None, description="Key of the next partition to come due (unset: none will)."
    )
    next_run_time: str | None = Field(
        default=None, description="When it comes due: its window end plus delaySeconds."
    )
    lag_seconds: int = Field(
        default=0,
        description=(
            "Seconds from the end of the oldest scheduled partition's window without a success "
            "to the time of this status (0: none)."
        ),
    )
    lag_since: str | None = Field(
        default=None,
        description=(
            "End of the oldest scheduled partition's window without a success (RFC 3339): the "
            "lag is now minus this. Unset: nothing outstanding."
        ),
    )
    counts: PartitionCounts = Field(default_factory=PartitionCounts)
    partitions: PartitionSets = Field(default_factory=PartitionSets)
    steps: list[StepStatus] = Field(
        default_factory=list,
        description="Per step (jobs with spec.steps), as a Backfill's status.steps.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    running: list[RunningPartition] = Field(default_factory=list)
    failures: list[FailedPartition] = Field(
        default_factory=list, description="As a Backfill's status.failures."
    )
    failures_omitted: int | None = Field(
        default=None, description="As a Backfill's status.failuresOmitted."
    )
    retries: list[RetryGroup] = Field(
        default_factory=list, description="As a Backfill's status.retries."
    )
    waiting: Waiting | None = None
    message: str = Field(default="", description="What the schedule is doing, in a sentence.")
    start_time: str | None = None
    last_failure_event_time: str | None = None

    @model_validator(mode="after")
    def _resolved(self) -> ScheduleStatus:
        partitions, steps = resolved_sets(self.partitions, self.steps, self.retries)
        if steps is self.steps:
            return self
        return self.model_copy(update={"partitions": partitions, "steps": steps})

    def compacted(self) -> ScheduleStatus:
        """Return the status as written: references, relative sets (:func:`_compact_sets`)."""
        retries = _packed(self.retries)
        partitions, steps = compacted_sets(self.partitions, self.steps, retries)
        return self.model_copy(
            update={
                "partitions": partitions,
                "steps": steps,
                "retries": retries,
                "scheduled": set_forms.normalized(self.scheduled),
                "missed_set": set_forms.normalized(self.missed_set),
            }
        )


PartitionedJobStatus.model_rebuild()
