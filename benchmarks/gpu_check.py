"""The GPU path, proven: doctune's own train() through unsloth and through peft + 4-bit on a real GPU, and the speed
and memory of each training backend on a ~1B-parameter Llama.

The GPU machine reaches no package registry, so the check has two halves:

- here, ``make gpu-wheels`` (``benchmarks/gpu_check.py prepare``): downloads what train() needs and the machine's
  image lacks, as wheels for its Python (3.12), at the GPU worker stack's versions (constraints-unsloth.txt), slimmed to
  fit one call; and builds the demo library's dataset. Both go to .gpu-check/ (git-ignored).
- there, in one call with ``.gpu-check`` carried: ``python3 benchmarks/gpu_check.py run --out $OUT/gpu.json``
  (``make gpu-check``; the device tool's run with ``carry=[".gpu-check"]`` and ``timeout_s=420``). It installs the
  wheels, then runs each part in a process of its own, inside ``--budget-s``: correctness (the tiny Llama through
  train() with backend unsloth and with peft + 4-bit: stopped after a step, resumed, the adapter checked against
  what vLLM loads) and speed (tokens/s and peak GPU memory of unsloth and peft, each in bf16 and 4-bit, on a Llama
  built from a config with random weights, with the ratios).

``--dry-run`` runs the same on CPU at tiny sizes with the peft backend (tests/test_gpu_check.py, so it cannot rot).
Every part that did not run says why in the JSON; no figure is ever a silent zero.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".gpu-check"
CALL_BYTES = 64 * 2**20  # what one call to the GPU machine carries, the working tree included
DEVICE_PYTHON = "3.12"  # the GPU machine's python3 (the device tool's KINDS.md)
DEVICE_CUDA = "130"  # its torch is a CUDA 13.0 build: bitsandbytes keeps only that library
# What train() imports (measured: sys.modules after a run) and unsloth's CUDA path adds, minus what the GPU machine's
# image already has (KINDS.md lists it), at the versions constraints-unsloth.txt pins for the GPU worker's stack.
CARRIED = (
    "peft",  # the machine has peft and accelerate too, at versions nobody pinned: ours go in where they differ
    "accelerate",
    "trl",
    "datasets",
    "dill",
    "multiprocess",
    "pydantic",
    "pydantic_core",
    "pydantic-settings",
    "python-dotenv",
    "typing-inspection",
    "annotated-types",
    "SQLAlchemy",
    "alembic",
    "Mako",
    "bitsandbytes",
    "unsloth",
    "unsloth_zoo",
    "cut-cross-entropy",
    "msgspec",
    "tyro",
    "docstring_parser",
    "typeguard",
    "json5",
    "nest-asyncio",
    "diffusers",
    "hf_transfer",
)
LEFT_BEHIND = {
    "xformers": "a wheel of over 100 MB built for one torch version; without it unsloth uses PyTorch's SDPA attention",
    "torchao": "built for a newer torch than the machine's 2.11, and only unsloth's optional fp8/QAT paths import it",
}
# Wheel members nothing imports on a CUDA 13 machine: other CUDA and ROCm builds, unsloth's bundled Studio web app.
DROPPED = {
    "bitsandbytes": re.compile(rf"bitsandbytes/libbitsandbytes_(?!cuda{DEVICE_CUDA}\.|cpu\.).*\.(so|dll|dylib)$"),
    "unsloth": re.compile(r"studio/"),
}
TINY = "tiny-llama"
# Speed model: TinyLlama-1.1B's shape (random weights); the dry run's is tiny.
SPEED_MODEL = {
    "gpu": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32},
    "cpu": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
}
SPEED_RUN = {"gpu": {"steps": 15, "batch": 8, "max_length": 1024}, "cpu": {"steps": 10, "batch": 2, "max_length": 128}}
SPEED_VARIANTS = {
    "peft bf16": {"backend": "peft", "load_in_4bit": False},
    "unsloth bf16": {"backend": "unsloth", "load_in_4bit": False},
    "peft 4-bit": {"backend": "peft", "load_in_4bit": True},
    "unsloth 4-bit": {"backend": "unsloth", "load_in_4bit": True},
}
CORRECTNESS_VARIANTS = {
    "unsloth": {"backend": "unsloth", "load_in_4bit": None},
    "peft 4-bit": {"backend": "peft", "load_in_4bit": True},
    "peft": {"backend": "peft", "load_in_4bit": False},
}
GPU_ONLY = {"unsloth", "unsloth bf16", "unsloth 4-bit", "peft 4-bit"}  # in speed; the dry run trains 4-bit on CPU too
CORRECTNESS_STEPS = 6
# A session has 15 device minutes in all, a machine's start included: one try of about 7 leaves room for a second.
PART_SECONDS = 150


# -- here: prepare ------------------------------------------------------------------------------------------------


def pinned(names: tuple[str, ...]) -> list[str]:
    """``name==version`` for each name, at constraints-unsloth.txt's pin (the GPU worker's stack)."""
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints-unsloth.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_canonical(name)] = version.strip()
    missing = [n for n in names if _canonical(n) not in pins]
    if missing:
        raise SystemExit(f"constraints-unsloth.txt pins no version of {missing}: add them there (make its venv again)")
    return [f"{n}=={pins[_canonical(n)]}" for n in names]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def slim(wheel: Path, dropped: re.Pattern[str]) -> int:
    """Rewrite ``wheel`` without the members ``dropped`` matches (and their RECORD lines); the bytes saved."""
    before = wheel.stat().st_size
    slimmed = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slimmed, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if dropped.match(item.filename):
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(line for line in lines if not dropped.match(line.split(",", 1)[0])) + "\n").encode()
            target.writestr(item, data)
    slimmed.replace(wheel)
    return before - wheel.stat().st_size


def prepare_wheels(dest: Path) -> dict[str, Any]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    platforms = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_24_x86_64", "manylinux_2_28_x86_64"]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", str(dest)]
    cmd += ["--python-version", DEVICE_PYTHON, "--implementation", "cp", "--abi", f"cp{DEVICE_PYTHON.replace('.', '')}"]
    for platform in platforms:
        cmd += ["--platform", platform]
    print(f"downloading {len(CARRIED)} wheels for Python {DEVICE_PYTHON} into {dest}", flush=True)
    subprocess.run(cmd + pinned(CARRIED), check=True)
    saved = {}
    for wheel in sorted(dest.glob("*.whl")):
        name = _canonical(wheel.name.split("-", 1)[0])
        for project, pattern in DROPPED.items():
            if name == _canonical(project):
                saved[wheel.name] = slim(wheel, pattern)
    return {"wheels": sorted(w.name for w in dest.glob("*.whl")), "slimmed_bytes": saved}


def prepare_dataset(dest: Path) -> dict[str, Any]:
    """The demo library's dataset as the corpus stage builds it, with what registering it again needs."""
    sys.path.insert(0, str(ROOT))  # the demo package is at the repository root, not in the wheel
    from demo import DEMO_NAME, prepare_demo_repo
    from doctune import corpus, sources
    from doctune.config import LibraryConfig, Settings, write_library
    from doctune.registry import Registry

    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="doctune-gpu-check-") as tmp:
        settings = Settings(home=Path(tmp), models_dir=Settings().models_path)
        library = LibraryConfig(
            name=DEMO_NAME,
            package=DEMO_NAME,
            repo_url=prepare_demo_repo(settings).as_uri(),
            base_model=TINY,
            sync_schedule=None,
            retrain_schedule=None,
        )
        write_library(settings, library)
        built = corpus.build(library, settings, sources.sync(library, settings))
        dataset = Registry.open(settings).dataset(library.name, built.version)
        shutil.copytree(built.path, dest)
    fields = ("commit", "surface_hash", "content_hash", "n_train", "n_eval")
    registration = {"library": DEMO_NAME} | {k: getattr(dataset, k) for k in fields}
    (dest.parent / "dataset.json").write_text(json.dumps(registration, indent=2))
    return registration


