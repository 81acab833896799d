"""The public API of a Python package, wherever it is defined: per-module facts, and their resolution.

``describe_module`` reads one module with the AST into JSON-able facts (definitions with stub signatures and
docstrings, bindings, star imports, ``__all__``), which the extractor caches per git blob. ``public_api`` then
follows re-exports across modules (imports, star imports, aliases by assignment, a facade package over a sibling
package, private modules behind ``__all__``) to their definitions, names each definition by its canonical public
path, and says why a public name cannot be resolved.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, NamedTuple, Required, TypedDict

from doctune.corpus.markup import plain
from doctune.corpus.units import Unit

# -- Python: the facts of one module ---------------------------------------------------------------------------


def module_name(rel: str) -> str:
    parts = PurePosixPath(rel).with_suffix("").parts
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


class Definition(TypedDict):
    """A module-level function or class as its source shows it (classes also list public methods and attributes)."""

    kind: str  # "function" or "class"
    line: int
    signature: str  # a Python stub that parses, e.g. "def nibble(envelope: Envelope) -> int: ..."
    params: list[str]
    doc: str
    deprecated: str
    methods: dict[str, Definition]  # classes: public methods by name, in source order
    attributes: list[str]  # classes: public fields, class constants and enum members


class Binding(TypedDict, total=False):
    """One way a module-level name gets its value; ``via`` says which, and which other keys are there."""

    # "definition" (def/class), "import" (from M import N), "module" (import M), "value" (x = a.b: an alias when
    # a.b resolves to a definition or module) or "assignment" (any other value: a constant, a partial(...) result)
    via: Required[str]
    module: str | None  # import, module: the absolute module name; None for a relative import above the top level
    name: str  # import: the name taken from ``module``
    expr: str  # value: the dotted name assigned
    statement: str  # import, module: the statement as written, which unresolved reasons quote


class StarImport(TypedDict):
    module: str | None  # absolute module name; None for a relative import above the top level
    statement: str


class ExportList(TypedDict):
    """A statically known ``__all__``: literal names plus the ``__all__`` of other modules (``[*a.__all__]``)."""

    names: list[str]
    all_of: list[str]  # dotted names, as this module spells them, of the modules whose __all__ is included


class ModuleFacts(TypedDict):
    """What extraction needs of one module, JSON-able so it is cached per git blob; resolving names across
    modules happens later, in memory."""

    definitions: dict[str, Definition]
    bindings: dict[str, list[Binding]]  # name -> alternatives (if/try branches) in source order
    star_imports: list[StarImport]
    all: ExportList | None  # None: the module has no statically known __all__
    imports: list[str]  # every absolute module name its module-level imports may load (what is reachable)


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    return tuple(a.arg for a in args if a.arg not in ("self", "cls"))


def _deprecation(node: ast.AST, doc: str) -> str:
    """The deprecation note of a symbol: a ``.. deprecated::`` docstring line or a DeprecationWarning it emits."""
    if match := re.search(r"\.\. deprecated::\s*(.+(?:\n\s{3,}.+)*)", doc):
        return " ".join(match[1].split())
    for inner in ast.walk(node):
        if not (isinstance(inner, ast.Call) and inner.args):
            continue
        category = (
            inner.args[1]
            if len(inner.args) > 1
            else next((k.value for k in inner.keywords if k.arg == "category"), None)
        )
        if isinstance(category, ast.Name | ast.Attribute) and ast.unparse(category).endswith("DeprecationWarning"):
            message = inner.args[0]
            return str(message.value) if isinstance(message, ast.Constant) else ast.unparse(message)
    return ""


def _doctests(doc: str) -> tuple[str, ...]:
    lines = [ln.strip()[4:] for ln in doc.splitlines() if ln.strip().startswith((">>> ", "... "))]
    return ("\n".join(lines),) if lines else ()


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a name or a chain of attributes of a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (owner := _dotted(node.value)):
        return f"{owner}.{node.attr}"
    return None


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
    if isinstance(node, ast.Attribute) and node.attr == "__all__" and (module := _dotted(node.value)):
        return ExportList(names=[], all_of=[module])
    return None


def _joined(first: ExportList, second: ExportList) -> ExportList:
    return ExportList(names=first["names"] + second["names"], all_of=first["all_of"] + second["all_of"])


def _is_type_checking(test: ast.expr) -> bool:
    return (_dotted(test) or "").split(".")[-1] == "TYPE_CHECKING"


Defined = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _is_overload(node: Defined) -> bool:
    return any((_dotted(d) or "").split(".")[-1] == "overload" for d in node.decorator_list)


def _unpacked_names(target: ast.expr) -> list[str]:
    """The module-level names an assignment target binds (``a, *b = ...``); ``x.y = ...`` binds none."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _unpacked_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _unpacked_names(element)]
    return []


