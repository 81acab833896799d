"""DAG integrity: every DAG file imports cleanly, fast, without heavy libraries, and follows house rules."""

from pathlib import Path

import pytest
from conftest import FIGURES

from doctune.bench import parse_dag_file
from doctune.config import LibraryConfig, Settings, write_library

REPO = Path(__file__).resolve().parents[1]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))


@pytest.fixture
def dagbag(settings: Settings):  # noqa: ANN201 - DagBag's type lives in airflow
    from airflow.dag_processing.dagbag import DagBag

    write_library(settings, LibraryConfig(name="acme", repo_url="file:///srv/acme"))
    write_library(settings, LibraryConfig(name="widgets", repo_url="file:///srv/widgets", schedule="0 2 * * *"))
    (settings.libraries_path / "typo.yaml").write_text("name: typo\nrepo_ulr: file:///x\n")
    return DagBag(dag_folder=str(REPO / "dags"), known_pools={"default_pool", "gpu"})


def test_no_import_errors_and_one_dag_per_library(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        "doctune_retrain__acme",
        "doctune_retrain__widgets",
        "doctune_retrain__typo",
        "doctune_rollback__acme",
        "doctune_rollback__widgets",
    }


def test_house_rules(dagbag) -> None:  # noqa: ANN001
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "doctune" in dag.tags, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.retries >= (0 if task.task_id == "config_error" else 1), (dag_id, task.task_id)


def test_retrain_dag_shape(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.dags["doctune_retrain__widgets"]
    assert [t.task_id for t in dag.topological_sort()] == ["sync", "build_corpus", "train", "evaluate", "deploy"]
    train = dag.get_task("train")
    assert (train.queue, train.pool) == ("gpu", "gpu")
    assert dag.max_active_runs == 1
    assert {"learning_rate", "batch_size", "max_steps", "lora_rank", "lora_alpha", "force_rebuild"} <= set(dag.params)


def test_a_broken_config_only_breaks_its_own_dag(dagbag) -> None:  # noqa: ANN001
    broken = dagbag.dags["doctune_retrain__typo"]
    assert "repo_ulr: Extra inputs are not permitted" in broken.doc_md
    assert [t.task_id for t in broken.tasks] == ["config_error"]


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_parsing_imports_nothing_heavy(dag_file: Path, settings: Settings) -> None:
    write_library(settings, LibraryConfig(name="acme", repo_url="file:///srv/acme"))
    result = parse_dag_file(dag_file)
    FIGURES[f"parse time of dags/{dag_file.name}"] = f"{result['seconds']:.3f} s"
    assert result["heavy"] == []


def test_rollback_dag_is_manual_with_an_optional_version(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.dags["doctune_rollback__acme"]
    assert dag.schedule is None or str(dag.timetable.summary) in ("None", "never")
    assert [t.task_id for t in dag.tasks] == ["rollback"]
    assert dag.params.get_param("to_version").value is None
