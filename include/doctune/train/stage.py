"""The training stage: ``train`` (its one entry) picks the dataset version, reuses an adapter already trained from
the same inputs, holds the library's training lease, fits, checks the adapter is servable and registers it with
its model card."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from doctune.base_models import resolve_base_model
from doctune.config import LibraryConfig, Settings, TrainParams
from doctune.errors import DoctuneError
from doctune.names import RunStatus
from doctune.registry import Registry
from doctune.registry.artefacts import adapter_digest, load_rows
from doctune.train.callbacks import STOP_FILE, StepProgress, TrainingStopped
from doctune.train.checkpoints import full_disk_explained, servable_problems
from doctune.train.data import replay_rows
from doctune.train.fit import fit_adapter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    library: str
    run_id: int
    dataset_version: int
    adapter_version: int
    adapter_path: str
    steps: int
    train_loss: float | None
    reused: bool = False  # the adapter existed already: same dataset version, base model and parameters

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def run_key(dataset_version: int, base_model: str, params: TrainParams) -> str:
    """Same dataset, base and parameters -> same run folder, so a retry resumes instead of starting over."""
    blob = json.dumps({"base": base_model, "params": params.model_dump()}, sort_keys=True)
    return f"d{dataset_version}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def train(
    library: LibraryConfig,
    settings: Settings,
    *,
    dataset_version: int | None = None,
    params: TrainParams | None = None,
    progress: StepProgress | None = None,
) -> TrainResult:
    """Train a LoRA adapter on a dataset version (default: the latest) and register it as a candidate."""
    params = params or library.train
    settings.check_servable_rank(params.lora_rank)
    registry = Registry.open(settings)
    dataset = (
        registry.dataset(library.name, dataset_version) if dataset_version else registry.latest_dataset(library.name)
    )
    if dataset is None:
        raise DoctuneError(f"{library.name} has no dataset version yet: run `doctune corpus build {library.name}`")
    rows = load_rows(dataset.path, "train")
    if not rows:
        raise DoctuneError(
            f"dataset v{dataset.version} of {library.name} has no training pairs: its report "
            f"({dataset.path}/report.md) says what was extracted and why pairs were rejected; widen the library's "
            f"sources or fix its docs, then run `doctune corpus build {library.name}`"
        )
    held_out = load_rows(dataset.path, "eval")
    if params.replay_share:
        rows = rows + replay_rows(rows, params.replay_share)

    base_path = resolve_base_model(library.base_model, settings)
    key = run_key(dataset.version, library.base_model, params)
    run_dir = settings.path("runs", library.name, key)
    done = registry.adapter_for_output(str(run_dir))
    if done is not None:  # a retry after the adapter was registered: never a second version of the same run
        finished = registry.run(done.training_run_id)
        log.info("adapter v%d was already trained from this dataset and these parameters", done.version)
        return TrainResult(
            library.name,
            finished.id,
            dataset.version,
            done.version,
            done.path,
            finished.steps or 0,
            finished.train_loss,
            reused=True,
        )
    # The lease makes sure no other try of this library trains meanwhile (see exclusive_training).
    with exclusive_training(registry, library.name, run_dir, settings.training_lease_seconds):
        if registry.mark_interrupted(str(run_dir)):
            log.warning("an earlier try of this training was interrupted; continuing from its last checkpoint")
        run = registry.start_run(library.name, dataset.version, library.base_model, params.model_dump(), str(run_dir))
        staged = settings.path("adapters", library.name) / f".staging-run{run.id}"
        try:
            with full_disk_explained(run_dir):
                steps, loss = fit_adapter(
                    base_path,
                    rows,
                    held_out,
                    params,
                    run_dir,
                    settings.tensorboard_path / library.name / key,
                    progress=progress,
                )
                problems = servable_problems(run_dir / "adapter", params)
                if problems:  # caught here, not at deploy time, where the whole evaluation would be spent on it
                    raise DoctuneError(
                        f"the adapter trained in {run_dir / 'adapter'} is not servable by vLLM: {'; '.join(problems)}; "
                        f"nothing was registered (backend: {params.backend}); train with backend: peft"
                    )
                shutil.rmtree(staged, ignore_errors=True)
                shutil.copytree(run_dir / "adapter", staged)
                card = _model_card(library, dataset, library.base_model, params, steps, loss)
                (staged / "README.md").write_text(card)
                adapter = registry.add_adapter(
                    library=library.name,
                    training_run_id=run.id,
                    dataset_version=dataset.version,
                    base_model=library.base_model,
                    staged=staged,
                    rank=params.lora_rank,
                    sha256=adapter_digest(staged),
                )
        except BaseException as exc:
            shutil.rmtree(staged, ignore_errors=True)  # a half-copied adapter only takes space; the run folder has it
            status = RunStatus.STOPPED if isinstance(exc, TrainingStopped) else RunStatus.FAILED
            registry.finish_run(run.id, status=status, error=str(exc)[:2000])
            raise
        registry.finish_run(run.id, status=RunStatus.SUCCEEDED, steps=steps, train_loss=loss)
    log.info(
        "adapter v%d of %s trained: %d steps, final loss %s -> %s",
        adapter.version,
        library.name,
        steps,
        loss,
        adapter.path,
    )
    return TrainResult(library.name, run.id, dataset.version, adapter.version, adapter.path, steps, loss)


@contextmanager
def exclusive_training(registry: Any, library: str, run_dir: Path, ttl: float) -> Iterator[None]:
    """Hold the library's training lease for the whole training (see ``Registry.exclusive``).

    A try whose worker was killed can keep running; its retry must not train beside it on the same checkpoints.
    The retry fails while the lease is held (Airflow retries it later); a holder that cannot renew (the lease
    expired and another try took it) stops with a checkpoint, as if asked to.
    """
    with registry.exclusive(
        f"train:{library}",
        ttl,
        busy=f"another training of {library} holds its lease",
        why="an earlier try may still run on a worker that lost contact; this try does not train beside it. Retry "
        "after that try ends or its lease expires (the Airflow task retries).",
        on_lost=(run_dir / STOP_FILE).touch,
    ):
        yield


def _model_card(
    library: LibraryConfig, dataset: Any, base_model: str, params: TrainParams, steps: int, loss: float | None
) -> str:
    return (
        f"# {library.name} LoRA adapter (doctune)\n\n"
        f"- base model: `{base_model}`\n- dataset: v{dataset.version} ({dataset.n_train} train pairs), "
        f"commit `{dataset.commit}`\n- steps: {steps}, final training loss: {loss}\n"
        f"- parameters: `{json.dumps(params.model_dump(), sort_keys=True)}`\n\n"
        f"Load it into vLLM with `--enable-lora` as a LoRA module of the base model above.\n"
    )
