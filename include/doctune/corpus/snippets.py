"""Turn a library's tests into the short usage examples a developer would actually ask for.

A test shows how the library is meant to be used, wrapped in what only pytest needs: ``def test_...``, fixtures,
``@pytest.mark`` decorators, ``pytest.raises`` blocks, ``self``. ``usage_snippet`` rewrites one test (an
"example" unit) into a self-contained module-level script: the imports, constants and helpers of the test module
that it uses, the first parametrize set as plain assignments, then the test body with the pytest scaffolding
replaced by plain Python:

- ``with pytest.raises(E) as info:`` (or ``self.assertRaises(E)``) becomes ``try:``/``except E as error:``
  printing the error; the statements right after the block that read ``info.value`` move into the ``except``;
- ``a == pytest.approx(b)`` becomes ``math.isclose(a, b, rel_tol=1e-6)``;
- ``with pytest.warns(W):`` becomes ``warnings.catch_warnings(record=True)`` with every warning recorded;
- ``self.assertEqual(a, b)`` and its plain relatives become ``assert`` statements;
- ``tmp_path`` becomes a fresh temporary folder.

What cannot be rewritten honestly (fixtures, ``self.<state>``, mocks, ``pytest.skip``, a test longer than a short
example) is refused with a reason rather than turned into code that misleads. Statements the rewrite does not
touch are copied as written, comments and layout included. ``verify_snippets`` then runs each snippet against
the library in the sandbox.
"""

from __future__ import annotations

import ast
import copy
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from doctune.corpus.extract import Unit
from doctune.evaluate.suite import (
    VALIDATION_WORKERS,
    _bound,
    _first_parameters,
    _free,
    _in_package,
    _loaded,
    _parsed,
    _pool_for,
    _preamble,
    _Scope,
    _Stmt,
    _test_module,
    _TestModule,
)
from doctune.sandbox import SandboxResult, run_python

MAX_BODY_LINES = 40  # a longer test is an integration scenario, not an example someone asks for
RUN_TIMEOUT = 10.0
TMP_PATH = "tmp_path = pathlib.Path(tempfile.mkdtemp())"  # the one fixture a plain script can stand in for
ERROR_REPORT = 'print(f"{type(error).__name__}: {error}")'
RECORD_ALL = 'warnings.simplefilter("always")'
# Names that mean a testing tool even when the test module's imports are not at hand.
TOOL_NAMES = frozenset({"pytest", "mock", "unittest", "monkeypatch", "capsys", "caplog", "mocker"})
TOOL_MODULES = ("pytest", "unittest", "mock", "pytest_mock")
# Words that say "this is a test" rather than what the code shows: "test that", "checks", ...
FILLER = re.compile(r"^(?:(?:tests?|checks?|that)\b\s*)+", re.I)
MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
# unittest assertions that say the same as a plain ``assert``: method -> its test, on the method's arguments.
UNITTEST_ASSERTS = {
    "assertEqual": "{0} == {1}",
    "assertNotEqual": "{0} != {1}",
    "assertIn": "{0} in {1}",
    "assertNotIn": "{0} not in {1}",
    "assertIs": "{0} is {1}",
    "assertIsNot": "{0} is not {1}",
    "assertGreater": "{0} > {1}",
    "assertGreaterEqual": "{0} >= {1}",
    "assertLess": "{0} < {1}",
    "assertLessEqual": "{0} <= {1}",
    "assertIsInstance": "isinstance({0}, {1})",
    "assertNotIsInstance": "not isinstance({0}, {1})",
    "assertIsNone": "{0} is None",
    "assertIsNotNone": "{0} is not None",
    "assertTrue": "{0}",
    "assertFalse": "not {0}",
}
RAISES = {"raises": "value", "assertRaises": "exception", "assertRaisesRegex": "exception"}  # -> attribute
WARNS = frozenset({"warns", "deprecated_call"})


@dataclass(frozen=True)
class Snippet:
    """A usage example made from one test: ``task`` says in plain words what ``code`` shows."""

    unit: str  # the key of the example unit it was made from
    task: str  # e.g. "nibble refuses to overdraw"
    code: str  # a self-contained script that parses
    symbols: tuple[str, ...]  # the library's public callables it calls, qualified, aliases resolved, first use first
    verified: bool | None = None  # True: ran without error in the sandbox; None: not run (yet)
    note: str = ""  # why it was not run, once verification has tried ("not run: needs numpy")


