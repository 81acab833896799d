"""Recognising test tooling: the names that stand for pytest, unittest and mock in a test module, the
decorators a plain script can drop or must refuse, parametrize sets and fixtures as plain assignments, and the
testing tools a rewritten snippet still uses."""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterable, Mapping, Sequence

from doctune.corpus.snippets.outcome import Refused
from doctune.evaluate.suite.mining import ModuleContext, first_parameter_set
from doctune.evaluate.suite.scope import Stmt, free_names

TMP_PATH = "tmp_path = pathlib.Path(tempfile.mkdtemp())"  # the one fixture a plain script can stand in for
# Names that mean a testing tool even when the test module's imports are not at hand.
TOOL_NAMES = frozenset({"pytest", "mock", "unittest", "monkeypatch", "capsys", "caplog", "mocker"})
TOOL_MODULES = ("pytest", "unittest", "mock", "pytest_mock")


def _tool_is(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in TOOL_MODULES)


def testing_tools(pool: Iterable[Stmt]) -> dict[str, str]:
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


def pytest_attr(func: ast.expr, tools: Mapping[str, str]) -> str | None:
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


def check_decorators(decorators: Sequence[ast.expr], tools: Mapping[str, str]) -> None:
    """Marks go; what changes the meaning of the test (xfail, skip, usefixtures, patches) refuses it."""
    for decorator in decorators:
        name = _dotted(decorator, tools)
        if not name.startswith("pytest.mark."):
            raise Refused(f"is decorated with @{ast.unparse(decorator)}, which a plain script cannot reproduce")
        mark = name.removeprefix("pytest.mark.")
        if mark in ("xfail", "skip"):
            raise Refused(f"is marked {mark}: its code is not known to work")
        if mark == "usefixtures" and isinstance(decorator, ast.Call):
            used = [a.value if isinstance(a, ast.Constant) else ast.unparse(a) for a in decorator.args]
            raise Refused(f"uses the fixture{'s' if len(used) > 1 else ''} {', '.join(map(str, used))}")


def _with_constant_sets(decorators: list[ast.expr], tools: Mapping[str, str], pool: Sequence[Stmt]) -> list[ast.expr]:
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


def parameter_values(
    function: ast.FunctionDef, decorators: list[ast.expr], tools: Mapping[str, str], context: ModuleContext | None
) -> list[Stmt]:
    """Assignments that stand for the test's parameters: its first parametrize set, then ``tmp_path``.
    Without the test module (``context`` None) the decorators are unknown, so a parameter may be either."""
    arguments = function.args
    if arguments.vararg or arguments.kwarg:
        raise Refused("takes *args or **kwargs")
    names = [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]
    if names[:1] == ["self"]:
        names = names[1:]  # a method's own receiver; what it reads off self is refused later
    parametrized = _parametrized_names(decorators, tools)
    fixtures = [n for n in names if n not in parametrized and n != "tmp_path"]
    if fixtures:
        plural = "s" if len(fixtures) > 1 else ""
        unknown = "" if context is not None else " (or parametrize values: its module was not read)"
        raise Refused(f"needs the fixture{plural} {', '.join(fixtures)}{unknown}")
    taken = [n for n in names if n in parametrized]
    try:
        written_out = _with_constant_sets(decorators, tools, context.pool if context else [])
        values = first_parameter_set(_taking(function, taken), written_out) if taken else []
    except ValueError:  # argument names given as something other than string literals
        values = None
    if values is None:
        raise Refused("its parametrize values are not written out as literals")
    if "tmp_path" in names:
        values.append(Stmt(ast.parse(TMP_PATH).body[0], TMP_PATH))
    return values


def tool_use(nodes: Sequence[ast.AST], tools: Mapping[str, str]) -> str | None:
    """The first testing tool the code still uses (``pytest.skip``, ``unittest.mock.patch``), or None. A name
    the code binds itself (a variable called ``mock``) is not a tool."""
    unbound = free_names(nodes)
    for node in nodes:
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.Attribute)
                and isinstance(inner.value, ast.Name)
                and inner.value.id in unbound
                and (attr := pytest_attr(inner, tools))
            ):
                return f"pytest.{attr}"
            if isinstance(inner, ast.Name) and inner.id in unbound and inner.id in tools:
                return tools[inner.id]
    return None
