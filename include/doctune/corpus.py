"""Corpus: read a library's doc surface, turn it into chat-message pairs, and write a dataset version.

The doc surface is a list of *units*: one Markdown section or one public Python symbol each. Its fingerprint
decides whether anything downstream runs. Pairs are generated deterministically from units; the train/eval
split is made per unit (by a hash of its key), so it is stable across versions and no held-out symbol or
section ever leaks into training through another phrasing.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
DOC_SUFFIXES = {".md", ".markdown"}


@dataclass(frozen=True)
class Unit:
    """One piece of the doc surface: a Markdown section or a public symbol."""

    key: str  # stable identity across commits, e.g. "api:pkg.mod.func" or "doc:docs/x.md#A > B"
    kind: str  # "api" or "doc"
    path: str
    title: str
    text: str
    signature: str = ""
    params: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass
class Surface:
    units: list[Unit]
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(sorted(u.digest() for u in self.units)).encode()).hexdigest()


# -- extraction -------------------------------------------------------------------------------------------


def _tracked_files(tree: Path) -> list[str]:
    """Files git tracks at HEAD; untracked build output and anything outside the repo are never read."""
    out = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "ls-files", "-z"], cwd=tree, check=True, capture_output=True
    ).stdout
    return sorted(p for p in out.decode("utf-8", "replace").split("\0") if p)


def _read_text(tree: Path, rel: str) -> tuple[str | None, str]:
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


def _markdown_units(rel: str, text: str) -> list[Unit]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=True
    )
    units = []
    for chunk in splitter.split_text(text):
        headings = [chunk.metadata[h] for h in ("h1", "h2", "h3") if h in chunk.metadata]
        body = chunk.page_content.strip()
        if not headings or len(body) < 20:
            continue
        title = " > ".join(headings)
        examples = tuple(m.strip() for m in re.findall(r"```(?:python|py)\n(.*?)```", body, re.S))
        units.append(Unit(key=f"doc:{rel}#{title}", kind="doc", path=rel, title=title, text=body, examples=examples))
    return units


def _first_paragraph(doc: str) -> str:
    return doc.strip().split("\n\n")[0].replace("\n", " ").strip()


def _doctest_examples(doc: str) -> tuple[str, ...]:
    lines = [ln.strip()[4:] for ln in doc.splitlines() if ln.strip().startswith((">>> ", "... "))]
    return ("\n".join(lines),) if lines else ()


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str) -> tuple[str, tuple[str, ...]]:
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    params = tuple(
        a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs] if a.arg not in ("self", "cls")
    )
    return f"def {qualname}({ast.unparse(node.args)}){returns}", params


def _module_name(rel: str) -> str:
    parts = Path(rel).with_suffix("").parts
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _python_units(rel: str, source: str) -> list[Unit]:
    tree = ast.parse(source, filename=rel)
    module = _module_name(rel)
    units: list[Unit] = []

    def add(node: ast.AST, qualname: str) -> None:
        doc = ast.get_docstring(node) or ""  # type: ignore[arg-type]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            signature, params = _signature(node, qualname)
        elif isinstance(node, ast.ClassDef):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            signature = f"class {qualname}({bases})" if bases else f"class {qualname}"
            params = _signature(init, qualname)[1] if init else ()
            if not init and any(
                isinstance(d, ast.Name | ast.Call) and "dataclass" in ast.unparse(d) for d in node.decorator_list
            ):
                params = tuple(
                    n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                )
        else:
            return
        if not doc:
            return
        units.append(
            Unit(
                key=f"api:{qualname}",
                kind="api",
                path=rel,
                title=qualname,
                text=doc,
                signature=signature,
                params=params,
                examples=_doctest_examples(doc),
            )
        )

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            add(node, f"{module}.{node.name}")
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, ast.FunctionDef) and not member.name.startswith("_"):
                        add(member, f"{module}.{node.name}.{member.name}")
    return units


def _is_library_code(rel: str, package: str) -> bool:
    parts = Path(rel).parts
    return rel.endswith(".py") and (parts[0] == package or parts[:2] == ("src", package))


def extract(tree: Path, library: LibraryConfig) -> Surface:
    """Read the doc surface of a work tree: Markdown sections and public symbols of the library's package."""
    units: list[Unit] = []
    skipped: dict[str, str] = {}
    for rel in _tracked_files(tree):
        is_doc = Path(rel).suffix.lower() in DOC_SUFFIXES
        if not (is_doc or _is_library_code(rel, library.import_name)):
            continue
        text, reason = _read_text(tree, rel)
        if text is None:
            skipped[rel] = reason
            log.warning("skipped %s: %s", rel, reason)
            continue
        try:
            units.extend(_markdown_units(rel, text) if is_doc else _python_units(rel, text))
        except SyntaxError as exc:
            skipped[rel] = f"Python does not parse: line {exc.lineno}: {exc.msg}"
            log.warning("skipped %s: %s", rel, skipped[rel])
    if not units:
        raise DoctuneError(
            f"found no docs and no documented public API in {tree} for package {library.import_name!r}: "
            "check 'package' in the library config (the import name) and that the repo has Markdown docs"
        )
    return Surface(units=units, skipped=skipped)


