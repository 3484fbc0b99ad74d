"""Partition spaces: croniter equivalence of the fast walk, keys, selections and errors."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backfill_operator.planning.cronwalk import CronWalk
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.schedule import TimePartitions
from backfill_operator.planning.space import (
    MAX_PARTITIONS,
    Partition,
    PartitionError,
    StaticPartitions,
)

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kolkata",  # +05:30, no DST
    "America/Santiago",  # changes at midnight
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hourly_ny(**kw: object) -> TimePartitions:
    args: dict[str, object] = {
        "cron": "0 * * * *",
        "time_zone": "America/New_York",
        "start": "2024-01-01",
        "end": None,
        "now": NOW,
    }
    args.update(kw)
    return TimePartitions(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the oracle: croniter


def croniter_occurrences(expr: str, zone: str, start: int, until: int, limit: int) -> list[int]:
    """Plain croniter: first occurrence >= start, then get_next; stop past until or limit."""
    it = croniter(expr, datetime.fromtimestamp(start - 1, ZoneInfo(zone)))
    out: list[int] = []
    while len(out) < limit:
        t = round(it.get_next(float))
        if t > until:
            break
        out.append(t)
    return out


def walk_occurrences(expr: str, zone: str, start: int, until: int, limit: int) -> list[int]:
    walk = CronWalk(expr, ZoneInfo(zone))
    t0 = walk.first_at_or_after(start)
    out: list[int] = []
    if t0 is None:
        return out
    for base, secs, lo in walk.chunks(t0):
        for k in range(lo, len(secs)):
            t = base + secs[k]
            if t > until or len(out) >= limit:
                return out
            out.append(t)
    return out


@cache
def transitions(zone: str) -> tuple[int, ...]:
    """Instants (epoch seconds) where the zone's UTC offset changes, 2023-2025."""
    tz = ZoneInfo(zone)
    found: list[int] = []
    t = int(utc(2023, 1, 1).timestamp())
    end = int(utc(2026, 1, 1).timestamp())

    def off(x: int) -> object:
        return datetime.fromtimestamp(x, tz).utcoffset()

    while t < end:
        if off(t) != off(t + 3600):
            lo, hi = t, t + 3600
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if off(mid) == off(lo) else (lo, mid)
            found.append(hi)
        t += 3600
    return tuple(found)


def test_transition_table_is_sane() -> None:
    assert len(transitions("America/New_York")) == 6
    assert len(transitions("Australia/Lord_Howe")) == 6
    assert transitions("UTC") == () == transitions("Asia/Kolkata")


