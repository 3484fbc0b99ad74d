"""``kubectl backfill ui``: a local web app over the cluster, with the user's own credentials.

Modules: :mod:`.data` (pure: the grid documents the browser draws), :mod:`.views` (pure: rows,
page headers, the launch form and preview), :mod:`.security` (pure:
Host, Origin and CSRF checks, the response headers), :mod:`.service` (what each request reads
and does, through the CLI's own API client and commands), :mod:`.server` (aiohttp routes,
Jinja2 templates in ``templates/``, the scripts and style sheet in ``static/``).
:func:`run` is the command.
"""

from __future__ import annotations

import webbrowser

from rich.console import Console

from ...api.model import PARTITIONED_JOBS
from ..client import Target
from ..errors import EXIT_OK, CliError
from . import security, server
from .service import Ui

__all__ = ["DEFAULT_PORT", "run"]

#: The port ``ui`` listens on unless ``--port`` says otherwise.
DEFAULT_PORT = 8765


def run(
    target: Target,
    *,
    address: str,
    port: int,
    open_browser: bool,
    all_namespaces: bool,
    out: Console,
    err: Console,
) -> int:
    """Serve the web app until Ctrl-C; returns 0.

    Checks the cluster first (one list of PartitionedJobs: an unreachable server, missing
    CRDs or refused credentials fail here, as any command). Warns when ``address`` is not a
    loopback address: anyone who can reach it acts with this user's credentials. Prints the
    URL on stdout (``Serving http://127.0.0.1:PORT/``). Raises CliError (exit 3 or 2) from
    the check, and (exit 2) when the address cannot be bound.
    """
    ui = Ui(target, all_namespaces=all_namespaces)
    ui.client.list_objects(PARTITIONED_JOBS, None if all_namespaces else ui.namespace)
    if not security.is_loopback(address):
        err.print(
            f"warning: listening on {address}, not on 127.0.0.1: anyone who can reach this "
            "address can read and change Backfills with your credentials (the page's Host "
            "check only accepts the loopback names and this address)",
            style="bold yellow",
        )

    def ready(url: str) -> None:
        scope = "all namespaces" if all_namespaces else f"namespace {ui.namespace}"
        out.print(f"Serving {url} (context {ui.context or '-'}, {scope}); Ctrl-C stops.")
        out.file.flush()
        if open_browser:
            webbrowser.open(url)

    try:
        server.serve(ui, address=address, port=port, ready=ready)
    except OSError as exc:
        raise CliError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        pass
    return EXIT_OK