# -- generation -------------------------------------------------------------------------------------------

PHRASINGS = {
    "signature": [
        "What is the signature of `{name}`?",
        "How is `{name}` declared?",
        "Show me the signature of `{name}` from {lib}.",
    ],
    "purpose": ["What does `{name}` do?", "Explain `{name}` in {lib}.", "What is `{name}` for?"],
    "which": [
        "Which {lib} function should I use to {task}?",
        "In {lib}, how do I {task}?",
        "What is the {lib} function to {task}?",
    ],
    "which_class": ["Which {lib} class is {task}?", "What is the name of the {lib} class for {task}?"],
    "params": ["What parameters does `{name}` take?", "Which arguments does `{name}` accept?"],
    "example": ["Show an example that uses `{name}`.", "Give me a short code example with `{name}`."],
    "doc": [
        "What does the {lib} documentation say about {title}?",
        "Explain {title} in {lib}.",
        "Tell me about {title} in {lib}.",
    ],
    "doc_example": ["Show a {lib} code example for {title}.", "How would I write code for {title} with {lib}?"],
}


def _pick(unit_key: str, kind: str) -> str:
    choices = PHRASINGS[kind]
    return choices[int(hashlib.sha256(f"{unit_key}|{kind}".encode()).hexdigest(), 16) % len(choices)]


def _task_phrase(summary: str) -> str:
    """Turn a docstring summary ("Open an envelope.") into a task ("open an envelope")."""
    task = summary.rstrip(".").strip()
    return task[:1].lower() + task[1:] if task else task


def _pair(
    unit: Unit, generator: str, question: str, answer: str, expect: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"unit": unit.key, "path": unit.path, "generator": generator}
    if expect:
        meta["expect"] = expect
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], "meta": meta}


def generate_pairs(unit: Unit, lib: str) -> list[dict[str, Any]]:
    """Deterministic instruction-response pairs for one unit."""
    pairs = []
    if unit.kind == "api":
        name, summary = unit.title, _first_paragraph(unit.text)
        code = f"```python\n{unit.signature}\n```"
        fmt = {"name": name, "lib": lib}
        pairs.append(_pair(unit, "signature", _pick(unit.key, "signature").format(**fmt), f"{code}\n\n{summary}"))
        pairs.append(
            _pair(
                unit,
                "purpose",
                _pick(unit.key, "purpose").format(**fmt),
                f"`{name}`: {unit.text.strip()}\n\nSignature:\n{code}",
            )
        )
        if summary:
            kind = "which_class" if unit.signature.startswith("class ") else "which"
            question = _pick(unit.key, kind).format(lib=lib, task=_task_phrase(summary))
            pairs.append(
                _pair(
                    unit,
                    "which",
                    question,
                    f"Use `{name}`:\n{code}\n\n{summary}",
                    expect={"name": name.rsplit(".", 1)[-1], "params": list(unit.params)},
                )
            )
        if unit.params:
            pairs.append(
                _pair(
                    unit,
                    "params",
                    _pick(unit.key, "params").format(**fmt),
                    f"`{name}` takes: {', '.join(f'`{p}`' for p in unit.params)}.\n\n{code}",
                )
            )
        for example in unit.examples:
            pairs.append(_pair(unit, "example", _pick(unit.key, "example").format(**fmt), f"```python\n{example}\n```"))
    else:
        fmt = {"title": unit.title, "lib": lib}
        pairs.append(_pair(unit, "doc", _pick(unit.key, "doc").format(**fmt), unit.text))
        for example in unit.examples:
            pairs.append(
                _pair(unit, "doc_example", _pick(unit.key, "doc_example").format(**fmt), f"```python\n{example}\n```")
            )
    return pairs


def is_held_out(unit_key: str, share: float) -> bool:
    """Stable per-unit split: the same key lands on the same side in every version."""
    return int(hashlib.sha256(unit_key.encode()).hexdigest()[:8], 16) / 0x100000000 < share


