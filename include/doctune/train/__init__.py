"""Train: LoRA on a dataset version with trl's SFTTrainer; the adapter is saved in the layout vLLM loads.

Heavy libraries (torch, transformers, peft, trl) are imported inside functions so that importing this module
(from a DAG file, the CLI or the gateway) stays cheap.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from doctune.config import LibraryConfig, Settings, TrainParams
from doctune.errors import DoctuneError
from doctune.names import RunStatus
from doctune.registry.artefacts import adapter_digest

log = logging.getLogger(__name__)

# Called after every optimizer step with (step, max_steps, latest training loss or None): the CLI's progress bar.
StepProgress = Callable[[int, int, float | None], None]

GENERAL_SET = Path(__file__).parents[1] / "data" / "general_python.jsonl"


@dataclass(frozen=True)
class TrainResult:
    library: str
    run_id: int
    dataset_version: int
    adapter_version: int
    adapter_path: str
    steps: int
    train_loss: float | None
    reused: bool = False  # the adapter existed already: same dataset version, base model and parameters

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def servable_problems(folder: Path, params: TrainParams) -> list[str]:
    """What in an adapter folder vLLM's LoRA loader would refuse, or serve as a no-op; empty when it is servable."""
    from safetensors import safe_open

    config = json.loads((folder / "adapter_config.json").read_text())
    problems = []
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']} (vLLM loads LoRA weights only)")
    if sorted(config.get("target_modules") or []) != sorted(params.target_modules):
        problems.append(f"target_modules {config.get('target_modules')} instead of {params.target_modules}")
    if config.get("r") != params.lora_rank:
        problems.append(f"rank {config.get('r')} instead of {params.lora_rank}")
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
        other = [k for k in keys if not k.endswith((".lora_A.weight", ".lora_B.weight"))]
        if other:  # embedding or lm_head LoRA, or trained full modules: vLLM refuses them
            more = f" (nor are {len(other) - 1} more)" if len(other) > 1 else ""
            problems.append(f"{other[0]} is not a LoRA A/B weight{more}")
        # LoRA's B starts at zero: an adapter whose Bs never moved answers exactly as the base model.
        if not any(weights.get_tensor(k).abs().sum() > 0 for k in keys if k.endswith(".lora_B.weight")):
            problems.append("every lora_B weight is zero: training did not move the adapter")
    return problems


