"""The HTTP server of ``kubectl backfill ui``: aiohttp routes over :class:`.service.Ui`.

Pages (HTML, server-rendered by Jinja2 with autoescape) and their JSON, for namespace ``NS``:

=======================================  ===================================================
``GET /``                                the jobs page of the current namespace (or all)
``GET /ns/NS/jobs``                      PartitionedJobs with counts, state bar, schedule lag
``GET /ns/NS/jobs/JOB``                  a job's partitions: the grid, Launch backfill
``GET /ns/NS/jobs/JOB/grid.json``        the grid document (``?columns=C``)
``GET /ns/NS/jobs/JOB/range.json``       grid positions of ``?from=KEY&to=KEY``
``GET /ns/NS/jobs/JOB/backfills``        its Backfills (HTML fragment, polled)
``GET /ns/NS/jobs/JOB/partitions/P``     one partition (grid position P), JSON
``GET /ns/NS/jobs/JOB/log/JOBNAME``      the newest pod's log of a Job, text
``POST /ns/NS/jobs/JOB/preview``         the Launch modal's preview, JSON
``POST /ns/NS/jobs/JOB/launch``          create the Backfill; JSON ``{"url": ...}``
``GET /ns/NS/backfills``                 Backfills with phase and progress bar
``GET /ns/NS/backfills/BF``              a Backfill: counts, rate, ETA, grid, buttons
``GET /ns/NS/backfills/BF/summary``      its summary block (HTML fragment, polled)
``GET /ns/NS/backfills/BF/grid.json``    its grid document
``POST /ns/NS/backfills/BF/ACTION``      ``suspend``, ``resume``, ``cancel``, ``retry``
=======================================  ===================================================

``/all/jobs`` and ``/all/backfills`` list every namespace. Every request passes
:func:`guard`: the Host check, and for a POST the Origin check and the CSRF token
(:mod:`.security`); every response gets :data:`.security.SECURITY_HEADERS`. An error the
apiserver or the user's input causes shows as a message (an HTML page, or ``{"error": ...}``
for JSON), never a stack trace; an unexpected one is logged to the terminal and shown as
"internal error".
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote

import jinja2
from aiohttp import web

from ... import clock
from ...planning.times import parse_time
from .. import render
from ..client import NotFound
from ..errors import EXIT_CLUSTER, CliError
from . import security
from .service import Ui
from .views import parse_launch

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The grid's default width in cells when the browser does not say.
DEFAULT_COLUMNS = 100
#: Widest grid line the server labels, in cells.
MAX_COLUMNS = 4_000

_UI: web.AppKey[Ui] = web.AppKey("ui", Ui)
_TOKEN: web.AppKey[str] = web.AppKey("token", str)
_HOSTS: web.AppKey[frozenset[str]] = web.AppKey("hosts", frozenset)
_ENV: web.AppKey[jinja2.Environment] = web.AppKey("env", jinja2.Environment)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("backfill_operator.cli.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["duration"] = _duration
    env.filters["age"] = _age
    env.filters["pct"] = lambda part, whole: 0.0 if not whole else round(100.0 * part / whole, 3)
    return env


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else render.format_duration(seconds)


def _age(timestamp: str | None) -> str:
    moment = parse_time(timestamp)
    return "-" if moment is None else render.format_age((clock.now() - moment).total_seconds())


# ------------------------------------------------------------------------------- plumbing


async def _call(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking :class:`Ui` call in a worker thread."""
    return await asyncio.to_thread(fn, *args)


def _wants_json(request: web.Request) -> bool:
    return (
        request.path.endswith(".json")
        or request.method not in security.SAFE_METHODS
        or "/partitions/" in request.path
        or "application/json" in request.headers.get("Accept", "")
    )


def _error(request: web.Request, status: int, message: str) -> web.Response:
    if _wants_json(request):
        return web.json_response({"error": message}, status=status)
    if "/log/" in request.path:
        return web.Response(text=message, status=status, content_type="text/plain")
    return _page(request, "error.html", {"message": message, "status": status}, status=status)


