"""Backend selection: every combination of what is installed and what was asked for."""

import os

import pytest

from doctune.errors import DoctuneError
from doctune.train.backends import Backend, activate, choose_backend


@pytest.mark.parametrize(
    "requested,four_bit,unsloth,cuda,expected",
    [
        (
            "auto",
            None,
            True,
            True,
            Backend("unsloth", "cuda", True, "auto: unsloth is installed and a CUDA GPU is present"),
        ),
        ("auto", None, False, True, Backend("peft", "cuda", True, "auto: CUDA GPU present, unsloth not installed")),
        (
            "auto",
            None,
            True,
            False,
            Backend("peft", "cpu", False, "auto: no CUDA GPU (unsloth is installed but needs one)"),
        ),
        ("auto", None, False, False, Backend("peft", "cpu", False, "auto: no CUDA GPU")),
        ("peft", None, True, True, Backend("peft", "cuda", True, "requested")),
        ("peft", False, False, True, Backend("peft", "cuda", False, "requested")),
        ("auto", True, False, False, Backend("peft", "cpu", True, "auto: no CUDA GPU")),
        ("unsloth", False, True, True, Backend("unsloth", "cuda", False, "requested")),
    ],
)
def test_choice(requested: str, four_bit: bool | None, unsloth: bool, cuda: bool, expected: Backend) -> None:
    assert choose_backend(requested, four_bit, has_unsloth=unsloth, has_cuda=cuda) == expected  # type: ignore[arg-type]


def test_unsloth_without_unsloth_names_the_image() -> None:
    with pytest.raises(DoctuneError, match="unsloth is not installed here: run training on the GPU worker image"):
        choose_backend("unsloth", has_unsloth=False, has_cuda=True)


def test_unsloth_without_gpu_says_use_peft() -> None:
    with pytest.raises(DoctuneError, match="needs a CUDA GPU and none is visible: set backend: peft"):
        choose_backend("unsloth", has_unsloth=True, has_cuda=False)


def test_this_machine_detects_itself() -> None:
    import torch

    backend = choose_backend()
    assert backend.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_unsloth_cpu_mode_only_when_allowed_and_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_mode = Backend("unsloth", "cpu", False, "requested; unsloth's CPU mode allowed by DOCTUNE_UNSLOTH_ALLOW_CPU=1")
    assert choose_backend("unsloth", has_unsloth=True, has_cuda=False, allow_unsloth_cpu=True) == cpu_mode
    monkeypatch.setenv("DOCTUNE_UNSLOTH_ALLOW_CPU", "1")  # how tests/test_unsloth.py allows it
    assert choose_backend("unsloth", has_unsloth=True, has_cuda=False) == cpu_mode
    # auto never picks the CPU mode, and the switch does not make up for a missing unsloth.
    assert choose_backend("auto", has_unsloth=True, has_cuda=False).name == "peft"
    with pytest.raises(DoctuneError, match="unsloth is not installed here"):
        choose_backend("unsloth", has_unsloth=False, has_cuda=False)
    monkeypatch.setenv("DOCTUNE_UNSLOTH_ALLOW_CPU", "0")
    with pytest.raises(DoctuneError, match="needs a CUDA GPU"):
        choose_backend("unsloth", has_unsloth=True, has_cuda=False)


@pytest.mark.parametrize("device,before,after", [("cuda", None, "1"), ("cpu", "1", None)])
def test_activate_disables_unsloths_cpu_fallback_on_gpu_only(
    monkeypatch: pytest.MonkeyPatch, device: str, before: str | None, after: str | None
) -> None:
    import sys
    import types

    environ = {k: v for k, v in os.environ.items() if k != "UNSLOTH_DISABLE_CPU_FALLBACK"}
    if before:
        environ["UNSLOTH_DISABLE_CPU_FALLBACK"] = before
    # activate writes to os.environ: a copy keeps that from leaking into later tests' subprocesses.
    monkeypatch.setattr(os, "environ", environ)
    monkeypatch.setitem(sys.modules, "unsloth", types.ModuleType("unsloth"))  # what activate imports
    activate(Backend("unsloth", device, device == "cuda", "requested"))  # type: ignore[arg-type]
    assert environ.get("UNSLOTH_DISABLE_CPU_FALLBACK") == after
    assert environ["UNSLOTH_DISABLE_STATISTICS"] == "1"  # no usage report to the hub from a private library's worker
