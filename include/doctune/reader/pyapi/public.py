"""The public API of a package: each public name of each public module resolved, each definition under its
canonical name, as API units and the symbol table."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from doctune.reader.markup import plain
from doctune.reader.pyapi.module_facts import Definition, ModuleFacts
from doctune.reader.pyapi.reader import in_package
from doctune.reader.pyapi.resolver import Resolver, Target, Unresolved
from doctune.reader.units import Unit


def _is_public(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


def _path_order(path: str) -> tuple[int, str]:
    """Shorter paths first (fewest dots), then alphabetical: how a canonical name is chosen among exports."""
    return path.count("."), path


def _doctests(doc: str) -> tuple[str, ...]:
    lines = [ln.strip()[4:] for ln in doc.splitlines() if ln.strip().startswith((">>> ", "... "))]
    return ("\n".join(lines),) if lines else ()


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
    resolver = Resolver(modules, load)
    own_modules = sorted(
        (m for m in modules if in_package(m, package) and _is_public(m.removeprefix(package))), key=_path_order
    )
    # The public path a module's names are listed under: its own name, or for a module outside the package (or
    # private) that a public name denotes, the first such name; each module is listed once.
    listed_as = {module: module for module in own_modules}
    queue = deque(own_modules)
    exports: dict[Target, dict[str, str]] = {}  # target -> {public path: the file that exports it there}
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
            found = resolver.resolve(module, name) or Unresolved(
                f"__all__ of {module} lists {name}, which {module} does not define", exists=False
            )
            if isinstance(found, Unresolved):
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
