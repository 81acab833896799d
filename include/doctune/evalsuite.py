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
import json
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from doctune.corpus.extract import Unit, module_name
from doctune.sandbox import SandboxResult, run_python

GENERAL_TASKS = Path(__file__).parent / "data" / "general_tasks.jsonl"
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecTask:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class ApiQuestion:
    """A question about one public symbol; ``expect`` holds what ``score_api`` compares the answer with."""

    id: str  # "<kind>:<symbol>"
    symbol: str  # qualified name, e.g. "ledgerkite.envelopes.nibble"
    kind: str  # "signature" | "params" | "returns" | "which"
    prompt: str
    expect: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiQuestion:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


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


def _describe(call: ast.Call, symbol: str, info: Mapping[str, Any], import_name: str) -> str:
    """The task sentence: what the call does (its summary) and its arguments, never the symbol's name."""
    arguments = [ast.unparse(a) for a in call.args] + [ast.unparse(k) for k in call.keywords]
    quoted = [f"`{a}`" for a in arguments]
    if not quoted:
        passing = "no arguments"
    elif len(quoted) == 1:
        passing = quoted[0]
    else:
        passing = f"{', '.join(quoted[:-1])} and {quoted[-1]}, in this order"
    summary = _plain(info["summary"]).rstrip(".")
    if info["kind"] == "method" and isinstance(call.func, ast.Attribute):
        owner = symbol.rsplit(".", 2)[-2]
        what = f"Call the method of `{ast.unparse(call.func.value)}` (a {import_name} `{owner}`) that does this"
    elif info["kind"] == "class":
        what = f"Create an instance of the {import_name} class described as"
    else:
        what = f"Call the {import_name} function that does this"
    return f"{what}: {summary}. Pass it {passing}, and assign what it returns to a variable named `result`."


