"""The pages that need no login: the health check and the login form (a user's key for a signed session cookie,
failed attempts limited per client address); and logging out."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from doctune.console import auth
from doctune.console.context import context_of
from doctune.console.views.pages import page, safe_next

log = logging.getLogger(__name__)


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def login_form(request: Request) -> Response:
    if not context_of(request).logins:
        return RedirectResponse("/chat", status_code=303)
    return page(request, "login.html", next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    context = context_of(request)
    form = await request.form()
    target = safe_next(str(form.get("next") or ""))
    client = request.client.host if request.client else "?"
    now = time.monotonic()
    failures = context.failures
    recent = failures[client] = [t for t in failures.get(client, []) if now - t < 60]
    if len(recent) >= auth.LOGIN_ATTEMPTS_PER_MINUTE:
        log.warning("console: login from %s refused: %d failed attempts in a minute", client, len(recent))
        return page(request, "login.html", status=429, next=target, error="too many attempts; wait a minute")
    found = auth.check_key(context.logins, str(form.get("key") or ""))
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
        secure=context.console.secure_cookie or request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login" if context_of(request).logins else "/chat", status_code=303)
    response.delete_cookie(auth.COOKIE)
    return response
