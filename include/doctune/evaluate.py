"""Evaluate a candidate adapter against production and the base model, and decide whether to promote it.

The suite of a dataset version (``evalset.json``, built from held-out units only, see ``corpus.versions``):
- held-out loss on the evaluation split, computed in-process on the answer tokens;
- API knowledge: questions about held-out public symbols, scored against the symbol table;
- hallucinated-API rate: references to library names that do not exist at that commit, over every answer;
- execution: tasks mined from held-out tests, the model's code run against the library's own check in the
  sandbox (pass@1, greedy decoding);
- a general-coding floor: built-in Python tasks with tests, to catch forgetting.
Every model answers through the vLLM server under its own name (never the stable alias), with bounded
concurrency. The gate's decision and reasons go to the registry; a JSON + Markdown report per evaluation goes
under ``<home>/evaluations/<lib>/``, and the scalars into the candidate's TensorBoard run.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from doctune.config import GateParams, LibraryConfig, Settings
from doctune.errors import DoctuneError

log = logging.getLogger(__name__)

# Requests in flight against the server, and generated programs running at once in the sandbox.
CONCURRENCY = 4
SANDBOX_WORKERS = 2
# Bounds that keep an evaluation to minutes on a CPU server; the report says how many items were used.
MAX_API_QUESTIONS = 24
MAX_EXEC_TASKS = 24
LOWER_IS_BETTER = {"heldout_loss"}
# Fewer library names than this in a model's answers make its hallucination rate too noisy to gate on: at 50
# references a rate near 0.3 still has a standard error of about 0.065, more than the default bound of 0.05.
MIN_REFERENCES = 50
# Floating-point slack when a margin is met exactly (a 2 % margin and a 2.0000 % gain must pass).
EPSILON = 1e-9


@dataclass
class EvalResult:
    library: str
    adapter_version: int
    production_version: int | None
    decision: str  # "promote" or "reject"
    reasons: list[str]
    metrics: dict[str, dict[str, float]]
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # "wins" and "losses"
    report_path: str = ""

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


@dataclass(frozen=True)
class Item:
    """One prompt of the suite and how to score an answer to it."""

    id: str
    kind: str  # "api", "exec" or "general"
    prompt: str
    max_tokens: int
    payload: Any  # the ApiQuestion or ExecTask


def suite_items(dataset_path: str | Path) -> list[Item]:
    from doctune.evalsuite import ApiQuestion, ExecTask, general_tasks

    path = Path(dataset_path) / "evalset.json"
    items: list[Item] = []
    if path.is_file():
        evalset = json.loads(path.read_text())
        for q in evalset["api_questions"][:MAX_API_QUESTIONS]:
            question = ApiQuestion.from_dict(q)
            items.append(Item(question.id, "api", question.prompt, 96, question))
        for t in evalset["exec_tasks"][:MAX_EXEC_TASKS]:
            task = ExecTask.from_dict(t)
            items.append(Item(task.id, "exec", task.prompt, 192, task))
    else:
        log.warning(
            "%s predates the evaluation suite: only held-out loss and the general floor are measured; "
            "rebuild it with `doctune corpus build --force`",
            dataset_path,
        )
    items += [Item(t.id, "general", t.prompt, 192, t) for t in general_tasks()]
    return items


def ask_all(client: Any, models: dict[str, str], items: list[Item]) -> dict[str, list[str]]:
    """Answers per role (base/production/candidate), greedy, with bounded concurrency against the server."""
    jobs = [(role, name, item) for role, name in models.items() for item in items]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(lambda job: client.chat(job[1], job[2].prompt, max_tokens=job[2].max_tokens), jobs))
    out: dict[str, list[str]] = {role: [] for role in models}
    for (role, _, _), answer in zip(jobs, answers, strict=True):
        out[role].append(answer)
    return out


def score_items(
    items: list[Item], answers: list[str], import_name: str, symbols: dict[str, Any], library_path: Path
) -> tuple[dict[str, float], list[float]]:
    """Metrics of one model over the suite, and each item's score (1.0 = passed / fully right)."""
    from doctune.evalsuite import hallucinated, referenced_names, run_exec_task, score_api

    def score(pair: tuple[Item, str]) -> float:
        item, answer = pair
        if item.kind == "api":
            return float(score_api(item.payload, answer))
        lib = library_path if item.kind == "exec" else None
        return float(run_exec_task(item.payload, answer, library_path=lib).passed)

    with ThreadPoolExecutor(SANDBOX_WORKERS) as pool:
        scores = list(pool.map(score, zip(items, answers, strict=True)))
    metrics: dict[str, float] = {}
    for kind, name in (("api", "api_score"), ("exec", "exec_pass_at_1"), ("general", "general_pass_at_1")):
        mine = [s for item, s in zip(items, scores, strict=True) if item.kind == kind]
        if mine:
            metrics[name] = sum(mine) / len(mine)
    library_answers = [a for item, a in zip(items, answers, strict=True) if item.kind != "general"]
    references = [referenced_names(a, import_name) for a in library_answers]
    invented = [hallucinated(a, import_name, symbols) for a in library_answers]
    if library_answers:
        total = sum(len(r) for r in references)
        metrics["library_references"] = float(total)
        metrics["hallucination_rate"] = sum(len(b) for b in invented) / total if total else 0.0
        metrics["answers_with_hallucination"] = sum(bool(b) for b in invented) / len(library_answers)
    return metrics, scores


