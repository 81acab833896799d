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

The package, parent side first:

- ``run``: ``run_python`` and its ``SandboxResult``: the run's folder, uid, mounts, limits and environment;
- ``layers``: which layers this machine grants (``isolation()``), ``MINIMUM`` and ``require_minimum()``;
- ``child``: starting the bootstrap child, collecting its output and verdict, killing everything it left;
- ``confine``: the child side, which applies the layers to itself and execs the generated code's interpreter;
- ``kernel``: the raw ``unshare``, ``mount`` and Landlock calls (ctypes) and their flags;
- ``runner``: the program the generated code's interpreter runs (a copy in each run's folder).

Everything here is standard library only (plus ``doctune.errors``): the bootstrap child imports the package
without site-packages.
"""

from doctune.sandbox.child import DETAIL_CHARS
from doctune.sandbox.layers import MINIMUM, isolation, require_minimum
from doctune.sandbox.run import Outcome, SandboxResult, run_python

__all__ = ["DETAIL_CHARS", "MINIMUM", "Outcome", "SandboxResult", "isolation", "require_minimum", "run_python"]
