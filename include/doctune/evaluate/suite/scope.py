"""What the statements of a test or doc example bind and read, what the library names in them denote, and
which module-level bindings (or guessed imports) a task's setup needs."""

from __future__ import annotations

import ast
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doctune.evaluate.suite.symbols import BUILTIN_NAMES, CALLABLE_KINDS, _import_bindings, _lookup
from doctune.reader.pyapi import module_name


@dataclass
class Stmt:
    node: ast.stmt
    source: str  # as written (comments and layout kept), dedented


def _statements(source: str, nodes: Iterable[ast.stmt]) -> list[Stmt]:
    out = []
    for node in nodes:
        segment = ast.get_source_segment(source, node)
        # Later lines of a statement keep their original indentation, the first does not: re-indent, dedent.
        text = textwrap.dedent(" " * node.col_offset + segment) if segment else ""
        try:
            ast.parse(text)
        except SyntaxError:
            text = ast.unparse(node)
        out.append(Stmt(node, text))
    return out


def bound_names(node: ast.AST) -> set[str]:
    """Names a statement (or any node) binds anywhere inside it."""
    names: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store | ast.Del):
            names.add(inner.id)
        elif isinstance(inner, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in inner.names if a.name != "*")
        elif isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(inner.name)
        elif isinstance(inner, ast.arg):
            names.add(inner.arg)
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            names.add(inner.name)
    return names


def read_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def free_names(nodes: Sequence[ast.AST]) -> set[str]:
    """Names the code reads but neither binds nor gets from builtins (flow-insensitive, which is enough here)."""
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in nodes:
        loaded |= read_names(node)
        bound |= bound_names(node)
    return loaded - bound - BUILTIN_NAMES


def _is_binding(node: ast.stmt) -> bool:
    """Module-level statements a task's setup may borrow: imports, constants, helpers (never tests or fixtures)."""
    if isinstance(node, ast.ImportFrom):
        return node.module != "__future__"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return not node.name.startswith("test") and not node.decorator_list
    if isinstance(node, ast.ClassDef):
        return not node.name.startswith("Test")
    return isinstance(node, ast.Import | ast.Assign | ast.AnnAssign)


class Scope:
    """What names mean in a snippet read in order: library paths bound by imports, and the library class of
    variables assigned from a constructor or from a function annotated to return one (for method calls)."""

    def __init__(self, import_name: str, symbols: Mapping[str, dict[str, Any]]) -> None:
        self.import_name = import_name
        self.symbols = symbols
        self.paths: dict[str, str] = {}
        self.types: dict[str, str] = {}

    def bind(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            self.paths.update(_import_bindings(node, self.import_name)[0])
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
            pairs = [(target, value)]
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                pairs = list(zip(target.elts, value.elts, strict=True))  # a, b = lk.X(...), lk.X(...)
            for name, expr in pairs:
                if isinstance(name, ast.Name):
                    self.paths.pop(name.id, None)
                    self.types.pop(name.id, None)
                    if kind := self.type_of(expr):
                        self.types[name.id] = kind

    def path_of(self, expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            return self.paths.get(expr.id)
        if isinstance(expr, ast.Attribute) and (base := self.path_of(expr.value)):
            return f"{base}.{expr.attr}"
        return None

    def target(self, func: ast.expr) -> str | None:
        """The public symbol a callee expression names (re-exports followed), or None."""
        path = self.path_of(func)
        if path is None and isinstance(func, ast.Attribute) and (owner := self.type_of(func.value)):
            path = f"{owner}.{func.attr}"
        found = _lookup(path, self.symbols) if path else None
        return found[0] if found and found[1].get("kind") in CALLABLE_KINDS else None

    def type_of(self, expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            return self.types.get(expr.id)
        if isinstance(expr, ast.Call) and (symbol := self.target(expr.func)):
            if self.symbols[symbol]["kind"] == "class":
                return symbol
            return self._returned_class(symbol)
        return None

    def _returned_class(self, symbol: str) -> str | None:
        """The class a function's return annotation names, looked up in its module, then by unique short name."""
        info = self.symbols[symbol]
        try:
            stub = ast.parse(info.get("signature", ""))
        except SyntaxError:
            return None
        function = next((n for n in ast.walk(stub) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
        returns = function.returns if function else None
        if isinstance(returns, ast.Constant) and isinstance(returns.value, str):
            name = returns.value
        elif isinstance(returns, ast.Name):
            name = returns.id
        else:
            return None
        local = _lookup(f"{module_name(info['path'])}.{name}", self.symbols)
        if local and local[1].get("kind") == "class":
            return local[0]
        matches = [q for q, i in self.symbols.items() if i.get("kind") == "class" and q.rsplit(".", 1)[-1] == name]
        return matches[0] if len(matches) == 1 else None


def _guess_import(name: str, attributes: set[str], import_name: str, symbols: Mapping[str, dict[str, Any]]) -> str:
    """An import for a name a snippet uses without binding it (its module's imports are not at hand), or ""."""
    if name == import_name or name in sys.stdlib_module_names or name == "pytest":
        return f"import {name}"
    if any(f"{import_name}.{attribute}" in symbols for attribute in attributes):
        return f"import {import_name} as {name}"
    if f"{import_name}.{name}" in symbols:
        return f"from {import_name} import {name}"
    return ""


def pool_for(snippet: Sequence[ast.stmt], pool: list[Stmt], import_name: str, symbols: Mapping[str, Any]) -> list[Stmt]:
    """``pool`` plus guessed imports for what the snippet uses that nothing in the pool binds."""
    missing = free_names(snippet) - set().union(*(bound_names(s.node) for s in pool))
    guessed = []
    for name in sorted(missing):
        attributes = {
            n.attr
            for node in snippet
            for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == name
        }
        if line := _guess_import(name, attributes, import_name, symbols):
            guessed.append(Stmt(ast.parse(line).body[0], line))
    return guessed + pool


def preamble_for(pool: list[Stmt], needed: set[str]) -> tuple[list[Stmt], set[str]]:
    """The pool statements that (transitively) bind ``needed``, in pool order, and the names still unbound."""
    chosen: list[int] = []
    needed = set(needed)
    changed = True
    while changed:
        changed = False
        for i, stmt in enumerate(pool):
            if i not in chosen and bound_names(stmt.node) & needed:
                chosen.append(i)
                needed |= free_names([stmt.node])
                changed = True
    picked = [pool[i] for i in sorted(chosen)]
    bound = set().union(*(bound_names(s.node) for s in picked))
    return picked, needed - bound - BUILTIN_NAMES
