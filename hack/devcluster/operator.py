"""The operator as users run it: one ``backfill-operator run`` child process on a cluster.

Shared by the demo (``hack/demo.py``), the tests (``tests/operator_support.py``) and the
benchmarks (``bench/common.py``), so all three run the same command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from .process import memory_kib

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> Callable[[], None]:
    """Return a ``preexec_fn`` that makes the child get SIGKILL when this process dies (Linux).

    So even a ``kill -9`` of the parent leaves no operator behind. libc is loaded here, before
    the fork.
    """
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_pdeathsig


class OperatorProcess:
    """``python -m backfill_operator run --all-namespaces --standalone`` against a kubeconfig.

    Ports for /metrics and /healthz are picked free on 127.0.0.1; each start logs to
    ``<log_dir>/operator-<n>.log``. ``start`` returns once kopf's /healthz answers (raises
    RuntimeError with the log's tail if the process exits or 60 s pass). ``script`` runs that
    Python file instead of ``-m backfill_operator`` (same arguments), e.g. a profiling wrapper.

    ``peering`` runs it as one replica of several (``--peering NAME --priority N`` instead of
    ``--standalone``; the kopf.dev peering CRDs and the peering object must exist), with
    ``POD_ID=<identity>`` naming it in the peering object (default: the log directory's name).
    ``extra_args`` go after the others (e.g. ``["--peering-lifetime", "10"]``).
    """

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        *,
        script: str | None = None,
        peering: str | None = None,
        priority: int | None = None,
        identity: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.script = script
        self.peering = peering
        self.priority = priority
        self.identity = identity or log_dir.name
        self.extra_args = list(extra_args)
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def metrics_url(self) -> str:
        """URL of the Prometheus exposition."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        """The current run's log file."""
        return self.log_dir / f"operator-{self.starts}.log"

    @property
    def pid(self) -> int:
        """Process id of the current run."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the process and wait until /healthz answers."""
        self.starts += 1
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT / "operator"), os.environ.get("PYTHONPATH")) if p
            ),
        }
        if self.peering:
            env["POD_ID"] = self.identity  # kopf's name for this replica in the peering object
            mode = ["--peering", self.peering]
            if self.priority is not None:
                mode += ["--priority", str(self.priority)]
        else:
            env.pop("POD_ID", None)
            mode = ["--standalone"]
        argv = [
            sys.executable,
            *([self.script] if self.script else ["-m", "backfill_operator"]),
            "run",
            "--all-namespaces",
            *mode,
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-address",
            "127.0.0.1",
            "--liveness-port",
            str(self.liveness_port),
            *self.extra_args,
        ]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        try:
            self._wait_healthy(60.0)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout_seconds: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited {self.proc.returncode}:\n{self.tail()}")
            try:
                url = f"http://127.0.0.1:{self.liveness_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"operator not healthy after {timeout_seconds:g} s:\n{self.tail()}")

    def running(self) -> bool:
        """True while the process lives."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group (a crash: no graceful shutdown)."""
        if self.running():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 15 s (idempotent)."""
        if not self.running():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        """Start again unless running."""
        if not self.running():
            self.start()

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds of the current run so far (from /proc; 0.0 when it is
        gone). Read it before :meth:`stop`."""
        if not self.running():
            return 0.0
        try:
            raw = Path(f"/proc/{self.pid}/stat").read_text(encoding="utf-8")
        except OSError:
            return 0.0
        fields = raw[raw.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the current run in KiB: ``VmRSS`` and ``VmHWM`` of
        /proc/<pid>/status; (0, 0) when it is gone."""
        return memory_kib(self.pid) if self.running() else (0, 0)

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

    def __enter__(self) -> OperatorProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
