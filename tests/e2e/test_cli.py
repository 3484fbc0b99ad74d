"""``kubectl backfill`` end to end: the real plugin, found by kubectl on PATH, against the local
control plane with the operator running.

Every command runs as ``kubectl backfill ...`` (kubectl's plugin mechanism execs
``kubectl-backfill`` from ``.venv/bin``). Non-interactive runs have stdin at /dev/null, so
``create`` and ``cancel`` do not ask; interactive runs go through a pseudo-terminal (pexpect)
and answer the prompt. Waits poll with a deadline (``helpers.wait_for``), never sleep.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml

from helpers import partitioned_job_body, wait_for

GROUP = "backfill.dev"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DEFAULT_NAME = re.compile(r"^(?P<job>[a-z0-9-]+)-(?P<day>\d{8})-(?P<token>[0-9a-f]{4})$")

pytestmark = pytest.mark.usefixtures("operator")

Run = Callable[..., subprocess.CompletedProcess[str]]
Spawn = Callable[..., pexpect.spawn]


def plain(text: str) -> str:
    """Text without ANSI escapes and carriage returns."""
    return ANSI.sub("", text).replace("\r", "")


# --------------------------------------------------------------------------------- set-up


@pytest.fixture(scope="module")
def cli_env(cluster: Any) -> dict[str, str]:
    """Environment of a user shell: PATH with .venv/bin (kubectl-backfill) and kubectl."""
    venv_bin = Path(sys.executable).parent
    path = os.pathsep.join([str(venv_bin), str(cluster.bin_dir), os.environ.get("PATH", "")])
    if shutil.which("kubectl-backfill", path=path) is None:
        pytest.fail("kubectl-backfill is not installed in .venv/bin: run hack/setup.sh")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(
        {
            "PATH": path,
            "KUBECONFIG": str(cluster.kubeconfig),
            "COLUMNS": "100",
            "TERM": "xterm-256color",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def kb(cli_env: dict[str, str], namespace: str) -> Run:
    """Run ``kubectl backfill <command line> -n <test namespace>`` without a terminal.

    ``ns=None`` leaves ``-n`` out; ``env`` replaces the environment.
    """

    def run(
        command: str,
        *,
        ns: str | None = namespace,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        argv = ["kubectl", "backfill", *shlex.split(command), *(["-n", ns] if ns else [])]
        proc = subprocess.run(
            argv,
            env=env or cli_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    return run


@pytest.fixture
def spawn(cli_env: dict[str, str], namespace: str) -> Iterator[Spawn]:
    """Start ``kubectl backfill <command line> -n <ns>`` in a pseudo-terminal (100x50)."""
    children: list[pexpect.spawn] = []

    def start(command: str, timeout: float = 120) -> pexpect.spawn:
        child = pexpect.spawn(
            "kubectl",
            ["backfill", *shlex.split(command), "-n", namespace],
            env=cli_env,
            encoding="utf-8",
            dimensions=(50, 100),
            timeout=timeout,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Wait for the end; return the exit status and the raw output since the last expect."""
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus), child.before


def apply_job(
    cluster: Any,
    namespace: str,
    name: str,
    *,
    values: list[str] | None = None,
    annotations: dict[str, str] | None = None,
) -> None:
    """Create a PartitionedJob: daily from 2024-01-01 (UTC), or static ``values``."""
    body = partitioned_job_body(namespace, name, values=values, annotations=annotations)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def get_json(cluster: Any, namespace: str, *what: str) -> Any:
    return json.loads(cluster.kubectl("get", *what, "-n", namespace, "-o", "json").stdout)


def backfill_names(cluster: Any, namespace: str) -> list[str]:
    items = get_json(cluster, namespace, "backfills")["items"]
    return sorted(i["metadata"]["name"] for i in items)


