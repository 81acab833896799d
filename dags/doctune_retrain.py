"""One retrain DAG per library config: check parameters -> sync -> corpus -> train -> evaluate -> deploy.

Scheduled on the library's dataset Asset (published by its sync DAG) or its nightly cron, whichever comes first,
and triggered by hand from the UI with the parameter form. Library configs are YAML files in
``DOCTUNE_LIBRARIES_DIR``; this file only reads them (no model, torch or vLLM import here), so parsing stays
fast. A config with an error gets a DAG whose single task fails with that error, so one broken file never hides
the other libraries.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param
from airflow.sdk.exceptions import AirflowFailException

from doctune.config import LibraryConfig, train_form
from operators import CheckParamsOperator, CorpusOperator, DeployOperator, EvaluateOperator, SyncOperator, TrainOperator
from operators.common import DEFAULT_ARGS, adapter_asset, dataset_asset, libraries

DOC_MD = """
### Retrain `{name}`

Runs when `doctune_sync__{name}` publishes a new dataset version of `{repo}`, nightly at `{cron}` ({tz}), or when
triggered with the parameter form. It trains a LoRA adapter on `{base}` from the latest dataset version, evaluates
it against production and the base model, and, if the gate passes, serves it under the stable model name `{name}`.

- **check_params failed**: a form value is out of range or inconsistent (the log names the field); trigger again.
- **Nothing new** (the latest dataset version was already trained with these parameters and evaluated): `train`
  is skipped and so is everything after it. Tick *force_rebuild* to rebuild the dataset, *reevaluate* to
  evaluate and deploy the existing adapter again.
- **train failed or was stopped**: the retry resumes from the last checkpoint; marking the task failed in the UI
  stops training after the current step with a checkpoint. Only one training per library runs at a time.
- **Gate rejected**: `deploy` is skipped; production keeps serving. The reasons are in the `evaluate` log and in
  `doctune eval show {name}`. An admin (DOCTUNE_ADMINS) can tick *skip_gate*; the registry records who did.
- **Any failure** leaves production untouched. The failed task's last log line names the cause and the fix.
"""


def _pull(task_id: str, key: str) -> str:
    """A field of an upstream task's returned dict (rendered as a native object: ints stay ints)."""
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['{key}'] }}}}"


def retrain_dag(library: LibraryConfig) -> DAG:
    name = library.name
    cron = library.retrain_schedule
    form = train_form(library)
    with DAG(
        dag_id=f"doctune_retrain__{name}",
        description=f"Keep the model fluent in {name}",
        doc_md=DOC_MD.format(
            name=name,
            repo=library.repo_url,
            cron=cron or "(no nightly run)",
            tz=library.timezone,
            base=library.base_model,
        ),
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(cron, timezone=library.timezone), assets=[dataset_asset(name)]
        )
        if cron
        else [dataset_asset(name)],
        # No start_date: a new or unpaused DAG waits for its next scheduled time instead of running for the
        # latest past one at once.
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params={key: Param(**field) for key, field in form.items()},
        render_template_as_native_obj=True,
        tags=["doctune", name, "retrain"],
    ) as dag:
        check = CheckParamsOperator(
            task_id="check_params",
            library=name,
            form={key: f"{{{{ params.{key} }}}}" for key in form},
            retries=0,
            doc_md="Validates the form against TrainParams and the server's limits; skip_gate only for "
            "DOCTUNE_ADMINS. **Failed**: the log names the field; trigger again with a valid value.",
        )
        sync = SyncOperator(
            task_id="sync",
            library=name,
            doc_md="Fetches the repository. **Failed**: unreachable repository, missing branch or refused "
            "credentials (the log says which); production keeps serving.",
        )
        corpus = CorpusOperator(
            task_id="build_corpus",
            library=name,
            commit=_pull("sync", "commit"),
            tree=_pull("sync", "path"),
            force=_pull("check_params", "force_rebuild"),
            skip_unchanged=False,
            doc_md="Builds a dataset version if the docs changed (or force_rebuild), else passes the latest on. "
            "**Failed**: nothing is written; the log names the file or setting at fault.",
        )
        train = TrainOperator(
            task_id="train",
            library=name,
            dataset_version=_pull("build_corpus", "version"),
            overrides=_pull("check_params", "train"),
            base_model=_pull("check_params", "base_model"),
            reevaluate=_pull("check_params", "reevaluate"),
            inlets=[dataset_asset(name)],
            queue="gpu",
            pool="gpu",
            execution_timeout=timedelta(hours=6),
            retries=3,
            retry_delay=timedelta(seconds=30),
            doc_md="LoRA training on the gpu worker, one per library at a time. **Failed or stopped**: the retry "
            "resumes from the last checkpoint; mark it failed to stop with a checkpoint.",
        )
        # Held-out loss runs the model in-process: evaluation belongs on the GPU worker too.
        evaluate = EvaluateOperator(
            task_id="evaluate",
            library=name,
            adapter_version=_pull("train", "adapter_version"),
            queue="gpu",
            pool="gpu",
            execution_timeout=timedelta(hours=2),
            doc_md="Runs the suite on base, production and candidate and records the gate's decision and reasons "
            "(`doctune eval show`). **Failed**: usually vLLM unreachable; production is untouched.",
        )
        deploy = DeployOperator(
            task_id="deploy",
            library=name,
            adapter_version=_pull("train", "adapter_version"),
            decision=_pull("evaluate", "decision"),
            skipped_gate_by=_pull("check_params", "skipped_gate_by"),
            outlets=[adapter_asset(name)],
            doc_md="Loads the approved adapter, smoke-tests it and moves the stable name. **Skipped**: the gate "
            "rejected it. **Failed**: the alias did not move; the registry records why.",
        )
        check >> sync >> corpus >> train >> evaluate >> deploy
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


for _name, _library, _error in libraries():
    _dag = retrain_dag(_library) if _library is not None else broken_config_dag(_name, _error)
    globals()[_dag.dag_id] = _dag
