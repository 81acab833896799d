import datetime

import pytest

import ledgerkite as lk

MONDAY = datetime.date(2024, 3, 4)
SATURDAY = datetime.date(2024, 3, 9)


def test_cap_rule_vetoes_large_outlays():
    env = lk.sew_envelope("fun", 10000)
    book = lk.RuleBook([lk.cap_rule(5000)])
    assert book.judge(lk.Outlay("fun", 4000, MONDAY), env).verdict is lk.Verdict.ALLOW
    ruling = book.judge(lk.Outlay("fun", 6000, MONDAY), env)
    assert ruling.verdict is lk.Verdict.VETO
    assert not ruling.ok
    assert ruling.reasons == ("cap: over 5000 cents",)


def test_keyword_rule_is_case_insensitive():
    rule = lk.keyword_rule(["Lottery"])
    env = lk.sew_envelope("fun", 10000)
    assert rule.test(lk.Outlay("fun", 100, MONDAY, "LOTTERY ticket"), env)
    assert not rule.test(lk.Outlay("fun", 100, MONDAY, "bus"), env)
    with pytest.raises(ValueError):
        lk.keyword_rule([])


def test_weekend_rule_respects_tags():
    rule = lk.weekend_rule(tags=["treats"])
    treats = lk.sew_envelope("snacks", 2000, tags=["treats"])
    bills = lk.sew_envelope("power", 8000)
    assert rule.test(lk.Outlay("snacks", 300, SATURDAY), treats)
    assert not rule.test(lk.Outlay("power", 300, SATURDAY), bills)
    assert not rule.test(lk.Outlay("snacks", 300, MONDAY), treats)


def test_strictest_verdict_wins_and_reasons_are_ordered():
    book = (
        lk.RuleBook()
        .pin(lk.weekend_rule())
        .pin(lk.keyword_rule(["casino"], verdict=lk.Verdict.VETO, name="no-casino"))
    )
    ruling = lk.judge_outlay(book, lk.Outlay("fun", 100, SATURDAY, "Casino night"),
                             lk.sew_envelope("fun", 5000))
    assert ruling.verdict is lk.Verdict.VETO
    assert [r.split(":")[0] for r in ruling.reasons] == ["weekend", "no-casino"]
    assert book.unpin("no-casino").name == "no-casino"
    assert len(book) == 1
    with pytest.raises(KeyError):
        book.unpin("no-casino")


def test_spend_with_rules_spends_or_raises_veto():
    shelf = lk.EnvelopeShelf([lk.sew_envelope("fun", 10000)])
    book = lk.RuleBook([lk.cap_rule(5000), lk.weekend_rule()])
    ruling = lk.spend_with_rules(shelf, lk.Outlay("fun", 1000, SATURDAY), book)
    assert ruling.verdict is lk.Verdict.NUDGE and ruling.ok
    assert shelf.pluck("fun").spent == 1000
    with pytest.raises(lk.RuleVeto) as info:
        lk.spend_with_rules(shelf, lk.Outlay("fun", 6000, MONDAY), book)
    assert info.value.ruling.verdict is lk.Verdict.VETO
    assert shelf.pluck("fun").spent == 1000


def test_ruling_ok_unless_vetoed():
    assert lk.Ruling(lk.Verdict.NUDGE).ok
    assert not lk.Ruling(lk.Verdict.VETO, ("cap",)).ok


def test_cap_rule_with_a_nudge():
    rule = lk.cap_rule(1000, verdict=lk.Verdict.NUDGE, name="big")
    env = lk.sew_envelope("fun", 5000)
    ruling = lk.judge_outlay([rule], lk.Outlay("fun", 1500, MONDAY), env)
    assert ruling.verdict is lk.Verdict.NUDGE
    assert ruling.reasons == ("big: over 1000 cents",)


def test_judge_outlay_allows_when_nothing_matches():
    env = lk.sew_envelope("fun", 5000)
    ruling = lk.judge_outlay([lk.cap_rule(5000)], lk.Outlay("fun", 100, MONDAY), env)
    assert ruling.verdict is lk.Verdict.ALLOW
    assert ruling.reasons == ()


def test_rule_book_pins_and_counts():
    book = lk.RuleBook().pin(lk.cap_rule(10)).pin(lk.weekend_rule())
    assert len(book) == 2
    assert [rule.name for rule in book] == ["cap", "weekend"]


def test_keyword_rule_names_its_words():
    rule = lk.keyword_rule(["Bet", "casino"], name="gambling")
    assert rule.name == "gambling"
    assert rule.note == "memo mentions bet/casino"


def test_weekend_rule_on_a_sunday():
    sunday = datetime.date(2024, 3, 10)
    env = lk.sew_envelope("fun", 5000)
    ruling = lk.judge_outlay([lk.weekend_rule()], lk.Outlay("fun", 100, sunday), env)
    assert ruling.reasons == ("weekend: weekend spending",)


def test_spend_with_rules_allows_a_small_weekday_spend():
    shelf = lk.EnvelopeShelf([lk.sew_envelope("food", 20000)])
    book = lk.RuleBook([lk.cap_rule(5000)])
    assert lk.spend_with_rules(shelf, lk.Outlay("food", 1200, MONDAY), book).verdict is lk.Verdict.ALLOW
    assert lk.headroom(shelf.pluck("food")) == 18800
