"""Read a library the way a senior engineer does: docs, the public API, its tests and its changelog.

Everything read becomes a *unit* (one doc section, one public symbol, one test, one changelog section) with a
stable key. The public API also becomes a *symbol table*, which later stages use to reject pairs that mention
APIs that do not exist. Files are selected from what git tracks, by include/exclude globs; symlinks are never
followed, and binary, huge, non-UTF-8 or unparsable files are skipped with a counted reason.
"""

from __future__ import annotations

import ast
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
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
MARKDOWN = {".md", ".markdown"}
CHANGELOG = re.compile(r"^(CHANGELOG|CHANGES|HISTORY|NEWS)(\.\w+)?$", re.I)


@dataclass(frozen=True)
class Unit:
    """One piece of the library: kind is "api", "doc", "example" (a test) or "change" (a changelog section)."""

    key: str  # stable identity across commits, e.g. "api:pkg.mod.func" or "doc:docs/x.md#A > B"
    kind: str
    path: str
    title: str
    text: str
    signature: str = ""  # api: a Python stub that parses, e.g. "def nibble(envelope: Envelope) -> int: ..."
    params: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    deprecated: str = ""  # api: the deprecation note, which names the replacement

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        """The inverse of ``asdict`` after a JSON round trip (lists back to tuples)."""
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


@dataclass
class Surface:
    units: list[Unit]
    symbols: dict[str, dict[str, Any]]  # qualified name -> kind, signature, path, deprecated, alias_of
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    scrubbed: Counter[str] = field(default_factory=Counter)  # kind of secret -> occurrences removed

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(sorted(u.digest() for u in self.units)).encode()).hexdigest()


# -- secrets -----------------------------------------------------------------------------------------------

SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    "aws access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "github token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    "slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "api key": re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{20,}\b"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"),
    "credentials in url": re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"),
    "password assignment": re.compile(
        r"""(?i)\b(\w*(?:password|passwd|secret|token|api_?key)\w*)(\s*[:=]\s*)(['"])(?!<REDACTED>)[^'"\s]{6,}\3"""
    ),
    "private host": re.compile(r"\b[a-z0-9.-]+\.(?:internal|corp|intranet|lan)\b(?::\d+)?", re.I),
}


def scrub(text: str) -> tuple[str, Counter[str]]:
    """Replace credentials and private hosts with <REDACTED>; count what was removed (never the values)."""
    found: Counter[str] = Counter()
    for kind, pattern in SECRET_PATTERNS.items():
        if kind == "password assignment":
            text, n = pattern.subn(lambda m: f"{m[1]}{m[2]}{m[3]}<REDACTED>{m[3]}", text)
        elif kind == "credentials in url":
            text, n = pattern.subn("<REDACTED>@", text)
        else:
            text, n = pattern.subn("<REDACTED>", text)
        if n:
            found[kind] += n
    return text, found


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
    """What a tracked file is to the corpus: markdown, rst, text, changelog, api, tests, or None (ignored)."""
    sources: SourceConfig = library.sources
    if not matches(rel, sources.include) or matches(rel, sources.exclude):
        return None
    name = PurePosixPath(rel)
    if CHANGELOG.match(name.name) and name.suffix.lower() in (*MARKDOWN, ".rst", ".txt", ""):
        return "changelog"
    if name.suffix == ".py":
        if matches(rel, sources.tests):
            return "tests"
        parts = name.parts
        package = library.import_name
        return "api" if parts[0] == package or parts[:2] == ("src", package) else None
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
    for chunk in splitter.split_text(text):
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
            elif isinstance(child, nodes.Element) and not isinstance(child, nodes.system_message):
                own.append(child.astext())
        title = " > ".join(path) or PurePosixPath(rel).stem
        if unit := _doc_unit(rel, title, "\n\n".join(own), tuple(examples)):
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
    for paragraph in re.split(r"\n\s*\n", text):
        if current and len(current) + len(paragraph) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}".strip()
    chunks.append(current)
    stem = PurePosixPath(rel).stem
    return [u for i, c in enumerate(chunks) if (u := _doc_unit(rel, f"{stem} (part {i + 1})", c, ()))]


VERSION_HEADING = re.compile(r"(?:\[?v?(?:ersion\s+)?)(\d+(?:\.\d+)+[\w.-]*)\]?", re.I)


