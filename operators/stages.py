"""One operator per pipeline stage.

Constructors only store their (templated) arguments; settings, the registry and every heavy library are
touched in ``execute`` so that parsing a DAG file costs nothing. Each ``execute`` calls the same function the
``doctune`` CLI calls and returns a small JSON-able dict for XCom.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException


def _library(name: str) -> tuple[Any, Any]:
    from doctune.config import Settings, get_library

    settings = Settings()
    return get_library(settings, name), settings


class SyncOperator(BaseOperator):
    """Clone or fetch the library's repository and fingerprint its doc surface."""

    template_fields = ("library",)
    ui_color = "#e8f4fd"

    def __init__(self, *, library: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.sources import sync

        library, settings = _library(self.library)
        return sync(library, settings).to_dict()


class CorpusOperator(BaseOperator):
    """Build a dataset version from the synced commit; skip everything downstream when nothing changed."""

    template_fields = ("library", "commit", "force")
    ui_color = "#eaf7ea"

    def __init__(self, *, library: str, commit: Any = None, force: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.commit = commit
        self.force = force

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.corpus import build

        library, settings = _library(self.library)
        info = build(library, settings, commit=self.commit or None, force=bool(self.force))
        if info.status == "unchanged":
            raise AirflowSkipException(
                f"doc surface unchanged since dataset v{info.version}: no new dataset, no training, no deploy"
            )
        return info.to_dict()


class TrainOperator(BaseOperator):
    """Train a LoRA adapter on a dataset version; ``overrides`` are TrainParams fields (the trigger form)."""

    template_fields = ("library", "dataset_version", "overrides")
    ui_color = "#fdf1e6"

    def __init__(self, *, library: str, dataset_version: Any, overrides: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.dataset_version = dataset_version
        self.overrides = overrides

    def execute(self, context: Any) -> dict[str, Any]:
        from pydantic import ValidationError

        from doctune.config import TrainParams
        from doctune.train import train

        library, settings = _library(self.library)
        try:
            params = TrainParams.model_validate(library.train.model_dump() | dict(self.overrides or {}))
        except ValidationError as exc:
            # Bad parameters will not get better on retry: fail the task at once, naming the field.
            raise AirflowFailException(f"invalid training parameters: {exc}") from None
        return train(library, settings, dataset_version=int(self.dataset_version), params=params).to_dict()


class EvaluateOperator(BaseOperator):
    """Compare the candidate with production and the base model, and record the gate's decision."""

    template_fields = ("library", "adapter_version")
    ui_color = "#f3e8fd"

    def __init__(self, *, library: str, adapter_version: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.adapter_version = adapter_version

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.evaluate import evaluate

        library, settings = _library(self.library)
        return evaluate(library, settings, int(self.adapter_version)).to_dict()


class DeployOperator(BaseOperator):
    """Load the approved adapter into vLLM, smoke-test it, and move the stable name to it."""

    template_fields = ("library", "adapter_version", "decision")
    ui_color = "#fde8ec"

    def __init__(self, *, library: str, adapter_version: Any, decision: Any = "promote", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.adapter_version = adapter_version
        self.decision = decision

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.serve import deploy, ensure_gateway

        if self.decision != "promote":
            raise AirflowSkipException(f"the gate rejected v{self.adapter_version}: production stays as it is")
        library, settings = _library(self.library)
        result = deploy(library, settings, int(self.adapter_version))
        ensure_gateway(settings)
        return result.to_dict()


class RollbackOperator(BaseOperator):
    """Point the stable name back at the previous production version (or ``to_version``)."""

    template_fields = ("library", "to_version")
    ui_color = "#fff3cd"

    def __init__(self, *, library: str, to_version: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.to_version = to_version

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.serve import rollback

        library, settings = _library(self.library)
        version = int(self.to_version) if self.to_version not in (None, "", "None") else None
        return rollback(library, settings, version).to_dict()
