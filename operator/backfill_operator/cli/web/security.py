"""The web app's request checks and response headers: pure functions, one token per server.

The app acts with the user's own credentials, so a page of another site must not make it act
(cross-site request forgery) and another host name must not reach it (DNS rebinding):

* :func:`host_allowed`: the ``Host`` header names the address the server listens on
  (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``, or the ``--address`` given);
  checked on every request;
* :func:`origin_allowed`: a state-changing request (any method but GET and HEAD) carries an
  ``Origin`` header of one of those hosts (``http://`` scheme); browsers send it on every POST
  (Fetch standard, "append a request Origin header");
* :func:`token_matches`: and the server's CSRF token in the ``X-CSRF-Token`` header (the pages
  carry it in ``<meta name="csrf-token">``; another origin cannot read it). Compared in
  constant time.

:data:`SECURITY_HEADERS` go on every response: a strict Content-Security-Policy (scripts,
styles and fetches from the app itself only, no inline script or style, no framing), no
MIME sniffing, no referrer. Every page escapes what it shows (Jinja2 autoescape; the scripts
write text with ``textContent``).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping

__all__ = [
    "CSP",
    "SAFE_METHODS",
    "SECURITY_HEADERS",
    "TOKEN_HEADER",
    "allowed_hosts",
    "host_allowed",
    "is_loopback",
    "new_token",
    "origin_allowed",
    "token_matches",
]

#: The Content-Security-Policy of every response (CSP Level 3 directives).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

#: Headers set on every response.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Methods that change nothing and need no token.
SAFE_METHODS = frozenset({"GET", "HEAD"})
#: The request header that carries the CSRF token.
TOKEN_HEADER = "X-CSRF-Token"


def new_token() -> str:
    """Return a fresh CSRF token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def is_loopback(address: str) -> bool:
    """True when ``address`` (an IP address or ``localhost``) only accepts local connections."""
    address = address.strip().lower()
    if address == "localhost":
        return True
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _host_port(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def allowed_hosts(address: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """Return the ``Host`` header values the server answers: ``host:port``, lower case.

    The loopback names (``127.0.0.1``, ``localhost``, ``[::1]``) always; ``address`` (what
    the server binds) and ``extra`` names too. ``0.0.0.0``/``::`` are not host names and add
    nothing: a server bound to every address answers the names given in ``extra``.
    """
    names = {"127.0.0.1", "localhost", "::1", *extra}
    if address not in ("0.0.0.0", "::", ""):
        names.add(address)
    return frozenset(_host_port(n.lower(), port) for n in names)


def host_allowed(host_header: str | None, allowed: frozenset[str]) -> bool:
    """True when the request's ``Host`` header is one of ``allowed`` (DNS rebinding guard)."""
    return host_header is not None and host_header.lower() in allowed


def origin_allowed(origin: str | None, allowed: frozenset[str]) -> bool:
    """True when ``origin`` is ``http://`` and one of the ``allowed`` hosts.

    A missing ``Origin`` (or ``null``, sent by sandboxed and privacy-sensitive contexts) is
    refused: the pages always send one with their POSTs.
    """
    if not origin or not origin.startswith("http://"):
        return False
    return origin[len("http://") :].lower().rstrip("/") in allowed


def token_matches(given: str | None, expected: str) -> bool:
    """True when ``given`` equals ``expected`` (constant-time comparison)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
