"""Tests become the usage examples a developer would ask for: on the demo library's own suite (every snippet is
run against the checkout in the sandbox), and on crafted tests for each rewrite and each refusal."""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from doctune.config import LibraryConfig
from doctune.corpus.snippets import (
    Refusal,
    Snippet,
    Verification,
    usage_snippet,
    usage_snippets,
    verify_snippets,
)
from doctune.reader.extract import Unit, example_units, extract

DEMO = Path(__file__).resolve().parents[1] / "include" / "demo_library"
FIXTURE_NAMES = ("tmp_path", "monkeypatch", "capsys", "caplog", "request", "mocker")


@dataclass
class Demo:
    units: list[Unit]
    symbols: dict[str, dict[str, Any]]
    snippets: list[Snippet]
    refusals: list[Refusal]
    verification: Verification

    def snippet(self, test: str) -> Snippet:
        return next(s for s in self.verification.kept if s.unit.endswith(f"::{test}"))


@pytest.fixture(scope="module")
def demo() -> Demo:
    units = [
        unit
        for path in sorted((DEMO / "tests").glob("test_*.py"))
        for unit in example_units(path.relative_to(DEMO).as_posix(), path.read_text())
    ]
    symbols = extract(DEMO, LibraryConfig(name="ledgerkite", repo_url=str(DEMO))).symbols
    snippets, refusals = usage_snippets(units, "ledgerkite", symbols, DEMO)
    return Demo(units, symbols, snippets, refusals, verify_snippets(snippets, DEMO))


def crafted(text: str, path: str = "tests/test_crafted.py") -> Unit:
    """An example unit as extraction makes it from a test function's source."""
    name = re.search(r"def (\w+)", text)
    assert name is not None
    return Unit(
        key=f"example:{path}::{name[1]}", kind="example", path=path, title=name[1], text=textwrap.dedent(text).strip()
    )


def snippet_of(demo: Demo, text: str, tree: Path | None = None, path: str = "tests/test_crafted.py") -> Snippet:
    made = usage_snippet(crafted(text, path), "ledgerkite", demo.symbols, tree)
    assert isinstance(made, Snippet), made
    return made


def refusal_of(demo: Demo, text: str, tree: Path | None = None) -> str:
    made = usage_snippet(crafted(text), "ledgerkite", demo.symbols, tree)
    assert isinstance(made, Refusal), made
    return made.reason


def verified(snippet: Snippet) -> Snippet:
    """The snippet after running it against the demo library: it must run without error."""
    kept, dropped, not_run = verify_snippets([snippet], DEMO)
    assert not dropped and not not_run, dropped
    assert kept[0].verified is True, kept[0]
    return kept[0]


# -- the demo library's own tests ----------------------------------------------------------------------------------


def test_demo_tests_become_snippets_that_run(demo: Demo) -> None:
    assert len(demo.units) >= 40  # every test function of the demo's suite
    # Only the metadata test is refused: it reads __version__ and __all__ and calls nothing.
    assert {r.unit.rsplit("::", 1)[1]: r.reason for r in demo.refusals} == {
        "test_package_metadata": "calls no public API of ledgerkite"
    }
    assert len(demo.snippets) + len(demo.refusals) == len(demo.units)
    kept, dropped, not_run = demo.verification
    assert not_run == "" and dropped == []
    assert [s.unit for s in kept] == [s.unit for s in demo.snippets]
    assert all(s.verified is True and s.note == "" for s in kept)


def test_demo_snippets_are_plain_scripts(demo: Demo) -> None:
    for snippet in demo.snippets:
        ast.parse(snippet.code)
        assert "def test" not in snippet.code
        assert not re.search(r"\b(self|pytest)\b", snippet.code), snippet.code
        assert not any(re.search(rf"\b{name}\b", snippet.code) for name in FIXTURE_NAMES), snippet.code
        assert snippet.symbols
        assert all(demo.symbols[s]["kind"] in ("function", "class", "method") for s in snippet.symbols)
        assert snippet.task == snippet.task.lower() and not snippet.task.endswith(".")
        assert not snippet.task.startswith("test")


def test_a_parametrized_test_starts_with_its_first_parameter_set(demo: Demo) -> None:
    assert demo.snippet("test_parse_pennies").code == (
        "import ledgerkite as lk\n\ntext = '12'\ncents = 1200\n\nassert lk.parse_pennies(text) == cents\n"
    )


