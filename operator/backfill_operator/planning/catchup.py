"""Which due partitions a schedule takes on: on time, missed, caught up (pure).

The rules (``docs/usage.md``, "Scheduled runs"): partition ``i`` is *due* at ``end_i +
delaySeconds``; the cursor ``status.runs.considered`` says every partition up to it has been
decided on, once. :func:`take_on` decides the partitions due since the cursor:

* a partition is **missed** when it was due before the PartitionedJob was created, or more
  than ``startingDeadlineSeconds`` before ``now`` (the operator was down, the schedule was
  suspended: CronJob's rule); otherwise it is **on time** and runs;
* missed partitions go to the catch-up policy: ``All`` runs every one due within
  ``catchUpWindowSeconds`` (Temporal's catchup window), ``Latest`` runs only the most recent
  one (none when an on-time partition came due in the same pass), ``None`` runs none;
* the ones not run are recorded (``status.runs.missedSet``) and reported until some run
  records an outcome for them: never dropped silently.

Due times increase with the index, so each class is an index range found with a few
:meth:`Timeline.last_index_at` calls: deciding 10,000 or 1,000,000 missed partitions costs the
same as deciding one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..api.model import CatchUp, ScheduledRuns, ScheduleStatus
from .ranges import IndexSet

__all__ = ["TakeOn", "Timeline", "take_on"]


class Timeline(Protocol):
    """The partition windows a schedule walks (:class:`~.schedule.TimePartitions` is one)."""

    def last_index_at(self, epoch: int) -> int | None:
        """Highest index whose window ends at or before ``epoch`` (seconds), or None."""

    def window_of(self, index: int) -> tuple[int, int] | None:
        """``(start, end)`` of partition ``index`` in epoch seconds, or None if it never ends."""


@dataclass(frozen=True)
class TakeOn:
    """What one pass decided about the partitions that came due since the cursor.

    ``considered``/``scheduled``/``missed`` are the new cumulative values for the status;
    ``on_time``, ``caught_up`` (missed, run by the policy) and ``left`` (missed, not run; of
    them ``beyond_window`` are older than ``catchUpWindowSeconds``) are this pass's news.
    """

    considered: int | None
    scheduled: IndexSet
    missed: IndexSet
    on_time: IndexSet = field(default_factory=IndexSet)
    caught_up: IndexSet = field(default_factory=IndexSet)
    left: IndexSet = field(default_factory=IndexSet)
    beyond_window: IndexSet = field(default_factory=IndexSet)

    @property
    def changed(self) -> bool:
        """True when partitions were decided on in this pass."""
        return bool(self.on_time or self.caught_up or self.left)


def _upto(timeline: Timeline, due_before: int, delay: int) -> int:
    """Highest index due strictly before ``due_before`` (epoch seconds), -1 for none."""
    found = timeline.last_index_at(due_before - delay - 1)
    return -1 if found is None else found


def take_on(
    runs: ScheduledRuns,
    previous: ScheduleStatus,
    timeline: Timeline,
    now: int,
    created: int,
) -> TakeOn:
    """Decide the partitions due in ``(considered, now]`` by the rules of the module doc.

    ``now`` and ``created`` (the PartitionedJob's creationTimestamp) are epoch seconds. A
    suspended schedule decides nothing (the cursor stays: windows closing meanwhile are
    decided on resume, as missed ones). Sets are global partition indices.
    """
    scheduled = IndexSet.parse(previous.scheduled)
    missed = IndexSet.parse(previous.missed_set)
    cursor = -1 if previous.considered is None else previous.considered
    unchanged = TakeOn(previous.considered, scheduled, missed)
    if runs.suspend:
        return unchanged
    delay = runs.delay_seconds
    last = timeline.last_index_at(now - delay)
    if last is None or last <= cursor:
        return unchanged
    new = IndexSet.from_range(cursor + 1, last)
    late_before = max(created, now - runs.starting_deadline_seconds)
    missed_upto = min(last, _upto(timeline, late_before, delay))
    late = new.clip(cursor + 1, missed_upto) if missed_upto > cursor else IndexSet()
    on_time = new.difference(late)
    beyond = IndexSet()
    if runs.catch_up_window_seconds is not None and late:
        beyond_upto = _upto(timeline, now - runs.catch_up_window_seconds, delay)
        if beyond_upto > cursor:
            beyond = late.clip(cursor + 1, beyond_upto)
    eligible = late.difference(beyond)
    if runs.catch_up is CatchUp.ALL:
        caught = eligible
    elif runs.catch_up is CatchUp.LATEST and not on_time and eligible:
        caught = IndexSet.from_indices([eligible.last()])
    else:
        caught = IndexSet()
    left = late.difference(caught)
    return TakeOn(
        considered=last,
        scheduled=scheduled.union(on_time).union(caught),
        missed=missed.union(left),
        on_time=on_time,
        caught_up=caught,
        left=left,
        beyond_window=beyond,
    )
