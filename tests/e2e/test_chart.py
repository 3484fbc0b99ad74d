"""The Helm chart against the real local control plane, with the helm that hack/setup.sh builds.

`helm lint` and `helm template` for every variant; `helm install`, `helm upgrade` and `helm
uninstall` into a namespace that enforces Pod Security "restricted", so the real apiserver
validates every object and the real PodSecurity admission checks the operator's pod (which KWOK
then runs: it becomes Running and Ready, though no process runs in it). RBAC is checked with the
real authorizer (`kubectl auth can-i --as` the operator's ServiceAccount). The namespace-scoped
variant is sent through `kubectl apply --dry-run=server`, then installed. GitOps: re-applying
the same manifests, or `helm upgrade` with the same values, writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from helpers import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "backfill-operator"
PEERING_CRDS = CHART / "charts" / "kopf-peering" / "crds"
TIMEOUT = "120s"
#: Helm 4 applies crds/ server-side on install. The session fixture applied the same CRDs
#: under its own field manager; should a reused cluster hold an older copy, helm takes the
#: fields over rather than failing on the conflict (docs/deploy.md, "Upgrading").
INSTALL_FLAGS = ("--wait", "--timeout", TIMEOUT, "--force-conflicts")


class ClusterLike(Protocol):
    """What the session fixture `cluster` (tests/conftest.py) provides."""

    kubeconfig: Any
    bin_dir: Any


@dataclass(frozen=True)
class Tools:
    """helm and kubectl bound to the test cluster, with a private helm home."""

    bin_dir: Path
    env: dict[str, str]

    def run(
        self, tool: str, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin_dir / tool), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, check=check)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, stdin=stdin, check=check)

    def get_json(self, *args: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return data

    def exists(self, *args: str) -> bool:
        return self.kubectl("get", *args, "--ignore-not-found", "-o", "name").stdout.strip() != ""

    def can_i(self, service_account: str, verb: str, resource: str, *scope: str) -> bool:
        """Ask the authorizer; ``resource`` may name a subresource as ``pods/log``."""
        resource, _, subresource = resource.partition("/")
        extra = [f"--subresource={subresource}"] if subresource else []
        done = self.kubectl(
            "auth", "can-i", verb, resource, *extra, f"--as={service_account}", *scope, check=False
        )
        assert done.stdout.strip() in {"yes", "no"}, done.stderr
        return done.stdout.strip() == "yes"


def _helm_home(tmp_path: Path) -> dict[str, str]:
    return {
        var: str(tmp_path / var.lower())
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")
    }


@pytest.fixture
def tools(cluster: ClusterLike, tmp_path: Path) -> Tools:
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), **_helm_home(tmp_path))
    return Tools(Path(str(cluster.bin_dir)), env)


@pytest.fixture
def offline_tools(tmp_path: Path) -> Tools:
    """helm without a cluster (lint, template): $BACKFILL_BIN_DIR, PATH or build.sh's cache."""
    cache = Path(os.environ.get("BACKFILL_CACHE", Path.home() / ".cache" / "backfill-operator"))
    bin_dir = os.environ.get("BACKFILL_BIN_DIR")
    on_path = shutil.which("helm")
    candidates = [Path(bin_dir) / "helm"] if bin_dir else []
    candidates += [Path(on_path)] if on_path else []
    candidates.append(cache / "bin" / "links" / "helm")
    helm = next((c for c in candidates if c.exists()), None)
    if helm is None:
        pytest.fail("helm not found: run `make test` once (hack/setup.sh builds it)")
    env = dict(os.environ, **_helm_home(tmp_path))
    env.pop("KUBECONFIG", None)
    return Tools(helm.parent, env)


def release_name(namespace: str) -> str:
    return "bo-" + hashlib.sha256(namespace.encode()).hexdigest()[:8]


def restrict(tools: Tools, namespace: str) -> None:
    """Make the namespace enforce Pod Security "restricted" (latest)."""
    tools.kubectl(
        "label",
        "namespace",
        namespace,
        "--overwrite",
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/audit=restricted",
    )


def resource_versions(tools: Tools, namespace: str, release: str) -> dict[str, str]:
    """resourceVersion of every object of a release: namespaced and cluster-scoped."""
    selector = f"app.kubernetes.io/instance={release}"
    versions = {}
    for scope, kinds in (
        (["-n", namespace], "deployment,serviceaccount,service,configmap,role,rolebinding"),
        ([], "clusterrole,clusterrolebinding,clusterkopfpeering"),
    ):
        items = tools.get_json(kinds, *scope, "-l", selector)["items"]
        for item in items:
            meta = item["metadata"]
            versions[f"{item['kind']}/{meta.get('namespace', '')}/{meta['name']}"] = meta[
                "resourceVersion"
            ]
    return versions


