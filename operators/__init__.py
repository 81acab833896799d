"""Airflow operators for doctune: thin wrappers over the stage functions in ``doctune``."""

from operators.stages import (
    CorpusOperator,
    DeployOperator,
    EvaluateOperator,
    SyncOperator,
    TrainOperator,
)

__all__ = ["CorpusOperator", "DeployOperator", "EvaluateOperator", "SyncOperator", "TrainOperator"]
