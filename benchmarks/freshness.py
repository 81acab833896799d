"""Freshness: an API commit to the demo library -> the new adapter answering under the stable name, knowing the change.

Trains the demo library (v1) and puts it in production, commits ledgerkite 0.4.0 (``demo.commit_api_change``: a new
function, a changed default, a doc section, a test, a changelog entry), then runs what the sync and retrain DAGs run,
stage by stage: sync, corpus, train, evaluate (in full, against production v1), deploy, and the first answer through
the gateway's stable name. Prints each stage's seconds and the diff probes' figures for the candidate (v2) and
production (v1), measured in the same evaluation, with the goals of the freshness issue (met or not, never
asserted), and writes benchmarks/results/freshness.json. The time a commit waits for the next sync
(``sync_schedule``) and Airflow's scheduling come on top.

Run: ``.venv/bin/python benchmarks/freshness.py [--base-model NAME] [--max-steps N]`` (part of ``make bench``, with
SmolLM2-135M-Instruct and its preset; the tiny Llama with a few steps checks the script itself).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import results
from openai import OpenAI
from pipeline import bench_settings

from doctune import corpus, serve
from doctune.config import Settings
from doctune.evaluate import evaluate
from doctune.sources import sync
from doctune.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: the demo package is at the root
from demo import commit_api_change, demo_library, prepare_demo_repo  # noqa: E402

FIGURES = ("new_api_recall", "stale_rate", "unchanged_score")
GOALS = {
    "new_api_recall": ("candidate >= 0.80, production <= 0.20", lambda c, p: c >= 0.8 and p <= 0.2),
    "stale_rate": ("candidate <= 0.10", lambda c, p: c <= 0.1),
    "unchanged_score": ("candidate within 5 points of production", lambda c, p: c >= p - 0.05),
}


def _answering_model(settings: Settings, stable_name: str) -> str:
    """Which adapter answers a question sent to the stable name (as any OpenAI client sends it)."""
    client = OpenAI(base_url=f"{settings.gateway_url}/v1", api_key="local", max_retries=0)
    reply = client.chat.completions.create(
        model=stable_name, messages=[{"role": "user", "content": "What is ledgerkite?"}], max_tokens=8
    )
    return str(reply.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default="smollm2-135m-instruct")
    parser.add_argument("--max-steps", type=int, default=None, help="Steps per training (default: the preset's).")
    args = parser.parse_args()
    seconds: dict[str, float] = {}

    def timed(stage: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = work()
        seconds[stage] = round(time.perf_counter() - started, 1)
        print(f"{stage}: {seconds[stage]:.0f} s", flush=True)
        return value

    with tempfile.TemporaryDirectory(prefix="doctune-bench-freshness-") as tmp:
        settings = bench_settings(Path(tmp))
        repo = prepare_demo_repo(settings)
        library = demo_library(settings, repo, args.base_model, args.max_steps)
        try:
            corpus.build(library, settings, sync(library, settings))
            serve.deploy(library, settings, train(library, settings).adapter_version)  # production before the commit
            serve.ensure_gateway(settings)
            commit_api_change(repo)
            synced = timed("sync", lambda: sync(library, settings))
            timed("corpus", lambda: corpus.build(library, settings, synced))
            trained = timed("train", lambda: train(library, settings))
            result = timed("evaluate", lambda: evaluate(library, settings, trained.adapter_version, full=True))
            if result.decision == "promote":
                timed("deploy", lambda: serve.deploy(library, settings, trained.adapter_version))
                served = timed("first answer", lambda: _answering_model(settings, library.name))
                print(f"the stable name {library.name!r} answers with {served}")
            else:
                print(f"the gate rejected v{trained.adapter_version}: {'; '.join(result.reasons)}")
        finally:
            for name in ("gateway", "vllm"):
                serve.stop_server(settings, name)
        report = json.loads((Path(result.report_path) / "report.json").read_text())
    metrics, intervals = report["metrics"], report["intervals"]
    figures = {name: {role: metrics[role].get(name) for role in ("candidate", "production")} for name in FIGURES}
    checks = []
    for name, (goal, met) in GOALS.items():
        candidate, production = figures[name]["candidate"], figures[name]["production"]
        known = candidate is not None and production is not None
        checks.append({"figure": name, "goal": goal, "met": bool(known and met(candidate, production))})
        n = intervals["candidate"].get(name, [None, None, 0])[2]
        print(f"{name:<16} production v1 {production}  candidate v2 {candidate}  (n={n}; goal {goal})")
    showcase = report["freshness"].get("showcase") or {}
    if showcase:
        print(f"probe: {showcase['prompt']}")
        for role in ("production", "candidate"):
            print(f"  {role}: {' '.join(showcase.get(role, {}).get('answer', '').split())[:200]}")
    path = results.write(
        "freshness",
        {
            "base_model": args.base_model,
            "max_steps": args.max_steps,
            "seconds_by_stage": seconds,
            "api_diff": report["freshness"]["diff"],
            "probes": len(report["freshness"]["probes"]),
            "seconds_total": round(sum(seconds.values()), 1),
            "decision": result.decision,
            "reasons": result.reasons,
            **figures,
            "targets": checks,
            "showcase": showcase,
        },
    )
    print(f"freshness figures: {path}")


if __name__ == "__main__":
    main()
