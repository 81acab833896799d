"""Evaluation items and their scoring, on the real demo library: execution tasks mined from its tests and docs
(validated in the sandbox against the checkout), the general floor, API questions and hallucination counting."""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_library

from demo import prepare_demo_repo
from doctune.config import Settings
from doctune.evaluate.suite import (
    ApiQuestion,
    ExecTask,
    api_questions,
    extract_code,
    general_tasks,
    hallucinated,
    mine_exec_tasks,
    referenced_names,
    run_exec_task,
    score_api,
    validate_exec_tasks,
)
from doctune.reader.extract import Unit, extract
from doctune.sources import sync_repository

NIBBLE = "result = lk.nibble(pot, 400)"


@dataclass
class Demo:
    tree: Path
    units: list[Unit]
    symbols: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    settings = Settings(home=tmp_path_factory.mktemp("evalsuite-home"))
    library = tiny_library(settings, prepare_demo_repo(settings))
    tree, _ = sync_repository(library, settings)
    surface = extract(tree, library)
    return Demo(tree, surface.units, surface.symbols)


@pytest.fixture(scope="module")
def mined(demo: Demo) -> list[ExecTask]:
    return mine_exec_tasks(demo.units, "ledgerkite", demo.symbols, tree=demo.tree)


@pytest.fixture(scope="module")
def validated(demo: Demo, mined: list[ExecTask]) -> tuple[list[ExecTask], list[tuple[ExecTask, str]]]:
    return validate_exec_tasks(mined, demo.tree)


def test_mined_tasks_validate_against_the_demo_library(
    demo: Demo, mined: list[ExecTask], validated: tuple[list[ExecTask], list[tuple[ExecTask, str]]]
) -> None:
    kept, dropped = validated
    assert len(kept) >= 10
    assert len(kept) + len(dropped) == len(mined)
    # Every task's reference passes on the real checkout; the only drops are checks a trivial answer passes.
    assert all(reason.startswith("the trivial answer") for _, reason in dropped), dropped
    assert {t.source.split(":")[0] for t in kept} == {"example", "doc"}
    assert len({t.id for t in mined}) == len(mined)
    assert all(t.id.startswith(t.source + "#") for t in mined)
    # Ids and content are stable from one build to the next.
    again = mine_exec_tasks(demo.units, "ledgerkite", demo.symbols, tree=demo.tree)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in mined]
    per_unit = Counter(t.source for t in mined)
    assert max(per_unit.values()) <= 3


def test_prompts_never_reveal_the_call(mined: list[ExecTask]) -> None:
    for task in mined:
        call = task.reference.splitlines()[-1].removeprefix("result = ")
        callee = ast.parse(call, mode="eval").body
        assert isinstance(callee, ast.Call)
        name = ast.unparse(callee.func).rsplit(".", 1)[-1]
        assert call not in task.prompt
        assert not re.search(rf"(?<!\w){name}(?!\w)", task.prompt), (task.id, name)
        assert f"```python\n{task.setup}\n```" in task.prompt
        assert "Reply with only the Python code" in task.prompt and "`result`" in task.prompt


def test_a_correct_answer_passes_and_wrong_ones_fail(demo: Demo, mined: list[ExecTask]) -> None:
    task = next(t for t in mined if t.reference == NIBBLE)
    assert 'pot = lk.sew_envelope("coffee", 1000)' in task.setup
    assert "Spend `amount` cents from an envelope" in task.prompt and "`pot` and `400`" in task.prompt
    assert task.check == "assert result == 600"

    right = "Sure:\n\n```python\nresult = lk.nibble(pot, 400)\n```\n\nThis spends 400 cents."
    assert run_exec_task(task, right, library_path=demo.tree).passed
    wrong = run_exec_task(task, "result = lk.headroom(pot)", library_path=demo.tree)
    assert (wrong.passed, wrong.outcome) == (False, "failed")
    invented = run_exec_task(task, "result = lk.gobble(pot, 400)", library_path=demo.tree)
    assert (invented.passed, invented.outcome) == (False, "error")
    assert "gobble" in invented.detail
    broken = run_exec_task(task, "```python\nresult = lk.nibble(pot,\n```", library_path=demo.tree)
    assert (broken.passed, broken.outcome) == (False, "error")


