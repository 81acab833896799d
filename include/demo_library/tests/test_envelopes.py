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


def test_headroom_after_spending():
    pot = lk.Envelope("fuel", 6000, spent=4500)
    assert lk.headroom(pot) == 1500
    assert lk.headroom(lk.sew_envelope("new", 2500)) == 2500


def test_refill_to_a_new_allowance():
    pot = lk.sew_envelope("books", 2000)
    lk.nibble(pot, 500)
    assert lk.refill(pot, 3000) == 3000
    assert lk.headroom(pot) == 3000


def test_shelf_lists_names_in_stash_order():
    shelf = lk.EnvelopeShelf()
    shelf.stash(lk.sew_envelope("b", 1))
    shelf.stash(lk.sew_envelope("a", 2))
    assert shelf.names() == ["b", "a"]
    assert len(shelf) == 2 and "a" in shelf


def test_format_pennies_with_a_symbol():
    assert lk.format_pennies(1205) == "¤12.05"
    assert lk.format_pennies(1205, symbol="€") == "€12.05"
    assert lk.format_pennies(-40) == "-¤0.40"


def test_parse_pennies_with_another_symbol():
    assert lk.parse_pennies("€3.50", symbol="€") == 350
    assert lk.parse_pennies(" 7 ") == 700


def test_nibble_returns_what_is_left():
    pot = lk.sew_envelope("lunch", 2000)
    assert lk.nibble(pot, 250) == 1750
    assert lk.nibble(pot, 1750) == 0


def test_shuffle_funds_between_fresh_envelopes():
    rent, fun = lk.sew_envelope("rent", 90000), lk.sew_envelope("fun", 0)
    assert lk.shuffle_funds(rent, fun, 2500) == (87500, 2500)
    assert lk.headroom(fun) == 2500


def test_sew_envelope_with_rollover():
    pot = lk.sew_envelope("holiday", 10000, rollover=True)
    assert pot.rollover
    assert lk.refill(pot) == 20000
