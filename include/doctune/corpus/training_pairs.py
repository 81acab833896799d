"""The training pairs of a version: per unit, reused from the parent version when the unit did not change and
generated when it did; module and class overviews; the training tests rewritten as examples and continuation
tasks, run in the sandbox."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from doctune.corpus import generate
from doctune.corpus.snippets import usage_snippets, verify_snippets
from doctune.evaluate import suite
from doctune.reader.extract import Surface, Unit
from doctune.reader.facts import fact


def reusable_rows(parent_rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The parent version's rows by unit, as ``unit_rows`` and ``example_rows`` reuse them: without the version's
    split and rejection marks."""
    previous: dict[str, list[dict[str, Any]]] = {}
    for row in parent_rows:
        # LLM pairs come from their own cache, keyed by prompt; held-out-phrasing rows are rebuilt from the questions.
        if row["meta"]["generator"] == "llm" or row["meta"]["generator"].startswith("heldout:"):
            continue
        clean = {
            "messages": row["messages"],
            "meta": {k: v for k, v in row["meta"].items() if k not in ("split", "rejected")},
        }
        previous.setdefault(row["meta"]["unit"], []).append(clean)
    return previous


def overview_units(units: list[Unit], symbols: dict[str, dict[str, Any]], withheld: set[str]) -> list[Unit]:
    """Module and class overviews (each public member with its one-line summary) of the QA-set symbols, and each
    module's API reference page (every symbol's declaration and summary, the withheld-QA control's too: it is
    documentation)."""
    members: dict[tuple[str, str], list[Any]] = {}
    for unit in units:
        item = fact(unit, symbols) if unit.kind == "api" else None
        if item is None:
            continue
        module = item.name.rpartition(".")[0] if item.kind != "method" else item.owner.rpartition(".")[0]
        members.setdefault(("module_reference", module), []).append(item)
        if unit.key in withheld:
            continue
        if item.kind == "method":
            members.setdefault(("class_overview", item.owner), []).append(item)
        else:
            members.setdefault(("module", module), []).append(item)
    overviews = []
    for (kind, title), items in sorted(members.items()):
        path = symbols.get(title, {}).get("path") or items[0].name
        # Chunks of a few members keep each pair short; the title says which part it is.
        size = 6 if kind == "module_reference" else 12
        for start in range(0, len(items), size):
            part = f"{title}" if len(items) <= size else f"{title} (part {start // size + 1})"
            overviews.append(generate.overview_unit(part, path, items[start : start + size], kind))
    return overviews


def _generation_digest(unit: Unit, withheld: bool, symbols: dict[str, dict[str, Any]]) -> str:
    """What a unit's pairs depend on: the unit, the generators, which side of the control it is on, its aliases."""
    aliases = sorted(n for n, s in symbols.items() if s.get("alias_of") == unit.title) if unit.kind == "api" else []
    blob = json.dumps([unit.digest(), generate.GENERATOR_VERSION, withheld, aliases])
    return hashlib.sha256(blob.encode()).hexdigest()


def unit_rows(
    units: list[Unit],
    lib: str,
    surface: Surface,
    commit: str,
    previous: dict[str, list[dict[str, Any]]],
    withheld: set[str],
) -> tuple[list[dict[str, Any]], int]:
    """Pairs for units: reused from the parent where the unit is unchanged, generated where it is new."""
    rows, regenerated = [], 0
    for unit in units:
        digest = _generation_digest(unit, unit.key in withheld, surface.symbols)
        # Rows made from tests and doc examples (``example_rows``) are rebuilt on their own, every time.
        reused = [r for r in previous.get(unit.key, []) if r["meta"]["generator"] not in TEST_GENERATORS]
        if reused and all(r["meta"].get("unit_digest") == digest for r in reused):
            rows.extend(reused)
            continue
        regenerated += 1
        for pair in generate.generate_pairs(unit, lib, surface.symbols, withheld=unit.key in withheld):
            pair["meta"]["unit_digest"] = digest
            pair["meta"]["commit"] = commit
            rows.append(pair)
    return rows, regenerated


TEST_GENERATORS = frozenset({"write_code", "task"})


def example_rows(
    units: list[Unit],
    lib: str,
    surface: Surface,
    tree: Path,
    library_path: Path,
    previous: dict[str, list[dict[str, Any]]],
    commit: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What the training tests (and doc examples) teach beyond the API facts, each run in the sandbox against the
    library at this commit (every build: a change in the library can break an example its test did not change):

    - each test as a runnable usage example (``corpus.snippets``);
    - each call a test or doc example checks, as a continuation task in TRAIN_WORDING: the setup, what to do, the
      call. The evaluation's tasks come from held-out tests in words of their own.
    A row that did not change keeps its parent's bytes, provenance included."""
    tests = [u for u in units if u.kind == "example"]
    snippets, refusals = usage_snippets(tests, lib, surface.symbols, tree)
    checked = verify_snippets(snippets, library_path)
    by_key = {u.key: u for u in units}
    fresh = [generate.snippet_pair(by_key[s.unit], s.task, s.code, lib, s.verified) for s in checked.kept]
    mined = suite.mine_exec_tasks(units, lib, surface.symbols, tree=tree, wording=suite.TRAIN_WORDING)
    tasks, broken = suite.validate_exec_tasks(mined, library_path, scored=False)
    fresh += [generate.task_pair(by_key[t.source], t.prompt, t.reference) for t in tasks]

    def identity(row: dict[str, Any]) -> str:
        return json.dumps([row["meta"]["unit"], row["meta"]["generator"], row["messages"]], sort_keys=True)

    parents = {identity(r): r for rows in previous.values() for r in rows}
    rows = []
    for row in fresh:
        if (parent := parents.get(identity(row))) is not None:
            rows.append(parent)
        else:
            row["meta"]["commit"] = commit
            rows.append(row)
    report = {
        "tests": len(tests),
        "examples": len(checked.kept),
        "verified": sum(s.verified is True for s in checked.kept),
        "not_run": checked.not_run or None,
        "failed": {s.unit: error for s, error in checked.dropped},
        "refused": dict(Counter(_reason_kind(r.reason) for r in refusals).most_common()),
        "tasks": len(tasks),
        "broken_tasks": len(broken),
    }
    return rows, report


# Refusal reasons, grouped for the report: the names in them (fixtures, attributes, decorators) make each unique.
REASON_KINDS = (
    (r"^needs the fixtures? ", "needs a fixture"),
    (r"^uses the fixture", "uses a fixture"),
    (r"^reads self\.", "reads the state of its test class"),
    (r"^is decorated with ", "has a decorator a script cannot reproduce"),
    (r"^is \d+ lines long", "is too long to be a short example"),
    (r"^uses .*, defined neither", "uses a name its module does not define"),
    (r"^uses \w+ \(what pytest.raises caught\)", "uses what pytest.raises caught, later on"),
)


def _reason_kind(reason: str) -> str:
    return next((kind for pattern, kind in REASON_KINDS if re.search(pattern, reason)), reason)
