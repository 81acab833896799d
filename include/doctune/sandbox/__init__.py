"""Run model-generated Python against a check, in a throwaway child process that cannot hurt the worker.

The evaluation gate executes code nobody has read. Each run gets a fresh folder, a wall-clock timeout, memory,
CPU, file-size and process limits, no network, and no write access outside its folder. No single mechanism is
available everywhere (the GPU worker container may lack CAP_SYS_ADMIN, or not be root at all), so the sandbox
stacks independent layers, probes once which of them this machine allows, then insists on exactly those for
every run, and `isolation()` names them for the evaluation report:

- ``session``: the child leads its own process group, which is killed as a whole when the run ends.
- ``rlimits``: address space, CPU seconds, file size, open files, processes, no core dumps.
- ``uid`` (root only): the code runs as a fresh unprivileged uid that owns nothing but its folder, so file
  permissions refuse writes elsewhere, RLIMIT_NPROC counts only the sandbox's own processes (the kernel exempts
  root from it), and every process left behind, even one that escaped the process group, is found by uid.
- ``mount-ns`` (root with CAP_SYS_ADMIN): a private mount namespace, used to show that uid the interpreter and
  the library when they live under a folder it may not enter (``/root`` is 0700): the closed folder is covered
  by an empty tmpfs holding read-only bind mounts of just the needed paths, so nothing else in it is visible.
- ``net-ns``: a network namespace with only a loopback that is down; without CAP_SYS_ADMIN, a user namespace
  (created after the uid drop) provides it where the kernel allows unprivileged ones.
- ``landlock-fs`` / ``landlock-net`` / ``landlock-scope``: Landlock rules the child cannot lift: reads only of
  its folder, the interpreter, the library and the system's own software (never ``/proc``, so not the worker's
  environment; never another library's checkout or a dataset), writes only inside its folder (and /dev/null),
  no TCP connect or bind, no signals or abstract Unix sockets outside.
- ``audit-hook``: a Python audit hook in the runner, the last resort where the kernel offers nothing: it refuses
  sockets and opening for writing outside the folder. It does not refuse fork, so what stops a fork bomb is
  the kernel's process limit, not Python politeness.

Some layers are a floor, not a bonus: ``MINIMUM`` names them (network isolation; read and write confinement),
and a machine that cannot provide them refuses to run generated code at all, naming the missing layer and the
fix, rather than run it with less.

The verdict comes from the runner over a private pipe, so generated code that calls ``sys.exit(0)`` or
``os._exit(0)`` before the check runs is an error, not a pass. Code written to forge the verdict deliberately
could still do so; the sandbox protects the machine, not the score, from adversarial code.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import math
import os
import resource
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from doctune.errors import DoctuneError

Outcome = Literal["passed", "failed", "error", "timeout", "memory", "killed"]

OUTPUT_CAP = 64 * 1024  # bytes of combined stdout/stderr kept (the tail); the rest is read and dropped
DETAIL_LINES = 20
DETAIL_CHARS = 2000
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_OPEN_FILES = 256
# Sandbox uids are drawn per run from a block no distribution hands out, so two concurrent runs almost never
# share one (sharing would make them share the process limit).
UID_BASE = 2_000_000_000
UID_SPAN = 1_000_000
SETUP_FAILED = 70

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38

# Landlock (linux/landlock.h); the syscall numbers are the same on x86_64 and arm64.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ = (1 << 2) | (1 << 3)  # read a file, list a folder
FS_TRUNCATE = 1 << 14  # ABI 3
# Every right that changes the file system: remove dir/file, make char/dir/reg/sock/fifo/block/sym.
FS_CHANGE_TREE = sum(1 << bit for bit in range(4, 13))
FS_REFER = 1 << 13  # ABI 2
FILE_ACCESS = FS_EXECUTE | FS_WRITE_FILE | (1 << 2) | FS_TRUNCATE
NET_BIND_TCP = 1  # ABI 4
NET_CONNECT_TCP = 2
SCOPE_ABSTRACT_UNIX_SOCKET = 1  # ABI 6
SCOPE_SIGNAL = 2

# What the interpreter needs beyond its own installation: the loader and shared libraries, programs it may start
# (``/bin/sh``), the files libc's user and time lookups read, and the harmless devices. System software only: no
# home folder, no ``/proc``, no ``/opt`` or ``/srv`` where checkouts and datasets live.
SYSTEM_READABLE = (
    "/usr", "/lib", "/lib64", "/bin", "/sbin",
    "/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
    "/dev/zero", "/dev/random", "/dev/urandom",
)  # fmt: skip

# The least every run needs, whatever else the machine grants: each need, the layers that meet it, the fix.
MINIMUM = (
    (
        "network isolation",
        ("net-ns", "landlock-net"),
        "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and "
        "user.max_user_namespaces > 0; in a container, root with CAP_SYS_ADMIN) or run on Linux >= 6.7, whose "
        "Landlock (ABI 4) refuses TCP",
    ),
    (
        "read and write confinement to the sandbox folder, the library and the interpreter",
        ("landlock-fs",),
        "run on Linux >= 5.13 with Landlock enabled (`landlock` in the kernel's lsm= list, see "
        "/sys/kernel/security/lsm); in a container, Docker >= 23 or a seccomp profile that allows the "
        "landlock_* system calls",
    ),
)


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
        uid = _new_uid() if "uid" in layers else None
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


def isolation() -> list[str]:
    """The isolation layers this machine grants, in the order they are applied; every run applies all of them."""
    return list(_probed_layers())


def require_minimum() -> list[str]:
    """The layers every run applies; refuses (DoctuneError naming each missing layer and its fix) when they fall
    short of ``MINIMUM``."""
    layers = isolation()
    missing = [
        f"no {need} (layer {' or '.join(meeting)}): {fix}"
        for need, meeting, fix in MINIMUM
        if not set(meeting) & set(layers)
    ]
    if missing:
        raise DoctuneError(
            "sandbox: this machine cannot confine generated code enough to run it: "
            + "; ".join(missing)
            + f". Layers it grants: {', '.join(layers)}"
        )
    return layers


@functools.cache
def _probed_layers() -> tuple[str, ...]:
    """Found once per process by a probe child that tries each layer on itself for real."""
    child = _spawn({"probe": True, "uid": _new_uid() if os.geteuid() == 0 else None})
    output, result, _ = _collect(child, time.monotonic() + 30, uid=None)
    for message in result:
        if "layers" in message:
            return tuple(message["layers"])
    raise DoctuneError(f"sandbox: the isolation probe failed: {_tail(output)}")


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
    (work / "_runner.py").write_text(RUNNER)


def _new_uid() -> int:
    return UID_BASE + secrets.randbelow(UID_SPAN)


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
        processes += sum(threads for _, threads in _tasks_of(os.getuid()))
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


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    output_fd: int
    result_fd: int


def _spawn(config: dict[str, Any]) -> _Child:
    """Start the bootstrap: the worker's own interpreter, which applies the layers to itself, then execs."""
    result_r, result_w = os.pipe()
    config["result_fd"] = result_w
    package_parent = str(Path(__file__).resolve().parents[2])
    bootstrap = (
        f"import sys; sys.path.insert(0, {package_parent!r}); from doctune.sandbox import _bootstrap; _bootstrap()"
    )
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", bootstrap, json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(result_w,),
            start_new_session=True,
            env={},
        )
    finally:
        os.close(result_w)
    assert proc.stdout is not None
    return _Child(proc, proc.stdout.fileno(), result_r)


