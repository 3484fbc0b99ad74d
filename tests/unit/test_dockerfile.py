"""Static checks of the Dockerfile (there is no container engine on the test machine).

What `docker build` would do is pinned here instead: two stages on a slim Python base, the
project installed with the same pip command hack/setup.sh runs, a final stage without build
tools that runs as the numeric non-root UID the chart expects, never writes bytecode, carries
the OCI labels, and starts `backfill-operator run`.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [text for kw, text in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Return (global ARG defaults, stages); joins `\\` continuations, drops comments."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return global_args, stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for text in stage.args("ENV"):
        for word in shlex.split(text):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def labels_of(stage: Stage) -> dict[str, str]:
    labels: dict[str, str] = {}
    for text in stage.args("LABEL"):
        for word in shlex.split(text):
            key, _, value = word.partition("=")
            labels[key] = value
    return labels


GLOBAL_ARGS, STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FINAL = STAGES[-1]


def test_multi_stage_on_a_slim_python_base() -> None:
    assert len(STAGES) >= 2
    assert STAGES[0].name == "builder"
    base = GLOBAL_ARGS["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    assert all(s.base == "${PYTHON_IMAGE}" for s in STAGES)
    requires = PYPROJECT["project"]["requires-python"]
    assert requires == ">=3.11" and base.startswith("python:3.11")


def test_final_stage_has_no_build_tools_and_copies_only_the_virtualenv() -> None:
    text = json.dumps(FINAL.instructions)
    for tool in ("gcc", "g++", "build-essential", "make ", "apt-get", "apk ", "pip install"):
        assert tool not in text, tool
    assert not FINAL.args("RUN"), "the final stage runs nothing at build time"
    copies = FINAL.args("COPY")
    assert copies == ["--from=builder /opt/backfill-operator /opt/backfill-operator"]


def test_final_stage_runs_as_the_numeric_non_root_uid_the_chart_uses() -> None:
    (user,) = FINAL.args("USER")
    assert re.fullmatch(r"\d+:\d+", user), user
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0 and gid != 0
    values = yaml.safe_load((ROOT / "charts" / "backfill-operator" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == uid
    assert values["podSecurityContext"]["runAsGroup"] == gid


def test_final_stage_is_ready_for_a_read_only_root_filesystem() -> None:
    env = env_of(FINAL)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/backfill-operator/bin:")
    assert env["HOME"] == "/tmp"  # the chart mounts an emptyDir there


def test_entrypoint_is_the_console_script() -> None:
    (entrypoint,) = FINAL.args("ENTRYPOINT")
    argv = json.loads(entrypoint)
    assert argv == ["backfill-operator", "run"]
    assert "backfill-operator" in PYPROJECT["project"]["scripts"]
    assert {"8080", "8081"} <= set(" ".join(FINAL.args("EXPOSE")).split())


def test_oci_labels() -> None:
    labels = labels_of(FINAL)
    for key in ("title", "description", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}" in labels, key
    license_ = PYPROJECT["project"]["license"]  # PEP 639 string, or the older {text = ...}
    spdx = license_ if isinstance(license_, str) else license_["text"]
    assert labels["org.opencontainers.image.licenses"] == spdx
    version_arg = next(a for a in FINAL.args("ARG") if a.startswith("VERSION="))
    chart = yaml.safe_load((ROOT / "charts" / "backfill-operator" / "Chart.yaml").read_text())
    assert version_arg == f"VERSION={PYPROJECT['project']['version']}"
    assert chart["appVersion"] == PYPROJECT["project"]["version"]


def _pip_install(line: str) -> list[str]:
    """The words after `pip install`, without quiet flags, editable mode, extras, constraints
    and redirections."""
    words = shlex.split(line[line.index("pip install") + len("pip install") :].split("&&")[0])
    kept = []
    for word in words:
        if word in {"-q", "-e", "$@", "${constraints[@]}"} or word.startswith(">"):
            continue
        kept.append(re.sub(r"\[[\w,]+\]$", "", word))
    return kept


def test_install_step_is_the_one_the_test_command_runs() -> None:
    """hack/setup.sh: `pip install -c hack/constraints.txt -e .[dev]` (if the file exists)."""
    setup = (ROOT / "hack" / "setup.sh").read_text()
    (setup_line,) = [ln for ln in setup.splitlines() if "pip install" in ln and "upgrade" not in ln]
    (run,) = [r for r in STAGES[0].args("RUN") if "pip install" in r]
    assert _pip_install(run) == _pip_install(setup_line) == ["."]
    # Both pass the same constraints file when it exists.
    assert "[ -f hack/constraints.txt ]" in setup and "-c hack/constraints.txt" in setup
    assert "[ -f hack/constraints.txt ]" in run and "-c hack/constraints.txt" in run


def test_build_context_holds_what_pip_install_needs() -> None:
    patterns = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert {"pyproject.toml", "operator", "hack/constraints.txt"} <= allowed
    readme = PYPROJECT["project"].get("readme")
    if readme:
        assert readme in allowed
        assert (ROOT / readme).exists(), f"pyproject's readme {readme} is missing: the build fails"
