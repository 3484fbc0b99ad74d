"""Kueue v0.17.0 as a child process of a local control plane (Kueue interop tests, by hand).

``Kueue.start(cluster)`` runs, in order: checks the ``kueue`` binary (``build.sh kueue``) and
Kueue's module in the Go module cache; writes a CA and a serving pair for 127.0.0.1
(:func:`pki.ensure_serving_pki`); writes ``/etc/kueue/metrics/certs/tls.{crt,key}`` if neither
exists (Kueue reads that hard-coded pair even with metrics off); installs the 11 CRDs of
``config/components/crd/bases`` with server-side apply and waits for Established; creates the
``kueue-system`` namespace; starts ``kueue --config=... --kubeconfig=<admin>``; waits for its
``/readyz`` (ready once the webhook server listens); creates URL webhook configurations for
batch/v1 Jobs carrying ``kueue.x-k8s.io/queue-name`` and waits until a server-side dry-run Job
comes back suspended. ``stop()`` deletes the webhook configurations, then signals the process
group by pid (never by name); CRDs and queues stay.

Files: ``<work_dir>`` (default ``<cluster data dir>/kueue``) holds ``config.json`` (Kueue's
Configuration), ``certs/`` and the state file ``kueue.json``; the log is
``<cluster data dir>/logs/kueue.log`` (``<work_dir>/logs/`` for an attached cluster).

Queues: :meth:`Kueue.create_queue` makes a ResourceFlavor, a ClusterQueue with a quota and a
LocalQueue in a namespace, and waits until both queues are Active.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import probes
from .pki import ensure_serving_pki
from .process import PhaseTimer, ProcessRecord, is_alive, log_tail, spawn, stop_all

if TYPE_CHECKING:
    from .cluster import Cluster

VERSION = "v0.17.0"
MODULE = f"sigs.k8s.io/kueue@{VERSION}"
GROUP = "kueue.x-k8s.io"
API_VERSION = f"{GROUP}/v1beta2"
NAMESPACE = "kueue-system"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: Kueue v0.17.0 builds a certwatcher on this pair whenever internal cert management is off,
#: even with metrics disabled, and exits if the files are missing.
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")
MUTATING_WEBHOOK = "kueue-mutating-webhook-configuration"
VALIDATING_WEBHOOK = "kueue-validating-webhook-configuration"
STATE_FILE = "kueue.json"
FIELD_MANAGER = "devcluster-kueue"
DEFAULT_FLAVOR = "default-flavor"


class KueueError(RuntimeError):
    """Kueue could not be prepared, started or driven; the message says what and why."""


# ---------------------------------------------------------------------------- pure parts


def module_dir() -> Path:
    """Kueue's module in the Go module cache build.sh uses (holds ``config/``).

    ``$GOMODCACHE``, else ``$BACKFILL_CACHE/go/mod``, else ``~/.cache/backfill-operator/go/mod``.
    """
    modcache = os.environ.get("GOMODCACHE")
    if not modcache:
        cache = os.environ.get("BACKFILL_CACHE") or str(Path.home() / ".cache/backfill-operator")
        modcache = str(Path(cache) / "go" / "mod")
    return Path(modcache).expanduser() / MODULE


def crd_files(module: Path | None = None) -> list[Path]:
    """The CRD manifests of ``config/components/crd/bases`` (11 at v0.17.0)."""
    bases = (module or module_dir()) / "config" / "components" / "crd" / "bases"
    files = sorted(bases.glob(f"{GROUP}_*.yaml"))
    if not files:
        raise KueueError(
            f"no Kueue CRDs in {bases}: build Kueue first (`hack/controlplane/build.sh kueue` "
            "downloads the module), or set GOMODCACHE to the module cache it used"
        )
    return files


def crd_name(path: Path) -> str:
    """``kueue.x-k8s.io_workloads.yaml`` -> ``workloads.kueue.x-k8s.io``."""
    group, _, plural = path.stem.partition("_")
    return f"{plural}.{group}"


def configuration(*, webhook_port: int, health_port: int, cert_dir: Path) -> dict[str, Any]:
    """Kueue's Configuration for a local process: no leader election, no internal certs, the
    webhook and the health probes on 127.0.0.1, metrics off, batch/Job only, no visibility
    server (it would bind 0.0.0.0:8082 and read certificates from /visibility)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "metrics": {"bindAddress": "0"},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "clientConnection": {"qps": 100, "burst": 200},
        "controller": {"groupKindConcurrency": {"Job.batch": 5, "Workload.kueue.x-k8s.io": 5}},
        "integrations": {"frameworks": ["batch/job"]},
        "featureGates": {"VisibilityOnDemand": False},
    }


