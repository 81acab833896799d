"""Does the adapter know the library? The quality benchmark, on the demo library and on real ones.

Trained and evaluated (SmolLM2-135M-Instruct, the ``smollm2-135m`` preset, full evaluation: every question, the
docs-in-prompt row): the bundled demo library and two real libraries of 40-120 public symbols from registry sdists,
toolz (flat package, star re-exports) and attrs (the ``attrs`` facade over its sibling package ``attr``). Corpus
only (training them on CPU would take hours): click, rich and markupsafe (a compiled extension with a .pyi stub).

Every figure is printed beside the base model's, measured in the same run, with 95 % Wilson intervals, item counts
and training time; the targets of the knowledge issue are printed as met or not, never asserted. Writes
benchmarks/results/quality.json.

Run: ``.venv/bin/python benchmarks/quality.py [--only NAME ...]`` (part of ``make bench``). ``--only`` re-measures
the named libraries and keeps the others' figures from the last run; every library's figures carry the commit and
time they were measured at.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import results
from pipeline import bench_settings, real_library_repo

from doctune import corpus, serve, sources
from doctune.config import LibraryConfig, Settings, write_library
from doctune.evaluate import evaluate
from doctune.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: the demo package is at the root
from demo import DEMO_NAME, prepare_demo_repo  # noqa: E402

BASE_MODEL = "smollm2-135m-instruct"
PRESET = "smollm2-135m"
# name -> (sdist name, version, import name)
TRAINED = {"toolz": ("toolz", "1.2.0", "toolz"), "attrs": ("attrs", "26.1.0", "attrs")}
# The knowledge issue's target is at most 30 minutes of training per real library on this 2-core machine, whose pace
# varies by a third from day to day (attrs took 30.0 minutes once): the time budget fits the run into the window
# whatever today's pace is, by training fewer steps with the schedule ending on the last of them. Model loading and
# the adapter's save come on top of the loop's budget.
TRAINING_BUDGET_MINUTES = 27.0
CORPUS_ONLY = {
    "click": ("click", "8.1.7", "click"),
    "rich": ("rich", "13.9.4", "rich"),
    "markupsafe": ("markupsafe", "3.0.2", "markupsafe"),
}
METRICS = ("api_heldout_phrasing", "api_withheld_qa", "exec_pass_at_1", "hallucination_rate", "general_pass_at_1")
ROWS = ("base", "docs_in_prompt", "candidate")


def corpus_figures(settings: Settings, library: LibraryConfig) -> tuple[Any, dict[str, Any]]:
    started = time.perf_counter()
    dataset = corpus.build(library, settings, sources.sync(library, settings))
    seconds = time.perf_counter() - started
    folder = Path(dataset.path)
    report = json.loads((folder / "report.json").read_text())
    evalset = json.loads((folder / "evalset.json").read_text())
    coverage = report["api_coverage"]
    figures = {
        "corpus_seconds": round(seconds, 1),
        "public_symbols": coverage["public_symbols"],
        "api_coverage": coverage["share"],
        "uncovered": coverage["uncovered"],
        "unresolved_names": len(report["unresolved_names"]),
        "pairs": report["pairs"],
        "pairs_by_generator": report["pairs_by_generator"],
        "test_examples": {k: v for k, v in report["test_examples"].items() if k != "failed"},
        "evalset": {
            "api_questions": len(evalset["api_questions"]),
            "exec_tasks": len(evalset["exec_tasks"]),
            "withheld_symbols": len(evalset["withheld_symbols"]),
        },
        "sample": report["sample"][:3],
    }
    mix = ", ".join(f"{k} {v}" for k, v in sorted(report["pairs_by_generator"].items(), key=lambda kv: -kv[1]))
    print(
        f"corpus of {library.name}: {coverage['public_symbols']} public symbols, API coverage "
        f"{coverage['share']:.0%} (goal >= 90 %), {report['pairs']['train']} training pairs in {seconds:.0f} s, "
        f"{len(report['unresolved_names'])} unresolved names; pair mix: {mix}"
    )
    for sample in figures["sample"]:
        print(f"  sample ({sample['generator']}): {sample['question'][:100]!r} -> {sample['answer'][:100]!r}")
    return dataset, figures


def quality(settings: Settings, library: LibraryConfig) -> dict[str, Any]:
    dataset, figures = corpus_figures(settings, library)
    started = time.perf_counter()
    trained = train(library, settings)
    train_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        result = evaluate(library, settings, trained.adapter_version, full=True)
        eval_s = time.perf_counter() - started
    finally:
        serve.stop_server(settings, "vllm")
    report = json.loads((Path(result.report_path) / "report.json").read_text())
    rows: dict[str, dict[str, Any]] = {}
    for role in ROWS:
        metrics, intervals = report["metrics"].get(role, {}), report["intervals"].get(role, {})
        rows[role] = {
            name: {
                "value": metrics[name],
                "low": intervals[name][0],
                "high": intervals[name][1],
                "n": intervals[name][2],
            }
            for name in METRICS
            if name in metrics and name in intervals
        }
        rows[role] |= {k: metrics[k] for k in metrics if k.startswith("api_heldout_phrasing.")}
    gain = rows["candidate"]["api_heldout_phrasing"]["value"] - rows["base"]["api_heldout_phrasing"]["value"]
    cpu_minutes = train_s / 60 * (os.cpu_count() or 1)
    figures |= {
        "dataset_version": dataset.version,
        "training_seconds": round(train_s),
        "training_steps": trained.steps,
        "training_budget_minutes": library.train.time_budget_minutes,
        "evaluation_seconds": round(eval_s),
        "items": report["items"],
        "rows": rows,
        "api_points_per_cpu_minute": round(gain * 100 / cpu_minutes, 2),
        "gate": {"decision": result.decision, "reasons": result.reasons},
        "showcase": report.get("showcase", {}),
    }
    print(
        f"quality of {library.name} (SmolLM2-135M, {trained.steps} steps in {train_s / 60:.1f} min of training, "
        f"evaluation {eval_s:.0f} s over {report['items']['api']} API questions, {report['items']['exec']} execution "
        f"tasks, {report['items']['general']} general tasks):"
    )
    for name in METRICS:
        cells = []
        for role in ROWS:
            value = rows[role].get(name)
            shown = f"{value['value']:.3f} [{value['low']:.2f}-{value['high']:.2f}] n={value['n']}" if value else "-"
            cells.append(f"{role} {shown}")
        print(f"  {name:<22} " + "; ".join(cells))
    print(f"  knowledge per CPU-minute: {figures['api_points_per_cpu_minute']:+.2f} API points")
    return figures


def _value(figures: dict[str, Any], role: str, metric: str) -> float | None:
    cell = figures.get("rows", {}).get(role, {}).get(metric)
    return None if cell is None else float(cell["value"])


def targets(libraries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The knowledge issue's targets, each with what was measured and whether it is met."""
    checks: list[dict[str, Any]] = []

    def check(what: str, measured: float | None, goal: str, met: bool | None) -> None:
        checks.append({"target": what, "measured": measured, "goal": goal, "met": met})
        shown = "not measured" if measured is None else f"{measured:.3f}"
        print(f"target: {what}: {shown} (goal {goal}) -> {'met' if met else 'NOT met' if met is False else '?'}")

    def compare(name: str, metric: str, goal: str, test: Any, *, gain: bool = True) -> None:
        base, adapter = (_value(libraries[name], role, metric) for role in ("base", "candidate"))
        if base is None or adapter is None:
            check(f"{name} {metric}", None, goal, None)
        else:
            measured = adapter - base if gain else adapter
            check(f"{name} {metric}{', gain over base' if gain else ''}", measured, goal, test(base, adapter))

    if "rows" in libraries.get(DEMO_NAME, {}):
        compare(DEMO_NAME, "api_heldout_phrasing", ">= +0.50", lambda b, a: a - b >= 0.5)
        compare(DEMO_NAME, "api_withheld_qa", ">= +0.25", lambda b, a: a - b >= 0.25)
        compare(DEMO_NAME, "exec_pass_at_1", "> base", lambda b, a: a > b, gain=False)
        compare(DEMO_NAME, "hallucination_rate", "<= half of base", lambda b, a: a <= b / 2, gain=False)
        compare(DEMO_NAME, "general_pass_at_1", ">= base - 0.02", lambda b, a: a >= b - 0.02, gain=False)
    for name, figures in libraries.items():
        check(f"{name} API coverage", figures.get("api_coverage"), ">= 0.90", figures.get("api_coverage", 0) >= 0.9)
    for name in TRAINED:
        if "rows" in libraries.get(name, {}):
            compare(name, "api_heldout_phrasing", ">= +0.30", lambda b, a: a - b >= 0.3)
            minutes = libraries[name]["training_seconds"] / 60
            check(f"{name} training minutes", minutes, "<= 30", minutes <= 30)
    return checks


