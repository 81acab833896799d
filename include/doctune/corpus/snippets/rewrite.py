"""The ``Rewrite`` of a test body into plain Python (``pytest.raises`` and ``pytest.warns`` blocks, unittest
assertions, ``pytest.approx``), printed back as close to the test's source as the AST allows."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import TypeVar

from doctune.corpus.snippets.outcome import Refused
from doctune.corpus.snippets.tools import pytest_attr
from doctune.corpus.snippets.transforms import (
    ApproxToIsclose,
    CaughtToError,
    Shown,
    parsed_statement,
    same_statement,
    unittest_assert_text,
)
from doctune.evaluate.suite.scope import bound_names, read_names

ERROR_REPORT = 'print(f"{type(error).__name__}: {error}")'
RECORD_ALL = 'warnings.simplefilter("always")'
RAISES = {"raises": "value", "assertRaises": "exception", "assertRaisesRegex": "exception"}  # -> attribute
WARNS = frozenset({"warns", "deprecated_call"})

Node = TypeVar("Node", bound=ast.AST)  # what the rewrite makes in place of an original node


class Rewrite:
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
        approx = ApproxToIsclose(self)
        return self.block([approx.visit(s) for s in statements])

    def replaced(self, made: Node, text: str, original: ast.AST) -> Node:
        """``made`` (which ``text`` parses to) at the position of what it replaces."""
        ast.copy_location(made, original)
        if isinstance(made, ast.stmt):
            self.replacements.add(id(made))
        self.texts[id(made)] = text
        return made

    def shown(self, node: ast.expr) -> str:
        """An operand of a rewritten expression: as written where possible, else unparsed."""
        return self.written(node) or ast.unparse(node)

    def rebuilt(self, build: Callable[[Shown], str], parse: Callable[[str], Node | None]) -> tuple[Node, str]:
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
            elif isinstance(stmt, ast.Expr) and (assertion := unittest_assert_text(stmt.value)):
                out.append(self.replaced(*self.rebuilt(assertion, parsed_statement), stmt))
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
        return pytest_attr(call.func, self.tools)

    def context_manager(self, stmt: ast.With, rest: list[ast.stmt]) -> ast.stmt | None:
        kinds = [self._kind(item.context_expr) for item in stmt.items]
        if not any(k in RAISES or k in WARNS for k in kinds):
            return None
        if len(stmt.items) > 1:
            raise Refused("combines pytest.raises or pytest.warns with other context managers in one with")
        item, kind = stmt.items[0], kinds[0]
        assert isinstance(item.context_expr, ast.Call) and kind is not None
        if kind in WARNS:
            record = ast.parse("warnings.catch_warnings(record=True)", mode="eval").body
            recorded = ast.With([ast.withitem(record, item.optional_vars)], [self._made(RECORD_ALL), *stmt.body])
            return self._in_place_of(recorded, stmt)
        if not item.context_expr.args:
            raise Refused(f"uses {kind} without an exception type")
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
            raise Refused("unpacks what pytest.raises returns")
        name = target.id
        moved: list[ast.stmt] = []
        while rest and name in read_names(rest[0]):
            moved.append(rest.pop(0))
        moved = self.block([CaughtToError(self, name, attribute).visit(s) for s in moved])
        if any(name in read_names(s) for s in moved):
            raise Refused(f"uses {name} for more than {name}.{attribute}")
        for later in rest:
            if name in read_names(later):
                raise Refused(f"uses {name} (what pytest.raises caught) after other statements")
            if name in bound_names(later):
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
        return lines if same_statement("\n".join(lines), stmt) else None

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
            return moved_left if same_statement("\n".join(moved_left), stmt) else text.split("\n")
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
