"""``python -m demo`` (what ``make demo`` runs): the whole loop through Airflow on the bundled demo library, and a
summary of what it built, trained, evaluated and promoted."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated

import typer
from rich.console import Console

from demo.pipeline import demo_library, run_pipeline
from demo.repo import commit_next_change, prepare_demo_repo
from demo.report import summary
from doctune.base_models import resolve_base_model
from doctune.cli.common import out, run_app, setup_logging
from doctune.config import Settings
from doctune.registry import Registry

app = typer.Typer(add_completion=False)


def run_demo(settings: Settings, *, base_model: str, max_steps: int | None, edit_docs: bool, console: Console) -> None:
    started = time.monotonic()
    os.environ["DOCTUNE_HOME"] = str(settings.home)
    repo = prepare_demo_repo(settings)
    if edit_docs:
        console.print(commit_next_change(repo))
    library = demo_library(settings, repo, base_model, max_steps)
    with console.status(f"preparing base model {base_model} (once)"):
        resolve_base_model(base_model, settings)
    console.print(
        f"running doctune_retrain__{library.name} through Airflow "
        f"(full log: {settings.home / 'logs' / 'airflow-demo.log'})"
    )
    latest = Registry.open(settings).latest_dataset(library.name)
    run_pipeline(settings, library, console)
    result = summary(settings, library, console, latest.version if latest else None)
    (settings.path("logs") / "demo-summary.json").write_text(json.dumps(result, indent=2, default=str))
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")


@app.command()
def demo(
    base_model: Annotated[str, typer.Option(help="Base model of the demo library.")] = "smollm2-135m-instruct",
    max_steps: Annotated[
        int | None, typer.Option(help="Training steps instead of the base model's preset (2 epochs for SmolLM2).")
    ] = None,
    edit_docs: Annotated[
        bool,
        typer.Option(
            help="Commit a change to the demo library first, so this run builds and promotes a new version: "
            "ledgerkite 0.4.0's API change (a new function, a changed default) the first time, a doc tip after that."
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the whole loop through Airflow on the bundled demo library, and print a summary."""
    setup_logging(verbose)
    run_demo(Settings(), base_model=base_model, max_steps=max_steps, edit_docs=edit_docs, console=out)


if __name__ == "__main__":
    run_app(app)
