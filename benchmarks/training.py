"""Training throughput on this machine: doctune's CPU path against each alternative it chose not to take.

SmolLM2-135M-Instruct, LoRA r16 on every linear layer, on the demo library's training pairs. Each variant runs in a
process of its own (``train_probe.py``) for a fixed number of steps; the figures are real (non-padding) tokens per
second after the first logging window, and the process's peak RSS. Variants:

- ``doctune``: batches grouped by length, answer-only loss, fp32, LoRA dropout 0, no packing (the defaults);
- ``trl loss``: trl's own loss path (on CPU it scores every position in vocabulary tiles);
- ``random order``: batches in random order, padded to their longest pair;
- ``bf16 autocast``: bfloat16 autocast on a CPU without bf16 units;
- ``dropout 0.05``: LoRA dropout on (random masks on every adapted layer's input);
- ``packed 512 x4``: trl packing into rows of 512 tokens, four rows a step, trl's loss (what the knowledge issue
  measured: ~43 real tokens/s), and the same with the answer-only loss, and with one row a step.

Run: ``.venv/bin/python benchmarks/training.py`` (part of ``make bench``). Writes benchmarks/results/training.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import results

from doctune import corpus, sources
from doctune.base_models import resolve_base_model
from doctune.config import LibraryConfig, Settings, write_library

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: the demo package is at the root
from demo import prepare_demo_repo  # noqa: E402

PROBE = Path(__file__).with_name("train_probe.py")
STEPS = 16
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("doctune", {}),
    ("trl loss", {"loss": "trl"}),
    ("random order", {"order": "random"}),
    ("bf16 autocast", {"precision": "bf16"}),
    ("dropout 0.05", {"dropout": 0.05}),
    ("packed 512 x4, trl loss", {"packing": True, "loss": "trl"}),
    ("packed 512 x4", {"packing": True}),
    ("packed 512 x1", {"packing": True, "batch": 1}),
]


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(PROBE), json.dumps(spec)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="doctune-bench-training-") as tmp:
        settings = Settings(home=Path(tmp), models_dir=Settings().models_path)
        library = LibraryConfig(name="ledgerkite", repo_url=prepare_demo_repo(settings).as_uri())
        write_library(settings, library)
        dataset = corpus.build(library, settings, sources.sync(library, settings))
        base = resolve_base_model("smollm2-135m-instruct", settings)
        figures: dict[str, Any] = {}
        for name, choices in VARIANTS:
            spec = {"base": base, "dataset": dataset.path, "out": f"{tmp}/{len(figures)}", "steps": STEPS, "batch": 4}
            figures[name] = probe(spec | choices) | {"choices": choices}
            shown = figures[name].get("tokens_per_s", figures[name].get("error"))
            print(f"training, {name}: {shown} real tokens/s, peak RSS {figures[name].get('peak_rss_mib')} MiB")
    ours = figures["doctune"].get("tokens_per_s")
    for values in figures.values():
        if ours and values.get("tokens_per_s"):
            values["ratio_to_doctune"] = round(values["tokens_per_s"] / ours, 2)
    path = results.write(
        "training",
        {
            "model": "smollm2-135m-instruct",
            "lora": {"rank": 16, "alpha": 32, "targets": "all linear layers"},
            "steps_per_variant": STEPS,
            "dataset_pairs": dataset.n_train,
            "variants": figures,
        },
    )
    print(f"training throughput figures: {path}")


if __name__ == "__main__":
    main()
