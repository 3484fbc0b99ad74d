"""Progress arithmetic and how it reads: durations, ages, rate, ETA and the progress bar.

:func:`progress_of` turns a Backfill's status counts and timestamps into a :class:`Progress`
(done, fraction, partitions per minute, time to completion); :func:`format_duration`,
:func:`format_span`, :func:`format_age` and :func:`format_rate` word the numbers,
:func:`progress_bar` draws them.
Pure: ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from ...api.model import TERMINAL_PHASES, BackfillStatus
from ...planning.times import parse_time
from .style import BAR, GLYPHS, STYLES

#: The terminal phases as ``status.phase`` spells them (for raw objects and shown phases).
TERMINAL_PHASE_NAMES = frozenset(str(p) for p in TERMINAL_PHASES)

# ---------------------------------------------------------------------------- durations


def format_duration(seconds: float) -> str:
    """Return a short human duration: ``"12s"``, ``"4m 05s"``, ``"2h 03m"``, ``"3d 04h"``.

    Negative durations count as 0; fractions are rounded to whole seconds.
    """
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_span(seconds: float) -> str:
    """Return a configured length of time exactly: ``"0s"``, ``"10m"``, ``"1h 30m"``, ``"7d"``.

    Days, hours, minutes and seconds, zero units left out (86401 is ``"1d 1s"``). Unlike
    :func:`format_duration` (a measured time, rounded to two units) nothing is rounded off.
    Negative values count as 0; fractions are rounded to whole seconds.
    """
    total = max(0, round(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"


def format_age(seconds: float) -> str:
    """Return an age as kubectl prints it: ``"45s"``, ``"12m"``, ``"5h"``, ``"3d"``.

    Seconds below 2 minutes, minutes below 2 hours, hours below 2 days, then days.
    """
    total = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= 2 * size:
            return f"{total // size}{unit}"
    return f"{total}s"


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Progress:
    """Counts of a Backfill's selection by state, with throughput and time to completion.

    ``queued`` are partitions whose Job Kueue holds suspended (not in ``running``).
    ``upstream_failed`` (not run: a step they depend on failed) and ``marked`` (recorded as
    succeeded without a Job) are final, like ``skipped``. ``rate_per_minute`` is finished
    partitions (succeeded + failed; skipped, upstream-failed and marked ones cost nothing) per
    minute since ``status.startTime``; ``eta_seconds`` is the time the remaining (pending +
    queued + running) partitions take at that rate: 0 when nothing remains, None when
    unknown.
    """

    total: int
    succeeded: int
    failed: int
    running: int
    queued: int
    pending: int
    skipped: int
    elapsed_seconds: float | None
    rate_per_minute: float | None
    eta_seconds: float | None
    upstream_failed: int = 0
    marked: int = 0

    @property
    def done(self) -> int:
        """Partitions with a final state: succeeded, failed, skipped, upstream failed, marked."""
        return self.succeeded + self.failed + self.skipped + self.upstream_failed + self.marked

    def count(self, state: str) -> int:
        """The number of partitions in ``state`` (a name of ``PARTITION_STATES``)."""
        return int(getattr(self, state))

    @property
    def fraction(self) -> float:
        """``done / total`` in ``[0, 1]`` (1 for an empty selection)."""
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


def progress_of(status: BackfillStatus, now: datetime) -> Progress:
    """Return the :class:`Progress` of a Backfill's ``status`` at ``now`` (aware UTC)."""
    c = status.counts
    start = parse_time(status.start_time)
    end = parse_time(status.completion_time) or now
    elapsed = (end - start).total_seconds() if start is not None else None
    finished = c.succeeded + c.failed
    rate = None
    if elapsed is not None and elapsed > 0 and finished > 0:
        rate = finished / elapsed * 60.0
    remaining = c.pending + c.queued + c.running
    eta: float | None
    if status.phase in TERMINAL_PHASES or remaining == 0:
        eta = 0.0
    elif rate:
        eta = remaining / rate * 60.0
    else:
        eta = None
    return Progress(
        total=c.total,
        succeeded=c.succeeded,
        failed=c.failed,
        running=c.running,
        queued=c.queued,
        pending=c.pending,
        skipped=c.skipped,
        elapsed_seconds=elapsed,
        rate_per_minute=rate,
        eta_seconds=eta,
        upstream_failed=c.upstream_failed,
        marked=c.marked,
    )


def format_rate(rate_per_minute: float | None) -> str:
    """Return ``"12.5 partitions/min"`` (or per hour when slow); ``"-"`` when unknown."""
    if rate_per_minute is None:
        return "-"
    if rate_per_minute < 1:
        return f"{rate_per_minute * 60:.1f} partitions/h"
    return f"{rate_per_minute:.1f} partitions/min"


# ---------------------------------------------------------------------------------- bar


def _split(total_cells: int, counts: Sequence[int], total: int) -> list[int]:
    """Divide ``total_cells`` among ``counts`` (summing to at most ``total``).

    Cumulative rounding: segments add up exactly, and a non-zero count gets at least one
    cell while cells are left.
    """
    out: list[int] = []
    cum = 0
    drawn = 0
    for count in counts:
        cum += count
        edge = round(total_cells * cum / total) if total else 0
        if count and edge == drawn and drawn < total_cells:
            edge = drawn + 1
        edge = min(edge, total_cells)
        out.append(max(0, edge - drawn))
        drawn = max(drawn, edge)
    return out


def progress_bar(progress: Progress, width: int, *, color: bool) -> Text:
    """Return a bar ``width`` cells wide: done, failed, upstream failed, running, queued, rest.

    Done is succeeded, skipped and marked. In colour: ``━`` segments green, red, orange,
    yellow, magenta and grey. Without colour: ``[###Xu>>qq....]`` (the brackets are part of
    ``width``). Without queued or upstream-failed partitions the bar is the same as before
    queues and steps existed.
    """
    p = progress
    inner = max(4, width - (0 if color else 2))
    segments = ("succeeded", "failed", "upstream_failed", "running", "queued")
    counts = [p.succeeded + p.skipped + p.marked, p.failed, p.upstream_failed, p.running, p.queued]
    parts = _split(inner, counts, p.total)
    rest = inner - sum(parts)
    text = Text()
    if not color:
        text.append("[")
    for state, cells in zip(segments, parts, strict=True):
        text.append((BAR if color else GLYPHS[state]) * cells, style=STYLES[state])
    text.append((BAR if color else GLYPHS["pending"]) * rest, style=STYLES["pending"])
    if not color:
        text.append("]")
    return text
