"""Reading modules: which file is which module, one module's facts (nothing is imported or run), and which
modules the package reaches."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Callable
from pathlib import PurePosixPath

from doctune.reader.pyapi.module_facts import (
    Binding,
    Defined,
    ExportList,
    ModuleFacts,
    StarImport,
    definition_facts,
    dotted_name,
    preferred,
)


def module_name(rel: str) -> str:
    parts = PurePosixPath(rel).with_suffix("").parts
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _export_list(node: ast.expr) -> ExportList | None:
    """The names an ``__all__`` value lists when they are statically known: a list or tuple of strings and of
    ``*other.__all__``, ``other.__all__``, and concatenations of these with ``+``."""
    if isinstance(node, ast.List | ast.Tuple):
        listed = ExportList(names=[], all_of=[])
        for element in node.elts:
            if isinstance(element, ast.Constant) and isinstance(element.value, str):
                listed["names"].append(element.value)
            elif isinstance(element, ast.Starred) and (other := _export_list(element.value)):
                listed = _joined(listed, other)
            else:
                return None
        return listed
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _export_list(node.left), _export_list(node.right)
        return _joined(left, right) if left is not None and right is not None else None
    if isinstance(node, ast.Attribute) and node.attr == "__all__" and (module := dotted_name(node.value)):
        return ExportList(names=[], all_of=[module])
    return None


def _joined(first: ExportList, second: ExportList) -> ExportList:
    return ExportList(names=first["names"] + second["names"], all_of=first["all_of"] + second["all_of"])


def _is_type_checking(test: ast.expr) -> bool:
    return (dotted_name(test) or "").split(".")[-1] == "TYPE_CHECKING"


def _unpacked_names(target: ast.expr) -> list[str]:
    """The module-level names an assignment target binds (``a, *b = ...``); ``x.y = ...`` binds none."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _unpacked_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _unpacked_names(element)]
    return []


class _ModuleReader:
    """Collects the module-level facts of one module, statement by statement (nothing is imported or run)."""

    def __init__(self, package: str) -> None:
        self.package = package  # the package relative imports start from
        self.definitions: dict[str, list[Defined]] = {}
        self.bindings: dict[str, list[Binding]] = {}
        self.star_imports: list[StarImport] = []
        self.imports: set[str] = set()
        self.exports: ExportList | None = None
        self.exports_known = True  # False once __all__ is built in a way this reader cannot follow

    def facts(self) -> ModuleFacts:
        return ModuleFacts(
            definitions={name: definition_facts(preferred(nodes)) for name, nodes in self.definitions.items()},
            bindings=self.bindings,
            star_imports=self.star_imports,
            all=self.exports if self.exports_known else None,
            imports=sorted(self.imports),
        )

    def walk(self, statements: list[ast.stmt], conditional: bool) -> None:
        for node in statements:
            if isinstance(node, Defined):
                self.definitions.setdefault(node.name, []).append(node)
                self.bind(node.name, Binding(via="definition"), conditional)
            elif isinstance(node, ast.Import):
                self.read_import(node, conditional)
            elif isinstance(node, ast.ImportFrom):
                self.read_import_from(node, conditional)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                self.read_assignment(node, conditional)
            elif isinstance(node, ast.Expr):
                self.read_all_mutation(node.value)
            elif isinstance(node, ast.If):
                # `if TYPE_CHECKING:` imports exist for the type checker only, never at run time.
                if not _is_type_checking(node.test):
                    self.walk(node.body, conditional=True)
                self.walk(node.orelse, conditional=True)
            elif isinstance(node, ast.Try | ast.TryStar):
                for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                    self.walk(block, conditional=True)
            elif isinstance(node, ast.With):
                self.walk(node.body, conditional)

    def bind(self, name: str, binding: Binding, conditional: bool) -> None:
        """Record a binding: a plain statement replaces what the name had, a branch of an if/try adds an
        alternative (``try: from ._speedups import f`` / ``except ImportError: from ._native import f``)."""
        current = self.bindings.get(name, [])
        if conditional:
            if binding not in current:
                self.bindings[name] = [*current, binding]
        elif binding["via"] == "assignment" and any(b["via"] == "definition" for b in current):
            return  # `f = wrap(f)` still is the function whose docstring and signature the source shows
        else:
            self.bindings[name] = [binding]

    def absolute(self, level: int, module: str | None) -> str | None:
        """The absolute name of an imported module; None when a relative import climbs above the top level."""
        if not level:
            return module or ""
        anchor = self.package.split(".") if self.package else []
        keep = len(anchor) - (level - 1)
        if keep <= 0:
            return None
        return ".".join([*anchor[:keep], *([module] if module else [])])

    def read_import(self, node: ast.Import, conditional: bool) -> None:
        for alias in node.names:
            statement = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
            parts = alias.name.split(".")
            self.imports.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            # `import a.b` binds `a`; `import a.b as c` binds `c` to `a.b`.
            module = alias.name if alias.asname else parts[0]
            self.bind(alias.asname or parts[0], Binding(via="module", module=module, statement=statement), conditional)

    def read_import_from(self, node: ast.ImportFrom, conditional: bool) -> None:
        source = self.absolute(node.level, node.module)
        for alias in node.names:
            statement = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
            statement += f" as {alias.asname}" if alias.asname else ""
            if alias.name == "*":
                self.star_imports.append(StarImport(module=source, statement=statement))
            else:
                binding = Binding(via="import", module=source, name=alias.name, statement=statement)
                self.bind(alias.asname or alias.name, binding, conditional)
            if source:
                self.imports.add(source)
                if alias.name != "*":
                    self.imports.add(f"{source}.{alias.name}")  # `from pkg import submodule`

    def read_assignment(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign, conditional: bool) -> None:
        if isinstance(node, ast.AugAssign):
            if _is_name(node.target, "__all__") and isinstance(node.op, ast.Add):
                self.extend_exports(_export_list(node.value))
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(_is_name(t, "__all__") for t in targets):
            if node.value is not None:
                self.exports = _export_list(node.value)
                self.exports_known = self.exports is not None
            return
        value = dotted_name(node.value) if node.value is not None else None
        for target in targets:
            if isinstance(target, ast.Name):
                binding = Binding(via="value", expr=value) if value else Binding(via="assignment")
                self.bind(target.id, binding, conditional)
            else:  # unpacking binds each name to a part of the value, never to the value itself
                for name in _unpacked_names(target):
                    self.bind(name, Binding(via="assignment"), conditional)

    def read_all_mutation(self, expr: ast.expr) -> None:
        """``__all__.extend([...])`` and ``__all__.append("x")``."""
        if not (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and _is_name(expr.func.value, "__all__")
            and len(expr.args) == 1
        ):
            return
        if expr.func.attr == "extend":
            self.extend_exports(_export_list(expr.args[0]))
        elif expr.func.attr == "append":
            self.extend_exports(_export_list(ast.List(elts=expr.args)))

    def extend_exports(self, listed: ExportList | None) -> None:
        if not self.exports_known:
            return
        if listed is None:
            self.exports, self.exports_known = None, False
        else:
            self.exports = _joined(self.exports or ExportList(names=[], all_of=[]), listed)


