"""The registry: every artefact traceable to a commit (SQLite by default, PostgreSQL in production).

One SQLAlchemy schema for both databases, migrated by alembic (``doctune db upgrade``). The registry is doctune's
own database, separate from Airflow's metadata DB: Airflow tasks on real workers may not use Airflow's ORM.

- ``tables``: the schema (one model per table) and ``migrate``;
- ``store``: ``Registry``, the handle (one per process and database), one transaction per public method;
- ``leases``: named expiring locks (one sync per workspace, one training per library);
- ``artefacts``: the version folders the rows point at (a dataset version's rows, an adapter folder's digest).
"""

from doctune.registry.artefacts import adapter_digest, load_rows
from doctune.registry.store import Registry
from doctune.registry.tables import (
    VERSION_TABLE,
    Adapter,
    Base,
    DatasetVersion,
    Evaluation,
    Lease,
    Snapshot,
    TrainingRun,
    migrate,
)

__all__ = [
    "VERSION_TABLE",
    "Adapter",
    "Base",
    "DatasetVersion",
    "Evaluation",
    "Lease",
    "Registry",
    "Snapshot",
    "TrainingRun",
    "adapter_digest",
    "load_rows",
    "migrate",
]
