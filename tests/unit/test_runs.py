"""Scheduled runs of a PartitionedJob: what a pass takes on, and how it is planned.

Pure: :func:`take_on` driven as a simulation against a brute-force reference written from the
definitions of the ``runs`` module doc (hypothesis), the catch-up cases of the issue as
examples, and :func:`plan_runs` with ``concurrencyPolicy`` and the shared ledger.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backfill_operator.api.model import (
    SCHEDULE_RUN,
    CatchUp,
    ConcurrencyPolicy,
    PartitionedJobSpec,
    PartitionedJobStatus,
    PartitionLedger,
    ScheduledRuns,
    ScheduleStatus,
)
from backfill_operator.planning.catchup import TakeOn, take_on
from backfill_operator.planning.decide import Decision
from backfill_operator.planning.observed import JobState, ObservedJob
from backfill_operator.planning.ranges import IndexSet
from backfill_operator.planning.runs import RunsVerdict, compose_runs_status, judge_runs, plan_runs
from backfill_operator.planning.schedule import TimePartitions
from backfill_operator.planning.verdict import PartitionedJobView

HOUR = 3600
TEMPLATE: dict[str, Any] = {
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
}
UID = "11111111-2222-3333-4444-555555555555"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def rfc(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def space(
    cron: str, zone: str, start: int, *, end: int | None = None, now: int | None = None
) -> TimePartitions:
    return TimePartitions(
        cron=cron,
        time_zone=zone,
        start=rfc(start),
        end=None if end is None else rfc(end),
        now=datetime.fromtimestamp(now if now is not None else start, UTC),
    )


def status_of(take: TakeOn) -> ScheduleStatus:
    """What the pass writes back and the next one reads (through the index-set strings)."""
    return ScheduleStatus(
        considered=take.considered, scheduled=str(take.scheduled), missed_set=str(take.missed)
    )


# ------------------------------------------------------------------------------ reference


@dataclass(frozen=True)
class Decided:
    """The reference decision of one pass (Python sets; ``considered`` the new cursor)."""

    considered: int
    on_time: frozenset[int]
    caught_up: frozenset[int]
    left: frozenset[int]
    beyond_window: frozenset[int]


def due_times(timeline: TimePartitions, end: int | None, delay: int, until: int) -> list[int]:
    """Due time (window end + delay) of every partition due at or before ``until``, by index.

    Partition ``i`` is ``[t_i, t_(i+1))``; it exists when ``t_(i+1) <= end`` (if set).
    """
    count = 64
    while True:
        times = timeline.occurrences(0, count)
        if len(times) < count or times[-1] + delay > until:
            break
        count *= 2
    due: list[int] = []
    for i in range(len(times) - 1):
        closes = times[i + 1]
        assert closes > times[i], "occurrences must increase"
        if (end is not None and closes > end) or closes + delay > until:
            break
        due.append(closes + delay)
    return due


def reference_pass(
    due: list[int], cursor: int, now: int, created: int, runs: ScheduledRuns
) -> Decided:
    """One pass by the module doc's definitions, partition by partition."""
    if runs.suspend:
        return Decided(cursor, frozenset(), frozenset(), frozenset(), frozenset())
    new = [i for i in range(cursor + 1, len(due)) if due[i] <= now]
    late = {i for i in new if due[i] < created or now - due[i] > runs.starting_deadline_seconds}
    on_time = {i for i in new if i not in late}
    window = runs.catch_up_window_seconds
    beyond = {i for i in late if window is not None and now - due[i] > window}
    eligible = late - beyond
    if runs.catch_up is CatchUp.ALL:
        caught = set(eligible)
    elif runs.catch_up is CatchUp.LATEST:
        caught = {max(eligible)} if eligible and not on_time else set()
    else:
        caught = set()
    return Decided(
        considered=max(new) if new else cursor,
        on_time=frozenset(on_time),
        caught_up=frozenset(caught),
        left=frozenset(late - caught),
        beyond_window=frozenset(beyond),
    )