def tree_bytes() -> int:
    """What a call carries besides .gpu-check: the files git tracks or would track."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum((ROOT / p.decode()).stat().st_size for p in listed if p and (ROOT / p.decode()).is_file())


def prepare(state: Path) -> dict[str, Any]:
    from results import commit

    wheels = prepare_wheels(state / "wheels")
    dataset = prepare_dataset(state / "dataset")
    carried = sum(f.stat().st_size for f in state.rglob("*") if f.is_file())
    total = carried + tree_bytes()
    summary = {"commit": commit(), "python": DEVICE_PYTHON, **wheels, "dataset": dataset, "call_bytes": total}
    (state / "prepared.json").write_text(json.dumps(summary, indent=2))
    print(f"{len(wheels['wheels'])} wheels, the demo dataset ({dataset['n_train']} train pairs) in {state}")
    print(f"one call carries {total / 2**20:.1f} MiB of its {CALL_BYTES / 2**20:.0f} MiB")
    if total > CALL_BYTES:
        raise SystemExit(f"{total / 2**20:.1f} MiB is over what one call carries: slim or drop a wheel (CARRIED)")
    return summary


# -- there: run ---------------------------------------------------------------------------------------------------


def install(wheels: Path) -> dict[str, Any]:
    """Install each carried wheel the machine lacks at that version (offline, no dependency resolution)."""
    present, wanted = [], []
    for wheel in sorted(wheels.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        (present if have == version else wanted).append(wheel)
    report: dict[str, Any] = {"present": [w.name for w in present], "installed": [], "failed": {}}
    report["left_behind"] = LEFT_BEHIND
    for wheel in wanted:  # one at a time: a wheel that does not install must not take the others with it
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            report["installed"].append(wheel.name)
        else:
            report["failed"][wheel.name] = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return report


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft", "accelerate", "trl", "bitsandbytes", "unsloth", "unsloth_zoo"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def gpu() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"name": None, "why": "no CUDA device visible to torch"}
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "cuda": torch.version.cuda,
    }


def _worker(args: list[str], timeout: float, env: dict[str, str]) -> dict[str, Any]:
    """Run one part in a process of its own (unsloth patches transformers for the whole process); its last stdout
    line is its JSON. A part that fails or runs out of time says so, with the last line it printed."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] if exc.stderr else []
        return {"status": "failed", "why": f"no result within {timeout:.0f} s", "last_line": tail}
    seconds = round(time.perf_counter() - started, 1)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        err = done.stderr.strip().splitlines()
        errors = [line for line in err if re.match(r"^\w*(Error|Exception)\b|^\w+\.\w+Error", line)]
        why = (errors or err or [f"exit {done.returncode}"])[-1]
        # The machine is gone once the call ends: its log is all a later session has to go on.
        return {"status": "failed", "why": why, "seconds": seconds, "log_tail": err[-40:]}
    figures: dict[str, Any] = json.loads(lines[-1])
    return {"status": "ok", **figures, "seconds": seconds}


