import json
import os
import re
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from demo import edit_demo_docs
from doctune import corpus
from doctune.config import LibraryConfig, Settings
from doctune.corpus.generate import PHRASINGS
from doctune.errors import DoctuneError
from doctune.registry import Registry, load_rows
from doctune.sources import sync, sync_repository


def _commit_all(repo: Path, message: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True, env=env)


def test_extract_reads_docs_and_public_api(settings: Settings, library: LibraryConfig) -> None:
    tree, _ = sync_repository(library, settings)
    surface = corpus.extract(tree, library)
    api = {u.title: u for u in surface.units if u.kind == "api"}
    docs = [u for u in surface.units if u.kind == "doc"]
    assert len(api) >= 15 and len(docs) >= 10
    nibble = api["ledgerkite.envelopes.nibble"]
    assert nibble.signature.startswith("def nibble(envelope: Envelope, amount: int")
    assert "allow_overdraw" in nibble.params
    assert "digest_for_month" in api["ledgerkite.reports.monthly_digest"].deprecated
    assert not any(name.split(".")[-1].startswith("_") for name in api)
    assert any(u.examples for u in docs) and not any(u.path == "CHANGELOG.md" for u in docs)
    changes = {u.title for u in surface.units if u.kind == "change"}
    assert {"0.3.0 Deprecated", "0.3.0 Added"} <= changes
    examples = [u for u in surface.units if u.kind == "example"]
    assert len(examples) >= 12 and all(u.text.startswith("def test_") for u in examples)
    # The symbol table knows re-exports and class attributes, not just definitions.
    assert surface.symbols["ledgerkite.nibble"] == {
        "kind": "alias",
        "path": "ledgerkite/__init__.py",
        "alias_of": "ledgerkite.envelopes.nibble",
    }
    assert surface.symbols["ledgerkite.rules.Verdict.VETO"]["kind"] == "attribute"


def test_bad_files_are_skipped_with_a_reason(settings: Settings, library: LibraryConfig, demo_repo: Path) -> None:
    (demo_repo / "docs" / "logo.md").write_bytes(b"\x89PNG\x00\x00binary")
    (demo_repo / "docs" / "latin1.md").write_bytes("# Caf\xe9\n\nna\xefve text here, long enough".encode("latin-1"))
    (demo_repo / "ledgerkite" / "broken.py").write_text("def oops(:\n")
    (demo_repo / "docs" / "huge.md").write_text("# Huge\n\n" + "x" * (corpus.MAX_FILE_BYTES + 1))
    (demo_repo / "docs" / "escape.md").symlink_to("/etc/passwd")
    _commit_all(demo_repo, "bad files")
    tree, _ = sync_repository(library, settings)
    surface = corpus.extract(tree, library)
    assert surface.skipped == {
        "docs/escape.md": "symlink (never followed)",
        "docs/huge.md": f"larger than {corpus.MAX_FILE_BYTES} bytes",
        "docs/latin1.md": "not UTF-8",
        "docs/logo.md": "binary",
        "ledgerkite/broken.py": "Python does not parse: line 1: invalid syntax",
    }
    assert not any("root:" in u.text for u in surface.units)


def test_repository_without_docs_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "bare"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "data.csv").write_text("a,b\n")
    _commit_all(repo, "no docs")
    library = LibraryConfig(name="bare", repo_url=repo.as_uri())
    with pytest.raises(DoctuneError, match="found no docs and no documented public API"):
        corpus.build(library, settings, sync(library, settings))
    assert Registry.open(settings).latest_dataset("bare") is None


def test_split_holds_out_tests_only_and_is_stable(settings: Settings, library: LibraryConfig) -> None:
    tree, _ = sync_repository(library, settings)
    units = corpus.extract(tree, library).units
    train, held = corpus.split_units(units, 0.3)
    assert {u.key for u in train}.isdisjoint(u.key for u in held)
    assert held and all(u.kind == "example" for u in held)  # every symbol, doc section and changelog entry trains
    assert {u.key for u in units if u.kind in ("api", "doc", "change")} <= {u.key for u in train}
    assert corpus.split_units(list(reversed(units)), 0.3)[1] == list(reversed(held))
    withheld = corpus.withheld_keys(units, 0.3)
    api = [u for u in units if u.kind == "api"]
    assert withheld and 0.1 < len(withheld) / len(api) < 0.5 and withheld == corpus.withheld_keys(api[::-1], 0.3)


