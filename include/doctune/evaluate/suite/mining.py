"""Execution tasks mined from the library's own tests and doc examples.

The model gets a described task, writes code, and the library's own check runs against it in the sandbox. A
task comes from one statement that calls a public symbol of the library:

* ``assert <expression containing the call>``: the model must assign what the call returns to ``result``;
  the check is the same assert with the call replaced by ``result`` (``assert result == 600``);
* ``name = <call>`` followed by asserts about ``name``: the check binds ``name = result`` and runs them.

The setup is what the statement needs: the statements of the test before it, and the module-level imports
and constants it uses (for doc examples, the bindings of earlier examples on the same page). The prompt shows
the setup and describes the call by the symbol's summary and its argument expressions. A task whose prompt
would contain the called function's name anywhere, setup included, is not mined: the model has to know which
function does it. ``pytest.raises`` blocks are not mined (a check cannot tell a deliberately raised error
from a wrong call without wrapping the answer), parametrized tests use their first parameter set.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doctune.evaluate.suite.items import ExecTask
from doctune.evaluate.suite.scope import (
    Scope,
    Stmt,
    _is_binding,
    _statements,
    free_names,
    pool_for,
    preamble_for,
    read_names,
)
from doctune.evaluate.suite.symbols import _plain, _word, parse_or_none
from doctune.reader.extract import HOSTILE_INPUT_FAILURES, Unit, read_text
from doctune.reader.pyapi import parse_python
from doctune.secrets import scrub

MAX_TASKS_PER_UNIT = 3  # a long test would otherwise dominate the suite with near-identical tasks


def _library_calls(node: ast.AST, scope: Scope) -> list[ast.Call]:
    """Outermost calls of public library symbols in ``node``, in source order, outside lambdas and
    comprehensions (whose own variables the replacement ``result`` could not stand for)."""
    found: list[ast.Call] = []

    def visit(inner: ast.AST) -> None:
        if isinstance(inner, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            return
        if isinstance(inner, ast.Call) and scope.target(inner.func):
            found.append(inner)
            return
        for child in ast.iter_child_nodes(inner):
            visit(child)

    visit(node)
    return sorted(found, key=lambda c: (c.lineno, c.col_offset))


class _Replace(ast.NodeTransformer):
    def __init__(self, node: ast.AST) -> None:
        self.node = node

    def visit(self, node: ast.AST) -> ast.AST:
        return ast.Name("result", ast.Load()) if node is self.node else super().visit(node)


@dataclass
class _Candidate:
    call: ast.Call
    symbol: str
    check: str


def _candidate(stmt: ast.stmt, following: Sequence[ast.stmt], scope: Scope) -> _Candidate | None:
    """The call a statement can be turned into a task about, and the check for it."""
    if isinstance(stmt, ast.Assert):
        mutable = copy.deepcopy(stmt)
        calls = _library_calls(mutable.test, scope)
        if not calls:
            return None
        checked = ast.fix_missing_locations(_Replace(calls[0]).visit(mutable))
        return _Candidate(calls[0], str(scope.target(calls[0].func)), ast.unparse(checked))
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.Call)
        and (symbol := scope.target(stmt.value.func))
    ):
        name = stmt.targets[0].id
        asserts = []
        for later in following:
            if not isinstance(later, ast.Assert):
                break
            asserts.append(later)
        if not any(name in read_names(a) for a in asserts):
            return None
        return _Candidate(stmt.value, symbol, "\n".join([f"{name} = result", *map(ast.unparse, asserts)]))
    return None


@dataclass(frozen=True)
class TaskWording:
    """How a task is put into words. The evaluation asks in EVAL_WORDING; training pairs made from the tests that
    train (``corpus.training_pairs``) use TRAIN_WORDING, so the model learns the task shape, never the
    evaluation's words."""

    function: str
    method: str
    constructor: str
    passing: str
    frame: str


EVAL_WORDING = TaskWording(
    function="Call the {lib} function that does this: {summary}.",
    method="Call the method of `{obj}` (a {lib} `{owner}`) that does this: {summary}.",
    constructor="Create an instance of the {lib} class described as: {summary}.",
    passing="Pass it {arguments}, and assign what it returns to a variable named `result`.",
    frame="This Python code has already run:\n\n```python\n{setup}\n```\n\n{sentence}\n\n"
    "Reply with only the Python code that continues it (do not repeat the code above).",
)
TRAIN_WORDING = TaskWording(
    function="Use the {lib} function for this job ({summary}).",
    method="On `{obj}`, a {lib} `{owner}`, use the method for this job ({summary}).",
    constructor="Make the {lib} object for this ({summary}).",
    passing="Give it {arguments} and keep the outcome in `result`.",
    frame="Given this {lib} setup:\n\n```python\n{setup}\n```\n\n{sentence}\n\nWrite only the lines that follow.",
)


