"""Deploy (load ``<lib>@v<N>`` -> smoke test -> move the alias), rollback, ``reconcile`` (load what a restarted
server lacks) and model management by hand: load or unload one version, ``server_status``."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.names import AdapterStatus, parse_served_name, served_name
from doctune.registry import Registry
from doctune.serve.adapters import check_adapter, ensure_loaded, preflight, rollback_target, serving_set
from doctune.serve.client import vllm_client
from doctune.serve.processes import ensure_vllm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployResult:
    library: str
    version: int
    previous: int | None
    served_name: str
    smoke_answer: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def deploy(
    library: LibraryConfig, settings: Settings, version: int, *, skipped_gate_by: str | None = None
) -> DeployResult:
    """Preflight, load ``<lib>@v<N>``, smoke-test it, then move the stable name; on failure nothing moves.

    ``skipped_gate_by`` names the admin who deployed without the gate's approval; the registry records it."""
    registry = Registry.open(settings)
    adapter = registry.adapter(library.name, version)
    name = served_name(library.name, version)
    if adapter.status == AdapterStatus.PRODUCTION:
        # A retried deploy task: promoting again would make the version its own rollback target.
        client = ensure_vllm(settings, library)
        ensure_loaded(client, name, adapter.path)
        log.info("%s already answers with %s: nothing to do", library.name, name)
        return DeployResult(library.name, version, rollback_target(registry, library.name), name, "")
    try:
        preflight(settings, library, adapter)
        client = ensure_vllm(settings, library)
        ensure_loaded(client, name, adapter.path)
        answer = client.chat(name, f"In one sentence, what is {library.import_name}?", max_tokens=32)
        if not answer:  # content quality is the gate's job; this proves the server can generate with it
            raise DoctuneError(f"smoke test of {name} returned no tokens")
    except DoctuneError as exc:
        registry.record_failed_deployment(library.name, version, str(exc))
        raise
    if skipped_gate_by:
        previous = registry.promote(
            library.name, version, "skip-gate", f"deployed without the evaluation gate by {skipped_gate_by}"
        )
    else:
        previous = registry.promote(library.name, version)
    keep = {name} | ({served_name(library.name, previous)} if previous else set())
    for model in client.models():
        version_of = parse_served_name(model["id"])
        if model.get("parent") and version_of and version_of[0] == library.name and model["id"] not in keep:
            client.unload_adapter(model["id"])
            log.info("unloaded %s (older than the rollback version)", model["id"])
    log.info(
        "%s now answers with %s (previous: %s)",
        library.name,
        name,
        served_name(library.name, previous) if previous else "base model",
    )
    return DeployResult(library.name, version, previous, name, answer)


def reconcile(settings: Settings) -> list[str]:
    """Load the production and rollback adapters a running server lacks; returns the names it loaded.

    A vLLM container restarts with its static command line and no adapters; the gateway calls this at start
    and whenever the server answers "no such model", so stable names come back without a redeploy. An adapter
    that fails its checks is logged and skipped: the other libraries still come back.
    """
    client = vllm_client(settings)
    models = client.models()
    loaded = {m["id"] for m in models}
    registry = Registry.open(settings)
    done = []
    for base in (m["id"] for m in models if not m.get("parent")):
        for adapter in serving_set(registry, base):
            if adapter.served_name in loaded:
                continue
            try:
                check_adapter(settings, adapter)
                client.load_adapter(adapter.served_name, adapter.path)
            except DoctuneError as exc:
                log.error("reconcile: %s stays unloaded: %s", adapter.served_name, exc)
                continue
            log.info("reconcile: loaded %s (%s)", adapter.served_name, adapter.status)
            done.append(adapter.served_name)
    return done


def load_version(library: LibraryConfig, settings: Settings, version: int) -> str:
    """Model management: load one registered version by hand (after the same checks as deploy)."""
    adapter = Registry.open(settings).adapter(library.name, version)
    preflight(settings, library, adapter)
    ensure_loaded(ensure_vllm(settings, library), adapter.served_name, adapter.path)
    return str(adapter.served_name)


def unload_version(library: LibraryConfig, settings: Settings, version: int) -> str:
    """Model management: unload one version by hand; never the one the stable name answers with."""
    adapter = Registry.open(settings).adapter(library.name, version)
    if adapter.status == AdapterStatus.PRODUCTION:
        raise DoctuneError(
            f"{adapter.served_name} answers for the stable name {library.name}: roll back or deploy another "
            "version first"
        )
    if adapter.status == "previous":
        log.warning("unloading %s: a rollback to it will have to load it again", adapter.served_name)
    vllm_client(settings).unload_adapter(adapter.served_name)
    return str(adapter.served_name)


def server_status(settings: Settings) -> dict[str, Any]:
    """Model management: server health, the base model, every loaded adapter with its registry record."""
    client = vllm_client(settings)
    if not client.healthy():
        return {"vllm": settings.vllm_url, "healthy": False, "models": []}
    registry = Registry.open(settings)
    aliases = registry.aliases()
    models = []
    for model in client.models():
        row: dict[str, Any] = {"name": model["id"], "base": model.get("parent") or None}
        version_of = parse_served_name(model["id"])
        if model.get("parent") and version_of:
            library, version = version_of
            adapter = registry.adapter(library, version)
            evaluation = registry.latest_evaluation(library, adapter.version)
            row |= {
                "status": adapter.status,
                "dataset": adapter.dataset_version,
                "stable_name": library if aliases.get(library) == model["id"] else None,
                "heldout_loss": (evaluation.metrics.get("candidate", {}).get("heldout_loss") if evaluation else None),
            }
        models.append(row)
    return {"vllm": settings.vllm_url, "healthy": True, "models": models}


def rollback(library: LibraryConfig, settings: Settings, to: int | None = None) -> DeployResult:
    """Move the stable name back: to the previous production version, or to ``to``. The previous version is kept
    loaded by deploy, so this is one registry transaction (plus a load if ``to`` is older)."""
    registry = Registry.open(settings)
    current = registry.production(library.name)
    if current is None:
        raise DoctuneError(
            f"nothing to roll back: {library.name} has no production adapter yet (it answers with the base model)"
        )
    if to is None:
        to = rollback_target(registry, library.name)
        if to is None:
            raise DoctuneError(
                f"nothing to roll back to: v{current.version} is the only version {library.name} has "
                "served; name one with --to, or deploy another version"
            )
    if to == current.version:
        raise DoctuneError(f"v{to} is already in production for {library.name}")
    target = registry.adapter(library.name, to)
    if target.status == "rejected":
        log.warning("rolling back to v%d, which the gate rejected", to)
    preflight(settings, library, target)
    client = ensure_vllm(settings, library)
    ensure_loaded(client, target.served_name, target.path)
    previous_version = registry.promote(library.name, to, action="rollback")
    log.info("%s rolled back to %s (from v%s)", library.name, target.served_name, previous_version)
    return DeployResult(library.name, to, previous_version, target.served_name, "")
