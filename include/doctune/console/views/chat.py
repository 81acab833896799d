"""The chat playground: the models the gateway lists (stable names, versions, base models), and a chat that streams
through the gateway, so stable names resolve as for any client, with the answer's code highlighted at the end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from doctune.config import Settings
from doctune.console.context import context_of
from doctune.console.render import answer_html, stylesheet
from doctune.console.views.pages import page


async def home(_: Request) -> Response:
    return RedirectResponse("/chat", status_code=303)


async def highlight_css(_: Request) -> Response:
    return Response(stylesheet(), media_type="text/css")


def gateway_down(settings: Settings, exc: Exception | None = None) -> str:
    return (
        f"the doctune gateway at {settings.gateway_url} is not reachable"
        f"{f' ({type(exc).__name__})' if exc else ''}: start it with `doctune serve start LIBRARY` (local) or "
        "check the gateway service and DOCTUNE_GATEWAY_URL"
    )


async def chat_page(request: Request) -> Response:
    context = context_of(request)
    settings, gateway_headers = context.settings, context.gateway_headers
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
        problem = gateway_down(settings, exc)
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
    context = context_of(request)
    settings, gateway_headers = context.settings, context.gateway_headers
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
            yield line({"error": gateway_down(settings, exc)})
            return
        yield line({"done": True, "finish_reason": finish, "html": answer_html("".join(text))})

    return StreamingResponse(events(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})
