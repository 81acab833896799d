"""``extract``: the selected files of a work tree, each read through the per-blob cache, into units and the
public API's symbol table (its ``Surface``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.reader.extract.documents import (
    changelog_units,
    example_units,
    markdown_units,
    rst_units,
    text_units,
)
from doctune.reader.extract.files import classify, read_text, tracked_files
from doctune.reader.pyapi import ModuleFacts, describe_module, module_index, parse_python, public_api, read_reachable
from doctune.reader.units import Unit
from doctune.secrets import scrub

log = logging.getLogger(__name__)


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
