"""One-line messages worded from data: API field names as flags, and a missing pod log."""

from __future__ import annotations

#: API field paths and the flags that set them, as messages name them.
_FLAGS = (
    ("range.from", "--from"),
    ("range.to", "--to"),
    ("kueue.queueName", "--queue"),
    ("kueue.priorityClass", "--queue-priority-class"),
    ("spec.steps", "--steps"),
)


def flag_message(message: str) -> str:
    """Return a planning message with the API's field names replaced by the CLI's flags.

    ``range.from`` becomes ``--from``, ``range.to`` ``--to``, ``kueue.queueName`` ``--queue``,
    ``kueue.priorityClass`` ``--queue-priority-class`` and ``spec.steps`` (a Backfill's step
    selection) ``--steps``: the user typed flags.
    """
    for field, flag in _FLAGS:
        message = message.replace(field, flag)
    return message


def log_unavailable(*, key: str, pod: str, node: str | None, detail: str) -> str:
    """Return the one-line message shown when a partition's log cannot be had.

    ``detail`` is what the apiserver said, quoted as such.
    """
    where = f" on node {node}" if node else ""
    return f"no log available for partition {key}: pod {pod}{where}: the apiserver said: {detail}"