def test_pytest_raises_becomes_try_except_and_the_caught_error_is_read_there(demo: Demo) -> None:
    snippet = demo.snippet("test_nibble_spends_and_guards_overdraw")
    assert snippet.code == textwrap.dedent(
        """\
        import ledgerkite as lk

        pot = lk.sew_envelope("coffee", 1000)
        assert lk.nibble(pot, 400) == 600
        try:
            lk.nibble(pot, 700)
        except lk.EnvelopeOverdrawn as error:
            print(f"{type(error).__name__}: {error}")
            assert error.shortfall == 100
        assert lk.nibble(pot, 700, allow_overdraw=True) == -100
        assert lk.headroom(pot) == -100
        try:
            lk.nibble(pot, 0)
        except ValueError as error:
            print(f"{type(error).__name__}: {error}")
        """
    )
    assert snippet.task == "nibble spends and guards overdraw"
    # Called in this order; re-exports (lk.nibble) resolve to where the function is defined.
    assert [s.rsplit(".", 1)[1] for s in snippet.symbols] == ["sew_envelope", "nibble", "headroom"]
    assert all("alias_of" not in demo.symbols[s] for s in snippet.symbols)


def test_module_constants_come_along_and_pytest_warns_records_warnings(demo: Demo) -> None:
    code = demo.snippet("test_monthly_digest_is_deprecated_but_equivalent").code
    assert code.startswith(
        "import datetime\nimport warnings\n\nimport ledgerkite as lk\n\nD = datetime.date\nOUTLAYS = ["
    )
    assert (
        "with warnings.catch_warnings(record=True):\n"
        '    warnings.simplefilter("always")\n'
        "    old = lk.monthly_digest(OUTLAYS, 2024, 3)\n"
        'assert old == lk.digest_for_month(OUTLAYS, "2024-03")\n'
    ) in code
    # Only what the test uses: the Saturday constant of another module, pytest itself, are not borrowed.
    assert "MONDAY" not in code


# -- crafted tests: rewrites ---------------------------------------------------------------------------------------


def test_tmp_path_is_a_fresh_folder(demo: Demo) -> None:
    snippet = snippet_of(
        demo,
        """
        def test_card_is_written(tmp_path):
            card = tmp_path / "card.txt"
            card.write_text(lk.format_pennies(1234))
            assert card.read_text() == "¤12.34"
        """,
    )
    assert snippet.code == textwrap.dedent(
        """\
        import pathlib
        import tempfile

        import ledgerkite as lk

        tmp_path = pathlib.Path(tempfile.mkdtemp())

        card = tmp_path / "card.txt"
        card.write_text(lk.format_pennies(1234))
        assert card.read_text() == "¤12.34"
        """
    )
    verified(snippet)


def test_pytest_approx_becomes_math_isclose(demo: Demo) -> None:
    snippet = snippet_of(
        demo,
        """
        def test_burn_rate():
            env = lk.Envelope("food", 30000, spent=10000)
            assert lk.burn_rate(env, 10) == pytest.approx(1.0)
            assert pytest.approx(0.5, abs=1e-3) == lk.burn_rate(env, 20)
            assert lk.burn_rate(env, 10) != pytest.approx(2.0)
        """,
    )
    assert snippet.code.splitlines()[:2] == ["import math", ""]
    assert snippet.code.splitlines()[-3:] == [
        "assert math.isclose(lk.burn_rate(env, 10), 1.0, rel_tol=1e-6)",
        "assert math.isclose(lk.burn_rate(env, 20), 0.5, rel_tol=1e-6, abs_tol=1e-3)",
        "assert not math.isclose(lk.burn_rate(env, 10), 2.0, rel_tol=1e-6)",
    ]
    verified(snippet)


def test_unittest_assertions_become_asserts(demo: Demo) -> None:
    snippet = snippet_of(
        demo,
        '''
        def test_headroom(self):
            """Tests that headroom is what is left."""
            pot = lk.sew_envelope("a", 500)  # a fresh pot
            # spend some
            lk.nibble(pot, 200)
            self.assertEqual(lk.headroom(pot), 300)
            self.assertTrue(lk.headroom(pot) > 0, "positive")
            self.assertIn("a", [pot.name])
            self.assertIsInstance(pot, lk.Envelope)
            with self.assertRaises(lk.EnvelopeOverdrawn) as cm:
                lk.nibble(pot, 1000)
            self.assertEqual(cm.exception.shortfall, 700)
        ''',
    )
    assert snippet.code == textwrap.dedent(
        """\
        import ledgerkite as lk

        pot = lk.sew_envelope("a", 500)  # a fresh pot
        # spend some
        lk.nibble(pot, 200)
        assert lk.headroom(pot) == 300
        assert lk.headroom(pot) > 0, "positive"
        assert "a" in [pot.name]
        assert isinstance(pot, lk.Envelope)
        try:
            lk.nibble(pot, 1000)
        except lk.EnvelopeOverdrawn as error:
            print(f"{type(error).__name__}: {error}")
            assert error.shortfall == 700
        """
    )
    assert snippet.task == "headroom is what is left"
    verified(snippet)