def test_pairs_are_chat_messages_with_provenance(settings: Settings, library: LibraryConfig) -> None:
    tree, _ = sync_repository(library, settings)
    surface = corpus.extract(tree, library)
    unit = next(u for u in surface.units if u.title == "ledgerkite.envelopes.nibble")
    pairs = corpus.generate_pairs(unit, "ledgerkite", surface.symbols)
    assert pairs == corpus.generate_pairs(unit, "ledgerkite", surface.symbols)  # deterministic
    generators = Counter(p["meta"]["generator"] for p in pairs)
    # Every phrasing of every kind of fact: the facts are seen several times, in several contexts.
    assert generators["signature"] >= 4 and generators["which"] >= 4 and generators["params"] >= 3
    assert generators["usage"] >= 3 and generators["returns"] >= 2 and generators["reference"] == 1
    for pair in pairs:
        assert [m["role"] for m in pair["messages"]] == ["user", "assistant"]
        assert pair["meta"]["unit"] == "api:ledgerkite.envelopes.nibble"
        if pair["meta"]["generator"] != "reference":  # the long docstring once, short answers everywhere else
            assert len(pair["messages"][1]["content"]) < 600
        if pair["meta"]["generator"] in ("signature", "which", "params", "returns", "purpose", "usage", "alias"):
            assert "ledgerkite.envelopes.nibble" in pair["messages"][1]["content"]  # the full name in every answer
    which = next(p for p in pairs if p["meta"]["generator"] == "which")
    assert which["meta"]["expect"]["name"] == "nibble"
    params = next(p for p in pairs if p["meta"]["generator"] == "params")["messages"][1]["content"]
    assert "- `allow_overdraw: bool = False` (keyword-only): " in params  # described from the docstring's Args
    # A withheld-QA symbol trains only as documentation: its reference entry and docstring examples.
    withheld = corpus.generate_pairs(unit, "ledgerkite", surface.symbols, withheld=True)
    assert {p["meta"]["generator"] for p in withheld} <= {"reference", "example"} and len(withheld) >= 2
    # A long docstring is split into parts: the first (declaration and summary, what the control asks about) in
    # every phrasing, each later part once.
    paragraphs = "\n\n".join(f"Paragraph {i}: " + "budget words " * 40 for i in range(8))
    long = corpus.generate_pairs(replace(unit, text=paragraphs), "ledgerkite", surface.symbols, withheld=True)
    references = [p["messages"][0]["content"] for p in long if p["meta"]["generator"] == "reference"]
    parts = Counter(n for question in references for n in re.findall(r"\(part (\d+) of", question))
    assert len(parts) > 2 and parts.pop("1") == len(PHRASINGS["reference"]) > 1
    assert set(parts.values()) == {1}


def test_changelog_deprecations_become_migration_questions(settings: Settings, library: LibraryConfig) -> None:
    info = corpus.build(library, settings, sync(library, settings))
    rows = load_rows(info.path, "train")
    migration = [r for r in rows if r["meta"]["generator"] == "migration"]
    deprecated = [r for r in migration if "`monthly_digest`" in r["messages"][0]["content"]]
    assert len(deprecated) == 1 and "digest_for_month" in deprecated[0]["messages"][1]["content"]


def test_build_writes_a_registered_version_and_skips_when_unchanged(
    settings: Settings, library: LibraryConfig, demo_repo: Path
) -> None:
    first = corpus.build(library, settings, sync(library, settings))
    assert (first.version, first.status) == (1, "built")
    manifest = json.loads((Path(first.path) / "manifest.json").read_text())
    assert manifest["n_train"] == first.n_train > 300 and manifest["n_eval"] == first.n_eval > 50
    assert manifest["commit"] == first.commit
    # The held-out loss split asks trained facts in the held-out phrasings: same units, other questions.
    train = load_rows(first.path, "train")
    held = load_rows(first.path, "eval")
    assert {r["meta"]["unit"] for r in held} <= {r["meta"]["unit"] for r in train}
    assert {r["messages"][0]["content"] for r in held}.isdisjoint(r["messages"][0]["content"] for r in train)

    assert corpus.build(library, settings, sync(library, settings)).status == "unchanged"

    edit_demo_docs(demo_repo, 1)
    second = corpus.build(library, settings, sync(library, settings))
    assert (second.version, second.status) == (2, "built")
    assert manifest["content_hash"] != json.loads((Path(second.path) / "manifest.json").read_text())["content_hash"]
    # A commit that touches no doc surface (a private helper) builds nothing.
    with open(demo_repo / "ledgerkite" / "envelopes.py", "a") as module:
        module.write("\n\ndef _internal_helper(x: int) -> int:\n    return x * 2\n")
    _commit_all(demo_repo, "internals only")
    assert corpus.build(library, settings, sync(library, settings)).status == "unchanged"


