"""Airflow operators and hooks for doctune: thin wrappers over the stage functions in ``doctune``."""

from operators.hooks import GitHook, VLLMHook
from operators.stages import (
    CheckParamsOperator,
    CorpusOperator,
    DeployOperator,
    EvaluateOperator,
    RollbackOperator,
    SyncOperator,
    TrainOperator,
)

__all__ = [
    "CheckParamsOperator",
    "CorpusOperator",
    "DeployOperator",
    "EvaluateOperator",
    "GitHook",
    "RollbackOperator",
    "SyncOperator",
    "TrainOperator",
    "VLLMHook",
]
