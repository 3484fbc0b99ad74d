"""Static checks of the Helm chart, the dashboard and the alert rules (no cluster).

The chart is rendered by the real `helm template` (the binary hack/setup.sh builds); the checks
read the rendered objects: Pod Security "restricted", least-privilege RBAC, the users'
aggregated ClusterRoles (test_rbac.py asks the real authorizer), probes on kopf's /healthz,
peering, monitoring objects, and that values.schema.json both covers values.yaml and
makes helm reject bad values. The dashboard's and alerts' PromQL is cross-checked against the
metric names the operator registers (which docs/design.md and docs/observability.md list), and
promtool pins when the scheduled-runs alerts fire (test_prometheus.py evaluates all of it on a
real Prometheus).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "backfill-operator"
DASHBOARD = ROOT / "dashboards" / "backfill-operator.json"
ALERTS = CHART / "files" / "alerts.yaml"

Manifest = dict[str, Any]

#: Every (apiGroup, resource, verb) the operator may use, from the operator's needs: nothing
#: more (least privilege), nothing less (it would fail at run time). Peering is added per mode.
NAMESPACED_GRANTS = {
    *{
        ("backfill.dev", r, v)
        for r in ("backfills", "partitionedjobs")
        for v in ("get", "list", "watch", "patch")
    },
    *{
        ("backfill.dev", r, v)
        for r in ("backfills/status", "partitionedjobs/status")
        for v in ("get", "patch", "update")
    },
    *{("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete")},
    *{("", "pods", v) for v in ("list", "watch")},  # succeeded pods free slots
    # blockOwnerDeletion on the Jobs' owner reference (OwnerReferencesPermissionEnforcement)
    *{("backfill.dev", f"{r}/finalizers", "update") for r in ("backfills", "partitionedjobs")},
    *{(g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch")},
}
CRD_READ = {
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")
}
NAMESPACE_READ = {("", "namespaces", v) for v in ("get", "list", "watch")}
PEERING_VERBS = ("get", "list", "watch", "patch", "create")

#: The users' ClusterRoles (templates/user-roles.yaml) of release "rel": what each grants and
#: the built-in ClusterRoles it is aggregated into. Status is read-only (the operator writes it).
USER_KINDS = ("backfills", "partitionedjobs")
READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
USER_STATUS_READ = {("backfill.dev", f"{r}/status", v) for r in USER_KINDS for v in READ_VERBS}
USER_ROLES = {
    "rel-backfill-operator-edit": (
        {("backfill.dev", r, v) for r in USER_KINDS for v in READ_VERBS + WRITE_VERBS}
        | USER_STATUS_READ,
        {"admin", "edit"},
    ),
    "rel-backfill-operator-view": (
        {("backfill.dev", r, v) for r in USER_KINDS for v in READ_VERBS} | USER_STATUS_READ,
        {"view"},
    ),
}
AGGREGATE_LABEL = "rbac.authorization.k8s.io/aggregate-to-"


def find_helm() -> Path | None:
    """helm as hack/test.sh exports it ($BACKFILL_BIN_DIR), on PATH, or in build.sh's cache."""
    cache = Path(os.environ.get("BACKFILL_CACHE", Path.home() / ".cache" / "backfill-operator"))
    bin_dir = os.environ.get("BACKFILL_BIN_DIR")
    for candidate in (
        Path(bin_dir) / "helm" if bin_dir else None,
        Path(found) if (found := shutil.which("helm")) else None,
        cache / "bin" / "links" / "helm",
    ):
        if candidate is not None and candidate.exists():
            return candidate
    return None


def _helm() -> str:
    helm = find_helm()
    if helm is None:
        pytest.fail("helm not found: run `make test` once (hack/setup.sh builds it)")
    return str(helm)


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ)
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = str(home / var.lower())
    env.pop("KUBECONFIG", None)
    yield env


