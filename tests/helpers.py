"""Helpers shared by the tests (import as ``from helpers import wait_for``).

``tests/`` is on ``sys.path`` because pytest inserts the directory of the root conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """wait_for's deadline passed; the message holds the last value or exception seen."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.2,
    message: str | Callable[[], str] = "condition",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns a truthy value.

    Returns that value. ``timeout`` and ``interval`` are in seconds; the predicate is always
    called at least once, and once more at the deadline. Exceptions of the types in
    ``ignore`` count as a falsy result (e.g. a 404 while an object appears); others propagate.
    Raises WaitTimeout (an AssertionError, so pytest shows it as a failure) naming
    ``message`` (a string, or a callable evaluated at the deadline to describe the state).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {text}; last: {last!r}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def partitioned_job_body(
    namespace: str,
    name: str,
    *,
    values: list[str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A PartitionedJob: daily from 2024-01-01 (UTC), or static ``values``; KWOK pods of 1 s.

    ``annotations`` go on the pod template (``kwok.backfill.dev/...``: outcome, duration,
    failing partitions; see hack/controlplane/kwok-stages.yaml).
    """
    partitions = (
        {"values": values}
        if values is not None
        else {"schedule": {"cron": "0 0 * * *", "start": "2024-01-01"}}
    )
    pod_annotations = {"kwok.backfill.dev/duration": "1s", **(annotations or {})}
    container = {"name": "main", "image": "example.com/etl:1", "args": ["$(PARTITION_KEY)"]}
    return {
        "apiVersion": "backfill.dev/v1alpha1",
        "kind": "PartitionedJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "partitions": partitions,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": pod_annotations},
                        "spec": {"restartPolicy": "Never", "containers": [container]},
                    },
                }
            },
        },
    }
