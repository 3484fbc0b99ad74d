"""Names: of partition attempts' Jobs, of new Backfills, and the keys of objects in maps.

A partition attempt's Job name is a pure function of (Backfill UID, global partition index,
attempt), so the name itself is the lock against duplicates: a second create of the same attempt
fails with AlreadyExists and the existing Job is adopted when its controller owner reference is
the Backfill (the CronJob controller's scheme, ``pkg/controller/cronjob/utils.go``).

Backfill names (:func:`default_name`, :func:`derived_name`, :func:`name_problem`) follow
``metadata.name`` of a custom resource: a DNS-1123 subdomain of at most 253 characters (the
Jobs' labels carry a hashed short form of a longer name: ``api.labels.label_value``). The
names this module makes itself stay within 63 characters, so they read the same everywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

#: Longest Job name, and longest name made here: an RFC 1123 label.
MAX_NAME_LENGTH = 63
#: Longest Backfill name a user may give (a DNS-1123 subdomain, as for any object name).
MAX_OBJECT_NAME_LENGTH = 253
_HASH_LENGTH = 10
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_NOT_SUBDOMAIN = re.compile(r"[^a-z0-9.-]+")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def object_key(namespace: str, name: str) -> str:
    """Return the one spelling of an object's key, ``namespace/name`` (used for every lock/map)."""
    return f"{namespace}/{name}"


def slug(text: str, limit: int, *, dots: bool = False) -> str:
    """Return ``text`` lower-cased, runs of other characters as '-', cut at ``limit``, trimmed.

    Without ``dots`` the result is an RFC 1123 label fragment (``a-z``, ``0-9``, ``-``); with
    ``dots`` a subdomain fragment (``.`` kept). Leading and trailing separators are removed, so
    the result may be shorter than ``limit`` or empty.
    """
    pattern, edges = (_NOT_SUBDOMAIN, "-.") if dots else (_NOT_LABEL, "-")
    cleaned = pattern.sub("-", text.lower()).strip(edges)
    return cleaned[: max(0, limit)].strip(edges)


def job_name(
    backfill: str, backfill_uid: str, index: int, key: str, attempt: int, step: str = ""
) -> str:
    """Return the Job name of one partition (step) attempt.

    Shape: ``<backfill>-<key slug>-<10 hex>``, at most 63 characters, DNS-1123 label, where the
    hex is the start of sha256 over ``uid/index/attempt``; the backfill and key parts are
    truncated (backfill to 30, key to 20 characters) and only make the name readable. With a
    ``step``: ``<backfill>-<key slug>-<step>-<10 hex>`` (backfill to 20, key to 16, step to 14
    characters), the hash over ``uid/index/step/attempt``.
    """
    if step:
        digest = hashlib.sha256(f"{backfill_uid}/{index}/{step}/{attempt}".encode()).hexdigest()
        parts = [slug(backfill, 20), slug(key, 16), slug(step, 14), digest[:_HASH_LENGTH]]
    else:
        digest = hashlib.sha256(f"{backfill_uid}/{index}/{attempt}".encode()).hexdigest()
        parts = [slug(backfill, 30), slug(key, 20), digest[:_HASH_LENGTH]]
    name = "-".join(p for p in parts if p)
    if not name[0].isalpha():
        name = "p" + name
    return name[:MAX_NAME_LENGTH]


def template_hash(job_template: dict[str, Any]) -> str:
    """Return 10 hex characters identifying a jobTemplate (canonical JSON, sha256)."""
    canonical = json.dumps(job_template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_LENGTH]


def derived_name(base: str, suffix: str) -> str:
    """Return ``<base>-<suffix>`` cut to a valid Backfill name (at most 63 characters).

    ``base`` is slugged (lower case, DNS characters) and truncated so the suffix survives
    whole; ``suffix`` must already be DNS-safe (e.g. ``"retry-3f2a"``).
    """
    head = slug(base, MAX_NAME_LENGTH - len(suffix) - 1, dots=True)
    return f"{head}-{suffix}" if head else f"backfill-{suffix}"


def default_name(job: str, now: datetime, token: str) -> str:
    """Return the default Backfill name ``<job>-<YYYYMMDD>-<token>``.

    ``now`` gives the date (UTC), ``token`` (4 hex characters from the caller's random source)
    keeps two Backfills created the same day apart. Always a DNS-1123 name of at most 63
    characters, valid as a label value.
    """
    return derived_name(job, f"{now:%Y%m%d}-{token}")


def name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a Backfill, or None when it can.

    A Backfill name must be a DNS-1123 subdomain of at most 253 characters (Kubernetes'
    rule for object names).
    """
    if not name:
        return "a Backfill name cannot be empty"
    if len(name) > MAX_OBJECT_NAME_LENGTH:
        return f'"{name}" is {len(name)} characters long; a Backfill name has at most 253'
    if not _SUBDOMAIN.fullmatch(name):
        return (
            f'"{name}" is not a valid Backfill name: use lower-case letters, digits, "-" and '
            '".", starting and ending with a letter or digit'
        )
    return None
