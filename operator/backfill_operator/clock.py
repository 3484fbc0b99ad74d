"""The only module that reads the system clock; everything else receives ``now``."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def monotonic() -> float:
    """Return a monotonic clock reading, seconds (for durations only)."""
    return time.monotonic()
