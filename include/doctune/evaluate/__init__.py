"""Evaluate a candidate adapter against production and the base model, and decide whether to promote it.

The suite of a dataset version (``evalset.json``, see ``corpus.versions``): every symbol's facts trained, the
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

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from doctune.config import GateParams, LibraryConfig, Settings
from doctune.errors import DoctuneError
from doctune.evaluate import freshness
from doctune.names import LOWER_IS_BETTER, AdapterStatus, Decision
from doctune.sandbox import require_minimum

log = logging.getLogger(__name__)

# Requests in flight against the server: vLLM batches them, so more at once is more answers per second.
CONCURRENCY = 16
EVAL_REQUEST_SECONDS = 600.0
SANDBOX_WORKERS = 2
# Items asked per round; between rounds the time budget is checked (a stratified sample of the suite, in order).
ROUND = 32
# Fewer library names than this in a model's answers make its hallucination rate too noisy to gate on: at 50
# references a rate near 0.3 still has a standard error of about 0.065, more than the default bound of 0.05.
MIN_REFERENCES = 50
# A score decides the gate only over this many items, and only when some model answers at least MIN_CORRECT of
# them: below that it is noise (a model too small to answer, like the tests' tiny Llama, still hits one usage
# question in a hundred by chance, and 1 vs 0 must not decide), and held-out loss decides instead, saying so.
MIN_SCORED_ITEMS = 30
MIN_CORRECT = 5
# Floating-point slack when a margin is met exactly (a 2 % margin and a 2.0000 % gain must pass).
EPSILON = 1e-9
# How much each kind of answer may say, and where it ends: a name or a type is a paragraph, a signature or a call
# one code block. Trained answers fit these; the base model gets the same room.
# A paragraph, not a line, for names and types: a model that opens with a code fence must not be cut off there.
ANSWER_SHAPE: dict[str, tuple[int, list[str]]] = {
    "which": (32, ["\n\n"]),
    "returns": (32, ["\n\n"]),
    "gone": (32, ["\n\n"]),  # a removed symbol's probe asks "which function ...", answered by a name
    "signature": (96, ["```\n"]),
    "params": (128, []),  # a list, or a declaration after a heading: bounded by length only
    "usage": (64, ["```\n"]),  # a code block: its blank line after the imports does not end it
    "exec": (160, ["```\n"]),
    "general": (192, ["```\n"]),
}


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


# Rows per forward pass of the held-out loss, sorted by length so that little of a batch is padding.
LOSS_BATCH = 8


def heldout_losses(
    base_path: str, adapters: dict[str, str], rows: list[dict[str, Any]], max_length: int
) -> dict[str, float]:
    """Mean loss per answer token on ``rows`` for the base model and each adapter (name -> folder)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from doctune.answer_loss import score_answers

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model: Any = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    encoded = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        if len(ids) > prompt_len:
            encoded.append((ids, [-100] * prompt_len + ids[prompt_len:]))
    if not encoded:
        raise DoctuneError("the evaluation split has no answer tokens to score; rebuild the dataset")
    encoded.sort(key=lambda pair: len(pair[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = []
    for start in range(0, len(encoded), LOSS_BATCH):
        chunk = encoded[start : start + LOSS_BATCH]
        width = max(len(ids) for ids, _ in chunk)
        batches.append(
            (
                torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([labels + [-100] * (width - len(labels)) for _, labels in chunk]),
            )
        )

    def mean_loss() -> float:
        total, count = 0.0, 0
        with torch.inference_mode():
            for ids, mask, labels in batches:
                scored = score_answers(model, ids, mask, labels)
                total += float(scored.loss_sum)
                count += scored.tokens
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
    payload: Any  # the ApiQuestion or ExecTask
    group: str  # the metric it counts in: api_heldout_phrasing, api_withheld_qa, exec_pass_at_1, ...
    symbol: str = ""  # the public symbol it is about (for the docs-in-prompt row)

    @property
    def shape(self) -> tuple[int, list[str]]:
        return ANSWER_SHAPE[self.payload.kind if self.kind == "api" else self.kind]


def suite_items(dataset_path: str | Path) -> list[Item]:
    """Every item of a version's suite: the diff probes first (what changed is what this version is about, so a
    sample never leaves them out), then the rest in a stratified order: taking the first N keeps each group's share."""
    from doctune.evaluate.suite import ApiQuestion, ExecTask, general_tasks

    path = Path(dataset_path) / "evalset.json"
    groups: dict[str, list[Item]] = {}
    probes: list[Item] = []
    if path.is_file():
        evalset = json.loads(path.read_text())
        for q in evalset.get("diff_probes", []):
            question = ApiQuestion.from_dict(q)
            probes.append(Item(question.id, "api", question.prompt, question, freshness.GROUP, question.symbol))
        for q in evalset["api_questions"]:
            question = ApiQuestion.from_dict(q)
            group = "api_withheld_qa" if question.split == "withheld" else "api_heldout_phrasing"
            item = Item(question.id, "api", question.prompt, question, group, question.symbol)
            groups.setdefault(f"{group}:{question.kind}", []).append(item)
        for t in evalset["exec_tasks"]:
            task = ExecTask.from_dict(t)
            group = "exec_withheld_pass_at_1" if t.get("split") == "withheld" else "exec_pass_at_1"
            groups.setdefault(group, []).append(Item(task.id, "exec", task.prompt, task, group, task.symbol))
    else:
        log.warning(
            "%s predates the evaluation suite: only held-out loss and the general floor are measured; "
            "rebuild it with `doctune corpus build --force`",
            dataset_path,
        )
    groups["general"] = [Item(t.id, "general", t.prompt, t, "general_pass_at_1") for t in general_tasks()]
    # Round-robin over the groups, each in a stable hashed order: any prefix is a stratified sample.
    for members in groups.values():
        members.sort(key=lambda i: hashlib.sha256(i.id.encode()).hexdigest())
    order: list[Item] = probes
    for rank in range(max(len(m) for m in groups.values())):
        order += [members[rank] for _, members in sorted(groups.items()) if rank < len(members)]
    return order


# Tokens kept free beside the prompt and the answer: the chat template's markers, and a decode that re-encodes
# a few tokens longer than it was cut.
TEMPLATE_MARGIN = 48


def docs_prompt(item: Item, doc: str | None, tokenizer: Any, context_tokens: int) -> str:
    """The item's prompt with the symbol's own reference entry before it: what a perfect retriever would add,
    cut to what fits the server's context beside the question and the longest answer (a long class's docs
    would otherwise make the request fail)."""
    if not doc:
        return item.prompt
    room = context_tokens - item.shape[0] - len(tokenizer(item.prompt)["input_ids"]) - TEMPLATE_MARGIN
    ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
    if room < 32:  # no useful part of the docs fits
        return item.prompt
    if len(ids) > room:
        doc = tokenizer.decode(ids[:room], skip_special_tokens=True) + "\n[...]"
    return f"Documentation:\n\n{doc}\n\n{item.prompt}"


def ask_all(
    client: Any,
    models: dict[str, str],
    items: list[Item],
    *,
    docs_prompts: Callable[[Item], str] | None = None,
    budget_s: float | None = None,
) -> tuple[list[Item], dict[str, list[str]]]:
    """Answers per role, greedy, every model's prompts of a round sent at once. With ``budget_s``, rounds stop once
    the next would not fit: the items answered (a stratified prefix) come back with the answers. The role
    ``docs_in_prompt`` asks the base model with ``docs_prompts(item)``, the documentation in the prompt."""
    answered: list[Item] = []
    out: dict[str, list[str]] = {role: [] for role in models}
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for start in range(0, len(items), ROUND):
            chunk = items[start : start + ROUND]
            if budget_s is not None and answered:
                elapsed = time.perf_counter() - started
                if elapsed + elapsed / len(answered) * len(chunk) > budget_s:
                    log.info("evaluation time budget of %.0f s reached after %d items", budget_s, len(answered))
                    break
            jobs = [
                (
                    role,
                    name,
                    docs_prompts(item) if docs_prompts and role == "docs_in_prompt" else item.prompt,
                    item.shape,
                )
                for role, name in models.items()
                for item in chunk
            ]
            answers = list(pool.map(lambda j: client.chat(j[1], j[2], max_tokens=j[3][0], stop=j[3][1]), jobs))
            for (role, _, _, _), answer in zip(jobs, answers, strict=True):
                out[role].append(answer)
            answered += chunk
            log.info(
                "asked %d of %d items (%d models) in %.0f s",
                len(answered),
                len(items),
                len(models),
                time.perf_counter() - started,
            )
    return answered, out


def _docs_prompts(client: Any, base_name: str, docs: dict[str, str], base_path: str | Path) -> Callable[[Item], str]:
    """Docs-in-prompt prompts cut to the context the server gives the base model (vLLM lists it per model)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    listed = {model["id"]: model for model in client.models()}
    context = int(listed.get(base_name, {}).get("max_model_len") or tokenizer.model_max_length)
    return lambda item: docs_prompt(item, docs.get(item.symbol), tokenizer, context)


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default). Fractional successes (a params question half
    right) are used as they are: the interval of the mean score."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def score_items(
    items: list[Item], answers: list[str], import_name: str, symbols: dict[str, Any], library_path: Path
) -> tuple[dict[str, float], dict[str, tuple[float, float, int]], list[float]]:
    """Metrics of one model over the items it answered, their 95 % intervals with item counts, and each item's
    score (1.0 = passed / fully right)."""
    from doctune.evaluate.suite import hallucinated, referenced_names, run_exec_task, score_api

    def score(pair: tuple[Item, str]) -> float:
        item, answer = pair
        if item.kind == "api":
            return float(score_api(item.payload, answer))
        lib = library_path if item.kind == "exec" else None
        return float(run_exec_task(item.payload, answer, library_path=lib).passed)

    with ThreadPoolExecutor(SANDBOX_WORKERS) as pool:
        scores = list(pool.map(score, zip(items, answers, strict=True)))
    by_metric: dict[str, list[float]] = {}
    for item, value in zip(items, scores, strict=True):
        by_metric.setdefault(item.group, []).append(value)
        if item.kind == "api":
            by_metric.setdefault(f"{item.group}.{item.payload.kind}", []).append(value)
    metrics = {name: sum(values) / len(values) for name, values in by_metric.items()}
    intervals = {name: (*wilson(sum(values), len(values)), len(values)) for name, values in by_metric.items()}
    library_answers = [a for item, a in zip(items, answers, strict=True) if item.kind != "general"]
    references = [referenced_names(a, import_name) for a in library_answers]
    invented = [hallucinated(a, import_name, symbols) for a in library_answers]
    if library_answers:
        total = sum(len(r) for r in references)
        wrong = sum(len(b) for b in invented)
        metrics["library_references"] = float(total)
        metrics["hallucination_rate"] = wrong / total if total else 0.0
        intervals["hallucination_rate"] = (*wilson(wrong, total), total)
        metrics["answers_with_hallucination"] = sum(bool(b) for b in invented) / len(library_answers)
    return metrics, intervals, scores


def _gain(metric: str, value: float, reference: float) -> float:
    """How much better ``value`` is than ``reference``: a fraction for a loss, points for a score."""
    if metric in LOWER_IS_BETTER:
        return (reference - value) / reference if reference else 0.0
    return value - reference


def _amount(metric: str, amount: float) -> str:
    return f"{amount:+.1%}" if metric in LOWER_IS_BETTER else f"{amount * 100:+.1f} points"


def _reliable(metric: str, metrics: dict[str, dict[str, float]], counts: dict[str, int]) -> str:
    """Why a score cannot decide the gate ("" when it can): too few items, or no model answers any of them."""
    if metric in LOWER_IS_BETTER:
        return ""
    if counts.get(metric, 0) < MIN_SCORED_ITEMS:
        return f"{metric} over {counts.get(metric, 0)} items (fewer than {MIN_SCORED_ITEMS}) is too noisy to decide"
    correct = max(values.get(metric, 0.0) * counts[metric] for values in metrics.values())
    if correct < MIN_CORRECT - EPSILON:
        return f"{metric}: no model answers {MIN_CORRECT} of its {counts[metric]} items, too few to tell models apart"
    return ""


def gate(
    params: GateParams, metrics: dict[str, dict[str, float]], counts: dict[str, int] | None = None
) -> tuple[Decision, list[str]]:
    """Promote only if the primary metric beats base (and production, by the margin), held-out loss did not get
    worse than base's, the general floor did not fall and hallucinations did not rise beyond their bounds; when the
    version changed the API, enough diff probes are answered right and stale answers did not rise. Every
    check adds a reason, passed or not. ``counts`` (items per metric) says whether a score is reliable enough to be
    the primary metric; when it is not, held-out loss decides and the first reason says why."""
    metric, candidate, base = params.primary_metric, metrics["candidate"], metrics["base"]
    production = metrics.get("production")
    reasons: list[str] = []
    if counts is not None and (why := _reliable(metric, metrics, counts)):
        reasons.append(f"ok: {why}; heldout_loss decides instead")
        metric = "heldout_loss"
    value = candidate.get(metric)
    if value is None or not math.isfinite(value):
        return Decision.REJECT, [*reasons, f"candidate has no finite {metric} ({value}); nothing to promote on"]
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
    if metric != "heldout_loss" and "heldout_loss" in candidate and "heldout_loss" in base:
        check(
            candidate["heldout_loss"] <= base["heldout_loss"] + EPSILON,
            f"heldout_loss {candidate['heldout_loss']:.4f} not above base {base['heldout_loss']:.4f} (secondary check)",
        )
    reference, against = (production, "production") if production is not None else (base, "base")
    if "general_pass_at_1" in candidate and "general_pass_at_1" in reference:
        drop = reference["general_pass_at_1"] - candidate["general_pass_at_1"]
        check(
            drop <= params.max_general_drop + EPSILON,
            f"general floor pass@1 {candidate['general_pass_at_1']:.2f} vs {against} "
            f"{reference['general_pass_at_1']:.2f} (may drop {params.max_general_drop:.2f})",
        )
    if freshness.GROUP in candidate:  # this version changed the API: the candidate must know the change
        check(
            candidate[freshness.GROUP] + EPSILON >= params.min_diff_probes,
            f"diff probes (what changed in the API since the parent version) {candidate[freshness.GROUP]:.2f} "
            f"answered right (needs {params.min_diff_probes:.2f})",
        )
    if "stale_rate" in candidate and "stale_rate" in reference:
        check(
            candidate["stale_rate"] <= reference["stale_rate"] + EPSILON,
            f"stale-answer rate {candidate['stale_rate']:.2f} (the old API offered) not above {against} "
            f"{reference['stale_rate']:.2f}",
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
    return (Decision.PROMOTE if ok else Decision.REJECT), reasons


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


# The figures a report leads with, in order; per-kind API scores follow them.
HEADLINE = (
    "api_heldout_phrasing",
    "api_withheld_qa",
    "exec_pass_at_1",
    "exec_withheld_pass_at_1",
    "general_pass_at_1",
    "hallucination_rate",
    "heldout_loss",
    "diff_probes",
    "new_api_recall",
    "stale_rate",
    "unchanged_score",
)


def showcase(items: list[Item], answers: dict[str, list[str]], scores: dict[str, list[float]]) -> dict[str, str]:
    """A question about a trained symbol that the base model got wrong and the candidate right, chosen by the
    scores (the suite's stratified order, names and signatures first): what the demo shows."""
    preference = {"which": 0, "signature": 1, "usage": 2, "returns": 3, "params": 4}
    found = [
        i
        for i, item in enumerate(items)
        if item.group == "api_heldout_phrasing" and scores["base"][i] == 0 and scores["candidate"][i] == 1
    ]
    if not found:
        return {}
    best = min(found, key=lambda i: (preference.get(items[i].payload.kind, 9), i))
    return {
        "item": items[best].id,
        "prompt": items[best].prompt,
        "base": answers["base"][best],
        "candidate": answers["candidate"][best],
    }


def _cell(report: dict[str, Any], role: str, name: str) -> str:
    value = report["metrics"][role].get(name)
    if value is None:
        return ""
    interval = report.get("intervals", {}).get(role, {}).get(name)
    return f"{value:.3f} [{interval[0]:.2f}-{interval[1]:.2f}] (n={interval[2]})" if interval else f"{value:.4f}"


def report_markdown(report: dict[str, Any]) -> str:
    roles = list(report["metrics"])
    present = {k for m in report["metrics"].values() for k in m}
    names = [n for n in HEADLINE if n in present] + sorted(n for n in present if "." in n)
    names += sorted(present - set(names))
    lines = [
        f"# Evaluation of {report['library']} v{report['adapter_version']}: {report['decision']}",
        "",
        f"Dataset v{report['dataset_version']} (commit {report['commit'][:12]}); production: "
        f"{'v' + str(report['production_version']) if report['production_version'] else 'none (base model)'}; "
        f"primary metric: {report['gate']['primary_metric']}. Scores with a 95 % Wilson interval and the number of "
        "items (for the hallucination rate: of library names referenced).",
        "",
        "| metric | " + " | ".join(roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    lines += [f"| {name} | " + " | ".join(_cell(report, r, name) for r in roles) + " |" for name in names]
    lines += ["", "## Gate", "", *(f"- {r}" for r in report["reasons"]), "", "## Suite", ""]
    items = report["items"]
    lines.append(
        f"{items['api']} API questions, {items['exec']} execution tasks and {items['general']} general tasks"
        + (f" (a stratified sample of {items['available']} within the time budget)" if items.get("sampled") else "")
        + f". {report.get('protocol', '')}"
    )
    timing = report["timing"]
    lines += [
        "",
        f"Held-out loss {timing['heldout_loss_s']:.1f} s; {timing['requests']} generations in "
        f"{timing['generation_s']:.1f} s ({timing['requests_per_s']:.1f} requests/s); scoring "
        f"{timing['scoring_s']:.1f} s.",
    ]
    lines += ["", f"Generated code ran in the sandbox with: {', '.join(report['sandbox_layers'])}."]
    lines += freshness.markdown(report.get("freshness", {}))
    if report.get("showcase"):
        shown = report["showcase"]
        lines += ["", "## Showcase", "", f"- `{shown['item']}`: {shown['prompt']}"]
        lines += [f"  - {role}: {' '.join(shown[role].split())[:300]}" for role in ("base", "candidate")]
    for kind in ("wins", "losses"):
        lines += ["", f"## Sample {kind}", ""]
        for sample in report["samples"][kind] or [{"item": "none"}]:
            lines.append(f"- `{sample['item']}`")
            for key, text in sample.items():
                if key != "item":
                    lines.append(f"  - {key}: {' '.join(text.split())[:200]}")
    return "\n".join(lines) + "\n"


def answer_rows(items: list[Item], answers: dict[str, list[str]], scores: dict[str, list[float]]) -> list[str]:
    """Every item with each model's answer and score, one JSON line each (``answers.jsonl`` of a report)."""
    rows = []
    for i, item in enumerate(items):
        row: dict[str, Any] = {"item": item.id, "group": item.group, "prompt": item.prompt}
        for role, given in answers.items():
            if i < len(given) and (role != "docs_in_prompt" or item.kind != "general"):
                row[role] = {"answer": given[i], "score": scores[role][i] if scores.get(role) else None}
        rows.append(json.dumps(row, ensure_ascii=False))
    return rows


def _write_report(folder: Path, report: dict[str, Any], answers: list[str]) -> None:
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    (staging / "report.md").write_text(report_markdown(report))
    (staging / "answers.jsonl").write_text("".join(f"{row}\n" for row in answers))
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


def evaluate(library: LibraryConfig, settings: Settings, adapter_version: int, *, full: bool = False) -> EvalResult:
    """Score candidate, production and base on the candidate's suite, decide, record, and report.

    The gate asks a stratified sample that fits ``library.gate.eval_seconds``; ``full`` asks every item and adds
    the docs-in-prompt row (the base model with each symbol's documentation in the prompt)."""
    from doctune.base_models import resolve_base_model
    from doctune.corpus.apidiff import ApiDiff
    from doctune.registry import Registry
    from doctune.registry.artefacts import load_rows
    from doctune.serve import base_served_name, ensure_loaded, ensure_vllm, vllm_client

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
    fitted = _docs_prompts(client, base_name, evalset.get("docs", {}), base_path) if full else None
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
    _write_report(folder, report, answer_rows(items, answers, scores))
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
