"""Shared pieces of the control-plane benchmarks (``make bench``): cluster, operator, watches.

Importing this module puts ``hack/`` and ``operator/`` on ``sys.path``, so the benchmarks run
as ``python bench/bench_dispatch.py`` from the repository root (``hack/bench.sh`` does that with
the virtualenv's python). Nothing here asserts on timings: the benchmarks print numbers.

Pieces:

* :func:`fresh_cluster`: a local control plane in its own temporary data directory (so it runs
  beside a demo or test cluster), with the CRDs installed; stopped and removed on exit.
* :class:`Operator`: ``python -m backfill_operator run`` as users run it, with its peak RSS;
  :func:`operator_on_fresh_cluster`: both together.
* :class:`Watch`: a raw watch stream in a thread that time-stamps each event on arrival.
* :func:`pod_template`, :func:`job_template`, :func:`partitioned_job`, :func:`backfill`: the
  benchmark workload's manifests (pods KWOK runs for ``RUN_TIME``, minutely partitions).
* :func:`run_backfill`: a PartitionedJob and a Backfill of it (extra spec fields such as
  ``partitionsPerJob`` allowed), watched to the Backfill's final phase or a timeout (a
  :class:`BackfillRun`), with an optional progress callback.
* :func:`apiserver_requests`: ``apiserver_request_total`` summed by (verb, group, resource,
  subresource, dry_run), from the apiserver's own ``/metrics``.
* :class:`OperatorReadings` / :class:`OperatorCost`, :func:`operator_events` and
  :func:`write_breakdown`: what a run cost the operator (requests, passes, CPU, its writes).
* :func:`refill_latencies`, :func:`percentile` and :func:`latency_line`: slot-refill latency
  from watch timestamps.
* ``python bench/common.py summary FILE...``: the table ``hack/bench.sh`` prints at the end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))

import kubernetes
from kubernetes.client import ApiClient, BatchV1Api, CoreV1Api, CustomObjectsApi

from devcluster import Cluster
from devcluster.operator import OperatorProcess

ROOT = Path(__file__).resolve().parents[1]
GROUP = "backfill.dev"
VERSION = "v1alpha1"
#: Pod run time under KWOK for every benchmark workload.
RUN_TIME = "1s"
#: First partition of the minutely PartitionedJobs of :func:`partitioned_job` and
#: :func:`backfill` (by default).
START = datetime(2024, 1, 1)
#: The apiserver verbs that count as writes.
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")
KIB = 1024


_T0 = time.monotonic()


def say(text: str) -> None:
    """Print a progress line with the seconds since start (flushed, so it shows at once)."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {text}", flush=True)


