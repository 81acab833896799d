"""Serve: the vLLM admin client, local server processes, and deploy (load -> smoke test -> move the alias).

Every adapter version is loaded under an immutable name ``<lib>@v<N>``; the stable name ``<lib>`` is an alias
in the registry that the gateway resolves per request. Moving the alias is one registry transaction, so a
request already in flight finishes on the version it started with, and nothing is ever reloaded in place.

- ``client``: ``VLLMClient`` (vLLM's OpenAI API and runtime LoRA admin endpoints), ``base_served_name`` and
  ``ask`` (through the gateway with the OpenAI client);
- ``processes``: the local vLLM and gateway processes: ``ensure_vllm``, ``ensure_gateway``, ``stop_server``;
- ``adapters``: which versions a server must hold (``serving_set``, ``rollback_target``) and the checks before a load;
- ``deploy``: ``deploy``, ``rollback``, ``reconcile``, loading or unloading one version by hand, ``server_status``;
- ``gateway``: the OpenAI-compatible endpoint developer tools see, resolving stable names per request.
"""

from doctune.names import served_name  # a version's served name, which callers of serve read from here
from doctune.serve.adapters import check_adapter, ensure_loaded, preflight, rollback_target, serving_set
from doctune.serve.client import UPSTREAM_LIMITS, VLLMClient, ask, base_served_name, vllm_client
from doctune.serve.deploy import (
    DeployResult,
    deploy,
    load_version,
    reconcile,
    rollback,
    server_status,
    unload_version,
)
from doctune.serve.processes import ensure_gateway, ensure_vllm, stop_server

__all__ = [
    "UPSTREAM_LIMITS",
    "DeployResult",
    "VLLMClient",
    "ask",
    "base_served_name",
    "check_adapter",
    "deploy",
    "ensure_gateway",
    "ensure_loaded",
    "ensure_vllm",
    "load_version",
    "preflight",
    "reconcile",
    "rollback",
    "rollback_target",
    "served_name",
    "server_status",
    "serving_set",
    "stop_server",
    "unload_version",
    "vllm_client",
]
