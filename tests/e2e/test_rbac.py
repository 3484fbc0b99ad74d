"""Who may create a Backfill, asked of the real RBAC authorizer (docs/security.md).

The chart's user ClusterRoles (templates/user-roles.yaml, rendered by the real helm) are
applied; the control plane's clusterrole-aggregation controller folds them into the built-in
admin, edit and view. In a fresh namespace alice is bound to view, bob to edit and carol to
admin (RoleBindings); dave has no binding. Each acts through impersonation (`kubectl --as`):
real reads, creates, patches and deletes, and `kubectl auth can-i` for the rule the roles
exist for: the right to create Backfills and PartitionedJobs goes with the right to create
batch Jobs, user by user and namespace by namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from test_chart import CHART, Tools, release_name
from test_chart import tools as tools  # the fixture, shared with test_chart.py

from helpers import partitioned_job_body, wait_for

pytestmark = pytest.mark.e2e

GROUP = "backfill.dev"
#: user → the built-in ClusterRole bound to them in the test namespace (None: no binding).
USERS = {"alice": "view", "bob": "edit", "carol": "admin", "dave": None}
#: What each built-in role must hold once aggregated: (resource, verb) on backfill.dev.
AGGREGATED = {
    "admin": {("backfills", "create"), ("partitionedjobs", "deletecollection")},
    "edit": {("backfills", "create"), ("partitionedjobs", "deletecollection")},
    "view": {("backfills", "get"), ("partitionedjobs", "list"), ("backfills/status", "get")},
}


def as_user(
    tools: Tools, user: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl --as=<user> *args`` (never raises on a non-zero exit)."""
    return tools.kubectl(f"--as={user}", *args, stdin=stdin, check=False)


def forbidden(done: subprocess.CompletedProcess[str], user: str, verb: str, plural: str) -> bool:
    """True when kubectl failed with the authorizer's refusal of ``verb`` ``plural``."""
    return (
        done.returncode != 0
        and "(Forbidden)" in done.stderr
        and f'User "{user}" cannot {verb} resource "{plural}"' in done.stderr
    )


def patch_backfill(
    tools: Tools, user: str, namespace: str, name: str, patch: dict[str, Any], *extra: str
) -> subprocess.CompletedProcess[str]:
    """Merge-patch Backfill namespace/name as ``user``; ``extra``: e.g. --subresource=status."""
    return as_user(
        tools, user, "patch", "backfill", name, "-n", namespace, "--type=merge",
        "-p", json.dumps(patch), *extra,
    )  # fmt: skip


def builtin_grants(tools: Tools, role: str) -> set[tuple[str, str]]:
    """The (resource, verb) pairs on backfill.dev that built-in ClusterRole ``role`` holds."""
    rules = tools.get_json("clusterrole", role).get("rules") or []
    return {
        (resource, verb)
        for rule in rules
        if GROUP in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def backfill_body(namespace: str, name: str, job: str) -> dict[str, Any]:
    """A suspended Backfill of ``job``: should an operator run in the session, it starts none."""
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Backfill",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "jobRef": {"name": job},
            "range": {"from": "2024-01-01", "to": "2024-01-03"},
            "suspend": True,
        },
    }


@pytest.fixture
def user_roles(tools: Tools, namespace: str, crds_installed: None) -> Iterator[list[str]]:
    """The chart's user ClusterRoles, rendered for a release named after the namespace and
    applied; the built-in admin, edit and view hold their rules (waited for). Yields the
    ClusterRoles' names; deletes them afterwards."""
    rendered = tools.helm(
        "template",
        release_name(namespace),
        str(CHART),
        "-n",
        namespace,
        "--show-only",
        "templates/user-roles.yaml",
    ).stdout
    applied = tools.kubectl(
        "apply", "--server-side", "--field-manager=backfill-tests", "-o", "name", "-f", "-",
        stdin=rendered,
    )  # fmt: skip
    names = [line.split("/", 1)[1] for line in applied.stdout.split()]
    try:
        for role, needed in AGGREGATED.items():
            wait_for(
                lambda role=role, needed=needed: needed <= builtin_grants(tools, role),
                timeout=60,
                interval=0.5,
                message=f"ClusterRole {role} aggregating the chart's user roles "
                "(is clusterrole-aggregation-controller running?)",
            )
        yield names
    finally:
        tools.kubectl("delete", "clusterrole", *names, "--ignore-not-found", check=False)


@pytest.fixture
def bound_users(tools: Tools, namespace: str, user_roles: list[str]) -> str:
    """alice, bob and carol bound in ``namespace`` (USERS), once the authorizer sees it."""
    for user, role in USERS.items():
        if role is not None:
            tools.kubectl(
                "create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}",
                f"--user={user}", "-n", namespace,
            )  # fmt: skip
    wait_for(
        lambda: (
            tools.can_i("carol", "create", f"backfills.{GROUP}", "-n", namespace)
            and tools.can_i("bob", "create", f"backfills.{GROUP}", "-n", namespace)
            and tools.can_i("alice", "list", f"backfills.{GROUP}", "-n", namespace)
        ),
        timeout=30,
        interval=0.5,
        message="the authorizer serving the new bindings",
    )
    return namespace