def test_the_caught_error_gets_a_name_the_test_does_not_use(demo: Demo) -> None:
    snippet = snippet_of(
        demo,
        """
        def test_bad_text():
            error = "twelve"
            with pytest.raises(ValueError, match="twelve") as info:
                lk.parse_pennies(error)
            assert "twelve" in str(info.value)
        """,
    )
    assert "except ValueError as error_:\n" in snippet.code
    assert '    assert "twelve" in str(error_)\n' in snippet.code
    verified(snippet)


def test_strings_spanning_lines_keep_their_content(demo: Demo) -> None:
    snippet = snippet_of(
        demo,
        '''
        def test_card():
            expected = """
                ¤12.34
            """
            assert lk.format_pennies(1234) == expected.strip()
        ''',
    )
    assert 'expected = """\n        ¤12.34\n    """\n' in snippet.code
    verified(snippet)


def test_a_rewrite_inside_a_loop_is_unparsed_and_still_runs(demo: Demo) -> None:
    snippet = snippet_of(
        demo,
        """
        def test_bad_texts():
            for text in ["x", "1.2.3"]:
                with pytest.raises(ValueError):
                    lk.parse_pennies(text)
        """,
    )
    assert "    try:\n        lk.parse_pennies(text)\n    except ValueError as error:\n" in snippet.code
    verified(snippet)


MODULE = '''\
"""Tests of pots."""
from __future__ import annotations

from unittest import mock

import pytest
from pytest import approx, raises

import ledgerkite as lk
from ledgerkite import nibble, sew_envelope

START = 1000
UNUSED = 5
CASES = [("12", 1200), ("0.5", 50)]


def make_pot(name="pot"):
    """A pot with START cents."""
    return sew_envelope(name, START)


@pytest.fixture
def pot():
    return make_pot()


@pytest.mark.parametrize("amount, left", [(300, 700), (1000, 0)])
@pytest.mark.slow
def test_nibble_takes_amount(amount, left):
    """Check that nibble takes the amount off the allowance."""
    pot = make_pot()
    assert nibble(pot, amount) == left


@pytest.mark.parametrize("text, cents", CASES)
def test_parse_cases(text, cents):
    assert lk.parse_pennies(text) == cents


def test_nibble_refuses_to_overdraw():
    pot = make_pot()

    # overdrawing is refused
    with raises(lk.EnvelopeOverdrawn) as excinfo:
        # far too much
        nibble(pot, 5000)
    assert excinfo.value.shortfall == 4000

    # the pot is untouched; a = b on one line
    a = lk.headroom(pot); b = START
    assert a == approx(b)


def test_with_fixture(pot, tmp_path):
    assert nibble(pot, 1) == 999


@pytest.mark.xfail(reason="rounding")
def test_rounding():
    assert nibble(make_pot(), 1) == 1


@pytest.mark.usefixtures("ledger_db")
def test_uses_db():
    assert nibble(make_pot(), 1) == 999


@mock.patch("ledgerkite.nibble")
def test_patched(patched):
    nibble(make_pot(), 1)
'''


@pytest.fixture(scope="module")
def module_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("crafted-tree")
    (tree / "tests").mkdir()
    (tree / "tests" / "test_pots.py").write_text(MODULE)
    return tree


@pytest.fixture(scope="module")
def module_results(demo: Demo, module_tree: Path) -> dict[str, Snippet | Refusal]:
    units = example_units("tests/test_pots.py", MODULE)
    return {u.key.rsplit("::", 1)[1]: usage_snippet(u, "ledgerkite", demo.symbols, module_tree) for u in units}