def test_tasks_cover_method_calls_parameters_and_module_constants(mined: list[ExecTask]) -> None:
    by_id = {t.id: t for t in mined}
    pluck = by_id["example:tests/test_envelopes.py::test_shelf_stash_and_pluck#4"]
    assert pluck.reference == "result = shelf.pluck('food')" and pluck.check == "assert result.allowance == 30000"
    assert "method of `shelf` (a ledgerkite `EnvelopeShelf`)" in pluck.prompt
    # A parametrized test runs with its first parameter set.
    parsed = by_id["example:tests/test_envelopes.py::test_parse_pennies#1"]
    assert "text = '12'\ncents = 1200" in parsed.setup and parsed.check == "assert result == cents"
    # A test that reads module constants gets them, and only the ones it uses.
    digest = by_id["example:tests/test_reports.py::test_digest_for_month_filters_and_totals#1"]
    assert "OUTLAYS = [" in digest.setup and "D = datetime.date" in digest.setup and "import pytest" not in digest.setup
    assert digest.check.startswith("digest = result\nassert digest.totals ==")
    # Doc examples may use the page's shared setup from an earlier example.
    leaderboard = next(t for t in mined if t.source.startswith("doc:docs/reports.md") and "Rank envelopes" in t.prompt)
    assert "outlays = [" in leaderboard.setup


def test_without_the_checkout_imports_are_guessed(demo: Demo, mined: list[ExecTask]) -> None:
    guessed = mine_exec_tasks(demo.units, "ledgerkite", demo.symbols)
    with_tree = {t.id for t in mined}
    assert 10 <= len(guessed) < len(mined)
    assert {t.id for t in guessed} <= with_tree
    # Tasks needing a module constant (OUTLAYS, MONDAY) cannot be built without the module and are left out.
    assert not any(re.search(r"OUTLAYS|MONDAY|SATURDAY", t.setup + t.check) for t in guessed)
    assert any("OUTLAYS" in t.setup for t in mined)
    # So are parametrized tests: a unit starts at its ``def``, the parameters are in the module.
    assert not any("::test_parse_pennies#" in t.id for t in guessed)
    task = next(t for t in guessed if t.reference == NIBBLE)
    assert task.setup.startswith("import ledgerkite as lk\n")
    assert run_exec_task(task, task.reference, library_path=demo.tree).passed


def test_crafted_units_from_imports_and_fixtures(demo: Demo) -> None:
    from_import = Unit(
        key="example:tests/test_x.py::test_from_import",
        kind="example",
        path="tests/test_x.py",
        title="from import",
        text=(
            "def test_from_import():\n"
            "    from ledgerkite import nibble, sew_envelope\n"
            '    pot = sew_envelope("a", 100)\n'
            "    assert nibble(pot, 30) == 70\n"
        ),
    )
    fixture = Unit(
        key="example:tests/test_x.py::test_fixture",
        kind="example",
        path="tests/test_x.py",
        title="fixture",
        text='def test_fixture(tmp_path):\n    assert lk.headroom(lk.sew_envelope("a", 5)) == 5\n',
    )
    tasks = mine_exec_tasks([from_import, fixture], "ledgerkite", demo.symbols)
    assert [t.id for t in tasks] == [
        "example:tests/test_x.py::test_from_import#2",
        "example:tests/test_x.py::test_from_import#3",
    ]
    task = tasks[1]
    # The answer's import moves from the setup into the reference, so the prompt does not name the function.
    assert task.setup == 'from ledgerkite import sew_envelope\npot = sew_envelope("a", 100)'
    assert task.reference == "from ledgerkite import nibble\nresult = nibble(pot, 30)"
    assert "nibble" not in task.prompt
    kept, dropped = validate_exec_tasks(tasks, demo.tree)
    assert kept == tasks and not dropped


