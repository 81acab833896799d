"""Training and gate parameters: TrainParams (the same fields as the Airflow trigger form), the presets per model
size that library configs start from, GateParams, and pydantic's errors as one line per field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from doctune.errors import DoctuneError


class TrainParams(BaseModel):
    """LoRA training parameters; the same fields as the Airflow trigger form."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(
        default=2e-4, gt=0, le=1e-2, description="Peak learning rate (2e-5..2e-4 for real models)."
    )
    batch_size: int = Field(default=4, ge=1, le=256, description="Examples per device step.")
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=256, description="Steps per optimizer update.")
    max_steps: int = Field(default=60, ge=1, le=1_000_000, description="Optimizer steps to train for.")
    num_epochs: float | None = Field(
        default=None, gt=0, le=100, description="If set, train this many passes over the data instead of max_steps."
    )
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1, description="Share of steps spent warming up the LR.")
    lora_rank: int = Field(default=16, ge=1, le=256, description="LoRA rank r (16-64 for real models).")
    lora_alpha: int = Field(default=32, ge=1, le=1024, description="LoRA alpha (usually 1-2x the rank).")
    lora_dropout: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Dropout on the LoRA path. 0 by default: teaching facts wants memorisation, and on CPU the random "
        "masks cost ~10 % of a step.",
    )
    max_seq_length: int = Field(
        default=512, ge=32, le=32768, description="Longest example in tokens; longer ones are cut."
    )
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every N steps (the last 2 are kept).")
    target_modules: list[str] = Field(
        default=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Linear layers that get LoRA weights (never embeddings or lm_head: vLLM refuses them).",
    )
    packing: bool = Field(
        default=False,
        description="Pack several short examples into one sequence. Off by default: batches of similar lengths waste "
        "as little on padding, and attention over one long packed row costs more (make bench measures both).",
    )
    evals_per_epoch: int = Field(
        default=2, ge=1, le=100, description="Evaluations on the held-out phrasings per epoch (for early stopping)."
    )
    early_stopping_patience: int | None = Field(
        default=2,
        ge=1,
        le=100,
        description="Stop after this many evaluations without the held-out-phrasing token accuracy rising by half a "
        "point; null = always train the full budget.",
    )
    time_budget_minutes: float | None = Field(
        default=None,
        gt=0,
        le=7 * 24 * 60,
        description="Wall-clock minutes for the training loop (loading the model and saving the adapter come on "
        "top). After the first steps the run times itself and, if the planned steps would not fit, trains fewer, "
        "with the learning-rate schedule shortened to end on the last of them; null = no limit. A resumed try gets "
        "the whole budget again.",
    )
    replay_share: float = Field(
        default=0.0,
        ge=0,
        le=0.5,
        description="Against forgetting general coding: add this share (of the training set's size) of pairs from a "
        "small built-in general Python set. Never the previous dataset version's pairs: those not in this version "
        "teach yesterday's API.",
    )
    seed: int = Field(default=42, description="Seed for initialisation and data order.")
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = Field(
        default="cosine", description="Learning-rate schedule after warmup."
    )
    backend: Literal["auto", "unsloth", "peft"] = Field(
        default="auto", description="auto: unsloth when installed and a CUDA GPU is present, else peft."
    )
    load_in_4bit: bool | None = Field(
        default=None, description="4-bit NF4 base weights (QLoRA). Default: on with a GPU, off on CPU."
    )

    @field_validator("target_modules")
    @classmethod
    def _servable_targets(cls, value: list[str]) -> list[str]:
        refused = [m for m in value if m in ("embed_tokens", "lm_head", "wte", "wpe")]
        if refused or not value:
            raise ValueError(
                f"target_modules {refused or value} cannot be served with runtime LoRA loading: vLLM "
                "loads only linear layers; use the attention and MLP projections"
            )
        return value

    @model_validator(mode="after")
    def _alpha_scales_rank(self) -> TrainParams:
        if self.lora_alpha > 4 * self.lora_rank:
            raise ValueError(
                f"lora_alpha={self.lora_alpha} is more than 4x lora_rank={self.lora_rank}: updates would be "
                "scaled so much that training diverges; use 1-2x the rank"
            )
        return self

    def merged(self, overrides: Mapping[str, object]) -> TrainParams:
        """These parameters with ``overrides`` (a run's form, the CLI's flags) applied and validated together; a bad
        value raises one line per field that names its bound."""
        try:
            return TrainParams.model_validate(self.model_dump() | dict(overrides))
        except ValidationError as exc:
            raise DoctuneError(f"bad training parameters: {'; '.join(validation_messages(exc))}") from None


