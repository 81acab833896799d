import subprocess
from pathlib import Path

import pytest

from doctune.config import LibraryConfig, Settings
from doctune.demo import edit_demo_docs
from doctune.errors import DoctuneError
from doctune.registry import Registry
from doctune.sources import redact_url, sync, sync_repository


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_clone_then_fetch_follows_the_branch(settings: Settings, library: LibraryConfig, demo_repo: Path) -> None:
    tree, first = sync_repository(library, settings)
    assert first == _git(demo_repo, "rev-parse", "HEAD")
    assert (tree / "ledgerkite" / "envelopes.py").is_file()
    second = edit_demo_docs(demo_repo, 1)
    assert sync_repository(library, settings) == (tree, second)
    assert sync_repository(library, settings, first)[1] == first  # an exact commit can be pinned


def test_sync_records_snapshot_and_detects_change(settings: Settings, library: LibraryConfig) -> None:
    result = sync(library, settings)
    assert result.changed and result.dataset_version is None
    snapshot = Registry.open(settings).latest_snapshot(library.name)
    assert snapshot is not None and snapshot.commit == result.commit
    assert snapshot.surface_hash == result.surface_hash


def test_hooks_in_the_repository_never_run(settings: Settings, library: LibraryConfig, demo_repo: Path) -> None:
    marker = settings.home / "hook-ran"
    hook = demo_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    tree, _ = sync_repository(library, settings)
    (tree / ".git" / "hooks" / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (tree / ".git" / "hooks" / "post-checkout").chmod(0o755)
    edit_demo_docs(demo_repo, 2)
    sync_repository(library, settings)
    assert not marker.exists()


def test_missing_repository(settings: Settings, tmp_path: Path) -> None:
    library = LibraryConfig(name="ghost", repo_url=(tmp_path / "nope").as_uri())
    with pytest.raises(DoctuneError, match=r"repository .*nope does not exist or is unreachable.*repo_url"):
        sync_repository(library, settings)
    assert not (settings.home / "workspaces" / "ghost" / "repo").exists()


def test_missing_branch(settings: Settings, demo_repo: Path) -> None:
    library = LibraryConfig(name="ledgerkite", repo_url=demo_repo.as_uri(), branch="release")
    with pytest.raises(DoctuneError, match=r"branch 'release' does not exist in .*set 'branch'"):
        sync_repository(library, settings)


def test_empty_repository(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q", "-b", "main")
    library = LibraryConfig(name="empty", repo_url=empty.as_uri())
    with pytest.raises(DoctuneError, match="(?i)empty|does not exist in"):
        sync_repository(library, settings)
    assert Registry.open(settings).latest_snapshot("empty") is None


def test_credentials_never_appear_in_errors(settings: Settings) -> None:
    library = LibraryConfig(name="private", repo_url="http://deploy:s3cr3t-token@127.0.0.1:9/acme.git")
    with pytest.raises(DoctuneError) as info:
        sync_repository(library, settings)
    assert "s3cr3t-token" not in str(info.value) and "***@127.0.0.1" in str(info.value)
    assert redact_url("https://user:pw@host/x") == "https://***@host/x"
