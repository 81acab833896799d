"""The demo's run: its library config, and the retrain DAG run through Airflow's own CLI (``airflow dags test``)
with Airflow's state under DOCTUNE_HOME and doctune's log lines shown as they happen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from demo.repo import CHECKOUT, DEMO_NAME
from doctune.config import LibraryConfig, Settings, write_library
from doctune.errors import DoctuneError


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for the demo's Airflow: SQLite metadata under DOCTUNE_HOME, our dags/ folder."""
    home = settings.path("airflow")
    return {
        **os.environ,
        "DOCTUNE_HOME": str(settings.home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(CHECKOUT / "dags"),
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