def test_a_test_borrows_its_modules_imports_helpers_and_parameters(
    module_results: dict[str, Snippet | Refusal],
) -> None:
    snippet = module_results["test_nibble_takes_amount"]
    assert isinstance(snippet, Snippet)
    assert snippet.code == textwrap.dedent(
        '''\
        from ledgerkite import nibble, sew_envelope

        START = 1000


        def make_pot(name="pot"):
            """A pot with START cents."""
            return sew_envelope(name, START)


        amount = 300
        left = 700

        pot = make_pot()
        assert nibble(pot, amount) == left
        '''
    )
    assert snippet.task == "nibble takes the amount off the allowance"
    assert [s.rsplit(".", 1)[1] for s in snippet.symbols] == ["sew_envelope", "nibble"]
    verified(snippet)


def test_parameter_sets_kept_in_a_module_constant_are_read(module_results: dict[str, Snippet | Refusal]) -> None:
    snippet = module_results["test_parse_cases"]
    assert isinstance(snippet, Snippet)
    assert snippet.code.endswith("\n\ntext = '12'\ncents = 1200\n\nassert lk.parse_pennies(text) == cents\n")
    assert "CASES" not in snippet.code


def test_comments_and_layout_survive_the_rewrite(module_results: dict[str, Snippet | Refusal]) -> None:
    snippet = module_results["test_nibble_refuses_to_overdraw"]
    assert isinstance(snippet, Snippet)
    # pytest's names imported on their own (`raises`, `approx`) are rewritten too.
    assert snippet.code.split("\n\n\n")[-1] == textwrap.dedent(
        """\
        pot = make_pot()

        # overdrawing is refused
        try:
            # far too much
            nibble(pot, 5000)
        except lk.EnvelopeOverdrawn as error:
            print(f"{type(error).__name__}: {error}")
            assert error.shortfall == 4000

        # the pot is untouched; a = b on one line
        a = lk.headroom(pot)
        b = START
        assert math.isclose(a, b, rel_tol=1e-6)
        """
    )
    imports = "import math\n\nimport ledgerkite as lk\nfrom ledgerkite import nibble, sew_envelope\n"
    assert snippet.code.startswith(imports)
    assert snippet.task == "nibble refuses to overdraw"
    verified(snippet)


def test_what_changes_a_tests_meaning_is_refused(module_results: dict[str, Snippet | Refusal]) -> None:
    reasons = {name: r.reason for name, r in module_results.items() if isinstance(r, Refusal)}
    assert reasons == {
        "test_with_fixture": "needs the fixture pot",
        "test_rounding": "is marked xfail: its code is not known to work",
        "test_uses_db": "uses the fixture ledger_db",
        "test_patched": "is decorated with @mock.patch('ledgerkite.nibble'), which a plain script cannot reproduce",
    }


# -- crafted tests: refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test", "reason"),
    [
        (
            "def test_state(self):\n    assert lk.headroom(self.pot) == 5",
            "reads self.pot: it depends on the state of its test class",
        ),
        (
            "def test_almost(self):\n    self.assertAlmostEqual(lk.burn_rate(lk.Envelope('a', 10), 1), 0)",
            "uses unittest's self.assertAlmostEqual, which has no plain-Python rewrite here",
        ),
        (
            "def test_shelf(shelf, tmp_path):\n    assert shelf.pluck('a')",
            "needs the fixture shelf (or parametrize values: its module was not read)",
        ),
        ("def test_sorting():\n    assert sorted([3, 1]) == [1, 3]", "calls no public API of ledgerkite"),
        (
            "def test_later():\n    pytest.skip('not yet')\n    assert lk.parse_pennies('1') == 100",
            "needs pytest.skip, a testing tool with no plain-Python rewrite",
        ),
        (
            "def test_spy():\n    with mock.patch('ledgerkite.nibble'):\n        lk.parse_pennies('1')",
            "needs mock, a testing tool with no plain-Python rewrite",
        ),
        (
            "def test_info():\n    with pytest.raises(ValueError) as info:\n        lk.parse_pennies('x')\n"
            "    other = 1\n    assert info.value.args",
            "uses info (what pytest.raises caught) after other statements",
        ),
        (
            "def test_type():\n    with pytest.raises(ValueError) as info:\n        lk.parse_pennies('x')\n"
            "    assert info.type is ValueError",
            "uses info for more than info.value",
        ),
        (
            "def test_outlays():\n    assert lk.leaderboard(OUTLAYS)",
            "uses OUTLAYS, defined neither in the test nor in its module (not read: no checkout given)",
        ),
        (
            "def test_long():\n" + "".join(f"    assert lk.parse_pennies('{n}') == {n * 100}\n" for n in range(41)),
            "is 41 lines long, not a short example (at most 40)",
        ),
        (
            "async def test_later():\n    assert lk.parse_pennies('1')",
            "is an async test: it needs the event loop its plugin provides",
        ),
    ],
)
def test_tests_that_cannot_become_snippets_are_refused_with_a_reason(demo: Demo, test: str, reason: str) -> None:
    assert refusal_of(demo, test) == reason