def _page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    app = request.app
    ui = app[_UI]
    base = {
        "token": app[_TOKEN],
        "context": _safe(lambda: ui.context, ""),
        "namespace": request.match_info.get("ns") or _safe(lambda: ui.namespace, ""),
        "all_namespaces": ui.all_namespaces,
    }
    html = app[_ENV].get_template(template).render(**base, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _safe(fn: Callable[[], str], default: str) -> str:
    try:
        return fn()
    except CliError:
        return default


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check Host (every request), Origin and CSRF token (POST); headers; errors as messages."""
    app = request.app
    if not security.host_allowed(request.headers.get("Host"), app[_HOSTS]):
        response: web.StreamResponse = web.Response(
            status=421, text="unknown host: open the address kubectl backfill ui printed\n"
        )
    elif request.method not in security.SAFE_METHODS and not security.origin_allowed(
        request.headers.get("Origin"), app[_HOSTS]
    ):
        response = web.json_response(
            {"error": "refused: the request is from another origin"}, status=403
        )
    elif request.method not in security.SAFE_METHODS and not security.token_matches(
        request.headers.get(security.TOKEN_HEADER), app[_TOKEN]
    ):
        response = web.json_response(
            {"error": "refused: missing or wrong CSRF token (reload the page)"}, status=403
        )
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                response = _error(request, exc.status, exc.reason)
            else:
                response = web.Response(status=exc.status, headers=exc.headers)
        except CliError as exc:
            response = _error(request, _http_status(exc), exc.message)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            response = _error(
                request, 500, "internal error (the terminal running kubectl backfill ui shows it)"
            )
    for name, value in security.SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def _http_status(exc: CliError) -> int:
    """502 when the cluster cannot be used, 404 for an object that does not exist, else 400."""
    if exc.exit_code == EXIT_CLUSTER:
        return 502
    return 404 if isinstance(exc, NotFound) else 400


def _columns(request: web.Request) -> int:
    try:
        columns = int(request.query.get("columns", DEFAULT_COLUMNS))
    except ValueError:
        columns = DEFAULT_COLUMNS
    return max(1, min(MAX_COLUMNS, columns))


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError("the request body is not JSON") from exc
    if not isinstance(body, dict):
        raise CliError("the request body is not a JSON object")
    return body


def _ns_of(request: web.Request) -> str | None:
    return request.match_info.get("ns")


# --------------------------------------------------------------------------------- pages


async def index(request: web.Request) -> web.StreamResponse:
    """Redirect to the jobs page (all namespaces with ``-A``)."""
    ui = request.app[_UI]
    if ui.all_namespaces:
        raise web.HTTPFound("/all/jobs")
    ns = await _call(lambda: ui.namespace)
    raise web.HTTPFound(f"/ns/{quote(ns, safe='')}/jobs")


async def jobs_page(request: web.Request) -> web.StreamResponse:
    """The PartitionedJobs of a namespace (or all) with counts, a state bar and lag."""
    ui = request.app[_UI]
    rows = await _call(ui.jobs, _ns_of(request))
    return _page(request, "jobs.html", {"rows": rows, "scope": _ns_of(request)})


async def job_page(request: web.Request) -> web.StreamResponse:
    """A job's partitions page."""
    ui = request.app[_UI]
    ns, name = request.match_info["ns"], request.match_info["job"]
    page = await _call(ui.job, ns, name)
    rows = await _call(ui.backfills, ns, name)
    return _page(request, "job.html", {"page": page, "backfills": rows})


async def job_backfills(request: web.Request) -> web.StreamResponse:
    """The Backfills of a job (HTML fragment the job's page polls)."""
    ui = request.app[_UI]
    ns = request.match_info["ns"]
    rows = await _call(ui.backfills, ns, request.match_info["job"])
    return _page(request, "backfill_rows.html", {"rows": rows, "scope": ns})


async def job_grid(request: web.Request) -> web.StreamResponse:
    """A job's grid document (JSON)."""
    ui = request.app[_UI]
    doc = await _call(
        ui.job_grid, request.match_info["ns"], request.match_info["job"], _columns(request)
    )
    return web.json_response(doc)


async def partition(request: web.Request) -> web.StreamResponse:
    """One partition of a job (JSON)."""
    ui = request.app[_UI]
    try:
        position = int(request.match_info["position"])
    except ValueError as exc:
        raise CliError("a partition position is a whole number") from exc
    doc = await _call(ui.partition, request.match_info["ns"], request.match_info["job"], position)
    return web.json_response(doc)


async def job_range(request: web.Request) -> web.StreamResponse:
    """The grid positions of a range of keys (``?from=&to=``), JSON."""
    ui = request.app[_UI]
    doc = await _call(
        ui.range_positions,
        request.match_info["ns"],
        request.match_info["job"],
        request.query.get("from", ""),
        request.query.get("to", ""),
    )
    return web.json_response(doc)


async def job_log(request: web.Request) -> web.StreamResponse:
    """The newest pod's log of one Job (plain text)."""
    ui = request.app[_UI]
    text = await _call(ui.job_log, request.match_info["ns"], request.match_info["name"])
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def preview(request: web.Request) -> web.StreamResponse:
    """The Launch modal's preview (JSON)."""
    ui = request.app[_UI]
    form = parse_launch(await _json_body(request))
    doc = await _call(ui.preview, request.match_info["ns"], request.match_info["job"], form)
    return web.json_response(doc)


async def launch(request: web.Request) -> web.StreamResponse:
    """Create the Backfill; JSON with its page's URL."""
    ui = request.app[_UI]
    ns = request.match_info["ns"]
    form = parse_launch(await _json_body(request))
    name = await _call(ui.launch, ns, request.match_info["job"], form)
    return web.json_response({"name": name, "url": _backfill_url(ns, name)}, status=201)


def _backfill_url(ns: str, name: str) -> str:
    return f"/ns/{quote(ns, safe='')}/backfills/{quote(name, safe='')}"


async def backfills_page(request: web.Request) -> web.StreamResponse:
    """Backfills of a namespace (or all) with phase and progress."""
    ui = request.app[_UI]
    rows = await _call(ui.backfills, _ns_of(request))
    return _page(request, "backfills.html", {"rows": rows, "scope": _ns_of(request)})


async def backfill_page(request: web.Request) -> web.StreamResponse:
    """A Backfill's page."""
    ui = request.app[_UI]
    page = await _call(ui.backfill, request.match_info["ns"], request.match_info["name"])
    return _page(request, "backfill.html", {"page": page})


async def backfill_summary(request: web.Request) -> web.StreamResponse:
    """A Backfill's summary block (HTML fragment the page polls)."""
    ui = request.app[_UI]
    page = await _call(ui.backfill, request.match_info["ns"], request.match_info["name"])
    return _page(request, "backfill_summary.html", {"page": page})


async def backfill_grid(request: web.Request) -> web.StreamResponse:
    """A Backfill's grid document (JSON)."""
    ui = request.app[_UI]
    doc = await _call(
        ui.backfill_grid,
        request.match_info["ns"],
        request.match_info["name"],
        _columns(request),
    )
    return web.json_response(doc)


async def backfill_action(request: web.Request) -> web.StreamResponse:
    """Suspend, resume, cancel or retry the failed partitions of a Backfill (JSON)."""
    ui = request.app[_UI]
    ns, name, action = (request.match_info[k] for k in ("ns", "name", "action"))
    if action in ("suspend", "resume"):
        await _call(ui.set_suspend, ns, name, action == "suspend")
        return web.json_response({"ok": True, "url": _backfill_url(ns, name)})
    if action == "cancel":
        await _call(ui.cancel, ns, name)
        return web.json_response({"ok": True, "url": f"/ns/{quote(ns, safe='')}/backfills"})
    if action == "retry":
        created = await _call(ui.retry_failed, ns, name)
        return web.json_response({"ok": True, "name": created, "url": _backfill_url(ns, created)})
    raise NotFound(f"unknown action {action!r}: suspend, resume, cancel or retry")


async def static(request: web.Request) -> web.StreamResponse:
    """The app's own script and style sheet (packaged files)."""
    name = request.match_info["file"]
    types = {"app.js": "text/javascript", "grid.js": "text/javascript", "style.css": "text/css"}
    if name not in types:
        raise web.HTTPNotFound(reason="no such file")
    body = resources.files("backfill_operator.cli.web").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=types[name], charset="utf-8")


