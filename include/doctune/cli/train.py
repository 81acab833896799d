"""``doctune train`` (LoRA training: run, stop) and ``doctune models`` (the built-in base models it starts from)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from doctune.cli.common import Library, console, out
from doctune.config import Settings, get_library
from doctune.errors import DoctuneError

train_app = typer.Typer(help="LoRA training: run, or stop with a checkpoint.", no_args_is_help=True)
models_app = typer.Typer(help="Built-in base models.", no_args_is_help=True)


@train_app.command("run")
def train_cmd(
    library: Library,
    dataset_version: Annotated[int | None, typer.Option(help="Dataset version (default: latest).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Override max_steps.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Override the learning rate.")] = None,
    lora_rank: Annotated[int | None, typer.Option(help="Override the LoRA rank.")] = None,
    params_json: Annotated[
        str | None,
        typer.Option("--params", help="TrainParams fields as a JSON object, over the library's (the console uses it)."),
    ] = None,
) -> None:
    """Train a LoRA adapter and register it as a candidate."""
    from doctune.train import train

    settings = Settings()
    lib = get_library(settings, library)
    try:
        given = json.loads(params_json) if params_json else {}
    except json.JSONDecodeError as exc:
        raise DoctuneError(
            f"--params is not valid JSON ({exc}): pass an object such as '{{\"max_steps\": 100}}'"
        ) from None
    if not isinstance(given, dict):
        raise DoctuneError("--params must be a JSON object of training parameters")
    overrides = {
        k: v
        for k, v in {"max_steps": max_steps, "learning_rate": learning_rate, "lora_rank": lora_rank}.items()
        if v is not None
    }
    params = lib.train.merged(given | overrides)
    columns = (
        TextColumn("[bold]training[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps, loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(library, total=None, loss="-")

        def step(done: int, total: int, loss: float | None) -> None:
            bar.update(task, completed=done, total=total, loss=f"{loss:.4f}" if loss is not None else "-")

        result = train(lib, settings, dataset_version=dataset_version, params=params, progress=step)
    out.print(
        f"adapter v{result.adapter_version}: {result.steps} steps, final loss {result.train_loss:.4f}, "
        f"{result.adapter_path}"
    )


@train_app.command("stop")
def train_stop(library: Library) -> None:
    """Ask running trainings of a library to save a checkpoint and stop (a later run resumes from it)."""
    from doctune.train import request_stop

    settings = Settings()
    get_library(settings, library)
    requested = request_stop(settings, library)
    out.print(
        f"stop requested for {len(requested)} running training(s) of {library}"
        if requested
        else f"no training of {library} is running"
    )


@models_app.command("prepare")
def models_prepare(name: Annotated[str, typer.Argument(help="tiny-llama or smollm2-135m-instruct.")]) -> None:
    """Build or convert a built-in base model once (cached under DOCTUNE_HOME/models)."""
    from doctune.base_models import resolve_base_model

    with console.status(f"preparing {name}"):
        path = resolve_base_model(name, Settings())
    out.print(path)
