"""Operators and hooks without a scheduler: the checks a run's first task makes, and Connections as settings."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from doctune.config import LibraryConfig, Settings, train_form, write_library
from operators import CheckParamsOperator, GitHook, VLLMHook


@pytest.fixture
def acme(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> LibraryConfig:
    monkeypatch.setenv("DOCTUNE_ADMINS", "alice, root")
    library = LibraryConfig(name="acme", repo_url="file:///srv/acme", base_model="tiny-llama", preset="tiny-llama")
    write_library(settings, library)
    return library


def _check(library: LibraryConfig, user: str | None = "bob", **form: Any) -> dict[str, Any]:
    values = {key: field["default"] for key, field in train_form(library).items()} | form
    operator = CheckParamsOperator(task_id="check_params", library=library.name, form=values)
    return operator.execute({"dag_run": SimpleNamespace(triggering_user_name=user)})


def test_the_form_defaults_pass_and_reach_the_trainer(acme: LibraryConfig) -> None:
    checked = _check(acme, max_steps=7, learning_rate=0.002)
    assert checked["train"]["max_steps"] == 7 and checked["train"]["learning_rate"] == 0.002
    assert checked["train"]["lora_rank"] == 8  # the preset's value, through the form's default
    assert checked["base_model"] == "tiny-llama"
    assert checked["skipped_gate_by"] is None and checked["force_rebuild"] is False


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"lora_rank": 4, "lora_alpha": 64}, "lora_alpha=64 is more than 4x lora_rank=4"),
        ({"learning_rate": 0.5}, "learning_rate: Input should be less than or equal to 0.01"),
        ({"lora_rank": 64, "lora_alpha": 64}, "above the serving limit --max-lora-rank 16"),
    ],
)
def test_bad_values_fail_the_first_task_naming_the_field(acme: LibraryConfig, form: dict, message: str) -> None:
    with pytest.raises(AirflowFailException, match=message):
        _check(acme, **form)


def test_only_admins_may_skip_the_gate(acme: LibraryConfig) -> None:
    with pytest.raises(AirflowFailException, match="skip_gate is for admins only: user bob is not in DOCTUNE_ADMINS"):
        _check(acme, user="bob", skip_gate=True)
    with pytest.raises(AirflowFailException, match=r"user \(scheduler\)"):
        _check(acme, user=None, skip_gate=True)
    assert _check(acme, user="alice", skip_gate=True)["skipped_gate_by"] == "alice"


def test_the_vllm_connection_overrides_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DOCTUNE_VLLM", "http://:key-from-connection@vllm.internal:8000")
    settings = VLLMHook().settings(Settings())
    assert settings.vllm_url == "http://vllm.internal:8000"
    assert settings.vllm_headers == {"Authorization": "Bearer key-from-connection"}
    assert "key-from-connection" not in repr(settings)
    monkeypatch.setenv("AIRFLOW_CONN_TLS_VLLM", '{"conn_type": "http", "host": "https://gpu-1.example", "port": 443}')
    assert VLLMHook("tls_vllm").settings(Settings()).vllm_url == "https://gpu-1.example:443"


def test_without_the_connection_doctune_settings_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_DOCTUNE_VLLM", raising=False)
    assert VLLMHook().settings(Settings()).vllm_url == Settings().vllm_url


def test_git_credentials_come_from_their_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ACME_GIT", "http://ci-bot:tok-123@github.example")
    credentials = GitHook("acme_git").get_conn()
    assert (credentials.username, credentials.password) == ("ci-bot", "tok-123")
    assert "tok-123" not in repr(credentials)
    from doctune.errors import DoctuneError

    with pytest.raises(DoctuneError, match="no such Connection: create it"):
        GitHook("missing_git").get_conn()


def test_a_failure_is_one_summary_line(caplog: pytest.LogCaptureFixture) -> None:
    from operators.common import log_failure

    ti = SimpleNamespace(dag_id="doctune_retrain__acme", task_id="train", try_number=2, max_tries=3)
    error = RuntimeError("lora_rank=64 is above the serving limit: lower lora_rank")
    log_failure({"ti": ti, "exception": error})
    lines = [r.getMessage() for r in caplog.records if r.name == "doctune"]
    assert lines == [
        "doctune: doctune_retrain__acme.train failed (try 2 of 4): RuntimeError: lora_rank=64 is above the serving "
        "limit: lower lora_rank"
    ]