def _field(values: st.SearchStrategy[int], lo: int, hi: int) -> st.SearchStrategy[str]:
    single = values.map(str)
    rng = st.tuples(values, values).map(lambda p: f"{min(p)}-{max(p)}")
    step = st.tuples(values, values, st.integers(1, max(2, (hi - lo) // 2))).map(
        lambda p: f"{min(p[0], p[1])}-{max(p[0], p[1])}/{p[2]}"
    )
    star_step = st.integers(1, max(2, (hi - lo) // 2)).map(lambda s: f"*/{s}")
    item = st.one_of(single, rng, step)
    listed = st.lists(item, min_size=2, max_size=3).map(",".join)
    return st.one_of(st.just("*"), single, rng, step, star_step, listed)


minute_f = _field(st.integers(0, 59), 0, 59)
hour_f = st.one_of(_field(st.integers(0, 23), 0, 23), st.sampled_from(["1", "2", "0,1,2,3"]))
dom_f = st.one_of(
    st.just("*"),
    st.just("*"),
    _field(st.integers(1, 31), 1, 31),
    st.sampled_from(["L", "1,L", "15W", "29", "30,31"]),
)
month_f = st.one_of(st.just("*"), st.just("*"), st.just("*"), _field(st.integers(1, 12), 1, 12))
dow_f = st.one_of(
    st.just("*"),
    st.just("*"),
    _field(st.integers(0, 7), 0, 7),
    st.sampled_from(["mon-fri", "sun", "1#2", "0,7"]),
)
cron_exprs = st.tuples(minute_f, hour_f, dom_f, month_f, dow_f).map(" ".join)


@st.composite
def starts(draw: st.DrawFn, zone: str) -> int:
    """A start instant: near one of the zone's offset changes, or anywhere 2023-2025."""
    table = transitions(zone)
    near_a_change = draw(st.integers(0, 3)) > 0
    if table and near_a_change:
        t = draw(st.sampled_from(table))
        near = draw(st.booleans())
        span = 4 * 3600 if near else 3 * 86400
        return t + draw(st.integers(-span, span // 3)) // 60 * 60
    return draw(st.integers(int(utc(2023, 1, 1).timestamp()), int(utc(2025, 12, 1).timestamp())))


@given(data=st.data(), expr=cron_exprs, zone=st.sampled_from(ZONES))
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_fast_walk_equals_croniter(data: st.DataObject, expr: str, zone: str) -> None:
    assume(croniter.is_valid(expr))
    start = data.draw(starts(zone))
    until = start + 6 * 86400
    try:
        expected = croniter_occurrences(expr, zone, start, until, 400)
    except Exception:  # croniter cannot enumerate it (never fires within 50 years)
        assume(False)
    assert walk_occurrences(expr, zone, start, until, 400) == expected


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "*/7 * * * *",
        "0 * * * *",
        "30 * * * *",
        "15,45 1-3 * * *",
        "0 0 * * *",
        "30 1 * * *",
        "30 2 * * *",
        "0 2 * * 0",
        "0 0 1,15 * 1",
    ],
)
def test_fast_walk_over_every_2024_transition(zone: str, expr: str) -> None:
    """Each 2024 offset change of each zone, from two days before to two days after."""
    for t in transitions(zone):
        if not utc(2024, 1, 1).timestamp() <= t < utc(2025, 1, 1).timestamp():
            continue
        start = t - 2 * 86400
        expected = croniter_occurrences(expr, zone, start, t + 2 * 86400, 10_000)
        assert walk_occurrences(expr, zone, start, t + 2 * 86400, 10_000) == expected


# ------------------------------------------------------------------ DST and calendar rules


def test_new_york_spring_forward_has_23_hourly_partitions() -> None:
    sel = hourly_ny().select_range("2024-03-10T00:00", "2024-03-10T23:00")
    assert len(sel) == 23
    keys = [sel.key(i) for i in sel.indices]
    assert keys[:4] == [
        "2024-03-10T00:00",
        "2024-03-10T01:00",
        "2024-03-10T03:00",
        "2024-03-10T04:00",
    ]
    p = sel.partition(sel.indices.nth(1))
    assert p.end is not None and p.start is not None
    assert p.end - p.start == timedelta(hours=1)  # 01:00 EST to 03:00 EDT is one hour


def test_new_york_fall_back_has_25_hourly_partitions() -> None:
    sel = hourly_ny().select_range("2024-11-03T00:00", "2024-11-03T23:00")
    assert len(sel) == 25
    keys = [sel.key(i) for i in sel.indices]
    assert keys[:4] == [
        "2024-11-03T00:00",
        "2024-11-03T01:00-04:00",
        "2024-11-03T01:00-05:00",
        "2024-11-03T02:00",
    ]
    assert len(set(keys)) == 25


def test_daily_at_an_ambiguous_time_fires_twice_with_offset_keys() -> None:
    space = TimePartitions(
        cron="30 1 * * *", time_zone="America/New_York", start="2024-11-01", end=None, now=NOW
    )
    assert space.granularity == "date"
    sel = space.select_range("2024-11-02", "2024-11-04")
    assert [sel.key(i) for i in sel.indices] == [
        "2024-11-02",
        "2024-11-03T01:30-04:00",
        "2024-11-03T01:30-05:00",
        "2024-11-04",
    ]


def test_daily_in_a_gap_is_shifted_like_croniter() -> None:
    space = TimePartitions(
        cron="30 2 * * *", time_zone="America/New_York", start="2024-03-09", end=None, now=NOW
    )
    sel = space.select_keys(["2024-03-10"])
    p = sel.partition(sel.indices.first())
    assert p.start == utc(2024, 3, 10, 7, 0)  # croniter: 03:00 EDT
    assert p.end == utc(2024, 3, 11, 6, 30)  # 02:30 EDT


def test_leap_day() -> None:
    space = TimePartitions(cron="0 0 * * *", start="2023-01-01", end=None, now=NOW)
    sel = space.select_keys(["2024-02-29"])
    assert sel.partition(sel.indices.first()) == Partition(
        index=424, key="2024-02-29", start=utc(2024, 2, 29), end=utc(2024, 3, 1)
    )
    with pytest.raises(PartitionError, match='"2023-02-29" is not a partition of this job'):
        space.select_keys(["2023-02-29"])
    with pytest.raises(PartitionError, match='"2023-02-29" is not a partition key or timestamp'):
        space.select_range("2023-02-29", None)


def test_granularity_and_describe() -> None:
    cases = {
        ("0 0 * * *", "UTC"): ("date", 'daily schedule "0 0 * * *" in UTC'),
        ("0 * * * *", "America/New_York"): (
            "minute",
            'hourly schedule "0 * * * *" in America/New_York',
        ),
        ("* * * * *", "UTC"): ("minute", 'minutely schedule "* * * * *" in UTC'),
        ("0 6 * * 1", "UTC"): ("date", 'weekly schedule "0 6 * * 1" in UTC'),
        ("0 0 1 * *", "UTC"): ("date", 'monthly schedule "0 0 1 * *" in UTC'),
        ("0 0 1 1 *", "UTC"): ("date", 'yearly schedule "0 0 1 1 *" in UTC'),
        ("0 0,12 * * *", "UTC"): ("minute", 'schedule "0 0,12 * * *" in UTC'),
        ("*/15   *  * * *", "UTC"): ("minute", 'schedule "*/15 * * * *" in UTC'),
    }
    for (cron, zone), (granularity, text) in cases.items():
        space = TimePartitions(cron=cron, time_zone=zone, start="2024-01-01", end=None, now=NOW)
        assert (space.granularity, space.describe()) == (granularity, text)


# ----------------------------------------------------------------------- range selection


def test_range_bounds_are_inclusive_and_keys_stand_for_their_partition() -> None:
    daily_at_5 = TimePartitions(cron="0 5 * * *", start="2024-01-01", end=None, now=NOW)
    sel = daily_at_5.select_range("2024-01-10", "2024-01-12")
    assert (sel.first_key, sel.last_key, len(sel)) == ("2024-01-10", "2024-01-12", 3)
    assert sel.indices == IndexSet.from_range(9, 11)
    # A timestamp that is not a key is an instant: 2024-01-12T00:00 excludes 05:00 that day.
    sel = daily_at_5.select_range("2024-01-10", "2024-01-12T00:00")
    assert sel.last_key == "2024-01-11"
    sel = daily_at_5.select_range("2024-01-10T05:00:00Z", "2024-01-10T05:00:00+00:00")
    assert (sel.first_key, len(sel)) == ("2024-01-10", 1)
    sel = daily_at_5.select_range("2024-01-10T05:00:00.5Z", "2024-01-12T05:00:59.9Z")
    assert (sel.first_key, sel.last_key) == ("2024-01-11", "2024-01-12")


def test_hourly_range_inclusive_with_offsets() -> None:
    space = hourly_ny()
    sel = space.select_range("2024-11-03T01:00-05:00", "2024-11-03T03:00")
    assert [sel.key(i) for i in sel.indices] == [
        "2024-11-03T01:00-05:00",
        "2024-11-03T02:00",
        "2024-11-03T03:00",
    ]
    # A wall time without offset is read with fold=0: 01:00 means 01:00 EDT.
    sel = space.select_range("2024-11-03T01:00", "2024-11-03T01:00")
    assert sel.first_key == "2024-11-03T01:00-04:00" and len(sel) == 1


def test_open_to_is_the_last_complete_window_before_now() -> None:
    now = utc(2024, 1, 10, 5, 30)
    space = TimePartitions(cron="0 * * * *", start="2024-01-10", end=None, now=now)
    sel = space.select_range(None, None)
    # 04:00-05:00 is complete at 05:30; 05:00-06:00 is not.
    assert (sel.first_key, sel.last_key, len(sel)) == ("2024-01-10T00:00", "2024-01-10T04:00", 5)
    assert space.last_index() == 4
    exactly = TimePartitions(
        cron="0 * * * *", start="2024-01-10", end=None, now=utc(2024, 1, 10, 5)
    )
    assert exactly.select_range(None, None).last_key == "2024-01-10T04:00"
    # `to` past now is bounded by now.
    assert space.select_range("2024-01-10T02:00", "2030-01-01").last_key == "2024-01-10T04:00"
    with pytest.raises(PartitionError, match='"2024-01-10T05:00" is not complete'):
        space.select_keys(["2024-01-10T05:00"])


def test_end_bounds_partitions() -> None:
    space = TimePartitions(cron="0 0 * * *", start="2024-01-01", end="2024-01-31", now=NOW)
    sel = space.select_range(None, None)
    assert (sel.first_key, sel.last_key, len(sel)) == ("2024-01-01", "2024-01-30", 30)
    assert space.last_index() == 29
    partial = TimePartitions(cron="0 0 * * *", start="2024-01-01", end="2024-01-31T12:00", now=NOW)
    assert partial.select_range(None, None).last_key == "2024-01-30"
    assert space.fingerprint == partial.fingerprint  # end does not renumber


def test_no_partition_yet() -> None:
    # t_0 is 2026-01-01T00:00; its window ends a day after now.
    space = TimePartitions(cron="0 0 * * *", start="2025-12-31T12:00", end=None, now=NOW)
    assert space.last_index() is None
    with pytest.raises(PartitionError, match="no partition of this job is complete yet"):
        space.select_range(None, None)
    one = TimePartitions(
        cron="0 0 * * *", start="2025-12-31T12:00", end=None, now=NOW + timedelta(1)
    )
    assert one.last_index() == 0
    assert one.select_range(None, None).first_key == "2026-01-01"
    # A window ending exactly at now is complete.
    exact = TimePartitions(cron="0 0 * * *", start="2025-12-31", end=None, now=NOW)
    assert exact.last_index() == 0


def test_range_errors() -> None:
    space = hourly_ny()
    with pytest.raises(PartitionError, match=r'range\.from "2024-02-03" is after range\.to'):
        space.select_range("2024-02-03", "2024-02-01")
    with pytest.raises(PartitionError, match=r'range\.to "yesterday" is not a partition key'):
        space.select_range(None, "yesterday")
    with pytest.raises(PartitionError, match="selects no partitions; the complete partitions"):
        space.select_range("2024-01-01T00:30", "2024-01-01T00:45")
    with pytest.raises(PartitionError, match="selects no partitions"):
        space.select_range("2020-01-01", "2023-12-31")


def test_too_many_partitions_is_refused() -> None:
    space = TimePartitions(cron="* * * * *", start="2023-01-01", end=None, now=NOW)
    with pytest.raises(PartitionError, match=f"more than {MAX_PARTITIONS} partitions"):
        space.select_range(None, None)
    sel = space.select_range("2023-01-01T00:00", "2024-11-25T10:39")
    assert len(sel) == MAX_PARTITIONS
    assert sel.last_key == "2024-11-25T10:39"
    assert sel.partition(MAX_PARTITIONS - 1).end == utc(2024, 11, 25, 10, 40)
    with pytest.raises(PartitionError, match="more than"):
        space.select_range("2023-01-01T00:00", "2024-11-25T10:40")


def test_global_index_counts_from_start_years_earlier() -> None:
    space = TimePartitions(
        cron="0 0 * * *", time_zone="America/New_York", start="2000-01-01", end=None, now=NOW
    )
    sel = space.select_range("2024-01-01", "2024-12-31")
    first = (datetime(2024, 1, 1) - datetime(2000, 1, 1)).days
    assert sel.indices == IndexSet.from_range(first, first + 365)
    p = sel.partition(first)
    assert p.start == datetime(2024, 1, 1, tzinfo=ZoneInfo("America/New_York"))


# ------------------------------------------------------------------ properties of a space


@given(
    expr=st.sampled_from(
        ["0 * * * *", "30 1 * * *", "*/20 1-3 * * *", "0 0 * * *", "45 23 * * 6", "0 2 * * *"]
    ),
    zone=st.sampled_from(ZONES),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_space_properties(expr: str, zone: str, data: st.DataObject) -> None:
    """Keys unique; select_keys round-trips; windows contiguous; indices count from t_0."""
    start = data.draw(starts(zone))
    start_text = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    now = datetime.fromtimestamp(start + 20 * 86400, UTC)
    space = TimePartitions(cron=expr, time_zone=zone, start=start_text, end=None, now=now)
    sel = space.select_range(None, None)
    expected = croniter_occurrences(expr, zone, start, start + 20 * 86400, 100_000)
    assert len(sel) == len(expected) - 1 == (space.last_index() or 0) + 1
    parts = [sel.partition(i) for i in sel.indices]
    assert [p.index for p in parts] == list(range(len(sel)))
    assert [int(p.start.timestamp()) for p in parts if p.start] == expected[:-1]
    keys = [p.key for p in parts]
    assert len(set(keys)) == len(keys)
    for a, b in itertools.pairwise(parts):
        assert a.end == b.start
    for p in parts:
        assert p.start is not None and p.end is not None and p.start < p.end
    again = space.select_keys(list(reversed(keys)))
    assert again.indices == sel.indices
    assert [again.partition(i) for i in again.indices] == parts
    # A middle slice by range: indices count from t_0.
    lo = data.draw(st.integers(0, len(parts) - 1))
    hi = data.draw(st.integers(lo, len(parts) - 1))
    part = space.select_range(keys[lo], keys[hi])
    assert part.indices == IndexSet.from_range(lo, hi)
    assert part.first_key == keys[lo] and part.last_key == keys[hi]


def test_select_keys_errors_name_the_first_bad_key() -> None:
    space = hourly_ny()
    with pytest.raises(
        PartitionError,
        match=r'^partition "2024-01-01T05:30" is not a partition of this job '
        r'\(hourly schedule "0 \* \* \* \*" in America/New_York\)$',
    ):
        space.select_keys(["2024-01-01T04:00", "2024-01-01T05:30", "nope"])
    with pytest.raises(PartitionError, match='"2024-11-03T01:00" is not a partition'):
        space.select_keys(["2024-11-03T01:00"])  # ambiguous: needs its offset
    with pytest.raises(PartitionError, match='"2024-03-10T02:00" is not a partition'):
        space.select_keys(["2024-03-10T02:00"])  # skipped wall time
    with pytest.raises(PartitionError, match='"2024-01-01" is not a partition'):
        space.select_keys(["2024-01-01"])  # a date is not an hourly key
    with pytest.raises(PartitionError, match='"2023-12-31T23:00" is not a partition'):
        space.select_keys(["2023-12-31T23:00"])  # before start
    with pytest.raises(PartitionError, match='"2024-01-01T04:00" is listed twice'):
        space.select_keys(["2024-01-01T04:00", "2024-01-01T04:00"])
    with pytest.raises(PartitionError, match="no partitions listed"):
        space.select_keys([])
    with pytest.raises(PartitionError, match='"2024-01-01T4:00" is not a partition'):
        space.select_keys(["2024-01-01T4:00"])  # exact key spelling only


def test_selection_lookups() -> None:
    sel = hourly_ny().select_keys(["2024-01-01T07:00", "2024-01-01T03:00"])
    assert list(sel.indices) == [3, 7]
    assert (sel.first_key, sel.last_key) == ("2024-01-01T03:00", "2024-01-01T07:00")
    assert sel.partition(7).end == utc(2024, 1, 1, 13)
    with pytest.raises(KeyError):
        sel.partition(5)
    with pytest.raises(KeyError):
        sel.key(0)
    with pytest.raises(AttributeError):
        sel.indices = IndexSet()  # type: ignore[misc]
    assert [sel.partition(i).index for i in sel.indices.iter_descending()] == [7, 3]


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cron": "61 * * * *"},
            r'^schedule.cron "61 \* \* \* \*" is not a valid five-field cron expression: .*range',
        ),
        ({"cron": "* * * *"}, "it has 4 fields"),
        ({"cron": "0 0 * * * *"}, "it has 6 fields"),
        ({"cron": "@daily"}, "it has 1 field "),
        ({"cron": "H * * * *"}, "not a valid five-field cron expression"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"time_zone": "Mars/Base"}, '^unknown time zone "Mars/Base"$'),
        ({"time_zone": "../etc/passwd"}, "unknown time zone"),
        ({"time_zone": ""}, "unknown time zone"),
        ({"start": "2024-02-30"}, 'schedule.start "2024-02-30" is not a date'),
        ({"start": "yesterday"}, "schedule.start"),
        ({"start": "1800-01-01"}, "schedule.start"),
        ({"end": "2023-12-31"}, 'schedule.end "2023-12-31" is not after schedule.start'),
        ({"end": "soon"}, 'schedule.end "soon" is not a date'),
    ],
)
def test_invalid_schedules(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        hourly_ny(**kwargs)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        hourly_ny(now=datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("start", "first"),
    [
        ("2024-01-01", utc(2024, 1, 1, 5)),  # midnight in New York
        ("2024-01-01T05:00", utc(2024, 1, 1, 10)),
        ("2024-01-01T05:00:00", utc(2024, 1, 1, 10)),
        ("2024-01-01T05:00:01", utc(2024, 1, 1, 11)),
        ("2024-01-01T05:00:00Z", utc(2024, 1, 1, 5)),
        ("2024-01-01T05:00:00+01:00", utc(2024, 1, 1, 4)),
        ("2024-01-01T04:59:59.5-05:00", utc(2024, 1, 1, 10)),
    ],
)
def test_start_formats(start: str, first: datetime) -> None:
    sel = hourly_ny(start=start).select_range(None, "2024-01-02")
    assert sel.partition(0).start == first


def test_fingerprint_identifies_the_numbering() -> None:
    a = hourly_ny()
    assert a.fingerprint == hourly_ny(end="2024-06-01").fingerprint
    assert a.fingerprint == hourly_ny(start="2023-12-31T23:30").fingerprint  # same t_0
    assert a.fingerprint == hourly_ny(now=NOW + timedelta(days=3)).fingerprint
    assert a.fingerprint != hourly_ny(start="2024-01-02").fingerprint
    assert a.fingerprint != hourly_ny(time_zone="UTC").fingerprint
    assert a.fingerprint != hourly_ny(cron="0 */2 * * *").fingerprint
    assert len(a.fingerprint) == 16 and int(a.fingerprint, 16) >= 0


def test_fallback_expressions_use_croniter() -> None:
    space = TimePartitions(cron="0 0 * * 1#2", start="2024-01-01", end=None, now=NOW)
    sel = space.select_range("2024-01-01", "2024-04-30")
    assert [sel.key(i) for i in sel.indices] == [
        "2024-01-08",
        "2024-02-12",
        "2024-03-11",
        "2024-04-08",
    ]


# ---------------------------------------------------------------------------- static


def test_static_values() -> None:
    space = StaticPartitions(["us", "eu", "apac"])
    assert (space.granularity, space.describe(), space.last_index()) == (
        "static",
        "3 static values",
        2,
    )
    sel = space.select_range("eu", None)
    assert (list(sel.indices), sel.first_key, sel.last_key) == ([1, 2], "eu", "apac")
    assert sel.partition(2) == Partition(index=2, key="apac", start=None, end=None)
    assert len(space.select_range(None, None)) == 3
    keys = space.select_keys(["apac", "us"])
    assert list(keys.indices) == [0, 2] and keys.key(2) == "apac"
    assert StaticPartitions(["x"]).describe() == "1 static value"
    with pytest.raises(PartitionError, match=r'range\.from "apac" comes after range\.to "us"'):
        space.select_range("apac", "us")
    with pytest.raises(
        PartitionError, match=r'^partition "mars" is not a partition of this job \(3 static'
    ):
        space.select_keys(["us", "mars"])
    with pytest.raises(PartitionError, match="listed twice"):
        space.select_keys(["us", "us"])


def test_static_validation_and_fingerprint() -> None:
    with pytest.raises(PartitionError, match="values is empty"):
        StaticPartitions([])
    with pytest.raises(PartitionError, match='value "a" appears twice'):
        StaticPartitions(["a", "b", "a"])
    with pytest.raises(PartitionError, match=r"values\[1\] is empty"):
        StaticPartitions(["a", ""])
    assert StaticPartitions(["a", "b"]).fingerprint == StaticPartitions(("a", "b")).fingerprint
    assert StaticPartitions(["a", "b"]).fingerprint != StaticPartitions(["b", "a"]).fingerprint


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Pacific/Apia", "2011-12-25"),  # skipped 2011-12-30 entirely (-10:00 -> +14:00)
        ("Africa/Monrovia", "1971-12-25"),  # -00:44:30 until 1972
        ("America/Santiago", "2024-09-01"),  # spring forward at midnight
        ("America/Santiago", "2024-04-01"),  # fall back at midnight
        ("Australia/Lord_Howe", "2024-04-01"),  # 30-minute fall back
        ("America/Havana", "2024-10-28"),  # fall back at 01:00
    ],
)
@pytest.mark.parametrize("expr", ["45 23 * * *", "0 0 * * *", "30 0 * * *", "*/30 * * * *"])
def test_odd_zone_days(zone: str, start: str, expr: str) -> None:
    """Walk equals croniter; keys are unique and select_keys finds each of them."""
    tz = ZoneInfo(zone)
    begin = int(datetime.fromisoformat(start).replace(tzinfo=tz).timestamp())
    now = datetime.fromtimestamp(begin + 14 * 86400, UTC)
    expected = croniter_occurrences(expr, zone, begin, begin + 14 * 86400, 10_000)
    assert walk_occurrences(expr, zone, begin, begin + 14 * 86400, 10_000) == expected
    space = TimePartitions(cron=expr, time_zone=zone, start=start, end=None, now=now)
    sel = space.select_range(None, None)
    keys = [sel.key(i) for i in sel.indices]
    assert len(keys) == len(set(keys)) == len(expected) - 1
    assert space.select_keys(keys).indices == sel.indices
    assert space.select_range(keys[0], keys[-1]).indices == sel.indices


def test_date_key_on_a_day_ending_in_a_gap() -> None:
    # Santiago skips 2024-09-08T00:00-01:00; Saturday 23:45 is still on 2024-09-07.
    space = TimePartitions(
        cron="45 23 * * 6", time_zone="America/Santiago", start="2024-08-01", end=None, now=NOW
    )
    sel = space.select_keys(["2024-09-07"])
    assert sel.partition(sel.indices.first()).start == utc(2024, 9, 8, 3, 45)
    assert space.select_range("2024-09-07", "2024-09-07").indices == sel.indices