def _execute(config: dict[str, Any], timeout: float) -> SandboxResult:
    started = time.monotonic()
    child = _spawn(config)
    output, result, timed_out = _collect(child, started + timeout, uid=config["uid"])
    duration = time.monotonic() - started
    tail = _tail(output)
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


def _collect(child: _Child, deadline: float, *, uid: int | None) -> tuple[bytes, list[dict[str, Any]], bool]:
    """Read output and verdict until the child exits or the deadline passes, then kill everything it left.

    Pipes only reach end-of-file once every process holding them is gone, which is why the wait is on the
    child's pidfd rather than on the pipes.
    """
    output, result = bytearray(), bytearray()
    buffers = {child.output_fd: output, child.result_fd: result}
    pidfd = os.pidfd_open(child.proc.pid)
    timed_out = False
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(pidfd, selectors.EVENT_READ)
        exited = False
        while not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(remaining):
                if key.fd == pidfd:
                    exited = True
                else:
                    _read_into(selector, key.fd, buffers[key.fd])
        _kill_all(child.proc.pid, uid)
        child.proc.wait()
        selector.unregister(pidfd)
        # Everything holding the pipes is dead now (with the uid layer); without it, a process that escaped the
        # process group may keep them open, so the drain is bounded.
        drain_until = time.monotonic() + 2
        while selector.get_map() and time.monotonic() < drain_until:
            for key, _ in selector.select(max(drain_until - time.monotonic(), 0)):
                _read_into(selector, key.fd, buffers[key.fd])
    os.close(pidfd)
    os.close(child.result_fd)
    assert child.proc.stdout is not None
    child.proc.stdout.close()
    messages = [json.loads(line) for line in result.decode(errors="replace").splitlines() if line.startswith("{")]
    return bytes(output), messages, timed_out