@pytest.fixture
def release(tools: Tools, namespace: str) -> Iterator[str]:
    """A release name for this test; uninstalled afterwards whatever happened."""
    name = release_name(namespace)
    yield name
    tools.helm("uninstall", name, "-n", namespace, "--wait", "--ignore-not-found", check=False)


# --------------------------------------------------------------------------- no cluster


def test_chart_crds_are_the_generated_crds() -> None:
    generated = {p.name: p.read_bytes() for p in sorted((ROOT / "crds").glob("*.yaml"))}
    shipped = {p.name: p.read_bytes() for p in sorted((CHART / "crds").glob("*.yaml"))}
    assert {"backfill.dev_backfills.yaml", "backfill.dev_partitionedjobs.yaml"} <= set(generated)
    assert shipped.keys() == generated.keys()
    for name, text in generated.items():
        assert shipped[name] == text, f"charts/backfill-operator/crds/{name} differs: make crds"


LINT_VARIANTS = {
    "default": [],
    "namespaced": ["--set", "watchNamespaces={team-a,team-b}"],
    "standalone": ["--set", "peering.enabled=false"],
    "monitoring": [
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "prometheusRule.enabled=true",
    ],
    "ha": ["--set", "replicaCount=3"],
}


@pytest.mark.parametrize("variant", sorted(LINT_VARIANTS))
def test_helm_lint_strict(offline_tools: Tools, variant: str) -> None:
    done = offline_tools.helm("lint", "--strict", str(CHART), *LINT_VARIANTS[variant])
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout


