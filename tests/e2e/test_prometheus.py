"""The dashboard and the alerts against a real Prometheus scraping the real operator.

Debian's `prometheus` (hack/setup.sh installs it) runs on a free loopback port with a throwaway
config that scrapes the session's operator process (fixture `operator`) every second and loads
the alert rules. A real Backfill runs on the local control plane (12 static partitions, one of
which always fails); then every PromQL expression of the Grafana dashboard must return data
through the HTTP API, every alert expression must parse and evaluate, the rules must evaluate
without error inside Prometheus, BackfillFailed must fire for the failed Backfill and the
counters must agree with the run. `promtool check metrics` lints the operator's exposition,
`promtool check rules` the rules file, and `promtool test rules` pins when each alert fires on
synthetic series. The same run shows that the operator never writes `spec` (GitOps).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from helpers import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "charts" / "backfill-operator" / "files" / "alerts.yaml"
DASHBOARD = ROOT / "dashboards" / "backfill-operator.json"
JOB = "backfill-operator"  # the scrape job name the alerts expect (chart value metrics.job)

BACKFILL = "metrics-demo"
#: A PartitionedJob with scheduled runs (daily since 2024, catchUp Latest: one run, the rest
#: missed), so the "Scheduled runs" panels and the schedule series have data.
SCHEDULED = "metrics-schedule"
KEYS = [f"shard-{i:02d}" for i in range(1, 13)]
FAILING_KEY = "shard-07"
#: 12 partitions, 3 at a time, 1-3 s each; shard-07 fails on every attempt (one retry). The
#: job-wide limit (4) is above the Backfill's own (3): it is there to be scraped and drawn.
MANIFESTS = f"""
apiVersion: backfill.dev/v1alpha1
kind: PartitionedJob
metadata:
  name: metrics-demo
spec:
  concurrency: 4
  partitions:
    values: [{", ".join(KEYS)}]
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        metadata:
          annotations:
            kwok.backfill.dev/duration: 1s
            kwok.backfill.dev/duration-jitter: 3s
            kwok.backfill.dev/fail-partitions: "{FAILING_KEY}"
        spec:
          restartPolicy: Never
          containers:
            - name: work
              image: registry.example/work:1.0
              args: ["--shard", "$(PARTITION_KEY)"]
---
apiVersion: backfill.dev/v1alpha1
kind: Backfill
metadata:
  name: {BACKFILL}
spec:
  jobRef:
    name: metrics-demo
  partitions: [{", ".join(KEYS)}]
  concurrency: 3
  retries:
    limit: 1
    backoffSeconds: 1
---
apiVersion: backfill.dev/v1alpha1
kind: PartitionedJob
metadata:
  name: {SCHEDULED}
spec:
  partitions:
    schedule: {{cron: "0 0 * * *", start: "2024-01-01"}}
  runs:
    catchUp: Latest
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        metadata:
          annotations:
            kwok.backfill.dev/duration: 1s
        spec:
          restartPolicy: Never
          containers:
            - name: work
              image: registry.example/work:1.0
              args: ["--date", "$(PARTITION_KEY)"]
