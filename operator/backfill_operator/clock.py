"""The only module that reads the system clock; everything else receives ``now`` or a Clock.

The reconciler takes a :class:`Clock` (the CronJob controller injects its ``clock`` the same
way), so its unit tests drive time by hand; the CLI uses the module functions.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of time: wall time (aware UTC) and a monotonic reading (seconds)."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Return a monotonic clock reading, seconds (for durations only)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Return ``time.monotonic()``, seconds."""
        return time.monotonic()


SYSTEM = SystemClock()


def now() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return SYSTEM.now()


def monotonic() -> float:
    """Return a monotonic clock reading, seconds (for durations only)."""
    return SYSTEM.monotonic()
