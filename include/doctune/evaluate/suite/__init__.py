"""The evaluation gate's items and how answers to them are scored.

Four kinds of evidence, following research on code generation for private libraries (Zan et al. 2022
CERT/PandasEval, DocPrompting, CloudAPIBench):

- Execution tasks mined from the library's own tests and doc examples: the model gets a described task, writes
  code, and the library's own check runs against it in the sandbox. A task comes from one statement that calls
  a public symbol of the library:

  * ``assert <expression containing the call>``: the model must assign what the call returns to ``result``;
    the check is the same assert with the call replaced by ``result`` (``assert result == 600``);
  * ``name = <call>`` followed by asserts about ``name``: the check binds ``name = result`` and runs them.

  The setup is what the statement needs: the statements of the test before it, and the module-level imports
  and constants it uses (for doc examples, the bindings of earlier examples on the same page). The prompt shows
  the setup and describes the call by the symbol's summary and its argument expressions. A task whose prompt
  would contain the called function's name anywhere, setup included, is not mined: the model has to know which
  function does it. ``pytest.raises`` blocks are not mined (a check cannot tell a deliberately raised error
  from a wrong call without wrapping the answer), parametrized tests use their first parameter set.
- A general-Python floor (``data/general_tasks.jsonl``), to catch forgetting.
- API questions about public symbols, scored against the symbol table.
- Hallucinated names: references to ``<package>.*`` names that do not exist at the evaluated commit.
"""

from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import json
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from doctune.corpus.extract import HOSTILE_INPUT_FAILURES, Unit, read_text
from doctune.corpus.facts import parameter_rows
from doctune.corpus.pyapi import module_name, parse_python
from doctune.sandbox import SandboxResult, run_python
from doctune.secrets import scrub

GENERAL_TASKS = Path(__file__).parents[2] / "data" / "general_tasks.jsonl"
MAX_TASKS_PER_UNIT = 3  # a long test would otherwise dominate the suite with near-identical tasks
# Answers a task must fail: nothing at all, and a ``result`` that carries no information (catches checks such as
# ``assert not result`` that any falsy value passes).
TRIVIAL_ANSWERS = ("pass", "result = None")
CALLABLE_KINDS = ("function", "method", "class")
VALIDATION_WORKERS = min(8, os.cpu_count() or 1)
BUILTIN_NAMES = frozenset(dir(builtins))
PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})
FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
MAX_SALVAGE_LINES = 100  # searching a longer answer line range by line range for code costs more than it finds


@dataclass(frozen=True)
class ExecTask:
    """A task the model solves by writing code; ``setup`` runs before it and ``check`` after it."""

    id: str  # stable across builds: the unit key and the statement's position, or "general:<name>"
    source: str  # the unit key it was mined from, or "general"
    prompt: str  # the user message: the described task, asking for Python code only
    setup: str
    check: str  # raises AssertionError when the answer is wrong
    reference: str  # the library's own code for it: never shown to the model, used to validate the task
    symbol: str = ""  # the public symbol the task calls (qualified name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecTask:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class ApiQuestion:
    """A question about one public symbol; ``expect`` holds what ``score_api`` compares the answer with."""

    id: str  # "<kind>:<symbol>"
    symbol: str  # qualified name, e.g. "ledgerkite.envelopes.nibble"
    kind: str  # "signature" | "params" | "returns" | "which" | "usage"
    prompt: str
    expect: dict[str, Any]
    split: str = "trained"  # "trained": its facts trained as questions; "withheld": only as documentation
    change: str = ""  # a diff probe's change since the parent version (see corpus.apidiff): "added", "removed", ...
    stale: dict[str, Any] | None = None  # the parent version's expectation: an answer meeting only it is outdated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiQuestion:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


# -- symbols ------------------------------------------------------------------------------------------------


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


def _in_package(module: str | None, package: str) -> bool:
    return module is not None and (module == package or module.startswith(package + "."))


def _import_bindings(node: ast.Import | ast.ImportFrom, package: str) -> tuple[dict[str, str], set[str]]:
    """What an import statement binds to the library (local name -> path) and the library paths it imports:
    ``import pkg.mod`` binds ``pkg`` and imports ``pkg.mod``; ``from pkg.mod import f as g`` binds ``g``."""
    bindings: dict[str, str] = {}
    imported: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if _in_package(alias.name, package):
                imported.add(alias.name)
                local = alias.asname or alias.name.split(".")[0]
                bindings[local] = alias.name if alias.asname else local
    elif node.level == 0 and _in_package(node.module, package):
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


# -- mining execution tasks ------------------------------------------------------------------------------------


