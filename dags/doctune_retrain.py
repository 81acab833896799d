"""One retrain DAG per library config: sync -> corpus -> train -> evaluate -> deploy.

Library configs are YAML files in ``DOCTUNE_LIBRARIES_DIR``; this file only reads them (no model, torch or
vLLM import here), so parsing stays fast. A config with an error gets a DAG whose single task fails with
that error, so one broken file never hides the other libraries.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowFailException

from doctune.config import LibraryConfig, Settings, library_files, load_library
from doctune.errors import DoctuneError
from operators import CorpusOperator, DeployOperator, EvaluateOperator, SyncOperator, TrainOperator

DOC_MD = """
### Retrain `{name}`

Pulls `{repo}` (branch `{branch}`), and when its docs, docstrings or public signatures changed since the
last dataset version: builds a new dataset version, trains a LoRA adapter on `{base}`, evaluates it against
production and the base model, and, if the gate passes, serves it under the stable model name `{name}`.

- **Unchanged docs**: `build_corpus` is skipped and so is everything after it. Tick *force_rebuild* to retrain anyway.
- **Gate rejected**: `deploy` is skipped; production keeps serving. The reasons are in the `evaluate` log.
- **A failure** leaves production untouched. Read the failed task's last log line: it names the cause and the fix.
"""

DEFAULT_ARGS = {"owner": "doctune", "retries": 1, "retry_delay": timedelta(minutes=1)}


def _pull(task_id: str, key: str) -> str:
    """A field of an upstream task's returned dict (rendered as a native object: ints stay ints)."""
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['{key}'] }}}}"


def _train_form(library: LibraryConfig) -> dict[str, Param]:
    p = library.train
    return {
        "force_rebuild": Param(
            False, type="boolean", description="Build a dataset and retrain even if docs are unchanged."
        ),
        "learning_rate": Param(
            p.learning_rate, type="number", minimum=1e-6, maximum=1e-2, description="Peak learning rate."
        ),
        "batch_size": Param(p.batch_size, type="integer", minimum=1, maximum=256, description="Examples per step."),
        "max_steps": Param(p.max_steps, type="integer", minimum=1, maximum=100000, description="Optimizer steps."),
        "lora_rank": Param(p.lora_rank, type="integer", minimum=1, maximum=256, description="LoRA rank r."),
        "lora_alpha": Param(
            p.lora_alpha, type="integer", minimum=1, maximum=1024, description="LoRA alpha (1-2x rank)."
        ),
        "lora_dropout": Param(p.lora_dropout, type="number", minimum=0, maximum=0.9, description="LoRA dropout."),
        "max_seq_length": Param(
            p.max_seq_length, type="integer", minimum=32, maximum=32768, description="Max tokens per example."
        ),
    }


def retrain_dag(library: LibraryConfig) -> DAG:
    with DAG(
        dag_id=f"doctune_retrain__{library.name}",
        description=f"Keep the model fluent in {library.name}",
        doc_md=DOC_MD.format(name=library.name, repo=library.repo_url, branch=library.branch, base=library.base_model),
        schedule=library.schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params=_train_form(library),
        render_template_as_native_obj=True,
        tags=["doctune", library.name],
    ) as dag:
        sync = SyncOperator(task_id="sync", library=library.name)
        corpus = CorpusOperator(
            task_id="build_corpus",
            library=library.name,
            commit=_pull("sync", "commit"),
            force="{{ params.force_rebuild }}",
        )
        overrides = {k: f"{{{{ params.{k} }}}}" for k in _train_form(library) if k != "force_rebuild"}
        train = TrainOperator(
            task_id="train",
            library=library.name,
            dataset_version=_pull("build_corpus", "version"),
            overrides=overrides,
            queue="gpu",
            pool="gpu",
            execution_timeout=timedelta(hours=6),
        )
        # Held-out loss runs the model in-process: evaluation belongs on the GPU worker too.
        evaluate = EvaluateOperator(
            task_id="evaluate",
            library=library.name,
            adapter_version=_pull("train", "adapter_version"),
            queue="gpu",
            pool="gpu",
        )
        deploy = DeployOperator(
            task_id="deploy",
            library=library.name,
            adapter_version=_pull("train", "adapter_version"),
            decision=_pull("evaluate", "decision"),
        )
        sync >> corpus >> train >> evaluate >> deploy
    return dag


def broken_config_dag(name: str, error: str) -> DAG:
    def fail() -> None:
        raise AirflowFailException(error)

    with DAG(
        dag_id=f"doctune_retrain__{name}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        doc_md=f"**This library's config is invalid**: {error}",
        default_args=DEFAULT_ARGS,
        tags=["doctune", "broken-config"],
    ) as dag:
        PythonOperator(task_id="config_error", python_callable=fail, retries=0)
    return dag


for _path in library_files(Settings()):
    try:
        _dag = retrain_dag(load_library(_path))
    except DoctuneError as _exc:
        _dag = broken_config_dag(_path.stem.lower(), str(_exc))
    globals()[_dag.dag_id] = _dag