def load_average() -> str:
    """The 1-minute load average and the CPU count, e.g. ``load 3.1 on 2 CPUs``."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ----------------------------------------------------------------------------- the cluster


@contextlib.contextmanager
def fresh_cluster(name: str) -> Iterator[Cluster]:
    """Start a local control plane in a new temporary directory, install the CRDs, yield it.

    The processes are tied to this process (``tie_to_parent``) and stopped on exit; the
    directory is removed unless ``BENCH_KEEP=1``.
    """
    data_dir = Path(tempfile.mkdtemp(prefix=f"backfill-bench-{name}-"))
    keep = os.environ.get("BENCH_KEEP") == "1"
    started = time.monotonic()
    cluster = Cluster.start(data_dir, tie_to_parent=True)
    try:
        say(f"   control plane ready in {time.monotonic() - started:.1f} s ({data_dir})")
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        for crd in ("backfills.backfill.dev", "partitionedjobs.backfill.dev"):
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}")
        yield cluster
    finally:
        cluster.stop()
        if keep:
            say(f"   BENCH_KEEP=1: kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Clients:
    """Kubernetes API clients for one cluster (the official client, raw JSON)."""

    api: ApiClient
    batch: BatchV1Api
    core: CoreV1Api
    custom: CustomObjectsApi

    @classmethod
    def connect(cls, kubeconfig: Path) -> Clients:
        """Return clients that use ``kubeconfig``."""
        api: ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            str(kubeconfig)
        )
        api.configuration.connection_pool_maxsize = 8
        return cls(api, BatchV1Api(api), CoreV1Api(api), CustomObjectsApi(api))

    def close(self) -> None:
        """Close the connection pool."""
        self.api.close()  # type: ignore[no-untyped-call]

    # backfill.dev objects and Jobs as plain dicts (the client's types say "object")
    def get_custom(self, namespace: str, plural: str, name: str) -> dict[str, Any]:
        """GET a backfill.dev object."""
        return load(
            self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _preload_content=False
            )
        )

    def list_custom(self, namespace: str, plural: str) -> list[dict[str, Any]]:
        """LIST backfill.dev objects ``plural`` in ``namespace``."""
        response = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, _preload_content=False
        )
        items: list[dict[str, Any]] = load(response)["items"]
        return items

    def create_custom(self, namespace: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a backfill.dev object; return it as created."""
        return load(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, _preload_content=False
            )
        )

    def replace_custom_status(self, namespace: str, plural: str, body: dict[str, Any]) -> None:
        """PUT the status subresource of a backfill.dev object."""
        self.custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, body["metadata"]["name"], body
        )

    def delete_custom(self, namespace: str, plural: str, name: str) -> None:
        """DELETE a backfill.dev object."""
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, _preload_content=False
        )

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        """POST a batch/v1 Job."""
        self.batch.create_namespaced_job(namespace, cast(Any, body), _preload_content=False)


def load(response: Any) -> dict[str, Any]:
    """Decode a raw (``_preload_content=False``) response body."""
    data: dict[str, Any] = json.loads(response.data)
    return data


def create_namespace(clients: Clients, name: str) -> None:
    """Create a namespace (no error if it exists)."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    with contextlib.suppress(kubernetes.client.exceptions.ApiException):
        clients.core.create_namespace(cast(Any, body), _preload_content=False)


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.5) -> None:
    """Poll ``check`` until it is True; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def count_pods(clients: Clients, namespace: str) -> int:
    """Return how many pods exist in ``namespace``."""
    return len(load(clients.core.list_namespaced_pod(namespace, _preload_content=False))["items"])


# ----------------------------------------------------------------------------- objects


def pod_template(duration: str = RUN_TIME) -> dict[str, Any]:
    """The benchmark pod: KWOK runs it for ``duration``, then it succeeds."""
    return {
        "metadata": {"annotations": {"kwok.backfill.dev/duration": duration}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "work",
                    "image": "registry.example/bench-work:1.0",
                    "args": ["--partition", "$(PARTITION_KEY)"],
                }
            ],
        },
    }


def job_template(duration: str = RUN_TIME) -> dict[str, Any]:
    """A ``jobTemplate`` (no retries) whose pod is :func:`pod_template` of ``duration``."""
    return {"spec": {"backoffLimit": 0, "template": pod_template(duration)}}


def partitioned_job(name: str, spec: dict[str, Any], start: datetime = START) -> dict[str, Any]:
    """A minutely PartitionedJob (UTC, from ``start``); ``spec`` holds the rest of its spec
    (``jobTemplate`` or ``steps``, ...)."""
    partitions = {
        "schedule": {"cron": "* * * * *", "timeZone": "UTC", "start": f"{start:%Y-%m-%d}"}
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PartitionedJob",
        "metadata": {"name": name},
        "spec": {"partitions": partitions, **spec},
    }


