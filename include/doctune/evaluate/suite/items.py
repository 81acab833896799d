"""The two kinds of suite item an evaluation set stores: execution tasks and API questions, with their JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ExecTask:
    """A task the model solves by writing code; ``setup`` runs before it and ``check`` after it."""

    id: str  # stable across builds: the unit key and the statement's position, or "general:<name>"
    source: str  # the unit key it was mined from, or "general"
    prompt: str  # the user message: the described task, asking for Python code only
    setup: str
    check: str  # raises AssertionError when the answer is wrong
    reference: str  # the library's own code for it: never shown to the model, used to validate the task
    symbol: str = ""  # the public symbol the task calls (qualified name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecTask:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class ApiQuestion:
    """A question about one public symbol; ``expect`` holds what ``score_api`` compares the answer with."""

    id: str  # "<kind>:<symbol>"
    symbol: str  # qualified name, e.g. "ledgerkite.envelopes.nibble"
    kind: str  # "signature" | "params" | "returns" | "which" | "usage"
    prompt: str
    expect: dict[str, Any]
    split: str = "trained"  # "trained": its facts trained as questions; "withheld": only as documentation
    change: str = ""  # a diff probe's change since the parent version (see suite.apidiff): "added", "removed", ...
    stale: dict[str, Any] | None = None  # the parent version's expectation: an answer meeting only it is outdated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiQuestion:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
