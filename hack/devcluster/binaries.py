"""Where the control-plane binaries and the repository files come from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: binaries `up` needs, all in one directory (the links dir printed by build.sh).
REQUIRED_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
)


class BinariesError(RuntimeError):
    """The binaries could not be found or built."""


def repo_root() -> Path:
    """Return the repository root (this file is ``<root>/hack/devcluster/binaries.py``)."""
    return Path(__file__).resolve().parents[2]


def stages_file() -> Path:
    """Return the KWOK stages file, ``<root>/hack/controlplane/kwok-stages.yaml``."""
    return repo_root() / "hack" / "controlplane" / "kwok-stages.yaml"


def default_data_dir() -> Path:
    """Return ``$BACKFILL_CLUSTER_DIR`` if set, else ``<root>/.cluster``."""
    env = os.environ.get("BACKFILL_CLUSTER_DIR")
    return Path(env).expanduser().resolve() if env else repo_root() / ".cluster"


def _check(bin_dir: Path) -> Path:
    missing = [b for b in REQUIRED_BINARIES if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise BinariesError(f"{bin_dir} lacks executable(s): {', '.join(missing)}")
    return bin_dir


def resolve_bin_dir(explicit: str | Path | None = None) -> Path:
    """Return a directory holding every binary in REQUIRED_BINARIES.

    Order: ``explicit``, then ``$BACKFILL_BIN_DIR``, then the last stdout line of
    ``hack/controlplane/build.sh`` (every module, so the directory also holds helm for the chart
    tests; instant when the cache is warm, a cold build takes minutes and reports on our
    stderr). Raises BinariesError.
    """
    chosen = explicit or os.environ.get("BACKFILL_BIN_DIR")
    if chosen:
        return _check(Path(chosen).expanduser().resolve())
    script = repo_root() / "hack" / "controlplane" / "build.sh"
    try:
        result = subprocess.run(
            [str(script)],
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise BinariesError(f"cannot run {script}: {exc}") from exc
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BinariesError(f"{script} failed with exit code {result.returncode}")
    return _check(Path(lines[-1]))