def backfill(
    name: str,
    job: str,
    partitions: int,
    concurrency: int,
    start: datetime = START,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Backfill of the first ``partitions`` minutes (from ``start``) of the PartitionedJob
    ``job``; ``spec``: more fields of its spec (e.g. ``partitionsPerJob``)."""
    last = start + timedelta(minutes=partitions - 1)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Backfill",
        "metadata": {"name": name},
        "spec": {
            "jobRef": {"name": job},
            "range": {
                "from": start.strftime("%Y-%m-%dT%H:%M"),
                "to": last.strftime("%Y-%m-%dT%H:%M"),
            },
            "concurrency": concurrency,
            **(spec or {}),
        },
    }


def compact(obj: Any) -> int:
    """Size in bytes of ``obj`` as compact JSON (how the apiserver stores a custom resource)."""
    return len(json.dumps(obj, separators=(",", ":")).encode())


# ---------------------------------------------------------------------------- the operator


class Operator(OperatorProcess):
    """The operator process as users run it (``devcluster.operator.OperatorProcess``), plus
    the readings the benchmarks take of it: ``/proc`` memory and CPU, and parsed metrics.

    ``BENCH_OPERATOR_SCRIPT``: run this script instead of ``-m backfill_operator`` (same
    arguments), e.g. a wrapper that profiles the operator.
    """

    def __init__(self, cluster: Cluster, log: Path) -> None:
        super().__init__(
            Path(cluster.kubeconfig), log.parent, script=os.environ.get("BENCH_OPERATOR_SCRIPT")
        )
        self.cluster = cluster

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the operator's log."""
        return self.tail()[-chars:]

    def rss_line(self) -> str:
        """``operator RSS <VmRSS> MiB (peak <VmHWM> MiB)``, for progress lines."""
        rss = self.proc_status()
        return (
            f"operator RSS {rss.get('VmRSS', 0) / KIB:.0f} MiB "
            f"(peak {rss.get('VmHWM', 0) / KIB:.0f} MiB)"
        )

    def proc_status(self) -> dict[str, int]:
        """``VmRSS`` and ``VmHWM`` (KiB) of the operator process, from /proc."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    out[name] = int(rest.split()[0])
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time of the operator process so far (from /proc/<pid>/stat)."""
        with open(f"/proc/{self.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")

    def metric_values(self) -> dict[str, float]:
        """The operator's /metrics as {series: value}."""
        out: dict[str, float] = {}
        for line in self.metrics().splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[series] = float(value)
        return out


@contextlib.contextmanager
def operator_on_fresh_cluster(name: str) -> Iterator[tuple[Cluster, Clients, Operator]]:
    """:func:`fresh_cluster` with clients and the operator running (stopped on exit); on an
    error, the end of the operator's log is printed."""
    with fresh_cluster(name) as cluster:
        assert cluster.data_dir is not None
        clients = Clients.connect(cluster.kubeconfig)
        operator = Operator(cluster, cluster.data_dir / "operator.log")
        try:
            with operator:
                yield cluster, clients, operator
        except BaseException:
            say(f"   operator log (tail):\n{operator.log_tail()}")
            raise
        finally:
            clients.close()


# ---------------------------------------------------------------------------- watches


@dataclass
class Event:
    """One watch event: arrival time (time.monotonic), type and object."""

    at: float
    type: str
    obj: dict[str, Any]


OpenWatch = Callable[[str], Any]


class Watch:
    """Runs a watch in a daemon thread; every event is time-stamped when its line arrives.

    ``open_watch(resource_version)`` returns a raw urllib3 response of a ``watch=true`` list
    call; the thread re-opens it from the last resourceVersion when the server ends it.
    ``on_event`` (optional) is called in the thread for each event; all events are kept in
    ``events``.
    """

    def __init__(
        self,
        open_watch: OpenWatch,
        resource_version: str,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self._open = open_watch
        self._rv = resource_version
        self._on_event = on_event
        self._stop = threading.Event()
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()  # unblocks the thread's read (urllib3 >= 2.3)
        self._thread.join(timeout=15)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._response = response = self._open(self._rv)
                try:
                    self._read(response)
                finally:
                    response.release_conn()
        except BaseException as exc:  # reported by the caller via .error
            if not self._stop.is_set():
                self.error = exc

    def _read(self, response: Any) -> None:
        buffer = b""
        for chunk in response.stream(65536, decode_content=True):
            now = time.monotonic()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                data = json.loads(line)
                kind, obj = data.get("type", ""), data.get("object") or {}
                if kind == "ERROR":
                    raise RuntimeError(f"watch error: {obj}")
                self._rv = (obj.get("metadata") or {}).get("resourceVersion", self._rv)
                if kind == "BOOKMARK":
                    continue
                event = Event(now, kind, obj)
                self.events.append(event)
                if self._on_event is not None:
                    self._on_event(event)
            if self._stop.is_set():
                return


def job_watch(clients: Clients, namespace: str, resource_version: str) -> OpenWatch:
    """An ``open_watch`` for the Jobs of ``namespace``."""

    def open_watch(rv: str) -> Any:
        return clients.batch.list_namespaced_job(
            namespace,
            watch=True,
            resource_version=rv or resource_version,
            timeout_seconds=60,
            _preload_content=False,
        )

    return open_watch


def pod_watch(clients: Clients, namespace: str, resource_version: str) -> OpenWatch:
    """An ``open_watch`` for the pods of ``namespace``."""

    def open_watch(rv: str) -> Any:
        return clients.core.list_namespaced_pod(
            namespace,
            watch=True,
            resource_version=rv or resource_version,
            timeout_seconds=60,
            _preload_content=False,
        )

    return open_watch


def custom_watch(clients: Clients, namespace: str, plural: str, resource_version: str) -> OpenWatch:
    """An ``open_watch`` for backfill.dev objects ``plural`` in ``namespace``."""

    def open_watch(rv: str) -> Any:
        return clients.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            plural,
            watch=True,
            resource_version=rv or resource_version,
            timeout_seconds=60,
            _preload_content=False,
        )

    return open_watch


def list_rv(response: Any) -> str:
    """The list resourceVersion of a raw list response (to start a watch from)."""
    return str(load(response)["metadata"]["resourceVersion"])


def job_finished(obj: dict[str, Any]) -> bool:
    """True when a batch/v1 Job has condition Complete or Failed with status True."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return True
    return False


def pod_finished(obj: dict[str, Any]) -> bool:
    """True when a pod is in phase Succeeded or Failed."""
    return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@dataclass
class Lifecycle:
    """First-seen ADDED and finished times (time.monotonic) per object name, from a watch."""

    added: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Sequence[Event], finished: Callable[[dict[str, Any]], bool]) -> Lifecycle:
        """Build from watch events; ``finished`` says whether an object has ended."""
        out = cls()
        for event in events:
            name = event.obj["metadata"]["name"]
            if event.type == "ADDED":
                out.added.setdefault(name, event.at)
            if (
                event.type in ("ADDED", "MODIFIED")
                and name not in out.finished
                and finished(event.obj)
            ):
                out.finished[name] = event.at
        return out


def refill_latencies(life: Lifecycle, slots: int) -> list[float]:
    """Seconds from the k-th finish to the (slots + k)-th creation, for every k that has one.

    With at most ``slots`` objects active at once, the (slots + k)-th object can only start
    once k objects have finished, so this is how long the k-th freed slot stayed empty.
    """
    finishes = sorted(life.finished.values())
    adds = sorted(life.added.values())
    return [adds[slots + k] - finishes[k] for k in range(min(len(finishes), len(adds) - slots))]


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


# ---------------------------------------------------------------------------- a Backfill run


@dataclass
class BackfillRun:
    """What :func:`run_backfill` saw: times are time.monotonic, events as the watches got them."""

    started: float  # the Backfill's create
    ended: float  # its final phase seen in the watch (or the timeout)
    phase: str  # Succeeded, Failed or Invalid (or the last phase seen, when it timed out)
    status: dict[str, Any]  # the Backfill's status, read after the end
    job_events: list[Event]
    pod_events: list[Event]  # empty unless the pods were watched
    jobs: Lifecycle
    finished: bool = True  # False: no final phase within the timeout (raise_on_timeout=False)

    @property
    def wall(self) -> float:
        """Seconds from the Backfill's create to its final phase (or to the timeout)."""
        return self.ended - self.started

    @property
    def first_job(self) -> float:
        """Seconds from the Backfill's create to the first Job ADDED (nan without Jobs)."""
        return min(self.jobs.added.values()) - self.started if self.jobs.added else float("nan")


def run_backfill(
    clients: Clients,
    namespace: str,
    name: str,
    job: dict[str, Any],
    partitions: int,
    concurrency: int,
    before_start: Callable[[], None] = lambda: None,
    watch_pods: bool = False,
    *,
    start: datetime = START,
    spec: dict[str, Any] | None = None,
    timeout: float = 1800,
    raise_on_timeout: bool = True,
    progress: Callable[[float], None] | None = None,
    progress_every: float = 10.0,
) -> BackfillRun:
    """Create the PartitionedJob ``job`` (a manifest, e.g. :func:`partitioned_job`) in
    ``namespace``, wait until the operator marks it Ready, call ``before_start``, then create a
    Backfill ``name`` of its first ``partitions`` minutes from ``start`` (``spec``: more fields
    of its spec, see :func:`backfill`) and wait up to ``timeout`` seconds for a final phase,
    with the Jobs (and, with ``watch_pods``, the pods) of the namespace watched.

    ``progress(seconds since the create)`` is called every ``progress_every`` seconds while
    waiting. Past ``timeout``: TimeoutError, or with ``raise_on_timeout=False`` a run with
    ``finished=False``, the last phase seen and the status as it is then."""
    create_namespace(clients, namespace)
    job_name = job["metadata"]["name"]
    clients.create_custom(namespace, "partitionedjobs", job)

    def job_ready() -> bool:
        body = clients.get_custom(namespace, "partitionedjobs", job_name)
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    wait_until(job_ready, 60, f"PartitionedJob {job_name} Ready (written by the operator)", 0.2)
    before_start()
    done = threading.Event()
    final: list[tuple[float, str]] = []
    seen = ["(none)"]  # the last phase seen

    def on_backfill(event: Event) -> None:
        phase = (event.obj.get("status") or {}).get("phase")
        seen[0] = str(phase or seen[0])
        if phase in ("Succeeded", "Failed", "Invalid") and not done.is_set():
            final.append((event.at, str(phase)))
            done.set()

    job_rv = list_rv(clients.batch.list_namespaced_job(namespace, _preload_content=False))
    pod_rv = (
        list_rv(clients.core.list_namespaced_pod(namespace, _preload_content=False))
        if watch_pods
        else ""
    )
    bf_rv = list_rv(
        clients.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "backfills", _preload_content=False
        )
    )
    with contextlib.ExitStack() as stack:
        watches = [stack.enter_context(Watch(job_watch(clients, namespace, job_rv), job_rv))]
        if watch_pods:
            watches.append(
                stack.enter_context(Watch(pod_watch(clients, namespace, pod_rv), pod_rv))
            )
        watches.append(
            stack.enter_context(
                Watch(custom_watch(clients, namespace, "backfills", bf_rv), bf_rv, on_backfill)
            )
        )
        started = time.monotonic()
        clients.create_custom(
            namespace,
            "backfills",
            backfill(name, job_name, partitions, concurrency, start=start, spec=spec),
        )
        deadline = started + timeout
        while not done.is_set() and (left := deadline - time.monotonic()) > 0:
            if not done.wait(timeout=min(progress_every, left)) and progress is not None:
                progress(time.monotonic() - started)
        finished = done.is_set()
        if not finished:
            if raise_on_timeout:
                raise TimeoutError(f"Backfill {name} did not finish in {timeout:.0f} s")
            final.insert(0, (time.monotonic(), f"{seen[0]} (no final phase in {timeout:.0f} s)"))
        time.sleep(0.5)
    for watch in watches:
        if watch.error is not None:
            raise RuntimeError(f"watch failed: {watch.error!r}")
    body = clients.get_custom(namespace, "backfills", name)
    return BackfillRun(
        started=started,
        ended=final[0][0],
        phase=final[0][1],
        status=body.get("status") or {},
        job_events=watches[0].events,
        pod_events=watches[1].events if watch_pods else [],
        jobs=Lifecycle.of(watches[0].events, job_finished),
        finished=finished,
    )


