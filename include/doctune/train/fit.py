"""One training loop: load the base model for the chosen backend, configure trl's SFTTrainer with its callbacks, train
(resuming from the last complete checkpoint) and save the adapter; ``FitChoices`` holds what ``make bench``
measures."""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from doctune.answer_loss import plain_logits, score_answers
from doctune.config import TrainParams
from doctune.train.backends import activate, choose_backend
from doctune.train.callbacks import (
    STOP_FILE,
    StepProgress,
    TrainingStopped,
    budget_callback,
    log_lines_callback,
    metrics_callback,
    plateau_callback,
    progress_callback,
    stop_callback,
)
from doctune.train.checkpoints import latest_good_checkpoint
from doctune.train.data import to_prompt_completion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitChoices:
    """How a training runs, where doctune chooses by measurement (``make bench`` compares each with its
    alternative on this machine): the loss path, the batch order and the precision."""

    loss: Literal["auto", "trl"] = "auto"  # auto: answer-only loss on CPU; trl: trl's own loss everywhere
    order: Literal["length", "random"] = "length"  # batches of similar lengths, or trl's random order
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on a GPU or a CPU with bf16 units


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
            # As in fit_adapter: checkpointing pays on a GPU's memory, not in CPU mode (tests only).
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


def _answer_loss_trainer() -> type:
    """trl's SFTTrainer with a loss that sends only the answer positions through the LM head (CPU only).

    On devices without Triton, trl scores every position of the batch in vocabulary tiles with several extra
    element-wise passes (entropy, top-1). On SmolLM2-135M (49k vocabulary) on 2 CPU cores that path took ~40 % of a
    step and grew with the tokens per step; ``answer_loss`` does one plain cross-entropy over the answer tokens,
    the only ones with labels, and measures the same token accuracy. ``benchmarks/training.py`` compares both.
    """
    from trl import SFTTrainer

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


def fit_adapter(
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
    """Train a LoRA adapter on ``rows`` (evaluated on ``held_out``) in ``run_dir``, resuming from its newest complete
    checkpoint, and save it to ``run_dir / "adapter"``: (steps, final training loss)."""
    fit = fit or FitChoices()

    backend = choose_backend(params.backend, params.load_in_4bit)
    activate(backend)  # before transformers: unsloth must patch it first

    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

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
    callbacks = [log_lines_callback(), stop_callback(run_dir, stopped), metrics_callback(tb_dir, params)]
    if held_out and params.early_stopping_patience:
        callbacks.append(plateau_callback(params.early_stopping_patience))
    if progress is not None:
        callbacks.append(progress_callback(progress))
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
        trainer.add_callback(budget_callback(params.time_budget_minutes * 60, round(epoch_tokens * epochs)))
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
