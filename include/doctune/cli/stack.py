"""What the deployment's containers run: ``doctune stack init`` (the Airflow pools), and the gateway and the web
console in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from doctune.cli.common import out

stack_app = typer.Typer(help="The Airflow deployment: components, pools, connections.", no_args_is_help=True)


@stack_app.command("init")
def stack_init() -> None:
    """Create the Airflow pools the DAGs need (idempotent; the compose init service runs it)."""
    from doctune.stack import init_airflow

    for line in init_airflow():
        out.print(line)


def gateway_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8100,
) -> None:
    """Run the OpenAI-compatible gateway in the foreground (containers use this)."""
    from doctune.serve.gateway import main as gateway_main

    gateway_main(["--host", host, "--port", str(port)])


def console_cmd(
    host: Annotated[str, typer.Option(help="Interface; beyond 127.0.0.1 needs DOCTUNE_CONSOLE_KEYS.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8200,
) -> None:
    """Run the web console (chat, datasets, training, adapters, models) in the foreground."""
    from doctune.console import main as console_main

    console_main(host=host, port=port)