# ------------------------------------------------------------------- apiserver metrics

_SERIES = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

RequestKey = tuple[str, str, str, str, str]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``; 0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def component_cpu(cluster: Cluster, operator: Operator | None = None) -> dict[str, float]:
    """CPU seconds so far of each control-plane process (by component name) and the operator."""
    out: dict[str, float] = {}
    for record in cluster.records:
        out[record.name] = out.get(record.name, 0.0) + process_cpu_seconds(record.pid)
    if operator is not None:
        out["operator"] = operator.cpu_seconds()
    return out


def cpu_line(before: dict[str, float], after: dict[str, float], wall: float) -> str:
    """``name seconds`` per component between two :func:`component_cpu` readings, busiest first,
    with their total as cores busy over ``wall`` seconds."""
    used = {n: s - before.get(n, 0.0) for n, s in after.items()}
    rows = sorted(((n, s) for n, s in used.items() if s > 0), key=lambda r: -r[1])
    total = sum(s for _, s in rows)
    return (
        ", ".join(f"{n} {s:.1f}" for n, s in rows)
        + f"; total {total:.1f} s = {total / wall:.2f} cores over {wall:.1f} s"
    )


def apiserver_requests(cluster: Cluster) -> tuple[Counter[RequestKey], Counter[RequestKey]]:
    """``apiserver_request_total`` by (verb, group, resource, subresource, dry_run).

    Returns (all requests, the ones answered with a code other than 2xx).
    """
    text = cluster.kubectl("get", "--raw", "/metrics", timeout_seconds=60).stdout
    out: Counter[RequestKey] = Counter()
    failed: Counter[RequestKey] = Counter()
    for line in text.splitlines():
        match = _SERIES.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        key = (
            labels.get("verb", ""),
            labels.get("group", ""),
            labels.get("resource", ""),
            labels.get("subresource", ""),
            labels.get("dry_run", ""),
        )
        value = int(float(match["value"]))
        out[key] += value
        if not labels.get("code", "").startswith("2"):
            failed[key] += value
    return out, failed


