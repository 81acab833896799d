"""Verifying snippets: each one run against the library in the sandbox, kept, dropped with its error, or kept
unverified when it cannot run here."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from doctune.corpus.snippets.outcome import Snippet
from doctune.evaluate.suite.execution import VALIDATION_WORKERS
from doctune.evaluate.suite.symbols import in_package
from doctune.sandbox import SandboxResult, run_python

RUN_TIMEOUT = 10.0
MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")


class Verification(NamedTuple):
    """What ``verify_snippets`` found; unpacks as ``kept, dropped, not_run``."""

    kept: list[Snippet]  # verified (True) or not runnable here (None, with a note)
    dropped: list[tuple[Snippet, str]]  # failed at run time, with the last line of the error
    not_run: str  # why nothing ran at all (the library does not import in the sandbox), else ""


def verify_snippets(snippets: Sequence[Snippet], library_path: Path, *, python: str = sys.executable) -> Verification:
    """Run each snippet against the library in the sandbox: those that run without error are kept as verified,
    those that fail are dropped with the last line of the error.

    A snippet that fails only because a third-party module is missing here is kept unverified (``note`` says
    which module): the example may well be right. If the library itself does not import in the sandbox (a
    missing dependency, a compiled extension that was never built), nothing runs: every snippet is kept
    unverified and ``not_run`` says why, once.
    """
    if not snippets:
        return Verification([], [], "")
    package = snippets[0].symbols[0].split(".")[0]  # every snippet calls the library, so names it first
    paths = [str(library_path)]
    probe = run_python(f"import {package}", timeout=RUN_TIMEOUT, python=python, extra_paths=paths)
    if not probe.passed:
        reason = f"{package} cannot be imported here: {_error_line(probe)}"
        return Verification([replace(s, verified=None, note=f"not run: {reason}") for s in snippets], [], reason)

    def run(snippet: Snippet) -> tuple[Snippet, str]:
        ran = run_python(snippet.code, timeout=RUN_TIMEOUT, python=python, extra_paths=paths)
        if ran.passed:
            return replace(snippet, verified=True, note=""), ""
        error = _error_line(ran)
        missing = MISSING_MODULE.search(error)
        if missing and not in_package(missing[1], package):
            return replace(snippet, verified=None, note=f"not run: needs {missing[1]}"), ""
        return replace(snippet, verified=False, note=""), error

    with ThreadPoolExecutor(VALIDATION_WORKERS) as pool:
        results = list(pool.map(run, snippets))
    return Verification([s for s, error in results if not error], [(s, error) for s, error in results if error], "")


def _error_line(result: SandboxResult) -> str:
    """What went wrong, in one line: the exception (a traceback's last line), or why the run was stopped."""
    lines = result.detail.strip().splitlines()
    if not lines:
        return result.outcome
    return lines[-1] if result.outcome in ("error", "failed") and lines[-1].strip() else lines[0]
