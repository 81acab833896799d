"""Shared fixtures. Airflow and doctune read their configuration at first import, so the environment is set
here, before any test module imports either of them."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SESSION = Path(tempfile.mkdtemp(prefix="doctune-tests-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(SESSION / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{SESSION / 'airflow' / 'airflow.db'}",
        "DOCTUNE_HOME": str(SESSION / "home"),
        # Built models are deterministic: cache them across runs in the git-ignored state folder.
        "DOCTUNE_MODELS_DIR": str(REPO / ".doctune" / "test-models"),
        # Ports of their own, so a demo left running on the default ports never answers a test.
        "DOCTUNE_VLLM_URL": "http://127.0.0.1:18000",
        "DOCTUNE_GATEWAY_URL": "http://127.0.0.1:18100",
    }
)
os.environ.pop("DOCTUNE_DATABASE_URL", None)
os.environ.pop("DOCTUNE_LIBRARIES_DIR", None)

from demo import DEMO_NAME, prepare_demo_repo  # noqa: E402
from doctune.config import LibraryConfig, Settings, TrainParams, write_library  # noqa: E402

POSTGRES_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
# What tests leave for a person or a later step to look at (screenshots, run timings); git-ignored.
ARTIFACTS = Path(os.environ.get("DOCTUNE_TEST_ARTIFACTS") or REPO / "test-artifacts")
# Figures tests measure (DAG parse time per file), printed at the end of the run rather than asserted.
FIGURES: dict[str, str] = {}
# The first retrain of both deployments, as processes (test_topology) and in containers (test_stack): the same form
# values on the demo library's corpus, every training parameter that differs between their configs given, so that
# the two runs' task times compare (they are written to ARTIFACTS and benchmarks/results/stack.json).
COMPARED_RETRAIN: dict[str, Any] = {
    "max_steps": 30,
    "learning_rate": 1e-3,
    "batch_size": 4,
    "lora_rank": 8,
    "lora_alpha": 16,
    "max_seq_length": 256,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``stack`` tests are deselected unless ``make stack-test`` asks for them (DOCTUNE_STACK_TEST=1): they need the
    images it builds first, and CI runs them that way, after the suite.

    After the shuffle (pytest-randomly, whose hook runs first): a ``scenario`` module's tests go back to the order
    they are written in, in the place the shuffle gave the module. Its steps share a stack that takes minutes to
    start, and a later step starts from what an earlier one left (the first retrain makes v1 production)."""
    if os.environ.get("DOCTUNE_STACK_TEST") != "1":
        stack = [item for item in items if item.get_closest_marker("stack")]
        if stack:
            config.hook.pytest_deselected(items=stack)
            items[:] = [item for item in items if not item.get_closest_marker("stack")]
    by_module: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        if item.get_closest_marker("scenario"):
            by_module.setdefault(item.nodeid.split("::")[0], []).append(index)
    for indexes in by_module.values():
        written = sorted((items[index] for index in indexes), key=lambda item: item.location[1])
        for index, item in zip(indexes, written, strict=True):
            items[index] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Each phase's report on the test item (``item.report_call``...), so that a fixture can tell, after the test,
    whether it failed: the stack test then prints what its services were doing."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("doctune figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


# CI runs on a root machine of this kind with every environment built by `make test`: there a missing capability
# is a broken setup to report, not a test to skip.
IN_CI = bool(os.environ.get("CI"))


def skip_unless_ci(reason: str) -> None:
    """Skip on a developer machine that cannot run the test; fail in CI, which can."""
    if IN_CI:
        pytest.fail(f"CI must run this test, but: {reason}")
    pytest.skip(reason)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with a fresh, empty DOCTUNE_HOME (SQLite registry inside it)."""
    monkeypatch.setenv("DOCTUNE_HOME", str(tmp_path / "home"))
    return Settings()


def tiny_library(settings: Settings, repo: Path, name: str = DEMO_NAME, **train: object) -> LibraryConfig:
    params = {"max_steps": 20, "learning_rate": 1e-3, "save_steps": 10} | train
    library = LibraryConfig(
        name=name,
        package=DEMO_NAME,
        repo_url=repo.as_uri(),
        base_model="tiny-llama",
        sync_schedule=None,
        retrain_schedule=None,
        train=TrainParams.model_validate(params),
    )
    write_library(settings, library)
    return library


@pytest.fixture
def demo_repo(settings: Settings) -> Path:
    """The bundled demo library as a real git repository (pulled by file:// URL like any remote)."""
    return prepare_demo_repo(settings)


@pytest.fixture
def library(settings: Settings, demo_repo: Path) -> LibraryConfig:
    return tiny_library(settings, demo_repo)


@pytest.fixture(scope="session")
def server_settings() -> Iterator[Settings]:
    """The session's settings, shared by every test that talks to the (one) vLLM server and gateway.

    Servers start on first use (``ensure_vllm``/``ensure_gateway``) and are stopped when the session ends.
    """
    from doctune.serve import stop_server

    settings = Settings()
    yield settings
    for name in ("gateway", "vllm"):
        stop_server(settings, name)


def terminate_connections(database: str) -> int:
    """Kill every connection to ``database`` on the running server, as a PostgreSQL restart does to its clients."""
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar()
    admin.dispose()
    return int(killed or 0)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the running PostgreSQL server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"doctune_test_{os.getpid()}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def task_seconds(task_instances: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Each finished task's wall time, from the Airflow REST API's task instances (task id -> instance)."""
    from datetime import datetime

    def seconds(ti: dict[str, Any]) -> float:
        start, end = (datetime.fromisoformat(ti[key]) for key in ("start_date", "end_date"))
        return round((end - start).total_seconds(), 1)

    return {task: seconds(ti) for task, ti in task_instances.items() if ti.get("start_date") and ti.get("end_date")}


def compared_run(task_instances: dict[str, dict[str, Any]], dataset: Any) -> dict[str, Any]:
    """A COMPARED_RETRAIN run's figures: its form values, its dataset (the demo repository's commit, which is the same
    everywhere, and its size) and each task's wall time."""
    return {
        "conf": COMPARED_RETRAIN,
        "dataset": {"commit": dataset.commit, "n_train": dataset.n_train, "n_eval": dataset.n_eval},
        "task_s": task_seconds(task_instances),
    }


def task_log_event(line: str) -> str:
    """An Airflow task log line (JSON) as its time and event, cut short, for a failure message."""
    with contextlib.suppress(ValueError, TypeError):
        record = json.loads(line)
        return f"{record.get('timestamp', '')[11:19]} {record.get('event', '')}"[:300]
    return line[:300]
