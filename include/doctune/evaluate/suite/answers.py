"""Reading model answers: the code in them, the library names they refer to, and which of those do not exist
(hallucinated: references to ``<package>.*`` names missing at the evaluated commit)."""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from doctune.evaluate.suite.symbols import BUILTIN_NAMES, _import_bindings, _lookup, parse_or_none

PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})
FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
MAX_SALVAGE_LINES = 100  # searching a longer answer line range by line range for code costs more than it finds


def extract_code(answer: str) -> str:
    """The code in a model answer.

    Fenced blocks win (Python-tagged or untagged ones, joined; other tags only when there is nothing else; a
    block cut off by the token limit counts up to the end). Without fences, the bare text if it parses; else the
    widest run of lines that parses (prose before or after code), else the text unchanged, so the sandbox
    reports the syntax error.
    """
    blocks = [(tag.lower(), body) for tag, body in FENCE.findall(answer)]
    if blocks:
        chosen = [body for tag, body in blocks if tag in PYTHON_TAGS] or [body for _, body in blocks]
        return "\n\n".join(textwrap.dedent(body).strip("\n") for body in chosen)
    text = textwrap.dedent(answer).strip("\n")
    lines = text.splitlines()
    if parse_or_none(text) is not None or len(lines) > MAX_SALVAGE_LINES:
        return text
    for start in range(len(lines)):
        for end in range(len(lines), start, -1):
            piece = textwrap.dedent("\n".join(lines[start:end])).strip("\n")
            if piece.strip() and parse_or_none(piece) is not None:
                return piece
    return text


def _imports(text: str, import_name: str) -> tuple[dict[str, str], set[str]]:
    """Import statements of the library in ``text``, found by pattern (so they are also found in prose and in
    code that does not parse): local name -> library path, and every path imported."""
    package = re.escape(import_name)
    aliases = {import_name: import_name}
    paths: set[str] = set()
    for match in re.finditer(rf"\bimport\s+({package}(?:\.\w+)*)(?:\s+as\s+(\w+))?", text):
        paths.add(match[1])
        if match[2]:
            aliases[match[2]] = match[1]
    for match in re.finditer(rf"\bfrom\s+({package}(?:\.\w+)*)\s+import\s+\(?([\w \t,]+)", text):
        paths.add(match[1])
        for item in match[2].split(","):
            parts = item.split()
            if parts and parts[0] != "*":
                local = parts[2] if len(parts) == 3 and parts[1] == "as" else parts[0]
                aliases[local] = f"{match[1]}.{parts[0]}"
                paths.add(aliases[local])
    return aliases, paths


def _names_in_code(tree: ast.Module, import_name: str) -> set[str]:
    """Library names a parsed piece of code refers to: what it imports and the attribute chains it reads off
    imported names (``lk.EnvelopeShelf.pluck``), with import aliases resolved."""
    names: set[str] = set()
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            bindings, imported = _import_bindings(node, import_name)
            bound.update(bindings)
            names |= imported
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            chain: list[str] = []
            base: ast.expr = node
            while isinstance(base, ast.Attribute):
                chain.insert(0, base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                names.add(".".join([bound[base.id], *chain]))
    return names


def _names_in_prose(text: str, import_name: str, aliases: Mapping[str, str]) -> set[str]:
    """Library names in text that is not parseable code: dotted uses of the package or an alias it was imported
    as (``lk.gobble``), and backticked calls of a bare name (```gobble(pot)```), which claim a library function
    exists unless they are builtins; and what its import statements import."""
    names = _imports(text, import_name)[1]
    alternatives = "|".join(re.escape(a) for a in sorted(aliases, key=len, reverse=True))
    for match in re.finditer(rf"(?<![\w.])({alternatives})((?:\.[A-Za-z_]\w*)+)", text):
        names.add(aliases[match[1]] + match[2])
    for span in re.findall(r"`([^`\n]+)`", text):
        call = re.match(r"\s*([A-Za-z_]\w*)\s*\(", span)
        if call and call[1] not in BUILTIN_NAMES and call[1] not in aliases:
            names.add(f"{import_name}.{call[1]}")
    return names


def referenced_names(text: str, import_name: str) -> set[str]:
    """Qualified names of the library that an answer refers to, as written (aliases of imports resolved).

    Code that parses (each fenced block, or the whole answer when it has no fences) is read with the AST:
    ``import ledgerkite as lk`` / ``from ledgerkite.envelopes import X as Y`` are resolved, and every attribute
    chain off an imported name counts in full (``lk.EnvelopeShelf.pluck``); strings and comments do not count.
    Everything else (prose, code that does not parse) is read by pattern: dotted names off the package or an
    alias some import in the answer binds, and backticked calls of bare names, taken to mean ``<package>.name``.
    Variables holding library objects are not followed (``shelf.grab()`` is not attributed to a class).
    """
    aliases = _imports(text, import_name)[0]  # an alias bound in a code block is used in the prose too
    names: set[str] = set()
    blocks = [body for _, body in FENCE.findall(text)]
    prose = FENCE.sub("\n", text) if blocks else ""
    for block in blocks or [text]:
        module = parse_or_none(textwrap.dedent(block))
        if module is not None:
            names |= _names_in_code(module, import_name)
        else:
            names |= _names_in_prose(block, import_name, aliases)
    return names | _names_in_prose(prose, import_name, aliases)


def _missing(name: str, symbols: Mapping[str, dict[str, Any]]) -> str | None:
    """The shortest prefix of ``name`` that does not exist, or None when it does.

    Walks the name part by part through modules and classes, following re-exports. Below a function, method or
    attribute, parts are attributes of values the table does not describe, so they are not judged; nor are
    private or dunder parts, which the symbol table (public API only) does not record.
    """
    parts = name.split(".")
    current = _lookup(parts[0], symbols)
    if current is None:
        return parts[0]
    for i, part in enumerate(parts[1:], 1):
        if part.startswith("_") or current[1].get("kind") not in ("module", "class"):
            return None
        current = _lookup(f"{current[0]}.{part}", symbols)
        if current is None:
            return ".".join(parts[: i + 1])
    return None


def hallucinated(text: str, import_name: str, symbols: dict[str, dict[str, Any]]) -> set[str]:
    """The library names an answer refers to that do not exist at the evaluated commit (as first missing part:
    ``lk.gobble.x`` counts as ``ledgerkite.gobble``). Deprecated names still exist; removed ones do not; a name
    under a class exists only if the symbol table records it (``EnvelopeShelf.pluck`` yes, ``.grab`` no)."""
    return {m for name in referenced_names(text, import_name) if (m := _missing(name, symbols))}