def _read_into(selector: selectors.BaseSelector, fd: int, buffer: bytearray) -> None:
    chunk = os.read(fd, 65536)
    if not chunk:
        selector.unregister(fd)
        return
    buffer += chunk
    del buffer[:-OUTPUT_CAP]


def _kill_all(pgid: int, uid: int | None) -> None:
    """SIGKILL the process group, then, with a sandbox uid, every process of that uid until none is left.

    Killed processes cannot fork any more, so the uid sweep converges even against a fork bomb.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    while uid is not None:
        pids = [pid for pid, _ in _tasks_of(uid)]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _tasks_of(uid: int) -> list[tuple[int, int]]:
    """(pid, thread count) of the live processes whose real uid is ``uid``; zombies are skipped."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:  # it exited meanwhile
            continue
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append((int(entry), int(fields["Threads"])))
    return found


def _tail(output: bytes) -> str:
    lines = output.decode(errors="replace").rstrip().splitlines()[-DETAIL_LINES:]
    return "\n".join(lines)[-DETAIL_CHARS:]


def _join(reason: str, tail: str) -> str:
    return f"{reason}\n{tail}" if tail else reason


def _force_remove(function: Any, path: str, _: Any) -> None:
    """Code running as the worker's own user may have made its files read-only; give them back and retry."""
    os.chmod(os.path.dirname(path), 0o700)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
    function(path)


# --- child side: runs in the bootstrap process, before the generated code's interpreter is exec'd ----------


def _bootstrap() -> None:
    config = json.loads(sys.argv[-1])
    result_fd = config["result_fd"]
    try:
        if config.get("probe"):
            _report(result_fd, {"layers": _confine(config, probing=True)})
            return
        _confine(config, probing=False)
        os.chdir(config["work"])
        runner = os.path.join(config["work"], "_runner.py")
        # The result pipe stays open across exec: the runner reports its verdict on it.
        argv = [config["python"], "-I", "-B", runner, str(result_fd), *config["paths"]]
        os.execve(config["python"], argv, config["env"])
    except Exception as exc:  # any failure to confine must stop the run, with its reason
        _report(result_fd, {"setup_error": f"{type(exc).__name__}: {exc}"})
        os._exit(SETUP_FAILED)


def _report(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _confine(config: dict[str, Any], *, probing: bool) -> list[str]:
    """Apply the layers to this process in the order that works (what needs root before the uid drop, Landlock
    last) and return the ones applied. Probing, a refused layer is skipped; in a run, the probed
    layers are all required and a refusal aborts it."""
    required = set() if probing else set(config["layers"])
    applied = ["session"]

    def attempt(layer: str, action: Callable[[], object]) -> None:
        if not probing and layer not in required:
            return
        try:
            action()
        except OSError:
            if not probing:
                raise
            return
        applied.append(layer)

    if os.geteuid() == 0:
        attempt("mount-ns", lambda: _private_mounts(config.get("expose", []), config.get("readonly", [])))
        if probing or "net-ns" in required:
            # Without CAP_SYS_ADMIN this fails; a user namespace after the uid drop can still provide one.
            with contextlib.suppress(OSError):
                _unshare(CLONE_NEWNET)
                applied.append("net-ns")
    if config["uid"] is not None:
        attempt("uid", lambda: _drop_to(config["uid"]))
    if "net-ns" not in applied:
        attempt("net-ns", lambda: _unshare(CLONE_NEWUSER | CLONE_NEWNET))
    # After the user namespace: it caps its processes at the creator's RLIMIT_NPROC, which would then count the
    # worker's own tasks too.
    attempt("rlimits", lambda: _set_limits(config.get("limits", {})))
    abi = _landlock_abi()
    net = abi >= 4 if probing else "landlock-net" in required
    scope = abi >= 6 if probing else "landlock-scope" in required
    writable = [] if probing else [config["work"]]
    readable = [] if probing else config.get("readonly", [])
    attempt("landlock-fs", lambda: _landlock(abi, writable=writable, readable=readable, net=net, scope=scope))
    if "landlock-fs" in applied:
        applied += ["landlock-net"] * net + ["landlock-scope"] * scope
    return [*applied, "audit-hook"]


def _private_mounts(expose: list[tuple[str, list[str]]], readonly: list[str]) -> None:
    _unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done below propagates to the worker's view
    for closed, paths in expose:
        _expose(closed, paths, readonly=readonly)


def _set_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        limit = getattr(resource, name)
        hard = resource.getrlimit(limit)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)  # only root may raise a hard limit
        resource.setrlimit(limit, (value, value))


