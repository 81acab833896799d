import datetime

import pytest

import ledgerkite as lk


def test_sew_envelope_normalises_name_and_tags():
    pot = lk.sew_envelope("  Groceries ", 30000, tags=["Food", "food", "Weekly"])
    assert pot.name == "Groceries"
    assert pot.tags == ("food", "weekly")
    assert pot.spent == 0
    with pytest.raises(ValueError):
        lk.sew_envelope("   ", 100)
    with pytest.raises(ValueError):
        lk.sew_envelope("x", -1)


def test_nibble_spends_and_guards_overdraw():
    pot = lk.sew_envelope("coffee", 1000)
    assert lk.nibble(pot, 400) == 600
    with pytest.raises(lk.EnvelopeOverdrawn) as info:
        lk.nibble(pot, 700)
    assert info.value.shortfall == 100
    assert lk.nibble(pot, 700, allow_overdraw=True) == -100
    assert lk.headroom(pot) == -100
    with pytest.raises(ValueError):
        lk.nibble(pot, 0)


def test_refill_with_and_without_rollover():
    plain = lk.sew_envelope("fuel", 5000)
    lk.nibble(plain, 2000)
    assert lk.refill(plain) == 5000 and plain.spent == 0
    saver = lk.sew_envelope("gifts", 5000, rollover=True)
    lk.nibble(saver, 2000)
    assert lk.refill(saver, 4000) == 7000


def test_shuffle_funds_moves_allowance():
    a, b = lk.sew_envelope("a", 3000), lk.sew_envelope("b", 1000)
    assert lk.shuffle_funds(a, b, 500) == (2500, 1500)
    with pytest.raises(lk.EnvelopeOverdrawn):
        lk.shuffle_funds(a, b, 9999)
    with pytest.raises(ValueError):
        lk.shuffle_funds(a, a, 1)


def test_shelf_stash_and_pluck():
    shelf = lk.EnvelopeShelf([lk.sew_envelope("rent", 90000)])
    shelf.stash(lk.sew_envelope("food", 30000))
    assert shelf.names() == ["rent", "food"]
    assert shelf.pluck("food").allowance == 30000
    with pytest.raises(ValueError):
        shelf.stash(lk.sew_envelope("rent", 1))
    with pytest.raises(KeyError):
        shelf.pluck("yachts")


@pytest.mark.parametrize(
    "text, cents",
    [("12", 1200), ("12.3", 1230), ("¤1,234.56", 123456), ("-0.40", -40)],
)
def test_parse_pennies(text, cents):
    assert lk.parse_pennies(text) == cents


def test_parse_and_format_round_trip():
    assert lk.format_pennies(123456) == "¤1,234.56"
    assert lk.format_pennies(-5, symbol="kr ") == "-kr 0.05"
    assert lk.parse_pennies(lk.format_pennies(98765)) == 98765
    with pytest.raises(ValueError):
        lk.parse_pennies("twelve")


def test_outlay_is_frozen():
    spend = lk.Outlay("food", 100, datetime.date(2024, 1, 1))
    with pytest.raises(AttributeError):
        spend.amount = 5
