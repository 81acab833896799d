"""The synced commits' trees: one checkout per commit (``workspaces/<library>/trees/<commit>``, a detached git
worktree of the workspace's repository), made by the sync and only read after it, by the corpus build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.sources.credentials import redact_url

if TYPE_CHECKING:
    import git

# A build reads the tree its own sync left: keep a few, so that syncs of other runs in between do not delete it.
KEPT_TREES = 3


def commit_tree(repo: Path, commit: str, library: LibraryConfig, settings: Settings) -> Path:
    """The checked-out tree of ``commit``, added from ``repo`` if missing; the trees of older syncs beyond the newest
    KEPT_TREES are deleted. The caller holds the workspace lease, as a build does while it reads a tree, so a tree
    in use is never deleted."""
    import git

    trees = settings.path("workspaces", library.name, "trees")
    tree = trees / commit
    handle = git.Repo(repo)
    timeout = settings.git_timeout_seconds
    try:
        if tree.resolve() not in _worktrees(handle, timeout):
            # Half made, or left by an earlier clone of the cache (whose repository is gone): make it again.
            shutil.rmtree(tree, ignore_errors=True)
            handle.git.worktree("prune", kill_after_timeout=timeout)
            handle.git.worktree("add", "--detach", str(tree), commit, kill_after_timeout=timeout)
        os.utime(tree)  # the tree of the latest sync is the newest, whenever its commit was first checked out
        older = sorted((p for p in trees.iterdir() if p != tree), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in older[KEPT_TREES - 1 :]:
            shutil.rmtree(old, ignore_errors=True)
        handle.git.worktree("prune", kill_after_timeout=timeout)  # forget the trees just deleted
    except git.GitCommandError as exc:
        raise DoctuneError(
            f"could not check out {commit[:12]} of {redact_url(library.repo_url)} into {tree}: "
            f"{redact_url(str(exc.stderr).strip())}"
        ) from None
    return tree


def _worktrees(handle: git.Repo, timeout: float) -> set[Path]:
    """The trees of the repository's worktree list, resolved (git prints them resolved)."""
    listing = handle.git.worktree("list", "--porcelain", kill_after_timeout=timeout)
    return {
        Path(line.removeprefix("worktree ")).resolve() for line in listing.splitlines() if line.startswith("worktree ")
    }
