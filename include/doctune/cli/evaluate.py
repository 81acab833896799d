"""``doctune eval``: evaluate an adapter and record the gate's decision, show or compare reports, check the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from doctune.cli.common import Library, console, out
from doctune.config import Settings, get_library

eval_app = typer.Typer(help="Evaluation and the promotion gate: run, show, compare.", no_args_is_help=True)


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
