"""Small HTTP(S) client for readiness probes and the few API calls `up` makes (stdlib only)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def insecure_context() -> ssl.SSLContext:
    """Return a TLS context that skips verification (components' self-signed health ports)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Return a TLS context that verifies the server against ``ca`` and presents a client cert."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


def get(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> int:
    """Return the HTTP status of GET ``url``, or 0 when the connection fails."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0


def healthy(url: str, *, context: ssl.SSLContext | None = None) -> Callable[[], bool]:
    """Return a check that is True when GET ``url`` answers 200."""
    return lambda: get(url, context=context) == 200


def request_json(
    method: str,
    url: str,
    *,
    context: ssl.SSLContext,
    body: Any = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """Send a JSON request; return (HTTP status, decoded body or None).

    Connection errors return (0, None); non-JSON bodies decode to None.
    """
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=context, timeout=timeout) as response:
            status, raw = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, raw = int(exc.code), exc.read()
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None
