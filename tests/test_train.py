import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from polling import wait_for

from doctune import corpus, sources
from doctune.config import LibraryConfig, Settings, TrainParams
from doctune.errors import DoctuneError
from doctune.registry import Registry
from doctune.train import adapter_digest, servable_problems, train


@pytest.mark.slow
def test_train_registers_an_adapter_vllm_can_load(settings: Settings, library: LibraryConfig) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dataset = corpus.build(library, settings, sources.sync(library, settings))
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


@pytest.mark.slow
def test_retry_of_a_finished_run_returns_its_adapter(settings: Settings, library: LibraryConfig) -> None:
    corpus.build(library, settings, sources.sync(library, settings))
    first = train(library, settings)
    run_dir = Path(Registry.open(settings).run(first.run_id).output_dir)
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-10", "checkpoint-20"]
    # A retried task (same dataset, same parameters) must not create a second version.
    again = train(library, settings)
    assert again.reused and not first.reused
    assert dataclasses.replace(again, reused=False) == first
    assert [a.version for a in Registry.open(settings).adapters(library.name)] == [1]
    bigger = train(library, settings, params=library.train.model_copy(update={"max_steps": 25}))
    assert bigger.adapter_version == 2 and bigger.steps == 25


@pytest.mark.slow
def test_rank_above_the_serving_limit_fails_before_training(settings: Settings, library: LibraryConfig) -> None:
    corpus.build(library, settings, sources.sync(library, settings))
    with pytest.raises(DoctuneError, match="lora_rank=64 is above the serving limit --max-lora-rank 16"):
        train(library, settings, params=TrainParams(lora_rank=64, lora_alpha=64))
    assert Registry.open(settings).adapters(library.name) == []


def test_no_dataset_yet(settings: Settings, library: LibraryConfig) -> None:
    with pytest.raises(DoctuneError, match="has no dataset version yet: run `doctune corpus build ledgerkite`"):
        train(library, settings)
    with pytest.raises(DoctuneError, match="dataset version v7 of 'ledgerkite' is not registered"):
        train(library, settings, dataset_version=7)


def test_empty_dataset_version_registers_nothing(settings: Settings, library: LibraryConfig) -> None:
    # A corpus build whose every pair was rejected still registers its version (its report says why).
    folder = settings.path("datasets", library.name, "v1")
    for split in ("train", "eval", "rejected"):
        (folder / f"{split}.jsonl").write_text("")
    registry = Registry.open(settings)
    registry.add_dataset(
        library=library.name,
        version=1,
        commit="0" * 40,
        surface_hash="s",
        content_hash="c",
        path=str(folder),
        n_train=0,
        n_eval=0,
    )
    with pytest.raises(DoctuneError, match=r"dataset v1 of ledgerkite has no training pairs: its report .*report\.md"):
        train(library, settings)
    assert registry.adapters(library.name) == [] and registry.runs(library.name) == []


@pytest.mark.slow
def test_missing_base_model_registers_nothing(settings: Settings, library: LibraryConfig, tmp_path: Path) -> None:
    corpus.build(library, settings, sources.sync(library, settings))
    broken = library.model_copy(update={"base_model": str(tmp_path / "no-such-model")})
    with pytest.raises(DoctuneError, match="is not a model folder"):
        train(broken, settings)
    assert Registry.open(settings).adapters(library.name) == []


