"""Web page benchmark (issue 11): a job's partitions page at 1,000,000 partitions.

On a fresh local control plane (``common.fresh_cluster``; no operator: the page reads what is
stored), two PartitionedJobs of exactly 1,000,000 minutely partitions
(``devcluster.ledgers.million_job``) with the status the operator writes after running all of
them, every 100th partition failed (10,000 scattered failures; ``history_status``):

a. a job with ``jobTemplate`` (one row of boxes);
b. a job with three steps ``s0 -> s1 -> s2`` (four rows: the roll-up and each step).

``kubectl backfill ui`` runs as users run it (its own process, the kubeconfig), and Debian's
Chromium (Playwright, ``executable_path``) opens the job's page ``--repeat`` times (5), each
in a fresh browser context (no cache). Reported per job, median and max:

* **request to drawn grid**: from the browser's navigation start (``performance.timeOrigin``)
  to the grid drawn (the page stamps ``data-drawn-at`` after ``putImageData``) -- the goal is
  under 2 s;
* the grid's own share: ``grid.json`` fetched (request to parsed JSON) and decoded + drawn;
* the size of ``grid.json`` and the server's time for it alone (``urllib``, 5 requests).

Run: ``python bench/bench_ui.py [--repeat 5] [--json F]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    Clients,
    Result,
    create_namespace,
    fresh_cluster,
    load_average,
    print_results,
    say,
    write_results,
)

sys.path.insert(0, str(ROOT / "hack"))
from playwright.sync_api import sync_playwright

from devcluster.ledgers import MILLION, history_status, million_job

GOAL_SECONDS = 2.0
NAMESPACE = "bench-ui"


def start_ui(kubeconfig: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``kubectl backfill ui --port 0``; return the process and its URL."""
    exe = Path(sys.executable).parent / "kubectl-backfill"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [str(exe), "ui", "--port", "0", "-n", NAMESPACE],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"Serving (http://\S+/)", line)
    if match is None:
        proc.terminate()
        raise RuntimeError(f"kubectl backfill ui did not start: {line}{proc.stdout.read()}")
    return proc, match.group(1)


def put_history(clients: Clients, name: str, spec: dict[str, Any]) -> None:
    body = clients.get_custom(NAMESPACE, "partitionedjobs", name)
    body["status"] = history_status(spec)
    clients.replace_custom_status(NAMESPACE, "partitionedjobs", body)


def server_only(url: str, repeat: int) -> tuple[float, int]:
    """Median seconds of ``grid.json`` alone, and its size in bytes."""
    times, size = [], 0
    for _ in range(repeat):
        started = time.monotonic()
        with urllib.request.urlopen(url, timeout=60) as response:
            size = len(response.read())
        times.append(time.monotonic() - started)
    return statistics.median(times), size


def page_loads(browser: Any, url: str, repeat: int) -> list[dict[str, float]]:
    """Open ``url`` ``repeat`` times in fresh contexts; return the timings of each load."""
    out = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on(
            "console", lambda m, seen=errors: seen.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e, seen=errors: seen.append(str(e)))
        page.goto(url)
        try:
            page.wait_for_selector("#grid[data-drawn-at]", timeout=60_000)
        except Exception as exc:
            flash = page.text_content("#flash") or ""
            raise RuntimeError(f"grid not drawn at {url}: {flash} {errors}") from exc
        timing = page.evaluate(
            """() => {
                const box = document.getElementById("grid");
                const t = box.grid.timing;
                return {total: Number(box.dataset.drawnAt) - performance.timeOrigin,
                        fetch: t.fetch, draw: t.draw, count: Number(box.dataset.count)};
            }"""
        )
        assert timing["count"] == MILLION, timing
        out.append(timing)
        context.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="write the results here (for the summary table)")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    say(f"== web page: 1,000,000 partitions ({load_average()}), Chromium {chromium}")
    results: list[Result] = []
    with fresh_cluster("ui") as cluster:
        clients = Clients.connect(Path(cluster.kubeconfig))
        create_namespace(clients, NAMESPACE)
        jobs = {
            "huge": million_job("huge", NAMESPACE),
            "huge-steps": million_job("huge-steps", NAMESPACE, steps=3),
        }
        for name, body in jobs.items():
            clients.create_custom(NAMESPACE, "partitionedjobs", body)
            put_history(clients, name, body["spec"])
            stored = len(json.dumps(clients.get_custom(NAMESPACE, "partitionedjobs", name)))
            say(f"   {name}: status written ({stored / 1024:.0f} KiB object)")
        proc, base = start_ui(Path(cluster.kubeconfig))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--disable-sync"])
                say(f"   Chromium {browser.version}, ui at {base}")
                for name, label in (("huge", "jobTemplate"), ("huge-steps", "3 steps")):
                    url = f"{base}ns/{NAMESPACE}/jobs/{name}"
                    page_loads(browser, url, 1)  # warm the server's caches
                    loads = page_loads(browser, url, args.repeat)
                    total = [t["total"] / 1000 for t in loads]
                    fetch = [t["fetch"] / 1000 for t in loads]
                    draw = [t["draw"] / 1000 for t in loads]
                    alone, size = server_only(f"{url}/grid.json?columns=1150", args.repeat)
                    say(
                        f"   {label}: request to drawn grid median "
                        f"{statistics.median(total):.3f} s "
                        f"(max {max(total):.3f}); grid.json {statistics.median(fetch):.3f} s, "
                        f"decode + draw {statistics.median(draw):.3f} s; grid.json alone "
                        f"{alone:.3f} s, {size / 1024:.0f} KiB"
                    )
                    med = statistics.median(total)
                    results += [
                        Result(
                            "ui",
                            f"1M partitions ({label}): request to drawn grid, "
                            f"median of {args.repeat}",
                            f"{med:.2f} s (max {max(total):.2f} s)",
                            f"< {GOAL_SECONDS:g} s",
                            med < GOAL_SECONDS,
                        ),
                        Result(
                            "ui",
                            f"1M partitions ({label}): grid.json / decode + draw",
                            f"{statistics.median(fetch):.2f} s / {statistics.median(draw):.2f} s, "
                            f"{size / 1024:.0f} KiB",
                        ),
                    ]
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        clients.close()
    print()
    print_results(results)
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
