"""Clients of the two servers: ``VLLMClient`` for vLLM's OpenAI API and its runtime LoRA admin endpoints (only
doctune holds that URL), and ``ask``, which asks through the gateway as a developer tool would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from doctune.config import Settings
from doctune.errors import DoctuneError


def base_served_name(base_model: str) -> str:
    """The name vLLM serves the base model under: a built-in name or hub id as is (vLLM's default for a hub
    id), a local folder by its last part."""
    return Path(base_model.rstrip("/")).name if base_model.startswith(("/", ".", "~")) else base_model


# vLLM's server closes a connection idle for VLLM_HTTP_TIMEOUT_KEEP_ALIVE (5 s) and httpx's default expiry is also
# 5 s, so a request can go out on a connection the server is closing that instant and fail with "Server disconnected
# without sending a response" (seen in CI: a full evaluation's 16 workers idle while a round's slowest answer ends).
# Clients of vLLM drop idle connections well before the server does.
UPSTREAM_LIMITS = httpx.Limits(keepalive_expiry=2.0)


class VLLMClient:
    """vLLM's OpenAI API plus its runtime LoRA admin endpoints. Only doctune holds this URL."""

    def __init__(self, url: str, timeout: float = 120.0, headers: dict[str, str] | None = None):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, limits=UPSTREAM_LIMITS)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            try:
                return self._http.request(method, path, **kwargs)
            except httpx.RemoteProtocolError:
                # Closed before any answer (a proxy or server with a shorter keep-alive than ours): the request was
                # not handled, so it goes once more on a fresh connection; a server that is down fails that one.
                return self._http.request(method, path, **kwargs)
        except httpx.ReadTimeout:
            raise DoctuneError(
                f"vLLM server at {self.url} took longer than {self._http.timeout.read:.0f} s to answer: it is up but "
                "busy (a slow CPU, long prompts, many requests at once); raise DOCTUNE_REQUEST_TIMEOUT"
            ) from None
        except httpx.TransportError as exc:
            raise DoctuneError(
                f"vLLM server at {self.url} is unreachable ({type(exc).__name__}): start it with "
                "`doctune serve start` or check DOCTUNE_VLLM_URL and the vllm service"
            ) from None

    @staticmethod
    def _error(response: httpx.Response) -> str:
        try:
            return str(response.json().get("error", {}).get("message") or response.text)
        except ValueError:
            return response.text

    def healthy(self) -> bool:
        try:
            return self._http.get("/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def models(self) -> list[dict[str, Any]]:
        response = self._request("GET", "/v1/models")
        response.raise_for_status()
        return list(response.json()["data"])

    def load_adapter(self, name: str, path: str) -> None:
        response = self._request("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        if response.status_code != 200:
            raise DoctuneError(f"vLLM refused to load adapter {name} from {path}: {self._error(response)}")

    def unload_adapter(self, name: str) -> None:
        response = self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": name})
        if response.status_code not in (200, 404):
            raise DoctuneError(f"vLLM refused to unload adapter {name}: {self._error(response)}")

    def chat(self, model: str, question: str, *, max_tokens: int = 128, stop: list[str] | None = None) -> str:
        response = self._request(
            "POST",
            "/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": question}],
                "max_tokens": max_tokens,
                "temperature": 0.0,
            }
            | ({"stop": stop} if stop else {}),
        )
        if response.status_code != 200:
            raise DoctuneError(f"vLLM could not answer with model {model}: {self._error(response)}")
        return str(response.json()["choices"][0]["message"]["content"] or "")


def vllm_client(settings: Settings, timeout: float | None = None) -> VLLMClient:
    """A client of the configured server; ``timeout`` (seconds per request) defaults to ``request_timeout``."""
    return VLLMClient(settings.vllm_url, timeout or settings.request_timeout, settings.vllm_headers)


def ask(settings: Settings, model: str, question: str, *, max_tokens: int = 128) -> str:
    """Ask through the gateway with the official OpenAI client, exactly as a developer tool would."""
    # Local: the OpenAI SDK takes about a second to import, and the gateway, the console and the evaluation
    # import this package without ever asking through the gateway.
    from openai import APIConnectionError, APIStatusError, OpenAI

    client = OpenAI(
        base_url=f"{settings.gateway_url}/v1",
        api_key=(settings.api_keys or ["local"])[0],
        timeout=settings.request_timeout,
        max_retries=0,
    )
    try:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], max_tokens=max_tokens, temperature=0
        )
    except APIConnectionError:
        raise DoctuneError(
            f"gateway at {settings.gateway_url} is unreachable: start it with `doctune serve start`"
        ) from None
    except APIStatusError as exc:
        raise DoctuneError(f"gateway refused model {model!r}: {exc.message}") from None
    return reply.choices[0].message.content or ""
