"""What every command module shares: the two consoles (progress and errors on stderr, results on stdout), the
library argument, the logging set-up and the one-line error exit."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from doctune.errors import DoctuneError

console = Console(stderr=True)
out = Console()

Library = Annotated[str, typer.Argument(help="Library name (its config file is <name>.yaml).")]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, markup=False)],
    )
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "git", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_app(app: typer.Typer) -> None:
    """Run a command line: a DoctuneError is one red line on stderr and its exit code, never a traceback."""
    try:
        app()
    except DoctuneError as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(getattr(exc, "exit_code", 1))
