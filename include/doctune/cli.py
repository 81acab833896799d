"""``doctune``: one command whose subcommands call the same functions the Airflow operators call."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from doctune.config import Settings, get_library
from doctune.errors import DoctuneError

app = typer.Typer(help="Keep a coding LLM fluent in your private library.", no_args_is_help=True)
db_app = typer.Typer(help="The registry database.", no_args_is_help=True)
corpus_app = typer.Typer(help="Instruction datasets built from a library's docs and code.", no_args_is_help=True)
serve_app = typer.Typer(
    help="Model management: the vLLM server, its loaded adapters, and local server processes.", no_args_is_help=True
)
models_app = typer.Typer(help="Built-in base models.", no_args_is_help=True)
train_app = typer.Typer(help="LoRA training: run, or stop with a checkpoint.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluation and the promotion gate: run, show, compare.", no_args_is_help=True)
stack_app = typer.Typer(help="The Airflow deployment: components, pools, connections.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(corpus_app, name="corpus")
app.add_typer(serve_app, name="serve")
app.add_typer(models_app, name="models")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(stack_app, name="stack")
console = Console(stderr=True)
out = Console()

Library = Annotated[str, typer.Argument(help="Library name (its config file is <name>.yaml).")]


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, markup=False)],
    )
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "git", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the registry schema (idempotent)."""
    from doctune.registry import Registry

    settings = Settings()
    Registry.open(settings)
    out.print(f"registry at {settings.registry_url.split('@')[-1]} is up to date")


@app.command("sync")
def sync_cmd(library: Library) -> None:
    """Clone or fetch the library and say whether its doc surface changed."""
    from doctune.sources import sync

    settings = Settings()
    result = sync(get_library(settings, library), settings)
    out.print(f"{library} at {result.commit[:12]}: doc surface {'changed' if result.changed else 'unchanged'}")


@corpus_app.command("build")
def corpus_build(
    library: Library,
    force: Annotated[bool, typer.Option(help="Build even if the doc surface is unchanged.")] = False,
    commit: Annotated[str | None, typer.Option(help="Commit to build from (default: branch head).")] = None,
) -> None:
    """Build a dataset version from the library's current commit."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from doctune.corpus import build

    settings = Settings()
    # One step per stage of a build: sync, read, generate, (ask the LLM,) filter.
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"building the corpus of {library}", total=5)

        def step(message: str) -> None:
            bar.update(task, advance=1, description=message)

        info = build(get_library(settings, library), settings, commit=commit, force=force, progress=step)
        bar.update(task, completed=5)
    out.print(
        f"dataset v{info.version} ({info.status}): {info.n_train} train / {info.n_eval} eval pairs "
        f"from {info.commit[:12]} in {info.path}"
    )


def _dataset_path(settings: Settings, library: str, version: int | None) -> Path:
    from doctune.registry import Registry

    get_library(settings, library)
    registry = Registry.open(settings)
    dataset = registry.dataset(library, version) if version else registry.latest_dataset(library)
    if dataset is None:
        raise DoctuneError(f"{library} has no dataset version yet: run `doctune corpus build {library}`")
    return Path(dataset.path)


@corpus_app.command("show")
def corpus_show(
    library: Library,
    version: Annotated[int | None, typer.Option(help="Dataset version (default: latest).")] = None,
) -> None:
    """The quality report of a dataset version: coverage, rejections and their reasons, a sample."""
    from rich.markdown import Markdown

    out.print(Markdown((_dataset_path(Settings(), library, version) / "report.md").read_text()))


@corpus_app.command("diff")
def corpus_diff(
    library: Library,
    old: Annotated[int, typer.Argument(help="Older dataset version.")],
    new: Annotated[int, typer.Argument(help="Newer dataset version.")],
) -> None:
    """Pairs added, removed and changed between two dataset versions, and the units they come from."""
    from doctune.corpus import diff_rows, load_rows

    settings = Settings()
    rows = [
        [r for split in ("train", "eval") for r in load_rows(_dataset_path(settings, library, v), split)]
        for v in (old, new)
    ]
    diff = diff_rows(rows[0], rows[1])
    out.print(
        f"v{old} -> v{new}: {diff['added']} added, {diff['removed']} removed, {diff['changed']} changed, "
        f"{diff['unchanged']} unchanged"
    )
    for unit in diff["units"]:
        out.print(f"  {unit}")


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
    import json

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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


@eval_app.command("run")
def eval_run(
    library: Library,
    version: Annotated[int, typer.Argument(help="Adapter version.")],
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Ask every item (no time budget) and add the docs-in-prompt row (base model + docs)."
        ),
    ] = False,
) -> None:
    """Evaluate an adapter against production and the base model, and record the gate's decision."""
    from doctune.evaluate import evaluate, evaluation_report

    settings = Settings()
    with console.status(f"evaluating {library} v{version} (held-out loss, API, execution, general floor)"):
        result = evaluate(get_library(settings, library), settings, version, full=full)
    _print_report(evaluation_report(settings, library, result.adapter_version))


