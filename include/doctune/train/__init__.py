"""Train: LoRA on a dataset version with trl's SFTTrainer; the adapter is saved in the layout vLLM loads.

Heavy libraries (torch, transformers, peft, trl) are imported inside functions so that importing this package
(from a DAG file, the CLI or the gateway) stays cheap.

- ``stage``: ``train`` (the stage's entry: from a dataset version to a registered candidate adapter),
  ``TrainResult``, ``run_key`` and the training lease;
- ``fit``: one training loop with trl's SFTTrainer (``fit_adapter``) and the choices ``make bench`` measures;
- ``callbacks``: the trainer callbacks (stop request, TensorBoard metrics, log lines, progress, plateau, time
  budget) and ``request_stop``;
- ``checkpoints``: the newest complete checkpoint, full-disk detection, whether an adapter is servable;
- ``data``: the general Python replay set and trl's prompt/completion form;
- ``backends``: unsloth / peft selection.
"""

from doctune.registry.artefacts import adapter_digest
from doctune.train.callbacks import STOP_FILE, TrainingStopped, request_stop
from doctune.train.checkpoints import latest_good_checkpoint, servable_problems
from doctune.train.data import GENERAL_SET, replay_rows
from doctune.train.fit import FitChoices, fit_adapter
from doctune.train.stage import TrainResult, run_key, train

__all__ = [
    "GENERAL_SET",
    "STOP_FILE",
    "FitChoices",
    "TrainResult",
    "TrainingStopped",
    "adapter_digest",
    "fit_adapter",
    "latest_good_checkpoint",
    "replay_rows",
    "request_stop",
    "run_key",
    "servable_problems",
    "train",
]