class Budget:
    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def run(out: Path, state: Path, *, dry_run: bool, budget_s: float) -> dict[str, Any]:
    from results import commit, machine

    budget = Budget(budget_s)
    figures: dict[str, Any] = {"dry_run": dry_run}
    prepared = json.loads((state / "prepared.json").read_text()) if (state / "prepared.json").is_file() else {}
    # The GPU machine gets the working tree without .git: the commit is the one the wheels were prepared at.
    figures["commit"] = commit() if dry_run or not prepared else prepared["commit"]
    if dry_run:
        figures["install"] = {"skipped": "dry run: this environment has the packages"}
    elif (state / "wheels").is_dir():
        figures["install"] = install(state / "wheels")
    else:
        figures["install"] = {"skipped": f"no wheels in {state / 'wheels'}: run `make gpu-wheels` first, carry it"}
    importlib.invalidate_caches()  # what was just installed is importable in this process too
    if importlib.util.find_spec("doctune") is None:  # the GPU machine runs the working tree, not an installed package
        sys.path.insert(0, str(ROOT / "include"))
    figures["machine"] = machine() | {"gpu": gpu()}
    figures["versions"] = versions()
    cuda = figures["machine"]["gpu"]["name"] is not None
    if not cuda and not dry_run:
        figures["error"] = "no CUDA GPU visible: run on the GPU machine, or pass --dry-run on CPU"
        return _write(out, figures)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "benchmarks")])}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # nothing is reachable there: never wait on the hub
    with tempfile.TemporaryDirectory(prefix="doctune-gpu-check-") as tmp:
        work = Path(tmp)
        dataset = state / "dataset"
        if not (state / "dataset.json").is_file():  # the dry run builds it; the GPU machine cannot (no git sandbox)
            if not dry_run:
                figures["error"] = f"no dataset in {dataset}: run `make gpu-wheels` here first and carry .gpu-check"
                return _write(out, figures)
            state = work / "state"
            dataset = state / "dataset"
            prepare_dataset(dataset)
        registration = json.loads((state / "dataset.json").read_text())

        from concurrent.futures import ThreadPoolExecutor

        from doctune.base_models import resolve_base_model
        from doctune.config import Settings

        models = work / "models"
        resolve_base_model(TINY, Settings(models_dir=models))  # once, before the parts that share it start
        parts: dict[str, list[str]] = {}
        figures["correctness"] = {}
        for name, choice in CORRECTNESS_VARIANTS.items():
            if dry_run and name == "unsloth":
                why = "dry run: unsloth needs CUDA here (its CPU mode has its own test: tests/test_unsloth.py)"
                figures["correctness"][name] = {"status": "skipped", "why": why}
            elif not dry_run and name == "peft":
                why = "full-precision peft is the CPU tests' path; on the GPU it is in the speed part"
                figures["correctness"][name] = {"status": "skipped", "why": why}
            else:
                spec = {"home": str(work / f"home-{name.replace(' ', '-')}"), "models": str(models)}
                spec |= {"dataset": str(dataset), "registration": registration, **choice}
                parts[name] = ["-c", _CALL, "correctness", json.dumps(spec)]
        size = "gpu" if cuda else "cpu"
        model = work / "speed-model"
        spec = {"dest": str(model), "size": size, "models": str(models)}
        parts["build_model"] = ["-c", _CALL, "build_model", json.dumps(spec)]
        # Side by side: the tiny trainings and the model build hardly share the GPU, and the call's minutes are few.
        with ThreadPoolExecutor(len(parts)) as pool:
            answers = pool.map(lambda args: _timed(budget, PART_SECONDS, args, env), parts.values())
            done = dict(zip(parts, answers, strict=True))
        built = done.pop("build_model")
        figures["correctness"] |= done
        rows = work / "speed-rows"
        figures["speed"] = {"model": built, "run": SPEED_RUN[size], "variants": {}}
        if built["status"] == "ok":
            _speed_rows(dataset, rows)
        for name, choice in SPEED_VARIANTS.items():
            if not cuda and name in GPU_ONLY:
                why = "dry run: CPU (4-bit and unsloth speed mean nothing there)"
                figures["speed"]["variants"][name] = {"status": "skipped", "why": why}
                continue
            if built["status"] != "ok":
                figures["speed"]["variants"][name] = {"status": "skipped", "why": "the speed model was not built"}
                continue
            if not cuda:
                choice = {**choice, "backend": "peft"}
            spec = {"base": str(model), "dataset": str(rows), "out": str(work / f"speed-{name.replace(' ', '-')}")}
            spec |= SPEED_RUN[size] | choice
            probe = str(ROOT / "benchmarks" / "train_probe.py")
            figures["speed"]["variants"][name] = _timed(budget, PART_SECONDS, [probe, json.dumps(spec)], env)
        figures["speed"]["ratios"] = ratios(figures["speed"]["variants"])
    return _write(out, figures)


