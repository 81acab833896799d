"""The gateway: the only OpenAI-compatible endpoint developer tools see.

It resolves a stable name (``<lib>``) to the production version (``<lib>@v<N>``) from the registry on every
request and streams vLLM's answer through unchanged. The name is resolved once, when the request arrives,
so moving the alias never switches a running answer to other weights. Only inference routes are proxied:
vLLM's runtime-LoRA admin endpoints are not reachable through here.

The gateway also keeps the server's adapters in line with the registry (``serve.reconcile``) at start and when
vLLM answers "no such model" for a registered version, e.g. after the vLLM container restarted without them.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from doctune.config import Settings, check_serving_keys
from doctune.errors import DoctuneError
from doctune.registry import Registry
from doctune.serve import reconcile

log = logging.getLogger(__name__)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    registry = Registry.open(settings)
    upstream = httpx.AsyncClient(
        base_url=settings.vllm_url.rstrip("/"),
        timeout=httpx.Timeout(None, connect=5),
        headers=settings.vllm_headers,
    )
    keys = [k.encode() for k in settings.api_keys]

    def authorized(request: Request) -> bool:
        if not keys:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
        return any(hmac.compare_digest(given, key) for key in keys)

    reconciling = asyncio.Lock()
    reconciles = [0]  # completed reconciles: a request that waited for one need not run another

    async def reconciled() -> bool:
        """Load what the server lacks; True if anything was loaded (then the request is worth retrying)."""
        seen = reconciles[0]
        async with reconciling:  # one reconcile at a time, however many requests missed together
            if reconciles[0] != seen:  # one finished while this request waited: retry on what it loaded
                return True
            try:
                return bool(await asyncio.to_thread(reconcile, settings))
            except DoctuneError as exc:
                log.error("reconcile failed: %s", exc)
                return False
            finally:
                reconciles[0] += 1

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "missing or wrong API key", "authentication_error")
        aliases = registry.aliases()
        try:
            served = (await upstream.get("/v1/models")).json()["data"]
        except (httpx.TransportError, ValueError, KeyError):
            return _error(503, "the model server is unavailable", "server_error")
        stable = [
            {"id": lib, "object": "model", "owned_by": "doctune", "root": target}
            for lib, target in sorted(aliases.items())
        ]
        return JSONResponse({"object": "list", "data": stable + served})

    async def proxy(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "missing or wrong API key", "authentication_error")
        try:
            body: dict[str, Any] = json.loads(await request.body())
        except ValueError:
            return _error(400, "request body must be JSON")
        model = str(body.get("model", ""))
        target = registry.aliases().get(model)
        if target:
            body["model"] = target

        async def forward() -> httpx.Response:
            return await upstream.send(upstream.build_request(request.method, request.url.path, json=body), stream=True)

        try:
            reply = await forward()
            # Only a versioned name (every name doctune serves is "<lib>@v<N>") is worth a reconcile.
            if reply.status_code == 404 and "@v" in str(body.get("model")) and await reconciled():
                await reply.aclose()
                reply = await forward()
        except httpx.TransportError:
            return _error(503, "the model server is unavailable", "server_error")

        async def relay() -> AsyncIterator[bytes]:
            async for chunk in reply.aiter_raw():
                yield chunk

        headers = {k: v for k, v in reply.headers.items() if k.lower() in ("content-type", "cache-control")}
        return StreamingResponse(
            relay(), status_code=reply.status_code, headers=headers, background=BackgroundTask(reply.aclose)
        )

    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/chat/completions", proxy, methods=["POST"]),
        Route("/v1/completions", proxy, methods=["POST"]),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await reconciled()
        yield
        await upstream.aclose()

    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="doctune's OpenAI-compatible gateway in front of vLLM")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    check_serving_keys("DOCTUNE_GATEWAY_API_KEYS", Settings().api_keys, args.host)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