def webhook_configurations(port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """Mutating and validating webhook configurations for batch/v1 Jobs only, calling
    ``https://127.0.0.1:<port>`` (Kueue's ``mjob.kb.io`` and ``vjob.kb.io`` entries, with a
    URL instead of a Service). An objectSelector keeps Jobs without the queue-name label off the
    webhook, so the rest of a shared cluster does not depend on Kueue being up (the price:
    Kueue cannot label Jobs with a ``default`` LocalQueue)."""
    bundle = base64.b64encode(ca_bundle).decode("ascii")

    def entry(name: str, path: str, operations: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": f"https://127.0.0.1:{port}{path}", "caBundle": bundle},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": 10,
            "objectSelector": {"matchExpressions": [{"key": QUEUE_LABEL, "operator": "Exists"}]},
            "rules": [
                {
                    "apiGroups": ["batch"],
                    "apiVersions": ["v1"],
                    "operations": operations,
                    "resources": ["jobs"],
                }
            ],
        }

    meta = {"labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": MUTATING_WEBHOOK, **meta},
            "webhooks": [entry("mjob.kb.io", "/mutate-batch-v1-job", ["CREATE"])],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": VALIDATING_WEBHOOK, **meta},
            "webhooks": [entry("vjob.kb.io", "/validate-batch-v1-job", ["CREATE", "UPDATE"])],
        },
    ]


