"""The unit: one piece of a library that the corpus is built from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Unit:
    """One piece of the library: kind is "api", "doc", "example" (a test) or "change" (a changelog section)."""

    key: str  # stable identity across commits, e.g. "api:pkg.mod.func" or "doc:docs/x.md#A > B"
    kind: str
    path: str
    title: str
    text: str
    signature: str = ""  # api: a Python stub that parses, e.g. "def nibble(envelope: Envelope) -> int: ..."
    params: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    deprecated: str = ""  # api: the deprecation note, which names the replacement

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        """The inverse of ``asdict`` after a JSON round trip (lists back to tuples)."""
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)