@dataclass(frozen=True)
class Refusal:
    """A test that cannot be turned into an honest snippet, and why."""

    unit: str
    reason: str


class Verification(NamedTuple):
    """What ``verify_snippets`` found; unpacks as ``kept, dropped, not_run``."""

    kept: list[Snippet]  # verified (True) or not runnable here (None, with a note)
    dropped: list[tuple[Snippet, str]]  # failed at run time, with the last line of the error
    not_run: str  # why nothing ran at all (the library does not import in the sandbox), else ""


class _Refused(Exception):
    """Raised anywhere in the rewrite; ``usage_snippet`` turns it into a Refusal."""


# -- what the test module says about a test ----------------------------------------------------------------------


def _tool_is(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in TOOL_MODULES)


def _test_tools(pool: Iterable[_Stmt]) -> dict[str, str]:
    """Names that stand for testing tools -> what they are: ``pytest`` -> "pytest", and after
    ``from pytest import approx`` also ``approx`` -> "pytest.approx"."""
    tools = {name: name for name in TOOL_NAMES}
    for stmt in pool:
        node = stmt.node
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _tool_is(alias.name):
                    local = alias.asname or alias.name.split(".")[0]  # `import unittest.mock` binds unittest
                    tools[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _tool_is(node.module or ""):
            for alias in node.names:
                tools[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return tools


def _pytest_attr(func: ast.expr, tools: Mapping[str, str]) -> str | None:
    """The pytest function a callee names ("raises" for ``pytest.raises`` or an imported ``raises``), or None."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and tools.get(func.value.id) == "pytest":
        return func.attr
    if isinstance(func, ast.Name) and tools.get(func.id, "").startswith("pytest."):
        return tools[func.id].removeprefix("pytest.")
    return None


def _dotted(node: ast.expr, tools: Mapping[str, str]) -> str:
    """A decorator's name with its first part resolved through the module's imports: "pytest.mark.xfail"."""
    head, _, rest = ast.unparse(node.func if isinstance(node, ast.Call) else node).partition(".")
    return ".".join(filter(None, [tools.get(head, head), rest]))


def _parametrized_names(decorators: Sequence[ast.expr], tools: Mapping[str, str]) -> set[str]:
    """The argument names ``@pytest.mark.parametrize`` decorators supply."""
    names: set[str] = set()
    for decorator in decorators:
        if not (isinstance(decorator, ast.Call) and _dotted(decorator, tools) == "pytest.mark.parametrize"):
            continue
        spec = decorator.args[0] if decorator.args else None
        if isinstance(spec, ast.Constant) and isinstance(spec.value, str):
            names |= {n.strip() for n in spec.value.split(",") if n.strip()}
        elif isinstance(spec, ast.List | ast.Tuple):
            names |= {e.value for e in spec.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return names


def _check_decorators(decorators: Sequence[ast.expr], tools: Mapping[str, str]) -> None:
    """Marks go; what changes the meaning of the test (xfail, skip, usefixtures, patches) refuses it."""
    for decorator in decorators:
        name = _dotted(decorator, tools)
        if not name.startswith("pytest.mark."):
            raise _Refused(f"is decorated with @{ast.unparse(decorator)}, which a plain script cannot reproduce")
        mark = name.removeprefix("pytest.mark.")
        if mark in ("xfail", "skip"):
            raise _Refused(f"is marked {mark}: its code is not known to work")
        if mark == "usefixtures" and isinstance(decorator, ast.Call):
            used = [a.value if isinstance(a, ast.Constant) else ast.unparse(a) for a in decorator.args]
            raise _Refused(f"uses the fixture{'s' if len(used) > 1 else ''} {', '.join(map(str, used))}")


def _with_constant_sets(decorators: list[ast.expr], tools: Mapping[str, str], pool: Sequence[_Stmt]) -> list[ast.expr]:
    """The decorators with parameter sets kept in a module constant (``parametrize("a, b", CASES)``) written
    out: the constant's value, when it is a list or tuple."""
    constants = {
        stmt.node.targets[0].id: stmt.node.value
        for stmt in pool
        if isinstance(stmt.node, ast.Assign)
        and len(stmt.node.targets) == 1
        and isinstance(stmt.node.targets[0], ast.Name)
        and isinstance(stmt.node.value, ast.List | ast.Tuple)
    }
    out = []
    for decorator in decorators:
        if (
            isinstance(decorator, ast.Call)
            and _dotted(decorator, tools) == "pytest.mark.parametrize"
            and len(decorator.args) > 1
            and isinstance(sets := decorator.args[1], ast.Name)
            and sets.id in constants
        ):
            decorator = copy.copy(decorator)
            decorator.args = [decorator.args[0], constants[sets.id], *decorator.args[2:]]
        out.append(decorator)
    return out


def _taking(function: ast.FunctionDef, names: list[str]) -> ast.FunctionDef:
    """``function`` as if it took only ``names`` (what evalsuite's parametrize reader expects)."""
    narrowed = copy.copy(function)
    narrowed.args = ast.arguments(
        posonlyargs=[], args=[ast.arg(arg=n) for n in names], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    return narrowed


def _parameter_values(
    function: ast.FunctionDef, decorators: list[ast.expr], tools: Mapping[str, str], context: _TestModule | None
) -> list[_Stmt]:
    """Assignments that stand for the test's parameters: its first parametrize set, then ``tmp_path``.
    Without the test module (``context`` None) the decorators are unknown, so a parameter may be either."""
    arguments = function.args
    if arguments.vararg or arguments.kwarg:
        raise _Refused("takes *args or **kwargs")
    names = [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]
    if names[:1] == ["self"]:
        names = names[1:]  # a method's own receiver; what it reads off self is refused later
    parametrized = _parametrized_names(decorators, tools)
    fixtures = [n for n in names if n not in parametrized and n != "tmp_path"]
    if fixtures:
        plural = "s" if len(fixtures) > 1 else ""
        unknown = "" if context is not None else " (or parametrize values: its module was not read)"
        raise _Refused(f"needs the fixture{plural} {', '.join(fixtures)}{unknown}")
    taken = [n for n in names if n in parametrized]
    try:
        written_out = _with_constant_sets(decorators, tools, context.pool if context else [])
        values = _first_parameters(_taking(function, taken), written_out) if taken else []
    except ValueError:  # argument names given as something other than string literals
        values = None
    if values is None:
        raise _Refused("its parametrize values are not written out as literals")
    if "tmp_path" in names:
        values.append(_Stmt(ast.parse(TMP_PATH).body[0], TMP_PATH))
    return values


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


# -- rewriting the body ----------------------------------------------------------------------------------------

Shown = Callable[[ast.expr], str]  # how an operand is written into a rewritten expression
_Node = TypeVar("_Node", bound=ast.AST)


def _grouped(node: ast.expr, text: str) -> str:
    """``text`` in parentheses where, as an operand of a comparison or ``not``, it would bind differently."""
    loose = isinstance(node, ast.BoolOp | ast.Compare | ast.IfExp | ast.Lambda | ast.NamedExpr) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
    )
    return f"({text})" if loose else text


def _unittest_assert_text(expr: ast.expr) -> Callable[[Shown], str] | None:
    """For ``self.assertEqual(a, b[, msg])`` and its plain relatives, how to write the equivalent ``assert``
    from the arguments; None for any other expression."""
    if not (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and isinstance(expr.func.value, ast.Name)
        and expr.func.value.id == "self"
        and expr.func.attr in UNITTEST_ASSERTS
        and all(k.arg == "msg" for k in expr.keywords)
    ):
        return None
    test = UNITTEST_ASSERTS[expr.func.attr]
    arguments = [*expr.args, *(k.value for k in expr.keywords)]
    arity = 2 if "{1}" in test else 1
    if len(arguments) not in (arity, arity + 1):
        return None
    operator_form = test != "{0}" and "isinstance" not in test  # "{0} == {1}", "not {0}": operands may need ()

    def written(show: Shown) -> str:
        operands = [_grouped(a, show(a)) if operator_form else show(a) for a in arguments[:arity]]
        message = f", {show(arguments[arity])}" if len(arguments) > arity else ""
        return f"assert {test.format(*operands)}{message}"

    return written


class _Rewrite:
    """Rewrites a test body into plain Python and prints it back as close to the source as the AST allows.

    Every node of the parsed test is remembered. What the rewrite makes in place of an expression or a simple
    statement (``math.isclose(...)``, ``error``, ``assert a == b``) is parsed from a text written from its
    operands' source, and keeps that text. An original statement is printed as its source with the spans of
    what was replaced inside it overwritten by those texts, if that parses back to the rewritten statement; a
    ``try`` made from ``with pytest.raises`` is printed from its parts, its children as above. Anything else
    is unparsed: the code stays right, only its comments and quoting are lost.
    """

    def __init__(self, source: str, function: ast.FunctionDef, tools: Mapping[str, str]) -> None:
        self.source = source.encode()  # ast offsets count UTF-8 bytes
        self.lines = source.split("\n")  # as the parser numbers lines (str.splitlines also breaks at \f and \v)
        self.line_starts = [0]
        for line in self.lines:
            self.line_starts.append(self.line_starts[-1] + len(line.encode()) + 1)
        self.tools = tools
        self.original = list(ast.walk(function))  # kept alive so that no new node can reuse an original's id
        self.original_ids = {id(node) for node in self.original}
        self.texts: dict[int, str] = {}  # nodes the rewrite made -> the text they were parsed from
        self.replacements: set[int] = set()  # statements made in place of one of the test's, at its position
        # Lines inside a multi-line string: moving the code out of the function must not change what they say.
        self.string_lines = {
            line
            for node in self.original
            if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
            for line in range(node.lineno + 1, (node.end_lineno or node.lineno) + 1)
        }
        used = {n.id for n in self.original if isinstance(n, ast.Name)}
        used |= {n.arg for n in self.original if isinstance(n, ast.arg)}
        self.error = "error"  # the caught exception's name, unless the test already uses that name
        while self.error in used:
            self.error += "_"

    # - rewriting -

    def body(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        approx = _Approx(self)
        return self.block([approx.visit(s) for s in statements])

    def replaced(self, made: _Node, text: str, original: ast.AST) -> _Node:
        """``made`` (which ``text`` parses to) at the position of what it replaces."""
        ast.copy_location(made, original)
        if isinstance(made, ast.stmt):
            self.replacements.add(id(made))
        self.texts[id(made)] = text
        return made

    def shown(self, node: ast.expr) -> str:
        """An operand of a rewritten expression: as written where possible, else unparsed."""
        return self.written(node) or ast.unparse(node)

    def rebuilt(self, build: Callable[[Shown], str], parse: Callable[[str], _Node | None]) -> tuple[_Node, str]:
        """What ``build`` writes from the operands as written, parsed; from unparsed operands where an operand
        as written only parsed where it stood."""
        text = build(self.shown)
        made = parse(text)
        if made is None:
            text = build(ast.unparse)
            made = parse(text)
        assert made is not None, text  # unparsed operands in a template that parses always parse
        return made, text

    def _in_place_of(self, made: ast.stmt, original: ast.stmt) -> ast.stmt:
        """A compound statement made in place of ``original``: printed from its parts."""
        self.replacements.add(id(ast.copy_location(made, original)))
        return made

    def _made(self, code: str) -> ast.stmt:
        """A statement the rewrite adds that stands for nothing in the test, printed as ``code``."""
        stmt = ast.parse(code).body[0]
        self.texts[id(stmt)] = code
        return stmt

    def block(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        rest = list(statements)
        while rest:
            stmt = rest.pop(0)
            for name in ("body", "orelse", "finalbody"):
                if isinstance(children := getattr(stmt, name, None), list):
                    setattr(stmt, name, self.block(children))
            for inner in [*getattr(stmt, "handlers", []), *getattr(stmt, "cases", [])]:
                inner.body = self.block(inner.body)
            if isinstance(stmt, ast.With) and (managed := self.context_manager(stmt, rest)):
                out.append(managed)
            elif isinstance(stmt, ast.Expr) and (assertion := _unittest_assert_text(stmt.value)):
                out.append(self.replaced(*self.rebuilt(assertion, _statement), stmt))
            else:
                out.append(stmt)
        return out

    def _kind(self, call: ast.expr) -> str | None:
        if not isinstance(call, ast.Call):
            return None
        if (
            isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "self"
            and call.func.attr in RAISES
        ):
            return call.func.attr
        return _pytest_attr(call.func, self.tools)

    def context_manager(self, stmt: ast.With, rest: list[ast.stmt]) -> ast.stmt | None:
        kinds = [self._kind(item.context_expr) for item in stmt.items]
        if not any(k in RAISES or k in WARNS for k in kinds):
            return None
        if len(stmt.items) > 1:
            raise _Refused("combines pytest.raises or pytest.warns with other context managers in one with")
        item, kind = stmt.items[0], kinds[0]
        assert isinstance(item.context_expr, ast.Call) and kind is not None
        if kind in WARNS:
            record = ast.parse("warnings.catch_warnings(record=True)", mode="eval").body
            recorded = ast.With([ast.withitem(record, item.optional_vars)], [self._made(RECORD_ALL), *stmt.body])
            return self._in_place_of(recorded, stmt)
        if not item.context_expr.args:
            raise _Refused(f"uses {kind} without an exception type")
        handler_body = [self._made(ERROR_REPORT.replace("error", self.error))]
        end: ast.stmt = stmt
        if item.optional_vars is not None:
            moved = self.caught_uses(item.optional_vars, RAISES[kind], rest)
            handler_body += moved
            end = moved[-1] if moved else stmt
        handler = ast.ExceptHandler(item.context_expr.args[0], self.error, handler_body)
        caught = self._in_place_of(ast.Try(stmt.body, [handler], [], []), stmt)
        caught.end_lineno = end.end_lineno  # the moved statements are part of it now, for the layout after it
        return caught

    def caught_uses(self, target: ast.expr, attribute: str, rest: list[ast.stmt]) -> list[ast.stmt]:
        """Take the statements right after the block that read the caught exception (``info.value``) off
        ``rest``, reading ``error`` instead; refuse when the exception info is used any other way or later."""
        if not isinstance(target, ast.Name):
            raise _Refused("unpacks what pytest.raises returns")
        name = target.id
        moved: list[ast.stmt] = []
        while rest and name in _loaded(rest[0]):
            moved.append(rest.pop(0))
        moved = self.block([_Rename(self, name, attribute).visit(s) for s in moved])
        if any(name in _loaded(s) for s in moved):
            raise _Refused(f"uses {name} for more than {name}.{attribute}")
        for later in rest:
            if name in _loaded(later):
                raise _Refused(f"uses {name} (what pytest.raises caught) after other statements")
            if name in _bound(later):
                break
        return moved

    # - printing -

    def _offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column

    def _span(self, node: ast.expr | ast.stmt) -> tuple[int, int]:
        """Where a node's text starts and ends in the source, in bytes."""
        end = self._offset(node.end_lineno or node.lineno, node.end_col_offset or 0)
        return self._offset(node.lineno, node.col_offset), end

    def _edits(self, node: ast.AST) -> list[ast.expr | ast.stmt] | None:
        """What the rewrite replaced inside an original node, each to be written as its text in the span of
        what it replaced; None when something inside changed that has no text of its own."""
        found: list[ast.expr | ast.stmt] = []
        for child in ast.iter_child_nodes(node):
            if id(child) in self.texts and isinstance(child, ast.expr | ast.stmt):
                found.append(child)
            elif id(child) not in self.original_ids or (inner := self._edits(child)) is None:
                return None
            else:
                found += inner
        return found

    def _spliced(self, start: int, end: int, edits: list[ast.expr | ast.stmt]) -> str:
        text = self.source[start:end]
        for edit in sorted(edits, key=self._span, reverse=True):  # from the end, so earlier offsets stay valid
            first, last = (offset - start for offset in self._span(edit))
            text = text[:first] + self.texts[id(edit)].encode() + text[last:]
        return text.decode()

    def written(self, node: ast.expr) -> str | None:
        """An expression as written, rewritten parts included; None when it has no written form."""
        if id(node) in self.texts:
            return self.texts[id(node)]
        edits = self._edits(node) if id(node) in self.original_ids else None
        return None if edits is None else self._spliced(*self._span(node), edits)

    def _outdented(self, text: str, first_line: int, column: int) -> list[str]:
        """Source lines starting at ``first_line``, moved ``column`` spaces left (lines inside a string stay)."""
        indent = " " * column
        return [
            line if first_line + i in self.string_lines else line.removeprefix(indent) if line.strip() else ""
            for i, line in enumerate(text.split("\n"))
        ]

    def statement_lines(self, stmt: ast.stmt) -> list[str] | None:
        """An original statement's source at column 0 (its whole lines, trailing comment included, unless it
        shares a line with another), with rewritten expressions replaced; None when that does not parse back
        to the statement."""
        edits = self._edits(stmt)
        if edits is None:
            return None
        end_line = stmt.end_lineno or stmt.lineno
        first, last = self.lines[stmt.lineno - 1].encode(), self.lines[end_line - 1].encode()
        after = last[stmt.end_col_offset :].strip()
        if first[: stmt.col_offset].strip() or (after and not after.startswith(b"#")):
            text = self._spliced(*self._span(stmt), edits)
        else:
            text = self._spliced(self.line_starts[stmt.lineno - 1], self.line_starts[end_line] - 1, edits)
        lines = self._outdented(text, stmt.lineno, stmt.col_offset)
        return lines if _same("\n".join(lines), stmt) else None

    def emit(self, statements: list[ast.stmt], after: int | None) -> list[str]:
        """The lines of a block at column 0, with the comments and blank lines between its statements (and
        before the first, from line ``after`` on: the block's header or the docstring)."""
        out: list[str] = []
        previous_end = after
        for stmt in statements:
            if previous_end is not None and self.located(stmt):
                between = self.lines[previous_end : stmt.lineno - 1]
                if all(not line.strip() or line.strip().startswith("#") for line in between):  # never moved code
                    indent = " " * stmt.col_offset
                    out += [line.removeprefix(indent) if line.strip() else "" for line in between]
            out += self.emit_one(stmt)
            previous_end = (stmt.end_lineno or stmt.lineno) if self.located(stmt) else None
        return out

    def located(self, stmt: ast.stmt) -> bool:
        """Whether the statement's position is one in the test's source (its own, or the one it replaced)."""
        return id(stmt) in self.original_ids or id(stmt) in self.replacements

    def emit_one(self, stmt: ast.stmt) -> list[str]:
        if id(stmt) in self.texts:
            # Written from its operands' source, whose later lines are indented as they stood in the test.
            text = self.texts[id(stmt)]
            moved_left = self._outdented(text, stmt.lineno, stmt.col_offset)
            return moved_left if _same("\n".join(moved_left), stmt) else text.split("\n")
        if id(stmt) in self.original_ids and (as_written := self.statement_lines(stmt)) is not None:
            return as_written
        if id(stmt) in self.replacements and isinstance(stmt, ast.Try):
            lines = ["try:", *self.indented(stmt.body, stmt.lineno)]
            for handler in stmt.handlers:
                assert handler.type is not None
                header = f"except {ast.unparse(handler.type)} as {handler.name}:"
                lines += [header, *self.indented(handler.body, None)]
            return lines
        if id(stmt) in self.replacements and isinstance(stmt, ast.With):
            header = f"with {', '.join(ast.unparse(i) for i in stmt.items)}:"
            return [header, *self.indented(stmt.body, stmt.lineno)]
        return ast.unparse(stmt).split("\n")

    def indented(self, statements: list[ast.stmt], after: int | None) -> list[str]:
        return [f"    {line}" if line else "" for line in self.emit(statements, after)]


def _statement(text: str) -> ast.stmt | None:
    module = _parsed(text)
    return module.body[0] if module is not None and len(module.body) == 1 else None


def _expression(text: str) -> ast.expr | None:
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError:
        return None


def _same(text: str, stmt: ast.stmt) -> bool:
    """Whether ``text`` parses to ``stmt``, positions aside."""
    parsed = _statement(text)
    return parsed is not None and ast.dump(parsed) == ast.dump(stmt)


class _Approx(ast.NodeTransformer):
    """``a == pytest.approx(b)`` (either side, also ``!=``) -> ``math.isclose(a, b, rel_tol=1e-6)``.

    Only scalar comparisons: ``approx`` of a list or dict is left alone, so the test is refused for using pytest.
    """

    TOLERANCES = {"rel": "rel_tol", "abs": "abs_tol"}

    def __init__(self, rewrite: _Rewrite) -> None:
        self.rewrite = rewrite

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq | ast.NotEq):
            return node
        negated = isinstance(node.ops[0], ast.NotEq)
        for expected, actual in ((node.comparators[0], node.left), (node.left, node.comparators[0])):
            if isclose := self._isclose(expected, actual, negated=negated):
                return self.rewrite.replaced(*self.rewrite.rebuilt(isclose, _expression), node)
        return node

    def _isclose(self, expected: ast.expr, actual: ast.expr, *, negated: bool) -> Callable[[Shown], str] | None:
        if not (
            isinstance(expected, ast.Call)
            and _pytest_attr(expected.func, self.rewrite.tools) == "approx"
            and len(expected.args) == 1
            and not isinstance(expected.args[0], ast.List | ast.Tuple | ast.Dict | ast.Set)
            and all(k.arg in self.TOLERANCES for k in expected.keywords)
        ):
            return None
        approximated, keywords = expected.args[0], expected.keywords

        def written(show: Shown) -> str:
            tolerances = [f"{self.TOLERANCES[str(k.arg)]}={show(k.value)}" for k in keywords]
            if not any(k.arg == "rel" for k in keywords):
                tolerances.insert(0, "rel_tol=1e-6")  # pytest.approx's default relative tolerance
            call = f"math.isclose({', '.join([show(actual), show(approximated), *tolerances])})"
            return f"not {call}" if negated else call

        return written


class _Rename(ast.NodeTransformer):
    """``info.value`` -> ``error``: the caught exception, inside the ``except`` block that replaced the ``with``."""

    def __init__(self, rewrite: _Rewrite, name: str, attribute: str) -> None:
        self.rewrite, self.name, self.attribute = rewrite, name, attribute

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if isinstance(node.value, ast.Name) and node.value.id == self.name and node.attr == self.attribute:
            error = self.rewrite.error
            return self.rewrite.replaced(ast.Name(error, ast.Load()), error, node)
        self.generic_visit(node)
        return node


def _self_use(statements: Sequence[ast.stmt]) -> str | None:
    """Why the body still needs the test's ``self`` after the rewrite, or None when it does not (a class
    defined in the body has a ``self`` of its own)."""
    if "self" not in _free(statements):
        return None
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                if node.attr.startswith(("assert", "fail", "skip")):
                    return f"uses unittest's self.{node.attr}, which has no plain-Python rewrite here"
                return f"reads self.{node.attr}: it depends on the state of its test class"
    return "uses self: it depends on its test class"


def _tool_use(nodes: Sequence[ast.AST], tools: Mapping[str, str]) -> str | None:
    """The first testing tool the code still uses (``pytest.skip``, ``unittest.mock.patch``), or None. A name
    the code binds itself (a variable called ``mock``) is not a tool."""
    unbound = _free(nodes)
    for node in nodes:
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.Attribute)
                and isinstance(inner.value, ast.Name)
                and inner.value.id in unbound
                and (attr := _pytest_attr(inner, tools))
            ):
                return f"pytest.{attr}"
            if isinstance(inner, ast.Name) and inner.id in unbound and inner.id in tools:
                return tools[inner.id]
    return None


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
    scope = _Scope(import_name, symbols)
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


def _assemble(preamble: list[_Stmt], parameters: list[_Stmt], body: list[str]) -> str:
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
    modules: dict[str, _TestModule],
) -> Snippet:
    module = _parsed(unit.text)
    function = module.body[0] if module and module.body else None
    if isinstance(function, ast.AsyncFunctionDef):
        raise _Refused("is an async test: it needs the event loop its plugin provides")
    if not isinstance(function, ast.FunctionDef):
        raise _Refused("is not a test function that parses")
    context = _test_module(tree, unit.path, modules)
    tools = _test_tools(context.pool)
    decorators = context.decorators.get(function.name, [])
    _check_decorators(decorators, tools)
    parameters = _parameter_values(function, decorators, tools, context if tree is not None else None)
    has_docstring = ast.get_docstring(function) is not None
    body = function.body[1:] if has_docstring else function.body
    if not body:
        raise _Refused("has nothing but a docstring")
    length = (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1
    if length > MAX_BODY_LINES:
        raise _Refused(f"is {length} lines long, not a short example (at most {MAX_BODY_LINES})")
    rewrite = _Rewrite(unit.text, function, tools)
    statements = rewrite.body(body)
    if reason := _self_use(statements):
        raise _Refused(reason)
    nodes = [*(p.node for p in parameters), *statements]
    preamble, unbound = _preamble(_pool_for(nodes, context.pool, import_name, symbols), _free(nodes))
    definitions = [s.node for s in preamble if not isinstance(s.node, ast.Import | ast.ImportFrom)]
    if tool := _tool_use([*nodes, *definitions], tools):
        raise _Refused(f"needs {tool}, a testing tool with no plain-Python rewrite")
    if unbound:
        where = "its module" if tree is not None else "its module (not read: no checkout given)"
        raise _Refused(f"uses {', '.join(sorted(unbound))}, defined neither in the test nor in {where}")
    header_end = function.body[0].end_lineno if has_docstring else function.lineno
    code = _assemble(preamble, parameters, rewrite.emit(statements, header_end))
    parsed = _parsed(code)
    if parsed is None:  # every statement was checked to parse back; this is the safety net for the layout
        code = _assemble(preamble, parameters, [ast.unparse(s) for s in statements])
        parsed = ast.parse(code)
    called = _called(parsed, import_name, symbols)
    if not called:
        raise _Refused(f"calls no public API of {import_name}")
    return Snippet(unit.key, _task(function), code, called)


def _attempt(
    unit: Unit,
    import_name: str,
    symbols: Mapping[str, dict[str, Any]],
    tree: Path | None,
    modules: dict[str, _TestModule],
) -> Snippet | Refusal:
    if unit.kind != "example":
        return Refusal(unit.key, f"is a {unit.kind} unit, not a test")
    try:
        return _snippet(unit, import_name, symbols, tree, modules)
    except _Refused as refused:
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
    modules: dict[str, _TestModule] = {}
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


def verify_snippets(snippets: Sequence[Snippet], library_path: Path, *, python: str = sys.executable) -> Verification:
    """Run each snippet against the library in the sandbox: those that run without error are kept as verified,
    those that fail are dropped with the last line of the error.

    A snippet that fails only because a third-party module is missing here is kept unverified (``note`` says
    which module): the example may well be right. If the library itself does not import in the sandbox (a
    missing dependency, a compiled extension that was never built), nothing runs: every snippet is kept
    unverified and ``not_run`` says why, once.
    """
    if not snippets:
        return Verification([], [], "")
    package = snippets[0].symbols[0].split(".")[0]  # every snippet calls the library, so names it first
    paths = [str(library_path)]
    probe = run_python(f"import {package}", timeout=RUN_TIMEOUT, python=python, extra_paths=paths)
    if not probe.passed:
        reason = f"{package} cannot be imported here: {_error_line(probe)}"
        return Verification([replace(s, verified=None, note=f"not run: {reason}") for s in snippets], [], reason)

    def run(snippet: Snippet) -> tuple[Snippet, str]:
        ran = run_python(snippet.code, timeout=RUN_TIMEOUT, python=python, extra_paths=paths)
        if ran.passed:
            return replace(snippet, verified=True, note=""), ""
        error = _error_line(ran)
        missing = MISSING_MODULE.search(error)
        if missing and not _in_package(missing[1], package):
            return replace(snippet, verified=None, note=f"not run: needs {missing[1]}"), ""
        return replace(snippet, verified=False, note=""), error

    with ThreadPoolExecutor(VALIDATION_WORKERS) as pool:
        results = list(pool.map(run, snippets))
    return Verification([s for s, error in results if not error], [(s, error) for s, error in results if error], "")


def _error_line(result: SandboxResult) -> str:
    """What went wrong, in one line: the exception (a traceback's last line), or why the run was stopped."""
    lines = result.detail.strip().splitlines()
    if not lines:
        return result.outcome
    return lines[-1] if result.outcome in ("error", "failed") and lines[-1].strip() else lines[0]