def test_helm_package_carries_everything_the_templates_read(
    offline_tools: Tools, tmp_path: Path
) -> None:
    """The packaged chart (what a chart repository serves) renders what the directory does."""
    offline_tools.helm("package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("backfill-operator-*.tgz")
    with tarfile.open(package) as tar:
        names = set(tar.getnames())
    for path in (
        "values.schema.json",
        "dashboards/backfill-operator.json",
        "files/alerts.yaml",
        "crds/backfill.dev_backfills.yaml",
        "crds/backfill.dev_partitionedjobs.yaml",
        "charts/kopf-peering/crds/kopf.dev_peerings.yaml",
    ):
        assert f"backfill-operator/{path}" in names, path
    values = ["--set", "prometheusRule.enabled=true", "--include-crds"]
    from_dir = offline_tools.helm("template", "rel", str(CHART), *values).stdout
    from_package = offline_tools.helm("template", "rel", str(package), *values).stdout
    assert from_package == from_dir


def test_helm_template_renders_the_rules_promtool_accepts(
    offline_tools: Tools, tmp_path: Path
) -> None:
    """The PrometheusRule the chart renders holds rules Prometheus loads (promtool)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: hack/setup.sh installs Debian's prometheus package")
    out = offline_tools.helm(
        "template",
        "rel",
        str(CHART),
        "--set",
        "prometheusRule.enabled=true",
        "--show-only",
        "templates/prometheusrule.yaml",
    ).stdout
    rule = yaml.safe_load(out)
    rules_file = tmp_path / "rendered-rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


# ------------------------------------------------------------------------------ cluster


def test_install_upgrade_uninstall_under_pod_security_restricted(
    tools: Tools, namespace: str, release: str
) -> None:
    restrict(tools, namespace)
    sa = f"system:serviceaccount:{namespace}:{release}-backfill-operator"
    deployment = f"deployment/{release}-backfill-operator"

    # The PodSecurity admission plugin is live for this namespace: a pod that breaks
    # "restricted" draws its verdict from the real apiserver.
    bad = tools.helm(
        "template",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        "securityContext.allowPrivilegeEscalation=true",
        "--show-only",
        "templates/deployment.yaml",
    ).stdout
    verdict = tools.kubectl("apply", "--dry-run=server", "-f", "-", stdin=bad)
    assert 'would violate PodSecurity "restricted:latest"' in verdict.stderr

    # install
    done = tools.helm("install", release, str(CHART), "-n", namespace, *INSTALL_FLAGS)
    assert "PodSecurity" not in done.stderr, done.stderr
    assert "STATUS: deployed" in done.stdout
    assert f"installed as release {release}" in done.stdout  # NOTES.txt

    pods = wait_for(
        lambda: [
            p
            for p in tools.get_json(
                "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}"
            )["items"]
            if p["status"].get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        ],
        timeout=60,
        message="the operator pod Running and Ready under KWOK",
    )
    pod = pods[0]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == f"{release}-backfill-operator"
    peering = tools.get_json("clusterkopfpeering", f"{release}-backfill-operator")
    assert peering["metadata"]["labels"]["app.kubernetes.io/instance"] == release
    assert tools.exists("crd", "clusterkopfpeerings.kopf.dev")

    # What the ServiceAccount may do, asked of the real RBAC authorizer.
    everywhere = ("--all-namespaces",)
    for verb, resource in [
        ("list", "backfills.backfill.dev"),
        ("watch", "partitionedjobs.backfill.dev"),
        ("patch", "backfills.backfill.dev/status"),
        ("update", "partitionedjobs.backfill.dev/status"),
        ("create", "jobs.batch"),
        ("delete", "jobs.batch"),
        ("create", "events"),
        ("create", "events.events.k8s.io"),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "clusterkopfpeerings.kopf.dev"),
        ("watch", "pods"),  # succeeded pods free a slot before their Job completes
    ]:
        assert tools.can_i(sa, verb, resource, *everywhere), (verb, resource)
    for verb, resource in [
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "pods"),
        ("delete", "pods"),
        ("get", "pods"),
        ("get", "pods/log"),
        ("patch", "jobs.batch"),
        ("create", "pods/exec"),
        ("delete", "backfills.backfill.dev"),
        ("create", "backfills.backfill.dev"),
        ("update", "backfills.backfill.dev"),
        ("create", "deployments.apps"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ("*", "*"),
    ]:
        assert not tools.can_i(sa, verb, resource, *everywhere), (verb, resource)

    # GitOps: the same release applied again writes nothing.
    before = resource_versions(tools, namespace, release)
    manifest = tools.helm("get", "manifest", release, "-n", namespace).stdout
    assert {key.split("/")[0] + "/" + key.split("/")[2] for key in before} == {
        f"{doc['kind']}/{doc['metadata']['name']}" for doc in yaml.safe_load_all(manifest) if doc
    }
    tools.helm(
        "upgrade",
        release,
        str(CHART),
        "-n",
        namespace,
        "--reuse-values",
        "--wait",
        "--timeout",
        TIMEOUT,
    )
    assert resource_versions(tools, namespace, release) == before

    # upgrade: more replicas (peering keeps one active), new args, new resources.
    tools.helm(
        "upgrade",
        release,
        str(CHART),
        "-n",
        namespace,
        "--wait",
        "--timeout",
        TIMEOUT,
        "--set",
        "replicaCount=2",
        "--set",
        "extraArgs={--verbose}",
        "--set",
        "resources.requests.cpu=150m",
    )
    spec = tools.get_json(deployment, "-n", namespace)
    container = spec["spec"]["template"]["spec"]["containers"][0]
    assert "--verbose" in container["args"]
    assert container["resources"]["requests"]["cpu"] == "150m"
    wait_for(
        lambda: tools.get_json(deployment, "-n", namespace)["status"].get("readyReplicas") == 2,
        timeout=60,
        message="two ready replicas after the upgrade",
    )
    history = json.loads(tools.helm("history", release, "-n", namespace, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed"

    # uninstall: every object of the release goes, cluster-scoped ones included; CRDs stay.
    tools.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", TIMEOUT)
    assert not tools.exists(deployment, "-n", namespace)
    assert not tools.exists(f"serviceaccount/{release}-backfill-operator", "-n", namespace)
    assert not tools.exists(f"clusterrole/{release}-backfill-operator")
    assert not tools.exists(f"clusterrolebinding/{release}-backfill-operator")
    assert not tools.exists(f"clusterkopfpeering/{release}-backfill-operator")
    assert tools.exists("crd", "clusterkopfpeerings.kopf.dev")
    assert json.loads(tools.helm("list", "-n", namespace, "-o", "json").stdout) == []


@pytest.fixture
def watched_namespaces(tools: Tools, namespace: str) -> Iterator[list[str]]:
    names = [f"{namespace}-a", f"{namespace}-b"]
    for name in names:
        tools.kubectl("create", "namespace", name)
    yield names
    for name in names:
        tools.kubectl(
            "delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False
        )


def test_namespace_scoped_variant(
    tools: Tools, namespace: str, release: str, watched_namespaces: list[str]
) -> None:
    restrict(tools, namespace)
    values = ["--set", "watchNamespaces={" + ",".join(watched_namespaces) + "}"]
    sa = f"system:serviceaccount:{namespace}:{release}-backfill-operator"
    # The kopf.dev kinds must be known to the apiserver for a dry run of KopfPeerings; helm
    # installs them from the chart's crds/ on install, kubectl applies them here (idempotent).
    tools.kubectl(
        "apply", "--server-side", "--field-manager=backfill-tests", "-f", str(PEERING_CRDS)
    )
    wait_for(
        lambda: tools.exists("crd", "kopfpeerings.kopf.dev"),
        timeout=30,
        message="the kopf.dev CRDs",
    )
    wait_for(
        lambda: (
            tools.kubectl(
                "wait",
                "--for=condition=Established",
                "--timeout=5s",
                "crd/kopfpeerings.kopf.dev",
                check=False,
            ).returncode
            == 0
        ),
        timeout=30,
        message="kopfpeerings.kopf.dev Established",
    )

    # Server-side dry run: the real apiserver validates and admits every object, stores none.
    rendered = tools.helm("template", release, str(CHART), "-n", namespace, *values).stdout
    dry = tools.kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered)
    assert "PodSecurity" not in dry.stderr, dry.stderr
    lines = dry.stdout.strip().splitlines()
    assert all(line.endswith("(server dry run)") for line in lines), dry.stdout
    kinds = sorted(line.split("/")[0] for line in lines)
    assert kinds.count("role.rbac.authorization.k8s.io") == 2
    assert kinds.count("rolebinding.rbac.authorization.k8s.io") == 2
    assert kinds.count("kopfpeering.kopf.dev") == 2
    assert not tools.exists("role", "-n", watched_namespaces[0])

    # GitOps: the same manifests applied twice (server-side, as Argo CD and Flux apply) change
    # nothing the second time.
    first = tools.kubectl(
        "apply", "--server-side", "--field-manager=gitops", "-f", "-", stdin=rendered
    )
    assert "PodSecurity" not in first.stderr, first.stderr
    selector = ["-l", f"app.kubernetes.io/instance={release}"]
    kinds_q = "deployment,serviceaccount,service,configmap"
    snapshot = {
        ns: tools.get_json(kinds_q + ",role,rolebinding,kopfpeering", "-n", ns, *selector)
        for ns in [namespace, *watched_namespaces]
    }
    second = tools.kubectl(
        "apply", "--server-side", "--field-manager=gitops", "-f", "-", stdin=rendered
    )
    assert all(line.endswith("serverside-applied") for line in second.stdout.splitlines())
    for ns, before in snapshot.items():
        after = tools.get_json(kinds_q + ",role,rolebinding,kopfpeering", "-n", ns, *selector)
        assert [i["metadata"]["resourceVersion"] for i in after["items"]] == [
            i["metadata"]["resourceVersion"] for i in before["items"]
        ], ns
    tools.kubectl("delete", "-f", "-", "--wait", stdin=rendered)

    # Installed for real: rights inside the listed namespaces only.
    tools.helm("install", release, str(CHART), "-n", namespace, *values, *INSTALL_FLAGS)
    for ns in watched_namespaces:
        assert tools.exists(f"kopfpeering/{release}-backfill-operator", "-n", ns)
        for verb, resource in [
            ("list", "backfills.backfill.dev"),
            ("create", "jobs.batch"),
            ("patch", "backfills.backfill.dev/status"),
            ("patch", "kopfpeerings.kopf.dev"),
            ("create", "events"),
        ]:
            assert tools.can_i(sa, verb, resource, "-n", ns), (ns, verb, resource)
        assert not tools.can_i(sa, "get", "secrets", "-n", ns)
    assert not tools.can_i(sa, "list", "backfills.backfill.dev", "-n", namespace)
    assert not tools.can_i(sa, "create", "jobs.batch", "-n", namespace)
    assert not tools.can_i(sa, "list", "backfills.backfill.dev", "--all-namespaces")
    assert not tools.can_i(sa, "patch", "clusterkopfpeerings.kopf.dev")
    assert tools.can_i(sa, "watch", "namespaces")
    assert tools.can_i(sa, "list", "customresourcedefinitions.apiextensions.k8s.io")
    args = tools.get_json(f"deployment/{release}-backfill-operator", "-n", namespace)["spec"][
        "template"
    ]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == watched_namespaces
    tools.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", TIMEOUT)
    for ns in watched_namespaces:
        assert not tools.exists(f"role/{release}-backfill-operator", "-n", ns)