@dataclass
class OperatorReadings:
    """The apiserver's request counters and the operator's metrics and CPU seconds, at once."""

    requests: tuple[Counter[RequestKey], Counter[RequestKey]]  # all, not 2xx
    metrics: dict[str, float]
    cpu: float

    @classmethod
    def take(cls, cluster: Cluster, operator: Operator) -> OperatorReadings:
        """Read them now (requests, then metrics, then CPU)."""
        return cls(apiserver_requests(cluster), operator.metric_values(), operator.cpu_seconds())


@dataclass
class OperatorCost:
    """What happened between two :class:`OperatorReadings`: apiserver requests (all, and the
    ones not answered 2xx), the operator's reconcile passes, their seconds and its CPU seconds."""

    requests: Counter[RequestKey]
    failed: Counter[RequestKey]
    passes: float
    pass_seconds: float
    cpu: float

    @classmethod
    def between(cls, before: OperatorReadings, after: OperatorReadings) -> OperatorCost:
        """``after`` minus ``before``."""
        requests = after.requests[0].copy()
        requests.subtract(before.requests[0])
        failed = after.requests[1].copy()
        failed.subtract(before.requests[1])

        def delta(series: str) -> float:
            return float(after.metrics.get(series, 0.0) - before.metrics.get(series, 0.0))

        return cls(
            requests,
            failed,
            delta("backfill_reconcile_duration_seconds_count"),
            delta("backfill_reconcile_duration_seconds_sum"),
            after.cpu - before.cpu,
        )