def test_broken_and_trivial_tasks_are_dropped_with_a_reason(demo: Demo) -> None:
    broken = ExecTask("t:broken", "t", "p", "import ledgerkite as lk", "assert result == 1", "result = lk.gobble()")
    trivial = ExecTask("t:trivial", "t", "p", "", "assert not result", "result = 0")
    fine = ExecTask(
        "t:fine", "t", "p", "import ledgerkite as lk", "assert result == 5", "result = lk.parse_pennies('0.05')"
    )
    kept, dropped = validate_exec_tasks([broken, trivial, fine], demo.tree)
    assert kept == [fine]
    reasons = dict((t.id, why) for t, why in dropped)
    assert reasons["t:broken"].startswith("the reference does not pass (error)") and "gobble" in reasons["t:broken"]
    assert reasons["t:trivial"] == "the trivial answer 'result = None' passes"


def test_general_tasks_pass_with_their_reference_and_fail_empty() -> None:
    tasks = general_tasks()
    assert len(tasks) >= 20
    assert len({t.id for t in tasks}) == len(tasks) and all(t.id.startswith("general:") for t in tasks)
    for task in tasks:
        assert task.source == "general" and task.setup == ""
        assert task.check.count("assert") >= 3
        function = re.search(r"`(\w+)\(", task.prompt)
        assert function and f"def {function[1]}(" in task.reference
        assert "Reply with only the Python code." in task.prompt
    kept, dropped = validate_exec_tasks(tasks, None)
    assert not dropped and kept == tasks
    sloppy = "def reverse_words(text):\n    return text[::-1]"
    assert not run_exec_task(tasks[0], sloppy, library_path=None).passed


def test_items_round_trip_through_json(mined: list[ExecTask], demo: Demo) -> None:
    task = mined[0]
    assert ExecTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    question = api_questions(demo.units, "ledgerkite", demo.symbols)[0]
    assert ApiQuestion.from_dict(json.loads(json.dumps(question.to_dict()))) == question


def test_extract_code() -> None:
    fenced = "Here you go:\n```python\nx = 1\n```\nand\n```\ny = 2\n```\n```bash\npip install x\n```"
    assert extract_code(fenced) == "x = 1\n\ny = 2"
    assert extract_code("```text\nz = 3\n```") == "z = 3"
    assert extract_code("```py\n    a = 1\n    b = 2") == "a = 1\nb = 2"  # cut off by the token limit
    assert extract_code("result = 1\n") == "result = 1"
    assert extract_code("Here is the code:\nresult = f(2)\nThis calls f.") == "result = f(2)"
    assert extract_code("no code at all here!") == "no code at all here!"


def test_an_answer_with_a_null_byte_scores_instead_of_failing_the_evaluation(
    questions: dict[str, ApiQuestion],
) -> None:
    """A small model's answer held a NUL once (seen in the compose stack's evaluate task): Python 3.11 rejects
    it with ValueError, which must score the answer as not parsing, not fail the whole evaluation."""
    answer = "```python\nlk.nibble(\x00)\n```"
    assert extract_code(answer) and all(0 <= score_api(question, answer) <= 1 for question in questions.values())


# -- hallucinated names --------------------------------------------------------------------------------------