def changelog_units(rel: str, text: str) -> list[Unit]:
    """One unit per version and category (Keep a Changelog headings; plain "Version x.y" sections too)."""
    sections = markdown_units(rel, text) if PurePosixPath(rel).suffix.lower() in MARKDOWN else rst_units(rel, text)
    units = []
    for section in sections:
        parts = section.title.split(" > ")
        version = next((m[1] for p in parts if (m := VERSION_HEADING.search(p))), None)
        if version is None:
            continue
        category = parts[-1] if not VERSION_HEADING.search(parts[-1]) else "Changes"
        title = f"{version} {category}"
        units.append(Unit(key=f"change:{title}", kind="change", path=rel, title=title, text=section.text))
    return units


# -- Python --------------------------------------------------------------------------------------------------


def module_name(rel: str) -> str:
    parts = PurePosixPath(rel).with_suffix("").parts
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    return tuple(a.arg for a in args if a.arg not in ("self", "cls"))


def _deprecation(node: ast.AST, doc: str) -> str:
    """The deprecation note of a symbol: a ``.. deprecated::`` docstring line or a DeprecationWarning it emits."""
    if match := re.search(r"\.\. deprecated::\s*(.+(?:\n\s{3,}.+)*)", doc):
        return " ".join(match[1].split())
    for inner in ast.walk(node):
        if not (isinstance(inner, ast.Call) and inner.args):
            continue
        category = (
            inner.args[1]
            if len(inner.args) > 1
            else next((k.value for k in inner.keywords if k.arg == "category"), None)
        )
        if isinstance(category, ast.Name | ast.Attribute) and ast.unparse(category).endswith("DeprecationWarning"):
            message = inner.args[0]
            return str(message.value) if isinstance(message, ast.Constant) else ast.unparse(message)
    return ""


def _doctests(doc: str) -> tuple[str, ...]:
    lines = [ln.strip()[4:] for ln in doc.splitlines() if ln.strip().startswith((">>> ", "... "))]
    return ("\n".join(lines),) if lines else ()


