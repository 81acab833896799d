"""``run_python``: one sandboxed run, from writing its folder to the verdict (``SandboxResult``).

The parent side: it prepares the folder, the uid and the mounts the child will need, the resource limits and the
child's environment, starts the bootstrap child, and turns what came back into an outcome.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from doctune.errors import DoctuneError
from doctune.sandbox.child import collect, new_uid, spawn, tail_of, tasks_of
from doctune.sandbox.layers import isolation, require_minimum
from doctune.sandbox.runner import RUNNER_OUTCOMES

Outcome = Literal["passed", "failed", "error", "timeout", "memory", "killed"]

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_OPEN_FILES = 256
# Copied into every run's folder, where the confined child can read it (see runner.py).
RUNNER_FILE = Path(__file__).with_name("runner.py")


@dataclass(frozen=True)
class SandboxResult:
    """One run's verdict. ``passed`` only when the runner itself reported that the check ran and raised nothing."""

    passed: bool
    outcome: Outcome
    detail: str  # the tail of what the code printed (tracebacks included), prefixed with why it was stopped
    duration: float  # seconds, wall clock, from spawn to the last process gone


def run_python(
    code: str,
    *,
    check: str = "",
    timeout: float = 10.0,
    memory_mb: int = 512,
    max_processes: int = 16,
    files: dict[str, str] | None = None,
    python: str = sys.executable,
    extra_paths: Sequence[str] = (),
) -> SandboxResult:
    """Run ``code`` as module ``solution``, then ``check`` in a copy of its namespace, in a sandboxed child.

    The check passes when it raises nothing; functions named ``test_*`` that it defines are called too, since
    checks mined from a pytest suite are often only definitions. ``files`` (relative path -> text) are written
    next to the code; ``extra_paths`` (e.g. the library checkout) are importable read-only. ``python`` must be a
    CPython >= 3.8. Raises DoctuneError when the sandbox itself cannot be set up, never for what the code does.
    """
    interpreter = shutil.which(python)
    if interpreter is None:
        raise DoctuneError(f"sandbox: Python interpreter {python!r} not found or not executable")
    paths = [_existing_dir(path) for path in extra_paths]
    layers = require_minimum()
    root = Path(tempfile.mkdtemp(prefix="doctune-sandbox-"))
    try:
        work = root / "work"
        work.mkdir()
        _write_files(work, code, check, files or {})
        readonly = [*_interpreter_paths(interpreter), *paths]
        uid = new_uid() if "uid" in layers else None
        expose: list[tuple[str, list[str]]] = []
        if uid is not None:
            root.chmod(0o711)  # the sandbox uid must be able to enter its own folder, not list its parent
            for entry in [work, *work.rglob("*")]:
                os.chown(entry, uid, uid)
            expose = _exposure_plan(readonly, writable=[str(work)], mount_ns="mount-ns" in layers)
        config = {
            "layers": layers,
            "work": str(work),
            "uid": uid,
            "expose": expose,
            "readonly": readonly,
            "limits": _limits(timeout, memory_mb, max_processes, uid),
            "python": interpreter,
            "paths": paths,
            "env": _child_env(work),
        }
        return _execute(config, timeout)
    finally:
        shutil.rmtree(root, onerror=_force_remove)


def _existing_dir(path: str) -> str:
    resolved = os.path.realpath(path)
    if not os.path.isdir(resolved):
        raise DoctuneError(f"sandbox: extra path {path!r} is not a folder")
    return resolved


