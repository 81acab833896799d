"""The retrain DAG's trigger form: the TrainParams fields a person tunes per run, as JSON-schema fields derived
from TrainParams itself (``param_fields``, which the console's start form uses too), then the run options."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from doctune.config.library import LibraryConfig
from doctune.config.params import TrainParams

# The retrain form: TrainParams fields a person tunes per run, in the order the Airflow UI shows them.
FORM_TRAIN_FIELDS = (
    "learning_rate",
    "batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_epochs",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "max_seq_length",
    "time_budget_minutes",
)


def param_fields(defaults: TrainParams, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """TrainParams fields (``names``, in that order; default: all, in the model's order) as flat JSON-schema
    properties, each with its type, bounds and help text and the default from ``defaults``.

    The one converter from TrainParams' schema to form fields: the Airflow trigger form and the console's start
    form are both built from it.
    """
    properties = TrainParams.model_json_schema()["properties"]
    fields: dict[str, dict[str, Any]] = {}
    for name in properties if names is None else names:
        prop = dict(properties[name])
        if "anyOf" in prop:  # "float | None": one field that takes null or a bounded number
            number = next(p for p in prop.pop("anyOf") if p.get("type") != "null")
            prop.update(number, type=["null", number["type"]])
        prop.pop("title", None)
        prop["default"] = getattr(defaults, name)
        fields[name] = prop
    return fields


def train_form(library: LibraryConfig) -> dict[str, dict[str, object]]:
    """The retrain parameter form as JSON-schema fields with defaults from the library's config.

    Derived from TrainParams' own types, bounds and help text, so the Airflow trigger form, the console and the
    validation in the first task cannot disagree. Run options follow: base_model, force_rebuild, reevaluate and
    skip_gate.
    """
    form: dict[str, dict[str, object]] = param_fields(library.train, FORM_TRAIN_FIELDS)
    form["base_model"] = {
        "type": "string",
        "minLength": 1,
        "default": library.base_model,
        "description": "Base model to fine-tune; it must be the model vLLM serves, or the adapter cannot be served.",
    }
    form["force_rebuild"] = {
        "type": "boolean",
        "default": False,
        "description": "Build a new dataset version even if the docs did not change.",
    }
    form["reevaluate"] = {
        "type": "boolean",
        "default": False,
        "description": "Evaluate and deploy even if the latest dataset version was already trained with these "
        "parameters and evaluated (it is not trained twice: same data and parameters give the same adapter).",
    }
    form["skip_gate"] = {
        "type": "boolean",
        "default": False,
        "description": "Admins only (DOCTUNE_ADMINS): deploy even if the evaluation gate rejects the adapter. "
        "Recorded in the registry with the user's name.",
    }
    return form
