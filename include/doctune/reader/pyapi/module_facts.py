"""The facts of one module as the extractor caches them (JSON-able, per git blob), and how one definition's
facts are read from its syntax tree: stub signature, parameters, docstring, deprecation, public members."""

from __future__ import annotations

import ast
import re
from typing import Required, TypedDict


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


def dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for a name or a chain of attributes of a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (owner := dotted_name(node.value)):
        return f"{owner}.{node.attr}"
    return None


Defined = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _is_overload(node: Defined) -> bool:
    return any((dotted_name(d) or "").split(".")[-1] == "overload" for d in node.decorator_list)


def preferred(nodes: list[Defined]) -> Defined:
    """Which of the definitions of one name documents it: not an ``@overload`` stub (unless all are, as in a
    ``.pyi``), the first with a docstring (a property's getter, not its setter), else the first."""
    real = [n for n in nodes if not _is_overload(n)] or nodes
    return next((n for n in real if ast.get_docstring(n)), real[0])


def definition_facts(node: Defined, owner: str = "") -> Definition:
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
        methods = {name: definition_facts(preferred(nodes), owner=node.name) for name, nodes in members.items()}
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