def operator_events(clients: Clients, namespace: str) -> Counter[str]:
    """Events in ``namespace`` posted by the operator (or by kopf on its behalf), by reason."""
    items = load(clients.core.list_namespaced_event(namespace, _preload_content=False))["items"]
    out: Counter[str] = Counter()
    for item in items:
        source = (item.get("source") or {}).get("component") or item.get("reportingComponent")
        if source in ("backfill-operator", "kopf"):
            out[f"{source}:{item.get('reason')}"] += int(item.get("count") or 1)
    return out


def write_breakdown(
    diff: Counter[RequestKey], failed: Counter[RequestKey], events: Counter[str], units: int
) -> tuple[float, list[tuple[str, int]], list[tuple[str, int]]]:
    """Operator writes (total per unit, e.g. per partition or per Job; rows) and other
    components' writes (rows), from an apiserver request diff and the operator's Events."""
    ours: list[tuple[str, int]] = []
    theirs: list[tuple[str, int]] = []
    for key, n in sorted(diff.items()):
        verb, group, resource, sub, dry_run = key
        if verb not in WRITE_VERBS or n <= 0:
            continue
        qualified = f"{group}/{resource}" if group not in ("", "batch", GROUP) else resource
        label = (
            f"{verb} {qualified}" + (f"/{sub}" if sub else "") + (" (dry run)" if dry_run else "")
        )
        if (verb, group, resource) == ("POST", GROUP, "backfills"):
            continue  # the benchmark's own create
        custom = group == GROUP
        jobs = group == "batch" and resource == "jobs" and not sub and verb in ("POST", "DELETE")
        if failed[key] > 0:
            label += f" ({failed[key]} not 2xx)"
        if custom or jobs:
            ours.append((label, n))
        else:
            theirs.append((label, n))
    for reason, n in sorted(events.items()):
        ours.append((f"POST events ({reason})", n))
    total = sum(n for _, n in ours)
    return total / units, ours, theirs


