"""Hooks: doctune's external endpoints configured by Airflow Connections, so URLs and secrets live in Airflow's
connection store (encrypted with the Fernet key, masked in logs) instead of in DAG files or task arguments."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:
    from doctune.config import Settings
    from doctune.serve import VLLMClient
    from doctune.sources import GitCredentials

log = logging.getLogger(__name__)


def _url(conn: Any) -> str:
    """The base URL of an HTTP connection: ``host`` may be a bare name (scheme in ``schema``, as the HTTP
    provider reads it) or a whole URL."""
    host = conn.host or ""
    if "://" in host:
        parts = urlsplit(host)
        scheme, netloc = parts.scheme, parts.netloc
    else:
        scheme, netloc = conn.schema or "http", host
    if conn.port and ":" not in netloc:
        netloc = f"{netloc}:{conn.port}"
    return f"{scheme}://{netloc}"


class VLLMHook(BaseHook):
    """The vLLM server doctune loads adapters into: URL from the Connection, API key in its password field.

    Without the Connection, doctune's own settings (DOCTUNE_VLLM_URL, DOCTUNE_VLLM_API_KEY) apply, so a
    local `airflow dags test` needs no setup.
    """

    conn_name_attr = "vllm_conn_id"
    default_conn_name = "doctune_vllm"
    conn_type = "http"
    hook_name = "doctune vLLM"

    def __init__(self, vllm_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.vllm_conn_id = vllm_conn_id

    def settings(self, settings: Settings) -> Settings:
        """``settings`` with vLLM's URL and key taken from the Connection, when it exists."""
        from pydantic import SecretStr

        try:
            conn = self.get_connection(self.vllm_conn_id)
        except AirflowNotFoundException:
            log.info("no Airflow Connection %r: using DOCTUNE_VLLM_URL %s", self.vllm_conn_id, settings.vllm_url)
            return settings
        update: dict[str, Any] = {"vllm_url": _url(conn)}
        if conn.password:
            update["vllm_api_key"] = SecretStr(conn.password)
        return settings.model_copy(update=update)

    def get_conn(self) -> VLLMClient:
        from doctune.config import Settings
        from doctune.serve import vllm_client

        return vllm_client(self.settings(Settings()))


class GitHook(BaseHook):
    """Credentials for a library's https repository: login = user name, password = token.

    git receives them through an askpass program's environment (``doctune.sources``): never in the URL, a
    command line, the rendered task fields or a log.
    """

    conn_name_attr = "git_conn_id"
    default_conn_name = "doctune_git"
    conn_type = "http"
    hook_name = "doctune git credentials"

    def __init__(self, git_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.git_conn_id = git_conn_id

    def get_conn(self) -> GitCredentials:
        from doctune.errors import DoctuneError
        from doctune.sources import GitCredentials

        try:
            conn = self.get_connection(self.git_conn_id)
        except AirflowNotFoundException:
            raise DoctuneError(
                f"the library config names git_conn_id {self.git_conn_id!r}, but Airflow has no such Connection: "
                "create it (login = git user, password = token) or remove git_conn_id"
            ) from None
        return GitCredentials(conn.login or "git", conn.password or "")
