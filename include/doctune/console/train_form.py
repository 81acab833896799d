"""The console's start form: TrainParams fields as HTML inputs (built from ``config.param_fields``, the converter
the Airflow trigger form uses too), and the submitted form read back into TrainParams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doctune.config import TrainParams, param_fields


@dataclass
class FormField:
    """One input of the training form, from one property of TrainParams' JSON schema."""

    name: str
    kind: str  # "number", "integer", "boolean", "choice", "list", "text"
    description: str
    value: Any
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: list[Any] = field(default_factory=list)

    @property
    def bounds(self) -> str:
        low = "" if self.minimum is None else f"{'>' if self.exclusive_minimum else '≥'} {self.minimum:g}"
        high = "" if self.maximum is None else f"{'<' if self.exclusive_maximum else '≤'} {self.maximum:g}"
        return ", ".join(b for b in (low, high) if b)


def train_form_fields(defaults: TrainParams, only: set[str] | None = None) -> list[FormField]:
    """The start form: every TrainParams field (or those in ``only``: the retrain DAG's form when runs go through
    Airflow) with its JSON-schema type, bounds and description, prefilled with ``defaults`` (the library's
    configured parameters). The Airflow trigger form derives from the same converter."""
    fields = []
    for name, prop in param_fields(defaults).items():
        if only is not None and name not in only:
            continue
        types = prop.get("type", "text")
        types = types if isinstance(types, list) else [types]  # a nullable field's type is ["null", T]
        kind = next((t for t in types if t != "null"), "text")
        if "enum" in prop:
            kind = "choice"
        elif kind == "array":
            kind = "list"
        elif kind not in ("number", "integer", "boolean"):
            kind = "text"
        value = prop["default"]
        fields.append(
            FormField(
                name=name,
                kind=kind,
                description=prop.get("description", ""),
                value=", ".join(value) if kind == "list" else value,
                nullable="null" in types,
                minimum=prop.get("minimum", prop.get("exclusiveMinimum")),
                maximum=prop.get("maximum", prop.get("exclusiveMaximum")),
                exclusive_minimum="exclusiveMinimum" in prop,
                exclusive_maximum="exclusiveMaximum" in prop,
                choices=list(prop.get("enum", [])),
            )
        )
    return fields


def parse_train_form(form: dict[str, str], defaults: TrainParams, only: set[str] | None = None) -> TrainParams:
    """TrainParams from the submitted form; raises ``ValidationError`` with pydantic's own messages.

    An empty field means the library's configured value, or null for a nullable field; an unticked box is
    false; a list is comma-separated."""
    values: dict[str, Any] = defaults.model_dump()
    for spec in train_form_fields(defaults, only):
        raw = form.get(spec.name)
        if spec.kind == "boolean" and not spec.nullable:
            values[spec.name] = raw in ("on", "true", "1")
        elif raw is None:
            continue
        elif raw.strip() == "":
            values[spec.name] = None if spec.nullable else getattr(defaults, spec.name)
        elif spec.kind == "list":
            values[spec.name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[spec.name] = raw.strip()
    return TrainParams.model_validate(values)
