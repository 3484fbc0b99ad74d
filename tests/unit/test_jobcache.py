"""The Job cache: watch events, own creations, trust windows and LIST reconciliation."""

from __future__ import annotations

from typing import Any

from backfill_operator.api import labels
from backfill_operator.controller.jobcache import TOMBSTONE_SECONDS, TRUST_SECONDS, JobCache

NS = "team"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def job(name: str, *, uid: str = "", done: bool = False, pj: str = "pj") -> dict[str, Any]:
    status: dict[str, Any] = {"active": 1}
    if done:
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": uid or f"uid-{name}",
            "labels": {labels.LABEL_PARTITIONED_JOB: pj},
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"suspend": False, "template": {"spec": {"containers": []}}},
        "status": status,
    }


class Lister:
    """A LIST of the apiserver: returns ``items``, counts calls, may run ``during`` meanwhile."""

    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = list(items)
        self.calls = 0
        self.during: Any = None

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.during is not None:
            self.during()
        return list(self.items)


def names(jobs: list[dict[str, Any]]) -> list[str]:
    return sorted(j["metadata"]["name"] for j in jobs)


def done(jobs: list[dict[str, Any]], name: str) -> bool:
    (found,) = [j for j in jobs if j["metadata"]["name"] == name]
    return bool(found["status"].get("conditions"))


def test_lists_first_then_trusts_the_watch_for_a_while() -> None:
    clock = Clock()
    cache = JobCache(clock)
    lister = Lister(job("a"))
    assert names(cache.jobs(NS, "pj", lister)) == ["a"] and lister.calls == 1
    cache.observe("ADDED", job("b"))
    cache.observe("MODIFIED", job("a", done=True))
    seen = cache.jobs(NS, "pj", lister)
    assert names(seen) == ["a", "b"] and done(seen, "a") and lister.calls == 1
    cache.observe("DELETED", job("b"))
    assert names(cache.jobs(NS, "pj", lister)) == ["a"]
    clock.now += TRUST_SECONDS + 1
    cache.jobs(NS, "pj", lister)
    assert lister.calls == 2


def test_only_the_read_fields_are_kept() -> None:
    cache = JobCache(Clock())
    (kept,) = cache.jobs(NS, "pj", Lister(job("a")))
    assert "managedFields" not in kept["metadata"] and "template" not in kept["spec"]
    assert kept["spec"] == {"suspend": False} and kept["status"] == {"active": 1}


def test_selectors_are_apart_and_unlabelled_jobs_ignored() -> None:
    cache = JobCache(Clock())
    cache.jobs(NS, "pj", Lister())
    cache.jobs(NS, "other", Lister())
    cache.observe("ADDED", job("x", pj="other"))
    stray = job("y")
    del stray["metadata"]["labels"]
    cache.observe("ADDED", stray)
    assert cache.jobs(NS, "pj", Lister()) == []
    assert names(cache.jobs(NS, "other", Lister())) == ["x"]
    assert len(cache) == 1


def test_own_creations_show_before_their_events_and_never_undo_them() -> None:
    cache = JobCache(Clock())
    cache.jobs(NS, "pj", Lister())
    cache.created(job("a"))
    assert names(cache.jobs(NS, "pj", Lister())) == ["a"]
    # the watch was faster than the create response: its newer state stands
    cache.observe("ADDED", job("b"))
    cache.observe("MODIFIED", job("b", done=True))
    cache.created(job("b"))
    assert done(cache.jobs(NS, "pj", Lister()), "b")
    # seen deleted before the response came back: not brought back
    cache.observe("DELETED", job("c"))
    cache.created(job("c"))
    assert names(cache.jobs(NS, "pj", Lister())) == ["a", "b"]
    # a Job of that name created again (another uid) is new
    cache.created(job("c", uid="second"))
    assert names(cache.jobs(NS, "pj", Lister())) == ["a", "b", "c"]


def test_tombstones_expire() -> None:
    clock = Clock()
    cache = JobCache(clock)
    cache.jobs(NS, "pj", Lister())
    cache.observe("DELETED", job("a"))
    clock.now += TOMBSTONE_SECONDS + 1
    cache.observe("DELETED", job("b"))  # pruning happens on deletions
    cache.created(job("a"))
    assert names(cache.jobs(NS, "pj", Lister())) == ["a"]


def test_a_list_drops_ghosts_and_refreshes_older_entries_but_keeps_newer_ones() -> None:
    clock = Clock()
    cache = JobCache(clock)
    cache.jobs(NS, "pj", Lister())
    cache.observe("ADDED", job("ghost"))  # deleted while the watch was away
    cache.observe("ADDED", job("stale"))  # ended while the watch was away
    clock.now += TRUST_SECONDS + 1
    lister = Lister(job("stale", done=True), job("unseen"))

    def meanwhile() -> None:
        clock.now += 0.5
        cache.observe("ADDED", job("new"))  # created while the LIST ran

    lister.during = meanwhile
    seen = cache.jobs(NS, "pj", lister)
    assert names(seen) == ["new", "stale", "unseen"]
    assert done(seen, "stale")


def test_a_relist_or_a_distrust_makes_the_next_pass_list() -> None:
    cache = JobCache(Clock())
    lister = Lister()
    cache.jobs(NS, "pj", lister)
    cache.observe(None, job("a"))  # kopf re-lists after a 410: deletions may be missed
    cache.jobs(NS, "pj", lister)
    assert lister.calls == 2
    cache.jobs(NS, "pj", lister)
    assert lister.calls == 2
    cache.distrust()
    cache.jobs(NS, "pj", lister)
    assert lister.calls == 3
