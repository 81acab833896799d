"""A version's quality report (``report.json``) and its markdown (``report.md``, ``doctune corpus show``): pairs kept
and rejected by generator and filter, API coverage, answer lengths, skipped files, secrets removed, a sample."""

from __future__ import annotations

from collections import Counter
from typing import Any

from doctune.config import LibraryConfig
from doctune.corpus import filters
from doctune.reader.extract import Surface


def _quantiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "p50": ordered[len(ordered) // 2],
        "p90": ordered[int(len(ordered) * 0.9)],
        "max": ordered[-1],
    }


def quality_report(
    library: LibraryConfig, surface: Surface, verdicts: filters.Verdicts, snippets: dict[str, Any]
) -> dict[str, Any]:
    kept = verdicts.train + verdicts.eval
    public = sorted(n for n, s in surface.symbols.items() if s["kind"] in ("function", "class", "method"))
    covered = {r["meta"]["unit"].removeprefix("api:") for r in verdicts.train if r["meta"]["unit"].startswith("api:")}
    reasons = Counter(r["meta"]["rejected"]["filter"] for r in verdicts.rejected)
    return {
        "library": library.name,
        "pairs": {"train": len(verdicts.train), "eval": len(verdicts.eval), "rejected": len(verdicts.rejected)},
        "units_by_source": dict(Counter(u.kind for u in surface.units)),
        "pairs_by_generator": dict(Counter(r["meta"]["generator"] for r in kept)),
        "rejected_by_filter": dict(reasons),
        "duplicates_removed": reasons["duplicate"] + reasons["near-duplicate"],
        "api_coverage": {
            "public_symbols": len(public),
            "covered": len(covered & set(public)),
            "share": round(len(covered & set(public)) / len(public), 4) if public else 0.0,
            "uncovered": sorted(set(public) - covered)[:25],
        },
        "answer_chars": _quantiles([len(r["messages"][-1]["content"]) for r in kept]),
        "skipped_files": surface.skipped,
        "unresolved_names": surface.unresolved,
        "test_examples": snippets,
        "secrets_removed": dict(surface.scrubbed),
        "sample": [
            {
                "question": r["messages"][0]["content"],
                "answer": r["messages"][-1]["content"][:300],
                "generator": r["meta"]["generator"],
            }
            for r in kept[:: max(len(kept) // 5, 1)][:5]
        ],
        "rejected_sample": [
            {"question": r["messages"][0]["content"][:200], **r["meta"]["rejected"]} for r in verdicts.rejected[:5]
        ],
    }


def report_markdown(report: dict[str, Any], version: int) -> str:
    pairs, coverage = report["pairs"], report["api_coverage"]
    lines = [
        f"# Dataset v{version} of {report['library']}: quality report",
        "",
        f"- pairs: {pairs['train']} train, {pairs['eval']} held out, {pairs['rejected']} rejected",
        f"- API coverage: {coverage['covered']}/{coverage['public_symbols']} public symbols "
        f"({coverage['share']:.0%}) have at least one pair",
        f"- duplicates removed: {report['duplicates_removed']}",
        f"- answer length (characters): {report['answer_chars']}",
        f"- secrets or private hosts removed: {report['secrets_removed'] or 'none'}",
        "",
        "| source | units |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(report["units_by_source"].items())),
        "",
        "| generator | pairs kept |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(report["pairs_by_generator"].items())),
        "",
        "| filter | pairs rejected |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(report["rejected_by_filter"].items())),
        "",
    ]
    examples = report["test_examples"]
    lines += [
        f"- tests as runnable examples: {examples['examples']} of {examples['tests']} training tests, "
        f"{examples['verified']} run in the sandbox"
        + (f" (not run: {examples['not_run']})" if examples["not_run"] else "")
        + f"; refused {sum(examples['refused'].values())}, failed {len(examples['failed'])}; "
        f"{examples['tasks']} continuation tasks from the tests and doc examples that train",
        "",
    ]
    if report["unresolved_names"]:
        lines += [
            "| public name not resolved | why |",
            "|---|---|",
            *(f"| `{k}` | {v} |" for k, v in sorted(report["unresolved_names"].items())),
            "",
        ]
    if report["skipped_files"]:
        lines += [
            "| skipped file | reason |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in sorted(report["skipped_files"].items())),
            "",
        ]
    lines += ["## Sample", ""] + [f"- **{s['question']}** ({s['generator']})" for s in report["sample"]]
    return "\n".join(lines) + "\n"
