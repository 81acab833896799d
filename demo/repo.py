"""The demo library as a git repository: made from ``include/demo_library`` once, then changed by real commits (a
documentation tip, ledgerkite 0.4.0's API change) so that the next run has something new to learn."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from doctune.config import Settings
from doctune.errors import DoctuneError

# The doctune checkout the demo runs from (the demo is not part of the wheel): its demo library and its dags/.
CHECKOUT = Path(__file__).resolve().parents[1]
DEMO_SOURCE = CHECKOUT / "include" / "demo_library"
DEMO_NAME = "ledgerkite"
# Fixed identity and dates: the demo repository's first commit is the same on every machine.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "doctune demo",
    "GIT_AUTHOR_EMAIL": "demo@doctune.invalid",
    "GIT_COMMITTER_NAME": "doctune demo",
    "GIT_COMMITTER_EMAIL": "demo@doctune.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def run_git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def prepare_demo_repo(settings: Settings, source: Path = DEMO_SOURCE) -> Path:
    """A real git repository of the demo library (created once); the pipeline pulls it by URL."""
    repo = settings.home / "demo" / DEMO_NAME
    if (repo / ".git").is_dir():
        return repo
    staging = repo.with_name(f".{DEMO_NAME}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc"))
    run_git(staging, "init", "-q", "-b", "main")
    run_git(staging, "add", "-A")
    run_git(staging, "commit", "-q", "-m", "ledgerkite 0.3.0")
    staging.rename(repo)
    return repo


def edit_demo_docs(repo: Path, n: int) -> str:
    """Commit a new documentation section (a real doc change), returning the new commit."""
    page = repo / "docs" / "envelopes.md"
    page.write_text(
        page.read_text()
        + (
            f"\n## Envelope tips ({n})\n\nKeep one envelope called `buffer` with `rollover=True` and refill it "
            f"with `ledgerkite.refill(pot)` at the start of every month; tip number {n}.\n"
        )
    )
    run_git(repo, "add", "docs/envelopes.md")
    run_git(repo, "commit", "-q", "-m", f"docs: envelope tip {n}")
    return run_git(repo, "rev-parse", "HEAD")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise DoctuneError(f"{path} does not contain {old!r}: the demo library was edited by hand; delete it to reset")
    path.write_text(text.replace(old, new, 1))


def commit_api_change(repo: Path) -> str:
    """Commit ledgerkite 0.4.0, a real API change: a new public function ``average_outlay`` with its docstring, doc
    section and test, ``leaderboard``'s default ``top`` raised from 3 to 5, and a changelog entry. Returns the
    commit. The next corpus version's evaluation probes exactly this change (``evaluate.suite.apidiff``)."""
    reports = repo / "ledgerkite" / "reports.py"
    _edit(reports, '    "leaderboard",\n', '    "average_outlay",\n    "leaderboard",\n')
    _edit(
        reports,
        "def leaderboard(outlays: Iterable[Outlay], top: int = 3)",
        "def leaderboard(outlays: Iterable[Outlay], top: int = 5)",
    )
    reports.write_text(
        reports.read_text()
        + "\n\ndef average_outlay(outlays: Iterable[Outlay], envelope: str | None = None) -> float:\n"
        '    """Mean amount of the outlays, in cents.\n\n'
        "    Args:\n"
        "        outlays: Outlays to average.\n"
        "        envelope: Only count outlays against this envelope; all of them when None.\n\n"
        "    Returns:\n"
        "        The mean amount in cents, 0.0 when no outlay counts.\n"
        '    """\n'
        "    amounts = [o.amount for o in outlays if envelope is None or o.envelope == envelope]\n"
        "    return sum(amounts) / len(amounts) if amounts else 0.0\n"
    )
    _edit(repo / "ledgerkite" / "__init__.py", "    Digest, burn_rate,", "    Digest, average_outlay, burn_rate,")
    docs = repo / "docs" / "reports.md"
    _edit(docs, "### `leaderboard(outlays, top=3)`", "### `leaderboard(outlays, top=5)`")
    docs.write_text(
        docs.read_text()
        + "\n### `average_outlay(outlays, envelope=None)`\n\nThe mean amount of a set of outlays in cents, optionally "
        "only those against one envelope.\n\n"
        '```python\nassert lk.average_outlay(outlays, envelope="food") == 3500.0\n```\n'
    )
    tests = repo / "tests" / "test_reports.py"
    tests.write_text(
        tests.read_text() + "\n\ndef test_average_outlay_of_one_envelope():\n"
        '    assert lk.average_outlay(OUTLAYS, envelope="food") == 3500.0\n'
        "    assert lk.average_outlay([]) == 0.0\n"
    )
    _edit(
        repo / "CHANGELOG.md",
        "## [0.3.0]",
        "## [0.4.0] - 2026-02-01\n\n### Added\n- `average_outlay(outlays, envelope=None)` in `ledgerkite.reports`.\n\n"
        "### Changed\n- `leaderboard()` returns the top 5 envelopes by default (was 3).\n\n## [0.3.0]",
    )
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "ledgerkite 0.4.0: average_outlay(), leaderboard() top 5 by default")
    return run_git(repo, "rev-parse", "HEAD")


def commit_next_change(repo: Path) -> str:
    """What ``python -m demo --edit-docs`` commits: ledgerkite 0.4.0's API change the first time, then a documentation
    tip each time (prose only: its version has no diff probes). Says what it committed."""
    if "def average_outlay" not in (repo / "ledgerkite" / "reports.py").read_text():
        commit = commit_api_change(repo)
        return (
            f"committed an API change to the demo library (0.4.0: new average_outlay, leaderboard top=5): {commit[:12]}"
        )
    n = len(run_git(repo, "log", "--oneline").splitlines())
    return f"committed a doc change to the demo library: {edit_demo_docs(repo, n)[:12]}"