def _timed(budget: Budget, limit: float, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    left = budget.left()
    if left < 20:
        return {"status": "skipped", "why": "the check's time budget (--budget-s) ran out before this part"}
    return _worker(args, min(limit, left), env)


def ratios(variants: dict[str, dict[str, Any]]) -> dict[str, float | str]:
    """Each other variant against peft bf16 (HF transformers with peft, the plain path): speed and memory."""
    base = variants.get("peft bf16", {})
    out: dict[str, float | str] = {}
    for name, figures in variants.items():
        if name == "peft bf16":
            continue
        for key, label in (("tokens_per_s", "tokens/s"), ("peak_gpu_mib", "peak GPU memory")):
            if figures.get(key) and base.get(key):
                out[f"{name} / peft bf16, {label}"] = round(figures[key] / base[key], 2)
            else:
                out[f"{name} / peft bf16, {label}"] = "not measured: " + (
                    figures.get("why") or base.get("why") or f"no {key} (CPU)"
                )
    return out


def _speed_rows(dataset: Path, dest: Path) -> None:
    """Rows longer than the speed run's max_length (the trainer cuts them there): a short question, a long answer of
    the demo dataset's own answers joined, so every sequence is full and all of it is trained on."""
    answers = [json.loads(line)["messages"][-1]["content"] for line in (dataset / "train.jsonl").open()]
    dest.mkdir(parents=True)
    with (dest / "train.jsonl").open("w") as out:
        for start in range(0, len(answers), 24):
            text = "\n\n".join(answers[start : start + 24] * 2)
            question = {"role": "user", "content": "Tell me about ledgerkite."}
            out.write(json.dumps({"messages": [question, {"role": "assistant", "content": text}]}) + "\n")


def _write(out: Path, figures: dict[str, Any]) -> dict[str, Any]:
    import datetime

    figures["measured_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return figures


# -- the workers (each in a process of its own) -------------------------------------------------------------------

_CALL = "import sys, gpu_check; gpu_check.WORKERS[sys.argv[1]](sys.argv[2])"


def correctness(spec_json: str) -> None:
    """train() on the carried dataset: stopped after its first step, resumed, the adapter checked as vLLM loads it."""
    spec = json.loads(spec_json)
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger().addHandler(Keep())

    from doctune.config import LibraryConfig, Settings, TrainParams
    from doctune.registry import Registry
    from doctune.train import STOP_FILE, TrainingStopped, run_key, servable_problems, train

    settings = Settings(home=Path(spec["home"]), models_dir=Path(spec["models"]))
    registration = spec["registration"]
    params = TrainParams(
        max_steps=CORRECTNESS_STEPS,
        save_steps=3,
        learning_rate=1e-3,
        backend=spec["backend"],
        load_in_4bit=spec["load_in_4bit"],
    )
    library = LibraryConfig(
        name=registration["library"],
        repo_url="file:///carried-dataset",  # never synced: train() starts from the registered dataset
        base_model=TINY,
        sync_schedule=None,
        retrain_schedule=None,
        train=params,
    )
    folder = settings.path("datasets", library.name) / "v1"
    shutil.copytree(spec["dataset"], folder)
    fields = {k: v for k, v in registration.items() if k != "library"}
    Registry.open(settings).add_dataset(library=library.name, version=1, path=str(folder), **fields)

    run_dir = settings.path("runs", library.name, run_key(1, library.base_model, params))
    (run_dir / STOP_FILE).touch()  # as `doctune train stop` does: the first try stops after one step
    try:
        train(library, settings)
        stopped = None
    except TrainingStopped as exc:
        stopped = str(exc).split(";")[0]
    result = train(library, settings)
    adapter = Path(result.adapter_path)
    figures = {
        "backend": next((m for m in messages if m.startswith("training backend:")), None),
        "stopped": stopped,
        "resumed": next((m for m in messages if m.startswith("resuming from ")), None),
        "resumed_try": [m for m in messages if m.startswith("steps run in this try")][-1],
        "steps": result.steps,
        "train_loss": result.train_loss,
        "servable_problems": servable_problems(adapter, params),
    }
    # Resumed, not restarted: the second try ran the steps after the first one only.
    n = CORRECTNESS_STEPS
    resumed = figures["resumed_try"] == f"steps run in this try: {n - 1} (step 1 to {n} of {n})"
    ok = stopped and resumed and result.steps == CORRECTNESS_STEPS and not figures["servable_problems"]
    figures["verdict"] = "pass" if ok else "fail"
    print(json.dumps(figures))


def build_model(spec_json: str) -> None:
    """A Llama from a config, random weights (no download), saved as a model folder with the tiny Llama's tokenizer."""
    spec = json.loads(spec_json)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from doctune.base_models import resolve_base_model
    from doctune.config import Settings

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(TINY, Settings(models_dir=Path(spec["models"]))))
    shape = SPEED_MODEL[spec["size"]]
    config = LlamaConfig(
        vocab_size=32000 if spec["size"] == "gpu" else len(tokenizer),
        num_key_value_heads=4 if spec["size"] == "gpu" else 2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        **shape,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # a GPU initialises 1B random weights in a second, a CPU in a minute
        model = LlamaForCausalLM(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(spec["dest"], safe_serialization=True)
    tokenizer.save_pretrained(spec["dest"])
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"parameters_m": round(params / 1e6, 1), **shape, "vocab_size": config.vocab_size}))


