import ast
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from demo import commit_api_change, commit_next_change, edit_demo_docs, run_git
from demo.report import _freshness_rows
from doctune import corpus, sources
from doctune.config import LibraryConfig, Settings
from doctune.evaluate import Item
from doctune.evaluate.freshness import GROUP, figures
from doctune.evaluate.suite import ApiQuestion, api_questions, is_stale, score_api
from doctune.evaluate.suite.apidiff import ApiDiff, api_diff, diff_probes
from doctune.reader.units import Unit
from doctune.registry import load_rows


def entry(signature: str, summary: str, deprecated: str = "") -> dict[str, Any]:
    function = ast.parse(signature).body[0]
    assert isinstance(function, ast.FunctionDef)
    params = [a.arg for a in function.args.args + function.args.kwonlyargs]
    return {"kind": "function", "path": "pkg/core.py", "line": 1, "signature": signature, "params": params} | {
        "deprecated": deprecated,
        "summary": summary,
    }


BEFORE = {
    "pkg": {"kind": "module", "path": "pkg/__init__.py"},
    "pkg.VERSION": {"kind": "attribute", "path": "pkg/__init__.py"},
    "pkg.total": entry("def total(values: list[int], start: int = 0) -> int: ...", "Add up a list of numbers."),
    "pkg.mean": entry("def mean(values: list[float]) -> float: ...", "Average a list of numbers."),
    "pkg.old_shout": entry("def old_shout(text: str) -> str: ...", "Turn a text into capitals."),
    "pkg.tally": entry("def tally(values: list[int]) -> int: ...", "Count the values the slow way."),
    "pkg.double": entry("def double(x: int) -> int: ...", "Multiply a number by two."),
}
AFTER = {
    **{k: v for k, v in BEFORE.items() if k not in ("pkg.old_shout", "pkg.double", "pkg.VERSION")},
    # spacing only: not a change
    "pkg.mean": entry("def mean(values:list[float])->float: ...", "Average a list of numbers."),
    "pkg.total": entry("def total(values: list[int], start: int = 1) -> int: ...", "Add up a list of numbers."),
    "pkg.shout": entry("def shout(text: str) -> str: ...", "Turn a text into capitals."),
    "pkg.tally": entry("def tally(values: list[int]) -> int: ...", "Count the values.", "Use `count_values` instead."),
    "pkg.count_values": entry("def count_values(values: list[int]) -> int: ...", "Count the values in a list."),
}


def questions(symbols: dict[str, dict[str, Any]]) -> list[ApiQuestion]:
    units = [
        Unit(f"api:{name}", "api", e["path"], name, e["summary"], e["signature"], tuple(e["params"]))
        for name, e in symbols.items()
        if e["kind"] == "function"
    ]
    return api_questions(units, "pkg", symbols)


def test_symbol_table_diff_finds_each_kind_of_change() -> None:
    diff = api_diff(BEFORE, AFTER)
    assert diff.added == ["pkg.count_values"] and diff.removed == ["pkg.double"]
    assert diff.renamed == [("pkg.old_shout", "pkg.shout")]  # same parameters and summary, new name
    assert diff.changed == ["pkg.total"]  # a new default; pkg.mean only changed its spacing
    assert diff.deprecated == [("pkg.tally", "pkg.count_values")]  # the note's name, resolved in the package
    assert ApiDiff.from_dict(json.loads(json.dumps(diff.to_dict()))) == diff
    assert "pkg.mean" not in diff.touched() and {"pkg.old_shout", "pkg.shout", "pkg.tally"} <= diff.touched()
    # A prose-only change (same symbol table) has no diff and no probes.
    same = api_diff(BEFORE, json.loads(json.dumps(BEFORE)))
    assert same.empty and diff_probes(same, questions(BEFORE), questions(BEFORE), "pkg") == []