def _expose(closed: str, paths: list[str], *, readonly: list[str]) -> None:
    """Cover ``closed`` with an empty tmpfs and bind just ``paths`` back into it (read-only unless the sandbox
    folder). The originals are reached through O_PATH descriptors opened before they are covered."""
    handles = {path: os.open(path, os.O_PATH) for path in paths}
    _mount("tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for path, handle in handles.items():
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
        if path in readonly:
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        os.close(handle)


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = [None if text is None else text.encode() for text in (source, target, fstype, data)]
    _check(_libc.mount(encode[0], encode[1], encode[2], ctypes.c_ulong(flags), encode[3]), f"mount {target}")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock_abi() -> int:
    ret = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    return max(ret, 0)


def _landlock(abi: int, *, writable: list[str], readable: list[str], net: bool, scope: bool) -> None:
    """Confine this process and its descendants for good: reads only beneath ``writable``, ``readable`` and
    ``SYSTEM_READABLE``; file system changes only beneath ``writable`` (and writes to /dev/null); with ``net``
    (ABI >= 4) no TCP connect or bind; with ``scope`` (ABI >= 6) no signals to, or abstract Unix sockets of,
    processes outside the sandbox."""
    change = FS_WRITE_FILE | FS_CHANGE_TREE | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    read = FS_READ | FS_EXECUTE
    attr = _RulesetAttr(
        handled_access_fs=change | read,
        handled_access_net=NET_BIND_TCP | NET_CONNECT_TCP if net else 0,
        scoped=SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if scope else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # older kernels reject fields they do not know
    ruleset = _check(
        _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0), "landlock"
    )
    try:
        rules = [(path, change | read) for path in writable] + [(path, read) for path in readable]
        rules += [(path, read) for path in SYSTEM_READABLE if os.path.exists(path)]
        rules.append(("/dev/null", read | FS_WRITE_FILE | (FS_TRUNCATE if abi >= 3 else 0)))
        for path, access in rules:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    access &= FILE_ACCESS  # the kernel refuses folder rights on a file
                rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
                _check(
                    _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0),
                    path,
                )
            finally:
                os.close(fd)
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


# --- the runner: executed by the generated code's interpreter (any CPython >= 3.8, stdlib only) ------------

RUNNER_OUTCOMES = ("passed", "failed", "error", "memory")

RUNNER = r'''
import json
import os
import socket
import sys
import traceback

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
PATH_EVENTS = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.rename": 2, "os.truncate": 1, "os.symlink": 2,
               "os.link": 2, "os.chmod": 1, "os.chown": 1, "os.utime": 1}


def guard(work):
    """Audit hook: the last line of defence where the kernel layers are missing."""

    def inside(path):
        if isinstance(path, int):
            return True  # an already open descriptor
        full = os.path.realpath(os.fsdecode(path))
        return full in (work, "/dev/null") or full.startswith(work + os.sep)

    def hook(event, args):
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[-1]
            local = address is None or isinstance(address, (str, bytes)) and inside(address)
            if not (sock.family == socket.AF_UNIX and local):
                raise PermissionError("network access is disabled in the sandbox")
        elif event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                raise PermissionError("writing outside the sandbox folder is not allowed: %s" % (path,))
        elif event in PATH_EVENTS:
            for path in args[:PATH_EVENTS[event]]:
                if path is not None and not inside(path):
                    raise PermissionError("changing files outside the sandbox folder is not allowed: %s" % (path,))

    return hook


def print_error():
    """The traceback without the runner's own frame, which only adds noise to the detail."""
    kind, error, trace = sys.exc_info()
    traceback.print_exception(kind, error, trace.tb_next)


def run(work):
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


def main():
    result = os.fdopen(int(sys.argv[1]), "w")
    work = os.getcwd()
    sys.path[:0] = [work] + sys.argv[2:]
    sys.addaudithook(guard(work))
    outcome = run(work)
    sys.stdout.flush()
    sys.stderr.flush()
    result.write(json.dumps({"outcome": outcome}) + "\n")
    result.flush()


main()
'''
