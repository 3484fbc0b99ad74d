"""The operator as users run it: a real ``backfill-operator run`` process against the cluster.

Fixtures (registered by ``tests/integration/conftest.py`` and ``tests/e2e/conftest.py``):

``crds_installed`` (session)    the CRDs from ``crds/`` applied and Established.
``operator_process`` (session)  an :class:`OperatorProcess`, running; tests that kill it must
                                leave it running (``restart()``), the fixture re-checks this.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorProcess:
    """One ``backfill-operator run --all-namespaces --standalone`` child process."""

    def __init__(self, kubeconfig: Path, log_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def metrics_url(self) -> str:
        """URL of the operator's Prometheus exposition."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        """The current run's log file."""
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        """Start the process and wait until /healthz answers (kopf is watching)."""
        self.starts += 1
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT / "operator"), os.environ.get("PYTHONPATH")) if p
            ),
        }
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backfill_operator",
                "run",
                "--all-namespaces",
                "--standalone",
                "--metrics-port",
                str(self.metrics_port),
                "--metrics-address",
                "127.0.0.1",
                "--liveness-port",
                str(self.liveness_port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, 60, 0.2, message=lambda: f"operator healthy; log:\n{self.tail()}")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited {self.proc.returncode}:\n{self.tail()}")
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def running(self) -> bool:
        """True while the process lives."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process (no graceful shutdown: a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        """Start again if not running."""
        if not self.running():
            self.start()

    def metrics(self) -> str:
        """Return the current exposition text."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text: str = response.read().decode()
            return text

    def tail(self, lines: int = 60) -> str:
        """Last lines of the current log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture(scope="session")
def crds_installed(cluster: Any) -> None:
    """Apply crds/ with server-side apply and wait until both CRDs are Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for name in ("backfills.backfill.dev", "partitionedjobs.backfill.dev"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


@pytest.fixture(scope="session")
def operator_process(
    cluster: Any, crds_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, running for the whole session against ``cluster``."""
    op = OperatorProcess(Path(cluster.kubeconfig), tmp_path_factory.mktemp("operator"))
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def operator(operator_process: OperatorProcess) -> Iterator[OperatorProcess]:
    """The session operator, restarted first if an earlier test left it stopped."""
    operator_process.restart()
    yield operator_process
    operator_process.restart()
