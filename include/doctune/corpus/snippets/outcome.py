"""What a test becomes: a ``Snippet``, or a ``Refusal`` with its reason, and the ``Refused`` exception that
carries the reason up from wherever the rewrite gives up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    """A usage example made from one test: ``task`` says in plain words what ``code`` shows."""

    unit: str  # the key of the example unit it was made from
    task: str  # e.g. "nibble refuses to overdraw"
    code: str  # a self-contained script that parses
    symbols: tuple[str, ...]  # the library's public callables it calls, qualified, aliases resolved, first use first
    verified: bool | None = None  # True: ran without error in the sandbox; None: not run (yet)
    note: str = ""  # why it was not run, once verification has tried ("not run: needs numpy")


@dataclass(frozen=True)
class Refusal:
    """A test that cannot be turned into an honest snippet, and why."""

    unit: str
    reason: str


class Refused(Exception):
    """Raised anywhere in the rewrite; ``usage_snippet`` turns it into a Refusal."""