def test_referenced_names_resolve_imports_and_chains() -> None:
    code = (
        "import ledgerkite as lk\n"
        "from ledgerkite.envelopes import EnvelopeShelf as Shelf, nibble\n"
        "import ledgerkite.rules\n"
        "shelf = Shelf()\n"
        "nibble(shelf.pluck('a'), 5)\n"
        "lk.Verdict.VETO.name\n"
        "ledgerkite.rules.cap_rule(5)\n"
        "x = 'lk.gobble'  # lk.gobble in a comment\n"
    )
    assert referenced_names(code, "ledgerkite") == {
        "ledgerkite",
        "ledgerkite.envelopes",
        "ledgerkite.envelopes.EnvelopeShelf",
        "ledgerkite.envelopes.nibble",
        "ledgerkite.rules",
        "ledgerkite.Verdict.VETO.name",
        "ledgerkite.rules.cap_rule",
    }


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("import ledgerkite as lk\nlk.nibble(pot, 5)\nlk.gobble(pot)", {"ledgerkite.gobble"}),
        ("from ledgerkite import monthly_digest\nmonthly_digest([], 2024, 3)", set()),  # deprecated, still there
        ("from ledgerkite import monthly_report", {"ledgerkite.monthly_report"}),  # not in this version
        ("import ledgerkite as lk\nlk.EnvelopeShelf.pluck\nlk.EnvelopeShelf.grab", {"ledgerkite.EnvelopeShelf.grab"}),
        ("from ledgerkite.envelopes import EnvelopeShelf as S\nS.grab()", {"ledgerkite.envelopes.EnvelopeShelf.grab"}),
        ("import ledgerkite as lk\nlk.gobble.deep.chain()", {"ledgerkite.gobble"}),
        ("import ledgerkite.ledgers", {"ledgerkite.ledgers"}),
        ("import ledgerkite as lk\nlk.Verdict.VETO.name, lk.monthly_digest.__doc__, lk.__version__", set()),
        ("import ledgerkite as lk\nprint('lk.gobble', 'from ledgerkite import gobble')  # lk.gobble", set()),
        ("```python\nimport ledgerkite as lk\nresult = lk.gobble(pot,\n```", {"ledgerkite.gobble"}),  # syntax error
        (
            "Import it with `import ledgerkite as lk`, then call `lk.nibble(pot, 5)`; `gobble(pot)` works too and "
            "`print(x)` shows it. ledgerkite.rules.cap_rule builds a cap.",
            {"ledgerkite.gobble"},
        ),
        (
            "Use this:\n```python\nimport ledgerkite as lk\nlk.nibble(pot, 5)\n```\nor `lk.spend(pot)` instead.",
            {"ledgerkite.spend"},
        ),
    ],
)
def test_hallucinated_names(demo: Demo, answer: str, expected: set[str]) -> None:
    assert hallucinated(answer, "ledgerkite", demo.symbols) == expected


# -- API questions -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def questions(demo: Demo) -> dict[str, ApiQuestion]:
    return {q.id: q for q in api_questions(demo.units, "ledgerkite", demo.symbols)}


def test_api_questions_cover_every_kind_without_giving_answers_away(questions: dict[str, ApiQuestion]) -> None:
    kinds = Counter(q.kind for q in questions.values())
    assert kinds["signature"] >= 25 and kinds["params"] >= 25 and kinds["returns"] >= 20 and kinds["which"] >= 30
    assert kinds["usage"] >= 30
    for question in questions.values():
        if question.kind == "which":
            assert not re.search(rf"(?<!\w){question.expect['name']}(?!\w)", question.prompt), question.prompt
        else:
            owner, short = question.symbol.rsplit(".", 1)
            assert question.symbol in question.prompt or f"`{short}` of `{owner}`" in question.prompt
    # No signature question for a parameterless method (a property such as Digest.total), nor a None return.
    assert "signature:ledgerkite.reports.Digest.total" not in questions
    assert "returns:ledgerkite.envelopes.EnvelopeShelf.__init__" not in questions
    # An enum is neither called nor constructed with arguments.
    assert not any(
        q.symbol == "ledgerkite.rules.Verdict" and q.kind in ("usage", "signature") for q in questions.values()
    )
    assert questions["signature:ledgerkite.envelopes.nibble"].expect == {
        "name": "nibble",
        "parameters": [["pos", "envelope", None], ["pos", "amount", None], ["kwonly", "allow_overdraw", "False"]],
    }
    # A class's signature is its constructor's.
    assert questions["signature:ledgerkite.envelopes.Envelope"].expect["parameters"][:2] == [
        ["pos", "name", None],
        ["pos", "allowance", None],
    ]


def test_the_withheld_control_is_labelled(demo: Demo) -> None:
    withheld = {"api:ledgerkite.envelopes.nibble"}
    split = {q.id: q.split for q in api_questions(demo.units, "ledgerkite", demo.symbols, withheld)}
    assert (
        split["usage:ledgerkite.envelopes.nibble"] == "withheld"
        and split["usage:ledgerkite.envelopes.refill"] == "trained"
    )


