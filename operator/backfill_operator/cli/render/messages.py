"""One-line messages worded from data: API field names as flags, and a missing pod log."""

from __future__ import annotations


def flag_message(message: str) -> str:
    """Return a planning message with the API's field names replaced by the CLI's flags.

    ``range.from`` becomes ``--from`` and ``range.to`` ``--to``: the user typed flags.
    """
    return message.replace("range.from", "--from").replace("range.to", "--to")


def log_unavailable(*, key: str, pod: str, node: str | None, detail: str) -> str:
    """Return the one-line message shown when a partition's log cannot be had.

    ``detail`` is what the apiserver said, quoted as such.
    """
    where = f" on node {node}" if node else ""
    return f"no log available for partition {key}: pod {pod}{where}: the apiserver said: {detail}"
