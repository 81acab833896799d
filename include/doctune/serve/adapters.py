"""Which adapter versions a server holds and whether one may be loaded: ``serving_set`` (what a server of one base
model must hold), ``rollback_target``, ``check_adapter`` and ``preflight`` (the checks before any load) and
``ensure_loaded``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.names import AdapterStatus
from doctune.registry.artefacts import adapter_digest
from doctune.serve.client import VLLMClient, base_served_name

log = logging.getLogger(__name__)


def ensure_loaded(client: VLLMClient, name: str, path: str) -> None:
    if name not in {m["id"] for m in client.models()}:
        client.load_adapter(name, path)
        log.info("loaded %s from %s", name, path)


def check_adapter(settings: Settings, adapter: Any) -> None:
    """Refuse an adapter folder that is not the one registered, or whose rank this server cannot serve."""
    folder = Path(adapter.path)
    root = (settings.home / "adapters").resolve()
    if not folder.resolve().is_relative_to(root):
        # Only folders doctune wrote may reach vLLM's loader (which reads any path it is given).
        raise DoctuneError(f"adapter path {folder} is outside the adapter root {root}: refusing to load it")
    if not (folder / "adapter_config.json").is_file():
        raise DoctuneError(f"adapter folder {folder} is missing or has no adapter_config.json; retrain it")
    if adapter_digest(folder) != adapter.sha256:
        raise DoctuneError(f"adapter {folder} changed since it was registered (checksum mismatch); retrain it")
    settings.check_servable_rank(adapter.rank)


def preflight(settings: Settings, library: LibraryConfig, adapter: Any) -> None:
    """``check_adapter``, and the adapter was trained on the base model ``library`` is served on."""
    check_adapter(settings, adapter)
    if adapter.base_model != library.base_model:
        raise DoctuneError(
            f"adapter v{adapter.version} was trained on {adapter.base_model!r}, but "
            f"{library.name} is served on {library.base_model!r}"
        )


def rollback_target(registry: Any, library: str) -> int | None:
    """The version a rollback goes back to: the production version before the current one."""
    previous = [a.version for a in registry.adapters(library) if a.status == AdapterStatus.PREVIOUS]
    return previous[-1] if previous else None


def serving_set(registry: Any, base: str) -> list[Any]:
    """What a server of base model ``base`` must hold: every library's production and rollback adapters."""
    return [
        adapter
        for library in registry.aliases()
        for adapter in registry.adapters(library)
        if adapter.status in (AdapterStatus.PRODUCTION, AdapterStatus.PREVIOUS)
        and base_served_name(adapter.base_model) == base
    ]