def _public_names(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return {str(n) for n in ast.literal_eval(node.value)}
            except ValueError:
                return None
    return None


def python_units(rel: str, source: str) -> tuple[list[Unit], dict[str, dict[str, Any]]]:
    """Public API units and symbol-table entries of one module (``__all__`` decides what is public)."""
    tree = ast.parse(source, filename=rel)
    module = module_name(rel)
    exported = _public_names(tree)
    symbols: dict[str, dict[str, Any]] = {module: {"kind": "module", "path": rel}}
    units: list[Unit] = []

    def public(name: str) -> bool:
        return name in exported if exported is not None else not name.startswith("_")

    def add(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, qualname: str, owner: str = "") -> None:
        doc = ast.get_docstring(node) or ""
        if isinstance(node, ast.ClassDef):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            fields = [n for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
            bases = f"({', '.join(ast.unparse(b) for b in node.bases)})" if node.bases else ""
            body = ast.unparse(init).split("\n")[0] + " ..." if init else "\n    ".join(ast.unparse(f) for f in fields)
            stub = f"class {node.name}{bases}:\n    {body or '...'}"
            params = _params(init) if init else tuple(f.target.id for f in fields)  # type: ignore[union-attr]
            kind = "class"
        else:
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
            stub = f"{prefix} {node.name}({ast.unparse(node.args)}){returns}: ..."
            if owner:
                stub = f"class {owner}:\n    {stub}"
            params, kind = _params(node), "method" if owner else "function"
        deprecated = _deprecation(node, doc)
        symbols[qualname] = {
            "kind": kind,
            "path": rel,
            "line": node.lineno,
            "signature": stub,
            "params": list(params),
            "deprecated": deprecated,
            "summary": doc.strip().split("\n\n")[0].replace("\n", " "),
        }
        if isinstance(node, ast.ClassDef):
            # Fields, class constants and enum members are real attributes: `lib.Verdict.VETO` exists.
            for member in node.body:
                targets = member.targets if isinstance(member, ast.Assign) else [getattr(member, "target", None)]
                for target in targets:
                    if isinstance(target, ast.Name):
                        symbols[f"{qualname}.{target.id}"] = {"kind": "attribute", "path": rel}
        if doc:
            units.append(
                Unit(
                    key=f"api:{qualname}",
                    kind="api",
                    path=rel,
                    title=qualname,
                    text=doc,
                    signature=stub,
                    params=params,
                    examples=_doctests(doc),
                    deprecated=deprecated,
                )
            )

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and public(node.name):
            add(node, f"{module}.{node.name}")
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef) and not member.name.startswith("_"):
                        add(member, f"{module}.{node.name}.{member.name}", owner=node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            # Module-level constants and aliases (``echo_via_pager = ...``) are API a pair may rightly mention.
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and public(target.id) and target.id != "__all__":
                    symbols[f"{module}.{target.id}"] = {"kind": "attribute", "path": rel}
        elif isinstance(node, ast.ImportFrom) and node.level >= 0:
            # Re-exports (``from .envelopes import nibble`` in a package): the short name is public API too.
            base = module if rel.endswith("__init__.py") else module.rpartition(".")[0]
            source_module = node.module or ""
            if node.level:
                anchor = base.split(".")[: max(len(base.split(".")) - (node.level - 1), 0)]
                source_module = ".".join([*anchor, *([source_module] if source_module else [])])
            for alias in node.names:
                name = alias.asname or alias.name
                if public(name) and not name.startswith("_") and alias.name != "*":
                    symbols[f"{module}.{name}"] = {
                        "kind": "alias",
                        "path": rel,
                        "alias_of": f"{source_module}.{alias.name}",
                    }
    return units, symbols


def example_units(rel: str, source: str) -> list[Unit]:
    """Each test function as a usage example, titled by what its name says it checks."""
    tree = ast.parse(source, filename=rel)
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
EXTRACTOR_VERSION = 2


def read_file(tree: Path, rel: str, kind: str, package: str) -> dict[str, Any]:
    """Units, symbols, secrets removed and (if skipped) the reason, for one file."""
    text, reason = read_text(tree, rel)
    if text is None:
        return {"skipped": reason}
    text, found = scrub(text)
    result: dict[str, Any] = {"scrubbed": dict(found), "units": [], "symbols": {}}
    try:
        if kind == "api":
            units, result["symbols"] = python_units(rel, text)
        elif kind == "tests":
            units = example_units(rel, text)
        elif kind == "changelog":
            units = changelog_units(rel, text)
        else:
            units = {"markdown": markdown_units, "rst": rst_units, "text": text_units}[kind](rel, text)
    except SyntaxError as exc:
        return {"skipped": f"Python does not parse: line {exc.lineno}: {exc.msg}"}
    result["units"] = [asdict(u) for u in units]
    return result


def extraction_cache(settings: Settings, library: LibraryConfig) -> Path:
    """Where per-file extraction results of a library live (shared by the sync and corpus stages)."""
    return settings.path("cache", "extract", library.name)


def extract(tree: Path, library: LibraryConfig, cache: Path | None = None) -> Surface:
    """Read the selected files of a work tree into units and the public API's symbol table.

    With ``cache``, each file's result is kept under its git blob id: a new commit re-reads only the files it
    changed, which is what makes incremental rebuilds cheap.
    """
    units: list[Unit] = []
    symbols: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    scrubbed: Counter[str] = Counter()
    for rel, blob in tracked_files(tree).items():
        kind = classify(rel, library)
        if kind is None:
            continue
        key = hashlib.sha256(f"{EXTRACTOR_VERSION}\0{blob}\0{rel}\0{kind}\0{library.import_name}".encode())
        cached = cache / f"{key.hexdigest()}.json" if cache else None
        if cached and cached.exists():
            result = json.loads(cached.read_text())
        else:
            result = read_file(tree, rel, kind, library.import_name)
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps(result))
        if "skipped" in result:
            skipped[rel] = result["skipped"]
            log.warning("skipped %s: %s", rel, result["skipped"])
            continue
        units += [Unit.from_dict(u) for u in result["units"]]
        symbols.update(result["symbols"])
        scrubbed.update(result["scrubbed"])
    if not any(u.kind in ("api", "doc") for u in units):
        raise DoctuneError(
            f"found no docs and no documented public API in {tree} for package {library.import_name!r}: "
            "check 'package' (the import name) and 'sources' in the library config, and that the repo has docs"
        )
    if scrubbed:
        log.warning(
            "removed %d secrets or private hosts from the corpus: %s",
            sum(scrubbed.values()),
            ", ".join(f"{k} x{n}" for k, n in sorted(scrubbed.items())),
        )
    return Surface(units=units, symbols=symbols, skipped=skipped, scrubbed=scrubbed)
