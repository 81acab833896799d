"""Quality filters and extraction helpers on crafted input: each rejection names its filter and reason."""

from typing import Any

import pytest

from doctune.corpus import filters
from doctune.corpus.generate import references
from doctune.reader.extract import matches, rst_units

SYMBOLS: dict[str, dict[str, Any]] = {
    "acme": {"kind": "module", "path": "acme/__init__.py"},
    "acme.core": {"kind": "module", "path": "acme/core.py"},
    "acme.core.launch": {"kind": "function", "path": "acme/core.py", "summary": "Launch a rocket."},
    "acme.core.Rocket": {"kind": "class", "path": "acme/core.py", "summary": "A rocket."},
    "acme.core.Rocket.fuel": {"kind": "attribute", "path": "acme/core.py"},
    "acme.launch": {"kind": "alias", "path": "acme/__init__.py", "alias_of": "acme.core.launch"},
}


def row(question: str, answer: str, unit: str = "api:acme.core.launch", generator: str = "purpose") -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "meta": {"unit": unit, "generator": generator},
    }


def reasons(verdicts: filters.Verdicts) -> list[tuple[str, str]]:
    return [(r["meta"]["rejected"]["filter"], r["meta"]["rejected"]["reason"]) for r in verdicts.rejected]


def test_hallucinated_api_is_rejected_and_real_ones_pass() -> None:
    good = row("How do I launch?", "```python\nimport acme as a\na.launch()\nr = a.core.Rocket()\nr.fuel\n```")
    aliased = row("How to launch it?", "Call `acme.launch()` or `acme.core.Rocket.fuel`.", unit="doc:x#a")
    bad = row("How do I land?", "```python\nfrom acme.core import land\nland()\n```", unit="doc:x#b")
    verdicts = filters.apply([good, aliased, bad], [], "acme", SYMBOLS)
    assert verdicts.train == [good, aliased]
    assert reasons(verdicts) == [("api", "mentions APIs that do not exist: acme.core.land")]


def test_code_must_parse_and_lengths_are_bounded() -> None:
    broken = row("Show code for launching.", "```python\ndef f(:\n```")
    doctest = row("Show a doctest for it.", "```python\n>>> x = 1\n>>> x + 1\n2\n```", unit="doc:d#1")
    short = row("Why?", "Because.", unit="doc:d#2")
    verdicts = filters.apply([broken, doctest, short], [], "acme", SYMBOLS)
    assert verdicts.train == [doctest]
    assert reasons(verdicts) == [
        ("code", "answer code does not parse: line 1: invalid syntax"),
        ("length", "question has 4 characters (allowed 8-2000)"),
    ]


def test_exact_and_near_duplicates_across_units() -> None:
    text = " ".join(f"word{i}" for i in range(200))  # long enough that one extra word keeps Jaccard ~0.97
    first = row("Tell me about the launch window.", text, unit="doc:a#1")
    same = row("Tell me about the   launch window.", text, unit="doc:b#1")
    near = row("Tell me about the launch window!", text + " extra", unit="doc:c#1")
    sibling = row("Tell me about the launch window?", text + " more", unit="doc:a#1")  # same unit: kept
    verdicts = filters.apply([first, same, near, sibling], [], "acme", SYMBOLS)
    assert verdicts.train == [first, sibling]
    assert [r[0] for r in reasons(verdicts)] == ["duplicate", "near-duplicate"]


def test_decontamination_keeps_held_out_tests_and_evaluation_questions_out_of_training() -> None:
    test_code = (
        "def test_launch_counts_down():\n    rocket = acme.core.Rocket(stages=3, fuel=900)\n"
        "    assert acme.core.launch(rocket, countdown=10, abort_on_wind=True) == 'liftoff'\n"
    )
    copied = row(
        "Show a launch example.",
        "```python\nrocket = acme.core.Rocket(stages=3, fuel=900)\n"
        "assert acme.core.launch(rocket, countdown=10, abort_on_wind=True) == 'liftoff'\n```",
        unit="doc:guide#launch",
    )
    asked = row(
        "Name the acme function that launches a rocket.", "It is `acme.core.launch`.", unit="api:acme.core.launch"
    )
    # The same fact in a training phrasing is the point of training: it stays, though its answer is the eval's.
    taught = row("Which acme function launches a rocket?", "Use `acme.core.launch`.", unit="api:acme.core.launch")
    held = row("Name the acme function that launches a rocket.", "Use `acme.core.launch`.", unit="api:acme.core.launch")
    verdicts = filters.apply([copied, asked, taught], [held], "acme", SYMBOLS, held_out_code=[test_code])
    assert verdicts.eval == [held] and verdicts.train == [taught]
    assert reasons(verdicts) == [
        ("decontamination", "shares a 13-word sequence with a held-out test"),
        ("decontamination", "asks an evaluation question word for word"),
    ]


def test_references_follow_imports_and_aliases() -> None:
    code = "import acme.core as c\nfrom acme import launch, Rocket as R\nc.launch()\nacme.core.Rocket.fuel"
    expected = {"acme.core", "acme.core.launch", "acme.launch", "acme.Rocket", "acme.core.Rocket.fuel"}
    assert references(code, "acme") == expected


def test_globs() -> None:
    assert matches("README.md", ["**/*.md"]) and matches("docs/a/b.md", ["**/*.md"])
    assert not matches("docs/a.py", ["docs/*.md"]) and matches("tests/unit/test_x.py", ["tests/**/test_*.py"])
    assert not matches("pkg/sub/x.py", ["pkg/*.py"])


def test_rst_sections_with_code_and_broken_markup() -> None:
    text = (
        "Guide\n=====\n\nIntro paragraph about rockets.\n\nLaunching\n---------\n\nUse it like this::\n\n"
        "    import acme\n    acme.launch()\n\n.. unknown-directive:: ignored\n\n`broken markup\n"
    )
    units = rst_units("docs/guide.rst", text)
    launching = next(u for u in units if u.title == "Guide > Launching")
    assert launching.examples == ("import acme\nacme.launch()",)
    assert "Use it like this" in launching.text


def test_docutils_complaints_never_reach_the_text() -> None:
    # click's CHANGES.rst: unknown Sphinx roles inside list items, each of which docutils answers with a message.
    text = (
        "Version 8.1.7\n-------------\n\nReleased 2023-08-17\n\n"
        "-   Fix issue with regex flags in shell completion. :issue:`2581`\n"
        "-   Bash version detection issues. :pr:`2473` `broken\n"
    )
    (unit,) = rst_units("CHANGES.rst", text)
    assert "Fix issue with regex flags" in unit.text and "2581" in unit.text
    assert "<string>" not in unit.text and "INFO/" not in unit.text and "ERROR/" not in unit.text


@pytest.mark.parametrize(
    "doc",
    [
        "Spend.\n\nArgs:\n    envelope (Envelope): The pot\n        to spend from.\n    amount: Cents.\n\n"
        "Returns:\n    int: left.\n",
        "Spend.\n\nParameters\n----------\nenvelope : Envelope\n    The pot to spend from.\n"
        "amount : int\n    Cents.\n\nReturns\n-------\nint\n",
        "Spend.\n\n:param envelope: The pot to spend from.\n:param int amount: Cents.\n:returns: left.\n",
    ],
    ids=["google", "numpy", "rest"],
)
def test_parameter_descriptions_in_every_docstring_style(doc: str) -> None:
    from doctune.reader.facts import param_docs

    assert param_docs(doc) == {"envelope": "The pot to spend from.", "amount": "Cents."}
