"""The importable library at a commit, as the sandbox runs it: built from the files git tracks, scrubbed of secrets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from doctune.config import LibraryConfig, Settings
from doctune.reader.extract import read_text, tracked_files
from doctune.secrets import scrub


def import_root(tree: Path, package: str) -> Path:
    """The folder to put on ``sys.path`` so that ``package`` imports from a checkout (flat or src layout)."""
    return tree / "src" if (tree / "src" / package).is_dir() else tree


def library_copy(
    settings: Settings, library: LibraryConfig, tree: Path, commit: str, symbols: dict[str, dict[str, Any]]
) -> tuple[Path, dict[str, str]]:
    """The importable library at ``commit``, as the sandbox runs it (training snippets, evaluation tasks): the
    package and every sibling top-level package its public API is defined in (a facade's), built from the files
    git tracks only, links never followed, every text scrubbed of secrets. Returns the folder to put on
    ``sys.path`` and the files left out, with why. Built once per commit."""
    package = library.import_name
    root = import_root(tree, package)
    prefix = "" if root == tree else f"{root.relative_to(tree).as_posix()}/"
    tops = {package} | {
        info["path"].removeprefix(prefix).split("/", 1)[0].removesuffix(".pyi").removesuffix(".py")
        for info in symbols.values()
        if info.get("path", "").startswith(prefix)
    }
    folder = settings.path("cache", "library", library.name) / commit
    if (folder / ".skipped.json").is_file():
        return folder, json.loads((folder / ".skipped.json").read_text())
    for old in folder.parent.iterdir():  # one commit's copy at a time: older ones are never read again
        shutil.rmtree(old, ignore_errors=True)
    staging = folder.with_name(f".staging-{commit}-{os.getpid()}")
    skipped: dict[str, str] = {}
    for rel in tracked_files(tree):
        inside = rel.removeprefix(prefix)
        if not rel.startswith(prefix) or not any(
            inside.startswith(f"{top}/") or inside in (f"{top}.py", f"{top}.pyi") for top in tops
        ):
            continue
        text, reason = read_text(tree, rel)
        if text is None:
            skipped[rel] = reason
            continue
        target = staging / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(scrub(text, rel)[0])
    staging.mkdir(parents=True, exist_ok=True)
    (staging / ".skipped.json").write_text(json.dumps(skipped, sort_keys=True))
    staging.rename(folder)
    return folder, skipped
