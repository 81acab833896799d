"""One manual rollback DAG per library: point the stable model name back at an earlier adapter version.

Library configs are read from ``DOCTUNE_LIBRARIES_DIR`` without importing anything heavy. A broken config is
reported by its retrain DAG; here it simply gets no rollback DAG.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators import RollbackOperator
from operators.common import DEFAULT_ARGS, adapter_asset, libraries

DOC_MD = """
### Roll back `{name}`

Moves the stable model name `{name}` back to the previous production adapter, or to the version given in
*to_version*. The previous version stays loaded in vLLM after every deploy, so this takes well under a second
and is recorded in the registry. If it fails, production is unchanged: the task log says why (for example,
nothing to roll back to).
"""

for _name, _library, _error in libraries():
    if _library is None:
        continue
    with DAG(
        dag_id=f"doctune_rollback__{_name}",
        description=f"Serve an earlier adapter of {_name}",
        doc_md=DOC_MD.format(name=_name),
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS | {"retry_delay": timedelta(seconds=30)},
        params={
            "to_version": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                description="Adapter version to serve; empty = the previous production one.",
            )
        },
        render_template_as_native_obj=True,
        tags=["doctune", _name, "rollback"],
    ) as _dag:
        RollbackOperator(
            task_id="rollback",
            library=_name,
            to_version="{{ params.to_version }}",
            outlets=[adapter_asset(_name)],
            doc_md="Moves the stable name. **Failed**: nothing changed; the log says why.",
        )
    globals()[_dag.dag_id] = _dag
