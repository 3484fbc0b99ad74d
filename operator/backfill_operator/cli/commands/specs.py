"""From flags to a Backfill spec: ``--partitions a,b,c`` and the spec ``create``/``plan`` build.

Both raise :class:`~..errors.CliError` (exit 2) before any cluster is contacted; messages name
the flags the user typed, not the API's fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ...api.model import BackfillSpec, Order, Reprocess
from ...planning.verdict import validation_summary
from .. import render
from ..errors import CliError


def parse_keys(text: str) -> list[str]:
    """Split ``--partitions a,b,c`` into keys (spaces trimmed); CliError (exit 2) when empty."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise CliError("--partitions is empty: list partition keys, e.g. --partitions a,b,c")
    return keys


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
) -> BackfillSpec:
    """Return the Backfill spec the flags describe; CliError (exit 2) when it is invalid.

    Exactly one of ``from_`` and ``partitions`` must be given; ``to`` only with ``from_``.
    """
    if (from_ is None) == (partitions is None):
        raise CliError("give either --from (with an optional --to) or --partitions")
    if to is not None and from_ is None:
        raise CliError("--to needs --from")
    raw: dict[str, Any] = {
        "jobRef": {"name": job},
        "concurrency": concurrency,
        "order": str(order),
        "reprocess": str(reprocess),
        "retries": {"limit": retries, "backoffSeconds": retry_backoff_seconds},
        "dryRun": dry_run,
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
