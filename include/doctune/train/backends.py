"""Which training backend runs: unsloth (CUDA, its own environment), peft + bitsandbytes 4-bit on CUDA, or peft
LoRA on CPU. Decided once, before transformers is imported, because unsloth patches transformers on import
and silently falls back to a CPU mode of its own when no GPU is visible.

That CPU mode is refused in production (a GPU-sized job would crawl on a CPU without a word), with one exception:
``DOCTUNE_UNSLOTH_ALLOW_CPU=1`` lets an explicit ``backend: unsloth`` run in unsloth's CPU mode, so that doctune's
unsloth code path can be tested on a machine without a GPU (``tests/test_unsloth.py``, in ``.venv-unsloth``).
Never set it on a worker: it exists for that test."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from typing import Literal

from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

BackendName = Literal["auto", "unsloth", "peft"]
ALLOW_UNSLOTH_CPU = "DOCTUNE_UNSLOTH_ALLOW_CPU"


@dataclass(frozen=True)
class Backend:
    name: Literal["unsloth", "peft"]
    device: Literal["cuda", "cpu"]
    four_bit: bool
    reason: str


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def choose_backend(
    requested: BackendName = "auto",
    load_in_4bit: bool | None = None,
    *,
    has_unsloth: bool | None = None,
    has_cuda: bool | None = None,
    allow_unsloth_cpu: bool | None = None,
) -> Backend:
    """The backend for this process, with the reason; an impossible request is an error naming the fix."""
    has_unsloth = unsloth_installed() if has_unsloth is None else has_unsloth
    has_cuda = cuda_available() if has_cuda is None else has_cuda
    if allow_unsloth_cpu is None:
        allow_unsloth_cpu = os.environ.get(ALLOW_UNSLOTH_CPU) == "1"
    device: Literal["cuda", "cpu"] = "cuda" if has_cuda else "cpu"
    if requested == "unsloth" or (requested == "auto" and has_unsloth and has_cuda):
        if not has_unsloth:
            raise DoctuneError(
                "backend 'unsloth' was requested but unsloth is not installed here: run training on "
                "the GPU worker image (docker/gpu-worker.Dockerfile) or set backend: peft"
            )
        if not has_cuda and allow_unsloth_cpu:
            # unsloth's CPU mode trains in full precision only; auto never lands here.
            return Backend("unsloth", "cpu", False, f"requested; unsloth's CPU mode allowed by {ALLOW_UNSLOTH_CPU}=1")
        if not has_cuda:
            raise DoctuneError(
                "backend 'unsloth' needs a CUDA GPU and none is visible: set backend: peft to train "
                "on this machine's CPU"
            )
        four_bit = True if load_in_4bit is None else load_in_4bit
        why = "requested" if requested == "unsloth" else "auto: unsloth is installed and a CUDA GPU is present"
        return Backend("unsloth", "cuda", four_bit, why)
    if requested == "auto":
        why = (
            "auto: CUDA GPU present, unsloth not installed"
            if has_cuda
            else "auto: no CUDA GPU" + (" (unsloth is installed but needs one)" if has_unsloth else "")
        )
    else:
        why = "requested"
    # QLoRA by default on a GPU; full precision on CPU, where 4-bit saves nothing at these sizes.
    four_bit = has_cuda if load_in_4bit is None else load_in_4bit
    return Backend("peft", device, four_bit, why)


def activate(backend: Backend) -> None:
    """Log the choice once and, for unsloth, import it before transformers as it requires."""
    log.info(
        "training backend: %s on %s, %s (%s)",
        backend.name,
        backend.device,
        "4-bit QLoRA" if backend.four_bit else "LoRA in full precision",
        backend.reason,
    )
    if backend.name == "unsloth":
        # unsloth's import downloads files from the Hugging Face hub to count which environments use it: a worker
        # training on a private library tells no third party about itself (and offline it would wait on the hub).
        os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
        if backend.device == "cuda":
            # Should the GPU vanish between the choice and unsloth's import, fail instead of crawling on the CPU.
            os.environ.setdefault("UNSLOTH_DISABLE_CPU_FALLBACK", "1")
        else:  # the CPU mode, allowed explicitly: an inherited "disable" would make unsloth refuse it on import
            os.environ.pop("UNSLOTH_DISABLE_CPU_FALLBACK", None)
        if "transformers" in sys.modules:
            log.warning(
                "transformers was imported before unsloth in this process; unsloth's patches may be "
                "incomplete. Run training in its own process (the gpu queue's worker does)."
            )
        import unsloth  # noqa: F401