def queue_manifests(
    namespace: str,
    *,
    local_queue: str,
    cluster_queue: str,
    quota: Mapping[str, str],
    flavor: str = DEFAULT_FLAVOR,
    namespace_selector: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """ResourceFlavor ``flavor``, ClusterQueue ``cluster_queue`` (no cohort, so it never
    borrows; ``quota`` maps resource name to nominal quota; namespaceSelector ``{}`` = every
    namespace) and LocalQueue ``namespace/local_queue`` pointing at it."""
    resources = sorted(quota)
    return [
        {"apiVersion": API_VERSION, "kind": "ResourceFlavor", "metadata": {"name": flavor}},
        {
            "apiVersion": API_VERSION,
            "kind": "ClusterQueue",
            "metadata": {"name": cluster_queue},
            "spec": {
                "namespaceSelector": dict(namespace_selector or {}),
                "resourceGroups": [
                    {
                        "coveredResources": resources,
                        "flavors": [
                            {
                                "name": flavor,
                                "resources": [
                                    {"name": r, "nominalQuota": quota[r]} for r in resources
                                ],
                            }
                        ],
                    }
                ],
            },
        },
        {
            "apiVersion": API_VERSION,
            "kind": "LocalQueue",
            "metadata": {"name": local_queue, "namespace": namespace},
            "spec": {"clusterQueue": cluster_queue},
        },
    ]


def _probe_job() -> dict[str, Any]:
    """A Job for a server-side dry run: labelled for Kueue, so the webhook must suspend it."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "devcluster-kueue-webhook-probe",
            "namespace": "default",
            "labels": {QUEUE_LABEL: "devcluster-probe"},
        },
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "probe", "image": "example.invalid/probe:1"}],
                }
            }
        },
    }


def _free_ports(count: int) -> list[int]:
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _poll(check: Callable[[], bool], timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not check():
        if time.monotonic() > deadline:
            raise KueueError(f"timed out after {timeout_seconds:g} s waiting for {what}")
        time.sleep(0.2)


def _condition_true(obj: Mapping[str, Any], kind: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def ensure_metrics_certs(cert: Path, key: Path, directory: Path = METRICS_CERT_DIR) -> bool:
    """Copy ``cert``/``key`` to ``directory/tls.{crt,key}`` unless both exist there.

    Returns True when it wrote them. Raises KueueError when only one exists (not ours to
    overwrite) or the directory cannot be written (run as root, or create the pair yourself).
    """
    crt, pem_key = directory / "tls.crt", directory / "tls.key"
    present = [p.is_file() for p in (crt, pem_key)]
    if all(present):
        return False
    if any(present):
        raise KueueError(f"{directory} holds only one of tls.crt/tls.key; fix it by hand")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cert, crt)
        shutil.copyfile(key, pem_key)
        pem_key.chmod(0o600)
    except OSError as exc:
        raise KueueError(
            f"Kueue needs {crt} and {pem_key} (hard-coded in v0.17.0) and they cannot be "
            f"written: {exc}"
        ) from exc
    return True


# ------------------------------------------------------------------------------- process


@dataclass(frozen=True)
class Queue:
    """What :meth:`Kueue.create_queue` made."""

    namespace: str
    local_queue: str
    cluster_queue: str
    flavor: str


class Kueue:
    """One Kueue manager process on a :class:`~devcluster.Cluster`.

    Build with :meth:`start`, :meth:`load` (the one recorded for a cluster's data dir, e.g.
    for ``down``) or :meth:`attach` (a Kueue someone else runs; :meth:`stop` is then a no-op).
    Attributes: ``cluster``, ``work_dir``, ``webhook_port``, ``health_port``, ``record`` (pid,
    argv, log; None when attached), ``owned``, ``timings`` (phase -> seconds),
    ``metrics_certs_written``. Usable as a context manager that stops it.
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        work_dir: Path,
        webhook_port: int,
        health_port: int,
        record: ProcessRecord | None = None,
        owned: bool = True,
    ) -> None:
        self.cluster = cluster
        self.owned = owned
        self.work_dir = work_dir
        self.webhook_port = webhook_port
        self.health_port = health_port
        self.record = record
        self.timings: dict[str, float] = {}
        self.metrics_certs_written = False
        self._child: subprocess.Popen[bytes] | None = None
        self._stopped = False

    # ------------------------------------------------------------------------- paths

    @staticmethod
    def default_work_dir(cluster: Cluster) -> Path:
        """``<cluster data dir>/kueue``; an attached cluster has none (pass ``work_dir``)."""
        if cluster.data_dir is None:
            raise KueueError("the cluster has no data dir (attached): pass work_dir")
        return cluster.data_dir / "kueue"

    @property
    def cert_dir(self) -> Path:
        """The webhook serving pair (tls.crt, tls.key) and its CA (ca.crt)."""
        return self.work_dir / "certs"

    @property
    def config_path(self) -> Path:
        """Kueue's Configuration file."""
        return self.work_dir / "config.json"

    @property
    def log_path(self) -> Path:
        """The process log."""
        base = self.cluster.data_dir or self.work_dir
        return base / "logs" / "kueue.log"

    @property
    def readyz_url(self) -> str:
        """Kueue's readiness probe (plain HTTP on 127.0.0.1)."""
        return f"http://127.0.0.1:{self.health_port}/readyz"

    @property
    def pid(self) -> int:
        """Process id (and process-group id) of the running Kueue."""
        if self.record is None:
            raise KueueError("Kueue was not started")
        return self.record.pid

    # ----------------------------------------------------------------------- start-up

    @classmethod
    def start(
        cls,
        cluster: Cluster,
        *,
        work_dir: str | Path | None = None,
        binary: str | Path | None = None,
        tie_to_parent: bool = False,
        timeout_seconds: float = 180.0,
        log_level: int = 2,
        progress: Callable[[str], None] | None = None,
        attempts: int = 3,
    ) -> Kueue:
        """Start Kueue against ``cluster`` (see the module docstring for the steps).

        ``binary`` defaults to ``<cluster.bin_dir>/kueue``. ``tie_to_parent`` kills Kueue when
        the calling thread dies (tests). Raises KueueError (after stopping what it started),
        PkiError, KubectlError. A port taken between picking and binding is retried.
        """
        say = progress or (lambda _message: None)
        root = Path(work_dir).expanduser().resolve() if work_dir else cls.default_work_dir(cluster)
        exe = Path(binary) if binary else cluster.bin_dir / "kueue"
        if not os.access(exe, os.X_OK):
            raise KueueError(
                f"no kueue binary at {exe}: run `hack/controlplane/build.sh kueue` (the default "
                "module list builds it) and use the links dir it prints"
            )
        state = root / STATE_FILE
        if state.is_file():
            previous = cls.load(cluster, root)
            if previous.running():
                raise KueueError(f"Kueue recorded in {root} is running (pid {previous.pid})")
            state.unlink()
        crds = crd_files()
        for attempt in range(1, attempts + 1):
            webhook_port, health_port = _free_ports(2)
            kueue = cls(cluster, work_dir=root, webhook_port=webhook_port, health_port=health_port)
            try:
                kueue._boot(exe, crds, tie_to_parent, timeout_seconds, log_level, say)
            except KueueError as exc:
                kueue.stop()
                if "address already in use" not in str(exc) or attempt == attempts:
                    raise
                say(f"port conflict, retrying with new ports ({exc})")
            except BaseException:
                kueue.stop()
                raise
            else:
                return kueue
        raise AssertionError("unreachable")  # pragma: no cover

    def _boot(
        self,
        exe: Path,
        crds: Sequence[Path],
        tie_to_parent: bool,
        timeout_seconds: float,
        log_level: int,
        say: Callable[[str], None],
    ) -> None:
        timer = PhaseTimer(self.timings, timeout_seconds, say, prefix="kueue ")
        deadline, left = timer.deadline, timer.left

        self.work_dir.mkdir(parents=True, exist_ok=True)
        pki = ensure_serving_pki(self.cert_dir, common_name="kueue-webhook")
        self.metrics_certs_written = ensure_metrics_certs(pki.cert("tls"), pki.key("tls"))
        if self.metrics_certs_written:
            say(f"kueue: wrote {METRICS_CERT_DIR}/tls.{{crt,key}} (required by Kueue {VERSION})")
        config = configuration(
            webhook_port=self.webhook_port, health_port=self.health_port, cert_dir=self.cert_dir
        )
        self.config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        timer.lap("certificates and config")

        kubectl = self.cluster.kubectl
        apply = ("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}")
        files = [arg for crd in crds for arg in ("-f", str(crd))]
        kubectl(*apply, *files, timeout_seconds=left())
        names = [f"crd/{crd_name(crd)}" for crd in crds]
        wait = f"--timeout={int(left())}s"
        kubectl("wait", "--for=condition=Established", wait, *names, timeout_seconds=left() + 5)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        kubectl(*apply, "-f", "-", input=json.dumps(namespace), timeout_seconds=left())
        timer.lap(f"{len(crds)} CRDs Established")

        argv = [
            str(exe),
            f"--config={self.config_path}",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--zap-log-level={log_level}",
        ]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        self._child, self.record = spawn(
            "kueue",
            argv,
            self.log_path,
            env=env,
            port=self.webhook_port,
            tie_to_parent=tie_to_parent,
        )
        self._save_state()
        self._wait_process("Kueue /readyz", lambda: probes.get(self.readyz_url) == 200, deadline)
        timer.lap("process ready")

        ca = pki.ca_cert.read_bytes()
        manifests = webhook_configurations(self.webhook_port, ca)
        kubectl(*apply, "-f", "-", input=json.dumps(_list(manifests)), timeout_seconds=left())
        self._wait_process(
            "the Job webhook to suspend a dry-run Job", self._webhook_works, deadline
        )
        timer.lap("webhooks")
        timer.total()
        self._save_state()

    def _webhook_works(self) -> bool:
        result = self.cluster.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-",
            input=json.dumps(_probe_job()), check=False, timeout_seconds=20,
        )  # fmt: skip
        if result.returncode != 0:
            return False
        job: dict[str, Any] = json.loads(result.stdout)
        return bool(job.get("spec", {}).get("suspend"))

    def _wait_process(self, what: str, check: Callable[[], bool], deadline: float) -> None:
        while not check():
            if self._child is not None and self._child.poll() is not None:
                raise KueueError(
                    f"kueue exited with code {self._child.returncode} while waiting for {what}\n"
                    f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise KueueError(
                    f"timed out waiting for {what}\n"
                    f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
                )
            time.sleep(0.2)

    # ------------------------------------------------------------------------- state

    def _save_state(self) -> None:
        state = {
            "version": 1,
            "webhook_port": self.webhook_port,
            "health_port": self.health_port,
            "process": self.record.to_json() if self.record else None,
            "timings": self.timings,
        }
        tmp = self.work_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.work_dir / STATE_FILE)

    @classmethod
    def load(cls, cluster: Cluster, work_dir: str | Path | None = None) -> Kueue:
        """The Kueue recorded in ``work_dir`` (default ``<cluster data dir>/kueue``), running or
        not. Raises FileNotFoundError when none is recorded, KueueError when the file is bad."""
        root = Path(work_dir) if work_dir else cls.default_work_dir(cluster)
        text = (root / STATE_FILE).read_text(encoding="utf-8")
        try:
            state = json.loads(text)
            record = ProcessRecord.from_json(state["process"]) if state["process"] else None
            kueue = cls(
                cluster,
                work_dir=root,
                webhook_port=int(state["webhook_port"]),
                health_port=int(state["health_port"]),
                record=record,
            )
            kueue.timings = {str(k): float(v) for k, v in state.get("timings", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise KueueError(f"corrupt state file {root / STATE_FILE}: {exc}") from exc
        return kueue

    @classmethod
    def attach(cls, cluster: Cluster, work_dir: str | Path) -> Kueue | None:
        """A handle on a Kueue that already serves ``cluster`` (e.g. ``up --kueue`` in another
        shell), for its queue helpers; None when there is none. ``stop()`` leaves it alone."""
        port = serving_webhook_port(cluster)
        if port is None:
            return None
        return cls(cluster, work_dir=Path(work_dir), webhook_port=port, health_port=0, owned=False)

    # ---------------------------------------------------------------------- lifecycle

    def running(self) -> bool:
        """True while the recorded process lives."""
        if self._child is not None:
            self._child.poll()
        return self.record is not None and is_alive(self.record)

    def ready(self) -> bool:
        """True when ``/readyz`` answers 200."""
        return probes.get(self.readyz_url) == 200

    def stop(self, grace_seconds: float = 10.0) -> list[str]:
        """Delete the webhook configurations (so Jobs with the queue label are not refused
        once Kueue is gone), then SIGTERM the process group, SIGKILL after ``grace_seconds``.
        Idempotent; a no-op when attached. Returns ["kueue"] when SIGKILL was needed."""
        if self._stopped or not self.owned:
            return []
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.cluster.kubectl(
                "delete", "--ignore-not-found", "--wait=false",
                f"mutatingwebhookconfiguration/{MUTATING_WEBHOOK}",
                f"validatingwebhookconfiguration/{VALIDATING_WEBHOOK}",
                check=False, timeout_seconds=15,
            )  # fmt: skip
        killed: list[str] = []
        if self.record is not None:
            children = {self.record.pid: self._child} if self._child is not None else {}
            killed = stop_all([self.record], children=children, grace_seconds=grace_seconds)
        self._stopped = True
        with contextlib.suppress(FileNotFoundError):
            (self.work_dir / STATE_FILE).unlink()
        return killed

    def __enter__(self) -> Kueue:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        pid = self.record.pid if self.record else None
        return f"Kueue(pid={pid}, webhook=127.0.0.1:{self.webhook_port}, dir={self.work_dir})"

    # ------------------------------------------------------------------------ queues

    def create_queue(
        self,
        namespace: str,
        *,
        local_queue: str = "queue",
        cluster_queue: str | None = None,
        quota: Mapping[str, str] | None = None,
        flavor: str = DEFAULT_FLAVOR,
        namespace_selector: Mapping[str, Any] | None = None,
        timeout_seconds: float = 60.0,
    ) -> Queue:
        """Create (server-side apply) a ResourceFlavor, a ClusterQueue (default name: the
        namespace; default quota cpu 2, memory 8Gi; namespaceSelector ``{}``) and a LocalQueue
        ``local_queue`` in ``namespace``; return once both queues are Active."""
        queue = Queue(namespace, local_queue, cluster_queue or namespace, flavor)
        manifests = queue_manifests(
            namespace,
            local_queue=queue.local_queue,
            cluster_queue=queue.cluster_queue,
            quota=quota or {"cpu": "2", "memory": "8Gi"},
            flavor=flavor,
            namespace_selector=namespace_selector,
        )
        self.cluster.kubectl(
            "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-",
            input=json.dumps(_list(manifests)),
        )  # fmt: skip
        self.wait_active(f"clusterqueues.{GROUP}", queue.cluster_queue, timeout_seconds)
        self.wait_active(f"localqueues.{GROUP}", queue.local_queue, timeout_seconds, namespace)
        return queue

    def wait_active(
        self, resource: str, name: str, timeout_seconds: float = 60.0, namespace: str | None = None
    ) -> None:
        """Wait until the Kueue object (``clusterqueues.kueue.x-k8s.io`` or
        ``localqueues.kueue.x-k8s.io``) has condition Active=True; KueueError with its status
        otherwise."""
        where = ["-n", namespace] if namespace else []
        last: dict[str, Any] = {}

        def active() -> bool:
            nonlocal last
            result = self.cluster.kubectl("get", resource, name, *where, "-o", "json", check=False)
            if result.returncode != 0:
                return False
            last = json.loads(result.stdout)
            return _condition_true(last, "Active")

        try:
            _poll(active, timeout_seconds, f"{resource} {name} to be Active")
        except KueueError as exc:
            raise KueueError(f"{exc}; status: {json.dumps(last.get('status'))}") from None

    def delete_queue(self, queue: Queue) -> None:
        """Delete the LocalQueue and the ClusterQueue (not awaited; the flavor stays)."""
        self.cluster.kubectl(
            "delete", "--ignore-not-found", "--wait=false",
            "-n", queue.namespace, f"localqueues.{GROUP}/{queue.local_queue}",
            check=False,
        )  # fmt: skip
        self.cluster.kubectl(
            "delete", "--ignore-not-found", "--wait=false",
            f"clusterqueues.{GROUP}/{queue.cluster_queue}", check=False,
        )  # fmt: skip


def _list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def serving_webhook_port(cluster: Cluster) -> int | None:
    """Return the webhook port of a Kueue that already serves ``cluster`` (its mutating
    webhook configuration exists and that port accepts TLS), else None."""
    result = cluster.kubectl(
        "get", f"mutatingwebhookconfiguration/{MUTATING_WEBHOOK}", "-o", "json", check=False
    )
    if result.returncode != 0:
        return None
    webhooks = json.loads(result.stdout).get("webhooks") or [{}]
    url = str(webhooks[0].get("clientConfig", {}).get("url", ""))
    port = urlsplit(url).port
    if not port:
        return None
    context = probes.insecure_context()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1"),
        ):
            return port
    except (OSError, ssl.SSLError):
        return None
