"""Pure builders of the Kubernetes manifests the operator sends (plain dicts, no client types).

Pure (no I/O) but here, beside the client that sends what they build: planning decides
*what* runs, these say *how it looks* on the wire.

Shapes follow batch/v1 Job and core/v1 Event as the Kubernetes API reference defines them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..api import labels as names
from ..api.model import API_VERSION, Kueue
from ..planning.state import LaunchRequest
from ..planning.times import rfc3339


@dataclass(frozen=True)
class Owner:
    """The object that owns the Jobs: namespace, name, UID and kind.

    ``kind`` is "Backfill", or "PartitionedJob" for the Jobs of its scheduled runs.
    """

    namespace: str
    name: str
    uid: str
    kind: str = "Backfill"

    @property
    def scheduled(self) -> bool:
        """True for a PartitionedJob's scheduled runs."""
        return self.kind == "PartitionedJob"

    def reference(self) -> dict[str, Any]:
        """Return the controller ownerReference (garbage collection deletes Jobs with it)."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def _with_env(
    container: dict[str, Any], env: list[dict[str, str]], extra: list[dict[str, Any]]
) -> dict[str, Any]:
    names = {e["name"] for e in env} | {e["name"] for e in extra}
    kept = [e for e in container.get("env") or [] if e.get("name") not in names]
    # Ours first, so the Backfill's and the template's variables may refer to them with
    # $(PARTITION_KEY); the Backfill's replace the template's of the same name.
    return {**container, "env": env + extra + kept}


def build_job(
    *,
    owner: Owner,
    partitioned_job: str,
    job_template: dict[str, Any],
    request: LaunchRequest,
    template_hash: str,
    partitioning: str = "",
    kueue: Kueue | None = None,
    env: list[dict[str, Any]] | None = None,
    extra_labels: dict[str, str] | None = None,
    extra_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return the batch/v1 Job manifest of one partition (step) attempt.

    ``job_template`` is the PartitionedJob's ``spec.jobTemplate``, or for a step
    (``request.step``) that step's ``jobTemplate`` (a JobTemplateSpec); a step's Job and pod
    are labelled ``backfill.dev/step`` and get STEP_NAME. ``env`` (the Backfill's
    ``spec.env``, EnvVar dicts) follows the operator's variables on every container and
    replaces the template's of the same name; ``extra_labels``/``extra_annotations`` (the
    Backfill's ``jobLabels``/``jobAnnotations``) go on the Job and its pods, under the
    operator's own (which win). The
    Job is named ``request.job_name`` and gets the template's labels and annotations plus the
    operator's (:mod:`backfill_operator.api.labels`; names as label values, shortened with a
    hash beyond 63 characters), a controller ownerReference to the
    owner, and the variables PARTITION_KEY, PARTITION_START, PARTITION_END (RFC 3339, ""
    for static values), PARTITION_INDEX, PARTITION_KEY_FIRST, PARTITION_KEY_LAST,
    PARTITION_COUNT, BACKFILL_NAME and BACKFILL_ATTEMPT on every container and init container.
    A Job of several partitions (``request.count`` > 1, ``partitionsPerJob``) has the first
    one's key, index and start, the last one's end, and the labels/annotations
    ``backfill.dev/partition-count`` and ``backfill.dev/partition-key-last`` (on its pods
    too). A scheduled run's Job (owner kind PartitionedJob) is labelled
    ``backfill.dev/scheduled: "true"`` instead of with a Backfill, and its BACKFILL_NAME is "".
    ``spec.ttlSecondsAfterFinished`` is dropped: the operator
    deletes finished Jobs itself once their outcome is recorded, and a Job that vanishes
    earlier would lose its outcome.

    ``partitioning`` (the partition space's fingerprint) is labelled so that other runs know
    which numbering the index label belongs to. ``kueue`` adds Kueue's queue-name and
    priority-class labels; a Job that names a LocalQueue (from ``kueue`` or the template's own
    labels) is created with ``spec.suspend: true``, so Kueue starts it when it admits it
    (with or without Kueue's webhook); the operator never changes ``suspend`` afterwards.
    """
    template = copy.deepcopy(job_template)
    meta = template.get("metadata") or {}
    spec: dict[str, Any] = template.get("spec") or {}
    spec.pop("ttlSecondsAfterFinished", None)
    run_labels = (
        {names.LABEL_SCHEDULED: "true"}
        if owner.scheduled
        else {
            names.LABEL_BACKFILL: names.label_value(owner.name),
            names.LABEL_BACKFILL_UID: owner.uid,
        }
    )
    step_labels = {names.LABEL_STEP: request.step} if request.step else {}
    batch_labels = {names.LABEL_PARTITION_COUNT: str(request.count)} if request.count > 1 else {}
    last_key = request.last_key or request.key
    job_labels = {
        **(meta.get("labels") or {}),
        **(extra_labels or {}),
        **run_labels,
        **step_labels,
        names.LABEL_PARTITIONED_JOB: names.label_value(partitioned_job),
        names.LABEL_PARTITION_INDEX: str(request.index),
        names.LABEL_ATTEMPT: str(request.attempt),
        **batch_labels,
    }
    if partitioning:
        job_labels[names.LABEL_PARTITIONING] = partitioning
    if kueue is not None:
        job_labels[names.KUEUE_QUEUE_NAME] = kueue.queue_name
        if kueue.priority_class:
            job_labels[names.KUEUE_PRIORITY_CLASS] = kueue.priority_class
    if job_labels.get(names.KUEUE_QUEUE_NAME):
        spec["suspend"] = True
    batch_annotations = {names.ANNOTATION_PARTITION_KEY_LAST: last_key} if request.count > 1 else {}
    annotations = {
        **(meta.get("annotations") or {}),
        **(extra_annotations or {}),
        names.ANNOTATION_PARTITION_KEY: request.key,
        names.ANNOTATION_TEMPLATE_HASH: template_hash,
        **batch_annotations,
    }
    env_vars = [
        {"name": "PARTITION_KEY", "value": request.key},
        {"name": "PARTITION_START", "value": rfc3339(request.start)},
        {"name": "PARTITION_END", "value": rfc3339(request.end)},
        {"name": "PARTITION_INDEX", "value": str(request.index)},
        {"name": "PARTITION_KEY_FIRST", "value": request.key},
        {"name": "PARTITION_KEY_LAST", "value": last_key},
        {"name": "PARTITION_COUNT", "value": str(request.count)},
        {"name": "BACKFILL_NAME", "value": "" if owner.scheduled else owner.name},
        {"name": "BACKFILL_ATTEMPT", "value": str(request.attempt)},
    ]
    if request.step:
        env_vars.append({"name": "STEP_NAME", "value": request.step})
    pod_template: dict[str, Any] = spec.setdefault("template", {})
    pod_meta: dict[str, Any] = pod_template.setdefault("metadata", {})
    pod_meta["labels"] = {
        **(pod_meta.get("labels") or {}),
        **(extra_labels or {}),
        **({names.LABEL_SCHEDULED: "true"} if owner.scheduled else {}),
        **step_labels,
        names.LABEL_PARTITIONED_JOB: names.label_value(partitioned_job),
        **({} if owner.scheduled else {names.LABEL_BACKFILL: names.label_value(owner.name)}),
        names.LABEL_PARTITION_INDEX: str(request.index),
        names.LABEL_ATTEMPT: str(request.attempt),
        **batch_labels,
    }
    pod_meta["annotations"] = {
        **(pod_meta.get("annotations") or {}),
        **(extra_annotations or {}),
        names.ANNOTATION_PARTITION_KEY: request.key,
        **batch_annotations,
    }
    pod_spec: dict[str, Any] = pod_template.setdefault("spec", {})
    for field in ("containers", "initContainers"):
        if pod_spec.get(field):
            pod_spec[field] = [_with_env(c, env_vars, env or []) for c in pod_spec[field]]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request.job_name,
            "namespace": owner.namespace,
            "labels": job_labels,
            "annotations": annotations,
            "ownerReferences": [owner.reference()],
        },
        "spec": spec,
    }


def build_event(
    *,
    involved: dict[str, Any],
    event_type: str,
    reason: str,
    message: str,
    now: datetime,
    component: str = "backfill-operator",
) -> dict[str, Any]:
    """Return a core/v1 Event about ``involved`` (an object reference: apiVersion, kind, ...).

    ``event_type`` is "Normal" or "Warning"; ``reason`` is CamelCase; the message is cut at
    1,024 characters as the Kubernetes event recorder does.
    """
    stamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{involved['name']}.",
            "namespace": involved["namespace"],
        },
        "involvedObject": involved,
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
