"""An evaluation's report: the JSON, the Markdown (HEADLINE figures first), every answer, the samples and the
showcase; and reading the latest report back (the console and the CLI print it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from doctune.config import Settings
from doctune.errors import DoctuneError
from doctune.evaluate import freshness
from doctune.evaluate.items import Item

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


def write_report(folder: Path, report: dict[str, Any], answers: list[str]) -> None:
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    (staging / "report.md").write_text(report_markdown(report))
    (staging / "answers.jsonl").write_text("".join(f"{row}\n" for row in answers))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


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
