"""File selection: what git tracks, matched against the library's include/exclude globs, read as UTF-8 text
(symlinks never followed; binary, huge or non-UTF-8 files refused with a reason), and classified."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

from doctune.config import LibraryConfig, SourceConfig

MAX_FILE_BYTES = 1_000_000
MARKDOWN = {".md", ".markdown"}
CHANGELOG = re.compile(r"^(CHANGELOG|CHANGES|HISTORY|NEWS)(\.\w+)?$", re.I)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob where ``**/`` spans folders (also none) and ``*`` stays inside one folder."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def matches(path: str, patterns: list[str]) -> bool:
    return any(_glob_regex(p).match(path) for p in patterns)


def tracked_files(tree: Path) -> dict[str, str]:
    """Files git tracks at HEAD (path -> blob id); untracked build output and anything outside the repo are
    never read."""
    out = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "ls-files", "-s", "-z"],
        cwd=tree,
        check=True,
        capture_output=True,
    ).stdout
    files = {}
    for entry in out.decode("utf-8", "replace").split("\0"):
        if entry:
            info, _, path = entry.partition("\t")
            files[path] = info.split()[1]
    return dict(sorted(files.items()))


def read_text(tree: Path, rel: str) -> tuple[str | None, str]:
    path = tree / rel
    if path.is_symlink():
        return None, "symlink (never followed)"
    if not path.is_file():
        return None, "not a regular file"
    if path.stat().st_size > MAX_FILE_BYTES:
        return None, f"larger than {MAX_FILE_BYTES} bytes"
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None, "binary"
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "not UTF-8"


def classify(rel: str, library: LibraryConfig) -> str | None:
    """What a tracked file is to the corpus: markdown, rst, text, changelog, python (a module, read as API when
    the package reaches it), tests, or None (ignored)."""
    sources: SourceConfig = library.sources
    name = PurePosixPath(rel)
    # A stub is selected wherever its module's source would be: including **/*.py includes the .pyi beside it.
    as_source = rel.removesuffix("i") if name.suffix == ".pyi" else rel
    if not (matches(rel, sources.include) or matches(as_source, sources.include)) or matches(rel, sources.exclude):
        return None
    if CHANGELOG.match(name.name) and name.suffix.lower() in (*MARKDOWN, ".rst", ".txt", ""):
        return "changelog"
    if name.suffix == ".py" and matches(rel, sources.tests):
        return "tests"
    if name.suffix in (".py", ".pyi"):
        return "python"
    return {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text"}.get(name.suffix.lower())
