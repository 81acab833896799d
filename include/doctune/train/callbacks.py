"""The trainer callbacks: a stop on request (``doctune train stop`` or SIGTERM), metrics in TensorBoard, plain log
lines, the CLI's progress bar, early stopping on a plateau, and a time budget that redraws the learning-rate
schedule; ``request_stop`` asks a running training to stop."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doctune.config import Settings, TrainParams
from doctune.errors import DoctuneError
from doctune.names import RunStatus
from doctune.registry import Registry

log = logging.getLogger(__name__)


# Called after every optimizer step with (step, max_steps, latest training loss or None): the CLI's progress bar.
StepProgress = Callable[[int, int, float | None], None]


class TrainingStopped(DoctuneError):
    """Training stopped on request (SIGTERM or `doctune train stop`) after saving a checkpoint."""

    exit_code = 75  # EX_TEMPFAIL: not a failure of the run; running it again resumes


STOP_FILE = "STOP"


def request_stop(settings: Settings, library: str) -> list[Path]:
    """Ask every running training of ``library`` to checkpoint and stop (picked up after the current step)."""
    requested = []
    for run in Registry.open(settings).runs(library, status=RunStatus.RUNNING):
        stop = Path(run.output_dir) / STOP_FILE
        if stop.parent.is_dir():
            stop.touch()
            requested.append(stop)
    return requested


def stop_callback(run_dir: Path, stopped: list[int]) -> Any:
    """Stops after the current step, with a checkpoint, when the stop file appears or SIGTERM arrives."""
    from transformers import TrainerCallback

    flag = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # Airflow sends SIGTERM when a task is marked failed or stopped in the UI: finish the step, keep a
        # checkpoint, then stop, instead of dying mid-write.
        signal.signal(signal.SIGTERM, lambda *_: flag.set())

    class StopOnRequest(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if flag.is_set() or (run_dir / STOP_FILE).exists():
                log.info("stop requested: saving a checkpoint at step %d and stopping", state.global_step)
                stopped.append(state.global_step)
                control.should_save = True
                control.should_training_stop = True

    return StopOnRequest()


def metrics_callback(tb_dir: Path, params: TrainParams) -> Any:
    """Tokens per second and the run's hyper-parameters in TensorBoard, next to the trainer's own scalars."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers import TrainerCallback

    class Metrics(TrainerCallback):
        def __init__(self) -> None:
            self.writer: Any = None
            self.mark = (0.0, 0)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.writer = SummaryWriter(str(tb_dir))
            self.mark = (time.perf_counter(), int(state.num_input_tokens_seen or 0))

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            now, tokens = time.perf_counter(), int(state.num_input_tokens_seen or 0)
            if self.writer and logs and "loss" in logs and now > self.mark[0]:
                self.writer.add_scalar(
                    "train/tokens_per_second", (tokens - self.mark[1]) / (now - self.mark[0]), state.global_step
                )
                self.mark = (now, tokens)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.writer:
                hparams = {k: v for k, v in params.model_dump().items() if isinstance(v, int | float | str | bool)}
                losses = [h["loss"] for h in state.log_history if "loss" in h]
                self.writer.add_hparams(
                    hparams, {"hparam/final_loss": losses[-1] if losses else float("nan")}, run_name="hparams"
                )
                self.writer.close()

    return Metrics()


def log_lines_callback() -> Any:
    """Plain log lines per logging step, for Airflow task logs where no progress bar renders, and at the end how many
    steps this try ran: after a resume, the steps left, not all of them again."""
    from transformers import TrainerCallback

    class LogLines(TrainerCallback):
        def __init__(self) -> None:
            self.steps = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.steps += 1

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            log.info(
                "steps run in this try: %d (step %d to %d of %d)",
                self.steps,
                state.global_step - self.steps,
                state.global_step,
                state.max_steps,
            )

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                log.info(
                    "step %d/%d loss %.4f lr %.2e",
                    state.global_step,
                    state.max_steps,
                    logs["loss"],
                    logs.get("learning_rate", 0.0),
                )

    return LogLines()


def progress_callback(progress: StepProgress) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        loss: float | None = None

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress(state.global_step, state.max_steps, self.loss)

    return Progress()


# What "the held-out-phrasing score plateaued" means during training: the evaluation split holds the trained facts
# asked in phrasings that never train, and the share of their answer tokens the model predicts (teacher-forced) is a
# cheap stand-in for the API score that the evaluation measures by generating.
PLATEAU_METRIC = "eval_mean_token_accuracy"
PLATEAU_MIN_GAIN = 0.005