def helm_template(env: dict[str, str], *values: str) -> subprocess.CompletedProcess[str]:
    """Run `helm template rel CHART -n ops` with `--set` style ``values``; never raises."""
    argv = [_helm(), "template", "rel", str(CHART), "--namespace", "ops"]
    for value in values:
        argv += ["--set", value]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def render(env: dict[str, str], *values: str) -> list[Manifest]:
    done = helm_template(env, *values)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_roles(docs: list[Manifest], kind: str = "ClusterRole") -> list[Manifest]:
    """The operator's own roles of ``kind``: every one but the users' (USER_ROLES)."""
    return [d for d in of_kind(docs, kind) if d["metadata"]["name"] not in USER_ROLES]


def user_roles(docs: list[Manifest]) -> dict[str, Manifest]:
    """The users' ClusterRoles by name."""
    return {
        d["metadata"]["name"]: d
        for d in of_kind(docs, "ClusterRole")
        if d["metadata"]["name"] in USER_ROLES
    }


def aggregated_into(role: Manifest) -> set[str]:
    """The built-in ClusterRoles (admin, edit, view) whose aggregation labels ``role`` has."""
    labels = role["metadata"].get("labels", {})
    return {
        key.removeprefix(AGGREGATE_LABEL)
        for key, value in labels.items()
        if key.startswith(AGGREGATE_LABEL) and value == "true"
    }


