from pathlib import Path

import pytest
from pydantic import ValidationError

from doctune.config import LibraryConfig, Settings, TrainParams, get_library, load_library, write_library
from doctune.errors import DoctuneError


def test_settings_derive_paths_from_home(settings: Settings) -> None:
    assert settings.registry_url == f"sqlite:///{settings.home / 'registry.db'}"
    assert settings.libraries_path == settings.home / "libraries"


@pytest.mark.parametrize("name", ["Has Space", "UPPER", "1starts-with-digit", "x" * 70, "../escape"])
def test_library_name_must_be_safe(name: str) -> None:
    with pytest.raises(ValidationError, match="library name"):
        LibraryConfig(name=name, repo_url="file:///x")


def test_alpha_far_above_rank_is_refused() -> None:
    with pytest.raises(ValidationError, match="lora_alpha=128 is more than 4x lora_rank=8"):
        TrainParams(lora_rank=8, lora_alpha=128)


@pytest.mark.parametrize(
    "field,value", [("learning_rate", 0), ("batch_size", 0), ("max_steps", -1), ("lora_dropout", 1.5)]
)
def test_out_of_range_parameters_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        TrainParams.model_validate({field: value})


def test_round_trip_and_lookup(settings: Settings) -> None:
    library = LibraryConfig(name="acme", repo_url="https://git.example/acme.git", train=TrainParams(max_steps=7))
    path = write_library(settings, library)
    assert load_library(path) == library
    assert get_library(settings, "acme").train.max_steps == 7


def test_unknown_library_lists_known_ones(settings: Settings) -> None:
    write_library(settings, LibraryConfig(name="acme", repo_url="file:///x"))
    with pytest.raises(DoctuneError, match=r"unknown library 'nope'.*known: acme"):
        get_library(settings, "nope")


def test_typo_in_config_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("name: acme\nrepo_url: file:///x\ntrain:\n  learnig_rate: 0.1\n")
    with pytest.raises(DoctuneError, match=r"acme.yaml: train.learnig_rate: Extra inputs"):
        load_library(path)


def test_broken_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(DoctuneError, match="cannot read library config"):
        load_library(path)
