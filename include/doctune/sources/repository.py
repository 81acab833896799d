"""The workspace's repository: clone or fetch a library's branch into ``workspaces/<library>/repo`` within the
time and size limits, and explain a git failure in one line with its fix."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.sources.credentials import GitCredentials, git_env, redact_url

if TYPE_CHECKING:
    import git

log = logging.getLogger(__name__)

# Hooks of a cloned repository never run: point git at an empty hooks folder for every command.
SAFE_GIT_CONFIG = ["core.hooksPath=/dev/null", "protocol.ext.allow=never"]


def _explain_git_failure(url: str, branch: str, stderr: str) -> str:
    shown = redact_url(url)
    text = stderr.lower()
    if any(s in text for s in ("could not read username", "could not read password", "authentication failed")):
        return (
            f"repository {shown} refused access: it needs credentials, or the ones given were refused. In Airflow, set "
            "git_conn_id in the library config to a Connection with login = user and password = a read token; "
            "for the CLI, configure a git credential helper"
        )
    if "remote branch" in text and "not found" in text or "couldn't find remote ref" in text:
        return f"branch {branch!r} does not exist in {shown}: set 'branch' in the library config to an existing branch"
    if any(
        s in text
        for s in (
            "does not appear to be a git repository",
            "not found",
            "could not read from remote",
            "does not exist",
            "unable to access",
            "could not resolve host",
        )
    ):
        return (
            f"repository {shown} does not exist or is unreachable: check 'repo_url' in the library config, "
            "the network and the git credentials"
        )
    return f"git failed on {shown} (branch {branch!r}): {redact_url(stderr.strip())}"


def sync_repository(
    library: LibraryConfig,
    settings: Settings,
    commit: str | None = None,
    credentials: GitCredentials | None = None,
) -> tuple[Path, str]:
    """Make the workspace copy of ``library`` match its remote branch (or ``commit`` on it); return (tree, sha)."""
    with git_env(credentials) as env:
        return _sync_repository(library, settings, commit, env)


def _sync_repository(
    library: LibraryConfig, settings: Settings, commit: str | None, env: dict[str, str]
) -> tuple[Path, str]:
    import git

    dest = settings.path("workspaces", library.name) / "repo"
    shown = redact_url(library.repo_url)
    timeout = settings.git_timeout_seconds
    try:
        if not (dest / ".git").is_dir():
            # Build the first copy in a temporary sibling: a failed or stopped clone never leaves a half-filled cache.
            # A clone is an init plus the same bounded fetch as every later sync (git clone has no time limit here).
            with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".clone-") as tmp:
                staging = Path(tmp) / "repo"
                log.info("cloning %s (branch %s)", shown, library.branch)
                repo = git.Repo.init(staging)
                with repo.config_writer() as config:
                    for item in SAFE_GIT_CONFIG:
                        key, value = item.split("=", 1)
                        section, option = key.rsplit(".", 1)
                        config.set_value(section, option, value)
                repo.create_remote("origin", library.repo_url)
                _fetch_and_check_out(repo, library, settings, commit, env)
                if dest.exists():
                    shutil.rmtree(dest)
                staging.rename(dest)
        else:
            repo = git.Repo(dest)
            repo.remotes.origin.set_url(library.repo_url)
            log.info("fetching %s (branch %s)", shown, library.branch)
            _fetch_and_check_out(repo, library, settings, commit, env)
        head = git.Repo(dest).head.commit.hexsha
    except git.GitCommandError as exc:
        if "did not complete in" in str(exc.stderr) or "timed out" in str(exc.stderr):
            raise DoctuneError(
                f"git took longer than {timeout:g} s on {shown}: raise DOCTUNE_GIT_TIMEOUT_SECONDS if the "
                "repository is that large or the network that slow"
            ) from None
        raise DoctuneError(_explain_git_failure(library.repo_url, library.branch, str(exc.stderr))) from None
    return dest, head


def _fetch_and_check_out(
    repo: git.Repo, library: LibraryConfig, settings: Settings, commit: str | None, env: dict[str, str]
) -> None:
    """Fetch the branch (within the time limit), refuse a tree over the size limits, then check it out."""
    timeout = settings.git_timeout_seconds
    with repo.git.custom_environment(**env):
        repo.git.fetch(
            "origin", f"+refs/heads/{library.branch}:refs/remotes/origin/{library.branch}", kill_after_timeout=timeout
        )
        target = commit or f"origin/{library.branch}"
        _check_tree_size(repo, target, library, settings)
        repo.git.checkout("--force", "-B", library.branch, target, kill_after_timeout=timeout)
        repo.git.clean("-ffdx", kill_after_timeout=timeout)


def _check_tree_size(repo: git.Repo, target: str, library: LibraryConfig, settings: Settings) -> None:
    listing = repo.git.ls_tree("-r", "-l", "-z", target, kill_after_timeout=settings.git_timeout_seconds)
    files, total = 0, 0
    for entry in listing.split("\0"):
        if entry:
            files += 1
            size = entry.split("\t", 1)[0].split()[3]
            total += int(size) if size.isdigit() else 0
    shown = redact_url(library.repo_url)
    if files > settings.max_repo_files:
        raise DoctuneError(
            f"{shown} has {files} files at {target}, more than DOCTUNE_MAX_REPO_FILES={settings.max_repo_files}: "
            "raise the limit if this repository really is that large"
        )
    if total > settings.max_repo_mb * 2**20:
        raise DoctuneError(
            f"{shown} holds {total / 2**20:.0f} MiB at {target}, more than DOCTUNE_MAX_REPO_MB={settings.max_repo_mb}: "
            "raise the limit if this repository really is that large"
        )
