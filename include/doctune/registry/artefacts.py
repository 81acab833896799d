"""The version folders that registry rows point at: stages meet through these, never by calling each other."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from doctune.errors import DoctuneError


def load_rows(dataset_path: str | Path, split: str) -> list[dict[str, Any]]:
    """One split (``train``, ``eval``, ``rejected``) of a dataset version folder."""
    path = Path(dataset_path) / f"{split}.jsonl"
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise DoctuneError(f"cannot read {path}: {exc}; rebuild it with `doctune corpus build`") from exc


def adapter_digest(folder: str | Path) -> str:
    """sha256 over an adapter folder's files (names and bytes), to detect any change after registration."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()