def split_units(units: list[Unit], share: float) -> tuple[list[Unit], list[Unit]]:
    held = {u.key for u in units if is_held_out(u.key, share)}
    # A tiny library may hash no symbol into the eval side: then hold out the one with the smallest hash, so
    # there is always at least one API question the model never trained on.
    if not any(k.startswith("api:") for k in held):
        api = sorted((u for u in units if u.kind == "api"), key=lambda u: hashlib.sha256(u.key.encode()).hexdigest())
        held.update(u.key for u in api[:1])
    return [u for u in units if u.key not in held], [u for u in units if u.key in held]


# -- dataset versions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    library: str
    version: int
    commit: str
    path: str
    n_train: int
    n_eval: int
    status: str  # "built", "unchanged" (doc surface as before) or "existing" (same content as before)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def build(library: LibraryConfig, settings: Settings, *, commit: str | None = None, force: bool = False) -> DatasetInfo:
    """Check out ``commit`` (default: the branch head) and build a new dataset version if its doc surface
    changed since the latest version, or if ``force``."""
    from doctune.registry import Registry
    from doctune.sources import sync_repository

    registry = Registry.open(settings)
    tree, commit = sync_repository(library, settings, commit)
    surface = extract(tree, library)
    latest = registry.latest_dataset(library.name)
    if latest and latest.surface_hash == surface.fingerprint and not force:
        log.info(
            "doc surface of %s unchanged since dataset v%d (commit %s): skipping corpus, training, "
            "evaluation and deployment",
            library.name,
            latest.version,
            latest.commit[:12],
        )
        return DatasetInfo(
            library.name, latest.version, latest.commit, latest.path, latest.n_train, latest.n_eval, "unchanged"
        )

    train_units, eval_units = split_units(surface.units, library.eval_share)
    lib = library.import_name
    train_rows = [p for u in train_units for p in generate_pairs(u, lib)]
    eval_rows = [p for u in eval_units for p in generate_pairs(u, lib)]
    for row in train_rows + eval_rows:
        row["meta"]["commit"] = commit
    train_bytes, eval_bytes = _jsonl(train_rows), _jsonl(eval_rows)
    content_hash = hashlib.sha256(train_bytes + b"\0" + eval_bytes).hexdigest()
    if latest and latest.content_hash == content_hash:
        log.info("%s: pairs identical to dataset v%d; reusing it", library.name, latest.version)
        return DatasetInfo(
            library.name, latest.version, latest.commit, latest.path, latest.n_train, latest.n_eval, "existing"
        )

    version = registry.next_dataset_version(library.name)
    root = settings.path("datasets", library.name)
    staging = root / f".staging-v{version}-{os.getpid()}"
    final = root / f"v{version}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    manifest = {
        "library": library.name,
        "version": version,
        "parent": latest.version if latest else None,
        "commit": commit,
        "surface_hash": surface.fingerprint,
        "content_hash": content_hash,
        "n_train": len(train_rows),
        "n_eval": len(eval_rows),
        "units": {"train": len(train_units), "eval": len(eval_units)},
        "generators": dict(Counter(r["meta"]["generator"] for r in train_rows + eval_rows)),
        "skipped_files": surface.skipped,
        "eval_share": library.eval_share,
    }
    try:
        _write_durably(staging / "train.jsonl", train_bytes)
        _write_durably(staging / "eval.jsonl", eval_bytes)
        _write_durably(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
        # The version becomes visible only as a whole: rename the finished folder, then register it.
        if final.exists():  # left by a crash between rename and register: it was never registered
            shutil.rmtree(final)
        staging.rename(final)
        registry.add_dataset(
            library=library.name,
            version=version,
            commit=commit,
            surface_hash=surface.fingerprint,
            content_hash=content_hash,
            path=str(final),
            n_train=len(train_rows),
            n_eval=len(eval_rows),
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    log.info(
        "dataset v%d of %s: %d train / %d eval pairs from commit %s",
        version,
        library.name,
        len(train_rows),
        len(eval_rows),
        commit[:12],
    )
    return DatasetInfo(library.name, version, commit, str(final), len(train_rows), len(eval_rows), "built")


def load_rows(dataset_path: str | Path, split: str) -> list[dict[str, Any]]:
    path = Path(dataset_path) / f"{split}.jsonl"
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise DoctuneError(f"cannot read {path}: {exc}; rebuild it with `doctune corpus build`") from exc
