"""Deterministic names and the labels and annotations the operator puts on Jobs.

A partition attempt's Job name is a pure function of (Backfill UID, global partition index,
attempt), so the name itself is the lock against duplicates: a second create of the same attempt
fails with AlreadyExists and the existing Job is adopted when its controller owner reference is
the Backfill (the CronJob controller's scheme, ``pkg/controller/cronjob/utils.go``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .model import GROUP

LABEL_BACKFILL = f"{GROUP}/backfill"
LABEL_BACKFILL_UID = f"{GROUP}/backfill-uid"
LABEL_PARTITIONED_JOB = f"{GROUP}/partitioned-job"
LABEL_PARTITION_INDEX = f"{GROUP}/partition-index"
LABEL_ATTEMPT = f"{GROUP}/attempt"
ANNOTATION_PARTITION_KEY = f"{GROUP}/partition-key"
ANNOTATION_TEMPLATE_HASH = f"{GROUP}/template-hash"

#: Kubernetes limit for a Job name that is also used as a label value (RFC 1123 label).
MAX_NAME_LENGTH = 63
_HASH_LENGTH = 10
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def object_key(namespace: str, name: str) -> str:
    """Return the one spelling of an object's key, ``namespace/name`` (used for every lock/map)."""
    return f"{namespace}/{name}"


def _slug(text: str, limit: int) -> str:
    """Lower-case ``text``, map runs of non-DNS characters to '-', trim to ``limit``."""
    slug = _NOT_DNS.sub("-", text.lower()).strip("-")
    return slug[:limit].strip("-")


def job_name(backfill: str, backfill_uid: str, index: int, key: str, attempt: int) -> str:
    """Return the Job name of one partition attempt.

    Shape: ``<backfill>-<key slug>-<10 hex>``, at most 63 characters, DNS-1123 label, where the
    hex is the start of sha256 over ``uid/index/attempt``; the backfill and key parts are
    truncated (backfill to 30, key to 20 characters) and only make the name readable.
    """
    digest = hashlib.sha256(f"{backfill_uid}/{index}/{attempt}".encode()).hexdigest()
    parts = [_slug(backfill, 30), _slug(key, 20), digest[:_HASH_LENGTH]]
    name = "-".join(p for p in parts if p)
    if not name[0].isalpha():
        name = "p" + name
    return name[:MAX_NAME_LENGTH]


def template_hash(job_template: dict[str, Any]) -> str:
    """Return 10 hex characters identifying a jobTemplate (canonical JSON, sha256)."""
    canonical = json.dumps(job_template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_LENGTH]