@dataclass
class _Stmt:
    node: ast.stmt
    source: str  # as written (comments and layout kept), dedented


def _statements(source: str, nodes: Iterable[ast.stmt]) -> list[_Stmt]:
    out = []
    for node in nodes:
        segment = ast.get_source_segment(source, node)
        # Later lines of a statement keep their original indentation, the first does not: re-indent, dedent.
        text = textwrap.dedent(" " * node.col_offset + segment) if segment else ""
        try:
            ast.parse(text)
        except SyntaxError:
            text = ast.unparse(node)
        out.append(_Stmt(node, text))
    return out


def _bound(node: ast.AST) -> set[str]:
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


def _loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _free(nodes: Sequence[ast.AST]) -> set[str]:
    """Names the code reads but neither binds nor gets from builtins (flow-insensitive, which is enough here)."""
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in nodes:
        loaded |= _loaded(node)
        bound |= _bound(node)
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


class _Scope:
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


def _pool_for(
    snippet: Sequence[ast.stmt], pool: list[_Stmt], import_name: str, symbols: Mapping[str, Any]
) -> list[_Stmt]:
    """``pool`` plus guessed imports for what the snippet uses that nothing in the pool binds."""
    missing = _free(snippet) - set().union(*(_bound(s.node) for s in pool))
    guessed = []
    for name in sorted(missing):
        attributes = {
            n.attr
            for node in snippet
            for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == name
        }
        if line := _guess_import(name, attributes, import_name, symbols):
            guessed.append(_Stmt(ast.parse(line).body[0], line))
    return guessed + pool


def _preamble(pool: list[_Stmt], needed: set[str]) -> tuple[list[_Stmt], set[str]]:
    """The pool statements that (transitively) bind ``needed``, in pool order, and the names still unbound."""
    chosen: list[int] = []
    needed = set(needed)
    changed = True
    while changed:
        changed = False
        for i, stmt in enumerate(pool):
            if i not in chosen and _bound(stmt.node) & needed:
                chosen.append(i)
                needed |= _free([stmt.node])
                changed = True
    picked = [pool[i] for i in sorted(chosen)]
    bound = set().union(*(_bound(s.node) for s in picked))
    return picked, needed - bound - BUILTIN_NAMES


def _library_calls(node: ast.AST, scope: _Scope) -> list[ast.Call]:
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


def _candidate(stmt: ast.stmt, following: Sequence[ast.stmt], scope: _Scope) -> _Candidate | None:
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
        if not any(name in _loaded(a) for a in asserts):
            return None
        return _Candidate(stmt.value, symbol, "\n".join([f"{name} = result", *map(ast.unparse, asserts)]))
    return None


@dataclass(frozen=True)
class TaskWording:
    """How a task is put into words. The evaluation asks in EVAL_WORDING; training pairs made from the tests that
    train (``corpus.versions``) use TRAIN_WORDING, so the model learns the task shape, never the evaluation's words."""

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


def _without_name(stmt: _Stmt, name: str) -> _Stmt | None:
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
    return _Stmt(trimmed, ast.unparse(trimmed))


def _mine_snippet(
    task_id: str,
    source_key: str,
    body: list[_Stmt],
    prelude: list[_Stmt],
    pool: list[_Stmt],
    import_name: str,
    symbols: Mapping[str, dict[str, Any]],
    wording: TaskWording = EVAL_WORDING,
) -> list[ExecTask]:
    """Tasks from one test body or doc example. ``prelude`` (parameter values) runs first; ``pool`` offers
    module-level bindings the setup may need."""
    nodes = [s.node for s in prelude + body]
    pool = _pool_for(nodes, pool, import_name, symbols)
    scope = _Scope(import_name, symbols)
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
        needed = _free([*(s.node for s in before), ast.parse(reference), ast.parse(found.check)])
        preamble, unbound = _preamble(pool, needed)
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


def _first_parameters(function: ast.FunctionDef, decorators: list[ast.expr]) -> list[_Stmt] | None:
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
    return [_Stmt(ast.parse(line).body[0], line) for line in lines]


@dataclass
class _TestModule:
    pool: list[_Stmt]  # its top-level bindings
    decorators: dict[str, list[ast.expr]]  # test function -> its decorators (an example unit starts at ``def``)