WORKERS = {"correctness": correctness, "build_model": build_model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ready = sub.add_parser("prepare", help="Here: wheels and the demo dataset for the GPU machine.")
    go = sub.add_parser("run", help="On the GPU machine (or on CPU with --dry-run): the check itself.")
    for command in (ready, go):
        command.add_argument("--state", type=Path, default=STATE, help="Where the wheels and the dataset are.")
    go.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, the peft backend.")
    go.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu.json")
    go.add_argument("--budget-s", type=float, default=300, help="Stop starting parts after this many seconds.")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.state)
        return
    figures = run(args.out, args.state, dry_run=args.dry_run, budget_s=args.budget_s)
    print(summary(figures))
    print(f"wrote {args.out}")


def summary(figures: dict[str, Any]) -> str:
    lines = [f"GPU: {figures['machine']['gpu'].get('name') or 'none'}; versions: {figures['versions']}"]
    if figures.get("error"):
        return "\n".join([*lines, f"error: {figures['error']}"])
    install_report = figures["install"]
    if install_report.get("failed"):
        lines.append(f"wheels that did not install: {install_report['failed']}")
    for name, part in figures["correctness"].items():
        lines.append(f"correctness, {name}: {part.get('verdict') or part['status']} {part.get('why') or ''}".rstrip())
    for name, part in figures["speed"]["variants"].items():
        if part["status"] == "ok":
            memory = f", peak GPU {part['peak_gpu_mib']} MiB" if "peak_gpu_mib" in part else ""
            lines.append(f"speed, {name}: {part['tokens_per_s']} tokens/s{memory}")
        else:
            lines.append(f"speed, {name}: {part['status']} ({part.get('why')})")
    lines += [f"{name}: {value}" for name, value in figures["speed"]["ratios"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
