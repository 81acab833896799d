"""The console: doctune's training and inference web UI (Starlette, server-rendered pages, a little vanilla JS).

Pages: chat playground (through the gateway, so stable names resolve as for any client), datasets (quality
reports, diffs, a pair browser), training (runs, live curves from TensorBoard event files, start/stop/resume),
adapters (leaderboard, the gate's reasons, promote and rollback) and models (the vLLM server, load and unload).

Every action calls the function the CLI calls: ``serve.deploy``/``rollback``/``load_version``/``unload_version``,
``train.request_stop``, and ``doctune train run`` in a background process; registry reads go through
``Registry``. The console never writes the registry itself.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse, urlsplit

import httpx
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doctune.config import (
    LOOPBACK,
    LibraryConfig,
    Settings,
    TrainParams,
    check_serving_keys,
    get_library,
    validation_messages,
)
from doctune.console import auth, data
from doctune.console.render import answer_html, stylesheet
from doctune.errors import DoctuneError
from doctune.names import Decision, RunStatus, parse_served_name

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


class ConsoleSettings(BaseSettings):
    """The console's own settings (``DOCTUNE_CONSOLE_*``); everything else comes from doctune's ``Settings``."""

    model_config = SettingsConfigDict(env_prefix="DOCTUNE_CONSOLE_", extra="ignore")

    keys: SecretStr = Field(
        default=SecretStr(""),
        description="The users, comma-separated, each USER:ROLE:KEY with role viewer (reads, chats) or operator "
        "(also trains, promotes, rolls back). Empty: no login, and the console listens on 127.0.0.1 only.",
    )
    tensorboard_url: str = Field(default="http://127.0.0.1:6006", description="TensorBoard, for links from runs.")
    airflow_url: str = Field(default="", description="Airflow's web UI, for a link in the header (optional).")
    airflow_api_url: str = Field(
        default="",
        description="Airflow's API server (e.g. http://airflow-apiserver:8080). Set: start and resume trigger the "
        "library's retrain DAG through Airflow's REST API, so training runs on the GPU worker. Empty: they run "
        "`doctune train run` in the background on this host (local use).",
    )
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names the console answers to when it has keys (empty: any). Without "
        "keys only 127.0.0.1, localhost and ::1, so a page elsewhere cannot reach it by DNS rebinding.",
    )
    airflow_username: str = Field(default="", description="Airflow user the console triggers runs as.")
    airflow_password: SecretStr | None = Field(default=None, description="That user's password.")
    secure_cookie: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind an HTTPS proxy)."
    )

    @property
    def logins(self) -> list[auth.Login]:
        return auth.parse_logins(self.keys.get_secret_value())


# -- training processes started from the console ---------------------------------------------------------


@dataclass
class Launch:
    """A `doctune train run` process the console started; the registry has the run once training begins."""

    id: int
    library: str
    what: str
    process: subprocess.Popen[bytes]
    logfile: Path
    started: float

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    @property
    def state(self) -> str:
        code = self.returncode
        if code is None:
            return "running"
        return {0: "finished", 75: "stopped (checkpoint kept)"}.get(code, f"failed (exit status {code})")

    def tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Launcher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.launches: list[Launch] = []

    def train(self, library: str, params: TrainParams, dataset_version: int | None, what: str) -> Launch:
        """Start ``doctune train run`` in the background with exactly these parameters."""
        cmd = [sys.executable, "-m", "doctune.cli", "train", "run", library, "--params", params.model_dump_json()]
        if dataset_version is not None:
            cmd += ["--dataset-version", str(dataset_version)]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        logfile = self.settings.path("logs") / f"console-train-{library}-{stamp}-{len(self.launches) + 1}.log"
        with open(logfile, "ab") as out:
            process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.settings.to_env()},
                start_new_session=True,  # survives a console restart; stopped through the registry, not a signal
            )
        launch = Launch(len(self.launches) + 1, library, what, process, logfile, time.time())
        self.launches.append(launch)
        log.info("started training of %s (%s), pid %d, log %s", library, what, process.pid, logfile)
        return launch

    def recent(self, library: str) -> list[Launch]:
        return [launch for launch in reversed(self.launches) if launch.library == library][:5]


class Airflow:
    """Triggers a library's retrain DAG through Airflow's REST API (token from /auth/token, then a DAG run)."""

    def __init__(self, console: ConsoleSettings, transport: httpx.BaseTransport | None = None):
        self.url = console.airflow_api_url.rstrip("/")
        self.username = console.airflow_username
        self.password = console.airflow_password.get_secret_value() if console.airflow_password else ""
        self.transport = transport

    @staticmethod
    def _detail(reply: httpx.Response) -> str:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text
        return str(detail)[:500]

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        try:
            with httpx.Client(base_url=self.url, timeout=30, transport=self.transport) as client:
                token = client.post("/auth/token", json={"username": self.username, "password": self.password})
                if token.status_code not in (200, 201):
                    raise DoctuneError(
                        f"Airflow at {self.url} refused the console's login ({token.status_code}): check "
                        "DOCTUNE_CONSOLE_AIRFLOW_USERNAME and DOCTUNE_CONSOLE_AIRFLOW_PASSWORD"
                    )
                reply = client.post(
                    f"/api/v2/dags/{dag_id}/dagRuns",
                    json={"logical_date": None, "conf": conf},
                    headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                )
        except httpx.TransportError as exc:
            raise DoctuneError(
                f"Airflow at {self.url} is not reachable ({type(exc).__name__}): check the api-server and "
                "DOCTUNE_CONSOLE_AIRFLOW_API_URL"
            ) from None
        if reply.status_code not in (200, 201):
            raise DoctuneError(f"Airflow refused to trigger {dag_id} ({reply.status_code}): {self._detail(reply)}")
        return str(reply.json().get("dag_run_id", ""))


# -- the app -----------------------------------------------------------------------------------------------


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


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/chat"


def _back(path: str, **message: str) -> RedirectResponse:
    """Post/redirect/get with a one-line message (``ok`` or ``error``) shown on the page."""
    separator = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{separator}{urlencode(message)}" if message else path, status_code=303)


def create_app(
    settings: Settings | None = None,
    console: ConsoleSettings | None = None,
    airflow_transport: httpx.BaseTransport | None = None,  # tests: a fake Airflow
) -> Starlette:
    from doctune.config import train_form

    settings = settings or Settings()
    console = console or ConsoleSettings()
    logins = console.logins
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    launcher = Launcher(settings)
    airflow = Airflow(console, airflow_transport) if console.airflow_api_url else None

    def form_fields(library: LibraryConfig) -> set[str] | None:
        """Through Airflow, the retrain DAG's form decides which parameters a run takes; locally, all of them."""
        return set(train_form(library)) if airflow else None

    def start(library: LibraryConfig, params: TrainParams, dataset_version: int | None, what: str) -> str:
        if airflow is None:
            launch = launcher.train(library.name, params, dataset_version, what)
            return f"{what}: `doctune train run` in the background (process {launch.process.pid})"
        only = form_fields(library) or set()
        conf = {k: v for k, v in params.model_dump().items() if k in only}
        run_id = airflow.trigger(f"doctune_retrain__{library.name}", conf)
        return f"{what}: Airflow run {run_id} of doctune_retrain__{library.name} (it trains on the GPU worker)"

    gateway_headers = {"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
    registries: list[Any] = []

    def registry() -> Any:
        """The registry, opened (and migrated) on first use, so that a database that is down is a page's message
        rather than a console that does not start."""
        from doctune.registry import Registry

        if not registries:
            registries.append(Registry.open(settings))
        return registries[0]

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        libs, problems = data.libraries(settings)
        return templates.TemplateResponse(
            request,
            name,
            {
                "libraries": libs,
                "config_problems": problems,
                "ok": request.query_params.get("ok"),
                "error": context.pop("error", None) or request.query_params.get("error"),
                "login": bool(logins),
                "user": request.state.login,
                "console": console,
                "nav": request.url.path.split("/")[1],
                **context,
            },
            status_code=status,
        )

    def pick_library(request: Request, name: str | None = None) -> LibraryConfig | None:
        libs, _ = data.libraries(settings)
        wanted = name or request.query_params.get("library")
        for library in libs:
            if library.name == wanted:
                return library
        if wanted:
            raise DoctuneError(f"unknown library {wanted!r}: no {wanted}.yaml in {settings.libraries_path}")
        return libs[0] if libs else None

    def guarded(
        handler: Callable[[Request], Awaitable[Response]], template: str = "error.html"
    ) -> Callable[[Request], Awaitable[Response]]:
        """A doctune error (a server that is down, an unknown version, a refused deploy) is a message on the page
        that names the cause and the fix; anything else is logged, and the page says where to look."""

        async def wrapper(request: Request) -> Response:
            try:
                return await handler(request)
            except DoctuneError as exc:
                return page(request, template, status=409, error=str(exc))
            except Exception:
                log.exception("console: %s %s failed", request.method, request.url.path)
                return page(
                    request, "error.html", status=500, error="internal error in the console; its log has the details"
                )

        return wrapper

    def record(request: Request, action: str, outcome: str, detail: str, library: str | None = None) -> None:
        """Keep what a user did, or tried, in the registry under their name (and in the log)."""
        user: auth.Login = request.state.login
        library = library or request.path_params.get("library")
        log.info("console: %s (%s) %s %s: %s: %s", user.user, user.role, action, library or "", outcome, detail)
        registry().record_action(
            user=user.user, role=user.role, action=action, library=library, outcome=outcome, detail=detail
        )

    def answered(
        request: Request, action: str, path: str, *, ok: str = "", error: str = "", library: str | None = None
    ) -> Response:
        """An operator's action ends here: recorded, then the page it came from with its message."""
        record(request, action, "failed" if error else "done", error or ok, library)
        return _back(path, **({"error": error} if error else {"ok": ok}))

    def operator_only(
        action: str, what: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Only an operator may ``what``; a viewer's attempt is refused and recorded, and an action that fails
        with a doctune error is recorded as failed before its page shows why."""

        async def wrapper(request: Request) -> Response:
            user: auth.Login = request.state.login
            if not user.operator:
                await run_in_threadpool(record, request, action, "refused", f"{user.user} is a viewer")
                return page(
                    request,
                    "error.html",
                    status=403,
                    error=f"{user.user} is a viewer: only operators may {what}; an admin can make them one in "
                    "DOCTUNE_CONSOLE_KEYS (USER:operator:KEY)",
                )
            try:
                return await handler(request)
            except DoctuneError as exc:
                await run_in_threadpool(record, request, action, "failed", str(exc))
                raise

        return wrapper

    # -- login -------------------------------------------------------------------------------------------

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def login_form(request: Request) -> Response:
        if not logins:
            return RedirectResponse("/chat", status_code=303)
        return page(request, "login.html", next=_safe_next(request.query_params.get("next")))

    failures: dict[str, list[float]] = {}  # client address -> times of its failed logins in the last minute

    async def login(request: Request) -> Response:
        form = await request.form()
        target = _safe_next(str(form.get("next") or ""))
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        recent = failures[client] = [t for t in failures.get(client, []) if now - t < 60]
        if len(recent) >= auth.LOGIN_ATTEMPTS_PER_MINUTE:
            log.warning("console: login from %s refused: %d failed attempts in a minute", client, len(recent))
            return page(request, "login.html", status=429, next=target, error="too many attempts; wait a minute")
        found = auth.check_key(logins, str(form.get("key") or ""))
        if found is None:
            recent.append(now)
            log.warning("console: failed login from %s", client)
            return page(request, "login.html", status=401, next=target, error="wrong key")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            auth.COOKIE,
            auth.make_session(found),
            max_age=auth.SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=console.secure_cookie or request.url.scheme == "https",
        )
        return response

    async def logout(_: Request) -> Response:
        response = RedirectResponse("/login" if logins else "/chat", status_code=303)
        response.delete_cookie(auth.COOKIE)
        return response

    async def home(_: Request) -> Response:
        return RedirectResponse("/chat", status_code=303)

    async def highlight_css(_: Request) -> Response:
        return Response(stylesheet(), media_type="text/css")

    # -- chat --------------------------------------------------------------------------------------------

    def gateway_down(exc: Exception | None = None) -> str:
        return (
            f"the doctune gateway at {settings.gateway_url} is not reachable"
            f"{f' ({type(exc).__name__})' if exc else ''}: start it with `doctune serve start LIBRARY` (local) or "
            "check the gateway service and DOCTUNE_GATEWAY_URL"
        )

    async def chat_page(request: Request) -> Response:
        stable, versions, bases, problem = [], [], [], None
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.get(f"{settings.gateway_url}/v1/models", headers=gateway_headers)
            if reply.status_code != 200:
                problem = f"the gateway at {settings.gateway_url} answered {reply.status_code}: {reply.text[:200]}"
            else:
                for model in reply.json()["data"]:
                    if model.get("owned_by") == "doctune":
                        stable.append({"id": model["id"], "root": model.get("root")})
                    elif model.get("parent"):
                        versions.append({"id": model["id"]})
                    else:
                        bases.append({"id": model["id"]})
        except httpx.TransportError as exc:
            problem = gateway_down(exc)
        except (ValueError, KeyError):
            problem = f"the gateway at {settings.gateway_url} sent an unexpected model list"
        if problem is None and not (stable or versions or bases):
            problem = f"the gateway at {settings.gateway_url} lists no model: is vLLM ({settings.vllm_url}) up?"
        return page(request, "chat.html", stable=stable, versions=versions, bases=bases, error=problem)

    async def chat_api(request: Request) -> Response:
        try:
            body = await request.json()
            model = str(body["model"])
            messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in body["messages"]]
            max_tokens = max(1, min(int(body.get("max_tokens", 256)), 4096))
            temperature = max(0.0, min(float(body.get("temperature", 0.0)), 2.0))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected JSON: model, messages[{role, content}]"}, status_code=400)
        payload = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }

        async def events() -> AsyncIterator[bytes]:
            def line(event: dict[str, Any]) -> bytes:
                return (json.dumps(event) + "\n").encode()

            text, finish, announced = [], None, False
            try:
                async with (
                    httpx.AsyncClient(timeout=httpx.Timeout(settings.request_timeout, connect=5)) as client,
                    client.stream(
                        "POST", f"{settings.gateway_url}/v1/chat/completions", json=payload, headers=gateway_headers
                    ) as reply,
                ):
                    if reply.status_code != 200:
                        raw = (await reply.aread()).decode(errors="replace")
                        try:
                            message = json.loads(raw)["error"]["message"]
                        except (ValueError, KeyError, TypeError):
                            message = raw[:300]
                        yield line({"error": f"{model}: {message} (gateway answered {reply.status_code})"})
                        return
                    async for raw_line in reply.aiter_lines():
                        if not raw_line.startswith("data:"):
                            continue
                        chunk = raw_line[5:].strip()
                        if chunk == "[DONE]":
                            break
                        event = json.loads(chunk)
                        if not announced and event.get("model"):
                            announced = True
                            yield line({"model": event["model"]})
                        for choice in event.get("choices", []):
                            delta = (choice.get("delta") or {}).get("content")
                            if delta:
                                text.append(delta)
                                yield line({"delta": delta})
                            finish = choice.get("finish_reason") or finish
            except httpx.TransportError as exc:
                yield line({"error": gateway_down(exc)})
                return
            yield line({"done": True, "finish_reason": finish, "html": answer_html("".join(text))})

        return StreamingResponse(events(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})

    # -- datasets ----------------------------------------------------------------------------------------

    async def datasets_page(request: Request) -> Response:
        library = pick_library(request)
        versions = data.dataset_versions(registry(), library.name) if library else []
        return page(request, "datasets.html", library=library, versions=versions)

    def _dataset(library: str, version: str) -> Any:
        if not version.isdigit():
            raise DoctuneError(f"dataset version must be a number, not {version!r}")
        return registry().dataset(library, int(version))

    async def dataset_page(request: Request) -> Response:
        library = pick_library(request, request.path_params["library"])
        assert library is not None
        dataset = _dataset(library.name, request.path_params["version"])
        q = request.query_params
        offset = int(q.get("offset", "0")) if q.get("offset", "0").isdigit() else 0
        pairs = data.browse_pairs(
            dataset.path,
            split=q.get("split", ""),
            path=q.get("path", ""),
            unit=q.get("unit", ""),
            text=q.get("q", ""),
            offset=offset,
        )
        filters = {k: q.get(k, "") for k in ("split", "path", "unit", "q")}
        return page(
            request,
            "dataset.html",
            library=library,
            dataset=dataset,
            report=data._read_json(Path(dataset.path) / "report.json") or {},
            manifest=data._read_json(Path(dataset.path) / "manifest.json") or {},
            pairs=pairs,
            offset=offset,
            filters=filters,
            query=lambda **changes: urlencode({k: v for k, v in ({**filters, **changes}).items() if v}),
        )

    async def diff_page(request: Request) -> Response:
        library = pick_library(request, request.path_params["library"])
        assert library is not None
        q = request.query_params
        versions = [d.version for d in registry().datasets(library.name)]
        if len(versions) < 2:
            raise DoctuneError(f"{library.name} has {len(versions)} dataset version(s): a diff needs two")
        old = _dataset(library.name, q.get("old") or str(versions[-2]))
        new = _dataset(library.name, q.get("new") or str(versions[-1]))
        diff = await run_in_threadpool(data.dataset_diff, old.path, new.path)
        api = await run_in_threadpool(data.api_change, settings, registry(), library.name, new)
        return page(request, "diff.html", library=library, old=old, new=new, diff=diff, versions=versions, api=api)

    # -- training ----------------------------------------------------------------------------------------

    async def training_page(request: Request, form_error: list[str] | None = None, values: Any = None) -> Response:
        library = pick_library(request, request.path_params.get("library"))
        runs = list(reversed(registry().runs(library.name))) if library else []
        datasets = [d.version for d in registry().datasets(library.name)] if library else []
        fields = data.train_form_fields(library.train, form_fields(library)) if library else []
        if values is not None:
            for spec in fields:
                if spec.name in values:
                    spec.value = values[spec.name]
        return page(
            request,
            "training.html",
            status=400 if form_error else 200,
            library=library,
            runs=runs,
            datasets=datasets,
            fields=fields,
            form_errors=form_error or [],
            launches=launcher.recent(library.name) if library else [],
            through_airflow=airflow is not None,
        )

    async def training_start(request: Request) -> Response:
        library = get_library(settings, request.path_params["library"])
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            params = data.parse_train_form(form, library.train, form_fields(library))
        except ValidationError as exc:
            return await training_page(request, validation_messages(exc), form)
        version = form.get("dataset_version", "")
        dataset_version = int(version) if version.isdigit() else None
        started = await run_in_threadpool(start, library, params, dataset_version, "training started")
        return answered(request, "train", f"/training/{library.name}", ok=f"{started} with {params.model_dump()}")

    async def training_stop(request: Request) -> Response:
        from doctune.train import request_stop

        library = get_library(settings, request.path_params["library"])
        requested = await run_in_threadpool(request_stop, settings, library.name)
        back = str((await request.form()).get("back") or f"/training/{library.name}")
        if not requested:
            return answered(request, "stop", _safe_next(back), error=f"no training of {library.name} is running")
        return answered(
            request,
            "stop",
            _safe_next(back),
            ok=f"stop requested for {len(requested)} training(s): it saves a checkpoint after the current step",
        )

    def _run(request: Request) -> Any:
        run_id = request.path_params["run_id"]
        try:
            return registry().run(int(run_id))
        except Exception as exc:  # NoResultFound
            raise DoctuneError(f"training run {run_id} is not registered") from exc

    async def run_resume(request: Request) -> Response:
        run = _run(request)
        if run.status in (RunStatus.RUNNING, RunStatus.SUCCEEDED):
            raise DoctuneError(f"run {run.id} is {run.status}: only a stopped, interrupted or failed run resumes")
        params = TrainParams.model_validate(run.params)
        library = get_library(settings, run.library)
        started = await run_in_threadpool(start, library, params, run.dataset_version, f"resuming run {run.id}")
        return answered(
            request,
            "resume",
            f"/training/{run.library}",
            ok=f"{started}; it continues from the last checkpoint",
            library=run.library,
        )

    async def run_page(request: Request) -> Response:
        run = _run(request)
        return page(
            request,
            "run.html",
            run=run,
            library=pick_library(request, run.library),
            checkpoints=data.checkpoints(run),
            tensorboard=f"{console.tensorboard_url.rstrip('/')}/?"
            + urlencode({"regexInput": f"{run.library}/{Path(run.output_dir).name}"}),
        )

    async def run_scalars(request: Request) -> Response:
        run = _run(request)
        series = await run_in_threadpool(data.scalars, data.tensorboard_dir(settings, run))
        return JSONResponse(
            {
                "run": run.id,
                "status": run.status,
                "steps": run.steps,
                "checkpoints": data.checkpoints(run),
                "scalars": series,
            }
        )

    # -- adapters ----------------------------------------------------------------------------------------

    async def adapters_page(request: Request) -> Response:
        from doctune.serve import rollback_target

        library = pick_library(request, request.path_params.get("library"))
        if library is None:
            return page(request, "adapters.html", library=None)
        production = registry().production(library.name)
        board = data.leaderboard(registry(), library.name)
        return page(
            request,
            "adapters.html",
            library=library,
            board=board,
            freshness=data.freshness_points(board),
            production=production,
            rollback_to=rollback_target(registry(), library.name),
            deployments=list(reversed(registry().deployments(library.name)))[:15],
            actions=registry().actions(library.name, limit=15),
        )

    async def promote(request: Request) -> Response:
        """The gate decides, as in the retrain DAG: a version it did not approve is promoted only with an explicit
        override and a reason, recorded with the deployment under the operator's name."""
        from doctune.serve import deploy

        library = get_library(settings, request.path_params["library"])
        form = await request.form()
        version = str(form.get("version", ""))
        back = f"/adapters/{library.name}"
        if not version.isdigit():
            return _back(back, error="choose a version to promote")
        evaluation = registry().latest_evaluation(library.name, int(version))
        overridden_by = None
        if evaluation is None or evaluation.decision != Decision.PROMOTE:
            why = "was never evaluated" if evaluation is None else "was rejected by the gate (its reasons are below)"
            reason = " ".join(str(form.get("override_reason") or "").split())
            if not (form.get("override") and reason):
                return answered(
                    request,
                    "promote",
                    back,
                    error=f"v{version} {why}: to promote it anyway, tick 'override the gate' and give a reason "
                    "(recorded under your name)",
                )
            overridden_by = f"{request.state.login.user} in the console, because: {reason}"
        try:
            result = await run_in_threadpool(deploy, library, settings, int(version), skipped_gate_by=overridden_by)
        except DoctuneError as exc:
            return answered(request, "promote", back, error=str(exc))
        return answered(
            request,
            "override" if overridden_by else "promote",
            back,
            ok=f"{library.name} now answers with {result.served_name} (previous: "
            f"{f'v{result.previous}' if result.previous else 'base model'})"
            + (f"; the gate was overridden by {overridden_by}" if overridden_by else ""),
        )

    async def rollback(request: Request) -> Response:
        from doctune.serve import rollback as rollback_fn

        library = get_library(settings, request.path_params["library"])
        to = str((await request.form()).get("to", ""))
        try:
            result = await run_in_threadpool(rollback_fn, library, settings, int(to) if to.isdigit() else None)
        except DoctuneError as exc:
            return answered(request, "rollback", f"/adapters/{library.name}", error=str(exc))
        return answered(
            request,
            "rollback",
            f"/adapters/{library.name}",
            ok=f"{library.name} rolled back to {result.served_name} (was v{result.previous})",
        )

    # -- models ------------------------------------------------------------------------------------------

    async def models_page(request: Request) -> Response:
        from doctune.serve import server_status

        status = await run_in_threadpool(server_status, settings)
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                gateway_ok = (await client.get(f"{settings.gateway_url}/health")).status_code == 200
        except httpx.TransportError:
            gateway_ok = False
        loaded = {m["name"] for m in status["models"]}
        libs, _ = data.libraries(settings)
        loadable = [
            {"library": lib.name, "version": a.version, "name": a.served_name, "status": a.status}
            for lib in libs
            for a in registry().adapters(lib.name)
            if a.served_name not in loaded
        ]
        problem = None
        if not status["healthy"]:
            problem = (
                f"the vLLM server at {settings.vllm_url} is not reachable or not healthy: start it with "
                "`doctune serve start LIBRARY` (local) or check the vllm service and DOCTUNE_VLLM_URL"
            )
        return page(
            request,
            "models.html",
            status=200,
            server=status,
            gateway_ok=gateway_ok,
            gateway_url=settings.gateway_url,
            loadable=loadable,
            error=problem,
        )

    async def model_action(request: Request) -> Response:
        from doctune.serve import load_version, unload_version

        form = await request.form()
        action = request.path_params["action"]
        name = str(form.get("name", ""))
        if action not in ("load", "unload"):
            return _back("/models", error=f"unknown action {action!r}: load or unload")
        version_of = parse_served_name(name)
        if version_of is None:
            return _back("/models", error=f"{name!r} is not an adapter version (<library>@v<N>)")
        library_name, version = version_of
        function = load_version if action == "load" else unload_version
        try:
            library = get_library(settings, library_name)
            done = await run_in_threadpool(function, library, settings, version)
        except DoctuneError as exc:
            return answered(request, action, "/models", error=str(exc), library=library_name)
        return answered(request, action, "/models", ok=f"{action}ed {done}", library=library_name)

    routes = [
        Route("/health", health),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home),
        Route("/static/highlight.css", highlight_css),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        Route("/chat", guarded(chat_page)),
        Route("/api/chat", chat_api, methods=["POST"]),
        Route("/datasets", guarded(datasets_page)),
        Route("/datasets/{library}/v{version}", guarded(dataset_page)),
        Route("/datasets/{library}/diff", guarded(diff_page)),
        Route("/training", guarded(training_page)),
        Route("/training/{library}", guarded(training_page)),
        Route("/training/{library}/start", guarded(operator_only("train", "train", training_start)), methods=["POST"]),
        Route(
            "/training/{library}/stop", guarded(operator_only("stop", "stop training", training_stop)), methods=["POST"]
        ),
        Route("/runs/{run_id:int}", guarded(run_page)),
        Route(
            "/runs/{run_id:int}/resume", guarded(operator_only("resume", "resume runs", run_resume)), methods=["POST"]
        ),
        Route("/api/runs/{run_id:int}/scalars", run_scalars),
        Route("/adapters", guarded(adapters_page)),
        Route("/adapters/{library}", guarded(adapters_page)),
        Route("/adapters/{library}/promote", guarded(operator_only("promote", "promote", promote)), methods=["POST"]),
        Route(
            "/adapters/{library}/rollback", guarded(operator_only("rollback", "roll back", rollback)), methods=["POST"]
        ),
        Route("/models", guarded(models_page)),
        Route(
            "/models/{action:str}",
            guarded(operator_only("load/unload", "load or unload adapters", model_action)),
            methods=["POST"],
        ),
    ]
    app = Starlette(routes=routes)
    hosts = (auth.parse_keys(console.allowed_hosts) or None) if logins else list(LOOPBACK)
    app.add_middleware(Guard, logins=logins, hosts=hosts)
    app.state.launcher = launcher
    return app


def main(host: str = "127.0.0.1", port: int = 8200) -> None:
    """Serve the console; without a configured key only on the loopback interface."""
    import uvicorn

    console = ConsoleSettings()
    check_serving_keys("DOCTUNE_CONSOLE_KEYS", [login.key for login in console.logins], host)
    if not console.logins:
        log.warning("no DOCTUNE_CONSOLE_KEYS set: the console has no login and listens on %s only", host)
    uvicorn.run(create_app(console=console), host=host, port=port, log_level="info")
