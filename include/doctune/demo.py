"""The demo: the bundled ``ledgerkite`` library, made a git repository and run through Airflow end to end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from doctune.config import REPO_ROOT, LibraryConfig, Settings, write_library
from doctune.errors import DoctuneError

DEMO_SOURCE = REPO_ROOT / "include" / "demo_library"
DEMO_NAME = "ledgerkite"
# Fixed identity and dates: the demo repository's first commit is the same on every machine.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "doctune demo",
    "GIT_AUTHOR_EMAIL": "demo@doctune.invalid",
    "GIT_COMMITTER_NAME": "doctune demo",
    "GIT_COMMITTER_EMAIL": "demo@doctune.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}
SAMPLE_QUESTION = "What does `ledgerkite.envelopes.nibble` do?"


def run_git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def prepare_demo_repo(settings: Settings, source: Path = DEMO_SOURCE) -> Path:
    """A real git repository of the demo library (created once); the pipeline pulls it by URL."""
    repo = settings.home / "demo" / DEMO_NAME
    if (repo / ".git").is_dir():
        return repo
    staging = repo.with_name(f".{DEMO_NAME}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc"))
    run_git(staging, "init", "-q", "-b", "main")
    run_git(staging, "add", "-A")
    run_git(staging, "commit", "-q", "-m", "ledgerkite 0.3.0")
    staging.rename(repo)
    return repo


def edit_demo_docs(repo: Path, n: int) -> str:
    """Commit a new documentation section (a real doc change), returning the new commit."""
    page = repo / "docs" / "envelopes.md"
    page.write_text(
        page.read_text()
        + (
            f"\n## Envelope tips ({n})\n\nKeep one envelope called `buffer` with `rollover=True` and refill it "
            f"with `ledgerkite.refill(pot)` at the start of every month; tip number {n}.\n"
        )
    )
    run_git(repo, "add", "docs/envelopes.md")
    run_git(repo, "commit", "-q", "-m", f"docs: envelope tip {n}")
    return run_git(repo, "rev-parse", "HEAD")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise DoctuneError(f"{path} does not contain {old!r}: the demo library was edited by hand; delete it to reset")
    path.write_text(text.replace(old, new, 1))


def commit_api_change(repo: Path) -> str:
    """Commit ledgerkite 0.4.0, a real API change: a new public function ``average_outlay`` with its docstring, doc
    section and test, ``leaderboard``'s default ``top`` raised from 3 to 5, and a changelog entry. Returns the
    commit. The next corpus version's evaluation probes exactly this change (``corpus.apidiff``)."""
    reports = repo / "ledgerkite" / "reports.py"
    _edit(reports, '    "leaderboard",\n', '    "average_outlay",\n    "leaderboard",\n')
    _edit(
        reports,
        "def leaderboard(outlays: Iterable[Outlay], top: int = 3)",
        "def leaderboard(outlays: Iterable[Outlay], top: int = 5)",
    )
    reports.write_text(
        reports.read_text()
        + "\n\ndef average_outlay(outlays: Iterable[Outlay], envelope: str | None = None) -> float:\n"
        '    """Mean amount of the outlays, in cents.\n\n'
        "    Args:\n"
        "        outlays: Outlays to average.\n"
        "        envelope: Only count outlays against this envelope; all of them when None.\n\n"
        "    Returns:\n"
        "        The mean amount in cents, 0.0 when no outlay counts.\n"
        '    """\n'
        "    amounts = [o.amount for o in outlays if envelope is None or o.envelope == envelope]\n"
        "    return sum(amounts) / len(amounts) if amounts else 0.0\n"
    )
    _edit(repo / "ledgerkite" / "__init__.py", "    Digest, burn_rate,", "    Digest, average_outlay, burn_rate,")
    docs = repo / "docs" / "reports.md"
    _edit(docs, "### `leaderboard(outlays, top=3)`", "### `leaderboard(outlays, top=5)`")
    docs.write_text(
        docs.read_text()
        + "\n### `average_outlay(outlays, envelope=None)`\n\nThe mean amount of a set of outlays in cents, optionally "
        "only those against one envelope.\n\n"
        '```python\nassert lk.average_outlay(outlays, envelope="food") == 3500.0\n```\n'
    )
    tests = repo / "tests" / "test_reports.py"
    tests.write_text(
        tests.read_text() + "\n\ndef test_average_outlay_of_one_envelope():\n"
        '    assert lk.average_outlay(OUTLAYS, envelope="food") == 3500.0\n'
        "    assert lk.average_outlay([]) == 0.0\n"
    )
    _edit(
        repo / "CHANGELOG.md",
        "## [0.3.0]",
        "## [0.4.0] - 2026-02-01\n\n### Added\n- `average_outlay(outlays, envelope=None)` in `ledgerkite.reports`.\n\n"
        "### Changed\n- `leaderboard()` returns the top 5 envelopes by default (was 3).\n\n## [0.3.0]",
    )
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "ledgerkite 0.4.0: average_outlay(), leaderboard() top 5 by default")
    return run_git(repo, "rev-parse", "HEAD")


