"""``doctune sync`` (the library's repository) and ``doctune corpus`` (instruction datasets: build, show, diff)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from doctune.cli.common import Library, console, out
from doctune.config import Settings, get_library
from doctune.errors import DoctuneError

corpus_app = typer.Typer(help="Instruction datasets built from a library's docs and code.", no_args_is_help=True)


def sync_cmd(library: Library) -> None:
    """Clone or fetch the library, check out the commit's tree, and say whether a dataset version was built from it."""
    from doctune.sources import sync

    settings = Settings()
    result = sync(get_library(settings, library), settings)
    which = "not the commit" if result.changed else "the commit"
    out.print(f"{library} at {result.commit[:12]}: {which} of the latest dataset version")


@corpus_app.command("build")
def corpus_build(
    library: Library,
    force: Annotated[bool, typer.Option(help="Build even if the doc surface is unchanged.")] = False,
    commit: Annotated[str | None, typer.Option(help="Commit to build from (default: branch head).")] = None,
) -> None:
    """Build a dataset version from the library's current commit."""
    from doctune.corpus import build
    from doctune.sources import sync

    settings = Settings()
    # One step per stage of a build: sync, read, generate, (ask the LLM,) filter.
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"building the corpus of {library}", total=5)

        def step(message: str) -> None:
            bar.update(task, advance=1, description=message)

        config = get_library(settings, library)
        step(f"syncing {library}")  # the one fetch of this build: the corpus reads the tree the sync checks out
        info = build(config, settings, sync(config, settings, commit=commit), force=force, progress=step)
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
    out.print(Markdown((_dataset_path(Settings(), library, version) / "report.md").read_text()))


@corpus_app.command("diff")
def corpus_diff(
    library: Library,
    old: Annotated[int, typer.Argument(help="Older dataset version.")],
    new: Annotated[int, typer.Argument(help="Newer dataset version.")],
) -> None:
    """Pairs added, removed and changed between two dataset versions, and the units they come from."""
    from doctune.corpus import diff_rows
    from doctune.registry import load_rows

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
