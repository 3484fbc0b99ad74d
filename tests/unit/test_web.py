"""kubectl backfill ui without a cluster: the grid documents (positions, labels, rows), the
request checks and headers, the Launch form's parsing, and the ``guard`` middleware through a
real aiohttp server on 127.0.0.1 serving a stand-in for :class:`~backfill_operator.cli.web.
service.Ui` (no Kubernetes)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from backfill_operator.api.model import MAX_CONCURRENCY, Order, Reprocess
from backfill_operator.cli.coverage import coverage_of
from backfill_operator.cli.errors import CliError
from backfill_operator.cli.web import data, security, server
from backfill_operator.cli.web.views import LaunchForm, backfill_row, parse_launch
from backfill_operator.planning.ranges import IndexSet

T = TypeVar("T")


def iset(text: str) -> IndexSet:
    return IndexSet.parse(text)


# ------------------------------------------------------------------ positions and selections

# A drawn set with gaps: positions 0-4 are 10-14, 5 is 20, 6-15 are 30-39.
GAPPY = iset("10-14,20,30-39")


def test_positions_of_a_contiguous_drawn_set() -> None:
    drawn = iset("100-199")
    members = iset("90-105,150,198-250")
    positions = data.to_positions(members, drawn)
    assert positions == iset("0-5,50,98-99")
    assert data.selection_of(positions, drawn) == iset("100-105,150,198-199")
    assert data.to_positions(iset("0-99,200-300"), drawn) == IndexSet()
    # positions past the last one are dropped, the first one maps to the offset
    assert data.selection_of(iset("0,99,100-500"), drawn) == iset("100,199")


def test_positions_of_a_drawn_set_with_gaps() -> None:
    members = iset("0-12,15-20,31,35,40-50")
    positions = data.to_positions(members, GAPPY)
    assert positions == iset("0-2,5,7,11")
    assert data.selection_of(positions, GAPPY) == iset("10-12,20,31,35")
    # one run of positions crossing both gaps of the drawn set
    assert data.to_positions(iset("12-31"), GAPPY) == iset("2-7")
    assert data.selection_of(iset("4-6"), GAPPY) == iset("14,20,30")
    assert data.selection_of(iset("0-15"), GAPPY) == GAPPY
    # out of range: only position 15 (index 39) is inside
    assert data.selection_of(iset("15-20,1000"), GAPPY) == iset("39")
    assert data.selection_of(iset("16-1000"), GAPPY) == IndexSet()


def test_positions_of_an_empty_drawn_set() -> None:
    assert data.to_positions(iset("0-10"), IndexSet()) == IndexSet()
    assert data.selection_of(iset("0-10"), IndexSet()) == IndexSet()
    assert data.to_positions(IndexSet(), GAPPY) == IndexSet()
    assert data.selection_of(IndexSet(), GAPPY) == IndexSet()


# Clustered sets (runs of indices) or scattered ones, at a small or a huge offset.
_runs = st.lists(st.tuples(st.integers(0, 400), st.integers(1, 30)), max_size=12).map(
    lambda rs: {i for lo, n in rs for i in range(lo, lo + n)}
)
_scattered = st.sets(st.integers(0, 430), max_size=60)
_members = st.one_of(_runs, _scattered)
_offsets = st.sampled_from([0, 7, 10**12])


@settings(max_examples=200, deadline=None)
@given(drawn_py=_members, members_py=_members, offset=_offsets, extra=st.integers(0, 50))
def test_positions_round_trip(
    drawn_py: set[int], members_py: set[int], offset: int, extra: int
) -> None:
    drawn = IndexSet.from_indices(i + offset for i in drawn_py)
    members = IndexSet.from_indices(i + offset for i in members_py)
    inside = members & drawn
    positions = data.to_positions(members, drawn)
    # independent oracle: the ranks of the members in the sorted drawn set
    ordered = sorted(i + offset for i in drawn_py)
    expected = {p for p, index in enumerate(ordered) if index - offset in members_py}
    assert positions == IndexSet.from_indices(expected)
    assert len(positions) == len(inside)
    assert data.selection_of(positions, drawn) == inside
    # positions outside 0 .. len(drawn) - 1 are dropped
    n = len(drawn)
    beyond = IndexSet.from_range(n, n + extra)
    assert data.selection_of(positions | beyond, drawn) == inside
    assert data.selection_of(beyond, drawn) == IndexSet()


# ------------------------------------------------------------------------------ label keys


def key(position: int) -> str:
    return f"k{position}"


def test_label_keys_without_doubling() -> None:
    assert data.label_keys(key, 10, 3) == (3, ["k0", "k3", "k6", "k9"])
    step, labels = data.label_keys(key, data.LABEL_TARGET, 1)
    assert step == 1
    assert labels == [key(p) for p in range(data.LABEL_TARGET)]


def test_label_keys_double_the_step() -> None:
    step, labels = data.label_keys(key, data.LABEL_TARGET + 1, 1)
    assert step == 2
    assert len(labels) == data.LABEL_TARGET // 2 + 1
    # 1,000,000 cells in lines of 100: 10,000 lines, doubled to 800 cells per label
    step, labels = data.label_keys(key, 1_000_000, 100)
    assert step == 800
    assert len(labels) == 1_250
    assert labels[:3] == ["k0", "k800", "k1600"]
    assert labels[-1] == key(1_249 * 800)


@given(count=st.integers(0, 10**7), every=st.integers(1, 5_000))
def test_label_keys_property(count: int, every: int) -> None:
    step, labels = data.label_keys(key, count, every)
    doublings = math.log2(step / every)
    assert doublings == int(doublings) and doublings >= 0
    assert len(labels) <= data.LABEL_TARGET
    assert labels == [key(p) for p in range(0, count, step)]
    # the smallest such step: half of it would give too many labels
    if step > every:
        assert math.ceil(count / (step // 2)) > data.LABEL_TARGET


def test_label_keys_of_nothing() -> None:
    def never(position: int) -> str:
        raise AssertionError(f"key_at({position}) called for an empty grid")

    assert data.label_keys(never, 0, 7) == (7, [])


@pytest.mark.parametrize("every", [0, -1, -100])
def test_label_keys_refuse_a_step_below_one(every: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        data.label_keys(key, 10, every)


# --------------------------------------------------------------------------- grid document


def test_grid_document_of_a_drawn_set_with_gaps() -> None:
    rows = [
        data.GridRow(
            "",
            {
                "succeeded": iset("10-12"),
                "failed": iset("5,20"),  # 5 is not drawn
                "running": iset("35"),
                "queued": IndexSet(),  # empty: absent from the document
            },
        ),
        data.GridRow("load", {"waiting": iset("30-39"), "marked": iset("14")}),
    ]
    generated = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)
    doc = data.grid_document(
        drawn=GAPPY,
        rows=rows,
        key_at=key,
        columns=4,
        note="a note",
        time_based=False,
        generated=generated,
    )
    assert doc == {
        "count": 16,
        "offset": 10,
        "contiguous": False,
        "columns": 4,
        "labelEvery": 4,
        "labels": ["k0", "k4", "k8", "k12"],
        "first": "k0",
        "last": "k15",
        "timeBased": False,
        "note": "a note",
        "generated": "2024-11-01T12:00:00+00:00",
        "rows": [
            {"name": "", "sets": {"succeeded": "0-2", "failed": "5", "running": "11"}},
            {"name": "load", "sets": {"waiting": "6-15", "marked": "4"}},
        ],
    }
    # the sets follow the legend's order, and the document is JSON
    assert list(doc["rows"][0]["sets"]) == ["succeeded", "failed", "running"]
    assert list(doc["rows"][1]["sets"]) == ["waiting", "marked"]
    assert json.loads(json.dumps(doc)) == doc


def test_grid_document_of_a_contiguous_drawn_set() -> None:
    drawn = iset("1000-1999")
    rows = [data.GridRow("", {"failed": iset("1500")})]
    doc = data.grid_document(drawn=drawn, rows=rows, key_at=key, columns=100)
    assert doc["count"] == 1000
    assert doc["offset"] == 1000
    assert doc["contiguous"] is True
    assert doc["labelEvery"] == 100
    assert doc["labels"] == [key(p) for p in range(0, 1000, 100)]
    assert (doc["first"], doc["last"]) == ("k0", "k999")
    assert doc["timeBased"] is True
    assert doc["note"] is None
    assert doc["generated"] is None
    assert doc["rows"] == [{"name": "", "sets": {"failed": "500"}}]


def test_grid_document_of_an_empty_drawn_set() -> None:
    doc = data.grid_document(
        drawn=IndexSet(), rows=[], key_at=str, columns=100, note="no partition is complete yet"
    )
    assert doc["count"] == 0
    assert doc["offset"] is None
    assert doc["first"] is None
    assert doc["last"] is None
    assert doc["labels"] == []
    assert doc["rows"] == []
    assert doc["note"] == "no partition is complete yet"


def test_grid_document_labels_a_million_partitions() -> None:
    drawn = IndexSet.from_range(5, 1_000_004)
    doc = data.grid_document(drawn=drawn, rows=[], key_at=key, columns=100)
    assert doc["labelEvery"] == 800
    assert len(doc["labels"]) == 1_250
    assert doc["labels"][7] == key(7 * 800)
    assert doc["last"] == key(999_999)


# ---------------------------------------------------------------------------- grid rows


def test_rows_of_coverage_without_steps() -> None:
    complete = iset("0-9")
    cov = coverage_of(complete, (iset("0-2"), iset("3-4")), (iset("4-5"), iset("6")))
    assert cov.missing == iset("7-9")
    rows = data.rows_of_coverage(cov, [], waiting=iset("2,5,8-9,42"))
    assert len(rows) == 1
    row = rows[0]
    assert row.name == ""
    assert dict(row.sets) == {
        "succeeded": iset("0-2"),
        "failed": iset("3"),  # 4 runs again
        "running": iset("4-5"),
        "queued": iset("6"),
        "waiting": iset("8-9"),  # only where missing
    }


def test_rows_of_coverage_with_steps_follow_the_rollup() -> None:
    complete = iset("0-9")
    none = (IndexSet(), IndexSet())
    rollup = coverage_of(complete, (iset("0-1"), IndexSet()), (iset("2"), IndexSet()))
    extract = coverage_of(complete, (iset("0-4"), IndexSet()), (iset("5"), IndexSet()))
    load = coverage_of(complete, (iset("0-1"), iset("2-3")), none)
    waiting = iset("0-9")
    rows = data.rows_of_coverage(rollup, [("extract", extract), ("load", load)], waiting)
    assert [r.name for r in rows] == ["", "extract", "load"]
    assert rows[0].sets["waiting"] == iset("3-9")
    assert rows[1].sets["succeeded"] == iset("0-4")
    assert rows[1].sets["running"] == iset("5")
    assert rows[1].sets["waiting"] == iset("6-9")
    assert rows[2].sets["failed"] == iset("2-3")
    assert rows[2].sets["waiting"] == iset("4-9")
    for row in rows:
        # the sets of a row are disjoint, inside the complete partitions
        seen = IndexSet()
        for members in row.sets.values():
            assert not (seen & members)
            seen = seen | members
        assert seen - complete == IndexSet()


def test_rows_of_sets() -> None:
    rollup = {"succeeded": iset("0-3"), "waiting": iset("4-9")}
    step = {"succeeded": iset("0-5")}
    rows = data.rows_of_sets(rollup, [("extract", step)])
    assert rows == [data.GridRow("", rollup), data.GridRow("extract", step)]
    assert data.rows_of_sets(rollup, []) == [data.GridRow("", rollup)]


# -------------------------------------------------------------------------------- security

LOOPBACK = frozenset({"127.0.0.1:8765", "localhost:8765", "[::1]:8765"})


def test_allowed_hosts_of_a_loopback_address() -> None:
    assert security.allowed_hosts("127.0.0.1", 8765) == LOOPBACK
    assert security.allowed_hosts("localhost", 8765) == LOOPBACK
    assert security.allowed_hosts("::1", 8765) == LOOPBACK


def test_allowed_hosts_add_the_address_with_its_port() -> None:
    assert security.allowed_hosts("192.168.1.5", 8765) == LOOPBACK | {"192.168.1.5:8765"}
    assert security.allowed_hosts("fe80::1", 8765) == LOOPBACK | {"[fe80::1]:8765"}
    assert security.allowed_hosts("Box.Example", 8765) == LOOPBACK | {"box.example:8765"}
    assert security.allowed_hosts("127.0.0.1", 8765, extra=["My.Host"]) == LOOPBACK | {
        "my.host:8765"
    }
    assert "127.0.0.1:9000" in security.allowed_hosts("127.0.0.1", 9000)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", ""])
def test_allowed_hosts_of_every_address_add_nothing(address: str) -> None:
    assert security.allowed_hosts(address, 8765) == LOOPBACK


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8765", True),
        ("localhost:8765", True),
        ("LocalHost:8765", True),
        ("[::1]:8765", True),
        ("localhost", False),  # no port
        ("127.0.0.1", False),
        ("127.0.0.1:8766", False),
        ("::1:8765", False),
        ("evil.example:8765", False),
        ("localhost.evil.example:8765", False),
        ("", False),
        (None, False),
    ],
)
def test_host_allowed(host: str | None, allowed: bool) -> None:
    assert security.host_allowed(host, LOOPBACK) is allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:8765", True),
        ("http://127.0.0.1:8765/", True),
        ("http://LOCALHOST:8765", True),
        ("http://[::1]:8765", True),
        (None, False),
        ("", False),
        ("null", False),
        ("https://127.0.0.1:8765", False),
        ("ws://127.0.0.1:8765", False),
        ("file://127.0.0.1:8765", False),
        ("127.0.0.1:8765", False),
        ("http://127.0.0.1", False),
        ("http://127.0.0.1:8766", False),
        ("http://evil.example", False),
        ("http://127.0.0.1:8765.evil.example", False),
        ("http://evil.example@127.0.0.1:8765", False),
    ],
)
def test_origin_allowed(origin: str | None, allowed: bool) -> None:
    assert security.origin_allowed(origin, LOOPBACK) is allowed


@pytest.mark.parametrize(
    ("given_token", "matches"),
    [("t0k", True), ("t0K", False), ("t0k ", False), ("t0", False), ("", False), (None, False)],
)
def test_token_matches(given_token: str | None, matches: bool) -> None:
    assert security.token_matches(given_token, "t0k") is matches


def test_new_token() -> None:
    token = security.new_token()
    assert len(token) == 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert security.new_token() != token


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("fe80::1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert security.is_loopback(address) is loopback


def test_content_security_policy_is_strict() -> None:
    assert "'unsafe-inline'" not in security.CSP
    assert "'unsafe-eval'" not in security.CSP
    directives = dict(d.strip().split(" ", 1) for d in security.CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert security.SECURITY_HEADERS["Content-Security-Policy"] == security.CSP
    assert security.SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------------------- launch form


def test_parse_launch_of_a_full_form() -> None:
    form = parse_launch(
        {
            "positions": " 0-9,12 ",
            "concurrency": "25",
            "order": "NewestFirst",
            "reprocess": "Failed",
            "retries": 3,
            "retryBackoffSeconds": 0,
            "maxFailed": "7",
            "steps": ["extract", "load"],
            "includeUpstream": True,
            "includeDownstream": False,
            "name": "  my-fill ",
            "dryRun": True,
        }
    )
    assert form == LaunchForm(
        positions=iset("0-9,12"),
        concurrency=25,
        order=Order.NEWEST_FIRST,
        reprocess=Reprocess.FAILED,
        retries=3,
        retry_backoff_seconds=0,
        max_failed=7,
        steps=["extract", "load"],
        include_upstream=True,
        include_downstream=False,
        name="my-fill",
        dry_run=True,
    )


def test_parse_launch_defaults() -> None:
    form = parse_launch({"positions": "3"})
    assert form == LaunchForm(positions=iset("3"))
    assert (form.concurrency, form.order, form.reprocess) == (
        10,
        Order.OLDEST_FIRST,
        Reprocess.MISSING,
    )
    empty = parse_launch(
        {"positions": "3", "concurrency": "", "maxFailed": "", "name": "   ", "order": ""}
    )
    assert empty == form
    assert empty.max_failed is None
    assert empty.name is None


def test_parse_launch_bounds() -> None:
    assert parse_launch({"positions": "0", "concurrency": 1}).concurrency == 1
    top = parse_launch({"positions": "0", "concurrency": MAX_CONCURRENCY})
    assert top.concurrency == MAX_CONCURRENCY
    assert parse_launch({"positions": "0", "maxFailed": "0"}).max_failed == 0
    backoff = parse_launch({"positions": "0", "retryBackoffSeconds": 86_400})
    assert backoff.retry_backoff_seconds == 86_400


@pytest.mark.parametrize(
    "extra",
    [
        {"includeUpstream": True, "includeDownstream": True},
        {"includeUpstream": True, "includeDownstream": True, "steps": []},
        {"includeUpstream": True, "steps": None},
    ],
)
def test_parse_launch_ignores_neighbours_without_steps(extra: dict[str, Any]) -> None:
    form = parse_launch({"positions": "0-3", **extra})
    assert form.steps is None
    assert form.include_upstream is False
    assert form.include_downstream is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "select at least one partition"),
        ({"positions": ""}, "select at least one partition"),
        ({"positions": "   "}, "select at least one partition"),
        ({"positions": 5}, "select at least one partition"),
        ({"positions": ["0-3"]}, "select at least one partition"),
        ({"positions": "5-3"}, "not an index set"),
        ({"positions": "a"}, "not an index set"),
        ({"positions": "1,,2"}, "not an index set"),
        ({"positions": "-1"}, "not an index set"),
        ({"positions": "0", "order": "Sideways"}, "invalid option"),
        ({"positions": "0", "order": "oldestfirst"}, "invalid option"),
        ({"positions": "0", "reprocess": "Some"}, "invalid option"),
        ({"positions": "0", "concurrency": 0}, "concurrency must be between 1 and"),
        ({"positions": "0", "concurrency": 2.9}, "concurrency must be a whole number"),
        ({"positions": "0", "concurrency": True}, "concurrency must be a whole number"),
        ({"positions": "0", "concurrency": MAX_CONCURRENCY + 1}, "concurrency must be between"),
        ({"positions": "0", "concurrency": "many"}, "concurrency must be a whole number"),
        ({"positions": "0", "concurrency": [1]}, "concurrency must be a whole number"),
        ({"positions": "0", "retries": -1}, "retries must be between"),
        ({"positions": "0", "retries": 101}, "retries must be between"),
        ({"positions": "0", "retryBackoffSeconds": 86_401}, "retryBackoffSeconds must be"),
        ({"positions": "0", "maxFailed": -1}, "maxFailed must be between"),
        ({"positions": "0", "steps": "extract"}, "steps must be a list"),
        ({"positions": "0", "steps": ["extract", 1]}, "steps must be a list"),
        ({"positions": "0", "steps": {"extract": True}}, "steps must be a list"),
        ({"positions": "0", "name": 5}, "name must be text"),
        ({"positions": "0", "name": "Bad_Name"}, "name: "),
        ({"positions": "0", "name": "-fill"}, "name: "),
        ({"positions": "0", "name": "x" * 254}, "name: "),
    ],
)
def test_parse_launch_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_launch(body)
    assert message in caught.value.message


# ----------------------------------------------------------------------- guard, over HTTP

TOKEN = "t0k"


class StandInUi:
    """What the handlers under test read from a Ui; records the actions it is asked to do."""

    namespace = "default"
    context = "kind-test"

    def __init__(self, error: Exception | None = None, *, all_namespaces: bool = False) -> None:
        self.error = error
        self.all_namespaces = all_namespaces
        self.calls: list[tuple[str, str, bool]] = []

    def set_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        self.calls.append((namespace, name, suspend))
        if self.error is not None:
            raise self.error

    def backfill(self, namespace: str, name: str) -> None:
        raise self.error or CliError(f"Backfill {name} not found")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve(ui: StandInUi, scenario: Callable[[TestClient[Any, Any], int], Awaitable[T]]) -> T:
    """Run ``scenario(client, port)`` against the app serving ``ui`` on 127.0.0.1:port."""

    async def main() -> T:
        port = free_port()
        app = server.make_app(ui, address="127.0.0.1", port=port, token=TOKEN)  # type: ignore[arg-type]
        async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as client:
            return await scenario(client, port)

    return asyncio.run(main())


def assert_secured(response: ClientResponse) -> None:
    for name, value in security.SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert response.headers["Content-Security-Policy"] == security.CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def trusted(port: int, **headers: str) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{port}", security.TOKEN_HEADER: TOKEN, **headers}


SUSPEND = "/ns/default/backfills/b/suspend"


def test_guard_refuses_an_unknown_host() -> None:
    ui = StandInUi()

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}"):
            response = await client.get("/static/app.js", headers={"Host": host})
            assert response.status == 421, host
            assert "unknown host" in await response.text()
            assert_secured(response)
        # even a POST with the right origin and token
        response = await client.post(SUSPEND, headers=trusted(port, Host="evil.example"))
        assert response.status == 421
        assert_secured(response)
        # the loopback names are answered
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            response = await client.get("/static/app.js", headers={"Host": host})
            assert response.status == 200, host

    serve(ui, scenario)
    assert ui.calls == []


def test_guard_refuses_a_post_without_origin() -> None:
    ui = StandInUi()

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.post(SUSPEND, headers={security.TOKEN_HEADER: TOKEN})
        assert response.status == 403
        assert response.content_type == "application/json"
        body = await response.json()
        assert "another origin" in body["error"]
        assert_secured(response)

    serve(ui, scenario)
    assert ui.calls == []


def test_guard_refuses_a_post_from_another_origin() -> None:
    ui = StandInUi()

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        for origin in (
            "http://evil.example",
            "null",
            f"https://127.0.0.1:{port}",
            f"http://127.0.0.1:{port + 1}",
        ):
            response = await client.post(
                SUSPEND, headers={"Origin": origin, security.TOKEN_HEADER: TOKEN}
            )
            assert response.status == 403, origin
            assert "another origin" in (await response.json())["error"]
            assert_secured(response)

    serve(ui, scenario)
    assert ui.calls == []


def test_guard_refuses_a_post_without_the_token() -> None:
    ui = StandInUi()

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        origin = {"Origin": f"http://127.0.0.1:{port}"}
        for token in (None, "", "t0K", "wrong"):
            headers = dict(origin) if token is None else {**origin, security.TOKEN_HEADER: token}
            response = await client.post(SUSPEND, headers=headers)
            assert response.status == 403, token
            assert "CSRF token" in (await response.json())["error"]
            assert_secured(response)

    serve(ui, scenario)
    assert ui.calls == []


def test_guard_lets_a_trusted_post_act() -> None:
    ui = StandInUi()

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.post(SUSPEND, headers=trusted(port))
        assert response.status == 200
        assert await response.json() == {"ok": True, "url": "/ns/default/backfills/b"}
        assert_secured(response)

    serve(ui, scenario)
    assert ui.calls == [("default", "b", True)]


def test_guard_accepts_every_loopback_origin() -> None:
    ui = StandInUi()

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        for origin in (f"http://localhost:{port}", f"http://127.0.0.1:{port}/"):
            response = await client.post(
                "/ns/default/backfills/b/resume",
                headers={"Origin": origin, security.TOKEN_HEADER: TOKEN},
            )
            assert response.status == 200, origin

    serve(ui, scenario)
    assert ui.calls == [("default", "b", False), ("default", "b", False)]


def test_static_files() -> None:
    package = resources.files("backfill_operator.cli.web").joinpath("static")

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.get("/static/app.js")
        assert response.status == 200
        assert response.content_type == "text/javascript"
        assert await response.read() == package.joinpath("app.js").read_bytes()
        assert_secured(response)
        response = await client.get("/static/style.css")
        assert response.status == 200
        assert response.content_type == "text/css"
        for path in ("/static/nope.js", "/static/../x", URL("/static/..%2Fapp.js", encoded=True)):
            response = await client.get(path)
            assert response.status == 404, path
            assert_secured(response)
        # the client resolves "..": send the path as written, on a socket of our own
        for target in ("/static/../x", "/static/../static/app.js", "/static/%2e%2e/app.js"):
            assert await raw_status(port, target) == 404, target

    serve(StandInUi(), scenario)


async def raw_status(port: int, target: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    head = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(head.split()[1])


def test_a_cli_error_is_a_json_message() -> None:
    ui = StandInUi(CliError("boom <b>"))

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.post(SUSPEND, headers=trusted(port))
        assert response.status == 400
        assert response.content_type == "application/json"
        text = await response.text()
        assert json.loads(text) == {"error": "boom <b>"}
        assert "Traceback" not in text
        assert_secured(response)

    serve(ui, scenario)
    assert ui.calls == [("default", "b", True)]


def test_a_cli_error_on_a_page_is_escaped() -> None:
    ui = StandInUi(CliError("<script>alert(1)</script>"))

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.get("/ns/%3Cscript%3E/backfills/b")
        assert response.status == 400
        assert response.content_type == "text/html"
        text = await response.text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "<script>alert" not in text
        assert "<script>" not in text.replace('<script src="/static/', "")
        assert "Traceback" not in text
        assert_secured(response)

    serve(ui, scenario)


def test_an_unexpected_error_hides_its_text(capsys: pytest.CaptureFixture[str]) -> None:
    ui = StandInUi(RuntimeError("secret detail 42"))

    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.post(SUSPEND, headers=trusted(port))
        assert response.status == 500
        text = await response.text()
        assert "internal error" in json.loads(text)["error"]
        assert "secret detail" not in text
        assert "RuntimeError" not in text
        assert "Traceback" not in text
        assert_secured(response)

    serve(ui, scenario)
    assert ui.calls == [("default", "b", True)]
    # logged to the terminal instead
    assert "secret detail 42" in capsys.readouterr().err


def test_unknown_routes_and_actions() -> None:
    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.post("/ns/default/backfills/b/explode", headers=trusted(port))
        assert response.status == 404
        assert await response.json() == {
            "error": "unknown action 'explode': suspend, resume, cancel or retry"
        }
        assert_secured(response)
        response = await client.post("/ns/default/backfills/b/%0A", headers=trusted(port))
        assert response.status == 404
        assert "unknown action '\\n'" in (await response.json())["error"]
        response = await client.get("/nowhere")
        assert response.status == 404
        assert response.content_type == "text/html"
        assert_secured(response)
        response = await client.get("/nowhere.json")
        assert response.status == 404
        assert "error" in await response.json()

    ui = StandInUi()
    serve(ui, scenario)
    assert ui.calls == []


def test_launch_bodies_are_checked_before_the_cluster() -> None:
    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        url = "/ns/default/jobs/sales/preview"
        cases = [
            ("nope", "not JSON"),
            ("[1, 2]", "not a JSON object"),
            ("{}", "select at least one partition"),
            ('{"positions": "0", "order": "Sideways"}', "invalid option"),
        ]
        for body, message in cases:
            headers = trusted(port, **{"Content-Type": "application/json"})
            response = await client.post(url, data=body, headers=headers)
            assert response.status == 400, body
            assert message in (await response.json())["error"]
            assert_secured(response)

    serve(StandInUi(), scenario)


@pytest.mark.parametrize(
    ("all_namespaces", "location"), [(False, "/ns/default/jobs"), (True, "/all/jobs")]
)
def test_index_redirects(all_namespaces: bool, location: str) -> None:
    async def scenario(client: TestClient[Any, Any], port: int) -> None:
        response = await client.get("/", allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == location
        assert_secured(response)

    serve(StandInUi(all_namespaces=all_namespaces), scenario)


def test_backfill_row_counts_by_grid_state() -> None:
    row = backfill_row(
        {
            "metadata": {
                "name": "b",
                "namespace": "ns",
                "creationTimestamp": "2026-11-30T00:00:00Z",
            },
            "spec": {"jobRef": {"name": "j"}, "suspend": True, "dryRun": True},
            "status": {
                "phase": "Running",
                "counts": {
                    "total": 10,
                    "succeeded": 3,
                    "failed": 1,
                    "upstreamFailed": 2,
                    "skipped": 1,
                    "running": 2,
                    "flag": True,
                },
            },
        }
    )
    assert row.phase == "Suspended (dry run)" and row.suspended and not row.finished
    assert row.counts["upstream_failed"] == 2 and "upstreamFailed" not in row.counts
    assert "flag" not in row.counts
    assert (row.done, row.total, row.job) == (7, 10, "j")
    finished = backfill_row(
        {"metadata": {"name": "b"}, "spec": {"suspend": True}, "status": {"phase": "Succeeded"}}
    )
    assert finished.phase == "Succeeded" and finished.finished and finished.total == 0
