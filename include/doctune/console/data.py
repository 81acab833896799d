"""Read-only views of the pipeline's state for the console: libraries, dataset versions and their pairs,
training curves from TensorBoard event files and the adapter leaderboard.

Nothing here changes state; the console's actions call ``serve``, ``train`` and the CLI (see ``views``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doctune.config import LibraryConfig, Settings, library_files, load_library
from doctune.corpus import diff_pairs, diff_rows
from doctune.errors import DoctuneError
from doctune.evaluate import HEADLINE, evaluation_report
from doctune.names import LOWER_IS_BETTER, AdapterStatus
from doctune.registry import load_rows

SPLITS = ("train", "eval", "rejected")
# Leaderboard columns first in the order evaluation reports lead with, then any other metric the suite produced.
METRIC_ORDER = HEADLINE
NOT_RANKED = {"library_references"}  # a count, not a quality


def libraries(settings: Settings) -> tuple[list[LibraryConfig], list[str]]:
    """Every configured library, and one message per config file that does not load."""
    found, problems = [], []
    for path in library_files(settings):
        try:
            found.append(load_library(path, settings.base_model))
        except DoctuneError as exc:
            problems.append(str(exc))
    return found, problems


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def dataset_versions(registry: Any, library: str) -> list[dict[str, Any]]:
    """Dataset versions of a library, newest first, each with its manifest and quality report (if on disk)."""
    rows = []
    for dataset in reversed(registry.datasets(library)):
        folder = Path(dataset.path)
        rows.append(
            {
                "version": dataset.version,
                "commit": dataset.commit,
                "created_at": dataset.created_at,
                "n_train": dataset.n_train,
                "n_eval": dataset.n_eval,
                "path": str(folder),
                "manifest": read_json(folder / "manifest.json") or {},
                "report": read_json(folder / "report.json") or {},
            }
        )
    return rows


def load_split(dataset_path: str | Path, split: str) -> list[dict[str, Any]]:
    """One split of a version as rows; ``rejected.jsonl`` is optional (older versions lack it)."""
    if split == "rejected" and not (Path(dataset_path) / "rejected.jsonl").is_file():
        return []
    return load_rows(dataset_path, split)


def pair_view(row: dict[str, Any], split: str) -> dict[str, Any]:
    meta = row.get("meta", {})
    rejected = meta.get("rejected") or {}
    return {
        "split": meta.get("split", split) if split == "rejected" else split,
        "question": row["messages"][0]["content"],
        "answer": row["messages"][-1]["content"],
        "unit": meta.get("unit", ""),
        "path": meta.get("path", ""),
        "generator": meta.get("generator", ""),
        "rejected": f"{rejected.get('filter', '')}: {rejected.get('reason', '')}" if rejected else "",
    }


def _bucket(pair: dict[str, Any]) -> str:
    return "rejected" if pair["rejected"] else str(pair["split"])


@dataclass
class PairPage:
    rows: list[dict[str, Any]]
    total: int
    paths: list[str]
    units: list[str]
    counts: dict[str, int] = field(default_factory=dict)


def browse_pairs(
    dataset_path: str | Path,
    *,
    split: str = "",
    path: str = "",
    unit: str = "",
    text: str = "",
    offset: int = 0,
    limit: int = 50,
) -> PairPage:
    """Kept and rejected pairs of a version, filtered by split, source file, unit (symbol or doc section) and
    text; with the facets (every source file and unit) for the filter menus."""
    every = [pair_view(r, s) for s in SPLITS for r in load_split(dataset_path, s)]
    needle = text.lower()
    chosen = [
        r
        for r in every
        if (not split or _bucket(r) == split)
        and (not path or r["path"] == path)
        and (not unit or r["unit"] == unit)
        and (not needle or needle in r["question"].lower() or needle in r["answer"].lower())
    ]
    return PairPage(
        rows=chosen[offset : offset + limit],
        total=len(chosen),
        paths=sorted({r["path"] for r in every if r["path"]}),
        units=sorted({r["unit"] for r in every if r["unit"]}),
        counts={s: sum(1 for r in every if _bucket(r) == s) for s in SPLITS},
    )


def dataset_diff(old_path: str | Path, new_path: str | Path) -> dict[str, Any]:
    """Pairs added, removed and changed between two versions (kept pairs of both splits, as `doctune corpus
    diff` compares them), with the counts ``diff_rows`` reports."""
    old, new = ([r for s in ("train", "eval") for r in load_rows(p, s)] for p in (old_path, new_path))
    pairs = diff_pairs(old, new)
    return {
        "summary": diff_rows(old, new),
        "added": [pair_view(r, r["meta"].get("split", "")) for r in pairs["added"]],
        "removed": [pair_view(r, r["meta"].get("split", "")) for r in pairs["removed"]],
        "changed": [(pair_view(a, ""), pair_view(b, "")) for a, b in pairs["changed"]],
    }


def api_change(settings: Settings, registry: Any, library: str, dataset: Any) -> dict[str, Any] | None:
    """A version's API diff against its parent with its probes and, once an adapter trained on that version was
    evaluated, each probe's answers (production's, the candidate's) from the latest such evaluation."""
    evalset = read_json(Path(dataset.path) / "evalset.json") or {}
    if not evalset.get("api_diff"):
        return None
    answered: dict[str, dict[str, Any]] = {}
    adapter = None
    for candidate in reversed(registry.adapters(library)):
        if candidate.dataset_version == dataset.version:
            try:
                report = evaluation_report(settings, library, candidate.version)
            except DoctuneError:
                continue
            answered = {row["item"]: row for row in (report.get("freshness") or {}).get("probes", [])}
            adapter = {"version": candidate.version, "production": report.get("production_version")}
            break
    probes = [p | {"answers": answered.get(p["id"], {})} for p in evalset.get("diff_probes", [])]
    return {"diff": evalset["api_diff"], "probes": probes, "evaluated": adapter}