def make_app(ui: Ui, *, address: str, port: int, token: str | None = None) -> web.Application:
    """Return the aiohttp application serving ``ui`` on ``address:port``.

    ``token`` is the CSRF token (a fresh one when None); the Host and Origin checks accept
    the loopback names and ``address`` with ``port``.
    """
    app = web.Application(middlewares=[guard], client_max_size=1024 * 1024)
    app[_UI] = ui
    app[_TOKEN] = token or security.new_token()
    app[_HOSTS] = security.allowed_hosts(address, port)
    app[_ENV] = _environment()
    ns = "/ns/{ns}"
    app.add_routes(
        [
            web.get("/", index),
            web.get("/static/{file}", static),
            web.get("/all/jobs", jobs_page),
            web.get("/all/backfills", backfills_page),
            web.get(f"{ns}/jobs", jobs_page),
            web.get(f"{ns}/jobs/{{job}}", job_page),
            web.get(f"{ns}/jobs/{{job}}/grid.json", job_grid),
            web.get(f"{ns}/jobs/{{job}}/range.json", job_range),
            web.get(f"{ns}/jobs/{{job}}/backfills", job_backfills),
            web.get(f"{ns}/jobs/{{job}}/partitions/{{position}}", partition),
            web.get(f"{ns}/jobs/{{job}}/log/{{name}}", job_log),
            web.post(f"{ns}/jobs/{{job}}/preview", preview),
            web.post(f"{ns}/jobs/{{job}}/launch", launch),
            web.get(f"{ns}/backfills", backfills_page),
            web.get(f"{ns}/backfills/{{name}}", backfill_page),
            web.get(f"{ns}/backfills/{{name}}/summary", backfill_summary),
            web.get(f"{ns}/backfills/{{name}}/grid.json", backfill_grid),
            web.post(f"{ns}/backfills/{{name}}/{{action}}", backfill_action),
        ]
    )
    return app


def serve(
    ui: Ui,
    *,
    address: str,
    port: int,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C); ``ready(url)`` is called once listening.

    ``port`` 0 picks a free port (the URL says which). Raises OSError when the address
    cannot be bound.
    """
    asyncio.run(_serve(ui, address=address, port=port, ready=ready))


async def _serve(ui: Ui, *, address: str, port: int, ready: Callable[[str], None] | None) -> None:
    # Bind first, so that port 0 becomes a real port before the app's Host check is built
    # (and nothing can take the port in between).
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    bound = int(sock.getsockname()[1])
    app = make_app(ui, address=address, port=bound)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        host = "127.0.0.1" if address in ("0.0.0.0", "::", "") else address
        url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}/"
        if ready is not None:
            ready(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        sock.close()