def _preferred(nodes: list[Defined]) -> Defined:
    """Which of the definitions of one name documents it: not an ``@overload`` stub (unless all are, as in a
    ``.pyi``), the first with a docstring (a property's getter, not its setter), else the first."""
    real = [n for n in nodes if not _is_overload(n)] or nodes
    return next((n for n in real if ast.get_docstring(n)), real[0])


def _definition(node: Defined, owner: str = "") -> Definition:
    doc = ast.get_docstring(node) or ""
    methods: dict[str, Definition] = {}
    attributes: list[str] = []
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        fields = [n for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
        bases = f"({', '.join(ast.unparse(b) for b in node.bases)})" if node.bases else ""
        body = ast.unparse(init).split("\n")[0] + " ..." if init else "\n    ".join(ast.unparse(f) for f in fields)
        stub = f"class {node.name}{bases}:\n    {body or '...'}"
        params = _params(init) if init else tuple(ast.unparse(f.target) for f in fields)
        kind = "class"
        members: dict[str, list[Defined]] = {}
        for member in node.body:
            if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef) and not member.name.startswith("_"):
                members.setdefault(member.name, []).append(member)
            # Fields, class constants and enum members are real attributes: `lib.Verdict.VETO` exists.
            targets = member.targets if isinstance(member, ast.Assign) else [getattr(member, "target", None)]
            attributes += [t.id for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_")]
        methods = {name: _definition(_preferred(nodes), owner=node.name) for name, nodes in members.items()}
    else:
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
        stub = f"{prefix} {node.name}({ast.unparse(node.args)}){returns}: ..."
        if owner:
            stub = f"class {owner}:\n    {stub}"
        params, kind = _params(node), "function"
    return Definition(
        kind=kind,
        line=node.lineno,
        signature=stub,
        params=list(params),
        doc=doc,
        deprecated=_deprecation(node, doc),
        methods=methods,
        attributes=list(dict.fromkeys(attributes)),
    )


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
            definitions={name: _definition(_preferred(nodes)) for name, nodes in self.definitions.items()},
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
        value = _dotted(node.value) if node.value is not None else None
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


# -- Python: resolving the public API across modules -----------------------------------------------------------

# Longest re-export chain followed; longer ones (only hostile or generated code has them) are unresolved.
MAX_HOPS = 32


class _Target(NamedTuple):
    """What a name denotes: a "definition" or an "attribute" (``name`` in ``module``), a "module", or something
    "external" to the repository (stdlib, a dependency: ``module`` is then its dotted name)."""

    kind: str
    module: str
    name: str = ""


@dataclass(frozen=True)
class _Unresolved:
    reason: str
    exists: bool  # there at run time (from a compiled module) although the repository cannot show what it is


Resolution = _Target | _Unresolved | None  # None: the module does not define the name


class _Resolver:
    """Follows names through imports, star imports and aliases to what they denote; memoized, cycle-safe."""

    def __init__(self, modules: dict[str, str], load: Callable[[str], ModuleFacts | None]) -> None:
        self.modules = modules  # module -> file
        self.load = load
        # Folders of a namespace package (no __init__.py) are modules too: `pkg.sub` of pkg/sub/mod.py.
        self.packages = {".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 2)}
        self.top_level = {m.split(".")[0] for m in modules}
        self.resolved: dict[tuple[str, str], Resolution] = {}
        self.resolving: set[tuple[str, str]] = set()
        self.exported: dict[str, list[str]] = {}
        self.listing: set[str] = set()

    def is_module(self, name: str) -> bool:
        return name in self.packages

    def in_repository(self, module: str) -> bool:
        """Whether an absolute import should find its module in the repository: its top-level package is here."""
        return module.split(".")[0] in self.top_level

    def facts(self, module: str) -> ModuleFacts | None:
        return self.load(module) if module in self.modules else None

    def resolve(self, module: str, name: str, hops: int = 0) -> Resolution:
        key = (module, name)
        if key in self.resolved:
            return self.resolved[key]
        if key in self.resolving:
            return _Unresolved(f"{module}.{name} is part of an import cycle", exists=False)
        if hops > MAX_HOPS:
            return _Unresolved(f"{module}.{name}: re-export chain longer than {MAX_HOPS} hops", exists=False)
        self.resolving.add(key)
        try:
            found = self._resolve(module, name, hops)
        finally:
            self.resolving.discard(key)
        self.resolved[key] = found
        return found

    def _resolve(self, module: str, name: str, hops: int) -> Resolution:
        submodule = f"{module}.{name}"
        facts = self.facts(module)
        if facts is None:
            if self.is_module(submodule):
                return _Target("module", submodule)
            if module in self.modules:
                return _Unresolved(f"{module} could not be read ({self.modules[module]} is skipped)", exists=True)
            return None
        alternatives = facts["bindings"].get(name, [])
        if not alternatives and self.is_module(submodule):
            return _Target("module", submodule)  # importing a submodule sets it as an attribute of its package
        failure: _Unresolved | None = None
        for binding in alternatives:
            found = self._follow(module, name, binding, hops)
            if isinstance(found, _Target):
                return found
            failure = failure or found
        if failure is not None:
            return failure
        for star in facts["star_imports"]:
            source = star["module"]
            if source and self.is_module(source) and name in self.public_names(source, hops + 1):
                listed = f"{star['statement']}: __all__ of {source} lists {name}, which {source} does not define"
                return self.resolve(source, name, hops + 1) or _Unresolved(listed, exists=False)
        if "__getattr__" in facts["bindings"]:
            return _Target("attribute", module, name)  # PEP 562: the module makes up attributes at run time
        return None

    def _follow(self, module: str, name: str, binding: Binding, hops: int) -> _Target | _Unresolved:
        via = binding["via"]
        if via == "definition":
            return _Target("definition", module, name)
        if via == "assignment":
            return _Target("attribute", module, name)
        if via == "value":
            # `comp = compose` is an alias of what it names; `x = CONSTANT` or an unknown name is a plain value.
            found = self.resolve_dotted(module, binding["expr"], hops)
            if isinstance(found, _Target) and found.kind in ("definition", "module"):
                return found
            return _Target("attribute", module, name)
        source, statement = binding["module"], binding["statement"]
        if source is None:
            return _Unresolved(f"{statement}: the relative import climbs above the top-level package", exists=False)
        imported = f"{source}.{binding['name']}" if via == "import" else source
        if self.is_module(imported):
            return _Target("module", imported)
        if not self.is_module(source):
            if self.in_repository(source):
                missing = f"module {source} is not in the repository (a compiled extension without a .pyi stub?)"
                return _Unresolved(f"{statement}: {missing}", exists=True)
            return _Target("external", imported)
        if source in self.modules and self.facts(source) is None:
            return _Unresolved(f"{statement}: {self.modules[source]} is skipped, so it cannot be read", exists=True)
        found = self.resolve(source, binding["name"], hops + 1)
        return found or _Unresolved(f"{statement}: {source} does not define {binding['name']}", exists=False)

    def resolve_dotted(self, module: str, dotted: str, hops: int) -> Resolution:
        """What ``a.b.c`` written in ``module`` denotes (attributes are followed through modules only)."""
        first, *rest = dotted.split(".")
        found = self.resolve(module, first, hops + 1)
        for part in rest:
            if not (isinstance(found, _Target) and found.kind == "module"):
                return None
            found = self.resolve(found.module, part, hops + 1)
        return found

    def public_names(self, module: str, hops: int = 0) -> list[str]:
        if module in self.exported:
            return self.exported[module]
        if module in self.listing or hops > MAX_HOPS:
            return []  # modules that star-import each other: each lists what it has itself
        self.listing.add(module)
        try:
            names = list(dict.fromkeys(self._public_names(module, hops)))
        finally:
            self.listing.discard(module)
        self.exported[module] = names
        return names

    def _public_names(self, module: str, hops: int) -> list[str]:
        """``__all__`` when statically known, else every public name the module defines, assigns or imports from
        the repository (``from functools import partial`` or ``import os`` do not make the library's API)."""
        facts = self.facts(module)
        if facts is None:
            return []
        if (listed := facts["all"]) is not None:
            names = list(listed["names"])
            for dotted in listed["all_of"]:
                found = self.resolve_dotted(module, dotted, hops)
                if not (isinstance(found, _Target) and found.kind == "module"):
                    break  # `other.__all__` of something this cannot follow: __all__ is not known after all
                names += self.public_names(found.module, hops + 1)
            else:
                return names
        names = [
            name
            for name, alternatives in facts["bindings"].items()
            if not name.startswith("_") and any(self._binds_library_name(b) for b in alternatives)
        ]
        for star in facts["star_imports"]:
            if star["module"] and self.is_module(star["module"]):
                names += self.public_names(star["module"], hops + 1)
        return names

    def _binds_library_name(self, binding: Binding) -> bool:
        if binding["via"] == "module":
            return False  # `import x` is for the module's own use
        if binding["via"] == "import":
            source = binding["module"]
            return source is None or self.in_repository(source)
        return True


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _is_public(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


def _path_order(path: str) -> tuple[int, str]:
    """Shorter paths first (fewest dots), then alphabetical: how a canonical name is chosen among exports."""
    return path.count("."), path


def _summary(doc: str) -> str:
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _api_entry(definition: Definition, rel: str, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "path": rel,
        "line": definition["line"],
        "signature": definition["signature"],
        "params": list(definition["params"]),
        "deprecated": plain(definition["deprecated"]),
        "summary": _summary(plain(definition["doc"])),
    }


def _api_unit(name: str, definition: Definition, rel: str) -> Unit:
    doc = definition["doc"]
    return Unit(
        key=f"api:{name}",
        kind="api",
        path=rel,
        title=name,
        text=plain(doc),
        signature=definition["signature"],
        params=tuple(definition["params"]),
        examples=_doctests(doc),
        deprecated=plain(definition["deprecated"]),
    )


@dataclass
class PublicAPI:
    units: dict[str, list[Unit]]  # defining file -> its API units in source order
    symbols: dict[str, dict[str, Any]]
    unresolved: dict[str, str]  # public name -> why it cannot be resolved


def public_api(package: str, modules: dict[str, str], load: Callable[[str], ModuleFacts | None]) -> PublicAPI:
    """The public API of ``package``: each public name of each public module resolved to what it denotes, each
    definition under its canonical name (its own path if public, else the shortest public path exporting it)."""
    resolver = _Resolver(modules, load)
    own_modules = sorted(
        (m for m in modules if _inside(m, package) and _is_public(m.removeprefix(package))), key=_path_order
    )
    # The public path a module's names are listed under: its own name, or for a module outside the package (or
    # private) that a public name denotes, the first such name; each module is listed once.
    listed_as = {module: module for module in own_modules}
    queue = deque(own_modules)
    exports: dict[_Target, dict[str, str]] = {}  # target -> {public path: the file that exports it there}
    symbols: dict[str, dict[str, Any]] = {m: {"kind": "module", "path": modules[m]} for m in own_modules}
    unresolved: dict[str, str] = {}
    while queue:
        module = queue.popleft()
        path, rel, facts = listed_as[module], modules[module], load(module)
        for star in facts["star_imports"] if facts else []:
            source = star["module"]
            if source is None:
                unresolved[f"{path}.*"] = f"{star['statement']}: the relative import climbs above the top-level package"
            elif resolver.in_repository(source) and not resolver.is_module(source):
                missing = f"module {source} is not in the repository (a compiled extension without a .pyi stub?)"
                unresolved[f"{path}.*"] = f"{star['statement']}: {missing}"
        for name in resolver.public_names(module):
            if name.startswith("_"):
                continue  # dunder metadata (`__version__`) and private names listed in __all__ are not API
            public_path = f"{path}.{name}"
            found = resolver.resolve(module, name) or _Unresolved(
                f"__all__ of {module} lists {name}, which {module} does not define", exists=False
            )
            if isinstance(found, _Unresolved):
                unresolved[public_path] = found.reason
                if found.exists:
                    symbols[public_path] = {"kind": "attribute", "path": rel}
            elif found.kind == "external":
                symbols[public_path] = {"kind": "attribute", "path": rel}
            else:
                if found.kind == "module" and found.module in modules and found.module not in listed_as:
                    listed_as[found.module] = public_path
                    queue.append(found.module)
                exports.setdefault(found, {})[public_path] = rel

    units: dict[str, list[tuple[int, int, Unit]]] = {}
    for target, paths in exports.items():
        own_path = f"{target.module}.{target.name}" if target.name else target.module
        if target.kind == "module" and target.module in listed_as:
            canonical = listed_as[target.module]
        elif own_path in paths:
            canonical = own_path
        else:
            canonical = min(paths, key=_path_order)
        # A namespace package has no file: it is described where it is exported.
        defined_in = modules[target.module] if target.module in modules else paths[canonical]
        for public_path, via in paths.items():
            if public_path != canonical:
                symbols[public_path] = {"kind": "alias", "path": via, "alias_of": canonical}
        facts = load(target.module) if target.kind == "definition" else None
        if facts is None:
            symbols[canonical] = {"kind": target.kind, "path": defined_in}
            continue
        definition = facts["definitions"][target.name]
        symbols[canonical] = _api_entry(definition, defined_in, definition["kind"])
        file_units = units.setdefault(defined_in, [])
        file_units.append((definition["line"], 0, _api_unit(canonical, definition, defined_in)))
        for attribute in definition["attributes"]:
            symbols[f"{canonical}.{attribute}"] = {"kind": "attribute", "path": defined_in}
        for method_name, method in definition["methods"].items():
            qualified = f"{canonical}.{method_name}"
            symbols[qualified] = _api_entry(method, defined_in, "method")
            file_units.append((definition["line"], method["line"], _api_unit(qualified, method, defined_in)))
    # Functions and classes a public module defines without exporting them are not API, but they exist: a pair or an
    # answer that mentions `toolz.itertoolz.getter` names something real, not a hallucination.
    for module in own_modules:
        facts = load(module)
        for name in facts["definitions"] if facts else ():
            if not name.startswith("_"):
                symbols.setdefault(f"{listed_as[module]}.{name}", {"kind": "internal", "path": modules[module]})
    return PublicAPI(
        units={rel: [unit for *_, unit in sorted(found, key=lambda f: f[:2])] for rel, found in units.items()},
        symbols=dict(sorted(symbols.items())),
        unresolved=dict(sorted(unresolved.items())),
    )


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
    queue = deque(sorted(m for m in modules if _inside(m, package)))
    seen = set(queue)
    while queue:
        facts = load(queue.popleft())
        for imported in facts["imports"] if facts else []:
            if imported in modules and imported not in seen:
                seen.add(imported)
                queue.append(imported)
