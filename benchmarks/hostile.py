"""Hostile input, measured: secrets planted in a repository against what reaches any file doctune writes, per
format, the files skipped and why, the build time beside a clean build of the same library in the same run, and
the sandbox's isolation layers on this machine.

The repository is the demo library with tests/hostile_repo.py's content (every secret format in docs, a module,
a test and the changelog; links out of the repository; huge, binary, non-UTF-8 and too-deeply-nested files).
Writes benchmarks/results/hostile.json. Run: ``.venv/bin/python benchmarks/hostile.py`` (part of ``make bench``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the hostile repository the tests use
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo package, which hostile_repo imports too
from hostile_repo import PLACES, PLANTED, hostile_repo, leaks, written_files  # noqa: E402
from pipeline import bench_settings  # noqa: E402

from demo import demo_library, prepare_demo_repo  # noqa: E402
from doctune import corpus, sources  # noqa: E402
from doctune.sandbox import isolation  # noqa: E402


def built(home: Path, outside: Path | None) -> tuple[dict[str, Any], float, list[str]]:
    """Build the demo library's corpus (made hostile when ``outside`` is given): its report, seconds, leaks."""
    settings = bench_settings(home)
    repo = prepare_demo_repo(settings)
    if outside is not None:
        hostile_repo(repo, outside)
    library = demo_library(settings, repo, "tiny-llama", max_steps=1)
    started = time.perf_counter()
    info = corpus.build(library, settings, sources.sync(library, settings))
    seconds = time.perf_counter() - started
    files = written_files(settings.home, besides=[settings.path("workspaces", library.name), repo])
    return json.loads((Path(info.path) / "report.json").read_text()), seconds, leaks(files)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="doctune-bench-hostile-") as tmp:
        _, clean_s, _ = built(Path(tmp) / "clean", None)
        report, hostile_s, found = built(Path(tmp) / "hostile", Path(tmp) / "outside")
    per_format = {
        kind: {"planted_in": list(PLACES), "leaked": [f for f in found if f.endswith(f": {kind}")]} for kind in PLANTED
    }
    print(f"secrets planted: {len(PLANTED)} formats, each in {', '.join(PLACES)}")
    for kind, figures in per_format.items():
        print(f"  {kind:<28} {'removed everywhere' if not figures['leaked'] else 'LEAKED: ' + str(figures['leaked'])}")
    outside = [f for f in found if f.endswith("read outside the repository")]
    print(f"removed, by the scrubber's kinds: {report['secrets_removed']}")
    print(f"read outside the repository: {len(outside)} files")
    print(
        f"skipped with a reason: {len(report['skipped_files'])} files; library copy left out "
        f"{len(report['library_copy_left_out'])}"
    )
    print(f"corpus build: hostile {hostile_s:.1f} s, the clean demo {clean_s:.1f} s (same run)")
    layers = isolation()
    print(f"sandbox isolation layers on this machine: {', '.join(layers) or 'none'}")
    path = results.write(
        "hostile",
        {
            "formats": len(PLANTED),
            "per_format": per_format,
            "leaked": len(found) - len(outside),
            "read_outside": len(outside),
            "removed_by_kind": report["secrets_removed"],
            "skipped_files": report["skipped_files"],
            "library_copy_left_out": report["library_copy_left_out"],
            "build_seconds": {"hostile": round(hostile_s, 1), "clean": round(clean_s, 1)},
            "sandbox_layers": layers,
        },
    )
    print(f"hostile-input figures: {path}")


if __name__ == "__main__":
    main()
