"""The local control plane as one object: start it, attach to one, inspect it, stop it.

Data directory layout (default ``<repo>/.cluster``)::

    cluster.json            state: ports, pids (= process-group ids), start ticks, timings
    kubeconfig              admin kubeconfig (system:masters, client certificate)
    kubeconfigs/<c>.kubeconfig, pki/, etcd/, certs/, kwok-config.yaml
    logs/<component>.log    stdout and stderr of each process
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from . import components, probes
from .binaries import default_data_dir, resolve_bin_dir, stages_file
from .components import Ports
from .pki import Pki, ensure_pki, write_kubeconfig
from .process import PhaseTimer, ProcessRecord, is_alive, log_tail, memory_kib, spawn, stop_all

STATE_FILE = "cluster.json"
CONTEXT_NAME = "backfill-dev"

#: start order; stop goes the other way.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterError(RuntimeError):
    """Base class of the errors this module raises."""


class StartupError(ClusterError):
    """A component did not come up; the message holds the tail of its log.

    ``port_conflict`` is True when the log says a port was taken (worth a retry).
    """

    def __init__(self, message: str, *, port_conflict: bool = False) -> None:
        super().__init__(message)
        self.port_conflict = port_conflict


class AlreadyRunning(ClusterError):
    """A cluster recorded in this data directory still has live processes."""


class NotRunning(ClusterError):
    """No cluster state in this data directory."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}"


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` reports about one process; memory in KiB (0 when it is gone)."""

    name: str
    pid: int
    alive: bool
    port: int
    rss_kib: int
    peak_rss_kib: int
    log: str


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<data_dir>/.lock``; raise ClusterError if someone has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(f"another devcluster command is using {data_dir}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ClusterError(f"corrupt state file {data_dir / STATE_FILE}: {exc}") from exc
    return data


class Cluster:
    """A local control plane: etcd, kube-apiserver, controller manager, scheduler and KWOK.

    Build one with :meth:`start` (launch processes), :meth:`load` (the cluster recorded in a
    data directory, e.g. from another shell) or :meth:`attach` (any kubeconfig; :meth:`stop`
    is then a no-op). Usable as a context manager that stops the cluster on exit.

    :meth:`kill_component` and :meth:`restart_component` crash one component and bring it
    back on the same ports and data (the chaos tests).

    Attributes: ``kubeconfig`` (admin kubeconfig path), ``bin_dir`` (directory with kubectl
    and the other binaries), ``data_dir`` (None when attached), ``server`` (API URL, '' when
    unknown), ``ports`` (None when attached), ``timings`` (start-up phase -> seconds).
    """

    def __init__(
        self,
        *,
        kubeconfig: Path,
        bin_dir: Path,
        data_dir: Path | None = None,
        server: str = "",
        ports: Ports | None = None,
        records: Sequence[ProcessRecord] = (),
        owned: bool = False,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.server = server
        self.ports = ports
        self.records: list[ProcessRecord] = list(records)
        self.owned = owned
        self.timings: dict[str, float] = {}
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stopped = False
        self._tie_to_parent = False

    # ----------------------------------------------------------------------------- builders

    @classmethod
    def start(
        cls,
        data_dir: str | Path | None = None,
        *,
        bin_dir: str | Path | None = None,
        nodes: int = 3,
        tie_to_parent: bool = False,
        keep_data: bool = False,
        controllers: tuple[str, ...] = components.DEFAULT_CONTROLLERS,
        timeout_seconds: float = 120.0,
        progress: Callable[[str], None] | None = None,
        attempts: int = 3,
    ) -> Cluster:
        """Start a cluster in ``data_dir`` (default: $BACKFILL_CLUSTER_DIR or <repo>/.cluster).

        Returns once the apiserver is ready, every component answers its health check and
        ``nodes`` KWOK Nodes are Ready. ``tie_to_parent`` kills the processes when the calling
        thread dies (tests; ``up --foreground``). Without ``keep_data`` etcd data and logs of
        an earlier run are wiped. On a port taken between picking and binding, retries up to
        ``attempts`` times. Raises AlreadyRunning, StartupError (after stopping whatever it
        started), BinariesError, PkiError; KeyboardInterrupt also stops what was started.
        """
        root = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
        bins = resolve_bin_dir(bin_dir)
        say = progress or (lambda _message: None)
        with _exclusive(root):
            state = _read_state(root)
            if state is not None:
                previous = cls._from_state(root, state)
                alive = [r.name for r in previous.records if is_alive(r)]
                if alive:
                    raise AlreadyRunning(
                        f"a cluster in {root} is running ({', '.join(alive)}); "
                        "run `python -m devcluster down` first"
                    )
                (root / STATE_FILE).unlink()
            for attempt in range(1, attempts + 1):
                cluster = cls(
                    kubeconfig=root / "kubeconfig", bin_dir=bins, data_dir=root, owned=True
                )
                try:
                    cluster._boot(
                        nodes=nodes,
                        tie_to_parent=tie_to_parent,
                        keep_data=keep_data,
                        controllers=controllers,
                        timeout_seconds=timeout_seconds,
                        say=say,
                    )
                except StartupError as exc:
                    cluster.stop()
                    if not exc.port_conflict or attempt == attempts:
                        raise
                    say(f"port conflict, retrying with new ports ({exc})")
                except BaseException:
                    cluster.stop()
                    raise
                else:
                    return cluster
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def load(cls, data_dir: str | Path | None = None) -> Cluster:
        """Return the cluster recorded in ``data_dir`` (running or not); raises NotRunning."""
        root = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
        state = _read_state(root)
        if state is None:
            raise NotRunning(f"no cluster recorded in {root}")
        return cls._from_state(root, state)

    @classmethod
    def attach(cls, kubeconfig: str | Path, *, bin_dir: str | Path | None = None) -> Cluster:
        """Wrap an existing cluster reachable with ``kubeconfig``; :meth:`stop` does nothing."""
        return cls(
            kubeconfig=Path(kubeconfig).expanduser().resolve(),
            bin_dir=resolve_bin_dir(bin_dir),
            owned=False,
        )

    @classmethod
    def _from_state(cls, root: Path, state: dict[str, Any]) -> Cluster:
        try:
            cluster = cls(
                kubeconfig=Path(state["kubeconfig"]),
                bin_dir=Path(state["bin_dir"]),
                data_dir=root,
                server=str(state.get("server", "")),
                ports=Ports(**state["ports"]) if state.get("ports") else None,
                records=[ProcessRecord.from_json(p) for p in state.get("processes", [])],
                owned=True,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClusterError(f"corrupt state file {root / STATE_FILE}: {exc}") from exc
        cluster.timings = {str(k): float(v) for k, v in state.get("timings", {}).items()}
        return cluster

    # ------------------------------------------------------------------------------- start-up

    def _save_state(self, *, ready: bool) -> None:
        assert self.data_dir is not None
        state = {
            "version": 1,
            "ready": ready,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "bin_dir": str(self.bin_dir),
            "ports": self.ports.to_json() if self.ports else None,
            "processes": [r.to_json() for r in self.records],
            "timings": self.timings,
        }
        tmp = self.data_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.data_dir / STATE_FILE)

    def _spawn(self, name: str, argv: list[str], *, port: int, tie_to_parent: bool) -> None:
        assert self.data_dir is not None
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        proc, record = spawn(
            name,
            argv,
            self.data_dir / "logs" / f"{name}.log",
            env=env,
            port=port,
            tie_to_parent=tie_to_parent,
        )
        self._children[proc.pid] = proc
        self.records.append(record)
        self._save_state(ready=False)

    def _failure(self, what: str, names: Sequence[str], reason: str) -> StartupError:
        tails = []
        conflict = False
        for record in self.records:
            if record.name in names:
                tail = log_tail(record.log)
                conflict = conflict or "address already in use" in tail
                tails.append(f"--- last lines of {record.log} ---\n{tail}")
        message = f"{reason} while waiting for {what}\n" + "\n".join(tails)
        return StartupError(message, port_conflict=conflict)

    def _wait(
        self, what: str, check: Callable[[], bool], *, watch: Sequence[str], deadline: float
    ) -> None:
        """Poll ``check`` every 0.1 s until it is True; raise StartupError when a watched
        process exits or ``deadline`` (time.monotonic) passes."""
        while not check():
            for record in self.records:
                child = self._children.get(record.pid)
                if record.name in watch and child is not None and child.poll() is not None:
                    reason = f"{record.name} exited with code {child.returncode}"
                    raise self._failure(what, [record.name], reason)
            if time.monotonic() > deadline:
                raise self._failure(what, watch, "timed out")
            time.sleep(0.1)

    def _boot(
        self,
        *,
        nodes: int,
        tie_to_parent: bool,
        keep_data: bool,
        controllers: tuple[str, ...],
        timeout_seconds: float,
        say: Callable[[str], None],
    ) -> None:
        assert self.data_dir is not None
        root = self.data_dir
        self._tie_to_parent = tie_to_parent
        timer = PhaseTimer(self.timings, timeout_seconds, say)
        deadline = timer.deadline

        if not keep_data:
            for sub in ("etcd", "logs", "certs"):
                shutil.rmtree(root / sub, ignore_errors=True)
        pki = ensure_pki(root / "pki")
        self.ports = ports = Ports.pick()
        self.server = f"https://127.0.0.1:{ports.apiserver}"
        write_kubeconfig(
            self.kubeconfig, server=self.server, pki=pki, user="admin", name=CONTEXT_NAME
        )
        kubeconfigs = {
            user: write_kubeconfig(
                root / "kubeconfigs" / f"{user}.kubeconfig",
                server=self.server,
                pki=pki,
                user=user,
                name=CONTEXT_NAME,
            )
            for user in ("kube-controller-manager", "kube-scheduler", "kwok")
        }
        kwok_config = root / "kwok-config.yaml"
        kwok_config.write_text(components.KWOK_CONFIGURATION, encoding="utf-8")
        timer.lap("prepare")

        bins = self.bin_dir
        self._spawn(
            "etcd",
            components.etcd_argv(bins, root, ports),
            port=ports.etcd_client,
            tie_to_parent=tie_to_parent,
        )
        etcd_health = f"http://127.0.0.1:{ports.etcd_client}/health"
        self._wait(
            "etcd /health",
            lambda: probes.get(etcd_health) == 200,
            watch=["etcd"],
            deadline=deadline,
        )
        timer.lap("etcd")

        self._spawn(
            "kube-apiserver",
            components.apiserver_argv(bins, root, ports, pki),
            port=ports.apiserver,
            tie_to_parent=tie_to_parent,
        )
        admin = probes.client_context(pki.ca_cert, pki.cert("admin"), pki.key("admin"))
        self._wait(
            "kube-apiserver /readyz",
            lambda: probes.get(f"{self.server}/readyz", context=admin) == 200,
            watch=["etcd", "kube-apiserver"],
            deadline=deadline,
        )
        timer.lap("kube-apiserver")

        self._spawn(
            "kube-controller-manager",
            components.controller_manager_argv(
                bins, root, ports, kubeconfigs["kube-controller-manager"], controllers
            ),
            port=ports.controller_manager,
            tie_to_parent=tie_to_parent,
        )
        self._spawn(
            "kube-scheduler",
            components.scheduler_argv(bins, root, ports, kubeconfigs["kube-scheduler"]),
            port=ports.scheduler,
            tie_to_parent=tie_to_parent,
        )
        self._spawn(
            "kwok",
            components.kwok_argv(bins, ports, kubeconfigs["kwok"], stages_file(), kwok_config),
            port=ports.kwok,
            tie_to_parent=tie_to_parent,
        )
        self._create_nodes(nodes, admin)
        insecure = probes.insecure_context()
        for name, url, context in (
            ("kube-controller-manager", f"https://127.0.0.1:{ports.controller_manager}", insecure),
            ("kube-scheduler", f"https://127.0.0.1:{ports.scheduler}", insecure),
            ("kwok", f"http://127.0.0.1:{ports.kwok}", None),
        ):
            self._wait(
                f"{name} /healthz",
                probes.healthy(f"{url}/healthz", context=context),
                watch=COMPONENTS,
                deadline=deadline,
            )
        self._wait(
            f"{nodes} Ready nodes",
            lambda: self._nodes_ready(nodes, admin),
            watch=COMPONENTS,
            deadline=deadline,
        )
        timer.lap("controllers, scheduler, kwok, nodes")
        timer.total()
        self._save_state(ready=True)

    def _create_nodes(self, count: int, context: Any) -> None:
        for index in range(count):
            status, body = probes.request_json(
                "POST",
                f"{self.server}/api/v1/nodes",
                context=context,
                body=components.node_manifest(index),
            )
            if status not in (201, 409):  # 409: kept from an earlier run (keep_data)
                raise StartupError(f"creating node {index} failed: HTTP {status} {body}")

    def _nodes_ready(self, count: int, context: Any) -> bool:
        status, body = probes.request_json("GET", f"{self.server}/api/v1/nodes", context=context)
        if status != 200 or not isinstance(body, dict):
            return False
        ready = set()
        for item in body.get("items", []):
            for condition in item.get("status", {}).get("conditions") or []:
                if condition.get("type") == "Ready" and condition.get("status") == "True":
                    ready.add(item["metadata"]["name"])
        return all(components.node_name(i) in ready for i in range(count))

    # ------------------------------------------------------------------------------ lifecycle

    def stop(self, grace_seconds: float = 10.0) -> list[str]:
        """Stop every process of this cluster (SIGTERM to each process group, SIGKILL after
        ``grace_seconds``) and remove the state file. Idempotent; a no-op for attached clusters.
        Returns the names of processes that needed SIGKILL."""
        if not self.owned or self._stopped:
            return []
        # Clients first (together), then the apiserver, then etcd: an apiserver whose etcd
        # vanishes under it hangs in its shutdown until SIGKILL.
        tiers = [
            [r for r in self.records if r.name not in ("kube-apiserver", "etcd")],
            [r for r in self.records if r.name == "kube-apiserver"],
            [r for r in self.records if r.name == "etcd"],
        ]
        killed: list[str] = []
        for tier in tiers:
            killed += stop_all(tier, children=self._children, grace_seconds=grace_seconds)
        self._stopped = True
        if self.data_dir is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / STATE_FILE).unlink()
        return killed

    # ---------------------------------------------------------------------- crash and restart

    def record(self, name: str) -> ProcessRecord:
        """Return the record of component ``name`` (one of COMPONENTS) as it runs now.

        Raises ClusterError for an attached cluster or a component this cluster never started.
        """
        if not self.owned:
            raise ClusterError(f"{self!r} is attached: its processes are not ours")
        for record in self.records:
            if record.name == name:
                return record
        raise ClusterError(f"no component {name!r} in {self!r}")

    def kill_component(self, name: str, *, timeout_seconds: float = 10.0) -> None:
        """SIGKILL the process group of component ``name`` (a crash: no graceful shutdown) and
        wait until it is gone. Its ports, data directory and log stay as they were, so
        :meth:`restart_component` brings back the same component. A no-op when it is already
        dead. Raises ClusterError (unknown name, attached cluster, still alive after
        ``timeout_seconds``)."""
        record = self.record(name)
        if is_alive(record):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_seconds
        child = self._children.get(record.pid)
        while True:
            if child is not None:
                child.poll()  # reap it: a zombie would still count as alive to the kernel
            if not is_alive(record):
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"{name} (pid {record.pid}) survived SIGKILL")
            time.sleep(0.05)

    def restart_component(self, name: str, *, timeout_seconds: float = 60.0) -> float:
        """Start component ``name`` again with the command line it was started with (same
        ports, certificates and data directory; its log is appended to), killing it first if
        it still runs, and wait until it answers its health check: etcd ``/health``,
        kube-apiserver ``/readyz``, the others ``/healthz``.

        Returns the seconds from the new process's start to its first healthy answer. The new
        process dies with the caller when the cluster was started with ``tie_to_parent``.
        Raises ClusterError (unknown name, attached cluster) or StartupError (with the tail of
        its log) when it exits or ``timeout_seconds`` pass.
        """
        assert self.data_dir is not None
        old = self.record(name)
        self.kill_component(name)
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        proc, record = spawn(
            name,
            old.argv,
            Path(old.log),
            env=env,
            port=old.port,
            tie_to_parent=self._tie_to_parent,
        )
        self._children.pop(old.pid, None)
        self._children[proc.pid] = proc
        self.records[self.records.index(old)] = record
        self._save_state(ready=False)
        started = time.monotonic()
        self._wait(
            f"{name} to answer its health check after a restart",
            lambda: self.component_healthy(name),
            watch=[name],
            deadline=started + timeout_seconds,
        )
        self._save_state(ready=True)
        return time.monotonic() - started

    def component_healthy(self, name: str) -> bool:
        """True when component ``name`` runs and answers its health check (see
        :meth:`restart_component`); raises ClusterError like :meth:`record`."""
        if not is_alive(self.record(name)) or self.ports is None:
            return False
        ports = self.ports
        if name == "etcd":
            return probes.get(f"http://127.0.0.1:{ports.etcd_client}/health") == 200
        if name == "kube-apiserver":
            return self.api_ready()
        urls = {
            "kube-controller-manager": f"https://127.0.0.1:{ports.controller_manager}/healthz",
            "kube-scheduler": f"https://127.0.0.1:{ports.scheduler}/healthz",
            "kwok": f"http://127.0.0.1:{ports.kwok}/healthz",
        }
        context = probes.insecure_context() if urls[name].startswith("https") else None
        return probes.get(urls[name], context=context) == 200

    def unhealthy(self) -> list[str]:
        """Names of the components that are dead or fail their health check, in start order."""
        return [r.name for r in self.records if not self.component_healthy(r.name)]

    def wait_for_exit(self, poll_seconds: float = 0.5) -> ProcessRecord:
        """Block until one of the processes exits and return its record (``up --foreground``)."""
        while True:
            for record in self.records:
                if not is_alive(record):
                    return record
            for child in self._children.values():
                child.poll()
            time.sleep(poll_seconds)

    def status(self) -> list[ComponentStatus]:
        """Return one entry per recorded process, in start order."""
        out = []
        for record in self.records:
            alive = is_alive(record)
            rss, peak = memory_kib(record.pid) if alive else (0, 0)
            out.append(
                ComponentStatus(record.name, record.pid, alive, record.port, rss, peak, record.log)
            )
        return out

    def api_ready(self) -> bool:
        """Return True when the apiserver answers /readyz with 200 (needs a data_dir PKI)."""
        if self.data_dir is None or not self.server:
            return False
        pki = Pki(self.data_dir / "pki")
        try:
            context = probes.client_context(pki.ca_cert, pki.cert("admin"), pki.key("admin"))
        except OSError:
            return False
        return probes.get(f"{self.server}/readyz", context=context) == 200

    def env_line(self) -> str:
        """Return the shell line ``export KUBECONFIG=<admin kubeconfig>``."""
        return f"export KUBECONFIG={shlex.quote(str(self.kubeconfig))}"

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout_seconds: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl --kubeconfig=<admin> *args`` and return the completed process (text).

        Raises KubectlError (a CalledProcessError) on a non-zero exit when ``check``, and
        subprocess.TimeoutExpired after ``timeout_seconds``.
        """
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout_seconds, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.data_dir or self.kubeconfig
        return f"Cluster({where}, server={self.server or '?'}, owned={self.owned})"
