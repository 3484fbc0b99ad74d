"""Command lines and manifests of the control-plane components (pure functions, no I/O).

Everything listens on 127.0.0.1 only, on ports chosen at start-up (see :class:`Ports`).
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .pki import Pki

#: kube-controller-manager controllers that run. The first five are what the operator and its
#: tests rely on; deployment and replicaset let a chart's Deployment become Available on KWOK;
#: resourcequota keeps ResourceQuota usage current (it frees quota when Jobs are deleted);
#: clusterrole-aggregation fills the aggregated ClusterRoles (the bootstrap admin, edit and
#: view, with the chart's user roles in them); without it they have no rules at all.
DEFAULT_CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "ttl-after-finished-controller",
    "pod-garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "resourcequota-controller",
    "clusterrole-aggregation-controller",
)

#: kube-apiserver admission plugins turned off. ServiceAccount: pods need no `default`
#: ServiceAccount or token (no serviceaccount controllers run). TaintNodesByCondition: it
#: taints new Nodes not-ready, and no node-lifecycle controller would ever remove the taint.
DISABLED_ADMISSION_PLUGINS = ("ServiceAccount", "TaintNodesByCondition")

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/12"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

#: client-side rate limits of the controller manager and scheduler (defaults 20/30 and 50/100
#: would make a few hundred Jobs crawl).
CLIENT_QPS = 200
CLIENT_BURST = 400

#: resources of each KWOK Node.
NODE_ALLOCATABLE = {"cpu": "64", "memory": "256Gi", "pods": "1000"}


@dataclass(frozen=True)
class Ports:
    """TCP ports on 127.0.0.1 of one cluster (all distinct)."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def pick(cls) -> Ports:
        """Return free ports, asking the kernel for each while holding the others open.

        Another process can still take a port before the component binds it; start-up then
        fails with "address already in use" and Cluster.start retries with new ports.
        """
        sockets: list[socket.socket] = []
        try:
            for _ in range(6):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                sockets.append(sock)
            ports = [s.getsockname()[1] for s in sockets]
        finally:
            for sock in sockets:
                sock.close()
        return cls(*ports)

    def to_json(self) -> dict[str, int]:
        """Return the ports by field name."""
        return asdict(self)


def etcd_argv(bin_dir: Path, data_dir: Path, ports: Ports) -> list[str]:
    """etcd, one member, no fsync (the data is disposable), plain HTTP on loopback."""
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"),
        "--name=devcluster",
        f"--data-dir={data_dir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=devcluster={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_argv(bin_dir: Path, data_dir: Path, ports: Ports, pki: Pki) -> list[str]:
    """kube-apiserver with client-certificate authentication and RBAC."""
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={data_dir / 'certs' / 'kube-apiserver'}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        f"--disable-admission-plugins={','.join(DISABLED_ADMISSION_PLUGINS)}",
        "--endpoint-reconciler-type=none",
        "--profiling=false",
    ]


def controller_manager_argv(
    bin_dir: Path,
    data_dir: Path,
    ports: Ports,
    kubeconfig: Path,
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS,
) -> list[str]:
    """kube-controller-manager running only ``controllers``, without leader election."""
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        f"--controllers={','.join(controllers)}",
        "--use-service-account-credentials=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={data_dir / 'certs' / 'kube-controller-manager'}",
        f"--kube-api-qps={CLIENT_QPS}",
        f"--kube-api-burst={CLIENT_BURST}",
        "--concurrent-job-syncs=10",
        "--profiling=false",
    ]


def scheduler_argv(bin_dir: Path, data_dir: Path, ports: Ports, kubeconfig: Path) -> list[str]:
    """kube-scheduler without leader election."""
    return [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={data_dir / 'certs' / 'kube-scheduler'}",
        f"--kube-api-qps={CLIENT_QPS}",
        f"--kube-api-burst={CLIENT_BURST}",
        "--profiling=false",
    ]


def kwok_argv(
    bin_dir: Path, ports: Ports, kubeconfig: Path, stages: Path, config: Path
) -> list[str]:
    """KWOK managing every Node, with our stages and KwokConfiguration."""
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes=true",
        f"--config={stages}",
        f"--config={config}",
        f"--server-address=127.0.0.1:{ports.kwok}",
    ]


KWOK_CONFIGURATION = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
metadata:
  name: devcluster
options:
  podPlayStageParallelism: 16
  nodePlayStageParallelism: 4
"""


def node_name(index: int) -> str:
    """Name of the ``index``-th KWOK node (0-based): ``kwok-node-<index>``."""
    return f"kwok-node-{index}"


def node_manifest(index: int) -> dict[str, Any]:
    """A KWOK Node with NODE_ALLOCATABLE and its own /16 pod CIDR (10.200+index.0.0/16)."""
    name = node_name(index)
    cidr = f"10.{200 + index}.0.0/16"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
            },
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {"allocatable": dict(NODE_ALLOCATABLE), "capacity": dict(NODE_ALLOCATABLE)},
    }