def _describe(
    call: ast.Call, symbol: str, info: Mapping[str, Any], import_name: str, wording: TaskWording = EVAL_WORDING
) -> str:
    """The task sentence: what the call does (its summary) and its arguments, never the symbol's name."""
    arguments = [ast.unparse(a) for a in call.args] + [ast.unparse(k) for k in call.keywords]
    quoted = [f"`{a}`" for a in arguments]
    if not quoted:
        passing = "no arguments"
    elif len(quoted) == 1:
        passing = quoted[0]
    else:
        passing = f"{', '.join(quoted[:-1])} and {quoted[-1]}, in this order"
    fields = {"lib": import_name, "summary": _plain(info["summary"]).rstrip(".")}
    if info["kind"] == "method" and isinstance(call.func, ast.Attribute):
        what = wording.method.format(obj=ast.unparse(call.func.value), owner=symbol.rsplit(".", 2)[-2], **fields)
    elif info["kind"] == "class":
        what = wording.constructor.format(**fields)
    else:
        what = wording.function.format(**fields)
    return f"{what} {wording.passing.format(arguments=passing)}"


def _import_of(node: ast.stmt, name: str) -> str:
    """The import of just ``name`` if ``node`` is a from-import that binds it, else ""."""
    if isinstance(node, ast.ImportFrom):
        for alias in node.names:
            if (alias.asname or alias.name) == name:
                return ast.unparse(ast.ImportFrom(module=node.module, names=[alias], level=node.level))
    return ""


def _without_name(stmt: Stmt, name: str) -> Stmt | None:
    """``stmt`` without its from-import of ``name`` (None when nothing is left): the setup must not import the
    answer."""
    node = stmt.node
    if not _import_of(node, name):
        return stmt
    assert isinstance(node, ast.ImportFrom)
    kept = [a for a in node.names if (a.asname or a.name) != name]
    if not kept:
        return None
    trimmed = ast.ImportFrom(module=node.module, names=kept, level=node.level)
    return Stmt(trimmed, ast.unparse(trimmed))


def _mine_snippet(
    task_id: str,
    source_key: str,
    body: list[Stmt],
    prelude: list[Stmt],
    pool: list[Stmt],
    import_name: str,
    symbols: Mapping[str, dict[str, Any]],
    wording: TaskWording = EVAL_WORDING,
) -> list[ExecTask]:
    """Tasks from one test body or doc example. ``prelude`` (parameter values) runs first; ``pool`` offers
    module-level bindings the setup may need."""
    nodes = [s.node for s in prelude + body]
    pool = pool_for(nodes, pool, import_name, symbols)
    scope = Scope(import_name, symbols)
    for stmt in pool + prelude:
        scope.bind(stmt.node)
    tasks = []
    for i, stmt in enumerate(body):
        found = _candidate(stmt.node, [s.node for s in body[i + 1 :]], scope)
        scope.bind(stmt.node)
        if found is None or not (info := symbols[found.symbol]).get("summary"):
            continue
        before = prelude + body[:i]
        reference = f"result = {ast.unparse(found.call)}"
        needed = free_names([*(s.node for s in before), ast.parse(reference), ast.parse(found.check)])
        preamble, unbound = preamble_for(pool, needed)
        if unbound:
            continue
        statements = [*preamble, *before]
        if isinstance(found.call.func, ast.Name):
            # Called by a from-imported name: that import moves from the setup into the reference.
            callee = found.call.func.id
            moved = [line for s in statements if (line := _import_of(s.node, callee))]
            statements = [t for s in statements if (t := _without_name(s, callee))]
            reference = "\n".join([*moved, reference])
        setup = "\n".join(s.source for s in statements)
        sentence = _describe(found.call, found.symbol, info, import_name, wording)
        prompt = wording.frame.format(setup=setup, sentence=sentence, lib=import_name)
        if _word(found.symbol.rsplit(".", 1)[-1]).search(prompt):
            continue
        tasks.append(ExecTask(f"{task_id}#{i + 1}", source_key, prompt, setup, found.check, reference, found.symbol))
        if len(tasks) == MAX_TASKS_PER_UNIT:
            break
    return tasks


