"""Backend selection: every combination of what is installed and what was asked for."""

import pytest

from doctune.backends import Backend, choose_backend
from doctune.errors import DoctuneError


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
