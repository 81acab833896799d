"""Evaluate a candidate adapter against production (or the base model) and decide whether to promote it.

Two measures on the held-out split, which no training pair shares a symbol or doc section with:
- held-out loss of base, production and candidate, computed in-process on the answer tokens;
- API questions ("which function does X?") answered through the vLLM server by each model under its own
  name (never through the stable alias), scored by whether the answer names the right function and its
  parameters.
The gate uses held-out loss; the API score is recorded next to it.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

MAX_QUESTIONS = 8
CONCURRENCY = 4


@dataclass
class EvalResult:
    library: str
    adapter_version: int
    production_version: int | None
    decision: str  # "promote" or "reject"
    reasons: list[str]
    metrics: dict[str, dict[str, float]]
    samples: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def heldout_losses(
    base_path: str, adapters: dict[str, str], rows: list[dict[str, Any]], max_length: int
) -> dict[str, float]:
    """Mean loss per answer token on ``rows`` for the base model and each adapter (name -> folder)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model: Any = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    encoded = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        if len(ids) > prompt_len:
            labels = [-100] * prompt_len + ids[prompt_len:]
            encoded.append((torch.tensor([ids]), torch.tensor([labels])))
    if not encoded:
        raise DoctuneError("the evaluation split has no answer tokens to score; rebuild the dataset")

    def mean_loss() -> float:
        total, count = 0.0, 0
        with torch.inference_mode():
            for ids, labels in encoded:
                n = int((labels[:, 1:] != -100).sum())
                total += float(model(input_ids=ids, labels=labels).loss) * n
                count += n
        return total / count

    losses = {"base": mean_loss()}
    for i, (name, path) in enumerate(adapters.items()):
        if i == 0:
            model = PeftModel.from_pretrained(model, path, adapter_name=name)
        else:
            model.load_adapter(path, adapter_name=name)
        model.set_adapter(name)
        losses[name] = mean_loss()
    return losses


def api_questions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if "expect" in r["meta"]][:MAX_QUESTIONS]


def score_answer(answer: str, expect: dict[str, Any]) -> dict[str, float]:
    params = expect.get("params", [])
    return {
        "names_function": float(expect["name"] in answer),
        "names_params": float(all(p in answer for p in params)) if params else float(expect["name"] in answer),
    }


def ask_all(client: Any, models: dict[str, str], questions: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Answers per role (base/production/candidate), with bounded concurrency against the server."""
    jobs = [(role, name, q["messages"][0]["content"]) for role, name in models.items() for q in questions]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(lambda job: client.chat(job[1], job[2], max_tokens=96), jobs))
    out: dict[str, list[str]] = {role: [] for role in models}
    for (role, _, _), answer in zip(jobs, answers, strict=True):
        out[role].append(answer)
    return out


def gate(library: LibraryConfig, losses: dict[str, float], has_production: bool) -> tuple[str, list[str]]:
    reasons: list[str] = []
    candidate, base = losses["candidate"], losses["base"]
    ok = True
    if not math.isfinite(candidate):
        return "reject", [f"candidate held-out loss is {candidate}"]
    if candidate <= base * (1 - library.gate.min_gain_over_base):
        reasons.append(
            f"held-out loss {candidate:.4f} beats the base model's {base:.4f} "
            f"by more than {library.gate.min_gain_over_base:.0%}"
        )
    else:
        ok = False
        reasons.append(
            f"held-out loss {candidate:.4f} does not beat the base model's {base:.4f} "
            f"by {library.gate.min_gain_over_base:.0%}"
        )
    if has_production:
        production = losses["production"]
        bound = production * (1 + library.gate.max_regression)
        verdict = "within" if candidate <= bound else "above"
        ok = ok and candidate <= bound
        reasons.append(
            f"held-out loss {candidate:.4f} is {verdict} production's {production:.4f} "
            f"+{library.gate.max_regression:.0%}"
        )
    return ("promote" if ok else "reject"), reasons


def evaluate(library: LibraryConfig, settings: Settings, adapter_version: int) -> EvalResult:
    """Score candidate, production and base on the candidate's held-out split, decide, and record it."""
    from doctune.corpus import load_rows
    from doctune.models import resolve_base_model
    from doctune.registry import Registry
    from doctune.serve import base_served_name, ensure_loaded, ensure_vllm

    registry = Registry.open(settings)
    candidate = registry.adapter(library.name, adapter_version)
    production = registry.production(library.name)
    if production is not None and production.version == candidate.version:
        production = None
    if production is not None and production.base_model != candidate.base_model:
        raise DoctuneError(
            f"candidate v{candidate.version} ({candidate.base_model}) and production "
            f"v{production.version} ({production.base_model}) have different base models: "
            "they cannot be compared; deploy the candidate by hand after checking it"
        )
    dataset = registry.dataset(library.name, candidate.dataset_version)
    rows = load_rows(dataset.path, "eval")
    if not rows:
        raise DoctuneError(
            f"dataset v{dataset.version} has an empty evaluation split: no promotion without "
            "evidence; lower eval_share or add docs"
        )

    adapters = {"candidate": candidate.path} | ({"production": production.path} if production else {})
    losses = heldout_losses(
        resolve_base_model(library.base_model, settings), adapters, rows, library.train.max_seq_length
    )
    log.info("held-out loss: %s", ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))

    client = ensure_vllm(settings, library)
    names = {"base": base_served_name(library.base_model)}
    for role, adapter in (("production", production), ("candidate", candidate)):
        if adapter is not None:
            ensure_loaded(client, adapter.served_name, adapter.path)
            names[role] = adapter.served_name
    questions = api_questions(rows)
    answers = ask_all(client, names, questions)
    metrics: dict[str, dict[str, float]] = {role: {"heldout_loss": losses[role]} for role in names}
    for role in names:
        scores = [score_answer(a, q["meta"]["expect"]) for a, q in zip(answers[role], questions, strict=True)]
        for key in ("names_function", "names_params"):
            metrics[role][f"api_{key}"] = sum(s[key] for s in scores) / len(scores) if scores else 0.0
    samples = [
        {
            "question": q["messages"][0]["content"],
            "expected": q["meta"]["expect"]["name"],
            **{role: answers[role][i] for role in names},
        }
        for i, q in enumerate(questions[:3])
    ]

    decision, reasons = gate(library, losses, production is not None)
    registry.add_evaluation(
        library=library.name,
        adapter_version=candidate.version,
        production_version=production.version if production else None,
        metrics=metrics,
        decision=decision,
        reasons=reasons,
    )
    if decision == "reject":
        registry.set_adapter_status(library.name, candidate.version, "rejected")
    log.info("gate: %s v%d (%s)", decision, candidate.version, "; ".join(reasons))
    return EvalResult(
        library.name, candidate.version, production.version if production else None, decision, reasons, metrics, samples
    )
