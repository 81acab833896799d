"""One sync DAG per library config: pull the repository often, publish a dataset version when the docs changed.

Library configs are YAML files in ``DOCTUNE_LIBRARIES_DIR``; this file only reads them (no model, torch or
git import here), so parsing stays fast. A broken config is reported by its retrain DAG.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronTriggerTimetable

from operators import CorpusOperator, SyncOperator
from operators.common import DEFAULT_ARGS, dataset_asset, libraries

DOC_MD = """
### Sync `{name}`

Every `{schedule}` ({tz}): `sync` fetches `{repo}` (branch `{branch}`) and checks out the commit's tree, whose doc
surface (docs, docstrings, public signatures, examples, tests, changelog) `build_corpus` fingerprints. When it
changed since the latest dataset version, `build_corpus` builds a new dataset version and publishes the Asset
`doctune://{name}/dataset`, which starts `doctune_retrain__{name}`. Unchanged: `build_corpus` is skipped and
nothing else runs.

- **sync failed** (repository unreachable, branch gone, credentials refused): the log's last line names the cause
  and the fix. Production keeps serving; the next run tries again.
- **build_corpus failed**: no dataset version is written (versions are written atomically); read its log.
"""

for _name, _library, _error in libraries():
    if _library is None:
        continue
    _schedule = _library.sync_schedule
    with DAG(
        dag_id=f"doctune_sync__{_name}",
        description=f"Pull {_name} and publish a dataset version when its docs change",
        doc_md=DOC_MD.format(
            name=_name,
            repo=_library.repo_url,
            branch=_library.branch,
            schedule=_schedule or "manual trigger",
            tz=_library.timezone,
        ),
        schedule=CronTriggerTimetable(_schedule, timezone=_library.timezone) if _schedule else None,
        # No start_date: a new or unpaused DAG waits for its next scheduled time instead of running for the
        # latest past one at once.
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        render_template_as_native_obj=True,
        tags=["doctune", _name, "sync"],
    ) as _dag:
        _sync = SyncOperator(
            task_id="sync",
            library=_name,
            doc_md="Fetches the repository and checks out the commit's tree. **Failed**: the log says why; "
            "production keeps serving.",
        )
        _sync >> CorpusOperator(
            task_id="build_corpus",
            library=_name,
            commit="{{ ti.xcom_pull(task_ids='sync')['commit'] }}",
            tree="{{ ti.xcom_pull(task_ids='sync')['path'] }}",
            outlets=[dataset_asset(_name)],
            doc_md="Builds and publishes a dataset version when the docs changed; **skipped** when they did not.",
        )
    globals()[_dag.dag_id] = _dag
