"""The rewrites of single expressions: ``pytest.approx`` comparisons to ``math.isclose``, the caught exception's
``info.value`` to ``error``, unittest's plain assertions to ``assert``, and the small parsing helpers they share."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING

from doctune.corpus.snippets.tools import pytest_attr
from doctune.evaluate.suite.symbols import parse_or_none

if TYPE_CHECKING:  # only for annotations: rewrite builds on these transforms at run time
    from doctune.corpus.snippets.rewrite import Rewrite

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

Shown = Callable[[ast.expr], str]  # how an operand is written into a rewritten expression


def _grouped(node: ast.expr, text: str) -> str:
    """``text`` in parentheses where, as an operand of a comparison or ``not``, it would bind differently."""
    loose = isinstance(node, ast.BoolOp | ast.Compare | ast.IfExp | ast.Lambda | ast.NamedExpr) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
    )
    return f"({text})" if loose else text


def unittest_assert_text(expr: ast.expr) -> Callable[[Shown], str] | None:
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


def parsed_statement(text: str) -> ast.stmt | None:
    module = parse_or_none(text)
    return module.body[0] if module is not None and len(module.body) == 1 else None


def _expression(text: str) -> ast.expr | None:
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError:
        return None


def same_statement(text: str, stmt: ast.stmt) -> bool:
    """Whether ``text`` parses to ``stmt``, positions aside."""
    parsed = parsed_statement(text)
    return parsed is not None and ast.dump(parsed) == ast.dump(stmt)


class ApproxToIsclose(ast.NodeTransformer):
    """``a == pytest.approx(b)`` (either side, also ``!=``) -> ``math.isclose(a, b, rel_tol=1e-6)``.

    Only scalar comparisons: ``approx`` of a list or dict is left alone, so the test is refused for using pytest.
    """

    TOLERANCES = {"rel": "rel_tol", "abs": "abs_tol"}

    def __init__(self, rewrite: Rewrite) -> None:
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
            and pytest_attr(expected.func, self.rewrite.tools) == "approx"
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


class CaughtToError(ast.NodeTransformer):
    """``info.value`` -> ``error``: the caught exception, inside the ``except`` block that replaced the ``with``."""

    def __init__(self, rewrite: Rewrite, name: str, attribute: str) -> None:
        self.rewrite, self.name, self.attribute = rewrite, name, attribute

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if isinstance(node.value, ast.Name) and node.value.id == self.name and node.attr == self.attribute:
            error = self.rewrite.error
            return self.rewrite.replaced(ast.Name(error, ast.Load()), error, node)
        self.generic_visit(node)
        return node
