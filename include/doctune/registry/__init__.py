"""The registry: every artefact traceable to a commit (SQLite by default, PostgreSQL in production).

One SQLAlchemy schema for both databases, migrated by alembic (``doctune db upgrade``). Each public method
is one transaction, so a crash never leaves half a version behind. The registry is doctune's own database,
separate from Airflow's metadata DB: Airflow tasks on real workers may not use Airflow's ORM.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CursorResult,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from doctune.config import Settings
from doctune.errors import DoctuneError
from doctune.names import AdapterStatus, RunStatus, served_name

log = logging.getLogger(__name__)

# Alembic's default version table would collide with Airflow's when both share one PostgreSQL database.
VERSION_TABLE = "doctune_alembic_version"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class Snapshot(Base):
    """A commit of a library as sync saw it, with the fingerprint of its doc surface."""

    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str] = mapped_column(String(64), index=True)
    commit: Mapped[str] = mapped_column(String(64))
    surface_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("library", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    commit: Mapped[str] = mapped_column(String(64))
    surface_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    n_train: Mapped[int] = mapped_column(Integer)
    n_eval: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingRun(Base):
    __tablename__ = "training_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str] = mapped_column(String(64), index=True)
    dataset_version: Mapped[int] = mapped_column(Integer)
    base_model: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    output_dir: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Adapter(Base):
    """A trained LoRA adapter. status (an AdapterStatus): candidate -> production | rejected; production ->
    previous -> retired."""

    __tablename__ = "adapters"
    __table_args__ = (UniqueConstraint("library", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    training_run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id"), unique=True)
    dataset_version: Mapped[int] = mapped_column(Integer)
    base_model: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=AdapterStatus.CANDIDATE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def served_name(self) -> str:
        return served_name(self.library, self.version)


class Evaluation(Base):
    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str] = mapped_column(String(64), index=True)
    adapter_version: Mapped[int] = mapped_column(Integer)
    production_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Deployment(Base):
    """The stable name's history: each row moved ``<library>`` to one adapter version (or failed to)."""

    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library: Mapped[str] = mapped_column(String(64), index=True)
    adapter_version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alias(Base):
    """Where the stable name points now; the gateway reads this table on every request."""

    __tablename__ = "aliases"
    library: Mapped[str] = mapped_column(String(64), primary_key=True)
    served_name: Mapped[str] = mapped_column(String(128))
    adapter_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Lease(Base):
    """An exclusive claim that expires unless its holder renews it: a task process can outlive its killed worker,
    so a retry must not train beside the try that is still running; a holder that stopped renewing lets go."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    # Seconds since the epoch: compared in SQL the same way on SQLite and PostgreSQL, unlike timezone-aware dates.
    expires_at: Mapped[float] = mapped_column(Float)


class ConsoleAction(Base):
    """What a console user did (or tried: a viewer's refused attempt is recorded too), under their name."""

    __tablename__ = "console_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))  # train, stop, resume, promote, override, rollback, load, unload
    library: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # done, failed, refused
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the gateway read while a task writes; the timeout waits out a writer instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(url: str) -> None:
    """Bring the registry schema to the latest alembic revision (idempotent)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin and revision is noise in logs
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` ("host:pid:nonce") is a process of this host that no longer exists: its lease is stale at
    once (a kill -9 here), without waiting for it to expire. A reused pid only makes us wait for the expiry."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _AliasMoved(Exception):
    """The alias changed after it was read: the move is retried from its new position."""


class Registry:
    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings, *, upgrade: bool = True) -> Registry:
        registry = cls(settings.registry_url)
        if upgrade:
            try:
                migrate(settings.registry_url)
            except OperationalError as exc:
                raise DoctuneError(
                    f"cannot reach the registry database {registry.engine.url.render_as_string(hide_password=True)}:"
                    f" {exc.orig}; check DOCTUNE_DATABASE_URL and that the server is running"
                ) from exc
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

    # -- leases ------------------------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: float, *, replacing: str | None = None) -> bool:
        """Take ``name`` for ``ttl`` seconds if it is free, expired, already ``holder``'s or ``replacing``'s (a
        holder known to be dead). Atomic on both databases: a conditional update, else an insert that loses to a
        concurrent one on the primary key."""
        now = time.time()
        with self.transaction() as s:
            free = or_(Lease.expires_at < now, Lease.holder.in_([holder, replacing or holder]))
            taken = cast(
                CursorResult[Any],
                s.execute(update(Lease).where(Lease.name == name, free).values(holder=holder, expires_at=now + ttl)),
            ).rowcount
        if taken:
            return True
        try:
            with self.transaction() as s:
                s.add(Lease(name=name, holder=holder, expires_at=now + ttl))
        except IntegrityError:
            return False
        return True

    @contextmanager
    def exclusive(self, name: str, ttl: float, *, busy: str, why: str, on_lost: Callable[[], object]) -> Iterator[None]:
        """Hold lease ``name`` for the whole block, renewing it every third of ``ttl``; ``on_lost`` is called (from
        the renewing thread) if it is lost, so the holder can stop. Raises DoctuneError ("<busy> (<holder>, <n> s
        left unless renewed): <why>") when someone else holds it. A holder that is a dead process of this host
        is replaced at once."""
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if not self._take_lease(name, holder, ttl):
            other = self.lease(name)
            left = f"{other.expires_at - time.time():.0f} s" if other else "a moment"
            raise DoctuneError(
                f"{busy} ({other.holder if other else 'just released'}, {left} left unless renewed): {why}"
            )
        released = threading.Event()

        def heartbeat() -> None:
            renewed = time.monotonic()
            while not released.wait(ttl / 3):
                try:
                    if self.renew_lease(name, holder, ttl):
                        renewed = time.monotonic()
                        continue
                    reason = "another holder took it"
                except Exception as exc:  # a database hiccup: keep trying until the lease would have run out
                    log.warning("could not renew the lease %s: %s", name, exc)
                    if time.monotonic() - renewed < ttl:
                        continue
                    reason = "it could not be renewed in time"
                log.error("lost the lease %s (%s): stopping", name, reason)
                on_lost()
                return

        thread = threading.Thread(target=heartbeat, name=f"lease-{name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            released.set()
            thread.join()
            self.release_lease(name, holder)

    def _take_lease(self, name: str, holder: str, ttl: float) -> bool:
        if self.acquire_lease(name, holder, ttl):
            return True
        other = self.lease(name)
        if other is None:  # released between the two calls
            return self.acquire_lease(name, holder, ttl)
        if _dead_here(other.holder):
            log.warning("taking over %s from %s, a process that no longer exists", name, other.holder)
            return self.acquire_lease(name, holder, ttl, replacing=other.holder)
        return False

    def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Extend ``holder``'s lease; False if it is no longer theirs (it expired and someone else took it)."""
        with self.transaction() as s:
            result = cast(
                CursorResult[Any],
                s.execute(
                    update(Lease).where(Lease.name == name, Lease.holder == holder).values(expires_at=time.time() + ttl)
                ),
            )
        return bool(result.rowcount)

    def release_lease(self, name: str, holder: str) -> None:
        with self.transaction() as s:
            s.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))

    def lease(self, name: str) -> Lease | None:
        with self.transaction() as s:
            return s.get(Lease, name)

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
