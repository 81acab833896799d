"""Names, in the symbol table and in code: re-exports followed, what an import binds to the library, a name as a
whole identifier, a summary without markup, and code that parses or not."""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Mapping
from typing import Any

CALLABLE_KINDS = ("function", "method", "class")
BUILTIN_NAMES = frozenset(dir(builtins))


def _lookup(name: str, symbols: Mapping[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The symbol ``name`` denotes after following re-exports, or None when it does not exist.

    A re-export whose target the table does not describe (or that loops) still exists: it is returned as is.
    """
    seen: set[str] = set()
    info = symbols.get(name)
    while info is not None and info.get("kind") == "alias" and name not in seen:
        seen.add(name)
        target = info["alias_of"]
        if target not in symbols:
            return name, info
        name, info = target, symbols[target]
    return None if info is None else (name, info)


def in_package(module: str | None, package: str) -> bool:
    return module is not None and (module == package or module.startswith(package + "."))


def _import_bindings(node: ast.Import | ast.ImportFrom, package: str) -> tuple[dict[str, str], set[str]]:
    """What an import statement binds to the library (local name -> path) and the library paths it imports:
    ``import pkg.mod`` binds ``pkg`` and imports ``pkg.mod``; ``from pkg.mod import f as g`` binds ``g``."""
    bindings: dict[str, str] = {}
    imported: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if in_package(alias.name, package):
                imported.add(alias.name)
                local = alias.asname or alias.name.split(".")[0]
                bindings[local] = alias.name if alias.asname else local
    elif node.level == 0 and in_package(node.module, package):
        imported.add(str(node.module))
        for alias in node.names:
            if alias.name != "*":
                bindings[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                imported.add(bindings[alias.asname or alias.name])
    return bindings, imported


def _word(name: str) -> re.Pattern[str]:
    """``name`` as a whole identifier: ``nibble`` matches in ``lk.nibble(`` but not in ``nibbles``."""
    return re.compile(rf"(?<!\w){re.escape(name)}(?!\w)")


def _plain(summary: str) -> str:
    """A docstring summary without reStructuredText markup: ``:func:`x``` and ````x```` become ```x```."""
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", summary).replace("``", "`")


def parse_or_none(code: str) -> ast.Module | None:
    """The module ``code`` parses to, or None: a model's answer may be anything, a null byte included (which
    Python before 3.12 rejects with ValueError, not SyntaxError), and too deep to parse."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
