"""Reports: digests, leaderboards and burn rates over envelopes and outlays."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from .envelopes import Envelope, EnvelopeShelf, Outlay, format_pennies

__all__ = [
    "Digest",
    "burn_rate",
    "digest_for_month",
    "flag_hungry_envelopes",
    "leaderboard",
    "monthly_digest",
    "render_ledger_card",
]

_MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Digest:
    """Totals for one calendar month.

    Args:
        month: Month key in ``"YYYY-MM"`` form.
        totals: Cents spent per envelope name, in first-seen order.
        count: Number of outlays that fell in the month.
    """

    month: str
    totals: dict[str, int] = field(default_factory=dict)
    count: int = 0

    @property
    def total(self) -> int:
        """Cents spent across all envelopes."""
        return sum(self.totals.values())


def digest_for_month(outlays: Iterable[Outlay], month: str) -> Digest:
    """Summarise the outlays that fall in one calendar month.

    Args:
        outlays: Any outlays; those outside ``month`` are ignored.
        month: Month key such as ``"2024-03"``.

    Returns:
        A :class:`Digest` for that month.

    Raises:
        ValueError: If ``month`` is not in ``"YYYY-MM"`` form.

    Example:
        >>> import datetime
        >>> spends = [Outlay("food", 1200, datetime.date(2024, 3, 1)),
        ...           Outlay("food", 800, datetime.date(2024, 4, 1))]
        >>> digest_for_month(spends, "2024-03").total
        1200
    """
    match = _MONTH_PATTERN.match(month)
    if not match:
        raise ValueError(f"month must look like 'YYYY-MM', got {month!r}")
    year, mon = int(match.group(1)), int(match.group(2))
    totals: dict[str, int] = {}
    count = 0
    for outlay in outlays:
        if (outlay.day.year, outlay.day.month) == (year, mon):
            totals[outlay.envelope] = totals.get(outlay.envelope, 0) + outlay.amount
            count += 1
    return Digest(month, totals, count)


def monthly_digest(outlays: Iterable[Outlay], year: int, month: int) -> Digest:
    """Summarise one month of outlays (old year/month signature).

    .. deprecated:: 0.3.0
        Use :func:`digest_for_month` with a ``"YYYY-MM"`` key instead;
        ``monthly_digest`` will be removed in 0.4.0.

    Args:
        outlays: Any outlays; those outside the month are ignored.
        year: Four-digit year.
        month: Month number, 1-12.

    Returns:
        A :class:`Digest`, exactly as :func:`digest_for_month` returns.

    Raises:
        ValueError: If ``month`` is outside 1-12.
    """
    warnings.warn(
        "monthly_digest() is deprecated since 0.3.0; use digest_for_month(outlays, 'YYYY-MM')",
        DeprecationWarning,
        stacklevel=2,
    )
    return digest_for_month(outlays, f"{year:04d}-{month:02d}")


def leaderboard(outlays: Iterable[Outlay], top: int = 3) -> list[tuple[str, int]]:
    """Rank envelopes by total spend.

    Ties are broken alphabetically so the result is stable.

    Args:
        outlays: Outlays to rank.
        top: Maximum number of entries to return.

    Returns:
        ``(envelope_name, cents)`` pairs, biggest spender first.

    Raises:
        ValueError: If ``top`` is less than 1.

    Example:
        >>> import datetime
        >>> d = datetime.date(2024, 5, 1)
        >>> leaderboard([Outlay("a", 5, d), Outlay("b", 9, d), Outlay("a", 7, d)])
        [('a', 12), ('b', 9)]
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    sums: Counter[str] = Counter()
    for outlay in outlays:
        sums[outlay.envelope] += outlay.amount
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def burn_rate(envelope: Envelope, days_elapsed: int, days_in_period: int = 30) -> float:
    """Project what fraction of the allowance will be spent by period end.

    Assumes spending continues at the average daily pace so far.

    Args:
        envelope: Envelope to project.
        days_elapsed: Days of the period already gone (1..days_in_period).
        days_in_period: Length of the budgeting period.

    Returns:
        Projected ``spent / allowance`` at period end; above 1.0 means the
        envelope is on course to run dry.

    Raises:
        ValueError: If the day counts are out of range or the allowance is 0.

    Example:
        >>> burn_rate(Envelope("food", 30000, spent=12000), days_elapsed=10)
        1.2
    """
    if not 1 <= days_elapsed <= days_in_period:
        raise ValueError("days_elapsed must be between 1 and days_in_period")
    if envelope.allowance <= 0:
        raise ValueError("cannot compute burn rate for an empty allowance")
    projected = envelope.spent / days_elapsed * days_in_period
    return round(projected / envelope.allowance, 4)


def flag_hungry_envelopes(shelf: EnvelopeShelf, threshold: float = 0.8) -> list[str]:
    """List envelopes that have spent at least ``threshold`` of their allowance.

    Args:
        shelf: Envelopes to inspect.
        threshold: Fraction of allowance (0..1) that counts as hungry.

    Returns:
        Names of hungry envelopes in shelf order. Envelopes with a zero
        allowance are hungry as soon as anything is spent.

    Raises:
        ValueError: If ``threshold`` is outside 0..1.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be between 0 and 1")
    hungry = []
    for env in shelf:
        if env.allowance == 0:
            if env.spent > 0:
                hungry.append(env.name)
        elif env.spent / env.allowance >= threshold:
            hungry.append(env.name)
    return hungry


def render_ledger_card(digest: Digest, *, symbol: str = "¤", width: int = 28) -> str:
    """Render a digest as a fixed-width plain-text card.

    Args:
        digest: Digest to render.
        symbol: Currency symbol for amounts.
        width: Total line width; must be at least 20.

    Returns:
        Multi-line text: a header, one line per envelope, and a total line.

    Raises:
        ValueError: If ``width`` is below 20.

    Example:
        >>> print(render_ledger_card(Digest("2024-03", {"food": 1250}, 1), width=20))
        == 2024-03 =========
        food          ¤12.50
        -------------- x1 --
        TOTAL         ¤12.50
    """
    if width < 20:
        raise ValueError("width must be at least 20")
    lines = [f"== {digest.month} ".ljust(width, "=")]
    for name, cents in digest.totals.items():
        amount = format_pennies(cents, symbol)
        lines.append(f"{name[: width - len(amount) - 1]:<{width - len(amount)}}{amount}")
    lines.append(f" x{digest.count} ".rjust(width - 2, "-") + "--")
    total = format_pennies(digest.total, symbol)
    lines.append(f"{'TOTAL':<{width - len(total)}}{total}")
    return "\n".join(lines)
