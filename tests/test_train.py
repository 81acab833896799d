import json
from pathlib import Path

import pytest

from doctune import corpus
from doctune.config import LibraryConfig, Settings, TrainParams
from doctune.errors import DoctuneError
from doctune.registry import Registry
from doctune.train import adapter_digest, train

pytestmark = pytest.mark.slow


def test_train_registers_an_adapter_vllm_can_load(settings: Settings, library: LibraryConfig) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dataset = corpus.build(library, settings)
    result = train(library, settings)
    registry = Registry.open(settings)
    adapter = registry.adapter(library.name, result.adapter_version)
    assert (result.adapter_version, result.steps, adapter.dataset_version) == (1, 20, dataset.version)
    folder = Path(result.adapter_path)
    config = json.loads((folder / "adapter_config.json").read_text())
    # vLLM's LoRA loader refuses modules_to_save and embedding/lm_head targets.
    assert config["modules_to_save"] is None and sorted(config["target_modules"]) == sorted(
        library.train.target_modules
    )
    assert config["r"] == library.train.lora_rank
    assert (folder / "adapter_model.safetensors").stat().st_size > 0
    assert "dataset: v1" in (folder / "README.md").read_text()
    assert adapter.sha256 == adapter_digest(folder) and adapter.status == "candidate"
    run = registry.run(result.run_id)
    assert run.status == "succeeded" and run.train_loss is not None and run.train_loss < 6.5
    events = EventAccumulator(str(next((settings.tensorboard_path / library.name).iterdir())))
    events.Reload()
    assert len(events.Scalars("train/loss")) >= 3


def test_retry_of_a_finished_run_returns_its_adapter(settings: Settings, library: LibraryConfig) -> None:
    corpus.build(library, settings)
    first = train(library, settings)
    run_dir = Path(Registry.open(settings).run(first.run_id).output_dir)
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-10", "checkpoint-20"]
    # A retried task (same dataset, same parameters) must not create a second version.
    assert train(library, settings) == first
    assert [a.version for a in Registry.open(settings).adapters(library.name)] == [1]
    bigger = train(library, settings, params=library.train.model_copy(update={"max_steps": 25}))
    assert bigger.adapter_version == 2 and bigger.steps == 25


def test_rank_above_the_serving_limit_fails_before_training(settings: Settings, library: LibraryConfig) -> None:
    corpus.build(library, settings)
    with pytest.raises(DoctuneError, match="lora_rank=64 is above the serving limit --max-lora-rank 16"):
        train(library, settings, params=TrainParams(lora_rank=64, lora_alpha=64))
    assert Registry.open(settings).adapters(library.name) == []


def test_no_dataset_yet(settings: Settings, library: LibraryConfig) -> None:
    with pytest.raises(DoctuneError, match="has no dataset version yet: run `doctune corpus build ledgerkite`"):
        train(library, settings)


def test_missing_base_model_registers_nothing(settings: Settings, library: LibraryConfig, tmp_path: Path) -> None:
    corpus.build(library, settings)
    broken = library.model_copy(update={"base_model": str(tmp_path / "no-such-model")})
    with pytest.raises(DoctuneError, match="is not a model folder"):
        train(broken, settings)
    assert Registry.open(settings).adapters(library.name) == []


def test_qlora_4bit_path_trains_on_cpu(settings: Settings, library: LibraryConfig) -> None:
    corpus.build(library, settings)
    params = library.train.model_copy(update={"max_steps": 6, "save_steps": 6, "load_in_4bit": True, "backend": "peft"})
    result = train(library, settings, params=params)
    config = json.loads((Path(result.adapter_path) / "adapter_config.json").read_text())
    assert result.steps == 6 and config["modules_to_save"] is None
    assert Registry.open(settings).run(result.run_id).params["load_in_4bit"] is True


