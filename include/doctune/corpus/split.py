"""The split of a version's units: held-out tests (the evaluation's execution tasks) and the withheld-QA control,
both stable across versions (a key always lands on the same side)."""

from __future__ import annotations

import hashlib

from doctune.reader.extract import Unit


def is_held_out(unit_key: str, share: float, salt: str = "") -> bool:
    """Stable per-unit split: the same key lands on the same side in every version."""
    return int(hashlib.sha256(f"{salt}{unit_key}".encode()).hexdigest()[:8], 16) / 0x100000000 < share


def split_units(units: list[Unit], share: float) -> tuple[list[Unit], list[Unit]]:
    """Hold out a stable share of the library's tests; everything else trains (docs, every symbol, the changelog).

    Held-out tests become the evaluation's execution tasks, so no task was ever a training example. Knowledge is
    trained and questions are held out: the evaluation asks about trained symbols in phrasings of its own."""
    held = {u.key for u in units if u.kind == "example" and is_held_out(u.key, share)}
    # A small suite may hash no test into the eval side: then hold out the one with the smallest hash.
    if not held:
        ranked = sorted(
            (u for u in units if u.kind == "example"), key=lambda u: hashlib.sha256(u.key.encode()).digest()
        )
        held.update(u.key for u in ranked[:1])
    return [u for u in units if u.key not in held], [u for u in units if u.key in held]


def withheld_keys(units: list[Unit], share: float) -> set[str]:
    """The withheld-QA control (Allen-Zhu & Li, Physics of LMs 3.1): a stable share of public symbols whose facts
    train only as documentation. Salted, so that the control does not line up with the test split."""
    return {u.key for u in units if u.kind == "api" and is_held_out(u.key, share, salt="withheld|")}
