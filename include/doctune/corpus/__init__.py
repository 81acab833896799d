"""Corpus: read a library, turn it into chat-message pairs, filter them, and write dataset versions.

- ``extract``: files -> units (doc sections, public symbols, tests, changelog) and the symbol table;
- ``generate``: units -> deterministic pairs with provenance;
- ``filters``: length, code validity, API existence, duplicates, decontamination, each with a reason;
- ``facts``: what one public symbol's facts are, shared by the generators and the evaluation;
- ``versions``: the split (held-out tests, the withheld-QA control), incremental rebuilds, quality reports,
  atomic versions.
"""

from doctune.corpus.datasets import DatasetInfo, build, diff_rows, is_held_out, load_rows, split_units, withheld_keys
from doctune.corpus.extract import MAX_FILE_BYTES, Surface, Unit, extract
from doctune.corpus.generate import generate_pairs

__all__ = [
    "MAX_FILE_BYTES",
    "DatasetInfo",
    "Surface",
    "Unit",
    "build",
    "diff_rows",
    "extract",
    "generate_pairs",
    "is_held_out",
    "load_rows",
    "split_units",
    "withheld_keys",
]
