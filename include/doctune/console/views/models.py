"""The models page: the vLLM server's health and the adapters it has loaded, the gateway's health, and load and
unload of one adapter version (``serve.load_version``/``unload_version``, as the CLI)."""

from __future__ import annotations

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from doctune.config import get_library
from doctune.console import data
from doctune.console.context import context_of
from doctune.console.views.actions import answered
from doctune.console.views.pages import back, page
from doctune.errors import DoctuneError
from doctune.names import parse_served_name
from doctune.serve import load_version, server_status, unload_version


async def models_page(request: Request) -> Response:
    context = context_of(request)
    settings = context.settings
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
        for a in context.registry().adapters(lib.name)
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
    form = await request.form()
    action = request.path_params["action"]
    name = str(form.get("name", ""))
    if action not in ("load", "unload"):
        return back("/models", error=f"unknown action {action!r}: load or unload")
    version_of = parse_served_name(name)
    if version_of is None:
        return back("/models", error=f"{name!r} is not an adapter version (<library>@v<N>)")
    library_name, version = version_of
    function = load_version if action == "load" else unload_version
    settings = context_of(request).settings
    try:
        library = get_library(settings, library_name)
        done = await run_in_threadpool(function, library, settings, version)
    except DoctuneError as exc:
        return answered(request, action, "/models", error=str(exc), library=library_name)
    return answered(request, action, "/models", ok=f"{action}ed {done}", library=library_name)
