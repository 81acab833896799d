"""The adapters page: the leaderboard (base model, production and every version with its latest evaluation and
the gate's reasons), new-API recall over versions, deployments and actions; promote (through the gate, or over
it with a reason) and rollback, each the function the CLI calls."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from doctune import serve
from doctune.config import get_library
from doctune.console import data
from doctune.console.context import context_of
from doctune.console.views.actions import answered
from doctune.console.views.pages import back, page, pick_library
from doctune.errors import DoctuneError
from doctune.names import Decision


async def adapters_page(request: Request) -> Response:
    registry = context_of(request).registry()
    library = pick_library(request, request.path_params.get("library"))
    if library is None:
        return page(request, "adapters.html", library=None)
    production = registry.production(library.name)
    board = data.leaderboard(registry, library.name)
    return page(
        request,
        "adapters.html",
        library=library,
        board=board,
        freshness=data.freshness_points(board),
        production=production,
        rollback_to=serve.rollback_target(registry, library.name),
        deployments=list(reversed(registry.deployments(library.name)))[:15],
        actions=registry.actions(library.name, limit=15),
    )


async def promote(request: Request) -> Response:
    """The gate decides, as in the retrain DAG: a version it did not approve is promoted only with an explicit
    override and a reason, recorded with the deployment under the operator's name."""
    context = context_of(request)
    library = get_library(context.settings, request.path_params["library"])
    form = await request.form()
    version = str(form.get("version", ""))
    return_to = f"/adapters/{library.name}"
    if not version.isdigit():
        return back(return_to, error="choose a version to promote")
    evaluation = context.registry().latest_evaluation(library.name, int(version))
    overridden_by = None
    if evaluation is None or evaluation.decision != Decision.PROMOTE:
        why = "was never evaluated" if evaluation is None else "was rejected by the gate (its reasons are below)"
        reason = " ".join(str(form.get("override_reason") or "").split())
        if not (form.get("override") and reason):
            return answered(
                request,
                "promote",
                return_to,
                error=f"v{version} {why}: to promote it anyway, tick 'override the gate' and give a reason "
                "(recorded under your name)",
            )
        overridden_by = f"{request.state.login.user} in the console, because: {reason}"
    try:
        result = await run_in_threadpool(
            serve.deploy, library, context.settings, int(version), skipped_gate_by=overridden_by
        )
    except DoctuneError as exc:
        return answered(request, "promote", return_to, error=str(exc))
    return answered(
        request,
        "override" if overridden_by else "promote",
        return_to,
        ok=f"{library.name} now answers with {result.served_name} (previous: "
        f"{f'v{result.previous}' if result.previous else 'base model'})"
        + (f"; the gate was overridden by {overridden_by}" if overridden_by else ""),
    )


async def rollback(request: Request) -> Response:
    settings = context_of(request).settings
    library = get_library(settings, request.path_params["library"])
    to = str((await request.form()).get("to", ""))
    try:
        result = await run_in_threadpool(serve.rollback, library, settings, int(to) if to.isdigit() else None)
    except DoctuneError as exc:
        return answered(request, "rollback", f"/adapters/{library.name}", error=str(exc))
    return answered(
        request,
        "rollback",
        f"/adapters/{library.name}",
        ok=f"{library.name} rolled back to {result.served_name} (was v{result.previous})",
    )