# ----------------------------------------------------------------------------- simulation

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]
#: (cron, typical spacing of its occurrences in seconds)
CRONS = [
    ("* * * * *", 60),
    ("*/15 * * * *", 900),
    ("0 * * * *", HOUR),
    ("30 1 * * *", 24 * HOUR),
    ("0 2 * * 0", 7 * 24 * HOUR),
]


@functools.cache
def transitions(zone: str) -> tuple[int, ...]:
    """The instants of 2024 at which ``zone`` changes its UTC offset (to the hour)."""
    tz = ZoneInfo(zone)
    first = epoch(utc(2024, 1, 1))
    out: list[int] = []
    previous = datetime.fromtimestamp(first, tz).utcoffset()
    for h in range(1, 366 * 24):
        at = first + h * HOUR
        offset = datetime.fromtimestamp(at, tz).utcoffset()
        if offset != previous:
            out.append(at)
            previous = offset
    return tuple(out)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    cron, unit = draw(st.sampled_from(CRONS))
    zone = draw(st.sampled_from(ZONES))
    changes = transitions(zone)
    if changes and draw(st.booleans()):
        # Start shortly before an offset change, so the passes walk across it.
        start = draw(st.sampled_from(changes)) - draw(st.integers(0, 6 * unit))
    else:
        start = draw(st.integers(epoch(utc(2024, 1, 1)), epoch(utc(2024, 12, 1))))
    start -= draw(st.sampled_from([0, 0, start % 60]))  # whole minutes, or any second
    end = None
    if draw(st.integers(0, 4)) == 0:
        end = start + draw(st.integers(unit, 30 * unit))
    created = start + draw(st.one_of(st.integers(-3 * unit, 3 * unit), st.integers(0, 25 * unit)))
    delay = draw(st.sampled_from([0, 0, 1, 59, unit // 2, unit, 2 * unit]))
    deadline = draw(st.sampled_from([0, 1, 300, unit // 2, unit, 3 * unit]))
    window = draw(st.sampled_from([None, None, 1, unit // 2, unit, 3 * unit, 10 * unit]))
    policy = draw(st.sampled_from(list(CatchUp)))
    short = st.integers(0, 2 * unit)
    downtime = st.integers(2 * unit, 15 * unit)
    passes = draw(
        st.lists(
            st.tuples(st.one_of(short, short, downtime), st.integers(0, 5).map(lambda n: n == 0)),
            min_size=2,
            max_size=16,
        )
    )
    return {
        "cron": cron,
        "zone": zone,
        "start": start,
        "end": end,
        "created": created,
        "runs": ScheduledRuns(
            delay_seconds=delay,
            starting_deadline_seconds=deadline,
            catch_up=policy,
            catch_up_window_seconds=window,
        ),
        "passes": passes,
    }


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_take_on_matches_the_definitions(sc: dict[str, Any]) -> None:
    """Random schedules, zones, start/creation times, passes with downtime and suspensions.

    Each pass agrees with the brute-force reference; over the whole run every partition up to
    the cursor is decided exactly once (scheduled or missed, never both), never before it is
    due, never in a suspended pass, and the cursor never goes back.
    """
    timeline = space(sc["cron"], sc["zone"], sc["start"], end=sc["end"])
    runs: ScheduledRuns = sc["runs"]
    created: int = sc["created"]
    times: list[tuple[int, bool]] = []
    now = created
    for gap, suspend in sc["passes"]:
        now += gap
        times.append((now, suspend))
    due = due_times(timeline, sc["end"], runs.delay_seconds, times[-1][0])
    assert len(due) < 5_000  # the scenario stays small

    previous = ScheduleStatus()
    cursor = -1
    decided_in: dict[int, int] = {}  # index -> the pass that decided it
    want_scheduled: set[int] = set()
    want_missed: set[int] = set()
    seen = {"on time": 0, "caught up": 0, "left": 0, "beyond window": 0}
    for number, (now, suspend) in enumerate(times):
        pass_runs = runs.model_copy(update={"suspend": suspend})
        got = take_on(pass_runs, previous, timeline, now, created)
        want = reference_pass(due, cursor, now, created, pass_runs)
        where = f"pass {number} at {rfc(now)} (suspend={suspend}, cursor {cursor})"

        assert set(got.on_time) == want.on_time, where
        assert set(got.caught_up) == want.caught_up, where
        assert set(got.left) == want.left, where
        assert set(got.beyond_window) == want.beyond_window, where
        assert (got.considered if got.considered is not None else -1) == want.considered, where

        news = got.on_time.union(got.caught_up).union(got.left)
        assert got.changed == bool(news)
        assert len(news) == len(got.on_time) + len(got.caught_up) + len(got.left), where
        assert got.beyond_window.difference(got.left) == IndexSet(), where  # never run
        if suspend:
            assert not news, f"{where}: a suspended pass decided {news}"
            assert got.considered == previous.considered
        for i in news:
            assert i not in decided_in, f"{where}: {i} decided again (pass {decided_in[i]})"
            decided_in[i] = number
            assert due[i] <= now, f"{where}: {i} decided before it is due ({rfc(due[i])})"
        new_cursor = -1 if got.considered is None else got.considered
        assert new_cursor >= cursor, where
        cursor = new_cursor

        want_scheduled |= want.on_time | want.caught_up
        want_missed |= want.left
        assert set(got.scheduled) == want_scheduled, where
        assert set(got.missed) == want_missed, where
        assert not got.scheduled.intersection(got.missed), where
        assert got.scheduled.union(got.missed) == (
            IndexSet.from_range(0, cursor) if cursor >= 0 else IndexSet()
        ), where
        assert sorted(decided_in) == list(range(cursor + 1)), where
        previous = status_of(got)
        for name, got_set in zip(
            seen, [got.on_time, got.caught_up, got.left, got.beyond_window], strict=True
        ):
            seen[name] += len(got_set)

    for name, kind in seen.items():
        event(f"{name}: {'some' if kind else 'none'}")
    if due and any(due[0] <= t <= due[-1] for t in transitions(sc["zone"])):
        event("across an offset change")
    last_now, last_suspended = times[-1]
    if not last_suspended:
        # Every partition due by the last (unsuspended) pass has been decided.
        assert cursor == len([d for d in due if d <= last_now]) - 1


# -------------------------------------------------------------------- the examples

#: Ten hourly windows complete at 10:00: partitions 0..9 (00:00-01:00 ... 09:00-10:00).
START = utc(2024, 6, 1, 0, 0)
TEN = utc(2024, 6, 1, 10, 0)


def hourly(now: datetime, *, end: datetime | None = None) -> TimePartitions:
    bound = None if end is None else epoch(end)
    return space("0 * * * *", "UTC", epoch(START), end=bound, now=epoch(now))


def runs_with(**kw: Any) -> ScheduledRuns:
    return ScheduledRuns.model_validate(kw)


@pytest.mark.parametrize(
    ("policy", "taken", "left"),
    [
        ("All", IndexSet.from_range(0, 9), IndexSet()),
        ("Latest", IndexSet.from_indices([9]), IndexSet.from_range(0, 8)),
        ("None", IndexSet(), IndexSet.from_range(0, 9)),
    ],
)
@pytest.mark.parametrize("bounded", [False, True])
def test_created_ten_windows_after_start(
    policy: str, taken: IndexSet, left: IndexSet, bounded: bool
) -> None:
    """Created after 10 windows closed: all 10 are missed; the policy decides which run."""
    created = TEN + timedelta(seconds=10)  # partition 9 was due at 10:00, before creation
    now = TEN + timedelta(minutes=5) if not bounded else utc(2024, 6, 2)
    timeline = hourly(now, end=TEN if bounded else None)
    take = take_on(
        runs_with(catchUp=policy), ScheduleStatus(), timeline, epoch(now), epoch(created)
    )
    assert take.considered == 9
    assert take.on_time == IndexSet()
    assert take.caught_up == taken
    assert take.scheduled == taken
    assert take.left == take.missed == left
    assert take.beyond_window == IndexSet()
    assert take.changed
    # The next pass, an hour later, finds nothing new (bounded) or one on-time partition.
    later = epoch(now) + HOUR
    again = take_on(
        runs_with(catchUp=policy, startingDeadlineSeconds=HOUR),
        status_of(take),
        hourly(now + timedelta(hours=1), end=TEN if bounded else None),
        later,
        epoch(created),
    )
    if bounded:
        assert not again.changed and again.considered == 9
    else:
        assert again.on_time == IndexSet.from_indices([10])
        assert again.scheduled == taken.add(10)
    assert again.missed == left


def test_latest_takes_nothing_when_an_on_time_partition_came_due() -> None:
    """Created exactly when partition 9 came due: 9 is on time, 0..8 missed, Latest runs none."""
    take = take_on(
        runs_with(catchUp="Latest"), ScheduleStatus(), hourly(TEN), epoch(TEN), epoch(TEN)
    )
    assert take.on_time == take.scheduled == IndexSet.from_indices([9])
    assert take.caught_up == IndexSet()
    assert take.missed == IndexSet.from_range(0, 8)


def test_catch_up_window_of_three_and_a_half_hours() -> None:
    """All within 3.5 h: due 07:00..10:00 are run (4), due 01:00..06:00 are beyond (6)."""
    created = TEN + timedelta(seconds=10)
    now = TEN + timedelta(seconds=30)
    take = take_on(
        runs_with(catchUp="All", catchUpWindowSeconds=3 * HOUR + 1800),
        ScheduleStatus(),
        hourly(now),
        epoch(now),
        epoch(created),
    )
    # Partition i is due at (i + 1):00; beyond the window when due before 06:30:30.
    assert take.caught_up == take.scheduled == IndexSet.from_range(6, 9)
    assert take.beyond_window == take.left == take.missed == IndexSet.from_range(0, 5)
    assert len(take.caught_up) == 4


def test_downtime_within_starting_deadline_is_on_time() -> None:
    """The job existed all along; the first pass is 4 min after 09:00-10:00 closed (deadline 5)."""
    now = TEN + timedelta(minutes=4)
    take = take_on(
        runs_with(catchUp="None"), ScheduleStatus(), hourly(now), epoch(now), epoch(START)
    )
    assert take.on_time == IndexSet.from_indices([9])
    assert take.missed == IndexSet.from_range(0, 8)


def test_ten_thousand_missed_minutes_in_one_pass() -> None:
    """All: one pass takes on 10,000 missed minutely partitions; the sets stay one interval."""
    start = epoch(START)
    now = start + 10_000 * 60 + 7
    timeline = space("* * * * *", "UTC", start, now=now)
    take = take_on(runs_with(catchUp="All"), ScheduleStatus(), timeline, now, now)
    assert take.considered == 9_999
    assert take.caught_up == take.scheduled == IndexSet.from_range(0, 9_999)
    assert len(take.scheduled) == 10_000
    assert str(take.scheduled) == "0-9999"
    assert str(take.missed) == ""
    # None leaves them all, also as one interval.
    none = take_on(runs_with(catchUp="None"), ScheduleStatus(), timeline, now, now)
    assert str(none.missed) == "0-9999" and str(none.scheduled) == ""


def test_suspended_pass_keeps_the_cursor_and_resume_misses() -> None:
    """Windows closing while suspended are decided on resume, as missed ones."""
    created = epoch(START)
    first = take_on(runs_with(), ScheduleStatus(), hourly(TEN), epoch(START) + 3 * HOUR, created)
    assert first.on_time == IndexSet.from_indices([2]) and first.considered == 2
    paused = take_on(runs_with(suspend=True), status_of(first), hourly(TEN), epoch(TEN), created)
    assert paused == TakeOn(2, first.scheduled, first.missed)
    resumed = take_on(
        runs_with(catchUp="None"), status_of(paused), hourly(TEN), epoch(TEN), created
    )
    assert resumed.on_time == IndexSet.from_indices([9])
    assert resumed.left == IndexSet.from_range(3, 8)


# ------------------------------------------------------------------------------- plan_runs


def pj_spec(**runs: Any) -> PartitionedJobSpec:
    return PartitionedJobSpec.model_validate(
        {
            "partitions": {"schedule": {"cron": "0 * * * *", "start": "2024-06-01T00:00:00Z"}},
            "jobTemplate": TEMPLATE,
            "runs": runs,
        }
    )


#: Five windows closed at 05:00; the job existed all along, so 0..3 are missed (deadline 5 min)
#: and 4 is on time: with catchUp All the schedule takes on 0..4.
NOW = utc(2024, 6, 1, 5, 0, 30)


def judged(spec: PartitionedJobSpec, ledger: PartitionLedger | None = None) -> RunsVerdict:
    fingerprint = hourly(NOW).fingerprint
    status = PartitionedJobStatus(partitioning=fingerprint, ledger=ledger or PartitionLedger())
    rv = judge_runs(
        PartitionedJobView("pj", spec, status),
        namespace="ns",
        uid=UID,
        generation=1,
        created=START,
        now=NOW,
        template_hash="hash",
    )
    assert rv is not None
    assert rv.take.scheduled == IndexSet.from_range(0, 4)
    return rv


def failed_job(rv: RunsVerdict, index: int, finished: datetime) -> ObservedJob:
    return ObservedJob(
        name=f"pj-{index}-1",
        index=index,
        attempt=1,
        key=rv.space.format_key(rv.space.occurrences(index, 1)[0]),
        state=JobState.FAILED,
        owned=True,
        start_time=finished - timedelta(minutes=1),
        finish_time=finished,
        message="BackoffLimitExceeded: Job has reached the specified backoff limit",
        run=SCHEDULE_RUN,
        run_uid=UID,
        partitioning=rv.space.fingerprint,
    )


def launched(decision: Decision) -> list[tuple[int, int]]:
    return [(r.index, r.attempt) for r in decision.launches]


RETRIES = {"limit": 2, "backoffSeconds": 600}


def test_forbid_launches_nothing_new_while_a_partition_waits_to_retry() -> None:
    rv = judged(pj_spec(concurrencyPolicy="Forbid", retries=RETRIES))
    jobs = [failed_job(rv, 0, NOW - timedelta(seconds=60))]  # retry at 05:09:30
    decision = plan_runs(rv, jobs)
    assert decision.state is not None
    assert decision.state.retrying == IndexSet.from_indices([0])
    assert launched(decision) == []
    assert decision.requeue_after_seconds == 540
    assert decision.claim is not None and decision.claim.desired == decision.claim.active == 0


def test_forbid_starts_the_due_retry_itself() -> None:
    rv = judged(pj_spec(concurrencyPolicy="Forbid", retries=RETRIES))
    jobs = [failed_job(rv, 0, NOW - timedelta(seconds=700))]  # retry due at 05:00:20
    assert launched(plan_runs(rv, jobs)) == [(0, 2)]


@pytest.mark.parametrize(
    ("concurrency", "expected"), [(1, [(1, 1)]), (3, [(1, 1), (2, 1), (3, 1)])]
)
def test_allow_launches_new_partitions_while_one_waits_to_retry(
    concurrency: int, expected: list[tuple[int, int]]
) -> None:
    rv = judged(pj_spec(concurrencyPolicy="Allow", concurrency=concurrency, retries=RETRIES))
    assert rv.runs.concurrency_policy is ConcurrencyPolicy.ALLOW
    jobs = [failed_job(rv, 0, NOW - timedelta(seconds=60))]
    decision = plan_runs(rv, jobs)
    assert decision.state is not None and decision.state.retrying == IndexSet.from_indices([0])
    assert launched(decision) == expected


@pytest.mark.parametrize("policy", ["Allow", "Forbid"])
def test_forbid_without_retries_waiting_launches_in_order(policy: str) -> None:
    decision = plan_runs(judged(pj_spec(concurrencyPolicy=policy)), [])
    assert launched(decision) == [(0, 1)]


@pytest.mark.parametrize("policy", ["Allow", "Forbid"])
def test_partitions_in_the_ledger_are_skipped_not_launched(policy: str) -> None:
    """A partition some run already recorded an outcome for is skipped (reprocess: Missing)."""
    extra = {"concurrency": 10} if policy == "Allow" else {}
    rv = judged(
        pj_spec(concurrencyPolicy=policy, **extra),
        ledger=PartitionLedger(succeeded="0-1", failed="3"),
    )
    decision = plan_runs(rv, [])
    assert decision.state is not None
    assert decision.state.skipped == IndexSet.from_indices([0, 1, 3])
    assert decision.state.pending == IndexSet.from_indices([2, 4])
    want = [(2, 1), (4, 1)] if policy == "Allow" else [(2, 1)]
    assert launched(decision) == want


def test_judge_runs_ignores_a_status_of_another_numbering() -> None:
    spec = pj_spec()
    view = PartitionedJobView("pj", spec, PartitionedJobStatus(partitioning="other"))
    kw: dict[str, Any] = {
        "namespace": "ns",
        "uid": UID,
        "generation": 1,
        "created": START,
        "now": NOW,
        "template_hash": "hash",
    }
    assert judge_runs(view, **kw) is None
    stale = PartitionedJobStatus(
        partitioning=hourly(NOW).fingerprint,
        runs=ScheduleStatus(partitioning="other", considered=2, scheduled="0-2"),
    )
    rv = judge_runs(PartitionedJobView("pj", spec, stale), **kw)
    assert rv is not None and rv.previous == ScheduleStatus()
    assert rv.take.scheduled == IndexSet.from_range(0, 4)


def stepped_pj_spec(**runs: Any) -> PartitionedJobSpec:
    return PartitionedJobSpec.model_validate(
        {
            "partitions": {"schedule": {"cron": "0 * * * *", "start": "2024-06-01T00:00:00Z"}},
            "steps": [
                {"name": "extract", "jobTemplate": TEMPLATE},
                {
                    "name": "load",
                    "dependsOn": ["extract"],
                    "dependsOnPast": True,
                    "jobTemplate": TEMPLATE,
                },
            ],
            "runs": runs,
        }
    )


def test_the_schedule_runs_every_step_in_order() -> None:
    """A job with steps: the schedule starts each partition's first step, then the next."""
    rv = judged(stepped_pj_spec(concurrency=10))
    assert rv.verdict.steps == ("extract", "load")
    decision = plan_runs(rv, [])
    assert [(r.step, r.index) for r in decision.launches] == [("extract", i) for i in range(5)]
    extract_done = [
        ObservedJob(
            name=f"x-{i}",
            index=i,
            attempt=1,
            key=r.key,
            state=JobState.SUCCEEDED,
            owned=True,
            start_time=NOW,
            finish_time=NOW,
            run=SCHEDULE_RUN,
            run_uid=UID,
            step="extract",
        )
        for i, r in enumerate(decision.launches)
    ]
    # load has dependsOnPast: the schedule's first partition needs no past (ignored for the
    # first one it takes on), the later ones wait for the previous partition's load.
    after = plan_runs(rv, extract_done)
    assert [(r.step, r.index) for r in after.launches] == [("load", 0)]
    assert after.ledger is not None and after.ledger.job_steps == ("extract", "load")
    status = compose_runs_status(
        rv, after, after.launches, ledger=rv.verdict.partitioned_job.status
    )
    assert [s.name for s in status.steps] == ["extract", "load"]
    assert status.steps[0].counts.succeeded == 5 and status.steps[1].counts.running == 1


@pytest.mark.parametrize("policy", ["Allow", "Forbid"])
def test_catch_up_runs_in_batches_of_the_jobs_partitions_per_job(policy: str) -> None:
    """spec.partitionsPerJob applies to the schedule's catch-up: 0..4 in Jobs of 3 and 2."""
    spec = pj_spec(concurrencyPolicy=policy, **({"concurrency": 2} if policy == "Allow" else {}))
    spec = spec.model_copy(update={"partitions_per_job": 3})
    decision = plan_runs(judged(spec), [])
    batches = [(r.index, r.count) for r in decision.launches]
    assert batches == ([(0, 3), (3, 2)] if policy == "Allow" else [(0, 3)])
