from pathlib import Path

import pytest
from pydantic import ValidationError

from doctune.config import (
    TRAIN_PRESETS,
    LibraryConfig,
    Settings,
    TrainParams,
    check_serving_keys,
    get_library,
    load_library,
    write_library,
)
from doctune.errors import DoctuneError
from doctune.serve import gateway


def test_settings_derive_paths_from_home(settings: Settings) -> None:
    assert settings.registry_url == f"sqlite:///{settings.home / 'registry.db'}"
    assert settings.libraries_path == settings.home / "libraries"


@pytest.mark.parametrize("name", ["Has Space", "UPPER", "1starts-with-digit", "x" * 70, "../escape"])
def test_library_name_must_be_safe(name: str) -> None:
    with pytest.raises(ValidationError, match="library name"):
        LibraryConfig(name=name, repo_url="file:///x")


@pytest.mark.parametrize("preset", sorted(TRAIN_PRESETS))
def test_every_preset_is_valid_and_servable_with_the_default_limits(preset: str) -> None:
    library = LibraryConfig(name="widgets", repo_url="file:///x", preset=preset)
    Settings().check_servable_rank(library.train.lora_rank)


def test_a_rank_above_the_serving_limit_is_named_with_the_fix() -> None:
    with pytest.raises(
        DoctuneError, match="lora_rank=32 is above the serving limit --max-lora-rank 16: .*lower lora_rank"
    ):
        Settings(vllm_max_lora_rank=16).check_servable_rank(32)


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


def test_doctune_base_model_is_the_base_of_configs_that_name_none(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.libraries_path.mkdir(parents=True)
    (settings.libraries_path / "acme.yaml").write_text("name: acme\nrepo_url: file:///x\n")
    (settings.libraries_path / "own.yaml").write_text("name: own\nrepo_url: file:///x\nbase_model: tiny-llama\n")
    assert get_library(settings, "acme").base_model == "smollm2-135m-instruct"
    monkeypatch.setenv("DOCTUNE_BASE_MODEL", "Qwen/Qwen2.5-Coder-1.5B-Instruct")  # as compose sets it
    served = Settings(home=settings.home)
    assert get_library(served, "acme").base_model == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    assert get_library(served, "own").base_model == "tiny-llama"  # a config's own choice wins


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


@pytest.mark.parametrize(
    "variable,keys,host,refused",
    [
        ("DOCTUNE_GATEWAY_API_KEYS", [], "0.0.0.0", "refusing to listen on 0.0.0.0; set DOCTUNE_GATEWAY_API_KEYS"),
        ("DOCTUNE_GATEWAY_API_KEYS", ["CHANGE_ME_client_key_1"], "127.0.0.1", "still holds a placeholder"),
        ("DOCTUNE_CONSOLE_KEYS", ["k-1", "CHANGE_ME_console_key"], "0.0.0.0", "DOCTUNE_CONSOLE_KEYS still holds"),
        ("DOCTUNE_GATEWAY_API_KEYS", [], "127.0.0.1", None),
        ("DOCTUNE_CONSOLE_KEYS", ["a-real-key"], "0.0.0.0", None),
    ],
)
def test_servers_refuse_open_doors(variable: str, keys: list[str], host: str, refused: str | None) -> None:
    if refused is None:
        check_serving_keys(variable, keys, host)
    else:
        with pytest.raises(DoctuneError, match=refused):
            check_serving_keys(variable, keys, host)


def test_the_gateway_refuses_to_listen_beyond_loopback_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCTUNE_GATEWAY_API_KEYS", raising=False)
    with pytest.raises(DoctuneError, match="refusing to listen on 0.0.0.0; set DOCTUNE_GATEWAY_API_KEYS"):
        gateway.main(["--host", "0.0.0.0", "--port", "1"])