def first_parameter_set(function: ast.FunctionDef, decorators: list[ast.expr]) -> list[Stmt] | None:
    """Assignments for the first parameter set of ``@pytest.mark.parametrize`` decorators; None when the test
    takes parameters nothing supplies (fixtures), which a task cannot reproduce."""
    values: dict[str, ast.expr] = {}
    for decorator in decorators:
        if not (isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("mark.parametrize")):
            continue
        if len(decorator.args) < 2:
            return None
        names_node, sets = decorator.args[:2]
        if isinstance(names_node, ast.Constant) and isinstance(names_node.value, str):
            names = [n.strip() for n in names_node.value.split(",") if n.strip()]
        elif isinstance(names_node, ast.List | ast.Tuple):
            names = [str(ast.literal_eval(n)) for n in names_node.elts]
        else:
            return None
        if not isinstance(sets, ast.List | ast.Tuple) or not sets.elts:
            return None
        first = sets.elts[0]
        if isinstance(first, ast.Call) and ast.unparse(first.func).endswith("param"):
            items = list(first.args)
        elif len(names) == 1:
            items = [first]
        elif isinstance(first, ast.Tuple | ast.List):
            items = list(first.elts)
        else:
            return None
        if len(items) != len(names):
            return None
        values.update(zip(names, items, strict=True))
    arguments = function.args
    params = [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]
    if arguments.vararg or arguments.kwarg or set(params) - set(values):
        return None
    lines = [f"{name} = {ast.unparse(values[name])}" for name in params]
    return [Stmt(ast.parse(line).body[0], line) for line in lines]


@dataclass
class ModuleContext:
    pool: list[Stmt]  # its top-level bindings
    decorators: dict[str, list[ast.expr]]  # test function -> its decorators (an example unit starts at ``def``)


def module_context(tree: Path | None, rel: str, cache: dict[str, ModuleContext]) -> ModuleContext:
    """What a test needs from its module, when the checkout is at hand (else imports are guessed and
    parametrized tests skipped)."""
    if tree is None:
        return ModuleContext([], {})
    if rel not in cache:
        # Read like the extractor reads it: never through a link, and scrubbed, since its constants reach tasks.
        source = scrub(text, rel)[0] if (text := read_text(tree, rel)[0]) is not None else ""
        try:
            module = parse_python(source, rel)
        except (OSError, SyntaxError, *HOSTILE_INPUT_FAILURES):
            cache[rel] = ModuleContext([], {})
        else:
            cache[rel] = ModuleContext(
                _statements(source, [n for n in module.body if _is_binding(n)]),
                {n.name: n.decorator_list for n in ast.walk(module) if isinstance(n, ast.FunctionDef)},
            )
    return cache[rel]


def mine_exec_tasks(
    units: list[Unit],
    import_name: str,
    symbols: dict[str, dict[str, Any]],
    *,
    tree: str | Path | None = None,
    wording: TaskWording = EVAL_WORDING,
) -> list[ExecTask]:
    """Execution tasks from example units (test functions) and the code examples of doc units, worded for the
    evaluation (or, with TRAIN_WORDING, as training pairs from the tests that train).

    ``tree`` (the checkout the units were read from) lets a test's setup use its module's imports and constants
    (``OUTLAYS = [...]`` above the tests); without it, imports are guessed from usage and tasks that need a
    module constant are not mined. Doc examples may use bindings from earlier examples on the same page ("all
    examples below share this setup"). Validate the result with ``validate_exec_tasks``.
    """
    root = Path(tree) if tree is not None else None
    modules: dict[str, ModuleContext] = {}
    pages: dict[str, list[Stmt]] = {}  # doc path -> bindings of the examples read so far
    tasks: list[ExecTask] = []
    for unit in units:
        if unit.kind == "example":
            module = parse_or_none(unit.text)
            function = module.body[0] if module and module.body else None
            if not isinstance(function, ast.FunctionDef):
                continue
            context = module_context(root, unit.path, modules)
            prelude = first_parameter_set(function, context.decorators.get(function.name, []))
            if prelude is None:
                continue
            body = [
                s
                for s in _statements(unit.text, function.body)
                if not (isinstance(s.node, ast.Expr) and isinstance(s.node.value, ast.Constant))  # docstring
            ]
            tasks += _mine_snippet(unit.key, unit.key, body, prelude, context.pool, import_name, symbols, wording)
        elif unit.kind == "doc":
            found: list[ExecTask] = []
            for n, example in enumerate(unit.examples, 1):
                if (module := parse_or_none(example)) is None:
                    continue
                body = _statements(example, module.body)
                pool = list(pages.get(unit.path, []))
                found += _mine_snippet(f"{unit.key}#{n}", unit.key, body, [], pool, import_name, symbols, wording)
                pages.setdefault(unit.path, []).extend(s for s in body if _is_binding(s.node))
            tasks += found[:MAX_TASKS_PER_UNIT]
    # Docs and tests often show the same call on the same data: one task for it is enough.
    unique: dict[tuple[str, str], ExecTask] = {}
    for task in tasks:
        unique.setdefault((task.prompt, task.check), task)
    return list(unique.values())
