"""An operator's actions: only operators may act, and what a user did or tried is recorded in the registry under
their name (and in the log) before the page shows the outcome."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from doctune.console import auth
from doctune.console.context import context_of
from doctune.console.views.pages import Handler, back, page
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)


def record(request: Request, action: str, outcome: str, detail: str, library: str | None = None) -> None:
    """Keep what a user did, or tried, in the registry under their name (and in the log)."""
    user: auth.Login = request.state.login
    library = library or request.path_params.get("library")
    log.info("console: %s (%s) %s %s: %s: %s", user.user, user.role, action, library or "", outcome, detail)
    context_of(request).registry().record_action(
        user=user.user, role=user.role, action=action, library=library, outcome=outcome, detail=detail
    )


def answered(
    request: Request, action: str, path: str, *, ok: str = "", error: str = "", library: str | None = None
) -> Response:
    """An operator's action ends here: recorded, then the page it came from with its message."""
    record(request, action, "failed" if error else "done", error or ok, library)
    return back(path, **({"error": error} if error else {"ok": ok}))


def operator_only(action: str, what: str, handler: Handler) -> Handler:
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
