"""The registry on SQLite and on the running PostgreSQL server: same code, same behaviour."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import terminate_connections
from sqlalchemy import inspect

from doctune.config import Settings
from doctune.registry import VERSION_TABLE, Registry, migrate


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    url = (
        f"sqlite:///{tmp_path / 'registry.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    migrate(url)
    migrate(url)  # idempotent
    return Registry(url)


def _dataset(registry: Registry, version: int) -> None:
    registry.add_dataset(
        library="acme",
        version=version,
        commit="c" * 40,
        surface_hash="s",
        content_hash="h",
        path="/d",
        n_train=3,
        n_eval=1,
    )


def _adapter(registry: Registry, tmp_path: Path, run_name: str) -> int:
    run = registry.start_run("acme", 1, "tiny-llama", {"max_steps": 1}, str(tmp_path))
    staged = tmp_path / "adapters" / f".staging-{run_name}"
    staged.mkdir(parents=True)
    (staged / "adapter_config.json").write_text("{}")
    return registry.add_adapter(
        library="acme",
        training_run_id=run.id,
        dataset_version=1,
        base_model="tiny-llama",
        staged=staged,
        rank=8,
        sha256="x",
    ).version


def test_schema_has_own_version_table(registry: Registry) -> None:
    tables = set(inspect(registry.engine).get_table_names())
    assert {"snapshots", "dataset_versions", "adapters", "aliases", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # never collides with Airflow's table in a shared database


def test_dataset_versions_are_unique_per_library(registry: Registry) -> None:
    _dataset(registry, 1)
    assert registry.next_dataset_version("acme") == 2
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        _dataset(registry, 1)
    assert registry.latest_dataset("acme").version == 1  # type: ignore[union-attr]


def test_adapter_versions_and_folders_move_together(registry: Registry, tmp_path: Path) -> None:
    assert _adapter(registry, tmp_path, "a") == 1
    assert _adapter(registry, tmp_path, "b") == 2
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == ["v1", "v2"]
    assert registry.adapter("acme", 2).path == str(tmp_path / "adapters" / "v2")


def test_failed_registration_leaves_no_folder_and_no_row(registry: Registry, tmp_path: Path) -> None:
    _adapter(registry, tmp_path, "a")
    staged = tmp_path / "adapters" / ".staging-dup"
    staged.mkdir()
    with pytest.raises(Exception, match="(?i)unique|duplicate"):  # the same training run registered twice
        registry.add_adapter(
            library="acme",
            training_run_id=1,
            dataset_version=1,
            base_model="tiny-llama",
            staged=staged,
            rank=8,
            sha256="x",
        )
    assert staged.is_dir() and not (tmp_path / "adapters" / "v2").exists()
    assert [a.version for a in registry.adapters("acme")] == [1]


def test_promote_moves_alias_and_keeps_history(registry: Registry, tmp_path: Path) -> None:
    for run in "abc":
        _adapter(registry, tmp_path, run)
    assert registry.promote("acme", 1) is None
    assert registry.promote("acme", 2) == 1
    assert registry.promote("acme", 3) == 2
    assert registry.aliases() == {"acme": "acme@v3"}
    assert [a.status for a in registry.adapters("acme")] == ["retired", "previous", "production"]
    assert [(d.adapter_version, d.previous_version) for d in registry.deployments("acme")] == [
        (1, None),
        (2, 1),
        (3, 2),
    ]


def test_parallel_deploys_leave_one_production_adapter_and_a_true_history(registry: Registry, tmp_path: Path) -> None:
    """Deploys from several processes at once (each its own engine), first ones and moves both: the history chains
    (each deployment replaced the one before it) and exactly one adapter is production, the alias's."""
    versions = [_adapter(registry, tmp_path, f"run{i}") for i in range(8)]
    start = threading.Barrier(len(versions))

    def deploy(version: int) -> int | None:
        own = Registry(registry.url)  # another worker's connection pool
        start.wait()
        return own.promote("acme", version)

    with ThreadPoolExecutor(len(versions)) as pool:
        previous = list(pool.map(deploy, versions))
    history = [(d.adapter_version, d.previous_version) for d in registry.deployments("acme")]
    assert len(history) == len(versions) and previous.count(None) == 1
    assert all(prev == history[i - 1][0] for i, (_, prev) in enumerate(history) if i), history
    production = [a.version for a in registry.adapters("acme") if a.status == "production"]
    assert production == [history[-1][0]] and registry.aliases() == {"acme": f"acme@v{history[-1][0]}"}
    assert [a.version for a in registry.adapters("acme") if a.status == "previous"] == [history[-2][0]]


def test_failed_deployment_is_recorded_without_moving_alias(registry: Registry, tmp_path: Path) -> None:
    _adapter(registry, tmp_path, "a")
    _adapter(registry, tmp_path, "b")
    registry.promote("acme", 1)
    registry.record_failed_deployment("acme", 2, "smoke test failed")
    assert registry.aliases() == {"acme": "acme@v1"}
    assert registry.deployments("acme")[-1].status == "failed"