# ----------------------------------------------------------------------------- results


@dataclass
class Result:
    """One reported number: benchmark, what, value (text), goal (text) and whether it is met.

    ``met`` is None for numbers without a goal.
    """

    bench: str
    metric: str
    value: str
    goal: str = ""
    met: bool | None = None


def ms(value: float) -> str:
    """Seconds as whole milliseconds, e.g. ``12 ms``."""
    return f"{value * 1000:.0f} ms"


def latency_line(label: str, values: list[float]) -> str:
    """p50 / p90 / p99 / max of ``values`` (seconds) as one line."""
    if not values:
        return f"{label}: no samples"
    return (
        f"{label}: n={len(values)} p50 {ms(percentile(values, 50))}, "
        f"p90 {ms(percentile(values, 90))}, p99 {ms(percentile(values, 99))}, "
        f"max {ms(max(values))}"
    )


def write_results(path: str | None, results: Sequence[Result]) -> None:
    """Write results as JSON (for the summary table), when ``path`` is given."""
    if path:
        Path(path).write_text(json.dumps([r.__dict__ for r in results], indent=1) + "\n")


def print_results(results: Sequence[Result]) -> None:
    """Print results as an aligned table."""
    rows = [("benchmark", "metric", "value", "goal", "met")]
    for r in results:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        rows.append((r.bench, r.metric, r.value, r.goal, met))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def summary(paths: Sequence[str]) -> int:
    """Print the table of every results file in ``paths`` (missing files are noted)."""
    results: list[Result] = []
    for path in paths:
        try:
            results += [Result(**row) for row in json.loads(Path(path).read_text())]
        except FileNotFoundError:
            results.append(Result(Path(path).stem, "(no results: the benchmark failed)", "-"))
    print_results(results)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "summary":
        sys.exit(summary(sys.argv[2:]))
    sys.exit("usage: python bench/common.py summary RESULTS.json...")
