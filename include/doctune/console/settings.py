"""The console's own settings (``DOCTUNE_CONSOLE_*``): its users, the links it shows and the Airflow it triggers."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from doctune.console import auth


class ConsoleSettings(BaseSettings):
    """The console's own settings (``DOCTUNE_CONSOLE_*``); everything else comes from doctune's ``Settings``."""

    model_config = SettingsConfigDict(env_prefix="DOCTUNE_CONSOLE_", extra="ignore")

    keys: SecretStr = Field(
        default=SecretStr(""),
        description="The users, comma-separated, each USER:ROLE:KEY with role viewer (reads, chats) or operator "
        "(also trains, promotes, rolls back). Empty: no login, and the console listens on 127.0.0.1 only.",
    )
    tensorboard_url: str = Field(default="http://127.0.0.1:6006", description="TensorBoard, for links from runs.")
    airflow_url: str = Field(default="", description="Airflow's web UI, for a link in the header (optional).")
    airflow_api_url: str = Field(
        default="",
        description="Airflow's API server (e.g. http://airflow-apiserver:8080). Set: start and resume trigger the "
        "library's retrain DAG through Airflow's REST API, so training runs on the GPU worker. Empty: they run "
        "`doctune train run` in the background on this host (local use).",
    )
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names the console answers to when it has keys (empty: any). Without "
        "keys only 127.0.0.1, localhost and ::1, so a page elsewhere cannot reach it by DNS rebinding.",
    )
    airflow_username: str = Field(default="", description="Airflow user the console triggers runs as.")
    airflow_password: SecretStr | None = Field(default=None, description="That user's password.")
    secure_cookie: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind an HTTPS proxy)."
    )

    @property
    def logins(self) -> list[auth.Login]:
        return auth.parse_logins(self.keys.get_secret_value())