def test_the_chart_roles_are_aggregated_into_the_builtin_roles(
    tools: Tools, namespace: str, user_roles: list[str]
) -> None:
    fullname = f"{release_name(namespace)}-backfill-operator"
    assert sorted(user_roles) == [f"{fullname}-edit", f"{fullname}-view"]
    edit, view = (builtin_grants(tools, r) for r in ("edit", "view"))
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    for kind in ("backfills", "partitionedjobs"):
        assert {(kind, v) for v in ("get", "list", "watch", *writes)} <= edit
        assert {(f"{kind}/status", v) for v in ("get", "list", "watch")} <= view
        assert not {(kind, v) for v in writes} & view  # view stays read-only
    # Status is the operator's: no built-in role may write it.
    for role in ("admin", "edit", "view"):
        assert not {
            (r, v)
            for r, v in builtin_grants(tools, role)
            if r.endswith("/status") and v in {"create", "update", "patch", "delete"}
        }, role


def test_view_reads_edit_writes_and_nobody_else_does_anything(
    tools: Tools, bound_users: str
) -> None:
    ns = bound_users
    job = json.dumps(partitioned_job_body(ns, "nightly"))
    backfill = json.dumps(backfill_body(ns, "nightly-jan", "nightly"))

    # bob (edit) creates both kinds, changes the spec, but may not write the status.
    assert as_user(tools, "bob", "create", "-f", "-", stdin=job).returncode == 0
    done = as_user(tools, "bob", "create", "-f", "-", stdin=backfill)
    assert done.returncode == 0, done.stderr
    done = patch_backfill(tools, "bob", ns, "nightly-jan", {"spec": {"concurrency": 2}})
    assert done.returncode == 0, done.stderr
    done = patch_backfill(
        tools, "bob", ns, "nightly-jan", {"status": {"phase": "Succeeded"}}, "--subresource=status"
    )
    assert forbidden(done, "bob", "patch", "backfills/status"), done.stderr

    # alice (view) reads both kinds and their status, and may change nothing.
    for kind in ("backfills", "partitionedjobs"):
        done = as_user(tools, "alice", "get", kind, "-n", ns, "-o", "name")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip(), kind
    done = as_user(tools, "alice", "get", "backfill", "nightly-jan", "-n", ns, "-o", "json")
    assert json.loads(done.stdout)["spec"]["concurrency"] == 2
    assert tools.can_i("alice", "get", f"backfills.{GROUP}/status", "-n", ns)
    # What `kubectl backfill status` and `logs` read besides (docs/security.md): view has it.
    for verb, resource in (("list", "jobs.batch"), ("list", "pods"), ("get", "pods/log")):
        assert tools.can_i("alice", verb, resource, "-n", ns), (verb, resource)
    other = backfill.replace("nightly-jan", "alice-feb")
    done = as_user(tools, "alice", "create", "-f", "-", stdin=other)
    assert forbidden(done, "alice", "create", "backfills"), done.stderr
    done = as_user(tools, "alice", "create", "-f", "-", stdin=job.replace("nightly", "alices"))
    assert forbidden(done, "alice", "create", "partitionedjobs"), done.stderr
    done = patch_backfill(tools, "alice", ns, "nightly-jan", {"spec": {"suspend": False}})
    assert forbidden(done, "alice", "patch", "backfills"), done.stderr
    done = as_user(tools, "alice", "delete", "backfill", "nightly-jan", "-n", ns, "--wait=false")
    assert forbidden(done, "alice", "delete", "backfills"), done.stderr

    # dave (no binding) may neither read nor create.
    for kind in ("backfills", "partitionedjobs"):
        assert forbidden(as_user(tools, "dave", "get", kind, "-n", ns), "dave", "list", kind)
    done = as_user(tools, "dave", "create", "-f", "-", stdin=other.replace("alice", "dave"))
    assert forbidden(done, "dave", "create", "backfills"), done.stderr

    # carol (admin) creates too; bob deletes what exists (kopf's finalizer may keep it a while).
    done = as_user(tools, "carol", "create", "-f", "-", stdin=other.replace("alice", "carol"))
    assert done.returncode == 0, done.stderr
    for kind, name in (("backfill", "nightly-jan"), ("backfill", "carol-feb")):
        done = as_user(tools, "bob", "delete", kind, name, "-n", ns, "--wait=false")
        assert done.returncode == 0, done.stderr
    done = as_user(tools, "bob", "delete", "partitionedjob", "nightly", "-n", ns, "--wait=false")
    assert done.returncode == 0, done.stderr


def test_creating_backfills_goes_with_creating_jobs(tools: Tools, bound_users: str) -> None:
    """For every user, here and in a namespace where nobody is bound: create and delete on
    Backfills and PartitionedJobs are allowed exactly where they are on batch Jobs."""
    resources = ("jobs.batch", f"backfills.{GROUP}", f"partitionedjobs.{GROUP}")
    for ns in (bound_users, "default"):
        for user, role in USERS.items():
            allowed = ns == bound_users and role in {"edit", "admin"}
            for verb in ("create", "delete"):
                answers = {r: tools.can_i(user, verb, r, "-n", ns) for r in resources}
                assert set(answers.values()) == {allowed}, (ns, user, verb, answers)