def _test_module(tree: Path | None, rel: str, cache: dict[str, _TestModule]) -> _TestModule:
    """What a test needs from its module, when the checkout is at hand (else imports are guessed and
    parametrized tests skipped)."""
    if tree is None:
        return _TestModule([], {})
    if rel not in cache:
        # Read like the extractor reads it: never through a link, and scrubbed, since its constants reach tasks.
        source = scrub(text, rel)[0] if (text := read_text(tree, rel)[0]) is not None else ""
        try:
            module = parse_python(source, rel)
        except (OSError, SyntaxError, *HOSTILE_INPUT_FAILURES):
            cache[rel] = _TestModule([], {})
        else:
            cache[rel] = _TestModule(
                _statements(source, [n for n in module.body if _is_binding(n)]),
                {n.name: n.decorator_list for n in ast.walk(module) if isinstance(n, ast.FunctionDef)},
            )
    return cache[rel]


def _parsed(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


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
    modules: dict[str, _TestModule] = {}
    pages: dict[str, list[_Stmt]] = {}  # doc path -> bindings of the examples read so far
    tasks: list[ExecTask] = []
    for unit in units:
        if unit.kind == "example":
            module = _parsed(unit.text)
            function = module.body[0] if module and module.body else None
            if not isinstance(function, ast.FunctionDef):
                continue
            context = _test_module(root, unit.path, modules)
            prelude = _first_parameters(function, context.decorators.get(function.name, []))
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
                if (module := _parsed(example)) is None:
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


# -- running and validating tasks ------------------------------------------------------------------------------


def run_exec_task(
    task: ExecTask,
    answer: str,
    *,
    library_path: str | Path | None,
    python: str = sys.executable,
    timeout: float = 10.0,
) -> SandboxResult:
    """Run the setup followed by the code in ``answer``, then the task's check, in the sandbox.

    ``library_path`` is the folder that contains the package (the checkout), importable read-only.
    """
    code = f"{task.setup}\n\n{extract_code(answer)}\n" if task.setup else extract_code(answer)
    paths = [str(library_path)] if library_path is not None else []
    return run_python(code, check=task.check, timeout=timeout, python=python, extra_paths=paths)


def validate_exec_tasks(
    tasks: list[ExecTask], library_path: str | Path | None, *, python: str = sys.executable, scored: bool = True
) -> tuple[list[ExecTask], list[tuple[ExecTask, str]]]:
    """Keep the tasks whose reference passes and that every trivial answer fails; the rest come back with why.

    A task that the library's own code cannot pass is broken (never the model's fault), and one that passes
    without an answer measures nothing. ``library_path`` may be None for tasks that need no library (the
    general floor). ``scored=False`` (tasks that become training pairs) checks only that the reference passes.
    """

    def verdict(task: ExecTask) -> str:
        ran = run_exec_task(task, task.reference, library_path=library_path, python=python)
        if not ran.passed:
            last = ran.detail.strip().splitlines()[-1] if ran.detail.strip() else "no output"
            return f"the reference does not pass ({ran.outcome}): {last}"
        for trivial in TRIVIAL_ANSWERS if scored else ():
            if run_exec_task(task, trivial, library_path=library_path, python=python).passed:
                return f"the trivial answer {trivial!r} passes"
        return ""

    with ThreadPoolExecutor(VALIDATION_WORKERS) as pool:
        reasons = list(pool.map(verdict, tasks))
    kept = [t for t, reason in zip(tasks, reasons, strict=True) if not reason]
    dropped = [(t, reason) for t, reason in zip(tasks, reasons, strict=True) if reason]
    return kept, dropped


def general_tasks() -> list[ExecTask]:
    """The built-in general-Python floor: small classic tasks unrelated to any library."""
    lines = GENERAL_TASKS.read_text().splitlines()
    return [ExecTask.from_dict(json.loads(line)) for line in lines if line.strip()]


# -- reading answers -------------------------------------------------------------------------------------------


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
    if _parsed(text) is not None or len(lines) > MAX_SALVAGE_LINES:
        return text
    for start in range(len(lines)):
        for end in range(len(lines), start, -1):
            piece = textwrap.dedent("\n".join(lines[start:end])).strip("\n")
            if piece.strip() and _parsed(piece) is not None:
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
        module = _parsed(textwrap.dedent(block))
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


# -- API questions ---------------------------------------------------------------------------------------------

# The held-out phrasing family: evaluation asks about trained facts only in these words, which no training pair uses
# (``generate.PHRASINGS`` is the training family; a test checks the built files). Two per kind, chosen per symbol by
# hash, so that no single template's quirks decide a score.
EVAL_PHRASINGS = {
    "signature": [
        "Give the full parameter list of {subject} as a Python `def` line.",
        "Reply with the complete header of {subject}: `def`, its name, every parameter and default.",
    ],
    "constructor": [
        "Write the call that builds {subject}, listing every constructor parameter with its default.",
        "Spell out the constructor of {subject} as `Name(parameters)`, defaults included.",
    ],
    "params": [
        "Name, in order, every argument that {subject} expects.",
        "For {subject}, name the arguments from first to last.",
    ],
    "returns": [
        "What kind of value comes back from {subject}? Reply with the type annotation.",
        "For {subject}, state the annotated type of the result.",
    ],
    "which": [
        "I want to {task}. Name the {lib} function that does it.",
        "Name the {lib} function whose job is to {task}.",
    ],
    "which_method": [
        "Name the method of `{owner}` that lets me {task}.",
        "On a `{owner}`, what method would {task}? Give its name.",
    ],
    "which_class": [
        "Name the {lib} class that is {task}.",
        "What type in {lib} stands for {task}? Give the class name.",
    ],
    "usage": [
        "Write one line of Python that calls {subject} with its required arguments.",
        "Give a single statement invoking {subject}, passing what it requires.",
    ],
    "replacement": [
        "Code that calls {subject} needs updating. Name the {lib} function to call instead.",
        "{subject} is being phased out: which {lib} name takes its place?",
    ],
}
API_KINDS = ("signature", "params", "returns", "which", "usage")


def eval_phrasing(symbol: str, family: str) -> str:
    """The held-out phrasing of a question family for one symbol, chosen by hash."""
    choices = EVAL_PHRASINGS[family]
    return choices[int(hashlib.sha256(f"{symbol}|{family}|eval".encode()).hexdigest(), 16) % len(choices)]


def _balanced(text: str, start: int) -> str | None:
    """The text between the parenthesis at ``start`` and its match (brackets and quotes respected)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


def _annotation_pattern(annotation: str) -> re.Pattern[str]:
    """The annotation as whole tokens with any spacing between them (``tuple[int,int]`` matches)."""
    tokens = re.findall(r"\w+|\S", annotation)
    return re.compile(r"(?<!\w)" + r"\s*".join(map(re.escape, tokens)) + r"(?!\w)")


def api_questions(
    units: list[Unit], import_name: str, symbols: Mapping[str, dict[str, Any]], withheld: Iterable[str] = ()
) -> list[ApiQuestion]:
    """Questions about every public symbol, in the held-out phrasing family.

    - ``signature``: the exact parameter list (a class's: its constructor's);
    - ``params``: the parameter names, in order;
    - ``returns`` (when annotated, other than None): the return annotation;
    - ``which`` (when the summary does not name it): which function, method or class does what the summary says;
    - ``usage``: one call with arguments that bind to the signature.
    ``split`` says whether the symbol's facts trained as questions ("trained") or only as documentation
    ("withheld", the control: units whose keys are in ``withheld``).
    """
    from doctune.corpus.facts import fact
    from doctune.corpus.generate import is_enum

    held = set(withheld)
    questions = []
    for unit in units:
        item = fact(unit, dict(symbols)) if unit.kind == "api" else None
        if item is None:
            continue
        split = "withheld" if unit.key in held else "trained"
        if item.kind == "method":
            subject = f"the method `{item.short}` of `{item.owner}`"
            family = "which_method"
        else:
            subject = f"`{item.name}`"
            family = "which_class" if item.kind == "class" else "which"
        fmt = {"subject": subject, "owner": item.owner, "lib": import_name, "task": item.task}
        enum = is_enum(item)
        asked: list[tuple[str, str, dict[str, Any]]] = []  # (question kind, phrasing family, expectation)
        if item.parameters and not enum:
            expect = {"name": item.short, "parameters": item.parameters}
            asked.append(("signature", "constructor" if item.kind == "class" else "signature", expect))
            asked.append(("params", "params", {"params": [p[1] for p in item.parameters]}))
        if item.returns:
            asked.append(("returns", "returns", {"returns": item.returns}))
        if item.summary and item.task and not _word(item.short).search(_plain(item.summary)):
            asked.append(("which", family, {"name": item.short}))
        if not enum:
            asked.append(("usage", "usage", {"name": item.short, "parameters": item.parameters}))
        for kind, phrasing, expect in asked:
            prompt = eval_phrasing(item.name, phrasing).format(**fmt)
            questions.append(ApiQuestion(f"{kind}:{item.name}", item.name, kind, prompt, expect, split))
    return questions


def _signature_matches(answer: str, name: str, expected: list[Any]) -> bool:
    for match in re.finditer(rf"(?<!\w){re.escape(name)}\s*\(", answer):
        inner = _balanced(answer, match.end() - 1)
        stub = _parsed(f"def _({inner}):\n    pass") if inner is not None else None
        function = stub.body[0] if stub else None
        if isinstance(function, ast.FunctionDef) and parameter_rows(function.args, method=True) == expected:
            return True
    return False


def _binds(call: ast.Call, parameters: list[Any]) -> bool:
    """Whether a call's arguments bind to a parameter list the way Python would bind them (every required
    parameter given once, no unknown keyword, not too many positional arguments). ``*args``/``**kwargs`` at the
    call site cannot be judged and count as binding."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return True
    positional = [p for p in parameters if p[0] in ("posonly", "pos")]
    if len(call.args) > len(positional) and not any(p[0] == "vararg" for p in parameters):
        return False
    given = {p[1] for p in positional[: len(call.args)]}
    by_name = {p[1]: p for p in parameters if p[0] in ("pos", "kwonly")}
    for keyword in call.keywords:
        if keyword.arg in given or (keyword.arg not in by_name and not any(p[0] == "kwarg" for p in parameters)):
            return False
        given.add(keyword.arg)
    required = {p[1] for p in parameters if p[2] is None and p[0] in ("posonly", "pos", "kwonly")}
    return required <= given


