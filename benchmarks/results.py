"""Where benchmark figures go: one JSON file per benchmark under benchmarks/results/, with the commit and the
machine they were measured on, so that a figure in the README can always be traced to a run."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def commit() -> str:
    """The checked-out commit, with "-dirty" when the tree has uncommitted changes to tracked files."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine() -> dict[str, Any]:
    cpu = ""
    flags: set[str] = set()
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
        flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "simd": sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(name: str, figures: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json``: the figures, the commit, the machine and when."""
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "commit": commit(),
        "machine": machine(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path
