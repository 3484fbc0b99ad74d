"""From flags to a Backfill spec: ``--partitions a,b,c`` and the spec ``create``/``plan`` build.

``--queue`` and ``--queue-priority-class`` become label values on every Job (Kueue's
``kueue.x-k8s.io/queue-name`` and ``kueue.x-k8s.io/priority-class``), so they are checked as
object names of at most 63 characters here, with a message naming the flag.

The flags of steps and parameters (issue 12) are read here too: ``--steps a,b``
(:func:`parse_steps`), ``--env K=V`` (:func:`parse_env`: the operator's own variables are
refused), ``--label K=V`` and ``--annotation K=V`` (:func:`parse_pairs`: Kubernetes key and
value syntax, nothing under ``backfill.dev/``), so that a bad value stops the command before
anything is created, with a message naming the flag, rather than the apiserver refusing the
Backfill (or, worse, its Jobs).

All raise :class:`~..errors.CliError` (exit 2) before any cluster is contacted; messages name
the flags the user typed, not the API's fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from ...api.model import (
    GROUP,
    MAX_BACKFILL_ENV,
    MAX_PRIORITY,
    MAX_STEP_NAME_LENGTH,
    MAX_STEPS,
    RESERVED_ENV,
    BackfillSpec,
    Order,
    Reprocess,
)
from ...planning.verdict import validation_summary
from .. import render
from ..errors import CliError

#: A DNS-1123 label: a Kueue LocalQueue name (as ``spec.kueue.queueName`` requires) and a
#: step name (``spec.steps`` of both kinds).
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
#: A WorkloadPriorityClass name: a DNS-1123 subdomain.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: Longest label value, hence longest queue or priority class name a Job can carry.
_MAX_LABEL_VALUE = 63
#: An environment variable name, as a Backfill's ``env`` (and Kubernetes) accepts it.
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
#: The name part of a label or annotation key, and a non-empty label value.
_QUALIFIED = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
#: The prefix of the operator's own labels and annotations (``--label``/``--annotation`` keys
#: cannot start with it).
_RESERVED_PREFIX = f"{GROUP}/"
#: Longest prefix of a label or annotation key (a DNS subdomain).
_MAX_KEY_PREFIX = 253


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


def _split_values(values: Sequence[str]) -> list[str]:
    """Each value split at commas, spaces trimmed, empty parts dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_steps(values: Sequence[str] | None) -> list[str] | None:
    """Read ``--steps a,b`` (repeatable): the step names, in order, each once; None: not given.

    Raises CliError (exit 2) when empty, for a name that cannot be a step's (a DNS-1123
    label of at most ``MAX_STEP_NAME_LENGTH`` characters), or for more than ``MAX_STEPS``.
    Whether the PartitionedJob has these steps is for the preview to say.
    """
    if values is None:
        return None
    names = list(dict.fromkeys(_split_values(values)))
    if not names:
        raise CliError("--steps is empty: name steps of the PartitionedJob, e.g. --steps a,b")
    for name in names:
        if len(name) > MAX_STEP_NAME_LENGTH or not _LABEL.fullmatch(name):
            raise CliError(
                f'--steps: "{name}" is not a step name: lower-case letters, digits and "-", '
                f"starting and ending with a letter or digit, at most {MAX_STEP_NAME_LENGTH} "
                "characters"
            )
    if len(names) > MAX_STEPS:
        raise CliError(f"--steps names {len(names)} steps; a job has at most {MAX_STEPS}")
    return names