def _calls_binding(answer: str, name: str, parameters: list[Any]) -> bool:
    """Some call of ``name`` (bare, dotted or as a method) in the answer's code binds to ``parameters``."""
    pieces = [extract_code(answer)] + [m[0] for m in re.finditer(rf"(?<![\w]){re.escape(name)}\s*\([^\n]*", answer)]
    for piece in pieces:
        module = _parsed(textwrap.dedent(piece))
        if module is None:  # a call inside prose: cut at its closing parenthesis and read just the call
            start = piece.find("(")
            inner = _balanced(piece, start) if start >= 0 else None
            module = _parsed(f"{name}({inner})") if inner is not None else None
        for node in ast.walk(module) if module is not None else ():
            callee = node.func if isinstance(node, ast.Call) else None
            named = (isinstance(callee, ast.Name) and callee.id == name) or (
                isinstance(callee, ast.Attribute) and callee.attr == name
            )
            if named and isinstance(node, ast.Call) and _binds(node, parameters):
                return True
    return False


def score_api(question: ApiQuestion, answer: str) -> float:
    """How well ``answer`` answers ``question``, from 0 to 1.

    - ``signature``: 1.0 iff some ``<name>(...)`` in the answer (a ``def`` line or a call-like mention, e.g.
      ``lk.nibble(...)``) has exactly the expected parameter list: the same names in the same order, each passed
      the same way (positional-only, positional-or-keyword, ``*args``, keyword-only, ``**kwargs``) and with the
      same default, compared as normalised source so ``x: bool=False`` and ``x = False`` agree. Annotations are
      ignored (``Optional[int]``/``int | None``/qualified names are equally right; ``returns`` asks about
      types); a leading ``self`` is ignored for methods.
    - ``params``: the fraction of the parameter names that appear in the answer as whole identifiers.
    - ``returns``: 1.0 iff the return annotation appears as whole tokens, spacing aside (``Envelope`` also
      inside ``lk.Envelope``).
    - ``which``: 1.0 iff the symbol's short name appears as a whole identifier (``nibble``, ``lk.nibble(...)``).
    - ``usage``: 1.0 iff some call of the symbol (``lk.nibble(pot, 5)``, ``shelf.pluck("x")``) passes arguments
      that bind to its signature.
    - ``gone`` (a removed symbol's diff probe): 1.0 unless the answer offers the removed name.
    """
    expect = question.expect
    if question.kind == "signature":
        return float(_signature_matches(answer, expect["name"], expect["parameters"]))
    if question.kind == "params":
        params = expect["params"]
        return sum(bool(_word(p).search(answer)) for p in params) / len(params)
    if question.kind == "returns":
        return float(bool(_annotation_pattern(expect["returns"]).search(answer)))
    if question.kind == "which":
        return float(bool(_word(expect["name"]).search(answer)))
    if question.kind == "usage":
        return float(_calls_binding(answer, expect["name"], expect["parameters"]))
    if question.kind == "gone":
        return float(not _word(expect["name"]).search(answer))
    raise ValueError(f"unknown API question kind {question.kind!r}")


def is_stale(question: ApiQuestion, answer: str) -> bool:
    """Whether ``answer`` offers the API as it was before the change ``question`` probes: it meets the parent
    version's expectation and not the current one (an old parameter list, a removed or renamed name)."""
    if question.stale is None:
        return False
    if question.kind == "gone":
        return score_api(question, answer) < 1
    outdated = replace(question, expect=question.stale)
    return score_api(outdated, answer) >= 1 - 1e-9 and score_api(question, answer) < 1 - 1e-9
