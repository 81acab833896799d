"""Running a task's setup, an answer and its check in the sandbox; validating mined tasks; the general-Python
floor (``data/general_tasks.jsonl``), built-in tasks that catch forgetting."""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from doctune.evaluate.suite.answers import extract_code
from doctune.evaluate.suite.items import ExecTask
from doctune.sandbox import SandboxResult, run_python

GENERAL_TASKS = Path(__file__).parents[2] / "data" / "general_tasks.jsonl"
# Answers a task must fail: nothing at all, and a ``result`` that carries no information (catches checks such as
# ``assert not result`` that any falsy value passes).
TRIVIAL_ANSWERS = ("pass", "result = None")
VALIDATION_WORKERS = min(8, os.cpu_count() or 1)


def run_exec_task(
    task: ExecTask,
    answer: str,
    *,
    library_path: str | Path | None,
    python: str = sys.executable,
    timeout: float = 10.0,
) -> SandboxResult:
    """Run the setup followed by the code in ``answer``, then the task's check, in the sandbox.

    ``library_path`` is the folder that contains the package (the checkout), importable read-only.
    """
    code = f"{task.setup}\n\n{extract_code(answer)}\n" if task.setup else extract_code(answer)
    paths = [str(library_path)] if library_path is not None else []
    return run_python(code, check=task.check, timeout=timeout, python=python, extra_paths=paths)


def validate_exec_tasks(
    tasks: list[ExecTask], library_path: str | Path | None, *, python: str = sys.executable, scored: bool = True
) -> tuple[list[ExecTask], list[tuple[ExecTask, str]]]:
    """Keep the tasks whose reference passes and that every trivial answer fails; the rest come back with why.

    A task that the library's own code cannot pass is broken (never the model's fault), and one that passes
    without an answer measures nothing. ``library_path`` may be None for tasks that need no library (the
    general floor). ``scored=False`` (tasks that become training pairs) checks only that the reference passes.
    """

    def verdict(task: ExecTask) -> str:
        ran = run_exec_task(task, task.reference, library_path=library_path, python=python)
        if not ran.passed:
            last = ran.detail.strip().splitlines()[-1] if ran.detail.strip() else "no output"
            return f"the reference does not pass ({ran.outcome}): {last}"
        for trivial in TRIVIAL_ANSWERS if scored else ():
            if run_exec_task(task, trivial, library_path=library_path, python=python).passed:
                return f"the trivial answer {trivial!r} passes"
        return ""

    with ThreadPoolExecutor(VALIDATION_WORKERS) as pool:
        reasons = list(pool.map(verdict, tasks))
    kept = [t for t, reason in zip(tasks, reasons, strict=True) if not reason]
    dropped = [(t, reason) for t, reason in zip(tasks, reasons, strict=True) if reason]
    return kept, dropped


def general_tasks() -> list[ExecTask]:
    """The built-in general-Python floor: small classic tasks unrelated to any library."""
    lines = GENERAL_TASKS.read_text().splitlines()
    return [ExecTask.from_dict(json.loads(line)) for line in lines if line.strip()]