def main() -> None:
    # The training's own lines: rows and tokens per epoch, and what the time budget planned.
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("doctune.train").setLevel(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="Libraries to run (default: all).")
    everything = [DEMO_NAME, *TRAINED, *CORPUS_ONLY]
    only = parser.parse_args().only
    unknown = sorted(set(only or []) - set(everything))
    if unknown:
        parser.error(f"unknown library {', '.join(unknown)}: choose from {', '.join(everything)}")
    wanted = set(only or everything)
    # A partial run keeps the figures of the libraries it does not re-measure, so one library can be redone alone.
    libraries = {name: figures for name, figures in previous_libraries().items() if name not in wanted}
    with tempfile.TemporaryDirectory(prefix="doctune-bench-quality-") as tmp:
        work = Path(tmp)
        if DEMO_NAME in wanted:
            settings = bench_settings(work / DEMO_NAME)
            repo = prepare_demo_repo(settings)
            library = LibraryConfig(name=DEMO_NAME, repo_url=repo.as_uri(), base_model=BASE_MODEL, preset=PRESET)
            write_library(settings, library)
            libraries[DEMO_NAME] = quality(settings, library) | measured_now()
            save(libraries, final=False)
        # The cheap corpus-only libraries first, so that a run stopped during a long training still has them.
        for name, (sdist, version, package) in {**CORPUS_ONLY, **TRAINED}.items():
            if name not in wanted:
                continue
            settings = bench_settings(work / name)
            repo = real_library_repo(work / "sdists", sdist, version)
            library = LibraryConfig(
                name=name,
                package=package,
                repo_url=repo.as_uri(),
                base_model=BASE_MODEL,
                preset=PRESET,
                train={"time_budget_minutes": TRAINING_BUDGET_MINUTES} if name in TRAINED else {},
            )
            write_library(settings, library)
            if name in TRAINED:
                libraries[name] = quality(settings, library) | {"version": version} | measured_now()
            else:
                libraries[name] = corpus_figures(settings, library)[1] | {"version": version} | measured_now()
            save(libraries, final=False)
    save(libraries, final=True)


