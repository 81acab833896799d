"""Library configs: one small YAML file per library in ``DOCTUNE_LIBRARIES_DIR``, validated by LibraryConfig (with
its sources and LLM generator sections); finding, loading and writing those files. The DAG files list that folder
at parse time, so loading them must stay cheap."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from doctune.config.params import TRAIN_PRESETS, GateParams, TrainParams, validation_messages
from doctune.config.settings import Settings
from doctune.errors import DoctuneError

# A library name becomes part of DAG ids, vLLM model names and folder names: keep it to a safe alphabet.
LIBRARY_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


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
