"""A hostile repository, end to end through the corpus build and training: links to files and folders outside
it, huge, binary and non-UTF-8 files, code nested too deep to parse, every secret format in docs, code, tests and
the changelog, and a prompt-injection paragraph. The build completes, every skip has a reason, no planted secret
reaches any file doctune writes (dataset version, caches, adapter, logs), and nothing outside the repository is
read."""

import json
import logging
from pathlib import Path

import pytest
from conftest import tiny_library
from hostile_repo import OUTSIDE_MARKER, PLANTED, hostile_repo, leaks, written_files

from doctune import corpus, sources
from doctune.config import Settings
from doctune.train import train


@pytest.mark.slow
def test_a_hostile_repository_builds_and_trains_without_leaking(
    settings: Settings, demo_repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hostile_repo(demo_repo, tmp_path / "outside")
    library = tiny_library(settings, demo_repo, max_steps=2, save_steps=2)
    with caplog.at_level(logging.INFO):
        info = corpus.build(library, settings, sources.sync(library, settings))
        train(library, settings)
    report = json.loads((Path(info.path) / "report.json").read_text())
    skipped = report["skipped_files"]
    for rel in ("docs/escape.md", "ledgerkite/escape.py", "tests/test_escape.py"):
        assert skipped[rel] == "symlink (never followed)"
    assert skipped["docs/huge.md"].startswith("larger than")
    assert skipped["docs/logo.md"] == "binary" and skipped["docs/latin1.md"] == "not UTF-8"
    for rel in ("ledgerkite/deep.py", "tests/test_deep.py", "docs/deep.md"):
        assert "nested more than" in skipped[rel], rel
    left_out = report["library_copy_left_out"]  # the package files the sandbox's copy of the library lacks
    assert left_out["ledgerkite/escape_dir"] == left_out["ledgerkite/escape.py"] == "symlink (never followed)"
    assert report["secrets_removed"] and not (set(report["secrets_removed"]) & {"", None})
    # The library copy the sandbox runs: the package's tracked files only, never a link.
    copy = Path(info.path) / "library"
    assert (copy / "ledgerkite" / "settings.py").is_file() and not (copy / "ledgerkite" / "escape.py").exists()
    assert not any(p.is_symlink() for p in copy.rglob("*"))
    checkout = settings.path("workspaces", library.name)
    files = written_files(settings.home, besides=[checkout, demo_repo])
    assert any(p.name == "adapter_model.safetensors" for p in files) and any(p.name == "evalset.json" for p in files)
    found = leaks(files) + [f"log: {kind}" for kind, (_, fragment) in PLANTED.items() if fragment in caplog.text]
    assert not found, "\n".join(found)
    assert OUTSIDE_MARKER not in caplog.text
