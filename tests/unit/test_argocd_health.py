"""The Argo CD health check (docs/argocd/health.lua), run by a real Lua interpreter.

Each case builds an object the way the operator writes it (the pydantic status models and the
condition helpers of backfill_operator), turns it into a Lua table, runs the script with
lua5.4 as Argo CD runs it (a chunk reading the global `obj`, returning `{status, message}`)
and checks the verdict.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from backfill_operator.api.crdgen import build_crds
from backfill_operator.api.model import (
    API_VERSION,
    GROUP,
    BackfillStatus,
    PartitionCounts,
    PartitionedJobStatus,
    Phase,
)
from backfill_operator.api.reasons import ConditionType, Reason
from backfill_operator.planning import conditions

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "argocd" / "health.lua"
ARGOCD_CM = ROOT / "docs" / "argocd" / "argocd-cm.yaml"

HARNESS = """
local check = assert(loadfile(arg[1]))
obj = dofile(arg[2])
local hs = check()
assert(type(hs) == "table", "the script must return a table")
io.write(tostring(hs.status), "\\n", tostring(hs.message), "\\n")
"""


def lua_literal(value: Any) -> str:
    """Return ``value`` (JSON-like) as a Lua table constructor expression."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            c if c.isprintable() and c not in '\\"' else f"\\{ord(c):03d}" for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        items = (f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(type(value))


