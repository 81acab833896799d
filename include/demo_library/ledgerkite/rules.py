"""Spending rules: small predicates that judge an outlay before it is spent.

Each :class:`Rule` returns a :class:`Verdict` when its test matches. A
:class:`RuleBook` combines rules; the strictest matching verdict wins
(``VETO`` beats ``NUDGE`` beats ``ALLOW``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .envelopes import Envelope, EnvelopeShelf, Outlay, nibble

__all__ = [
    "Rule",
    "RuleBook",
    "RuleVeto",
    "Ruling",
    "Verdict",
    "cap_rule",
    "judge_outlay",
    "keyword_rule",
    "spend_with_rules",
    "weekend_rule",
]


class Verdict(enum.IntEnum):
    """How a rule feels about an outlay; higher values are stricter.

    Example:
        >>> max(Verdict.ALLOW, Verdict.VETO).name
        'VETO'
    """

    ALLOW = 0
    NUDGE = 1
    VETO = 2


@dataclass(frozen=True)
class Rule:
    """A named test with the verdict it issues when the test matches.

    Args:
        name: Short identifier shown in rulings.
        test: Callable ``(outlay, envelope) -> bool``; true means "matches".
        verdict: Verdict issued on a match.
        note: Optional explanation appended to the ruling's reasons.
    """

    name: str
    test: Callable[[Outlay, Envelope], bool]
    verdict: Verdict = Verdict.NUDGE
    note: str = ""


@dataclass(frozen=True)
class Ruling:
    """The combined outcome of judging one outlay.

    Args:
        verdict: Strictest verdict among matching rules (``ALLOW`` if none).
        reasons: ``"name: note"`` strings for every matching rule, in order.
    """

    verdict: Verdict
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the outlay may go ahead (anything but ``VETO``)."""
        return self.verdict is not Verdict.VETO


class RuleVeto(Exception):
    """Raised by :func:`spend_with_rules` when a rule vetoes an outlay.

    Args:
        ruling: The ruling that caused the veto.
    """

    def __init__(self, ruling: Ruling) -> None:
        super().__init__("; ".join(ruling.reasons) or "vetoed")
        self.ruling = ruling


class RuleBook:
    """An ordered set of rules applied together.

    Args:
        rules: Initial rules, judged in insertion order.

    Example:
        >>> book = RuleBook().pin(cap_rule(5000))
        >>> len(book)
        1
    """

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: list[Rule] = list(rules)

    def pin(self, rule: Rule) -> RuleBook:
        """Append a rule and return the book, so calls can be chained."""
        self._rules.append(rule)
        return self

    def unpin(self, name: str) -> Rule:
        """Remove and return the first rule called ``name``.

        Raises:
            KeyError: If no rule has that name.
        """
        for index, rule in enumerate(self._rules):
            if rule.name == name:
                return self._rules.pop(index)
        raise KeyError(f"no rule named {name!r}")

    def judge(self, outlay: Outlay, envelope: Envelope) -> Ruling:
        """Shortcut for :func:`judge_outlay` with this book."""
        return judge_outlay(self, outlay, envelope)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)


def cap_rule(limit: int, *, verdict: Verdict = Verdict.VETO, name: str = "cap") -> Rule:
    """Build a rule that matches any single outlay above ``limit`` cents.

    Args:
        limit: Largest allowed single outlay, in cents.
        verdict: Verdict issued when the cap is exceeded.
        name: Rule name.

    Returns:
        A :class:`Rule`.

    Raises:
        ValueError: If ``limit`` is negative.

    Example:
        >>> import datetime
        >>> rule = cap_rule(2000)
        >>> rule.test(Outlay("fun", 2500, datetime.date(2024, 1, 5)), None)
        True
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    return Rule(name, lambda o, _e: o.amount > limit, verdict, f"over {limit} cents")


def keyword_rule(
    words: Iterable[str],
    *,
    verdict: Verdict = Verdict.NUDGE,
    name: str = "keyword",
) -> Rule:
    """Build a rule that matches when the memo contains any of ``words``.

    Matching is case-insensitive and works on substrings.

    Args:
        words: Words to look for in the outlay memo.
        verdict: Verdict issued on a match.
        name: Rule name.

    Returns:
        A :class:`Rule`.

    Raises:
        ValueError: If ``words`` is empty.
    """
    needles = tuple(w.lower() for w in words if w)
    if not needles:
        raise ValueError("keyword_rule needs at least one word")
    return Rule(
        name,
        lambda o, _e: any(n in o.memo.lower() for n in needles),
        verdict,
        "memo mentions " + "/".join(needles),
    )


def weekend_rule(
    *,
    tags: Iterable[str] = (),
    verdict: Verdict = Verdict.NUDGE,
    name: str = "weekend",
) -> Rule:
    """Build a rule that matches outlays made on a Saturday or Sunday.

    Args:
        tags: If given, only envelopes carrying one of these tags match.
        verdict: Verdict issued on a match.
        name: Rule name.

    Returns:
        A :class:`Rule`.

    Example:
        >>> import datetime
        >>> saturday = Outlay("fun", 900, datetime.date(2024, 3, 2))
        >>> weekend_rule().test(saturday, Envelope("fun", 5000))
        True
    """
    wanted = {t.lower() for t in tags}

    def test(outlay: Outlay, envelope: Envelope) -> bool:
        if outlay.day.weekday() < 5:
            return False
        return not wanted or bool(wanted.intersection(envelope.tags))

    return Rule(name, test, verdict, "weekend spending")


def judge_outlay(book: RuleBook | Iterable[Rule], outlay: Outlay, envelope: Envelope) -> Ruling:
    """Run every rule against an outlay and combine the results.

    Args:
        book: A :class:`RuleBook` or any iterable of rules.
        outlay: The proposed spend.
        envelope: The envelope it would come out of.

    Returns:
        A :class:`Ruling` with the strictest matching verdict.

    Example:
        >>> import datetime
        >>> monday = Outlay("fun", 9000, datetime.date(2024, 3, 4))
        >>> judge_outlay([cap_rule(5000)], monday, Envelope("fun", 10000))
        Ruling(verdict=<Verdict.VETO: 2>, reasons=('cap: over 5000 cents',))
    """
    verdict = Verdict.ALLOW
    reasons: list[str] = []
    for rule in book:
        if rule.test(outlay, envelope):
            verdict = max(verdict, rule.verdict)
            reasons.append(f"{rule.name}: {rule.note}" if rule.note else rule.name)
    return Ruling(Verdict(verdict), tuple(reasons))


def spend_with_rules(shelf: EnvelopeShelf, outlay: Outlay, book: RuleBook) -> Ruling:
    """Judge an outlay and, unless vetoed, spend it from its envelope.

    Args:
        shelf: Shelf holding the envelope named by ``outlay.envelope``.
        outlay: The spend to apply.
        book: Rules to judge with.

    Returns:
        The :class:`Ruling` (``ALLOW`` or ``NUDGE``) after spending.

    Raises:
        KeyError: If the envelope is not on the shelf.
        RuleVeto: If any rule vetoes the outlay; nothing is spent.
        EnvelopeOverdrawn: If the envelope lacks headroom.
    """
    envelope = shelf.pluck(outlay.envelope)
    ruling = judge_outlay(book, outlay, envelope)
    if not ruling.ok:
        raise RuleVeto(ruling)
    nibble(envelope, outlay.amount)
    return ruling
