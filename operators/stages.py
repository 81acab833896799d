"""One operator per pipeline stage.

Constructors only store their (templated) arguments; settings, the registry, connections and every heavy library
are touched in ``execute`` so that parsing a DAG file costs nothing. Each ``execute`` calls the same function the
``doctune`` CLI calls and returns a small JSON-able dict for XCom.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from doctune.names import Decision
from operators.hooks import GitHook, VLLMHook


def _library(name: str, **update: Any) -> tuple[Any, Any]:
    from doctune.config import Settings, get_library

    settings = Settings()
    library = get_library(settings, name)
    return (library.model_copy(update=update) if update else library), settings


def _adapter_library(name: str, version: Any) -> tuple[Any, Any]:
    """The library's config with the base model the adapter was trained on (a run may override the config's)."""
    from doctune.registry import Registry

    library, settings = _library(name)
    adapter = Registry.open(settings).adapter(name, int(version))
    return library.model_copy(update={"base_model": adapter.base_model}), settings


def _git_credentials(library: Any) -> Any:
    return GitHook(library.git_conn_id).get_conn() if library.git_conn_id else None


def _vllm_settings(settings: Any, vllm_conn_id: str) -> Any:
    return VLLMHook(vllm_conn_id).settings(settings)


def _flag(value: Any) -> bool:
    """A templated boolean: native with render_template_as_native_obj, the string "True" without."""
    return value is True or value == "True"


def _given(value: Any) -> bool:
    """Whether a templated optional argument was set (an empty template renders as '' or 'None')."""
    return value not in (None, "", "None")


class CheckParamsOperator(BaseOperator):
    """Validate a run's form values before any work: TrainParams' rules, the serving limits, who may skip the gate.

    Bad values fail here, at once and without retries, with the field and the fix; the validated values are the
    XCom the later tasks read, so they never see an unchecked value.
    """

    template_fields = ("library", "form")
    ui_color = "#f5f5f5"

    def __init__(self, *, library: str, form: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.form = form

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.config import FORM_TRAIN_FIELDS
        from doctune.errors import DoctuneError

        library, settings = _library(self.library)
        form = dict(self.form or {})
        overrides = {k: form[k] for k in FORM_TRAIN_FIELDS if k in form}
        try:
            params = library.train.merged(overrides)
            settings.check_servable_rank(params.lora_rank)
        except DoctuneError as exc:
            raise AirflowFailException(str(exc)) from None
        base_model = str(form.get("base_model") or library.base_model)
        user = getattr(context["dag_run"], "triggering_user_name", None)
        skipped_gate_by = None
        if form.get("skip_gate"):
            if not user or user not in settings.admin_names:
                raise AirflowFailException(
                    f"skip_gate is for admins only: user {user or '(scheduler)'} is not in DOCTUNE_ADMINS; "
                    "untick skip_gate, or ask an admin to trigger the run"
                )
            skipped_gate_by = user
            self.log.warning("skip_gate: %s deploys this run's adapter even if the gate rejects it", user)
        return {
            "train": {k: getattr(params, k) for k in overrides},
            "base_model": base_model,
            "force_rebuild": bool(form.get("force_rebuild")),
            "reevaluate": bool(form.get("reevaluate")),
            "skipped_gate_by": skipped_gate_by,
        }


class SyncOperator(BaseOperator):
    """Clone or fetch the library's repository and check out the synced commit's tree (its ``path``) for the corpus."""

    template_fields = ("library",)
    ui_color = "#e8f4fd"

    def __init__(self, *, library: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.sources import sync

        library, settings = _library(self.library)
        return sync(library, settings, _git_credentials(library)).to_dict()


class CorpusOperator(BaseOperator):
    """Build a dataset version from the sync's tree of its commit when the doc surface changed (or ``force``).

    With ``skip_unchanged`` an unchanged surface skips the task, and so everything downstream and the dataset
    Asset event; without it the latest version is returned for the next stage.
    """

    template_fields = ("library", "commit", "tree", "force", "skip_unchanged")
    ui_color = "#eaf7ea"

    def __init__(
        self,
        *,
        library: str,
        commit: Any,
        tree: Any,
        force: Any = False,
        skip_unchanged: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.commit = commit
        self.tree = tree
        self.force = force
        self.skip_unchanged = skip_unchanged

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.corpus import build

        library, settings = _library(self.library)
        info = build(library, settings, (str(self.commit), str(self.tree)), force=_flag(self.force))
        if info.status == "unchanged" and self.skip_unchanged:
            raise AirflowSkipException(f"doc surface unchanged since dataset v{info.version}: no new dataset version")
        return info.to_dict()


class TrainOperator(BaseOperator):
    """Train a LoRA adapter on a dataset version; ``overrides`` are checked TrainParams fields (the trigger form).

    A retry resumes from the run's last checkpoint, and a try of a training that already registered its adapter
    returns that adapter: one dataset version and parameter set never makes two versions. Stopping or marking
    the task failed in the UI sends SIGTERM, which stops the training after the current step with a checkpoint.
    """

    template_fields = ("library", "dataset_version", "overrides", "base_model", "reevaluate")
    ui_color = "#fdf1e6"

    def __init__(
        self,
        *,
        library: str,
        dataset_version: Any,
        overrides: Any = None,
        base_model: Any = None,
        reevaluate: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.dataset_version = dataset_version
        self.overrides = overrides
        self.base_model = base_model
        self.reevaluate = reevaluate

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.registry import Registry
        from doctune.train import train

        update = {"base_model": self.base_model} if _given(self.base_model) else {}
        library, settings = _library(self.library, **update)
        params = library.train.merged(self.overrides or {})
        result = train(library, settings, dataset_version=int(self.dataset_version), params=params)
        evaluated = Registry.open(settings).latest_evaluation(library.name, result.adapter_version)
        if result.reused and evaluated is not None and not _flag(self.reevaluate):
            raise AirflowSkipException(
                f"adapter v{result.adapter_version} was already trained on dataset v{result.dataset_version} with "
                f"these parameters and evaluated ({evaluated.decision}): nothing new; tick reevaluate to evaluate "
                "and deploy it again"
            )
        return result.to_dict()

    def on_kill(self) -> None:
        # The training loop's own SIGTERM handler checkpoints; this covers a kill that reaches Airflow's handler.
        from doctune.config import Settings
        from doctune.train import request_stop

        request_stop(Settings(), self.library)


class EvaluateOperator(BaseOperator):
    """Compare the candidate with production and the base model, and record the gate's decision."""

    template_fields = ("library", "adapter_version", "vllm_conn_id")
    ui_color = "#f3e8fd"

    def __init__(
        self, *, library: str, adapter_version: Any, vllm_conn_id: str = VLLMHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.adapter_version = adapter_version
        self.vllm_conn_id = vllm_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.evaluate import evaluate

        library, settings = _adapter_library(self.library, self.adapter_version)
        return evaluate(library, _vllm_settings(settings, self.vllm_conn_id), int(self.adapter_version)).to_dict()


class DeployOperator(BaseOperator):
    """Load the approved adapter into vLLM, smoke-test it, and move the stable name to it.

    ``skipped_gate_by`` (an admin's name, checked by CheckParamsOperator) deploys a rejected adapter too, and the
    registry records who did.
    """

    template_fields = ("library", "adapter_version", "decision", "skipped_gate_by", "vllm_conn_id")
    ui_color = "#fde8ec"

    def __init__(
        self,
        *,
        library: str,
        adapter_version: Any,
        decision: Any = Decision.PROMOTE,
        skipped_gate_by: Any = None,
        vllm_conn_id: str = VLLMHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.adapter_version = adapter_version
        self.decision = decision
        self.skipped_gate_by = skipped_gate_by
        self.vllm_conn_id = vllm_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.serve import deploy, ensure_gateway

        admin = str(self.skipped_gate_by) if _given(self.skipped_gate_by) else None
        if self.decision != Decision.PROMOTE and admin is None:
            raise AirflowSkipException(f"the gate rejected v{self.adapter_version}: production stays as it is")
        library, settings = _adapter_library(self.library, self.adapter_version)
        settings = _vllm_settings(settings, self.vllm_conn_id)
        gate_skipped = admin if self.decision != Decision.PROMOTE else None
        result = deploy(library, settings, int(self.adapter_version), skipped_gate_by=gate_skipped)
        ensure_gateway(settings)
        return result.to_dict()


class RollbackOperator(BaseOperator):
    """Point the stable name back at the previous production version (or ``to_version``)."""

    template_fields = ("library", "to_version", "vllm_conn_id")
    ui_color = "#fff3cd"

    def __init__(
        self, *, library: str, to_version: Any = None, vllm_conn_id: str = VLLMHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.library = library
        self.to_version = to_version
        self.vllm_conn_id = vllm_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from doctune.serve import rollback

        library, settings = _library(self.library)
        version = int(self.to_version) if _given(self.to_version) else None
        return rollback(library, _vllm_settings(settings, self.vllm_conn_id), version).to_dict()
