"""Envelopes: named spending pots that hold an allowance in integer cents.

All amounts in ledgerkite are integer cents ("pennies"); use
:func:`parse_pennies` and :func:`format_pennies` at the edges.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

__all__ = [
    "Envelope",
    "EnvelopeOverdrawn",
    "EnvelopeShelf",
    "Outlay",
    "format_pennies",
    "headroom",
    "nibble",
    "parse_pennies",
    "refill",
    "sew_envelope",
    "shuffle_funds",
]

_PENNY_PATTERN = re.compile(r"^(-)?(\d+)(?:\.(\d{1,2}))?$")


class EnvelopeOverdrawn(Exception):
    """Raised when a spend would push an envelope below zero headroom.

    Args:
        name: Name of the envelope that would be overdrawn.
        shortfall: How many cents were missing.
    """

    def __init__(self, name: str, shortfall: int) -> None:
        super().__init__(f"envelope {name!r} is short by {shortfall} cents")
        self.name = name
        self.shortfall = shortfall


@dataclass
class Envelope:
    """A named spending pot.

    Args:
        name: Unique, human-readable name such as ``"groceries"``.
        allowance: Cents available for the current period.
        spent: Cents already spent in the current period.
        tags: Free-form labels used by rules and reports.
        rollover: Whether unspent cents carry into the next period.

    Example:
        >>> Envelope("cinema", 2500).allowance
        2500
    """

    name: str
    allowance: int
    spent: int = 0
    tags: tuple[str, ...] = ()
    rollover: bool = False


@dataclass(frozen=True)
class Outlay:
    """A single spending event against an envelope.

    Args:
        envelope: Name of the envelope the money comes out of.
        amount: Positive number of cents spent.
        day: Calendar day of the spend.
        memo: Optional free-text note (rules can match on it).

    Example:
        >>> import datetime
        >>> Outlay("groceries", 1299, datetime.date(2024, 3, 2), "oat milk").memo
        'oat milk'
    """

    envelope: str
    amount: int
    day: _dt.date
    memo: str = ""


class EnvelopeShelf:
    """An ordered collection of envelopes, looked up by name.

    Args:
        envelopes: Initial envelopes to stash on the shelf.

    Raises:
        ValueError: If two envelopes share a name.

    Example:
        >>> shelf = EnvelopeShelf([sew_envelope("rent", 90000)])
        >>> "rent" in shelf, len(shelf)
        (True, 1)
    """

    def __init__(self, envelopes: Iterable[Envelope] = ()) -> None:
        self._slots: dict[str, Envelope] = {}
        for envelope in envelopes:
            self.stash(envelope)

    def __repr__(self) -> str:
        return f"EnvelopeShelf({list(self._slots.values())!r})"

    def stash(self, envelope: Envelope) -> Envelope:
        """Add an envelope to the shelf and return it.

        Raises:
            ValueError: If an envelope with the same name is already stashed.
        """
        if envelope.name in self._slots:
            raise ValueError(f"envelope {envelope.name!r} already on the shelf")
        self._slots[envelope.name] = envelope
        return envelope

    def pluck(self, name: str) -> Envelope:
        """Return the envelope called ``name``.

        Raises:
            KeyError: If no such envelope exists.
        """
        try:
            return self._slots[name]
        except KeyError:
            raise KeyError(f"no envelope named {name!r}") from None

    def names(self) -> list[str]:
        """Return envelope names in the order they were stashed."""
        return list(self._slots)

    def __iter__(self) -> Iterator[Envelope]:
        return iter(self._slots.values())

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, name: object) -> bool:
        return name in self._slots


def sew_envelope(
    name: str,
    allowance: int,
    *,
    tags: Iterable[str] = (),
    rollover: bool = False,
) -> Envelope:
    """Create ("sew") a fresh, unspent envelope.

    Args:
        name: Envelope name; surrounding whitespace is stripped.
        allowance: Cents available per period; must not be negative.
        tags: Labels for rules and reports; stored lower-cased and sorted.
        rollover: Whether leftover cents carry into the next period.

    Returns:
        A new :class:`Envelope` with ``spent == 0``.

    Raises:
        ValueError: If the name is blank or the allowance is negative.

    Example:
        >>> sew_envelope(" Snacks ", 1500, tags=["Treats"]).tags
        ('treats',)
    """
    clean = name.strip()
    if not clean:
        raise ValueError("envelope name must not be blank")
    if allowance < 0:
        raise ValueError("allowance must not be negative")
    return Envelope(
        clean, allowance, 0, tuple(sorted({t.lower() for t in tags})), rollover
    )


def headroom(envelope: Envelope) -> int:
    """Return the cents still spendable in an envelope.

    Args:
        envelope: The envelope to inspect.

    Returns:
        ``allowance - spent``; negative if the envelope was overdrawn.

    Example:
        >>> headroom(Envelope("fuel", 6000, spent=4500))
        1500
    """
    return envelope.allowance - envelope.spent


def nibble(envelope: Envelope, amount: int, *, allow_overdraw: bool = False) -> int:
    """Spend ``amount`` cents from an envelope.

    Args:
        envelope: Envelope to spend from; mutated in place.
        amount: Positive number of cents.
        allow_overdraw: If true, let headroom go negative instead of raising.

    Returns:
        The headroom left after the spend.

    Raises:
        ValueError: If ``amount`` is not positive.
        EnvelopeOverdrawn: If the spend exceeds headroom and
            ``allow_overdraw`` is false.

    Example:
        >>> pot = sew_envelope("coffee", 1000)
        >>> nibble(pot, 350)
        650
    """
    if amount <= 0:
        raise ValueError("amount must be positive")
    left = headroom(envelope) - amount
    if left < 0 and not allow_overdraw:
        raise EnvelopeOverdrawn(envelope.name, -left)
    envelope.spent += amount
    return left


def refill(envelope: Envelope, amount: int | None = None) -> int:
    """Start a new period for an envelope.

    Spent cents are reset to zero. If the envelope has ``rollover`` set,
    leftover headroom is added on top of the base allowance.

    Args:
        envelope: Envelope to refill; mutated in place.
        amount: New base allowance; defaults to the current allowance.

    Returns:
        The envelope's new allowance.

    Raises:
        ValueError: If ``amount`` is negative.
    """
    base = envelope.allowance if amount is None else amount
    if base < 0:
        raise ValueError("amount must not be negative")
    carry = max(headroom(envelope), 0) if envelope.rollover else 0
    envelope.allowance = base + carry
    envelope.spent = 0
    return envelope.allowance


def shuffle_funds(source: Envelope, target: Envelope, amount: int) -> tuple[int, int]:
    """Move allowance from one envelope to another.

    Args:
        source: Envelope giving up allowance.
        target: Envelope receiving allowance.
        amount: Positive cents to move; cannot exceed the source's headroom.

    Returns:
        ``(source_headroom, target_headroom)`` after the move.

    Raises:
        ValueError: If ``amount`` is not positive or source equals target.
        EnvelopeOverdrawn: If the source lacks the headroom.
    """
    if amount <= 0:
        raise ValueError("amount must be positive")
    if source is target:
        raise ValueError("cannot shuffle funds into the same envelope")
    if headroom(source) < amount:
        raise EnvelopeOverdrawn(source.name, amount - headroom(source))
    source.allowance -= amount
    target.allowance += amount
    return headroom(source), headroom(target)


def parse_pennies(text: str, symbol: str = "¤") -> int:
    """Parse a human amount such as ``"¤1,234.5"`` into integer cents.

    Args:
        text: Amount text; may carry the currency symbol, thousands commas
            and a leading minus sign.
        symbol: Currency symbol to strip.

    Returns:
        The amount in cents.

    Raises:
        ValueError: If the text is not a valid amount.

    Example:
        >>> parse_pennies("¤1,234.5")
        123450
    """
    cleaned = text.strip().replace(symbol, "").replace(",", "").replace(" ", "")
    match = _PENNY_PATTERN.match(cleaned)
    if not match:
        raise ValueError(f"not an amount: {text!r}")
    sign, whole, frac = match.groups()
    cents = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    return -cents if sign else cents


def format_pennies(cents: int, symbol: str = "¤") -> str:
    """Format integer cents for display.

    Args:
        cents: Amount in cents; may be negative.
        symbol: Currency symbol placed before the digits.

    Returns:
        Text such as ``"¤12.05"`` or ``"-¤0.40"``.

    Example:
        >>> format_pennies(-40)
        '-¤0.40'
    """
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{symbol}{whole:,}.{frac:02d}"
