"""What every page does: render a template with the header's context, pick the library it shows, turn a doctune
error into a message on the page, and redirect back with a one-line message."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from doctune.config import LibraryConfig
from doctune.console import data
from doctune.console.context import context_of
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def page(request: Request, name: str, status: int = 200, **values: Any) -> Response:
    context = context_of(request)
    libs, problems = data.libraries(context.settings)
    return context.templates.TemplateResponse(
        request,
        name,
        {
            "libraries": libs,
            "config_problems": problems,
            "ok": request.query_params.get("ok"),
            "error": values.pop("error", None) or request.query_params.get("error"),
            "login": bool(context.logins),
            "user": request.state.login,
            "console": context.console,
            "nav": request.url.path.split("/")[1],
            **values,
        },
        status_code=status,
    )


def pick_library(request: Request, name: str | None = None) -> LibraryConfig | None:
    settings = context_of(request).settings
    libs, _ = data.libraries(settings)
    wanted = name or request.query_params.get("library")
    for library in libs:
        if library.name == wanted:
            return library
    if wanted:
        raise DoctuneError(f"unknown library {wanted!r}: no {wanted}.yaml in {settings.libraries_path}")
    return libs[0] if libs else None


def guarded(handler: Handler, template: str = "error.html") -> Handler:
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


def safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/chat"


def back(path: str, **message: str) -> RedirectResponse:
    """Post/redirect/get with a one-line message (``ok`` or ``error``) shown on the page."""
    separator = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{separator}{urlencode(message)}" if message else path, status_code=303)
