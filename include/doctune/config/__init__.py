"""Typed configuration: process settings from the environment, and one YAML file per library.

- ``settings``: ``Settings`` (``DOCTUNE_*`` variables), ``REPO_ROOT``, and ``check_serving_keys`` for a server's keys.
- ``params``: ``TrainParams``, the ``TRAIN_PRESETS`` per model size, ``GateParams``, ``validation_messages``.
- ``library``: ``LibraryConfig`` (with ``SourceConfig`` and ``LLMConfig``) and its YAML files: ``load_library``,
  ``library_files``, ``get_library``, ``write_library``.
- ``forms``: the retrain DAG's trigger form (``train_form``, ``FORM_TRAIN_FIELDS``) and ``param_fields``, the one
  converter of TrainParams' schema to form fields, which the console's start form uses too.
"""

from doctune.config.forms import FORM_TRAIN_FIELDS, param_fields, train_form
from doctune.config.library import (
    LibraryConfig,
    LLMConfig,
    SourceConfig,
    get_library,
    library_files,
    load_library,
    write_library,
)
from doctune.config.params import TRAIN_PRESETS, GateParams, TrainParams, validation_messages
from doctune.config.settings import LOOPBACK, REPO_ROOT, Settings, check_serving_keys

__all__ = [
    "FORM_TRAIN_FIELDS",
    "LOOPBACK",
    "REPO_ROOT",
    "TRAIN_PRESETS",
    "GateParams",
    "LLMConfig",
    "LibraryConfig",
    "Settings",
    "SourceConfig",
    "TrainParams",
    "check_serving_keys",
    "get_library",
    "library_files",
    "load_library",
    "param_fields",
    "train_form",
    "validation_messages",
    "write_library",
]
