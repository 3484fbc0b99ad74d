"""Fixtures of the chaos suite: a control plane of its own, operators started per test.

The scenarios crash the operator, the apiserver and etcd, so they never touch the session's
cluster (``tests/conftest.py``) nor its operator, which watches every namespace and would act
on their Backfills too. Instead:

``chaos_cluster`` (package)  a :class:`devcluster.Cluster` in a temp dir, started on first use
                             and stopped when the suite is done, with the CRDs and the kopf.dev
                             peering CRDs (``charts/backfill-operator/charts/kopf-peering``)
                             installed. Before each test, a component an earlier test left dead
                             or unhealthy is restarted.
``chaos``                    a :class:`ChaosEnv`: that cluster, an ApiClient, a fresh
                             namespace, ``Api`` helpers for it, and ``operator(...)``, which
                             starts an :class:`OperatorProcess` (logs under the test's temp
                             dir) and stops it after the test.

Figures a scenario measured (``ChaosEnv.report``) are printed at the end of the run under
"chaos figures".

Everything below ``tests/chaos`` is marked ``integration`` (``tests/conftest.py``); the full
scenarios are also marked ``chaos`` and run with ``make chaos`` only.
"""

from __future__ import annotations

import atexit
import dataclasses
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from devcluster import Cluster, ClusterError
from devcluster.operator import OperatorProcess

from .support import FIGURES, Api

ROOT = Path(__file__).resolve().parents[2]
PEERING_CRDS = ROOT / "charts" / "backfill-operator" / "charts" / "kopf-peering" / "crds"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the scenarios measured."""
    if not FIGURES:
        return
    terminalreporter.section("chaos figures")
    for scenario, values in FIGURES:
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        terminalreporter.write_line(f"{scenario}: {shown}")


@pytest.fixture(scope="package")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A control plane of the chaos suite's own (see the module doc)."""
    try:
        cluster = Cluster.start(
            tmp_path_factory.mktemp("chaos-controlplane"),
            tie_to_parent=True,
            progress=lambda message: print(f"devcluster (chaos): {message}", file=sys.stderr),
        )
    except ClusterError as exc:
        pytest.fail(f"the chaos control plane did not start:\n{exc}", pytrace=False)
    atexit.register(cluster.stop)
    try:
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"), "-f", str(PEERING_CRDS))
        for crd in (
            "backfills.backfill.dev",
            "partitionedjobs.backfill.dev",
            "clusterkopfpeerings.kopf.dev",
        ):
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
        yield cluster
    finally:
        cluster.stop()


@dataclasses.dataclass
class ChaosEnv:
    """One scenario's world: ``cluster``, ``client`` (kubernetes ApiClient), ``namespace``,
    ``api`` (helpers for that namespace), ``log_dir`` (operator logs)."""

    cluster: Cluster
    client: client.ApiClient
    namespace: str
    api: Api
    log_dir: Path
    operators: list[OperatorProcess] = dataclasses.field(default_factory=list)

    def operator(self, name: str = "operator", **options: Any) -> OperatorProcess:
        """Start ``backfill-operator run`` against the cluster (``options``: those of
        :class:`OperatorProcess`, e.g. ``peering``, ``priority``, ``extra_args``); its logs
        go to ``<log_dir>/<name>/operator-<n>.log``. Stopped after the test."""
        process = OperatorProcess(self.cluster.kubeconfig, self.log_dir / name, **options)
        self.operators.append(process)
        process.start()
        return process

    def report(self, scenario: str, **values: Any) -> None:
        """Keep figures for the summary at the end of the run."""
        FIGURES.append((scenario, values))
        print(f"chaos figures: {scenario}: {values}", file=sys.stderr)


@pytest.fixture
def chaos(
    chaos_cluster: Cluster, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ChaosEnv]:
    """A :class:`ChaosEnv` with a new namespace ``chaos-<test>-<6 hex>`` (see the module doc)."""
    for name in chaos_cluster.unhealthy():  # an earlier scenario failed half-way
        chaos_cluster.restart_component(name)
    api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(chaos_cluster.kubeconfig)
    )
    core = client.CoreV1Api(api_client)
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    namespace = f"chaos-{base}-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    env = ChaosEnv(
        cluster=chaos_cluster,
        client=api_client,
        namespace=namespace,
        api=Api(api_client, namespace),
        log_dir=tmp_path / "operators",
    )
    try:
        yield env
    finally:
        for process in env.operators:
            process.stop()
        try:
            core.delete_namespace(namespace, propagation_policy="Background", _request_timeout=10)
        except Exception as exc:  # the scenario may have failed with the apiserver down
            print(f"deleting namespace {namespace}: {exc}", file=sys.stderr)
        api_client.close()  # type: ignore[no-untyped-call]
