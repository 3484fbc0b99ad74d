"""Shared fixtures: a real local control plane for integration and e2e tests.

Fixtures
--------
``cluster`` (session)   a :class:`devcluster.Cluster`: ``.kubeconfig`` (Path), ``.bin_dir``
                        (Path), ``.kubectl(*args, check=True, input=None, timeout_seconds=60)``
                        returning ``subprocess.CompletedProcess[str]``, ``.data_dir`` (None when
                        reusing an existing cluster), ``.server``.
``kube_api`` (session)  a ``kubernetes.client.ApiClient`` for that kubeconfig.
``namespace``           a fresh namespace per test (name str); deleted afterwards, not awaited.
``kueue`` (session)     a :class:`devcluster.Kueue`: Kueue v0.17.0 running against ``cluster``
                        (started on first use only; webhooks for Jobs with the queue-name label).
``crds_installed``, ``operator_process`` (session), ``operator``: the CRDs and one operator
                        process for the whole session (``tests/operator_support.py``).
``kueue_queue``         the name (str) of a LocalQueue in ``namespace`` bound to a ClusterQueue
                        of its own (named after the namespace) with quota cpu 2 / memory 8Gi:
                        exactly two Jobs requesting ``cpu: 1`` run at a time.

The cluster starts lazily, once per session, in a temporary data directory on free ports (a
demo cluster may run at the same time), and stops at the end of the session, also on failures
and Ctrl-C. To reuse a running cluster instead, set ``BACKFILL_KUBECONFIG=<kubeconfig>``, or
``BACKFILL_USE_EXISTING_CLUSTER=1`` to use ``$KUBECONFIG``.

Tests under ``tests/integration`` and ``tests/e2e`` get the ``integration`` / ``e2e`` marker,
those under ``tests/chaos`` ``integration``; the full chaos scenarios are also marked ``chaos``
and left out of the default run like ``long`` (``make chaos`` runs them).
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from devcluster import Cluster, ClusterError, Kueue, KueueError, PkiError

# The operator fixtures (tests/operator_support.py) are registered once, here: a session
# fixture imported into two conftest files is two fixtures, and the e2e and the integration
# tests would each get an operator process, both running against the one cluster (the
# operator assumes it is the only active one).
pytest_plugins = ["operator_support"]

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

# tests/chaos runs on a control plane of its own (tests/chaos/conftest.py): integration too.
_MARKERS = {"integration": "integration", "e2e": "e2e", "chaos": "integration"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test below tests/integration and tests/e2e with the marker of that name, and
    those below tests/chaos with ``integration`` (its full scenarios carry ``chaos`` too)."""
    tests_dir = Path(__file__).parent
    for item in items:
        try:
            parts = item.path.relative_to(tests_dir).parts
        except ValueError:
            continue
        if parts and parts[0] in _MARKERS:
            item.add_marker(getattr(pytest.mark, _MARKERS[parts[0]]))


def _existing_kubeconfig() -> str | None:
    explicit = os.environ.get("BACKFILL_KUBECONFIG")
    if explicit:
        return explicit
    if os.environ.get("BACKFILL_USE_EXISTING_CLUSTER") == "1":
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            raise pytest.UsageError("BACKFILL_USE_EXISTING_CLUSTER=1 needs KUBECONFIG")
        return kubeconfig.split(os.pathsep)[0]
    return None


def _install_safety_net(cluster: Cluster) -> None:
    """Stop ``cluster`` at interpreter exit and on SIGTERM/SIGHUP, not only at fixture
    teardown. (Each process also has PR_SET_PDEATHSIG=SIGKILL, covering a killed pytest.)"""
    atexit.register(cluster.stop)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        cluster.stop(grace_seconds=3.0)
        previous = handlers.get(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    handlers: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        handlers[sig] = signal.getsignal(sig)
        signal.signal(sig, on_signal)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's control plane (started on first use; see the module docstring)."""
    existing = _existing_kubeconfig()
    if existing:
        yield Cluster.attach(existing)
        return
    data_dir = tmp_path_factory.mktemp("controlplane")
    try:
        started = Cluster.start(
            data_dir,
            tie_to_parent=True,
            progress=lambda message: print(f"devcluster: {message}", file=sys.stderr),
        )
    except ClusterError as exc:
        pytest.fail(f"the local control plane did not start:\n{exc}", pytrace=False)
    _install_safety_net(started)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def kueue(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kueue]:
    """Kueue on the session's cluster, started on first use and stopped at the end.

    The binary comes from ``cluster.bin_dir`` (``build.sh`` builds ``kueue`` by default). On a
    reused cluster (BACKFILL_KUBECONFIG) a Kueue already serving it (``up --kueue``) is reused.
    """
    work_dir = None
    if cluster.data_dir is None:
        work_dir = tmp_path_factory.mktemp("kueue")
        running = Kueue.attach(cluster, work_dir)
        if running is not None:
            yield running
            return
    try:
        started = Kueue.start(
            cluster,
            work_dir=work_dir,
            tie_to_parent=True,
            progress=lambda message: print(f"devcluster: {message}", file=sys.stderr),
        )
    except (KueueError, PkiError, subprocess.SubprocessError, OSError) as exc:
        pytest.fail(f"Kueue did not start:\n{exc}", pytrace=False)
    atexit.register(started.stop)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def kueue_queue(kueue: Kueue, namespace: str) -> Iterator[str]:
    """A LocalQueue ``queue`` in ``namespace`` on a ClusterQueue named after the namespace
    (cpu 2, memory 8Gi, no cohort): at most two ``cpu: 1`` Jobs admitted at once. Yields the
    LocalQueue name; deletes both queues afterwards (not awaited)."""
    queue = kueue.create_queue(namespace, local_queue="queue", quota={"cpu": "2", "memory": "8Gi"})
    try:
        yield queue.local_queue
    finally:
        kueue.delete_queue(queue)


@pytest.fixture(scope="session")
def kube_api(cluster: Cluster) -> Iterator[ApiClient]:
    """A kubernetes ApiClient configured from ``cluster.kubeconfig`` (closed at session end)."""
    from kubernetes import config

    api: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)
    )
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{base or 'test'}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(kube_api: ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace named after the test (``t-<test>-<6 hex>``); deletion is not awaited."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(kube_api)
    name = _namespace_name(request.node.name)
    labels = {"backfill.dev/test-namespace": "true"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background", _request_timeout=10)
        except ApiException as exc:
            if exc.status != 404:
                raise
