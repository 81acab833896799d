"""Freshness: does a model know what changed in the library since the parent dataset version?

A version's evaluation suite carries its API diff against the parent and the diff probes
(``evaluate.suite.apidiff``). Every model in the evaluation answers the probes, production included, so the report
shows yesterday's model beside today's. Per model, beside ``diff_probes`` (the share of probes answered right, which
the gate checks):

- ``new_api_recall``: probes about added, changed, renamed or deprecated API, answered right;
- ``stale_rate``: of the probes an outdated answer can fail, the share whose answer offers the old API (an old
  parameter list, a removed or renamed name);
- ``unchanged_score``: the held-out-phrasing API score over symbols the diff does not touch: did the rest stay known.
"""

from __future__ import annotations

from typing import Any

from doctune.evaluate.suite import is_stale

GROUP = "diff_probes"


def figures(
    items: list[Any], answers: list[str], scores: list[float], touched: set[str]
) -> dict[str, tuple[float, float, int]]:
    """(value, successes, n) of each freshness figure for one model; a figure without items is left out."""
    recall, stale, unchanged = [], [], []
    for item, answer, score in zip(items, answers, scores, strict=True):
        if item.group == GROUP:
            question = item.payload
            if question.change != "removed":
                recall.append(score)
            if question.stale is not None:
                stale.append(float(is_stale(question, answer)))
        elif item.group == "api_heldout_phrasing" and item.symbol not in touched:
            unchanged.append(score)
    out = {}
    for name, values in (("new_api_recall", recall), ("stale_rate", stale), ("unchanged_score", unchanged)):
        if values and (name != "unchanged_score" or recall or stale):
            out[name] = (sum(values) / len(values), sum(values), len(values))
    return out


def probe_rows(items: list[Any], answers: dict[str, list[str]], scores: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Each probe with every model's answer, score and whether it is stale: the report's "what changed" table."""
    rows = []
    for i, item in enumerate(items):
        if item.group != GROUP:
            continue
        question = item.payload
        row: dict[str, Any] = {"item": item.id, "change": question.change, "kind": question.kind}
        row["symbol"] = item.symbol
        row["prompt"] = item.prompt
        for role, given in answers.items():
            if role != "docs_in_prompt" and i < len(given):
                score = scores[role][i] if scores.get(role) else None
                row[role] = {"answer": given[i][:400], "score": score, "stale": is_stale(question, given[i])}
        rows.append(row)
    return rows


def showcase(probes: list[dict[str, Any]]) -> dict[str, Any]:
    """The probe that shows the change best: answered right by the candidate and not by production (the base model
    before a first promotion), an added symbol first, names and signatures before the rest; {} when none is."""
    preference = {"added": 0, "renamed": 1, "changed": 2, "deprecated": 3, "removed": 4}
    kinds = {"which": 0, "signature": 1, "usage": 2}
    reference = "production" if any("production" in row for row in probes) else "base"
    shown = [
        row
        for row in probes
        if row.get("candidate", {}).get("score") == 1 and (row.get(reference, {}).get("score") or 0) < 1
    ]
    if not shown:
        return {}
    best = min(shown, key=lambda r: (preference.get(r["change"], 9), kinds.get(r["kind"], 9)))
    return best | {"reference": reference}


def markdown(freshness: dict[str, Any]) -> list[str]:
    """The report's section on the API diff: one line per probe with production's and the candidate's answer."""
    diff = freshness.get("diff")
    if diff is None:
        return []
    lines = ["", f"## What changed since dataset v{freshness['parent']}", ""]
    counts = ", ".join(f"{len(diff[k])} {k}" for k in ("added", "changed", "renamed", "deprecated", "removed"))
    probes = freshness["probes"]
    if not probes:
        return [*lines, f"No diff probes: {counts} (a prose-only change has none)."]
    lines.append(f"API diff: {counts}; {len(probes)} probes.")
    for row in probes:
        lines.append(f"- `{row['item']}` ({row['change']} `{row['symbol']}`): {' '.join(row['prompt'].split())[:200]}")
        for role in ("production", "candidate", "base"):
            if role in row:
                given = row[role]
                verdict = "stale" if given["stale"] else ("right" if given["score"] == 1 else "wrong")
                lines.append(f"  - {role} ({verdict}): {' '.join(given['answer'].split())[:200]}")
    return lines
