"""The console: doctune's training and inference web UI (Starlette, server-rendered pages, a little vanilla JS).

Pages: chat playground (through the gateway, so stable names resolve as for any client), datasets (quality
reports, diffs, a pair browser), training (runs, live curves from TensorBoard event files, start/stop/resume),
adapters (leaderboard, the gate's reasons, promote and rollback) and models (the vLLM server, load and unload).

Every action calls the function the CLI calls: ``serve.deploy``/``rollback``/``load_version``/``unload_version``,
``train.request_stop``, and ``doctune train run`` in a background process; registry reads go through
``Registry``. The console never writes the registry itself.

This module assembles the app: the routes to ``views``, the ``Guard`` middleware, and ``main``, which serves it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode, urlparse, urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doctune.config import LOOPBACK, Settings, check_serving_keys
from doctune.console import auth
from doctune.console.context import ConsoleContext
from doctune.console.launch import Airflow, Launcher
from doctune.console.settings import ConsoleSettings
from doctune.console.views import adapters, chat, datasets, login, models, training
from doctune.console.views.actions import operator_only
from doctune.console.views.pages import guarded

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.headers.get("host", "")


# Every response: no framing (clickjacking), scripts and styles from the console itself only, no MIME sniffing.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class Guard:
    """Login (when users are configured) for every page but the login page, /health and static files; for every
    POST, the browser's Origin must be this console (no cross-site form can promote or roll back); the Host must
    be an allowed one (``hosts``; None: any); and every response carries SECURITY_HEADERS. The user a request
    comes from is ``request.state.login`` (``auth.LOCAL`` without users)."""

    PUBLIC = ("/login", "/health")

    def __init__(self, app: ASGIApp, logins: list[auth.Login], hosts: list[str] | None):
        self.app, self.logins, self.hosts = app, logins, hosts

    def _public(self, path: str) -> bool:
        return path in self.PUBLIC or path.startswith("/static/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        response: Response | None = None

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if self.hosts is not None and host not in self.hosts:
            response = PlainTextResponse(f"host {host!r} is not one this console answers to", status_code=400)
        elif request.method == "POST" and not _same_origin(request):
            response = PlainTextResponse("cross-site request refused", status_code=403)
        login = auth.session_login(self.logins, request.cookies.get(auth.COOKIE)) if self.logins else auth.LOCAL
        scope.setdefault("state", {})["login"] = login
        if response is None and login is None and not self._public(path):
            if path.startswith("/api/"):
                response = JSONResponse({"error": "not logged in"}, status_code=401)
            else:
                response = RedirectResponse(f"/login?{urlencode({'next': path})}", status_code=303)
        if response is not None:
            await response(scope, receive, send_secured)
        else:
            await self.app(scope, receive, send_secured)


def create_app(
    settings: Settings | None = None,
    console: ConsoleSettings | None = None,
    airflow_transport: httpx.BaseTransport | None = None,  # tests: a fake Airflow
) -> Starlette:
    settings = settings or Settings()
    console = console or ConsoleSettings()
    logins = console.logins
    context = ConsoleContext(
        settings=settings,
        console=console,
        logins=logins,
        templates=Jinja2Templates(directory=str(HERE / "templates")),
        launcher=Launcher(settings),
        airflow=Airflow(console, airflow_transport) if console.airflow_api_url else None,
        gateway_headers={"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {},
    )
    routes = [
        Route("/health", login.health),
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/", chat.home),
        Route("/static/highlight.css", chat.highlight_css),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        Route("/chat", guarded(chat.chat_page)),
        Route("/api/chat", chat.chat_api, methods=["POST"]),
        Route("/datasets", guarded(datasets.datasets_page)),
        Route("/datasets/{library}/v{version}", guarded(datasets.dataset_page)),
        Route("/datasets/{library}/diff", guarded(datasets.diff_page)),
        Route("/training", guarded(training.training_page)),
        Route("/training/{library}", guarded(training.training_page)),
        Route(
            "/training/{library}/start",
            guarded(operator_only("train", "train", training.training_start)),
            methods=["POST"],
        ),
        Route(
            "/training/{library}/stop",
            guarded(operator_only("stop", "stop training", training.training_stop)),
            methods=["POST"],
        ),
        Route("/runs/{run_id:int}", guarded(training.run_page)),
        Route(
            "/runs/{run_id:int}/resume",
            guarded(operator_only("resume", "resume runs", training.run_resume)),
            methods=["POST"],
        ),
        Route("/api/runs/{run_id:int}/scalars", training.run_scalars),
        Route("/adapters", guarded(adapters.adapters_page)),
        Route("/adapters/{library}", guarded(adapters.adapters_page)),
        Route(
            "/adapters/{library}/promote",
            guarded(operator_only("promote", "promote", adapters.promote)),
            methods=["POST"],
        ),
        Route(
            "/adapters/{library}/rollback",
            guarded(operator_only("rollback", "roll back", adapters.rollback)),
            methods=["POST"],
        ),
        Route("/models", guarded(models.models_page)),
        Route(
            "/models/{action:str}",
            guarded(operator_only("load/unload", "load or unload adapters", models.model_action)),
            methods=["POST"],
        ),
    ]
    app = Starlette(routes=routes)
    hosts = (auth.parse_keys(console.allowed_hosts) or None) if logins else list(LOOPBACK)
    app.add_middleware(Guard, logins=logins, hosts=hosts)
    app.state.context = context
    app.state.launcher = context.launcher  # what this console started, for a look from outside (the tests)
    return app


def main(host: str = "127.0.0.1", port: int = 8200) -> None:
    """Serve the console; without a configured key only on the loopback interface."""
    console = ConsoleSettings()
    check_serving_keys("DOCTUNE_CONSOLE_KEYS", [user.key for user in console.logins], host)
    if not console.logins:
        log.warning("no DOCTUNE_CONSOLE_KEYS set: the console has no login and listens on %s only", host)
    uvicorn.run(create_app(console=console), host=host, port=port, log_level="info")
