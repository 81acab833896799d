"""Assembling a snippet from one test: its task in plain words, the checks that refuse it, the library API it
calls, the script in PEP 8 layout, and the API, ``usage_snippet`` and ``usage_snippets``."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from doctune.corpus.snippets.outcome import Refusal, Refused, Snippet
from doctune.corpus.snippets.rewrite import Rewrite
from doctune.corpus.snippets.tools import check_decorators, parameter_values, testing_tools, tool_use
from doctune.evaluate.suite.mining import ModuleContext, module_context
from doctune.evaluate.suite.scope import Scope, Stmt, free_names, pool_for, preamble_for
from doctune.evaluate.suite.symbols import parse_or_none
from doctune.reader.extract import Unit

MAX_BODY_LINES = 40  # a longer test is an integration scenario, not an example someone asks for
# Words that say "this is a test" rather than what the code shows: "test that", "checks", ...
FILLER = re.compile(r"^(?:(?:tests?|checks?|that)\b\s*)+", re.I)


def _task(function: ast.FunctionDef) -> str:
    """What the code shows, in plain words: the docstring's first line, else the test's name."""
    doc = (ast.get_docstring(function) or "").strip()
    if doc:
        words = " ".join(doc.splitlines()[0].split())
    else:
        words = " ".join(function.name.removeprefix("test").replace("_", " ").split()).lower()
    words = (FILLER.sub("", words) or words).rstrip(".").strip()
    first, _, rest = words.partition(" ")
    if first.isalpha() and first.istitle():  # "Nibble refuses" reads as a sentence start; "EnvelopeShelf" stays
        first = first.lower()
    return f"{first} {rest}".strip()


def _self_use(statements: Sequence[ast.stmt]) -> str | None:
    """Why the body still needs the test's ``self`` after the rewrite, or None when it does not (a class
    defined in the body has a ``self`` of its own)."""
    if "self" not in free_names(statements):
        return None
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                if node.attr.startswith(("assert", "fail", "skip")):
                    return f"uses unittest's self.{node.attr}, which has no plain-Python rewrite here"
                return f"reads self.{node.attr}: it depends on the state of its test class"
    return "uses self: it depends on its test class"


def _statements_in_order(node: ast.AST) -> Iterable[ast.stmt]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            yield child
        yield from _statements_in_order(child)


def _own_calls(stmt: ast.stmt) -> list[ast.Call]:
    """The calls in a statement itself, not in the statements nested in it, in the order their callee's name is
    written (``lk.RuleBook().pin(...)``: ``RuleBook`` before ``pin``)."""
    calls: list[ast.Call] = []
    pending: list[ast.AST] = [c for c in ast.iter_child_nodes(stmt) if not isinstance(c, ast.stmt)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Call):
            calls.append(node)
        pending += [c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.stmt)]
    return sorted(calls, key=lambda c: (c.func.end_lineno or 0, c.func.end_col_offset or 0))


def _called(module: ast.Module, import_name: str, symbols: Mapping[str, dict[str, Any]]) -> tuple[str, ...]:
    """The public callables the code calls, in the order it first names them. Variables holding library objects
    are followed, so ``shelf.pluck(...)`` counts as ``EnvelopeShelf.pluck``."""
    scope = Scope(import_name, symbols)
    found: list[str] = []
    for stmt in _statements_in_order(module):
        for call in _own_calls(stmt):
            if (symbol := scope.target(call.func)) and symbol not in found:
                found.append(symbol)
        scope.bind(stmt)
    return tuple(found)


def _imports_standard_library(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        module = node.names[0].name
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
        module = node.module or ""
    else:
        return False
    return module.split(".")[0] in sys.stdlib_module_names


def _assemble(preamble: list[Stmt], parameters: list[Stmt], body: list[str]) -> str:
    """The script in PEP 8 layout: standard-library imports, the other imports, module constants and helpers
    (two blank lines around a def or class), the parameter values, then the body."""
    chunks: list[tuple[str, str]] = []  # (kind, text)
    imports = [s for s in preamble if isinstance(s.node, ast.Import | ast.ImportFrom)]
    standard = [s for s in imports if _imports_standard_library(s.node)]
    chunks += [("imports", s.source) for s in sorted(standard, key=lambda s: s.source.split()[1])]
    chunks += [("other imports", s.source) for s in imports if s not in standard]
    for stmt in preamble:
        if isinstance(stmt.node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            chunks.append(("def", stmt.source))
        elif stmt not in imports:
            chunks.append(("constants", stmt.source))
    chunks += [("parameters", s.source) for s in parameters]
    chunks.append(("body", "\n".join(body)))
    code = chunks[0][1]
    for (previous, _), (kind, text) in zip(chunks, chunks[1:], strict=False):
        if kind == previous != "def":
            code += "\n" + text
        else:
            code += ("\n\n\n" if "def" in (previous, kind) else "\n\n") + text
    return code + "\n"


# -- the API ------------------------------------------------------------------------------------------------------


def _snippet(
    unit: Unit,
    import_name: str,
    symbols: Mapping[str, dict[str, Any]],
    tree: Path | None,
    modules: dict[str, ModuleContext],
) -> Snippet:
    module = parse_or_none(unit.text)
    function = module.body[0] if module and module.body else None
    if isinstance(function, ast.AsyncFunctionDef):
        raise Refused("is an async test: it needs the event loop its plugin provides")
    if not isinstance(function, ast.FunctionDef):
        raise Refused("is not a test function that parses")
    context = module_context(tree, unit.path, modules)
    tools = testing_tools(context.pool)
    decorators = context.decorators.get(function.name, [])
    check_decorators(decorators, tools)
    parameters = parameter_values(function, decorators, tools, context if tree is not None else None)
    has_docstring = ast.get_docstring(function) is not None
    body = function.body[1:] if has_docstring else function.body
    if not body:
        raise Refused("has nothing but a docstring")
    length = (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1
    if length > MAX_BODY_LINES:
        raise Refused(f"is {length} lines long, not a short example (at most {MAX_BODY_LINES})")
    rewrite = Rewrite(unit.text, function, tools)
    statements = rewrite.body(body)
    if reason := _self_use(statements):
        raise Refused(reason)
    nodes = [*(p.node for p in parameters), *statements]
    preamble, unbound = preamble_for(pool_for(nodes, context.pool, import_name, symbols), free_names(nodes))
    definitions = [s.node for s in preamble if not isinstance(s.node, ast.Import | ast.ImportFrom)]
    if tool := tool_use([*nodes, *definitions], tools):
        raise Refused(f"needs {tool}, a testing tool with no plain-Python rewrite")
    if unbound:
        where = "its module" if tree is not None else "its module (not read: no checkout given)"
        raise Refused(f"uses {', '.join(sorted(unbound))}, defined neither in the test nor in {where}")
    header_end = function.body[0].end_lineno if has_docstring else function.lineno
    code = _assemble(preamble, parameters, rewrite.emit(statements, header_end))
    parsed = parse_or_none(code)
    if parsed is None:  # every statement was checked to parse back; this is the safety net for the layout
        code = _assemble(preamble, parameters, [ast.unparse(s) for s in statements])
        parsed = ast.parse(code)
    called = _called(parsed, import_name, symbols)
    if not called:
        raise Refused(f"calls no public API of {import_name}")
    return Snippet(unit.key, _task(function), code, called)


def _attempt(
    unit: Unit,
    import_name: str,
    symbols: Mapping[str, dict[str, Any]],
    tree: Path | None,
    modules: dict[str, ModuleContext],
) -> Snippet | Refusal:
    if unit.kind != "example":
        return Refusal(unit.key, f"is a {unit.kind} unit, not a test")
    try:
        return _snippet(unit, import_name, symbols, tree, modules)
    except Refused as refused:
        return Refusal(unit.key, str(refused))


def usage_snippet(
    unit: Unit, import_name: str, symbols: dict[str, dict[str, Any]], tree: Path | None
) -> Snippet | Refusal:
    """The usage example a test (an example unit) shows, or why it cannot become one.

    ``tree`` is the checkout the unit was read from: with it, the snippet borrows the test module's imports,
    constants and helpers, and its parametrize values; without it, imports are guessed from usage, and a test
    that needs a module constant or parametrize values is refused.
    """
    return _attempt(unit, import_name, symbols, tree, {})


def usage_snippets(
    units: Iterable[Unit], import_name: str, symbols: dict[str, dict[str, Any]], tree: Path | None
) -> tuple[list[Snippet], list[Refusal]]:
    """``usage_snippet`` for every example unit of ``units`` (others are skipped), reading each test module
    once."""
    modules: dict[str, ModuleContext] = {}
    snippets: list[Snippet] = []
    refusals: list[Refusal] = []
    for unit in units:
        if unit.kind == "example":
            result = _attempt(unit, import_name, symbols, tree, modules)
            if isinstance(result, Snippet):
                snippets.append(result)
            else:
                refusals.append(result)
    return snippets, refusals
