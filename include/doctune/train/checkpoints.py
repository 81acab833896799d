"""What a run leaves on disk and whether it can be used: the newest complete checkpoint to resume from, a full disk
told apart from other write failures (and explained), and whether the saved adapter is servable by vLLM."""

from __future__ import annotations

import errno
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from doctune.config import TrainParams
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)


def latest_good_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that is complete. A half-written one (a crash or a full disk while saving) is moved
    aside as ``*.corrupt`` with a warning, and the one before it is used."""
    from safetensors import safe_open

    candidates = sorted(folder.glob("checkpoint-*[0-9]"), key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True)
    for checkpoint in candidates:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            with safe_open(str(checkpoint / "adapter_model.safetensors"), "pt") as weights:
                list(weights.keys())
            if not (checkpoint / "optimizer.pt").is_file():
                raise FileNotFoundError("optimizer.pt")
            return checkpoint
        except Exception as exc:  # any unreadable part makes the whole checkpoint unusable
            aside = checkpoint.with_name(checkpoint.name + ".corrupt")
            log.warning("checkpoint %s is incomplete (%s): moved to %s", checkpoint, exc, aside.name)
            checkpoint.rename(aside)
    return None


# Below this much free space, a failed write is taken for a full disk (torch.save does not say so itself).
FULL_DISK_BYTES = 16 * 2**20


def disk_is_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` comes from a full disk. Each writer reports one differently: Python's file writes raise
    OSError(ENOSPC), safetensors a SafetensorError quoting "No space left on device", and torch.save only
    "unexpected pos ..." with no errno, which leaves the free space on ``folder``'s disk as the witness."""
    chain: BaseException | None = exc
    while chain is not None:
        if (isinstance(chain, OSError) and chain.errno == errno.ENOSPC) or "No space left on device" in str(chain):
            return True
        chain = chain.__cause__ or chain.__context__
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:  # the folder is gone: nothing to say about its disk
        return False


@contextmanager
def full_disk_explained(run_dir: Path) -> Iterator[None]:
    """A full disk while checkpointing or saving the adapter becomes one clear error that names the folder and
    the fix; the half-written checkpoint is set aside by ``latest_good_checkpoint`` when the run is tried again."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, DoctuneError) or not disk_is_full(exc, run_dir):
            raise
        free = shutil.disk_usage(run_dir).free if run_dir.exists() else 0
        raise DoctuneError(
            f"the disk holding {run_dir} is full ({free // 2**20} MiB free; {exc}): nothing was registered. "
            f"Free space on it (old runs under {run_dir.parent} and their checkpoints can go) or point "
            "DOCTUNE_HOME at a bigger disk, then run the same training again: it resumes from the last complete "
            "checkpoint"
        ) from exc


def servable_problems(folder: Path, params: TrainParams) -> list[str]:
    """What in an adapter folder vLLM's LoRA loader would refuse, or serve as a no-op; empty when it is servable."""
    from safetensors import safe_open

    config = json.loads((folder / "adapter_config.json").read_text())
    problems = []
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']} (vLLM loads LoRA weights only)")
    if sorted(config.get("target_modules") or []) != sorted(params.target_modules):
        problems.append(f"target_modules {config.get('target_modules')} instead of {params.target_modules}")
    if config.get("r") != params.lora_rank:
        problems.append(f"rank {config.get('r')} instead of {params.lora_rank}")
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
        other = [k for k in keys if not k.endswith((".lora_A.weight", ".lora_B.weight"))]
        if other:  # embedding or lm_head LoRA, or trained full modules: vLLM refuses them
            more = f" (nor are {len(other) - 1} more)" if len(other) > 1 else ""
            problems.append(f"{other[0]} is not a LoRA A/B weight{more}")
        # LoRA's B starts at zero: an adapter whose Bs never moved answers exactly as the base model.
        if not any(weights.get_tensor(k).abs().sum() > 0 for k in keys if k.endswith(".lora_B.weight")):
            problems.append("every lora_B weight is zero: training did not move the adapter")
    return problems
