"""What the DAG files share: library discovery at parse time, Assets, default arguments, the failure summary.

Everything here is cheap to import (pydantic and YAML only), because every DAG file imports it on every parse.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset

from doctune.config import LibraryConfig, Settings, library_files, load_library
from doctune.errors import DoctuneError

log = logging.getLogger("doctune")


def libraries() -> Iterator[tuple[str, LibraryConfig | None, str]]:
    """(name, config, error) for each library config file; a broken file gives its error instead of a config,
    so that one library's typo never hides the others' DAGs."""
    settings = Settings()
    for path in library_files(settings):
        try:
            yield path.stem.lower(), load_library(path, settings.base_model), ""
        except DoctuneError as exc:
            yield path.stem.lower(), None, str(exc)


def dataset_asset(library: str) -> Asset:
    """A new dataset version of ``library``: published by its sync DAG, scheduling its retrain DAG."""
    return Asset(name=f"doctune_dataset__{library}", uri=f"doctune://{library}/dataset", group="doctune")


def adapter_asset(library: str) -> Asset:
    """The adapter serving under ``library``'s stable name: updated by deploy and rollback."""
    return Asset(name=f"doctune_adapter__{library}", uri=f"doctune://{library}/adapter", group="doctune")


def log_failure(context: Any) -> None:
    """One line an operator can act on: which library, stage and try, and the error (which names the fix)."""
    ti = context["ti"]
    error = context.get("exception")
    log.error(
        "doctune: %s.%s failed (try %s of %s): %s%s",
        ti.dag_id,
        ti.task_id,
        ti.try_number,
        (ti.max_tries or 0) + 1,
        type(error).__name__ if error else "unknown error",
        f": {error}" if error else "",
    )


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "doctune",
    "retries": 1,
    "retry_delay": timedelta(minutes=1),
    "on_failure_callback": log_failure,
}