def _write_files(work: Path, code: str, check: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = (work / name).resolve()
        if not target.is_relative_to(work.resolve()) or target == work.resolve():
            raise DoctuneError(f"sandbox: file name {name!r} must be a relative path inside the sandbox folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (work / "solution.py").write_text(code)
    if check:
        (work / "check.py").write_text(check)
    shutil.copyfile(RUNNER_FILE, work / "_runner.py")


def _interpreter_paths(interpreter: str) -> list[str]:
    """The installation (prefix holding the stdlib and libpython) and, for a venv, the venv itself."""
    installed = Path(os.path.realpath(interpreter)).parent.parent
    invoked = Path(os.path.abspath(interpreter)).parent.parent
    return sorted({str(installed), str(invoked)})


def _traversable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXOTH)


def _exposure_plan(needed: Iterable[str], *, writable: list[str], mount_ns: bool) -> list[tuple[str, list[str]]]:
    """Group the paths the sandbox uid cannot reach under the outermost folder it may not enter.

    Each such folder is later covered with a tmpfs that holds bind mounts of just these paths.
    """
    closed: dict[str, list[str]] = {}
    for text in [*needed, *writable]:
        path = Path(text)
        for ancestor in reversed(path.parents):
            if not _traversable(ancestor):
                closed.setdefault(str(ancestor), []).append(text)
                break
        mode = path.stat().st_mode
        if text not in writable and not (mode & stat.S_IROTH and mode & stat.S_IXOTH):
            raise DoctuneError(f"sandbox: {text} is not readable by other users; the sandbox runs as one (chmod o+rx)")
    if closed and not mount_ns:
        raise DoctuneError(
            f"sandbox: the sandbox user cannot enter {', '.join(closed)} (needed for the interpreter or the "
            "extra paths) and this machine allows no private mount namespace to show it: make it traversable "
            "(chmod o+x) or use an interpreter and library outside it"
        )
    return sorted(closed.items())


def _limits(timeout: float, memory_mb: int, max_processes: int, uid: int | None) -> dict[str, int]:
    processes = max_processes
    if uid is None and "net-ns" not in isolation() and os.geteuid() != 0:
        # Unprivileged and without a user namespace, RLIMIT_NPROC counts every task of the worker's own user:
        # allow that many more than exist now.
        processes += sum(threads for _, threads in tasks_of(os.getuid()))
    return {
        "RLIMIT_AS": memory_mb * 1024 * 1024,
        "RLIMIT_CPU": math.ceil(timeout) + 1,
        "RLIMIT_FSIZE": MAX_FILE_BYTES,
        "RLIMIT_NOFILE": MAX_OPEN_FILES,
        "RLIMIT_NPROC": processes,
        "RLIMIT_CORE": 0,
    }


def _child_env(work: Path) -> dict[str, str]:
    """Built from nothing, so no secret of the worker's environment reaches the code. (``-I`` makes the child
    ignore PYTHONPATH; the runner puts the extra paths on sys.path itself.)"""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8"}


def _execute(config: dict[str, Any], timeout: float) -> SandboxResult:
    started = time.monotonic()
    child = spawn(config)
    output, result, timed_out = collect(child, started + timeout, uid=config["uid"])
    duration = time.monotonic() - started
    tail = tail_of(output)
    status = child.proc.returncode
    for message in result:
        if "setup_error" in message:
            raise DoctuneError(f"sandbox: setup failed: {message['setup_error']}")
    outcomes = [message["outcome"] for message in result if message.get("outcome") in RUNNER_OUTCOMES]
    if timed_out:
        return SandboxResult(False, "timeout", _join(f"timed out after {timeout:g} s", tail), duration)
    if outcomes and status == 0:
        return SandboxResult(outcomes[-1] == "passed", outcomes[-1], tail, duration)
    if status < 0:
        # SIGXCPU: the CPU-seconds limit, the backstop of the wall-clock timeout.
        reason: Outcome = "timeout" if status == -signal.SIGXCPU else "killed"
        return SandboxResult(False, reason, _join(f"killed by {signal.Signals(-status).name}", tail), duration)
    why = f"the code ended the process (exit status {status}) before the check finished"
    return SandboxResult(False, "error", _join(why, tail), duration)


def _join(reason: str, tail: str) -> str:
    return f"{reason}\n{tail}" if tail else reason


def _force_remove(function: Any, path: str, _: Any) -> None:
    """Code running as the worker's own user may have made its files read-only; give them back and retry."""
    os.chmod(os.path.dirname(path), 0o700)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
    function(path)
