"""The runner: imports the generated code as module ``solution``, runs the check, and reports the verdict.

It is copied into each run's folder as ``_runner.py`` (the confined child reads only its folder, the interpreter
and the library) and executed there by the generated code's own interpreter (``python -I -B _runner.py RESULT_FD
[EXTRA_PATH ...]``), which may be any CPython >= 3.8 without the worker's packages: standard library only, 3.8
syntax (ruff checks it as py38). No ``from __future__ import annotations`` either: ``compile()`` would hand that
future on to the check. The parent imports only ``RUNNER_OUTCOMES`` from here.
"""

import json
import os
import socket
import sys
import traceback

# Every outcome ``run`` returns; the parent trusts only these on the result pipe.
RUNNER_OUTCOMES = ("passed", "failed", "error", "memory")

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
PATH_EVENTS = {
    "os.remove": 1,
    "os.rmdir": 1,
    "os.mkdir": 1,
    "os.rename": 2,
    "os.truncate": 1,
    "os.symlink": 2,
    "os.link": 2,
    "os.chmod": 1,
    "os.chown": 1,
    "os.utime": 1,
}


def guard(work: str):
    """Audit hook: the last line of defence where the kernel layers are missing."""

    def inside(path) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        full = os.path.realpath(os.fsdecode(path))
        return full in (work, "/dev/null") or full.startswith(work + os.sep)

    def hook(event: str, args: tuple) -> None:
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[-1]
            local = address is None or isinstance(address, (str, bytes)) and inside(address)
            if not (sock.family == socket.AF_UNIX and local):
                raise PermissionError("network access is disabled in the sandbox")
        elif event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                raise PermissionError(f"writing outside the sandbox folder is not allowed: {path}")
        elif event in PATH_EVENTS:
            for path in args[: PATH_EVENTS[event]]:
                if path is not None and not inside(path):
                    raise PermissionError(f"changing files outside the sandbox folder is not allowed: {path}")

    return hook


def print_error() -> None:
    """The traceback without the runner's own frame, which only adds noise to the detail."""
    kind, error, trace = sys.exc_info()
    assert trace is not None  # only called while an exception is being handled
    traceback.print_exception(kind, error, trace.tb_next)


def run(work: str) -> str:
    try:
        import solution
    except MemoryError:
        print_error()
        return "memory"
    except BaseException:
        print_error()
        return "error"
    check = os.path.join(work, "check.py")
    if not os.path.exists(check):
        return "passed"
    namespace = dict(vars(solution), __name__="__main__", __file__=check)
    try:
        with open(check) as source:
            compiled = compile(source.read(), check, "exec")
    except BaseException:
        print_error()
        return "error"
    try:
        exec(compiled, namespace)
        for name, value in list(namespace.items()):
            if name.startswith("test_") and callable(value) and getattr(value, "__module__", None) == "__main__":
                value()
    except MemoryError:
        print_error()
        return "memory"
    except BaseException:
        print_error()
        return "failed"
    return "passed"


def main() -> None:
    result = os.fdopen(int(sys.argv[1]), "w")
    work = os.getcwd()
    sys.path[:0] = [work] + sys.argv[2:]
    sys.addaudithook(guard(work))
    outcome = run(work)
    sys.stdout.flush()
    sys.stderr.flush()
    result.write(json.dumps({"outcome": outcome}) + "\n")
    result.flush()


if __name__ == "__main__":  # the parent imports this module only for RUNNER_OUTCOMES
    main()