def replay_rows(current: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """A deterministic sample of the built-in general Python set, ``share`` of the training set's size (at most the
    whole set): against forgetting general coding while the adapter learns the library.

    Never pairs of the previous dataset version: each version trains from the base model on the library as it is
    now, so a previous pair that is not in the current version is yesterday's API (measured: ledgerkite 0.4.0's
    replay brought back ten pairs teaching ``leaderboard``'s old default) or a pair now held out for evaluation."""
    general = [json.loads(line) for line in GENERAL_SET.read_text().splitlines() if line.strip()]
    ranked = sorted(general, key=lambda r: hashlib.sha256(json.dumps(r["messages"]).encode()).hexdigest())
    return ranked[: round(len(current) * share)]


def to_prompt_completion(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat rows -> trl's conversational prompt/completion form, so loss is computed on the answer only."""
    return [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run_key(dataset_version: int, base_model: str, params: TrainParams) -> str:
    """Same dataset, base and parameters -> same run folder, so a retry resumes instead of starting over."""
    blob = json.dumps({"base": base_model, "params": params.model_dump()}, sort_keys=True)
    return f"d{dataset_version}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


class TrainingStopped(DoctuneError):
    """Training stopped on request (SIGTERM or `doctune train stop`) after saving a checkpoint."""

    exit_code = 75  # EX_TEMPFAIL: not a failure of the run; running it again resumes


STOP_FILE = "STOP"


def request_stop(settings: Settings, library: str) -> list[Path]:
    """Ask every running training of ``library`` to checkpoint and stop (picked up after the current step)."""
    from doctune.registry import Registry

    requested = []
    for run in Registry.open(settings).runs(library, status=RunStatus.RUNNING):
        stop = Path(run.output_dir) / STOP_FILE
        if stop.parent.is_dir():
            stop.touch()
            requested.append(stop)
    return requested


def _stop_callback(run_dir: Path, stopped: list[int]) -> Any:
    """Stops after the current step, with a checkpoint, when the stop file appears or SIGTERM arrives."""
    import signal

    from transformers import TrainerCallback

    flag = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # Airflow sends SIGTERM when a task is marked failed or stopped in the UI: finish the step, keep a
        # checkpoint, then stop, instead of dying mid-write.
        signal.signal(signal.SIGTERM, lambda *_: flag.set())

    class StopOnRequest(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if flag.is_set() or (run_dir / STOP_FILE).exists():
                log.info("stop requested: saving a checkpoint at step %d and stopping", state.global_step)
                stopped.append(state.global_step)
                control.should_save = True
                control.should_training_stop = True

    return StopOnRequest()


def latest_good_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that is complete. A half-written one (a crash or a full disk while saving) is moved
    aside as ``*.corrupt`` with a warning, and the one before it is used."""
    from safetensors import safe_open

    candidates = sorted(folder.glob("checkpoint-*[0-9]"), key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True)
    for checkpoint in candidates:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            with safe_open(str(checkpoint / "adapter_model.safetensors"), "pt") as weights:
                list(weights.keys())
            if not (checkpoint / "optimizer.pt").is_file():
                raise FileNotFoundError("optimizer.pt")
            return checkpoint
        except Exception as exc:  # any unreadable part makes the whole checkpoint unusable
            aside = checkpoint.with_name(checkpoint.name + ".corrupt")
            log.warning("checkpoint %s is incomplete (%s): moved to %s", checkpoint, exc, aside.name)
            checkpoint.rename(aside)
    return None


# Below this much free space, a failed write is taken for a full disk (torch.save does not say so itself).
FULL_DISK_BYTES = 16 * 2**20


def disk_is_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` comes from a full disk. Each writer reports one differently: Python's file writes raise
    OSError(ENOSPC), safetensors a SafetensorError quoting "No space left on device", and torch.save only
    "unexpected pos ..." with no errno, which leaves the free space on ``folder``'s disk as the witness."""
    chain: BaseException | None = exc
    while chain is not None:
        if (isinstance(chain, OSError) and chain.errno == errno.ENOSPC) or "No space left on device" in str(chain):
            return True
        chain = chain.__cause__ or chain.__context__
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:  # the folder is gone: nothing to say about its disk
        return False


@contextmanager
def _full_disk_explained(run_dir: Path) -> Iterator[None]:
    """A full disk while checkpointing or saving the adapter becomes one clear error that names the folder and
    the fix; the half-written checkpoint is set aside by ``latest_good_checkpoint`` when the run is tried again."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, DoctuneError) or not disk_is_full(exc, run_dir):
            raise
        free = shutil.disk_usage(run_dir).free if run_dir.exists() else 0
        raise DoctuneError(
            f"the disk holding {run_dir} is full ({free // 2**20} MiB free; {exc}): nothing was registered. "
            f"Free space on it (old runs under {run_dir.parent} and their checkpoints can go) or point "
            "DOCTUNE_HOME at a bigger disk, then run the same training again: it resumes from the last complete "
            "checkpoint"
        ) from exc


def _metrics_callback(tb_dir: Path, params: TrainParams) -> Any:
    """Tokens per second and the run's hyper-parameters in TensorBoard, next to the trainer's own scalars."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers import TrainerCallback

    class Metrics(TrainerCallback):
        def __init__(self) -> None:
            self.writer: Any = None
            self.mark = (0.0, 0)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.writer = SummaryWriter(str(tb_dir))
            self.mark = (time.perf_counter(), int(state.num_input_tokens_seen or 0))

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            now, tokens = time.perf_counter(), int(state.num_input_tokens_seen or 0)
            if self.writer and logs and "loss" in logs and now > self.mark[0]:
                self.writer.add_scalar(
                    "train/tokens_per_second", (tokens - self.mark[1]) / (now - self.mark[0]), state.global_step
                )
                self.mark = (now, tokens)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.writer:
                hparams = {k: v for k, v in params.model_dump().items() if isinstance(v, int | float | str | bool)}
                losses = [h["loss"] for h in state.log_history if "loss" in h]
                self.writer.add_hparams(
                    hparams, {"hparam/final_loss": losses[-1] if losses else float("nan")}, run_name="hparams"
                )
                self.writer.close()

    return Metrics()


def _log_lines_callback() -> Any:
    """Plain log lines per logging step, for Airflow task logs where no progress bar renders, and at the end how many
    steps this try ran: after a resume, the steps left, not all of them again."""
    from transformers import TrainerCallback

    class LogLines(TrainerCallback):
        def __init__(self) -> None:
            self.steps = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.steps += 1

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            log.info(
                "steps run in this try: %d (step %d to %d of %d)",
                self.steps,
                state.global_step - self.steps,
                state.global_step,
                state.max_steps,
            )

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                log.info(
                    "step %d/%d loss %.4f lr %.2e",
                    state.global_step,
                    state.max_steps,
                    logs["loss"],
                    logs.get("learning_rate", 0.0),
                )

    return LogLines()


def _progress_callback(progress: StepProgress) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        loss: float | None = None

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress(state.global_step, state.max_steps, self.loss)

    return Progress()


# What "the held-out-phrasing score plateaued" means during training: the evaluation split holds the trained facts
# asked in phrasings that never train, and the share of their answer tokens the model predicts (teacher-forced) is a
# cheap stand-in for the API score that the evaluation measures by generating.
PLATEAU_METRIC = "eval_mean_token_accuracy"
PLATEAU_MIN_GAIN = 0.005


def _plateau_callback(patience: int) -> Any:
    """Stop when the held-out-phrasing token accuracy has not risen by PLATEAU_MIN_GAIN for ``patience`` evaluations:
    more epochs only cost CPU time once the facts are in."""
    from transformers import TrainerCallback

    class StopOnPlateau(TrainerCallback):
        best = float("-inf")
        flat = 0

        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any
        ) -> None:
            value = (metrics or {}).get(PLATEAU_METRIC)
            if value is None:
                return
            if value >= self.best + PLATEAU_MIN_GAIN:
                self.best, self.flat = value, 0
                return
            self.flat += 1
            if self.flat >= patience:
                log.info(
                    "held-out-phrasing token accuracy %.3f has not improved on %.3f for %d evaluations: stopping at "
                    "step %d of %d",
                    value,
                    self.best,
                    self.flat,
                    state.global_step,
                    state.max_steps,
                )
                control.should_training_stop = True

    return StopOnPlateau()


# A time budget trusts the run's pace only after this many steps, plans this share under the budget (the
# evaluations for early stopping and the checkpoints make the pace uneven), and moves the plan only by more than
# BUDGET_REPLAN_SHARE of it, so the learning-rate schedule is not redrawn on every step.
BUDGET_PROBE_STEPS = 10
BUDGET_SLACK = 0.03
BUDGET_REPLAN_SHARE = 0.01


def _budget_callback(budget_s: float, planned_tokens: int, clock: Callable[[], float] = time.monotonic) -> Any:
    """Fit the run into ``budget_s`` seconds of training loop, ``planned_tokens`` being the tokens its planned steps
    train on: plan as many steps as the pace so far says fit, never more than planned, and end the learning-rate
    schedule on the last of them (stopping a cosine schedule half-way would leave the adapter at a high learning
    rate); stop outright at the budget.

    The pace is counted in seconds per token, not per step: batches grouped by length put the longest first, so
    the first steps are the slowest and a per-step pace would plan far too few."""
    from transformers import TrainerCallback

    class FitTheBudget(TrainerCallback):
        started = 0.0
        first_step = tokens_before = planned_steps = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started, self.first_step = clock(), state.global_step
            self.tokens_before, self.planned_steps = state.num_input_tokens_seen, state.max_steps

        def on_step_end(self, args: Any, state: Any, control: Any, lr_scheduler: Any = None, **kwargs: Any) -> None:
            elapsed = clock() - self.started
            if elapsed >= budget_s:
                log.info("time budget of %.0f s spent: stopping at step %d", budget_s, state.global_step)
                control.should_training_stop = True
                return
            tokens = state.num_input_tokens_seen - self.tokens_before
            if state.global_step - self.first_step < BUDGET_PROBE_STEPS or tokens <= 0:
                return
            needed = elapsed / tokens * max(planned_tokens - state.num_input_tokens_seen, 0)
            available = budget_s * (1 - BUDGET_SLACK) - elapsed
            steps_left = self.planned_steps - state.global_step
            fits = (
                self.planned_steps if needed <= available else state.global_step + int(steps_left * available / needed)
            )
            fits = max(fits, state.global_step + 1)
            small = abs(fits - state.max_steps) <= BUDGET_REPLAN_SHARE * self.planned_steps
            if fits == state.max_steps or (small and fits != self.planned_steps):
                return
            log.info(
                "time budget of %.0f s: %.0f s spent on %d tokens, %.0f s left; planning %d steps of the %d planned",
                budget_s,
                elapsed,
                tokens,
                available,
                fits,
                self.planned_steps,
            )
            state.max_steps = fits
            if lr_scheduler is not None:
                _end_schedule_at(lr_scheduler, args, fits)

    return FitTheBudget()


def _end_schedule_at(scheduler: Any, args: Any, total_steps: int) -> None:
    """Make the trainer's LambdaLR follow the same schedule as if it had been planned for ``total_steps``."""
    import torch
    from transformers import get_scheduler

    # get_scheduler builds the lambdas the trainer would have built; a throwaway optimizer keeps the real one's
    # learning rates untouched.
    spare = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    planned = get_scheduler(
        args.lr_scheduler_type,
        spare,
        num_warmup_steps=args.get_warmup_steps(total_steps),
        num_training_steps=total_steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    scheduler.lr_lambdas = [planned.lr_lambdas[0]] * len(scheduler.lr_lambdas)


def _answer_loss_trainer() -> type:
    """trl's SFTTrainer with a loss that sends only the answer positions through the LM head (CPU only).

    On devices without Triton, trl scores every position of the batch in vocabulary tiles with several extra
    element-wise passes (entropy, top-1). On SmolLM2-135M (49k vocabulary) on 2 CPU cores that path took ~40 % of a
    step and grew with the tokens per step; ``answer_loss`` does one plain cross-entropy over the answer tokens,
    the only ones with labels, and measures the same token accuracy. ``benchmarks/training.py`` compares both.
    """
    from trl import SFTTrainer

    from doctune.answer_loss import score_answers

    class AnswerLossTrainer(SFTTrainer):
        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            mode = "train" if model.training else "eval"
            scored = score_answers(
                model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"], inputs.get("position_ids")
            )
            loss = scored.loss_sum / (num_items_in_batch if num_items_in_batch is not None else max(scored.tokens, 1))
            self._metrics[mode]["mean_token_accuracy"].append(scored.correct / max(scored.tokens, 1))
            # A whole answer right, token by token: closer to what the evaluation scores than token accuracy.
            self._metrics[mode]["answer_exact_match"].append(scored.exact_rows / max(scored.rows, 1))
            return (loss, {}) if return_outputs else loss

    return AnswerLossTrainer


def _model_card(
    library: LibraryConfig, dataset: Any, base_model: str, params: TrainParams, steps: int, loss: float | None
) -> str:
    return (
        f"# {library.name} LoRA adapter (doctune)\n\n"
        f"- base model: `{base_model}`\n- dataset: v{dataset.version} ({dataset.n_train} train pairs), "
        f"commit `{dataset.commit}`\n- steps: {steps}, final training loss: {loss}\n"
        f"- parameters: `{json.dumps(params.model_dump(), sort_keys=True)}`\n\n"
        f"Load it into vLLM with `--enable-lora` as a LoRA module of the base model above.\n"
    )


def train(
    library: LibraryConfig,
    settings: Settings,
    *,
    dataset_version: int | None = None,
    params: TrainParams | None = None,
    progress: StepProgress | None = None,
) -> TrainResult:
    """Train a LoRA adapter on a dataset version (default: the latest) and register it as a candidate."""
    from doctune.base_models import resolve_base_model
    from doctune.registry import Registry
    from doctune.registry.artefacts import load_rows

    params = params or library.train
    settings.check_servable_rank(params.lora_rank)
    registry = Registry.open(settings)
    dataset = (
        registry.dataset(library.name, dataset_version) if dataset_version else registry.latest_dataset(library.name)
    )
    if dataset is None:
        raise DoctuneError(f"{library.name} has no dataset version yet: run `doctune corpus build {library.name}`")
    rows = load_rows(dataset.path, "train")
    if not rows:
        raise DoctuneError(
            f"dataset v{dataset.version} of {library.name} has no training pairs: its report "
            f"({dataset.path}/report.md) says what was extracted and why pairs were rejected; widen the library's "
            f"sources or fix its docs, then run `doctune corpus build {library.name}`"
        )
    held_out = load_rows(dataset.path, "eval")
    if params.replay_share:
        rows = rows + replay_rows(rows, params.replay_share)

    base_path = resolve_base_model(library.base_model, settings)
    key = run_key(dataset.version, library.base_model, params)
    run_dir = settings.path("runs", library.name, key)
    done = registry.adapter_for_output(str(run_dir))
    if done is not None:  # a retry after the adapter was registered: never a second version of the same run
        finished = registry.run(done.training_run_id)
        log.info("adapter v%d was already trained from this dataset and these parameters", done.version)
        return TrainResult(
            library.name,
            finished.id,
            dataset.version,
            done.version,
            done.path,
            finished.steps or 0,
            finished.train_loss,
            reused=True,
        )
    # The lease makes sure no other try of this library trains meanwhile (see exclusive_training).
    with exclusive_training(registry, library.name, run_dir, settings.training_lease_seconds):
        if registry.mark_interrupted(str(run_dir)):
            log.warning("an earlier try of this training was interrupted; continuing from its last checkpoint")
        run = registry.start_run(library.name, dataset.version, library.base_model, params.model_dump(), str(run_dir))
        staged = settings.path("adapters", library.name) / f".staging-run{run.id}"
        try:
            with _full_disk_explained(run_dir):
                steps, loss = _fit(
                    base_path,
                    rows,
                    held_out,
                    params,
                    run_dir,
                    settings.tensorboard_path / library.name / key,
                    progress=progress,
                )
                problems = servable_problems(run_dir / "adapter", params)
                if problems:  # caught here, not at deploy time, where the whole evaluation would be spent on it
                    raise DoctuneError(
                        f"the adapter trained in {run_dir / 'adapter'} is not servable by vLLM: {'; '.join(problems)}; "
                        f"nothing was registered (backend: {params.backend}); train with backend: peft"
                    )
                shutil.rmtree(staged, ignore_errors=True)
                shutil.copytree(run_dir / "adapter", staged)
                card = _model_card(library, dataset, library.base_model, params, steps, loss)
                (staged / "README.md").write_text(card)
                adapter = registry.add_adapter(
                    library=library.name,
                    training_run_id=run.id,
                    dataset_version=dataset.version,
                    base_model=library.base_model,
                    staged=staged,
                    rank=params.lora_rank,
                    sha256=adapter_digest(staged),
                )
        except BaseException as exc:
            shutil.rmtree(staged, ignore_errors=True)  # a half-copied adapter only takes space; the run folder has it
            status = RunStatus.STOPPED if isinstance(exc, TrainingStopped) else RunStatus.FAILED
            registry.finish_run(run.id, status=status, error=str(exc)[:2000])
            raise
        registry.finish_run(run.id, status=RunStatus.SUCCEEDED, steps=steps, train_loss=loss)
    log.info(
        "adapter v%d of %s trained: %d steps, final loss %s -> %s",
        adapter.version,
        library.name,
        steps,
        loss,
        adapter.path,
    )
    return TrainResult(library.name, run.id, dataset.version, adapter.version, adapter.path, steps, loss)


@contextmanager
def exclusive_training(registry: Any, library: str, run_dir: Path, ttl: float) -> Iterator[None]:
    """Hold the library's training lease for the whole training (see ``Registry.exclusive``).

    A try whose worker was killed can keep running; its retry must not train beside it on the same checkpoints.
    The retry fails while the lease is held (Airflow retries it later); a holder that cannot renew (the lease
    expired and another try took it) stops with a checkpoint, as if asked to.
    """
    with registry.exclusive(
        f"train:{library}",
        ttl,
        busy=f"another training of {library} holds its lease",
        why="an earlier try may still run on a worker that lost contact; this try does not train beside it. Retry "
        "after that try ends or its lease expires (the Airflow task retries).",
        on_lost=(run_dir / STOP_FILE).touch,
    ):
        yield


@dataclass(frozen=True)
class FitChoices:
    """How a training runs, where doctune chooses by measurement (``make bench`` compares each with its
    alternative on this machine): the loss path, the batch order and the precision."""

    loss: Literal["auto", "trl"] = "auto"  # auto: answer-only loss on CPU; trl: trl's own loss everywhere
    order: Literal["length", "random"] = "length"  # batches of similar lengths, or trl's random order
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on a GPU or a CPU with bf16 units


def _load(backend: Any, base_path: str, params: TrainParams, lora: Any) -> tuple[Any, Any, Any]:
    """(model, tokenizer, peft config for the trainer) for the chosen backend."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    if backend.name == "unsloth":
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=base_path, max_seq_length=params.max_seq_length, load_in_4bit=backend.four_bit, dtype=None
        )
        model = FastLanguageModel.get_peft_model(
            model,
            r=params.lora_rank,
            lora_alpha=params.lora_alpha,
            lora_dropout=params.lora_dropout,
            target_modules=params.target_modules,
            # As in _fit: checkpointing pays on a GPU's memory, not in CPU mode (tests only).
            use_gradient_checkpointing="unsloth" if backend.device == "cuda" else False,
            random_state=params.seed,
        )
        return model, tokenizer, None  # the model already carries its LoRA
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    if not backend.four_bit:
        # A GPU trains from bf16 weights (half the memory of fp32, the precision its autocast computes in anyway);
        # a CPU without bf16 units keeps fp32.
        gpu_bf16 = backend.device == "cuda" and torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if gpu_bf16 else torch.float32
        return AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype), tokenizer, lora
    from peft import prepare_model_for_kbit_training

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if backend.device == "cuda" else torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(
        base_path, quantization_config=quantization, device_map={"": 0} if backend.device == "cuda" else None
    )
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=backend.device == "cuda"), tokenizer, lora


def _fit(
    base_path: str,
    rows: list[dict[str, Any]],
    held_out: list[dict[str, Any]],
    params: TrainParams,
    run_dir: Path,
    tb_dir: Path,
    *,
    progress: StepProgress | None = None,
    fit: FitChoices | None = None,
) -> tuple[int, float | None]:
    import math
    import sys

    fit = fit or FitChoices()

    from doctune.train.backends import activate, choose_backend

    backend = choose_backend(params.backend, params.load_in_4bit)
    activate(backend)  # before transformers: unsloth must patch it first

    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from doctune.answer_loss import plain_logits

    # transformers 5 has no logging_dir: this variable pins where the TensorBoard callback writes.
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(tb_dir)
    cuda = backend.device == "cuda"
    bf16 = {"bf16": True, "fp32": False}.get(fit.precision, cuda or _cpu_has_bf16())
    lora = LoraConfig(
        r=params.lora_rank,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=params.target_modules,
        task_type="CAUSAL_LM",
    )
    model, tokenizer, peft_config = _load(backend, base_path, params, lora)
    checkpoints = run_dir / "checkpoints"
    resume = latest_good_checkpoint(checkpoints)
    if resume:
        log.info("resuming from %s", resume)
    steps_per_epoch = max(1, math.ceil(len(rows) / (params.batch_size * params.gradient_accumulation_steps)))
    # Evaluate a few times per epoch: often enough to stop soon after the held-out-phrasing accuracy plateaus.
    eval_steps = max(1, steps_per_epoch // params.evals_per_epoch)
    config = SFTConfig(
        output_dir=str(checkpoints),
        # Epochs are counted by the trainer over the dataset as prepared: packing leaves fewer, longer rows.
        max_steps=-1 if params.num_epochs else params.max_steps,
        num_train_epochs=params.num_epochs or 1,
        per_device_train_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        learning_rate=params.learning_rate,
        warmup_steps=params.warmup_ratio,  # below 1: a share of the steps, however they are counted
        lr_scheduler_type=params.lr_scheduler,
        logging_steps=5,
        save_steps=params.save_steps,
        save_total_limit=2,
        report_to=["tensorboard"],
        seed=params.seed,
        max_length=params.max_seq_length,
        packing=params.packing,
        include_num_input_tokens_seen="non_padding",  # for real tokens/s in TensorBoard
        eval_strategy="steps" if held_out else "no",
        eval_steps=eval_steps,
        per_device_eval_batch_size=params.batch_size,
        prediction_loss_only=True,
        # Batches of similar lengths: padding is compute spent on nothing (measured: 2x tokens/s on SmolLM2, CPU).
        train_sampling_strategy="group_by_length" if fit.order == "length" else "random",
        bf16=bf16,
        use_cpu=not cuda,
        # Checkpointing trades compute for memory; small models on CPU have memory to spare.
        gradient_checkpointing=cuda,
        dataloader_num_workers=0,
        disable_tqdm=progress is not None or not sys.stderr.isatty(),
    )
    stopped: list[int] = []
    callbacks = [_log_lines_callback(), _stop_callback(run_dir, stopped), _metrics_callback(tb_dir, params)]
    if held_out and params.early_stopping_patience:
        callbacks.append(_plateau_callback(params.early_stopping_patience))
    if progress is not None:
        callbacks.append(_progress_callback(progress))
    trl_loss = fit.loss == "trl" or cuda or backend.name == "unsloth" or not plain_logits(model)
    trainer_class = SFTTrainer if trl_loss else _answer_loss_trainer()
    trainer = trainer_class(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(to_prompt_completion(rows)),
        eval_dataset=Dataset.from_list(to_prompt_completion(held_out)) if held_out else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    lengths = sorted(len(ids) for ids in trainer.train_dataset["input_ids"])
    log.info(
        "%d training rows, %d tokens per epoch (median %d, longest %d; %d cut at max_seq_length %d), %d steps per "
        "epoch, evaluation every %d steps",
        len(lengths),
        sum(lengths),
        lengths[len(lengths) // 2],
        lengths[-1],
        sum(n >= params.max_seq_length for n in lengths),
        params.max_seq_length,
        steps_per_epoch,
        eval_steps,
    )
    if params.time_budget_minutes:
        # The tokens its planned steps train on: whole epochs of these rows, or max_steps batches of average rows.
        epoch_tokens = sum(min(n, params.max_seq_length) for n in lengths)
        rows_per_step = params.batch_size * params.gradient_accumulation_steps
        epochs = params.num_epochs or params.max_steps * rows_per_step / len(lengths)
        trainer.add_callback(_budget_callback(params.time_budget_minutes * 60, round(epoch_tokens * epochs)))
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if stopped:
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        raise TrainingStopped(
            f"training stopped on request at step {stopped[0]} of {trainer.state.max_steps}; the checkpoint is in "
            f"{checkpoints}: run the same training again (or retry the task) to resume from it"
        )
    peft_model: Any = trainer.model
    peft_model.save_pretrained(run_dir / "adapter")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return trainer.state.global_step, (losses[-1] if losses else result.training_loss)
