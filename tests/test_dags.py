"""DAG integrity: every DAG file imports cleanly, fast, without heavy libraries, and follows house rules."""

from pathlib import Path

import pytest
from conftest import FIGURES

from benchmarks.pipeline import parse_dag_file
from doctune.config import LibraryConfig, Settings, write_library

REPO = Path(__file__).resolve().parents[1]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))


@pytest.fixture
def dagbag(settings: Settings):  # noqa: ANN201 - DagBag's type lives in airflow
    from airflow.dag_processing.dagbag import DagBag

    write_library(settings, LibraryConfig(name="acme", repo_url="file:///srv/acme"))
    write_library(
        settings,
        LibraryConfig(
            name="widgets",
            repo_url="file:///srv/widgets",
            sync_schedule="*/5 * * * *",
            retrain_schedule="30 3 * * *",
            timezone="Europe/Berlin",
        ),
    )
    (settings.libraries_path / "typo.yaml").write_text("name: typo\nrepo_ulr: file:///x\n")
    return DagBag(dag_folder=str(REPO / "dags"), known_pools={"default_pool", "gpu"})


def test_no_import_errors_and_one_dag_per_library(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        "doctune_sync__acme",
        "doctune_sync__widgets",
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
            assert task.doc_md or task.task_id == "config_error", (dag_id, task.task_id)
            # Only tasks that judge input fail for good: a bad config or form value does not get better on retry.
            judges_input = task.task_id in ("config_error", "check_params")
            assert task.retries >= (0 if judges_input else 1), (dag_id, task.task_id)


def test_retrain_dag_shape(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.dags["doctune_retrain__widgets"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "check_params",
        "sync",
        "build_corpus",
        "train",
        "evaluate",
        "deploy",
    ]
    for task_id in ("train", "evaluate"):
        task = dag.get_task(task_id)
        assert (task.queue, task.pool) == ("gpu", "gpu"), task_id
        assert task.execution_timeout is not None
    assert dag.get_task("train").retries >= 2
    assert dag.get_task("check_params").retries == 0  # bad parameters do not get better on retry
    assert {dag.get_task(t).queue for t in ("check_params", "sync", "build_corpus", "deploy")} == {"default"}
    assert dag.max_active_runs == 1
    assert [a.uri for a in dag.get_task("deploy").outlets] == ["doctune://widgets/adapter"]


def test_retrain_runs_on_a_new_dataset_or_nightly(dagbag) -> None:  # noqa: ANN001
    from airflow.sdk import AssetOrTimeSchedule

    timetable = dagbag.dags["doctune_retrain__widgets"].timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert timetable.timetable.expression == "30 3 * * *"
    assert str(timetable.timetable.timezone) == "Europe/Berlin"
    assert [a.uri for a in timetable.asset_condition.objects] == ["doctune://widgets/dataset"]
    # The default nightly time, when a config says nothing.
    assert dagbag.dags["doctune_retrain__acme"].timetable.timetable.expression == "0 2 * * *"


def test_sync_dag_publishes_the_dataset_asset(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.dags["doctune_sync__widgets"]
    assert [t.task_id for t in dag.topological_sort()] == ["sync", "build_corpus"]
    assert [a.uri for a in dag.get_task("build_corpus").outlets] == ["doctune://widgets/dataset"]
    assert dag.timetable.expression == "*/5 * * * *"
    assert dagbag.dags["doctune_sync__acme"].timetable.expression == "*/15 * * * *"
    assert dag.max_active_runs == 1


def test_the_form_is_trainparams(dagbag) -> None:  # noqa: ANN001
    """Types, bounds, help text and defaults of the trigger form come from TrainParams and the library config."""
    params = dagbag.dags["doctune_retrain__widgets"].params
    assert {
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
        "base_model",
        "force_rebuild",
        "reevaluate",
        "skip_gate",
    } == set(params)
    rank = params.get_param("lora_rank")
    assert rank.value == 16 and rank.schema["minimum"] == 1 and rank.schema["maximum"] == 256
    assert "LoRA rank" in rank.description
    assert params.get_param("num_epochs").schema["type"] == ["null", "number"]
    assert params.get_param("time_budget_minutes").value is None
    assert params.get_param("skip_gate").value is False


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
