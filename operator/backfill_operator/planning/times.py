"""Timestamps as the Kubernetes API writes them: the one formatter and the one parser.

``metav1.Time`` is RFC 3339 in UTC with second precision and a ``Z`` suffix
(``2024-01-01T00:00:00Z``; Kubernetes API conventions, "Times"). Every timestamp the operator
writes (status, Events, ``PARTITION_START``) goes through :func:`rfc3339`; every one it reads
through :func:`parse_time`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime | None) -> str:
    """Return an aware ``moment`` as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, or "" for None.

    Fractions of a second are dropped (not rounded), as ``metav1.Time`` does.
    """
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp (``...Z`` or with an offset) into an aware datetime.

    Returns None for None, "" and text that does not parse: a timestamp the operator did not
    write (an edited status) reads as unset rather than failing a reconcile pass.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
