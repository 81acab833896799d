"""ledgerkite: household budgeting with envelopes, spending rules and reports.

Example:
    >>> import ledgerkite as lk
    >>> pot = lk.sew_envelope("groceries", lk.parse_pennies("300"))
    >>> lk.nibble(pot, 4599)
    25401
"""

from . import envelopes, reports, rules
from .envelopes import (
    Envelope, EnvelopeOverdrawn, EnvelopeShelf, Outlay, format_pennies, headroom,
    nibble, parse_pennies, refill, sew_envelope, shuffle_funds,
)
from .reports import (
    Digest, burn_rate, digest_for_month, flag_hungry_envelopes, leaderboard,
    monthly_digest, render_ledger_card,
)
from .rules import (
    Rule, RuleBook, RuleVeto, Ruling, Verdict, cap_rule, judge_outlay,
    keyword_rule, spend_with_rules, weekend_rule,
)

__version__ = "0.3.0"

__all__ = [*envelopes.__all__, *rules.__all__, *reports.__all__]