@eval_app.command("show")
def eval_show(
    library: Library,
    version: Annotated[int | None, typer.Argument(help="Adapter version (default: the latest evaluated).")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown report as is.")] = False,
) -> None:
    """Show the latest evaluation report of an adapter: metrics side by side, the gate's reasons, wins and losses."""
    from doctune.evaluate import evaluation_report

    report = evaluation_report(Settings(), library, version)
    if markdown:
        out.print((Path(report["path"]) / "report.md").read_text(), markup=False, highlight=False)
    else:
        _print_report(report)


@eval_app.command("compare")
def eval_compare(
    library: Library,
    first: Annotated[int, typer.Argument(help="Adapter version.")],
    second: Annotated[int, typer.Argument(help="Adapter version.")],
) -> None:
    """Two adapters' latest evaluations side by side (each as the candidate of its own evaluation)."""
    from doctune.evaluate import evaluation_report

    settings = Settings()
    a, b = (evaluation_report(settings, library, v)["metrics"]["candidate"] for v in (first, second))
    table = Table("metric", f"v{first}", f"v{second}", "change", title=f"{library}: v{first} vs v{second}")
    for name in sorted(a.keys() | b.keys()):
        change = f"{b[name] - a[name]:+.4f}" if name in a and name in b else ""
        table.add_row(name, *(f"{m[name]:.4f}" if name in m else "" for m in (a, b)), change)
    out.print(table)


@eval_app.command("sandbox")
def eval_sandbox() -> None:
    """The isolation layers this machine grants generated code, and whether they meet the sandbox's minimum."""
    from doctune.sandbox import require_minimum

    layers = require_minimum()  # a machine below the minimum: the error names each missing layer and its fix
    out.print(f"sandbox layers: {', '.join(layers)} (the minimum is met)")


def _print_report(report: dict[str, Any]) -> None:
    from doctune.evaluate import HEADLINE

    roles = list(report["metrics"])
    title = f"{report['library']} v{report['adapter_version']} on dataset v{report['dataset_version']}"
    table = Table("metric", *roles, title=title)
    present = {k for m in report["metrics"].values() for k in m}
    for name in [n for n in HEADLINE if n in present] + sorted(present - set(HEADLINE)):
        cells = []
        for role in roles:
            value = report["metrics"][role].get(name)
            interval = report.get("intervals", {}).get(role, {}).get(name)
            cells.append(
                ""
                if value is None
                else f"{value:.3f} [{interval[0]:.2f}-{interval[1]:.2f}] n={interval[2]}"
                if interval
                else f"{value:.4f}"
            )
        table.add_row(name, *cells)
    out.print(table)
    items = report["items"]
    out.print(
        f"{items['api']} API questions, {items['exec']} execution tasks, {items['general']} general tasks; "
        f"generation {report['timing']['generation_s']:.0f} s"
    )
    out.print(f"decision: [bold]{report['decision']}[/]")
    for reason in report["reasons"]:
        out.print(f"  - {reason}", markup=False)
    out.print(f"report: {report['path']}/report.md")


@app.command("deploy")
def deploy_cmd(library: Library, version: Annotated[int, typer.Argument(help="Adapter version.")]) -> None:
    """Load an adapter into vLLM, smoke-test it and point the stable name at it."""
    from doctune.serve import deploy, ensure_gateway

    settings = Settings()
    result = deploy(get_library(settings, library), settings, version)
    ensure_gateway(settings)
    out.print(f"{library} now answers with {result.served_name} (previous: v{result.previous})")


@app.command("rollback")
def rollback_cmd(
    library: Library,
    to: Annotated[int | None, typer.Option(help="Version to serve (default: the previous production version).")] = None,
) -> None:
    """Point the stable name back at the previous (or a given) version, at once."""
    from doctune.serve import rollback

    settings = Settings()
    result = rollback(get_library(settings, library), settings, to)
    out.print(f"{library} now answers with {result.served_name} (was v{result.previous})")


@app.command("ask")
def ask_cmd(
    model: Annotated[str, typer.Argument(help="Stable name, <lib>@v<N> or the base model name.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    max_tokens: Annotated[int, typer.Option(help="Longest answer.")] = 256,
) -> None:
    """Ask a served model through the gateway, as an IDE would (OpenAI-compatible API)."""
    from doctune.serve import ask

    out.print(ask(Settings(), model, question, max_tokens=max_tokens))


@app.command("status")
def status_cmd(library: Library) -> None:
    """Datasets, adapters and the stable name of a library."""
    from doctune.registry import Registry

    settings = Settings()
    get_library(settings, library)
    registry = Registry.open(settings)
    production = registry.production(library)
    latest = registry.latest_dataset(library)
    out.print(
        f"[bold]{library}[/]: production {production.served_name if production else 'base model'}; "
        f"latest dataset {f'v{latest.version} ({latest.commit[:12]})' if latest else 'none'}"
    )
    table = Table("adapter", "dataset", "status", "base model", "path")
    for adapter in registry.adapters(library):
        table.add_row(
            f"v{adapter.version}", f"v{adapter.dataset_version}", adapter.status, adapter.base_model, adapter.path
        )
    out.print(table)


@stack_app.command("init")
def stack_init() -> None:
    """Create the Airflow pools the DAGs need (idempotent; the compose init service runs it)."""
    from doctune.stack import init_airflow

    for line in init_airflow():
        out.print(line)


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


@models_app.command("prepare")
def models_prepare(name: Annotated[str, typer.Argument(help="tiny-llama or smollm2-135m-instruct.")]) -> None:
    """Build or convert a built-in base model once (cached under DOCTUNE_HOME/models)."""
    from doctune.base_models import resolve_base_model

    with console.status(f"preparing {name}"):
        path = resolve_base_model(name, Settings())
    out.print(path)


@app.command("gateway")
def gateway_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8100,
) -> None:
    """Run the OpenAI-compatible gateway in the foreground (containers use this)."""
    from doctune.serve.gateway import main as gateway_main

    gateway_main(["--host", host, "--port", str(port)])


@app.command("console")
def console_cmd(
    host: Annotated[str, typer.Option(help="Interface; beyond 127.0.0.1 needs DOCTUNE_CONSOLE_KEYS.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8200,
) -> None:
    """Run the web console (chat, datasets, training, adapters, models) in the foreground."""
    from doctune.console import main as console_main

    console_main(host=host, port=port)


@app.command("demo")
def demo_cmd(
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
) -> None:
    """Run the whole loop through Airflow on the bundled demo library, and print a summary."""
    from doctune.demo import run_demo

    run_demo(Settings(), base_model=base_model, max_steps=max_steps, edit_docs=edit_docs, console=out)


def main() -> None:
    try:
        app()
    except DoctuneError as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(getattr(exc, "exit_code", 1))


if __name__ == "__main__":  # `python -m doctune.cli`: how the console starts a training in the background
    main()
