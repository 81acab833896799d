"""One manual rollback DAG per library: point the stable model name back at an earlier adapter version.

Library configs are read from ``DOCTUNE_LIBRARIES_DIR`` without importing anything heavy. A broken config is
reported by its retrain DAG; here it simply gets no rollback DAG.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from doctune.config import Settings, library_files, load_library
from doctune.errors import DoctuneError
from operators import RollbackOperator

DOC_MD = """
### Roll back `{name}`

Moves the stable model name `{name}` back to the previous production adapter, or to the version given in
*to_version*. The previous version stays loaded in vLLM after every deploy, so this takes well under a second
and is recorded in the registry. If it fails, production is unchanged: the task log says why (for example,
nothing to roll back to).
"""

for _path in library_files(Settings()):
    try:
        _library = load_library(_path)
    except DoctuneError:
        continue
    with DAG(
        dag_id=f"doctune_rollback__{_library.name}",
        description=f"Serve an earlier adapter of {_library.name}",
        doc_md=DOC_MD.format(name=_library.name),
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "doctune", "retries": 1, "retry_delay": timedelta(seconds=30)},
        params={
            "to_version": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                description="Adapter version to serve; empty = the previous production one.",
            )
        },
        render_template_as_native_obj=True,
        tags=["doctune", _library.name, "rollback"],
    ) as _dag:
        RollbackOperator(task_id="rollback", library=_library.name, to_version="{{ params.to_version }}")
    globals()[_dag.dag_id] = _dag
