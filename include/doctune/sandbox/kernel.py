"""The raw Linux calls the child side makes through ctypes, and the flags they take: ``unshare``, ``mount``, and
Landlock, the read, write, network and scope rules a process cannot lift again.

The standard library has no ``mount`` or Landlock and has ``os.unshare`` only from Python 3.12, so libc is called
directly.
"""

from __future__ import annotations

import ctypes
import os
import stat

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


_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
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


def landlock_abi() -> int:
    ret = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    return max(ret, 0)


def landlock(abi: int, *, writable: list[str], readable: list[str], net: bool, scope: bool) -> None:
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