# Deepest syntax tree accepted from a repository. Hand-written code stays under ~100 levels (the deepest in this
# project's ~20k installed modules is a generated sympy table); a parse that succeeds deeper still breaks later
# recursive passes (ast.unparse, NodeVisitor, deepcopy run out of stack near 250), so it is refused up front.
MAX_AST_DEPTH = 150


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse`` for code from a repository: raises SyntaxError for what is not Python and RecursionError for
    code nested deeper than MAX_AST_DEPTH (ast.parse itself raises it, or MemoryError, on deeper code)."""
    tree = ast.parse(source, filename=filename)
    stack: list[tuple[ast.AST, int]] = [(node, 1) for node in tree.body]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            line = getattr(node, "lineno", "?")
            raise RecursionError(f"code nested more than {MAX_AST_DEPTH} levels deep (line {line})")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def describe_module(rel: str, source: str) -> ModuleFacts:
    """The facts of one module: its definitions, imports, assignments, ``__all__`` and star imports."""
    tree = parse_python(source, filename=rel)
    module = module_name(rel)
    reader = _ModuleReader(module if PurePosixPath(rel).stem == "__init__" else module.rpartition(".")[0])
    reader.walk(tree.body, conditional=False)
    return reader.facts()


def module_index(paths: list[str]) -> dict[str, str]:
    """Module name -> the file that is its source. A ``.py`` wins over its ``.pyi`` stub; the stub stands in for
    a compiled module that has no ``.py``."""
    index: dict[str, str] = {}
    for rel in sorted(paths):
        name = module_name(rel)
        if name not in index or (index[name].endswith(".pyi") and rel.endswith(".py")):
            index[name] = rel
    return index


def read_reachable(package: str, modules: dict[str, str], load: Callable[[str], ModuleFacts | None]) -> None:
    """Parse the package's modules and, transitively, every repository module they import at module level (a
    sibling top-level package behind a facade, too); what nothing reaches is never parsed."""
    queue = deque(sorted(m for m in modules if in_package(m, package)))
    seen = set(queue)
    while queue:
        facts = load(queue.popleft())
        for imported in facts["imports"] if facts else []:
            if imported in modules and imported not in seen:
                seen.add(imported)
                queue.append(imported)