def grants(role: Manifest) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role.get("rules", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


VARIANTS = {
    "default": (),
    "namespaced": ("watchNamespaces={team-a,team-b}",),
    "standalone": ("peering.enabled=false",),
    "monitoring": ("metrics.serviceMonitor.enabled=true", "prometheusRule.enabled=true"),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def rendered(request: pytest.FixtureRequest, helm_env: dict[str, str]) -> list[Manifest]:
    return render(helm_env, *VARIANTS[request.param])


# ------------------------------------------------------------------- Pod Security, restricted


def test_pod_meets_pod_security_restricted(rendered: list[Manifest]) -> None:
    """The checks of the "restricted" profile (Pod Security Standards) on the rendered pod."""
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    for forbidden in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        assert not pod.get(forbidden), forbidden
    allowed_volumes = {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= allowed_volumes, volume
    containers = pod["containers"] + pod.get("initContainers", [])
    for container in containers:
        csc = container.get("securityContext", {})
        assert csc.get("allowPrivilegeEscalation") is False
        assert not csc.get("privileged")
        assert "ALL" in csc.get("capabilities", {}).get("drop", [])
        assert set(csc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}
        assert (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True
        assert csc.get("runAsUser", psc.get("runAsUser", 1)) != 0
        seccomp = csc.get("seccompProfile") or psc.get("seccompProfile") or {}
        assert seccomp.get("type") in {"RuntimeDefault", "Localhost"}
        # Beyond "restricted": the image never writes to its root filesystem.
        assert csc.get("readOnlyRootFilesystem") is True
        assert "hostPort" not in json.dumps(container.get("ports", []))


def test_container_runs_the_operator_with_probes_and_resources(rendered: list[Manifest]) -> None:
    deployment = one(rendered, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--metrics-port") + 1] == "8080"
    assert args[args.index("--liveness-port") + 1] == "8081"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http-metrics": 8080, "health": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["image"] == "backfill-operator:0.1.0"  # appVersion by default


# ------------------------------------------------------------------------------------- RBAC


def test_rbac_has_no_wildcards_secrets_or_escalation(rendered: list[Manifest]) -> None:
    roles = of_kind(rendered, "ClusterRole") + of_kind(rendered, "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            assert "resourceNames" not in rule or rule["resourceNames"]
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["metadata"]["name"], rule)
            assert not {"secrets", "serviceaccounts/token"} & set(rule["resources"])
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            assert not any(r.endswith("/exec") for r in rule["resources"])
            if role["metadata"]["name"] not in USER_ROLES:  # a user may delete a collection
                assert "deletecollection" not in rule["verbs"]


def test_all_namespaces_mode_grants_exactly_what_the_operator_uses(
    helm_env: dict[str, str],
) -> None:
    docs = render(helm_env)
    (role,) = operator_roles(docs)
    assert grants(role) == NAMESPACED_GRANTS | CRD_READ | {
        ("kopf.dev", "clusterkopfpeerings", v) for v in PEERING_VERBS
    }
    assert not of_kind(docs, "Role")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    sa = one(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ops"}
    ]
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and "--namespace" not in args


def test_namespaced_mode_keeps_working_rights_inside_the_listed_namespaces(
    helm_env: dict[str, str],
) -> None:
    docs = render(helm_env, *VARIANTS["namespaced"])
    (cluster_role,) = operator_roles(docs)
    assert grants(cluster_role) == CRD_READ | NAMESPACE_READ  # reads only, at cluster scope
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    assert set(roles) == {"team-a", "team-b"}
    for role in roles.values():
        assert grants(role) == NAMESPACED_GRANTS | {
            ("kopf.dev", "kopfpeerings", v) for v in PEERING_VERBS
        }
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(docs, "RoleBinding")}
    assert set(bindings) == {"team-a", "team-b"}
    for ns, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[ns]["metadata"]["name"],
        }
        assert binding["subjects"][0]["namespace"] == "ops"
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["team-a", "team-b"]
    peerings = of_kind(docs, "KopfPeering")
    assert {p["metadata"]["namespace"] for p in peerings} == {"team-a", "team-b"}
    assert not of_kind(docs, "ClusterKopfPeering")


# ------------------------------------------------------------------------------ user roles


def test_user_roles_grant_backfills_where_the_builtin_roles_grant_jobs(
    rendered: list[Manifest],
) -> None:
    """In every mode: -edit joins admin and edit (which create Jobs), -view joins view."""
    roles = user_roles(rendered)
    assert set(roles) == set(USER_ROLES)
    for name, (expected, builtin) in USER_ROLES.items():
        assert grants(roles[name]) == expected, name
        assert aggregated_into(roles[name]) == builtin, name
        assert "aggregationRule" not in roles[name]  # a source of rules, not an aggregate
        assert roles[name]["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    assert not any(b["roleRef"]["name"] in USER_ROLES for b in of_kind(rendered, "RoleBinding"))
    assert not any(
        b["roleRef"]["name"] in USER_ROLES for b in of_kind(rendered, "ClusterRoleBinding")
    )


def test_user_roles_values_turn_them_or_their_aggregation_off(helm_env: dict[str, str]) -> None:
    unlabelled = user_roles(render(helm_env, "rbac.userRoles.aggregate=false"))
    assert set(unlabelled) == set(USER_ROLES)
    for name, role in unlabelled.items():
        assert grants(role) == USER_ROLES[name][0]
        assert aggregated_into(role) == set()
    off = render(helm_env, "rbac.userRoles.create=false")
    assert not user_roles(off)
    assert len(operator_roles(off)) == 1  # the operator keeps its own
    assert not of_kind(render(helm_env, "rbac.create=false"), "ClusterRole")  # no RBAC at all


# ---------------------------------------------------------------------------------- peering


def test_peering_object_matches_the_flag(helm_env: dict[str, str]) -> None:
    docs = render(helm_env)
    deployment = one(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    peering = one(docs, "ClusterKopfPeering")
    assert args[args.index("--peering") + 1] == peering["metadata"]["name"]
    assert "--standalone" not in args
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # The kopf.dev CRDs come with the chart (vendored subchart, installed from its crds/).
    crds = list(
        yaml.safe_load_all(
            (CHART / "charts" / "kopf-peering" / "crds" / "kopf.dev_peerings.yaml").read_text()
        )
    )
    assert {c["spec"]["names"]["kind"] for c in crds} == {"ClusterKopfPeering", "KopfPeering"}


def test_peering_lifetime_is_passed_and_matches_the_operator_default(
    helm_env: dict[str, str],
) -> None:
    """peering.lifetimeSeconds becomes --peering-lifetime; its default is the operator's own
    (tests/chaos/test_peering.py measures takeover with it)."""
    from backfill_operator.__main__ import DEFAULT_PEERING_LIFETIME, MIN_PEERING_LIFETIME

    def args_of(*values: str) -> list[str]:
        deployment = one(render(helm_env, *values), "Deployment")
        args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        return args

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["peering"]["lifetimeSeconds"] == DEFAULT_PEERING_LIFETIME
    args = args_of()
    assert args[args.index("--peering-lifetime") + 1] == str(DEFAULT_PEERING_LIFETIME)
    args = args_of("peering.lifetimeSeconds=30")
    assert args[args.index("--peering-lifetime") + 1] == "30"
    assert "--peering-lifetime" not in args_of(*VARIANTS["standalone"])
    schema = json.loads((CHART / "values.schema.json").read_text())
    lifetime = schema["properties"]["peering"]["properties"]["lifetimeSeconds"]
    assert lifetime["minimum"] == MIN_PEERING_LIFETIME


def test_standalone_runs_one_replica_and_never_two_at_once(helm_env: dict[str, str]) -> None:
    docs = render(helm_env, *VARIANTS["standalone"])
    deployment = one(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--standalone" in args and "--peering" not in args
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not of_kind(docs, "ClusterKopfPeering") and not of_kind(docs, "KopfPeering")
    (role,) = operator_roles(docs)
    assert not any(g[0] == "kopf.dev" for g in grants(role))


# ------------------------------------------------------------------------------- monitoring


def test_metrics_service_servicemonitor_and_rule(helm_env: dict[str, str]) -> None:
    docs = render(helm_env, *VARIANTS["monitoring"], "metrics.job=bf")
    service = one(docs, "Service")
    deployment = one(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8080, "targetPort": "http-metrics", "protocol": "TCP"}
    ]
    monitor = one(docs, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http-metrics" and endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True  # keep the Backfill's `namespace` label
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "bf"
    rule = one(docs, "PrometheusRule")
    source = yaml.safe_load(ALERTS.read_text())
    expected = json.loads(
        json.dumps(source["groups"]).replace('job=\\"backfill-operator\\"', 'job=\\"bf\\"')
    )
    assert rule["spec"]["groups"] == expected
    assert 'job="bf"' in json.dumps(rule["spec"]["groups"]).replace('\\"', '"')


def test_monitoring_objects_are_off_by_default(helm_env: dict[str, str]) -> None:
    docs = render(helm_env)
    assert not of_kind(docs, "ServiceMonitor") and not of_kind(docs, "PrometheusRule")


def test_dashboard_configmap_carries_the_dashboard_file(helm_env: dict[str, str]) -> None:
    assert (CHART / "dashboards" / "backfill-operator.json").read_bytes() == DASHBOARD.read_bytes()
    config_map = one(render(helm_env), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"]["backfill-operator.json"] == DASHBOARD.read_text().rstrip("\n")
    assert not of_kind(render(helm_env, "dashboard.enabled=false"), "ConfigMap")


# ------------------------------------------------------------------------------ the schema


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        paths.add(prefix + key)
        if sub.get("additionalProperties") is False:
            paths |= _schema_paths(sub, f"{prefix}{key}.")
    return paths


def _value_paths(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in values.items():
        paths.add(prefix + key)
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and sub.get("additionalProperties") is False:
            paths |= _value_paths(value, sub, f"{prefix}{key}.")
    return paths


def test_values_schema_is_draft7_and_covers_values_yaml() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    declared = _schema_paths(schema)
    used = _value_paths(values, schema)
    assert used <= declared, f"values.yaml keys missing from the schema: {used - declared}"
    undeclared_in_values = {p for p in declared - used if "." not in p} - {"global", "kopf-peering"}
    assert not undeclared_in_values, f"schema keys without a default: {undeclared_in_values}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicaCount=-1", "replicaCount"),
        ("replicas=2", "replicas"),
        ("watchNamespaces={Not_A_Namespace}", "watchNamespaces"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("metrics.port=70000", "port"),
        ("peering.enabled=false,replicaCount=2", "replicaCount"),
        ("metrics.serviceMonitor.interval=soon", "interval"),
        ("rbac.userRoles.aggregate=yes", "aggregate"),
        ("rbac.userRoles.bindTo=alice", "bindTo"),
        ("peering.lifetimeSeconds=3", "lifetimeSeconds"),
    ],
)
def test_schema_makes_helm_reject_bad_values(
    helm_env: dict[str, str], value: str, message: str
) -> None:
    done = helm_template(helm_env, value)
    assert done.returncode != 0, f"helm accepted {value}"
    assert "schema" in done.stderr and message in done.stderr, done.stderr


# ------------------------------------------------------------------ dashboard and alerts


def _table_metrics(doc: str) -> set[str]:
    """The metric names of a doc's metric table (rows starting with a backfill_ name)."""
    text = (ROOT / "docs" / doc).read_text()
    return set(re.findall(r"^\| `(backfill_[a-z_]+)` \|", text, flags=re.MULTILINE))


def _operator_metrics() -> set[str]:
    """The names the operator exposes: its real registry (counters with their _total)."""
    from prometheus_client import CollectorRegistry

    from backfill_operator.controller.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    return {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in registry.collect()
    }


def _known_metrics() -> set[str]:
    """The operator's metrics, once checked against the docs that list them."""
    known = _operator_metrics()
    assert _table_metrics("design.md") <= known, _table_metrics("design.md") - known
    documented = _table_metrics("observability.md")
    assert documented == known, {"undocumented": known - documented, "unknown": documented - known}
    return known


def _metric_names(expr: str) -> set[str]:
    names = set(re.findall(r"\b(backfill_[a-z_]+)\b", expr))
    return {re.sub(r"_(bucket|count|sum)$", "", n) if "_seconds_" in n else n for n in names}


def _dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t) for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "backfill-operator"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["definition"] == "label_values(backfill_info, namespace)"
    assert variables["backfill"]["definition"] == (
        'label_values(backfill_info{namespace=~"$namespace"}, backfill)'
    )
    for name in ("namespace", "backfill"):
        assert variables[name]["multi"] and variables[name]["includeAll"]
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"] and panel["description"]
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "progress",
        "partitions by state",
        "partitions by step",
        "throughput",
        "failure rate",
        "p50 / p95",
        "active jobs vs concurrency",
        "time to completion",
        "reconcile errors",
        "scheduled runs",
        "schedule lag",
        "missed partitions",
        "taken on, by how",
        "schedules",
    ):
        assert topic in titles, topic


def test_dashboard_queries_use_operator_metrics_and_variables() -> None:
    known = _known_metrics()
    assert len(known) == 21
    used: set[str] = set()
    for title, target in _dashboard_targets():
        expr = target["expr"]
        names = _metric_names(expr)
        assert names and names <= known, (title, names - known)
        used |= names
        variables = set(re.findall(r"\$\{?(\w+)", expr))
        assert variables <= {"namespace", "backfill", "__rate_interval", "__range"}, title
        if "backfill_reconcile_" not in expr:  # the operator-wide histograms
            assert "$namespace" in expr and "$backfill" in expr, title
    assert used == known, f"metrics without a panel: {known - used}"


def test_alerts_use_operator_metrics() -> None:
    known = _known_metrics()
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {
        "BackfillOperatorDown",
        "BackfillNoProgress",
        "BackfillHighFailureRatio",
        "BackfillReconcileErrors",
        "BackfillScheduleLagging",
        "BackfillScheduleMissedPartitions",
    } <= names
    for rule in rules:
        assert _metric_names(rule["expr"]) <= known, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    down = next(r for r in rules if r["alert"] == "BackfillOperatorDown")
    assert 'up{job="backfill-operator"}' in down["expr"]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: hack/setup.sh installs Debian's prometheus package")
    return found


PJ = 'namespace="data", partitioned_job="hourly"'
PAUSED = 'namespace="data", partitioned_job="paused"'
#: Synthetic series (one sample a minute) for the scheduled-runs alerts, and when they fire.
#: "hourly" has delaySeconds 1h: its partition comes due with lag 3600 and never succeeds (lag
#: above 2h from minute 63, so firing from 73). "paused" lags more but is suspended.
SCHEDULE_RULE_TESTS: list[dict[str, Any]] = [
    {
        "interval": "1m",
        "input_series": [
            {"series": f"backfill_schedule_lag_seconds{{{PJ}}}", "values": "0 0 3600+60x100"},
            {"series": f"backfill_schedule_suspended{{{PJ}}}", "values": "0x100"},
            {"series": f"backfill_schedule_lag_seconds{{{PAUSED}}}", "values": "10000+60x100"},
            {"series": f"backfill_schedule_suspended{{{PAUSED}}}", "values": "1x100"},
            {"series": f"backfill_schedule_missed_partitions{{{PJ}}}", "values": "0 0 3x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "72m", "alertname": "BackfillScheduleLagging"},
            {
                "eval_time": "74m",
                "alertname": "BackfillScheduleLagging",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "namespace": "data",
                            "partitioned_job": "hourly",
                            "severity": "warning",
                        }
                    }
                ],
            },
            {"eval_time": "16m", "alertname": "BackfillScheduleMissedPartitions"},
            {
                "eval_time": "17m",
                "alertname": "BackfillScheduleMissedPartitions",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "namespace": "data",
                            "partitioned_job": "hourly",
                            "severity": "info",
                        }
                    }
                ],
            },
        ],
    },
    {  # each partition succeeds less than 10 minutes after the lag passed 2h: quiet
        "interval": "1m",
        "input_series": [
            {  # per 108 minutes: caught up 31, a partition due with lag 3600 that succeeds at
                # 7500 (above 7200 for 5 minutes), caught up 11
                "series": f"backfill_schedule_lag_seconds{{{PJ}}}",
                "values": " ".join(["0x30", "3600+60x65", "0x10"] * 3),
            },
            {"series": f"backfill_schedule_missed_partitions{{{PJ}}}", "values": "0x330"},
        ],
        "alert_rule_test": [
            {"eval_time": f"{m}m", "alertname": name}
            for m in (96, 97, 100, 204, 205, 300)
            for name in ("BackfillScheduleLagging", "BackfillScheduleMissedPartitions")
        ],
    },
]