def plateau_callback(patience: int) -> Any:
    """Stop when the held-out-phrasing token accuracy has not risen by PLATEAU_MIN_GAIN for ``patience`` evaluations:
    more epochs only cost CPU time once the facts are in."""
    from transformers import TrainerCallback

    class StopOnPlateau(TrainerCallback):
        best = float("-inf")
        flat = 0

        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any
        ) -> None:
            value = (metrics or {}).get(PLATEAU_METRIC)
            if value is None:
                return
            if value >= self.best + PLATEAU_MIN_GAIN:
                self.best, self.flat = value, 0
                return
            self.flat += 1
            if self.flat >= patience:
                log.info(
                    "held-out-phrasing token accuracy %.3f has not improved on %.3f for %d evaluations: stopping at "
                    "step %d of %d",
                    value,
                    self.best,
                    self.flat,
                    state.global_step,
                    state.max_steps,
                )
                control.should_training_stop = True

    return StopOnPlateau()


# A time budget trusts the run's pace only after this many steps, plans this share under the budget (the
# evaluations for early stopping and the checkpoints make the pace uneven), and moves the plan only by more than
# BUDGET_REPLAN_SHARE of it, so the learning-rate schedule is not redrawn on every step.
BUDGET_PROBE_STEPS = 10
BUDGET_SLACK = 0.03
BUDGET_REPLAN_SHARE = 0.01


def budget_callback(budget_s: float, planned_tokens: int, clock: Callable[[], float] = time.monotonic) -> Any:
    """Fit the run into ``budget_s`` seconds of training loop, ``planned_tokens`` being the tokens its planned steps
    train on: plan as many steps as the pace so far says fit, never more than planned, and end the learning-rate
    schedule on the last of them (stopping a cosine schedule half-way would leave the adapter at a high learning
    rate); stop outright at the budget.

    The pace is counted in seconds per token, not per step: batches grouped by length put the longest first, so
    the first steps are the slowest and a per-step pace would plan far too few."""
    from transformers import TrainerCallback

    class FitTheBudget(TrainerCallback):
        started = 0.0
        first_step = tokens_before = planned_steps = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started, self.first_step = clock(), state.global_step
            self.tokens_before, self.planned_steps = state.num_input_tokens_seen, state.max_steps

        def on_step_end(self, args: Any, state: Any, control: Any, lr_scheduler: Any = None, **kwargs: Any) -> None:
            elapsed = clock() - self.started
            if elapsed >= budget_s:
                log.info("time budget of %.0f s spent: stopping at step %d", budget_s, state.global_step)
                control.should_training_stop = True
                return
            tokens = state.num_input_tokens_seen - self.tokens_before
            if state.global_step - self.first_step < BUDGET_PROBE_STEPS or tokens <= 0:
                return
            needed = elapsed / tokens * max(planned_tokens - state.num_input_tokens_seen, 0)
            available = budget_s * (1 - BUDGET_SLACK) - elapsed
            steps_left = self.planned_steps - state.global_step
            fits = (
                self.planned_steps if needed <= available else state.global_step + int(steps_left * available / needed)
            )
            fits = max(fits, state.global_step + 1)
            small = abs(fits - state.max_steps) <= BUDGET_REPLAN_SHARE * self.planned_steps
            if fits == state.max_steps or (small and fits != self.planned_steps):
                return
            log.info(
                "time budget of %.0f s: %.0f s spent on %d tokens, %.0f s left; planning %d steps of the %d planned",
                budget_s,
                elapsed,
                tokens,
                available,
                fits,
                self.planned_steps,
            )
            state.max_steps = fits
            if lr_scheduler is not None:
                _end_schedule_at(lr_scheduler, args, fits)

    return FitTheBudget()


def _end_schedule_at(scheduler: Any, args: Any, total_steps: int) -> None:
    """Make the trainer's LambdaLR follow the same schedule as if it had been planned for ``total_steps``."""
    import torch
    from transformers import get_scheduler

    # get_scheduler builds the lambdas the trainer would have built; a throwaway optimizer keeps the real one's
    # learning rates untouched.
    spare = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    planned = get_scheduler(
        args.lr_scheduler_type,
        spare,
        num_warmup_steps=args.get_warmup_steps(total_steps),
        num_training_steps=total_steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    scheduler.lr_lambdas = [planned.lr_lambdas[0]] * len(scheduler.lr_lambdas)
