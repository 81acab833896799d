"""The registry's one handle per process: each public method is one transaction, so a crash never leaves half a
version behind."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from doctune.config import Settings
from doctune.errors import DoctuneError
from doctune.names import AdapterStatus, RunStatus, served_name
from doctune.registry.leases import Leases
from doctune.registry.tables import (
    Adapter,
    Alias,
    ConsoleAction,
    DatasetVersion,
    Deployment,
    Evaluation,
    Snapshot,
    TrainingRun,
    migrate,
    sqlite_pragmas,
    utcnow,
)

# One handle per database and process: the engine (and its connection pool) is built and the schema migrated once,
# however many stages, requests or CLI steps the process runs. Keyed by pid as well, because a forked Airflow task
# must not share its parent's pooled connections.
_OPEN: dict[tuple[str, int], Registry] = {}
_OPENING = threading.Lock()


class _AliasMoved(Exception):
    """The alias changed after it was read: the move is retried from its new position."""


class Registry(Leases):
    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.migrated = False

    @classmethod
    def open(cls, settings: Settings, *, upgrade: bool = True) -> Registry:
        """The process's handle on ``settings.registry_url``, migrated to the latest schema (unless ``upgrade`` is
        False) the first time it is asked for."""
        key = (settings.registry_url, os.getpid())
        with _OPENING:
            registry = _OPEN.get(key) or cls(settings.registry_url)
            if upgrade and not registry.migrated:
                try:
                    migrate(settings.registry_url)
                except OperationalError as exc:
                    raise DoctuneError(
                        "cannot reach the registry database "
                        f"{registry.engine.url.render_as_string(hide_password=True)}: {exc.orig}; check "
                        "DOCTUNE_DATABASE_URL and that the server is running"
                    ) from exc
                registry.migrated = True
            _OPEN[key] = registry
        return registry

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- snapshots and datasets ---------------------------------------------------------------------------

    def record_snapshot(self, library: str, commit: str, surface_hash: str) -> Snapshot:
        with self.transaction() as s:
            snapshot = Snapshot(library=library, commit=commit, surface_hash=surface_hash)
            s.add(snapshot)
        return snapshot

    def latest_snapshot(self, library: str) -> Snapshot | None:
        with self.transaction() as s:
            return s.scalars(
                select(Snapshot).where(Snapshot.library == library).order_by(Snapshot.id.desc()).limit(1)
            ).first()

    def latest_dataset(self, library: str) -> DatasetVersion | None:
        with self.transaction() as s:
            return s.scalars(
                select(DatasetVersion)
                .where(DatasetVersion.library == library)
                .order_by(DatasetVersion.version.desc())
                .limit(1)
            ).first()

    def dataset(self, library: str, version: int) -> DatasetVersion:
        with self.transaction() as s:
            found = s.scalars(
                select(DatasetVersion).where(DatasetVersion.library == library, DatasetVersion.version == version)
            ).first()
        if found is None:
            raise DoctuneError(f"dataset version v{version} of {library!r} is not registered; see `doctune status`")
        return found

    def datasets(self, library: str) -> list[DatasetVersion]:
        """Every dataset version of ``library``, oldest first."""
        with self.transaction() as s:
            return list(
                s.scalars(
                    select(DatasetVersion).where(DatasetVersion.library == library).order_by(DatasetVersion.version)
                )
            )

    def next_dataset_version(self, library: str) -> int:
        with self.transaction() as s:
            current = s.scalar(select(func.max(DatasetVersion.version)).where(DatasetVersion.library == library))
        return (current or 0) + 1

    def add_dataset(self, **fields: Any) -> DatasetVersion:
        with self.transaction() as s:
            dataset = DatasetVersion(**fields)
            s.add(dataset)
        return dataset

    # -- training runs and adapters ------------------------------------------------------------------------

    def start_run(
        self, library: str, dataset_version: int, base_model: str, params: dict[str, Any], output_dir: str
    ) -> TrainingRun:
        with self.transaction() as s:
            run = TrainingRun(
                library=library,
                dataset_version=dataset_version,
                base_model=base_model,
                params=params,
                output_dir=output_dir,
            )
            s.add(run)
        return run

    def mark_interrupted(self, output_dir: str) -> int:
        """Runs into ``output_dir`` still marked running belong to a killed process: a new try takes over."""
        with self.transaction() as s:
            stale = list(
                s.scalars(
                    select(TrainingRun).where(
                        TrainingRun.output_dir == output_dir, TrainingRun.status == RunStatus.RUNNING
                    )
                )
            )
            for run in stale:
                run.status, run.finished_at = RunStatus.INTERRUPTED, utcnow()
        return len(stale)

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        steps: int | None = None,
        train_loss: float | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction() as s:
            run = s.get_one(TrainingRun, run_id)
            run.status, run.steps, run.train_loss, run.error = status, steps, train_loss, error
            run.finished_at = utcnow()

    def runs(self, library: str, status: RunStatus | None = None) -> list[TrainingRun]:
        with self.transaction() as s:
            query = select(TrainingRun).where(TrainingRun.library == library)
            if status:
                query = query.where(TrainingRun.status == status)
            return list(s.scalars(query.order_by(TrainingRun.id)))

    def run(self, run_id: int) -> TrainingRun:
        with self.transaction() as s:
            return s.get_one(TrainingRun, run_id)

    def add_adapter(
        self,
        *,
        library: str,
        training_run_id: int,
        dataset_version: int,
        base_model: str,
        staged: Path,
        rank: int,
        sha256: str,
    ) -> Adapter:
        """Give a staged adapter folder its version number and register it, in one transaction.

        The rename happens inside the transaction: if it fails nothing is registered, and if the insert fails
        the folder is moved back, so a folder ``v<N>`` exists exactly when the registry knows it.
        """
        final: Path | None = None
        try:
            with self.transaction() as s:
                current = s.scalar(select(func.max(Adapter.version)).where(Adapter.library == library))
                version = (current or 0) + 1
                final = staged.parent / f"v{version}"
                adapter = Adapter(
                    library=library,
                    version=version,
                    training_run_id=training_run_id,
                    dataset_version=dataset_version,
                    base_model=base_model,
                    path=str(final),
                    sha256=sha256,
                    rank=rank,
                )
                s.add(adapter)
                s.flush()  # a concurrent writer that took this version fails here, before anything moves
                staged.rename(final)
        except Exception:
            if final is not None and final.exists() and not staged.exists():
                final.rename(staged)
            raise
        return adapter

    def adapter(self, library: str, version: int) -> Adapter:
        with self.transaction() as s:
            found = s.scalars(select(Adapter).where(Adapter.library == library, Adapter.version == version)).first()
        if found is None:
            raise DoctuneError(f"adapter v{version} of {library!r} is not registered; see `doctune status {library}`")
        return found

    def adapter_for_output(self, output_dir: str) -> Adapter | None:
        """The adapter of a successful run that trained into ``output_dir`` (same dataset and parameters)."""
        with self.transaction() as s:
            return s.scalars(
                select(Adapter)
                .join(TrainingRun, Adapter.training_run_id == TrainingRun.id)
                .where(TrainingRun.output_dir == output_dir, TrainingRun.status == RunStatus.SUCCEEDED)
                .order_by(Adapter.version.desc())
                .limit(1)
            ).first()

    def adapters(self, library: str) -> list[Adapter]:
        with self.transaction() as s:
            return list(s.scalars(select(Adapter).where(Adapter.library == library).order_by(Adapter.version)))

    def production(self, library: str) -> Adapter | None:
        with self.transaction() as s:
            alias = s.get(Alias, library)
            if alias is None:
                return None
            return s.scalars(
                select(Adapter).where(Adapter.library == library, Adapter.version == alias.adapter_version)
            ).first()

    def set_adapter_status(self, library: str, version: int, status: AdapterStatus) -> None:
        with self.transaction() as s:
            adapter = s.scalars(select(Adapter).where(Adapter.library == library, Adapter.version == version)).one()
            adapter.status = status

    # -- evaluations and deployments -----------------------------------------------------------------------

    def add_evaluation(
        self,
        *,
        library: str,
        adapter_version: int,
        production_version: int | None,
        metrics: dict[str, Any],
        decision: str,
        reasons: list[str],
    ) -> Evaluation:
        with self.transaction() as s:
            evaluation = Evaluation(
                library=library,
                adapter_version=adapter_version,
                production_version=production_version,
                metrics=json.loads(json.dumps(metrics)),
                decision=decision,
                reasons="\n".join(reasons),
            )
            s.add(evaluation)
        return evaluation

    def latest_evaluation(self, library: str, adapter_version: int) -> Evaluation | None:
        with self.transaction() as s:
            return s.scalars(
                select(Evaluation)
                .where(Evaluation.library == library, Evaluation.adapter_version == adapter_version)
                .order_by(Evaluation.id.desc())
                .limit(1)
            ).first()

    def promote(self, library: str, version: int, action: str = "promote", detail: str | None = None) -> int | None:
        """Point the stable name at ``version`` and update statuses, atomically. Returns the previous version.

        The alias moves by compare-and-swap (an update conditional on the version read, or an insert that loses
        on the primary key): of two deploys at once, the second sees the first's move and goes again from there, so
        exactly one adapter is production and every deployment names the version it really replaced."""
        while True:
            try:
                with self.transaction() as s:
                    alias = s.get(Alias, library)
                    previous = alias.adapter_version if alias else None
                    served = served_name(library, version)
                    if alias is None:
                        s.add(Alias(library=library, served_name=served, adapter_version=version))
                        s.flush()
                    else:
                        moved = cast(
                            CursorResult[Any],
                            s.execute(
                                update(Alias)
                                .where(Alias.library == library, Alias.adapter_version == previous)
                                .values(served_name=served, adapter_version=version)
                            ),
                        ).rowcount
                        if not moved:
                            raise _AliasMoved
                    for adapter in s.scalars(select(Adapter).where(Adapter.library == library)):
                        if adapter.version == version:
                            adapter.status = AdapterStatus.PRODUCTION
                        elif adapter.version == previous:
                            adapter.status = AdapterStatus.PREVIOUS
                        elif adapter.status in (AdapterStatus.PRODUCTION, AdapterStatus.PREVIOUS):
                            adapter.status = AdapterStatus.RETIRED
                    s.add(
                        Deployment(
                            library=library,
                            adapter_version=version,
                            previous_version=previous,
                            action=action,
                            status="succeeded",
                            detail=detail,
                        )
                    )
                return previous
            except (_AliasMoved, IntegrityError):
                continue  # another deploy moved the alias between our read and our write: read it again

    def record_failed_deployment(self, library: str, version: int, detail: str) -> None:
        with self.transaction() as s:
            alias = s.get(Alias, library)
            s.add(
                Deployment(
                    library=library,
                    adapter_version=version,
                    previous_version=alias.adapter_version if alias else None,
                    action="promote",
                    status="failed",
                    detail=detail,
                )
            )

    def aliases(self) -> dict[str, str]:
        with self.transaction() as s:
            return {a.library: a.served_name for a in s.scalars(select(Alias))}

    def record_action(
        self, *, user: str, role: str, action: str, library: str | None, outcome: str, detail: str
    ) -> ConsoleAction:
        with self.transaction() as s:
            row = ConsoleAction(user=user, role=role, action=action, library=library, outcome=outcome, detail=detail)
            s.add(row)
            s.flush()
            return row

    def actions(self, library: str | None = None, limit: int = 50) -> list[ConsoleAction]:
        """The latest console actions, newest first (of one library, or all)."""
        query = select(ConsoleAction).order_by(ConsoleAction.id.desc()).limit(limit)
        with self.transaction() as s:
            return list(s.scalars(query.where(ConsoleAction.library == library) if library else query))

    def deployments(self, library: str) -> list[Deployment]:
        with self.transaction() as s:
            return list(s.scalars(select(Deployment).where(Deployment.library == library).order_by(Deployment.id)))
