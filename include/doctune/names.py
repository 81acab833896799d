"""Names every stage agrees on: how an adapter version is served, the states of adapters and training runs, the
gate's decisions and which metrics improve downwards. Each is defined here once, so that the registry, the stages,
the gateway and the console cannot drift apart."""

from __future__ import annotations

from enum import StrEnum


class AdapterStatus(StrEnum):
    """An adapter version's place in the lifecycle; stored in the registry as its value."""

    CANDIDATE = "candidate"  # trained, not yet judged
    REJECTED = "rejected"  # the gate said no
    PRODUCTION = "production"  # the stable name points at it
    PREVIOUS = "previous"  # production before the last deploy: the rollback target, kept loaded
    RETIRED = "retired"  # was production or previous, no longer either


class RunStatus(StrEnum):
    """A training run's state in the registry."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"  # on request, with a checkpoint to resume from
    INTERRUPTED = "interrupted"  # its process died; the next try takes over


class Decision(StrEnum):
    """The evaluation gate's verdict on a candidate."""

    PROMOTE = "promote"
    REJECT = "reject"


# Metrics where a smaller value is the better one; every other metric improves upwards.
LOWER_IS_BETTER = frozenset({"heldout_loss", "hallucination_rate", "answers_with_hallucination", "stale_rate"})


def served_name(library: str, version: int) -> str:
    """The immutable name vLLM serves adapter ``version`` of ``library`` under; the stable name is the bare
    library name, an alias of one of these."""
    return f"{library}@v{version}"


def parse_served_name(name: str) -> tuple[str, int] | None:
    """(library, version) of an adapter version's served name; None for a stable name or a base model's name."""
    library, marker, version = name.partition("@v")
    return (library, int(version)) if marker and library and version.isdigit() else None
