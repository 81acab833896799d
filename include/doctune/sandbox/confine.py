"""The child side: the bootstrap process applies the layers to itself, then execs the generated code's interpreter.

It runs as ``python -I -S`` with only the package's parent folder on ``sys.path`` and no site-packages, so this
module (and everything the package imports) must stay standard library only, plus ``doctune.errors``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
from collections.abc import Callable
from typing import Any

from doctune.sandbox.kernel import (
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUSER,
    MS_BIND,
    MS_NODEV,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    landlock,
    landlock_abi,
    mount,
    unshare,
)

SETUP_FAILED = 70


def bootstrap() -> None:
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
                unshare(CLONE_NEWNET)
                applied.append("net-ns")
    if config["uid"] is not None:
        attempt("uid", lambda: _drop_to(config["uid"]))
    if "net-ns" not in applied:
        attempt("net-ns", lambda: unshare(CLONE_NEWUSER | CLONE_NEWNET))
    # After the user namespace: it caps its processes at the creator's RLIMIT_NPROC, which would then count the
    # worker's own tasks too.
    attempt("rlimits", lambda: _set_limits(config.get("limits", {})))
    abi = landlock_abi()
    net = abi >= 4 if probing else "landlock-net" in required
    scope = abi >= 6 if probing else "landlock-scope" in required
    writable = [] if probing else [config["work"]]
    readable = [] if probing else config.get("readonly", [])
    attempt("landlock-fs", lambda: landlock(abi, writable=writable, readable=readable, net=net, scope=scope))
    if "landlock-fs" in applied:
        applied += ["landlock-net"] * net + ["landlock-scope"] * scope
    return [*applied, "audit-hook"]


def _private_mounts(expose: list[tuple[str, list[str]]], readonly: list[str]) -> None:
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done below propagates to the worker's view
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
    mount("tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for path, handle in handles.items():
        os.makedirs(path, mode=0o755, exist_ok=True)
        mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
        if path in readonly:
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        os.close(handle)


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
