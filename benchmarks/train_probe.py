"""One measured training run in a process of its own (``benchmarks/training.py`` starts one per variant).

Usage: ``python benchmarks/train_probe.py '<json>'`` with base, dataset, out, steps and the variant's choices
(``benchmarks/gpu_check.py`` adds backend and load_in_4bit). Prints one JSON line: real (non-padding) tokens per second
after the first logging window (the longest batch comes first when batches are grouped by length), this process's
peak RSS and, on a GPU, its peak GPU memory.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from doctune.config import TrainParams
from doctune.registry import load_rows
from doctune.train import FitChoices, fit_adapter


def main(spec: dict) -> dict:
    rows = load_rows(spec["dataset"], "train")
    out = Path(spec["out"])
    params = TrainParams(
        max_steps=spec["steps"],
        batch_size=spec["batch"],
        learning_rate=1e-3,
        lora_rank=16,
        lora_alpha=32,
        lora_dropout=spec.get("dropout", 0.0),
        max_seq_length=spec.get("max_length", 512),
        packing=spec.get("packing", False),
        save_steps=10**6,
        early_stopping_patience=None,
        backend=spec.get("backend", "auto"),
        load_in_4bit=spec.get("load_in_4bit"),
    )
    choices = FitChoices(**{k: spec[k] for k in ("loss", "order", "precision") if k in spec})
    fit_adapter(spec["base"], rows, [], params, out / "run", out / "tb", fit=choices)
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    windows = [s.value for s in events.Scalars("train/tokens_per_second")]
    steady = windows[1:] or windows  # the first window holds the longest batch and the warm-up
    peak = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())[1]) / 1024
    figures = {"tokens_per_s": round(sum(steady) / len(steady), 1), "windows": len(windows)}
    figures["peak_rss_mib"] = round(peak)
    import torch  # imported by fit_adapter already (after unsloth, where it runs)

    if torch.cuda.is_available():
        figures["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return figures


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
