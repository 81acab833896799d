"""The training rows as the trainer takes them: the general Python replay set mixed in against forgetting, and
trl's prompt/completion form."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

GENERAL_SET = Path(__file__).parents[1] / "data" / "general_python.jsonl"


def replay_rows(current: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """A deterministic sample of the built-in general Python set, ``share`` of the training set's size (at most the
    whole set): against forgetting general coding while the adapter learns the library.

    Never pairs of the previous dataset version: each version trains from the base model on the library as it is
    now, so a previous pair that is not in the current version is yesterday's API (measured: ledgerkite 0.4.0's
    replay brought back ten pairs teaching ``leaderboard``'s old default) or a pair now held out for evaluation."""
    general = [json.loads(line) for line in GENERAL_SET.read_text().splitlines() if line.strip()]
    ranked = sorted(general, key=lambda r: hashlib.sha256(json.dumps(r["messages"]).encode()).hexdigest())
    return ranked[: round(len(current) * share)]


def to_prompt_completion(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat rows -> trl's conversational prompt/completion form, so loss is computed on the answer only."""
    return [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]
