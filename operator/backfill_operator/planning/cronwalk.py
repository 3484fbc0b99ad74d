"""croniter's occurrence sequence, computed by calendar arithmetic where that is provably equal.

croniter's ``get_next`` costs about 20-30 µs per occurrence, so a million minutely partitions
would take half a minute. :class:`CronWalk` yields the same sequence in chunks, one per local
calendar day, without calling croniter except where its time-zone handling matters.

The sequence is croniter's: ``t_0 = get_next()`` from ``start - 1s`` and
``t_(i+1) = get_next()`` from ``t_i``. croniter finds the next *wall time* matching the fields,
then attaches the zone (shifting a wall time in a DST gap forward, choosing between the two
readings of an ambiguous one and, after an offset change, possibly returning an earlier
alternative). So the arithmetic result equals croniter's whenever the candidate wall time
exists, is unambiguous and has the same UTC offset as the previous occurrence: then
croniter attaches that offset and returns the candidate unchanged. The walk

* takes a whole day arithmetically when the day has one constant offset (the offsets at local
  midnight, at noon and at the next midnight, read with both ``fold`` values, are all equal;
  the assumption is that a zone never changes offset twice within one day and back again)
  and that offset is the previous occurrence's;
* on other days checks each candidate (exists, unambiguous, same offset as the previous
  occurrence) and asks croniter for the next occurrence only when a check fails, which
  happens around an offset change, once or twice per transition;
* for expressions the arithmetic does not model (``#`` and ``W``: anything but lists of
  integers, ``*`` and ``L`` in day-of-month) asks croniter for every occurrence.

The matching of days follows croniter: a day matches when its month is allowed and, if both
day-of-month and day-of-week are restricted (neither expands to ``*``), either matches
(croniter's ``day_or=True``, the classic cron rule), otherwise both match; day-of-week 0 and
7 are Sunday; ``L`` in day-of-month is the month's last day; a day-of-month past the end of
the month matches nothing.

Pure: croniter, zoneinfo and the standard library; no clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

__all__ = ["DAY_SECONDS", "EPOCH_ORDINAL", "Chunk", "CronSyntaxError", "CronWalk"]

DAY_SECONDS = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH_NAIVE = datetime(1970, 1, 1)
_UTC = UTC
#: The walk stops before this year (date arithmetic must stay inside datetime's range).
_LAST_YEAR = 9998
_ZERO: tuple[int] = (0,)

#: A run of occurrences: ``(base, offsets, lo)`` stands for epoch seconds
#: ``base + offsets[k]`` for ``k`` in ``range(lo, len(offsets))``, ascending and non-empty.
Chunk = tuple[int, Sequence[int], int]


class CronSyntaxError(ValueError):
    """croniter rejected the expression; the message is croniter's reason."""


def _ints(field: list[Any], low: int, high: int) -> list[int] | None:
    """Return an expanded croniter field as allowed integers, or None for ``*``-only."""
    if field == ["*"]:
        return None
    return sorted({int(v) for v in field if low <= int(v) <= high})


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