def test_an_unused_self_is_dropped(demo: Demo) -> None:
    snippet = snippet_of(demo, "def test_headroom(self):\n    assert lk.headroom(lk.sew_envelope('a', 5)) == 5")
    assert snippet.code == "import ledgerkite as lk\n\nassert lk.headroom(lk.sew_envelope('a', 5)) == 5\n"


def test_only_example_units_become_snippets(demo: Demo) -> None:
    doc = Unit(key="doc:README.md#Intro", kind="doc", path="README.md", title="Intro", text="ledgerkite budgets.")
    assert usage_snippet(doc, "ledgerkite", demo.symbols, None) == Refusal(doc.key, "is a doc unit, not a test")
    assert usage_snippets([doc], "ledgerkite", demo.symbols, None) == ([], [])


@pytest.mark.parametrize(
    ("header", "task"),
    [
        ("def test_nibble_refuses_to_overdraw():", "nibble refuses to overdraw"),
        ("def test_check_that_refill_resets():", "refill resets"),
        ('def test_x():\n    """Tests that Refill resets the pot.\n\n    More.\n    """', "refill resets the pot"),
        ('def test_x():\n    """EnvelopeShelf.pluck finds by name."""', "EnvelopeShelf.pluck finds by name"),
    ],
)
def test_the_task_says_what_the_code_shows(demo: Demo, header: str, task: str) -> None:
    assert snippet_of(demo, f"{header}\n    assert lk.parse_pennies('1') == 100").task == task


# -- verification --------------------------------------------------------------------------------------------------


def test_a_snippet_that_fails_is_dropped_with_its_error(demo: Demo) -> None:
    failing = snippet_of(demo, "def test_wrong():\n    assert lk.parse_pennies('12') == 13, 'twelve is 1200 cents'")
    fine = snippet_of(demo, "def test_right():\n    assert lk.parse_pennies('12') == 1200")
    kept, dropped, not_run = verify_snippets([failing, fine], DEMO)
    assert not_run == ""
    assert [(s.unit, s.verified, reason) for s, reason in dropped] == [
        (failing.unit, False, "AssertionError: twelve is 1200 cents")
    ]
    assert [(s.unit, s.verified) for s in kept] == [(fine.unit, True)]


def test_a_missing_third_party_module_leaves_the_snippet_unverified(demo: Demo) -> None:
    needs = snippet_of(demo, "def test_plot():\n    import doctune_absent_plotting\n    assert lk.parse_pennies('1')")
    wrong_import = snippet_of(demo, "def test_typo():\n    import ledgerkite.nowhere\n    assert lk.parse_pennies('1')")
    kept, dropped, _ = verify_snippets([needs, wrong_import], DEMO)
    assert [(s.verified, s.note) for s in kept] == [(None, "not run: needs doctune_absent_plotting")]
    # A module of the library itself that does not exist is the snippet's fault: dropped.
    assert [(s.unit, reason) for s, reason in dropped] == [
        (wrong_import.unit, "ModuleNotFoundError: No module named 'ledgerkite.nowhere'")
    ]


def test_a_library_that_cannot_be_imported_leaves_every_snippet_unverified(demo: Demo, tmp_path: Path) -> None:
    library = tmp_path / "library"
    (library / "ledgerkite").mkdir(parents=True)
    (library / "ledgerkite" / "__init__.py").write_text("import doctune_absent_dependency\n")
    library.chmod(0o755)  # the sandbox runs the code as another user, who must be able to read the library
    snippets = [demo.snippet("test_parse_pennies"), demo.snippet("test_outlay_is_frozen")]
    kept, dropped, not_run = verify_snippets(snippets, library)
    missing = "ModuleNotFoundError: No module named 'doctune_absent_dependency'"
    assert not_run == f"ledgerkite cannot be imported here: {missing}"
    assert dropped == []
    assert [(s.unit, s.verified, s.note) for s in kept] == [(s.unit, None, f"not run: {not_run}") for s in snippets]
    assert verify_snippets([], library) == Verification([], [], "")
