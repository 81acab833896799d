"""The public API of a Python package, wherever it is defined: per-module facts, and their resolution.

``describe_module`` reads one module with the AST into JSON-able facts (definitions with stub signatures and
docstrings, bindings, star imports, ``__all__``), which the extractor caches per git blob. ``public_api`` then
follows re-exports across modules (imports, star imports, aliases by assignment, a facade package over a sibling
package, private modules behind ``__all__``) to their definitions, names each definition by its canonical public
path, and says why a public name cannot be resolved.

Modules:
- ``module_facts``: the JSON-able facts of one module (``ModuleFacts``) and of each definition in it;
- ``reader``: files to module names, one module's facts (``describe_module``, ``parse_python``), and which
  modules the package reaches;
- ``resolver``: following a name through imports, star imports and aliases to what it denotes;
- ``public``: ``public_api``, each public name resolved and named by its canonical path, as units and symbols.
"""

from doctune.reader.pyapi.module_facts import ModuleFacts
from doctune.reader.pyapi.public import PublicAPI, public_api
from doctune.reader.pyapi.reader import describe_module, module_index, module_name, parse_python, read_reachable

__all__ = [
    "ModuleFacts",
    "PublicAPI",
    "describe_module",
    "module_index",
    "module_name",
    "parse_python",
    "public_api",
    "read_reachable",
]
