"""Which isolation layers this machine grants (probed once per process), and the minimum every run insists on."""

from __future__ import annotations

import functools
import os
import time

from doctune.errors import DoctuneError
from doctune.sandbox.child import collect, new_uid, spawn, tail_of

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
    child = spawn({"probe": True, "uid": new_uid() if os.geteuid() == 0 else None})
    output, result, _ = collect(child, time.monotonic() + 30, uid=None)
    for message in result:
        if "layers" in message:
            return tuple(message["layers"])
    raise DoctuneError(f"sandbox: the isolation probe failed: {tail_of(output)}")
