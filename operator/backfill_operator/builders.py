"""Pure builders of the Kubernetes manifests the operator sends (plain dicts, no client types).

Shapes follow batch/v1 Job and core/v1 Event as the Kubernetes API reference defines them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import naming
from .model import API_VERSION

#: Environment variables set on every container of every Job (Kubernetes expands $(VAR) in
#: command and args from these, so no template engine is needed).
ENV_NAMES = (
    "PARTITION_KEY",
    "PARTITION_START",
    "PARTITION_END",
    "PARTITION_INDEX",
    "BACKFILL_NAME",
    "BACKFILL_ATTEMPT",
)


@dataclass(frozen=True)
class Owner:
    """The Backfill that owns the Jobs: namespace, name and UID."""

    namespace: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """Return the controller ownerReference (garbage collection deletes Jobs with it)."""
        return {
            "apiVersion": API_VERSION,
            "kind": "Backfill",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class LaunchRequest:
    """One Job to create: a partition attempt (attempt is 1-based)."""

    index: int
    key: str
    start: datetime | None
    end: datetime | None
    attempt: int


def rfc3339(moment: datetime | None) -> str:
    """Return ``moment`` as RFC 3339 in UTC with a ``Z`` suffix, or "" for None."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_env(container: dict[str, Any], env: list[dict[str, str]]) -> dict[str, Any]:
    names = {e["name"] for e in env}
    kept = [e for e in container.get("env") or [] if e.get("name") not in names]
    # Ours first, so the user's own variables may refer to them with $(PARTITION_KEY).
    return {**container, "env": env + kept}


def build_job(
    *,
    owner: Owner,
    partitioned_job: str,
    job_template: dict[str, Any],
    request: LaunchRequest,
    template_hash: str,
) -> dict[str, Any]:
    """Return the batch/v1 Job manifest of one partition attempt.

    ``job_template`` is the PartitionedJob's ``spec.jobTemplate`` (a JobTemplateSpec). The
    Job gets the template's labels and annotations plus the operator's (``naming`` module),
    a controller ownerReference to the Backfill, and the ``ENV_NAMES`` variables on every
    container and init container. ``spec.ttlSecondsAfterFinished`` is dropped: the operator
    deletes finished Jobs itself once their outcome is recorded, and a Job that vanishes
    earlier would lose its outcome.
    """
    template = copy.deepcopy(job_template)
    meta = template.get("metadata") or {}
    spec: dict[str, Any] = template.get("spec") or {}
    spec.pop("ttlSecondsAfterFinished", None)
    labels = {
        **(meta.get("labels") or {}),
        naming.LABEL_BACKFILL: owner.name,
        naming.LABEL_BACKFILL_UID: owner.uid,
        naming.LABEL_PARTITIONED_JOB: partitioned_job,
        naming.LABEL_PARTITION_INDEX: str(request.index),
        naming.LABEL_ATTEMPT: str(request.attempt),
    }
    annotations = {
        **(meta.get("annotations") or {}),
        naming.ANNOTATION_PARTITION_KEY: request.key,
        naming.ANNOTATION_TEMPLATE_HASH: template_hash,
    }
    env = [
        {"name": "PARTITION_KEY", "value": request.key},
        {"name": "PARTITION_START", "value": rfc3339(request.start)},
        {"name": "PARTITION_END", "value": rfc3339(request.end)},
        {"name": "PARTITION_INDEX", "value": str(request.index)},
        {"name": "BACKFILL_NAME", "value": owner.name},
        {"name": "BACKFILL_ATTEMPT", "value": str(request.attempt)},
    ]
    pod_template: dict[str, Any] = spec.setdefault("template", {})
    pod_meta: dict[str, Any] = pod_template.setdefault("metadata", {})
    pod_meta["labels"] = {
        **(pod_meta.get("labels") or {}),
        naming.LABEL_BACKFILL: owner.name,
        naming.LABEL_PARTITION_INDEX: str(request.index),
        naming.LABEL_ATTEMPT: str(request.attempt),
    }
    pod_meta["annotations"] = {
        **(pod_meta.get("annotations") or {}),
        naming.ANNOTATION_PARTITION_KEY: request.key,
        naming.LABEL_ATTEMPT: str(request.attempt),
    }
    pod_spec: dict[str, Any] = pod_template.setdefault("spec", {})
    for field in ("containers", "initContainers"):
        if pod_spec.get(field):
            pod_spec[field] = [_with_env(c, env) for c in pod_spec[field]]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": naming.job_name(
                owner.name, owner.uid, request.index, request.key, request.attempt
            ),
            "namespace": owner.namespace,
            "labels": labels,
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
