"""One model's figures over the items it answered: scores, hallucinated-API rate, 95 % Wilson intervals."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from doctune.evaluate.items import Item
from doctune.evaluate.suite import hallucinated, referenced_names, run_exec_task, score_api

SANDBOX_WORKERS = 2


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
