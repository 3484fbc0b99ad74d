"""Time partitions: :class:`TimePartitions`, one partition per occurrence of a cron schedule.

Schedule semantics (the contract is ``docs/design.md``, "Partitions"):

* The occurrences ``t_0 < t_1 < ...`` are croniter's, exactly: ``t_0`` is croniter's first
  occurrence at or after ``start`` and each next one is croniter's ``get_next`` from the
  previous one, in the job's time zone, DST handling included (croniter fires hourly schedules
  23 times on a spring-forward day and 25 times on a fall-back day, and a daily ``30 1 * * *``
  twice on a fall-back day). :mod:`.cronwalk` computes them without a croniter call per
  occurrence.
* Partition ``i`` is the window ``[t_i, t_(i+1))``; it exists once the window ends at or before
  ``min(end, now)``.
* Keys: ``YYYY-MM-DD`` when the schedule fires at most once per local day (one minute value
  and one hour value), else ``YYYY-MM-DDTHH:MM``, as wall time in the job's zone. A wall time
  that occurs twice (DST fall-back) gets its UTC offset: ``2024-11-03T01:00-04:00`` (and the
  minute form even for once-a-day schedules). So do occurrences croniter moves out of a
  skipped day (:meth:`TimePartitions.format_key`). Keys are unique within a space.
* ``range.from`` / ``range.to`` select ``from <= t_i <= to``; each is a key of the space (then
  it stands for that partition's ``t_i``) or a timestamp: ``2024-01-01``,
  ``2024-01-01T05:00[:00[.fff]]`` (wall time in the job's zone; an ambiguous or skipped wall
  time is read with ``fold=0``, i.e. with the UTC offset in force before the change), or
  RFC 3339 with ``Z`` or an offset.


Pure: no clock; ``now`` is an argument. Errors are :class:`~.space.PartitionError`.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .cronwalk import Chunk, CronSyntaxError, CronWalk
from .ranges import IndexSet
from .space import (
    MAX_PARTITIONS,
    PartitionError,
    PartitionSpace,
    Selection,
    check_key_list,
    fingerprint_of,
    plural,
    utc_from_epoch,
)
from .times import rfc3339

__all__ = ["TimePartitions"]

_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
#: Earliest ``start`` accepted (local mean time offsets before it are not whole minutes).
_MIN_YEAR = 1900

_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2})(?::(?P<os>\d{2}))?)?)?"
)
_DATE_KEY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MINUTE_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_OFFSET_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}[+-]\d{2}:\d{2}(?::\d{2})?")


_TOO_MANY = (
    f"the range selects more than {MAX_PARTITIONS} partitions (the limit); "
    "narrow range.from/range.to or split the backfill"
)
#: A partition found by key: (global index, t_i, t_(i+1) or None), epoch seconds.
_Hit = tuple[int, int, int | None]


def _epoch_floor(dt: datetime) -> int:
    """Return whole seconds since the Unix epoch, rounded down, of an aware datetime."""
    return (dt - _EPOCH) // _SECOND


def _format_offset(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _parse_timestamp(text: str, tz: ZoneInfo) -> tuple[int, bool] | None:
    """Parse a date, a wall time in ``tz`` or an RFC 3339 timestamp.

    Returns ``(seconds, exact)``: whole epoch seconds rounded down, and whether there was no
    fraction of a second below that. None when the text is not such a timestamp.
    """
    m = _TIMESTAMP.fullmatch(text.strip())
    if m is None:
        return None
    try:
        day = date.fromisoformat(m["date"])
        if m["h"] is None:
            wall = datetime(day.year, day.month, day.day)
        else:
            wall = datetime(
                day.year, day.month, day.day, int(m["h"]), int(m["m"]), int(m["s"] or 0)
            )
    except ValueError:
        return None
    if not _MIN_YEAR <= wall.year <= 9990:
        return None
    exact = not (m["frac"] and int(m["frac"]))
    if m["z"]:
        return _epoch_floor(wall.replace(tzinfo=_UTC)), exact
    if m["sign"]:
        oh, om, os = int(m["oh"]), int(m["om"]), int(m["os"] or 0)
        if oh > 23 or om > 59 or os > 59:
            return None
        offset = (oh * 3600 + om * 60 + os) * (-1 if m["sign"] == "-" else 1)
        return (wall - _EPOCH_NAIVE) // _SECOND - offset, exact
    return _epoch_floor(wall.replace(tzinfo=tz)), exact


_ADJECTIVES: dict[tuple[str, ...], str] = {
    # Shape of (minute, hour, day-of-month, month, day-of-week): "*" unrestricted, "1" one value.
    ("*", "*", "*", "*", "*"): "minutely",
    ("1", "*", "*", "*", "*"): "hourly",
    ("1", "1", "*", "*", "*"): "daily",
    ("1", "1", "*", "*", "1"): "weekly",
    ("1", "1", "1", "*", "*"): "monthly",
    ("1", "1", "1", "1", "*"): "yearly",
}


class TimePartitions(PartitionSpace):
    """Partitions by a five-field cron schedule in an IANA time zone (see the module doc).

    ``start``/``end`` are dates, wall times in ``time_zone`` or RFC 3339 timestamps (years
    1900-9990); ``now`` is an aware datetime. Partitions exist while their window ends at or
    before ``min(end, now)``. Raises PartitionError for an invalid cron expression, an
    unknown time zone, an unparseable ``start``/``end``, an ``end`` not after ``start``, or a
    schedule that never fires.
    """

    def __init__(
        self,
        *,
        cron: str,
        time_zone: str = "UTC",
        start: str,
        end: str | None,
        now: datetime,
    ) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        fields = cron.split()
        if len(fields) != 5:
            raise PartitionError(
                f'schedule.cron "{cron}" is not a valid five-field cron expression: it has '
                f"{plural(len(fields), 'field')} (minute hour day-of-month month day-of-week)"
            )
        self.cron = " ".join(fields)
        try:
            if not time_zone or time_zone != time_zone.strip():
                raise ValueError(time_zone)
            tz = ZoneInfo(time_zone)
        except (ValueError, KeyError, OSError) as exc:
            raise PartitionError(f'unknown time zone "{time_zone}"') from exc
        self.time_zone = time_zone
        self._tz = tz
        try:
            self._walk = CronWalk(self.cron, tz)
        except CronSyntaxError as exc:
            raise PartitionError(
                f'schedule.cron "{cron}" is not a valid five-field cron expression: {exc}'
            ) from exc
        parsed = _parse_timestamp(start, tz)
        if parsed is None:
            raise PartitionError(
                f'schedule.start "{start}" is not a date (2024-01-01), a wall time '
                f"(2024-01-01T05:00) or an RFC 3339 timestamp, in years {_MIN_YEAR}-9990"
            )
        start_epoch = parsed[0] + (0 if parsed[1] else 1)
        bound = _epoch_floor(now)
        self._end: int | None = None
        if end is not None:
            parsed_end = _parse_timestamp(end, tz)
            if parsed_end is None:
                raise PartitionError(
                    f'schedule.end "{end}" is not a date (2024-01-01), a wall time '
                    f"(2024-01-01T05:00) or an RFC 3339 timestamp, in years {_MIN_YEAR}-9990"
                )
            if parsed_end[0] <= start_epoch:
                raise PartitionError(f'schedule.end "{end}" is not after schedule.start "{start}"')
            bound = min(bound, parsed_end[0])
            self._end = parsed_end[0]
        t0 = self._walk.first_at_or_after(start_epoch)
        if t0 is None:
            raise PartitionError(
                f'schedule.cron "{cron}" never fires: no occurrence within 50 years of '
                f'schedule.start "{start}"'
            )
        self._t0 = t0
        #: Occurrences up to this epoch second count: a window must end at or before it.
        self._bound = bound
        self._last_index: int | bool | None = False  # False: not computed yet
        self.fingerprint = fingerprint_of("schedule", self.cron.lower(), tz.key, str(t0))
        self.granularity = "date" if self._walk.once_a_day else "minute"
        minute, hour = self._walk.expanded[0][0], self._walk.expanded[1][0]
        #: The (hour, minute) a once-a-day schedule fires at; an earlier wall time on a date
        #: means croniter moved the occurrence there out of a skipped day (see format_key).
        self._time_of_day: tuple[int, int] = (hour, minute) if self._walk.once_a_day else (0, 0)

    # ------------------------------------------------------------------------------ keys

    def describe(self) -> str:
        """Return e.g. ``hourly schedule "0 * * * *" in America/New_York``."""
        shape = tuple(
            "*" if f == ["*"] else "1" if len(f) == 1 and isinstance(f[0], int) else "n"
            for f in self._walk.expanded
        )
        adjective = _ADJECTIVES.get(shape)
        prefix = f"{adjective} " if adjective and self._walk.fast else ""
        return f'{prefix}schedule "{self.cron}" in {self.time_zone}'

    def format_key(self, epoch: int) -> str:
        """Return the key of the occurrence at ``epoch`` (seconds); see the module doc.

        For once-a-day schedules the key is the local date, except for an ambiguous wall
        time (minute and offset) and for an occurrence croniter moved past midnight out of a
        skipped day, whose wall time is earlier than the schedule's (minute; this happens
        when a zone skips a whole day, e.g. Pacific/Apia on 2011-12-30, where croniter fires
        at 2011-12-31T00:00 for the 30th and again at the usual time on the 31st).
        """
        local = datetime.fromtimestamp(epoch, self._tz)
        offset = local.utcoffset()
        assert offset is not None
        ambiguous = local.replace(fold=1 - local.fold).utcoffset() != offset
        text = f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        if (
            self.granularity == "date"
            and not ambiguous
            and (local.hour, local.minute) >= self._time_of_day
        ):
            return text
        text += f"T{local.hour:02d}:{local.minute:02d}"
        if ambiguous:
            text += _format_offset(int(offset.total_seconds()))
        return text

    def _key_format(self, _index: int, start: int) -> str:
        return self.format_key(start)

    def _key_window(self, key: str) -> tuple[int, int] | None:
        """Return instants ``[lo, hi)`` the occurrence a key names lies in, or None.

        None when ``key`` does not have the shape of a key of this space (dates only for
        once-a-day schedules) or names no valid wall time.
        """
        tz = self._tz
        if _OFFSET_KEY.fullmatch(key):
            parsed = _parse_timestamp(key, tz)
            return None if parsed is None else (parsed[0], parsed[0] + 1)
        if _MINUTE_KEY.fullmatch(key):
            try:
                wall = datetime.fromisoformat(key)
            except ValueError:
                return None
            a = wall.replace(tzinfo=tz)
            if a.utcoffset() != a.replace(fold=1).utcoffset():
                return None  # skipped or repeated wall time: not a key without an offset
            at = _epoch_floor(a)
            return at, at + 1
        if self.granularity == "date" and _DATE_KEY.fullmatch(key):
            try:
                day = date.fromisoformat(key)
            except ValueError:
                return None
            if not _MIN_YEAR <= day.year <= 9990:
                return None
            midnight = datetime(day.year, day.month, day.day)
            nxt = midnight + timedelta(days=1)
            # Both readings of a skipped or repeated midnight: the window may be a little
            # wide; the caller matches keys exactly.
            lo = min(_epoch_floor(midnight.replace(tzinfo=tz, fold=f)) for f in (0, 1))
            hi = max(_epoch_floor(nxt.replace(tzinfo=tz, fold=f)) for f in (0, 1))
            return lo, hi
        return None

    # ----------------------------------------------------------------------------- walks

    def _find(self, wanted: Sequence[tuple[int, int, str]]) -> list[_Hit | None]:
        """Find partitions by key, given each key's window, in one walk.

        ``wanted`` holds ``(lo, hi, key)`` sorted by ``lo``: the occurrence named ``key``
        must lie in ``[lo, hi)``. Returns, per entry, ``(index, t_i, t_(i+1))`` of the
        occurrence in the window whose key is exactly ``key`` (``t_(i+1)`` None when no
        occurrence follows), or None. O(days walked + occurrences in the windows).
        """
        out: list[_Hit | None] = []
        chunks = self._walk.chunks(self._t0)
        buf: deque[Chunk] = deque()
        first_index = 0  # global index of buf[0]'s first occurrence

        def fill() -> bool:
            chunk = next(chunks, None)
            if chunk is None:
                return False
            buf.append(chunk)
            return True

        for lo, hi, key in wanted:
            while (buf or fill()) and buf[0][0] + buf[0][1][-1] < lo:
                first_index += len(buf[0][1]) - buf[0][2]
                buf.popleft()
            if not buf:
                out.append(None)
                continue
            base, secs, start = buf[0]
            k = bisect_left(secs, lo - base, start)
            index = first_index + k - start
            pos = 0  # position in buf
            hit: _Hit | None = None
            while hit is None:
                t = buf[pos][0] + buf[pos][1][k]
                if t >= hi:
                    break
                k += 1
                if k == len(buf[pos][1]):
                    pos += 1
                    if pos == len(buf) and not fill():
                        if self.format_key(t) == key:
                            hit = (index, t, None)
                        break
                    k = buf[pos][2]
                if self.format_key(t) == key:
                    hit = (index, t, buf[pos][0] + buf[pos][1][k])
                index += 1
            out.append(hit)
        return out

    def last_index(self) -> int | None:
        """Return the highest index whose window ends by ``min(end, now)``, or None.

        O(local days from start to the bound); the result is cached.
        """
        if self._last_index is False:
            self._last_index = self.last_index_at(self._bound)
        result = self._last_index
        assert result is not False
        return result

    def last_index_at(self, epoch: int) -> int | None:
        """Return the highest index whose window ends by ``min(end, epoch)``, or None.

        ``epoch`` is in seconds and may lie after ``now`` (the space's bound only applies to
        :meth:`last_index`). O(local days from start to ``epoch``).
        """
        bound = epoch if self._end is None else min(epoch, self._end)
        count = 0
        if self._t0 <= bound:
            for base, secs, lo in self._walk.chunks(self._t0):
                if base + secs[-1] <= bound:
                    count += len(secs) - lo
                    continue
                count += bisect_right(secs, bound - base, lo) - lo
                break
        return count - 2 if count >= 2 else None

    def occurrences(self, first: int, count: int) -> list[int]:
        """Return ``t_first .. t_(first+count-1)`` (epoch seconds) in one walk.

        Fewer when the schedule ends (croniter finds no next occurrence); ``schedule.end``
        and ``now`` do not bound it. O(local days from start to ``t_(first+count)``).
        """
        out: list[int] = []
        if count <= 0 or first < 0:
            return out
        index = 0
        for base, secs, lo in self._walk.chunks(self._t0):
            n = len(secs) - lo
            if index + n > first:
                k = lo + max(0, first - index)
                while k < len(secs) and len(out) < count:
                    out.append(base + secs[k])
                    k += 1
                if len(out) == count:
                    break
            index += n
        return out

    def window_of(self, index: int) -> tuple[int, int] | None:
        """Return partition ``index``'s window ``(t_i, t_(i+1))`` in epoch seconds, or None.

        Any index, complete or not (used for the next scheduled partition); None when the
        window would end after ``schedule.end`` or the schedule ends first.
        """
        times = self.occurrences(index, 2)
        if len(times) < 2 or (self._end is not None and times[1] > self._end):
            return None
        return times[0], times[1]

    def select_indices(self, indices: IndexSet) -> Selection:
        """Return the partitions with exactly these (complete) indices, windows looked up lazily.

        For a scheduled run's growing set: O(1) to build; each window asked for costs a walk
        from the start (cached per selection). Raises ValueError for an empty set.
        """
        cache: dict[int, tuple[int, int]] = {}

        def locate(index: int) -> tuple[int, int]:
            found = cache.get(index)
            if found is None:
                window = self.window_of(index)
                if window is None:
                    raise KeyError(f"partition index {index} has no complete window")
                found = cache[index] = window
            return found

        return Selection(
            space_fingerprint=self.fingerprint,
            indices=indices,
            key_format=self._key_format,
            locate=locate,
        )

    def _complete_span(self) -> str:
        """Describe the existing partitions, for error messages."""
        last = self.last_index()
        if last is None:
            return f"no partition of this job is complete yet ({self.describe()})"
        first_key = self.format_key(self._t0)
        last_key = self.format_key(self._locate_index(last))
        return f'the complete partitions run from "{first_key}" to "{last_key}" ({self.describe()})'

    def _locate_index(self, wanted: int) -> int:
        """Return ``t_wanted`` for an index known to exist. O(days walked)."""
        index = 0
        for base, secs, lo in self._walk.chunks(self._t0):
            count = len(secs) - lo
            if index + count > wanted:
                return base + secs[lo + wanted - index]
            index += count
        raise AssertionError("index beyond the walk")  # pragma: no cover

    def _resolve_bound(self, text: str, name: str) -> tuple[int, bool]:
        """Return a range bound as ``(epoch seconds rounded down, exact)``.

        A key of an existing-or-future occurrence stands for its ``t_i``; anything else is
        read as a timestamp. Raises PartitionError when it is neither.
        """
        # Only a date key of a once-a-day schedule stands for a t_i other than its timestamp
        # reading (a minute key names its own wall time; an offset key its own instant).
        window = self._key_window(text) if _DATE_KEY.fullmatch(text) else None
        if window is not None and window[0] <= self._bound:
            found = self._find([(window[0], window[1], text)])[0]
            if found is not None:
                return found[1], True
        parsed = _parse_timestamp(text, self._tz)
        if parsed is None:
            raise PartitionError(f'{name} "{text}" is not a partition key or timestamp')
        return parsed

    # ------------------------------------------------------------------------- selecting

    def select_range(self, from_: str | None, to: str | None) -> Selection:
        """Return the partitions with ``from_ <= t_i <= to`` whose window ends by the bound.

        ``from_``/``to`` are keys or timestamps (module doc); None ``from_`` is the first
        partition, None ``to`` the last complete one (``min(end, now)``). O(days from start
        to ``to``) plus O(selected). Raises PartitionError for an unparseable bound,
        ``from_`` after ``to``, an empty selection or more than ``MAX_PARTITIONS``.
        """
        from_epoch = self._t0
        if from_ is not None:
            at, exact = self._resolve_bound(from_, "range.from")
            from_epoch = at + (0 if exact else 1)
        to_epoch = self._bound
        if to is not None:
            to_epoch, _ = self._resolve_bound(to, "range.to")
        if from_ is not None and to is not None and from_epoch > to_epoch:
            raise PartitionError(f'range.from "{from_}" is after range.to "{to}"')
        from_epoch = max(from_epoch, self._t0)
        limit = min(to_epoch, self._bound)
        times: array[int] = array("q")
        first_index: int | None = None
        index = 0
        terminal: int | None = None
        cap = MAX_PARTITIONS + 1  # n partitions need n + 1 instants
        if from_epoch <= limit:
            for base, secs, lo in self._walk.chunks(self._t0):
                if first_index is None:
                    if base + secs[-1] < from_epoch:
                        index += len(secs) - lo
                        continue
                    start_at = bisect_left(secs, from_epoch - base, lo)
                    first_index = index + start_at - lo
                    lo = start_at
                if base + secs[lo] > limit:
                    terminal = base + secs[lo]
                    break
                hi = bisect_right(secs, limit - base, lo)
                if len(times) + hi - lo > cap:
                    raise PartitionError(_TOO_MANY)
                if len(secs) == 1:
                    times.append(base + secs[0])
                else:
                    times.extend(map(base.__add__, secs[lo:hi]))
                if hi < len(secs):
                    terminal = base + secs[hi]
                    break
        if terminal is not None and terminal <= self._bound:
            if len(times) + 1 > cap:
                raise PartitionError(_TOO_MANY)
            times.append(terminal)
        count = len(times) - 1
        if count <= 0 or first_index is None:
            shown_from = "the first partition" if from_ is None else f'"{from_}"'
            shown_to = "the last complete partition" if to is None else f'"{to}"'
            raise PartitionError(
                f"the range from {shown_from} to {shown_to} selects no partitions; "
                + self._complete_span()
            )
        return Selection(
            space_fingerprint=self.fingerprint,
            indices=IndexSet.from_range(first_index, first_index + count - 1),
            key_format=self._key_format,
            starts=times,
        )

    def select_keys(self, keys: Sequence[str]) -> Selection:
        """Return the partitions with exactly these keys; see :meth:`PartitionSpace.select_keys`.

        A key must be written exactly as :meth:`format_key` writes it. O(days from start to
        the last key + keys x log).
        """
        check_key_list(keys)
        windows: list[tuple[int, int, int]] = []  # (lo, hi, position in keys)
        bad: list[tuple[int, str]] = []  # (position, message)
        for pos, key in enumerate(keys):
            window = self._key_window(key)
            if window is None:
                bad.append((pos, self._not_a_partition(key)))
            elif window[0] > self._bound:
                bad.append((pos, self._not_complete(key)))
            else:
                windows.append((window[0], window[1], pos))
        windows.sort()
        found = self._find([(lo, hi, keys[pos]) for lo, hi, pos in windows])
        rows: list[tuple[int, int, int]] = []  # (index, start, end)
        for (_lo, _hi, pos), hit in zip(windows, found, strict=True):
            key = keys[pos]
            if hit is None:
                bad.append((pos, self._not_a_partition(key)))
            elif hit[2] is None or hit[2] > self._bound:
                bad.append((pos, self._not_complete(key)))
            else:
                rows.append((hit[0], hit[1], hit[2]))
        if bad:
            raise PartitionError(min(bad)[1])
        rows.sort()
        return Selection(
            space_fingerprint=self.fingerprint,
            indices=IndexSet.from_indices(r[0] for r in rows),
            key_format=self._key_format,
            starts=array("q", (r[1] for r in rows)),
            ends=array("q", (r[2] for r in rows)),
        )

    def _not_a_partition(self, key: str) -> str:
        return f'partition "{key}" is not a partition of this job ({self.describe()})'

    def _not_complete(self, key: str) -> str:
        return (
            f'partition "{key}" is not complete: its window has not ended by '
            f"{rfc3339(utc_from_epoch(self._bound))} "
            "(the earlier of schedule.end and now)"
        )
