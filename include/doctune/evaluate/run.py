"""Evaluate a candidate adapter against production and the base model, and decide whether to promote it.

The suite of a dataset version (``evalset.json``, see ``corpus.evalset``): every symbol's facts trained, the
questions held out.
- API knowledge: questions about every public symbol in a phrasing family no training pair uses, scored against
  the symbol table (signature, parameters, return type, which symbol does X, a call that binds), separately for the
  symbols whose facts trained as questions and for the withheld-QA control (trained only as documentation);
- execution: tasks mined from held-out tests, the model's code run against the library's own check in the sandbox
  (pass@1, greedy decoding);
- a general-coding floor: built-in Python tasks with tests, to catch forgetting;
- hallucinated-API rate: references to library names that do not exist at that commit, over every answer;
- held-out loss on the trained facts asked in the held-out phrasings, computed in-process on the answer tokens.
Rows: the base model, the base model with the symbol's own documentation in the prompt (the ceiling a retriever
could reach; full evaluations only), production and the candidate, each figure with a 95 % Wilson interval. Every
model answers through the vLLM server under its own name (never the stable alias), all prompts of a round at once.
The pipeline's gate evaluates a stratified sample sized to a time budget; ``full`` (``make bench``, ``doctune eval
run --full``) asks everything. The gate's decision and reasons go to the registry; a JSON + Markdown report per
evaluation goes under ``<home>/evaluations/<lib>/``, and the scalars into the candidate's TensorBoard run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from doctune.base_models import resolve_base_model
from doctune.config import LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.evaluate import freshness
from doctune.evaluate.asking import CONCURRENCY, ask_all, fitted_docs_prompts
from doctune.evaluate.gate import gate
from doctune.evaluate.heldout_loss import heldout_losses
from doctune.evaluate.items import suite_items
from doctune.evaluate.report import answer_rows, showcase, wins_and_losses, write_report
from doctune.evaluate.scoring import score_items, wilson
from doctune.evaluate.suite.apidiff import ApiDiff
from doctune.names import AdapterStatus, Decision
from doctune.registry import Registry, load_rows
from doctune.sandbox import require_minimum
from doctune.serve import base_served_name, ensure_loaded, ensure_vllm, vllm_client

log = logging.getLogger(__name__)

EVAL_REQUEST_SECONDS = 600.0


@dataclass
class EvalResult:
    library: str
    adapter_version: int
    production_version: int | None
    decision: Decision
    reasons: list[str]
    metrics: dict[str, dict[str, float]]
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # "wins" and "losses"
    report_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tensorboard(settings: Settings, library: str, run: Any, metrics: dict[str, dict[str, float]]) -> None:
    """The gate's scalars next to the candidate's training curves, at its last step."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(settings.tensorboard_path / library / Path(run.output_dir).name))
    for role, values in metrics.items():
        for name, value in values.items():
            writer.add_scalar(f"gate/{name}/{role}", value, run.steps or 0)
    writer.close()