def freshness_points(board: dict[str, Any]) -> list[dict[str, Any]]:
    """New-API recall and stale-answer rate of each evaluated adapter version, oldest first (the adapters page's
    chart); versions evaluated without an API change have none."""
    points = [
        {"version": r["version"], "recall": r["metrics"]["new_api_recall"], "stale": r["metrics"].get("stale_rate")}
        for r in board["rows"]
        if r["version"] and "new_api_recall" in r["metrics"]
    ]
    return sorted(points, key=lambda p: p["version"])


# -- training ----------------------------------------------------------------------------------------------


def tensorboard_dir(settings: Settings, run: Any) -> Path:
    """Where ``train`` wrote a run's TensorBoard events: <tensorboard>/<library>/<run key>."""
    return settings.tensorboard_path / run.library / Path(run.output_dir).name


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in a run's TensorBoard event files (all sub-folders, all files: a resumed run writes
    a new file), by tag; per step the latest value wins."""
    if not folder.is_dir():
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, dict[int, float]] = {}
    for directory, _, files in sorted(os.walk(folder)):
        if not any(".tfevents." in f for f in files):
            continue
        accumulator = EventAccumulator(directory, size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get("scalars", []):
            points = series.setdefault(tag, {})
            for event in accumulator.Scalars(tag):
                points[int(event.step)] = float(event.value)
    return {tag: sorted(points.items()) for tag, points in sorted(series.items())}


def checkpoints(run: Any) -> list[str]:
    folder = Path(run.output_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("checkpoint-*[0-9]") if p.is_dir()]
    return [p.name for p in sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]))]


# -- adapters ----------------------------------------------------------------------------------------------


def leaderboard(registry: Any, library: str) -> dict[str, Any]:
    """Base model, production and every other adapter with its latest evaluation, side by side."""
    rows: list[dict[str, Any]] = []
    base_metrics: dict[str, float] | None = None
    for adapter in registry.adapters(library):
        evaluation = registry.latest_evaluation(library, adapter.version)
        metrics = evaluation.metrics.get("candidate", {}) if evaluation else {}
        if evaluation and "base" in evaluation.metrics:
            base_metrics = evaluation.metrics["base"]  # the latest evaluation's base figures
        rows.append(
            {
                "name": adapter.served_name,
                "version": adapter.version,
                "status": adapter.status,
                "dataset": adapter.dataset_version,
                "created_at": adapter.created_at,
                "metrics": metrics,
                "decision": evaluation.decision if evaluation else None,
                "reasons": evaluation.reasons.splitlines() if evaluation else [],
                "evaluated_at": evaluation.created_at if evaluation else None,
            }
        )
    shown_first = (
        AdapterStatus.PRODUCTION,
        AdapterStatus.PREVIOUS,
        AdapterStatus.CANDIDATE,
        AdapterStatus.REJECTED,
        AdapterStatus.RETIRED,
    )
    order = {status: place for place, status in enumerate(shown_first)}
    rows.sort(key=lambda r: (order.get(r["status"], 5), -r["version"]))
    if base_metrics is not None:
        rows.insert(
            0,
            {
                "name": "base model",
                "version": None,
                "status": "base",
                "metrics": base_metrics,
                "dataset": None,
                "decision": None,
                "reasons": [],
                "created_at": None,
                "evaluated_at": None,
            },
        )
    seen = {k for r in rows for k in r["metrics"]}
    metrics = [m for m in METRIC_ORDER if m in seen] + sorted(seen - set(METRIC_ORDER))
    best: dict[str, float] = {}
    for metric in metrics:
        values = [r["metrics"][metric] for r in rows if isinstance(r["metrics"].get(metric), int | float)]
        if metric not in NOT_RANKED and len(set(values)) > 1:  # a tie everywhere has no best
            best[metric] = min(values) if metric in LOWER_IS_BETTER else max(values)
    return {"rows": rows, "metrics": metrics, "best": best}
