import datetime

import pytest

import ledgerkite as lk

D = datetime.date
OUTLAYS = [
    lk.Outlay("food", 4500, D(2024, 3, 2)),
    lk.Outlay("fuel", 6000, D(2024, 3, 9)),
    lk.Outlay("food", 2500, D(2024, 3, 30)),
    lk.Outlay("fun", 1000, D(2024, 4, 1)),
]


def test_digest_for_month_filters_and_totals():
    digest = lk.digest_for_month(OUTLAYS, "2024-03")
    assert digest.totals == {"food": 7000, "fuel": 6000}
    assert digest.count == 3
    assert digest.total == 13000
    with pytest.raises(ValueError):
        lk.digest_for_month(OUTLAYS, "2024-13")


def test_monthly_digest_is_deprecated_but_equivalent():
    with pytest.warns(DeprecationWarning, match="digest_for_month"):
        old = lk.monthly_digest(OUTLAYS, 2024, 3)
    assert old == lk.digest_for_month(OUTLAYS, "2024-03")
    assert ".. deprecated:: 0.3.0" in lk.monthly_digest.__doc__


def test_leaderboard_orders_and_breaks_ties():
    assert lk.leaderboard(OUTLAYS) == [("food", 7000), ("fuel", 6000), ("fun", 1000)]
    tie = [lk.Outlay("b", 5, D(2024, 1, 1)), lk.Outlay("a", 5, D(2024, 1, 1))]
    assert lk.leaderboard(tie, top=1) == [("a", 5)]
    with pytest.raises(ValueError):
        lk.leaderboard(OUTLAYS, top=0)


def test_burn_rate_projection():
    env = lk.Envelope("food", 30000, spent=12000)
    assert lk.burn_rate(env, 10) == 1.2
    assert lk.burn_rate(env, 20, days_in_period=20) == 0.4
    with pytest.raises(ValueError):
        lk.burn_rate(env, 0)
    with pytest.raises(ValueError):
        lk.burn_rate(lk.Envelope("empty", 0), 5)


def test_flag_hungry_envelopes():
    shelf = lk.EnvelopeShelf([
        lk.Envelope("food", 10000, spent=9000),
        lk.Envelope("fuel", 10000, spent=1000),
        lk.Envelope("zero", 0, spent=1),
    ])
    assert lk.flag_hungry_envelopes(shelf) == ["food", "zero"]
    assert lk.flag_hungry_envelopes(shelf, threshold=0.05) == ["food", "fuel", "zero"]
    with pytest.raises(ValueError):
        lk.flag_hungry_envelopes(shelf, threshold=1.5)


def test_render_ledger_card_layout():
    card = lk.render_ledger_card(lk.digest_for_month(OUTLAYS, "2024-03"), symbol="$")
    lines = card.splitlines()
    assert lines[0].startswith("== 2024-03 ")
    assert all(len(line) == 28 for line in lines)
    assert lines[1].endswith("$70.00") and lines[1].startswith("food")
    assert lines[-1] == "TOTAL".ljust(28 - len("$130.00")) + "$130.00"
    with pytest.raises(ValueError):
        lk.render_ledger_card(lk.Digest("2024-03"), width=10)


def test_package_metadata():
    assert lk.__version__ == "0.3.0"
    assert "digest_for_month" in lk.__all__
    assert all(hasattr(lk, name) for name in lk.__all__)


def test_digest_total_sums_every_envelope():
    digest = lk.Digest("2024-05", {"food": 1200, "fuel": 800}, 3)
    assert digest.total == 2000


def test_leaderboard_top_two():
    assert lk.leaderboard(OUTLAYS, top=2) == [("food", 7000), ("fuel", 6000)]


def test_burn_rate_on_pace():
    env = lk.Envelope("fun", 10000, spent=5000)
    assert lk.burn_rate(env, 15) == 1.0
    assert lk.burn_rate(env, 15, days_in_period=60) == 2.0


def test_digest_for_month_of_april():
    digest = lk.digest_for_month(OUTLAYS, "2024-04")
    assert digest.totals == {"fun": 1000}
    assert digest.count == 1


def test_flag_hungry_envelopes_at_half():
    shelf = lk.EnvelopeShelf([lk.Envelope("food", 1000, spent=600), lk.Envelope("fuel", 1000, spent=100)])
    assert lk.flag_hungry_envelopes(shelf, threshold=0.5) == ["food"]
    assert lk.flag_hungry_envelopes(shelf, threshold=0.1) == ["food", "fuel"]


def test_render_ledger_card_total_line():
    card = lk.render_ledger_card(lk.Digest("2024-06", {"rent": 90000}, 1))
    assert card.splitlines()[-1] == "TOTAL".ljust(28 - len("¤900.00")) + "¤900.00"