def test_probes_ask_what_changed_and_recognise_stale_answers() -> None:
    probes = diff_probes(api_diff(BEFORE, AFTER), questions(AFTER), questions(BEFORE), "pkg")
    by_change: dict[str, list[ApiQuestion]] = {}
    for probe in probes:
        by_change.setdefault(probe.change, []).append(probe)
    assert set(by_change) == {"added", "changed", "renamed", "deprecated", "removed"}
    assert {p.symbol for p in by_change["added"]} == {"pkg.count_values"}
    assert {"signature", "which", "usage"} <= {p.kind for p in by_change["added"]}
    assert all(p.id.startswith("diff:") for p in probes) and len({p.id for p in probes}) == len(probes)

    # Changed: only questions whose answer changed (the signature; the parameter names did not), old answer stale.
    changed = by_change["changed"]
    assert [p.kind for p in changed] == ["signature"] and changed[0].symbol == "pkg.total"
    old, new = "def total(values, start=0)", "def total(values, start=1)"
    assert is_stale(changed[0], old) and score_api(changed[0], old) == 0
    assert not is_stale(changed[0], new) and score_api(changed[0], new) == 1
    assert not is_stale(changed[0], "no idea")  # wrong, but not the old API

    # Renamed: the old "which" question now expects the new name; the old name is stale.
    which = next(p for p in by_change["renamed"] if p.kind == "which" and p.stale)
    assert is_stale(which, "Use `pkg.old_shout(text)`.") and score_api(which, "Use `pkg.shout(text)`.") == 1

    # Deprecated: which function replaces it.
    (replacement,) = by_change["deprecated"]
    assert "`pkg.tally`" in replacement.prompt and score_api(replacement, "Call pkg.count_values(v).") == 1

    # Removed: right unless the answer offers the removed name, which is stale.
    (gone,) = by_change["removed"]
    assert gone.kind == "gone" and gone.symbol == "pkg.double"
    assert is_stale(gone, "pkg.double(4)") and score_api(gone, "pkg.double(4)") == 0
    assert score_api(gone, "Use x * 2.") == 1 and not is_stale(gone, "Use x * 2.")
    # The probes are asked in the held-out phrasings, never the training ones.
    assert all(
        p.prompt == q.prompt
        for p in by_change["added"]
        for q in questions(AFTER)
        if q.id == p.id.removeprefix("diff:added:")
    )


def test_freshness_figures_separate_recall_staleness_and_the_unchanged_rest() -> None:
    probes = diff_probes(api_diff(BEFORE, AFTER), questions(AFTER), questions(BEFORE), "pkg")
    unchanged = next(q for q in questions(AFTER) if q.symbol == "pkg.mean" and q.kind == "which")
    items = [Item(p.id, "api", p.prompt, p, GROUP, p.symbol) for p in probes]
    items.append(Item(unchanged.id, "api", unchanged.prompt, unchanged, "api_heldout_phrasing", unchanged.symbol))
    touched = api_diff(BEFORE, AFTER).touched()

    def answered(answer: Any) -> dict[str, tuple[float, float, int]]:
        answers = [answer(item.payload) for item in items]
        scores = [score_api(item.payload, a) for item, a in zip(items, answers, strict=True)]
        return figures(items, answers, scores, touched)

    def knows_the_old_api(q: ApiQuestion) -> str:  # production, trained before the change
        return {"gone": "pkg.double(2)", "which": "pkg.old_shout"}.get(q.kind, "def total(values, start=0)")

    stale = answered(knows_the_old_api)
    assert stale["stale_rate"][0] > 0.5 and stale["new_api_recall"][0] < 0.5 and stale["unchanged_score"][2] == 1
    silent = answered(lambda q: "I do not know.")
    assert silent["stale_rate"][0] == 0 and silent["new_api_recall"][0] == 0
    # No probes (a prose-only version): no freshness figures at all.
    assert figures(items[-1:], ["mean"], [1.0], set()) == {}


