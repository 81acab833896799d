"""The parent's handle on a bootstrap child: start it, read its output and verdict, kill everything it left.

Used for the isolation probe and for every run; also the per-run sandbox uid and the short tail of the output
that a verdict's detail quotes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTPUT_CAP = 64 * 1024  # bytes of combined stdout/stderr kept (the tail); the rest is read and dropped
DETAIL_LINES = 20
DETAIL_CHARS = 2000
# Sandbox uids are drawn per run from a block no distribution hands out, so two concurrent runs almost never
# share one (sharing would make them share the process limit).
UID_BASE = 2_000_000_000
UID_SPAN = 1_000_000


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    output_fd: int
    result_fd: int


def new_uid() -> int:
    return UID_BASE + secrets.randbelow(UID_SPAN)


def spawn(config: dict[str, Any]) -> Child:
    """Start the bootstrap: the worker's own interpreter, which applies the layers to itself, then execs."""
    result_r, result_w = os.pipe()
    config["result_fd"] = result_w
    package_parent = str(Path(__file__).resolve().parents[2])
    bootstrap = (
        f"import sys; sys.path.insert(0, {package_parent!r}); "
        "from doctune.sandbox.confine import bootstrap; bootstrap()"
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
    return Child(proc, proc.stdout.fileno(), result_r)


def collect(child: Child, deadline: float, *, uid: int | None) -> tuple[bytes, list[dict[str, Any]], bool]:
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
        pids = [pid for pid, _ in tasks_of(uid)]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def tasks_of(uid: int) -> list[tuple[int, int]]:
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


def tail_of(output: bytes) -> str:
    lines = output.decode(errors="replace").rstrip().splitlines()[-DETAIL_LINES:]
    return "\n".join(lines)[-DETAIL_CHARS:]