def commit_next_change(repo: Path) -> str:
    """What ``doctune demo --edit-docs`` commits: ledgerkite 0.4.0's API change the first time, then a documentation
    tip each time (prose only: its version has no diff probes). Says what it committed."""
    if "def average_outlay" not in (repo / "ledgerkite" / "reports.py").read_text():
        commit = commit_api_change(repo)
        return (
            f"committed an API change to the demo library (0.4.0: new average_outlay, leaderboard top=5): {commit[:12]}"
        )
    n = len(run_git(repo, "log", "--oneline").splitlines())
    return f"committed a doc change to the demo library: {edit_demo_docs(repo, n)[:12]}"


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for the demo's Airflow: SQLite metadata under DOCTUNE_HOME, our dags/ folder."""
    home = settings.path("airflow")
    return {
        **os.environ,
        "DOCTUNE_HOME": str(settings.home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONUNBUFFERED": "1",  # progress lines arrive as they happen, not in 8 KiB chunks
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


# A task log line as Airflow 3 prints it: "<iso time> [level   ] message [logger] key=value ..."
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d)\S* \[(\w+)\s*\] (.*?)\s+\[([\w.]+)\]")


def _progress_line(line: str) -> str | None:
    """doctune's own log lines and task state changes, condensed to "time message"."""
    match = _LOG_LINE.match(line)
    if match and (match[4].startswith("doctune.") or match[2] == "error"):
        return f"{match[1]} {match[3]}"
    if "Marking task as" in line:
        return line.strip()[:160]
    return None


def run_airflow(settings: Settings, args: list[str], logfile: Path, console: Console | None = None) -> None:
    """Run an ``airflow`` CLI command; its full output goes to ``logfile``, doctune's own lines to the console."""
    env = airflow_env(settings)
    with (
        open(logfile, "a") as log,
        subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            shown = _progress_line(line)
            if console and shown:
                console.print(shown, markup=False, highlight=False)
    if proc.returncode != 0:
        raise DoctuneError(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}); see {logfile}")


PRESETS = {"tiny-llama": "tiny-llama", "smollm2-135m-instruct": "smollm2-135m"}


def demo_library(settings: Settings, repo: Path, base_model: str, max_steps: int | None = None) -> LibraryConfig:
    """The demo's config: the base model's training preset (passes over the corpus), or ``max_steps`` steps."""
    library = LibraryConfig.model_validate(
        {
            "name": DEMO_NAME,
            "repo_url": repo.as_uri(),
            "base_model": base_model,
            "sync_schedule": None,
            "retrain_schedule": None,
            "preset": PRESETS.get(base_model),
            "train": {} if max_steps is None else {"max_steps": max_steps, "num_epochs": None},
        }
    )
    write_library(settings, library)  # the demo owns its state folder: its config is always the embedded one
    return library


def run_pipeline(settings: Settings, library: LibraryConfig, console: Console | None = None) -> None:
    """Trigger the library's retrain DAG through Airflow itself (``airflow dags test``)."""
    logfile = settings.path("logs") / "airflow-demo.log"
    run_airflow(settings, ["db", "migrate"], logfile)
    run_airflow(settings, ["pools", "set", "gpu", "1", "one GPU: training runs one at a time"], logfile)
    run_airflow(settings, ["dags", "test", f"doctune_retrain__{library.name}"], logfile, console)


def summary(
    settings: Settings, library: LibraryConfig, console: Console, dataset_before: int | None
) -> dict[str, object]:
    from doctune.registry import Registry
    from doctune.serve import ask, base_served_name, ensure_gateway, ensure_vllm

    registry = Registry.open(settings)
    snapshot = registry.latest_snapshot(library.name)
    dataset = registry.latest_dataset(library.name)
    production = registry.production(library.name)
    if snapshot is None or dataset is None or production is None:
        rejected = registry.adapters(library.name)
        evaluation = registry.latest_evaluation(library.name, rejected[-1].version) if rejected else None
        why = f": the gate said {evaluation.reasons!r}" if evaluation else "; see the Airflow log above"
        raise DoctuneError(f"the pipeline did not produce a production adapter{why}")
    evaluation = registry.latest_evaluation(library.name, production.version)
    metrics = evaluation.metrics if evaluation else {}
    report = _evaluation_report(settings, library.name, production.version)
    run = registry.run(production.training_run_id)
    ensure_vllm(settings, library)
    ensure_gateway(settings)
    # The question to show is chosen by the evaluation: about a trained symbol, asked in a phrasing no training pair
    # uses, answered wrongly by the base model and rightly by the adapter. Asked again live, through the stable name.
    shown = report.get("showcase") or {}
    question = shown.get("prompt") or SAMPLE_QUESTION
    base_answer = shown.get("base") or ask(settings, base_served_name(library.base_model), question, max_tokens=96)
    answer = ask(settings, library.name, question, max_tokens=96)

    table = Table(title=f"doctune demo: {library.name}", show_header=False)
    if dataset.version == dataset_before:
        table.add_row("this run", f"no doc change since dataset v{dataset.version}: nothing rebuilt or trained")
    table.add_row("commit pulled", snapshot.commit[:12])
    table.add_row(
        "dataset", f"v{dataset.version}: {dataset.n_train} train pairs, {dataset.n_eval} held-out-phrasing pairs"
    )
    table.add_row("training", f"{run.steps} steps on {library.base_model}, final train loss {run.train_loss:.3f}")
    if metrics:
        base, adapter = metrics["base"], metrics["candidate"]
        table.add_row("held-out loss", f"base {base['heldout_loss']:.3f} -> adapter {adapter['heldout_loss']:.3f}")
        counts = report.get("intervals", {}).get("candidate", {})
        scores = [
            f"{label} {base[key]:.2f} -> {adapter[key]:.2f}" + (f" (n={counts[key][2]})" if key in counts else "")
            for key, label in (
                ("api_heldout_phrasing", "API questions in held-out phrasings"),
                ("api_withheld_qa", "withheld-QA control"),
                ("exec_pass_at_1", "execution pass@1"),
                ("hallucination_rate", "hallucinated APIs"),
                ("general_pass_at_1", "general floor"),
            )
            if key in base and key in adapter
        ]
        if scores:
            table.add_row("evaluation suite", "; ".join(scores) + f" (`doctune eval show {library.name}`)")
    table.add_row("promoted", f"{production.served_name}, served as `{library.name}`")
    _freshness_rows(table, report)
    table.add_row("question", question + ("  (chosen by the evaluation)" if shown else ""))
    table.add_row("base model", base_answer.strip())
    table.add_row(f"`{library.name}`", answer.strip())
    console.print(table)
    console.print(
        f'Ask it yourself: `doctune ask {library.name} "..."`, or point any OpenAI client at '
        f"{settings.gateway_url}/v1 with model `{library.name}`. Stop the servers: `make stop`."
    )
    return {
        "commit": snapshot.commit,
        "dataset_version": dataset.version,
        "adapter_version": production.version,
        "question": question,
        "answer": answer,
        "metrics": metrics,
    }


def _freshness_rows(table: Table, report: dict[str, Any]) -> None:
    """The API change since the parent dataset version, the freshness figures, and for one probe chosen by the
    evaluation the previous model's answer beside the new adapter's."""
    freshness = report.get("freshness") or {}
    diff = freshness.get("diff")
    if not diff:
        return
    kinds = ("added", "changed", "renamed", "deprecated", "removed")
    changes = [f"{len(diff[k])} {k} ({', '.join(_names(diff[k]))})" for k in kinds if diff[k]]
    table.add_row(
        "API change", "; ".join(changes) or f"none since dataset v{freshness['parent']}: prose only, no probes"
    )
    metrics = report["metrics"]
    before = "production" if "production" in metrics else "base"
    figures = [
        f"{label} {metrics[before][key]:.2f} -> {metrics['candidate'][key]:.2f}"
        for key, label in (("new_api_recall", "new-API recall"), ("stale_rate", "stale answers"))
        if key in metrics["candidate"] and key in metrics[before]
    ]
    if figures:
        table.add_row("freshness", f"{before} -> adapter: " + "; ".join(figures))
    shown = freshness.get("showcase") or {}
    if shown:
        reference = shown["reference"]
        label = f"v{report['production_version']} (before)" if reference == "production" else "base model"
        table.add_row("what changed, asked", f"{shown['prompt']}  (a diff probe, chosen by the evaluation)")
        table.add_row(label, " ".join(shown[reference]["answer"].split())[:300])
        table.add_row("new adapter", " ".join(shown["candidate"]["answer"].split())[:300])


def _names(entries: list[Any]) -> list[str]:
    """Short names of a diff list: plain names, or (old, new) pairs shown as ``old -> new``."""
    return [
        " -> ".join(n.rsplit(".", 1)[-1] for n in e if n) if isinstance(e, list | tuple) else e.rsplit(".", 1)[-1]
        for e in entries
    ]


def _evaluation_report(settings: Settings, library: str, version: int) -> dict[str, Any]:
    from doctune.evaluate import evaluation_report

    try:
        return evaluation_report(settings, library, version)
    except DoctuneError:  # promoted without an evaluation report of its own (by hand)
        return {}


def run_demo(settings: Settings, *, base_model: str, max_steps: int | None, edit_docs: bool, console: Console) -> None:
    from doctune.base_models import resolve_base_model
    from doctune.registry import Registry

    started = time.monotonic()
    os.environ["DOCTUNE_HOME"] = str(settings.home)
    repo = prepare_demo_repo(settings)
    if edit_docs:
        console.print(commit_next_change(repo))
    library = demo_library(settings, repo, base_model, max_steps)
    with console.status(f"preparing base model {base_model} (once)"):
        resolve_base_model(base_model, settings)
    console.print(
        f"running doctune_retrain__{library.name} through Airflow "
        f"(full log: {settings.home / 'logs' / 'airflow-demo.log'})"
    )
    latest = Registry.open(settings).latest_dataset(library.name)
    run_pipeline(settings, library, console)
    result = summary(settings, library, console, latest.version if latest else None)
    (settings.path("logs") / "demo-summary.json").write_text(json.dumps(result, indent=2, default=str))
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
