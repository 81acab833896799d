"""The CLI as a user runs it: bad input gets one line naming the problem and the fix, and a non-zero exit."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def test_the_demo_installs_into_a_deployment_once_and_keeps_a_users_config(tmp_path: Path) -> None:
    # What docker-compose.cpu.yaml's demo-init service runs: `python -m demo.install` from a checkout.
    home, libraries = tmp_path / "volume", tmp_path / "libraries"
    env = {**os.environ, "DOCTUNE_HOME": str(home), "DOCTUNE_LIBRARIES_DIR": str(libraries), "COLUMNS": "250"}

    def install() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "demo.install"], capture_output=True, text=True, env=env, timeout=120, check=True
        )
        return done.stdout

    assert "wrote" in install()
    installed = LibraryConfig.model_validate(yaml.safe_load((libraries / "ledgerkite.yaml").read_text()))
    repo = home / "demo" / "ledgerkite"
    assert installed.repo_url == repo.as_uri() and installed.base_model == "tiny-llama"
    assert installed.train.max_steps == 60  # the tiny-llama preset
    assert (repo / "ledgerkite" / "reports.py").is_file()
    assert subprocess.run(["git", "-C", str(repo), "log", "--oneline"], capture_output=True, text=True).stdout

    # The user's edit survives a second start, and a volume emptied since gets the repository back.
    edited = (libraries / "ledgerkite.yaml").read_text().replace("max_steps: 60", "max_steps: 90")
    assert "max_steps: 90" in edited
    (libraries / "ledgerkite.yaml").write_text(edited)
    shutil.rmtree(home)
    assert "kept" in install()
    assert (libraries / "ledgerkite.yaml").read_text() == edited
    assert (repo / ".git").is_dir()