"""


class OperatorLike(Protocol):
    """What the fixture `operator` (tests/operator_support.py) gives: its /metrics URL."""

    metrics_url: str


class ClusterLike(Protocol):
    kubeconfig: Any
    bin_dir: Any


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: hack/setup.sh installs Debian's prometheus package")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------- Prometheus


@dataclass
class Prometheus:
    """A running prometheus and its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as rsp:
                body = json.loads(rsp.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{path} {params}: {exc.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        result: list[dict[str, Any]] = (
            data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]
        )
        return result

    def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step="1")
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_error(self, expr: str) -> str | None:
        """The API's error for ``expr`` (None when it evaluates)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=30) as rsp:
                json.loads(rsp.read())
        except urllib.error.HTTPError as exc:
            return str(json.loads(exc.read()).get("error"))
        return None


@pytest.fixture
def prometheus(operator: OperatorLike, tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus scraping the operator every second, with the alert rules loaded."""
    target = urllib.parse.urlsplit(operator.metrics_url)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": JOB,
                # As the chart's ServiceMonitor: the series' own `namespace` label wins.
                "honor_labels": True,
                "metrics_path": target.path or "/metrics",
                "static_configs": [{"targets": [target.netloc]}],
            }
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    check = subprocess.run(
        [_tool("promtool"), "check", "config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    port = _free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _tool("prometheus"),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        assert process.poll() is None, f"prometheus exited:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as rsp:
                return bool(rsp.status == 200)
        except OSError:
            return False

    try:
        wait_for(ready, timeout=60, message="prometheus /-/ready")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


# ------------------------------------------------------------------------ the real backfill


def _kubectl(cluster: ClusterLike, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(Path(str(cluster.bin_dir)) / "kubectl"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ, KUBECONFIG=str(cluster.kubeconfig)),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass(frozen=True)
class Run:
    """The window of a finished backfill, in Unix seconds, and its final status."""

    start: float
    end: float
    status: dict[str, Any]


def run_backfill(cluster: ClusterLike, namespace: str) -> dict[str, Any]:
    """Apply MANIFESTS in ``namespace``; return the Backfill's status once it has finished."""
    _kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=MANIFESTS)

    def finished() -> dict[str, Any]:
        out = _kubectl(
            cluster, "get", "backfills.backfill.dev", BACKFILL, "-n", namespace, "-o", "json"
        )
        status: dict[str, Any] = json.loads(out).get("status", {})
        return status if status.get("phase") in {"Succeeded", "Failed"} else {}

    return wait_for(finished, timeout=180, interval=0.5, message="the backfill to finish")


@pytest.fixture
def scraped_run(cluster: ClusterLike, namespace: str, prometheus: Prometheus) -> Run:
    """Run the backfill while Prometheus scrapes; return once Prometheus holds its end."""
    wait_for(
        lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'),
        timeout=30,
        message="prometheus scraping the operator",
    )
    start = time.time()
    status = run_backfill(cluster, namespace)
    counts = status["counts"]
    selector = f'namespace="{namespace}", backfill="{BACKFILL}"'

    def scraped_final_state() -> bool:
        got = {
            s["metric"]["state"]: float(s["value"][1])
            for s in prometheus.query(f"backfill_partitions{{{selector}}}")
        }
        want = {k: float(counts[k]) for k in ("pending", "running", "succeeded", "failed")}
        return all(got.get(k) == v for k, v in want.items())

    wait_for(scraped_final_state, timeout=30, message="prometheus to scrape the final counts")
    return Run(start=start, end=time.time(), status=status)


# ---------------------------------------------------------------------------------- tests


def _substitute(expr: str, namespace: str, run: Run) -> str:
    span = f"{math.ceil(run.end - run.start) + 5}s"
    # Names are DNS labels: no regex metacharacter but `.`, harmless in =~ matchers. The
    # Backfill and the schedule are both picked, as a user picks two values in Grafana.
    out = (
        expr.replace("$namespace", namespace)
        .replace("$backfill", f"{BACKFILL}|schedule:{SCHEDULED}")
        .replace("$__rate_interval", "10s")
        .replace("$__range", span)
    )
    assert "$" not in out, f"unsubstituted variable in {out}"
    return out


def _unix(rfc3339: str) -> float:
    """Seconds since the epoch of Prometheus' RFC 3339 UTC time (whole seconds are enough)."""
    moment = datetime.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment.timestamp()


def _finite(samples: list[dict[str, Any]]) -> bool:
    values = [v for s in samples for v in ([s["value"]] if "value" in s else s["values"])]
    return any(math.isfinite(float(v[1])) for v in values)


def test_dashboard_and_alerts_on_a_real_scrape(
    scraped_run: Run,
    prometheus: Prometheus,
    operator: OperatorLike,
    namespace: str,
) -> None:
    status = scraped_run.status
    assert status["phase"] == "Failed"  # shard-07 failed for good
    assert status["counts"]["failed"] == 1
    assert status["counts"]["succeeded"] == len(KEYS) - 1

    # Every query of every panel returns data over the run (range panels: as Grafana asks,
    # query_range; instant panels: at the end).
    dashboard = json.loads(DASHBOARD.read_text())
    checked = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = _substitute(target["expr"], namespace, scraped_run)
            if target.get("instant"):
                samples = prometheus.query(expr, at=scraped_run.end)
            else:
                samples = prometheus.query_range(expr, scraped_run.start, scraped_run.end)
            assert _finite(samples), f"panel {panel['title']!r} got no data: {expr}\n{samples}"
            checked += 1
    assert checked >= 15

    # The template variables (Grafana's label_values) through the label-values API.
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name, want in (("namespace", namespace), ("backfill", BACKFILL)):
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variables[name]["definition"])
        assert match, variables[name]["definition"]
        series, label = match.group(1), match.group(2)
        series = series.replace("$namespace", namespace)
        values = prometheus.api(f"label/{label}/values", **{"match[]": series})
        assert want in values, (name, values)

    # Every alert expression parses and evaluates through the API.
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        assert prometheus.query_error(rule["expr"]) is None, rule["alert"]
        prometheus.query(rule["expr"], at=scraped_run.end)

    # Inside Prometheus: every rule evaluated without error; BackfillFailed fires for ours.
    def evaluated() -> list[dict[str, Any]]:
        loaded = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        # Evaluated at least once on the final data (lastEvaluation: RFC 3339, UTC).
        done = all(_unix(r["lastEvaluation"]) > scraped_run.end for r in loaded)
        return loaded if loaded and done else []

    loaded = wait_for(evaluated, timeout=30, message="the rules to be evaluated")
    assert {r["name"] for r in loaded} == {r["alert"] for r in rules}
    for rule in loaded:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))

    def failed_alert() -> list[dict[str, Any]]:
        return [
            a
            for a in prometheus.api("alerts")["alerts"]
            if a["labels"]["alertname"] == "BackfillFailed"
            and a["labels"].get("namespace") == namespace
            and a["state"] == "firing"
        ]

    (alert,) = wait_for(failed_alert, timeout=30, message="BackfillFailed firing")
    assert alert["labels"]["backfill"] == BACKFILL
    assert alert["labels"]["phase"] == "Failed"
    assert alert["annotations"]["summary"] == f"Backfill {namespace}/{BACKFILL} ended Failed."

    # The exposition passes promtool's linter.
    with urllib.request.urlopen(operator.metrics_url, timeout=10) as rsp:
        exposition = rsp.read()
    assert f'backfill="{BACKFILL}"'.encode() in exposition
    lint = subprocess.run(
        [_tool("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, (lint.stdout + lint.stderr).decode()

    # What Prometheus holds agrees with the run: 11 successes, 2 failed attempts of shard-07
    # (first try and one retry), 13 Jobs.
    selector = f'namespace="{namespace}", backfill="{BACKFILL}"'
    queries = {
        "runs succeeded": f'backfill_partition_runs_total{{{selector}, result="succeeded"}}',
        "runs failed": f'backfill_partition_runs_total{{{selector}, result="failed"}}',
        "jobs created": f"backfill_jobs_created_total{{{selector}}}",
        "phase Failed": f'backfill_phase{{{selector}, phase="Failed"}}',
        "concurrency": f"backfill_concurrency_limit{{{selector}}}",
    }
    latest = {
        name: [float(s["value"][1]) for s in prometheus.query(expr, at=scraped_run.end)]
        for name, expr in queries.items()
    }
    assert latest == {
        "runs succeeded": [len(KEYS) - 1.0],
        "runs failed": [2.0],
        "jobs created": [len(KEYS) + 1.0],
        "phase Failed": [1.0],
        "concurrency": [3.0],
    }


def test_the_operator_never_writes_spec(
    operator: OperatorLike, cluster: ClusterLike, namespace: str
) -> None:
    """GitOps: after a whole run, only the user's apply owns `spec`; generation never moved."""
    run_backfill(cluster, namespace)
    for kind in ("backfills.backfill.dev", "partitionedjobs.backfill.dev"):
        items = json.loads(
            _kubectl(cluster, "get", kind, "-n", namespace, "-o", "json", "--show-managed-fields")
        )["items"]
        assert items, kind
        for item in items:
            meta = item["metadata"]
            assert meta["generation"] == 1, (kind, meta["name"])
            for entry in meta["managedFields"]:
                if entry["manager"].startswith("kubectl"):
                    continue  # the test's own apply
                owned = set(entry.get("fieldsV1", {}))
                assert "f:spec" not in owned, (kind, meta["name"], entry["manager"], owned)
                if entry.get("subresource") != "status":
                    assert owned <= {"f:metadata"}, (kind, entry["manager"], owned)


def test_observability_doc_scrape_config(tmp_path: Path) -> None:
    """The plain-Prometheus example of docs/observability.md is a valid config."""
    text = (ROOT / "docs" / "observability.md").read_text()
    (block,) = re.findall(r"```yaml\n(scrape_configs:.*?)```", text, flags=re.DOTALL)
    config = yaml.safe_load(block)
    assert config["scrape_configs"][0]["job_name"] == JOB
    assert config["scrape_configs"][0]["honor_labels"] is True
    config["rule_files"] = [str(ALERTS)]
    # Debian builds Prometheus without Kubernetes discovery: check everything else (the
    # relabelling, honor_labels, the rules) with a static target in its place.
    scrape = config["scrape_configs"][0]
    assert scrape.pop("kubernetes_sd_configs")[0]["role"] == "endpoints"
    scrape["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [_tool("promtool"), "check", "config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_rules() -> None:
    done = subprocess.run(
        [_tool("promtool"), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    count = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in done.stdout


def _alert(name: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": lab} for lab in labels],
    }


BF = {"namespace": "data", "backfill": "sales"}
SEL = 'namespace="data", backfill="sales"'
#: Synthetic series (one sample a minute) and when each alert must, and must not, fire.
RULE_TESTS: list[dict[str, Any]] = [
    {  # the operator is scraped but down, then gone altogether
        "interval": "1m",
        "input_series": [
            {"series": f'up{{job="{JOB}", instance="10.0.0.1:8080"}}', "values": "1 1 0x10"}
        ],
        "alert_rule_test": [
            _alert("BackfillOperatorDown", "5m"),
            _alert("BackfillOperatorDown", "8m", {"severity": "critical"}),
        ],
    },
    {  # no target of the job at all (e.g. the ServiceMonitor selects nothing)
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="something-else", instance="10.0.0.2:80"}', "values": "1x10"}
        ],
        "alert_rule_test": [
            _alert("BackfillOperatorDown", "4m"),
            _alert("BackfillOperatorDown", "6m", {"severity": "critical"}),
        ],
    },
    {  # pending partitions, Running, no Job created and no run finished for 15 minutes
        "interval": "1m",
        "input_series": [
            {"series": f'backfill_partitions{{{SEL}, state="pending"}}', "values": "40x60"},
            {"series": f'backfill_phase{{{SEL}, phase="Running"}}', "values": "1x60"},
            {
                "series": f'backfill_info{{{SEL}, partitioned_job="sales-pipeline"}}',
                "values": "1x60",
            },
            {
                "series": f'backfill_partition_runs_total{{{SEL}, result="succeeded"}}',
                "values": "0+1x10 10x50",
            },
            {
                "series": f'backfill_partition_runs_total{{{SEL}, result="failed"}}',
                "values": "0x60",
            },
            {"series": f"backfill_jobs_created_total{{{SEL}}}", "values": "0+1x10 10x50"},
        ],
        "alert_rule_test": [
            _alert("BackfillNoProgress", "20m"),
            _alert("BackfillNoProgress", "33m", {**BF, "severity": "warning"}),
        ],
    },
    {  # a new Backfill (younger than 15 minutes) does not count as stuck
        "interval": "1m",
        "input_series": [
            {"series": f'backfill_partitions{{{SEL}, state="pending"}}', "values": "40x30"},
            {"series": f'backfill_phase{{{SEL}, phase="Running"}}', "values": "1x30"},
            {
                "series": f'backfill_info{{{SEL}, partitioned_job="sales-pipeline"}}',
                "values": "1x30",
            },
        ],
        "alert_rule_test": [
            _alert("BackfillNoProgress", "14m"),
            _alert("BackfillNoProgress", "21m", {**BF, "severity": "warning"}),
        ],
    },
    {  # half of the runs fail
        "interval": "1m",
        "input_series": [
            {
                "series": f'backfill_partition_runs_total{{{SEL}, result="succeeded"}}',
                "values": "0+1x60",
            },
            {
                "series": f'backfill_partition_runs_total{{{SEL}, result="failed"}}',
                "values": "0+1x60",
            },
        ],
        "alert_rule_test": [
            _alert("BackfillHighFailureRatio", "3m"),
            _alert("BackfillHighFailureRatio", "12m", {**BF, "severity": "warning"}),
        ],
    },
    {  # few failures among many successes: quiet
        "interval": "1m",
        "input_series": [
            {
                "series": f'backfill_partition_runs_total{{{SEL}, result="succeeded"}}',
                "values": "0+10x60",
            },
            {
                "series": f'backfill_partition_runs_total{{{SEL}, result="failed"}}',
                "values": "0+1x60",
            },
        ],
        "alert_rule_test": [_alert("BackfillHighFailureRatio", "40m")],
    },
    {  # reconcile errors keep coming
        "interval": "1m",
        "input_series": [
            {"series": f"backfill_reconcile_errors_total{{{SEL}}}", "values": "0+2x40"},
        ],
        "alert_rule_test": [
            _alert("BackfillReconcileErrors", "10m"),
            _alert("BackfillReconcileErrors", "25m", {**BF, "severity": "warning"}),
        ],
    },
    {  # a terminal failure fires at once, success never
        "interval": "1m",
        "input_series": [
            {"series": f'backfill_phase{{{SEL}, phase="Failed"}}', "values": "0 0 1 1"},
            {"series": f'backfill_phase{{{SEL}, phase="Succeeded"}}', "values": "1 1 0 0"},
        ],
        "alert_rule_test": [
            _alert("BackfillFailed", "1m"),
            _alert("BackfillFailed", "2m", {**BF, "phase": "Failed", "severity": "warning"}),
        ],
    },
]


def test_promtool_test_rules(tmp_path: Path) -> None:
    """When each alert fires, on synthetic series (annotations are checked live above)."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_file = tmp_path / "alerts-without-annotations.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    tests_file = tmp_path / "alerts_test.yaml"
    tests_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules_file.name],
                "evaluation_interval": "1m",
                "tests": RULE_TESTS,
            }
        )
    )
    done = subprocess.run(
        [_tool("promtool"), "test", "rules", str(tests_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
