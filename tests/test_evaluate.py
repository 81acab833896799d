import math

import pytest

from doctune.config import GateParams, LibraryConfig
from doctune.evaluate import gate, score_answer

LIB = LibraryConfig(name="acme", repo_url="file:///x", gate=GateParams(min_gain_over_base=0.02, max_regression=0.02))


def test_first_candidate_must_beat_base() -> None:
    assert gate(LIB, {"base": 2.0, "candidate": 1.5}, has_production=False)[0] == "promote"
    decision, reasons = gate(LIB, {"base": 2.0, "candidate": 1.99}, has_production=False)
    assert decision == "reject" and "does not beat the base model's 2.0000 by 2%" in reasons[0]


def test_candidate_may_not_regress_past_production() -> None:
    assert gate(LIB, {"base": 2.0, "candidate": 1.02, "production": 1.0}, True)[0] == "promote"
    decision, reasons = gate(LIB, {"base": 2.0, "candidate": 1.1, "production": 1.0}, True)
    assert decision == "reject" and "above production's 1.0000" in reasons[1]


def test_nan_loss_is_rejected() -> None:
    assert gate(LIB, {"base": 2.0, "candidate": math.nan}, False)[0] == "reject"


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("Use `nibble(envelope, amount)`.", {"names_function": 1.0, "names_params": 1.0}),
        ("Use nibble().", {"names_function": 1.0, "names_params": 0.0}),
        ("Use spend().", {"names_function": 0.0, "names_params": 0.0}),
    ],
)
def test_score_answer(answer: str, expected: dict[str, float]) -> None:
    assert score_answer(answer, {"name": "nibble", "params": ["envelope", "amount"]}) == expected
