"""The sandbox that runs generated code for the evaluation gate: verdicts, limits and every isolation layer.

Tests that bypass Python (raw libc calls through ctypes) do so on purpose: the runner's audit hook would
refuse the Python-level call anyway, so only a bypass shows that the kernel layer underneath holds on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import IN_CI, skip_unless_ci

from doctune.errors import DoctuneError
from doctune.sandbox import DETAIL_CHARS, isolation, run_python

REPO = Path(__file__).resolve().parents[1]
ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0 and not IN_CI, reason="the uid and mount-namespace layers need root (CI runs as root)"
)

# Code that prints its folder first, so a test can check afterwards that nothing of the run is left.
PRINT_FOLDER = "import os, sys\nprint(os.getcwd(), flush=True)\n"

# A raw libc call (no audit event) returning -errno or the result; used to probe the kernel layers.
LIBC = """
import ctypes, errno, os, socket, struct
libc = ctypes.CDLL(None, use_errno=True)

def raw(result):
    return -ctypes.get_errno() if result < 0 else result

def raw_open(path):
    return raw(libc.open(path.encode(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))

def raw_read(path):
    return raw(libc.open(path.encode(), os.O_RDONLY))

def raw_connect(port):
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    address = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton("127.0.0.1") + bytes(8)
    return raw(libc.connect(fd, address, len(address)))
"""


def folder_of(detail: str) -> Path:
    match = re.search(r"(/\S+/work)$", detail, re.MULTILINE)
    assert match, detail
    return Path(match.group(1))


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes() if entry.isdigit() else b""
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def assert_nothing_left(detail: str) -> None:
    folder = folder_of(detail)
    assert not folder.parent.exists()
    assert processes_mentioning(str(folder.parent)) == []


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    with server:
        yield server


@ROOT_ONLY
def test_every_layer_is_active_on_a_root_machine():
    layers = isolation()
    assert {"session", "rlimits", "uid", "mount-ns", "net-ns", "landlock-fs", "audit-hook"} <= set(layers)


def test_passing_code_passes():
    result = run_python("def add(a, b):\n    return a + b\n", check="assert add(2, 3) == 5\n")
    assert (result.passed, result.outcome) == (True, "passed")
    assert 0 < result.duration < 5


def test_failing_assert_is_a_failure_with_its_message():
    result = run_python("def add(a, b):\n    return a - b\n", check="assert add(2, 3) == 5, 'add(2, 3) is wrong'\n")
    assert (result.passed, result.outcome) == (False, "failed")
    assert result.detail.splitlines()[-1] == "AssertionError: add(2, 3) is wrong"
    assert "_runner.py" not in result.detail


def test_test_functions_a_check_defines_are_called():
    result = run_python("def add(a, b):\n    return a - b\n", check="def test_add():\n    assert add(2, 3) == 5\n")
    assert result.outcome == "failed"
    assert "test_add" in result.detail


@pytest.mark.parametrize(("code", "check"), [("def add(a, b) return a + b\n", ""), ("x = 1\n", "assert x ==\n")])
def test_a_syntax_error_is_an_error(code, check):
    result = run_python(code, check=check)
    assert (result.passed, result.outcome) == (False, "error")
    assert "SyntaxError" in result.detail


@pytest.mark.parametrize("code", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n"])
def test_leaving_before_the_check_ran_is_not_a_pass(code):
    result = run_python(code, check="assert False, 'never reached'\n")
    assert (result.passed, result.outcome) == (False, "error")


def test_an_infinite_loop_is_killed_at_the_timeout():
    result = run_python(PRINT_FOLDER + "while True:\n    pass\n", timeout=1)
    assert (result.passed, result.outcome) == (False, "timeout")
    assert 1 <= result.duration < 3
    assert_nothing_left(result.detail)


def test_a_fork_bomb_is_killed_and_leaves_nothing_behind():
    bomb = PRINT_FOLDER + "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_python(bomb, timeout=2, max_processes=8)
    assert result.outcome == "timeout"
    assert_nothing_left(result.detail)
    assert run_python("x = 1\n", check="assert x == 1\n").passed  # the machine still has room for the next run


def test_a_fork_bomb_does_not_starve_runs_beside_it():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    with ThreadPoolExecutor(3) as pool:
        running = pool.submit(run_python, bomb, timeout=3, max_processes=8)
        neighbours = [pool.submit(run_python, "import os\nchild = os.fork()\n", check="assert child >= 0\n")]
        neighbours.append(pool.submit(run_python, "x = 2\n", check="assert x * 2 == 4\n"))
        assert [future.result().passed for future in neighbours] == [True, True]
        assert running.result().outcome == "timeout"


def test_the_kernel_refuses_processes_beyond_the_limit():
    # Forking is allowed by the audit hook on purpose: only RLIMIT_NPROC can stop this loop.
    code = PRINT_FOLDER + (
        "reader, _ = os.pipe()\nchildren = 0\ntry:\n    for _ in range(64):\n        if os.fork() == 0:\n"
        "            os.read(reader, 1)\n            os._exit(0)\n        children += 1\nexcept BlockingIOError:\n"
        "    pass\n"
    )
    result = run_python(code, check="assert 0 < children < 8, children\n", max_processes=8)
    assert result.outcome == "passed", result.detail
    assert_nothing_left(result.detail)  # the blocked children died with the run


def test_a_process_that_leaves_the_process_group_is_killed_too():
    if "uid" not in isolation():
        skip_unless_ci("without the uid layer an escaped process can only be found by its process group")
    code = PRINT_FOLDER + "if os.fork() == 0:\n    os.setsid()\n    while True:\n        pass\n"
    result = run_python(code)
    assert result.passed
    assert_nothing_left(result.detail)


def test_allocating_2_gb_hits_the_memory_limit():
    result = run_python("data = bytearray(2 * 1024**3)\n", memory_mb=512)
    assert (result.passed, result.outcome) == (False, "memory")
    assert "MemoryError" in result.detail


def test_a_python_connect_is_refused(listener):
    port = listener.getsockname()[1]
    result = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n")
    assert not result.passed
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_a_raw_connect_is_refused_by_the_kernel(listener):
    port = listener.getsockname()[1]
    check = f"assert raw_connect({port}) in (-errno.EACCES, -errno.ENETUNREACH), raw_connect({port})\n"
    result = run_python(LIBC, check=check)
    assert result.passed, result.detail
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_the_network_namespace_holds_only_loopback():
    if "net-ns" not in isolation():
        skip_unless_ci("no network namespace on this machine")
    result = run_python("import socket\n", check="assert [n for _, n in socket.if_nameindex()] == ['lo']\n")
    assert result.passed, result.detail
    assert len(socket.if_nameindex()) > 1  # the worker itself sees more


@pytest.mark.parametrize("where", ["tmp_path", "repository"])
def test_a_python_write_outside_the_folder_is_refused(where, tmp_path):
    target = tmp_path / "escape.txt" if where == "tmp_path" else REPO / f".sandbox-escape-{uuid.uuid4().hex}"
    try:
        result = run_python(f"with open({str(target)!r}, 'w') as out:\n    out.write('escaped')\n")
        assert not result.passed
        assert "PermissionError" in result.detail
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm", str(REPO)])
def test_a_raw_write_outside_the_folder_is_refused_by_the_kernel(folder):
    # /tmp and /dev/shm are world-writable: there only Landlock stands between the code and the file.
    target = Path(folder) / f"doctune-escape-{uuid.uuid4().hex}"
    try:
        result = run_python(LIBC, check=f"assert raw_open({str(target)!r}) == -errno.EACCES\n")
        assert result.passed, result.detail
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


@pytest.fixture
def other_library() -> Iterator[Path]:
    """Another library's checkout on the worker, readable by everyone, as checkouts and datasets usually are."""
    folder = Path(tempfile.mkdtemp(prefix="doctune-other-library-", dir="/tmp"))
    folder.chmod(0o755)
    secret = folder / "settings.py"
    secret.write_text("TOKEN = 'the other team'\n")
    secret.chmod(0o644)
    yield secret
    shutil.rmtree(folder)


def test_another_librarys_files_cannot_be_read(other_library):
    check = (
        f"assert raw_read({str(other_library)!r}) == -errno.EACCES\n"
        f"assert raw_read({str(REPO / 'README.md')!r}) == -errno.EACCES\n"
        f"try:\n    open({str(other_library)!r}).read()\nexcept PermissionError:\n    pass\n"
        "else:\n    raise AssertionError('read another library')\n"
    )
    result = run_python(LIBC, check=check)
    assert result.passed, result.detail


def test_the_workers_environment_cannot_be_read(monkeypatch):
    monkeypatch.setenv("DOCTUNE_TEST_SECRET", "hunter2")
    parent = os.getpid()
    check = f"assert raw_read('/proc/{parent}/environ') < 0\nassert raw_read('/proc/1/environ') < 0\n"
    result = run_python(LIBC, check=check)
    assert result.passed, result.detail
    assert "hunter2" not in result.detail


# Installs a seccomp filter that fails system calls FIRST..LAST with ERRNO, as an old kernel or a container's
# seccomp profile does, for this process and every child (the sandbox's probe included).
DENY = """
import ctypes, struct

def deny(first, last, errno):
    # load the syscall number; first <= nr <= last: fail with errno; anything else: allow
    program = [(0x20, 0, 0, 0), (0x35, 0, 2, first), (0x25, 1, 0, last), (0x06, 0, 0, 0x00050000 | errno),
               (0x06, 0, 0, 0x7FFF0000)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(38, 1, 0, 0, 0) == 0  # no_new_privs
    assert libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) == 0, ctypes.get_errno()  # SECCOMP_MODE_FILTER
"""
LANDLOCK_CALLS, UNSHARE, ENOSYS, EPERM = (444, 446), (272, 272), 38, 1

WITHOUT_LANDLOCK = f"""{DENY}
deny(*{LANDLOCK_CALLS}, {ENOSYS})
from doctune.errors import DoctuneError
from doctune.sandbox import run_python
try:
    run_python("print('ran')")
except DoctuneError as exc:
    print(exc)
else:
    print("RAN BELOW THE MINIMUM")
"""


def test_running_below_the_minimum_is_refused():
    shown = subprocess.run([sys.executable, "-c", WITHOUT_LANDLOCK], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "cannot confine generated code" in shown.stdout
    assert "read and write confinement" in shown.stdout and "landlock-fs" in shown.stdout
    assert "Landlock enabled" in shown.stdout  # the fix


# The compose workers run as AIRFLOW_UID (50000) with group 0, never root, under Docker's default seccomp
# profile, which refuses unshare without CAP_SYS_ADMIN: the sandbox must meet its minimum there too, from
# Landlock alone. It needs only the standard library, so the system interpreter runs a copy of it.
AS_WORKER = f"""{DENY}
deny(*{UNSHARE}, {EPERM})
from doctune.sandbox import require_minimum, run_python
layers = require_minimum()
result = run_python(LIBC, check=f"assert raw_read({{readme!r}}) == -errno.EACCES")
print(layers, result.detail)
print("PASSED" if result.passed else "FAILED")
"""


@ROOT_ONLY
def test_a_non_root_worker_in_a_container_meets_the_minimum():
    if not Path("/usr/bin/python3").exists():
        skip_unless_ci("/usr/bin/python3 is not installed")
    package = Path(tempfile.mkdtemp(prefix="doctune-as-worker-", dir="/tmp"))
    try:
        package.chmod(0o755)
        shutil.copytree(REPO / "include" / "doctune", package / "doctune", ignore=shutil.ignore_patterns("__pycache__"))
        for entry in [package, *package.rglob("*")]:
            entry.chmod(0o755 if entry.is_dir() else 0o644)
        script = f"LIBC = {LIBC!r}\nreadme = {str(REPO / 'README.md')!r}\n" + AS_WORKER
        shown = subprocess.run(
            ["setpriv", "--reuid=50000", "--regid=0", "--clear-groups", "/usr/bin/python3", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PYTHONPATH": str(package), "PATH": "/usr/bin:/bin"},
        )
    finally:
        shutil.rmtree(package)
    assert shown.returncode == 0, shown.stderr
    layers = shown.stdout.splitlines()[0]
    assert "'uid'" not in layers and "'net-ns'" not in layers  # what a non-root container cannot have
    assert "'landlock-fs'" in layers and "'landlock-net'" in layers
    assert shown.stdout.rstrip().endswith("PASSED"), shown.stdout


def test_the_cli_names_the_layers():
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "doctune"), "eval", "sandbox"], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert "landlock-fs" in shown.stdout and "minimum is met" in shown.stdout


def test_the_code_may_write_in_its_folder_and_nothing_survives():
    code = PRINT_FOLDER + (
        "import tempfile\nwith open('notes.txt', 'w') as out:\n    out.write('kept')\n"
        "handle, scratch = tempfile.mkstemp()\nos.write(handle, b'scratch')\n"
    )
    check = "assert open('notes.txt').read() == 'kept'\nassert scratch.startswith(os.getcwd())\n"
    result = run_python(code, check=check)
    assert result.passed, result.detail
    assert_nothing_left(result.detail)


def test_files_are_written_next_to_the_code():
    result = run_python(
        "def load():\n    return open('data/answer.txt').read()\n",
        check="assert load() == '42'\n",
        files={"data/answer.txt": "42"},
    )
    assert result.passed, result.detail


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd", "."])
def test_a_file_name_outside_the_folder_is_refused(name):
    with pytest.raises(DoctuneError, match="relative path inside the sandbox folder"):
        run_python("", files={name: "x"})


@pytest.mark.parametrize("python", [sys.executable, "/usr/bin/python3"])
def test_the_library_in_extra_paths_is_importable_read_only(python, tmp_path):
    if not Path(python).exists():
        skip_unless_ci(f"{python} is not installed")
    library = tmp_path / "checkout"  # under pytest's 0700 folders: the sandbox uid reaches it via the mount-ns
    (library / "tinylib").mkdir(parents=True)
    module = library / "tinylib" / "__init__.py"
    module.write_text("def answer():\n    return 42\n")
    code = LIBC + "import tinylib\n\ndef solve():\n    return tinylib.answer()\n"
    check = f"assert solve() == 42\nassert raw_open({str(module)!r}) in (-errno.EROFS, -errno.EACCES)\n"
    result = run_python(code, check=check, python=python, extra_paths=[str(library)])
    assert result.passed, result.detail
    assert module.read_text() == "def answer():\n    return 42\n"


def test_the_code_sees_no_secrets_no_stdin_and_no_privileges(monkeypatch):
    monkeypatch.setenv("DOCTUNE_TEST_SECRET", "hunter2")
    check = (
        "import os, sys\nassert 'DOCTUNE_TEST_SECRET' not in os.environ\nassert os.environ['HOME'] == os.getcwd()\n"
        "assert sys.stdin.read() == ''\n"
    )
    if "uid" in isolation():
        check += f"assert os.getuid() not in (0, {os.getuid()}), os.getuid()\n"
    result = run_python("", check=check)
    assert result.passed, result.detail


def test_a_flood_of_output_is_cut_to_a_short_detail():
    result = run_python("for _ in range(200_000):\n    print('x' * 100)\n", check="print('last line')\n")
    assert result.passed
    assert len(result.detail) <= DETAIL_CHARS
    assert result.detail.endswith("last line")


def test_a_missing_interpreter_is_a_clear_error():
    with pytest.raises(DoctuneError, match="not found"):
        run_python("", python="/nonexistent/python3")


def test_a_missing_extra_path_is_a_clear_error(tmp_path):
    with pytest.raises(DoctuneError, match="is not a folder"):
        run_python("", extra_paths=[str(tmp_path / "missing")])