def _gain(metric: str, value: float, reference: float) -> float:
    """How much better ``value`` is than ``reference``: a fraction for a loss, points for a score."""
    if metric in LOWER_IS_BETTER:
        return (reference - value) / reference if reference else 0.0
    return value - reference


def _amount(metric: str, amount: float) -> str:
    return f"{amount:+.1%}" if metric in LOWER_IS_BETTER else f"{amount * 100:+.1f} points"


def gate(params: GateParams, metrics: dict[str, dict[str, float]]) -> tuple[str, list[str]]:
    """Promote only if the primary metric beats base (and production, by the margin), the general floor did not
    fall and hallucinations did not rise beyond their bounds. Every check adds a reason, passed or not."""
    metric, candidate, base = params.primary_metric, metrics["candidate"], metrics["base"]
    production = metrics.get("production")
    value = candidate.get(metric)
    if value is None or not math.isfinite(value):
        return "reject", [f"candidate has no finite {metric} ({value}); nothing to promote on"]
    reasons: list[str] = []
    ok = True

    def check(passed: bool, text: str) -> None:
        nonlocal ok
        ok = ok and passed
        reasons.append(("ok: " if passed else "FAILED: ") + text)

    gain = _gain(metric, value, base[metric])
    check(
        gain + EPSILON >= params.min_gain_over_base,
        f"{metric} {value:.4f} vs base {base[metric]:.4f}: {_amount(metric, gain)} "
        f"(needs {_amount(metric, params.min_gain_over_base)})",
    )
    if production is not None:
        gain = _gain(metric, value, production[metric])
        check(
            gain + EPSILON >= params.production_margin,
            f"{metric} {value:.4f} vs production {production[metric]:.4f}: {_amount(metric, gain)} "
            f"(needs {_amount(metric, params.production_margin)})",
        )
    reference, against = (production, "production") if production is not None else (base, "base")
    if "general_pass_at_1" in candidate and "general_pass_at_1" in reference:
        drop = reference["general_pass_at_1"] - candidate["general_pass_at_1"]
        check(
            drop <= params.max_general_drop + EPSILON,
            f"general floor pass@1 {candidate['general_pass_at_1']:.2f} vs {against} "
            f"{reference['general_pass_at_1']:.2f} (may drop {params.max_general_drop:.2f})",
        )
    references = min(candidate.get("library_references", 0.0), reference.get("library_references", 0.0))
    if "hallucination_rate" in candidate and references < MIN_REFERENCES:
        # A rate over a handful of names is noise: 1 of 4 vs 2 of 6 would reject a sound adapter.
        reasons.append(
            f"ok: hallucinated-API rate not judged: {references:.0f} library references in the answers, "
            f"fewer than {MIN_REFERENCES}"
        )
    elif "hallucination_rate" in candidate and "hallucination_rate" in reference:
        rise = candidate["hallucination_rate"] - reference["hallucination_rate"]
        check(
            rise <= params.max_hallucination_increase + EPSILON,
            f"hallucinated-API rate {candidate['hallucination_rate']:.2f} vs {against} "
            f"{reference['hallucination_rate']:.2f} (may rise {params.max_hallucination_increase:.2f})",
        )
    return ("promote" if ok else "reject"), reasons


def wins_and_losses(
    items: list[Item], answers: dict[str, list[str]], scores: dict[str, list[float]], limit: int = 5
) -> dict[str, list[dict[str, str]]]:
    """Items the candidate got right and its reference (production, else base) got wrong, and the reverse."""
    reference = "production" if "production" in scores else "base"
    out: dict[str, list[dict[str, str]]] = {"wins": [], "losses": []}
    for i, item in enumerate(items):
        delta = scores["candidate"][i] - scores[reference][i]
        if delta:
            out["wins" if delta > 0 else "losses"].append(
                {
                    "item": item.id,
                    "prompt": item.prompt[:400],
                    "candidate": answers["candidate"][i][:400],
                    reference: answers[reference][i][:400],
                }
            )
    return {k: v[:limit] for k, v in out.items()}