# Starting points per model size; a library config's `train:` values override them.
TRAIN_PRESETS: dict[str, dict[str, object]] = {
    "tiny-llama": {
        "learning_rate": 1e-3,
        "max_steps": 60,
        "batch_size": 4,
        "lora_rank": 8,
        "lora_alpha": 16,
        "max_seq_length": 256,
    },
    # Sized in passes over the corpus (each pass shows every fact in all its phrasings), at a learning rate that
    # memorises without diverging; see the README's quality section for what it reaches on this machine.
    "smollm2-135m": {
        "learning_rate": 1e-3,
        "num_epochs": 2,
        "batch_size": 4,
        "lora_rank": 16,
        "lora_alpha": 32,
        "max_seq_length": 512,
        "replay_share": 0.05,
    },
    "coder-0.5b-3b": {
        "learning_rate": 2e-4,
        "num_epochs": 3,
        "batch_size": 8,
        "gradient_accumulation_steps": 2,
        "lora_rank": 16,
        "lora_alpha": 32,
        "max_seq_length": 1024,
        "save_steps": 100,
    },
    "coder-7b-8b": {
        "learning_rate": 1e-4,
        "num_epochs": 2,
        "batch_size": 4,
        "gradient_accumulation_steps": 4,
        # Rank 16 on every linear layer: within the default --max-lora-rank, and rank matters little once all
        # projections are adapted (QLoRA, arXiv 2305.14314).
        "lora_rank": 16,
        "lora_alpha": 32,
        "max_seq_length": 2048,
        "save_steps": 100,
    },
}


GateMetric = Literal["heldout_loss", "api_heldout_phrasing", "exec_pass_at_1"]


class GateParams(BaseModel):
    """When a candidate adapter may replace production. Margins are a fraction of the loss for ``heldout_loss``
    (lower is better) and absolute points for the scores in 0..1 (higher is better)."""

    model_config = ConfigDict(extra="forbid")

    primary_metric: GateMetric = Field(
        default="api_heldout_phrasing",
        description="What the candidate must improve. api_heldout_phrasing: questions about every trained symbol in "
        "phrasings that never appear in training, scored against the symbol table; it decides only over at least 30 "
        "questions and when some model answers at least 5 of them, else heldout_loss decides (the report says so). "
        "exec_pass_at_1: generated code passing the library's own held-out checks. heldout_loss: loss on the trained "
        "facts asked in held-out phrasings, which works at every model size and is always a secondary check.",
    )
    eval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Time budget for the gate's generations: a stratified sample of the suite that fits it is asked "
        "(every item with `doctune eval run --full` and in `make bench`).",
    )

    @field_validator("primary_metric", mode="before")
    @classmethod
    def _renamed_metric(cls, value: object) -> object:
        # Configs written before the held-out-phrasing suite name the API score "api_score".
        return "api_heldout_phrasing" if value == "api_score" else value

    min_gain_over_base: float = Field(
        default=0.02, ge=0, le=1, description="The primary metric must beat the base model's by at least this."
    )
    production_margin: float = Field(
        default=-0.02,
        ge=-1,
        le=1,
        description="The primary metric must beat production's by at least this; negative tolerates a regression: "
        "production was trained on an older library, so freshness is the candidate's edge, and this bounds "
        "what it may cost.",
    )
    max_general_drop: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="General-coding floor (pass@1 on built-in Python tasks) may fall at most this many points "
        "below production's (the base model's before the first promotion): catches forgetting.",
    )
    max_hallucination_increase: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Share of library references in answers that name APIs which do not exist may rise at most "
        "this many points above production's (the base model's before the first promotion).",
    )
    min_diff_probes: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="When the version changed the public API (added, changed, renamed, deprecated or removed "
        "symbols), the share of its diff probes the candidate must answer right; its stale-answer rate (the old API "
        "offered) may also not rise above production's. A prose-only change has no probes and skips both checks.",
    )


def validation_messages(exc: ValidationError, whole: str = "parameters") -> list[str]:
    """pydantic's errors as "field.path: message"; ``whole`` names what a model-level check (no field) is about."""
    return [f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in exc.errors()]
