"""``doctune``: one command whose subcommands call the same functions the Airflow operators call.

Each command imports the stage package it calls when it runs, so that ``doctune --help`` and shell completion load
none of them (the registry alone brings SQLAlchemy and Alembic; the gateway and the console Starlette). Submodules,
one per stage:

- ``common``: the consoles, the library argument, the logging set-up and the one-line error exit.
- ``registry``: ``db upgrade`` and ``status``.
- ``corpus``: ``sync`` and ``corpus build|show|diff``.
- ``train``: ``train run|stop`` and ``models prepare``.
- ``evaluate``: ``eval run|show|compare|sandbox``.
- ``serve``: ``deploy``, ``rollback``, ``ask`` and ``serve start|status|load|unload|reconcile|stop``.
- ``stack``: ``stack init``, and ``gateway`` and ``console`` in the foreground.
"""

from __future__ import annotations

from typing import Annotated

import typer

from doctune.cli.common import run_app, setup_logging
from doctune.cli.corpus import corpus_app, sync_cmd
from doctune.cli.evaluate import eval_app
from doctune.cli.registry import db_app, status_cmd
from doctune.cli.serve import ask_cmd, deploy_cmd, rollback_cmd, serve_app
from doctune.cli.stack import console_cmd, gateway_cmd, stack_app
from doctune.cli.train import models_app, train_app

__all__ = ["app", "main"]

app = typer.Typer(help="Keep a coding LLM fluent in your private library.", no_args_is_help=True)
# `doctune --help` lists the commands in this order, then the command groups in theirs.
app.command("sync")(sync_cmd)
app.command("deploy")(deploy_cmd)
app.command("rollback")(rollback_cmd)
app.command("ask")(ask_cmd)
app.command("status")(status_cmd)
app.command("gateway")(gateway_cmd)
app.command("console")(console_cmd)
app.add_typer(db_app, name="db")
app.add_typer(corpus_app, name="corpus")
app.add_typer(serve_app, name="serve")
app.add_typer(models_app, name="models")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(stack_app, name="stack")


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    setup_logging(verbose)


def main() -> None:
    run_app(app)