def _pair(flag: str, text: str) -> tuple[str, str]:
    """Split ``K=V`` at the first ``=``; CliError when there is none or K is empty."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise CliError(f'{flag} "{text}" is not KEY=VALUE (e.g. {flag} team=data)')
    return key, value


def parse_env(values: Sequence[str] | None) -> list[dict[str, str]] | None:
    """Read ``--env K=V`` (repeatable) into ``spec.env`` entries; None when not given.

    ``V`` may be empty and may contain ``=`` and ``$(PARTITION_KEY)``-style references.
    Raises CliError (exit 2) for a malformed pair, an invalid name, a name given twice, more
    than ``MAX_BACKFILL_ENV`` variables, or a name the operator sets itself
    (``RESERVED_ENV``).
    """
    if values is None:
        return None
    env: dict[str, str] = {}
    for text in values:
        name, value = _pair("--env", text)
        if name in RESERVED_ENV:
            raise CliError(
                f"--env {name}: the operator sets {name} on every container; it cannot be "
                f"overridden (reserved: {', '.join(RESERVED_ENV)})"
            )
        if not _ENV_NAME.fullmatch(name):
            raise CliError(
                f'--env: "{name}" is not a valid variable name: letters, digits, "_", "-" and '
                '".", not starting with a digit'
            )
        if name in env:
            raise CliError(f"--env {name} is given twice: give each variable once")
        env[name] = value
    if len(env) > MAX_BACKFILL_ENV:
        raise CliError(f"--env: {len(env)} variables, more than the {MAX_BACKFILL_ENV} allowed")
    return [{"name": name, "value": value} for name, value in env.items()]


def key_problem(flag: str, key: str) -> str | None:
    """Return why ``key`` cannot be a label or annotation key given with ``flag``, or None.

    A key is ``[prefix/]name``: the prefix a DNS subdomain (lower case) of at most 253
    characters, the name at most 63 characters of letters, digits, ``-``, ``_`` and ``.``,
    starting and ending with a letter or digit. Keys under ``backfill.dev/`` are the
    operator's own.
    """
    if key.startswith(_RESERVED_PREFIX) or key == GROUP:
        return (
            f"{flag} {key}: keys under {_RESERVED_PREFIX} are the operator's own; pick another "
            "prefix"
        )
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > _MAX_KEY_PREFIX or not _SUBDOMAIN.fullmatch(prefix)):
        return f'{flag} {key}: the prefix "{prefix}" is not a DNS subdomain (e.g. example.com)'
    if len(name) > _MAX_LABEL_VALUE or not _QUALIFIED.fullmatch(name):
        return (
            f'{flag} {key}: "{name}" is not a valid key name: at most {_MAX_LABEL_VALUE} '
            'letters, digits, "-", "_" and ".", starting and ending with a letter or digit'
        )
    return None


def parse_pairs(values: Sequence[str] | None, flag: str) -> dict[str, str] | None:
    """Read ``--label K=V`` or ``--annotation K=V`` (repeatable, ``flag``); None: not given.

    Raises CliError (exit 2) for a malformed pair, an invalid key (:func:`key_problem`), a
    key given twice, or (``--label``) a value that is not a label value (at most 63
    letters, digits, ``-``, ``_`` and ``.``, starting and ending with a letter or digit, or
    empty).
    """
    if values is None:
        return None
    pairs: dict[str, str] = {}
    for text in values:
        key, value = _pair(flag, text)
        problem = key_problem(flag, key)
        if problem is not None:
            raise CliError(problem)
        if key in pairs:
            raise CliError(f"{flag} {key} is given twice: give each key once")
        if (
            flag == "--label"
            and value
            and (len(value) > _MAX_LABEL_VALUE or not _QUALIFIED.fullmatch(value))
        ):
            raise CliError(
                f'--label {key}: "{value}" is not a valid label value: at most '
                f'{_MAX_LABEL_VALUE} letters, digits, "-", "_" and ".", starting and ending '
                "with a letter or digit"
            )
        pairs[key] = value
    return pairs


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
    steps: list[str] | None = None,
    include_upstream: bool = False,
    include_downstream: bool = False,
    ignore_dependencies: bool = False,
    ignore_first_depends_on_past: bool = False,
    mark_succeeded: bool = False,
    env: list[dict[str, str]] | None = None,
    job_labels: dict[str, str] | None = None,
    job_annotations: dict[str, str] | None = None,
    partitions_per_job: int | None = None,
) -> BackfillSpec:
    """Return the Backfill spec the flags describe; CliError (exit 2) when it is invalid.

    Exactly one of ``from_`` and ``partitions`` must be given; ``to`` only with ``from_``;
    ``queue_priority_class`` only with ``queue`` (together: ``spec.kueue``);
    ``include_upstream`` and ``include_downstream`` only with ``steps`` (they widen that
    selection). ``steps``, ``env``, ``job_labels`` and ``job_annotations`` come from
    :func:`parse_steps`, :func:`parse_env` and :func:`parse_pairs`.
    """
    if (from_ is None) == (partitions is None):
        raise CliError("give either --from (with an optional --to) or --partitions")
    if to is not None and from_ is None:
        raise CliError("--to needs --from")
    for flag, given in (
        ("--include-upstream", include_upstream),
        ("--include-downstream", include_downstream),
    ):
        if given and steps is None:
            raise CliError(
                f"{flag} needs --steps (it adds to the steps --steps selects; without --steps "
                "every step runs)"
            )
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
    if partitions_per_job is not None:
        raw["partitionsPerJob"] = partitions_per_job
    if steps is not None:
        raw["steps"] = steps
    flags = {
        "includeUpstream": include_upstream,
        "includeDownstream": include_downstream,
        "ignoreDependencies": ignore_dependencies,
        "ignoreFirstDependsOnPast": ignore_first_depends_on_past,
        "markSucceeded": mark_succeeded,
    }
    raw.update({field: True for field, given in flags.items() if given})
    for field, value in (
        ("env", env),
        ("jobLabels", job_labels),
        ("jobAnnotations", job_annotations),
    ):
        if value:
            raw[field] = value
    try:
        return BackfillSpec.model_validate(raw)
    except ValidationError as exc:
        message = validation_summary(exc)
        raise CliError(f"invalid backfill: {render.flag_message(message)}") from exc
