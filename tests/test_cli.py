"""The CLI as a user runs it: bad input gets one line naming the problem and the fix, and a non-zero exit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from demo import edit_demo_docs
from doctune.config import LibraryConfig, Settings, write_library
from doctune.registry import Registry

DOCTUNE = str(Path(sys.executable).parent / "doctune")


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCTUNE_HOME": str(settings.home), "COLUMNS": "250"}
    return subprocess.run([DOCTUNE, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    "library,args,message",
    [
        (None, ["sync", "ghost"], "unknown library 'ghost'"),
        (
            LibraryConfig(name="gone", repo_url="file:///nonexistent/repo.git"),
            ["sync", "gone"],
            "repository file:///nonexistent/repo.git does not exist or is unreachable",
        ),
        (
            LibraryConfig(name="nobranch", repo_url="DEMO", branch="release"),
            ["corpus", "build", "nobranch"],
            "branch 'release' does not exist",
        ),
        (
            LibraryConfig(name="early", repo_url="DEMO", package="ledgerkite"),
            ["train", "run", "early"],
            "has no dataset version yet: run `doctune corpus build early`",
        ),
    ],
    ids=["unknown-library", "missing-repo", "missing-branch", "no-dataset"],
)
def test_bad_input_is_one_clear_line(
    settings: Settings, demo_repo: Path, library: LibraryConfig | None, args: list[str], message: str
) -> None:
    if library is not None:
        if library.repo_url == "DEMO":
            library = library.model_copy(update={"repo_url": demo_repo.as_uri()})
        write_library(settings, library)
    result = _run(settings, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] != []
    registry = Registry.open(settings)
    assert registry.latest_snapshot(args[-1]) is None and registry.latest_dataset(args[-1]) is None


def test_corpus_build_and_status(settings: Settings, library: LibraryConfig) -> None:
    built = _run(settings, "corpus", "build", library.name)
    assert built.returncode == 0, built.stderr
    assert "dataset v1 (built)" in built.stdout
    again = _run(settings, "corpus", "build", library.name)
    assert "dataset v1 (unchanged)" in again.stdout
    status = _run(settings, "status", library.name)
    assert "production base model; latest dataset v1" in status.stdout


def test_corpus_show_and_diff(settings: Settings, library: LibraryConfig, demo_repo: Path) -> None:
    assert _run(settings, "corpus", "build", library.name).returncode == 0
    edit_demo_docs(demo_repo, 1)
    assert _run(settings, "corpus", "build", library.name).returncode == 0
    show = _run(settings, "corpus", "show", library.name)
    assert show.returncode == 0 and "Dataset v2 of ledgerkite: quality report" in show.stdout
    diff = _run(settings, "corpus", "diff", library.name, "1", "2")
    assert diff.returncode == 0, diff.stderr
    assert "0 removed, 0 changed" in diff.stdout and "Envelope tips (1)" in diff.stdout


@pytest.mark.parametrize(
    "params,message",
    [
        ('{"lora_rank": 999}', "bad training parameters: lora_rank: Input should be less than or equal to 256"),
        ('{"lora_rank": 4, "lora_alpha": 64}', "lora_alpha=64 is more than 4x lora_rank=4"),
        ('{"max_steps": ', "--params is not valid JSON"),
    ],
    ids=["out-of-bounds", "inconsistent", "not-json"],
)
def test_bad_training_parameters_are_one_line(
    settings: Settings, library: LibraryConfig, params: str, message: str
) -> None:
    result = _run(settings, "train", "run", library.name, "--params", params)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert Registry.open(settings).runs(library.name) == []


@pytest.mark.slow
def test_train_run_shows_progress_with_step_loss_and_eta(settings: Settings, library: LibraryConfig) -> None:
    assert _run(settings, "corpus", "build", library.name).returncode == 0
    result = _run(settings, "train", "run", library.name, "--max-steps", "6")
    assert result.returncode == 0, result.stderr
    assert "adapter v1: 6 steps" in result.stdout
    bar = [line for line in result.stderr.splitlines() if "training ledgerkite" in line]
    assert bar and "6/6 steps, loss" in bar[-1] and "ETA" in bar[-1]
