"""What changed between two dataset versions' pairs: added, removed, changed (same question, another answer) and
unchanged, and the units they come from (``doctune corpus diff``, the console, a version's manifest)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _pair_id(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row["messages"], sort_keys=True).encode()).hexdigest()[:16]


def _slot(row: dict[str, Any]) -> tuple[str, str, str]:
    """What a pair is about, independent of its answer: changed answers show up as 'changed' in a diff."""
    return row["meta"]["unit"], row["meta"]["generator"], row["messages"][0]["content"]


def diff_pairs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The pairs behind ``diff_rows``: rows added and removed, (old, new) row pairs whose answer changed, and
    the rows of ``new`` that are unchanged."""
    old_slots = {_slot(r): r for r in old}
    new_slots = {_slot(r): r for r in new}
    both = new_slots.keys() & old_slots.keys()
    changed = [s for s in both if _pair_id(new_slots[s]) != _pair_id(old_slots[s])]
    return {
        "added": [new_slots[s] for s in sorted(new_slots.keys() - old_slots.keys())],
        "removed": [old_slots[s] for s in sorted(old_slots.keys() - new_slots.keys())],
        "changed": [(old_slots[s], new_slots[s]) for s in sorted(changed)],
        "unchanged": [new_slots[s] for s in sorted(both.difference(changed))],
    }


def diff_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = diff_pairs(old, new)
    added, removed, changed = pairs["added"], pairs["removed"], [n for _, n in pairs["changed"]]
    units = sorted({r["meta"]["unit"] for r in [*changed, *added, *removed]})
    return {
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "unchanged": len(pairs["unchanged"]),
        "units": units,
    }
