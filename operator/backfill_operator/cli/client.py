"""The CLI's only door to the Kubernetes API: the official client, with errors made plain.

:func:`connect` reads the kubeconfig as kubectl does (``--kubeconfig``, else ``$KUBECONFIG``
with ``:``-separated files merged, else ``~/.kube/config``; ``--context``; the context's
namespace, else ``default``) and returns a :class:`Client`. Objects travel as plain dicts, as
the apiserver returns them. Every failure becomes a :class:`~.errors.CliError` with one line a
user can act on: an unreachable server, missing CRDs, refused credentials, an unknown object,
a name already taken. :class:`LogUnavailable` is the one exception callers handle themselves.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as _k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from ..api.model import BACKFILLS, GROUP, PARTITIONED_JOBS, VERSION
from .errors import EXIT_CLUSTER, EXIT_USAGE, CliError

#: (connect, read) timeouts of one request, seconds.
REQUEST_TIMEOUT = (5.0, 30.0)

_KINDS = {BACKFILLS: "Backfill", PARTITIONED_JOBS: "PartitionedJob"}
#: The kubeconfig loaders of the client are untyped.
k8s_config: Any = _k8s_config


class LogUnavailable(Exception):
    """The apiserver could not return a container log; ``detail`` is what it said."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class _Failure:
    """An HTTP error response, reduced: status code, Status reason and message."""

    status: int
    reason: str
    message: str


def _failure(exc: ApiException) -> _Failure:
    """Read the apiserver's ``Status`` object out of an error response (when it is one)."""
    status = int(exc.status or 0)
    body = exc.body or ""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        return _Failure(
            status, str(data.get("reason") or ""), str(data.get("message") or exc.reason)
        )
    text = body.strip().splitlines()[0] if body.strip() else str(exc.reason or "")
    return _Failure(status, str(exc.reason or ""), text)


def _connection_problem(exc: Exception) -> str:
    """Return a short reason for a failed connection: ``connection refused``, ``timed out``."""
    text = str(getattr(exc, "reason", None) or exc)
    for needle, plain in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("No route to host", "no route to host"),
        ("CERTIFICATE_VERIFY_FAILED", "the server's TLS certificate is not trusted"),
        ("SSL", "TLS handshake failed"),
    ):
        if needle in text:
            return plain
    return re.sub(r"<[^>]*>:?\s*", "", text).strip() or type(exc).__name__


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


