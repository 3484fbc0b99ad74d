"""A real local Kubernetes control plane for the demo and the tests (no Docker, no kubelet).

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK run as local processes
on free loopback ports; pods run "on" KWOK Nodes and follow the stages in
``hack/controlplane/kwok-stages.yaml``. See docs/local-control-plane.md.

Command line: ``python -m devcluster {up,down,status,env}``. Python API::

    with Cluster.start(tmp_dir, tie_to_parent=True) as cluster:
        cluster.kubectl("get", "nodes")
        with Kueue.start(cluster, tie_to_parent=True) as kueue:  # optional; see kueue.py
            queue = kueue.create_queue("default", quota={"cpu": "2"})
"""

from .binaries import BinariesError, default_data_dir, resolve_bin_dir, stages_file
from .cluster import (
    AlreadyRunning,
    Cluster,
    ClusterError,
    ComponentStatus,
    KubectlError,
    NotRunning,
    StartupError,
)
from .components import DEFAULT_CONTROLLERS, Ports
from .kueue import Kueue, KueueError, Queue
from .pki import PkiError

__all__ = [
    "DEFAULT_CONTROLLERS",
    "AlreadyRunning",
    "BinariesError",
    "Cluster",
    "ClusterError",
    "ComponentStatus",
    "KubectlError",
    "Kueue",
    "KueueError",
    "NotRunning",
    "PkiError",
    "Ports",
    "Queue",
    "StartupError",
    "default_data_dir",
    "resolve_bin_dir",
    "stages_file",
]