def status_json(kb: Run, name: str) -> dict[str, Any]:
    proc = kb(f"status {name} -o json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> str:
    """Assert the exit code; return stdout."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout


# ------------------------------------------------------------------------------ the plugin


def test_kubectl_finds_the_plugin(cli_env: dict[str, str]) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=cli_env, capture_output=True, text=True, check=False)

    assert "kubectl-backfill" in run("kubectl", "plugin", "list").stdout
    helped = run("kubectl", "backfill", "--help")
    assert helped.returncode == 0
    commands = "create plan status list suspend resume cancel retry-failed logs ui"
    for command in commands.split():
        assert command in helped.stdout


# ------------------------------------------------------------------------------------ plan


def test_plan_table_json_yaml_name(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    out = ok(kb("plan sales --from 2024-01-01 --to 2024-01-12"))
    assert f"PartitionedJob  {namespace}/sales: daily schedule" in out
    assert "Selected        12 partitions: 2024-01-01 … 2024-01-12" in out
    assert "1    2024-01-01   2024-01-01 00:00   2024-01-02 00:00" in out
    assert "12   2024-01-12   2024-01-12 00:00   2024-01-13 00:00" in out

    doc = json.loads(
        ok(kb("plan sales --from 2024-01-01 --to 2024-01-12 --order newest-first -o json"))
    )
    assert doc["count"] == 12 and doc["order"] == "NewestFirst"
    assert [p["key"] for p in doc["partitions"]][:2] == ["2024-01-12", "2024-01-11"]
    assert doc["partitions"][0]["start"] == "2024-01-12T00:00:00Z"

    as_yaml = yaml.safe_load(ok(kb("plan sales --from 2024-01-01 --to 2024-01-03 -o yaml")))
    assert [p["index"] for p in as_yaml["partitions"]] == [0, 1, 2]

    names = ok(kb("plan sales --partitions 2024-02-01,2024-01-05 -o name"))
    assert names.splitlines() == ["2024-01-05", "2024-02-01"]
    assert backfill_names(cluster, namespace) == []  # plan creates nothing


def test_plan_of_static_values(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "regions", values=["us-east-1", "eu-west-1", "ap-south-1"])
    out = ok(kb("plan regions --from eu-west-1 -o name"))
    assert out.splitlines() == ["eu-west-1", "ap-south-1"]


# ---------------------------------------------------------------------------------- create


def test_create_asks_in_a_terminal_then_follows_to_success(
    cluster: Any, namespace: str, spawn: Spawn
) -> None:
    apply_job(cluster, namespace, "sales")
    child = spawn("create sales --from 2024-03-01 --to 2024-03-12 --concurrency 4 --wait")
    child.expect(r"Create Backfill (\S+) \(12 partitions\)\? \[y/N\]: ")
    name = child.match.group(1)
    preview = plain(child.before)
    assert "Selected        12 partitions: 2024-03-01 … 2024-03-12" in preview
    assert "To run          12 partitions, oldest first, 4 at a time, no retries" in preview
    assert "First           2024-03-01, 2024-03-02, 2024-03-03, 2024-03-04, 2024-03-05" in preview
    assert "Last            2024-03-08, 2024-03-09, 2024-03-10, 2024-03-11, 2024-03-12" in preview
    m = DEFAULT_NAME.match(name)
    assert m is not None and m["job"] == "sales"
    assert backfill_names(cluster, namespace) == []  # nothing before the answer
    child.sendline("y")
    code, raw = finish(child)
    out = plain(raw)
    assert code == 0, out
    assert f"backfill.{GROUP}/{name} created" in out
    assert f"Backfill {name} succeeded: 12 of 12 partitions." in out
    # The live view: coloured boxes, redrawn in place (the cursor moves up between frames).
    assert "\x1b[32m■" in raw and "\x1b[1A" in raw
    assert "Progress" in out and "12/12  100%" in out
    body = get_json(cluster, namespace, "backfill", name)
    assert body["spec"]["range"] == {"from": "2024-03-01", "to": "2024-03-12"}
    assert body["spec"]["concurrency"] == 4
    assert body["status"]["phase"] == "Succeeded"


def test_create_declined_creates_nothing(cluster: Any, namespace: str, spawn: Spawn) -> None:
    apply_job(cluster, namespace, "sales")
    child = spawn("create sales --partitions 2024-01-02 --name nope")
    child.expect(r"\[y/N\]: ")
    child.sendline("n")
    code, raw = finish(child)
    assert code == 1 and "Aborted: nothing created." in plain(raw)
    assert backfill_names(cluster, namespace) == []


def test_create_without_a_terminal_does_not_ask_and_wait_reports_failures(
    cluster: Any, namespace: str, kb: Run
) -> None:
    fail = {"kwok.backfill.dev/fail-partitions": "2024-01-03,2024-01-05"}
    apply_job(cluster, namespace, "flaky", annotations=fail)
    proc = kb("create flaky --from 2024-01-01 --to 2024-01-08 --name f1 --wait --interval 0.3")
    out = ok(proc, 1)
    assert "[y/N]" not in out + proc.stderr
    assert f"backfill.{GROUP}/f1 created" in out
    assert re.search(r"^\d\d:\d\d:\d\d Running \d+/8 done", out, re.M)  # follow lines
    assert "2024-01-01 ##X#X###" in out  # the grid, in ASCII without a terminal
    assert "Phase           Failed  2 of 8 partitions failed" in out
    assert (
        "Backfill f1 failed: 2 of 8 partitions failed (2024-01-03, 2024-01-05). "
        f"Run them again with: kubectl backfill retry-failed f1 -n {namespace}"
    ) in out


def test_create_dry_run(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    out = ok(kb("create sales --from 2024-01-01 --to 2024-01-20 --dry-run --name dry --wait"))
    assert "Backfill        dry  (dry run)" in out
    assert "Dry run of Backfill dry planned: dry run: 20 partitions would run" in out
    assert get_json(cluster, namespace, "jobs")["items"] == []
    doc = status_json(kb, "dry")
    assert doc["dryRun"] is True and doc["plan"]["count"] == 20


def test_create_with_priority_and_a_kueue_queue(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    flags = "--priority 5 --queue team-a --queue-priority-class batch-high"
    out = ok(kb(f"create sales --from 2024-01-01 --to 2024-01-03 {flags} --dry-run --name prio"))
    assert (
        "To run          3 partitions, oldest first, 10 at a time, no retries, priority 5, "
        "Kueue queue team-a (priority class batch-high)"
    ) in out
    spec = get_json(cluster, namespace, "backfill", "prio")["spec"]
    assert spec["priority"] == 5
    assert spec["kueue"] == {"queueName": "team-a", "priorityClass": "batch-high"}
    proc = kb("create sales --from 2024-01-01 --queue-priority-class batch-high")
    assert proc.returncode == 2 and "--queue-priority-class needs --queue" in proc.stderr
    assert backfill_names(cluster, namespace) == ["prio"]


def test_create_with_nothing_to_run(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --partitions 2024-01-01,2024-01-02 --name first --wait"))
    out = ok(kb("create sales --from 2024-01-01 --to 2024-01-02 --name second"))
    assert "Skipped         2 with a recorded outcome (reprocess Missing" in out
    assert "Nothing to run" in out and backfill_names(cluster, namespace) == ["first"]


# ---------------------------------------------------------------------------------- status


def test_status_once_text_and_json(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --from 2024-01-01 --to 2024-01-10 --name s1 --wait"))
    out = ok(kb("status s1"))
    assert f"Backfill        {namespace}/s1" in out
    assert "Phase           Succeeded  10 of 10 partitions succeeded" in out
    assert "[" + "#" * 58 + "]  10/10  100%" in out
    assert "10 succeeded · 0 failed · 0 running · 0 pending · 0 skipped" in out
    assert "2024-01-01 ##########" in out
    doc = status_json(kb, "s1")
    assert doc["phase"] == "Succeeded" and doc["counts"]["succeeded"] == 10
    assert doc["partitions"]["succeeded"] == "0-9" and doc["etaSeconds"] == 0


def test_status_watch_in_a_terminal(cluster: Any, namespace: str, kb: Run, spawn: Spawn) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --from 2024-01-01 --to 2024-01-08 --concurrency 2 --name w1"))
    ok(kb("suspend w1"))  # held until the watch is on screen: it sees the run, however fast
    child = spawn("status w1 -w --interval 0.3")
    child.expect("Suspended")
    ok(kb("resume w1"))
    child.expect("Running")
    code, raw = finish(child)
    out = plain(raw)
    assert code == 0, out
    assert "Backfill w1 succeeded: 8 of 8 partitions." in out
    assert len(set(re.findall(r"(\d)/8  \d+%", out))) >= 2  # progress moved while watching
    assert "■" in out and "ETA" in out and "\x1b[1A" in raw


def test_status_watch_json_lines(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --partitions 2024-01-01,2024-01-02 --name j1"))
    docs = [json.loads(line) for line in ok(kb("status j1 -w -o json --interval 0.3")).splitlines()]
    assert docs[-1]["phase"] == "Succeeded" and docs[-1]["counts"]["succeeded"] == 2


# --------------------------------------------------------------------------- list, suspend


def test_list_in_a_namespace_and_all(cluster: Any, namespace: str, kb: Run) -> None:
    empty = kb("list")
    assert empty.returncode == 0
    assert f'No Backfills found in namespace "{namespace}".' in empty.stderr
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --partitions 2024-01-01 --name b-one --wait"))
    ok(kb("create sales --from 2024-02-01 --to 2024-02-03 --dry-run --name b-two"))
    table = ok(kb("list")).splitlines()
    assert table[0].split() == ["NAME", "JOB", "PHASE", "PROGRESS", "FAILED", "RUNNING", "AGE"]
    assert table[1].split()[:5] == ["b-one", "sales", "Succeeded", "1/1", "0"]
    assert table[2].split()[:3] == ["b-two", "sales", "Pending"]
    everywhere = ok(kb("list -A", ns=None))
    assert re.search(rf"^{namespace}\s+b-one\s+sales\s+Succeeded", everywhere, re.M)
    names = ok(kb("list -o name")).splitlines()
    assert names == [f"backfill.{GROUP}/b-one", f"backfill.{GROUP}/b-two"]


def test_suspend_and_resume(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "slow", annotations={"kwok.backfill.dev/duration": "2s"})
    ok(kb("create slow --from 2024-01-01 --to 2024-01-20 --concurrency 1 --name sl"))
    assert f"backfill.{GROUP}/sl suspended" in ok(kb("suspend sl"))
    assert get_json(cluster, namespace, "backfill", "sl")["spec"]["suspend"] is True
    wait_for(lambda: status_json(kb, "sl")["phase"] == "Suspended", 30, 0.3, message="Suspended")
    assert "already suspended" in ok(kb("suspend sl"))
    assert "ETA - (suspended)" in ok(kb("status sl"))
    assert f"backfill.{GROUP}/sl resumed" in ok(kb("resume sl"))
    assert get_json(cluster, namespace, "backfill", "sl")["spec"]["suspend"] is False
    wait_for(lambda: status_json(kb, "sl")["phase"] == "Running", 30, 0.3, message="Running")


# ---------------------------------------------------------------------------------- cancel


def test_cancel_asks_then_deletes_the_backfill_and_its_jobs(
    cluster: Any, namespace: str, kb: Run, spawn: Spawn
) -> None:
    apply_job(cluster, namespace, "slow", annotations={"kwok.backfill.dev/duration": "30s"})
    ok(kb("create slow --from 2024-01-01 --to 2024-01-10 --concurrency 3 --name c1"))
    wait_for(lambda: status_json(kb, "c1")["counts"]["running"] == 3, 30, 0.3, message="3 run")

    child = spawn("cancel c1")
    child.expect(r"Cancel Backfill c1\? It is deleted and its 3 running Jobs are stopped ")
    child.expect(r"\[y/N\]: ")
    child.sendline("n")
    code, raw = finish(child)
    assert code == 1 and "Aborted: Backfill c1 kept." in plain(raw)
    assert backfill_names(cluster, namespace) == ["c1"]

    child = spawn("cancel c1")
    child.expect(r"\[y/N\]: ")
    child.sendline("y")
    code, raw = finish(child)
    assert code == 0
    assert f"backfill.{GROUP}/c1 deleted; its 3 running Jobs are removed" in plain(raw)
    assert backfill_names(cluster, namespace) == []
    wait_for(
        lambda: get_json(cluster, namespace, "jobs")["items"] == [],
        60,
        0.5,
        message="Jobs garbage-collected",
    )
    gone = kb("status c1")
    assert gone.returncode == 2 and 'Backfill "c1" not found' in gone.stderr


def test_cancel_without_a_terminal_does_not_ask(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --partitions 2024-01-01 --name c2"))
    assert f"backfill.{GROUP}/c2 deleted" in ok(kb("cancel c2"))
    assert backfill_names(cluster, namespace) == []


# ---------------------------------------------------------------------------- retry-failed


def test_retry_failed_runs_exactly_the_failed_partitions(
    cluster: Any, namespace: str, kb: Run
) -> None:
    fail = {"kwok.backfill.dev/fail-partitions": "2024-01-02,2024-01-06"}
    apply_job(cluster, namespace, "flaky", annotations=fail)
    ok(kb("create flaky --from 2024-01-01 --to 2024-01-07 --name r1 --concurrency 7 --wait"), 1)
    # The fix: the job no longer fails those partitions.
    path = "/spec/jobTemplate/spec/template/metadata/annotations/kwok.backfill.dev~1fail-partitions"
    patch = json.dumps([{"op": "remove", "path": path}])
    cluster.kubectl("patch", "partitionedjob", "flaky", "-n", namespace, "--type=json", "-p", patch)
    out = ok(kb("retry-failed r1 --name r1-again --wait --interval 0.3"))
    assert "Partitions      2024-01-02, 2024-01-06" in out
    assert "Backfill r1-again succeeded: 2 of 2 partitions." in out
    body = get_json(cluster, namespace, "backfill", "r1-again")
    assert body["spec"]["partitions"] == ["2024-01-02", "2024-01-06"]
    assert body["spec"]["reprocess"] == "All" and body["spec"]["concurrency"] == 7
    assert body["metadata"]["labels"] == {f"{GROUP}/retry-of": "r1"}
    assert "has no failed partitions; nothing to retry" in ok(kb("retry-failed r1-again"))


def apply_stepped_job(cluster: Any, namespace: str, name: str, *, fail_validate: str) -> None:
    """A PartitionedJob with steps ingest -> validate -> publish, daily from 2024-01-01 (UTC);
    validate fails for the partitions of ``fail_validate``."""

    def step(step: str, after: list[str], annotations: dict[str, str]) -> dict[str, Any]:
        container = {"name": "main", "image": "example.com/etl:1", "args": ["$(PARTITION_KEY)"]}
        return {
            "name": step,
            **({"dependsOn": after} if after else {}),
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {
                            "annotations": {"kwok.backfill.dev/duration": "1s", **annotations}
                        },
                        "spec": {"restartPolicy": "Never", "containers": [container]},
                    },
                }
            },
        }

    body = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "PartitionedJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "partitions": {"schedule": {"cron": "0 0 * * *", "start": "2024-01-01"}},
            "steps": [
                step("ingest", [], {}),
                step("validate", ["ingest"], {"kwok.backfill.dev/fail-partitions": fail_validate}),
                step("publish", ["validate"], {}),
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def test_steps_grid_parameters_and_retry_of_only_the_failed_steps(
    cluster: Any, namespace: str, kb: Run
) -> None:
    """Issue 12: one row of the grid per step, --env and --label on the Jobs, and
    retry-failed re-running validate and publish of the failed day, not ingest."""
    apply_stepped_job(cluster, namespace, "pipeline", fail_validate="2024-03-11")
    refused = kb("create pipeline --from 2024-03-10 --env PARTITION_KEY=x")
    assert refused.returncode == 2 and "--env PARTITION_KEY: the operator sets" in refused.stderr
    assert backfill_names(cluster, namespace) == []
    out = ok(
        kb(
            "create pipeline --from 2024-03-10 --to 2024-03-12 --env MODE=full --label team=data "
            "--name p1 --wait --interval 0.3"
        ),
        1,
    )
    assert "Steps           all 3: ingest, validate, publish" in out
    for row in ("ingest    2024-03-10 ###", "validate  2024-03-10 #X#", "publish   2024-03-10 #u#"):
        assert row in out, out
    assert "u upstream failed" in out
    assert f"kubectl backfill retry-failed p1 -n {namespace}" in out
    doc = status_json(kb, "p1")
    assert [s["name"] for s in doc["steps"]] == ["ingest", "validate", "publish"]
    (failed,) = [
        j
        for j in get_json(cluster, namespace, "jobs", "-l", f"{GROUP}/backfill=p1")["items"]
        if j["metadata"]["labels"].get(f"{GROUP}/step") == "validate"
        and (j["status"].get("failed") or 0) > 0
    ]
    assert failed["metadata"]["labels"]["team"] == "data"
    env = failed["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MODE", "value": "full"} in env
    # The fix: validate no longer fails.
    path = (
        "/spec/steps/1/jobTemplate/spec/template/metadata/annotations/"
        "kwok.backfill.dev~1fail-partitions"
    )
    patch = json.dumps([{"op": "remove", "path": path}])
    cluster.kubectl(
        "patch", "partitionedjob", "pipeline", "-n", namespace, "--type=json", "-p", patch
    )
    out = ok(kb("retry-failed p1 --name p1-again --wait --interval 0.3"))
    assert "Partitions      2024-03-11" in out
    body = get_json(cluster, namespace, "backfill", "p1-again")
    assert body["spec"]["partitions"] == ["2024-03-11"] and body["spec"]["reprocess"] == "Failed"
    assert body["spec"]["env"] == [{"name": "MODE", "value": "full"}]
    jobs = get_json(cluster, namespace, "jobs", "-l", f"{GROUP}/backfill=p1-again")["items"]
    assert sorted(j["metadata"]["labels"][f"{GROUP}/step"] for j in jobs) == [
        "publish",
        "validate",
    ]


# ------------------------------------------------------------------------------------ logs


def test_logs_explain_why_there_is_no_log(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --from 2024-01-01 --to 2024-01-06 --name l1 --wait"))

    def jobs_left() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = get_json(
            cluster, namespace, "jobs", "-l", f"{GROUP}/backfill=l1"
        )["items"]
        return items

    # The operator deletes finished Jobs beyond successfulJobsHistoryLimit (3) once their
    # outcome is recorded: wait for that, so that the Jobs seen here stay.
    wait_for(lambda: 0 < len(jobs_left()) <= 3, 30, 0.3, message="history limit applied")
    kept = {j["metadata"]["annotations"][f"{GROUP}/partition-key"] for j in jobs_left()}
    key = sorted(kept)[0]
    proc = kb(f"logs l1 --partition {key}")
    assert proc.returncode == 1
    error = proc.stderr.splitlines()[-1]
    assert error.startswith(f"error: no log available for partition {key}: pod l1-")
    assert " on node kwok-node-" in error and ": the apiserver said: " in error
    assert f"partition {key}: Job l1-" in proc.stderr  # which Job and pod it looked at

    deleted = sorted({f"2024-01-0{d}" for d in range(1, 7)} - kept)[0]
    gone = kb(f"logs l1 --partition {deleted}")
    assert gone.returncode == 1 and "it succeeded and its Job was deleted" in gone.stderr
    outside = kb("logs l1 --partition 2024-02-01")
    assert outside.returncode == 2
    assert "is not one of Backfill l1's partitions (2024-01-01 … 2024-01-06)" in outside.stderr
    bogus = kb("logs l1 --partition yesterday")
    assert bogus.returncode == 2 and 'partition "yesterday" is not a partition' in bogus.stderr


# ----------------------------------------------------------------------------- namespaces


def test_namespace_from_the_context_and_flags_before_the_command(
    cluster: Any, namespace: str, kb: Run, cli_env: dict[str, str], tmp_path: Path
) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --partitions 2024-01-01 --name n1"))
    config = tmp_path / "kubeconfig"
    shutil.copy(cluster.kubeconfig, config)
    cluster.kubectl(
        "config", "set-context", "--current", f"--namespace={namespace}", f"--kubeconfig={config}"
    )
    from_context = kb("list -o name", ns=None, env={**cli_env, "KUBECONFIG": str(config)})
    assert ok(from_context).splitlines() == [f"backfill.{GROUP}/n1"]
    context = cluster.kubectl("config", "current-context", f"--kubeconfig={config}").stdout
    flags_first = kb(
        f"--kubeconfig {cluster.kubeconfig} --context {context.strip()} -n {namespace} "
        "list -o name",
        ns=None,
    )
    assert ok(flags_first).splitlines() == [f"backfill.{GROUP}/n1"]


# ---------------------------------------------------------------------------------- errors


def test_errors_are_one_actionable_line(cluster: Any, namespace: str, kb: Run) -> None:
    apply_job(cluster, namespace, "sales")
    ok(kb("create sales --partitions 2024-01-01 --name taken"))
    ghost = f'error: Backfill "ghost" not found in namespace "{namespace}"'
    cases = [
        (
            "create nosuch --from 2024-01-01",
            f'error: PartitionedJob "nosuch" not found in namespace "{namespace}" (it has: sales)',
        ),
        (
            "create sales --from 2024-13-45",
            'error: --from "2024-13-45" is not a partition key or timestamp',
        ),
        (
            "plan sales --from 2024-01-01 --to someday",
            'error: --to "someday" is not a partition key or timestamp',
        ),
        (
            "create sales --from 2023-01-01 --to 2023-06-30",
            'error: the range from "2023-01-01" to "2023-06-30" selects no partitions; the '
            'complete partitions run from "2024-01-01" to',
        ),
        (
            "create sales --partitions 2024-01-02 --name taken",
            f'error: a Backfill named "taken" already exists in namespace "{namespace}"',
        ),
        ("status ghost", ghost),
        ("suspend ghost", ghost),
        ("resume ghost", ghost),
        ("cancel ghost", ghost),
        ("retry-failed ghost", ghost),
        ("logs ghost --partition x", ghost),
        (
            "create sales --from x --partitions y",
            "error: give either --from (with an optional --to) or --partitions",
        ),
        ("create sales --wat", "error: No such option: --wat"),
    ]
    for command, message in cases:
        proc = kb(command)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(message), (command, proc.stderr)
        assert len(proc.stderr.splitlines()) <= 2, proc.stderr  # usage errors add "See ..."


def test_no_reachable_cluster(
    cluster: Any, kb: Run, cli_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "kubeconfig"
    shutil.copy(cluster.kubeconfig, config)
    name = yaml.safe_load(config.read_text())["clusters"][0]["name"]
    cluster.kubectl(
        "config", "set-cluster", name, "--server=https://127.0.0.1:9", f"--kubeconfig={config}"
    )
    proc = kb("list", env={**cli_env, "KUBECONFIG": str(config)})
    assert proc.returncode == 3
    assert proc.stderr.startswith(
        "error: cannot reach the Kubernetes API server at https://127.0.0.1:9"
    )
    assert "connection refused; is the cluster running?" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_crds_not_installed(kb: Run, cli_env: dict[str, str], tmp_path: Path) -> None:
    from devcluster import Cluster

    with Cluster.start(tmp_path / "bare", nodes=0, tie_to_parent=True) as bare:
        proc = kb(
            "create sales --from 2024-01-01", env={**cli_env, "KUBECONFIG": str(bare.kubeconfig)}
        )
    assert proc.returncode == 3
    assert proc.stderr.startswith(
        "error: the PartitionedJob API (partitionedjobs.backfill.dev/v1alpha1) is not "
        "installed in the cluster of context"
    )
    assert "backfill-operator crds | kubectl apply -f -" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_missing_fills_what_the_schedule_left_and_status_shows_the_job(
    cluster: Any, namespace: str, kb: Run
) -> None:
    """A schedule with catchUp None leaves 10 closed hourly windows; `missing --create`
    creates the Backfill that runs them, after which nothing is missing and the schedule
    reports no missed partition (issue 10)."""
    from datetime import UTC, datetime, timedelta

    end = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    start = end - timedelta(hours=10)
    body = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "PartitionedJob",
        "metadata": {"name": "hourly", "namespace": namespace},
        "spec": {
            "partitions": {
                "schedule": {
                    "cron": f"{end.minute} * * * *",
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                }
            },
            "runs": {"catchUp": "None"},
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": {"kwok.backfill.dev/duration": "1s"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "example.com/etl:1"}],
                        },
                    },
                }
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))

    def missed() -> int | None:
        runs = (get_json(cluster, namespace, "pj", "hourly").get("status") or {}).get("runs")
        return None if runs is None or runs.get("considered") != 9 else runs["missed"]["count"]

    assert wait_for(missed, 30, 0.3, message="the schedule decided") == 10
    listed = kb("missing hourly -o json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["count"] == 10 and document["schedule"]["left"] == 10
    assert document["ranges"][0]["first"] == start.strftime("%Y-%m-%dT%H:%M")
    shown = kb("status pj/hourly")
    assert shown.returncode == 0, shown.stderr
    text = plain(shown.stdout)
    assert "missed" in text.lower() and "10 partitions" in text, shown.stdout
    created = kb("missing hourly --create --yes")
    assert created.returncode == 0, created.stdout + created.stderr
    (name,) = backfill_names(cluster, namespace)
    wait_for(lambda: missed() == 0, 90, 0.5, message="the Backfill filled the missed ones")
    assert get_json(cluster, namespace, "bf", name)["status"]["counts"]["succeeded"] == 10
    again = kb("missing hourly -o json")
    assert again.returncode == 0 and json.loads(again.stdout)["count"] == 0, again.stdout
    paused = kb("suspend pj/hourly")
    assert paused.returncode == 0, paused.stderr
    assert get_json(cluster, namespace, "pj", "hourly")["spec"]["runs"]["suspend"] is True