@pytest.mark.parametrize(
    ("question", "answer", "score"),
    [
        (
            "signature:ledgerkite.envelopes.nibble",
            "def nibble(envelope: Envelope, amount: int, *, allow_overdraw: bool = False) -> int",
            1.0,
        ),
        ("signature:ledgerkite.envelopes.nibble", "It is `lk.nibble(envelope, amount, *, allow_overdraw=False)`.", 1.0),
        ("signature:ledgerkite.envelopes.nibble", "def nibble(envelope, amount, allow_overdraw=False)", 0.0),
        ("signature:ledgerkite.envelopes.nibble", "def nibble(envelope, amount, *, allow_overdraw=True)", 0.0),
        ("signature:ledgerkite.envelopes.nibble", "def nibble(amount, envelope, *, allow_overdraw=False)", 0.0),
        ("signature:ledgerkite.envelopes.nibble", "def spend(envelope, amount, *, allow_overdraw=False)", 0.0),
        ("signature:ledgerkite.envelopes.parse_pennies", 'def parse_pennies(text: str, symbol: str = "¤") -> int', 1.0),
        ("signature:ledgerkite.envelopes.EnvelopeShelf.pluck", "def pluck(self, name: str) -> Envelope:", 1.0),
        (
            "signature:ledgerkite.envelopes.Envelope",
            "`Envelope(name: str, allowance: int, spent: int = 0, tags: tuple[str, ...] = (), rollover: bool = False)`",
            1.0,
        ),
        ("signature:ledgerkite.envelopes.Envelope", "`Envelope(name, allowance)`", 0.0),
        ("params:ledgerkite.envelopes.nibble", "It takes envelope and amount.", 2 / 3),
        ("params:ledgerkite.envelopes.nibble", "envelope, amount, allow_overdraw", 1.0),
        ("params:ledgerkite.envelopes.nibble", "envelopes, amounts", 0.0),
        ("returns:ledgerkite.envelopes.nibble", "It returns an int: the headroom left.", 1.0),
        ("returns:ledgerkite.envelopes.nibble", "It returns a string.", 0.0),
        ("returns:ledgerkite.reports.leaderboard", "-> list[tuple[str,int]]", 1.0),
        ("returns:ledgerkite.reports.leaderboard", "a list of tuples", 0.0),
        ("returns:ledgerkite.envelopes.EnvelopeShelf.pluck", "an `lk.Envelope`", 1.0),
        ("which:ledgerkite.envelopes.nibble", "Use `lk.nibble(pot, 5)`.", 1.0),
        ("which:ledgerkite.envelopes.nibble", "nibbles", 0.0),
        ("usage:ledgerkite.envelopes.nibble", "```python\nleft = lk.nibble(pot, 400)\n```", 1.0),
        (
            "usage:ledgerkite.envelopes.nibble",
            "Call `ledgerkite.envelopes.nibble(pot, 400, allow_overdraw=True)`.",
            1.0,
        ),
        ("usage:ledgerkite.envelopes.nibble", "nibble(envelope=pot, amount=5)", 1.0),
        ("usage:ledgerkite.envelopes.nibble", "lk.nibble(pot)", 0.0),  # a required argument is missing
        ("usage:ledgerkite.envelopes.nibble", "lk.nibble(pot, 5, True)", 0.0),  # allow_overdraw is keyword-only
        ("usage:ledgerkite.envelopes.nibble", "lk.nibble(pot, 5, overdraw=True)", 0.0),  # no such keyword
        ("usage:ledgerkite.envelopes.nibble", "lk.nibble(pot, amount=5, envelope=pot)", 0.0),  # envelope given twice
        ("usage:ledgerkite.envelopes.nibble", "lk.spend(pot, 5)", 0.0),
        ("usage:ledgerkite.envelopes.EnvelopeShelf.pluck", 'shelf.pluck("groceries")', 1.0),
        ("usage:ledgerkite.envelopes.Envelope", 'lk.Envelope("cinema", 2500, rollover=True)', 1.0),
    ],
)
def test_api_scoring(questions: dict[str, ApiQuestion], question: str, answer: str, score: float) -> None:
    assert score_api(questions[question], answer) == pytest.approx(score)
