"""doctune's unsloth backend, run for real: `doctune train run` in unsloth's own environment (.venv-unsloth, built by
`make test`), through choose_backend -> activate -> _load's FastLanguageModel -> fit_adapter with unsloth's model and
tokenizer, in unsloth's CPU mode (allowed by DOCTUNE_UNSLOTH_ALLOW_CPU=1). On a GPU worker the same branch differs
only in 4-bit loading and unsloth's gradient checkpointing."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import FIGURES, REPO, skip_unless_ci, tiny_library

from doctune import corpus, sources
from doctune.config import Settings
from doctune.registry import Registry
from doctune.train import STOP_FILE, run_key

pytestmark = pytest.mark.slow

UNSLOTH_VENV = REPO / ".venv-unsloth"


def _doctune(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DOCTUNE_HOME": str(settings.home),
        "DOCTUNE_UNSLOTH_ALLOW_CPU": "1",
        "COLUMNS": "300",  # one log record per line, for the assertions below
    }
    return subprocess.run(
        [str(UNSLOTH_VENV / "bin" / "doctune"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_unsloth_branch_trains_resumes_and_saves_a_servable_adapter(settings: Settings, demo_repo: Path) -> None:
    if not (UNSLOTH_VENV / ".installed").is_file():
        skip_unless_ci("unsloth's environment is not built: run `make .venv-unsloth/.installed` (make test does)")
    from safetensors import safe_open

    library = tiny_library(settings, demo_repo, backend="unsloth", max_steps=6, save_steps=3)
    corpus.build(library, settings, sources.sync(library, settings))
    run_dir = settings.path("runs", library.name, run_key(1, library.base_model, library.train))
    (run_dir / STOP_FILE).touch()  # stop after the first step: the rerun must resume, not restart at step 0

    stopped = _doctune(settings, "train", "run", library.name)
    assert stopped.returncode == 75, stopped.stderr[-4000:]
    # The chosen branch, and unsloth's own loader (its banner) rather than a silent fall back to plain peft.
    assert "training backend: unsloth on cpu" in stopped.stderr
    assert "Unsloth (CPU): LlamaForCausalLM" in stopped.stdout + stopped.stderr
    assert "training stopped on request at step 1 of 6" in stopped.stderr

    resumed = _doctune(settings, "train", "run", library.name)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f"resuming from {run_dir / 'checkpoints' / 'checkpoint-1'}" in resumed.stderr
    assert "steps run in this try: 5 (step 1 to 6 of 6)" in resumed.stderr  # unsloth's loop did not restart at 0
    rate = re.search(r"'train_steps_per_second': '([0-9.]+)'", resumed.stdout + resumed.stderr)
    FIGURES["unsloth CPU mode, tiny Llama"] = f"{rate.group(1) if rate else '?'} steps/s"

    registry = Registry.open(settings)
    (run,) = [r for r in registry.runs(library.name) if r.status == "succeeded"]
    assert run.steps == 6 and run.params["backend"] == "unsloth"
    state = json.loads((run_dir / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [5]  # one history across the stop
    (adapter,) = registry.adapters(library.name)
    folder = Path(adapter.path)
    config = json.loads((folder / "adapter_config.json").read_text())
    # vLLM's LoRA loader refuses modules_to_save and embedding/lm_head targets; unsloth must not add them.
    assert config["modules_to_save"] is None and config["r"] == library.train.lora_rank
    assert sorted(config["target_modules"]) == sorted(library.train.target_modules)
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
        assert keys and all(
            re.fullmatch(r"base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight", k)
            for k in keys
        ), keys
        # LoRA's B starts at zero: a trained adapter has moved it.
        assert any(weights.get_tensor(k).abs().sum() > 0 for k in keys if "lora_B" in k)