def run_health(obj: dict[str, Any], tmp_path: Path, script: Path = SCRIPT) -> tuple[str, str]:
    lua = shutil.which("lua5.4")
    if lua is None:
        pytest.fail(
            "lua5.4 not found: run the tests through `make test` (hack/setup.sh installs it)"
        )
    harness = tmp_path / "harness.lua"
    harness.write_text(HARNESS)
    data = tmp_path / "obj.lua"
    data.write_text("return " + lua_literal(obj) + "\n")
    done = subprocess.run(
        [lua, str(harness), str(script), str(data)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status, message = done.stdout.split("\n")[:2]
    return status, message


def cond(ctype: ConditionType, status: bool, reason: Reason, message: str, gen: int) -> Any:
    return conditions.make(ctype, status, reason, message, gen).model_copy(
        update={"last_transition_time": "2024-10-27T00:00:00Z"}
    )


def backfill(generation: int, status: BackfillStatus | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Backfill",
        "metadata": {"name": "sales-2024", "namespace": "data", "generation": generation},
        "spec": {"jobRef": {"name": "sales-pipeline"}, "range": {"from": "2024-01-01"}},
    }
    if status is not None:
        obj["status"] = status.to_api()
    return obj


def bf_status(phase: Phase, gen: int, *conds: Any, observed: int | None = None) -> BackfillStatus:
    return BackfillStatus(
        phase=phase,
        observed_generation=gen if observed is None else observed,
        conditions=list(conds),
        counts=PartitionCounts(total=300, pending=100, running=10, succeeded=190),
    )


R, RC, S = ConditionType.READY, ConditionType.RECONCILING, ConditionType.STALLED

BACKFILL_CASES = {
    "no status yet": (backfill(1, None), "Progressing", "Waiting for the operator"),
    "running": (
        backfill(
            2,
            bf_status(
                Phase.RUNNING,
                2,
                cond(R, False, Reason.IN_PROGRESS, "190 of 300 partitions done", 2),
                cond(RC, True, Reason.WAITING_FOR_JOBS, "10 Jobs running", 2),
                cond(S, False, Reason.AS_EXPECTED, "", 2),
            ),
        ),
        "Progressing",
        "10 Jobs running",
    ),
    "pending, no conditions": (backfill(1, bf_status(Phase.PENDING, 1)), "Progressing", "Pending"),
    "succeeded": (
        backfill(
            1,
            bf_status(
                Phase.SUCCEEDED,
                1,
                cond(R, True, Reason.SUCCEEDED, "300 of 300 partitions succeeded", 1),
                cond(RC, False, Reason.SUCCEEDED, "", 1),
                cond(S, False, Reason.AS_EXPECTED, "", 1),
            ),
        ),
        "Healthy",
        "300 of 300 partitions succeeded",
    ),
    "edited after success, not yet observed": (
        backfill(
            3,
            bf_status(
                Phase.SUCCEEDED,
                3,
                cond(R, True, Reason.SUCCEEDED, "done", 2),
                observed=2,
            ),
        ),
        "Progressing",
        "generation 3",
    ),
    "failed": (
        backfill(
            1,
            bf_status(
                Phase.FAILED,
                1,
                cond(
                    R,
                    False,
                    Reason.PARTITIONS_FAILED,
                    "2 partitions failed: 2024-03-11, 2024-03-12",
                    1,
                ),
                cond(RC, False, Reason.PARTITIONS_FAILED, "", 1),
                cond(S, False, Reason.AS_EXPECTED, "", 1),
            ),
        ),
        "Degraded",
        "2 partitions failed",
    ),
    "failure budget exhausted": (
        backfill(
            1,
            bf_status(
                Phase.FAILED,
                1,
                cond(R, False, Reason.FAILURE_BUDGET_EXHAUSTED, "", 1),
            ),
        ),
        "Degraded",
        "FailureBudgetExhausted",
    ),
    "invalid": (
        backfill(
            1,
            bf_status(
                Phase.INVALID,
                1,
                cond(
                    R, False, Reason.INVALID_SELECTION, "range.from 2023-01-01 is before the job", 1
                ),
                cond(
                    S, True, Reason.INVALID_SELECTION, "range.from 2023-01-01 is before the job", 1
                ),
            ),
        ),
        "Degraded",
        "range.from 2023-01-01 is before the job",
    ),
    "stalled while running": (
        backfill(
            1,
            bf_status(
                Phase.RUNNING,
                1,
                cond(
                    S, True, Reason.PARTITIONED_JOB_NOT_FOUND, "PartitionedJob sales was deleted", 1
                ),
            ),
        ),
        "Degraded",
        "PartitionedJob sales was deleted",
    ),
    "suspended": (
        backfill(
            4,
            bf_status(
                Phase.SUSPENDED,
                4,
                cond(R, False, Reason.SUSPENDED, "suspended with 100 partitions pending", 4),
                cond(RC, False, Reason.SUSPENDED, "", 4),
            ),
        ),
        "Suspended",
        "suspended with 100 partitions pending",
    ),
    "dry run planned": (
        backfill(
            1,
            bf_status(
                Phase.SUCCEEDED,
                1,
                cond(R, True, Reason.DRY_RUN, "would run 300 partitions", 1),
            ),
        ),
        "Healthy",
        "would run 300 partitions",
    ),
}


def partitioned_job(generation: int, status: PartitionedJobStatus | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "PartitionedJob",
        "metadata": {"name": "sales-pipeline", "namespace": "data", "generation": generation},
    }
    if status is not None:
        obj["status"] = status.to_api()
    return obj


PARTITIONED_JOB_CASES = {
    "no status yet": (partitioned_job(1, None), "Progressing", "Waiting"),
    "valid": (
        partitioned_job(
            2,
            PartitionedJobStatus(
                observed_generation=2,
                conditions=[cond(R, True, Reason.VALID, "daily partitions from 2024-01-01", 2)],
            ),
        ),
        "Healthy",
        "daily partitions from 2024-01-01",
    ),
    "invalid cron": (
        partitioned_job(
            1,
            PartitionedJobStatus(
                observed_generation=1,
                conditions=[
                    cond(R, False, Reason.INVALID_PARTITIONS, "bad cron '61 * * * *'", 1),
                    cond(S, True, Reason.INVALID_PARTITIONS, "bad cron '61 * * * *'", 1),
                ],
            ),
        ),
        "Degraded",
        "bad cron '61 * * * *'",
    ),
    "stale Ready condition": (
        partitioned_job(
            3,
            PartitionedJobStatus(
                observed_generation=3,
                conditions=[cond(R, True, Reason.VALID, "old", 2)],
            ),
        ),
        "Progressing",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(BACKFILL_CASES))
def test_backfill_health(case: str, tmp_path: Path) -> None:
    obj, want_status, want_message = BACKFILL_CASES[case]
    status, message = run_health(obj, tmp_path)
    assert status == want_status, message
    assert want_message in message


@pytest.mark.parametrize("case", sorted(PARTITIONED_JOB_CASES))
def test_partitioned_job_health(case: str, tmp_path: Path) -> None:
    obj, want_status, want_message = PARTITIONED_JOB_CASES[case]
    status, message = run_health(obj, tmp_path)
    assert status == want_status, message
    assert want_message in message


def test_argocd_cm_embeds_the_script_for_both_kinds(tmp_path: Path) -> None:
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    kinds = {crd["spec"]["names"]["kind"] for crd in build_crds().values()}
    assert kinds == {"Backfill", "PartitionedJob"}
    expected = {f"resource.customizations.health.{GROUP}_{kind}" for kind in kinds}
    assert set(config_map["data"]) == expected
    for key in expected:
        assert config_map["data"][key] == SCRIPT.read_text(), key
    # The embedded copy runs too (YAML block scalars can eat characters).
    embedded = tmp_path / "embedded.lua"
    embedded.write_text(next(iter(config_map["data"].values())))
    obj, want, _ = BACKFILL_CASES["succeeded"]
    assert run_health(obj, tmp_path, embedded)[0] == want


def test_script_stays_within_lua_5_1_as_argo_cd_runs_it() -> None:
    """Argo CD embeds gopher-lua (Lua 5.1): no syntax from 5.2 or later."""
    code = "\n".join(line.split("--", 1)[0] for line in SCRIPT.read_text().splitlines())
    code = re.sub(r'"[^"\n]*"', '""', code)
    for pattern, feature in [
        (r"\bgoto\b", "goto"),
        (r"//", "integer division"),
        (r"<const>|<close>", "attributes"),
        (r"[&|]|~(?!=)|<<|>>", "bitwise operators"),
        (r"\b(table\.unpack|table\.move|utf8\.|math\.type|math\.tointeger)\b", "5.3 library"),
    ]:
        assert not re.search(pattern, code), feature
