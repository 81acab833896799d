"""Read a library the way a senior engineer does: docs, the public API, its tests and its changelog.

Everything read becomes a *unit* (one doc section, one public symbol, one test, one changelog section) with a
stable key. The public API also becomes a *symbol table*, which later stages use to reject pairs that mention
APIs that do not exist. Files are selected from what git tracks, by include/exclude globs; symlinks are never
followed, and binary, huge, non-UTF-8 or unparsable files are skipped with a counted reason.

The public API is what the package exports, wherever it is defined: re-exports are followed through imports, star
imports and aliases to their definitions (in private modules, or in a sibling top-level package behind a facade),
and each definition is named by its canonical public path.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import re
import subprocess
import textwrap
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from doctune.config import LibraryConfig, Settings, SourceConfig
from doctune.corpus.markup import plain
from doctune.corpus.pyapi import (
    ModuleFacts,
    describe_module,
    module_index,
    parse_python,
    public_api,
    read_reachable,
)
from doctune.corpus.units import Unit
from doctune.errors import DoctuneError
from doctune.secrets import scrub

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
MARKDOWN = {".md", ".markdown"}
CHANGELOG = re.compile(r"^(CHANGELOG|CHANGES|HISTORY|NEWS)(\.\w+)?$", re.I)


@dataclass
class Surface:
    units: list[Unit]
    symbols: dict[str, dict[str, Any]]  # qualified name -> kind, signature, path, deprecated, alias_of
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    scrubbed: Counter[str] = field(default_factory=Counter)  # kind of secret -> occurrences removed
    # public name -> why it cannot be resolved, naming the import and what is missing
    unresolved: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(sorted(u.digest() for u in self.units)).encode()).hexdigest()


# -- file selection ------------------------------------------------------------------------------------------


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


# -- documents -----------------------------------------------------------------------------------------------


def _doc_unit(rel: str, title: str, body: str, examples: tuple[str, ...]) -> Unit | None:
    body = body.strip()
    if len(body) < 20:
        return None
    return Unit(key=f"doc:{rel}#{title}", kind="doc", path=rel, title=title, text=body, examples=examples)


def markdown_units(rel: str, text: str) -> list[Unit]:
    """Sections by heading path. LangChain's syntax-aware splitter keeps code blocks whole and indented (the
    classic MarkdownHeaderTextSplitter strips every line, which breaks Python examples)."""
    from langchain_text_splitters.markdown import ExperimentalMarkdownSyntaxTextSplitter

    splitter = ExperimentalMarkdownSyntaxTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=True
    )
    sections: dict[str, tuple[list[str], list[str]]] = {}
    # MyST directives and Sphinx roles become plain Markdown first: ```{doctest} blocks are Python examples then.
    for chunk in splitter.split_text(plain(text)):
        headings = [chunk.metadata[h] for h in ("h1", "h2", "h3") if h in chunk.metadata]
        body, examples = sections.setdefault(" > ".join(headings) or PurePosixPath(rel).stem, ([], []))
        body.append(chunk.page_content.strip())
        if chunk.metadata.get("Code", "").lower() in ("python", "py", "pycon"):
            examples.append(chunk.page_content.strip().removeprefix("```").split("\n", 1)[-1].removesuffix("```"))
    units = []
    for title, (body, examples) in sections.items():
        if unit := _doc_unit(rel, title, "\n\n".join(body), tuple(e.strip() for e in examples)):
            units.append(unit)
    return units


def rst_units(rel: str, text: str) -> list[Unit]:
    """Sections of a reStructuredText file (docutils; errors in the markup are tolerated, not fatal)."""
    from docutils import nodes
    from docutils.core import publish_doctree

    doctree = publish_doctree(
        text,
        settings_overrides={
            "report_level": 5,
            "halt_level": 5,
            "warning_stream": False,
            "file_insertion_enabled": False,
            "raw_enabled": False,
            "doctitle_xform": False,  # keep the top heading a section: titles are full paths
        },
    )
    # docutils files its complaints (an unknown role like click's :issue:, a stray backquote) as system_message
    # nodes inside the paragraph or list item they concern, and their text ("<string>:8: (INFO/1) No role
    # entry ...") would reach answers; the markup itself survives as text and plain() makes it Markdown.
    for message in list(doctree.findall(nodes.system_message)):
        message.parent.remove(message)
    units: list[Unit] = []

    def walk(node: nodes.Element, path: list[str]) -> None:
        own, examples = [], []
        for child in node.children:
            if isinstance(child, nodes.section):
                continue
            if isinstance(child, nodes.title):
                continue
            if isinstance(child, nodes.literal_block):
                code = child.astext()
                examples.append(code)
                own.append(f"```python\n{code}\n```")
            elif isinstance(child, nodes.Element):
                own.append(child.astext())
        title = " > ".join(path) or PurePosixPath(rel).stem
        # Sphinx roles and directives docutils does not know survive in its text as written: make them Markdown.
        if unit := _doc_unit(rel, title, plain("\n\n".join(own)), tuple(examples)):
            units.append(unit)
        for child in node.children:
            if isinstance(child, nodes.section):
                heading = child.next_node(nodes.title)
                walk(child, [*path, heading.astext() if heading else "section"])

    walk(doctree, [])
    return units


def text_units(rel: str, text: str, limit: int = 1500) -> list[Unit]:
    """Plain text: paragraphs grouped into chunks of at most ``limit`` characters."""
    chunks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", plain(text)):
        if current and len(current) + len(paragraph) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}".strip()
    chunks.append(current)
    stem = PurePosixPath(rel).stem
    return [u for i, c in enumerate(chunks) if (u := _doc_unit(rel, f"{stem} (part {i + 1})", c, ()))]


VERSION_HEADING = re.compile(r"(?:\[?v?(?:ersion\s+)?)(\d+(?:\.\d+)+[\w.-]*)\]?", re.I)


# What the model should know of a long history: the newest releases, and every deprecation and removal (they name
# what replaces an API). Older release notes would spend the training budget on versions nobody runs.
RECENT_RELEASES = 8


def _release_order(version: str) -> tuple[int, Any]:
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def changelog_units(rel: str, text: str) -> list[Unit]:
    """One unit per version and category (Keep a Changelog headings; plain "Version x.y" sections too), for the
    RECENT_RELEASES newest versions, plus the deprecations and removals of every version."""
    sections = markdown_units(rel, text) if PurePosixPath(rel).suffix.lower() in MARKDOWN else rst_units(rel, text)
    found = []
    for section in sections:
        parts = section.title.split(" > ")
        version = next((m[1] for p in parts if (m := VERSION_HEADING.search(p))), None)
        if version is not None:
            category = parts[-1] if not VERSION_HEADING.search(parts[-1]) else "Changes"
            found.append((version, category, section.text))
    recent = set(sorted({v for v, _, _ in found}, key=_release_order, reverse=True)[:RECENT_RELEASES])
    return [
        Unit(key=f"change:{version} {category}", kind="change", path=rel, title=f"{version} {category}", text=body)
        for version, category, body in found
        if version in recent or category.lower().startswith(("deprecat", "remov"))
    ]


def example_units(rel: str, source: str) -> list[Unit]:
    """Each test function as a usage example, titled by what its name says it checks."""
    tree = parse_python(source, filename=rel)
    units = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
            code = ast.get_source_segment(source, node)
            if not code:
                continue
            title = node.name.removeprefix("test_").replace("_", " ")
            units.append(
                Unit(
                    key=f"example:{rel}::{node.name}", kind="example", path=rel, title=title, text=textwrap.dedent(code)
                )
            )
    return units


# -- the surface ----------------------------------------------------------------------------------------------


# Bump when extraction changes what it produces: cached results of older versions are then ignored.
EXTRACTOR_VERSION = 7

# What a parser may raise on hostile input besides SyntaxError: ast.parse runs out of memory or recursion on
# deeply nested code, and rejects null bytes with ValueError.
HOSTILE_INPUT_FAILURES = (ValueError, MemoryError, RecursionError)


def read_file(tree: Path, rel: str, kind: str) -> dict[str, Any]:
    """One file's result, which is what the cache keeps: the units it yields (the facts of its module for Python
    source), the secrets removed, or the reason it was skipped."""
    text, reason = read_text(tree, rel)
    if text is None:
        return {"skipped": reason}
    text, found = scrub(text, rel)
    result: dict[str, Any] = {"scrubbed": dict(found)}
    try:
        if kind == "python":
            result["module"] = describe_module(rel, text)
            return result
        if kind == "tests":
            units = example_units(rel, text)
        elif kind == "changelog":
            units = changelog_units(rel, text)
        else:
            units = {"markdown": markdown_units, "rst": rst_units, "text": text_units}[kind](rel, text)
        for example in (e for u in units for e in u.examples):
            # A block that is not Python (a shell session, output) is never parsed as code later either.
            with contextlib.suppress(SyntaxError):
                parse_python(example)
    except SyntaxError as exc:
        return {"skipped": f"Python does not parse: line {exc.lineno}: {exc.msg}"}
    except HOSTILE_INPUT_FAILURES as exc:
        parser = "Python" if kind in ("python", "tests") else kind
        return {"skipped": f"{parser} does not parse: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")}
    result["units"] = [asdict(u) for u in units]
    return result


def extraction_cache(settings: Settings, library: LibraryConfig) -> Path:
    """Where per-file extraction results of a library live (shared by the sync and corpus stages)."""
    return settings.path("cache", "extract", library.name)


class _Files:
    """Reads selected files through the per-blob cache, each at most once, and keeps what was skipped or
    scrubbed in the files read."""

    def __init__(self, tree: Path, library: LibraryConfig, cache: Path | None) -> None:
        self.tree, self.library, self.cache = tree, library, cache
        self.blobs = tracked_files(tree)
        self.skipped: dict[str, str] = {}
        self.scrubbed: Counter[str] = Counter()
        self.modules: dict[str, ModuleFacts | None] = {}

    def read(self, rel: str, kind: str) -> dict[str, Any] | None:
        key = hashlib.sha256(
            f"{EXTRACTOR_VERSION}\0{self.blobs[rel]}\0{rel}\0{kind}\0{self.library.import_name}".encode()
        )
        cached = self.cache / f"{key.hexdigest()}.json" if self.cache else None
        if cached and cached.exists():
            result: dict[str, Any] = json.loads(cached.read_text())
        else:
            result = read_file(self.tree, rel, kind)
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps(result))
        if "skipped" in result:
            self.skipped[rel] = result["skipped"]
            log.warning("skipped %s: %s", rel, result["skipped"])
            return None
        self.scrubbed.update(result["scrubbed"])
        return result

    def module(self, rel: str) -> ModuleFacts | None:
        if rel not in self.modules:
            result = self.read(rel, "python")
            self.modules[rel] = result["module"] if result else None
        return self.modules[rel]


def extract(tree: Path, library: LibraryConfig, cache: Path | None = None) -> Surface:
    """Read the selected files of a work tree into units and the public API's symbol table.

    With ``cache``, each file's result is kept under its git blob id: a new commit re-reads only the files it
    changed, which is what makes incremental rebuilds cheap. Python modules are indexed by name and parsed only
    when the package reaches them; the public API is then resolved across modules in memory.
    """
    files = _Files(tree, library, cache)
    selected = [(rel, kind) for rel in files.blobs if (kind := classify(rel, library))]
    modules = module_index([rel for rel, kind in selected if kind == "python"])

    def load(module: str) -> ModuleFacts | None:
        return files.module(modules[module])

    read_reachable(library.import_name, modules, load)
    api = public_api(library.import_name, modules, load)
    units: list[Unit] = []
    for rel, kind in selected:
        if kind == "python":
            units += api.units.get(rel, [])
        elif result := files.read(rel, kind):
            units += [Unit.from_dict(u) for u in result["units"]]
    if not any(u.kind in ("api", "doc") for u in units):
        raise DoctuneError(
            f"found no docs and no documented public API in {tree} for package {library.import_name!r}: "
            "check 'package' (the import name) and 'sources' in the library config, and that the repo has docs"
        )
    if files.scrubbed:
        log.warning(
            "removed %d secrets or private hosts from the corpus: %s",
            sum(files.scrubbed.values()),
            ", ".join(f"{k} x{n}" for k, n in sorted(files.scrubbed.items())),
        )
    if api.unresolved:
        example = next(iter(api.unresolved.items()))
        log.warning("%d public names could not be resolved, e.g. %s: %s", len(api.unresolved), *example)
    return Surface(
        units=units,
        symbols=api.symbols,
        skipped=dict(sorted(files.skipped.items())),
        scrubbed=files.scrubbed,
        unresolved=api.unresolved,
    )
