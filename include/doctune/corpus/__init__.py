"""Corpus: turn a library's units (``doctune.reader`` reads them from the synced tree) into chat-message pairs,
filter them, and write dataset versions.

- ``generate``: units -> deterministic pairs with provenance;
- ``filters``: length, code validity, API existence, duplicates, decontamination, each with a reason;
- ``snippets``: the library's tests as runnable usage examples;
- ``datasets``: ``build`` (the stage's entry: from the synced tree to an atomic, registered version) and
  ``DatasetInfo``;
- ``split``: the held-out tests and the withheld-QA control, stable across versions;
- ``training_pairs``: pairs reused from the parent version or generated, overviews, tests as examples and tasks;
- ``evalset``: the held-out-phrasing loss rows and the evaluation suite of a version;
- ``library_copy``: the importable library at a commit, as the sandbox runs it;
- ``quality_report``: a version's quality report and its markdown;
- ``diff``: pairs added, removed and changed between two versions.
"""

from doctune.corpus.datasets import DatasetInfo, Synced, build
from doctune.corpus.diff import diff_pairs, diff_rows
from doctune.corpus.generate import generate_pairs
from doctune.corpus.split import is_held_out, split_units, withheld_keys
from doctune.reader.extract import MAX_FILE_BYTES, Surface, Unit, extract

__all__ = [
    "MAX_FILE_BYTES",
    "DatasetInfo",
    "Surface",
    "Synced",
    "Unit",
    "build",
    "diff_pairs",
    "diff_rows",
    "extract",
    "generate_pairs",
    "is_held_out",
    "split_units",
    "withheld_keys",
]