def test_rollback_is_recorded_as_such(registry: Registry, tmp_path: Path) -> None:
    for run in "ab":
        _adapter(registry, tmp_path, run)
    registry.promote("acme", 1)
    registry.promote("acme", 2)
    assert registry.promote("acme", 1, action="rollback") == 2
    assert registry.aliases() == {"acme": "acme@v1"}
    assert [a.status for a in registry.adapters("acme")] == ["production", "previous"]
    assert registry.deployments("acme")[-1].action == "rollback"


def test_lease_is_exclusive_expires_and_can_replace_a_dead_holder(registry: Registry) -> None:
    from sqlalchemy import update

    from doctune.registry import Lease

    assert registry.acquire_lease("train:acme", "a", ttl=60)
    assert registry.acquire_lease("train:acme", "a", ttl=60)  # its own lease again: a renewal
    assert not registry.acquire_lease("train:acme", "b", ttl=60)
    assert registry.renew_lease("train:acme", "a", ttl=60) and not registry.renew_lease("train:acme", "b", ttl=60)
    with registry.transaction() as s:  # a holder that stopped renewing: its lease runs out
        s.execute(update(Lease).where(Lease.name == "train:acme").values(expires_at=0.0))
    assert registry.acquire_lease("train:acme", "b", ttl=60)
    assert not registry.renew_lease("train:acme", "a", ttl=60)  # "a" learns it lost the lease
    registry.release_lease("train:acme", "a")  # not a's to release
    assert registry.lease("train:acme").holder == "b"
    assert registry.acquire_lease("train:acme", "c", ttl=60, replacing="b")  # b is known to be dead
    registry.release_lease("train:acme", "c")
    assert registry.lease("train:acme") is None
    assert registry.acquire_lease("train:other", "d", ttl=60)  # one lease per name


def test_a_worker_replaces_only_its_own_dead_holders(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Containers on the host's network share its hostname, not their process ids: a worker named by
    DOCTUNE_WORKER_NAME judges only holders of that name, so it never takes a live lease of another container for
    a pid that merely does not exist in its own."""
    import subprocess

    from doctune.errors import DoctuneError

    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid no longer exists here
    monkeypatch.setenv("DOCTUNE_WORKER_NAME", "gpu-worker")

    def hold() -> str:
        with registry.exclusive("train:acme", 60, busy="held", why="retry later", on_lost=lambda: None):
            return registry.lease("train:acme").holder  # type: ignore[union-attr]

    assert registry.acquire_lease("train:acme", f"default-worker:{dead.pid}:0000", ttl=60)
    with pytest.raises(DoctuneError, match="held"):
        hold()
    registry.release_lease("train:acme", f"default-worker:{dead.pid}:0000")
    assert registry.acquire_lease("train:acme", f"gpu-worker:{dead.pid}:0000", ttl=60)  # this worker's, before
    assert hold().startswith("gpu-worker:")  # a dead holder of its own is replaced at once
    assert registry.lease("train:acme") is None


@pytest.mark.integration
def test_the_registry_survives_a_postgres_restart(postgres_url: str, tmp_path: Path) -> None:
    """Every connection of the pool dies (what a server restart does to clients): the next call reconnects, and the
    data written before is all there, once."""
    migrate(postgres_url)
    registry = Registry(postgres_url)
    _dataset(registry, 1)
    version = _adapter(registry, tmp_path, "before")
    registry.promote("acme", version)
    assert registry.engine.pool.checkedin() >= 1  # pooled connections that the "restart" will kill

    killed = terminate_connections(registry.engine.url.database)
    assert killed >= 1

    assert registry.aliases() == {"acme": f"acme@v{version}"}
    with pytest.raises(Exception, match="duplicate key|UNIQUE"):
        _dataset(registry, 1)  # a retried task cannot write the same version twice
    assert [d.version for d in [registry.latest_dataset("acme")] if d] == [1]
    assert [a.version for a in registry.adapters("acme")] == [version]


def test_a_process_opens_each_registry_once_and_a_forked_child_its_own(tmp_path: Path) -> None:
    """Every stage, request and CLI step asks ``Registry.open``: one engine and one migration per process, and a
    forked worker (Airflow's task runner forks) never reuses its parent's pooled connections."""
    settings = Settings(home=tmp_path)
    first = Registry.open(settings)
    assert Registry.open(settings) is first and first.migrated
    assert Registry.open(Settings(home=tmp_path / "other")) is not first
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports whether it got a new handle, on a fresh migrated engine
        child = Registry.open(settings)
        os.write(write, b"new" if child is not first and child.engine is not first.engine else b"same")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"new"