def test_failed_registration_leaves_no_dataset_folder(
    settings: Settings, library: LibraryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Registry, **fields: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(Registry, "add_dataset", refuse)
    with pytest.raises(RuntimeError, match="database went away"):
        corpus.build(library, settings, sync(library, settings))
    assert list((settings.home / "datasets" / library.name).iterdir()) == []


def test_incremental_rebuild_regenerates_only_the_edited_section(
    settings: Settings, library: LibraryConfig, demo_repo: Path
) -> None:
    first = corpus.build(library, settings, sync(library, settings))
    edit_demo_docs(demo_repo, 1)
    second = corpus.build(library, settings, sync(library, settings))
    manifest = json.loads((Path(second.path) / "manifest.json").read_text())
    new_unit = "doc:docs/envelopes.md#Envelopes > Envelope tips (1)"
    assert manifest["units"]["regenerated"] == 1 and manifest["parent"] == 1
    assert manifest["diff"]["units"] == [new_unit]
    assert (manifest["diff"]["removed"], manifest["diff"]["changed"]) == (0, 0)
    assert manifest["diff"]["added"] >= 1

    def lines(path: str) -> set[str]:
        folder = Path(path)
        return {line for split in ("train", "eval") for line in (folder / f"{split}.jsonl").read_text().splitlines()}

    old, new = lines(first.path), lines(second.path)
    assert old <= new  # every other pair is byte-identical, provenance (commit) included
    assert all(json.loads(line)["meta"]["unit"] == new_unit for line in new - old)


def test_quality_report_and_symbol_table_are_written(settings: Settings, library: LibraryConfig) -> None:
    info = corpus.build(library, settings, sync(library, settings))
    report = json.loads((Path(info.path) / "report.json").read_text())
    assert report["api_coverage"]["share"] >= 0.9
    assert report["pairs"] == {
        "train": info.n_train,
        "eval": info.n_eval,
        "rejected": len(load_rows(info.path, "rejected")),
    }
    assert {"api", "doc", "example", "change"} <= set(report["units_by_source"])
    assert "quality report" in (Path(info.path) / "report.md").read_text()
    symbols = json.loads((Path(info.path) / "symbols.json").read_text())
    assert symbols["ledgerkite.envelopes.nibble"]["kind"] == "function"


def test_sources_are_configurable(settings: Settings, library: LibraryConfig) -> None:
    from doctune.config import SourceConfig

    docs_only = library.model_copy(update={"sources": SourceConfig(include=["docs/*.md"], exclude=[])})
    tree, _ = sync_repository(docs_only, settings)
    units = corpus.extract(tree, docs_only).units
    assert units and {u.path for u in units} <= {"docs/envelopes.md", "docs/rules.md", "docs/reports.md"}


def test_no_question_template_dominates(settings: Settings, library: LibraryConfig) -> None:
    import re

    from doctune.corpus.generate import PHRASINGS

    info = corpus.build(library, settings, sync(library, settings))
    # Continuation tasks are worded by evalsuite.TRAIN_WORDING, with the test's own setup: not a template here.
    rows = [r for r in load_rows(info.path, "train") if r["meta"]["generator"] != "task"]
    templates = [
        (t, re.compile(re.sub(r"\\\{\w+\\\}", ".*", re.escape(t)), re.S)) for ts in PHRASINGS.values() for t in ts
    ]
    used = Counter(next(t for t, pattern in templates if pattern.fullmatch(r["messages"][0]["content"])) for r in rows)
    template, count = used.most_common(1)[0]
    assert count / len(rows) < 0.1, (template, count, len(rows))
    assert len(used) >= 40


def test_secrets_in_the_repository_never_reach_the_corpus(
    settings: Settings, library: LibraryConfig, demo_repo: Path
) -> None:
    token = "ghp_" + "Z" * 36
    (demo_repo / "docs" / "deploy.md").write_text(
        f"# Deploying\n\nPush with `git push https://ci:{token}@git.acme.internal/ledgerkite.git` and set\n"
        'the `API_TOKEN = "s3cr3t-value-123"` variable in the runner before calling `ledgerkite.refill`.\n'
    )
    _commit_all(demo_repo, "deploy docs with secrets")
    info = corpus.build(library, settings, sync(library, settings))
    everything = "".join(
        (Path(info.path) / name).read_text()
        for name in ("train.jsonl", "eval.jsonl", "rejected.jsonl", "symbols.json", "report.md")
    )
    for secret in (token, "s3cr3t-value-123", "git.acme.internal", "ci:"):
        assert secret not in everything
    assert "<REDACTED>" in everything
    report = json.loads((Path(info.path) / "report.json").read_text())
    # The token sits inside the URL's credentials, which go as a whole.
    assert report["secrets_removed"] == {"credentials in url": 1, "secret assignment": 1, "private host": 1}


def test_a_library_without_markdown_docs_still_builds(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "apionly"
    (repo / "apionly").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "apionly" / "__init__.py").write_text(
        'def spin(times: int = 1) -> str:\n    """Spin the wheel a number of times.\n\n    Args:\n'
        '        times: How often.\n    """\n    return "spun" * times\n'
    )
    _commit_all(repo, "code only")
    library = LibraryConfig(name="apionly", repo_url=repo.as_uri())
    info = corpus.build(library, settings, sync(library, settings))
    assert info.status == "built" and info.n_train + info.n_eval >= 3


def test_every_symbol_trains_and_no_evaluation_phrasing_does(settings: Settings, library: LibraryConfig) -> None:
    """Checked on the built files: every public symbol's documentation is in train.jsonl, and no question of the
    evaluation (nor any fixed part of its phrasing family) is asked in training."""
    import re

    from doctune.evaluate.suite import EVAL_PHRASINGS

    info = corpus.build(library, settings, sync(library, settings))
    folder = Path(info.path)
    evalset = json.loads((folder / "evalset.json").read_text())
    train = load_rows(folder, "train")
    symbols = json.loads((folder / "symbols.json").read_text())
    public = {n for n, s in symbols.items() if s["kind"] in ("function", "class", "method")}
    documented = {r["meta"]["unit"].removeprefix("api:") for r in train if r["meta"]["generator"] == "reference"}
    assert documented == public
    questions = {r["messages"][0]["content"] for r in train}
    asked = [q["prompt"] for q in evalset["api_questions"]]
    assert len(asked) >= 150 and not questions & set(asked)
    fixed_parts = [p.strip() for ts in EVAL_PHRASINGS.values() for t in ts for p in re.split(r"\{\w+\}", t)]
    for part in (p for p in fixed_parts if len(p.split()) >= 3):
        assert not any(part in q for q in questions), part
    # The withheld-QA control: documentation only, and its questions are labelled.
    withheld = set(evalset["withheld_symbols"])
    assert withheld and withheld < public
    assert {r["meta"]["generator"] for r in train if r["meta"]["unit"].removeprefix("api:") in withheld} <= {
        "reference",
        "example",
    }
    assert {q["split"] for q in evalset["api_questions"] if q["symbol"] in withheld} == {"withheld"}


def test_execution_tasks_come_from_held_out_tests_only(settings: Settings, library: LibraryConfig) -> None:
    info = corpus.build(library, settings, sync(library, settings))
    folder = Path(info.path)
    evalset = json.loads((folder / "evalset.json").read_text())
    train = load_rows(folder, "train")
    held_out = set(evalset["held_out_units"])
    assert held_out and all(k.startswith("example:") for k in held_out)
    assert not held_out & {r["meta"]["unit"] for r in train}
    assert len(evalset["exec_tasks"]) >= 5 and {t["source"] for t in evalset["exec_tasks"]} <= held_out
    answers = "\n".join(r["messages"][-1]["content"] for r in train)
    for task in evalset["exec_tasks"]:
        solving = task["reference"].strip().splitlines()[-1].removeprefix("result = ")
        assert solving not in answers, task["id"]  # the solving call was never a training answer
        assert task["symbol"] in symbols_of(folder) and task["split"] in ("trained", "withheld")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["evalset"]["exec_tasks"] == len(evalset["exec_tasks"])
    assert (folder / "library" / "ledgerkite" / "__init__.py").is_file()  # the suite runs from the version alone
    assert "phrasing family that no training pair uses" in evalset["protocol"]


def symbols_of(folder: Path) -> dict[str, dict[str, object]]:
    return json.loads((folder / "symbols.json").read_text())


def test_pairs_made_from_tests_are_plain_runnable_code(settings: Settings, library: LibraryConfig) -> None:
    info = corpus.build(library, settings, sync(library, settings))
    rows = [r for r in load_rows(info.path, "train") if r["meta"]["generator"] in ("write_code", "task")]
    assert {r["meta"]["generator"] for r in rows} == {"write_code", "task"}
    for row in rows:
        answer = row["messages"][-1]["content"]
        assert "def test_" not in answer and "pytest" not in answer and not re.search(r"\bself\b", answer), answer
        assert row["meta"]["verified"] is True  # each ran in the sandbox against the library at this commit
    report = json.loads((Path(info.path) / "report.json").read_text())
    assert report["test_examples"]["verified"] == report["test_examples"]["examples"] > 10


SPHINX_LIBRARY = {
    "docs/guide.md": (
        "# Guide\n\nCall {func}`gadget.spin` to turn, see {ref}`the basics <basics>`.\n\n"
        "```{note}\nSpinning is idempotent.\n```\n\n"
        "```{doctest}\n>>> import gadget\n>>> gadget.spin(2)\n'spun spun'\n```\n"
    ),
    "docs/api.rst": (
        "API\n===\n\nUse :func:`gadget.spin` or :class:`~gadget.Wheel`.\n\n.. code-block:: python\n\n"
        "   import gadget\n   gadget.spin()\n\n.. versionchanged:: 2.0\n   ``times`` became optional.\n"
    ),
    "gadget/__init__.py": (
        'class Wheel:\n    """A wheel that :meth:`spin` turns.\n\n    .. note:: Wheels are round.\n    """\n\n\n'
        'def spin(times: int = 1) -> str:\n    """Spin the :class:`Wheel` ``times`` times.\n\n'
        '    .. deprecated:: 2.1\n       Use :func:`gadget.spin` with keywords.\n    """\n'
        "    return ' '.join(['spun'] * times)\n"
    ),
}


def test_sphinx_and_myst_markup_never_reaches_an_answer(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "gadget"
    for rel, text in SPHINX_LIBRARY.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    _commit_all(repo, "gadget with Sphinx and MyST docs")
    library = LibraryConfig(name="gadget", repo_url=repo.as_uri())
    info = corpus.build(library, settings, sync(library, settings))
    answers = [r["messages"][-1]["content"] for split in ("train", "eval") for r in load_rows(info.path, split)]
    assert any("`gadget.spin`" in a for a in answers) and any("Spinning is idempotent." in a for a in answers)
    markup = re.compile(
        r":(func|class|meth|ref):`|\{(func|ref|note|doctest)\}|\.\. (code-block|versionchanged|note|deprecated)::"
    )
    leaked = [a for a in answers if markup.search(a)]
    assert leaked == []


def test_a_build_past_its_time_limit_stops_before_writing(settings: Settings, library: LibraryConfig) -> None:
    quick = settings.model_copy(update={"corpus_build_seconds": 1e-6})
    with pytest.raises(DoctuneError, match="longer than DOCTUNE_CORPUS_BUILD_SECONDS=1e-06 before '(sync|read)"):
        corpus.build(library, quick, sync(library, quick))
    assert Registry.open(settings).latest_dataset(library.name) is None
    assert not list(settings.path("datasets", library.name).iterdir())


def test_a_second_build_or_sync_of_a_library_waits_for_the_first(settings: Settings, library: LibraryConfig) -> None:
    synced = sync(library, settings)
    registry = Registry.open(settings)
    assert registry.acquire_lease(f"workspace:{library.name}", "another-worker:4242:abcd1234", ttl=60)
    for stage in (lambda: corpus.build(library, settings, synced), lambda: sync(library, settings)):
        with pytest.raises(DoctuneError, match="another sync or corpus build of ledgerkite is using its workspace"):
            stage()
    assert registry.latest_dataset(library.name) is None
    registry.release_lease(f"workspace:{library.name}", "another-worker:4242:abcd1234")
    assert corpus.build(library, settings, synced).status == "built"
    assert registry.lease(f"workspace:{library.name}") is None  # released when the build ended


def test_the_build_reads_the_synced_tree_and_never_fetches(
    settings: Settings, library: LibraryConfig, demo_repo: Path
) -> None:
    synced = sync(library, settings)
    edit_demo_docs(demo_repo, 1)  # the remote moves on after the sync...
    demo_repo.rename(demo_repo.with_name("moved-away"))  # ...and then cannot be reached at all
    info = corpus.build(library, settings, (synced.commit, synced.path))  # the form the Airflow task passes
    assert (info.status, info.commit) == ("built", synced.commit)
    manifest = json.loads((Path(info.path) / "manifest.json").read_text())
    assert manifest["commit"] == synced.commit
    assert not any("Envelope tips" in r["meta"]["unit"] for r in load_rows(info.path, "train"))  # not the new commit
    snapshot = Registry.open(settings).latest_snapshot(library.name)
    assert snapshot is not None and snapshot.commit == synced.commit
    assert snapshot.surface_hash == manifest["surface_hash"]
