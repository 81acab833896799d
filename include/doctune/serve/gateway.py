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
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from doctune.config import Settings, check_serving_keys
from doctune.errors import DoctuneError
from doctune.names import parse_served_name
from doctune.registry import Registry
from doctune.serve.client import UPSTREAM_LIMITS
from doctune.serve.deploy import reconcile

log = logging.getLogger(__name__)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


# The request fields passed on to vLLM: OpenAI's chat and completions parameters and the common sampling extras.
# Anything else (vLLM's own extensions, e.g. guided decoding or LoRA requests) is refused, not forwarded.
ALLOWED_FIELDS = frozenset(
    {
        "model", "messages", "prompt", "suffix", "echo", "best_of",
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream", "stream_options", "stop",
        "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "seed", "user",
        "response_format", "tools", "tool_choice", "parallel_tool_calls", "top_k", "min_p", "repetition_penalty",
    }
)  # fmt: skip


class _RateLimit:
    """Requests per minute per API key: a token bucket that refills continuously."""

    def __init__(self, per_minute: int) -> None:
        self.rate, self.capacity = per_minute / 60.0, float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when counted)

    def allow(self, key: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, since = self.buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - since) * self.rate)
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - 1, now)
        return True


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` bytes (checked as it arrives, not after)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    registry = Registry.open(settings)
    # A stalled upstream must not hold a client forever: no byte for request_timeout seconds ends the answer.
    upstream = httpx.AsyncClient(
        base_url=settings.vllm_url.rstrip("/"),
        timeout=httpx.Timeout(settings.request_timeout, connect=5, pool=10),
        headers=settings.vllm_headers,
        limits=UPSTREAM_LIMITS,
    )
    keys = [k.encode() for k in settings.api_keys]
    limiter = _RateLimit(settings.gateway_requests_per_minute)

    def caller(request: Request) -> str | None:
        """Which key the request carries (a digest, never the key), "" without keys, None when it is wrong."""
        if not keys:
            return ""
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
        found = [key for key in keys if hmac.compare_digest(given, key)]
        return hashlib.sha256(found[0]).hexdigest()[:16] if found else None

    def refused(request: Request) -> Response | None:
        who = caller(request)
        if who is None:
            return _error(401, "missing or wrong API key", "authentication_error")
        if who and not limiter.allow(who):  # keys identify callers; without keys (local use) nobody is limited
            return _error(
                429, f"more than {settings.gateway_requests_per_minute} requests a minute with this key", "rate_limit"
            )
        return None

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
        """Ready only when both things it needs answer: vLLM and the registry."""
        checks: dict[str, str] = {}
        try:
            reply = await upstream.get("/health", timeout=5)
            checks["vllm"] = "ok" if reply.status_code == 200 else f"answered {reply.status_code}"
        except httpx.HTTPError as exc:
            checks["vllm"] = f"unreachable ({type(exc).__name__})"
        try:
            await asyncio.to_thread(registry.aliases)
            checks["registry"] = "ok"
        except Exception as exc:  # any database failure means not ready
            checks["registry"] = f"unavailable ({type(exc).__name__})"
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", **checks}, status_code=200 if healthy else 503
        )

    async def models(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        aliases = await asyncio.to_thread(registry.aliases)
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
        if (refusal := refused(request)) is not None:
            return refusal
        raw = await _read_body(request, settings.gateway_max_body_bytes)
        if raw is None:
            return _error(413, f"request body larger than {settings.gateway_max_body_bytes} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "request body must be JSON")
        if not isinstance(body, dict):
            return _error(400, f"request body must be a JSON object, not {type(body).__name__}")
        unknown = sorted(set(body) - ALLOWED_FIELDS)
        if unknown:
            return _error(400, f"unsupported request field {unknown[0]!r} (the gateway passes OpenAI's fields only)")
        model = str(body.get("model", ""))
        target = (await asyncio.to_thread(registry.aliases)).get(model)
        if target:
            body["model"] = target

        async def forward() -> httpx.Response:
            return await upstream.send(upstream.build_request(request.method, request.url.path, json=body), stream=True)

        try:
            reply = await forward()
            # Only an adapter version's name is worth a reconcile: the base model is always loaded.
            missing_version = parse_served_name(str(body.get("model"))) is not None
            if reply.status_code == 404 and missing_version and await reconciled():
                await reply.aclose()
                reply = await forward()
        except httpx.TransportError:
            return _error(503, "the model server is unavailable", "server_error")

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in reply.aiter_raw():
                    yield chunk
            except httpx.HTTPError as exc:
                # Headers are out already: a stream ends with an error event a client can read, not a cut line.
                log.error("the model server failed during an answer: %s", exc)
                if body.get("stream"):
                    error = {"error": {"message": "the model server failed during the answer", "type": "server_error"}}
                    yield f"\n\ndata: {json.dumps(error)}\n\ndata: [DONE]\n\n".encode()

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
    parser = argparse.ArgumentParser(description="doctune's OpenAI-compatible gateway in front of vLLM")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    check_serving_keys("DOCTUNE_GATEWAY_API_KEYS", Settings().api_keys, args.host)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