def test_stop_request_checkpoints_and_a_rerun_resumes(settings: Settings, library: LibraryConfig) -> None:
    from doctune.train import STOP_FILE, TrainingStopped, run_key

    corpus.build(library, settings)
    run_dir = settings.path("runs", library.name, run_key(1, library.base_model, library.train))
    (run_dir / STOP_FILE).touch()  # as `doctune train stop` does for a running training
    with pytest.raises(TrainingStopped, match="stopped on request at step 1 of 20"):
        train(library, settings)
    registry = Registry.open(settings)
    assert [r.status for r in registry.runs(library.name)] == ["stopped"]
    assert registry.adapters(library.name) == []  # no partial adapter registered
    assert [p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")] == ["checkpoint-1"]

    result = train(library, settings)  # same dataset and parameters: continues from step 1
    assert result.steps == 20 and result.adapter_version == 1
    state = json.loads((run_dir / "checkpoints" / "checkpoint-20" / "trainer_state.json").read_text())
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == [5, 10, 15, 20]  # one continuous history across the stop, no restart from step 0


def test_corrupt_latest_checkpoint_is_set_aside(settings: Settings, library: LibraryConfig) -> None:
    from doctune.train import latest_good_checkpoint, run_key

    corpus.build(library, settings)
    first = train(library, settings)
    checkpoints = Path(Registry.open(settings).run(first.run_id).output_dir) / "checkpoints"
    (checkpoints / "checkpoint-20" / "adapter_model.safetensors").write_bytes(b"half-written")  # a full disk
    assert latest_good_checkpoint(checkpoints) == checkpoints / "checkpoint-10"
    assert (checkpoints / "checkpoint-20.corrupt").is_dir()
    assert run_key(1, library.base_model, library.train) == checkpoints.parent.name


def test_tensorboard_has_eval_loss_tokens_per_second_and_hparams(settings: Settings, library: LibraryConfig) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    corpus.build(library, settings)
    train(library, settings)
    folder = next((settings.tensorboard_path / library.name).iterdir())
    tags: set[str] = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "train/grad_norm", "eval/loss", "train/tokens_per_second"} <= tags


def test_replay_mixes_previous_version_and_general_set() -> None:
    from doctune.train import replay_rows

    def row(q: str) -> dict:
        return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "a"}], "meta": {}}

    current = [row(f"new {i}") for i in range(40)]
    previous = [row(f"old {i}") for i in range(40)] + current[:5]
    mixed = replay_rows(current, previous, 0.25)
    questions = [r["messages"][0]["content"] for r in mixed]
    assert len(mixed) == 10 and replay_rows(current, previous, 0.25) == mixed  # deterministic
    assert sum(q.startswith("old ") for q in questions) == 5 and not any(q.startswith("new ") for q in questions)


def test_kill_9_loses_at_most_the_steps_since_the_last_checkpoint(
    settings: Settings, library: LibraryConfig, caplog: pytest.LogCaptureFixture
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    corpus.build(library, settings)
    params = library.train.model_copy(update={"max_steps": 40})  # what `--max-steps 40` makes of the config
    run_dir = settings.home / "runs" / library.name
    doctune = str(Path(sys.executable).parent / "doctune")
    trainer = subprocess.Popen(
        [doctune, "train", "run", library.name, "--max-steps", "40"],
        env={**os.environ, "DOCTUNE_HOME": str(settings.home)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    # Wait for the condition itself (a complete second checkpoint), not for a guessed duration.
    while not list(run_dir.glob("*/checkpoints/checkpoint-10/trainer_state.json")):
        assert trainer.poll() is None and time.monotonic() < deadline, trainer.stdout.read() if trainer.stdout else ""
        time.sleep(0.2)
    os.killpg(trainer.pid, signal.SIGKILL)
    trainer.wait()
    registry = Registry.open(settings)
    assert [r.status for r in registry.runs(library.name)] == ["running"]  # killed: nobody could record it

    with caplog.at_level("INFO", logger="doctune.train"):
        result = train(library, settings, params=params)
    resumed = [r.message for r in caplog.records if r.message.startswith("resuming from ")]
    assert resumed and int(resumed[0].rsplit("-", 1)[1]) >= 10, [r.message for r in caplog.records]  # not step 0
    assert result.steps == 40
    assert [r.status for r in registry.runs(library.name)] == ["interrupted", "succeeded"]
