"""benchmarks/gpu_check.py, as a session lent a GPU uses it: `prepare` here (real wheels from the package registry,
the demo dataset), then the check on what it prepared, as a dry run on CPU. Only the install step and CUDA itself are
left to the GPU machine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _gpu_check(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=1500, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def test_prepared_wheels_and_dataset_fit_one_call_and_the_dry_run_passes_on_them(tmp_path: Path) -> None:
    state = tmp_path / "state"
    prepared = _gpu_check("prepare", "--state", str(state))
    summary = json.loads((state / "prepared.json").read_text())
    assert "MiB of its 64 MiB" in prepared.stdout and summary["call_bytes"] < 64 * 2**20
    names = {re.sub(r"[-_.]+", "-", w.split("-", 1)[0]).lower() for w in summary["wheels"]}
    assert {"trl", "bitsandbytes", "unsloth", "unsloth-zoo", "pydantic", "sqlalchemy"} <= names
    # Every wheel is for the GPU machine's Python 3.12 (or pure Python), never this machine's 3.11.
    assert all(re.search(r"-(py3|py312|cp312|cp3\d+-abi3)-", w) for w in summary["wheels"]), summary["wheels"]
    (bnb,) = state.glob("wheels/bitsandbytes-*.whl")
    with zipfile.ZipFile(bnb) as wheel:
        libraries = sorted(Path(n).name for n in wheel.namelist() if n.endswith(".so"))
        record = wheel.read(next(n for n in wheel.namelist() if n.endswith("RECORD"))).decode()
    assert libraries == ["libbitsandbytes_cpu.so", "libbitsandbytes_cuda130.so"]
    assert "libbitsandbytes_cuda128.so" not in record and "libbitsandbytes_cuda130.so" in record
    (unsloth,) = state.glob("wheels/unsloth-2*.whl")
    with zipfile.ZipFile(unsloth) as wheel:
        assert not [n for n in wheel.namelist() if n.startswith("studio/")]
        assert "unsloth/__init__.py" in wheel.namelist()
    registration = json.loads((state / "dataset.json").read_text())
    assert registration["n_train"] > 100 and (state / "dataset" / "train.jsonl").is_file()

    out = tmp_path / "gpu.json"
    ran = _gpu_check("run", "--dry-run", "--state", str(state), "--out", str(out))
    figures = json.loads(out.read_text())
    assert figures["dry_run"] is True and figures["machine"]["gpu"]["name"] is None
    for name in ("peft", "peft 4-bit"):
        part = figures["correctness"][name]
        assert part["verdict"] == "pass", part
        assert part["stopped"] == "training stopped on request at step 1 of 6"
        assert part["resumed"].endswith("checkpoint-1") and part["servable_problems"] == []
    assert figures["correctness"]["unsloth"]["status"] == "skipped" and figures["correctness"]["unsloth"]["why"]
    speed = figures["speed"]["variants"]
    assert speed["peft bf16"]["status"] == "ok" and speed["peft bf16"]["tokens_per_s"] > 0
    # What did not run says why; no figure is a silent zero.
    for name in ("unsloth bf16", "peft 4-bit", "unsloth 4-bit"):
        assert speed[name]["status"] == "skipped" and "tokens_per_s" not in speed[name] and speed[name]["why"]
    assert all(isinstance(v, str) and v.startswith("not measured: ") for v in figures["speed"]["ratios"].values())
    assert "correctness, peft 4-bit: pass" in ran.stdout and f"wrote {out}" in ran.stdout


def test_a_gpu_check_without_a_gpu_or_dry_run_says_so_and_measures_nothing(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    ran = _gpu_check("run", "--state", str(tmp_path / "nothing"), "--out", str(out))
    figures = json.loads(out.read_text())
    assert figures["error"] == "no CUDA GPU visible: run on the GPU machine, or pass --dry-run on CPU"
    assert "correctness" not in figures and "speed" not in figures
    assert "run `make gpu-wheels` first" in figures["install"]["skipped"]
    assert "error: no CUDA GPU visible" in ran.stdout