def test_a_real_api_commit_becomes_probes_in_the_next_version(
    settings: Settings, library: LibraryConfig, demo_repo: Path
) -> None:
    first = corpus.build(library, settings, sources.sync(library, settings))
    evalset = json.loads((Path(first.path) / "evalset.json").read_text())
    assert evalset["api_diff"] is None and evalset["diff_probes"] == []  # a first version has no parent

    edit_demo_docs(demo_repo, 1)  # prose only
    prose = corpus.build(library, settings, sources.sync(library, settings))
    evalset = json.loads((Path(prose.path) / "evalset.json").read_text())
    assert evalset["api_diff"]["parent"] == 1 and ApiDiff.from_dict(evalset["api_diff"]).empty
    assert evalset["diff_probes"] == []

    commit_api_change(demo_repo)
    third = corpus.build(library, settings, sources.sync(library, settings))
    evalset = json.loads((Path(third.path) / "evalset.json").read_text())
    diff = ApiDiff.from_dict(evalset["api_diff"])
    assert diff.added == ["ledgerkite.reports.average_outlay"] and diff.changed == ["ledgerkite.reports.leaderboard"]
    assert not (diff.removed or diff.renamed or diff.deprecated)
    probes = [ApiQuestion.from_dict(p) for p in evalset["diff_probes"]]
    assert {p.symbol for p in probes if p.change == "added"} == {"ledgerkite.reports.average_outlay"}
    (signature,) = [p for p in probes if p.change == "changed"]
    assert signature.stale is not None and ["pos", "top", "3"] in signature.stale["parameters"]
    assert is_stale(signature, "def leaderboard(outlays, top=3)")
    manifest = json.loads((Path(third.path) / "manifest.json").read_text())
    assert manifest["evalset"]["diff_probes"] == len(probes) and manifest["api_diff"]["added"] == diff.added
    # The new function's facts are trained; the probes' phrasings are not.
    train = load_rows(third.path, "train")
    assert any("ledgerkite.reports.average_outlay" in r["messages"][1]["content"] for r in train)
    assert {p.prompt for p in probes}.isdisjoint(r["messages"][0]["content"] for r in train)


def test_the_demo_commits_its_api_change_once_then_prose(demo_repo: Path) -> None:
    assert "API change" in commit_next_change(demo_repo)
    assert "def average_outlay" in (demo_repo / "ledgerkite" / "reports.py").read_text()
    assert "doc change" in commit_next_change(demo_repo)
    assert run_git(demo_repo, "diff", "--stat", "HEAD~1", "--", "ledgerkite") == ""  # the second touched docs only


def test_the_demo_summary_shows_the_change_and_both_answers() -> None:
    right = {"answer": "Use ledgerkite.reports.average_outlay(outlays).", "score": 1.0, "stale": False}
    wrong = {"answer": "ledgerkite.reports.mean_spend", "score": 0.0, "stale": False}
    probe = {"item": "diff:added:which:x", "change": "added", "kind": "which", "symbol": "x", "prompt": "Name it."}
    report = {
        "production_version": 1,
        "metrics": {
            "production": {"new_api_recall": 0.1, "stale_rate": 0.5},
            "candidate": {"new_api_recall": 0.9, "stale_rate": 0.0},
        },
        "freshness": {
            "parent": 1,
            "diff": {"added": ["ledgerkite.reports.average_outlay"], "changed": [], "renamed": [["a.b", "a.c"]]}
            | {"deprecated": [], "removed": []},
            "showcase": probe | {"production": wrong, "candidate": right, "reference": "production"},
        },
    }
    table = Table()
    _freshness_rows(table, report)
    console = Console(width=300, record=True)
    console.print(table)
    text = console.export_text()
    assert "1 added (average_outlay); 1 renamed (b -> c)" in text
    assert "new-API recall 0.10 -> 0.90; stale answers 0.50 -> 0.00" in text
    assert "v1 (before)" in text and "mean_spend" in text and "Use ledgerkite.reports.average_outlay" in text
    prose = report | {"freshness": {"parent": 1, "diff": {k: [] for k in report["freshness"]["diff"]}}}
    table = Table()
    _freshness_rows(table, prose)
    console.print(table)
    assert "prose only, no probes" in console.export_text()
