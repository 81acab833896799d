"""The evaluation side of a version: the held-out-phrasing loss rows (``eval.jsonl``) and the evaluation suite
(``evalset.json``: API questions in held-out phrasings, execution tasks from held-out tests, the API diff against
the parent version with its probes, each symbol's reference entry, and the package source the tasks run against)."""

from __future__ import annotations

import ast
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from doctune.config import LibraryConfig
from doctune.corpus import filters, generate
from doctune.evaluate import suite
from doctune.evaluate.suite.apidiff import api_diff, diff_probes
from doctune.reader.extract import Surface, Unit
from doctune.reader.facts import fact

log = logging.getLogger(__name__)


PROTOCOL = (
    "Every public symbol's facts and every doc section are in training; the questions are held out. API questions "
    "ask about every symbol in a phrasing family that no training pair uses (checked when the version is built). "
    "Symbols of the withheld-QA control trained only as documentation (reference entry, examples, docs), never as "
    "questions. Execution tasks come from held-out tests: no training pair was generated from them, training pairs "
    "sharing a {n}-word sequence with their code were dropped, and a task whose solving call appears in a training "
    "answer is dropped."
)


def heldout_phrasing_rows(
    questions: list[Any], facts: dict[str, Any], lib: str, commits: dict[str, str]
) -> list[dict[str, Any]]:
    """The held-out loss split: each trained symbol's facts asked in the evaluation's phrasings, answered as
    training answers them. A lower loss here means the facts, not the phrasings, were learned. ``commits``: the
    commit each unit's training pairs come from, which these rows carry too (unchanged units, unchanged rows)."""
    rows = []
    for question in questions:
        unit = f"api:{question.symbol}"
        if question.split != "trained" or question.symbol not in facts or unit not in commits:
            continue
        answer = generate.ANSWERS[question.kind](facts[question.symbol], lib)
        meta = {"unit": unit, "generator": f"heldout:{question.kind}", "commit": commits[unit]}
        rows.append(
            {
                "messages": [{"role": "user", "content": question.prompt}, {"role": "assistant", "content": answer}],
                "meta": meta,
            }
        )
    return rows


def _solving_call(task: Any) -> str:
    """The call a task's reference makes, normalised (``result = lk.nibble(pot, 5)`` -> ``lk.nibble(pot, 5)``)."""
    line = task.reference.strip().splitlines()[-1]
    try:
        node = ast.parse(line).body[0]
    except (SyntaxError, IndexError):
        return line
    return ast.unparse(node.value) if isinstance(node, ast.Assign) else ast.unparse(node)


def _code_in(rows: list[dict[str, Any]]) -> str:
    """All training answers' code, normalised statement by statement, to look solutions up in."""
    out = []
    for row in rows:
        for block in filters.CODE_BLOCK.findall(row["messages"][-1]["content"]):
            try:
                out += [ast.unparse(node) for node in ast.walk(ast.parse(block)) if isinstance(node, ast.expr)]
            except SyntaxError:
                out.append(block)
    return "\n".join(out)


def build_evalset(
    held_tests: list[Unit],
    api_units: list[Unit],
    withheld: set[str],
    library: LibraryConfig,
    surface: Surface,
    tree: Path,
    library_path: Path,
    dest: Path,
    train_rows: list[dict[str, Any]],
    parent: Path | None = None,
) -> dict[str, Any]:
    """The evaluation suite of a version: API questions about every symbol in held-out phrasings, execution tasks
    from held-out tests validated against the library at this commit (its reference passes, an empty answer
    fails), each symbol's reference entry for the docs-in-prompt row, the API diff against the ``parent`` version
    folder with its probes, and a copy of the package source, so that evaluation needs nothing but the version
    folder."""
    package = library.import_name
    if (library_path / package).is_dir() or (library_path / f"{package}.py").is_file():
        shutil.copytree(library_path, dest / "library", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    tasks: list[Any] = []
    dropped: list[Any] = []
    if (dest / "library").is_dir():
        tasks, dropped = suite.validate_exec_tasks(
            suite.mine_exec_tasks(held_tests, package, surface.symbols, tree=tree), dest / "library"
        )
    trained_code = _code_in(train_rows)
    clean = []
    for task in tasks:
        if _solving_call(task) in trained_code:
            dropped.append((task, "its solving call appears in a training answer"))
        else:
            clean.append(task)
    docs = {}
    for unit in api_units:
        if (item := fact(unit, surface.symbols)) is not None:
            docs[item.name] = generate.reference_entry(item)
    questions = suite.api_questions(api_units, package, surface.symbols, withheld)
    diff, probes = _api_change(parent, surface.symbols, questions, package)
    return {
        "protocol": PROTOCOL.format(n=filters.NGRAM),
        "held_out_units": sorted(u.key for u in held_tests),
        "withheld_symbols": sorted(k.removeprefix("api:") for k in withheld),
        "api_questions": [q.to_dict() for q in questions],
        "api_diff": diff,
        "diff_probes": [p.to_dict() for p in probes],
        "exec_tasks": [
            {**t.to_dict(), "split": "withheld" if f"api:{t.symbol}" in withheld else "trained"} for t in clean
        ],
        "dropped_tasks": [{"id": t.id, "reason": reason} for t, reason in dropped],
        "docs": docs,
    }


def _api_change(
    parent: Path | None, symbols: dict[str, dict[str, Any]], questions: list[Any], package: str
) -> tuple[dict[str, Any] | None, list[Any]]:
    """The API diff against the parent version (None for a first version) and the probes that check it."""
    if parent is None or not (parent / "symbols.json").is_file() or not (parent / "manifest.json").is_file():
        return None, []
    parent_evalset = parent / "evalset.json"
    asked = json.loads(parent_evalset.read_text()).get("api_questions", []) if parent_evalset.is_file() else []
    diff = api_diff(json.loads((parent / "symbols.json").read_text()), symbols)
    probes = diff_probes(diff, questions, [suite.ApiQuestion.from_dict(q) for q in asked], package)
    if diff.empty:
        log.info("no public API change since the parent version (prose only): no diff probes")
    else:
        log.info(
            "API change since the parent version: %d added, %d changed, %d renamed, %d deprecated, %d removed; "
            "%d diff probes",
            len(diff.added),
            len(diff.changed),
            len(diff.renamed),
            len(diff.deprecated),
            len(diff.removed),
            len(probes),
        )
    parent_version = json.loads((parent / "manifest.json").read_text())["version"]
    return diff.to_dict() | {"parent": parent_version}, probes