def test_an_adapter_vllm_would_refuse_or_serve_as_a_no_op_is_named(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    params = TrainParams(target_modules=["q_proj", "v_proj"], lora_rank=8)
    prefix = "base_model.model.model.layers.0.self_attn"

    def adapter(config: dict[str, object], tensors: dict[str, torch.Tensor]) -> Path:
        folder = tmp_path / f"adapter{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps(config))
        save_file(tensors, str(folder / "adapter_model.safetensors"))
        return folder

    trained = {f"{prefix}.q_proj.lora_A.weight": torch.ones(8, 4), f"{prefix}.q_proj.lora_B.weight": torch.ones(4, 8)}
    good = {"r": 8, "target_modules": ["v_proj", "q_proj"], "modules_to_save": None}
    assert servable_problems(adapter(good, trained), params) == []

    untrained = trained | {f"{prefix}.q_proj.lora_B.weight": torch.zeros(4, 8)}
    assert servable_problems(adapter(good, untrained), params) == [
        "every lora_B weight is zero: training did not move the adapter"
    ]
    embedding = trained | {"base_model.model.model.embed_tokens.lora_embedding_A": torch.ones(8, 4)}
    bad = {"r": 16, "target_modules": ["q_proj", "v_proj", "embed_tokens"], "modules_to_save": ["lm_head"]}
    problems = servable_problems(adapter(bad, embedding), params)
    assert problems == [
        "modules_to_save ['lm_head'] (vLLM loads LoRA weights only)",
        "target_modules ['q_proj', 'v_proj', 'embed_tokens'] instead of ['q_proj', 'v_proj']",
        "rank 16 instead of 8",
        "base_model.model.model.embed_tokens.lora_embedding_A is not a LoRA A/B weight",
    ]


@pytest.mark.slow
def test_qlora_4bit_path_trains_on_cpu(settings: Settings, library: LibraryConfig) -> None:
    corpus.build(library, settings, sources.sync(library, settings))
    params = library.train.model_copy(update={"max_steps": 6, "save_steps": 6, "load_in_4bit": True, "backend": "peft"})
    result = train(library, settings, params=params)
    config = json.loads((Path(result.adapter_path) / "adapter_config.json").read_text())
    assert result.steps == 6 and config["modules_to_save"] is None
    assert Registry.open(settings).run(result.run_id).params["load_in_4bit"] is True


@pytest.mark.slow
def test_packing_packs_and_epochs_count_packed_rows(
    settings: Settings, library: LibraryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trl

    trainers: list[trl.SFTTrainer] = []

    class Seen(trl.SFTTrainer):  # the trainer doctune builds, to look at the rows it really trains on
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            trainers.append(self)

    monkeypatch.setattr(trl, "SFTTrainer", Seen)
    dataset = corpus.build(library, settings, sources.sync(library, settings))
    params = library.train.model_copy(update={"packing": True, "num_epochs": 0.1, "save_steps": 100})
    result = train(library, settings, params=params)

    trainer = trainers[0]
    rows = trainer.train_dataset
    lengths = [len(ids) for ids in rows["input_ids"]]
    assert len(rows) < dataset.n_train and max(lengths) <= params.max_seq_length
    assert any(len(packed) > 1 for packed in rows["seq_lengths"])  # several pairs share one row
    # Each pair keeps its own positions (no attention across pairs) and the loss stays on the answers only.
    batch = trainer.data_collator([rows[i] for i in range(len(rows) - 4, len(rows))])
    assert len(batch["cu_seq_lens_q"]) - 1 > 4 and (batch["position_ids"] == 0).sum() > 4
    assert 0 < (batch["labels"] == -100).float().mean() < 1
    # A tenth of an epoch of packed rows, not of the unpacked pairs (about twice the steps here).
    assert result.steps == math.ceil(0.1 * math.ceil(len(rows) / params.batch_size))
    assert result.steps < math.ceil(0.1 * math.ceil(dataset.n_train / params.batch_size))
    assert trainer.state.epoch == pytest.approx(0.1, abs=0.01)
    adapter = Registry.open(settings).adapter(library.name, result.adapter_version)
    assert adapter.status == "candidate" and Path(adapter.path, "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_stop_request_checkpoints_and_a_rerun_resumes(
    settings: Settings, library: LibraryConfig, caplog: pytest.LogCaptureFixture
) -> None:
    from doctune.train import STOP_FILE, TrainingStopped, run_key

    corpus.build(library, settings, sources.sync(library, settings))
    run_dir = settings.path("runs", library.name, run_key(1, library.base_model, library.train))
    (run_dir / STOP_FILE).touch()  # as `doctune train stop` does for a running training
    with pytest.raises(TrainingStopped, match="stopped on request at step 1 of 20"):
        train(library, settings)
    registry = Registry.open(settings)
    assert [r.status for r in registry.runs(library.name)] == ["stopped"]
    assert registry.adapters(library.name) == []  # no partial adapter registered
    assert [p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")] == ["checkpoint-1"]

    with caplog.at_level("INFO", logger="doctune.train"):
        result = train(library, settings)  # same dataset and parameters: continues from step 1
    assert result.steps == 20 and result.adapter_version == 1
    assert "steps run in this try: 19 (step 1 to 20 of 20)" in caplog.messages
    state = json.loads((run_dir / "checkpoints" / "checkpoint-20" / "trainer_state.json").read_text())
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == [5, 10, 15, 20]  # one continuous history across the stop, no restart from step 0


@pytest.mark.slow
def test_corrupt_latest_checkpoint_is_set_aside(settings: Settings, library: LibraryConfig) -> None:
    from doctune.train import latest_good_checkpoint, run_key

    corpus.build(library, settings, sources.sync(library, settings))
    first = train(library, settings)
    checkpoints = Path(Registry.open(settings).run(first.run_id).output_dir) / "checkpoints"
    (checkpoints / "checkpoint-20" / "adapter_model.safetensors").write_bytes(b"half-written")  # a full disk
    assert latest_good_checkpoint(checkpoints) == checkpoints / "checkpoint-10"
    assert (checkpoints / "checkpoint-20.corrupt").is_dir()
    assert run_key(1, library.base_model, library.train) == checkpoints.parent.name


def _fill_disk_at(checkpoint: str, shape: str, full: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the first write into ``checkpoint`` behave as on a full disk: half the bytes land, then the writer
    fails the way it really does there (each one differently: see ``doctune.train.checkpoints.disk_is_full``)."""
    import io
    import shutil

    import safetensors
    import safetensors.torch
    import torch

    def half_written(path: str, data: bytes, error: Exception) -> None:
        Path(path).write_bytes(data[: len(data) // 2])
        full.append(True)
        raise error

    if shape == "adapter":  # peft's save of adapter_model.safetensors, the checkpoint's first file
        import peft.peft_model

        real = peft.peft_model.safe_save_file

        def save_file(tensors: dict, filename: str, metadata: dict | None = None) -> None:
            if checkpoint not in filename:
                return real(tensors, filename, metadata=metadata)
            error = safetensors.SafetensorError(
                "Error while serializing: I/O error: No space left on device (os error 28)"
            )
            half_written(filename, safetensors.torch.save(tensors, metadata=metadata), error)

        monkeypatch.setattr(peft.peft_model, "safe_save_file", save_file)
    else:  # torch.save of optimizer.pt, the biggest file; torch's error names no errno
        real_save = torch.save

        def save(obj: object, f: object, *args: object, **kwargs: object) -> None:
            if not (isinstance(f, str) and checkpoint in f and f.endswith("optimizer.pt")):
                return real_save(obj, f, *args, **kwargs)  # type: ignore[arg-type]
            buffer = io.BytesIO()
            real_save(obj, buffer)
            half_written(
                f, buffer.getvalue(), RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")
            )

        monkeypatch.setattr(torch, "save", save)
        real_usage = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda p: real_usage(p)._replace(free=0) if full else real_usage(p))


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["adapter", "optimizer"])
def test_full_disk_while_checkpointing_fails_clearly_and_a_rerun_resumes(
    settings: Settings, library: LibraryConfig, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    from doctune.train import run_key

    corpus.build(library, settings, sources.sync(library, settings))
    params = library.train.model_copy(update={"max_steps": 4, "save_steps": 2})
    run_dir = settings.path("runs", library.name, run_key(1, library.base_model, params))
    full: list[bool] = []
    with pytest.MonkeyPatch.context() as disk, pytest.raises(DoctuneError) as failed:
        _fill_disk_at("checkpoint-4", shape, full, disk)
        train(library, settings, params=params)
    message = str(failed.value)
    assert full and f"the disk holding {run_dir} is full" in message
    assert "Free space on it" in message and "resumes from the last complete checkpoint" in message
    registry = Registry.open(settings)
    assert registry.adapters(library.name) == []
    assert [(r.status, "is full" in (r.error or "")) for r in registry.runs(library.name)] == [("failed", True)]
    assert [p.name for p in settings.path("adapters", library.name).iterdir()] == []  # no half-copied adapter
    assert (run_dir / "checkpoints" / "checkpoint-4").is_dir()  # half-written, as a full disk leaves it

    # Space freed (the patches are gone): the same training resumes from the last complete checkpoint.
    with caplog.at_level("INFO", logger="doctune.train"):
        result = train(library, settings, params=params)
    resumed = [r.message for r in caplog.records if r.message.startswith("resuming from ")]
    assert resumed == [f"resuming from {run_dir / 'checkpoints' / 'checkpoint-2'}"]
    assert any("checkpoint-4 is incomplete" in r.message for r in caplog.records)
    assert (result.steps, result.adapter_version) == (4, 1)
    assert [r.status for r in registry.runs(library.name)] == ["failed", "succeeded"]
    state = json.loads((run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4


@pytest.mark.slow
def test_tensorboard_has_eval_loss_tokens_per_second_and_hparams(settings: Settings, library: LibraryConfig) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    corpus.build(library, settings, sources.sync(library, settings))
    train(library, settings)
    folder = next((settings.tensorboard_path / library.name).iterdir())
    tags: set[str] = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "train/grad_norm", "eval/loss", "train/tokens_per_second"} <= tags


def _train_on_a_clock(tmp_path: Path, budget_s: float, seconds_per_step: Any) -> tuple[Any, list[float], float]:
    """Drive the budget callback as the trainer does (step, schedule, callbacks) for a plan of 100 steps of 100
    tokens each, on a clock that advances ``seconds_per_step(step)`` per step."""
    import torch
    from transformers import DefaultFlowCallback, TrainerControl, TrainerState, TrainingArguments, get_scheduler

    from doctune.train.callbacks import budget_callback

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, learning_rate=1e-3, warmup_steps=0.05)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=5, num_training_steps=100)
    now = [0.0]
    budget = budget_callback(budget_s, planned_tokens=100 * 100, clock=lambda: now[0])
    state, control, flow = TrainerState(max_steps=100), TrainerControl(), DefaultFlowCallback()
    budget.on_train_begin(args, state, control)
    learning_rates = []
    while not control.should_training_stop:
        optimizer.step()
        scheduler.step()
        learning_rates.append(optimizer.param_groups[0]["lr"])
        now[0] += seconds_per_step(state.global_step)
        state.global_step += 1
        state.num_input_tokens_seen += 100
        flow.on_step_end(args, state, control)
        budget.on_step_end(args, state, control, lr_scheduler=scheduler)
    return state, learning_rates, now[0]


def test_a_time_budget_shortens_the_plan_and_ends_the_schedule_on_its_last_step(tmp_path: Path) -> None:
    # 2 s per step: the 100 planned steps would take 200 s of a 100 s budget.
    state, learning_rates, spent = _train_on_a_clock(tmp_path, 100.0, lambda step: 2.0)
    # After 10 timed steps (20 s), the 77 s left of the budget's 97 % hold 38 more steps.
    assert state.max_steps == state.global_step == 48 and spent <= 100.0
    assert learning_rates[-1] == pytest.approx(0.0, abs=1e-9)  # decayed to the end, not cut off half-way
    assert learning_rates[20] < learning_rates[9]


def test_a_slow_start_does_not_cut_the_plan_for_good(tmp_path: Path) -> None:
    # The longest batches come first: 8 s a step for ten steps, then 1 s. The whole plan takes 170 s of 200.
    state, learning_rates, spent = _train_on_a_clock(tmp_path, 200.0, lambda step: 8.0 if step < 10 else 1.0)
    assert state.global_step == 100 and spent <= 200.0
    assert learning_rates[-1] == pytest.approx(0.0, abs=1e-9)
    # A fixed budget that does not fit stops outright once spent.
    state, _, spent = _train_on_a_clock(tmp_path, 30.0, lambda step: 8.0 if step < 10 else 1.0)
    assert state.global_step == 4 and spent >= 30.0


@pytest.mark.slow
def test_a_spent_time_budget_stops_the_run_and_registers_its_adapter(
    settings: Settings, library: LibraryConfig
) -> None:
    corpus.build(library, settings, sources.sync(library, settings))
    # A budget far shorter than one step: the run stops after its first step, as at the end of a nightly window
    # (no warmup, whose first step has a learning rate of 0).
    result = train(
        library, settings, params=library.train.model_copy(update={"time_budget_minutes": 1e-6, "warmup_ratio": 0.0})
    )
    assert result.steps == 1
    adapter = Registry.open(settings).adapter(library.name, result.adapter_version)
    assert adapter.status == "candidate" and Path(adapter.path, "adapter_model.safetensors").is_file()


def test_replay_adds_general_pairs_and_never_the_previous_versions() -> None:
    from doctune.train import GENERAL_SET, replay_rows

    def row(q: str) -> dict:
        return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "a"}], "meta": {}}

    current = [row(f"new {i}") for i in range(40)]
    general = [json.loads(line)["messages"] for line in GENERAL_SET.read_text().splitlines() if line.strip()]
    mixed = replay_rows(current, 0.25)
    assert len(mixed) == 10 and replay_rows(current, 0.25) == mixed  # deterministic
    assert all(r["messages"] in general for r in mixed)
    assert len(replay_rows(current * 10, 0.5)) == len(general)  # at most the whole set, never a pair twice


@pytest.mark.slow
def test_kill_9_loses_at_most_the_steps_since_the_last_checkpoint(
    settings: Settings, library: LibraryConfig, caplog: pytest.LogCaptureFixture
) -> None:
    import os
    import signal
    import subprocess
    import sys

    corpus.build(library, settings, sources.sync(library, settings))
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

    def second_checkpoint() -> list[Path]:
        assert trainer.poll() is None, "the training exited before its second checkpoint"
        return list(run_dir.glob("*/checkpoints/checkpoint-10/trainer_state.json"))

    # Wait for the condition itself (a complete second checkpoint), not for a guessed duration.
    wait_for(second_checkpoint, "a complete second checkpoint", timeout=300)
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


@pytest.mark.slow
def test_a_training_lease_held_elsewhere_blocks_a_second_try(settings: Settings, library: LibraryConfig) -> None:
    corpus.build(library, settings, sources.sync(library, settings))
    registry = Registry.open(settings)
    assert registry.acquire_lease("train:ledgerkite", "worker-2:4242:abcd", ttl=600)  # a live try on another host
    with pytest.raises(DoctuneError, match=r"another training of ledgerkite holds its lease \(worker-2:4242:abcd"):
        train(library, settings)
    assert registry.runs(library.name) == [] and registry.adapters(library.name) == []
    assert registry.lease("train:ledgerkite").holder == "worker-2:4242:abcd"  # untouched


@pytest.mark.slow
def test_a_dead_local_holder_is_replaced_and_the_lease_released(settings: Settings, library: LibraryConfig) -> None:
    import socket
    import subprocess

    corpus.build(library, settings, sources.sync(library, settings))
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid no longer exists
    registry = Registry.open(settings)
    assert registry.acquire_lease("train:ledgerkite", f"{socket.gethostname()}:{dead.pid}:0000", ttl=600)
    assert train(library, settings).adapter_version == 1
    assert registry.lease("train:ledgerkite") is None  # released when training ended


@pytest.mark.slow
def test_losing_the_lease_stops_with_a_checkpoint(
    settings: Settings, library: LibraryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from doctune.train import TrainingStopped

    corpus.build(library, settings, sources.sync(library, settings))
    monkeypatch.setenv("DOCTUNE_TRAINING_LEASE_SECONDS", "0.3")
    monkeypatch.setattr(Registry, "renew_lease", lambda *args, **kwargs: False)  # another try took it over
    with pytest.raises(TrainingStopped):
        train(library, Settings())
    run = Registry.open(settings).runs(library.name)[-1]
    assert run.status == "stopped" and Registry.open(settings).adapters(library.name) == []
    assert any(Path(run.output_dir, "checkpoints").glob("checkpoint-*"))