def report_markdown(report: dict[str, Any]) -> str:
    roles = list(report["metrics"])
    names = sorted({k for m in report["metrics"].values() for k in m})
    lines = [
        f"# Evaluation of {report['library']} v{report['adapter_version']}: {report['decision']}",
        "",
        f"Dataset v{report['dataset_version']} (commit {report['commit'][:12]}); production: "
        f"{'v' + str(report['production_version']) if report['production_version'] else 'none (base model)'}; "
        f"primary metric: {report['gate']['primary_metric']}.",
        "",
        "| metric | " + " | ".join(roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for name in names:
        cells = [f"{report['metrics'][r][name]:.4f}" if name in report["metrics"][r] else "" for r in roles]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Gate", "", *(f"- {r}" for r in report["reasons"]), "", "## Suite", ""]
    lines.append(
        f"{report['items']['api']} API questions, {report['items']['exec']} execution tasks and "
        f"{report['items']['general']} general tasks. Questions and tasks come from held-out symbols, doc "
        "sections and tests only: no training pair was generated from those units, and decontamination drops "
        "training pairs that repeat a held-out answer."
    )
    timing = report["timing"]
    lines += [
        "",
        f"Held-out loss {timing['heldout_loss_s']:.1f} s; {timing['requests']} generations in "
        f"{timing['generation_s']:.1f} s ({timing['requests_per_s']:.1f} requests/s); scoring "
        f"{timing['scoring_s']:.1f} s.",
    ]
    for kind in ("wins", "losses"):
        lines += ["", f"## Sample {kind}", ""]
        for sample in report["samples"][kind] or [{"item": "none"}]:
            lines.append(f"- `{sample['item']}`")
            for key, text in sample.items():
                if key != "item":
                    lines.append(f"  - {key}: {' '.join(text.split())[:200]}")
    return "\n".join(lines) + "\n"


def _write_report(folder: Path, report: dict[str, Any]) -> None:
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    (staging / "report.md").write_text(report_markdown(report))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def _tensorboard(settings: Settings, library: str, run: Any, metrics: dict[str, dict[str, float]]) -> None:
    """The gate's scalars next to the candidate's training curves, at its last step."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(settings.tensorboard_path / library / Path(run.output_dir).name))
    for role, values in metrics.items():
        for name, value in values.items():
            writer.add_scalar(f"gate/{name}/{role}", value, run.steps or 0)
    writer.close()


def evaluate(library: LibraryConfig, settings: Settings, adapter_version: int) -> EvalResult:
    """Score candidate, production and base on the candidate's suite, decide, record, and report."""
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
    started = time.perf_counter()
    losses = heldout_losses(
        resolve_base_model(library.base_model, settings), adapters, rows, library.train.max_seq_length
    )
    log.info("held-out loss: %s", ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    timing = {"heldout_loss_s": time.perf_counter() - started}

    client = ensure_vllm(settings, library)
    names = {"base": base_served_name(library.base_model)}
    for role, adapter in (("production", production), ("candidate", candidate)):
        if adapter is not None:
            ensure_loaded(client, adapter.served_name, adapter.path)
            names[role] = adapter.served_name
    items = suite_items(dataset.path)
    log.info("asking %d models %d prompts each (at most %d at once)", len(names), len(items), CONCURRENCY)
    started = time.perf_counter()
    answers = ask_all(client, names, items)
    timing["generation_s"] = time.perf_counter() - started
    timing["requests"] = len(names) * len(items)
    timing["requests_per_s"] = timing["requests"] / timing["generation_s"]
    started = time.perf_counter()
    symbols = json.loads((Path(dataset.path) / "symbols.json").read_text())
    metrics: dict[str, dict[str, float]] = {}
    scores: dict[str, list[float]] = {}
    for role in names:
        log.info("scoring %s's answers (execution in the sandbox)", role)
        scored, scores[role] = score_items(
            items, answers[role], library.import_name, symbols, Path(dataset.path) / "library"
        )
        metrics[role] = {"heldout_loss": losses[role], **scored}
        log.info("%s: %s", role, ", ".join(f"{k} {v:.3f}" for k, v in metrics[role].items()))

    timing["scoring_s"] = time.perf_counter() - started
    decision, reasons = gate(library.gate, metrics)
    evaluation = registry.add_evaluation(
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

    samples = wins_and_losses(items, answers, scores)
    folder = settings.path("evaluations", library.name) / f"e{evaluation.id}-v{candidate.version}"
    counts = {kind: sum(i.kind == kind for i in items) for kind in ("api", "exec", "general")}
    report = {
        "library": library.name,
        "adapter_version": candidate.version,
        "production_version": production.version if production else None,
        "dataset_version": dataset.version,
        "commit": dataset.commit,
        "models": names,
        "metrics": metrics,
        "decision": decision,
        "reasons": reasons,
        "gate": library.gate.model_dump(),
        "items": counts,
        "samples": samples,
        "timing": timing,
    }
    _write_report(folder, report)
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


def evaluation_report(settings: Settings, library: str, adapter_version: int | None = None) -> dict[str, Any]:
    """The report of the latest evaluation (of ``adapter_version``, or of any version)."""
    root = settings.path("evaluations", library)
    pattern = f"e*-v{adapter_version}" if adapter_version is not None else "e*-v*"
    folders = sorted(
        (p for p in root.glob(pattern) if not p.name.endswith(".staging")), key=lambda p: int(p.name[1:].split("-")[0])
    )
    if not folders:
        which = f"v{adapter_version} of {library}" if adapter_version is not None else library
        raise DoctuneError(f"no evaluation report for {which}: run `doctune eval run {library} VERSION` first")
    report: dict[str, Any] = json.loads((folders[-1] / "report.json").read_text())
    report["path"] = str(folders[-1])
    return report
