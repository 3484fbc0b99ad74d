"""``kubectl backfill ui`` in a real browser: Debian's Chromium driven by Playwright.

The web app runs as users run it (``kubectl backfill ui --port 0 -n NS``, a separate process
with the test's kubeconfig), against the local control plane with the operator running.
Chromium is the system one (``/usr/bin/chromium``, installed by hack/setup.sh), launched by
``executable_path``: ``playwright install`` is never run. Waits are Playwright's own (a
deadline on a condition), or ``helpers.wait_for``; no sleeps.

Every page must load without a script error or a Content-Security-Policy violation (both
show as console errors, collected per page and checked at the end of each test).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from devcluster.ledgers import MILLION, history_status, million_job
from helpers import partitioned_job_body, wait_for

GROUP = "backfill.dev"
ROOT = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"
#: Where the README's screenshot goes when BACKFILL_UPDATE_SCREENSHOTS=1.
SCREENSHOT = ROOT / "docs" / "images" / "ui-partitions.png"

pytestmark = pytest.mark.usefixtures("operator")


# --------------------------------------------------------------------------------- set-up


@dataclass
class UiServer:
    """A running ``kubectl backfill ui``: its URL and process."""

    url: str
    proc: subprocess.Popen[str]

    def at(self, path: str) -> str:
        """The absolute URL of ``path`` (``/ns/...``)."""
        return self.url.rstrip("/") + path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (hack/setup.sh installs it), headless, for the whole module."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("chromium is not installed: run hack/setup.sh (apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--disable-sync"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def ui(cluster: Any, namespace: str) -> Iterator[UiServer]:
    """``kubectl backfill ui --port 0 -n <test namespace>``, stopped by its pid afterwards."""
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env.update(
        {
            "KUBECONFIG": str(cluster.kubeconfig),
            "PATH": os.pathsep.join([str(venv_bin), str(cluster.bin_dir), env.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
    )
    proc = subprocess.Popen(
        [str(venv_bin / "kubectl-backfill"), "ui", "--port", "0", "-n", namespace],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # blocks until the server prints its URL (or exits)
    match = re.search(r"Serving (http://127\.0\.0\.1:\d+/)", first)
    try:
        assert match is not None, first + proc.stdout.read()
        yield UiServer(match.group(1), proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    rest = proc.stdout.read()
    assert "Traceback" not in rest, rest


@dataclass
class Watched:
    """A browser page with its console errors and dialogs recorded."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Browser) -> Iterator[Watched]:
    """A fresh page (1300x900); fails the test on a script error or a CSP violation."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    watched = Watched(page)
    page.on(
        "console",
        lambda m: watched.errors.append(m.text) if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: watched.errors.append(f"page error: {e}"))
    try:
        yield watched
    finally:
        context.close()
    refused = [e for e in watched.errors if "status of 4" not in e and "status of 5" not in e]
    assert refused == [], refused


def apply(cluster: Any, body: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def backfill_body(namespace: str, name: str, job: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Backfill",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"jobRef": {"name": job}, **spec},
    }


def get(cluster: Any, namespace: str, *what: str) -> Any:
    return json.loads(cluster.kubectl("get", *what, "-n", namespace, "-o", "json").stdout)


def find_backfill(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    items = get(cluster, namespace, "backfills")["items"]
    return next((i for i in items if i["metadata"]["name"] == name), None)


def open_grid(tab: Watched, url: str) -> Page:
    """Open a page with a grid and wait until it is drawn."""
    page = tab.page
    page.goto(url)
    page.wait_for_selector("#grid[data-drawn-at]", timeout=30_000)
    return page


def grid_counts(page: Page) -> list[dict[str, int]]:
    """Partitions per state of each grid row, as drawn (roll-up first)."""
    counts: list[dict[str, int]] = json.loads(page.get_attribute("#grid", "data-states") or "[]")
    return counts


def wait_counts(page: Page, predicate: Callable[[dict[str, int]], bool], timeout: float) -> None:
    """Wait until the drawn roll-up counts satisfy ``predicate`` (the page refreshes itself)."""

    def ready() -> bool:
        counts = grid_counts(page)
        return bool(counts) and predicate(counts[0])

    wait_for(ready, timeout=timeout, message=lambda: f"grid counts {grid_counts(page)}")


def pixel(page: Page, row: int, position: int) -> list[int]:
    """The RGB colour drawn at the centre of a cell of the grid."""
    rgb: list[int] = page.evaluate(
        """([row, position]) => {
            const grid = document.getElementById("grid").grid;
            const c = grid.cellCentre(row, position);
            const ctx = grid.canvas.getContext("2d");
            return Array.from(ctx.getImageData(Math.floor(c.x), Math.floor(c.y), 1, 1).data)
                .slice(0, 3);
        }""",
        [row, position],
    )
    return rgb


def drag(page: Page, row: int, first: int, last: int) -> None:
    """Press the mouse on cell ``first`` of a grid row and release it on cell ``last``."""
    box = page.locator("canvas.grid-canvas").bounding_box()
    assert box is not None
    centres = page.evaluate(
        """([row, a, b]) => {
            const grid = document.getElementById("grid").grid;
            return [grid.cellCentre(row, a), grid.cellCentre(row, b)];
        }""",
        [row, first, last],
    )
    (a, b) = centres
    page.mouse.move(box["x"] + a["x"], box["y"] + a["y"])
    page.mouse.down()
    page.mouse.move(box["x"] + b["x"], box["y"] + b["y"], steps=8)
    page.mouse.up()


GREEN, RED = [46, 157, 77], [215, 58, 58]


def kb_json(cluster: Any, namespace: str, *args: str) -> Any:
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig))
    env["PATH"] = os.pathsep.join([str(venv_bin), str(cluster.bin_dir), env.get("PATH", "")])
    proc = subprocess.run(
        [str(venv_bin / "kubectl-backfill"), *args, "-n", namespace, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ----------------------------------------------------------------------------------- tests


def test_jobs_page_then_the_demo_jobs_partitions_mid_run(
    cluster: Any, namespace: str, ui: UiServer, tab: Watched, tmp_path: Path
) -> None:
    """The demo (examples/sales-pipeline.yaml): jobs page, then its grid while it runs."""
    cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "sales-pipeline.yaml"))
    page = tab.page
    page.goto(ui.at(f"/ns/{namespace}/jobs"))
    row = page.locator('tr[data-job="sales-pipeline"]')
    row.wait_for()
    assert "daily schedule" in row.inner_text()
    row.get_by_role("link", name="sales-pipeline").click()
    page.wait_for_url(re.compile(r"/jobs/sales-pipeline$"))
    page.wait_for_selector("#grid[data-drawn-at]")
    complete = int(page.get_attribute("#grid", "data-count") or "0")
    assert complete >= 300  # daily since 2024-01-01
    # Mid-run: some partitions succeeded and some run; the page refreshes itself.
    wait_counts(page, lambda c: c.get("succeeded", 0) >= 20 and c.get("running", 0) > 0, 120)
    counts = grid_counts(page)[0]
    assert sum(counts.values()) == complete
    assert pixel(page, 0, 0) == GREEN  # 2024-01-01 is the first to run (oldest first)
    shot = SCREENSHOT if os.environ.get("BACKFILL_UPDATE_SCREENSHOTS") == "1" else None
    target = shot or tmp_path / "ui-partitions.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
    # The Backfills list shows it with its phase.
    page.goto(ui.at(f"/ns/{namespace}/backfills"))
    assert "sales-pipeline-2024" in page.locator("table.backfills").inner_text()


def test_select_a_range_preview_matches_plan_launch_and_watch(
    cluster: Any, namespace: str, ui: UiServer, tab: Watched
) -> None:
    """Drag over 12 days, preview = ``kubectl backfill plan``, launch; green boxes, one red."""
    apply(
        cluster,
        partitioned_job_body(
            namespace, "sales", annotations={"kwok.backfill.dev/fail-partitions": "2024-01-05"}
        ),
    )
    page = open_grid(tab, ui.at(f"/ns/{namespace}/jobs/sales"))
    assert grid_counts(page)[0] == {"missing": int(page.get_attribute("#grid", "data-count"))}
    drag(page, 0, 0, 11)
    assert page.text_content("#selected-count") == "12 selected"
    page.click("#launch-open")
    page.select_option('select[name="reprocess"]', "Missing")
    page.fill('input[name="concurrency"]', "4")
    page.locator('input[name="concurrency"]').dispatch_event("change")
    count = page.locator("#preview-count")
    count.wait_for()
    plan = kb_json(
        cluster, namespace, "plan", "sales", "--from", "2024-01-01", "--to", "2024-01-12"
    )
    wait_for(lambda: count.get_attribute("data-count") == str(plan["count"]), timeout=20)
    assert plan["count"] == 12
    preview = page.text_content("#preview") or ""
    assert "2024-01-01" in preview and "2024-01-12" in preview
    page.click("#launch-go")
    page.wait_for_url(re.compile(r"/backfills/sales-"))
    name = page.url.rsplit("/", 1)[1]
    body = find_backfill(cluster, namespace, name)
    assert body is not None
    assert body["spec"]["range"] == {"from": "2024-01-01", "to": "2024-01-12"}
    assert body["spec"]["concurrency"] == 4
    page.wait_for_selector("#grid[data-drawn-at]")
    wait_counts(page, lambda c: c.get("succeeded") == 11 and c.get("failed") == 1, 120)
    assert pixel(page, 0, 0) == GREEN
    assert pixel(page, 0, 4) == RED  # 2024-01-05
    wait_for(lambda: "Failed" in (page.text_content("#phase") or ""), timeout=30)
    # The job's page shows the same outcomes over every partition.
    page = open_grid(tab, ui.at(f"/ns/{namespace}/jobs/sales"))
    assert pixel(page, 0, 4) == RED and pixel(page, 0, 11) == GREEN
    counts = grid_counts(page)[0]
    assert counts["succeeded"] == 11 and counts["failed"] == 1
    # Clicking a box shows the partition: key, data interval, the Job that ran it.
    box = page.locator("canvas.grid-canvas").bounding_box()
    assert box is not None
    centre = page.evaluate("document.getElementById('grid').grid.cellCentre(0, 4)")
    page.mouse.click(box["x"] + centre["x"], box["y"] + centre["y"])
    detail = page.locator("#detail")
    detail.wait_for()
    wait_for(lambda: "2024-01-05" in (detail.inner_text() or ""), timeout=20)
    text = detail.inner_text()
    assert "failed" in text and "2024-01-05T00:00:00Z" in text and name in text


def test_retry_failed_suspend_resume_and_cancel_asks(
    cluster: Any, namespace: str, ui: UiServer, tab: Watched
) -> None:
    apply(
        cluster,
        partitioned_job_body(
            namespace,
            "sales",
            annotations={
                "kwok.backfill.dev/fail-partitions": "2024-01-02",
                "kwok.backfill.dev/duration": "2s",
            },
        ),
    )
    apply(
        cluster,
        backfill_body(
            namespace,
            "slow",
            "sales",
            range={"from": "2024-01-01", "to": "2024-01-20"},
            concurrency=1,
        ),
    )
    page = tab.page
    page.goto(ui.at(f"/ns/{namespace}/backfills/slow"))
    page.wait_for_selector("#grid[data-drawn-at]")
    wait_for(lambda: "Running" in (page.text_content("#phase") or ""), timeout=60)
    page.click('[data-action="suspend"]')
    wait_for(lambda: (find_backfill(cluster, namespace, "slow") or {})["spec"].get("suspend"), 20)
    wait_for(lambda: "Suspended" in (page.text_content("#phase") or ""), timeout=20)
    assert page.locator('[data-action="resume"]').is_enabled()
    page.click('[data-action="resume"]')
    wait_for(
        lambda: not (find_backfill(cluster, namespace, "slow") or {})["spec"].get("suspend"), 20
    )
    # Retry failed, once 2024-01-02 has failed: a new Backfill of exactly that partition.
    wait_for(lambda: page.locator('[data-action="retry"]').is_enabled(), timeout=60)
    page.click('[data-action="retry"]')
    page.wait_for_url(re.compile(r"/backfills/slow-retry-"))
    retry = find_backfill(cluster, namespace, page.url.rsplit("/", 1)[1])
    assert retry is not None and retry["spec"]["partitions"] == ["2024-01-02"]
    # Cancel asks first: dismissed, nothing happens; accepted, the Backfill goes.
    page.goto(ui.at(f"/ns/{namespace}/backfills/slow"))
    page.wait_for_selector("#grid[data-drawn-at]")
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click('[data-action="cancel"]')
    wait_for(lambda: page.text_content("#flash") == "Nothing done.", timeout=10)
    assert asked and "Cancel Backfill slow?" in asked[0]
    assert find_backfill(cluster, namespace, "slow") is not None
    page.once("dialog", lambda d: d.accept())
    page.click('[data-action="cancel"]')
    page.wait_for_url(re.compile(rf"/ns/{namespace}/backfills$"))
    wait_for(lambda: find_backfill(cluster, namespace, "slow") is None, timeout=30)


def test_a_hostile_partition_value_renders_as_text(
    cluster: Any, namespace: str, ui: UiServer, tab: Watched
) -> None:
    apply(cluster, partitioned_job_body(namespace, "regions", values=[XSS, "us-east-1"]))
    apply(cluster, backfill_body(namespace, "all-regions", "regions", range={"from": XSS}))
    page = tab.page
    page.on("dialog", lambda d: tab.dialogs.append(d.message) or d.dismiss())
    page.goto(ui.at(f"/ns/{namespace}/backfills/all-regions"))
    page.wait_for_selector("#grid[data-drawn-at]")
    wait_for(lambda: XSS in (page.text_content("#summary") or ""), timeout=60)
    page.goto(ui.at(f"/ns/{namespace}/jobs/regions"))
    page.wait_for_selector("#grid[data-drawn-at]")
    box = page.locator("canvas.grid-canvas").bounding_box()
    assert box is not None
    centre = page.evaluate("document.getElementById('grid').grid.cellCentre(0, 0)")
    page.mouse.click(box["x"] + centre["x"], box["y"] + centre["y"])
    page.locator("#detail h3").wait_for()
    assert page.text_content("#detail h3") == XSS
    assert page.locator("main img").count() == 0
    assert tab.dialogs == []


def _post(url: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_state_changes_need_the_token_and_the_origin(
    cluster: Any, namespace: str, ui: UiServer, tab: Watched
) -> None:
    apply(
        cluster,
        partitioned_job_body(namespace, "sales", annotations={"kwok.backfill.dev/duration": "30s"}),
    )
    apply(
        cluster,
        backfill_body(namespace, "b", "sales", range={"from": "2024-01-01", "to": "2024-01-03"}),
    )
    page = tab.page
    page.goto(ui.at(f"/ns/{namespace}/backfills/b"))
    token = page.get_attribute('meta[name="csrf-token"]', "content") or ""
    assert len(token) >= 32
    origin = ui.url.rstrip("/")
    url = ui.at(f"/ns/{namespace}/backfills/b/suspend")
    assert _post(url, {"Origin": origin})[0] == 403
    assert _post(url, {"Origin": origin, "X-CSRF-Token": "x" + token})[0] == 403
    assert _post(url, {"Origin": "http://evil.example", "X-CSRF-Token": token})[0] == 403
    assert _post(url, {"X-CSRF-Token": token})[0] == 403
    assert not (find_backfill(cluster, namespace, "b") or {})["spec"].get("suspend")
    status, text = _post(
        url, {"Origin": origin, "X-CSRF-Token": token, "Content-Type": "application/json"}
    )
    assert status == 200, text
    assert (find_backfill(cluster, namespace, "b") or {})["spec"]["suspend"] is True
    # Another Host name (DNS rebinding) is refused, even for a GET.
    request = urllib.request.Request(ui.at("/"), headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 421


def test_errors_show_as_a_message(namespace: str, ui: UiServer, tab: Watched) -> None:
    page = tab.page
    response = page.goto(ui.at(f"/ns/{namespace}/jobs/no-such-job"))
    assert response is not None and response.status == 404
    text = page.text_content("main") or ""
    assert 'PartitionedJob "no-such-job" not found' in text
    assert "Traceback" not in text


def test_a_million_partitions_page_draws(
    cluster: Any, namespace: str, ui: UiServer, tab: Watched, tmp_path: Path
) -> None:
    """1,000,000 minutely partitions with 10,000 scattered failures: every box drawn.

    The time it takes is bench/bench_ui.py's number (goal: under 2 s); this test checks the
    drawing: the exact counts and the colours of failed and succeeded boxes far apart.
    """
    body = million_job("huge", namespace)
    apply(cluster, body)
    # The operator numbers the partitions first; then the history is written over its status.
    wait_for(
        lambda: (get(cluster, namespace, "pj", "huge").get("status") or {}).get("partitioning"), 60
    )
    patch = tmp_path / "status.json"
    patch.write_text(json.dumps({"status": history_status(body["spec"])}))
    cluster.kubectl(
        "patch",
        "pj",
        "huge",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        f"--patch-file={patch}",
    )
    page = open_grid(tab, ui.at(f"/ns/{namespace}/jobs/huge"))
    wait_counts(page, lambda c: c == {"succeeded": 990_000, "failed": 10_000}, 60)
    assert page.get_attribute("#grid", "data-count") == str(MILLION)
    assert pixel(page, 0, 0) == RED and pixel(page, 0, 1) == GREEN
    assert pixel(page, 0, 999_900) == RED and pixel(page, 0, 999_999) == GREEN
    timing = page.evaluate("document.getElementById('grid').grid.timing")
    print(
        f"1,000,000 partitions: grid.json {timing['fetch']:.0f} ms, drawn {timing['draw']:.0f} ms"
    )


def test_a_job_with_steps_one_row_per_step_and_a_step_selection(
    cluster: Any, namespace: str, ui: UiServer, tab: Watched
) -> None:
    """examples/api-ingestion.yaml: the roll-up and one row per step; launch one step."""
    cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "api-ingestion.yaml"))
    page = open_grid(tab, ui.at(f"/ns/{namespace}/jobs/api-ingestion"))
    rows = page.evaluate("document.getElementById('grid').grid.doc.rows.map((r) => r.name)")
    assert rows == ["", "ingest", "validate", "publish"]
    wait_counts(page, lambda c: c.get("succeeded") == 3, 120)
    assert [c.get("succeeded") for c in grid_counts(page)] == [3, 3, 3, 3]
    page.fill("#range-from", "2024-03-13")
    page.fill("#range-to", "2024-03-14")
    page.click('[data-select="range"]')
    wait_for(lambda: page.text_content("#selected-count") == "2 selected", timeout=20)
    page.click("#launch-open")
    page.check('input[name="steps"][value="publish"]')
    page.check('input[name="includeUpstream"]')
    wait_for(lambda: "ingest → validate → publish" in (page.text_content("#preview") or ""), 20)
    page.uncheck('input[name="includeUpstream"]')
    wait_for(lambda: "Stepspublish" in (page.text_content("#preview") or ""), 20)
    assert page.get_attribute("#preview-count", "data-count") == "2"
    page.click("#launch-go")
    page.wait_for_url(re.compile(r"/backfills/api-ingestion-"))
    body = find_backfill(cluster, namespace, page.url.rsplit("/", 1)[1])
    assert body is not None
    assert body["spec"]["steps"] == ["publish"]
    assert body["spec"]["range"] == {"from": "2024-03-13", "to": "2024-03-14"}
