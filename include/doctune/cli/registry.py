"""``doctune db`` (the registry's schema) and ``doctune status`` (what the registry holds for a library)."""

from __future__ import annotations

import typer
from rich.table import Table

from doctune.cli.common import Library, out
from doctune.config import Settings, get_library

db_app = typer.Typer(help="The registry database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the registry schema (idempotent)."""
    from doctune.registry import Registry

    settings = Settings()
    Registry.open(settings)
    out.print(f"registry at {settings.registry_url.split('@')[-1]} is up to date")


def status_cmd(library: Library) -> None:
    """Datasets, adapters and the stable name of a library."""
    from doctune.registry import Registry

    settings = Settings()
    get_library(settings, library)
    registry = Registry.open(settings)
    production = registry.production(library)
    latest = registry.latest_dataset(library)
    out.print(
        f"[bold]{library}[/]: production {production.served_name if production else 'base model'}; "
        f"latest dataset {f'v{latest.version} ({latest.commit[:12]})' if latest else 'none'}"
    )
    table = Table("adapter", "dataset", "status", "base model", "path")
    for adapter in registry.adapters(library):
        table.add_row(
            f"v{adapter.version}", f"v{adapter.dataset_version}", adapter.status, adapter.base_model, adapter.path
        )
    out.print(table)
