"""Read a library the way a senior engineer does: docs, the public API, its tests and its changelog.

Everything read becomes a *unit* (one doc section, one public symbol, one test, one changelog section) with a
stable key. The public API also becomes a *symbol table*, which later stages use to reject pairs that mention
APIs that do not exist. Files are selected from what git tracks, by include/exclude globs; symlinks are never
followed, and binary, huge, non-UTF-8 or unparsable files are skipped with a counted reason.

The public API is what the package exports, wherever it is defined: re-exports are followed through imports, star
imports and aliases to their definitions (in private modules, or in a sibling top-level package behind a facade),
and each definition is named by its canonical public path.

Modules:
- ``files``: which tracked files are read, and as what (markdown, rst, text, changelog, python, tests);
- ``documents``: docs, changelogs and tests -> units;
- ``surface``: ``extract`` and its ``Surface``: each selected file read through the per-blob cache, the public API
  resolved (``reader.pyapi``) into API units and the symbol table.
"""

from doctune.reader.extract.documents import example_units, rst_units
from doctune.reader.extract.files import MAX_FILE_BYTES, classify, matches, read_text, tracked_files
from doctune.reader.extract.surface import (
    EXTRACTOR_VERSION,
    HOSTILE_INPUT_FAILURES,
    Surface,
    extract,
    extraction_cache,
)
from doctune.reader.units import Unit

__all__ = [
    "EXTRACTOR_VERSION",
    "HOSTILE_INPUT_FAILURES",
    "MAX_FILE_BYTES",
    "Surface",
    "Unit",
    "classify",
    "example_units",
    "extract",
    "extraction_cache",
    "matches",
    "read_text",
    "rst_units",
    "tracked_files",
]