def previous_libraries() -> dict[str, dict[str, Any]]:
    path = results.RESULTS / "quality.json"
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get("libraries", {}))


def measured_now() -> dict[str, str]:
    return {"commit": results.commit(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def save(libraries: dict[str, dict[str, Any]], *, final: bool) -> None:
    """Written after every library too: a run stopped during a later one keeps the figures measured so far.

    ``complete`` says every library of the bench has its figures (the trained ones with their evaluation rows)."""
    checks = targets(libraries) if final else []
    measured = set(libraries) == {DEMO_NAME, *TRAINED, *CORPUS_ONLY} and all(
        "rows" in libraries[name] for name in (DEMO_NAME, *TRAINED)
    )
    path = results.write(
        "quality",
        {
            "base_model": BASE_MODEL,
            "preset": PRESET,
            "libraries": libraries,
            "targets": checks,
            "complete": final and measured,
        },
    )
    if final:
        print(markdown_table(libraries))
        print(f"quality figures: {path}")


def markdown_table(libraries: dict[str, dict[str, Any]]) -> str:
    """The trained libraries' figures as the README shows them: base -> adapter, the ceiling, counts, minutes."""
    lines = [
        "| library | metric | base | adapter | docs in prompt | n |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in libraries.items():
        if "rows" not in figures:
            continue
        for metric in METRICS:
            cells = [figures["rows"][role].get(metric) for role in ROWS]
            if cells[2] is None:
                continue
            shown = [f"{c['value']:.3f} [{c['low']:.2f}-{c['high']:.2f}]" if c else "-" for c in cells]
            lines.append(f"| {name} | {metric} | {shown[0]} | {shown[2]} | {shown[1]} | {cells[2]['n']} |")
        lines.append(
            f"| {name} | training | {figures['training_steps']} steps | {figures['training_seconds'] / 60:.1f} min | "
            f"evaluation {figures['evaluation_seconds'] / 60:.1f} min | |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