def test_schedule_alerts_fire_when_pinned(tmp_path: Path) -> None:
    """promtool: the rules file checks, and the scheduled-runs alerts fire when they should
    (labels and expanded summary; test_prometheus.py pins the other alerts)."""
    check = subprocess.run(
        [_promtool(), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    # What to do, in the description: the commands the runbook names.
    lagging = rules["BackfillScheduleLagging"]["annotations"]["description"]
    assert "{{ $value | humanizeDuration }}" in lagging
    assert "--reprocess failed" in lagging
    missed = rules["BackfillScheduleMissedPartitions"]["annotations"]["description"]
    assert "`kubectl backfill missing {{ $labels.partitioned_job }}" in missed
    assert "--create`" in missed
    # promtool compares annotations whole: keep the summaries, drop the prose.
    for group in groups:
        for rule in group["rules"]:
            rule.get("annotations", {}).pop("description", None)
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump({"groups": groups}))
    summaries = {
        "BackfillScheduleLagging": "Schedule of PartitionedJob data/hourly is lagging.",
        "BackfillScheduleMissedPartitions": (
            "Schedule of PartitionedJob data/hourly missed partitions."
        ),
    }
    tests = json.loads(json.dumps(SCHEDULE_RULE_TESTS))
    for case in tests[0]["alert_rule_test"]:
        for alert in case.get("exp_alerts", []):
            alert["exp_annotations"] = {"summary": summaries[case["alertname"]]}
    tests_file = tmp_path / "schedule_alerts_test.yaml"
    tests_file.write_text(
        yaml.safe_dump({"rule_files": ["alerts.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    done = subprocess.run(
        [_promtool(), "test", "rules", str(tests_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_step_panel_query_falls_back_per_backfill(tmp_path: Path) -> None:
    """promtool: "Partitions by step" shows each step of a Backfill with steps, and a Backfill
    without steps (a jobTemplate job) as one row "(no steps)" from backfill_partitions."""
    (panel,) = [
        p for p in json.loads(DASHBOARD.read_text())["panels"] if p["title"] == "Partitions by step"
    ]
    (target,) = panel["targets"]
    expr = target["expr"].replace("$namespace", "data").replace("$backfill", "steps|plain")
    series = []
    for state, value in (("succeeded", 2), ("upstream_failed", 1)):
        for backfill in ("steps", "plain", "other"):
            series.append(
                {
                    "series": f'backfill_partitions{{namespace="data", backfill="{backfill}", '
                    f'state="{state}"}}',
                    "values": f"{value}x5",
                }
            )
        for step in ("ingest", "validate"):
            series.append(
                {
                    "series": f'backfill_step_partitions{{namespace="data", backfill="steps", '
                    f'step="{step}", state="{state}"}}',
                    "values": f"{value + (step == 'ingest')}x5",
                }
            )

    def row(backfill: str, step: str, state: str, value: int) -> dict[str, Any]:
        labels = f'{{backfill="{backfill}", namespace="data", state="{state}", step="{step}"}}'
        return {"labels": labels, "value": value}

    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "2m",
                        "exp_samples": [
                            row("steps", "ingest", "succeeded", 3),
                            row("steps", "ingest", "upstream_failed", 2),
                            row("steps", "validate", "succeeded", 2),
                            row("steps", "validate", "upstream_failed", 1),
                            row("plain", "(no steps)", "succeeded", 2),
                            row("plain", "(no steps)", "upstream_failed", 1),
                        ],
                    }
                ],
            }
        ],
    }
    tests_file = tmp_path / "step_panel_test.yaml"
    tests_file.write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [_promtool(), "test", "rules", str(tests_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------- deploy documentation


def _code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_deploy_doc_commands_match_the_repository() -> None:
    """docs/deploy.md's commands parse as shell and name files, tags and names that exist."""
    doc = ROOT / "docs" / "deploy.md"
    blocks = _code_blocks(doc, "sh")
    assert blocks
    for block in blocks:
        done = subprocess.run(
            ["bash", "-n"], input=block, capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
    text = "\n".join(blocks)
    kind_config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert kind_config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert kind_config["kind"] == "Cluster"
    assert "kind create cluster --config kind-config.yaml" in text
    assert f"--name {kind_config['name']}" in text
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    image = f"{values['image']['repository']}:{chart['appVersion']}"
    assert f"docker build -t {image} ." in text
    assert f"kind load docker-image {image}" in text
    paths = re.findall(r"(?:-f|--patch-file|install \S+) ((?:charts|examples|docs)/[\w./-]+)", text)
    assert len(paths) >= 4
    for path in paths:
        assert (ROOT / path).exists(), path
    assert "pod-security.kubernetes.io/enforce=restricted" in text


def test_deploy_doc_inline_manifests_match_the_crd_schema() -> None:
    """The inline example of docs/deploy.md is read by the operator's own models."""
    from backfill_operator.api.model import BackfillSpec, PartitionedJobSpec

    (block,) = [b for b in _code_blocks(ROOT / "docs" / "deploy.md", "sh") if "<<'EOF'" in b]
    manifest = block.split("<<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    docs = {d["kind"]: d for d in yaml.safe_load_all(manifest)}
    PartitionedJobSpec.model_validate(docs["PartitionedJob"]["spec"])
    BackfillSpec.model_validate(docs["Backfill"]["spec"])
    assert docs["Backfill"]["spec"]["jobRef"]["name"] == docs["PartitionedJob"]["metadata"]["name"]
