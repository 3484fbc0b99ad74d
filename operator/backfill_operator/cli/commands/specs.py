"""From flags to a Backfill spec: ``--partitions a,b,c`` and the spec ``create``/``plan`` build.

``--queue`` and ``--queue-priority-class`` become label values on every Job (Kueue's
``kueue.x-k8s.io/queue-name`` and ``kueue.x-k8s.io/priority-class``), so they are checked as
object names of at most 63 characters here, with a message naming the flag.

All raise :class:`~..errors.CliError` (exit 2) before any cluster is contacted; messages name
the flags the user typed, not the API's fields.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from ...api.model import MAX_PRIORITY, BackfillSpec, Order, Reprocess
from ...planning.verdict import validation_summary
from .. import render
from ..errors import CliError

#: A Kueue LocalQueue name: a DNS-1123 label (as ``spec.kueue.queueName`` requires).
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
#: A WorkloadPriorityClass name: a DNS-1123 subdomain.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: Longest label value, hence longest queue or priority class name a Job can carry.
_MAX_LABEL_VALUE = 63


def kueue_name_problem(flag: str, value: str) -> str | None:
    """Return why ``value`` cannot name what ``flag`` names, or None when it can.

    ``flag`` is ``--queue`` (a LocalQueue: a DNS-1123 label) or ``--queue-priority-class`` (a
    WorkloadPriorityClass: a DNS-1123 subdomain); both at most 63 characters.
    """
    what = "LocalQueue" if flag == "--queue" else "WorkloadPriorityClass"
    if not value:
        return f"{flag} is empty: name a {what}"
    if len(value) > _MAX_LABEL_VALUE:
        return (
            f'{flag}: "{value}" is {len(value)} characters long; a {what} name set as a Job '
            f"label has at most {_MAX_LABEL_VALUE}"
        )
    pattern, chars = (_LABEL, '"-"') if flag == "--queue" else (_SUBDOMAIN, '"-" and "."')
    if not pattern.fullmatch(value):
        return (
            f'{flag}: "{value}" is not a valid {what} name: use lower-case letters, digits and '
            f"{chars}, starting and ending with a letter or digit"
        )
    return None


def parse_keys(text: str) -> list[str]:
    """Split ``--partitions a,b,c`` into keys (spaces trimmed); CliError (exit 2) when empty."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise CliError("--partitions is empty: list partition keys, e.g. --partitions a,b,c")
    return keys


def check_queueing(*, priority: int, queue: str | None, queue_priority_class: str | None) -> None:
    """Raise CliError (exit 2) for ``--priority``, ``--queue``, ``--queue-priority-class``.

    ``--queue-priority-class`` needs ``--queue``; the priority must be within its bounds;
    the names must be object names a Job label can carry (:func:`kueue_name_problem`).
    """
    if queue_priority_class is not None and queue is None:
        raise CliError("--queue-priority-class needs --queue (the Kueue LocalQueue the Jobs go to)")
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise CliError(
            f"--priority {priority} is out of range: give -{MAX_PRIORITY} to {MAX_PRIORITY}"
        )
    for flag, value in (("--queue", queue), ("--queue-priority-class", queue_priority_class)):
        problem = None if value is None else kueue_name_problem(flag, value)
        if problem is not None:
            raise CliError(problem)


def build_spec(
    *,
    job: str,
    from_: str | None,
    to: str | None,
    partitions: list[str] | None,
    concurrency: int,
    order: Order,
    reprocess: Reprocess,
    retries: int,
    retry_backoff_seconds: int,
    max_failed: int | None,
    dry_run: bool,
    priority: int = 0,
    queue: str | None = None,
    queue_priority_class: str | None = None,
) -> BackfillSpec:
    """Return the Backfill spec the flags describe; CliError (exit 2) when it is invalid.

    Exactly one of ``from_`` and ``partitions`` must be given; ``to`` only with ``from_``;
    ``queue_priority_class`` only with ``queue`` (together: ``spec.kueue``).
    """
    if (from_ is None) == (partitions is None):
        raise CliError("give either --from (with an optional --to) or --partitions")
    if to is not None and from_ is None:
        raise CliError("--to needs --from")
    check_queueing(priority=priority, queue=queue, queue_priority_class=queue_priority_class)
    raw: dict[str, Any] = {
        "jobRef": {"name": job},
        "concurrency": concurrency,
        "order": str(order),
        "reprocess": str(reprocess),
        "retries": {"limit": retries, "backoffSeconds": retry_backoff_seconds},
        "priority": priority,
        "dryRun": dry_run,
    }
    if queue is not None:
        raw["kueue"] = {
            "queueName": queue,
            **({"priorityClass": queue_priority_class} if queue_priority_class else {}),
        }
    if from_ is not None:
        raw["range"] = {"from": from_, **({"to": to} if to is not None else {})}
    else:
        raw["partitions"] = partitions
    if max_failed is not None:
        raw["maxFailedPartitions"] = max_failed
    try:
        return BackfillSpec.model_validate(raw)
    except ValidationError as exc:
        message = validation_summary(exc)
        raise CliError(f"invalid backfill: {render.flag_message(message)}") from exc