class CronWalk:
    """One five-field cron expression in one time zone, enumerated like croniter.

    ``expr`` must already have exactly five whitespace-separated fields. Raises
    :class:`CronSyntaxError` with croniter's reason when croniter rejects it.
    """

    def __init__(self, expr: str, tz: ZoneInfo) -> None:
        self.expr = expr
        self.tz = tz
        try:
            it = croniter(expr, datetime(1970, 1, 1, tzinfo=_UTC))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise CronSyntaxError(str(exc) or type(exc).__name__) from exc
        self._it = it
        expanded: list[list[Any]] = [list(f) for f in it.expanded]
        self.expanded = expanded
        minutes, hours, doms, months, dows = expanded
        #: True when the arithmetic models the expression (see the module docstring).
        self.fast = (
            len(expanded) == 5
            and not it.nth_weekday_of_month
            and not it.nearest_weekday
            and all(isinstance(v, int) or v == "*" for f in (minutes, hours, months) for v in f)
            and all(isinstance(v, int) or v == "*" for v in dows)
            and all(isinstance(v, int) or v in ("*", "l") for v in doms)
        )
        #: True when the schedule fires at most once per local day (single minute and hour).
        self.once_a_day = (
            len(minutes) == 1
            and len(hours) == 1
            and isinstance(minutes[0], int)
            and isinstance(hours[0], int)
        )
        self._month_cache: dict[tuple[int, int], tuple[int, ...]] = {}
        self._midnight_cache: dict[int, tuple[int, int]] = {}
        if not self.fast:
            self.day_seconds: tuple[int, ...] = ()
            return
        mins = _ints(minutes, 0, 59)
        hrs = _ints(hours, 0, 23)
        self.day_seconds = tuple(
            h * 3600 + m * 60
            for h in (range(24) if hrs is None else hrs)
            for m in (range(60) if mins is None else mins)
        )
        self._months = _ints(months, 1, 12)
        self._dom_star = doms == ["*"]
        self._dow_star = dows == ["*"]
        self._dom_last = "l" in doms
        self._doms = frozenset(int(v) for v in doms if isinstance(v, int))
        self._dows = frozenset(int(v) % 7 for v in dows if isinstance(v, int))

    # ------------------------------------------------------------------------- croniter

    def next_after(self, epoch: int) -> int | None:
        """Return croniter's next occurrence after ``epoch`` (seconds), or None if none.

        None when croniter finds none within its search horizon (50 years) or the date
        leaves datetime's range.
        """
        try:
            value = self._it.get_next(float, start_time=datetime.fromtimestamp(epoch, self.tz))
        except (CroniterBadDateError, OverflowError, ValueError):
            return None
        return round(float(value))

    def offset_at(self, epoch: int) -> int:
        """Return the zone's UTC offset in seconds at instant ``epoch``."""
        off = datetime.fromtimestamp(epoch, self.tz).utcoffset()
        assert off is not None
        return int(off.total_seconds())

    # -------------------------------------------------------------------------- calendar

    def _month_ordinals(self, year: int, month: int) -> tuple[int, ...]:
        """Return the ordinals of the matching days of one month, ascending."""
        key = (year, month)
        cached = self._month_cache.get(key)
        if cached is not None:
            return cached
        days: tuple[int, ...] = ()
        if self._months is None or month in self._months:
            first = date(year, month, 1).toordinal()
            ndays = _days_in_month(year, month)
            # isoweekday() % 7: Sunday 0 .. Saturday 6, croniter's numbering.
            wd1 = date(year, month, 1).isoweekday() % 7
            picked: list[int] = []
            for d in range(1, ndays + 1):
                dom_ok = d in self._doms or (self._dom_last and d == ndays)
                dow_ok = (wd1 + d - 1) % 7 in self._dows
                if not self._dom_star and not self._dow_star:
                    ok = dom_ok or dow_ok
                else:
                    ok = (self._dom_star or dom_ok) and (self._dow_star or dow_ok)
                if ok:
                    picked.append(first + d - 1)
            days = tuple(picked)
        self._month_cache[key] = days
        return days

    def _next_matching(self, ordinal: int) -> int | None:
        """Return the first matching day at or after ``ordinal``, or None before year 9999."""
        d = date.fromordinal(ordinal)
        year, month = d.year, d.month
        while year <= _LAST_YEAR:
            days = self._month_ordinals(year, month)
            i = bisect_left(days, ordinal)
            if i < len(days):
                return days[i]
            month += 1
            if month == 13:
                month, year = 1, year + 1
        return None

    def _midnight_offsets(self, ordinal: int) -> tuple[int, int]:
        """Return the offsets (seconds) of local midnight starting ``ordinal``, fold 0 and 1."""
        cached = self._midnight_cache.get(ordinal)
        if cached is None:
            a = datetime.fromordinal(ordinal).replace(tzinfo=self.tz)
            o0, o1 = a.utcoffset(), a.replace(fold=1).utcoffset()
            assert o0 is not None and o1 is not None
            cached = (int(o0.total_seconds()), int(o1.total_seconds()))
            self._midnight_cache[ordinal] = cached
        return cached

    def _constant_offset(self, ordinal: int) -> int | None:
        """Return the day's UTC offset in seconds if it is constant all day, else None.

        Constant: the offsets at local midnight and at the next local midnight, read with
        ``fold`` 0 and 1, and at noon, are all equal. That proves every wall time of the day
        exists exactly once with that offset unless the zone changes offset twice between
        two of these probes and back (no zone in the tz database does within a day).
        """
        a0, a1 = self._midnight_offsets(ordinal)
        b0, b1 = self._midnight_offsets(ordinal + 1)
        if not a0 == a1 == b0 == b1:
            return None
        noon = (datetime.fromordinal(ordinal) + timedelta(hours=12)).replace(tzinfo=self.tz)
        off = noon.utcoffset()
        assert off is not None
        return a0 if int(off.total_seconds()) == a0 else None

    def _hour_offsets(self, ordinal: int) -> list[int | None]:
        """Return, per local hour of day ``ordinal``, its offset if constant over the hour.

        An hour is constant when its start and the next hour's start, each read with
        ``fold`` 0 and 1, have one offset: then each wall time in it exists once (assuming no
        zone changes offset and back within an hour). None marks the hours around a change.
        """
        midnight = datetime.fromordinal(ordinal)
        probes: list[tuple[int, int]] = []
        for h in range(25):
            a = (midnight + timedelta(hours=h)).replace(tzinfo=self.tz)
            o0, o1 = a.utcoffset(), a.replace(fold=1).utcoffset()
            assert o0 is not None and o1 is not None
            probes.append((int(o0.total_seconds()), int(o1.total_seconds())))
        return [
            probes[h][0]
            if probes[h][0] == probes[h][1] == probes[h + 1][0] == probes[h + 1][1]
            else None
            for h in range(24)
        ]

    def _resolve_wall(self, wall: int, prev: int) -> tuple[int, int] | None:
        """Return ``(instant, offset)`` croniter gives wall time ``wall`` after ``prev``.

        Mirrors croniter's ``_add_tzinfo``: a wall time that exists once has one reading; an
        ambiguous one is read with ``fold=0`` if that instant is after ``prev``, else with
        ``fold=1``. None for a wall time in a gap (croniter shifts those; ask croniter).
        zoneinfo gives fold 0 the offset before a change and fold 1 the offset after, so
        ``o1 > o0`` is a gap and ``o1 < o0`` a repeated hour.
        """
        a = (_EPOCH_NAIVE + timedelta(seconds=wall)).replace(tzinfo=self.tz)
        d0 = a.utcoffset()
        d1 = a.replace(fold=1).utcoffset()
        assert d0 is not None and d1 is not None
        o0, o1 = int(d0.total_seconds()), int(d1.total_seconds())
        if o0 == o1:
            return wall - o0, o0
        if o1 > o0:
            return None
        if wall - o0 > prev:
            return wall - o0, o0
        return wall - o1, o1

    # ------------------------------------------------------------------------------ walk

    def first_at_or_after(self, epoch: int) -> int | None:
        """Return t_0: croniter's first occurrence at or after ``epoch``, or None."""
        return self.next_after(epoch - 1)

    def chunks(self, t0: int) -> Iterator[Chunk]:
        """Yield croniter's occurrences from ``t0`` (itself an occurrence) on, in chunks.

        Infinite in practice (it ends near year 9999 or when croniter finds no next
        occurrence); callers stop at their bound.
        """
        yield (t0, _ZERO, 0)
        if not self.fast:
            e: int | None = t0
            while e is not None:
                e = self.next_after(e)
                if e is not None:
                    yield (e, _ZERO, 0)
            return
        secs = self.day_seconds
        n = len(secs)
        prev = t0
        prev_off = self.offset_at(prev)
        o, after = divmod(prev + prev_off, DAY_SECONDS)
        o += EPOCH_ORDINAL
        while True:
            nm = self._next_matching(o)
            if nm is None:
                return
            if nm != o:
                o, after = nm, -1
            k = bisect_right(secs, after)
            if k < n:
                off = self._constant_offset(o)
                if off is not None and off == prev_off:
                    base = (o - EPOCH_ORDINAL) * DAY_SECONDS - off
                    yield (base, secs, k)
                    prev = base + secs[-1]
                else:
                    midnight = (o - EPOCH_ORDINAL) * DAY_SECONDS
                    hours = self._hour_offsets(o)
                    jumped = False
                    for j in range(k, n):
                        wall = midnight + secs[j]
                        h_off = hours[secs[j] // 3600]
                        if h_off is not None:
                            hit: tuple[int, int] | None = (wall - h_off, h_off)
                        else:
                            hit = self._resolve_wall(wall, prev)
                        if hit is not None and hit[1] == prev_off and hit[0] > prev:
                            prev = hit[0]
                            yield (prev, _ZERO, 0)
                            continue
                        nxt = self.next_after(prev)
                        if nxt is None:
                            return
                        prev = nxt
                        prev_off = self.offset_at(prev)
                        yield (prev, _ZERO, 0)
                        jumped = True
                        break
                    if jumped:
                        o, after = divmod(prev + prev_off, DAY_SECONDS)
                        o += EPOCH_ORDINAL
                        continue
            o, after = o + 1, -1