@dataclass(frozen=True)
class Target:
    """Where to connect: the kubeconfig flags as given (None: kubectl's defaults)."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


def _in_cluster_namespace() -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or "default"
    except OSError:
        return "default"


def connect(target: Target) -> Client:
    """Return a :class:`Client` for ``target``; no request is made yet.

    Raises CliError (exit 3) when no kubeconfig is found or it cannot be read, and (exit 2)
    when ``--context`` names a context the kubeconfig does not have.
    """
    configuration = k8s.Configuration()
    kubeconfig = target.kubeconfig
    default_path = os.path.expanduser("~/.kube/config")
    if (
        kubeconfig is None
        and not os.environ.get("KUBECONFIG")
        and not os.path.exists(default_path)
        and os.environ.get("KUBERNETES_SERVICE_HOST")
    ):
        # kubectl's fallback: running in a pod with a service account.
        k8s_config.load_incluster_config(client_configuration=configuration)
        return Client(
            configuration,
            namespace=target.namespace or _in_cluster_namespace(),
            context="in-cluster",
        )
    where = kubeconfig or os.environ.get("KUBECONFIG") or default_path
    if kubeconfig is not None and not os.path.exists(kubeconfig):
        raise CliError(f"kubeconfig {kubeconfig} does not exist (--kubeconfig)", EXIT_CLUSTER)
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        raise CliError(
            f"no usable kubeconfig at {where} ({exc}); point --kubeconfig or KUBECONFIG at "
            "one (`kubectl config view` shows what kubectl uses)",
            EXIT_CLUSTER,
        ) from exc
    if target.context is not None:
        chosen = next((c for c in contexts if c.get("name") == target.context), None)
        if chosen is None:
            names = ", ".join(sorted(str(c.get("name")) for c in contexts)) or "none"
            raise CliError(
                f'context "{target.context}" is not in the kubeconfig {where} (contexts: {names})'
            )
    else:
        chosen = current
    try:
        k8s_config.load_kube_config(
            config_file=kubeconfig,
            context=target.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        raise CliError(f"cannot use the kubeconfig {where}: {exc}", EXIT_CLUSTER) from exc
    context_name = str((chosen or {}).get("name") or "")
    namespace = target.namespace or ((chosen or {}).get("context") or {}).get("namespace")
    return Client(configuration, namespace=str(namespace or "default"), context=context_name)


class Client:
    """The Kubernetes calls ``kubectl backfill`` makes; raw dicts in and out.

    ``namespace`` is the namespace commands act in (``-n``, else the context's, else
    ``default``); ``context`` and ``server`` are shown in error messages.
    """

    def __init__(self, configuration: Any, *, namespace: str, context: str) -> None:
        configuration.retries = 1
        self.api = k8s.ApiClient(configuration)
        self.namespace = namespace
        self.context = context
        self.server = str(configuration.host)
        self.custom = k8s.CustomObjectsApi(self.api)
        self.core = k8s.CoreV1Api(self.api)
        self.batch = k8s.BatchV1Api(self.api)
        self._crds_checked = False

    def in_namespace(self, namespace: str) -> Client:
        """Return a Client acting in ``namespace`` that shares this one's connection pool."""
        other = copy.copy(self)
        other.namespace = namespace
        return other

    # ------------------------------------------------------------------------ plumbing

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run one request; connection errors become CliError (exit 3), HTTP errors _Failure."""
        try:
            return fn()
        except urllib3.exceptions.HTTPError as exc:
            where = f" (context {self.context})" if self.context else ""
            raise CliError(
                f"cannot reach the Kubernetes API server at {self.server}{where}: "
                f"{_connection_problem(exc)}; is the cluster running? (`kubectl cluster-info`)",
                EXIT_CLUSTER,
            ) from exc

    def _general(self, failure: _Failure, what: str) -> CliError:
        """The CliError for a failure no caller handles specially."""
        if failure.status == 401:
            return CliError(
                f"the API server at {self.server} rejected the credentials of context "
                f'"{self.context}" (401 Unauthorized); log in again or pick another --context',
                EXIT_CLUSTER,
            )
        if failure.status == 403:
            return CliError(f"not allowed to {what}: {failure.message}", EXIT_CLUSTER)
        if failure.status in (400, 422):
            return CliError(f"the API server refused to {what}: {failure.message}", EXIT_USAGE)
        return CliError(
            f"the API server failed to {what} ({failure.status}): {failure.message}",
            EXIT_CLUSTER,
        )

    def _crds_missing(self, plural: str) -> CliError | None:
        """Return the "CRDs not installed" error when ``plural`` is not served, else None."""
        try:
            response = self._call(
                lambda: self.custom.get_api_resources(
                    GROUP, VERSION, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as exc:
            if exc.status != 404:
                return None
            resources: list[dict[str, Any]] = []
        else:
            resources = _json(response).get("resources") or []
        if any(r.get("name") == plural for r in resources):
            return None
        return CliError(
            f"the {_KINDS[plural]} API ({plural}.{GROUP}/{VERSION}) is not installed in the "
            f'cluster of context "{self.context}": install the CRDs with '
            "`backfill-operator crds | kubectl apply -f -` (or the Helm chart)",
            EXIT_CLUSTER,
        )

    def _not_found(self, plural: str, name: str, namespace: str) -> CliError:
        """The CliError for a 404 on a custom object: missing CRDs or a missing object."""
        missing = self._crds_missing(plural)
        if missing is not None:
            return missing
        kind = _KINDS[plural]
        if plural == BACKFILLS:
            hint = f"`kubectl backfill list -n {namespace}` lists them"
        else:
            names = self._names(plural, namespace)
            hint = (
                f"it has: {', '.join(names[:8])}{', …' if len(names) > 8 else ''}"
                if names
                else "it has none"
            )
        return NotFound(f'{kind} "{name}" not found in namespace "{namespace}" ({hint})')

    def _names(self, plural: str, namespace: str) -> list[str]:
        try:
            return sorted(str(i["metadata"]["name"]) for i in self.list_objects(plural, namespace))
        except CliError:
            return []

    # ------------------------------------------------------------------ custom objects

    def find(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Return the custom object, or None when it does not exist (CRDs checked on 404)."""
        ns = namespace or self.namespace
        try:
            response = self._call(
                lambda: self.custom.get_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    ns,
                    plural,
                    name,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            failure = _failure(exc)
            if failure.status == 404:
                missing = self._crds_missing(plural)
                if missing is not None:
                    raise missing from exc
                return None
            raise self._general(failure, f"read {_KINDS[plural]} {name}") from exc
        return _json(response)

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """Return the custom object; CliError (exit 2) naming what exists when it does not."""
        ns = namespace or self.namespace
        body = self.find(plural, name, ns)
        if body is None:
            raise self._not_found(plural, name, ns)
        return body

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Return every object of ``plural`` in ``namespace`` (None: all namespaces)."""
        try:
            if namespace is None:
                response = self._call(
                    lambda: self.custom.list_custom_object_for_all_namespaces(
                        GROUP,
                        VERSION,
                        plural,
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
            else:
                response = self._call(
                    lambda: self.custom.list_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        namespace,
                        plural,
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
        except ApiException as exc:
            failure = _failure(exc)
            if failure.status == 404:
                missing = self._crds_missing(plural)
                if missing is not None:
                    raise missing from exc
                return []
            raise self._general(failure, f"list {plural}") from exc
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    def create_backfill(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Backfill; CliError (exit 2) when its name is taken or the server refuses it.

        Raises :class:`NameTaken` (a CliError) on 409 so a caller may pick another name.
        """
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        try:
            response = self._call(
                lambda: self.custom.create_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    ns,
                    BACKFILLS,
                    body,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            failure = _failure(exc)
            if failure.status == 409:
                raise NameTaken(
                    f'a Backfill named "{name}" already exists in namespace "{ns}": pick '
                    "another --name, or leave --name out for a generated one"
                ) from exc
            if failure.status == 404:
                missing = self._crds_missing(BACKFILLS)
                if missing is not None:
                    raise missing from exc
                raise CliError(f'namespace "{ns}" not found') from exc
            raise self._general(failure, f"create Backfill {name}") from exc
        return _json(response)

    def patch_backfill(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch a Backfill (RFC 7386: ``{"spec": {"suspend": true}}``)."""
        return self._merge_patch(BACKFILLS, "Backfill", name, patch)

    def patch_partitioned_job(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch a PartitionedJob (``{"spec": {"runs": {"suspend": true}}}``)."""
        return self._merge_patch(PARTITIONED_JOBS, "PartitionedJob", name, patch)

    def _merge_patch(
        self, plural: str, kind: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        ns = self.namespace
        try:
            response = self._call(
                lambda: self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    ns,
                    plural,
                    name,
                    patch,
                    _content_type="application/merge-patch+json",
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            failure = _failure(exc)
            if failure.status == 404:
                raise self._not_found(plural, name, ns) from exc
            raise self._general(failure, f"update {kind} {name}") from exc
        return _json(response)

    def delete_backfill(self, name: str) -> None:
        """Delete a Backfill; its Jobs (owned by it) go by garbage collection, in background."""
        ns = self.namespace
        try:
            self._call(
                lambda: self.custom.delete_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    ns,
                    BACKFILLS,
                    name,
                    propagation_policy="Background",
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            failure = _failure(exc)
            if failure.status == 404:
                raise self._not_found(BACKFILLS, name, ns) from exc
            raise self._general(failure, f"delete Backfill {name}") from exc

    # ----------------------------------------------------------------- core and batch

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        """Return the Jobs in the namespace matching the label ``selector``."""
        ns = self.namespace
        try:
            response = self._call(
                lambda: self.batch.list_namespaced_job(
                    ns,
                    label_selector=selector,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            raise self._general(_failure(exc), "list Jobs") from exc
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        """Return the pods in the namespace matching the label ``selector``."""
        ns = self.namespace
        try:
            response = self._call(
                lambda: self.core.list_namespaced_pod(
                    ns,
                    label_selector=selector,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            raise self._general(_failure(exc), "list pods") from exc
        items: list[dict[str, Any]] = _json(response).get("items") or []
        return items

    def pod_log(self, pod: str, container: str | None, tail_lines: int | None) -> str:
        """Return a container's log; raises :class:`LogUnavailable` with the server's words."""
        ns = self.namespace
        try:
            response = self._call(
                lambda: self.core.read_namespaced_pod_log(
                    pod,
                    ns,
                    container=container,
                    tail_lines=tail_lines,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as exc:
            failure = _failure(exc)
            if failure.status in (401, 403):
                raise self._general(failure, f"read the log of pod {pod}") from exc
            raise LogUnavailable(failure.message) from exc
        data: bytes = response.data
        return data.decode("utf-8", errors="replace")


class NotFound(CliError):
    """404 on a custom object that the CRDs define: no object of that name (exit 2)."""


class NameTaken(CliError):
    """409 on create: a Backfill of that name exists (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)
