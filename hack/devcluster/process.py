"""Starting, probing and stopping the control-plane processes (Linux only).

Every component runs in its own session, so its process-group id equals its pid and a stop can
signal the whole group. A :class:`ProcessRecord` is what the state file keeps about one process;
it carries the kernel start time of the process (clock ticks since boot, from
``/proc/<pid>/stat``) so that a recycled pid is never mistaken for ours and never signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessRecord:
    """One started process, as written to the state file.

    ``pid`` is also the process-group id. ``start_ticks`` is field 22 of ``/proc/<pid>/stat``.
    ``port`` is the main port the process listens on (0 when it has none).
    """

    name: str
    pid: int
    start_ticks: int
    argv: tuple[str, ...]
    log: str
    port: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the inverse of :meth:`from_json`)."""
        return {
            "name": self.name,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "argv": list(self.argv),
            "log": self.log,
            "port": self.port,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        """Build a record from :meth:`to_json` output; raises KeyError/TypeError on bad input."""
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_ticks=int(data["start_ticks"]),
            argv=tuple(str(a) for a in data["argv"]),
            log=str(data["log"]),
            port=int(data.get("port", 0)),
        )


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """Return (state letter, start ticks) of ``pid``, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def start_ticks_of(pid: int) -> int:
    """Return the kernel start time of ``pid`` in clock ticks; raises ProcessLookupError."""
    stat = _proc_stat(pid)
    if stat is None:
        raise ProcessLookupError(pid)
    return stat[1]


def is_alive(record: ProcessRecord) -> bool:
    """Return True when the recorded process still runs (not a zombie, pid not recycled)."""
    stat = _proc_stat(record.pid)
    if stat is None:
        return False
    state, ticks = stat
    return ticks == record.start_ticks and state not in ("Z", "X")


def memory_kib(pid: int) -> tuple[int, int]:
    """Return (current RSS, peak RSS) of ``pid`` in KiB from /proc; (0, 0) when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return 0, 0
    values = {"VmRSS": 0, "VmHWM": 0}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in values:
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def _parent_death_signal_setter() -> Any:
    """Return a no-argument callable that makes the calling child die with its parent.

    The libc function is looked up here, before any fork, so that the callable run between
    fork and exec only calls into an already loaded library.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_pdeathsig


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int = 0,
    tie_to_parent: bool = False,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start ``argv`` in a new session with stdout and stderr appended to ``log_path``.

    With ``tie_to_parent`` the kernel sends SIGKILL to the process when the calling thread
    exits (``PR_SET_PDEATHSIG``), so a killed test run leaves no orphans. Raises OSError when
    the executable cannot be started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_parent_death_signal_setter() if tie_to_parent else None,
        )
    try:
        ticks = start_ticks_of(proc.pid)
    except ProcessLookupError:
        ticks = 0  # already exited and reaped; is_alive() will say False
    record = ProcessRecord(name, proc.pid, ticks, tuple(argv), str(log_path), port)
    return proc, record


def _signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    """Send ``sig`` to the record's process group if the record still names a live process."""
    if not is_alive(record):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, sig)


def stop_all(
    records: Iterable[ProcessRecord],
    *,
    children: Mapping[int, subprocess.Popen[bytes]] | None = None,
    grace_seconds: float = 10.0,
) -> list[str]:
    """Stop every recorded process group: SIGTERM, wait ``grace_seconds``, then SIGKILL.

    ``children`` maps pids to Popen objects of processes this Python process started, which are
    reaped so they leave no zombies. Returns the names of processes that needed SIGKILL.
    Raises RuntimeError if a process survives SIGKILL for 10 s (e.g. stuck in the kernel).
    """
    pending = list(records)
    children = children or {}
    for record in pending:
        _signal_group(record, signal.SIGTERM)

    def still_running() -> list[ProcessRecord]:
        for child in children.values():
            child.poll()
        return [r for r in pending if is_alive(r)]

    killed: list[str] = []
    for sig, wait_seconds in ((None, grace_seconds), (signal.SIGKILL, 10.0)):
        if sig is not None:
            for record in pending:
                killed.append(record.name)
                _signal_group(record, sig)
        deadline = time.monotonic() + wait_seconds
        pending = still_running()
        while pending and time.monotonic() < deadline:
            time.sleep(0.05)
            pending = still_running()
        if not pending:
            return killed
    names = ", ".join(f"{r.name} (pid {r.pid})" for r in pending)
    raise RuntimeError(f"processes survived SIGKILL: {names}")


def log_tail(path: str | Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a log file ('' when it is missing)."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class PhaseTimer:
    """Times the phases of a start-up into ``timings`` (phase -> seconds) and reports each.

    ``deadline`` is ``time.monotonic()`` at start plus ``timeout_seconds``; :meth:`left` is
    the time left (at least 1 s, for the timeouts of calls made late).
    """

    def __init__(
        self,
        timings: dict[str, float],
        timeout_seconds: float,
        say: Callable[[str], None],
        prefix: str = "",
    ) -> None:
        self.timings = timings
        self.say = say
        self.prefix = prefix
        self.started = time.monotonic()
        self.deadline = self.started + timeout_seconds
        self._mark = self.started

    def lap(self, phase: str) -> None:
        """Record the time since the last lap as ``phase`` and say how long start-up took."""
        now = time.monotonic()
        self.timings[phase] = round(now - self._mark, 2)
        self._mark = now
        self.say(f"{self.prefix}{phase}: {now - self.started:.1f} s")

    def left(self) -> float:
        """Seconds left before the deadline, at least 1."""
        return max(1.0, self.deadline - time.monotonic())

    def total(self) -> None:
        """Record the whole start-up as ``total``."""
        self.timings["total"] = round(time.monotonic() - self.started, 2)
