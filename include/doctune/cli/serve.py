"""Serving: ``doctune deploy``, ``rollback`` and ``ask`` (the stable name and the gateway clients use), and
``doctune serve`` (the vLLM server, its loaded adapters, the local server processes)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from doctune.cli.common import Library, console, out
from doctune.config import Settings, get_library

serve_app = typer.Typer(
    help="Model management: the vLLM server, its loaded adapters, and local server processes.", no_args_is_help=True
)


def deploy_cmd(library: Library, version: Annotated[int, typer.Argument(help="Adapter version.")]) -> None:
    """Load an adapter into vLLM, smoke-test it and point the stable name at it."""
    from doctune.serve import deploy, ensure_gateway

    settings = Settings()
    result = deploy(get_library(settings, library), settings, version)
    ensure_gateway(settings)
    out.print(f"{library} now answers with {result.served_name} (previous: v{result.previous})")


def rollback_cmd(
    library: Library,
    to: Annotated[int | None, typer.Option(help="Version to serve (default: the previous production version).")] = None,
) -> None:
    """Point the stable name back at the previous (or a given) version, at once."""
    from doctune.serve import rollback

    settings = Settings()
    result = rollback(get_library(settings, library), settings, to)
    out.print(f"{library} now answers with {result.served_name} (was v{result.previous})")


def ask_cmd(
    model: Annotated[str, typer.Argument(help="Stable name, <lib>@v<N> or the base model name.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    max_tokens: Annotated[int, typer.Option(help="Longest answer.")] = 256,
) -> None:
    """Ask a served model through the gateway, as an IDE would (OpenAI-compatible API)."""
    from doctune.serve import ask

    out.print(ask(Settings(), model, question, max_tokens=max_tokens))


@serve_app.command("start")
def serve_start(library: Library) -> None:
    """Start vLLM (with the production adapters preloaded) for a library's base model, and the gateway."""
    from doctune.serve import ensure_gateway, ensure_vllm

    settings = Settings()
    with console.status("starting vLLM and the gateway"):
        ensure_vllm(settings, get_library(settings, library))
        ensure_gateway(settings)
    out.print(f"vLLM at {settings.vllm_url}, gateway (for clients) at {settings.gateway_url}/v1")


@serve_app.command("status")
def serve_status() -> None:
    """Server health, the base model and every loaded adapter with its version, dataset, status and loss."""
    from doctune.serve import server_status

    status = server_status(Settings())
    out.print(f"vLLM at {status['vllm']}: {'healthy' if status['healthy'] else 'not reachable'}")
    table = Table("model", "base", "stable name", "status", "dataset", "held-out loss")
    for m in status["models"]:
        loss = m.get("heldout_loss")
        table.add_row(
            m["name"],
            m["base"] or "(base model)",
            m.get("stable_name") or "",
            m.get("status") or "",
            f"v{m['dataset']}" if m.get("dataset") else "",
            f"{loss:.4f}" if loss else "",
        )
    out.print(table)


@serve_app.command("load")
def serve_load(library: Library, version: Annotated[int, typer.Argument(help="Adapter version to load.")]) -> None:
    """Load one registered adapter version into vLLM (after the deploy preflight), without moving the stable name."""
    from doctune.serve import load_version

    settings = Settings()
    out.print(f"loaded {load_version(get_library(settings, library), settings, version)}")


@serve_app.command("unload")
def serve_unload(library: Library, version: Annotated[int, typer.Argument(help="Adapter version to unload.")]) -> None:
    """Unload one adapter version from vLLM (never the production one)."""
    from doctune.serve import unload_version

    settings = Settings()
    out.print(f"unloaded {unload_version(get_library(settings, library), settings, version)}")


@serve_app.command("reconcile")
def serve_reconcile() -> None:
    """Load every library's production and rollback adapters that the running vLLM lacks (after a restart)."""
    from doctune.serve import reconcile

    loaded = reconcile(Settings())
    out.print(f"loaded {', '.join(loaded)}" if loaded else "nothing to load: the server holds every served version")


@serve_app.command("stop")
def serve_stop() -> None:
    """Stop the local vLLM and gateway processes."""
    from doctune.serve import stop_server

    settings = Settings()
    for name in ("gateway", "vllm"):
        out.print(f"{name}: {'stopped' if stop_server(settings, name) else 'not running'}")
