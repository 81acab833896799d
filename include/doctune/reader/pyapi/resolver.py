"""Resolving names across modules: what a public name denotes, through imports, star imports and aliases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from doctune.reader.pyapi.module_facts import Binding, ModuleFacts

# Longest re-export chain followed; longer ones (only hostile or generated code has them) are unresolved.
MAX_HOPS = 32


class Target(NamedTuple):
    """What a name denotes: a "definition" or an "attribute" (``name`` in ``module``), a "module", or something
    "external" to the repository (stdlib, a dependency: ``module`` is then its dotted name)."""

    kind: str
    module: str
    name: str = ""


@dataclass(frozen=True)
class Unresolved:
    reason: str
    exists: bool  # there at run time (from a compiled module) although the repository cannot show what it is


Resolution = Target | Unresolved | None  # None: the module does not define the name


class Resolver:
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
            return Unresolved(f"{module}.{name} is part of an import cycle", exists=False)
        if hops > MAX_HOPS:
            return Unresolved(f"{module}.{name}: re-export chain longer than {MAX_HOPS} hops", exists=False)
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
                return Target("module", submodule)
            if module in self.modules:
                return Unresolved(f"{module} could not be read ({self.modules[module]} is skipped)", exists=True)
            return None
        alternatives = facts["bindings"].get(name, [])
        if not alternatives and self.is_module(submodule):
            return Target("module", submodule)  # importing a submodule sets it as an attribute of its package
        failure: Unresolved | None = None
        for binding in alternatives:
            found = self._follow(module, name, binding, hops)
            if isinstance(found, Target):
                return found
            failure = failure or found
        if failure is not None:
            return failure
        for star in facts["star_imports"]:
            source = star["module"]
            if source and self.is_module(source) and name in self.public_names(source, hops + 1):
                listed = f"{star['statement']}: __all__ of {source} lists {name}, which {source} does not define"
                return self.resolve(source, name, hops + 1) or Unresolved(listed, exists=False)
        if "__getattr__" in facts["bindings"]:
            return Target("attribute", module, name)  # PEP 562: the module makes up attributes at run time
        return None

    def _follow(self, module: str, name: str, binding: Binding, hops: int) -> Target | Unresolved:
        via = binding["via"]
        if via == "definition":
            return Target("definition", module, name)
        if via == "assignment":
            return Target("attribute", module, name)
        if via == "value":
            # `comp = compose` is an alias of what it names; `x = CONSTANT` or an unknown name is a plain value.
            found = self.resolve_dotted(module, binding["expr"], hops)
            if isinstance(found, Target) and found.kind in ("definition", "module"):
                return found
            return Target("attribute", module, name)
        source, statement = binding["module"], binding["statement"]
        if source is None:
            return Unresolved(f"{statement}: the relative import climbs above the top-level package", exists=False)
        imported = f"{source}.{binding['name']}" if via == "import" else source
        if self.is_module(imported):
            return Target("module", imported)
        if not self.is_module(source):
            if self.in_repository(source):
                missing = f"module {source} is not in the repository (a compiled extension without a .pyi stub?)"
                return Unresolved(f"{statement}: {missing}", exists=True)
            return Target("external", imported)
        if source in self.modules and self.facts(source) is None:
            return Unresolved(f"{statement}: {self.modules[source]} is skipped, so it cannot be read", exists=True)
        found = self.resolve(source, binding["name"], hops + 1)
        return found or Unresolved(f"{statement}: {source} does not define {binding['name']}", exists=False)

    def resolve_dotted(self, module: str, dotted: str, hops: int) -> Resolution:
        """What ``a.b.c`` written in ``module`` denotes (attributes are followed through modules only)."""
        first, *rest = dotted.split(".")
        found = self.resolve(module, first, hops + 1)
        for part in rest:
            if not (isinstance(found, Target) and found.kind == "module"):
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
                if not (isinstance(found, Target) and found.kind == "module"):
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