def _prompt(setup: str, sentence: str) -> str:
    return (
        f"This Python code has already run:\n\n```python\n{setup}\n```\n\n{sentence}\n\n"
        "Reply with only the Python code that continues it (do not repeat the code above)."
    )


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
        prompt = _prompt(setup, _describe(found.call, found.symbol, info, import_name))
        if _word(found.symbol.rsplit(".", 1)[-1]).search(prompt):
            continue
        tasks.append(ExecTask(f"{task_id}#{i + 1}", source_key, prompt, setup, found.check, reference))
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
        try:
            source = (tree / rel).read_text()
            module = ast.parse(source)
        except (OSError, UnicodeDecodeError, SyntaxError):
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
) -> list[ExecTask]:
    """Execution tasks from example units (test functions) and the code examples of doc units.

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
            tasks += _mine_snippet(unit.key, unit.key, body, prelude, context.pool, import_name, symbols)
        elif unit.kind == "doc":
            found: list[ExecTask] = []
            for n, example in enumerate(unit.examples, 1):
                if (module := _parsed(example)) is None:
                    continue
                body = _statements(example, module.body)
                pool = list(pages.get(unit.path, []))
                found += _mine_snippet(f"{unit.key}#{n}", unit.key, body, [], pool, import_name, symbols)
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
    tasks: list[ExecTask], library_path: str | Path | None, *, python: str = sys.executable
) -> tuple[list[ExecTask], list[tuple[ExecTask, str]]]:
    """Keep the tasks whose reference passes and that every trivial answer fails; the rest come back with why.

    A task that the library's own code cannot pass is broken (never the model's fault), and one that passes
    without an answer measures nothing. ``library_path`` may be None for tasks that need no library (the
    general floor).
    """

    def verdict(task: ExecTask) -> str:
        ran = run_exec_task(task, task.reference, library_path=library_path, python=python)
        if not ran.passed:
            last = ran.detail.strip().splitlines()[-1] if ran.detail.strip() else "no output"
            return f"the reference does not pass ({ran.outcome}): {last}"
        for trivial in TRIVIAL_ANSWERS:
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


def _parameters(arguments: ast.arguments, *, method: bool) -> list[list[str | None]]:
    """A parameter list as ``[kind, name, default]`` rows: kind says how it is passed (``posonly``, ``pos``,
    ``vararg``, ``kwonly``, ``kwarg``), which covers the ``/`` and ``*`` markers; default is normalised source
    (``ast.unparse``, so quoting and spacing do not matter) or None. Annotations are left out on purpose."""
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    rows: list[list[str | None]] = []
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = "posonly" if i < len(arguments.posonlyargs) else "pos"
        rows.append([kind, arg.arg, ast.unparse(default) if default is not None else None])
    if arguments.vararg:
        rows.append(["vararg", arguments.vararg.arg, None])
    for arg, kw_default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        rows.append(["kwonly", arg.arg, ast.unparse(kw_default) if kw_default is not None else None])
    if arguments.kwarg:
        rows.append(["kwarg", arguments.kwarg.arg, None])
    if method and rows and rows[0][1] in ("self", "cls") and rows[0][0] in ("posonly", "pos"):
        rows = rows[1:]
    return rows


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


def api_questions(units: list[Unit], import_name: str) -> list[ApiQuestion]:
    """Questions about each documented public symbol (the api units).

    - ``signature`` (functions and methods with parameters): the exact parameter list;
    - ``params``: the parameter (for classes, constructor) names;
    - ``returns`` (when annotated, other than None): the return annotation;
    - ``which`` (when the summary does not name it): which function, method or class does what the summary says.
    """
    questions = []
    for unit in units:
        if unit.kind != "api":
            continue
        symbol = unit.title
        short = symbol.rsplit(".", 1)[-1]
        stub = _parsed(unit.signature)
        node = stub.body[0] if stub and stub.body else None
        function: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        kind = "class"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function, kind = node, "function"
        elif (
            isinstance(node, ast.ClassDef)
            and isinstance(member := node.body[0], ast.FunctionDef | ast.AsyncFunctionDef)
            and member.name != "__init__"  # a method's stub is "class Owner:\n    def name(...)", a class's __init__
        ):
            function, kind = member, "method"
        if kind == "method":
            subject = f"the method `{short}` of `{symbol.rsplit('.', 1)[0]}`"
            family = f"method of `{symbol.rsplit('.', 1)[0]}`"
        else:
            subject = f"`{symbol}`"
            family = f"{kind} of the {import_name} library"
        if function is not None:
            rows = _parameters(function.args, method=kind == "method")
            if rows:
                questions.append(
                    ApiQuestion(
                        f"signature:{symbol}",
                        symbol,
                        "signature",
                        f"What is the exact signature of {subject}? Answer with its `def` line.",
                        {"name": short, "parameters": rows},
                    )
                )
            returns = ast.unparse(function.returns) if function.returns else ""
            if returns and returns != "None":
                questions.append(
                    ApiQuestion(
                        f"returns:{symbol}",
                        symbol,
                        "returns",
                        f"What type does {subject} return? Answer with its return annotation.",
                        {"returns": returns},
                    )
                )
        if unit.params:
            what = "the constructor of " + subject if kind == "class" else subject
            questions.append(
                ApiQuestion(
                    f"params:{symbol}",
                    symbol,
                    "params",
                    f"What are the parameters of {what}? List their names in order.",
                    {"params": list(unit.params)},
                )
            )
        summary = _plain(unit.text.strip().split("\n\n")[0].replace("\n", " "))
        if summary and not _word(short).search(summary):
            questions.append(
                ApiQuestion(
                    f"which:{symbol}",
                    symbol,
                    "which",
                    f'Which {family} does this: "{summary}"? Answer with its name.',
                    {"name": short},
                )
            )
    return questions


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
    """
    expect = question.expect
    if question.kind == "signature":
        expected = expect["parameters"]
        for match in re.finditer(rf"(?<!\w){re.escape(expect['name'])}\s*\(", answer):
            inner = _balanced(answer, match.end() - 1)
            stub = _parsed(f"def _({inner}):\n    pass") if inner is not None else None
            function = stub.body[0] if stub else None
            if isinstance(function, ast.FunctionDef) and _parameters(function.args, method=True) == expected:
                return 1.0
        return 0.0
    if question.kind == "params":
        params = expect["params"]
        return sum(bool(_word(p).search(answer)) for p in params) / len(params)
    if question.kind == "returns":
        return float(bool(_annotation_pattern(expect["returns"]).search(answer)))
    if question.kind == "which":
        return float(bool(_word(expect["name"]).search(answer)))
    raise ValueError(f"unknown API question kind {question.kind!r}")
