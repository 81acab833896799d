"""Dataset versions: split, generate, filter, report, and write an immutable version atomically.

A version folder holds ``train.jsonl``, ``eval.jsonl``, ``rejected.jsonl`` (every filtered pair and why),
``symbols.json`` (the public API at that commit), ``evalset.json`` and ``library/`` (the evaluation suite and the
package source it runs against), ``report.json``/``report.md`` (quality) and ``manifest.json`` (parent, commit,
counts, content hash, diff against the parent). Pairs of units whose source did not change are copied from the
parent version byte for byte, provenance included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from doctune.config import LibraryConfig, Settings
from doctune.corpus import filters, generate
from doctune.corpus.diff import diff_rows
from doctune.corpus.evalset import build_evalset, heldout_phrasing_rows
from doctune.corpus.library_copy import library_copy
from doctune.corpus.llm import llm_rows
from doctune.corpus.quality_report import quality_report, report_markdown
from doctune.corpus.split import split_units, withheld_keys
from doctune.corpus.training_pairs import example_rows, overview_units, reusable_rows, unit_rows
from doctune.errors import DoctuneError
from doctune.evaluate import suite
from doctune.reader.extract import EXTRACTOR_VERSION, extract, extraction_cache
from doctune.reader.facts import fact
from doctune.registry import Registry, load_rows
from doctune.secrets import scrub

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DatasetInfo:
    library: str
    version: int
    commit: str
    path: str
    n_train: int
    n_eval: int
    status: str  # "built", "unchanged" (doc surface as before) or "existing" (same content as before)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Synced(Protocol):
    """What the sync hands the build (``doctune.sources.SyncResult`` is one): a commit and its checked-out tree."""

    @property
    def commit(self) -> str: ...

    @property
    def path(self) -> str: ...


def build(
    library: LibraryConfig,
    settings: Settings,
    synced: Synced | tuple[str, str | Path],
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> DatasetInfo:
    """Build a new dataset version from the tree the sync checked out (``synced``: a ``SyncResult``, or the commit
    and the tree's path) if its doc surface changed since the latest version, or if ``force``. Never fetches.
    Holds the library's workspace lease throughout, so no sync deletes the tree while it is read."""
    commit, path = synced if isinstance(synced, tuple) else (synced.commit, synced.path)
    tree = Path(path)
    registry = Registry.open(settings)
    lost = threading.Event()
    report_progress = progress or (lambda message: log.info("%s", message))
    deadline = time.monotonic() + settings.corpus_build_seconds

    def say(stage: str) -> None:
        """Each stage starts by saying so; a build past its time limit, or one that lost its lease, stops there."""
        if time.monotonic() > deadline:
            raise DoctuneError(
                f"the corpus build of {library.name} took longer than DOCTUNE_CORPUS_BUILD_SECONDS="
                f"{settings.corpus_build_seconds:g} before {stage!r}: raise it, or narrow sources.include"
            )
        if lost.is_set():
            raise DoctuneError(f"the corpus build of {library.name} lost its workspace lease before {stage!r}")
        report_progress(stage)

    with registry.workspace_lease(library, settings, on_lost=lost.set):
        if not (tree / ".git").exists():
            raise DoctuneError(
                f"the checked-out tree of {library.name} at {commit[:12]} is gone ({tree}): run the sync again "
                f"(`doctune corpus build {library.name}` does, or clear the sync task in Airflow)"
            )
        return _build(library, settings, registry, say, commit=commit, tree=tree, force=force)


def _build(
    library: LibraryConfig,
    settings: Settings,
    registry: Registry,
    say: Callable[[str], None],
    *,
    commit: str,
    tree: Path,
    force: bool,
) -> DatasetInfo:
    say("reading docs, API, tests and changelog")
    surface = extract(tree, library, cache=extraction_cache(settings, library))
    registry.record_snapshot(library.name, commit, surface.fingerprint)
    latest = registry.latest_dataset(library.name)
    if latest and latest.surface_hash == surface.fingerprint and not force:
        log.info(
            "doc surface of %s unchanged since dataset v%d (commit %s): skipping corpus, training, "
            "evaluation and deployment",
            library.name,
            latest.version,
            latest.commit[:12],
        )
        return DatasetInfo(
            library.name, latest.version, latest.commit, latest.path, latest.n_train, latest.n_eval, "unchanged"
        )

    # The parent's folder (None when its files were deleted): its rows seed the cache, its API is diffed against.
    parent = Path(latest.path) if latest and Path(latest.path).is_dir() else None
    previous_rows: list[dict[str, Any]] = []
    if parent:
        previous_rows = [r for split in ("train", "eval", "rejected") for r in load_rows(parent, split)]
    previous = reusable_rows(previous_rows)

    train_units, held_tests = split_units(surface.units, library.eval_share)
    withheld = withheld_keys(surface.units, library.withheld_share)
    api_units = [u for u in surface.units if u.kind == "api"]
    lib = library.import_name
    say(f"generating pairs for {len(surface.units)} units ({len(withheld)} symbols in the withheld-QA control)")
    train_units += overview_units(surface.units, surface.symbols, withheld)
    say(f"rewriting {sum(u.kind == 'example' for u in train_units)} training tests as examples and tasks; running them")
    library_path, left_out = library_copy(settings, library, tree, commit, surface.symbols)
    test_rows, test_report = example_rows(
        [u for u in train_units if u.kind in ("example", "doc")], lib, surface, tree, library_path, previous, commit
    )
    others = [u for u in train_units if u.kind != "example"]
    train_rows, regenerated = unit_rows(others, lib, surface, commit, previous, withheld)
    train_rows += test_rows
    facts = {item.name: item for u in api_units if (item := fact(u, surface.symbols)) is not None}
    commits = {r["meta"]["unit"]: r["meta"]["commit"] for r in train_rows}
    eval_rows = heldout_phrasing_rows(
        suite.api_questions(api_units, lib, surface.symbols, withheld), facts, lib, commits
    )
    llm_stats: dict[str, int] = {}
    llm_failures: list[dict[str, Any]] = []
    if library.llm.enabled:
        say(f"asking {library.llm.model} for pairs")
        cache = settings.path("cache", "llm", library.name)
        wanted = [u for u in train_units if u.kind in ("api", "doc") and u.key not in withheld]
        rows, llm_failures, llm_stats = llm_rows(wanted, lib, library.llm, cache, commit)
        # Everything else is built from scrubbed text; a model's answer is new text, so it is scrubbed too.
        for row in rows:
            for message in row["messages"]:
                message["content"], found = scrub(message["content"])
                surface.scrubbed.update(found)
        train_rows += rows
    say(f"filtering {len(train_rows) + len(eval_rows)} pairs")
    verdicts = filters.apply(train_rows, eval_rows, lib, surface.symbols, held_out_code=[u.text for u in held_tests])
    verdicts.rejected += llm_failures
    train_bytes, eval_bytes = _jsonl(verdicts.train), _jsonl(verdicts.eval)
    content_hash = hashlib.sha256(train_bytes + b"\0" + eval_bytes).hexdigest()
    if latest and latest.content_hash == content_hash:
        log.info("%s: pairs identical to dataset v%d; reusing it", library.name, latest.version)
        return DatasetInfo(
            library.name, latest.version, latest.commit, latest.path, latest.n_train, latest.n_eval, "existing"
        )

    version = registry.next_dataset_version(library.name)
    report = quality_report(library, surface, verdicts, test_report) | {"library_copy_left_out": left_out}
    parent_kept = [r for r in previous_rows if "rejected" not in r["meta"]]
    manifest = {
        "library": library.name,
        "version": version,
        "parent": latest.version if latest else None,
        "commit": commit,
        "surface_hash": surface.fingerprint,
        "content_hash": content_hash,
        "n_train": len(verdicts.train),
        "n_eval": len(verdicts.eval),
        "n_rejected": len(verdicts.rejected),
        "units": {
            "train": len(train_units),
            "held_out_tests": len(held_tests),
            "withheld_symbols": len(withheld),
            "regenerated": regenerated,
        },
        "eval_share": library.eval_share,
        "withheld_share": library.withheld_share,
        "config": {
            "sources": library.sources.model_dump(),
            "llm": library.llm.model_dump(),
            "extractor": EXTRACTOR_VERSION,
            "generator": generate.GENERATOR_VERSION,
        },
        "llm": llm_stats or None,
        "diff": diff_rows(parent_kept, verdicts.train + verdicts.eval) if latest else None,
    }
    root = settings.path("datasets", library.name)
    staging, final = root / f".staging-v{version}-{os.getpid()}", root / f"v{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _write_durably(staging / "train.jsonl", train_bytes)
        _write_durably(staging / "eval.jsonl", eval_bytes)
        _write_durably(staging / "rejected.jsonl", _jsonl(verdicts.rejected))
        _write_durably(staging / "symbols.json", json.dumps(surface.symbols, indent=1, sort_keys=True).encode())
        say(f"building the evaluation suite ({len(api_units)} symbols, {len(held_tests)} held-out tests)")
        evalset = build_evalset(
            held_tests, api_units, withheld, library, surface, tree, library_path, staging, verdicts.train, parent
        )
        _write_durably(staging / "evalset.json", json.dumps(evalset, indent=1, sort_keys=True).encode())
        manifest["evalset"] = {
            "api_questions": len(evalset["api_questions"]),
            "exec_tasks": len(evalset["exec_tasks"]),
            "dropped_tasks": len(evalset["dropped_tasks"]),
            "diff_probes": len(evalset["diff_probes"]),
        }
        manifest["api_diff"] = evalset["api_diff"]
        _write_durably(staging / "report.json", json.dumps(report, indent=2, sort_keys=True).encode())
        _write_durably(staging / "report.md", report_markdown(report, version).encode())
        _write_durably(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
        # The version becomes visible only as a whole: rename the finished folder, then register it.
        if final.exists():  # left by a crash between rename and register, unless the registry has it
            if any(d.version == version for d in registry.datasets(library.name)):
                raise DoctuneError(f"dataset v{version} of {library.name} is registered already: not replacing it")
            shutil.rmtree(final)
        staging.rename(final)
        registry.add_dataset(
            library=library.name,
            version=version,
            commit=commit,
            surface_hash=surface.fingerprint,
            content_hash=content_hash,
            path=str(final),
            n_train=len(verdicts.train),
            n_eval=len(verdicts.eval),
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    log.info(
        "dataset v%d of %s: %d train / %d eval pairs, %d rejected, from commit %s (%d of %d units regenerated)",
        version,
        library.name,
        len(verdicts.train),
        len(verdicts.eval),
        len(verdicts.rejected),
        commit[:12],
        regenerated,
        len(surface.units),
    )
    return DatasetInfo(library.name, version, commit, str(final), len(verdicts.train), len(verdicts.eval), "built")


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
