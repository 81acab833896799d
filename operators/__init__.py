"""Airflow operators for doctune: thin wrappers over the stage functions in ``doctune``."""

from operators.stages import (
    CorpusOperator,
    DeployOperator,
    EvaluateOperator,
    RollbackOperator,
    SyncOperator,
    TrainOperator,
)

__all__ = ["CorpusOperator", "DeployOperator", "EvaluateOperator", "RollbackOperator", "SyncOperator", "TrainOperator"]
