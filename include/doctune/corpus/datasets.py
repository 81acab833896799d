"""Dataset versions: split, generate, filter, report, and write an immutable version atomically.

A version folder holds ``train.jsonl``, ``eval.jsonl``, ``rejected.jsonl`` (every filtered pair and why),
``symbols.json`` (the public API at that commit), ``evalset.json`` and ``library/`` (the evaluation suite and the
package source it runs against), ``report.json``/``report.md`` (quality) and ``manifest.json`` (parent, commit,
counts, content hash, diff against the parent). Pairs of units whose source did not change are copied from the
parent version byte for byte, provenance included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doctune.config import LibraryConfig, Settings
from doctune.corpus import filters, generate
from doctune.corpus.extract import (
    EXTRACTOR_VERSION,
    Surface,
    Unit,
    extract,
    extraction_cache,
    read_text,
    tracked_files,
)
from doctune.errors import DoctuneError
from doctune.registry.artefacts import load_rows
from doctune.secrets import scrub

if TYPE_CHECKING:
    from doctune.registry import Registry
    from doctune.sources import GitCredentials

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DatasetInfo:
    library: str
    version: int
    commit: str
    path: str
    n_train: int
    n_eval: int
    status: str  # "built", "unchanged" (doc surface as before) or "existing" (same content as before)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def is_held_out(unit_key: str, share: float, salt: str = "") -> bool:
    """Stable per-unit split: the same key lands on the same side in every version."""
    return int(hashlib.sha256(f"{salt}{unit_key}".encode()).hexdigest()[:8], 16) / 0x100000000 < share


def split_units(units: list[Unit], share: float) -> tuple[list[Unit], list[Unit]]:
    """Hold out a stable share of the library's tests; everything else trains (docs, every symbol, the changelog).

    Held-out tests become the evaluation's execution tasks, so no task was ever a training example. Knowledge is
    trained and questions are held out: the evaluation asks about trained symbols in phrasings of its own."""
    held = {u.key for u in units if u.kind == "example" and is_held_out(u.key, share)}
    # A small suite may hash no test into the eval side: then hold out the one with the smallest hash.
    if not held:
        ranked = sorted(
            (u for u in units if u.kind == "example"), key=lambda u: hashlib.sha256(u.key.encode()).digest()
        )
        held.update(u.key for u in ranked[:1])
    return [u for u in units if u.key not in held], [u for u in units if u.key in held]


def withheld_keys(units: list[Unit], share: float) -> set[str]:
    """The withheld-QA control (Allen-Zhu & Li, Physics of LMs 3.1): a stable share of public symbols whose facts
    train only as documentation. Salted, so that the control does not line up with the test split."""
    return {u.key for u in units if u.kind == "api" and is_held_out(u.key, share, salt="withheld|")}


def overview_units(units: list[Unit], symbols: dict[str, dict[str, Any]], withheld: set[str]) -> list[Unit]:
    """Module and class overviews (each public member with its one-line summary) of the QA-set symbols, and each
    module's API reference page (every symbol's declaration and summary, the withheld-QA control's too: it is
    documentation)."""
    from doctune.corpus.facts import fact

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


def import_root(tree: Path, package: str) -> Path:
    """The folder to put on ``sys.path`` so that ``package`` imports from a checkout (flat or src layout)."""
    return tree / "src" if (tree / "src" / package).is_dir() else tree


def library_copy(
    settings: Settings, library: LibraryConfig, tree: Path, commit: str, symbols: dict[str, dict[str, Any]]
) -> tuple[Path, dict[str, str]]:
    """The importable library at ``commit``, as the sandbox runs it (training snippets, evaluation tasks): the
    package and every sibling top-level package its public API is defined in (a facade's), built from the files
    git tracks only, links never followed, every text scrubbed of secrets. Returns the folder to put on
    ``sys.path`` and the files left out, with why. Built once per commit."""
    package = library.import_name
    root = import_root(tree, package)
    prefix = "" if root == tree else f"{root.relative_to(tree).as_posix()}/"
    tops = {package} | {
        info["path"].removeprefix(prefix).split("/", 1)[0].removesuffix(".pyi").removesuffix(".py")
        for info in symbols.values()
        if info.get("path", "").startswith(prefix)
    }
    folder = settings.path("cache", "library", library.name) / commit
    if (folder / ".skipped.json").is_file():
        return folder, json.loads((folder / ".skipped.json").read_text())
    for old in folder.parent.iterdir():  # one commit's copy at a time: older ones are never read again
        shutil.rmtree(old, ignore_errors=True)
    staging = folder.with_name(f".staging-{commit}-{os.getpid()}")
    skipped: dict[str, str] = {}
    for rel in tracked_files(tree):
        inside = rel.removeprefix(prefix)
        if not rel.startswith(prefix) or not any(
            inside.startswith(f"{top}/") or inside in (f"{top}.py", f"{top}.pyi") for top in tops
        ):
            continue
        text, reason = read_text(tree, rel)
        if text is None:
            skipped[rel] = reason
            continue
        target = staging / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(scrub(text, rel)[0])
    staging.mkdir(parents=True, exist_ok=True)
    (staging / ".skipped.json").write_text(json.dumps(skipped, sort_keys=True))
    staging.rename(folder)
    return folder, skipped


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
    import ast

    line = task.reference.strip().splitlines()[-1]
    try:
        node = ast.parse(line).body[0]
    except (SyntaxError, IndexError):
        return line
    return ast.unparse(node.value) if isinstance(node, ast.Assign) else ast.unparse(node)


def _code_in(rows: list[dict[str, Any]]) -> str:
    """All training answers' code, normalised statement by statement, to look solutions up in."""
    import ast

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
    from doctune.corpus.facts import fact
    from doctune.evaluate.suite import api_questions, mine_exec_tasks, validate_exec_tasks

    package = library.import_name
    if (library_path / package).is_dir() or (library_path / f"{package}.py").is_file():
        shutil.copytree(library_path, dest / "library", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    tasks: list[Any] = []
    dropped: list[Any] = []
    if (dest / "library").is_dir():
        tasks, dropped = validate_exec_tasks(
            mine_exec_tasks(held_tests, package, surface.symbols, tree=tree), dest / "library"
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
    questions = api_questions(api_units, package, surface.symbols, withheld)
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


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _pair_id(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row["messages"], sort_keys=True).encode()).hexdigest()[:16]


def _slot(row: dict[str, Any]) -> tuple[str, str, str]:
    """What a pair is about, independent of its answer: changed answers show up as 'changed' in a diff."""
    return row["meta"]["unit"], row["meta"]["generator"], row["messages"][0]["content"]


def diff_pairs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The pairs behind ``diff_rows``: rows added and removed, (old, new) row pairs whose answer changed, and
    the rows of ``new`` that are unchanged."""
    old_slots = {_slot(r): r for r in old}
    new_slots = {_slot(r): r for r in new}
    both = new_slots.keys() & old_slots.keys()
    changed = [s for s in both if _pair_id(new_slots[s]) != _pair_id(old_slots[s])]
    return {
        "added": [new_slots[s] for s in sorted(new_slots.keys() - old_slots.keys())],
        "removed": [old_slots[s] for s in sorted(old_slots.keys() - new_slots.keys())],
        "changed": [(old_slots[s], new_slots[s]) for s in sorted(changed)],
        "unchanged": [new_slots[s] for s in sorted(both.difference(changed))],
    }


def diff_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = diff_pairs(old, new)
    added, removed, changed = pairs["added"], pairs["removed"], [n for _, n in pairs["changed"]]
    units = sorted({r["meta"]["unit"] for r in [*changed, *added, *removed]})
    return {
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "unchanged": len(pairs["unchanged"]),
        "units": units,
    }


def _generation_digest(unit: Unit, withheld: bool, symbols: dict[str, dict[str, Any]]) -> str:
    """What a unit's pairs depend on: the unit, the generators, which side of the control it is on, its aliases."""
    aliases = sorted(n for n, s in symbols.items() if s.get("alias_of") == unit.title) if unit.kind == "api" else []
    blob = json.dumps([unit.digest(), generate.GENERATOR_VERSION, withheld, aliases])
    return hashlib.sha256(blob.encode()).hexdigest()


def _rows_for(
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
        # Rows made from tests and doc examples (``_test_rows``) are rebuilt on their own, every time.
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


def _test_rows(
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
    from doctune.corpus.snippets import usage_snippets, verify_snippets
    from doctune.evaluate.suite import TRAIN_WORDING, mine_exec_tasks, validate_exec_tasks

    tests = [u for u in units if u.kind == "example"]
    snippets, refusals = usage_snippets(tests, lib, surface.symbols, tree)
    checked = verify_snippets(snippets, library_path)
    by_key = {u.key: u for u in units}
    fresh = [generate.snippet_pair(by_key[s.unit], s.task, s.code, lib, s.verified) for s in checked.kept]
    mined = mine_exec_tasks(units, lib, surface.symbols, tree=tree, wording=TRAIN_WORDING)
    tasks, broken = validate_exec_tasks(mined, library_path, scored=False)
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


def _quantiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "p50": ordered[len(ordered) // 2],
        "p90": ordered[int(len(ordered) * 0.9)],
        "max": ordered[-1],
    }


def quality_report(
    library: LibraryConfig, surface: Surface, verdicts: filters.Verdicts, snippets: dict[str, Any]
) -> dict[str, Any]:
    kept = verdicts.train + verdicts.eval
    public = sorted(n for n, s in surface.symbols.items() if s["kind"] in ("function", "class", "method"))
    covered = {r["meta"]["unit"].removeprefix("api:") for r in verdicts.train if r["meta"]["unit"].startswith("api:")}
    reasons = Counter(r["meta"]["rejected"]["filter"] for r in verdicts.rejected)
    return {
        "library": library.name,
        "pairs": {"train": len(verdicts.train), "eval": len(verdicts.eval), "rejected": len(verdicts.rejected)},
        "units_by_source": dict(Counter(u.kind for u in surface.units)),
        "pairs_by_generator": dict(Counter(r["meta"]["generator"] for r in kept)),
        "rejected_by_filter": dict(reasons),
        "duplicates_removed": reasons["duplicate"] + reasons["near-duplicate"],
        "api_coverage": {
            "public_symbols": len(public),
            "covered": len(covered & set(public)),
            "share": round(len(covered & set(public)) / len(public), 4) if public else 0.0,
            "uncovered": sorted(set(public) - covered)[:25],
        },
        "answer_chars": _quantiles([len(r["messages"][-1]["content"]) for r in kept]),
        "skipped_files": surface.skipped,
        "unresolved_names": surface.unresolved,
        "test_examples": snippets,
        "secrets_removed": dict(surface.scrubbed),
        "sample": [
            {
                "question": r["messages"][0]["content"],
                "answer": r["messages"][-1]["content"][:300],
                "generator": r["meta"]["generator"],
            }
            for r in kept[:: max(len(kept) // 5, 1)][:5]
        ],
        "rejected_sample": [
            {"question": r["messages"][0]["content"][:200], **r["meta"]["rejected"]} for r in verdicts.rejected[:5]
        ],
    }


def report_markdown(report: dict[str, Any], version: int) -> str:
    pairs, coverage = report["pairs"], report["api_coverage"]
    lines = [
        f"# Dataset v{version} of {report['library']}: quality report",
        "",
        f"- pairs: {pairs['train']} train, {pairs['eval']} held out, {pairs['rejected']} rejected",
        f"- API coverage: {coverage['covered']}/{coverage['public_symbols']} public symbols "
        f"({coverage['share']:.0%}) have at least one pair",
        f"- duplicates removed: {report['duplicates_removed']}",
        f"- answer length (characters): {report['answer_chars']}",
        f"- secrets or private hosts removed: {report['secrets_removed'] or 'none'}",
        "",
        "| source | units |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(report["units_by_source"].items())),
        "",
        "| generator | pairs kept |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(report["pairs_by_generator"].items())),
        "",
        "| filter | pairs rejected |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(report["rejected_by_filter"].items())),
        "",
    ]
    examples = report["test_examples"]
    lines += [
        f"- tests as runnable examples: {examples['examples']} of {examples['tests']} training tests, "
        f"{examples['verified']} run in the sandbox"
        + (f" (not run: {examples['not_run']})" if examples["not_run"] else "")
        + f"; refused {sum(examples['refused'].values())}, failed {len(examples['failed'])}; "
        f"{examples['tasks']} continuation tasks from the tests and doc examples that train",
        "",
    ]
    if report["unresolved_names"]:
        lines += [
            "| public name not resolved | why |",
            "|---|---|",
            *(f"| `{k}` | {v} |" for k, v in sorted(report["unresolved_names"].items())),
            "",
        ]
    if report["skipped_files"]:
        lines += [
            "| skipped file | reason |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in sorted(report["skipped_files"].items())),
            "",
        ]
    lines += ["## Sample", ""] + [f"- **{s['question']}** ({s['generator']})" for s in report["sample"]]
    return "\n".join(lines) + "\n"


def build(
    library: LibraryConfig,
    settings: Settings,
    *,
    commit: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    credentials: GitCredentials | None = None,
) -> DatasetInfo:
    """Check out ``commit`` (default: the branch head) and build a new dataset version if its doc surface
    changed since the latest version, or if ``force``. Holds the library's workspace lease throughout."""
    from doctune.registry import Registry
    from doctune.sources import exclusive_workspace

    registry = Registry.open(settings)
    lost = threading.Event()
    report_progress = progress or (lambda message: log.info("%s", message))
    deadline = time.monotonic() + settings.corpus_build_seconds

    def say(stage: str) -> None:
        """Each stage starts by saying so; a build past its time limit, or one that lost its lease, stops there."""
        if time.monotonic() > deadline:
            raise DoctuneError(
                f"the corpus build of {library.name} took longer than DOCTUNE_CORPUS_BUILD_SECONDS="
                f"{settings.corpus_build_seconds:g} before {stage!r}: raise it, or narrow sources.include"
            )
        if lost.is_set():
            raise DoctuneError(f"the corpus build of {library.name} lost its workspace lease before {stage!r}")
        report_progress(stage)

    with exclusive_workspace(registry, library, settings, on_lost=lost.set):
        return _build(library, settings, registry, say, commit=commit, force=force, credentials=credentials)


def _api_change(
    parent: Path | None, symbols: dict[str, dict[str, Any]], questions: list[Any], package: str
) -> tuple[dict[str, Any] | None, list[Any]]:
    """The API diff against the parent version (None for a first version) and the probes that check it."""
    from doctune.corpus.apidiff import api_diff, diff_probes
    from doctune.evaluate.suite import ApiQuestion

    if parent is None or not (parent / "symbols.json").is_file() or not (parent / "manifest.json").is_file():
        return None, []
    parent_evalset = parent / "evalset.json"
    asked = json.loads(parent_evalset.read_text()).get("api_questions", []) if parent_evalset.is_file() else []
    diff = api_diff(json.loads((parent / "symbols.json").read_text()), symbols)
    probes = diff_probes(diff, questions, [ApiQuestion.from_dict(q) for q in asked], package)
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


def _build(
    library: LibraryConfig,
    settings: Settings,
    registry: Registry,
    say: Callable[[str], None],
    *,
    commit: str | None,
    force: bool,
    credentials: GitCredentials | None,
) -> DatasetInfo:
    from doctune.sources import sync_repository

    say(f"syncing {library.name}")
    tree, commit = sync_repository(library, settings, commit, credentials)
    say("reading docs, API, tests and changelog")
    surface = extract(tree, library, cache=extraction_cache(settings, library))
    latest = registry.latest_dataset(library.name)
    if latest and latest.surface_hash == surface.fingerprint and not force:
        log.info(
            "doc surface of %s unchanged since dataset v%d (commit %s): skipping corpus, training, "
            "evaluation and deployment",
            library.name,
            latest.version,
            latest.commit[:12],
        )
        return DatasetInfo(
            library.name, latest.version, latest.commit, latest.path, latest.n_train, latest.n_eval, "unchanged"
        )

    # The parent's folder (None when its files were deleted): its rows seed the cache, its API is diffed against.
    parent = Path(latest.path) if latest and Path(latest.path).is_dir() else None
    previous_rows: list[dict[str, Any]] = []
    if parent:
        previous_rows = [r for split in ("train", "eval", "rejected") for r in load_rows(parent, split)]
    previous: dict[str, list[dict[str, Any]]] = {}
    for row in previous_rows:
        # LLM pairs come from their own cache, keyed by prompt; held-out-phrasing rows are rebuilt from the questions.
        if row["meta"]["generator"] == "llm" or row["meta"]["generator"].startswith("heldout:"):
            continue
        clean = {
            "messages": row["messages"],
            "meta": {k: v for k, v in row["meta"].items() if k not in ("split", "rejected")},
        }
        previous.setdefault(row["meta"]["unit"], []).append(clean)

    train_units, held_tests = split_units(surface.units, library.eval_share)
    withheld = withheld_keys(surface.units, library.withheld_share)
    api_units = [u for u in surface.units if u.kind == "api"]
    lib = library.import_name
    say(f"generating pairs for {len(surface.units)} units ({len(withheld)} symbols in the withheld-QA control)")
    train_units += overview_units(surface.units, surface.symbols, withheld)
    say(f"rewriting {sum(u.kind == 'example' for u in train_units)} training tests as examples and tasks; running them")
    library_path, left_out = library_copy(settings, library, tree, commit, surface.symbols)
    test_rows, test_report = _test_rows(
        [u for u in train_units if u.kind in ("example", "doc")], lib, surface, tree, library_path, previous, commit
    )
    others = [u for u in train_units if u.kind != "example"]
    train_rows, regenerated = _rows_for(others, lib, surface, commit, previous, withheld)
    train_rows += test_rows
    from doctune.corpus.facts import fact
    from doctune.evaluate.suite import api_questions

    facts = {item.name: item for u in api_units if (item := fact(u, surface.symbols)) is not None}
    commits = {r["meta"]["unit"]: r["meta"]["commit"] for r in train_rows}
    eval_rows = heldout_phrasing_rows(api_questions(api_units, lib, surface.symbols, withheld), facts, lib, commits)
    llm_stats: dict[str, int] = {}
    llm_failures: list[dict[str, Any]] = []
    if library.llm.enabled:
        from doctune.corpus.llm import llm_rows

        say(f"asking {library.llm.model} for pairs")
        cache = settings.path("cache", "llm", library.name)
        wanted = [u for u in train_units if u.kind in ("api", "doc") and u.key not in withheld]
        rows, llm_failures, llm_stats = llm_rows(wanted, lib, library.llm, cache, commit)
        # Everything else is built from scrubbed text; a model's answer is new text, so it is scrubbed too.
        for row in rows:
            for message in row["messages"]:
                message["content"], found = scrub(message["content"])
                surface.scrubbed.update(found)
        train_rows += rows
    say(f"filtering {len(train_rows) + len(eval_rows)} pairs")
    verdicts = filters.apply(train_rows, eval_rows, lib, surface.symbols, held_out_code=[u.text for u in held_tests])
    verdicts.rejected += llm_failures
    train_bytes, eval_bytes = _jsonl(verdicts.train), _jsonl(verdicts.eval)
    content_hash = hashlib.sha256(train_bytes + b"\0" + eval_bytes).hexdigest()
    if latest and latest.content_hash == content_hash:
        log.info("%s: pairs identical to dataset v%d; reusing it", library.name, latest.version)
        return DatasetInfo(
            library.name, latest.version, latest.commit, latest.path, latest.n_train, latest.n_eval, "existing"
        )

    version = registry.next_dataset_version(library.name)
    report = quality_report(library, surface, verdicts, test_report) | {"library_copy_left_out": left_out}
    parent_kept = [r for r in previous_rows if "rejected" not in r["meta"]]
    manifest = {
        "library": library.name,
        "version": version,
        "parent": latest.version if latest else None,
        "commit": commit,
        "surface_hash": surface.fingerprint,
        "content_hash": content_hash,
        "n_train": len(verdicts.train),
        "n_eval": len(verdicts.eval),
        "n_rejected": len(verdicts.rejected),
        "units": {
            "train": len(train_units),
            "held_out_tests": len(held_tests),
            "withheld_symbols": len(withheld),
            "regenerated": regenerated,
        },
        "eval_share": library.eval_share,
        "withheld_share": library.withheld_share,
        "config": {
            "sources": library.sources.model_dump(),
            "llm": library.llm.model_dump(),
            "extractor": EXTRACTOR_VERSION,
            "generator": generate.GENERATOR_VERSION,
        },
        "llm": llm_stats or None,
        "diff": diff_rows(parent_kept, verdicts.train + verdicts.eval) if latest else None,
    }
    root = settings.path("datasets", library.name)
    staging, final = root / f".staging-v{version}-{os.getpid()}", root / f"v{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _write_durably(staging / "train.jsonl", train_bytes)
        _write_durably(staging / "eval.jsonl", eval_bytes)
        _write_durably(staging / "rejected.jsonl", _jsonl(verdicts.rejected))
        _write_durably(staging / "symbols.json", json.dumps(surface.symbols, indent=1, sort_keys=True).encode())
        say(f"building the evaluation suite ({len(api_units)} symbols, {len(held_tests)} held-out tests)")
        evalset = build_evalset(
            held_tests, api_units, withheld, library, surface, tree, library_path, staging, verdicts.train, parent
        )
        _write_durably(staging / "evalset.json", json.dumps(evalset, indent=1, sort_keys=True).encode())
        manifest["evalset"] = {
            "api_questions": len(evalset["api_questions"]),
            "exec_tasks": len(evalset["exec_tasks"]),
            "dropped_tasks": len(evalset["dropped_tasks"]),
            "diff_probes": len(evalset["diff_probes"]),
        }
        manifest["api_diff"] = evalset["api_diff"]
        _write_durably(staging / "report.json", json.dumps(report, indent=2, sort_keys=True).encode())
        _write_durably(staging / "report.md", report_markdown(report, version).encode())
        _write_durably(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
        # The version becomes visible only as a whole: rename the finished folder, then register it.
        if final.exists():  # left by a crash between rename and register, unless the registry has it
            if any(d.version == version for d in registry.datasets(library.name)):
                raise DoctuneError(f"dataset v{version} of {library.name} is registered already: not replacing it")
            shutil.rmtree(final)
        staging.rename(final)
        registry.add_dataset(
            library=library.name,
            version=version,
            commit=commit,
            surface_hash=surface.fingerprint,
            content_hash=content_hash,
            path=str(final),
            n_train=len(verdicts.train),
            n_eval=len(verdicts.eval),
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    log.info(
        "dataset v%d of %s: %d train / %d eval pairs, %d rejected, from commit %s (%d of %d units regenerated)",
        version,
        library.name,
        len(verdicts.train),
        len(verdicts.eval),
        len(verdicts.rejected),
        commit[:12],
        regenerated,
        len(surface.units),
    )
    return DatasetInfo(library.name, version, commit, str(final), len(verdicts.train), len(verdicts.eval), "built")
