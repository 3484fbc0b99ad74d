"""The operator as users run it: a real ``backfill-operator run`` process against the cluster.

Fixtures (registered once for the whole session by ``tests/conftest.py``'s
``pytest_plugins``):

``crds_installed`` (session)    the CRDs from ``crds/`` applied and Established.
``operator_process`` (session)  an :class:`OperatorProcess`, running; tests that kill it must
                                leave it running (``restart()``), the fixture re-checks this.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.operator import OperatorProcess

__all__ = ["OperatorProcess", "crds_installed", "operator", "operator_process"]

ROOT = Path(__file__).resolve().parents[1]


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
