import json
from pathlib import Path

import pytest

from doctune.base_models import CHATML_TEMPLATE, TINY_LLAMA, _build_tiny_llama, resolve_base_model
from doctune.config import Settings
from doctune.errors import DoctuneError


def test_tiny_llama_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        _build_tiny_llama(tmp_path / name)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()


def test_tiny_llama_has_a_chat_template_and_stops_on_im_end(settings: Settings) -> None:
    from transformers import AutoTokenizer

    folder = Path(resolve_base_model(TINY_LLAMA, settings))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.chat_template == CHATML_TEMPLATE
    config = json.loads((folder / "config.json").read_text())
    assert config["eos_token_id"] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert resolve_base_model(TINY_LLAMA, settings) == str(folder)  # cached


def test_local_folder_without_config_is_refused(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(DoctuneError, match="is not a model folder"):
        resolve_base_model(str(tmp_path), settings)


def test_hub_ids_pass_through(settings: Settings) -> None:
    assert resolve_base_model("Qwen/Qwen2.5-Coder-1.5B-Instruct", settings) == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