def evaluate(library: LibraryConfig, settings: Settings, adapter_version: int, *, full: bool = False) -> EvalResult:
    """Score candidate, production and base on the candidate's suite, decide, record, and report.

    The gate asks a stratified sample that fits ``library.gate.eval_seconds``; ``full`` asks every item and adds
    the docs-in-prompt row (the base model with each symbol's documentation in the prompt)."""
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
            "evidence; add documented public API or docs"
        )

    # Before anything slow: a machine that cannot confine generated code fails here, naming the fix.
    sandbox_layers = require_minimum()
    adapters = {"candidate": candidate.path} | ({"production": production.path} if production else {})
    started = time.perf_counter()
    base_path = resolve_base_model(library.base_model, settings)
    losses = heldout_losses(base_path, adapters, rows, library.train.max_seq_length)
    log.info("held-out loss: %s", ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    timing = {"heldout_loss_s": time.perf_counter() - started}

    client = ensure_vllm(settings, library)
    # Evaluation sends CONCURRENCY requests at once, some with documentation in the prompt: on a slow CPU one waits
    # behind the others for longer than an interactive question may (seen: over 120 s on a 2-core machine).
    asker = vllm_client(settings, timeout=max(settings.request_timeout, EVAL_REQUEST_SECONDS))
    base_name = base_served_name(library.base_model)
    names = {"base": base_name} | ({"docs_in_prompt": base_name} if full else {})
    for role, adapter in (("production", production), ("candidate", candidate)):
        if adapter is not None:
            ensure_loaded(client, adapter.served_name, adapter.path)
            names[role] = adapter.served_name
    available = suite_items(dataset.path)
    evalset_path = Path(dataset.path) / "evalset.json"
    evalset = json.loads(evalset_path.read_text()) if evalset_path.is_file() else {}
    budget = None if full else library.gate.eval_seconds
    log.info("asking %d models up to %d prompts each (%d at once)", len(names), len(available), CONCURRENCY)
    started = time.perf_counter()
    fitted = fitted_docs_prompts(client, base_name, evalset.get("docs", {}), base_path) if full else None
    items, answers = ask_all(asker, names, available, docs_prompts=fitted, budget_s=budget)
    timing["generation_s"] = time.perf_counter() - started
    timing["requests"] = len(names) * len(items)
    timing["requests_per_s"] = timing["requests"] / timing["generation_s"]
    started = time.perf_counter()
    symbols = json.loads((Path(dataset.path) / "symbols.json").read_text())
    diff = evalset.get("api_diff")
    touched = ApiDiff.from_dict(diff).touched() if diff else set()
    metrics: dict[str, dict[str, float]] = {}
    intervals: dict[str, dict[str, tuple[float, float, int]]] = {}
    scores: dict[str, list[float]] = {}
    for role in names:
        log.info("scoring %s's answers (execution in the sandbox)", role)
        asked = [i for i in items if role != "docs_in_prompt" or i.kind != "general"]
        replies = [
            a for i, a in zip(items, answers[role], strict=True) if role != "docs_in_prompt" or i.kind != "general"
        ]
        scored, intervals[role], role_scores = score_items(
            asked, replies, library.import_name, symbols, Path(dataset.path) / "library"
        )
        scores[role] = role_scores if len(asked) == len(items) else []
        for name, (value, right, n) in freshness.figures(asked, replies, role_scores, touched).items():
            scored[name] = value
            intervals[role][name] = (*wilson(right, n), n)
        metrics[role] = scored | ({"heldout_loss": losses[role]} if role in losses else {})
        log.info("%s: %s", role, ", ".join(f"{k} {v:.3f}" for k, v in metrics[role].items()))

    timing["scoring_s"] = time.perf_counter() - started
    counts = {name: interval[2] for name, interval in intervals["candidate"].items()}
    gated = {role: values for role, values in metrics.items() if role != "docs_in_prompt"}
    decision, reasons = gate(library.gate, gated, counts)
    evaluation = registry.add_evaluation(
        library=library.name,
        adapter_version=candidate.version,
        production_version=production.version if production else None,
        metrics=metrics,
        decision=decision,
        reasons=reasons,
    )
    if decision == Decision.REJECT:
        registry.set_adapter_status(library.name, candidate.version, AdapterStatus.REJECTED)
    log.info("gate: %s v%d (%s)", decision, candidate.version, "; ".join(reasons))

    compared = {role: value for role, value in scores.items() if value}
    probes = freshness.probe_rows(items, answers, scores)
    samples = wins_and_losses(items, answers, compared)
    folder = settings.path("evaluations", library.name) / f"e{evaluation.id}-v{candidate.version}"
    counted = {kind: sum(i.kind == kind for i in items) for kind in ("api", "exec", "general")}
    report = {
        "library": library.name,
        "adapter_version": candidate.version,
        "production_version": production.version if production else None,
        "dataset_version": dataset.version,
        "commit": dataset.commit,
        "models": names,
        "metrics": metrics,
        "intervals": intervals,
        "decision": decision,
        "reasons": reasons,
        "gate": library.gate.model_dump(),
        "items": counted | {"available": len(available), "sampled": len(items) < len(available)},
        "protocol": evalset.get("protocol", ""),
        "showcase": showcase(items, answers, compared),
        "freshness": {
            "parent": diff["parent"] if diff else None,
            "diff": diff,
            "probes": probes,
            "showcase": freshness.showcase(probes),
        },
        "samples": samples,
        "timing": timing,
        "sandbox_layers": sandbox_layers,
        "full": full,
    }
    write_report(folder, report, answer_rows(items, answers, scores))
    _tensorboard(settings, library.name, registry.run(candidate.training_run_id), metrics)
    return EvalResult(
        library.name,
        candidate.version,
        production.version if production else None,
        decision,
        reasons,
        metrics,
        samples,
        str(folder),
    )
